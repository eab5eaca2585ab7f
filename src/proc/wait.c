/*
 * wait.c — parking a process: until woken, until a deadline, or until a
 * file descriptor is ready.
 *
 * Every wait bumps the process's wait number. A timed wait arms the
 * process's own wake timer (one per slot, embedded in struct proc, so a
 * timeout allocates nothing); an fd wait arms the reactor with a token made
 * of the slot index and the wait number, never a pointer. A late event —
 * for a wait that is over, or a process that died and whose slot was
 * reused — finds a different wait number and is ignored; a late wake timer
 * can at worst wake the slot's next process spuriously, which every wait
 * tolerates (it re-checks its condition and parks again).
 *
 * A socket the process owns is registered with the reactor once
 * (proc_fd_watch) and waited for by publishing the same token on it
 * (proc_wait_fdset, reactor_expect) instead of arming it: see
 * src/io/reactor_epoll.c for why that loses no wake-up.
 *
 * The remote layer's sockets share the reactor (rt_remote_arm): their
 * tokens have bit 63 set (RT_REMOTE_TOKEN), which a process's never has
 * (slots are below 2^28), and go to its io_ready hook instead.
 */
#include <assert.h>
#include <errno.h>

#include "proc_impl.h"

void proc_park(struct proc *self)
{
	self->wait_until = UINT64_MAX;
	atomic_fetch_add(&self->wait_seq, 1);
	proc_switch_out(self, TASK_PARK);
}

/* Make sure the wake timer fires no later than `deadline`. 0 or -ENOMEM. */
static int arm_wake(struct proc *self, uint64_t deadline)
{
	struct sched_timer *t = &self->wake;
	if (atomic_load_explicit(&t->owner, memory_order_acquire) != NULL) {
		if (t->deadline <= deadline)
			return 0;            /* queued already, for no later */
		sched_timer_cancel(t);   /* false: it just fired; re-arm anyway */
	}
	t->deadline = deadline;
	return sched_timer_add(t, NULL);
}

void proc_cancel_wake(struct proc *self)
{
	sched_timer_cancel(&self->wake);
}

void proc_wait_until(struct proc *self, uint64_t deadline)
{
	self->wait_until = deadline;
	atomic_fetch_add(&self->wait_seq, 1);
	if (deadline != UINT64_MAX && arm_wake(self, deadline) != 0) {
		/* Cannot arm a timer: poll instead of hanging. */
		proc_switch_out(self, TASK_YIELD);
		return;
	}
	proc_switch_out(self, TASK_PARK);
}

void proc_hibernate(struct proc *self)
{
	proc_drain(self);
	if (self->mbox.first != NULL)
		return;
	proc_waiting(self, PROC_WAIT_HIBERNATE, 0);
	self->wait_until = UINT64_MAX;
	atomic_fetch_add(&self->wait_seq, 1);
	sched_hibernate(&self->task);
	proc_drain(self);
}

void proc_freeze(struct task *t, void *arg)
{
	(void)arg;
	struct proc *p = proc_of_task(t);
	if (p->inst == NULL || p->frozen != NULL)
		return;
	/* Failing (no memory for the record) leaves the memory as it is. */
	engine_instance_freeze(p->inst, p->park_may_move, &p->frozen);
	/* Freezing and thawing are work done for it: charged as reductions
	 * (one per 64 bytes, as proc_charge_work), which its next slice end
	 * counts against its CPU limit. Else a process that hibernates in a
	 * loop with a large memory turns a small budget into unbounded host
	 * CPU. (Not proc_charge_work: this is the scheduler's thread, and
	 * the process is not running.) */
	if (p->frozen != NULL)
		engine_instance_vmctx(p->inst)->fuel -=
		        (int64_t)(1 + engine_frozen_work(p->frozen) / 64);
}

void proc_thaw(struct task *t, void *arg)
{
	(void)arg;
	struct proc *p = proc_of_task(t);
	if (p->frozen != NULL) {
		struct engine_frozen *f = p->frozen;
		p->frozen = NULL;
		if (engine_instance_thaw(p->inst, f) != 0)
			proc_doom_limit(p, "out of memory waking from hibernation");
	}
}

void proc_sleep(struct proc *self, int64_t ns)
{
	uint64_t deadline = sched_now_ns() + (uint64_t)(ns > 0 ? ns : 0);
	proc_waiting(self, PROC_WAIT_TIMER, 0);
	for (;;) {
		proc_drain(self);
		if (sched_now_ns() >= deadline)
			return;
		proc_wait_until(self, deadline);
	}
}

/* ---- waiting for file descriptors ---- */

void proc_io_ready(uint64_t token, void *arg)
{
	struct rt *rt = arg;
	if (token & RT_REMOTE_TOKEN) {
		const struct proc_remote *r = rt->cfg.remote;
		if (r != NULL)
			r->io_ready(r->ctx, token & ~RT_REMOTE_TOKEN);
		return;
	}
	struct proc *p = ptable_at(&rt->ptable, (uint32_t)(token >> 32));
	if (p != NULL && atomic_load(&p->wait_seq) == (uint32_t)token)
		sched_wake(&rt->sg, &p->task);
}

_Static_assert((uint64_t)PT_MAX_CHUNKS << PT_CHUNK_BITS <= 1ull << 31,
               "a process's token (slot << 32) must leave bit 63 to the remote layer");

int rt_remote_arm(struct rt *rt, int fd, uint64_t token)
{
	assert((token & RT_REMOTE_TOKEN) == 0);
	return reactor_arm(&rt->sg.reactor, fd, REACTOR_READ, token | RT_REMOTE_TOKEN);
}

void rt_remote_watching(struct rt *rt, bool more)
{
	if (more)
		sched_io_wait(&rt->sg);
	else
		sched_io_done(&rt->sg);
}

int proc_wait_fd(struct proc *self, int fd, uint32_t events, int64_t timeout_ns)
{
	return proc_wait_fds(self, &fd, &events, 1, timeout_ns);
}

int proc_wait_fds(struct proc *self, const int *fds, const uint32_t *events,
                  uint32_t n, int64_t timeout_ns)
{
	if (n > 0)
		proc_waiting(self, PROC_WAIT_FD, (uint32_t)fds[0] | (uint64_t)events[0] << 32);
	return proc_wait_fds_quiet(self, fds, events, n, timeout_ns);
}

/* The deadline of a wait of timeout_ns (< 0: none). */
static uint64_t deadline_in(int64_t timeout_ns)
{
	return timeout_ns < 0 ? UINT64_MAX : sched_now_ns() + (uint64_t)timeout_ns;
}

/* A signal that came while we were runnable but not running (a kill
 * before our first slice) woke nobody: apply it now, or we would park
 * with it pending until the fd is ready, for ever if it never is. (One
 * that comes from here on finds us running and makes the park return.) */
static void drain_before_wait(struct proc *self)
{
	if (atomic_load_explicit(&self->mbox.head, memory_order_relaxed) != NULL)
		proc_drain(self);
}

/* Park for I/O (the reactor armed or published with the current wait's
 * token) until woken or `deadline`. 0, -ETIMEDOUT, -ENOMEM. */
static int park_io(struct proc *self, uint64_t deadline)
{
	struct rt *rt = self->rt;
	if (deadline != UINT64_MAX && arm_wake(self, deadline) != 0)
		return -ENOMEM;
	self->wait_until = deadline;
	sched_io_wait(&rt->sg);
	proc_switch_out(self, TASK_PARK);
	sched_io_done(&rt->sg);
	/* A signal may have woken us (a kill): apply it before retrying. */
	if (atomic_load_explicit(&self->mbox.head, memory_order_relaxed) != NULL)
		proc_drain(self);
	if (deadline != UINT64_MAX && sched_now_ns() >= deadline)
		return -ETIMEDOUT;
	return 0;
}

int proc_wait_fds_quiet(struct proc *self, const int *fds, const uint32_t *events,
                        uint32_t n, int64_t timeout_ns)
{
	struct rt *rt = self->rt;
	uint64_t deadline = deadline_in(timeout_ns);
	drain_before_wait(self);
	uint32_t seq = atomic_fetch_add(&self->wait_seq, 1) + 1;
	for (uint32_t i = 0; i < n; i++) {
		int rc = reactor_arm(&rt->sg.reactor, fds[i], events[i],
		                     (uint64_t)self->index << 32 | seq);
		if (rc != 0)
			return rc;    /* e.g. -EPERM: a regular file, always ready */
	}
	return park_io(self, deadline);
}

/* ---- registered fds ---- */

int proc_fd_watch(struct proc *self, int fd)
{
	return reactor_watch(&self->rt->sg.reactor, fd);
}

void proc_fd_unwatch(struct proc *p, int fd)
{
	reactor_unwatch(&p->rt->sg.reactor, fd);
}

uint64_t proc_fd_ticket(struct proc *self, int fd)
{
	return reactor_ticket(&self->rt->sg.reactor, fd);
}

bool proc_fd_drained(struct proc *self, int fd, uint64_t ticket)
{
	return reactor_drained(&self->rt->sg.reactor, fd, ticket);
}

/* Withdraw `token` from the registered fds among w[0..n). */
static void withdraw(struct reactor *r, const struct proc_fd_wait *w, uint32_t n,
                     uint64_t token)
{
	for (uint32_t i = 0; i < n; i++)
		if (w[i].edge)
			reactor_unexpect(r, w[i].fd, token);
}

/* Publishing on a registered fd cannot lose an edge that comes between
 * the caller's EAGAIN and the park: reactor_expect compares the ticket
 * taken before the operation (src/io/reactor_epoll.c has the argument);
 * an edge that came meanwhile makes it return 0 at once, unparked. */
int proc_wait_fdset(struct proc *self, const struct proc_fd_wait *w, uint32_t n,
                    int64_t timeout_ns)
{
	if (n > 0)
		proc_waiting(self, PROC_WAIT_FD, (uint32_t)w[0].fd | (uint64_t)w[0].events << 32);
	return proc_wait_fdset_quiet(self, w, n, timeout_ns);
}

int proc_wait_fdset_quiet(struct proc *self, const struct proc_fd_wait *w, uint32_t n,
                          int64_t timeout_ns)
{
	struct reactor *r = &self->rt->sg.reactor;
	uint64_t deadline = deadline_in(timeout_ns);
	drain_before_wait(self);
	uint32_t seq = atomic_fetch_add(&self->wait_seq, 1) + 1;
	uint64_t token = (uint64_t)self->index << 32 | seq;
	for (uint32_t i = 0; i < n; i++) {
		int rc = 0;
		if (!w[i].edge)
			rc = reactor_arm(r, w[i].fd, w[i].events, token);
		else if (!reactor_expect(r, w[i].fd, w[i].events, w[i].ticket, token))
			rc = 1;      /* an edge came: look again */
		if (rc != 0) {
			withdraw(r, w, i, token);
			return rc > 0 ? 0 : rc;
		}
	}
	int rc = park_io(self, deadline);
	withdraw(r, w, n, token);
	return rc;
}
