"""The SDKs' distribution API (issue 13, item 7), through real nodes: the
Rust crate's `wisp::node` and portable pids (tests/guests/rust/dist_sdk,
whose header lists its commands), the crate's own tests run on a node, the
distributed worker pool example (sdk/rust/examples/src/bin/dist_pool.rs),
and the C helpers (tests/guests/c/dist_sdk.c).

Every test starts its nodes with a private EPMD (ERL_EPMD_PORT) and a
private HOME (the cookie file), so no test touches a system EPMD or
another test's nodes; BEAM nodes are `erl -sname`."""
import os
import re
import shutil
import signal
import socket
import subprocess

import pytest

from conftest import ROOT, WISP
from test_dist import LineProc

pytestmark = pytest.mark.skipif(shutil.which("erl") is None or shutil.which("epmd") is None,
                                reason="needs erlang-nox (erl, epmd)")

COOKIE = "wisp-sdk-cookie"
HOST = socket.gethostname().split(".")[0]
SDK = ROOT / "sdk" / "rust"
CARGO_WASM = ROOT / "scripts" / "cargo-wasm"


def node(name):
    return f"{name}@{HOST}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc(LineProc):
    """A node (wisp or erl) whose stdout is read line by line."""

    def line(self, pattern, timeout=30):
        """The first line (seen before or arriving) matching pattern."""
        return self.wait_line(pattern, timeout)

    def all_lines(self, timeout=60):
        """Every line until the process ends; its exit status."""
        code = self.proc.wait(timeout=timeout)
        while True:
            line = self.lines.get(timeout=10)
            if line is None:
                return self.seen, code
            self.seen.append(line)


class Cluster:
    def __init__(self, tmp_path, cache):
        self.epmd_port = free_port()
        self.env = dict(os.environ)
        self.env.update(ERL_EPMD_PORT=str(self.epmd_port), WISP_CACHE_DIR=str(cache),
                        WISP_BACKGROUND_COMPILE="0", HOME=str(tmp_path))
        self.procs = []

    def wisp(self, name, wasm, *args, extra=()):
        p = Proc([str(WISP), "run", "--sname", name, "--cookie", COOKIE, *extra, str(wasm),
                  *map(str, args)], self.env)
        self.procs.append(p)
        return p

    def erl(self, name, expr):
        p = Proc(["erl", "-sname", name, "-setcookie", COOKIE, "-noshell", "-eval",
                  expr + ", init:stop()."], self.env)
        self.procs.append(p)
        return p

    def close(self):
        for p in self.procs:
            p.stop()
        subprocess.run(["epmd", "-port", str(self.epmd_port), "-kill"], env=self.env,
                       capture_output=True, timeout=10)


@pytest.fixture
def cluster(tmp_path, shared_cache):
    c = Cluster(tmp_path, shared_cache)
    yield c
    c.close()


@pytest.fixture(scope="module")
def guest(build_rust):
    return build_rust("dist_sdk")


# ---- pids in messages, by name, across three nodes ----

def test_pids_travel_inside_messages_and_name_the_same_process(cluster, guest):
    a = cluster.wisp("sa", guest, "serve")
    c = cluster.wisp("sc", guest, "serve")
    a.line(r"^ready")
    c.line(r"^ready")
    b = cluster.wisp("sb", guest, "client", node("sa"), node("sc"))
    lines, code = b.all_lines()
    assert code == 0, (lines, b.stop())
    assert lines == [
        "connect Ok(())",
        "connected true",
        f"reply HI from {node('sa')}",
        "server pid is the sender true",      # the pid inside == the envelope's from
        f"server lives on {node('sa')}",
        "by pid BY PID",                       # that pid, used to send
        f"call CALLED from {node('sa')}",      # and to call
        # B hands A a pid of C's and its own; A sends C a request carrying
        # B's pid; C answers B directly.
        f"relay RELAYED from {node('sc')} sender is C's svc true",
    ], lines


def test_a_pid_is_portable_on_a_node_and_an_integer_elsewhere(cluster, guest, wisp):
    r = wisp("run", guest, "pidform")
    assert (r.code, r.out) == (0, "pid as u64 true\nportable false\nround trip true\nzero 0\n"
                                  "json round trip true\nmsgpack round trip true\njunk true\n"), r
    p = cluster.wisp("pf", guest, "pidform")
    lines, code = p.all_lines()
    assert (code, lines) == (0, ["pid as u64 false", "portable true", "as the host writes it true",
                                 "round trip true", "zero 0",
                                 "json round trip true", "msgpack round trip true",
                                 "junk true"]), p.stop()


@pytest.mark.parametrize("as_node", [False, True])
def test_local_programs_behave_alike_in_either_form(cluster, guest, wisp, as_node):
    expected = ["local reply LOCAL server is sender true", "local call call", "spawn arg spawned",
                "supervisor restarted its child true"]
    if as_node:
        p = cluster.wisp("lo", guest, "local")
        lines, code = p.all_lines()
    else:
        r = wisp("run", guest, "local")
        lines, code = r.out.splitlines(), r.code
    assert (code, lines) == (0, expected)


def test_the_crates_own_tests_pass_on_a_node(cluster, build_dir, tmp_path):
    """Every process, server, macro and codec test of the crate, with the
    runtime a node: each pid in their messages, spawn arguments, replies
    and supervisor protocols travels in the portable form."""
    env = dict(cluster.env, CARGO_TARGET_DIR=str(build_dir / "rust-sdk-target"))
    # A node name per test binary ($$): one run's name may still be
    # registered with EPMD for a moment after it ends.
    runner = tmp_path / "run-as-node"
    runs = tmp_path / "runs"
    runner.write_text(f'#!/bin/sh\necho "crate$$" >> {runs}\n'
                      f'exec {WISP} run --sname "crate$$" --cookie {COOKIE} '
                      '--allow-listen "127.0.0.1:*" --allow-connect "127.0.0.1:*" --allow-udp '
                      '--allow-dns "$@"\n')
    runner.chmod(0o755)
    env["CARGO_TARGET_WASM32_WASIP1_RUNNER"] = str(runner)
    r = subprocess.run([str(CARGO_WASM), "test", "--release", "-p", "wisp", "--all-features",
                        "--test", "processes", "--test", "servers", "--test", "macros",
                        "--test", "codecs", "--test", "net"],
                       cwd=SDK, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    for name, n in (("processes", 20), ("servers", 17), ("macros", 7), ("codecs", 3), ("net", 12)):
        assert f"Running tests/{name}.rs" in r.stderr, r.stderr
        assert f"test result: ok. {n} passed; 0 failed" in r.stdout, (name, r.stdout)
    assert len(runs.read_text().split()) == 5       # each binary ran as a node


# ---- remote spawn: links, monitors, reasons ----

def test_spawn_on_with_link_and_monitor_sees_the_real_reasons(cluster, guest):
    a = cluster.wisp("ra", guest, "serve", extra=("--allow-remote-spawn",))
    a.line(r"^ready")
    b = cluster.wisp("rb", guest, "spawner", node("ra"))
    lines, code = b.all_lines()
    assert code == 0, (lines, b.stop())
    assert lines[:2] == [f"linked child on {node('ra')} knows itself true",
                         f"child's node seen from here {node('ra')}"], lines
    # The linked child's panic, its location and message, as the reason of
    # its exit signal: it crossed the nodes as {panic, Text}.
    assert re.fullmatch(r"exit panicked at \S+\.rs:\d+:\d+: child gives up on purpose", lines[2]), lines
    assert lines[3:] == ["down exit code 7",     # spawn_monitor_on, exit(7)
                         "down killed",          # killed from this node
                         f"closure captured on {node('ra')} knows itself true",   # spawn_link_on!
                         "closure exit normal",  # (trapped: a normal end is a message)
                         "plain child alive true",
                         "down normal"], lines
    assert a.proc.poll() is None
    assert "child gives up on purpose" in a.stop()   # the panic was there


def test_node_errors_are_clear(cluster, guest, wisp):
    a = cluster.wisp("ea", guest, "serve")                # no --allow-remote-spawn
    a.line(r"^ready")
    b = cluster.wisp("eb", guest, "errors", node("ea"))
    lines, code = b.all_lines()
    assert (code, lines) == (0, [
        "unknown node: Some(Unreachable)",
        "connect unknown: Err(Unreachable)",
        "refusing node: Some(NodeRefused)",
        "bad node name: Err(BadName)",
        "bad registered name: Err(BadName)",
        "denied child: Err(Denied) Err(Denied) Some(NodeRefused)",   # Caps::deny_nodes
    ]), b.stop()
    r = wisp("run", guest, "nonode")
    assert (r.code, r.out) == (0, "name None\nnodes []\nconnect Err(NotANode)\n"
                                  "send_named Err(NotANode)\nspawn_on Some(Unreachable)\n"
                                  "spawn_on! Some(Unreachable)\n"
                                  "of self None\n"), r


def test_monitor_node_reports_the_loss_of_a_node(cluster, guest):
    a = cluster.wisp("wa", guest, "serve")
    a.line(r"^ready")
    b = cluster.wisp("wb", guest, "watch", node("wa"))
    assert b.line(r"^watching") == f"watching {node('wa')}"
    assert b.seen[:3] == [
        f"unreachable node: down noconnection from {node('nobody')}",   # at once
        "bad name: Err(BadName)",
        "demonitor true",
    ], b.seen
    a.proc.kill()
    lines, code = b.all_lines()
    assert code == 0, (lines, b.stop())
    assert lines[4:] == [f"nodedown noconnection from {node('wa')}",
                         "no down of the demonitored watch true"], lines


# ---- a Rust server migrates (wisp::server::Handover; dist_sdk's migrate.rs) ----

def test_a_rust_server_migrates_under_load_and_clients_keep_their_ref(cluster, guest):
    """A counter server on A refuses five moves and stays with its state,
    then moves to B halfway through 2,000 calls made by its old ServerRef:
    every call answered in order with the next count (none lost or
    repeated), the first half from A and the rest from B; its state (the
    count and the failures it was told of) carried over, its name working
    on B, casts still reaching it, and its end (exit code 7) seen by a
    monitor of the old pid and by its starter on A."""
    a = cluster.wisp("ma", guest, "counter")
    b = cluster.wisp("mb", guest, "serve", extra=("--allow-remote-spawn",))
    n = cluster.wisp("mn", guest, "serve")                # no --allow-remote-spawn
    for p in (a, b, n):
        p.line(r"^ready")
    c = cluster.wisp("mc", guest, "mclient", node("ma"), node("mb"), node("mn"), 2000)
    lines, code = c.all_lines(timeout=300)
    assert (code, lines) == (0, [
        "found on true",
        "to a refusing node: Refused",            # mn takes no remote spawns
        "to no node: Unreachable",
        "to a bad name: BadName",
        "with a name taken there: Rejected",      # "svc" is registered on mb
        'with save refusing: Save("not now")',
        "still on A true count 0 failures told 5",
        "2000 calls answered in order, from A then B",
        "moved to B true, a new pid true",
        "after the move: on B true count 2005 failures carried 5 named there true",
        "by name on A: answered from B true by the new pid true",
        "by name on B: answered from B true by the new pid true",
        "stopped at 2005",
        "down exit code 7, exit exit code 7",     # a monitor of and a link to the old pid
    ]), c.stop()
    assert a.all_lines()[0][-1] == "counter ended exit code 7", a.stop()
    assert b.proc.poll() is None and n.proc.poll() is None


def test_a_migrated_server_ends_with_its_old_pid(cluster, guest):
    """A server trapping exits moves twice (the setting travels); killing
    its first pid, the identity its clients hold, ends the incarnation on
    the third node too, which runs terminate there: the old pid's monitors
    and the starter see killed."""
    a = cluster.wisp("ka", guest, "counter", "trap")
    b = cluster.wisp("kb", guest, "serve", extra=("--allow-remote-spawn",))
    d = cluster.wisp("kd", guest, "serve", extra=("--allow-remote-spawn",))
    for p in (a, b, d):
        p.line(r"^ready")
    c = cluster.wisp("kc", guest, "mkill", node("ka"), node("kb"), node("kd"))
    lines, code = c.all_lines(timeout=300)
    assert (code, lines) == (0, ["moved to B true", "moved on to D true",
                                 "on D true trapping true former pids 2 the first the client's true",
                                 "down killed", "terminate killed on D"]), c.stop()
    assert a.all_lines()[0][-1] == "counter ended killed", a.stop()


def test_a_move_whose_restore_fails_ends_the_server_and_says_why(cluster, guest):
    """The move has happened when restore runs there: its error ends the
    server (a panic on B, with the text), as the old pid's monitors and
    its starter see."""
    a = cluster.wisp("pa", guest, "counter")
    b = cluster.wisp("pb", guest, "serve", extra=("--allow-remote-spawn",))
    a.line(r"^ready")
    b.line(r"^ready")
    c = cluster.wisp("pc", guest, "mpoison", node("pa"), node("pb"))
    lines, code = c.all_lines(timeout=300)
    assert code == 0, (lines, c.stop())
    # The caller hears the reason from B, unless the server's end (through
    # its old pid on A) overtakes it.
    assert lines[0] in ('move: Restore("poisoned at 0")', "move: call failed NoProc"), lines
    # (The panic and its text are the reason, on B and through A.)
    assert lines[1:] == ["down panic"], lines
    ended = a.all_lines()[0][-1]
    assert ended.startswith("counter ended panicked at "), a.stop()
    assert "could not restore the state: poisoned at 0" in ended, a.stop()
    assert "could not restore the state: poisoned at 0" in b.stop()


# ---- a BEAM node ----

ERL_ECHO = """
    register(echo, self()),
    io:format("erl ready~n"),
    Loop = fun L(Who) ->
        receive
            {ping, Pid, Bin} -> Pid ! {pong, Bin, self()}, L(Pid);
            {1, Bin} = M when is_binary(Bin) ->
                io:format("typed ~p bytes~n", [byte_size(Bin)]), Who ! M, L(Who);
            stop -> io:format("stopped~n")
        after 60000 -> io:format("timeout~n")
        end
    end,
    Loop(none)"""


def test_send_named_to_a_beam_process_and_its_replies(cluster, guest):
    e = cluster.erl("be", ERL_ECHO)
    e.line(r"^erl ready")
    b = cluster.wisp("bw", guest, "beam", node("be"))
    lines, code = b.all_lines()
    assert (code, lines) == (0, [
        "pong hi",                                  # a term, by name, answered by pid
        "erlang pid is the sender true",
        f"erlang pid lives on {node('be')}",
        'note back "by name" from me true',         # typed, by name, relayed back
        'note back "by pid" from me true',          # typed, to the Erlang pid
        f"erl node down noconnection from {node('be')}",   # monitor_node of a BEAM node
    ]), b.stop()
    assert e.line(r"^stopped") == "stopped"
    assert len([x for x in e.seen if x.startswith("typed ")]) == 2, e.seen


# ---- the distributed worker pool (examples/src/bin/dist_pool.rs) ----

@pytest.fixture(scope="module")
def dist_pool(build_dir):
    env = dict(os.environ, CARGO_TARGET_DIR=str(build_dir / "rust-sdk-target"))
    r = subprocess.run([str(CARGO_WASM), "build", "--release", "-p", "wisp-examples", "--bin",
                        "dist_pool"], cwd=SDK, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    return build_dir / "rust-sdk-target" / "wasm32-wasip1" / "release" / "dist_pool.wasm"


def test_the_pool_supervisor_restarts_crashed_workers_on_the_other_node(cluster, dist_pool):
    pool = cluster.wisp("pool", dist_pool, "serve", extra=("--allow-remote-spawn",))
    pool.line(r"^serving")
    boss = cluster.wisp("boss", dist_pool, "boss", 20, node("pool"))
    lines, code = boss.all_lines(timeout=120)
    assert code == 0, (lines, boss.stop())
    assert lines[0] == (f"pool: 4 workers on {node('pool')} under a one_for_one supervisor on "
                        f"{node('boss')}"), lines
    p = node("pool")
    assert f"job 4: 4^2 = 16 (worker-1 on {p})" in lines, lines
    assert f"job 5: worker-2 crashed on {p}; the supervisor restarted it on {p}" in lines, lines
    assert f"job 9: 9^2 = 81 (worker-2 on {p})" in lines, lines    # the restarted worker-2
    assert f"job 20: worker-1 crashed on {p}; the supervisor restarted it on {p}" in lines, lines
    assert lines[-1] == "pool: 20 jobs, 16 results, 4 crashes survived, 4 workers alive", lines
    # The workers ran there: their panics are on the pool node's stderr.
    assert pool.proc.poll() is None
    assert pool.stop().count("is poison") == 4


def test_the_pool_moves_to_the_spare_node_when_its_node_is_lost(cluster, dist_pool):
    pool = cluster.wisp("pool2", dist_pool, "serve", extra=("--allow-remote-spawn",))
    spare = cluster.wisp("spare2", dist_pool, "serve", extra=("--allow-remote-spawn",))
    pool.line(r"^serving")
    spare.line(r"^serving")
    p, s = node("pool2"), node("spare2")
    boss = cluster.wisp("boss2", dist_pool, "boss", 6, p, s, "--failover")
    assert boss.line(r"^pool: waiting") == f"pool: waiting for {p} to go"
    pool.proc.send_signal(signal.SIGKILL)
    lines, code = boss.all_lines(timeout=120)
    assert code == 0, (lines, boss.stop())
    i = lines.index(f"pool: lost {p} (noconnection)")
    assert lines[i + 1] == f"pool: 4 workers restarted on {s}", lines
    after = lines[i + 2:]
    assert after[:3] == [f"job 7: 7^2 = 49 (worker-4 on {s})",
                         f"job 8: 8^2 = 64 (worker-1 on {s})",
                         f"job 9: 9^2 = 81 (worker-2 on {s})"], lines
    assert f"job 10: worker-3 crashed on {s}; the supervisor restarted it on {s}" in after, lines
    assert lines[-1] == "pool: 12 jobs, 10 results, 2 crashes survived, 4 workers alive", lines


# ---- the C helpers (tests/guests/c/dist_sdk.c) ----

def test_c_helpers_by_name_with_packed_pids_and_terms(cluster, build_proc):
    wasm = build_proc("dist_sdk.c")
    a = cluster.wisp("ca", wasm, "serve")
    assert a.line(r"^ready") == f"ready {node('ca')}"
    b = cluster.wisp("cb", wasm, "client", node("ca"))
    lines, code = b.all_lines()
    assert (code, lines) == (0, [
        "connect 0",
        "packed 1",                             # the portable form, on a node
        "send 0",
        f"back hello from {node('ca')}",        # sent to the pid unpacked there
        "term send 0",
        f"pong from {node('ca')}",              # wisp_term_send to the term's pid
        "overflow 4",                           # WISP_EINVAL: nothing sent
    ]), b.stop()
    assert a.proc.wait(timeout=20) == 0         # the tag-9 stop came after the rest
    assert "a bad pid" not in " ".join(a.seen)


def test_c_pid_packing_here_and_on_a_node(cluster, build_proc, wisp):
    wasm = build_proc("dist_sdk.c")
    r = wisp("run", wasm, "pack")
    assert (r.code, r.out) == (0, "len 8\nsame 1\ntoo small 8\nshort 4\nzero 4\n"), r
    p = cluster.wisp("cp", wasm, "pack")
    lines, code = p.all_lines()
    n = 1 + 2 + len(node("cp")) + 12            # NEW_PID_EXT: SMALL_ATOM_UTF8 node, 3 numbers
    assert (code, lines) == (0, [f"len {n}", "same 1", f"too small {n}", "short 4", "zero 4"]), \
        p.stop()
