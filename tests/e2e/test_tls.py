"""TLS streams (wisp_tls): the TLS echo example against Python's ssl and
`openssl s_client`, guest clients against Python ssl servers, streams moved
between processes, and the bad inputs: garbage, stalls, bad certificates,
keys outside the capabilities, truncated records, renegotiation, kills.

Every certificate is made by the test with `openssl` in its own temporary
directory: nothing that expires is kept in the repository."""
import os
import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import ROOT, WISP

HANDSHAKE_TIMEOUT = 20


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A self-signed certificate for localhost/127.0.0.1 (also the clients'
    CA file), and an expired one for localhost."""
    d = tmp_path_factory.mktemp("certs")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "key.pem", "-out", "cert.pem", "-days", "2", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", cwd=d)
    # An expired one: `openssl req` (3.0) cannot date a certificate in the
    # past, `openssl ca` can.
    ca = d / "ca"
    ca.mkdir()
    (ca / "index.txt").write_text("")
    (ca / "serial").write_text("01\n")
    (d / "ca.cnf").write_text(f"""[ca]
default_ca = d
[d]
database = {ca}/index.txt
new_certs_dir = {ca}
serial = {ca}/serial
default_md = sha256
policy = p
copy_extensions = copy
[p]
commonName = supplied
""")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "expired-key.pem", "-out", "expired.csr", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost", cwd=d)
    openssl("ca", "-batch", "-config", "ca.cnf", "-selfsign", "-keyfile", "expired-key.pem",
            "-in", "expired.csr", "-out", "expired.pem", "-startdate", "20200101000000Z",
            "-enddate", "20200102000000Z", cwd=d)
    return d


@pytest.fixture(scope="session")
def tls_echo_wasm(build_proc):
    return build_proc(ROOT / "examples" / "tls-echo" / "tls_echo.c")


@pytest.fixture(scope="session")
def cases_wasm(build_proc):
    return build_proc("tls_cases.c")


def start(args, shared_cache):
    """A wisp run in the background, once it printed its port."""
    env = dict(os.environ, WISP_CACHE_DIR=str(shared_cache), WISP_BACKGROUND_COMPILE="0")
    proc = subprocess.Popen([str(WISP), "run", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    if not line.startswith("listening on 127.0.0.1:"):
        proc.kill()
        pytest.fail(f"no port: {line!r} {proc.stderr.read()}")
    return proc, int(line.rsplit(":", 1)[1])


def stop(proc):
    """Stop it; its stderr."""
    proc.kill()
    _, err = proc.communicate(timeout=30)
    return err


@pytest.fixture
def echo_server(tls_echo_wasm, certs, shared_cache):
    """The TLS echo example; (port, process). ALPN: echo/1, handshakes
    within 3 s, one scheduler (a scheduler blocked by a handshake would
    stop every other connection)."""
    proc, port = start(["--schedulers", "1", "--allow-listen", "127.0.0.1:*",
                        "--dir-ro", f"{certs}::/certs", tls_echo_wasm, 0, "/certs/cert.pem",
                        "/certs/key.pem", "echo/1,http/1.1", 3], shared_cache)
    yield port, proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)


def client_ctx(certs, alpn=None):
    ctx = ssl.create_default_context(cafile=str(certs / "cert.pem"))
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def round_trip(port, certs, data=b"hello over tls", alpn=None):
    with socket.create_connection(("127.0.0.1", port), timeout=HANDSHAKE_TIMEOUT) as raw:
        with client_ctx(certs, alpn).wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(data)
            got = b""
            while len(got) < len(data):
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
            return got, s.selected_alpn_protocol(), s.version()


# ---- the echo example ----

def test_echo_example_serves_python_ssl_clients(echo_server, certs):
    port, _ = echo_server
    got, alpn, version = round_trip(port, certs, alpn=["http/1.1"])
    assert got == b"hello over tls"
    assert alpn == "http/1.1"
    assert version == "TLSv1.3"
    big = os.urandom(1 << 20)
    got, _, _ = round_trip(port, certs, big)
    assert got == big
    # Many at once, each its own process.
    results = []
    threads = [threading.Thread(target=lambda i=i: results.append(
        round_trip(port, certs, f"client {i}".encode())[0] == f"client {i}".encode()))
        for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 20


def test_echo_example_serves_openssl_s_client(echo_server, certs):
    port, _ = echo_server
    for version in ("-tls1_3", "-tls1_2"):
        # -quiet keeps it connected at the end of its input: read the
        # echo, then end it.
        p = subprocess.Popen(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", version,
                              "-CAfile", str(certs / "cert.pem"), "-verify_hostname", "localhost",
                              "-verify_return_error", "-alpn", "echo/1", "-quiet"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        p.stdin.write("line from s_client\n")
        p.stdin.flush()
        timer = threading.Timer(HANDSHAKE_TIMEOUT, p.kill)
        timer.start()
        line = p.stdout.readline()
        timer.cancel()
        p.kill()
        _, err = p.communicate(timeout=HANDSHAKE_TIMEOUT)
        assert line == "line from s_client\n", (version, err)
        assert "verify return:1" in err


def test_a_client_with_no_common_alpn_is_refused(echo_server, certs):
    port, proc = echo_server
    with pytest.raises(ssl.SSLError, match="NO_APPLICATION_PROTOCOL|no application protocol"):
        round_trip(port, certs, alpn=["h2"])
    assert round_trip(port, certs)[0] == b"hello over tls"
    assert "handshake failed: TLS handshake (server): no application protocol" in stop(proc)


# ---- bad input at the server ----

def test_garbage_instead_of_a_client_hello(echo_server, certs):
    port, proc = echo_server
    for garbage in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", bytes(range(256)) * 8):
        with socket.create_connection(("127.0.0.1", port), timeout=HANDSHAKE_TIMEOUT) as s:
            s.sendall(garbage)
            try:
                reply = s.recv(4096)
            except ConnectionResetError:
                reply = b""
            # At most a TLS alert (content type 21), never an echo.
            assert reply == b"" or reply[0] == 21, reply
    assert round_trip(port, certs)[0] == b"hello over tls"
    err = stop(proc)
    assert "handshake failed: TLS handshake (server): http request" in err, err
    assert err.count("handshake failed") == 2, err


def test_a_client_that_refuses_the_certificate_is_reported_in_words(echo_server, certs):
    """The server's side of a client that does not trust its certificate:
    the alert the client sent, said as one (not OpenSSL's "tlsv1 alert
    unknown ca", which reads as the server's own failure)."""
    port, proc = echo_server
    with socket.create_connection(("127.0.0.1", port), timeout=HANDSHAKE_TIMEOUT) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            ssl.create_default_context().wrap_socket(raw, server_hostname="localhost")
    assert round_trip(port, certs)[0] == b"hello over tls"
    err = stop(proc)
    assert ('handshake failed: TLS handshake (server): the client refused it: alert "unknown CA"'
            in err), err


def partial_client_hello(port):
    """A socket that sent the first half of a real ClientHello, then stalls."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ssl.create_default_context().wrap_bio(inc, out, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = out.read()
    s = socket.create_connection(("127.0.0.1", port), timeout=HANDSHAKE_TIMEOUT)
    s.sendall(hello[: len(hello) // 2])
    return s


def test_a_stalled_handshake_times_out_while_others_are_served(echo_server, certs):
    port, proc = echo_server
    stalled = partial_client_hello(port)
    # Meanwhile (one scheduler thread), other clients are served.
    for i in range(5):
        assert round_trip(port, certs, f"during {i}".encode())[0] == f"during {i}".encode()
    # The server gives up on the staller (3 s) and closes it.
    stalled.settimeout(60)
    try:
        assert stalled.recv(4096) == b""     # (a socket.timeout if never closed)
    except ConnectionResetError:
        pass
    stalled.close()
    assert round_trip(port, certs)[0] == b"hello over tls"
    err = stop(proc)
    assert "handshake failed: TLS handshake (server): timed out (errno 73)" in err, err


def test_a_truncated_record_is_an_error_not_data(echo_server, certs):
    port, proc = echo_server
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_ctx(certs).wrap_bio(inc, out, server_hostname="localhost")
    with socket.create_connection(("127.0.0.1", port), timeout=HANDSHAKE_TIMEOUT) as s:
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                s.sendall(out.read())
                inc.write(s.recv(65536))
        s.sendall(out.read())
        obj.write(b"this record is cut short")
        record = out.read()
        s.sendall(record[:-7])          # all but the last 7 bytes of it
        s.shutdown(socket.SHUT_WR)
        echoed = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            inc.write(chunk)
            try:
                echoed += obj.read(65536)
            except (ssl.SSLWantReadError, ssl.SSLZeroReturnError, ssl.SSLError):
                pass
        assert echoed == b""
    assert round_trip(port, certs)[0] == b"hello over tls"
    err = stop(proc)
    assert ("connection ended: TLS read: the peer closed the connection without close_notify "
            "(what it sent may be cut short)") in err, err


def test_renegotiation_is_refused(echo_server, certs):
    port, proc = echo_server
    # s_client renegotiates when it reads a line "R" (TLS 1.2 only; 1.3
    # has no renegotiation at all).
    p = subprocess.Popen(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_2",
                          "-CAfile", str(certs / "cert.pem")],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    p.stdin.write("before\n")
    p.stdin.flush()
    time.sleep(0.5)
    p.stdin.write("R\n")
    p.stdin.flush()
    time.sleep(0.5)
    try:
        p.stdin.write("after\n")
        p.stdin.flush()
    except BrokenPipeError:
        pass
    out, _ = p.communicate(timeout=HANDSHAKE_TIMEOUT)
    assert "RENEGOTIATING" in out
    assert "no renegotiation" in out, out     # the server's refusal
    assert "\nafter\n" not in out            # nothing went on after it
    assert round_trip(port, certs)[0] == b"hello over tls"
    stop(proc)


def test_a_key_outside_the_capabilities_is_denied(cases_wasm, certs, shared_cache, tmp_path):
    # The certificate is in the process's directory; the key is not.
    given = tmp_path / "given"
    given.mkdir()
    (given / "cert.pem").write_bytes((certs / "cert.pem").read_bytes())
    for key in (str(certs / "key.pem"), "/given/../key.pem", "../key.pem"):
        proc, port = start(["--allow-listen", "127.0.0.1:*", "--dir-ro", f"{given}::/given",
                            cases_wasm, "keyout", "/given/cert.pem", key], shared_cache)
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.settimeout(HANDSHAKE_TIMEOUT)
            assert s.recv(100) == b""
        out, err = proc.communicate(timeout=HANDSHAKE_TIMEOUT)
        assert f"accept: rc=76: key file {key}: not below a directory the process was given" \
            in out, (out, err)


def test_a_fifo_as_certificate_file_blocks_no_scheduler(cases_wasm, certs, shared_cache,
                                                      tmp_path):
    """A named pipe in the process's directory, named as the certificate:
    refused as not a regular file. (Opened without O_NONBLOCK, the open
    waited for a writer that never comes, on the only scheduler thread.)"""
    given = tmp_path / "given"
    given.mkdir()
    os.mkfifo(given / "fifo.pem")
    (given / "key.pem").write_bytes((certs / "key.pem").read_bytes())
    proc, port = start(["--schedulers", "1", "--allow-listen", "127.0.0.1:*", "--dir-ro",
                        f"{given}::/given", cases_wasm, "keyout", "/given/fifo.pem",
                        "/given/key.pem"], shared_cache)
    try:
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.settimeout(HANDSHAKE_TIMEOUT)
            assert s.recv(100) == b""
        out, err = proc.communicate(timeout=HANDSHAKE_TIMEOUT)
    finally:
        if proc.poll() is None:
            stop(proc)
    assert "accept: rc=28: certificate file /given/fifo.pem: not a regular file" in out, \
        (out, err)


def test_a_context_from_big_files_is_charged_to_its_stream(cases_wasm, certs, shared_cache,
                                                         tmp_path):
    """A certificate file with a chain of ~900 KB makes a context of ~3.5 MB
    in the host, which the stream using it is charged for: a process under
    a 2 MiB memory limit cannot have one. (Each stream was charged 25 KiB
    whatever its context held: a guest that touched its file before each
    handshake had a fresh 4 MiB context made for every connection it
    kept, past any memory limit.)"""
    given = tmp_path / "given"
    given.mkdir()
    leaf = (certs / "cert.pem").read_text()
    bundle = open("/etc/ssl/certs/ca-certificates.crt").read()
    chain = leaf
    while len(chain) < 1_000_000 - len(bundle):
        chain += bundle
    (given / "chain.pem").write_text(chain)
    (given / "cert.pem").write_text(leaf)
    (given / "key.pem").write_bytes((certs / "key.pem").read_bytes())
    for cert, expected in (("cert.pem", "accept: rc=0: ok"),
                           ("chain.pem", "accept: rc=48: no memory left for a TLS stream")):
        proc, port = start(["--max-memory", "2M", "--allow-listen", "127.0.0.1:*", "--dir-ro",
                            f"{given}::/given", cases_wasm, "keyout", f"/given/{cert}",
                            "/given/key.pem"], shared_cache)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=HANDSHAKE_TIMEOUT) as raw:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                try:
                    with ctx.wrap_socket(raw) as s:
                        s.recv(10)
                except (ssl.SSLError, OSError):
                    pass
            out, err = proc.communicate(timeout=HANDSHAKE_TIMEOUT)
        finally:
            if proc.poll() is None:
                stop(proc)
        assert expected in out, (cert, out, err)


# ---- guest clients against Python servers ----

def python_server(certfile, keyfile, alpn=None, clean_end=False):
    """A Python ssl echo server (one connection per call to serve); port.
    It closes without close_notify (Python's close sends none) unless
    clean_end."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certfile, keyfile)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(8)

    def serve():
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            try:
                with ctx.wrap_socket(c, server_side=True) as s:
                    s.sendall(s.recv(100))
                    if clean_end:
                        s.unwrap()
            except (ssl.SSLError, OSError):
                pass

    threading.Thread(target=serve, daemon=True).start()
    return ls


@pytest.mark.parametrize("case", ["ok", "ok-alpn", "self-signed", "expired", "wrong-host",
                                  "no-verify"])
def test_c_client_verifies_the_server(wisp, cases_wasm, certs, case):
    cert, key = certs / "cert.pem", certs / "key.pem"
    if case == "expired":
        cert, key = certs / "expired.pem", certs / "expired-key.pem"
    ls = python_server(cert, key, alpn=["echo/1"] if case == "ok-alpn" else None)
    port = ls.getsockname()[1]
    ca = {"self-signed": "-", "no-verify": "-"}.get(case, f"/certs/{cert.name}")
    name = "example.com" if case == "wrong-host" else "localhost"
    flags = "1" if case == "no-verify" else "0"
    alpn = "h2,echo/1" if case == "ok-alpn" else "-"
    try:
        r = wisp("run", "--allow-connect", f"127.0.0.1:{port}", "--dir-ro", f"{certs}::/certs",
                 cases_wasm, "client", port, name, ca, flags, alpn)
    finally:
        ls.close()
    assert r.code == 0, (r.out, r.err)
    expected = {
        "ok": "handshake ok alpn=\necho: ping\n",
        "ok-alpn": "handshake ok alpn=echo/1\necho: ping\n",
        "no-verify": "handshake ok alpn=\necho: ping\n",
        # What is wrong, and what the certificate says when that helps.
        "self-signed": "handshake failed: rc=65: TLS handshake (client) with localhost: the "
                       "server's certificate was refused: self-signed certificate (issuer "
                       "/CN=localhost is not a trusted CA: give its certificate as the CA file "
                       "to trust it)\n",
        "expired": "handshake failed: rc=65: TLS handshake (client) with localhost: the "
                   "server's certificate was refused: certificate has expired\n",
        "wrong-host": "handshake failed: rc=65: TLS handshake (client) with example.com: the "
                      "server's certificate was refused: hostname mismatch (it is for "
                      "localhost, 127.0.0.1)\n",
    }[case]
    assert r.out == expected, r.err


# ---- moving and killing ----

def test_a_tls_stream_moves_to_another_process(cases_wasm, certs, shared_cache):
    proc, port = start(["--allow-listen", "127.0.0.1:*", "--dir-ro", f"{certs}::/certs",
                        cases_wasm, "move", "/certs/cert.pem", "/certs/key.pem"], shared_cache)
    with socket.create_connection(("127.0.0.1", port), timeout=HANDSHAKE_TIMEOUT) as raw:
        with client_ctx(certs, ["echo/1"]).wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"first")
            assert s.recv(100) == b"first"
            # Now served by the worker, over the same TLS session.
            for i in range(3):
                s.sendall(f"moved {i}".encode())
                assert s.recv(100) == f"moved {i}".encode()
    out, err = proc.communicate(timeout=HANDSHAKE_TIMEOUT)
    assert proc.returncode == 0, err
    assert "acceptor echoed first\n" in out
    assert "acceptor's fd after the move: rc=8\n" in out      # EBADF: not its own any more
    assert "worker got a TLS stream: rc=0 alpn=echo/1\n" in out
    assert "worker echoed 21 bytes\n" in out


def test_shutdown_of_writing_sends_close_notify(cases_wasm, certs, shared_cache):
    """shutdown(SHUT_WR) on a TLS stream ends it as TLS ends a stream (a
    close_notify before the FIN): a client that refuses truncated streams
    reads the end, not an error, and can still answer; later writes are
    EPIPE. (The HTTP server closes its connections so.)"""
    proc, port = start(["--allow-listen", "127.0.0.1:*", "--dir-ro", f"{certs}::/certs",
                        cases_wasm, "halfclose", "/certs/cert.pem", "/certs/key.pem"],
                       shared_cache)
    with socket.create_connection(("127.0.0.1", port), timeout=HANDSHAKE_TIMEOUT) as raw:
        with client_ctx(certs).wrap_socket(raw, server_hostname="localhost",
                                           suppress_ragged_eofs=False) as s:
            got = b""
            while True:
                chunk = s.recv(100)       # SSLEOFError on a FIN without close_notify
                if not chunk:
                    break
                got += chunk
            assert got == b"bye"
            s.sendall(b"ack")
            out, err = proc.communicate(timeout=HANDSHAKE_TIMEOUT)
    assert proc.returncode == 0, err
    assert out.splitlines() == [
        "shutdown: 0",
        "read after shutdown: rc=0 ack",
        "write after shutdown: rc=64: TLS write: the stream was shut down for writing",
    ], out + err


def test_killing_a_process_mid_handshake_leaks_nothing(cases_wasm, certs, shared_cache):
    """Each handler is killed while parked in its handshake; the SSL state
    in its fd table goes with it (under ASan, LeakSanitizer checks at the
    exit of wisp)."""
    n = 5
    proc, port = start(["--allow-listen", "127.0.0.1:*", "--dir-ro", f"{certs}::/certs",
                        cases_wasm, "kill", "/certs/cert.pem", "/certs/key.pem", n],
                       shared_cache)
    stalled = []
    for _ in range(n):
        s = partial_client_hello(port)
        stalled.append(s)
        s.settimeout(HANDSHAKE_TIMEOUT)
        try:
            assert s.recv(100) == b""     # closed by the kill, no answer
        except ConnectionResetError:
            pass
    out, err = proc.communicate(timeout=60)
    for s in stalled:
        s.close()
    assert proc.returncode == 0, err
    assert out.endswith(f"killed {n}\n"), (out, err)
    assert "LeakSanitizer" not in err and "AddressSanitizer" not in err, err


# ---- Rust ----

@pytest.mark.parametrize("case", ["ok", "truncated", "expired", "no-name"])
def test_rust_client_against_a_python_server(wisp, build_rust, certs, case):
    """Its errors carry the host's reason, on reads as on handshakes."""
    wasm = build_rust("tls_client")
    cert, key = certs / "cert.pem", certs / "key.pem"
    if case == "expired":
        cert, key = certs / "expired.pem", certs / "expired-key.pem"
    ls = python_server(cert, key, alpn=["echo/1"], clean_end=case == "ok")
    port = ls.getsockname()[1]
    try:
        r = wisp("run", "--allow-connect", f"127.0.0.1:{port}", "--dir-ro", f"{certs}::/certs",
                 wasm, port, "-" if case == "no-name" else "localhost", f"/certs/{cert.name}")
    finally:
        ls.close()
    assert r.code == 0, r.err
    echoed = 'connected, alpn Some("echo/1")\necho: hello from rust\n'
    if case == "ok":
        assert r.out == echoed + "end: ok\n", r.err
    elif case == "truncated":
        assert r.out == echoed + ("end: error: ConnectionReset: TLS read: the peer closed the "
                                  "connection without close_notify (what it sent may be cut "
                                  "short)\n"), r.err
    elif case == "no-name":
        assert r.out == ("error: InvalidInput: a verifying TLS client needs the server's name, "
                         "which its certificate must carry: ClientConfig::server_name (or "
                         "danger_accept_any_certificate, for tests)\n"), r.err
    else:
        assert r.out == ("error: Other: TLS handshake (client) with localhost: the server's "
                         "certificate was refused: certificate has expired\n"), r.err


# ---- the node's context cache ----

def make_identity(d, name, cn):
    """A fresh self-signed P-256 certificate and key: d/name.pem, d/name-key.pem."""
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}-key.pem", "-out", f"{name}.pem", "-days", "2", "-subj",
            f"/CN={cn}", cwd=d)
    return (d / f"{name}.pem").read_bytes(), (d / f"{name}-key.pem").read_bytes()


def settle(*paths):
    """Wait until the files last changed over a second ago: wisp caches
    nothing from a file changed more recently (a rewrite within one tick of
    the file system's clock keeps its stat), and these tests are about what
    is cached."""
    newest = max(max(os.stat(p).st_ctime, os.stat(p).st_mtime) for p in paths)
    time.sleep(max(0.0, newest + 1.2 - time.time()))


def served_certificate(port):
    """The DER certificate the server at port presents (nothing verified:
    which certificate it is, is the question)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=HANDSHAKE_TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"x")
            assert s.recv(10) == b"x"
            return s.getpeercert(binary_form=True)


def der(pem):
    return ssl.PEM_cert_to_DER_cert(pem.decode())


def test_a_certificate_replaced_on_disk_is_served(tls_echo_wasm, shared_cache, tmp_path):
    """The node keeps the context made from a certificate and key, keyed by
    the files' identity: a certificate rewritten in place (same inode) or
    replaced by a rename (a new inode) is what the next handshake presents,
    and twice (the second from the cache)."""
    gen, served = tmp_path / "gen", tmp_path / "served"
    gen.mkdir()
    served.mkdir()
    cert, key = served / "cert.pem", served / "key.pem"
    a = make_identity(gen, "a", "first")
    cert.write_bytes(a[0])
    key.write_bytes(a[1])
    settle(cert, key)
    proc, port = start(["--allow-listen", "127.0.0.1:*", "--dir-ro", f"{served}::/certs",
                        tls_echo_wasm, 0, "/certs/cert.pem", "/certs/key.pem"], shared_cache)
    try:
        for _ in range(2):
            assert served_certificate(port) == der(a[0])
        # Rewritten in place: the same inodes, new contents.
        b = make_identity(gen, "b", "second")
        ino = cert.stat().st_ino
        with open(cert, "r+b") as f:
            f.truncate(0)
            f.write(b[0])
        with open(key, "r+b") as f:
            f.truncate(0)
            f.write(b[1])
        assert cert.stat().st_ino == ino
        assert served_certificate(port) == der(b[0])      # not settled: built, not kept
        settle(cert, key)
        for _ in range(2):
            assert served_certificate(port) == der(b[0])
        # Replaced by renames: new inodes.
        c = make_identity(gen, "c", "third")
        (served / "key.new").write_bytes(c[1])
        (served / "cert.new").write_bytes(c[0])
        settle(served / "key.new", served / "cert.new")
        os.rename(served / "key.new", key)
        os.rename(served / "cert.new", cert)
        for _ in range(2):
            assert served_certificate(port) == der(c[0])
    finally:
        err = stop(proc)
    assert "handshake failed" not in err, err


def test_a_process_without_the_directory_cannot_use_a_cached_context(cases_wasm, certs,
                                                                     shared_cache):
    """The parent's handshake leaves the node a context made from
    /certs/cert.pem and key.pem; a child spawned with no directories names
    the same paths and is refused, as if nothing were cached; the parent
    still is served."""
    settle(certs / "cert.pem", certs / "key.pem")
    proc, port = start(["--allow-listen", "127.0.0.1:*", "--dir-ro", f"{certs}::/certs",
                        cases_wasm, "shared", "/certs/cert.pem", "/certs/key.pem"], shared_cache)
    assert round_trip(port, certs)[0] == b"hello over tls"
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.settimeout(HANDSHAKE_TIMEOUT)
        s.sendall(b"\x16\x03\x01")          # the start of a ClientHello: never answered
        try:
            assert s.recv(100) == b""
        except ConnectionResetError:
            pass
    assert round_trip(port, certs)[0] == b"hello over tls"
    out, err = proc.communicate(timeout=HANDSHAKE_TIMEOUT)
    assert proc.returncode == 0, err
    assert out.splitlines() == [
        "parent: rc=0: ok",
        "child: rc=76: certificate file /certs/cert.pem: not below a directory the process "
        "was given (--dir)",
        "parent again: rc=0: ok",
    ], (out, err)


def test_poll_sees_a_record_read_ahead(cases_wasm, certs, shared_cache):
    """Two records in one TCP segment: the host reads both from the socket
    at once (OpenSSL's read-ahead) and the guest's first read decrypts the
    first; the second is in no socket buffer any more, and poll must still
    call the fd readable."""
    proc, port = start(["--allow-listen", "127.0.0.1:*", "--dir-ro", f"{certs}::/certs",
                        cases_wasm, "poll", "/certs/cert.pem", "/certs/key.pem"], shared_cache)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_ctx(certs).wrap_bio(inc, out, server_hostname="localhost")
    with socket.create_connection(("127.0.0.1", port), timeout=HANDSHAKE_TIMEOUT) as s:
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                s.sendall(out.read())
                inc.write(s.recv(65536))
        s.sendall(out.read())
        obj.write(b"first")
        obj.write(b"second")
        s.sendall(out.read())              # both records, one send
        got, err = proc.communicate(timeout=60)
    assert got == "read first\npoll: 1 POLLIN\nread second\n", (got, err)


def test_a_wasi_read_then_a_wisp_net_read_both_wake(cases_wasm, certs, shared_cache):
    """A TLS stream read with WASI's fd_read, which waits, then with
    wisp_net_read, which waits too: the second wakes when its data comes.
    (fd_read's wait armed the registered socket one-shot, and the socket's
    edge-triggered registration was gone: wisp_net_read's wait, with no
    time limit, was never woken.)"""
    proc, port = start(["--allow-listen", "127.0.0.1:*", "--dir-ro", f"{certs}::/certs",
                        cases_wasm, "mixed", "/certs/cert.pem", "/certs/key.pem"], shared_cache)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=HANDSHAKE_TIMEOUT) as raw:
            with client_ctx(certs).wrap_socket(raw, server_hostname="localhost") as s:
                time.sleep(0.3)              # the server waits in read(2) meanwhile
                s.sendall(b"a")
                assert s.recv(100) == b"got a"
                time.sleep(0.3)              # and now in wisp_net_read
                s.sendall(b"b")
                assert s.recv(100) == b"got b"    # (socket.timeout if never woken)
    except BaseException:
        stop(proc)
        raise
    out, err = proc.communicate(timeout=HANDSHAKE_TIMEOUT)
    assert out.splitlines() == ["read: a", "wisp_net_read: rc=0 b"], (out, err)
