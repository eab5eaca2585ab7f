/*
 * skynet.c — the classic: a tree of processes, 10 children per node down
 * to LEAVES leaves (a power of 10); each leaf sends its number to its
 * parent, each node the sum of its children's. The result is
 * LEAVES*(LEAVES-1)/2.
 */
#include "procbench.h"

#define TAG_SUM 1

struct node_arg {
	wisp_pid_t parent;
	int64_t num, size;
};

static void node(const void *arg, uint32_t len)
{
	struct node_arg a;
	(void)len;
	memcpy(&a, arg, sizeof a);
	int64_t sum = a.num;
	if (a.size > 1) {
		struct node_arg c = { wisp_self(), 0, a.size / 10 };
		for (int i = 0; i < 10; i++) {
			c.num = a.num + i * c.size;
			if (!wisp_spawn(node, &c, sizeof c))
				pb_die("wisp_spawn", -1);
		}
		sum = 0;
		for (int i = 0; i < 10; i++) {
			struct wisp_msg_info info;
			int64_t x;
			pb_receive(NULL, 0, &x, sizeof x, &info);
			sum += x;
		}
	}
	wisp_send(a.parent, TAG_SUM, &sum, sizeof sum);
}

int main(int argc, char **argv)
{
	int64_t leaves = pb_arg(argc, argv, 1, "LEAVES");
	struct node_arg root = { wisp_self(), 0, leaves };
	struct wisp_msg_info info;
	int64_t sum;
	uint64_t t0 = pb_now_ns();
	if (!wisp_spawn(node, &root, sizeof root))
		pb_die("wisp_spawn", -1);
	pb_receive(NULL, 0, &sum, sizeof sum, &info);
	uint64_t t1 = pb_now_ns();
	printf("RESULT skynet_s=%.4f leaves=%" PRId64 " sum=%" PRId64 "\n",
	       (t1 - t0) / 1e9, leaves, sum);
	return 0;
}
