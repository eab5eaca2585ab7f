"""Served files through the Rust crate (wisp::served, and
Program::mount_served): tests/guests/rust/served_sdk serves /data from
Rust, in memory (MemFs) or by a FileServer of its own, to the unmodified
C program tests/guests/c/files.c, and prints what the program printed and
what the server holds after. The same ground as test_served.py (the C
server), through the Rust helper; both speak the protocol of docs/abi.md,
"Served files", to the same host."""
import shutil

import pytest


@pytest.fixture
def served(build_rust, build_c, tmp_path):
    d = tmp_path / "p"
    d.mkdir()
    shutil.copy(build_c("files.c"), d / "files.wasm")
    return d, build_rust("served_sdk")


def _run(wisp, served, mode, *args):
    d, parent = served
    r = wisp("run", "--dir", f"{d}::/p", parent, "/p/files.wasm", mode, *args)
    assert r.code == 0, r.out + r.err
    return r.out.splitlines()


REPORT = "name is wisp\\ncolor is blue\\nsize is 3\\n3 settings\\n"


def test_a_program_reads_and_writes_files_a_rust_memfs_serves(wisp, served):
    """files report: fopen/fgets of config.txt, fopen "w" of report.txt,
    fseek/ftell to the end (STAT), stat() of a path (PSTAT), appends
    (O_APPEND: writes at the end), lseek from the end then read, and
    readdir of the root and of sub. What it wrote is the MemFs's after."""
    assert _run(wisp, served, "memfs", "report", "/data") == [
        "out: config ends at 28",
        "out: report is 48 bytes",
        "out: log is 12 bytes",
        "out: log ends with run 1",
        "out: ls config.txt log.txt report.txt sub",
        "out: ls sub a.txt b.txt",
        "status Normal",
        f'server report.txt: "{REPORT}"',
        'server log.txt: "run 0\\nrun 1\\n"',
        "server files: config.txt log.txt report.txt sub/a.txt sub/b.txt",
    ]


def test_a_listing_longer_than_a_readdir_buffer_is_whole(wisp, served):
    """50 entries of 124 bytes each in sub: more than wasi-libc's 4 KiB
    readdir buffer, so the program asks several times from the cookie of
    the last entry it took, and the MemFs's replies end in an entry cut
    short (which the program asks for again)."""
    names = [f"{i:03}-{'n' * 96}" for i in range(50)]
    out = _run(wisp, served, "memfs", "50", "report", "/data")
    assert out[5] == "out: ls sub " + " ".join(names + ["a.txt", "b.txt"]), out[5]
    assert out[6] == "status Normal", out


def test_a_file_a_memfs_serves_reads_as_written(wisp, served):
    assert _run(wisp, served, "memfs", "cat", "/data/sub/a.txt")[:2] == ["out: alpha", "status Normal"]
    assert _run(wisp, served, "memfs", "stat", "/data/config.txt")[:2] == [
        "out: size 28 dir 0", "status Normal"]
    # ".." below the root is the host's to resolve; above it, refused.
    assert _run(wisp, served, "memfs", "openat", "/data/sub", "../sub/./b.txt")[:2] == [
        "out: read 5: beta", "status Normal"]
    assert _run(wisp, served, "memfs", "openat", "/data/sub", "../../p/files.wasm")[:2] == [
        "out: error: ../../p/files.wasm: Capabilities insufficient", "status Code(3)"]
    assert _run(wisp, served, "memfs", "cat", "/data/missing")[:2] == [
        "out: error: /data/missing: No such file or directory", "status Code(3)"]


def test_a_read_only_memfs_refuses_writes(wisp, served):
    assert _run(wisp, served, "read-only", "report", "/data") == [
        "out: error: /data/report.txt: Read-only file system",
        "status Code(3)",
        "server report.txt: none",
        "server log.txt: none",
        "server files: config.txt sub/a.txt sub/b.txt",
    ]


def test_a_file_server_of_its_own_answers_a_write(wisp, served):
    """A FileServer with open, write and close only: the write's bytes, at
    offset 0, reach it; the open's flags are the program's O_WRONLY |
    O_CREAT | O_TRUNC, decoded; CLOSE comes when the program closes."""
    assert _run(wisp, served, "journal", "write", "/data/notes.txt", "hello served") == [
        "out: wrote 12",
        "status Normal",
        'journal: open "notes.txt" OpenFlags { read: false, write: true, create: true, exclusive: false, '
        "truncate: true, directory: false, append: false }",
        'journal: write "notes.txt" Offset(0) "hello served"',
        "journal: close 1",
    ]
    # Its open refuses reading (EACCES), as it says.
    out = _run(wisp, served, "journal", "cat", "/data/notes.txt")
    assert out[:2] == ["out: error: /data/notes.txt: Permission denied", "status Code(3)"], out


def test_calls_a_file_server_leaves_to_the_defaults_fail_cleanly(wisp, served):
    """The journal serves no STAT: stat() of the root (which it opens, as
    a directory) fails with the default's ENOSYS; the default path_stat
    opens, stats and closes. A path it will not open for reading fails
    with the open's own errno."""
    out = _run(wisp, served, "journal", "stat", "/data")
    assert out == ["out: error: /data: Function not implemented", "status Code(3)",
                   'journal: open "" OpenFlags { read: true, write: false, create: false, exclusive: false, '
                   "truncate: false, directory: false, append: false }",
                   "journal: close 0"], out
    out = _run(wisp, served, "journal", "stat", "/data/notes.txt")
    assert out[:2] == ["out: error: /data/notes.txt: Permission denied", "status Code(3)"], out


def test_a_server_that_dies_while_the_program_waits_gives_it_eio(wisp, served):
    """The server ends inside the READ it was asked: the program's read
    returns EIO (it does not hang), it reports it and ends; the server's
    own end is its exit."""
    assert _run(wisp, served, "die", "cat", "/data/anything") == [
        "out: error: read: I/O error", "status Code(3)", "server Code(9)"]


def test_a_mount_whose_server_has_ended_is_refused(wisp, served):
    out = _run(wisp, served, "gone", "cat", "/data/x")
    assert len(out) == 1 and out[0].startswith(
        "error NoServer: cannot start the program: mount /data: no process "), out
    assert out[0].endswith(" to serve it"), out
