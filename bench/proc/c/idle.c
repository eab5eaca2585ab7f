/*
 * idle.c — memory per idle process: spawn N processes that tell the parent
 * they are up and then block in receive; when all are up, print READY and
 * sleep. The harness reads the RSS of wisp's OS process then, subtracts
 * that of a run with N = 0 (argv[1] may be 0 here) and kills it. On the
 * way, `PROGRESS spawned=K` at every tenth of N: a run stopped early (the
 * harness's memory guard) or failing says how far it got.
 */
#include "procbench.h"

#define TAG_UP 1

static void idle(const void *arg, uint32_t len)
{
	struct wisp_msg_info info;
	uint64_t buf;
	(void)len;
	wisp_send(pb_word(arg), TAG_UP, NULL, 0);
	pb_receive(NULL, 0, &buf, sizeof buf, &info);
}

int main(int argc, char **argv)
{
	char *end = NULL;
	long long n = argc > 1 ? strtoll(argv[1], &end, 10) : -1;
	if (n < 0 || *end) {
		fprintf(stderr, "usage: %s N (N >= 0)\n", argv[0]);
		return 2;
	}
	wisp_pid_t self = wisp_self();
	long long every = n / 10 > 0 ? n / 10 : 1;
	for (long long i = 1; i <= n; i++) {
		if (!wisp_spawn(idle, &self, sizeof self))
			pb_die("wisp_spawn", -1);
		if (i % every == 0 && i < n) {
			printf("PROGRESS spawned=%lld\n", i);
			fflush(stdout);
		}
	}
	uint64_t tags[] = { TAG_UP };
	for (long long i = 0; i < n; i++) {
		struct wisp_msg_info info;
		pb_receive(tags, 1, NULL, 0, &info);
	}
	printf("READY n=%lld\n", n);
	fflush(stdout);
	for (;;)
		wisp_sleep(3600LL * 1000000000LL);
}
