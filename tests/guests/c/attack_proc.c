/*
 * attack_proc.c — hostile uses of processes, links, monitors and
 * hibernation (tests/e2e/test_attacks_round2.py).
 *
 * Cases (argv[1]):
 *   hibernate_loop   dirties 32 MiB of memory, then hibernates in a loop
 *                    (woken each time by a message it sent itself),
 *                    printing the round on stderr: freezing and thawing 32
 *                    MiB was host work nobody was charged for.
 *   flood KIND N     N calls that leave something in the caller's own
 *                    mailbox or link sets: KIND is self (monitor itself:
 *                    DOWN NOPROC), dead (monitor a dead pid), link (link a
 *                    dead pid while trapping exits: EXIT NOPROC), exitself
 *                    (exit_signal to itself while trapping exits) or live
 *                    (monitor a live process: both monitor sets grow;
 *                    13.5 MiB of its memory grown first, so that it is
 *                    the caller that meets the limit).
 *                    Prints "done N", or the first error code and where.
 *   scan             20,000 messages to itself, then receives with 4096
 *                    tags none of them has, without waiting, in a loop,
 *                    printing the round on stderr: every call compared 82M
 *                    tags, and none was charged.
 *   forge_reply      a process that has seen a monitor ref sends the
 *                    main process "forged" messages tagged with the next
 *                    1,000 refs a counter would give; the main process
 *                    then makes a request (answered after 50 ms) and
 *                    prints the reply it got: "reply real" if refs cannot
 *                    be guessed.
 *   cancel_others    another process sets a timer (a minute, to itself)
 *                    and says so; the main process sets one of its own and
 *                    tries to cancel the 1,000 ids on either side of its
 *                    own on every scheduler (1,024), as a counter would
 *                    give them: prints how many it cancelled that were
 *                    not its own ("cancelled 0" if timer ids cannot be
 *                    guessed).
 *   starve           4 processes compute forever; the main process traps
 *                    exits, says "ready" and waits for the SHUTDOWN exit
 *                    signal SIGTERM sends it (woken from the embedder's
 *                    thread, through the global run queue, which busy local
 *                    queues starved).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wisp/guest.h>

static void idle(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	struct wisp_msg_info info;
	char b[8];
	wisp_receive(NULL, 0, WISP_INFINITY, b, sizeof b, &info);
}

static int hibernate_loop(void)
{
	size_t len = 32u << 20;
	volatile unsigned char *mem = malloc(len);   /* stores the compiler keeps */
	if (mem == NULL)
		return 2;
	/* A byte in every 64, different everywhere: no page is like the
	 * image, and each is cheap to dirty. */
	uint32_t x = 12345;
	for (size_t i = 0; i < len; i += 64) {
		x = x * 1103515245u + 12345u;
		mem[i] = (unsigned char)(x >> 24) | 1;
	}
	for (unsigned round = 1;; round++) {
		uint64_t timer;
		char b[8];
		struct wisp_msg_info info;
		if (wisp_send_after(wisp_self(), 1, NULL, 0, 0, &timer) != WISP_OK)
			return 3;
		wisp_hibernate();
		if (wisp_receive(NULL, 0, WISP_INFINITY, b, sizeof b, &info) != WISP_OK)
			return 4;
		fprintf(stderr, "%u\n", round);
	}
}

static int flood(const char *kind, long n)
{
	uint64_t ref;
	wisp_pid_t target = 0;
	if (!strcmp(kind, "live")) {
		target = wisp_spawn(idle, NULL, 0);
		/* The caller is to reach its limit first: 13.5 MiB of its 16 go
		 * to its linear memory. Else the target could: the monitor
		 * requests waiting in its mailbox are its memory, and when its
		 * scheduler lags (a loaded machine) they outgrow the caller's
		 * set, the target dies of its limit, and its DOWNs, one per
		 * monitor, kill the caller of its own. */
		if (__builtin_wasm_memory_grow(0, 216) == (size_t)-1)
			return 3;
	}
	if (!strcmp(kind, "link") || !strcmp(kind, "exitself"))
		wisp_trap_exit(1);
	for (long i = 0; i < n; i++) {
		int rc;
		if (!strcmp(kind, "self"))
			rc = wisp_monitor(wisp_self(), &ref);
		else if (!strcmp(kind, "dead"))
			rc = wisp_monitor(12345, &ref);
		else if (!strcmp(kind, "live"))
			rc = wisp_monitor(target, &ref);
		else if (!strcmp(kind, "link"))
			rc = wisp_link(12345);
		else if (!strcmp(kind, "exitself"))
			rc = wisp_exit_signal(wisp_self(), 1);
		else
			return 2;
		if (rc != WISP_OK) {
			printf("error %d after %ld\n", rc, i);
			return 0;
		}
	}
	printf("done %ld\n", n);
	return 0;
}

static int scan(void)
{
	static uint64_t tags[4096];
	struct wisp_msg_info info;
	char b[8];
	for (int i = 0; i < 20000; i++)
		if (wisp_send(wisp_self(), 1, NULL, 0) != WISP_OK)
			return 2;
	for (int i = 0; i < 4096; i++)
		tags[i] = 1000 + (uint64_t)i;
	for (unsigned round = 1;; round++) {
		if (wisp_receive(tags, 4096, WISP_NOWAIT, b, sizeof b, &info) != WISP_ETIMEDOUT)
			return 3;
		fprintf(stderr, "%u\n", round);
	}
}

static void spin(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	for (volatile unsigned i = 0;; i++)
		;
}

static int starve(void)
{
	struct wisp_msg_info info;
	char b[64];
	struct wisp_exit_reason r = { 0, 0 };
	wisp_trap_exit(1);
	for (int i = 0; i < 4; i++)
		if (wisp_spawn(spin, NULL, 0) == 0)
			return 2;
	printf("ready\n");
	fflush(stdout);
	if (wisp_receive(NULL, 0, WISP_INFINITY, b, sizeof b, &info) != WISP_OK)
		return 3;
	if (info.len >= sizeof r)
		memcpy(&r, b, sizeof r);
	printf("got kind %u reason %u\n", info.kind, r.kind);
	return 0;
}

/* forge_reply: a server that answers a request after 50 ms. */
static void slow_server(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	struct wisp_msg_info info;
	char b[8];
	if (wisp_receive(NULL, 0, WISP_INFINITY, b, sizeof b, &info) != WISP_OK)
		return;
	wisp_sleep(50000000);
	wisp_send(info.from, info.ref, "real", 4);
}

/* forge_reply: learns what refs look like now (a monitor's), and sends
 * the requester (arg: its pid) a "forged" message tagged with each of the
 * next 1,000 refs a counter would give, then "go" (tag 5). */
static void forger(const void *arg, uint32_t len)
{
	wisp_pid_t victim = 0, server = wisp_spawn(idle, NULL, 0);
	if (len == sizeof victim)
		memcpy(&victim, arg, sizeof victim);
	uint64_t ref;
	if (wisp_monitor(server, &ref) != WISP_OK)
		return;
	for (uint64_t k = 1; k <= 1000; k++)
		wisp_send(victim, ref + k, "forged", 6);
	wisp_send(victim, 5, "", 0);
	wisp_kill(server);
}

/* A request must take only its own reply: print "reply real" (or what
 * came instead). */
static int forge_reply(void)
{
	struct wisp_msg_info info;
	char b[16];
	wisp_pid_t me = wisp_self();
	wisp_pid_t server = wisp_spawn(slow_server, NULL, 0);
	if (wisp_spawn(forger, &me, sizeof me) == 0 || server == 0)
		return 2;
	uint64_t go = 5;
	if (wisp_receive(&go, 1, 10000000000LL, b, sizeof b, &info) != WISP_OK)
		return 3;
	int32_t rc = wisp_request(server, 1, "", 0, 10000000000LL, b, sizeof b, &info);
	printf("reply %.*s (rc %d)\n", rc == WISP_OK ? (int)info.len : 0, b, rc);
	return 0;
}

/* cancel_others: sets a timer to itself (a minute away), tells the main
 * process (arg: its pid, tag 6), and waits for it. */
static void timer_owner(const void *arg, uint32_t len)
{
	wisp_pid_t main_pid = 0;
	if (len == sizeof main_pid)
		memcpy(&main_pid, arg, sizeof main_pid);
	uint64_t t;
	if (wisp_send_after(wisp_self(), 7, "mine", 4, 60000000000LL, &t) != WISP_OK)
		return;
	wisp_send(main_pid, 6, "", 0);
	char b[8];
	struct wisp_msg_info info;
	wisp_receive(NULL, 0, WISP_INFINITY, b, sizeof b, &info);
}

static int cancel_others(void)
{
	wisp_pid_t me = wisp_self();
	if (wisp_spawn(timer_owner, &me, sizeof me) == 0)
		return 2;
	uint64_t ready = 6, mine;
	struct wisp_msg_info info;
	char b[8];
	if (wisp_receive(&ready, 1, 10000000000LL, b, sizeof b, &info) != WISP_OK)
		return 3;
	if (wisp_send_after(me, 8, "", 0, 60000000000LL, &mine) != WISP_OK)
		return 4;
	int cancelled = 0;
	uint64_t low = mine & ~((1ull << 10) - 1);
	for (int64_t k = -1000; k <= 1000; k++) {
		for (uint64_t sid = 0; sid < 1024; sid++) {
			uint64_t id = (uint64_t)((int64_t)low + k * (1 << 10)) | sid;
			if (id != mine && wisp_cancel_timer(id) == WISP_OK)
				cancelled++;
		}
	}
	printf("cancelled %d\n", cancelled);
	return 0;
}

int main(int argc, char **argv)
{
	const char *c = argc > 1 ? argv[1] : "";
	if (!strcmp(c, "starve"))
		return starve();
	if (!strcmp(c, "scan"))
		return scan();
	if (!strcmp(c, "hibernate_loop"))
		return hibernate_loop();
	if (!strcmp(c, "forge_reply"))
		return forge_reply();
	if (!strcmp(c, "cancel_others"))
		return cancel_others();
	if (!strcmp(c, "flood") && argc > 3)
		return flood(argv[2], atol(argv[3]));
	fprintf(stderr, "unknown case\n");
	return 1;
}
