"""Generated functions work on a local copy of the memory's record (its
base and size: codegen.c, local_mem_plan), taken again after every call.
These modules grow their memory in the middle of a function, directly and
through a callee and a call_indirect, and use the new pages at once: a copy
left stale would trap on a valid address (or, if the memory moved, touch
the old one). Both tiers."""
import pytest

GROW_WAT = """
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (table 1 funcref)
  (elem (i32.const 0) $grow_one)
  (type $t (func))
  (func $grow_one (drop (memory.grow (i32.const 1))))
  ;; the address of the last word of the memory as it is now
  (func $last (result i32)
    (i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 4)))
  (func (export "_start")
    (local $i i32) (local $sum i32)
    ;; a store and a load before any growth: the copy is taken
    (i32.store (i32.const 0) (i32.const 7))
    (loop $l
      ;; grown in this function, then the new last word at once
      (drop (memory.grow (i32.const 1)))
      (i32.store (call $last) (local.get $i))
      (local.set $sum (i32.add (local.get $sum) (i32.load (call $last))))
      ;; grown by a callee
      (call $grow_one)
      (i32.store (i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 4))
                 (i32.const 1))
      ;; grown through the table
      (call_indirect (type $t) (i32.const 0))
      (i32.store (i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 4))
                 (i32.const 2))
      (local.set $sum (i32.add (local.get $sum)
        (i32.load (i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 4)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 20))))
    ;; 61 pages now; sum = 0+..+19 + 20*2 = 230; 230 - 230 + 42
    (call $exit (i32.add (i32.const 42)
      (i32.sub (i32.add (local.get $sum) (i32.sub (memory.size) (i32.const 61)))
               (i32.const 230)))))
)
"""


@pytest.mark.parametrize("tier", ["fast", "opt"])
def test_memory_grown_mid_function_is_usable_at_once(wisp, build_wat, tier):
    r = wisp("run", "--tier", tier, build_wat(GROW_WAT, "grow_mid_function"))
    assert r.code == 42, r
    assert r.err == "", r


# The memory exported as "T" is the instance's field w2c_T; the table,
# unnamed, is w2c_T0, whose address table.grow takes: only the memory's
# own field is the local copy.
PREFIX_WAT = """
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "T") 1)
  (table 1 funcref)
  (func (export "_start")
    (drop (table.grow 0 (ref.null func) (i32.const 1)))
    (i32.store (i32.const 0) (i32.add (table.size 0) (i32.const 40)))
    (call $exit (i32.load (i32.const 0))))
)
"""


@pytest.mark.parametrize("tier", ["fast", "opt"])
def test_memory_field_a_prefix_of_another_field(wisp, build_wat, tier):
    r = wisp("run", "--tier", tier, build_wat(PREFIX_WAT, "memory_field_prefix"))
    assert r.code == 42, r
    assert r.err == "", r
