"""Networking: TCP through the reactor, with real clients started by the test.

The network is denied by default (capabilities): the servers are given
exactly the rules they need."""
import socket
import subprocess
import threading
import time

import pytest

from conftest import ROOT, WISP


@pytest.fixture(scope="session")
def echo_wasm(build_proc):
    return build_proc(ROOT / "examples" / "echo" / "echo.c")


@pytest.fixture
def echo_server(echo_wasm, shared_cache):
    import os
    env = dict(os.environ, WISP_CACHE_DIR=str(shared_cache), WISP_BACKGROUND_COMPILE="0")
    proc = subprocess.Popen([str(WISP), "run", "--tier", "opt", "--allow-listen", "127.0.0.1:*",
                             str(echo_wasm), "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    assert line.startswith("listening on 127.0.0.1:"), (line, proc.stderr.read() if proc.poll() else "")
    port = int(line.rsplit(":", 1)[1])
    yield port, proc
    proc.kill()
    proc.wait(timeout=10)


def recv_exactly(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def test_echo_under_1000_concurrent_connections(echo_server):
    port, proc = echo_server
    conns = []
    for i in range(1000):
        conns.append(socket.create_connection(("127.0.0.1", port), timeout=30))
    # every connection is open at once; each echoes its own traffic
    for rnd in range(3):
        for i, s in enumerate(conns):
            s.sendall(f"conn {i} round {rnd}\n".encode())
        for i, s in enumerate(conns):
            want = f"conn {i} round {rnd}\n".encode()
            assert recv_exactly(s, len(want)) == want
    for s in conns:
        s.close()
    assert proc.poll() is None


def test_many_sockets_stay_ready_under_load(echo_server):
    """200 connections, each in a closed loop of round trips at once from
    client threads, while the server's schedulers are busy: every echo
    arrives, none is lost to a missed readiness edge (a lost one would hang
    its connection until the socket timeout fails the test)."""
    port, proc = echo_server
    conns = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(200)]
    errors = []

    def loop(i, s):
        try:
            for rnd in range(100):
                msg = f"{i}:{rnd}:" .encode() + b"x" * ((i * 7 + rnd) % 300)
                s.sendall(msg)
                got = recv_exactly(s, len(msg))
                if got != msg:
                    errors.append((i, rnd, got[:40]))
                    return
        except OSError as e:
            errors.append((i, repr(e)))

    threads = [threading.Thread(target=loop, args=(i, s)) for i, s in enumerate(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in conns:
        s.close()
    assert errors == []
    assert proc.poll() is None


def test_a_trapping_handler_closes_only_its_connection(echo_server):
    port, proc = echo_server
    good = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(5)]
    bad = socket.create_connection(("127.0.0.1", port), timeout=10)
    bad.sendall(b"crash\n")
    assert bad.recv(100) == b""          # its process trapped: socket closed
    for i, s in enumerate(good):
        s.sendall(b"alive %d\n" % i)
        assert recv_exactly(s, 8) == b"alive %d\n" % i
    assert proc.poll() is None           # the server lives on
    # a new connection after the crash works too
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"new\n")
    assert recv_exactly(s, 4) == b"new\n"


def test_large_transfer_round_trips(echo_server):
    port, _ = echo_server
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    payload = bytes(range(256)) * 4096          # 1 MiB
    received = []

    def reader():
        received.append(recv_exactly(s, len(payload)))

    t = threading.Thread(target=reader)
    t.start()
    s.sendall(payload)
    t.join(timeout=60)
    assert received and received[0] == payload


def test_10000_connections_opened_and_abandoned(echo_server):
    port, proc = echo_server
    for _ in range(20):
        batch = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(500)]
        for s in batch:
            s.close()
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"ok\n")
    assert recv_exactly(s, 3) == b"ok\n"
    assert proc.poll() is None


def test_peer_reset_mid_read(echo_server):
    port, proc = echo_server
    import struct
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"partial")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()                                   # RST
    time.sleep(0.2)
    t = socket.create_connection(("127.0.0.1", port), timeout=10)
    t.sendall(b"next\n")
    assert recv_exactly(t, 5) == b"next\n"
    assert proc.poll() is None


NET = ["--allow-listen", "*", "--allow-connect", "*:*", "--allow-udp", "--allow-dns"]

CASES = {
    "refused": ["connect: 14"],
    "inuse": ["second listen: 3"],
    "badaddr": ["listen: 28", "port: 28"],
    "timeouts": ["accept: 73", "read: 73"],
    "halfclose": ["read: 0 n=3 'bye'", "read after close: 0 n=0",
                  "writes after peer close: 0 then error"],
    "moved": ["send_fd: 0", "use after move: 8", "send_fd again: 4",
              "send_fd of stdout: 4", "child read: rc=0 n=2 'hi'"],
    "handoff": ["wait here first: 73", "send_fd: 0 0", "client: 0 3 round trips",
                "echoer: 0 3 round trips"],
    "reuse": ["reused: 20 of 20"],
    "notsock": ["read stdout: 57", "read bad fd: 8", "receive_fd on stdout: 4"],
    "poll": ["parent writes: 0", "child poll: 1 readable yes"],
    "ipv6": ["listen: 0 on ::1", "connect: 0", "read 'six' from ::1"],
    "udp": ["send: 0", "recv: 0 'ping' from 127.0.0.1 same port yes", "connect: 0",
            "reply: 0", "recv: 0 'pong'", "timeout: 73", "tcp call on udp: 57"],
    "dns": ["localhost: 0 loopback yes", "missing: 44", "empty: 28", "small buffer: 42"],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_network_edge_cases(wisp, build_proc, case):
    m = build_proc("net_cases.c")
    # one scheduler: a process that blocked its thread would stall the others
    r = wisp("run", "--tier", "fast", "--schedulers", "1", *NET, m, case, timeout=60)
    assert r.code == 0, r
    assert r.out.splitlines() == CASES[case], r


def test_urgent_data_does_not_strand_the_bytes_after_it(build_proc, shared_cache):
    """A read that stops short at TCP's urgent mark leaves bytes queued
    with no readiness edge to come: the next read must still find them
    (a short read otherwise lets the next one wait without reading)."""
    import os
    m = build_proc("net_cases.c")
    env = dict(os.environ, WISP_CACHE_DIR=str(shared_cache), WISP_BACKGROUND_COMPILE="0")
    proc = subprocess.Popen([str(WISP), "run", "--tier", "fast", *NET, str(m), "urgent"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        port = int(proc.stdout.readline().split()[1])
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        assert proc.stdout.readline() == "reading\n"
        time.sleep(0.3)                      # (it is parked in its read)
        # one segment: the reader wakes once, for all of it
        s.send(b"ab", socket.MSG_MORE)
        s.send(b"c", socket.MSG_OOB | socket.MSG_MORE)
        s.send(b"de")
        out, err = proc.communicate(timeout=30)
        s.close()
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert lines[0] == "read1: 0 'ab'", (out, err)
    # the rest: "de" (the urgent byte is out of band, not in the stream)
    assert lines[1] == "read2: 0 'de'", (out, err)


@pytest.mark.parametrize("case", ["handoff", "reuse"])
def test_sockets_moved_and_closed_while_another_scheduler_polls(wisp, build_proc, case):
    """The same cases on two schedulers: one polls the reactor while the
    other closes sockets (their numbers reused at once) or hands them on."""
    m = build_proc("net_cases.c")
    r = wisp("run", "--tier", "fast", "--schedulers", "2", *NET, m, case, timeout=60)
    assert r.code == 0, r
    assert r.out.splitlines() == CASES[case], r


def read_until(s, text, limit=10.0):
    data = b""
    deadline = time.time() + limit
    while text.encode() not in data and time.time() < deadline:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.decode()


def test_chat_room_broadcasts_and_announces_departures(build_proc, shared_cache):
    import os
    chat = build_proc(ROOT / "examples" / "chat" / "chat.c")
    env = dict(os.environ, WISP_CACHE_DIR=str(shared_cache), WISP_BACKGROUND_COMPILE="0")
    proc = subprocess.Popen([str(WISP), "run", "--tier", "fast", "--allow-listen", "127.0.0.1:*",
                             str(chat), "0"],
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        port = int(proc.stdout.readline().rsplit(":", 1)[1])
        people = {}
        for name in ("ann", "bob", "cy"):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            assert read_until(s, "name? ").endswith("name? ")
            s.sendall(name.encode() + b"\n")
            people[name] = s
            assert f"* {name} joined" in read_until(s, f"* {name} joined")
        people["ann"].sendall(b"hello room\n")
        for name in ("bob", "cy"):
            assert "ann: hello room" in read_until(people[name], "ann: hello room")
        people["cy"].sendall(b"/crash\n")           # cy's process traps
        assert "* cy left" in read_until(people["bob"], "* cy left")
        people["bob"].close()                         # bob disconnects
        assert "* bob left" in read_until(people["ann"], "* bob left")
        people["ann"].sendall(b"anyone?\n")
        assert "ann: anyone?" in read_until(people["ann"], "ann: anyone?")
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait(timeout=10)
