"""Erlang terms in guests (sdk/c/term.c and the Rust crate's wisp::term)
against a real erl: what the guests write, erl reads back as the term
meant, byte for byte what erl itself writes; what erl writes, the guests
read. The guests (tests/guests/c/term_copy.c, tests/guests/rust/term_copy)
run under the real wisp binary and take each term through their own
mailbox as a WISP_TAG_TERM message.

erl comes from Debian's erlang-nox (scripts/setup.sh, OTP 25 here). OTP 25
writes atoms in Latin-1 (ATOM_EXT) unless asked for {minor_version, 2};
the guests always write UTF-8 atoms, as OTP 26 does. So byte-exact
agreement is checked against {minor_version, 2}, and the older encodings
(minor_version 1, OTP 25's default, and 0, with text floats) only have to
decode to an equal term.
"""
import shutil
import subprocess

import pytest

ESCRIPT = shutil.which("escript")

# Terms erl writes for the guests to read: (name, Erlang expression).
ERL_TERMS = [
    ("zero", "0"), ("i127", "127"), ("i128", "128"), ("i255", "255"), ("i256", "256"),
    ("m1", "-1"), ("m128", "-128"),
    ("i32max", "2147483647"), ("i32min", "-2147483648"),
    ("i32max1", "2147483648"), ("i32min1", "-2147483649"),
    ("i64max", "9223372036854775807"), ("i64min", "-9223372036854775808"),
    ("u64max", "18446744073709551615"), ("two64", "18446744073709551616"),
    ("mtwo64", "-18446744073709551616"), ("i128min", "-(1 bsl 127)"),
    ("big200", "1 bsl 200"), ("large_big", "-(1 bsl 2100)"),
    ("f0", "0.0"), ("f15", "1.5"), ("fneg", "-2.25"), ("fhuge", "1.0e300"),
    ("ftiny", "5.0e-324"), ("fpi", "math:pi()"),
    ("ok", "ok"), ("atom_empty", "''"), ("atom_space", "'hello world'"),
    ("atom_latin1", "list_to_atom([99, 97, 102, 233])"),
    ("atom_unicode", "list_to_atom([104, 16#20ac, 16#1f600])"),
    ("atom_255", "list_to_atom(lists:duplicate(255, $a))"),
    ("atom_255_latin1", "list_to_atom(lists:duplicate(255, 233))"),
    ("atom_255_euro", "list_to_atom(lists:duplicate(255, 16#20ac))"),
    ("bool", "true"),
    ("bin_empty", "<<>>"), ("bin", "<<1, 2, 3, 255>>"), ("bin_big", "<<0:800000>>"),
    ("bits", "<<1:3>>"), ("bits2", "<<1, 2, 3:4>>"),
    ("str_empty", '""'), ("str", '"abc"'), ("str_bytes", "lists:seq(0, 255)"),
    ("str_unicode", '[104, 16#20ac, 108]'),
    ("str_65535", "lists:duplicate(65535, $x)"), ("str_65536", "lists:duplicate(65536, $x)"),
    ("list", "[1, 2, 3]"), ("list_mixed", "[1, 256, -1, a, <<\"b\">>, 1.5]"),
    ("list_nested", "[1, [2, [3, []]], [[]]]"), ("list_improper", "[a | b]"),
    ("list_improper2", "[1, 2 | <<3>>]"),
    ("tuple_empty", "{}"), ("tuple", "{ok, 1}"),
    ("tuple_large", "list_to_tuple(lists:seq(1, 300))"),
    ("map_empty", "#{}"), ("map", "#{a => 1, b => [x]}"),
    ("map_nested", "#{a => #{b => [1, 2]}, \"k\" => <<\"v\">>, {t} => 1.5}"),
    ("map_big", "maps:from_list([{I, I * I} || I <- lists:seq(1, 100)])"),
    ("pid_empty_node", "binary_to_term(<<131, 88, 119, 0, 7:32, 5:32, 0:32>>)"),
    ("pid_own_node", "self()"),
    ("ref", "make_ref()"),
    ("port", "hd(erlang:ports())"),
    ("fun_export", "fun lists:map/2"),
    ("fun_local", "fun(X) -> X + 1 end"),
    ("nested", "{reply, [#{a => {1, 2.5, <<\"x\">>, \"str\"}}], "
               "binary_to_term(<<131, 88, 119, 0, 1:32, 2:32, 0:32>>), self(), make_ref()}"),
    ("deep64", "lists:foldl(fun(_, T) -> {T} end, 0, lists:seq(1, 64))"),
    ("deep65", "lists:foldl(fun(_, T) -> {T} end, 0, lists:seq(1, 65))"),
    ("deep64_lists", "lists:foldl(fun(_, T) -> [T, 300] end, 0, lists:seq(1, 64))"),
]
TOO_DEEP = {"deep65"}

# What each term the guests build (their `build` command) must be in erl.
BUILT = {
    **{f"int:{v}": str(v) for v in (0, 127, 128, 255, 256, -1, -128, 2**31 - 1, -2**31, 2**31,
                                     -2**31 - 1, 2**63 - 1, -2**63)},
    "uint_max": str(2**64 - 1),
    "float": "1.5", "float_tiny": "5.0e-324", "float_neg": "-1.0e300",
    "atom": "ok", "atom_empty": "''",
    "atom_utf8": "list_to_atom([104, 233, 108, 108, 111, 32, 16#20ac])",
    "atom_long": "list_to_atom(lists:duplicate(255, 16#20ac))",
    "binary": "<<0, 1, 2, 255>>", "binary_empty": "<<>>",
    "string": '"abc"', "string_empty": "[]",
    "string_long": "[$a + I rem 26 || I <- lists:seq(0, 69999)]",
    "tuple": "{ok, 1}", "tuple_empty": "{}", "tuple_large": "list_to_tuple(lists:seq(1, 300))",
    "list": "[1, 1000]",
    "map": "#{a => 1, b => [x]}", "map_empty": "#{}",
    "pid": "binary_to_term(<<131, 88, 119, 0, 7:32, 5:32, 0:32>>)",
    "pid_max": "binary_to_term(<<131, 88, 119, 0, 16#ffffffff:32, 16#ffffffff:32, 0:32>>)",
    "nested": "{reply, binary_to_term(<<131, 88, 119, 0, 42:32, 0:32, 0:32>>), "
              "#{<<\"k\">> => [0.25, \"hi\"]}}",
}
# Only the C encoder writes improper lists; only the Rust crate has these.
BUILT_C = {**BUILT, "list_improper": "[a | b]"}
BUILT_RUST = {**BUILT, "charlist_unicode": "[104, 16#20ac, 108, 108, 111]", "bool": "true",
              "int_i128_min": "-(1 bsl 127)"}

# Pids erl makes in the empty-node form (ID, Serial), which the guests must
# read as the wisp pid Serial << 32 | ID.
PIDS = [(7, 5), (0, 0), (2**32 - 1, 0), (0, 2**32 - 1), (2**32 - 1, 2**32 - 1), (123456, 42)]


def escript(tmp_path, body, data=()):
    """Runs an escript whose main/1 is `body`; its stdout lines. `data`
    (lines of words) is in the file the script's `lines()` reads, as lists
    of strings: hex in there, not in the script, keeps it small."""
    if ESCRIPT is None:
        pytest.fail("escript (Debian's erlang-nox) is not installed: run scripts/setup.sh",
                    pytrace=False)
    (tmp_path / "data").write_text("".join(" ".join(words) + "\n" for words in data))
    f = tmp_path / "check.escript"
    f.write_text("%%! -noshell\n-mode(compile).\n-compile(nowarn_unused_function).\n"
                 "hex(B) -> binary_to_list(binary:encode_hex(B)).\n"
                 "unhex(S) -> binary:decode_hex(list_to_binary(S)).\n"
                 f"lines() -> {{ok, B}} = file:read_file(\"{tmp_path / 'data'}\"),\n"
                 "    [string:lexemes(L, \" \") || L <- string:lexemes(binary_to_list(B), \"\\n\")].\n"
                 f"main(_) ->\n{body}\n")
    r = subprocess.run([ESCRIPT, str(f)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout.splitlines()


def erl_list(pairs):
    """[{"name", Expr}, ...] in Erlang."""
    return "[" + ",\n".join(f'{{"{n}", {e}}}' for n, e in pairs) + "]"


@pytest.fixture(scope="module")
def erl_terms(tmp_path_factory):
    """{name: {minor_version: bytes}} as erl writes each of ERL_TERMS."""
    lines = escript(tmp_path_factory.mktemp("erl-terms"), f"""
    [io:format("~s ~b ~s~n", [N, V, hex(term_to_binary(T, [{{minor_version, V}}]))])
     || {{N, T}} <- {erl_list(ERL_TERMS)}, V <- [0, 1, 2]],
    halt(0).""")
    out = {}
    for line in lines:
        name, version, h = line.split()
        out.setdefault(name, {})[int(version)] = bytes.fromhex(h)
    assert set(out) == {n for n, _ in ERL_TERMS}
    return out


@pytest.fixture(params=["c", "rust"])
def guest(request, build_proc, build_rust, wisp):
    """(kind, run): run(lines) feeds the guest and returns its answers."""
    if request.param == "c":
        wasm = build_proc("term_copy.c")
    else:
        wasm = build_rust("term_copy")

    def run(lines):
        r = wisp("run", wasm, input="".join(line + "\n" for line in lines), timeout=300)
        assert r.code == 0, r
        return r.out.splitlines()

    return request.param, run


def check_in_erl(tmp_path, triples):
    """For (name, a, b) byte strings: the names where erl reads a and b as
    different terms."""
    lines = escript(tmp_path, """
    Bad = [N || [N, A, B] <- lines(), binary_to_term(unhex(A)) =/= binary_to_term(unhex(B))],
    io:format("~p~n", [Bad]),
    halt(0).""", [(n, a.hex(), b.hex()) for n, a, b in triples])
    return lines


def test_guests_read_what_erl_writes_and_write_it_back(guest, erl_terms, tmp_path):
    kind, run = guest
    cases = [(name, v, erl_terms[name][v]) for name, _ in ERL_TERMS for v in (2, 1, 0)]
    answers = run([f"copy {b.hex()}" for _, _, b in cases])
    assert len(answers) == len(cases), answers[-3:]
    same = []
    for (name, v, sent), answer in zip(cases, answers):
        status, _, rest = answer.partition(" ")
        if name in TOO_DEEP:
            assert status == "error", (name, answer[:200])
            assert ("-5" if kind == "c" else "deeper than 64") in rest, (name, rest)
            continue
        assert status == "ok", (name, v, answer[:200])
        back = bytes.fromhex(rest)
        if v == 2:
            # byte for byte what erl writes
            assert back == sent, (name, sent.hex()[:200], rest[:200])
        same.append((f"{name}/{v}", sent, back))
    # and erl reads every answer as the term it sent
    assert check_in_erl(tmp_path, same) == ["[]"]


def test_guests_build_what_erl_reads_byte_for_byte(guest, tmp_path):
    kind, run = guest
    want = BUILT_C if kind == "c" else BUILT_RUST
    answers = run(["build"])
    assert answers[-1] == "end", answers[-3:]
    built = dict(line.split(" ", 1) for line in answers[:-1])
    assert set(built) == set(want), set(built) ^ set(want)
    errors = {n: h for n, h in built.items() if h.startswith("error")}
    assert not errors, errors
    # erl reads each as the term meant, and writes that term as the same bytes
    lines = escript(tmp_path, f"""
    Built = maps:from_list([{{N, unhex(H)}} || [N, H] <- lines()]),
    [io:format("~s ~s ~s~n", [N, binary_to_term(maps:get(N, Built)) =:= T,
                              term_to_binary(T, [{{minor_version, 2}}]) =:= maps:get(N, Built)])
     || {{N, T}} <- {erl_list(sorted(want.items()))}],
    halt(0).""", built.items())
    assert len(lines) == len(want)
    wrong = [line for line in lines if line.split()[1:] != ["true", "true"]]
    assert not wrong, wrong


def test_pids_in_the_empty_node_form_are_wisp_pids(guest, tmp_path):
    """erl accepts the empty-node NEW_PID_EXT the guests write (above) and
    writes it back in both atom encodings; a guest reads ID and Serial
    as the low and high halves of its pid. A pid of erl's own node is not
    a wisp pid."""
    kind, run = guest
    exprs = [(f"p{i}", f"binary_to_term(<<131, 88, 119, 0, {pid}:32, {ser}:32, 0:32>>)")
             for i, (pid, ser) in enumerate(PIDS)] + [("self", "self()")]
    lines = escript(tmp_path, f"""
    [io:format("~s ~s ~s~n", [N, hex(term_to_binary(P)), hex(term_to_binary(P, [{{minor_version, 2}}]))])
     || {{N, P}} <- {erl_list(exprs)}],
    halt(0).""")
    encoded = {n: (bytes.fromhex(a), bytes.fromhex(b)) for n, a, b in (ln.split() for ln in lines)}
    # OTP 25 writes the empty node as ATOM_EXT '', minor_version 2 as SMALL_ATOM_UTF8_EXT ''
    assert encoded["p0"][0][:4] == bytes([131, 88, 100, 0])
    assert encoded["p0"][1][:4] == bytes([131, 88, 119, 0])
    names = [n for n, _ in exprs]
    answers = run([f"pid {encoded[n][v].hex()}" for n in names for v in (0, 1)])
    assert len(answers) == 2 * len(names), answers
    for i, (pid, ser) in enumerate(PIDS):
        assert answers[2 * i:2 * i + 2] == [f"pid {ser << 32 | pid}"] * 2, (pid, ser, answers)
    for answer in answers[-2:]:
        assert answer.startswith("error -6" if kind == "c" else "error not a wisp pid"), answer
