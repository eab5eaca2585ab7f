#!/usr/bin/env python3
"""`wisp ps` measured: how long a listing of N processes takes, and how
much a ping-pong running on the same node slows while it lists.

    python3 bench/inspect_run.py [--sizes 100000,1000000] [--runs 3]
                                 [--hibernate-after 200ms] [--wisp BIN]

One node per size runs bench/inspect/pingpong_idle.c: N idle processes
(parked in receive, as bench/proc/c/idle.c's; hibernated after
--hibernate-after, so that a million fit in a few GB), then a ping-pong
pair that prints, every 100 ms, its round trips in that window and the
longest one. Against it, one after another, --runs times each:

  ps        `wisp ps > /dev/null`: the whole listing as a table (the node
            walks and streams every process as JSON; the client parses,
            sorts by pid and prints)
  json      `wisp ps --json > /dev/null`
  top20     `wisp ps --sort reductions --limit 20`: the node walks every
            process but keeps 20 (what a dashboard's top list costs)
  burn      the control: a Python process spinning on a CPU for 0.2 s,
            which pauses nothing in the node and competes for the cores
            as any program does

and prints the best and median wall time of each, and the ping-pong's
round trips per second (the median 100 ms window) and longest round
trip, before any listing and during each kind (the windows that overlap
one; half a second passes between listings). A
listing that paused schedulers would show as a drop of the round trips
and a longest round trip of the pause's length. Both sides share the
machine's cores with the client, which parses a million lines: that is
part of what a user running `wisp ps` costs the node's host, and the
top20 line shows the node's own part.

Exit status 0 when everything ran, 1 on a failure, 2 on bad usage or a
missing tool.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (CLANG, ROOT, BenchError, build_c_guest, machine_note, rss_bytes,  # noqa: E402
                     stop, table, wisp_compile, wisp_env)


class Node:
    """A running pingpong_idle node; its windows as (t_end, count, worst_us)."""

    def __init__(self, wisp, wasm, n, env, hib):
        self.env = env
        self.p = subprocess.Popen([wisp, "run", "--tier", "opt", "--hibernate-after", hib, wasm,
                                   str(n)], env=env, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.windows = []
        line = self.p.stdout.readline()
        if not line.startswith("READY"):
            raise BenchError(f"no READY: {line!r} {self.p.stderr.read()[-500:]!r}")
        self.reader = threading.Thread(target=self.read, daemon=True)
        self.reader.start()

    def read(self):
        for line in self.p.stdout:
            if line.startswith("WINDOW "):
                _, count, worst = line.split()
                self.windows.append((time.monotonic(), int(count), float(worst)))

    def close(self):
        self.p.stdin.close()
        try:
            self.p.wait(timeout=120)
        except subprocess.TimeoutExpired:
            stop(self.p)


def settle(node, limit=900):
    """Until hibernation is over and the ping-pong steady: the node's RSS
    has not fallen by 1% in the last 5 s (hibernating a million processes
    takes the schedulers a while after READY, 32 at a time between
    dispatches), and the median of the last 20 windows is within 10% of
    the best such median."""
    start = time.monotonic()
    best, low, low_at = 0, None, time.monotonic()
    while time.monotonic() - start < limit:
        time.sleep(0.5)
        rss = rss_bytes(node.p.pid)
        if rss is None:
            raise BenchError(f"the node ended: {node.p.stderr.read()[-500:]!r}")
        if low is None or rss < 0.99 * low:
            low, low_at = rss, time.monotonic()
        last = [w[1] for w in node.windows[-20:]]
        if len(last) < 20:
            continue
        rate = statistics.median(last)
        best = max(best, rate)
        if time.monotonic() - low_at >= 5 and rate >= 0.9 * best:
            return
    raise BenchError("the node did not settle")


def timed(cmd, env):
    t0 = time.monotonic()
    r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       text=True, timeout=600)
    t1 = time.monotonic()
    if r.returncode != 0:
        raise BenchError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr[-500:]}")
    return t0, t1


def in_spans(t_end, spans, window=0.1):
    return any(t_end - window < b and t_end > a for a, b in spans)


def measure(wisp, wasm, n, env, runs, hib):
    """Times of each listing, and the ping-pong's windows: before any, and
    during each kind of listing."""
    node = Node(wisp, wasm, n, env, hib)
    try:
        settle(node)
        base_from = time.monotonic()
        time.sleep(3.0)
        spans = {key: [] for key in KINDS}
        times = {key: [] for key in KINDS}
        cmds = {"ps": [wisp, "ps", str(node.p.pid)],
                "json": [wisp, "ps", "--json", str(node.p.pid)],
                "top20": [wisp, "ps", "--sort", "reductions", "--limit", "20", str(node.p.pid)],
                "burn": [sys.executable, "-c", BURN]}
        first = time.monotonic()
        for _ in range(runs):
            for key, cmd in cmds.items():
                a, b = timed(cmd, env)
                times[key].append(b - a)
                spans[key].append((a, b))
                time.sleep(0.5)   # (windows between listings belong to none)
        base = [w for w in node.windows if base_from <= w[0] - 0.1 and w[0] <= first]
        during = {key: [w for w in node.windows if in_spans(w[0], spans[key])] for key in KINDS}
    finally:
        node.close()
    if not base or not all(during.values()):
        raise BenchError(f"too few windows ({len(base)} before, "
                         f"{[len(d) for d in during.values()]} during)")
    return times, base, during


KINDS = ("ps", "json", "top20", "burn")
# The control: a process that only spins on a CPU for 0.2 s (what any
# program competing for the cores costs the ping-pong, whatever it does).
BURN = "import time\nt = time.monotonic() + 0.2\nwhile time.monotonic() < t:\n    pass\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--hibernate-after", default="200ms")
    ap.add_argument("--wisp", default=os.environ.get("WISP_BIN", str(ROOT / "wisp")))
    args = ap.parse_args()
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
    except ValueError:
        print("bench/inspect_run.py: --sizes takes numbers, e.g. 100000,1000000", file=sys.stderr)
        return 2
    if not shutil.which(CLANG) or not Path(args.wisp).exists():
        print("bench/inspect_run.py: missing clang or wisp (run `make`)", file=sys.stderr)
        return 2
    wisp = str(Path(args.wisp).resolve())
    rows = []
    with tempfile.TemporaryDirectory(prefix="wisp-inspectbench-") as tmp:
        tmp = Path(tmp)
        env = wisp_env(tmp / "cache")
        run_dir = tmp / "run"
        run_dir.mkdir(mode=0o700)
        env["XDG_RUNTIME_DIR"] = str(run_dir)
        wasm = tmp / "pingpong_idle.wasm"
        try:
            build_c_guest([ROOT / "bench/inspect/pingpong_idle.c"], wasm, "pingpong_idle.c",
                          includes=[ROOT / "bench/proc/c"])
            r = wisp_compile(wisp, wasm, env)
            if r.returncode != 0:
                raise BenchError(f"wisp compile: {r.stderr[-500:]}")
            for n in sizes:
                times, base, during = measure(wisp, str(wasm), n, env, args.runs,
                                              args.hibernate_after)
                rate = lambda ws: statistics.median(w[1] for w in ws) * 10
                rows.append([f"{n:,}", "before", "", f"{rate(base):,.0f}", "",
                             f"{max(w[2] for w in base):,.0f}"])
                for key in KINDS:
                    slower = 100 * (1 - rate(during[key]) / rate(base))
                    rows.append(["", key, f"{min(times[key]):.2f} / "
                                          f"{statistics.median(times[key]):.2f}",
                                 f"{rate(during[key]):,.0f}", f"{slower:.0f}%",
                                 f"{max(w[2] for w in during[key]):,.0f}"])
        except BenchError as e:
            print(f"bench/inspect_run.py: {e}", file=sys.stderr)
            return 1
    table(rows, ["processes", "listing", "s (best / median)", "pingpong rt/s",
                 "slower by", "longest rt us"])
    print(machine_note())
    return 0


if __name__ == "__main__":
    sys.exit(main())
