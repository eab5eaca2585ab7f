/*
 * tier.c — the tier swap: main, on the fast tier, spawns a process every
 * 100 ms that tells it which tier it runs (wisp_code_version(WISP_CODE_TIER)),
 * until one runs the optimized build made in the background meanwhile;
 * then it prints "optimized after N spawns; main on tier T" (main itself
 * goes on with the code it started with). "timeout" after 300 s.
 */
#include <stdio.h>

#include <wisp/guest.h>

static void report(const void *arg, uint32_t len)
{
	wisp_pid_t parent;
	if (len != sizeof parent)
		return;
	__builtin_memcpy(&parent, arg, sizeof parent);
	int32_t tier = wisp_code_version(WISP_CODE_TIER);
	wisp_send(parent, 5, &tier, sizeof tier);
}

int main(void)
{
	wisp_pid_t me = wisp_self();
	printf("main on tier %d\n", wisp_code_version(WISP_CODE_TIER));
	fflush(stdout);
	for (int n = 1; n <= 3000; n++) {
		wisp_spawn(report, &me, sizeof me);
		int32_t tier = -1;
		struct wisp_msg_info info;
		uint64_t tag = 5;
		if (wisp_receive(&tag, 1, 10000000000LL, &tier, sizeof tier, &info) != WISP_OK)
			return 2;
		if (tier == 1) {
			printf("optimized after %d spawns; main on tier %d\n", n,
			       wisp_code_version(WISP_CODE_TIER));
			return 0;
		}
		wisp_sleep(100000000);
	}
	printf("timeout\n");
	return 1;
}
