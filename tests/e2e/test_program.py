"""Whole WASI programs as child processes (wisp_program): an unmodified
C program (tests/guests/c/filter.c) started by a guest with its own
arguments, environment, capabilities and stdio (pipes, copies of the
caller's fds), its end seen as its exit reason."""
import shutil

import pytest


@pytest.fixture
def progs(build_proc, build_c, tmp_path):
    d = tmp_path / "p"
    d.mkdir()
    shutil.copy(build_c("filter.c"), d / "filter.wasm")
    (d / "note.txt").write_text("a note\n")
    return d, build_proc("program.c")


def _run(wisp, progs, *args, **kw):
    d, parent = progs
    return wisp("run", "--dir", f"{d}::/p", parent, "/p/filter.wasm", *args, **kw)


def test_a_program_filters_through_pipes(wisp, progs):
    r = _run(wisp, progs, "pipe")
    assert r.code == 0, r.err
    assert r.out.splitlines() == ["out: HELLO WORLD", "SECOND LINE", "down 0 0 "], r.out


def test_a_writer_waits_for_a_slow_reader_and_nothing_is_lost(wisp, progs):
    """4 MiB into the stdin of a program that starts reading only after a
    pause: far more than a pipe holds, so the writer parks (it does not
    fail, and no byte is lost)."""
    n = 4 << 20
    r = _run(wisp, progs, "wc", str(n))
    assert r.code == 0, r.err
    assert r.out.splitlines() == [f"out: {n // 64} {n // 64} {n}", "down 0 0 "], r.out


def test_the_exit_status_and_a_trap_are_the_exit_reason(wisp, progs):
    r = _run(wisp, progs, "exit", "7")
    assert r.code == 0, r.err
    assert r.out.splitlines() == ["err: bye", "down 1 7 "], r.out
    r = _run(wisp, progs, "trap")
    assert r.code == 0, r.err
    out = r.out.splitlines()
    assert out[0].startswith("down 2 0 unreachable"), r.out


def test_arguments_and_environment_are_the_programs_own(wisp, progs):
    r = _run(wisp, progs, "args", "one", "two words")
    assert r.code == 0, r.err
    assert r.out.splitlines() == ["out: filter", "args", "one", "two words", "down 0 0 "], r.out
    r = _run(wisp, progs, "env")
    assert r.code == 0, r.err
    assert r.out.splitlines() == ["out: hi", "down 0 0 "], r.out


def test_a_program_has_at_most_the_callers_directories(wisp, progs):
    r = _run(wisp, progs, "cat", "/p/note.txt")
    assert r.code == 0, r.err
    assert r.out.splitlines() == ["out: a note", "down 0 0 "], r.out
    r = _run(wisp, progs, "cat-nodirs", "/p/note.txt")
    assert r.code == 0, r.err
    assert r.out.splitlines() == ["out: ", "down 1 3 "], r.out


def test_stdio_can_be_the_callers_own_or_a_copy_of_its_fd(wisp, progs):
    r = _run(wisp, progs, "inherit")
    assert r.code == 0, r.err
    assert r.out.splitlines() == ["HELLO WORLD", "SECOND LINE", "down 0 0 "], r.out
    # One child's stdout pipe handed to another as its stdin.
    r = _run(wisp, progs, "fd")
    assert r.code == 0, r.err
    assert r.out.splitlines() == ["out: 2 3 14", "down 0 0 ", "down 0 0 "], r.out


def test_a_bad_module_is_refused_with_the_reason(wisp, progs, build_wat, tmp_path):
    d, parent = progs
    shutil.copy(build_wat('(module (import "wisp_process" "teleport" (func))\n'
                          '  (memory (export "memory") 1) (func (export "_start")))',
                          name="teleport"), d / "teleport.wasm")
    shutil.copy(build_wat('(module (memory (export "memory") 1) (func (export "f")))',
                          name="nostart"), d / "nostart.wasm")
    (d / "junk.wasm").write_bytes(b"\0asm\1\0\0\0junk")
    for name, why in (("teleport", '"wisp_process"."teleport", which wisp does not provide'),
                      ("nostart", "it exports no _start"), ("junk", "(the program)")):
        r = wisp("run", "--dir", f"{d}::/p", parent, f"/p/{name}.wasm", "spawn")
        assert r.code == 0, r.err
        assert r.out.startswith("spawn 4 ") and why in r.out, (name, r.out)


def test_no_spawn_capability_no_program(wisp, progs):
    d, parent = progs
    r = wisp("run", "--max-processes", "0", "--dir", f"{d}::/p", parent, "/p/filter.wasm",
             "trap")
    assert r.code == 1, r.err
    assert r.out.startswith("spawn 9 no spawn capability"), r.out


def test_the_c_sdk_readmes_program_example_runs(wisp, build_proc, progs):
    """sdk/c/README.md, "Running programs": the parent as printed there,
    with the answers it shows."""
    from conftest import ROOT
    text = (ROOT / "sdk" / "c" / "README.md").read_text()
    section = text.split("## Running programs", 1)[1]
    src = section.split("```c\n", 1)[1].split("```", 1)[0]
    parent = build_proc(src, name="readme_run")
    d, _ = progs
    r = wisp("run", "--dir", f"{d}::/p", parent, "/p/filter.wasm", "wc")
    assert (r.code, r.out) == (0, "it wrote: 1 4 22\nexit status 0\n"), r
    r = wisp("run", "--dir", f"{d}::/p", parent, "/p/filter.wasm", "exit", "7")
    assert (r.code, r.out) == (0, "it wrote: exit status 7\n"), r
    r = wisp("run", "--dir", f"{d}::/p", parent, "/p/filter.wasm", "trap")
    assert r.code == 0 and r.out.startswith("it wrote: it ended abnormally: unreachable"), r
    r = wisp("run", parent, "/p/filter.wasm")
    assert r.code == 1 and "/p/filter.wasm: Capabilities insufficient" in r.err, r
