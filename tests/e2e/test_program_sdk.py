"""Whole WASI programs as child processes through the Rust crate
(wisp::program): tests/guests/rust/program_sdk, whose header lists its
modes, starts the unmodified C program tests/guests/c/filter.c with
Program/Child/Stdio and prints what it saw; the same ground as
test_program.py (the C side), plus what the crate adds: output() with both
pipes at once, an fd-backed Stdio (another child's stdout, a socket), waits
that take only their child's Down, kill, drop, link. Then the example
sdk/rust/examples/src/bin/pipeline.rs, a tiny shell running itself and
filter.wasm as pipeline stages."""
import shutil

import pytest

from test_rust_sdk import examples, sdk_env  # noqa: F401 (fixtures)

NET = ["--allow-listen", "127.0.0.1:*", "--allow-connect", "127.0.0.1:*"]


@pytest.fixture
def progs(build_rust, build_c, tmp_path):
    d = tmp_path / "p"
    d.mkdir()
    shutil.copy(build_c("filter.c"), d / "filter.wasm")
    (d / "note.txt").write_text("a note\n")
    return d, build_rust("program_sdk")


def _run(wisp, progs, *args, extra=(), module="/p/filter.wasm", **kw):
    d, parent = progs
    return wisp("run", *extra, "--dir", f"{d}::/p", parent, module, *args, **kw)


def _lines(r):
    assert r.code == 0, r.out + r.err
    return r.out.splitlines()


NORMAL = "status Normal success=true code=Some(0)"


def test_a_program_filters_through_pipes(wisp, progs):
    assert _lines(_run(wisp, progs, "pipe")) == ["out: HELLO WORLD", "SECOND LINE", NORMAL]


def test_a_writer_waits_for_a_slow_reader_and_nothing_is_lost(wisp, progs):
    """4 MiB written through a ChildStdin into a program that starts
    reading only after a pause: far more than a pipe holds, so write_all
    parks (it does not fail, and no byte is lost)."""
    n = 4 << 20
    assert _lines(_run(wisp, progs, "wc", str(n))) == [f"out: {n // 64} {n // 64} {n}", NORMAL]


def test_the_exit_status_and_a_trap_are_the_exit_status(wisp, progs):
    assert _lines(_run(wisp, progs, "exit", "7")) == [
        "err: bye", "status Code(7) success=false code=Some(7)", 'output: Some(7) "" "bye\\n"']
    out = _lines(_run(wisp, progs, "trap"))
    assert out[0].startswith('status Trap("unreachable in ') and out[0].endswith(
        '") success=false code=None'), out
    assert out[1].startswith('trap text: Some("unreachable in '), out


def test_arguments_and_environment_are_the_programs_own(wisp, progs):
    assert _lines(_run(wisp, progs, "args", "one", "", "two words")) == [
        "out: filter", "args", "one", "", "two words", NORMAL]
    # The environment is the caller's (what wisp run gave it), changed as
    # std::process::Command changes it.
    assert _lines(_run(wisp, progs, "env", extra=["--env", "FROM_RUN=yes"])) == [
        "set: hi", "inherited: yes", "removed: unset", "cleared: unset", "cleared then set: again"]


def test_an_argument_with_a_nul_is_refused(wisp, progs):
    assert _lines(_run(wisp, progs, "nul")) == [
        'error Invalid: cannot start the program: an argument contains a NUL byte: "a\\0b"',
        'error Invalid: cannot start the program: an environment variable contains a NUL byte: "K=v\\0w"']


def test_a_program_has_at_most_the_callers_directories(wisp, progs):
    assert _lines(_run(wisp, progs, "cat", "/p/note.txt")) == ["out: a note", NORMAL]
    # Under a Caps without directories, the file is not there (status 3).
    assert _lines(_run(wisp, progs, "cat-nodirs", "/p/note.txt")) == [
        "out: ", "status Code(3) success=false code=Some(3)"]


def test_stdio_can_be_the_callers_own_or_another_childs_pipe(wisp, progs):
    assert _lines(_run(wisp, progs, "inherit")) == ["HELLO WORLD", "SECOND LINE", NORMAL]
    # upper's ChildStdout as wc's stdin: wc reads upper's output to its end
    # (the caller's copy closed with the Program).
    assert _lines(_run(wisp, progs, "fd")) == ["up stdout taken: true", NORMAL, "out: 2 3 14", NORMAL]


def test_output_reads_stdout_and_stderr_at_once(wisp, progs):
    """A program writing 20,000 lines to each stream in turns fills a pipe
    (64 KiB) several times over: reading stdout to its end before stderr
    would wait for ever on a program waiting to write stderr."""
    n = 20000
    size = sum(len(f"out {i}\n") for i in range(n))
    assert _lines(_run(wisp, progs, "output", str(n))) == [
        f"stdout {size} bytes, as expected: true", f"stderr {size} bytes, as expected: true", NORMAL]


def test_a_connection_as_a_programs_stdin_and_stdout(wisp, progs):
    assert _lines(_run(wisp, progs, "socket", extra=NET)) == ["out: OVER TCP", NORMAL]


def test_wait_takes_only_its_childs_down(wisp, progs):
    """Two children waited for in the reverse order of their spawns, with
    messages queued before and between: each wait gets its own child's
    status, and the messages are still there, in order, after."""
    assert _lines(_run(wisp, progs, "selective")) == [
        "status Code(2) success=false code=Some(2)", "status Code(1) success=false code=Some(1)",
        "status Code(1) success=false code=Some(1)", "try_wait after: Some(Some(1))",
        "message: queued before", "message: queued between", "left: true"]


def test_a_killed_program_ends_killed(wisp, progs):
    """Killed at once after the spawn (before it first parks reading its
    stdin, which stays open): the kill must reach it there. It used to wait
    on the pipe with the kill pending, for ever."""
    assert _lines(_run(wisp, progs, "kill")) == ["running: None", "status Killed success=false code=None"]


def test_a_dropped_child_runs_on_and_leaves_no_down(wisp, progs):
    assert _lines(_run(wisp, progs, "drop")) == ["down Normal ours: true", "left: true"]


def test_a_linked_program_takes_its_caller_down(wisp, progs):
    r = _run(wisp, progs, "link")
    assert r.code == 7, r.out + r.err
    assert r.out.splitlines() == ["waiting"], r.out
    # Trapping exits, the caller gets both the Down (wait) and the Exit.
    assert _lines(_run(wisp, progs, "link-trap")) == [
        "waiting", "status Code(7) success=false code=Some(7)", "exit Code(7) from the child: true"]


def test_a_bad_module_is_refused_with_the_reason(wisp, progs, build_wat):
    d, _ = progs
    shutil.copy(build_wat('(module (import "wisp_process" "teleport" (func))\n'
                          '  (memory (export "memory") 1) (func (export "_start")))',
                          name="teleport"), d / "teleport.wasm")
    shutil.copy(build_wat('(module (memory (export "memory") 1) (func (export "f")))',
                          name="nostart"), d / "nostart.wasm")
    (d / "junk.wasm").write_bytes(b"\0asm\1\0\0\0junk")
    for name, why in (("teleport", '"wisp_process"."teleport", which wisp does not provide'),
                      ("nostart", "it exports no _start"), ("junk", "(the program)")):
        out = _lines(_run(wisp, progs, "spawn", module=f"/p/{name}.wasm"))
        assert out[0].startswith("error Invalid: cannot start the program: ") and why in out[0], (name, out)
        assert out[1:] == ["as io::Error: InvalidInput"], (name, out)


def test_a_module_that_cannot_be_read_names_the_path(wisp, progs):
    assert _lines(_run(wisp, progs, "path", "/p/missing.wasm")) == [
        "error Read: cannot read the program /p/missing.wasm: No such file or directory (os error 44)",
        "as io::Error: NotFound"]
    out = _lines(_run(wisp, progs, "path", "/etc/passwd"))
    # (The path once: the denial's own text starts with it.)
    assert out[0].startswith("error Read: cannot read the program /etc/passwd: not allowed "
                             "by the process's capabilities"), out
    assert out[1:] == ["as io::Error: PermissionDenied"], out


def test_no_spawn_capability_no_program(wisp, progs):
    r = _run(wisp, progs, "pipe", extra=["--max-processes", "0"])
    assert r.code == 1, r.out + r.err
    assert r.out.startswith("spawn failed: cannot start the program: no spawn capability (the caller's "
                            "capabilities deny spawning"), r.out


def test_the_pipeline_example_runs_programs_in_a_pipeline(wisp, examples, build_c, tmp_path):  # noqa: F811
    d = tmp_path / "bin"
    d.mkdir()
    shutil.copy(examples("pipeline"), d / "pipeline.wasm")
    shutil.copy(build_c("filter.c"), d / "filter.wasm")
    text = "hello world\nsecond line\n"

    def run(line, *opts):
        return wisp("run", *opts, "--dir", f"{d}::/bin", d / "pipeline.wasm", "run", line,
                    input=text)

    r = run("/bin/pipeline.wasm upper | /bin/pipeline.wasm rev | /bin/pipeline.wasm wc")
    assert (r.code, r.out) == (0, "2 4 24\n"), r.err
    # Programs in other languages mix in: filter.c's upper, then rev.
    r = run("/bin/filter.wasm upper | /bin/pipeline.wasm rev")
    assert (r.code, r.out) == (0, "DLROW OLLEH\nENIL DNOCES\n"), r.err
    # A stage that crashes is reported; the last still runs (on no input).
    # (Without the node's crash report: the log's thread writes it while
    # Rust's eprintln! writes its line in pieces, and could land inside it.)
    r = run("/bin/pipeline.wasm upper | /bin/pipeline.wasm crash | /bin/pipeline.wasm wc",
            "--log-level", "none")
    assert (r.code, r.out) == (0, "0 0 0\n"), r.err
    assert "pipeline: stage 2 (/bin/pipeline.wasm) ended: trap: " in r.err, r.err
    # The exit status is the last stage's; a stage that cannot start says why.
    r = run("/bin/filter.wasm exit 5")
    assert r.code == 5, r.err
    r = run("/bin/pipeline.wasm upper | /bin/missing.wasm")
    assert r.code == 1, r.err
    assert "pipeline: stage 2 (/bin/missing.wasm): cannot read the program /bin/missing.wasm" in r.err, r.err
