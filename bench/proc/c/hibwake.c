/*
 * hibwake.c — the cost of waking a hibernated process: K processes that
 * each, in a loop, hibernate (wisp_hibernate) and then answer one message;
 * the main process waits until all have had time to hibernate, then sends
 * each a message and waits for its reply, one after the other: µs per
 * wake + round trip (+ hibernating again). The same with K processes that
 * wait in a plain receive instead is the baseline, in the same run. PASSES
 * passes over each group; the best pass counts.
 */
#include "procbench.h"

#define TAG_UP   1
#define TAG_PING 2
#define TAG_PONG 3
#define TAG_STOP 4

#define SETTLE_NS (200LL * 1000000LL)   /* time for K processes to hibernate */

struct child_arg {
	wisp_pid_t parent;
	uint64_t hibernate;
};

static void child(const void *arg, uint32_t len)
{
	struct child_arg a;
	struct wisp_msg_info info;
	uint64_t x;
	(void)len;
	memcpy(&a, arg, sizeof a);
	wisp_send(a.parent, TAG_UP, NULL, 0);
	for (;;) {
		if (a.hibernate)
			wisp_hibernate();
		pb_receive(NULL, 0, &x, sizeof x, &info);
		if (info.tag == TAG_STOP)
			return;
		wisp_send(a.parent, TAG_PONG, &x, sizeof x);
	}
}

/* Best µs per round trip over `passes` passes through the k processes. */
static double passes_us(wisp_pid_t *kids, int64_t k, int64_t passes)
{
	uint64_t pong[] = { TAG_PONG };
	double best = 1e300;
	for (int64_t p = 0; p < passes; p++) {
		wisp_sleep(SETTLE_NS);
		uint64_t t0 = pb_now_ns();
		for (int64_t i = 0; i < k; i++) {
			struct wisp_msg_info info;
			uint64_t x = (uint64_t)i, y;
			int32_t rc = wisp_send(kids[i], TAG_PING, &x, sizeof x);
			if (rc != WISP_OK)
				pb_die("wisp_send", rc);
			pb_receive(pong, 1, &y, sizeof y, &info);
			if (y != x)
				pb_die("pong reply", -1);
		}
		double us = (pb_now_ns() - t0) / 1e3 / k;
		if (us < best)
			best = us;
	}
	return best;
}

static double group_us(int64_t k, int64_t passes, uint64_t hibernate)
{
	struct child_arg a = { wisp_self(), hibernate };
	uint64_t up[] = { TAG_UP };
	wisp_pid_t *kids = malloc(sizeof *kids * (size_t)k);
	if (!kids)
		pb_die("malloc", -1);
	for (int64_t i = 0; i < k; i++)
		if (!(kids[i] = wisp_spawn(child, &a, sizeof a)))
			pb_die("wisp_spawn", -1);
	for (int64_t i = 0; i < k; i++) {
		struct wisp_msg_info info;
		pb_receive(up, 1, NULL, 0, &info);
	}
	double us = passes_us(kids, k, passes);
	for (int64_t i = 0; i < k; i++)
		wisp_send(kids[i], TAG_STOP, NULL, 0);
	free(kids);
	return us;
}

int main(int argc, char **argv)
{
	int64_t k = pb_arg(argc, argv, 1, "K PASSES");
	int64_t passes = pb_arg(argc, argv, 2, "K PASSES");
	double awake = group_us(k, passes, 0);
	double hib = group_us(k, passes, 1);
	printf("RESULT awake_us=%.4f hib_us=%.4f k=%" PRId64 " passes=%" PRId64 "\n",
	       awake, hib, k, passes);
	return 0;
}
