#!/usr/bin/env python3
"""Whole WASI programs as processes, measured (issue 15), in one run.

    python3 bench/program_run.py [--quick] [--runs N] [--wisp BIN]

  spawn, fresh    a guest starts a trivial WASI program (int main: return 0)
                  and waits for its end; the first spawn of a run with an
                  empty compile cache (it compiles the module): microseconds
  spawn, cached   the same first spawn with the module in the compile cache
                  (loaded, not compiled)
  spawn, again    each later spawn+end of the same program (the module in
                  the runtime's table): microseconds, beside posix_spawn +
                  waitpid of a trivial native program (the OS's way)
  serve conn/s    connections per second through `wisp serve` (a fresh
                  program per connection: tests/guests/c/lines.c) beside a
                  plain `wisp run` echo server (examples/echo: a wisp
                  process per connection), the same client (threads doing
                  connect, one line each way, close)

Runs are interleaved (--runs N, best kept) and ratios printed. Exit status
0 when everything ran, 1 on a failure, 2 on bad usage or a missing tool.
"""
import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (CLANG, ROOT, WASI_SYSROOT, BenchError, build_c_guest, check,  # noqa: E402
                     machine_note, run, stop, table, wisp_env)


def spawn_figures(wisp, work, cache, n, fresh):
    """(first, each) microseconds from spawnprog, with cache emptied first if fresh."""
    if fresh and cache.exists():
        shutil.rmtree(cache)
    env = wisp_env(cache)
    r = run([wisp, "run", "--dir", f"{work / 'b'}::/b", work / "spawnprog.wasm", "/b/prog.wasm", n],
            env=env, timeout=600)
    if r.returncode != 0:
        raise BenchError(f"spawnprog failed ({r.returncode}): {r.stdout}{r.stderr}")
    vals = dict(l.split() for l in r.stdout.splitlines())
    return float(vals["first"]), float(vals["each"])


def conns_per_s(cmd, env, seconds, threads=4):
    """Start a server (its first stdout or stderr line names the port), hit
    it with `threads` clients for `seconds`: connections per second."""
    p = subprocess.Popen([str(c) for c in cmd], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        # "wisp: serving on 127.0.0.1:PORT (...)" / echo's "listening on 127.0.0.1:PORT"
        line = (p.stderr if cmd[1] == "serve" else p.stdout).readline()
        port = int(line.split("127.0.0.1:")[1].split()[0])
        count = [0] * threads
        end = time.perf_counter() + seconds

        def client(k):
            while time.perf_counter() < end:
                with socket.create_connection(("127.0.0.1", port), timeout=30) as c:
                    c.sendall(b"x\n")
                    got = b""
                    while not got.endswith(b"\n"):
                        b = c.recv(64)
                        if not b:
                            raise BenchError("connection closed before the reply")
                        got += b
                count[k] += 1

        ts = [threading.Thread(target=client, args=(k,)) for k in range(threads)]
        t0 = time.perf_counter()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return sum(count) / (time.perf_counter() - t0)
    finally:
        stop(p)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer spawns, shorter runs")
    ap.add_argument("--runs", type=int, default=3, help="interleaved runs each (best kept)")
    ap.add_argument("--wisp", default=os.environ.get("WISP_BIN", str(ROOT / "wisp")))
    args = ap.parse_args()
    if not Path(args.wisp).exists() or not shutil.which(CLANG):
        print("bench/program_run.py: needs ./wisp (make) and clang", file=sys.stderr)
        return 2
    wisp = str(Path(args.wisp).resolve())
    n, secs = (200, 2) if args.quick else (2000, 5)
    with tempfile.TemporaryDirectory(prefix="wisp-progbench-") as tmp:
        work = Path(tmp)
        try:
            (work / "prog.c").write_text("int main(void) { return 0; }\n")
            (work / "b").mkdir()
            check([CLANG, "--target=wasm32-wasi", f"--sysroot={WASI_SYSROOT}", "-O2", "-o",
                   work / "b" / "prog.wasm", work / "prog.c"], "prog.wasm")
            check(["cc", "-O2", "-o", work / "true", work / "prog.c"], "native true")
            check(["cc", "-O2", "-o", work / "spawnnative",
                   ROOT / "bench/program/c/spawnnative.c"], "spawnnative")
            build_c_guest([ROOT / "bench/program/c/spawnprog.c"], work / "spawnprog.wasm",
                          "spawnprog")
            build_c_guest([ROOT / "tests/guests/c/lines.c"], work / "lines.wasm", "lines")
            build_c_guest([ROOT / "examples/echo/echo.c"], work / "echo.wasm", "echo")
            cache = work / "cache"
            env = wisp_env(cache)
            best = {}

            def keep(key, v, lower=True):
                if key not in best or (v < best[key] if lower else v > best[key]):
                    best[key] = v

            for _ in range(args.runs):
                first, _ = spawn_figures(wisp, work, cache, 1, fresh=True)
                keep("fresh", first)
                first, each = spawn_figures(wisp, work, cache, n, fresh=False)
                keep("cached", first)
                keep("again", each)
                r = run([work / "spawnnative", work / "true", n])
                keep("native", float(r.stdout.split()[-1]))
                keep("serve", conns_per_s([wisp, "serve", "--listen", "127.0.0.1:0",
                                           work / "lines.wasm"], env, secs), lower=False)
                keep("echo", conns_per_s([wisp, "run", "--allow-listen", "127.0.0.1:*",
                                          work / "echo.wasm", "0", "127.0.0.1"], env, secs),
                     lower=False)
        except BenchError as e:
            print(f"bench/program_run.py: {e}", file=sys.stderr)
            return 1
    table([["spawn, fresh (us)", f"{best['fresh']:.0f}", "", ""],
           ["spawn, cached (us)", f"{best['cached']:.0f}", "", ""],
           ["spawn, again (us)", f"{best['again']:.1f}", f"{best['native']:.1f}",
            f"{best['again'] / best['native']:.2f}"],
           ["serve conn/s", f"{best['serve']:.0f}", f"{best['echo']:.0f}",
            f"{best['serve'] / best['echo']:.2f}"]],
          ["measure", "wisp", "peer", "wisp/peer"])
    print("peers: spawn again = posix_spawn+waitpid of a native program; "
          "serve = a wisp run echo server (a process per connection)")
    print(machine_note())
    return 0


if __name__ == "__main__":
    sys.exit(main())
