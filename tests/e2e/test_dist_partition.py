"""Distribution across a real network partition (issue 13): two wisp nodes,
each in a network namespace of its own, joined by a veth pair; nftables
drops everything on one end to cut the link, and deleting its table heals
it.

Needs root (network namespaces); skips when not root or when `ip netns add`
is refused (a container without CAP_SYS_ADMIN). Each test makes its own pair
of namespaces, named with a random token so that parallel runs cannot
clash; its finalizer kills every process left in them (nodes, an EPMD),
deletes the nft table, the veth pair and the namespaces, then checks that
none of them is left.

Both nodes run tests/guests/c/dist_node.c in mode `part`: linked to and
monitoring the other's process, each sends the other a numbered stream
(one every 20 ms) and prints every number it gets, every EXIT and DOWN,
"relinked" when it hears from the peer again after losing it, and "met"
when a new incarnation of the peer says hello. Mode `ctl` sends what the
test writes on its stdin. Cases: a partition (node down on both sides
after the tick time, no duplicate or reordered message after the heal),
kill -9, a restart (a new incarnation: the old pids never reach it), a
restart behind a partition (the stale connection is replaced), and a
simultaneous connect whose loser keeps what it was sending.
"""
import os
import re
import secrets
import shutil
import subprocess
import threading
import time

import pytest

from conftest import WISP

COOKIE = "wisp-partition-cookie"
TICK = 4                     # --net-ticktime of every node here (seconds)
PORT = 9100                  # each namespace has its own ports
ADDRS = ("10.200.0.1", "10.200.0.2")
NFT_TABLE = "wisp_partition"
NOCONNECTION = 7             # WISP_EXIT_NOCONNECTION


def _run(*cmd, check=True):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr.strip()}")
    return r


class Node:
    """A `wisp run` in a namespace; its output lines, each with the time it
    was read."""

    def __init__(self, argv, env):
        self.proc = subprocess.Popen(argv, env=env, text=True, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines = []
        self.err = []
        self.cond = threading.Condition()
        self.eof = False
        self.pumps = [threading.Thread(target=self._pump, daemon=True),
                      threading.Thread(target=self._pump_err, daemon=True)]
        for t in self.pumps:
            t.start()

    def _pump(self):
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def _pump_err(self):
        for line in self.proc.stderr:   # drained, so wisp never blocks on it
            with self.cond:
                self.err.append(line)
                self.cond.notify_all()

    def wait_err(self, text, timeout):
        """Wait until stderr holds text."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not any(text in l for l in self.err):
                left = deadline - time.monotonic()
                if left <= 0 or self.eof:
                    raise AssertionError(f"no {text!r} on stderr within {timeout} s: "
                                         f"{''.join(self.err)[-2000:]}")
                self.cond.wait(left)

    def send(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def wait(self, pattern, timeout, since=0):
        """The first line from index `since` on matching pattern: (index,
        time read, line); fails after timeout seconds."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        i = since
        with self.cond:
            while True:
                while i < len(self.lines):
                    if rx.search(self.lines[i][1]):
                        return i, self.lines[i][0], self.lines[i][1]
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or self.eof:
                    break
                self.cond.wait(left)
        raise AssertionError(f"no line matching {pattern!r} within {timeout} s; last lines: "
                             f"{[l for _, l in self.lines[-20:]]}; exit: {self.proc.poll()}; "
                             f"stderr: {''.join(self.err)[-2000:]}")

    def count(self):
        with self.cond:
            return len(self.lines)

    def numbers(self, what, upto=None):
        """The numbers of the "what N" lines (before index upto)."""
        with self.cond:
            lines = self.lines[:upto] if upto is not None else list(self.lines)
        return [int(l.split()[1]) for _, l in lines if l.startswith(what + " ")]

    def stop(self):
        """Kill it (if running); all it wrote on stderr."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        for t in self.pumps:
            t.join(timeout=10)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass
        with self.cond:
            return "".join(self.err)


class Net:
    """Two namespaces, a and b, joined by a veth pair (ADDRS[0] in a,
    ADDRS[1] in b), loopback up in each."""

    def __init__(self):
        self.ns, self.veth, self.nodes = [], [], []
        for _ in range(5):   # (a token already taken: another one)
            tok = secrets.token_hex(3)
            names = [f"wisp-part-{tok}-a", f"wisp-part-{tok}-b"]
            r = _run("ip", "netns", "add", names[0], check=False)
            if r.returncode == 0:
                break
            if "exists" not in r.stderr:
                pytest.skip(f"cannot make a network namespace here: {r.stderr.strip()}")
        else:
            raise RuntimeError("no free namespace name")
        self.ns.append(names[0])
        try:
            _run("ip", "netns", "add", names[1])
            self.ns.append(names[1])
            self.veth = [f"wp{tok}a", f"wp{tok}b"]   # (at most 15 bytes)
            _run("ip", "link", "add", self.veth[0], "netns", self.ns[0], "type", "veth",
                 "peer", "name", self.veth[1], "netns", self.ns[1])
            for ns, dev, addr in zip(self.ns, self.veth, ADDRS):
                _run("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
                _run("ip", "-n", ns, "link", "set", "lo", "up")
                _run("ip", "-n", ns, "link", "set", dev, "up")
        except BaseException:
            self.close()
            raise

    def node(self, side, argv, env):
        n = Node(["ip", "netns", "exec", self.ns[side], *map(str, argv)], env)
        n.side, n.argv, n.env = side, argv, env
        self.nodes.append(n)
        return n

    def restart(self, n, *more):
        """n killed (kill -9), then the same command again (and more
        arguments): a new incarnation of the node."""
        n.stop()
        return self.node(n.side, [*n.argv, *more], n.env)

    def flow(self):
        """(a's port, b's port) of the one TCP connection between them."""
        out = _run("ip", "netns", "exec", self.ns[0], "ss", "-Htn", "state", "established").stdout
        flows = [(int(m.group(1)), int(m.group(2))) for m in
                 re.finditer(rf"{re.escape(ADDRS[0])}:(\d+)\s+{re.escape(ADDRS[1])}:(\d+)", out)]
        assert len(flows) == 1, out
        return flows[0]

    def cut(self, flow=None):
        """Drop everything in and out of a's end of the link; or, given
        flow (a's port, b's port), only that connection's packets (in one
        step from a full cut: the others pass again)."""
        if flow is None:
            self.block("", "")
        else:
            self.block(f"tcp dport {flow[0]} tcp sport {flow[1]}",
                       f"tcp sport {flow[0]} tcp dport {flow[1]}")

    def block(self, match_in, match_out):
        """Drop what matches (nft expressions; "": everything, None:
        nothing) coming in to a's end of the link, and going out of it;
        replaces what was dropped before."""
        dev = self.veth[0]
        rule_in = f"iifname \"{dev}\" {match_in} drop;" if match_in is not None else ""
        rule_out = f"oifname \"{dev}\" {match_out} drop;" if match_out is not None else ""
        rules = (f"table inet {NFT_TABLE}\n"
                 f"delete table inet {NFT_TABLE}\n"
                 f"table inet {NFT_TABLE} {{\n"
                 f"  chain in {{ type filter hook input priority 0; policy accept;\n"
                 f"    {rule_in} }}\n"
                 f"  chain out {{ type filter hook output priority 0; policy accept;\n"
                 f"    {rule_out} }}\n"
                 f"}}\n")
        r = subprocess.run(["ip", "netns", "exec", self.ns[0], "nft", "-f", "-"], input=rules,
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"nft: {r.stderr.strip()}")

    def heal(self):
        _run("ip", "netns", "exec", self.ns[0], "nft", "delete", "table", "inet", NFT_TABLE)

    def close(self):
        for n in self.nodes:
            n.stop()
        for ns in self.ns:
            # Whatever else runs there (an EPMD a node started) goes too.
            pids = _run("ip", "netns", "pids", ns, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), 9)
                except ProcessLookupError:
                    pass
        if self.ns:
            _run("ip", "netns", "exec", self.ns[0], "nft", "delete", "table", "inet",
                 NFT_TABLE, check=False)
        if self.veth:
            _run("ip", "-n", self.ns[0], "link", "del", self.veth[0], check=False)
        for ns in self.ns:
            _run("ip", "netns", "del", ns, check=False)
        left = [ns for ns in self.ns if ns in _run("ip", "netns", "list").stdout]
        links = _run("ip", "-o", "link").stdout
        left += [v for v in self.veth if v in links]
        assert not left, f"left behind: {left}"


@pytest.fixture
def net():
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    missing = [t for t in ("ip", "nft") if shutil.which(t) is None]
    assert not missing, f"{missing} missing: install iproute2 and nftables (scripts/setup.sh)"
    n = Net()
    yield n
    n.close()


def start_pair(net, tmp_path, shared_cache, build_proc, epmd, mode="part"):
    """Node a in namespace a and node b in b, each running dist_node in
    mode (part: linked to and monitoring each other, once this returns).
    epmd: named NAME@ADDR, listening on PORT, found through an EPMD in each
    namespace (started by the node); else EPMD-less, NAME@ADDR:PORT."""
    guest = build_proc("dist_node.c")
    env = dict(os.environ, WISP_CACHE_DIR=str(shared_cache), WISP_BACKGROUND_COMPILE="0",
               HOME=str(tmp_path), ERL_EPMD_PORT="4369")
    names = [f"{alive}@{addr}" + ("" if epmd else f":{PORT}")
             for alive, addr in zip(("a", "b"), ADDRS)]
    nodes = []
    for side in (0, 1):
        extra = ("--dist-port", PORT) if epmd else ()
        nodes.append(net.node(side, [WISP, "run", "--name", names[side], "--cookie", COOKIE,
                                     "--net-ticktime", TICK, *extra, guest, mode,
                                     names[1 - side]], env))
    for n in nodes:
        n.wait(r"^linked$" if mode == "part" else r"^ready$", 60)
    return nodes


def check_stream(got, confirmed, what):
    """got: the numbers a node received, in order. They must be a run
    1..P with P >= confirmed (everything sent while connected before the
    cut arrived), then, after a gap (what went into the lost connection or
    to a node that was down: dropped), one run to the end (everything sent
    over the new connection arrived): no duplicate, nothing out of order."""
    assert all(x < y for x, y in zip(got, got[1:])), f"{what}: not strictly increasing: {got}"
    p = 0
    while p < len(got) and got[p] == p + 1:
        p += 1
    assert p >= confirmed, f"{what}: lost {p + 1} of the numbers sent before the cut: {got}"
    tail = got[p:]
    assert tail, f"{what}: nothing after the heal: {got}"
    assert tail[0] > p + 1, f"{what}: no gap: {got}"
    assert tail == list(range(tail[0], tail[0] + len(tail))), \
        f"{what}: a second gap, after the heal: {got}"


@pytest.mark.parametrize("epmd", [False, True], ids=["epmd-less", "epmd"])
def test_partition_downs_both_sides_and_heals_without_duplicates(net, tmp_path, shared_cache,
                                                                 build_proc, epmd):
    if epmd and shutil.which("epmd") is None:
        pytest.skip("needs epmd (erlang-nox)")
    a, b = start_pair(net, tmp_path, shared_cache, build_proc, epmd)
    # The streams flow; each receiver has had what its sender sent by now.
    confirmed = {}
    for sender, receiver in ((a, b), (b, a)):
        sender.wait(r"^sent 10$", 20)
        last = sender.numbers("sent")[-1]
        receiver.wait(rf"^got {last}$", 20)
        confirmed[receiver] = last
    mark = {n: n.count() for n in (a, b)}
    t_cut = time.monotonic()
    net.cut()

    # Both sides lose the other: noconnection to the link and the monitor,
    # after the tick time (not at once: nothing told them), within 2x.
    for n in (a, b):
        for what in ("exit", "down"):
            i, t, line = n.wait(rf"^{what} ", 2 * TICK + 2, since=mark[n])
            assert line == f"{what} {NOCONNECTION}", line
            assert t - t_cut >= TICK / 2, f"{what} {t - t_cut:.1f} s after the cut"
    # Both sides keep sending while apart (to a node that is down).
    a.wait(r"^sent ", 5, since=a.count())
    b.wait(r"^sent ", 5, since=b.count())

    net.heal()
    # A send connects again; links and monitors made anew; the streams
    # flow again.
    for n in (a, b):
        i, _, _ = n.wait(r"^relinked$", 30, since=mark[n])
        got_after = n.numbers("got", upto=i)[-1]
        n.wait(rf"^got {got_after + 20}$", 20, since=i)
    for n in (a, b):
        err = n.stop()
        assert "disconnected: no answer within the tick time" in err, err
    for n, name in ((a, "a"), (b, "b")):
        check_stream(n.numbers("got"), confirmed[n], f"node {name}")


def test_killed_node_gives_noconnection_on_the_other_side(net, tmp_path, shared_cache,
                                                          build_proc):
    """kill -9 of the node in one namespace: the other's link and monitor
    get noconnection within the tick time."""
    a, b = start_pair(net, tmp_path, shared_cache, build_proc, epmd=False)
    b.wait(r"^got 5$", 20)
    mark = b.count()
    a.proc.kill()                        # kill -9 in namespace a
    for what in ("exit", "down"):
        _, _, line = b.wait(rf"^{what} ", TICK, since=mark)
        assert line == f"{what} {NOCONNECTION}", line
    # b lives on, sending into the void.
    b.wait(r"^sent ", 5, since=b.count())
    assert b.proc.poll() is None


def test_a_restarted_node_is_a_new_incarnation(net, tmp_path, shared_cache, build_proc):
    """kill -9 and start again, same name and port: what b sends to a pid
    of the dead incarnation never reaches the new one's processes (whose
    pids may be the same numbers), and the new incarnation is reachable."""
    a, b = start_pair(net, tmp_path, shared_cache, build_proc, epmd=False)
    b.wait(r"^got 5$", 20)
    mark = b.count()
    # The new incarnation listens at once but waits a second before it
    # says hello: meanwhile b's stream (to the old pid) reaches the node.
    a2 = net.restart(a, 1000)
    for what in ("exit", "down"):
        _, _, line = b.wait(rf"^{what} ", TICK, since=mark)
        assert line == f"{what} {NOCONNECTION}", line
    a2.wait(r"^linked$", 30)
    # b meets the new incarnation's process (another pid) and streams to it.
    i, _, _ = b.wait(r"^met$", 30, since=mark)
    _, _, line = b.wait(r"^sent ", 5, since=i)
    first = int(line.split()[1])
    a2.wait(rf"^got {first + 10}$", 20)
    got = a2.numbers("got")
    assert got == list(range(first, first + len(got))), \
        f"sent to the dead incarnation, got by the new one: {got} (first sent to it: {first})"
    # And the new incarnation's stream reaches b.
    b.wait(r"^got 10$", 20, since=i)


def test_a_node_restarted_behind_a_partition_replaces_the_stale_connection(
        net, tmp_path, shared_cache, build_proc):
    """kill -9 while cut off: b never sees the connection close. A new
    incarnation connects while b still holds the old connection (whose
    packets are still dropped): b takes the new one, drops the old (the
    dead incarnation's link and monitor get noconnection), and the two
    talk; nothing b sent to the dead incarnation reaches the new one."""
    a, b = start_pair(net, tmp_path, shared_cache, build_proc, epmd=False)
    b.wait(r"^got 5$", 20)
    flow = net.flow()
    net.cut()
    mark = b.count()
    a.stop()                               # kill -9, unseen by b
    net.cut(flow)                          # all but the old connection pass
    a2 = net.restart(a)
    a2.wait(r"^linked$", 30)
    i, _, _ = b.wait(r"^met$", 30, since=mark)
    _, _, line = b.wait(r"^sent ", 5, since=i)
    first = int(line.split()[1])
    a2.wait(rf"^got {first + 10}$", 20)
    got = a2.numbers("got")
    assert got == list(range(first, first + len(got))), (got, first)
    b.wait(r"^got 10$", 20, since=i)
    for what in ("exit", "down"):
        _, _, line = b.wait(rf"^{what} ", 2 * TICK + 2, since=mark)
        assert line == f"{what} {NOCONNECTION}", line
    err = b.stop()
    assert "a@10.200.0.1 disconnected: a new incarnation of it connected" in err, err


def test_a_refused_simultaneous_connect_keeps_what_was_sent(net, tmp_path, shared_cache,
                                                           build_proc):
    """Each node sends to the other before they are connected: both dial at
    once. b, the greater name, refuses a's attempt (status nok: its own goes
    on), and a must keep its message for the connection b's attempt makes,
    as OTP does, not drop it. nft holds b's attempt back (connections to
    a's distribution port are dropped) until a's has been refused."""
    if shutil.which("epmd") is None:
        pytest.skip("needs epmd (erlang-nox)")
    a, b = start_pair(net, tmp_path, shared_cache, build_proc, epmd=True, mode="ctl")
    net.block(f"tcp dport {PORT}", None)
    b.send("send from-b")
    b.wait(r"^sent from-b$", 10)            # b is connecting (its SYNs dropped)
    a.send("send from-a")
    b.wait_err("refused a connection: handshake with a@10.200.0.1: refused with status nok", 10)
    net.heal()                              # b's next SYN gets through
    a.wait(r"^got from-b$", 20)
    b.wait(r"^got from-a$", 20)
