"""The compile step is bounded (src/compile/limits.c, util_run's supervisor).

A module over a limit is refused with a message naming the limit and the
flag that raises it; data segments reach neither wasm2c nor the C compiler
as text (a 16 MiB segment took gcc 21.6 s and 2.6 GB); and no compiler
process outlives a wisp that is killed mid-compile.
"""
import fcntl
import os
import signal
import subprocess
import time

import pytest

from conftest import WISP

HEADER = b"\0asm\1\0\0\0"


def leb(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def sleb(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        done = (n == 0 and not b & 0x40) or (n == -1 and b & 0x40)
        out.append(b | (0 if done else 0x80))
        if done:
            return bytes(out)


def name(s):
    return leb(len(s)) + s.encode()


def vec(items):
    return leb(len(items)) + b"".join(items)


def section(sid, content):
    return bytes([sid]) + leb(len(content)) + content


PROC_EXIT = section(2, vec([name("wasi_snapshot_preview1") + name("proc_exit") + b"\x00\x01"]))
TYPES = section(1, vec([b"\x60\x00\x00", b"\x60\x01\x7f\x00"]))   # () -> (), (i32) -> ()


def module(nfuncs=1, data=b"", body=b"\x0b", memory_pages=1):
    """_start (function 1: 0 is the proc_exit import) runs `body`; functions
    beyond the first are empty. `data` is the data section's segments."""
    funcs = section(3, vec([b"\x00"] * nfuncs))
    mem = section(5, vec([b"\x00" + leb(memory_pages)]))
    exports = section(7, vec([name("_start") + b"\x00\x01", name("memory") + b"\x02\x00"]))
    code = section(10, vec([leb(len(b"\x00" + body)) + b"\x00" + body]
                           + [b"\x02\x00\x0b"] * (nfuncs - 1)))
    datasec = section(11, data) if data else b""
    return HEADER + TYPES + PROC_EXIT + funcs + mem + exports + code + datasec


def active(offset, payload):
    return b"\x00\x41" + sleb(offset) + b"\x0b" + leb(len(payload)) + payload


def exit_if_byte_differs(addr, value, code):
    # (if (i32.ne (i32.load8_u addr) value) (then (call $proc_exit code)))
    return (b"\x41" + sleb(addr) + b"\x2d\x00\x00" + b"\x41" + sleb(value) + b"\x47"
            + b"\x04\x40" + b"\x41" + sleb(code) + b"\x10\x00" + b"\x0b")


def write(tmp_path, nm, data):
    p = tmp_path / nm
    p.write_bytes(data)
    return p


# ---- limits on the module ------------------------------------------------------

def test_module_over_the_size_limit(wisp, tmp_path, cache_dir):
    m = write(tmp_path, "big.wasm", module(data=vec([active(0, bytes(4096))])))
    r = wisp("run", "--compile-max-module", "2K", m, cache=cache_dir)
    assert r.code == 1, r
    assert "over the compile limit of 2K (raise it with --compile-max-module)" in r.err, r
    r = wisp("run", "--compile-max-module", "8K", m, cache=cache_dir)
    assert r.code == 0, r


def test_module_over_the_function_limit(wisp, tmp_path, cache_dir):
    m = write(tmp_path, "many.wasm", module(nfuncs=30))
    r = wisp("run", "--compile-max-functions", "20", m, cache=cache_dir)
    assert r.code == 1, r
    assert ("the module has 31 functions, over the compile limit of 20 "
            "(raise it with --compile-max-functions)") in r.err, r
    r = wisp("run", "--compile-max-functions", "31", m, cache=cache_dir)
    assert r.code == 0, r


def test_module_over_the_data_limit(wisp, tmp_path, cache_dir):
    m = write(tmp_path, "data.wasm", module(data=vec([active(0, bytes(3000)),
                                                       active(4000, bytes(3000))])))
    r = wisp("compile", "--tier", "fast", "--compile-max-data", "4K", m, cache=cache_dir)
    assert r.code == 1, r
    assert ("data segments hold 6000 bytes, over the compile limit of 4K "
            "(raise it with --compile-max-data)") in r.err, r


def test_the_limits_apply_to_compiling_not_to_running_a_cached_module(wisp, tmp_path, cache_dir):
    m = write(tmp_path, "many.wasm", module(nfuncs=30))
    assert wisp("compile", "--tier", "fast", m, cache=cache_dir).code == 0
    r = wisp("run", "--tier", "fast", "--compile-max-functions", "5", m, cache=cache_dir)
    assert r.code == 0, r


# ---- limits on the compiler processes ---------------------------------------------

def slow_module(tmp_path, n=20000):
    # wasm2c is quadratic in the number of functions: ~9 s of CPU here.
    return write(tmp_path, f"slow{n}.wasm", module(nfuncs=n))


def test_compiler_over_the_cpu_limit(wisp, tmp_path, cache_dir):
    m = slow_module(tmp_path)
    r = wisp("run", "--tier", "fast", "--compile-max-cpu", "1", m, cache=cache_dir)
    assert r.code == 1, r
    assert "used more than its CPU time limit of 1 s (raise it with --compile-max-cpu)" in r.err, r


@pytest.mark.parametrize("tier,limit", [("fast", "4M"), ("opt", "24M")])
def test_compiler_over_the_memory_limit(wisp, build_c, cache_dir, tier, limit):
    # wasm2c reports running out of memory; cc1 cannot grow its stack and
    # crashes: both messages name the limit and the flag.
    m = build_c('#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n', name="memlimit")
    r = wisp("run", "--tier", tier, "--compile-max-memory", limit, m, cache=cache_dir)
    assert r.code == 1, r
    assert f"memory limit of {limit}" in r.err and "raise it with --compile-max-memory" in r.err, r
    r = wisp("run", "--tier", tier, m, cache=cache_dir)
    assert (r.code, r.out) == (0, "hi\n"), r


@pytest.mark.parametrize("flag,value", [("--compile-max-cpu", "x"), ("--compile-max-functions", "-1"),
                                        ("--compile-max-memory", "lots"), ("--compile-max-data", "")])
def test_bad_limit_values_are_usage_errors(wisp, tmp_path, flag, value):
    r = wisp("run", flag, value, tmp_path / "none.wasm")
    assert r.code == 2, r


def test_help_documents_the_limits(wisp):
    r = wisp("help")
    for flag in ("--compile-max-module", "--compile-max-functions", "--compile-max-data",
                 "--compile-max-cpu", "--compile-max-memory", "--allow-cache-dir"):
        assert flag in r.out, flag


# ---- data segments ---------------------------------------------------------------------

PATTERN = bytes((i * 7 + 3) & 0xFF for i in range(256))


@pytest.mark.parametrize("tier", ["fast", "opt"])
def test_large_data_segment_compiles_and_is_loaded(wisp, tmp_path, cache_dir, tier):
    size = 16 << 20
    payload = PATTERN * (size // 256)
    checks = b"".join(exit_if_byte_differs(a, payload[a - 1024], 10 + i)
                      for i, a in enumerate([1024, 1025, 1024 + 4096 * 777 + 13, 1024 + size - 1]))
    body = checks + b"\x41" + sleb(42) + b"\x10\x00\x0b"
    m = write(tmp_path, "bigdata.wasm", module(data=vec([active(1024, payload)]), body=body,
                                               memory_pages=260))
    r = wisp("run", "--tier", tier, m, cache=cache_dir, timeout=300)
    assert r.code == 42, r
    # The translation unit does not carry the data as text.
    r = wisp("compile", "--tier", tier, m, cache=cache_dir,
             env={"WISP_KEEP_BUILD": "1", "WISP_CACHE_DIR": str(cache_dir / "kept")})
    assert r.code == 0, r
    tu = next((cache_dir / "kept" / "tmp").glob("build-*/tu.c"))
    assert tu.stat().st_size < 1 << 20


SEGMENTS_WAT = """
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello")
  (data $p "passive!")
  (data (i32.const 100) "")
  (data (i32.const 200) "\\01\\02\\03")
  (func (export "_start")
    (if (i32.ne (i32.load8_u (i32.const 16)) (i32.const 104)) (then (call $exit (i32.const 1))))
    (if (i32.ne (i32.load8_u (i32.const 20)) (i32.const 111)) (then (call $exit (i32.const 2))))
    (if (i32.ne (i32.load8_u (i32.const 202)) (i32.const 3)) (then (call $exit (i32.const 3))))
    (memory.init $p (i32.const 300) (i32.const 2) (i32.const 4))
    (if (i32.ne (i32.load (i32.const 300)) (i32.const 0x76697373)) (then (call $exit (i32.const 4))))
    (memory.init $p (i32.const 400) (i32.const 0) (i32.const 8))
    (data.drop $p)
    (memory.init $p (i32.const 0) (i32.const 0) (i32.const 0))
    (call $exit (i32.const 42))))
"""


@pytest.mark.parametrize("tier", ["fast", "opt"])
def test_active_and_passive_segments_keep_their_meaning(wisp, build_wat, tier):
    r = wisp("run", "--tier", tier, build_wat(SEGMENTS_WAT, name="segments"))
    assert r.code == 42, r


@pytest.mark.parametrize("tier", ["fast", "opt"])
@pytest.mark.parametrize("wat,where", [
    ('(data (i32.const 65534) "abc") (func (export "_start"))', "<instantiation>"),
    ('(data $p "passive!") (func $init (memory.init $p (i32.const 0) (i32.const 0) (i32.const 9)))'
     ' (func (export "_start") (call $init))', "init"),
    ('(data $p "passive!") (func $init (data.drop $p) (memory.init $p (i32.const 0) (i32.const 0) (i32.const 1)))'
     ' (func (export "_start") (call $init))', "init"),
])
def test_segments_out_of_bounds_still_trap(wisp, build_wat, tier, wat, where):
    m = build_wat(f'(module (memory (export "memory") 1) {wat})', name="segoob")
    r = wisp("run", "--tier", tier, m)
    assert r.code == 134, r
    assert f"out of bounds memory access in {where}" in r.err, r


# ---- no compiler outlives wisp ---------------------------------------------------------------

def processes_mentioning(text):
    """(pid, comm) of every process whose command line contains text."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        if text in cmd:
            found.append((int(pid), comm))
    return found


def opt_heavy_module(tmp_path):
    # 200 functions of branches and arithmetic: quick for wasm2c, several
    # seconds for gcc -O2.
    def step(i):
        return (b"\x20\x00\x41" + sleb(i) + b"\x6c\x20\x00\x41\x03\x76\x73\x21\x00"
                + b"\x20\x00\x04\x40\x20\x00\x41" + sleb(i) + b"\x6a\x21\x00\x0b")
    fbody = b"\x01\x01\x7f" + b"".join(step(i) for i in range(500)) + b"\x0b"
    n = 200
    funcs = section(3, vec([b"\x00"] * (n + 1)))
    mem = section(5, vec([b"\x00\x01"]))
    exports = section(7, vec([name("_start") + b"\x00\x01", name("memory") + b"\x02\x00"]))
    code = section(10, vec([b"\x02\x00\x0b"] + [leb(len(fbody)) + fbody] * n))
    return write(tmp_path, "optheavy.wasm", HEADER + TYPES + PROC_EXIT + funcs + mem + exports + code)


@pytest.mark.parametrize("tier,tool", [("fast", "wasm2c"), ("opt", "cc1")])
def test_killing_wisp_mid_compile_leaves_no_compiler(tmp_path, cache_dir, tier, tool):
    # Both compiles take far longer than the grace period below, so a
    # compiler left running (as before the supervisor) is still there.
    m = slow_module(tmp_path, 30000) if tool == "wasm2c" else opt_heavy_module(tmp_path)
    env = dict(os.environ, WISP_CACHE_DIR=str(cache_dir), WISP_BACKGROUND_COMPILE="0")
    p = subprocess.Popen([str(WISP), "run", "--tier", tier, str(m)], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not any(c == tool for _, c in processes_mentioning(str(cache_dir))):
            assert p.poll() is None, "wisp ended before the compiler was seen"
            time.sleep(0.02)
        assert any(c == tool for _, c in processes_mentioning(str(cache_dir)))
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    # The supervisor kills the group at once; give the kernel time to reap.
    deadline = time.time() + 5
    while time.time() < deadline and processes_mentioning(str(cache_dir)):
        time.sleep(0.05)
    assert processes_mentioning(str(cache_dir)) == []


def test_background_builds_run_one_at_a_time(build_c, cache_dir):
    m = build_c('int main(void) { return 3; }\n', name="bgone")
    env = dict(os.environ, WISP_CACHE_DIR=str(cache_dir))
    (cache_dir / "tmp").mkdir(exist_ok=True)
    with open(cache_dir / "tmp" / "background.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        r = subprocess.run([str(WISP), "compile", "--background", str(m)], env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r
        assert list((cache_dir / "v2").glob("*.opt.so")) == []   # skipped
    r = subprocess.run([str(WISP), "compile", "--background", str(m)], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r
    assert len(list((cache_dir / "v2").glob("*.opt.so"))) == 1
