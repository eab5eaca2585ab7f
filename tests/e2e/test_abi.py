"""The guest ABI is defined once (src/common/abi.def). These tests check that
everything else agrees with that definition, and that each check can fail:

- scripts/check-abi: include/wisp/guest.h, the Rust crate's sys.rs and
  docs/abi.md name every function with the definition's types and error
  spaces; doctored copies of each file show that a wrong or missing entry is
  caught, and that a new definition line without its declarations and doc
  entry is; sys.rs's constants are guest.h's (the served-file protocol's
  among them), with the same values;
- a C guest importing every function guest.h declares (types as clang
  lowers them) passes wisp's own import validation and runs;
- the wisp binary exports exactly the defined host functions;
- the C compiler refuses a host function defined with other types, and
  every host function definition has the generated prototype in scope.
"""
import importlib.machinery
import importlib.util
import re
import shutil
import subprocess

import pytest

from conftest import ROOT, WISP

CHECK_ABI = ROOT / "scripts" / "check-abi"
FILES = ["src/common/abi.def", "include/wisp/guest.h", "sdk/rust/wisp/src/sys.rs", "docs/abi.md"]


def load_checker():
    loader = importlib.machinery.SourceFileLoader("check_abi", str(CHECK_ABI))
    spec = importlib.util.spec_from_loader("check_abi", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def checker():
    return load_checker()


@pytest.fixture(scope="module")
def definition(checker):
    rep = checker.Report(ROOT)
    namespaces, functions = checker.read_definition(rep)
    assert rep.problems == []
    return namespaces, functions


def run_check(root):
    return subprocess.run(["python3", str(CHECK_ABI), "--root", str(root)],
                          capture_output=True, text=True)


def test_guest_h_sys_rs_and_docs_agree_with_the_definition(definition):
    r = run_check(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "agree with src/common/abi.def" in r.stdout
    namespaces, functions = definition
    assert len(functions) >= 158 and len(namespaces) == 12
    assert namespaces["wisp_net"] == "WASI" and namespaces["wisp_message"] == "WISP"
    assert namespaces["wisp_tls"] == "WASI"


def doctored(tmp_path, path, old, new):
    """A copy of the four files in tmp_path with `old` replaced by `new` in `path`."""
    for f in FILES:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / f, tmp_path / f)
    text = (tmp_path / path).read_text()
    assert text.count(old) == 1, f"{old!r} is not once in {path}"
    (tmp_path / path).write_text(text.replace(old, new))
    return tmp_path


# (file, old text, new text, what the checker must say); each is one mistake.
MISTAKES = {
    "guest.h: a parameter type": (
        "include/wisp/guest.h",
        'WISP_IMPORT("wisp_process", "kill") int32_t wisp_kill(wisp_pid_t pid);',
        'WISP_IMPORT("wisp_process", "kill") int32_t wisp_kill(int32_t pid);',
        "include/wisp/guest.h:{}: wisp_process.kill is (i32) -> i32 here but (i64) -> i32 in src/common/abi.def"),
    "guest.h: a result type": (
        "include/wisp/guest.h",
        'WISP_IMPORT("wisp_process", "yield") void wisp_yield(void);',
        'WISP_IMPORT("wisp_process", "yield") int32_t wisp_yield(void);',
        "wisp_process.yield is () -> i32 here but () -> () in src/common/abi.def"),
    "guest.h: a missing function": (
        "include/wisp/guest.h",
        'WISP_IMPORT("wisp_timer", "cancel") int32_t wisp_cancel_timer(uint64_t timer);',
        "",
        "include/wisp/guest.h:1: wisp_timer.cancel (in src/common/abi.def) is missing"),
    "guest.h: a function the definition lacks": (
        "include/wisp/guest.h",
        'WISP_IMPORT("wisp_timer", "cancel")',
        'WISP_IMPORT("wisp_timer", "cancel_all")',
        "wisp_timer.cancel_all is not in src/common/abi.def"),
    "guest.h: the wrong error space": (
        "include/wisp/guest.h",
        "/* ---- wisp_net (errors: WASI errno) ----",
        "/* ---- wisp_net (errors: WISP codes) ----",
        "wisp_net is marked (errors: WISP codes) but its functions return WASI errno"),
    "sys.rs: a parameter type": (
        "sdk/rust/wisp/src/sys.rs",
        "pub fn cancel(timer: u64) -> i32;",
        "pub fn cancel(timer: u32) -> i32;",
        "wisp_timer.cancel is (i32) -> i32 here but (i64) -> i32 in src/common/abi.def"),
    "sys.rs: a wrong import name": (
        "sdk/rust/wisp/src/sys.rs",
        '#[link_name = "whereis"]',
        '#[link_name = "where_is"]',
        "wisp_registry.where_is is not in src/common/abi.def"),
    "sys.rs: a function in another namespace's block": (
        "sdk/rust/wisp/src/sys.rs",
        '    #[link_name = "sleep"]\n    pub fn sleep(ns: i64);\n',
        "",
        "sdk/rust/wisp/src/sys.rs:1: wisp_timer.sleep (in src/common/abi.def) is missing"),
    "sys.rs: the wrong error space": (
        "sdk/rust/wisp/src/sys.rs",
        "// ---- wisp_caps (errors: WISP codes) ----",
        "// ---- wisp_caps (errors: WASI errno) ----",
        "wisp_caps is marked (errors: WASI errno) but its functions return WISP codes"),
    "sys.rs: a constant's value": (
        "sdk/rust/wisp/src/sys.rs",
        "pub const FILE_MAX_DATA: u32 = 65536;",
        "pub const FILE_MAX_DATA: u32 = 65535;",
        "sdk/rust/wisp/src/sys.rs:{}: FILE_MAX_DATA is 65535 here but WISP_FILE_MAX_DATA is 65536 "
        "in include/wisp/guest.h"),
    "sys.rs: a constant guest.h lacks": (
        "sdk/rust/wisp/src/sys.rs",
        "pub const FILE_OP_CLOSE: u32 = 7;",
        "pub const FILE_OP_CLOSE: u32 = 7;\npub const FILE_OP_SYNC: u32 = 8;",
        "FILE_OP_SYNC: no #define WISP_FILE_OP_SYNC in include/wisp/guest.h"),
    "guest.h: a constant sys.rs lacks": (
        "include/wisp/guest.h",
        "#define WISP_FILE_STAT_SIZE 64u",
        "#define WISP_FILE_STAT_SIZE 64u\n#define WISP_FILE_XATTR_SIZE 32u",
        "WISP_FILE_XATTR_SIZE has no `pub const FILE_XATTR_SIZE` in sdk/rust/wisp/src/sys.rs"),
    "abi.md: a parameter type": (
        "docs/abi.md",
        "| `alive` | `(pid: i64) -> i32` |",
        "| `alive` | `(pid: i32) -> i32` |",
        "wisp_process.alive is (i32) -> i32 here but (i64) -> i32 in src/common/abi.def"),
    "abi.md: an undocumented function": (
        "docs/abi.md",
        "| `cancel` | `(timer: i64) -> i32` |",
        "| `cancel_timer` | `(timer: i64) -> i32` |",
        "docs/abi.md:1: wisp_timer.cancel (in src/common/abi.def) is missing"),
    "abi.md: a WASI function's type": (
        "docs/abi.md",
        "| `fd_seek` | `(fd, offset: i64, whence: i32, newoffset: ptr<u64>) -> errno` | `ESPIPE`",
        "| `fd_seek` | `(fd, offset: i32, whence: i32, newoffset: ptr<u64>) -> errno` | `ESPIPE`",
        "wasi_snapshot_preview1.fd_seek is (i32, i32, i32, i32) -> i32 here"),
    "abi.md: the wrong error space": (
        "docs/abi.md",
        "### `wisp_registry` (errors: WISP codes)",
        "### `wisp_registry` (errors: WASI errno)",
        "wisp_registry is marked (errors: WASI errno)"),
    "abi.def: a line the checker cannot read": (
        "src/common/abi.def",
        "ABI_FN(wisp_timer, cancel, (i64), i32)",
        "ABI_FN(wisp_timer, cancel, (i64), i32) /* ok */ ABI_FN(wisp_timer, x, (i32), i32)",
        "not an ABI_NAMESPACE, ABI_FN or ABI_SAME line"),
    "abi.def: an ABI_SAME function with other types than the one serving it": (
        "src/common/abi.def",
        "ABI_SAME(wasi_unstable, fd_tell, (i32, i32), i32, wasi_snapshot_preview1)",
        "ABI_SAME(wasi_unstable, fd_tell, (i32, i64), i32, wasi_snapshot_preview1)",
        "wasi_unstable.fd_tell is (i32, i64) -> i32 but wasi_snapshot_preview1.fd_tell, "
        "which serves it, is (i32, i32) -> i32"),
    "abi.def: an ABI_SAME function served by nothing": (
        "src/common/abi.def",
        "ABI_SAME(wasi_unstable, sched_yield, (void), i32, wasi_snapshot_preview1)",
        "ABI_SAME(wasi_unstable, sched_yield, (void), i32, wisp_process)",
        "wasi_unstable.sched_yield: ABI_SAME as wisp_process.sched_yield, which is not defined"),
}


@pytest.mark.parametrize("case", sorted(MISTAKES))
def test_a_wrong_entry_is_caught(tmp_path, case):
    path, old, new, want = MISTAKES[case]
    root = doctored(tmp_path, path, old, new)
    r = run_check(root)
    assert r.returncode == 1, r.stdout + r.stderr
    if "{}" in want:   # the line of the doctored declaration
        no = (ROOT / path).read_text().split(old)[0].count("\n") + 1
        want = want.format(no)
    assert want in r.stdout, r.stdout


def test_a_new_definition_needs_its_declarations_and_doc_entry(tmp_path):
    """Adding a function to the definition alone: guest.h, sys.rs and the
    docs each report it missing (the build would fail too: no definition)."""
    root = doctored(tmp_path, "src/common/abi.def", "ABI_FN(wisp_timer, cancel, (i64), i32)\n",
                    "ABI_FN(wisp_timer, cancel, (i64), i32)\nABI_FN(wisp_timer, read_clock, (void), i64)\n")
    r = run_check(root)
    assert r.returncode == 1
    for f in ("include/wisp/guest.h", "sdk/rust/wisp/src/sys.rs", "docs/abi.md"):
        assert f"{f}:1: wisp_timer.read_clock (in src/common/abi.def) is missing" in r.stdout, r.stdout


def test_a_changed_definition_is_caught_everywhere(tmp_path):
    root = doctored(tmp_path, "src/common/abi.def", "ABI_FN(wisp_message, send_fd, (i64, i64, i32), i32)",
                    "ABI_FN(wisp_message, send_fd, (i64, i64, i64), i32)")
    r = run_check(root)
    assert r.returncode == 1
    want = "wisp_message.send_fd is (i64, i64, i32) -> i32 here but (i64, i64, i64) -> i32"
    assert len([l for l in r.stdout.splitlines() if want in l]) == 3, r.stdout


def test_a_guest_importing_all_of_guest_h_passes_validation(checker, definition, build_c, wisp, tmp_path):
    """Independent of the checker's type mapping: clang lowers every
    declaration of guest.h to a wasm import, and wisp's import validation
    (the table built from abi.def) must accept all of them."""
    _, functions = definition
    text = (ROOT / "include/wisp/guest.h").read_text()
    names = re.findall(r'WISP_IMPORT\("\w+",\s*"\w+"\)\s*[^;(]*?(\w+)\s*\(', text)
    wisp_fns = [k for k in functions if k[0].startswith("wisp_")]
    assert len(names) == len(wisp_fns)
    refs = ",\n".join(f"\t(void (*)(void)){n}" for n in names)
    src = ("#include <stdio.h>\n#include <wisp/guest.h>\n"
           f"void (*volatile every[])(void) = {{\n{refs}\n}};\n"
           "int main(void) {\n"
           "\tint n = 0;\n"
           "\tfor (unsigned i = 0; i < sizeof every / sizeof every[0]; i++)\n"
           "\t\tn += every[i] != 0;\n"
           "\tprintf(\"%d imports, abi %d\\n\", n, wisp_abi_version());\n"
           "\treturn 0;\n}\n")
    wasm = build_c(src, name="all-imports")
    dump = subprocess.run(["wasm-objdump", "-x", "-j", "Import", str(wasm)],
                          capture_output=True, text=True, check=True).stdout
    imported = set(re.findall(r"<- (wisp_\w+)\.(\w+)", dump))
    assert imported == set(wisp_fns)
    r = wisp("run", wasm)
    assert (r.code, r.err) == (0, ""), r
    assert r.out == f"{len(wisp_fns)} imports, abi 1\n"


def test_the_binary_exports_exactly_the_defined_functions(definition):
    _, functions = definition
    out = subprocess.run(["nm", "-D", "--defined-only", str(WISP)], capture_output=True,
                         text=True, check=True).stdout
    exported = set(re.findall(r" T Z_(\w+?)Z_(\w+)$", out, re.M))
    assert exported == set(functions)


HOST_FLAGS = ["-std=c17", "-D_GNU_SOURCE", "-DWASM_RT_MEMCHECK_SIGNAL_HANDLER=0",
              "-DWASM_RT_USE_STACK_DEPTH_COUNT=0", "-I", str(ROOT / "include"), "-I", str(ROOT / "src")]


def cc(tmp_path, text):
    src = tmp_path / "t.c"
    src.write_text(text)
    return subprocess.run(["cc", *HOST_FLAGS, "-fsyntax-only", str(src)], capture_output=True, text=True)


def test_a_host_function_with_other_types_does_not_compile(tmp_path):
    good = cc(tmp_path, '#include "host/host_abi.h"\n'
                        "uint32_t Z_wisp_messageZ_send_fd(void *self, uint64_t pid, uint64_t tag, uint32_t fd)\n"
                        "{ return 0; }\n")
    assert good.returncode == 0, good.stderr
    bad = cc(tmp_path, '#include "host/host_abi.h"\n'
                       "uint32_t Z_wisp_messageZ_send_fd(void *self, uint64_t pid, uint32_t tag, uint32_t fd)\n"
                       "{ return 0; }\n")
    assert bad.returncode != 0
    assert "conflicting types for 'Z_wisp_messageZ_send_fd'" in bad.stderr.replace("‘", "'").replace("’", "'")
    assert "abi.def" in bad.stderr   # the note points at the definition's line


def test_every_host_function_definition_sees_its_prototype():
    """A definition with no prototype in scope would escape the check above:
    -Wmissing-prototypes finds any."""
    sources = [p for p in sorted((ROOT / "src" / "host").glob("*.c"))
               if re.search(r"^\w.*\bZ_\w+Z_|^\w.*\b(WASI_FN|NS)\(", p.read_text(), re.M)]
    assert len(sources) >= 10
    for src in sources:
        r = subprocess.run(["cc", *HOST_FLAGS, "-fsyntax-only", "-Wmissing-prototypes", str(src)],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert "Z_" not in r.stderr, r.stderr
