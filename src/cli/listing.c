/*
 * listing.c — the processes of a running node as JSON lines.
 *
 * The walk is rt_list's (src/proc/inspect.c): no lock held across it, a
 * process looked at for a moment under its own task lock. This file only
 * shapes what the walk gives: one flat JSON object per process, streamed
 * as the walk goes (a million processes are never held at once), or, for
 * "the first N by reductions" (wisp ps --limit, a dashboard's top-N), a
 * bounded heap of N entries kept during the walk and sorted at its end.
 * An unbounded sort is the reader's: the node would otherwise hold the
 * whole listing (500 bytes a process) while a slow reader takes it.
 *
 * Every string is made printable first (util_printable: control bytes,
 * bidi controls and bad UTF-8 become \xNN text), then JSON-escaped, so
 * what a guest named itself cannot reach a terminal as an escape
 * sequence, whoever prints it.
 */
#include "listing.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

static const char *const key_names[] = {
	[LISTING_PID] = "pid",
	[LISTING_REDUCTIONS] = "reductions",
	[LISTING_MEMORY] = "memory",
	[LISTING_MAILBOX] = "mailbox",
	[LISTING_AGE] = "age",
};

bool listing_key_parse(const char *s, enum listing_key *k)
{
	for (size_t i = 0; i < sizeof(key_names) / sizeof(key_names[0]); i++)
		if (strcmp(s, key_names[i]) == 0) {
			*k = (enum listing_key)i;
			return true;
		}
	return false;
}

const char *listing_key_name(enum listing_key k)
{
	return key_names[k];
}

static uint64_t key_of(enum listing_key k, const struct proc_info *a)
{
	switch (k) {
	case LISTING_REDUCTIONS: return a->reductions;
	case LISTING_MEMORY: return a->memory + a->stack;
	case LISTING_MAILBOX: return a->mailbox;
	case LISTING_AGE: return a->age_ns;
	case LISTING_PID: break;
	}
	return a->pid;
}

bool listing_before(enum listing_key k, const struct proc_info *a, const struct proc_info *b)
{
	uint64_t x = key_of(k, a), y = key_of(k, b);
	if (x != y)
		return k == LISTING_PID ? x < y : x > y;
	return a->pid < b->pid;
}

size_t listing_json_escape(char *buf, size_t cap, const char *s)
{
	size_t n = 0;
	if (cap == 0)
		return 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char esc[8];
		size_t len = 1;
		if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			len = 2;
		} else if (*p < 0x20) {
			len = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", *p);
		} else {
			esc[0] = (char)*p;
		}
		if (n + len + 1 > cap)
			break;
		memcpy(buf + n, esc, len);
		n += len;
	}
	buf[n] = '\0';
	return n;
}

/* A guest's string, printable and escaped, into buf. */
static void guest_string(char *buf, size_t cap, const char *s)
{
	char printable[4 * PROC_INFO_NAME];
	util_printable(printable, sizeof(printable), s);
	listing_json_escape(buf, cap, printable);
}

size_t listing_json(const struct proc_info *in, char *buf, size_t cap)
{
	char name[8 * PROC_INFO_NAME], fn[8 * PROC_INFO_FUNCTION], parent[24] = "", extra[96] = "";
	guest_string(name, sizeof(name), in->name);
	guest_string(fn, sizeof(fn), in->function);
	if (in->parent != 0)
		snprintf(parent, sizeof(parent), "%" PRIx64, in->parent);
	size_t e = 0;
	if (in->wait == PROC_WAIT_CALL || in->wait == PROC_WAIT_SERVED)
		e += (size_t)snprintf(extra + e, sizeof(extra) - e, ",\"on\":\"%" PRIx64 "\"",
		                      in->wait_on);
	if (in->wait == PROC_WAIT_FD || in->wait == PROC_WAIT_RECEIVE_FD)
		e += (size_t)snprintf(extra + e, sizeof(extra) - e, ",\"host_fd\":%u,\"for\":\"%s\"",
		                      (unsigned)(uint32_t)in->wait_on,
		                      (in->wait_on >> 32) & REACTOR_WRITE ? "write" : "read");
	if (in->wait_left_ns >= 0)
		snprintf(extra + e, sizeof(extra) - e, ",\"timeout_ms\":%" PRId64,
		         in->wait_left_ns / 1000000);
	int n = snprintf(buf, cap,
	                 "{\"pid\":\"%" PRIx64 "\",\"parent\":\"%s\",\"name\":\"%s\",\"names\":%u,"
	                 "\"state\":\"%s\",\"wait\":\"%s\"%s,\"function\":\"%s\","
	                 "\"reductions\":%" PRIu64 ",\"memory\":%" PRIu64 ",\"stack\":%" PRIu64 ","
	                 "\"mailbox\":%u,\"age_ms\":%" PRIu64 ",\"cpu_us\":%" PRIu64 ","
	                 "\"main\":%s,\"program\":%s}",
	                 in->pid, parent, name, in->nnames, proc_view_name(in->state),
	                 proc_wait_name(in->wait), extra, fn, in->reductions, in->memory, in->stack,
	                 in->mailbox, in->age_ns / 1000000, in->cpu_ns / 1000,
	                 in->is_main ? "true" : "false", in->program ? "true" : "false");
	return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

/* ---- streaming ---- */

struct stream {
	int (*out)(void *ctx, const char *s, size_t len);
	void *ctx;
	uint64_t listed;
	char line[4096];
};

static int stream_one(const struct proc_info *in, void *arg)
{
	struct stream *s = arg;
	size_t n = listing_json(in, s->line, sizeof(s->line) - 1);
	s->line[n++] = '\n';
	s->listed++;
	return s->out(s->ctx, s->line, n);
}

/* ---- the first N: a heap whose root is the last of those kept ---- */

struct top {
	enum listing_key key;
	struct proc_info *v;
	uint32_t n, cap;
};

static void sift_down(struct top *t, uint32_t i)
{
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, last = i;
		if (l < t->n && listing_before(t->key, &t->v[last], &t->v[l]))
			last = l;
		if (r < t->n && listing_before(t->key, &t->v[last], &t->v[r]))
			last = r;
		if (last == i)
			return;
		struct proc_info tmp = t->v[i];
		t->v[i] = t->v[last];
		t->v[last] = tmp;
		i = last;
	}
}

static void sift_up(struct top *t, uint32_t i)
{
	while (i > 0) {
		uint32_t up = (i - 1) / 2;
		if (!listing_before(t->key, &t->v[up], &t->v[i]))
			return;
		struct proc_info tmp = t->v[i];
		t->v[i] = t->v[up];
		t->v[up] = tmp;
		i = up;
	}
}

static int top_one(const struct proc_info *in, void *arg)
{
	struct top *t = arg;
	if (t->n < t->cap) {
		t->v[t->n] = *in;
		sift_up(t, t->n++);
	} else if (listing_before(t->key, in, &t->v[0])) {
		t->v[0] = *in;
		sift_down(t, 0);
	}
	return 0;
}

static int compare(const void *a, const void *b, void *key)
{
	enum listing_key k = *(const enum listing_key *)key;
	return listing_before(k, a, b) ? -1 : listing_before(k, b, a);
}

static int run_top(struct rt *rt, const struct listing_query *q, struct stream *s,
                   const atomic_bool *stop)
{
	struct top t = { .key = q->sort, .cap = q->limit };
	t.v = malloc((size_t)q->limit * sizeof(*t.v));
	if (t.v == NULL)
		return -ENOMEM;
	int rc = rt_list(rt, top_one, &t, stop);
	if (rc == 0) {
		qsort_r(t.v, t.n, sizeof(*t.v), compare, &t.key);
		for (uint32_t i = 0; i < t.n && rc == 0; i++)
			rc = stream_one(&t.v[i], s);
	}
	free(t.v);
	return rc;
}

int listing_run(struct rt *rt, const struct listing_query *q,
                int (*out)(void *ctx, const char *s, size_t len), void *ctx,
                const atomic_bool *stop)
{
	if (q != NULL && q->limit > LISTING_TOP_MAX)
		return -EINVAL;
	struct stream *s = malloc(sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->out = out;
	s->ctx = ctx;
	s->listed = 0;
	int rc = q != NULL && q->limit > 0 ? run_top(rt, q, s, stop) : rt_list(rt, stream_one, s, stop);
	if (rc == 0) {
		int n = snprintf(s->line, sizeof(s->line), "{\"end\":true,\"listed\":%" PRIu64 "}\n",
		                 s->listed);
		rc = out(ctx, s->line, (size_t)n);
	}
	free(s);
	return rc;
}
