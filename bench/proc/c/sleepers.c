/*
 * sleepers.c — the cost of sleeping processes: N processes each loop
 * wisp_sleep(100 ms) for D seconds, counting their wake-ups. The main
 * process spawns them, waits until all are up, prints READY, sends each the
 * go-ahead (D in ms), sums the counts they send back when their time is up,
 * prints RESULT and sleeps; the harness reads the CPU time of wisp's OS
 * process at READY and at RESULT and divides by the wake-ups.
 */
#include "procbench.h"

#define TAG_UP    1
#define TAG_GO    2   /* payload: milliseconds to keep sleeping */
#define TAG_COUNT 3   /* payload: wake-ups */

#define PERIOD_NS (100LL * 1000000LL)

static void sleeper(const void *arg, uint32_t len)
{
	wisp_pid_t parent = pb_word(arg);
	struct wisp_msg_info info;
	uint64_t go[] = { TAG_GO }, ms, wakeups = 0;
	(void)len;
	wisp_send(parent, TAG_UP, NULL, 0);
	pb_receive(go, 1, &ms, sizeof ms, &info);
	uint64_t deadline = pb_now_ns() + ms * 1000000u;
	while (pb_now_ns() < deadline) {
		wisp_sleep(PERIOD_NS);
		wakeups++;
	}
	wisp_send(parent, TAG_COUNT, &wakeups, sizeof wakeups);
	pb_receive(NULL, 0, NULL, 0, &info);   /* never comes: parked */
}

int main(int argc, char **argv)
{
	int64_t n = pb_arg(argc, argv, 1, "N SECONDS");
	int64_t secs = pb_arg(argc, argv, 2, "N SECONDS");
	wisp_pid_t self = wisp_self();
	wisp_pid_t *kids = malloc(sizeof *kids * (size_t)n);
	if (!kids)
		pb_die("malloc", -1);
	for (int64_t i = 0; i < n; i++)
		if (!(kids[i] = wisp_spawn(sleeper, &self, sizeof self)))
			pb_die("wisp_spawn", -1);
	uint64_t up[] = { TAG_UP }, count[] = { TAG_COUNT };
	struct wisp_msg_info info;
	for (int64_t i = 0; i < n; i++)
		pb_receive(up, 1, NULL, 0, &info);
	printf("READY n=%" PRId64 "\n", n);
	fflush(stdout);
	uint64_t ms = (uint64_t)secs * 1000u, total = 0, c;
	for (int64_t i = 0; i < n; i++) {
		int32_t rc = wisp_send(kids[i], TAG_GO, &ms, sizeof ms);
		if (rc != WISP_OK)
			pb_die("wisp_send", rc);
	}
	for (int64_t i = 0; i < n; i++) {
		pb_receive(count, 1, &c, sizeof c, &info);
		total += c;
	}
	printf("RESULT wakeups=%" PRIu64 " n=%" PRId64 " secs=%" PRId64 "\n", total, n, secs);
	fflush(stdout);
	for (;;)
		wisp_sleep(3600LL * 1000000000LL);
}
