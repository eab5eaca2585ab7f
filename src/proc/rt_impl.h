/*
 * rt_impl.h — the runtime's internals shared by the files of src/proc/ and
 * src/sched/sched.c. Not for host functions (they use proc.h).
 */
#ifndef WISP_RT_IMPL_H
#define WISP_RT_IMPL_H

#include <pthread.h>
#include <stdatomic.h>

#include "io/reactor.h"
#include "proc.h"

/* ---- timers (timer.c): a binary heap per scheduler, owner-thread only ---- */

enum timer_kind { T_WAKE, T_SEND };
enum timer_state { TS_PENDING, TS_FIRED, TS_CANCELLED };

struct timer {
	uint64_t deadline;        /* monotonic ns */
	uint64_t id;              /* T_SEND: for cancel; 0 for T_WAKE */
	uint8_t kind;
	_Atomic uint8_t state;
	struct proc *proc;        /* T_WAKE: whom to wake ... */
	uint64_t pid;             /* ... if still this incarnation (T_SEND: to) */
	struct msg *msg;          /* T_SEND: the message (msg->to set) */
	bool embedded;            /* a process's own wake timer: never freed */
};

struct timer_heap {
	struct timer **h;
	size_t n, cap;
};

uint64_t rt_now_ns(void);
int timer_heap_push(struct timer_heap *th, struct timer *t);
/* Earliest deadline, or UINT64_MAX if empty. */
uint64_t timer_heap_next(const struct timer_heap *th);
struct timer *timer_heap_pop(struct timer_heap *th);

/* ---- the process table (ptable.c) ---- */

#define PT_CHUNK_BITS 16
#define PT_CHUNK (1u << PT_CHUNK_BITS)
#define PT_MAX_CHUNKS 4096         /* 2^28 processes */

struct ptable {
	_Atomic(struct proc **) chunks[PT_MAX_CHUNKS];
	pthread_mutex_t lock;          /* guards free list and growth */
	uint32_t *free;                /* free slot indices (LIFO: warm reuse) */
	uint32_t nfree, capfree;
	uint32_t next;                 /* next never-used index */
};

int ptable_init(struct ptable *t);
void ptable_destroy(struct ptable *t);
/* A free slot's proc (zeroed bookkeeping, gen bumped, pid unpublished), or
 * NULL on exhaustion. */
struct proc *ptable_alloc(struct ptable *t);
void ptable_release(struct ptable *t, struct proc *p);
/* The proc struct a pid's index refers to (maybe another incarnation:
 * compare p->pid), or NULL. */
struct proc *ptable_get(struct ptable *t, uint64_t pid);
/* Calls fn on every proc ever allocated. */
void ptable_each(struct ptable *t, void (*fn)(struct proc *p, void *arg), void *arg);

/* ---- the registry (registry.c) ---- */

struct reg_entry {
	char *name;
	uint32_t len;
	uint64_t pid;
};

struct registry {
	pthread_mutex_t lock;
	struct reg_entry *slots;       /* open addressing, name hash */
	uint32_t cap, count, tombs;
};

int registry_init(struct registry *r);
void registry_destroy(struct registry *r);
/* The exit path: mark p exiting (no new names) and remove its names. */
void registry_exit(struct registry *r, struct proc *p, uint64_t pid);
/* Remove every name of pid (called by its exit path). */
void registry_forget(struct registry *r, uint64_t pid);
/* Bind name to p if p is still `pid` and not exiting (WISP_* codes). */
int registry_put(struct registry *r, const char *name, uint32_t len,
                 struct proc *p, uint64_t pid);
int registry_del(struct registry *r, const char *name, uint32_t len, uint64_t *pid);
int registry_get(struct registry *r, const char *name, uint32_t len, uint64_t *pid);

/* ---- schedulers (sched.c) ---- */

struct sched {
	struct rt *rt;
	int id;
	pthread_t thread;
	struct fiber ctx;              /* the scheduler's own context */
	struct proc *current;
	pthread_mutex_t qlock;         /* local run queue */
	struct proc *qhead, *qtail;
	atomic_size_t qlen;
	struct timer_heap timers;      /* owner thread only */
	uint64_t rng;
	/* Preemption by tick (sched_tick): the running instance's vmctx, under
	 * cur_lock, so the ticker never touches a freed instance. */
	atomic_flag cur_lock;
	struct wisp_vmctx *cur_vmctx;
	uint64_t tick_dispatches, tick_seen;   /* under cur_lock */
	uint64_t dispatches;                   /* owner thread only */
};

struct rt {
	struct rt_config cfg;
	int nsched;
	struct sched *scheds;
	pthread_mutex_t glock;         /* global queue + sleeping */
	pthread_cond_t gcond;
	struct proc *ghead, *gtail;    /* under glock */
	atomic_size_t glen;            /* its length, readable without glock */
	atomic_int sleepers;
	atomic_bool stopping;
	atomic_size_t live;            /* processes not yet reaped */
	struct reactor reactor;        /* fd readiness, one for the runtime */
	atomic_int poller;             /* a scheduler is blocked in reactor_poll */
	atomic_int io_waiting;         /* processes waiting for an fd */
	pthread_mutex_t blocking_lock; /* creating the blocking pool */
	struct blocking_pool *blocking;/* blocking.c, started on first use */
	atomic_uint_fast64_t next_ref; /* monitor/request refs, timer ids */

	struct stack_pool stacks;
	struct ptable ptable;
	struct registry registry;
	engine_module *mod;
	struct engine_limits limits;

	pthread_mutex_t timer_lock;    /* timer id -> timer, for cancel */
	struct timer **timer_ids;      /* open addressing by id */
	uint32_t timer_cap, timer_count;

	/* the main process's end */
	pthread_mutex_t done_lock;
	pthread_cond_t done_cond;
	bool done;
	struct engine_result main_res;
	struct reason main_reason;
};

int sched_start(struct rt *rt, char *err, size_t errlen);
/* Stop every scheduler after its current slice and free them; false if a
 * thread did not stop within the grace period (then nothing is freed). */
bool sched_stop(struct rt *rt);
/* Make p runnable (from a spawn or a wake) on this thread's scheduler if it
 * is one, else the global queue; wakes a sleeping scheduler. */
void sched_enqueue(struct rt *rt, struct proc *p);
/* A just-spawned p: to the front of this thread's queue (runs next). */
void sched_enqueue_spawned(struct rt *rt, struct proc *p);
/* Wake p if it waits (any thread). */
void sched_wake(struct proc *p);
/* On p's fiber: switch to the scheduler for reason `why`; returns when p
 * runs again (not for Y_EXIT). */
void sched_switch_out(struct proc *p, enum yield_why why);
/* Preempt every process that has run since the previous tick (any
 * thread; the runtime calls it every TICK_NS). */
void sched_tick(struct rt *rt);
/* The running process has an instance now: the tick may preempt it. */
void sched_publish_instance(struct sched *s, struct wisp_vmctx *v);
/* The running process's instance is about to be freed (on its fiber). */
void sched_forget_instance(struct sched *s);
#define TICK_NS 1000000u

/* The scheduler of this thread, or NULL. */
struct sched *sched_self(void);
/* A process is about to wait for an fd: make sure a thread polls. */
void sched_need_poller(struct rt *rt);
/* Add a timer on this thread's scheduler (on a process fiber). */
int sched_add_timer(struct timer *t);

/* A reactor event (token = slot << 32 | wait number): wake that process if
 * it still waits for it. */
void proc_io_ready(uint64_t token, void *rt);

/* ---- processes (proc.c), called by sched.c ---- */

/* First code on a new process's fiber. */
void proc_fiber_main(void *arg);
/* Free what a process holds besides its instance: capabilities, link and
 * monitor sets, fiber and stack (reap and runtime teardown share it). */
void proc_release(struct proc *p);
/* After the fiber switched out for the last time: free stack, slot. */
void proc_reap(struct proc *p);
/* Fire a timer popped from a heap (scheduler thread). */
void proc_fire_timer(struct rt *rt, struct timer *t);

uint64_t rt_new_ref(struct rt *rt);
/* Park until woken (spurious wake-ups allowed). */
void proc_park(struct proc *self);
/* Stop the blocking pool's threads; false if one did not stop in time. */
bool blocking_pool_stop(struct rt *rt);

#endif
