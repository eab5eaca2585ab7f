"""The Rust SDK (sdk/rust): the wisp crate's own tests and doctests run by
`cargo test` under the real ./wisp (each test its own process), and the
examples run with their output checked.

Building needs the wasm32-wasip1 standard library (scripts/setup.sh) and
Debian's packaged crate sources under /usr/share/cargo/registry (serde,
bincode, syn, quote, rmp-serde, serde_json; sdk/rust/.cargo/config.toml).
Without them these tests fail, on purpose, as test_rust.py does."""
import os
import re
import select
import socket
import subprocess
import time

import pytest

from conftest import ROOT, WISP

SDK = ROOT / "sdk" / "rust"
CARGO_WASM = ROOT / "scripts" / "cargo-wasm"
NET = ["--allow-listen", "127.0.0.1:*", "--allow-connect", "127.0.0.1:*", "--allow-udp", "--allow-dns"]


CRATE_SRC = SDK / "wisp" / "src"


def rust_code(path):
    """The file's text without comments (line and doc comments)."""
    return re.sub(r"//[^\n]*", "", path.read_text())


def crate_modules():
    return {p.stem: rust_code(p) for p in sorted(CRATE_SRC.glob("*.rs")) if p.stem != "lib"}


def module_deps(code, names):
    deps = set(re.findall(r"\bcrate::(\w+)", code))
    for group in re.findall(r"\bcrate::\{([^}]*)\}", code):
        deps |= {item.strip().split("::")[0] for item in group.split(",") if item.strip()}
    return deps & names


def test_the_crate_modules_form_no_cycle():
    """Each module of the wisp crate uses only modules below it (lib.rs lists
    the order); `net` is a facade nothing else uses."""
    mods = crate_modules()
    graph = {m: module_deps(code, set(mods)) - {m} for m, code in mods.items()}
    assert not any("net" in deps for deps in graph.values()), graph
    done, visiting = set(), []

    def visit(m):
        if m in done:
            return
        assert m not in visiting, "module cycle: " + " -> ".join(visiting[visiting.index(m):] + [m])
        visiting.append(m)
        for d in sorted(graph[m]):
            visit(d)
        visiting.pop()
        done.add(m)

    for m in sorted(graph):
        visit(m)
    assert {"process", "mailbox", "socket", "spawn"} <= set(graph)


def test_inherent_methods_live_with_their_types():
    """`impl Type { ... }` only in the module that defines Type (net.rs once
    added methods to Pid, Process, Mailbox and Envelope)."""
    for m, code in crate_modules().items():
        defined = set(re.findall(r"\b(?:struct|enum|union|trait)\s+(\w+)", code))
        for t in re.findall(r"^impl(?:<[^>{]*>)?\s+(\w+)(?:<[^>{]*>)?\s*\{", code, re.M):
            assert t in defined, f"{m}.rs adds inherent methods to {t}, defined elsewhere"


def test_function_indices_become_functions_in_one_place():
    """One unsafe fn turns a table index into a function pointer; every use
    says why its index is right."""
    for p in sorted(CRATE_SRC.glob("*.rs")):
        text = p.read_text()
        if p.stem != "fnptr":
            assert "transmute" not in text, f"{p.name} transmutes"
        for m in re.finditer(r"unsafe \{ fn_at\(", text):
            before = text[:m.start()].rsplit("fn ", 1)[-1]
            assert "// SAFETY:" in before, f"{p.name}: fn_at without a SAFETY comment"


@pytest.fixture(scope="module")
def sdk_env(build_dir, shared_cache, tmp_path_factory):
    env = dict(os.environ)
    env["CARGO_TARGET_DIR"] = str(build_dir / "rust-sdk-target")
    env["WISP_CACHE_DIR"] = str(shared_cache)
    env["WISP_BACKGROUND_COMPILE"] = "0"
    # The crate's net tests need loopback networking (denied by default);
    # scripts/cargo-wasm would otherwise set a runner without capabilities.
    # tests/caps.rs needs a directory the parent can write and a child
    # spawned without fs cannot reach: a fresh one, as /scratch.
    scratch = tmp_path_factory.mktemp("rust-sdk-scratch")
    env["CARGO_TARGET_WASM32_WASIP1_RUNNER"] = f"{WISP} run --dir {scratch}::/scratch " + " ".join(NET)
    return env


def cargo(env, *args, timeout=600):
    return subprocess.run([str(CARGO_WASM), *args], cwd=SDK, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def examples(sdk_env):
    r = cargo(sdk_env, "build", "--release", "-p", "wisp-examples")
    if r.returncode != 0:
        pytest.fail(f"building the Rust SDK examples failed (is the toolchain set up? "
                    f"run 'sudo scripts/setup.sh'):\n{r.stderr}", pytrace=False)
    out = os.path.join(sdk_env["CARGO_TARGET_DIR"], "wasm32-wasip1", "release")
    return lambda name: os.path.join(out, f"{name}.wasm")


def test_cargo_test_runs_the_crate_tests_under_wisp(sdk_env):
    r = cargo(sdk_env, "test", "--release", "-p", "wisp", "--all-features")
    assert r.returncode == 0, r.stdout + r.stderr
    for name, n in (("processes", 20), ("servers", 17), ("net", 12), ("caps", 7), ("macros", 7),
                    ("codecs", 3), ("term", 12), ("server_streams", 3), ("served", 14), ("hostile", 4)):
        assert f"Running tests/{name}.rs" in r.stderr, r.stderr
        assert f"test result: ok. {n} passed; 0 failed" in r.stdout, (name, r.stdout)
    # The doctests run too, under wisp (cargo runs them on the target).
    assert "Doc-tests wisp" in r.stderr, r.stderr
    doc = r.stdout[r.stdout.rindex("running "):]
    assert "test result: ok." in doc and " 0 failed" in doc, doc
    # The file-system test ran with /scratch granted, not in its fallback.
    assert "child without fs: open /scratch/caps-secret.txt denied, parent reads it\n" in r.stdout, r.stdout
    # Bad input: each of these is one of the tests that passed.
    for name in ("a_message_that_does_not_decode_is_an_error_not_a_crash",
                 "decode_errors_name_the_expected_type",
                 "call_replies_times_out_and_fails_fast_on_dead_processes",
                 "bad_requests_and_casts_do_not_crash_a_server",
                 "a_deferred_reply_comes_from_another_process",
                 "typed_names_find_typed_handles",
                 "a_supervisor_restarts_a_crashed_server",
                 "hitting_the_restart_intensity_ends_the_supervisor",
                 "widening_is_refused_and_a_used_set_is_frozen",
                 "capability_denials_are_permission_denied_and_name_the_capability",
                 "a_cpu_limited_spinner_dies_with_the_limit_and_the_parent_goes_on",
                 "a_memory_limited_child_cannot_allocate_past_its_limit",
                 "spawn_copies_captures",
                 "json_mailboxes_carry_json",
                 "msgpack_mailboxes_carry_msgpack",
                 "every_prefix_of_a_term_is_an_error",
                 "nesting_beyond_the_limit_is_refused_both_ways",
                 "damaged_bytes_never_panic",
                 "bad_requests_are_refused_with_their_errno",
                 "a_spawned_memfs_answers_on_the_wire_as_the_host_asks",
                 "a_cookie_never_wraps_to_the_start",
                 "a_memfs_answers_a_call_it_cannot_send_with_an_error",
                 "a_memfs_takes_what_any_process_sends_in_its_stride",
                 "every_fs_denial_is_permission_denied_naming_the_capability",
                 "a_deeply_nested_request_is_refused_and_the_server_goes_on",
                 "a_deeply_nested_message_is_a_decode_error_in_every_codec",
                 "huge_length_prefixes_reserve_no_more_than_the_message_holds",
                 "a_dropped_reply_token_answers_at_once_and_a_forged_one_cannot_confuse",
                 "a_panic_bigger_than_a_message_still_matches_its_expected_text"):
        assert f"test {name} ... ok\n" in r.stdout, (name, r.stdout)


def test_the_crates_rustdoc_has_no_warnings(sdk_env):
    """`cargo doc` of the crate and its macros: every intra-doc link
    resolves and none is ambiguous (rustdoc's warnings are errors here)."""
    env = dict(sdk_env, RUSTDOCFLAGS="-D warnings")
    r = cargo(env, "doc", "--no-deps", "--all-features", "-p", "wisp", "-p", "wisp-macros")
    assert r.returncode == 0, r.stderr
    assert "warning" not in r.stderr, r.stderr


def test_cargo_test_filters_by_name(sdk_env):
    r = cargo(sdk_env, "test", "--release", "-p", "wisp", "--test", "servers", "--", "one_for")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "running 2 tests\n" in r.stdout, r.stdout
    assert "2 passed; 0 failed; 0 ignored; 0 measured; 15 filtered out" in r.stdout, r.stdout


def compile_error(sdk_env, tmp_path, name, main_rs):
    """Build a crate whose src/main.rs is `main_rs` against the SDK; it
    must fail: rustc's messages. The crates share one target directory
    (the crate's dependencies are built once)."""
    crate = tmp_path / name
    (crate / "src").mkdir(parents=True)
    (crate / "Cargo.toml").write_text(
        f'[package]\nname = "{name}"\nversion = "0.1.0"\nedition = "2021"\n\n'
        f'[dependencies]\nwisp = {{ path = "{SDK}/wisp" }}\nserde = {{ version = "1", features = ["derive"] }}\n\n'
        '[workspace]\n')
    (crate / "src" / "main.rs").write_text(main_rs)
    (crate / ".cargo").mkdir()
    (crate / ".cargo" / "config.toml").write_text(
        '[source.crates-io]\nreplace-with = "debian"\n\n[source.debian]\ndirectory = "/usr/share/cargo/registry"\n')
    env = dict(sdk_env, CARGO_TARGET_DIR=sdk_env["CARGO_TARGET_DIR"] + "-compile-errors")
    r = subprocess.run([str(CARGO_WASM), "build", "--offline"], cwd=crate, env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode != 0, r.stdout + r.stderr
    return r.stderr


def test_a_capture_that_cannot_be_serialized_is_a_compile_error_saying_why(sdk_env, tmp_path):
    """spawn! copies captures into the child: one that is not serializable
    is refused at compile time, at the capture, with the reason. (And a
    #[wisp::test] timeout no Duration can hold is refused at compile time:
    it once panicked in the test binary, ending every test.)"""
    err = compile_error(sdk_env, tmp_path, "badcapture",
                        "struct Handle(std::rc::Rc<u8>);\n"
                        "fn main() {\n"
                        "    let h = Handle(std::rc::Rc::new(1));\n"
                        "    let n = 3u32;\n"
                        "    wisp::spawn!(|n, h| { let _ = (n, h.0); }).unwrap();\n"
                        "}\n"
                        "#[wisp::test(timeout = 1e30)]\n"
                        "fn forever() {}\n")
    assert "cannot be captured by spawn!: captures are serialized into the new process" in err, err
    assert "this capture is not serializable" in err, err
    assert "src/main.rs:5:22" in err, err      # the span of `h`
    assert "the timeout must be a number of seconds from 1e-9 to 1e19" in err, err


def test_a_message_the_server_does_not_handle_is_a_compile_error_saying_why(sdk_env, tmp_path):
    """A ServerRef<S> accepts only the message types S handles: calling
    or casting another is refused at compile time, in words (not rustc's
    bare "the trait bound `S: Handler<M, _>` is not satisfied"). (A server
    of one message type gets rustc's "expected `&Get`, found `&Reset`".)"""
    err = compile_error(sdk_env, tmp_path, "badmessage",
                        "use serde::{Deserialize, Serialize};\n"
                        "use wisp::server::{Context, Handlers};\n"
                        "use wisp::{Handle, Server};\n"
                        "struct Counter(u32);\n"
                        "#[derive(Serialize, Deserialize)]\nstruct Get;\n"
                        "#[derive(Serialize, Deserialize)]\nstruct Reset;\n"
                        "impl Server for Counter {\n"
                        "    type Arg = ();\n"
                        "    fn init(_: (), _: &mut Context<Self>) -> Result<Self, String> { Ok(Counter(0)) }\n"
                        "    fn handlers(h: &mut Handlers<Self>) { h.handle::<Get>().handle::<u32>(); }\n"
                        "}\n"
                        "impl Handle<Get> for Counter {\n"
                        "    type Reply = u32;\n"
                        "    fn handle(&mut self, _: Get, _: &mut Context<Self>) -> u32 { self.0 }\n"
                        "}\n"
                        "impl Handle<u32> for Counter {\n"
                        "    type Reply = ();\n"
                        "    fn handle(&mut self, n: u32, _: &mut Context<Self>) { self.0 += n }\n"
                        "}\n"
                        "fn main() {\n"
                        "    let c = Counter::start(()).unwrap();\n"
                        "    let _ = c.call(&Get);\n"
                        "    c.cast(&1u32);\n"
                        "    c.cast(&Reset);\n"
                        "}\n")
    assert "`Counter` does not handle `Reset` messages" in err, err
    assert "src/main.rs:26:12" in err, err     # the span of `&Reset`
    assert "implement `wisp::Handle<Reset>` (or `wisp::HandleDeferred<Reset>`) for `Counter`" in err, err
    # The message it does handle compiles.
    assert "`Get` messages" not in err, err


def test_a_failing_test_fails_alone(wisp, examples):
    r = wisp("run", examples("test_harness_demo"))
    assert r.code == 101, r
    assert r.out.startswith("\nrunning 4 tests\n"
                            "test passes ... ok\n"
                            "about to panic\n"
                            "test panics ... FAILED\n"
                            "test exits_nonzero ... FAILED\n"
                            "test still_runs_after_failures ... ok\n"), r
    # The panic's location and message are the test process's reason.
    assert re.search(r"---- panics ----\nthe test process ended: panicked at "
                     r"\S*test_harness_demo\.rs:9:5: this test fails on purpose\n", r.out), r
    assert "---- exits_nonzero ----\nthe test process ended: exit code 3\n" in r.out, r
    assert "test result: FAILED. 2 passed; 2 failed;" in r.out, r
    assert "this test fails on purpose" in r.err, r


def test_ping_pong(wisp, examples):
    r = wisp("run", examples("ping_pong"), "1000")
    assert r.code == 0, r
    assert r.out == ("pong 1\npong 2\npong 3\npong 4\npong 5\npong 1000\n"
                     "ping_pong: 1000 round trips\n"), r


def test_worker_pool_survives_crashing_workers(wisp, examples):
    r = wisp("run", examples("worker_pool"), "20")
    assert r.code == 0, r
    lines = r.out.splitlines()
    assert lines[0] == "pool: 4 workers under a one_for_one supervisor", r
    assert "job 4: 4^2 = 16 (worker-1)" in lines, r
    assert "job 5: worker-2 crashed; the supervisor restarted it" in lines, r
    assert "job 9: 9^2 = 81 (worker-2)" in lines, r   # the restarted worker-2
    assert "job 20: worker-1 crashed; the supervisor restarted it" in lines, r
    assert lines[-1] == "pool: 20 jobs, 16 results, 4 crashes survived, 4 workers alive", r
    # Each poisoned worker's crash report, and its supervisor's report of
    # the restart (tests/e2e/test_crash_reports.py).
    heads = [l for l in r.err.splitlines() if l.startswith("wisp: ")]
    assert sum(l.startswith("wisp: crash report: ") and "is poison" in l for l in heads) == 4, r
    assert sum(l.endswith("is poison; restarting it") for l in heads) == 4, r


def test_kv_server_call_and_cast(wisp, examples):
    r = wisp("run", examples("kv_server"))
    assert (r.code, r.err) == (0, ""), r
    assert r.out == ('get lang -> Some("rust")\n'
                     'put lang -> Some("rust")\n'
                     'put runtime -> None\n'
                     'get from -> Some("another process")\n'
                     'get lang -> None\n'
                     'len -> 2\n'
                     'len -> 0\n'), r


@pytest.mark.parametrize("tier", ["fast", "opt"])
def test_examples_in_both_tiers(wisp, examples, tier):
    r = wisp("run", "--tier", tier, examples("kv_server"))
    assert r.code == 0 and "len -> 0\n" in r.out, r


def test_twenty_thousand_sleeping_processes(wisp, examples):
    r = wisp("run", examples("sleepers"))
    assert r.code == 0, r
    assert r.out == "20000 processes slept and reported; all 20000 distinct\n", r


def test_a_child_without_fs_is_refused_with_the_reason(wisp, examples, tmp_path):
    r = wisp("run", "--dir", f"{tmp_path}::/data", examples("no_fs"), "/data/note.txt")
    assert r.code == 0, r
    assert r.out == ("parent: read 32 bytes\n"
                     "child without fs: PermissionDenied: /data/note.txt: not allowed by the process's "
                     "capabilities: no directory granted for it (wisp run --dir), or it is read-only "
                     "(--dir-ro), or this process's set dropped it (Caps::drop_dir, spawn_without_fs)\n"), r
    assert (tmp_path / "note.txt").read_text() == "a note only the parent may read\n"


def serve(sdk_env, wasm, *args):
    """Start a Rust example server; returns the process (kill it)."""
    return subprocess.Popen([str(WISP), "run", "--allow-listen", "127.0.0.1:*", wasm, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=sdk_env)


def port_of(proc, prefix):
    line = proc.stdout.readline()
    assert line.startswith(prefix), (line, proc.poll(), proc.poll() is not None and proc.stderr.read())
    return int(line.rsplit(":", 1)[1])


def read_until(s, text, limit=10.0):
    data, end = b"", time.time() + limit
    while text.encode() not in data and time.time() < end:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace")


def test_echo_server_supervised(sdk_env, examples):
    proc = serve(sdk_env, examples("echo"), "0")
    try:
        port = port_of(proc, "listening on 127.0.0.1:")
        clients = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(10)]
        for i, c in enumerate(clients):
            c.sendall(f"hello {i}\n".encode())
        for i, c in enumerate(clients):
            assert read_until(c, f"hello {i}\n") == f"hello {i}\n"
        # A crashing handler closes its own connection only.
        clients[0].sendall(b"crash\n")
        assert clients[0].recv(100) == b""
        clients[1].sendall(b"still here\n")
        assert read_until(clients[1], "still here\n") == "still here\n"
        # The acceptor dies: its supervisor restarts it, open connections stay.
        clients[2].sendall(b"restart\n")
        assert read_until(clients[2], "restart\n") == "restart\n"
        port2 = port_of(proc, "listening on 127.0.0.1:")
        c = socket.create_connection(("127.0.0.1", port2), timeout=10)
        c.sendall(b"after the restart\n")
        assert read_until(c, "after the restart\n") == "after the restart\n"
        clients[3].sendall(b"old connection\n")
        assert read_until(clients[3], "old connection\n") == "old connection\n"
        assert proc.poll() is None
        # Crash reports are written by a thread of the log's own: wait for
        # this one rather than kill the node before it is out.
        err = stderr_until(proc, "a handler crashes on purpose")
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert "a handler crashes on purpose" in err, err


def stderr_until(proc, text, limit=30.0):
    """What proc wrote to stderr, read until `text` is in it (or `limit`
    seconds pass or stderr ends)."""
    out, end = b"", time.time() + limit
    fd = proc.stderr.fileno()
    while text.encode() not in out and time.time() < end:
        ready, _, _ = select.select([fd], [], [], max(0.0, end - time.time()))
        if not ready:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        out += chunk
    return out.decode(errors="replace")


def test_chat_server_two_clients(sdk_env, examples):
    proc = serve(sdk_env, examples("chat"), "0")
    try:
        port = port_of(proc, "chat on 127.0.0.1:")
        people = {}
        for name in ("ann", "bob", "cy"):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            assert read_until(s, "name? ").endswith("name? ")
            s.sendall(name.encode() + b"\n")
            people[name] = s
            assert f"* {name} joined" in read_until(s, f"* {name} joined")
        people["ann"].sendall(b"hello room\r\n")
        for name in ("ann", "bob", "cy"):
            assert "ann: hello room\n" in read_until(people[name], "ann: hello room\n")
        people["bob"].sendall(b"hi ann\n")
        assert "bob: hi ann" in read_until(people["ann"], "bob: hi ann")
        people["cy"].sendall(b"/crash\n")           # cy's process panics
        assert "* cy left" in read_until(people["bob"], "* cy left")
        people["bob"].close()                         # bob disconnects
        assert "* bob left" in read_until(people["ann"], "* bob left")
        people["ann"].sendall(b"anyone?\n")
        assert "ann: anyone?" in read_until(people["ann"], "ann: anyone?")
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_a_crash_in_linked_c_code_ends_one_connection(sdk_env, examples):
    """echo_c's handler calls C compiled into the module; a line that makes
    the C code write outside memory traps that connection's process only."""
    proc = serve(sdk_env, examples("echo_c"), "0")
    try:
        port = port_of(proc, "shouting on 127.0.0.1:")
        a = socket.create_connection(("127.0.0.1", port), timeout=10)
        b = socket.create_connection(("127.0.0.1", port), timeout=10)
        a.sendall(b"hello c\n")
        assert read_until(a, "letters)\n") == "HELLO C\n(6 letters)\n"
        a.sendall(b"segv please\n")
        assert a.recv(100) == b""                   # its process trapped in C
        b.sendall(b"still here\n")
        assert read_until(b, "letters)\n") == "STILL HERE\n(9 letters)\n"
        c = socket.create_connection(("127.0.0.1", port), timeout=10)
        c.sendall(b"new one\n")
        assert read_until(c, "letters)\n") == "NEW ONE\n(6 letters)\n"
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait(timeout=10)
