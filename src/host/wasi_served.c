/*
 * wasi_served.c — served files: WASI calls on a directory a program's
 * parent mounted (wisp_program_spec.mounts) become requests to a server
 * process (docs/abi.md, "Served files").
 *
 * A served slot of the fd table has no host fd (host -1, and every
 * function that would touch one refuses it: wasi_fd_lookup answers
 * ENOTSUP for a served fd, and only the calls below look served fds up
 * with wasi_fd_lookup_any). What it has instead hangs off the slot
 * (struct wasi_served): the server's pid, the server's handle, the
 * position and the path below the mount root. The position is the host's,
 * so a server is stateless about it: every READ and WRITE names its
 * offset (pread/pwrite style), SEEK_END asks STAT for the size.
 *
 * One call is one round trip, proc_request: the message is copied before
 * the caller parks, and the caller waits for the reply or the server's
 * DOWN (its death, or no such process: EIO to the guest, no hang). Guest
 * memory cannot move meanwhile (the guest is not running, and the park
 * does not allow hibernation), so the iovecs loaded before a read stay
 * valid across it, as they do for a socket that parks.
 *
 * A reply is read as untrusted input: shorter than its header, a length
 * that is not the payload's, a read or a listing longer than asked, a
 * filestat of the wrong size, an errno no WASI errno or a filetype no
 * WASI filetype all give EIO; nothing is copied beyond what was asked
 * for and what arrived.
 *
 * Paths are the host's to confine: the guest's path is joined to the
 * directory's and "." and ".." resolved here; climbing above the mount
 * root is ENOTCAPABLE, and the server only ever sees a normalised path
 * relative to its root ("" is the root itself). There are no symbolic
 * links in a served tree.
 *
 * Rejected: a handle per served directory opened when the program starts
 * (the program's host state is built before it runs, and a request then
 * would park its start on every server): the root is opened at its first
 * READDIR or STAT.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "wasi_impl.h"
#include "proc/mailbox.h"
#include "proc/proc.h"
#include "wisp/guest.h"

#define W(self) wasi_ctx_of(HOST_PROC(self))
#define MEM(self) (HOST_PROC(self)->mem)
#define STACK_IOVS 16

/* What a served fd's slot holds besides its rights. */
struct wasi_served {
	struct proc *owner;     /* the process whose slot it is (its CLOSE) */
	uint64_t server;
	uint64_t handle;        /* the server's, once `opened` */
	bool opened;            /* (a mount root opens on first need) */
	bool append;            /* WASI_FDFLAG_APPEND: writes go to the end */
	uint64_t pos;           /* fd_read/fd_write's position */
	char *path;             /* below the mount root, "" the root */
};

/* A reply, checked: error 0, and len bytes at data (inside msg). */
struct reply {
	struct msg *msg;
	uint8_t filetype;
	uint32_t len;
	uint64_t value;
	const uint8_t *data;
};

/* The rights that mean something on a served fd. */
#define SERVED_RIGHTS_FILE \
	(WASI_RIGHT_FD_READ | WASI_RIGHT_FD_WRITE | WASI_RIGHT_FD_SEEK | \
	 WASI_RIGHT_FD_TELL | WASI_RIGHT_FD_FILESTAT_GET)
#define SERVED_RIGHTS_DIR \
	(WASI_RIGHT_PATH_OPEN | WASI_RIGHT_FD_READDIR | \
	 WASI_RIGHT_PATH_CREATE_FILE | WASI_RIGHT_PATH_FILESTAT_SET_SIZE | \
	 WASI_RIGHT_PATH_FILESTAT_GET | WASI_RIGHT_FD_FILESTAT_GET)

static void reply_done(struct host_proc *hp, struct reply *r)
{
	if (r->msg != NULL) {
		proc_take(hp->proc, r->msg);
		msg_free(r->msg);
		r->msg = NULL;
	}
}

/* Check the reply m to a request (taken from the mailbox if refused):
 * 0 and *r, the server's errno, or EIO. */
static uint16_t reply_check(struct host_proc *hp, struct msg *m, struct reply *r)
{
	r->msg = m;
	uint16_t err = WASI_EIO;
	if (m->kind == MSG_DATA && m->len >= WISP_FILE_REPLY_SIZE) {
		uint16_t e = wasi_ld16(m->data);
		uint32_t len = wasi_ld32(m->data + 4);
		if (len != m->len - WISP_FILE_REPLY_SIZE || len > WISP_FILE_MAX_DATA ||
		    e > WASI_ENOTCAPABLE || m->data[2] > WASI_FILETYPE_SYMBOLIC_LINK)
			err = WASI_EIO;
		else
			err = e;
		r->filetype = m->data[2];
		r->len = len;
		r->value = wasi_ld64(m->data + 8);
		r->data = m->data + WISP_FILE_REPLY_SIZE;
	}
	if (err != 0)
		reply_done(hp, r);
	return err;
}

/* The request header (WISP_FILE_REQUEST_SIZE bytes) at out. */
static void header(uint8_t *out, uint32_t op, uint32_t flags, uint64_t handle, uint64_t offset,
                   uint32_t len, uint32_t rights)
{
	wasi_st32(out, op);
	wasi_st32(out + 4, flags);
	wasi_st64(out + 8, handle);
	wasi_st64(out + 16, offset);
	wasi_st32(out + 24, len);
	wasi_st32(out + 28, rights);
}

/* One round trip to s's server: op with the header fields and extra
 * (a path or data, extra_len bytes) after them. 0 and the checked reply
 * in *r (reply_done it), the server's WASI errno, or EIO (the server is
 * dead, or answered no reply). */
static uint16_t call(struct host_proc *hp, const struct wasi_served *s, uint32_t op,
                     uint32_t flags, uint64_t offset, uint32_t len, uint32_t rights,
                     const void *extra, uint32_t extra_len, struct reply *r)
{
	r->msg = NULL;
	if (hp->proc == NULL)
		return WASI_EIO;
	uint8_t small[WISP_FILE_REQUEST_SIZE + 256];
	uint32_t total = WISP_FILE_REQUEST_SIZE + extra_len;
	/* Scratch: a kill while the request waits unwinds past the free. */
	uint8_t *req = total <= sizeof(small) ? small : host_scratch_alloc(hp, total);
	if (req == NULL)
		return WASI_ENOMEM;
	header(req, op, flags, s->handle, offset, len, rights);
	if (extra_len > 0)
		memcpy(req + WISP_FILE_REQUEST_SIZE, extra, extra_len);
	struct msg *m;
	int rc = proc_request(hp->proc, s->server, WISP_TAG_FILE, req, total, -1, &m);
	if (req != small)
		host_scratch_free(hp, req);
	if (rc != 0)
		return rc == -ENOMEM ? WASI_ENOMEM : WASI_EIO;
	return reply_check(hp, m, r);
}

/* ---- paths ---- */

/* base (normalised, "" the root) joined with the guest's rel[0, len), "."
 * and ".." resolved, into out (strlen(base) + len + 2 bytes; "" the
 * root). ENOTCAPABLE for an absolute path or one climbing above the root. */
static uint16_t join(const char *base, const char *rel, uint32_t len, char *out)
{
	if (len > 0 && rel[0] == '/')
		return WASI_ENOTCAPABLE;
	size_t n = strlen(base);
	memcpy(out, base, n);
	for (uint32_t i = 0; i < len;) {
		uint32_t j = i;
		while (j < len && rel[j] != '/')
			j++;
		uint32_t clen = j - i;
		if (clen == 2 && rel[i] == '.' && rel[i + 1] == '.') {
			if (n == 0)
				return WASI_ENOTCAPABLE;
			while (n > 0 && out[n - 1] != '/')
				n--;
			if (n > 0)
				n--;   /* (the slash before it) */
		} else if (clen > 0 && !(clen == 1 && rel[i] == '.')) {
			if (n > 0)
				out[n++] = '/';
			memcpy(out + n, rel + i, clen);
			n += clen;
		}
		i = j + 1;
	}
	out[n] = '\0';
	return n >= PATH_MAX ? WASI_ENAMETOOLONG : 0;
}

/* The guest path (addr, len) below served directory f, normalised, in
 * *out: hp's scratch (host_scratch_free it; a kill while a request waits
 * leaves it to the process's exit). */
static uint16_t guest_path(struct host_proc *hp, const struct wasi_fd *f, uint32_t addr,
                           uint32_t len, char **out)
{
	const char *rel = engine_guest_ptr(hp->mem, addr, len);
	if (rel == NULL)
		return WASI_EFAULT;
	if (f->filetype != WASI_FILETYPE_DIRECTORY)
		return WASI_ENOTDIR;
	if (len >= PATH_MAX)
		return WASI_ENAMETOOLONG;
	if (memchr(rel, '\0', len) != NULL)
		return WASI_EINVAL;
	char *p = host_scratch_alloc(hp, strlen(f->served->path) + len + 2);
	if (p == NULL)
		return WASI_ENOMEM;
	uint16_t err = join(f->served->path, rel, len, p);
	if (err) {
		host_scratch_free(hp, p);
		return err;
	}
	*out = p;
	return 0;
}

/* ---- slots ---- */

static struct wasi_served *served_new(struct proc *owner, uint64_t server, char *path)
{
	struct wasi_served *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->owner = owner;
	s->server = server;
	s->path = path;
	return s;
}

/* Tell s's server its handle is closed: best effort, no reply (the
 * guest's close never waits). */
static void close_handle(const struct wasi_served *s)
{
	if (!s->opened || s->owner == NULL)
		return;
	uint8_t req[WISP_FILE_REQUEST_SIZE];
	header(req, WISP_FILE_OP_CLOSE, 0, s->handle, 0, 0, 0);
	proc_send(s->owner, s->server, WISP_TAG_FILE, 0, req, sizeof(req));
}

void wasi_served_release(struct wasi_served *s)
{
	if (s == NULL)
		return;
	close_handle(s);
	free(s->path);
	free(s);
}

void wasi_served_disown(struct wasi_served *s)
{
	if (s != NULL)
		s->owner = NULL;
}

void wasi_ctx_close_served(struct wasi_ctx *w)
{
	for (uint32_t i = 0; w != NULL && i < w->nfds; i++)
		if (w->fds[i].used && w->fds[i].served != NULL)
			wasi_fd_release(&w->fds[i]);
}

int wasi_served_mount(struct wasi_ctx *w, struct proc *owner, const char *guest,
                      uint64_t server)
{
	char *root = strdup("");
	struct wasi_fd f = {
		.host = -1,
		.borrowed = true,
		.filetype = WASI_FILETYPE_DIRECTORY,
		.rights_base = SERVED_RIGHTS_DIR,
		.rights_inheriting = WASI_RIGHTS_ALL,
		.preopen_name = strdup(guest),
		.served = root != NULL ? served_new(owner, server, root) : NULL,
	};
	uint32_t slot;
	if (f.preopen_name == NULL || f.served == NULL || wasi_fd_insert(w, &f, &slot) != 0) {
		free(f.preopen_name);
		if (f.served == NULL)
			free(root);
		wasi_served_release(f.served);
		return -ENOMEM;
	}
	return 0;
}

/* Open a mount root (it has no handle until needed). */
static uint16_t ensure_open(struct host_proc *hp, struct wasi_served *s)
{
	if (s->opened)
		return 0;
	struct reply r;
	uint16_t err = call(hp, s, WISP_FILE_OP_OPEN, WASI_O_DIRECTORY, 0, 0, WISP_FILE_RIGHT_READ,
	                    s->path, (uint32_t)strlen(s->path), &r);
	if (err)
		return err;
	bool dir = r.filetype == WASI_FILETYPE_DIRECTORY;
	s->handle = r.value;
	s->opened = true;
	reply_done(hp, &r);
	return dir ? 0 : WASI_EIO;
}

uint32_t wasi_served_open(WASI_SELF, struct wasi_fd *dir, uint32_t path, uint32_t path_len,
                          uint32_t oflags, uint64_t rights_base, uint64_t rights_inheriting,
                          uint32_t fdflags, uint32_t opened_fd)
{
	struct host_proc *hp = HOST_PROC(self);
	char *p;
	uint16_t err = guest_path(hp, dir, path, path_len, &p);
	if (err)
		return err;
	bool wr = (rights_base & (WASI_RIGHT_FD_WRITE | WASI_RIGHT_FD_ALLOCATE |
	                          WASI_RIGHT_FD_FILESTAT_SET_SIZE)) ||
	          (fdflags & WASI_FDFLAG_APPEND);
	bool rd = rights_base & (WASI_RIGHT_FD_READ | WASI_RIGHT_FD_READDIR);
	uint32_t rights = (rd ? WISP_FILE_RIGHT_READ : 0) | (wr ? WISP_FILE_RIGHT_WRITE : 0);
	/* Nothing malloc'd waits with the request (a kill unwinds it). */
	struct wasi_served probe = { .server = dir->served->server };
	struct reply r;
	err = call(hp, &probe, WISP_FILE_OP_OPEN, oflags | fdflags << 16, 0, 0, rights, p,
	           (uint32_t)strlen(p), &r);
	char *kept = err ? NULL : strdup(p);
	host_scratch_free(hp, p);
	if (err)
		return err;
	struct wasi_served *s = kept != NULL ? served_new(hp->proc, probe.server, kept) : NULL;
	if (s == NULL) {
		free(kept);
		probe.owner = hp->proc;
		probe.handle = r.value;
		probe.opened = true;
		reply_done(hp, &r);
		close_handle(&probe);
		return WASI_ENOMEM;
	}
	uint8_t type = r.filetype;
	s->handle = r.value;
	s->opened = true;
	s->append = fdflags & WASI_FDFLAG_APPEND;
	reply_done(hp, &r);
	/* A socket cannot be served; a directory asked for must be one. */
	if (type == WASI_FILETYPE_SOCKET_DGRAM || type == WASI_FILETYPE_SOCKET_STREAM)
		err = WASI_EIO;
	else if ((oflags & WASI_O_DIRECTORY) && type != WASI_FILETYPE_DIRECTORY)
		err = WASI_ENOTDIR;
	struct wasi_fd nf = {
		.host = -1,
		.borrowed = true,
		.filetype = type,
		.served = s,
	};
	uint64_t may = type == WASI_FILETYPE_DIRECTORY ? SERVED_RIGHTS_DIR : SERVED_RIGHTS_FILE;
	nf.rights_base = rights_base & dir->rights_inheriting & may;
	nf.rights_inheriting = rights_inheriting & dir->rights_inheriting;
	uint32_t slot;
	if (err == 0)
		err = wasi_fd_insert(W(self), &nf, &slot);
	if (err) {
		wasi_served_release(s);
		return err;
	}
	return wasi_put32(MEM(self), opened_fd, slot);
}

/* ---- I/O ---- */

/* Scatter data[0, n) over iov. */
static void scatter(const struct iovec *iov, int niov, const uint8_t *data, uint32_t n)
{
	for (int i = 0; i < niov && n > 0; i++) {
		size_t k = iov[i].iov_len < n ? iov[i].iov_len : n;
		memcpy(iov[i].iov_base, data, k);
		data += k;
		n -= (uint32_t)k;
	}
}

/* Gather up to max bytes of iov into out; the count. */
static uint32_t gather(const struct iovec *iov, int niov, uint8_t *out, uint32_t max)
{
	uint32_t n = 0;
	for (int i = 0; i < niov && n < max; i++) {
		size_t k = iov[i].iov_len < max - n ? iov[i].iov_len : max - n;
		memcpy(out + n, iov[i].iov_base, k);
		n += (uint32_t)k;
	}
	return n;
}

static uint32_t iov_total(const struct iovec *iov, int niov)
{
	uint64_t t = 0;
	for (int i = 0; i < niov; i++)
		t += iov[i].iov_len;
	return t > WISP_FILE_MAX_DATA ? WISP_FILE_MAX_DATA : (uint32_t)t;
}

/* One READ or WRITE at `at` (UINT64_MAX: append) of iov: the bytes moved
 * in *moved. */
static uint16_t transfer(struct host_proc *hp, struct wasi_served *s, struct iovec *iov,
                         int niov, uint64_t at, bool write, uint32_t *moved)
{
	uint32_t want = iov_total(iov, niov);
	struct reply r;
	uint16_t err;
	if (!write) {
		err = call(hp, s, WISP_FILE_OP_READ, 0, at, want, 0, NULL, 0, &r);
		if (err)
			return err;
		if (r.len > want) {
			reply_done(hp, &r);
			return WASI_EIO;
		}
		scatter(iov, niov, r.data, r.len);
		*moved = r.len;
		reply_done(hp, &r);
		return 0;
	}
	uint8_t *data = host_scratch_alloc(hp, want);
	if (data == NULL)
		return WASI_ENOMEM;
	gather(iov, niov, data, want);
	err = call(hp, s, WISP_FILE_OP_WRITE, 0, at, want, 0, data, want, &r);
	host_scratch_free(hp, data);
	if (err)
		return err;
	bool ok = r.value <= want;
	*moved = (uint32_t)r.value;
	reply_done(hp, &r);
	return ok ? 0 : WASI_EIO;
}

uint32_t wasi_served_rw(WASI_SELF, struct wasi_fd *f, uint32_t iovs, uint32_t n, int64_t offset,
                        uint32_t result, bool write)
{
	struct host_proc *hp = HOST_PROC(self);
	struct wasi_served *s = f->served;
	if (f->filetype == WASI_FILETYPE_DIRECTORY)
		return WASI_EISDIR;
	struct iovec stackbuf[STACK_IOVS], *iov;
	int niov;
	uint16_t err = wasi_iov_load(hp, iovs, n, stackbuf, STACK_IOVS, &iov, &niov);
	if (err)
		return err;
	uint64_t at = offset >= 0 ? (uint64_t)offset
	              : write && s->append ? UINT64_MAX : s->pos;
	uint32_t moved = 0;
	if (iov_total(iov, niov) > 0)
		err = transfer(hp, s, iov, niov, at, write, &moved);
	wasi_iov_free(hp, iov, stackbuf);
	if (err)
		return err;
	/* (After an append the position stays: the host does not learn
	 * where the end was.) */
	if (offset < 0 && at != UINT64_MAX)
		s->pos += moved;
	wasi_moved(self, moved);
	return wasi_put32(MEM(self), result, moved);
}

/* ---- metadata ---- */

/* A preview 1 filestat (64 bytes, from the server) at out in preview v's
 * layout. */
static void filestat_put(uint8_t *out, const uint8_t *p1, enum wasi_preview v)
{
	if (v == WASI_PREVIEW1) {
		memcpy(out, p1, WASI_FILESTAT_SIZE);
		return;
	}
	memset(out, 0, WASI_P0_FILESTAT_SIZE);
	memcpy(out, p1, 17);   /* dev, ino, filetype */
	uint64_t nlink = wasi_ld64(p1 + 24);
	wasi_st32(out + 20, nlink > UINT32_MAX ? UINT32_MAX : (uint32_t)nlink);
	memcpy(out + 24, p1 + 32, 32);   /* size, atim, mtim, ctim */
}

/* STAT (path NULL: of s's handle) or PSTAT of path into out (v's layout,
 * when out is not NULL); the size in *size. */
static uint16_t stat_of(struct host_proc *hp, struct wasi_served *s, const char *path,
                        uint8_t *out, enum wasi_preview v, uint64_t *size)
{
	uint16_t err = path == NULL ? ensure_open(hp, s) : 0;
	if (err)
		return err;
	struct reply r;
	err = path == NULL
	      ? call(hp, s, WISP_FILE_OP_STAT, 0, 0, 0, 0, NULL, 0, &r)
	      : call(hp, s, WISP_FILE_OP_PSTAT, 0, 0, 0, 0, path, (uint32_t)strlen(path), &r);
	if (err)
		return err;
	if (r.len != WISP_FILE_STAT_SIZE || r.data[16] > WASI_FILETYPE_SYMBOLIC_LINK) {
		reply_done(hp, &r);
		return WASI_EIO;
	}
	if (out != NULL)
		filestat_put(out, r.data, v);
	if (size != NULL)
		*size = wasi_ld64(r.data + 32);
	reply_done(hp, &r);
	return 0;
}

uint32_t wasi_served_filestat(WASI_SELF, struct wasi_fd *f, uint8_t *out, enum wasi_preview v)
{
	return stat_of(HOST_PROC(self), f->served, NULL, out, v, NULL);
}

uint32_t wasi_served_path_filestat(WASI_SELF, struct wasi_fd *f, uint32_t path,
                                   uint32_t path_len, uint8_t *out, enum wasi_preview v)
{
	struct host_proc *hp = HOST_PROC(self);
	char *p;
	uint16_t err = guest_path(hp, f, path, path_len, &p);
	if (err)
		return err;
	err = stat_of(hp, f->served, p, out, v, NULL);
	host_scratch_free(hp, p);
	return err;
}

uint32_t wasi_served_seek(WASI_SELF, struct wasi_fd *f, int64_t offset, uint32_t whence,
                          uint32_t newoffset)
{
	struct wasi_served *s = f->served;
	uint64_t base = s->pos;
	if (whence == 0)
		base = 0;
	else if (whence == 2) {
		uint16_t err = stat_of(HOST_PROC(self), s, NULL, NULL, WASI_PREVIEW1, &base);
		if (err)
			return err;
	}
	if (base > INT64_MAX || (offset > 0 && (int64_t)base > INT64_MAX - offset) ||
	    (int64_t)base + offset < 0)
		return WASI_EINVAL;
	s->pos = (uint64_t)((int64_t)base + offset);
	return wasi_put64(MEM(self), newoffset, s->pos);
}

uint32_t wasi_served_tell(WASI_SELF, struct wasi_fd *f, uint32_t offset)
{
	return wasi_put64(MEM(self), offset, f->served->pos);
}

bool wasi_served_append(const struct wasi_fd *f)
{
	return f->served->append;
}

/* ---- directories ---- */

/* Of a full chunk of dirents data[0, n): the end of its last whole record
 * and that record's d_next; 0 if none is whole. */
static uint32_t last_whole(const uint8_t *data, uint32_t n, uint64_t *next)
{
	uint32_t end = 0;
	for (uint32_t at = 0; n - at >= WISP_FILE_DIRENT_SIZE;) {
		uint32_t namlen = wasi_ld32(data + at + 16);
		if (namlen > n - at - WISP_FILE_DIRENT_SIZE)
			break;
		*next = wasi_ld64(data + at);
		at += WISP_FILE_DIRENT_SIZE + namlen;
		end = at;
	}
	return end;
}

uint32_t wasi_served_readdir(WASI_SELF, struct wasi_fd *f, uint8_t *out, uint32_t buf_len,
                             uint64_t cookie, uint32_t bufused)
{
	struct host_proc *hp = HOST_PROC(self);
	struct wasi_served *s = f->served;
	uint16_t err = ensure_open(hp, s);
	if (err)
		return err;
	uint32_t used = 0;
	/* A buffer larger than one reply takes several: the guest reads a
	 * buffer not filled as the end of the directory. */
	while (used < buf_len) {
		uint32_t want = buf_len - used < WISP_FILE_MAX_DATA ? buf_len - used
		                                                  : WISP_FILE_MAX_DATA;
		struct reply r;
		err = call(hp, s, WISP_FILE_OP_READDIR, 0, cookie, want, 0, NULL, 0, &r);
		if (err)
			return err;
		if (r.len > want) {
			reply_done(hp, &r);
			return WASI_EIO;
		}
		/* (out is still valid: guest memory does not move during the
		 * request.) */
		memcpy(out + used, r.data, r.len);
		uint32_t got = r.len;
		uint64_t next = cookie;
		/* A full reply with room after it: keep its whole records and
		 * ask again after the last. */
		uint32_t whole = got == want && used + got < buf_len ? last_whole(r.data, got, &next)
		                                                     : 0;
		reply_done(hp, &r);
		if (whole == 0) {
			used += got;
			break;
		}
		used += whole;
		cookie = next;
	}
	wasi_moved(self, used);
	return wasi_put32(MEM(self), bufused, used);
}
