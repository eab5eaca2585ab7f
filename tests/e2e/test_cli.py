"""The wisp command: usage, bad input, exit status, tiers and the compile cache."""
import os
import subprocess
import threading
from pathlib import Path

import pytest

from conftest import WISP

HELLO_C = r"""
#include <stdio.h>
int main(int argc, char **argv) {
    printf("hello");
    for (int i = 1; i < argc; i++) printf(" %s", argv[i]);
    printf("\n");
    return argc - 1;
}
"""

EXIT_WAT = """
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const {code}))))
"""


def test_version(wisp):
    r = wisp("--version")
    assert r.code == 0
    assert r.out.startswith("wisp 0.")


def test_help_lists_commands_and_says_default_deny(wisp):
    r = wisp("help")
    assert r.code == 0
    for word in ("run", "compile", "--dir", "--dir-ro", "--env", "--tier", "no network"):
        assert word in r.out


@pytest.mark.parametrize("args,needle", [
    ([], "usage: wisp"),
    (["frobnicate"], "unknown command 'frobnicate'"),
    (["run"], "missing module.wasm"),
    (["run", "--tier", "turbo", "x.wasm"], "--tier takes 'fast' or 'opt'"),
    (["run", "--env", "NOEQUALS", "x.wasm"], "bad --env 'NOEQUALS'"),
    (["run", "--bogus", "x.wasm"], "unknown option '--bogus'"),
    (["run", "--dir"], "--dir needs a directory"),
    (["run", "--schedulers", "0", "x.wasm"], "bad number '0'"),
    (["run", "--reductions", "lots", "x.wasm"], "bad number 'lots'"),
    (["run", "--max-cpu", "-5", "x.wasm"], "bad number '-5'"),
    (["run", "--max-processes", "many", "x.wasm"], "bad number 'many'"),
])
def test_usage_errors(wisp, args, needle):
    r = wisp(*args)
    assert r.code == 2, r
    assert needle in r.err, r


def test_args_and_exit_status(wisp, build_c):
    m = build_c(HELLO_C, name="hello")
    r = wisp("run", m, "a", "b c")
    assert r.out == "hello a b c\n"
    assert r.code == 2


@pytest.mark.parametrize("code", [0, 1, 42, 255])
def test_proc_exit_code_is_the_exit_status(wisp, build_wat, code):
    r = wisp("run", build_wat(EXIT_WAT.format(code=code), name=f"exit{code}"))
    assert r.code == code, r
    assert r.err == ""


def test_missing_file(wisp, tmp_path):
    r = wisp("run", tmp_path / "nope.wasm")
    assert r.code == 1
    assert "cannot read" in r.err and "nope.wasm" in r.err and "No such file" in r.err


def test_directory_instead_of_module(wisp, tmp_path):
    r = wisp("run", tmp_path)
    assert r.code == 1
    assert "Is a directory" in r.err


def test_not_a_wasm_file(wisp, tmp_path):
    f = tmp_path / "script.sh"
    f.write_text("#!/bin/sh\necho hi\n")
    r = wisp("run", f)
    assert r.code == 1
    assert "not a WebAssembly module" in r.err, r


def test_empty_file(wisp, tmp_path):
    f = tmp_path / "empty.wasm"
    f.write_bytes(b"")
    r = wisp("run", f)
    assert r.code == 1
    assert "empty.wasm" in r.err and ("truncated" in r.err or "not a WebAssembly" in r.err), r


def test_truncated_module(wisp, build_c, tmp_path):
    data = build_c(HELLO_C, name="hello").read_bytes()
    for cut in (9, 100, len(data) // 2, len(data) - 1):
        f = tmp_path / f"cut{cut}.wasm"
        f.write_bytes(data[:cut])
        r = wisp("run", f)
        assert r.code == 1, (cut, r)
        assert "truncated" in r.err or "malformed" in r.err or "invalid" in r.err, (cut, r)
        assert "Traceback" not in r.err and "Segmentation" not in r.err


def test_invalid_function_body_is_rejected_by_validation(wisp, tmp_path):
    # A structurally fine module whose body pops from an empty stack.
    body = bytes([0x00, 0x6a, 0x0b])  # no locals; i32.add; end
    module = (b"\0asm\1\0\0\0"
              + bytes([1, 4, 1, 0x60, 0, 0])                    # type: () -> ()
              + bytes([3, 2, 1, 0])                             # one function
              + bytes([7, 10, 1, 6]) + b"_start" + bytes([0, 0])  # export _start
              + bytes([10, 2 + len(body), 1, len(body)]) + body)
    f = tmp_path / "badbody.wasm"
    f.write_bytes(module)
    r = wisp("run", f)
    assert r.code == 1, r
    assert "invalid module" in r.err, r


def test_unknown_import_is_named(wisp, build_wat):
    m = build_wat("""
(module
  (import "env" "launch_missiles" (func (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")))""", name="badimport")
    r = wisp("run", m)
    assert r.code == 1
    assert '"env"."launch_missiles"' in r.err, r
    assert "does not provide" in r.err


def test_wrong_import_signature_is_named(wisp, build_wat):
    m = build_wat("""
(module
  (import "wasi_snapshot_preview1" "fd_write" (func (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")))""", name="badsig")
    r = wisp("run", m)
    assert r.code == 1
    assert '"wasi_snapshot_preview1"."fd_write"' in r.err, r


def test_imported_memory_is_refused(wisp, build_wat):
    m = build_wat("""
(module
  (import "env" "memory" (memory 1))
  (func (export "_start")))""", name="impmem")
    r = wisp("run", m)
    assert r.code == 1
    assert "memory" in r.err and "env" in r.err, r


def test_no_start_export(wisp, build_wat):
    m = build_wat("""
(module
  (memory (export "memory") 1)
  (func (export "main")))""", name="nostart")
    r = wisp("run", m)
    assert r.code == 1
    assert "no _start" in r.err, r


def test_start_returning_exits_zero(wisp, build_wat):
    m = build_wat('(module (memory (export "memory") 1) (func (export "_start")))', name="ret")
    r = wisp("run", m)
    assert r.code == 0 and r.out == "" and r.err == ""


@pytest.mark.parametrize("tier", ["fast", "opt"])
def test_both_tiers_give_the_same_output(wisp, build_c, tier):
    m = build_c(HELLO_C, name="hello")
    r = wisp("run", "--tier", tier, m, "x")
    assert (r.code, r.out) == (1, "hello x\n"), r


def test_compile_fills_the_cache_and_run_uses_it(wisp, build_c, cache_dir):
    m = build_c(HELLO_C, name="hello")
    keep = {"WISP_KEEP_BUILD": "1"}   # build directories stay: one per compile
    r = wisp("compile", m, cache=cache_dir, env=keep)
    assert r.code == 0, r
    assert len(list((cache_dir / "v2").glob("*.opt.so"))) == 1
    assert len(list((cache_dir / "tmp").iterdir())) == 1
    # The run picks the cached optimized build and compiles nothing.
    r = wisp("run", m, "cached", cache=cache_dir, env=keep)
    assert (r.code, r.out) == (1, "hello cached\n"), r
    assert len(list((cache_dir / "tmp").iterdir())) == 1
    assert list((cache_dir / "v2").glob("*.fast.so")) == []


def test_build_directories_are_removed(wisp, build_c, cache_dir):
    m = build_c(HELLO_C, name="hello")
    r = wisp("run", "--tier", "fast", m, cache=cache_dir)
    assert r.code == 0, r
    assert list((cache_dir / "tmp").iterdir()) == []


def test_missing_compiler_is_a_clear_error(wisp, build_c, cache_dir):
    m = build_c(HELLO_C, name="hello")
    r = wisp("run", "--tier", "fast", m, cache=cache_dir,
             env={"WISP_FAST_CC": "/nonexistent/tcc"})
    assert r.code == 1
    assert "cannot run the C compiler '/nonexistent/tcc'" in r.err, r


def test_unwritable_cache_falls_back_with_a_warning(wisp, build_c, tmp_path):
    m = build_c(HELLO_C, name="hello")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    r = wisp("run", m, cache=blocker / "cache")
    assert (r.code, r.out) == (0, "hello\n"), r
    assert "warning: cache directory" in r.err and "not usable" in r.err, r


def test_concurrent_runs_of_a_new_module_all_work(build_c, cache_dir):
    m = build_c(HELLO_C.replace("hello", "concurrent"), name="conc")
    env = dict(os.environ, WISP_CACHE_DIR=str(cache_dir), WISP_BACKGROUND_COMPILE="0")
    results = [None] * 4

    def one(i, tier):
        results[i] = subprocess.run([str(WISP), "run", "--tier", tier, str(m), str(i)],
                                    env=env, capture_output=True, text=True, timeout=300)

    threads = [threading.Thread(target=one, args=(i, "opt" if i % 2 else "fast")) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, r in enumerate(results):
        assert (r.returncode, r.stdout) == (1, f"concurrent {i}\n"), r
    assert len(list((cache_dir / "v2").glob("*.so"))) == 2


def test_background_compile_produces_the_opt_tier(wisp, build_c, cache_dir):
    import time
    m = build_c(HELLO_C.replace("hello", "background"), name="bg")
    r = wisp("run", m, cache=cache_dir, env={"WISP_BACKGROUND_COMPILE": "1"})
    assert (r.code, r.out) == (0, "background\n"), r
    deadline = time.time() + 120
    while time.time() < deadline and not list((cache_dir / "v2").glob("*.opt.so")):
        time.sleep(0.2)
    assert list((cache_dir / "v2").glob("*.opt.so")), "background opt build did not appear"


def test_export_name_cannot_inject_c_code(wisp, build_wat):
    # wasm2c copies export names into C comments: a name that closes the
    # comment must be refused, not compiled into the host (review finding).
    evil = ('x */\\n__attribute__((constructor)) static void pwn(void)'
            '{ extern int puts(const char*); puts(\\"INJECTED\\"); }\\n/*')
    m = build_wat(f'(module (func (export "{evil}")) (func (export "_start")) (memory (export "memory") 1))',
                  name="inject")
    for tier in ("fast", "opt"):
        r = wisp("run", "--tier", tier, m)
        assert r.code == 1, r
        assert "INJECTED" not in r.out
        assert "export name at index 0" in r.err, r
