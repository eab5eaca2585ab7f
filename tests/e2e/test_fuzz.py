"""A short bounded pass of the module fuzzers (tests/fuzz/, issue 7).

`make fuzz` runs them for minutes; here each target gets a few seconds so
that every test run exercises the reader, the wisp checks and the codegen
front end on fresh mutations of the seed corpus. Skipped when clang's
libFuzzer runtime (libclang-rt-14-dev) is missing.
"""
import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FZ = ROOT / "build" / "fuzz"
SECONDS = int(os.environ.get("WISP_TEST_FUZZ_SECONDS", "8"))


def _have_libfuzzer():
    r = subprocess.run(["clang", "-print-file-name=libclang_rt.fuzzer-x86_64.a"],
                       capture_output=True, text=True)
    return r.returncode == 0 and Path(r.stdout.strip()).is_file()


@pytest.fixture(scope="module")
def fuzzers():
    if not _have_libfuzzer():
        pytest.skip("clang's libFuzzer runtime is not installed (libclang-rt-14-dev)")
    r = subprocess.run(["make", "-s", "-j2", "fuzz-build"], cwd=ROOT,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    corpus = ROOT / "tests" / "fuzz" / "corpus"
    r = subprocess.run([str(ROOT / "tests" / "fuzz" / "make_corpus.sh"), str(corpus)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return corpus


def test_seed_corpus_is_read_and_translated(fuzzers):
    """Every seed goes through the whole front end without a finding."""
    seeds = sorted(fuzzers.glob("*.wasm"))
    assert len(seeds) >= 10
    r = subprocess.run([str(FZ / "fuzz_codegen"), *map(str, seeds)],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    m = re.search(r"(\d+) inputs reached codegen, (\d+) translated", r.stderr)
    assert m, r.stderr[-2000:]
    # The real guests are all accepted and translated.
    assert int(m.group(2)) >= len([s for s in seeds if s.name.startswith("c_")])


@pytest.mark.parametrize("target", ["fuzz_read", "fuzz_codegen"])
def test_bounded_fuzz_pass(fuzzers, target):
    r = subprocess.run([str(ROOT / "tests" / "fuzz" / "run.sh"), str(SECONDS), target],
                       capture_output=True, text=True, timeout=SECONDS * 10 + 120, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    m = re.search(r"stat::number_of_executed_units: *(\d+)", r.stderr)
    assert m, r.stderr
    assert int(m.group(1)) > 1000
