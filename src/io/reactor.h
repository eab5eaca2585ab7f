/*
 * reactor.h — readiness notification behind a small interface, so that an
 * io_uring or kqueue backend can replace reactor_epoll.c.
 *
 * Interest is one-shot: after an fd has been reported ready it stays silent
 * until re-armed. Tokens are 64-bit values the caller interprets (wisp
 * packs a process slot and a wait number, never a pointer that could dangle).
 */
#ifndef WISP_REACTOR_H
#define WISP_REACTOR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define REACTOR_READ  1u
#define REACTOR_WRITE 2u

struct reactor {
	int epfd;
	int wakefd;      /* eventfd: reactor_interrupt() */
	atomic_bool ms_only;   /* the kernel lacks epoll_pwait2: waits in ms */
};

int reactor_init(struct reactor *r);         /* 0 or -errno */
void reactor_destroy(struct reactor *r);

/* Report fd once when it is ready for `events` (or has an error or hangup),
 * with `token`. Re-arming replaces the previous interest. 0 or -errno. */
int reactor_arm(struct reactor *r, int fd, uint32_t events, uint64_t token);

/* Wait up to timeout_ns (-1: until something happens, 0: just look) and call
 * ready(token, arg) for at most max_events ready fds. Returns how many were
 * reported; an interrupt returns early with 0. The timeout is kept to the
 * nanosecond where the kernel can (epoll_pwait2, Linux 5.11), else rounded
 * up to the millisecond. */
int reactor_poll(struct reactor *r, int64_t timeout_ns, int max_events,
                 void (*ready)(uint64_t token, void *arg), void *arg);

/* Make a reactor_poll in progress on another thread return now. */
void reactor_interrupt(struct reactor *r);

#endif
