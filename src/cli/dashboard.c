/*
 * dashboard.c — the JSON the dashboard page (dashboard.html, served at /
 * by metrics.c's endpoint) reads every second, besides /metrics.
 *
 * What. /api/processes: the first N processes by a key (the busiest by
 * reductions, memory or mailbox length, the oldest, or by pid) as
 * {"node":..., "alive":A, "sort":KEY, "processes":[...]}, each process
 * the object `wisp ps` gets (listing_json: names made printable, then
 * JSON-escaped; the page sets every string as text, never as markup).
 * /api/tree: the oldest N processes the same way ("sort":"age"), for the
 * page to draw as a tree by each one's parent (the process that spawned
 * it: a supervisor's workers hang under it). A process whose parent is
 * not among the N shows as a root; "alive" says how many were left out.
 *
 * How. Both are listing_run with a bounded query (a heap of at most
 * DASHBOARD_LIMIT_MAX kept during the walk: listing.c), its lines
 * gathered into one array here. No listing logic lives in this file.
 *
 * Rejected: the whole tree (a node of a million processes would send
 * 500 MB a second to a browser that cannot draw it); a process's children
 * kept by the runtime (a second structure to keep true on every spawn and
 * exit, for a page).
 */
#include "dashboard.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "listing.h"
#include "common/util.h"

#define DEFAULT_TOP 20
#define DEFAULT_TREE 200

/* A JSON array of listed processes being made. */
struct rows {
	struct util_text t;
	size_t n;      /* processes added so far */
};

static void adds(struct util_text *t, const char *s)
{
	util_text_add(t, s, strlen(s));
}

/* listing_run's sink: a process's line into the array (its newline
 * dropped); the closing {"end":...} line is not a process. */
static int one_row(void *ctx, const char *s, size_t len)
{
	struct rows *r = ctx;
	if (len >= 7 && memcmp(s, "{\"end\":", 7) == 0)
		return 0;
	if (len > 0 && s[len - 1] == '\n')
		len--;
	if (r->n++ > 0)
		util_text_add(&r->t, ",", 1);
	util_text_add(&r->t, s, len);
	return r->t.oom ? -ENOMEM : 0;
}

/* A query "k=v&k=v" into sort and limit (either may be absent, when the
 * caller passes sort NULL it takes no sort): NULL, or why it is refused. */
static const char *parse_query(const char *query, enum listing_key *sort, uint32_t *limit)
{
	char q[512];
	if (query == NULL || *query == '\0')
		return NULL;
	if (strlen(query) >= sizeof(q))
		return "the query is too long\n";
	strcpy(q, query);
	char *save = NULL;
	for (char *kv = strtok_r(q, "&", &save); kv != NULL; kv = strtok_r(NULL, "&", &save)) {
		char *v = strchr(kv, '=');
		if (v == NULL)
			return "a query parameter without a value\n";
		*v++ = '\0';
		if (strcmp(kv, "sort") == 0 && sort != NULL) {
			if (!listing_key_parse(v, sort))
				return "sort: one of pid, reductions, memory, mailbox, age\n";
		} else if (strcmp(kv, "limit") == 0) {
			char *end;
			errno = 0;
			unsigned long n = strtoul(v, &end, 10);
			if (*v < '0' || *v > '9' || *end != '\0' || errno != 0 || n < 1 ||
			    n > DASHBOARD_LIMIT_MAX)
				return "limit: a number from 1 to 1000\n";
			*limit = (uint32_t)n;
		} else {
			return sort != NULL ? "unknown parameter (sort and limit only)\n"
			                    : "unknown parameter (limit only)\n";
		}
	}
	return NULL;
}

/* {"node":..., "alive":A, "sort":KEY, "processes":[the first q's]}. */
static char *listing_object(struct rt *rt, const char *node, const struct listing_query *q,
                            size_t *len)
{
	struct rows r = { 0 };
	char tmp[600];
	adds(&r.t, "{\"node\":");
	if (node != NULL) {
		char esc[520];
		listing_json_escape(esc, sizeof(esc), node);
		snprintf(tmp, sizeof(tmp), "\"%s\"", esc);
		adds(&r.t, tmp);
	} else {
		adds(&r.t, "null");
	}
	struct rt_stats *st = rt_stats_read(rt);
	snprintf(tmp, sizeof(tmp), ",\"alive\":%" PRIu64 ",\"sort\":\"%s\",\"processes\":[",
	         st != NULL ? st->processes : 0, listing_key_name(q->sort));
	free(st);
	adds(&r.t, tmp);
	int rc = r.t.oom ? -ENOMEM : listing_run(rt, q, one_row, &r, NULL);
	adds(&r.t, "]}\n");
	if (rc != 0 || r.t.oom) {
		free(r.t.p);
		return NULL;
	}
	*len = r.t.len;
	return r.t.p;
}

/* A 400's body: why (a copy, for the caller to free like any body). */
static char *refuse(const char *why, size_t *len, int *status)
{
	char *s = strdup(why);
	if (s != NULL) {
		*len = strlen(s);
		*status = 400;
	}
	return s;
}

char *dashboard_processes(struct rt *rt, const char *node, const char *query, size_t *len,
                          int *status)
{
	struct listing_query q = { .sort = LISTING_REDUCTIONS, .limit = DEFAULT_TOP };
	const char *bad = parse_query(query, &q.sort, &q.limit);
	if (bad != NULL)
		return refuse(bad, len, status);
	*status = 200;
	return listing_object(rt, node, &q, len);
}

char *dashboard_tree(struct rt *rt, const char *node, const char *query, size_t *len,
                     int *status)
{
	struct listing_query q = { .sort = LISTING_AGE, .limit = DEFAULT_TREE };
	const char *bad = parse_query(query, NULL, &q.limit);
	if (bad != NULL)
		return refuse(bad, len, status);
	*status = 200;
	return listing_object(rt, node, &q, len);
}
