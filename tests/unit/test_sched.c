/* Unit tests for src/sched: tasks on real scheduler threads (run, yield,
 * park and wake without losing a wake-up, exit), timers (fire, cancel by
 * id, cancel by pointer, order) and the group's start and stop. */
#include "unit.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sched/sched.h"
#include "sched/stack.h"
#include "sched/sched_impl.h"

#define STACK (64 * 1024)

struct fixture {
	struct sched_group g;
	atomic_int exited;
	atomic_int io_events;
};

struct utask {
	struct task task;
	struct fixture *f;
	void (*body)(struct utask *u);
	void *stack;
	atomic_int steps;
	atomic_bool waiting_soon;
	struct sched_timer timer;
	atomic_int fired;
};

static void on_exit_cb(struct task *t, void *ctx)
{
	struct fixture *f = ctx;
	atomic_fetch_add(&f->exited, 1);
	(void)t;
}

static void on_io(uint64_t token, void *ctx)
{
	struct fixture *f = ctx;
	atomic_fetch_add(&f->io_events, 1);
	(void)token;
}

static void start_group(struct fixture *f, int n)
{
	memset(f, 0, sizeof(*f));
	struct sched_ops ops = { .exited = on_exit_cb, .io_ready = on_io, .ctx = f };
	char err[128];
	assert_int_equal(sched_start(&f->g, n, &ops, err, sizeof(err)), 0);
}

static void trampoline(void *arg)
{
	struct utask *u = arg;
	u->body(u);
	sched_switch_out(&u->task, TASK_EXIT);
}

static struct utask *new_task(struct fixture *f, void (*body)(struct utask *))
{
	struct utask *u = calloc(1, sizeof(*u));
	u->f = f;
	u->body = body;
	u->stack = aligned_alloc(4096, STACK);
	atomic_flag_clear(&u->task.lock);
	fiber_init(&u->task.fiber, u->stack, STACK, trampoline, u);
	return u;
}

static void free_task(struct utask *u)
{
	fiber_destroy(&u->task.fiber);
	free(u->stack);
	free(u);
}

static void wait_for(atomic_int *v, int want)
{
	for (int i = 0; i < 10000 && atomic_load(v) < want; i++)
		usleep(1000);
	assert_int_equal(atomic_load(v), want);
}

/* ---- running and yielding ---- */

static void yield_body(struct utask *u)
{
	for (int i = 0; i < 100; i++) {
		atomic_fetch_add(&u->steps, 1);
		sched_switch_out(&u->task, TASK_YIELD);
	}
}

static void tasks_run_yield_and_exit(void **state)
{
	struct fixture f;
	start_group(&f, 2);
	struct utask *u[50];
	for (int i = 0; i < 50; i++) {
		u[i] = new_task(&f, yield_body);
		sched_enqueue_new(&f.g, &u[i]->task);
	}
	wait_for(&f.exited, 50);
	for (int i = 0; i < 50; i++) {
		assert_int_equal(atomic_load(&u[i]->steps), 100);
		assert_int_equal(u[i]->task.state, TASK_FREE);
	}
	assert_true(sched_stop(&f.g, NULL));
	for (int i = 0; i < 50; i++)
		free_task(u[i]);
}

/* ---- statistics ---- */

static void counters_add_up_and_include_the_spell_in_progress(void **state)
{
	struct fixture f;
	start_group(&f, 2);
	struct utask *u[50];
	for (int i = 0; i < 50; i++) {
		u[i] = new_task(&f, yield_body);
		sched_enqueue_new(&f.g, &u[i]->task);
	}
	wait_for(&f.exited, 50);
	/* Every task ran 101 times: 100 yields, then its end. */
	uint64_t dispatches = 0, busy = 0;
	struct sched_stats st[2];
	for (int i = 0; i < 2; i++) {
		sched_read_stats(&f.g, i, &st[i]);
		dispatches += st[i].dispatches;
		busy += st[i].busy_ns;
		assert_int_equal(st[i].queued, 0);
	}
	assert_int_equal(dispatches, 50 * 101);
	assert_true(busy > 0);
	/* Both are idle now, asleep with no timer: their idle time grows while
	 * they sleep (the spell in progress counts), and nothing goes back. */
	usleep(20000);
	for (int i = 0; i < 2; i++) {
		struct sched_stats later;
		sched_read_stats(&f.g, i, &later);
		assert_true(later.idle_ns >= st[i].idle_ns + 10000000);
		assert_true(later.busy_ns >= st[i].busy_ns);
		assert_int_equal(later.dispatches, st[i].dispatches);
	}
	assert_int_equal(sched_global_queued(&f.g), 0);
	assert_true(sched_uptime_ns(&f.g) >= 20000000);
	assert_true(sched_stop(&f.g, NULL));
	for (int i = 0; i < 50; i++)
		free_task(u[i]);
}

/* ---- parking and waking ---- */

static atomic_int ready_round, go_round;

static void park_body(struct utask *u)
{
	for (int i = 1; i <= 100000; i++) {
		atomic_store(&ready_round, i);
		while (atomic_load(&go_round) < i)
			sched_switch_out(&u->task, TASK_PARK);
		atomic_fetch_add(&u->steps, 1);
	}
}

/* Each round needs exactly one wake-up, sent from another thread at any
 * moment — before the task parks, while it switches out, after: a lost
 * one would leave the task parked for good and the test stuck. */
static void wake_ups_are_never_lost(void **state)
{
	struct fixture f;
	start_group(&f, 2);
	struct utask *u = new_task(&f, park_body);
	sched_enqueue_new(&f.g, &u->task);
	for (int i = 1; i <= 100000; i++) {
		struct timespec t0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		while (atomic_load(&ready_round) < i) {
			struct timespec t1;
			clock_gettime(CLOCK_MONOTONIC, &t1);
			if (t1.tv_sec - t0.tv_sec > 10)
				fail_msg("round %d: the task never got its wake-up", i - 1);
		}
		atomic_store(&go_round, i);
		sched_wake(&f.g, &u->task);
	}
	wait_for(&f.exited, 1);
	assert_int_equal(atomic_load(&u->steps), 100000);
	assert_true(sched_stop(&f.g, NULL));
	free_task(u);
}

static void a_task_that_ended_is_not_woken(void **state)
{
	struct fixture f;
	start_group(&f, 1);
	struct utask *u = new_task(&f, yield_body);
	sched_enqueue_new(&f.g, &u->task);
	wait_for(&f.exited, 1);
	sched_wake(&f.g, &u->task);     /* late: must not run it again */
	usleep(20000);
	assert_int_equal(atomic_load(&f.exited), 1);
	assert_int_equal(u->task.state, TASK_FREE);
	assert_true(sched_stop(&f.g, NULL));
	free_task(u);
}

/* ---- timers ---- */

static void fire_wakes(struct sched_timer *t)
{
	struct utask *u = (struct utask *)((char *)t - offsetof(struct utask, timer));
	atomic_fetch_add(&u->fired, 1);
	sched_wake(&u->f->g, &u->task);
}

static void timer_body(struct utask *u)
{
	uint64_t start = sched_now_ns();
	u->timer.fire = fire_wakes;
	u->timer.deadline = start + 5000000;     /* 5 ms */
	assert_int_equal(sched_timer_add(&u->timer, NULL), 0);
	while (atomic_load(&u->fired) == 0)
		sched_switch_out(&u->task, TASK_PARK);
	/* It fired, and not before its deadline. */
	assert_true(sched_now_ns() >= start + 5000000);
	atomic_store(&u->steps, 1);
}

static void a_timer_wakes_a_parked_task(void **state)
{
	struct fixture f;
	start_group(&f, 2);
	struct utask *u = new_task(&f, timer_body);
	sched_enqueue_new(&f.g, &u->task);
	wait_for(&f.exited, 1);
	assert_int_equal(atomic_load(&u->fired), 1);
	assert_int_equal(atomic_load(&u->steps), 1);
	assert_true(sched_stop(&f.g, NULL));
	free_task(u);
}

struct counted {
	struct sched_timer t;
	atomic_int *fired;
	int order, *log, *nlog;
	pthread_mutex_t *loglock;
};

static void fire_counted(struct sched_timer *t)
{
	struct counted *c = (struct counted *)t;
	pthread_mutex_lock(c->loglock);
	c->log[(*c->nlog)++] = c->order;
	pthread_mutex_unlock(c->loglock);
	atomic_fetch_add(c->fired, 1);
}

#define NT 64
static struct counted ctimers[NT];
static uint64_t ids[NT];
static atomic_int cfired;
static int clog_[NT], nclog;
static pthread_mutex_t clock_ = PTHREAD_MUTEX_INITIALIZER;

static void many_timers_body(struct utask *u)
{
	uint64_t now = sched_now_ns();
	/* Deadlines in reverse order of adding; every other one cancelled by
	 * id before it can fire. */
	for (int i = 0; i < NT; i++) {
		struct counted *c = &ctimers[i];
		c->t.fire = fire_counted;
		c->t.deadline = now + 20000000 - (uint64_t)i * 100000;
		c->fired = &cfired;
		c->order = i;
		c->log = clog_;
		c->nlog = &nclog;
		c->loglock = &clock_;
		assert_int_equal(sched_timer_add(&c->t, &ids[i]), 0);
		assert_true(ids[i] >> 63);
	}
	for (int i = 0; i < NT; i += 2)
		assert_ptr_equal(sched_timer_take(&u->f->g, ids[i]), &ctimers[i].t);
	/* Taking twice, or an id that never existed, finds nothing. */
	assert_null(sched_timer_take(&u->f->g, ids[0]));
	assert_null(sched_timer_take(&u->f->g, 12345));
	assert_null(sched_timer_take(&u->f->g, 1ull << 63 | 999));
}

static void timers_fire_in_deadline_order_and_cancel_by_id(void **state)
{
	struct fixture f;
	start_group(&f, 2);
	struct utask *u = new_task(&f, many_timers_body);
	sched_enqueue_new(&f.g, &u->task);
	wait_for(&f.exited, 1);
	wait_for(&cfired, NT / 2);
	usleep(30000);
	assert_int_equal(atomic_load(&cfired), NT / 2);   /* cancelled ones never fire */
	for (int i = 0; i < nclog; i++)
		assert_int_equal(clog_[i] % 2, 1);
	for (int i = 1; i < nclog; i++)
		assert_true(clog_[i] < clog_[i - 1]);      /* earliest deadline first */
	/* A fired timer can no longer be taken. */
	assert_null(sched_timer_take(&f.g, ids[1]));
	assert_true(sched_stop(&f.g, NULL));
	free_task(u);
}

static atomic_int dropped;
static void count_drop(struct sched_timer *t)
{
	(void)t;
	atomic_fetch_add(&dropped, 1);
}

static struct sched_timer far_timer, cancelled_timer;
static void never_fires(struct sched_timer *t)
{
	(void)t;
	fail_msg("a cancelled or far timer fired");
}

static void far_body(struct utask *u)
{
	far_timer.fire = never_fires;
	far_timer.deadline = sched_now_ns() + 3600ull * 1000000000;
	uint64_t far_id;
	assert_int_equal(sched_timer_add(&far_timer, &far_id), 0);
	assert_true(far_id >> 63);
	cancelled_timer.fire = never_fires;
	cancelled_timer.deadline = sched_now_ns() + 1000000;
	assert_int_equal(sched_timer_add(&cancelled_timer, NULL), 0);
	assert_true(sched_timer_cancel(&cancelled_timer));
	assert_false(sched_timer_cancel(&cancelled_timer));   /* not queued any more */
	(void)u;
}

static void stop_hands_back_queued_timers(void **state)
{
	struct fixture f;
	start_group(&f, 1);
	struct utask *u = new_task(&f, far_body);
	sched_enqueue_new(&f.g, &u->task);
	wait_for(&f.exited, 1);
	usleep(5000);
	assert_true(sched_stop(&f.g, count_drop));
	assert_int_equal(atomic_load(&dropped), 1);
	free_task(u);
}

/* ---- the wheel alone, on a simulated clock ---- */

#define WT 20000
struct wt {
	struct sched_timer t;
	int fired;
	bool cancelled;
};
static struct wt wts[WT];
static uint64_t wnow;

static void wt_fire(struct sched_timer *t)
{
	struct wt *x = (struct wt *)t;
	x->fired++;
	if (x->t.deadline > wnow)
		fail_msg("a timer fired %llu ns early", (unsigned long long)(x->t.deadline - wnow));
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Random deadlines from now to 100 hours out (past the wheel's 78 h),
 * random cancels, time moving in random steps from 1 ns to hours: every
 * timer fires once, never early, and by the time the clock passes its
 * deadline; cancelled ones never; the wheel's `next` never passes the
 * earliest deadline left. */
static void the_wheel_fires_everything_on_time(void **state)
{
	static struct timer_wheel w;
	static const struct sched *owner_marker = (const struct sched *)1;
	uint64_t seed = 88172645463325252ull, start = 1000000000000ull;
	wnow = start;
	timer_wheel_init_at(&w, wnow);
	for (int i = 0; i < WT; i++) {
		memset(&wts[i], 0, sizeof(wts[i]));
		uint64_t r = rnd(&seed);
		uint64_t span = (r & 3) == 0 ? 1000000ull : (r & 3) == 1 ? 10000000000ull
		              : (r & 3) == 2 ? 3600000000000ull : 360000000000000ull;
		wts[i].t.deadline = wnow + rnd(&seed) % span;
		wts[i].t.fire = wt_fire;
		timer_wheel_add_raw(&w, &wts[i].t, (struct sched *)owner_marker);
	}
	for (int i = 0; i < WT; i += 7)
		wts[i].cancelled = timer_wheel_remove_raw(&w, &wts[i].t);
	uint64_t end = start + 400000000000000ull;
	while (wnow < end) {
		uint64_t r = rnd(&seed) % 4;
		uint64_t step = r == 0 ? rnd(&seed) % 1000 : r == 1 ? rnd(&seed) % 5000000
		              : r == 2 ? rnd(&seed) % 20000000000ull : rnd(&seed) % 20000000000000ull;
		wnow += step + 1;
		while (timer_wheel_fire_at(&w, wnow, 64) > 0)
			;
		uint64_t least = UINT64_MAX;
		for (int i = 0; i < WT; i++) {
			if (wts[i].cancelled || wts[i].fired)
				continue;
			if (wts[i].t.deadline <= wnow)
				fail_msg("timer %d due at %llu not fired at %llu", i,
				         (unsigned long long)wts[i].t.deadline, (unsigned long long)wnow);
			if (wts[i].t.deadline < least)
				least = wts[i].t.deadline;
		}
		assert_true(atomic_load(&w.next) <= least);
	}
	for (int i = 0; i < WT; i++)
		assert_int_equal(wts[i].fired, wts[i].cancelled ? 0 : 1);
	assert_int_equal(w.n, 0);
	timer_wheel_destroy(&w, NULL);
}

/* ---- hibernation ---- */

static atomic_int frozen_seen, thawed_seen, hib_round;
static void on_freeze(struct task *t, void *ctx) { (void)t; (void)ctx; atomic_fetch_add(&frozen_seen, 1); }
static void on_thaw(struct task *t, void *ctx) { (void)t; (void)ctx; atomic_fetch_add(&thawed_seen, 1); }

static void hibernating_body(struct utask *u)
{
	/* A pattern on the stack, deeper than a page, must survive. */
	volatile unsigned char pattern[6000];
	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = (unsigned char)(i * 7 + 3);
	for (int round = 1; round <= 3; round++) {
		atomic_store(&hib_round, round);
		sched_hibernate(&u->task);
		for (size_t i = 0; i < sizeof(pattern); i++)
			if (pattern[i] != (unsigned char)(i * 7 + 3))
				atomic_store(&u->steps, -1);
	}
	if (atomic_load(&u->steps) == 0)
		atomic_store(&u->steps, 1);
}

static size_t resident_pages(void *lo, size_t len)
{
	unsigned char vec[64];
	size_t pages = len / 4096;
	assert_true(pages <= sizeof(vec));
	assert_int_equal(mincore(lo, len, vec), 0);
	size_t n = 0;
	for (size_t i = 0; i < pages; i++)
		n += vec[i] & 1;
	return n;
}

/* A hibernated task's stack pages go back to the kernel; its stack comes
 * back intact when it is woken; freeze and thaw run once each time. */
/* A freed stack no spawn takes for a whole trim interval gives its pages
 * back at the second trim (the first notes the free list's low point);
 * one taken again meanwhile stays warm. */
static void the_stack_pool_gives_idle_stacks_back(void **state)
{
	struct stack_pool pool;
	stack_pool_init(&pool, 256 * 1024);
	char *a = stack_alloc(&pool), *b = stack_alloc(&pool);
	assert_non_null(a);
	assert_non_null(b);
	size_t top = 256 * 1024 - 4096;
	a[top] = 1;
	b[top] = 1;
	stack_free(&pool, a);
	stack_free(&pool, b);
	assert_int_equal(stack_pool_trim(&pool), 0);     /* noted */
	char *again = stack_alloc(&pool);                /* b: LIFO, warm */
	assert_ptr_equal(again, b);
	assert_int_equal(stack_pool_trim(&pool), 1);     /* a was idle: dropped */
	unsigned char v = 1;
	assert_int_equal(mincore(a + top, 4096, &v), 0);
	assert_false(v & 1);
	assert_int_equal(mincore(b + top, 4096, &v), 0);
	assert_true(v & 1);
	assert_ptr_equal(stack_alloc(&pool), a);         /* still there, empty */
	assert_int_equal(a[top], 0);
	stack_free(&pool, a);
	stack_free(&pool, again);
	stack_pool_destroy(&pool);
}

static void hibernation_drops_and_restores_the_stack(void **state)
{
	struct fixture f;
	memset(&f, 0, sizeof(f));
	struct sched_ops ops = { .exited = on_exit_cb, .io_ready = on_io,
	                         .freeze = on_freeze, .thaw = on_thaw, .ctx = &f };
	char err[128];
	assert_int_equal(sched_start(&f.g, 2, &ops, err, sizeof(err)), 0);
	struct utask *u = new_task(&f, hibernating_body);
	sched_enqueue_new(&f.g, &u->task);
	for (int round = 1; round <= 3; round++) {
		while (atomic_load(&hib_round) < round || !sched_task_hibernated(&u->task) ||
		       atomic_load(&frozen_seen) < round)
			usleep(100);
		assert_int_equal(atomic_load(&f.g.hibernated), 1);
		assert_int_equal(resident_pages(u->stack, STACK), 0);
		assert_true(u->task.hib.len > 6000 && u->task.hib.len < 8192);
		sched_wake(&f.g, &u->task);
	}
	wait_for(&f.exited, 1);
	assert_int_equal(atomic_load(&u->steps), 1);      /* the pattern survived */
	assert_int_equal(atomic_load(&frozen_seen), 3);
	assert_int_equal(atomic_load(&thawed_seen), 3);
	assert_int_equal(atomic_load(&f.g.hibernated), 0);
	assert_true(sched_stop(&f.g, NULL));
	free_task(u);
}

static atomic_int auto_parked;
static void auto_body(struct utask *u)
{
	atomic_store(&auto_parked, 1);
	sched_switch_out(&u->task, TASK_PARK);
	atomic_store(&u->steps, 1);
}

/* With a threshold, a task that waits longer hibernates by itself. */
static void waiting_tasks_hibernate_after_the_threshold(void **state)
{
	struct fixture f;
	start_group(&f, 1);
	sched_set_hibernation(&f.g, 20 * 1000000ull);
	struct utask *u = new_task(&f, auto_body);
	sched_enqueue_new(&f.g, &u->task);
	for (int i = 0; i < 5000 && !sched_task_hibernated(&u->task); i++) {
		sched_tick(&f.g);     /* the coarse clock moves with ticks */
		usleep(1000);
	}
	assert_true(sched_task_hibernated(&u->task));
	assert_int_equal(resident_pages(u->stack, STACK), 0);
	sched_wake(&f.g, &u->task);
	wait_for(&f.exited, 1);
	assert_int_equal(atomic_load(&u->steps), 1);
	assert_true(sched_stop(&f.g, NULL));
	free_task(u);
}

static void bad_scheduler_counts_are_refused(void **state)
{
	struct sched_group g;
	struct sched_ops ops = { .exited = on_exit_cb, .io_ready = on_io };
	char err[128];
	assert_int_equal(sched_start(&g, 0, &ops, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "schedulers"));
	assert_int_equal(sched_start(&g, SCHED_MAX + 1, &ops, err, sizeof(err)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tasks_run_yield_and_exit),
		cmocka_unit_test(counters_add_up_and_include_the_spell_in_progress),
		cmocka_unit_test(the_stack_pool_gives_idle_stacks_back),
		cmocka_unit_test(wake_ups_are_never_lost),
		cmocka_unit_test(a_task_that_ended_is_not_woken),
		cmocka_unit_test(a_timer_wakes_a_parked_task),
		cmocka_unit_test(timers_fire_in_deadline_order_and_cancel_by_id),
		cmocka_unit_test(stop_hands_back_queued_timers),
		cmocka_unit_test(the_wheel_fires_everything_on_time),
		cmocka_unit_test(hibernation_drops_and_restores_the_stack),
		cmocka_unit_test(waiting_tasks_hibernate_after_the_threshold),
		cmocka_unit_test(bad_scheduler_counts_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
