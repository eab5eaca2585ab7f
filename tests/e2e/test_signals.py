"""SIGTERM and SIGINT stop wisp cleanly (issue 12, item 9): the main process
gets an exit signal with reason SHUTDOWN (a process trapping exits can
finish its work), everything stops, and wisp exits 143 or 130."""
import os
import select
import signal
import subprocess
import time

import pytest

from conftest import WISP

GUEST = "shutdown.c"


def start(build_proc, cache, mode, *opts):
    p = subprocess.Popen([str(WISP), "run", "--tier", "fast", *opts, str(build_proc(GUEST)), mode],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={"WISP_BACKGROUND_COMPILE": "0", "WISP_CACHE_DIR": str(cache),
                              "PATH": "/usr/bin:/bin"})
    assert p.stdout.readline() == "up\n"
    return p


@pytest.mark.parametrize("sig,code,name", [(signal.SIGTERM, 143, "SIGTERM"),
                                           (signal.SIGINT, 130, "SIGINT")])
def test_a_signal_stops_the_run(build_proc, shared_cache, sig, code, name):
    p = start(build_proc, shared_cache, "plain")
    p.send_signal(sig)
    out, err = p.communicate(timeout=20)
    assert p.returncode == code, (out, err)
    assert f"wisp: stopped by {name}" in err


def test_a_trapping_main_hears_of_the_shutdown(build_proc, shared_cache):
    p = start(build_proc, shared_cache, "trap")
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=20)
    assert out == f"shutdown: kind 6 code {int(signal.SIGTERM)}: shutdown (signal 15)\n", (out, err)
    assert p.returncode == 143, (out, err)


def test_a_second_signal_stops_at_once(build_proc, shared_cache):
    # A grace period far longer than the test may take: only the second
    # signal can end it in time.
    p = start(build_proc, shared_cache, "stubborn", "--shutdown-grace", "3600")
    p.send_signal(signal.SIGTERM)
    assert p.stdout.readline().startswith("shutdown: kind 6")
    assert p.poll() is None
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 143, (out, err)


def test_a_stubborn_main_is_stopped_after_the_grace_period(build_proc, shared_cache):
    p = start(build_proc, shared_cache, "stubborn", "--shutdown-grace", "1")
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    took = time.monotonic() - t0
    assert p.returncode == 130, (out, err)
    assert out.startswith("shutdown: kind 6"), out
    assert took >= 1, f"stopped after {took:.1f} s, before the grace period"


def test_bad_shutdown_grace_and_stack_size_are_usage_errors(wisp, build_proc):
    m = build_proc(GUEST)
    for opts in (["--shutdown-grace", "0"], ["--shutdown-grace", "x"],
                 ["--stack-size", "64K"], ["--stack-size", "1G"]):
        r = wisp("run", *opts, m)
        assert r.code == 2, (opts, r)


def test_processes_reading_stdin_do_not_hold_their_schedulers(build_proc, shared_cache):
    """Two processes blocked reading a silent stdin, on two schedulers: the
    main process's timers still fire (issue 12, item 9: they froze)."""
    p = subprocess.Popen([str(WISP), "run", "--tier", "fast", "--schedulers", "2",
                          str(build_proc("stdin_readers.c"))],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env={"WISP_BACKGROUND_COMPILE": "0",
                                         "WISP_CACHE_DIR": str(shared_cache), "PATH": "/usr/bin:/bin"})
    try:
        ready, _, _ = select.select([p.stdout], [], [], 30)
        assert ready, "the main process's timers never fired while others read stdin"
        assert p.stdout.readline() == "ticks ok\n"
        p.stdin.write("hello\n")
        p.stdin.flush()
        out, err = p.communicate(timeout=30)
    finally:
        p.kill()
    assert out == "a reader got: hello\n", (out, err)
    assert p.returncode == 0, err
