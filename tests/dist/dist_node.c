/*
 * dist_node.c — a minimal distribution node over src/dist/epmd.c and
 * src/dist/handshake.c, driven by tests/e2e/test_dist_handshake.py
 * against real erl nodes and fake peers.
 *
 *   dist_node register EPMD_PORT ALIVE DIST_PORT
 *   dist_node port-please HOST EPMD_PORT ALIVE
 *   dist_node ensure EPMD_PORT
 *   dist_node start-daemon PROGRAM EPMD_PORT
 *   dist_node connect NAME COOKIE PEER EPMD_PORT [--port P] [--flags HEX] [--timeout MS]
 *   dist_node accept NAME COOKIE EPMD_PORT [--status S] [--flags HEX] [--timeout MS]
 *                    [--no-register]
 *
 * It prints one line per event on stdout ("registered creation=N",
 * "connected name=.. flags=0x.. creation=N", "error ENAME: message", ...)
 * and runs until its stdin closes, keeping registrations and connections
 * open. A connection is served the way a node must for erl to keep it:
 * every tick (a zero length) is answered with a tick, and a
 * {'$gen_call', From, {is_auth, Node}} sent to net_kernel (net_adm:ping) is
 * answered yes (decoded with libei); other messages are counted and
 * dropped. Exit status: 0, or 1 after an "error" line of a one-shot command.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ei.h>

#include "dist/epmd.h"
#include "dist/handshake.h"
#include "dist/wire.h"

#define MAX_CONNS 16
#define MAX_FRAME (1 << 20)

struct opts {
	uint16_t port;            /* connect: the peer's port, skipping EPMD */
	uint64_t flags;
	int timeout_ms;
	const char *status;
	int no_register;
};

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static int report(int rc, const char *err)
{
	say("error %s: %s", strerrorname_np(-rc), err);
	return 1;
}

static uint16_t port_arg(const char *s)
{
	uint16_t p;
	if (epmd_parse_port(s, &p) != 0) {
		fprintf(stderr, "dist_node: bad port '%s'\n", s);
		exit(2);
	}
	return p;
}

static void parse_opts(int argc, char **argv, int first, struct opts *o)
{
	*o = (struct opts){ .flags = DIST_FLAGS_WISP, .timeout_ms = 7000, .status = "ok" };
	for (int i = first; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(argv[i], "--no-register") == 0) {
			o->no_register = 1;
			continue;
		}
		if (v == NULL) {
			fprintf(stderr, "dist_node: %s needs a value\n", argv[i]);
			exit(2);
		}
		if (strcmp(argv[i], "--port") == 0)
			o->port = port_arg(v);
		else if (strcmp(argv[i], "--flags") == 0)
			o->flags = strtoull(v, NULL, 16);
		else if (strcmp(argv[i], "--timeout") == 0)
			o->timeout_ms = atoi(v);
		else if (strcmp(argv[i], "--status") == 0)
			o->status = v;
		else {
			fprintf(stderr, "dist_node: unknown option %s\n", argv[i]);
			exit(2);
		}
		i++;
	}
}

/* Block until stdin closes (the test's way to say "stop"). */
static void wait_stdin(void)
{
	char buf[256];
	while (read(0, buf, sizeof(buf)) > 0)
		;
}

/* ---- serving a connection ------------------------------------------- */

/* Answer net_adm:ping: a pass-through frame ('p', control, message) with
 * control {6 (REG_SEND), From, _, net_kernel} and message
 * {'$gen_call', {From, Tag}, {is_auth, _}} gets {Tag, yes} sent to From
 * (control {2 (SEND), '', From}). Returns 1 if it answered. */
static int answer_ping(int fd, const char *buf, int len)
{
	int i = 1, v, arity;
	long op;
	char atom[MAXATOMLEN_UTF8];
	if (buf[0] != 'p' || ei_decode_version(buf, &i, &v) || ei_decode_tuple_header(buf, &i, &arity) ||
	    arity != 4 || ei_decode_long(buf, &i, &op) || op != 6)
		return 0;
	int from = i;
	if (ei_skip_term(buf, &i) || ei_skip_term(buf, &i))
		return 0;
	int from_end = from;
	ei_skip_term(buf, &from_end);
	if (ei_decode_atom(buf, &i, atom) || strcmp(atom, "net_kernel") != 0)
		return 0;
	if (ei_decode_version(buf, &i, &v) || ei_decode_tuple_header(buf, &i, &arity) || arity != 3 ||
	    ei_decode_atom(buf, &i, atom) || strcmp(atom, "$gen_call") != 0 ||
	    ei_decode_tuple_header(buf, &i, &arity) || arity != 2 || ei_skip_term(buf, &i))
		return 0;
	int tag = i;
	if (ei_skip_term(buf, &i) || i > len)
		return 0;
	int tag_end = i;
	if (ei_decode_tuple_header(buf, &i, &arity) || arity != 2 ||
	    ei_decode_atom(buf, &i, atom) || strcmp(atom, "is_auth") != 0)
		return 0;

	ei_x_buff x;
	ei_x_new(&x);
	ei_x_append_buf(&x, "\0\0\0\0p", 5);
	ei_x_encode_version(&x);
	ei_x_encode_tuple_header(&x, 3);
	ei_x_encode_long(&x, 2);
	ei_x_encode_atom(&x, "");
	ei_x_append_buf(&x, buf + from, from_end - from);
	ei_x_encode_version(&x);
	ei_x_encode_tuple_header(&x, 2);
	ei_x_append_buf(&x, buf + tag, tag_end - tag);
	ei_x_encode_atom(&x, "yes");
	uint32_t n = (uint32_t)x.index - 4;
	uint8_t *p = (uint8_t *)x.buff;
	p[0] = (uint8_t)(n >> 24), p[1] = (uint8_t)(n >> 16), p[2] = (uint8_t)(n >> 8), p[3] = (uint8_t)n;
	int rc = wire_write_all(fd, x.buff, (size_t)x.index, wire_deadline(5000));
	ei_x_free(&x);
	return rc == 0;
}

/* One frame from a connected peer: a tick is answered, a ping is answered.
 * Returns -1 when the connection is over. */
static int serve_frame(int fd, const char *peer)
{
	static const uint8_t tick[4];
	uint8_t hdr[4];
	if (wire_read_exact(fd, hdr, 4, wire_deadline(5000), NULL) != 0)
		return -1;
	uint32_t n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
	if (n == 0)
		return wire_write_all(fd, tick, 4, wire_deadline(5000)) == 0 ? 0 : -1;
	if (n > MAX_FRAME)
		return -1;
	char *buf = malloc(n);
	if (buf == NULL || wire_read_exact(fd, buf, n, wire_deadline(5000), NULL) != 0) {
		free(buf);
		return -1;
	}
	if (answer_ping(fd, buf, (int)n))
		say("answered ping from %s", peer);
	free(buf);
	return 0;
}

struct conn {
	int fd;
	char peer[DIST_NAME_MAX + 1];
};

/* Serve stdin (EOF: stop), an optional listening socket (accept and
 * handshake each newcomer) and the connections, until stdin closes. */
static void serve(int lfd, struct conn *conns, int nconns, const struct dist_id *self,
                  const char *cookie, const struct opts *o);

static void accept_one(int lfd, struct conn *conns, int *nconns, const struct dist_id *self,
                       const char *cookie, const struct opts *o);

static const char *fixed_status(void *ctx, const struct dist_id *peer)
{
	(void)peer;
	return ctx;
}

static void serve(int lfd, struct conn *conns, int nconns, const struct dist_id *self,
                  const char *cookie, const struct opts *o)
{
	for (;;) {
		struct pollfd p[2 + MAX_CONNS];
		int n = 0;
		p[n++] = (struct pollfd){ .fd = 0, .events = POLLIN };
		p[n++] = (struct pollfd){ .fd = lfd, .events = POLLIN };
		for (int i = 0; i < nconns; i++)
			p[n++] = (struct pollfd){ .fd = conns[i].fd, .events = POLLIN };
		if (poll(p, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		if (p[0].revents) {
			char buf[256];
			if (read(0, buf, sizeof(buf)) <= 0)
				return;
		}
		for (int i = nconns - 1; i >= 0; i--) {
			if (!p[2 + i].revents)
				continue;
			if (serve_frame(conns[i].fd, conns[i].peer) < 0) {
				say("closed %s", conns[i].peer);
				close(conns[i].fd);
				conns[i] = conns[--nconns];
			}
		}
		if (lfd >= 0 && p[1].revents)
			accept_one(lfd, conns, &nconns, self, cookie, o);
	}
}

static void accept_one(int lfd, struct conn *conns, int *nconns, const struct dist_id *self,
                       const char *cookie, const struct opts *o)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	struct dist_id peer;
	char err[512];
	int rc = dist_handshake_accept(fd, self, cookie, fixed_status, (void *)o->status, &peer,
	                               o->timeout_ms, err, sizeof(err));
	if (rc != 0 || *nconns == MAX_CONNS) {
		say("refused %s: %s", strerrorname_np(-rc), err);
		close(fd);
		return;
	}
	say("accepted name=%s flags=0x%llx creation=%u", peer.name,
	    (unsigned long long)peer.flags, peer.creation);
	conns[*nconns].fd = fd;
	snprintf(conns[*nconns].peer, sizeof(conns[0].peer), "%s", peer.name);
	(*nconns)++;
}

/* ---- commands ----------------------------------------------------------- */

static int cmd_register(char **argv)
{
	char err[512];
	int fd;
	uint32_t creation;
	int rc = epmd_register(port_arg(argv[0]), argv[1], port_arg(argv[2]), &fd, &creation,
	                       err, sizeof(err));
	if (rc != 0)
		return report(rc, err);
	say("registered creation=%u", creation);
	wait_stdin();
	close(fd);
	return 0;
}

static int cmd_port_please(char **argv)
{
	char err[512];
	uint16_t port;
	int rc = epmd_port_please(argv[0], port_arg(argv[1]), argv[2], &port, err, sizeof(err));
	if (rc != 0)
		return report(rc, err);
	say("port %u", port);
	return 0;
}

static int cmd_ensure(char **argv, const char *program)
{
	char err[512];
	uint16_t port = port_arg(argv[0]);
	int rc = program ? epmd_start_daemon(program, port, err, sizeof(err))
	                 : epmd_ensure_running(port, err, sizeof(err));
	if (rc != 0)
		return report(rc, err);
	say("running");
	return 0;
}

/* The node's own identity: name, flags from the options, a creation. */
static void make_self(struct dist_id *self, const char *name, const struct opts *o,
                      uint32_t creation)
{
	memset(self, 0, sizeof(*self));
	snprintf(self->name, sizeof(self->name), "%s", name);
	self->flags = o->flags;
	self->creation = creation;
}

static int cmd_connect(int argc, char **argv)
{
	struct opts o;
	parse_opts(argc, argv, 4, &o);
	const char *peer_name = argv[2], *at = strchr(peer_name, '@');
	char err[512], alive[256], host[256];
	if (at == NULL)
		return report(-EINVAL, "PEER must be alive@host");
	snprintf(alive, sizeof(alive), "%.*s", (int)(at - peer_name), peer_name);
	snprintf(host, sizeof(host), "%s", at + 1);
	uint16_t port = o.port;
	int rc = 0;
	if (port == 0)
		rc = epmd_port_please(host, port_arg(argv[3]), alive, &port, err, sizeof(err));
	if (rc != 0)
		return report(rc, err);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port),
	                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd;
	rc = wire_connect((struct sockaddr *)&sin, sizeof(sin), wire_deadline(5000), &fd);
	if (rc != 0)
		return report(rc, "cannot connect to the peer's port");
	struct dist_id self, peer;
	make_self(&self, argv[0], &o, 1);
	rc = dist_handshake_connect(fd, &self, argv[1], peer_name, NULL, NULL, &peer, o.timeout_ms, err,
	                            sizeof(err));
	if (rc != 0) {
		close(fd);
		return report(rc, err);
	}
	say("connected name=%s flags=0x%llx creation=%u", peer.name,
	    (unsigned long long)peer.flags, peer.creation);
	struct conn c = { .fd = fd };
	snprintf(c.peer, sizeof(c.peer), "%s", peer.name);
	serve(-1, &c, 1, &self, argv[1], &o);
	return 0;
}

static int cmd_accept(int argc, char **argv)
{
	struct opts o;
	parse_opts(argc, argv, 3, &o);
	char err[512], alive[256];
	const char *at = strchr(argv[0], '@');
	if (at == NULL)
		return report(-EINVAL, "NAME must be alive@host");
	snprintf(alive, sizeof(alive), "%.*s", (int)(at - argv[0]), argv[0]);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sin);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(lfd, 16) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&sin, &sl) != 0)
		return report(-errno, "cannot listen on 127.0.0.1");
	uint16_t port = ntohs(sin.sin_port);
	int efd = -1;
	uint32_t creation = 1;
	if (!o.no_register) {
		int rc = epmd_register(port_arg(argv[2]), alive, port, &efd, &creation, err,
		                       sizeof(err));
		if (rc != 0)
			return report(rc, err);
	}
	say("listening port=%u creation=%u", port, creation);
	struct dist_id self;
	make_self(&self, argv[0], &o, creation);
	struct conn conns[MAX_CONNS];
	serve(lfd, conns, 0, &self, argv[1], &o);
	if (efd >= 0)
		close(efd);
	close(lfd);
	return 0;
}

int main(int argc, char **argv)
{
	ei_init();
	const char *cmd = argc > 1 ? argv[1] : "";
	int n = argc - 2;
	char **a = argv + 2;
	if (strcmp(cmd, "register") == 0 && n == 3)
		return cmd_register(a);
	if (strcmp(cmd, "port-please") == 0 && n == 3)
		return cmd_port_please(a);
	if (strcmp(cmd, "ensure") == 0 && n == 1)
		return cmd_ensure(a, NULL);
	if (strcmp(cmd, "start-daemon") == 0 && n == 2)
		return cmd_ensure(a + 1, a[0]);
	if (strcmp(cmd, "connect") == 0 && n >= 4)
		return cmd_connect(n, a);
	if (strcmp(cmd, "accept") == 0 && n >= 3)
		return cmd_accept(n, a);
	fprintf(stderr, "usage: see the comment at the top of tests/dist/dist_node.c\n");
	return 2;
}
