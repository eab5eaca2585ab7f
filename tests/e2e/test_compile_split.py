"""The optimizing tier cuts a large module's C into units compiled in
parallel and linked (src/compile/split.c, ccrun.c): the split build must
behave as the whole one -- the same output, data and tables reached from
every unit, traps named after their function through any unit -- and every
unit's compiler is bounded like the single one was.

WISP_COMPILE_UNITS=N forces N units (at most one per function) where a
module is too small to be split by its size.
"""
import subprocess

import pytest

from conftest import WISP
from test_compile_limits import opt_heavy_module, processes_mentioning
from test_traps import CASES, trap_module

NFUNCS = 300


def many_functions_source():
    """A C program of NFUNCS functions calling each other directly and
    through a table, reading a constant table (a data segment)."""
    lines = ["#include <stdio.h>", "#include <stdint.h>",
             "static const uint32_t T[256] = {"
             + ", ".join(str((i * 2654435761) & 0xFFFFFFFF) for i in range(256)) + "};",
             "typedef uint32_t (*fn)(uint32_t);",
             "__attribute__((noinline)) uint32_t f0(uint32_t x) { return x * 2654435761u + T[x & 255]; }"]
    for i in range(1, NFUNCS):
        lines.append(f"""__attribute__((noinline)) uint32_t f{i}(uint32_t x) {{
  uint32_t a = x;
  for (int k = 0; k < {i % 7 + 1}; k++) {{
    a = (a << {i % 13 + 1}) ^ (a >> 3) ^ T[(a + k) & 255];
    if (a & 1) a += {i}u;
  }}
  switch (a % 5) {{
  case 0: a ^= 0x55u; break;
  case 1: a += T[a & 127]; break;
  case 2: a *= 3u; break;
  default: a -= 7u;
  }}
  return f{i - 1}(a) + {i}u;
}}""")
    lines.append("static fn table[] = {" + ", ".join(f"f{i}" for i in range(NFUNCS)) + "};")
    lines.append("""int main(void) {
  uint64_t sum = 0;
  for (unsigned i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
    uint32_t r = table[i](i);
    sum += r;
    if (i % 50 == 0) printf("%u %u\\n", i, r);
  }
  printf("sum %llu\\n", (unsigned long long)sum);
  return 0;
}""")
    return "\n".join(lines) + "\n"


def kept_build(cache):
    [build] = (cache / "tmp").glob("build-*")
    return build


def test_a_split_build_runs_as_the_whole_module(wisp, build_c, tmp_path):
    m = build_c(many_functions_source(), name="manyfuncs")
    fast = wisp("run", "--tier", "fast", m)
    assert fast.code == 0 and fast.out.count("\n") == NFUNCS // 50 + 1, fast
    results = {}
    for units in ["1", "5", None]:
        cache = tmp_path / f"cache-{units}"
        env = {"WISP_KEEP_BUILD": "1"} | ({"WISP_COMPILE_UNITS": units} if units else {})
        r = wisp("run", "--tier", "opt", m, cache=cache, env=env)
        results[units] = r
        assert (r.code, r.out, r.err) == (0, fast.out, ""), (units, r)
        build = kept_build(cache)
        if units == "1":
            assert not (build / "unit0.c").exists()
        elif units == "5":
            assert (build / "unit4.c").exists() and not (build / "unit5.c").exists()
        else:
            # big enough to be split by its size alone
            assert (build / "unit1.c").exists(), sorted(p.name for p in build.iterdir())


SEGMENTS_AND_TABLES = """
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (table 4 funcref)
  (type $ret (func (result i32)))
  (data (i32.const 16) "hello")
  (data $p "passive!")
  (elem $e func $seven $nine)
  (elem (i32.const 0) $five)
  (global $g (mut i32) (i32.const 3))
  (func $five (result i32) (i32.const 5))
  (func $seven (result i32) (i32.const 7))
  (func $nine (result i32) (i32.const 9))
  (func $init_data
    (memory.init $p (i32.const 300) (i32.const 2) (i32.const 4))
    (data.drop $p))
  (func $init_elem (table.init $e (i32.const 1) (i32.const 0) (i32.const 2)))
  (func $call (param i32) (result i32) (call_indirect (type $ret) (local.get 0)))
  (func $check (param i32 i32 i32)
    (if (i32.ne (local.get 0) (local.get 1)) (then (call $exit (local.get 2)))))
  (func (export "_start")
    (call $check (i32.load8_u (i32.const 16)) (i32.const 104) (i32.const 1))
    (call $init_data)
    (call $check (i32.load (i32.const 300)) (i32.const 0x76697373) (i32.const 2))
    (call $init_elem)
    (call $check (call $call (i32.const 0)) (i32.const 5) (i32.const 3))
    (call $check (call $call (i32.const 1)) (i32.const 7) (i32.const 4))
    (call $check (call $call (i32.const 2)) (i32.const 9) (i32.const 5))
    (global.set $g (i32.add (global.get $g) (i32.const 39)))
    (call $exit (global.get $g))))
"""


@pytest.mark.parametrize("units", ["1", "4", "16"])
def test_segments_tables_and_globals_reach_every_unit(wisp, build_wat, tmp_path, units):
    m = build_wat(SEGMENTS_AND_TABLES, name="splitsegs")
    r = wisp("run", "--tier", "opt", m, cache=tmp_path / "cache",
             env={"WISP_COMPILE_UNITS": units})
    assert (r.code, r.err) == (42, ""), r


@pytest.mark.parametrize("fn,kind", CASES)
def test_traps_name_their_function_in_any_unit(wisp, build_wat, tmp_path, fn, kind):
    # 16 units for 13 functions: every function in a unit of its own.
    r = wisp("run", "--tier", "opt", trap_module(build_wat, fn), cache=tmp_path / "cache",
             env={"WISP_COMPILE_UNITS": "16"})
    assert r.code == 134, r
    assert f"wisp: trap: {kind}" in r.err, r
    assert f" in {fn}" in r.err, r


def test_a_trap_while_instantiating_is_not_blamed_on_a_function(wisp, build_wat, tmp_path):
    # The module's state and instantiation live in main.c, linked after
    # every unit: inside the module's code, but in no wasm function.
    m = build_wat('(module (memory (export "memory") 1) (data (i32.const 65534) "abc")'
                  ' (func $a) (func $b (call $a)) (func (export "_start") (call $b)))',
                  name="splitinit")
    r = wisp("run", "--tier", "opt", m, cache=tmp_path / "cache", env={"WISP_COMPILE_UNITS": "3"})
    assert r.code == 134, r
    assert "out of bounds memory access in <instantiation>" in r.err, r


def test_forced_units_are_another_cache_entry(wisp, build_c, cache_dir):
    m = build_c('int main(void) { return 7; }\n', name="splitkey")
    for units in ["1", "2", "1"]:
        r = wisp("compile", "--tier", "opt", m, cache=cache_dir,
                 env={"WISP_COMPILE_UNITS": units})
        assert r.code == 0, r
    assert len(list((cache_dir / "v2").glob("*.opt.so"))) == 2


# ---- every unit's compiler is bounded ----------------------------------------------

def test_unit_compilers_over_the_cpu_limit_fail_clearly(tmp_path, cache_dir):
    # Several seconds of gcc in two units: each passes a second of CPU.
    m = opt_heavy_module(tmp_path)
    r = subprocess.run([str(WISP), "run", "--tier", "opt", "--compile-max-cpu", "1", str(m)],
                       env={"WISP_CACHE_DIR": str(cache_dir), "WISP_BACKGROUND_COMPILE": "0",
                            "WISP_COMPILE_UNITS": "2", "PATH": "/usr/bin:/bin"},
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r
    assert ("the C compiler 'gcc' used more than its CPU time limit of 1 s "
            "(raise it with --compile-max-cpu)") in r.stderr, r
    # No unit's compiler is left running once wisp has answered.
    assert processes_mentioning(str(cache_dir)) == []
    assert list((cache_dir / "v2").glob("*.so")) == []


def test_a_failed_unit_stops_the_others(build_wat, tmp_path, cache_dir):
    # A compiler that refuses the first unit it is given and never ends on
    # the others: the build fails with that unit's message, without waiting.
    cc = tmp_path / "fakecc"
    cc.write_text(f'#!/bin/sh\nif mkdir {tmp_path}/first 2>/dev/null; then\n'
                  '  echo "fakecc: unit refused" >&2; exit 1\nfi\n'
                  'while :; do sleep 1; done\n')
    cc.chmod(0o755)
    m = build_wat(SEGMENTS_AND_TABLES, name="splitsegs")
    r = subprocess.run([str(WISP), "compile", "--tier", "opt", str(m)],
                       env={"WISP_CACHE_DIR": str(cache_dir), "WISP_CC": str(cc),
                            "WISP_COMPILE_UNITS": "4", "PATH": "/usr/bin:/bin"},
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r
    assert f"the C compiler '{cc}' failed (status 1) on generated code:\nfakecc: unit refused" \
        in r.stderr, r
    assert processes_mentioning(str(cache_dir)) == []


def test_unit_compilers_over_the_memory_limit_fail_clearly(wisp, build_c, cache_dir):
    m = build_c('#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n',
                name="splitmem")
    env = {"WISP_COMPILE_UNITS": "3"}
    r = wisp("run", "--tier", "opt", "--compile-max-memory", "24M", m, cache=cache_dir, env=env)
    assert r.code == 1, r
    assert "memory limit of 24M" in r.err and "raise it with --compile-max-memory" in r.err, r
    r = wisp("run", "--tier", "opt", m, cache=cache_dir, env=env)
    assert (r.code, r.out) == (0, "hi\n"), r
