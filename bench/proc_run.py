#!/usr/bin/env python3
"""wisp's process benchmarks, side by side with Erlang/OTP (BEAM) and Go.

    python3 bench/proc_run.py [--quick] [--runs N] [--only spawn,skynet,...]
                              [--impls wisp-c,wisp-rust,erlang,go] [--million]

Four columns: wisp running C guests (bench/proc/c/*.c), wisp running Rust
guests written with the wisp crate (bench/proc/rust/src/bin/*.rs), BEAM
(bench/proc/erlang/procbench.erl) and Go (bench/proc/go/main.go). The
workloads have the same semantics in every implementation that has them:

  spawn     spawn N processes that end at once; the parent waits until all
            have ended (C guest and Erlang: a monitor per child, N DOWN
            messages; Rust guest: each child's last act is a message to the
            parent, as the crate's basic calls allow; Go: a sync.WaitGroup).
            Microseconds per spawn+exit.
  idle      bytes of OS resident memory per idle process (100k): N processes
            that each tell the parent they are up and then block in receive;
            when all are up the program prints READY and sleeps; the harness
            reads VmRSS of the OS process (summed over its descendants, e.g.
            BEAM's erl_child_setup) 0.3 s later and subtracts the RSS of the
            same program run with N = 0. The same method for all: OS RSS,
            never the runtime's own accounting. wisp runs with its default
            settings (processes idle longer than --hibernate-after, 10 s by
            default, hibernate: a note says when READY took that long).
  idlehib   the same after hibernation: wisp with --hibernate-after 200ms,
            BEAM's processes waiting in erlang:hibernate/3 (Go has no
            peer); the RSS is read once at least 1 s has passed after READY
            and it has stopped falling.
  pingpong  two processes exchanging a small message (one integer) N times;
            microseconds per round trip.
  ring      P = 10k processes in a ring passing a countdown token M hops;
            microseconds per hop (ring set-up not timed).
  skynet    the classic: a tree of processes, 10 children per node, 1M
            leaves that send their number up, every node sums its children's;
            seconds in all (1,111,111 processes).
  sleepers  N = 100k processes each looping sleep(100 ms) for D = 10 s,
            counting their wake-ups: microseconds of CPU (user + system, of
            the whole OS process tree, from READY to RESULT) per wake-up.
            Beside it, the mean period the sleepers achieved (N*D over the
            wake-ups; 100 ms if none was late), and a note when a runtime
            made under 90% of the nominal wake-ups.
  hibwake   K = 10k processes that hibernate between answers (C:
            wisp_hibernate; Erlang: erlang:hibernate/3), each sent one
            message and waited for in turn, 200 ms after the last pass so
            that all have hibernated again: microseconds per wake + round
            trip; and in the same run K processes waiting in a plain
            receive, the baseline. Best of 5 passes each.

--million adds the million modes (`--only million`: only those): 1,000,000
idle Rust-guest processes and 2,000,000 idle C-guest processes, with wisp's
default settings and with --hibernate-after 200ms, and BEAM and Go at the
same sizes: time from start until READY, total RSS and RSS per process.
The idle guests print `PROGRESS spawned=K` at every tenth of N, so a run
that fails or is stopped says how far it got.

Every program times its workload itself and prints `RESULT key=value ...`
(idle and sleepers: `READY n=N` first), so runtime start-up is not counted;
results are checked (skynet's sum, the ring node the token stops at,
counts). Times are the best of --runs runs, memory and CPU per wake-up the
median; runs of the implementations are interleaved so that load from
elsewhere hits them alike.

Memory guard: an idle run whose 100k figure projects more than 60% of the
machine's available memory is skipped, and any run whose RSS passes 80% of
what was available when it started (--abort-share), or during which the
machine's available memory falls below 10% of that, is stopped; both are
notes (and `aborted` in the million table), not errors.

Builds, into a temporary directory except the Rust target directory: erlc
(BEAM's JIT runs the .beam); `go build` (no race detector); the C guests
with clang --target=wasm32-wasi -O2 against include/wisp/guest.h and
sdk/c/wisp.c; the Rust guests with scripts/cargo-wasm build --release in
bench/proc/rust (target directory $CARGO_TARGET_DIR or bench/proc/rust/target,
kept between runs); then `wisp compile --tier opt` into a private cache
(WISP_CACHE_DIR, WISP_BACKGROUND_COMPILE=0), and `wisp run --tier opt`.
Each runtime uses its defaults (one scheduler per core, GOMAXPROCS = cores);
Erlang gets +P only where a workload needs more than its default 262144
processes.

Beside the table, when src/sched/fiber.h exists: the bare fiber switch
(bench/proc/fiber_switch.c built natively against src/sched/fiber.c and its
assembly; two fibers on one thread), the floor under the figures above. It
uses an internal interface, so a build failure there is a note, not an error.

Targets (issue 11), printed beside each row: idle C <= 4 KiB, Rust <= 8 KiB
at 100k (moonshot: hibernated <= BEAM hibernated); spawn+exit C <= 1.5 us,
Rust <= 5 us, both <= BEAM; ping-pong and skynet (C) <= BEAM; sleepers CPU
per wake-up <= BEAM; 1M idle Rust processes ready in <= 30 s.

Exit status: 0 when everything that could run ran, even if targets are missed
or a column is unavailable (a peer or the Rust toolchain not installed, or a
wisp without the process ABI: the table says so) and even if a million-mode
run fails (its error is printed: that is a result); 1 on a build failure, a
crash, a timeout or a wrong result; 2 on bad usage or missing clang/wisp.
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

from harness import (CLANG, ROOT, BenchError, Unavailable, build_c_guest, build_impls, check, erlang_release, find_go,
                     go_build, machine_note, mem_available, read_line_with, run, run_watched, stop, table,
                     tail, tree_cpu_s, tree_rss_bytes, wisp_env)

PROC = ROOT / "bench" / "proc"
RUST_DIR = PROC / "rust"
CARGO_WASM = ROOT / "scripts" / "cargo-wasm"
FIBER_SRC = PROC / "fiber_switch.c"
IMPLS = ["wisp-c", "wisp-rust", "erlang", "go"]
WORKLOADS = ["spawn", "idle", "idlehib", "pingpong", "ring", "skynet", "sleepers", "hibwake"]

# The guest programs each column has, by workload (idlehib runs idle).
C_GUESTS = ["spawn", "idle", "pingpong", "ring", "skynet", "sleepers", "hibwake"]
RUST_GUESTS = ["spawn", "idle", "skynet", "sleepers"]
GO_WORKLOADS = ["spawn", "idle", "pingpong", "ring", "skynet", "sleepers"]

KIB = 1024
IDLE_TARGET_C = 4 * KIB        # bytes per idle process at 100k, C guest
IDLE_TARGET_RUST = 8 * KIB     # bytes per idle process at 100k, Rust guest
SPAWN_TARGET_C = 1.5           # us per spawn+exit
SPAWN_TARGET_RUST = 5.0
MILLION_READY_TARGET_S = 30.0  # 1M idle Rust processes

RSS_SETTLE_S = 0.3             # after READY, before reading RSS
HIBERNATE_AFTER = "200ms"      # --hibernate-after of the hibernated rows
HIB_WAIT_S = 1.0               # after READY, before the first RSS reading
HIB_WAIT_TINY_S = 0.5          # the same for --tiny (still > HIBERNATE_AFTER)
HIB_SETTLE_MAX_S = 120.0       # give up waiting for the RSS to stop falling
DEFAULT_HIBERNATE_S = 10.0     # wisp run's default --hibernate-after
SKIP_SHARE = 0.6               # skip an idle run projected above this share
ABORT_SHARE = 0.8              # stop a run whose RSS passes this share
                               # (--abort-share sets it)
LOW_SHARE = 0.1                # ... or when MemAvailable falls below this share
SLEEP_PERIOD_S = 0.1           # the sleepers' period (in the programs)
MIN_WAKE_SHARE = 0.9           # below: a note that the runtime fell behind


class MemoryAbort(BenchError):
    """A run stopped by the memory guard (a note, not an error)."""


# --------------------------------------------------------------------------
# the implementations: build, then a command line per workload

class Impl:
    name = "?"
    unavailable = None      # reason this column is empty, or None
    env = None

    def supports(self, workload):
        raise NotImplementedError

    def cmd(self, workload, args, procs=0, hib=False):
        """The command line for `workload`, hibernated if hib."""
        raise NotImplementedError


class Erlang(Impl):
    name = "erlang"

    def __init__(self, work):
        self.dir = work / "erlang"
        if not (shutil.which("erlc") and shutil.which("erl")):
            self.unavailable = "erl/erlc not installed"

    def build(self):
        self.dir.mkdir()
        check(["erlc", "-o", self.dir, PROC / "erlang" / "procbench.erl"], "erlang: erlc")

    def supports(self, workload):
        return True

    def cmd(self, workload, args, procs=0, hib=False):
        # The default process limit is 262144; raising it costs resident
        # memory (the table), so only where a workload needs it.
        limit = []
        if procs > 200_000:
            p = 1 << 18
            while p < procs * 1.2:
                p <<= 1
            limit = ["+P", str(p)]
        if hib:
            workload = {"idle": "idlehib"}[workload]
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
        go_build(self.go, self.bin, ".", PROC / "go")
        self.version = run([self.go, "version"]).stdout.strip()

    def supports(self, workload):
        return workload in GO_WORKLOADS

    def cmd(self, workload, args, procs=0, hib=False):
        return [self.bin, workload, *map(str, args)]


class Wisp(Impl):
    """A wisp column: guests (one .wasm per workload) compiled into a
    private cache, run with `wisp run --tier TIER`."""
    guests = []

    def __init__(self, work, wisp, extra_args, tier):
        self.wisp, self.extra, self.tier = wisp, extra_args, tier
        self.dir = work / self.name
        self.cache = work / "wisp-cache"
        self.wasm = {}

    def build_wasm(self):
        """Fills self.wasm: workload -> path of its .wasm."""
        raise NotImplementedError

    def build(self):
        self.dir.mkdir()
        self.env = wisp_env(self.cache)
        self.build_wasm()

        def one(g):
            proc = run([self.wisp, "compile", "--tier", self.tier, "--quiet", self.wasm[g]],
                       env=self.env)
            if proc.returncode != 0 and "does not provide" in proc.stderr:
                # Compiles, but this wisp has no process ABI yet.
                msg = proc.stderr.strip().splitlines()[-1]
                raise Unavailable("this wisp lacks the process ABI: "
                                  + msg[msg.find("module imports"):])
            if proc.returncode != 0:
                raise BenchError(f"wisp compile {self.wasm[g]} failed (exit {proc.returncode}):"
                                 f"\n{tail(proc.stderr or proc.stdout)}")

        with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            list(pool.map(one, self.guests))

    def supports(self, workload):
        return workload in self.guests

    def cmd(self, workload, args, procs=0, hib=False):
        hib_args = ["--hibernate-after", HIBERNATE_AFTER] if hib else []
        return [self.wisp, "run", "--tier", self.tier, *hib_args, *self.extra,
                self.wasm[workload], *map(str, args)]


class WispC(Wisp):
    name = "wisp-c"
    guests = C_GUESTS

    def build_wasm(self):
        def one(g):
            wasm = self.dir / f"{g}.wasm"
            build_c_guest([PROC / "c" / f"{g}.c"], wasm, f"wisp guest {g}: clang",
                          includes=[PROC / "c"])
            self.wasm[g] = wasm

        with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            list(pool.map(one, self.guests))


class WispRust(Wisp):
    name = "wisp-rust"
    guests = RUST_GUESTS

    def __init__(self, work, wisp, extra_args, tier):
        super().__init__(work, wisp, extra_args, tier)
        if not CARGO_WASM.exists():
            self.unavailable = f"{CARGO_WASM.relative_to(ROOT)} missing"

    def build_wasm(self):
        target = Path(os.environ.get("CARGO_TARGET_DIR") or RUST_DIR / "target")
        env = dict(os.environ, CARGO_TARGET_DIR=str(target))
        proc = run([CARGO_WASM, "build", "--release", "--quiet", "--bins"], env=env,
                   cwd=RUST_DIR, timeout=1800)
        if proc.returncode != 0 and "cargo-wasm: error:" in proc.stderr:
            # No Rust toolchain for wasm32-wasip1 here: a missing tool.
            raise Unavailable(proc.stderr.strip().splitlines()[-1])
        if proc.returncode != 0:
            raise BenchError(f"wisp-rust: cargo-wasm build failed (exit {proc.returncode}):\n"
                             f"{tail(proc.stderr or proc.stdout, 20)}")
        for g in self.guests:
            # A copy: a rebuild during the run must not change what runs.
            self.wasm[g] = self.dir / f"{g}.wasm"
            shutil.copyfile(target / "wasm32-wasip1" / "release" / f"{g}.wasm", self.wasm[g])


# --------------------------------------------------------------------------
# running, under the memory guard

def memory_guard(what):
    """A watch for run_watched/read_line_with: raises MemoryAbort once the
    RSS of the process tree passes ABORT_SHARE of the memory available now,
    or the machine's available memory falls below LOW_SHARE of that (others
    on a shared machine may be growing too)."""
    avail = mem_available()
    limit = ABORT_SHARE * avail if avail else float("inf")

    def watch(pid):
        rss = tree_rss_bytes(pid)
        if rss > limit:
            raise MemoryAbort(f"{what}: stopped: RSS {rss / 2**30:.1f} GiB passed "
                              f"{ABORT_SHARE * 100:g}% of the {avail / 2**30:.1f} GiB available")
        now = mem_available()
        if avail and now < LOW_SHARE * avail:
            raise MemoryAbort(f"{what}: stopped at RSS {rss / 2**30:.1f} GiB: the machine has "
                              f"{now / 2**30:.1f} GiB left of {avail / 2**30:.1f} GiB")
    return watch


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
    proc = run_watched(impl.cmd(workload, args, procs), memory_guard(what), env=impl.env,
                       timeout=timeout)
    if proc.returncode != 0:
        raise BenchError(f"{what} exited {proc.returncode}:\n{tail(proc.stderr + proc.stdout)}")
    return parse_result(proc.stdout, what)


class Live:
    """A program started in a session of its own, its stdout read line by
    line under the memory guard; stopped (whole session) on leaving."""

    def __init__(self, impl, workload, args, procs, hib, what):
        self.what = what
        cmd = [str(c) for c in impl.cmd(workload, args, procs, hib)]
        self.guard = memory_guard(what)
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(cmd, env=impl.env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     start_new_session=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        stop(self.proc)

    def line(self, needle, timeout):
        """The next line containing needle. The last `PROGRESS what=K` line
        before it is remembered: a run that fails or is stopped says how far
        it got."""
        progress = []

        def seen(line):
            if line.startswith("PROGRESS "):
                progress[:] = [line.split(None, 1)[1], time.perf_counter() - self.t0]
        try:
            return read_line_with(self.proc, needle, timeout, self.what,
                                  watch=lambda: self.guard(self.proc.pid), on_line=seen)
        except BenchError as e:
            where = f"after {time.perf_counter() - self.t0:.1f} s"
            if progress:
                where += f"; last progress: {progress[0]} after {progress[1]:.1f} s"
            raise type(e)(f"{e} [{where}]") from e

    def alive(self):
        if self.proc.poll() is not None:
            raise BenchError(f"{self.what} exited {self.proc.returncode} after READY")

    def rss(self):
        self.alive()
        return tree_rss_bytes(self.proc.pid)


def settled_rss(live, t_ready, wait):
    """RSS once `wait` seconds have passed since READY and it has stopped
    falling (less than 1% down over half a second); returns (bytes, seconds
    after READY)."""
    time.sleep(max(0.0, t_ready + wait - time.perf_counter()))
    last = live.rss()
    while time.perf_counter() - t_ready < HIB_SETTLE_MAX_S:
        time.sleep(0.5)
        live.guard(live.proc.pid)
        now = live.rss()
        if now > 0.99 * last:
            return now, time.perf_counter() - t_ready
        last = now
    return last, time.perf_counter() - t_ready


def idle_run(impl, n, hib, timeout, hib_wait=HIB_WAIT_S):
    """Starts the idle workload with n processes, waits for READY, reads the
    RSS of the OS process tree (hibernated: once settled, at least hib_wait
    seconds after READY), kills it. Returns (rss bytes, seconds from start
    to READY, and for hib the seconds from READY until the RSS settled)."""
    with Live(impl, "idle", [n], n, hib, f"{impl.name} idle {n}{' hibernated' if hib else ''}") \
            as live:
        live.line("READY", timeout)
        t_ready = time.perf_counter()
        settled = None
        if hib:
            rss, settled = settled_rss(live, t_ready, hib_wait)
        else:
            time.sleep(RSS_SETTLE_S)
            rss = live.rss()
        return rss, t_ready - live.t0, settled


def sleepers_run(impl, n, secs, timeout):
    """CPU seconds of the OS process tree from READY to RESULT, and the
    RESULT's wake-up count."""
    what = f"{impl.name} sleepers {n} {secs}"
    with Live(impl, "sleepers", [n, secs], n, False, what) as live:
        live.line("READY", timeout)
        cpu0 = tree_cpu_s(live.proc.pid)
        line = live.line("RESULT", timeout)
        cpu1 = tree_cpu_s(live.proc.pid)
        live.alive()
    f = parse_result(line, what)
    expect(f, what, n=n, secs=secs)
    return cpu1 - cpu0, int(f["wakeups"])


# --------------------------------------------------------------------------
# the workloads

def expect(fields, what, **want):
    for k, v in want.items():
        if fields.get(k) != str(v):
            raise BenchError(f"{what}: wrong result: {k}={fields.get(k)}, expected {v}")


class Row:
    """One line of the table: the figure under `key` of a workload's
    samples, and targets per column: [(column, limit)] where limit is a
    number (at most that) or the name of a peer column (at most its
    figure)."""

    def __init__(self, label, unit, key, targets=()):
        self.label, self.unit, self.key, self.targets = label, unit, key, list(targets)


class Workload:
    """name (--only); the program it runs; its arguments; how many
    processes at once; how to measure ("timed": RESULT fields; "idle": RSS
    per process; "sleepers": CPU per wake-up); a checker of RESULT fields;
    its rows; whether the hibernated variant runs; whether the best or the
    median of the runs counts."""

    def __init__(self, name, args, procs, rows, kind="timed", prog=None, check=None, hib=False,
                 hib_wait=HIB_WAIT_S):
        self.name, self.args, self.procs, self.rows = name, args, procs, rows
        self.kind, self.prog, self.check, self.hib = kind, prog or name, check, hib
        self.hib_wait = hib_wait
        self.best = kind == "timed"


def skynet_check(f, args):
    n = args[0]
    expect(f, "skynet", leaves=n, sum=n * (n - 1) // 2)


def hib_wait(size):
    return HIB_WAIT_TINY_S if size == "tiny" else HIB_WAIT_S


def k(n):
    return f"{n // 1000}k" if n >= 1000 else str(n)


def workloads(size):
    """The workloads at size "full", "quick" or "tiny" (the smoke test's:
    checks that everything runs; the figures mean nothing)."""
    pick = lambda full, quick, tiny: {"full": full, "quick": quick, "tiny": tiny}[size]
    spawn_n = pick(200_000, 50_000, 2_000)
    idle_n = pick(100_000, 100_000, 2_000)
    pp_n = pick(300_000, 50_000, 2_000)
    ring_p, ring_m = pick((10_000, 1_000_000), (10_000, 100_000), (1_000, 10_000))
    leaves = pick(1_000_000, 100_000, 1_000)
    sl_n, sl_s = pick((100_000, 10), (10_000, 3), (200, 1))
    hw_k, hw_p = pick((10_000, 5), (2_000, 3), (200, 2))
    both_beam = lambda: [("wisp-c", "erlang"), ("wisp-rust", "erlang")]
    return [
        Workload("spawn", [spawn_n], spawn_n,
                 [Row(f"spawn+exit ({k(spawn_n)})", "us", "spawn_us",
                      [("wisp-c", SPAWN_TARGET_C), ("wisp-rust", SPAWN_TARGET_RUST),
                       *both_beam()])],
                 check=lambda f, a: expect(f, "spawn", n=a[0])),
        Workload("idle", [idle_n], idle_n,
                 [Row(f"idle process ({k(idle_n)})", "bytes", "rss",
                      [("wisp-c", IDLE_TARGET_C), ("wisp-rust", IDLE_TARGET_RUST)])],
                 kind="idle"),
        Workload("idlehib", [idle_n], idle_n,
                 [Row(f"idle, hibernated ({k(idle_n)})", "bytes", "rss", both_beam())],
                 kind="idle", prog="idle", hib=True, hib_wait=hib_wait(size)),
        Workload("pingpong", [pp_n], 2,
                 [Row(f"ping-pong round trip ({k(pp_n)})", "us", "pingpong_us",
                      [("wisp-c", "erlang")])],
                 check=lambda f, a: expect(f, "pingpong", n=a[0])),
        Workload("ring", [ring_p, ring_m], ring_p,
                 [Row(f"ring hop ({k(ring_p)} procs, {k(ring_m)} hops)", "us", "ring_hop_us")],
                 check=lambda f, a: expect(f, "ring", procs=a[0], hops=a[1], last=a[1] % a[0])),
        Workload("skynet", [leaves], leaves * 10 // 9 + 1,
                 [Row(f"skynet ({k(leaves)} leaves)", "s", "skynet_s", [("wisp-c", "erlang")])],
                 check=skynet_check),
        Workload("sleepers", [sl_n, sl_s], sl_n,
                 [Row(f"sleepers: CPU per wake-up ({k(sl_n)}, {sl_s} s)", "us", "cpu_us",
                      both_beam()),
                  Row(f"sleepers: mean period (nominal {SLEEP_PERIOD_S * 1e3:.0f})", "ms",
                      "period_ms")],
                 kind="sleepers"),
        Workload("hibwake", [hw_k, hw_p], hw_k,
                 [Row(f"round trip to a waiting process ({k(hw_k)})", "us", "awake_us"),
                  Row(f"wake from hibernation + round trip ({k(hw_k)})", "us", "hib_us")],
                 check=lambda f, a: expect(f, "hibwake", k=a[0], passes=a[1])),
    ]


def measure(wl, impls, runs, timeout, idle_seen, notes):
    """Returns ({impl: {key: figure}}, [errors]). Runs are interleaved across
    impls. idle_seen: {impl: bytes per idle process} from an earlier idle
    row; an idle run whose projected RSS would not fit comfortably in the
    machine's available memory is skipped with a note rather than risking
    the OOM killer on a shared machine."""
    impls = [i for i in impls if i.supports(wl.prog)
             and not (wl.hib and i.name == "go")]
    samples = {i.name: {} for i in impls}
    errors, failed = [], set()
    label = wl.rows[0].label
    if wl.kind == "idle":
        for impl in impls:
            per = idle_seen.get(impl.name)
            need = per * wl.args[0] if per else 0
            if need > SKIP_SHARE * mem_available():
                failed.add(impl.name)
                notes.append(f"{label}, {impl.name}: skipped: would need ~{need / 2**30:.1f}"
                             f" GiB at {per:.0f} bytes/process; "
                             f"{mem_available() / 2**30:.1f} GiB available")
    for _ in range(runs):
        for impl in impls:
            if impl.name in failed:
                continue
            try:
                got = measure_once(wl, impl, timeout, notes)
            except MemoryAbort as e:
                failed.add(impl.name)
                notes.append(f"{label}: {e}")
                continue
            except BenchError as e:
                failed.add(impl.name)
                errors.append(f"{label}: {e}")
                continue
            for key, v in got.items():
                samples[impl.name].setdefault(key, []).append(v)
    figures = {}
    for name, by_key in samples.items():
        if by_key and name not in failed:
            pick = min if wl.best else statistics.median
            figures[name] = {key: pick(xs) for key, xs in by_key.items()}
    return figures, errors


def measure_once(wl, impl, timeout, notes):
    """One run of wl on impl: {row key: figure}."""
    if wl.kind == "idle":
        n = wl.args[0]
        base, _, _ = idle_run(impl, 0, wl.hib, timeout, wl.hib_wait)
        full, ready, _ = idle_run(impl, n, wl.hib, timeout, wl.hib_wait)
        if impl.name.startswith("wisp") and not wl.hib and ready > DEFAULT_HIBERNATE_S:
            notes.append(f"{wl.rows[0].label}, {impl.name}: READY after {ready:.1f} s: processes"
                         f" up longer than {DEFAULT_HIBERNATE_S:.0f} s (the default"
                         f" --hibernate-after) may have hibernated")
        return {"rss": (full - base) / n}
    if wl.kind == "sleepers":
        n, secs = wl.args
        cpu, wakeups = sleepers_run(impl, n, secs, timeout + secs)
        nominal = n * secs / SLEEP_PERIOD_S
        if wakeups <= 0:
            raise BenchError(f"{impl.name} sleepers: no wake-ups")
        if wakeups < MIN_WAKE_SHARE * nominal:
            notes.append(f"{wl.rows[0].label}, {impl.name}: only {wakeups / nominal:.0%} of the "
                         f"nominal {nominal:.0f} wake-ups: it fell behind")
        return {"cpu_us": cpu / wakeups * 1e6, "period_ms": n * secs / wakeups * 1e3}
    f = timed_run(impl, wl.prog, wl.args, wl.procs, timeout)
    wl.check(f, wl.args)
    return {row.key: float(f[row.key]) for row in wl.rows}


# --------------------------------------------------------------------------
# the million modes

def million_runs(impls, size):
    """(impl, N, hibernated?, target text) for the million table:
    1M Rust-guest and 2M C-guest processes with wisp's defaults and
    hibernated, and BEAM (also hibernated) and Go at both sizes (--tiny:
    1k and 2k, no peers: their rows run the same code as wisp's)."""
    one, two = {"tiny": (1_000, 2_000)}.get(size, (1_000_000, 2_000_000))
    by = {i.name: i for i in impls}
    out = []
    for name, n, target in [("wisp-rust", one, f"ready <= {MILLION_READY_TARGET_S:.0f} s"),
                            ("wisp-c", two, "runs")]:
        if name in by:
            out += [(by[name], n, False, target), (by[name], n, True, target)]
    for n in () if size == "tiny" else (one, two):
        if "erlang" in by:
            out += [(by["erlang"], n, False, ""), (by["erlang"], n, True, "")]
        if "go" in by:
            out.append((by["go"], n, False, ""))
    return out


def million(impls, size, timeout, idle_seen, notes):
    """Runs the million modes; returns the table's rows. A run that fails
    (wisp's own error, e.g. a kernel limit, or the memory guard) is a row
    with its message, not an error."""
    rows = []
    for impl, n, hib, target in million_runs(impls, size):
        label = impl.name + (" hibernated" if hib else "")
        flags = (f"--hibernate-after {HIBERNATE_AFTER}" if impl.name.startswith("wisp")
                 else "erlang:hibernate/3") if hib else "defaults"
        print(f"  {label}, {n:,} idle ...", end="", flush=True)
        per_seen = idle_seen.get((impl.name, hib)) or idle_seen.get((impl.name, False))
        need = per_seen * n if per_seen else 0
        if need > SKIP_SHARE * mem_available():
            msg = (f"skipped: would need ~{need / 2**30:.1f} GiB at {per_seen:.0f} bytes/process;"
                   f" {mem_available() / 2**30:.1f} GiB available")
            print(" " + msg)
            rows.append([label, f"{n:,}", flags, "-", "-", "-", target,
                         "skipped" if target else ""])
            notes.append(f"million, {label}: {msg}")
            continue
        try:
            base, _, _ = idle_run(impl, 0, hib, timeout, hib_wait(size))
            full, ready, settled = idle_run(impl, n, hib, timeout, hib_wait(size))
        except BenchError as e:
            status = "aborted" if isinstance(e, MemoryAbort) else "FAILED"
            print(f" {status}")
            rows.append([label, f"{n:,}", flags, "-", "-", "-", target,
                         status if target else status.lower()])
            notes.append(f"million, {label}, {n:,}: {status}: {e}")
            continue
        per = (full - base) / n
        status = ("met" if not target.startswith("ready") or ready <= MILLION_READY_TARGET_S
                  else "MISSED") if target else ""
        print(f" ready {ready:.1f} s, {full / 2**30:.2f} GiB, {per:.0f} bytes/process"
              + (f" (RSS settled {settled:.1f} s after READY)" if hib else ""))
        rows.append([label, f"{n:,}", flags, f"{ready:.2f}", f"{full / 2**30:.2f}",
                     f"{per:.0f}", target, status])
    return rows


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

SHORT = {"wisp-c": "C", "wisp-rust": "Rust", "erlang": "erlang", "go": "go"}


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


def fmt_limit(limit, unit):
    if isinstance(limit, str):
        return limit
    if unit == "bytes":
        return f"{limit / KIB:g} KiB"
    return f"{limit:g} {unit}"


def target_text(row, figs):
    """(target column, status column) for one row: per wisp column, its
    limits, and met/MISSED for the columns measured."""
    if not row.targets:
        return "", ""
    cols = []
    for col, limit in row.targets:
        if col not in cols:
            cols.append(col)
    texts, status = [], []
    for col in cols:
        limits = [l for c, l in row.targets if c == col]
        texts.append(f"{SHORT[col]} <= " + " & ".join(fmt_limit(l, row.unit) for l in limits))
        mine = figs.get(col)
        if mine is None:
            continue
        bounds = [figs.get(l) if isinstance(l, str) else l for l in limits]
        if any(b is None for b in bounds):
            status.append(f"{SHORT[col]} ?")
        else:
            ok = all(mine <= b for b in bounds)
            status.append(f"{SHORT[col]} {'met' if ok else 'MISSED'}")
    return "; ".join(texts), ", ".join(status) or "-"


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


def parse_impls(ap, text):
    """--impls: the column names, `wisp` standing for both wisp columns."""
    names = []
    for n in text.split(","):
        for m in (["wisp-c", "wisp-rust"] if n == "wisp" else [n]):
            if m not in IMPLS:
                ap.error(f"--impls: choose from wisp,{','.join(IMPLS)}")
            if m not in names:
                names.append(m)
    return names


# --------------------------------------------------------------------------

def main():
    global ABORT_SHARE
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=None,
                    help="runs per implementation and workload (default 3; --quick: 1)")
    ap.add_argument("--quick", action="store_true", help="smaller sizes, one run each")
    ap.add_argument("--tiny", action="store_true",
                    help="tiny sizes, one run each: checks that everything runs (the smoke "
                         "test); the figures mean nothing")
    ap.add_argument("--only", help="comma-separated workloads: "
                    + ",".join(WORKLOADS + ["fiber", "million"]))
    ap.add_argument("--million", action="store_true",
                    help="also the million modes: 1M idle Rust-guest and 2M idle C-guest "
                         "processes (and BEAM and Go at those sizes)")
    ap.add_argument("--impls", default=",".join(IMPLS),
                    help="comma-separated columns to run (default: wisp-c,wisp-rust,erlang,go;"
                         " wisp = both wisp columns)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per program run")
    ap.add_argument("--abort-share", type=float, default=ABORT_SHARE,
                    help="stop a run whose RSS passes this share of the memory available "
                         f"when it started (default {ABORT_SHARE})")
    ap.add_argument("--tier", default="opt", choices=["opt", "fast"],
                    help="wisp's compile tier (default opt)")
    ap.add_argument("--wisp", default=os.environ.get("WISP_BIN", str(ROOT / "wisp")))
    ap.add_argument("--wisp-arg", action="append", default=[],
                    help="extra argument for `wisp run` (repeatable)")
    args = ap.parse_args()
    size = "tiny" if args.tiny else "quick" if args.quick else "full"
    runs = args.runs if args.runs is not None else (3 if size == "full" else 1)
    if runs < 1:
        ap.error("--runs must be at least 1")
    if not 0 < args.abort_share <= 1:
        ap.error("--abort-share must be in (0, 1]")
    ABORT_SHARE = args.abort_share
    wanted_impls = parse_impls(ap, args.impls)
    wls = workloads(size)
    do_million, do_fiber = args.million, True
    if args.only:
        only = set(args.only.split(","))
        bad = only - set(WORKLOADS) - {"fiber", "million"}
        if bad:
            ap.error(f"--only: no such workload: {','.join(sorted(bad))}")
        wls = [w for w in wls if w.name in only]
        do_million = do_million or "million" in only
        do_fiber = "fiber" in only
    args.wisp = str(Path(args.wisp).resolve())
    missing = []
    if any(i.startswith("wisp") for i in wanted_impls):
        if "wisp-c" in wanted_impls and not shutil.which(CLANG):
            missing.append(CLANG)
        if not Path(args.wisp).exists():
            missing.append(f"{args.wisp} (run `make`)")
    if missing:
        print("bench/proc_run.py: missing: " + ", ".join(missing), file=sys.stderr)
        return 2

    print(f"wisp process bench -- {machine_note()}, "
          f"{mem_available() / 2**30:.1f} GiB available")
    errors, notes = [], []
    with tempfile.TemporaryDirectory(prefix="wisp-procbench-") as tmp:
        work = Path(tmp)
        all_impls = {"wisp-c": WispC(work, args.wisp, args.wisp_arg, args.tier),
                     "wisp-rust": WispRust(work, args.wisp, args.wisp_arg, args.tier),
                     "erlang": Erlang(work), "go": Go(work)}
        impls = [all_impls[n] for n in IMPLS if n in wanted_impls]
        print("building: " + ", ".join(i.name for i in impls if not i.unavailable) + " ...",
              flush=True)
        live = build_impls(impls, errors, notes)
        print(f"peers: {versions(impls) or 'none'}")

        rows, idle_seen, wake = [], {}, {}
        for wl in wls:
            print(f"  {wl.rows[0].label} ...", end="", flush=True)
            figs, errs = measure(wl, live, runs, args.timeout, idle_seen, notes)
            errors += errs
            for i, row in enumerate(wl.rows):
                col = {name: f[row.key] for name, f in figs.items() if row.key in f}
                if i:
                    print(f"  {row.label}:", end="")
                if wl.kind == "idle":
                    idle_seen.update({name: v for name, v in col.items() if not wl.hib})
                    idle_seen.update({(name, wl.hib): v for name, v in col.items()})
                if wl.name == "hibwake":
                    wake[row.key] = col
                print(" " + ", ".join(f"{n} {fmt(v, row.unit)}" for n, v in col.items())
                      + (" (errors)" if errs else ""), flush=True)
                tgt, status = target_text(row, col)
                g = lambda n: col.get(n)
                rows.append([row.label, row.unit, *(fmt(g(n), row.unit) for n in IMPLS),
                             fmt_r(g("wisp-c"), g("erlang")), fmt_r(g("wisp-rust"), g("erlang")),
                             fmt_r(g("wisp-c"), g("go")), fmt_r(g("wisp-rust"), g("go")),
                             tgt, status])
        million_rows = None
        if do_million:
            print("million modes:", flush=True)
            million_rows = million(live, size, max(args.timeout, 1800), idle_seen, notes)
        fiber = None
        if "wisp-c" in wanted_impls and do_fiber:
            fiber = fiber_switch(work, runs)

    print()
    stat = "best" if runs > 1 else "one run"
    if rows:
        print(f"Processes: wisp (C and Rust guests) vs BEAM vs Go (times: {stat} of {runs};"
              f" memory and CPU per wake-up: median of {runs}; lower is better)")
        table(rows, ["workload", "unit", *IMPLS, "C/erl", "Rust/erl", "C/go", "Rust/go",
                     "target", ""])
    if million_rows:
        if rows:
            print()
        print("Million idle processes (ready: seconds from start to READY; RSS: the whole tree;"
              " per process: minus a run with none, / N)")
        table(million_rows, ["run", "processes", "settings", "ready s", "RSS GiB",
                             "bytes/process", "target", ""])
    if isinstance(fiber, float):
        print(f"fiber switch (src/sched, native, no scheduler): {fiber:.1f} ns one-way, "
              f"{2 * fiber:.1f} ns round trip")
    elif fiber:
        notes.append(f"fiber switch: not measured: {fiber}")
    for name in ("wisp-c", "erlang"):
        a, h = wake.get("awake_us", {}).get(name), wake.get("hib_us", {}).get(name)
        if a is not None and h is not None:
            print(f"{name}: hibernating adds {h - a:.2f} us to a round trip ({h:.2f} vs {a:.2f})")
    if any(w.kind == "idle" for w in wls):
        print("idle = OS RSS of the whole process tree with N idle processes minus with none, / N;"
              f" hibernated: wisp --hibernate-after {HIBERNATE_AFTER}, BEAM erlang:hibernate/3,"
              f" read >= {hib_wait(size):g} s after READY once the RSS stopped falling.")
    for n in notes:
        print(f"note: {n}")
    for e in errors:
        print(f"ERROR: {e}", file=sys.stderr)
    if errors:
        print(f"{len(errors)} error(s): the figures above are incomplete or wrong")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
