/*
 * timer.c — per-scheduler timer heaps (binary min-heap on deadline).
 *
 * A heap is touched only by its scheduler's thread: timers are added by the
 * process running there (sleep, receive timeouts, send_after) and fired by
 * the scheduler loop. Cancel from any thread marks the timer cancelled (an
 * atomic state), it is not removed; the heap drops it when it comes up.
 */
#include <stdlib.h>
#include <time.h>

#include "rt_impl.h"

uint64_t rt_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int timer_heap_push(struct timer_heap *th, struct timer *t)
{
	if (th->n == th->cap) {
		size_t cap = th->cap ? th->cap * 2 : 64;
		struct timer **h = realloc(th->h, cap * sizeof(*h));
		if (h == NULL)
			return -1;
		th->h = h;
		th->cap = cap;
	}
	size_t i = th->n++;
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (th->h[parent]->deadline <= t->deadline)
			break;
		th->h[i] = th->h[parent];
		i = parent;
	}
	th->h[i] = t;
	return 0;
}

uint64_t timer_heap_next(const struct timer_heap *th)
{
	return th->n ? th->h[0]->deadline : UINT64_MAX;
}

struct timer *timer_heap_pop(struct timer_heap *th)
{
	if (th->n == 0)
		return NULL;
	struct timer *top = th->h[0];
	struct timer *last = th->h[--th->n];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= th->n)
			break;
		if (c + 1 < th->n && th->h[c + 1]->deadline < th->h[c]->deadline)
			c++;
		if (last->deadline <= th->h[c]->deadline)
			break;
		th->h[i] = th->h[c];
		i = c;
	}
	if (th->n)
		th->h[i] = last;
	return top;
}
