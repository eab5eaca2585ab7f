"""A process that crashes with nobody linked to it or monitoring it is
reported on stderr (BEAM's error logger does the same); a crash someone
hears of is not; reports are rate-limited and the rest counted."""
import re

GUEST = r"""
#include <stdio.h>
#include <string.h>
#include <wisp/guest.h>

__attribute__((noinline)) static void boom(const void *a, uint32_t n)
{
	(void)a; (void)n;
	__builtin_trap();
}

static void hog(const void *a, uint32_t n)
{
	(void)a; (void)n;
	for (volatile unsigned long i = 0;; i++) {}
}

int main(int argc, char **argv)
{
	const char *c = argc > 1 ? argv[1] : "";
	uint64_t ref;
	if (!strcmp(c, "one"))
		wisp_spawn(boom, NULL, 0);
	else if (!strcmp(c, "many"))
		for (int i = 0; i < 50; i++)
			wisp_spawn(boom, NULL, 0);
	else if (!strcmp(c, "monitored"))
		wisp_spawn_monitor(boom, NULL, 0, &ref);
	else if (!strcmp(c, "linked")) {
		wisp_trap_exit(1);
		wisp_spawn_link(boom, NULL, 0);
	} else if (!strcmp(c, "limit")) {
		int32_t h;
		struct wisp_spawned out;
		wisp_caps_new(&h);
		wisp_caps_limit(h, WISP_LIMIT_CPU, 100000);
		wisp_spawn_with(h, (uint32_t)(uintptr_t)hog, NULL, 0, 0, &out);
	}
	wisp_sleep(300000000LL);
	printf("main done\n");
	return 0;
}
"""


def run(wisp, build_proc, case):
    r = wisp("run", build_proc(GUEST, "-O0", name="crashes"), case)
    assert (r.code, r.out) == (0, "main done\n"), r
    return r.err


def test_an_unwatched_crash_is_reported(wisp, build_proc):
    err = run(wisp, build_proc, "one")
    assert re.fullmatch(r"wisp: process [0-9a-f]+ trapped, nobody linked or monitoring: "
                        r"unreachable in boom\n", err), err


def test_a_limit_is_reported_too(wisp, build_proc):
    err = run(wisp, build_proc, "limit")
    assert re.fullmatch(r"wisp: process [0-9a-f]+ ended by a limit, nobody linked or "
                        r"monitoring: cpu limit\n", err), err


def test_a_crash_someone_hears_of_is_not(wisp, build_proc):
    assert run(wisp, build_proc, "monitored") == ""
    assert run(wisp, build_proc, "linked") == ""


def test_reports_are_rate_limited_and_the_rest_counted(wisp, build_proc):
    # 20 a second: the 50 crashes may straddle a second's boundary, so the
    # shown lines are 20 to 40; shown plus counted is always 50.
    lines = run(wisp, build_proc, "many").splitlines()
    shown = [l for l in lines if "trapped, nobody linked or monitoring: unreachable in boom" in l]
    counted = sum(int(n) for l in lines for n in re.findall(r"(\d+) more (?:crash reports )?not shown", l))
    assert 20 <= len(shown) <= 40, lines
    assert len(shown) + counted == 50, lines
