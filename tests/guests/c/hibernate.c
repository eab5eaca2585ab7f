/*
 * hibernate.c — hibernated processes wake on every kind of event with their
 * state intact (stack, static data, heap), by themselves (auto) or after
 * wisp_hibernate(). argv[1] names the case; output is checked by
 * tests/e2e/test_hibernate.py.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wisp/guest.h>

#define MS 1000000LL

static unsigned char statics[3 * 65536];   /* spans linear-memory pages */

struct state {
	unsigned char *heap;
	uint32_t seed;
};

static void fill(unsigned char *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(seed + i * 31 + (i >> 8));
}

static int same(const unsigned char *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (unsigned char)(seed + i * 31 + (i >> 8)))
			return 0;
	return 1;
}

static void report(wisp_pid_t to, const char *what, int ok)
{
	char msg[64];
	int n = snprintf(msg, sizeof msg, "%s %s", what, ok ? "ok" : "CORRUPT");
	wisp_send(to, 1, msg, (uint32_t)n);
}

struct arg { wisp_pid_t parent; int how; };

enum { BY_MESSAGE, BY_TIMER, BY_EXIT_SIGNAL, BY_SLEEP, BY_AUTO_RECEIVE };
static const char *const NAMES[] = { "message", "timer", "exit signal", "sleep", "auto receive" };

static void child(const void *a, uint32_t len)
{
	struct arg arg;
	memcpy(&arg, a, sizeof arg);
	(void)len;
	volatile unsigned char stack[3000];
	uint32_t seed = (uint32_t)wisp_self();
	fill((unsigned char *)stack, sizeof stack, seed);
	fill(statics, sizeof statics, seed + 1);
	unsigned char *heap = malloc(100000);
	fill(heap, 100000, seed + 2);
	char buf[128];
	struct wisp_msg_info info;
	uint64_t id;
	switch (arg.how) {
	case BY_MESSAGE:
		wisp_send(arg.parent, 2, "", 0);      /* "about to hibernate" */
		wisp_hibernate();
		wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info);
		break;
	case BY_TIMER:
		wisp_send_after(wisp_self(), 9, "t", 1, 300 * MS, &id);
		wisp_send(arg.parent, 2, "", 0);
		wisp_hibernate();
		wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info);
		break;
	case BY_EXIT_SIGNAL:
		wisp_trap_exit(1);
		wisp_send(arg.parent, 2, "", 0);
		wisp_hibernate();
		wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info);
		if (info.kind != WISP_MSG_EXIT)
			report(arg.parent, "not an EXIT", 0);
		break;
	case BY_SLEEP:
		wisp_send(arg.parent, 2, "", 0);
		wisp_sleep(400 * MS);                /* auto-hibernates meanwhile */
		break;
	case BY_AUTO_RECEIVE:
		wisp_send(arg.parent, 2, "", 0);
		wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info);
		break;
	}
	int ok = same((unsigned char *)stack, sizeof stack, seed) &&
	         same(statics, sizeof statics, seed + 1) && same(heap, 100000, seed + 2);
	report(arg.parent, NAMES[arg.how], ok);
}

static void events(void)
{
	wisp_pid_t me = wisp_self();
	for (int how = BY_MESSAGE; how <= BY_AUTO_RECEIVE; how++) {
		struct arg a = { me, how };
		wisp_pid_t c = wisp_spawn(child, &a, sizeof a);
		char buf[128];
		struct wisp_msg_info info;
		uint64_t two = 2, one = 1;
		wisp_receive(&two, 1, WISP_INFINITY, buf, sizeof buf, &info);
		wisp_sleep(200 * MS);                /* well past --hibernate-after */
		if (how == BY_MESSAGE || how == BY_AUTO_RECEIVE)
			wisp_send(c, 5, "wake", 4);
		else if (how == BY_EXIT_SIGNAL)
			wisp_exit_signal(c, 42);
		wisp_receive(&one, 1, WISP_INFINITY, buf, sizeof buf - 1, &info);
		buf[info.len] = 0;
		printf("%s\n", buf);
	}
}

/* Many processes hibernating and waking in a loop. */
static void looper(const void *a, uint32_t len)
{
	(void)len;
	wisp_pid_t parent;
	memcpy(&parent, a, sizeof parent);
	volatile uint64_t local[64];
	for (int i = 0; i < 64; i++)
		local[i] = wisp_self() * 1000003u + (uint64_t)i;
	for (;;) {
		char buf[16];
		struct wisp_msg_info info;
		wisp_hibernate();
		if (wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info) != WISP_OK)
			return;
		int ok = 1;
		for (int i = 0; i < 64; i++)
			ok &= local[i] == wisp_self() * 1000003u + (uint64_t)i;
		wisp_send(parent, ok ? 1 : 3, "", 0);
	}
}

static void loop(int n, int rounds)
{
	wisp_pid_t me = wisp_self();
	wisp_pid_t *kids = malloc((size_t)n * sizeof *kids);
	for (int i = 0; i < n; i++)
		kids[i] = wisp_spawn(looper, &me, sizeof me);
	int bad = 0;
	for (int r = 0; r < rounds; r++) {
		for (int i = 0; i < n; i++)
			wisp_send(kids[i], 5, "", 0);
		for (int i = 0; i < n; i++) {
			struct wisp_msg_info info;
			char b[8];
			wisp_receive(NULL, 0, WISP_INFINITY, b, sizeof b, &info);
			bad += info.tag != 1;
		}
	}
	printf("loop: %d processes, %d rounds, %d corrupt\n", n, rounds, bad);
}

/* A trap right after waking names the function it happened in. */
__attribute__((noinline)) static void after_waking_breaks(int x)
{
	if (x > 0)
		__builtin_trap();
}

static void trapper(const void *a, uint32_t len)
{
	(void)a;
	(void)len;
	wisp_hibernate();
	after_waking_breaks(1);
}

static void trap_after_wake(void)
{
	uint64_t ref;
	wisp_pid_t c = wisp_spawn_monitor(trapper, NULL, 0, &ref);
	wisp_sleep(100 * MS);
	wisp_send(c, 5, "", 0);
	char buf[256];
	struct wisp_msg_info info;
	wisp_receive(&ref, 1, WISP_INFINITY, buf, sizeof buf - 1, &info);
	buf[info.len] = 0;
	printf("trap after wake: %s\n", buf + 8);
}

int main(int argc, char **argv)
{
	const char *c = argc > 1 ? argv[1] : "";
	if (!strcmp(c, "events"))
		events();
	else if (!strcmp(c, "loop"))
		loop(argc > 2 ? atoi(argv[2]) : 1000, argc > 3 ? atoi(argv[3]) : 5);
	else if (!strcmp(c, "trap"))
		trap_after_wake();
	else
		return 2;
	return 0;
}
