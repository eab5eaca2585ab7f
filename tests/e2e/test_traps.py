"""Traps end the guest with `wisp: trap: <kind> in <function>` and status 134,
in both tiers; the host never crashes."""
import pytest

TIERS = ["fast", "opt"]

CASES = [
    ("do_unreachable", "unreachable"),
    ("do_oob", "out of bounds memory access"),
    ("do_div", "integer divide by zero"),
    ("do_overflow", "integer overflow"),
    ("do_conversion", "invalid conversion to integer"),
    ("do_indirect", "indirect call type mismatch"),
    ("do_null", "indirect call type mismatch or null"),
    ("recurse", "call stack exhausted"),
]


def trap_module(build_wat, fn):
    return build_wat(f"""
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1 2)
  (table 2 funcref)
  (elem (i32.const 0) $takes_i32)
  (type $void (func))
  (global $zero (mut i32) (i32.const 0))
  (func $takes_i32 (param i32))
  (func $do_unreachable unreachable)
  (func $do_oob (drop (i32.load (i32.const 65535))))
  (func $do_div (drop (i32.div_s (i32.const 1) (global.get $zero))))
  (func $do_overflow (drop (i32.div_s (i32.const 0x80000000) (i32.sub (global.get $zero) (i32.const 1)))))
  (func $do_conversion (drop (i32.trunc_f32_s (f32.div (f32.const 0) (f32.convert_i32_s (global.get $zero))))))
  (func $do_indirect (call_indirect (type $void) (global.get $zero)))
  (func $do_null (call_indirect (type $void) (i32.add (global.get $zero) (i32.const 1))))
  ;; two recursive calls: no compiler can turn this into a loop
  (func $recurse (param i64) (result i64)
    (i64.add (call $recurse (i64.add (local.get 0) (i64.const 1)))
             (call $recurse (i64.add (local.get 0) (i64.const 2)))))
  (func $do_recurse (drop (call $recurse (i64.const 0))))
  (func (export "_start") (call ${'do_recurse' if fn == 'recurse' else fn}))
)""", name=fn)


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("fn,kind", CASES)
def test_trap_kind_and_function(wisp, build_wat, tier, fn, kind):
    r = wisp("run", "--tier", tier, trap_module(build_wat, fn))
    assert r.code == 134, r
    assert f"wisp: trap: {kind}" in r.err, r
    assert f" in {fn}" in r.err, r


@pytest.mark.parametrize("tier", TIERS)
def test_memory_grow_past_maximum_fails_without_trap(wisp, build_wat, tier):
    m = build_wat("""
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1 2)
  (func (export "_start")
    (if (i32.ne (memory.grow (i32.const 5)) (i32.const -1)) (then unreachable))
    (if (i32.ne (memory.grow (i32.const 1)) (i32.const 1)) (then unreachable))
    (i32.store (i32.const 131068) (i32.const 7))
    (call $proc_exit (i32.load (i32.const 131068)))))""", name="grow")
    r = wisp("run", "--tier", tier, m)
    assert r.code == 7, r


def test_trap_in_start_section_reports_instantiation(wisp, build_wat):
    m = build_wat("""
(module
  (memory (export "memory") 1)
  (func $init unreachable)
  (start $init)
  (func (export "_start")))""", name="startsec")
    r = wisp("run", m)
    assert r.code == 134, r
    assert "wisp: trap: unreachable in <instantiation>" in r.err, r


def test_c_guest_trap_names_the_c_function(wisp, build_c):
    m = build_c(r"""
#include <stdio.h>
__attribute__((noinline)) void explode(volatile int *p) {
    __builtin_trap();
}
int main(void) {
    printf("before\n");
    fflush(stdout);
    explode(0);
    printf("after\n");
    return 0;
}
""", "-O0", name="ctrap")
    r = wisp("run", "--tier", "fast", m)
    assert r.code == 134, r
    assert r.out == "before\n"
    assert "wisp: trap: unreachable in explode" in r.err, r


@pytest.mark.parametrize("tier", TIERS)
def test_deep_recursion_in_c_traps_cleanly(wisp, build_c, tier):
    m = build_c(r"""
#include <stdio.h>
#include <stdlib.h>
int depth(int n);
/* Called through a volatile pointer so the compiler cannot turn the
 * recursion into a loop; no locals in linear memory, so it is the native
 * stack that runs out, not the guest's shadow stack. */
static int (*volatile next)(int) = depth;
int depth(int n) {
    return next(n + 1) + n;
}
int main(int argc, char **argv) {
    printf("%d\n", depth(0));
    return 0;
}
""", name="crecurse")
    r = wisp("run", "--tier", tier, m)
    assert r.code == 134, r
    assert "call stack exhausted" in r.err, r


SHADOW = """
(module
  (memory (export "memory") 1)
  {globals}
  ;; a C-like frame: take 512 bytes off the stack pointer, store into them
  (func $deep (param i32)
    (global.set 0 (i32.sub (global.get 0) (i32.const 512)))
    (i32.store (global.get 0) (local.get 0))
    (if (local.get 0) (then (call $deep (i32.sub (local.get 0) (i32.const 1)))))
    (global.set 0 (i32.add (global.get 0) (i32.const 512))))
  (func (export "_start") (call $deep (i32.const 1000))))"""


@pytest.mark.parametrize("globals,named", [
    ('(global $__stack_pointer (mut i32) (i32.const 8192))', True),
    # no names: global 0, a mutable i32 starting at an aligned address
    ('(global (mut i32) (i32.const 8192))', True),
    # exported: read through wasm2c's accessor
    ('(global $__stack_pointer (export "sp") (mut i32) (i32.const 8192))', True),
    # unnamed, but an exported global is called g0 as well: compiles, no claim
    ('(global (mut i32) (i32.const 8192)) (global (export "g0") i32 (i32.const 1))', False),
    # named otherwise: no claim
    ('(global $counter (mut i32) (i32.const 8192))', False),
])
@pytest.mark.parametrize("tier", TIERS)
def test_shadow_stack_overflow_is_named(wisp, build_wat, tier, globals, named):
    m = build_wat(SHADOW.format(globals=globals), name="shadow")
    r = wisp("run", "--tier", tier, m)
    assert r.code == 134, r
    if named:
        assert "wisp: trap: call stack exhausted in deep: shadow stack full " \
               "(__stack_pointer -" in r.err, r
    else:
        assert "wisp: trap: out of bounds memory access in deep\n" in r.err, r
