/*
 * stats.c — what the runtime counts about itself, for `wisp stats` and
 * the metrics endpoint (src/cli/metrics.c).
 *
 * Counting must cost the hot paths (a spawn, a message) next to nothing,
 * and a reader must never walk the processes (a node may hold millions).
 * So every counter is kept once per scheduler thread, in a cache line of
 * that thread's own (struct rt_counters), and written only by that thread
 * with a relaxed load and store: a plain add, no locked instruction, no
 * line bouncing between cores. A reader sums the slots (O(schedulers)).
 * Threads that are no scheduler (the distribution layer's, the tick's
 * timers, `wisp serve`'s acceptor, teardown) count into one more slot
 * with an atomic add: they are rare.
 *
 * Gauges that go up and down (queued message bytes, open sockets) are two
 * counters, in and out, subtracted when read: each thread only ever adds.
 * Everything else a reader shows is what the runtime keeps anyway: the
 * live process count, the memory pool's and the stack pool's books, the
 * run queues' lengths and the schedulers' own counters (src/sched).
 *
 * Rejected: one atomic counter per figure (a locked add, per message, on
 * a line every core writes); a thread-local pointer to the slot (one more
 * thread-local besides the scheduler's, which already names the slot).
 * What counting costs is measured by bench/metrics_run.py.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proc_impl.h"

int rt_stats_init(struct rt *rt, int nsched)
{
	size_t n = (size_t)nsched + 1;
	rt->counters = aligned_alloc(alignof(struct rt_counters), n * sizeof(*rt->counters));
	if (rt->counters == NULL)
		return -ENOMEM;
	memset(rt->counters, 0, n * sizeof(*rt->counters));
	rt->ncounters = (int)n;
	return 0;
}

void rt_stats_free(struct rt *rt)
{
	free(rt->counters);
	rt->counters = NULL;
	rt->ncounters = 0;
}

void rt_count_shared(struct rt *rt, enum rt_counter c, uint64_t n)
{
	atomic_fetch_add_explicit(&rt->counters[rt->ncounters - 1].v[c], n, memory_order_relaxed);
}

#ifndef WISP_NO_STATS
void rt_count(struct rt *rt, enum rt_counter c, uint64_t n)
{
	proc_count(rt, c, n);
}
#endif

static uint64_t counter_sum(struct rt *rt, enum rt_counter c)
{
	uint64_t sum = 0;
	for (int i = 0; i < rt->ncounters; i++)
		sum += atomic_load_explicit(&rt->counters[i].v[c], memory_order_relaxed);
	return sum;
}

/* in - out of a pair counted separately (in is read last: a reader that
 * sees an out sees the in before it, so the difference is never below
 * what was true at some point). */
static uint64_t gauge(struct rt *rt, enum rt_counter in, enum rt_counter out)
{
	uint64_t o = counter_sum(rt, out);
	uint64_t i = counter_sum(rt, in);
	return i > o ? i - o : 0;
}

static void read_memory(struct rt *rt, struct rt_stats *st)
{
	struct engine_mem_stats ms;
	engine_mem_pool_stats(rt->limits.mem_pool, &ms);
	st->mem_linear_pooled = ms.pooled_bytes;
	st->mem_linear_own = ms.own_bytes;
	st->mem_linear_slabs = ms.slab_bytes;
	size_t in_use, mapped;
	stack_pool_usage(&rt->stacks, &in_use, &mapped);
	st->mem_stacks = in_use;
	st->mem_stack_slabs = mapped;
	st->mem_messages = gauge(rt, RT_MSG_BYTES_IN, RT_MSG_BYTES_OUT);
	st->mem_process_table = ptable_slots(&rt->ptable) *
	                        (sizeof(struct proc) + rt->ptable.extra);
}

struct rt_stats *rt_stats_read(struct rt *rt)
{
	int n = rt->sg.nsched;
	struct rt_stats *st = calloc(1, sizeof(*st) + (size_t)n * sizeof(st->sched[0]));
	if (st == NULL)
		return NULL;
	st->uptime_ns = sched_uptime_ns(&rt->sg);
	for (int c = 0; c < RT_COUNTERS; c++)
		st->counter[c] = counter_sum(rt, (enum rt_counter)c);
	st->processes = atomic_load_explicit(&rt->live, memory_order_relaxed);
	st->hibernated = atomic_load_explicit(&rt->sg.hibernated, memory_order_relaxed);
	st->names = registry_count(&rt->registry);
	st->io_waiting = sched_io_waiting(&rt->sg);
	st->sockets = gauge(rt, RT_SOCKETS_OPENED, RT_SOCKETS_CLOSED);
	st->global_queued = sched_global_queued(&rt->sg);
	read_memory(rt, st);
	st->nsched = n;
	for (int i = 0; i < n; i++)
		sched_read_stats(&rt->sg, i, &st->sched[i]);
	return st;
}
