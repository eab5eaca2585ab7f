/*
 * fib — naive doubly recursive Fibonacci: almost nothing but calls and
 * returns, so it measures per-call overhead. In wisp every function entry
 * carries the reduction check (and the stack-limit check), so this is the
 * kernel where that hook costs the most.
 */
#include "bench.h"

static uint64_t fib(int n)
{
    return n < 2 ? (uint64_t)n : fib(n - 1) + fib(n - 2);
}

int main(void)
{
    int n = (int)bench_param(42);
    int reps = (int)bench_param(2);
    uint64_t t0 = bench_now_ns(), sum = 0;
    for (int i = 0; i < reps; i++)
        sum = sum * 31 + fib(n - i);
    uint64_t t1 = bench_now_ns();
    bench_report(sum, t0, t1);
    return 0;
}
