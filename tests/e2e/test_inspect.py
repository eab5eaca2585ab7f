"""Looking into a running node from another terminal (issue 16, parts 3
and 6): `wisp ps`, `wisp inspect`, `wisp kill`, `wisp trace`, and the
control socket they talk to, attacked with bad input.

The guest is tests/guests/c/inspect.c: a zoo of processes, each waiting
in its own way in a function of its own (built at -O0: clang -O2 runs
wasm-opt, which drops the name section, and the functions would be
func[N]). Every test runs the real binary, with a runtime directory of its
own (XDG_RUNTIME_DIR), so that runs of other tests are not found."""
import json
import os
import random
import re
import signal
import socket
import subprocess
import time

import pytest

from conftest import WISP

TIERS = ["fast", "opt"]


@pytest.fixture
def env(control_env):
    return control_env


@pytest.fixture
def guest(build_proc):
    return build_proc("inspect.c", "-O0")


def wisp(env, *args, timeout=120, **kw):
    return subprocess.run([str(WISP), *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=timeout, **kw)


class Zoo:
    """A `wisp run` of the zoo: its pids by name, commands on its stdin."""

    def __init__(self, env, guest, args):
        self.p = subprocess.Popen([str(WISP), "run", *map(str, args), guest, "zoo"], env=env,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        assert line.startswith("pids "), (line, self.p.stderr.read() if not line else "")
        self.pid = dict(kv.split("=") for kv in line.split()[1:])

    def send(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()

    def expect(self, line):
        got = self.p.stdout.readline()
        assert got == line + "\n", (got, line)

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


@pytest.fixture
def zoo(env, guest):
    made = []

    def start(*args):
        z = Zoo(env, guest, args)
        made.append(z)
        return z

    yield start
    for z in made:
        z.close()


def ps_json(env, *args):
    r = wisp(env, "ps", "--json", *args)
    assert r.returncode == 0, r
    return {row["pid"]: row for row in map(json.loads, r.stdout.splitlines())}


def inspect(env, pid):
    r = wisp(env, "inspect", "--json", pid)
    assert r.returncode == 0, r
    return json.loads(r.stdout)


def control_socket(env):
    d = os.path.join(env["XDG_RUNTIME_DIR"], "wisp")
    socks = [f for f in os.listdir(d) if f.endswith(".sock") and f[:-5].isdigit()]
    assert len(socks) == 1, socks
    return os.path.join(d, socks[0])


def ask(env, data, timeout=30):
    """Send raw bytes on a fresh connection; everything the node answers."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(control_socket(env))
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


@pytest.mark.parametrize("tier", TIERS)
def test_ps_lists_each_process_with_what_it_waits_for_and_where(env, zoo, tier):
    """Every process of the zoo, with its state, what it waits for and the
    wasm function it waits in (fast tier: by frame pointers; opt tier: the
    return address through the module's DWARF), its parent, names,
    reductions, memory and age."""
    z = zoo("--tier", tier)
    pid = z.pid
    rows = ps_json(env)
    assert set(rows) == set(pid.values()), (rows.keys(), pid)
    want = {
        "server": ("receive", "server_loop"),
        "sleeper": ("timer", "sleeper_loop"),
        "caller": ("call", "caller_wait"),
        "trapper": ("receive", "trapper_loop"),
        "victim": ("receive", "victim_loop"),
        "main": ("receive", "serve_stdin"),
    }
    for key, (wait, fn) in want.items():
        row = rows[pid[key]]
        assert row["state"] == "waiting" and row["wait"] == wait and row["function"] == fn, \
            (key, row)
        assert row["memory"] > 0 and row["stack"] > 0 and row["age_ms"] >= 0, row
        assert row["parent"] == ("" if key == "main" else pid["main"]), row
    assert rows[pid["server"]]["names"] == 2
    assert rows[pid["server"]]["name"] in ("server", "zoo.server")
    assert rows[pid["caller"]]["on"] == pid["server"], rows[pid["caller"]]
    assert 0 < rows[pid["sleeper"]]["timeout_ms"] <= 3600 * 1000, rows[pid["sleeper"]]
    assert "timeout_ms" not in rows[pid["server"]]
    assert rows[pid["main"]]["main"] is True and rows[pid["server"]]["main"] is False
    # The reader is parked on its stdin, a pipe, in WASI's fd_read.
    reader = rows[pid["reader"]]
    assert reader["wait"] == "fd" and reader["for"] == "read" and "fd_read" in reader["function"], \
        reader
    busy = rows[pid["busy"]]
    assert busy["state"] in ("running", "runnable") and busy["reductions"] > 10000, busy

    # The table, as a person reads it.
    r = wisp(env, "ps")
    assert r.returncode == 0 and r.stderr == "", r
    lines = r.stdout.splitlines()
    assert lines[0].split()[:4] == ["PID", "NAME", "STATE", "REDUCTIONS"], lines[0]
    assert len(lines) == 1 + len(pid), lines
    server_line = next(l for l in lines if l.startswith(pid["server"] + " "))
    assert "waiting" in server_line and server_line.endswith("receive in server_loop"), \
        server_line
    caller_line = next(l for l in lines if l.startswith(pid["caller"] + " "))
    assert caller_line.endswith(f"reply from {pid['server']} in caller_wait"), caller_line
    sleeper_line = next(l for l in lines if l.startswith(pid["sleeper"] + " "))
    assert " left) in sleeper_loop" in sleeper_line and "sleep (" in sleeper_line, sleeper_line
    # A name made of terminal escapes (an OSC title, a bidi override)
    # reaches no terminal as such, in the table or the JSON.
    victim_line = next(l for l in lines if l.startswith(pid["victim"] + " "))
    assert "victim\\x1b]0;..." in victim_line, victim_line
    assert rows[pid["victim"]]["name"] == "victim\\x1b]0;pwned\\x07\\xe2\\x80\\xae", rows
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout and "\u202e" not in r.stdout
    # Sorted by pid, by default.
    shown = [int(l.split()[0], 16) for l in lines[1:]]
    assert shown == sorted(shown), lines


def test_ps_sorts_and_limits_on_either_side(env, zoo):
    """--limit N (up to 10000) is sorted by the node, which keeps only N;
    without a limit the client sorts. Either way the busiest process is
    first by reductions."""
    z = zoo("--tier", "fast")
    r = wisp(env, "ps", "--json", "--sort", "reductions", "--limit", "1")
    assert r.returncode == 0, r
    rows = [json.loads(l) for l in r.stdout.splitlines()]
    assert [row["pid"] for row in rows] == [z.pid["busy"]], rows
    r = wisp(env, "ps", "--json", "--sort", "reductions")
    rows = [json.loads(l) for l in r.stdout.splitlines()]
    assert len(rows) == len(z.pid) and rows[0]["pid"] == z.pid["busy"], rows
    # By pid, the first three: main, server, sleeper (spawned in that order).
    r = wisp(env, "ps", "--json", "--limit", "3")
    assert [json.loads(l)["pid"] for l in r.stdout.splitlines()] == \
        [z.pid["main"], z.pid["server"], z.pid["sleeper"]], r.stdout
    # Past what the node sorts, the client does: 20000 > LISTING_TOP_MAX.
    r = wisp(env, "ps", "--json", "--sort", "age", "--limit", "20000")
    assert r.returncode == 0 and len(r.stdout.splitlines()) == len(z.pid), r
    ages = [json.loads(l)["age_ms"] for l in r.stdout.splitlines()]
    assert ages == sorted(ages, reverse=True), ages
    # The mailbox key: the server flooded and not yet drained shows 0 at
    # least for everyone; sorted descending all the same.
    r = wisp(env, "ps", "--json", "--sort", "mailbox", "--limit", "2")
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 2, r


def test_hibernated_processes_show_their_function_from_the_stack_copy(env, zoo):
    """A process that hibernated has its stack copied out and its pages
    dropped: the listing walks the copy."""
    z = zoo("--tier", "fast", "--hibernate-after", "50ms")
    deadline = time.time() + 60
    while True:
        rows = ps_json(env)
        victim = rows[z.pid["victim"]]
        if victim["state"] == "hibernated" or time.time() > deadline:
            break
        time.sleep(0.1)
    assert victim["state"] == "hibernated" and victim["function"] == "victim_loop", victim
    assert victim["wait"] == "receive", victim


def test_inspect_shows_links_monitors_capabilities_and_the_stack(env, zoo, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    z = zoo("--tier", "fast", "--dir", f"{data}::/data", "--max-memory", "16M", "--env",
            "SECRET=hunter2", "--allow-connect", "127.0.0.1:9")
    pid = z.pid
    main = inspect(env, pid["main"])
    assert main["complete"] and main["main"] and main["links"] == [pid["trapper"]], main
    assert {m["pid"] for m in main["monitors"]} == {pid["server"], pid["victim"]}, main
    assert main["frames"][0] == "serve_stdin" and "main" in main["frames"], main["frames"]
    victim = inspect(env, pid["victim"])
    assert [m["pid"] for m in victim["monitored_by"]] == [pid["main"]], victim
    assert victim["monitored_by"][0]["ref"] in {m["ref"] for m in main["monitors"]}
    assert victim["links"] == [] and victim["parent"] == pid["main"], victim
    trapper = inspect(env, pid["trapper"])
    assert trapper["trap_exit"] and trapper["links"] == [pid["main"]], trapper
    server = inspect(env, pid["server"])
    assert sorted(server["all_names"]) == ["server", "zoo.server"], server
    assert server["version"] == 1 and server["tier"] == "fast" and len(server["module"]) == 16
    assert server["frames"][:2] == ["server_loop", "server"], server["frames"]
    caps = server["caps"]
    assert caps["max_memory"] == 16 << 20 and caps["spawn"] and caps["max_cpu"] is None, caps
    assert caps["dirs"] == [{"guest": "/data", "host": str(data), "read_only": False}], caps
    assert caps["env"] == ["SECRET"] and caps["connect"] == ["127.0.0.1:9"], caps
    assert "hunter2" not in json.dumps(server)

    # After main links to the server, both sides show it.
    z.send("link")
    z.expect("linked")
    assert inspect(env, pid["server"])["links"] == [pid["main"]]
    assert sorted(inspect(env, pid["main"])["links"]) == sorted([pid["trapper"], pid["server"]])

    # A process that computes is caught between two slices.
    busy = inspect(env, pid["busy"])
    assert busy["frames"][:1] == ["busy_loop"] or not busy["complete"], busy

    # The text: the same, for a person.
    r = wisp(env, "inspect", pid["server"])
    assert r.returncode == 0, r
    text = r.stdout
    for want in [f"pid           {pid['server']}\n", "state         waiting: receive in server_loop\n",
                 f"parent        {pid['main']}\n", "frames        server_loop, server",
                 f"links         {pid['main']}\n", "directories   /data (" + str(data) + ")\n",
                 "environment   SECRET\n", "connect       127.0.0.1:9\n",
                 "module        version 1 (fast tier, "]:
        assert want in text, (want, text)


def test_frames_are_named_as_a_crash_report_names_them(env, zoo, build_rust):
    """An export's wasm2c wrapper is not a frame of its own (it was listed
    twice, after the function it wraps), and Rust's names are demangled
    in wisp ps and wisp inspect (they were raw: _ZN4wisp7message...). A
    pid as a Rust guest prints it (<A.B>) names a process too."""
    z = zoo("--tier", "fast")
    sleeper = inspect(env, z.pid["sleeper"])["frames"]
    assert sleeper[-2:] == ["wisp_spawn_entry", "wisp_spawn_entry.command_export"], sleeper
    main = inspect(env, z.pid["main"])["frames"]
    assert main[-2:] == ["_start", "_start.command_export"], main
    z.close()
    rust = build_rust("reports")
    p = subprocess.Popen([str(WISP), "run", "--tier", "fast", rust, "wait"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        up = p.stdout.readline()
        assert re.fullmatch(r"up <\d+\.\d+>\n", up), (up, p.stderr.read())
        rows = ps_json(env)
        assert {row["function"] for row in rows.values()} == {"wisp::message::receive"}, rows
        [child] = [pid for pid, row in rows.items() if not row["main"]]
        frames = inspect(env, child)["frames"]
        assert frames[0] == "wisp::message::receive" and "reports::waiter" in frames, frames
        assert frames[-1] == "wisp_spawn_entry.command_export" != frames[-2], frames
        r = wisp(env, "ps")
        assert r.returncode == 0 and "receive in wisp::message::receive\n" in r.stdout, r
        # The pid as the Rust guest printed it names the same process.
        printed = up.split()[1]
        assert inspect(env, printed)["pid"] == child, (printed, child)
        for bad in ("<1.2", "<1.>", "<4294967296.1>", "<0.0>", "<1.2>x"):
            r = wisp(env, "inspect", bad)
            assert r.returncode == 2 and f"'{bad}' is not a process id" in r.stderr, (bad, r)
    finally:
        p.kill()
        p.wait()


def test_kill_is_erlangs_exit2_from_outside(env, zoo):
    """kill (the default) cannot be trapped; normal is ignored unless
    trapped; other reasons end a process that does not trap exits and
    reach one that does as an EXIT message from pid 0."""
    z = zoo("--tier", "fast")
    pid = z.pid
    r = wisp(env, "kill", pid["victim"])
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r
    z.expect("down victim killed wisp kill")
    for reason, said in [("normal", "normal"), ("foo", "atom foo"), ("7", "code 7"),
                         ("shutdown", "shutdown"), ("killed", "killed ")]:
        r = wisp(env, "kill", pid["trapper"], reason)
        assert r.returncode == 0, (reason, r)
        z.expect(f"trapper EXIT 0 {said}")
    assert pid["trapper"] in ps_json(env)   # (it trapped every one)
    r = wisp(env, "kill", pid["server"], "shutdown")
    assert r.returncode == 0, r
    z.expect("down server shutdown")
    r = wisp(env, "kill", pid["server"])
    assert r.returncode == 1, r
    assert r.stderr == f"wisp kill: no process {pid['server']} in that run (wisp ps lists " \
                       "them; it may have ended)\n", r.stderr
    r = wisp(env, "kill", pid["sleeper"], "bad\x01reason")
    assert r.returncode == 1 and "a reason is kill, normal, shutdown, an exit code or an atom" \
        in r.stderr, r
    for args, said in [([], "which process?"), (["xyz"], "'xyz' is not a process id"),
                       (["0"], "'0' is not a process id"),
                       ([pid["sleeper"], "a", "b"], "a reason is one word"),
                       (["--node"], "--node needs the name of a node")]:
        r = wisp(env, "kill", *args)
        assert r.returncode == 2 and said in r.stderr, (args, r)
    # Any other word ends a process that does not trap exits, and its
    # crash report says with which reason (not "ended: term").
    r = wisp(env, "kill", pid["sleeper"], "boom")
    assert r.returncode == 0, r
    # kill ends the trapper; its link takes main (not trapping) with it,
    # and main's end ends the run.
    r = wisp(env, "kill", pid["trapper"], "kill")
    assert r.returncode == 0, r
    assert z.p.wait(timeout=60) == 137, z.p.stderr.read()
    err = z.p.stderr.read()
    assert f"wisp: crash report: process {pid['sleeper']} ended with reason boom\n" in err, err
    # The same as a JSON line.
    z = zoo("--tier", "fast", "--log-format", "json")
    for victim, reason in [(z.pid["sleeper"], "boom"), (z.pid["trapper"], "kill")]:
        assert wisp(env, "kill", victim, reason).returncode == 0
    assert z.p.wait(timeout=60) == 137
    reports = [json.loads(line) for line in z.p.stderr.read().splitlines() if line.startswith("{")]
    [sleeper] = [x for x in reports if x.get("pid") == z.pid["sleeper"]]
    assert sleeper["reason"] == {"kind": "term", "text": "boom"}, sleeper


def test_trace_shows_messages_links_and_the_end(env, zoo):
    z = zoo("--tier", "fast")
    pid, srv, main = z.pid, z.pid["server"], z.pid["main"]
    t = subprocess.Popen([str(WISP), "trace", srv], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        assert t.stdout.readline() == f"tracing {srv} (Ctrl-C to stop)\n"
        r = wisp(env, "trace", srv)
        assert r.returncode == 1 and "the process is traced already" in r.stderr, r
        z.send("ping")
        z.expect("pong")
        z.send("link")
        z.expect("linked")
        z.send("stop")
        z.expect("stopping")
        out, err = t.communicate(timeout=60)
    finally:
        t.kill()
    assert t.returncode == 0, (out, err)
    events = [l.split(None, 1)[1] for l in out.splitlines()[:-1]]
    assert out.splitlines()[-1] == "end: the process ended", out
    expected = [
        f"monitored by {main} (ref ",
        f'receive from {main}: tag 1, 4 bytes "ping"',
        f'send to {main}: ref ',
        f"demonitored by {main} (ref ",
        f"linked by {main}",
        f"receive from {main}: tag 2, 0 bytes",
        "exit: normal",
    ]
    assert len(events) == len(expected), events
    for e, want in zip(events, expected):
        assert e.strip().startswith(want), (e, want, events)
    assert events[2].endswith('4 bytes "pong"'), events
    z.expect("down server normal")
    r = wisp(env, "trace", srv)
    assert r.returncode == 1 and f"no process {srv} in that run" in r.stderr, r


def test_a_trace_drops_what_its_reader_cannot_take_and_never_blocks_the_process(env, zoo):
    """The reader takes nothing while the server gets 50,000 messages: the
    server goes on at full speed (it counts them all), and the trace
    says how many events it dropped once its reader reads."""
    z = zoo("--tier", "fast")
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(60)
        s.connect(control_socket(env))
        s.sendall(f"trace {z.pid['server']}\n".encode())
        f = s.makefile("rb")
        assert f.readline() == f"ok {z.pid['server']}\n".encode()
        z.send("flood 50000")
        z.expect("flooded 50000")
        z.send("stop")
        z.expect("stopping")
        rest = f.read().decode()
    lines = rest.splitlines()
    dropped = [int(l.split()[1]) for l in lines if l.startswith("... ") and "dropped" in l]
    received = sum(1 for l in lines if "receive from" in l and "tag 4," in l)
    assert dropped and sum(dropped) + received >= 50000, (dropped, received, lines[-3:])
    assert lines[-1] == "end: the process ended", lines[-3:]
    # The server is gone, and the caller with it (its request's monitor
    # fired); the others are as they were.
    assert set(ps_json(env)) == set(z.pid.values()) - {z.pid["server"], z.pid["caller"]}


def test_ps_and_inspect_say_what_is_wrong(env, zoo, guest):
    r = wisp(env, "ps")
    assert r.returncode == 1, r
    assert r.stderr.startswith("wisp ps: no wisp is running (no control socket in "), r.stderr
    for args, said in [(["--sort", "size"], "--sort takes pid, reductions, memory, mailbox or "
                                            "age, not size"),
                       (["--limit", "0"], "--limit takes a number of processes, 1 or more"),
                       (["--limit", "x"], "--limit takes a number"),
                       (["--frobnicate"], "unknown option '--frobnicate'"),
                       (["a", "b"], "one run at a time")]:
        r = wisp(env, "ps", *args)
        assert r.returncode == 2 and r.stderr.startswith(f"wisp ps: {said}"), (args, r)
        assert "usage: wisp ps" in r.stderr, r
    r = wisp(env, "ps", "--help")
    assert r.returncode == 0 and "--sort KEY" in r.stdout, r
    first = zoo("--tier", "fast")
    second = zoo("--tier", "fast", "--schedulers", "1")
    r = wisp(env, "ps")
    assert r.returncode == 1, r
    assert r.stderr.startswith("wisp ps: 2 wisps are running: say which with --pid PID"), r
    assert f"--pid {first.p.pid} " in r.stderr and f"--pid {second.p.pid} " in r.stderr, r
    for how in ([str(second.p.pid)], ["--pid", str(second.p.pid)]):
        r = wisp(env, "ps", *how)
        assert r.returncode == 0 and len(r.stdout.splitlines()) == 1 + len(second.pid), r
    r = wisp(env, "ps", "nosuchnode")
    assert r.returncode == 1 and "no wisp node is named nosuchnode" in r.stderr, r
    from test_dist import free_port
    node = zoo("--tier", "fast", "--name", f"zoo@127.0.0.1:{free_port()}")
    for how in (["zoo"], ["--node", "zoo"], ["zoo@127.0.0.1"]):
        r = wisp(env, "ps", "--json", *how)
        assert r.returncode == 0, (how, r)
        assert {json.loads(l)["pid"] for l in r.stdout.splitlines()} == set(node.pid.values())
    r = wisp(env, "inspect", "--pid", str(first.p.pid), "7fffffff00000001")
    assert r.returncode == 1, r
    assert "wisp inspect: no process 7fffffff00000001 in that run" in r.stderr, r
    r = wisp(env, "inspect", "--pid", str(first.p.pid))
    assert r.returncode == 2 and "which process?" in r.stderr, r


def test_malformed_requests_get_an_error_and_never_harm_the_node(env, zoo):
    """Random bytes, overlong lines, half requests, wrong arguments: each
    gets an error line (or, cut short, nothing) and the node goes on."""
    z = zoo("--tier", "fast")
    srv = z.pid["server"]
    cases = [
        b"\n", b"frobnicate\n", b"ps sort=size\n", b"ps limit=100001\n", b"ps limit=-1\n",
        b"ps sort=\n", b"ps  \n", b"inspect\n", b"inspect zz\n", b"inspect 0\n",
        b"inspect 8000000000000001\n", b"inspect 11111111111111111111\n", b"kill\n",
        b"kill x\n", b"kill " + srv.encode() + b" a b\n", b"kill 1 \x1b[31m\n",
        b"trace\n", b"trace 0\n", b"trace -1\n", b"ps\x00\n", b"inspect \x00\n",
        b"reload x\n", b"x" * 600 + b"\n", b"ps " + b"a" * 100 + b"\n",
    ]
    rng = random.Random(16)
    for _ in range(40):
        cases.append(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))) + b"\n")
    for data in cases:
        out = ask(env, data)
        assert out.startswith(b"error ") and out.endswith(b"\n") and out.count(b"\n") == 1, \
            (data, out)
    # Half a request: cut off when the client closes; nothing is answered.
    for data in [b"", b"ps", b"inspect 1000", b"x" * 5000, b"reload 5\n", b"reload 5\nabc"]:
        out = ask(env, data)
        assert out == b"" or out.startswith(b"error "), (data, out)
    # A 1 MB line: refused at its 512th byte (the rest is never read).
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(30)
        s.connect(control_socket(env))
        try:
            s.sendall(b"y" * (1 << 20))
        except OSError:
            pass
        assert s.recv(200).startswith(b"error a request is one line")
    rows = ps_json(env)
    assert set(rows) == set(z.pid.values()), rows
    z.send("ping")
    z.expect("pong")


def test_idle_connections_do_not_wedge_the_node(env, zoo):
    """Connections are served each on its own thread, at most 16 at once:
    one that sends nothing holds only itself; the 17th is told the node
    is busy; once they go, requests are served again."""
    z = zoo("--tier", "fast")
    path = control_socket(env)
    idle = []
    try:
        for _ in range(15):
            s = socket.socket(socket.AF_UNIX)
            s.connect(path)
            idle.append(s)
        r = wisp(env, "ps", "--json")   # the 16th: served
        assert r.returncode == 0 and len(r.stdout.splitlines()) == len(z.pid), r
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        idle.append(s)
        time.sleep(0.2)   # (let the node take the 16th before the 17th comes)
        r = wisp(env, "ps")
        assert r.returncode == 1 and "busy: 16 requests are being served" in r.stderr, r
    finally:
        for s in idle:
            s.close()
    deadline = time.time() + 30
    while True:
        r = wisp(env, "ps", "--json")
        if r.returncode == 0 or time.time() > deadline:
            break
        time.sleep(0.05)
    assert r.returncode == 0 and len(r.stdout.splitlines()) == len(z.pid), r


def test_a_node_that_ends_mid_listing_ends_the_listing_cleanly(env, guest):
    """The listing of 5,000 processes (1.5 MB) outgrows the socket's
    buffers while the reader waits; the node is stopped meanwhile: it ends
    at once (its end cuts the listing), and the listing has no end line.
    (5,000: under TSan every fiber is one of its 8,128 threads.)"""
    p = subprocess.Popen([str(WISP), "run", "--tier", "fast", guest, "many", "5000"], env=env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        assert p.stdout.readline() == "ready 5000\n"
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(60)
            s.connect(control_socket(env))
            s.sendall(b"ps\n")
            f = s.makefile("rb")
            first = [json.loads(f.readline()) for _ in range(10)]
            assert all("pid" in row for row in first), first
            p.send_signal(signal.SIGTERM)
            assert p.wait(timeout=60) == 143, p.stderr.read()
            rest = f.read().splitlines()
        assert not rest or not rest[-1].startswith(b'{"end"'), rest[-1:]
        assert len(rest) < 5000
    finally:
        p.kill()
        p.wait()


def test_listing_inspecting_and_tracing_while_processes_come_and_go(env, guest):
    """Processes spawn, register a name, send a message and end, 50 at a
    time, while the listing walks the table, processes are inspected and
    traced: every answer is whole (a process that ended is left out or
    "no such process"), and the node goes on. Run under TSan, this is
    what would show a race between the walk and a slot's reuse."""
    p = subprocess.Popen([str(WISP), "run", "--tier", "fast", guest, "churn"], env=env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        assert p.stdout.readline() == "churning\n"
        seen = set()
        for _ in range(10):
            r = wisp(env, "ps", "--json")
            assert r.returncode == 0, r
            rows = [json.loads(l) for l in r.stdout.splitlines()]
            assert all(int(row["pid"], 16) > 0 for row in rows), rows
            names = [row["name"] for row in rows if row["name"]]
            assert all(n.startswith("churn.") for n in names), names
            # (The churners have names; the process reading stdin has none.)
            churners = [row["pid"] for row in rows if row["name"].startswith("churn.")]
            seen.update(churners)
            for pid in churners[:3]:
                r = wisp(env, "inspect", "--json", pid)
                assert r.returncode == 0 or "no process" in r.stderr, r
                if r.returncode == 0:
                    assert json.loads(r.stdout)["pid"] == pid
            if churners:
                r = wisp(env, "trace", churners[-1], timeout=60)
                assert (r.returncode == 0 and r.stdout.endswith("end: the process ended\n")) \
                    or "no process" in r.stderr, r
        p.stdin.close()
        out = p.stdout.read()
        assert p.wait(timeout=60) == 0, p.stderr.read()
        assert out.startswith("churned "), out
        assert int(out.split()[1]) > 0 and seen, (out, seen)
    finally:
        p.kill()
        p.wait()


def test_wisp_ps_says_when_a_listing_ended_early(env, tmp_path):
    """A node that stops answering mid-listing (here a fake one, which
    sends two rows and closes): the rows are shown, and the end is said."""
    d = tmp_path / "run" / "wisp"
    d.mkdir(mode=0o700)
    row = {"pid": "100000001", "parent": "", "name": "", "names": 0, "state": "waiting",
           "wait": "receive", "function": "f", "reductions": 1, "memory": 1, "stack": 1,
           "mailbox": 0, "age_ms": 1, "cpu_us": 1, "main": False, "program": False}
    with socket.socket(socket.AF_UNIX) as srv:
        srv.bind(str(d / f"{os.getpid()}.sock"))
        srv.listen(4)
        client = subprocess.Popen([str(WISP), "ps"], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        srv.settimeout(60)
        while True:   # (the client's probe that a run listens comes first)
            conn, _ = srv.accept()
            conn.settimeout(60)
            request = conn.recv(100)
            if request:
                break
            conn.close()
        with conn:
            assert request == b"ps\n"
            for pid in ("100000001", "100000002"):
                conn.sendall((json.dumps(dict(row, pid=pid)) + "\n").encode())
        out, err = client.communicate(timeout=60)
    assert client.returncode == 1, (out, err)
    assert len(out.splitlines()) == 3 and out.splitlines()[2].startswith("100000002 "), out
    assert err == "wisp ps: the node ended (or stopped answering) before the listing was " \
                  "complete: 2 processes shown\n", err


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_other_users_are_refused(env, zoo):
    """Another user cannot reach the socket (0600 in a 0700 directory);
    even when the permissions are opened up, the node refuses a peer that
    is not its user (SO_PEERCRED)."""
    zoo("--tier", "fast")
    path = control_socket(env)
    probe = ("import socket,sys\n"
             "s=socket.socket(socket.AF_UNIX)\n"
             "try:\n"
             "    s.connect(sys.argv[1])\n"
             "except OSError as e:\n"
             "    print('refused', e.errno); sys.exit(0)\n"
             "try:\n"
             "    s.sendall(b'ps\\n')\n"
             "except OSError:\n"
             "    pass\n"
             "print(s.recv(200).decode().strip())\n")
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                 "/usr/bin/python3", "-c", probe, path]
    r = subprocess.run(as_nobody, capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "refused 13", r   # EACCES
    # Open it up: a hard link in a directory anyone may enter, the socket
    # itself writable by anyone (the node's own check is what is left).
    import tempfile
    open_dir = tempfile.mkdtemp(dir="/tmp")
    link = os.path.join(open_dir, "s.sock")
    os.chmod(open_dir, 0o755)
    os.link(path, link)
    os.chmod(path, 0o666)
    try:
        r = subprocess.run(as_nobody[:-1] + [link], capture_output=True, text=True, timeout=60)
    finally:
        os.chmod(path, 0o600)
        os.unlink(link)
        os.rmdir(open_dir)
    assert r.stdout.strip() == "error not this node's user", r
    assert wisp(env, "ps").returncode == 0


def test_running_out_of_fds_does_not_end_the_control_socket(env, zoo):
    """The node out of fds (its limit lowered to a few more than it uses,
    then connections held open until accepting fails): the socket's
    thread waits and accepts again, closing the connections it served
    meanwhile, so once the connections go, requests are served again."""
    import resource
    z = zoo("--tier", "fast")
    fds = lambda: len(os.listdir(f"/proc/{z.p.pid}/fd"))
    limit = fds() + 4
    old = resource.prlimit(z.p.pid, resource.RLIMIT_NOFILE)
    resource.prlimit(z.p.pid, resource.RLIMIT_NOFILE, (limit, old[1]))
    held = []
    try:
        for _ in range(12):
            s = socket.socket(socket.AF_UNIX)
            s.setblocking(False)
            try:
                s.connect(control_socket(env))
            except BlockingIOError:
                pass   # (the backlog is full: the node stopped accepting)
            held.append(s)
            time.sleep(0.05)
        deadline = time.time() + 30
        while fds() < limit and time.time() < deadline:
            time.sleep(0.05)
        assert fds() == limit
        time.sleep(0.3)   # (accepting fails meanwhile)
    finally:
        for s in held:
            s.close()
        resource.prlimit(z.p.pid, resource.RLIMIT_NOFILE, old)
    r = wisp(env, "ps", "--json", timeout=60)
    assert r.returncode == 0 and len(r.stdout.splitlines()) == len(z.pid), r
    z.send("ping")
    z.expect("pong")
