/*
 * signal.c — delivery, signals, links, monitors and exit signals.
 *
 * Signals (see proc.h for who touches what): link, unlink, monitor,
 * demonitor and exit signals are messages in the mailbox, applied by the
 * owner in proc_drain() — when it receives, when it waits, and at the end of
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
 *
 * A signal that ends the process only dooms it while a batch is applied:
 * the rest of the batch is applied first (no message is lost, no link
 * request goes unanswered), then it unwinds. The exit path applies the
 * bookkeeping signals still in the closed mailbox with the same code
 * (apply_bookkeeping), so a late link or monitor request gets our reason.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caps.h"
#include "proc_impl.h"

static const struct reason reason_noproc = { WISP_EXIT_NOPROC, 0, "" };
static const struct reason reason_killed = { WISP_EXIT_KILLED, 0, "" };

/* ---- delivery ---- */

/* Charge m to p's account (proc_charge_pushed): data is refusable,
 * signals are not — links and monitors must not lose theirs. */
bool proc_charge_pushed(struct rt *rt, struct proc *p, uint64_t pid, uint64_t bytes,
                        bool refusable)
{
	int64_t need = (int64_t)bytes;
	int64_t after = atomic_fetch_add(&p->usage, need) + need;
	if (after > 0 && (uint64_t)after > p->mem_limit) {
		if (atomic_exchange(&p->over_limit, pid) != pid)
			sched_wake(&rt->sg, &p->task);
		if (refusable) {
			atomic_fetch_sub(&p->usage, need);
			return false;
		}
	}
	return true;
}

static bool charge_msg(struct rt *rt, struct proc *p, struct msg *m)
{
	if (!proc_charge_pushed(rt, p, m->to, msg_bytes(m), m->kind == MSG_DATA))
		return false;
	msg_charged(p, m);
	return true;
}

/* proc_deliver; on failure *drop says why (a counter of drops). */
static bool push_to(struct rt *rt, uint64_t pid, struct msg *m, enum rt_counter *drop)
{
	*drop = RT_DROPPED_NOPROC;
	if (proc_pid_is_remote(pid)) {
		const struct proc_remote *r = rt->cfg.remote;
		m->to = pid;
		*drop = RT_DROPPED_NONODE;
		return r != NULL && r->deliver(r->ctx, m);
	}
	struct proc *p = ptable_get(&rt->ptable, pid);
	if (p == NULL || atomic_load_explicit(&p->pid, memory_order_acquire) != pid)
		return false;
	*drop = RT_DROPPED_LIMIT;
	if (m->kind == MSG_DATA && atomic_load_explicit(&p->over_limit, memory_order_relaxed) == pid)
		return false;   /* it is about to end: as if dead already */
	m->to = pid;
	if (!charge_msg(rt, p, m))
		return false;
	*drop = RT_DROPPED_NOPROC;
	/* Reused meanwhile (it died and the slot holds a newer process): the
	 * charge must not stay on the newcomer's account, where it could take
	 * the newcomer's own room until it drained the message. */
	if (atomic_load_explicit(&p->pid, memory_order_acquire) != pid) {
		msg_uncharge(m);
		return false;
	}
	if (!mbox_push(&p->mbox, m)) {
		msg_uncharge(m);
		return false;
	}
	sched_wake(&rt->sg, &p->task);
	return true;
}

bool proc_deliver(struct rt *rt, uint64_t pid, struct msg *m)
{
	enum rt_counter drop;
	if (push_to(rt, pid, m, &drop))
		return true;
	if (m->kind == MSG_DATA)
		proc_count(rt, drop, 1);   /* (every caller drops it) */
	return false;
}

/* Queue m, made by self for itself (an EXIT or DOWN it must see), on its
 * private list, charged like a message pushed at it: past its limit it
 * ends with LIMIT at its next drain. Without the charge, monitoring itself
 * or a dead pid in a loop grew the host without bound. */
static void append_own(struct proc *self, struct msg *m)
{
	if (proc_traced(self))
		proc_trace_receive(self, m);
	proc_charge_pushed(self->rt, self, atomic_load(&self->pid), msg_bytes(m), false);
	msg_charged(self, m);
	mbox_append(&self->mbox, m);
}

bool rt_deliver(struct rt *rt, uint64_t pid, struct msg *m)
{
	return !proc_pid_is_remote(pid) && proc_deliver(rt, pid, m);
}

/* Deliver m, or free it if the addressee is gone. */
static void deliver_or_drop(struct rt *rt, uint64_t to, struct msg *m)
{
	if (m != NULL && !proc_deliver(rt, to, m))
		msg_free(m);
}

/* Self sends signal m (or nothing: out of memory) to `to`. */
static void send_signal(struct proc *self, uint64_t to, struct msg *m)
{
	if (m != NULL && proc_traced(self))
		proc_trace_send(self, m);
	deliver_or_drop(self->rt, to, m);
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
	deliver_or_drop(rt, to, reply);
}

void rt_refuse(struct rt *rt, struct msg *m)
{
	bounce(rt, m, &reason_noproc);
}

/* ---- ending ---- */

/* Decide to end self with reason r (the first decision wins); the caller
 * unwinds when it is safe (die_if_doomed). */
static void doom(struct proc *self, const struct reason *r)
{
	if (self->doomed)
		return;
	self->doomed = true;
	self->doom_kind = r->kind;
	self->doom_code = r->code;
	/* Out of memory: the reason keeps its kind and loses its text. */
	size_t tl = reason_text_len(r);
	if (r->kind != WISP_EXIT_TERM && tl == sizeof(r->text))
		tl--;             /* a text keeps room for its NUL */
	self->doom_text = tl ? malloc(tl) : NULL;
	if (self->doom_text != NULL)
		memcpy(self->doom_text, r->text, tl);
	else if (r->kind == WISP_EXIT_TERM)
		self->doom_code = 0;
	self->doom_len = self->doom_text ? tl : 0;
}

/* An exit signal with reason r from `from` reaches self (owner). */
static void apply_exit(struct proc *self, uint64_t from, const struct reason *r)
{
	if (self->doomed)
		return;             /* already doomed: later signals change nothing */
	if (self->trap_exit) {
		struct msg *m = msg_reason(MSG_EXIT, atomic_load(&self->pid), from, 0, r);
		if (m != NULL)
			append_own(self, m);
		return;
	}
	if (r->kind != WISP_EXIT_NORMAL && !self->doomed) {
		doom(self, r);
		self->doom_from = from;   /* (a crash report names the sender) */
	}
}

/* A push found self over its memory limit (charge_msg): it ends with
 * LIMIT — also when that showed first as a failure of its own (its memory
 * could not be created or grown), since the pushes caused it. */
void proc_check_limit(struct proc *self)
{
	uint64_t over = atomic_load_explicit(&self->over_limit, memory_order_relaxed);
	if (over == 0)
		return;
	uint64_t me = atomic_load_explicit(&self->pid, memory_order_relaxed);
	if (over != me) {
		/* Meant for an older process of this slot: not ours. */
		atomic_compare_exchange_strong(&self->over_limit, &over, 0);
		return;
	}
	if (self->doomed)
		return;
	struct reason r = { WISP_EXIT_LIMIT, 0, "" };
	snprintf(r.text, sizeof(r.text),
	         "memory limit: %llu bytes (messages and timers waiting for it included)",
	         (unsigned long long)self->mem_limit);
	caps_log_denied(self->caps, atomic_load(&self->pid), "%s", r.text);
	doom(self, &r);
}

void proc_doom_limit(struct proc *p, const char *what)
{
	struct reason r = { WISP_EXIT_LIMIT, 0, "" };
	snprintf(r.text, sizeof(r.text), "%s", what);
	doom(p, &r);
}

/* (engine_current(), not self->inst: during instantiation the instance
 * exists but self->inst is not set yet.) */
static void die_if_doomed(struct proc *self)
{
	proc_check_limit(self);
	if (self->doomed)
		engine_exit_traced(engine_current(), 0);   /* (where it was: report.c) */
}

_Noreturn void proc_die(struct proc *self, const struct reason *r)
{
	doom(self, r);
	engine_exit_traced(engine_current(), 0);
}

_Noreturn void proc_panic(struct proc *self, const char *text, size_t len, bool quiet)
{
	struct reason r = { WISP_EXIT_TRAP, WISP_TRAP_PANIC, "" };
	size_t n = strnlen(text, len);
	if (n >= sizeof(r.text)) {
		/* Cut where a character starts, and say it was cut. */
		n = sizeof(r.text) - 4;
		while (n > 0 && ((unsigned char)text[n] & 0xc0) == 0x80)
			n--;
		memcpy(r.text + n, "...", 4);
	}
	memcpy(r.text, text, n);
	if (!self->doomed)
		self->panic_quiet = quiet;
	doom(self, &r);
	/* A trap of its own, as Rust's abort after the hook would have been
	 * (the embedder tells its own trap from a linked process's by that);
	 * the reason is the doom's. */
	engine_trap_msg(engine_current(), WASM_RT_TRAP_UNREACHABLE, "panic");
}

/* ---- applying what the mailbox holds ---- */

/* Link/unlink/monitor/demonitor requests, applied alike while alive and on
 * the exit path. True if m was one (and is consumed). If a set cannot grow
 * (out of memory), the request is answered at once as if we had ended with
 * reason LIMIT, so the requester knows; otherwise our exit signal or DOWN
 * would silently never come. */
static bool apply_bookkeeping(struct proc *self, struct msg *m)
{
	static const struct reason full = { WISP_EXIT_LIMIT, 0, "out of memory for links" };
	int rc = 0;
	switch (m->kind) {
	case SIG_LINK:
		if (!proc_set_has(&self->links, m->from))
			rc = proc_set_add(self, &self->links, m->from, m->from);
		break;
	case SIG_UNLINK:
		proc_set_del_ref(&self->links, m->from);
		break;
	case SIG_MONITOR:
		rc = proc_set_add(self, &self->watchers, m->ref, m->from);
		break;
	case SIG_DEMONITOR:
		proc_set_del_ref(&self->watchers, m->ref);
		break;
	default:
		return false;
	}
	if (rc != 0)
		bounce(self->rt, m, &full);
	else
		msg_free(m);
	return true;
}

/* Apply one item taken from the mailbox (owner). A signal that ends the
 * process only dooms it (see the top). */
static void handle(struct proc *self, struct msg *m)
{
	uint64_t me = atomic_load_explicit(&self->pid, memory_order_relaxed);
	if (m->to != me) {
		bounce(self->rt, m, &reason_noproc);
		return;
	}
	if (proc_traced(self))
		proc_trace_receive(self, m);
	if (apply_bookkeeping(self, m))
		return;
	struct reason r;
	switch (m->kind) {
	case MSG_DATA:
	case MSG_EXIT:
		mbox_append(&self->mbox, m);
		return;
	case MSG_DOWN:
		/* Only for a monitor we still hold (demonitor drops late ones). */
		if (proc_set_del_ref(&self->watching, m->tag) != 0) {
			mbox_append(&self->mbox, m);
			return;
		}
		break;
	case SIG_EXIT_LINK:
		if (proc_set_del_ref(&self->links, m->from) == 0)
			break;      /* unlinked meanwhile */
		/* a link's exit signal acts as exit_signal's: */
		__attribute__((fallthrough));
	case SIG_EXIT:
		msg_get_reason(m, &r);
		apply_exit(self, m->from, &r);
		break;
	case SIG_KILL:
		if (!self->doomed)
			self->killed_by = m->from;   /* (its crash report names it) */
		/* (A reason with it: a purge's, rt_exit_signal's.) */
		if (m->len > 0) {
			msg_get_reason(m, &r);
			doom(self, &r);
		} else {
			doom(self, &reason_killed);
		}
		break;
	case SIG_MARK:
		if (self->forwarding) {
			mbox_append(&self->mbox, m);
			return;
		}
		break;
	}
	msg_free(m);
}

void proc_drain(struct proc *self)
{
	struct msg *m = mbox_take_all(&self->mbox);
	while (m != NULL) {
		struct msg *next = m->next;
		handle(self, m);
		m = next;
	}
	die_if_doomed(self);
}

/* ---- the exit path ---- */

static void send_reason(struct rt *rt, uint32_t kind, uint64_t to, uint64_t from,
                        uint64_t tag, const struct reason *r)
{
	deliver_or_drop(rt, to, msg_reason(kind, to, from, tag, r));
}

void proc_notify_exit(struct proc *p, const struct reason *why)
{
	struct rt *rt = p->rt;
	uint64_t me = atomic_load(&p->pid);
	if (atomic_load_explicit(&p->code_watch, memory_order_relaxed) != 0)
		proc_code_watch(p, false);   /* (while its pid still names it) */
	/* Close the mailbox: late link/monitor requests get our reason. */
	struct msg *m = mbox_close(&p->mbox);
	while (m != NULL) {
		struct msg *next = m->next;
		if (m->to != me)
			bounce(rt, m, &reason_noproc);
		else if (!apply_bookkeeping(p, m))
			msg_free(m);
		m = next;
	}
	mbox_clear(&p->mbox);
	atomic_store_explicit(&p->pid, 0, memory_order_release);

	for (uint32_t i = 0; i < p->links.n; i++)
		send_reason(rt, SIG_EXIT_LINK, p->links.v[i].pid, me, 0, why);
	for (uint32_t i = 0; i < p->watchers.n; i++)
		send_reason(rt, MSG_DOWN, p->watchers.v[i].pid, me, p->watchers.v[i].ref, why);
	for (uint32_t i = 0; i < p->watching.n; i++)
		deliver_or_drop(rt, p->watching.v[i].pid,
		                msg_new(SIG_DEMONITOR, 0, me, 0, p->watching.v[i].ref, NULL, 0));
	p->links.n = p->watchers.n = p->watching.n = 0;
}

/* ---- links and monitors ---- */

int proc_link(struct proc *self, uint64_t pid)
{
	uint64_t me = atomic_load(&self->pid);
	if (pid == me || proc_set_has(&self->links, pid))
		return 0;
	if (proc_set_add(self, &self->links, pid, pid) != 0)
		return -ENOMEM;
	struct msg *m = msg_new(SIG_LINK, pid, me, 0, 0, NULL, 0);
	if (m == NULL) {
		proc_set_del_ref(&self->links, pid);
		return -ENOMEM;
	}
	if (proc_traced(self))
		proc_trace_send(self, m);
	if (!proc_deliver(self->rt, pid, m)) {
		msg_free(m);
		proc_set_del_ref(&self->links, pid);
		apply_exit(self, pid, &reason_noproc);
		die_if_doomed(self);
	}
	return 0;
}

int proc_unlink(struct proc *self, uint64_t pid)
{
	if (proc_set_del_ref(&self->links, pid) == 0)
		return 0;
	send_signal(self, pid, msg_new(SIG_UNLINK, pid, atomic_load(&self->pid), 0, 0, NULL, 0));
	return 0;
}

int proc_monitor(struct proc *self, uint64_t pid, uint64_t *ref)
{
	struct rt *rt = self->rt;
	uint64_t me = atomic_load(&self->pid), r = rt_new_ref(rt);
	if (proc_set_add(self, &self->watching, r, pid) != 0)
		return -ENOMEM;
	*ref = r;
	struct msg *m = msg_new(SIG_MONITOR, pid, me, 0, r, NULL, 0);
	if (m == NULL) {
		proc_set_del_ref(&self->watching, r);
		return -ENOMEM;
	}
	if (proc_traced(self))
		proc_trace_send(self, m);
	if (pid == me || !proc_deliver(rt, pid, m)) {
		/* Monitoring oneself or a dead process: DOWN NOPROC at once (a
		 * process cannot see its own end). */
		msg_free(m);
		proc_set_del_ref(&self->watching, r);
		struct msg *d = msg_reason(MSG_DOWN, me, pid, r, &reason_noproc);
		if (d == NULL)
			return -ENOMEM;
		append_own(self, d);
	}
	return 0;
}

int proc_demonitor(struct proc *self, uint64_t ref)
{
	uint64_t pid = proc_set_del_ref(&self->watching, ref);
	/* Flush a DOWN of it already queued. */
	proc_drain(self);
	struct msg *prev = NULL;
	for (struct msg *m = self->mbox.first; m; prev = m, m = m->next) {
		if (m->kind == MSG_DOWN && m->tag == ref) {
			mbox_remove(&self->mbox, prev, m);
			msg_free(m);
			return 0;
		}
	}
	if (pid == 0)
		return -ENOENT;
	send_signal(self, pid, msg_new(SIG_DEMONITOR, pid, atomic_load(&self->pid), 0, ref, NULL, 0));
	return 0;
}

int proc_kill(struct proc *self, uint64_t pid)
{
	if (pid == atomic_load(&self->pid)) {
		if (!self->doomed)
			self->killed_by = pid;
		proc_die(self, &reason_killed);
	}
	struct msg *m = msg_new(SIG_KILL, pid, atomic_load(&self->pid), 0, 0, NULL, 0);
	if (m == NULL)
		return -ENOMEM;
	send_signal(self, pid, m);
	return 0;
}

int proc_exit_signal(struct proc *self, uint64_t pid, int32_t code)
{
	struct reason r = { code == 0 ? WISP_EXIT_NORMAL : WISP_EXIT_CODE, code, "" };
	uint64_t me = atomic_load(&self->pid);
	if (pid == me) {
		/* Erlang: exit(self(), normal) ends a non-trapping process too. */
		if (!self->trap_exit)
			proc_die(self, &r);
		apply_exit(self, me, &r);
		die_if_doomed(self);
		return 0;
	}
	struct msg *m = msg_reason(SIG_EXIT, pid, me, 0, &r);
	if (m == NULL)
		return -ENOMEM;
	send_signal(self, pid, m);
	return 0;
}

bool proc_set_trap_exit(struct proc *self, bool on)
{
	bool old = self->trap_exit;
	self->trap_exit = on;
	return old;
}
