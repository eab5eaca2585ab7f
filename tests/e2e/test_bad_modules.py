"""Malformed and unsupported modules through the real binary.

Every case must end with exit status 1 and one line naming the file and the
problem (the reader's message, see src/compile/wasm_reader.h), never with a
crash. Modules are assembled byte by byte here so each case shows exactly
what it feeds in; the unit tests (tests/unit/test_wasm_reader.c) cover the
reader's edge cases in depth, these check that the messages reach the user.
"""
import re
import random

import pytest

HEADER = b"\0asm\1\0\0\0"


def leb(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def name(s):
    s = s.encode() if isinstance(s, str) else s
    return leb(len(s)) + s


def vec(items):
    return leb(len(items)) + b"".join(items)


def section(sid, content):
    return bytes([sid]) + leb(len(content)) + content


TYPE_VOID = section(1, vec([b"\x60\x00\x00"]))          # type 0: () -> ()
ONE_FUNC = section(3, vec([b"\x00"]))
MEMORY = section(5, vec([b"\x00\x01"]))
EXPORTS = section(7, vec([name("_start") + b"\x00\x00",
                          name("memory") + b"\x02\x00"]))
CODE = section(10, vec([b"\x02\x00\x0b"]))               # empty body


def good_module(extra=b""):
    """A runnable module: `_start` returns at once, one memory exported."""
    return HEADER + TYPE_VOID + ONE_FUNC + MEMORY + EXPORTS + CODE + extra


def imports(*entries):
    return section(2, vec(list(entries)))


CASES = {
    "empty": (b"", "not a WebAssembly module (the file is empty)"),
    "elf": (b"\x7fELF\2\1\1\0" + bytes(8), "not a WebAssembly module (bad magic)"),
    "text": (b"(module (func))\n",
             "not a WebAssembly module (bad magic): this looks like the text format; convert it with wat2wasm first"),
    "version2": (b"\0asm\2\0\0\0", "unsupported wasm version 2"),
    "component": (b"\0asm\x0d\0\1\0",
                  "unsupported wasm version 0x1000d: this is a WebAssembly component, and wisp runs only core modules"),
    "header-cut": (b"\0asm\1\0", "truncated module: the 8-byte header is cut off at byte 6"),
    "section-cut": (HEADER + b"\x0a\x64\x01\x02\x00\x0b",
                    "truncated module: section 'code' ends at byte 110 but the file has 14 bytes"),
    "overlong-leb": (HEADER + section(1, b"\x80\x80\x80\x80\x80\x00"),
                     "malformed LEB128 at byte 10 (number of types): longer than 5 bytes"),
    "leftover": (HEADER + section(1, b"\x01\x60\x00\x00\x00"),
                 "section 'type' is 5 bytes long but its contents end after 4 bytes (at byte 14)"),
    "huge-count": (HEADER + section(1, b"\xff\xff\xff\xff\x0f\x60"),
                   "section 'type' declares 4294967295 types at byte 10, "
                   "but only 1 bytes are left for them"),
    "bad-utf8": (HEADER + TYPE_VOID + imports(name("env") + name(b"\xc0\x80") + b"\x00\x00"),
                 "import name at byte 21 is not valid UTF-8 (byte 0xc0 at byte 22)"),
    "nul-in-name": (HEADER + TYPE_VOID + imports(name(b"env\0x") + name("f") + b"\x00\x00"),
                    "import module name at byte 17 contains a NUL character, "
                    "which wisp does not support"),
    "out-of-order": (HEADER + TYPE_VOID + ONE_FUNC + imports(),
                     "section 'import' at byte 18 is out of order: "
                     "it must come before section 'function' (at byte 14)"),
    "duplicate-section": (HEADER + TYPE_VOID + TYPE_VOID,
                          "section 'type' at byte 14 appears a second time "
                          "(the first is at byte 8)"),
    "no-code": (HEADER + TYPE_VOID + ONE_FUNC,
                "section 'function' declares 1 functions, but the module has no section 'code'"),
    "code-count": (HEADER + TYPE_VOID + section(3, vec([b"\x00", b"\x00"])) + CODE,
                   "section 'code' has 1 function bodies (count at byte 21), "
                   "but section 'function' declares 2 functions"),
    "memory64": (HEADER + section(5, vec([b"\x04\x01"])),
                 "memory64 is not supported (memory at byte 11)"),
    "shared-memory": (HEADER + section(5, vec([b"\x03\x01\x02"])),
                      "shared memory is not supported (memory at byte 11)"),
    "huge-memory": (HEADER + section(5, vec([b"\x00" + leb(65537)])),
                    "memory at byte 11 has a minimum of 65537 pages, "
                    "over the limit of 65536 pages (4 GiB)"),
    "duplicate-export": (HEADER + MEMORY + section(7, vec([name("m") + b"\x02\x00"] * 2)),
                         'duplicate export name "m"'),
    "gc-type": (HEADER + section(1, b"\x01\x5f\x00\x00"),
                "GC types are not supported (type 0 at byte 11 has form 0x5f)"),
    # Modules the reader accepts but wisp cannot run.
    "unknown-import": (HEADER + TYPE_VOID
                       + imports(name("env") + name("launch") + b"\x00\x00")
                       + ONE_FUNC + MEMORY + CODE,
                       'module imports function "env"."launch", which wisp does not provide'),
    "import-signature": (HEADER + section(1, vec([b"\x60\x01\x7f\x01\x7f"]))
                         + imports(name("wasi_snapshot_preview1") + name("fd_write") + b"\x00\x00"),
                         'import "wasi_snapshot_preview1"."fd_write" has type (i32) -> (i32) '
                         "but wisp provides (i32, i32, i32, i32) -> (i32)"),
    "imported-memory": (HEADER + imports(name("env") + name("memory") + b"\x02\x00\x01"),
                        'module imports memory "env"."memory"; '
                        "wisp modules must define their own memory"),
    "imported-table": (HEADER + imports(name("env") + name("t") + b"\x01\x70\x00\x01"),
                       'module imports table "env"."t"; wisp modules must define their own tables'),
    "imported-global": (HEADER + imports(name("env") + name("g") + b"\x03\x7f\x00"),
                        'module imports global "env"."g"; wisp provides no globals'),
    "two-memories": (HEADER + section(5, vec([b"\x00\x01", b"\x00\x01"])),
                     "module has 2 memories; wisp supports at most one"),
    "escaped-name": (HEADER + TYPE_VOID + imports(name('a"b\x1b[31m') + name("f") + b"\x00\x00"),
                     'module imports function "a\\"b\\x1b[31m"."f", which wisp does not provide'),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_module_is_named(wisp, tmp_path, case):
    data, message = CASES[case]
    f = tmp_path / f"{case}.wasm"
    f.write_bytes(data)
    r = wisp("run", f)
    assert r.code == 1, r
    assert r.err == f"wisp: {f}: {message}\n", r


def test_bad_module_refused_by_compile_too(wisp, tmp_path, cache_dir):
    data, message = CASES["memory64"]
    f = tmp_path / "m64.wasm"
    f.write_bytes(data)
    r = wisp("compile", "--tier", "fast", f, cache=cache_dir)
    assert r.code == 1, r
    assert r.err == f"wisp: {f}: {message}\n", r


def name_section(body):
    return section(0, name("name") + body)


def test_good_module_runs(wisp, tmp_path):
    f = tmp_path / "good.wasm"
    f.write_bytes(good_module())
    r = wisp("run", "--tier", "fast", f)
    assert r.code == 0, r
    assert r.err == "", r


@pytest.mark.parametrize("body", [
    b"\x01\x32\x01",                       # subsection longer than the section
    b"\x01\x03\x01\x00\x02\xc0\x80",       # function name not UTF-8 (and cut)
    b"\x00\x02\x05ab",                     # module name longer than its subsection
    b"\x09\x00\xff",                       # garbage after an unknown subsection
], ids=["overlong-subsection", "bad-utf8", "module-name-cut", "garbage"])
def test_malformed_name_section_is_ignored(wisp, tmp_path, body):
    # Engines must not reject a module for a bad custom section.
    f = tmp_path / "names.wasm"
    f.write_bytes(good_module(name_section(body)))
    r = wisp("run", "--tier", "fast", f)
    assert r.code == 0, r


def test_mutated_modules_never_crash(wisp, tmp_path, cache_dir):
    """Random byte edits of a valid module: each is either refused with a
    message (status 1) or compiled (status 0); nothing else."""
    base = good_module(name_section(b"\x00\x05\x04demo\x01\x08\x01\x00\x05start"))
    rng = random.Random(20240601)
    for i in range(200):
        data = bytearray(base)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(data))
            op = rng.randrange(3)
            if op == 0:
                data[at] = rng.randrange(256)
            elif op == 1:
                data.insert(at, rng.choice((0x00, 0x7F, 0x80, 0xFF)))
            else:
                del data[at]
        f = tmp_path / f"mut{i}.wasm"
        f.write_bytes(bytes(data))
        r = wisp("compile", "--tier", "fast", "--quiet", f, cache=cache_dir, timeout=60)
        assert r.code in (0, 1), (i, bytes(data).hex(), r)
        if r.code == 1:
            assert r.err.startswith(f"wisp: {f}: "), (i, r)
            assert len(r.err.splitlines()) == 1, (i, r)


# ---- features wisp does not run: every refusal says what and where ----------

def body_module(body, extra_types=b"", locals_=b"\x00"):
    """One function (0, exported as _start) with this body (instructions
    before the final end); its local declarations are locals_."""
    code = locals_ + body + b"\x0b"
    return (HEADER + section(1, vec([b"\x60\x00\x00"]) if not extra_types else extra_types)
            + ONE_FUNC + MEMORY + EXPORTS + section(10, vec([leb(len(code)) + code])))


V128_CONST = b"\xfd\x0c" + bytes(16)

FEATURES = {
    "simd": (body_module(V128_CONST + b"\xfd\x6e" + b"\x1a"),     # v128.const ... drop
             "SIMD (v128) is not supported yet: function 0 uses instruction 0xfd 12 (a SIMD "
             "instruction) at byte"),
    "simd-add": (body_module(b"\x41\x00\xfd\x11" + b"\x41\x00\xfd\x11" + b"\xfd\xae\x01\x1a"),
                 "SIMD (v128) is not supported yet: function 0 uses instruction 0xfd 17 (a "
                 "SIMD instruction) at byte"),
    "simd-local": (body_module(b"", locals_=b"\x01\x01\x7b"),
                   "SIMD (v128) is not supported yet: function 0 has a v128 local"),
    "simd-param": (HEADER + section(1, vec([b"\x60\x00\x00", b"\x60\x01\x7b\x00"]))
                   + section(3, vec([b"\x00", b"\x01"])) + MEMORY + EXPORTS
                   + section(10, vec([b"\x02\x00\x0b", b"\x02\x00\x0b"])),
                   "SIMD (v128) is not supported yet: function 1 takes or returns v128"),
    "exceptions-try-table": (body_module(b"\x1f\x40\x00\x0b"),
                             "exception handling's 2023 encoding (try_table, exnref) is not "
                             "supported: function 0 uses instruction 0x1f (try_table) at byte"),
    "exceptions-throw-ref": (body_module(b"\xd0\x69\x0a"),
                             "exception handling's 2023 encoding (try_table, exnref) is not "
                             "supported: function 0 uses instruction 0x0a (throw_ref) at byte"),
    "exceptions-exnref-local": (body_module(b"", locals_=b"\x01\x01\x69"),
                                "exception handling's exnref type (its 2023 encoding, try_table)"),
    "tail-call": (body_module(b"\x12\x00"),
                  "tail calls are not supported: function 0 uses instruction 0x12 (return_call) "
                  "at byte"),
    "threads": (body_module(b"\x41\x00\xfe\x10\x02\x00\x1a"),
                "threads (atomic instructions) are not supported: function 0 uses instruction 0xfe 16"),
    "unknown-op": (body_module(b"\xf0"), "function 0 uses an unknown instruction 0xf0 at byte"),
    "deep-nesting": (body_module(b"\x02\x40" * 20000 + b"\x0b" * 20000),
                     "function 0 nests blocks more than 10000 deep (at byte"),
}


@pytest.mark.parametrize("case", sorted(FEATURES))
@pytest.mark.parametrize("cmd", ["run", "compile"])
def test_unsupported_feature_is_named(wisp, tmp_path, cache_dir, case, cmd):
    data, message = FEATURES[case]
    f = tmp_path / f"{case}.wasm"
    f.write_bytes(data)
    r = wisp(cmd, "--tier", "fast", f, cache=cache_dir)
    assert r.code == 1, r
    assert r.err.startswith(f"wisp: {f}: {message}"), r
    assert "invalid module: \n" not in r.err
    assert len(r.err.splitlines()) == 1, r


def test_named_function_is_named_in_a_refusal(wisp, tmp_path):
    names = name_section(b"\x01" + leb(len(b"\x01\x00" + name("vector_math")))
                         + b"\x01\x00" + name("vector_math"))
    f = tmp_path / "named.wasm"
    f.write_bytes(body_module(V128_CONST + b"\x1a") + names)
    r = wisp("run", "--tier", "fast", f)
    assert r.code == 1, r
    assert "function 0 (vector_math) uses instruction 0xfd 12" in r.err, r
    assert r.err.rstrip().endswith("build without -msimd128 (clang) or +simd128 (Rust)"), r


def test_valid_bulk_memory_and_tables_are_not_refused(wisp, tmp_path):
    # memory.fill, memory.copy, br_table, select with a type, ref.null,
    # i64.const with a long immediate: the walk knows their immediates.
    body = (b"\x41\x00\x41\x07\x41\x10\xfc\x0b\x00"          # memory.fill
            + b"\x41\x20\x41\x00\x41\x10\xfc\x0a\x00\x00"      # memory.copy
            + b"\x02\x40\x41\x01\x0e\x02\x00\x00\x00\x0b"      # block br_table
            + b"\x41\x01\x41\x02\x41\x00\x1c\x01\x7f\x1a"      # select (result i32)
            + b"\xd0\x70\x1a"                                  # ref.null func
            + b"\x42\x80\x80\x80\x80\x80\x80\x80\x80\x80\x7f\x1a")   # i64.const -2^63
    f = tmp_path / "bulk.wasm"
    f.write_bytes(body_module(body))
    r = wisp("run", "--tier", "fast", f)
    assert (r.code, r.err) == (0, ""), r


@pytest.mark.parametrize("params,results,shown", [
    (b"\x01\x7f", b"\x00", "(i32) -> ()"),
    (b"\x00", b"\x01\x7f", "() -> (i32)"),
    (b"\x02\x7e\x7d", b"\x01\x7c", "(i64, f32) -> (f64)"),
])
def test_start_with_parameters_or_results_is_refused(wisp, tmp_path, params, results, shown):
    body = b"".join(b"\x44" + bytes(8) if r == 0x7C else b"\x41\x00" for r in results[1:])
    code = b"\x00" + body + b"\x0b"
    data = (HEADER + section(1, vec([b"\x60" + params + results])) + ONE_FUNC + MEMORY + EXPORTS
            + section(10, vec([leb(len(code)) + code])))
    f = tmp_path / "start.wasm"
    f.write_bytes(data)
    r = wisp("run", "--tier", "fast", f)
    assert r.code == 1, r
    assert r.err == (f"wisp: {f}: the module's _start has type {shown}; a WASI command's "
                     "_start takes no parameters and returns nothing\n"), r


def test_guest_function_names_are_escaped_in_trap_messages(wisp, tmp_path):
    # A name section entry with a terminal escape and a fake wisp line.
    evil = "\x1b[2J\x1b[31mboom\nwisp: all good\r\u009b1m"
    entry = b"\x01\x00" + name(evil)
    names = name_section(b"\x01" + leb(len(entry)) + entry)
    f = tmp_path / "evilname.wasm"
    f.write_bytes(body_module(b"\x00") + names)        # unreachable
    for tier in ("fast", "opt"):
        r = wisp("run", "--tier", tier, f)
        assert r.code == 134, r
        # The crash report (tests/e2e/test_crash_reports.py), then the
        # run's last line; the name escaped in both.
        shown = "\\x1b[2J\\x1b[31mboom\\x0awisp: all good\\x0d\\xc2\\x9b1m"
        assert r.err.endswith(f"wisp: trap: unreachable in {shown}\n"), r
        assert re.match(r"wisp: crash report: process [0-9a-f]+ trapped: unreachable in "
                        + re.escape(shown) + "\n", r.err), r
        assert all(l.startswith(("wisp: ", "    ")) for l in r.err.splitlines()), r
        assert "\x1b" not in r.err and "\r" not in r.err and "\u009b" not in r.err
