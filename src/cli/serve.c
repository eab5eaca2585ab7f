/*
 * serve.c — `wisp serve`: an unmodified WASI program as a network service,
 * one fresh process per TCP connection with its stdin and stdout on the
 * socket (inetd's way), so any command-line program becomes a
 * crash-isolated server.
 *
 * A thread of its own accepts (the runtime has no main process in this
 * mode: rt_config.no_main) and starts the current version of the program
 * for each connection (rt_spawn_program), with the run's capabilities
 * (directories, network, limits) and arguments. The program's fds 0 and 1
 * are the connection (non-blocking on the host: a read or write that
 * would wait parks the process, never a scheduler thread), fd 2 a copy of
 * the run's stderr; they close when the program ends, which ends the
 * connection. A program that traps ends only its own connection (its
 * crash report goes to stderr).
 *
 * Bounds, each a refusal that closes one connection and is said once (a
 * count of each goes to stderr when serving stops):
 *   - --max-connections N bounds the programs (and whatever they spawn)
 *     alive at once: the set they run under counts them, and at the limit
 *     the listener waits (new clients queue in the kernel's backlog)
 *     until one ends.
 *   - The host's fds: the three a connection costs (the socket, its copy
 *     for fd 1, the copy of stderr) are a guest's like any other, so they
 *     must lie below the runtime's reserve (wasi_host_fd_ceiling, the one
 *     definition of it); a connection that would dip into it is closed at
 *     once, so the runtime keeps the fds it needs (compilers, the cache,
 *     epoll) however many clients come.
 *   - --idle-timeout SECS (default 300; 0: none): a connection no data has
 *     crossed in either direction for that long, because its client sends
 *     nothing or reads nothing, has its program killed, which closes it
 *     and frees its slot. The kernel's own per-socket timestamps say how
 *     long (idle.c), read by a sweep of this thread every tenth of the
 *     timeout (at least 100 ms, at most 5 s): nothing per byte. The
 *     default bounds what a silent or stalled client can hold without a
 *     flag (an inetd-style server without one is a slot leak per dead
 *     client), while 300 s leaves an interactive session at a prompt, or
 *     a slow computation, its time; programs that are legitimately quiet
 *     for longer take --idle-timeout 0 or a larger bound.
 * Stopping (SIGTERM, SIGINT): no more accepts; the programs running get
 * the shutdown grace to finish.
 */
#include "serve.h"

#include "listen.h"
#include "proc/inspect.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/socket.h>

#include "host/wisp_program.h"
#include "idle.h"
#include "opts.h"
#include "proc/caps.h"

#define SERVE_DEFAULT_MAX 1024
#define SERVE_DEFAULT_IDLE_S 300
#define SERVE_MAX_IDLE_S 1000000      /* (in ms it fits tcp_info's 32 bits) */
#define SERVE_BACKLOG 1024
#define SERVE_POLL_MS 100
#define SERVE_FULL_POLL_MS 5
#define SERVE_SWEEP_MIN_MS 100
#define SERVE_SWEEP_MAX_MS 5000

/* Why a connection was closed by the server, or what went wrong once. */
enum serve_event {
	REFUSED_LIMIT,    /* the connection limit (a program's children count) */
	REFUSED_FDS,      /* its fds would lie in the runtime's reserve */
	REFUSED_START,    /* its program could not start */
	CUT_IDLE,         /* idle for --idle-timeout */
	UNWATCHED,        /* not watched for idleness (out of memory) */
	SWEEP_FAILED,     /* the kernel did not report the connections */
	SERVE_NEVENTS
};

struct serve {
	int fd;                    /* the listening socket */
	char where[128];           /* what it listens on, for messages */
	struct caps *caps;         /* the programs' set (counts them) */
	struct rt *rt;
	pthread_t thread;
	atomic_bool stop;
	atomic_int *stop_request;  /* the run's: set, no more accepts */
	bool running;
	struct idle *idle;         /* the connections watched, or NULL: no timeout */
	uint32_t idle_ms;          /* --idle-timeout */
	uint32_t sweep_ms;         /* between sweeps */
	/* The accepting thread's (read by serve_stop after it joined): */
	uint32_t said;             /* the events said already, a bit each */
	uint64_t count[SERVE_NEVENTS];
};

/* Parse a --max-connections or --idle-timeout value into o: 1, or 2 on a
 * usage error (said). */
static int parse_number(const char *name, const char *v, struct serve_opts *o)
{
	bool idle = strcmp(name, "--idle-timeout") == 0;
	unsigned long long lo = idle ? 0 : 1, hi = idle ? SERVE_MAX_IDLE_S : 1000000;
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (*end != '\0' || v[0] == '-' || errno != 0 || n < lo || n > hi) {
		fprintf(stderr, "wisp: %s wants a number from %llu to %llu%s, not '%s'\n", name, lo, hi,
		        idle ? " (seconds; 0: never)" : "", v);
		return 2;
	}
	if (idle) {
		o->idle_timeout_s = (uint32_t)n;
		o->idle_given = true;
	} else {
		o->max_connections = n;
	}
	return 1;
}

int serve_parse_opt(int argc, char **argv, int *i, struct serve_opts *o)
{
	static const char *const names[] = { "--listen", "--max-connections", "--idle-timeout" };
	static const char *const wants[] = { "ADDRESS:PORT, e.g. 127.0.0.1:7000",
	                                     "a number of connections", "a number of seconds" };
	const char *a = argv[*i];
	size_t k = 0;
	while (k < 3 && !opt_is(a, names[k]))
		k++;
	if (k == 3)
		return 0;
	const char *v = opt_value(argc, argv, i, names[k]);
	if (v == NULL || *v == '\0') {
		fprintf(stderr, "wisp: %s needs a value (%s)\n", names[k], wants[k]);
		return 2;
	}
	if (k > 0)
		return parse_number(names[k], v, o);
	char why[160];
	if (!listen_form_ok("--listen", "127.0.0.1:7000", v, why, sizeof(why))) {
		fprintf(stderr, "wisp: %s, not '%s'\n", why, v);
		return 2;
	}
	o->listen = v;
	return 1;
}

/* Watch s's connections for idleness as o says (none: s->idle stays
 * NULL): 0, or -1 with a message if it was asked for and cannot be. */
static int watch_idle(struct serve *s, const struct serve_opts *o, char *err, size_t errlen)
{
	uint32_t secs = o->idle_given ? o->idle_timeout_s : SERVE_DEFAULT_IDLE_S;
	if (secs == 0)
		return 0;
	char why[256];
	s->idle = idle_new(s->fd, why, sizeof(why));
	if (s->idle == NULL) {
		if (o->idle_given) {
			snprintf(err, errlen, "--idle-timeout: %s", why);
			return -1;
		}
		fprintf(stderr, "wisp: serve: idle connections will not be closed: %s\n", why);
		return 0;
	}
	s->idle_ms = secs * 1000u;
	s->sweep_ms = s->idle_ms / 10;
	if (s->sweep_ms < SERVE_SWEEP_MIN_MS)
		s->sweep_ms = SERVE_SWEEP_MIN_MS;
	if (s->sweep_ms > SERVE_SWEEP_MAX_MS)
		s->sweep_ms = SERVE_SWEEP_MAX_MS;
	return 0;
}

struct serve *serve_new(const struct serve_opts *o, struct caps *root, atomic_int *stop,
                        char *err, size_t errlen)
{
	struct serve *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->stop_request = stop;
	s->fd = listen_tcp(o->listen, SERVE_BACKLOG, 0, "", err, errlen);
	listen_where(s->fd, s->where, sizeof(s->where));
	/* The programs' set: the run's, with stdin and stdout the socket. */
	s->caps = s->fd >= 0 ? caps_derive(root) : NULL;
	if (s->caps != NULL) {
		s->caps->stdio[0] = s->caps->stdio[1] = CAP_STDIO_INHERIT;
		s->caps->max_processes = o->max_connections ? o->max_connections : SERVE_DEFAULT_MAX;
		if (caps_finish(s->caps) != 0) {
			caps_unref(s->caps);
			s->caps = NULL;
		} else {
			s->caps->frozen = true;
		}
	}
	if (s->caps == NULL) {
		if (s->fd >= 0) {
			snprintf(err, errlen, "out of memory");
			close(s->fd);
		}
		free(s);
		return NULL;
	}
	if (watch_idle(s, o, err, errlen) != 0) {
		serve_free(s);
		return NULL;
	}
	return s;
}

/* Count event e, and say it the first time (detail: an errno for
 * REFUSED_START and SWEEP_FAILED, seconds for CUT_IDLE). */
static void note(struct serve *s, enum serve_event e, int detail)
{
	s->count[e]++;
	if (s->said & 1u << e)
		return;
	s->said |= 1u << e;
	switch (e) {
	case REFUSED_LIMIT:
		fprintf(stderr, "wisp: serve: a connection was closed unserved: the connection "
		        "limit was reached (said once)\n");
		break;
	case REFUSED_FDS:
		fprintf(stderr, "wisp: serve: a connection was closed unserved: the host is out of "
		        "fds (the top of RLIMIT_NOFILE is the runtime's) (said once)\n");
		break;
	case REFUSED_START:
		fprintf(stderr, "wisp: serve: a connection was closed unserved: its program could "
		        "not start: %s (said once)\n", strerror(-detail));
		break;
	case CUT_IDLE:
		fprintf(stderr, "wisp: serve: a connection idle for %d s was closed, its program "
		        "killed (--idle-timeout; said once)\n", detail);
		break;
	case UNWATCHED:
		fprintf(stderr, "wisp: serve: a connection is not watched for idleness (out of "
		        "memory, or its socket has no cookie) (said once)\n");
		break;
	case SWEEP_FAILED:
		fprintf(stderr, "wisp: serve: cannot tell which connections are idle: %s "
		        "(said once)\n", strerror(-detail));
		break;
	case SERVE_NEVENTS:
		break;
	}
}

/* Whether the fds a connection would hand its program (ps: the socket,
 * its copy, the copy of stderr) were all made and lie below the runtime's
 * reserve. The kernel hands out the lowest free number, so one in the
 * reserve means the guests' share is used up. */
static bool fds_fit(const struct program_stdio *ps)
{
	int ceiling = wasi_host_fd_ceiling();
	for (int i = 0; i < 3; i++)
		if (ps->fd[i] < 0 || ps->fd[i] >= ceiling)
			return false;
	return true;
}

/* Start the current version of the program on connection c, or close it
 * (a refusal: noted). */
static void start_one(struct serve *s, int c)
{
	struct program_stdio ps = { { c, fcntl(c, F_DUPFD_CLOEXEC, 0), fcntl(2, F_DUPFD_CLOEXEC, 0) }, 0 };
	if (!fds_fit(&ps)) {
		program_stdio_close(&ps);
		note(s, REFUSED_FDS, 0);
		return;
	}
	/* (Taken now: once the program has c, it may close it, and the
	 * number may be anything's.) */
	uint64_t cookie = s->idle != NULL ? idle_cookie(c) : 0;
	engine_module *mod;
	rt_code_current(s->rt, &mod);
	int err = 0;
	uint64_t pid = rt_spawn_program(s->rt, mod, s->caps, &ps, sizeof(ps), &err);
	rt_module_put(s->rt, mod);
	if (pid == 0) {
		program_stdio_close(&ps);
		note(s, err == -EAGAIN ? REFUSED_LIMIT : REFUSED_START, err);
		return;
	}
	if (s->idle != NULL && (cookie == 0 || idle_add(s->idle, cookie, pid) != 0))
		note(s, UNWATCHED, 0);
}

/* A sweep found pid's connection idle (ctx: the serve): kill pid, which
 * closes the connection (its fds 0 and 1) and frees its slot. The reason
 * is `shutdown` (untrappable, as a kill): the server closing a connection
 * it keeps no more is an orderly end, not a crash, so it makes no crash
 * report (serve says it once itself). False if that could not be tried
 * (out of memory: the next sweep tries again). */
static bool cut_idle(void *ctx, uint64_t pid, uint32_t idle_ms)
{
	struct serve *s = ctx;
	struct reason why = { .kind = WISP_EXIT_SHUTDOWN };
	snprintf(why.text, sizeof(why.text), "idle timeout: no data on its connection for %u s",
	         idle_ms / 1000);
	int rc = rt_exit_signal(s->rt, pid, &why, true);
	if (rc == -ENOMEM)
		return false;
	if (rc == 0)   /* (-ESRCH: it ended meanwhile) */
		note(s, CUT_IDLE, (int)(idle_ms / 1000));
	return true;
}

static uint64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static void *accept_main(void *arg)
{
	struct serve *s = arg;
	uint64_t next_sweep = now_ms() + s->sweep_ms;
	while (!atomic_load(&s->stop) && atomic_load(s->stop_request) == 0) {
		/* (Before the limit's wait: at the limit is when idle
		 * connections matter most.) */
		if (s->idle != NULL && now_ms() >= next_sweep) {
			int rc = idle_sweep(s->idle, s->idle_ms, cut_idle, s);
			if (rc != 0)
				note(s, SWEEP_FAILED, rc);
			next_sweep = now_ms() + s->sweep_ms;
		}
		/* At the limit: let clients wait in the backlog. */
		if (atomic_load(&s->caps->live) >= s->caps->max_processes) {
			poll(NULL, 0, SERVE_FULL_POLL_MS);
			continue;
		}
		struct pollfd pf = { .fd = s->fd, .events = POLLIN };
		if (poll(&pf, 1, SERVE_POLL_MS) <= 0)
			continue;
		int c = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (c < 0) {
			/* Out of fds even in the reserve (the runtime's own use):
			 * the client waits in the backlog until some are free. */
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				poll(NULL, 0, 10);
			continue;
		}
		start_one(s, c);
	}
	return NULL;
}

void serve_start(struct serve *s, struct rt *rt)
{
	if (s == NULL || s->running)
		return;
	s->rt = rt;
	s->running = pthread_create(&s->thread, NULL, accept_main, s) == 0;
	if (!s->running)
		return;
	char idle[64] = "no idle timeout";
	if (s->idle != NULL)
		snprintf(idle, sizeof(idle), "idle ones closed after %u s", s->idle_ms / 1000);
	unsigned long long max = s->caps->max_processes;
	fprintf(stderr, "wisp: serving on %s (at most %llu connection%s at once, %s)\n", s->where,
	        max, max == 1 ? "" : "s", idle);
}

/* What the bounds did while serving, if anything: one line. */
static void tell_counts(const struct serve *s)
{
	static const char *const what[] = {
		[REFUSED_LIMIT] = "closed unserved at the connection limit",
		[REFUSED_FDS] = "closed unserved for want of fds",
		[REFUSED_START] = "closed unserved: the program could not start",
		[CUT_IDLE] = "closed idle",
	};
	char line[512];
	size_t n = 0;
	for (int e = 0; e <= CUT_IDLE; e++)
		if (s->count[e] != 0 && n < sizeof(line))
			n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%llu %s", n ? ", " : "",
			                      (unsigned long long)s->count[e], what[e]);
	if (n > 0)
		fprintf(stderr, "wisp: serve: connections %s\n", line);
}

void serve_stop(struct serve *s)
{
	if (s == NULL || !s->running)
		return;
	atomic_store(&s->stop, true);
	pthread_join(s->thread, NULL);
	s->running = false;
	tell_counts(s);
}

void serve_free(struct serve *s)
{
	if (s == NULL)
		return;
	serve_stop(s);
	close(s->fd);
	caps_unref(s->caps);
	idle_free(s->idle);
	free(s);
}
