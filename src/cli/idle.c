/*
 * idle.c — how long each of `wisp serve`'s connections has been idle, from
 * the kernel's own books: the sweep behind --idle-timeout (serve.c).
 *
 * A connection is idle while no data crosses it in either direction. The
 * kernel keeps, for every TCP socket, when data was last sent and last
 * received (struct tcp_info: tcpi_last_data_sent, tcpi_last_data_recv;
 * zero-window probes and bare ACKs do not count), and sock_diag
 * (NETLINK_SOCK_DIAG) reports them for all the sockets of the listener's
 * port in one dump, filtered by the kernel on the port. A sweep thus costs
 * one dump, linear in the connections, and serving costs nothing at all
 * per byte: no hook in the programs' reads and writes, no fd per
 * connection. Those timestamps start when the handshake ends, and a
 * connection may wait in the listen backlog long before it is accepted
 * (at the connection limit): so a connection's idle time is counted from
 * when it was added at the earliest, or a client that waited its turn
 * would be cut the moment it got it.
 *
 * A connection is known by its socket's cookie (SO_COOKIE: unique while
 * the kernel runs, never reused as fd numbers and inode numbers are),
 * taken before its fd goes to the program. A sweep matches the dump to
 * the connections by cookie (an index rebuilt per sweep: connections only
 * come and go between sweeps, on the same thread). A connection absent
 * from the dump, or in it as an orphan (no fd holds it: inode 0), is
 * closed on the server's side (its program ended or closed it) and is
 * forgotten. The dump has every state a socket an fd holds may be in once
 * established, the FIN_WAITs included: a program that shut its side down
 * (shutdown(SHUT_WR), a "lingering close") and waits for its client is
 * still the server's, and may idle. One idle for the timeout is reported
 * until the caller has dealt with it (once, but for a failure); it stays
 * watched until its socket goes.
 *
 * Rejected: a timer per connection re-armed by every read and write (a
 * hook on the programs' hottest calls, blind to a program that stopped
 * calling them); a copy of each socket kept by the server to query (an fd
 * more per connection, and the client would see end of file only when the
 * server closed its copy, not when the program ended).
 */
#include "idle.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

/* A dump's messages arrive in batches of at most this many bytes. */
#define IDLE_BUF (64u * 1024)
/* The kernel answers a dump at once; a receive waits at most this long. */
#define IDLE_RECV_TIMEOUT_MS 2000

struct conn {
	uint64_t cookie;
	uint64_t pid;
	uint64_t added_ms;   /* when it was added (CLOCK_MONOTONIC) */
	bool seen;       /* in this sweep's dump, held by an fd */
	bool cut;        /* reported idle, and dealt with */
};

struct idle {
	int nl;                  /* the NETLINK_SOCK_DIAG socket */
	int family;              /* the listener's: AF_INET or AF_INET6 */
	uint16_t port;           /* the listener's, host order */
	uint32_t seq;            /* the current dump's (late replies ignored) */
	uint64_t now_ms;         /* the current sweep's start (CLOCK_MONOTONIC) */
	struct conn *v;
	size_t n, cap;
	uint32_t *index;         /* per sweep: v's positions + 1 by cookie, 0 free */
	size_t index_cap;        /* a power of two, at least 2n */
	unsigned char *buf;      /* IDLE_BUF bytes */
};

static uint64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

uint64_t idle_cookie(int fd)
{
	uint64_t cookie = 0;
	socklen_t len = sizeof(cookie);
	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len) != 0 || len != sizeof(cookie))
		return 0;
	return cookie;
}

/* The states of a connection an fd may still hold: established, and each
 * side's half-close (FIN_WAIT1/2 the server's, CLOSE_WAIT the client's,
 * CLOSING and LAST_ACK both). */
#define HELD_STATES \
	(1u << TCP_ESTABLISHED | 1u << TCP_CLOSE_WAIT | 1u << TCP_FIN_WAIT1 | \
	 1u << TCP_FIN_WAIT2 | 1u << TCP_CLOSING | 1u << TCP_LAST_ACK)

/* Ask for the TCP sockets of w's port in HELD_STATES, with their
 * tcp_info: 0 or -errno. */
static int ask(struct idle *w)
{
	struct {
		struct nlmsghdr nh;
		struct inet_diag_req_v2 r;
		struct nlattr bc;
		struct inet_diag_bc_op op[2];   /* "source port == w->port" */
	} q;
	memset(&q, 0, sizeof(q));
	q.nh.nlmsg_len = sizeof(q);
	q.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	q.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	q.nh.nlmsg_seq = ++w->seq;
	q.r.sdiag_family = (uint8_t)w->family;
	q.r.sdiag_protocol = IPPROTO_TCP;
	q.r.idiag_states = HELD_STATES;
	q.r.idiag_ext = 1u << (INET_DIAG_INFO - 1);
	q.bc.nla_len = NLA_HDRLEN + sizeof(q.op);
	q.bc.nla_type = INET_DIAG_REQ_BYTECODE;
	/* Equal: jump past the end (accept); not: past it by 4 (reject). */
	q.op[0] = (struct inet_diag_bc_op){ INET_DIAG_BC_S_EQ, sizeof(q.op), sizeof(q.op) + 4 };
	q.op[1].no = w->port;
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	ssize_t sent = sendto(w->nl, &q, sizeof(q), 0, (struct sockaddr *)&kernel, sizeof(kernel));
	return sent == (ssize_t)sizeof(q) ? 0 : sent < 0 ? -errno : -EIO;
}

static size_t slot_of(const struct idle *w, uint64_t cookie)
{
	return (size_t)((cookie * 0x9E3779B97F4A7C15ull) >> 32) & (w->index_cap - 1);
}

/* Index w->v by cookie: 0 or -ENOMEM. */
static int index_build(struct idle *w)
{
	size_t cap = 16;
	while (cap < 2 * w->n)
		cap *= 2;
	if (cap != w->index_cap) {
		uint32_t *ix = realloc(w->index, cap * sizeof(*ix));
		if (ix == NULL)
			return -ENOMEM;
		w->index = ix;
		w->index_cap = cap;
	}
	memset(w->index, 0, cap * sizeof(*w->index));
	for (size_t i = 0; i < w->n; i++) {
		size_t s = slot_of(w, w->v[i].cookie);
		while (w->index[s] != 0)
			s = (s + 1) & (cap - 1);
		w->index[s] = (uint32_t)i + 1;
		w->v[i].seen = false;
	}
	return 0;
}

static struct conn *find(struct idle *w, uint64_t cookie)
{
	for (size_t s = slot_of(w, cookie); w->index[s] != 0; s = (s + 1) & (w->index_cap - 1))
		if (w->v[w->index[s] - 1].cookie == cookie)
			return &w->v[w->index[s] - 1];
	return NULL;
}

/* One socket of the dump: mark its connection seen (unless no fd holds
 * it any more), and cut it if idle. */
static void visit(struct idle *w, const struct nlmsghdr *nh, uint32_t timeout_ms,
                  idle_cut_fn *cut, void *ctx)
{
	if (nh->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
		return;
	const struct inet_diag_msg *d = NLMSG_DATA(nh);
	struct conn *c = find(w, d->id.idiag_cookie[0] | (uint64_t)d->id.idiag_cookie[1] << 32);
	if (c == NULL || d->idiag_inode == 0)
		return;   /* (not ours, or an orphan: closed on the server's side) */
	c->seen = true;
	int len = (int)(nh->nlmsg_len - NLMSG_LENGTH(sizeof(*d)));
	for (const struct rtattr *a = (const struct rtattr *)(d + 1); RTA_OK(a, len);
	     a = RTA_NEXT(a, len)) {
		if (a->rta_type != INET_DIAG_INFO)
			continue;
		struct tcp_info ti;
		memset(&ti, 0, sizeof(ti));
		size_t have = RTA_PAYLOAD(a) < sizeof(ti) ? RTA_PAYLOAD(a) : sizeof(ti);
		memcpy(&ti, RTA_DATA(a), have);
		if (have < offsetof(struct tcp_info, tcpi_last_data_recv) + sizeof(uint32_t))
			return;
		uint32_t idle_ms = ti.tcpi_last_data_sent < ti.tcpi_last_data_recv
		                   ? ti.tcpi_last_data_sent : ti.tcpi_last_data_recv;
		uint64_t served_ms = w->now_ms > c->added_ms ? w->now_ms - c->added_ms : 0;
		if (served_ms < idle_ms)
			idle_ms = (uint32_t)served_ms;   /* (it waited in the backlog) */
		if (idle_ms >= timeout_ms && !c->cut)
			c->cut = cut(ctx, c->pid, idle_ms);
		return;
	}
}

/* Read the dump ask() asked for: 1 at its end, 0 for more, or -errno. */
static int read_batch(struct idle *w, uint32_t timeout_ms, idle_cut_fn *cut, void *ctx)
{
	ssize_t got;
	do
		got = recv(w->nl, w->buf, IDLE_BUF, 0);
	while (got < 0 && errno == EINTR);
	if (got < 0)
		return errno == EAGAIN ? -ETIMEDOUT : -errno;
	int left = (int)got;
	for (const struct nlmsghdr *nh = (const struct nlmsghdr *)w->buf; NLMSG_OK(nh, left);
	     nh = NLMSG_NEXT(nh, left)) {
		if (nh->nlmsg_seq != w->seq)
			continue;   /* (the rest of a dump given up on) */
		if (nh->nlmsg_type == NLMSG_DONE)
			return 1;
		if (nh->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *e = NLMSG_DATA(nh);
			return nh->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) && e->error < 0 ? e->error : -EIO;
		}
		if (nh->nlmsg_type == SOCK_DIAG_BY_FAMILY)
			visit(w, nh, timeout_ms, cut, ctx);
	}
	return 0;
}

int idle_sweep(struct idle *w, uint32_t timeout_ms, idle_cut_fn *cut, void *ctx)
{
	if (w->n == 0)
		return 0;
	w->now_ms = now_ms();
	int rc = index_build(w);
	if (rc == 0)
		rc = ask(w);
	while (rc == 0)
		rc = read_batch(w, timeout_ms, cut, ctx);
	if (rc < 0)
		return rc;
	size_t kept = 0;
	for (size_t i = 0; i < w->n; i++)
		if (w->v[i].seen)
			w->v[kept++] = w->v[i];
	w->n = kept;
	return 0;
}

int idle_add(struct idle *w, uint64_t cookie, uint64_t pid)
{
	if (w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 64;
		struct conn *v = cap <= UINT32_MAX ? realloc(w->v, cap * sizeof(*v)) : NULL;
		if (v == NULL)
			return -ENOMEM;
		w->v = v;
		w->cap = cap;
	}
	w->v[w->n++] = (struct conn){ cookie, pid, now_ms(), false, false };
	return 0;
}

size_t idle_count(const struct idle *w)
{
	return w->n;
}

/* Whether the kernel answers a dump for w (it may lack sock_diag, or
 * refuse it to this process): 0 or -errno. */
static int probe(struct idle *w)
{
	int rc = index_build(w);   /* (empty: nothing matches) */
	if (rc == 0)
		rc = ask(w);
	while (rc == 0)
		rc = read_batch(w, UINT32_MAX, NULL, NULL);
	return rc < 0 ? rc : 0;
}

struct idle *idle_new(int listen_fd, char *err, size_t errlen)
{
	struct sockaddr_storage a;
	socklen_t alen = sizeof(a);
	if (getsockname(listen_fd, (struct sockaddr *)&a, &alen) != 0 ||
	    (a.ss_family != AF_INET && a.ss_family != AF_INET6)) {
		snprintf(err, errlen, "the listening socket is not TCP over IP");
		return NULL;
	}
	struct idle *w = calloc(1, sizeof(*w));
	if (w == NULL || (w->buf = malloc(IDLE_BUF)) == NULL) {
		snprintf(err, errlen, "out of memory");
		free(w);
		return NULL;
	}
	w->family = a.ss_family;
	w->port = ntohs(a.ss_family == AF_INET ? ((struct sockaddr_in *)&a)->sin_port
	                                       : ((struct sockaddr_in6 *)&a)->sin6_port);
	struct timeval tv = { IDLE_RECV_TIMEOUT_MS / 1000, (IDLE_RECV_TIMEOUT_MS % 1000) * 1000 };
	w->nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	int rc = w->nl < 0 ? -errno
	       : setsockopt(w->nl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ? -errno
	       : probe(w);
	if (rc != 0) {
		snprintf(err, errlen, "the kernel does not report its TCP sockets (sock_diag): %s",
		         strerror(-rc));
		idle_free(w);
		return NULL;
	}
	return w;
}

void idle_free(struct idle *w)
{
	if (w == NULL)
		return;
	if (w->nl >= 0)
		close(w->nl);
	free(w->v);
	free(w->index);
	free(w->buf);
	free(w);
}
