/*
 * wisp_program.c — the wisp_program namespace: a process starts a whole
 * WASI program (a command module of its choosing) as a child process.
 *
 * The module goes through the runtime's module table like any other
 * (compiled on a blocking thread while the caller parks, found by hash the
 * next time, imports checked with the same message `wisp run` gives). The
 * child runs its _start under a capability set derived from the caller's
 * (or from one the caller narrowed): never more than the caller has; the
 * arguments and environment are the spec's.
 *
 * Stdio. A pipe is a real pipe: its two ends are host fds, one in the
 * child's WASI table as fd 0, 1 or 2, the other in the caller's as a new
 * fd. Both are non-blocking on the host and blocking for the guests: a
 * read of an empty pipe or a write to a full one parks the process on the
 * reactor (as sockets do), so a child that never reads its stdin makes
 * its writer wait, bounded by the kernel's pipe buffer, and nothing is
 * lost. Closing the caller's stdin end is the program's end of file; the
 * program's end closes its ends, the caller's reads then see end of file.
 * (Rejected: serving stdio through messages to the parent, the design
 * brief's served calls. A message per read and write would cost a round
 * trip per call and a copy into a mailbox, and would have to rebuild
 * what the kernel's pipe gives: a bounded buffer, end of file, and
 * readiness the reactor already waits for.) WISP_STDIO_INHERIT and
 * WISP_STDIO_FD hand the child a copy (dup) of one of the caller's fds: a
 * socket, for `wisp serve`'s kind of program, or the caller's own stdio.
 *
 * The child's fds travel to its host state as the spawn's "host init"
 * (proc_take_host_init), taken when it starts (host.c). A child that
 * never starts (the runtime ends first) leaves them to the process's exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "common/sha256.h"
#include "proc/caps.h"
#include "wasi_impl.h"
#include "wisp_api.h"
#include "wisp_program.h"

#define NS(name) Z_wisp_programZ_##name
#define SELF struct host_proc *hp = HOST_PROC(self)

/* The most bytes of arguments, and of environment, a program gets. */
#define PROGRAM_MAX_STRINGS (1u << 20)

/* ---- the child's side (host.c, when it starts) ---- */

void program_stdio_close(struct program_stdio *ps)
{
	for (int i = 0; i < 3; i++)
		if (ps->fd[i] >= 0)
			close(ps->fd[i]);
}

/* Add the served directories recorded after ps (len bytes in all) to w. */
static int add_mounts(struct wasi_ctx *w, struct proc *owner, const struct program_stdio *ps,
                      size_t len)
{
	const unsigned char *at = (const unsigned char *)(ps + 1), *end = (const unsigned char *)ps + len;
	for (uint32_t i = 0; i < ps->nmounts; i++) {
		struct program_mount m;
		if ((size_t)(end - at) < sizeof(m))
			return -EINVAL;
		memcpy(&m, at, sizeof(m));
		at += sizeof(m);
		if ((size_t)(end - at) < m.path_len)
			return -EINVAL;
		char *name = strndup((const char *)at, m.path_len);
		at += m.path_len;
		int rc = name == NULL ? -ENOMEM : wasi_served_mount(w, owner, name, m.server);
		free(name);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int program_stdio_adopt(struct host_proc *hp, const struct program_stdio *ps, size_t len,
                        char *err, size_t errlen)
{
	int rc = wasi_ctx_new(hp->caps, ps->fd, &hp->wasi, err, errlen);
	if (rc != 0)
		return rc;
	if ((rc = add_mounts(hp->wasi, hp->proc, ps, len)) != 0) {
		/* (The stdio slots are borrowed until below: the fds stay the
		 * caller's, as promised.) */
		wasi_ctx_free(hp->wasi);
		hp->wasi = NULL;
		snprintf(err, errlen, "served directories: %s", strerror(-rc));
		return rc;
	}
	if (hp->proc != NULL) {
		hp->wasi->in_flight = &hp->proc->fds_in_flight;
		hp->wasi->proc = hp->proc;
	}
	for (int i = 0; i < 3; i++) {
		struct wasi_fd *f = &hp->wasi->fds[i];
		if (ps->fd[i] < 0 || !f->used || f->host != ps->fd[i])
			continue;
		int fl = fcntl(f->host, F_GETFL);
		f->borrowed = false;   /* the child's own: closed when it ends */
		f->parks = fl >= 0 && (fl & O_NONBLOCK);
		wasi_fd_count_socket(hp->wasi, f);   /* (a connection of wisp serve's) */
	}
	return 0;
}

/* ---- the caller's side ---- */

/* Count the NUL-terminated strings of buf[0, len): -1 if the last is not
 * terminated. */
static int count_strings(const char *buf, uint32_t len)
{
	if (len == 0)
		return 0;
	if (buf[len - 1] != '\0')
		return -1;
	int n = 0;
	for (uint32_t i = 0; i < len; i++)
		n += buf[i] == '\0';
	return n;
}

/* The strings of buf[0, len) (n of them) as a malloc'd array of malloc'd
 * copies, or NULL. */
static char **split_strings(const char *buf, int n)
{
	char **v = calloc((size_t)n + 1, sizeof(*v));
	for (int i = 0; v != NULL && i < n; i++) {
		if ((v[i] = strdup(buf)) == NULL) {
			while (i-- > 0)
				free(v[i]);
			free(v);
			return NULL;
		}
		buf += strlen(buf) + 1;
	}
	return v;
}

static void free_strings(char **v, int n)
{
	for (int i = 0; v != NULL && i < n; i++)
		free(v[i]);
	free(v);
}

/* Replace c's arguments and environment with the spec's. */
static int set_strings(struct caps *c, const char *args, int nargs, const char *env, int nenv)
{
	char **a = split_strings(args, nargs), **e = split_strings(env, nenv);
	if (a == NULL || e == NULL) {
		free_strings(a, nargs);
		free_strings(e, nenv);
		return -ENOMEM;
	}
	free_strings(c->args, c->nargs);
	free_strings(c->env, c->nenv);
	c->args = a;
	c->nargs = nargs;
	c->env = e;
	c->nenv = nenv;
	return 0;
}

struct compile_job {
	struct rt *rt;
	unsigned char hash[RT_HASH_BYTES];
	const void *bytes;
	uint32_t len;
	engine_module *mod;
	int rc;
	char err[512];
};

static void do_compile(void *arg)
{
	struct compile_job *j = arg;
	j->rc = rt_module_load(j->rt, j->hash, j->bytes, j->len, "(the program)", &j->mod, j->err,
	                       sizeof(j->err));
}

/* Whether host fd `fd`, made for a program, lies in the runtime's fd
 * reserve (wasi.c): the child's stdio fds do not pass wasi_fd_insert's
 * check, so a spawn checks them itself, or programs holding copies could
 * take every fd the runtime has. */
static bool in_reserve(struct host_proc *hp, int fd)
{
	const struct wasi_ctx *w = wasi_ctx_of(hp);
	return fd >= 0 && w != NULL && wasi_host_fd_check(w, fd) != 0;
}

/* The child's end of stdio slot i, and the caller's end of a pipe in
 * *mine (else -1): 0, or a WISP code with why written. */
static u32 wire(struct host_proc *hp, int i, uint32_t mode, int *child, int *mine,
                char *why, size_t whylen)
{
	*child = *mine = -1;
	if (mode == WISP_STDIO_NULL || mode == WISP_STDIO_CLOSED)
		return 0;
	if (mode == WISP_STDIO_PIPE) {
		int p[2];
		if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) {
			snprintf(why, whylen, "no pipe for fd %d: %s", i, strerror(errno));
			return errno == ENOMEM ? WISP_ENOMEM : WISP_ELIMIT;
		}
		*child = i == 0 ? p[0] : p[1];
		*mine = i == 0 ? p[1] : p[0];
		if (in_reserve(hp, p[0]) || in_reserve(hp, p[1])) {
			snprintf(why, whylen, "no pipe for fd %d: the host is out of fds", i);
			return WISP_ELIMIT;
		}
		return 0;
	}
	uint32_t fd = mode == WISP_STDIO_INHERIT ? (uint32_t)i : mode & ~WISP_STDIO_FD;
	if (mode != WISP_STDIO_INHERIT && !(mode & WISP_STDIO_FD)) {
		snprintf(why, whylen, "stdio[%d]: %u is no WISP_STDIO_* value", i, mode);
		return WISP_EINVAL;
	}
	uint16_t err;
	struct wasi_fd *f = wasi_fd_lookup(wasi_ctx_of(hp), fd, 0, &err);
	if (f == NULL || f->host < 0 || f->filetype == WASI_FILETYPE_DIRECTORY) {
		if (mode == WISP_STDIO_INHERIT)
			return 0;   /* the caller's own is closed: so is the child's */
		snprintf(why, whylen, "stdio[%d]: fd %u is not an open file, pipe or socket of "
		         "the caller", i, fd);
		return WISP_EINVAL;
	}
	if ((*child = fcntl(f->host, F_DUPFD_CLOEXEC, 0)) < 0) {
		snprintf(why, whylen, "stdio[%d]: cannot copy fd %u: %s", i, fd, strerror(errno));
		return WISP_ELIMIT;
	}
	if (in_reserve(hp, *child)) {
		snprintf(why, whylen, "stdio[%d]: cannot copy fd %u: the host is out of fds", i, fd);
		return WISP_ELIMIT;
	}
	return 0;
}

/* Put the caller's pipe end `host` into its table: its fd number in *out. */
static u32 adopt_end(struct host_proc *hp, int host, int32_t *out)
{
	struct wasi_fd nf = {
		.host = host,
		.filetype = WASI_FILETYPE_UNKNOWN,   /* (a pipe has no WASI type) */
		.rights_base = WASI_RIGHTS_FILE & ~(WASI_RIGHT_FD_SEEK | WASI_RIGHT_FD_TELL),
		.parks = true,
	};
	uint32_t slot;
	if (wasi_fd_insert(wasi_ctx_of(hp), &nf, &slot) != 0)
		return WISP_ELIMIT;
	*out = (int32_t)slot;
	return 0;
}

/* Everything a spawn holds until the child has it. */
struct spawning {
	engine_module *mod;
	struct caps *caps;
	struct program_stdio child;
	int mine[3];
	unsigned char *mounts;   /* the records after `child` (malloc'd) */
	size_t mounts_len;
};

/* The longest guest name of a served directory. */
#define PROGRAM_MAX_MOUNT_NAME 1024u

/* Read spec's mounts into s's records: 0, or a WISP code with why written.
 * A server must be a live process of this runtime (its death later is the
 * child's EIO). */
static u32 read_mounts(struct host_proc *hp, const struct wisp_program_spec *spec,
                       struct spawning *s, char *why, size_t whylen)
{
	if (spec->nmounts == 0)
		return 0;
	if (spec->nmounts > WISP_MAX_MOUNTS) {
		snprintf(why, whylen, "%u mounts: at most %u", spec->nmounts, WISP_MAX_MOUNTS);
		return WISP_EINVAL;
	}
	const unsigned char *raw = api_ptr(hp, spec->mounts,
	                                   spec->nmounts * (uint32_t)sizeof(struct wisp_mount),
	                                   "wisp_program_spawn");
	s->mounts = malloc(spec->nmounts * (sizeof(struct program_mount) + PROGRAM_MAX_MOUNT_NAME));
	if (s->mounts == NULL) {
		snprintf(why, whylen, "out of memory");
		return WISP_ENOMEM;
	}
	for (uint32_t i = 0; i < spec->nmounts; i++) {
		struct wisp_mount wm;
		memcpy(&wm, raw + i * sizeof(wm), sizeof(wm));
		if (wm.path_len == 0 || wm.path_len > PROGRAM_MAX_MOUNT_NAME) {
			snprintf(why, whylen, "mount %u: the directory's name must be 1 to %u bytes, "
			         "not %u (\"/data\", say)", i, PROGRAM_MAX_MOUNT_NAME, wm.path_len);
			return WISP_EINVAL;
		}
		const char *name = api_ptr(hp, wm.path, wm.path_len, "wisp_program_spawn");
		if (memchr(name, '\0', wm.path_len) != NULL) {
			snprintf(why, whylen, "mount %u: the name holds a NUL", i);
			return WISP_EINVAL;
		}
		if (proc_pid_is_remote(wm.server)) {
			snprintf(why, whylen, "mount %.*s: the server must be a process of this runtime",
			         (int)wm.path_len, name);
			return WISP_EINVAL;
		}
		if (!proc_alive(hp->proc->rt, wm.server)) {
			snprintf(why, whylen, "mount %.*s: no process %llu to serve it",
			         (int)wm.path_len, name, (unsigned long long)wm.server);
			return WISP_ENOPROC;
		}
		uint32_t len = (uint32_t)caps_dir_name_len(name, wm.path_len);   /* "/data/": "/data" */
		struct program_mount pm = { .server = wm.server, .path_len = len };
		memcpy(s->mounts + s->mounts_len, &pm, sizeof(pm));
		memcpy(s->mounts + s->mounts_len + sizeof(pm), name, len);
		s->mounts_len += sizeof(pm) + len;
	}
	s->child.nmounts = spec->nmounts;
	return 0;
}

/* The spawn's host init: s->child then the mount records (malloc'd). */
static void *host_init(const struct spawning *s, uint32_t *len)
{
	unsigned char *b = malloc(sizeof(s->child) + s->mounts_len);
	if (b == NULL)
		return NULL;
	memcpy(b, &s->child, sizeof(s->child));
	if (s->mounts_len > 0)
		memcpy(b + sizeof(s->child), s->mounts, s->mounts_len);
	*len = (uint32_t)(sizeof(s->child) + s->mounts_len);
	return b;
}

/* Take back the pipe ends put into the caller's table (closed). */
static void release_ends(struct host_proc *hp, struct spawning *s, struct wisp_program_out *out)
{
	for (int i = 0; i < 3; i++)
		if (out->fds[i] >= 0) {
			wasi_fd_release(&wasi_ctx_of(hp)->fds[out->fds[i]]);
			out->fds[i] = -1;
			s->mine[i] = -1;
		}
}

static void spawning_undo(struct host_proc *hp, struct spawning *s)
{
	program_stdio_close(&s->child);
	for (int i = 0; i < 3; i++)
		if (s->mine[i] >= 0)
			close(s->mine[i]);
	caps_unref(s->caps);
	free(s->mounts);
	if (s->mod != NULL)
		rt_module_put(hp->proc->rt, s->mod);
}

/* The spawn proper, once the module is loaded (s->mod): why is written on
 * failure. */
static u32 start(struct host_proc *hp, const struct wisp_program_spec *spec, struct spawning *s,
                 struct wisp_program_out *out, char *why, size_t whylen)
{
	const char *args = spec->args_len ? api_ptr(hp, spec->args, spec->args_len, "wisp_program_spawn") : "";
	const char *env = spec->env_len ? api_ptr(hp, spec->env, spec->env_len, "wisp_program_spawn") : "";
	int nargs = count_strings(args, spec->args_len), nenv = count_strings(env, spec->env_len);
	if (nargs < 0 || nenv < 0) {
		snprintf(why, whylen, "the %s do not end with a NUL", nargs < 0 ? "arguments" : "environment");
		return WISP_EINVAL;
	}
	struct caps *base = spec->caps == -1 ? hp->proc->caps : host_caps_take(hp, (u32)spec->caps);
	if (base == NULL) {
		snprintf(why, whylen, "caps: %d is no capability set of the caller's", spec->caps);
		return WISP_EINVAL;
	}
	if ((s->caps = caps_derive(base)) == NULL ||
	    set_strings(s->caps, args, nargs, env, nenv) != 0) {
		snprintf(why, whylen, "out of memory");
		return WISP_ENOMEM;
	}
	for (int i = 0; i < 3; i++) {
		u32 rc = wire(hp, i, spec->stdio[i], &s->child.fd[i], &s->mine[i], why, whylen);
		if (rc != 0)
			return rc;
		s->caps->stdio[i] = spec->stdio[i] == WISP_STDIO_NULL ? CAP_STDIO_NULL
		                    : spec->stdio[i] == WISP_STDIO_CLOSED ? CAP_STDIO_CLOSED
		                    : CAP_STDIO_INHERIT;
	}
	u32 mrc = read_mounts(hp, spec, s, why, whylen);
	if (mrc != 0)
		return mrc;
	if (caps_finish(s->caps) != 0 || in_reserve(hp, s->caps->null_fd)) {
		snprintf(why, whylen, "no /dev/null: the host is out of fds");
		return WISP_ELIMIT;
	}
	s->caps->frozen = true;
	for (int i = 0; i < 3; i++)
		if (s->mine[i] >= 0 && adopt_end(hp, s->mine[i], &out->fds[i]) != 0) {
			release_ends(hp, s, out);
			snprintf(why, whylen, "no fd left for the pipe of fd %d", i);
			return WISP_ELIMIT;
		}
	struct wisp_spawned sp = { 0, 0 };
	uint32_t init_len;
	void *init = host_init(s, &init_len);
	int rc = init == NULL ? -ENOMEM
	         : proc_spawn_program(hp->proc, s->mod, init, init_len, spec->flags, s->caps, &sp);
	free(init);
	if (rc != 0) {
		release_ends(hp, s, out);
		snprintf(why, whylen, "%s", rc == -EPERM ? "no spawn capability"
		                            : rc == -EAGAIN ? "a process limit was reached"
		                            : rc == -EINVAL ? "bad flags" : "out of memory");
		return wisp_code(rc);
	}
	for (int i = 0; i < 3; i++)
		s->child.fd[i] = s->mine[i] = -1;   /* (the child's, and the caller's table's) */
	out->pid = sp.pid;
	out->monitor = sp.monitor;
	return WISP_OK;
}

/* The module of spec, held in s->mod: from the table (spawned before: no
 * thread needed), or compiled on a blocking thread while the caller parks. */
static u32 load(struct host_proc *hp, const struct wisp_program_spec *spec, struct spawning *s,
                char *why, size_t whylen)
{
	api_work(hp, spec->module_len);
	struct compile_job j = { .rt = hp->proc->rt, .len = spec->module_len };
	void *copy = malloc(spec->module_len);
	if (copy == NULL) {
		snprintf(why, whylen, "out of memory");
		return WISP_ENOMEM;
	}
	memcpy(copy, api_ptr(hp, spec->module, spec->module_len, "wisp_program_spawn"),
	       spec->module_len);
	j.bytes = copy;
	/* The module's name is its SHA-256; the caller's last program is
	 * remembered by a quicker hash of its bytes (a guest that fooled it
	 * would only get a module it gave before). */
	struct wasi_ctx *w = wasi_ctx_of(hp);
	XXH128_hash_t quick = XXH3_128bits(copy, spec->module_len);
	if (w != NULL && w->last_program_len == spec->module_len &&
	    XXH128_isEqual(quick, w->last_program_quick)) {
		memcpy(j.hash, w->last_program, RT_HASH_BYTES);
	} else {
		util_sha256(copy, spec->module_len, j.hash);
		if (w != NULL) {
			w->last_program_len = spec->module_len;
			w->last_program_quick = quick;
			memcpy(w->last_program, j.hash, RT_HASH_BYTES);
		}
	}
	u32 rc = WISP_OK;
	if ((j.mod = rt_module_find(j.rt, j.hash)) == NULL) {
		if (proc_run_blocking(hp->proc, do_compile, &j) != 0) {
			snprintf(why, whylen, "no thread to compile the program");
			rc = WISP_ELIMIT;
		} else if (j.rc != 0) {
			snprintf(why, whylen, "%s", j.err);
			rc = j.rc == -ENOMEM ? WISP_ENOMEM : WISP_EINVAL;
		}
	}
	free(copy);
	if (rc == WISP_OK) {
		s->mod = j.mod;
		if (!engine_module_has_start(j.mod)) {
			snprintf(why, whylen, "the module is no command: it exports no _start");
			rc = WISP_EINVAL;
		}
	}
	return rc;
}

/* Trap (as api_ptr does) if any memory spec names lies outside the
 * caller's: before the spawn takes anything (a module reference, a copy
 * of the module, pipes, a capability set), which a trap midway would
 * leave behind. Lengths over their limits are the spawn's errors, not
 * checked here. */
static void check_spec(struct host_proc *hp, const struct wisp_program_spec *spec)
{
	static const char call[] = "wisp_program_spawn";
	if (spec->module_len <= RT_CODE_MAX_BYTES)
		api_ptr(hp, spec->module, spec->module_len, call);
	if (spec->args_len > 0 && spec->args_len <= PROGRAM_MAX_STRINGS)
		api_ptr(hp, spec->args, spec->args_len, call);
	if (spec->env_len > 0 && spec->env_len <= PROGRAM_MAX_STRINGS)
		api_ptr(hp, spec->env, spec->env_len, call);
	if (spec->nmounts == 0 || spec->nmounts > WISP_MAX_MOUNTS)
		return;
	const unsigned char *raw = api_ptr(hp, spec->mounts,
	                                   spec->nmounts * (uint64_t)sizeof(struct wisp_mount), call);
	for (uint32_t i = 0; i < spec->nmounts; i++) {
		struct wisp_mount wm;
		memcpy(&wm, raw + i * sizeof(wm), sizeof(wm));
		if (wm.path_len <= PROGRAM_MAX_MOUNT_NAME)
			api_ptr(hp, wm.path, wm.path_len, call);
	}
}

u32 NS(spawn)(void *self, u32 spec_p, u32 out_p, u32 why_p, u32 why_cap)
{
	SELF;
	struct wisp_program_spec spec;
	memcpy(&spec, api_ptr(hp, spec_p, sizeof(spec), "wisp_program_spawn"), sizeof(spec));
	api_ptr(hp, out_p, sizeof(struct wisp_program_out), "wisp_program_spawn");
	if (why_cap > 0)
		api_ptr(hp, why_p, why_cap, "wisp_program_spawn");
	check_spec(hp, &spec);
	char why[600] = "";
	u32 rc = WISP_OK;
	if (!hp->proc->caps->may_spawn) {
		caps_log_denied(hp->proc->caps, proc_pid(hp->proc), "wisp_program_spawn: no spawn "
		                "capability");
		snprintf(why, sizeof(why), "no spawn capability");
		rc = WISP_EPERM;
	} else if (spec.module_len == 0 || spec.module_len > RT_CODE_MAX_BYTES ||
	           spec.args_len > PROGRAM_MAX_STRINGS || spec.env_len > PROGRAM_MAX_STRINGS) {
		snprintf(why, sizeof(why), spec.module_len == 0 ? "no module bytes"
		                           : "the module, arguments or environment are too big");
		rc = spec.module_len == 0 ? WISP_EINVAL : WISP_ETOOBIG;
	}
	struct spawning s = { .child = { { -1, -1, -1 } }, .mine = { -1, -1, -1 } };
	if (rc == WISP_OK)
		rc = load(hp, &spec, &s, why, sizeof(why));
	struct wisp_program_out out = { 0, 0, { -1, -1, -1 }, 0 };
	if (rc == WISP_OK)
		rc = start(hp, &spec, &s, &out, why, sizeof(why));
	spawning_undo(hp, &s);
	if (rc == WISP_OK)
		memcpy(api_ptr(hp, out_p, sizeof(out), "wisp_program_spawn"), &out, sizeof(out));
	else if (why_cap > 0)
		snprintf(api_ptr(hp, why_p, why_cap, "wisp_program_spawn"), why_cap, "%s", why);
	return rc;
}
