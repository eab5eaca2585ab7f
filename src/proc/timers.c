/*
 * timers.c — send_after and cancel: a message delivered after a delay.
 *
 * A timer is a sched_timer (src/sched/timer.c) with the message attached,
 * queued on the sender's scheduler under an id the scheduler gives it.
 * Cancelling takes the timer out of its heap and frees the message at once;
 * firing delivers it (or drops it: the addressee died meanwhile). Which of
 * the two happens is decided by the scheduler's lock, so exactly one does.
 *
 * A timer belongs to its addressee, as in BEAM: it is charged to the
 * addressee's memory account (a pending timer is a message on its way, and
 * flooding a process with timers is flooding its mailbox) and kept on the
 * addressee's list, so that the addressee's end cancels every timer still
 * aimed at it — nothing waits for a deadline to free a dead process's mail.
 * The list is under the addressee's `tlock`, taken after a scheduler's
 * timer lock is released, never while holding it. A timer off the list
 * (`listed` false) is being fired, taken or dropped by whoever unlisted it.
 */
#include <errno.h>
#include <stdlib.h>

#include "proc_impl.h"

struct send_timer {
	struct sched_timer t;
	struct rt *rt;
	struct proc *dest;         /* the addressee's slot */
	uint64_t to;               /* ... and incarnation */
	struct msg *msg;
	struct send_timer *next, **pprev;   /* dest->timers, under dest->tlock */
	bool listed;
	bool charged;              /* sizeof(*this) is on dest's account */
};

static void list_lock(struct proc *p)
{
	while (atomic_flag_test_and_set_explicit(&p->tlock, memory_order_acquire))
		;
}

static void list_unlock(struct proc *p)
{
	atomic_flag_clear_explicit(&p->tlock, memory_order_release);
}

static struct send_timer *send_timer_of(struct sched_timer *t)
{
	return (struct send_timer *)((char *)t - __builtin_offsetof(struct send_timer, t));
}

/* Off dest's list (under dest's lock). */
static void unlist(struct send_timer *st)
{
	*st->pprev = st->next;
	if (st->next != NULL)
		st->next->pprev = st->pprev;
	st->listed = false;
}

/* Take st off its addressee's list if it is still there. */
static void unlist_locked(struct send_timer *st)
{
	list_lock(st->dest);
	if (st->listed)
		unlist(st);
	list_unlock(st->dest);
}

/* Free st and its message, taking both off dest's account. */
static void send_timer_free(struct send_timer *st)
{
	if (st->charged)
		proc_uncharge(st->dest, sizeof(*st));
	msg_free(st->msg);     /* uncharges the message */
	free(st);
}

static void fire_send(struct sched_timer *t)
{
	struct send_timer *st = send_timer_of(t);
	unlist_locked(st);
	/* Delivery charges the message to the mailbox anew. */
	struct msg *m = st->msg;
	msg_uncharge(m);
	proc_count(st->rt, RT_MSG_SENT, 1);
	if (proc_deliver(st->rt, st->to, m))
		st->msg = NULL;
	send_timer_free(st);
}

void proc_drop_timer(struct sched_timer *t)
{
	if (t->fire != fire_send)
		return;   /* a process's embedded wake timer: nothing to free */
	struct send_timer *st = send_timer_of(t);
	unlist_locked(st);
	send_timer_free(st);
}

int proc_send_after(struct proc *self, uint64_t to, uint64_t tag, const void *data,
                    uint32_t len, int64_t delay_ns, uint64_t *timer)
{
	struct rt *rt = self->rt;
	if (len > proc_max_message(self))
		return -EMSGSIZE;
	struct proc *dest = ptable_get(&rt->ptable, to);
	struct send_timer *st = calloc(1, sizeof(*st));
	struct msg *m = msg_new(MSG_DATA, to, atomic_load(&self->pid), tag, 0, data, len);
	if (st == NULL || m == NULL) {
		free(st);
		msg_free(m);
		return -ENOMEM;
	}
	st->rt = rt;
	st->dest = dest;
	st->to = to;
	st->msg = m;
	st->t.deadline = sched_now_ns() + (uint64_t)(delay_ns > 0 ? delay_ns : 0);
	st->t.fire = fire_send;
	/* Listed under the addressee's lock only while it is alive and not
	 * ending (its exit cancels what is listed); otherwise the timer would
	 * deliver to nobody: it is not made at all, and its id finds nothing. */
	bool alive = false;
	if (dest != NULL) {
		list_lock(dest);
		alive = atomic_load(&dest->pid) == to && !atomic_load(&dest->exiting) &&
		        atomic_load(&dest->over_limit) != to &&
		        proc_charge_pushed(rt, dest, to, msg_bytes(m) + sizeof(*st), true);
		if (alive) {
			msg_charged(dest, m);
			st->charged = true;
			st->next = dest->timers;
			if (st->next != NULL)
				st->next->pprev = &st->next;
			st->pprev = &dest->timers;
			dest->timers = st;
			st->listed = true;
		}
		list_unlock(dest);
	}
	if (!alive) {
		send_timer_free(st);
		*timer = rt_new_ref(rt);
		return 0;
	}
	/* Once queued, st may fire and be freed on another thread: the id
	 * comes back through the call, not from st. */
	if (sched_timer_add(&st->t, timer) != 0) {
		unlist_locked(st);
		send_timer_free(st);
		return -ENOMEM;
	}
	return 0;
}

int proc_cancel_timer(struct proc *self, uint64_t id)
{
	struct sched_timer *t = sched_timer_take(&self->rt->sg, id);
	/* Only a send timer has an id; still, never free what is not ours. */
	if (t == NULL || t->fire != fire_send)
		return -ENOENT;
	struct send_timer *st = send_timer_of(t);
	unlist_locked(st);
	send_timer_free(st);
	return 0;
}

void proc_cancel_timers_to(struct proc *p)
{
	list_lock(p);
	while (p->timers != NULL) {
		struct send_timer *st = p->timers;
		unlist(st);
		list_unlock(p);
		/* Ours if it was still queued; else its firing frees it. */
		if (sched_timer_cancel(&st->t))
			send_timer_free(st);
		list_lock(p);
	}
	list_unlock(p);
}
