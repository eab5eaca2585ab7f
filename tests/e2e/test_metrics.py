"""The run's figures: `wisp run --metrics ADDR:PORT` (Prometheus's text
format at /metrics) and `wisp stats` (the same figures through the control
socket, as rates). Guests do known work (tests/guests/c/metrics_load.c)
and the figures must match it exactly; the text must parse, by a strict
parser written here and by Prometheus's own Python client; bad requests
must leave the node serving."""
import json
import os
import re
import select
import signal
import socket
import subprocess
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import WISP

# ---------------------------------------------------------------------------
# a run with its metrics endpoint


class Run:
    """wisp run --metrics 127.0.0.1:0 of metrics_load.c, once its first line
    of output is there and the endpoint is up."""

    def __init__(self, module, *args, env, opts=(), schedulers=2, cpus=None):
        sched = ["--schedulers", str(schedulers)] if schedulers else []
        self.p = subprocess.Popen(
            [str(WISP), "run", *sched, "--metrics", "127.0.0.1:0",
             *opts, str(module), *map(str, args)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
        self.err = []
        self.port = None
        while self.port is None:
            line = self._stderr_line(120)
            m = re.match(r"wisp: metrics at http://127\.0\.0\.1:(\d+)/metrics, "
                         r"the dashboard at http://127\.0\.0\.1:\1/$", line.rstrip())
            if m:
                self.port = int(m.group(1))
        self.first = self.p.stdout.readline()
        assert self.first and not self.first.startswith("FAIL"), (self.first, self.stop())

    def _stderr_line(self, timeout):
        r, _, _ = select.select([self.p.stderr], [], [], timeout)
        line = self.p.stderr.readline() if r else ""
        if not line:
            self.p.kill()
            self.p.wait()
            raise AssertionError("wisp run did not start: " + "".join(self.err))
        self.err.append(line)
        return line

    def get(self, path="/metrics", method="GET"):
        """(status, headers, body) of one request."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=60) as c:
            c.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            return parse_response(read_all(c))

    def stop(self):
        """(exit status, all of stderr); once stopped, the same again."""
        if not hasattr(self, "ended"):
            if self.p.poll() is None:
                self.p.send_signal(signal.SIGTERM)
            _, err = self.p.communicate(timeout=60)
            self.ended = (self.p.returncode, "".join(self.err) + err)
        return self.ended


def read_all(c):
    chunks = []
    while True:
        b = c.recv(65536)
        if not b:
            return b"".join(chunks)
        chunks.append(b)


def parse_response(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v for k, v in (l.split(": ", 1) for l in lines[1:])}
    return status, headers, body.decode()


@pytest.fixture
def env(control_env):
    return control_env


@pytest.fixture
def load(build_proc):
    return build_proc("metrics_load.c")


@pytest.fixture
def runs(load, env):
    started = []

    def start(*args, **kw):
        r = Run(load, *args, env=env, **kw)
        started.append(r)
        return r

    yield start
    for r in started:
        _, err = r.stop()
        assert "Sanitizer" not in err, err


# ---------------------------------------------------------------------------
# a strict reader of the text exposition format 0.0.4

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\["\\n])*"'
SAMPLE = re.compile(rf"^({NAME})(?:\{{((?:{LABEL})(?:,{LABEL})*)\}})? (\S+)$")


def strict_parse(text):
    """{family: (type, help, {labels-tuple: value})}, or an AssertionError
    naming the first line that breaks the format or Prometheus's naming
    conventions: every family has HELP then TYPE before its samples, once;
    its samples are together; names and labels are well-formed; counters
    end in _total; no series twice; values are floats; the text ends with
    a newline."""
    assert text.endswith("\n"), "no newline at the end"
    families, current = {}, None
    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = f"line {n}: {line!r}"
        if line.startswith("# HELP "):
            name, _, help_ = line[7:].partition(" ")
            assert re.fullmatch(NAME, name) and help_, where
            assert name not in families, f"{where}: family twice"
            families[name] = [None, help_, {}]
            current = name
        elif line.startswith("# TYPE "):
            name, _, type_ = line[7:].partition(" ")
            assert name == current and families[name][0] is None, f"{where}: TYPE without HELP"
            assert type_ in ("counter", "gauge"), where
            families[name][0] = type_
        else:
            assert not line.startswith("#") and line, where
            m = SAMPLE.match(line)
            assert m, where
            name, labels, value = m.groups()
            assert name == current and families[name][0] is not None, \
                f"{where}: sample outside its family"
            float(value)
            key = tuple(sorted(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"',
                                          labels or "")))
            assert key not in families[name][2], f"{where}: series twice"
            families[name][2][key] = float(value)
    for name, (type_, _, samples) in families.items():
        assert samples, f"{name}: no samples"
        assert name.startswith(("wisp_", "process_")), name
        assert (type_ == "counter") == name.endswith("_total"), f"{name}: a {type_}"
        assert not re.search(r"_(ms|us|ns|kb|mb|milliseconds|kilobytes)(_|$)", name), name
    return {k: tuple(v) for k, v in families.items()}


def value(families, name, **labels):
    return families[name][2][tuple(sorted(labels.items()))]


def scrape(run):
    status, headers, body = run.get()
    assert status == 200, (status, body)
    assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8", headers
    assert int(headers["content-length"]) == len(body.encode())
    return strict_parse(body), body


# ---------------------------------------------------------------------------


def test_counters_match_the_work_done(runs, env):
    """200 processes, 30 of which trap, then 5 messages to a dead process
    and 10 of 1000 bytes to one that never receives: every figure says
    exactly that (the main process and the sink are the two alive)."""
    r = runs("crash", 200, 30, 5, 10)
    assert r.first == "done spawned=200 trapped=30 dropped=5 queued=10\n"
    f, body = scrape(r)
    assert value(f, "wisp_processes_spawned_total") == 202   # the children, main, the sink
    assert value(f, "wisp_processes_exited_total", reason="trap") == 30
    assert value(f, "wisp_processes_exited_total", reason="normal") == 170
    for reason in ("code", "killed", "noproc", "limit", "shutdown", "noconnection", "term"):
        assert value(f, "wisp_processes_exited_total", reason=reason) == 0, reason
    assert value(f, "wisp_processes") == 2
    assert value(f, "wisp_messages_sent_total") == 15
    assert value(f, "wisp_messages_dropped_total", reason="noproc") == 5
    assert value(f, "wisp_messages_dropped_total", reason="limit") == 0
    queued = value(f, "wisp_memory_bytes", kind="messages")
    assert 10 * 1000 <= queued <= 10 * 1100, queued       # the payloads and their records
    assert value(f, "wisp_memory_bytes", kind="stacks") == 2 * 256 * 1024
    assert value(f, "wisp_schedulers") == 2
    for name in ("wisp_scheduler_busy_seconds_total", "wisp_scheduler_idle_seconds_total",
                 "wisp_scheduler_dispatches_total", "wisp_run_queue_length"):
        assert {k for k in f[name][2]} >= {(("scheduler", "0"),), (("scheduler", "1"),)}, name
    assert sum(f["wisp_scheduler_dispatches_total"][2].values()) >= 202
    assert value(f, "wisp_sockets_open") == 0
    assert value(f, "process_resident_memory_bytes") > 0
    # Prometheus's own parser reads the same families and values.
    theirs = {m.name: m for m in text_string_to_metric_families(body)}
    assert theirs["wisp_processes_exited"].type == "counter"
    assert [s.value for s in theirs["wisp_processes_exited"].samples
            if s.labels == {"reason": "trap"}] == [30]
    assert {m.name for m in theirs.values()} == \
        {n[:-len("_total")] if n.endswith("_total") else n for n in f}

    # The same run through `wisp stats`: totals, and the run found by pid.
    s = subprocess.run([str(WISP), "stats", "--once", str(r.p.pid)], env=env,
                       capture_output=True, text=True, timeout=60)
    assert s.returncode == 0 and s.stderr == "", s
    assert "2 alive" in s.stdout and "spawned 202, exited 200: normal 170, trap 30" in s.stdout, \
        s.stdout
    assert "sent 15, dropped 5 (no such process 5," in s.stdout, s.stdout
    assert re.search(r"^0 +\d+\.\d%", s.stdout, re.M) and re.search(r"^1 +\d+\.\d%", s.stdout, re.M), \
        s.stdout
    code, err = r.stop()
    assert code == 143, err


def test_schedulers_default_to_the_cpus_the_node_may_run_on(runs, env):
    """Without --schedulers, one scheduler per CPU of the node's affinity
    mask (taskset, cpusets), not per CPU of the machine: two schedulers on
    one CPU preempt each other while holding run queues."""
    mine = sorted(os.sched_getaffinity(0))
    f, _ = scrape(runs("idle", 1, schedulers=None))
    assert value(f, "wisp_schedulers") == min(len(mine), 64)
    f, _ = scrape(runs("idle", 1, schedulers=None, cpus={mine[0]}))
    assert value(f, "wisp_schedulers") == 1


def test_counters_only_grow_and_busy_time_follows_the_work(runs, env):
    """Scraped again and again while processes come and go: no counter ever
    goes back (Prometheus reads a drop as a restart), and the schedulers'
    busy time grows while a process computes."""
    r = runs("churn")
    last = {}
    for _ in range(5):
        f, _ = scrape(r)
        for name, (type_, _, samples) in f.items():
            if type_ != "counter":
                continue
            for key, v in samples.items():
                assert v >= last.get((name, key), 0), (name, key, v, last[(name, key)])
                last[(name, key)] = v
        time.sleep(0.2)
    busy = sum(v for (n, _), v in last.items() if n == "wisp_scheduler_busy_seconds_total")
    assert busy > 0 and last[("wisp_reductions_total", ())] > 0
    assert last[("wisp_processes_spawned_total", ())] > 2
    s = subprocess.run([str(WISP), "stats", "--interval", "300ms"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert s.returncode == 0, s
    assert "rates over the last interval" in s.stdout, s.stdout
    spawn_rate = float(re.search(r"spawned \d+ \(([\d.]+)[kM]?/s\)", s.stdout).group(1))
    assert spawn_rate > 0, s.stdout
    util = [float(u) for u in re.findall(r"^\d+ +(\d+\.\d)%", s.stdout, re.M)]
    assert len(util) == 2 and max(util) > 0, s.stdout
    r.stop()


def test_the_endpoint_answers_http_properly(runs):
    """HEAD has the GET's headers and no body; a query string is ignored;
    other paths are 404 (/ and /api/ are the dashboard's:
    test_dashboard.py), other methods 405, a line that is not HTTP 400."""
    r = runs("idle", 3)
    status, headers, body = r.get(method="HEAD")
    assert status == 200 and body == "" and int(headers["content-length"]) > 1000, headers
    assert headers["connection"] == "close"
    assert r.get("/metrics?name[]=x")[0] == 200
    for path in ("/metrics/", "/metricsx", "/api", "/api/processes/", "//"):
        assert r.get(path)[0] == 404, path
    status, headers, _ = r.get(method="POST")
    assert status == 405 and headers["allow"] == "GET, HEAD"
    for raw in (b"garbage\r\n\r\n", b"GET /metrics\r\n\r\n", b"GET /metrics HTTP/2.0\r\n\r\n",
                b"get /metrics HTTP/1.1\r\n\r\n", b"GET  /metrics HTTP/1.1\r\n\r\n",
                b"GET metrics HTTP/1.1\r\n\r\n", b"GET /metrics HTTP/1.1\0\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", r.port), timeout=60) as c:
            c.sendall(raw)
            assert parse_response(read_all(c))[0] == 400, raw
    f, _ = scrape(r)
    assert value(f, "wisp_processes") == 4
    r.stop()


def test_bad_clients_do_not_harm_the_node(runs):
    """A head over 8 KiB is refused (431); a client that sends nothing is
    cut off; 40 connections held open at once get 503 past the 16 served,
    and a scrape works again once they go; through all of it the node runs
    and its figures stay right."""
    r = runs("crash", 10, 2, 0, 0)
    with socket.create_connection(("127.0.0.1", r.port), timeout=60) as c:
        c.sendall(b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
        assert parse_response(read_all(c))[0] == 431
    slow = socket.create_connection(("127.0.0.1", r.port), timeout=60)
    slow.sendall(b"GET /metr")        # and nothing more: cut off by the deadline
    held = [socket.create_connection(("127.0.0.1", r.port), timeout=60) for _ in range(40)]
    for c in held:
        c.setblocking(False)
    busy = set()
    deadline = time.monotonic() + 60
    while len(busy) < 40 - 15 and time.monotonic() < deadline:
        time.sleep(0.05)
        for c in held:
            try:
                if c not in busy and c.recv(4096).startswith(b"HTTP/1.1 503 "):
                    busy.add(c)
            except BlockingIOError:
                pass
    assert len(busy) == 40 - 15, len(busy)   # the slow one and the first 15 held are served
    for c in held:
        c.close()
    assert slow.recv(4096) == b""       # the deadline closed it (no answer to half a line)
    slow.close()
    f, _ = scrape(r)
    assert value(f, "wisp_processes_exited_total", reason="trap") == 2
    assert value(f, "wisp_processes") == 2
    assert r.p.poll() is None
    code, err = r.stop()
    assert code == 143, err


def test_a_taken_or_malformed_address_is_a_clear_error(load, env):
    """A port another socket holds: exit 1 naming the address and the
    reason, before anything runs; a malformed address: a usage error."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        r = subprocess.run([str(WISP), "run", "--metrics", f"127.0.0.1:{port}", str(load),
                            "idle", "1"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stdout == "", r
    assert r.stderr == f"wisp: --metrics: cannot listen on 127.0.0.1:{port}: " \
                       "Address already in use\n", r.stderr
    wants = "--metrics wants ADDRESS:PORT (e.g. 127.0.0.1:9100; port 0: any free port)"
    port_range = "--metrics: the port must be a number from 0 to 65535 (0: any)"
    for bad, said in (("127.0.0.1", wants), (":9100", wants), ("127.0.0.1:", wants),
                      ("h" * 200 + ":9100", wants), ("127.0.0.1:99999", port_range),
                      ("127.0.0.1:http", port_range), ("127.0.0.1:-1", port_range)):
        r = subprocess.run([str(WISP), "run", "--metrics", bad, str(load), "idle", "1"],
                           env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 2, (bad, r)
        assert f"{said}, not '{bad}'" in r.stderr, (bad, r.stderr)
    r = subprocess.run([str(WISP), "run", "--metrics", "no.such.host.invalid:9100", str(load),
                        "idle", "1"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "--metrics: cannot listen on no.such.host.invalid:9100: " \
        in r.stderr, r


def test_sockets_and_the_compile_cache_are_counted(build_proc, env, tmp_path):
    """A listener, a connection and its accepted end: 3 sockets open. A
    fresh cache misses the module; the next run finds it."""
    load = build_proc("metrics_load.c")
    env = dict(env, WISP_CACHE_DIR=str(tmp_path / "fresh"))
    for hits, misses in ((0, 1), (1, 0)):
        r = Run(load, "sockets", env=env,
                opts=("--allow-listen", "127.0.0.1:*", "--allow-connect", "127.0.0.1:*"))
        assert r.first == "sockets 3\n"
        f, _ = scrape(r)
        assert value(f, "wisp_sockets_open") == 3
        assert value(f, "wisp_compile_cache_hits_total") == hits
        assert value(f, "wisp_compile_cache_misses_total") == misses
        _, err = r.stop()
        assert "Sanitizer" not in err, err


# (TSan counts each fiber as a thread and dies past 8128 of them.)
MANY = 2000 if os.environ.get("WISP_SANITIZE") == "thread" else 20000


def test_many_processes_are_counted_without_walking_them(runs):
    """20,000 idle processes: the scrape reads counters (the figures are
    exact: processes, stacks in use). (What a scrape costs at 100k and 1M
    processes: bench/metrics_run.py.)"""
    r = runs("idle", MANY)
    assert r.first == f"ready {MANY}\n"
    f, _ = scrape(r)
    assert value(f, "wisp_processes") == MANY + 1
    assert value(f, "wisp_processes_spawned_total") == MANY + 1
    assert value(f, "wisp_memory_bytes", kind="stacks") == (MANY + 1) * 256 * 1024
    assert value(f, "wisp_memory_bytes", kind="process_table") > 0
    r.stop()


def test_wisp_stats_says_what_is_wrong(env, runs):
    """Usage errors name their problem; with no run, where runs are looked
    for; a pid that runs no wisp lists the runs there are."""
    def stats(*args):
        return subprocess.run([str(WISP), "stats", *map(str, args)], env=env,
                              capture_output=True, text=True, timeout=60)

    r = stats("--help")
    assert r.returncode == 0 and "--interval" in r.stdout and "--metrics" in r.stdout, r
    for args, said in [(["--bogus"], "unknown option '--bogus'"),
                       (["--interval", "0"], "--interval takes a time above 0"),
                       (["--interval", "soon"], "--interval takes a time above 0"),
                       (["--pid"], "--pid needs the process id of a run"),
                       (["--pid", "abc"], "--pid takes the process id of a run, not 'abc'"),
                       (["1", "2"], "one run at a time ('2')"),
                       (["a/b"], "'a/b' cannot name a node")]:
        r = stats(*args)
        assert r.returncode == 2 and r.stderr.startswith(f"wisp stats: {said}"), (args, r)
        assert "usage: wisp stats" in r.stderr
    r = stats()
    assert r.returncode == 1 and r.stderr.startswith("wisp stats: no wisp is running"), r
    run = runs("idle", 1)
    r = stats("--once", "2147483647")
    assert r.returncode == 1 and "wisp stats: no wisp runs as pid 2147483647" in r.stderr, r
    assert f"--pid {run.p.pid} " in r.stderr, r.stderr
    r = stats("--once", "nosuchnode")
    assert r.returncode == 1 and "wisp stats: no wisp node is named nosuchnode" in r.stderr, r
    r = stats("--once")
    assert r.returncode == 0 and "2 alive" in r.stdout, r
    run.stop()


def test_a_node_is_named_in_its_figures_and_found_by_its_name(runs, env):
    """A node's figures carry its name (wisp_info) and the nodes connected
    to it; `wisp stats NAME` finds it by the name it was given."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = runs("idle", 1, opts=("--name", f"mstats@127.0.0.1:{port}", "--cookie", "wisp-test"))
    f, _ = scrape(r)
    (labels, one), = f["wisp_info"][2].items()
    assert dict(labels)["node"] == "mstats@127.0.0.1" and one == 1, f["wisp_info"]
    assert value(f, "wisp_dist_nodes_connected") == 0
    s = subprocess.run([str(WISP), "stats", "--once", "mstats"], env=env, capture_output=True,
                       text=True, timeout=60)
    assert s.returncode == 0 and "2 alive" in s.stdout and "0 nodes connected" in s.stdout, s
    r.stop()


def test_out_of_fds_the_endpoint_waits_without_spinning(runs):
    """The node out of fds (its limit lowered to a few more than it uses)
    while clients keep connecting: the connections the endpoint cannot
    accept wait in the backlog, the listener (readable all along) rests
    instead of being polled in a loop (which took a core), and once the
    fds are back every client is answered."""
    import resource
    r = runs("idle", 1)
    pid = r.p.pid
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    old = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (fds + 2, old[1]))
    # Two that say nothing take the last fds (until the deadline cuts
    # them, 5 s on); four more wait.
    idle = [socket.create_connection(("127.0.0.1", r.port), timeout=60) for _ in range(2)]
    held = []
    try:
        time.sleep(0.3)
        for _ in range(4):
            c = socket.create_connection(("127.0.0.1", r.port), timeout=60)
            c.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            held.append(c)
        time.sleep(0.2)
        cpu = lambda: sum(map(int, open(f"/proc/{pid}/stat").read().rsplit(") ", 1)[1]
                              .split()[11:13])) / os.sysconf("SC_CLK_TCK")
        before = cpu()
        time.sleep(3)
        spent = cpu() - before
        # (Spinning, the thread took a core: 3 s, less on a loaded machine.)
        assert spent < 0.5, spent
    finally:
        resource.prlimit(pid, resource.RLIMIT_NOFILE, old)
    for c in held:
        status, _, body = parse_response(read_all(c))
        assert status == 200 and "wisp_processes " in body, (status, body[:200])
        c.close()
    for c in idle:
        assert c.recv(100) == b""
        c.close()
    assert r.p.poll() is None


def test_reductions_of_waiting_processes_are_counted(runs, env):
    """A node whose processes all wait: the reductions they used before
    waiting are in wisp_reductions_total, at least what `wisp ps` shows for
    them (the total counted only whole slices and ends: it said 0 while
    ps showed each process's)."""
    r = runs("idle", 20)
    rows = subprocess.run([str(WISP), "ps", "--json", str(r.p.pid)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert rows.returncode == 0, rows
    shown = sum(json.loads(line)["reductions"] for line in rows.stdout.splitlines())
    assert shown > 0, rows.stdout
    f, _ = scrape(r)
    assert value(f, "wisp_reductions_total") >= shown, (value(f, "wisp_reductions_total"), shown)
