/*
 * epmd.c — the EPMD client (see epmd.h).
 *
 * Requests are framed by a 2-byte big-endian length; answers are not (each
 * answer has a fixed layout, and EPMD closes the connection after every
 * answer except ALIVE2's). The messages used:
 *
 *   ALIVE2_REQ      'x' port:16 type:8 proto:8 high:16 low:16 nlen:16 name elen:16 extra
 *   ALIVE2_X_RESP   'v' result:8 creation:32      (OTP 23+ EPMD)
 *   ALIVE2_RESP     'y' result:8 creation:16      (older EPMD)
 *   PORT_PLEASE2_REQ 'z' name
 *   PORT2_RESP      'w' result:8 [port:16 type:8 proto:8 high:16 low:16 nlen:16 name elen:16 extra]
 *   NAMES_REQ       'n'  ->  EPMD's own port:32, then text, a line
 *                            "name N at port P" per node (used to tell
 *                            that an EPMD answers, and to list the names
 *                            it has when a name is not among them)
 *
 * wisp registers as a normal node (type 77) over TCP (protocol 0) with
 * distribution versions 6..6: it speaks only the OTP 23+ handshake. (erl
 * 25 registers 6..5 for old peers' sake; a peer picks the highest version
 * both support, so the lowest is informational.) A peer that registered a
 * highest version below 6 is refused by epmd_port_please before any
 * connection is attempted.
 *
 * Starting EPMD (epmd_start_daemon) mirrors erl: `epmd -daemon`, which
 * forks, detaches and outlives its starter. The port is always passed with
 * -port, so the daemon listens where this caller will look even if the
 * environment's ERL_EPMD_PORT says something else.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "epmd.h"
#include "wire.h"

extern char **environ;

enum {
	ALIVE2_REQ = 'x', ALIVE2_X_RESP = 'v', ALIVE2_RESP = 'y',
	PORT_PLEASE2_REQ = 'z', PORT2_RESP = 'w', NAMES_REQ = 'n',
	NODE_NORMAL = 77, PROTO_TCP = 0, DIST_VERSION = 6,
	ALIVE_MAX = 255,
	NAMES_TEXT_MAX = 1024,   /* of a NAMES_REQ answer, read to list names */
};

#define FAIL(rc, ...) (errmsg(err, errlen, __VA_ARGS__), (rc))

static void errmsg(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void errmsg(char *err, size_t errlen, const char *fmt, ...)
{
	if (err == NULL || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int epmd_parse_port(const char *text, uint16_t *port)
{
	*port = EPMD_DEFAULT_PORT;
	if (text == NULL || *text == '\0')
		return 0;
	char *end;
	errno = 0;
	long v = strtol(text, &end, 10);
	if (errno != 0 || *end != '\0' || v < 1 || v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

/* An alive name wisp registers or looks up: 1..255 printable ASCII bytes
 * without '@' or space (what erl accepts for -sname, and always safe to
 * print in a message). */
static bool alive_ok(const char *alive)
{
	size_t n = strlen(alive);
	if (n == 0 || n > ALIVE_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (alive[i] <= ' ' || alive[i] > '~' || alive[i] == '@')
			return false;
	return true;
}

/* Connect to the EPMD on 127.0.0.1:port. */
static int connect_local(uint16_t port, int64_t deadline, int *fd, char *err, size_t errlen)
{
	struct sockaddr_in sin = {
		.sin_family = AF_INET,
		.sin_port = htons(port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	int rc = wire_connect((struct sockaddr *)&sin, sizeof(sin), deadline, fd);
	if (rc == -ECONNREFUSED)
		return FAIL(rc, "EPMD is not running on port %u of this host (erl and "
		            "'epmd -daemon' start it; ERL_EPMD_PORT chooses the port)", port);
	if (rc != 0)
		return FAIL(rc, "cannot reach EPMD on 127.0.0.1 port %u: %s", port, strerror(-rc));
	return 0;
}

/* Read an answer's next len bytes; `what` names it in messages. */
static int read_answer(int fd, void *buf, size_t len, int64_t deadline, const char *what,
                       uint16_t port, char *err, size_t errlen)
{
	int rc = wire_read_exact(fd, buf, len, deadline, NULL);
	if (rc == -ECONNRESET)
		return FAIL(-EPROTO, "EPMD on port %u closed the connection before its %s was "
		            "complete", port, what);
	if (rc == -ETIMEDOUT)
		return FAIL(rc, "EPMD on port %u did not answer a %s request within %d ms",
		            port, what, EPMD_TIMEOUT_MS);
	if (rc != 0)
		return FAIL(rc, "reading EPMD's %s on port %u: %s", what, port, strerror(-rc));
	return 0;
}

static int send_request(int fd, const uint8_t *req, size_t len, int64_t deadline,
                        uint16_t port, char *err, size_t errlen)
{
	int rc = wire_write_all(fd, req, len, deadline);
	if (rc != 0)
		return FAIL(rc, "sending a request to EPMD on port %u: %s", port, strerror(-rc));
	return 0;
}

/* ALIVE2's answer: the result byte, then the creation. */
static int read_alive_answer(int fd, const char *alive, uint16_t port, int64_t deadline,
                             uint32_t *creation, char *err, size_t errlen)
{
	uint8_t a[6];
	int rc = read_answer(fd, a, 2, deadline, "registration answer", port, err, errlen);
	if (rc != 0)
		return rc;
	if (a[0] != ALIVE2_X_RESP && a[0] != ALIVE2_RESP)
		return FAIL(-EPROTO, "EPMD on port %u answered a registration with message type "
		            "%u (not ALIVE2_X_RESP or ALIVE2_RESP)", port, a[0]);
	if (a[1] != 0)
		return FAIL(-EADDRINUSE, "the node name '%s' is already registered in EPMD on "
		            "port %u (is another node of that name running?)", alive, port);
	size_t clen = a[0] == ALIVE2_X_RESP ? 4 : 2;
	rc = read_answer(fd, a + 2, clen, deadline, "registration answer", port, err, errlen);
	if (rc != 0)
		return rc;
	*creation = clen == 4 ? get32(a + 2) : get16(a + 2);
	return 0;
}

int epmd_register(uint16_t epmd_port, const char *alive, uint16_t dist_port,
                  int *fd_out, uint32_t *creation_out, char *err, size_t errlen)
{
	*fd_out = -1;
	*creation_out = 0;
	if (!alive_ok(alive))
		return FAIL(-EINVAL, "invalid node name '%.64s': 1 to %d printable ASCII "
		            "characters without '@' or spaces", alive, ALIVE_MAX);
	if (dist_port == 0)
		return FAIL(-EINVAL, "cannot register '%s' in EPMD with distribution port 0", alive);
	size_t n = strlen(alive);
	uint8_t req[2 + 13 + ALIVE_MAX];
	uint8_t *p = req;
	put16(p, (uint16_t)(13 + n));
	p[2] = ALIVE2_REQ;
	put16(p + 3, dist_port);
	p[5] = NODE_NORMAL;
	p[6] = PROTO_TCP;
	put16(p + 7, DIST_VERSION);                /* highest */
	put16(p + 9, DIST_VERSION);                /* lowest */
	put16(p + 11, (uint16_t)n);
	memcpy(p + 13, alive, n);
	put16(p + 13 + n, 0);                      /* no extra */

	int64_t deadline = wire_deadline(EPMD_TIMEOUT_MS);
	int fd;
	int rc = connect_local(epmd_port, deadline, &fd, err, errlen);
	if (rc != 0)
		return rc;
	rc = send_request(fd, req, 2 + 13 + n, deadline, epmd_port, err, errlen);
	if (rc == 0)
		rc = read_alive_answer(fd, alive, epmd_port, deadline, creation_out, err, errlen);
	if (rc != 0) {
		close(fd);
		return rc;
	}
	*fd_out = fd;
	return 0;
}

/* PORT2_RESP after the request was sent: the port, if the node's versions
 * include 6. */
static int read_port_answer(int fd, const char *host, uint16_t epmd_port, const char *alive,
                            int64_t deadline, uint16_t *port_out, char *err, size_t errlen)
{
	uint8_t a[12];
	int rc = read_answer(fd, a, 2, deadline, "port answer", epmd_port, err, errlen);
	if (rc != 0)
		return rc;
	if (a[0] != PORT2_RESP)
		return FAIL(-EPROTO, "EPMD on %s port %u answered a port request with message "
		            "type %u (not PORT2_RESP)", host, epmd_port, a[0]);
	if (a[1] != 0)
		return FAIL(-ENOENT, "no node named '%s' is registered in EPMD on %s port %u",
		            alive, host, epmd_port);
	rc = read_answer(fd, a + 2, 10, deadline, "port answer", epmd_port, err, errlen);
	if (rc != 0)
		return rc;
	uint16_t port = get16(a + 2), high = get16(a + 6), low = get16(a + 8);
	if (port == 0)
		return FAIL(-EPROTO, "EPMD on %s port %u says node '%s' listens on port 0",
		            host, epmd_port, alive);
	if (high < DIST_VERSION || low > DIST_VERSION)
		return FAIL(-EPROTONOSUPPORT, "node '%s' on %s speaks distribution versions "
		            "%u..%u; wisp needs version 6 (OTP 23 or later)", alive, host, low, high);
	*port_out = port;
	return 0;
}

/* The names the EPMD at ai has registered, ", "-separated, into out
 * (printable; "" if it does not answer). Only the first NAMES_TEXT_MAX
 * bytes of its answer are read: on a host with many nodes the list is
 * cut short. */
static void names_at(const struct addrinfo *ai, char *out, size_t cap)
{
	static const uint8_t req[3] = { 0, 1, NAMES_REQ };
	char text[NAMES_TEXT_MAX + 1];
	uint8_t port[4];
	size_t got = 0;
	int fd;
	int64_t deadline = wire_deadline(EPMD_TIMEOUT_MS);
	out[0] = '\0';
	if (wire_connect(ai->ai_addr, ai->ai_addrlen, deadline, &fd) != 0)
		return;
	int rc = wire_write_all(fd, req, sizeof(req), deadline);
	if (rc == 0)
		rc = wire_read_exact(fd, port, sizeof(port), deadline, NULL);
	if (rc == 0)
		rc = wire_read_exact(fd, text, NAMES_TEXT_MAX, deadline, &got);
	close(fd);
	if (rc != 0 && rc != -ECONNRESET)   /* (the end of its answer: ECONNRESET) */
		return;
	text[got] = '\0';
	size_t o = 0;
	char *end;
	for (char *line = text; o + 1 < cap && (end = strchr(line, '\n')) != NULL; line = end + 1) {
		*end = '\0';
		char *at = strstr(line, " at port ");
		if (strncmp(line, "name ", 5) != 0 || at == NULL)
			continue;
		*at = '\0';
		char shown[2 * ALIVE_MAX];
		util_printable(shown, sizeof(shown), line + 5);
		int k = snprintf(out + o, cap - o, "%s%s", o > 0 ? ", " : "", shown);
		o = k < 0 ? cap : o + (size_t)k;
	}
}

/* One address of the host: connect, ask, read. */
static int port_please_at(const struct addrinfo *ai, const char *host, uint16_t epmd_port,
                          const char *alive, uint16_t *port_out, char *err, size_t errlen)
{
	size_t n = strlen(alive);
	uint8_t req[3 + ALIVE_MAX];
	put16(req, (uint16_t)(1 + n));
	req[2] = PORT_PLEASE2_REQ;
	memcpy(req + 3, alive, n);
	int64_t deadline = wire_deadline(EPMD_TIMEOUT_MS);
	int fd;
	int rc = wire_connect(ai->ai_addr, ai->ai_addrlen, deadline, &fd);
	if (rc == -ECONNREFUSED)
		return FAIL(rc, "EPMD is not running on %s port %u", host, epmd_port);
	if (rc != 0)
		return FAIL(rc, "cannot reach EPMD on %s port %u: %s", host, epmd_port, strerror(-rc));
	rc = send_request(fd, req, 3 + n, deadline, epmd_port, err, errlen);
	if (rc == 0)
		rc = read_port_answer(fd, host, epmd_port, alive, deadline, port_out, err, errlen);
	close(fd);
	if (rc == -ENOENT) {   /* (a typo, often: say what is there) */
		char names[160];
		names_at(ai, names, sizeof(names));
		size_t l = strlen(err);
		if (l < errlen)
			snprintf(err + l, errlen - l, names[0] ? " (it has: %s)" : " (it has none)", names);
	}
	return rc;
}

int epmd_port_please(const char *host, uint16_t epmd_port, const char *alive,
                     uint16_t *port_out, char *err, size_t errlen)
{
	*port_out = 0;
	if (!alive_ok(alive))
		return FAIL(-EINVAL, "invalid node name '%.64s': 1 to %d printable ASCII "
		            "characters without '@' or spaces", alive, ALIVE_MAX);
	char service[8], shown[128];
	snprintf(service, sizeof(service), "%u", epmd_port);
	util_printable(shown, sizeof(shown), host);
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL;
	int g = getaddrinfo(host, service, &hints, &res);
	if (g != 0)
		return FAIL(-EHOSTUNREACH, "cannot resolve host '%s': %s", shown,
		            g == EAI_SYSTEM ? strerror(errno) : gai_strerror(g));
	/* The first address that answers decides; a refusal or an unreachable
	 * address moves on to the next one. */
	int rc = -EHOSTUNREACH;
	for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		rc = port_please_at(ai, shown, epmd_port, alive, port_out, err, errlen);
		if (rc != -ECONNREFUSED && rc != -ENETUNREACH && rc != -EHOSTUNREACH &&
		    rc != -EADDRNOTAVAIL && rc != -EAFNOSUPPORT)
			break;
	}
	freeaddrinfo(res);
	return rc;
}

/* Whether an EPMD answers on 127.0.0.1:port: it answers NAMES_REQ with its
 * own port number. 0 yes, -ECONNREFUSED nobody listens, -EPROTO something
 * else does, other errnos. */
static int probe(uint16_t port, int timeout_ms, char *err, size_t errlen)
{
	static const uint8_t req[3] = { 0, 1, NAMES_REQ };
	int64_t deadline = wire_deadline(timeout_ms);
	int fd;
	int rc = connect_local(port, deadline, &fd, err, errlen);
	if (rc != 0)
		return rc;
	uint8_t a[4];
	rc = wire_write_all(fd, req, sizeof(req), deadline);
	if (rc == 0)
		rc = wire_read_exact(fd, a, sizeof(a), deadline, NULL);
	close(fd);
	if (rc == 0 && get32(a) == port)
		return 0;
	if (rc == 0 || rc == -ECONNRESET)
		return FAIL(-EPROTO, "something listens on port %u of this host, but it does not "
		            "answer as EPMD", port);
	return FAIL(rc, "EPMD on port %u: %s", port, strerror(-rc));
}

int epmd_ensure_running(uint16_t epmd_port, char *err, size_t errlen)
{
	int rc = probe(epmd_port, EPMD_TIMEOUT_MS, err, errlen);
	if (rc != -ECONNREFUSED)
		return rc;
	return epmd_start_daemon(NULL, epmd_port, err, errlen);
}

/* The epmd to start: PATH first, then Debian's two places for it. */
static int find_epmd(char *path, size_t len)
{
	if (util_find_program("epmd", path, len) == 0)
		return 0;
	static const char *const known[] = { "/usr/bin/epmd", "/usr/lib/erlang/bin/epmd" };
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (access(known[i], X_OK) == 0) {
			snprintf(path, len, "%s", known[i]);
			return 0;
		}
	}
	return -ENOENT;
}

/* Start `path -daemon -port P` with stdio on /dev/null and default signal
 * handling (the caller may ignore SIGPIPE; exec keeps ignored signals). */
static int spawn_epmd(const char *path, uint16_t port, pid_t *pid)
{
	char portarg[8];
	snprintf(portarg, sizeof(portarg), "%u", port);
	char *const argv[] = { (char *)"epmd", (char *)"-daemon", (char *)"-port", portarg, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	int e = posix_spawn(pid, path, &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	return -e;
}

/* Wait for the spawned epmd (the daemon's starter, which exits once the
 * daemon has forked) and for the daemon to answer, until the deadline. */
static int await_epmd(pid_t pid, uint16_t port, int64_t deadline, char *err, size_t errlen)
{
	bool reaped = false, answered = false;
	int rc = 0;
	while (!(reaped && answered)) {
		int status;
		if (!reaped && waitpid(pid, &status, WNOHANG) == pid) {
			reaped = true;
			/* A failed start with an EPMD answering is a race won by
			 * another starter: as good as ours. */
			if ((!WIFEXITED(status) || WEXITSTATUS(status) != 0) &&
			    probe(port, 200, err, errlen) != 0) {
				rc = FAIL(-ECHILD, "'epmd -daemon -port %u' failed (%s %d; is the port "
				          "in use?)", port, WIFEXITED(status) ? "exit status" : "signal",
				          WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
				break;
			}
		}
		if (!answered) {
			rc = probe(port, 200, err, errlen);
			answered = rc == 0;
			if (rc != 0 && rc != -ECONNREFUSED && rc != -ETIMEDOUT)
				break;
		}
		if (answered && reaped)
			break;
		if (wire_now_ms() >= deadline) {
			if (!answered)
				rc = FAIL(-ETIMEDOUT, "the epmd started on port %u did not answer "
				          "within %d ms", port, EPMD_START_MS);
			break;
		}
		usleep(20 * 1000);
	}
	if (!reaped) {      /* its starter hangs (the daemon answers or not): ours to end */
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	return answered ? 0 : rc;
}

int epmd_start_daemon(const char *program, uint16_t epmd_port, char *err, size_t errlen)
{
	char path[4096];
	if (program == NULL) {
		if (find_epmd(path, sizeof(path)) != 0)
			return FAIL(-ENOENT, "EPMD is not running on port %u and epmd is not installed "
			            "(not on PATH, nor /usr/bin/epmd, nor /usr/lib/erlang/bin/epmd; "
			            "Debian: apt-get install erlang-base)", epmd_port);
	} else {
		snprintf(path, sizeof(path), "%s", program);
	}
	pid_t pid;
	int rc = spawn_epmd(path, epmd_port, &pid);
	if (rc != 0)
		return FAIL(rc, "cannot start epmd (%s): %s", path, strerror(-rc));
	return await_epmd(pid, epmd_port, wire_deadline(EPMD_START_MS), err, errlen);
}
