/*
 * stdin_readers.c — processes blocked reading stdin must not hold their
 * scheduler: two readers wait on a stdin that stays silent while the main
 * process keeps sleeping and waking; then a line arrives for one reader.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <wisp/guest.h>

static void reader(const void *arg, uint32_t len)
{
	(void)len;
	wisp_pid_t main_pid;
	memcpy(&main_pid, arg, sizeof main_pid);
	char buf[64];
	ssize_t n = read(0, buf, sizeof buf);
	wisp_send(main_pid, 2, buf, n > 0 ? (uint32_t)n : 0);
}

int main(void)
{
	wisp_pid_t me = wisp_self();
	wisp_spawn(reader, &me, sizeof me);
	wisp_spawn(reader, &me, sizeof me);
	for (int i = 0; i < 20; i++)
		wisp_sleep(10 * 1000000LL);
	printf("ticks ok\n");
	fflush(stdout);
	char buf[64];
	struct wisp_msg_info info;
	uint64_t tag = 2;
	if (wisp_receive(&tag, 1, WISP_INFINITY, buf, sizeof buf, &info) != WISP_OK)
		return 1;
	printf("a reader got: %.*s", (int)info.len, buf);
	return 0;
}
