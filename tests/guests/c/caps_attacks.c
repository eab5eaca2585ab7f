/*
 * caps_attacks — a guest that tries to get past its capabilities, one
 * attack per argv[1]; it prints what each attempt returned. The test
 * (tests/e2e/test_caps.py) gives it exact capabilities and checks that every
 * attempt is denied, with a clear error, and nothing else is affected.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <wisp/guest.h>

#define L(s) s, (uint32_t)strlen(s)

/* Allocations the optimizer must not elide (it may, when a result is only
 * compared with NULL). */
static void *volatile keep;

static void *real_malloc(size_t n)
{
	char *p = malloc(n);
	if (p != NULL)
		p[n - 1] = 1;
	keep = p;
	return p;
}

static int try_open(const char *path, int flags)
{
	int fd = open(path, flags, 0644);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	return errno;
}

static void spin(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	for (volatile unsigned long i = 0;; i++)
		;
}

static void wait_forever(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	struct wisp_msg_info info;
	char b[4];
	wisp_receive(NULL, 0, WISP_INFINITY, b, sizeof(b), &info);
}

static void child_report(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	int32_t h;
	printf("child open data/secret: %d\n", try_open("/data/secret", O_RDONLY));
	printf("child new caps: %d\n", wisp_caps_new(&h));
	printf("child spawn_with parent's handle 0: %d\n",
	       wisp_spawn_with(0, (uint32_t)(uintptr_t)wait_forever, NULL, 0, 0, NULL));
	/* grow memory past the limit the parent set */
	void *big = real_malloc(8u << 20);
	printf("child malloc 8 MiB: %s\n", big ? "ok" : "failed");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	const char *c = argc > 1 ? argv[1] : "";
	int32_t fd, h;
	if (!strcmp(c, "paths")) {
		printf("dotdot: %d\n", try_open("/data/../etc/passwd", O_RDONLY));
		printf("absolute: %d\n", try_open("/etc/passwd", O_RDONLY));
		printf("sneaky: %d\n", try_open("/data/a/../../etc/passwd", O_RDONLY));
		printf("symlink out: %d\n", try_open("/data/link", O_RDONLY));
		printf("proc self: %d\n", try_open("/proc/self/mem", O_RDONLY));
		printf("hardlink out: %d\n", link("/etc/passwd", "/data/stolen") == 0 ? 0 : errno);
		printf("rename out: %d\n", rename("/data/secret", "/data/../moved") == 0 ? 0 : errno);
		printf("inside still works: %d\n", try_open("/data/secret", O_RDONLY));
	} else if (!strcmp(c, "readonly")) {
		printf("create: %d\n", try_open("/ro/new", O_WRONLY | O_CREAT));
		printf("write: %d\n", try_open("/ro/file", O_WRONLY));
		printf("unlink: %d\n", unlink("/ro/file") == 0 ? 0 : errno);
		printf("mkdir: %d\n", mkdir("/ro/d", 0755) == 0 ? 0 : errno);
		printf("read: %d\n", try_open("/ro/file", O_RDONLY));
	} else if (!strcmp(c, "network")) {
		printf("connect denied port: %d\n", wisp_tcp_connect(L("127.0.0.1"), 9, 0, &fd));
		printf("listen without right: %d\n", wisp_tcp_listen(L("127.0.0.1"), 0, 8, &fd));
		printf("udp without right: %d\n", wisp_udp_bind(L("127.0.0.1"), 0, &fd));
		char b[64];
		uint32_t u, n;
		printf("dns without right: %d\n", wisp_resolve(L("localhost"), b, sizeof(b), &u, &n));
	} else if (!strcmp(c, "child")) {
		/* The child gets less: no /data, no new caps, at most 1 MiB. */
		wisp_caps_new(&h);
		printf("drop dir: %d\n", wisp_caps_drop_dir(h, L("/data")));
		printf("deny caps: %d\n", wisp_caps_deny(h, WISP_DENY_CAPS));
		printf("limit memory: %d\n", wisp_caps_limit(h, WISP_LIMIT_MEMORY, 1u << 20));
		printf("close stdin: %d\n", wisp_caps_set_stdio(h, 0, WISP_STDIO_CLOSED));
		printf("reopen stdin: %d\n", wisp_caps_set_stdio(h, 0, WISP_STDIO_INHERIT));
		printf("raise memory back: %d\n", wisp_caps_limit(h, WISP_LIMIT_MEMORY, 1ull << 40));
		fflush(stdout);
		struct wisp_spawned s;
		printf("spawn_with: %d\n", wisp_spawn_with(h, (uint32_t)(uintptr_t)child_report,
		                                          NULL, 0, WISP_SPAWN_MONITOR, &s));
		fflush(stdout);
		printf("change after use: %d\n", wisp_caps_drop_network(h));
		struct wisp_msg_info info;
		char b[64];
		wisp_receive(&s.monitor, 1, WISP_INFINITY, b, sizeof(b), &info);
		printf("child ended: kind %u\n", ((struct wisp_exit_reason *)b)->kind);
	} else if (!strcmp(c, "forge")) {
		struct wisp_spawned s;
		printf("unknown handle: %d\n", wisp_spawn_with(7, 0, NULL, 0, 0, &s));
		printf("huge handle: %d\n", wisp_caps_free(123456));
		printf("negative handle: %d\n", wisp_caps_limit(-1, WISP_LIMIT_CPU, 1));
	} else if (!strcmp(c, "memory")) {
		size_t total = 0;
		while (real_malloc(64 << 10) != NULL)
			total += 64;
		printf("malloc stopped after %zu KiB\n", total < 1024 ? total : (size_t)1024);
	} else if (!strcmp(c, "cpu")) {
		/* a child that spins under its own CPU limit dies; main lives on */
		wisp_caps_new(&h);
		wisp_caps_limit(h, WISP_LIMIT_CPU, 2000000);
		struct wisp_spawned s;
		wisp_spawn_with(h, (uint32_t)(uintptr_t)spin, NULL, 0, WISP_SPAWN_MONITOR, &s);
		struct wisp_msg_info info;
		char b[64];
		wisp_receive(&s.monitor, 1, WISP_INFINITY, b, sizeof(b), &info);
		struct wisp_exit_reason r;
		memcpy(&r, b, sizeof(r));
		printf("spinner ended: kind %u '%.*s'\n", r.kind, (int)(info.len - sizeof(r)), b + sizeof(r));
		printf("main still runs\n");
	} else if (!strcmp(c, "spin")) {
		spin(NULL, 0);
	} else if (!strcmp(c, "processes")) {
		int ok = 0, limited = 0;
		for (int i = 0; i < 20; i++) {
			struct wisp_spawned s;
			int rc = wisp_spawn_raw((uint32_t)(uintptr_t)wait_forever, NULL, 0, 0, &s);
			ok += rc == WISP_OK;
			limited += rc == WISP_ELIMIT;
		}
		printf("spawned %d, refused %d\n", ok, limited);
	} else if (!strcmp(c, "nospawn")) {
		struct wisp_spawned s;
		printf("spawn: %d\n", wisp_spawn_raw((uint32_t)(uintptr_t)wait_forever, NULL, 0, 0, &s));
	} else if (!strcmp(c, "env")) {
		const char *v = getenv("SECRET");
		printf("SECRET=%s HOME=%s\n", v ? v : "(none)", getenv("HOME") ? getenv("HOME") : "(none)");
	} else {
		return 2;
	}
	return 0;
}
