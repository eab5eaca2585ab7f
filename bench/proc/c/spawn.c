/*
 * spawn.c — spawn+exit throughput: spawn N processes (with a monitor) that
 * end at once, then wait for all N DOWN messages; µs per spawn+exit.
 */
#include "procbench.h"

static void child(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
}

int main(int argc, char **argv)
{
	int64_t n = pb_arg(argc, argv, 1, "N");
	uint64_t t0 = pb_now_ns();
	for (int64_t i = 0; i < n; i++) {
		uint64_t ref;
		if (!wisp_spawn_monitor(child, NULL, 0, &ref))
			pb_die("wisp_spawn_monitor", -1);
	}
	for (int64_t i = 0; i < n; i++) {
		struct wisp_exit_reason why;
		struct wisp_msg_info info;
		char buf[256];
		pb_receive(NULL, 0, buf, sizeof buf, &info);
		memcpy(&why, buf, sizeof why);
		if (info.kind != WISP_MSG_DOWN || why.kind != WISP_EXIT_NORMAL)
			pb_die("child exit (kind/reason)", (int32_t)(info.kind * 100 + why.kind));
	}
	uint64_t t1 = pb_now_ns();
	printf("RESULT spawn_us=%.4f n=%" PRId64 "\n", (t1 - t0) / 1e3 / n, n);
	return 0;
}
