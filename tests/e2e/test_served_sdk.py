"""Served files through the Rust crate (wisp::served, and
Program::mount_served): tests/guests/rust/served_sdk serves /data from
Rust, in memory (MemFs) or by a FileServer of its own, to the unmodified
C program tests/guests/c/files.c, and prints what the program printed and
what the server holds after. The same ground as test_served.py (the C
server), through the Rust helper; both speak the protocol of docs/abi.md,
"Served files", to the same host."""
import re
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


# ---- a hostile program against its MemFs ----
#
# tests/guests/c/served_attack.c is a plain WASI program (no wisp imports)
# that asks of its served directory what a hostile child can with ordinary
# calls; served_sdk's "attack" mode serves it from one MemFs, run after
# run, and then says whether the server still answers.

@pytest.fixture
def attack(build_rust, build_c, tmp_path):
    d = tmp_path / "p"
    d.mkdir()
    shutil.copy(build_c("served_attack.c"), d / "attack.wasm")
    return d, build_rust("served_sdk")


def _attack(wisp, attack, limit, many, *runs, opts=(), timeout=120):
    d, parent = attack
    r = wisp("run", *opts, "--dir", f"{d}::/p", parent, "/p/attack.wasm", "attack", limit, many, *runs,
             timeout=timeout)
    assert r.code == 0, r.out + r.err
    return r.out.splitlines()


ALIVE = ['server config.txt: "name=wisp\\ncolor=blue\\nsize=3\\n"', "server snapshot: ok"]


def test_a_byte_written_far_past_the_end_costs_the_memfs_nothing(wisp, attack):
    """A pwrite of 2 bytes at 2 GiB - 1 MiB made the MemFs allocate and
    zero 2 GiB, memory the program never needed (its own limit bounds
    nothing in its server), and its parent's snapshot then never came
    back. A MemFs's size is bounded (256 MiB by default): past it a write
    is EFBIG, as past a file size limit, and the server serves on. (Run
    under --max-memory 512M, which the old code answered ENOSPC.)"""
    out = _attack(wisp, attack, "default", "0", "pwrite", "/data/x.bin", str(0x7ff00000), "hi",
                  opts=("--max-memory", "512M"))
    assert out == ["out: error: pwrite: File too large", "out: then: alive", "status Normal", *ALIVE], out


def test_a_memfs_size_limit_bounds_bytes_and_names(wisp, attack):
    """size_limit(100000): a file that alone would pass it is EFBIG (the
    second 64 KiB write); files that fill what is left, by their names,
    ENOSPC. The server answers after both, and its tree is whole."""
    out = _attack(wisp, attack, "100000", "0", "fill", "/data/big", "--",
                  "create", "/data/sub", "100000", "100")
    assert out[:3] == ["out: filled 65536: File too large", "out: then: alive", "status Normal"], out
    m = re.fullmatch(r"out: created (\d+): No space left on device", out[3])
    assert m and 100 < int(m[1]) < 300, out      # (each costs 64 + its path's ~110)
    assert out[4:] == [f"out: count {int(m[1]) + 2}", "status Normal", *ALIVE], out


def test_a_program_filling_its_servers_memory_does_not_end_it(wisp, attack):
    """Under --max-memory 16M, files with 1,000-byte names created until
    the server's memory ran out: the allocation that failed ended the
    MemFs (the program's next call EIO, every later program refused, what
    the tree held lost). A MemFs keeps 1 MiB for its own work: the create
    that would take it is ENOSPC, the directory lists whole (a READDIR's
    answer is bounded too: it was the directory's whole rest, 14 MiB of
    names), and the server serves on; the parent's snapshot, which would
    not fit, is an error (the server would have ended encoding it)."""
    out = _attack(wisp, attack, "default", "0", "create", "/data/sub", "1000000", "1000", "--",
                  "count", "/data/sub", opts=("--max-memory", "16M"))
    m = re.fullmatch(r"out: created (\d+): No space left on device", out[0])
    assert m and int(m[1]) > 1000, out
    count = f"out: count {int(m[1]) + 2}"
    assert out[1:6] == [count, "status Normal", count, "status Normal", ALIVE[0]], out
    assert len(out) == 7 and out[6].startswith("server snapshot: error: the MemFs server "), out
    assert out[6].endswith(": out of memory for the answer"), out


def test_a_size_limit_below_the_memory_limit_keeps_a_memfs_whole(wisp, attack):
    """What a memory-limited MemFs is given: a size limit below its memory
    limit (a message that arrives at a process's memory limit ends it, and
    a write is one). Filled by a program, by bytes and by names, it
    refuses (EFBIG, ENOSPC) and serves on: its files are still written in
    place and read."""
    out = _attack(wisp, attack, "4000000", "0", "fill", "/data/big", "--",
                  "create", "/data/sub", "1000000", "1000", "--", "fill", "/data/sub/a.txt",
                  opts=("--max-memory", "16M"))
    m = re.fullmatch(r"out: filled (\d+): File too large", out[0])
    assert m and 3_900_000 < int(m[1]) <= 4_000_000, out
    assert out[1:3] == ["out: then: alive", "status Normal"], out
    m = re.fullmatch(r"out: created (\d+): No space left on device", out[3])
    assert m and int(m[1]) < 1000, out
    assert out[4:] == [f"out: count {int(m[1]) + 2}", "status Normal",
                       "out: filled 0: No space left on device", "out: then: alive", "status Normal",
                       *ALIVE], out


def test_listing_a_directory_of_30000_costs_its_server_linear_work(wisp, attack):
    """Each READDIR walked the directory from its start to the cookie and
    copied out all the rest: wasi-libc's 4 KiB readdirs of 30,000 entries
    cost the server hundreds of millions of reductions (60,000 took it
    four minutes), every other program of the server waiting. Now a
    READDIR goes on after the last name it answered and answers at most
    64 KiB: the listing fits in --max-cpu 40,000,000 (the old one was
    killed by it, the program's readdir EIO)."""
    out = _attack(wisp, attack, "default", "30000", "count", "/data/sub",
                  opts=("--max-cpu", "40000000"))
    assert out == ["out: count 30002", "status Normal", *ALIVE], out


def test_a_tree_too_large_for_a_message_is_an_error_to_its_parent(wisp, attack):
    """A program wrote a 66 MiB file (within the size limit); the parent's
    snapshot of the tree, more than a message may hold (64 MiB), could not
    be sent, and the parent's call waited for ever. Now it is an error."""
    out = _attack(wisp, attack, "default", "0", "pwrite", "/data/x.bin", str(66 << 20), "hi")
    assert out[:4] == ["out: pwrite 2", "out: then: alive", "status Normal", ALIVE[0]], out
    assert len(out) == 5 and out[4].startswith("server snapshot: error: the MemFs server "), out
    assert out[4].endswith(": the answer is larger than a message may be"), out
