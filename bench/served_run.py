#!/usr/bin/env python3
"""Served files, measured: a 4 KiB read of a file a process serves against
a 4 KiB read of a real file, in one run.

    python3 bench/served_run.py [--runs N] [--reads N] [--wisp BIN]

The same unmodified WASI program (tests/guests/c/files.c, `bench`) times N
preads of 4 KiB at offset 0 with CLOCK_MONOTONIC, of
  real    a 200,000-byte file in a --dir directory (one preadv per read);
  served  the same bytes served by the in-memory server of
          tests/guests/c/served.c, mounted at /data by the program's parent
          (one WISP_TAG_FILE request and reply per read: two messages, two
          context switches between the processes, a 4 KiB copy into the
          reply and one out of it).
and prints nanoseconds per read (best of --runs interleaved runs) and the
ratio. Exit status 0 when everything ran, 1 on a failure, 2 on bad usage
or a missing tool.
"""
import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (CLANG, ROOT, WASI_SYSROOT, BenchError, build_c_guest, check,  # noqa: E402
                     machine_note, run, table, wisp_env)


def ns_per_read(proc):
    for line in proc.stdout.splitlines():
        if "ns/read" in line:
            return float(line.split()[-1])
    raise BenchError(f"no ns/read in: {proc.stdout!r} {proc.stderr[-500:]!r}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--reads", type=int, default=20000)
    ap.add_argument("--wisp", default=os.environ.get("WISP_BIN", str(ROOT / "wisp")))
    args = ap.parse_args()
    if not shutil.which(CLANG) or not Path(args.wisp).exists():
        print("bench/served_run.py: missing clang or wisp (run `make`)", file=sys.stderr)
        return 2
    wisp = str(Path(args.wisp).resolve())
    with tempfile.TemporaryDirectory(prefix="wisp-servedbench-") as tmp:
        tmp = Path(tmp)
        env = wisp_env(tmp / "cache")
        (tmp / "p").mkdir()
        check([CLANG, "--target=wasm32-wasi", f"--sysroot={WASI_SYSROOT}", "-O2", "-o",
               tmp / "p/files.wasm", ROOT / "tests/guests/c/files.c"], "files.c")
        build_c_guest([ROOT / "tests/guests/c/served.c", ROOT / "sdk/c/term.c"],
                      tmp / "served.wasm", "served.c")
        (tmp / "d").mkdir()
        (tmp / "d/big.bin").write_bytes(bytes((i * 7 + i // 251) & 0xff for i in range(200000)))
        n = str(args.reads)
        cmds = {
            "real": [wisp, "run", "--tier", "opt", "--dir", f"{tmp / 'd'}::/data",
                     tmp / "p/files.wasm", "bench", "/data/big.bin", n],
            "served": [wisp, "run", "--tier", "opt", "--dir", f"{tmp / 'p'}::/p",
                       tmp / "served.wasm", "/p/files.wasm", "ok", "bench", "/data/big.bin", n],
        }
        best = {}
        for _ in range(args.runs):
            for name, cmd in cmds.items():
                p = run([str(c) for c in cmd], env=env)
                if p.returncode != 0:
                    raise BenchError(f"{name}: exit {p.returncode}: {p.stderr[-500:]}")
                best[name] = min(best.get(name, float("inf")), ns_per_read(p))
    print(machine_note())
    table([["4 KiB pread, real file", f"{best['real']:.0f}"],
                 ["4 KiB pread, served file", f"{best['served']:.0f}"],
                 ["served / real", f"{best['served'] / best['real']:.1f}x"]],
                ["", "ns per read"])
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"bench/served_run.py: {e}", file=sys.stderr)
        sys.exit(1)
