/*
 * served.c — an in-memory file server, and a parent that runs a plain WASI
 * program (files.c) with a directory served by it
 * (tests/e2e/test_served.py; the example docs/abi.md's "Served files"
 * points to):
 *
 *   served [--mount=NAME] MODULE SERVER PROGRAM-ARGS...
 *
 * NAME is the child's name for the served directory (default "/data").
 * MODULE is a path the process may read. SERVER is how the server
 * behaves: ok (a small tree: config.txt, big.bin, sub/a.txt, sub/b.txt),
 * die (it ends at its first READ), garbage (a 3-byte reply to READ),
 * wronglen (a reply whose length field is not its payload's), long (more
 * bytes than asked), errno (error 999), dead (the server has ended before
 * the spawn). The program runs with /data served, its stdout piped; the
 * parent prints "out: " and what the program printed, "down KIND CODE",
 * then what the server holds: "server report.txt: ..." and
 * "server log.txt: ...", and "opens N closes N".
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wisp/guest.h>

#define TAG_DUMP 2

/* WASI numbers the server answers with. */
enum {
	E_EXIST = 20, E_INVAL = 28, E_ISDIR = 31, E_NOENT = 44, E_NOTDIR = 54, E_BADF = 8,
	T_DIR = 3, T_FILE = 4,
	O_CREAT_ = 1, O_DIRECTORY_ = 2, O_EXCL_ = 4, O_TRUNC_ = 8,
};

struct node {
	char path[128];
	bool used, dir;
	uint8_t *data;
	uint32_t size, cap;
};

struct tree {
	struct node n[32];
	unsigned opens, closes;
	char mode[16];
};

static int find(struct tree *t, const uint8_t *path, uint32_t len)
{
	for (int i = 0; i < 32; i++)
		if (t->n[i].used && strlen(t->n[i].path) == len && memcmp(t->n[i].path, path, len) == 0)
			return i;
	return -1;
}

static int add(struct tree *t, const char *path, uint32_t len, bool dir)
{
	for (int i = 0; i < 32; i++)
		if (!t->n[i].used && len < sizeof t->n[i].path) {
			struct node *n = &t->n[i];
			memset(n, 0, sizeof *n);
			memcpy(n->path, path, len);
			n->used = true;
			n->dir = dir;
			return i;
		}
	return -1;
}

static void put(struct node *n, uint64_t at, const void *data, uint32_t len)
{
	if (at + len > n->cap) {
		n->cap = (uint32_t)(at + len) * 2;
		n->data = realloc(n->data, n->cap);
	}
	if (at > n->size)
		memset(n->data + n->size, 0, at - n->size);
	memcpy(n->data + at, data, len);
	if (at + len > n->size)
		n->size = (uint32_t)(at + len);
}

static void add_file(struct tree *t, const char *path, const void *data, uint32_t len)
{
	int i = add(t, path, (uint32_t)strlen(path), false);
	put(&t->n[i], 0, data, len);
}

/* Is child's parent directory dir? ("" the root) */
static bool parent_is(const char *child, const char *dir)
{
	size_t d = strlen(dir);
	const char *rest = child;
	if (d > 0) {
		if (strncmp(child, dir, d) != 0 || child[d] != '/')
			return false;
		rest = child + d + 1;
	}
	return *rest != '\0' && strchr(rest, '/') == NULL;
}

static void open_op(struct tree *t, const struct wisp_file_request *r)
{
	int i = find(t, r->data, r->data_len);
	uint32_t of = r->flags & 0xffff;
	if (i < 0) {
		if (!(of & O_CREAT_))
			return (void)wisp_file_reply(r, E_NOENT, 0, 0, NULL, 0);
		i = add(t, (const char *)r->data, r->data_len, false);
		if (i < 0)
			return (void)wisp_file_reply(r, E_INVAL, 0, 0, NULL, 0);
	} else if ((of & O_CREAT_) && (of & O_EXCL_)) {
		return (void)wisp_file_reply(r, E_EXIST, 0, 0, NULL, 0);
	}
	struct node *n = &t->n[i];
	if (n->dir && (r->rights & WISP_FILE_RIGHT_WRITE))
		return (void)wisp_file_reply(r, E_ISDIR, 0, 0, NULL, 0);
	if (!n->dir && (of & O_DIRECTORY_))
		return (void)wisp_file_reply(r, E_NOTDIR, 0, 0, NULL, 0);
	if (of & O_TRUNC_)
		n->size = 0;
	t->opens++;
	wisp_file_reply(r, 0, n->dir ? T_DIR : T_FILE, (uint64_t)i, NULL, 0);
}

static void read_op(struct tree *t, struct node *n, const struct wisp_file_request *r)
{
	uint64_t at = r->offset < n->size ? r->offset : n->size;
	uint32_t len = n->size - (uint32_t)at < r->len ? n->size - (uint32_t)at : r->len;
	if (strcmp(t->mode, "garbage") == 0) {
		wisp_send(r->from, r->ref, "xyz", 3);
	} else if (strcmp(t->mode, "wronglen") == 0) {
		uint8_t b[WISP_FILE_REPLY_SIZE + 4] = { 0 };
		uint32_t claimed = 100;
		memcpy(b + 4, &claimed, 4);
		wisp_send(r->from, r->ref, b, sizeof b);
	} else if (strcmp(t->mode, "long") == 0) {
		static uint8_t more[WISP_FILE_MAX_DATA];
		memset(more, 'L', sizeof more);
		uint32_t n2 = r->len + 10 < sizeof more ? r->len + 10 : sizeof more;
		wisp_file_reply(r, 0, 0, 0, more, n2);
	} else if (strcmp(t->mode, "errno") == 0) {
		wisp_file_reply(r, 999, 0, 0, NULL, 0);
	} else {
		wisp_file_reply(r, 0, 0, 0, n->data + at, len);
	}
}

static void readdir_op(struct tree *t, struct node *d, const struct wisp_file_request *r)
{
	static uint8_t buf[WISP_FILE_MAX_DATA];
	uint32_t used = 0, want = r->len < sizeof buf ? r->len : sizeof buf;
	uint64_t k = 0;
	for (int i = 0; i < 32 && used < want; i++) {
		if (!t->n[i].used || !parent_is(t->n[i].path, d->path))
			continue;
		if (k++ < r->offset)
			continue;
		const char *name = strrchr(t->n[i].path, '/');
		name = name ? name + 1 : t->n[i].path;
		used += wisp_file_dirent(buf + used, want - used, k, (uint64_t)i + 1,
		                         t->n[i].dir ? T_DIR : T_FILE, name, (uint32_t)strlen(name));
	}
	wisp_file_reply(r, 0, 0, 0, buf, used);
}

/* Answer one request; false: the server is to end now (mode die). */
static bool serve_one(struct tree *t, const struct wisp_file_request *r)
{
	if (r->op == WISP_FILE_OP_OPEN)
		return open_op(t, r), true;
	if (r->op == WISP_FILE_OP_PSTAT) {
		int i = find(t, r->data, r->data_len);
		uint8_t st[WISP_FILE_STAT_SIZE];
		if (i >= 0)
			wisp_file_stat(st, (uint64_t)i + 1, t->n[i].dir ? T_DIR : T_FILE, t->n[i].size);
		wisp_file_reply(r, i < 0 ? E_NOENT : 0, 0, 0, st, i < 0 ? 0 : sizeof st);
		return true;
	}
	struct node *n = r->handle < 32 && t->n[r->handle].used ? &t->n[r->handle] : NULL;
	if (n == NULL)
		return wisp_file_reply(r, E_BADF, 0, 0, NULL, 0), true;
	switch (r->op) {
	case WISP_FILE_OP_READ:
		if (strcmp(t->mode, "die") == 0)
			return false;
		if (n->dir)
			return wisp_file_reply(r, E_ISDIR, 0, 0, NULL, 0), true;
		read_op(t, n, r);
		break;
	case WISP_FILE_OP_WRITE:
		put(n, r->offset == UINT64_MAX ? n->size : r->offset, r->data, r->data_len);
		wisp_file_reply(r, 0, 0, r->data_len, NULL, 0);
		break;
	case WISP_FILE_OP_STAT: {
		uint8_t st[WISP_FILE_STAT_SIZE];
		wisp_file_stat(st, r->handle + 1, n->dir ? T_DIR : T_FILE, n->size);
		wisp_file_reply(r, 0, 0, 0, st, sizeof st);
		break;
	}
	case WISP_FILE_OP_READDIR:
		readdir_op(t, n, r);
		break;
	case WISP_FILE_OP_CLOSE:
		t->closes++;
		break;
	default:
		wisp_file_reply(r, E_INVAL, 0, 0, NULL, 0);
	}
	return true;
}

/* A DUMP request: the file named by the payload, or the counts. */
static void dump(struct tree *t, const uint8_t *name, const struct wisp_msg_info *info)
{
	char out[4096];
	int n;
	if (info->len == 0) {
		n = snprintf(out, sizeof out, "opens %u closes %u", t->opens, t->closes);
	} else {
		int i = find(t, name, info->len);
		n = i < 0 ? snprintf(out, sizeof out, "(none)")
		          : snprintf(out, sizeof out, "%.*s", (int)t->n[i].size, (char *)t->n[i].data);
	}
	wisp_send(info->from, info->ref, out, (uint32_t)n);
}

static void server(const void *arg, uint32_t len)
{
	struct tree *t = calloc(1, sizeof *t);
	memcpy(t->mode, arg, len < sizeof t->mode - 1 ? len : sizeof t->mode - 1);
	add(t, "", 0, true);
	static const char config[] = "name=wisp\ncolor=blue\nsize=3\n";
	add_file(t, "config.txt", config, sizeof config - 1);
	add(t, "sub", 3, true);
	add_file(t, "sub/a.txt", "alpha\n", 6);
	add_file(t, "sub/b.txt", "beta\n", 5);
	static uint8_t big[200000];
	for (uint32_t i = 0; i < sizeof big; i++)
		big[i] = (uint8_t)(i * 7 + i / 251);
	add_file(t, "big.bin", big, sizeof big);
	static uint8_t buf[WISP_FILE_REQUEST_SIZE + WISP_FILE_MAX_DATA];
	for (;;) {
		struct wisp_msg_info info;
		if (wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info) != WISP_OK)
			continue;
		struct wisp_file_request r;
		if (info.tag == TAG_DUMP)
			dump(t, buf, &info);
		else if (wisp_file_decode(buf, &info, &r) == WISP_OK && !serve_one(t, &r))
			return;
	}
}

static void ask(wisp_pid_t srv, const char *label, const char *name)
{
	char buf[4096];
	struct wisp_msg_info info;
	if (wisp_request(srv, TAG_DUMP, name, (uint32_t)strlen(name), WISP_INFINITY, buf,
	                 sizeof buf - 1, &info) != WISP_OK)
		return;
	while (info.len > 0 && buf[info.len - 1] == '\n')
		info.len--;
	buf[info.len] = '\0';
	printf("%s%s\n", label, buf);
}

int main(int argc, char **argv)
{
	const char *mount = "/data";
	if (argc > 1 && strncmp(argv[1], "--mount=", 8) == 0) {
		mount = argv[1] + 8;
		argv++;
		argc--;
	}
	if (argc < 4)
		return 2;
	uint32_t module_len;
	void *module = wisp_read_file(argv[1], &module_len);
	if (module == NULL)
		return 2;
	const char *mode = argv[2];
	bool dead = strcmp(mode, "dead") == 0;
	uint64_t ref;
	wisp_pid_t srv = wisp_spawn_monitor(server, mode, (uint32_t)strlen(mode), &ref);
	if (dead) {
		wisp_kill(srv);
		struct wisp_exit_reason r;
		wisp_wait_down(ref, &r, NULL, 0);
	}
	static char args[4096];
	uint32_t args_len = 0;
	const char *name = "files";
	memcpy(args, name, strlen(name) + 1);
	args_len += (uint32_t)strlen(name) + 1;
	for (int i = 3; i < argc; i++) {
		size_t l = strlen(argv[i]) + 1;
		memcpy(args + args_len, argv[i], l);
		args_len += (uint32_t)l;
	}
	struct wisp_mount m = { srv, (uint32_t)(uintptr_t)mount, (uint32_t)strlen(mount) };
	struct wisp_program_spec spec = {
		.module = (uint32_t)(uintptr_t)module, .module_len = module_len,
		.args = (uint32_t)(uintptr_t)args, .args_len = args_len,
		.caps = -1, .flags = WISP_SPAWN_MONITOR,
		.stdio = { WISP_STDIO_NULL, WISP_STDIO_PIPE, WISP_STDIO_INHERIT },
		.mounts = (uint32_t)(uintptr_t)&m, .nmounts = 1,
	};
	struct wisp_program_out o;
	char why[600];
	int32_t rc = wisp_program_spawn(&spec, &o, why, sizeof why);
	if (rc != WISP_OK) {
		printf("spawn %d %s\n", rc, why);
		return 0;
	}
	char out[8192];
	size_t n = 0;
	for (ssize_t got; n < sizeof out - 1 && (got = read(o.fds[1], out + n, sizeof out - 1 - n)) > 0;)
		n += (size_t)got;
	out[n] = '\0';
	printf("out: %s", out);
	struct wisp_exit_reason r;
	char text[256];
	wisp_wait_down(o.monitor, &r, text, sizeof text);
	printf("down %u %d\n", r.kind, r.code);
	if (strcmp(mode, "ok") == 0) {
		ask(srv, "server report.txt: ", "report.txt");
		ask(srv, "server log.txt: ", "log.txt");
		ask(srv, "", "");
	}
	return 0;
}
