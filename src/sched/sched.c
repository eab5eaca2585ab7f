/*
 * sched.c — M:N scheduling of processes over one thread per core.
 *
 * Each scheduler thread has a local run queue (FIFO) and a timer heap; the
 * runtime has one global queue for work from outside scheduler threads. A
 * scheduler takes work from its local queue, then the global queue, then
 * steals from another scheduler's queue (starting at a random victim);
 * finding nothing, it fires due timers, spins briefly, and then sleeps on a
 * condition variable until work is enqueued or its next timer is due.
 *
 * A process runs until it yields: its fuel (reductions: loop iterations,
 * BEAM's 4000 by default) runs out at a loop head, or it has run through a
 * whole tick (1 ms) and reaches a function entry (sched_tick raises its
 * stack limit) — both Y_YIELD, back of the local queue; or it waits
 * (Y_PARK: receive, sleep); or it ends (Y_EXIT).
 *
 * Parking without lost wake-ups: a process decides to wait (its mailbox had
 * nothing for it), then switches to the scheduler with Y_PARK. Only after
 * the switch — once its stack is no longer in use — does the scheduler mark
 * it PS_WAITING, under the process's spinlock. A waker (any thread) takes
 * the same spinlock: if the process is waiting it becomes runnable and is
 * enqueued; otherwise `pending_wake` is set and the scheduler, finishing the
 * park, requeues it at once. pending_wake is cleared when the process is
 * dispatched, so a wake-up is never lost and a fiber never runs on two
 * threads. Spurious wake-ups are allowed: every wait re-checks its condition.
 *
 * Sleeping without lost wake-ups: a scheduler about to sleep registers as a
 * sleeper under `glock` and re-checks every queue; a scheduler that has work
 * queued beyond what it is about to run signals a sleeper (at dispatch), and
 * the global queue signals on every push. Making a process runnable does not
 * by itself wake another thread: in message passing the sender usually
 * blocks next, and the receiver then runs on the same thread, which is what
 * keeps ping-pong and rings off the futex (BEAM and Go do the same).
 *
 * Queues are mutex-protected intrusive lists. Alternative considered: a
 * Chase-Lev deque per scheduler; it saves a lock per dispatch but needs a
 * fixed capacity or growth logic, and the lock is uncontended except when
 * stealing. Revisit with the benchmarks.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proc/mailbox.h"
#include "proc/rt_impl.h"

#define SPIN_ROUNDS 64
#define MAX_SCHEDS 1024   /* as the runtime's own cap */

static _Thread_local struct sched *tl_sched;

struct sched *sched_self(void)
{
	return tl_sched;
}

static void spin_lock(struct proc *p)
{
	while (atomic_flag_test_and_set_explicit(&p->slock, memory_order_acquire))
		;
}

static void spin_unlock(struct proc *p)
{
	atomic_flag_clear_explicit(&p->slock, memory_order_release);
}

static void q_push(struct sched *s, struct proc *p)
{
	p->rq_next = NULL;
	pthread_mutex_lock(&s->qlock);
	if (s->qtail)
		s->qtail->rq_next = p;
	else
		s->qhead = p;
	s->qtail = p;
	atomic_fetch_add(&s->qlen, 1);
	pthread_mutex_unlock(&s->qlock);
}

/* At the front: runs next on this scheduler (a process just spawned). */
static void q_push_front(struct sched *s, struct proc *p)
{
	pthread_mutex_lock(&s->qlock);
	p->rq_next = s->qhead;
	s->qhead = p;
	if (s->qtail == NULL)
		s->qtail = p;
	atomic_fetch_add(&s->qlen, 1);
	pthread_mutex_unlock(&s->qlock);
}

static struct proc *q_pop(struct sched *s)
{
	if (atomic_load_explicit(&s->qlen, memory_order_relaxed) == 0)
		return NULL;
	pthread_mutex_lock(&s->qlock);
	struct proc *p = s->qhead;
	if (p) {
		s->qhead = p->rq_next;
		if (s->qhead == NULL)
			s->qtail = NULL;
		atomic_fetch_sub(&s->qlen, 1);
	}
	pthread_mutex_unlock(&s->qlock);
	return p;
}

static void g_push(struct rt *rt, struct proc *p)
{
	p->rq_next = NULL;
	pthread_mutex_lock(&rt->glock);
	if (rt->gtail)
		rt->gtail->rq_next = p;
	else
		rt->ghead = p;
	rt->gtail = p;
	atomic_fetch_add(&rt->glen, 1);
	pthread_cond_signal(&rt->gcond);
	pthread_mutex_unlock(&rt->glock);
	if (atomic_load(&rt->poller))
		reactor_interrupt(&rt->reactor);
}

static struct proc *g_pop(struct rt *rt)
{
	if (atomic_load_explicit(&rt->glen, memory_order_relaxed) == 0)
		return NULL;
	pthread_mutex_lock(&rt->glock);
	struct proc *p = rt->ghead;
	if (p) {
		rt->ghead = p->rq_next;
		if (rt->ghead == NULL)
			rt->gtail = NULL;
		atomic_fetch_sub(&rt->glen, 1);
	}
	pthread_mutex_unlock(&rt->glock);
	return p;
}

static void wake_sleeper(struct rt *rt)
{
	if (atomic_load(&rt->sleepers) > 0) {
		pthread_mutex_lock(&rt->glock);
		pthread_cond_signal(&rt->gcond);
		pthread_mutex_unlock(&rt->glock);
	} else if (atomic_load(&rt->poller)) {
		reactor_interrupt(&rt->reactor);
	}
}

void sched_need_poller(struct rt *rt)
{
	/* A process now waits for an fd: make sure some thread polls. A
	 * sleeping scheduler that wakes becomes the poller (idle()). */
	if (atomic_load(&rt->poller) == 0)
		wake_sleeper(rt);
}

/* Look at the reactor without blocking, if no one else is. */
static void poll_io(struct rt *rt)
{
	int expect = 0;
	if (atomic_load_explicit(&rt->io_waiting, memory_order_relaxed) == 0 ||
	    !atomic_compare_exchange_strong(&rt->poller, &expect, 1))
		return;
	reactor_poll(&rt->reactor, 0, 64, proc_io_ready, rt);
	atomic_store(&rt->poller, 0);
}

void sched_enqueue(struct rt *rt, struct proc *p)
{
	struct sched *s = tl_sched;
	if (s != NULL && s->rt == rt) {
		/* No wake-up here: the process that made p runnable usually
		 * blocks soon (a send then a receive), and p then runs on this
		 * thread, warm, with no cross-thread hand-off. If work piles up
		 * instead, the dispatch loop wakes a sleeper (see sched_main). */
		q_push(s, p);
	} else {
		g_push(rt, p);
	}
}

void sched_enqueue_spawned(struct rt *rt, struct proc *p)
{
	struct sched *s = tl_sched;
	/* A new process runs next, before older work (as Go's runnext): a
	 * spawning tree then runs depth-first, so finished processes hand their
	 * warm stacks and memories to the next spawns instead of a whole
	 * generation being alive at once, each paying fresh page faults. */
	if (s != NULL && s->rt == rt)
		q_push_front(s, p);
	else
		g_push(rt, p);
}

void sched_wake(struct proc *p)
{
	spin_lock(p);
	/* PS_FREE: ended meanwhile; nothing to wake. */
	if (p->state == PS_WAITING) {
		p->state = PS_RUNNABLE;
		spin_unlock(p);
		sched_enqueue(p->rt, p);
		return;
	}
	if (p->state == PS_RUNNING || p->state == PS_RUNNABLE)
		p->pending_wake = true;
	spin_unlock(p);
}

void sched_switch_out(struct proc *p, enum yield_why why)
{
	p->why = (uint8_t)why;
	if (why == Y_EXIT)
		fiber_exit_to(&p->fiber, &p->sched->ctx);
	engine_instance *cur = engine_current();
	fiber_switch(&p->fiber, &p->sched->ctx);
	/* Running again, maybe on another thread: p->sched was updated by the
	 * dispatcher; the engine's thread-local current instance is set again
	 * here (functions that read thread-locals must not straddle a switch,
	 * so both calls are out of line). */
	engine_set_current(cur);
}

int sched_add_timer(struct timer *t)
{
	struct sched *s = tl_sched;
	if (s == NULL)
		return -1;
	return timer_heap_push(&s->timers, t);
}

static struct proc *steal(struct sched *s)
{
	struct rt *rt = s->rt;
	if (rt->nsched < 2)
		return NULL;
	s->rng = s->rng * 6364136223846793005ULL + 1442695040888963407ULL;
	int start = (int)((s->rng >> 33) % (uint64_t)rt->nsched);
	for (int i = 0; i < rt->nsched; i++) {
		struct sched *v = &rt->scheds[(start + i) % rt->nsched];
		if (v == s)
			continue;
		struct proc *p = q_pop(v);
		if (p)
			return p;
	}
	return NULL;
}

static void fire_timers(struct sched *s)
{
	uint64_t now = 0;
	while (s->timers.n > 0) {
		if (now == 0 || timer_heap_next(&s->timers) > now) {
			now = rt_now_ns();
			if (timer_heap_next(&s->timers) > now)
				return;
		}
		proc_fire_timer(s->rt, timer_heap_pop(&s->timers));
	}
}

static bool any_work(struct rt *rt)
{
	if (atomic_load(&rt->glen) > 0)
		return true;
	for (int i = 0; i < rt->nsched; i++)
		if (atomic_load(&rt->scheds[i].qlen) > 0)
			return true;
	return false;
}

/* Nothing to run: become the thread that waits in the reactor if none
 * does (until an fd is ready, work is enqueued, or our next timer), else
 * sleep on the condition variable until work arrives or our next timer. */
static void idle(struct sched *s)
{
	struct rt *rt = s->rt;
	int expect = 0;
	if (atomic_load(&rt->io_waiting) > 0 &&
	    atomic_compare_exchange_strong(&rt->poller, &expect, 1)) {
		/* poller is set before looking for work: an enqueuer that pushes
		 * after our look sees it and interrupts the poll. (Only when a
		 * process waits for I/O: otherwise the condition variable's
		 * nanosecond timeout serves short timers better than epoll's
		 * milliseconds.) */
		int ms = 0;
		if (!any_work(rt) && !atomic_load(&rt->stopping)) {
			uint64_t next = timer_heap_next(&s->timers);
			if (next == UINT64_MAX) {
				ms = -1;
			} else {
				uint64_t now = rt_now_ns();
				ms = next <= now ? 0 : (int)((next - now + 999999) / 1000000);
			}
		}
		reactor_poll(&rt->reactor, ms, 64, proc_io_ready, rt);
		atomic_store(&rt->poller, 0);
		return;
	}
	pthread_mutex_lock(&rt->glock);
	atomic_fetch_add(&rt->sleepers, 1);
	if (!any_work(rt) && !atomic_load(&rt->stopping)) {
		uint64_t next = timer_heap_next(&s->timers);
		if (next == UINT64_MAX) {
			pthread_cond_wait(&rt->gcond, &rt->glock);
		} else {
			/* The condition variable uses CLOCK_MONOTONIC (sched_start). */
			struct timespec ts = { (time_t)(next / 1000000000u),
			                       (long)(next % 1000000000u) };
			pthread_cond_timedwait(&rt->gcond, &rt->glock, &ts);
		}
	}
	atomic_fetch_sub(&rt->sleepers, 1);
	pthread_mutex_unlock(&rt->glock);
}

static void cur_lock(struct sched *s)
{
	while (atomic_flag_test_and_set_explicit(&s->cur_lock, memory_order_acquire))
		;
}

static void cur_unlock(struct sched *s)
{
	atomic_flag_clear_explicit(&s->cur_lock, memory_order_release);
}

void sched_tick(struct rt *rt)
{
	for (int i = 0; i < rt->nsched; i++) {
		struct sched *s = &rt->scheds[i];
		/* Never wait for a scheduler: if it holds the lock it is
		 * switching processes right now, which is what a tick wants. */
		if (atomic_flag_test_and_set_explicit(&s->cur_lock, memory_order_acquire))
			continue;
		bool stuck = s->tick_dispatches == s->tick_seen;
		if (s->cur_vmctx != NULL && stuck)
			engine_vmctx_preempt(s->cur_vmctx);
		s->tick_seen = s->tick_dispatches;
		cur_unlock(s);
		/* No dispatch for a whole tick with work queued: its thread may be
		 * inside a blocking host call (a read of stdin). Let a sleeping
		 * scheduler steal that work. */
		if (stuck && atomic_load_explicit(&s->qlen, memory_order_relaxed) > 0)
			wake_sleeper(rt);
	}
}

void sched_publish_instance(struct sched *s, struct wisp_vmctx *v)
{
	cur_lock(s);
	s->cur_vmctx = v;
	cur_unlock(s);
}

void sched_forget_instance(struct sched *s)
{
	cur_lock(s);
	s->cur_vmctx = NULL;
	cur_unlock(s);
}

static void run(struct sched *s, struct proc *p)
{
	spin_lock(p);
	p->state = PS_RUNNING;
	p->pending_wake = false;
	spin_unlock(p);
	p->sched = s;
	s->current = p;
	cur_lock(s);
	s->tick_dispatches++;
	s->cur_vmctx = p->inst ? engine_instance_vmctx(p->inst) : NULL;
	cur_unlock(s);
	fiber_switch(&s->ctx, &p->fiber);
	sched_forget_instance(s);
	engine_set_current(NULL);
	s->current = NULL;
	switch ((enum yield_why)p->why) {
	case Y_YIELD:
		spin_lock(p);
		p->state = PS_RUNNABLE;
		spin_unlock(p);
		q_push(s, p);
		break;
	case Y_PARK:
		spin_lock(p);
		if (p->pending_wake) {
			p->pending_wake = false;
			p->state = PS_RUNNABLE;
			spin_unlock(p);
			q_push(s, p);
		} else {
			p->state = PS_WAITING;
			spin_unlock(p);
		}
		break;
	case Y_EXIT:
		proc_reap(p);
		break;
	}
}

static void *sched_main(void *arg)
{
	struct sched *s = arg;
	struct rt *rt = s->rt;
	tl_sched = s;
	fiber_init_thread(&s->ctx);
	while (!atomic_load_explicit(&rt->stopping, memory_order_relaxed)) {
		fire_timers(s);
		struct proc *p = q_pop(s);
		if (p == NULL)
			p = g_pop(rt);
		for (int i = 0; p == NULL && i < SPIN_ROUNDS; i++)
			p = steal(s);
		if (p == NULL) {
			idle(s);
			continue;
		}
		/* More work waiting here than this thread is about to run:
		 * let a sleeping scheduler steal some. */
		if (atomic_load_explicit(&s->qlen, memory_order_relaxed) > 0)
			wake_sleeper(rt);
		/* Busy schedulers still look at the reactor now and then, so
		 * I/O is not starved by computation (bounded: 64 events). */
		if ((++s->dispatches & 63) == 0)
			poll_io(rt);
		run(s, p);
	}
	tl_sched = NULL;
	return NULL;
}

int sched_start(struct rt *rt, char *err, size_t errlen)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&rt->gcond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&rt->glock, NULL);
	rt->scheds = calloc((size_t)rt->nsched, sizeof(*rt->scheds));
	if (rt->scheds == NULL) {
		snprintf(err, errlen, "out of memory starting schedulers");
		return -ENOMEM;
	}
	for (int i = 0; i < rt->nsched; i++) {
		struct sched *s = &rt->scheds[i];
		s->rt = rt;
		s->id = i;
		s->rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1);
		atomic_flag_clear(&s->cur_lock);
		pthread_mutex_init(&s->qlock, NULL);
	}
	for (int i = 0; i < rt->nsched; i++) {
		int rc = pthread_create(&rt->scheds[i].thread, NULL, sched_main, &rt->scheds[i]);
		if (rc != 0) {
			snprintf(err, errlen, "cannot start scheduler thread: %s", strerror(rc));
			atomic_store(&rt->stopping, true);
			pthread_mutex_lock(&rt->glock);
			pthread_cond_broadcast(&rt->gcond);
			pthread_mutex_unlock(&rt->glock);
			reactor_interrupt(&rt->reactor);   /* a poller sleeps in epoll */
			for (int j = 0; j < i; j++)
				pthread_join(rt->scheds[j].thread, NULL);
			rt->nsched = 0;
			return -rc;
		}
	}
	return 0;
}

bool sched_stop(struct rt *rt)
{
	atomic_store(&rt->stopping, true);
	pthread_mutex_lock(&rt->glock);
	pthread_cond_broadcast(&rt->gcond);
	pthread_mutex_unlock(&rt->glock);
	reactor_interrupt(&rt->reactor);
	/* A scheduler finishes its current slice first: keep preempting
	 * whatever runs (code that only calls would not yield by itself) until
	 * every one has stopped, within one overall grace period; one stuck in
	 * a blocking host call is then left behind. */
	bool joined[MAX_SCHEDS] = { false };
	int left = rt->nsched;
	uint64_t deadline = rt_now_ns() + 2000000000ull;
	while (left > 0 && rt_now_ns() < deadline) {
		for (int i = 0; i < rt->nsched; i++) {
			if (!joined[i] && pthread_tryjoin_np(rt->scheds[i].thread, NULL) == 0) {
				joined[i] = true;
				left--;
			}
		}
		if (left == 0)
			break;
		for (int i = 0; i < rt->nsched; i++) {
			struct sched *s = &rt->scheds[i];
			if (joined[i] || atomic_flag_test_and_set_explicit(&s->cur_lock, memory_order_acquire))
				continue;
			if (s->cur_vmctx != NULL)
				engine_vmctx_preempt(s->cur_vmctx);
			cur_unlock(s);
		}
		reactor_interrupt(&rt->reactor);
		struct timespec ms = { 0, 1000000 };
		nanosleep(&ms, NULL);
	}
	if (left > 0)
		return false;
	for (int i = 0; i < rt->nsched; i++) {
		struct sched *s = &rt->scheds[i];
		struct timer *t;
		/* The heap owns its timers; the id map only points at them. */
		while ((t = timer_heap_pop(&s->timers)) != NULL) {
			msg_free(t->msg);
			if (!t->embedded)
				free(t);
		}
		free(s->timers.h);
		pthread_mutex_destroy(&s->qlock);
	}
	free(rt->scheds);
	rt->scheds = NULL;
	pthread_mutex_destroy(&rt->glock);
	pthread_cond_destroy(&rt->gcond);
	return true;
}
