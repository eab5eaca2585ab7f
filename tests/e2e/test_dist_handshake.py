"""Distribution set-up against real Erlang: the EPMD client (src/dist/epmd.c)
and the version 6 handshake (src/dist/handshake.c), driven through
tests/dist/dist_node.c, a minimal node built over them.

Every test runs its own EPMD on a free loopback port (ERL_EPMD_PORT for the
erl nodes), so the host's EPMD on 4369 is never touched, and stops every
process it starts. erl nodes are named NAME@127.0.0.1 and listen on
loopback only. Fake peers written here (with their own MD5) misbehave at
each step of the handshake, in both roles; each has a well-behaved variant
that must succeed, so a refusal is the misbehaviour's doing.
"""
import hashlib
import os
import queue
import random
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import ROOT

UNIT_DIR = Path(os.environ.get("WISP_UNIT_DIR", ROOT / "build" / "default" / "tests"))
NODE = UNIT_DIR / "dist_node"
COOKIE = "dist-test-cookie"

# handshake.h's flags
PUBLISHED = 0x1
MAP_TAG = 0x20000
DIGEST_25 = 0x4000000
NAME_ME = 1 << 33
MANDATORY = 0x4 | 0x10 | 0x100 | 0x80 | 0x200 | 0x400 | 0x800 | 0x10000 | MAP_TAG | 0x40000 | 0x1000000
WISP_FLAGS = (MANDATORY | DIGEST_25 | PUBLISHED | 0x8 | 0x20 | 0x80000 | 0x100000 | 0x400000
              | 0x2000000 | (1 << 34))

# An erl that evaluates one expression per line of stdin and answers
# "@@ <term>" on one line (log lines from erl itself are told apart).
REPL = ('R = fun R() -> case io:get_line("") of eof -> halt(); L -> '
        'try {ok, T, _} = erl_scan:string(L), {ok, E} = erl_parse:parse_exprs(T), '
        '{value, V, _} = erl_eval:exprs(E, []), '
        'io:format("@@ ~s~n", [io_lib:print(V, 1, 1000000, -1)]) '
        'catch C:X -> io:format("@@ {exception,~p,~p}~n", [C, X]) end, R() end end, R().')


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lines:
    """A process's stdout, line by line, with a timeout per line."""

    def __init__(self, proc):
        self.proc = proc
        self.q = queue.Queue()
        self.seen = []
        self.ended = False
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            self.q.put(line.rstrip("\n"))
        self.q.put(None)

    def rest(self, timeout=10):
        """Every line up to the end of the output (the process has ended)."""
        end = time.monotonic() + timeout
        while not self.ended and time.monotonic() < end:
            try:
                line = self.q.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                self.ended = True
                break
            self.seen.append(line)
        return self.seen

    def next(self, timeout=30, prefix=""):
        """The next line starting with prefix (others are kept in .seen)."""
        end = time.monotonic() + timeout
        while True:
            try:
                line = self.q.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line {prefix!r} within {timeout} s; saw {self.seen}")
            if line is None:
                self.ended = True
                raise AssertionError(f"process ended before a line {prefix!r}; saw {self.seen}")
            self.seen.append(line)
            if line.startswith(prefix):
                return line


class Procs:
    """Every process a test starts, stopped at its end (stdin closed, then killed)."""

    def __init__(self, tmp_path, epmd_port):
        self.tmp = tmp_path
        self.epmd_port = epmd_port
        self.procs = []

    def start(self, argv, env=None):
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, env=env)
        self.procs.append(p)
        p.lines = Lines(p)
        return p

    def node(self, *args):
        """A long-lived dist_node (register, connect, accept)."""
        return self.start([str(NODE), *map(str, args)])

    def erl(self, name, cookie=COOKIE):
        env = dict(os.environ, ERL_EPMD_PORT=str(self.epmd_port), HOME=str(self.tmp))
        p = self.start(["erl", "-name", f"{name}@127.0.0.1", "-setcookie", cookie, "-noshell",
                        "-start_epmd", "false", "-kernel", "inet_dist_use_interface",
                        "{127,0,0,1}", "-eval", REPL], env=env)
        erl = Erl(p)
        assert erl.eval("node().") == f"'{name}@127.0.0.1'"
        return erl

    @staticmethod
    def stop(p):
        """Stop p; a sanitizer's report in its output fails the test."""
        if p.poll() is None:
            try:
                p.stdin.close()
                p.wait(timeout=10)
            except (subprocess.TimeoutExpired, BrokenPipeError):
                p.kill()
        p.wait(timeout=10)
        reports = [line for line in p.lines.rest() if "Sanitizer" in line]
        assert not reports, reports

    def stop_all(self):
        for p in self.procs:
            self.stop(p)


class Erl:
    def __init__(self, proc):
        self.proc = proc

    def eval(self, expr, timeout=30):
        self.proc.stdin.write(expr + "\n")
        self.proc.stdin.flush()
        return self.proc.lines.next(timeout, "@@ ")[3:]

    def until(self, expr, want, tries=50):
        """Evaluate expr until it gives want (nodeup/nodedown are asynchronous)."""
        for _ in range(tries):
            got = self.eval(expr)
            if got == want:
                return
            time.sleep(0.1)
        raise AssertionError(f"{expr} gave {got}, not {want}")


def run_node(*args, env=None):
    """A one-shot dist_node command: (exit status, output)."""
    r = subprocess.run([str(NODE), *map(str, args)], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=60, env=env)
    assert "Sanitizer" not in r.stderr, r.stderr
    return r.returncode, r.stdout.strip()


def epmd_answers(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"\x00\x01n")
            return s.recv(4) == struct.pack(">I", port)
    except OSError:
        return False


@pytest.fixture
def epmd():
    """A private EPMD on a free loopback port."""
    assert NODE.exists(), f"{NODE} was not built: run 'make unit'"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "ERL_EPMD_PORT"}
    p = subprocess.Popen(["epmd", "-port", str(port), "-address", "127.0.0.1"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        for _ in range(200):
            if epmd_answers(port):
                break
            assert p.poll() is None, "epmd exited"
            time.sleep(0.05)
        else:
            raise AssertionError("the test's epmd does not answer")
        yield port
    finally:
        p.kill()
        p.wait(timeout=10)


@pytest.fixture
def procs(tmp_path, epmd):
    ps = Procs(tmp_path, epmd)
    yield ps
    ps.stop_all()


# ---- EPMD ------------------------------------------------------------------


def test_registered_node_is_found_by_erl_and_unregistered_on_close(procs, epmd):
    reg = procs.node("register", epmd, "wisp1", 4242)
    line = reg.lines.next()
    assert line.startswith("registered creation="), line
    assert int(line.split("=")[1]) > 0
    erl = procs.erl("e1")
    assert erl.eval('lists:member({"wisp1", 4242}, element(2, net_adm:names("127.0.0.1"))).') == "true"
    # version 6 is what the peer learns from EPMD
    assert erl.eval('erl_epmd:port_please("wisp1", "127.0.0.1").') == "{port,4242,6}"
    # the name is taken while the first registration lives
    code, out = run_node("register", epmd, "wisp1", 4243)
    assert code == 1
    assert out.startswith("error EADDRINUSE: the node name 'wisp1' is already registered"), out
    code, out = run_node("register", epmd, "e1", 4243)
    assert out.startswith("error EADDRINUSE: the node name 'e1'"), out
    # closing the registration socket unregisters the name
    procs.stop(reg)
    erl.until('lists:keymember("wisp1", 1, element(2, net_adm:names("127.0.0.1"))).', "false")


def test_port_please_finds_erl(procs, epmd):
    erl = procs.erl("e1")
    port = erl.eval('proplists:get_value("e1", element(2, net_adm:names("127.0.0.1"))).')
    assert run_node("port-please", "127.0.0.1", epmd, "e1") == (0, f"port {port}")
    # a name that resolves to ::1 first: the next address (127.0.0.1) answers
    assert run_node("port-please", "localhost", epmd, "e1") == (0, f"port {port}")
    code, out = run_node("port-please", "127.0.0.1", epmd, "nosuch")
    assert code == 1
    assert out == (f"error ENOENT: no node named 'nosuch' is registered in EPMD on 127.0.0.1 "
                   f"port {epmd} (it has: e1)")


def test_epmd_not_running(epmd):
    port = free_port()
    for cmd in (["register", port, "w", 4242], ["port-please", "127.0.0.1", port, "w"],
                ["connect", "w@127.0.0.1", COOKIE, "e@127.0.0.1", port]):
        code, out = run_node(*cmd)
        assert code == 1
        assert out.startswith("error ECONNREFUSED: EPMD is not running on "), (cmd, out)
        assert str(port) in out


def epmd_daemons(port):
    """Pids of `epmd -daemon -port PORT` processes."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            argv = (d / "cmdline").read_bytes().split(b"\0")[:-1]
        except OSError:
            continue
        if argv and argv[0].endswith(b"epmd") and argv[1:] == [b"-daemon", b"-port", str(port).encode()]:
            pids.append(int(d.name))
    return pids


def test_ensure_running_starts_a_private_epmd(epmd):
    port = free_port()
    # -port is passed explicitly: an environment naming another port changes nothing
    env = dict(os.environ, ERL_EPMD_PORT=str(epmd))
    try:
        assert not epmd_answers(port)
        assert run_node("ensure", port, env=env) == (0, "running")
        assert epmd_answers(port)
        assert len(epmd_daemons(port)) == 1
        # already running: nothing new is started
        assert run_node("ensure", port, env=env) == (0, "running")
        assert len(epmd_daemons(port)) == 1
        code, out = run_node("port-please", "127.0.0.1", port, "nosuch")
        assert out.startswith("error ENOENT"), out
    finally:
        for pid in epmd_daemons(port):
            os.kill(pid, 9)
    code, out = run_node("start-daemon", "/nonexistent/epmd", free_port())
    assert code == 1
    assert out.startswith("error ENOENT: cannot start epmd (/nonexistent/epmd)"), out


def test_ensure_running_refuses_a_port_held_by_something_else(epmd):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]

        def serve():
            c, _ = s.accept()
            c.recv(16)
            c.sendall(b"HTTP/1.0 400\r\n")
            c.close()

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        code, out = run_node("ensure", port)
        t.join(timeout=10)
    assert code == 1
    assert out.startswith(f"error EPROTO: something listens on port {port} of this host, "
                          "but it does not answer as EPMD"), out


# ---- the handshake with erl -------------------------------------------------


def test_connect_to_erl_makes_a_visible_node(procs, epmd):
    erl = procs.erl("e1")
    node = procs.node("connect", "wisp1@127.0.0.1", COOKIE, "e1@127.0.0.1", epmd)
    line = node.lines.next(prefix="connected")
    assert line.startswith("connected name=e1@127.0.0.1 flags=0x"), line
    flags = int(line.split("flags=")[1].split()[0], 16)
    assert flags & MANDATORY == MANDATORY
    erl.until("nodes().", "['wisp1@127.0.0.1']")
    assert erl.eval("nodes(hidden).") == "[]"
    # the connection lives on: erl's view is the same a moment later, and
    # goes when the node goes
    time.sleep(1)
    assert erl.eval("nodes().") == "['wisp1@127.0.0.1']"
    procs.stop(node)
    erl.until("nodes().", "[]")


def test_without_published_flag_the_node_is_hidden(procs, epmd):
    erl = procs.erl("e1")
    node = procs.node("connect", "wisp1@127.0.0.1", COOKIE, "e1@127.0.0.1", epmd,
                      "--flags", f"{WISP_FLAGS & ~PUBLISHED:x}")
    assert node.lines.next().startswith("connected name=e1@127.0.0.1")
    erl.until("nodes(hidden).", "['wisp1@127.0.0.1']")
    assert erl.eval("nodes().") == "[]"


def test_erl_pings_the_node(procs, epmd):
    node = procs.node("accept", "wisp2@127.0.0.1", COOKIE, epmd)
    assert node.lines.next().startswith("listening port=")
    erl = procs.erl("e1")
    assert erl.eval("net_adm:ping('wisp2@127.0.0.1').") == "pong"
    assert node.lines.next(prefix="accepted").startswith("accepted name=e1@127.0.0.1 flags=0x")
    node.lines.next(prefix="answered ping from e1@127.0.0.1")
    assert erl.eval("nodes().") == "['wisp2@127.0.0.1']"
    assert erl.eval("net_adm:ping('wisp2@127.0.0.1').") == "pong"    # same connection


def test_wrong_cookie_connecting_to_erl(procs, epmd):
    erl = procs.erl("e1")
    code, out = run_node("connect", "wisp1@127.0.0.1", "not-the-cookie", "e1@127.0.0.1", epmd)
    assert code == 1
    assert out.startswith("error EACCES: handshake with e1@127.0.0.1: the cookie did not match"), out
    assert "not-the-cookie" not in out and COOKIE not in out
    erl.until("nodes(connected).", "[]")


def test_wrong_cookie_from_erl_then_a_good_peer(procs, epmd):
    node = procs.node("accept", "wisp2@127.0.0.1", COOKIE, epmd)
    node.lines.next(prefix="listening")
    bad = procs.erl("e1", cookie="not-the-cookie")
    assert bad.eval("net_adm:ping('wisp2@127.0.0.1').") == "pang"
    line = node.lines.next(prefix="refused")
    assert line.startswith("refused EACCES: handshake with e1@127.0.0.1: the cookie did not match"), line
    assert "not-the-cookie" not in line and COOKIE not in line
    good = procs.erl("e2")
    assert good.eval("net_adm:ping('wisp2@127.0.0.1').") == "pong"
    assert node.lines.next(prefix="accepted").startswith("accepted name=e2@127.0.0.1")


# ---- fake peers ---------------------------------------------------------------


def frame(body):
    return struct.pack(">H", len(body)) + body


def digest(challenge, cookie=COOKIE):
    return hashlib.md5(cookie.encode() + str(challenge).encode()).digest()


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise EOFError(f"{len(data)} of {n} bytes")
        data += chunk
    return data


def recv_frame(s):
    (n,) = struct.unpack(">H", recv_exact(s, 2))
    return recv_exact(s, n)


def name_msg(name, flags=WISP_FLAGS, tag=b"N"):
    return frame(tag + struct.pack(">QIH", flags, 77, len(name)) + name.encode())


def challenge_msg(name, challenge, flags=WISP_FLAGS):
    return frame(b"N" + struct.pack(">QIIH", flags, challenge, 78, len(name)) + name.encode())


FAKE = "fake@127.0.0.1"

# What the fake acceptor does once it has read the node's name, and the
# error the node must report.
ACCEPTOR_STEPS = {
    "good": None,
    "garbage_status": "EPROTO",
    "truncated_status": "ECONNRESET",
    "oversized_status": "EMSGSIZE",
    "close_before_status": "ECONNRESET",
    "status_not_allowed": "EPERM",
    "old_challenge": "EPROTONOSUPPORT",
    "challenge_missing_flags": "EPROTONOSUPPORT",
    "challenge_wrong_name": "EPROTO",
    "truncated_challenge": "ECONNRESET",
    "wrong_ack_digest": "EACCES",
    "hang_up_at_ack": "EACCES",
    "truncated_ack": "ECONNRESET",
    "garbage_ack": "EPROTO",
    "silent": "ETIMEDOUT",
}


def fake_acceptor(sock, step, result):
    c, _ = sock.accept()
    with c:
        name = recv_frame(c)
        result["name"] = name
        ch = random.getrandbits(32)
        if step == "garbage_status":
            c.sendall(frame(b"\x00garbage"))
        elif step == "truncated_status":
            c.sendall(b"\x00\x05so")
        elif step == "oversized_status":
            c.sendall(b"\xff\xf0s")
        elif step == "close_before_status":
            pass
        elif step == "status_not_allowed":
            c.sendall(frame(b"snot_allowed"))
        elif step == "silent":
            time.sleep(3)
        else:
            c.sendall(frame(b"sok"))
            if step == "old_challenge":
                c.sendall(frame(b"n\x00\x05" + struct.pack(">II", WISP_FLAGS & 0xffffffff, ch) + FAKE.encode()))
            elif step == "challenge_missing_flags":
                c.sendall(challenge_msg(FAKE, ch, WISP_FLAGS & ~(MAP_TAG | DIGEST_25)))
            elif step == "challenge_wrong_name":
                c.sendall(challenge_msg("other@127.0.0.1", ch))
            elif step == "truncated_challenge":
                c.sendall(challenge_msg(FAKE, ch)[:12])
            else:
                c.sendall(challenge_msg(FAKE, ch))
                reply = recv_frame(c)
                result["reply_ok"] = reply[0:1] == b"r" and reply[5:] == digest(ch)
                theirs = struct.unpack(">I", reply[1:5])[0]
                if step == "good":
                    c.sendall(frame(b"a" + digest(theirs)))
                    c.recv(1)              # until the node closes
                elif step == "wrong_ack_digest":
                    c.sendall(frame(b"a" + digest(theirs, "other-cookie")))
                elif step == "truncated_ack":
                    c.sendall(frame(b"a" + digest(theirs))[:9])
                elif step == "garbage_ack":
                    c.sendall(frame(b"z" + digest(theirs)))


@pytest.mark.parametrize("step", list(ACCEPTOR_STEPS))
def test_fake_acceptor_misbehaves(procs, step):
    result = {}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        t = threading.Thread(target=fake_acceptor, args=(s, step, result), daemon=True)
        t.start()
        node = procs.node("connect", "wisp1@127.0.0.1", COOKIE, FAKE, 1, "--port",
                          s.getsockname()[1], "--timeout", 1500)
        line = node.lines.next()
        want = ACCEPTOR_STEPS[step]
        if want is None:
            assert line.startswith(f"connected name={FAKE} flags=0x{WISP_FLAGS:x} creation=78"), line
            assert result["reply_ok"]
        else:
            assert line.startswith(f"error {want}: handshake with {FAKE}: "), line
        procs.stop(node)
        t.join(timeout=10)
    # the node introduced itself properly in every case
    name = result["name"]
    assert name[:1] == b"N" and name[15:] == b"wisp1@127.0.0.1"
    assert struct.unpack(">Q", name[1:9])[0] == WISP_FLAGS


def fake_initiator(port, step):
    """Connect to the node as FAKE and misbehave at `step`; returns what the
    node sent back (its status, if it got that far)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        if step == "silent":
            time.sleep(2)
            return None
        if step == "garbage_name":
            c.sendall(frame(b"Xgarbage"))
        elif step == "old_name":
            c.sendall(frame(b"n\x00\x05" + struct.pack(">I", WISP_FLAGS & 0xffffffff) + FAKE.encode()))
        elif step == "truncated_name":
            c.sendall(name_msg(FAKE)[:10])
        elif step == "oversized_name":
            c.sendall(b"\x10\x00N" + b"\x00" * 100)
        elif step == "name_missing_flags":
            c.sendall(name_msg(FAKE, WISP_FLAGS & ~(MAP_TAG | DIGEST_25)))
        elif step == "name_me":
            c.sendall(name_msg(FAKE, WISP_FLAGS | NAME_ME))
        else:
            c.sendall(name_msg(FAKE))
        if step == "truncated_name":
            c.shutdown(socket.SHUT_WR)
        try:
            status = recv_frame(c)
        except (EOFError, ConnectionResetError):
            return None
        if status != b"sok":
            return status
        challenge = recv_frame(c)
        ch = struct.unpack(">I", challenge[9:13])[0]
        mine = random.getrandbits(32)
        if step == "wrong_reply_digest":
            c.sendall(frame(b"r" + struct.pack(">I", mine) + digest(ch, "other-cookie")))
        elif step == "truncated_reply":
            c.sendall(frame(b"r" + struct.pack(">I", mine) + digest(ch))[:10])
            c.shutdown(socket.SHUT_WR)
        elif step == "complement":
            c.sendall(frame(b"c" + struct.pack(">II", 0, 1)))
        else:
            c.sendall(frame(b"r" + struct.pack(">I", mine) + digest(ch)))
            ack = recv_frame(c)
            assert ack == b"a" + digest(mine), "the node's ack does not answer our challenge"
            return b"acked"
        try:
            return recv_frame(c)
        except (EOFError, ConnectionResetError):
            return None


INITIATOR_STEPS = {
    "garbage_name": "EPROTO",
    "old_name": "EPROTONOSUPPORT",
    "truncated_name": "ECONNRESET",
    "oversized_name": "EMSGSIZE",
    "name_missing_flags": "EPROTONOSUPPORT",
    "name_me": "EPROTONOSUPPORT",
    "wrong_reply_digest": "EACCES",
    "truncated_reply": "ECONNRESET",
    "complement": "EPROTONOSUPPORT",
    "silent": "ETIMEDOUT",
}


def test_fake_initiators_misbehave_and_the_node_lives(procs):
    """One accepting node meets every misbehaving initiator in turn, refuses
    each with its own error, and still completes a good handshake after."""
    node = procs.node("accept", "wisp2@127.0.0.1", COOKIE, 1, "--no-register",
                      "--timeout", 1000)
    port = int(node.lines.next(prefix="listening").split("port=")[1].split()[0])
    for step, want in INITIATOR_STEPS.items():
        got = fake_initiator(port, step)
        line = node.lines.next(prefix="refused")
        assert line.startswith(f"refused {want}: handshake with "), (step, line)
        if step in ("name_missing_flags", "name_me"):
            assert got == b"snot_allowed", step
    assert fake_initiator(port, "good") == b"acked"
    line = node.lines.next(prefix="accepted")
    assert line == f"accepted name={FAKE} flags=0x{WISP_FLAGS:x} creation=77"
