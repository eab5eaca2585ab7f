/*
 * upgrade_attack.c — a hostile wisp_code_change (hot code reload, issue
 * 14): the upgrade entry does what an upgrade entry should not, and the
 * host must survive it, roll back or go on cleanly, and leave nothing
 * behind. Built with -DGUEST_VERSION=N (the versions differ only in that
 * number, so their bytes differ); what wisp_code_change does is chosen by
 * the state it is handed, so one build serves every attack.
 *
 * main MODE V2 [V3]: a worker (version 1) waits for the state; main loads
 * V2 (the next version), sends the worker its state, and the worker calls
 * wisp_code_upgrade with it. The worker says
 *   "rolled back RC WHY"   wisp_code_upgrade returned (the old code goes on)
 *   "moved VSN"            it goes on in the new version's function
 * then main asks it which version it runs ("worker on VSN"), ends it, and
 * says "mine VSN current VSN" and "end". MODE is what the new version's
 * wisp_code_change does before it returns the function to go on in:
 *   ok        nothing
 *   nested    loads V3 and upgrades again (to V3) from inside itself
 *   load      loads V3 (and goes on in V2)
 *   spawn     spawns 20 processes that say "child VSN" and end
 *   recv      waits 50 ms for a message, then goes on
 *   sleepkill waits for ever; main kills the worker meanwhile, then
 *             loads V3 ("load3 RC") and waits for a line on stdin (so
 *             that the test can look at what is mapped)
 *   exit      calls proc_exit(3)
 *   grow      grows its memory by 1 GiB (past the worker's 64 MiB limit)
 *   trap      reads the state, then traps
 *   min, max  returns INT32_MIN, INT32_MAX
 *   self      calls wisp_code_upgrade again (it runs the current version)
 *   hibernate hibernates until a message it sent itself (after 30 ms)
 *             comes, then goes on
 *   migrate   calls wisp_node.migrate (no node: refused), then goes on
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wisp/guest.h>

#ifndef GUEST_VERSION
#define GUEST_VERSION 1
#endif

enum { TAG_STATE = 1, TAG_VSN = 2, TAG_BACK = 3 };

struct state {
	char mode[16];
	char path[200];
	wisp_pid_t main;
};

static struct state st;

static int32_t load(const char *path, uint32_t *vsn)
{
	uint32_t len = 0;
	void *bytes = wisp_read_file(path, &len);
	int32_t rc = bytes ? wisp_code_load(bytes, len, vsn) : -1;
	free(bytes);
	return rc;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char line[400];
	__builtin_va_list ap;
	__builtin_va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line, fmt, ap);
	__builtin_va_end(ap);
	if (n > (int)sizeof line - 1)
		n = (int)sizeof line - 1;
	line[n++] = '\n';
	fwrite(line, 1, (size_t)n, stdout);
	fflush(stdout);
}

/* The worker's loop, in whichever version it runs: answer "which version". */
static void serve(void)
{
	for (;;) {
		struct wisp_msg_info info;
		char buf[sizeof st];
		if (wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info) != WISP_OK ||
		    info.kind != WISP_MSG_DATA)
			continue;
		if (info.tag == TAG_VSN) {
			uint32_t v = (uint32_t)wisp_code_version(WISP_CODE_MINE) * 100 + GUEST_VERSION;
			wisp_send(info.from, info.ref, &v, sizeof v);
		}
	}
}

static void moved(void)
{
	say("moved %d", wisp_code_version(WISP_CODE_MINE));
	wisp_send(st.main, TAG_BACK, "", 0);
	serve();
}

static void child(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	say("child %d", wisp_code_version(WISP_CODE_MINE));
}

static bool is(const char *mode)
{
	return strcmp(st.mode, mode) == 0;
}

__attribute__((export_name("wisp_code_change")))
int32_t wisp_code_change(uint32_t old_vsn, uint32_t len)
{
	(void)old_vsn;
	if (len != sizeof st || wisp_spawn_arg(&st, sizeof st) != sizeof st)
		return -1;
	if (is("nested")) {
		uint32_t vsn = 0;
		int32_t rc = load(st.path, &vsn);
		say("nested load %d %u", rc, vsn);
		struct state again = st;
		strcpy(again.mode, "ok");
		char why[200] = "";
		rc = wisp_code_upgrade(&again, sizeof again, why, sizeof why);
		say("nested upgrade %d %s", rc, why);
	} else if (is("load")) {
		uint32_t vsn = 0;
		say("inner load %d", load(st.path, &vsn));
	} else if (is("spawn")) {
		for (int i = 0; i < 20; i++)
			wisp_spawn(child, "", 0);
	} else if (is("recv")) {
		struct wisp_msg_info info;
		char b[8];
		wisp_receive(NULL, 0, 50000000, b, sizeof b, &info);
	} else if (is("sleepkill")) {
		uint64_t never = 77;
		struct wisp_msg_info info;
		char b[8];
		wisp_send(st.main, TAG_BACK, "", 0);
		wisp_receive(&never, 1, WISP_INFINITY, b, sizeof b, &info);
	} else if (is("exit")) {
		exit(3);
	} else if (is("grow")) {
		say("grow %ld", (long)__builtin_wasm_memory_grow(0, 16384));
		return -2;
	} else if (is("trap")) {
		if (st.path[0] == 0)
			__builtin_trap();
	} else if (is("min")) {
		return INT32_MIN;
	} else if (is("max")) {
		return INT32_MAX;
	} else if (is("self")) {
		char why[200] = "";
		int32_t rc = wisp_code_upgrade(&st, sizeof st, why, sizeof why);
		say("inner upgrade %d %s", rc, why);
	} else if (is("hibernate")) {
		uint64_t timer;
		wisp_send_after(wisp_self(), 9, "", 0, 30000000, &timer);
		wisp_hibernate();
	} else if (is("migrate")) {
		say("inner migrate %d",
		    wisp_node_migrate_raw("x@y", 3, (uint32_t)(uintptr_t)child, "", 0));
	}
	return WISP_CODE_RESUME_WITH(moved);
}

static void worker(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	struct wisp_msg_info info;
	if (wisp_receive(NULL, 0, WISP_INFINITY, &st, sizeof st, &info) != WISP_OK)
		return;
	char why[200] = "";
	int32_t rc = wisp_code_upgrade(&st, sizeof st, why, sizeof why);
	say("rolled back %d %s", rc, why);
	wisp_send(st.main, TAG_BACK, "", 0);
	serve();
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	memset(&st, 0, sizeof st);
	snprintf(st.mode, sizeof st.mode, "%s", argv[1]);
	if (argc > 3)
		snprintf(st.path, sizeof st.path, "%s", argv[3]);
	st.main = wisp_self();
	int32_t h;
	struct wisp_spawned w;
	if (wisp_caps_new(&h) != WISP_OK || wisp_caps_limit(h, WISP_LIMIT_MEMORY, 64u << 20) != WISP_OK ||
	    wisp_spawn_with(h, (uint32_t)(uintptr_t)worker, "", 0, WISP_SPAWN_MONITOR, &w) != WISP_OK)
		return 2;
	uint32_t vsn = 0;
	say("load %d", load(argv[2], &vsn));
	wisp_send(w.pid, TAG_STATE, &st, sizeof st);
	struct wisp_msg_info info;
	uint64_t tags[2] = { TAG_BACK, w.monitor };
	char b[300];
	if (wisp_receive(tags, 2, WISP_INFINITY, b, sizeof b, &info) != WISP_OK)
		return 3;
	if (is("sleepkill")) {
		wisp_sleep(20000000);
		wisp_kill(w.pid);
		uint64_t mon = w.monitor;
		if (wisp_receive(&mon, 1, WISP_INFINITY, b, sizeof b, &info) != WISP_OK)
			return 3;
	}
	if (info.tag == TAG_BACK) {
		uint32_t v = 0;
		int32_t rc = wisp_request(w.pid, TAG_VSN, "", 0, 10000000000LL, &v, sizeof v, &info);
		say("worker on %d %u", rc, v);
		wisp_kill(w.pid);
	} else {
		struct wisp_exit_reason *r = (struct wisp_exit_reason *)b;
		b[info.len < sizeof b ? info.len : sizeof b - 1] = '\0';
		say("worker down %u %s", r->kind, b + 8);
	}
	if (is("sleepkill") && argc > 3) {
		uint32_t v3 = 0;
		char line[8];
		say("load3 %d", load(argv[3], &v3));
		fgets(line, sizeof line, stdin);
	}
	wisp_sleep(50000000);
	say("mine %d current %d", wisp_code_version(WISP_CODE_MINE),
	    wisp_code_version(WISP_CODE_CURRENT));
	say("end");
	return 0;
}
