"""Capabilities, tested as attacks: a guest tries to get past what it was
given; every attempt is denied with a clear error (ENOTCAPABLE = 76 for
WASI and wisp_net, the ABI's codes elsewhere), and nothing else is hurt."""
import os

import pytest

GUEST = "caps_attacks.c"


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    t = tmp_path_factory.mktemp("caps")
    (t / "data" / "a").mkdir(parents=True)
    (t / "data" / "secret").write_text("secret")
    (t / "data" / "link").symlink_to("/etc/passwd")
    (t / "ro").mkdir()
    (t / "ro" / "file").write_text("file")
    return t


def run(wisp, build_proc, *args, **kw):
    return wisp("run", "--tier", "fast", *args[:-1], build_proc(GUEST), args[-1], **kw)


def lines(r):
    return r.out.splitlines()


def test_path_escapes_are_denied(wisp, build_proc, tree):
    r = run(wisp, build_proc, "--dir", f"{tree}/data::/data", "paths")
    assert r.code == 0, r
    assert lines(r) == [
        "dotdot: 76", "absolute: 76", "sneaky: 76", "symlink out: 76",
        "proc self: 76", "hardlink out: 76", "rename out: 76",
        "inside still works: 0",
    ], r
    assert (tree / "data" / "secret").read_text() == "secret"
    assert not (tree / "moved").exists() and not (tree / "data" / "stolen").exists()


def test_read_only_directory_cannot_be_written(wisp, build_proc, tree):
    r = run(wisp, build_proc, "--dir-ro", f"{tree}/ro::/ro", "readonly")
    assert lines(r) == ["create: 76", "write: 76", "unlink: 76", "mkdir: 76", "read: 0"], r
    assert sorted(p.name for p in (tree / "ro").iterdir()) == ["file"]


def test_network_is_denied_by_default_and_says_why(wisp, build_proc):
    r = run(wisp, build_proc, "-v", "--allow-connect", "127.0.0.1:80", "network")
    assert lines(r) == ["connect denied port: 76", "listen without right: 76",
                        "udp without right: 76", "dns without right: 76"], r
    assert "no --allow-connect rule matches" in r.err
    assert "no --allow-listen rule matches" in r.err
    assert "--allow-udp" in r.err and "--allow-dns" in r.err


@pytest.mark.parametrize("guest", ["/data", "/data/"])
def test_a_child_gets_at_most_what_its_parent_has(wisp, build_proc, tree, guest):
    # (--dir ...::/data/ is /data: the child's set drops it by that name.)
    r = run(wisp, build_proc, "--dir", f"{tree}/data::{guest}", "child")
    assert r.code == 0, r
    assert lines(r) == [
        "drop dir: 0", "deny caps: 0", "limit memory: 0", "close stdin: 0",
        "reopen stdin: 9",            # WISP_EPERM: that would widen
        "raise memory back: 0",       # accepted, but min(1 MiB, 2^40) stays 1 MiB
        "spawn_with: 0",
        "child open data/secret: 76", # the directory was dropped
        "child new caps: 9",          # building sets was denied
        "child spawn_with parent's handle 0: 4",   # handles are per process
        "child malloc 8 MiB: failed", # its memory limit is 1 MiB
        "change after use: 4",        # a set in use is frozen
        "child ended: kind 0",
    ], r


def test_forged_capability_handles_are_rejected(wisp, build_proc):
    r = run(wisp, build_proc, "forge")
    assert lines(r) == ["unknown handle: 4", "huge handle: 4", "negative handle: 4"], r


def test_memory_limit_makes_growth_fail_not_crash(wisp, build_proc):
    r = run(wisp, build_proc, "--max-memory", "1M", "memory")
    assert r.code == 0, r
    kib = int(r.out.split()[3])
    assert 512 <= kib < 1024, r


def test_cpu_limit_kills_the_spinner_and_only_it(wisp, build_proc):
    r = run(wisp, build_proc, "cpu", timeout=60)
    assert r.code == 0, r
    assert lines(r) == ["spinner ended: kind 5 'cpu limit'", "main still runs"], r


def test_cpu_limit_on_the_main_process(wisp, build_proc):
    r = run(wisp, build_proc, "--max-cpu", "1000000", "spin", timeout=60)
    assert r.code == 137, r
    assert "killed: cpu limit" in r.err, r


def test_process_limit(wisp, build_proc):
    r = run(wisp, build_proc, "--max-processes", "10", "processes")
    assert lines(r) == ["spawned 10, refused 10"], r


def test_no_spawning_at_all(wisp, build_proc):
    r = run(wisp, build_proc, "-v", "--max-processes", "0", "nospawn")
    assert lines(r) == ["spawn: 9"], r
    assert "no spawn capability" in r.err


def test_host_environment_is_not_passed_through(wisp, build_proc):
    r = run(wisp, build_proc, "env", env={"SECRET": "x", "HOME": "/root"})
    assert lines(r) == ["SECRET=(none) HOME=(none)"], r


def test_stdout_null(wisp, build_proc):
    r = run(wisp, build_proc, "--stdout", "null", "forge")
    assert r.code == 0 and r.out == "", r


def test_caps_file(wisp, build_proc, tree, tmp_path):
    f = tmp_path / "app.caps"
    f.write_text(f"# the data directory only\ndir {tree}/data::/data\n\nallow-connect 127.0.0.1:80\nmax-memory 1M\n")
    r = run(wisp, build_proc, "--caps", f, "paths")
    assert lines(r)[-1] == "inside still works: 0", r
    r = run(wisp, build_proc, "--caps", f, "memory")
    assert int(r.out.split()[3]) < 1024, r


@pytest.mark.parametrize("args,needle", [
    (["--allow-connect", "nohostport"], "--allow-connect takes HOST:PORT"),
    (["--allow-listen", "99999"], "--allow-listen takes [HOST:]PORT"),
    (["--max-memory", "lots"], "--max-memory takes a size"),
    (["--stdin", "maybe"], "--stdin takes inherit, null or closed"),
    (["--caps", "/nonexistent/file"], "cannot read capability file"),
])
def test_bad_capability_options(wisp, build_proc, args, needle):
    r = wisp("run", *args, build_proc(GUEST), "forge")
    assert r.code == 2, r
    assert needle in r.err, r


# ---- preopens are opened once (issue 12.2) ----
#
# caps_preopen_swap.c renames a nested preopen away and puts a symlink to /
# (or a fresh directory) at its path, then spawns a child. The child's
# /inner must still be the directory that was opened when wisp started;
# nothing outside the preopens may be read or written.

SWAP = "caps_preopen_swap.c"


def swap_tree(tmp_path):
    outer = tmp_path / "outer"
    (outer / "inner").mkdir(parents=True)
    (outer / "inner" / "marker").write_text("inner-original\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    return outer, outside


def swap_run(wisp, build_proc, tmp_path, mode, inner_flag="--dir"):
    outer, outside = swap_tree(tmp_path)
    r = wisp("run", "--tier", "fast", "--dir", f"{outer}::/outer",
             inner_flag, f"{outer}/inner::/inner", build_proc(SWAP), mode, outside)
    # the host tree: nothing written outside, the moved directory intact
    assert list(outside.iterdir()) == [], r
    assert (outer / "moved" / "marker").read_text() == "inner-original\n"
    return r, outer


@pytest.mark.parametrize("inner_flag", ["--dir", "--dir-ro"])
def test_swapped_preopen_path_reaches_nothing(wisp, build_proc, tmp_path, inner_flag):
    r, outer = swap_run(wisp, build_proc, tmp_path, "swap", inner_flag)
    assert r.code == 0, r
    write_via_inner = "ENOENT" if inner_flag == "--dir" else "ENOTCAPABLE"
    assert lines(r) == [
        "rename inner away: ok", "symlink inner -> /: ok",
        "read root via /inner: ENOENT",          # /inner is still the moved directory
        f"write outside via /inner: {write_via_inner}",
        "read root via swapped path: ENOTCAPABLE",
        "write outside via swapped path: ENOTCAPABLE",
        "dotdot out of /inner: ENOTCAPABLE",
        "marker: inner-original",
    ], r
    assert os.readlink(outer / "inner") == "/"


def test_narrowed_set_keeps_the_opened_directories(wisp, build_proc, tmp_path):
    r, _ = swap_run(wisp, build_proc, tmp_path, "narrowed")
    assert r.code == 0, r
    assert lines(r) == [
        "rename inner away: ok", "symlink inner -> /: ok",
        "read root via /inner: ENOENT",
        "write outside via /inner: ENOTCAPABLE",  # read-only in the narrowed set
        "read root via swapped path: ENOTCAPABLE",  # /outer was dropped
        "write outside via swapped path: ENOTCAPABLE",
        "dotdot out of /inner: ENOTCAPABLE",
        "marker: inner-original",
    ], r


def test_nested_preopen_is_the_directory_opened_at_start(wisp, build_proc, tmp_path):
    r, outer = swap_run(wisp, build_proc, tmp_path, "nested")
    assert r.code == 0, r
    assert lines(r)[:2] == ["rename inner away: ok", "new inner: ok"], r
    assert lines(r)[-1] == "marker: inner-original", r
    assert list((outer / "inner").iterdir()) == []


def test_a_directory_that_is_not_one_is_refused_at_start(wisp, build_proc, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    r = wisp("run", "--dir", f"{f}::/f", build_proc(GUEST), "forge")
    assert r.code == 1, r
    assert f"cannot open directory '{f}'" in r.err and "Not a directory" in r.err, r


# ---- file descriptors (issue 12.6) ----

FDS = "caps_fds.c"


@pytest.fixture
def data_dir(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    (d / "f").write_text("f")
    return d


def test_fd_limit_stops_one_process_only(wisp, build_proc, data_dir):
    r = wisp("run", "--tier", "fast", "--max-fds", "64", "--dir", f"{data_dir}::/data",
             "--allow-listen", "127.0.0.1:*", build_proc(FDS), "limit")
    assert r.code == 0, r
    assert lines(r) == [
        "opened 60: EMFILE",              # 64 numbers: stdio, /data and 60 files
        "listen at the limit: EMFILE",
        "other process open: ok", "other process listen: ok", "child ended: kind 0",
        "listen after a close: ok",
    ], r


def test_default_fd_limit(wisp, build_proc, data_dir):
    r = wisp("run", "--tier", "fast", "--dir", f"{data_dir}::/data",
             "--allow-listen", "127.0.0.1:*", build_proc(FDS), "limit")
    assert r.code == 0, r
    assert lines(r)[0] == "opened 1020: EMFILE", r


def test_fd_limit_narrowed_for_a_child(wisp, build_proc, data_dir):
    r = wisp("run", "--tier", "fast", "--dir", f"{data_dir}::/data", build_proc(FDS), "narrow")
    assert r.code == 0, r
    assert lines(r) == ["limit fds: 0", "raise back: 0",
                        "narrowed child opened 6: EMFILE", "child ended: kind 0"], r


def test_host_fd_reserve_keeps_the_runtime_and_others_going(build_proc, data_dir, shared_cache):
    """With the host's RLIMIT_NOFILE at 256 and no useful per-process limit,
    one process takes every fd guests may have (ENFILE), and the runtime
    still spawns, runs and reports; the others get ENFILE, not a trap."""
    import resource
    import subprocess
    from conftest import WISP

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    env = dict(os.environ, WISP_CACHE_DIR=str(shared_cache), WISP_BACKGROUND_COMPILE="0")
    p = subprocess.run([str(WISP), "run", "--tier", "fast", "--max-fds", "100000",
                        "--dir", f"{data_dir}::/data", "--allow-listen", "127.0.0.1:*",
                        str(build_proc(FDS)), "host"],
                       env=env, capture_output=True, text=True, timeout=120,
                       preexec_fn=low_limit)
    out = p.stdout.splitlines()
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert out[:-1] == [
        "hog stopped: ENFILE",
        "other process open: ENFILE", "other process listen: ENFILE", "child ended: kind 0",
        "other process open: ok", "other process listen: ok", "child ended: kind 0",
    ], (p.stdout, p.stderr)
    held = int(out[-1].split()[-1])
    assert 150 < held <= 256 - 64, held     # the top quarter stays the runtime's


@pytest.mark.parametrize("value", ["-1", "x", ""])
def test_bad_max_fds(wisp, build_proc, value):
    r = wisp("run", "--max-fds", value, build_proc(GUEST), "forge")
    assert r.code == 2, r


def test_closed_stdin_at_start_does_not_become_a_preopen(build_c, shared_cache, tmp_path):
    """wisp started with fd 0 closed: the preopen must not be opened as fd 0
    and then handed to guests as their (writable) stdin."""
    import subprocess
    from conftest import WISP

    m = build_c(r"""
#include <stdio.h>
#include <wasi/api.h>
int main(void)
{
	__wasi_fdstat_t st;
	int r = __wasi_fd_fdstat_get(0, &st);
	printf("stdin: %d type %d\n", r, r ? -1 : st.fs_filetype);
	__wasi_fd_t fd;
	r = __wasi_path_open(0, 0, "evil", __WASI_OFLAGS_CREAT, __WASI_RIGHTS_FD_WRITE, 0, 0, &fd);
	printf("create via stdin: %d\n", r);
	return 0;
}
""", name="stdin_probe")
    ro = tmp_path / "ro"
    ro.mkdir()
    env = dict(os.environ, WISP_CACHE_DIR=str(shared_cache), WISP_BACKGROUND_COMPILE="0")
    p = subprocess.run([str(WISP), "run", "--tier", "fast", "--dir-ro", f"{ro}::/ro", str(m)],
                       env=env, capture_output=True, text=True, timeout=120,
                       stdin=None, preexec_fn=lambda: os.close(0))
    assert p.returncode == 0, p
    # /dev/null stands in for the closed stdin: a character device
    assert p.stdout.splitlines() == ["stdin: 0 type 2", "create via stdin: 76"], p
    assert list(ro.iterdir()) == []
