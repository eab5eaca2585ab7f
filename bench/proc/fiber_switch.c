/*
 * fiber_switch.c — the bare fiber switch of src/sched/ (fiber.h), natively:
 * two fibers on one thread switching to each other N times. Built by
 * bench/proc_run.py with the runtime's own CFLAGS against
 * src/sched/fiber.c and fiber_<arch>.S; no wasm, no scheduler. Prints
 *
 *     RESULT switch_ns=<ns per one-way switch> n=<round trips>
 *
 * This is the floor under every figure of the process benchmarks: a
 * ping-pong round trip is at least two switches plus two mailbox
 * operations.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "sched/fiber.h"

struct pair {
	struct fiber main, child;
};

static void child(void *arg)
{
	struct pair *p = arg;
	for (;;)
		fiber_switch(&p->child, &p->main);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 10000000;
	size_t size = 64 * 1024;
	void *stack = aligned_alloc(4096, size);
	static struct pair p;
	if (n <= 0 || !stack) {
		fprintf(stderr, "usage: fiber_switch N\n");
		return 2;
	}
	fiber_init_thread(&p.main);
	fiber_init(&p.child, stack, size, child, &p);
	fiber_switch(&p.main, &p.child);        /* start it; warm up */
	uint64_t t0 = now_ns();
	for (long i = 0; i < n; i++)
		fiber_switch(&p.main, &p.child);
	uint64_t t1 = now_ns();
	printf("RESULT switch_ns=%.2f n=%ld\n", (double)(t1 - t0) / (2.0 * n), n);
	return 0;
}
