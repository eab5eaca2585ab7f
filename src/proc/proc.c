/*
 * proc.c — process lifecycle, signals, receive, links and monitors.
 *
 * Lifecycle: proc_spawn (parent's fiber) allocates a slot, a stack and a
 * fiber and enqueues it; proc_fiber_main (the child's fiber) creates the
 * instance — instantiation runs guest code, so it must be on the fiber —
 * runs the entry, and on the way out (proc_finish) closes the mailbox,
 * sends exit signals to links and DOWN to monitors, and frees the instance;
 * the scheduler then reaps the stack and slot (proc_reap), which cannot be
 * freed by code running on them.
 *
 * Signals (see proc.h for who touches what): link, unlink, monitor,
 * demonitor and exit signals are messages in the mailbox, applied by the
 * owner in drain() — when it receives, when it waits, and at the end of
 * every slice if its mailbox is not empty, so a kill reaches a busy process
 * within one slice. Exit-signal semantics are Erlang's:
 *   - kill(): the target dies with KILLED, trapping or not;
 *   - a link's exit signal (reason R from a process we still link to) or
 *     exit_signal(R): a process trapping exits gets an EXIT message; else
 *     R = NORMAL is ignored, and any other R kills it with reason R;
 *   - linking to / monitoring a process that does not exist answers at once
 *     with reason NOPROC.
 * A signal addressed to an older incarnation of a slot (msg->to != pid) is
 * answered as if by a dead process: NOPROC for link and monitor requests.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caps.h"
#include "mailbox.h"
#include "rt_impl.h"


static void drain(struct proc *self);
static void bounce(struct rt *rt, struct msg *m, const struct reason *r);
static _Noreturn void die(struct proc *self, const struct reason *r);

static const struct reason reason_noproc = { WISP_EXIT_NOPROC, 0, "" };
static const struct reason reason_killed = { WISP_EXIT_KILLED, 0, "" };

uint64_t rt_new_ref(struct rt *rt)
{
	return (atomic_fetch_add(&rt->next_ref, 1) + 1) | (1ull << 63);
}

struct proc *proc_self(void)
{
	struct sched *s = sched_self();
	return s ? s->current : NULL;
}

uint64_t proc_max_message(const struct proc *self)
{
	uint64_t m = self->rt->cfg.max_message;
	return self->caps && self->caps->max_message < m ? self->caps->max_message : m;
}

bool proc_alive(struct rt *rt, uint64_t pid)
{
	struct proc *p = ptable_get(&rt->ptable, pid);
	return p != NULL && atomic_load(&p->pid) == pid;
}

/* ---- small sets owned by the process ---- */

static int add_u64(uint64_t **arr, uint32_t *n, uint32_t *cap, uint64_t v)
{
	if (*n == *cap) {
		uint32_t c = *cap ? *cap * 2 : 4;
		uint64_t *a = realloc(*arr, c * sizeof(*a));
		if (a == NULL)
			return -1;
		*arr = a;
		*cap = c;
	}
	(*arr)[(*n)++] = v;
	return 0;
}

static bool del_u64(uint64_t *arr, uint32_t *n, uint64_t v)
{
	for (uint32_t i = 0; i < *n; i++) {
		if (arr[i] == v) {
			arr[i] = arr[--*n];
			return true;
		}
	}
	return false;
}

static bool has_u64(const uint64_t *arr, uint32_t n, uint64_t v)
{
	for (uint32_t i = 0; i < n; i++)
		if (arr[i] == v)
			return true;
	return false;
}

static int add_ref(struct pidref **arr, uint32_t *n, uint32_t *cap, uint64_t ref,
                   uint64_t pid)
{
	if (*n == *cap) {
		uint32_t c = *cap ? *cap * 2 : 4;
		struct pidref *a = realloc(*arr, c * sizeof(*a));
		if (a == NULL)
			return -1;
		*arr = a;
		*cap = c;
	}
	(*arr)[(*n)++] = (struct pidref){ ref, pid };
	return 0;
}

/* Remove ref; returns the pid it was for, or 0. */
static uint64_t del_ref(struct pidref *arr, uint32_t *n, uint64_t ref)
{
	for (uint32_t i = 0; i < *n; i++) {
		if (arr[i].ref == ref) {
			uint64_t pid = arr[i].pid;
			arr[i] = arr[--*n];
			return pid;
		}
	}
	return 0;
}

/* ---- delivery ---- */

/* Push m into pid's mailbox and wake it. False (m not consumed) if pid is
 * not alive. */
static bool deliver(struct rt *rt, uint64_t pid, struct msg *m)
{
	struct proc *p = ptable_get(&rt->ptable, pid);
	if (p == NULL || atomic_load_explicit(&p->pid, memory_order_acquire) != pid)
		return false;
	m->to = pid;
	if (!mbox_push(&p->mbox, m))
		return false;
	sched_wake(p);
	return true;
}

/* m was addressed to a process that is gone (reason r): answer link and
 * monitor requests as that process, drop the rest. */
static void bounce(struct rt *rt, struct msg *m, const struct reason *r)
{
	struct msg *reply = NULL;
	if (m->kind == SIG_LINK)
		reply = msg_reason(SIG_EXIT_LINK, m->from, m->to, 0, r);
	else if (m->kind == SIG_MONITOR)
		reply = msg_reason(MSG_DOWN, m->from, m->to, m->ref, r);
	uint64_t to = m->from;
	msg_free(m);
	if (reply != NULL && !deliver(rt, to, reply))
		msg_free(reply);
}

/* Decide to end self with reason r (the first decision wins); the caller
 * unwinds when it is safe (die_if_doomed). */
static void doom(struct proc *self, const struct reason *r)
{
	if (!self->reason_set) {
		self->reason = *r;
		self->reason_set = true;
	}
}

/* An exit signal with reason r from `from` reaches self (owner). Returns
 * true if it dooms the process. */
static bool apply_exit(struct proc *self, uint64_t from, const struct reason *r)
{
	if (self->reason_set)
		return true;        /* already doomed: later signals change nothing */
	if (self->trap_exit) {
		struct msg *m = msg_reason(MSG_EXIT, atomic_load(&self->pid), from, 0, r);
		if (m != NULL)
			mbox_append(&self->mbox, m);
		return false;
	}
	if (r->kind == WISP_EXIT_NORMAL)
		return false;
	doom(self, r);
	return true;
}

/* (engine_current(), not self->inst: during instantiation the instance
 * exists but self->inst is not set yet.) */
static void die_if_doomed(struct proc *self)
{
	if (self->reason_set)
		engine_exit(engine_current(), 0);
}

/* Apply one item taken from the mailbox (owner). A signal that ends the
 * process only dooms it (see drain). */
static void handle(struct proc *self, struct msg *m)
{
	uint64_t me = atomic_load_explicit(&self->pid, memory_order_relaxed);
	struct reason r;
	if (m->to != me) {
		bounce(self->rt, m, &reason_noproc);
		return;
	}
	switch (m->kind) {
	case MSG_DATA:
	case MSG_EXIT:
		mbox_append(&self->mbox, m);
		return;
	case MSG_DOWN:
		/* Only for a monitor we still hold (demonitor drops late ones). */
		if (del_ref(self->watching, &self->nwatching, m->tag) != 0)
			mbox_append(&self->mbox, m);
		else
			msg_free(m);
		return;
	case SIG_LINK:
		if (!has_u64(self->links, self->nlinks, m->from))
			add_u64(&self->links, &self->nlinks, &self->caplinks, m->from);
		break;
	case SIG_UNLINK:
		del_u64(self->links, &self->nlinks, m->from);
		break;
	case SIG_MONITOR:
		add_ref(&self->watchers, &self->nwatchers, &self->capwatchers, m->ref, m->from);
		break;
	case SIG_DEMONITOR:
		del_ref(self->watchers, &self->nwatchers, m->ref);
		break;
	case SIG_EXIT_LINK:
		if (!del_u64(self->links, &self->nlinks, m->from))
			break;      /* unlinked meanwhile */
		/* a link's exit signal acts as exit_signal's: */
		__attribute__((fallthrough));
	case SIG_EXIT:
		msg_get_reason(m, &r);
		apply_exit(self, m->from, &r);
		break;
	case SIG_KILL:
		doom(self, &reason_killed);
		break;
	}
	msg_free(m);
}

/* Take everything from the mailbox; apply signals, queue messages. If a
 * signal ends the process, the rest of the batch is applied first (so no
 * message is lost and no link request goes unanswered), then it unwinds. */
static void drain(struct proc *self)
{
	struct msg *m = mbox_take_all(&self->mbox);
	while (m != NULL) {
		struct msg *next = m->next;
		handle(self, m);
		m = next;
	}
	die_if_doomed(self);
}

/* End self now with reason r: unwind out of guest code; proc_fiber_main
 * finishes. Only where no batch of signals is in hand. */
static _Noreturn void die(struct proc *self, const struct reason *r)
{
	doom(self, r);
	engine_exit(engine_current(), 0);
}

/* ---- spawning ---- */

static void reset(struct proc *p, struct rt *rt)
{
	mbox_init(&p->mbox);
	atomic_store(&p->exiting, false);
	atomic_store(&p->nnames, 0);
	p->rt = rt;
	p->inst = NULL;
	memset(&p->host, 0, sizeof(p->host));
	p->is_main = false;
	p->trap_exit = false;
	p->nlinks = p->nwatchers = p->nwatching = 0;
	p->reason_set = false;
	memset(&p->reason, 0, sizeof(p->reason));
	p->arg = NULL;
	p->arg_len = 0;
	p->cpu_used = 0;
	p->pending_wake = false;
}

/* A new process in a fresh slot, not yet published (pid unset). */
static struct proc *proc_new(struct rt *rt, int *err)
{
	struct proc *p = ptable_alloc(&rt->ptable);
	if (p == NULL) {
		*err = WISP_ELIMIT;
		return NULL;
	}
	reset(p, rt);
	p->stack = stack_alloc(&rt->stacks);
	if (p->stack == NULL) {
		ptable_release(&rt->ptable, p);
		*err = WISP_ENOMEM;
		return NULL;
	}
	fiber_init(&p->fiber, p->stack, rt->stacks.stack_size, proc_fiber_main, p);
	return p;
}

static uint64_t make_pid(const struct proc *p)
{
	return (uint64_t)p->gen << 32 | p->index;
}

/* Make a new process visible: from now on its pid finds it. */
static void publish(struct rt *rt, struct proc *p)
{
	p->state = PS_RUNNABLE;
	atomic_fetch_add(&rt->live, 1);
	atomic_store_explicit(&p->pid, make_pid(p), memory_order_release);
}

int proc_spawn(struct proc *parent, uint32_t fn, const void *arg, uint32_t len,
               uint32_t flags, struct caps *caps, struct wisp_spawned *out)
{
	struct rt *rt = parent->rt;
	if (flags & ~(uint32_t)(WISP_SPAWN_LINK | WISP_SPAWN_MONITOR))
		return WISP_EINVAL;
	if (!engine_module_has_spawn_entry(rt->mod))
		return WISP_EINVAL;
	uint64_t me0 = atomic_load(&parent->pid);
	if (!parent->caps->may_spawn) {
		caps_log_denied(parent->caps, me0, "spawn: no spawn capability (--max-processes 0)");
		return WISP_EPERM;
	}
	if (caps == NULL)
		caps = parent->caps;
	if (!caps_charge(caps)) {
		caps_log_denied(parent->caps, me0, "spawn: process limit reached");
		return WISP_ELIMIT;
	}
	int err;
	struct proc *p = proc_new(rt, &err);
	if (p == NULL) {
		caps_uncharge(caps);
		return err;
	}
	caps_ref(caps);
	p->caps = caps;
	uint64_t child = make_pid(p), me = atomic_load(&parent->pid);
	p->entry_fn = fn;
	p->arg_len = len;
	p->arg = malloc(len ? len : 1);
	if (p->arg == NULL)
		goto nomem;
	if (len)
		memcpy(p->arg, arg, len);
	out->pid = child;
	out->monitor = 0;
	if (flags & WISP_SPAWN_LINK) {
		if (add_u64(&p->links, &p->nlinks, &p->caplinks, me) != 0 ||
		    add_u64(&parent->links, &parent->nlinks, &parent->caplinks, child) != 0)
			goto nomem;
	}
	if (flags & WISP_SPAWN_MONITOR) {
		uint64_t ref = rt_new_ref(rt);
		if (add_ref(&p->watchers, &p->nwatchers, &p->capwatchers, ref, me) != 0 ||
		    add_ref(&parent->watching, &parent->nwatching, &parent->capwatching,
		            ref, child) != 0)
			goto nomem;
		out->monitor = ref;
	}
	publish(rt, p);
	sched_enqueue_spawned(rt, p);
	return WISP_OK;
nomem:
	del_u64(parent->links, &parent->nlinks, child);
	caps_uncharge(p->caps);
	caps_unref(p->caps);
	p->caps = NULL;
	free(p->arg);
	p->arg = NULL;
	stack_free(&rt->stacks, p->stack);
	fiber_destroy(&p->fiber);
	ptable_release(&rt->ptable, p);
	return WISP_ENOMEM;
}

/* ---- running ---- */

static const struct reason reason_cpu = { WISP_EXIT_LIMIT, 0, "cpu limit" };

static void slice_end(void *host)
{
	struct proc *p = ((struct host_proc *)host)->proc;
	/* Charge the slice: the reductions used, or a whole slice if a tick
	 * preempted code that does not loop. */
	if (p->inst != NULL && p->caps->max_cpu != UINT64_MAX) {
		int64_t left = engine_instance_vmctx(p->inst)->fuel;
		int64_t budget = p->rt->cfg.reductions;
		p->cpu_used += (uint64_t)(left > 0 && left < budget ? budget - left : budget);
		if (p->cpu_used > p->caps->max_cpu) {
			caps_log_denied(p->caps, atomic_load(&p->pid), "cpu limit of %llu reductions",
			                (unsigned long long)p->caps->max_cpu);
			die(p, &reason_cpu);
		}
	}
	if (atomic_load_explicit(&p->mbox.head, memory_order_relaxed) != NULL)
		drain(p);
	sched_switch_out(p, Y_YIELD);
}

static void result_reason(const struct engine_result *res, struct reason *r)
{
	memset(r, 0, sizeof(*r));
	switch (res->outcome) {
	case ENGINE_RETURNED:
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

static void send_reason(struct rt *rt, uint32_t kind, uint64_t to, uint64_t from,
                        uint64_t tag, const struct reason *r)
{
	struct msg *m = msg_reason(kind, to, from, tag, r);
	if (m != NULL && !deliver(rt, to, m))
		msg_free(m);
}

/* The end of a process, on its fiber: tell everyone, free the instance. */
static void proc_finish(struct proc *p, const struct engine_result *res)
{
	struct rt *rt = p->rt;
	uint64_t me = atomic_load(&p->pid);
	if (!p->reason_set)
		result_reason(res, &p->reason);
	/* Under the registry's lock, so a concurrent register either sees
	 * `exiting` or is seen by the forget (no name outlives its owner). */
	registry_exit(&rt->registry, p, me);

	/* Close the mailbox: late link/monitor requests get our reason. */
	struct msg *m = mbox_close(&p->mbox);
	while (m != NULL) {
		struct msg *next = m->next;
		if (m->to != me) {
			bounce(rt, m, &reason_noproc);
		} else if (m->kind == SIG_LINK) {
			if (!has_u64(p->links, p->nlinks, m->from))
				add_u64(&p->links, &p->nlinks, &p->caplinks, m->from);
			msg_free(m);
		} else if (m->kind == SIG_UNLINK) {
			del_u64(p->links, &p->nlinks, m->from);
			msg_free(m);
		} else if (m->kind == SIG_MONITOR) {
			add_ref(&p->watchers, &p->nwatchers, &p->capwatchers, m->ref, m->from);
			msg_free(m);
		} else if (m->kind == SIG_DEMONITOR) {
			del_ref(p->watchers, &p->nwatchers, m->ref);
			msg_free(m);
		} else {
			msg_free(m);
		}
		m = next;
	}
	mbox_clear(&p->mbox);
	atomic_store_explicit(&p->pid, 0, memory_order_release);

	for (uint32_t i = 0; i < p->nlinks; i++)
		send_reason(rt, SIG_EXIT_LINK, p->links[i], me, 0, &p->reason);
	for (uint32_t i = 0; i < p->nwatchers; i++)
		send_reason(rt, MSG_DOWN, p->watchers[i].pid, me, p->watchers[i].ref, &p->reason);
	for (uint32_t i = 0; i < p->nwatching; i++) {
		struct msg *d = msg_new(SIG_DEMONITOR, 0, me, 0, p->watching[i].ref, NULL, 0);
		if (d && !deliver(rt, p->watching[i].pid, d))
			msg_free(d);
	}
	p->nlinks = p->nwatchers = p->nwatching = 0;

	for (int i = 0; i < 4; i++) {      /* host calls a signal unwound */
		free(p->host.scratch[i]);
		p->host.scratch[i] = NULL;
	}
	sched_forget_instance(p->sched);
	engine_instance_free(p->inst);
	p->inst = NULL;
	wasi_ctx_free(p->host.wasi);
	p->host.wasi = NULL;
	free(p->arg);
	p->arg = NULL;

	if (p->is_main) {
		pthread_mutex_lock(&rt->done_lock);
		rt->main_res = *res;
		rt->main_reason = p->reason;
		rt->done = true;
		pthread_cond_broadcast(&rt->done_cond);
		pthread_mutex_unlock(&rt->done_lock);
	}
}

void proc_fiber_main(void *arg)
{
	struct proc *p = arg;
	struct rt *rt = p->rt;
	struct engine_result res;
	memset(&res, 0, sizeof(res));
	struct engine_limits lim = rt->limits;
	lim.stack_lo = (uintptr_t)p->stack;
	lim.stack_hi = (uintptr_t)p->stack + rt->stacks.stack_size;
	lim.slice_end = slice_end;
	p->host.proc = p;
	p->host.caps = p->caps;  /* WASI state is made from it on first use */
	if (p->caps->max_memory != UINT64_MAX)
		lim.max_memory = p->caps->max_memory;
	{
		p->inst = engine_instance_new(rt->mod, &p->host, &lim, &res);
		if (p->inst != NULL) {
			p->host.inst = p->inst;
			p->host.mem = engine_instance_memory(p->inst);
			/* From now on the tick can preempt it (see sched_tick). */
			sched_publish_instance(p->sched, engine_instance_vmctx(p->inst));
			if (p->is_main)
				engine_instance_run_start(p->inst, &res);
			else
				engine_instance_run_spawn_entry(p->inst, p->entry_fn, p->arg_len, &res);
		} else if (p->reason_set) {
			/* killed while instantiating */
		}
	}
	proc_finish(p, &res);
	sched_switch_out(p, Y_EXIT);
	abort();   /* a finished process is never resumed */
}

void proc_release(struct proc *p)
{
	if (p->caps != NULL && !p->is_main)
		caps_uncharge(p->caps);
	caps_unref(p->caps);
	p->caps = NULL;
	for (int i = 0; i < 16; i++) {
		caps_unref(p->drafts[i]);
		p->drafts[i] = NULL;
	}
	free(p->links);
	free(p->watchers);
	free(p->watching);
	p->links = NULL;
	p->watchers = p->watching = NULL;
	p->caplinks = p->capwatchers = p->capwatching = 0;
	fiber_destroy(&p->fiber);
	stack_free(&p->rt->stacks, p->stack);
	p->stack = NULL;
}

void proc_reap(struct proc *p)
{
	struct rt *rt = p->rt;
	proc_release(p);
	p->state = PS_FREE;
	ptable_release(&rt->ptable, p);
	atomic_fetch_sub(&rt->live, 1);
}

/* ---- messages ---- */

int proc_send(struct proc *self, uint64_t to, uint64_t tag, uint64_t ref,
              const void *data, uint32_t len)
{
	struct rt *rt = self->rt;
	if (len > proc_max_message(self))
		return WISP_ETOOBIG;
	struct msg *m = msg_new(MSG_DATA, to, atomic_load(&self->pid), tag, ref, data, len);
	if (m == NULL)
		return WISP_ENOMEM;
	if (!deliver(rt, to, m))
		msg_free(m);      /* to a dead process: dropped, as in Erlang */
	return WISP_OK;
}

int proc_send_fd(struct proc *self, uint64_t to, uint64_t tag, int host_fd)
{
	uint32_t placeholder = UINT32_MAX;
	struct msg *m = msg_new(MSG_DATA, to, atomic_load(&self->pid), tag, 0,
	                        &placeholder, 4);
	if (m == NULL) {
		close(host_fd);
		return WISP_ENOMEM;
	}
	m->fd = host_fd;
	if (!deliver(self->rt, to, m))
		msg_free(m);      /* dead addressee: the socket closes */
	return WISP_OK;
}

static bool matches(const struct msg *m, const uint64_t *tags, uint32_t ntags)
{
	if (ntags == 0)
		return true;
	for (uint32_t i = 0; i < ntags; i++) {
		uint64_t t;
		memcpy(&t, &tags[i], 8);    /* tags may sit unaligned in guest memory */
		if (m->tag == t)
			return true;
	}
	return false;
}

void proc_park(struct proc *self)
{
	atomic_fetch_add(&self->wait_seq, 1);
	sched_switch_out(self, Y_PARK);
}

/* Park until woken (a message, a signal, or the deadline). */
/* Make sure a timer wakes self no later than `deadline`. Its own embedded
 * timer if that is free, or already queued for no later; otherwise (rare: a
 * shorter wait while a longer one is queued) a separate one-shot timer.
 * Wake-ups from timers only check that the process is the same: a spurious
 * one is re-checked by every waiting loop. 0, or -1 if no timer could be
 * armed. */
static int arm_wake(struct proc *self, uint64_t deadline)
{
	_Static_assert(sizeof(struct timer) <= sizeof(self->wake_timer), "wake_timer");
	struct timer *t = (struct timer *)(void *)self->wake_timer;
	if (!atomic_load(&self->wake_queued)) {
		memset(t, 0, sizeof(*t));
		t->deadline = deadline;
		t->kind = T_WAKE;
		t->proc = self;
		t->pid = atomic_load(&self->pid);
		t->embedded = true;
		atomic_store(&self->wake_queued, true);
		if (sched_add_timer(t) != 0) {
			atomic_store(&self->wake_queued, false);
			return -1;
		}
		return 0;
	}
	if (t->deadline <= deadline && t->pid == atomic_load(&self->pid))
		return 0;
	struct timer *x = calloc(1, sizeof(*x));
	if (x == NULL)
		return -1;
	x->deadline = deadline;
	x->kind = T_WAKE;
	x->proc = self;
	x->pid = atomic_load(&self->pid);
	if (sched_add_timer(x) != 0) {
		free(x);
		return -1;
	}
	return 0;
}

/* Park until woken (a message, a signal, or the deadline). */
static void wait_until(struct proc *self, uint64_t deadline)
{
	atomic_fetch_add(&self->wait_seq, 1);
	if (deadline != UINT64_MAX && arm_wake(self, deadline) != 0) {
		/* Cannot arm a timer: poll instead of hanging. */
		sched_switch_out(self, Y_YIELD);
		return;
	}
	sched_switch_out(self, Y_PARK);
}

/* ---- waiting for file descriptors ---- */

void proc_io_ready(uint64_t token, void *arg)
{
	struct rt *rt = arg;
	struct proc *p = ptable_get(&rt->ptable, (uint64_t)1 << 32 | (token >> 32));
	if (p != NULL && (uint32_t)atomic_load(&p->wait_seq) == (uint32_t)token)
		sched_wake(p);
}

int proc_wait_fd(struct proc *self, int fd, uint32_t events, int64_t timeout_ns)
{
	return proc_wait_fds(self, &fd, &events, 1, timeout_ns);
}

int proc_wait_fds(struct proc *self, const int *fds, const uint32_t *events,
                  uint32_t n, int64_t timeout_ns)
{
	struct rt *rt = self->rt;
	uint64_t deadline = timeout_ns < 0 ? UINT64_MAX : rt_now_ns() + (uint64_t)timeout_ns;
	uint64_t seq = atomic_fetch_add(&self->wait_seq, 1) + 1;
	for (uint32_t i = 0; i < n; i++) {
		int rc = reactor_arm(&rt->reactor, fds[i], events[i],
		                     (uint64_t)self->index << 32 | (uint32_t)seq);
		if (rc != 0)
			return rc;    /* e.g. -EPERM: a regular file, always ready */
	}
	if (deadline != UINT64_MAX && arm_wake(self, deadline) != 0)
		return -ENOMEM;
	atomic_fetch_add(&rt->io_waiting, 1);
	sched_need_poller(rt);
	sched_switch_out(self, Y_PARK);
	atomic_fetch_sub(&rt->io_waiting, 1);
	/* A signal may have woken us (a kill): apply it before retrying. */
	if (atomic_load_explicit(&self->mbox.head, memory_order_relaxed) != NULL)
		drain(self);
	if (deadline != UINT64_MAX && rt_now_ns() >= deadline)
		return -ETIMEDOUT;
	return 0;
}

int proc_receive(struct proc *self, const uint64_t *tags, uint32_t ntags,
                 int64_t timeout_ns, struct msg **out)
{
	uint64_t deadline = timeout_ns < 0 ? UINT64_MAX : rt_now_ns() + (uint64_t)timeout_ns;
	for (;;) {
		drain(self);
		for (struct msg *m = self->mbox.first; m; m = m->next) {
			if (matches(m, tags, ntags)) {
				*out = m;
				return WISP_OK;
			}
		}
		if (timeout_ns == 0 || (deadline != UINT64_MAX && rt_now_ns() >= deadline))
			return WISP_ETIMEDOUT;
		wait_until(self, deadline);
	}
}

int proc_receive_fd(struct proc *self, const uint64_t *tags, uint32_t ntags,
                    int fd, int64_t timeout_ns, struct msg **out)
{
	uint64_t deadline = timeout_ns < 0 ? UINT64_MAX : rt_now_ns() + (uint64_t)timeout_ns;
	for (;;) {
		drain(self);
		for (struct msg *m = self->mbox.first; m; m = m->next) {
			if (matches(m, tags, ntags)) {
				*out = m;
				return WISP_OK;
			}
		}
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		if (poll(&pf, 1, 0) > 0)
			return WISP_EREADY;
		uint64_t now = rt_now_ns();
		if (timeout_ns == 0 || (deadline != UINT64_MAX && now >= deadline))
			return WISP_ETIMEDOUT;
		uint32_t ev = REACTOR_READ;
		int rc = proc_wait_fds(self, &fd, &ev, 1,
		                       deadline == UINT64_MAX ? -1 : (int64_t)(deadline - now));
		if (rc != 0 && rc != -ETIMEDOUT)
			return WISP_EINVAL;   /* an fd the reactor cannot watch */
	}
}

void proc_take(struct proc *self, struct msg *m)
{
	struct msg *prev = NULL;
	for (struct msg *q = self->mbox.first; q; prev = q, q = q->next) {
		if (q == m) {
			mbox_remove(&self->mbox, prev, m);
			return;
		}
	}
}

int proc_request(struct proc *self, uint64_t to, uint64_t tag, const void *data,
                 uint32_t len, int64_t timeout_ns, struct msg **out)
{
	struct rt *rt = self->rt;
	if (len > proc_max_message(self))
		return WISP_ETOOBIG;
	if (to == atomic_load(&self->pid))
		return WISP_EINVAL;     /* nobody would ever answer */
	uint64_t mref;
	int rc = proc_monitor(self, to, &mref);
	if (rc != WISP_OK)
		return rc;
	uint64_t ref = rt_new_ref(rt);
	struct msg *m = msg_new(MSG_DATA, to, atomic_load(&self->pid), tag, ref, data, len);
	if (m == NULL) {
		proc_demonitor(self, mref);
		return WISP_ENOMEM;
	}
	if (!deliver(rt, to, m))
		msg_free(m);      /* the monitor's NOPROC DOWN answers */
	uint64_t tags[2] = { ref, mref };
	struct msg *r;
	rc = proc_receive(self, tags, 2, timeout_ns, &r);
	if (rc != WISP_OK) {
		proc_demonitor(self, mref);
		return rc;
	}
	if (r->tag == mref && r->kind == MSG_DOWN) {
		proc_take(self, r);
		msg_free(r);
		return WISP_ENOPROC;
	}
	proc_demonitor(self, mref);
	*out = r;
	return WISP_OK;
}

/* ---- links and monitors ---- */

int proc_link(struct proc *self, uint64_t pid)
{
	uint64_t me = atomic_load(&self->pid);
	if (pid == me || has_u64(self->links, self->nlinks, pid))
		return WISP_OK;
	if (add_u64(&self->links, &self->nlinks, &self->caplinks, pid) != 0)
		return WISP_ENOMEM;
	struct msg *m = msg_new(SIG_LINK, pid, me, 0, 0, NULL, 0);
	if (m == NULL) {
		del_u64(self->links, &self->nlinks, pid);
		return WISP_ENOMEM;
	}
	if (!deliver(self->rt, pid, m)) {
		msg_free(m);
		del_u64(self->links, &self->nlinks, pid);
		apply_exit(self, pid, &reason_noproc);
		die_if_doomed(self);
		return WISP_OK;
	}
	return WISP_OK;
}

int proc_unlink(struct proc *self, uint64_t pid)
{
	if (!del_u64(self->links, &self->nlinks, pid))
		return WISP_OK;
	struct msg *m = msg_new(SIG_UNLINK, pid, atomic_load(&self->pid), 0, 0, NULL, 0);
	if (m != NULL && !deliver(self->rt, pid, m))
		msg_free(m);
	return WISP_OK;
}

int proc_monitor(struct proc *self, uint64_t pid, uint64_t *ref)
{
	struct rt *rt = self->rt;
	uint64_t me = atomic_load(&self->pid), r = rt_new_ref(rt);
	if (add_ref(&self->watching, &self->nwatching, &self->capwatching, r, pid) != 0)
		return WISP_ENOMEM;
	*ref = r;
	struct msg *m = msg_new(SIG_MONITOR, pid, me, 0, r, NULL, 0);
	if (m == NULL) {
		del_ref(self->watching, &self->nwatching, r);
		return WISP_ENOMEM;
	}
	if (pid == me || !deliver(rt, pid, m)) {
		/* Monitoring oneself or a dead process: DOWN NOPROC at once (a
		 * process cannot see its own end). */
		msg_free(m);
		struct msg *d = msg_reason(MSG_DOWN, me, pid, r, &reason_noproc);
		if (d == NULL)
			return WISP_ENOMEM;
		del_ref(self->watching, &self->nwatching, r);
		mbox_append(&self->mbox, d);
	}
	return WISP_OK;
}

int proc_demonitor(struct proc *self, uint64_t ref)
{
	uint64_t pid = del_ref(self->watching, &self->nwatching, ref);
	/* Flush a DOWN of it already queued. */
	drain(self);
	struct msg *prev = NULL;
	for (struct msg *m = self->mbox.first; m; prev = m, m = m->next) {
		if (m->kind == MSG_DOWN && m->tag == ref) {
			mbox_remove(&self->mbox, prev, m);
			msg_free(m);
			return WISP_OK;
		}
	}
	if (pid == 0)
		return WISP_ENOTFOUND;
	struct msg *m = msg_new(SIG_DEMONITOR, pid, atomic_load(&self->pid), 0, ref, NULL, 0);
	if (m != NULL && !deliver(self->rt, pid, m))
		msg_free(m);
	return WISP_OK;
}

int proc_kill(struct proc *self, uint64_t pid)
{
	if (pid == atomic_load(&self->pid))
		die(self, &reason_killed);
	struct msg *m = msg_new(SIG_KILL, pid, atomic_load(&self->pid), 0, 0, NULL, 0);
	if (m == NULL)
		return WISP_ENOMEM;
	if (!deliver(self->rt, pid, m))
		msg_free(m);
	return WISP_OK;
}

int proc_exit_signal(struct proc *self, uint64_t pid, int32_t code)
{
	struct reason r = { code == 0 ? WISP_EXIT_NORMAL : WISP_EXIT_CODE, code, "" };
	uint64_t me = atomic_load(&self->pid);
	if (pid == me) {
		/* Erlang: exit(self(), normal) ends a non-trapping process too. */
		if (!self->trap_exit)
			die(self, &r);
		apply_exit(self, me, &r);
		die_if_doomed(self);
		return WISP_OK;
	}
	struct msg *m = msg_reason(SIG_EXIT, pid, me, 0, &r);
	if (m == NULL)
		return WISP_ENOMEM;
	if (!deliver(self->rt, pid, m))
		msg_free(m);
	return WISP_OK;
}

void proc_yield(struct proc *self)
{
	sched_switch_out(self, Y_YIELD);
	if (atomic_load_explicit(&self->mbox.head, memory_order_relaxed) != NULL)
		drain(self);
}

/* ---- timers ---- */

void proc_sleep(struct proc *self, int64_t ns)
{
	uint64_t deadline = rt_now_ns() + (uint64_t)(ns > 0 ? ns : 0);
	for (;;) {
		drain(self);
		if (rt_now_ns() >= deadline)
			return;
		wait_until(self, deadline);
	}
}

static int timer_map_put(struct rt *rt, struct timer *t)
{
	pthread_mutex_lock(&rt->timer_lock);
	if ((rt->timer_count + 1) * 2 > rt->timer_cap) {
		uint32_t cap = rt->timer_cap ? rt->timer_cap * 2 : 64;
		struct timer **n = calloc(cap, sizeof(*n));
		if (n == NULL) {
			pthread_mutex_unlock(&rt->timer_lock);
			return -1;
		}
		for (uint32_t i = 0; i < rt->timer_cap; i++) {
			struct timer *o = rt->timer_ids[i];
			if (o == NULL || o == (struct timer *)1)
				continue;
			uint32_t j = (uint32_t)o->id & (cap - 1);
			while (n[j])
				j = (j + 1) & (cap - 1);
			n[j] = o;
		}
		free(rt->timer_ids);
		rt->timer_ids = n;
		rt->timer_cap = cap;
	}
	uint32_t j = (uint32_t)t->id & (rt->timer_cap - 1);
	while (rt->timer_ids[j] != NULL && rt->timer_ids[j] != (struct timer *)1)
		j = (j + 1) & (rt->timer_cap - 1);
	rt->timer_ids[j] = t;
	rt->timer_count++;
	pthread_mutex_unlock(&rt->timer_lock);
	return 0;
}

/* Under timer_lock: the slot of id, or -1. */
static int64_t timer_map_find(struct rt *rt, uint64_t id)
{
	if (rt->timer_cap == 0)
		return -1;
	uint32_t j = (uint32_t)id & (rt->timer_cap - 1);
	for (uint32_t n = 0; n < rt->timer_cap; n++, j = (j + 1) & (rt->timer_cap - 1)) {
		struct timer *t = rt->timer_ids[j];
		if (t == NULL)
			return -1;
		if (t != (struct timer *)1 && t->id == id)
			return j;
	}
	return -1;
}

static void timer_map_del(struct rt *rt, uint64_t id)
{
	pthread_mutex_lock(&rt->timer_lock);
	int64_t j = timer_map_find(rt, id);
	if (j >= 0) {
		/* A tombstone keeps probe chains intact. */
		rt->timer_ids[j] = (struct timer *)1;
		rt->timer_count--;
	}
	pthread_mutex_unlock(&rt->timer_lock);
}

int proc_send_after(struct proc *self, uint64_t to, uint64_t tag, const void *data,
                    uint32_t len, int64_t delay_ns, uint64_t *timer)
{
	struct rt *rt = self->rt;
	if (len > proc_max_message(self))
		return WISP_ETOOBIG;
	struct timer *t = calloc(1, sizeof(*t));
	struct msg *m = msg_new(MSG_DATA, to, atomic_load(&self->pid), tag, 0, data, len);
	if (t == NULL || m == NULL) {
		free(t);
		msg_free(m);
		return WISP_ENOMEM;
	}
	t->deadline = rt_now_ns() + (uint64_t)(delay_ns > 0 ? delay_ns : 0);
	t->kind = T_SEND;
	t->id = rt_new_ref(rt);
	t->msg = m;
	t->pid = to;
	if (timer_map_put(rt, t) != 0 || sched_add_timer(t) != 0) {
		timer_map_del(rt, t->id);
		free(t);
		msg_free(m);
		return WISP_ENOMEM;
	}
	*timer = t->id;
	return WISP_OK;
}

int proc_cancel_timer(struct proc *self, uint64_t id)
{
	struct rt *rt = self->rt;
	int rc = WISP_ENOTFOUND;
	pthread_mutex_lock(&rt->timer_lock);
	int64_t j = timer_map_find(rt, id);
	if (j >= 0) {
		uint8_t expect = TS_PENDING;
		if (atomic_compare_exchange_strong(&rt->timer_ids[j]->state, &expect,
		                                   TS_CANCELLED))
			rc = WISP_OK;
	}
	pthread_mutex_unlock(&rt->timer_lock);
	return rc;
}

void proc_fire_timer(struct rt *rt, struct timer *t)
{
	if (t->kind == T_WAKE) {
		struct proc *p = t->proc;
		bool same = atomic_load(&p->pid) == t->pid;
		if (t->embedded)
			atomic_store(&p->wake_queued, false);   /* before the wake: see arm_wake */
		else
			free(t);
		if (same)
			sched_wake(p);
		return;
	}
	/* T_SEND: leave the id map first, so cancel can no longer see it. */
	timer_map_del(rt, t->id);
	uint8_t expect = TS_PENDING;
	if (atomic_compare_exchange_strong(&t->state, &expect, TS_FIRED) &&
	    deliver(rt, t->pid, t->msg))
		t->msg = NULL;
	msg_free(t->msg);
	free(t);
}

/* ---- registry ---- */

int proc_register(struct proc *self, const char *name, uint32_t len, uint64_t pid)
{
	if (len == 0 || len > 255)
		return WISP_EINVAL;
	struct proc *p = ptable_get(&self->rt->ptable, pid);
	if (p == NULL)
		return WISP_ENOPROC;
	return registry_put(&self->rt->registry, name, len, p, pid);
}

int proc_unregister(struct proc *self, const char *name, uint32_t len)
{
	if (len == 0 || len > 255)
		return WISP_EINVAL;
	uint64_t pid;
	int rc = registry_del(&self->rt->registry, name, len, &pid);
	if (rc == WISP_OK) {
		struct proc *p = ptable_get(&self->rt->ptable, pid);
		if (p != NULL && atomic_load(&p->pid) == pid)
			atomic_fetch_sub(&p->nnames, 1);
	}
	return rc;
}

int proc_whereis(struct proc *self, const char *name, uint32_t len, uint64_t *pid)
{
	if (len == 0 || len > 255)
		return WISP_EINVAL;
	return registry_get(&self->rt->registry, name, len, pid);
}
