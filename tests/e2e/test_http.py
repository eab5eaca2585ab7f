"""wisp::http, the Rust crate's HTTP/1.1 server (feature `http`): its
example web service (sdk/rust/examples/src/bin/web.rs) run by the real
./wisp and driven from Python with http.client and raw sockets: the
routes, keep-alive, pipelining, chunked bodies both ways, HTTPS, and bad
input (oversized heads, too many headers, malformed request lines, bodies
over the limit, slowloris clients, HTTP/1.0, `Connection: close`).

Each server runs with `--metrics`, so a test can read how many processes
are alive (`wisp_processes`): one per open connection plus the acceptor;
what a bad client cost must be gone once it is closed.

Building needs what tests/e2e/test_rust_sdk.py needs, and Debian's
librust-httparse-dev (scripts/setup.sh)."""
import http.client
import json
import os
import re
import select
import socket
import ssl
import subprocess
import time

import pytest

from conftest import ROOT, WISP

SDK = ROOT / "sdk" / "rust"


@pytest.fixture(scope="module")
def web_wasm(build_dir, shared_cache):
    env = dict(os.environ, CARGO_TARGET_DIR=str(build_dir / "rust-sdk-target"))
    r = subprocess.run([str(ROOT / "scripts" / "cargo-wasm"), "build", "--release", "-p", "wisp-examples",
                        "--bin", "web"], cwd=SDK, env=env, capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        pytest.fail(f"building the web example failed (run 'sudo scripts/setup.sh'):\n{r.stderr}", pytrace=False)
    return build_dir / "rust-sdk-target" / "wasm32-wasip1" / "release" / "web.wasm"


class Web:
    """The web example under `wisp run --metrics`, once it listens."""

    def __init__(self, wasm, shared_cache, *args, wisp_args=()):
        env = dict(os.environ, WISP_CACHE_DIR=str(shared_cache), WISP_BACKGROUND_COMPILE="0")
        self.p = subprocess.Popen([str(WISP), "run", "--metrics", "127.0.0.1:0", "--allow-listen", "127.0.0.1:*",
                                   *wisp_args, str(wasm), "0", *map(str, args)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.err = []
        self.metrics_port = None
        while self.metrics_port is None:
            line = self._line(self.p.stderr, 300)
            self.err.append(line)
            m = re.match(r"wisp: metrics at http://127\.0\.0\.1:(\d+)/metrics", line)
            self.metrics_port = m and int(m.group(1))
        line = self._line(self.p.stdout, 300)
        m = re.match(r"listening on (https?)://127\.0\.0\.1:(\d+)$", line.strip())
        assert m, (line, self.stop())
        self.port = int(m.group(2))

    def _line(self, f, timeout):
        r, _, _ = select.select([f], [], [], timeout)
        line = f.readline() if r else ""
        if not line:
            raise AssertionError(f"the web example did not start: {self.stop()}")
        return line

    def connect(self, timeout=30):
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    def processes(self):
        """wisp_processes: the processes alive in the run."""
        c = http.client.HTTPConnection("127.0.0.1", self.metrics_port, timeout=30)
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
        c.close()
        return int(re.search(r"^wisp_processes (\d+)$", text, re.M).group(1))

    def settle(self, want, limit=60):
        """Wait (at most `limit` s) until `want` processes are alive;
        the count then."""
        end = time.monotonic() + limit
        n = self.processes()
        while n != want and time.monotonic() < end:
            time.sleep(0.1)
            n = self.processes()
        return n

    def stop(self):
        if self.p.poll() is None:
            self.p.kill()
        _, err = self.p.communicate(timeout=30)
        return "".join(self.err) + err


@pytest.fixture
def web(web_wasm, shared_cache):
    servers = []

    def start(*args, wisp_args=()):
        s = Web(web_wasm, shared_cache, *args, wisp_args=wisp_args)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()


# ---------------------------------------------------------------------------
# raw HTTP on a socket

def read_response(f):
    """One response from a socket's file: (status, headers dict with
    lower-case names, body bytes, version). The body as its framing says:
    Content-Length, chunked, or up to the end of the stream."""
    line = f.readline()
    assert line, "the connection closed before a response"
    version, status, _ = line.decode().split(" ", 2)
    headers = {}
    while True:
        h = f.readline().decode()
        assert h, "the connection closed within a head"
        if h in ("\r\n", "\n"):
            break
        name, value = h.split(":", 1)
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = f.read(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            size = int(f.readline().split(b";")[0], 16)
            if size == 0:
                assert f.readline() == b"\r\n"
                break
            body += f.read(size)
            assert f.read(2) == b"\r\n"
    else:
        body = f.read()
    return int(status), headers, body, version


def closed(sock):
    """True if the peer closed the connection (after all it sent was read)."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def exchange(web, raw, ends=True):
    """Send `raw` on a new connection; (status, headers, body, whether the
    server then closed it: only looked at if `ends`, else None)."""
    with web.connect() as s:
        s.sendall(raw)
        f = s.makefile("rb")
        status, headers, body, _ = read_response(f)
        end = f.read(1) == b"" if ends else None
        return status, headers, body, end


# ---------------------------------------------------------------------------
# the service

def test_routes_on_one_keep_alive_connection(web):
    w = web()
    c = http.client.HTTPConnection("127.0.0.1", w.port, timeout=30)
    c.request("GET", "/")
    r = c.getresponse()
    assert (r.status, r.read()) == (200, b"Hello, world!\n")
    assert r.getheader("Content-Type") == "text/plain; charset=utf-8"
    assert re.match(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$", r.getheader("Date"))
    sock = c.sock
    c.request("GET", "/16k")
    r = c.getresponse()
    body = r.read()
    assert r.status == 200 and len(body) == 16384 and body[:3] == b"abc" and body[63:64] == b"\n"
    c.request("POST", "/echo", body=b"x" * 100_000)
    r = c.getresponse()
    assert (r.status, r.read()) == (200, b"x" * 100_000)
    c.request("GET", "/json")
    r = c.getresponse()
    assert r.getheader("Content-Type") == "application/json"
    assert json.loads(r.read()) == {"message": "Hello, world!"}
    c.request("POST", "/json", body=b'{"name":"wisp"}')
    r = c.getresponse()
    assert json.loads(r.read()) == {"greeting": "Hello, wisp!", "length": 15}
    c.request("POST", "/json", body=b"{not json")
    r = c.getresponse()
    assert r.status == 400 and r.read().startswith(b"bad JSON: ")
    c.request("GET", "/stream?n=5")
    r = c.getresponse()
    assert r.getheader("Transfer-Encoding") == "chunked"
    assert r.read() == b"".join(b"line %d\n" % i for i in range(5))
    c.request("HEAD", "/16k")
    r = c.getresponse()
    assert (r.status, r.getheader("Content-Length"), r.read()) == (200, "16384", b"")
    c.request("GET", "/nowhere")
    r = c.getresponse()
    assert (r.status, r.read()) == (404, b"not found\n")
    c.request("DELETE", "/echo")
    r = c.getresponse()
    assert r.status == 405 and r.read() == b"method not allowed\n"
    assert c.sock is sock, "http.client had to reconnect: the connection did not stay open"
    assert w.processes() == 2          # the acceptor and this connection
    c.close()
    assert w.settle(1) == 1


def test_chunked_request_bodies_are_decoded(web):
    w = web()
    body = (b"5;ext=1\r\nhello\r\n"      # a chunk extension
            b"7\r\n, world\r\n"
            b"0\r\nX-Trailer: yes\r\n\r\n")   # a trailer field
    status, headers, got, _ = exchange(w, b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body,
                                       ends=False)
    assert (status, got, headers["transfer-encoding"]) == (200, b"hello, world", "chunked")
    # A chunk whose size does not parse: 400, and the connection closes.
    status, _, got, end = exchange(w, b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                      b"zz\r\nhello\r\n0\r\n\r\n")
    assert (status, end) == (400, True)
    # A chunk longer than its size: the handler's read fails after the
    # response began (echo streams), so the connection just closes, the
    # chunked response left unterminated (the client sees it is cut).
    with w.connect() as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
        assert data.startswith(b"HTTP/1.1 200 OK\r\n") and not data.endswith(b"0\r\n\r\n"), data


def test_expect_100_continue(web):
    w = web()
    with w.connect() as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        f = s.makefile("rb")
        assert f.readline() == b"HTTP/1.1 100 Continue\r\n" and f.readline() == b"\r\n"
        s.sendall(b"hello")
        status, _, body, _ = read_response(f)
        assert (status, body) == (200, b"hello")


def test_pipelined_requests_are_answered_in_order(web):
    w = web()
    reqs = (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
            b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
            b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /16k HTTP/1.1\r\nHost: x\r\n\r\n")
    with w.connect() as s:
        s.sendall(reqs * 20)   # one write: the server finds them all buffered
        f = s.makefile("rb")
        for _ in range(20):
            assert read_response(f)[::2] == (200, b"Hello, world!\n")
            assert read_response(f)[::2] == (200, b"abc")
            assert read_response(f)[::2] == (200, b'{"message":"Hello, world!"}')
            assert read_response(f)[::2] == (200, b"hi")
            assert read_response(f)[::2] == (404, b"not found\n")
            status, _, body, _ = read_response(f)
            assert (status, len(body)) == (200, 16384)
        # The connection is still open for more.
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(f)[::2] == (200, b"Hello, world!\n")


def test_http10_closes_unless_asked_to_keep_alive(web):
    w = web()
    with w.connect() as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        f = s.makefile("rb")
        status, headers, body, version = read_response(f)
        assert (version, status, body, headers.get("connection")) == ("HTTP/1.0", 200, b"Hello, world!\n", "close")
        assert f.read(1) == b""
    with w.connect() as s:
        f = s.makefile("rb")
        for _ in range(3):
            s.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            status, headers, body, version = read_response(f)
            assert (version, status, headers["connection"]) == ("HTTP/1.0", 200, "keep-alive")
        # A streamed body in HTTP/1.0 has no chunks: it ends with the connection.
        s.sendall(b"GET /stream?n=2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        status, headers, body, _ = read_response(f)
        assert (status, body, headers["connection"]) == (200, b"line 0\nline 1\n", "close")
        assert "transfer-encoding" not in headers


def test_connection_close_is_honoured(web):
    w = web()
    status, headers, body, end = exchange(w, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                                             b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (status, body, headers["connection"], end) == (200, b"Hello, world!\n", "close", True)
    assert w.settle(1) == 1


def test_a_handler_that_panics_ends_only_its_connection(web):
    w = web()
    other = http.client.HTTPConnection("127.0.0.1", w.port, timeout=30)
    other.request("GET", "/")
    assert other.getresponse().read() == b"Hello, world!\n"
    with w.connect() as s:
        s.sendall(b"GET /panic HTTP/1.1\r\nHost: x\r\n\r\n")
        assert closed(s)
    other.request("GET", "/json")
    assert other.getresponse().status == 200
    other.close()
    assert w.settle(1) == 1
    assert "a handler panics on purpose" in w.stop()


# ---------------------------------------------------------------------------
# bad input

@pytest.mark.parametrize("raw", [
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
    b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost x\r\n\r\n",                       # a header without its colon
    b"GET\x01 / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",                                 # HTTP/1.1 without Host
    b"GET / HTTP/1.1\r\nHost: x\r\nhost: y\r\n\r\n",               # two Hosts: which did a proxy see?
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(32) + b"\r\n\r\n",   # TLS to a plain server
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -3\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
], ids=["garbage", "version", "space-in-target", "no-colon", "control-in-method", "no-host", "two-hosts",
        "tls-hello", "two-lengths", "negative-length", "length-and-chunked"])
def test_malformed_requests_are_400_and_close(web_wasm, shared_cache, raw, request):
    w = Web(web_wasm, shared_cache)
    request.addfinalizer(w.stop)
    status, headers, body, end = exchange(w, raw)
    assert (status, headers["connection"], end) == (400, "close", True), body
    assert w.settle(1) == 1


def test_unknown_transfer_coding_is_501(web):
    w = web()
    status, _, _, end = exchange(w, b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")
    assert (status, end) == (501, True)


def test_oversized_heads_are_431(web):
    w = web("--max-head", 4096)
    big = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8000 + b"\r\n\r\n"
    status, headers, _, end = exchange(w, big)
    assert (status, headers["connection"], end) == (431, "close", True)
    many = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(100)) + b"\r\n"
    status, _, _, end = exchange(w, many)                 # 64 headers at most by default
    assert (status, end) == (431, True)
    long_line = b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    status, _, _, end = exchange(w, long_line)
    assert (status, end) == (414, True)
    # Just below the limit is fine.
    ok = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 3900 + b"\r\n\r\n"
    assert exchange(w, ok, ends=False)[:3:2] == (200, b"Hello, world!\n")
    assert w.settle(1) == 1


def test_bodies_over_the_limit_are_413(web):
    w = web("--max-body", 1000)
    # Announced: refused before the handler runs, even as the client goes on sending.
    with w.connect() as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"y" * 5000)
        f = s.makefile("rb")
        status, headers, _, _ = read_response(f)
        assert (status, headers["connection"]) == (413, "close")
        try:
            s.sendall(b"y" * 20000)
        except OSError:
            pass
        assert closed(s)
    # Chunked: the handler's read fails once the body passes the limit;
    # /json reads the whole body before it answers, so the answer is 413.
    chunks = b"".join(b"64\r\n" + b"z" * 100 + b"\r\n" for _ in range(11)) + b"0\r\n\r\n"
    status, _, _, end = exchange(w, b"POST /json HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks)
    assert (status, end) == (413, True)
    # At the limit it is served.
    status, _, body, _ = exchange(w, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"k" * 1000,
                                  ends=False)
    assert (status, body) == (200, b"k" * 1000)
    assert w.settle(1) == 1


def test_slowloris_clients_are_cut_off_at_the_head_deadline(web):
    """Clients that trickle their heads a byte at a time get 408 once the
    head deadline passes and their connections close; their processes end
    with them, while a normal client is served meanwhile."""
    w = web("--head-timeout-ms", 1500)
    slow = [w.connect() for _ in range(10)]
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 10_000
    for s in slow:
        s.setblocking(False)
    sent, answers, deadline = 0, {}, time.monotonic() + 120
    while len(answers) < len(slow) and time.monotonic() < deadline:
        for i, s in enumerate(slow):
            if i in answers:
                continue
            try:
                s.send(head[sent:sent + 1])
            except OSError:
                pass
            try:
                data = s.recv(4096)
                answers[i] = data
            except BlockingIOError:
                pass
            except OSError:
                answers[i] = b"reset"
        sent += 1
        if sent == 5:
            assert w.processes() == 11     # the acceptor and the ten
            status, _, body, _ = exchange(w, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert (status, body) == (200, b"Hello, world!\n")
        time.sleep(0.05)
    assert len(answers) == len(slow), "slow clients were not cut off"
    assert sent < len(head), "the whole head went through"
    for data in answers.values():
        assert data.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), data
    for s in slow:
        s.close()
    assert w.settle(1) == 1


def test_idle_connections_close_at_the_idle_timeout(web):
    w = web("--idle-timeout-ms", 300)
    with w.connect() as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(s.makefile("rb"))[0] == 200
        assert closed(s)       # then nothing: the server closes
    assert w.settle(1) == 1


# ---------------------------------------------------------------------------
# HTTPS

def test_https(web, tmp_path):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", "key.pem", "-out", "cert.pem", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   cwd=tmp_path, check=True, capture_output=True)
    w = web("--tls", "/certs/cert.pem", "/certs/key.pem", wisp_args=("--dir-ro", f"{tmp_path}::/certs"))
    ctx = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
    c = http.client.HTTPSConnection("127.0.0.1", w.port, timeout=30, context=ctx)
    c.request("GET", "/")
    assert c.getresponse().read() == b"Hello, world!\n"
    sock = c.sock
    c.request("POST", "/echo", body=b"secret" * 1000)
    assert c.getresponse().read() == b"secret" * 1000
    c.request("GET", "/16k")
    assert len(c.getresponse().read()) == 16384
    assert c.sock is sock
    c.close()
    # `Connection: close` ends the stream as TLS ends one (close_notify,
    # then the FIN): a client that refuses truncated streams reads to the
    # end without an error.
    with w.connect() as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            got = b""
            while chunk := s.recv(4096):
                got += chunk
            assert got.startswith(b"HTTP/1.1 200 OK\r\n") and got.endswith(b"Hello, world!\n"), got
    # Plain HTTP to the HTTPS server: the handshake fails, the connection closes.
    with w.connect() as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert closed(s)
    assert w.settle(1) == 1


def test_https_without_access_to_the_files_fails_at_once(web_wasm, shared_cache, tmp_path):
    """A certificate the process cannot open is serve's error when it
    starts (as Go's ListenAndServeTLS fails), naming the file and what is
    missing; not a handshake that fails, silently, with every client."""
    (tmp_path / "cert.pem").write_text("x")
    (tmp_path / "key.pem").write_text("x")
    env = dict(os.environ, WISP_CACHE_DIR=str(shared_cache), WISP_BACKGROUND_COMPILE="0")
    for wisp_args, path, why in [
            ((), "/certs/cert.pem", "the certificate file /certs/cert.pem: not allowed by the "
             "process's capabilities: give its directory to wisp run (--dir-ro DIR)"),
            (("--dir-ro", f"{tmp_path}::/certs"), "/certs/none.pem",
             "the certificate file /certs/none.pem: No such file or directory")]:
        r = subprocess.run([str(WISP), "run", "--allow-listen", "127.0.0.1:*", *wisp_args,
                            str(web_wasm), "0", "--tls", path, "/certs/key.pem"],
                           capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 1, (r.stdout, r.stderr)
        assert f"web: HTTPS: cannot open {why}" in r.stderr, r.stderr
