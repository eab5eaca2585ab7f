"""Shared fixtures for wisp's test suite.

End-to-end tests build real guests during the run (C with clang for
wasm32-wasi and wasi-libc, WAT with wat2wasm, Rust for wasm32-wasip1) and run
them through the real `wisp` binary. Builds are memoised per session by a hash
of their inputs, so a guest shared by several tests is built once.

Every test gets its own empty compile cache unless it asks for the shared one
(`shared_cache`), so cache behaviour is tested from a known state while most
tests reuse compiled modules and stay fast.
"""
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUESTS = ROOT / "tests" / "guests"
WISP = Path(os.environ.get("WISP_BIN", ROOT / "wisp"))
CLANG = os.environ.get("WISP_CLANG", "clang")
WASI_SYSROOT = os.environ.get("WISP_WASI_SYSROOT", "/usr")
RUST_SYSROOT = os.environ.get("WISP_RUST_SYSROOT", "")


class Result:
    def __init__(self, proc):
        self.code = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    def __repr__(self):
        return f"<exit {self.code}\nstdout: {self.out!r}\nstderr: {self.err!r}>"


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("guests")


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory):
    """A compile cache shared by the whole session."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def control_env(shared_cache, tmp_path):
    """The environment of a run other commands find (wisp reload, ps,
    stats...): a runtime directory of the test's own (0700), so a test sees
    only its runs' control sockets; the shared cache, no background
    compile."""
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    return dict(os.environ, WISP_CACHE_DIR=str(shared_cache), WISP_BACKGROUND_COMPILE="0",
                XDG_RUNTIME_DIR=str(run))


def _digest(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


@pytest.fixture(scope="session")
def build_c(build_dir):
    """build_c(source_text_or_path, *flags) -> Path of a wasm32-wasi module."""

    def build(src, *flags, name=None):
        if isinstance(src, Path) or (isinstance(src, str) and src.endswith(".c") and "\n" not in src):
            path = Path(src)
            if not path.is_absolute():
                path = GUESTS / "c" / path
            text = path.read_text()
            stem = path.stem
        else:
            text, stem = src, name or "guest"
        out = build_dir / f"{stem}-{_digest(text, flags)}.wasm"
        if not out.exists():
            srcfile = out.with_suffix(".c")
            srcfile.write_text(text)
            cmd = [CLANG, "--target=wasm32-wasi", f"--sysroot={WASI_SYSROOT}", "-O2",
                   "-I", str(ROOT / "include"), "-o", str(out), str(srcfile), *flags]
            subprocess.run(cmd, check=True, capture_output=True, text=True)
        return out

    return build


@pytest.fixture(scope="session")
def build_wat(build_dir):
    """build_wat(wat_text) -> Path of the module."""

    def build(text, name="wat", *flags):
        out = build_dir / f"{name}-{_digest(text, flags)}.wasm"
        if not out.exists():
            src = out.with_suffix(".wat")
            src.write_text(text)
            subprocess.run(["wat2wasm", *flags, "--debug-names", str(src), "-o", str(out)],
                           check=True, capture_output=True, text=True)
        return out

    return build


@pytest.fixture(scope="session")
def build_rust(build_dir):
    """build_rust(crate_dir) -> Path of the release wasm32-wasip1 binary.

    Needs the wasm32-wasip1 standard library that scripts/setup-rust-wasm.sh
    prepares (WISP_RUST_SYSROOT, or a rustup target)."""

    def build(crate, bin_name=None):
        crate = Path(crate)
        if not crate.is_absolute():
            crate = GUESTS / "rust" / crate
        target_dir = build_dir / "rust-target"
        env = dict(os.environ)
        env["CARGO_TARGET_DIR"] = str(target_dir)
        cmd = [str(ROOT / "scripts" / "cargo-wasm"), "build", "--release", "--quiet"]
        subprocess.run(cmd, cwd=crate, env=env, check=True, capture_output=True, text=True)
        name = bin_name or crate.name
        return target_dir / "wasm32-wasip1" / "release" / f"{name}.wasm"

    return build


@pytest.fixture
def cache_dir(tmp_path):
    d = tmp_path / "cache"
    d.mkdir()
    return d


@pytest.fixture
def wisp(shared_cache):
    """wisp(*args, input=None, env=None, cache=None, timeout=120, cwd=None) -> Result.

    Runs the real binary with the session's shared cache unless `cache` names
    another directory."""

    def run(*args, input=None, env=None, cache=None, timeout=120, cwd=None):
        e = dict(os.environ)
        e["WISP_CACHE_DIR"] = str(cache or shared_cache)
        e.setdefault("WISP_BACKGROUND_COMPILE", "0")
        if env:
            e.update(env)
        args = list(map(str, args))
        # Hard modes (tests/e2e/test_hard_modes.py): extra options for
        # every `wisp run`, e.g. a one-reduction slice and the smallest stack.
        hard = os.environ.get("WISP_HARD_MODE_ARGS")
        if hard and args[:1] == ["run"]:
            args = ["run", *hard.split(), *args[1:]]
        proc = subprocess.run([str(WISP), *args], input=input, env=e,
                              capture_output=True, text=isinstance(input, str) or input is None,
                              timeout=timeout, cwd=cwd)
        return Result(proc)

    return run


def have_rust():
    return (ROOT / "scripts" / "cargo-wasm").exists() and shutil.which("cargo") is not None


SDK_C = ROOT / "sdk" / "c" / "wisp.c"
# The C SDK's sources, compiled into every process guest (the term codec
# costs a guest nothing it does not call: the linker drops it).
SDK_C_SOURCES = [SDK_C, ROOT / "sdk" / "c" / "term.c"]


@pytest.fixture(scope="session")
def build_proc(build_dir):
    """build_proc(source_text_or_path, *flags, name=None) -> Path of a
    wasm32-wasi module built from the guest together with the C SDK
    (sdk/c/wisp.c: the spawn entry and helpers; sdk/c/term.c: Erlang
    terms), memoised by the content of all the files."""

    def build(src, *flags, name=None):
        if isinstance(src, Path) or (isinstance(src, str) and src.endswith(".c") and "\n" not in src):
            path = Path(src)
            if not path.is_absolute():
                path = GUESTS / "c" / path
            text = path.read_text()
            stem = path.stem
        else:
            text, stem = src, name or "proc"
        sdk = "".join(p.read_text() for p in SDK_C_SOURCES)
        out = build_dir / f"{stem}-{_digest(text, sdk, flags)}.wasm"
        if not out.exists():
            srcfile = out.with_suffix(".c")
            srcfile.write_text(text)
            tmp = out.with_suffix(".tmp.wasm")
            cmd = [CLANG, "--target=wasm32-wasi", f"--sysroot={WASI_SYSROOT}", "-O2",
                   "-Wall", "-Wextra", "-Werror", "-I", str(ROOT / "include"),
                   "-o", str(tmp), str(srcfile), *map(str, SDK_C_SOURCES), *flags]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError(f"building {stem} failed:\n{r.stderr}")
            tmp.rename(out)
        return out

    return build
