"""The proposals real toolchains emit (issue 19, part 4), through the real
binary with guests built by clang (and Rust's cargo when it is set up).

wasm2c 1.0.32, which wisp translates with, decides what runs:
- exception handling's legacy encoding (clang -mexception-handling, the
  encoding -fwasm-exceptions emits) runs in both tiers: throws caught in
  the same function and across calls, a loop inside a try that is still
  preemptible, an uncaught throw that traps naming its function;
- SIMD (clang -msimd128, Rust +simd128) and tail calls (clang -mtail-call)
  are refused before any compiler runs, in one line naming the proposal,
  the function and the instruction, and saying how to build without them
  (wasm2c 1.0.32 aborts on any v128 and refuses tail calls itself);
- exception handling's 2023 encoding (try_table, throw_ref, exnref) is
  refused the same way (tests/e2e/test_bad_modules.py builds those bytes).
"""
import os
import subprocess

import pytest

from conftest import GUESTS, ROOT, have_rust

TIERS = ["fast", "opt"]

EH_SPIN = GUESTS / "c" / "eh_spin.s"


@pytest.fixture(scope="module")
def proc_eh(build_proc):
    return build_proc("proc_eh.c", "-mexception-handling", str(EH_SPIN))


@pytest.fixture(scope="module")
def proc_eh_named(build_proc):
    # -O0: clang runs no wasm-opt, so the name section stays
    return build_proc("proc_eh.c", "-mexception-handling", "-O0", str(EH_SPIN))


# ---- exception handling, legacy encoding ----

@pytest.mark.parametrize("tier", TIERS)
def test_exception_thrown_and_caught(wisp, proc_eh, tier):
    r = wisp("run", "--tier", tier, proc_eh, "catch")
    assert (r.code, r.out, r.err) == (0, "caught: 1000\n", ""), r


@pytest.mark.parametrize("tier", TIERS)
def test_loop_inside_a_try_is_preemptible(wisp, proc_eh, tier):
    # Two processes spin forever inside a try on one scheduler; an echo
    # server must still answer: the reduction point of the loop works there.
    r = wisp("run", "--tier", tier, "--schedulers", "1", proc_eh, "spin", "2", timeout=60)
    assert r.out == "replies: 100/100\nspinners alive: 2/2\n", r
    assert (r.code, r.err) == (0, ""), r


@pytest.mark.parametrize("tier", TIERS)
def test_uncaught_exception_traps_naming_its_function(wisp, proc_eh_named, tier):
    r = wisp("run", "--tier", tier, proc_eh_named, "throw")
    assert r.code == 134, r
    assert r.out == "throwing\n", r
    assert "wisp: trap: uncaught exception in eh_throw" in r.err, r


EH_WAT = """
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (tag $one (param i32))
  (tag $mixed (param i64 i32 f64))
  (tag $pair (param i32 i32))
  (func $thrower (param i32) (result i32)
    (if (i32.gt_u (local.get 0) (i32.const 3)) (then (throw $one (local.get 0))))
    (local.get 0))
  ;; locals changed in a try before a throw keep their values in its catch
  (func $sum (result i32) (local $i i32) (local $acc i32) (local $t i32)
    (loop $l
      (try
        (do
          (local.set $acc (i32.add (local.get $acc) (i32.const 1000)))
          (local.set $acc (i32.add (local.get $acc) (call $thrower (local.get $i)))))
        (catch $one
          (local.set $t)
          (local.set $acc (i32.add (local.get $acc) (i32.mul (local.get $t) (i32.const 100))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 6))))
    (local.get $acc))
  ;; a tag of mixed types: every value arrives whole (wasm2c 1.0.32 cut the
  ;; i64 to 32 bits before codegen.c's rewrite_tag_struct)
  (func $mixed (result i32) (local $f f64) (local $i i32)
    (try (result i32)
      (do (throw $mixed (i64.const 0x1234567800000009) (i32.const 3) (f64.const 2.5)))
      (catch $mixed
        (local.set $f) (local.set $i)
        (i32.and (i64.eq (i64.const 0x1234567800000009))
                 (i32.and (i32.eq (local.get $i) (i32.const 3))
                          (f64.eq (local.get $f) (f64.const 2.5)))))))
  ;; rethrow from an inner catch, caught by the outer try
  (func $rethrow (result i32) (local $t i32)
    (try (result i32)
      (do (try (result i32)
            (do (throw $pair (i32.const 7) (i32.const 5)))
            (catch $pair (drop) (drop) (rethrow 0))))
      (catch $pair (local.set $t) (drop) (local.get $t))
      (catch_all (i32.const -1))))
  ;; delegate hands the exception to the outer try
  (func $delegate (result i32)
    (try (result i32)
      (do (try (result i32) (do (throw $one (i32.const 11))) (delegate 0)))
      (catch $one)))
  ;; br and return out of a try leave no stale handler behind
  (func $leave (param i32) (result i32)
    (block $out (result i32)
      (try (result i32)
        (do (br_if $out (i32.const 5) (local.get 0)) (return (i32.const 9)))
        (catch_all (i32.const 0)))))
  (func (export "_start")
    (if (i32.ne (call $sum) (i32.const 6906)) (then (call $exit (i32.const 1))))
    (if (i32.ne (call $mixed) (i32.const 1)) (then (call $exit (i32.const 2))))
    (if (i32.ne (call $rethrow) (i32.const 5)) (then (call $exit (i32.const 3))))
    (if (i32.ne (call $delegate) (i32.const 11)) (then (call $exit (i32.const 4))))
    (if (i32.ne (call $leave (i32.const 1)) (i32.const 5)) (then (call $exit (i32.const 5))))
    (if (i32.ne (call $leave (i32.const 0)) (i32.const 9)) (then (call $exit (i32.const 6))))
    ;; a throw after both: no try is active any more, so it traps
    (drop (call $thrower (i32.const 4)))
    (call $exit (i32.const 7))))
"""


@pytest.mark.parametrize("tier", TIERS)
def test_exception_handling_instructions(wisp, build_wat, tier):
    m = build_wat(EH_WAT, "eh", "--enable-exceptions")
    r = wisp("run", "--tier", tier, m)
    assert r.code == 134, r
    assert "wisp: trap: uncaught exception in thrower" in r.err, r


# ---- refused: SIMD and tail calls, from real toolchains ----

SIMD_AUTO = r"""
#include <stdio.h>
#include <stdlib.h>
#define N 1024
static float a[N], b[N];
int main(int argc, char **argv)
{
	int k = argc > 1 ? atoi(argv[1]) : 3;
	for (int i = 0; i < N; i++) {
		a[i] = (float)(i % 17) * 0.5f;
		b[i] = (float)((i * k) % 13) - 3.0f;
	}
	float s = 0;
	for (int i = 0; i < N; i++)
		s += a[i] * b[i];
	printf("%.1f\n", s);
	return 0;
}
"""

SIMD_INTRINSICS = r"""
#include <stdio.h>
#include <stdlib.h>
#include <wasm_simd128.h>
int main(int argc, char **argv)
{
	float a[8], b[8];
	for (int i = 0; i < 8; i++) {
		a[i] = (float)(i + argc);
		b[i] = (float)(8 - i);
	}
	v128_t s = wasm_f32x4_splat(0);
	for (int i = 0; i < 8; i += 4)
		s = wasm_f32x4_add(s, wasm_f32x4_mul(wasm_v128_load(a + i), wasm_v128_load(b + i)));
	printf("%g\n", wasm_f32x4_extract_lane(s, 0) + wasm_f32x4_extract_lane(s, 3));
	return 0;
}
"""

TAIL_CALLS = r"""
#include <stdio.h>
#include <stdlib.h>
#ifdef __wasm_tail_call__
#define TAIL __attribute__((musttail))
#else
#define TAIL
#endif
__attribute__((noinline)) int is_odd(unsigned n);
__attribute__((noinline)) int is_even(unsigned n)
{
	if (n == 0)
		return 1;
	TAIL return is_odd(n - 1);
}
__attribute__((noinline)) int is_odd(unsigned n)
{
	if (n == 0)
		return 0;
	TAIL return is_even(n - 1);
}
int main(int argc, char **argv)
{
	printf("%d\n", is_even(argc > 1 ? (unsigned)atoi(argv[1]) : 1000001));
	return 0;
}
"""

SIMD_REFUSAL = "SIMD (v128) is not supported yet: function "
SIMD_HINT = "; build without -msimd128 (clang) or +simd128 (Rust)"


def assert_refused(r, path, start, hint):
    assert r.code == 1, r
    assert r.out == "", r
    assert len(r.err.splitlines()) == 1, r
    assert r.err.startswith(f"wisp: {path}: {start}"), r
    assert r.err.rstrip().endswith(hint), r


@pytest.mark.parametrize("cmd", ["run", "compile"])
@pytest.mark.parametrize("src,name", [(SIMD_AUTO, "simd_auto"), (SIMD_INTRINSICS, "simd_intrinsics")])
def test_simd_from_clang_is_refused_in_one_line(wisp, build_c, cache_dir, cmd, src, name):
    m = build_c(src, "-msimd128", name=name)
    r = wisp(cmd, m, cache=cache_dir)
    assert_refused(r, m, SIMD_REFUSAL, SIMD_HINT)
    # refused before any compiler ran: nothing was cached for it
    assert list(cache_dir.glob("v2/*.so")) == [], r


def test_the_scalar_build_of_the_same_program_runs(wisp, build_c):
    m = build_c(SIMD_AUTO, name="simd_auto")
    r = wisp("run", "--tier", "fast", m)
    assert (r.code, r.err) == (0, ""), r
    # sum((i % 17) * 0.5 * ((i * 3) % 13 - 3) for i in range(1024)): exact in floats
    assert r.out == "12142.0\n", r


def test_tail_calls_from_clang_are_refused_in_one_line(wisp, build_c):
    m = build_c(TAIL_CALLS, "-mtail-call", name="tail_calls")
    r = wisp("run", m)
    assert_refused(r, m, "tail calls are not supported: function ",
                   "; build without -mtail-call (clang) or +tail-call (Rust)")
    assert "uses instruction 0x12 (return_call) at byte" in r.err, r
    # the same program without -mtail-call runs
    r = wisp("run", "--tier", "fast", build_c(TAIL_CALLS, name="tail_calls"), "10")
    assert (r.code, r.out, r.err) == (0, "1\n", ""), r


RUST_DOT = """
fn main() {
    let k: usize = std::env::args().count() + 2;
    let a: Vec<f32> = (0..4096).map(|i| (i % 17) as f32 * 0.5).collect();
    let b: Vec<f32> = (0..4096).map(|i| ((i * k) % 13) as f32 - 3.0).collect();
    let mut acc = vec![0i32; 4096];
    for i in 0..4096 {
        acc[i] = (a[i] * b[i]) as i32 + i as i32;
    }
    let s: i64 = acc.iter().map(|&x| x as i64).sum();
    println!("sum={}", s);
}
"""


@pytest.mark.skipif(not have_rust(), reason="no cargo for wasm32-wasip1")
def test_simd_from_rust_is_refused_in_one_line(wisp, tmp_path):
    crate = tmp_path / "simd_dot"
    (crate / "src").mkdir(parents=True)
    (crate / "Cargo.toml").write_text('[package]\nname = "simd_dot"\nversion = "0.1.0"\n'
                                      'edition = "2021"\n\n[profile.release]\nopt-level = 3\n')
    (crate / "src" / "main.rs").write_text(RUST_DOT)
    built = {}
    for label, flags in (("simd", "-C target-feature=+simd128"), ("scalar", "")):
        env = {"CARGO_TARGET_DIR": str(tmp_path / f"target-{label}"), "RUSTFLAGS": flags}
        subprocess.run([str(ROOT / "scripts" / "cargo-wasm"), "build", "--release", "--quiet"],
                       cwd=crate, env={**os.environ, **env}, check=True,
                       capture_output=True, text=True)
        built[label] = tmp_path / f"target-{label}" / "wasm32-wasip1" / "release" / "simd_dot.wasm"
    r = wisp("run", built["simd"])
    assert_refused(r, built["simd"], SIMD_REFUSAL, SIMD_HINT)
    assert "(simd_dot::main)" in r.err, r          # the Rust name, demangled
    r = wisp("run", "--tier", "fast", built["scalar"])
    assert (r.code, r.err) == (0, ""), r
    assert r.out.startswith("sum="), r
