"""Distribution under attack (issue 13): a hostile peer after the
handshake (it knows the cookie: trusted as Erlang trusts one, but it must
never crash or hang the node or make it take unbounded memory), a hostile
peer before it (no cookie: it must change nothing), and a hostile guest.

Each test names the attack and asserts what the node does: the
connection that misbehaved closes (or the request is refused), and the
node goes on answering an honest peer (`_alive`). The peer is hand-made
(`Peer`), so it can send what no honest node sends.
"""
import hashlib
import os
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from test_dist import (COOKIE, SANITIZER_REPORT, Cluster, _atom, _bin, _dist_port, _exact,
                       _handshake, _int, _pid, _tuple, node)

SANITIZED = os.environ.get("WISP_SANITIZE", "") != ""   # (memory is not freed at once)


class Drained:
    """A node's stderr read as it comes (a node under attack may say much:
    a full pipe would block it), kept for err()."""

    def __init__(self, n):
        self.node, self.chunks = n, []
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()
        n.stop = self.stop
        n.err_now = self.text
        n.stderr_now = self.text

    def _pump(self):
        fd = self.node.proc.stderr.fileno()
        for chunk in iter(lambda: os.read(fd, 65536), b""):
            self.chunks.append(chunk.decode(errors="replace"))

    def text(self):
        return "".join(self.chunks)

    def stop(self):
        n = self.node
        if n.proc.poll() is None:
            n.proc.kill()
        n.proc.wait(timeout=10)
        self.thread.join(timeout=10)
        n.err = self.text()
        return n.err


@pytest.fixture
def cluster(tmp_path, shared_cache, build_proc):
    c = Cluster(tmp_path, shared_cache, build_proc)
    c.build = build_proc
    start = c.wisp

    def wisp(*args, **kwargs):
        n = start(*args, **kwargs)
        Drained(n)
        return n

    c.wisp = wisp
    yield c
    # Under a sanitizer build (make check), a report in any node's output
    # fails the test that ran it (as test_dist.py's cluster does).
    reports = [line for err in c.close() for line in (err or "").splitlines()
               if SANITIZER_REPORT.search(line)]
    assert not reports, "\n".join(reports[:20])


def _frame(ctl, msg=None):
    body = b"p\x83" + ctl + (b"\x83" + msg if msg is not None else b"")
    return struct.pack(">I", len(body)) + body


def _ref(node_name, words, creation=77):
    return b"Z" + struct.pack(">H", len(words)) + _atom(node_name) + \
        struct.pack(">I", creation) + b"".join(struct.pack(">I", w) for w in words)


def _connect(port, name, cookie, rcvbuf):
    """_handshake, on a socket whose receive buffer is rcvbuf bytes."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))

    def send(b):
        s.sendall(struct.pack(">H", len(b)) + b)

    def recv():
        return _exact(s, struct.unpack(">H", _exact(s, 2))[0])

    send(b"N" + struct.pack(">QIH", FLAGS, 77, len(name.encode())) + name.encode())
    assert recv()[:3] == b"sok"
    challenge = struct.unpack(">I", recv()[9:13])[0]
    send(b"r" + struct.pack(">I", 12345) + hashlib.md5((cookie + str(challenge)).encode()).digest())
    assert recv()[:1] == b"a"
    return s


class Peer:
    """A node named `name` connected to port (the handshake done)."""

    def __init__(self, port, name, cookie=COOKIE, rcvbuf=None):
        self.name = name
        self.s = _handshake(port, name, cookie) if rcvbuf is None else \
            _connect(port, name, cookie, rcvbuf)
        self.buf = b""

    def pid(self, ident=1, serial=1):
        return _pid(self.name, ident, serial, 77)

    def send(self, ctl, msg=None):
        self.s.sendall(_frame(ctl, msg))

    def reg_send(self, name, msg, ident=1):
        self.send(_tuple(_int(6), self.pid(ident), _atom(""), _atom(name)), msg)

    def frames(self, timeout=20):
        """Frames (ticks skipped) until the socket closes or times out."""
        self.s.settimeout(timeout)
        while True:
            while len(self.buf) >= 4:
                n = struct.unpack(">I", self.buf[:4])[0]
                if len(self.buf) < 4 + n:
                    break
                body, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
                if n:
                    yield body
            try:
                chunk = self.s.recv(1 << 20)
            except (socket.timeout, ConnectionError):
                return
            if not chunk:
                return
            self.buf += chunk

    def wait_for(self, needle, timeout=20):
        for f in self.frames(timeout):
            if needle in f:
                return f
        return None

    def closed(self, timeout=20):
        """Whether the node closes this connection (within timeout)."""
        self.s.settimeout(timeout)
        try:
            while self.s.recv(65536):
                pass
            return True
        except ConnectionError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.s.close()


def _alive(cluster, w, tag=b"still-here"):
    """An honest peer's message to echo on node w is answered."""
    alive = w.alive
    if w.proc.poll() is not None:
        raise AssertionError(f"{alive} ended ({w.proc.returncode}): {w.stop()[-3000:]}")
    p = Peer(_dist_port(cluster, alive), node(f"honest{time.monotonic_ns() % 100000}"))
    p.reg_send("echo", _tuple(_int(5), _bin(tag)))
    got = p.wait_for(tag)
    p.close()
    return got is not None


def _serve(cluster, name, *extra):
    w = cluster.wisp(name, "serve", extra=extra)
    w.wait_line(r"^ready")
    w.alive = name
    return w, _dist_port(cluster, name)


def _big_atom(text):
    b = text.encode()
    return b"v" + struct.pack(">H", len(b)) + b


def _list(items, tail=b"j"):
    return b"l" + struct.pack(">I", len(items)) + b"".join(items) + tail


# ---- a peer that knows the cookie ----

def test_a_monitor_whose_ref_names_a_900_byte_node_is_refused(cluster):
    """The monitor kept the ref's node name in a 256-byte field: a
    900-byte atom (an atom may hold 255 four-byte characters) wrote past
    it, and 40 of them past the array: heap corruption."""
    w, port = _serve(cluster, "wa1")
    p = Peer(port, node("evil"))
    long_ref = b"Z\x00\x03" + _big_atom("x" * 900 + "@h") + struct.pack(">IIII", 77, 1, 2, 3)
    try:
        for _ in range(40):
            p.send(_tuple(_int(19), p.pid(), _atom("echo"), long_ref))
    except ConnectionError:
        pass                              # closed at the first one
    assert p.closed()
    assert _alive(cluster, w)


def _echo_pid(p):
    """The pid of echo (on p's node), in the external format."""
    p.reg_send("echo", _tuple(_int(150), _bin(b"")))
    f = p.wait_for(b"pid")
    i = f.index(b"X", f.index(b"pid"))
    return f[i:i + 3 + f[i + 2] + 12]


def test_a_million_links_or_monitors_cost_no_quadratic_time(cluster):
    """Every LINK searched a list of all links across the node (to keep
    them unique), every DEMONITOR all monitors: 40,000 links held the I/O
    thread (and every connection's ticks) 4 s, 300,000 for minutes."""
    w, port = _serve(cluster, "wl1")
    p = Peer(port, node("evil"))
    echo = _echo_pid(p)
    n = 300000
    p.s.sendall(b"".join(_frame(_tuple(_int(1), _pid(p.name, k, 1, 77), echo))
                         for k in range(1, n)))
    refs = [_ref(p.name, [k, 0, 0]) for k in range(1, n)]
    p.s.sendall(b"".join(_frame(_tuple(_int(19), p.pid(), echo, r)) for r in refs))
    p.s.sendall(b"".join(_frame(_tuple(_int(20), p.pid(), echo, r)) for r in refs))
    assert _alive(cluster, w)
    p.close()


def test_a_down_goes_to_the_monitors_holder_only(cluster):
    """A MONITOR_P_EXIT was delivered to the pid the peer named, found by
    the ref alone: a DOWN for one process's monitor went to another, and
    the real holder never heard of its monitor again."""
    w, port = _serve(cluster, "wl2")
    p = Peer(port, node("evil"))
    watcher = p.pid(7)
    p.send(_tuple(_int(22), watcher, _echo_pid(p)), _tuple(_int(110), _bin(b"")))
    mon = p.wait_for(b"\x83h\x04a\x13")          # echo's MONITOR_P of us
    assert mon is not None
    i = mon.index(b"Z")
    ref = mon[i:i + 3 + 2 + mon[i + 4] + 4 + 4 * 2]
    echo = _echo_pid(p)
    here = node("wl2")
    other = _pid(here, 0x3fff, 1, struct.unpack(">I", echo[-4:])[0])   # not echo
    p.send(_tuple(_int(21), watcher, other, ref, _atom("misled")))
    p.send(_tuple(_int(21), watcher, echo, ref, _atom("bye")))
    line = w.wait_line(r"^down ")
    assert line == f"down {p.name} 8 " + (b"w\x03bye").hex(), line
    assert _alive(cluster, w)


def test_a_peer_speaks_for_its_own_processes_only(cluster):
    """The sender of a LINK, EXIT, MONITOR... was taken as it came: a peer
    could make a link or a link's exit come from a local process, or from
    a third node's, to any local process. (A message's or an exit/2's
    sender is the peer's word, as in Erlang: a forwarder passes them on.)"""
    w, port = _serve(cluster, "wl3")
    here = node("wl3")
    for forged in ("local", "third"):
        for op in (1, 3):                    # LINK, EXIT (of a link)
            p = Peer(port, node("evil"))
            echo = _echo_pid(p)
            sender = echo if forged == "local" else _pid(node("third"), 5, 1, 1)
            p.send(_tuple(_int(op), sender, echo) if op == 1
                   else _tuple(_int(op), sender, echo, _atom("forged")))
            assert p.closed(), (forged, op)
            p.close()
    p = Peer(port, node("evil"))
    p.send(_tuple(_int(8), p.pid(), _echo_pid(p), _atom("honest")))
    line = w.wait_line(r"^exit ")
    assert line == f"exit {p.name} 8 " + (b"w\x06honest").hex(), (line, here)
    assert _alive(cluster, w)


def test_pids_of_thousands_of_nodes_cost_no_scan_per_pid(cluster):
    """Each pid from the wire was looked up by a scan of the node table,
    newest entry first: after a peer had named 60,000 nodes, each pid of an
    older node cost 60,000 steps, and one frame of 200,000 pids held the
    I/O thread for minutes."""
    w, port = _serve(cluster, "wt1")
    p = Peer(port, node("evil"))
    p.s.sendall(b"".join(_frame(_tuple(_int(8), p.pid(), _pid(f"f{k}@h", 1, 1, 1), _atom("x")))
                         for k in range(60000)))
    dead = _pid(node("wt1"), 0x3fff, 1, struct.unpack(">I", _echo_pid(p)[-4:])[0])
    term = _list([p.pid(k % 60000 + 1) for k in range(200000)])
    p.send(_tuple(_int(22), p.pid(), dead), term)
    assert _alive(cluster, w)


def test_remote_pids_that_are_not_compact_are_bounded(cluster):
    """Every distinct remote pid took a handle in a table that only grows
    (a pid may sit in any guest's memory): a peer grew it by 16 bytes per
    pid it made up, without end. Pids that fit (every BEAM pid) now take
    none, the rest are bounded in all; both kinds still round-trip."""
    w, port = _serve(cluster, "wt2")
    p = Peer(port, node("evil"))
    for ident, serial in ((5, 7), (1 << 20, 3), (9, 1 << 30)):
        term = _tuple(_atom("t"), _pid(p.name, ident, serial, 77))
        p.send(_tuple(_int(6), p.pid(), _atom(""), _atom("echo")), term)
        assert p.wait_for(term) is not None, (ident, serial)
    dead = _pid(node("wt2"), 0x3fff, 1, struct.unpack(">I", _echo_pid(p)[-4:])[0])
    per = 500000
    for chunk in range(9):                           # 4.5 million made-up pids
        term = _list([_pid(p.name, 1 << 20 | k, chunk + 1, 77) for k in range(per)])
        try:
            p.send(_tuple(_int(22), p.pid(), dead), term)
        except ConnectionError:
            break
    p.closed(timeout=60)
    err_seen = _wait_stderr(w, "DIST_MAX_HANDLES", timeout=120)
    assert err_seen, w.err_now()[-2000:]
    assert _alive(cluster, w)
    assert SANITIZED or _rss_kib(w.proc.pid) < 400 * 1024


def _wait_stderr(w, text, timeout=60):
    """Whether w's stderr says text within timeout (w keeps running)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in w.err_now():
            return True
        time.sleep(0.1)
    return False


def test_an_incarnation_named_in_a_pid_but_gone_does_not_split_a_node(cluster):
    """A send by name dialled the newest entry for the name, which a pid of
    another incarnation (made up, or of a node since restarted) could have
    made; the node answering took that entry's creation: two entries for
    one incarnation, and a send to a pid known by the other dialled again
    and was refused (the peer was connected already): lost."""
    real, real_port = _serve(cluster, "wf1")
    w, port = _relay(cluster, "wf2")
    echo = _echo_pid(Peer(real_port, node("asker")))
    creation = struct.unpack(">I", echo[-4:])[0]
    p = Peer(port, node("teller"))
    p.reg_send("relay", _tuple(_atom("echo_is"), echo))
    assert w.wait_line(r"^saved") == "saved"
    p.reg_send("relay", _tuple(_atom("stale"), _pid(node("wf1"), 1, 1, creation ^ 0x5a5a)))
    p.reg_send("relay", _tuple(_int(1), _bin(node("wf1").encode() + b"\0echo\0by-name")))
    assert w.wait_line(r"^got ") == "got 6 by-name"
    p.reg_send("relay", _tuple(_int(4), _bin(b"by-pid")))
    assert w.wait_line(r"^sent-saved ") == "sent-saved 0"
    assert w.wait_line(r"^got 6 by-pid") == "got 6 by-pid"
    assert "disconnected" not in w.err_now() and "cannot reach" not in w.err_now(), w.err_now()


def test_pids_of_this_node_that_no_process_had_are_dead_pids(cluster):
    """A pid of this node with serial 0 (or past 31 bits) made the frame
    malformed and closed the connection, where Erlang drops a message to a
    dead pid; a pid of this node's name with another creation made an entry
    that a send dialled: this node connecting to itself."""
    w, port = _serve(cluster, "wv1")
    p = Peer(port, node("peer"))
    creation = struct.unpack(">I", _echo_pid(p)[-4:])[0]
    for serial in (0, 1 << 31, 0xffffffff):
        p.send(_tuple(_int(2), _atom(""), _pid(node("wv1"), 5, serial, creation)),
               _tuple(_int(5), _bin(b"x")))
    p.reg_send("echo", _tuple(_int(5), _bin(b"same-connection")))
    assert p.wait_for(b"same-connection") is not None
    r, rport = _relay(cluster, "wv2")
    q = Peer(rport, node("teller"))
    q.reg_send("relay", _tuple(_atom("old"), _pid(node("wv2"), 7, 1, 12345)))
    assert r.wait_line(r"^saved") == "saved"
    q.reg_send("relay", _tuple(_int(4), _bin(b"to-my-old-self")))
    assert r.wait_line(r"^sent-saved ") == "sent-saved 0"
    q.reg_send("relay", _tuple(_int(9), _bin(b"after")))
    assert r.wait_line(r"^got 9") == "got 9 after"
    time.sleep(1)
    assert "cannot reach" not in r.err_now(), r.err_now()


def test_a_peer_whose_name_is_not_printable_is_refused_after_its_cookie(cluster):
    """The handshake lets through any name without control bytes, so a
    peer with the cookie named itself with a right-to-left override and
    that name reached stderr raw in every line about it."""
    w, port = _serve(cluster, "wu1")
    p = Peer(port, "evil\u202e@" + node("x").split("@")[1], rcvbuf=1 << 16)
    assert p.closed()
    assert _alive(cluster, w)
    err = w.stop()
    assert "cannot name it" in err, err
    assert "\u202e" not in err, err


# ---- remote spawn: requests and modules ----

def _spawn_req(p, req, digest, arg=b"", fn=1):
    p.reg_send("$wisp_spawn", _tuple(_atom("spawn"), _int(req), _bin(digest), _int(fn), _bin(arg),
                                     _int(0), _int(0), b"j"))   # (j: no names to take)


def _spawn_answer(f, req):
    """The text of f if it is the answer to request req (< 256), else None."""
    head = b"\x83h\x02" + _int(req) + b"m"
    i = f.find(head)
    if i < 0:
        return None
    n = struct.unpack(">I", f[i + len(head):i + len(head) + 4])[0]
    return f[i + len(head) + 4:i + len(head) + 4 + n]


def test_nocode_from_another_node_refuses_only_its_own_requests(cluster):
    """{nocode, Hash} answered every request waiting for that module,
    whoever had made it: any peer could refuse another's spawns."""
    module = cluster.other_guest.read_bytes()
    digest = hashlib.sha256(module).digest()
    w, port = _serve(cluster, "wn1", "--allow-remote-spawn")
    honest, evil = Peer(port, node("honest1")), Peer(port, node("evil1"))
    _spawn_req(honest, 51, digest)
    assert honest.wait_for(b"fetch") is not None
    evil.reg_send("$wisp_code", _tuple(_atom("nocode"), _bin(digest)))
    evil.reg_send("echo", _tuple(_int(5), _bin(b"sync")))
    assert evil.wait_for(b"sync") is not None       # the nocode was handled
    honest.reg_send("$wisp_code", _tuple(_atom("code"), _bin(digest), _bin(module)))
    answer = None
    for f in honest.frames(60):
        answer = _spawn_answer(f, 51)
        if answer is not None:
            break
    assert answer is not None and b"does not have" not in answer, answer
    assert _alive(cluster, w)


def test_module_bytes_nobody_asked_for_are_not_compiled(cluster):
    """{code, Hash, Bytes} started a compile on a thread of its own for any
    peer, asked or not, with or without --allow-remote-spawn (a thread and
    a compiler per message), and kept the bytes for the node's life."""
    module = cluster.other_guest.read_bytes()
    digest = hashlib.sha256(module).digest()
    w, port = _serve(cluster, "wn2", "--allow-remote-spawn")
    p = Peer(port, node("evil2"))
    p.reg_send("$wisp_code", _tuple(_atom("code"), _bin(digest), _bin(module)))
    time.sleep(5)                  # (time enough for the old code's compile)
    _spawn_req(p, 52, digest)
    answer = None
    for f in p.frames(60):
        if b"fetch" in f and digest in f:              # it is not here: asked for
            p.reg_send("$wisp_code", _tuple(_atom("nocode"), _bin(digest)))
        answer = _spawn_answer(f, 52)
        if answer is not None:
            break
    assert answer is not None and b"does not have the module" in answer, answer
    assert _alive(cluster, w)


def test_garbage_module_bytes_that_match_their_hash_are_refused_cleanly(cluster):
    """Bytes that are no module but do match the hash asked for: the load
    is refused with the compiler's reason, the node goes on."""
    junk = b"\0asm\1\0\0\0" + bytes(range(256)) * 40
    digest = hashlib.sha256(junk).digest()
    w, port = _serve(cluster, "wn4", "--allow-remote-spawn")
    p = Peer(port, node("junk"))
    _spawn_req(p, 77, digest)
    answer = None
    for f in p.frames(60):
        if b"fetch" in f and digest in f:
            p.reg_send("$wisp_code", _tuple(_atom("code"), _bin(digest), _bin(junk)))
        answer = _spawn_answer(f, 77)
        if answer is not None:
            break
    assert answer is not None and answer.startswith(b"cannot load the module"), answer
    assert _alive(cluster, w)


def test_spawn_requests_waiting_for_modules_are_bounded(cluster):
    """Requests waiting for a module that never comes were kept until the
    requester's node left, with their arguments (up to 64 MiB each), and
    each new module hash was fetched: unbounded memory from one peer."""
    w, port = _serve(cluster, "wn3", "--allow-remote-spawn")
    p = Peer(port, node("evil3"))
    arg = b"a" * (1 << 20)
    digest = hashlib.sha256(b"never sent").digest()
    for req in range(100, 180):                  # 80 MiB of arguments
        _spawn_req(p, req, digest, arg)
    for k in range(10):                            # 10 modules at once
        _spawn_req(p, 200 + k, hashlib.sha256(b"other %d" % k).digest())
    answers = {}
    for f in p.frames(30):
        for req in list(range(100, 180)) + list(range(200, 210)):
            a = _spawn_answer(f, req)
            if a is not None:
                answers[req] = a
        if len([r for r in answers if r < 200]) >= 16 and any(r >= 200 for r in answers):
            break
    limited = [r for r, a in answers.items() if a.startswith(b"limit")]
    assert len([r for r in limited if r < 200]) >= 16, answers
    assert any(r >= 200 for r in limited), answers
    assert _alive(cluster, w)


# ---- peers without the cookie, and many peers at once ----

FLAGS = 0x1 | 0x4 | 0x8 | 0x10 | 0x80 | 0x100 | 0x200 | 0x400 | 0x800 | 0x10000 | \
    0x20000 | 0x40000 | 0x1000000 | 0x4000000


class Unauthenticated:
    """A connection that says it is node `name` and gets as far as the
    node's challenge, without knowing the cookie."""

    def __init__(self, port, name, creation=77):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self._send(b"N" + struct.pack(">QIH", FLAGS, creation, len(name)) + name.encode())
        self.status = self._recv()
        self.challenge = self._recv() if self.status[:3] == b"sok" else None

    def _send(self, b):
        self.s.sendall(struct.pack(">H", len(b)) + b)

    def _recv(self):
        return _exact(self.s, struct.unpack(">H", _exact(self.s, 2))[0])

    def fail(self):
        """Answer the challenge with a wrong digest: refused."""
        self._send(b"r" + struct.pack(">I", 1) + b"\0" * 16)
        try:
            self.s.settimeout(10)
            while self.s.recv(100):
                pass
        except (ConnectionError, socket.timeout):
            pass
        self.s.close()


def _relay(cluster, name, *extra):
    w = cluster.wisp(name, "relay", extra=extra, guest=cluster.build("dist_attack.c"))
    w.wait_line(r"^ready")
    w.alive = name
    return w, _dist_port(cluster, name)


def _ask_relay(port, *parts):
    """Have the relay send parts[2] to parts[1] on node parts[0]."""
    p = Peer(port, node(f"ctl{time.monotonic_ns() % 100000}"))
    p.reg_send("relay", _tuple(_int(1), _bin(b"\0".join(x.encode() for x in parts))))
    return p


def test_a_peer_posing_as_a_node_before_the_cookie_check_holds_nothing(cluster):
    """Before its digest checked, a connecting peer made its node's entry
    (any name it chose: 65,536 of them filled the node table for good) and
    set it connecting: a send to that node was held, not dialled, and
    dropped when the impostor failed the cookie."""
    real, _ = _serve(cluster, "wp1")
    w, port = _relay(cluster, "wp2")
    impostor = Unauthenticated(port, node("wp1"))
    assert impostor.status == b"sok"
    ctl = _ask_relay(port, node("wp1"), "echo", "through")
    assert w.wait_line(r"^sent ") == "sent 0"
    impostor.fail()
    assert w.wait_line(r"^got ") == "got 6 through"
    ctl.close()




def test_peers_holding_every_handshake_stop_no_connect_of_ours(cluster):
    """Handshakes under way shared 64 slots, dials and accepts alike: 64
    connections that sent nothing (no cookie needed) made every connect
    of this node fail at once until they timed out, and beyond 64 each
    connection still cost a thread."""
    real, _ = _serve(cluster, "wh1")
    w, port = _relay(cluster, "wh2")
    ctl = Peer(port, node("ctl"))
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(300)]
    time.sleep(1)                       # (each has its handshake thread by now)
    ctl.reg_send("relay", _tuple(_int(1), _bin(node("wh1").encode() + b"\0echo\0through")))
    assert w.wait_line(r"^sent ") == "sent 0"
    assert w.wait_line(r"^got ") == "got 6 through"
    for s in idle:
        s.close()
    ctl.close()
    assert "DIST_MAX_ACCEPTING" in w.stop()


def test_peers_that_stop_reading_are_bounded_in_all(cluster):
    """A peer that stops reading was dropped once 128 MiB waited for it, but
    each peer had its own 128 MiB: a dozen of them, each asking for the
    node's module again and again ({fetch, Hash}: 60 bytes asked, the
    module sent), held 1.5 GiB. Ten that each make it queue 115 MiB (under
    the bound of one) pass the bound of all (1 GiB): one of them is
    dropped."""
    w, port = _serve(cluster, "wb1")
    module = cluster.guest.read_bytes()
    digest = hashlib.sha256(module).digest()
    peers = [Peer(port, node(f"slow{k}"), rcvbuf=4096) for k in range(10)]
    fetches = (115 << 20) // len(module)
    for p in peers:
        p.s.settimeout(60)
        p.s.sendall(_frame(_tuple(_int(6), p.pid(), _atom(""), _atom("$wisp_code")),
                           _tuple(_atom("fetch"), _bin(digest))) * fetches)
    assert _wait_stderr(w, "DIST_MAX_OUT_ALL"), w.err_now()[-2000:]
    assert "it stopped reading what this node sends" not in w.err_now()   # (no single one)
    for p in peers:
        p.close()
    assert _alive(cluster, w)


def test_frames_begun_and_never_ended_are_bounded_in_all(cluster):
    """A peer's input buffer grows to hold a frame of up to 64 MiB (and
    4 KiB), so each connection may hold that for a frame that never ends;
    seventeen peers doing it would hold 1.1 GiB. They are bounded in all
    (1 GiB): the one that would pass it is dropped. (Nine were enough
    while a buffer grew to 128 MiB for such a frame.)"""
    w, port = _serve(cluster, "wi1")
    size = (64 << 20) + 4096                 # the largest frame
    chunk = b"\0" * (1 << 20)
    peers = [Peer(port, node(f"big{k}")) for k in range(17)]
    for p in peers:
        p.s.settimeout(60)
        try:
            p.s.sendall(struct.pack(">I", size) + b"p\x83")
            for _ in range(64):                # all but its last 4 KiB
                p.s.sendall(chunk)
        except OSError:
            pass
    assert _wait_stderr(w, "DIST_MAX_IN_ALL"), w.err_now()[-2000:]
    for p in peers:
        p.close()
    assert _alive(cluster, w)


def test_sigterm_with_many_connections_ends_the_node_cleanly(cluster):
    """A node with peers connected, handshakes half done or not begun,
    links and monitors across: SIGTERM ends it (143) without a hang, and
    under ASan without a leak."""
    w, port = _serve(cluster, "wz1", "--shutdown-grace", "1s")
    peers = [Peer(port, node(f"p{k}")) for k in range(40)]
    for p in peers:
        echo = _echo_pid(p)
        p.send(_tuple(_int(1), p.pid(), echo))
        p.send(_tuple(_int(19), p.pid(), echo, _ref(p.name, [1, 2, 3])))
        p.send(_tuple(_int(22), p.pid(), echo), _tuple(_int(110), _bin(b"")))
    half = [Unauthenticated(port, node(f"h{k}")) for k in range(20)]
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
    ctl = Peer(port, node("ctl"))
    time.sleep(1)
    w.proc.send_signal(signal.SIGTERM)
    assert w.proc.wait(timeout=60) == 143
    err = w.stop()
    assert "Sanitizer" not in err, err[-4000:]
    for x in peers + [ctl]:
        x.close()
    for u in half:
        u.s.close()
    for s in idle:
        s.close()


# ---- a hostile guest ----

class Ghost:
    """A node registered in EPMD whose port accepts connections and never
    answers: connecting to it takes the whole set-up time (7 s)."""

    def __init__(self, cluster, alive):
        subprocess.run(["epmd", "-port", str(cluster.epmd_port), "-daemon"], env=cluster.env,
                       check=True, timeout=10)
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        port = self.listener.getsockname()[1]
        for _ in range(50):
            try:
                self.epmd = socket.create_connection(("127.0.0.1", cluster.epmd_port), timeout=5)
                break
            except ConnectionError:
                time.sleep(0.1)
        name = alive.encode()
        req = b"x" + struct.pack(">HBBHHH", port, 77, 0, 6, 5, len(name)) + name + b"\0\0"
        self.epmd.sendall(struct.pack(">H", len(req)) + req)
        resp = _exact(self.epmd, 2)
        assert resp[1] == 0, resp

    def close(self):
        self.epmd.close()
        self.listener.close()


def test_messages_held_for_a_node_being_connected_are_bounded(cluster):
    """Messages to a node being connected were held, up to 4,096 of them
    of up to --max-message each, per node, charged to nobody: a guest
    held gigabytes for each unreachable node it named."""
    ghost = Ghost(cluster, "ghost")
    w = cluster.wisp("wg1", "flood", node("ghost"), "anyone", "400", str(1 << 20),
                     guest=cluster.build("dist_attack.c"))
    assert w.wait_line(r"^flooded ") == "flooded 0"      # dropped, as to an unreachable node
    rss = _rss_kib(w.proc.pid)
    err = w.stop()
    ghost.close()
    assert "already wait for nodes being connected" in err, err
    assert SANITIZED or rss < 300 * 1024, rss           # 128 MiB held at most, not 400


def test_a_guest_naming_thousands_of_nodes_is_bounded(cluster):
    """Every node name a guest sent to took an entry in the node table for
    the run: one guest could fill it (65,536) for every process and peer."""
    host = node("x").split("@")[1]
    w = cluster.wisp("wg2", "names", "6000", host, guest=cluster.build("dist_attack.c"))
    assert w.wait_line(r"^names ", timeout=120) == "names 4096 10"     # WISP_ELIMIT
    p = Peer(_dist_port(cluster, "wg2"), node("honest"))   # a peer still gets an entry
    p.reg_send("relay", _tuple(_int(2), _bin(b"hello")))
    assert w.wait_line(r"^got ") == "got 2 hello"


def test_a_guests_odd_node_calls_are_refused_cleanly(cluster):
    """Node names of control bytes reached stderr raw (a guest could write
    escape sequences there); spawning on the node itself made an entry for
    it and said ENOTFOUND; junk bytes made node entries as pids."""
    real, _ = _serve(cluster, "wo1")
    w = cluster.wisp("wo2", "odd", node("wo1"), guest=cluster.build("dist_attack.c"))
    w.wait_line(r"^node-ok ")
    assert w.proc.wait(timeout=30) == 0
    seen = [line.rsplit(" ", 1) for line in w.seen]
    assert {rc for what, rc in seen if what.endswith("bad-name")} == {"4"}, seen  # WISP_EINVAL
    seen = dict(seen)
    assert seen["spawn-self"] == "4", seen
    assert seen["decode-junk"] == "4" and seen["decode-escape"] == "4", seen
    assert seen["encode-forged"] == "0" and seen["of-forged"] == "0", seen
    assert seen["node-ok"] == "0", seen
    err = w.stop()
    assert "\x1b" not in err and "\u202e" not in err, err


def test_a_process_without_the_nodes_capability_reaches_no_other_node(cluster):
    """WISP_DENY_NODES stopped wisp_node.connect and .send, but any call
    aimed at a pid of another node (a send, a link, a kill) went out, and
    connected to that node if it was not: the capability was one call
    deep."""
    w = cluster.wisp("wd1", "deny", extra=("-v",), guest=cluster.build("dist_attack.c"))
    w.wait_line(r"^ready")
    p = Peer(_dist_port(cluster, "wd1"), node("outside"))
    p.reg_send("relay", _tuple(_int(5), _bin(b"here")))
    assert w.wait_line(r"^parent-send ") == "parent-send 0"
    codes = {line.split()[0]: line.split()[1] for line in w.seen if line.startswith("child-")}
    assert codes == {k: "9" for k in ("child-send", "child-link", "child-monitor",
                                      "child-exit_signal", "child-kill", "child-send_after",
                                      "child-node_send")}, codes          # WISP_EPERM
    got = [f for f in p.frames(5)]
    assert any(b"parent" in f for f in got), got
    assert not any(b"child" in f for f in got), got
    assert "to a process of another node (WISP_DENY_NODES)" in w.stop()


def test_remote_spawn_on_a_node_named_with_its_port(cluster):
    """wisp_node.spawn connected to NAME@HOST:PORT, then asked a node
    named "NAME@HOST:PORT" (an entry of its own, never connected): the
    spawn failed with ENOTFOUND."""
    a = cluster.wisp("wp5", "serve", extra=("--allow-remote-spawn",))
    a.wait_line(r"^ready")
    target = f"{node('wp5')}:{_dist_port(cluster, 'wp5')}"
    b = cluster.wisp("wp6", "rspawn", target)
    assert b.wait_line(r"^spawned") == "spawned 0"
    assert b.wait_line(r"^child on") == f"child on {node('wp5')}"
    assert b.wait_line(r"^hello") == f"hello from {node('wp5')}"


class FakeNode(Ghost):
    """A node registered in EPMD that takes connections and runs the
    accepting side of the handshake (accept()); given `until`, it takes
    one by itself and hangs up at the first frame that holds it."""

    def __init__(self, cluster, alive, until=None):
        super().__init__(cluster, alive)
        self.name = node(alive)
        self.until = until
        if until is not None:
            threading.Thread(target=self._serve, daemon=True).start()

    def accept(self, delay=0.0):
        """The connection, its handshake done (after delay seconds)."""
        s, _ = self.listener.accept()
        s.settimeout(30)

        def send(b):
            s.sendall(struct.pack(">H", len(b)) + b)

        def recv():
            return _exact(s, struct.unpack(">H", _exact(s, 2))[0])

        recv()                                            # its name
        time.sleep(delay)
        send(b"sok")
        me = self.name.encode()
        send(b"N" + struct.pack(">QIIH", FLAGS, 4242, 99, len(me)) + me)
        theirs = struct.unpack(">I", recv()[1:5])[0]
        send(b"a" + hashlib.md5((COOKIE + str(theirs)).encode()).digest())
        return s

    def _serve(self):
        s = self.accept()
        buf = b""
        while self.until not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        s.close()


def test_a_remote_spawn_whose_node_is_lost_is_answered_at_once(cluster):
    """A requester whose node was lost before it answered waited out the
    whole 120 s (ETIMEDOUT): the loss told nobody about the request."""
    fake = FakeNode(cluster, "lost1", b"$wisp_spawn")
    b = cluster.wisp("wq2", "rspawn", fake.name)
    assert b.wait_line(r"^spawned", timeout=60) == "spawned 8"      # WISP_ENOTFOUND
    fake.close()


# Each wisp_node call with a pointer past the guest's one page of memory:
# the guest traps (134, the call named), the host goes on.
BAD_POINTER_CALLS = {
    "name": "(call $name (i32.const 65534) (i32.const 100))",
    "list": "(call $list (i32.const 65530) (i32.const 100))",
    "of": "(call $of (i64.const 1) (i32.const 65534) (i32.const 100))",
    "connect": "(call $connect (i32.const 65500) (i32.const 200))",
    "send": "(call $send (i32.const 0) (i32.const 5) (i32.const 0) (i32.const 4) (i64.const 5)"
            " (i32.const 65000) (i32.const 1000))",
    "spawn": "(call $spawn (i32.const 0) (i32.const 5) (i32.const 0) (i32.const 0) (i32.const 0)"
             " (i32.const 0) (i32.const 65530))",
    "pid_encode": "(call $pid_encode (i64.const 1) (i32.const 65530) (i32.const 100))",
    "pid_decode": "(call $pid_decode (i32.const 65530) (i32.const 100) (i32.const 0))",
}


@pytest.mark.parametrize("call", sorted(BAD_POINTER_CALLS))
def test_a_bad_pointer_to_a_node_call_traps_the_guest_only(cluster, build_wat, call):
    wat = """(module
      (import "wisp_node" "name" (func $name (param i32 i32) (result i32)))
      (import "wisp_node" "list" (func $list (param i32 i32) (result i32)))
      (import "wisp_node" "of" (func $of (param i64 i32 i32) (result i32)))
      (import "wisp_node" "connect" (func $connect (param i32 i32) (result i32)))
      (import "wisp_node" "send"
        (func $send (param i32 i32 i32 i32 i64 i32 i32) (result i32)))
      (import "wisp_node" "spawn"
        (func $spawn (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
      (import "wisp_node" "pid_encode" (func $pid_encode (param i64 i32 i32) (result i32)))
      (import "wisp_node" "pid_decode" (func $pid_decode (param i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 0) "a@b.c")
      (func (export "_start") (drop %s)))""" % BAD_POINTER_CALLS[call]
    module = build_wat(wat, f"node_bad_{call}")
    w = cluster.wisp("wbp", guest=module)
    assert w.proc.wait(timeout=60) == 134
    err = w.stop()
    assert "pointer outside memory" in err and f"wisp_node_{call}" in err, err


def test_a_flood_while_a_node_is_being_connected_arrives_whole(cluster):
    """At most 4,096 messages were held per node being connected, the rest
    dropped: a process that sent faster than a new connection wrote out
    what was held lost part of a flood on a connection that worked (the
    distribution benchmark lost 100,000 of 200,000 now and then). Only
    their bytes are bounded now."""
    fake = FakeNode(cluster, "slowhs")
    got = {}

    def count():
        s = fake.accept(delay=1.0)          # the sender floods meanwhile
        s.settimeout(5)                     # (then a pause means the end)
        n, buf = 0, b""
        while n < 10000:
            try:
                chunk = s.recv(1 << 20)
            except socket.timeout:
                break
            if not chunk:
                break
            buf += chunk
            while len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">I", buf[:4])[0]:
                size = struct.unpack(">I", buf[:4])[0]
                n += b"counter" in buf[4:4 + size]
                buf = buf[4 + size:]
        got["n"] = n
        s.close()

    t = threading.Thread(target=count, daemon=True)
    t.start()
    w = cluster.wisp("wfl", "flood", fake.name, "counter", "10000", "8",
                     guest=cluster.build("dist_attack.c"))
    assert w.wait_line(r"^flooded ") == "flooded 0"
    t.join(timeout=60)
    assert got.get("n") == 10000, (got, w.err_now())
    fake.close()


def _rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# ---- processes that moved: what a peer may claim ----

def _to(f, pid):
    """Whether frame f is addressed to pid (its control tuple names it)."""
    return pid in f[:f.index(b"\x83", 2)] if b"\x83" in f[2:] else pid in f


def _echo_to(p, sender, echo, text):
    """A message to echo from sender, a pid of p's node: echo answers it."""
    p.send(_tuple(_int(22), sender, echo), _tuple(_int(5), _bin(text)))


def test_a_peer_that_never_says_ready_gets_its_messages_by_the_old_pid(cluster):
    """{moved, Old, New} from Old itself: sends to Old are held behind a
    mark ({mark, Old} to the peer); a claim made by another pid, or about
    another node's pid, is ignored. A peer that never answers gets what was
    held by the old pid after the wait (5 s), in order with what follows."""
    w, port = _serve(cluster, "wmv1")
    p = Peer(port, node("evil"))
    echo = _echo_pid(p)
    old, new = p.pid(1), p.pid(2)
    p.reg_send("$wisp_moved", _tuple(_atom("moved"), old, new), ident=3)      # not by Old
    p.reg_send("$wisp_moved", _tuple(_atom("moved"), _pid("third@h", 1, 1, 77), new))
    _echo_to(p, old, echo, b"zero")
    f = p.wait_for(b"zero", timeout=10)
    assert f is not None and _to(f, old), f
    p.reg_send("$wisp_moved", _tuple(_atom("moved"), old, new))
    assert p.wait_for(b"mark", timeout=10) is not None
    start = time.monotonic()
    _echo_to(p, old, echo, b"one")
    assert p.wait_for(b"one", timeout=3) is None        # held
    time.sleep(max(0, 5.5 - (time.monotonic() - start)))
    _echo_to(p, old, echo, b"two")
    got = []
    for f in p.frames(timeout=10):
        if b"one" in f or b"two" in f:
            got.append(f)
            if len(got) == 2:
                break
    assert [b"one" in got[0], b"two" in got[1]] == [True, True], got
    assert all(_to(f, old) for f in got), got
    assert _alive(cluster, w)


def test_held_sends_go_on_when_the_wait_ends_not_at_the_next_tick(cluster):
    """A peer that never says ready: what was held goes by the old pid once
    the wait (5 s) ends, even if nothing is sent after it. It waited for
    the I/O thread's next tick, a quarter of net_ticktime later (15 s by
    default; here 900 s, so the 60 s this test waits tell one from the
    other)."""
    w, port = _serve(cluster, "wmv6", "--net-ticktime", "3600")
    p = Peer(port, node("evil"))
    echo = _echo_pid(p)
    old, new = p.pid(1), p.pid(2)
    p.reg_send("$wisp_moved", _tuple(_atom("moved"), old, new))
    assert p.wait_for(b"mark", timeout=10) is not None
    _echo_to(p, old, echo, b"alone")
    f = p.wait_for(b"alone", timeout=60)
    assert f is not None and _to(f, old), f
    assert _alive(cluster, w)


def test_a_ready_must_come_from_the_new_pid_and_name_the_move(cluster):
    """Held sends to Old go to New once New says {ready, Old, New}; a ready
    from another pid, or naming another move, changes nothing."""
    w, port = _serve(cluster, "wmv2")
    p = Peer(port, node("evil"))
    echo = _echo_pid(p)
    old, new = p.pid(1), p.pid(2)
    p.reg_send("$wisp_moved", _tuple(_atom("moved"), old, new))
    assert p.wait_for(b"mark", timeout=10) is not None
    _echo_to(p, old, echo, b"three")
    p.reg_send("$wisp_ready", _tuple(_atom("ready"), old, new), ident=3)       # not New
    p.reg_send("$wisp_ready", _tuple(_atom("ready"), p.pid(9), new), ident=2)  # another move
    assert p.wait_for(b"three", timeout=2) is None
    p.reg_send("$wisp_ready", _tuple(_atom("ready"), old, new), ident=2)
    f = p.wait_for(b"three", timeout=10)
    assert f is not None and _to(f, new) and not _to(f, old), f
    _echo_to(p, old, echo, b"four")                  # from now on: straight to New
    f = p.wait_for(b"four", timeout=10)
    assert f is not None and _to(f, new), f
    assert _alive(cluster, w)


def test_a_flood_of_moves_holds_little(cluster):
    """Claims for 20,000 pids of the peer: at most a few wait at once, the
    table stays bounded, and the node goes on answering."""
    w, port = _serve(cluster, "wmv3")
    p = Peer(port, node("evil"))
    p.s.sendall(b"".join(_frame(_tuple(_int(6), p.pid(k), _atom(""), _atom("$wisp_moved")),
                                _tuple(_atom("moved"), p.pid(k), p.pid(k + 1)))
                         for k in range(1, 20001)))
    marks = 0
    for f in p.frames(timeout=3):
        marks += b"mark" in f
    assert 0 < marks <= 16, marks
    assert _alive(cluster, w)


def _move(p, old, new):
    """p's process old says it moved to new (a pid of p's node), and new
    that it is ready: the node sends to new what it sends to old."""
    p.reg_send("$wisp_moved", _tuple(_atom("moved"), p.pid(old), p.pid(new)), ident=old)
    p.reg_send("$wisp_ready", _tuple(_atom("ready"), p.pid(old), p.pid(new)), ident=new)


def test_moves_in_a_cycle_are_not_followed_without_end(cluster):
    """Old moved to New and New back to Old (both the peer's): a send to
    either followed the redirections from one to the other without end (a
    sending process spun for ever, its scheduler's thread with it). A
    send follows a few at most, then goes by the pid it reached; so does
    one along a chain of moves longer than that."""
    w, port = _serve(cluster, "wmv4")
    p = Peer(port, node("evil"))
    echo = _echo_pid(p)
    _move(p, 1, 2)
    _move(p, 2, 1)
    for k in range(10, 40):
        _move(p, k, k + 1)
    _echo_to(p, p.pid(1), echo, b"round")
    f = p.wait_for(b"round", timeout=10)
    assert f is not None and (_to(f, p.pid(1)) or _to(f, p.pid(2))), f
    _echo_to(p, p.pid(10), echo, b"chain")
    f = p.wait_for(b"chain", timeout=10)
    assert f is not None and any(_to(f, p.pid(k)) for k in range(11, 41)), f
    assert _alive(cluster, w)


def _small_term_end(f, i):
    """Where the integer term at f[i] ends (small, 32-bit or big)."""
    return i + {97: 2, 98: 5}.get(f[i], 3 + f[i + 1] if f[i] == 110 else 0)


def _migrate_here(cluster, name, new=50):
    """The counter on a fresh node `name` moves to a hand-made peer's node,
    the peer answering the spawn as its pid `new`: the node, the peer, the
    counter's pid (now its forwarder's) in the external format, and the
    peer's pid for the counter's new incarnation."""
    w = cluster.wisp(name, "counter")
    w.wait_line(r"^ready")
    p = Peer(_dist_port(cluster, name), node("evil"))
    p.reg_send("counter", _tuple(_int(61), _bin(p.name.encode())))
    f = p.wait_for(b"$wisp_spawn")
    assert f is not None
    i = f.index(b"X")
    forwarder = f[i:i + 3 + f[i + 2] + 12]
    i = f.index(b"spawn", f.index(b"$wisp_spawn") + 11) + 5
    req = f[i:_small_term_end(f, i)]
    p.send(_tuple(_int(22), p.pid(new), forwarder), b"h\x02" + req + _bin(b""))
    assert p.wait_for(b"go") is not None
    return w, p, forwarder, p.pid(new)


def test_a_move_back_to_a_forwarder_is_not_passed_round_for_ever(cluster):
    """A guest moved to the peer's node (New there); the peer then says New
    moved back to the guest's forwarder ({moved, New, Forwarder}, made
    ready by a relay naming a marker of the forwarder's node): the
    forwarder passed each message on to New, the redirection handed it
    back, and so on for ever (a message sent once spun a scheduler's
    thread without end). A forwarder's messages go to New as they are."""
    w, p, fwd, new = _migrate_here(cluster, "wmv5")
    p.reg_send("$wisp_moved", _tuple(_atom("moved"), new, fwd), ident=50)
    p.reg_send("$wisp_relay", _tuple(_atom("relay"), fwd, fwd), ident=50)
    assert p.wait_for(b"mark", timeout=10) is not None
    for text in (b"first", b"second"):
        p.send(_tuple(_int(22), p.pid(7), fwd), _tuple(_int(64), _bin(text)))
        f = p.wait_for(text, timeout=10)
        assert f is not None and _to(f, new), f
    assert w.proc.poll() is None


def test_a_forwarder_tells_no_node_it_is_not_connected_to(cluster):
    """A message's sender is the peer's word: messages to a forwarder from
    pids of nodes never reached made the forwarder's node connect to each
    (to tell it where the process went), to any host a peer named. Only a
    connected sender's node is told; the messages go on all the same."""
    w, p, fwd, new = _migrate_here(cluster, "wmv7")
    ghosts = [_pid(node(f"ghost{k}"), 1, 1, 5) for k in range(3)]
    for k, ghost in enumerate(ghosts):
        p.send(_tuple(_int(22), ghost, fwd), _tuple(_int(64), _bin(b"from-ghost%d" % k)))
    for k in range(3):
        f = p.wait_for(b"from-ghost%d" % k, timeout=10)
        assert f is not None and _to(f, new), f
    p.send(_tuple(_int(22), p.pid(7), fwd), _tuple(_int(64), _bin(b"from-peer")))
    assert p.wait_for(b"$wisp_moved", timeout=10) is not None   # (the peer is told)
    time.sleep(1)
    assert "ghost" not in w.err_now(), w.err_now()
    assert w.proc.poll() is None


def test_odd_moves_claims_change_nothing(cluster):
    """A mark for a process that is no forwarder (dropped when it drains,
    as the signal it is), or for a pid of another node; a relay naming a
    New of another node; a ready naming a local Old; a move to itself: none
    holds or redirects anything, and the process goes on answering. A claim
    of the wrong shape closes the connection."""
    w, port = _serve(cluster, "wmv8")
    p = Peer(port, node("evil"))
    echo = _echo_pid(p)
    old = p.pid(1)
    p.reg_send("$wisp_mark", _tuple(_atom("mark"), echo))
    p.reg_send("$wisp_mark", _tuple(_atom("mark"), p.pid(3)))
    p.reg_send("$wisp_relay", _tuple(_atom("relay"), p.pid(2), echo))
    p.reg_send("$wisp_ready", _tuple(_atom("ready"), echo, p.pid(2)), ident=2)
    p.reg_send("$wisp_moved", _tuple(_atom("moved"), old, old))
    _echo_to(p, old, echo, b"plain")
    got = []
    for f in p.frames(timeout=10):
        got.append(f)
        if b"plain" in f:
            break
    assert got and b"plain" in got[-1] and _to(got[-1], old), got
    assert not any(b"$wisp_mark" in f for f in got), got
    p.reg_send("$wisp_moved", _tuple(_atom("moved"), old))
    assert p.closed()
    assert _alive(cluster, w)


def test_pushed_versions_load_one_at_a_time(cluster):
    """A peer repeating a push while the first compiles held a thread and a
    copy of the bytes per frame: a push that comes while another loads is
    ignored, said on stderr."""
    w, port = _serve(cluster, "wpu", "--allow-code-push")
    p = Peer(port, node("evil"))
    old = hashlib.sha256(cluster.guest.read_bytes()).digest()
    mod = cluster.other_guest.read_bytes()
    push = _tuple(_atom("push"), _bin(old), _bin(mod))
    for _ in range(3):
        p.reg_send("$wisp_push", push)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "was not loaded" not in w.err_now():
        time.sleep(0.2)
    err = w.err_now()
    assert err.count("another pushed version is being loaded") == 2, err
    assert err.count("was not loaded") == 1, err   # (no wisp_code_change: refused)
    assert _alive(cluster, w)


# ---- the read path: frames read by the schedulers (src/dist/conn.c) ----

def test_a_large_frame_once_handled_holds_no_input(cluster):
    """A connection's input buffer grows to hold a large frame; it
    shrank back only when a read ended exactly at a frame's end, so a
    peer that sent one 64 MiB frame and kept part of the next pending
    held 128 MiB of the node's input (1 GiB in all, DIST_MAX_IN_ALL) for
    good. Eight such peers left no room for anyone: the next connection
    to read was dropped. Each frame here is handled (its echo answered)
    and part of the next stays pending: nothing is refused, and an honest
    peer is answered after."""
    w, port = _serve(cluster, "wl1")
    size = 64 << 20                          # a binary: the frame is just under the limit
    peers = []
    for k in range(8):
        p = Peer(port, node(f"large{k}"))
        p.s.settimeout(60)
        big = _frame(_tuple(_int(6), p.pid(), _atom(""), _atom("nobody")), _bin(b"\0" * size))
        tag = b"after-large-%d" % k
        echo = _frame(_tuple(_int(6), p.pid(), _atom(""), _atom("echo")),
                      _tuple(_int(5), _bin(tag)))
        p.s.sendall(big + echo + echo[:3])   # (the next frame begun, never ended)
        assert p.wait_for(tag, timeout=60) is not None, w.err_now()[-2000:]
        peers.append(p)
    assert _alive(cluster, w), w.err_now()[-2000:]
    assert "DIST_MAX_IN_ALL" not in w.err_now()
    for p in peers:
        p.close()
