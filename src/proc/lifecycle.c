/*
 * lifecycle.c — a process from spawn to reap.
 *
 * proc_spawn (the parent's fiber) takes a slot, a stack and a fiber, sets
 * up the links and monitors the flags ask for, publishes the pid and
 * enqueues the task; the main process is made by the same path
 * (proc_start_main). proc_fiber_main (the child's own fiber) creates the
 * instance — instantiation runs guest code, so it must be on the fiber —
 * runs the entry, and on the way out (finish) closes the mailbox, tells
 * links and monitors, and frees the instance and the host state; the
 * scheduler then calls proc_exited, which frees the stack and the slot
 * (code running on a stack cannot free it).
 *
 * A slice ends in slice_end (the engine's hook): the reductions used are
 * charged against the CPU limit, pending signals are applied, and the
 * process yields.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caps.h"
#include "common/util.h"
#include "proc_impl.h"

static const struct reason reason_cpu = { WISP_EXIT_LIMIT, 0, "cpu limit" };

/* Refs name monitors, requests and timers, and a process sees some (its
 * monitors', its timers', a request's as the server that answers it). A
 * count alone let a process that had seen one send another process
 * messages tagged with the next ones, and that process's next request took
 * the first as its reply (a request takes the first message with its ref's
 * tag, whoever sent it: a deferred reply may come from another process).
 * So the 31 bits above a 32-bit count are random (util_random31): a guess
 * hits one time in 2^31. Two refs can be equal only 2^32 refs apart, and
 * then only if their random bits are too. (A live timer's id is made by
 * its scheduler the same way: sched_timer_add.) */
uint64_t rt_new_ref(struct rt *rt)
{
	uint32_t count = (uint32_t)(atomic_fetch_add(&rt->next_ref, 1) + 1);
	return 1ull << 63 | (uint64_t)util_random31() << 32 | count;
}

uint64_t rt_whereis(struct rt *rt, const char *name, uint32_t len)
{
	uint64_t pid = 0;
	if (len == 0 || len > 255 || registry_get(&rt->registry, name, len, &pid) != 0)
		return 0;
	return pid;
}

static uint64_t slice_used(struct proc *p, bool ended);

/* p parks before its slice is used up: what it used so far is counted now,
 * as BEAM counts at every schedule-out, and it runs next with a whole
 * slice. (Counting only at slice ends and process ends left a node of
 * mostly waiting processes with no reductions in its metrics while `wisp
 * ps` showed each one's.) */
static void count_partial_slice(struct proc *p)
{
	if (p->inst == NULL)
		return;
	uint64_t used = slice_used(p, false);
	if (used == 0)
		return;
	proc_count(p->rt, RT_REDUCTIONS, used);
	atomic_store_explicit(&p->reductions,
	                      atomic_load_explicit(&p->reductions, memory_order_relaxed) + used,
	                      memory_order_relaxed);
	engine_instance_vmctx(p->inst)->fuel = p->rt->cfg.reductions;
}

void proc_switch_out(struct proc *p, enum task_yield why)
{
	if (why == TASK_PARK)
		count_partial_slice(p);
	const struct proc_remote *r = p->rt->cfg.remote;
	if (r != NULL)
		r->flush(r->ctx);
	sched_switch_out(&p->task, why);
}

void *proc_remote_ctx(const struct proc *p)
{
	const struct proc_remote *r = p->rt->cfg.remote;
	return r != NULL ? r->ctx : NULL;
}

bool proc_module_hash(struct proc *self, unsigned char hash[RT_HASH_BYTES])
{
	return rt_module_hash(self->mod, hash);
}

engine_module *proc_module(const struct proc *self)
{
	return self->mod;
}

uint32_t proc_code_version(struct proc *self)
{
	return rt_code_version(self->rt, self->mod);
}

uint64_t proc_make_ref(struct proc *self)
{
	return rt_new_ref(self->rt);
}

int proc_bond_remote(struct proc *self, uint64_t pid, bool link, uint64_t mon_ref)
{
	if (link && !proc_set_has(&self->links, pid) &&
	    proc_set_add(self, &self->links, pid, pid) != 0)
		return -ENOMEM;
	if (mon_ref != 0 && proc_set_add(self, &self->watching, mon_ref, pid) != 0) {
		if (link)
			proc_set_del_ref(&self->links, pid);
		return -ENOMEM;
	}
	return 0;
}

uint64_t rt_max_message(const struct rt *rt)
{
	return rt->cfg.max_message;
}

struct proc *proc_self(void)
{
	struct task *t = sched_current();
	return t ? proc_of_task(t) : NULL;
}

uint64_t proc_pid(const struct proc *p)
{
	return atomic_load(&p->pid);
}

int proc_charge(struct proc *p, uint64_t bytes)
{
	int64_t after = atomic_fetch_add(&p->usage, (int64_t)bytes) + (int64_t)bytes;
	if (after > 0 && (uint64_t)after > p->mem_limit) {
		atomic_fetch_sub(&p->usage, (int64_t)bytes);
		return -ENOMEM;
	}
	return 0;
}

void proc_uncharge(struct proc *p, uint64_t bytes)
{
	atomic_fetch_sub(&p->usage, (int64_t)bytes);
}

uint64_t proc_max_message(const struct proc *self)
{
	uint64_t m = self->rt->cfg.max_message;
	return self->caps && self->caps->max_message < m ? self->caps->max_message : m;
}

const unsigned char *proc_arg(const struct proc *self, uint32_t *len)
{
	*len = self->arg_len;
	return self->arg;
}

bool proc_alive(struct rt *rt, uint64_t pid)
{
	if (proc_pid_is_remote(pid)) {
		const struct proc_remote *r = rt->cfg.remote;
		return r != NULL && r->alive(r->ctx, pid);
	}
	struct proc *p = ptable_get(&rt->ptable, pid);
	return p != NULL && atomic_load(&p->pid) == pid;
}

/* ---- spawning ---- */

static void proc_fiber_main(void *arg);
static void fire_wake(struct sched_timer *t);

static uint64_t make_pid(const struct proc *p)
{
	return (uint64_t)p->gen << 32 | p->index;
}

/* A new process in a fresh slot with `caps` (a reference is taken), not
 * yet published (pid unset). -EAGAIN: the table is full; -ENOMEM. */
static int proc_new(struct rt *rt, struct caps *caps, bool is_main, struct proc **out)
{
	struct proc *p = ptable_alloc(&rt->ptable);
	if (p == NULL)
		return -EAGAIN;
	void *stack = stack_alloc(&rt->stacks);
	if (stack == NULL) {
		ptable_release(&rt->ptable, p);
		return -ENOMEM;
	}
	mbox_init(&p->mbox);
	atomic_store(&p->exiting, false);
	/* p->names is NULL already (calloc, then emptied by every exit) and
	 * not written here: a registration that raced with the previous
	 * incarnation's exit may still be looking at it (registry.c). */
	p->rt = rt;
	p->mod = NULL;   /* (set and held by the caller) */
	p->inst = NULL;
	memset(proc_host(p), 0, rt->hooks.host_size);
	p->is_main = is_main;
	p->program = false;
	p->trap_exit = false;
	p->forwarding = false;   /* (a forwarder's slot: SIG_MARK is dropped again) */
	p->old_inst = NULL;
	p->resume_fn = 0;
	p->park_may_move = false;
	p->upgrade_slices = 0;
	p->doomed = false;
	p->doom_text = NULL;
	p->doom_from = 0;
	p->killed_by = 0;
	p->panic_quiet = false;
	p->arg = NULL;
	p->arg_len = 0;
	p->parent = 0;
	p->born_ns = atomic_load_explicit(&rt->sg.coarse_ns, memory_order_relaxed);
	atomic_store_explicit(&p->reductions, 0, memory_order_relaxed);
	p->wait_kind = PROC_WAIT_NONE;
	assert(atomic_load_explicit(&p->trace, memory_order_relaxed) == NULL);
	p->task.vmctx = NULL;
	p->task.cpu_ticks = 0;
	p->task.no_hibernate = false;
	p->frozen = NULL;
	p->wake.fire = fire_wake;
	p->mem_limit = caps->max_memory;
	atomic_store(&p->over_limit, 0);
	caps_ref(caps);
	p->caps = caps;
	fiber_init(&p->task.fiber, stack, rt->stacks.stack_size, proc_fiber_main, p);
	*out = p;
	return 0;
}

/* Undo proc_new (nothing was published). */
static void proc_unnew(struct proc *p)
{
	struct rt *rt = p->rt;
	if (p->mod != NULL)
		rt_module_put(rt, p->mod);
	p->mod = NULL;
	caps_unref(p->caps);
	p->caps = NULL;
	free(p->arg);
	p->arg = NULL;
	proc_free_sets(p);
	fiber_destroy(&p->task.fiber);
	stack_free(&rt->stacks, p->task.fiber.stack_lo);
	p->task.fiber.stack_lo = NULL;
	ptable_release(&rt->ptable, p);
}

/* Make a new process visible: from now on its pid finds it. */
static void publish(struct rt *rt, struct proc *p)
{
	atomic_fetch_add(&rt->live, 1);
	proc_count(rt, RT_SPAWNED, 1);
	atomic_store_explicit(&p->pid, make_pid(p), memory_order_release);
}

int proc_start_main(struct rt *rt, struct caps *root)
{
	struct proc *p;
	int rc = proc_new(rt, root, true, &p);
	if (rc != 0)
		return rc;
	p->mod = rt->mod;
	rt_module_hold(p->mod);
	rt->main_pid = make_pid(p);
	publish(rt, p);
	sched_enqueue_new(&rt->sg, &p->task);
	return 0;
}

/* The links and monitor the spawn flags ask for, both sides. On failure
 * the caller removes what the parent got (the child is never published). */
static int spawn_bonds(struct proc *parent, struct proc *p, uint32_t flags,
                       struct wisp_spawned *out)
{
	struct rt *rt = parent->rt;
	uint64_t child = make_pid(p), me = atomic_load(&parent->pid);
	out->pid = child;
	out->monitor = 0;
	if (flags & WISP_SPAWN_LINK) {
		if (proc_set_add(p, &p->links, me, me) != 0 ||
		    proc_set_add(parent, &parent->links, child, child) != 0)
			return -ENOMEM;
	}
	if (flags & WISP_SPAWN_MONITOR) {
		uint64_t ref = rt_new_ref(rt);
		if (proc_set_add(p, &p->watchers, ref, me) != 0 ||
		    proc_set_add(parent, &parent->watching, ref, child) != 0)
			return -ENOMEM;
		out->monitor = ref;
	}
	return 0;
}

/* Undo new_child. */
static void drop_child(struct proc *p)
{
	caps_uncharge(p->caps);
	proc_unnew(p);
}

/* A new process of mod (the caller holds it; the child holds its latest
 * build) under caps, charged to them, not yet published: its spawn entry
 * with fn and arg, or, for a program, its _start with arg kept for the
 * host (proc_take_host_init). -EINVAL (no such entry), -EAGAIN (caps'
 * process limit), -ENOMEM. */
static int new_child(struct rt *rt, struct caps *caps, engine_module *mod, bool program,
                     uint32_t fn, const void *arg, uint32_t len, struct proc **out)
{
	if (program ? !engine_module_has_start(mod) : !engine_module_has_spawn_entry(mod))
		return -EINVAL;
	if (!caps_charge(caps))
		return -EAGAIN;
	struct proc *p;
	int rc = proc_new(rt, caps, false, &p);
	if (rc != 0) {
		caps_uncharge(caps);
		return rc;
	}
	p->mod = engine_module_latest(mod);   /* (the optimized build once there) */
	rt_module_hold(p->mod);
	p->program = program;
	p->entry_fn = fn;
	p->arg_len = len;
	if ((p->arg = malloc(len ? len : 1)) == NULL) {
		drop_child(p);
		return -ENOMEM;
	}
	if (len)
		memcpy(p->arg, arg, len);
	*out = p;
	return 0;
}

/* Make a child visible and runnable. */
static void start_child(struct rt *rt, struct proc *p)
{
	publish(rt, p);
	sched_enqueue_new(&rt->sg, &p->task);
}

/* A child of parent (see new_child), with the links and monitor flags ask
 * for. */
static int spawn(struct proc *parent, engine_module *mod, bool program, uint32_t fn,
                 const void *arg, uint32_t len, uint32_t flags, struct caps *caps,
                 struct wisp_spawned *out)
{
	if (flags & ~(uint32_t)(WISP_SPAWN_LINK | WISP_SPAWN_MONITOR))
		return -EINVAL;
	uint64_t me = atomic_load(&parent->pid);
	if (!parent->caps->may_spawn) {
		caps_log_denied(parent->caps, me, "spawn: no spawn capability (--max-processes 0)");
		return -EPERM;
	}
	struct proc *p;
	int rc = new_child(parent->rt, caps != NULL ? caps : parent->caps, mod, program, fn, arg,
	                   len, &p);
	if (rc == -EAGAIN)
		caps_log_denied(parent->caps, me, "spawn: process limit reached");
	if (rc != 0)
		return rc;
	if ((rc = spawn_bonds(parent, p, flags, out)) != 0) {
		proc_set_del_ref(&parent->links, make_pid(p));
		proc_set_del_pid_scan(&parent->watching, make_pid(p));
		drop_child(p);
		return rc;
	}
	p->parent = me;
	if (proc_traced(parent))
		proc_trace_spawn(parent, make_pid(p), flags);
	start_child(parent->rt, p);
	return 0;
}

int proc_spawn(struct proc *parent, uint32_t fn, const void *arg, uint32_t len,
               uint32_t flags, struct caps *caps, struct wisp_spawned *out)
{
	return spawn(parent, parent->mod, false, fn, arg, len, flags, caps, out);
}

int proc_spawn_program(struct proc *parent, engine_module *mod, const void *host_init,
                       uint32_t len, uint32_t flags, struct caps *caps, struct wisp_spawned *out)
{
	return spawn(parent, mod, true, 0, host_init, len, flags, caps, out);
}

void *proc_take_host_init(struct proc *p, uint32_t *len)
{
	if (!p->program || p->arg == NULL)
		return NULL;
	void *init = p->arg;
	*len = p->arg_len;
	p->arg = NULL;
	p->arg_len = 0;
	return init;
}

/* ---- spawned by the embedder or for another node ---- */

struct proc *rt_spawn_unstarted(struct rt *rt, engine_module *mod, uint32_t fn,
                                const void *arg, uint32_t len, uint64_t link_to,
                                uint64_t watcher, uint64_t watch_ref, int *err)
{
	struct caps *caps = rt->cfg.root;
	if (caps == NULL || !caps->may_spawn) {
		*err = caps == NULL ? -EINVAL : -EAGAIN;
		return NULL;
	}
	struct proc *p;
	int rc = new_child(rt, caps, mod, false, fn, arg, len, &p);
	if (rc != 0) {
		*err = rc;
		return NULL;
	}
	if (link_to != 0)
		rc = proc_set_add(p, &p->links, link_to, link_to);
	if (rc == 0 && watcher != 0)
		rc = proc_set_add(p, &p->watchers, watch_ref, watcher);
	if (rc != 0) {
		drop_child(p);
		*err = rc;
		return NULL;
	}
	return p;
}

uint64_t rt_spawn_program(struct rt *rt, engine_module *mod, struct caps *caps,
                          const void *host_init, uint32_t len, int *err)
{
	struct proc *p;
	int rc = new_child(rt, caps, mod, true, 0, host_init, len, &p);
	if (rc != 0) {
		*err = rc;
		return 0;
	}
	start_child(rt, p);
	return make_pid(p);
}

uint64_t rt_unstarted_pid(const struct proc *p)
{
	return make_pid(p);
}

int rt_register(struct proc *p, const char *name, uint32_t len)
{
	if (len == 0 || len > 255)
		return -EINVAL;
	return registry_put(&p->rt->registry, name, len, p, make_pid(p));
}

size_t proc_names(struct proc *self, char *buf, size_t cap)
{
	return registry_names_of(&self->rt->registry, self, buf, cap);
}

void rt_start_unstarted(struct proc *p)
{
	start_child(p->rt, p);
}

void rt_drop_unstarted(struct proc *p)
{
	drop_child(p);
}

/* ---- running ---- */

static void fire_wake(struct sched_timer *t)
{
	/* The timer belongs to a slot, not an incarnation: at worst a new
	 * process in the same slot gets a spurious wake-up, which every wait
	 * tolerates. */
	struct proc *p = (struct proc *)((char *)t - __builtin_offsetof(struct proc, wake));
	sched_wake(&p->rt->sg, &p->task);
}

/* Reductions this slice used so far: what its fuel lost, host work
 * included (proc_charge_work); a whole slice if it ran a tick without a
 * loop (preempted at a function entry: its fuel never moved). */
static uint64_t slice_used(struct proc *p, bool ended)
{
	int64_t left = engine_instance_vmctx(p->inst)->fuel;
	int64_t budget = p->rt->cfg.reductions;
	if (left < budget)
		return (uint64_t)(budget - left);
	return ended ? (uint64_t)budget : 0;
}

/* p has run past its CPU limit (reductions, counted at slice ends). */
static void die_of_cpu(struct proc *p)
{
	caps_log_denied(p->caps, atomic_load(&p->pid), "cpu limit of %llu reductions",
	                (unsigned long long)p->caps->max_cpu);
	proc_die(p, &reason_cpu);
}

void proc_charge_work(struct proc *p, uint64_t bytes)
{
	if (p->inst == NULL)
		return;
	/* A reduction is about a loop trip: count one per 64 bytes moved. */
	engine_instance_vmctx(p->inst)->fuel -= (int64_t)(1 + bytes / 64);
	if (p->caps->max_cpu != UINT64_MAX &&
	    atomic_load_explicit(&p->reductions, memory_order_relaxed) + slice_used(p, false) >
	        p->caps->max_cpu)
		die_of_cpu(p);
}

uint64_t proc_cpu_time_ns(const struct proc *p)
{
	return sched_task_cpu_ns(&p->task);
}

static void slice_end(void *host)
{
	/* The host state sits right after the struct (proc_new). */
	struct proc *p = (struct proc *)((char *)host - sizeof(struct proc));
	if (p->inst != NULL) {
		uint64_t used = slice_used(p, true);
		proc_count(p->rt, RT_REDUCTIONS, used);
		/* (Only p writes it: a relaxed load and store, no atomic add.) */
		uint64_t total = atomic_load_explicit(&p->reductions, memory_order_relaxed) + used;
		atomic_store_explicit(&p->reductions, total, memory_order_relaxed);
		if (total > p->caps->max_cpu)
			die_of_cpu(p);
	}
	if (p->upgrade_slices != 0 && --p->upgrade_slices == 0)
		engine_trap_msg(p->inst, WASM_RT_TRAP_NONE, "wisp_code_change ran past its CPU budget");
	if (atomic_load_explicit(&p->mbox.head, memory_order_relaxed) != NULL ||
	    atomic_load_explicit(&p->over_limit, memory_order_relaxed))
		proc_drain(p);
	proc_switch_out(p, TASK_YIELD);
}

/* Statistics of p's end (stats.c): its reason, and the reductions of its
 * last slice. */
static void count_end(struct proc *p, const struct reason *why)
{
	proc_count(p->rt, RT_EXITED + (why->kind < RT_EXIT_KINDS ? why->kind : WISP_EXIT_TERM), 1);
	if (p->inst != NULL)
		proc_count(p->rt, RT_REDUCTIONS, slice_used(p, false));
}

static void result_reason(const struct engine_result *res, struct reason *r)
{
	r->kind = 0;
	r->code = 0;
	r->text[0] = '\0';   /* (no memset: every exit comes here) */
	switch (res->outcome) {
	case ENGINE_RETURNED:
	case ENGINE_HANDED_OVER:   /* (never here: the loop in proc_fiber_main) */
		r->kind = WISP_EXIT_NORMAL;
		break;
	case ENGINE_EXITED:
		r->kind = res->exit_code == 0 ? WISP_EXIT_NORMAL : WISP_EXIT_CODE;
		r->code = res->exit_code;
		break;
	case ENGINE_TRAPPED:
		r->kind = WISP_EXIT_TRAP;
		if (res->trap == WASM_RT_TRAP_NONE)
			snprintf(r->text, sizeof(r->text), "%s", res->message);
		else
			snprintf(r->text, sizeof(r->text), "%s in %s%s%s",
			         engine_trap_name(res->trap),
			         res->function[0] ? res->function : "<unknown function>",
			         res->message[0] ? ": " : "", res->message);
		break;
	}
}

/* Why p ended: what doomed it, or how the engine says its code ended. */
static void final_reason(struct proc *p, const struct engine_result *res, struct reason *r)
{
	if (!p->doomed) {
		result_reason(res, r);
		return;
	}
	memset(r, 0, sizeof(*r));
	r->kind = p->doom_kind;
	r->code = p->doom_code;
	if (p->doom_text != NULL)
		memcpy(r->text, p->doom_text, p->doom_len);   /* (<= reason_text_len's) */
	free(p->doom_text);
	p->doom_text = NULL;
}

/* The end of a process, on its fiber: tell everyone, free the instance. */
static void finish(struct proc *p, const struct engine_result *res)
{
	struct rt *rt = p->rt;
	proc_check_limit(p);
	struct reason why;
	final_reason(p, res, &why);
	count_end(p, &why);
	if (rt->hooks.exiting != NULL)
		rt->hooks.exiting(proc_host(p));
	if (p->inst != NULL)   /* (its last slice) */
		atomic_store_explicit(&p->reductions,
		                      atomic_load_explicit(&p->reductions, memory_order_relaxed) +
		                      slice_used(p, false), memory_order_relaxed);
	proc_report_end(p, &why, res);
	/* Under the registry's lock, so a concurrent register either sees
	 * `exiting` or is seen by the forget (no name outlives its owner). */
	registry_exit(&rt->registry, p);
	proc_cancel_timers_to(p);
	proc_cancel_wake(p);
	proc_notify_exit(p, &why);
	proc_trace_exit(p, &why);   /* (traced or not: trace.c says why) */

	sched_publish_vmctx(&p->task, NULL);
	engine_instance_free(p->inst);
	p->inst = NULL;
	rt->hooks.end(proc_host(p));
	free(p->arg);
	p->arg = NULL;

	if (p->is_main) {
		/* Its last words to other nodes leave before the run ends. */
		const struct proc_remote *r = rt->cfg.remote;
		if (r != NULL)
			r->flush(r->ctx);
		pthread_mutex_lock(&rt->done_lock);
		rt->main_res = *res;
		rt->main_reason = why;
		rt->done = true;
		pthread_cond_broadcast(&rt->done_cond);
		pthread_mutex_unlock(&rt->done_lock);
	}
}

void proc_instance_limits(struct proc *p, struct engine_limits *lim)
{
	struct rt *rt = p->rt;
	*lim = rt->limits;
	lim->stack_lo = (uintptr_t)p->task.fiber.stack_lo;
	lim->stack_hi = lim->stack_lo + rt->stacks.stack_size;
	lim->slice_end = slice_end;
	lim->call_on_big_stack = sched_call_on_thread_stack;
	lim->usage = &p->usage;
	if (p->caps->max_memory != UINT64_MAX)
		lim->max_memory = p->caps->max_memory;
}

static void proc_fiber_main(void *arg)
{
	struct proc *p = arg;
	struct rt *rt = p->rt;
	struct engine_result res;
	res.outcome = ENGINE_RETURNED;   /* (text fields are read up to their NUL) */
	res.exit_code = 0;
	res.trap = WASM_RT_TRAP_NONE;
	res.function[0] = res.message[0] = '\0';
	struct engine_limits lim;
	proc_instance_limits(p, &lim);
	rt->hooks.start(proc_host(p), p);
	p->inst = engine_instance_new(p->mod, proc_host(p), &lim, &res);
	/* (NULL: a trap or no memory while instantiating, or killed then.)
	 * Before the instance exists only others' pushes are on the account:
	 * if instantiating failed with some there, they left no room. */
	if (p->inst == NULL && atomic_load(&p->usage) > 0)
		atomic_store(&p->over_limit, atomic_load(&p->pid));
	if (p->inst != NULL) {
		rt->hooks.ready(proc_host(p), p->inst);
		/* From now on the tick can preempt it (see sched_tick). */
		sched_publish_vmctx(&p->task, engine_instance_vmctx(p->inst));
		if (p->is_main || p->program)
			engine_instance_run_start(p->inst, &res);
		else
			engine_instance_run_spawn_entry(p->inst, p->entry_fn, p->arg_len, &res);
		/* Handed over to a new version (upgrade.c): the old instance's
		 * frames are gone; the process goes on in the new one. */
		while (res.outcome == ENGINE_HANDED_OVER) {
			engine_module *was = engine_instance_module(p->old_inst);
			engine_instance_free(p->old_inst);
			p->old_inst = NULL;
			rt_module_put(rt, was);   /* (it may be unloaded now) */
			engine_instance_run_fn(p->inst, p->resume_fn, &res);
		}
	}
	finish(p, &res);
	proc_switch_out(p, TASK_EXIT);
	abort();   /* a finished process is never resumed */
}

/* ---- the end ---- */

/* Free what a process holds besides its instance and host state. */
static void release(struct proc *p)
{
	rt_module_put(p->rt, p->mod);   /* (its instance is gone: finish) */
	p->mod = NULL;
	if (p->caps != NULL && !p->is_main)
		caps_uncharge(p->caps);
	caps_unref(p->caps);
	p->caps = NULL;
	proc_free_sets(p);
	fiber_destroy(&p->task.fiber);
	stack_free(&p->rt->stacks, p->task.fiber.stack_lo);
	p->task.fiber.stack_lo = NULL;   /* a free slot (proc_discard) */
}

void proc_exited(struct task *t, void *arg)
{
	struct rt *rt = arg;
	struct proc *p = proc_of_task(t);
	release(p);
	ptable_release(&rt->ptable, p);
	atomic_fetch_sub(&rt->live, 1);
}

void proc_discard(struct proc *p)
{
	/* Every exit gave back what it was charged for (the account is the
	 * slot's: nothing may be left for its next process). */
	if (p->task.fiber.stack_lo == NULL) {
		assert(atomic_load(&p->usage) == 0);
		return;   /* a free slot */
	}
	registry_exit(&p->rt->registry, p);
	sched_task_forget(&p->task);
	proc_upgrade_discard(p);
	engine_instance_thaw(p->inst, p->frozen);    /* frees the record */
	p->frozen = NULL;
	engine_instance_free(p->inst);
	p->inst = NULL;
	if (p->old_inst != NULL) {   /* (handed over, not yet freed: its module's hold too) */
		engine_module *was = engine_instance_module(p->old_inst);
		engine_instance_free(p->old_inst);
		p->old_inst = NULL;
		rt_module_put(p->rt, was);
	}
	p->rt->hooks.end(proc_host(p));
	struct msg *m = mbox_close(&p->mbox);
	while (m) {
		struct msg *next = m->next;
		msg_free(m);
		m = next;
	}
	mbox_clear(&p->mbox);
	free(p->arg);
	p->arg = NULL;
	free(p->doom_text);
	p->doom_text = NULL;
	release(p);
	assert(atomic_load(&p->usage) == 0);
}
