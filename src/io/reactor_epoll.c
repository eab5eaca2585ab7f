/*
 * reactor_epoll.c — the reactor on Linux epoll (see reactor.h).
 *
 * One-shot fds (reactor_arm) are added once and re-armed with
 * EPOLL_CTL_MOD and EPOLLONESHOT, so a readiness event reaches exactly one
 * poller and never repeats until its waiter asks again. Closing an fd
 * removes it from the epoll set (the kernel does so when the last
 * reference goes). The eventfd used to interrupt a poll is level-triggered
 * and drained by the poller.
 *
 * Registered fds (reactor_watch) are added once with EPOLLIN | EPOLLOUT |
 * EPOLLRDHUP | EPOLLET and never touched again: no epoll_ctl per wait.
 * Their epoll data is not a waiter's token but the fd's own: tag bit 62,
 * the registration's generation, the fd number. The record for the fd
 * number (struct reactor_src) holds
 *   state:  generation (bits 32..63), "special" seen (bit 31, for good:
 *           urgent data, end of stream, hang-up, error), write edges
 *           (16..30), read edges (0..15), each counter wrapping on its own;
 *   waiter: the token of whoever waits now (0: nobody), and `want`, what
 *           for.
 * The poller adds an event's edges to `state` with a compare-and-swap
 * that fails if the generation is no longer the event's (the fd was
 * closed and its number registered again: a late event of the old file is
 * dropped), then takes the waiter (compare-and-swap to 0, so one edge
 * wakes a publication once) if it waits for what came, and reports it.
 * The registration names no process: a socket that moves to another
 * process keeps its registration, and its events go to whoever publishes
 * a token on it, the new owner; the old owner's token, if still there,
 * names a wait that is over (wisp's tokens carry a wait number) and is
 * ignored by the callback.
 *
 * No lost wake-up. A waiter W does
 *   w1  t = state                      (reactor_ticket)
 *   w2  the read or write: EAGAIN
 *   w3  want = events; waiter = token  (reactor_expect)
 *   w4  s = state: an edge for `events` since t (s differs from t in
 *       the generation or a wanted counter): do not park, try again
 *   w5  park (a wake-up from w3 on is never lost: see sched.c)
 * and the poller P, for an edge that harvest h reported,
 *   p1  state += edges                 (if the generation matches)
 *   p2  w = waiter; if w wants them and CAS(waiter, w, 0): report w.
 * Every access is sequentially consistent. Take data (or buffer room)
 * that comes after w2 looked: the kernel calls epoll's callback after
 * queueing it, and the harvest that reports it is after that callback,
 * so p1 for it follows w1 and w1 did not see it. In the single order of
 * the seq_cst operations, either p1 precedes w4, and W sees the edge and
 * tries again; or w4 precedes p1, so w3 precedes p2, and P finds W's
 * token (or a later one of W's, published by a later wait that will see
 * the edge at its own w4) and reports it. Data that came before w2 is what
 * w2 found, and its edge at worst makes W try once more for nothing. An
 * edge whose harvest came before w1 belongs to data w2 saw. The counters
 * wrap at 2^16: W would miss an edge only if exactly 65,536 of them were
 * harvested between w1 and w4, around one system call (2^15 for writes).
 *
 * A read that need not be tried (reactor_drained): a stream socket whose
 * last read emptied it — EAGAIN, or fewer bytes than asked for — and that
 * has had no read edge since the ticket taken before that read holds
 * nothing a read would find: data that came after that read looked has an
 * edge, harvested after the ticket. So its next read parks at once,
 * without the system call that would only say EAGAIN (the echo pattern:
 * read, write, read again before the peer could answer). A short read
 * can leave something behind in three ways: TCP urgent data (a read
 * stops at the mark), the peer's end of stream (the read after the data
 * returns 0) and a pending error (it returns the error). Each arrives as
 * an edge with EPOLLPRI, EPOLLRDHUP, EPOLLHUP or EPOLLERR, which marks the
 * record for good (SPECIAL) and ends the shortcut for that socket: either
 * its harvest came before the ticket, and the mark is seen, or after, and
 * the counter moved. (A socket's end comes once; urgent data is rare.)
 *
 * Closing: the owner takes the fd out of the set before closing it
 * (reactor_unwatch, one epoll_ctl per socket's life; the kernel would
 * remove the file only at its last close, and a copy of it may live on
 * in a child program); the record stays (chunks live as long as the reactor), so a poller
 * holding an event of a closed fd reads valid memory, and the generation
 * makes it drop the event once the number is registered again. Until
 * then the late edge only bumps counters nobody reads and reports a token
 * whose wait is over.
 *
 * A poll waits with epoll_pwait2's nanosecond timeout: an idle scheduler
 * waits here for its next timer too, and epoll_wait's milliseconds would
 * stretch a 200 µs receive timeout to over a millisecond. A kernel without
 * it (ENOSYS, or EPERM from a seccomp filter that does not know it) gets
 * epoll_wait, the timeout rounded up.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "reactor.h"

#define WAKE_TOKEN UINT64_MAX
/* A registered fd's epoll data: EDGE_TAG | generation (30 bits) << 32 | fd.
 * (One-shot tokens never have bit 62 without bit 63: wisp's process tokens
 * are below 2^63 with bit 62 clear, the remote layer's have bit 63.) */
#define EDGE_TAG (1ull << 62)
#define GEN_MASK ((1ull << 30) - 1)
#define CHUNK_BITS 10
#define CHUNK (1u << CHUNK_BITS)
#define MAX_FDS (1u << 22)   /* fds beyond: reactor_arm only */
/* struct reactor_src's state: read edges, write edges, "special" seen
 * (urgent data, the peer's end of stream, a hang-up or an error: for
 * good), generation. */
#define RD_MASK 0xffffull
#define WR_SHIFT 16
#define WR_MASK 0x7fffull
#define SPECIAL (1ull << 31)

static bool is_edge(uint64_t data)
{
	return data >> 62 == 1;
}

int reactor_init(struct reactor *r)
{
	r->nchunks = MAX_FDS / CHUNK;
	r->chunks = calloc(r->nchunks, sizeof(*r->chunks));
	if (r->chunks == NULL)
		return -ENOMEM;
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (r->epfd < 0) {
		int e = errno;
		free(r->chunks);
		return -e;
	}
	atomic_init(&r->ms_only, false);
	atomic_init(&r->interrupting, false);
	r->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r->wakefd < 0) {
		int e = errno;
		close(r->epfd);
		free(r->chunks);
		return -e;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = WAKE_TOKEN };
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->wakefd, &ev) != 0) {
		int e = errno;
		close(r->wakefd);
		close(r->epfd);
		free(r->chunks);
		return -e;
	}
	return 0;
}

void reactor_destroy(struct reactor *r)
{
	close(r->wakefd);
	close(r->epfd);
	r->epfd = r->wakefd = -1;
	for (uint32_t i = 0; i < r->nchunks; i++)
		free(atomic_load_explicit(&r->chunks[i], memory_order_relaxed));
	free(r->chunks);
	r->chunks = NULL;
}

/* fd's record; made (zeroed) if `make` and missing. NULL: out of range,
 * or no memory, or (not `make`) never registered. */
static struct reactor_src *src_of(struct reactor *r, int fd, bool make)
{
	if (fd < 0 || (uint32_t)fd >= MAX_FDS)
		return NULL;
	_Atomic(struct reactor_src *) *slot = &r->chunks[(uint32_t)fd >> CHUNK_BITS];
	struct reactor_src *c = atomic_load_explicit(slot, memory_order_acquire);
	if (c == NULL && make) {
		struct reactor_src *fresh = calloc(CHUNK, sizeof(*fresh));
		if (fresh == NULL)
			return NULL;
		if (atomic_compare_exchange_strong(slot, &c, fresh))
			c = fresh;
		else
			free(fresh);    /* another thread made it: c is theirs */
	}
	return c != NULL ? &c[(uint32_t)fd & (CHUNK - 1)] : NULL;
}

int reactor_watch(struct reactor *r, int fd)
{
	struct reactor_src *src = src_of(r, fd, true);
	if (src == NULL)
		return fd >= 0 && (uint32_t)fd < MAX_FDS ? -ENOMEM : -ERANGE;
	/* A new generation: events of an earlier file under this number, or
	 * of this file's earlier registration, no longer count. */
	uint64_t st = atomic_fetch_add(&src->state, 1ull << 32) + (1ull << 32);
	atomic_store(&src->waiter, 0);
	struct epoll_event ev = {
		.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET,
		.data.u64 = EDGE_TAG | ((st >> 32) & GEN_MASK) << 32 | (uint32_t)fd,
	};
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev) == 0)
		return 0;
	/* Registered already (a socket given by another owner): the same
	 * registration, under the new generation. */
	if (errno == EEXIST && epoll_ctl(r->epfd, EPOLL_CTL_MOD, fd, &ev) == 0)
		return 0;
	return -errno;
}

void reactor_unwatch(struct reactor *r, int fd)
{
	if (r->chunks == NULL)
		return;       /* destroyed: the process tables go last */
	struct reactor_src *src = src_of(r, fd, false);
	if (src == NULL)
		return;
	atomic_fetch_add(&src->state, 1ull << 32);
	atomic_store(&src->waiter, 0);
	epoll_ctl(r->epfd, EPOLL_CTL_DEL, fd, NULL);
}

uint64_t reactor_ticket(struct reactor *r, int fd)
{
	struct reactor_src *src = src_of(r, fd, false);
	return src != NULL ? atomic_load(&src->state) : 0;
}

/* Did an edge for `events` come between ticket t and state s? */
static bool edged(uint64_t t, uint64_t s, uint32_t events)
{
	if ((t >> 32) != (s >> 32))
		return true;
	if ((events & REACTOR_READ) && (t & RD_MASK) != (s & RD_MASK))
		return true;
	return (events & REACTOR_WRITE) &&
	       ((t >> WR_SHIFT) & WR_MASK) != ((s >> WR_SHIFT) & WR_MASK);
}

bool reactor_drained(struct reactor *r, int fd, uint64_t ticket)
{
	struct reactor_src *src = src_of(r, fd, false);
	if (src == NULL)
		return false;
	uint64_t s = atomic_load(&src->state);
	return !(s & SPECIAL) && !edged(ticket, s, REACTOR_READ);
}

bool reactor_expect(struct reactor *r, int fd, uint32_t events, uint64_t ticket,
                    uint64_t token)
{
	struct reactor_src *src = src_of(r, fd, false);
	if (src == NULL)
		return false;    /* (never registered: the caller's mistake; retry) */
	/* The same waiter on the same fd again (read and write subscriptions
	 * of one poll): it waits for both. */
	if (atomic_load(&src->waiter) == token)
		atomic_fetch_or(&src->want, events);
	else
		atomic_store(&src->want, events);
	atomic_store(&src->waiter, token);                   /* w3 */
	if (!edged(ticket, atomic_load(&src->state), events))   /* w4 */
		return true;
	reactor_unexpect(r, fd, token);
	return false;
}

void reactor_unexpect(struct reactor *r, int fd, uint64_t token)
{
	struct reactor_src *src = src_of(r, fd, false);
	uint64_t want = token;
	if (src != NULL)
		atomic_compare_exchange_strong(&src->waiter, &want, 0);
}

/* A registered fd's event: count its edges, and report its waiter if it
 * waits for them (p1, p2 of the opening comment). */
static void edge_event(struct reactor *r, uint64_t data, uint32_t ev,
                       void (*ready)(uint64_t token, void *arg), void *arg)
{
	struct reactor_src *src = src_of(r, (int)(uint32_t)data, false);
	if (src == NULL)
		return;
	uint32_t what = 0;
	if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR | EPOLLPRI))
		what |= REACTOR_READ;
	if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		what |= REACTOR_WRITE;
	uint64_t gen = (data >> 32) & GEN_MASK;
	uint64_t old = atomic_load(&src->state), new;
	do {
		if (((old >> 32) & GEN_MASK) != gen)
			return;     /* a closed file's: its number is another's now */
		uint64_t rd = old & RD_MASK, wr = (old >> WR_SHIFT) & WR_MASK;
		if (what & REACTOR_READ)
			rd = (rd + 1) & RD_MASK;
		if (what & REACTOR_WRITE)
			wr = (wr + 1) & WR_MASK;
		new = (old & ~0xffffffffull) | (old & SPECIAL) | wr << WR_SHIFT | rd;
		if (ev & (EPOLLPRI | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			new |= SPECIAL;
	} while (!atomic_compare_exchange_weak(&src->state, &old, new));   /* p1 */
	uint64_t w = atomic_load(&src->waiter);                             /* p2 */
	if (w != 0 && (atomic_load(&src->want) & what) &&
	    atomic_compare_exchange_strong(&src->waiter, &w, 0))
		ready(w, arg);
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
			/* Cleared before draining: an interrupt from now on
			 * writes again (drained here or waking the next poll). */
			atomic_store(&r->interrupting, false);
			uint64_t v;
			while (read(r->wakefd, &v, sizeof(v)) > 0)
				;
			continue;
		}
		if (is_edge(evs[i].data.u64))
			edge_event(r, evs[i].data.u64, evs[i].events, ready, arg);
		else
			ready(evs[i].data.u64, arg);
		reported++;
	}
	return reported;
}

void reactor_interrupt(struct reactor *r)
{
	/* One write per poll: a busy scheduler asks at every dispatch while
	 * it has work queued (sched.c), and each write is a system call. */
	if (atomic_exchange(&r->interrupting, true))
		return;
	uint64_t one = 1;
	ssize_t w = write(r->wakefd, &one, sizeof(one));
	(void)w;   /* EAGAIN: the counter is already non-zero, a wake is pending */
}
