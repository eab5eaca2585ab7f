/*
 * metrics.c — a run's figures for Prometheus (`--metrics ADDR:PORT`,
 * GET /metrics) and for `wisp stats` (the control socket's "stats"), and
 * the HTTP endpoint that also serves the dashboard.
 *
 * What. metrics_text renders the text exposition format, version 0.0.4:
 * every family with "# HELP" and "# TYPE", names prefixed wisp_ (and the
 * conventional process_* of the OS process), counters ending in _total,
 * base units (_seconds, _bytes), labels for what a family is split by
 * (reason, scheduler, kind). Every figure comes from what the runtime
 * keeps anyway (rt_stats_read: per-thread counters summed, pool books,
 * queue lengths), so a scrape costs O(schedulers), never a walk over the
 * processes; plus the compile cache's hits and misses (counted here, by
 * the CLI's compile paths), the connected nodes (dist_nodes: O(nodes)),
 * and the OS process's resident memory and CPU time. docs/architecture.md
 * ("Metrics") lists the names and what they mean.
 *
 * The endpoint. A small HTTP/1.1 server on a thread of its own (never a
 * scheduler: a slow scrape cannot delay a process): one poll loop over the
 * listening socket and at most HTTP_CLIENTS connections. Each connection
 * sends one request (its head within HTTP_REQUEST_MAX bytes, the whole of
 * it within HTTP_DEADLINE_MS of being accepted: a client trickling bytes
 * is cut off) and gets one response, then the connection closes
 * (`Connection: close`). Past HTTP_CLIENTS at once, a new connection is
 * answered 503 at once and closed, so a flood of idle connections costs
 * the node nothing but the accepts. The process out of fds, the listener
 * rests HTTP_ACCEPT_RETRY_MS (it stays readable: polling it would spin).
 * Responses: 200 for GET or HEAD of a
 * known path, 404 for another path, 405 for another method, 400 for a
 * request line that is not HTTP, 431 for a head over the limit. Paths
 * are a table (routes[]): /metrics, and the live dashboard (the page at /
 * with its script and stylesheet, embedded in the binary, and its JSON
 * under /api/: dashboard.c), whose renderers get the query string and
 * may answer 400.
 *
 * Rejected: a thread per connection (a flood of connections would be a
 * flood of threads); keep-alive (Prometheus scrapes every few seconds: a
 * connection per scrape costs nothing that matters, and no idle
 * connection ever holds a slot).
 */
#include "metrics.h"

#include "listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "compile/pipeline.h"
#include "dashboard.h"
#include "opts.h"

#define HTTP_CLIENTS 16               /* connections served at once */
#define HTTP_REQUEST_MAX 8192         /* a request's head, in bytes */
#define HTTP_DEADLINE_MS 5000         /* accept to the last byte sent */
#define HTTP_BACKLOG 64
#define HTTP_ACCEPT_RETRY_MS 100      /* out of fds: accept again this much later */

struct client {
	int fd;                       /* -1: a free slot */
	uint64_t deadline;            /* ms, now_ms's clock */
	size_t got;                   /* bytes of the request read */
	char *out;                    /* the response (once the request is read) */
	size_t out_len, out_off;
	char req[HTTP_REQUEST_MAX];
};

struct metrics {
	_Atomic(struct rt *) rt;      /* attached: the runtime is up */
	struct log *log;              /* the crash ring's, or NULL */
	struct dist *dist;
	_Atomic uint64_t cache_hits, cache_misses;
	int fd;                       /* the listening socket, or -1 */
	char where[128];              /* what it listens on, as bound */
	int stop_fd;                  /* eventfd: stop the thread */
	uint64_t accept_after;        /* ms: the listener rests until (out of fds) */
	pthread_t thread;
	bool running;
	struct client clients[HTTP_CLIENTS];
};

/* ---- options and set-up ---- */

int metrics_parse_opt(int argc, char **argv, int *i, const char **listen)
{
	if (!opt_is(argv[*i], "--metrics"))
		return 0;
	const char *v = opt_value(argc, argv, i, "--metrics");
	if (v == NULL || *v == '\0') {
		fprintf(stderr, "wisp: --metrics needs ADDRESS:PORT (e.g. 127.0.0.1:9100)\n");
		return 2;
	}
	char why[160];
	if (!listen_form_ok("--metrics", "127.0.0.1:9100; port 0: any free port", v, why,
	                    sizeof(why))) {
		fprintf(stderr, "wisp: %s, not '%s'\n", why, v);
		return 2;
	}
	*listen = v;
	return 1;
}

struct metrics *metrics_new(const char *listen, char *err, size_t errlen)
{
	struct metrics *m = calloc(1, sizeof(*m));
	if (m == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	m->fd = m->stop_fd = -1;
	for (int i = 0; i < HTTP_CLIENTS; i++)
		m->clients[i].fd = -1;
	if (listen == NULL)
		return m;
	if ((m->fd = listen_tcp(listen, HTTP_BACKLOG, SOCK_NONBLOCK, "--metrics: ", err,
	                        errlen)) < 0 ||
	    (m->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		if (m->fd >= 0)
			snprintf(err, errlen, "--metrics: %s", strerror(errno));
		metrics_free(m);
		return NULL;
	}
	listen_where(m->fd, m->where, sizeof(m->where));
	return m;
}

void metrics_count_compile(struct metrics *m, bool hit)
{
	if (m != NULL)
		atomic_fetch_add(hit ? &m->cache_hits : &m->cache_misses, 1);
}

/* ---- the text ---- */

/* "# HELP" and "# TYPE" of a family (help: no backslash, no newline). */
static void family(struct util_text *t, const char *name, const char *type, const char *help)
{
	util_text_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One sample: name, labels ("" or 'k="v",...'), value. */
static void sample(struct util_text *t, const char *name, const char *labels, uint64_t v)
{
	util_text_printf(t, "%s%s%s%s %llu\n", name, *labels ? "{" : "", labels, *labels ? "}" : "",
	    (unsigned long long)v);
}

static void sample_s(struct util_text *t, const char *name, const char *labels, uint64_t ns)
{
	util_text_printf(t, "%s%s%s%s %llu.%09llu\n", name, *labels ? "{" : "", labels, *labels ? "}" : "",
	    (unsigned long long)(ns / 1000000000u), (unsigned long long)(ns % 1000000000u));
}

/* A family with a single sample. */
static void single(struct util_text *t, const char *name, const char *type, const char *help,
                   uint64_t v)
{
	family(t, name, type, help);
	sample(t, name, "", v);
}

/* s as a label value: backslash, double quote and newline escaped. */
static void label_value(char *out, size_t cap, const char *s)
{
	size_t o = 0;
	for (; *s && o + 3 < cap; s++) {
		if (*s == '\\' || *s == '"' || *s == '\n') {
			out[o++] = '\\';
			out[o++] = *s == '\n' ? 'n' : *s;
		} else {
			out[o++] = *s;
		}
	}
	out[o] = '\0';
}

static void put_processes(struct util_text *t, const struct rt_stats *st)
{
	single(t, "wisp_processes", "gauge", "Processes alive (spawned and not yet ended).",
	       st->processes);
	single(t, "wisp_processes_hibernated", "gauge",
	       "Processes hibernated now (their stack and memory given back).", st->hibernated);
	single(t, "wisp_processes_io_waiting", "gauge",
	       "Processes waiting for a file descriptor (a socket, a pipe).", st->io_waiting);
	single(t, "wisp_processes_spawned_total", "counter", "Processes spawned.",
	       st->counter[RT_SPAWNED]);
	family(t, "wisp_processes_exited_total", "counter", "Processes ended, by exit reason.");
	for (int k = 0; k < RT_EXIT_KINDS; k++) {
		char labels[48];
		snprintf(labels, sizeof(labels), "reason=\"%s\"", proc_exit_kind_name(k));
		sample(t, "wisp_processes_exited_total", labels, st->counter[RT_EXITED + k]);
	}
	single(t, "wisp_registered_names", "gauge", "Names registered.", st->names);
	single(t, "wisp_reductions_total", "counter", "Reductions processes used.",
	       st->counter[RT_REDUCTIONS]);
}

static void put_messages(struct util_text *t, const struct rt_stats *st)
{
	single(t, "wisp_messages_sent_total", "counter",
	       "Messages processes sent (send, request, send_after when it fires, to any node).",
	       st->counter[RT_MSG_SENT]);
	family(t, "wisp_messages_dropped_total", "counter",
	       "Messages that reached no mailbox: no such process, the addressee's memory "
	       "limit, or a pid of an unknown node.");
	sample(t, "wisp_messages_dropped_total", "reason=\"noproc\"", st->counter[RT_DROPPED_NOPROC]);
	sample(t, "wisp_messages_dropped_total", "reason=\"limit\"", st->counter[RT_DROPPED_LIMIT]);
	sample(t, "wisp_messages_dropped_total", "reason=\"nonode\"", st->counter[RT_DROPPED_NONODE]);
}

/* One family with a sample per scheduler: the field at `off` of each
 * scheduler's figures, in seconds if it is a time in ns. */
static void per_scheduler(struct util_text *t, const struct rt_stats *st, const char *name,
                          const char *type, const char *help, size_t off, bool ns)
{
	family(t, name, type, help);
	for (int i = 0; i < st->nsched; i++) {
		char l[48];
		snprintf(l, sizeof(l), "scheduler=\"%d\"", i);
		uint64_t v;
		memcpy(&v, (const char *)&st->sched[i] + off, sizeof(v));
		(ns ? sample_s : sample)(t, name, l, v);
	}
}

static void put_schedulers(struct util_text *t, const struct rt_stats *st)
{
	single(t, "wisp_schedulers", "gauge", "Scheduler threads.", (uint64_t)st->nsched);
	per_scheduler(t, st, "wisp_scheduler_busy_seconds_total", "counter",
	              "Time each scheduler spent running processes.",
	              offsetof(struct sched_stats, busy_ns), true);
	per_scheduler(t, st, "wisp_scheduler_idle_seconds_total", "counter",
	              "Time each scheduler spent waiting for work (asleep, or polling the reactor).",
	              offsetof(struct sched_stats, idle_ns), true);
	per_scheduler(t, st, "wisp_scheduler_dispatches_total", "counter",
	              "Processes each scheduler ran.", offsetof(struct sched_stats, dispatches), false);
	per_scheduler(t, st, "wisp_scheduler_steals_total", "counter",
	              "Processes each scheduler took from another's run queue.",
	              offsetof(struct sched_stats, steals), false);
	per_scheduler(t, st, "wisp_run_queue_length", "gauge",
	              "Processes runnable now, by run queue (each scheduler's, and the global one).",
	              offsetof(struct sched_stats, queued), false);
	sample(t, "wisp_run_queue_length", "scheduler=\"global\"", st->global_queued);
	uint64_t events = 0;
	for (int i = 0; i < st->nsched; i++)
		events += st->sched[i].io_events;
	single(t, "wisp_reactor_events_total", "counter",
	       "I/O readiness events the schedulers took from the reactor.", events);
}

static void put_memory(struct util_text *t, const struct rt_stats *st)
{
	family(t, "wisp_memory_bytes", "gauge",
	       "Memory held for processes, by kind, in bytes of address space (pages are "
	       "committed when first touched): linear memories, fiber stacks, queued "
	       "messages, the process table's records.");
	sample(t, "wisp_memory_bytes", "kind=\"linear\"", st->mem_linear_pooled + st->mem_linear_own);
	sample(t, "wisp_memory_bytes", "kind=\"stacks\"", st->mem_stacks);
	sample(t, "wisp_memory_bytes", "kind=\"messages\"", st->mem_messages);
	sample(t, "wisp_memory_bytes", "kind=\"process_table\"", st->mem_process_table);
	family(t, "wisp_memory_mapped_bytes", "gauge",
	       "Address space the pools have mapped (linear memory slabs, stack slabs), in use "
	       "or free.");
	sample(t, "wisp_memory_mapped_bytes", "pool=\"linear\"", st->mem_linear_slabs);
	sample(t, "wisp_memory_mapped_bytes", "pool=\"stacks\"", st->mem_stack_slabs);
	single(t, "wisp_sockets_open", "gauge", "Sockets open in processes' file descriptor tables.",
	       st->sockets);
}

/* The nodes connected now (O(nodes), under the node table's lock). */
static uint64_t nodes_connected(struct dist *d)
{
	char small[4096], *buf = small;
	uint32_t scanned;
	size_t need = dist_nodes(d, buf, sizeof(small), &scanned);
	if (need > sizeof(small) && (buf = malloc(need + 4096)) != NULL)
		need = dist_nodes(d, buf, need + 4096, &scanned);
	uint64_t n = 0;
	for (size_t i = 0; buf != NULL && i < need; i++)
		n += buf[i] == '\0';
	if (buf != small)
		free(buf);
	return n;
}

/* The OS process's conventional figures: resident memory, CPU time. */
static void put_process(struct util_text *t, uint64_t uptime_ns)
{
	long rss_pages = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f != NULL) {
		if (fscanf(f, "%*s %ld", &rss_pages) != 1)
			rss_pages = 0;
		fclose(f);
	}
	single(t, "process_resident_memory_bytes", "gauge", "Resident memory of the wisp process.",
	       (uint64_t)rss_pages * (uint64_t)sysconf(_SC_PAGESIZE));
	struct rusage ru;
	uint64_t cpu_ns = 0;
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		cpu_ns = ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000u +
		         ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000u;
	family(t, "process_cpu_seconds_total", "counter",
	       "CPU time (user and system) of the wisp process.");
	sample_s(t, "process_cpu_seconds_total", "", cpu_ns);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	uint64_t wall_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
	family(t, "process_start_time_seconds", "gauge",
	       "When the runtime started, in seconds since the Unix epoch.");
	sample_s(t, "process_start_time_seconds", "", wall_ns - uptime_ns);
}

static void put_info(struct metrics *m, struct util_text *t, const struct rt_stats *st)
{
	char node[300] = "", labels[400];
	if (m->dist != NULL) {
		char v[280];
		label_value(v, sizeof(v), dist_node_name(m->dist));
		snprintf(node, sizeof(node), ",node=\"%s\"", v);
	}
	snprintf(labels, sizeof(labels), "version=\"%s\"%s", WISP_VERSION, node);
	family(t, "wisp_info", "gauge", "The wisp version (and node name) of this run: always 1.");
	sample(t, "wisp_info", labels, 1);
	family(t, "wisp_uptime_seconds", "gauge", "Time since the runtime started.");
	sample_s(t, "wisp_uptime_seconds", "", st->uptime_ns);
}

char *metrics_text(struct metrics *m, size_t *len)
{
	struct rt *rt = m != NULL ? atomic_load(&m->rt) : NULL;
	struct rt_stats *st = rt != NULL ? rt_stats_read(rt) : NULL;
	if (st == NULL)
		return NULL;
	struct util_text t = { 0 };
	put_info(m, &t, st);
	put_processes(&t, st);
	put_messages(&t, st);
	put_schedulers(&t, st);
	put_memory(&t, st);
	single(&t, "wisp_compile_cache_hits_total", "counter",
	       "Modules this run found compiled in the cache.", atomic_load(&m->cache_hits));
	single(&t, "wisp_compile_cache_misses_total", "counter",
	       "Modules this run had to compile (or wait for another run to compile).",
	       atomic_load(&m->cache_misses));
	if (m->dist != NULL)
		single(&t, "wisp_dist_nodes_connected", "gauge", "Nodes connected to this one.",
		       nodes_connected(m->dist));
	put_process(&t, st->uptime_ns);
	free(st);
	if (t.oom) {
		free(t.p);
		return NULL;
	}
	*len = t.len;
	return t.p;
}

/* ---- the HTTP endpoint ---- */

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* What a path serves: a page's content type, headers beyond the usual
 * ("" or lines each ending "\r\n") and how to render it: the body
 * (malloc'd, *len bytes) for the query (what followed '?', "" if none),
 * *status 200, or 400 with a plain-text reason; NULL: 503 (not attached,
 * out of memory). */
struct route {
	const char *path;
	const char *type;
	const char *extra;
	char *(*render)(struct metrics *m, const char *query, size_t *len, int *status);
};

static char *render_metrics(struct metrics *m, const char *query, size_t *len, int *status)
{
	(void)query;
	*status = 200;
	return metrics_text(m, len);
}

/* One of the dashboard's embedded files, as a body. */
static char *copy_of(const char *file, size_t *len, int *status)
{
	*status = 200;
	*len = strlen(file);
	char *s = malloc(*len + 1);
	return s != NULL ? memcpy(s, file, *len + 1) : NULL;
}

static char *render_page(struct metrics *m, const char *query, size_t *len, int *status)
{
	(void)m;
	(void)query;
	return copy_of(wisp_dashboard_html, len, status);
}

static char *render_css(struct metrics *m, const char *query, size_t *len, int *status)
{
	(void)m;
	(void)query;
	return copy_of(wisp_dashboard_css, len, status);
}

static char *render_js(struct metrics *m, const char *query, size_t *len, int *status)
{
	(void)m;
	(void)query;
	return copy_of(wisp_dashboard_js, len, status);
}

static const char *node_name(struct metrics *m)
{
	return m->dist != NULL ? dist_node_name(m->dist) : NULL;
}

static char *render_processes(struct metrics *m, const char *query, size_t *len, int *status)
{
	struct rt *rt = atomic_load(&m->rt);
	return rt != NULL ? dashboard_processes(rt, node_name(m), query, len, status) : NULL;
}

static char *render_tree(struct metrics *m, const char *query, size_t *len, int *status)
{
	struct rt *rt = atomic_load(&m->rt);
	return rt != NULL ? dashboard_tree(rt, node_name(m), query, len, status) : NULL;
}

static char *render_crashes(struct metrics *m, const char *query, size_t *len, int *status)
{
	static const char none[] = "/api/crashes takes no parameters\n";
	*status = 200;
	if (*query != '\0') {
		*status = 400;
		*len = sizeof(none) - 1;
		return strdup(none);
	}
	if (atomic_load(&m->rt) == NULL || m->log == NULL)
		return NULL;
	return log_recent_json(m->log, len);
}

/* The page's own files only (no inline script or style, nothing from
 * elsewhere): what a name shown on it could inject would not run. */
#define DASHBOARD_CSP "Content-Security-Policy: default-src 'none'; script-src 'self'; " \
	"style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; " \
	"form-action 'none'; frame-ancestors 'none'\r\n"
#define NO_STORE "Cache-Control: no-store\r\n"

static const struct route routes[] = {
	{ "/metrics", "text/plain; version=0.0.4; charset=utf-8", "", render_metrics },
	{ "/", "text/html; charset=utf-8", DASHBOARD_CSP, render_page },
	{ "/dashboard.css", "text/css; charset=utf-8", "", render_css },
	{ "/dashboard.js", "text/javascript; charset=utf-8", "", render_js },
	{ "/api/processes", "application/json", NO_STORE, render_processes },
	{ "/api/tree", "application/json", NO_STORE, render_tree },
	{ "/api/crashes", "application/json", NO_STORE, render_crashes },
};

/* The response c gets: status, headers, and body (unless head_only). */
static void respond(struct client *c, int status, const char *reason, const char *type,
                    const char *extra, const char *body, size_t len, bool head_only)
{
	char head[1024];
	int n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	                 "Content-Length: %zu\r\nX-Content-Type-Options: nosniff\r\n"
	                 "%sConnection: close\r\n\r\n", status, reason, type, len, extra);
	size_t body_len = head_only ? 0 : len;
	c->out = malloc((size_t)n + body_len);
	if (c->out == NULL) {
		c->out_len = 0;
		return;
	}
	memcpy(c->out, head, (size_t)n);
	if (body_len)
		memcpy(c->out + n, body, body_len);
	c->out_len = (size_t)n + body_len;
	c->out_off = 0;
}

static void respond_text(struct client *c, int status, const char *reason, const char *extra,
                         const char *body)
{
	respond(c, status, reason, "text/plain; charset=utf-8", extra, body, strlen(body), false);
}

/* Whether the request's head has all arrived: "\r\n\r\n" (or "\n\n" from
 * a lenient client) ends it. Looks only at bytes from `from` (what came
 * before was looked at already: a client sending a byte at a time costs
 * O(n), not O(n^2)). */
static bool head_done(const struct client *c, size_t from)
{
	for (size_t i = from > 3 ? from - 3 : 0; i + 1 < c->got; i++) {
		if (c->req[i] == '\n' && c->req[i + 1] == '\n')
			return true;
		if (i + 3 < c->got && memcmp(c->req + i, "\r\n\r\n", 4) == 0)
			return true;
	}
	return false;
}

/* The request line "METHOD SP TARGET SP HTTP/1.x" of c's head, split in
 * place (method: capitals; target: from '/', no space): false if it is
 * not one. */
static bool request_line(struct client *c, char **method, char **target)
{
	char *line = c->req;
	line[strcspn(line, "\r\n")] = '\0';
	char *sp1 = strchr(line, ' ');
	char *sp2 = sp1 != NULL ? strchr(sp1 + 1, ' ') : NULL;
	if (sp1 == NULL || sp2 == NULL || sp1 == line || sp2 == sp1 + 1 || sp1[1] != '/')
		return false;
	for (char *p = line; p < sp1; p++)
		if (*p < 'A' || *p > 'Z')
			return false;
	if (strcmp(sp2 + 1, "HTTP/1.1") != 0 && strcmp(sp2 + 1, "HTTP/1.0") != 0)
		return false;
	*sp1 = *sp2 = '\0';
	*method = line;
	*target = sp1 + 1;
	return true;
}

/* Answer c's request (its whole head is in c->req). */
static void handle(struct metrics *m, struct client *c)
{
	char *method, *target;
	if (!request_line(c, &method, &target)) {
		respond_text(c, 400, "Bad Request", "", "not an HTTP/1.x request\n");
		return;
	}
	bool head = strcmp(method, "HEAD") == 0;
	if (!head && strcmp(method, "GET") != 0) {
		respond_text(c, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n",
		             "only GET and HEAD\n");
		return;
	}
	target[strcspn(target, "#")] = '\0';
	char *query = strchr(target, '?');
	if (query != NULL)
		*query++ = '\0';
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (strcmp(target, routes[i].path) != 0)
			continue;
		size_t len;
		int status = 200;
		char *body = routes[i].render(m, query != NULL ? query : "", &len, &status);
		if (body == NULL)
			respond_text(c, 503, "Service Unavailable", "", "no figures (out of memory)\n");
		else if (status != 200)
			respond(c, 400, "Bad Request", "text/plain; charset=utf-8", "", body, len, head);
		else
			respond(c, 200, "OK", routes[i].type, routes[i].extra, body, len, head);
		free(body);
		return;
	}
	respond_text(c, 404, "Not Found", "",
	             "not found: the figures are at /metrics, the dashboard at /\n");
}

static void drop(struct client *c)
{
	/* (What the client sent beyond its request is read first: closing
	 * with unread bytes would reset the connection, losing the response's
	 * tail at the client.) */
	char sink[512];
	for (int i = 0; i < 128 && read(c->fd, sink, sizeof(sink)) > 0; i++)
		;
	close(c->fd);
	c->fd = -1;
	free(c->out);
	c->out = NULL;
	c->got = c->out_len = c->out_off = 0;
}

/* c's socket can be read: take what came; answer once the head is whole. */
static void on_readable(struct metrics *m, struct client *c)
{
	ssize_t r = read(c->fd, c->req + c->got, sizeof(c->req) - 1 - c->got);
	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
		drop(c);
		return;
	}
	size_t from = c->got;
	if (r > 0)
		c->got += (size_t)r;
	c->req[c->got] = '\0';
	bool nul = memchr(c->req + from, '\0', c->got - from) != NULL;
	if (nul || head_done(c, from)) {
		if (nul)
			respond_text(c, 400, "Bad Request", "", "a NUL byte in the request\n");
		else
			handle(m, c);
		if (c->out == NULL)
			drop(c);
	} else if (c->got == sizeof(c->req) - 1) {
		respond_text(c, 431, "Request Header Fields Too Large", "",
		             "the request's head is over 8 KiB\n");
		if (c->out == NULL)
			drop(c);
	}
}

/* c's socket can take more of its response. */
static void on_writable(struct client *c)
{
	ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
	if (w < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (w > 0)
		c->out_off += (size_t)w;
	if (w <= 0 || c->out_off == c->out_len) {
		shutdown(c->fd, SHUT_WR);
		drop(c);
	}
}

/* More connections than HTTP_CLIENTS: told so at once, never queued. */
static void refuse(int fd)
{
	static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
	                           "Content-Length: 15\r\nRetry-After: 1\r\nConnection: close\r\n"
	                           "\r\ntoo many scrapes\n";
	ssize_t w = send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)w;   /* (a client that cannot take it gets the close) */
	close(fd);
}

static void accept_all(struct metrics *m)
{
	for (;;) {
		int fd = accept4(m->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
			continue;
		if (fd < 0 && errno != EAGAIN) {
			/* Out of fds (or memory): the connection waits in the
			 * backlog, and the listener, readable meanwhile, is left
			 * out of the poll for a while (else the loop spins). */
			m->accept_after = now_ms() + HTTP_ACCEPT_RETRY_MS;
		}
		if (fd < 0)
			return;
		struct client *c = NULL;
		for (int i = 0; i < HTTP_CLIENTS && c == NULL; i++)
			if (m->clients[i].fd < 0)
				c = &m->clients[i];
		if (c == NULL) {
			refuse(fd);
			continue;
		}
		c->fd = fd;
		c->got = 0;
		c->deadline = now_ms() + HTTP_DEADLINE_MS;
	}
}

/* The poll set: stop, listener (left out while it rests), clients (into
 * map[]). Its length; *next: the first deadline, or the end of the rest. */
static int poll_set(struct metrics *m, struct pollfd *pf, int *map, uint64_t *next)
{
	int n = 0;
	bool resting = now_ms() < m->accept_after;
	pf[n++] = (struct pollfd){ .fd = m->stop_fd, .events = POLLIN };
	/* (poll skips a negative fd.) */
	pf[n++] = (struct pollfd){ .fd = resting ? -1 : m->fd, .events = POLLIN };
	*next = resting ? m->accept_after : UINT64_MAX;
	for (int i = 0; i < HTTP_CLIENTS; i++) {
		struct client *c = &m->clients[i];
		if (c->fd < 0)
			continue;
		map[n] = i;
		pf[n++] = (struct pollfd){ .fd = c->fd, .events = c->out ? POLLOUT : POLLIN };
		if (c->deadline < *next)
			*next = c->deadline;
	}
	return n;
}

static void *http_main(void *arg)
{
	struct metrics *m = arg;
	struct pollfd pf[HTTP_CLIENTS + 2];
	int map[HTTP_CLIENTS + 2];
	for (;;) {
		uint64_t next, now = now_ms();
		int n = poll_set(m, pf, map, &next);
		int timeout = next == UINT64_MAX ? -1 : next <= now ? 0 : (int)(next - now);
		if (poll(pf, (nfds_t)n, timeout) < 0 && errno != EINTR)
			break;
		if (pf[0].revents)
			break;   /* metrics_detach */
		now = now_ms();
		for (int k = 2; k < n; k++) {
			struct client *c = &m->clients[map[k]];
			if (c->fd < 0)
				continue;
			if (now >= c->deadline)
				drop(c);   /* too slow: cut off */
			else if (pf[k].revents & (POLLOUT | POLLERR | POLLHUP) && c->out != NULL)
				on_writable(c);
			else if (pf[k].revents)
				on_readable(m, c);
		}
		if (pf[1].revents)
			accept_all(m);
	}
	return NULL;
}

void metrics_attach(struct metrics *m, struct rt *rt, struct dist *dist)
{
	if (m == NULL)
		return;
	m->dist = dist;
	atomic_store(&m->rt, rt);
	if (m->fd < 0 || m->running)
		return;
	m->running = pthread_create(&m->thread, NULL, http_main, m) == 0;
	if (m->running)
		fprintf(stderr, "wisp: metrics at http://%s/metrics, the dashboard at http://%s/\n",
		        m->where, m->where);
	else
		fprintf(stderr, "wisp: --metrics: cannot start its thread: the run goes on without\n");
}

void metrics_set_log(struct metrics *m, struct log *log)
{
	if (m != NULL)
		m->log = log;
}

void metrics_detach(struct metrics *m)
{
	if (m == NULL)
		return;
	if (m->running) {
		uint64_t one = 1;
		ssize_t w = write(m->stop_fd, &one, sizeof(one));
		(void)w;
		pthread_join(m->thread, NULL);
		m->running = false;
	}
	for (int i = 0; i < HTTP_CLIENTS; i++)
		if (m->clients[i].fd >= 0)
			drop(&m->clients[i]);
	atomic_store(&m->rt, NULL);
}

void metrics_free(struct metrics *m)
{
	if (m == NULL)
		return;
	metrics_detach(m);
	if (m->fd >= 0)
		close(m->fd);
	if (m->stop_fd >= 0)
		close(m->stop_fd);
	free(m);
}
