/*
 * pingpong_idle.c — what bench/inspect_run.py lists: N idle processes
 * (each parked in receive, as bench/proc/c/idle.c's), then a ping-pong
 * pair that runs until stdin closes, reporting every WINDOW_MS
 *
 *     WINDOW round_trips max_round_trip_us
 *
 * so that the harness sees how the ping-pong goes while `wisp ps` lists
 * the N processes: a listing that paused schedulers would show as fewer
 * round trips and a long longest one in the windows it ran in.
 * "READY n=N" once the idle processes are up. argv: N.
 */
#include "procbench.h"

#include <poll.h>

#define TAG_UP 1
#define TAG_PING 2
#define TAG_PONG 3
#define WINDOW_MS 100

static void idle(const void *arg, uint32_t len)
{
	struct wisp_msg_info info;
	uint64_t buf;
	(void)len;
	wisp_send(pb_word(arg), TAG_UP, NULL, 0);
	pb_receive(NULL, 0, &buf, sizeof buf, &info);
}

static void pong(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	for (;;) {
		struct wisp_msg_info info;
		uint64_t x;
		pb_receive(NULL, 0, &x, sizeof x, &info);
		wisp_send(info.from, TAG_PONG, &x, sizeof x);
	}
}

/* Whether stdin has closed (the harness is done). */
static int stdin_closed(void)
{
	struct pollfd p = { .fd = 0, .events = POLLIN };
	return poll(&p, 1, 0) > 0;
}

int main(int argc, char **argv)
{
	int64_t n = pb_arg(argc, argv, 1, "N");
	wisp_pid_t self = wisp_self();
	for (int64_t i = 0; i < n; i++)
		if (!wisp_spawn(idle, &self, sizeof self))
			pb_die("wisp_spawn", -1);
	uint64_t up[] = { TAG_UP };
	for (int64_t i = 0; i < n; i++) {
		struct wisp_msg_info info;
		pb_receive(up, 1, NULL, 0, &info);
	}
	wisp_pid_t p = wisp_spawn(pong, NULL, 0);
	if (!p)
		pb_die("wisp_spawn", -1);
	printf("READY n=%" PRId64 "\n", n);
	fflush(stdout);
	uint64_t tags[] = { TAG_PONG };
	uint64_t start = pb_now_ns(), count = 0, worst = 0;
	for (uint64_t i = 1;; i++) {
		struct wisp_msg_info info;
		uint64_t x, t0 = pb_now_ns();
		wisp_send(p, TAG_PING, &i, sizeof i);
		pb_receive(tags, 1, &x, sizeof x, &info);
		uint64_t t1 = pb_now_ns();
		count++;
		if (t1 - t0 > worst)
			worst = t1 - t0;
		if (t1 - start >= WINDOW_MS * 1000000ull) {
			printf("WINDOW %" PRIu64 " %.1f\n", count, worst / 1e3);
			fflush(stdout);
			if (stdin_closed())
				return 0;
			start = t1;
			count = worst = 0;
		}
	}
}
