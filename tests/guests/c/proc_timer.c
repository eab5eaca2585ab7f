/*
 * proc_timer.c — sleep, send_after, cancel. Elapsed times are checked
 * against a lower bound only (the machine may be slow, never early).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <wisp/guest.h>

#define MS 1000000LL

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

static const char *yes(int b)
{
	return b ? "yes" : "no";
}

/* Sets a timer to main (arg) and ends before it fires. */
static void setter(const void *arg, uint32_t len)
{
	wisp_pid_t main;
	if (len != sizeof main)
		__builtin_trap();
	memcpy(&main, arg, sizeof main);
	uint64_t t;
	wisp_send_after(main, 77, "orphan", 6, 100 * MS, &t);
}

/* Sleeps while main's messages arrive, then reports how long it slept. */
static void sleeper(const void *arg, uint32_t len)
{
	wisp_pid_t main;
	if (len != sizeof main)
		__builtin_trap();
	memcpy(&main, arg, sizeof main);
	int64_t t0 = now_ns();
	wisp_sleep(150 * MS);
	int64_t el = now_ns() - t0;
	wisp_send(main, 88, &el, sizeof el);
}

int main(void)
{
	wisp_pid_t me = wisp_self();
	char buf[64];
	struct wisp_msg_info info;

	int64_t t0 = now_ns();
	wisp_sleep(50 * MS);
	printf("sleep 50 ms: elapsed >= 50 ms: %s\n", yes(now_ns() - t0 >= 50 * MS));
	wisp_sleep(0);
	wisp_sleep(-5);
	printf("sleep 0 and negative: returned\n");

	/* A message sent during a sleep does not end it. */
	uint64_t ref;
	wisp_pid_t s = wisp_spawn_monitor(sleeper, &me, sizeof me, &ref);
	for (int i = 0; i < 10; i++)
		CHECK(wisp_send(s, 1, "poke", 4));
	int64_t slept = 0;
	uint64_t t88 = 88;
	CHECK(wisp_receive(&t88, 1, WISP_INFINITY, &slept, sizeof slept, &info));
	printf("sleeping through messages: slept >= 150 ms: %s\n", yes(slept >= 150 * MS));
	char down[1024];
	CHECK(wisp_receive(&ref, 1, WISP_INFINITY, down, sizeof down, &info));

	uint64_t timer = 0;
	t0 = now_ns();
	int32_t rc = wisp_send_after(me, 42, "hello", 5, 100 * MS, &timer);
	printf("send_after: %d, timer id set: %s\n", rc, yes(timer != 0));
	uint64_t t42 = 42;
	rc = wisp_receive(&t42, 1, WISP_INFINITY, buf, sizeof buf, &info);
	int64_t el = now_ns() - t0;
	printf("fired: %d tag %llu %.*s from self: %s, after >= 100 ms: %s\n", rc,
	       (unsigned long long)info.tag, (int)info.len, buf, yes(info.from == me), yes(el >= 100 * MS));
	printf("cancel after firing: %d\n", wisp_cancel_timer(timer));

	uint64_t t2;
	CHECK(wisp_send_after(me, 43, "never", 5, 200 * MS, &t2));
	printf("cancel before firing: %d\n", wisp_cancel_timer(t2));
	printf("cancel twice: %d\n", wisp_cancel_timer(t2));
	rc = wisp_receive(NULL, 0, 400 * MS, buf, sizeof buf, &info);
	printf("after cancel, within 400 ms: %d\n", rc);
	printf("cancel unknown: %d\n", wisp_cancel_timer(987654321));

	/* Timers fire in deadline order, not creation order. */
	uint64_t ids[3];
	int64_t delays[3] = { 90 * MS, 30 * MS, 60 * MS };
	for (uint32_t i = 0; i < 3; i++)
		CHECK(wisp_send_after(me, 50 + i, &delays[i], sizeof delays[i], delays[i], &ids[i]));
	printf("order:");
	for (int i = 0; i < 3; i++) {
		CHECK(wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info));
		printf(" %llu", (unsigned long long)info.tag);
	}
	printf("\n");

	/* A zero delay fires at once. */
	CHECK(wisp_send_after(me, 60, NULL, 0, 0, &timer));
	rc = wisp_receive(NULL, 0, 2000 * MS, buf, sizeof buf, &info);
	printf("zero delay: %d tag %llu\n", rc, (unsigned long long)info.tag);

	/* A timer outlives the process that set it. */
	t0 = now_ns();
	wisp_spawn(setter, &me, sizeof me);
	rc = wisp_receive(NULL, 0, 5000 * MS, buf, sizeof buf, &info);
	printf("timer of a dead setter: %d tag %llu %.*s, after >= 100 ms: %s\n", rc,
	       (unsigned long long)info.tag, (int)info.len, buf, yes(now_ns() - t0 >= 100 * MS));

	/* A timer to a dead process is no error; many timers at once. */
	printf("send_after to dead: %d\n", wisp_send_after(s, 1, NULL, 0, 10 * MS, &timer));
	for (uint32_t i = 0; i < 1000; i++)
		CHECK(wisp_send_after(me, 1000 + i, &i, sizeof i, (int64_t)(i % 50) * MS, &timer));
	uint32_t got = 0, ok = 0;
	for (; got < 1000; got++) {
		uint32_t v;
		if (wisp_receive(NULL, 0, 5000 * MS, &v, sizeof v, &info) != WISP_OK)
			break;
		ok += info.tag == 1000 + v;
	}
	printf("1000 timers: %u fired, %u intact\n", got, ok);
	printf("mailbox: %d\n", wisp_receive(NULL, 0, 100 * MS, buf, sizeof buf, &info));
	return 0;
}
