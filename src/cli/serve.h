/*
 * serve.h — `wisp serve`: a WASI program as a network service, a process
 * per connection (serve.c).
 */
#ifndef WISP_CLI_SERVE_H
#define WISP_CLI_SERVE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "proc/proc.h"

struct serve_opts {
	const char *listen;            /* "ADDRESS:PORT", or NULL: not serving */
	uint64_t max_connections;      /* 0: the default (1024) */
	uint32_t idle_timeout_s;       /* --idle-timeout (0: none) ... */
	bool idle_given;               /* ... if given, else the default (300) */
};

/* Parse argv[*i] if it is a serve option (moving *i past its value): 1
 * if it was, 0 if not, 2 on a usage error (said). */
int serve_parse_opt(int argc, char **argv, int *i, struct serve_opts *o);

/* Listen as o says, for programs with the capabilities of root (and
 * their own stdio); NULL with a message if it cannot (or cannot watch for
 * idle connections when --idle-timeout was given; without it, that is
 * said and serving goes on without the default timeout). Accepting stops
 * as soon as *stop is set (the runtime's stop request). */
struct serve *serve_new(const struct serve_opts *o, struct caps *root, atomic_int *stop,
                        char *err, size_t errlen);
/* Accept for rt, on a thread of its own; stop (before rt stops: says on
 * stderr how many connections the bounds closed, if any). */
void serve_start(struct serve *s, struct rt *rt);
void serve_stop(struct serve *s);
void serve_free(struct serve *s);

#endif
