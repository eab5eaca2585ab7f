"""Served files (issue 15 point 2): a parent mounts a directory served by a
process into a child program's file namespace. The child is a plain WASI
program (tests/guests/c/files.c) that believes it reads and writes files;
its calls below /data become requests to an in-memory server written in C
(tests/guests/c/served.c), which also misbehaves on demand."""
import shutil

import pytest


@pytest.fixture
def served(build_proc, build_c, tmp_path):
    d = tmp_path / "p"
    d.mkdir()
    shutil.copy(build_c("files.c"), d / "files.wasm")
    return d, build_proc("served.c")


def _run(wisp, served, server, *args, mount=None):
    """The program's output and its end ("down KIND CODE"); with a working
    server, after checking that every handle it opened was closed (by
    fd_close, or when the program ended). mount: the child's name for the
    served directory (default /data)."""
    d, parent = served
    name = [f"--mount={mount}"] if mount else []
    r = wisp("run", "--dir", f"{d}::/p", parent, *name, "/p/files.wasm", server, *args)
    assert r.code == 0, r.err
    out = r.out.splitlines()
    if server == "ok":
        opens, closes = out[-1].split()[1::2]
        assert out[-1].startswith("opens ") and opens == closes, out
        return out[:-1]
    return out


def _program(out):
    return out[:next(i for i, l in enumerate(out) if l.startswith("down ")) + 1]


def test_a_program_reads_and_writes_served_files(wisp, served):
    out = _run(wisp, served, "ok", "report", "/data")
    assert out == [
        "out: config ends at 28",
        "report is 48 bytes",
        "log is 12 bytes",
        "log ends with run 1",
        "ls big.bin config.txt log.txt report.txt sub",
        "ls sub a.txt b.txt",
        "down 0 0",
        # What the program wrote is the server's.
        "server report.txt: name is wisp",
        "color is blue",
        "size is 3",
        "3 settings",
        "server log.txt: run 0",
        "run 1",
    ], out


def test_large_reads_are_split_and_whole(wisp, served):
    """200,000 bytes through 64 KiB freads: more than one message holds."""
    data = bytes((i * 7 + i // 251) & 0xff for i in range(200000))
    s = 0
    for b in data:
        s = (s * 31 + b) & 0xffffffff
    out = _program(_run(wisp, served, "ok", "big", "/data/big.bin"))
    assert out == [f"out: 200000 bytes, sum {s}", "down 0 0"], out


def test_stat_and_normalised_paths(wisp, served):
    def run(*args):
        return _program(_run(wisp, served, "ok", *args))
    assert run("stat", "/data/sub") == ["out: size 0 dir 1", "down 0 0"]
    assert run("stat", "/data/config.txt") == ["out: size 28 dir 0", "down 0 0"]
    # ".." below the root is resolved by the host, never sent.
    assert run("openat", "/data/sub", "../sub/./a.txt") == ["out: read 6: alpha", "down 0 0"]
    out = run("cat", "/data/missing")
    assert out == ["out: error: /data/missing: No such file or directory", "down 1 3"], out


def test_a_mount_named_with_a_trailing_slash_serves_its_root_too(wisp, served):
    """A mount given as "/data/" is the directory /data: the program can
    stat and list the root itself, not only paths below it (a guest's libc
    matches paths against the name as the host gives it)."""
    def run(*args):
        return _program(_run(wisp, served, "ok", *args, mount="/data/"))
    assert run("stat", "/data") == ["out: size 0 dir 1", "down 0 0"]
    assert run("stat", "/data/config.txt") == ["out: size 28 dir 0", "down 0 0"]


def test_a_path_climbing_above_the_mount_is_refused(wisp, served):
    out = _program(_run(wisp, served, "ok", "openat", "/data/sub", "../../p/files.wasm"))
    assert out == ["out: error: ../../p/files.wasm: Capabilities insufficient", "down 1 3"], out


@pytest.mark.parametrize("server", ["die", "garbage", "wronglen", "long", "errno"])
def test_a_server_that_fails_gives_the_program_eio(wisp, served, server):
    """A server that dies while the program waits, or answers garbage, a
    wrong length, more than was asked or an errno that is none: the read
    fails with EIO, the program reports it and ends; nothing hangs."""
    out = _run(wisp, served, server, "cat", "/data/config.txt")
    assert out == ["out: error: read: I/O error", "down 1 3"], out


def test_a_mount_naming_a_dead_process_is_refused(wisp, served):
    out = _run(wisp, served, "dead", "cat", "/data/config.txt")
    assert len(out) == 1 and out[0].startswith("spawn 1 mount /data: no process "), out


def test_calls_a_server_does_not_serve_fail_cleanly(wisp, served):
    """A served fd has no host fd: calls other than the served ones say
    ENOTSUP (the file is untouched and still reads)."""
    out = _program(_run(wisp, served, "ok", "other", "/data/config.txt"))
    assert out == ["out: fsync -1 Not supported",
                   "ftruncate -1 Not supported",
                   "unlink -1 Not supported",
                   "mkdir -1 Not supported",
                   "read 1",
                   "down 0 0"], out
