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


def test_echo_example_as_the_readme_runs_it(examples, shared_cache):
    """./wisp run examples/echo.wasm PORT, then a client (README, Examples)."""
    import os
    import socket
    from conftest import WISP
    env = dict(os.environ, WISP_CACHE_DIR=str(shared_cache), WISP_BACKGROUND_COMPILE="0")
    proc = subprocess.Popen([str(WISP), "run", "--allow-listen", "127.0.0.1:*",
                             "examples/echo.wasm", "0"], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        port = int(proc.stdout.readline().rsplit(":", 1)[1])
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"from the readme\n")
        assert s.recv(100) == b"from the readme\n"
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_chat_example_builds(examples):
    assert (examples / "chat.wasm").stat().st_size > 1000
