/*
 * procbench.h — what every wisp guest in bench/proc/c/ shares.
 *
 * Each guest is one workload of bench/proc_run.py, with the same semantics
 * as bench/proc/erlang/procbench.erl and bench/proc/go/main.go. The main
 * process (the one _start runs in) reads its sizes from argv, times the
 * workload with CLOCK_MONOTONIC and prints one line
 *
 *     RESULT key=value ...
 *
 * so the harness compares the runtimes apart from their start-up. Spawned
 * processes print nothing. Any unexpected return code ends the guest with
 * exit status 1 and a message on stderr, which the harness reports as an
 * error.
 *
 * Build: clang --target=wasm32-wasi --sysroot=/usr -O2 -Iinclude
 *        -Ibench/proc/c bench/proc/c/NAME.c sdk/c/wisp.c -o NAME.wasm
 */
#ifndef PROCBENCH_H
#define PROCBENCH_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <wisp/guest.h>

static inline uint64_t pb_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void pb_die(const char *what, int32_t rc)
{
	fprintf(stderr, "procbench: %s failed (rc %d)\n", what, (int)rc);
	exit(1);
}

/* argv[i] as a positive count, or exits with a usage message. */
static inline int64_t pb_arg(int argc, char **argv, int i, const char *usage)
{
	char *end = NULL;
	long long v = i < argc ? strtoll(argv[i], &end, 10) : 0;
	if (i >= argc || *end || v <= 0) {
		fprintf(stderr, "usage: %s %s\n", argv[0], usage);
		exit(2);
	}
	return v;
}

/* Receives the next message with one of the given tags (any if ntags is 0)
 * into buf, blocking; exits on an error. */
static inline void pb_receive(const uint64_t *tags, uint32_t ntags, void *buf,
                              uint32_t len, struct wisp_msg_info *info)
{
	int32_t rc = wisp_receive(tags, ntags, WISP_INFINITY, buf, len, info);
	if (rc != WISP_OK)
		pb_die("wisp_receive", rc);
}

/* A spawn argument or message payload of one 64-bit word. */
static inline uint64_t pb_word(const void *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof v);
	return v;
}

#endif
