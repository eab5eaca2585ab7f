/*
 * sched.h — M:N scheduling of tasks over one thread per core, their timers,
 * and the reactor they wait on.
 *
 * The scheduler knows tasks, not processes: a task is a fiber with a
 * scheduling state, embedded in whatever its user schedules (src/proc embeds
 * one in every process and finds the process with container_of). What a
 * task's end or an I/O event means is told to the scheduler by a small table
 * of callbacks (struct sched_ops), so nothing here calls upward.
 *
 * Threads: every function may be called from any thread unless it says
 * "on a scheduler thread" (a task's fiber, or the scheduler loop) — those
 * use the calling thread's scheduler.
 */
#ifndef WISP_SCHED_H
#define WISP_SCHED_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/vmctx.h"
#include "io/reactor.h"
#include "sched/fiber.h"

#define SCHED_MAX 1024            /* scheduler threads in one group */
#define SCHED_TICK_NS 1000000u    /* the preemption tick (sched_tick) */

enum task_state {
	TASK_FREE, TASK_RUNNABLE, TASK_RUNNING, TASK_WAITING,
	TASK_FREEZING,   /* waiting, and being hibernated by a scheduler thread */
};
enum task_yield { TASK_YIELD, TASK_PARK, TASK_EXIT, TASK_CALL, TASK_HIBERNATE };

struct sched;

/* A schedulable unit. The embedding user fills `fiber` (fiber_init) and
 * hands the task to sched_enqueue*; the rest is the scheduler's. */
struct task {
	atomic_flag lock;             /* guards state and pending_wake */
	uint8_t state;                /* enum task_state, under lock */
	bool pending_wake;            /* woken while not waiting, under lock */
	uint8_t why;                  /* enum task_yield, set before switching out */
	bool no_hibernate;            /* its stack is in use while it waits (set
	                                 by its user around such a wait) */
	struct task *rq_next;         /* run queue link */
	struct sched *sched;          /* the scheduler running it / that last did */
	struct wisp_vmctx *vmctx;     /* instance the tick may preempt, or NULL */
	union {
		struct {                  /* TASK_CALL, while it runs */
			void (*fn)(void *);
			void *arg;
		} call;
		struct {                  /* hibernated: its live stack, copied out */
			unsigned char *copy;  /* NULL: not hibernated */
			size_t len;
		} hib;
	};
	uint64_t cpu_ticks;           /* time it ran, in sched_ticks() units */
	/* Automatic hibernation: when it last parked (the group's coarse
	 * clock), and the scheduler whose idle list holds it (or NULL). */
	_Atomic uint64_t parked_at;
	_Atomic(struct sched *) listed_on;
	struct task *idle_next;       /* that list, owner thread only */
	struct fiber fiber;
};

/* A timer: fire(t) runs on some thread (usually the scheduler the timer was
 * added on) once the deadline has passed, unless it was cancelled first.
 * Exactly one of "fire runs" and "a cancel returns it" happens. */
struct sched_timer {
	uint64_t deadline;            /* monotonic ns */
	void (*fire)(struct sched_timer *t);
	_Atomic(struct sched *) owner;/* the wheel it is queued in; NULL if none */
	struct sched_timer *next, **pprev;   /* its wheel slot (owner's lock) */
	uint32_t where;               /* level << 16 | slot, for the bitmap */
	uint64_t id;                  /* nonzero: found by sched_timer_take */
	struct sched_timer *hnext;    /* id map chain (owner's lock) */
};

/* What the scheduler tells its user. */
struct sched_ops {
	/* t's fiber has switched out for the last time (TASK_EXIT): its stack
	 * may be freed now. On the scheduler thread. */
	void (*exited)(struct task *t, void *ctx);
	/* A reactor event with the token the waiter armed. */
	void (*io_ready)(uint64_t token, void *ctx);
	/* Hibernation of a waiting task (may be NULL): freeze gives back what
	 * the user can (its memory), thaw restores it before the task runs
	 * again. On a scheduler thread, the task not running. */
	void (*freeze)(struct task *t, void *ctx);
	void (*thaw)(struct task *t, void *ctx);
	void *ctx;
};

/* What a scheduler thread counts about itself that is not under cur_lock
 * (sched_read_stats): written only by its own thread, as a relaxed load
 * and store (plain moves: no locked instruction, no line shared with
 * another writer), read from any thread. */
struct sched_counters {
	_Atomic uint64_t io_events;       /* reactor events it handled */
	_Atomic uint64_t steals;          /* tasks taken from another's queue */
	/* The most each time was reported as (readers': a counter never goes
	 * back, though the tick-to-ns rate is re-measured at every read). */
	_Atomic uint64_t busy_shown, idle_shown;
};

/* One scheduler thread's state (sched.c); opaque to users. */
#define WHEEL_LEVELS 4
#define WHEEL_SLOTS 4096          /* level 0 */
#define WHEEL_UPPER_SLOTS 256     /* levels 1.. */

struct timer_wheel {
	pthread_mutex_t lock;         /* the wheel and the id map */
	uint64_t cur;                 /* the next tick to process */
	struct sched_timer *l0[WHEEL_SLOTS];
	struct sched_timer *upper[WHEEL_LEVELS - 1][WHEEL_UPPER_SLOTS];
	uint64_t occ0[WHEEL_SLOTS / 64];
	uint64_t occ_upper[WHEEL_LEVELS - 1][WHEEL_UPPER_SLOTS / 64];
	size_t n;                     /* timers queued */
	/* A lower bound of the earliest deadline (UINT64_MAX: none), read
	 * without the lock to decide whether to look at all. */
	_Atomic uint64_t next;
	struct sched_timer **ids;     /* id -> timer, chained; cap is a power of 2 */
	size_t nids, capids;
	uint64_t next_seq;            /* id sequence (under lock) */
};

struct sched {
	struct sched_group *g;
	int id;
	pthread_t thread;
	struct fiber ctx;             /* the scheduler's own context */
	struct task *current;
	pthread_mutex_t qlock;        /* local run queue */
	struct task *qhead, *qtail;
	atomic_size_t qlen;
	struct timer_wheel timers;
	uint64_t rng;
	/* Preemption by tick: the running task's vmctx, under cur_lock, so the
	 * ticker never touches a freed instance. */
	atomic_flag cur_lock;
	struct wisp_vmctx *cur_vmctx;
	bool running;                          /* a task is on it: under cur_lock */
	uint64_t tick_dispatches, tick_seen;   /* under cur_lock */
	uint64_t dispatches;                   /* owner thread only */
	uint64_t dispatch_ticks;               /* when `current` was dispatched
	                                          (under cur_lock, with running) */
	/* Statistics, under cur_lock (taken at every dispatch anyway): time
	 * it ran tasks (ticks), and waited for work (ns), the wait in
	 * progress since idle_since (0: none). */
	uint64_t busy_ticks, idle_ns, idle_since;
	/* Tasks parked here, oldest first, for automatic hibernation (owner
	 * thread only). */
	struct task *idle_head, *idle_tail;
	/* Tasks a reactor poll on this thread made runnable, queued here
	 * until the poll is over and then pushed onto the run queue at once
	 * (owner thread only; `polling` while the batch is open). */
	bool polling;
	struct task *batch_head, *batch_tail;
	size_t batch_len;
	/* TASK_CALL's request (owner thread: set by the task, run here). */
	void (*call_fn)(void *);
	void *call_arg;
	/* On a cache line of its own (the stealers and the tick write the
	 * fields above). */
	alignas(64) struct sched_counters counters;
};

struct sched_group {
	struct sched_ops ops;
	int nsched;
	struct sched *scheds;
	pthread_mutex_t glock;        /* global queue + sleeping */
	pthread_cond_t gcond;
	struct task *ghead, *gtail;   /* under glock */
	atomic_size_t glen;           /* its length, readable without glock */
	atomic_int sleepers;
	atomic_bool stopping;
	struct reactor reactor;       /* fd readiness for every task */
	atomic_int poller;            /* a scheduler is blocked in reactor_poll */
	atomic_int io_waiting;        /* tasks waiting for an fd */
	_Atomic uint64_t polled_at;   /* coarse_ns when a reactor poll last ended */
	uint64_t start_ticks, start_ns;  /* sched_ticks_ns's reference */
	/* Hibernate tasks waiting longer than this (0: never automatically). */
	uint64_t hibernate_after_ns;
	_Atomic uint64_t coarse_ns;      /* now, as of the last tick (sched_tick) */
	atomic_size_t hibernated;        /* tasks hibernated right now */
};

/* One scheduler's statistics, as of now (any thread; each figure is read
 * on its own, so they may be a dispatch apart). */
struct sched_stats {
	uint64_t busy_ns;             /* time it ran tasks */
	uint64_t idle_ns;             /* time it waited for work */
	uint64_t dispatches;
	uint64_t io_events;
	uint64_t steals;
	uint64_t queued;              /* tasks in its run queue now */
};
void sched_read_stats(struct sched_group *g, int i, struct sched_stats *out);
/* Tasks in the global queue now, and waiting for an fd. */
uint64_t sched_global_queued(struct sched_group *g);
uint64_t sched_io_waiting(struct sched_group *g);
/* The time since the group started, in ns. */
uint64_t sched_uptime_ns(const struct sched_group *g);

/* Monotonic time in ns. */
uint64_t sched_now_ns(void);
/* The CPU time the task running on this thread has had, in ns (the
 * current slice included). Time is counted per dispatch with the CPU's
 * cycle counter (x86-64; one read per dispatch) or the monotonic clock. */
uint64_t sched_task_cpu_ns(const struct task *t);

/* Set up the group (reactor included) and start nsched threads. 0, or a
 * negative errno with a message in err (nothing left running). */
int sched_start(struct sched_group *g, int nsched, const struct sched_ops *ops,
                char *err, size_t errlen);
/* Hibernate tasks that wait longer than ns (0: never); before tasks run. */
void sched_set_hibernation(struct sched_group *g, uint64_t ns);
/* Stop every scheduler after its current slice, then free the group's
 * state; timers still queued are returned through drop(t) (may be NULL).
 * False if a thread did not stop within the grace period (nothing freed:
 * the process should exit). */
bool sched_stop(struct sched_group *g, void (*drop)(struct sched_timer *t));

/* Make t runnable: on this thread's scheduler if it is one of g's (no
 * wake-up: see sched.c), else the global queue. */
void sched_enqueue(struct sched_group *g, struct task *t);
/* A new task: to the front of this thread's queue (it runs next). */
void sched_enqueue_new(struct sched_group *g, struct task *t);
/* Wake t if it waits; remembered if it is running or runnable. */
void sched_wake(struct sched_group *g, struct task *t);
/* On t's fiber: switch to the scheduler for `why`; returns when t runs
 * again (never for TASK_EXIT). */
void sched_switch_out(struct task *t, enum task_yield why);

/* On t's fiber: run fn(arg) on the scheduler thread's own stack (deep
 * work, such as reading DWARF, that a small fiber stack cannot hold), then
 * continue; t stays running meanwhile. Called outside a scheduler, it just
 * calls fn. */
void sched_call_on_thread_stack(void (*fn)(void *), void *arg);

/* On t's fiber: park (as TASK_PARK) and hibernate at once: the live part
 * of its stack is copied out and the stack's pages go back to the kernel,
 * and the user's freeze() runs; both are restored before it runs again. */
void sched_hibernate(struct task *t);
/* Whether t is hibernated now (from any thread; it may change at once:
 * for statistics and tests). */
bool sched_task_hibernated(const struct task *t);
/* Free what t's hibernation holds (a task discarded without running). */
void sched_task_forget(struct task *t);

/* Looking at a task from another thread (inspection: wisp ps, wisp
 * inspect), without stopping it or anything else. */
struct sched_task_view {
	enum task_state state;
	/* Its stack is copied out (hibernated, state TASK_WAITING), or being
	 * copied in (TASK_RUNNABLE) or out (TASK_FREEZING). */
	bool hibernated;
	/* The stack may be read (sched_task_frames): not running, not being
	 * frozen or thawed. */
	bool stack_readable;
	size_t stack_used;   /* bytes of its stack in use (0 unless readable) */
	uint64_t cpu_ns;     /* CPU time it has run (0 while it runs) */
};
/* Run fn(t, view, arg) with t's spinlock held: keep fn short (a waker of
 * t spins meanwhile) and take no lock in it. During fn a task whose
 * view->state is TASK_RUNNABLE, TASK_WAITING or TASK_FREEZING is not
 * running on any thread and stays so, and what its fiber wrote before it
 * last switched out is visible: the fields only it writes may be read.
 * TASK_FREE: the task ended (or has not been enqueued yet). */
void sched_task_peek(struct task *t,
                     void (*fn)(struct task *t, const struct sched_task_view *v, void *arg),
                     void *arg);
/* In sched_task_peek's fn, for a view with stack_readable: the return
 * addresses on t's stack by its frame-pointer chain, innermost first
 * (the switch's caller first), each passed to each(ret, arg) until it
 * returns false, the chain leaves the stack or stops going up, or max
 * frames were seen. Returns how many were passed. Only as good as the
 * frame pointers: wisp's own code keeps them (-fno-omit-frame-pointer);
 * code that does not ends the walk with a wrong or no address. */
size_t sched_task_frames(const struct task *t, size_t max, bool (*each)(uintptr_t ret, void *arg),
                         void *arg);

/* The running task now has an instance the tick may preempt (or NULL: it
 * is about to free it). On t's fiber. */
void sched_publish_vmctx(struct task *t, struct wisp_vmctx *v);
/* Preempt every task that has run a whole tick; fire the due timers of a
 * scheduler that has not dispatched for a tick (its thread is blocked in a
 * host call). The caller ticks every SCHED_TICK_NS. */
void sched_tick(struct sched_group *g);

/* The scheduler of this thread, or NULL; the task it runs. */
struct sched *sched_self(void);
struct task *sched_current(void);

/* A task is about to wait for an fd (after reactor_arm or
 * reactor_expect): make sure a
 * thread polls. sched_io_done when it stops waiting. */
void sched_io_wait(struct sched_group *g);
void sched_io_done(struct sched_group *g);

/* Timers. Add on a scheduler thread: queued on its heap. A non-NULL id
 * gives the timer an id (nonzero, bit 63 set) that sched_timer_take finds,
 * stored in *id before the timer can fire: once queued, t may fire and be
 * freed on another thread at once, so read nothing of it after. 0, or
 * -ENOMEM. */
int sched_timer_add(struct sched_timer *t, uint64_t *id);
/* Remove the timer with this id if it has not fired: the caller owns it
 * now. NULL if it fired (or is firing), or never existed. */
struct sched_timer *sched_timer_take(struct sched_group *g, uint64_t id);
/* Remove t (queued by its owner, with or without id) if it has not fired;
 * true if removed. */
bool sched_timer_cancel(struct sched_timer *t);

#endif
