/*
 * program.c — starts whole WASI programs as child processes
 * (wisp_program_spawn) and reports what they did (tests/e2e/test_program.py).
 *
 *   program MODULE MODE [ARGS...]
 *
 * MODULE is a path the process may read (a preopened directory). Modes:
 *   pipe            MODULE upper, stdin and stdout piped: "out: TEXT"
 *   wc N            MODULE slow-wc, N bytes written to its stdin pipe
 *                   (far more than a pipe holds: the writer waits)
 *   exit N          MODULE exit N, stderr piped: "err: bye"
 *   trap            MODULE trap
 *   env             MODULE env GREETING with GREETING=hi
 *   args A B        MODULE args A B
 *   cat PATH        MODULE cat PATH, with the caller's directories
 *   cat-nodirs PATH the same with none (a narrowed capability set)
 *   inherit         MODULE upper, stdout the caller's own
 *   fd              MODULE upper, stdin a pipe handed over as WISP_STDIO_FD
 * Every mode ends with "down KIND CODE TEXT", the child's exit reason; a
 * failed spawn prints "spawn RC WHY" instead.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wisp/guest.h>

/* argv as NUL-terminated strings back to back. */
static uint32_t pack(char *buf, int n, const char *const *v)
{
	uint32_t len = 0;
	for (int i = 0; i < n; i++) {
		size_t l = strlen(v[i]) + 1;
		memcpy(buf + len, v[i], l);
		len += (uint32_t)l;
	}
	return len;
}

static void *module;
static uint32_t module_len;

static int spawn(int argc, const char *const *argv, const char *env, uint32_t env_len,
                 int32_t caps, uint32_t in, uint32_t out, uint32_t err,
                 struct wisp_program_out *o)
{
	static char args[4096];
	struct wisp_program_spec spec = {
		.module = (uint32_t)(uintptr_t)module, .module_len = module_len,
		.args = (uint32_t)(uintptr_t)args, .args_len = pack(args, argc, argv),
		.env = (uint32_t)(uintptr_t)env, .env_len = env_len,
		.caps = caps, .flags = WISP_SPAWN_MONITOR, .stdio = { in, out, err },
	};
	char why[600];
	int32_t rc = wisp_program_spawn(&spec, o, why, sizeof why);
	if (rc != WISP_OK)
		printf("spawn %d %s\n", rc, why);
	return rc;
}

/* Everything readable from fd until end of file. */
static void print_all(const char *label, int fd)
{
	char buf[4096];
	size_t n = 0;
	for (ssize_t got; n < sizeof buf - 1 && (got = read(fd, buf + n, sizeof buf - 1 - n)) > 0;)
		n += (size_t)got;
	buf[n] = '\0';
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	printf("%s: %s\n", label, buf);
	close(fd);
}

static int down(const struct wisp_program_out *o)
{
	struct wisp_exit_reason r;
	char text[256];
	if (wisp_wait_down(o->monitor, &r, text, sizeof text) != WISP_OK)
		return 4;
	printf("down %u %d %s\n", r.kind, r.code, text);
	return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	module = wisp_read_file(argv[1], &module_len);
	if (module == NULL) {
		printf("cannot read %s\n", argv[1]);
		return 2;
	}
	const char *mode = argv[2];
	struct wisp_program_out o;
	const char *p_upper[] = { "filter", "upper" };
	if (strcmp(mode, "pipe") == 0 || strcmp(mode, "inherit") == 0) {
		bool inherit = mode[0] == 'i';
		if (spawn(2, p_upper, NULL, 0, -1, WISP_STDIO_PIPE,
		          inherit ? WISP_STDIO_INHERIT : WISP_STDIO_PIPE, WISP_STDIO_INHERIT, &o))
			return 1;
		const char *text = "hello world\nsecond line\n";
		write_all(o.fds[0], text, strlen(text));
		close(o.fds[0]);
		if (!inherit)
			print_all("out", o.fds[1]);
		return down(&o);
	}
	if (strcmp(mode, "fd") == 0) {
		/* A pipe of a first child's, handed to a second as its stdin. */
		const char *p_wc[] = { "filter", "wc" };
		struct wisp_program_out up;
		if (spawn(2, p_upper, NULL, 0, -1, WISP_STDIO_PIPE, WISP_STDIO_PIPE,
		          WISP_STDIO_INHERIT, &up))
			return 1;
		if (spawn(2, p_wc, NULL, 0, -1, WISP_STDIO_FD | (uint32_t)up.fds[1], WISP_STDIO_PIPE,
		          WISP_STDIO_INHERIT, &o))
			return 1;
		close(up.fds[1]);   /* (the second child holds its copy) */
		write_all(up.fds[0], "one two\nthree\n", 14);
		close(up.fds[0]);
		print_all("out", o.fds[1]);
		down(&up);
		return down(&o);
	}
	if (strcmp(mode, "wc") == 0 && argc == 4) {
		const char *p_wc[] = { "filter", "slow-wc" };
		if (spawn(2, p_wc, NULL, 0, -1, WISP_STDIO_PIPE, WISP_STDIO_PIPE, WISP_STDIO_INHERIT,
		          &o))
			return 1;
		size_t total = (size_t)atol(argv[3]);
		static char chunk[65536];
		memset(chunk, 'x', sizeof chunk);
		for (size_t i = 0; i < sizeof chunk; i += 64)
			chunk[i] = '\n';
		for (size_t sent = 0; sent < total;) {
			size_t n = total - sent < sizeof chunk ? total - sent : sizeof chunk;
			if (write_all(o.fds[0], chunk, n) != 0) {
				printf("write failed after %zu\n", sent);
				return 3;
			}
			sent += n;
		}
		close(o.fds[0]);
		print_all("out", o.fds[1]);
		return down(&o);
	}
	if (strcmp(mode, "exit") == 0 && argc == 4) {
		const char *a[] = { "filter", "exit", argv[3] };
		if (spawn(3, a, NULL, 0, -1, WISP_STDIO_NULL, WISP_STDIO_NULL, WISP_STDIO_PIPE, &o))
			return 1;
		print_all("err", o.fds[2]);
		return down(&o);
	}
	if (strcmp(mode, "trap") == 0) {
		const char *a[] = { "filter", "trap" };
		if (spawn(2, a, NULL, 0, -1, WISP_STDIO_NULL, WISP_STDIO_NULL, WISP_STDIO_NULL, &o))
			return 1;
		return down(&o);
	}
	if (strcmp(mode, "env") == 0) {
		const char *a[] = { "filter", "env", "GREETING" };
		static const char env[] = "GREETING=hi\0OTHER=x";
		if (spawn(3, a, env, sizeof env, -1, WISP_STDIO_NULL, WISP_STDIO_PIPE,
		          WISP_STDIO_INHERIT, &o))
			return 1;
		print_all("out", o.fds[1]);
		return down(&o);
	}
	if (strcmp(mode, "args") == 0) {
		const char *a[8] = { "filter", "args" };
		int n = 2;
		for (int i = 3; i < argc && n < 8; i++)
			a[n++] = argv[i];
		if (spawn(n, a, NULL, 0, -1, WISP_STDIO_NULL, WISP_STDIO_PIPE, WISP_STDIO_INHERIT, &o))
			return 1;
		print_all("out", o.fds[1]);
		return down(&o);
	}
	if ((strcmp(mode, "cat") == 0 || strcmp(mode, "cat-nodirs") == 0) && argc == 4) {
		const char *a[] = { "filter", "cat", argv[3] };
		int32_t caps = -1;
		if (mode[3] == '-' && (wisp_caps_new(&caps) != WISP_OK ||
		                       wisp_caps_drop_dir(caps, "", 0) != WISP_OK))
			return 5;
		if (spawn(3, a, NULL, 0, caps, WISP_STDIO_NULL, WISP_STDIO_PIPE, WISP_STDIO_NULL, &o))
			return 1;
		print_all("out", o.fds[1]);
		return down(&o);
	}
	if (strcmp(mode, "spawn") == 0) {
		/* Just the spawn (a bad module's message). */
		const char *a[] = { "x" };
		if (spawn(1, a, NULL, 0, -1, WISP_STDIO_NULL, WISP_STDIO_NULL, WISP_STDIO_NULL, &o))
			return 0;
		return down(&o);
	}
	return 2;
}
