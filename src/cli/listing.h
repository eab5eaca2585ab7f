/*
 * listing.h — a running node's processes as JSON lines (listing.c): what
 * the control socket's `ps` request answers, and what any other reader of
 * the node (a dashboard, metrics) can call to get the same listing.
 */
#ifndef WISP_CLI_LISTING_H
#define WISP_CLI_LISTING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proc/inspect.h"

enum listing_key {
	LISTING_PID,           /* ascending */
	LISTING_REDUCTIONS,    /* the others descending: the busiest first */
	LISTING_MEMORY,
	LISTING_MAILBOX,
	LISTING_AGE,           /* the oldest first */
};
/* "pid", "reductions", ... -> key; false if s names none. */
bool listing_key_parse(const char *s, enum listing_key *k);
const char *listing_key_name(enum listing_key k);
/* Whether a's row comes before b's when sorted by k (ties: by pid). */
bool listing_before(enum listing_key k, const struct proc_info *a, const struct proc_info *b);

/* The most a node sorts for a listing: a larger limit (or none) gets the
 * processes in table order, for the reader to sort (the node never holds
 * a listing of a million). */
#define LISTING_TOP_MAX 10000

struct listing_query {
	enum listing_key sort;
	uint32_t limit;        /* 1..LISTING_TOP_MAX: the first `limit` by sort */
};

/* One process as a JSON object on one line (no newline), into buf: the
 * bytes written (cut at cap - 1, NUL-terminated). Names are made
 * printable (util_printable) before JSON escapes them: a reader can show
 * them on a terminal as they are (and must still escape them for HTML).
 * Fields: pid, parent (hex strings, "" for none), name, names (count),
 * state, wait, on (a pid, when waiting on one), host_fd and for (the
 * host's fd it waits on, "read" or "write"), timeout_ms (when waiting
 * with a deadline), function, reductions, memory, stack, mailbox,
 * age_ms, cpu_us, main, program. */
size_t listing_json(const struct proc_info *in, char *buf, size_t cap);

/* The listing of rt, one JSON line per process (listing_json), then
 * {"end":true,"listed":N}: every process (q NULL or q->limit 0, in table
 * order), or the first q->limit by q->sort. Each line goes to
 * out(ctx, bytes, len); a nonzero return stops the listing and is
 * returned (no end line). *stop (may be NULL) becoming true stops it too:
 * -ECANCELED. -ENOMEM, -EINVAL (a limit over LISTING_TOP_MAX). */
int listing_run(struct rt *rt, const struct listing_query *q,
                int (*out)(void *ctx, const char *s, size_t len), void *ctx,
                const atomic_bool *stop);

/* s as the inside of a JSON string (quotes and backslashes escaped,
 * control characters as \u00XX), into buf (NUL-terminated; cut whole). */
size_t listing_json_escape(char *buf, size_t cap, const char *s);

#endif
