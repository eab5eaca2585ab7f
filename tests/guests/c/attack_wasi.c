/*
 * attack_wasi.c — hostile uses of WASI calls (tests/e2e/test_attacks_round2.py).
 *
 * Cases (argv[1]):
 *   poll_many N  N processes each poll 65 fd subscriptions on a silent stdin
 *                (more than the 64 the park path used to take: the rest fell
 *                back to ppoll on the scheduler thread, forever); the main
 *                process then sleeps and says it is alive.
 *   random       random_get of 16 MiB, forever (the host's work, uncharged,
 *                ran past any --max-cpu).
 *   writes       empty fd_writes to stdout, forever, printing the count on
 *                stderr every 1000 (each a system call, charged as one loop
 *                trip: a hundred times the budget).
 *   longpath     path_filestat_get on fd 3 with a 256 MiB path (copied to
 *                a host buffer of that size before the kernel said
 *                ENAMETOOLONG); prints the errno.
 *   read_killed N  N children, one after another, each parked in an
 *                fd_read of 1024 iovecs on a silent stdin and killed there
 *                (the iovec array, 16 KiB on the heap, was never freed).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/uio.h>

#include <wisp/guest.h>

#define WASI(name) __attribute__((import_module("wasi_snapshot_preview1"), import_name(name)))

WASI("random_get") int32_t raw_random_get(void *buf, uint32_t len);
WASI("fd_write") int32_t raw_fd_write(uint32_t fd, const void *iovs, uint32_t n, uint32_t *nw);
WASI("path_filestat_get")
int32_t raw_path_filestat_get(uint32_t fd, uint32_t flags, const char *path, uint32_t len,
                              void *buf);
WASI("poll_oneoff") int32_t raw_poll_oneoff(const void *in, void *out, uint32_t n, uint32_t *nev);

struct subscription {          /* preview 1's, 48 bytes */
	uint64_t userdata;
	uint8_t type;              /* 1: fd_read */
	uint8_t pad[7];
	uint32_t fd;
	uint8_t rest[28];
};
_Static_assert(sizeof(struct subscription) == 48, "subscription layout");

#define POLL_SUBS 65

static void poll_stdin(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	static struct subscription subs[POLL_SUBS];
	static uint8_t events[POLL_SUBS * 32];
	uint32_t n = 0;
	for (int i = 0; i < POLL_SUBS; i++) {
		subs[i].userdata = (uint64_t)i;
		subs[i].type = 1;
		subs[i].fd = 0;
	}
	raw_poll_oneoff(subs, events, POLL_SUBS, &n);
}

#define READ_IOVS 1024

static void read_stdin(const void *arg, uint32_t len)
{
	(void)len;
	static char bytes[READ_IOVS];
	static struct iovec iov[READ_IOVS];
	wisp_pid_t parent;
	memcpy(&parent, arg, sizeof parent);
	for (int i = 0; i < READ_IOVS; i++) {
		iov[i].iov_base = &bytes[i];
		iov[i].iov_len = 1;
	}
	wisp_send(parent, 1, NULL, 0);
	readv(0, iov, READ_IOVS);
}

static int read_killed(int n)
{
	wisp_pid_t me = wisp_self();
	struct wisp_msg_info info;
	char b[64];
	for (int i = 0; i < n; i++) {
		uint64_t ref;
		wisp_pid_t child = wisp_spawn_monitor(read_stdin, &me, sizeof me, &ref);
		uint64_t ready = 1;
		if (child == 0 || wisp_receive(&ready, 1, WISP_INFINITY, b, sizeof b, &info) != WISP_OK)
			return 2;
		wisp_kill(child);
		if (wisp_receive(&ref, 1, WISP_INFINITY, b, sizeof b, &info) != WISP_OK)
			return 3;
	}
	printf("killed %d readers\n", n);
	return 0;
}

int main(int argc, char **argv)
{
	const char *c = argc > 1 ? argv[1] : "";
	if (!strcmp(c, "poll_many") && argc > 2) {
		int n = atoi(argv[2]);
		for (int i = 0; i < n; i++)
			if (wisp_spawn(poll_stdin, NULL, 0) == 0)
				return 2;
		wisp_sleep(50 * 1000000LL);
		printf("main alive\n");
		return 0;
	}
	if (!strcmp(c, "read_killed") && argc > 2)
		return read_killed(atoi(argv[2]));
	if (!strcmp(c, "random")) {
		static uint8_t buf[16 << 20];
		for (;;)
			raw_random_get(buf, sizeof buf);
	}
	if (!strcmp(c, "writes")) {
		struct { uint32_t base, len; } iov = { 0, 0 };
		uint32_t nw;
		for (uint32_t i = 1;; i++) {
			raw_fd_write(1, &iov, 1, &nw);
			if (i % 1000 == 0)
				fprintf(stderr, "%u\n", i);
		}
	}
	if (!strcmp(c, "longpath")) {
		uint32_t len = 256u << 20;
		char *path = malloc(len);
		uint8_t st[64];
		if (path == NULL)
			return 2;
		memset(path, 'a', len);
		printf("%d\n", raw_path_filestat_get(3, 0, path, len, st));
		return 0;
	}
	fprintf(stderr, "unknown case\n");
	return 1;
}
