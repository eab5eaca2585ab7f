"""Rust guests (tests/guests/rust/*) built for wasm32-wasip1 with std and run
through the wisp binary: output, arguments, environment, preopened
directories, exit codes, panics and the absence of threads.

Building needs the wasm32-wasip1 standard library that scripts/setup.sh
prepares (or rustup's target). Without it these tests fail, on purpose: CI
always has it, and a silent skip would hide a broken set-up."""
import subprocess

import pytest

BIGSTART_LINE = (
    "bigstart: 400 requests, 392 clients, 4 agents, 10071 KiB, p50 124.879 ms, "
    "p99 245.959 ms, worst16 160.098 ms, slowest /logout (139.134 ms), posts 62, "
    "[200=308 301=27 404=44 500=21], top [api:122 v1:122 python:107] #7576fbad\n")


@pytest.fixture(scope="module")
def rust(build_rust):
    """rust(name) -> Path of tests/guests/rust/<name> built for wasm32-wasip1."""
    built = {}

    def get(name):
        if name not in built:
            try:
                built[name] = build_rust(name)
            except subprocess.CalledProcessError as e:
                pytest.fail(f"building the Rust guest '{name}' failed "
                            f"(is the toolchain set up? run 'sudo scripts/setup.sh'):\n"
                            f"{e.stderr}", pytrace=False)
            assert built[name].exists(), f"cargo did not produce {built[name]}"
        return built[name]

    return get


def test_hello_prints_args(wisp, rust):
    r = wisp("run", rust("hello"), "one", "two words", "")
    assert r.code == 0, r
    assert r.out == ("Hello from Rust!\n"
                     "arg 1: one\n"
                     "arg 2: two words\n"
                     "arg 3: \n"
                     "GREETING unset\n"), r
    assert "hello: stderr works\n" in r.err, r


@pytest.mark.parametrize("tier", ["fast", "opt"])
def test_hello_in_both_tiers(wisp, rust, tier):
    r = wisp("run", "--tier", tier, rust("hello"), "x")
    assert (r.code, r.out) == (0, "Hello from Rust!\narg 1: x\nGREETING unset\n"), r


def test_env_is_given_explicitly_not_inherited(wisp, rust):
    r = wisp("run", "--env", "GREETING=hi there", rust("hello"))
    assert "GREETING=hi there\n" in r.out, r
    # The host's own environment does not leak into the guest.
    r = wisp("run", rust("hello"), env={"GREETING": "from the host"})
    assert "GREETING unset\n" in r.out, r


def test_writes_a_file_in_a_mapped_dir(wisp, rust, tmp_path):
    r = wisp("run", "--dir", f"{tmp_path}::/data", "--env", "HELLO_OUT=/data/out.txt",
             rust("hello"), "a", "b")
    assert r.code == 0, r
    assert "wrote 34 bytes to /data/out.txt\n" in r.out, r
    assert (tmp_path / "out.txt").read_text() == "written by the Rust guest, 2 args\n"


def test_writes_a_file_in_a_dir_under_its_host_path(wisp, rust, tmp_path):
    out = tmp_path / "same.txt"
    r = wisp("run", "--dir", tmp_path, "--env", f"HELLO_OUT={out}", rust("hello"))
    assert r.code == 0, r
    assert out.read_text() == "written by the Rust guest, 0 args\n"


def test_no_dir_no_file(wisp, rust, tmp_path):
    out = tmp_path / "nope.txt"
    r = wisp("run", "--env", f"HELLO_OUT={out}", rust("hello"))
    assert r.code == 2, r
    assert f"hello: cannot create {out}" in r.err, r
    assert not out.exists()


def test_read_only_dir_refuses_the_write(wisp, rust, tmp_path):
    r = wisp("run", "--dir-ro", f"{tmp_path}::/ro", "--env", "HELLO_OUT=/ro/x.txt",
             rust("hello"))
    assert r.code == 2, r
    assert "hello: cannot create /ro/x.txt" in r.err, r
    assert not (tmp_path / "x.txt").exists()


@pytest.mark.parametrize("code", [1, 7, 255])
def test_process_exit_code(wisp, rust, code):
    r = wisp("run", "--env", f"HELLO_EXIT={code}", rust("hello"))
    assert r.code == code, r
    assert r.out.endswith(f"exiting with {code}\n"), r


def test_panic_aborts_with_a_trap(wisp, rust):
    r = wisp("run", rust("panic"), "5")
    assert r.code == 134, r
    assert r.out == "before the panic\n", r
    assert "panicked at src/main.rs" in r.err and "deliberate panic with 5" in r.err, r
    assert "wisp: trap: unreachable" in r.err, r


def test_thread_spawn_fails_cleanly(wisp, rust):
    r = wisp("run", rust("threads"))
    assert r.code == 0, r
    assert r.out == ("main thread: main\n"
                     "spawn failed: Not supported (os error 58) (kind Unsupported)\n"
                     "still running after sleep\n"), r


def test_bigstart_output(wisp, rust):
    m = rust("bigstart")
    assert 80_000 < m.stat().st_size < 300_000, m.stat().st_size
    r = wisp("run", m)
    assert (r.code, r.out, r.err) == (0, BIGSTART_LINE, ""), r


def test_shadow_stack_overflow_is_named(wisp, rust):
    """Rust's stack lives in linear memory below address 64 KiB; running
    off its bottom is reported as such, under the demangled function name,
    not as a bare out-of-bounds access in _ZN4deep7descend17h...E."""
    m = rust("deep")
    r = wisp("run", m, "50")
    assert (r.code, r.out) == (0, "21\n"), r
    r = wisp("run", m, "10000")
    assert r.code == 134, r
    assert "wisp: trap: call stack exhausted in deep::descend: shadow stack full " \
           "(__stack_pointer " in r.err, r
    assert "link with a larger -z stack-size" in r.err, r
