/*
 * ring.c — P processes in a ring, each forwarding a token (a countdown) to
 * the next; M hops in all. The node that receives 0 reports its index to
 * the main process: the token starts at node 0, so that is M mod P.
 */
#include "procbench.h"

#define TAG_NEXT  1   /* payload: {next pid, my index} */
#define TAG_TOKEN 2   /* payload: hops left */
#define TAG_DONE  3   /* payload: index of the node that saw 0 */
#define TAG_STOP  4

static void node(const void *arg, uint32_t len)
{
	wisp_pid_t main_pid = pb_word(arg), next;
	uint64_t setup[2], index, k;
	struct wisp_msg_info info;
	uint64_t next_tag[] = { TAG_NEXT };
	(void)len;
	pb_receive(next_tag, 1, setup, sizeof setup, &info);
	next = setup[0];
	index = setup[1];
	for (;;) {
		pb_receive(NULL, 0, &k, sizeof k, &info);
		if (info.tag == TAG_STOP)
			return;
		if (k == 0)
			wisp_send(main_pid, TAG_DONE, &index, sizeof index);
		else {
			k--;
			wisp_send(next, TAG_TOKEN, &k, sizeof k);
		}
	}
}

int main(int argc, char **argv)
{
	int64_t p = pb_arg(argc, argv, 1, "PROCS HOPS");
	int64_t m = pb_arg(argc, argv, 2, "PROCS HOPS");
	wisp_pid_t self = wisp_self();
	wisp_pid_t *pids = malloc(sizeof *pids * (size_t)p);
	if (!pids)
		pb_die("malloc", -1);
	for (int64_t i = 0; i < p; i++)
		if (!(pids[i] = wisp_spawn(node, &self, sizeof self)))
			pb_die("wisp_spawn", -1);
	for (int64_t i = 0; i < p; i++) {
		uint64_t setup[2] = { pids[(i + 1) % p], (uint64_t)i };
		int32_t rc = wisp_send(pids[i], TAG_NEXT, setup, sizeof setup);
		if (rc != WISP_OK)
			pb_die("wisp_send", rc);
	}
	uint64_t tags[] = { TAG_DONE }, k = (uint64_t)m, last;
	struct wisp_msg_info info;
	uint64_t t0 = pb_now_ns();
	wisp_send(pids[0], TAG_TOKEN, &k, sizeof k);
	pb_receive(tags, 1, &last, sizeof last, &info);
	uint64_t t1 = pb_now_ns();
	for (int64_t i = 0; i < p; i++)
		wisp_send(pids[i], TAG_STOP, NULL, 0);
	printf("RESULT ring_hop_us=%.4f procs=%" PRId64 " hops=%" PRId64 " last=%" PRIu64 "\n",
	       (t1 - t0) / 1e3 / m, p, m, last);
	return 0;
}
