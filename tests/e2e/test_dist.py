"""Distribution (issue 13): wisp nodes with each other and with real BEAM
nodes, over loopback, with a private EPMD per test (ERL_EPMD_PORT), so no
test touches a system EPMD or another test's nodes.

The guest is tests/guests/c/dist_node.c (its header lists what it answers).
The BEAM side runs `erl -sname ... -eval`, printing what it saw; both sides'
outputs are asserted.
"""
import hashlib
import os
import queue
import re
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import WISP

pytestmark = pytest.mark.skipif(shutil.which("erl") is None or shutil.which("epmd") is None,
                                reason="needs erlang-nox (erl, epmd)")

COOKIE = "wisp-test-cookie"
HOST = socket.gethostname().split(".")[0]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LineProc:
    """A process (a wisp node, an erl node) whose stdout is read line by line."""

    def __init__(self, argv, env):
        self.proc = subprocess.Popen([str(a) for a in argv], env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines = queue.Queue()
        self.seen = []
        self.err = None
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_line(self, pattern, timeout=20):
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        for line in self.seen:
            if rx.search(line):
                return line
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            if rx.search(line):
                return line
        raise AssertionError(f"no line matching {pattern!r}; seen: {self.seen}; "
                             f"stderr: {self.stderr_now()}")

    def stderr_now(self):
        if self.proc.poll() is None:
            return "(running)"
        return self.proc.stderr.read()

    def stop(self):
        if self.err is not None:
            return self.err
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
        self.proc.wait(timeout=10)
        self.err = self.proc.stderr.read()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return self.err


class Node(LineProc):
    """A `wisp run` node (args: what follows `wisp`)."""

    def __init__(self, args, env):
        super().__init__([WISP, *args], env)


class Cluster:
    def __init__(self, tmp_path, cache, build_proc):
        self.epmd_port = free_port()
        self.env = dict(os.environ)
        self.env.update(ERL_EPMD_PORT=str(self.epmd_port), WISP_CACHE_DIR=str(cache),
                        WISP_BACKGROUND_COMPILE="0", HOME=str(tmp_path))
        self.guest = build_proc("dist_node.c")
        # The same program built differently: other bytes, another module.
        self.other_guest = build_proc("dist_node.c", "-DSHIPPED=1", "-O1")
        self.build = build_proc
        self.nodes = []
        self.tmp = tmp_path

    def wisp(self, name, *args, extra=(), guest=None, env=None):
        n = Node(["run", "--sname", name, "--cookie", COOKIE, *extra, guest or self.guest, *args],
                 {**self.env, **(env or {})})
        self.nodes.append(n)
        return n

    def erl(self, name, expr, cookie=COOKIE, timeout=60):
        """Run expr on a fresh BEAM node; its stdout."""
        r = subprocess.run(["erl", "-sname", name, "-setcookie", cookie, "-noshell",
                            "-eval", expr + ", init:stop().", ],
                           env=self.env, capture_output=True, text=True, timeout=timeout,
                           cwd=self.tmp)   # (a crash dump lands there, not in the tree)
        return r.stdout + r.stderr

    def close(self):
        errs = [n.stop() for n in self.nodes]
        subprocess.run(["epmd", "-port", str(self.epmd_port), "-kill"], env=self.env,
                       capture_output=True, timeout=10)
        return errs


SANITIZER_REPORT = re.compile(r"Sanitizer|runtime error:")


@pytest.fixture
def cluster(tmp_path, shared_cache, build_proc):
    c = Cluster(tmp_path, shared_cache, build_proc)
    yield c
    # Under a sanitizer build (make check), a report in any node's output
    # fails the test that ran it.
    reports = [line for err in c.close() for line in (err or "").splitlines()
               if SANITIZER_REPORT.search(line)]
    assert not reports, "\n".join(reports[:20])


def node(name):
    return f"{name}@{HOST}"


def test_beam_pings_sends_and_sees_a_visible_node(cluster):
    w = cluster.wisp("w1", "serve")
    w.wait_line(r"^ready w1@")
    out = cluster.erl("e1", f"""
        W = '{node('w1')}',
        io:format("ping ~p~n", [net_adm:ping(W)]),
        io:format("visible ~p~n", [lists:member(W, nodes())]),
        {{echo, W}} ! {{5, <<"hello">>}},
        receive M -> io:format("got ~p~n", [M]) after 5000 -> io:format("timeout~n") end""")
    assert "ping pong" in out
    assert "visible true" in out, out   # nodes(), not only nodes(hidden)
    assert 'got {6,<<"hello">>}' in out, out


def expect_trap_exit(client, name):
    """client printed the EXIT of echo on node `name`, with the trap's reason,
    and ended well."""
    line = client.wait_line(r"^exit ")
    assert line.startswith(f"exit {node(name)} 2 unreachable"), line
    assert client.proc.wait(timeout=20) == 0


def test_wisp_to_wisp_by_name_link_and_trap_reason(cluster):
    a = cluster.wisp("wa", "serve")
    a.wait_line(r"^ready")
    b = cluster.wisp("wb", "client", node("wa"))
    assert b.wait_line(r"^reply") == "reply 6 hello"
    # The linked echo trapped: the client (trapping exits) gets its real reason.
    expect_trap_exit(b, "wa")


def test_a_nodes_last_words_sent_while_its_connection_came_up_arrive(cluster):
    # The echo links, replies and traps (ending its node) while its node is
    # still bringing the client's connection up (widened to 300 ms here):
    # what it sent was held for that connection, and the node's stop must
    # write it out rather than close with it (CI saw noconnection instead
    # of the trap, about once in 60 runs of the test above).
    a = cluster.wisp("wl", "serve", env={"WISP_DIST_TEST_UP_DELAY_MS": "300"})
    a.wait_line(r"^ready")
    b = cluster.wisp("wm", "lastwords", node("wl"))
    assert b.wait_line(r"^linked") == "linked"
    expect_trap_exit(b, "wl")


def test_beam_links_monitors_and_kills(cluster):
    w = cluster.wisp("w2", "serve")
    w.wait_line(r"^ready")
    out = cluster.erl("e2", f"""
        W = '{node('w2')}',
        process_flag(trap_exit, true),
        {{echo, W}} ! {{150, <<>>}},
        P = receive {{pid, Pid}} -> Pid after 5000 -> none end,
        io:format("pid node ~p~n", [node(P)]),
        link(P),
        Ref = erlang:monitor(process, P),
        P ! {{120, <<>>}},
        receive {{'EXIT', P, R1}} -> io:format("exit ~p~n", [R1]) after 5000 -> io:format("noexit~n") end,
        receive {{'DOWN', Ref, process, P, R2}} -> io:format("down ~p~n", [R2]) after 5000 -> io:format("nodown~n") end,
        receive {{'EXIT', P2, R3}} -> io:format("late ~p ~p~n", [P2, R3]) after 300 -> ok end""")
    assert f"pid node '{node('w2')}'" in out or f"pid node {node('w2')}" in out, out
    assert "exit {trap,<<\"unreachable" in out, out
    assert "down {trap,<<\"unreachable" in out, out


def test_beam_exit_reasons_reach_wisp(cluster):
    w = cluster.wisp("w3", "serve")
    w.wait_line(r"^ready")
    out = cluster.erl("e3", f"""
        W = '{node('w3')}',
        {{echo, W}} ! {{150, <<>>}},
        P = receive {{pid, Pid}} -> Pid after 5000 -> none end,
        Me = self(),
        %% A process linked to the wisp echo (which traps exits) ends with a
        %% reason of its own; another is monitored by echo and killed.
        A = spawn(fun() -> link(P), Me ! linked, receive go -> exit(my_reason) end end),
        receive linked -> ok end,
        A ! go,
        B = spawn(fun() -> P ! {{110, <<>>}}, receive never -> ok end end),
        timer:sleep(300),
        exit(B, kill),
        %% exit(P, kill) from Erlang kills it, trapping or not.
        timer:sleep(300),
        exit(P, kill),
        timer:sleep(300),
        io:format("done~n")""")
    # my_reason as a term: SMALL_ATOM_UTF8 'my_reason'.
    w.wait_line(r"^exit " + node("e3") + r" 8 7709" + "my_reason".encode().hex())
    w.wait_line(r"^down " + node("e3") + r" 3 $")   # killed
    assert w.proc.wait(timeout=20) != 0    # killed by exit(P, kill)


def test_node_that_stops_answering_is_down_after_the_tick_time(cluster):
    a = cluster.wisp("wt1", "serve", extra=("--net-ticktime", "4"))
    a.wait_line(r"^ready")
    b = cluster.wisp("wt2", "watch", node("wt1"), extra=("--net-ticktime", "4"))
    b.wait_line(r"^watching")
    a.proc.send_signal(signal.SIGSTOP)      # silent, connection still open
    t0 = time.monotonic()
    line = b.wait_line(r"^down ", timeout=30)
    assert line == "down 7", line          # NOCONNECTION
    assert time.monotonic() - t0 < 15
    a.proc.send_signal(signal.SIGCONT)


def test_killed_node_gives_noconnection(cluster):
    a = cluster.wisp("wk1", "serve")
    a.wait_line(r"^ready")
    b = cluster.wisp("wk2", "watch", node("wk1"))
    b.wait_line(r"^watching")
    a.proc.kill()
    assert b.wait_line(r"^down ") == "down 7"
    assert b.proc.wait(timeout=20) == 0


def test_wrong_cookie_is_refused_and_the_node_lives(cluster):
    w = cluster.wisp("w4", "serve")
    w.wait_line(r"^ready")
    out = cluster.erl("e4", f"io:format(\"ping ~p~n\", [net_adm:ping('{node('w4')}')])",
                      cookie="not-the-cookie")
    assert "ping pang" in out, out
    out = cluster.erl("e5", f"io:format(\"ping ~p~n\", [net_adm:ping('{node('w4')}')])")
    assert "ping pong" in out, out
    assert w.proc.poll() is None
    err = cluster.nodes[0].stop()
    assert "cookie" in err, err


def _handshake(port, name, cookie, alive=None):
    """Connect to a node as node `name` (a minimal v6 initiator, creation
    77); the socket. alive: the node holds a connection to this incarnation
    already, so its status must be "alive", answered with `alive` (e.g.
    b"strue"); a refusal after it raises ConnectionError."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)

    def send(b):
        s.sendall(struct.pack(">H", len(b)) + b)

    def recv():
        n = struct.unpack(">H", _exact(s, 2))[0]
        return _exact(s, n)

    flags = 0x1 | 0x4 | 0x8 | 0x10 | 0x80 | 0x100 | 0x200 | 0x400 | 0x800 | 0x10000 | \
        0x20000 | 0x40000 | 0x1000000 | 0x4000000
    send(b"N" + struct.pack(">QIH", flags, 77, len(name)) + name.encode())
    status = recv()
    if alive is None:
        assert status[:3] == b"sok", status
    else:
        assert status == b"salive", status
        send(alive)
    ch = recv()
    assert ch[:1] == b"N"
    challenge = struct.unpack(">I", ch[9:13])[0]
    digest = hashlib.md5((cookie + str(challenge)).encode()).digest()
    send(b"r" + struct.pack(">I", 12345) + digest)
    ack = recv()
    assert ack[:1] == b"a"
    return s


def _closed(s, timeout=20):
    s.settimeout(timeout)
    try:
        while s.recv(65536):
            pass
        return True
    except ConnectionError:
        return True
    except socket.timeout:
        return False


def test_the_same_incarnation_connecting_again_replaces_its_old_connection(cluster):
    """A peer we are connected to connects again (its side of the old
    connection is gone, ours is not yet): status "alive"; once it answers
    "true" and proves the cookie, the old connection is dropped and the new
    one serves at once (no wait for our tick time). With a wrong cookie, the
    old connection stays."""
    w = cluster.wisp("wal", "serve")
    w.wait_line(r"^ready")
    port = _dist_port(cluster, "wal")
    peer = node("again")
    me = _pid(peer, 1, 1, 77)
    old = _handshake(port, peer, COOKIE)
    old.sendall(_frame(_tuple(_int(6), me, _atom(""), _atom("echo")), _tuple(_int(5), _bin(b"one"))))
    assert any(b"one" in f for f in _frames(old, 10))
    with pytest.raises(ConnectionError):
        _handshake(port, peer, "not the cookie", alive=b"strue")
    assert not _closed(old, 2)            # a wrong cookie cuts nothing
    new = _handshake(port, peer, COOKIE, alive=b"strue")
    assert _closed(old)
    new.sendall(_frame(_tuple(_int(6), me, _atom(""), _atom("echo")), _tuple(_int(5), _bin(b"two"))))
    assert any(b"two" in f for f in _frames(new, 10))
    assert "it connected again" in cluster.nodes[0].stop()


def _exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise ConnectionError("closed")
        b += c
    return b


def _dist_port(cluster, alive):
    out = subprocess.run(["epmd", "-port", str(cluster.epmd_port), "-names"],
                         capture_output=True, text=True, env=cluster.env).stdout
    m = re.search(rf"name {alive} at port (\d+)", out)
    assert m, out
    return int(m.group(1))


@pytest.mark.parametrize("frame", [
    b"\x00\x00\x00\x03abc",                                   # not a pass-through frame
    b"\x00\x00\x00\x05p\x83h\x09a",                            # a tuple cut short
    b"\x00\x00\x00\x0cp\x83h\x03a\x02d\x00\x00" + b"\xff" * 3,  # SEND with garbage
    b"\xff\xff\xff\xf0",                                      # a frame over the limit
    b"\x00\x00\x00\x10p\x83l\xff\xff\xff\xff" + b"a\x01" * 3,  # a list claiming 4G elements
])
def test_garbage_after_the_handshake_closes_that_connection_only(cluster, frame):
    w = cluster.wisp("w5", "serve")
    w.wait_line(r"^ready")
    s = _handshake(_dist_port(cluster, "w5"), node("py"), COOKIE)
    s.sendall(frame)
    s.settimeout(10)
    closed = False
    try:
        while s.recv(4096):
            pass
        closed = True
    except (ConnectionError, socket.timeout):
        closed = True
    assert closed
    s.close()
    out = cluster.erl("e6", f"io:format(\"ping ~p~n\", [net_adm:ping('{node('w5')}')])")
    assert "ping pong" in out, out
    assert w.proc.poll() is None


def test_truncated_frame_then_close_leaves_the_node_alive(cluster):
    w = cluster.wisp("w6", "serve")
    w.wait_line(r"^ready")
    s = _handshake(_dist_port(cluster, "w6"), node("py2"), COOKIE)
    s.sendall(b"\x00\x00\x01\x00p\x83")       # says 256 bytes, sends 2, hangs up
    s.close()
    out = cluster.erl("e7", f"io:format(\"ping ~p~n\", [net_adm:ping('{node('w6')}')])")
    assert "ping pong" in out, out


def test_term_messages_keep_pids(cluster):
    """A term with pids in it goes to the guest and back: the pids it holds
    come back as the same Erlang pids."""
    w = cluster.wisp("w7", "serve")
    w.wait_line(r"^ready")
    out = cluster.erl("e8", f"""
        W = '{node('w7')}',
        Me = self(),
        T = {{hello, Me, [1, 2.5, "str", #{{k => Me}}], <<"bin">>}},
        {{echo, W}} ! T,
        receive R -> io:format("same ~p~n", [R =:= T]) after 5000 -> io:format("timeout~n") end""")
    assert "same true" in out, out


def test_epmd_is_started_when_absent(cluster):
    # No EPMD runs on this test's port yet: wisp starts one, as erl does.
    w = cluster.wisp("w8", "serve")
    w.wait_line(r"^ready")
    out = subprocess.run(["epmd", "-port", str(cluster.epmd_port), "-names"],
                         capture_output=True, text=True, env=cluster.env).stdout
    assert "name w8 at port" in out, out


def test_a_socket_cannot_move_to_another_node(cluster):
    a = cluster.wisp("ws1", "serve")
    a.wait_line(r"^ready")
    b = cluster.wisp("ws2", "sock", node("ws1"), extra=("--allow-listen", "127.0.0.1:*", "-v"))
    assert b.wait_line(r"^send_fd") == "send_fd 4"       # WISP_EINVAL
    assert b.wait_line(r"^still mine") == "still mine 1"
    assert b.proc.wait(timeout=20) == 0
    assert "cannot move to a process of another node" in b.stop()


def test_remote_spawn_ships_the_module_and_links_and_monitors(cluster):
    a = cluster.wisp("wr1", "serve", extra=("--allow-remote-spawn",))
    a.wait_line(r"^ready")
    b = cluster.wisp("wr2", "rspawn", node("wr1"))
    assert b.wait_line(r"^spawned") == "spawned 0"
    assert b.wait_line(r"^child on") == f"child on {node('wr1')}"
    assert b.wait_line(r"^hello") == f"hello from {node('wr1')}"
    lines = {b.wait_line(r"^exit "), b.wait_line(r"^down ")}
    assert lines == {"exit 2", "down 2"}, lines       # TRAP both ways
    assert b.proc.wait(timeout=20) == 0
    assert a.proc.poll() is None                      # the child's trap is its own


def test_remote_spawn_needs_the_nodes_permission(cluster):
    a = cluster.wisp("wr3", "serve")                  # no --allow-remote-spawn
    a.wait_line(r"^ready")
    b = cluster.wisp("wr4", "rspawn", node("wr3"), extra=("-v",))
    assert b.wait_line(r"^spawned") == "spawned 9"    # WISP_EPERM
    assert b.proc.wait(timeout=20) == 0
    assert "does not accept remote spawns" in b.stop()
    # The refusing node says why too, once.
    c = cluster.wisp("wr4b", "rspawn", node("wr3"))
    assert c.wait_line(r"^spawned") == "spawned 9"
    assert c.proc.wait(timeout=20) == 0
    err = a.stop()
    said = [line for line in err.splitlines() if "refused a remote spawn" in line]
    assert said == [f"wisp: dist: refused a remote spawn from {node('wr4')}: this node runs "
                    "without --allow-remote-spawn (said once)"], err


def test_remote_spawn_on_an_unknown_node(cluster):
    b = cluster.wisp("wr5", "rspawn", node("nobody"))
    assert b.wait_line(r"^spawned") == "spawned 8"    # WISP_ENOTFOUND
    assert b.proc.wait(timeout=30) == 0
    # The guest has only the code: stderr says why.
    assert (f"wisp: dist: cannot reach node {node('nobody')}: no node named 'nobody' is "
            f"registered in EPMD") in b.stop()


def test_why_a_node_cannot_be_reached_is_said_once_per_reason(cluster):
    """A guest that retries a connect gets a code each time; stderr says
    why once, not once per try, with the names EPMD has (a typo, often).
    So does --connect at start."""
    b = cluster.wisp("wy1", "reach", node("nobody"), "3", extra=("--connect", node("nobody")))
    assert [b.wait_line(r"^connect", timeout=30) for _ in range(3)] == ["connect 8"] * 3
    assert b.proc.wait(timeout=30) == 0
    err = b.stop()
    said = [line for line in err.splitlines() if "cannot reach node" in line]
    assert said == [f"wisp: dist: cannot reach node {node('nobody')}: no node named 'nobody' "
                    f"is registered in EPMD on {HOST} port {cluster.epmd_port} (it has: wy1)"], err
    assert f"--connect {node('nobody')}" in err, err
    # The cookie is wrong: that is what it says.
    a = cluster.wisp("wy2", "serve")
    a.wait_line(r"^ready")
    c = Node(["run", "--sname", "wy3", "--cookie", "not-" + COOKIE, cluster.guest, "reach",
              node("wy2"), "2"], cluster.env)
    cluster.nodes.append(c)
    assert [c.wait_line(r"^connect", timeout=30) for _ in range(2)] == ["connect 8"] * 2
    assert c.proc.wait(timeout=30) == 0
    said = [line for line in c.stop().splitlines() if "cannot reach node" in line]
    assert len(said) == 1 and "the cookie did not match" in said[0], said


def test_node_calls_in_a_runtime_that_is_no_node(cluster):
    """Without --sname a node call fails as for an unreachable node; -v
    says the run is no node."""
    b = Node(["run", "-v", cluster.guest, "rspawn", node("wr1")], cluster.env)
    cluster.nodes.append(b)
    assert b.wait_line(r"^spawned") == "spawned 8"    # WISP_ENOTFOUND
    assert b.proc.wait(timeout=30) == 0
    assert "wisp_node_spawn: this runtime is no node (wisp run --sname NAME" in b.stop()


def test_node_options_without_a_node_name_are_a_usage_error_at_once(cluster, tmp_path):
    # Said before the module is even read (it was said after compiling it).
    for opt in ("--allow-remote-spawn", "--allow-code-push"):
        r = subprocess.run([str(WISP), "run", opt, tmp_path / "missing.wasm"],
                           env=cluster.env, capture_output=True, text=True, timeout=30)
        assert r.returncode == 2, r
        assert r.stderr == ("wisp: --cookie, --connect, --dist-port, --net-ticktime, "
                            "--allow-remote-spawn and --allow-code-push need --name or "
                            "--sname\n"), r.stderr


def test_a_node_port_in_use_is_named(cluster):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run([str(WISP), "run", "--name", f"wp@127.0.0.1:{port}", "--cookie",
                            COOKIE, cluster.guest, "serve"], env=cluster.env,
                           capture_output=True, text=True, timeout=30)
    assert r.returncode == 1, r
    assert f"cannot listen for nodes on port {port}: Address already in use" in r.stderr, r.stderr


def test_remote_spawn_fetches_a_module_the_node_lacks(cluster):
    # Another module than the node runs: it must travel.
    assert hashlib.sha256(cluster.guest.read_bytes()).digest() != \
        hashlib.sha256(cluster.other_guest.read_bytes()).digest()
    a = cluster.wisp("wr6", "serve", extra=("--allow-remote-spawn",))
    a.wait_line(r"^ready")
    b = cluster.wisp("wr7", "rspawn", node("wr6"), guest=cluster.other_guest)
    assert b.wait_line(r"^spawned", timeout=60) == "spawned 0"
    assert b.wait_line(r"^hello") == f"hello from {node('wr6')}"
    assert {b.wait_line(r"^exit "), b.wait_line(r"^down ")} == {"exit 2", "down 2"}
    assert b.proc.wait(timeout=20) == 0
    # Spawned again: the module is there now (no second fetch needed).
    c = cluster.wisp("wr8", "rspawn", node("wr6"), guest=cluster.other_guest)
    assert c.wait_line(r"^spawned") == "spawned 0"
    assert c.wait_line(r"^hello") == f"hello from {node('wr6')}"
    # A third module: its own code runs, not the last one shipped (the
    # engine named modules by a reused /proc/self/fd path, which dlopen
    # took for the module already loaded under it).
    third = cluster.build("dist_node.c", "-DSHIPPED=2", "-O1")
    d = cluster.wisp("wr9", "rspawn", node("wr6"), guest=third)
    assert d.wait_line(r"^spawned", timeout=60) == "spawned 0"
    assert d.wait_line(r"^hello") == f"hello from {node('wr6')} build 2"


# ---- a hand-made peer (for what no honest node sends) ----

def _atom(s):
    b = s.encode()
    return b"w" + bytes([len(b)]) + b


def _int(v):
    return b"a" + bytes([v]) if 0 <= v < 256 else b"n\x08\x00" + v.to_bytes(8, "little")


def _bin(b):
    return b"m" + struct.pack(">I", len(b)) + b


def _tuple(*items):
    return b"h" + bytes([len(items)]) + b"".join(items)


def _pid(node_name, ident, serial, creation):
    return b"X" + _atom(node_name) + struct.pack(">III", ident, serial, creation)


def _frame(ctl, msg=None):
    body = b"p\x83" + ctl + (b"\x83" + msg if msg is not None else b"")
    return struct.pack(">I", len(body)) + body


def _frames(s, timeout=20):
    """Frames from s (ticks skipped), until the socket closes or times out."""
    s.settimeout(timeout)
    buf = b""
    while True:
        while len(buf) >= 4:
            n = struct.unpack(">I", buf[:4])[0]
            if len(buf) < 4 + n:
                break
            body, buf = buf[4:4 + n], buf[4 + n:]
            if n:
                yield body
        chunk = s.recv(65536)
        if not chunk:
            return
        buf += chunk


def test_a_shipped_module_that_does_not_match_its_hash_is_refused(cluster):
    a = cluster.wisp("wh1", "serve", extra=("--allow-remote-spawn",))
    a.wait_line(r"^ready")
    me = node("py3")
    s = _handshake(_dist_port(cluster, "wh1"), me, COOKIE)
    pid = _pid(me, 1, 1, 77)
    claimed = hashlib.sha256(b"the module I claim").digest()
    req = 12345
    s.sendall(_frame(_tuple(_int(6), pid, _atom(""), _atom("$wisp_spawn")),
                     _tuple(_atom("spawn"), _int(req), _bin(claimed), _int(1), _bin(b""),
                            _int(0), _int(0), b"j")))
    answer = None
    for f in _frames(s):
        if b"fetch" in f and claimed in f:          # the node asks us for the bytes
            s.sendall(_frame(_tuple(_int(6), pid, _atom(""), _atom("$wisp_code")),
                             _tuple(_atom("code"), _bin(claimed), _bin(b"\0asm other bytes"))))
        elif b"do not match" in f or b"cannot load" in f:
            answer = f
            break
    s.close()
    assert answer is not None and b"do not match its hash" in answer, answer
    assert a.proc.poll() is None
    out = cluster.erl("e9", f"io:format(\"ping ~p~n\", [net_adm:ping('{node('wh1')}')])")
    assert "ping pong" in out, out


def test_a_message_over_the_size_limit_drops_that_connection_only(cluster):
    w = cluster.wisp("wm1", "serve")
    w.wait_line(r"^ready")
    out = cluster.erl("e10", f"""
        W = '{node('wm1')}',
        pong = net_adm:ping(W),
        {{echo, W}} ! {{5, binary:copy(<<"x">>, 70 * 1024 * 1024)}},
        receive Big -> io:format("unexpected ~p~n", [size(element(2, Big))]) after 3000 -> ok end,
        io:format("ping again ~p~n", [net_adm:ping(W)]),
        {{echo, W}} ! {{5, <<"small">>}},
        receive M -> io:format("got ~p~n", [M]) after 5000 -> io:format("timeout~n") end""",
                      timeout=120)
    assert "unexpected" not in out, out
    assert "ping again pong" in out, out
    assert 'got {6,<<"small">>}' in out, out
    assert w.proc.poll() is None
    assert "over the size limit (64 MiB: a message that large cannot reach a wisp node)" \
        in cluster.nodes[0].stop()


def test_three_wisp_nodes_and_a_beam_node(cluster):
    """Every node reaches every other: a wisp node connected at start
    (--connect) to two others watches the third's echo; a BEAM node pings
    the three and hears back from each one's echo."""
    nodes = [cluster.wisp(f"w3n{i}", "serve") for i in range(3)]
    for n in nodes:
        n.wait_line(r"^ready")
    c = cluster.wisp("w3c", "watch", node("w3n0"),
                     extra=("--connect", node("w3n1"), "--connect", node("w3n2")))
    c.wait_line(r"^watching")
    names = [node(f"w3n{i}") for i in range(3)]
    atoms = ", ".join(f"'{n}'" for n in names)
    out = cluster.erl("e11", f"""
        Ns = [{atoms}],
        [pong = net_adm:ping(N) || N <- Ns],
        [{{echo, N}} ! {{5, atom_to_binary(N)}} || N <- Ns],
        Got = [receive {{6, B}} -> binary_to_list(B) after 5000 -> "timeout" end || _ <- Ns],
        io:format("got ~s~n", [string:join(lists:sort(Got), ",")]),
        io:format("visible ~p~n", [lists:all(fun(N) -> lists:member(N, nodes()) end, Ns)])""")
    assert "got " + ",".join(sorted(names)) in out, out
    assert "visible true" in out, out


def test_epmd_less_nodes(cluster, tmp_path):
    """NAME@HOST:PORT: a node listens there and registers nowhere; a peer
    named the same way is reached without EPMD."""
    pa, pb = free_port(), free_port()
    env = dict(cluster.env, ERL_EPMD_PORT="1")     # an EPMD there would be a bug
    a = Node(["run", "--name", f"ea@127.0.0.1:{pa}", "--cookie", COOKIE, cluster.guest, "serve"],
             env)
    cluster.nodes.append(a)
    a.wait_line(r"^ready ea@127.0.0.1")
    b = Node(["run", "--name", f"eb@127.0.0.1:{pb}", "--cookie", COOKIE, cluster.guest,
              "client", f"ea@127.0.0.1:{pa}"], env)
    cluster.nodes.append(b)
    assert b.wait_line(r"^reply") == "reply 6 hello"
    assert b.wait_line(r"^exit ").startswith("exit ea@127.0.0.1 2 unreachable")


def test_monitor_node(cluster):
    a = cluster.wisp("wn1", "serve")
    a.wait_line(r"^ready")
    b = cluster.wisp("wn2", "nodemon", node("wn1"))
    b.wait_line(r"^monitoring")
    a.proc.kill()
    assert b.wait_line(r"^nodedown") == f"nodedown 7 {node('wn1')}"
    # A node that cannot be reached: DOWN at once.
    c = cluster.wisp("wn3", "nodemon", node("nobody"))
    assert c.wait_line(r"^nodedown", timeout=30) == f"nodedown 7 {node('nobody')}"


def test_a_server_migrates_under_load_and_loses_nothing(cluster):
    """A counter server moves from one node to another halfway through a
    stream of requests sent to its old pid: every request is answered, in
    order, with the next count (the state moved, no message was lost or
    repeated); the replies come from the new node after the move; its name
    works on both nodes."""
    a = cluster.wisp("wm_a", "counter")
    a.wait_line(r"^ready")
    b = cluster.wisp("wm_b", "serve", extra=("--allow-remote-spawn",))
    b.wait_line(r"^ready")
    c = cluster.wisp("wm_c", "hammer", node("wm_a"), node("wm_b"), "2000")
    line = c.wait_line(r"^hammer|failed|got count", timeout=120)
    assert line == f"hammer ok 2000 {node('wm_a')} {node('wm_b')}", line
    assert c.proc.wait(timeout=30) == 0
    out = cluster.erl("e12", f"""
        {{counter, '{node('wm_a')}'}} ! {{62, <<>>}},
        R1 = receive {{63, _}} -> via_old_name after 5000 -> timeout end,
        {{counter, '{node('wm_b')}'}} ! {{62, <<>>}},
        R2 = receive {{63, _}} -> via_new_name after 5000 -> timeout end,
        io:format("~p ~p~n", [R1, R2])""")
    assert "via_old_name via_new_name" in out, out


def test_senders_learn_where_a_process_moved_and_keep_their_order(cluster):
    """A stream of casts to a counter's old pid, from a third node, across
    its move: none is lost or overtakes another (the counter checks their
    numbers). Once the old node has told the sender's node where the
    counter went, the old node is stopped (SIGSTOP: it forwards nothing
    more): the rest of the stream still arrives, sent to the new node
    directly."""
    a = cluster.wisp("wv_a", "counter")
    a.wait_line(r"^ready")
    b = cluster.wisp("wv_b", "serve", extra=("--allow-remote-spawn",))
    b.wait_line(r"^ready")
    c = cluster.wisp("wv_c", "stream", node("wv_a"), node("wv_b"), "20000", "pause")
    try:
        c.wait_line(r"^pause|failed|status", timeout=120)
        a.proc.send_signal(signal.SIGSTOP)
        line = c.wait_line(r"^stream|failed|status", timeout=120)
    finally:
        a.proc.send_signal(signal.SIGCONT)
    assert line == f"stream ok 20000 {node('wv_a')} {node('wv_b')}", line
    assert c.proc.wait(timeout=30) == 0


def test_a_stream_keeps_its_order_across_a_move_without_pause(cluster):
    """The same stream, the old node left running, several times: the
    redirection never lets a message overtake an older one."""
    a = cluster.wisp("wo_a", "counter")
    a.wait_line(r"^ready")
    b = cluster.wisp("wo_b", "serve", extra=("--allow-remote-spawn",))
    b.wait_line(r"^ready")
    c = cluster.wisp("wo_c", "stream", node("wo_a"), node("wo_b"), "50000")
    line = c.wait_line(r"^stream|failed|status", timeout=180)
    assert line == f"stream ok 50000 {node('wo_a')} {node('wo_b')}", line
