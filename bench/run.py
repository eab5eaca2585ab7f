#!/usr/bin/env python3
"""wisp's benchmarks: CPU kernels against native code, and start-up time.

    python3 bench/run.py [--runs N] [--quick] [--kernels fib,sha256] [--no-baseline]

What it measures, and how:

1. Code speed. Every kernel in bench/kernels/*.c is built three ways from one
   source: natively (gcc -O2), as wasm32-wasi (clang -O2, wasi-libc) run by
   `wisp run --tier opt`, and -- the "wasm2c" column -- the same wasm through
   stock wasm2c and gcc -O2 with wabt's reference runtime and a minimal WASI
   host (bench/baseline/wasi_min.c): explicit bounds checks like wisp, but no
   reduction hook, fibers or scheduler. wasm2c/native is the price of wasm
   itself; wisp/wasm2c is wisp's own. A fourth column runs the same .wasm
   under wasmtime (the PyPI package's engine, Cranelift, through
   scripts/wasmtime_run.py in the interpreter it is installed in), a peer JIT:
   wisp/wasmtime is wisp against another runtime on the same code. Each
   kernel times its workload with
   CLOCK_MONOTONIC and prints it (bench/kernels/bench.h), so the ratio compares
   code speed; whole-process wall times, which include wisp's start-up
   (dlopen, instantiation), are shown beside them. Best (min) of N runs after a
   warm-up run; for wisp the warm-up fills a private compile cache, so timed
   runs load the cached opt-tier object. Checksums must agree across builds.

2. Start-up, on tests/guests/rust/bigstart (a ~100 KB Rust module built with
   scripts/cargo-wasm): `wisp run --tier fast` with a fresh empty cache each
   time (cold: validate, wasm2c, tcc, dlopen, run), the same with the cache
   filled (warm), and `wisp compile --tier opt` (the optimising tier's build).
   Medians.

Exit status: 0 when everything ran, even if targets are missed (this is a
measurement); 1 on a build failure, a crash, or a checksum mismatch; 2 on bad
usage or missing tools.
"""
import argparse
import concurrent.futures
import math
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from harness import (CLANG, ROOT, WASI_SYSROOT, BenchError, check, machine_note, run, table,
                     tail, wisp_env)

BENCH = ROOT / "bench"
KERNELS = BENCH / "kernels"
BASELINE_HOST = BENCH / "baseline" / "wasi_min.c"
WASMTIME_RUN = ROOT / "scripts" / "wasmtime_run.py"
# Where scripts/setup.sh installs the wasmtime package (as the WASI
# differential test looks for it); WISP_WASMTIME_PYTHON names an interpreter.
WASMTIME_VENV = Path(os.environ.get("WISP_WASMTIME_VENV", "/var/cache/wisp/wasmtime-venv"))
WABT_RT = Path(os.environ.get("WISP_WABT_RT", "/usr/share/wabt/wasm2c"))
# wasm-rt.h configuration shared with wisp's own build (see the Makefile).
RTDEFS = ["-DWASM_RT_MEMCHECK_SIGNAL_HANDLER=0", "-DWASM_RT_USE_STACK_DEPTH_COUNT=0"]

TARGET_RATIO = 1.25          # wisp/native, geometric mean
TARGET_COLD_S = 0.5          # first run, empty cache, fast tier
TARGET_WARM_S = 0.020        # cached run
BIGSTART = ROOT / "tests" / "guests" / "rust" / "bigstart"
CARGO_WASM = ROOT / "scripts" / "cargo-wasm"


# Lines of a failing program's output quoted in errors.
TAIL = 12


# --------------------------------------------------------------------------
# running things

def parse_kernel_output(text, what):
    """Returns (checksum, inner seconds) from a kernel's stdout."""
    fields = dict(line.split(None, 1) for line in text.splitlines() if " " in line)
    try:
        return fields["checksum"].strip(), int(fields["elapsed_ns"]) / 1e9
    except (KeyError, ValueError) as e:
        raise BenchError(f"{what}: no checksum/elapsed_ns in output:\n{tail(text, TAIL)}") from e


class Timing:
    """Best-of-N times of one build of one kernel."""

    def __init__(self, checksum, runs):
        self.checksum = checksum
        self.inner = min(r[0] for r in runs)            # best time inside the program
        self.wall = min(r[1] for r in runs)             # best whole-process wall time
        self.outside = min(r[1] - r[0] for r in runs)   # start-up + exit, best run


def measure(builds, runs):
    """builds: {label: (cmd, env, what)}. Runs each build once to warm up (for
    wisp: fills the compile cache), then `runs` rounds of every build in turn,
    so that load from elsewhere on the machine hits all builds alike. Returns
    {label: Timing}. Raises BenchError on a crash or a checksum that changes
    between runs of one build."""
    results = {label: [] for label in builds}
    for rnd in range(runs + 1):
        for label, (cmd, env, what) in builds.items():
            proc = run(cmd, env=env)
            if proc.returncode != 0:
                raise BenchError(f"{what} exited {proc.returncode}:\n"
                                 f"{tail(proc.stderr + proc.stdout, TAIL)}")
            checksum, inner = parse_kernel_output(proc.stdout, what)
            results[label].append((checksum, inner, proc.wall))
    timings = {}
    for label, rs in results.items():
        sums = {r[0] for r in rs}
        if len(sums) != 1:
            raise BenchError(f"{builds[label][2]}: checksum differs between runs: {sorted(sums)}")
        timings[label] = Timing(rs[0][0], [(r[1], r[2]) for r in rs[1:]])
    return timings


def wasmtime_python():
    """(interpreter that imports wasmtime, None) or (None, why not). wasmtime
    is a peer to compare with, not a tool the bench needs: missing, its
    column says so."""
    candidates = [os.environ.get("WISP_WASMTIME_PYTHON"), str(WASMTIME_VENV / "bin" / "python")]
    for py in filter(None, candidates):
        if not (shutil.which(py) or Path(py).exists()):
            continue
        if run([py, "-c", "import wasmtime"]).returncode == 0:
            return py, None
    return None, (f"no Python with the wasmtime package ({WASMTIME_VENV}: run scripts/setup.sh,"
                  " or set WISP_WASMTIME_PYTHON)")


# --------------------------------------------------------------------------
# building the kernels

def build_kernel(src, out, native_cc, baseline):
    """Builds one kernel natively, for wasm, and (optionally) the wasm2c baseline."""
    name = src.stem
    d = out / name
    d.mkdir(parents=True, exist_ok=True)
    inc = ["-I", str(KERNELS)]
    check([native_cc, "-O2", *inc, "-o", d / "native", src, "-lm"], f"{name}: native build",
          TAIL)
    check([CLANG, "--target=wasm32-wasi", f"--sysroot={WASI_SYSROOT}", "-O2", *inc,
           "-o", d / f"{name}.wasm", src], f"{name}: wasm build", TAIL)
    if baseline:
        check(["wasm2c", d / f"{name}.wasm", "-n", "kernel", "-o", d / "kernel.c"],
              f"{name}: wasm2c", TAIL)
        check([native_cc, "-O2", "-w", *RTDEFS, "-I", d, "-I", WABT_RT, "-o", d / "baseline",
               d / "kernel.c", BASELINE_HOST, WABT_RT / "wasm-rt-impl.c", "-lm"],
              f"{name}: wasm2c baseline build", TAIL)
    return name


# --------------------------------------------------------------------------
# reporting

def fmt_s(x):
    return "-" if x is None else f"{x:.3f}"


def fmt_r(x):
    return "-" if x is None else f"{x:.2f}x"


def ratio(a, b):
    return None if a is None or b is None or b <= 0 else a / b


def geomean(xs):
    xs = [x for x in xs if x]
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else None


# --------------------------------------------------------------------------
# the two parts

def bench_kernels(args, work, wisp_env, wt_python, wt_missing):
    sources = sorted(KERNELS.glob("*.c"))
    if args.kernels:
        wanted = set(args.kernels.split(","))
        missing = wanted - {s.stem for s in sources}
        if missing:
            raise BenchError(f"no such kernel: {', '.join(sorted(missing))}")
        sources = [s for s in sources if s.stem in wanted]
    out = work / "kernels"
    print(f"building {len(sources)} kernels (native {args.native_cc} -O2, wasm clang -O2"
          f"{', wasm2c baseline' if args.baseline else ''}) ...", flush=True)
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        names = list(pool.map(lambda s: build_kernel(s, out, args.native_cc, args.baseline),
                              sources))

    rows, errors, ratios, wall_ratios, base_ratios = [], [], [], [], []
    wt_ratios, slower_than_wt = [], []
    wt_cell = "-" if wt_python or not args.wasmtime else "missing"
    for name in names:
        d = out / name
        print(f"  {name} ...", end="", flush=True)
        builds = {"native": ([d / "native"], None, f"{name} native")}
        if args.baseline:
            builds["wasm2c"] = ([d / "baseline"], None, f"{name} wasm2c")
        builds["wisp"] = ([args.wisp, "run", "--tier", "opt", d / f"{name}.wasm"], wisp_env,
                          f"{name} wisp")
        if wt_python:
            builds["wasmtime"] = ([wt_python, WASMTIME_RUN, d / f"{name}.wasm"], None,
                                  f"{name} wasmtime")
        try:
            t = measure(builds, args.runs)
        except BenchError as e:
            print(" error")
            errors.append(str(e))
            rows.append([name, "error"] + [""] * 11)
            continue
        nat, base, wsp, wt = t["native"], t.get("wasm2c"), t["wisp"], t.get("wasmtime")
        print(f" native {nat.inner:.2f} s, wisp {wsp.inner:.2f} s"
              + (f", wasmtime {wt.inner:.2f} s" if wt else ""), flush=True)
        agree = {b.checksum for b in (nat, base, wsp, wt) if b}
        if len(agree) != 1:
            errors.append(f"{name}: checksum mismatch: native {nat.checksum}, wisp {wsp.checksum}"
                          + (f", wasm2c {base.checksum}" if base else "")
                          + (f", wasmtime {wt.checksum}" if wt else ""))
        r = ratio(wsp.inner, nat.inner)
        ratios.append(r)
        wall_ratios.append(ratio(wsp.wall, nat.wall))
        base_ratios.append(ratio(base.inner, nat.inner) if base else None)
        rw = ratio(wsp.inner, wt.inner) if wt else None
        wt_ratios.append(rw)
        if rw is not None and rw > 1:
            slower_than_wt.append(name)
        rows.append([name, fmt_s(nat.inner), fmt_s(base.inner if base else None),
                     fmt_s(wt.inner) if wt else wt_cell,
                     fmt_s(wsp.inner), fmt_r(r), fmt_r(ratio(wsp.inner, base.inner if base else None)),
                     fmt_r(rw) if wt else wt_cell,
                     fmt_s(nat.wall), fmt_s(wsp.wall),
                     f"{wsp.outside * 1000:.1f}",
                     "ok" if len(agree) == 1 else "MISMATCH"])

    print()
    print(f"Code speed: seconds inside the program (best of {args.runs}), and whole-process"
          " wall time")
    table(rows, ["kernel", "native", "wasm2c", "wasmtime", "wisp", "wisp/native", "wisp/wasm2c",
                 "wisp/wasmtime", "native proc", "wisp proc", "wisp outside ms", "checksum"])
    g = geomean(ratios)
    gb = geomean(base_ratios)
    gw = geomean(wall_ratios)
    gt = geomean(wt_ratios)
    print(f"geometric mean wisp/native: {fmt_r(g)} (target <= {TARGET_RATIO:.2f}x)"
          + (f"; wasm2c baseline/native: {fmt_r(gb)}" if gb else "")
          + (f"; wisp/wasmtime: {fmt_r(gt)}" if gt else "")
          + (f"; whole process: {fmt_r(gw)}" if gw else ""))
    print("wasm2c = the same .wasm through stock wasm2c + gcc -O2 and wabt's reference runtime"
          " (no reduction hook).")
    if wt_python:
        print("wasmtime = the same .wasm under wasmtime (PyPI package, Cranelift), compiled"
              " before the kernel's timed part.")
    else:
        print(f"wasmtime: {wt_missing}")
    print("'wisp outside ms' = wisp's process wall time minus the kernel's own timed part"
          " (best run): start-up (load the cached .so, instantiate) plus exit.")
    wt = None
    if wt_python:
        wt = (gt, slower_than_wt)
    return g, wt, errors


def median_wall(cmd, n, env_for_run, what):
    walls = []
    for i in range(n):
        proc = run(cmd, env=env_for_run(i))
        if proc.returncode != 0:
            raise BenchError(f"{what} exited {proc.returncode}:\n"
                             f"{tail(proc.stderr + proc.stdout, TAIL)}")
        walls.append(proc.wall)
    return statistics.median(walls), min(walls), max(walls)


def build_bigstart(work):
    """Returns the path of bigstart.wasm, or None (with a message) when it can't exist yet."""
    if not BIGSTART.is_dir():
        print(f"start-up: skipped: {BIGSTART.relative_to(ROOT)} does not exist yet.")
        return None
    if not CARGO_WASM.exists():
        print(f"start-up: skipped: {CARGO_WASM.relative_to(ROOT)} does not exist yet.")
        return None
    env = dict(os.environ, CARGO_TARGET_DIR=str(work / "rust-target"))
    print("building bigstart with scripts/cargo-wasm ...", flush=True)
    cmd = [CARGO_WASM, "build", "--release", "--quiet"]
    proc = run(cmd, env=env, cwd=BIGSTART)
    if proc.returncode != 0 and "scripts/setup" in proc.stderr:
        # No Rust toolchain for wasm32-wasip1 on this machine: a set-up step
        # is missing, not a failure of what is measured.
        print("start-up: skipped: no Rust toolchain for wasm32-wasip1 here:\n"
              + tail(proc.stderr, 3))
        return None
    if proc.returncode != 0:
        raise BenchError(f"bigstart: cargo-wasm build failed (exit {proc.returncode}):\n"
                         f"{tail(proc.stderr or proc.stdout, TAIL)}")
    wasm = work / "rust-target" / "wasm32-wasip1" / "release" / "bigstart.wasm"
    if not wasm.exists():
        raise BenchError(f"bigstart: cargo-wasm succeeded but {wasm} is missing")
    return wasm


def bench_startup(args, work):
    wasm = build_bigstart(work)
    if wasm is None:
        return None
    size_kb = wasm.stat().st_size / 1024
    caches = work / "startup-caches"
    caches.mkdir()

    env = wisp_env

    def fresh(i, tag):
        d = caches / f"{tag}-{i}"
        d.mkdir()
        return env(d)

    n = args.startup_runs
    fast = [args.wisp, "run", "--tier", "fast", wasm]
    cold = median_wall(fast, n, lambda i: fresh(i, "cold"), "bigstart cold run")
    warm_cache = caches / "warm"
    warm_cache.mkdir()
    check(fast, "bigstart: filling the cache", TAIL, env=env(warm_cache))
    warm = median_wall(fast, max(n, 5), lambda i: env(warm_cache), "bigstart warm run")
    compile_n = 1 if args.quick else 3
    opt = median_wall([args.wisp, "compile", "--tier", "opt", wasm], compile_n,
                      lambda i: fresh(i, "opt"), "wisp compile --tier opt")

    print()
    print(f"Start-up: wisp on bigstart.wasm ({size_kb:.0f} KB), wall seconds")
    rows = [
        ["cold run, fast tier, empty cache", n, fmt_s(cold[0]), fmt_s(cold[1]), fmt_s(cold[2]),
         f"< {TARGET_COLD_S}", "met" if cold[0] < TARGET_COLD_S else "MISSED"],
        ["warm run, cached", max(n, 5), fmt_s(warm[0]), fmt_s(warm[1]), fmt_s(warm[2]),
         f"< {TARGET_WARM_S}", "met" if warm[0] < TARGET_WARM_S else "MISSED"],
        ["wisp compile --tier opt", compile_n, fmt_s(opt[0]), fmt_s(opt[1]), fmt_s(opt[2]),
         "", ""],
    ]
    table(rows, ["what", "runs", "median", "min", "max", "target", ""])
    return cold[0], warm[0], opt[0], size_kb


# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="timed runs per build, best is kept"
                    " (default 3, at least 1; --quick sets 1)")
    ap.add_argument("--quick", action="store_true", help="one timed run each, fewer start-up runs")
    ap.add_argument("--kernels", help="comma-separated subset of bench/kernels")
    ap.add_argument("--no-baseline", dest="baseline", action="store_false",
                    help="skip the plain wasm2c column")
    ap.add_argument("--no-wasmtime", dest="wasmtime", action="store_false",
                    help="skip the wasmtime column")
    ap.add_argument("--no-startup", dest="startup", action="store_false",
                    help="skip the start-up measurements")
    ap.add_argument("--startup-runs", type=int, default=None,
                    help="runs for the cold and warm start-up medians (default 7, quick 3)")
    ap.add_argument("--wisp", default=os.environ.get("WISP_BIN", str(ROOT / "wisp")))
    ap.add_argument("--native-cc", default="gcc", help="compiler for the native builds")
    args = ap.parse_args()
    if args.quick:
        args.runs = 1
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    if args.startup_runs is None:
        args.startup_runs = 3 if args.quick else 7
    args.wisp = str(Path(args.wisp).resolve())

    tools = [args.native_cc, CLANG] + (["wasm2c"] if args.baseline else [])
    missing = [t for t in tools if not shutil.which(t)]
    if not Path(args.wisp).exists():
        missing.append(f"{args.wisp} (run `make`)")
    if args.baseline and not (WABT_RT / "wasm-rt-impl.c").exists():
        missing.append(f"{WABT_RT}/wasm-rt-impl.c (set WISP_WABT_RT, or --no-baseline)")
    if missing:
        print("bench: missing: " + ", ".join(missing), file=sys.stderr)
        return 2

    wt_python, wt_missing = (wasmtime_python() if args.wasmtime
                             else (None, "not run (--no-wasmtime)"))

    print(f"wisp bench -- {machine_note()}")
    errors, g, wt, startup = [], None, None, None
    with tempfile.TemporaryDirectory(prefix="wisp-bench-") as tmp:
        work = Path(tmp)
        cache = work / "cache"
        cache.mkdir()
        try:
            g, wt, errs = bench_kernels(args, work, wisp_env(cache), wt_python, wt_missing)
            errors += errs
        except BenchError as e:
            errors.append(str(e))
        if args.startup:
            print()
            try:
                startup = bench_startup(args, work)
            except BenchError as e:
                errors.append(str(e))

    print()
    print("Summary")
    if g is not None:
        print(f"  code speed   wisp/native geometric mean {fmt_r(g)}: target <= {TARGET_RATIO}x "
              + ("met" if g <= TARGET_RATIO else "MISSED"))
    if wt is not None and wt[0] is not None:
        gt, slower = wt
        print(f"  vs wasmtime  wisp/wasmtime geometric mean {fmt_r(gt)}: target every kernel"
              " <= 1x " + (f"MISSED ({', '.join(slower)})" if slower else "met"))
    elif g is not None:
        print(f"  vs wasmtime  not measured: {wt_missing}")
    if startup:
        cold, warm, opt, kb = startup
        print(f"  cold start   {cold * 1000:.0f} ms ({kb:.0f} KB module, fast tier): target "
              f"< {TARGET_COLD_S * 1000:.0f} ms " + ("met" if cold < TARGET_COLD_S else "MISSED"))
        print(f"  warm start   {warm * 1000:.1f} ms: target < {TARGET_WARM_S * 1000:.0f} ms "
              + ("met" if warm < TARGET_WARM_S else "MISSED"))
        print(f"  opt compile  {opt:.2f} s")
    elif args.startup:
        print("  start-up     not measured (see above)")
    for e in errors:
        print(f"ERROR: {e}", file=sys.stderr)
    if errors:
        print(f"  {len(errors)} error(s): the figures above are incomplete or wrong")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
