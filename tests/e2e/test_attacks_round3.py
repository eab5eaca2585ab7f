"""Attacks, round 3: a hostile guest against what changed last — memory
slots that hold the module's image, hibernation giving its slot back,
bulk-instruction charging, crash reports and the naming of a full shadow
stack. Each test is one attack that worked before its fix (or a probe that
must keep holding, where said); it asserts the host survives and the guest
gets its error."""
import re


# ---- crash reports ----

LINKED_CRASH_WAT = """
(module
  (import "wisp_process" "spawn" (func $spawn (param i32 i32 i32 i32 i32) (result i32)))
  (import "wisp_timer" "sleep" (func $sleep (param i64)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func $boom unreachable)
  (func (export "wisp_spawn_entry") (param $fn i32) (param i32)
    (if (i32.eq (local.get $fn) (i32.const 1))
      (then
        ;; A, watched by nobody: a child B linked to it, then it waits
        (drop (call $spawn (i32.const 2) (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 200)))
        (call $sleep (i64.const 5000000000))))
    (if (i32.eq (local.get $fn) (i32.const 2))
      (then (call $sleep (i64.const 10000000)) (call $boom))))
  (func (export "_start")
    (drop (call $spawn (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 200)))
    (call $sleep (i64.const 300000000))
    (call $exit (i32.const 0))))
"""


def test_a_crash_report_does_not_blame_the_linked_process_for_the_trap(wisp, build_wat):
    """B traps; its link takes A down with B's reason. A, watched by
    nobody, was reported as "process A trapped ... unreachable in boom":
    the report named a pid whose code never trapped (and B's own crash,
    heard by A, is rightly not reported). Now A's line says whose exit
    signal ended it."""
    r = wisp("run", "--tier", "fast", build_wat(LINKED_CRASH_WAT, "linked_crash"))
    assert r.code == 0, r
    m = re.fullmatch(r"wisp: process ([0-9a-f]+) ended by the exit signal of ([0-9a-f]+) "
                     r"\(trapped\), nobody linked or monitoring: unreachable in boom\n", r.err)
    assert m, r.err
    a, b = (int(x, 16) for x in m.groups())
    assert a != b and b > a, r.err    # B is A's child: spawned after it
