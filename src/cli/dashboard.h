/*
 * dashboard.h — the live dashboard that `--metrics ADDR:PORT` serves
 * beside /metrics: the page at / and the JSON it reads under /api/
 * (dashboard.c says what each holds).
 */
#ifndef WISP_CLI_DASHBOARD_H
#define WISP_CLI_DASHBOARD_H

#include <stddef.h>

#include "proc/proc.h"

/* The page and its stylesheet and script (src/cli/dashboard.{html,css,js},
 * embedded at build time by dashboard_blob.S), NUL-terminated. */
extern const char wisp_dashboard_html[];
extern const char wisp_dashboard_css[];
extern const char wisp_dashboard_js[];

/* The most processes one /api/ answer lists. */
#define DASHBOARD_LIMIT_MAX 1000

/* A body for GET /api/processes?sort=KEY&limit=N (KEY: listing_key_parse's
 * names, default reductions; N: 1..DASHBOARD_LIMIT_MAX, default 20) and
 * GET /api/tree?limit=N (the oldest N, default 200): JSON, malloc'd, *len
 * bytes, *status 200. A query it does not take: a one-line plain-text
 * reason, *status 400. node: the node's name, or NULL. NULL if out of
 * memory. Any thread; the listing holds no lock across the walk
 * (listing_run), so the node runs on while it is made. */
char *dashboard_processes(struct rt *rt, const char *node, const char *query, size_t *len,
                          int *status);
char *dashboard_tree(struct rt *rt, const char *node, const char *query, size_t *len,
                     int *status);

#endif
