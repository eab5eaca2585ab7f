/*
 * test_idle.c — `wisp serve`'s idle sweep (src/cli/idle.c) on real TCP
 * connections over loopback: the kernel's report reaches the right
 * connections, a cut is reported until dealt with and then never again,
 * connections closed on the server's side are forgotten (but not those it
 * only half-closed), idle time counts from a connection's accept, and
 * sockets of other ports are not the sweep's.
 */
#include "unit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli/idle.h"

#define NCONNS 200

struct pair {
	int client, server;
};

/* A listener on an ephemeral loopback port (family AF_INET or AF_INET6),
 * or -1 if the host has no such loopback. */
static int listener(int family)
{
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in v4 = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in6 v6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	int rc = family == AF_INET ? bind(fd, (struct sockaddr *)&v4, sizeof(v4))
	                           : bind(fd, (struct sockaddr *)&v6, sizeof(v6));
	if (rc != 0 || listen(fd, NCONNS) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static struct pair connect_to(int lfd)
{
	struct sockaddr_storage a;
	socklen_t len = sizeof(a);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
	struct pair p = { socket(a.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), -1 };
	assert_true(p.client >= 0);
	assert_int_equal(connect(p.client, (struct sockaddr *)&a, len), 0);
	p.server = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(p.server >= 0);
	return p;
}

static void close_pair(struct pair *p)
{
	close(p->client);
	close(p->server);
	p->client = p->server = -1;
}

struct cuts {
	unsigned count[NCONNS + 1];   /* by pid (1..NCONNS) */
	unsigned total;
};

static bool record(void *ctx, uint64_t pid, uint32_t idle_ms)
{
	(void)idle_ms;
	struct cuts *c = ctx;
	assert_true(pid >= 1 && pid <= NCONNS);
	c->count[pid]++;
	c->total++;
	return true;
}

/* A cut that could not be dealt with (declines): asked again next time. */
static bool decline(void *ctx, uint64_t pid, uint32_t idle_ms)
{
	record(ctx, pid, idle_ms);
	return false;
}

/* With a timeout of 0 every connection is idle: each is reported until
 * dealt with, then never again; a large timeout reports none; closing a
 * connection on the server's side makes the next sweep forget it. */
static void sweep_reports_each_once_and_forgets_closed_ones(int family)
{
	int lfd = listener(family);
	if (lfd < 0) {
		assert_int_equal(family, AF_INET6);   /* (no IPv6 loopback here) */
		return;
	}
	char err[256];
	struct idle *w = idle_new(lfd, err, sizeof(err));
	assert_non_null(w);
	static struct pair p[NCONNS];
	for (int i = 0; i < NCONNS; i++) {
		p[i] = connect_to(lfd);
		uint64_t cookie = idle_cookie(p[i].server);
		assert_true(cookie != 0);
		assert_int_equal(idle_add(w, cookie, (uint64_t)i + 1), 0);
	}
	/* Data crossing now: not idle for a minute. */
	assert_int_equal(write(p[0].client, "x", 1), 1);
	struct cuts c;
	memset(&c, 0, sizeof(c));
	assert_int_equal(idle_sweep(w, 60000, record, &c), 0);
	assert_int_equal(c.total, 0);
	assert_int_equal(idle_count(w), NCONNS);

	assert_int_equal(idle_sweep(w, 0, decline, &c), 0);
	assert_int_equal(c.total, NCONNS);
	memset(&c, 0, sizeof(c));
	assert_int_equal(idle_sweep(w, 0, record, &c), 0);   /* asked again */
	assert_int_equal(c.total, NCONNS);
	for (int pid = 1; pid <= NCONNS; pid++)
		assert_int_equal(c.count[pid], 1);
	assert_int_equal(idle_sweep(w, 0, record, &c), 0);
	assert_int_equal(c.total, NCONNS);          /* once each */
	assert_int_equal(idle_count(w), NCONNS);    /* still open: still watched */

	for (int i = 0; i < NCONNS; i += 2)
		close_pair(&p[i]);
	assert_int_equal(idle_sweep(w, 0, record, &c), 0);
	assert_int_equal(idle_count(w), NCONNS / 2);
	/* The server's side alone closed (the client still holds its end):
	 * forgotten too, it is no longer the server's to cut. */
	for (int i = 1; i < NCONNS; i += 2) {
		close(p[i].server);
		p[i].server = -1;
	}
	assert_int_equal(idle_sweep(w, 0, record, &c), 0);
	assert_int_equal(idle_count(w), 0);
	assert_int_equal(c.total, NCONNS);
	for (int i = 1; i < NCONNS; i += 2)
		close(p[i].client);
	idle_free(w);
	close(lfd);
}

static void sweep_ipv4(void **state)
{
	(void)state;
	sweep_reports_each_once_and_forgets_closed_ones(AF_INET);
}

static void sweep_ipv6(void **state)
{
	(void)state;
	sweep_reports_each_once_and_forgets_closed_ones(AF_INET6);
}

/* The kernel filters the report on the listener's port: a connection of
 * another listener is never in it (forgotten at the first sweep, never
 * cut), even though it is open and idle. */
static void other_ports_are_not_in_the_report(void **state)
{
	(void)state;
	int mine = listener(AF_INET), other = listener(AF_INET);
	assert_true(mine >= 0 && other >= 0);
	char err[256];
	struct idle *w = idle_new(mine, err, sizeof(err));
	assert_non_null(w);
	struct pair in = connect_to(mine), out = connect_to(other);
	assert_int_equal(idle_add(w, idle_cookie(in.server), 1), 0);
	assert_int_equal(idle_add(w, idle_cookie(out.server), 2), 0);
	struct cuts c;
	memset(&c, 0, sizeof(c));
	assert_int_equal(idle_sweep(w, 0, record, &c), 0);
	assert_int_equal(c.total, 1);
	assert_int_equal(c.count[1], 1);
	assert_int_equal(idle_count(w), 1);
	close_pair(&in);
	close_pair(&out);
	idle_free(w);
	close(mine);
	close(other);
}

/* A connection the server shut its side of (shutdown(SHUT_WR): a program
 * that said all it had to say and waits for its client) is still the
 * server's: watched, and cut when idle. It was forgotten (the socket left
 * ESTABLISHED for FIN_WAIT2), and its program held its slot for ever.
 * Once the server's fd is closed, the orphan is forgotten. */
static void a_half_closed_connection_is_still_watched(void **state)
{
	(void)state;
	int lfd = listener(AF_INET);
	assert_true(lfd >= 0);
	char err[256];
	struct idle *w = idle_new(lfd, err, sizeof(err));
	assert_non_null(w);
	struct pair p = connect_to(lfd);
	assert_int_equal(idle_add(w, idle_cookie(p.server), 1), 0);
	assert_int_equal(shutdown(p.server, SHUT_WR), 0);
	char c;
	assert_int_equal(read(p.client, &c, 1), 0);   /* the client saw the FIN */
	struct cuts cuts;
	memset(&cuts, 0, sizeof(cuts));
	assert_int_equal(idle_sweep(w, 0, record, &cuts), 0);
	assert_int_equal(cuts.count[1], 1);
	assert_int_equal(idle_count(w), 1);
	close(p.server);
	assert_int_equal(idle_sweep(w, 0, record, &cuts), 0);
	assert_int_equal(idle_count(w), 0);
	close(p.client);
	idle_free(w);
	close(lfd);
}

/* A connection's idle time counts from when it was added (its accept),
 * not from its handshake: a client that waited in the backlog for its
 * turn (the connection limit reached) longer than the timeout was cut at
 * the first sweep after it got it. */
static void time_in_the_backlog_is_not_idle_time(void **state)
{
	(void)state;
	int lfd = listener(AF_INET);
	assert_true(lfd >= 0);
	char err[256];
	struct idle *w = idle_new(lfd, err, sizeof(err));
	assert_non_null(w);
	struct sockaddr_storage a;
	socklen_t len = sizeof(a);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
	int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(client, (struct sockaddr *)&a, len), 0);
	struct timespec wait = { 1, 200 * 1000 * 1000 };
	nanosleep(&wait, NULL);                       /* in the backlog */
	int server = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(server >= 0);
	assert_int_equal(idle_add(w, idle_cookie(server), 1), 0);
	struct cuts cuts;
	memset(&cuts, 0, sizeof(cuts));
	/* Idle 1.2 s by the kernel's books, a moment by the server's. */
	assert_int_equal(idle_sweep(w, 1000, record, &cuts), 0);
	assert_int_equal(cuts.total, 0);
	assert_int_equal(idle_sweep(w, 0, record, &cuts), 0);
	assert_int_equal(cuts.total, 1);
	close(server);
	close(client);
	idle_free(w);
	close(lfd);
}

/* What is not a TCP socket has no cookie, and cannot be listened on. */
static void non_sockets_are_refused(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_true(idle_cookie(p[0]) == 0);
	char err[256] = "";
	assert_null(idle_new(p[0], err, sizeof(err)));
	assert_non_null(strstr(err, "not TCP"));
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sweep_ipv4),
		cmocka_unit_test(sweep_ipv6),
		cmocka_unit_test(other_ports_are_not_in_the_report),
		cmocka_unit_test(a_half_closed_connection_is_still_watched),
		cmocka_unit_test(time_in_the_backlog_is_not_idle_time),
		cmocka_unit_test(non_sockets_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
