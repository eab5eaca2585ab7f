#!/usr/bin/env python3
"""What the runtime's figures cost: the ping-pong and spawn benches with
counting compiled out, with it (the default build), and with --metrics on
and scraped, interleaved in one run; and what a scrape costs with many
processes alive.

    python3 bench/metrics_run.py [--quick] [--runs N] [--million]
                                 [--scrape-every SECONDS] [--wisp BIN]

Columns (bench/proc/c/pingpong.c and spawn.c, `wisp run --tier opt`):
  no counters  a wisp built with `make STATS=0` (build/default-nostats/:
               every counter compiled out), built by this script;
  counters     the wisp under test, as every run has it (no --metrics);
  metrics on   the same with --metrics 127.0.0.1:0 and a client scraping
               /metrics every --scrape-every seconds (0.1 by default: 150
               times as often as Prometheus's usual 15 s; the client runs
               on the same machine, so on 2 cores its own CPU counts too)
               for the whole run;
  erlang       BEAM running bench/proc/erlang/procbench.erl, beside.
Ratios are against "no counters" (1.00x: no cost); the best of --runs
interleaved runs is kept for each column.

Instructions (when valgrind is installed): times on a shared 2-core
machine move by 20% from run to run, more than counting costs, so the
same two workloads also run under callgrind (`--schedulers 1`) at N and
2N with and without counting; (I(2N) - I(N)) / N is the instructions one
spawn+exit or one round trip executes, start-up excluded. That figure
does not move with the machine's load.

Scrapes: `idle N` (bench/proc/c/idle.c) with N = 1,000 and 100,000
processes (and 1,000,000 with --million), hibernating after 500 ms, under
--metrics; 2 s after READY, the median time of 50 GETs of /metrics and of
5 runs of `wisp stats --once` (a whole command each). The scrape
reads per-scheduler counters and the pools' books, never the processes,
so it should not grow with N.

Exit status 0 when everything ran, 1 on a failure, 2 on bad usage or a
missing tool.
"""
import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (CLANG, ROOT, BenchError, build_c_guest, check, machine_note, run,  # noqa: E402
                     stop, table, tail, wisp_compile, wisp_env)

PROC = ROOT / "bench" / "proc"
RESULT = re.compile(r"RESULT (\w+)=([\d.]+)")
METRICS_LINE = re.compile(rb"wisp: metrics at http://127\.0\.0\.1:(\d+)/metrics")


def get(port, path="/metrics"):
    """One GET; the body (raises on anything but 200)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as c:
        c.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
        chunks = []
        while (b := c.recv(65536)):
            chunks.append(b)
    raw = b"".join(chunks)
    if not raw.startswith(b"HTTP/1.1 200 "):
        raise BenchError(f"GET {path}: {raw[:200]!r}")
    return raw


def wait_port(proc, what, timeout=120):
    """The metrics port a run says on stderr."""
    buf, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        chunk = os.read(proc.stderr.fileno(), 4096)
        if not chunk:
            raise BenchError(f"{what}: ended before its metrics were up: {buf[-500:]!r}")
        buf += chunk
        m = METRICS_LINE.search(buf)
        if m:
            return int(m.group(1))
    raise BenchError(f"{what}: no metrics line after {timeout} s")


class Scraper(threading.Thread):
    """GETs /metrics of proc every `every` seconds until stopped or proc
    ends; counts them (a failure while proc runs is an error)."""

    def __init__(self, proc, port, every):
        super().__init__(daemon=True)
        self.proc, self.port, self.every, self.done, self.error = proc, port, every, 0, None
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            try:
                get(self.port)
                self.done += 1
            except (OSError, BenchError) as e:
                time.sleep(0.5)   # (ending, and so refusing? then it is no error)
                if not self.halt.is_set() and self.proc.poll() is None:
                    self.error = e
                return
            self.halt.wait(self.every)


def timed(cmd, env, key, scrape_every=None):
    """Runs a bench guest; its RESULT figure (and the scrapes made)."""
    what = " ".join(map(str, cmd))
    p = subprocess.Popen([str(c) for c in cmd], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    scraper = None
    try:
        if scrape_every is not None:
            scraper = Scraper(p, wait_port(p, what), scrape_every)
            scraper.start()
        out, err = p.communicate(timeout=600)
    finally:
        if scraper:
            scraper.halt.set()
            scraper.join()
        stop(p)
    out, err = out.decode(errors="replace"), err.decode(errors="replace")
    if p.returncode != 0:
        raise BenchError(f"{what}: exit {p.returncode}:\n{tail(err + out)}")
    fields = dict(RESULT.findall(out))
    if key not in fields:
        raise BenchError(f"{what}: no {key}:\n{tail(out + err)}")
    if scraper and scraper.error:
        raise BenchError(f"{what}: a scrape failed: {scraper.error}")
    return float(fields[key]), scraper.done if scraper else 0


def instructions(wisp, wasm, env, n, tmp):
    """Instructions the whole run of `wasm n` executes under callgrind."""
    out = tmp / "callgrind.out"
    r = run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", wisp, "run",
             "--tier", "opt", "--schedulers", "1", wasm, n], env=env, timeout=1800)
    m = re.search(r"Collected : (\d+)", r.stderr)
    if r.returncode != 0 or not m:
        raise BenchError(f"callgrind {wasm} {n}: exit {r.returncode}:\n{tail(r.stderr)}")
    return int(m.group(1))


def instructions_per_op(builds, wasm, envs, tmp):
    """{(workload, build): instructions per operation}."""
    out = {}
    for label, g, n in (("spawn+exit", "spawn", 5_000), ("ping-pong round trip", "pingpong", 20_000)):
        for name, w in builds.items():
            i1 = instructions(w, wasm[g], envs[w], n, tmp)
            i2 = instructions(w, wasm[g], envs[w], 2 * n, tmp)
            out[(label, name)] = (i2 - i1) / n
    return out


def scrape_costs(wisp, wasm, env, sizes, gets=50):
    """{N: (median ms of a GET /metrics, median ms of wisp stats --once)}."""
    out = {}
    for n in sizes:
        what = f"idle {n}"
        # (Hibernating: a million awake C processes would need ~14 GB.)
        p = subprocess.Popen([wisp, "run", "--tier", "opt", "--hibernate-after", "500ms",
                              "--metrics", "127.0.0.1:0", str(wasm), str(n)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True)
        try:
            port = wait_port(p, what)
            deadline = time.monotonic() + 1200
            line = b""
            while b"READY" not in line:
                line = p.stdout.readline()
                if not line or time.monotonic() > deadline:
                    raise BenchError(f"{what}: no READY")
            time.sleep(2)   # (hibernation done: only the scrapes run)
            body = get(port)
            alive = int(re.search(rb"\nwisp_processes (\d+)", body).group(1))
            if alive != n + 1:
                raise BenchError(f"{what}: the metrics say {alive} processes, not {n + 1}")
            ms = []
            for _ in range(gets):
                t0 = time.perf_counter()
                get(port)
                ms.append((time.perf_counter() - t0) * 1e3)
            st = []
            for _ in range(5):
                r = run([wisp, "stats", "--once", str(p.pid)], env=env)
                if r.returncode != 0:
                    raise BenchError(f"wisp stats: {r.stderr}")
                st.append(r.wall * 1e3)
            out[n] = (statistics.median(ms), statistics.median(st))
        finally:
            stop(p)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="smaller workloads, 2 runs")
    ap.add_argument("--million", action="store_true", help="also scrape at 1M processes")
    ap.add_argument("--scrape-every", type=float, default=0.1)
    ap.add_argument("--wisp", default=os.environ.get("WISP_BIN", str(ROOT / "wisp")))
    args = ap.parse_args()
    if not shutil.which(CLANG) or not Path(args.wisp).exists():
        print("bench/metrics_run.py: missing clang or wisp (run `make`)", file=sys.stderr)
        return 2
    runs = 2 if args.quick else args.runs
    spawn_n, pp_n = (20_000, 50_000) if args.quick else (200_000, 500_000)
    wisp = str(Path(args.wisp).resolve())
    check(["make", "-C", ROOT, "-j2", "STATS=0"], "make STATS=0", timeout=1800)
    bare = str(ROOT / "build" / "default-nostats" / "wisp")
    beam = shutil.which("erl") and shutil.which("erlc")
    with tempfile.TemporaryDirectory(prefix="wisp-metricsbench-") as tmp:
        tmp = Path(tmp)
        wasm = {}
        for g in ("pingpong", "spawn", "idle"):
            wasm[g] = tmp / f"{g}.wasm"
            build_c_guest([PROC / "c" / f"{g}.c"], wasm[g], f"{g}.c", includes=[PROC / "c"])
        # Each wisp signs its cache with its own build: a cache each.
        envs = {w: wisp_env(tmp / f"cache-{i}") for i, w in enumerate((bare, wisp))}
        for w in (bare, wisp):
            for g in wasm:
                if wisp_compile(w, wasm[g], envs[w]).returncode != 0:
                    raise BenchError(f"{w}: cannot compile {g}")
        if beam:
            check(["erlc", "-o", tmp, PROC / "erlang" / "procbench.erl"], "erlc")
        # (label, guest, N, RESULT key, wisp's and erl's extra options)
        workloads = [("spawn+exit", "spawn", spawn_n, "spawn_us", [], []),
                     ("ping-pong round trip", "pingpong", pp_n, "pingpong_us", [], []),
                     ("ping-pong, 1 scheduler", "pingpong", pp_n, "pingpong_us",
                      ["--schedulers", "1"], ["+S", "1"])]
        cols = ["no counters", "counters", "metrics on"] + (["erlang"] if beam else [])
        best = {(w, c): float("inf") for w, *_ in workloads for c in cols}
        scrapes = 0
        for _ in range(runs):
            for label, g, n, key, wopts, eopts in workloads:
                for col in cols:
                    if col == "erlang":
                        cmd = ["erl", "-noshell", *eopts, "-pa", tmp, "-run", "procbench", "main",
                               g, str(n)]
                        v, _ = timed(cmd, None, key)
                    else:
                        w = bare if col == "no counters" else wisp
                        extra = ["--metrics", "127.0.0.1:0"] if col == "metrics on" else []
                        v, k = timed([w, "run", "--tier", "opt", *wopts, *extra, wasm[g], n],
                                     envs[w], key, args.scrape_every if extra else None)
                        scrapes += k
                    best[(label, col)] = min(best[(label, col)], v)
        sizes = [1_000, 100_000] + ([1_000_000] if args.million else [])
        costs = scrape_costs(wisp, wasm["idle"], envs[wisp], sizes)
        per_op = instructions_per_op({"no counters": bare, "counters": wisp}, wasm, envs,
                                     tmp) if shutil.which("valgrind") else None
    print(machine_note())
    rows = []
    for label, g, n, key, *_ in workloads:
        base = best[(label, "no counters")]
        row = [f"{label} ({n // 1000}k), us"]
        row += [f"{best[(label, c)]:.3f}" for c in cols]
        row += [f"{best[(label, 'counters')] / base:.2f}x",
                f"{best[(label, 'metrics on')] / base:.2f}x"]
        rows.append(row)
    table(rows, ["", *cols, "counters/none", "metrics on/none"])
    print(f"(best of {runs} interleaved runs; 'metrics on' was scraped every "
          f"{args.scrape_every:g} s: {scrapes} scrapes in all)")
    print()
    if per_op is None:
        print("note: no valgrind: no instruction counts")
    else:
        table([[label, f"{per_op[(label, 'no counters')]:.0f}", f"{per_op[(label, 'counters')]:.0f}",
                f"{per_op[(label, 'counters')] - per_op[(label, 'no counters')]:+.0f}",
                f"{per_op[(label, 'counters')] / per_op[(label, 'no counters')]:.3f}x"]
               for label in ("spawn+exit", "ping-pong round trip")],
              ["instructions per operation", "no counters", "counters", "more", "ratio"])
        print("(callgrind, --schedulers 1: (I(2N) - I(N)) / N)")
    print()
    table([[f"{n:,} processes alive", f"{costs[n][0]:.2f}", f"{costs[n][1]:.1f}"]
           for n in sizes], ["", "GET /metrics, ms", "wisp stats --once, ms"])
    print("(medians: 50 GETs, 5 runs of wisp stats, a whole command each)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"bench/metrics_run.py: {e}", file=sys.stderr)
        sys.exit(1)
