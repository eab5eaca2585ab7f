/*
 * wasi_path.c — the path_* functions, confined to the directory fd they are
 * relative to.
 *
 * Confinement is the kernel's, never string checks alone: every lookup goes
 * through openat2() with RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS, which
 * refuses (EXDEV, reported as ENOTCAPABLE) any resolution that leaves the
 * directory: "..", absolute paths, absolute or escaping symlinks, and
 * /proc magic links. Two shapes of call:
 *
 *  - whole path: path_open, path_filestat_get and path_filestat_set_times
 *    open the target itself with openat2 (O_PATH for metadata), following
 *    or not following a final symlink as asked, then act on that fd;
 *  - final component: unlink, rmdir, mkdir, rename, link, symlink and
 *    readlink open the *parent* with openat2 and call the *at() syscall on
 *    the last component, which the kernel never follows for these calls.
 *    A last component of ".." is refused outright (it would name something
 *    outside the parent). A path with trailing slashes makes the kernel
 *    follow the final symlink, so such paths are first resolved whole with
 *    openat2 to prove they stay inside.
 *
 * path_link with SYMLINK_FOLLOW resolves the source with openat2 too and
 * links the resulting fd (AT_EMPTY_PATH, or /proc/self/fd without
 * CAP_DAC_READ_SEARCH), so a symlink cannot smuggle in an outside file.
 *
 * Rejected alternative: resolving paths in user space component by
 * component (as wasi-libc's "find_relpath" does for the guest) is racy
 * against a concurrent rename of a parent directory; openat2 is not.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "wasi_impl.h"

#define W(self) wasi_ctx_of(HOST_PROC(self))
#define MEM(self) (HOST_PROC(self)->mem)

/* Open `path` beneath `dirfd`; a host fd or -1 with a WASI errno in *err. */
static int open_beneath(int dirfd, const char *path, int flags, mode_t mode,
                        uint16_t *err)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.mode = (flags & O_CREAT) ? mode : 0,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	long fd;
	/* EAGAIN: the kernel saw a concurrent rename and wants a retry. */
	for (int tries = 0; tries < 8; tries++) {
		fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
		if (fd >= 0 || (errno != EAGAIN && errno != EINTR))
			break;
	}
	if (fd < 0) {
		*err = errno == EXDEV ? WASI_ENOTCAPABLE : wasi_errno(errno);
		return -1;
	}
	*err = 0;
	return (int)fd;
}

/* Copy a guest path into a NUL-terminated heap string. Absolute paths are
 * refused here (ENOTCAPABLE); embedded NULs are EINVAL; a path longer
 * than the kernel takes is ENAMETOOLONG before anything is copied (a
 * guest's 4 GiB "path" is not the host's 4 GiB allocation). */
static uint16_t path_copy(wasm_rt_memory_t *mem, uint32_t addr, uint32_t len,
                          char **out)
{
	const char *p = engine_guest_ptr(mem, addr, len);
	if (p == NULL)
		return WASI_EFAULT;
	if (len >= PATH_MAX)
		return WASI_ENAMETOOLONG;
	if (memchr(p, '\0', len) != NULL)
		return WASI_EINVAL;
	if (len > 0 && p[0] == '/')
		return WASI_ENOTCAPABLE;
	char *s = malloc((size_t)len + 1);
	if (s == NULL)
		return WASI_ENOMEM;
	memcpy(s, p, len);
	s[len] = '\0';
	*out = s;
	return 0;
}

/* A final component and the opened directory that holds it. */
struct at {
	int dir;        /* host fd of the parent, owned */
	char *path;     /* the whole path; name points into it */
	const char *name;
};

static void at_free(struct at *a)
{
	if (a->dir >= 0)
		close(a->dir);
	free(a->path);
	a->dir = -1;
	a->path = NULL;
}

/* Resolve guest (fd, path) to its parent directory and last component.
 * `rights` must be held by fd; `writes` refuses read-only directories. */
static uint16_t path_parent(struct wasi_ctx *w, wasm_rt_memory_t *mem,
                            uint32_t fd, uint64_t rights, bool writes,
                            uint32_t path, uint32_t len, struct at *a)
{
	uint16_t err;
	a->dir = -1;
	a->path = NULL;
	struct wasi_fd *f = wasi_fd_lookup(w, fd, rights, &err);
	if (f == NULL)
		return err;
	if (writes && f->read_only)
		return WASI_ENOTCAPABLE;
	err = path_copy(mem, path, len, &a->path);
	if (err)
		return err;
	char *s = a->path;
	if (s[0] == '\0') {
		at_free(a);
		return WASI_ENOENT;
	}
	size_t end = strlen(s);
	while (end > 1 && s[end - 1] == '/')
		end--;
	bool slashes = end != strlen(s);
	size_t start = end;
	while (start > 0 && s[start - 1] != '/')
		start--;
	if (end - start == 2 && s[start] == '.' && s[start + 1] == '.') {
		at_free(a);
		return WASI_ENOTCAPABLE;
	}
	if (slashes) {
		/* The kernel will follow the final symlink: prove it stays. */
		int t = open_beneath(f->host, s, O_PATH, 0, &err);
		if (t >= 0)
			close(t);
		else if (err == WASI_ENOTCAPABLE || err == WASI_ELOOP) {
			at_free(a);
			return err;
		}
	}
	char *parent = start ? strndup(s, start) : strdup(".");
	if (parent == NULL) {
		at_free(a);
		return WASI_ENOMEM;
	}
	a->dir = open_beneath(f->host, parent, O_PATH | O_DIRECTORY, 0, &err);
	free(parent);
	if (a->dir < 0) {
		at_free(a);
		return err;
	}
	a->name = s + start;
	return 0;
}

uint32_t WASI_FN(path_create_directory)(WASI_SELF, uint32_t fd, uint32_t path,
                                        uint32_t path_len)
{
	wasi_call_work(self);
	struct at a;
	uint16_t err = path_parent(W(self), MEM(self), fd,
	                           WASI_RIGHT_PATH_CREATE_DIRECTORY, true, path,
	                           path_len, &a);
	if (err)
		return err;
	err = mkdirat(a.dir, a.name, 0777) == 0 ? 0 : wasi_errno(errno);
	at_free(&a);
	return err;
}

uint32_t WASI_FN(path_remove_directory)(WASI_SELF, uint32_t fd, uint32_t path,
                                        uint32_t path_len)
{
	wasi_call_work(self);
	struct at a;
	uint16_t err = path_parent(W(self), MEM(self), fd,
	                           WASI_RIGHT_PATH_REMOVE_DIRECTORY, true, path,
	                           path_len, &a);
	if (err)
		return err;
	err = unlinkat(a.dir, a.name, AT_REMOVEDIR) == 0 ? 0 : wasi_errno(errno);
	at_free(&a);
	return err;
}

uint32_t WASI_FN(path_unlink_file)(WASI_SELF, uint32_t fd, uint32_t path,
                                   uint32_t path_len)
{
	wasi_call_work(self);
	struct at a;
	uint16_t err = path_parent(W(self), MEM(self), fd,
	                           WASI_RIGHT_PATH_UNLINK_FILE, true, path,
	                           path_len, &a);
	if (err)
		return err;
	err = unlinkat(a.dir, a.name, 0) == 0 ? 0 : wasi_errno(errno);
	at_free(&a);
	return err;
}

uint32_t WASI_FN(path_rename)(WASI_SELF, uint32_t fd, uint32_t old_path,
                              uint32_t old_path_len, uint32_t new_fd,
                              uint32_t new_path, uint32_t new_path_len)
{
	wasi_call_work(self);
	struct at from, to;
	uint16_t err = path_parent(W(self), MEM(self), fd,
	                           WASI_RIGHT_PATH_RENAME_SOURCE, true, old_path,
	                           old_path_len, &from);
	if (err)
		return err;
	err = path_parent(W(self), MEM(self), new_fd,
	                  WASI_RIGHT_PATH_RENAME_TARGET, true, new_path,
	                  new_path_len, &to);
	if (err == 0) {
		err = renameat(from.dir, from.name, to.dir, to.name) == 0
		      ? 0 : wasi_errno(errno);
		at_free(&to);
	}
	at_free(&from);
	return err;
}

uint32_t WASI_FN(path_symlink)(WASI_SELF, uint32_t old_path,
                               uint32_t old_path_len, uint32_t fd,
                               uint32_t new_path, uint32_t new_path_len)
{
	wasi_call_work(self);
	/* The target is only data: it may be absolute or point anywhere;
	 * openat2 refuses to follow it out of a preopen later. */
	const char *p = engine_guest_ptr(MEM(self), old_path, old_path_len);
	if (p == NULL)
		return WASI_EFAULT;
	if (old_path_len >= PATH_MAX)
		return WASI_ENAMETOOLONG;
	if (memchr(p, '\0', old_path_len) != NULL)
		return WASI_EINVAL;
	char *target = strndup(p, old_path_len);
	if (target == NULL)
		return WASI_ENOMEM;
	struct at a;
	uint16_t err = path_parent(W(self), MEM(self), fd,
	                           WASI_RIGHT_PATH_SYMLINK, true, new_path,
	                           new_path_len, &a);
	if (err == 0) {
		err = symlinkat(target, a.dir, a.name) == 0 ? 0
		                                           : wasi_errno(errno);
		at_free(&a);
	}
	free(target);
	return err;
}

uint32_t WASI_FN(path_readlink)(WASI_SELF, uint32_t fd, uint32_t path,
                                uint32_t path_len, uint32_t buf,
                                uint32_t buf_len, uint32_t bufused)
{
	wasi_call_work(self);
	char *out = engine_guest_ptr(MEM(self), buf, buf_len);
	if (out == NULL || engine_guest_ptr(MEM(self), bufused, 4) == NULL)
		return WASI_EFAULT;
	struct at a;
	uint16_t err = path_parent(W(self), MEM(self), fd,
	                           WASI_RIGHT_PATH_READLINK, false, path,
	                           path_len, &a);
	if (err)
		return err;
	ssize_t n = readlinkat(a.dir, a.name, out, buf_len);
	err = n < 0 ? wasi_errno(errno) : 0;
	at_free(&a);
	if (err)
		return err;
	/* A target longer than the buffer is truncated, as readlink(2). */
	return wasi_put32(MEM(self), bufused, (uint32_t)n);
}

/* Link the file `src` (an O_PATH fd) as (dir, name). */
static uint16_t link_fd(int src, int dir, const char *name)
{
	if (linkat(src, "", dir, name, AT_EMPTY_PATH) == 0)
		return 0;
	if (errno != ENOENT && errno != EPERM)
		return wasi_errno(errno);
	/* Without CAP_DAC_READ_SEARCH: link through the fd's /proc entry. */
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", src);
	return linkat(AT_FDCWD, proc, dir, name, AT_SYMLINK_FOLLOW) == 0
	       ? 0 : wasi_errno(errno);
}

uint32_t WASI_FN(path_link)(WASI_SELF, uint32_t old_fd, uint32_t old_flags,
                            uint32_t old_path, uint32_t old_path_len,
                            uint32_t new_fd, uint32_t new_path,
                            uint32_t new_path_len)
{
	wasi_call_work(self);
	struct at from, to;
	uint16_t err = path_parent(W(self), MEM(self), old_fd,
	                           WASI_RIGHT_PATH_LINK_SOURCE, true, old_path,
	                           old_path_len, &from);
	if (err)
		return err;
	err = path_parent(W(self), MEM(self), new_fd,
	                  WASI_RIGHT_PATH_LINK_TARGET, true, new_path,
	                  new_path_len, &to);
	if (err) {
		at_free(&from);
		return err;
	}
	if (old_flags & WASI_LOOKUP_SYMLINK_FOLLOW) {
		/* Resolve from old_fd itself: the symlink may point to a
		 * sibling of its parent, which is still inside. */
		struct wasi_fd *f = wasi_fd_lookup(W(self), old_fd, 0, &err);
		int src = open_beneath(f->host, from.path, O_PATH, 0, &err);
		if (src >= 0) {
			err = link_fd(src, to.dir, to.name);
			close(src);
		}
	} else {
		err = linkat(from.dir, from.name, to.dir, to.name, 0) == 0
		      ? 0 : wasi_errno(errno);
	}
	at_free(&to);
	at_free(&from);
	return err;
}

/* Open the whole path for metadata: O_PATH, following a final symlink only
 * if the lookup flags say so. */
static int open_meta(struct wasi_ctx *w, wasm_rt_memory_t *mem, uint32_t fd,
                     uint64_t rights, bool writes, uint32_t flags,
                     uint32_t path, uint32_t len, uint16_t *err)
{
	struct wasi_fd *f = wasi_fd_lookup(w, fd, rights, err);
	if (f == NULL)
		return -1;
	if (writes && f->read_only) {
		*err = WASI_ENOTCAPABLE;
		return -1;
	}
	char *s;
	*err = path_copy(mem, path, len, &s);
	if (*err)
		return -1;
	int oflags = O_PATH;
	if (!(flags & WASI_LOOKUP_SYMLINK_FOLLOW))
		oflags |= O_NOFOLLOW;
	int h = open_beneath(f->host, s, oflags, 0, err);
	free(s);
	return h;
}

uint32_t WASI_FN(path_filestat_get)(WASI_SELF, uint32_t fd, uint32_t flags,
                                    uint32_t path, uint32_t path_len,
                                    uint32_t buf)
{
	return wasi_path_filestat_get(self, fd, flags, path, path_len, buf,
	                              WASI_PREVIEW1);
}

uint32_t wasi_path_filestat_get(WASI_SELF, uint32_t fd, uint32_t flags,
                                uint32_t path, uint32_t path_len,
                                uint32_t buf, enum wasi_preview v)
{
	wasi_call_work(self);
	uint8_t *out = engine_guest_ptr(MEM(self), buf, wasi_filestat_size(v));
	if (out == NULL)
		return WASI_EFAULT;
	uint16_t err;
	struct wasi_fd *sf = wasi_fd_lookup_any(W(self), fd, WASI_RIGHT_PATH_FILESTAT_GET, &err);
	if (sf != NULL && sf->served != NULL)
		return wasi_served_path_filestat(self, sf, path, path_len, out, v);
	int h = open_meta(W(self), MEM(self), fd, WASI_RIGHT_PATH_FILESTAT_GET,
	                  false, flags, path, path_len, &err);
	if (h < 0)
		return err;
	struct stat st;
	if (fstat(h, &st) == 0)
		wasi_filestat_encode(out, &st, v);
	else
		err = wasi_errno(errno);
	close(h);
	return err;
}

uint32_t WASI_FN(path_filestat_set_times)(WASI_SELF, uint32_t fd,
                                          uint32_t flags, uint32_t path,
                                          uint32_t path_len, uint64_t atim,
                                          uint64_t mtim, uint32_t fstflags)
{
	wasi_call_work(self);
	struct timespec ts[2];
	uint16_t err = wasi_times(atim, mtim, fstflags, ts);
	if (err)
		return err;
	int h = open_meta(W(self), MEM(self), fd,
	                  WASI_RIGHT_PATH_FILESTAT_SET_TIMES, true, flags, path,
	                  path_len, &err);
	if (h < 0)
		return err;
	/* With an empty path the fd's own inode is changed, which for an
	 * O_PATH|O_NOFOLLOW fd is the symlink itself. */
	err = utimensat(h, "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0
	      ? 0 : wasi_errno(errno);
	close(h);
	return err;
}

/* How long a blocking open of a named pipe for writing sleeps before it
 * looks for a reader again. */
#define FIFO_RETRY_NS (20 * 1000 * 1000)

/* Is `path` beneath dirfd a named pipe? */
static bool is_fifo(int dirfd, const char *path)
{
	uint16_t err;
	int h = open_beneath(dirfd, path, O_PATH, 0, &err);
	struct stat st;
	bool yes = h >= 0 && fstat(h, &st) == 0 && S_ISFIFO(st.st_mode);
	if (h >= 0)
		close(h);
	return yes;
}

/* Host open(2) flags for a path_open request. */
static int open_flags(uint32_t dirflags, uint32_t oflags, uint64_t base,
                      uint32_t fdflags)
{
	int fl = O_NOCTTY;
	bool rd = base & (WASI_RIGHT_FD_READ | WASI_RIGHT_FD_READDIR);
	bool wr = base & (WASI_RIGHT_FD_WRITE | WASI_RIGHT_FD_ALLOCATE |
	                  WASI_RIGHT_FD_FILESTAT_SET_SIZE);
	/* A directory opened for writing is EISDIR, as open(2) says (and as
	 * wasmtime answers): O_DIRECTORY does not turn the request into a
	 * read-only one. */
	if (oflags & WASI_O_DIRECTORY)
		fl |= O_DIRECTORY;
	if (wr)
		fl |= rd ? O_RDWR : O_WRONLY;
	else
		fl |= O_RDONLY;
	if (oflags & WASI_O_CREAT)
		fl |= O_CREAT;
	if (oflags & WASI_O_EXCL)
		fl |= O_EXCL;
	if (oflags & WASI_O_TRUNC)
		fl |= O_TRUNC;
	if (fdflags & WASI_FDFLAG_APPEND)
		fl |= O_APPEND;
	if (fdflags & WASI_FDFLAG_DSYNC)
		fl |= O_DSYNC;
	if (fdflags & WASI_FDFLAG_NONBLOCK)
		fl |= O_NONBLOCK;
	if (fdflags & WASI_FDFLAG_RSYNC)
		fl |= O_RSYNC;
	if (fdflags & WASI_FDFLAG_SYNC)
		fl |= O_SYNC;
	if (!(dirflags & WASI_LOOKUP_SYMLINK_FOLLOW))
		fl |= O_NOFOLLOW;
	return fl;
}

uint32_t WASI_FN(path_open)(WASI_SELF, uint32_t fd, uint32_t dirflags,
                            uint32_t path, uint32_t path_len, uint32_t oflags,
                            uint64_t rights_base, uint64_t rights_inheriting,
                            uint32_t fdflags, uint32_t opened_fd)
{
	wasi_call_work(self);
	struct wasi_ctx *w = W(self);
	if (oflags & ~0xfu || fdflags & ~0x1fu)
		return WASI_EINVAL;
	uint64_t need = WASI_RIGHT_PATH_OPEN;
	if (oflags & WASI_O_CREAT)
		need |= WASI_RIGHT_PATH_CREATE_FILE;
	if (oflags & WASI_O_TRUNC)
		need |= WASI_RIGHT_PATH_FILESTAT_SET_SIZE;
	uint16_t err;
	struct wasi_fd *dir = wasi_fd_lookup_any(w, fd, 0, &err);
	if (dir == NULL)
		return err;
	/* Only rights that write through the new fd count: wasi-libc asks
	 * for every path_* right even on a read-only open. */
	bool writes = (rights_base & (WASI_RIGHT_FD_WRITE |
	                              WASI_RIGHT_FD_ALLOCATE |
	                              WASI_RIGHT_FD_FILESTAT_SET_SIZE)) ||
	              (fdflags & WASI_FDFLAG_APPEND) ||
	              (oflags & (WASI_O_CREAT | WASI_O_TRUNC));
	if (dir->read_only && writes)
		return WASI_ENOTCAPABLE;
	if ((dir->rights_base & need) != need)
		return WASI_ENOTCAPABLE;
	if (engine_guest_ptr(MEM(self), opened_fd, 4) == NULL)
		return WASI_EFAULT;
	if (dir->served != NULL)
		return wasi_served_open(self, dir, path, path_len, oflags, rights_base,
		                        rights_inheriting, fdflags, opened_fd);
	/* Opened O_NONBLOCK whatever the guest asked: opening a named pipe
	 * waits for its other end, and a scheduler thread must never wait. */
	int fl = open_flags(dirflags, oflags, rights_base, fdflags);
	bool blocking = !(fl & O_NONBLOCK);
	struct proc *p = HOST_PROC(self)->proc;
	int h;
	for (;;) {
		char *s;
		err = path_copy(MEM(self), path, path_len, &s);
		if (err)
			return err;
		h = open_beneath(dir->host, s, fl | O_NONBLOCK, 0666, &err);
		bool wait = h < 0 && err == WASI_ENXIO && blocking && p != NULL &&
		            (fl & O_ACCMODE) == O_WRONLY && is_fifo(dir->host, s);
		free(s);
		if (!wait)
			break;
		/* A writer's blocking open waits for a reader: retried, the
		 * process asleep in between (and killable; nothing held). */
		proc_sleep(p, FIFO_RETRY_NS);
	}
	if (h < 0)
		return err;
	struct stat st;
	if (fstat(h, &st) != 0) {
		err = wasi_errno(errno);
		close(h);
		return err;
	}
	/* Regular files and directories never block: the guest's flags as it
	 * asked. A pipe, FIFO or device stays non-blocking on the host and
	 * parks the process when it would block (as a socket), unless the
	 * guest asked for NONBLOCK (then EAGAIN). */
	bool parks = !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode);
	if (!parks && blocking) {
		int cur = fcntl(h, F_GETFL);
		if (cur < 0 || fcntl(h, F_SETFL, cur & ~O_NONBLOCK) != 0) {
			err = wasi_errno(errno);
			close(h);
			return err;
		}
	}
	struct wasi_fd nf = {
		.host = h,
		.read_only = dir->read_only,
		.filetype = wasi_filetype_of_mode(st.st_mode),
		.parks = parks,
		.guest_nonblock = parks && (fdflags & WASI_FDFLAG_NONBLOCK),
	};
	/* Never more than the directory passes on, nor than the type allows. */
	nf.rights_base = rights_base & dir->rights_inheriting &
	                 wasi_rights_for_type(nf.filetype, h);
	nf.rights_inheriting = rights_inheriting & dir->rights_inheriting;
	if (nf.read_only)
		nf.rights_base &= ~WASI_RIGHTS_WRITING;
	uint32_t slot;
	err = wasi_fd_insert(w, &nf, &slot);
	if (err) {
		close(h);
		return err;
	}
	/* A reader's blocking open waits for a writer: until one has come
	 * (its first bytes, or its close). The slot is in the table already,
	 * so a kill meanwhile closes it with the rest. */
	if (S_ISFIFO(st.st_mode) && blocking && p != NULL && (fl & O_ACCMODE) == O_RDONLY &&
	    wasi_fd_wait(w, &w->fds[slot], REACTOR_READ, -1) != 0) {
		wasi_fd_release(&w->fds[slot]);
		return WASI_EINTR;
	}
	return wasi_put32(MEM(self), opened_fd, slot);
}

/* How many leading bytes of `path` the preopen named `name` covers, as
 * wasi-libc matches them (whole components), or -1 if it covers none. A
 * name of "." (or "", "./") covers every relative path, with length 0. */
static long preopen_covers(const char *name, const char *path)
{
	size_t n = strlen(name);
	while (n > 1 && name[n - 1] == '/')
		n--;
	if ((n == 1 && name[0] == '.') || n == 0)
		return path[0] == '/' ? -1 : 0;
	if (n == 1 && name[0] == '/')
		return path[0] == '/' ? 1 : -1;
	if (strncmp(name, path, n) != 0 || (path[n] != '/' && path[n] != '\0'))
		return -1;
	return (long)n;
}

int wasi_open_guest_path(struct wasi_ctx *w, const char *path, uint16_t *err)
{
	const struct wasi_fd *best = NULL;
	long best_len = -1;
	for (uint32_t i = 0; i < w->nfds; i++) {
		const struct wasi_fd *f = &w->fds[i];
		if (!f->used || f->preopen_name == NULL || f->served != NULL ||
		    f->host < 0 || !(f->rights_base & WASI_RIGHT_PATH_OPEN))
			continue;
		long len = preopen_covers(f->preopen_name, path);
		if (len > best_len) {
			best = f;
			best_len = len;
		}
	}
	if (best == NULL) {
		*err = WASI_ENOTCAPABLE;
		return -1;
	}
	const char *rest = path + best_len;
	while (*rest == '/')
		rest++;
	/* O_NONBLOCK: a named pipe would hold the open (and the scheduler
	 * thread) until a writer came; so the caller can look at what it
	 * opened instead (a regular file reads as ever). */
	return open_beneath(best->host, *rest ? rest : ".", O_RDONLY | O_NONBLOCK, 0, err);
}
