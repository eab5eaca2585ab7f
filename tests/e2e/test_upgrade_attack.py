"""Hot code reload against a hostile guest and a hostile local user: an
upgrade entry (wisp_code_change) that does what it should not, loads and
upgrades racing with spawns and purges, and a control socket fed garbage.
The host must survive every one, leave the module table consistent, and a
guest may only hurt itself."""
import shutil

import pytest


@pytest.fixture
def attack(build_proc, tmp_path):
    """upgrade_attack.c as versions 1..3, under tmp_path/v."""
    d = tmp_path / "v"
    d.mkdir()
    for v in (1, 2, 3):
        shutil.copy(build_proc("upgrade_attack.c", f"-DGUEST_VERSION={v}"), d / f"a{v}.wasm")
    return d


def _attack(wisp, d, mode, *paths):
    r = wisp("run", "--dir", f"{d}::/v", d / "a1.wasm", mode, "/v/a2.wasm", *paths)
    assert r.code == 0, (r.out, r.err)
    out = [l.strip() for l in r.out.splitlines() if l.strip()]
    assert out[0] == "load 0" and out[-1] == "end", out
    return out


@pytest.mark.parametrize("mode, said, on", [
    ("ok", [], "202"),
    ("spawn", ["child 2"] * 20, "202"),
    ("recv", [], "202"),
    ("hibernate", [], "202"),
    ("migrate", ["inner migrate 8"], "202"),
    ("exit", ["rolled back 4 wisp_code_change exited (3)"], "101"),
    ("grow", ["grow -1", "rolled back 4 wisp_code_change refused the state (-2)"], "101"),
    ("trap", ["rolled back 4 wisp_code_change trapped: unreachable"], "101"),
    ("min", ["rolled back 4 wisp_code_change refused the state (-2147483648)"], "101"),
    ("max", ["rolled back 4 wisp_code_change returned 2147483647, which is no function () -> () "
             "of the new version's table"], "101"),
])
def test_an_upgrade_entry_that_misbehaves_moves_or_rolls_back(wisp, attack, mode, said, on):
    """wisp_code_change spawns, waits for a message, hibernates, tries to
    migrate (no node), exits, grows its memory past the limit, traps,
    returns INT32_MIN or INT32_MAX: the worker moves (version 2 answers)
    or goes on in version 1, and the run ends cleanly."""
    out = _attack(wisp, attack, mode)
    moved = on == "202"
    others = [l for l in out if l not in ("load 0", "end", "mine 1 current 2", "moved 2")
              and not l.startswith("worker on")]
    assert len(others) == len(said), out
    assert all(o.startswith(s) for o, s in zip(sorted(others), sorted(said))), out
    assert ("moved 2" in out) == moved, out
    assert f"worker on 0 {on}" in out and "mine 1 current 2" in out, out


def test_an_upgrade_entry_cannot_move_the_process_again(wisp, attack):
    """wisp_code_change loads version 3 and calls wisp_code_upgrade from
    inside itself: refused (the process is moving already), and the first
    move goes on to version 2. Before, the second move was handed over
    inside the first, which then rolled back: the instance of version 3
    was never freed, and the host died on an assertion at the end."""
    out = _attack(wisp, attack, "nested", "/v/a3.wasm")
    assert out[1:] == [
        "nested load 0 3",
        "nested upgrade 4 the process is moving already (called from wisp_code_change)",
        "moved 2", "worker on 0 202", "mine 1 current 3", "end"], out

    out = _attack(wisp, attack, "self")
    assert "inner upgrade 4 the process is moving already (called from wisp_code_change)" \
        in out, out
    assert "moved 2" in out and "worker on 0 202" in out, out


def test_a_process_killed_inside_its_upgrade_entry_ends_there(wisp, attack):
    """The worker is killed while its wisp_code_change waits: it ends with
    KILLED and its old code never runs again (before, the kill ended only
    the change: wisp_code_upgrade returned "exited (0)" to the old code,
    which ran on until its next receive)."""
    out = _attack(wisp, attack, "sleepkill")
    assert out[1:] == ["worker down 3", "mine 1 current 2", "end"], out


def test_a_process_killed_inside_its_upgrade_entry_lets_go_of_the_version(attack, tmp_path):
    """The same, and then version 3 is loaded: nobody runs version 2 any
    more, so its build is unloaded (gone from the node's memory map) —
    the killed process held it only while it was moving."""
    import os
    import subprocess
    from conftest import WISP
    from test_upgrade import _mapped_builds
    cache = tmp_path / "cache"
    env = dict(os.environ, WISP_CACHE_DIR=str(cache), WISP_BACKGROUND_COMPILE="0")
    p = subprocess.Popen([str(WISP), "run", "--dir", f"{attack}::/v", attack / "a1.wasm",
                          "sleepkill", "/v/a2.wasm", "/v/a3.wasm"], env=env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        assert [p.stdout.readline().strip() for _ in range(3)] == [
            "load 0", "worker down 3", "load3 0"]
        builds = _mapped_builds(p.pid, cache)
        assert len(builds) == 2, builds          # versions 1 (main) and 3
        p.stdin.write("go\n")
        p.stdin.flush()
        assert p.wait(timeout=60) == 0, p.stderr.read()
    finally:
        p.kill()
        p.wait()


# ---- the control socket ----

def _start_loop(versions, shared_cache, tmp_path):
    """`wisp run v1.wasm loop` (the upgrade guest asking its server until a
    new version answers) with its control socket under tmp_path."""
    import os
    import subprocess
    from conftest import WISP
    env = dict(os.environ, WISP_CACHE_DIR=str(shared_cache), WISP_BACKGROUND_COMPILE="0",
               XDG_RUNTIME_DIR=str(tmp_path))
    p = subprocess.Popen([str(WISP), "run", versions / "v1.wasm", "loop"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "started\n"
    return p, env, tmp_path / "wisp" / f"{p.pid}.sock"


@pytest.fixture
def versions(build_proc, tmp_path):
    """The upgrade guest (upgrade.c) as versions 1 and 2."""
    d = tmp_path / "uv"
    d.mkdir()
    for v in (1, 2):
        shutil.copy(build_proc("upgrade.c", f"-DGUEST_VERSION={v}"), d / f"v{v}.wasm")
    return d


def _ask(sock, data):
    import socket
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(60)
    s.connect(str(sock))
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    out = b""
    while chunk := s.recv(4096):
        out += chunk
    s.close()
    return out.decode()


def test_the_control_socket_answers_garbage_with_an_error(versions, shared_cache, tmp_path):
    """Requests that are no reload, flags misspelt or repeated, a length
    past any number, a line too long, nothing at all: each gets an error
    line and the run goes on (before, a line that did not start with
    "reload " and a digit had its flags looked for through an
    uninitialised pointer: "hello" crashed the node). Then a real reload
    still works."""
    import subprocess
    from conftest import WISP
    p, env, sock = _start_loop(versions, shared_cache, tmp_path)
    try:
        for req, said in [
                (b"hello\n", "error unknown request\n"),
                (b"reload x\n", "error unknown request\n"),
                (b"reload\n", "error unknown request\n"),
                (b"reload 0\n", "error unknown request\n"),
                (b"reload 5 purgepush\n", "error unknown request\n"),
                (b"reload 5 push purge\n", "error unknown request\n"),
                (b"reload 5 purge purge\n", "error unknown request\n"),
                (b"reload -5\n", "error unknown request\n"),
                (b"\n", "error unknown request\n"),
                (b"reload 99999999999999999999999999\n", "error the module is too large\n"),
                (b"reload 268435457\n", "error the module is too large\n"),
                (b"x" * 127, "error a request is one line\n"),
                (b"", "error a request is one line\n"),
                (b"reload 3 purge push\nabc", "error (the new version): not a WebAssembly "
                                              "module (bad magic)\n"),
                (b"reload 100\nshort", ""),
        ]:
            assert _ask(sock, req) == said, req
            assert p.poll() is None, (req, p.stderr.read())
        r = subprocess.run([str(WISP), "reload", versions / "v2.wasm"], env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and "is version 2" in r.stdout, r
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0 and out.splitlines()[-1] == "done", (out, err)
    finally:
        p.kill()
        p.wait()


def test_a_client_trickling_its_request_does_not_hold_the_socket(versions, shared_cache,
                                                                 tmp_path):
    """A client sends a reload request one byte a second: the socket gives
    it 30 s for the whole request and then serves the next one (before,
    each read had its own 30 s, so the trickle held the socket, every
    reload behind it and the end of the run, for ever). Takes 30 s."""
    import socket
    import subprocess
    import threading
    from conftest import WISP
    p, env, sock = _start_loop(versions, shared_cache, tmp_path)
    stop = threading.Event()
    s = socket.socket(socket.AF_UNIX)
    s.connect(str(sock))

    def trickle():
        for b in b"reload 100000\n" + b"\0" * 100000:
            if stop.wait(1):
                return
            try:
                s.send(bytes([b]))
            except OSError:
                return

    t = threading.Thread(target=trickle)
    t.start()
    try:
        r = subprocess.run([str(WISP), "reload", versions / "v2.wasm"], env=env,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0 and "is version 2" in r.stdout, r
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0 and out.splitlines()[-1] == "done", (out, err)
    finally:
        stop.set()
        t.join()
        s.close()
        p.kill()
        p.wait()


# ---- races on the module table ----

@pytest.fixture
def storm(build_proc, tmp_path):
    """upgrade_storm.c as versions 1..6, under tmp_path/s."""
    d = tmp_path / "s"
    d.mkdir()
    for v in range(1, 7):
        shutil.copy(build_proc("upgrade_storm.c", f"-DGUEST_VERSION={v}"), d / f"s{v}.wasm")
    return d


def test_versions_loaded_at_once_by_many_processes_run_their_own_code(wisp, storm):
    """Six processes load versions 2..6, each the same bytes at once,
    while workers spawn children and move onto each version, and others
    switch their watch on and off. Every version runs its own code: a
    worker on version N answers from version N's build. Before, two loads
    of the same module could share one dlopen'd object under two
    "/proc/self/fd/N" names; the module that kept it closed its fd first,
    and a later version loaded through that fd number ran the earlier
    version's code (about one run in four here: ten runs catch it nearly
    always)."""
    paths = [f"/v/s{v}.wasm" for v in range(2, 7)]
    for _ in range(10):
        r = wisp("run", "--dir", f"{storm}::/v", storm / "s1.wasm", *paths)
        assert r.code == 0, (r.out, r.err)
        assert r.out.splitlines() == ["loaded 2 3 4 5 6", "workers 6 on 6",
                                      "mine 1 current 6"], r.out


def test_processes_of_a_new_version_start_from_its_own_data(wisp, build_proc, tmp_path):
    """Processes of version 1 end (the memory pool keeps version 1's data
    as the image its slots are reset to), main moves onto version 2 and
    version 1 is unloaded; then processes of version 2 start with version
    2's data. Before, the pool went on reading the unloaded version's
    image (a use after free: ASan stops the run here) and matched it by
    the module's address, which a later version may be given."""
    d = tmp_path / "i"
    d.mkdir()
    for v in (1, 2):
        shutil.copy(build_proc("upgrade_image.c", f"-DGUEST_VERSION={v}"), d / f"i{v}.wasm")
    r = wisp("run", "--dir", f"{d}::/v", d / "i1.wasm", "/v/i2.wasm")
    assert r.code == 0, (r.out, r.err)
    assert r.out.splitlines() == ["v1 ok 20", "v2 ok 20", "main on 2"], (r.out, r.err)
