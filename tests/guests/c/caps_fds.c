/*
 * caps_fds — a guest that opens files until it cannot, then checks that
 * others (and it, once it lets go) still can (tests/e2e/test_caps.py).
 * /data/f is a file the test made; listening needs --allow-listen.
 *
 *   caps_fds limit   the main process hits its own fd limit (EMFILE); a
 *                    child still opens and listens; after closing one file
 *                    the main process listens too
 *   caps_fds narrow  a child spawned with wisp_caps_limit(FDS, 10) hits 10
 *   caps_fds host    the main process has no useful fd limit: the host's
 *                    reserve stops it (ENFILE); a new process still runs,
 *                    talks and reports, and gets ENFILE for a new file
 *                    until the hog lets go
 *
 * Output: "name: value" lines; errors by name.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wisp/guest.h>

#define MAX_HELD 100000
#define L(s) s, (uint32_t)strlen(s)

static const char *ename(int e)
{
	switch (e) {
	case 0: return "ok";
	case EMFILE: return "EMFILE";
	case ENFILE: return "ENFILE";
	case ENOTCAPABLE: return "ENOTCAPABLE";
	default: return "other";
	}
}

static int held[MAX_HELD];

/* Open /data/f until it fails; the count, and the errno in *err. */
static int hog(int *err)
{
	int n = 0;
	while (n < MAX_HELD) {
		int fd = open("/data/f", O_RDONLY);
		if (fd < 0) {
			*err = errno;
			break;
		}
		held[n++] = fd;
	}
	return n;
}

static int open_one(void)
{
	int fd = open("/data/f", O_RDONLY);
	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

/* wisp_net answers WASI errno numbers: EMFILE 33, ENFILE 41. */
static const char *listen_result(void)
{
	int32_t fd;
	int32_t rc = wisp_tcp_listen(L("127.0.0.1"), 0, 4, &fd);
	if (rc == 0) {
		close(fd);
		return "ok";
	}
	return rc == 33 ? "EMFILE" : rc == 41 ? "ENFILE" : "other";
}

static void other_process(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	printf("other process open: %s\n", ename(open_one()));
	printf("other process listen: %s\n", listen_result());
	fflush(stdout);
}

static void narrowed(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	int err = 0;
	int n = hog(&err);
	/* stdio 0-2 and /data take four of its ten numbers */
	printf("narrowed child opened %d: %s\n", n, ename(err));
	fflush(stdout);
}

static void spawn_and_wait(wisp_fn fn, int32_t caps)
{
	struct wisp_spawned s;
	int rc = caps < 0
	         ? wisp_spawn_raw((uint32_t)(uintptr_t)fn, NULL, 0,
	                          WISP_SPAWN_MONITOR, &s)
	         : wisp_spawn_with(caps, (uint32_t)(uintptr_t)fn, NULL, 0,
	                           WISP_SPAWN_MONITOR, &s);
	if (rc != WISP_OK) {
		printf("spawn: %d\n", rc);
		exit(1);
	}
	struct wisp_msg_info info;
	char b[64];
	wisp_receive(&s.monitor, 1, WISP_INFINITY, b, sizeof(b), &info);
	struct wisp_exit_reason r;
	memcpy(&r, b, sizeof(r));
	printf("child ended: kind %u\n", r.kind);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	int err = 0;
	if (!strcmp(mode, "limit")) {
		int n = hog(&err);
		printf("opened %d: %s\n", n, ename(err));
		printf("listen at the limit: %s\n", listen_result());
		fflush(stdout);
		spawn_and_wait(other_process, -1);
		close(held[--n]);
		printf("listen after a close: %s\n", listen_result());
	} else if (!strcmp(mode, "narrow")) {
		int32_t h;
		wisp_caps_new(&h);
		printf("limit fds: %d\n", wisp_caps_limit(h, WISP_LIMIT_FDS, 10));
		printf("raise back: %d\n", wisp_caps_limit(h, WISP_LIMIT_FDS, 1u << 20));
		fflush(stdout);
		spawn_and_wait(narrowed, h);
	} else if (!strcmp(mode, "host")) {
		int n = hog(&err);
		printf("hog stopped: %s\n", ename(err));
		fflush(stdout);
		spawn_and_wait(other_process, -1);
		for (int i = 0; i < 32 && n > 0; i++)
			close(held[--n]);
		spawn_and_wait(other_process, -1);
		/* the count varies with the runtime's own fds: report it last,
		 * for the test to check against the host limit */
		printf("hog held %d\n", n + 32);
	} else {
		return 2;
	}
	return 0;
}
