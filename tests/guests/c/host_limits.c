/*
 * host_limits.c — host memory a process causes is charged to it: a
 * mailbox flooded by a sender, timers aimed at a process, cancelled timers,
 * names. argv[1] names the case; run with a --max-memory limit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <wisp/guest.h>

#define MIB (1u << 20)

static void fail(const char *what, long v)
{
	printf("FAIL %s: %ld\n", what, v);
	exit(1);
}

/* A process that waits for a message nobody sends. */
static void sink(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	uint64_t never = 999;
	char b[8];
	struct wisp_msg_info info;
	wisp_receive(&never, 1, WISP_INFINITY, b, sizeof b, &info);
}

/* Wait for the DOWN of ref; print its reason kind and text. */
static void print_down(const char *label, uint64_t ref)
{
	char buf[512];
	struct wisp_msg_info info;
	int32_t rc = wisp_receive(&ref, 1, WISP_INFINITY, buf, sizeof buf - 1, &info);
	if (rc != WISP_OK)
		fail("receive DOWN", rc);
	struct wisp_exit_reason r;
	memcpy(&r, buf, sizeof r);
	buf[info.len] = 0;
	printf("%s: kind %u: %s\n", label, r.kind, buf + sizeof r);
}

static long cpu_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void spin_300ms(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	volatile unsigned x = 0;
	while (cpu_ms() < 300)
		for (int i = 0; i < 100000; i++)
			x += (unsigned)i;
	printf("spinner cpu ms: %ld (%u)\n", cpu_ms(), x & 1);
}

int main(int argc, char **argv)
{
	const char *c = argc > 1 ? argv[1] : "";
	if (!strcmp(c, "mailbox")) {
		/* 300 MiB at a process that never receives. */
		uint64_t ref;
		wisp_pid_t s = wisp_spawn_monitor(sink, NULL, 0, &ref);
		char *big = calloc(1, MIB);
		int sent = 0;
		for (int i = 0; i < 300; i++)
			if (wisp_send(s, 1, big, MIB) == WISP_OK)
				sent++;
		print_down("sink", ref);
		printf("sends answered: %d\n", sent);
		return 0;
	}
	if (!strcmp(c, "timers")) {
		/* 64 KiB timers due in an hour, aimed at a process. */
		uint64_t ref, id;
		wisp_pid_t s = wisp_spawn_monitor(sink, NULL, 0, &ref);
		char *buf = calloc(1, 64 * 1024);
		for (int i = 0; i < 2000; i++) {
			int32_t rc = wisp_send_after(s, 1, buf, 64 * 1024, 3600ll * 1000000000, &id);
			if (rc != WISP_OK)
				fail("send_after", rc);
		}
		print_down("sink", ref);
		/* Its timers went with it: cancelling the last one finds nothing. */
		printf("cancel after its end: %d\n", wisp_cancel_timer(id));
		return 0;
	}
	if (!strcmp(c, "cancel")) {
		/* 4000 MiB of cancelled timers: each payload is freed at once. */
		char *big = calloc(1, MIB);
		for (int i = 0; i < 4000; i++) {
			uint64_t id;
			int32_t rc = wisp_send_after(wisp_self(), 1, big, MIB, 3600ll * 1000000000, &id);
			if (rc != WISP_OK)
				fail("send_after", rc);
			if ((rc = wisp_cancel_timer(id)) != WISP_OK)
				fail("cancel", rc);
		}
		printf("cancelled 4000\n");
		return 0;
	}
	if (!strcmp(c, "names")) {
		char name[32];
		int i;
		int32_t rc = WISP_OK;
		for (i = 0; i < 2000000; i++) {
			int n = snprintf(name, sizeof name, "name-%d", i);
			if ((rc = wisp_register(name, (uint32_t)n, wisp_self())) != WISP_OK)
				break;
		}
		printf("register: %d after %s\n", rc, i > 1000 && i < 2000000 ? "some" : "none or all");
		/* Unregistering gives the room back. */
		for (int j = 0; j < 1000; j++) {
			int n = snprintf(name, sizeof name, "name-%d", j);
			if (wisp_unregister(name, (uint32_t)n) != WISP_OK)
				fail("unregister", j);
		}
		int n = snprintf(name, sizeof name, "again");
		printf("register again: %d\n", wisp_register(name, (uint32_t)n, wisp_self()));
		return 0;
	}
	if (!strcmp(c, "sendloop")) {
		/* Work done by the host for the guest: 1 MiB to itself and back,
		 * forever; its loop is short, the copying is not. */
		char *big = calloc(1, MIB);
		struct wisp_msg_info info;
		for (;;) {
			if (wisp_send(wisp_self(), 1, big, MIB) != WISP_OK)
				fail("send", 0);
			if (wisp_receive(NULL, 0, WISP_INFINITY, big, MIB, &info) != WISP_OK)
				fail("receive", 0);
		}
	}
	if (!strcmp(c, "cpuclock")) {
		/* A child spins for 300 ms of its own CPU time; the main process,
		 * which only waits for it, reads its own CPU clock: the child's
		 * time is not in it (the host's process clock would hold both). */
		uint64_t ref;
		wisp_spawn_monitor(spin_300ms, NULL, 0, &ref);
		print_down("spinner", ref);
		printf("main cpu ms: %ld\n", cpu_ms());
		return 0;
	}
	fail("unknown case", 0);
	return 1;
}
