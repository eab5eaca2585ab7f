/*
 * sieve — sieve of Eratosthenes over a byte array, repeated: strided stores
 * in a simple loop, then a linear scan. Memory-bound on a ~8 MB array, so
 * bounds checks matter less than in matmul and cache misses dominate.
 */
#include <stdlib.h>
#include <string.h>
#include "bench.h"

static uint64_t sieve(uint8_t *composite, uint32_t limit)
{
    memset(composite, 0, limit + 1);
    for (uint32_t i = 2; (uint64_t)i * i <= limit; i++)
        if (!composite[i])
            for (uint32_t j = i * i; j <= limit; j += i)
                composite[j] = 1;
    uint64_t count = 0, last = 0;
    for (uint32_t i = 2; i <= limit; i++)
        if (!composite[i]) {
            count++;
            last = i;
        }
    return count * 1000003u ^ last;
}

int main(void)
{
    uint32_t limit = (uint32_t)bench_param(8000000);
    int reps = (int)bench_param(20);
    uint8_t *composite = malloc(limit + 1);
    if (!composite)
        return 1;
    uint64_t t0 = bench_now_ns(), sum = 0;
    for (int i = 0; i < reps; i++)
        sum = sum * 31 + sieve(composite, limit - (uint32_t)i);
    uint64_t t1 = bench_now_ns();
    bench_report(sum, t0, t1);
    free(composite);
    return 0;
}
