/*
 * sched.c — M:N scheduling of tasks over one thread per core.
 *
 * Each scheduler thread has a local run queue (FIFO) and a timer wheel
 * (timer.c); the group has one global queue for work from outside
 * scheduler threads. A scheduler takes work from its local queue, then the
 * global queue, then steals half of another scheduler's queue (starting at
 * a random victim) — and every 64th dispatch the global queue first, so
 * work woken from outside is never starved by busy local queues; finding
 * nothing, it fires due timers, spins briefly, and
 * then sleeps on a condition variable until work is enqueued or its next
 * timer is due.
 *
 * The reactor: an idle scheduler blocks in it (one at a time, `poller`)
 * while any task waits for an fd; busy ones look without blocking every
 * 64 dispatches and whenever nobody has looked since the last tick. The
 * tasks one poll wakes are batched (poll_batched): queued on the polling
 * thread with one lock when the poll is over, and one sleeper woken to
 * share them, which then steals half.
 *
 * A task (a process, for src/proc) runs until it yields: its fuel
 * (reductions: loop iterations, BEAM's 4000 by default) runs out at a loop
 * head, or it has run through a whole tick (1 ms) and reaches a function
 * entry (sched_tick raises its stack limit) — both TASK_YIELD, back of the
 * local queue; or it waits (TASK_PARK: receive, sleep); or it ends
 * (TASK_EXIT: the user's exited() callback then frees what the fiber ran
 * on).
 *
 * Parking without lost wake-ups: a task decides to wait (a process's
 * mailbox had nothing for it), then switches to the scheduler with
 * TASK_PARK. Only after the switch — once its stack is no longer in use —
 * does the scheduler mark it TASK_WAITING, under the task's spinlock. A
 * waker (any thread) takes the same spinlock: if the task is waiting it
 * becomes runnable and is enqueued; otherwise `pending_wake` is set and the
 * scheduler, finishing the park, requeues it at once. pending_wake is
 * cleared when the task is dispatched, so a wake-up is never lost and a
 * fiber never runs on two threads. Spurious wake-ups are allowed: every
 * wait re-checks its condition. Every write of the state is under the
 * task's lock, the end (TASK_FREE) included, so a late waker never races
 * with the slot being reused.
 *
 * Sleeping without lost wake-ups: a scheduler about to sleep registers as a
 * sleeper under `glock` and re-checks every queue; a scheduler that has work
 * queued beyond what it is about to run signals a sleeper (at dispatch), and
 * the global queue signals on every push. Making a task runnable does not
 * by itself wake another thread: in message passing the sender usually
 * blocks next, and the receiver then runs on the same thread, which is what
 * keeps ping-pong and rings off the futex (BEAM and Go do the same).
 *
 * Statistics (sched_read_stats): a scheduler's busy and idle time and
 * dispatches are kept under the lock a dispatch takes anyway for the tick
 * (cur_lock), from the two cycle-counter reads it makes anyway for the
 * task's CPU time, so a reader sees the dispatch or wait in progress too;
 * reactor events and steals are counted on a cache line only its thread
 * writes (struct sched_counters). The dispatch path gains no locked
 * instruction.
 *
 * Queues are mutex-protected intrusive lists. Alternative considered: a
 * Chase-Lev deque per scheduler; it saves a lock per dispatch but needs a
 * fixed capacity or growth logic, and the lock is uncontended except when
 * stealing. Revisit with the benchmarks.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine/engine.h"
#include "sched_impl.h"

#define SPIN_ROUNDS 64
#define TIMERS_PER_ROUND 64   /* bounded work between two dispatches */
#define POLL_EVENTS 64        /* bounded work per reactor look */

static _Thread_local struct sched *tl_sched;

/* A cheap clock for CPU time per task: the invariant TSC on x86-64 (one
 * rdtsc, ~11 ns here, against ~30 ns for clock_gettime), else ns. */
static inline uint64_t ticks(void)
{
#if defined(__x86_64__)
	return __builtin_ia32_rdtsc();
#else
	return sched_now_ns();
#endif
}

/* ticks -> ns, by the rate measured since the group started. */
static uint64_t ticks_ns(const struct sched_group *g, uint64_t t)
{
#if defined(__x86_64__)
	uint64_t dt = ticks() - g->start_ticks, dn = sched_now_ns() - g->start_ns;
	if (dt == 0)
		return 0;
	return (uint64_t)((unsigned __int128)t * dn / dt);
#else
	(void)g;
	return t;
#endif
}

uint64_t sched_task_cpu_ns(const struct task *t)
{
	struct sched *s = t->sched;
	if (s == NULL)
		return 0;
	uint64_t total = t->cpu_ticks;
	if (s == tl_sched && s->current == t)
		total += ticks() - s->dispatch_ticks;
	return ticks_ns(s->g, total);
}

struct sched *sched_self(void)
{
	return tl_sched;
}

struct task *sched_current(void)
{
	return tl_sched ? tl_sched->current : NULL;
}

/* Counting by the owner thread (struct sched_counters): a relaxed load
 * and store, so readers on other threads see a value, never a torn one,
 * and the owner pays no locked instruction. (WISP_NO_STATS compiles
 * counting out: the baseline of bench/metrics_run.py.) */
static inline void count(_Atomic uint64_t *c, uint64_t n)
{
#ifndef WISP_NO_STATS
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
	                      memory_order_relaxed);
#else
	(void)c;
	(void)n;
#endif
}

static void cur_lock(struct sched *s);
static void cur_unlock(struct sched *s);

/* v, or more if a reader was shown more already: what is shown never goes
 * back. */
static uint64_t monotonic(_Atomic uint64_t *shown, uint64_t v)
{
	uint64_t was = atomic_load(shown);
	while (was < v && !atomic_compare_exchange_weak(shown, &was, v))
		;
	return was > v ? was : v;
}

void sched_read_stats(struct sched_group *g, int i, struct sched_stats *out)
{
	struct sched *s = &g->scheds[i];
	cur_lock(s);
	uint64_t t = ticks(), now = sched_now_ns();
	uint64_t busy = s->busy_ticks + (s->running && t > s->dispatch_ticks ? t - s->dispatch_ticks : 0);
	uint64_t idle = s->idle_ns + (s->idle_since != 0 && now > s->idle_since ? now - s->idle_since : 0);
	out->dispatches = s->tick_dispatches;
	cur_unlock(s);
	struct sched_counters *c = &s->counters;
	out->busy_ns = monotonic(&c->busy_shown, ticks_ns(g, busy));
	out->idle_ns = monotonic(&c->idle_shown, idle);
	out->io_events = atomic_load_explicit(&c->io_events, memory_order_relaxed);
	out->steals = atomic_load_explicit(&c->steals, memory_order_relaxed);
	out->queued = atomic_load_explicit(&s->qlen, memory_order_relaxed);
}

uint64_t sched_global_queued(struct sched_group *g)
{
	return atomic_load_explicit(&g->glen, memory_order_relaxed);
}

uint64_t sched_io_waiting(struct sched_group *g)
{
	int n = atomic_load_explicit(&g->io_waiting, memory_order_relaxed);
	return n > 0 ? (uint64_t)n : 0;
}

uint64_t sched_uptime_ns(const struct sched_group *g)
{
	return sched_now_ns() - g->start_ns;
}

static void task_lock(struct task *t)
{
	while (atomic_flag_test_and_set_explicit(&t->lock, memory_order_acquire))
		;
}

static void task_unlock(struct task *t)
{
	atomic_flag_clear_explicit(&t->lock, memory_order_release);
}

/* ---- run queues ---- */

static void q_push(struct sched *s, struct task *t)
{
	t->rq_next = NULL;
	pthread_mutex_lock(&s->qlock);
	if (s->qtail)
		s->qtail->rq_next = t;
	else
		s->qhead = t;
	s->qtail = t;
	atomic_fetch_add(&s->qlen, 1);
	pthread_mutex_unlock(&s->qlock);
}

/* A list of n tasks linked by rq_next, at the back, under one lock. */
static void q_push_list(struct sched *s, struct task *head, struct task *tail, size_t n)
{
	tail->rq_next = NULL;
	pthread_mutex_lock(&s->qlock);
	if (s->qtail)
		s->qtail->rq_next = head;
	else
		s->qhead = head;
	s->qtail = tail;
	atomic_fetch_add(&s->qlen, n);
	pthread_mutex_unlock(&s->qlock);
}

/* At the front: runs next on this scheduler (a task just created). */
static void q_push_front(struct sched *s, struct task *t)
{
	pthread_mutex_lock(&s->qlock);
	t->rq_next = s->qhead;
	s->qhead = t;
	if (s->qtail == NULL)
		s->qtail = t;
	atomic_fetch_add(&s->qlen, 1);
	pthread_mutex_unlock(&s->qlock);
}

static struct task *q_pop(struct sched *s)
{
	if (atomic_load_explicit(&s->qlen, memory_order_relaxed) == 0)
		return NULL;
	pthread_mutex_lock(&s->qlock);
	struct task *t = s->qhead;
	if (t) {
		s->qhead = t->rq_next;
		if (s->qhead == NULL)
			s->qtail = NULL;
		atomic_fetch_sub(&s->qlen, 1);
	}
	pthread_mutex_unlock(&s->qlock);
	return t;
}

static void g_push(struct sched_group *g, struct task *t)
{
	t->rq_next = NULL;
	pthread_mutex_lock(&g->glock);
	if (g->gtail)
		g->gtail->rq_next = t;
	else
		g->ghead = t;
	g->gtail = t;
	atomic_fetch_add(&g->glen, 1);
	pthread_cond_signal(&g->gcond);
	pthread_mutex_unlock(&g->glock);
	if (atomic_load(&g->poller))
		reactor_interrupt(&g->reactor);
}

static struct task *g_pop(struct sched_group *g)
{
	if (atomic_load_explicit(&g->glen, memory_order_relaxed) == 0)
		return NULL;
	pthread_mutex_lock(&g->glock);
	struct task *t = g->ghead;
	if (t) {
		g->ghead = t->rq_next;
		if (g->ghead == NULL)
			g->gtail = NULL;
		atomic_fetch_sub(&g->glen, 1);
	}
	pthread_mutex_unlock(&g->glock);
	return t;
}

static void wake_sleeper(struct sched_group *g)
{
	if (atomic_load(&g->sleepers) > 0) {
		pthread_mutex_lock(&g->glock);
		pthread_cond_signal(&g->gcond);
		pthread_mutex_unlock(&g->glock);
	} else if (atomic_load(&g->poller)) {
		reactor_interrupt(&g->reactor);
	}
}

/* ---- I/O ---- */

void sched_io_wait(struct sched_group *g)
{
	atomic_fetch_add(&g->io_waiting, 1);
	/* Make sure some thread polls: a sleeping scheduler that wakes becomes
	 * the poller (idle()). */
	if (atomic_load(&g->poller) == 0)
		wake_sleeper(g);
}

void sched_io_done(struct sched_group *g)
{
	atomic_fetch_sub(&g->io_waiting, 1);
}

/* Poll the reactor on s's thread (s holds `poller`), the tasks its events
 * make runnable batched: they are queued here with one lock when the poll
 * is over, and if there are several a sleeping scheduler is woken once to
 * take some (rather than a lock and a wake-up per event). */
static int poll_batched(struct sched *s, int64_t timeout_ns)
{
	struct sched_group *g = s->g;
	s->polling = true;
	int n = reactor_poll(&g->reactor, timeout_ns, POLL_EVENTS, g->ops.io_ready, g->ops.ctx);
	s->polling = false;
	atomic_store_explicit(&g->polled_at, atomic_load_explicit(&g->coarse_ns, memory_order_relaxed),
	                      memory_order_relaxed);
	atomic_store(&g->poller, 0);
	count(&s->counters.io_events, (uint64_t)n);
	if (s->batch_head != NULL) {
		size_t len = s->batch_len;
		q_push_list(s, s->batch_head, s->batch_tail, len);
		s->batch_head = s->batch_tail = NULL;
		s->batch_len = 0;
		if (len > 1)
			wake_sleeper(g);
	}
	return n;
}

/* Look at the reactor without blocking, if no one else is (on s's thread). */
static void poll_io(struct sched *s)
{
	struct sched_group *g = s->g;
	int expect = 0;
	/* (A thread blocked in the reactor reports events as they come.) */
	if (atomic_load_explicit(&g->io_waiting, memory_order_relaxed) == 0 ||
	    atomic_load_explicit(&g->poller, memory_order_relaxed) != 0 ||
	    !atomic_compare_exchange_strong(&g->poller, &expect, 1))
		return;
	poll_batched(s, 0);
}

/* ---- making tasks runnable ---- */

void sched_enqueue(struct sched_group *g, struct task *t)
{
	struct sched *s = tl_sched;
	if (s != NULL && s->polling && s->g == g) {
		/* Woken by the poll in progress on this thread: poll_batched
		 * queues the batch when the poll is over. */
		t->rq_next = NULL;
		if (s->batch_tail)
			s->batch_tail->rq_next = t;
		else
			s->batch_head = t;
		s->batch_tail = t;
		s->batch_len++;
		return;
	}
	if (s != NULL && s->g == g) {
		/* No wake-up here: the task that made t runnable usually blocks
		 * soon (a send then a receive), and t then runs on this thread,
		 * warm, with no cross-thread hand-off. If work piles up instead,
		 * the dispatch loop wakes a sleeper (see sched_main). */
		q_push(s, t);
	} else {
		g_push(g, t);
	}
}

void sched_enqueue_new(struct sched_group *g, struct task *t)
{
	struct sched *s = tl_sched;
	task_lock(t);
	t->state = TASK_RUNNABLE;
	t->pending_wake = false;
	task_unlock(t);
	/* A new task runs next, before older work (as Go's runnext): a
	 * spawning tree then runs depth-first, so finished processes hand their
	 * warm stacks and memories to the next spawns instead of a whole
	 * generation being alive at once, each paying fresh page faults. */
	if (s != NULL && s->g == g)
		q_push_front(s, t);
	else
		g_push(g, t);
}

void sched_wake(struct sched_group *g, struct task *t)
{
	task_lock(t);
	/* TASK_FREE: ended meanwhile; nothing to wake. */
	if (t->state == TASK_WAITING) {
		t->state = TASK_RUNNABLE;
		task_unlock(t);
		sched_enqueue(g, t);
		return;
	}
	if (t->state == TASK_RUNNING || t->state == TASK_RUNNABLE || t->state == TASK_FREEZING)
		t->pending_wake = true;
	task_unlock(t);
}

void sched_switch_out(struct task *t, enum task_yield why)
{
	t->why = (uint8_t)why;
	if (why == TASK_EXIT)
		fiber_exit_to(&t->fiber, &t->sched->ctx);
	engine_instance *cur = engine_current();
	fiber_switch(&t->fiber, &t->sched->ctx);
	/* Running again, maybe on another thread: t->sched was updated by the
	 * dispatcher; the engine's thread-local current instance is set again
	 * here (functions that read thread-locals must not straddle a switch,
	 * so both calls are out of line). */
	engine_set_current(cur);
}

void sched_call_on_thread_stack(void (*fn)(void *), void *arg)
{
	struct task *t = sched_current();
	if (t == NULL) {
		fn(arg);
		return;
	}
	t->sched->call_fn = fn;
	t->sched->call_arg = arg;
	sched_switch_out(t, TASK_CALL);
}

/* ---- hibernation ----
 *
 * A task that waits long (sched_set_hibernation) or asks to (sched_hibernate)
 * gives its memory back: the live part of its stack — from its saved stack
 * pointer to the top, usually well under 2 KiB for a process parked in a
 * receive — is copied to the heap and the whole stack's pages are dropped
 * (MADV_DONTNEED: the stack keeps its address, the pages fault back in as
 * zero), and the user's freeze() gives back what it can (linear memory).
 * The copy is put back, after thaw(), just before the task runs again.
 *
 * Which tasks wait long: every park puts the task (if no list holds it) at
 * the tail of its scheduler's idle list, stamped with the group's coarse
 * clock; the scheduler looks at the head now and then (every 64 dispatches
 * and before sleeping) and hibernates those still waiting since before the
 * threshold, re-queueing those that parked again since. A task is frozen
 * under state TASK_FREEZING, which a waker treats like a running task
 * (pending_wake): nothing runs it meanwhile. O(1) per park, no scan. */

#define HIBERNATE_PER_ROUND 32

static uint64_t stack_top(const struct task *t)
{
	return ((uintptr_t)t->fiber.stack_lo + t->fiber.stack_size) & ~(uintptr_t)15;
}

/* Copies of a fiber's stack run outside its sanitizer bookkeeping. */
__attribute__((no_sanitize("address", "thread")))
static void copy_raw(unsigned char *dst, const unsigned char *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = src[i];
}

/* Hibernate t (not running; its state is ours). False if out of memory
 * (then it simply stays awake). */
static bool freeze(struct sched_group *g, struct task *t)
{
	if (t->hib.copy != NULL)
		return true;
	uintptr_t sp = (uintptr_t)t->fiber.sp, top = stack_top(t);
	size_t len = top - sp;
	unsigned char *copy = malloc(len ? len : 1);
	if (copy == NULL)
		return false;
	copy_raw(copy, (const unsigned char *)sp, len);
	/* (atomic: sched_task_hibernated may look from any thread) */
	__atomic_store_n(&t->hib.copy, copy, __ATOMIC_RELEASE);
	t->hib.len = len;
	madvise(t->fiber.stack_lo, t->fiber.stack_size, MADV_DONTNEED);
	if (g->ops.freeze != NULL)
		g->ops.freeze(t, g->ops.ctx);
	atomic_fetch_add_explicit(&g->hibernated, 1, memory_order_relaxed);
	return true;
}

static void thaw(struct sched_group *g, struct task *t)
{
	if (t->hib.copy == NULL)
		return;
	if (g->ops.thaw != NULL)
		g->ops.thaw(t, g->ops.ctx);
	copy_raw((unsigned char *)stack_top(t) - t->hib.len, t->hib.copy, t->hib.len);
	free(t->hib.copy);
	__atomic_store_n(&t->hib.copy, NULL, __ATOMIC_RELEASE);
	t->hib.len = 0;
	atomic_fetch_sub_explicit(&g->hibernated, 1, memory_order_relaxed);
}

bool sched_task_hibernated(const struct task *t)
{
	return __atomic_load_n(&t->hib.copy, __ATOMIC_ACQUIRE) != NULL;
}

/* ---- inspection ----
 *
 * Another thread (the control socket's) looks at a task under its
 * spinlock, for a moment: the state says whether its fiber can run
 * meanwhile (see sched_task_peek). The stack of a task that is not
 * running is read in place, or in its hibernation copy, along the frame
 * pointers (every word read is checked to lie between the saved stack
 * pointer and the top, so a broken chain ends the walk, never reads
 * elsewhere). Alternative rejected: unwinding by .eh_frame from the saved
 * registers (libunwind on a made-up context): exact through code without
 * frame pointers too, but a new dependency and microseconds per frame,
 * while every wisp frame keeps its frame pointer anyway. */

void sched_task_peek(struct task *t,
                     void (*fn)(struct task *t, const struct sched_task_view *v, void *arg),
                     void *arg)
{
	struct sched_task_view v = { 0 };
	task_lock(t);
	v.state = (enum task_state)t->state;
	const unsigned char *copy = __atomic_load_n(&t->hib.copy, __ATOMIC_ACQUIRE);
	v.hibernated = copy != NULL || v.state == TASK_FREEZING;
	/* RUNNABLE with a copy: a scheduler may be thawing it right now
	 * (run() thaws before it takes the lock). */
	v.stack_readable = (v.state == TASK_WAITING ||
	                    (v.state == TASK_RUNNABLE && copy == NULL));
	if (v.stack_readable) {
		v.stack_used = copy != NULL ? t->hib.len : stack_top(t) - (uintptr_t)t->fiber.sp;
		if (t->sched != NULL)
			v.cpu_ns = ticks_ns(t->sched->g, t->cpu_ticks);
	}
	fn(t, &v, arg);
	task_unlock(t);
}

/* The word at address a of t's stack (whose saved stack pointer is sp;
 * copy: its hibernation copy of [sp, top), or NULL), if a lies there. Not
 * sanitized: the stack is another fiber's. */
__attribute__((no_sanitize("address", "thread")))
static bool stack_word(const struct task *t, uintptr_t sp, const unsigned char *copy, uintptr_t a,
                       uintptr_t *out)
{
	if (a < sp || a > stack_top(t) - sizeof(uintptr_t) || (a & (sizeof(uintptr_t) - 1)) != 0)
		return false;
	*out = copy != NULL ? *(const uintptr_t *)(copy + (a - sp)) : *(const uintptr_t *)a;
	return true;
}

size_t sched_task_frames(const struct task *t, size_t max, bool (*each)(uintptr_t ret, void *arg),
                         void *arg)
{
	uintptr_t sp = (uintptr_t)t->fiber.sp, fp, next, ret;
	const unsigned char *copy = __atomic_load_n(&t->hib.copy, __ATOMIC_ACQUIRE);
	if (!stack_word(t, sp, copy, sp + fiber_saved_fp_offset(), &fp))
		return 0;
	size_t n = 0;
	/* A frame record: [fp] the caller's fp, [fp + 8] the return address. */
	while (n < max && stack_word(t, sp, copy, fp, &next) &&
	       stack_word(t, sp, copy, fp + sizeof(uintptr_t), &ret) && ret != 0) {
		n++;
		if (!each(ret, arg) || next <= fp)
			break;
		fp = next;
	}
	return n;
}

void sched_set_hibernation(struct sched_group *g, uint64_t ns)
{
	g->hibernate_after_ns = ns;
}

void sched_hibernate(struct task *t)
{
	sched_switch_out(t, TASK_HIBERNATE);
}

/* A parked task joins this scheduler's idle list, if none holds it. */
static void idle_list_add(struct sched *s, struct task *t)
{
	struct sched_group *g = s->g;
	atomic_store_explicit(&t->parked_at, atomic_load_explicit(&g->coarse_ns, memory_order_relaxed),
	                      memory_order_relaxed);
	struct sched *none = NULL;
	if (!atomic_compare_exchange_strong(&t->listed_on, &none, s))
		return;
	t->idle_next = NULL;
	if (s->idle_tail)
		s->idle_tail->idle_next = t;
	else
		s->idle_head = t;
	s->idle_tail = t;
}

/* Try to move a waiting task into TASK_FREEZING (ours to freeze). */
static bool claim_waiting(struct task *t)
{
	task_lock(t);
	bool ok = t->state == TASK_WAITING && t->hib.copy == NULL && !t->no_hibernate;
	if (ok)
		t->state = TASK_FREEZING;
	task_unlock(t);
	return ok;
}

/* End TASK_FREEZING: waiting again, or runnable if woken meanwhile. */
static void end_freezing(struct sched_group *g, struct task *t)
{
	task_lock(t);
	if (t->pending_wake) {
		t->pending_wake = false;
		t->state = TASK_RUNNABLE;
		task_unlock(t);
		sched_enqueue(g, t);
		return;
	}
	t->state = TASK_WAITING;
	task_unlock(t);
}

/* Hibernate the tasks at the head of the idle list that have waited long
 * enough (at most HIBERNATE_PER_ROUND). Returns when the next one is due
 * (coarse ns), or UINT64_MAX. */
static uint64_t hibernate_due(struct sched *s)
{
	struct sched_group *g = s->g;
	uint64_t after = g->hibernate_after_ns;
	uint64_t now = atomic_load_explicit(&g->coarse_ns, memory_order_relaxed);
	for (int n = 0; s->idle_head != NULL && n < HIBERNATE_PER_ROUND; n++) {
		struct task *t = s->idle_head;
		uint64_t at = atomic_load_explicit(&t->parked_at, memory_order_relaxed);
		if (after == 0 || at + after > now)
			return after == 0 ? UINT64_MAX : at + after;
		s->idle_head = t->idle_next;
		if (s->idle_head == NULL)
			s->idle_tail = NULL;
		atomic_store(&t->listed_on, NULL);
		if (claim_waiting(t)) {
			freeze(g, t);
			end_freezing(g, t);
		}
	}
	return s->idle_head ? 0 : UINT64_MAX;
}

void sched_task_forget(struct task *t)
{
	free(t->hib.copy);
	__atomic_store_n(&t->hib.copy, NULL, __ATOMIC_RELEASE);
	t->hib.len = 0;
}

/* ---- preemption ---- */

static void cur_lock(struct sched *s)
{
	while (atomic_flag_test_and_set_explicit(&s->cur_lock, memory_order_acquire))
		;
}

static void cur_unlock(struct sched *s)
{
	atomic_flag_clear_explicit(&s->cur_lock, memory_order_release);
}

void sched_publish_vmctx(struct task *t, struct wisp_vmctx *v)
{
	struct sched *s = t->sched;
	cur_lock(s);
	t->vmctx = v;
	s->cur_vmctx = v;
	cur_unlock(s);
}

void sched_tick(struct sched_group *g)
{
	atomic_store_explicit(&g->coarse_ns, sched_now_ns(), memory_order_relaxed);
	for (int i = 0; i < g->nsched; i++) {
		struct sched *s = &g->scheds[i];
		/* Never wait for a scheduler: if it holds the lock it is
		 * switching tasks right now, which is what a tick wants. */
		if (atomic_flag_test_and_set_explicit(&s->cur_lock, memory_order_acquire))
			continue;
		bool stuck = s->tick_dispatches == s->tick_seen;
		bool busy = s->running;
		if (s->cur_vmctx != NULL && stuck)
			engine_vmctx_preempt(s->cur_vmctx);
		s->tick_seen = s->tick_dispatches;
		cur_unlock(s);
		if (!stuck || !busy)
			continue;
		/* No dispatch for a whole tick while running something: its
		 * thread may be inside a blocking host call (a read of stdin).
		 * Fire its due timers from here and let a sleeping scheduler
		 * steal its queued work. */
		timer_wheel_fire(&s->timers, TIMERS_PER_ROUND);
		if (atomic_load_explicit(&s->qlen, memory_order_relaxed) > 0)
			wake_sleeper(g);
	}
}

/* ---- the scheduler loop ---- */

/* Take half of v's queue (at least one task; its oldest): the first to
 * run now, the rest onto s's queue. Taking one at a time, a scheduler woken
 * to share a burst (a reactor poll's batch) went back for each task,
 * through the victim's lock and a random search, while the rest waited
 * behind the victim's running task. NULL if v's queue was empty. */
static struct task *steal_half(struct sched *s, struct sched *v)
{
	if (atomic_load_explicit(&v->qlen, memory_order_relaxed) == 0)
		return NULL;
	pthread_mutex_lock(&v->qlock);
	size_t len = atomic_load_explicit(&v->qlen, memory_order_relaxed);
	size_t take = len - len / 2;
	struct task *head = v->qhead, *tail = head;
	if (head == NULL) {
		pthread_mutex_unlock(&v->qlock);
		return NULL;
	}
	for (size_t i = 1; i < take && tail->rq_next != NULL; i++)
		tail = tail->rq_next;
	size_t got = 1;
	for (struct task *q = head; q != tail; q = q->rq_next)
		got++;
	v->qhead = tail->rq_next;
	if (v->qhead == NULL)
		v->qtail = NULL;
	atomic_fetch_sub(&v->qlen, got);
	pthread_mutex_unlock(&v->qlock);
	count(&s->counters.steals, got);
	struct task *rest = head->rq_next;
	if (got > 1)
		q_push_list(s, rest, tail, got - 1);
	return head;
}

static struct task *steal(struct sched *s)
{
	struct sched_group *g = s->g;
	if (g->nsched < 2)
		return NULL;
	s->rng = s->rng * 6364136223846793005ULL + 1442695040888963407ULL;
	int start = (int)((s->rng >> 33) % (uint64_t)g->nsched);
	for (int i = 0; i < g->nsched; i++) {
		struct sched *v = &g->scheds[(start + i) % g->nsched];
		if (v == s)
			continue;
		struct task *t = steal_half(s, v);
		if (t)
			return t;
	}
	return NULL;
}

static bool any_work(struct sched_group *g)
{
	if (atomic_load(&g->glen) > 0)
		return true;
	for (int i = 0; i < g->nsched; i++)
		if (atomic_load(&g->scheds[i].qlen) > 0)
			return true;
	return false;
}

/* Nanoseconds until the next timer for the reactor, -1 if none. */
static int64_t poll_timeout_ns(uint64_t next)
{
	if (next == UINT64_MAX)
		return -1;
	uint64_t now = sched_now_ns();
	return next <= now ? 0 : (int64_t)(next - now);
}

/* Nothing to run: become the thread that waits in the reactor if none
 * does (until an fd is ready, work is enqueued, or our next timer), else
 * sleep on the condition variable until work arrives or our next timer. */
/* The wait for work that idle() is in (its statistics), and its end. */
static void idle_begin(struct sched *s, uint64_t since)
{
#ifndef WISP_NO_STATS
	cur_lock(s);
	s->idle_since = since;
	cur_unlock(s);
#else
	(void)s;
	(void)since;
#endif
}

static void idle_end(struct sched *s, uint64_t since)
{
#ifndef WISP_NO_STATS
	uint64_t now = sched_now_ns();
	cur_lock(s);
	s->idle_ns += now - since;
	s->idle_since = 0;
	cur_unlock(s);
#else
	(void)s;
	(void)since;
#endif
}

static void idle(struct sched *s)
{
	struct sched_group *g = s->g;
#ifndef WISP_NO_STATS
	uint64_t since = sched_now_ns();
#else
	uint64_t since = 0;
#endif
	idle_begin(s, since);
	/* Wake up for the next timer, or the next task due to hibernate. */
	uint64_t next = atomic_load(&s->timers.next);
	uint64_t hib_next = s->idle_head ? hibernate_due(s) : UINT64_MAX;
	if (hib_next < next)
		next = hib_next;
	int expect = 0;
	if (atomic_load(&g->io_waiting) > 0 &&
	    atomic_compare_exchange_strong(&g->poller, &expect, 1)) {
		/* poller is set before looking for work: an enqueuer that pushes
		 * after our look sees it and interrupts the poll. (Only when a
		 * task waits for I/O, or another node's connection is read
		 * here: otherwise the condition variable serves as well.) */
		int64_t ns = 0;
		if (!any_work(g) && !atomic_load(&g->stopping))
			ns = poll_timeout_ns(next);
		poll_batched(s, ns);
		idle_end(s, since);
		return;
	}
	pthread_mutex_lock(&g->glock);
	atomic_fetch_add(&g->sleepers, 1);
	if (!any_work(g) && !atomic_load(&g->stopping)) {
		if (next == UINT64_MAX) {
			pthread_cond_wait(&g->gcond, &g->glock);
		} else {
			/* The condition variable uses CLOCK_MONOTONIC (sched_start). */
			struct timespec ts = { (time_t)(next / 1000000000u),
			                       (long)(next % 1000000000u) };
			pthread_cond_timedwait(&g->gcond, &g->glock, &ts);
		}
	}
	atomic_fetch_sub(&g->sleepers, 1);
	pthread_mutex_unlock(&g->glock);
	idle_end(s, since);
}

static void run(struct sched *s, struct task *t)
{
	thaw(s->g, t);
	task_lock(t);
	t->state = TASK_RUNNING;
	t->pending_wake = false;
	task_unlock(t);
	t->sched = s;
	s->current = t;
	cur_lock(s);
	s->tick_dispatches++;
	s->cur_vmctx = t->vmctx;
	s->running = true;
	s->dispatch_ticks = ticks();
	cur_unlock(s);
	fiber_switch(&s->ctx, &t->fiber);
	while (t->why == TASK_CALL) {
		/* On this thread's stack, the task still running: back to it. */
		s->call_fn(s->call_arg);
		t->why = TASK_YIELD;
		fiber_switch(&s->ctx, &t->fiber);
	}
	cur_lock(s);
	uint64_t ran = ticks() - s->dispatch_ticks;
#ifndef WISP_NO_STATS
	s->busy_ticks += ran;
#endif
	s->cur_vmctx = NULL;
	s->running = false;
	cur_unlock(s);
	t->cpu_ticks += ran;
	engine_set_current(NULL);
	s->current = NULL;
	switch ((enum task_yield)t->why) {
	case TASK_YIELD:
		task_lock(t);
		t->state = TASK_RUNNABLE;
		task_unlock(t);
		q_push(s, t);
		break;
	case TASK_PARK:
		task_lock(t);
		if (t->pending_wake) {
			t->pending_wake = false;
			t->state = TASK_RUNNABLE;
			task_unlock(t);
			q_push(s, t);
		} else {
			t->state = TASK_WAITING;
			task_unlock(t);
			if (s->g->hibernate_after_ns != 0)
				idle_list_add(s, t);
		}
		break;
	case TASK_HIBERNATE:
		/* Freeze first (it is still ours: a waker sets pending_wake). */
		task_lock(t);
		t->state = TASK_FREEZING;
		bool woken = t->pending_wake;
		task_unlock(t);
		if (!woken)
			freeze(s->g, t);
		end_freezing(s->g, t);
		break;
	case TASK_CALL:
		break;   /* handled above */
	case TASK_EXIT:
		task_lock(t);
		t->state = TASK_FREE;
		t->vmctx = NULL;
		task_unlock(t);
		s->g->ops.exited(t, s->g->ops.ctx);
		break;
	}
}

static void *sched_main(void *arg)
{
	struct sched *s = arg;
	struct sched_group *g = s->g;
	tl_sched = s;
	fiber_init_thread(&s->ctx);
	while (!atomic_load_explicit(&g->stopping, memory_order_relaxed)) {
		/* Timers: at every turn when there is nothing queued here, and
		 * every 16 dispatches otherwise (reading the clock costs as much as
		 * a quarter of a dispatch; a timer waits at most 16 slices). */
		if ((s->dispatches & 15) == 0 ||
		    atomic_load_explicit(&s->qlen, memory_order_relaxed) == 0)
			timer_wheel_fire(&s->timers, TIMERS_PER_ROUND);
		/* The global queue first now and then (as Go does every 61st
		 * schedule): tasks woken from outside a scheduler thread — the
		 * embedder's shutdown signal, the blocking pool, the tick's timers
		 * — wait there, and local queues that never empty (processes
		 * that compute) would starve them for good. */
		struct task *t = (s->dispatches & 63) == 31 ? g_pop(g) : NULL;
		if (t == NULL)
			t = q_pop(s);
		if (t == NULL)
			t = g_pop(g);
		for (int i = 0; t == NULL && i < SPIN_ROUNDS; i++)
			t = steal(s);
		if (t == NULL) {
			idle(s);
			continue;
		}
		/* More work waiting here than this thread is about to run:
		 * let a sleeping scheduler steal some. */
		if (atomic_load_explicit(&s->qlen, memory_order_relaxed) > 0)
			wake_sleeper(g);
		/* Busy schedulers still look at the reactor now and then, so
		 * I/O is not starved by computation (bounded: 64 events): every
		 * 64 dispatches, and whenever no thread has looked since the
		 * last tick (1 ms). By count alone, schedulers busy with slices
		 * of a millisecond each looked every 64 ms, and a socket that
		 * became ready waited that long. */
		if ((++s->dispatches & 63) == 0) {
			poll_io(s);
			if (s->idle_head != NULL)
				hibernate_due(s);
		} else if (atomic_load_explicit(&g->polled_at, memory_order_relaxed) !=
		           atomic_load_explicit(&g->coarse_ns, memory_order_relaxed)) {
			poll_io(s);
		}
		run(s, t);
	}
	tl_sched = NULL;
	return NULL;
}

/* ---- starting and stopping ---- */

static void wake_all(struct sched_group *g)
{
	pthread_mutex_lock(&g->glock);
	pthread_cond_broadcast(&g->gcond);
	pthread_mutex_unlock(&g->glock);
	reactor_interrupt(&g->reactor);
}

static void free_group(struct sched_group *g, void (*drop)(struct sched_timer *t))
{
	for (int i = 0; i < g->nsched; i++) {
		timer_wheel_destroy(&g->scheds[i].timers, drop);
		pthread_mutex_destroy(&g->scheds[i].qlock);
	}
	free(g->scheds);
	g->scheds = NULL;
	g->nsched = 0;
	reactor_destroy(&g->reactor);
	pthread_mutex_destroy(&g->glock);
	pthread_cond_destroy(&g->gcond);
}

int sched_start(struct sched_group *g, int nsched, const struct sched_ops *ops,
                char *err, size_t errlen)
{
	memset(g, 0, sizeof(*g));
	if (nsched < 1 || nsched > SCHED_MAX) {
		snprintf(err, errlen, "%d schedulers: must be 1 to %d", nsched, SCHED_MAX);
		return -EINVAL;
	}
	g->ops = *ops;
	g->start_ticks = ticks();
	g->start_ns = sched_now_ns();
	atomic_store(&g->coarse_ns, g->start_ns);
	int rc = reactor_init(&g->reactor);
	if (rc != 0) {
		snprintf(err, errlen, "cannot create the I/O reactor: %s", strerror(-rc));
		return rc;
	}
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g->gcond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&g->glock, NULL);
	/* Aligned: each scheduler's counters sit on a cache line of their own. */
	g->scheds = aligned_alloc(alignof(struct sched), (size_t)nsched * sizeof(*g->scheds));
	if (g->scheds != NULL)
		memset(g->scheds, 0, (size_t)nsched * sizeof(*g->scheds));
	if (g->scheds == NULL) {
		snprintf(err, errlen, "out of memory starting schedulers");
		free_group(g, NULL);
		return -ENOMEM;
	}
	g->nsched = nsched;
	for (int i = 0; i < nsched; i++) {
		struct sched *s = &g->scheds[i];
		s->g = g;
		s->id = i;
		s->rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1);
		atomic_flag_clear(&s->cur_lock);
		pthread_mutex_init(&s->qlock, NULL);
		timer_wheel_init(&s->timers);
	}
	/* Scheduler threads (and the threads they start) never take the
	 * process's asynchronous signals: those go to the embedder's thread,
	 * and no host call on a scheduler is interrupted by one. */
	sigset_t async, old;
	sigemptyset(&async);
	int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGCHLD, SIGWINCH };
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&async, sigs[i]);
	pthread_sigmask(SIG_BLOCK, &async, &old);
	for (int i = 0; i < nsched; i++) {
		rc = pthread_create(&g->scheds[i].thread, NULL, sched_main, &g->scheds[i]);
		if (rc != 0) {
			snprintf(err, errlen, "cannot start scheduler thread: %s", strerror(rc));
			atomic_store(&g->stopping, true);
			wake_all(g);
			for (int j = 0; j < i; j++)
				pthread_join(g->scheds[j].thread, NULL);
			free_group(g, NULL);
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			return -rc;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return 0;
}

bool sched_stop(struct sched_group *g, void (*drop)(struct sched_timer *t))
{
	atomic_store(&g->stopping, true);
	wake_all(g);
	/* A scheduler finishes its current slice first: keep preempting
	 * whatever runs (code that only calls would not yield by itself) until
	 * every one has stopped, within one overall grace period; one stuck in
	 * a blocking host call is then left behind. */
	bool joined[SCHED_MAX] = { false };
	int left = g->nsched;
	uint64_t deadline = sched_now_ns() + 2000000000ull;
	while (left > 0 && sched_now_ns() < deadline) {
		for (int i = 0; i < g->nsched; i++) {
			if (!joined[i] && pthread_tryjoin_np(g->scheds[i].thread, NULL) == 0) {
				joined[i] = true;
				left--;
			}
		}
		if (left == 0)
			break;
		for (int i = 0; i < g->nsched; i++) {
			struct sched *s = &g->scheds[i];
			if (joined[i] || atomic_flag_test_and_set_explicit(&s->cur_lock, memory_order_acquire))
				continue;
			if (s->cur_vmctx != NULL)
				engine_vmctx_preempt(s->cur_vmctx);
			cur_unlock(s);
		}
		wake_all(g);
		struct timespec ms = { 0, 1000000 };
		nanosleep(&ms, NULL);
	}
	if (left > 0)
		return false;
	free_group(g, drop);
	return true;
}
