/*
 * wasi_impl.h — internals shared by the WASI preview 1 host (wasi.c,
 * wasi_fd.c, wasi_path.c, wasi_sock.c, wasi_misc.c). Not for use outside
 * src/host/ except by the WASI unit tests.
 *
 * Error convention inside the WASI layer: every helper returns a WASI errno
 * (uint16_t, 0 = success). Host errno values are converted exactly once, at
 * the failing system call, with wasi_errno(errno). A guest pointer that is
 * out of bounds is WASI_EFAULT; a missing right or a write below a read-only
 * preopen is WASI_ENOTCAPABLE.
 *
 * Numbering and layouts follow the wasi_snapshot_preview1 witx definitions.
 * The same code serves wasi_unstable (preview 0): the few functions whose
 * layouts differ take an enum wasi_preview, and wasi_unstable.c holds the
 * translations.
 */
#ifndef WISP_WASI_IMPL_H
#define WISP_WASI_IMPL_H

#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <xxhash.h>

#include "host.h"
#include "host_abi.h"
#include "wasi.h"

/* errno (the ones the host produces by name; the rest come from the table
 * in wasi.c) */
enum {
	WASI_ESUCCESS = 0,
	WASI_E2BIG = 1,
	WASI_EACCES = 2,
	WASI_EAGAIN = 6,
	WASI_EBADF = 8,
	WASI_ECONNRESET = 15,
	WASI_EEXIST = 20,
	WASI_EFAULT = 21,
	WASI_EINTR = 27,
	WASI_EINVAL = 28,
	WASI_EIO = 29,
	WASI_EISDIR = 31,
	WASI_ELOOP = 32,
	WASI_EMFILE = 33,
	WASI_ENFILE = 41,
	WASI_ENAMETOOLONG = 37,
	WASI_ENOENT = 44,
	WASI_ENOMEM = 48,
	WASI_ENOSYS = 52,
	WASI_ENOTDIR = 54,
	WASI_ENOTEMPTY = 55,
	WASI_ENOBUFS = 42,
	WASI_ENOTSOCK = 57,
	WASI_ENOTSUP = 58,
	WASI_ENXIO = 60,
	WASI_EOVERFLOW = 61,
	WASI_ETIMEDOUT = 73,
	WASI_EPERM = 63,
	WASI_EPIPE = 64,
	WASI_EPROTO = 65,
	WASI_ESPIPE = 70,
	WASI_EXDEV = 75,
	WASI_ENOTCAPABLE = 76,
};

/* filetype */
enum {
	WASI_FILETYPE_UNKNOWN = 0,
	WASI_FILETYPE_BLOCK_DEVICE = 1,
	WASI_FILETYPE_CHARACTER_DEVICE = 2,
	WASI_FILETYPE_DIRECTORY = 3,
	WASI_FILETYPE_REGULAR_FILE = 4,
	WASI_FILETYPE_SOCKET_DGRAM = 5,
	WASI_FILETYPE_SOCKET_STREAM = 6,
	WASI_FILETYPE_SYMBOLIC_LINK = 7,
};

/* rights: bit numbers from witx */
#define WASI_R(bit) ((uint64_t)1 << (bit))
#define WASI_RIGHT_FD_DATASYNC            WASI_R(0)
#define WASI_RIGHT_FD_READ                WASI_R(1)
#define WASI_RIGHT_FD_SEEK                WASI_R(2)
#define WASI_RIGHT_FD_FDSTAT_SET_FLAGS    WASI_R(3)
#define WASI_RIGHT_FD_SYNC                WASI_R(4)
#define WASI_RIGHT_FD_TELL                WASI_R(5)
#define WASI_RIGHT_FD_WRITE               WASI_R(6)
#define WASI_RIGHT_FD_ADVISE              WASI_R(7)
#define WASI_RIGHT_FD_ALLOCATE            WASI_R(8)
#define WASI_RIGHT_PATH_CREATE_DIRECTORY  WASI_R(9)
#define WASI_RIGHT_PATH_CREATE_FILE       WASI_R(10)
#define WASI_RIGHT_PATH_LINK_SOURCE       WASI_R(11)
#define WASI_RIGHT_PATH_LINK_TARGET       WASI_R(12)
#define WASI_RIGHT_PATH_OPEN              WASI_R(13)
#define WASI_RIGHT_FD_READDIR             WASI_R(14)
#define WASI_RIGHT_PATH_READLINK          WASI_R(15)
#define WASI_RIGHT_PATH_RENAME_SOURCE     WASI_R(16)
#define WASI_RIGHT_PATH_RENAME_TARGET     WASI_R(17)
#define WASI_RIGHT_PATH_FILESTAT_GET      WASI_R(18)
#define WASI_RIGHT_PATH_FILESTAT_SET_SIZE WASI_R(19)
#define WASI_RIGHT_PATH_FILESTAT_SET_TIMES WASI_R(20)
#define WASI_RIGHT_FD_FILESTAT_GET        WASI_R(21)
#define WASI_RIGHT_FD_FILESTAT_SET_SIZE   WASI_R(22)
#define WASI_RIGHT_FD_FILESTAT_SET_TIMES  WASI_R(23)
#define WASI_RIGHT_PATH_SYMLINK           WASI_R(24)
#define WASI_RIGHT_PATH_REMOVE_DIRECTORY  WASI_R(25)
#define WASI_RIGHT_PATH_UNLINK_FILE       WASI_R(26)
#define WASI_RIGHT_POLL_FD_READWRITE      WASI_R(27)
#define WASI_RIGHT_SOCK_SHUTDOWN          WASI_R(28)
#define WASI_RIGHT_SOCK_ACCEPT            WASI_R(29)
#define WASI_RIGHTS_ALL                   (WASI_R(30) - 1)

/* Rights that only make sense on a regular file (or stream). */
#define WASI_RIGHTS_FILE \
	(WASI_RIGHT_FD_DATASYNC | WASI_RIGHT_FD_READ | WASI_RIGHT_FD_SEEK | \
	 WASI_RIGHT_FD_FDSTAT_SET_FLAGS | WASI_RIGHT_FD_SYNC | \
	 WASI_RIGHT_FD_TELL | WASI_RIGHT_FD_WRITE | WASI_RIGHT_FD_ADVISE | \
	 WASI_RIGHT_FD_ALLOCATE | WASI_RIGHT_FD_FILESTAT_GET | \
	 WASI_RIGHT_FD_FILESTAT_SET_SIZE | WASI_RIGHT_FD_FILESTAT_SET_TIMES | \
	 WASI_RIGHT_POLL_FD_READWRITE)
/* Rights that make sense on a directory. */
#define WASI_RIGHTS_DIR \
	(WASI_RIGHT_FD_FDSTAT_SET_FLAGS | WASI_RIGHT_FD_SYNC | \
	 WASI_RIGHT_FD_DATASYNC | WASI_RIGHT_PATH_CREATE_DIRECTORY | \
	 WASI_RIGHT_PATH_CREATE_FILE | WASI_RIGHT_PATH_LINK_SOURCE | \
	 WASI_RIGHT_PATH_LINK_TARGET | WASI_RIGHT_PATH_OPEN | \
	 WASI_RIGHT_FD_READDIR | WASI_RIGHT_PATH_READLINK | \
	 WASI_RIGHT_PATH_RENAME_SOURCE | WASI_RIGHT_PATH_RENAME_TARGET | \
	 WASI_RIGHT_PATH_FILESTAT_GET | WASI_RIGHT_PATH_FILESTAT_SET_SIZE | \
	 WASI_RIGHT_PATH_FILESTAT_SET_TIMES | WASI_RIGHT_FD_FILESTAT_GET | \
	 WASI_RIGHT_FD_FILESTAT_SET_TIMES | WASI_RIGHT_PATH_SYMLINK | \
	 WASI_RIGHT_PATH_REMOVE_DIRECTORY | WASI_RIGHT_PATH_UNLINK_FILE | \
	 WASI_RIGHT_POLL_FD_READWRITE)
#define WASI_RIGHTS_SOCKET \
	(WASI_RIGHT_FD_READ | WASI_RIGHT_FD_WRITE | \
	 WASI_RIGHT_FD_FDSTAT_SET_FLAGS | WASI_RIGHT_FD_FILESTAT_GET | \
	 WASI_RIGHT_POLL_FD_READWRITE | WASI_RIGHT_SOCK_SHUTDOWN | \
	 WASI_RIGHT_SOCK_ACCEPT)
/* Everything that modifies the file system: never granted below a
 * read-only preopen. */
#define WASI_RIGHTS_WRITING \
	(WASI_RIGHT_FD_WRITE | WASI_RIGHT_FD_ALLOCATE | \
	 WASI_RIGHT_FD_FILESTAT_SET_SIZE | WASI_RIGHT_FD_FILESTAT_SET_TIMES | \
	 WASI_RIGHT_PATH_CREATE_DIRECTORY | WASI_RIGHT_PATH_CREATE_FILE | \
	 WASI_RIGHT_PATH_LINK_SOURCE | WASI_RIGHT_PATH_LINK_TARGET | \
	 WASI_RIGHT_PATH_RENAME_SOURCE | WASI_RIGHT_PATH_RENAME_TARGET | \
	 WASI_RIGHT_PATH_FILESTAT_SET_SIZE | \
	 WASI_RIGHT_PATH_FILESTAT_SET_TIMES | WASI_RIGHT_PATH_SYMLINK | \
	 WASI_RIGHT_PATH_REMOVE_DIRECTORY | WASI_RIGHT_PATH_UNLINK_FILE)

/* fdflags */
#define WASI_FDFLAG_APPEND   0x1
#define WASI_FDFLAG_DSYNC    0x2
#define WASI_FDFLAG_NONBLOCK 0x4
#define WASI_FDFLAG_RSYNC    0x8
#define WASI_FDFLAG_SYNC     0x10
/* oflags */
#define WASI_O_CREAT     0x1
#define WASI_O_DIRECTORY 0x2
#define WASI_O_EXCL      0x4
#define WASI_O_TRUNC     0x8
/* lookupflags */
#define WASI_LOOKUP_SYMLINK_FOLLOW 0x1
/* fstflags */
#define WASI_FST_ATIM     0x1
#define WASI_FST_ATIM_NOW 0x2
#define WASI_FST_MTIM     0x4
#define WASI_FST_MTIM_NOW 0x8
/* clockid */
#define WASI_CLOCK_REALTIME 0
#define WASI_CLOCK_MONOTONIC 1
#define WASI_CLOCK_PROCESS_CPUTIME 2
#define WASI_CLOCK_THREAD_CPUTIME 3

/* Sizes of the structures the guest sees. */
#define WASI_FILESTAT_SIZE 64
#define WASI_FDSTAT_SIZE 24
#define WASI_PRESTAT_SIZE 8
#define WASI_DIRENT_SIZE 24
#define WASI_IOVEC_SIZE 8
#define WASI_SUBSCRIPTION_SIZE 48
#define WASI_EVENT_SIZE 32

/* Which WASI the guest called: the import namespace's version. Preview 0
 * (wasi_unstable) differs from preview 1 in a few layouts and constants
 * only (docs/abi.md, "Older modules: wasi_unstable"): */
enum wasi_preview { WASI_PREVIEW1, WASI_PREVIEW0 };
/* its filestat has a u32 linkcount (56 bytes); its clock subscription
 * starts with a u64 `identifier` (a subscription is 56 bytes); its rights
 * end before sock_accept; its whence is CUR, END, SET. */
#define WASI_P0_FILESTAT_SIZE 56
#define WASI_P0_SUBSCRIPTION_SIZE 56
#define WASI_P0_RIGHTS_ALL (WASI_RIGHT_SOCK_ACCEPT - 1)

static inline uint32_t wasi_filestat_size(enum wasi_preview v)
{
	return v == WASI_PREVIEW0 ? WASI_P0_FILESTAT_SIZE : WASI_FILESTAT_SIZE;
}

/* One slot of the guest's fd table. */
struct proc;
struct tls_stream;

struct wasi_fd {
	bool used;
	/* The host fd is not this process's: stdio (the embedder's) or a
	 * preopen (its capability set's, shared by every process holding the
	 * set). It is never closed here, and its open file description is
	 * never changed: fd_fdstat_set_flags keeps the guest's APPEND and
	 * NONBLOCK in `vflags` and the I/O functions emulate them
	 * (wasi_fd.c). */
	bool borrowed;
	uint16_t vflags;        /* borrowed: the guest's WASI_FDFLAG_APPEND and
	                           WASI_FDFLAG_NONBLOCK */
	bool read_only;         /* below a read-only preopen */
	uint8_t filetype;
	int host;               /* host file descriptor */
	/* A wisp socket: non-blocking on the host, blocking for the guest
	 * (unless guest_nonblock): a read/write that would block parks the
	 * process in the reactor instead of the thread. */
	bool parks;
	bool guest_nonblock;
	/* A parking fd of the process's own, registered with the reactor on
	 * its first wait (wasi_fd_wait): WASI_WATCH_*, and its ticket. */
	uint8_t watch;
	struct proc *watched_by;   /* WASI_WATCH_ON: whose reactor */
	uint64_t ticket;
	/* A stream read after `ticket` emptied it (wisp_net's read): the next
	 * may wait without reading (proc_fd_drained). */
	bool drained;
	uint64_t rights_base;
	uint64_t rights_inheriting;
	char *preopen_name;     /* guest name if a preopened directory */
	DIR *dir;               /* readdir stream, opened lazily */
	uint64_t dir_pos;       /* cookie (entry ordinal) where `dir` stands */
	long *dir_offs;         /* telldir() of each ordinal seen so far */
	uint64_t dir_noffs, dir_capoffs;
	/* A served file or directory (wasi_served.c): host is -1, and its
	 * server, handle, position and path are here (owned by the slot). */
	struct wasi_served *served;
	/* A socket of the process's own, counted as open (rt_count) until
	 * the slot is released: the process it was counted for (else NULL). */
	struct proc *counted_by;
	/* A TLS stream over this socket (wisp_tls.c), owned by the slot: its
	 * reads and writes go through it, and it is freed (close_notify sent
	 * if established) before the socket closes. NULL: plain. */
	struct tls_stream *tls;
};

struct wasi_ctx {
	struct wasi_fd *fds;
	uint32_t nfds;          /* slots allocated in fds */
	uint32_t max_fds;       /* a new fd must be numbered below this
	                           (the capability set's max_fds): EMFILE */
	/* The process's sockets sent and not yet received (struct proc's
	 * fds_in_flight; NULL outside a process): they take room below
	 * max_fds too. */
	_Atomic uint32_t *in_flight;
	struct proc *proc;      /* the owner (NULL outside a process) */
	int host_fd_ceiling;    /* a new host fd numbered at or above this is
	                           refused (ENFILE): the ones above are the
	                           runtime's reserve (see wasi.c) */
	/* The last program this process spawned (wisp_program.c): its bytes'
	 * length, their XXH3-128 and their SHA-256, the module's name. */
	uint32_t last_program_len;
	XXH128_hash_t last_program_quick;
	unsigned char last_program[32];
	/* Why the process's last failed wisp_tls call failed (wisp_tls.c),
	 * malloc'd, or NULL. */
	char *tls_error;
	/* args and environment: strings back to back, each NUL-terminated */
	char *args;
	uint32_t args_bytes, argc;
	char *env;
	uint32_t env_bytes, envc;
};

/* For an fd whose operation would block (EAGAIN from the host): a `parks`
 * fd the guest wants blocking parks the process until it may succeed; a
 * borrowed fd the guest wants blocking (its host fd may be O_NONBLOCK,
 * which is not ours to clear) waits in poll(2). True to retry, false to
 * report EAGAIN. */
bool wasi_wait_ready(void *self, struct wasi_fd *f, bool write);
/* Waiting for a parking fd of the process's own: it is registered with
 * the runtime's reactor once, on its first wait (WASI_WATCH_ON;
 * WASI_WATCH_OFF if the reactor refused, and it is then armed one-shot at
 * each wait). wasi_fd_wait, after the caller's read or write found f not
 * ready: parks the process until f may be ready for `events` (REACTOR_*),
 * the timeout passes (timeout_ns < 0: none) or a signal comes. 0: try the
 * operation again (also at once, unparked, when an edge came since the
 * ticket); -ETIMEDOUT; -errno (-EPERM: an fd the reactor cannot watch).
 * No system call on the registered path: f keeps the ticket
 * (src/io/reactor.h) taken at the end of its previous wait, which is
 * older than the operation that failed, as the ticket's contract needs
 * (an older ticket can only make it try again once for nothing); the
 * first wait of a slot registers it and looks with poll(2) once.
 * In a process only (w->proc). wasi_fd_watched registers f if it can and
 * says whether it is (for waits on several fds, which take tickets
 * themselves). */
enum { WASI_WATCH_UNTRIED, WASI_WATCH_ON, WASI_WATCH_OFF };
bool wasi_fd_watched(struct wasi_ctx *w, struct wasi_fd *f);
int wasi_fd_wait(struct wasi_ctx *w, struct wasi_fd *f, uint32_t events, int64_t timeout_ns);
/* For a borrowed fd whose guest set NONBLOCK: would an operation block now?
 * (Then the caller answers EAGAIN without touching the host fd.) */
bool wasi_would_block(const struct wasi_fd *f, bool write);

/* CPU work (--max-cpu, wisp_caps.limit CPU): every WASI call costs the
 * calling process WASI_CALL_REDUCTIONS reductions when it starts (about
 * what a system call costs next to a loop trip; without it a loop of
 * cheap calls got a hundred times its budget), and one more per 64 bytes
 * it moves once it has moved them. Either may end the process (its CPU
 * limit): call them holding nothing an unwind would leak (scratch is
 * fine). Outside a wisp process (unit tests) nothing is charged. */
#define WASI_CALL_REDUCTIONS 64
void wasi_call_work(void *self);
void wasi_moved(void *self, uint64_t bytes);

/* Map a host errno to a WASI errno (unknown ones give WASI_EIO). */
uint16_t wasi_errno(int host_errno);

/* The open fd `fd`, or NULL with *err = WASI_EBADF. When it lacks any of
 * `rights`, NULL with *err = WASI_ENOTCAPABLE. A served fd (no host fd)
 * is NULL with WASI_ENOTSUP: only the calls wasi_served.c implements
 * look it up, with wasi_fd_lookup_any (which returns it too). */
struct wasi_fd *wasi_fd_lookup(struct wasi_ctx *w, uint32_t fd,
                               uint64_t rights, uint16_t *err);
struct wasi_fd *wasi_fd_lookup_any(struct wasi_ctx *w, uint32_t fd,
                                   uint64_t rights, uint16_t *err);
/* Put `f` (copied, f->used is set) into the lowest free slot; its number in
 * *out. Ownership of f's host fd and strings passes to the table on
 * success; on failure nothing is taken: WASI_EMFILE when the lowest free
 * number is not below the process's fd limit, WASI_ENFILE when f's host fd
 * lies in the runtime's reserve (the host is nearly out of fds: the caller
 * closes it, and only this guest sees the error), WASI_ENOMEM. Every fd a
 * guest gets goes through here: opened files and directories, accepted
 * and created sockets, sockets adopted from messages (wisp_net). */
uint16_t wasi_fd_insert(struct wasi_ctx *w, const struct wasi_fd *f,
                        uint32_t *out);
/* May a new host fd `host` (made for w's guest, not yet in the table) be
 * kept? WASI_ENFILE if it lies in the runtime's reserve, else 0. For host
 * fds a slot holds besides its own (a directory's listing stream). */
uint16_t wasi_host_fd_check(const struct wasi_ctx *w, int host);
/* Open, read-only, the file a guest would name `path` (absolute or
 * relative, resolved as wasi-libc does: below the preopened directory
 * whose guest name covers the most leading components of it, then by
 * openat2 beneath that directory), so that the host may read it on the
 * guest's behalf (a TLS key). Opened O_NONBLOCK, never waiting (a named
 * pipe): the caller checks what it opened. A host fd, or -1 with a WASI
 * errno in *err:
 * ENOTCAPABLE when no directory of the process holds the path or the
 * path leaves it (wasi_path.c). */
int wasi_open_guest_path(struct wasi_ctx *w, const char *path, uint16_t *err);
/* Close what a slot owns (not borrowed host fds) and mark it free. */
void wasi_fd_release(struct wasi_fd *f);
/* f, a slot of w, holds a socket of w's process's own from now on (not
 * borrowed): count it as open until it is released (the runtime's
 * statistics). wasi_fd_insert does this itself. */
void wasi_fd_count_socket(struct wasi_ctx *w, struct wasi_fd *f);

/* Filetype of a host fd, from fstat; also the rights a fresh fd of that
 * type gets. */
uint8_t wasi_filetype_of_mode(unsigned mode);
uint64_t wasi_rights_for_type(uint8_t filetype, int host_fd);

/* Encode a host struct stat as a WASI filestat of preview v at `out`
 * (wasi_filestat_size(v) bytes of guest memory). */
struct stat;
void wasi_filestat_encode(uint8_t *out, const struct stat *st,
                          enum wasi_preview v);

/* Guest iovec list (in hp's memory) → host iovecs. Returns WASI_EFAULT
 * for any bad pointer. *iov is `stackbuf` or hp's scratch (free with
 * wasi_iov_free; if a kill unwinds the call, the process's exit frees it);
 * the count is capped at IOV_MAX and the total at INT32_MAX bytes (a short
 * transfer). */
struct iovec;
uint16_t wasi_iov_load(struct host_proc *hp, uint32_t iovs, uint32_t n,
                       struct iovec *stackbuf, uint32_t stackn,
                       struct iovec **iov, int *niov);
void wasi_iov_free(struct host_proc *hp, struct iovec *iov, struct iovec *stackbuf);

/* Little-endian stores/loads at possibly unaligned host addresses. */
static inline void wasi_st16(void *p, uint16_t v) { memcpy(p, &v, 2); }
static inline void wasi_st32(void *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void wasi_st64(void *p, uint64_t v) { memcpy(p, &v, 8); }
static inline uint16_t wasi_ld16(const void *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
}
static inline uint32_t wasi_ld32(const void *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}
static inline uint64_t wasi_ld64(const void *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

/* Store a u32/u64 result at a guest address; WASI_EFAULT if out of bounds. */
uint16_t wasi_put32(wasm_rt_memory_t *mem, uint32_t addr, uint32_t v);
uint16_t wasi_put64(wasm_rt_memory_t *mem, uint32_t addr, uint64_t v);

/* Build utimensat() times from WASI (atim, mtim, fstflags); WASI_EINVAL
 * for unknown flags or a time given both explicitly and as "now". */
struct timespec;
uint16_t wasi_times(uint64_t atim, uint64_t mtim, uint32_t fstflags,
                    struct timespec ts[2]);

/* Close the readdir stream of a slot, if any (wasi_fd.c). */
void wasi_fd_closedir(struct wasi_fd *f);

/* The generated code's view of the import namespace. */
struct Z_wasi_snapshot_preview1_instance_t;
#define WASI_SELF struct Z_wasi_snapshot_preview1_instance_t *self
#define WASI_FN(name) Z_wasi_snapshot_preview1Z_##name

uint32_t WASI_FN(args_get)(WASI_SELF, uint32_t argv, uint32_t argv_buf);
uint32_t WASI_FN(args_sizes_get)(WASI_SELF, uint32_t argc, uint32_t size);
uint32_t WASI_FN(environ_get)(WASI_SELF, uint32_t environ, uint32_t buf);
uint32_t WASI_FN(environ_sizes_get)(WASI_SELF, uint32_t count, uint32_t size);
uint32_t WASI_FN(clock_res_get)(WASI_SELF, uint32_t id, uint32_t res);
uint32_t WASI_FN(clock_time_get)(WASI_SELF, uint32_t id, uint64_t precision,
                                 uint32_t time);
uint32_t WASI_FN(fd_advise)(WASI_SELF, uint32_t fd, uint64_t offset,
                            uint64_t len, uint32_t advice);
uint32_t WASI_FN(fd_allocate)(WASI_SELF, uint32_t fd, uint64_t offset,
                              uint64_t len);
uint32_t WASI_FN(fd_close)(WASI_SELF, uint32_t fd);
uint32_t WASI_FN(fd_datasync)(WASI_SELF, uint32_t fd);
uint32_t WASI_FN(fd_fdstat_get)(WASI_SELF, uint32_t fd, uint32_t buf);
uint32_t WASI_FN(fd_fdstat_set_flags)(WASI_SELF, uint32_t fd, uint32_t flags);
uint32_t WASI_FN(fd_fdstat_set_rights)(WASI_SELF, uint32_t fd, uint64_t base,
                                       uint64_t inheriting);
uint32_t WASI_FN(fd_filestat_get)(WASI_SELF, uint32_t fd, uint32_t buf);
uint32_t WASI_FN(fd_filestat_set_size)(WASI_SELF, uint32_t fd, uint64_t size);
uint32_t WASI_FN(fd_filestat_set_times)(WASI_SELF, uint32_t fd, uint64_t atim,
                                        uint64_t mtim, uint32_t fstflags);
uint32_t WASI_FN(fd_pread)(WASI_SELF, uint32_t fd, uint32_t iovs,
                           uint32_t iovs_len, uint64_t offset, uint32_t nread);
uint32_t WASI_FN(fd_prestat_get)(WASI_SELF, uint32_t fd, uint32_t buf);
uint32_t WASI_FN(fd_prestat_dir_name)(WASI_SELF, uint32_t fd, uint32_t path,
                                      uint32_t path_len);
uint32_t WASI_FN(fd_pwrite)(WASI_SELF, uint32_t fd, uint32_t iovs,
                            uint32_t iovs_len, uint64_t offset,
                            uint32_t nwritten);
uint32_t WASI_FN(fd_read)(WASI_SELF, uint32_t fd, uint32_t iovs,
                          uint32_t iovs_len, uint32_t nread);
uint32_t WASI_FN(fd_readdir)(WASI_SELF, uint32_t fd, uint32_t buf,
                             uint32_t buf_len, uint64_t cookie,
                             uint32_t bufused);
uint32_t WASI_FN(fd_renumber)(WASI_SELF, uint32_t fd, uint32_t to);
uint32_t WASI_FN(fd_seek)(WASI_SELF, uint32_t fd, uint64_t offset,
                          uint32_t whence, uint32_t newoffset);
uint32_t WASI_FN(fd_sync)(WASI_SELF, uint32_t fd);
uint32_t WASI_FN(fd_tell)(WASI_SELF, uint32_t fd, uint32_t offset);
uint32_t WASI_FN(fd_write)(WASI_SELF, uint32_t fd, uint32_t iovs,
                           uint32_t iovs_len, uint32_t nwritten);
uint32_t WASI_FN(path_create_directory)(WASI_SELF, uint32_t fd, uint32_t path,
                                        uint32_t path_len);
uint32_t WASI_FN(path_filestat_get)(WASI_SELF, uint32_t fd, uint32_t flags,
                                    uint32_t path, uint32_t path_len,
                                    uint32_t buf);
uint32_t WASI_FN(path_filestat_set_times)(WASI_SELF, uint32_t fd,
                                          uint32_t flags, uint32_t path,
                                          uint32_t path_len, uint64_t atim,
                                          uint64_t mtim, uint32_t fstflags);
uint32_t WASI_FN(path_link)(WASI_SELF, uint32_t old_fd, uint32_t old_flags,
                            uint32_t old_path, uint32_t old_path_len,
                            uint32_t new_fd, uint32_t new_path,
                            uint32_t new_path_len);
uint32_t WASI_FN(path_open)(WASI_SELF, uint32_t fd, uint32_t dirflags,
                            uint32_t path, uint32_t path_len, uint32_t oflags,
                            uint64_t rights_base, uint64_t rights_inheriting,
                            uint32_t fdflags, uint32_t opened_fd);
uint32_t WASI_FN(path_readlink)(WASI_SELF, uint32_t fd, uint32_t path,
                                uint32_t path_len, uint32_t buf,
                                uint32_t buf_len, uint32_t bufused);
uint32_t WASI_FN(path_remove_directory)(WASI_SELF, uint32_t fd, uint32_t path,
                                        uint32_t path_len);
uint32_t WASI_FN(path_rename)(WASI_SELF, uint32_t fd, uint32_t old_path,
                              uint32_t old_path_len, uint32_t new_fd,
                              uint32_t new_path, uint32_t new_path_len);
uint32_t WASI_FN(path_symlink)(WASI_SELF, uint32_t old_path,
                               uint32_t old_path_len, uint32_t fd,
                               uint32_t new_path, uint32_t new_path_len);
uint32_t WASI_FN(path_unlink_file)(WASI_SELF, uint32_t fd, uint32_t path,
                                   uint32_t path_len);
uint32_t WASI_FN(poll_oneoff)(WASI_SELF, uint32_t in, uint32_t out,
                              uint32_t nsubscriptions, uint32_t nevents);
void WASI_FN(proc_exit)(WASI_SELF, uint32_t code);
uint32_t WASI_FN(proc_raise)(WASI_SELF, uint32_t sig);
uint32_t WASI_FN(sched_yield)(WASI_SELF);
uint32_t WASI_FN(random_get)(WASI_SELF, uint32_t buf, uint32_t buf_len);
uint32_t WASI_FN(sock_accept)(WASI_SELF, uint32_t fd, uint32_t flags,
                              uint32_t fd_out);
uint32_t WASI_FN(sock_recv)(WASI_SELF, uint32_t fd, uint32_t ri_data,
                            uint32_t ri_data_len, uint32_t ri_flags,
                            uint32_t ro_datalen, uint32_t ro_flags);
uint32_t WASI_FN(sock_send)(WASI_SELF, uint32_t fd, uint32_t si_data,
                            uint32_t si_data_len, uint32_t si_flags,
                            uint32_t so_datalen);
uint32_t WASI_FN(sock_shutdown)(WASI_SELF, uint32_t fd, uint32_t how);

/* The functions whose layouts differ between the previews, for either:
 * WASI_FN(name) is wasi_<name>(..., WASI_PREVIEW1), and wasi_unstable.c
 * calls them with WASI_PREVIEW0. Same contract as the WASI function. */
uint32_t wasi_fd_fdstat_get(WASI_SELF, uint32_t fd, uint32_t buf,
                            enum wasi_preview v);
uint32_t wasi_fd_filestat_get(WASI_SELF, uint32_t fd, uint32_t buf,
                              enum wasi_preview v);
uint32_t wasi_path_filestat_get(WASI_SELF, uint32_t fd, uint32_t flags,
                                uint32_t path, uint32_t path_len,
                                uint32_t buf, enum wasi_preview v);
uint32_t wasi_poll_oneoff(WASI_SELF, uint32_t in, uint32_t out,
                          uint32_t nsubscriptions, uint32_t nevents,
                          enum wasi_preview v);

/* Served files (wasi_served.c; docs/abi.md, "Served files"). The calls
 * below take a slot whose `served` is set, looked up with the rights the
 * WASI function needs, and have that function's contract. */
struct proc;
/* Add a served directory named `guest` (a preopen, the next free slot)
 * whose server is `server`; requests are sent as `owner`. 0 or -ENOMEM. */
int wasi_served_mount(struct wasi_ctx *w, struct proc *owner, const char *guest,
                      uint64_t server);
/* Free a slot's served state, telling the server its handle is closed
 * (best effort). */
void wasi_served_release(struct wasi_served *s);
/* Make s's release send nothing (s may be NULL). */
void wasi_served_disown(struct wasi_served *s);
uint32_t wasi_served_open(WASI_SELF, struct wasi_fd *dir, uint32_t path,
                          uint32_t path_len, uint32_t oflags, uint64_t rights_base,
                          uint64_t rights_inheriting, uint32_t fdflags, uint32_t opened_fd);
/* fd_read/fd_write (offset < 0) and fd_pread/fd_pwrite. */
uint32_t wasi_served_rw(WASI_SELF, struct wasi_fd *f, uint32_t iovs, uint32_t n,
                        int64_t offset, uint32_t result, bool write);
/* fd_seek (whence already preview 1's: SET, CUR, END) and fd_tell. */
uint32_t wasi_served_seek(WASI_SELF, struct wasi_fd *f, int64_t offset, uint32_t whence,
                          uint32_t newoffset);
uint32_t wasi_served_tell(WASI_SELF, struct wasi_fd *f, uint32_t offset);
/* The filestat into out (wasi_filestat_size(v) bytes, checked). */
uint32_t wasi_served_filestat(WASI_SELF, struct wasi_fd *f, uint8_t *out,
                              enum wasi_preview v);
uint32_t wasi_served_path_filestat(WASI_SELF, struct wasi_fd *f, uint32_t path,
                                   uint32_t path_len, uint8_t *out, enum wasi_preview v);
/* fd_readdir into out (buf_len bytes, checked). */
uint32_t wasi_served_readdir(WASI_SELF, struct wasi_fd *f, uint8_t *out,
                             uint32_t buf_len, uint64_t cookie, uint32_t bufused);
/* Was f opened with APPEND? (its fdstat) */
bool wasi_served_append(const struct wasi_fd *f);

#endif
