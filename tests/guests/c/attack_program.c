/*
 * attack_program.c — a hostile caller of wisp_program_spawn
 * (tests/e2e/test_program_attacks.py).
 *
 *   attack_program MODULE MODE [N]
 *
 * MODULE is a command module the process may read (filter.c). Modes:
 *   trap WHAT N  N children, one after another, each spawning MODULE with
 *                three pipes and a spec whose WHAT (module, args, env,
 *                mounts, name: a mount's name) points past the end of its
 *                memory: each traps. Then one proper spawn with pipes:
 *                "after: out: HELLO" (pipes, a module reference, a copy of
 *                the module held by a trapped spawn were never let go).
 *   hold N       spawns up to N programs that each wait on a copy of one
 *                pipe (stdin a WISP_STDIO_FD copy of a pipe the caller never
 *                writes, stdout and stderr /dev/null) until a spawn fails:
 *                "held K RC". Then a spawn of a module never compiled
 *                before (MODULE with a custom section): "fresh: RC". The
 *                runtime's own fds (the compile's) must still be there.
 * A spawn that fails prints "spawn RC WHY".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wisp/guest.h>

#define FAR 0xfffffff0u   /* (past any memory this guest has) */

static void *module;
static uint32_t module_len;

static const char upper_args[] = "filter\0upper";

static struct wisp_program_spec upper_spec(uint32_t in, uint32_t out, uint32_t err)
{
	struct wisp_program_spec s = {
		.module = (uint32_t)(uintptr_t)module, .module_len = module_len,
		.args = (uint32_t)(uintptr_t)upper_args, .args_len = sizeof upper_args,
		.caps = -1, .flags = WISP_SPAWN_MONITOR, .stdio = { in, out, err },
	};
	return s;
}

static int spawn(const struct wisp_program_spec *s, struct wisp_program_out *o)
{
	char why[600];
	int32_t rc = wisp_program_spawn(s, o, why, sizeof why);
	if (rc != WISP_OK)
		printf("spawn %d %s\n", rc, why);
	return rc;
}

/* One child's hostile spawn: arg names the field that points far. */
static void bad_spawn(const void *arg, uint32_t len)
{
	/* arg: WHAT NUL PATH (a new process has none of its parent's memory) */
	char buf[256] = "";
	memcpy(buf, arg, len < sizeof buf - 1 ? len : sizeof buf - 1);
	const char *what = buf;
	if ((module = wisp_read_file(buf + strlen(buf) + 1, &module_len)) == NULL)
		return;
	struct wisp_program_spec s = upper_spec(WISP_STDIO_PIPE, WISP_STDIO_PIPE, WISP_STDIO_PIPE);
	static struct wisp_mount m;
	m = (struct wisp_mount){ .server = wisp_self(), .path = (uint32_t)(uintptr_t)"/srv",
	                         .path_len = 4 };
	s.mounts = (uint32_t)(uintptr_t)&m;
	s.nmounts = 1;
	if (strcmp(what, "module") == 0)
		s.module = FAR;
	else if (strcmp(what, "args") == 0)
		s.args = FAR;
	else if (strcmp(what, "env") == 0)
		s.env = FAR, s.env_len = 8;
	else if (strcmp(what, "mounts") == 0)
		s.mounts = FAR;
	else
		m.path = FAR;
	struct wisp_program_out o;
	spawn(&s, &o);
	printf("not trapped\n");
}

static int piped_upper(const char *label)
{
	struct wisp_program_spec s = upper_spec(WISP_STDIO_PIPE, WISP_STDIO_PIPE, WISP_STDIO_NULL);
	struct wisp_program_out o;
	if (spawn(&s, &o) != WISP_OK)
		return 1;
	write(o.fds[0], "hello\n", 6);
	close(o.fds[0]);
	char buf[64];
	ssize_t n = read(o.fds[1], buf, sizeof buf - 1);
	buf[n > 0 ? n : 0] = '\0';
	printf("%s: out: %s", label, buf);
	struct wisp_exit_reason r;
	return wisp_wait_down(o.monitor, &r, NULL, 0) == WISP_OK ? 0 : 4;
}

static int trap(const char *what, const char *path, int n)
{
	char arg[256];
	int len = snprintf(arg, sizeof arg, "%s%c%s", what, 0, path);
	for (int i = 0; i < n; i++) {
		uint64_t ref;
		if (wisp_spawn_monitor(bad_spawn, arg, (uint32_t)len, &ref) == 0)
			return 3;
		struct wisp_exit_reason r;
		if (wisp_wait_down(ref, &r, NULL, 0) != WISP_OK || r.kind != 2) {
			printf("child %d: kind %u\n", i, r.kind);
			return 3;
		}
	}
	return piped_upper("after");
}

static int hold(int n)
{
	/* The pipe: a first program's stdin, never written (its read end is
	 * the program's; the caller holds the write end in up.fds[0]). Its
	 * stdout pipe's read end is what the others copy. */
	struct wisp_program_spec s = upper_spec(WISP_STDIO_PIPE, WISP_STDIO_PIPE, WISP_STDIO_NULL);
	struct wisp_program_out up;
	if (spawn(&s, &up) != WISP_OK)
		return 1;
	int held = 0, rc = WISP_OK;
	const char *cat_args = "filter\0upper";
	for (; held < n; held++) {
		struct wisp_program_spec h = upper_spec(WISP_STDIO_FD | (uint32_t)up.fds[1],
		                                        WISP_STDIO_NULL, WISP_STDIO_NULL);
		h.args = (uint32_t)(uintptr_t)cat_args;
		struct wisp_program_out o;
		if ((rc = spawn(&h, &o)) != WISP_OK)
			break;
	}
	printf("held %d %d\n", held, rc);
	/* A module the runtime has not seen: MODULE and an empty custom
	 * section named "x" (id 0, size 2, name length 1). */
	unsigned char *fresh = malloc(module_len + 4);
	memcpy(fresh, module, module_len);
	memcpy(fresh + module_len, "\0\2\1x", 4);
	struct wisp_program_spec f = upper_spec(WISP_STDIO_CLOSED, WISP_STDIO_CLOSED,
	                                        WISP_STDIO_CLOSED);
	f.module = (uint32_t)(uintptr_t)fresh;
	f.module_len = module_len + 4;
	struct wisp_program_out o;
	printf("fresh: %d\n", spawn(&f, &o));
	fflush(stdout);
	exit(0);   /* (the held programs are killed with the runtime) */
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 4 || (module = wisp_read_file(argv[1], &module_len)) == NULL)
		return 2;
	if (strcmp(argv[2], "trap") == 0 && argc == 5)
		return trap(argv[3], argv[1], atoi(argv[4]));
	if (strcmp(argv[2], "hold") == 0)
		return hold(atoi(argv[3]));
	return 2;
}
