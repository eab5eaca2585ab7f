"""Every host-side byte a process causes counts against its memory limit
(issue 12, item 4): a flooded mailbox, timers aimed at a process, names,
tables. Past the limit, what a process asks for itself fails; what others
push at it ends it with reason LIMIT; the host's memory stays bounded."""
import os
import re
import subprocess

import pytest

from conftest import WISP

GUEST = "host_limits.c"
LIMIT = 5   # WISP_EXIT_LIMIT
# A sanitizer's shadow memory and quarantine make RSS meaningless as a bound.
SANITIZED = os.environ.get("WISP_SANITIZE", "") != ""


def assert_small(rss_kib, what):
    if not SANITIZED:
        assert rss_kib < 120 * 1024, f"peak RSS {rss_kib} KiB {what}"


def test_a_flooded_mailbox_ends_its_owner_not_the_host(build_proc, shared_cache):
    m = build_proc(GUEST)
    p = subprocess.run([str(WISP), "run", "--tier", "fast", "--max-memory", "16M", str(m), "mailbox"],
                       capture_output=True, text=True, timeout=120,
                       env={"WISP_BACKGROUND_COMPILE": "0", "WISP_CACHE_DIR": str(shared_cache),
                            "PATH": "/usr/bin:/bin"})
    assert p.returncode == 0, p
    lines = p.stdout.splitlines()
    assert lines[0].startswith(f"sink: kind {LIMIT}: memory limit: 16777216 bytes"), p
    assert lines[1] == "sends answered: 300"       # sends never fail: dropped, as to the dead


def peak_rss_kib(args, cache):
    """Peak RSS of one wisp run, measured by /usr/bin/time-free means: a
    python wrapper process whose only child is wisp."""
    code = ("import resource,subprocess,sys;"
            "p=subprocess.run(sys.argv[1:],capture_output=True,text=True);"
            "print(p.returncode);print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss);"
            "sys.stdout.write(p.stdout)")
    import sys
    p = subprocess.run([sys.executable, "-c", code, str(WISP), *args], capture_output=True,
                       text=True, timeout=300,
                       env={"WISP_BACKGROUND_COMPILE": "0", "WISP_CACHE_DIR": str(cache),
                            "PATH": "/usr/bin:/bin"})
    rc, rss, *out = p.stdout.splitlines()
    return int(rc), int(rss), out


def test_the_host_stays_small_under_a_mailbox_flood(build_proc, shared_cache):
    rc, rss, out = peak_rss_kib(["run", "--tier", "fast", "--max-memory", "16M",
                                 str(build_proc(GUEST)), "mailbox"], shared_cache)
    assert rc == 0, out
    assert_small(rss, "for 300 MiB sent to a 16 MiB process")


def test_timers_aimed_at_a_process_are_its_memory(build_proc, shared_cache):
    rc, rss, out = peak_rss_kib(["run", "--tier", "fast", "--max-memory", "16M",
                                 str(build_proc(GUEST)), "timers"], shared_cache)
    assert rc == 0, out
    assert out[0].startswith(f"sink: kind {LIMIT}: memory limit"), out
    assert out[1] == "cancel after its end: 8", out          # WISP_ENOTFOUND
    assert_small(rss, "for 125 MiB of timers at a 16 MiB process")


def test_cancelled_timers_free_their_payload_at_once(build_proc, shared_cache):
    rc, rss, out = peak_rss_kib(["run", "--tier", "fast", "--max-memory", "16M",
                                 str(build_proc(GUEST)), "cancel"], shared_cache)
    assert rc == 0, out
    assert out == ["cancelled 4000"]
    assert_small(rss, "after 4000 cancelled 1 MiB timers")


def test_names_count_against_the_named_process(build_proc, shared_cache):
    rc, rss, out = peak_rss_kib(["run", "--tier", "fast", "--max-memory", "16M",
                                 str(build_proc(GUEST)), "names"], shared_cache)
    assert rc == 0, out
    assert out == ["register: 7 after some", "register again: 0"], out   # WISP_ENOMEM
    assert_small(rss, "with a 16 MiB process registering 2M names")


TABLE_WAT = """
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (table $t 1 funcref)
  (memory (export "memory") 1)
  (func (export "_start")
    ;; 2^24 - 1 more entries: 256 MiB of host memory for a 1 MiB process
    (if (i32.ne (table.grow $t (ref.null func) (i32.const 16777215)) (i32.const -1))
      (then (call $exit (i32.const 1))))
    ;; a small growth still fits
    (if (i32.ne (table.grow $t (ref.null func) (i32.const 100)) (i32.const 1))
      (then (call $exit (i32.const 2))))
    (call $exit (i32.const 0))))
"""


def test_table_growth_counts_against_the_memory_limit(wisp, build_wat):
    m = build_wat(TABLE_WAT)
    r = wisp("run", "--tier", "fast", "--max-memory", "1M", m)
    assert r.code == 0, r
    r = wisp("run", "--tier", "fast", m)     # no limit: the big growth works
    assert r.code == 1, r


def test_host_work_counts_against_the_cpu_limit(wisp, build_proc):
    """A loop whose work is done by the host (1 MiB sent to itself and
    received, forever) is stopped by --max-cpu like a loop in wasm."""
    r = wisp("run", "--tier", "fast", "--max-cpu", "20000000", build_proc(GUEST), "sendloop",
             timeout=60)
    assert r.code == 137, r
    assert "cpu limit" in r.err, r


def test_the_cpu_clock_a_process_reads_is_its_own(wisp, build_proc):
    """clock_gettime(CLOCK_PROCESS_CPUTIME_ID) in a guest is that process's
    CPU time (issue 12.8): a child spins 300 ms of its own clock, and the
    main process, which only waited, reads well under that (the host's
    process clock, which it read before, held the child's time too)."""
    r = wisp("run", build_proc(GUEST), "cpuclock", timeout=60)
    assert r.code == 0, r
    spin = re.search(r"^spinner cpu ms: (\d+) ", r.out, re.M)
    main = re.search(r"^main cpu ms: (\d+)$", r.out, re.M)
    assert spin and main, r
    assert int(spin.group(1)) >= 300, r
    assert int(main.group(1)) < 150, r
