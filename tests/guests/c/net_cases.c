/*
 * net_cases — networking edge cases, one per argv[1]; prints what happened.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <unistd.h>

#include <wisp/guest.h>

#define L(s) s, (uint32_t)strlen(s)
#define MS 1000000LL

static int listen_any(int32_t *fd, unsigned *port)
{
	int rc = wisp_tcp_listen(L("127.0.0.1"), 0, 16, fd);
	char t[64];
	uint32_t tl, p = 0;
	wisp_net_local_addr(*fd, t, sizeof(t), &tl, &p);
	*port = p;
	return rc;
}

static void holder(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	struct wisp_msg_info info;
	int32_t fd;
	wisp_receive(NULL, 0, WISP_INFINITY, &fd, 4, &info);
	char buf[16];
	uint32_t n = 0;
	int rc = wisp_net_read(fd, buf, sizeof(buf), 2000 * MS, &n);
	printf("child read: rc=%d n=%u '%.*s'\n", rc, n, (int)n, buf);
	fflush(stdout);
}

static void poller(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	struct wisp_msg_info info;
	int32_t fd;
	wisp_receive(NULL, 0, WISP_INFINITY, &fd, 4, &info);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r = poll(&p, 1, 5000);
	printf("child poll: %d readable %s\n", r, (p.revents & POLLIN) ? "yes" : "no");
	fflush(stdout);
}

/* Echoes 3 lines on the socket it is given, then tells its parent. */
static void echoer(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	struct wisp_msg_info info;
	int32_t fd;
	wisp_receive(NULL, 0, WISP_INFINITY, &fd, 4, &info);
	int rounds = 0;
	for (int i = 0; i < 3; i++) {
		char buf[16];
		uint32_t n = 0, w = 0;
		if (wisp_net_read(fd, buf, sizeof(buf), 5000 * MS, &n) != 0 || n == 0 ||
		    wisp_net_write(fd, buf, n, 5000 * MS, &w) != 0)
			break;
		rounds++;
	}
	wisp_send(info.from, 2, &rounds, sizeof(rounds));
}

/* The client end: three round trips, then tells its parent. */
static void client(const void *arg, uint32_t len)
{
	(void)len;
	wisp_pid_t parent;
	memcpy(&parent, arg, sizeof(parent));
	struct wisp_msg_info info;
	int32_t fd;
	wisp_receive(NULL, 0, WISP_INFINITY, &fd, 4, &info);
	int ok = 0;
	for (int i = 0; i < 3; i++) {
		char out[8], in[8];
		uint32_t n = 0;
		snprintf(out, sizeof(out), "r%d", i);
		wisp_net_write(fd, out, 2, 5000 * MS, &n);
		if (wisp_net_read(fd, in, sizeof(in), 5000 * MS, &n) == 0 && n == 2 &&
		    !memcmp(in, out, 2))
			ok++;
	}
	wisp_send(parent, 3, &ok, sizeof(ok));
}

int main(int argc, char **argv)
{
	const char *c = argc > 1 ? argv[1] : "";
	int32_t fd, fd2, conn;
	unsigned port;
	uint32_t n;
	if (!strcmp(c, "refused")) {
		/* a port nobody listens on: listen, learn it, close it */
		listen_any(&fd, &port);
		close(fd);
		printf("connect: %d\n", wisp_tcp_connect(L("127.0.0.1"), port, 2000 * MS, &conn));
	} else if (!strcmp(c, "inuse")) {
		listen_any(&fd, &port);
		printf("second listen: %d\n", wisp_tcp_listen(L("127.0.0.1"), port, 16, &fd2));
	} else if (!strcmp(c, "badaddr")) {
		printf("listen: %d\n", wisp_tcp_listen(L("not-an-address"), 80, 16, &fd));
		printf("port: %d\n", wisp_tcp_listen(L("127.0.0.1"), 70000, 16, &fd));
	} else if (!strcmp(c, "timeouts")) {
		listen_any(&fd, &port);
		printf("accept: %d\n", wisp_tcp_accept(fd, 100 * MS, &conn));
		wisp_tcp_connect(L("127.0.0.1"), port, 2000 * MS, &fd2);
		wisp_tcp_accept(fd, 2000 * MS, &conn);
		char b[8];
		printf("read: %d\n", wisp_net_read(conn, b, sizeof(b), 100 * MS, &n));
	} else if (!strcmp(c, "halfclose")) {
		listen_any(&fd, &port);
		wisp_tcp_connect(L("127.0.0.1"), port, 2000 * MS, &fd2);
		wisp_tcp_accept(fd, 2000 * MS, &conn);
		wisp_net_write(fd2, "bye", 3, WISP_INFINITY, &n);
		close(fd2);
		char b[8];
		int rc = wisp_net_read(conn, b, sizeof(b), 2000 * MS, &n);
		printf("read: %d n=%u '%.*s'\n", rc, n, (int)n, b);
		rc = wisp_net_read(conn, b, sizeof(b), 2000 * MS, &n);
		printf("read after close: %d n=%u\n", rc, n);
		/* writing to a connection the peer closed: an error, not SIGPIPE */
		int w1 = wisp_net_write(conn, "x", 1, WISP_INFINITY, &n);
		usleep(50000);
		int w2 = wisp_net_write(conn, "y", 1, WISP_INFINITY, &n);
		printf("writes after peer close: %d then %s\n", w1, w2 != 0 ? "error" : "ok");
	} else if (!strcmp(c, "moved")) {
		listen_any(&fd, &port);
		wisp_tcp_connect(L("127.0.0.1"), port, 2000 * MS, &fd2);
		wisp_tcp_accept(fd, 2000 * MS, &conn);
		wisp_pid_t pid = wisp_spawn(holder, NULL, 0);
		printf("send_fd: %d\n", wisp_send_fd(pid, 1, conn));
		printf("use after move: %d\n", wisp_net_write(conn, "x", 1, 0, &n));
		printf("send_fd again: %d\n", wisp_send_fd(pid, 1, conn));
		printf("send_fd of stdout: %d\n", wisp_send_fd(pid, 1, 1));
		fflush(stdout);
		wisp_net_write(fd2, "hi", 2, WISP_INFINITY, &n);
		wisp_sleep(300 * MS);
	} else if (!strcmp(c, "handoff")) {
		/* This process waits on the socket first (registering it with
		 * the reactor, its wait ending in a timeout), then hands it to
		 * an echoer and waits on nothing but its mailbox: the socket's
		 * readiness must reach the echoer. */
		listen_any(&fd, &port);
		wisp_tcp_connect(L("127.0.0.1"), port, 2000 * MS, &fd2);
		wisp_tcp_accept(fd, 2000 * MS, &conn);
		char b[4];
		printf("wait here first: %d\n", wisp_net_read(conn, b, sizeof(b), 20 * MS, &n));
		wisp_pid_t e = wisp_spawn(echoer, NULL, 0);
		wisp_pid_t self = wisp_self();
		wisp_pid_t cl = wisp_spawn(client, &self, sizeof(self));
		printf("send_fd: %d %d\n", wisp_send_fd(e, 1, conn), wisp_send_fd(cl, 1, fd2));
		struct wisp_msg_info info;
		int got = -1;
		uint64_t tag = 3;
		printf("client: %d ", wisp_receive(&tag, 1, 10000 * MS, &got, sizeof(got), &info));
		printf("%d round trips\n", got);
		tag = 2;
		printf("echoer: %d ", wisp_receive(&tag, 1, 10000 * MS, &got, sizeof(got), &info));
		printf("%d round trips\n", got);
	} else if (!strcmp(c, "reuse")) {
		/* A socket waited on and closed; the next one (under the same
		 * host fd number, the lowest free) is waited on at once. */
		listen_any(&fd, &port);
		int ok = 0;
		for (int i = 0; i < 20; i++) {
			int32_t c1, a1;
			wisp_tcp_connect(L("127.0.0.1"), port, 2000 * MS, &c1);
			wisp_tcp_accept(fd, 2000 * MS, &a1);
			char b[4];
			int t = wisp_net_read(a1, b, sizeof(b), 5 * MS, &n);
			wisp_net_write(c1, "z", 1, WISP_INFINITY, &n);   /* to a socket closing */
			close(a1);
			close(c1);
			int32_t c2, a2;
			wisp_tcp_connect(L("127.0.0.1"), port, 2000 * MS, &c2);
			wisp_tcp_accept(fd, 2000 * MS, &a2);
			wisp_net_write(c2, "k", 1, WISP_INFINITY, &n);
			int r = wisp_net_read(a2, b, sizeof(b), 5000 * MS, &n);
			ok += t == 73 && r == 0 && n == 1 && b[0] == 'k';
			close(a2);
			close(c2);
		}
		printf("reused: %d of 20\n", ok);
	} else if (!strcmp(c, "urgent")) {
		/* While this waits in its first read, the test's client sends
		 * "ab", urgent "c" and "de" at once: the read wakes, stops at
		 * the urgent mark, short, with "de" still queued and no edge
		 * to come. */
		listen_any(&fd, &port);
		printf("port %u\n", port);
		fflush(stdout);
		wisp_tcp_accept(fd, 10000 * MS, &conn);
		printf("reading\n");
		fflush(stdout);
		char b[16];
		int r1 = wisp_net_read(conn, b, sizeof(b), 3000 * MS, &n);
		printf("read1: %d '%.*s'\n", r1, r1 ? 0 : (int)n, b);
		int r2 = wisp_net_read(conn, b, sizeof(b), 3000 * MS, &n);
		printf("read2: %d '%.*s'\n", r2, r2 ? 0 : (int)n, b);
	} else if (!strcmp(c, "udp")) {
		int32_t a, b;
		wisp_udp_bind(L("127.0.0.1"), 0, &a);
		wisp_udp_bind(L("127.0.0.1"), 0, &b);
		char t[64];
		uint32_t tl, pa = 0, pb = 0;
		wisp_net_local_addr(a, t, sizeof(t), &tl, &pa);
		wisp_net_local_addr(b, t, sizeof(t), &tl, &pb);
		printf("send: %d\n", wisp_udp_send_to(a, "ping", 4, L("127.0.0.1"), pb, WISP_INFINITY, &n));
		char buf[16], from[64];
		uint32_t fl = 0, fp = 0;
		int rc = wisp_udp_recv_from(b, buf, sizeof(buf), 2000 * MS, &n, from, sizeof(from), &fl, &fp);
		printf("recv: %d '%.*s' from %.*s same port %s\n", rc, (int)n, buf, (int)fl, from,
		       fp == pa ? "yes" : "no");
		printf("connect: %d\n", wisp_udp_connect(b, L("127.0.0.1"), pa));
		printf("reply: %d\n", wisp_udp_send_to(b, "pong", 4, NULL, 0, 0, WISP_INFINITY, &n));
		rc = wisp_udp_recv_from(a, buf, sizeof(buf), 2000 * MS, &n, from, sizeof(from), &fl, &fp);
		printf("recv: %d '%.*s'\n", rc, (int)n, buf);
		printf("timeout: %d\n", wisp_udp_recv_from(a, buf, sizeof(buf), 50 * MS, &n, from, sizeof(from), &fl, &fp));
		printf("tcp call on udp: %d\n", wisp_net_read(a, buf, 4, 0, &n));
	} else if (!strcmp(c, "dns")) {
		char buf[512];
		uint32_t used = 0, count = 0;
		int rc = wisp_resolve(L("localhost"), buf, sizeof(buf), &used, &count);
		int has = 0;
		for (uint32_t off = 0; off < used; off += (uint32_t)strlen(buf + off) + 1)
			has |= !strcmp(buf + off, "127.0.0.1") || !strcmp(buf + off, "::1");
		printf("localhost: %d loopback %s\n", rc, has ? "yes" : "no");
		printf("missing: %d\n", wisp_resolve(L("no-such-host.invalid"), buf, sizeof(buf), &used, &count));
		printf("empty: %d\n", wisp_resolve("", 0, buf, sizeof(buf), &used, &count));
		printf("small buffer: %d\n", wisp_resolve(L("localhost"), buf, 2, &used, &count));
	} else if (!strcmp(c, "poll")) {
		/* The child polls (WASI poll_oneoff on a socket) while this process
		 * must keep running on the same scheduler to write to it. */
		listen_any(&fd, &port);
		wisp_tcp_connect(L("127.0.0.1"), port, 2000 * MS, &fd2);
		wisp_tcp_accept(fd, 2000 * MS, &conn);
		wisp_pid_t pid = wisp_spawn(poller, NULL, 0);
		wisp_send_fd(pid, 1, conn);
		wisp_sleep(200 * MS);
		printf("parent writes: %d\n", wisp_net_write(fd2, "!", 1, WISP_INFINITY, &n));
		fflush(stdout);
		wisp_sleep(300 * MS);
	} else if (!strcmp(c, "ipv6")) {
		int rc = wisp_tcp_listen(L("::1"), 0, 16, &fd);
		char t[64];
		uint32_t tl = 0, p = 0;
		wisp_net_local_addr(fd, t, sizeof(t), &tl, &p);
		printf("listen: %d on %.*s\n", rc, (int)tl, t);
		printf("connect: %d\n", wisp_tcp_connect(L("::1"), p, 2000 * MS, &fd2));
		wisp_tcp_accept(fd, 2000 * MS, &conn);
		wisp_net_write(fd2, "six", 3, WISP_INFINITY, &n);
		char b[8];
		wisp_net_read(conn, b, sizeof(b), 2000 * MS, &n);
		wisp_net_peer_addr(conn, t, sizeof(t), &tl, &p);
		printf("read '%.*s' from %.*s\n", (int)n, b, (int)tl, t);
	} else if (!strcmp(c, "notsock")) {
		char b[4];
		printf("read stdout: %d\n", wisp_net_read(1, b, 4, 0, &n));
		printf("read bad fd: %d\n", wisp_net_read(999, b, 4, 0, &n));
		struct wisp_msg_info info;
		printf("receive_fd on stdout: %d\n", wisp_receive_fd(NULL, 0, 1, 0, b, 4, &info));
	} else {
		fprintf(stderr, "unknown case\n");
		return 2;
	}
	return 0;
}
