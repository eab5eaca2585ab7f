#!/usr/bin/env python3
"""wisp's HTTP benchmark: the Rust crate's web example against Go's net/http.

    python3 bench/http_run.py [--quick] [--runs N] [--conns N] [--duration S]
                              [--impls wisp,go] [--pin]

Two HTTP/1.1 servers with the same routes and bodies, listening on
127.0.0.1 (an ephemeral port each, read back from their first line,
`listening on http://ADDR:PORT`):

  wisp  sdk/rust/examples/src/bin/web.rs (wisp::http: a process per
        connection, httparse), built with scripts/cargo-wasm --release (into
        build/bench-http-target, kept between runs), the opt tier compiled
        ahead with `wisp compile` into a private cache, run with
        `wisp run --tier opt`.
  go    bench/net/go/http: net/http's server with its defaults (a goroutine
        per connection, GOMAXPROCS = cores), the same two handlers.

Two workloads: `hello` (GET /, "Hello, world!\\n") and `16k` (GET /16k, a
16 KiB body with its Content-Length). One load generator for both servers,
bench/net/go/httpload (Go): N keep-alive connections (default 200), each
checked with one request first, then closed-loop GETs, one at a time on
each connection, for 1 s of warm-up and the measured window (default 10 s;
--quick 3 s): requests/s and latency p50/p99 of the requests completed in
the window; every response's status and body length are checked. A fresh
server per measurement; with --runs N the measurements interleave (wisp,
go, wisp, go, ...) and the best run of each is kept. The server's CPU time
(OS process tree) over the run is shown too, and the load average before
and after (the machine is shared: read the figures with it).

The machine has few cores (2 on the dev machine) and the load generator
runs on them too, so it competes with the servers for CPU, the same for
both; --pin puts the server on CPU 0 and the load generator on the others.

Target (from the networking issue): wisp's requests/s >= Go's net/http in
the same run.

Exit status: 0 when everything ran, even if targets are missed; 1 on a
build failure, a server that does not start or dies, a wrong response or a
load generator error; 2 on bad usage or missing go/cargo/wisp.
"""
import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from harness import (ROOT, BenchError, build_impls, check, find_go, go_build, machine_note, run,
                     table, tail, wisp_compile, wisp_env)
from net_run import Server, cpu_split, measure_load, raise_nofile

NET = ROOT / "bench" / "net"
IMPLS = ["wisp", "go"]
WORKLOADS = [("hello", "/", 14), ("16k", "/16k", 16384)]
NOFILE = 65536


class Wisp:
    name = "wisp"
    unavailable = None

    def __init__(self, work, wisp):
        self.wisp = wisp
        self.target = ROOT / "build" / "bench-http-target"
        self.wasm = self.target / "wasm32-wasip1" / "release" / "web.wasm"
        self.env = wisp_env(work / "wisp-cache")
        if not shutil.which("cargo") and not Path("/usr/bin/cargo").exists():
            self.unavailable = "cargo not installed (scripts/setup.sh)"

    def build(self):
        env = dict(os.environ, CARGO_TARGET_DIR=str(self.target))
        check([ROOT / "scripts" / "cargo-wasm", "build", "--release", "--quiet", "-p", "wisp-examples",
               "--bin", "web"], "cargo build --bin web", cwd=ROOT / "sdk" / "rust", env=env)
        proc = wisp_compile(self.wisp, self.wasm, self.env)
        if proc.returncode != 0:
            raise BenchError(f"wisp compile web.wasm failed (exit {proc.returncode}):\n"
                             f"{tail(proc.stderr or proc.stdout)}")

    def cmd(self):
        return [self.wisp, "run", "--tier", "opt", "--allow-listen", "127.0.0.1:*", self.wasm, "0"]


class Go:
    name = "go"
    unavailable = None
    env = None

    def __init__(self, work, go):
        self.go = go
        self.bin = work / "go-http"

    def build(self):
        go_build(self.go, self.bin, "./http", NET / "go")

    def cmd(self):
        return [self.bin, "0", "127.0.0.1"]


def load_test(impl, loadgen, path, body_len, conns, duration, warmup, cpus):
    """{rps, p50_us, p99_us, max_us, cpu_cores, cpu_us_per_req} of one run
    on a fresh server."""
    srv = Server(impl, cpus["server"])
    srv.addr = srv.addr.removeprefix("http://")
    try:
        cmd = [loadgen, "-addr", srv.addr, "-path", path, "-body-len", body_len, "-conns", conns,
               "-duration", f"{duration}s", "-warmup", f"{warmup}s"]
        return measure_load(impl, srv, cmd, conns, duration + warmup + 120, cpus)
    finally:
        srv.close()


def fmt(x, unit):
    if x is None:
        return "-"
    return f"{x:,.0f}" if unit in ("req/s", "us") else f"{x:.2f}"


def ratio(a, b):
    return "-" if a is None or b is None or b <= 0 else f"{a / b:.2f}x"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 s per measurement")
    ap.add_argument("--runs", type=int, default=1,
                    help="measurements per server and workload, interleaved; the best is kept")
    ap.add_argument("--conns", type=int, default=200, help="keep-alive connections (default 200)")
    ap.add_argument("--duration", type=float, help="measured seconds per run (default 10)")
    ap.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    ap.add_argument("--impls", default=",".join(IMPLS), help="columns to run (default: wisp,go)")
    ap.add_argument("--pin", action="store_true",
                    help="server on CPU 0, load generator on the other CPUs")
    ap.add_argument("--wisp", default=os.environ.get("WISP_BIN", str(ROOT / "wisp")))
    args = ap.parse_args()
    duration = args.duration or (3.0 if args.quick else 10.0)
    if args.runs < 1 or args.conns < 1 or duration <= 0:
        ap.error("--runs, --conns and --duration must be positive")
    wanted = args.impls.split(",")
    if set(wanted) - set(IMPLS):
        ap.error(f"--impls: choose from {','.join(IMPLS)}")
    ncpu = os.cpu_count() or 1
    cpus = cpu_split(ap, args.pin, ncpu)
    args.wisp = str(Path(args.wisp).resolve())
    go = find_go()
    missing = [] if go else ["go (the load generator is Go)"]
    if "wisp" in wanted and not Path(args.wisp).exists():
        missing.append(f"{args.wisp} (run `make`)")
    if missing:
        print("bench/http_run.py: missing: " + ", ".join(missing), file=sys.stderr)
        return 2
    nofile = raise_nofile(NOFILE)
    if nofile < args.conns + 64:
        print(f"bench/http_run.py: RLIMIT_NOFILE is {nofile}; need more than {args.conns + 64}",
              file=sys.stderr)
        return 2

    print(f"wisp HTTP bench -- {machine_note()}")
    errors, notes = [], []
    with tempfile.TemporaryDirectory(prefix="wisp-httpbench-") as tmp:
        work = Path(tmp)
        loadgen = work / "httpload"
        all_impls = {"wisp": Wisp(work, args.wisp), "go": Go(work, go)}
        impls = [all_impls[n] for n in IMPLS if n in wanted]
        print("building: httpload, " + ", ".join(i.name for i in impls if not i.unavailable) + " ...",
              flush=True)
        try:
            go_build(go, loadgen, "./httpload", NET / "go")
        except BenchError as e:
            print(f"ERROR: {e}", file=sys.stderr)
            return 1
        live = build_impls(impls, errors, notes)
        print(f"peers: {run([go, 'version']).stdout.strip()}")
        where = ("server pinned to CPU 0, load generator to CPU "
                 + ",".join(map(str, sorted(cpus["client"]))) if args.pin else
                 f"server and load generator share all {ncpu} CPUs")
        print(f"{where}; {args.conns} keep-alive connections, {duration:g} s per run")

        results, failed = {}, set()
        for r in range(args.runs):
            for wl, path, body_len in WORKLOADS:
                for impl in live:
                    if (wl, impl.name) in failed:
                        continue
                    print(f"  {r + 1}/{args.runs}: {wl}, {impl.name} ...", end="", flush=True)
                    try:
                        f = load_test(impl, loadgen, path, body_len, args.conns, duration, args.warmup, cpus)
                    except BenchError as e:
                        failed.add((wl, impl.name))
                        errors.append(str(e))
                        print(" ERROR", flush=True)
                        continue
                    print(f" {f['rps']:,.0f} req/s, p99 {f['p99_us']:,.0f} us, "
                          f"server CPU {f['cpu_cores']:.2f} cores, load {os.getloadavg()[0]:.2f}", flush=True)
                    best = results.get((wl, impl.name))
                    if best is None or f["rps"] > best["rps"]:
                        results[(wl, impl.name)] = f

    def row(wl, label, unit, key, higher_better=None):
        w, g = (results.get((wl, n), {}).get(key) for n in IMPLS)
        status = tgt = ""
        if higher_better is not None:
            tgt = ">= go" if higher_better else "<= go"
            status = "-" if w is None or g is None else (
                "met" if (w >= g if higher_better else w <= g) else "MISSED")
        return [f"{wl}: {label}", unit, fmt(w, unit), fmt(g, unit), ratio(w, g), tgt, status]

    rows = []
    for wl, _, _ in WORKLOADS:
        rows += [row(wl, "requests/s", "req/s", "rps", True),
                 row(wl, "latency p50", "us", "p50_us"),
                 row(wl, "latency p99", "us", "p99_us"),
                 row(wl, "server CPU", "cores", "cpu_cores"),
                 row(wl, "server CPU per request", "us/req", "cpu_us_per_req")]
    print()
    stat = f"best of {args.runs}" if args.runs > 1 else "one run"
    print(f"HTTP/1.1 servers: wisp::http vs Go net/http ({args.conns} keep-alive connections, "
          f"{stat}; one load generator; load average now {os.getloadavg()[0]:.2f})")
    table(rows, ["metric", "unit", "wisp", "go", "wisp/go", "target", ""])
    print("requests/s: responses completed in the measured window / its length; latency: "
          "request written to whole response read.")
    if not args.pin:
        print(f"note: the load generator runs on the same {ncpu} CPUs and competes with the server "
              "for them; a server that needs less CPU per request leaves more to the generator.")
    for n in notes:
        print(f"note: {n}")
    for e in errors:
        print(f"ERROR: {e}", file=sys.stderr)
    if errors:
        print(f"{len(errors)} error(s): the figures above are incomplete or wrong")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
