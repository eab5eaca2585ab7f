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
