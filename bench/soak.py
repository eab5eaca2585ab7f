#!/usr/bin/env python3
"""wisp's churn soak (issue 7 step 5): a supervisor tree under constant churn
for a set time, with exact message accounting and the OS RSS sampled.

    python3 bench/soak.py [--duration 60] [--groups 8] [--workers 16]
                          [--crash-permille 10] [--seed 1] [--rss-growth-max 20]

The guest (bench/soak/soak.c, see its header) runs a top supervisor trapping
exits, --groups group supervisors each keeping --workers workers alive
(restarting the ones that crash), a tally process and a counter process.
Workers exchange acked DATA messages with siblings, make requests to the
counter, spawn short-lived helpers that send them a message, and crash
(__builtin_trap) with probability --crash-permille/1000 per step. Every
counted message is counted by sender and receiver; messages lost to a dead
receiver are counted by the sender as drops (unacked when the peer's DOWN
arrives). The guest prints a STAT line every 2 s and a RESULT line at the end.

The harness builds the guest (clang --target=wasm32-wasi -O2), compiles it
with `wisp compile --tier opt` into a private cache (WISP_CACHE_DIR,
WISP_BACKGROUND_COMPILE=0), runs `wisp run --tier opt`, samples VmRSS of the
wisp process every second, and reports RSS over time: the samples after a
warm-up (--warmup, default min(60 s, duration/5)): start, end, min, max and
the least-squares slope; growth = end-window median / start-window median
(each window 10% of the post-warm-up samples, at least 3).

Exit status: 0 if the run ended normally, the messages balance exactly
(sent == received + drops for every kind, no process unaccounted) and RSS
growth after warm-up is at most --rss-growth-max percent; 1 otherwise; 2 on
bad usage or missing clang/wisp.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from harness import CLANG, ROOT, BenchError, build_c_guest, rss_bytes, wisp_compile, wisp_env

GUEST = ROOT / "bench" / "soak" / "soak.c"


def smaps_rss(pid):
    """RSS in KiB by mapping ("start-end name") of pid, from /proc/pid/smaps."""
    out, cur = {}, None
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                first = line.split(None, 1)[0]
                if "-" in first and not first.endswith(":"):
                    parts = line.split()
                    cur = f"{parts[0]} {parts[5] if len(parts) > 5 else '[anon]'}"
                elif first == "Rss:" and cur is not None:
                    out[cur] = int(line.split()[1])
    except OSError:
        return {}
    return out


def rss_kib(pid):
    b = rss_bytes(pid)
    return None if b is None else b // 1024


def fields(line):
    return dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)


def slope_kib_per_min(samples):
    """Least-squares slope of (t, kib) samples, KiB per minute."""
    if len(samples) < 2:
        return 0.0
    ts = [t for t, _ in samples]
    ks = [k for _, k in samples]
    mt, mk = statistics.fmean(ts), statistics.fmean(ks)
    den = sum((t - mt) ** 2 for t in ts)
    return 0.0 if den == 0 else 60 * sum((t - mt) * (k - mk) for t, k in samples) / den


def mib(kib):
    return f"{kib / 1024:.1f} MiB"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=60, help="seconds of churn")
    ap.add_argument("--groups", type=int, default=8, help="group supervisors")
    ap.add_argument("--workers", type=int, default=16, help="workers per group (<= 256)")
    ap.add_argument("--crash-permille", type=int, default=10,
                    help="per-step crash probability of a worker, in 1/1000")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--warmup", type=float, default=None,
                    help="seconds before RSS counts (default min(60, duration/5))")
    ap.add_argument("--rss-growth-max", type=float, default=20,
                    help="percent of RSS growth after warm-up tolerated")
    ap.add_argument("--wisp", default=os.environ.get("WISP_BIN", str(ROOT / "wisp")))
    ap.add_argument("--wisp-arg", action="append", default=[],
                    help="extra argument for `wisp run` (repeatable)")
    args = ap.parse_args()
    if args.duration <= 0 or args.groups < 1 or not 1 <= args.workers <= 256:
        ap.error("need --duration > 0, --groups >= 1, 1 <= --workers <= 256")
    warmup = args.warmup if args.warmup is not None else min(60.0, args.duration / 5)
    wisp = Path(args.wisp).resolve()
    missing = [x for x, ok in [(CLANG, shutil.which(CLANG)), (f"{wisp} (run `make`)",
                                                             wisp.exists())] if not ok]
    if missing:
        print("bench/soak.py: missing: " + ", ".join(missing), file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="wisp-soak-") as tmp:
        work = Path(tmp)
        wasm = work / "soak.wasm"
        env = wisp_env(work / "cache")
        try:
            build_c_guest([GUEST], wasm, "soak.c: clang")
            p = wisp_compile(wisp, wasm, env)
            if p.returncode != 0:
                raise BenchError(f"wisp compile soak.wasm failed (exit {p.returncode}):\n"
                                 f"{p.stderr}{p.stdout}")
        except BenchError as e:
            print(f"bench/soak.py: build failed: {e}", file=sys.stderr)
            return 1
        cmd = [str(wisp), "run", "--tier", "opt", *args.wisp_arg, str(wasm),
               str(args.duration), str(args.groups), str(args.workers),
               str(args.crash_permille), str(args.seed)]
        print(f"soak: {args.duration:g} s, {args.groups} groups x {args.workers} workers, "
              f"crash {args.crash_permille}/1000 per step, seed {args.seed}, "
              f"warm-up {warmup:g} s, {os.cpu_count()} cpus", flush=True)
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        samples, stop = [], threading.Event()

        jumps = []

        def sampler():
            prev = None
            while not stop.is_set():
                k = rss_kib(proc.pid)
                if k is not None and proc.poll() is None:
                    samples.append((time.monotonic() - t0, k))
                    # A step of RSS: say which mappings grew (a leak grows
                    # steadily; a step is a pool's or an allocator's mark).
                    maps = smaps_rss(proc.pid)
                    if prev is not None and maps and samples[-1][1] - prev[1] > 1024 and \
                            len(jumps) < 5:
                        grew = sorted(((maps.get(m, 0) - prev[0].get(m, 0), m) for m in maps),
                                      reverse=True)[:5]
                        jumps.append((samples[-1][0], prev[1], samples[-1][1], grew))
                    prev = (maps, samples[-1][1])
                stop.wait(1.0)

        err_lines = []
        err_thread = threading.Thread(target=lambda: err_lines.extend(proc.stderr), daemon=True)
        samp = threading.Thread(target=sampler, daemon=True)
        samp.start()
        err_thread.start()
        result, timed_out = None, False
        killer = threading.Timer(args.duration + 120, proc.kill)
        killer.start()
        for line in proc.stdout:
            line = line.strip()
            if line.startswith("STAT "):
                f = fields(line)
                rss = samples[-1][1] if samples else 0
                print(f"  t={float(f['t']):6.0f}s  sent={f['sent']:>11} received={f['received']:>11}"
                      f" drops={f['drops']:>8} crashes={f['crashes']:>8}"
                      f" restarts={f['restarts']:>8} live={f['live']:>6}  rss={mib(rss)}",
                      flush=True)
            elif line.startswith("RESULT "):
                result = fields(line)
            elif line:
                print("  guest: " + line)
        rc = proc.wait()
        timed_out = not killer.is_alive() and rc < 0
        killer.cancel()
        stop.set()
        samp.join()
        err_thread.join(timeout=5)

    problems = []
    if timed_out:
        problems.append("wisp did not end in time (killed)")
    if rc != 0:
        problems.append(f"wisp exited {rc}")
    for l in err_lines[-20:]:
        print("  stderr: " + l.rstrip())
    if result is None:
        problems.append("no RESULT line")
    else:
        r = {k: int(v) for k, v in result.items() if v.lstrip("-").isdigit()}
        peer_bad = r["peer_sent"] - r["peer_recv"] - r["drops"]
        ctr_bad = r["counter_sent"] - r["counter_recv"]
        hlp_bad = r["helper_sent"] - r["helper_recv"]
        print(f"messages: sent {r['sent']} = received {r['received']} + drops {r['drops']}"
              f" + unaccounted {r['sent'] - r['received'] - r['drops']}")
        print(f"  peer {r['peer_sent']} sent, {r['peer_recv']} received, {r['drops']} dropped"
              f" (to dead peers), off by {peer_bad}; counter {r['counter_sent']}/"
              f"{r['counter_recv']}, off by {ctr_bad}; helper {r['helper_sent']}/"
              f"{r['helper_recv']}, off by {hlp_bad}")
        print(f"processes: {r['workers_started']} workers started, {r['crashes']} crashes,"
              f" {r['restarts']} restarts, {r['helpers_spawned']} helpers,"
              f" {r['steps']} worker steps, {r['sup_restarts']} group-supervisor restarts")
        tmr_bad = r["timers_set"] - r["timers_cancelled"] - r["timers_recv"]
        print(f"timers: {r['timers_set']} set = {r['timers_cancelled']} cancelled +"
              f" {r['timers_recv']} received, off by {tmr_bad}; {r['far_set']} far ones set,"
              f" {r['far_cancelled']} cancelled (payload freed at once)")
        print(f"floods: {r['floods']} victims flooded past their memory limit,"
              f" {r['flood_limits']} ended with reason LIMIT")
        if peer_bad or ctr_bad or hlp_bad or tmr_bad or r.get("unaccounted") != 0:
            problems.append("messages do not balance")
        if r["far_set"] != r["far_cancelled"] or r["floods"] != r["flood_limits"]:
            problems.append("a far timer could not be cancelled, or a flood victim did not end with LIMIT")
        if result.get("ok") != "1":
            problems.append("the guest reported a failed check (ok=0)")

    after = [(t, k) for t, k in samples if t >= warmup]
    if len(after) >= 3:
        w = max(3, len(after) // 10)
        start = statistics.median(k for _, k in after[:w])
        end = statistics.median(k for _, k in after[-w:])
        kibs = [k for _, k in after]
        growth = 100 * (end - start) / start
        print(f"RSS after {warmup:g} s warm-up ({len(after)} samples): start {mib(start)},"
              f" end {mib(end)}, min {mib(min(kibs))}, max {mib(max(kibs))},"
              f" slope {slope_kib_per_min(after):+.1f} KiB/min, growth {growth:+.1f}%"
              f" (limit {args.rss_growth_max:g}%)")
        print("RSS over time (MiB): " + " ".join(
            f"{t:.0f}s:{k / 1024:.1f}" for t, k in samples[::max(1, len(samples) // 20)]))
        for t, before, after_k, grew in jumps:
            print(f"RSS step at {t:.0f}s: {mib(before)} -> {mib(after_k)}; grew: " +
                  ", ".join(f"{m} +{d} KiB" for d, m in grew if d > 0))
        if growth > args.rss_growth_max:
            problems.append(f"RSS grew {growth:.1f}% after warm-up")
    else:
        print(f"RSS: too few samples after warm-up ({len(after)})")
    for p in problems:
        print(f"FAIL: {p}")
    print("soak: " + ("ok" if not problems else "FAILED"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
