/*
 * matmul — dense integer matrix multiply, i-k-j order, over matrices that
 * live in linear memory: tight inner loops of loads, multiplies and stores.
 * wasm's explicit bounds checks on every access and the reduction check at
 * each loop head are what separate wisp from native here. Integers (wrapping
 * uint32) keep the checksum exact in both builds; a floating-point workload
 * is in nbody.c.
 */
#include <stdlib.h>
#include "bench.h"

#define N 320

static uint32_t a[N][N], b[N][N], c[N][N];

static void fill(uint32_t m[N][N], uint32_t seed)
{
    uint32_t x = seed;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            x = x * 1664525u + 1013904223u;
            m[i][j] = x >> 16;
        }
}

static void multiply(uint32_t (*restrict out)[N], uint32_t (*restrict l)[N],
                     uint32_t (*restrict r)[N])
{
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < N; j++)
            out[i][j] = 0;
        for (int k = 0; k < N; k++) {
            uint32_t lik = l[i][k];
            for (int j = 0; j < N; j++)
                out[i][j] += lik * r[k][j];
        }
    }
}

int main(void)
{
    int reps = (int)bench_param(60);
    fill(a, 1);
    fill(b, 2);
    uint64_t t0 = bench_now_ns(), sum = 0;
    for (int rep = 0; rep < reps; rep++) {
        multiply(c, a, b);
        /* Feed the result back so no repetition can be skipped. */
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) {
                sum = sum * 1099511628211u + c[i][j];
                a[i][j] ^= c[i][j] & 0xff;
            }
    }
    uint64_t t1 = bench_now_ns();
    bench_report(sum, t0, t1);
    return 0;
}
