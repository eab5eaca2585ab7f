"""Hibernation (issue 11): a waiting process gives its stack and memory back
and wakes on every kind of event with its state intact."""
import os

GUEST = "hibernate.c"
SANITIZED = os.environ.get("WISP_SANITIZE", "") != ""


def run(wisp, build_proc, *args, opts=("--hibernate-after", "50ms"), timeout=120):
    # -O0: clang keeps the name section, so traps are named
    return wisp("run", "--tier", "fast", *opts, build_proc(GUEST, "-O0"), *args, timeout=timeout)


def test_hibernated_processes_wake_on_each_event_intact(wisp, build_proc):
    r = run(wisp, build_proc, "events")
    assert r.code == 0, r
    assert r.out.splitlines() == ["message ok", "timer ok", "exit signal ok", "sleep ok",
                                  "auto receive ok"], r


def test_events_without_hibernation_too(wisp, build_proc):
    # The same program with automatic hibernation off: explicit
    # wisp_hibernate still hibernates; the rest just waits.
    r = run(wisp, build_proc, "events", opts=("--hibernate-after", "0"))
    assert r.code == 0, r
    assert r.out.splitlines() == ["message ok", "timer ok", "exit signal ok", "sleep ok",
                                  "auto receive ok"], r


def test_ten_thousand_processes_hibernate_and_wake_in_a_loop(wisp, build_proc):
    n, rounds = (2000, 3) if SANITIZED and os.environ.get("WISP_SANITIZE") == "thread" else (10000, 5)
    r = run(wisp, build_proc, "loop", str(n), str(rounds), timeout=600)
    assert r.code == 0, r
    assert r.out.strip() == f"loop: {n} processes, {rounds} rounds, 0 corrupt", r


def test_a_trap_right_after_waking_names_its_function(wisp, build_proc):
    r = run(wisp, build_proc, "trap")
    assert r.code == 0, r
    assert r.out.strip() == "trap after wake: unreachable in after_waking_breaks", r


def test_bad_hibernate_after_is_a_usage_error(wisp, build_proc):
    for v in ("x", "-1s", "5parsecs"):
        r = wisp("run", "--hibernate-after", v, build_proc(GUEST), "events")
        assert r.code == 2, (v, r)


def test_each_process_starts_from_the_image_and_keeps_its_own_writes(wisp, build_proc):
    r = run(wisp, build_proc, "cow")
    assert r.code == 0, r
    assert r.out.splitlines() == [
        "before initial, during initial, while frozen initial, after initial",
        'writer: counter 99, text "written by the writer", zeroed written, pages +2',
        'main: counter 7, text "initial image"',
        "limited: first grow ok, second refused",
    ], r


def test_a_process_hibernated_inside_a_wasi_read_gets_its_data(wisp, build_proc):
    """A WASI read parks holding pointers into the reader's memory: the
    reader hibernates there, and its memory must keep its address (only a
    park that holds none, like receive, may wake in another pool slot).
    The data written meanwhile landed in the slot the reader had left."""
    r = run(wisp, build_proc, "parked_io",
            opts=("--hibernate-after", "50ms", "--allow-listen", "127.0.0.1:*",
                  "--allow-connect", "127.0.0.1:*"))
    assert r.code == 0, r
    assert r.out.strip() == "parked read ok", r


def test_a_hibernated_selective_receive_keeps_its_tags(wisp, build_proc):
    """A receive's tags lived in the receiver's memory and were read in
    place after waking, from the slot it had left, which other processes
    had taken and written (the 30-minute hibernating soak lost a count:
    its main process took another message for the one it waited for)."""
    r = run(wisp, build_proc, "selective")
    assert r.code == 0, r
    assert r.out.strip() == "selective receive got tag 77", r
