#!/usr/bin/env python3
"""wisp's distribution benchmark: two wisp nodes against two BEAM nodes, on loopback.

    python3 bench/dist_run.py [--quick] [--runs N] [--wisp BIN]

Two nodes on this machine, one serving (a process registered as `pong`)
and one client, for each implementation:

  wisp    bench/dist/c/distbench.c under `wisp run --sname` (opt tier,
          compiled ahead into a private cache)
  erlang  bench/dist/erlang/distbench.erl under `erl -sname -noshell`
          (the defaults: a scheduler per core, JIT)

with the same protocol (bench/dist/c/distbench.c's header): messages are the
term {Tag, <<8 bytes>>} on the wire in both.

  pingpong  N round trips of one small message between a process on each
            node: microseconds per round trip (lower is better)
  flood     N one-way small messages from one node to the other, then an
            end marker answered with the count (checked): messages per
            second (higher is better)

Each run starts fresh nodes on a private EPMD (ERL_EPMD_PORT), killed
afterwards. Runs of the two implementations are interleaved (--runs N,
default 3; the best of each is kept) and the ratios printed: wisp/BEAM.
Targets (issue 13): round trip <= BEAM's, throughput >= BEAM's.

Exit status: 0 when everything ran (targets met or not); 1 on a failure; 2
on bad usage or a missing tool.
"""
import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import (CLANG, ROOT, BenchError, build_c_guest, check, erlang_release,
                     machine_note, read_line_with, stop, table, wisp_compile, wisp_env)

COOKIE = "wisp-bench"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def host():
    return socket.gethostname().split(".")[0]


class Impl:
    def __init__(self, name, server_cmd, client_cmd, env):
        self.name, self.server_cmd, self.client_cmd, self.env = name, server_cmd, client_cmd, env

    def run(self, mode, n, tag):
        """One fresh pair of nodes: the figure of `mode` with n messages."""
        env = dict(self.env, ERL_EPMD_PORT=str(free_port()))
        srv = subprocess.Popen(self.server_cmd(f"s{tag}"), env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True,
                               cwd=self.env["HOME"])
        try:
            read_line_with(srv, "READY", 60, f"{self.name} server")
            r = subprocess.run(self.client_cmd(f"c{tag}", f"s{tag}@{host()}", mode, n), env=env,
                               capture_output=True, text=True, timeout=600, cwd=self.env["HOME"])
            for line in r.stdout.splitlines():
                if line.startswith("RESULT " + mode + " "):
                    return float(line.split()[2])
            raise BenchError(f"{self.name} {mode}: no result (exit {r.returncode}):\n"
                             f"{r.stdout[-2000:]}{r.stderr[-2000:]}")
        finally:
            stop(srv)
            subprocess.run(["epmd", "-port", env["ERL_EPMD_PORT"], "-kill"], env=env,
                           capture_output=True, timeout=10)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer messages")
    ap.add_argument("--runs", type=int, default=3, help="interleaved runs each (best kept)")
    ap.add_argument("--wisp", default=os.environ.get("WISP_BIN", str(ROOT / "wisp")))
    args = ap.parse_args()
    missing = [t for t in (CLANG, "erl", "erlc", "epmd") if not shutil.which(t)]
    if not Path(args.wisp).exists():
        missing.append(f"{args.wisp} (run `make`)")
    if missing:
        print("bench/dist_run.py: missing: " + ", ".join(missing), file=sys.stderr)
        return 2
    wisp = str(Path(args.wisp).resolve())
    n_ping = 20000 if args.quick else 100000
    n_flood = 200000 if args.quick else 1000000
    with tempfile.TemporaryDirectory(prefix="wisp-distbench-") as tmp:
        tmp = Path(tmp)
        wasm = tmp / "distbench.wasm"
        build_c_guest([ROOT / "bench/dist/c/distbench.c"], wasm, "distbench guest")
        env = wisp_env(tmp / "cache")
        env["HOME"] = str(tmp)
        c = wisp_compile(wisp, wasm, env)
        if c.returncode != 0:
            raise BenchError(f"wisp compile: {c.stderr}")
        check(["erlc", "-o", tmp, ROOT / "bench/dist/erlang/distbench.erl"], "erlc distbench")

        def wisp_cmd(name, *args):
            return [wisp, "run", "--tier", "opt", "--sname", name, "--cookie", COOKIE, wasm, *args]

        def erl_cmd(name, *args):
            fn = args[0] if args else "server"
            return ["erl", "-sname", name, "-setcookie", COOKIE, "-noshell", "-pa", str(tmp),
                    "-s", "distbench", fn, *map(str, args[1:])]

        impls = [
            Impl("wisp", lambda s: wisp_cmd(s, "server"),
                 lambda c, node, mode, n: wisp_cmd(c, mode, node, str(n)), env),
            Impl("erlang", lambda s: erl_cmd(s),
                 lambda c, node, mode, n: erl_cmd(c, mode, node, n), dict(os.environ, HOME=str(tmp))),
        ]
        best = {}
        tag = 0
        for mode, n, better in (("pingpong", n_ping, min), ("flood", n_flood, max)):
            for _ in range(args.runs):
                for impl in impls:          # interleaved: the same noise for both
                    tag += 1
                    v = impl.run(mode, n, tag)
                    key = (impl.name, mode)
                    best[key] = v if key not in best else better(best[key], v)
                    print(f"  {impl.name:7} {mode:9} {v:12.3f}", flush=True)
        rows = []
        for mode, unit, goal in (("pingpong", "µs per round trip", "<="),
                                 ("flood", "messages/s", ">=")):
            w, e = best[("wisp", mode)], best[("erlang", mode)]
            ok = w <= e if goal == "<=" else w >= e
            rows.append([mode, unit, f"{w:.3f}" if mode == "pingpong" else f"{w:,.0f}",
                         f"{e:.3f}" if mode == "pingpong" else f"{e:,.0f}", f"{w / e:.2f}",
                         f"{goal} BEAM: {'met' if ok else 'missed'}"])
        print()
        table(rows, ["workload", "unit", "wisp", f"BEAM (OTP {erlang_release()})",
                     "wisp/BEAM", "target"])
        print(machine_note())
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"bench/dist_run.py: {e}", file=sys.stderr)
        sys.exit(1)
