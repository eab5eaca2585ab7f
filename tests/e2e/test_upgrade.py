"""Hot code reload (wisp_code): versions of the main module loaded while it
runs, a server moving onto them between two messages with its state, and
the failures that must leave it running its old version."""
import shutil
from pathlib import Path

from conftest import WISP

import pytest


@pytest.fixture
def versions(build_proc, tmp_path):
    """The upgrade guest built as versions 1..4, copied under tmp_path/v."""
    d = tmp_path / "v"
    d.mkdir()
    for v in (1, 2, 3, 4):
        shutil.copy(build_proc("upgrade.c", f"-DGUEST_VERSION={v}"), d / f"v{v}.wasm")
    return d


@pytest.mark.parametrize("version, why", [
    (6, "refused 4 wisp_code_change trapped: wisp_code_change ran past its CPU budget"),
    (7, "refused 4 wisp_code_change returned 1048576, which is no function () -> () of the "
        "new version's table"),
    (8, "refused 4 wisp_code_change returned "),
])
def test_an_upgrade_entry_that_loops_or_names_no_function_rolls_back(wisp, versions, build_proc,
                                                                    version, why):
    """v6's wisp_code_change loops for ever (stopped after its CPU budget),
    v7's returns an index past its table, v8's the index of a function
    that takes arguments: each is refused before anything changes, and
    the server goes on in version 1 with its count (before, v7 and v8
    were handed over and then trapped, and the server was gone)."""
    shutil.copy(build_proc("upgrade.c", f"-DGUEST_VERSION={version}"), versions / "bad.wasm")
    r = wisp("run", "--dir", f"{versions}::/v", versions / "v1.wasm", "/v/bad.wasm")
    assert r.code == 0, r.err
    out = _lines(r)
    assert [l for l in out if l.startswith(("reply", "load"))] == [
        "reply 1001 1", "reply 1001 2", "load 0 2",
        "reply 1001 3", "reply 1001 4", "reply 1001 5"], out
    refused = [l for l in out if l.startswith("refused")]
    assert len(refused) == 1 and refused[0].startswith(why), out


def _lines(r):
    return [l for l in r.out.splitlines() if l]


def test_a_server_upgrades_in_place_and_keeps_its_count(wisp, versions):
    r = wisp("run", "--dir", f"{versions}::/v", versions / "v1.wasm", "/v/v2.wasm")
    assert r.code == 0, r.err
    assert _lines(r) == ["reply 1001 1", "reply 1001 2", "load 0 2",
                         "reply 2002 3", "reply 2002 4", "reply 2002 5",
                         "mine 1 current 2"], r.out


def test_a_refusing_or_trapping_version_rolls_back(wisp, versions):
    """v3's wisp_code_change refuses (-7), v4's traps: the server goes on as
    v2 with its count intact and says why. A third version while it still
    runs v2 (two back) is refused: two versions at most, as in Erlang."""
    r = wisp("run", "--dir", f"{versions}::/v", versions / "v1.wasm", "/v/v2.wasm", "/v/v3.wasm")
    assert r.code == 0, r.err
    out = _lines(r)
    assert [l for l in out if l.startswith(("reply", "load"))] == [
        "reply 1001 1", "reply 1001 2", "load 0 2",
        "reply 2002 3", "reply 2002 4", "reply 2002 5", "load 0 3",
        "reply 2002 6", "reply 2002 7", "reply 2002 8"], out
    assert [l for l in out if l.startswith("refused")] == [
        "refused 4 wisp_code_change refused the state (-7)"], out

    r = wisp("run", "--dir", f"{versions}::/v", versions / "v1.wasm", "/v/v2.wasm", "/v/v4.wasm",
             "/v/v3.wasm")
    assert r.code == 0, r.err
    out = _lines(r)
    assert [l for l in out if l.startswith(("reply", "load"))] == [
        "reply 1001 1", "reply 1001 2", "load 0 2",
        "reply 2002 3", "reply 2002 4", "reply 2002 5", "load 0 3",
        "reply 2002 6", "reply 2002 7", "reply 2002 8", "load 10 0",
        "reply 2002 9", "reply 2002 10", "reply 2002 11"], out
    refused = [l for l in out if l.startswith("refused")]
    assert len(refused) == 1 and refused[0].startswith("refused 4 wisp_code_change trapped: "
                                                      "unreachable"), out


def test_a_run_that_ends_while_a_process_is_moving_ends_cleanly(wisp, versions, build_proc):
    """The main process ends while the server is inside v6's looping
    wisp_code_change: the run ends with the main's status (before, the
    host died on an assertion: the old instance was never freed)."""
    shutil.copy(build_proc("upgrade.c", "-DGUEST_VERSION=6"), versions / "spin.wasm")
    r = wisp("run", "--dir", f"{versions}::/v", versions / "v1.wasm", "loadexit", "/v/spin.wasm")
    assert r.code == 0, r.err
    assert _lines(r) == ["reply 1001 1", "load 0", "exit"], r.out


def test_loading_code_needs_the_capability(wisp, versions):
    """A child whose capabilities deny code loading (WISP_DENY_CODE) gets
    WISP_EPERM (9), and nothing is loaded."""
    r = wisp("run", "--dir", f"{versions}::/v", versions / "v1.wasm", "denied", "/v/v2.wasm")
    assert r.code == 0, r.err
    assert r.out.strip() == "denied 9", r.out


def test_bad_versions_are_refused_and_nothing_changes(wisp, versions, build_proc, tmp_path):
    plain = build_proc("int main(void) { return 0; }\n", name="plain")
    shutil.copy(plain, versions / "plain.wasm")
    r = wisp("run", "--dir", f"{versions}::/v", versions / "v1.wasm",
             "garbage", "/v/plain.wasm", "/v/v1.wasm", "/v/v2.wasm", "/v/v2.wasm")
    assert r.code == 0, r.err
    loads = [l for l in _lines(r) if l.startswith("load")]
    # not wasm; no wisp_code_change; the running version itself; a good
    # one; the same bytes again.
    assert loads == ["load 4 0", "load 4 0", "load 5 1", "load 0 2", "load 5 2"], r.out
    assert "mine 1 current 2" in r.out


def _env(shared_cache, tmp_path):
    """A run's environment: the session's cache, no background builds, and
    a runtime directory (control sockets) of the test's own."""
    import os
    return dict(os.environ, WISP_CACHE_DIR=str(shared_cache), WISP_BACKGROUND_COMPILE="0",
                XDG_RUNTIME_DIR=str(tmp_path))


def _start_sup(versions, env):
    """The upgrade guest in "sup" mode, and ask(): a line on its stdin, the
    line it answers ("sup VSN worker VSN")."""
    import subprocess
    p = subprocess.Popen([str(WISP), "run", versions / "v1.wasm", "sup"], env=env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)

    def ask():
        p.stdin.write("?\n")
        p.stdin.flush()
        return p.stdout.readline().strip()

    return p, ask


def _run_loop(versions, shared_cache, tmp_path):
    import subprocess
    env = _env(shared_cache, tmp_path)
    p = subprocess.Popen([str(WISP), "run", versions / "v1.wasm", "loop"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "started\n"
    return p, env


def test_wisp_reload_from_another_terminal(versions, shared_cache, tmp_path):
    import subprocess
    p, env = _run_loop(versions, shared_cache, tmp_path)
    try:
        bad = subprocess.run([str(WISP), "reload", "--pid", str(p.pid), versions / "v1.wasm"],
                             env=env, capture_output=True, text=True, timeout=120)
        assert bad.returncode == 1 and "version 1 already" in bad.stderr, bad
        junk = tmp_path / "junk.wasm"
        junk.write_bytes(b"\0asm\1\0\0\0garbage")
        bad = subprocess.run([str(WISP), "reload", junk], env=env, capture_output=True,
                             text=True, timeout=120)
        assert bad.returncode == 1 and "reload refused" in bad.stderr, bad
        r = subprocess.run([str(WISP), "reload", versions / "v2.wasm"], env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and "is version 2" in r.stdout, r
        out, err = p.communicate(timeout=60)
    finally:
        p.kill()
    assert p.returncode == 0, err
    assert out.splitlines()[-2].startswith("reply 2002 "), out
    assert out.splitlines()[-1] == "done"
    # The socket is gone with the run.
    assert list((tmp_path / "wisp").glob("*.sock")) == []


def test_reloads_are_one_at_a_time_and_unknown_imports_are_named(versions, shared_cache,
                                                                   tmp_path, build_wat):
    """A version importing what wisp lacks is refused with the import's
    name, and nothing changes; two reloads at once are served one after
    the other (one makes version 2, the other is told those bytes are
    version 2 already): never two versions from one load. (The run is
    "sup", which lasts until its stdin closes: a run that ended once
    version 2 answered could be gone before the second reload looked for
    its socket.)"""
    import subprocess
    bad = build_wat('(module (import "wisp_process" "teleport" (func (param i32)))\n'
                    '  (table 1 funcref) (memory (export "memory") 1)\n'
                    '  (func (export "wisp_code_change") (param i32 i32) (result i32) i32.const 0)\n'
                    '  (func (export "_start")))', name="teleport")
    env = _env(shared_cache, tmp_path)
    p, ask = _start_sup(versions, env)

    try:
        assert ask() == "sup 1 worker 1"
        r = subprocess.run([str(WISP), "reload", "--pid", str(p.pid), bad], env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 1 and '"wisp_process"."teleport"' in r.stderr, r
        assert "(the new version)" in r.stderr, r
        both = [subprocess.Popen([str(WISP), "reload", "--pid", str(p.pid), versions / "v2.wasm"],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True) for _ in range(2)]
        said = sorted((b.wait(timeout=120), b.stdout.read() + b.stderr.read()) for b in both)
        assert said[0][0] == 0 and "is version 2" in said[0][1], said
        assert said[1][0] == 1 and "version 2 already" in said[1][1], said
        import time
        for _ in range(100):   # the supervisor moves when told; its worker stays
            if ask() == "sup 2 worker 1":
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the supervisor never moved onto version 2")
        p.stdin.close()
        assert p.wait(timeout=60) == 0, p.stderr.read()
    finally:
        p.kill()
        p.wait()


def test_another_user_cannot_reach_the_control_socket(versions, shared_cache):
    """Three walls: the directory (0700), the socket (0600), and the
    server's check of the peer's user (SO_PEERCRED)."""
    import os
    import subprocess
    import tempfile
    if os.getuid() != 0:
        pytest.skip("needs root to act as another user")
    run = Path(tempfile.mkdtemp(dir="/tmp"))
    os.chmod(run, 0o755)
    p, env = _run_loop(versions, shared_cache, run)
    probe_src = ("import socket,sys\ns=socket.socket(socket.AF_UNIX)\n"
                 "try:\n s.connect(sys.argv[1]);"
                 " print('answer', s.recv(200).decode().strip())\n"
                 "except OSError as e: print('refused', e.errno)")

    def as_nobody(path):
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            "/usr/bin/python3", "-c", probe_src, str(path)],
                           capture_output=True, text=True, timeout=30)
        return r.stdout.strip() or r.stderr

    try:
        d, sock = run / "wisp", run / "wisp" / f"{p.pid}.sock"
        assert oct(d.stat().st_mode & 0o777) == "0o700"
        assert oct(sock.stat().st_mode & 0o777) == "0o600"
        assert as_nobody(sock) == "refused 13"          # the directory
        os.chmod(d, 0o711)
        assert as_nobody(sock) == "refused 13"          # the socket
        os.chmod(sock, 0o666)
        assert as_nobody(sock) == "answer error not this node's user"
        os.chmod(d, 0o700)
    finally:
        p.kill()
        p.wait()
        shutil.rmtree(run, ignore_errors=True)


def test_a_tcp_server_with_100_clients_is_upgraded_without_dropping_one(build_proc, wisp,
                                                                       shared_cache, tmp_path):
    """100 connections, each its own process: a line in flight when the new
    version loads is answered, every later line is answered by v2 with the
    connection's count carried over, no connection drops, and a connection
    opened afterwards is served by v2 from its first line."""
    import socket
    import subprocess
    d = tmp_path / "v"
    d.mkdir()
    for v in (1, 2):
        shutil.copy(build_proc("upgrade_tcp.c", f"-DGUEST_VERSION={v}"), d / f"v{v}.wasm")
    env = _env(shared_cache, tmp_path)
    p = subprocess.Popen([str(WISP), "run", "--allow-listen", "127.0.0.1:*", "--dir", f"{d}::/v",
                          d / "v1.wasm"], env=env, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        assert line.startswith("listening "), (line, p.stderr.read() if p.poll() else "")
        port = int(line.split()[1])

        def connect():
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            return s, s.makefile("r")

        clients = [connect() for _ in range(100)]
        for s, f in clients:
            s.sendall(b"a\n")
        assert {f.readline() for s, f in clients} == {"v1 a 1\n"}
        # Half of them have a line in flight while the version loads.
        for s, f in clients[:50]:
            s.sendall(b"b\n")
        p.stdin.write(f"load /v/v2.wasm\n")
        p.stdin.flush()
        assert p.stdout.readline() == "loaded 0 2\n"
        for s, f in clients[:50]:
            assert f.readline() in ("v1 b 2\n", "v2 b 2\n")
        for s, f in clients[50:]:
            s.sendall(b"b\n")
            assert f.readline() == "v2 b 2\n"
        for s, f in clients:
            s.sendall(b"c\n")
        assert {f.readline() for s, f in clients} == {"v2 c 3\n"}
        s, f = connect()
        s.sendall(b"x\n")
        assert f.readline() == "v2 x 1\n"
    finally:
        p.kill()
        p.wait()


def test_reload_purge_kills_what_runs_a_version_two_back(versions, build_proc, shared_cache,
                                                       tmp_path):
    """The server refuses v3 (stays on v1); loading a further version is
    refused while it runs v1; with --purge it is killed with the
    documented reason (its monitor sees it), and the version loads. (The
    further version, v9, refuses too: the server, told of it, tries to
    move; one it could move onto would race with the purge, which kills
    only what still runs an old version when it looks.)"""
    import subprocess
    shutil.copy(build_proc("upgrade.c", "-DGUEST_VERSION=9"), versions / "v9.wasm")
    env = _env(shared_cache, tmp_path)
    p = subprocess.Popen([str(WISP), "run", versions / "v1.wasm", "hold"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "reply 1001 1\n"
        assert p.stdout.readline() == "started\n"

        def reload(*args):
            return subprocess.run([str(WISP), "reload", *args], env=env, capture_output=True,
                                  text=True, timeout=120)

        r = reload(versions / "v3.wasm")
        assert r.returncode == 0 and "is version 2" in r.stdout, r
        assert p.stdout.readline().startswith("refused 4 wisp_code_change refused the state")
        r = reload(versions / "v9.wasm")
        assert r.returncode == 1, r
        assert "1 process still runs version 1 or older" in r.stderr and "--purge" in r.stderr, r
        r = reload("--purge", versions / "v9.wasm")
        assert r.returncode == 0 and "is version 3" in r.stdout, r
        line = p.stdout.readline()
        while line.startswith("refused 4 wisp_code_change refused the state"):
            line = p.stdout.readline()   # (told of v9 before the purge's kill came)
        assert line == "down 3 purged: its code (version 1 or older) was replaced twice\n"
        assert p.wait(timeout=30) == 0
    finally:
        p.kill()
        p.wait()


def test_a_purged_worker_is_restarted_by_its_supervisor_on_the_new_version(
        versions, build_proc, shared_cache, tmp_path):
    """A supervisor moves onto each version; its worker never does. The
    third version with --purge kills the worker (two back); the
    supervisor, seeing it end, moves onto the current version first and
    restarts it there (a child runs its parent's version, so that is the
    way to restart on new code)."""
    import subprocess
    shutil.copy(build_proc("upgrade.c", "-DGUEST_VERSION=5"), versions / "v5.wasm")
    env = _env(shared_cache, tmp_path)
    p, ask = _start_sup(versions, env)

    def until(want):
        import time
        seen = []
        for _ in range(100):
            seen.append(ask())
            if seen[-1] == want:
                return
            time.sleep(0.05)
        raise AssertionError(f"never {want!r}: {seen[-5:]}")

    def reload(*args):
        return subprocess.run([str(WISP), "reload", "--pid", str(p.pid), *args], env=env,
                              capture_output=True, text=True, timeout=120)

    try:
        assert ask() == "sup 1 worker 1"
        r = reload(versions / "v2.wasm")
        assert r.returncode == 0 and "is version 2" in r.stdout, r
        until("sup 2 worker 1")
        r = reload(versions / "v5.wasm")
        assert r.returncode == 1 and "1 process still runs version 1" in r.stderr, r
        r = reload("--purge", versions / "v5.wasm")
        assert r.returncode == 0 and "is version 3" in r.stdout, r
        until("sup 3 worker 3")
        p.stdin.close()
        assert p.wait(timeout=30) == 0, p.stderr.read()
    finally:
        p.kill()
        p.wait()


def test_spawns_run_the_optimized_build_once_it_is_ready(build_proc, tmp_path):
    """A run on the fast tier (a fresh cache) builds the optimized tier in
    the background; processes spawned after it lands run it, while main
    goes on with the code it started with."""
    import os
    import subprocess
    m = build_proc("tier.c")
    env = dict(os.environ, WISP_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("WISP_BACKGROUND_COMPILE", None)
    r = subprocess.run([str(WISP), "run", m], env=env, capture_output=True, text=True,
                       timeout=400)
    assert r.returncode == 0, (r.stdout, r.stderr)
    lines = r.stdout.splitlines()
    assert lines[0] == "main on tier 0", r.stdout
    assert lines[1].startswith("optimized after ") and lines[1].endswith("main on tier 0"), \
        r.stdout


def test_reload_push_loads_the_version_on_connected_nodes(versions, shared_cache, tmp_path):
    """`wisp reload --push` on node A: A loads v2 and sends it to the nodes
    it is connected to; B (--allow-code-push) loads it and its server
    moves; C (without) refuses, says so once, and goes on with v1."""
    import os
    import subprocess
    import time
    from test_dist import COOKIE, free_port, node
    epmd = free_port()
    env = dict(os.environ, WISP_CACHE_DIR=str(shared_cache), WISP_BACKGROUND_COMPILE="0",
               XDG_RUNTIME_DIR=str(tmp_path), ERL_EPMD_PORT=str(epmd), HOME=str(tmp_path))
    procs = {}

    def start(name, *extra):
        p = subprocess.Popen([str(WISP), "run", "--sname", name, "--cookie", COOKIE, *extra,
                              versions / "v1.wasm", "loop"], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        procs[name] = p
        assert p.stdout.readline() == "started\n"
        return p

    try:
        b = start("pushb", "--allow-code-push")
        c = start("pushc")
        a = start("pusha", "--connect", node("pushb"), "--connect", node("pushc"))
        r = subprocess.run([str(WISP), "reload", "--push", "--pid", str(a.pid),
                            versions / "v2.wasm"], env=env, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0 and "version 2" in r.stdout and "pushed to 2 nodes" in r.stdout, r
        errs = {}
        for name, p in (("a", a), ("b", b)):
            out, errs[name] = p.communicate(timeout=120)
            assert p.returncode == 0 and out.splitlines()[-1] == "done", (out, errs[name])
            assert out.splitlines()[-2].startswith("reply 2002 "), out
        assert "version 2, pushed by pusha" in errs["b"], errs["b"]
        time.sleep(1)
        assert c.poll() is None                     # still on v1, still asking
        c.kill()
        out, err = c.communicate(timeout=30)
        assert "refused a version pushed by pusha" in err and "--allow-code-push" in err, err
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        subprocess.run(["epmd", "-port", str(epmd), "-kill"], env=env, capture_output=True)


def _mapped_builds(pid, cache):
    """The compiled modules (shared objects under cache) process pid maps."""
    root = str(Path(cache).resolve())
    with open(f"/proc/{pid}/maps") as f:
        return {line.split()[-1] for line in f
                if len(line.split()) >= 6 and line.split()[-1].startswith(root)}


def test_a_version_nobody_runs_is_unloaded(build_proc, tmp_path):
    """Erlang's purge of old code, by itself: once no process runs a
    version that is no longer current, its code leaves the node's memory
    (its shared object is unmapped) — version 2 after the server moved on
    to 3, then version 1 (the module `wisp run` was given) once the main
    process moved too. The current version stays."""
    import os
    import subprocess
    d = tmp_path / "v"
    d.mkdir()
    for v in (1, 2, 5):
        shutil.copy(build_proc("upgrade.c", f"-DGUEST_VERSION={v}"), d / f"v{v}.wasm")
    cache = tmp_path / "cache"
    env = dict(os.environ, WISP_CACHE_DIR=str(cache), WISP_BACKGROUND_COMPILE="0",
               XDG_RUNTIME_DIR=str(tmp_path))
    p = subprocess.Popen([str(WISP), "run", "--dir", f"{d}::/v", d / "v1.wasm", "steps",
                          "/v/v2.wasm", "/v/v5.wasm", "self"], env=env, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def step(expect):
            p.stdin.write("go\n")
            p.stdin.flush()
            assert p.stdout.readline() == expect

        assert p.stdout.readline() == "reply 1001 1\n"
        assert p.stdout.readline() == "started\n"
        v1 = _mapped_builds(p.pid, cache)
        assert len(v1) == 1, v1
        step("on 2\n")
        v1_v2 = _mapped_builds(p.pid, cache)
        assert len(v1_v2) == 2 and v1 < v1_v2, v1_v2
        step("on 3\n")
        # The server runs 3, the main process 1: nobody runs 2.
        now = _mapped_builds(p.pid, cache)
        assert len(now) == 2 and v1 < now and not (v1_v2 - v1) & now, (v1_v2, now)
        step("main on 3\n")
        assert _mapped_builds(p.pid, cache) == now - v1
        p.stdin.write("go\n")
        p.stdin.flush()
        assert p.wait(timeout=30) == 0, p.stderr.read()
    finally:
        p.kill()
        p.wait()
