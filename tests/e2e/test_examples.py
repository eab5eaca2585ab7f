"""The examples the README points to build with `make -C examples` and run."""
import subprocess

import pytest

from conftest import ROOT

EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="module")
def examples():
    r = subprocess.run(["make", "-C", str(EXAMPLES)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"make -C examples failed (is the toolchain set up? run "
                    f"'sudo scripts/setup.sh'):\n{r.stdout}{r.stderr}", pytrace=False)
    return EXAMPLES


def test_hello_c(wisp, examples):
    r = wisp("run", examples / "hello.wasm", "one", "two words")
    assert (r.code, r.err) == (0, ""), r
    assert r.out == "Hello from wisp!\narg 1: one\narg 2: two words\n", r


def test_hello_c_no_args(wisp, examples):
    r = wisp("run", examples / "hello.wasm")
    assert (r.code, r.out) == (0, "Hello from wisp!\n"), r


def test_hello_rust(wisp, examples):
    r = wisp("run", examples / "hello-rust.wasm", "wisp", "rust")
    assert (r.code, r.err) == (0, ""), r
    assert r.out == ("Hello from Rust on wisp!\n"
                     "arg 1: wisp\n"
                     "arg 2: rust\n"
                     "letters: i=1 p=1 r=1 s=2 t=1 u=1 w=1\n"), r


def test_readme_command(wisp, examples):
    # The README's first example, as typed there from the repository's root.
    r = wisp("run", "examples/hello.wasm", cwd=ROOT)
    assert (r.code, r.out) == (0, "Hello from wisp!\n"), r
