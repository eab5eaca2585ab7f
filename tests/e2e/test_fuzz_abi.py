"""The host ABI fuzzer (tests/guests/c/fuzz_abi.c, issue 7).

A watcher (main) runs rounds of a fuzzing process that calls every host
function (the 46 of WASI preview 1, the six of preview 0 with code of their
own, and the wisp namespaces) with random and adversarial arguments; each
round's fuzzer ends however it ends (finishes, traps, exits, is killed by
its own exit signal), and the watcher spawns the next with the next seed
while doing checked work with an echo process. The host must survive every round: wisp exits 0, the watcher reports every round
done, all its work correct, no fuzzer hung, its own memory untouched.
"""
import os
import random
import re

import pytest



@pytest.fixture(scope="module")
def fuzz_abi(build_proc):
    return build_proc("fuzz_abi.c")


# The lines of crash and supervisor reports (tests/e2e/test_crash_reports.py):
# a record's first line, its indented lines, the count of those suppressed.
CRASH_REPORT = re.compile(r"^(wisp: crash report: process [0-9a-f]+( \(.*\))? (trapped|panicked|"
                          r"was ended by a limit|was killed( by [0-9a-f]+)?|killed itself|ended)"
                          r"(: .*)?|wisp: supervisor report: supervisor [0-9a-f]+.*|    .*|"
                          r"wisp: \d+ more reports? suppressed)$")


def run_fuzz(wisp, module, tmp_path, rounds, seed, calls, schedulers=None):
    d = tmp_path / f"pre-{seed}"
    d.mkdir()
    args = ["run", "--dir", d]
    if schedulers:
        args += ["--schedulers", schedulers]
    # stdin is empty: fd_read(0) returns at once instead of blocking.
    r = wisp(*args, module, rounds, seed, calls, input="", timeout=240)
    return r


def check(r, rounds):
    assert r.code == 0, r
    # The fuzzer's rounds and children trap, panic, are killed: each such
    # end is reported, and its supervisor reports written (tests/e2e/
    # test_crash_reports.py); nothing else may reach stderr.
    for line in r.err.splitlines():
        assert CRASH_REPORT.match(line), r
    m = re.search(r"^rounds (\d+)/(\d+): NORMAL (\d+) TRAP (\d+) CODE (\d+) KILLED (\d+) "
                  r"NOPROC (\d+) other (\d+), hung (\d+), full (\d+)$", r.out, re.M)
    assert m, r
    done, total, normal, trap, code, killed, noproc, other, hung, full = map(int, m.groups())
    assert done == total == rounds, r
    assert normal + trap + code + killed + noproc == rounds, r
    # (A hung round says which seed and after how many calls: quoted here,
    # as r's repr cuts stdout short.)
    assert other == 0 and hung == 0, ([line for line in r.out.splitlines()
                                       if "hung after" in line], r)
    w = re.search(r"^work: (\d+) ok, (\d+) bad;", r.out, re.M)
    assert w and int(w.group(2)) == 0 and int(w.group(1)) >= 100, r
    assert r.out.rstrip().endswith("ALL ROUNDS DONE"), r
    return dict(trap=trap, full=full, normal=normal)


@pytest.mark.parametrize("schedulers", [1, 2])
def test_abi_fuzz_fixed_seed(wisp, fuzz_abi, tmp_path, schedulers):
    r = run_fuzz(wisp, fuzz_abi, tmp_path, 100, 1, 3000, schedulers)
    stats = check(r, 100)
    # The fixed seed reaches the end of some rounds and traps in others:
    # both paths of the harness are exercised.
    assert stats["trap"] > 0 and stats["full"] > 0, r


def test_abi_fuzz_random_seed(wisp, fuzz_abi, tmp_path):
    seed = int(os.environ.get("WISP_ABI_FUZZ_SEED", random.randrange(1, 1 << 40)))
    print(f"abi fuzz seed {seed} (rerun with WISP_ABI_FUZZ_SEED={seed})")
    rounds = int(os.environ.get("WISP_ABI_FUZZ_ROUNDS", 60))   # make fuzz runs more
    r = run_fuzz(wisp, fuzz_abi, tmp_path, rounds, seed, 3000)
    check(r, rounds)
    assert f"seed {seed}," in r.out


def test_abi_fuzz_children_only_die_themselves(wisp, fuzz_abi, tmp_path):
    # Many short rounds: spawning, linking, monitoring and killing children
    # and stale pids round after round, with the echo still answering.
    r = run_fuzz(wisp, fuzz_abi, tmp_path, 300, 7777, 300, 2)
    check(r, 300)
