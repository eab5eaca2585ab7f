#!/usr/bin/env python3
"""Hot code reload, measured: wisp against the BEAM, in one run.

    python3 bench/upgrade_run.py [--quick] [--runs N] [--wisp BIN]

  one 1K, one 1M  moving one server onto a new version of its code, with a
                  state of 1 KiB or 1 MiB: microseconds per process (median
                  of N servers moved one at a time; lower is better).
                  wisp: wisp_code_upgrade, the new version's
                  wisp_code_change restoring the state (bench/upgrade/c);
                  BEAM: sys:suspend, sys:change_code, sys:resume of a
                  gen_server after code:load_binary (bench/upgrade/erlang),
                  the release handler's way. (A BEAM state is not copied:
                  the binary stays where it is; wisp copies it into the new
                  instance.)
  pause 10k       10,000 servers moved onto the new version at once: the
                  milliseconds until the last one has moved, and the
                  longest call a client making calls meanwhile waited
                  (with the same client's longest call over as long a time
                  with nothing moving, for the machine's noise).

Runs are interleaved (--runs N, best of each kept) and ratios printed.
Both sides load the new version before the clock starts (compiling is not
the pause). Exit status 0 when everything ran, 1 on a failure, 2 on bad
usage or a missing tool.
"""
import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (CLANG, ROOT, BenchError, build_c_guest, check, machine_note, run,  # noqa: E402
                     wisp_compile, wisp_env)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer servers")
    ap.add_argument("--runs", type=int, default=3, help="interleaved runs each (best kept)")
    ap.add_argument("--wisp", default=os.environ.get("WISP_BIN", str(ROOT / "wisp")))
    args = ap.parse_args()
    missing = [t for t in (CLANG, "erl", "erlc") if not shutil.which(t)]
    if not Path(args.wisp).exists():
        missing.append(f"{args.wisp} (run `make`)")
    if missing:
        print("bench/upgrade_run.py: missing: " + ", ".join(missing), file=sys.stderr)
        return 2
    wisp = str(Path(args.wisp).resolve())
    n_one, n_pause = (50, 2000) if args.quick else (200, 10000)
    with tempfile.TemporaryDirectory(prefix="wisp-upgbench-") as tmp:
        tmp = Path(tmp)
        env = wisp_env(tmp / "cache")
        (tmp / "v").mkdir()
        for v in (1, 2):
            wasm = tmp / ("v1.wasm" if v == 1 else "v/v2.wasm")
            build_c_guest([ROOT / "bench/upgrade/c/upgbench.c"], wasm, f"upgbench v{v}",
                          defines=(f"GUEST_VERSION={v}",))
            c = wisp_compile(wisp, wasm, env)
            if c.returncode != 0:
                raise BenchError(f"wisp compile: {c.stderr}")
        for v in (1, 2):
            (tmp / f"e{v}").mkdir()
            check(["erlc", f"-DVSN={v}", "-o", tmp / f"e{v}",
                   ROOT / "bench/upgrade/erlang/upgsrv.erl"], f"erlc upgsrv v{v}")
        check(["erlc", "-o", tmp / "e1", ROOT / "bench/upgrade/erlang/upgbench.erl"],
              "erlc upgbench")

        def wisp_run(*a):
            return [wisp, "run", "--tier", "opt", "--dir", f"{tmp / 'v'}::/v", tmp / "v1.wasm",
                    *map(str, a), "/v/v2.wasm"]

        def erl_run(*a):
            return ["erl", "-noshell", "-pa", str(tmp / "e1"), "-s", "upgbench", "main",
                    *map(str, a), str(tmp / "e2")]

        cases = [("one 1K", ("one", 1024, n_one)), ("one 1M", ("one", 1 << 20, n_one // 4)),
                 ("pause", ("pause", n_pause))]
        best = {}
        for _ in range(args.runs):
            for name, a in cases:
                for impl, cmd, e in (("wisp", wisp_run(*a), env), ("erlang", erl_run(*a), None)):
                    r = run(cmd, env=e, timeout=600)
                    words = r.stdout.split()
                    if r.returncode != 0 or not words or words[0] != a[0]:
                        raise BenchError(f"{impl} {name}: {r.stdout} {r.stderr}")
                    vals = [float(w) for w in words[2:]]
                    print(f"  {impl:7} {name:7} {' '.join(words[2:])}", flush=True)
                    k = (impl, name)
                    # one: median µs; pause: total ms, client max ms, base ms
                    if k not in best or vals[0] < best[k][0]:
                        best[k] = vals
        print()
        print(f"{'measure':28} {'wisp':>10} {'BEAM':>10} {'wisp/BEAM':>10}")
        for name, label in (("one 1K", "upgrade, 1 KiB state (µs)"),
                            ("one 1M", "upgrade, 1 MiB state (µs)")):
            w, e = best[("wisp", name)][0], best[("erlang", name)][0]
            print(f"{label:28} {w:10.1f} {e:10.1f} {w / e:10.2f}")
        w, e = best[("wisp", "pause")], best[("erlang", "pause")]
        print(f"{f'{n_pause} servers moved (ms)':28} {w[0]:10.1f} {e[0]:10.1f} {w[0] / e[0]:10.2f}")
        print(f"{'client longest call (ms)':28} {w[1]:10.2f} {e[1]:10.2f} {w[1] / e[1]:10.2f}")
        print(f"{'  same, nothing moving (ms)':28} {w[2]:10.2f} {e[2]:10.2f}")
        print(machine_note())
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"bench/upgrade_run.py: {e}", file=sys.stderr)
        sys.exit(1)
