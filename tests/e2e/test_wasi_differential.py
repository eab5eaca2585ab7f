"""WASI conformance, checked differentially: the suite's WASI-only guests run
under wisp and under wasmtime (the reference, scripts/wasmtime_run.py)
with the same arguments, environment, stdin and preopened trees (two
identical copies), and must agree on the exit status, stdout, stderr and
what they leave in the trees.

Where wisp knowingly differs, the difference is written down here (KEPT) and
in docs/architecture.md ("WASI: where wisp and wasmtime differ"); guests
leave such steps out when PORTABLE=1 is in their environment, which every
case here sets (see wasi_fs.c). Anything else
that differs is a bug in one of the two, to be fixed or added to KEPT with
its reason.

wasmtime comes from PyPI: scripts/setup.sh installs it into a virtual
environment (WISP_WASMTIME_PYTHON overrides where it is looked for). If
setup.sh could not install it, it said why in that directory and the tests
here skip with that reason; if setup.sh was never run, they fail.
"""
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, WISP

VENV = Path(os.environ.get("WISP_WASMTIME_VENV", "/var/cache/wisp/wasmtime-venv"))
REF = ROOT / "scripts" / "wasmtime_run.py"

# Kept differences that show in output, as (guest, pattern, replacement)
# applied to wasmtime's stdout before comparing.
KEPT = [
    # A path that leaves its preopen: wisp answers ENOTCAPABLE, preview 1's
    # capability error (wisp's attack suite and docs rely on it); wasmtime
    # answers EPERM.
    ("wasi_fs.c", r"^(esc_\w+): EPERM$", r"\1: ENOTCAPABLE"),
    ("wasi_ro.c", r"^(\w+): EPERM$", r"\1: ENOTCAPABLE"),
]


def reference_python():
    """An interpreter that has wasmtime, or skip/fail saying why."""
    candidates = [os.environ.get("WISP_WASMTIME_PYTHON"), str(VENV / "bin" / "python"),
                  sys.executable]
    for py in filter(None, candidates):
        if shutil.which(py) or Path(py).exists():
            r = subprocess.run([py, "-c", "import wasmtime"], capture_output=True)
            if r.returncode == 0:
                return py
    failed = VENV.with_name(VENV.name + ".failed")
    if failed.exists():
        pytest.skip("wasmtime could not be installed by scripts/setup.sh: "
                    + failed.read_text().strip()[-500:])
    pytest.fail("wasmtime is not installed: run scripts/setup.sh (it installs the "
                f"PyPI package into {VENV})")


def make_tree(base, spec):
    """spec: {relative path: text, or None for a directory}."""
    base.mkdir(parents=True)
    for rel, text in spec.items():
        p = base / rel
        if text is None:
            p.mkdir(parents=True, exist_ok=True)
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)


def tree_of(base):
    """What a guest left: every entry's type, permission bits and content
    (a symlink's target text), by relative path."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(base):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(base))
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", oct(st.st_mode & 0o777))
            else:
                out[rel] = ("file", oct(st.st_mode & 0o777), p.read_bytes())
    return out


class Case:
    """A guest (a file in tests/guests/c, C source text, or rust=True: a
    crate in tests/guests/rust), its arguments, preopens ((tree path, guest
    path, read-only) triples), the tree's initial content, stdin and
    environment."""

    def __init__(self, guest, args=(), dirs=(), tree=None, stdin=b"", env=(), rust=False):
        self.guest, self.args, self.dirs = guest, list(args), list(dirs)
        self.tree, self.stdin, self.env, self.rust = tree or {}, stdin, list(env), rust

    def __repr__(self):
        name = "envdump.c" if "\n" in self.guest else Path(self.guest).name
        return " ".join([name, *self.args]) if self.args else name

    def build(self, build_c, build_rust):
        if self.rust:
            try:
                return build_rust(self.guest)
            except subprocess.CalledProcessError as e:
                pytest.fail(f"building the Rust guest '{self.guest}' failed "
                            f"(run 'sudo scripts/setup.sh'):\n{e.stderr}", pytrace=False)
        if "\n" in self.guest:
            return build_c(self.guest, name="envdump")
        return build_c(self.guest)


ENVDUMP = r"""
#include <stdio.h>
#include <stdlib.h>
extern char **environ;
int main(int argc, char **argv)
{
	for (int i = 0; i < argc; i++)
		printf("argv[%d] = %s\n", i, argv[i]);
	for (char **e = environ; *e; e++)
		printf("env %s\n", *e);
	printf("HOME: %s\n", getenv("HOME") ? getenv("HOME") : "(unset)");
	return 3;
}
"""

CASES = [
    Case("wasi_fs.c", ["/sandbox"], dirs=[("box", "/sandbox", False)],
         tree={"outside.txt": "OUTSIDE", "box": None}),
    Case("wasi_ro.c", ["/ro", "/rw"], dirs=[("ro", "/ro", True), ("rw", "/rw", False)],
         tree={"ro/data.txt": "readonly", "ro/sub": None, "rw/mine.txt": "mine"}),
    Case("wasi_misc.c", ["/data", "two words", ""], dirs=[("box", "/data", False)],
         tree={"box": None}, stdin=b"ping\n", env=["WISP_T=yes"]),
    Case("wasi_stdio_flags.c", ["flags"], stdin=b"in"),
    Case(ENVDUMP, ["a", "b c"], env=["A=1", "B=two=2"]),
    Case(str(ROOT / "examples" / "hello.c"), ["one", "two"]),
    Case("hello", ["one", "two words"], dirs=[("out", "/out", False)], tree={"out": None},
         env=["GREETING=hi", "HELLO_OUT=/out/hello.txt", "HELLO_EXIT=3"], rust=True),
    Case("panic", ["5"], rust=True),
    Case("threads", rust=True),
    Case("bigstart", rust=True),
]


def run_both(tmp_path, build_c, build_rust, case):
    py = reference_python()
    module = case.build(build_c, build_rust)
    results = {}
    for who in ("wisp", "wasmtime"):
        top = tmp_path / who
        make_tree(top / "tree", case.tree)
        io = {n: top / n for n in ("stdin", "stdout", "stderr")}
        io["stdin"].write_bytes(case.stdin)
        opts = []
        for host, guest, ro in case.dirs:
            opts += ["--dir-ro" if ro else "--dir", f"{top / 'tree' / host}::{guest}"]
        for kv in ["PORTABLE=1", *case.env]:
            opts += ["--env", kv]
        # the same argv[0] for both: the module's path as given
        mod = str(module)
        if who == "wisp":
            with open(io["stdin"], "rb") as i, open(io["stdout"], "wb") as o, \
                    open(io["stderr"], "wb") as e:
                env = dict(os.environ, WISP_CACHE_DIR=str(tmp_path / "cache"),
                           WISP_BACKGROUND_COMPILE="0")
                code = subprocess.run([str(WISP), "run", "--tier", "fast", *opts, mod,
                                       *case.args], stdin=i, stdout=o, stderr=e,
                                      env=env, timeout=300).returncode
            diag = ""
        else:
            p = subprocess.run([py, str(REF), *opts, "--stdin", str(io["stdin"]),
                                "--stdout", str(io["stdout"]), "--stderr", str(io["stderr"]),
                                mod, *case.args], capture_output=True, text=True, timeout=300)
            code, diag = p.returncode, p.stderr
        results[who] = (code, io["stdout"].read_bytes().decode(errors="replace"),
                        io["stderr"].read_bytes().decode(errors="replace"),
                        tree_of(top / "tree"), diag)
    return results


def normalise(guest, text):
    for g, pattern, repl in KEPT:
        if g == guest:
            text = re.sub(pattern, repl, text, flags=re.M)
    return text


def guest_lines(text):
    """A stream's lines without wisp's own messages ("wisp: trap: ...",
    which wasmtime_run.py prints on its own stderr instead, and the lines
    of a crash report: its first starts with "wisp: ", the others are
    indented by four spaces)."""
    out, in_report = [], False
    for ln in text.splitlines():
        if ln.startswith("wisp: "):
            in_report = ln.startswith("wisp: crash report: ")
        elif not (in_report and ln.startswith("    ")):
            in_report = False
            out.append(ln)
    return out


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_wisp_agrees_with_wasmtime(tmp_path, build_c, build_rust, case):
    r = run_both(tmp_path, build_c, build_rust, case)
    w_code, w_out, w_err, w_tree, _ = r["wisp"]
    ref_code, ref_out, ref_err, ref_tree, diag = r["wasmtime"]
    assert w_out.splitlines() == normalise(case.guest, ref_out).splitlines(), diag
    assert guest_lines(w_err) == ref_err.splitlines(), (w_err, diag)
    assert (w_code, w_tree) == (ref_code, ref_tree), diag
    # a guest must have done something observable for the comparison to mean much
    assert w_out or w_err or w_tree
