/*
 * wasi.c — one process's WASI state: the fd table, args and environment,
 * and the helpers every WASI function shares (errno mapping, rights, guest
 * memory access).
 *
 * The state is built from the process's capability set (wasi_ctx_new) on
 * its first WASI call. The fd table is a growable array of slots; a guest fd
 * is an index. New fds take the lowest free slot, as POSIX does. Slots 0-2
 * start as the embedder's stdio fds, then come the set's directories, in
 * order. Both are `borrowed`: the guest may close or renumber them (the slot
 * is dropped) but the host fd is never closed by WASI, and flags a guest
 * sets on them stay its own (see wasi_fd.c). A directory slot holds the
 * set's O_PATH|O_DIRECTORY fd, opened once when the root set was built and
 * shared by every process holding the set: it is the root that the kernel
 * confines every path lookup to (see wasi_path.c), and no host path is ever
 * looked up again, so a guest that swaps a preopened directory's path for a
 * symlink changes nothing.
 *
 * File descriptors are bounded twice. Per process: a new fd must be
 * numbered below the set's max_fds (EMFILE), as POSIX numbers below
 * RLIMIT_NOFILE. For the host: the top of the host's fd space is the
 * runtime's reserve (epoll, eventfds, the cache, compilers), and a guest is
 * never given a host fd numbered there (ENFILE to that guest). The kernel
 * hands out the lowest free number, so an fd in the reserve means every
 * number below it is taken; guests together thus never hold more than the
 * limit minus the reserve, whatever their per-process limits add up to. The
 * check is on the number the kernel returned (no shared counter to keep
 * right), at wasi_fd_insert, which every guest fd passes.
 *
 * Rights follow the preview 1 model: each slot has base and inheriting
 * rights; fds opened below a directory get at most its inheriting rights.
 * Below a read-only preopen no fd has any right in WASI_RIGHTS_WRITING in
 * its base rights, and the `read_only` mark is inherited and checked by
 * every writing call, so writes are refused twice over. The inheriting
 * rights of such directories still list the write rights on purpose:
 * wasi-libc masks its path_open request by them, and would otherwise turn
 * open(O_WRONLY) into a silent read-only open instead of ENOTCAPABLE.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "wasi_impl.h"
#include "tls.h"
#include "io/reactor.h"
#include "proc/caps.h"
#include "proc/proc.h"

/* The table never grows past this many slots, whatever max_fds says. */
#define WASI_MAX_FDS (1u << 20)
/* Host fds kept for the runtime: a quarter of RLIMIT_NOFILE, at most this. */
#define WASI_HOST_FD_RESERVE 256

uint16_t wasi_errno(int e)
{
	switch (e) {
	case 0: return 0;
	case E2BIG: return 1;
	case EACCES: return 2;
	case EADDRINUSE: return 3;
	case EADDRNOTAVAIL: return 4;
	case EAFNOSUPPORT: return 5;
	case EAGAIN: return 6;
	case EALREADY: return 7;
	case EBADF: return 8;
	case EBADMSG: return 9;
	case EBUSY: return 10;
	case ECANCELED: return 11;
	case ECHILD: return 12;
	case ECONNABORTED: return 13;
	case ECONNREFUSED: return 14;
	case ECONNRESET: return 15;
	case EDEADLK: return 16;
	case EDESTADDRREQ: return 17;
	case EDOM: return 18;
	case EDQUOT: return 19;
	case EEXIST: return 20;
	case EFAULT: return 21;
	case EFBIG: return 22;
	case EHOSTUNREACH: return 23;
	case EIDRM: return 24;
	case EILSEQ: return 25;
	case EINPROGRESS: return 26;
	case EINTR: return 27;
	case EINVAL: return 28;
	case EIO: return 29;
	case EISCONN: return 30;
	case EISDIR: return 31;
	case ELOOP: return 32;
	case EMFILE: return 33;
	case EMLINK: return 34;
	case EMSGSIZE: return 35;
	case EMULTIHOP: return 36;
	case ENAMETOOLONG: return 37;
	case ENETDOWN: return 38;
	case ENETRESET: return 39;
	case ENETUNREACH: return 40;
	case ENFILE: return 41;
	case ENOBUFS: return 42;
	case ENODEV: return 43;
	case ENOENT: return 44;
	case ENOEXEC: return 45;
	case ENOLCK: return 46;
	case ENOLINK: return 47;
	case ENOMEM: return 48;
	case ENOMSG: return 49;
	case ENOPROTOOPT: return 50;
	case ENOSPC: return 51;
	case ENOSYS: return 52;
	case ENOTCONN: return 53;
	case ENOTDIR: return 54;
	case ENOTEMPTY: return 55;
	case ENOTRECOVERABLE: return 56;
	case ENOTSOCK: return 57;
	case ENOTSUP: return 58;   /* == EOPNOTSUPP on Linux */
	case ENOTTY: return 59;
	case ENXIO: return 60;
	case EOVERFLOW: return 61;
	case EOWNERDEAD: return 62;
	case EPERM: return 63;
	case EPIPE: return 64;
	case EPROTO: return 65;
	case EPROTONOSUPPORT: return 66;
	case EPROTOTYPE: return 67;
	case ERANGE: return 68;
	case EROFS: return 69;
	case ESPIPE: return 70;
	case ESRCH: return 71;
	case ESTALE: return 72;
	case ETIMEDOUT: return 73;
	case ETXTBSY: return 74;
	case EXDEV: return 75;
	/* Linux-only values with a close WASI meaning. */
	case ENOTBLK: return WASI_ENOTSUP;
	case ENOMEDIUM: return 43;
	case ENOKEY: case EKEYEXPIRED: case EKEYREVOKED: case EKEYREJECTED:
		return WASI_EACCES;
	case ESHUTDOWN: return WASI_EPIPE;
	case EHOSTDOWN: return 23;
	case ETIME: return 73;
	case ENONET: return 40;
	case EREMOTEIO: case ECOMM: return WASI_EIO;
	case ENOSR: case ENOSTR: case ENODATA: return 49;
	case EBADFD: return WASI_EBADF;
	case ESOCKTNOSUPPORT: return 66;
	case EPFNOSUPPORT: return 5;
	case ETOOMANYREFS: return 41;
	case EUSERS: return 41;
	case ERFKILL: return 38;
	default: return WASI_EIO;
	}
}

void wasi_call_work(void *self)
{
	struct proc *p = HOST_PROC(self)->proc;
	if (p != NULL)
		proc_charge_work(p, (uint64_t)(WASI_CALL_REDUCTIONS - 1) * 64);
}

void wasi_moved(void *self, uint64_t bytes)
{
	struct proc *p = HOST_PROC(self)->proc;
	if (p != NULL && bytes > 0)
		proc_charge_work(p, bytes);
}

struct wasi_fd *wasi_fd_lookup(struct wasi_ctx *w, uint32_t fd,
                               uint64_t rights, uint16_t *err)
{
	if (fd < w->nfds && w->fds[fd].used && w->fds[fd].served != NULL) {
		*err = WASI_ENOTSUP;   /* no host fd: never handed to a syscall */
		return NULL;
	}
	return wasi_fd_lookup_any(w, fd, rights, err);
}

struct wasi_fd *wasi_fd_lookup_any(struct wasi_ctx *w, uint32_t fd,
                                   uint64_t rights, uint16_t *err)
{
	if (fd >= w->nfds || !w->fds[fd].used) {
		*err = WASI_EBADF;
		return NULL;
	}
	struct wasi_fd *f = &w->fds[fd];
	if ((f->rights_base & rights) != rights) {
		*err = WASI_ENOTCAPABLE;
		return NULL;
	}
	*err = 0;
	return f;
}

uint16_t wasi_host_fd_check(const struct wasi_ctx *w, int host)
{
	return host >= w->host_fd_ceiling ? WASI_ENFILE : 0;
}

/* Put f in the lowest free slot if that is below `limit`. */
static uint16_t slot_take(struct wasi_ctx *w, const struct wasi_fd *f,
                          uint32_t limit, uint32_t *out)
{
	uint32_t i;
	for (i = 0; i < w->nfds; i++)
		if (!w->fds[i].used)
			break;
	if (i >= limit)
		return WASI_EMFILE;
	if (i == w->nfds) {
		if (w->nfds >= WASI_MAX_FDS)
			return WASI_EMFILE;
		uint32_t n = w->nfds ? w->nfds * 2 : 8;
		struct wasi_fd *grown = realloc(w->fds, n * sizeof(*grown));
		if (grown == NULL)
			return WASI_ENOMEM;
		memset(grown + w->nfds, 0, (n - w->nfds) * sizeof(*grown));
		w->fds = grown;
		w->nfds = n;
	}
	w->fds[i] = *f;
	w->fds[i].used = true;
	*out = i;
	return 0;
}

uint16_t wasi_fd_insert(struct wasi_ctx *w, const struct wasi_fd *f,
                        uint32_t *out)
{
	if (!f->borrowed && wasi_host_fd_check(w, f->host) != 0)
		return WASI_ENFILE;
	uint32_t limit = w->max_fds;
	if (w->in_flight != NULL) {
		uint32_t sent = atomic_load(w->in_flight);
		limit = sent < limit ? limit - sent : 0;
	}
	uint16_t err = slot_take(w, f, limit, out);
	if (err == 0) {
		w->fds[*out].counted_by = NULL;   /* (counted here, for this slot) */
		wasi_fd_count_socket(w, &w->fds[*out]);
	}
	return err;
}

void wasi_fd_count_socket(struct wasi_ctx *w, struct wasi_fd *f)
{
	if (w->proc == NULL || f->borrowed || f->counted_by != NULL || f->host < 0 ||
	    (f->filetype != WASI_FILETYPE_SOCKET_STREAM &&
	     f->filetype != WASI_FILETYPE_SOCKET_DGRAM))
		return;
	f->counted_by = w->proc;
	rt_count(w->proc->rt, RT_SOCKETS_OPENED, 1);
}

int wasi_host_fd_ceiling(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur > INT_MAX)
		return INT_MAX;
	rlim_t reserve = rl.rlim_cur / 4;
	if (reserve > WASI_HOST_FD_RESERVE)
		reserve = WASI_HOST_FD_RESERVE;
	return (int)(rl.rlim_cur - reserve);
}

void wasi_fd_release(struct wasi_fd *f)
{
	if (!f->used)
		return;
	wasi_fd_closedir(f);
	if (f->tls != NULL)
		tls_stream_free(f->tls);   /* its close_notify, then the socket */
	if (!f->borrowed && f->host >= 0) {
		if (f->watch == WASI_WATCH_ON)
			proc_fd_unwatch(f->watched_by, f->host);
		close(f->host);
	}
	if (f->counted_by != NULL)
		rt_count(f->counted_by->rt, RT_SOCKETS_CLOSED, 1);
	free(f->preopen_name);
	wasi_served_release(f->served);
	memset(f, 0, sizeof(*f));
	f->host = -1;
}

uint8_t wasi_filetype_of_mode(unsigned mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: return WASI_FILETYPE_REGULAR_FILE;
	case S_IFDIR: return WASI_FILETYPE_DIRECTORY;
	case S_IFCHR: return WASI_FILETYPE_CHARACTER_DEVICE;
	case S_IFBLK: return WASI_FILETYPE_BLOCK_DEVICE;
	case S_IFLNK: return WASI_FILETYPE_SYMBOLIC_LINK;
	case S_IFSOCK: return WASI_FILETYPE_SOCKET_STREAM;
	default: return WASI_FILETYPE_UNKNOWN;   /* FIFOs have no WASI type */
	}
}

uint64_t wasi_rights_for_type(uint8_t filetype, int host_fd)
{
	switch (filetype) {
	case WASI_FILETYPE_DIRECTORY:
		return WASI_RIGHTS_DIR;
	case WASI_FILETYPE_SOCKET_STREAM:
	case WASI_FILETYPE_SOCKET_DGRAM:
		return WASI_RIGHTS_SOCKET;
	case WASI_FILETYPE_CHARACTER_DEVICE:
		/* wasi-libc's isatty() wants a terminal without seek/tell. */
		if (host_fd >= 0 && isatty(host_fd))
			return WASI_RIGHTS_FILE &
			       ~(WASI_RIGHT_FD_SEEK | WASI_RIGHT_FD_TELL);
		return WASI_RIGHTS_FILE;
	default:
		return WASI_RIGHTS_FILE;
	}
}

static uint64_t ts_ns(struct timespec ts)
{
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void wasi_filestat_encode(uint8_t *out, const struct stat *st,
                          enum wasi_preview v)
{
	memset(out, 0, wasi_filestat_size(v));
	wasi_st64(out + 0, (uint64_t)st->st_dev);
	wasi_st64(out + 8, (uint64_t)st->st_ino);
	out[16] = wasi_filetype_of_mode(st->st_mode);
	/* Preview 0's linkcount is a u32 at 20: the fields after it move up
	 * by 8 (docs/abi.md, "Older modules"). */
	size_t at = 24;
	if (v == WASI_PREVIEW0) {
		uint64_t n = (uint64_t)st->st_nlink;
		wasi_st32(out + 20, n > UINT32_MAX ? UINT32_MAX : (uint32_t)n);
	} else {
		wasi_st64(out + at, (uint64_t)st->st_nlink);
		at += 8;
	}
	wasi_st64(out + at, (uint64_t)st->st_size);
	wasi_st64(out + at + 8, ts_ns(st->st_atim));
	wasi_st64(out + at + 16, ts_ns(st->st_mtim));
	wasi_st64(out + at + 24, ts_ns(st->st_ctim));
}

uint16_t wasi_iov_load(struct host_proc *hp, uint32_t iovs, uint32_t n,
                       struct iovec *stackbuf, uint32_t stackn,
                       struct iovec **iov, int *niov)
{
	wasm_rt_memory_t *mem = hp->mem;
	const uint8_t *raw = engine_guest_ptr(mem, iovs,
	                                      (uint64_t)n * WASI_IOVEC_SIZE);
	if (raw == NULL)
		return WASI_EFAULT;
	if (n > IOV_MAX)
		n = IOV_MAX;
	struct iovec *v = stackbuf;
	if (n > stackn) {
		/* Scratch: the call may park with it, and a kill then unwinds
		 * past wasi_iov_free (the process's exit frees scratch). */
		v = host_scratch_alloc(hp, n * sizeof(*v));
		if (v == NULL)
			return WASI_ENOMEM;
	}
	uint64_t total = 0;
	uint32_t i;
	for (i = 0; i < n; i++) {
		uint32_t base = wasi_ld32(raw + i * WASI_IOVEC_SIZE);
		uint32_t len = wasi_ld32(raw + i * WASI_IOVEC_SIZE + 4);
		void *p = engine_guest_ptr(mem, base, len);
		if (p == NULL) {
			wasi_iov_free(hp, v, stackbuf);
			return WASI_EFAULT;
		}
		/* Keep the byte count representable in the guest's u32 result. */
		if (total + len > INT32_MAX)
			len = (uint32_t)(INT32_MAX - total);
		v[i].iov_base = p;
		v[i].iov_len = len;
		total += len;
		if (total == INT32_MAX) {
			i++;
			break;
		}
	}
	*iov = v;
	*niov = (int)i;
	return 0;
}

void wasi_iov_free(struct host_proc *hp, struct iovec *iov, struct iovec *stackbuf)
{
	if (iov != stackbuf)
		host_scratch_free(hp, iov);
}

uint16_t wasi_put32(wasm_rt_memory_t *mem, uint32_t addr, uint32_t v)
{
	void *p = engine_guest_ptr(mem, addr, 4);
	if (p == NULL)
		return WASI_EFAULT;
	wasi_st32(p, v);
	return 0;
}

uint16_t wasi_put64(wasm_rt_memory_t *mem, uint32_t addr, uint64_t v)
{
	void *p = engine_guest_ptr(mem, addr, 8);
	if (p == NULL)
		return WASI_EFAULT;
	wasi_st64(p, v);
	return 0;
}

/* Copy n strings back to back into one NUL-separated buffer. */
static int copy_strings(int n, const char *const *src, char **out,
                        uint32_t *bytes, uint32_t *count)
{
	size_t total = 0;
	for (int i = 0; i < n; i++)
		total += strlen(src[i]) + 1;
	if (total > UINT32_MAX || (uint64_t)n * 4 > UINT32_MAX)
		return -E2BIG;
	char *buf = malloc(total ? total : 1);
	if (buf == NULL)
		return -ENOMEM;
	size_t off = 0;
	for (int i = 0; i < n; i++) {
		size_t len = strlen(src[i]) + 1;
		memcpy(buf + off, src[i], len);
		off += len;
	}
	*out = buf;
	*bytes = (uint32_t)total;
	*count = (uint32_t)n;
	return 0;
}

/* Slot 0-2 as the host fd `host`; parks: a non-blocking private fd the
 * process waits for on the reactor (caps park_fd). */
static int add_stdio(struct wasi_ctx *w, int slot, int host, bool parks)
{
	struct stat st;
	if (host < 0)
		return 0;
	if (fstat(host, &st) != 0)
		return -errno;
	int fl = fcntl(host, F_GETFL);
	if (fl < 0)
		return -errno;
	struct wasi_fd *f = &w->fds[slot];
	f->used = true;
	f->borrowed = true;
	f->parks = parks;
	/* The guest starts with the host's APPEND (a `>>` log) and blocking
	 * I/O, whatever O_NONBLOCK a previous program left on the fd. */
	f->vflags = (fl & O_APPEND) ? WASI_FDFLAG_APPEND : 0;
	f->host = host;
	f->filetype = wasi_filetype_of_mode(st.st_mode);
	int type;
	socklen_t len = sizeof(type);
	if (S_ISSOCK(st.st_mode) &&
	    getsockopt(host, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
	    type == SOCK_DGRAM)
		f->filetype = WASI_FILETYPE_SOCKET_DGRAM;
	f->rights_base = wasi_rights_for_type(f->filetype, host);
	/* a listening socket passes its rights on to accepted ones */
	f->rights_inheriting = S_ISSOCK(st.st_mode) ? WASI_RIGHTS_SOCKET : 0;
	return 0;
}

static int add_preopen(struct wasi_ctx *w, const struct cap_dir *d,
                       char *err, size_t errlen)
{
	struct wasi_fd f = {
		.host = d->fd,
		.borrowed = true,
		.filetype = WASI_FILETYPE_DIRECTORY,
		.read_only = d->read_only,
		.rights_base = WASI_RIGHTS_DIR,
		.rights_inheriting = WASI_RIGHTS_ALL,
		.preopen_name = strdup(d->guest),
	};
	if (d->read_only)
		f.rights_base &= ~WASI_RIGHTS_WRITING;
	uint32_t slot;
	/* Preopens are numbered whatever max_fds says (as a lowered
	 * RLIMIT_NOFILE leaves open fds alone): the limit is on new fds. */
	if (f.preopen_name == NULL ||
	    slot_take(w, &f, WASI_MAX_FDS, &slot) != 0) {
		free(f.preopen_name);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

int wasi_ctx_new(const struct caps *c, const int *inherit,
                 struct wasi_ctx **out, char *err, size_t errlen)
{
	int r;
	struct wasi_ctx *w = calloc(1, sizeof(*w));
	*out = NULL;
	if (w == NULL)
		goto nomem;
	w->fds = calloc(8, sizeof(*w->fds));
	if (w->fds == NULL)
		goto nomem;
	w->nfds = 8;     /* only once the table exists: wasi_ctx_free walks it */
	for (uint32_t i = 0; i < w->nfds; i++)
		w->fds[i].host = -1;
	w->max_fds = c->max_fds < WASI_MAX_FDS ? (uint32_t)c->max_fds
	                                       : WASI_MAX_FDS;
	w->host_fd_ceiling = wasi_host_fd_ceiling();
	r = copy_strings(c->nargs, (const char *const *)c->args, &w->args,
	                 &w->args_bytes, &w->argc);
	if (r == 0)
		r = copy_strings(c->nenv, (const char *const *)c->env, &w->env,
		                 &w->env_bytes, &w->envc);
	if (r != 0) {
		snprintf(err, errlen, "arguments/environment: %s", strerror(-r));
		goto fail;
	}
	for (int i = 0; i < 3; i++) {
		bool parks;
		int host = caps_stdio_fd(c, i, inherit, &parks);
		r = add_stdio(w, i, host, parks);
		if (r != 0) {
			snprintf(err, errlen, "stdio fd %d: %s", host, strerror(-r));
			goto fail;
		}
	}
	/* Preopens start at fd 3 even if a stdio slot is closed: hold the
	 * closed slots (host -1, borrowed) while numbering, then free them. */
	for (int i = 0; i < 3; i++) {
		if (!w->fds[i].used) {
			w->fds[i].used = true;
			w->fds[i].borrowed = true;
		}
	}
	for (int i = 0; i < c->ndirs; i++) {
		r = add_preopen(w, &c->dirs[i], err, errlen);
		if (r != 0)
			goto fail;
	}
	for (int i = 0; i < 3; i++)
		if (w->fds[i].host < 0)
			w->fds[i].used = false;
	*out = w;
	return 0;
nomem:
	r = -ENOMEM;
	snprintf(err, errlen, "out of memory");
fail:
	wasi_ctx_free(w);
	return r;
}

void wasi_ctx_free(struct wasi_ctx *w)
{
	if (w == NULL)
		return;
	for (uint32_t i = 0; i < w->nfds; i++) {
		/* No CLOSE from here: a process that ends sent them already
		 * (wasi_ctx_close_served), and one the runtime discards must
		 * not message anyone. */
		wasi_served_disown(w->fds[i].served);
		wasi_fd_release(&w->fds[i]);
	}
	free(w->fds);
	free(w->tls_error);
	free(w->args);
	free(w->env);
	free(w);
}

struct wasi_ctx *wasi_ctx_of(struct host_proc *hp)
{
	if (hp->wasi != NULL || hp->caps == NULL)
		return hp->wasi;
	if (hp->wasi_failed)
		engine_trap_msg(engine_current(), WASM_RT_TRAP_UNREACHABLE,
		                "cannot set up WASI: the program's stdio could not be made");
	char err[512], msg[600];
	if (wasi_ctx_new(hp->caps, NULL, &hp->wasi, err, sizeof(err)) != 0) {
		snprintf(msg, sizeof(msg), "cannot set up WASI: %s", err);
		engine_trap_msg(engine_current(), WASM_RT_TRAP_UNREACHABLE, msg);
	}
	if (hp->proc != NULL) {
		hp->wasi->in_flight = &hp->proc->fds_in_flight;
		hp->wasi->proc = hp->proc;
	}
	return hp->wasi;
}

bool wasi_fd_watched(struct wasi_ctx *w, struct wasi_fd *f)
{
	if (f->watch == WASI_WATCH_ON)
		return true;
	if (f->watch == WASI_WATCH_OFF || !f->parks || f->borrowed || f->host < 0 ||
	    w == NULL || w->proc == NULL)
		return false;
	f->watch = proc_fd_watch(w->proc, f->host) == 0 ? WASI_WATCH_ON : WASI_WATCH_OFF;
	if (f->watch == WASI_WATCH_ON) {
		f->watched_by = w->proc;
		f->ticket = proc_fd_ticket(w->proc, f->host);
	}
	f->drained = false;
	return f->watch == WASI_WATCH_ON;
}

int wasi_fd_wait(struct wasi_ctx *w, struct wasi_fd *f, uint32_t events, int64_t timeout_ns)
{
	if (f->watch != WASI_WATCH_ON) {
		if (!wasi_fd_watched(w, f))
			return proc_wait_fd(w->proc, f->host, events, timeout_ns);
		/* Registered just now: its ticket is newer than the caller's
		 * try, so look once more (from the ticket on, edges count). A
		 * caller that waits with a slot of its own making (not the
		 * table's) pays this look at every wait, and is still right. */
		struct pollfd pf = {
			.fd = f->host,
			.events = (short)(((events & REACTOR_READ) ? POLLIN : 0) |
			                  ((events & REACTOR_WRITE) ? POLLOUT : 0)),
		};
		if (poll(&pf, 1, 0) != 0)
			return 0;
	}
	struct proc_fd_wait one = { .fd = f->host, .events = events, .edge = true,
	                            .ticket = f->ticket };
	int rc = proc_wait_fdset(w->proc, &one, 1, timeout_ns);
	/* (f is still ours: nothing changes a parked process's table.) */
	f->ticket = proc_fd_ticket(w->proc, f->host);
	f->drained = false;
	return rc;
}

bool wasi_wait_ready(void *self, struct wasi_fd *f, bool write)
{
	struct proc *p = HOST_PROC(self)->proc;
	if (f->guest_nonblock || (f->borrowed && (f->vflags & WASI_FDFLAG_NONBLOCK)))
		return false;     /* the guest asked for EAGAIN */
	if (!f->parks && !f->borrowed)
		return false;
	/* A socket or a parking stdio fd: the process waits on the reactor,
	 * its scheduler runs others. */
	if (f->parks && p != NULL) {
		int rc = wasi_fd_wait(wasi_ctx_of(HOST_PROC(self)), f,
		                      write ? REACTOR_WRITE : REACTOR_READ, -1);
		if (rc != -EPERM)     /* EPERM: an fd epoll cannot watch */
			return rc == 0;
	}
	/* A borrowed fd whose shared flags say O_NONBLOCK (left so by another
	 * program), outside a process or unwatchable: wait on this thread. */
	struct pollfd pf = { .fd = f->host, .events = write ? POLLOUT : POLLIN };
	return poll(&pf, 1, -1) >= 0 || errno == EINTR;
}

void *host_scratch_alloc(struct host_proc *hp, size_t size)
{
	for (int i = 0; i < 4; i++) {
		if (hp->scratch[i] == NULL)
			return hp->scratch[i] = malloc(size ? size : 1);
	}
	return NULL;
}

void host_scratch_free(struct host_proc *hp, void *p)
{
	for (int i = 0; i < 4; i++) {
		if (hp->scratch[i] == p && p != NULL) {
			hp->scratch[i] = NULL;
			free(p);
			return;
		}
	}
}
