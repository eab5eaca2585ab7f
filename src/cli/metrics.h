/*
 * metrics.h — a run's figures in Prometheus's text format, served over
 * HTTP by `--metrics ADDR:PORT` and asked for by `wisp stats` through the
 * control socket (metrics.c says how).
 */
#ifndef WISP_CLI_METRICS_H
#define WISP_CLI_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "dist/dist.h"
#include "proc/proc.h"

/* Parse --metrics ADDR:PORT at argv[*i] (moving *i past its value): 1 if
 * it was that option, 0 if not, 2 on a usage error (said on stderr). */
int metrics_parse_opt(int argc, char **argv, int *i, const char **listen);

/* The figures of one run, and its HTTP endpoint if listen is not NULL
 * ("HOST:PORT", "[v6]:PORT"; port 0 picks one): bound now, so that a
 * taken or malformed address is an error before the run starts (NULL
 * with a message in err). The endpoint serves once attached. */
struct metrics;
struct metrics *metrics_new(const char *listen, char *err, size_t errlen);
/* The runtime is up (dist: its node, or NULL): figures are there, and
 * the endpoint, if any, serves from its own thread (never a scheduler).
 * Detach before the runtime stops. */
void metrics_attach(struct metrics *m, struct rt *rt, struct dist *dist);
/* The run's report log (its ring of the last crashes: /api/crashes), or
 * NULL; set before the runtime starts, kept open until after detach. */
struct log;
void metrics_set_log(struct metrics *m, struct log *log);
void metrics_detach(struct metrics *m);
void metrics_free(struct metrics *m);

/* The compile cache had what a run asked for (hit) or not: the CLI
 * counts each module it prepares (any thread). m may be NULL. */
void metrics_count_compile(struct metrics *m, bool hit);

/* The figures now, in the text exposition format 0.0.4 (malloc'd, *len
 * bytes); NULL if not attached or out of memory. Any thread. */
char *metrics_text(struct metrics *m, size_t *len);

#endif
