/*
 * proc_bad.c — bad input at the process ABI: invalid and stale pids, huge
 * messages, pointers outside memory (the caller traps), spawning a bad
 * function index, deep recursion in a child. argv[1] names the case.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wisp/guest.h>

#define NEVER_PID 0x7ffffffffffffff1ULL
#define BAD_PTR ((void *)0xfffff000u)

static void fail(const char *what, long v)
{
	printf("FAIL %s: %ld\n", what, v);
	exit(1);
}

#define CHECK(expr) do { int32_t rc_ = (expr); if (rc_ != WISP_OK) fail(#expr, rc_); } while (0)

/* "NORMAL", "CODE 7", "TRAP(<keyword or text>)", ... */
static void reason(const char *p, uint32_t len, char *out, size_t n)
{
	static const char *const known[] = {
		"unreachable", "call stack exhausted", "indirect call", "out of bounds",
	};
	struct wisp_exit_reason r;
	if (len < sizeof r) {
		snprintf(out, n, "SHORT(%u)", len);
		return;
	}
	memcpy(&r, p, sizeof r);
	char text[256];
	uint32_t tl = len - 8 < sizeof text - 1 ? len - 8 : sizeof text - 1;
	memcpy(text, p + 8, tl);
	text[tl] = 0;
	const char *kw = text;
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		if (strstr(text, known[i]))
			kw = known[i];
	static const char *const kinds[] = { "NORMAL", "CODE", "TRAP", "KILLED", "NOPROC" };
	const char *k = r.kind < 5 ? kinds[r.kind] : "?";
	if (r.kind == WISP_EXIT_CODE)
		snprintf(out, n, "CODE %d", r.code);
	else if (r.kind == WISP_EXIT_TRAP)
		snprintf(out, n, "TRAP(%s)", kw);
	else
		snprintf(out, n, "%s", k);
}

/* Prints the DOWN for ref; the trap text only if with_text. */
static void wait_down(const char *label, uint64_t ref, wisp_pid_t pid, int with_text)
{
	char buf[1024], why[300];
	struct wisp_msg_info info;
	CHECK(wisp_receive(&ref, 1, WISP_INFINITY, buf, sizeof buf, &info));
	reason(buf, info.len, why, sizeof why);
	if (!with_text && !strncmp(why, "TRAP(", 5))
		why[4] = 0;
	printf("%s: %s %s%s\n", label, info.kind == WISP_MSG_DOWN ? "DOWN" : "?", why,
	       info.from == pid ? "" : " (from someone else)");
}

static void quick(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
}

/* ---- invalid and stale pids ---- */

static void case_pids(void)
{
	uint64_t ref;
	wisp_pid_t dead = wisp_spawn_monitor(quick, NULL, 0, &ref);
	char buf[1024];
	struct wisp_msg_info info;
	CHECK(wisp_receive(&ref, 1, WISP_INFINITY, buf, sizeof buf, &info));
	wisp_pid_t pids[3] = { 0, NEVER_PID, dead };
	const char *names[3] = { "0", "never existed", "ended" };
	for (int i = 0; i < 3; i++)
		printf("pid %s: send %d, alive %d, kill %d, exit_signal %d, unlink %d\n", names[i],
		       wisp_send(pids[i], 1, "x", 1), wisp_alive(pids[i]), wisp_kill(pids[i]),
		       wisp_exit_signal(pids[i], 3), wisp_unlink(pids[i]));
	printf("alive self: %d\n", wisp_alive(wisp_self()));
	printf("self is not 0: %s\n", wisp_self() ? "yes" : "no");
	wisp_trap_exit(1);
	for (int i = 1; i < 3; i++) {
		int32_t rc = wisp_link(pids[i]);
		int32_t rrc = wisp_receive(NULL, 0, 2000000000, buf, sizeof buf, &info);
		char why[300] = "";
		if (rrc == WISP_OK)
			reason(buf, info.len, why, sizeof why);
		printf("link %s: %d, then %s %s%s\n", names[i], rc,
		       rrc != WISP_OK ? "nothing" : info.kind == WISP_MSG_EXIT ? "EXIT" : "?", why,
		       rrc == WISP_OK && info.from != pids[i] ? " (from someone else)" : "");
	}
	printf("mailbox: %d\n", wisp_receive(NULL, 0, WISP_NOWAIT, buf, sizeof buf, &info));
	printf("abi version: %d\n", wisp_abi_version());
}

/* ---- a stale pid must not reach whoever took its place ----
 * Process slots are reused with a new generation; signals and messages for
 * an ended process must not reach the next occupant of its slot. */

struct stale_arg {
	wisp_pid_t main;
};

/* Waits 300 ms for anything; reports how many messages it got. */
static void bystander(const void *arg, uint32_t len)
{
	struct stale_arg a;
	if (len != sizeof a)
		__builtin_trap();
	memcpy(&a, arg, sizeof a);
	wisp_pid_t me = wisp_self();
	wisp_send(a.main, 1, &me, sizeof me);
	uint32_t got = 0;
	char buf[1024];
	struct wisp_msg_info info;
	while (wisp_receive(NULL, 0, 300000000, buf, sizeof buf, &info) == WISP_OK)
		got++;
	wisp_send(a.main, 2, &got, sizeof got);
}

static void case_stale(void)
{
	enum { N = 200 };
	uint32_t stale_n = 0, normal = 0, disturbed = 0;
	wisp_pid_t stale[N];
	char buf[1024];
	struct wisp_msg_info info;
	for (uint32_t i = 0; i < N; i++) {
		uint64_t ref;
		stale[i] = wisp_spawn_monitor(quick, NULL, 0, &ref);
		CHECK(wisp_receive(&ref, 1, WISP_INFINITY, buf, sizeof buf, &info));
		stale_n++;
	}
	/* New processes, likely in the old slots. */
	struct stale_arg a = { wisp_self() };
	uint64_t refs[N];
	for (uint32_t i = 0; i < N; i++)
		if (!wisp_spawn_monitor(bystander, &a, sizeof a, &refs[i]))
			fail("spawn", i);
	for (uint32_t i = 0; i < N; i++) {
		uint64_t one = 1;
		CHECK(wisp_receive(&one, 1, WISP_INFINITY, buf, sizeof buf, &info));
	}
	wisp_trap_exit(1);
	uint32_t alive = 0, noproc_exits = 0, noproc_downs = 0;
	for (uint32_t i = 0; i < N; i++) {
		alive += wisp_alive(stale[i]);
		wisp_send(stale[i], 9, "x", 1);
		wisp_exit_signal(stale[i], 5);
		wisp_kill(stale[i]);
		uint64_t ref;
		wisp_link(stale[i]);
		CHECK(wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info));
		noproc_exits += info.kind == WISP_MSG_EXIT && ((struct wisp_exit_reason *)buf)->kind == WISP_EXIT_NOPROC;
		CHECK(wisp_monitor(stale[i], &ref));
		CHECK(wisp_receive(&ref, 1, WISP_INFINITY, buf, sizeof buf, &info));
		noproc_downs += ((struct wisp_exit_reason *)buf)->kind == WISP_EXIT_NOPROC;
	}
	for (uint32_t i = 0; i < N; i++) {
		uint32_t got;
		uint64_t two = 2;
		CHECK(wisp_receive(&two, 1, WISP_INFINITY, &got, sizeof got, &info));
		disturbed += got != 0;
		CHECK(wisp_receive(&refs[i], 1, WISP_INFINITY, buf, sizeof buf, &info));
		normal += ((struct wisp_exit_reason *)buf)->kind == WISP_EXIT_NORMAL;
	}
	printf("stale pids: %u, alive %u, link NOPROC %u, monitor NOPROC %u\n", stale_n, alive,
	       noproc_exits, noproc_downs);
	printf("bystanders: %u ended NORMAL, %u got something\n", normal, disturbed);
}

/* ---- bad arguments that are errors, not traps ---- */

static void case_args(void)
{
	struct wisp_spawned out;
	printf("spawn with unknown flags: %d\n",
	       wisp_spawn_raw((uint32_t)(uintptr_t)quick, NULL, 0, 4, &out));
	uint32_t n = 5000;
	uint64_t *tags = calloc(n, sizeof *tags);
	struct wisp_msg_info info;
	printf("receive with 5000 tags: %d\n", wisp_receive(tags, n, WISP_NOWAIT, NULL, 0, &info));
	printf("receive with 4096 tags: %d\n", wisp_receive(tags, 4096, WISP_NOWAIT, NULL, 0, &info));
	int32_t before = wisp_trap_exit(7);
	printf("trap_exit 7: %d then %d\n", before, wisp_trap_exit(0));
	free(tags);
}

/* ---- huge messages ---- */

static void case_huge(void)
{
	char small[8] = "x";
	wisp_pid_t me = wisp_self();
	uint32_t huge = 1u << 30;
	uint64_t timer;
	struct wisp_msg_info info;
	printf("send 1 GiB: %d\n", wisp_send(me, 1, small, huge));
	printf("send 4 GiB-1: %d\n", wisp_send(me, 1, small, 0xffffffffu));
	printf("request 1 GiB: %d\n",
	       wisp_request(me, 1, small, huge, 1000000000, small, sizeof small, &info));
	printf("send_after 1 GiB: %d\n", wisp_send_after(me, 1, small, huge, 1000000, &timer));
	struct wisp_spawned out;
	printf("spawn with a 1 GiB argument: %d\n",
	       wisp_spawn_raw((uint32_t)(uintptr_t)quick, small, huge, 0, &out));
	/* 1 MiB is fine. */
	uint32_t n = 1u << 20;
	char *big = malloc(n), *back = malloc(n);
	for (uint32_t i = 0; i < n; i++)
		big[i] = (char)(i * 7);
	printf("send 1 MiB: %d\n", wisp_send(me, 2, big, n));
	int32_t rc = wisp_receive(NULL, 0, WISP_NOWAIT, back, n, &info);
	printf("receive 1 MiB: %d len %u same %s\n", rc, info.len, memcmp(big, back, n) ? "no" : "yes");
	printf("mailbox: %d\n", wisp_receive(NULL, 0, WISP_NOWAIT, NULL, 0, &info));
}

/* ---- pointers outside memory ---- */

/* Each child makes one call with a bad pointer and must trap. */
static void bad_call(const void *arg, uint32_t len)
{
	uint32_t which;
	if (len != sizeof which)
		__builtin_trap();
	memcpy(&which, arg, sizeof which);
	wisp_pid_t me = wisp_self();
	struct wisp_msg_info info;
	char buf[16];
	wisp_send(me, 1, "queued", 6);     /* so receive has something to copy */
	switch (which) {
	case 0: wisp_send(me, 1, BAD_PTR, 0x2000); break;
	case 1: wisp_receive(NULL, 0, WISP_NOWAIT, BAD_PTR, 0x2000, &info); break;
	case 2: wisp_receive(NULL, 0, WISP_NOWAIT, buf, sizeof buf, BAD_PTR); break;
	case 3: wisp_receive(BAD_PTR, 0x1000, WISP_NOWAIT, buf, sizeof buf, &info); break;
	case 4: wisp_monitor(me, BAD_PTR); break;
	case 5: {
		struct wisp_spawned out;
		wisp_spawn_raw((uint32_t)(uintptr_t)quick, BAD_PTR, 0x2000, 0, &out);
		break;
	}
	case 6: wisp_spawn_raw((uint32_t)(uintptr_t)quick, buf, 1, 0, BAD_PTR); break;
	case 7: wisp_spawn_arg(BAD_PTR, 0x2000); break;
	case 8: wisp_register(BAD_PTR, 100, me); break;
	case 9:
		wisp_register("x", 1, me);     /* so whereis has a pid to store */
		wisp_whereis("x", 1, BAD_PTR);
		break;
	case 10: wisp_send_after(me, 1, buf, 1, 1000, BAD_PTR); break;
	case 11: wisp_request(me, 1, BAD_PTR, 0x2000, 1000, buf, sizeof buf, &info); break;
	case 12: {
		/* 16 bytes that straddle the end of memory by 8. */
		uintptr_t end = __builtin_wasm_memory_size(0) * 65536;
		wisp_send(me, 1, (const void *)(end - 8), 16);
		break;
	}
	}
	printf("call %u returned\n", which);
	fflush(stdout);
}

static const char *const bad_names[] = {
	"send data", "receive buffer", "receive info", "receive tags", "monitor ref",
	"spawn arg", "spawn out", "spawn_arg buffer", "register name", "whereis pid",
	"send_after timer", "request data", "send past the end",
};

static void case_badptr_child(void)
{
	for (uint32_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
		uint64_t ref;
		wisp_pid_t c = wisp_spawn_monitor(bad_call, &i, sizeof i, &ref);
		if (!c)
			fail("spawn", i);
		wait_down(bad_names[i], ref, c, 0);
	}
	printf("main alive\n");
}

static void case_badptr_main(void)
{
	printf("before\n");
	fflush(stdout);
	wisp_send(wisp_self(), 1, BAD_PTR, 0x2000);
	printf("after\n");
}

/* ---- spawning a bad function index ---- */

static int wrong_type(void)
{
	return 1;
}

static void case_badfn(void)
{
	wisp_trap_exit(1);
	uint32_t fns[3] = { 12345, 0, (uint32_t)(uintptr_t)wrong_type };
	const char *names[3] = { "index 12345", "index 0", "wrong type" };
	for (int i = 0; i < 3; i++) {
		struct wisp_spawned out = { 0, 0 };
		int32_t rc = wisp_spawn_raw(fns[i], "arg", 3, WISP_SPAWN_LINK | WISP_SPAWN_MONITOR, &out);
		char buf[1024], why[300];
		struct wisp_msg_info info;
		/* Both the EXIT (link) and the DOWN (monitor) arrive. */
		int exits = 0, downs = 0;
		printf("%s: spawn %d", names[i], rc);
		for (int k = 0; k < 2 && rc == WISP_OK; k++) {
			CHECK(wisp_receive(NULL, 0, 5000000000LL, buf, sizeof buf, &info));
			reason(buf, info.len, why, sizeof why);
			if (info.from != out.pid)
				printf(", from someone else");
			if (info.kind == WISP_MSG_EXIT)
				exits++;
			if (info.kind == WISP_MSG_DOWN && info.tag == out.monitor)
				downs++;
			if (k == 0)
				printf(", %s", why);
		}
		printf(", exits %d downs %d\n", exits, downs);
	}
	printf("parent alive\n");
}

/* ---- deep recursion ---- */

static uint32_t (*volatile recurse_p)(uint32_t);

static uint32_t recurse(uint32_t n)
{
	if (n == 0)
		return 1;
	return recurse_p(n - 1) * 3 + n;
}

static void deep(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	recurse_p = recurse;
	printf("%u\n", recurse_p(4000000000u));
}

static void case_deep(void)
{
	uint64_t ref;
	recurse_p = recurse;
	printf("shallow: %u\n", recurse_p(10));
	for (int i = 0; i < 3; i++) {
		wisp_pid_t c = wisp_spawn_monitor(deep, NULL, 0, &ref);
		wait_down("deep child", ref, c, 1);
	}
	printf("shallow again: %u\n", recurse_p(10));
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	const char *c = argv[1];
	if (!strcmp(c, "pids"))
		case_pids();
	else if (!strcmp(c, "stale"))
		case_stale();
	else if (!strcmp(c, "args"))
		case_args();
	else if (!strcmp(c, "huge"))
		case_huge();
	else if (!strcmp(c, "badptr_child"))
		case_badptr_child();
	else if (!strcmp(c, "badptr_main"))
		case_badptr_main();
	else if (!strcmp(c, "badfn"))
		case_badfn();
	else if (!strcmp(c, "deep"))
		case_deep();
	else
		return 2;
	return 0;
}
