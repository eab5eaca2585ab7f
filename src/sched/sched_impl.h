/*
 * sched_impl.h — what sched.c and timer.c share; not for users of sched.h.
 */
#ifndef WISP_SCHED_IMPL_H
#define WISP_SCHED_IMPL_H

#include "sched.h"

void timer_wheel_init(struct timer_wheel *w);
/* Free the wheel; every timer still queued goes to drop(t) (may be NULL). */
void timer_wheel_destroy(struct timer_wheel *w, void (*drop)(struct sched_timer *t));
/* Fire up to max due timers (any thread); returns how many fired. */
int timer_wheel_fire(struct timer_wheel *w, int max);

/* For tests: a wheel on a clock of the caller's (ns), added to and removed
 * from directly (owner: any non-NULL marker), fired at a given time. */
void timer_wheel_init_at(struct timer_wheel *w, uint64_t now);
void timer_wheel_add_raw(struct timer_wheel *w, struct sched_timer *t, struct sched *owner);
bool timer_wheel_remove_raw(struct timer_wheel *w, struct sched_timer *t);
int timer_wheel_fire_at(struct timer_wheel *w, uint64_t now, int max);

#endif
