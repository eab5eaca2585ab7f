/*
 * proc_links.c — links, monitors, exit signals and trap_exit, checked
 * against Erlang's documented semantics.
 *
 * "table ACTION RELATION TRAP": main (the observer) spawns a parent P with a
 * monitor; P sets trap_exit(TRAP) and spawns a child C that it is linked to
 * (RELATION link), monitors (monitor), or was linked to and unlinked
 * (unlink). Main monitors C too and makes it end by ACTION:
 *   normal  C returns                 -> NORMAL
 *   exit0   C calls exit(0)           -> NORMAL
 *   exit7   C calls exit(7)           -> CODE 7
 *   trap    C traps (unreachable)     -> TRAP
 *   kill    main calls wisp_kill(C)   -> KILLED
 *   signal5 main calls wisp_exit_signal(C, 5) -> CODE 5
 * Once C's DOWN has reached main, main asks P for its report: P waits
 * 100 ms, then reports every message in its mailbox and "end". Main prints
 *   child: <reason>            C's DOWN as main saw it
 *   parent: <message>          each message P found (EXIT/DOWN + reason)
 *   parent: end                P survived and answered
 *   parent down: <reason>      P's own DOWN
 * Other cases are described where they are.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wisp/guest.h>

enum { T_PID = 1, T_GO, T_QUERY, T_REPORT, T_END, T_STOP, T_DIE, T_PING };

static void fail(const char *what, long v)
{
	printf("FAIL %s: %ld\n", what, v);
	exit(1);
}

#define CHECK(expr) do { int32_t rc_ = (expr); if (rc_ != WISP_OK) fail(#expr, rc_); } while (0)

/* "NORMAL", "CODE 7", "TRAP(unreachable)", "KILLED", "NOPROC". */
static void reason(const char *p, uint32_t len, char *out, size_t n)
{
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
	switch (r.kind) {
	case WISP_EXIT_NORMAL: snprintf(out, n, "NORMAL"); break;
	case WISP_EXIT_CODE: snprintf(out, n, "CODE %d", r.code); break;
	case WISP_EXIT_KILLED: snprintf(out, n, "KILLED"); break;
	case WISP_EXIT_NOPROC: snprintf(out, n, "NOPROC"); break;
	case WISP_EXIT_TRAP:
		snprintf(out, n, "TRAP(%s)", strstr(text, "unreachable") ? "unreachable" : text);
		break;
	default: snprintf(out, n, "KIND %u", r.kind);
	}
}

/* One line for an EXIT/DOWN/DATA message; flags a wrong sender or ref. */
static void describe(const struct wisp_msg_info *info, const char *buf, wisp_pid_t from,
                     uint64_t ref, char *out, size_t n)
{
	char why[300];
	const char *kind = info->kind == WISP_MSG_EXIT ? "EXIT" : info->kind == WISP_MSG_DOWN ? "DOWN" : "DATA";
	if (info->kind == WISP_MSG_DATA)
		snprintf(why, sizeof why, "tag %llu", (unsigned long long)info->tag);
	else
		reason(buf, info->len, why, sizeof why);
	snprintf(out, n, "%s %s%s%s", kind, why, info->from == from ? "" : " (from someone else)",
	         info->kind == WISP_MSG_DOWN && info->tag != ref ? " (wrong ref)" : "");
}

static void report(wisp_pid_t to, const char *line)
{
	wisp_send(to, T_REPORT, line, (uint32_t)strlen(line));
}

static void recv_tag(uint64_t tag, void *buf, uint32_t len, struct wisp_msg_info *info)
{
	CHECK(wisp_receive(&tag, 1, WISP_INFINITY, buf, len, info));
}

/* ---- the table ---- */

struct case_arg {
	wisp_pid_t main;
	char action[8], relation[8];
	int32_t trap;
};

static void child(const void *arg, uint32_t len)
{
	struct case_arg a;
	memcpy(&a, arg, len < sizeof a ? len : sizeof a);
	char buf[8];
	struct wisp_msg_info info;
	recv_tag(T_GO, buf, sizeof buf, &info);
	if (!strcmp(a.action, "exit0"))
		exit(0);
	if (!strcmp(a.action, "exit7"))
		exit(7);
	if (!strcmp(a.action, "trap"))
		__builtin_trap();
	/* normal: return */
}

/* After main's query: wait 100 ms for any signal still on its way, then
 * report the whole mailbox and "end". */
static void report_mailbox(wisp_pid_t main, wisp_pid_t from, uint64_t ref)
{
	char buf[1024], line[400];
	struct wisp_msg_info info;
	recv_tag(T_QUERY, buf, sizeof buf, &info);
	wisp_sleep(100000000);
	while (wisp_receive(NULL, 0, WISP_NOWAIT, buf, sizeof buf, &info) == WISP_OK) {
		describe(&info, buf, from, ref, line, sizeof line);
		report(main, line);
	}
	wisp_send(main, T_END, NULL, 0);
}

static void parent(const void *arg, uint32_t len)
{
	struct case_arg a;
	if (len != sizeof a)
		__builtin_trap();
	memcpy(&a, arg, sizeof a);
	if (wisp_trap_exit(a.trap) != 0)
		report(a.main, "trap_exit was on");
	uint64_t ref = 0;
	wisp_pid_t c;
	if (!strcmp(a.relation, "monitor")) {
		c = wisp_spawn_monitor(child, &a, sizeof a, &ref);
	} else {
		c = wisp_spawn_link(child, &a, sizeof a);
		if (!strcmp(a.relation, "unlink") && wisp_unlink(c) != WISP_OK)
			report(a.main, "unlink failed");
	}
	if (!c)
		__builtin_trap();
	wisp_send(a.main, T_PID, &c, sizeof c);
	report_mailbox(a.main, c, ref);
}

/* Main's side of a case: collect P's reports until P's DOWN. */
static void observe_parent(uint64_t pref)
{
	for (;;) {
		char buf[1024], why[300];
		struct wisp_msg_info info;
		uint64_t tags[3] = { T_REPORT, T_END, pref };
		CHECK(wisp_receive(tags, 3, WISP_INFINITY, buf, sizeof buf - 1, &info));
		if (info.tag == T_REPORT) {
			printf("parent: %.*s\n", (int)info.len, buf);
		} else if (info.tag == T_END) {
			printf("parent: end\n");
		} else {
			reason(buf, info.len, why, sizeof why);
			printf("parent down: %s\n", why);
			return;
		}
	}
}

static void case_table(const char *action, const char *relation, int trap)
{
	struct case_arg a = { wisp_self(), "", "", trap };
	snprintf(a.action, sizeof a.action, "%s", action);
	snprintf(a.relation, sizeof a.relation, "%s", relation);
	uint64_t pref, cref;
	wisp_pid_t p = wisp_spawn_monitor(parent, &a, sizeof a, &pref);
	if (!p)
		fail("spawn", 0);
	wisp_pid_t c;
	char buf[1024], why[300];
	struct wisp_msg_info info;
	recv_tag(T_PID, &c, sizeof c, &info);
	CHECK(wisp_monitor(c, &cref));
	if (!strcmp(action, "kill"))
		CHECK(wisp_kill(c));
	else if (!strcmp(action, "signal5"))
		CHECK(wisp_exit_signal(c, 5));
	else
		CHECK(wisp_send(c, T_GO, NULL, 0));
	recv_tag(cref, buf, sizeof buf, &info);
	reason(buf, info.len, why, sizeof why);
	printf("child: %s%s\n", why, info.from == c ? "" : " (from someone else)");
	CHECK(wisp_send(p, T_QUERY, NULL, 0));
	observe_parent(pref);
}

static void quick(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
}

/* A pid that has never existed (pids are never reused). */
#define NEVER_PID 0x7ffffffffffffff1ULL

static wisp_pid_t dead_pid(void)
{
	uint64_t ref;
	wisp_pid_t dead = wisp_spawn_monitor(quick, NULL, 0, &ref);
	char buf[1024];
	struct wisp_msg_info info;
	recv_tag(ref, buf, sizeof buf, &info);
	return dead;
}

/* ---- link to a dead or unknown process: immediate NOPROC exit signal ---- */

static void link_dead_parent(const void *arg, uint32_t len)
{
	struct case_arg a;
	if (len != sizeof a)
		__builtin_trap();
	memcpy(&a, arg, sizeof a);
	wisp_trap_exit(a.trap);
	wisp_pid_t target = !strcmp(a.action, "never") ? NEVER_PID : dead_pid();
	int32_t rc = wisp_link(target);
	if (a.trap) {
		char line[64];
		snprintf(line, sizeof line, "link rc %d", rc);
		report(a.main, line);
	}
	report_mailbox(a.main, target, 0);
}

static void case_link_dead(const char *which, int trap)
{
	struct case_arg a = { wisp_self(), "", "", trap };
	snprintf(a.action, sizeof a.action, "%s", which);
	uint64_t pref;
	wisp_pid_t p = wisp_spawn_monitor(link_dead_parent, &a, sizeof a, &pref);
	CHECK(wisp_send(p, T_QUERY, NULL, 0));
	observe_parent(pref);
}

/* ---- monitor a dead or unknown process: immediate DOWN NOPROC ---- */

static void case_monitor_dead(void)
{
	wisp_pid_t targets[2] = { dead_pid(), NEVER_PID };
	const char *names[2] = { "dead", "never existed" };
	for (int i = 0; i < 2; i++) {
		uint64_t ref = 0;
		int32_t rc = wisp_monitor(targets[i], &ref);
		char buf[1024], line[400];
		struct wisp_msg_info info;
		int32_t rrc = wisp_receive(&ref, 1, 2000000000, buf, sizeof buf, &info);
		if (rrc == WISP_OK)
			describe(&info, buf, targets[i], ref, line, sizeof line);
		else
			snprintf(line, sizeof line, "receive %d", rrc);
		printf("monitor %s: rc %d, %s\n", names[i], rc, line);
	}
	struct wisp_msg_info info;
	printf("mailbox: %d\n", wisp_receive(NULL, 0, WISP_NOWAIT, NULL, 0, &info));
}

/* ---- demonitor ---- */

static void case_demonitor(void)
{
	struct case_arg a = { wisp_self(), "exit7", "", 0 };
	char buf[1024], line[400];
	struct wisp_msg_info info;
	uint64_t r1, r2, r3, r4;

	wisp_pid_t c = wisp_spawn(child, &a, sizeof a);
	CHECK(wisp_monitor(c, &r1));
	CHECK(wisp_monitor(c, &r2));
	printf("refs differ: %s\n", r1 != r2 && r1 && r2 ? "yes" : "no");
	CHECK(wisp_send(c, T_GO, NULL, 0));
	recv_tag(r2, buf, sizeof buf, &info);
	describe(&info, buf, c, r2, line, sizeof line);
	printf("second monitor: %s\n", line);
	wisp_sleep(50000000);   /* r1's DOWN is queued by now */
	printf("demonitor with DOWN queued: %d\n", wisp_demonitor(r1));
	printf("its DOWN: %d\n", wisp_receive(&r1, 1, WISP_NOWAIT, buf, sizeof buf, &info));
	printf("demonitor again: %d\n", wisp_demonitor(r1));
	printf("demonitor unknown ref: %d\n", wisp_demonitor(123456789));

	wisp_pid_t c2 = wisp_spawn(child, &a, sizeof a);
	CHECK(wisp_monitor(c2, &r3));
	printf("demonitor live: %d\n", wisp_demonitor(r3));
	CHECK(wisp_monitor(c2, &r4));
	CHECK(wisp_send(c2, T_GO, NULL, 0));
	recv_tag(r4, buf, sizeof buf, &info);
	wisp_sleep(50000000);
	printf("removed monitor fires: %d\n", wisp_receive(&r3, 1, WISP_NOWAIT, buf, sizeof buf, &info));
	printf("mailbox: %d\n", wisp_receive(NULL, 0, WISP_NOWAIT, buf, sizeof buf, &info));
}

/* ---- waiters for kill and exit_signal ---- */

struct waiter_arg {
	wisp_pid_t main;
	int32_t trap;
	int32_t sleep;    /* park in wisp_sleep instead of receive */
};

/* Reports EXIT messages to main, answers requests with "alive", ends on
 * T_STOP. */
static void waiter(const void *arg, uint32_t len)
{
	struct waiter_arg a;
	if (len != sizeof a)
		__builtin_trap();
	memcpy(&a, arg, sizeof a);
	wisp_trap_exit(a.trap);
	wisp_pid_t me = wisp_self();
	wisp_send(a.main, T_PID, &me, sizeof me);
	if (a.sleep)
		wisp_sleep(30000000000LL);
	for (;;) {
		char buf[1024], line[400];
		struct wisp_msg_info info;
		if (wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info) != WISP_OK)
			__builtin_trap();
		if (info.kind == WISP_MSG_EXIT) {
			describe(&info, buf, a.main, 0, line, sizeof line);
			report(a.main, line);
		} else if (info.tag == T_STOP) {
			return;
		} else if (info.ref) {
			wisp_send(info.from, info.ref, "alive", 5);
		}
	}
}

static wisp_pid_t start_waiter(int trap, int sleep, uint64_t *ref)
{
	struct waiter_arg a = { wisp_self(), trap, sleep };
	wisp_pid_t p = wisp_spawn_monitor(waiter, &a, sizeof a, ref);
	wisp_pid_t got;
	struct wisp_msg_info info;
	recv_tag(T_PID, &got, sizeof got, &info);
	if (got != p)
		fail("waiter pid", 0);
	return p;
}

static void print_down(const char *label, uint64_t ref)
{
	char buf[1024], why[300];
	struct wisp_msg_info info;
	recv_tag(ref, buf, sizeof buf, &info);
	reason(buf, info.len, why, sizeof why);
	printf("%s: %s\n", label, why);
}

static void print_report(const char *label)
{
	char buf[1024];
	struct wisp_msg_info info;
	recv_tag(T_REPORT, buf, sizeof buf, &info);
	printf("%s: %.*s\n", label, (int)info.len, buf);
}

static void ping(const char *label, wisp_pid_t p)
{
	char buf[16];
	struct wisp_msg_info info;
	int32_t rc = wisp_request(p, T_PING, NULL, 0, 5000000000LL, buf, sizeof buf, &info);
	printf("%s: %d %.*s\n", label, rc, rc == WISP_OK ? (int)info.len : 0, buf);
}

static void suicide(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	wisp_trap_exit(1);
	wisp_kill(wisp_self());
	wisp_sleep(10000000000LL);
}

static void case_kill(void)
{
	uint64_t ref;
	wisp_pid_t p = start_waiter(1, 0, &ref);
	printf("kill: %d\n", wisp_kill(p));
	print_down("trapping process killed in receive", ref);
	p = start_waiter(1, 1, &ref);
	printf("kill: %d\n", wisp_kill(p));
	print_down("trapping process killed in sleep", ref);
	if (!wisp_spawn_monitor(suicide, NULL, 0, &ref))
		fail("spawn", 0);
	print_down("kill self", ref);
	printf("kill dead: %d\n", wisp_kill(p));
	printf("kill never existed: %d\n", wisp_kill(NEVER_PID));
	printf("kill 0: %d\n", wisp_kill(0));
}

static void case_exit_signal(void)
{
	printf("trap_exit: %d", wisp_trap_exit(1));
	printf(" %d", wisp_trap_exit(1));
	printf(" %d", wisp_trap_exit(0));
	printf(" %d\n", wisp_trap_exit(0));

	uint64_t ref;
	wisp_pid_t p = start_waiter(0, 0, &ref);
	printf("normal signal: %d\n", wisp_exit_signal(p, 0));
	ping("non-trapping after NORMAL signal", p);
	printf("code signal: %d\n", wisp_exit_signal(p, 9));
	print_down("non-trapping after CODE 9 signal", ref);

	p = start_waiter(1, 0, &ref);
	printf("normal signal: %d\n", wisp_exit_signal(p, 0));
	print_report("trapping got");
	printf("code signal: %d\n", wisp_exit_signal(p, 9));
	print_report("trapping got");
	ping("trapping after both", p);
	printf("kill: %d\n", wisp_kill(p));
	print_down("trapping after kill", ref);

	printf("signal dead: %d\n", wisp_exit_signal(p, 3));
	printf("signal never existed: %d\n", wisp_exit_signal(NEVER_PID, 3));
	struct wisp_msg_info info;
	printf("mailbox: %d\n", wisp_receive(NULL, 0, WISP_NOWAIT, NULL, 0, &info));
}

/* ---- links are bidirectional ---- */

struct bidi_arg {
	wisp_pid_t main, parent;
	int32_t trap;
};

static void bidi_child(const void *arg, uint32_t len)
{
	struct bidi_arg a;
	if (len != sizeof a)
		__builtin_trap();
	memcpy(&a, arg, sizeof a);
	wisp_trap_exit(a.trap);
	wisp_pid_t me = wisp_self();
	wisp_send(a.main, T_PID, &me, sizeof me);
	for (;;) {
		char buf[1024], line[400];
		struct wisp_msg_info info;
		if (wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info) != WISP_OK)
			__builtin_trap();
		if (info.tag == T_STOP)
			return;
		describe(&info, buf, a.parent, 0, line, sizeof line);
		report(a.main, line);
	}
}

static void bidi_parent(const void *arg, uint32_t len)
{
	struct bidi_arg a;
	if (len != sizeof a)
		__builtin_trap();
	memcpy(&a, arg, sizeof a);
	a.parent = wisp_self();
	if (!wisp_spawn_link(bidi_child, &a, sizeof a))
		__builtin_trap();
	char buf[8];
	struct wisp_msg_info info;
	recv_tag(T_DIE, buf, sizeof buf, &info);
	exit(4);
}

static void case_bidirectional(int trap)
{
	struct bidi_arg a = { wisp_self(), 0, trap };
	uint64_t pref, cref;
	wisp_pid_t p = wisp_spawn_monitor(bidi_parent, &a, sizeof a, &pref);
	wisp_pid_t c;
	struct wisp_msg_info info;
	recv_tag(T_PID, &c, sizeof c, &info);
	CHECK(wisp_monitor(c, &cref));
	CHECK(wisp_send(p, T_DIE, NULL, 0));
	print_down("parent down", pref);
	if (trap) {
		print_report("child got");
		CHECK(wisp_send(c, T_STOP, NULL, 0));
	}
	print_down("child down", cref);
}

/* ---- a chain A - B - C: C traps, the trap travels to A ---- */

struct chain_arg {
	wisp_pid_t main;
	uint32_t depth, max;
};

static void chain_node(const void *arg, uint32_t len)
{
	struct chain_arg a;
	if (len != sizeof a)
		__builtin_trap();
	memcpy(&a, arg, sizeof a);
	if (a.depth < a.max) {
		struct chain_arg b = a;
		b.depth++;
		if (!wisp_spawn_link(chain_node, &b, sizeof b))
			__builtin_trap();
	}
	uint64_t me[2] = { wisp_self(), a.depth };
	wisp_send(a.main, T_PID, me, sizeof me);
	char buf[8];
	struct wisp_msg_info info;
	recv_tag(T_GO, buf, sizeof buf, &info);
	__builtin_trap();
}

static void case_chain(void)
{
	enum { N = 3 };
	struct chain_arg a = { wisp_self(), 0, N - 1 };
	uint64_t refs[N];
	wisp_pid_t pids[N];
	pids[0] = wisp_spawn_monitor(chain_node, &a, sizeof a, &refs[0]);
	for (int i = 0; i < N; i++) {
		uint64_t got[2];
		struct wisp_msg_info info;
		recv_tag(T_PID, got, sizeof got, &info);
		if (got[1] >= N)
			fail("depth", (long)got[1]);
		if (got[1] == 0) {
			if (got[0] != pids[0])
				fail("pid of A", 0);
			continue;
		}
		pids[got[1]] = got[0];
		CHECK(wisp_monitor(got[0], &refs[got[1]]));
	}
	CHECK(wisp_send(pids[N - 1], T_GO, NULL, 0));
	print_down("A", refs[0]);
	print_down("B", refs[1]);
	print_down("C", refs[2]);
}

/* ---- signals that arrive together ----
 * The target is parked (sleeping); main sends it a kill (or an exit signal)
 * and at once a monitor or link request, so that the target finds both in
 * one batch. Signals from one sender arrive in order: the monitor/link
 * reaches a process that is dying or dead, and must still be answered —
 * DOWN (or an EXIT, main trapping) with KILLED/CODE 5, or NOPROC. */

static void sleeper(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	wisp_sleep(30000000000LL);
}

static void case_together(void)
{
	wisp_trap_exit(1);
	const char *names[4] = { "kill then monitor", "kill then link", "signal then monitor",
	                         "signal then link" };
	for (int i = 0; i < 4; i++) {
		wisp_pid_t c = wisp_spawn(sleeper, NULL, 0);
		wisp_sleep(20000000);   /* c is parked in its sleep */
		if (i < 2)
			CHECK(wisp_kill(c));
		else
			CHECK(wisp_exit_signal(c, 5));
		uint64_t ref = 0;
		if (i % 2 == 0)
			CHECK(wisp_monitor(c, &ref));
		else
			CHECK(wisp_link(c));
		char buf[1024], line[400];
		struct wisp_msg_info info;
		int32_t rc = wisp_receive(NULL, 0, 5000000000LL, buf, sizeof buf, &info);
		if (rc == WISP_OK)
			describe(&info, buf, c, ref, line, sizeof line);
		else
			snprintf(line, sizeof line, "nothing (%d)", rc);
		printf("%s: %s\n", names[i], line);
	}
}

/* ---- a signal to oneself (Erlang's exit(self(), Reason)) ---- */

static void self_signaller(const void *arg, uint32_t len)
{
	struct waiter_arg a;
	if (len != sizeof a)
		__builtin_trap();
	memcpy(&a, arg, sizeof a);
	wisp_trap_exit(a.trap);
	wisp_exit_signal(wisp_self(), a.sleep);   /* the code */
	char buf[1024], line[400];
	struct wisp_msg_info info;
	if (wisp_receive(NULL, 0, WISP_NOWAIT, buf, sizeof buf, &info) == WISP_OK) {
		describe(&info, buf, wisp_self(), 0, line, sizeof line);
		report(a.main, line);
	}
	report(a.main, "continued");
}

static void case_self_signal(void)
{
	for (int trap = 0; trap < 2; trap++) {
		for (int code = 0; code < 6; code += 5) {
			struct waiter_arg a = { wisp_self(), trap, code };
			uint64_t ref;
			if (!wisp_spawn_monitor(self_signaller, &a, sizeof a, &ref))
				fail("spawn", 0);
			char label[64];
			snprintf(label, sizeof label, "trap %d code %d", trap, code);
			for (;;) {
				char buf[1024], why[300];
				struct wisp_msg_info info;
				uint64_t tags[2] = { T_REPORT, ref };
				CHECK(wisp_receive(tags, 2, WISP_INFINITY, buf, sizeof buf, &info));
				if (info.tag == T_REPORT) {
					printf("%s: %.*s\n", label, (int)info.len, buf);
					continue;
				}
				reason(buf, info.len, why, sizeof why);
				printf("%s: down %s\n", label, why);
				break;
			}
		}
	}
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: proc_links CASE ...\n");
		return 2;
	}
	const char *c = argv[1];
	if (!strcmp(c, "table") && argc == 5)
		case_table(argv[2], argv[3], atoi(argv[4]));
	else if (!strcmp(c, "link_dead") && argc == 4)
		case_link_dead(argv[2], atoi(argv[3]));
	else if (!strcmp(c, "monitor_dead"))
		case_monitor_dead();
	else if (!strcmp(c, "demonitor"))
		case_demonitor();
	else if (!strcmp(c, "kill"))
		case_kill();
	else if (!strcmp(c, "exit_signal"))
		case_exit_signal();
	else if (!strcmp(c, "bidirectional") && argc == 3)
		case_bidirectional(atoi(argv[2]));
	else if (!strcmp(c, "chain"))
		case_chain();
	else if (!strcmp(c, "together"))
		case_together();
	else if (!strcmp(c, "self_signal"))
		case_self_signal();
	else {
		fprintf(stderr, "bad arguments\n");
		return 2;
	}
	return 0;
}
