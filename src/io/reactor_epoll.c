/*
 * reactor_epoll.c — the reactor on Linux epoll (see reactor.h).
 *
 * Every fd is added once and re-armed with EPOLL_CTL_MOD and EPOLLONESHOT,
 * so a readiness event reaches exactly one poller and never repeats until
 * its waiter asks again. Closing an fd removes it from the epoll set (the
 * kernel does so when the last reference goes). The eventfd used to
 * interrupt a poll is level-triggered and drained by the poller.
 *
 * A poll waits with epoll_pwait2's nanosecond timeout: an idle scheduler
 * waits here for its next timer too, and epoll_wait's milliseconds would
 * stretch a 200 µs receive timeout to over a millisecond. A kernel without
 * it (ENOSYS, or EPERM from a seccomp filter that does not know it) gets
 * epoll_wait, the timeout rounded up.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "reactor.h"

#define WAKE_TOKEN UINT64_MAX

int reactor_init(struct reactor *r)
{
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (r->epfd < 0)
		return -errno;
	atomic_init(&r->ms_only, false);
	r->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r->wakefd < 0) {
		int e = errno;
		close(r->epfd);
		return -e;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = WAKE_TOKEN };
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->wakefd, &ev) != 0) {
		int e = errno;
		close(r->wakefd);
		close(r->epfd);
		return -e;
	}
	return 0;
}

void reactor_destroy(struct reactor *r)
{
	close(r->wakefd);
	close(r->epfd);
}

int reactor_arm(struct reactor *r, int fd, uint32_t events, uint64_t token)
{
	struct epoll_event ev = {
		.events = EPOLLONESHOT | EPOLLRDHUP |
		          ((events & REACTOR_READ) ? EPOLLIN : 0) |
		          ((events & REACTOR_WRITE) ? EPOLLOUT : 0),
		.data.u64 = token,
	};
	if (epoll_ctl(r->epfd, EPOLL_CTL_MOD, fd, &ev) == 0)
		return 0;
	if (errno == ENOENT && epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev) == 0)
		return 0;
	return -errno;
}

static int wait_events(struct reactor *r, struct epoll_event *evs, int max, int64_t timeout_ns)
{
	if (timeout_ns > 0 && !atomic_load_explicit(&r->ms_only, memory_order_relaxed)) {
		struct timespec ts = { (time_t)(timeout_ns / 1000000000), (long)(timeout_ns % 1000000000) };
		int n = epoll_pwait2(r->epfd, evs, max, &ts, NULL);
		if (n >= 0 || (errno != ENOSYS && errno != EPERM))   /* (EPERM: a seccomp filter) */
			return n;
		atomic_store_explicit(&r->ms_only, true, memory_order_relaxed);
	}
	int64_t ms = timeout_ns < 0 ? -1 : (timeout_ns + 999999) / 1000000;
	return epoll_wait(r->epfd, evs, max, ms > INT32_MAX ? INT32_MAX : (int)ms);
}

int reactor_poll(struct reactor *r, int64_t timeout_ns, int max_events,
                 void (*ready)(uint64_t token, void *arg), void *arg)
{
	struct epoll_event evs[64];
	if (max_events > 64)
		max_events = 64;
	int n = wait_events(r, evs, max_events, timeout_ns);
	int reported = 0;
	for (int i = 0; i < n; i++) {
		if (evs[i].data.u64 == WAKE_TOKEN) {
			uint64_t v;
			while (read(r->wakefd, &v, sizeof(v)) > 0)
				;
			continue;
		}
		ready(evs[i].data.u64, arg);
		reported++;
	}
	return reported;
}

void reactor_interrupt(struct reactor *r)
{
	uint64_t one = 1;
	ssize_t w = write(r->wakefd, &one, sizeof(one));
	(void)w;   /* EAGAIN: the counter is already non-zero, a wake is pending */
}
