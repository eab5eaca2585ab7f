/*
 * pingpong.c — round-trip latency: the main process sends a small message
 * (one 64-bit word) to a second process, which sends it back; N times.
 */
#include "procbench.h"

#define TAG_PING 1
#define TAG_PONG 2
#define TAG_STOP 3

static void pong(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	for (;;) {
		struct wisp_msg_info info;
		uint64_t x;
		pb_receive(NULL, 0, &x, sizeof x, &info);
		if (info.tag == TAG_STOP)
			return;
		wisp_send(info.from, TAG_PONG, &x, sizeof x);
	}
}

int main(int argc, char **argv)
{
	int64_t n = pb_arg(argc, argv, 1, "N");
	wisp_pid_t p = wisp_spawn(pong, NULL, 0);
	if (!p)
		pb_die("wisp_spawn", -1);
	uint64_t tags[] = { TAG_PONG };
	uint64_t t0 = pb_now_ns();
	for (uint64_t i = (uint64_t)n; i > 0; i--) {
		struct wisp_msg_info info;
		uint64_t x;
		int32_t rc = wisp_send(p, TAG_PING, &i, sizeof i);
		if (rc != WISP_OK)
			pb_die("wisp_send", rc);
		pb_receive(tags, 1, &x, sizeof x, &info);
		if (x != i)
			pb_die("pong reply", -1);
	}
	uint64_t t1 = pb_now_ns();
	wisp_send(p, TAG_STOP, NULL, 0);
	printf("RESULT pingpong_us=%.4f n=%" PRId64 "\n", (t1 - t0) / 1e3 / n, n);
	return 0;
}
