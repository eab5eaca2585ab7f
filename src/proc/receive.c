/*
 * receive.c — sending, selective receive and request/reply.
 *
 * Messages are copied out of the sender's memory into a struct msg at send
 * and pushed into the addressee's mailbox; a dead addressee drops them
 * silently, as in Erlang. Receive drains the mailbox (applying signals),
 * scans the private list for the first message with one of the wanted tags
 * (all of them if none are given) and parks until something new arrives or
 * the deadline passes. The message found stays queued until the host has
 * copied it to the guest (proc_take), so a buffer that is too small loses
 * nothing.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "proc_impl.h"

int proc_send(struct proc *self, uint64_t to, uint64_t tag, uint64_t ref,
              const void *data, uint32_t len)
{
	if (len > proc_max_message(self))
		return -EMSGSIZE;
	struct msg *m = msg_new(MSG_DATA, to, atomic_load(&self->pid), tag, ref, data, len);
	if (m == NULL)
		return -ENOMEM;
	proc_count(self->rt, RT_MSG_SENT, 1);
	if (proc_traced(self))
		proc_trace_send(self, m);
	if (!proc_deliver(self->rt, to, m))
		msg_free(m);      /* to a dead process: dropped, as in Erlang */
	return 0;
}

int proc_send_fd(struct proc *self, uint64_t to, uint64_t tag, int host_fd,
                 void *extra, void (*extra_free)(void *extra))
{
	uint32_t placeholder = UINT32_MAX;
	struct msg *m = msg_new(MSG_DATA, to, atomic_load(&self->pid), tag, 0,
	                        &placeholder, 4);
	struct msg_socket *s = m != NULL ? malloc(sizeof(*s)) : NULL;
	if (s == NULL) {
		free(m);
		if (extra != NULL)
			extra_free(extra);
		close(host_fd);
		return -ENOMEM;
	}
	*s = (struct msg_socket){ host_fd, &self->fds_in_flight, extra, extra_free };
	m->sock = s;
	atomic_fetch_add(&self->fds_in_flight, 1);
	proc_count(self->rt, RT_MSG_SENT, 1);
	if (proc_traced(self))
		proc_trace_send(self, m);
	if (!proc_deliver(self->rt, to, m))
		msg_free(m);      /* dead addressee: the socket closes */
	return 0;
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

/* Apply what arrived, then the first queued message matching tags, or
 * NULL. The scan is the process's work (proc_charge_work: one reduction
 * per 8 tag comparisons), so it may end the process at its CPU limit:
 * a receive of 4096 tags that never match, over a long mailbox, costs the
 * host hundreds of millions of comparisons a call. */
static struct msg *scan(struct proc *self, const uint64_t *tags, uint32_t ntags)
{
	proc_drain(self);
	uint64_t looked = 0;
	struct msg *found = NULL;
	for (struct msg *m = self->mbox.first; m; m = m->next) {
		looked++;
		if (matches(m, tags, ntags)) {
			found = m;
			break;
		}
	}
	proc_charge_work(self, looked * (ntags ? ntags : 1) * 8);
	return found;
}

static uint64_t deadline_of(int64_t timeout_ns)
{
	return timeout_ns < 0 ? UINT64_MAX : sched_now_ns() + (uint64_t)timeout_ns;
}

static bool passed(uint64_t deadline, int64_t timeout_ns)
{
	return timeout_ns == 0 || (deadline != UINT64_MAX && sched_now_ns() >= deadline);
}

/* proc_receive, the caller having said what it waits for. */
static int receive(struct proc *self, const uint64_t *tags, uint32_t ntags, int64_t timeout_ns,
                   struct msg **out)
{
	uint64_t deadline = deadline_of(timeout_ns);
	for (;;) {
		if ((*out = scan(self, tags, ntags)) != NULL)
			return 0;
		if (passed(deadline, timeout_ns))
			return -ETIMEDOUT;
		proc_wait_until(self, deadline);
	}
}

int proc_receive(struct proc *self, const uint64_t *tags, uint32_t ntags,
                 int64_t timeout_ns, struct msg **out)
{
	proc_waiting(self, PROC_WAIT_RECEIVE, 0);
	return receive(self, tags, ntags, timeout_ns, out);
}

int proc_receive_fd(struct proc *self, const uint64_t *tags, uint32_t ntags,
                    int fd, bool edge, int64_t timeout_ns, struct msg **out)
{
	uint64_t deadline = deadline_of(timeout_ns);
	proc_waiting(self, PROC_WAIT_RECEIVE_FD, (uint32_t)fd | (uint64_t)REACTOR_READ << 32);
	for (;;) {
		if ((*out = scan(self, tags, ntags)) != NULL)
			return 0;
		/* (The ticket before the look: see proc_wait_fdset.) */
		struct proc_fd_wait w = { .fd = fd, .events = REACTOR_READ, .edge = edge,
		                          .ticket = edge ? proc_fd_ticket(self, fd) : 0 };
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		if (poll(&pf, 1, 0) > 0)
			return PROC_READY;
		if (passed(deadline, timeout_ns))
			return -ETIMEDOUT;
		uint64_t now = sched_now_ns();
		int rc = proc_wait_fdset_quiet(self, &w, 1,
		                               deadline == UINT64_MAX ? -1 : (int64_t)(deadline - now));
		if (rc != 0 && rc != -ETIMEDOUT)
			return -EINVAL;   /* an fd the reactor cannot watch */
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
		return -EMSGSIZE;
	if (to == atomic_load(&self->pid))
		return -EINVAL;     /* nobody would ever answer */
	uint64_t mref;
	int rc = proc_monitor(self, to, &mref);
	if (rc != 0)
		return rc;
	uint64_t ref = rt_new_ref(rt);
	struct msg *m = msg_new(MSG_DATA, to, atomic_load(&self->pid), tag, ref, data, len);
	if (m == NULL) {
		proc_demonitor(self, mref);
		return -ENOMEM;
	}
	proc_count(rt, RT_MSG_SENT, 1);
	if (proc_traced(self))
		proc_trace_send(self, m);
	if (!proc_deliver(rt, to, m))
		msg_free(m);      /* the monitor's NOPROC DOWN answers */
	uint64_t tags[2] = { ref, mref };
	struct msg *r;
	/* (A served file's call is a request with its own tag.) */
	proc_waiting(self, tag == WISP_TAG_FILE ? PROC_WAIT_SERVED : PROC_WAIT_CALL, to);
	rc = receive(self, tags, 2, timeout_ns, &r);
	if (rc != 0) {
		proc_demonitor(self, mref);
		return rc;
	}
	if (r->tag == mref && r->kind == MSG_DOWN) {
		proc_take(self, r);
		msg_free(r);
		return -ESRCH;
	}
	proc_demonitor(self, mref);
	*out = r;
	return 0;
}

void proc_yield(struct proc *self)
{
	proc_switch_out(self, TASK_YIELD);
	if (atomic_load_explicit(&self->mbox.head, memory_order_relaxed) != NULL)
		proc_drain(self);
}

_Noreturn void proc_forward_forever(struct proc *self, uint64_t to)
{
	const struct proc_remote *remote = self->rt->cfg.remote;
	bool trapping = self->trap_exit;
	self->trap_exit = true;          /* exit signals come as messages, below */
	self->forwarding = true;
	for (;;) {
		struct msg *m;
		if (proc_receive(self, NULL, 0, -1, &m) != 0)
			continue;
		proc_take(self, m);
		struct reason r;
		if (m->kind == SIG_MARK) {
			/* Everything its node sent before is passed on. */
			if (remote != NULL && proc_pid_is_remote(to))
				remote->marked(remote->ctx, atomic_load(&self->pid), to, m->from);
			msg_free(m);
			continue;
		}
		if (m->kind == MSG_EXIT) {
			uint64_t from = m->from;
			msg_get_reason(m, &r);
			msg_free(m);
			if (from == to || (!trapping && r.kind != WISP_EXIT_NORMAL))
				proc_die(self, &r);
			if (trapping) {
				struct msg *x = msg_reason(SIG_EXIT, to, from, 0, &r);
				if (x != NULL && !proc_deliver(self->rt, to, x))
					msg_free(x);
			}
			continue;
		}
		if (m->kind != MSG_DATA || (msg_has_socket(m) && proc_pid_is_remote(to))) {
			msg_free(m);   /* a DOWN of a monitor self held; a socket
			                  cannot follow to another node (it closes) */
			continue;
		}
		/* Off self's account, onto the addressee's (proc_deliver). */
		msg_uncharge(m);
		uint64_t sender = m->from;
		bool delivered;
		if (remote != NULL && proc_pid_is_remote(to)) {
			m->to = to;
			delivered = remote->forward(remote->ctx, m);
		} else {
			delivered = proc_deliver(self->rt, to, m);
		}
		if (!delivered)
			msg_free(m);
		else if (remote != NULL && proc_pid_is_remote(sender) && proc_pid_is_remote(to))
			remote->moved(remote->ctx, atomic_load(&self->pid), to, sender);
	}
}
