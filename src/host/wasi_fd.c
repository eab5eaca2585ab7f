/*
 * wasi_fd.c — the fd_* functions: I/O, seeking, metadata and directory
 * listing on an fd the guest already holds.
 *
 * Every function looks the fd up with the rights the operation needs
 * (EBADF for a free slot, ENOTCAPABLE for a missing right), converts guest
 * pointers with engine_guest_ptr (EFAULT), then makes one host call.
 *
 * Flags on borrowed fds are virtual. Stdio belongs to whoever ran wisp and
 * its open file description is shared with them (and with the next program
 * in a pipeline); a preopen's fd is shared by every process holding the
 * capability set. fd_fdstat_set_flags never applies a guest's APPEND or
 * NONBLOCK to such an fd: it keeps them in the slot (each process its own)
 * and the I/O emulates them:
 *   - APPEND on a regular file: each fd_write is a pwritev2(RWF_APPEND),
 *     which appends without touching the file's flags. Clearing APPEND
 *     where the host opened the file O_APPEND (a `>>` log) cannot make
 *     writes land elsewhere: the invoker's append wins, so a log is never
 *     overwritten. The guest's fdstat shows what it set.
 *   - NONBLOCK: an fd that is not ready (poll with no timeout) gives
 *     EAGAIN at once; a write to a pipe, FIFO or terminal that is ready is
 *     cut to PIPE_BUF bytes, which the kernel then takes without waiting
 *     (barring another writer on the same pipe); sockets use MSG_DONTWAIT.
 *     Regular files never block, as on the host.
 *   - Blocking (the default, whatever the host fd's O_NONBLOCK, e.g. left
 *     set by an earlier program): EAGAIN from the host waits with poll(2)
 *     and retries (wasi_wait_ready).
 *
 * fd_readdir cookies are entry ordinals (0 = start, n = after the n-th
 * entry), not the host's telldir() values: those are 64-bit hashes on most
 * file systems, and wasi-libc's telldir() returns a 32-bit long on wasm32,
 * so a hash cookie would not survive a telldir/seekdir round trip. The host
 * position of every ordinal seen is remembered (8 bytes per entry), so
 * seeking back is one seekdir(); a cookie beyond what was read is reached
 * by reading forward. The stream is opened lazily on a private descriptor
 * (openat ".") so a preopen's O_PATH fd can be listed, and is only moved
 * when the guest asks for a cookie other than where it stands, so paging
 * with small buffers costs no re-reads.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "tls.h"
#include "wasi_impl.h"

#define W(self) wasi_ctx_of(HOST_PROC(self))
#define MEM(self) (HOST_PROC(self)->mem)
#define STACK_IOVS 16

uint32_t WASI_FN(fd_advise)(WASI_SELF, uint32_t fd, uint64_t offset,
                            uint64_t len, uint32_t advice)
{
	static const int map[] = {
		POSIX_FADV_NORMAL, POSIX_FADV_SEQUENTIAL, POSIX_FADV_RANDOM,
		POSIX_FADV_WILLNEED, POSIX_FADV_DONTNEED, POSIX_FADV_NOREUSE,
	};
	wasi_call_work(self);
	uint16_t err;
	struct wasi_fd *f = wasi_fd_lookup(W(self), fd, WASI_RIGHT_FD_ADVISE,
	                                   &err);
	if (f == NULL)
		return err;
	if (advice >= sizeof(map) / sizeof(map[0]) || offset > INT64_MAX ||
	    len > INT64_MAX)
		return WASI_EINVAL;
	return wasi_errno(posix_fadvise(f->host, (off_t)offset, (off_t)len,
	                                map[advice]));
}

uint32_t WASI_FN(fd_allocate)(WASI_SELF, uint32_t fd, uint64_t offset,
                              uint64_t len)
{
	wasi_call_work(self);
	uint16_t err;
	struct wasi_fd *f = wasi_fd_lookup(W(self), fd, WASI_RIGHT_FD_ALLOCATE,
	                                   &err);
	if (f == NULL)
		return err;
	if (f->read_only)
		return WASI_ENOTCAPABLE;
	if (offset > INT64_MAX || len > INT64_MAX - offset)
		return WASI_EINVAL;
	return wasi_errno(posix_fallocate(f->host, (off_t)offset, (off_t)len));
}

uint32_t WASI_FN(fd_close)(WASI_SELF, uint32_t fd)
{
	wasi_call_work(self);
	uint16_t err;
	struct wasi_fd *f = wasi_fd_lookup_any(W(self), fd, 0, &err);
	if (f == NULL)
		return err;
	wasi_fd_release(f);
	return 0;
}

uint32_t WASI_FN(fd_datasync)(WASI_SELF, uint32_t fd)
{
	wasi_call_work(self);
	uint16_t err;
	struct wasi_fd *f = wasi_fd_lookup(W(self), fd, WASI_RIGHT_FD_DATASYNC,
	                                   &err);
	if (f == NULL)
		return err;
	return fdatasync(f->host) == 0 ? 0 : wasi_errno(errno);
}

uint32_t WASI_FN(fd_sync)(WASI_SELF, uint32_t fd)
{
	wasi_call_work(self);
	uint16_t err;
	struct wasi_fd *f = wasi_fd_lookup(W(self), fd, WASI_RIGHT_FD_SYNC, &err);
	if (f == NULL)
		return err;
	/* An O_PATH directory cannot be fsync'ed; sync a readable twin. */
	int host = f->host, tmp = -1;
	if (f->filetype == WASI_FILETYPE_DIRECTORY) {
		tmp = openat(f->host, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (tmp < 0)
			return wasi_errno(errno);
		host = tmp;
	}
	int r = fsync(host) == 0 ? 0 : wasi_errno(errno);
	if (tmp >= 0)
		close(tmp);
	return (uint32_t)r;
}

static uint16_t fdflags_of_host(int fl)
{
	uint16_t flags = 0;
	if (fl & O_APPEND)
		flags |= WASI_FDFLAG_APPEND;
	if (fl & O_NONBLOCK)
		flags |= WASI_FDFLAG_NONBLOCK;
	if ((fl & O_SYNC) == O_SYNC)
		flags |= WASI_FDFLAG_SYNC | WASI_FDFLAG_RSYNC;
	else if (fl & O_DSYNC)
		flags |= WASI_FDFLAG_DSYNC;
	return flags;
}

uint32_t WASI_FN(fd_fdstat_get)(WASI_SELF, uint32_t fd, uint32_t buf)
{
	return wasi_fd_fdstat_get(self, fd, buf, WASI_PREVIEW1);
}

uint32_t wasi_fd_fdstat_get(WASI_SELF, uint32_t fd, uint32_t buf,
                            enum wasi_preview v)
{
	wasi_call_work(self);
	uint16_t err;
	struct wasi_fd *f = wasi_fd_lookup_any(W(self), fd, 0, &err);
	if (f == NULL)
		return err;
	uint8_t *out = engine_guest_ptr(MEM(self), buf, WASI_FDSTAT_SIZE);
	if (out == NULL)
		return WASI_EFAULT;
	int fl = f->served != NULL ? (wasi_served_append(f) ? O_APPEND : 0)
	                           : fcntl(f->host, F_GETFL);
	if (fl < 0)
		return wasi_errno(errno);
	memset(out, 0, WASI_FDSTAT_SIZE);
	out[0] = f->filetype;
	uint16_t flags = fdflags_of_host(fl);
	if (f->borrowed)   /* the guest's own APPEND and NONBLOCK */
		flags = (uint16_t)((flags & ~(WASI_FDFLAG_APPEND |
		                              WASI_FDFLAG_NONBLOCK)) | f->vflags);
	else if (f->parks)   /* always non-blocking on the host; the guest's view */
		flags = (uint16_t)((flags & ~WASI_FDFLAG_NONBLOCK) |
		                   (f->guest_nonblock ? WASI_FDFLAG_NONBLOCK : 0));
	wasi_st16(out + 2, flags);
	/* Only the rights the guest's preview defines. */
	uint64_t defined = v == WASI_PREVIEW0 ? WASI_P0_RIGHTS_ALL : WASI_RIGHTS_ALL;
	wasi_st64(out + 8, f->rights_base & defined);
	wasi_st64(out + 16, f->rights_inheriting & defined);
	return 0;
}

uint32_t WASI_FN(fd_fdstat_set_flags)(WASI_SELF, uint32_t fd, uint32_t flags)
{
	wasi_call_work(self);
	uint16_t err;
	struct wasi_fd *f = wasi_fd_lookup(W(self), fd,
	                                   WASI_RIGHT_FD_FDSTAT_SET_FLAGS, &err);
	if (f == NULL)
		return err;
	if (flags & ~0x1fu)
		return WASI_EINVAL;
	/* A directory has no I/O flags (EBADF, as wasmtime answers). */
	if (f->filetype == WASI_FILETYPE_DIRECTORY)
		return WASI_EBADF;
	int fl = fcntl(f->host, F_GETFL);
	if (fl < 0)
		return wasi_errno(errno);
	/* Linux's F_SETFL cannot change the synchronous-I/O flags: EINVAL,
	 * as wasmtime (which only changes APPEND and NONBLOCK either). */
	uint16_t sync = WASI_FDFLAG_DSYNC | WASI_FDFLAG_RSYNC | WASI_FDFLAG_SYNC;
	if ((flags & sync) != (fdflags_of_host(fl) & sync))
		return WASI_EINVAL;
	if (f->borrowed) {   /* never the host's: see the top of the file */
		f->vflags = flags & (WASI_FDFLAG_APPEND | WASI_FDFLAG_NONBLOCK);
		return 0;
	}
	fl &= ~(O_APPEND | O_NONBLOCK);
	if (flags & WASI_FDFLAG_APPEND)
		fl |= O_APPEND;
	if (f->parks) {
		f->guest_nonblock = (flags & WASI_FDFLAG_NONBLOCK) != 0;
		fl |= O_NONBLOCK;
	} else if (flags & WASI_FDFLAG_NONBLOCK) {
		fl |= O_NONBLOCK;
	}
	return fcntl(f->host, F_SETFL, fl) == 0 ? 0 : wasi_errno(errno);
}

uint32_t WASI_FN(fd_fdstat_set_rights)(WASI_SELF, uint32_t fd, uint64_t base,
                                       uint64_t inheriting)
{
	wasi_call_work(self);
	uint16_t err;
	struct wasi_fd *f = wasi_fd_lookup_any(W(self), fd, 0, &err);
	if (f == NULL)
		return err;
	/* Rights can only be dropped, never gained. */
	if ((base & ~f->rights_base) || (inheriting & ~f->rights_inheriting))
		return WASI_ENOTCAPABLE;
	f->rights_base = base;
	f->rights_inheriting = inheriting;
	return 0;
}

uint32_t WASI_FN(fd_filestat_get)(WASI_SELF, uint32_t fd, uint32_t buf)
{
	return wasi_fd_filestat_get(self, fd, buf, WASI_PREVIEW1);
}

uint32_t wasi_fd_filestat_get(WASI_SELF, uint32_t fd, uint32_t buf,
                              enum wasi_preview v)
{
	wasi_call_work(self);
	uint16_t err;
	struct wasi_fd *f = wasi_fd_lookup_any(W(self), fd,
	                                   WASI_RIGHT_FD_FILESTAT_GET, &err);
	if (f == NULL)
		return err;
	uint8_t *out = engine_guest_ptr(MEM(self), buf, wasi_filestat_size(v));
	if (out == NULL)
		return WASI_EFAULT;
	if (f->served != NULL)
		return wasi_served_filestat(self, f, out, v);
	struct stat st;
	if (fstat(f->host, &st) != 0)
		return wasi_errno(errno);
	wasi_filestat_encode(out, &st, v);
	return 0;
}

uint32_t WASI_FN(fd_filestat_set_size)(WASI_SELF, uint32_t fd, uint64_t size)
{
	wasi_call_work(self);
	uint16_t err;
	struct wasi_fd *f = wasi_fd_lookup(W(self), fd,
	                                   WASI_RIGHT_FD_FILESTAT_SET_SIZE, &err);
	if (f == NULL)
		return err;
	if (f->read_only)
		return WASI_ENOTCAPABLE;
	if (size > INT64_MAX)
		return WASI_EINVAL;
	return ftruncate(f->host, (off_t)size) == 0 ? 0 : wasi_errno(errno);
}

/* Build the utimensat() times from WASI's (atim, mtim, fstflags). */
uint16_t wasi_times(uint64_t atim, uint64_t mtim, uint32_t fst,
                    struct timespec ts[2])
{
	if (fst & ~0xfu)
		return WASI_EINVAL;
	if ((fst & WASI_FST_ATIM) && (fst & WASI_FST_ATIM_NOW))
		return WASI_EINVAL;
	if ((fst & WASI_FST_MTIM) && (fst & WASI_FST_MTIM_NOW))
		return WASI_EINVAL;
	ts[0].tv_sec = 0;
	ts[1].tv_sec = 0;
	ts[0].tv_nsec = UTIME_OMIT;
	ts[1].tv_nsec = UTIME_OMIT;
	if (fst & WASI_FST_ATIM_NOW)
		ts[0].tv_nsec = UTIME_NOW;
	else if (fst & WASI_FST_ATIM)
		ts[0] = (struct timespec){ (time_t)(atim / 1000000000u),
		                           (long)(atim % 1000000000u) };
	if (fst & WASI_FST_MTIM_NOW)
		ts[1].tv_nsec = UTIME_NOW;
	else if (fst & WASI_FST_MTIM)
		ts[1] = (struct timespec){ (time_t)(mtim / 1000000000u),
		                           (long)(mtim % 1000000000u) };
	return 0;
}

uint32_t WASI_FN(fd_filestat_set_times)(WASI_SELF, uint32_t fd, uint64_t atim,
                                        uint64_t mtim, uint32_t fstflags)
{
	wasi_call_work(self);
	uint16_t err;
	struct wasi_fd *f = wasi_fd_lookup(W(self), fd,
	                                   WASI_RIGHT_FD_FILESTAT_SET_TIMES, &err);
	if (f == NULL)
		return err;
	if (f->read_only)
		return WASI_ENOTCAPABLE;
	struct timespec ts[2];
	err = wasi_times(atim, mtim, fstflags, ts);
	if (err)
		return err;
	/* AT_EMPTY_PATH also works on O_PATH fds (preopens), unlike futimens. */
	return utimensat(f->host, "", ts, AT_EMPTY_PATH) == 0
	       ? 0 : wasi_errno(errno);
}

/* Keep at most `max` bytes of an iovec list (a short transfer). */
static void iov_cap(struct iovec *iov, int *niov, size_t max)
{
	size_t total = 0;
	for (int i = 0; i < *niov; i++) {
		if (iov[i].iov_len >= max - total) {
			iov[i].iov_len = max - total;
			*niov = i + 1;
			return;
		}
		total += iov[i].iov_len;
	}
}

/* Would an operation on borrowed fd `f`, whose guest asked for NONBLOCK,
 * block? Then EAGAIN is the answer, without asking the host fd (whose
 * O_NONBLOCK is not ours to set). Regular files never block. */
bool wasi_would_block(const struct wasi_fd *f, bool write)
{
	if (!f->borrowed || !(f->vflags & WASI_FDFLAG_NONBLOCK) ||
	    f->filetype == WASI_FILETYPE_REGULAR_FILE ||
	    f->filetype == WASI_FILETYPE_DIRECTORY)
		return false;
	struct pollfd p = { .fd = f->host, .events = write ? POLLOUT : POLLIN };
	return poll(&p, 1, 0) == 0;
}

/* One read or write on f's host fd; -1 with errno on failure. */
static ssize_t rw_once(struct wasi_fd *f, struct iovec *iov, int niov,
                       int64_t offset, bool write)
{
	if (offset >= 0)
		return write ? pwritev(f->host, iov, niov, offset)
		             : preadv(f->host, iov, niov, offset);
	if (!f->borrowed)
		return write ? writev(f->host, iov, niov) : readv(f->host, iov, niov);
	/* Borrowed: the guest's own flags, emulated (see the top). */
	bool sock = f->filetype == WASI_FILETYPE_SOCKET_STREAM ||
	            f->filetype == WASI_FILETYPE_SOCKET_DGRAM;
	bool nonblock = f->vflags & WASI_FDFLAG_NONBLOCK;
	if (sock && nonblock) {
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)niov };
		return write ? sendmsg(f->host, &m, MSG_DONTWAIT | MSG_NOSIGNAL)
		             : recvmsg(f->host, &m, MSG_DONTWAIT);
	}
	if (wasi_would_block(f, write)) {
		errno = EAGAIN;
		return -1;
	}
	if (!write)
		return readv(f->host, iov, niov);
	if (nonblock && f->filetype != WASI_FILETYPE_REGULAR_FILE)
		iov_cap(iov, &niov, PIPE_BUF);
	if ((f->vflags & WASI_FDFLAG_APPEND) &&
	    f->filetype == WASI_FILETYPE_REGULAR_FILE)
		return pwritev2(f->host, iov, niov, -1, RWF_APPEND);
	return writev(f->host, iov, niov);
}

/* fd_read/fd_write on a TLS stream (f->tls): plaintext through it, the
 * first non-empty iovec at a time (a short transfer), parking while it
 * waits; no offsets (ESPIPE, as for any socket). Frees iov. */
static uint32_t tls_rw(WASI_SELF, struct wasi_fd *f, struct iovec *iov, int niov,
                       struct iovec *stackbuf, int64_t offset, uint32_t result, bool write)
{
	uint16_t err = WASI_ESPIPE;
	size_t done = 0;
	if (offset < 0) {
		int i = 0;
		while (i < niov - 1 && iov[i].iov_len == 0)
			i++;
		err = niov == 0 ? 0 : tls_io(HOST_PROC(self), f, iov[i].iov_base, iov[i].iov_len,
		                             write, -1, &done);
	}
	wasi_iov_free(HOST_PROC(self), iov, stackbuf);
	if (err)
		return err;
	wasi_moved(self, done);
	return wasi_put32(MEM(self), result, (uint32_t)done);
}

/* Shared body of fd_read/fd_write/fd_pread/fd_pwrite. */
static uint32_t rw(WASI_SELF, uint32_t fd, uint32_t iovs, uint32_t n,
                   int64_t offset, uint32_t result, bool write)
{
	uint64_t need = write ? WASI_RIGHT_FD_WRITE : WASI_RIGHT_FD_READ;
	if (offset >= 0)
		need |= WASI_RIGHT_FD_SEEK;
	uint16_t err;
	struct wasi_fd *f = wasi_fd_lookup_any(W(self), fd, need, &err);
	if (f == NULL)
		return err;
	if (write && f->read_only)
		return WASI_ENOTCAPABLE;
	if (engine_guest_ptr(MEM(self), result, 4) == NULL)
		return WASI_EFAULT;
	if (f->served != NULL)
		return wasi_served_rw(self, f, iovs, n, offset, result, write);
	struct iovec stackbuf[STACK_IOVS], *iov;
	int niov;
	err = wasi_iov_load(HOST_PROC(self), iovs, n, stackbuf, STACK_IOVS, &iov,
	                    &niov);
	if (err)
		return err;
	if (f->tls != NULL)
		return tls_rw(self, f, iov, niov, stackbuf, offset, result, write);
	ssize_t r;
	int e;
	do {
		r = rw_once(f, iov, niov, offset, write);
		e = errno;
		/* A socket that would block parks the process (the iovecs stay
		 * valid: nothing else runs in this process meanwhile). */
	} while (r < 0 && (e == EINTR ||
	                   (e == EAGAIN && wasi_wait_ready(self, f, write))));
	wasi_iov_free(HOST_PROC(self), iov, stackbuf);
	if (r < 0)
		return wasi_errno(e);
	wasi_moved(self, (uint64_t)r);
	return wasi_put32(MEM(self), result, (uint32_t)r);
}

uint32_t WASI_FN(fd_read)(WASI_SELF, uint32_t fd, uint32_t iovs,
                          uint32_t iovs_len, uint32_t nread)
{
	wasi_call_work(self);
	return rw(self, fd, iovs, iovs_len, -1, nread, false);
}

uint32_t WASI_FN(fd_write)(WASI_SELF, uint32_t fd, uint32_t iovs,
                           uint32_t iovs_len, uint32_t nwritten)
{
	wasi_call_work(self);
	return rw(self, fd, iovs, iovs_len, -1, nwritten, true);
}

uint32_t WASI_FN(fd_pread)(WASI_SELF, uint32_t fd, uint32_t iovs,
                           uint32_t iovs_len, uint64_t offset, uint32_t nread)
{
	wasi_call_work(self);
	if (offset > INT64_MAX)
		return WASI_EINVAL;
	return rw(self, fd, iovs, iovs_len, (int64_t)offset, nread, false);
}

uint32_t WASI_FN(fd_pwrite)(WASI_SELF, uint32_t fd, uint32_t iovs,
                            uint32_t iovs_len, uint64_t offset,
                            uint32_t nwritten)
{
	wasi_call_work(self);
	if (offset > INT64_MAX)
		return WASI_EINVAL;
	return rw(self, fd, iovs, iovs_len, (int64_t)offset, nwritten, true);
}

uint32_t WASI_FN(fd_prestat_get)(WASI_SELF, uint32_t fd, uint32_t buf)
{
	wasi_call_work(self);
	uint16_t err;
	struct wasi_fd *f = wasi_fd_lookup_any(W(self), fd, 0, &err);
	if (f == NULL)
		return err;
	if (f->preopen_name == NULL)
		return WASI_EBADF;
	uint8_t *out = engine_guest_ptr(MEM(self), buf, WASI_PRESTAT_SIZE);
	if (out == NULL)
		return WASI_EFAULT;
	memset(out, 0, WASI_PRESTAT_SIZE);
	out[0] = 0;   /* preopentype: dir */
	wasi_st32(out + 4, (uint32_t)strlen(f->preopen_name));
	return 0;
}

uint32_t WASI_FN(fd_prestat_dir_name)(WASI_SELF, uint32_t fd, uint32_t path,
                                      uint32_t path_len)
{
	wasi_call_work(self);
	uint16_t err;
	struct wasi_fd *f = wasi_fd_lookup_any(W(self), fd, 0, &err);
	if (f == NULL)
		return err;
	if (f->preopen_name == NULL)
		return WASI_EBADF;
	size_t len = strlen(f->preopen_name);
	if (path_len < len)
		return WASI_ENAMETOOLONG;
	void *out = engine_guest_ptr(MEM(self), path, len);
	if (out == NULL)
		return WASI_EFAULT;
	memcpy(out, f->preopen_name, len);
	return 0;
}

uint32_t WASI_FN(fd_renumber)(WASI_SELF, uint32_t fd, uint32_t to)
{
	wasi_call_work(self);
	struct wasi_ctx *w = W(self);
	uint16_t err;
	struct wasi_fd *from = wasi_fd_lookup_any(w, fd, 0, &err);
	if (from == NULL)
		return err;
	struct wasi_fd *dst = wasi_fd_lookup_any(w, to, 0, &err);
	if (dst == NULL)
		return err;
	if (from == dst)
		return 0;
	wasi_fd_release(dst);
	*dst = *from;
	memset(from, 0, sizeof(*from));
	from->host = -1;
	return 0;
}

uint32_t WASI_FN(fd_seek)(WASI_SELF, uint32_t fd, uint64_t offset,
                          uint32_t whence, uint32_t newoffset)
{
	static const int map[] = { SEEK_SET, SEEK_CUR, SEEK_END };
	wasi_call_work(self);
	/* A pure position query needs only the tell right. */
	uint64_t need = (offset == 0 && whence == 1) ? WASI_RIGHT_FD_TELL
	                                             : WASI_RIGHT_FD_SEEK;
	uint16_t err;
	struct wasi_fd *f = wasi_fd_lookup_any(W(self), fd, need, &err);
	if (f == NULL)
		return err;
	if (whence > 2)
		return WASI_EINVAL;
	if (engine_guest_ptr(MEM(self), newoffset, 8) == NULL)
		return WASI_EFAULT;
	if (f->served != NULL)
		return wasi_served_seek(self, f, (int64_t)offset, whence, newoffset);
	off_t r = lseek(f->host, (off_t)offset, map[whence]);
	if (r < 0)
		return wasi_errno(errno);
	return wasi_put64(MEM(self), newoffset, (uint64_t)r);
}

uint32_t WASI_FN(fd_tell)(WASI_SELF, uint32_t fd, uint32_t offset)
{
	wasi_call_work(self);
	uint16_t err;
	struct wasi_fd *f = wasi_fd_lookup_any(W(self), fd, WASI_RIGHT_FD_TELL, &err);
	if (f == NULL)
		return err;
	if (engine_guest_ptr(MEM(self), offset, 8) == NULL)
		return WASI_EFAULT;
	if (f->served != NULL)
		return wasi_served_tell(self, f, offset);
	off_t r = lseek(f->host, 0, SEEK_CUR);
	if (r < 0)
		return wasi_errno(errno);
	return wasi_put64(MEM(self), offset, (uint64_t)r);
}

void wasi_fd_closedir(struct wasi_fd *f)
{
	if (f->dir != NULL)
		closedir(f->dir);
	free(f->dir_offs);
	f->dir = NULL;
	f->dir_pos = 0;
	f->dir_offs = NULL;
	f->dir_noffs = f->dir_capoffs = 0;
}

static uint8_t dirent_type(DIR *d, const struct dirent *e)
{
	switch (e->d_type) {
	case DT_REG: return WASI_FILETYPE_REGULAR_FILE;
	case DT_DIR: return WASI_FILETYPE_DIRECTORY;
	case DT_LNK: return WASI_FILETYPE_SYMBOLIC_LINK;
	case DT_CHR: return WASI_FILETYPE_CHARACTER_DEVICE;
	case DT_BLK: return WASI_FILETYPE_BLOCK_DEVICE;
	case DT_SOCK: return WASI_FILETYPE_SOCKET_STREAM;
	case DT_UNKNOWN: {
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			return wasi_filetype_of_mode(st.st_mode);
		return WASI_FILETYPE_UNKNOWN;
	}
	default: return WASI_FILETYPE_UNKNOWN;
	}
}

/* Read the next entry of f's stream, advancing the ordinal and recording
 * the host position after it. NULL at the end (or on error, errno set). */
static struct dirent *dir_next(struct wasi_fd *f, uint16_t *err)
{
	*err = 0;
	errno = 0;
	struct dirent *e = readdir(f->dir);
	if (e == NULL) {
		if (errno != 0)
			*err = wasi_errno(errno);
		return NULL;
	}
	f->dir_pos++;
	if (f->dir_pos == f->dir_noffs) {
		if (f->dir_noffs == f->dir_capoffs) {
			uint64_t cap = f->dir_capoffs * 2;
			long *grown = realloc(f->dir_offs, cap * sizeof(long));
			if (grown == NULL) {
				*err = WASI_ENOMEM;
				return NULL;
			}
			f->dir_offs = grown;
			f->dir_capoffs = cap;
		}
		f->dir_noffs++;
	}
	f->dir_offs[f->dir_pos] = telldir(f->dir);
	return e;
}

/* Put the stream of `f` at `cookie`, opening it on first use. A cookie
 * past the end leaves the stream at the end. */
static uint16_t dir_seek(const struct wasi_ctx *w, struct wasi_fd *f,
                         uint64_t cookie)
{
	uint16_t err;
	if (f->dir == NULL) {
		int fd = openat(f->host, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			return wasi_errno(errno);
		if ((err = wasi_host_fd_check(w, fd)) != 0) {
			close(fd);
			return err;
		}
		f->dir = fdopendir(fd);
		f->dir_offs = malloc(64 * sizeof(long));
		if (f->dir == NULL || f->dir_offs == NULL) {
			err = f->dir == NULL ? wasi_errno(errno) : WASI_ENOMEM;
			if (f->dir == NULL)
				close(fd);
			wasi_fd_closedir(f);
			return err;
		}
		f->dir_capoffs = 64;
		f->dir_noffs = 1;
		f->dir_offs[0] = telldir(f->dir);
		f->dir_pos = 0;
	}
	if (cookie == f->dir_pos)
		return 0;
	uint64_t known = cookie < f->dir_noffs ? cookie : f->dir_noffs - 1;
	if (known == 0)
		rewinddir(f->dir);
	else
		seekdir(f->dir, f->dir_offs[known]);
	f->dir_pos = known;
	while (f->dir_pos < cookie)
		if (dir_next(f, &err) == NULL)
			return err;
	return 0;
}

uint32_t WASI_FN(fd_readdir)(WASI_SELF, uint32_t fd, uint32_t buf,
                             uint32_t buf_len, uint64_t cookie,
                             uint32_t bufused)
{
	wasi_call_work(self);
	uint16_t err;
	struct wasi_ctx *w = W(self);
	struct wasi_fd *f = wasi_fd_lookup_any(w, fd, WASI_RIGHT_FD_READDIR, &err);
	if (f == NULL)
		return err;
	uint8_t *out = engine_guest_ptr(MEM(self), buf, buf_len);
	if (out == NULL || engine_guest_ptr(MEM(self), bufused, 4) == NULL)
		return WASI_EFAULT;
	if (f->filetype != WASI_FILETYPE_DIRECTORY)
		return WASI_ENOTDIR;
	if (f->served != NULL)
		return wasi_served_readdir(self, f, out, buf_len, cookie, bufused);
	err = dir_seek(w, f, cookie);
	if (err)
		return err;
	uint32_t used = 0;
	while (used < buf_len) {
		struct dirent *e = dir_next(f, &err);
		if (e == NULL) {
			if (err)
				return err;
			break;
		}
		uint8_t hdr[WASI_DIRENT_SIZE] = { 0 };
		size_t namelen = strlen(e->d_name);
		wasi_st64(hdr + 0, f->dir_pos);
		wasi_st64(hdr + 8, (uint64_t)e->d_ino);
		wasi_st32(hdr + 16, (uint32_t)namelen);
		hdr[20] = dirent_type(f->dir, e);
		/* Copy as much of header + name as fits; a truncated entry
		 * fills the buffer, telling the guest to retry larger. The
		 * stream is then past it; the guest's next cookie (an earlier
		 * d_next) seeks back. */
		uint32_t room = buf_len - used;
		uint32_t n = room < WASI_DIRENT_SIZE ? room : WASI_DIRENT_SIZE;
		memcpy(out + used, hdr, n);
		used += n;
		room -= n;
		n = room < namelen ? room : (uint32_t)namelen;
		memcpy(out + used, e->d_name, n);
		used += n;
	}
	wasi_moved(self, used);
	return wasi_put32(MEM(self), bufused, used);
}
