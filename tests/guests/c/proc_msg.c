/*
 * proc_msg.c — messages between processes: per-sender ordering, no loss or
 * duplication with many senders, selective receive by tag, polling and
 * timeouts, WISP_ETOOSMALL, request/reply (to live, dead, dying and silent
 * servers). argv[1] names the case; the guest prints what it observed and
 * the test compares the text exactly. A broken expectation inside the guest
 * prints "FAIL ..." and exits 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <wisp/guest.h>

enum {
	T_SEQ = 1, T_STOP, T_PING, T_PONG, T_ECHO, T_SELF, T_LATE, T_EARLY, T_READY,
};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void fail(const char *what, long v)
{
	printf("FAIL %s: %ld\n", what, v);
	exit(1);
}

#define CHECK(expr) do { int32_t rc_ = (expr); if (rc_ != WISP_OK) fail(#expr, rc_); } while (0)

/* Receive any message into buf (infinite wait); fails loudly on errors. */
static void recv_any(void *buf, uint32_t len, struct wisp_msg_info *info)
{
	CHECK(wisp_receive(NULL, 0, WISP_INFINITY, buf, len, info));
}

static void recv_tag(uint64_t tag, void *buf, uint32_t len, struct wisp_msg_info *info)
{
	CHECK(wisp_receive(&tag, 1, WISP_INFINITY, buf, len, info));
}

/* ---- order: one sender, 10,000 numbered messages ---- */

struct sender_arg {
	wisp_pid_t to;
	uint32_t index, count;
};

static void sender(const void *arg, uint32_t len)
{
	struct sender_arg a;
	if (len != sizeof a)
		__builtin_trap();
	memcpy(&a, arg, sizeof a);
	for (uint32_t seq = 0; seq < a.count; seq++) {
		uint32_t m[2] = { a.index, seq };
		if (wisp_send(a.to, T_SEQ, m, sizeof m) != WISP_OK)
			__builtin_trap();
	}
}

static void case_order(void)
{
	struct sender_arg a = { wisp_self(), 0, 10000 };
	if (!wisp_spawn(sender, &a, sizeof a))
		fail("spawn", 0);
	uint32_t bad = 0;
	for (uint32_t i = 0; i < a.count; i++) {
		uint32_t m[2];
		struct wisp_msg_info info;
		recv_any(m, sizeof m, &info);
		if (info.kind != WISP_MSG_DATA || info.tag != T_SEQ || info.len != sizeof m || m[1] != i)
			bad++;
	}
	printf("order: %u messages, %u out of place\n", a.count, bad);
	struct wisp_msg_info info;
	printf("extra: %d\n", wisp_receive(NULL, 0, 100000000, NULL, 0, &info));
}

/* ---- many: 100 senders x 1000 messages to one receiver ---- */

static void case_many(void)
{
	enum { SENDERS = 100, EACH = 1000 };
	static uint32_t next[SENDERS];
	static wisp_pid_t pids[SENDERS];
	for (uint32_t i = 0; i < SENDERS; i++) {
		struct sender_arg a = { wisp_self(), i, EACH };
		if (!(pids[i] = wisp_spawn(sender, &a, sizeof a)))
			fail("spawn", i);
	}
	uint32_t bad_order = 0, bad_from = 0;
	for (uint32_t n = 0; n < SENDERS * EACH; n++) {
		uint32_t m[2];
		struct wisp_msg_info info;
		recv_any(m, sizeof m, &info);
		if (info.tag != T_SEQ || m[0] >= SENDERS)
			fail("unexpected message", (long)info.tag);
		if (info.from != pids[m[0]])
			bad_from++;
		if (m[1] != next[m[0]])
			bad_order++;
		next[m[0]] = m[1] + 1;
	}
	uint32_t complete = 0;
	for (uint32_t i = 0; i < SENDERS; i++)
		complete += next[i] == EACH;
	printf("many: %u messages, %u senders complete, %u out of order, %u wrong sender\n",
	       SENDERS * EACH, complete, bad_order, bad_from);
	struct wisp_msg_info info;
	printf("extra: %d\n", wisp_receive(NULL, 0, 100000000, NULL, 0, &info));
}

/* ---- selective receive ---- */

static void late_sender(const void *arg, uint32_t len)
{
	wisp_pid_t to;
	memcpy(&to, arg, sizeof to);
	(void)len;
	wisp_send(to, T_EARLY, "early", 5);
	wisp_sleep(50000000);
	wisp_send(to, T_LATE, "late", 4);
}

static void print_taken(const char *label, const uint64_t *tags, uint32_t ntags, int count)
{
	printf("%s:", label);
	for (int i = 0; i < count; i++) {
		uint32_t v;
		struct wisp_msg_info info;
		int32_t rc = wisp_receive(tags, ntags, WISP_NOWAIT, &v, sizeof v, &info);
		if (rc != WISP_OK) {
			printf(" rc=%d", rc);
			continue;
		}
		printf(" %llu/%u", (unsigned long long)info.tag, v);
	}
	printf("\n");
}

static void case_selective(void)
{
	wisp_pid_t me = wisp_self();
	for (uint32_t i = 0; i < 10; i++) {
		uint64_t tag = 100 + i % 3;     /* 100 101 102 100 101 ... */
		CHECK(wisp_send(me, tag, &i, sizeof i));
	}
	uint64_t t102 = 102, t101 = 101;
	print_taken("tag 102", &t102, 1, 3);
	print_taken("tag 101", &t101, 1, 3);
	print_taken("any", NULL, 0, 4);

	for (uint32_t i = 0; i < 4; i++) {
		uint64_t tag = (uint64_t[]){ 200, 201, 202, 200 }[i];
		CHECK(wisp_send(me, tag, &i, sizeof i));
	}
	uint64_t two[2] = { 202, 201 };
	print_taken("tags 202|201", two, 2, 2);
	print_taken("tags 202|201 again", two, 2, 1);
	print_taken("rest", NULL, 0, 2);

	/* A blocked selective receive: the non-matching message that arrives
	 * first stays queued behind the wait. */
	CHECK(wisp_send(me, 300, "q", 1));
	uint64_t absent = 999;
	struct wisp_msg_info info;
	char buf[16];
	printf("absent tag: %d\n", wisp_receive(&absent, 1, 50000000, buf, sizeof buf, &info));
	if (!wisp_spawn(late_sender, &me, sizeof me))
		fail("spawn", 0);
	uint64_t late = T_LATE;
	int32_t rc = wisp_receive(&late, 1, WISP_INFINITY, buf, sizeof buf, &info);
	printf("late: %d %.*s\n", rc, (int)info.len, buf);
	rc = wisp_receive(NULL, 0, WISP_NOWAIT, buf, sizeof buf, &info);
	printf("then: %d tag %llu %.*s\n", rc, (unsigned long long)info.tag, (int)info.len, buf);
	rc = wisp_receive(NULL, 0, WISP_NOWAIT, buf, sizeof buf, &info);
	printf("then: %d tag %llu %.*s\n", rc, (unsigned long long)info.tag, (int)info.len, buf);
	printf("empty: %d\n", wisp_receive(NULL, 0, WISP_NOWAIT, buf, sizeof buf, &info));
}

/* ---- poll and timeouts ---- */

static void case_timeout(void)
{
	struct wisp_msg_info info;
	char buf[8];
	int64_t t0 = now_ns();
	int32_t rc = wisp_receive(NULL, 0, WISP_NOWAIT, buf, sizeof buf, &info);
	printf("poll empty: %d\n", rc);
	CHECK(wisp_send(wisp_self(), 5, "hi", 2));
	rc = wisp_receive(NULL, 0, WISP_NOWAIT, buf, sizeof buf, &info);
	printf("poll one: %d %.*s\n", rc, (int)info.len, buf);
	int64_t waits[] = { 1000000, 200000000 };
	for (int i = 0; i < 2; i++) {
		t0 = now_ns();
		rc = wisp_receive(NULL, 0, waits[i], buf, sizeof buf, &info);
		int64_t el = now_ns() - t0;
		printf("wait %lld ms: %d, elapsed >= timeout: %s\n", (long long)(waits[i] / 1000000), rc,
		       el >= waits[i] ? "yes" : "no");
	}
	/* A message arriving during a finite wait ends it. */
	wisp_pid_t me = wisp_self();
	if (!wisp_spawn(late_sender, &me, sizeof me))
		fail("spawn", 0);
	uint64_t late = T_LATE;
	rc = wisp_receive(&late, 1, 5000000000LL, buf, sizeof buf, &info);
	printf("arrives within the wait: %d %.*s\n", rc, (int)info.len, buf);
}

/* ---- WISP_ETOOSMALL ---- */

static void case_toosmall(void)
{
	wisp_pid_t me = wisp_self();
	char big[100], small[10], out[100];
	for (int i = 0; i < 100; i++)
		big[i] = (char)('a' + i % 26);
	CHECK(wisp_send(me, 7, big, sizeof big));
	CHECK(wisp_send(me, 8, "tail", 4));
	struct wisp_msg_info info;
	memset(&info, 0, sizeof info);
	int32_t rc = wisp_receive(NULL, 0, WISP_NOWAIT, small, sizeof small, &info);
	printf("small buffer: %d len %u tag %llu\n", rc, info.len, (unsigned long long)info.tag);
	memset(&info, 0, sizeof info);
	rc = wisp_receive(NULL, 0, WISP_NOWAIT, NULL, 0, &info);
	printf("no buffer: %d len %u\n", rc, info.len);
	rc = wisp_receive(NULL, 0, WISP_NOWAIT, out, 99, &info);
	printf("one short: %d len %u\n", rc, info.len);
	rc = wisp_receive(NULL, 0, WISP_NOWAIT, out, sizeof out, &info);
	printf("exact: %d len %u tag %llu same: %s\n", rc, info.len, (unsigned long long)info.tag,
	       memcmp(out, big, sizeof big) == 0 ? "yes" : "no");
	rc = wisp_receive(NULL, 0, WISP_NOWAIT, out, sizeof out, &info);
	printf("next: %d tag %llu %.*s\n", rc, (unsigned long long)info.tag, (int)info.len, out);
	CHECK(wisp_send(me, 9, NULL, 0));
	rc = wisp_receive(NULL, 0, WISP_NOWAIT, NULL, 0, &info);
	printf("empty message: %d len %u tag %llu\n", rc, info.len, (unsigned long long)info.tag);
}

/* ---- request/reply ---- */

/* Echo server: replies value*2 to requests, reports the ref it saw for
 * a plain T_PING, ends on T_STOP. arg: mode (0 echo, 1 exit(3) on the
 * first request, 2 ignore requests, 3 trap on the first request). */
static void server(const void *arg, uint32_t len)
{
	uint32_t mode = 0;
	if (len == sizeof mode)
		memcpy(&mode, arg, sizeof mode);
	for (;;) {
		uint32_t v = 0;
		struct wisp_msg_info info;
		if (wisp_receive(NULL, 0, WISP_INFINITY, &v, sizeof v, &info) != WISP_OK)
			__builtin_trap();
		if (info.tag == T_STOP)
			return;
		if (info.tag == T_PING) {
			uint64_t ref = info.ref;
			wisp_send(info.from, T_PONG, &ref, sizeof ref);
			continue;
		}
		if (mode == 1)
			exit(3);
		if (mode == 2)
			continue;
		if (mode == 3)
			__builtin_trap();
		uint32_t r = v * 2;
		wisp_send(info.from, info.ref, &r, sizeof r);
	}
}

static void case_request(void)
{
	wisp_pid_t me = wisp_self();
	wisp_pid_t srv = wisp_spawn(server, NULL, 0);
	if (!srv)
		fail("spawn", 0);
	CHECK(wisp_send(me, T_SELF, "mine", 4));
	uint32_t ok = 0, bad = 0;
	uint64_t last_ref = 0, distinct = 0;
	for (uint32_t i = 0; i < 1000; i++) {
		uint32_t r = 0;
		struct wisp_msg_info info;
		int32_t rc = wisp_request(srv, T_ECHO, &i, sizeof i, 5000000000LL, &r, sizeof r, &info);
		if (rc != WISP_OK) {
			printf("request %u: %d\n", i, rc);
			bad++;
			continue;
		}
		if (r == 2 * i && info.from == srv && info.kind == WISP_MSG_DATA && info.len == sizeof r &&
		    info.tag != 0)
			ok++;
		else
			bad++;
		distinct += info.tag != last_ref;
		last_ref = info.tag;
	}
	printf("requests: %u ok, %u bad, %llu distinct refs\n", ok, bad, (unsigned long long)distinct);
	CHECK(wisp_send(srv, T_PING, NULL, 0));
	uint64_t ref = 99, pong = T_PONG;
	struct wisp_msg_info info;
	CHECK(wisp_receive(&pong, 1, WISP_INFINITY, &ref, sizeof ref, &info));
	printf("plain send carries ref: %llu\n", (unsigned long long)ref);
	char buf[8];
	int32_t rc = wisp_receive(NULL, 0, WISP_NOWAIT, buf, sizeof buf, &info);
	printf("queued before: %d tag %llu %.*s\n", rc, (unsigned long long)info.tag, (int)info.len, buf);
	/* A reply larger than the buffer stays queued under its tag. */
	uint32_t v = 21;
	uint8_t tiny;
	rc = wisp_request(srv, T_ECHO, &v, sizeof v, 5000000000LL, &tiny, 1, &info);
	uint32_t r = 0;
	printf("small reply buffer: %d len %u\n", rc, info.len);
	uint64_t tag = info.tag;
	rc = wisp_receive(&tag, 1, WISP_NOWAIT, &r, sizeof r, &info);
	printf("reply kept: %d %u\n", rc, r);
	CHECK(wisp_send(srv, T_STOP, NULL, 0));
}

static void quick(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
}

static void case_request_dead(void)
{
	uint64_t ref;
	wisp_pid_t dead = wisp_spawn_monitor(quick, NULL, 0, &ref);
	if (!dead)
		fail("spawn", 0);
	struct wisp_msg_info info;
	char buf[64];
	recv_tag(ref, buf, sizeof buf, &info);
	uint32_t v = 1, r;
	int32_t rc = wisp_request(dead, T_ECHO, &v, sizeof v, WISP_INFINITY, &r, sizeof r, &info);
	printf("dead: %d\n", rc);
	rc = wisp_request(0, T_ECHO, &v, sizeof v, WISP_INFINITY, &r, sizeof r, &info);
	printf("pid 0: %d\n", rc);
	rc = wisp_request(0x7ffffffffffffff1ULL, T_ECHO, &v, sizeof v, WISP_INFINITY, &r, sizeof r, &info);
	printf("never existed: %d\n", rc);
	/* Servers that die while the request waits (infinite timeout). */
	const char *how[] = { "", "exits", "", "traps" };
	for (uint32_t mode = 1; mode <= 3; mode += 2) {
		wisp_pid_t srv = wisp_spawn(server, &mode, sizeof mode);
		int64_t t0 = now_ns();
		rc = wisp_request(srv, T_ECHO, &v, sizeof v, WISP_INFINITY, &r, sizeof r, &info);
		printf("server %s before replying: %d, within 5 s: %s\n", how[mode], rc,
		       now_ns() - t0 < 5000000000LL ? "yes" : "no");
	}
	printf("mailbox: %d\n", wisp_receive(NULL, 0, WISP_NOWAIT, buf, sizeof buf, &info));
}

static void case_request_timeout(void)
{
	uint32_t mode = 2;
	wisp_pid_t srv = wisp_spawn(server, &mode, sizeof mode);
	uint32_t v = 1, r;
	struct wisp_msg_info info;
	int64_t t0 = now_ns();
	int32_t rc = wisp_request(srv, T_ECHO, &v, sizeof v, 150000000, &r, sizeof r, &info);
	int64_t el = now_ns() - t0;
	printf("silent server: %d, elapsed >= 150 ms: %s\n", rc, el >= 150000000 ? "yes" : "no");
	printf("server alive: %d\n", wisp_alive(srv));
	rc = wisp_request(srv, T_ECHO, &v, sizeof v, WISP_NOWAIT, &r, sizeof r, &info);
	printf("zero timeout: %d\n", rc);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: proc_msg CASE\n");
		return 2;
	}
	const char *c = argv[1];
	if (!strcmp(c, "order"))
		case_order();
	else if (!strcmp(c, "many"))
		case_many();
	else if (!strcmp(c, "selective"))
		case_selective();
	else if (!strcmp(c, "timeout"))
		case_timeout();
	else if (!strcmp(c, "toosmall"))
		case_toosmall();
	else if (!strcmp(c, "request"))
		case_request();
	else if (!strcmp(c, "request_dead"))
		case_request_dead();
	else if (!strcmp(c, "request_timeout"))
		case_request_timeout();
	else {
		fprintf(stderr, "unknown case %s\n", c);
		return 2;
	}
	return 0;
}
