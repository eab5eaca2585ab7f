/*
 * proc_registry.c — the name registry: register/whereis/unregister, taken
 * names, name lengths, dead processes' names vanishing, registering a dead
 * process. Prints one line per check.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wisp/guest.h>

enum { T_READY = 1, T_GO, T_RESULT };

static void fail(const char *what, long v)
{
	printf("FAIL %s: %ld\n", what, v);
	exit(1);
}

#define CHECK(expr) do { int32_t rc_ = (expr); if (rc_ != WISP_OK) fail(#expr, rc_); } while (0)

static const char *who(wisp_pid_t pid, wisp_pid_t me, wisp_pid_t other)
{
	return pid == 0 ? "none" : pid == me ? "main" : pid == other ? "worker" : "someone else";
}

/* Registers itself as "worker" and "worker-2", tries to take "alpha" (held
 * by main) and reports the result; then waits for T_GO and ends. */
static void worker(const void *arg, uint32_t len)
{
	wisp_pid_t main;
	if (len != sizeof main)
		__builtin_trap();
	memcpy(&main, arg, sizeof main);
	wisp_pid_t me = wisp_self();
	int32_t r[4];
	r[0] = wisp_register_name("worker", me);
	r[1] = wisp_register_name("worker-2", me);
	r[2] = wisp_register_name("alpha", me);
	r[3] = wisp_whereis_name("alpha") == main;
	wisp_send(main, T_READY, r, sizeof r);
	char buf[8];
	struct wisp_msg_info info;
	uint64_t go = T_GO;
	wisp_receive(&go, 1, WISP_INFINITY, buf, sizeof buf, &info);
}

static void quick(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
}

int main(void)
{
	wisp_pid_t me = wisp_self(), pid = 12345;
	printf("whereis unknown: %d pid %llu\n", wisp_whereis("nobody", 6, &pid),
	       (unsigned long long)wisp_whereis_name("nobody"));
	printf("register alpha: %d\n", wisp_register_name("alpha", me));
	printf("whereis alpha: %s\n", who(wisp_whereis_name("alpha"), me, 0));
	printf("register alpha again: %d\n", wisp_register_name("alpha", me));
	printf("register beta too: %d\n", wisp_register_name("beta", me));
	printf("whereis beta: %s\n", who(wisp_whereis_name("beta"), me, 0));
	int32_t rc = wisp_register("a\0b", 3, me);
	printf("names are bytes: %d %d\n", rc, wisp_whereis("a\0b", 3, &pid));
	printf("prefix is another name: %s\n", who(wisp_whereis_name("a"), me, 0));

	/* Lengths: 1..255. */
	char name[300];
	memset(name, 'n', sizeof name);
	printf("empty name: %d %d\n", wisp_register(name, 0, me), wisp_whereis(name, 0, &pid));
	printf("255 bytes: %d\n", wisp_register(name, 255, me));
	printf("256 bytes: %d %d\n", wisp_register(name, 256, me), wisp_whereis(name, 256, &pid));
	printf("unregister 255: %d\n", wisp_unregister(name, 255));

	/* Another process sees the same registry. */
	uint64_t ref;
	wisp_pid_t w = wisp_spawn_monitor(worker, &me, sizeof me, &ref);
	int32_t r[4];
	struct wisp_msg_info info;
	uint64_t ready = T_READY;
	CHECK(wisp_receive(&ready, 1, WISP_INFINITY, r, sizeof r, &info));
	printf("worker: register %d %d, take alpha %d, sees main as alpha %d\n", r[0], r[1], r[2], r[3]);
	printf("whereis worker: %s\n", who(wisp_whereis_name("worker"), me, w));
	printf("whereis worker-2: %s\n", who(wisp_whereis_name("worker-2"), me, w));
	CHECK(wisp_send(w, T_GO, NULL, 0));
	char buf[1024];
	CHECK(wisp_receive(&ref, 1, WISP_INFINITY, buf, sizeof buf, &info));
	printf("after worker's DOWN: worker %s, worker-2 %s\n", who(wisp_whereis_name("worker"), me, w),
	       who(wisp_whereis_name("worker-2"), me, w));
	printf("worker's name is free again: %d\n", wisp_register_name("worker", me));

	/* Registering a dead or invalid process fails. */
	wisp_pid_t dead = wisp_spawn_monitor(quick, NULL, 0, &ref);
	CHECK(wisp_receive(&ref, 1, WISP_INFINITY, buf, sizeof buf, &info));
	printf("register dead: %d\n", wisp_register_name("ghost", dead));
	printf("register pid 0: %d\n", wisp_register_name("ghost", 0));
	printf("whereis ghost: %s\n", who(wisp_whereis_name("ghost"), me, 0));

	printf("unregister alpha: %d\n", wisp_unregister("alpha", 5));
	printf("whereis alpha: %d %s\n", wisp_whereis("alpha", 5, &pid), who(wisp_whereis_name("alpha"), me, 0));
	printf("unregister alpha again: %d\n", wisp_unregister("alpha", 5));
	printf("beta still: %s\n", who(wisp_whereis_name("beta"), me, 0));
	printf("register alpha once more: %d\n", wisp_register_name("alpha", me));
	return 0;
}
