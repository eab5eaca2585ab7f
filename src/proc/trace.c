/*
 * trace.c — tracing a process (wisp trace PID): the messages it sends
 * and receives, its links, monitors and exit signals, its spawns and its
 * end, as Erlang's dbg shows them.
 *
 * Cost. An untraced process pays one predictable branch per event site
 * (proc_traced: a relaxed load of its own `trace` pointer, on a line it
 * touches anyway). A traced one copies a fixed-size record (the first
 * PROC_TRACE_DATA bytes of a payload) into a ring under its own
 * trace_lock; when the ring is full the event is counted as dropped,
 * never waited for: a slow reader costs the process nothing more. The
 * reader (the control socket's thread) polls the ring.
 *
 * Who writes. Every event is made by the traced process itself, on its
 * fiber — what it sends, what it drains from its mailbox, its spawns,
 * its end — so the ring has one producer at a time. trace_lock (per
 * slot, a spinlock held for one copy) is what lets the reader stop
 * tracing at any time: it takes the pointer away under the lock and only
 * then frees the ring, so the process never writes into a freed one. The
 * process's end takes it away likewise and marks the ring ended; the end
 * takes the lock whether or not the process looks traced (its pid is 0
 * by then), since a trace may start between that look and the lock: the
 * start checks the pid under the lock, and one that saw the pid before
 * the end cleared it has set the pointer before the end takes the lock.
 * (Testing the pointer first, a start between the test and the pid's
 * clearing left a trace on the dead slot: its reader never saw an end,
 * and the slot's next process, made while it was set, failed an assert.)
 *
 * Rejected: recording receives when a sender pushes (many producers,
 * each paying for the lock); waking the reader per event (an eventfd
 * write is a system call on the traced process's path).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "inspect.h"
#include "mailbox.h"
#include "proc_impl.h"

struct proc_trace {
	struct proc *p;                 /* its slot (never freed) */
	uint64_t pid;
	_Atomic uint64_t head;          /* events written (the process) */
	_Atomic uint64_t tail;          /* events read (the reader) */
	_Atomic uint64_t dropped;       /* events lost to a full ring */
	uint64_t dropped_seen;          /* reader's */
	atomic_bool ended;              /* its last event is in the ring */
	struct proc_trace_event ring[PROC_TRACE_RING];
};

static void trace_lock(struct proc *p)
{
	while (atomic_flag_test_and_set_explicit(&p->trace_lock, memory_order_acquire))
		;
}

static void trace_unlock(struct proc *p)
{
	atomic_flag_clear_explicit(&p->trace_lock, memory_order_release);
}

/* Into t's ring, or counted as dropped (trace_lock held). */
static void put(struct proc_trace *t, const struct proc_trace_event *ev)
{
	uint64_t h = atomic_load_explicit(&t->head, memory_order_relaxed);
	if (h - atomic_load_explicit(&t->tail, memory_order_acquire) >= PROC_TRACE_RING) {
		atomic_fetch_add_explicit(&t->dropped, 1, memory_order_relaxed);
		return;
	}
	t->ring[h % PROC_TRACE_RING] = *ev;
	atomic_store_explicit(&t->head, h + 1, memory_order_release);
}

static void emit(struct proc *p, const struct proc_trace_event *ev)
{
	trace_lock(p);
	struct proc_trace *t = atomic_load_explicit(&p->trace, memory_order_relaxed);
	if (t != NULL)
		put(t, ev);
	trace_unlock(p);
}

static void keep(struct proc_trace_event *ev, const void *bytes, size_t len)
{
	ev->nbytes = (uint16_t)(len < PROC_TRACE_DATA ? len : PROC_TRACE_DATA);
	memcpy(ev->data, bytes, ev->nbytes);
}

static void keep_reason(struct proc_trace_event *ev, const struct reason *r)
{
	ev->reason_kind = r->kind;
	ev->reason_code = r->code;
	keep(ev, r->text, reason_text_len(r));
}

/* An event for m: what travels with it. */
static void describe(struct proc_trace_event *ev, const struct msg *m)
{
	ev->kind = m->kind;
	ev->tag = m->kind == SIG_MONITOR || m->kind == SIG_DEMONITOR ? m->ref : m->tag;
	ev->len = m->len;
	ev->fd = msg_has_socket(m);
	struct reason r;
	switch (m->kind) {
	case MSG_DATA:
		keep(ev, m->data, m->len);
		break;
	case MSG_EXIT:
	case MSG_DOWN:
	case SIG_EXIT_LINK:
	case SIG_EXIT:
		msg_get_reason(m, &r);
		keep_reason(ev, &r);
		break;
	case SIG_KILL:
		if (m->len > 0) {
			msg_get_reason(m, &r);
			keep_reason(ev, &r);
		} else {
			ev->reason_kind = WISP_EXIT_KILLED;
		}
		break;
	default:
		break;
	}
}

void proc_trace_send(struct proc *self, const struct msg *m)
{
	struct proc_trace_event ev = { .ns = sched_now_ns(), .what = PROC_TRACE_SEND,
	                               .other = m->to };
	describe(&ev, m);
	emit(self, &ev);
}

void proc_trace_receive(struct proc *self, const struct msg *m)
{
	struct proc_trace_event ev = { .ns = sched_now_ns(), .what = PROC_TRACE_RECEIVE,
	                               .other = m->from, .trapping = self->trap_exit };
	describe(&ev, m);
	emit(self, &ev);
}

void proc_trace_spawn(struct proc *self, uint64_t pid, uint32_t flags)
{
	struct proc_trace_event ev = { .ns = sched_now_ns(), .what = PROC_TRACE_SPAWN,
	                               .other = pid, .tag = flags };
	emit(self, &ev);
}

void proc_trace_exit(struct proc *p, const struct reason *why)
{
	trace_lock(p);
	struct proc_trace *t = atomic_load_explicit(&p->trace, memory_order_relaxed);
	if (t != NULL) {
		struct proc_trace_event ev = { .ns = sched_now_ns(), .what = PROC_TRACE_EXIT };
		keep_reason(&ev, why);
		put(t, &ev);
		atomic_store_explicit(&t->ended, true, memory_order_release);
		atomic_store_explicit(&p->trace, NULL, memory_order_relaxed);
	}
	trace_unlock(p);
}

int rt_trace_start(struct rt *rt, uint64_t pid, struct proc_trace **out)
{
	struct proc *p = ptable_get(&rt->ptable, pid);
	if (p == NULL || atomic_load(&p->pid) != pid)
		return -ESRCH;
	struct proc_trace *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	t->p = p;
	t->pid = pid;
	int rc = 0;
	trace_lock(p);
	/* (Its end clears its pid before it takes the lock to let a trace
	 * go: a trace set here is let go by that end.) */
	if (atomic_load(&p->pid) != pid)
		rc = -ESRCH;
	else if (atomic_load_explicit(&p->trace, memory_order_relaxed) != NULL)
		rc = -EBUSY;
	else
		atomic_store_explicit(&p->trace, t, memory_order_relaxed);
	trace_unlock(p);
	if (rc != 0) {
		free(t);
		return rc;
	}
	*out = t;
	return 0;
}

size_t proc_trace_read(struct proc_trace *t, struct proc_trace_event *ev, size_t max,
                       uint64_t *dropped, bool *ended)
{
	/* (ended first: once it is seen, every event is in the ring.) */
	bool over = atomic_load_explicit(&t->ended, memory_order_acquire);
	uint64_t h = atomic_load_explicit(&t->head, memory_order_acquire);
	uint64_t tl = atomic_load_explicit(&t->tail, memory_order_relaxed);
	size_t n = 0;
	for (; tl + n < h && n < max; n++)
		ev[n] = t->ring[(tl + n) % PROC_TRACE_RING];
	atomic_store_explicit(&t->tail, tl + n, memory_order_release);
	uint64_t d = atomic_load_explicit(&t->dropped, memory_order_relaxed);
	*dropped = d - t->dropped_seen;
	t->dropped_seen = d;
	*ended = over && tl + n == h;
	return n;
}

uint64_t proc_trace_pid(const struct proc_trace *t)
{
	return t->pid;
}

void rt_trace_stop(struct proc_trace *t)
{
	struct proc *p = t->p;
	trace_lock(p);
	if (atomic_load_explicit(&p->trace, memory_order_relaxed) == t)
		atomic_store_explicit(&p->trace, NULL, memory_order_relaxed);
	trace_unlock(p);
	free(t);
}
