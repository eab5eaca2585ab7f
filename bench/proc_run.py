#!/usr/bin/env python3
"""wisp's process benchmarks, side by side with Erlang/OTP (BEAM) and Go.

    python3 bench/proc_run.py [--quick] [--runs N] [--only spawn,skynet] [--million]

The workloads, with the same semantics in all three implementations
(bench/proc/c/*.c as wisp guests, bench/proc/erlang/procbench.erl,
bench/proc/go/main.go):

  spawn     spawn N processes that end at once; the parent waits until all
            have ended (wisp and Erlang: a monitor per child, N DOWN messages;
            Go: a sync.WaitGroup). Microseconds per spawn+exit.
  idle      bytes of OS resident memory per idle process (100k; 1M too with
            --million, skipped per column when the 100k figure projects more
            than 60% of the machine's available memory): N processes that
            each tell the parent they are up and then block in receive; when
            all are up the program prints READY and sleeps; the harness reads
            VmRSS of the OS process (summed over its descendants, e.g. BEAM's
            erl_child_setup) and subtracts the RSS of the same program run
            with N = 0. The same method for all three: OS RSS, never the
            runtime's own accounting.
  pingpong  two processes exchanging a small message (one integer) N times;
            microseconds per round trip.
  ring      P = 10k processes in a ring passing a countdown token M hops;
            microseconds per hop (ring set-up not timed).
  skynet    the classic: a tree of processes, 10 children per node, 1M
            leaves that send their number up, every node sums its children's;
            seconds in all (1,111,111 processes).

Every program times its workload itself and prints `RESULT key=value ...`
(idle: `READY n=N`), so runtime start-up is not counted; results are checked
(skynet's sum, the ring node the token stops at, counts). Times are the best
of --runs runs, memory the median; runs of the three implementations are
interleaved so that load from elsewhere hits them alike.

Builds, all into a temporary directory: erlc (BEAM's JIT runs the .beam);
`go build` (no race detector); the wisp guests with clang --target=wasm32-wasi
-O2 against include/wisp/guest.h and sdk/c/wisp.c, then `wisp compile --tier
opt` into a private cache (WISP_CACHE_DIR, WISP_BACKGROUND_COMPILE=0), and
run with `wisp run --tier opt`. Each runtime uses its defaults (one scheduler
per core, GOMAXPROCS = cores); Erlang gets +P only where a workload needs more
than its default 262144 processes.

Beside the table, when src/sched/fiber.h exists: the bare fiber switch
(bench/proc/fiber_switch.c built natively against src/sched/fiber.c and its
assembly; two fibers on one thread), the floor under the figures above. It
uses an internal interface, so a build failure there is a note, not an error.

Targets (from the process-runtime issue): spawn, ping-pong and skynet at or
better than BEAM; at most 8 KiB RSS per idle C-guest process (16 KiB for a
Rust guest, measured once a Rust guest exists).

Exit status: 0 when everything that could run ran, even if targets are missed
or a column is unavailable (a peer not installed, or a wisp without the
process ABI: the table says so); 1 on a build failure, a crash, a timeout or
a wrong result; 2 on bad usage or missing clang/wisp.
"""
import argparse
import concurrent.futures
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import (CLANG, ROOT, BenchError, build_c_guest, check, erlang_release, find_go,
                     machine_note, read_line_with, run, stop, table, tail, tree_rss_bytes,
                     wisp_compile, wisp_env)

PROC = ROOT / "bench" / "proc"
GUESTS = ["spawn", "idle", "pingpong", "ring", "skynet"]
FIBER_SRC = PROC / "fiber_switch.c"
IMPLS = ["wisp", "erlang", "go"]

IDLE_TARGET_C = 8 * 1024      # bytes per idle process, C guest
IDLE_TARGET_RUST = 16 * 1024  # bytes per idle process, Rust guest
RSS_SETTLE_S = 0.3            # after READY, before reading RSS


class Unavailable(Exception):
    """A column that cannot be measured here (not an error)."""


# --------------------------------------------------------------------------
# the three implementations: build, then a command line per workload

class Impl:
    name = "?"
    unavailable = None      # reason this column is empty, or None

    def cmd(self, workload, args):
        raise NotImplementedError

    env = None


class Erlang(Impl):
    name = "erlang"

    def __init__(self, work):
        self.dir = work / "erlang"
        if not (shutil.which("erlc") and shutil.which("erl")):
            self.unavailable = "erl/erlc not installed"

    def build(self):
        self.dir.mkdir()
        check(["erlc", "-o", self.dir, PROC / "erlang" / "procbench.erl"], "erlang: erlc")

    def cmd(self, workload, args, procs=0):
        # The default process limit is 262144; raising it costs resident
        # memory (the table), so only where a workload needs it.
        limit = []
        if procs > 200_000:
            p = 1 << 18
            while p < procs * 1.2:
                p <<= 1
            limit = ["+P", str(p)]
        return ["erl", "-noshell", *limit, "-pa", self.dir, "-run", "procbench", "main",
                workload, *map(str, args)]


class Go(Impl):
    name = "go"

    def __init__(self, work):
        self.bin = work / "go" / "procbench"
        self.go = find_go()
        if not self.go:
            self.unavailable = "go not installed"

    def build(self):
        env = dict(os.environ, GOTOOLCHAIN="local", GOFLAGS="", CGO_ENABLED="0")
        check([self.go, "build", "-o", self.bin, "."], "go: go build", cwd=PROC / "go", env=env)
        self.version = run([self.go, "version"]).stdout.strip()

    def cmd(self, workload, args, procs=0):
        return [self.bin, workload, *map(str, args)]


class Wisp(Impl):
    name = "wisp"

    def __init__(self, work, wisp, extra_args):
        self.wisp = wisp
        self.dir = work / "wisp"
        self.extra = extra_args
        self.cache = work / "wisp-cache"
        self.env = None

    def build(self):
        self.dir.mkdir()
        self.env = wisp_env(self.cache)

        def one(g):
            wasm = self.dir / f"{g}.wasm"
            build_c_guest([PROC / "c" / f"{g}.c"], wasm, f"wisp guest {g}: clang",
                          includes=[PROC / "c"])
            proc = wisp_compile(self.wisp, wasm, self.env)
            if proc.returncode != 0 and "does not provide" in proc.stderr:
                # Compiles, but this wisp has no process ABI yet.
                msg = proc.stderr.strip().splitlines()[-1]
                raise Unavailable("this wisp lacks the process ABI: "
                                  + msg[msg.find("module imports"):])
            if proc.returncode != 0:
                raise BenchError(f"wisp compile {g}.wasm failed (exit {proc.returncode}):\n"
                                 f"{tail(proc.stderr or proc.stdout)}")

        with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            list(pool.map(one, GUESTS))

    def cmd(self, workload, args, procs=0):
        return [self.wisp, "run", "--tier", "opt", *self.extra, self.dir / f"{workload}.wasm",
                *map(str, args)]


# --------------------------------------------------------------------------
# measuring

def parse_result(text, what):
    for line in text.splitlines():
        if line.startswith("RESULT "):
            try:
                return dict(kv.split("=", 1) for kv in line.split()[1:])
            except ValueError:
                break
    raise BenchError(f"{what}: no RESULT line in output:\n{tail(text)}")


def timed_run(impl, workload, args, procs, timeout):
    """Runs one workload once; returns its RESULT fields."""
    what = f"{impl.name} {workload} {' '.join(map(str, args))}"
    proc = run(impl.cmd(workload, args, procs), env=impl.env, timeout=timeout)
    if proc.returncode != 0:
        raise BenchError(f"{what} exited {proc.returncode}:\n{tail(proc.stderr + proc.stdout)}")
    return parse_result(proc.stdout, what)


def idle_rss(impl, n, timeout):
    """Starts the idle workload with n processes, waits for READY, returns the
    RSS of the OS process tree, and kills it."""
    what = f"{impl.name} idle {n}"
    cmd = [str(c) for c in impl.cmd("idle", [n], n)]
    proc = subprocess.Popen(cmd, env=impl.env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        read_line_with(proc, "READY", timeout, what)
        time.sleep(RSS_SETTLE_S)
        if proc.poll() is not None:
            raise BenchError(f"{what} exited {proc.returncode} after READY")
        return tree_rss_bytes(proc.pid)
    finally:
        stop(proc)


# --------------------------------------------------------------------------
# the workloads

def expect(fields, what, **want):
    for k, v in want.items():
        if fields.get(k) != str(v):
            raise BenchError(f"{what}: wrong result: {k}={fields.get(k)}, expected {v}")


class Workload:
    """name; unit; the argument list (full, quick); how many processes at
    once; the RESULT key holding the figure; a checker; a target."""

    def __init__(self, name, label, unit, args, procs, key=None, check=None, target=None):
        self.name, self.label, self.unit = name, label, unit
        self.args, self.procs, self.key, self.check = args, procs, key, check
        self.target = target


def skynet_check(f, args):
    n = args[0]
    expect(f, "skynet", leaves=n, sum=n * (n - 1) // 2)


def workloads(quick, million):
    spawn_n = 50_000 if quick else 200_000
    pp_n = 50_000 if quick else 300_000
    ring_p, ring_m = 10_000, (100_000 if quick else 1_000_000)
    leaves = 100_000 if quick else 1_000_000
    w = [
        Workload("spawn", f"spawn+exit ({spawn_n // 1000}k)", "us", [spawn_n], spawn_n,
                 "spawn_us", lambda f, a: expect(f, "spawn", n=a[0]), "beam"),
        Workload("idle", "idle process (100k)", "bytes", [100_000], 100_000,
                 target=("bytes", IDLE_TARGET_C)),
    ]
    if million:
        w.append(Workload("idle", "idle process (1M)", "bytes", [1_000_000], 1_000_000,
                          target=("bytes", IDLE_TARGET_C)))
    w += [
        Workload("pingpong", f"ping-pong round trip ({pp_n // 1000}k)", "us", [pp_n], 2,
                 "pingpong_us", lambda f, a: expect(f, "pingpong", n=a[0]), "beam"),
        Workload("ring", f"ring hop (10k procs, {ring_m // 1000}k hops)", "us",
                 [ring_p, ring_m], ring_p, "ring_hop_us",
                 lambda f, a: expect(f, "ring", procs=a[0], hops=a[1], last=a[1] % a[0])),
        Workload("skynet", f"skynet ({leaves // 1000}k leaves)", "s", [leaves],
                 leaves * 10 // 9 + 1, "skynet_s", skynet_check, "beam"),
    ]
    return w


def mem_available():
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def measure(wl, impls, runs, timeout, idle_seen, notes):
    """Returns ({impl: figure}, [errors]). Runs are interleaved across impls.
    idle_seen: {impl: bytes per idle process} from a smaller idle row; an
    idle run whose projected RSS would not fit comfortably in the machine's
    available memory is skipped with a note rather than risking the OOM
    killer on a shared machine."""
    samples = {i.name: [] for i in impls}
    errors, failed = [], set()
    if wl.name == "idle":
        for impl in impls:
            per = idle_seen.get(impl.name)
            need = per * wl.args[0] if per else 0
            if need > 0.6 * mem_available():
                failed.add(impl.name)
                notes.append(f"{wl.label}, {impl.name}: skipped: would need ~{need / 2**30:.1f}"
                             f" GiB at {per:.0f} bytes/process; "
                             f"{mem_available() / 2**30:.1f} GiB available")
    for _ in range(runs):
        for impl in impls:
            if impl.name in failed:
                continue
            try:
                if wl.name == "idle":
                    n = wl.args[0]
                    base = idle_rss(impl, 0, timeout)
                    full = idle_rss(impl, n, timeout)
                    samples[impl.name].append((full - base) / n)
                else:
                    f = timed_run(impl, wl.name, wl.args, wl.procs, timeout)
                    wl.check(f, wl.args)
                    samples[impl.name].append(float(f[wl.key]))
            except BenchError as e:
                failed.add(impl.name)
                errors.append(f"{wl.label}: {e}")
    figures = {}
    for name, xs in samples.items():
        if xs and name not in failed:
            figures[name] = statistics.median(xs) if wl.name == "idle" else min(xs)
    return figures, errors


def fiber_switch(work, runs):
    """ns per one-way switch (best of runs), or a string saying why not."""
    srcs = [ROOT / "src" / "sched" / "fiber.c", *sorted((ROOT / "src" / "sched").glob("fiber_*.S"))]
    if not srcs[0].exists():
        return "src/sched/fiber.c does not exist"
    exe = work / "fiber_switch"
    cc = os.environ.get("CC", "cc")
    proc = run([cc, "-O2", "-std=c17", "-D_GNU_SOURCE", "-I", ROOT / "src", "-o", exe,
                FIBER_SRC, *srcs, "-lpthread"])
    if proc.returncode != 0:
        return "did not build against src/sched/fiber.h:\n" + tail(proc.stderr, 4)
    best = None
    for _ in range(runs):
        proc = run([exe, "10000000"], timeout=120)
        if proc.returncode != 0:
            return f"exited {proc.returncode}"
        f = parse_result(proc.stdout, "fiber_switch")
        best = min(best or 1e99, float(f["switch_ns"]))
    return best


# --------------------------------------------------------------------------
# reporting

def fmt(x, unit):
    if x is None:
        return "-"
    if unit == "bytes":
        return f"{x:.0f}"
    if unit == "s":
        return f"{x:.3f}"
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"


def fmt_r(a, b):
    return "-" if a is None or b is None or b <= 0 else f"{a / b:.2f}x"


def target_text(wl, figs):
    """(target column, status column) for one row."""
    w = figs.get("wisp")
    if wl.target == "beam":
        e = figs.get("erlang")
        status = "-" if w is None or e is None else ("met" if w <= e else "MISSED")
        return "<= erlang", status
    if wl.target and wl.target[0] == "bytes":
        limit = wl.target[1]
        status = "-" if w is None else ("met" if w <= limit else "MISSED")
        return f"<= {limit // 1024} KiB (C)", status
    return "", ""


def versions(impls):
    out = []
    for i in impls:
        if i.unavailable:
            continue
        if i.name == "erlang":
            out.append(f"Erlang/OTP {erlang_release()}")
        elif i.name == "go":
            out.append(getattr(i, "version", "go"))
    return ", ".join(out)


# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=None,
                    help="runs per implementation and workload (default 3; --quick: 1)")
    ap.add_argument("--quick", action="store_true", help="smaller sizes, one run each")
    ap.add_argument("--only", help="comma-separated workloads: " + ",".join(GUESTS + ["fiber"]))
    ap.add_argument("--million", action="store_true", help="also measure 1M idle processes")
    ap.add_argument("--impls", default=",".join(IMPLS),
                    help="comma-separated columns to run (default: wisp,erlang,go)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per program run")
    ap.add_argument("--wisp", default=os.environ.get("WISP_BIN", str(ROOT / "wisp")))
    ap.add_argument("--wisp-arg", action="append", default=[],
                    help="extra argument for `wisp run` (repeatable)")
    args = ap.parse_args()
    runs = args.runs if args.runs is not None else (1 if args.quick else 3)
    if runs < 1:
        ap.error("--runs must be at least 1")
    wanted_impls = args.impls.split(",")
    if set(wanted_impls) - set(IMPLS):
        ap.error(f"--impls: choose from {','.join(IMPLS)}")
    wls = workloads(args.quick, args.million)
    if args.only:
        only = set(args.only.split(","))
        if only - set(GUESTS) - {"fiber"}:
            ap.error(f"--only: no such workload: "
                     f"{','.join(sorted(only - set(GUESTS) - {'fiber'}))}")
        wls = [w for w in wls if w.name in only]
    args.wisp = str(Path(args.wisp).resolve())
    missing = []
    if "wisp" in wanted_impls:
        if not shutil.which(CLANG):
            missing.append(CLANG)
        if not Path(args.wisp).exists():
            missing.append(f"{args.wisp} (run `make`)")
    if missing:
        print("bench/proc_run.py: missing: " + ", ".join(missing), file=sys.stderr)
        return 2

    print(f"wisp process bench -- {machine_note()}")
    errors, notes = [], []
    with tempfile.TemporaryDirectory(prefix="wisp-procbench-") as tmp:
        work = Path(tmp)
        all_impls = {"wisp": Wisp(work, args.wisp, args.wisp_arg), "erlang": Erlang(work),
                     "go": Go(work)}
        impls = [all_impls[n] for n in IMPLS if n in wanted_impls]
        print("building: " + ", ".join(i.name for i in impls if not i.unavailable) + " ...",
              flush=True)
        for impl in impls:
            if impl.unavailable:
                continue
            try:
                impl.build()
            except Unavailable as e:
                impl.unavailable = str(e)
            except BenchError as e:
                impl.unavailable = "build failed"
                errors.append(str(e))
        for impl in impls:
            if impl.unavailable:
                notes.append(f"{impl.name}: not measured: {impl.unavailable}")
        live = [i for i in impls if not i.unavailable]
        print(f"peers: {versions(impls) or 'none'}")

        rows, idle_seen = [], {}
        for wl in wls:
            print(f"  {wl.label} ...", end="", flush=True)
            figs, errs = measure(wl, live, runs, args.timeout, idle_seen, notes)
            errors += errs
            if wl.name == "idle":
                idle_seen.update(figs)
            print(" " + ", ".join(f"{n} {fmt(v, wl.unit)}" for n, v in figs.items())
                  + (" (errors)" if errs else ""), flush=True)
            tgt, status = target_text(wl, figs)
            rows.append([wl.label, wl.unit, fmt(figs.get("wisp"), wl.unit),
                         fmt(figs.get("erlang"), wl.unit), fmt(figs.get("go"), wl.unit),
                         fmt_r(figs.get("wisp"), figs.get("erlang")),
                         fmt_r(figs.get("wisp"), figs.get("go")), tgt, status])
        fiber = None
        if "wisp" in wanted_impls and (not args.only or "fiber" in only):
            fiber = fiber_switch(work, runs)

    print()
    stat = "best" if runs > 1 else "one run"
    print(f"Processes: wisp vs BEAM vs Go (times: {stat} of {runs}; memory: median of {runs};"
          " lower is better)")
    table(rows, ["workload", "unit", "wisp", "erlang", "go", "wisp/erlang", "wisp/go",
                 "target", ""])
    if isinstance(fiber, float):
        print(f"fiber switch (src/sched, native, no scheduler): {fiber:.1f} ns one-way, "
              f"{2 * fiber:.1f} ns round trip")
    elif fiber:
        notes.append(f"fiber switch: not measured: {fiber}")
    print("idle = OS RSS of the whole process tree with N idle processes minus with none, / N.")
    print(f"Rust-guest target (<= {IDLE_TARGET_RUST // 1024} KiB per idle process): not measured"
          " (no Rust guest in bench/proc yet).")
    for n in notes:
        print(f"note: {n}")
    for e in errors:
        print(f"ERROR: {e}", file=sys.stderr)
    if errors:
        print(f"{len(errors)} error(s): the figures above are incomplete or wrong")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
