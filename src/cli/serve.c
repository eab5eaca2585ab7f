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
 * would wait parks the process, never a scheduler thread), fd 2 the
 * run's stderr; they close when the program ends, which ends the
 * connection. A program that traps ends only its own connection (its
 * crash report goes to stderr).
 *
 * --max-connections N bounds the programs (and whatever they spawn)
 * alive at once: the set they run under counts them, and at the limit
 * the listener waits (new clients queue in the kernel's backlog) until
 * one ends. Stopping (SIGTERM, SIGINT): no more accepts; the programs
 * running get the shutdown grace to finish.
 */
#include "serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/socket.h>

#include "host/wisp_program.h"
#include "opts.h"
#include "proc/caps.h"

#define SERVE_DEFAULT_MAX 1024
#define SERVE_BACKLOG 1024
#define SERVE_POLL_MS 100

struct serve {
	int fd;                    /* the listening socket */
	char where[128];           /* what it listens on, for messages */
	struct caps *caps;         /* the programs' set (counts them) */
	struct rt *rt;
	pthread_t thread;
	atomic_bool stop;
	atomic_int *stop_request;  /* the run's: set, no more accepts */
	bool running;
	bool told_limit;           /* a failed start said once */
};

int serve_parse_opt(int argc, char **argv, int *i, struct serve_opts *o)
{
	const char *a = argv[*i];
	if (!opt_is(a, "--listen") && !opt_is(a, "--max-connections"))
		return 0;
	bool listen = opt_is(a, "--listen");
	const char *v = opt_value(argc, argv, i, listen ? "--listen" : "--max-connections");
	if (v == NULL || *v == '\0') {
		fprintf(stderr, "wisp: %s needs a value (%s)\n", listen ? "--listen" : "--max-connections",
		        listen ? "ADDRESS:PORT, e.g. 127.0.0.1:7000" : "a number of connections");
		return 2;
	}
	if (listen) {
		o->listen = v;
		return 1;
	}
	char *end;
	unsigned long long n = strtoull(v, &end, 10);
	if (*end != '\0' || n == 0 || n > 1000000) {
		fprintf(stderr, "wisp: --max-connections wants a number from 1 to 1000000, not '%s'\n", v);
		return 2;
	}
	o->max_connections = n;
	return 1;
}

/* The listening socket for "HOST:PORT" ("[v6]:PORT" too), or -1 with a
 * message. */
static int listen_on(const char *spec, char *err, size_t errlen)
{
	char host[128];
	const char *colon = strrchr(spec, ':');
	if (colon == NULL || colon == spec || colon[1] == '\0' ||
	    (size_t)(colon - spec) >= sizeof(host)) {
		snprintf(err, errlen, "--listen wants ADDRESS:PORT (e.g. 127.0.0.1:7000), not '%s'",
		         spec);
		return -1;
	}
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
	                          .ai_socktype = SOCK_STREAM }, *ai;
	int gai = getaddrinfo(host, colon + 1, &hints, &ai);
	if (gai != 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", spec, gai_strerror(gai));
		return -1;
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, SERVE_BACKLOG) != 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", spec, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

/* What s listens on, as bound (port 0 picks one: say which). */
static void where(struct serve *s)
{
	struct sockaddr_storage a;
	socklen_t len = sizeof(a);
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (s->fd >= 0 && getsockname(s->fd, (struct sockaddr *)&a, &len) == 0) {
		if (a.ss_family == AF_INET6) {
			const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&a;
			inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof(host));
			port = ntohs(v6->sin6_port);
		} else {
			const struct sockaddr_in *v4 = (const struct sockaddr_in *)&a;
			inet_ntop(AF_INET, &v4->sin_addr, host, sizeof(host));
			port = ntohs(v4->sin_port);
		}
	}
	snprintf(s->where, sizeof(s->where), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);
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
	s->fd = listen_on(o->listen, err, errlen);
	where(s);
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
	return s;
}

/* Start the current version of the program on connection c (closed on
 * failure). */
static void start_one(struct serve *s, int c)
{
	struct program_stdio ps = { { c, fcntl(c, F_DUPFD_CLOEXEC, 0), fcntl(2, F_DUPFD_CLOEXEC, 0) }, 0 };
	engine_module *mod;
	rt_code_current(s->rt, &mod);
	int err = 0;
	uint64_t pid = ps.fd[1] < 0 ? 0 : rt_spawn_program(s->rt, mod, s->caps, &ps, sizeof(ps), &err);
	rt_module_put(s->rt, mod);
	if (pid != 0)
		return;   /* (its fds are the program's now) */
	program_stdio_close(&ps);
	if (!s->told_limit) {
		s->told_limit = true;
		fprintf(stderr, "wisp: serve: a connection was closed unserved: %s (said once)\n",
		        err == -EAGAIN ? "the connection limit was reached"
		        : ps.fd[1] < 0 ? "no fd left" : strerror(-err));
	}
}

static void *accept_main(void *arg)
{
	struct serve *s = arg;
	while (!atomic_load(&s->stop) && atomic_load(s->stop_request) == 0) {
		/* At the limit: let clients wait in the backlog. */
		if (atomic_load(&s->caps->live) >= s->caps->max_processes) {
			poll(NULL, 0, 5);
			continue;
		}
		struct pollfd pf = { .fd = s->fd, .events = POLLIN };
		if (poll(&pf, 1, SERVE_POLL_MS) <= 0)
			continue;
		int c = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (c < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				poll(NULL, 0, 10);   /* out of fds: the programs running will free some */
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
	if (s->running)
		fprintf(stderr, "wisp: serving on %s (at most %llu connections at once)\n", s->where,
		        (unsigned long long)s->caps->max_processes);
}

void serve_stop(struct serve *s)
{
	if (s == NULL || !s->running)
		return;
	atomic_store(&s->stop, true);
	pthread_join(s->thread, NULL);
	s->running = false;
}

void serve_free(struct serve *s)
{
	if (s == NULL)
		return;
	serve_stop(s);
	close(s->fd);
	caps_unref(s->caps);
	free(s);
}
