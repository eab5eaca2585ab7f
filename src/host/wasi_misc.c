/*
 * wasi_misc.c — arguments, environment, clocks, poll_oneoff, randomness and
 * process control.
 *
 * poll_oneoff called by a wisp process parks that process, not the thread:
 * with only clock subscriptions it sleeps (proc_sleep); with fds it waits
 * in the reactor (park_on_fds) and looks again when woken.
 * Otherwise it blocks the calling thread in ppoll(2): clock subscriptions
 * become its timeout (the earliest one), fd subscriptions its pollfds. Each
 * clock subscription keeps its deadline on its own clock, so an absolute
 * CLOCK_REALTIME deadline is checked against the real-time clock after
 * every wake-up, and the wait resumes until some subscription is really due
 * (ppoll may return early on EINTR or for a realtime clock step).
 *
 * proc_raise is ENOTSUP (as in wasmtime): delivering a host signal would hit
 * the whole wisp process, not one guest, and preview 1 has no portable
 * meaning for it.
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tls.h"
#include "wasi_impl.h"
#include "io/reactor.h"
#include "proc/proc.h"

#define W(self) wasi_ctx_of(HOST_PROC(self))
#define MEM(self) (HOST_PROC(self)->mem)

/* Write a string table (argv or environ) into the guest. */
static uint32_t strings_get(wasm_rt_memory_t *mem, const char *strs,
                            uint32_t bytes, uint32_t count, uint32_t ptrs,
                            uint32_t buf)
{
	uint8_t *p = engine_guest_ptr(mem, ptrs, (uint64_t)count * 4);
	char *b = engine_guest_ptr(mem, buf, bytes);
	if (p == NULL || b == NULL)
		return WASI_EFAULT;
	memcpy(b, strs, bytes);
	uint32_t off = 0;
	for (uint32_t i = 0; i < count; i++) {
		wasi_st32(p + (size_t)i * 4, buf + off);
		off += (uint32_t)strlen(strs + off) + 1;
	}
	return 0;
}

static uint32_t sizes_get(wasm_rt_memory_t *mem, uint32_t count,
                          uint32_t bytes, uint32_t count_ptr,
                          uint32_t size_ptr)
{
	if (engine_guest_ptr(mem, count_ptr, 4) == NULL ||
	    engine_guest_ptr(mem, size_ptr, 4) == NULL)
		return WASI_EFAULT;
	wasi_put32(mem, count_ptr, count);
	wasi_put32(mem, size_ptr, bytes);
	return 0;
}

uint32_t WASI_FN(args_get)(WASI_SELF, uint32_t argv, uint32_t argv_buf)
{
	wasi_call_work(self);
	struct wasi_ctx *w = W(self);
	return strings_get(MEM(self), w->args, w->args_bytes, w->argc, argv,
	                   argv_buf);
}

uint32_t WASI_FN(args_sizes_get)(WASI_SELF, uint32_t argc, uint32_t size)
{
	wasi_call_work(self);
	struct wasi_ctx *w = W(self);
	return sizes_get(MEM(self), w->argc, w->args_bytes, argc, size);
}

uint32_t WASI_FN(environ_get)(WASI_SELF, uint32_t environ, uint32_t buf)
{
	wasi_call_work(self);
	struct wasi_ctx *w = W(self);
	return strings_get(MEM(self), w->env, w->env_bytes, w->envc, environ,
	                   buf);
}

uint32_t WASI_FN(environ_sizes_get)(WASI_SELF, uint32_t count, uint32_t size)
{
	wasi_call_work(self);
	struct wasi_ctx *w = W(self);
	return sizes_get(MEM(self), w->envc, w->env_bytes, count, size);
}

static bool host_clock(uint32_t id, clockid_t *out)
{
	switch (id) {
	case WASI_CLOCK_REALTIME: *out = CLOCK_REALTIME; return true;
	case WASI_CLOCK_MONOTONIC: *out = CLOCK_MONOTONIC; return true;
	case WASI_CLOCK_PROCESS_CPUTIME: *out = CLOCK_PROCESS_CPUTIME_ID; return true;
	case WASI_CLOCK_THREAD_CPUTIME: *out = CLOCK_THREAD_CPUTIME_ID; return true;
	default: return false;
	}
}

static uint64_t now_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The CPU-time clocks a process reads are its own: the time its
 * dispatches took (src/sched), not the host's, which counts every process
 * (issue 12.8). A process is one thread of its own, so both are the same.
 * The process, or NULL (outside a process, or another clock: the host's
 * clock then). */
static struct proc *own_cpu_clock(WASI_SELF, uint32_t id)
{
	bool cpu = id == WASI_CLOCK_PROCESS_CPUTIME || id == WASI_CLOCK_THREAD_CPUTIME;
	return cpu ? HOST_PROC(self)->proc : NULL;
}

uint32_t WASI_FN(clock_res_get)(WASI_SELF, uint32_t id, uint32_t res)
{
	wasi_call_work(self);
	clockid_t c;
	struct timespec ts;
	if (own_cpu_clock(self, id) != NULL)
		return wasi_put64(MEM(self), res, 1);   /* the cycle counter's, near enough */
	if (!host_clock(id, &c))
		return WASI_EINVAL;
	if (clock_getres(c, &ts) != 0)
		return wasi_errno(errno);
	return wasi_put64(MEM(self), res, (uint64_t)ts.tv_sec * 1000000000u +
	                                  (uint64_t)ts.tv_nsec);
}

uint32_t WASI_FN(clock_time_get)(WASI_SELF, uint32_t id, uint64_t precision,
                                 uint32_t time)
{
	wasi_call_work(self);
	clockid_t c;
	struct proc *p = own_cpu_clock(self, id);
	if (p != NULL)
		return wasi_put64(MEM(self), time, proc_cpu_time_ns(p));
	if (!host_clock(id, &c))
		return WASI_EINVAL;
	if (engine_guest_ptr(MEM(self), time, 8) == NULL)
		return WASI_EFAULT;
	return wasi_put64(MEM(self), time, now_ns(c));
}

/* One parsed subscription. */
struct sub {
	uint64_t userdata;
	uint8_t type;            /* 0 clock, 1 fd_read, 2 fd_write */
	uint16_t error;          /* reported at once, without waiting */
	clockid_t clock;
	uint64_t deadline;       /* on `clock` */
	int pfd;                 /* index into the pollfd array */
	int host;
	bool tls_ready;          /* fd_read of a TLS stream holding plaintext */
	bool edge;               /* registered with the reactor (wasi_fd_watched) */
};

/* Read one subscription of preview v: userdata at 0, the tag at 8, the
 * contents at 16; preview 0's clock contents begin with an 8-byte
 * `identifier` nothing reports back, so its fields lie 8 bytes further. */
static void parse_sub(struct wasi_ctx *w, const uint8_t *raw, struct sub *s,
                      struct pollfd *pfds, int *npfds, enum wasi_preview v)
{
	s->userdata = wasi_ld64(raw);
	s->type = raw[8];
	s->error = 0;
	s->pfd = -1;
	s->tls_ready = false;
	if (s->type == 0) {
		const uint8_t *clock = raw + (v == WASI_PREVIEW0 ? 24 : 16);
		uint32_t id = wasi_ld32(clock);
		uint64_t timeout = wasi_ld64(clock + 8);
		uint16_t flags = wasi_ld16(clock + 24);
		/* CPU-time clocks do not advance while we sleep. */
		if ((id != WASI_CLOCK_REALTIME && id != WASI_CLOCK_MONOTONIC) ||
		    (flags & ~1u)) {
			s->error = WASI_EINVAL;
			return;
		}
		host_clock(id, &s->clock);
		if (flags & 1) {
			s->deadline = timeout;
		} else {
			uint64_t now = now_ns(s->clock);
			s->deadline = timeout > UINT64_MAX - now ? UINT64_MAX
			                                         : now + timeout;
		}
	} else if (s->type == 1 || s->type == 2) {
		uint16_t err;
		struct wasi_fd *f = wasi_fd_lookup(w, wasi_ld32(raw + 16),
		                                   WASI_RIGHT_POLL_FD_READWRITE,
		                                   &err);
		if (f == NULL) {
			s->error = err;
			return;
		}
		s->host = f->host;
		/* Decrypted bytes wait in the stream, not in the socket. */
		s->tls_ready = s->type == 1 && tls_pending(f);
		s->edge = wasi_fd_watched(w, f);
		s->pfd = (*npfds)++;
		pfds[s->pfd].fd = f->host;
		pfds[s->pfd].events = s->type == 1 ? POLLIN : POLLOUT;
		pfds[s->pfd].revents = 0;
	} else {
		s->error = WASI_EINVAL;
	}
}

/* Bytes ready to read on a host fd, best effort. */
static uint64_t readable_bytes(int fd)
{
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		off_t pos = lseek(fd, 0, SEEK_CUR);
		return pos >= 0 && st.st_size > pos ? (uint64_t)(st.st_size - pos)
		                                    : 0;
	}
	int n = 0;
	if (ioctl(fd, FIONREAD, &n) == 0 && n > 0)
		return (uint64_t)n;
	return 0;
}

/* Fill the event for `s` if it is due; returns whether it was. */
static bool sub_event(const struct sub *s, const struct pollfd *pfds,
                      uint8_t *ev)
{
	memset(ev, 0, WASI_EVENT_SIZE);
	wasi_st64(ev, s->userdata);
	ev[10] = s->type;
	if (s->error) {
		wasi_st16(ev + 8, s->error);
		return true;
	}
	if (s->type == 0)
		return now_ns(s->clock) >= s->deadline;
	if (s->tls_ready) {
		wasi_st64(ev + 16, 1);   /* at least one byte */
		return true;
	}
	short re = pfds[s->pfd].revents;
	if (re == 0)
		return false;
	if (re & POLLNVAL)
		wasi_st16(ev + 8, WASI_EBADF);
	else if ((re & POLLERR) && !(re & (POLLIN | POLLOUT)))
		wasi_st16(ev + 8, WASI_EIO);
	else if (s->type == 1)
		wasi_st64(ev + 16, readable_bytes(s->host));
	if (re & POLLHUP)
		wasi_st16(ev + 24, 1);   /* fd_readwrite_hangup */
	return true;
}

/* Nanoseconds until the earliest clock subscription (-1: none). */
static int64_t next_timeout(const struct sub *subs, uint32_t n)
{
	int64_t best = -1;
	for (uint32_t i = 0; i < n; i++) {
		if (subs[i].type != 0 || subs[i].error)
			continue;
		uint64_t now = now_ns(subs[i].clock);
		uint64_t left = subs[i].deadline > now ? subs[i].deadline - now
		                                       : 0;
		if (left > INT64_MAX)
			left = INT64_MAX;
		if (best < 0 || (int64_t)left < best)
			best = (int64_t)left;
	}
	return best;
}

/* In a wisp process: if no fd is ready yet, park the process until one of
 * them is (through the reactor) or t ns pass (t < 0: no limit). True if it
 * parked (the caller looks again); false to fall back on ppoll(2) (an fd
 * is ready already, or one the reactor cannot watch, like a regular file).
 * However many fds there are: a fallback ppoll would hold the scheduler
 * thread for as long as the fds stay silent (forever without a clock). */
static bool park_on_fds(struct host_proc *hp, const struct sub *subs, uint32_t n,
                        struct pollfd *pfds, int npfds, int64_t t)
{
	/* Scratch, which the process's exit frees if a kill unwinds the park. */
	struct proc_fd_wait *w = host_scratch_alloc(hp, (size_t)npfds * sizeof(*w));
	if (w == NULL)
		return false;
	for (uint32_t i = 0; i < n; i++) {
		if (subs[i].pfd < 0)
			continue;
		struct pollfd *p = &pfds[subs[i].pfd];
		/* A registered fd's ticket before the look (proc_wait_fdset). */
		w[subs[i].pfd] = (struct proc_fd_wait){
			.fd = p->fd,
			.events = ((p->events & POLLIN) ? REACTOR_READ : 0) |
			          ((p->events & POLLOUT) ? REACTOR_WRITE : 0),
			.edge = subs[i].edge,
			.ticket = subs[i].edge ? proc_fd_ticket(hp->proc, p->fd) : 0,
		};
	}
	struct timespec zero = { 0, 0 };
	if (ppoll(pfds, (nfds_t)npfds, &zero, NULL) != 0) {
		host_scratch_free(hp, w);
		return false;
	}
	int rc = proc_wait_fdset(hp->proc, w, (uint32_t)npfds, t);
	host_scratch_free(hp, w);
	return rc == 0 || rc == -ETIMEDOUT;
}

uint32_t WASI_FN(poll_oneoff)(WASI_SELF, uint32_t in, uint32_t out,
                              uint32_t nsubscriptions, uint32_t nevents)
{
	return wasi_poll_oneoff(self, in, out, nsubscriptions, nevents,
	                        WASI_PREVIEW1);
}

uint32_t wasi_poll_oneoff(WASI_SELF, uint32_t in, uint32_t out,
                          uint32_t nsubscriptions, uint32_t nevents,
                          enum wasi_preview v)
{
	wasi_call_work(self);
	wasm_rt_memory_t *mem = MEM(self);
	uint32_t n = nsubscriptions;
	if (n == 0)
		return WASI_EINVAL;
	size_t subsize = v == WASI_PREVIEW0 ? WASI_P0_SUBSCRIPTION_SIZE
	                                    : WASI_SUBSCRIPTION_SIZE;
	const uint8_t *raw = engine_guest_ptr(mem, in, (uint64_t)n * subsize);
	uint8_t *evs = engine_guest_ptr(mem, out, (uint64_t)n * WASI_EVENT_SIZE);
	if (raw == NULL || evs == NULL ||
	    engine_guest_ptr(mem, nevents, 4) == NULL)
		return WASI_EFAULT;
	/* Scratch the process's exit frees if a kill unwinds a parked poll. */
	struct host_proc *hp = HOST_PROC(self);
	struct sub *subs = host_scratch_alloc(hp, n * sizeof(*subs));
	struct pollfd *pfds = host_scratch_alloc(hp, n * sizeof(*pfds));
	if (subs == NULL || pfds == NULL) {
		host_scratch_free(hp, subs);
		host_scratch_free(hp, pfds);
		return WASI_ENOMEM;
	}
	int npfds = 0;
	bool errors = false;
	/* Parse everything before writing: `in` and `out` may overlap. */
	for (uint32_t i = 0; i < n; i++) {
		parse_sub(W(self), raw + (size_t)i * subsize, &subs[i], pfds,
		          &npfds, v);
		errors |= subs[i].error != 0 || subs[i].tls_ready;   /* (no wait) */
	}
	uint32_t count = 0;
	uint16_t err = 0;
	uint8_t ev[WASI_EVENT_SIZE];
	for (;;) {
		/* Every look reads each subscription and arms each fd. */
		wasi_moved(self, (uint64_t)n * subsize +
		                 (uint64_t)npfds * WASI_CALL_REDUCTIONS * 64);
		int64_t t = errors ? 0 : next_timeout(subs, n);
		struct proc *proc = HOST_PROC(self)->proc;
		if (npfds == 0 && t > 0 && proc != NULL) {
			/* Only clocks, in a wisp process: park the process, not the
			 * scheduler thread (others keep running meanwhile). */
			proc_sleep(proc, t);
			goto check;
		}
		if (npfds > 0 && t != 0 && proc != NULL && park_on_fds(hp, subs, n, pfds, npfds, t))
			continue;   /* woken: look again (clocks included) */
		struct timespec ts = { (time_t)(t / 1000000000),
		                       (long)(t % 1000000000) };
		int r = ppoll(pfds, (nfds_t)npfds, t < 0 ? NULL : &ts, NULL);
		if (r < 0 && errno != EINTR) {
			err = wasi_errno(errno);
			break;
		}
		if (r < 0)
			continue;
	check:
		for (uint32_t i = 0; i < n; i++)
			if (sub_event(&subs[i], pfds, ev))
				memcpy(evs + (size_t)count++ * WASI_EVENT_SIZE,
				       ev, WASI_EVENT_SIZE);
		if (count > 0)
			break;
	}
	host_scratch_free(hp, subs);
	host_scratch_free(hp, pfds);
	if (err)
		return err;
	return wasi_put32(mem, nevents, count);
}

uint32_t WASI_FN(random_get)(WASI_SELF, uint32_t buf, uint32_t buf_len)
{
	wasi_call_work(self);
	uint8_t *p = engine_guest_ptr(MEM(self), buf, buf_len);
	if (p == NULL)
		return WASI_EFAULT;
	wasi_moved(self, buf_len);
	/* getrandom returns at most 32 MiB per call; loop until full. */
	uint32_t done = 0;
	while (done < buf_len) {
		ssize_t r = getrandom(p + done, buf_len - done, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return wasi_errno(errno);
		}
		done += (uint32_t)r;
	}
	return 0;
}

uint32_t WASI_FN(sched_yield)(WASI_SELF)
{
	wasi_call_work(self);
	/* In a wisp process, let the other processes run; else the thread. */
	if (HOST_PROC(self)->proc != NULL)
		proc_yield(HOST_PROC(self)->proc);
	else
		sched_yield();
	return 0;
}

void WASI_FN(proc_exit)(WASI_SELF, uint32_t code)
{
	engine_exit(engine_current(), (int)code);
}

uint32_t WASI_FN(proc_raise)(WASI_SELF, uint32_t sig)
{
	wasi_call_work(self);
	return WASI_ENOTSUP;
}
