"""Processes end to end: C guests (tests/guests/c/proc_*.c, built with
sdk/c/wisp.c) spawn, message, register and time processes through the real
wisp binary. The main process is the one running main(); `wisp run` exits
with its status when it ends. Each guest prints what it observed; the tests
compare the text exactly, so every expectation is stated here.

Links, monitors and exit signals are in test_links.py."""
import os

import pytest


def run(wisp, module, *args, schedulers=None, tier=None, timeout=60):
    extra = ["--schedulers", str(schedulers)] if schedulers else []
    extra += ["--tier", tier] if tier else []
    return wisp("run", *extra, module, *args, timeout=timeout)


def lines(*ls):
    return "".join(line + "\n" for line in ls)


@pytest.fixture(scope="module")
def msg(build_proc):
    return build_proc("proc_msg.c")


@pytest.fixture(scope="module")
def crowd(build_proc):
    return build_proc("proc_crowd.c")


@pytest.fixture(scope="module")
def bad(build_proc):
    return build_proc("proc_bad.c")


# ---- the SDK ----

CTOR_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wisp/guest.h>

/* Set by a constructor: visible in a spawned process only if the spawn
 * entry ran the module's constructors. */
static volatile int initialised;
static char *from_ctor;
__attribute__((constructor)) static void init(void)
{
    initialised += 1;
    from_ctor = strdup("ctor ran");
}

static void child(const void *arg, uint32_t len)
{
    wisp_pid_t main;
    memcpy(&main, arg, sizeof main);
    char line[64];
    int n = snprintf(line, sizeof line, "%s %d, arg %u bytes", from_ctor, initialised, len);
    wisp_send(main, 1, line, (uint32_t)n);
}

static void empty_arg(const void *arg, uint32_t len)
{
    (void)arg;
    /* No argument: len 0; tell main through the registry. */
    wisp_send(wisp_whereis_name("main"), 2, &len, sizeof len);
}

int main(void)
{
    wisp_pid_t me = wisp_self();
    printf("abi %d, self nonzero %d\n", wisp_abi_version(), me != 0);
    printf("register: %d\n", wisp_register_name("main", me));
    char buf[64];
    struct wisp_msg_info info;
    uint64_t ref;
    wisp_pid_t c = wisp_spawn_monitor(child, &me, sizeof me, &ref);
    wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info);
    printf("child: %.*s, from child %d\n", (int)info.len, buf, info.from == c);
    char down[512];
    wisp_receive(&ref, 1, WISP_INFINITY, down, sizeof down, &info);
    struct wisp_exit_reason why;
    memcpy(&why, down, sizeof why);
    printf("child DOWN kind %u, ref matches %d\n", why.kind, info.tag == ref);
    wisp_pid_t l = wisp_spawn_link(empty_arg, NULL, 0);
    uint32_t n = 99;
    uint64_t two = 2;
    wisp_receive(&two, 1, WISP_INFINITY, &n, sizeof n, &info);
    printf("empty arg: len %u, pid %d\n", n, l != 0 && l != me && l != c);
    printf("main: %s %d\n", from_ctor, initialised);
    return 0;
}
"""


def test_spawn_entry_runs_constructors_and_passes_the_argument(wisp, build_proc):
    # wasm-ld wraps exported functions of a command module with the
    # module's constructors (see sdk/c/wisp.c): a child sees them run once.
    r = run(wisp, build_proc(CTOR_C, name="ctor"))
    assert (r.code, r.err) == (0, ""), r
    assert r.out == lines(
        "abi 1, self nonzero 1",
        "register: 0",
        "child: ctor ran 1, arg 8 bytes, from child 1",
        "child DOWN kind 0, ref matches 1",
        "empty arg: len 0, pid 1",
        "main: ctor ran 1",
    ), r


def test_sdk_readme_example_builds_and_runs(wisp, build_proc):
    from conftest import ROOT
    text = (ROOT / "sdk" / "c" / "README.md").read_text()
    src = text.split("```c\n", 1)[1].split("```", 1)[0]
    r = run(wisp, build_proc(src, name="readme"))
    assert (r.code, r.out, r.err) == (0, "ping 1 -> pong 2\nping 2 -> pong 3\nping 3 -> pong 4\n", ""), r


# ---- messages ----

MSG_EXPECTED = {
    "order": lines(
        "order: 10000 messages, 0 out of place",
        "extra: 2",
    ),
    "many": lines(
        "many: 100000 messages, 100 senders complete, 0 out of order, 0 wrong sender",
        "extra: 2",
    ),
    "selective": lines(
        "tag 102: 102/2 102/5 102/8",
        "tag 101: 101/1 101/4 101/7",
        "any: 100/0 100/3 100/6 100/9",
        "tags 202|201: 201/1 202/2",
        "tags 202|201 again: rc=2",
        "rest: 200/0 200/3",
        "absent tag: 2",
        "late: 0 late",
        "then: 0 tag 300 q",
        "then: 0 tag 8 early",
        "empty: 2",
    ),
    "timeout": lines(
        "poll empty: 2",
        "poll one: 0 hi",
        "wait 1 ms: 2, elapsed >= timeout: yes",
        "wait 200 ms: 2, elapsed >= timeout: yes",
        "arrives within the wait: 0 late",
    ),
    "toosmall": lines(
        "small buffer: 3 len 100 tag 7",
        "no buffer: 3 len 100",
        "one short: 3 len 100",
        "exact: 0 len 100 tag 7 same: yes",
        "next: 0 tag 8 tail",
        "empty message: 0 len 0 tag 9",
    ),
    "request": lines(
        "requests: 1000 ok, 0 bad, 1000 distinct refs",
        "plain send carries ref: 0",
        "queued before: 0 tag 6 mine",
        "small reply buffer: 3 len 4",
        "reply kept: 0 42",
    ),
    "request_dead": lines(
        "dead: 1",
        "pid 0: 1",
        "never existed: 1",
        "server exits before replying: 1, within 5 s: yes",
        "server traps before replying: 1, within 5 s: yes",
        "mailbox: 2",
    ),
    "request_timeout": lines(
        "silent server: 2, elapsed >= 150 ms: yes",
        "server alive: 1",
        "zero timeout: 2",
    ),
}


@pytest.mark.parametrize("case", list(MSG_EXPECTED))
def test_messages(wisp, msg, case):
    r = run(wisp, msg, case)
    assert r.out == MSG_EXPECTED[case], r
    assert r.code == 0, r
    if case != "request_dead":       # a server traps there
        assert r.err == "", r


# ---- many processes ----

# ThreadSanitizer keeps ~1.2 MB of trace per fiber: tens of thousands of
# processes exhaust it; the same guests run at 500 processes in every build
# (test_small_ring_and_workers), TSan included.
tsan_too_many = pytest.mark.skipif(os.environ.get("WISP_SANITIZE") == "thread",
                                   reason="TSan cannot hold 10k+ fibers")


def test_small_ring_and_workers(wisp, crowd):
    r = run(wisp, crowd, "ring", 500, 10)
    assert r.out == lines(
        "ring of 500 ready (last 499)",
        "done by node 499 after 5000 hops",
        "bad hops: 0",
    ), r
    assert (r.code, r.err) == (0, ""), r
    r = run(wisp, crowd, "workers", 500)
    assert r.out == lines(
        "down: normal=450 trap=50 other=0 matching pid=500 trap text=50",
        "results: correct=450 wrong=0",
        "left over: 2",
    ), r
    assert r.code == 0, r


@tsan_too_many
def test_ring_of_10000_processes(wisp, crowd):
    r = run(wisp, crowd, "ring", 10000, 10)
    assert r.out == lines(
        "ring of 10000 ready (last 9999)",
        "done by node 9999 after 100000 hops",
        "bad hops: 0",
    ), r
    assert (r.code, r.err) == (0, ""), r


@tsan_too_many
def test_10000_workers_every_10th_traps(wisp, crowd):
    r = run(wisp, crowd, "workers", 10000)
    assert r.out == lines(
        "down: normal=9000 trap=1000 other=0 matching pid=10000 trap text=1000",
        "results: correct=9000 wrong=0",
        "left over: 2",
    ), r
    assert r.code == 0, r


@tsan_too_many
def test_100000_processes_trapping_at_once(wisp, crowd):
    r = run(wisp, crowd, "traps", 100000, timeout=90)
    assert r.out == "spawned 100000, TRAP downs 100000, other 0\n", r
    assert r.code == 0, r


# ---- registry and timers ----

def test_registry(wisp, build_proc):
    r = run(wisp, build_proc("proc_registry.c"))
    assert r.out == lines(
        "whereis unknown: 8 pid 0",
        "register alpha: 0",
        "whereis alpha: main",
        "register alpha again: 5",
        "register beta too: 0",
        "whereis beta: main",
        "names are bytes: 0 0",
        "prefix is another name: none",
        "empty name: 4 4",
        "255 bytes: 0",
        "256 bytes: 4 4",
        "unregister 255: 0",
        "worker: register 0 0, take alpha 5, sees main as alpha 1",
        "whereis worker: worker",
        "whereis worker-2: worker",
        "after worker's DOWN: worker none, worker-2 none",
        "worker's name is free again: 0",
        "register dead: 1",
        "register pid 0: 1",
        "whereis ghost: none",
        "unregister alpha: 0",
        "whereis alpha: 8 none",
        "unregister alpha again: 8",
        "beta still: main",
        "register alpha once more: 0",
    ), r
    assert (r.code, r.err) == (0, ""), r


def test_timers(wisp, build_proc):
    r = run(wisp, build_proc("proc_timer.c"))
    assert r.out == lines(
        "sleep 50 ms: elapsed >= 50 ms: yes",
        "sleep 0 and negative: returned",
        "sleeping through messages: slept >= 150 ms: yes",
        "send_after: 0, timer id set: yes",
        "fired: 0 tag 42 hello from self: yes, after >= 100 ms: yes",
        "cancel after firing: 8",
        "cancel before firing: 0",
        "cancel twice: 8",
        "after cancel, within 400 ms: 2",
        "cancel unknown: 8",
        "order: 51 52 50",
        "zero delay: 0 tag 60",
        "timer of a dead setter: 0 tag 77 orphan, after >= 100 ms: yes",
        "send_after to dead: 0",
        "1000 timers: 1000 fired, 1000 intact",
        "mailbox: 2",
    ), r
    assert (r.code, r.err) == (0, ""), r


# ---- preemption ----

@pytest.mark.parametrize("schedulers,tier", [(None, None), (1, None), (2, None), (1, "fast")])
def test_spinning_processes_do_not_starve_others(wisp, build_proc, schedulers, tier):
    # Both tiers place their own reduction hooks: check the fast one too.
    r = run(wisp, build_proc("proc_preempt.c"), 4, schedulers=schedulers, tier=tier)
    assert r.out == "replies: 100/100\nspinners alive: 4/4\n", r
    assert (r.code, r.err) == (0, ""), r


@pytest.mark.parametrize("schedulers", [1, 2])
def test_wasi_sleep_parks_only_the_sleeping_process(wisp, build_proc, schedulers):
    # Two processes sleeping through libc (usleep, nanosleep: WASI
    # poll_oneoff) in a loop must not hold a scheduler thread: the design
    # promises blocking-style guest code parks only its process.
    r = run(wisp, build_proc("proc_preempt.c"), 2, "nap", schedulers=schedulers, timeout=20)
    assert r.out == "replies: 100/100\nnappers alive: 2/2\n", r
    assert (r.code, r.err) == (0, ""), r


# ---- bad input ----

def test_invalid_and_stale_pids(wisp, bad):
    r = run(wisp, bad, "pids")
    assert r.out == lines(
        "pid 0: send 0, alive 0, kill 0, exit_signal 0, unlink 0",
        "pid never existed: send 0, alive 0, kill 0, exit_signal 0, unlink 0",
        "pid ended: send 0, alive 0, kill 0, exit_signal 0, unlink 0",
        "alive self: 1",
        "self is not 0: yes",
        "link never existed: 0, then EXIT NOPROC",
        "link ended: 0, then EXIT NOPROC",
        "mailbox: 2",
        "abi version: 1",
    ), r
    assert (r.code, r.err) == (0, ""), r


@pytest.mark.parametrize("schedulers", [1, 2])
def test_stale_pids_never_reach_the_next_process_in_their_slot(wisp, bad, schedulers):
    # Slots are reused with a new generation: a message, exit signal, kill,
    # link or monitor for an ended process must not touch its successor.
    r = run(wisp, bad, "stale", schedulers=schedulers)
    assert r.out == lines(
        "stale pids: 200, alive 0, link NOPROC 200, monitor NOPROC 200",
        "bystanders: 200 ended NORMAL, 0 got something",
    ), r
    assert (r.code, r.err) == (0, ""), r


def test_bad_arguments_are_errors(wisp, bad):
    r = run(wisp, bad, "args")
    assert r.out == lines(
        "spawn with unknown flags: 4",
        "receive with 5000 tags: 4",
        "receive with 4096 tags: 2",
        "trap_exit 7: 0 then 1",
    ), r
    assert (r.code, r.err) == (0, ""), r


NO_ENTRY_C = r"""
#include <stdio.h>
#include <wisp/guest.h>
/* Built without sdk/c/wisp.c: the module exports no wisp_spawn_entry. */
static void child(const void *a, uint32_t l) { (void)a; (void)l; }
int main(void)
{
    struct wisp_spawned out = { 0, 0 };
    printf("spawn: %d pid %llu\n", wisp_spawn_raw((uint32_t)(uintptr_t)child, NULL, 0, 0, &out),
           (unsigned long long)out.pid);
    return 0;
}
"""


def test_spawn_needs_the_spawn_entry(wisp, build_c):
    r = run(wisp, build_c(NO_ENTRY_C, name="noentry"))
    assert (r.code, r.out, r.err) == (0, "spawn: 4 pid 0\n", ""), r


def test_huge_messages_are_refused(wisp, bad):
    r = run(wisp, bad, "huge")
    assert r.out == lines(
        "send 1 GiB: 6",
        "send 4 GiB-1: 6",
        "request 1 GiB: 6",
        "send_after 1 GiB: 6",
        "spawn with a 1 GiB argument: 6",
        "send 1 MiB: 0",
        "receive 1 MiB: 0 len 1048576 same yes",
        "mailbox: 2",
    ), r
    assert (r.code, r.err) == (0, ""), r


def test_pointers_outside_memory_trap_the_caller(wisp, bad):
    r = run(wisp, bad, "badptr_child")
    calls = ["send data", "receive buffer", "receive info", "receive tags", "monitor ref",
             "spawn arg", "spawn out", "spawn_arg buffer", "register name", "whereis pid",
             "send_after timer", "request data", "send past the end"]
    assert r.out == "".join(f"{c}: DOWN TRAP\n" for c in calls) + "main alive\n", r
    assert r.code == 0, r
    assert "returned" not in r.out


def test_pointer_outside_memory_in_main_traps_main(wisp, bad):
    r = run(wisp, bad, "badptr_main")
    assert r.out == "before\n", r
    assert r.code == 134, r
    assert "wisp: trap:" in r.err, r


def test_spawning_a_bad_function_traps_the_child(wisp, bad):
    r = run(wisp, bad, "badfn")
    assert r.out == lines(
        "index 12345: spawn 0, TRAP(indirect call), exits 1 downs 1",
        "index 0: spawn 0, TRAP(indirect call), exits 1 downs 1",
        "wrong type: spawn 0, TRAP(indirect call), exits 1 downs 1",
        "parent alive",
    ), r
    assert r.code == 0, r


@pytest.mark.parametrize("tier", [None, "fast"])
def test_deep_recursion_traps_only_the_child(wisp, bad, tier):
    r = run(wisp, bad, "deep", tier=tier)
    shallow = 1
    for n in range(1, 11):
        shallow = (shallow * 3 + n) & 0xffffffff
    assert r.out == lines(
        f"shallow: {shallow}",
        *["deep child: DOWN TRAP(call stack exhausted)"] * 3,
        f"shallow again: {shallow}",
    ), r
    assert r.code == 0, r
