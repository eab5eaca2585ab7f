/*
 * ps.c — `wisp ps`, `wisp inspect`, `wisp kill`, `wisp trace`: looking
 * into a running wisp from another terminal, through its control socket
 * (control.c finds the run; observe.c answers).
 *
 * The node streams; the sorting is here. `wisp ps --limit N` (N up to
 * LISTING_TOP_MAX) asks the node for the first N by the key, which it
 * keeps in a bounded heap during its walk; without a limit the node
 * sends every process in table order and this side sorts (a million
 * rows, about 300 bytes each, in this process, not in the node).
 *
 * Everything a guest chose (names, function names, message bytes) was
 * made printable by the node and is made printable again here before it
 * reaches the terminal: the node is another process.
 *
 * Exit status: 0 done; 1 no such run or process, or the node ended or
 * stopped answering before it had answered in full; 2 usage error.
 */
#include "observe.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "control.h"
#include "json.h"
#include "listing.h"

#define EXIT_FAIL 1
#define EXIT_USAGE 2

/* ---- what every command shares ---- */

struct target {
	const char *ospid, *node;   /* which run (neither: the only one) */
	bool json;
};

__attribute__((format(printf, 3, 4)))
static int usage_error(const char *cmd, const char *usage, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "wisp %s: ", cmd);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n%s('wisp %s --help' says more)\n", usage, cmd);
	return EXIT_USAGE;
}

/* Options every command takes: true if argv[*i] was one (consumed), with
 * *rc set to a usage error if it was malformed. */
static bool target_option(const char *cmd, const char *usage, int argc, char **argv, int *i,
                          struct target *t, int *rc)
{
	const char *a = argv[*i];
	*rc = 0;
	if (strcmp(a, "--json") == 0) {
		t->json = true;
		return true;
	}
	if (strcmp(a, "--pid") != 0 && strcmp(a, "--node") != 0)
		return false;
	if (*i + 1 == argc) {
		*rc = usage_error(cmd, usage, "%s needs %s", a, a[2] == 'p'
		                  ? "the process id of a 'wisp run'" : "the name of a node");
		return true;
	}
	if (t->ospid != NULL || t->node != NULL) {
		*rc = usage_error(cmd, usage, "give one of --pid and --node, once");
		return true;
	}
	const char *v = argv[++*i];
	char *end;
	long n = strtol(v, &end, 10);
	if (a[2] == 'p' && (*end != '\0' || n <= 0 || n > INT_MAX || v[0] < '0' || v[0] > '9'))
		*rc = usage_error(cmd, usage, "--pid takes the process id of a 'wisp run', not '%s'", v);
	else if (a[2] == 'n' && (v[0] == '\0' || v[0] == '.' || strchr(v, '/')))
		*rc = usage_error(cmd, usage, "'%s' cannot name a node", v);
	*(a[2] == 'p' ? &t->ospid : &t->node) = v;
	return true;
}

/* Connect to the run and send the request line: the stream to read the
 * answer from, or NULL with a message. */
static FILE *request(const char *cmd, const struct target *t, const char *line)
{
	char path[PATH_MAX];
	if (!control_find(cmd, t->ospid, t->node, path, sizeof(path)))
		return NULL;
	int fd = control_connect(cmd, path);
	if (fd < 0)
		return NULL;
	/* (A write that fails is no error yet: a node that refuses, busy,
	 * says why and closes; its answer is read all the same.) */
	size_t len = strlen(line);
	for (size_t off = 0; off < len;) {
		ssize_t w = write(fd, line + off, len - off);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	FILE *f = fdopen(fd, "r");
	if (f == NULL)
		close(fd);
	return f;
}

/* A line of the answer (without its newline; the caller frees it), or
 * NULL at the end. */
static char *answer_line(FILE *f)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, f);
	if (n <= 0) {
		free(line);
		return NULL;
	}
	if (line[n - 1] == '\n')
		line[n - 1] = '\0';
	return line;
}

/* An "error TEXT" answer, said; true if line was one. */
static bool said_error(const char *cmd, const char *line, const char *pid)
{
	if (strncmp(line, "error ", 6) != 0)
		return false;
	char text[1024];
	util_printable(text, sizeof(text), line + 6);
	if (strcmp(text, "no such process") == 0 && pid != NULL)
		fprintf(stderr, "wisp %s: no process %s in that run (wisp ps lists them; it may have "
		        "ended)\n", cmd, pid);
	else
		fprintf(stderr, "wisp %s: the running wisp says: %s\n", cmd, text);
	return true;
}

static void no_answer(const char *cmd)
{
	fprintf(stderr, "wisp %s: the running wisp gave no answer (did it end?)\n", cmd);
}

/* "12ms", "3.2s", "5m03s", "2h05m", "3d04h". */
static void fmt_time(uint64_t ms, char *buf, size_t cap)
{
	uint64_t s = ms / 1000;
	if (ms < 1000)
		snprintf(buf, cap, "%" PRIu64 "ms", ms);
	else if (s < 60)
		snprintf(buf, cap, "%" PRIu64 ".%" PRIu64 "s", s, ms % 1000 / 100);
	else if (s < 3600)
		snprintf(buf, cap, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, cap, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, s / 60 % 60);
	else
		snprintf(buf, cap, "%" PRIu64 "d%02" PRIu64 "h", s / 86400, s / 3600 % 24);
}

/* "512", "12.5K", "3.1M", "1.2G". */
static void fmt_bytes(uint64_t b, char *buf, size_t cap)
{
	static const char unit[] = "KMGT";
	if (b < 1024) {
		snprintf(buf, cap, "%" PRIu64, b);
		return;
	}
	double v = (double)b / 1024;
	int u = 0;
	while (v >= 1024 && u < 3) {
		v /= 1024;
		u++;
	}
	snprintf(buf, cap, v < 10 ? "%.1f%c" : "%.0f%c", v, unit[u]);
}

/* ---- wisp ps ---- */

#define ROW_NAME 48
#define ROW_FN 64

struct row {
	uint64_t pid, reductions, memory, stack, age_ms;
	int64_t timeout_ms, fd;
	uint32_t mailbox;
	char state[12], wait[12], on[20], dir[6];
	char name[ROW_NAME], function[ROW_FN];
	char *json;              /* the line as it came (--json), else NULL */
};

static void row_member(const char *key, const struct json *v, void *ctx)
{
	struct row *r = ctx;
	static const struct { const char *key; size_t off, cap; } strs[] = {
		{ "state", offsetof(struct row, state), sizeof(((struct row *)0)->state) },
		{ "wait", offsetof(struct row, wait), sizeof(((struct row *)0)->wait) },
		{ "on", offsetof(struct row, on), sizeof(((struct row *)0)->on) },
		{ "for", offsetof(struct row, dir), sizeof(((struct row *)0)->dir) },
		{ "name", offsetof(struct row, name), ROW_NAME },
		{ "function", offsetof(struct row, function), ROW_FN },
	};
	static const struct { const char *key; size_t off; } nums[] = {
		{ "reductions", offsetof(struct row, reductions) },
		{ "memory", offsetof(struct row, memory) },
		{ "stack", offsetof(struct row, stack) },
		{ "age_ms", offsetof(struct row, age_ms) },
	};
	if (v->type == JSON_STRING) {
		if (strcmp(key, "pid") == 0)
			observe_parse_pid(v->str, &r->pid);
		for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
			if (strcmp(key, strs[i].key) == 0)
				snprintf((char *)r + strs[i].off, strs[i].cap, "%s", v->str);
		return;
	}
	if (v->type != JSON_NUMBER)
		return;
	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
		if (strcmp(key, nums[i].key) == 0)
			*(uint64_t *)((char *)r + nums[i].off) = v->num > 0 ? (uint64_t)v->num : 0;
	if (strcmp(key, "mailbox") == 0)
		r->mailbox = v->num > 0 && v->num < UINT32_MAX ? (uint32_t)v->num : 0;
	else if (strcmp(key, "timeout_ms") == 0)
		r->timeout_ms = v->num;
	else if (strcmp(key, "host_fd") == 0)
		r->fd = v->num;
}

/* The key a row sorts by (as listing.c's for the node's rows). */
static uint64_t row_key(enum listing_key k, const struct row *r)
{
	switch (k) {
	case LISTING_REDUCTIONS: return r->reductions;
	case LISTING_MEMORY: return r->memory + r->stack;
	case LISTING_MAILBOX: return r->mailbox;
	case LISTING_AGE: return r->age_ms;
	case LISTING_PID: break;
	}
	return r->pid;
}

/* Whether a comes before b, as listing_before orders the node's rows. */
static bool row_before(enum listing_key k, const struct row *a, const struct row *b)
{
	uint64_t x = row_key(k, a), y = row_key(k, b);
	if (x != y)
		return k == LISTING_PID ? x < y : x > y;
	return a->pid < b->pid;
}

static int row_compare(const void *a, const void *b, void *key)
{
	enum listing_key k = *(const enum listing_key *)key;
	return row_before(k, a, b) ? -1 : row_before(k, b, a);
}

/* What it waits for, or does, as a person reads it. */
static void row_where(const struct row *r, char *buf, size_t cap)
{
	char left[24] = "", fn[4 * ROW_FN + 8] = "";
	if (r->timeout_ms >= 0) {
		char t[16];
		fmt_time((uint64_t)r->timeout_ms, t, sizeof(t));
		snprintf(left, sizeof(left), " (%s left)", t);
	}
	if (r->function[0] != '\0') {
		char p[4 * ROW_FN];
		util_printable(p, sizeof(p), r->function);
		snprintf(fn, sizeof(fn), " in %s", p);
	}
	const char *w = r->wait;
	if (strcmp(r->state, "running") == 0)
		snprintf(buf, cap, "-");
	else if (strcmp(w, "receive") == 0)
		snprintf(buf, cap, "receive%s%s", left, fn);
	else if (strcmp(w, "receive_fd") == 0)
		snprintf(buf, cap, "receive or host fd %" PRId64 "%s%s", r->fd, left, fn);
	else if (strcmp(w, "call") == 0)
		snprintf(buf, cap, "reply from %s%s%s", r->on, left, fn);
	else if (strcmp(w, "served_file") == 0)
		snprintf(buf, cap, "served file from %s%s", r->on, fn);
	else if (strcmp(w, "timer") == 0)
		snprintf(buf, cap, "sleep%s%s", left, fn);
	else if (strcmp(w, "fd") == 0)
		snprintf(buf, cap, "host fd %" PRId64 " (%s)%s%s", r->fd, r->dir, left, fn);
	else if (strcmp(w, "blocking") == 0)
		snprintf(buf, cap, "blocking job (DNS, compile, connect)%s", fn);
	else if (strcmp(w, "hibernate") == 0)
		snprintf(buf, cap, "receive, hibernating%s", fn);
	else
		snprintf(buf, cap, "%s", fn[0] ? fn + 1 : "-");
}

static void print_row(const struct row *r)
{
	char name[4 * ROW_NAME], cut[24], mem[16], age[16], where[512];
	util_printable(name, sizeof(name), r->name[0] ? r->name : "-");
	snprintf(cut, sizeof(cut), "%s", name);
	if (strlen(name) > 16)
		memcpy(cut + 13, "...", 4);
	fmt_bytes(r->memory + r->stack, mem, sizeof(mem));
	fmt_time(r->age_ms, age, sizeof(age));
	row_where(r, where, sizeof(where));
	printf("%-10" PRIx64 " %-16s %-10s %10" PRIu64 " %7s %6u %7s  %s\n", r->pid, cut, r->state,
	       r->reductions, mem, r->mailbox, age, where);
}

static const char ps_usage[] =
	"usage: wisp ps [--sort pid|reductions|memory|mailbox|age] [--limit N] [--json]\n"
	"               [--pid OSPID | --node NAME | NODE | OSPID]\n";

static const char ps_help[] =
	"usage: wisp ps [--sort pid|reductions|memory|mailbox|age] [--limit N] [--json]\n"
	"               [--pid OSPID | --node NAME | NODE | OSPID]\n"
	"\n"
	"List the processes of a running 'wisp run' (of this user): pid, registered\n"
	"name, state, reductions, memory (its account: linear memory, mailbox,\n"
	"timers, names, host state; and its native stack), mailbox length, age, and\n"
	"what it waits for in which wasm function. The node is not paused: each\n"
	"process is looked at for a moment on its own.\n"
	"\n"
	"  --sort KEY    pid (ascending), reductions, memory, mailbox (the most\n"
	"                first), age (the oldest first); default: pid\n"
	"  --limit N     only the first N (up to 10000 are sorted by the node itself)\n"
	"  --json        one JSON object per process and line, as the node sends them\n"
	"  NODE, OSPID   the run: a node's name (--node) or its OS process id (--pid);\n"
	"                needed when several run\n"
	"\n"
	"exit status: 0 listed; 1 no such run, or it ended before the listing was\n"
	"complete; 2 usage error.\n";

struct ps_opts {
	struct target t;
	enum listing_key sort;
	unsigned long limit;   /* 0: all */
};

static int ps_args(int argc, char **argv, struct ps_opts *o)
{
	int rc;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			fputs(ps_help, stdout);
			return -1;
		}
		if (target_option("ps", ps_usage, argc, argv, &i, &o->t, &rc)) {
			if (rc != 0)
				return rc;
		} else if (strcmp(a, "--sort") == 0) {
			if (i + 1 == argc || !listing_key_parse(argv[i + 1], &o->sort))
				return usage_error("ps", ps_usage, "--sort takes pid, reductions, memory, "
				                   "mailbox or age%s%s", i + 1 < argc ? ", not " : "",
				                   i + 1 < argc ? argv[i + 1] : "");
			i++;
		} else if (strcmp(a, "--limit") == 0) {
			char *end = NULL;
			o->limit = i + 1 < argc ? strtoul(argv[i + 1], &end, 10) : 0;
			if (i + 1 == argc || argv[i + 1][0] < '0' || argv[i + 1][0] > '9' || *end ||
			    o->limit == 0 || o->limit > UINT32_MAX)
				return usage_error("ps", ps_usage, "--limit takes a number of processes, "
				                   "1 or more");
			i++;
		} else if (a[0] == '-' && a[1] != '\0') {
			return usage_error("ps", ps_usage, "unknown option '%s'", a);
		} else if (o->t.ospid != NULL || o->t.node != NULL) {
			return usage_error("ps", ps_usage, "one run at a time: '%s' is one too many", a);
		} else if (a[0] >= '0' && a[0] <= '9' && strspn(a, "0123456789") == strlen(a)) {
			o->t.ospid = a;
		} else if (a[0] == '\0' || a[0] == '.' || strchr(a, '/')) {
			return usage_error("ps", ps_usage, "'%s' cannot name a node", a);
		} else {
			o->t.node = a;
		}
	}
	return 0;
}

/* The answer's rows into *rows (n of them); false if it ended early. */
static bool read_rows(FILE *f, const struct ps_opts *o, struct row **rows, size_t *n,
                      bool *errored)
{
	size_t cap = 0;
	bool ended = false;
	for (char *line; !ended && (line = answer_line(f)) != NULL; free(line)) {
		if (*n == 0 && said_error("ps", line, NULL)) {
			*errored = true;
			free(line);
			return false;
		}
		if (strncmp(line, "{\"end\":", 7) == 0) {
			ended = true;
			continue;
		}
		if (*n == cap) {
			cap = cap ? 2 * cap : 1024;
			struct row *r = realloc(*rows, cap * sizeof(**rows));
			if (r == NULL) {
				free(line);
				fprintf(stderr, "wisp ps: out of memory\n");
				*errored = true;
				return false;
			}
			*rows = r;
		}
		struct row *r = &(*rows)[*n];
		memset(r, 0, sizeof(*r));
		r->timeout_ms = -1;
		if (!json_each(line, row_member, r))
			continue;   /* (not a row: a newer node's line, say) */
		r->json = o->t.json ? strdup(line) : NULL;
		(*n)++;
	}
	return ended;
}

int cli_ps(int argc, char **argv)
{
	struct ps_opts o = { .sort = LISTING_PID };
	int rc = ps_args(argc, argv, &o);
	if (rc != 0)
		return rc < 0 ? 0 : rc;
	/* The node sorts a short list; a long one (or all) is sorted here. */
	bool node_sorts = o.limit > 0 && o.limit <= LISTING_TOP_MAX;
	char line[96];
	if (node_sorts)
		snprintf(line, sizeof(line), "ps sort=%s limit=%lu\n", listing_key_name(o.sort), o.limit);
	else
		snprintf(line, sizeof(line), "ps\n");
	FILE *f = request("ps", &o.t, line);
	if (f == NULL)
		return EXIT_FAIL;
	struct row *rows = NULL;
	size_t n = 0;
	bool errored = false;
	bool complete = read_rows(f, &o, &rows, &n, &errored);
	fclose(f);
	if (!node_sorts)   /* (the node sent them in table order) */
		qsort_r(rows, n, sizeof(*rows), row_compare, &o.sort);
	size_t shown = o.limit > 0 && o.limit < n ? o.limit : n;
	if (!errored && !o.t.json)
		printf("%-10s %-16s %-10s %10s %7s %6s %7s  %s\n", "PID", "NAME", "STATE", "REDUCTIONS",
		       "MEMORY", "MBOX", "AGE", "WAITING FOR / IN");
	for (size_t i = 0; i < shown && !errored; i++) {
		if (o.t.json)
			printf("%s\n", rows[i].json);
		else
			print_row(&rows[i]);
	}
	for (size_t i = 0; i < n; i++)
		free(rows[i].json);
	free(rows);
	fflush(stdout);
	if (errored)
		return EXIT_FAIL;
	if (!complete) {
		if (n == 0)
			no_answer("ps");
		else
			fprintf(stderr, "wisp ps: the node ended (or stopped answering) before the "
			        "listing was complete: %zu processes shown\n", shown);
		return EXIT_FAIL;
	}
	return 0;
}

/* ---- wisp inspect ---- */

static const char inspect_usage[] =
	"usage: wisp inspect [--json] [--pid OSPID | --node NAME] PID\n";

static const char inspect_help[] =
	"usage: wisp inspect [--json] [--pid OSPID | --node NAME] PID\n"
	"\n"
	"Show one process of a running 'wisp run' in detail: what it waits for and\n"
	"where (its wasm frames), its links, its monitors both ways, its\n"
	"capabilities, its module and version, its parent, its names. PID is as\n"
	"wisp ps shows it (hex), or as a Rust guest prints it (<1.2>). A process\n"
	"that runs is waited for a moment:\n"
	"its links and monitors can only be read while it does not.\n"
	"\n"
	"  --json        the node's answer as it is: one JSON object\n"
	"  --pid OSPID, --node NAME   the run (needed when several run)\n"
	"\n"
	"exit status: 0 shown; 1 no such run or process; 2 usage error.\n";

/* A target's pid argument, or a usage error. */
static int pid_arg(const char *cmd, const char *usage, const char *a, uint64_t *pid)
{
	if (!observe_parse_pid(a, pid))
		return usage_error(cmd, usage, "'%s' is not a process id (hex, as wisp ps shows "
		                   "it, or <A.B> as a Rust guest prints it)", a);
	return 0;
}

static void print_list(const char *label, const struct json *a, const char *key)
{
	printf("%-14s", label);
	if (a == NULL || a->type != JSON_ARRAY || a->n == 0) {
		printf("none\n");
		return;
	}
	for (size_t i = 0; i < a->n; i++) {
		const struct json *v = &a->items[i];
		char text[1024];
		const char *s = v->type == JSON_STRING ? v->str : key != NULL ? json_str(v, key) : "";
		util_printable(text, sizeof(text), s);
		if (key != NULL && strcmp(key, "pid") == 0)
			printf("%s%s (ref %s)", i ? ", " : "", text, json_str(v, "ref"));
		else
			printf("%s%s", i ? ", " : "", text);
	}
	printf("\n");
}

static void print_limit(const struct json *caps, const char *key, const char *label, bool bytes)
{
	const struct json *v = json_get(caps, key);
	char b[32];
	if (v == NULL || v->type != JSON_NUMBER) {
		printf("%s none", label);
		return;
	}
	if (bytes)
		fmt_bytes((uint64_t)v->num, b, sizeof(b));
	else
		snprintf(b, sizeof(b), "%" PRId64, v->num);
	printf("%s %s", label, b);
}

static void print_caps(const struct json *c)
{
	if (c == NULL)
		return;
	printf("%-14s%s", "capabilities", json_bool(c, "spawn") ? "spawn" : "no spawn");
	if (json_bool(c, "make_caps"))
		printf(", narrower sets");
	if (json_bool(c, "nodes"))
		printf(", nodes");
	if (json_bool(c, "load_code"))
		printf(", load code");
	if (json_bool(c, "udp"))
		printf(", udp");
	if (json_bool(c, "dns"))
		printf(", dns");
	printf("\n%-14s", "limits");
	print_limit(c, "max_processes", "processes", false);
	print_limit(c, "max_memory", ", memory", true);
	print_limit(c, "max_cpu", ", cpu", false);
	print_limit(c, "max_message", ", message", true);
	print_limit(c, "max_fds", ", fds", false);
	printf("\n");
	const struct json *dirs = json_get(c, "dirs");
	printf("%-14s", "directories");
	for (size_t i = 0; dirs != NULL && dirs->type == JSON_ARRAY && i < dirs->n; i++) {
		char g[1024], h[1024];
		util_printable(g, sizeof(g), json_str(&dirs->items[i], "guest"));
		util_printable(h, sizeof(h), json_str(&dirs->items[i], "host"));
		printf("%s%s (%s%s)", i ? ", " : "", g, h,
		       json_bool(&dirs->items[i], "read_only") ? ", read-only" : "");
	}
	printf("%s\n", dirs == NULL || dirs->n == 0 ? "none" : "");
	print_list("connect", json_get(c, "connect"), NULL);
	print_list("listen", json_get(c, "listen"), NULL);
	print_list("environment", json_get(c, "env"), NULL);
}

static void print_detail(const struct json *d)
{
	struct row r = { .timeout_ms = json_num(d, "timeout_ms", -1), .fd = json_num(d, "host_fd", -1) };
	snprintf(r.state, sizeof(r.state), "%s", json_str(d, "state"));
	snprintf(r.wait, sizeof(r.wait), "%s", json_str(d, "wait"));
	snprintf(r.on, sizeof(r.on), "%s", json_str(d, "on"));
	snprintf(r.dir, sizeof(r.dir), "%s", json_str(d, "for"));
	snprintf(r.function, sizeof(r.function), "%s", json_str(d, "function"));
	char where[512], mem[16], stack[16], age[16];
	row_where(&r, where, sizeof(where));
	printf("%-14s%s%s%s\n", "pid", json_str(d, "pid"), json_bool(d, "main") ? " (the main process)"
	       : "", json_bool(d, "program") ? " (a program)" : "");
	print_list("names", json_get(d, "all_names"), NULL);
	printf("%-14s%s\n", "parent", json_str(d, "parent")[0] ? json_str(d, "parent")
	                                                       : "none (the runtime, or another node)");
	printf("%-14s%s", "state", json_str(d, "state"));
	if (strcmp(where, "-") != 0)
		printf(": %s", where[0] == ' ' ? where + 1 : where);
	printf("\n");
	print_list("frames", json_get(d, "frames"), NULL);
	if (json_get(d, "version") != NULL)
		printf("%-14sversion %" PRId64 " (%s tier, %s)\n", "module", json_num(d, "version", 0),
		       json_str(d, "tier"), json_str(d, "module"));
	fmt_bytes((uint64_t)json_num(d, "memory", 0), mem, sizeof(mem));
	fmt_bytes((uint64_t)json_num(d, "stack", 0), stack, sizeof(stack));
	printf("%-14s%s (and %s of native stack)\n", "memory", mem, stack);
	fmt_bytes((uint64_t)json_num(d, "mailbox_bytes", 0), mem, sizeof(mem));
	printf("%-14s%" PRId64 " messages%s%s%s\n", "mailbox", json_num(d, "mailbox", 0),
	       json_num(d, "mailbox_bytes", 0) > 0 ? " (" : "",
	       json_num(d, "mailbox_bytes", 0) > 0 ? mem : "",
	       json_num(d, "mailbox_bytes", 0) > 0 ? " bytes)" : "");
	fmt_time((uint64_t)json_num(d, "age_ms", 0), age, sizeof(age));
	printf("%-14s%" PRId64 " reductions, %" PRId64 " us of CPU, started %s ago\n", "work",
	       json_num(d, "reductions", 0), json_num(d, "cpu_us", 0), age);
	if (!json_bool(d, "complete")) {
		printf("%-14s(not known: it was running each time it was looked at)\n", "links");
	} else {
		printf("%-14s%s\n", "trap_exit", json_bool(d, "trap_exit") ? "yes" : "no");
		print_list("links", json_get(d, "links"), NULL);
		print_list("monitors", json_get(d, "monitors"), "pid");
		print_list("monitored by", json_get(d, "monitored_by"), "pid");
	}
	print_caps(json_get(d, "caps"));
	if (json_bool(d, "traced"))
		printf("%-14s%s\n", "traced", "yes (wisp trace)");
}

/* The arguments of a command about one process ([--pid OSPID | --node
 * NAME] [--json] PID): -1 when they are good (*t, *pidarg and *pid set),
 * else the exit status the command returns (0 after --help). */
static int one_process_args(const char *cmd, const char *usage, const char *help, int argc,
                            char **argv, struct target *t, const char **pidarg, uint64_t *pid)
{
	int rc;
	*pidarg = NULL;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			fputs(help, stdout);
			return 0;
		}
		if (target_option(cmd, usage, argc, argv, &i, t, &rc)) {
			if (rc != 0)
				return rc;
		} else if (a[0] == '-' && a[1] != '\0') {
			return usage_error(cmd, usage, "unknown option '%s'", a);
		} else if (*pidarg != NULL) {
			return usage_error(cmd, usage, "one process at a time: '%s' and '%s'", *pidarg, a);
		} else {
			*pidarg = a;
		}
	}
	if (*pidarg == NULL)
		return usage_error(cmd, usage, "which process? (its pid, as wisp ps shows it)");
	if ((rc = pid_arg(cmd, usage, *pidarg, pid)) != 0)
		return rc;
	return -1;
}

int cli_inspect(int argc, char **argv)
{
	struct target t = { 0 };
	const char *pidarg;
	uint64_t pid;
	int rc = one_process_args("inspect", inspect_usage, inspect_help, argc, argv, &t, &pidarg, &pid);
	if (rc >= 0)
		return rc;
	char req[64];
	snprintf(req, sizeof(req), "inspect %" PRIx64 "\n", pid);
	FILE *f = request("inspect", &t, req);
	if (f == NULL)
		return EXIT_FAIL;
	char *line = answer_line(f);
	fclose(f);
	rc = EXIT_FAIL;
	struct json *d = line != NULL ? json_parse(line) : NULL;
	if (line == NULL)
		no_answer("inspect");
	else if (said_error("inspect", line, pidarg))
		;
	else if (d == NULL)
		fprintf(stderr, "wisp inspect: the running wisp's answer is not what this wisp "
		        "reads (another version?)\n");
	else if (t.json)
		rc = printf("%s\n", line) > 0 ? 0 : EXIT_FAIL;
	else
		rc = (print_detail(d), 0);
	json_free(d);
	free(line);
	return rc;
}

/* ---- wisp kill ---- */

static const char kill_usage[] =
	"usage: wisp kill [--pid OSPID | --node NAME] PID [REASON]\n";

static const char kill_help[] =
	"usage: wisp kill [--pid OSPID | --node NAME] PID [REASON]\n"
	"\n"
	"Send process PID of a running 'wisp run' an exit signal, as Erlang's\n"
	"exit(Pid, Reason) from outside any process (the signal comes from no\n"
	"process: an EXIT message shows pid 0):\n"
	"  kill          (the default) it ends, reason KILLED, trapping or not\n"
	"  normal        ignored unless it traps exits (then an EXIT message)\n"
	"  shutdown, killed, an integer (an exit code), any other word (an\n"
	"                Erlang atom): it ends with that reason, unless it traps\n"
	"                exits (then it gets an EXIT message with it)\n"
	"\n"
	"exit status: 0 sent; 1 no such run or process; 2 usage error.\n";

int cli_kill(int argc, char **argv)
{
	struct target t = { 0 };
	const char *pidarg = NULL, *reason = NULL;
	int rc;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			fputs(kill_help, stdout);
			return 0;
		}
		if (pidarg == NULL && target_option("kill", kill_usage, argc, argv, &i, &t, &rc)) {
			if (rc != 0)
				return rc;
		} else if (pidarg == NULL && a[0] == '-' && a[1] != '\0') {
			return usage_error("kill", kill_usage, "unknown option '%s'", a);
		} else if (pidarg == NULL) {
			pidarg = a;
		} else if (reason == NULL) {
			reason = a;
		} else {
			return usage_error("kill", kill_usage, "a reason is one word: '%s' is one too "
			                   "many", a);
		}
	}
	uint64_t pid;
	if (pidarg == NULL)
		return usage_error("kill", kill_usage, "which process? (its pid, as wisp ps shows it)");
	if ((rc = pid_arg("kill", kill_usage, pidarg, &pid)) != 0)
		return rc;
	if (reason != NULL && (reason[0] == '\0' || strlen(reason) > 255 ||
	                       strpbrk(reason, " \t\r\n") != NULL))
		return usage_error("kill", kill_usage, "a reason is one word of at most 255 bytes");
	char req[400];
	snprintf(req, sizeof(req), "kill %" PRIx64 "%s%s\n", pid, reason ? " " : "",
	         reason ? reason : "");
	FILE *f = request("kill", &t, req);
	if (f == NULL)
		return EXIT_FAIL;
	char *line = answer_line(f);
	fclose(f);
	rc = EXIT_FAIL;
	if (line == NULL)
		no_answer("kill");
	else if (strcmp(line, "ok") == 0)
		rc = 0;
	else if (!said_error("kill", line, pidarg))
		fprintf(stderr, "wisp kill: unexpected answer from the running wisp\n");
	free(line);
	return rc;
}

/* ---- wisp trace ---- */

static const char trace_usage[] =
	"usage: wisp trace [--pid OSPID | --node NAME] PID\n";

static const char trace_help[] =
	"usage: wisp trace [--pid OSPID | --node NAME] PID\n"
	"\n"
	"Show live what process PID of a running 'wisp run' sends and receives,\n"
	"its links, monitors and exit signals, its spawns and its end, one line\n"
	"each, with the seconds since the trace began; until it ends or Ctrl-C.\n"
	"A message shows its tag, its size and its first 40 bytes.\n"
	"The traced process never waits for this: events that come faster than\n"
	"they are read are dropped, and the count of them is shown.\n"
	"\n"
	"exit status: 0 the process ended (or Ctrl-C); 1 no such run or process,\n"
	"or the node ended; 2 usage error.\n";

int cli_trace(int argc, char **argv)
{
	struct target t = { 0 };
	const char *pidarg;
	uint64_t pid;
	int rc = one_process_args("trace", trace_usage, trace_help, argc, argv, &t, &pidarg, &pid);
	if (rc >= 0)
		return rc;
	char req[64];
	snprintf(req, sizeof(req), "trace %" PRIx64 "\n", pid);
	FILE *f = request("trace", &t, req);
	if (f == NULL)
		return EXIT_FAIL;
	char *line = answer_line(f);
	rc = EXIT_FAIL;
	if (line == NULL) {
		no_answer("trace");
	} else if (strncmp(line, "ok ", 3) == 0) {
		printf("tracing %s (Ctrl-C to stop)\n", line + 3);
		fflush(stdout);
		bool ended = false;
		free(line);
		while ((line = answer_line(f)) != NULL) {
			char text[4096];
			util_printable(text, sizeof(text), line);
			printf("%s\n", text);
			fflush(stdout);
			ended = ended || strncmp(line, "end: the process ended", 22) == 0;
			free(line);
		}
		line = NULL;
		rc = ended ? 0 : EXIT_FAIL;
		if (!ended)
			fprintf(stderr, "wisp trace: the node ended, or stopped answering\n");
	} else if (!said_error("trace", line, pidarg)) {
		fprintf(stderr, "wisp trace: unexpected answer from the running wisp\n");
	}
	free(line);
	fclose(f);
	return rc;
}
