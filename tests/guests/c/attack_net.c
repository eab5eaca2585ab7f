/*
 * attack_net.c — hostile uses of wisp_net (tests/e2e/test_attacks_round2.py).
 *
 * Cases (argv[1]):
 *   connect_killed N  listens on 127.0.0.1 with a backlog of 1 and never
 *                     accepts, fills the backlog, then N children, one
 *                     after another, each parked in a tcp_connect the full
 *                     backlog never completes, killed there (the socket
 *                     being connected was the host's, out of every table:
 *                     it leaked). Then one more socket: "udp: <errno>".
 *   dns NAME          resolve NAME (without --allow-dns: denied, and -v
 *                     logs the name).
 *   hoard             a child whose fd limit is 8 makes UDP sockets and
 *                     sends each to itself (never receiving them) until it
 *                     cannot make another; then the main process makes one.
 *                     A socket in a mailbox was in no table: the child held
 *                     every fd guests may have.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wisp/guest.h>

struct target {
	wisp_pid_t parent;
	uint32_t port;
};

static void connector(const void *arg, uint32_t len)
{
	(void)len;
	struct target t;
	memcpy(&t, arg, sizeof t);
	wisp_send(t.parent, 1, NULL, 0);
	int32_t fd;
	wisp_tcp_connect("127.0.0.1", 9, t.port, WISP_INFINITY, &fd);
	wisp_send(t.parent, 2, NULL, 0);   /* connected or refused: not parked */
}

static int connect_killed(int n)
{
	int32_t lfd;
	char addr[64];
	uint32_t alen, port;
	if (wisp_tcp_listen("127.0.0.1", 9, 0, 1, &lfd) != 0 ||
	    wisp_net_local_addr(lfd, addr, sizeof addr, &alen, &port) != 0)
		return 2;
	/* Fill the accept queue: connects that complete, then ones that time
	 * out (their SYNs dropped): from then on every connect waits. */
	int timeouts = 0;
	for (int i = 0; i < 64 && timeouts < 2; i++) {
		int32_t fd;
		int rc = wisp_tcp_connect("127.0.0.1", 9, port, 20 * 1000000LL, &fd);
		if (rc == 73)
			timeouts++;
		else if (rc != 0)
			return 3;
	}
	if (timeouts < 2)
		return 4;
	struct target me = { wisp_self(), port };
	struct wisp_msg_info info;
	char b[8];
	int parked = 0;
	for (int i = 0; i < n; i++) {
		uint64_t ref;
		wisp_pid_t child = wisp_spawn_monitor(connector, &me, sizeof me, &ref);
		uint64_t ready = 1;
		if (child == 0 || wisp_receive(&ready, 1, WISP_INFINITY, b, sizeof b, &info) != WISP_OK)
			return 5;
		/* Let it reach the connect and park there. */
		wisp_sleep(1000000LL);
		wisp_kill(child);
		if (wisp_receive(&ref, 1, WISP_INFINITY, b, sizeof b, &info) != WISP_OK)
			return 6;
		uint64_t done = 2;
		if (wisp_receive(&done, 1, WISP_NOWAIT, b, sizeof b, &info) == WISP_ETIMEDOUT)
			parked++;
	}
	int32_t ufd;
	printf("parked %d of %d\n", parked, n);
	printf("udp: %d\n", wisp_udp_bind("127.0.0.1", 9, 0, &ufd));
	return 0;
}

static void hoarder(const void *arg, uint32_t len)
{
	(void)len;
	wisp_pid_t parent;
	memcpy(&parent, arg, sizeof parent);
	int n = 0;
	int32_t fd;
	int rc;
	while ((rc = wisp_udp_bind("127.0.0.1", 9, 0, &fd)) == 0 && n < 100000) {
		if (wisp_send_fd(wisp_self(), 1, fd) != WISP_OK)
			break;
		n++;
	}
	printf("child: udp_bind %d after %d sockets sent to itself\n", rc, n);
	fflush(stdout);
	/* Hold them (the sockets' tag is 1) while the parent looks. */
	uint64_t never = 6;
	struct wisp_msg_info info;
	char b[8];
	wisp_send(parent, 5, NULL, 0);
	wisp_receive(&never, 1, WISP_INFINITY, b, sizeof b, &info);
}

static int hoard(void)
{
	int32_t h, fd;
	wisp_pid_t me = wisp_self();
	struct wisp_spawned s;
	struct wisp_msg_info info;
	char b[8];
	uint64_t done = 5;
	if (wisp_caps_new(&h) != WISP_OK || wisp_caps_limit(h, WISP_LIMIT_FDS, 8) != WISP_OK ||
	    wisp_spawn_with(h, (uint32_t)(uintptr_t)hoarder, &me, sizeof me, 0, &s) != WISP_OK ||
	    wisp_receive(&done, 1, WISP_INFINITY, b, sizeof b, &info) != WISP_OK)
		return 2;
	printf("main: udp_bind %d\n", wisp_udp_bind("127.0.0.1", 9, 0, &fd));
	return 0;
}

int main(int argc, char **argv)
{
	const char *c = argc > 1 ? argv[1] : "";
	if (!strcmp(c, "connect_killed") && argc > 2)
		return connect_killed(atoi(argv[2]));
	if (!strcmp(c, "hoard"))
		return hoard();
	if (!strcmp(c, "dns") && argc > 2) {
		char buf[256];
		uint32_t used, count;
		printf("dns: %d\n", wisp_resolve(argv[2], (uint32_t)strlen(argv[2]), buf, sizeof buf,
		                                 &used, &count));
		return 0;
	}
	fprintf(stderr, "unknown case\n");
	return 1;
}
