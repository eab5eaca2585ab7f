/*
 * caps.h — a process's capabilities: what the host lets it do.
 *
 * A capability set is immutable once a process holds it and shared by
 * reference: a child spawned plainly holds its parent's set; a child
 * spawned with a set the parent built (wisp_caps) holds that one, which can
 * only be narrower than the parent's — every builder operation drops or
 * lowers something, none adds. The root set comes from `wisp run`'s options.
 *
 * Enforcement is at the host boundary: WASI (src/host, above this layer)
 * builds a process's WASI state from the set and sees only its directories,
 * environment, stdio and fd limit; wisp_net checks the network rules;
 * spawning checks may_spawn and the process quota; the engine enforces the
 * memory limit (memory.grow fails); the scheduler charges reductions against
 * the CPU limit; sends check the message size limit. This header includes no
 * host header: the set describes, the layers above enforce.
 *
 * Directories are held as open directory fds (O_PATH|O_DIRECTORY), opened
 * once, when the root set is built from `wisp run`'s options, and never
 * looked up by host path again: every process's WASI state refers to those
 * same fds, and the kernel resolves guest paths beneath them (openat2
 * RESOLVE_BENEATH). A guest that renames a preopened directory away and
 * puts a symlink in its place changes nothing for anyone: the fd still
 * names the directory it was opened on. A narrowed set refers to its root's
 * fds (it holds the root alive through `parent`); only the set that opened
 * a directory closes it, when its last reference goes.
 *
 * Rejected: keeping host paths and opening them per process (what wisp did
 * first). Any guest with write access above a preopen could swap the path
 * for a symlink between the root set's check and a child's first WASI call
 * and give that child the whole host. Dup'ing the fds per process instead of
 * sharing them would cost a host fd per preopen per process for nothing: an
 * O_PATH fd has no offset or flags a process could change for another.
 */
#ifndef WISP_CAPS_H
#define WISP_CAPS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum cap_stdio { CAP_STDIO_INHERIT = 0, CAP_STDIO_NULL = 1, CAP_STDIO_CLOSED = 2 };

/* A network rule: host is an address literal or "*"; port 0 means any. */
struct net_rule {
	char host[64];
	uint16_t port;
};

/* The fds a process may hold when its set says nothing else. */
#define CAPS_DEFAULT_MAX_FDS 1024

/* A directory the guest sees as `guest`. */
struct cap_dir {
	int fd;                       /* O_PATH|O_DIRECTORY, see above */
	char *guest;                  /* the name the guest sees ("/data", ".") */
	char *host;                   /* the path it was opened by (messages only) */
	bool read_only;               /* deny every write/create/remove below it */
	bool owned;                   /* this set opened fd and closes it */
};

struct caps {
	atomic_int refs;
	struct caps *parent;          /* the set this one was narrowed from */
	/* files, environment, arguments, stdio (as WASI will see them) */
	struct cap_dir *dirs;
	int ndirs;
	char **env;
	int nenv;
	char **args;
	int nargs;
	uint8_t stdio[3];             /* enum cap_stdio */
	/* network */
	struct net_rule *connect, *listen;
	int nconnect, nlisten;
	bool udp, dns;
	/* processes */
	bool may_spawn, may_create_caps;
	bool may_use_nodes;           /* connect to nodes, send to names there */
	bool may_load_code;           /* wisp_code_load: new versions */
	uint64_t max_processes;       /* live processes spawned under this set */
	atomic_uint_fast64_t live;
	/* limits (UINT64_MAX: none) */
	uint64_t max_memory;          /* bytes of linear memory */
	uint64_t max_cpu;             /* reductions over the process's lifetime */
	uint64_t max_message;         /* bytes per message */
	uint64_t max_fds;             /* fd numbers a process may use (default
	                                 CAPS_DEFAULT_MAX_FDS): a new fd must get
	                                 a number below it */
	int null_fd;                  /* /dev/null for CAP_STDIO_NULL, or -1 */
	/* For an inherited stdio slot that is a pipe, FIFO or terminal: a
	 * private reopening of it (/proc/self/fd/N) with O_NONBLOCK, so that
	 * a guest waiting on it parks on the reactor instead of holding a
	 * scheduler thread, and the shared description's flags stay the
	 * invoker's; -1 where there is none (the slot uses fd i itself). The
	 * root opens them (caps_finish) and closes them; derived sets share. */
	int park_fd[3];
	bool park_owned;
	bool verbose;                 /* log denials (wisp run -v) */
	bool frozen;                  /* a process holds it: no more changes */
};

/* An empty set: nothing allowed, no limits set yet (UINT64_MAX), except
 * max_fds (CAPS_DEFAULT_MAX_FDS). */
struct caps *caps_new(void);
/* A mutable copy of c (refs 1, parent c), for narrowing. */
struct caps *caps_derive(struct caps *c);
void caps_ref(struct caps *c);
void caps_unref(struct caps *c);
/* Make c ready for a process to hold (after the last change): opens
 * /dev/null if a stdio slot needs it. 0 or -errno. */
int caps_finish(struct caps *c);
/* The host fd a process's stdio slot i (0-2) stands for, given the host
 * fds `inherit` means (NULL: 0, 1, 2, or their park_fd); -1 if closed.
 * *parks: it is a non-blocking fd the caller waits for on the reactor. */
int caps_stdio_fd(const struct caps *c, int i, const int *inherit, bool *parks);

/* Add to a set being built by the CLI (the root). caps_add_dir opens the
 * directory now (following symlinks in `host`, which is the user's choice,
 * once); 0, or -errno (-ENOTDIR if it is not a directory). The others
 * return 0 or -EINVAL / -ENOMEM. */
int caps_add_dir(struct caps *c, const char *host, const char *guest, bool ro);
/* The length of the guest directory name `name` (len bytes) without its
 * trailing slashes, a lone "/" kept. A guest's libc matches paths against
 * the name as it is, so "data/" would serve "data/x" but refuse "data"
 * itself: every name a guest will see (--dir, a program's mounts) and
 * every name looked up (wisp_caps) goes through this. */
size_t caps_dir_name_len(const char *name, size_t len);
int caps_add_env(struct caps *c, const char *kv);
int caps_set_args(struct caps *c, int argc, const char *const *argv);
int caps_add_rule(struct caps *c, bool listen, const char *spec);

/* Remove directory i of a set being narrowed (the order of the others is
 * kept: it is the guest's preopen numbering). */
void caps_drop_dir(struct caps *c, int i);

/* Checks (host code; a denial is logged when verbose). */
bool caps_may_connect(const struct caps *c, const char *host, unsigned port);
bool caps_may_listen(const struct caps *c, const char *host, unsigned port);

/* Count a new process against the quotas of c and the sets it was
 * narrowed from; false (nothing counted) if one is full. */
bool caps_charge(struct caps *c);
void caps_uncharge(struct caps *c);

/* Print "wisp: denied: ..." to stderr if c->verbose. */
void caps_log_denied(const struct caps *c, uint64_t pid, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
