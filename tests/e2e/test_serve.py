"""wisp serve: an unmodified WASI program (tests/guests/c/lines.c) as a
network service, a fresh process per TCP connection with its stdin and
stdout on the socket."""
import os
import resource
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import WISP


class Server:
    def __init__(self, module, *opts, tmp_path, nofile=None):
        env = dict(os.environ, XDG_RUNTIME_DIR=str(tmp_path), WISP_BACKGROUND_COMPILE="0",
                   WISP_CACHE_DIR=str(tmp_path / "cache"))

        def limit():
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.p = subprocess.Popen([str(WISP), "serve", "--listen", "127.0.0.1:0", *opts,
                                   str(module)], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, preexec_fn=limit)
        seen = []
        while not seen or not seen[-1].startswith("wisp: serving on 127.0.0.1:"):
            line = self.p.stderr.readline()
            if not line:
                self.p.kill()
                self.p.wait()
                raise AssertionError("wisp serve did not start: " + "".join(seen))
            seen.append(line)
        self.banner = seen[-1]
        self.port = int(seen[-1].split("127.0.0.1:")[1].split()[0])

    def connect(self, timeout=60):
        c = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
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
    for bad in ("soon", "-1", "1000001", ""):
        r = subprocess.run([str(WISP), "serve", "--listen", "127.0.0.1:1", "--idle-timeout", bad,
                            str(lines)], capture_output=True, text=True)
        assert r.returncode == 2 and "--idle-timeout" in r.stderr, (bad, r)


@pytest.mark.parametrize("port", ["99999", "65536", "-1", "http", "+80", "0x50", " 80"])
def test_a_port_out_of_range_is_a_usage_error_not_another_port(lines, port):
    """getaddrinfo takes 99999 and listens on its low 16 bits (34463): the
    user would be told a port they never asked for."""
    r = subprocess.run([str(WISP), "serve", "--listen", f"127.0.0.1:{port}", str(lines)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r
    assert f"the port must be a number from 0 to 65535 (0: any), not '127.0.0.1:{port}'" \
        in r.stderr, r


def test_listen_after_the_module_says_where_it_goes(lines):
    r = subprocess.run([str(WISP), "serve", str(lines), "--listen", "127.0.0.1:0"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r
    assert "needs --listen ADDRESS:PORT" in r.stderr and "before module.wasm" in r.stderr, r


@pytest.mark.parametrize("opt", ["--stdin", "--stdout"])
def test_stdin_and_stdout_options_are_refused_they_are_the_connection(lines, opt):
    r = subprocess.run([str(WISP), "serve", "--listen", "127.0.0.1:0", opt, "null", str(lines)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r
    assert "stdin and stdout are its connection" in r.stderr, r


def test_a_limit_of_one_connection_is_said_in_the_singular(lines, tmp_path):
    srv = Server(lines, "--max-connections", "1", tmp_path=tmp_path)
    try:
        assert "(at most 1 connection at once," in srv.banner, srv.banner
        c, f = srv.connect()
        with c:
            assert ask(f, "hi\n") == "1 HI\n"
    finally:
        code, err = srv.stop()
    assert code == 0, err


def fds_of(pid):
    return sorted(int(n) for n in os.listdir(f"/proc/{pid}/fd"))


def ask(f, line):
    """line's answer, or "" if the server closed the connection (a reset
    if it closed it with line unread)."""
    try:
        f.write(line)
        f.flush()
        return f.readline()
    except (ConnectionResetError, BrokenPipeError):
        return ""


def test_connections_past_the_fd_reserve_are_closed_and_serving_goes_on(lines, tmp_path):
    """Under RLIMIT_NOFILE 128 the runtime keeps fds 96-127 (a quarter).
    Each connection costs the server 3 fds (the socket, its copy for
    stdout, a copy of stderr); they used to be taken with no check, so 39
    clients took every fd the runtime kept for itself and the rest waited
    in the backlog for ever. Now a connection that would dip into the
    reserve is closed at once (said once), those below it are served, the
    reserve stays free, and once clients leave, new ones are served."""
    nofile, ceiling = 128, 96
    srv = Server(lines, tmp_path=tmp_path, nofile=nofile)
    served, refused, conns = 0, 0, []
    try:
        for k in range(60):
            c, f = srv.connect(timeout=30)
            conns.append((c, f))
            got = ask(f, f"c{k}\n")
            if got == f"1 C{k}\n":
                served += 1
            else:
                assert got == "", got     # closed unserved
                refused += 1
        assert served >= 10 and refused >= 10, (served, refused)
        # The reserve is the runtime's: no fd of wisp's lies there (but
        # for an instant while a refusal is closing its fds).
        for _ in range(100):
            if fds_of(srv.p.pid)[-1] < ceiling:
                break
            time.sleep(0.1)
        assert fds_of(srv.p.pid)[-1] < ceiling, fds_of(srv.p.pid)
        for c, f in conns:
            f.close()
            c.close()
        conns = []
        # Every program ends with its client: all served again.
        for k in range(served):
            c, f = srv.connect(timeout=30)
            conns.append((c, f))
            got = ""
            for _ in range(100):
                got = ask(f, "again\n")
                if got != "":
                    break
                # (a program of the first round not yet ended: its fds
                # still taken, this one was closed unserved: try again)
                f.close()
                c.close()
                time.sleep(0.1)
                c, f = srv.connect(timeout=30)
                conns[-1] = (c, f)
            assert got.endswith(" AGAIN\n"), (k, got)
    finally:
        for c, f in conns:
            f.close()
            c.close()
        code, err = srv.stop()
    assert code == 0, err
    assert err.count("the host is out of fds") == 1, err       # said once
    assert "closed unserved for want of fds" in err, err       # and counted


def test_an_active_client_is_not_cut(lines, tmp_path):
    """Data crossing the connection, either way, keeps it: a client
    sending a line every 0.1 s for longer than the timeout is served to
    the end."""
    srv = Server(lines, "--idle-timeout", "2", tmp_path=tmp_path)
    try:
        c, f = srv.connect()
        with c, f:
            end = time.monotonic() + 5
            i = 0
            while time.monotonic() < end:
                i += 1
                f.write(f"line {i}\n")
                f.flush()
                assert f.readline() == f"{i} LINE {i}\n"
                time.sleep(0.1)
            f.write("quit\n")
            f.flush()
            assert f.readline() == ""
    finally:
        code, err = srv.stop()
    assert code == 0, err
    assert "idle" not in err, err   # (what came after "serving on")


@pytest.mark.parametrize("client", ["silent", "never_reads"])
def test_an_idle_client_is_cut_and_frees_its_slot(lines, tmp_path, client):
    """A client that sends nothing, or asks for 16 MiB and never reads it,
    held its program and its slot of --max-connections for ever. With
    --idle-timeout 1 its program is killed once no data has crossed the
    connection for a second: the connection closes and the client queued
    behind it is served."""
    srv = Server(lines, "--max-connections", "1", "--idle-timeout", "1", tmp_path=tmp_path)
    try:
        c1, f1 = srv.connect()
        if client == "never_reads":
            f1.write("big\n" * 16)   # 16 MiB: more than the sockets' buffers
            f1.flush()
        else:
            f1.write("first\n")   # (its program is up and waiting)
            f1.flush()
            assert f1.readline() == "1 FIRST\n"
        c2, f2 = srv.connect()     # waits in the backlog behind c1
        f2.write("second\n")
        f2.flush()
        assert f2.readline() == "1 SECOND\n"
        # c1 is closed: end of file (or a reset, data being unread).
        try:
            while c1.recv(65536):
                pass
        except ConnectionResetError:
            pass
        for x in (f1, c1, f2, c2):
            x.close()
    finally:
        code, err = srv.stop()
    assert code == 0, err
    assert err.count("was closed, its program killed (--idle-timeout") == 1, err
    assert "closed idle" in err, err
    # An idle cut is the server closing a connection, not a crash: no report.
    assert "crash report" not in err, err


def test_a_client_that_waited_for_its_turn_is_not_cut_when_it_gets_it(lines, tmp_path):
    """The kernel's idle clock starts at the handshake: a client that
    waited in the backlog longer than --idle-timeout (the one slot busy)
    had its program killed at the first sweep after it was accepted,
    before it could say a word. Idle time now counts from the accept."""
    srv = Server(lines, "--max-connections", "1", "--idle-timeout", "3", tmp_path=tmp_path)
    try:
        c1, f1 = srv.connect()
        c2, f2 = srv.connect()     # waits behind c1, saying nothing
        end = time.monotonic() + 4
        i = 0
        while time.monotonic() < end:   # c1 busy for longer than the timeout
            i += 1
            assert ask(f1, f"x{i}\n") == f"{i} X{i}\n"
            time.sleep(0.2)
        assert ask(f1, "quit\n") == ""   # c2's turn
        time.sleep(1)                    # (a few sweeps: 0.3 s apart)
        assert ask(f2, "second\n") == "1 SECOND\n"
        for x in (f1, c1, f2, c2):
            x.close()
    finally:
        code, err = srv.stop()
    assert code == 0, err
    assert "closed idle" not in err, err


def test_a_program_that_shut_its_side_is_still_cut_when_idle(lines, tmp_path):
    """A program that shuts its sending side down (shutdown(SHUT_WR), a
    lingering close) and reads on, with a client that says nothing more:
    its socket left ESTABLISHED, the sweep took it for closed and forgot
    it, and the program held its slot for ever (the next client never
    served). It is still the server's: cut when idle."""
    srv = Server(lines, "--max-connections", "1", "--idle-timeout", "1", tmp_path=tmp_path)
    try:
        c1, f1 = srv.connect()
        assert ask(f1, "first\n") == "1 FIRST\n"
        assert ask(f1, "shut\n") == ""       # end of file: the program's side is shut
        c2, f2 = srv.connect()
        assert ask(f2, "second\n") == "1 SECOND\n"
        for x in (f1, c1, f2, c2):
            x.close()
    finally:
        code, err = srv.stop()
    assert code == 0, err
    assert "connections 1 closed idle" in err, err
