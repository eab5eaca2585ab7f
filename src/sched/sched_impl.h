/*
 * sched_impl.h — what sched.c and timer.c share; not for users of sched.h.
 */
#ifndef WISP_SCHED_IMPL_H
#define WISP_SCHED_IMPL_H

#include "sched.h"

void timer_heap_init(struct timer_heap *th);
/* Free the heap; every timer still queued goes to drop(t) (may be NULL). */
void timer_heap_destroy(struct timer_heap *th, void (*drop)(struct sched_timer *t));
/* Fire up to max due timers (any thread); returns how many fired. */
int timer_heap_fire(struct timer_heap *th, int max);

#endif
