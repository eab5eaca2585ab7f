/*
 * proc_impl.h — the runtime's internals shared by the files of src/proc.
 * Not for the host functions (they use proc.h).
 */
#ifndef WISP_PROC_IMPL_H
#define WISP_PROC_IMPL_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>

#include "io/reactor.h"
#include "mailbox.h"
#include "proc.h"
#include "sched/sched.h"
#include "sched/stack.h"

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
	size_t extra;                  /* bytes after each struct proc (host) */
};

/* extra: bytes of host state allocated after each struct proc. */
int ptable_init(struct ptable *t, size_t extra);
void ptable_destroy(struct ptable *t);
/* A free slot's proc with its generation bumped and pid unpublished, or
 * NULL when the table is full. */
struct proc *ptable_alloc(struct ptable *t);
/* The slot may be reused; a slot whose generation is exhausted never is. */
void ptable_release(struct ptable *t, struct proc *p);
/* The proc struct a pid's index refers to (maybe another incarnation:
 * compare p->pid), or NULL. */
struct proc *ptable_get(struct ptable *t, uint64_t pid);
/* The proc struct of a slot index, or NULL. */
struct proc *ptable_at(struct ptable *t, uint32_t index);
/* Slots ever allocated (each a struct proc and its host state). */
size_t ptable_slots(struct ptable *t);
/* Calls fn on every proc ever allocated. */
void ptable_each(struct ptable *t, void (*fn)(struct proc *p, void *arg), void *arg);

/* ---- the registry (registry.c) ---- */

struct reg_name;

struct registry {
	pthread_mutex_t lock;          /* the table and every process's names */
	struct reg_name **buckets;
	size_t cap, count;
};

int registry_init(struct registry *r);
void registry_destroy(struct registry *r);
/* Bind name to p if p is still `pid` and not exiting: 0, -EEXIST, -ESRCH,
 * -ENOMEM. */
int registry_put(struct registry *r, const char *name, uint32_t len,
                 struct proc *p, uint64_t pid);
/* 0 or -ENOENT. */
int registry_del(struct registry *r, const char *name, uint32_t len);
/* p's names, each followed by a NUL, into buf (at most cap bytes); the
 * bytes all of them need. */
size_t registry_names_of(struct registry *r, struct proc *p, char *buf, size_t cap);
/* The same from another thread (inspection): the names p holds as pid
 * (none if p is no longer pid), and how many in *count. */
size_t registry_names_of_pid(struct registry *r, struct proc *p, uint64_t pid, char *buf,
                             size_t cap, uint32_t *count);
int registry_get(struct registry *r, const char *name, uint32_t len, uint64_t *pid);
/* The exit path: mark p exiting (no new names) and remove its names. */
void registry_exit(struct registry *r, struct proc *p);
size_t registry_count(struct registry *r);

/* ---- the runtime (runtime.c) ---- */

struct blocking_pool;

/* An entry of the module table (modules.c): one module, by hash, with its
 * builds; its own allocation, so a process can point at it. */
struct rt_mod {
	/* Processes running it, and holds (rt_module_hold): an entry that is
	 * a version no longer current is unloaded when this reaches 0. (First,
	 * on a cache line of its own: spawns and exits write it.) */
	alignas(64) _Atomic long users;
	unsigned char hash[RT_HASH_BYTES];
	engine_module *mod;            /* the build loaded first */
	engine_module *better;         /* its optimized build, or NULL */
	uint32_t vsn;                  /* its version of the main module, or 0 */
	bool transient;                /* refused as a version: unloaded once
	                                  nobody holds it (not kept as version 0
	                                  modules are, for the next spawn) */
	bool listed;                   /* in the table (else unloaded, on the
	                                  list of those gone) */
	bool unloading;                /* out of the table, its builds not yet
	                                  unloaded (mods_lock; modules.c) */
	struct rt_mod *next_gone;
};

/* One thread's counters (stats.c): a cache line of their own. */
struct rt_counters {
	alignas(64) _Atomic uint64_t v[RT_COUNTERS];
};

struct rt {
	struct rt_config cfg;
	struct proc_hooks hooks;
	struct sched_group sg;         /* schedulers, timers, reactor */
	atomic_size_t live;            /* processes not yet reaped */
	pthread_mutex_t blocking_lock; /* creating the blocking pool */
	struct blocking_pool *blocking;/* blocking.c, started on first use */
	/* The host layer's runtime-wide state (rt_host_shared): made under
	 * blocking_lock, read without it once set (acquire). */
	struct rt_host_shared {
		void *(*make)(void);
		void (*destroy)(void *);
		_Atomic(void *) state;
	} host_shared[RT_HOST_SHARED];
	atomic_uint_fast64_t next_ref; /* monitor and request refs */
	/* Statistics (stats.c): one slot per scheduler, its own thread's,
	 * then one for every other thread. */
	struct rt_counters *counters;
	int ncounters;

	struct stack_pool stacks;
	struct ptable ptable;
	struct registry registry;
	engine_module *mod;            /* the main module (its first version) */
	struct engine_limits limits;
	pthread_mutex_t mods_lock;     /* the module table (modules.c) */
	struct rt_mod **mods;
	size_t nmods, capmods;
	struct rt_mod *mods_gone;      /* entries unloaded (freed at the end) */
	/* Hashes being loaded (rt_module_load), and a wait for a hash being
	 * loaded or unloaded to be done with: one dlopen of a file at a
	 * time (modules.c, "One load per hash"). */
	unsigned char (*loading)[RT_HASH_BYTES];
	size_t nloading, caploading;
	pthread_cond_t mods_cond;
	/* Versions of the main module (upgrade.c; mods_lock): the current one,
	 * the last number given, and the processes told of new ones. */
	struct rt_mod *current;
	uint32_t last_vsn;
	pthread_mutex_t code_lock;     /* one load of a version at a time */
	uint64_t *code_watchers;
	uint32_t ncode_watchers, capcode_watchers;

	/* the main process and its end */
	uint64_t main_pid;
	pthread_mutex_t done_lock;
	pthread_cond_t done_cond;
	bool done;
	struct engine_result main_res;
	struct reason main_reason;
};

/* The module table: made with the main module, freed with the runtime
 * (modules.c). */
int rt_modules_init(struct rt *rt);
void rt_modules_free(struct rt *rt);
/* Unload the versions a new current one retired that nobody holds. */
void rt_modules_retire(struct rt *rt);
/* p is discarded inside wisp_code_change (upgrade.c): give it its own
 * spawn argument back, so that proc_discard frees what p holds. */
void proc_upgrade_discard(struct proc *p);
/* p ends with reason why after res (on its fiber, in finish, before its
 * names, instance and links go): write its crash report if its end is a
 * crash, and the runtime has a log (report.c says which ends are). */
void proc_report_end(struct proc *p, const struct reason *why, const struct engine_result *res);
/* Stop the blocking pool's threads; false if one did not stop in time. */
bool blocking_pool_stop(struct rt *rt);

/* ---- processes, shared between lifecycle.c, signal.c, receive.c,
 * wait.c and timers.c ---- */

/* Every switch of a process off its thread: what it sent to other nodes
 * goes out first (proc_remote.flush), then sched_switch_out. */
void proc_switch_out(struct proc *p, enum task_yield why);

/* Create the main process (runtime.c) with the root capabilities. */
int proc_start_main(struct rt *rt, struct caps *root);
/* sched's exited() callback: free the stack and the slot. */
void proc_exited(struct task *t, void *rt);
/* sched's freeze()/thaw(): a hibernating process's memory. */
void proc_freeze(struct task *t, void *rt);
void proc_thaw(struct task *t, void *rt);
/* sched's io_ready() callback: token = slot << 32 | wait number, or a
 * remote layer's token with RT_REMOTE_TOKEN set (rt_remote_arm). */
#define RT_REMOTE_TOKEN (1ull << 63)
void proc_io_ready(uint64_t token, void *rt);
/* Free what a discarded process still holds (runtime teardown). */
void proc_discard(struct proc *p);

/* Charge bytes that another process pushes at p (messages, timers). Past
 * p's limit p is marked to end with LIMIT and woken to do so; the bytes
 * are then refused (false) if refusable, else charged anyway. */
bool proc_charge_pushed(struct rt *rt, struct proc *p, uint64_t pid, uint64_t bytes,
                        bool refusable);
/* Push m into pid's mailbox and wake it. False (m not consumed) if pid is
 * not alive. */
bool proc_deliver(struct rt *rt, uint64_t pid, struct msg *m);
/* Take everything from the mailbox; apply signals, queue messages; unwind
 * if a signal ended the process. */
void proc_drain(struct proc *self);
/* If pushes put self over its memory limit, doom it with LIMIT. */
void proc_check_limit(struct proc *self);
/* Doom p (ends at its next check) with LIMIT and this text; for p not
 * running (its scheduler waking it). */
void proc_doom_limit(struct proc *p, const char *what);
/* End self now with reason r (unwinds out of guest code). */
_Noreturn void proc_die(struct proc *self, const struct reason *r);
/* The exit path's signal handling: apply the bookkeeping signals left in
 * the closed mailbox, then tell links and monitors. */
void proc_notify_exit(struct proc *p, const struct reason *why);
/* The small sets a process owns (pidset.c), keyed by ref; a link's ref is
 * the other pid. 0 or -ENOMEM (out of memory, or past the owner's memory
 * limit: a set's room is charged to its owner, and given back by
 * proc_free_sets). */
int proc_set_add(struct proc *owner, struct pidset *s, uint64_t ref, uint64_t pid);
uint64_t proc_set_del_ref(struct pidset *s, uint64_t ref);          /* its pid, or 0 */
bool proc_set_has(const struct pidset *s, uint64_t ref);
/* Remove by pid, scanning (rare paths only). */
bool proc_set_del_pid_scan(struct pidset *s, uint64_t pid);
/* Free the link and monitor sets. */
void proc_free_sets(struct proc *p);

/* Say what self is about to wait for (inspection: wisp ps), before the
 * wait that parks it: proc_receive, proc_request, proc_sleep, ... each
 * say it at their start (a nested wait says it again), and the park
 * itself records its deadline. */
static inline void proc_waiting(struct proc *self, enum proc_wait kind, uint64_t on)
{
	self->wait_kind = (uint8_t)kind;
	self->wait_on = on;
}
/* proc_wait_fds without saying what it waits for (the caller has). */
int proc_wait_fds_quiet(struct proc *self, const int *fds, const uint32_t *events,
                        uint32_t n, int64_t timeout_ns);
int proc_wait_fdset_quiet(struct proc *self, const struct proc_fd_wait *w, uint32_t n,
                          int64_t timeout_ns);

/* Park until woken (spurious wake-ups allowed), or until `deadline`
 * (monotonic ns; UINT64_MAX: none). */
void proc_wait_until(struct proc *self, uint64_t deadline);
void proc_park(struct proc *self);
/* The exit path: no wake timer may outlive the process. */
void proc_cancel_wake(struct proc *self);
/* sched_stop's drop(): free a timer still queued at teardown. */
void proc_drop_timer(struct sched_timer *t);
/* The exit path (after `exiting` is set): cancel the timers aimed at p. */
void proc_cancel_timers_to(struct proc *p);

/* Statistics (stats.c): the counters' slots, for nsched schedulers (0,
 * -ENOMEM), and their end. */
int rt_stats_init(struct rt *rt, int nsched);
void rt_stats_free(struct rt *rt);
/* rt_count for threads that are no scheduler of rt's: the shared slot. */
void rt_count_shared(struct rt *rt, enum rt_counter c, uint64_t n);
/* rt_count, inline for src/proc's hot paths: on a scheduler thread of
 * rt's, a relaxed load and store in that thread's own slot (no locked
 * instruction); elsewhere the shared slot. */
static inline void proc_count(struct rt *rt, enum rt_counter c, uint64_t n)
{
#ifndef WISP_NO_STATS
	struct sched *s = sched_self();
	if (s != NULL && s->g == &rt->sg) {
		_Atomic uint64_t *v = &rt->counters[s->id].v[c];
		atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + n,
		                      memory_order_relaxed);
	} else {
		rt_count_shared(rt, c, n);
	}
#else
	(void)rt;
	(void)c;
	(void)n;
#endif
}
/* m is charged to p's account from now on (a message queued for p, or a
 * send_after timer's message aimed at it): m->acct is only ever a
 * process's usage, set here. */
void msg_charged(struct proc *p, struct msg *m);
/* m is charged to nobody any more (if it was). */
void msg_uncharge(struct msg *m);
/* ---- tracing (trace.c): the events of a traced process, made by the
 * process itself; each call site tests proc_traced first, the one cost an
 * untraced process pays. ---- */

static inline bool proc_traced(const struct proc *p)
{
	return __builtin_expect(atomic_load_explicit(&p->trace, memory_order_relaxed) != NULL, 0);
}
/* It sends m (a message, or a signal: link, unlink, monitor, demonitor,
 * exit, kill), before m is delivered. */
void proc_trace_send(struct proc *self, const struct msg *m);
/* m reached it (drained from its mailbox), before it is applied. */
void proc_trace_receive(struct proc *self, const struct msg *m);
/* It spawned pid (flags: WISP_SPAWN_*). */
void proc_trace_spawn(struct proc *self, uint64_t pid, uint32_t flags);
/* It ended (its pid is 0 already): the last event; the trace is let go.
 * Called whether or not proc_traced says so (it takes trace_lock). */
void proc_trace_exit(struct proc *p, const struct reason *why);

static inline struct proc *proc_of_task(struct task *t)
{
	return (struct proc *)((char *)t - __builtin_offsetof(struct proc, task));
}

#endif
