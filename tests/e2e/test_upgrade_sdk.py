"""Hot code reload in the Rust crate: servers and supervisors moving onto a
new version of the program (tests/guests/rust/upgrade_sdk, built as
version 1 and, with --features v2, version 2). The guest's main reads
commands on stdin and prints one line each; what servers print from their
hooks (refusals, "moves to v2") comes from their own processes, so those
lines are checked for presence, or in order among themselves. Then the
example kv_upgrade, upgraded with `wisp reload` while clients talk to it."""
import os
import shutil
import socket
import subprocess

import pytest

from conftest import ROOT, GUESTS, WISP

CRATE = GUESTS / "rust" / "upgrade_sdk"


@pytest.fixture(scope="module")
def versions(build_dir, tmp_path_factory):
    """upgrade_sdk as v1.wasm and v2.wasm, in a directory of their own."""
    out = tmp_path_factory.mktemp("upgrade-sdk")
    env = dict(os.environ, CARGO_TARGET_DIR=str(build_dir / "rust-target"))
    for name, features in (("v1", []), ("v2", ["--features", "v2"])):
        subprocess.run([str(ROOT / "scripts" / "cargo-wasm"), "build", "--release", "--quiet", *features],
                       cwd=CRATE, env=env, check=True, capture_output=True, text=True)
        shutil.copy(build_dir / "rust-target" / "wasm32-wasip1" / "release" / "upgrade_sdk.wasm",
                    out / f"{name}.wasm")
    return out


def run(wisp, versions, *commands):
    r = wisp("run", "--dir", f"{versions}::/v", versions / "v1.wasm", input="\n".join(commands) + "\n")
    assert r.code == 0, r.out + r.err
    lines = r.out.splitlines()
    assert lines[0] == "ready v1", r.out
    return lines, r.err


def replies(lines, *prefixes):
    """main's lines that start with one of `prefixes`, in order."""
    return [l for l in lines if l.startswith(prefixes)]


def test_servers_move_onto_a_new_version_with_their_state(wisp, versions):
    lines, err = run(wisp, versions,
                     "start counter", "start manual", "start unlisted", "start bumped", "start forgotten",
                     "incr counter", "incr counter", "incr manual", "incr unlisted", "incr bumped",
                     "load /v/v2.wasm",
                     "incr counter", "get manual", "get unlisted", "get bumped",
                     "upgrade manual", "get manual", "upgrade manual", "upgrade forgotten",
                     "start counter2", "incr counter2", "load /v/v1.wasm", "version")
    # counter moved by itself between two messages, its u64 count turned
    # into version 2's layout by its Upgrade::upgrade.
    assert replies(lines, "counter:") == [
        'counter: Ok("v1 1")', 'counter: Ok("v1 2")', 'counter: Ok("v2 3 (from v1)")']
    # manual waited to be asked; asking again is no error.
    assert replies(lines, "manual:") == [
        'manual: Ok("v1 1")', 'manual: Ok("v1 1")', "manual: Ok(Ok(2))", 'manual: Ok("v2 1")',
        "manual: Ok(Ok(2))"]
    # Refusals leave the server on version 1 with its state, and reach its
    # upgrade_failed: a type version 2 does not list, a raised VSN that
    # the default upgrade does not take.
    assert 'unlisted: Ok("v1 1")' in lines and 'bumped: Ok("v1 1")' in lines
    assert ("unlisted stays on v1: the new version refused the state: this version cannot take over a "
            "upgrade_sdk::Unlisted: its wisp::upgradable! lists [\"upgrade_sdk::Counter\", "
            "\"upgrade_sdk::Manual\", \"upgrade_sdk::Bumped\"] (a type keeps its key while it keeps its "
            "name, module path and crate)") in lines, lines
    assert ("bumped stays on v1: the new version refused the state: the state is of version 1 and this "
            "code of version 2: upgrade_sdk::Bumped's Upgrade::upgrade must convert it (the default takes "
            "its own version only)") in lines, lines
    # A type no version lists cannot be asked to move.
    assert "forgotten: Ok(Err(NotUpgradable))" in lines
    # Started by main (which runs version 1 for ever), counter2 moves
    # before its first message.
    assert replies(lines, "counter2") == ['counter2: Ok("v2 1 (from v1)")']
    assert replies(lines, "loaded", "load failed", "main runs") == [
        "loaded 2", "load failed: those bytes are version 1 already", "main runs v1 of 2"]


def test_a_refusing_or_panicking_new_version_leaves_the_server_as_it_was(wisp, versions):
    lines, err = run(wisp, versions,
                     "start counter", "set counter 666", "load /v/v2.wasm", "get counter",
                     "set counter 5000000000", "upgrade counter", "get counter",
                     "set counter 7", "upgrade counter", "get counter")
    assert replies(lines, "counter:") == [
        'counter: Ok("v1 666")', 'counter: Ok("v1 666")', 'counter: Ok("v1 5000000000")',
        "counter: Ok(Err(Refused(\"count 5000000000 does not fit version 2's u32\")))",
        'counter: Ok("v1 5000000000")', 'counter: Ok("v1 7")', "counter: Ok(Ok(2))",
        'counter: Ok("v2 7 (from v1)")']
    stays = replies(lines, "counter stays")
    assert len(stays) == 2, lines
    # A panic in version 2's upgrade is a trap there: the runtime's words
    # reach the old code, the panic's own on stderr.
    assert stays[0].startswith("counter stays on v1: the new version could not take over: "
                               "wisp_code_change trapped: unreachable"), stays
    assert "version 2 will not take 666" in err
    assert stays[1] == ("counter stays on v1: the new version refused the state: count 5000000000 "
                        "does not fit version 2's u32")


def test_a_supervisor_moves_its_children_one_by_one_then_itself(wisp, versions):
    """m1, m2 and the nested supervisor's m3 move only when asked: the
    supervisor asks them in start order (the nested one asks its own),
    then moves itself, so the children it restarts run version 2."""
    lines, err = run(wisp, versions,
                     "sup start", "incr m1", "incr m2", "incr m3", "incr m3",
                     "load /v/v2.wasm", "sup upgrade",
                     "get m1", "get m2", "get m3", "kill m1", "get m1", "kill m3", "get m3")
    assert replies(lines, "manual") == ["manual m1 moves to v2", "manual m2 moves to v2",
                                        "manual m3 moves to v2"], lines
    assert replies(lines, "m1:", "m2:", "m3:", "sup:", "killed") == [
        'm1: Ok("v1 1")', 'm2: Ok("v1 1")', 'm3: Ok("v1 1")', 'm3: Ok("v1 2")',
        "sup: Ok(Ok(2))",
        'm1: Ok("v2 1")', 'm2: Ok("v2 1")', 'm3: Ok("v2 2")',
        "killed m1", 'm1: Ok("v2 0")', "killed m3", 'm3: Ok("v2 0")']
    assert "stays" not in err


def test_a_refusal_stops_the_round_and_a_plain_worker_pins_its_supervisor(wisp, versions):
    lines, err = run(wisp, versions,
                     "sup start", "supw start", "set m2 99", "incr m1",
                     "load /v/v2.wasm", "sup upgrade", "supw upgrade",
                     "get m1", "get m2", "get m3", "get m4", "kill m1", "get m1",
                     "set m2 5", "sup upgrade", "get m2", "get m3", "kill m1", "get m1")
    assert replies(lines, "m1:", "m2:", "m3:", "m4:", "sup", "killed") == [
        'm2: Ok("v1 99")', 'm1: Ok("v1 1")',
        'sup: Ok(Err(Child { id: "m2", error: Refused("manual m2 will not take 99") }))',
        'supw: Ok(Err(Child { id: "w", error: Plain }))',
        # m1 moved before m2 refused; m3 (after it) was not asked.
        'm1: Ok("v2 1")', 'm2: Ok("v1 99")', 'm3: Ok("v1 0")',
        # supw's server child moved; supw stays on version 1 for its worker.
        'm4: Ok("v2 0")',
        # sup stayed on version 1: it restarts m1 there.
        "killed m1", 'm1: Ok("v1 0")',
        'm2: Ok("v1 5")', "sup: Ok(Ok(2))", 'm2: Ok("v2 5")', 'm3: Ok("v2 0")',
        # Now sup runs version 2.
        "killed m1", 'm1: Ok("v2 0")']
    assert "manual m2 stays on v1: the new version refused the state: manual m2 will not take 99" in lines
    assert ("stays on version 1: child w: a plain process (ChildSpec::worker) cannot move: a new version "
            "cannot find its function") in err
    assert "stays on version 1: child m2: the new version refused the state: manual m2 will not take 99" \
        in err


def test_listing_a_type_that_is_not_upgradable_is_a_compile_error_saying_why(build_dir, tmp_path):
    crate = tmp_path / "badup"
    (crate / "src").mkdir(parents=True)
    (crate / "Cargo.toml").write_text(
        '[package]\nname = "badup"\nversion = "0.1.0"\nedition = "2021"\n\n'
        f'[dependencies]\nwisp = {{ path = "{ROOT}/sdk/rust/wisp" }}\n\n[workspace]\n')
    (crate / "src" / "main.rs").write_text(
        "struct Plain;\n"
        "impl wisp::Server for Plain {\n"
        "    type Arg = ();\n"
        "    fn init(_: (), _: &mut wisp::server::Context<Self>) -> Result<Self, String> { Ok(Plain) }\n"
        "    fn handlers(_: &mut wisp::server::Handlers<Self>) {}\n"
        "}\n"
        "wisp::upgradable!(Plain);\n"
        "fn main() {}\n")
    (crate / ".cargo").mkdir()
    (crate / ".cargo" / "config.toml").write_text(
        '[source.crates-io]\nreplace-with = "debian"\n\n[source.debian]\ndirectory = "/usr/share/cargo/registry"\n')
    env = dict(os.environ, CARGO_TARGET_DIR=str(build_dir / "rust-target"))
    r = subprocess.run([str(ROOT / "scripts" / "cargo-wasm"), "build", "--release", "--offline"], cwd=crate,
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode != 0, r.stdout + r.stderr
    err = r.stderr
    assert "`Plain` is not upgradable: wisp::upgradable! lists only types that implement " \
           "wisp::server::Upgrade" in err, err
    assert "src/main.rs:7:19" in err, err        # the span of `Plain` in the list
    assert "`impl wisp::server::Upgrade for Plain {}`" in err, err


def test_a_program_without_upgradable_is_no_version(wisp, versions, build_rust, tmp_path):
    shutil.copy(build_rust("hello"), versions / "plain.wasm")
    lines, err = run(wisp, versions, "load /v/plain.wasm", "version")
    assert lines[1:] == ["load failed: not a module wisp runs, or it exports no wisp_code_change "
                         "(wisp::upgradable! makes it)", "main runs v1 of 1"]


# ---- the example: sdk/rust/examples/src/bin/kv_upgrade ----

@pytest.fixture(scope="module")
def kv_versions(build_dir, tmp_path_factory):
    """kv_upgrade as v1.wasm and (--features kv_v2) v2.wasm."""
    out = tmp_path_factory.mktemp("kv-upgrade")
    target = build_dir / "rust-sdk-target"
    env = dict(os.environ, CARGO_TARGET_DIR=str(target))
    for name, features in (("v1", []), ("v2", ["--features", "kv_v2"])):
        r = subprocess.run([str(ROOT / "scripts" / "cargo-wasm"), "build", "--release", "-p", "wisp-examples",
                            "--bin", "kv_upgrade", *features],
                           cwd=ROOT / "sdk" / "rust", env=env, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        shutil.copy(target / "wasm32-wasip1" / "release" / "kv_upgrade.wasm", out / f"{name}.wasm")
    return out


class KvRun:
    """kv_upgrade's version 1 running on a free port, with its own control
    socket directory (XDG_RUNTIME_DIR) so that `wisp reload` finds it."""

    def __init__(self, versions, shared_cache, tmp_path):
        self.versions = versions
        self.env = dict(os.environ, WISP_CACHE_DIR=str(shared_cache), WISP_BACKGROUND_COMPILE="0",
                        XDG_RUNTIME_DIR=str(tmp_path))
        self.proc = subprocess.Popen([str(WISP), "run", "--allow-listen", "127.0.0.1:*",
                                      versions / "v1.wasm", "0"], env=self.env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("kv version 1 on 127.0.0.1:"), (line, self.proc.poll())
        self.port = int(line.rsplit(":", 1)[1])

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        return Client(s)

    def reload(self):
        return subprocess.run([str(WISP), "reload", self.versions / "v2.wasm"], env=self.env,
                              capture_output=True, text=True, timeout=120)

    def stop(self):
        self.proc.kill()
        out, err = self.proc.communicate(timeout=30)
        return out, err


class Client:
    def __init__(self, s):
        self.s, self.f = s, s.makefile("r")

    def send(self, data):
        self.s.sendall(data.encode())

    def __call__(self, line):
        self.send(line + "\n")
        return self.f.readline().rstrip("\n")


@pytest.fixture
def kv(kv_versions, shared_cache, tmp_path):
    run = KvRun(kv_versions, shared_cache, tmp_path)
    yield run
    run.stop()


def test_kv_example_changes_protocol_while_clients_stay_connected(kv):
    """Clients connected to version 1 keep their connections across `wisp
    reload` from another terminal: the store's map (converted to version
    2's layout), each connection's command count and a half-sent line
    travel; every later line gets version 2's protocol, and a connection
    opened afterwards speaks it from its first line."""
    a, b, c = kv.connect(), kv.connect(), kv.connect()
    assert [a("SET lang rust"), a("SET os wasi"), a("GET lang"), a("COUNT")] == \
        ["OK", "OK", "VALUE rust", "COUNT 4"]
    assert [b("GET nope"), b("WRITES lang")] == ["NOT FOUND", "ERROR unknown command"]
    # c's connection reads a line and half the next one (one segment on
    # loopback: once the first is answered, the half is in its buffer).
    c.send("GET lang\nGET l")
    assert c.f.readline() == "VALUE rust\n"
    r = kv.reload()
    assert r.returncode == 0 and "is version 2" in r.stdout, r
    c.send("ang\n")
    assert c.f.readline() == "+rust\n"
    assert [a("GET lang"), a("COUNT"), a("WRITES lang"), a("SET lang c"), a("WRITES lang")] == \
        ["+rust", "+6", "+1", "+OK", "+2"]
    assert [b("KEYS"), b("DEL os"), b("DEL os"), b("COUNT")] == ["+lang os", "+1", "+0", "+6"]
    assert b("SET a/b 1") == "-ERR bad key: letters, digits and _.:- only"
    d = kv.connect()
    assert [d("GET lang"), d("COUNT")] == ["+c", "+2"]
    out, err = kv.stop()
    assert "kv: version 2 took over 2 keys from version 1\n" in out, out + err
    assert "stays" not in err, err


def test_kv_example_store_refusing_the_new_version_keeps_serving(kv):
    """Version 2 refuses a store holding a key it does not allow: the store
    goes on with version 1's code and its state (the connections move,
    and speak version 2 to it; what only version 2's store knows waits),
    until the key is deleted and a client asks it to move again."""
    a, b = kv.connect(), kv.connect()
    assert [a("SET a/b 1"), a("SET x 2")] == ["OK", "OK"]
    r = kv.reload()
    assert r.returncode == 0 and "is version 2" in r.stdout, r
    assert [a("GET a/b"), a("GET x"), b("COUNT")] == ["+1", "+2", "+1"]
    assert a("WRITES x") == "-ERR the store runs an older version: UPGRADE it"
    assert b("UPGRADE") == ('-ERR the new version refused the state: version 2 keeps keys of letters, '
                            'digits and _.:- only, and the store holds "a/b": delete it, then UPGRADE')
    assert [b("DEL a/b"), b("UPGRADE"), a("WRITES x"), a("KEYS")] == \
        ["+1", "+OK the store runs version 2", "+1", "+x"]
    out, err = kv.stop()
    assert 'stays on version 1: the new version refused the state: version 2 keeps keys' in err, err
    assert "kv: version 2 took over 1 key from version 1\n" in out, out
