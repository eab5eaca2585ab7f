"""Hard modes (style guide: "a yield at every reduction point, tiny
stacks"): the process and link suites again, with every `wisp run` given a
one-reduction slice — a process yields at every loop batch and entry check
— and the smallest native stack wisp accepts. Only speed may change."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

MODES = {
    "one-reduction-slices": "--reductions 1",
    "smallest-stack": "--stack-size 192K",
    "both-on-one-scheduler": "--reductions 1 --stack-size 192K --schedulers 1",
}


@pytest.mark.parametrize("mode", sorted(MODES))
def test_process_suites_pass_in_hard_mode(mode, tmp_path):
    env = dict(os.environ, WISP_HARD_MODE_ARGS=MODES[mode])
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "--basetemp", str(tmp_path / "t"),
                        str(HERE / "test_processes.py"), str(HERE / "test_links.py")],
                       capture_output=True, text=True, env=env, timeout=1200)
    tail = "\n".join(r.stdout.splitlines()[-30:])
    assert r.returncode == 0, tail
    assert " passed" in tail and "failed" not in tail, tail
