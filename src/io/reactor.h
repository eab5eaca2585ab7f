/*
 * reactor.h — readiness notification behind a small interface, so that an
 * io_uring or kqueue backend can replace reactor_epoll.c.
 *
 * Two kinds of interest:
 *
 *  - One-shot (reactor_arm): after an fd has been reported ready it stays
 *    silent until re-armed. Tokens are 64-bit values the caller interprets
 *    (wisp packs a process slot and a wait number, never a pointer that
 *    could dangle). For fds several parties may wait on (a shared stdio
 *    pipe) and for the distribution layer's sockets.
 *
 *  - Registered once, edge-triggered (reactor_watch): for an fd one owner
 *    reads and writes many times (a process's socket). The reactor keeps a
 *    record per fd number: counters of the read and write edges seen, and
 *    the token of whoever waits on it now. A waiter takes a ticket (the
 *    counters) before the operation that may find the fd not ready, and
 *    on EAGAIN publishes its token with reactor_expect, which refuses
 *    (returns false: try again) if an edge came since the ticket. No
 *    system call is made on that path; reactor_epoll.c's opening comment
 *    argues why no wake-up is lost.
 */
#ifndef WISP_REACTOR_H
#define WISP_REACTOR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define REACTOR_READ  1u
#define REACTOR_WRITE 2u

/* One fd number's registration (reactor_epoll.c says what the fields hold). */
struct reactor_src {
	_Atomic uint64_t state;    /* generation, urgent, write and read edges */
	_Atomic uint64_t waiter;   /* the waiting token, 0: none */
	_Atomic uint32_t want;     /* what the waiter waits for (REACTOR_*) */
};

struct reactor {
	int epfd;
	int wakefd;      /* eventfd: reactor_interrupt() */
	atomic_bool ms_only;   /* the kernel lacks epoll_pwait2: waits in ms */
	atomic_bool interrupting;   /* wakefd written, not yet drained */
	/* Registrations by fd number, in chunks allocated on first use and
	 * freed only by reactor_destroy (a poller may hold an fd's event
	 * while its owner closes it: the record it finds stays memory). */
	_Atomic(struct reactor_src *) *chunks;
	uint32_t nchunks;
};

int reactor_init(struct reactor *r);         /* 0 or -errno */
void reactor_destroy(struct reactor *r);

/* Report fd once when it is ready for `events` (or has an error or hangup),
 * with `token`. Re-arming replaces the previous interest. 0 or -errno.
 * Never on an fd registered with reactor_watch. */
int reactor_arm(struct reactor *r, int fd, uint32_t events, uint64_t token);

/* Register fd for good, edge-triggered, for reading and writing; the open
 * file stays registered until its last descriptor closes (the kernel
 * removes it then; a later file under the same number is registered
 * afresh, and late events of the old one are told apart by generation).
 * Already registered (a socket that moved to another owner): 0, the
 * registration kept. 0, or -ERANGE (fd beyond the table: use
 * reactor_arm), -ENOMEM, -EPERM (a regular file), other -errno. */
int reactor_watch(struct reactor *r, int fd);

/* fd is about to be closed by its owner: out of the set now (the kernel
 * would keep the registration while another descriptor of the file
 * lives, a copy given to a child program, and report its edges for
 * nothing), its record's generation bumped so late events are dropped.
 * Nothing after reactor_destroy. */
void reactor_unwatch(struct reactor *r, int fd);

/* fd's ticket (registered fd): take it before the read or write whose
 * EAGAIN reactor_expect will follow. */
uint64_t reactor_ticket(struct reactor *r, int fd);

/* After EAGAIN: publish `token` (nonzero) as fd's waiter for `events`.
 * True: nothing came since `ticket`; the waiter may park, an edge from now
 * on reports `token` to the poll's callback (once; the publication is
 * consumed). False: an edge for `events` came since the ticket (try the
 * operation again); nothing is published. */
bool reactor_expect(struct reactor *r, int fd, uint32_t events, uint64_t ticket,
                    uint64_t token);

/* May a read of registered stream socket fd be skipped (it would find
 * nothing)? Given the ticket taken before the caller's last read, which
 * emptied it (EAGAIN, or fewer bytes than asked for): true if no read
 * edge came since and it never had urgent data, an end of stream, a
 * hang-up or an error (reactor_epoll.c says why that is enough). The caller then waits (reactor_expect with the
 * same ticket) instead of reading. */
bool reactor_drained(struct reactor *r, int fd, uint64_t ticket);

/* Withdraw a waiter's publication on fd if it is still `token`'s (a wait
 * that ends without its event: a timeout, another fd of the set). */
void reactor_unexpect(struct reactor *r, int fd, uint64_t token);

/* Wait up to timeout_ns (-1: until something happens, 0: just look) and call
 * ready(token, arg) for at most max_events ready fds: a one-shot fd's token,
 * a registered fd's published waiter (a registered fd with no waiter, or
 * one whose event is not what it waits for, is only counted). Returns how
 * many events were taken; an interrupt returns early with 0. The timeout
 * is kept to the nanosecond where the kernel can (epoll_pwait2, Linux
 * 5.11), else rounded up to the millisecond. */
int reactor_poll(struct reactor *r, int64_t timeout_ns, int max_events,
                 void (*ready)(uint64_t token, void *arg), void *arg);

/* Make a reactor_poll in progress on another thread return now. */
void reactor_interrupt(struct reactor *r);

#endif
