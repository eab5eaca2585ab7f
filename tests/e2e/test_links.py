"""Links, monitors, exit signals and trap_exit end to end, table-driven
against Erlang's documented semantics (erlang:link/1, erlang:monitor/2,
erlang:exit/2, process_flag(trap_exit, true)):

- a monitor delivers DOWN with the reason, whatever the reason, and never
  kills the monitoring process;
- a link delivers an exit signal with the reason: a process trapping exits
  gets it as an EXIT message; one not trapping ignores NORMAL and dies with
  any other reason;
- the untrappable kill (wisp_kill, Erlang's exit(Pid, kill)) ends even a
  trapping process with KILLED, but KILLED propagated through a link is an
  ordinary reason: a trapping process receives it as a message;
- linking or monitoring a dead process delivers NOPROC at once;
- unlink and demonitor take effect at once (demonitor also drops a DOWN
  already queued).

The guest is tests/guests/c/proc_links.c; its header describes the
observer / parent / child set-up of the table cases."""
import re

import pytest

ACTIONS = {            # how the child ends -> its exit reason
    "normal": "NORMAL",
    "exit0": "NORMAL",
    "exit7": "CODE 7",
    "trap": "TRAP(unreachable)",
    "kill": "KILLED",
    "signal5": "CODE 5",
}


def parent_sees(relation, trap, reason):
    """What the parent observes when the child ends with `reason` (Erlang)."""
    if relation == "monitor":
        return [f"parent: DOWN {reason}", "parent: end", "parent down: NORMAL"]
    if relation == "unlink":
        return ["parent: end", "parent down: NORMAL"]
    if trap:
        return [f"parent: EXIT {reason}", "parent: end", "parent down: NORMAL"]
    if reason == "NORMAL":
        return ["parent: end", "parent down: NORMAL"]
    return [f"parent down: {reason}"]


# The table spelled out for the cases that matter most, so that the rule
# above is itself checked against Erlang's documentation.
SPELLED_OUT = {
    ("exit7", "link", 0): ["parent down: CODE 7"],
    ("exit7", "link", 1): ["parent: EXIT CODE 7", "parent: end", "parent down: NORMAL"],
    ("normal", "link", 0): ["parent: end", "parent down: NORMAL"],
    ("normal", "link", 1): ["parent: EXIT NORMAL", "parent: end", "parent down: NORMAL"],
    ("kill", "link", 0): ["parent down: KILLED"],
    ("kill", "link", 1): ["parent: EXIT KILLED", "parent: end", "parent down: NORMAL"],
    ("trap", "monitor", 0): ["parent: DOWN TRAP(unreachable)", "parent: end", "parent down: NORMAL"],
    ("trap", "unlink", 0): ["parent: end", "parent down: NORMAL"],
}


def lines(ls):
    return "".join(line + "\n" for line in ls)


@pytest.fixture(scope="module")
def links(build_proc):
    return build_proc("proc_links.c")


def run(wisp, module, *args):
    return wisp("run", module, *args, timeout=60)


def kill_reports(err):
    """The first lines of stderr's crash reports, each of a kill (every kill
    is reported: tests/e2e/test_crash_reports.py); nothing else is there."""
    heads = [l for l in err.splitlines() if not l.startswith("    ")]
    for h in heads:
        assert re.fullmatch(r"wisp: crash report: process [0-9a-f]+ "
                            r"(was killed by [0-9a-f]+|killed itself)", h), err
    return heads


def test_spelled_out_cases_agree_with_the_rule():
    for (action, relation, trap), want in SPELLED_OUT.items():
        assert parent_sees(relation, trap, ACTIONS[action]) == want, (action, relation, trap)


@pytest.mark.parametrize("trap", [0, 1])
@pytest.mark.parametrize("relation", ["link", "monitor", "unlink"])
@pytest.mark.parametrize("action", list(ACTIONS))
def test_what_the_parent_observes(wisp, links, action, relation, trap):
    r = run(wisp, links, "table", action, relation, trap)
    reason = ACTIONS[action]
    assert r.out == lines([f"child: {reason}"] + parent_sees(relation, trap, reason)), r
    assert r.code == 0, r


@pytest.mark.parametrize("target", ["dead", "never"])
@pytest.mark.parametrize("trap", [0, 1])
def test_link_to_a_dead_process_delivers_noproc(wisp, links, target, trap):
    r = run(wisp, links, "link_dead", target, trap)
    if trap:
        want = ["parent: link rc 0", "parent: EXIT NOPROC", "parent: end", "parent down: NORMAL"]
    else:
        want = ["parent down: NOPROC"]
    assert r.out == lines(want), r
    assert (r.code, r.err) == (0, ""), r


def test_monitor_of_a_dead_process_delivers_down_noproc(wisp, links):
    r = run(wisp, links, "monitor_dead")
    assert r.out == lines([
        "monitor dead: rc 0, DOWN NOPROC",
        "monitor never existed: rc 0, DOWN NOPROC",
        "mailbox: 2",
    ]), r
    assert (r.code, r.err) == (0, ""), r


def test_demonitor_removes_the_monitor_and_a_queued_down(wisp, links):
    r = run(wisp, links, "demonitor")
    assert r.out == lines([
        "refs differ: yes",
        "second monitor: DOWN CODE 7",
        "demonitor with DOWN queued: 0",
        "its DOWN: 2",
        "demonitor again: 8",
        "demonitor unknown ref: 8",
        "demonitor live: 0",
        "removed monitor fires: 2",
        "mailbox: 2",
    ]), r
    assert (r.code, r.err) == (0, ""), r


def test_kill_cannot_be_trapped(wisp, links):
    r = run(wisp, links, "kill")
    assert r.out == lines([
        "kill: 0",
        "trapping process killed in receive: KILLED",
        "kill: 0",
        "trapping process killed in sleep: KILLED",
        "kill self: KILLED",
        "kill dead: 0",
        "kill never existed: 0",
        "kill 0: 0",
    ]), r
    assert r.code == 0, r
    heads = kill_reports(r.err)
    assert len(heads) == 3 and heads[2].endswith(" killed itself"), r


def test_exit_signals(wisp, links):
    r = run(wisp, links, "exit_signal")
    assert r.out == lines([
        "trap_exit: 0 1 1 0",
        "normal signal: 0",
        "non-trapping after NORMAL signal: 0 alive",
        "code signal: 0",
        "non-trapping after CODE 9 signal: CODE 9",
        "normal signal: 0",
        "trapping got: EXIT NORMAL",
        "code signal: 0",
        "trapping got: EXIT CODE 9",
        "trapping after both: 0 alive",
        "kill: 0",
        "trapping after kill: KILLED",
        "signal dead: 0",
        "signal never existed: 0",
        "mailbox: 2",
    ]), r
    # (The exit signals end nobody's own crash: only the kill is reported.)
    assert r.code == 0 and len(kill_reports(r.err)) == 1, r


@pytest.mark.parametrize("trap", [0, 1])
def test_links_are_bidirectional(wisp, links, trap):
    r = run(wisp, links, "bidirectional", trap)
    if trap:
        want = ["parent down: CODE 4", "child got: EXIT CODE 4", "child down: NORMAL"]
    else:
        want = ["parent down: CODE 4", "child down: CODE 4"]
    assert r.out == lines(want), r
    assert (r.code, r.err) == (0, ""), r


def test_a_trap_travels_along_a_chain_of_links(wisp, links):
    r = run(wisp, links, "chain")
    assert r.out == lines(["A: TRAP(unreachable)", "B: TRAP(unreachable)", "C: TRAP(unreachable)"]), r
    assert r.code == 0, r


@pytest.mark.parametrize("schedulers", [1, 2])
def test_signals_arriving_together_are_all_answered(wisp, links, schedulers):
    # A kill or exit signal and then a monitor/link request from the same
    # sender, found by the target in one batch: the request is still
    # answered, with the reason (the target finished its batch) or NOPROC
    # (it was dead already), never left without a DOWN/EXIT.
    r = wisp("run", "--schedulers", schedulers, links, "together", timeout=60)
    assert r.code == 0, r
    got = r.out.splitlines()
    assert [line.split(":")[0] for line in got] == [
        "kill then monitor", "kill then link", "signal then monitor", "signal then link"], r
    allowed = [{"DOWN KILLED", "DOWN NOPROC"}, {"EXIT KILLED", "EXIT NOPROC"},
               {"DOWN CODE 5", "DOWN NOPROC"}, {"EXIT CODE 5", "EXIT NOPROC"}]
    for line, ok in zip(got, allowed):
        assert line.split(": ", 1)[1] in ok, r


def test_an_exit_signal_to_oneself(wisp, links):
    # Erlang's exit(self(), Reason): a process not trapping exits ends even
    # with reason normal; one trapping exits gets the EXIT message.
    r = run(wisp, links, "self_signal")
    assert r.out == lines([
        "trap 0 code 0: down NORMAL",
        "trap 0 code 5: down CODE 5",
        "trap 1 code 0: EXIT NORMAL",
        "trap 1 code 0: continued",
        "trap 1 code 0: down NORMAL",
        "trap 1 code 5: EXIT CODE 5",
        "trap 1 code 5: continued",
        "trap 1 code 5: down NORMAL",
    ]), r
    assert (r.code, r.err) == (0, ""), r


MAIN_DIES_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wisp/guest.h>

static void trapper(const void *a, uint32_t l) { (void)a; (void)l; __builtin_trap(); }
static void coder(const void *a, uint32_t l) { (void)a; (void)l; exit(7); }
static void normal(const void *a, uint32_t l) { (void)a; (void)l; }
static void killer(const void *a, uint32_t l)
{
    wisp_pid_t m;
    memcpy(&m, a, sizeof m);
    (void)l;
    wisp_kill(m);
}
static void signaller(const void *a, uint32_t l)
{
    wisp_pid_t m;
    memcpy(&m, a, sizeof m);
    (void)l;
    wisp_exit_signal(m, 9);
}

int main(int argc, char **argv)
{
    wisp_pid_t me = wisp_self();
    const char *how = argc > 1 ? argv[1] : "";
    printf("start\n");
    fflush(stdout);
    if (!strcmp(how, "linked-trap"))
        wisp_spawn_link(trapper, NULL, 0);
    else if (!strcmp(how, "linked-code"))
        wisp_spawn_link(coder, NULL, 0);
    else if (!strcmp(how, "linked-normal"))
        wisp_spawn_link(normal, NULL, 0);
    else if (!strcmp(how, "killed"))
        wisp_spawn(killer, &me, sizeof me);
    else if (!strcmp(how, "signalled"))
        wisp_spawn(signaller, &me, sizeof me);
    wisp_sleep(1000000000);
    printf("survived\n");
    return 3;
}
"""


@pytest.mark.parametrize("how,status,out,err", [
    ("linked-trap", 134, "start\n", "trap"),
    ("linked-code", 7, "start\n", ""),
    ("linked-normal", 3, "start\nsurvived\n", ""),
    ("killed", 137, "start\n", "killed"),
    ("signalled", 9, "start\n", ""),
])
def test_the_main_process_ended_by_a_signal_sets_the_exit_status(wisp, build_proc, how, status,
                                                                out, err):
    r = run(wisp, build_proc(MAIN_DIES_C, name="maindies"), how)
    assert (r.code, r.out) == (status, out), r
    assert err in r.err, r
