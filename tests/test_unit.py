"""Runs the C unit-test binaries (cmocka, one per module under tests/unit/)
as part of the one pytest run, so the suite has a single summary line."""
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNIT_DIR = Path(os.environ.get("WISP_UNIT_DIR", ROOT / "build" / "default" / "tests"))
SOURCES = sorted((ROOT / "tests" / "unit").glob("test_*.c"))


@pytest.mark.parametrize("name", [s.stem for s in SOURCES])
def test_unit(name, tmp_path):
    binary = UNIT_DIR / name
    assert binary.exists(), f"{binary} was not built: run 'make unit'"
    env = dict(os.environ, TMPDIR=str(tmp_path))
    r = subprocess.run([str(binary)], capture_output=True, text=True, timeout=600,
                       env=env, cwd=tmp_path)
    assert r.returncode == 0, f"{name} failed:\n{r.stdout}\n{r.stderr}"
    assert "[  PASSED  ]" in r.stdout + r.stderr, r.stdout + r.stderr
