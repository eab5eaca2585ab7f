/*
 * observe.c — the control socket's requests that look into the node
 * (issue 16): ps, inspect, kill, trace. control.c reads the request line
 * and hands it here, on the connection's own thread.
 *
 * The protocol (one request a connection, a line; replies as below;
 * any error is one line "error TEXT"):
 *   ps[ sort=KEY][ limit=N]  JSON lines, one per process (listing.c),
 *                            then {"end":true,"listed":N}; without a
 *                            limit in table order (the reader sorts)
 *   inspect PID              one JSON line: the process in detail
 *   kill PID[ REASON]        "ok": an exit signal from outside (REASON:
 *                            kill (the default), normal, shutdown, an
 *                            integer (an exit code), or any other atom)
 *   trace PID                "ok PID", then a line per event until the
 *                            process ends ("end ...") or the reader
 *                            closes its end or sends anything
 * PIDs are hex, as wisp prints them.
 *
 * Bounds. Nothing here holds a lock of the runtime while it writes:
 * the listing's walk lets go of each process before its line is
 * written, and a trace's process writes into a ring that is read here.
 * A reader that does not read is cut off: a listing or a detail must be
 * written within OBSERVE_REPLY_TIMEOUT_S, and a trace's reader may let
 * OBSERVE_STALL_TIMEOUT_S pass without reading (the trace's events are
 * dropped and counted meanwhile, never waited for). Every wait also ends
 * when the node stops (control.c sets *stop and shuts the socket down).
 */
#include "observe.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "dist/etf.h"
#include "listing.h"
#include "proc/caps.h"
#include "proc/inspect.h"

#define OUT_BUF 65536
#define TRACE_POLL_MS 20         /* a trace's reader looks at the ring this often */
#define TRACE_BATCH 256

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- writing, under deadlines ---- */

struct out {
	int fd;
	const atomic_bool *stop;
	uint64_t deadline;       /* ms: the whole reply (0: none) */
	uint64_t stall_ms;       /* the most a write may wait (0: none) */
	bool failed;
	size_t n;
	char buf[OUT_BUF];
};

/* All of p, or false once the reader is gone, too slow, or the node
 * stops. */
static bool send_all(struct out *o, const char *p, size_t len)
{
	while (len > 0 && !o->failed) {
		uint64_t start = now_ms();
		struct pollfd pf = { .fd = o->fd, .events = POLLOUT };
		for (;;) {
			uint64_t now = now_ms();
			if ((o->stop != NULL && atomic_load(o->stop)) ||
			    (o->deadline != 0 && now >= o->deadline) ||
			    (o->stall_ms != 0 && now - start >= o->stall_ms)) {
				o->failed = true;
				return false;
			}
			if (poll(&pf, 1, 100) > 0)
				break;
		}
		ssize_t w = send(o->fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (w <= 0) {
			o->failed = true;
			return false;
		}
		p += w;
		len -= (size_t)w;
	}
	return !o->failed;
}

static bool flush(struct out *o)
{
	bool ok = send_all(o, o->buf, o->n);
	o->n = 0;
	return ok;
}

static bool put(struct out *o, const char *s, size_t len)
{
	if (o->n + len > sizeof(o->buf) && !flush(o))
		return false;
	if (len > sizeof(o->buf))
		return send_all(o, s, len);
	memcpy(o->buf + o->n, s, len);
	o->n += len;
	return !o->failed;
}

__attribute__((format(printf, 2, 3)))
static bool putf(struct out *o, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return false;
	return put(o, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static struct out *out_new(int fd, const atomic_bool *stop, uint64_t timeout_s, uint64_t stall_s)
{
	struct out *o = malloc(sizeof(*o));
	if (o != NULL)
		*o = (struct out){ .fd = fd, .stop = stop,
		                   .deadline = timeout_s ? now_ms() + timeout_s * 1000 : 0,
		                   .stall_ms = stall_s * 1000 };
	return o;
}

/* A one-line reply (an error, kill's "ok"): written even while the node
 * stops (which gives requests a moment to end: control.c). */
static void reply(int fd, const atomic_bool *stop, const char *text)
{
	(void)stop;
	struct out o = { .fd = fd, .deadline = now_ms() + OBSERVE_STALL_TIMEOUT_S * 1000 };
	send_all(&o, text, strlen(text));
}

/* ---- growing strings (a detail's JSON) ---- */


/* A JSON string (quotes included) of a guest's bytes made printable. */
static void sb_guest(struct util_text *b, const char *s)
{
	char printable[4 * 1024], json[8 * 1024];
	util_printable(printable, sizeof(printable), s);
	listing_json_escape(json, sizeof(json), printable);
	util_text_printf(b, "\"%s\"", json);
}

/* ---- pids and reasons ---- */

/* A decimal number of at most 32 bits at *s, which moves past it. */
static bool parse_u32(const char **s, uint64_t *v)
{
	const char *p = *s;
	*v = 0;
	for (; *p >= '0' && *p <= '9' && p - *s < 10; p++)
		*v = *v * 10 + (uint64_t)(*p - '0');
	if (p == *s || *v > UINT32_MAX || (*p >= '0' && *p <= '9'))
		return false;
	*s = p;
	return true;
}

/* "<A.B>", as the Rust crate prints a pid (Debug, Display): A its high
 * 32 bits, B its low ones, in decimal. */
static bool parse_rust_pid(const char *s, uint64_t *pid)
{
	uint64_t hi, lo;
	if (*s++ != '<' || !parse_u32(&s, &hi) || *s++ != '.' || !parse_u32(&s, &lo) ||
	    strcmp(s, ">") != 0)
		return false;
	*pid = hi << 32 | lo;
	return true;
}

bool observe_parse_pid(const char *s, uint64_t *pid)
{
	if (s[0] == '<') {
		uint64_t v;
		if (!parse_rust_pid(s, &v) || v == 0 || proc_pid_is_remote(v))
			return false;
		*pid = v;
		return true;
	}
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	if (*s == '\0' || strlen(s) > 16)
		return false;
	uint64_t v = 0;
	for (; *s; s++) {
		int d = *s >= '0' && *s <= '9' ? *s - '0' : *s >= 'a' && *s <= 'f' ? *s - 'a' + 10 :
		        *s >= 'A' && *s <= 'F' ? *s - 'A' + 10 : -1;
		if (d < 0)
			return false;
		v = v << 4 | (uint64_t)d;
	}
	if (v == 0 || proc_pid_is_remote(v))
		return false;
	*pid = v;
	return true;
}

void observe_reason(uint32_t kind, int32_t code, const unsigned char *text, size_t len,
                    char *buf, size_t cap)
{
	char t[4 * PROC_TRACE_DATA + 4 * 200 + 8] = "";
	if (kind == WISP_EXIT_TERM) {
		struct etf_dec d = { text, text + len };
		const char *a;
		size_t alen;
		if (etf_get_atom(&d, &a, &alen) == 0) {
			char name[256];
			snprintf(name, sizeof(name), "%.*s", (int)alen, a);
			util_printable(t, sizeof(t), name);
			snprintf(buf, cap, "%s", t);
		} else {
			snprintf(buf, cap, "an Erlang term (%zu bytes)", len);
		}
		return;
	}
	char raw[256];
	snprintf(raw, sizeof(raw), "%.*s", (int)(len < sizeof(raw) ? len : sizeof(raw) - 1),
	         (const char *)text);
	util_printable(t, sizeof(t), raw);
	const char *sep = t[0] ? ": " : "";
	switch (kind) {
	case WISP_EXIT_NORMAL: snprintf(buf, cap, "normal"); break;
	case WISP_EXIT_CODE: snprintf(buf, cap, "exit code %d", code); break;
	case WISP_EXIT_TRAP: snprintf(buf, cap, "trap%s%s", sep, t); break;
	case WISP_EXIT_KILLED: snprintf(buf, cap, "killed%s%s", sep, t); break;
	case WISP_EXIT_NOPROC: snprintf(buf, cap, "noproc"); break;
	case WISP_EXIT_LIMIT: snprintf(buf, cap, "limit%s%s", sep, t); break;
	case WISP_EXIT_SHUTDOWN: snprintf(buf, cap, "shutdown"); break;
	case WISP_EXIT_NOCONNECTION: snprintf(buf, cap, "noconnection"); break;
	default: snprintf(buf, cap, "reason %u%s%s", kind, sep, t); break;
	}
}

/* ---- ps ---- */

static int out_line(void *ctx, const char *s, size_t len)
{
	return put(ctx, s, len) ? 0 : -EPIPE;
}

/* "ps[ sort=KEY][ limit=N]" into q; false if malformed (a message in why). */
static bool parse_ps(const char *args, struct listing_query *q, char *why, size_t cap)
{
	*q = (struct listing_query){ .sort = LISTING_PID, .limit = 0 };
	while (*args == ' ') {
		args++;
		size_t n = strcspn(args, " ");
		char word[64];
		if (n >= sizeof(word)) {
			snprintf(why, cap, "error ps: an argument is too long\n");
			return false;
		}
		memcpy(word, args, n);
		word[n] = '\0';
		args += n;
		char *end;
		if (strncmp(word, "sort=", 5) == 0 && listing_key_parse(word + 5, &q->sort))
			continue;
		if (strncmp(word, "limit=", 6) == 0 && word[6] >= '0' && word[6] <= '9') {
			unsigned long v = strtoul(word + 6, &end, 10);
			if (*end == '\0' && v <= LISTING_TOP_MAX) {
				q->limit = (uint32_t)v;
				continue;
			}
		}
		snprintf(why, cap, "error ps: bad argument '%.40s' (sort=pid|reductions|memory|"
		         "mailbox|age, limit=0..%u)\n", word, LISTING_TOP_MAX);
		return false;
	}
	if (*args != '\0') {
		snprintf(why, cap, "error ps: bad arguments\n");
		return false;
	}
	return true;
}

static void serve_ps(struct rt *rt, int fd, const char *args, const atomic_bool *stop)
{
	struct listing_query q;
	char why[160];
	if (!parse_ps(args, &q, why, sizeof(why))) {
		reply(fd, stop, why);
		return;
	}
	struct out *o = out_new(fd, stop, OBSERVE_REPLY_TIMEOUT_S, 0);
	if (o == NULL) {
		reply(fd, stop, "error out of memory\n");
		return;
	}
	int rc = listing_run(rt, &q, out_line, o, stop);
	if (rc == 0)
		flush(o);
	else if (rc == -ENOMEM && o->n == 0)
		reply(fd, stop, "error out of memory\n");
	/* (Else the reply is cut short: a reader sees no end line.) */
	free(o);
}

/* ---- inspect ---- */

static void sb_pids(struct util_text *b, const char *key, const struct pidref *v, uint32_t n,
                    bool refs)
{
	util_text_printf(b, ",\"%s\":[", key);
	for (uint32_t i = 0; i < n; i++) {
		if (refs)
			util_text_printf(b, "%s{\"pid\":\"%" PRIx64 "\",\"ref\":\"%" PRIx64 "\"}", i ? "," : "",
			          v[i].pid, v[i].ref);
		else
			util_text_printf(b, "%s\"%" PRIx64 "\"", i ? "," : "", v[i].pid);
	}
	util_text_printf(b, "]");
}

static void sb_limit(struct util_text *b, const char *key, uint64_t v)
{
	if (v == UINT64_MAX)
		util_text_printf(b, ",\"%s\":null", key);
	else
		util_text_printf(b, ",\"%s\":%" PRIu64, key, v);
}

static void sb_rules(struct util_text *b, const char *key, const struct net_rule *r, int n)
{
	util_text_printf(b, ",\"%s\":[", key);
	for (int i = 0; i < n; i++) {
		char rule[96];
		if (r[i].port == 0)
			snprintf(rule, sizeof(rule), "%s:*", r[i].host);
		else
			snprintf(rule, sizeof(rule), "%s:%u", r[i].host, r[i].port);
		util_text_printf(b, "%s", i ? "," : "");
		sb_guest(b, rule);
	}
	util_text_printf(b, "]");
}

/* The capability set: what it may do (environment variables by name only). */
static void sb_caps(struct util_text *b, const struct caps *c)
{
	util_text_printf(b, ",\"caps\":{\"spawn\":%s", c->may_spawn ? "true" : "false");
	sb_limit(b, "max_processes", c->max_processes);
	sb_limit(b, "max_memory", c->max_memory);
	sb_limit(b, "max_cpu", c->max_cpu);
	sb_limit(b, "max_message", c->max_message);
	sb_limit(b, "max_fds", c->max_fds);
	util_text_printf(b, ",\"make_caps\":%s,\"nodes\":%s,\"load_code\":%s,\"udp\":%s,\"dns\":%s",
	          c->may_create_caps ? "true" : "false", c->may_use_nodes ? "true" : "false",
	          c->may_load_code ? "true" : "false", c->udp ? "true" : "false",
	          c->dns ? "true" : "false");
	sb_rules(b, "connect", c->connect, c->nconnect);
	sb_rules(b, "listen", c->listen, c->nlisten);
	util_text_printf(b, ",\"dirs\":[");
	for (int i = 0; i < c->ndirs; i++) {
		util_text_printf(b, "%s{\"guest\":", i ? "," : "");
		sb_guest(b, c->dirs[i].guest);
		util_text_printf(b, ",\"host\":");
		sb_guest(b, c->dirs[i].host != NULL ? c->dirs[i].host : "");
		util_text_printf(b, ",\"read_only\":%s}", c->dirs[i].read_only ? "true" : "false");
	}
	util_text_printf(b, "],\"env\":[");
	for (int i = 0; i < c->nenv; i++) {
		char key[256];
		snprintf(key, sizeof(key), "%.*s", (int)strcspn(c->env[i], "="), c->env[i]);
		util_text_printf(b, "%s", i ? "," : "");
		sb_guest(b, key);
	}
	util_text_printf(b, "]}");
}

static void sb_detail(struct util_text *b, const struct proc_detail *d)
{
	char line[8192];
	size_t n = listing_json(&d->info, line, sizeof(line));
	util_text_printf(b, "%.*s", (int)(n - 1), line);   /* (without its closing brace) */
	util_text_printf(b, ",\"all_names\":[");
	for (uint32_t off = 0, i = 0; off < d->names_len; i++) {
		util_text_printf(b, "%s", i ? "," : "");
		sb_guest(b, d->names + off);
		off += (uint32_t)strlen(d->names + off) + 1;
	}
	util_text_printf(b, "],\"frames\":[");
	for (uint32_t i = 0; i < d->nframes; i++) {
		util_text_printf(b, "%s", i ? "," : "");
		sb_guest(b, d->frames[i]);
	}
	util_text_printf(b, "],\"complete\":%s,\"trap_exit\":%s,\"traced\":%s,\"mailbox_bytes\":%" PRIu64,
	          d->complete ? "true" : "false", d->trap_exit ? "true" : "false",
	          d->traced ? "true" : "false", d->mailbox_bytes);
	if (d->has_hash) {
		util_text_printf(b, ",\"version\":%u,\"tier\":\"%s\",\"module\":\"", d->vsn,
		          d->optimized ? "opt" : "fast");
		for (int i = 0; i < 8; i++)
			util_text_printf(b, "%02x", d->hash[i]);
		util_text_printf(b, "\"");
	}
	if (d->complete) {
		sb_pids(b, "links", d->links, d->nlinks, false);
		sb_pids(b, "monitors", d->monitors, d->nmonitors, true);
		sb_pids(b, "monitored_by", d->monitored_by, d->nmonitored_by, true);
	}
	if (d->caps != NULL)
		sb_caps(b, d->caps);
	util_text_printf(b, "}\n");
}

static void serve_inspect(struct rt *rt, int fd, const char *args, const atomic_bool *stop)
{
	uint64_t pid;
	if (args[0] != ' ' || !observe_parse_pid(args + 1, &pid)) {
		reply(fd, stop, "error inspect takes a pid (hex, as wisp ps shows it)\n");
		return;
	}
	struct proc_detail d;
	int rc = rt_inspect(rt, pid, &d);
	if (rc != 0) {
		reply(fd, stop, rc == -ESRCH ? "error no such process\n" : "error out of memory\n");
		return;
	}
	struct util_text b = { 0 };
	sb_detail(&b, &d);
	rt_inspect_free(&d);
	struct out *o = out_new(fd, stop, OBSERVE_REPLY_TIMEOUT_S, 0);
	if (b.oom || o == NULL)
		reply(fd, stop, "error out of memory\n");
	else
		send_all(o, b.p, b.len);
	free(o);
	free(b.p);
}

/* ---- kill ---- */

/* REASON as an exit signal's reason: false if it cannot be one. */
static bool parse_reason(const char *s, struct reason *r, bool *kill)
{
	memset(r, 0, sizeof(*r));
	*kill = false;
	char *end;
	long v = s[0] != '\0' ? strtol(s, &end, 10) : 0;
	if (s[0] == '\0' || strcmp(s, "kill") == 0) {
		*kill = true;
		r->kind = WISP_EXIT_KILLED;
		snprintf(r->text, sizeof(r->text), "wisp kill");
	} else if (strcmp(s, "normal") == 0) {
		r->kind = WISP_EXIT_NORMAL;
	} else if (strcmp(s, "shutdown") == 0) {
		r->kind = WISP_EXIT_SHUTDOWN;
	} else if (strcmp(s, "killed") == 0) {
		r->kind = WISP_EXIT_KILLED;   /* (as a reason, trappable: Erlang's) */
	} else if (*end == '\0' && v >= INT32_MIN && v <= INT32_MAX && (s[0] == '-' ||
	                                                                (s[0] >= '0' && s[0] <= '9'))) {
		r->kind = v == 0 ? WISP_EXIT_NORMAL : WISP_EXIT_CODE;
		r->code = (int32_t)v;
	} else {
		/* Any other word: an atom (printable UTF-8, at most 255 bytes). */
		char printable[4 * 256];
		size_t n = strlen(s);
		util_printable(printable, sizeof(printable), s);
		if (n > 255 || strcmp(printable, s) != 0 || strchr(s, ' ') != NULL)
			return false;
		struct etf_buf b = { 0 };
		etf_atom(&b, s, n);
		bool ok = !b.oom && b.len <= sizeof(r->text);
		if (ok) {
			r->kind = WISP_EXIT_TERM;
			memcpy(r->text, b.p, b.len);
			r->code = (int32_t)b.len;
		}
		etf_buf_free(&b);
		return ok;
	}
	return true;
}

static void serve_kill(struct rt *rt, int fd, const char *args, const atomic_bool *stop)
{
	char pidtext[40];
	size_t n = args[0] == ' ' ? strcspn(args + 1, " ") : 0;
	uint64_t pid;
	if (n == 0 || n >= sizeof(pidtext) ||
	    (memcpy(pidtext, args + 1, n), pidtext[n] = '\0', !observe_parse_pid(pidtext, &pid))) {
		reply(fd, stop, "error kill takes a pid (hex, as wisp ps shows it) and a reason\n");
		return;
	}
	const char *rest = args + 1 + n;
	struct reason r;
	bool kill;
	if (!parse_reason(rest[0] == ' ' ? rest + 1 : rest, &r, &kill)) {
		reply(fd, stop, "error a reason is kill, normal, shutdown, an exit code or an atom "
		      "(one word of printable text, at most 255 bytes)\n");
		return;
	}
	int rc = rt_exit_signal(rt, pid, &r, kill);
	reply(fd, stop, rc == 0 ? "ok\n" : rc == -ESRCH ? "error no such process\n"
	                                                : "error out of memory\n");
}

/* ---- trace ---- */

static void pid_text(uint64_t pid, char *buf, size_t cap)
{
	if (pid == 0)
		snprintf(buf, cap, "(outside)");
	else
		snprintf(buf, cap, "%" PRIx64, pid);
}

/* A message's first bytes, printable and quoted. */
static void preview(const struct proc_trace_event *e, char *buf, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;
	buf[n++] = '"';
	for (uint16_t i = 0; i < e->nbytes && n + 6 < cap; i++) {
		unsigned char c = e->data[i];
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
			buf[n++] = (char)c;
		} else {
			buf[n++] = '\\';
			buf[n++] = 'x';
			buf[n++] = hex[c >> 4];
			buf[n++] = hex[c & 15];
		}
	}
	buf[n++] = '"';
	buf[n] = '\0';
	if (e->len > e->nbytes && n + 4 < cap)
		strcat(buf, "...");
}

/* A message: its tag (a reference: a reply), size, first bytes. */
static void message(const struct proc_trace_event *e, char *buf, size_t cap)
{
	char tag[48], data[4 * PROC_TRACE_DATA + 8] = "";
	if (e->tag >> 63)
		snprintf(tag, sizeof(tag), "ref %" PRIx64, e->tag);
	else
		snprintf(tag, sizeof(tag), "tag %" PRIu64, e->tag);
	if (e->len > 0)
		preview(e, data, sizeof(data));
	snprintf(buf, cap, "%s, %u byte%s%s%s%s", tag, e->len, e->len == 1 ? "" : "s",
	         data[0] ? " " : "", data, e->fd ? " (with a socket)" : "");
}

static void event_reason(const struct proc_trace_event *e, char *buf, size_t cap)
{
	observe_reason(e->reason_kind, e->reason_code, e->data, e->nbytes, buf, cap);
}

/* What an exit signal does to a process (as signal.c applies it). */
static const char *exit_effect(const struct proc_trace_event *e)
{
	if (e->kind == SIG_KILL)
		return "it ends";
	if (e->trapping)
		return "trapped: an EXIT message";
	return e->reason_kind == WISP_EXIT_NORMAL ? "ignored" : "it ends";
}

static void format_send(const struct proc_trace_event *e, const char *other, char *buf,
                        size_t cap)
{
	char data[4 * PROC_TRACE_DATA + 96], why[600];
	switch (e->kind) {
	case MSG_DATA:
		message(e, data, sizeof(data));
		snprintf(buf, cap, "send to %s: %s", other, data);
		break;
	case SIG_LINK: snprintf(buf, cap, "link to %s", other); break;
	case SIG_UNLINK: snprintf(buf, cap, "unlink from %s", other); break;
	case SIG_MONITOR: snprintf(buf, cap, "monitor %s (ref %" PRIx64 ")", other, e->tag); break;
	case SIG_DEMONITOR:
		snprintf(buf, cap, "demonitor %s (ref %" PRIx64 ")", other, e->tag);
		break;
	case SIG_KILL: snprintf(buf, cap, "kill %s", other); break;
	default:
		event_reason(e, why, sizeof(why));
		snprintf(buf, cap, "exit signal to %s: %s", other, why);
		break;
	}
}

static void format_receive(const struct proc_trace_event *e, const char *other, char *buf,
                           size_t cap)
{
	char data[4 * PROC_TRACE_DATA + 96], why[600];
	event_reason(e, why, sizeof(why));
	switch (e->kind) {
	case MSG_DATA:
		message(e, data, sizeof(data));
		snprintf(buf, cap, "receive from %s: %s", other, data);
		break;
	case MSG_EXIT: snprintf(buf, cap, "receive EXIT from %s: %s", other, why); break;
	case MSG_DOWN:
		snprintf(buf, cap, "receive DOWN of %s (ref %" PRIx64 "): %s", other, e->tag, why);
		break;
	case SIG_LINK: snprintf(buf, cap, "linked by %s", other); break;
	case SIG_UNLINK: snprintf(buf, cap, "unlinked by %s", other); break;
	case SIG_MONITOR:
		snprintf(buf, cap, "monitored by %s (ref %" PRIx64 ")", other, e->tag);
		break;
	case SIG_DEMONITOR:
		snprintf(buf, cap, "demonitored by %s (ref %" PRIx64 ")", other, e->tag);
		break;
	case SIG_KILL: snprintf(buf, cap, "killed by %s: %s", other, exit_effect(e)); break;
	case SIG_EXIT_LINK:
	case SIG_EXIT:
		snprintf(buf, cap, "exit signal from %s: %s (%s)", other, why, exit_effect(e));
		break;
	default: snprintf(buf, cap, "signal %u from %s", e->kind, other); break;
	}
}

/* One event as a line (with its newline). */
static void format_event(const struct proc_trace_event *e, uint64_t t0, char *buf, size_t cap)
{
	char other[24], what[1024], why[600];
	pid_text(e->other, other, sizeof(other));
	switch (e->what) {
	case PROC_TRACE_SEND: format_send(e, other, what, sizeof(what)); break;
	case PROC_TRACE_RECEIVE: format_receive(e, other, what, sizeof(what)); break;
	case PROC_TRACE_SPAWN:
		snprintf(what, sizeof(what), "spawn %s%s%s", other,
		         e->tag & WISP_SPAWN_LINK ? " (linked)" : "",
		         e->tag & WISP_SPAWN_MONITOR ? " (monitored)" : "");
		break;
	default:
		event_reason(e, why, sizeof(why));
		snprintf(what, sizeof(what), "exit: %s", why);
		break;
	}
	uint64_t dt = e->ns > t0 ? e->ns - t0 : 0;
	snprintf(buf, cap, "%4" PRIu64 ".%06" PRIu64 " %s\n", dt / 1000000000, dt / 1000 % 1000000,
	         what);
}

/* The reader closed its end or sent something: the trace is over. */
static bool reader_left(int fd)
{
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	return poll(&pf, 1, 0) > 0;
}

/* Until the process ends, the reader leaves or is too slow, or the
 * node stops. */
static void stream_trace(struct proc_trace *t, struct out *o, const atomic_bool *stop)
{
	struct proc_trace_event *ev = malloc(TRACE_BATCH * sizeof(*ev));
	uint64_t t0 = sched_now_ns();
	char line[1200];
	bool ended = false;
	while (ev != NULL && !ended && !o->failed) {
		uint64_t dropped;
		size_t n = proc_trace_read(t, ev, TRACE_BATCH, &dropped, &ended);
		if (dropped > 0)
			putf(o, "... %" PRIu64 " event%s dropped (the reader was too slow)\n", dropped,
			     dropped == 1 ? "" : "s");
		for (size_t i = 0; i < n && !o->failed; i++) {
			format_event(&ev[i], t0, line, sizeof(line));
			put(o, line, strlen(line));
		}
		if (ended) {
			putf(o, "end: the process ended\n");
		} else if (atomic_load(stop)) {
			putf(o, "end: the node is stopping\n");
			ended = true;
		} else if (n < TRACE_BATCH) {
			if (!flush(o) || reader_left(o->fd))
				break;
			poll(NULL, 0, TRACE_POLL_MS);
		}
	}
	flush(o);
	free(ev);
}

static void serve_trace(struct rt *rt, int fd, const char *args, const atomic_bool *stop)
{
	uint64_t pid;
	if (args[0] != ' ' || !observe_parse_pid(args + 1, &pid)) {
		reply(fd, stop, "error trace takes a pid (hex, as wisp ps shows it)\n");
		return;
	}
	struct out *o = out_new(fd, stop, 0, OBSERVE_STALL_TIMEOUT_S);
	struct proc_trace *t = NULL;
	int rc = o != NULL ? rt_trace_start(rt, pid, &t) : -ENOMEM;
	if (rc != 0) {
		reply(fd, stop, rc == -ESRCH ? "error no such process\n" :
		                rc == -EBUSY ? "error the process is traced already (one trace at a "
		                               "time)\n" : "error out of memory\n");
		free(o);
		return;
	}
	if (putf(o, "ok %" PRIx64 "\n", pid) && flush(o))
		stream_trace(t, o, stop);
	rt_trace_stop(t);
	free(o);
}

bool observe_serve(struct rt *rt, int fd, const char *line, const atomic_bool *stop)
{
	static const struct {
		const char *word;
		void (*serve)(struct rt *rt, int fd, const char *args, const atomic_bool *stop);
	} requests[] = {
		{ "ps", serve_ps }, { "inspect", serve_inspect }, { "kill", serve_kill },
		{ "trace", serve_trace },
	};
	for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
		size_t n = strlen(requests[i].word);
		if (strncmp(line, requests[i].word, n) == 0 && (line[n] == ' ' || line[n] == '\0')) {
			requests[i].serve(rt, fd, line + n, stop);
			return true;
		}
	}
	return false;
}
