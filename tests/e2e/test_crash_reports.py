"""Crash reports and supervisor reports (issue 16, parts 1 and 2).

Every abnormal end of a process — its own trap or panic, a limit, a kill —
writes one report to stderr: pid, registered names, reason, age,
reductions and a backtrace with function names and, when the module has
DWARF, source lines. An end decided by another process's exit signal is
not reported (that process's own end was); an exit code is reported at
level info only. Supervisors (guest code) report restarts, start failures
and giving up through wisp_process.supervisor_report. Plain text by
default, JSON lines with --log-format json, quieter with --log-level, and
rate-limited with an "N more reports suppressed" line. A Rust panic's
message and location are its exit reason: monitors and links see them.

The C guest is tests/guests/c/reports.c, built with -O0 -g so that its
functions keep their names and the module carries a DWARF line table; the
Rust guest is tests/guests/rust/reports."""
import json
import re

import pytest

from conftest import GUESTS

C_SOURCE = GUESTS / "c" / "reports.c"

AGE = r"    age \d+\.\d (ms|s), (1 reduction|(?!1 )\d+ reductions)"


@pytest.fixture(scope="module")
def guest(build_proc):
    return build_proc("reports.c", "-O0", "-g")


@pytest.fixture(scope="module")
def rust_guest(build_rust):
    return build_rust("reports")


def line_of(definition):
    """The line where a function of reports.c starts: its body's opening
    brace (clang's first line-table row of a function, its "scope line")."""
    lines = C_SOURCE.read_text().splitlines()
    for no, line in enumerate(lines, 1):
        if definition in line:
            return next(n for n in range(no, len(lines) + 1) if "{" in lines[n - 1])
    raise AssertionError(definition)


def records(err):
    """stderr as reports: each a list of lines, the first "wisp: ...", the
    rest indented by four spaces. Any other line fails the test."""
    out = []
    for line in err.splitlines():
        if line.startswith("wisp: "):
            out.append([line])
        else:
            assert line.startswith("    ") and out, f"a line outside any report: {line!r}\n{err}"
            out[-1].append(line)
    return out


def crash_reports(err):
    return [r for r in records(err) if r[0].startswith("wisp: crash report: ")]


def run(wisp, guest, *args, opts=(), code=0):
    r = wisp("run", *opts, guest, *args)
    assert r.code == code, r
    return r


@pytest.mark.parametrize("tier", ["fast", "opt"])
def test_a_trap_is_reported_with_its_backtrace_and_source_lines(wisp, guest, tier):
    r = run(wisp, guest, "one", opts=["--tier", tier])
    assert r.out == "main done\n", r
    [rep] = records(r.err)
    assert re.fullmatch(r"wisp: crash report: process [0-9a-f]+ trapped: unreachable in boom",
                        rep[0]), rep
    assert re.fullmatch(AGE, rep[1]), rep
    # boom, inside handler (gcc may have inlined one into the other: the
    # opt tier's inlining records give both back), inside the C SDK's entry.
    frames = [re.fullmatch(r"    at (\S+)(?: \((\S+):(\d+)\))?", l) for l in rep[2:]]
    assert all(frames), rep
    names = [f[1] for f in frames]
    assert names[:3] == ["boom", "handler", "wisp_spawn_entry"], rep
    assert frames[0][2].endswith(".c") and int(frames[0][3]) == line_of("static void boom(void)"), rep
    assert int(frames[1][3]) == line_of("static void handler("), rep
    assert frames[2][2].endswith("sdk/c/wisp.c"), rep


def test_the_report_as_a_json_line(wisp, guest):
    r = run(wisp, guest, "named", opts=["--log-format", "json"])
    [line] = r.err.splitlines()
    rep = json.loads(line)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", rep["time"]), rep
    assert (rep["level"], rep["event"]) == ("error", "crash"), rep
    assert re.fullmatch(r"[0-9a-f]+", rep["pid"]), rep
    assert rep["names"] == ["worker\x1b[2J"], rep       # JSON escapes it: \u001b
    assert "\\u001b[2J" in line, line
    assert rep["reason"] == {"kind": "trap", "text": "unreachable in boom"}, rep
    assert (rep["main"], rep["program"]) == (False, False), rep
    assert rep["age_ms"] >= 0 and rep["reductions"] >= 0, rep
    bt = rep["backtrace"]
    assert [f["function"] for f in bt[:2]] == ["boom", "named"], rep
    assert bt[0]["line"] == line_of("static void boom(void)") and bt[0]["file"].endswith(".c"), rep
    assert bt[1]["line"] == line_of("static void named("), rep
    assert all(isinstance(f["index"], int) for f in bt), rep


def test_registered_names_are_shown_escaped(wisp, guest):
    r = run(wisp, guest, "named")
    [rep] = records(r.err)
    assert re.fullmatch(r"wisp: crash report: process [0-9a-f]+ \(worker\\x1b\[2J\) trapped: "
                        r"unreachable in boom", rep[0]), rep


def test_a_crash_someone_watches_is_reported_too(wisp, guest):
    r = run(wisp, guest, "monitored")
    assert r.out == "monitored: kind 2 code 0 len 19 text unreachable in boom\nmain done\n", r
    [rep] = crash_reports(r.err)
    assert rep[0].endswith(" trapped: unreachable in boom"), rep


def test_an_end_by_a_linked_crash_is_not_reported_again(wisp, guest):
    """The victim dies of its linked child's trap (same reason): only the
    child's own crash is reported, as in Erlang."""
    r = run(wisp, guest, "linked")
    assert r.out == "victim: kind 2 code 0 len 19 text unreachable in boom\nmain done\n", r
    reps = crash_reports(r.err)
    assert len(reps) == 1 and reps[0][0].endswith(" trapped: unreachable in boom"), r.err


def test_a_limit_and_a_kill_are_reported(wisp, guest):
    r = run(wisp, guest, "limit")
    [rep] = records(r.err)
    assert re.fullmatch(r"wisp: crash report: process [0-9a-f]+ was ended by a limit: cpu limit",
                        rep[0]), rep
    assert rep[2].startswith("    at hog ("), rep
    r = run(wisp, guest, "kill")
    main = re.search(r"^main is ([0-9a-f]+)$", r.out, re.M)[1]
    [rep] = records(r.err)
    assert re.fullmatch(rf"wisp: crash report: process [0-9a-f]+ was killed by {main}", rep[0]), rep
    assert rep[2].startswith("    at sleeper ("), rep      # where the kill found it


def test_an_exit_code_is_reported_at_level_info_only(wisp, guest):
    assert run(wisp, guest, "exit").err == ""
    assert run(wisp, guest, "exit", opts=["--log-level", "error"]).err == ""
    r = run(wisp, guest, "exit", opts=["--log-level", "info"])
    [rep] = records(r.err)
    assert re.fullmatch(r"wisp: crash report: process [0-9a-f]+ exited with code 3", rep[0]), rep


def test_the_main_process_is_reported_then_the_run_ends(wisp, guest):
    r = run(wisp, guest, "main", code=134)
    reps = records(r.err)
    assert len(reps) == 2, r.err
    assert re.fullmatch(r"wisp: crash report: process [0-9a-f]+ trapped: unreachable in boom",
                        reps[0][0]), reps
    assert [l.split()[1] for l in reps[0][2:5]] == ["boom", "handler", "main"], reps
    assert reps[1] == ["wisp: trap: unreachable in boom"], reps


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_crash_storm_is_rate_limited_and_counted(wisp, guest, fmt):
    """1000 processes trap: a few reports get through (the token bucket's
    burst, then 20 a second), the rest are counted in "N more reports
    suppressed" lines; shown and counted add up to every crash."""
    r = run(wisp, guest, "storm", "1000", opts=["--log-format", fmt])
    assert r.out == "storm of 1000 done\nmain done\n", r
    if fmt == "json":
        reps = [json.loads(l) for l in r.err.splitlines()]
        shown = sum(1 for x in reps if x["event"] == "crash")
        counted = sum(x["count"] for x in reps if x["event"] == "suppressed")
        assert all(x["level"] == "warning" for x in reps if x["event"] == "suppressed"), reps
    else:
        reps = records(r.err)
        shown = len(crash_reports(r.err))
        counted = 0
        for rep in reps:
            m = re.fullmatch(r"wisp: (\d+) more reports? suppressed", rep[0])
            if m:
                counted += int(m[1])
            else:
                assert rep[0].startswith("wisp: crash report: "), rep
    assert shown >= 20 and counted > 0, r.err
    assert shown + counted == 1000, (shown, counted)


def test_log_level_none_is_silent(wisp, guest):
    r = run(wisp, guest, "storm", "50", opts=["--log-level", "none"])
    assert (r.out, r.err) == ("storm of 50 done\nmain done\n", ""), r
    assert run(wisp, guest, "one", opts=["--log-level", "none"]).err == ""


def test_bad_log_options_are_usage_errors(wisp, guest):
    r = wisp("run", "--log-level", "debug", guest, "one")
    assert r.code == 2 and "--log-level takes error, warning, info or none" in r.err, r
    r = wisp("run", "--log-format", "xml", guest, "one")
    assert r.code == 2 and "--log-format takes text or json" in r.err, r


def test_wisp_panic_ends_with_its_text_bounded_and_escaped(wisp, guest):
    """wisp_panic's text is the reason (kind TRAP, code 1); a text that
    would fake a line of wisp's is escaped and indented; pointers and
    lengths outside memory trap the caller, not the host; a text longer
    than a reason is cut where a character starts; an expected panic is
    reported at level info."""
    r = run(wisp, guest, "panic")
    lines = r.out.splitlines()
    assert lines[0] == "text: kind 2 code 1 len 31 text bad state: \x1b[2J", lines
    assert lines[2] == "quiet: kind 2 code 1 len 8 text expected", lines
    assert lines[3] == ("outside: kind 2 code 0 len 80 text out of bounds memory access in "
                        "panic_outside: wisp_panic: pointer outside memory"), lines
    assert lines[4] == ("huge: kind 2 code 0 len 77 text out of bounds memory access in "
                        "panic_huge: wisp_panic: pointer outside memory"), lines
    long = lines[5].split(" text ", 1)[1]
    assert lines[5].startswith("long: kind 2 code 1 len 198 "), lines
    assert long == "x" + "\u00e9" * 97 + "...", long
    assert lines[-1] == "main done", lines
    reps = crash_reports(r.err)
    heads = [rep[0] for rep in reps]
    assert len(reps) == 4, r.err                  # the quiet one is not among them
    assert re.fullmatch(r"wisp: crash report: process [0-9a-f]+ panicked: bad state: \\x1b\[2J",
                        heads[0]), heads
    assert reps[0][1] == "    wisp: fake line", reps[0]
    assert not any(l.startswith("wisp: fake") for l in r.err.splitlines()), r.err
    assert "panicked: x\u00e9\u00e9" in heads[3] and heads[3].endswith("..."), heads
    r = run(wisp, guest, "panic", opts=["--log-level", "info"])
    assert any(rep[0].endswith(" panicked: expected") for rep in crash_reports(r.err)), r.err


def test_supervisor_reports_from_a_c_guest(wisp, guest):
    r = run(wisp, guest, "supervisor")
    assert r.out.splitlines() == [
        "restarting 0", "giving up 0", "start failed 0",
        "bad event 4", "reserved 4", "short reason 4",           # WISP_EINVAL
        "report outside memory: kind 2 code 0 len 93 text out of bounds memory access in "
        "report_outside: wisp_supervisor_report: pointer outside memory",
        "main done"], r
    sup = [rep for rep in records(r.err) if rep[0].startswith("wisp: supervisor report: ")]
    child = r"db-conn \(process [0-9a-f]+\)"
    assert len(sup) == 3 and all(len(rep) == 1 for rep in sup), r.err
    assert re.fullmatch(rf"wisp: supervisor report: supervisor [0-9a-f]+: child {child} ended: "
                        r"trapped: unreachable in boom; restarting it", sup[0][0]), sup
    assert re.fullmatch(r"wisp: supervisor report: supervisor [0-9a-f]+: more than 3 restarts in "
                        rf"5000 ms: shutting down; the last: child {child} ended: trapped: "
                        r"unreachable in boom", sup[1][0]), sup
    assert re.fullmatch(r"wisp: supervisor report: supervisor [0-9a-f]+: child db-conn did not "
                        r"start: no such host", sup[2][0]), sup
    r = run(wisp, guest, "supervisor", opts=["--log-format", "json"])
    sup = [x for x in map(json.loads, r.err.splitlines()) if x["event"] == "supervisor"]
    assert [x["report"] for x in sup] == ["restarting", "giving_up", "start_failed"], sup
    assert sup[0]["child"]["id"] == "db-conn" and re.fullmatch(r"[0-9a-f]+", sup[0]["child"]["pid"])
    assert sup[0]["reason"] == {"kind": "trap", "text": "unreachable in boom"}, sup
    assert (sup[1]["max_restarts"], sup[1]["period_ms"]) == (3, 5000), sup
    assert sup[2]["error"] == "no such host" and "pid" not in sup[2]["child"], sup


# ---- Rust: panics as reasons, the crate's supervisor ----

def test_a_rust_panic_reaches_the_down_reason_with_its_location(wisp, rust_guest):
    r = wisp("run", rust_guest, "down")
    assert r.code == 0, r
    text = "src/main.rs:15:21: index out of bounds: the len is 0 but the index is 3"
    assert r.out == f'down Panic("{text}")\n', r
    [rep] = records(r.err)
    assert re.fullmatch(rf"wisp: crash report: process [0-9a-f]+ panicked: {re.escape(text)}",
                        rep[0]), rep
    # The panic machinery's frames are left out: the report starts at the
    # function that panicked.
    assert rep[2] == "    at reports::out_of_bounds", rep


@pytest.mark.parametrize("tier", ["fast", "opt"])
def test_a_rust_main_that_panics_says_so(wisp, rust_guest, tier):
    r = wisp("run", "--tier", tier, rust_guest, "main")
    assert r.code == 134, r
    assert r.err.endswith("wisp: panicked: src/main.rs:45:19: main gives up\n"), r
    # The backtrace starts at main, which panicked: std's frames outside
    # main (lang_start, the short-backtrace marker that calls it) are not
    # taken for the panic's machinery.
    [rep] = crash_reports(r.err)
    assert rep[2] == "    at reports::main", rep


def test_the_crate_supervisor_reports_restarts_and_giving_up(wisp, rust_guest):
    r = wisp("run", rust_guest, "supervisor")
    assert (r.code, r.out) == (0, "supervisor ended: exit code 71\n"), r
    heads = [rep[0] for rep in records(r.err)]
    crash = r"wisp: crash report: process ([0-9a-f]+) panicked: src/main.rs:19:5: worker gives up"
    restart = (r"wisp: supervisor report: supervisor ([0-9a-f]+): child crasher \(process ([0-9a-f]+)\) "
               r"ended: panicked: src/main.rs:19:5: worker gives up; restarting it")
    give_up = (r"wisp: supervisor report: supervisor ([0-9a-f]+): more than 2 restarts in 60000 ms: "
               r"shutting down; the last: child crasher \(process ([0-9a-f]+)\) ended: panicked: "
               r"src/main.rs:19:5: worker gives up")
    assert len(heads) == 6, r.err
    for i in range(3):
        c = re.fullmatch(crash, heads[2 * i])
        s = re.fullmatch(restart if i < 2 else give_up, heads[2 * i + 1])
        assert c and s and c[1] == s[2], heads      # each report names the child that crashed
    r = wisp("run", "--log-format", "json", rust_guest, "supervisor")
    sup = [x for x in map(json.loads, r.err.splitlines()) if x["event"] == "supervisor"]
    assert [x["report"] for x in sup] == ["restarting", "restarting", "giving_up"], sup
    assert sup[-1]["reason"] == {"kind": "panic", "text": "src/main.rs:19:5: worker gives up"}, sup
    assert (sup[-1]["max_restarts"], sup[-1]["period_ms"]) == (2, 60000), sup


MAIN_PANICS_WAT = r"""
(module
  (import "wisp_process" "panic" (func $panic (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "bad \1b]0;owned\07\1b[2J \e2\80\aeevil")
  (func (export "_start") (call $panic (i32.const 16) (i32.const 29) (i32.const 0))))
"""


def test_the_runs_last_line_escapes_the_main_processs_panic(wisp, build_wat):
    """The main process's end is said again on wisp's last line ("wisp:
    panicked: TEXT"), after its crash report: the report escaped the
    guest's text, the last line wrote it raw (a terminal's title set,
    its screen cleared, the rest of the line reversed)."""
    r = wisp("run", "--tier", "fast", build_wat(MAIN_PANICS_WAT, "main_panics"), input=b"")
    assert r.code != 0, r
    assert b"\x1b" not in r.err and b"\x07" not in r.err and b"\xe2\x80\xae" not in r.err, r.err
    assert r.err.splitlines()[-1] == \
        rb"wisp: panicked: bad \x1b]0;owned\x07\x1b[2J \xe2\x80\xaeevil", r.err
