/*
 * timers.c — send_after and cancel: a message delivered after a delay.
 *
 * A timer is a sched_timer (src/sched/timer.c) with the message attached,
 * queued on the sender's scheduler under an id the scheduler gives it.
 * Cancelling takes the timer out of its heap and frees the message at once;
 * firing delivers it (or drops it: the addressee died meanwhile). Which of
 * the two happens is decided by the scheduler's lock, so exactly one does.
 */
#include <errno.h>
#include <stdlib.h>

#include "proc_impl.h"

struct send_timer {
	struct sched_timer t;
	struct rt *rt;
	uint64_t to;
	struct msg *msg;
};

static struct send_timer *send_timer_of(struct sched_timer *t)
{
	return (struct send_timer *)((char *)t - __builtin_offsetof(struct send_timer, t));
}

static void send_timer_free(struct send_timer *st)
{
	msg_free(st->msg);
	free(st);
}

static void fire_send(struct sched_timer *t)
{
	struct send_timer *st = send_timer_of(t);
	if (proc_deliver(st->rt, st->to, st->msg))
		st->msg = NULL;
	send_timer_free(st);
}

void proc_drop_timer(struct sched_timer *t)
{
	if (t->fire == fire_send)
		send_timer_free(send_timer_of(t));
	/* else a process's embedded wake timer: nothing to free */
}

int proc_send_after(struct proc *self, uint64_t to, uint64_t tag, const void *data,
                    uint32_t len, int64_t delay_ns, uint64_t *timer)
{
	if (len > proc_max_message(self))
		return -EMSGSIZE;
	struct send_timer *st = calloc(1, sizeof(*st));
	struct msg *m = msg_new(MSG_DATA, to, atomic_load(&self->pid), tag, 0, data, len);
	if (st == NULL || m == NULL) {
		free(st);
		msg_free(m);
		return -ENOMEM;
	}
	st->rt = self->rt;
	st->to = to;
	st->msg = m;
	st->t.deadline = sched_now_ns() + (uint64_t)(delay_ns > 0 ? delay_ns : 0);
	st->t.fire = fire_send;
	if (sched_timer_add(&st->t, true) != 0) {
		send_timer_free(st);
		return -ENOMEM;
	}
	*timer = st->t.id;
	return 0;
}

int proc_cancel_timer(struct proc *self, uint64_t id)
{
	struct sched_timer *t = sched_timer_take(&self->rt->sg, id);
	/* Only a send timer has an id; still, never free what is not ours. */
	if (t == NULL || t->fire != fire_send)
		return -ENOENT;
	send_timer_free(send_timer_of(t));
	return 0;
}
