/*
 * control.c — a running wisp's control socket, and how commands from
 * another terminal find it (wisp reload here; ps, inspect, kill and trace
 * in observe.c and ps.c).
 *
 * Where. Every `wisp run` listens on a Unix socket in the user's runtime
 * directory: $XDG_RUNTIME_DIR/wisp, else /tmp/wisp-UID; the directory is
 * made 0700 and refused if it is not the user's own with no access for
 * others (a directory someone else made could hold their socket under our
 * name). The socket is "PID.sock", 0600; a node's also answers to
 * "NAME.sock" (a symbolic link). Both go when the run ends. A connection
 * from another user is refused as well (SO_PEERCRED), whatever the
 * permissions say.
 *
 * What. One request per connection, a line (and, for a reload, its
 * bytes); anything else gets "error TEXT":
 *   "reload LEN[ purge][ push]\n" + LEN bytes
 *       -> "ok VSN[ (purged N processes ...)][ (pushed ...)]\n" | "error TEXT\n"
 *   "stats" -> "ok LEN\n" + LEN bytes: the run's figures in Prometheus's
 *       text format (metrics.c), which `wisp stats` reads and summarises
 *   "ps ...", "inspect PID", "kill PID[ REASON]", "trace PID": observe.c
 *
 * Who serves. The socket's thread accepts; each connection is served on
 * a thread of its own, at most CONTROL_CLIENTS at once (one more is told
 * "error busy" and closed), so a trace that lasts, or a listing of a
 * million processes, does not hold up a reload or another listing.
 * The process out of fds for a while (its guests' sockets, connections
 * held open) only delays accepting: the socket's thread tries again
 * CONTROL_RETRY_MS later, and never ends before the run does.
 * Reloads run one at a time (a reload compiles: a second waits). Reading
 * a request has one deadline, CONTROL_IO_TIMEOUT_S for the whole of it
 * (not per read: a client sending a byte now and then would hold its
 * thread, and the end of the run, which waits for every thread, for
 * ever); observe.c bounds the writing of its replies. The end of the run
 * shuts every connection down (their waits return at once) and joins
 * their threads, before the runtime stops.
 *
 * The clients are for people who mistype: `wisp reload` reads the
 * module before it looks for a run; every command counts as a run only a
 * socket that accepts a connection (a killed run's socket stays, and its
 * pid may be someone else's), and when it cannot tell which run is meant
 * it lists them, with their command lines, rather than only their pids.
 */
#include "control.h"

#include "common/sha256.h"
#include "dist/dist.h"
#include "metrics.h"
#include "observe.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CONTROL_IO_TIMEOUT_S 30
#define CONTROL_CLIENTS 16        /* connections served at once */
#define CONTROL_LINE_MAX 512      /* a request line (kill's reason: 255 bytes) */
#define CONTROL_GRACE_MS 1000     /* requests' time to end when the run ends */
#define CONTROL_RETRY_MS 100      /* out of fds: accept again this much later */

/* A connection being served: its thread owns fd until it is DONE; the
 * accepting thread (or the end of the run) joins it and closes fd then,
 * so a shutdown() of fd never hits a number reused meanwhile. */
enum slot_state { SLOT_FREE, SLOT_BUSY, SLOT_DONE };
struct client {
	struct control *c;
	int fd;
	pthread_t thread;
	enum slot_state state;        /* under control.lock */
};

struct control {
	struct proc_control hooks;
	struct rt *rt;
	struct dist *dist;            /* the run's node, or NULL */
	struct metrics *metrics;      /* the run's figures, or NULL */
	char node[256];               /* "" if the run is no node */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char alias[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int fd;
	pthread_t thread;
	bool running;
	atomic_bool stopping;         /* the run ends: every wait returns */
	pthread_mutex_t lock;         /* the slots' states */
	pthread_mutex_t reload_lock;  /* one reload at a time */
	struct client clients[CONTROL_CLIENTS];
};

/* The runtime directory (made if missing), or -1 with a message. */
static int control_dir(char *out, size_t cap, char *err, size_t errlen)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	if (xdg != NULL && xdg[0] == '/')
		snprintf(out, cap, "%s/wisp", xdg);
	else
		snprintf(out, cap, "/tmp/wisp-%u", (unsigned)getuid());
	if (mkdir(out, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot make %s: %s", out, strerror(errno));
		return -1;
	}
	struct stat st;
	if (lstat(out, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid() ||
	    (st.st_mode & 077) != 0) {
		snprintf(err, errlen, "%s is not a directory of this user's alone (mode 0700): "
		         "no control socket", out);
		return -1;
	}
	return 0;
}

static bool same_user(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.uid == getuid();
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Up to len bytes into buf once fd is readable, before deadline (ms,
 * now_ms's clock; 0: none, for the client): what read returns, or -1
 * when the deadline passed. */
static ssize_t read_by(int fd, void *buf, size_t len, uint64_t deadline)
{
	for (struct pollfd p = { .fd = fd, .events = POLLIN }; deadline != 0;) {
		uint64_t now = now_ms();
		int rc = now < deadline ? poll(&p, 1, (int)(deadline - now)) : 0;
		if (rc > 0)
			break;
		if (rc == 0 || errno != EINTR)
			return -1;
	}
	return read(fd, buf, len);
}

static bool read_all(int fd, void *buf, size_t len, uint64_t deadline)
{
	for (size_t got = 0; got < len;) {
		ssize_t r = read_by(fd, (char *)buf + got, len - got, deadline);
		if (r <= 0)
			return false;
		got += (size_t)r;
	}
	return true;
}

static void write_bytes(int fd, const void *p, size_t len)
{
	for (size_t off = 0; off < len;) {
		ssize_t w = write(fd, (const char *)p + off, len - off);
		if (w <= 0)
			return;
		off += (size_t)w;
	}
}

static void write_all(int fd, const char *s)
{
	write_bytes(fd, s, strlen(s));
}

/* The request line (up to '\n'), or false (also for a NUL byte in it).
 * deadline: read_by's. */
static bool read_line(int fd, char *line, size_t cap, uint64_t deadline)
{
	for (size_t n = 0; n + 1 < cap; n++) {
		if (read_by(fd, line + n, 1, deadline) != 1 || line[n] == '\0')
			return false;   /* (a NUL would cut the line short unseen) */
		if (line[n] == '\n') {
			line[n] = '\0';
			return true;
		}
	}
	return false;
}

static void serve_reload(struct control *c, int fd, unsigned long long len, bool purge,
                         bool push, uint64_t deadline)
{
	char reply[700];
	void *bytes = len > 0 && len <= RT_CODE_MAX_BYTES ? malloc(len) : NULL;
	if (bytes == NULL) {
		snprintf(reply, sizeof(reply), "error %s\n", len > RT_CODE_MAX_BYTES
		         ? "the module is too large" : "out of memory");
		write_all(fd, reply);
		return;
	}
	if (!read_all(fd, bytes, len, deadline)) {
		free(bytes);
		return;   /* (the client went away, or took too long) */
	}
	char err[600] = "";
	uint32_t vsn = 0;
	/* (The version it replaces, for --push: peers must run that one.) */
	unsigned char old[RT_HASH_BYTES], hash[RT_HASH_BYTES];
	rt_code_current_hash(c->rt, old);
	int rc = rt_code_load(c->rt, bytes, len, purge, &vsn, err, sizeof(err));
	util_sha256(bytes, len, hash);
	free(bytes);
	int pushed = -1;
	if (rc == 0 && push && c->dist != NULL)
		pushed = dist_push_code(c->dist, old, hash);
	/* (On success err is "" or what --purge did.) */
	char purged[sizeof(err) + 4] = "";
	if (rc == 0 && err[0] != '\0')
		snprintf(purged, sizeof(purged), " (%s)", err);
	if (rc == 0 && push && pushed < 0)
		snprintf(reply, sizeof(reply), "ok %u%s (not pushed: %s)\n", vsn, purged,
		         c->dist == NULL ? "this run is no node" : "nothing to push");
	else if (rc == 0 && push)
		snprintf(reply, sizeof(reply), "ok %u%s (pushed to %d node%s)\n", vsn, purged, pushed,
		         pushed == 1 ? "" : "s");
	else if (rc == 0)
		snprintf(reply, sizeof(reply), "ok %u%s\n", vsn, purged);
	else
		snprintf(reply, sizeof(reply), "error %s\n", err);
	for (char *p = reply; *p && p[1]; p++)   /* one line */
		if (*p == '\n')
			*p = ' ';
	write_all(fd, reply);
}

/* "reload LEN[ purge][ push]" (each flag at most once, in that order):
 * its length and flags, or false. LEN over what fits is ULLONG_MAX. */
static bool parse_reload(const char *line, unsigned long long *len, bool *purge, bool *push)
{
	if (strncmp(line, "reload ", 7) != 0 || line[7] < '0' || line[7] > '9')
		return false;
	char *end;
	*len = strtoull(line + 7, &end, 10);
	*purge = strncmp(end, " purge", 6) == 0;
	end += *purge ? 6 : 0;
	*push = strncmp(end, " push", 5) == 0;
	end += *push ? 5 : 0;
	return *len > 0 && *end == '\0';
}

/* "stats": the run's figures (metrics_text), as "ok LEN\n" and the text. */
static void serve_stats(struct control *c, int fd)
{
	size_t len;
	char *text = metrics_text(c->metrics, &len);
	if (text == NULL) {
		write_all(fd, "error no figures (out of memory, or the run is ending)\n");
		return;
	}
	char head[32];
	snprintf(head, sizeof(head), "ok %zu\n", len);
	write_all(fd, head);
	write_bytes(fd, text, len);
	free(text);
}

static void serve(struct control *c, int fd)
{
	uint64_t deadline = now_ms() + CONTROL_IO_TIMEOUT_S * 1000;
	struct timeval tv = { CONTROL_IO_TIMEOUT_S, 0 };
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	char line[CONTROL_LINE_MAX];
	if (!read_line(fd, line, sizeof(line), deadline)) {
		write_all(fd, "error a request is one line\n");
		return;
	}
	unsigned long long len;
	bool purge, push;
	if (parse_reload(line, &len, &purge, &push)) {
		pthread_mutex_lock(&c->reload_lock);
		serve_reload(c, fd, len, purge, push, deadline);
		pthread_mutex_unlock(&c->reload_lock);
	} else if (strcmp(line, "stats") == 0) {
		serve_stats(c, fd);
	} else if (!observe_serve(c->rt, fd, line, &c->stopping)) {
		write_all(fd, "error unknown request\n");
	}
}

static void *client_main(void *arg)
{
	struct client *cl = arg;
	serve(cl->c, cl->fd);
	shutdown(cl->fd, SHUT_RDWR);   /* (the reader sees the end now) */
	pthread_mutex_lock(&cl->c->lock);
	cl->state = SLOT_DONE;
	pthread_mutex_unlock(&cl->c->lock);
	return NULL;
}

/* Join a DONE slot's thread and close its fd (not under the lock). */
static void reap(struct client *cl)
{
	pthread_join(cl->thread, NULL);
	close(cl->fd);
	cl->fd = -1;
}

/* A free slot for a new connection (finished ones reaped on the way), or
 * NULL if CONTROL_CLIENTS are being served. */
static struct client *free_slot(struct control *c)
{
	struct client *found = NULL;
	for (int i = 0; i < CONTROL_CLIENTS; i++) {
		struct client *cl = &c->clients[i];
		pthread_mutex_lock(&c->lock);
		enum slot_state st = cl->state;
		pthread_mutex_unlock(&c->lock);
		if (st == SLOT_DONE) {
			reap(cl);
			st = cl->state = SLOT_FREE;
		}
		if (st == SLOT_FREE && found == NULL)
			found = cl;
	}
	return found;
}

/* Whether accept's error is one that passes: the connection was given up,
 * or the process is out of fds or memory for a moment (the connection
 * waits in the backlog until requests being served free some). */
static bool accept_error_passes(int err)
{
	return err == EINTR || err == ECONNABORTED || err == EMFILE || err == ENFILE ||
	       err == ENOBUFS || err == ENOMEM;
}

static void *control_main(void *arg)
{
	struct control *c = arg;
	for (;;) {
		int fd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (atomic_load(&c->stopping) || !accept_error_passes(errno))
				return NULL;   /* (shut down: control_detach) */
			if (errno != EINTR && errno != ECONNABORTED) {
				free_slot(c);   /* (the fds of requests served go) */
				poll(NULL, 0, CONTROL_RETRY_MS);
			}
			continue;
		}
		if (!same_user(fd)) {
			write_all(fd, "error not this node's user\n");
			close(fd);
			continue;
		}
		/* (A client's probe that a run listens, connected and closed at
		 * once, holds a slot for a moment: wait a little for one.) */
		struct client *cl = free_slot(c);
		for (int i = 0; cl == NULL && i < 10; i++) {
			poll(NULL, 0, 10);
			cl = free_slot(c);
		}
		if (cl == NULL) {
			char busy[128];
			snprintf(busy, sizeof(busy), "error busy: %d requests are being served (traces, "
			         "listings): try again\n", CONTROL_CLIENTS);
			write_all(fd, busy);
			close(fd);
			continue;
		}
		cl->c = c;
		cl->fd = fd;
		pthread_mutex_lock(&c->lock);
		cl->state = SLOT_BUSY;
		pthread_mutex_unlock(&c->lock);
		if (pthread_create(&cl->thread, NULL, client_main, cl) != 0) {
			write_all(fd, "error cannot start a thread for the request\n");
			close(fd);
			pthread_mutex_lock(&c->lock);
			cl->state = SLOT_FREE;
			pthread_mutex_unlock(&c->lock);
		}
	}
}

static int control_attach(void *ctx, struct rt *rt, char *err, size_t errlen)
{
	struct control *c = ctx;
	char dir[PATH_MAX - 64];
	c->rt = rt;
	if (control_dir(dir, sizeof(dir), err, errlen) != 0) {
		fprintf(stderr, "wisp: %s\n", err);   /* (the run goes on without) */
		return 0;
	}
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int n = snprintf(c->path, sizeof(c->path), "%s/%d.sock", dir, (int)getpid());
	if (n < 0 || (size_t)n >= sizeof(c->path)) {
		fprintf(stderr, "wisp: the runtime directory's path is too long: no control socket\n");
		c->path[0] = '\0';
		return 0;
	}
	memcpy(a.sun_path, c->path, (size_t)n + 1);
	unlink(c->path);   /* (a pid's socket left by a run that was killed) */
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	mode_t old = umask(0177);
	bool ok = c->fd >= 0 && bind(c->fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	umask(old);
	if (!ok || chmod(c->path, 0600) != 0 || listen(c->fd, 8) != 0 ||
	    pthread_create(&c->thread, NULL, control_main, c) != 0) {
		fprintf(stderr, "wisp: no control socket at %s: %s\n", c->path, strerror(errno));
		if (c->fd >= 0)
			close(c->fd);
		c->fd = -1;
		unlink(c->path);
		c->path[0] = '\0';
		return 0;
	}
	c->running = true;
	if (c->node[0] != '\0') {
		n = snprintf(c->alias, sizeof(c->alias), "%s/%s.sock", dir, c->node);
		unlink(c->alias);
		if (n < 0 || (size_t)n >= sizeof(c->alias) || symlink(c->path, c->alias) != 0)
			c->alias[0] = '\0';
	}
	return 0;
}

/* Connections still being served. */
static int busy_clients(struct control *c)
{
	int n = 0;
	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < CONTROL_CLIENTS; i++)
		n += c->clients[i].state == SLOT_BUSY;
	pthread_mutex_unlock(&c->lock);
	return n;
}

static void control_detach(void *ctx)
{
	struct control *c = ctx;
	if (!c->running)
		return;
	atomic_store(&c->stopping, true);
	shutdown(c->fd, SHUT_RDWR);   /* (accept returns: the thread ends) */
	pthread_join(c->thread, NULL);
	/* Requests see `stopping` and end (a listing is cut, a trace says
	 * the node stops, a kill that ended the run still says "ok"): give
	 * them a moment, then cut every connection still open. */
	for (int round = 0; round < CONTROL_GRACE_MS / 10 && busy_clients(c) > 0; round++)
		poll(NULL, 0, 10);
	for (int i = 0; i < CONTROL_CLIENTS; i++) {
		struct client *cl = &c->clients[i];
		pthread_mutex_lock(&c->lock);
		enum slot_state st = cl->state;
		pthread_mutex_unlock(&c->lock);
		if (st == SLOT_FREE)
			continue;
		shutdown(cl->fd, SHUT_RDWR);
		reap(cl);
		cl->state = SLOT_FREE;
	}
	close(c->fd);
	c->fd = -1;
	c->running = false;
	unlink(c->path);
	if (c->alias[0] != '\0')
		unlink(c->alias);
}

struct control *control_new(const char *node_name, struct dist *dist)
{
	struct control *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->fd = -1;
	c->dist = dist;
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->reload_lock, NULL);
	for (int i = 0; i < CONTROL_CLIENTS; i++)
		c->clients[i].fd = -1;
	if (node_name != NULL)
		snprintf(c->node, sizeof(c->node), "%s", node_name);
	/* (No '/' may reach a file name.) */
	for (char *p = c->node; *p; p++)
		if (*p == '/')
			*p = '_';
	c->hooks = (struct proc_control){ control_attach, control_detach, c };
	return c;
}

void control_set_metrics(struct control *c, struct metrics *m)
{
	if (c != NULL)
		c->metrics = m;
}

const struct proc_control *control_hooks(struct control *c)
{
	return c != NULL ? &c->hooks : NULL;
}

void control_free(struct control *c)
{
	if (c == NULL)
		return;
	control_detach(c);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->reload_lock);
	free(c);
}

/* ---- the client side ---- */

#define RELOAD_EXIT_FAIL 1
#define RELOAD_EXIT_USAGE 2
#define RUNS_MAX 64        /* runs listed in a message (more are counted) */
#define RUN_LINE_MAX 400   /* a run's command line, as listed */

static const char reload_usage[] =
	"usage: wisp reload [--pid PID | --node NAME] [--purge] [--push] MODULE.wasm\n";

static const char reload_help[] =
	"usage: wisp reload [--pid PID | --node NAME] [--purge] [--push] MODULE.wasm\n"
	"\n"
	"Load MODULE.wasm into a running 'wisp run' (of this user) as the next\n"
	"version of its module. It becomes current: processes spawned from now on\n"
	"run it, and each running process moves onto it when it asks (a server:\n"
	"between two messages). The module must export wisp_code_change (C:\n"
	"sdk/c/README.md; Rust: wisp::upgradable!); one that is refused changes\n"
	"nothing. wisp reload returns once the version is current: a process\n"
	"that then refuses to move says so itself.\n"
	"\n"
	"  --pid PID     the run whose process id is PID (needed when several run)\n"
	"  --node NAME   the run started with --sname NAME or --name NAME\n"
	"  --purge       kill the processes still on the version before the current\n"
	"                one (two versions at most, as in Erlang: without --purge\n"
	"                such a load is refused), so their supervisors restart them\n"
	"  --push        also load it on the nodes the run is connected to that\n"
	"                allow it (--allow-code-push)\n"
	"\n"
	"exit status: 0 loaded; 1 refused, or no such run; 2 usage error.\n";

/* A usage error: what was wrong, then the usage. */
__attribute__((format(printf, 1, 2)))
static int reload_usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("wisp reload: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n%s('wisp reload --help' says more)\n", reload_usage);
	return RELOAD_EXIT_USAGE;
}

/* The live runs in the runtime directory. */
struct run {
	long pid;
	char node[256];   /* "" unless a node's NAME.sock links to it */
};
struct runs {
	char dir[PATH_MAX - 64];
	struct run run[RUNS_MAX];
	int n;            /* listed in run[] */
	int more;         /* found past RUNS_MAX */
};

/* Whether a run listens on the socket at path: a socket left by a run
 * that was killed refuses (its pid may be another process's by now). A
 * busy one (its backlog full) counts as listening. */
static bool listening(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(a.sun_path))
		return false;
	memcpy(a.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return true;   /* (cannot tell: let the real request say) */
	bool yes = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 || errno == EAGAIN;
	close(fd);
	return yes;
}

/* "PID.sock" -> PID, or 0. */
static long sock_pid(const char *name)
{
	char *end;
	long pid = strtol(name, &end, 10);
	return end != name && name[0] != '-' && strcmp(end, ".sock") == 0 ? pid : 0;
}

/* The runs of this user (their sockets in dir), with the names of the
 * nodes among them. Sockets of runs that were killed whose pid is gone,
 * and node names linking to no socket, are removed on the way; a socket
 * nobody listens on is left (a run may be between bind and listen) but
 * not listed. False with a message if the directory cannot be read. */
static bool find_runs(const char *cmd, struct runs *rs)
{
	char err[PATH_MAX + 100];
	rs->n = rs->more = 0;
	if (control_dir(rs->dir, sizeof(rs->dir), err, sizeof(err)) != 0) {
		fprintf(stderr, "wisp %s: %s\n", cmd, err);
		return false;
	}
	DIR *d = opendir(rs->dir);
	if (d == NULL) {
		fprintf(stderr, "wisp %s: cannot read %s: %s\n", cmd, rs->dir, strerror(errno));
		return false;
	}
	char p[PATH_MAX];
	struct stat st;
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		long pid = sock_pid(e->d_name);
		snprintf(p, sizeof(p), "%s/%s", rs->dir, e->d_name);
		if (pid <= 0 || lstat(p, &st) != 0 || S_ISLNK(st.st_mode))
			continue;
		if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
			unlink(p);   /* a killed run's */
			continue;
		}
		if (!listening(p))
			continue;
		if (rs->n == RUNS_MAX) {
			rs->more++;
			continue;
		}
		rs->run[rs->n++] = (struct run){ .pid = pid };
	}
	rewinddir(d);
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		size_t n = strlen(e->d_name);
		char to[PATH_MAX];
		snprintf(p, sizeof(p), "%s/%s", rs->dir, e->d_name);
		if (n <= 5 || strcmp(e->d_name + n - 5, ".sock") != 0 || lstat(p, &st) != 0 ||
		    !S_ISLNK(st.st_mode))
			continue;
		if (stat(p, &st) != 0 && errno == ENOENT) {
			unlink(p);   /* a killed node's name */
			continue;
		}
		ssize_t len = readlink(p, to, sizeof(to) - 1);
		if (len <= 0)
			continue;
		to[len] = '\0';
		const char *base = strrchr(to, '/') ? strrchr(to, '/') + 1 : to;
		long pid = sock_pid(base);
		for (int i = 0; i < rs->n; i++)
			if (rs->run[i].pid == pid && n - 5 < sizeof(rs->run[i].node))
				snprintf(rs->run[i].node, sizeof(rs->run[i].node), "%.*s", (int)(n - 5),
				         e->d_name);
	}
	closedir(d);
	return true;
}

/* What a run runs: its command line (from /proc), cut to fit. */
static void run_command(long pid, char *out, size_t cap)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
	out[0] = '\0';
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return;
	size_t n = fread(out, 1, cap - 1, f);
	fclose(f);
	out[n] = '\0';
	for (size_t i = 0; n > 0 && i < n - 1; i++)
		if (out[i] == '\0')
			out[i] = ' ';
	if (n == cap - 1 && cap > 4)
		memcpy(out + cap - 4, "...", 4);
}

/* The runs, one a line, on stderr: pid, node, command line, directory. */
static void list_runs(const struct runs *rs)
{
	for (int i = 0; i < rs->n; i++) {
		char cmd[RUN_LINE_MAX], cwd[PATH_MAX] = "", link[64];
		run_command(rs->run[i].pid, cmd, sizeof(cmd));
		snprintf(link, sizeof(link), "/proc/%ld/cwd", rs->run[i].pid);
		ssize_t len = readlink(link, cwd, sizeof(cwd) - 1);
		cwd[len > 0 ? len : 0] = '\0';
		fprintf(stderr, "  --pid %-7ld %s%s%s%s%s%s\n", rs->run[i].pid,
		        rs->run[i].node[0] ? "(--node " : "", rs->run[i].node,
		        rs->run[i].node[0] ? ") " : "", cmd, cwd[0] ? "   in " : "", cwd);
	}
	if (rs->more > 0)
		fprintf(stderr, "  (and %d more)\n", rs->more);
}

/* Why no run was found, on stderr: what runs instead. */
static void no_such_run(const char *cmd, const struct runs *rs)
{
	if (rs->n == 0) {
		fprintf(stderr, "wisp %s: no wisp is running (no control socket in %s; a run is "
		        "found by the same user, with the same XDG_RUNTIME_DIR)\n", cmd, rs->dir);
		return;
	}
	fprintf(stderr, "wisp %s: running now:\n", cmd);
	list_runs(rs);
}

/* The run a node name names: its index in rs, or -1 (-2: several, with
 * a message). NAME@HOST:PORT, as given to --name, is NAME@HOST; a name
 * without '@' also finds NAME@HOST, as --sname NAME makes it, when one
 * host has it. */
static int find_node(const char *cmd, const struct runs *rs, const char *name)
{
	int at = -1, found = 0;
	size_t n = strlen(name);
	const char *port = strchr(name, '@') ? strchr(strchr(name, '@'), ':') : NULL;
	size_t plain = port != NULL ? (size_t)(port - name) : n;
	for (int i = 0; i < rs->n; i++)
		if (strncmp(rs->run[i].node, name, plain) == 0 && rs->run[i].node[plain] == '\0')
			return i;
	for (int i = 0; strchr(name, '@') == NULL && i < rs->n; i++)
		if (strncmp(rs->run[i].node, name, n) == 0 && rs->run[i].node[n] == '@') {
			at = i;
			found++;
		}
	if (found > 1) {
		fprintf(stderr, "wisp %s: %d nodes are named %s@...: say which with --node "
		        "NAME@HOST\n", cmd, found, name);
		list_runs(rs);
		return -2;
	}
	return at;
}

bool control_find(const char *cmd, const char *pid, const char *node, char *path, size_t cap)
{
	struct runs *rs = malloc(sizeof(*rs));
	if (rs == NULL || !find_runs(cmd, rs)) {
		if (rs == NULL)
			fprintf(stderr, "wisp %s: out of memory\n", cmd);
		free(rs);
		return false;
	}
	int at = -1;
	if (node != NULL) {
		at = find_node(cmd, rs, node);
		if (at == -1)
			fprintf(stderr, "wisp %s: no wisp node is named %s\n", cmd, node);
	} else if (pid != NULL) {
		for (int i = 0; i < rs->n; i++)
			if (rs->run[i].pid == strtol(pid, NULL, 10))
				at = i;
		if (at < 0)
			fprintf(stderr, "wisp %s: no wisp runs as pid %s (a run's pid, as ps or "
			        "$! gives it)\n", cmd, pid);
	} else if (rs->n == 1) {
		at = 0;
	} else if (rs->n > 1 || rs->more > 0) {
		fprintf(stderr, "wisp %s: %d wisps are running: say which with --pid PID (or "
		        "--node NAME)\n", cmd, rs->n + rs->more);
		list_runs(rs);
		at = -2;
	}
	if (at == -1)
		no_such_run(cmd, rs);
	if (at >= 0)
		snprintf(path, cap, "%s/%ld.sock", rs->dir, rs->run[at].pid);
	free(rs);
	return at >= 0;
}

int control_connect(const char *cmd, const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (strlen(path) >= sizeof(a.sun_path) || fd < 0 ||
	    (memcpy(a.sun_path, path, strlen(path) + 1),
	     connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)) {
		fprintf(stderr, "wisp %s: cannot reach the running wisp at %s: %s\n", cmd, path,
		        strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* The whole file, or NULL with a message (a directory, an empty file and
 * one over the most a version may be are refused here). */
static void *read_file(const char *file, size_t *len)
{
	FILE *f = fopen(file, "rb");
	struct stat st;
	if (f == NULL || fstat(fileno(f), &st) != 0 || S_ISDIR(st.st_mode)) {
		if (f != NULL && S_ISDIR(st.st_mode))
			fprintf(stderr, "wisp reload: %s is a directory: give the new version's .wasm "
			        "file\n", file);
		else
			fprintf(stderr, "wisp reload: cannot read %s: %s\n", file, strerror(errno));
		if (f != NULL)
			fclose(f);
		return NULL;
	}
	size_t cap = 1 << 16, n = 0;
	unsigned char *b = malloc(cap);
	for (size_t got; b != NULL && (got = fread(b + n, 1, cap - n, f)) > 0;) {
		n += got;
		if (n == cap && n < RT_CODE_MAX_BYTES) {
			unsigned char *nb = realloc(b, cap *= 2);
			if (nb == NULL)
				free(b);
			b = nb;
		} else if (n == cap) {
			break;
		}
	}
	bool failed = ferror(f);
	fclose(f);
	if (b == NULL || failed || n == 0 || n >= RT_CODE_MAX_BYTES) {
		if (b == NULL || failed)
			fprintf(stderr, "wisp reload: cannot read %s: %s\n", file,
			        b == NULL ? "out of memory" : "read error");
		else if (n == 0)
			fprintf(stderr, "wisp reload: %s is empty: not a module (did its build "
			        "fail?)\n", file);
		else
			fprintf(stderr, "wisp reload: %s is over %u MiB, the most a version may be\n",
			        file, RT_CODE_MAX_BYTES >> 20);
		free(b);
		return NULL;
	}
	*len = n;
	return b;
}

/* Send the request; the running wisp's answer line into reply. False
 * with a message if it cannot be reached or says nothing. */
static bool ask(const char *path, const void *bytes, size_t len, bool purge, bool push,
                char *reply, size_t cap)
{
	int fd = control_connect("reload", path);
	if (fd < 0)
		return false;
	char head[64];
	snprintf(head, sizeof(head), "reload %zu%s%s\n", len, purge ? " purge" : "",
	         push ? " push" : "");
	write_all(fd, head);
	write_bytes(fd, bytes, len);
	bool got = read_line(fd, reply, cap, 0);
	close(fd);
	if (!got)
		fprintf(stderr, "wisp reload: the running wisp gave no answer (did it end?)\n");
	return got;
}

#define CONTROL_REPLY_MAX (64u << 20)

/* Everything fd sends until it closes (at most CONTROL_REPLY_MAX), or
 * NULL. */
static char *read_to_end(int fd, size_t *len)
{
	size_t cap = 1 << 16, n = 0;
	char *b = malloc(cap + 1);
	while (b != NULL) {
		if (n == cap) {
			char *nb = cap < CONTROL_REPLY_MAX ? realloc(b, 2 * cap + 1) : NULL;
			if (nb == NULL)
				break;
			b = nb;
			cap *= 2;
		}
		ssize_t r = read(fd, b + n, cap - n);
		if (r == 0) {
			b[n] = '\0';
			*len = n;
			return b;
		}
		if (r < 0 && errno != EINTR)
			break;
		n += r > 0 ? (size_t)r : 0;
	}
	free(b);
	return NULL;
}

int control_ask(const char *cmd, const char *pid, const char *node, const char *request,
                char **reply, size_t *len)
{
	char path[PATH_MAX];
	if (!control_find(cmd, pid, node, path, sizeof(path)))
		return -1;
	int fd = control_connect(cmd, path);
	if (fd < 0)
		return -1;
	write_all(fd, request);
	write_all(fd, "\n");
	*reply = read_to_end(fd, len);
	close(fd);
	if (*reply == NULL || *len == 0) {
		fprintf(stderr, "wisp %s: the running wisp gave no answer (did it end?)\n", cmd);
		free(*reply);
		*reply = NULL;
		return -1;
	}
	return 0;
}

bool control_is_pid(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);
	return s[0] >= '0' && s[0] <= '9' && *end == '\0' && v > 0 && v <= INT_MAX;
}

int cli_reload(int argc, char **argv)
{
	const char *pid = NULL, *node = NULL, *file = NULL;
	bool purge = false, push = false;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			fputs(reload_help, stdout);
			return 0;
		} else if (strcmp(a, "--pid") == 0 || strcmp(a, "--node") == 0) {
			if (i + 1 == argc)
				return reload_usage_error("%s needs %s", a, a[2] == 'p'
				                          ? "the process id of a 'wisp run'"
				                          : "the name of a node");
			if (pid != NULL || node != NULL)
				return reload_usage_error("give one of --pid and --node, once");
			*(a[2] == 'p' ? &pid : &node) = argv[++i];
		} else if (strcmp(a, "--purge") == 0) {
			purge = true;
		} else if (strcmp(a, "--push") == 0) {
			push = true;
		} else if (a[0] == '-' && a[1] != '\0') {
			return reload_usage_error("unknown option '%s'", a);
		} else if (file != NULL) {
			return reload_usage_error("one module at a time: '%s' and '%s'", file, a);
		} else {
			file = a;
		}
	}
	if (file == NULL)
		return reload_usage_error("which module? (the new version's .wasm file)");
	if (pid != NULL && !control_is_pid(pid))
		return reload_usage_error("--pid takes the process id of a 'wisp run', not '%s'%s",
		                          pid, strchr(pid, '@') ? " (a node: --node)" : "");
	if (node != NULL && (node[0] == '\0' || node[0] == '.' || strchr(node, '/')))
		return reload_usage_error("'%s' cannot name a node", node);
	size_t len;
	void *bytes = read_file(file, &len);
	char path[PATH_MAX], reply[800];
	bool got = bytes != NULL && control_find("reload", pid, node, path, sizeof(path)) &&
	           ask(path, bytes, len, purge, push, reply, sizeof(reply));
	free(bytes);
	if (!got)
		return RELOAD_EXIT_FAIL;
	char *rest;
	unsigned long vsn = strncmp(reply, "ok ", 3) == 0 ? strtoul(reply + 3, &rest, 10) : 0;
	if (vsn > 0) {
		printf("wisp: %s is version %lu of the running module, now current%s\n", file, vsn,
		       rest);
		return 0;
	}
	fprintf(stderr, "wisp: reload refused: %s\n",
	        strncmp(reply, "error ", 6) == 0 ? reply + 6 : reply);
	return RELOAD_EXIT_FAIL;
}
