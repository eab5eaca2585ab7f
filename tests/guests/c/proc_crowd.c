/*
 * proc_crowd.c — many processes at once: a ring of N processes passing a
 * token around, 10,000 workers of which every 10th traps, and 100,000
 * processes that all trap. argv[1] names the case, the rest are numbers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wisp/guest.h>

enum { T_READY = 1, T_TOKEN, T_DONE, T_BAD, T_RESULT };

static void fail(const char *what, long v)
{
	printf("FAIL %s: %ld\n", what, v);
	exit(1);
}

/* ---- ring ---- */

struct node_arg {
	wisp_pid_t main, first;
	uint32_t index, n, rounds;
};

/* Node i spawns node i+1; the last closes the ring to the first and tells
 * main it is ready. Every node checks that the token's hop count is
 * consistent with its place in the ring. */
static void node(const void *arg, uint32_t len)
{
	struct node_arg a;
	if (len != sizeof a)
		__builtin_trap();
	memcpy(&a, arg, sizeof a);
	if (a.index == 0)
		a.first = wisp_self();
	wisp_pid_t next;
	if (a.index + 1 < a.n) {
		struct node_arg b = a;
		b.index++;
		next = wisp_spawn(node, &b, sizeof b);
		if (!next)
			__builtin_trap();
	} else {
		next = a.first;
		wisp_send(a.main, T_READY, &a.index, sizeof a.index);
	}
	uint64_t total = (uint64_t)a.n * a.rounds;
	for (;;) {
		uint64_t hops, tag = T_TOKEN;
		struct wisp_msg_info info;
		if (wisp_receive(&tag, 1, WISP_INFINITY, &hops, sizeof hops, &info) != WISP_OK)
			__builtin_trap();
		if (hops % a.n != a.index)
			wisp_send(a.main, T_BAD, &a.index, sizeof a.index);
		hops++;
		if (hops == total) {
			uint64_t done[2] = { a.index, hops };
			wisp_send(a.main, T_DONE, done, sizeof done);
		} else {
			wisp_send(next, T_TOKEN, &hops, sizeof hops);
		}
	}
}

static void case_ring(uint32_t n, uint32_t rounds)
{
	struct node_arg a = { wisp_self(), 0, 0, n, rounds };
	wisp_pid_t first = wisp_spawn(node, &a, sizeof a);
	if (!first)
		fail("spawn", 0);
	uint32_t last;
	uint64_t tag = T_READY;
	struct wisp_msg_info info;
	if (wisp_receive(&tag, 1, WISP_INFINITY, &last, sizeof last, &info) != WISP_OK)
		fail("ready", 0);
	printf("ring of %u ready (last %u)\n", n, last);
	uint64_t hops = 0;
	wisp_send(first, T_TOKEN, &hops, sizeof hops);
	uint64_t done[2];
	tag = T_DONE;
	if (wisp_receive(&tag, 1, WISP_INFINITY, done, sizeof done, &info) != WISP_OK)
		fail("done", 0);
	printf("done by node %llu after %llu hops\n", (unsigned long long)done[0],
	       (unsigned long long)done[1]);
	uint32_t bad = 0, idx;
	tag = T_BAD;
	while (wisp_receive(&tag, 1, WISP_NOWAIT, &idx, sizeof idx, &info) == WISP_OK)
		bad++;
	printf("bad hops: %u\n", bad);
}

/* ---- workers: every 10th traps, the others compute ---- */

static uint32_t work(uint32_t i)
{
	uint32_t h = 2166136261u ^ i;
	for (uint32_t k = 0; k < 1000 + i % 1000; k++)
		h = (h ^ (k * 2654435761u)) * 16777619u;
	return h;
}

struct worker_arg {
	wisp_pid_t main;
	uint32_t index;
};

static void worker(const void *arg, uint32_t len)
{
	struct worker_arg a;
	if (len != sizeof a)
		__builtin_trap();
	memcpy(&a, arg, sizeof a);
	if (a.index % 10 == 9)
		__builtin_trap();
	uint32_t r[2] = { a.index, work(a.index) };
	wisp_send(a.main, T_RESULT, r, sizeof r);
}

struct child {
	wisp_pid_t pid;
	uint32_t index;
};

static int by_pid(const void *x, const void *y)
{
	wisp_pid_t a = ((const struct child *)x)->pid, b = ((const struct child *)y)->pid;
	return a < b ? -1 : a > b;
}

static const struct child *find(const struct child *c, uint32_t n, wisp_pid_t pid)
{
	struct child key = { pid, 0 };
	return bsearch(&key, c, n, sizeof *c, by_pid);
}

static int has(const char *text, uint32_t len, const char *needle)
{
	char buf[512];
	if (len >= sizeof buf)
		len = sizeof buf - 1;
	memcpy(buf, text, len);
	buf[len] = 0;
	return strstr(buf, needle) != NULL;
}

static void case_workers(uint32_t n)
{
	struct child *kids = calloc(n, sizeof *kids);
	for (uint32_t i = 0; i < n; i++) {
		struct worker_arg a = { wisp_self(), i };
		uint64_t ref;
		kids[i].index = i;
		if (!(kids[i].pid = wisp_spawn_monitor(worker, &a, sizeof a, &ref)))
			fail("spawn", i);
	}
	qsort(kids, n, sizeof *kids, by_pid);
	uint32_t normal = 0, trap = 0, other = 0, right_one = 0, trap_text = 0;
	uint32_t correct = 0, wrong = 0;
	for (uint32_t downs = 0; downs < n;) {
		char buf[1024];
		struct wisp_msg_info info;
		if (wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info) != WISP_OK)
			fail("receive", 0);
		if (info.kind == WISP_MSG_DATA && info.tag == T_RESULT) {
			uint32_t r[2];
			memcpy(r, buf, sizeof r);
			if (r[0] < n && r[0] % 10 != 9 && r[1] == work(r[0]))
				correct++;
			else
				wrong++;
			continue;
		}
		if (info.kind != WISP_MSG_DOWN)
			fail("unexpected message kind", info.kind);
		downs++;
		struct wisp_exit_reason why;
		memcpy(&why, buf, sizeof why);
		const struct child *c = find(kids, n, info.from);
		if (why.kind == WISP_EXIT_NORMAL) {
			normal++;
			right_one += c && c->index % 10 != 9;
		} else if (why.kind == WISP_EXIT_TRAP) {
			trap++;
			right_one += c && c->index % 10 == 9;
			trap_text += has(buf + 8, info.len - 8, "unreachable");
		} else {
			other++;
		}
	}
	printf("down: normal=%u trap=%u other=%u matching pid=%u trap text=%u\n", normal, trap, other,
	       right_one, trap_text);
	printf("results: correct=%u wrong=%u\n", correct, wrong);
	struct wisp_msg_info info;
	printf("left over: %d\n", wisp_receive(NULL, 0, WISP_NOWAIT, NULL, 0, &info));
	free(kids);
}

/* ---- 100,000 processes trapping at once ---- */

static void trapper(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	__builtin_trap();
}

static void case_traps(uint32_t n)
{
	uint32_t spawned = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t ref;
		if (!wisp_spawn_monitor(trapper, NULL, 0, &ref)) {
			printf("spawn %u failed\n", i);
			break;
		}
		spawned++;
	}
	uint32_t trap = 0, other = 0;
	for (uint32_t i = 0; i < spawned; i++) {
		char buf[1024];
		struct wisp_msg_info info;
		int32_t rc = wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info);
		if (rc != WISP_OK)
			fail("receive", rc);
		struct wisp_exit_reason why;
		memcpy(&why, buf, sizeof why);
		if (info.kind == WISP_MSG_DOWN && why.kind == WISP_EXIT_TRAP)
			trap++;
		else
			other++;
	}
	printf("spawned %u, TRAP downs %u, other %u\n", spawned, trap, other);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: proc_crowd CASE [N...]\n");
		return 2;
	}
	uint32_t n = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 0;
	uint32_t m = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 10) : 0;
	if (!strcmp(argv[1], "ring"))
		case_ring(n, m);
	else if (!strcmp(argv[1], "workers"))
		case_workers(n);
	else if (!strcmp(argv[1], "traps"))
		case_traps(n);
	else
		return 2;
	return 0;
}
