/*
 * metrics_load.c — work whose figures tests/e2e/test_metrics.py checks
 * against what the run's metrics (and `wisp stats`) say. argv[1] names
 * the case; each prints one line when its work is done, then waits for a
 * message that never comes (the test reads the figures, then stops it).
 *
 *   crash N T K Q   spawn N children, each monitored; the first T trap
 *                   (unreachable), the others return. Once every DOWN is
 *                   in: K messages to a child that has ended (dropped:
 *                   no such process), and Q messages of 1000 bytes to a
 *                   sink that never receives (queued). Prints
 *                   "done spawned=N trapped=T dropped=K queued=Q".
 *   idle N          N children blocked in receive; "ready N".
 *   sockets         a listening socket, a connection to it and the
 *                   accepted end: "sockets 3".
 *   churn           for ever: spawn a child that loops a while and
 *                   returns, wait for it, again ("churning" first).
 *   dash            for the dashboard (tests/e2e/test_dashboard.py): a
 *                   sink registered as "<script>alert(1)</script>", then
 *                   a monitored child that registers itself as
 *                   "<img src=x onerror=alert(2)>" and traps; once its
 *                   DOWN is in, "dash sink=PID main=PID worker=PID" (hex).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wisp/guest.h>

enum { T_NEVER = 1, T_JUNK, T_BLOB };

static void fail(const char *what, long v)
{
	printf("FAIL %s: %ld\n", what, v);
	exit(1);
}

static void wait_for_ever(void)
{
	uint64_t tag = T_NEVER;
	struct wisp_msg_info info;
	char b[8];
	wisp_receive(&tag, 1, WISP_INFINITY, b, sizeof b, &info);
	fail("a message came", 0);
}

static void child(const void *arg, uint32_t len)
{
	uint32_t trap;
	if (len != sizeof trap)
		fail("child arg", len);
	memcpy(&trap, arg, sizeof trap);
	if (trap)
		__builtin_trap();
}

static void sink(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	wait_for_ever();
}

static void crash(uint32_t n, uint32_t t, uint32_t k, uint32_t q)
{
	uint64_t *refs = malloc(n * sizeof *refs);
	wisp_pid_t last = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t trap = i < t;
		last = wisp_spawn_monitor(child, &trap, sizeof trap, &refs[i]);
		if (last == 0)
			fail("spawn", i);
	}
	uint32_t trapped = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct wisp_exit_reason r;
		if (wisp_wait_down(refs[i], &r, NULL, 0) != WISP_OK)
			fail("wait_down", i);
		trapped += r.kind == WISP_EXIT_TRAP;
	}
	if (trapped != t)
		fail("trapped", trapped);
	for (uint32_t i = 0; i < k; i++)
		if (wisp_send(last, T_JUNK, &i, sizeof i) != WISP_OK)
			fail("send to the dead", i);
	wisp_pid_t s = wisp_spawn(sink, NULL, 0);
	static char blob[1000];
	for (uint32_t i = 0; i < q; i++)
		if (wisp_send(s, T_BLOB, blob, sizeof blob) != WISP_OK)
			fail("send to the sink", i);
	printf("done spawned=%u trapped=%u dropped=%u queued=%u\n", n, t, k, q);
	fflush(stdout);
	wait_for_ever();
}

static void idle(uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (wisp_spawn(sink, NULL, 0) == 0)
			fail("spawn", i);
	printf("ready %u\n", n);
	fflush(stdout);
	wait_for_ever();
}

static void sockets(void)
{
	int32_t l, c, a;
	const char *host = "127.0.0.1";
	if (wisp_tcp_listen(host, 9, 0, 16, &l) != WISP_OK)
		fail("listen", 0);
	char addr[64];
	uint32_t alen = 0, port = 0;
	if (wisp_net_local_addr(l, addr, sizeof addr, &alen, &port) != WISP_OK)
		fail("local_addr", 0);
	if (wisp_tcp_connect(host, 9, port, WISP_INFINITY, &c) != WISP_OK)
		fail("connect", 0);
	if (wisp_tcp_accept(l, WISP_INFINITY, &a) != WISP_OK)
		fail("accept", 0);
	printf("sockets 3\n");
	fflush(stdout);
	wait_for_ever();
}

static void worker(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	volatile uint64_t x = 0;
	for (uint32_t i = 0; i < 200000; i++)
		x = x + i;
	if (x == 1)
		fail("sum", 1);
}

static void churn(void)
{
	printf("churning\n");
	fflush(stdout);
	for (;;) {
		uint64_t ref;
		if (wisp_spawn_monitor(worker, NULL, 0, &ref) == 0)
			fail("spawn", 0);
		struct wisp_exit_reason r;
		wisp_wait_down(ref, &r, NULL, 0);
	}
}

/* Names no page may show as markup. */
#define DASH_NAME "<script>alert(1)</script>"
#define DASH_WORKER "<img src=x onerror=alert(2)>"

static void dash_worker(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	if (wisp_register_name(DASH_WORKER, wisp_self()) != WISP_OK)
		fail("register the worker", 0);
	__builtin_trap();
}

static void dash(void)
{
	wisp_pid_t s = wisp_spawn(sink, NULL, 0);
	if (s == 0 || wisp_register_name(DASH_NAME, s) != WISP_OK)
		fail("register", 0);
	uint64_t ref;
	wisp_pid_t w = wisp_spawn_monitor(dash_worker, NULL, 0, &ref);
	if (w == 0)
		fail("spawn", 0);
	struct wisp_exit_reason r;
	if (wisp_wait_down(ref, &r, NULL, 0) != WISP_OK || r.kind != WISP_EXIT_TRAP)
		fail("trap", 0);
	printf("dash sink=%llx main=%llx worker=%llx\n", (unsigned long long)s,
	       (unsigned long long)wisp_self(), (unsigned long long)w);
	fflush(stdout);
	wait_for_ever();
}

int main(int argc, char **argv)
{
	if (argc >= 6 && strcmp(argv[1], "crash") == 0)
		crash((uint32_t)atoi(argv[2]), (uint32_t)atoi(argv[3]), (uint32_t)atoi(argv[4]),
		      (uint32_t)atoi(argv[5]));
	else if (argc >= 3 && strcmp(argv[1], "idle") == 0)
		idle((uint32_t)atoi(argv[2]));
	else if (argc >= 2 && strcmp(argv[1], "sockets") == 0)
		sockets();
	else if (argc >= 2 && strcmp(argv[1], "churn") == 0)
		churn();
	else if (argc >= 2 && strcmp(argv[1], "dash") == 0)
		dash();
	fail("usage", argc);
	return 1;
}
