/*
 * shutdown.c — wisp gets SIGTERM/SIGINT. argv[1]: "plain" sleeps until
 * stopped; "trap" traps exits, reports the shutdown signal it gets and
 * returns; "stubborn" traps exits and ignores them (stopped after the
 * grace period, or at once by a second signal).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <wisp/guest.h>

static void child(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	for (;;)
		wisp_sleep(1000000000);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "plain";
	if (strcmp(mode, "plain") != 0)
		wisp_trap_exit(1);
	wisp_spawn_link(child, NULL, 0);
	printf("up\n");
	fflush(stdout);
	for (;;) {
		char buf[256];
		struct wisp_msg_info info;
		if (wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info) != WISP_OK)
			continue;
		if (info.kind != WISP_MSG_EXIT)
			continue;
		struct wisp_exit_reason r;
		memcpy(&r, buf, sizeof r);
		if (r.kind != WISP_EXIT_SHUTDOWN)
			continue;     /* the child's own end */
		printf("shutdown: kind %u code %d: %.*s\n", r.kind, r.code,
		       (int)(info.len - sizeof r), buf + sizeof r);
		fflush(stdout);
		if (!strcmp(mode, "trap"))
			return 0;
	}
}
