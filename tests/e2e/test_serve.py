"""wisp serve: an unmodified WASI program (tests/guests/c/lines.c) as a
network service, a fresh process per TCP connection with its stdin and
stdout on the socket."""
import os
import signal
import socket
import subprocess
import threading

import pytest

from conftest import WISP


class Server:
    def __init__(self, module, *opts, tmp_path):
        env = dict(os.environ, XDG_RUNTIME_DIR=str(tmp_path), WISP_BACKGROUND_COMPILE="0",
                   WISP_CACHE_DIR=str(tmp_path / "cache"))
        self.p = subprocess.Popen([str(WISP), "serve", "--listen", "127.0.0.1:0", *opts,
                                   str(module)], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        seen = []
        while not seen or not seen[-1].startswith("wisp: serving on 127.0.0.1:"):
            line = self.p.stderr.readline()
            if not line:
                self.p.kill()
                self.p.wait()
                raise AssertionError("wisp serve did not start: " + "".join(seen))
            seen.append(line)
        self.port = int(seen[-1].split("127.0.0.1:")[1].split()[0])

    def connect(self):
        c = socket.create_connection(("127.0.0.1", self.port), timeout=60)
        return c, c.makefile("rw", newline="\n")

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        out, err = self.p.communicate(timeout=60)
        return self.p.returncode, err


@pytest.fixture
def lines(build_c):
    return build_c("lines.c")


def test_each_connection_gets_its_own_program_and_a_trap_ends_only_its_own(lines, tmp_path):
    """100 clients at once, each with its own count of lines; one of them
    makes its program trap: its connection ends, the others go on."""
    srv = Server(lines, tmp_path=tmp_path)
    try:
        errors = []

        def client(k):
            try:
                c, f = srv.connect()
                with c, f:
                    for i in range(1, 6):
                        f.write(f"client {k} line {i}\n")
                        f.flush()
                        if k == 7 and i == 3:
                            f.write("trap\n")
                            f.flush()
                            assert f.readline() == f"{i} CLIENT {k} LINE {i}\n"
                            assert f.readline() == ""   # its program is gone
                            return
                        got = f.readline()
                        assert got == f"{i} CLIENT {k} LINE {i}\n", got
            except Exception as e:   # noqa: BLE001 (reported below)
                errors.append((k, repr(e)))

        ts = [threading.Thread(target=client, args=(k,)) for k in range(100)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert errors == []
        # Still serving.
        c, f = srv.connect()
        with c, f:
            f.write("after\n")
            f.flush()
            assert f.readline() == "1 AFTER\n"
    finally:
        code, err = srv.stop()
    assert code == 0, err
    assert err.count("trapped") == 1, err


def test_a_thousand_connections_at_once(lines, tmp_path):
    srv = Server(lines, "--max-connections", "2000", tmp_path=tmp_path)
    try:
        conns = [srv.connect() for _ in range(1000)]
        for k, (c, f) in enumerate(conns):
            f.write(f"c{k}\n")
            f.flush()
        for k, (c, f) in enumerate(conns):
            assert f.readline() == f"1 C{k}\n"
        for c, f in conns:
            f.close()
            c.close()
    finally:
        code, err = srv.stop()
    assert code == 0, err


def test_the_connection_limit_makes_clients_wait(lines, tmp_path):
    srv = Server(lines, "--max-connections", "2", tmp_path=tmp_path)
    try:
        held = [srv.connect() for _ in range(2)]
        for c, f in held:
            f.write("x\n")
            f.flush()
            assert f.readline() == "1 X\n"
        c3, f3 = srv.connect()   # (accepted by the kernel, not yet served)
        f3.write("third\n")
        f3.flush()
        c3.settimeout(1.0)
        with pytest.raises(socket.timeout):
            c3.recv(1)
        c3.settimeout(60)
        held[0][1].close()      # one program ends: the third is served
        held[0][0].close()
        assert f3.readline() == "1 THIRD\n"
        f3.close()
        c3.close()
        held[1][1].close()
        held[1][0].close()
    finally:
        code, err = srv.stop()
    assert code == 0, err


def test_clients_that_leave_mid_output_end_only_their_program(lines, tmp_path):
    srv = Server(lines, tmp_path=tmp_path)
    try:
        for _ in range(20):
            c, f = srv.connect()
            f.write("big\n")
            f.flush()
            c.recv(100)
            f.close()
            c.close()        # 1 MiB still to write: the program gets EPIPE
        c, f = srv.connect()
        with c, f:
            f.write("still here\n")
            f.flush()
            assert f.readline() == "1 STILL HERE\n"
    finally:
        code, err = srv.stop()
    assert code == 0, err


def test_serve_usage_errors(lines, tmp_path):
    r = subprocess.run([str(WISP), "serve", str(lines)], capture_output=True, text=True)
    assert r.returncode == 2 and "needs --listen ADDRESS:PORT" in r.stderr, r
    r = subprocess.run([str(WISP), "serve", "--listen", "nowhere", str(lines)],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "--listen wants ADDRESS:PORT" in r.stderr, r
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    r = subprocess.run([str(WISP), "serve", "--listen", f"127.0.0.1:{port}", str(lines)],
                       capture_output=True, text=True, env=dict(os.environ,
                                                                XDG_RUNTIME_DIR=str(tmp_path)))
    busy.close()
    assert r.returncode != 0 and "cannot listen on" in r.stderr and "in use" in r.stderr, r
    r = subprocess.run([str(WISP), "serve", "--listen", "127.0.0.1:1", "--max-connections",
                        "0", str(lines)], capture_output=True, text=True)
    assert r.returncode == 2 and "--max-connections wants a number" in r.stderr, r
