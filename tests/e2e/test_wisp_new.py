"""`wisp new`: fresh projects as a new user makes them, built, run and
tested with plain `cargo` (and `make` for C), through the real toolchain and
the real ./wisp.

The Debian path (Debian's rustc with the std scripts/setup.sh builds) is
forced with WISP_RUST_SYSROOT; the "rustc that has the target" path
(rustup's `rustup target add wasm32-wasip1`) is taken by putting a rustc
whose own sysroot has the target first on PATH. Without the toolchain these
tests fail, on purpose, as test_rust.py does."""
import os
import re
import shutil
import socket
import subprocess

import pytest

from conftest import ROOT, WISP

SETUP_RUST = ROOT / "scripts" / "setup-rust-wasm.sh"
GREETING = "Hello, {}! (from a wisp process)\n"


def cargo_bin():
    return shutil.which("cargo") or "/usr/bin/cargo"


@pytest.fixture(scope="module")
def debian_sysroot():
    return subprocess.run([str(SETUP_RUST), "--print-sysroot"], capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.fixture(scope="module")
def user_env(build_dir, shared_cache, debian_sysroot):
    """A new user's environment: cargo's own target dir per project, wisp's
    compile cache shared with the session."""
    env = dict(os.environ)
    for k in ("CARGO_TARGET_DIR", "RUSTC", "RUSTFLAGS", "CARGO_BUILD_TARGET",
              "CARGO_TARGET_WASM32_WASIP1_RUNNER"):
        env.pop(k, None)
    env["WISP_CACHE_DIR"] = str(shared_cache)
    env["WISP_BACKGROUND_COMPILE"] = "0"
    env["WISP_RUST_SYSROOT"] = debian_sysroot
    env["WISP_CARGO_WASM_VERBOSE"] = "1"
    return env


def run(cmd, cwd, env, timeout=900):
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def new(tmp, *args, wisp=WISP, env=None):
    return run([str(wisp), "new", *args], tmp, env or dict(os.environ))


def test_usage_errors(tmp_path):
    r = new(tmp_path)
    assert r.returncode == 2 and "wisp new: missing NAME" in r.stderr, r
    for bad in ("9lives", "has space", "a/b", "test", "wisp", "x" * 65, ""):
        r = new(tmp_path, bad)
        assert r.returncode == 2, (bad, r)
        assert "cannot name a project" in r.stderr, (bad, r)
    r = new(tmp_path, "one", "two")
    assert r.returncode == 2 and "unexpected argument 'two'" in r.stderr, r
    r = new(tmp_path, "--go", "x")
    assert r.returncode == 2 and "unexpected argument '--go'" in r.stderr, r
    assert list(tmp_path.iterdir()) == []


def test_an_existing_directory_is_left_alone(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.txt").write_text("keep me")
    r = new(tmp_path, "taken")
    assert r.returncode == 1 and "'taken': it exists already" in r.stderr, r
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["mine.txt"]


def test_no_sdk_found_is_an_error_not_a_half_project(tmp_path):
    lone = tmp_path / "bin"
    lone.mkdir()
    shutil.copy(WISP, lone / "wisp")
    r = new(tmp_path, "hello", wisp=lone / "wisp")
    assert r.returncode == 1 and "cannot find wisp's SDKs" in r.stderr, r
    assert not (tmp_path / "hello").exists()


def test_the_rust_project_names_this_wisp_and_its_sdk(tmp_path):
    r = new(tmp_path, "my-app")
    assert r.returncode == 0, r
    assert "cd my-app && cargo run" in r.stdout
    p = tmp_path / "my-app"
    assert sorted(str(f.relative_to(p)) for f in p.rglob("*") if f.is_file()) == [
        ".cargo/config.toml", ".gitignore", "Cargo.toml", "src/main.rs", "tests/processes.rs"]
    config = (p / ".cargo" / "config.toml").read_text()
    assert f'runner = ["{WISP.resolve()}", "run"]' in config
    assert f'rustc = "{ROOT}/scripts/wisp-rustc"' in config
    assert 'target = "wasm32-wasip1"' in config
    assert f'wisp = {{ path = "{ROOT}/sdk/rust/wisp" }}' in (p / "Cargo.toml").read_text()
    assert 'name = "my-app"' in (p / "Cargo.toml").read_text()
    assert "{{" not in config + (p / "src" / "main.rs").read_text()


@pytest.fixture(scope="module")
def hello(tmp_path_factory):
    """A fresh `wisp new hello`, shared by the tests that build it."""
    tmp = tmp_path_factory.mktemp("new-user")
    r = new(tmp, "hello")
    assert r.returncode == 0, r
    return tmp / "hello"


def test_cargo_run_prints_the_greeting_debian_path(hello, user_env):
    r = run([cargo_bin(), "run"], hello, user_env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == GREETING.format("hello"), r
    assert "with the sysroot" in r.stderr, r.stderr   # wisp-rustc took Debian's rustc
    # Cached: nothing is rebuilt.
    r = run([cargo_bin(), "run"], hello, user_env)
    assert r.returncode == 0 and r.stdout == GREETING.format("hello"), r
    assert "Compiling" not in r.stderr, r.stderr


def test_cargo_test_passes_on_the_fresh_project(hello, user_env):
    r = run([cargo_bin(), "test"], hello, user_env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "test tests::greets_by_name ... ok\n" in r.stdout, r.stdout
    assert "test a_process_answers ... ok\n" in r.stdout, r.stdout
    assert "test a_panic_ends_one_process ... ok\n" in r.stdout, r.stdout
    assert r.stdout.count("test result: ok.") == 2, r.stdout


def test_a_new_test_file_runs_without_touching_cargo_toml(hello, user_env):
    """A file under tests/ with #[wisp::test] functions: `cargo test` runs
    it; a failing test fails alone, with its panic message and location."""
    test = hello / "tests" / "more.rs"
    test.write_text(
        "#[wisp::test]\n"
        "fn passes() { assert_eq!(1 + 1, 2); }\n"
        "\n"
        "#[wisp::test]\n"
        "fn fails() {\n"
        "    let v = vec![1, 2];\n"
        "    assert_eq!(v.len(), 3, \"the vector is short\");\n"
        "}\n"
        "\n"
        "#[wisp::test]\n"
        "#[should_panic(expected = \"another text\")]\n"
        "fn panics_with_the_wrong_text() { panic!(\"some text\") }\n"
        "\n"
        "#[wisp::test]\n"
        "#[should_panic]\n"
        "fn does_not_panic() {}\n"
        "\n"
        "#[wisp::test(timeout = 1)]\n"
        "fn hangs() { wisp::sleep(wisp::FOREVER) }\n"
        "\n"
        "#[wisp::test]\n"
        "#[ignore = \"slow\"]\n"
        "fn ignored() { panic!(\"never runs\") }\n"
        "\n"
        "#[wisp::test]\n"
        "fn after_the_failures() -> Result<(), String> { Ok(()) }\n")
    try:
        r = run([cargo_bin(), "test", "--test", "more"], hello, user_env)
    finally:
        test.unlink()
    assert r.returncode == 101, r.stdout + r.stderr
    out = r.stdout
    for name in ("passes", "after_the_failures"):
        assert f"test {name} ... ok\n" in out, out
    for name in ("fails", "panics_with_the_wrong_text", "does_not_panic", "hangs"):
        assert f"test {name} ... FAILED\n" in out, out
    assert "test ignored ... ignored, slow\n" in out, out
    assert "Error: test panicked at tests/more.rs:7:5:\nassertion `left == right` failed: the vector is short\n" \
        in out, out
    # Its crash report's backtrace starts in the test, not in the harness
    # that called it.
    report = r.stderr[r.stderr.index("panicked: tests/more.rs:7:5"):]
    assert re.search(r"\n    age [^\n]*\n    at more::fails\b", report), r.stderr
    assert 'panic message: "some text"\n expected substring: "another text"' in out, out
    assert "Error: the test did not panic as expected" in out, out
    assert "Error: more::hangs: timed out after 1s (killed)" in out, out
    assert "test result: FAILED. 2 passed; 4 failed; 1 ignored;" in out, out


def test_the_rustc_with_the_target_is_used_when_there_is_one(hello, user_env, debian_sysroot, tmp_path):
    """rustup with `rustup target add wasm32-wasip1` puts a rustc whose own
    sysroot has the target on PATH: wisp-rustc runs that one unchanged. (A
    stand-in: a rustc that always uses the Debian-built sysroot, since
    rustup here cannot download the target.)"""
    tool = tmp_path / "toolchain" / "bin"
    tool.mkdir(parents=True)
    for name in ("rustc", "rustdoc"):
        (tool / name).write_text(f"#!/bin/sh\nexec /usr/bin/{name} --sysroot {debian_sysroot} \"$@\"\n")
        (tool / name).chmod(0o755)
    env = dict(user_env)
    del env["WISP_RUST_SYSROOT"]
    env["PATH"] = f"{tool}:{env['PATH']}"
    env["CARGO_TARGET_DIR"] = str(tmp_path / "target")
    r = run([cargo_bin(), "run"], hello, env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == GREETING.format("hello"), r
    assert f"using {tool}/rustc (it has the wasm32-wasip1 target)" in r.stderr, r.stderr


def test_without_any_toolchain_the_error_says_what_to_do(hello, user_env, tmp_path):
    env = dict(user_env)
    env["WISP_RUST_SYSROOT"] = str(tmp_path / "no-sysroot")
    env["CARGO_TARGET_DIR"] = str(tmp_path / "target")
    r = run([cargo_bin(), "build"], hello, env)
    assert r.returncode != 0, r
    assert "no wasm32-wasip1 standard library at" in r.stderr, r.stderr
    assert "scripts/setup.sh" in r.stderr, r.stderr


def test_an_installed_wisp_makes_projects_from_its_share_directory(tmp_path, user_env):
    """`make install` puts the SDKs under PREFIX/share/wisp; the installed
    wisp's projects use them and build."""
    prefix = tmp_path / "prefix"
    r = run(["make", "-s", "install", f"PREFIX={prefix}"], ROOT, dict(os.environ), timeout=300)
    assert r.returncode == 0, r
    wisp = prefix / "bin" / "wisp"
    share = prefix / "share" / "wisp"
    r = new(tmp_path, "installed", wisp=wisp)
    assert r.returncode == 0, r
    proj = tmp_path / "installed"
    assert f'path = "{share}/sdk/rust/wisp"' in (proj / "Cargo.toml").read_text()
    assert f'rustc = "{share}/scripts/wisp-rustc"' in (proj / ".cargo" / "config.toml").read_text()
    r = run([cargo_bin(), "run"], proj, user_env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == GREETING.format("installed"), r
    assert f"Running `{wisp} run" in r.stderr, r.stderr


def test_the_c_project_builds_runs_and_tests(tmp_path, shared_cache):
    r = new(tmp_path, "--c", "hi-c")
    assert r.returncode == 0, r
    assert "cd hi-c && make run" in r.stdout
    env = dict(os.environ, WISP_CACHE_DIR=str(shared_cache), WISP_BACKGROUND_COMPILE="0")
    r = run(["make", "-s", "run"], tmp_path / "hi-c", env)
    assert r.returncode == 0, r
    assert r.stdout.endswith(GREETING.format("hi-c")), r
    r = run(["make", "-s", "test"], tmp_path / "hi-c", env)
    assert r.returncode == 0 and "test: ok" in r.stdout, r


SDK_README = ROOT / "sdk" / "rust" / "README.md"


def readme_section(number):
    """The text of sdk/rust/README.md's section `number` ("## N. ...")."""
    text = SDK_README.read_text()
    start = text.index(f"\n## {number}. ")
    return text[start:text.index("\n## ", start + 1)]


def rust_blocks(section):
    """The ```rust blocks of a README section, joined."""
    return "\n".join(re.findall(r"```rust\n(.*?)```", section, re.S))


def read_line(sock):
    """Bytes up to and including a newline, or up to the end of the stream."""
    data = b""
    while not data.endswith(b"\n"):
        more = sock.recv(100)
        if not more:
            break
        data += more
    return data


@pytest.fixture(scope="module")
def tutorial(hello, tmp_path_factory):
    """A second `wisp new` project for the README tutorial's programs. It
    builds into hello's target directory: the dependencies are built once."""
    tmp = tmp_path_factory.mktemp("tutorial")
    r = new(tmp, "tutorial")
    assert r.returncode == 0, r
    return tmp / "tutorial"


def test_the_tutorials_server_and_supervisor_run_as_written(tutorial, hello, user_env):
    """Sections 6 (a server with typed and deferred handlers, a typed
    name) and 7 (a supervisor of it) of sdk/rust/README.md, as printed,
    in a `main` of a new project (the one function they use and do not
    define, `janitor`, added)."""
    six, seven = rust_blocks(readme_section(6)), rust_blocks(readme_section(7))
    assert "deferred::<" in six and "HandleDeferred<" in six, six
    (tutorial / "src" / "main.rs").write_text(
        "fn janitor(_: (), _mb: wisp::Mailbox<()>) { wisp::sleep(wisp::FOREVER) }\n\n"
        "fn main() -> Result<(), Box<dyn std::error::Error>> {\n"
        f"{six}\n{{\n{seven}\n}}\nprintln!(\"the tutorial ran\");\nOk(())\n}}\n")
    env = dict(user_env, CARGO_TARGET_DIR=str(hello / "target"))
    r = run([cargo_bin(), "run"], tutorial, env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r'\[ChildInfo \{ id: "counter", pid: Some\(<[0-9.]+>\) \}, '
                     r'ChildInfo \{ id: "janitor", pid: Some\(<[0-9.]+>\) \}\]\n', r.stdout), r.stdout
    assert r.stdout.endswith("the tutorial ran\n"), r.stdout


def test_the_tutorials_tcp_service_runs_in_a_new_project_as_the_readme_says(tutorial, hello, user_env):
    """Section 10, the tutorial's end: its program as `src/main.rs`, the
    runner line as the README says to change it (with a free port), then
    `cargo run -- PORT`: it echoes, and a handler that panics ends only its
    own connection."""
    section = readme_section(10)
    (tutorial / "src" / "main.rs").write_text(rust_blocks(section))
    runner = re.search(r'```toml\n(runner = \[.*\])\n```', section).group(1)
    flags = re.search(r'"run", (.*)\]', runner).group(1)
    assert flags == '"--allow-listen", "127.0.0.1:7000"', runner
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tutorial / ".cargo" / "config.toml"
    text = config.read_text()
    assert f'runner = ["{WISP.resolve()}", "run"]' in text, text
    config.write_text(text.replace('"run"]', '"run", ' + flags.replace("7000", str(port)) + "]"))
    env = dict(user_env, CARGO_TARGET_DIR=str(hello / "target"))
    proc = subprocess.Popen([cargo_bin(), "run", "--", str(port)], cwd=tutorial, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        line = proc.stdout.readline()       # after the build
        assert line == f"listening on 127.0.0.1:{port}\n", (line, proc.stderr.read() if not line else "")
        with socket.create_connection(("127.0.0.1", port), timeout=30) as a:
            a.sendall(b"hello\n")
            assert read_line(a) == b"hello\n"
            with socket.create_connection(("127.0.0.1", port), timeout=30) as b:
                b.sendall(b"crash\n")
                assert b.recv(100) == b""   # its handler panicked: closed
            a.sendall(b"still here\n")
            assert read_line(a) == b"still here\n"
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()
    assert "panicked: src/main.rs:" in proc.stderr.read()
