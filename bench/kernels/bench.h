/*
 * bench.h — the one contract every kernel in bench/kernels/ follows.
 *
 * A kernel is a standalone program built twice from the same source: natively
 * (gcc -O2) and for wasm32-wasi (clang -O2, wasi-libc). It runs a fixed
 * workload and prints exactly two lines on stdout, after the workload:
 *
 *     checksum <16 hex digits>
 *     elapsed_ns <integer>
 *
 * The checksum must be identical in both builds (run.py compares them), so a
 * kernel may use only integer arithmetic, or floating point whose result is
 * fully determined by IEEE-754 (no libm transcendental functions, whose
 * implementations differ between glibc and wasi-libc; sqrt is exact).
 * elapsed_ns is CLOCK_MONOTONIC around the workload only: no I/O, no start-up,
 * so run.py can compare code speed apart from the runtime's own start-up.
 *
 * Inputs that would let the compiler fold the workload away come through
 * bench_param(), a volatile read the optimiser cannot see through.
 */
#ifndef BENCH_H
#define BENCH_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Returns v unchanged, opaque to the optimiser. */
static inline int64_t bench_param(int64_t v)
{
    volatile int64_t box = v;
    return box;
}

static inline void bench_report(uint64_t checksum, uint64_t t0, uint64_t t1)
{
    printf("checksum %016" PRIx64 "\n", checksum);
    printf("elapsed_ns %" PRIu64 "\n", t1 - t0);
}

#endif
