"""bench/proc_run.py at its --tiny sizes, so the benchmark code cannot rot:
every workload runs in every column that has it (wisp with C and Rust
guests, BEAM and Go, which scripts/setup.sh installs), the million modes'
code runs at 1k/2k processes, the memory guard stops a run, and a wisp that
fails shows its own error. Nothing here checks a figure's size (the machine
is noisy): only that each was measured and printed.

The Rust guests build into the target directory test_rust_sdk.py uses, so
the crate's dependencies are built once per session. Skipped under the
sanitizers: the bench measures the release binary."""
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, WISP

BENCH = ROOT / "bench" / "proc_run.py"
COLS = ["wisp-c", "wisp-rust", "erlang", "go"]

pytestmark = pytest.mark.skipif(os.environ.get("WISP_SANITIZE", "") != "",
                                reason="the bench measures the release binary")


def bench(build_dir, *args, timeout=600):
    env = dict(os.environ, WISP_BIN=str(WISP),
               CARGO_TARGET_DIR=str(build_dir / "rust-sdk-target"))
    return subprocess.run([sys.executable, str(BENCH), "--tiny", "--tier", "fast", *args],
                          env=env, capture_output=True, text=True, timeout=timeout)


def table(out, first):
    """{label: [cells]} of the table whose header starts with `first`."""
    lines = out.splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith(first + " "))
    rows = {}
    for line in lines[start + 2:]:
        if not line.strip() or line.startswith(("note:", "fiber switch", "idle =")):
            break
        cells = re.split(r"\s{2,}", line.strip())
        rows[cells[0]] = cells[1:]
    return rows


def row(rows, prefix):
    hits = [cells for label, cells in rows.items() if label.startswith(prefix)]
    assert len(hits) == 1, f"no single row {prefix!r} in {list(rows)}"
    return hits[0]


def figure(cells, col):
    """The number in column col of a main-table row, or None for '-'."""
    cell = cells[1 + COLS.index(col)]
    return None if cell == "-" else float(cell)


def peers():
    have_go = any(p and os.path.exists(p) for p in
                  [os.environ.get("WISP_GO"), "/usr/local/go/bin/go", shutil.which("go")])
    return [c for c, ok in [("erlang", shutil.which("erl") and shutil.which("erlc")),
                            ("go", have_go)] if ok]


@pytest.fixture(scope="module")
def full_run(build_dir):
    r = bench(build_dir, "--million")
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r.stdout


@pytest.mark.parametrize("label, cols", [
    ("spawn+exit", COLS),
    ("idle process", COLS),
    ("idle, hibernated", ["wisp-c", "wisp-rust", "erlang"]),
    ("ping-pong", ["wisp-c", "erlang", "go"]),
    ("ring hop", ["wisp-c", "erlang", "go"]),
    ("skynet", COLS),
    ("sleepers: CPU per wake-up", COLS),
    ("sleepers: mean period", COLS),
    ("round trip to a waiting process", ["wisp-c", "erlang"]),
    ("wake from hibernation + round trip", ["wisp-c", "erlang"]),
])
def test_each_workload_is_measured_in_each_column_that_has_it(full_run, label, cols):
    cells = row(table(full_run, "workload"), label)
    for col in COLS:
        got = figure(cells, col)
        if col in cols and (col.startswith("wisp") or col in peers()):
            assert got is not None and got >= 0, f"{label}: no {col} figure: {cells}"
        else:
            assert got is None, f"{label}: a {col} figure where there is no such workload"


def test_rows_with_targets_say_whether_they_are_met(full_run):
    rows = table(full_run, "workload")
    assert re.fullmatch(r"C (met|MISSED), Rust (met|MISSED)", row(rows, "spawn+exit")[-1])
    assert row(rows, "idle process")[-2] == "C <= 4 KiB; Rust <= 8 KiB"
    assert row(rows, "sleepers: CPU")[-2] == "C <= erlang; Rust <= erlang"


def test_million_modes_report_ready_time_and_memory(full_run):
    rows = table(full_run, "run")
    for label, n in [("wisp-rust", "1,000"), ("wisp-rust hibernated", "1,000"),
                     ("wisp-c", "2,000"), ("wisp-c hibernated", "2,000")]:
        cells = rows[label]
        assert cells[0] == n
        ready, rss, per = map(float, cells[2:5])
        assert ready >= 0 and rss > 0 and per > 0, cells
    assert rows["wisp-rust"][5] == "ready <= 30 s"
    assert rows["wisp-c hibernated"][1] == "--hibernate-after 200ms"
    assert "wisp-c: hibernating adds" in full_run


def test_the_memory_guard_stops_a_run(build_dir):
    r = bench(build_dir, "--only", "million", "--impls", "wisp-c", "--abort-share", "0.000001")
    assert r.returncode == 0, r.stdout + r.stderr
    rows = table(r.stdout, "run")
    assert rows["wisp-c"][-1] == "aborted"
    assert "stopped: RSS" in r.stdout


def test_a_failing_wisp_run_shows_its_error_and_how_far_it_got(build_dir):
    # 2,000 processes wanted, 500 allowed: the guest reports progress at
    # every 200 spawns, then fails spawning the 501st.
    r = bench(build_dir, "--only", "million", "--impls", "wisp-c",
              "--wisp-arg=--max-processes", "--wisp-arg=500")
    assert r.returncode == 0, r.stdout + r.stderr
    assert table(r.stdout, "run")["wisp-c"][-1] == "FAILED"
    assert "procbench: wisp_spawn failed" in r.stdout
    assert "last progress: spawned=400 after" in r.stdout
