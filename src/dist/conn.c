/*
 * conn.c — the node's sockets: listening, connecting, handshakes, frames
 * and ticks.
 *
 * Reading is done by the schedulers: each connection's socket is armed,
 * one-shot, in the runtime's reactor, and the scheduler that polls reads
 * the frames and hands each to dist_frame(), so the processes they wake
 * run next on that thread ("reading, and tearing down" below says who may
 * read and who closes). Rejected: reading on the I/O thread (as before),
 * which cost two thread hand-offs per message received, a futex wake
 * each: a round trip between two nodes took twice BEAM's.
 *
 * One I/O thread per node waits (epoll) on the listening socket, the
 * sockets that hold output, and an eventfd. It accepts, flushes output a
 * socket could not take at once, and every tick (net_ticktime / 4) writes
 * a tick (an empty frame) on connections that sent nothing since the last
 * one and drops those that received nothing for a whole net_ticktime —
 * Erlang's rule, so a BEAM peer and this node agree on when a link is
 * dead.
 *
 * Writing is done by whoever sends (a process's thread, under the node's
 * lock): the frame goes straight to the socket if it takes it, else it is
 * queued and the I/O thread is asked to flush when the socket is writable.
 * So a message costs no thread hop, and order per connection is the order
 * of the lock. A peer that stops reading while we keep writing would grow
 * the queue without bound: past DIST_MAX_OUT the connection is dropped
 * (node down, links get noconnection), as a tick timeout would have; so
 * is one whose queue would take all queues past DIST_MAX_OUT_ALL (many
 * peers that stop reading, each below its own bound).
 *
 * Handshakes (and the EPMD lookup before a connect) block: each runs on a
 * thread of its own, bounded by the set-up time (7 s, OTP's
 * net_setuptime), so a slow or hostile peer delays nobody else; at most
 * DIST_MAX_DIALING of ours and DIST_MAX_ACCEPTING of peers' at once, two
 * bounds so that peers (who need no cookie to start one) cannot stop ours.
 * Stopping shuts their sockets down and waits for them. Input buffered
 * for frames not whole yet is bounded per peer (a frame) and in all, as
 * output is.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "dist_impl.h"
#include "epmd.h"
#include "wire.h"

#define SETUP_MS 7000
#define DIST_MAX_OUT (128u << 20)
#define DIST_MAX_OUT_ALL (1ull << 30)   /* queued for all connections */
#define DIST_MAX_IN_ALL (1ull << 30)    /* read for all, frames not whole yet */
#define READ_CHUNK 65536
#define READS_PER_EVENT 16     /* then other sockets get their turn */

int64_t conn_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- listening ---- */

int conn_listen(struct dist *d, char *err, size_t errlen)
{
	uint16_t lo = d->cfg.port_min, hi = d->cfg.port_max ? d->cfg.port_max : d->cfg.port_min;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errlen, "cannot listen for nodes: %s", strerror(errno));
		return -errno;
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	int rc = -EADDRINUSE;
	for (uint32_t p = lo; p <= hi; p++) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)p),
		                         .sin_addr.s_addr = htonl(INADDR_ANY) };
		if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
			rc = 0;
			break;
		}
		rc = -errno;
		if (p == 65535)
			break;
	}
	if (rc == 0 && listen(fd, 128) != 0)
		rc = -errno;
	if (rc != 0) {
		if (lo == 0)
			snprintf(err, errlen, "cannot listen for nodes: %s", strerror(-rc));
		else if (hi == lo)
			snprintf(err, errlen, "cannot listen for nodes on port %u: %s", lo, strerror(-rc));
		else
			snprintf(err, errlen, "cannot listen for nodes on ports %u-%u: %s", lo, hi,
			         strerror(-rc));
		close(fd);
		return rc;
	}
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	getsockname(fd, (struct sockaddr *)&a, &al);
	d->listen_fd = fd;
	d->port = ntohs(a.sin_port);
	return 0;
}

/* ---- handshakes ---- */

struct hs {
	struct dist *d;
	struct node *n;           /* connecting: the node dialled */
	int fd;                   /* accepting: the socket */
	bool replace;             /* accepting: answered "alive" (see accept_status) */
};

static void self_id(const struct dist *d, struct dist_id *me)
{
	memset(me, 0, sizeof(*me));
	snprintf(me->name, sizeof(me->name), "%s", d->name);
	me->flags = DIST_FLAGS_WISP;
	me->creation = d->creation;
}

/* Track a handshake's socket so stopping can cut it short. (There is
 * room for all: dials and accepts are bounded, see claim().) */
static bool hs_begin(struct dist *d, int fd)
{
	pthread_mutex_lock(&d->lock);
	bool ok = !atomic_load(&d->stopping) && d->nhs_fds < sizeof(d->hs_fds) / sizeof(d->hs_fds[0]);
	if (ok)
		d->hs_fds[d->nhs_fds++] = fd;
	pthread_mutex_unlock(&d->lock);
	return ok;
}

static void hs_end(struct dist *d, int fd)
{
	pthread_mutex_lock(&d->lock);
	for (uint32_t i = 0; i < d->nhs_fds; i++)
		if (d->hs_fds[i] == fd) {
			d->hs_fds[i] = d->hs_fds[--d->nhs_fds];
			break;
		}
	pthread_mutex_unlock(&d->lock);
}

/* Count one more connection being set up, dial or accept, unless as
 * many as may be are (DIST_MAX_DIALING, DIST_MAX_ACCEPTING): two bounds,
 * so that peers holding every accept slot (which takes no cookie) never
 * stop this node's own connects. */
static bool claim(struct dist *d, bool dial)
{
	pthread_mutex_lock(&d->lock);
	uint32_t *count = dial ? &d->ndialing : &d->naccepting;
	bool ok = *count < (dial ? DIST_MAX_DIALING : DIST_MAX_ACCEPTING);
	if (ok)
		(*count)++;
	pthread_mutex_unlock(&d->lock);
	return ok;
}

static void unclaim(struct dist *d, bool dial)
{
	pthread_mutex_lock(&d->lock);
	(*(dial ? &d->ndialing : &d->naccepting))--;
	pthread_mutex_unlock(&d->lock);
}

void conn_thread_done(struct dist *d)
{
	pthread_mutex_lock(&d->lock);
	d->handshakes--;
	pthread_cond_broadcast(&d->hs_done);
	pthread_mutex_unlock(&d->lock);
}

/* The socket of a connection to n: its port from EPMD or the name. */
static int dial_socket(struct dist *d, struct node *n, int64_t deadline, int *fd,
                       char *err, size_t errlen)
{
	const char *at = memchr(n->name, '@', n->nlen);
	char alive[256], host[256];
	size_t al = (size_t)(at - n->name);
	snprintf(alive, sizeof(alive), "%.*s", (int)al, n->name);
	snprintf(host, sizeof(host), "%.*s", (int)(n->nlen - al - 1), at + 1);
	pthread_mutex_lock(&n->lock);
	uint16_t port = n->port_hint;
	pthread_mutex_unlock(&n->lock);
	int rc = 0;
	if (port == 0 && d->cfg.no_epmd) {
		snprintf(err, errlen, "no port known for %s (without EPMD, connect to NAME@HOST:PORT)",
		         n->name);
		return -EHOSTUNREACH;
	}
	if (port == 0 && (rc = epmd_port_please(host, d->epmd_port, alive, &port, err, errlen)) != 0)
		return rc;
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res;
	char ps[8];
	snprintf(ps, sizeof(ps), "%u", port);
	if ((rc = getaddrinfo(host, ps, &hints, &res)) != 0) {
		snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(rc));
		return -EHOSTUNREACH;
	}
	rc = -EHOSTUNREACH;
	for (struct addrinfo *a = res; a != NULL; a = a->ai_next) {
		if ((rc = wire_connect(a->ai_addr, a->ai_addrlen, deadline, fd)) == 0)
			break;
	}
	freeaddrinfo(res);
	if (rc != 0)
		snprintf(err, errlen, "cannot connect to %s port %u: %s", host, port, strerror(-rc));
	return rc;
}

/* Our attempt to n was refused with status nok: the peer has an attempt
 * of its own to us under way (its name is the greater), which is to win.
 * As OTP's initiator does, wait for it rather than drop what is held for
 * n: until it is being accepted or is up, the set-up time runs out, or the
 * node stops. (A nok for another reason brings no attempt: the wait ends
 * at the deadline, and what is held is dropped then.) */
static void await_peer(struct dist *d, struct node *n, int64_t deadline)
{
	struct timespec ts = { .tv_sec = deadline / 1000, .tv_nsec = deadline % 1000 * 1000000 };
	pthread_mutex_lock(&n->lock);
	while (n->conn == NULL && !n->accepting && n->state == NODE_CONNECTING &&
	       !atomic_load(&d->stopping) && wire_now_ms() < deadline)
		pthread_cond_timedwait(&n->changed, &n->lock, &ts);   /* (monotonic) */
	pthread_mutex_unlock(&n->lock);
}

/* Whether node n (ctx) has no connection: asked when the peer answers our
 * dial "alive". Both sides dialled at once, and the peer's attempt won
 * here ("ok_simultaneous") while ours went on: the connection the peer
 * holds is that one, alive; answering "true" made the peer drop it for
 * ours, which this node then refused ("another connection won"): node
 * down twice on both sides, for a connection that was fine. */
static bool no_conn(void *ctx)
{
	struct node *n = ctx;
	pthread_mutex_lock(&n->lock);
	bool none = n->conn == NULL;
	pthread_mutex_unlock(&n->lock);
	return none;
}

static void *dial_main(void *arg)
{
	struct hs *h = arg;
	struct dist *d = h->d;
	struct node *n = h->n;
	free(h);
	char err[300] = "";
	int fd = -1;
	int64_t deadline = wire_deadline(SETUP_MS);
	int rc = dial_socket(d, n, deadline, &fd, err, sizeof(err));
	if (rc == 0 && !hs_begin(d, fd))
		rc = -ECANCELED;
	if (rc == 0) {
		struct dist_id me, peer;
		self_id(d, &me);
		char name[256];
		snprintf(name, sizeof(name), "%.*s", (int)n->nlen, n->name);
		int64_t left = deadline - wire_now_ms();
		rc = dist_handshake_connect(fd, &me, d->cookie, name, no_conn, n, &peer,
		                            left > 0 ? (int)left : 0, err, sizeof(err));
		hs_end(d, fd);
		if (rc == -EALREADY)
			await_peer(d, n, deadline);
		if (rc == 0 && !dist_conn_up(d, n, fd, &peer)) {
			rc = -ECANCELED;
			snprintf(err, sizeof(err), "another connection to it won");
		}
		if (rc == 0)
			fd = -1;   /* the connection's now */
	}
	if (fd >= 0)
		close(fd);
	unclaim(d, true);
	if (rc != 0)
		dist_setup_failed(d, n, true, err);
	conn_thread_done(d);
	return NULL;
}

/* What to answer a node that connects to us, by the state of our side
 * (ctx: the handshake, which learns the entry it answered "ok" for). The
 * peer is not authenticated yet (its digest comes later), so nothing is
 * made for it and no state changes: a peer without the cookie can
 * neither fill the node table with names nor hold a node's messages by
 * posing as it. An existing entry only notes that an attempt is under
 * way (accepting), so that our own attempt failing meanwhile does not
 * drop what is held for the node while this one may still win; a failed
 * handshake then clears it, at most SETUP_MS later. */
static const char *accept_status(void *ctx, const struct dist_id *peer)
{
	struct hs *h = ctx;
	struct dist *d = h->d;
	size_t nlen = strnlen(peer->name, sizeof(peer->name));
	if (nlen == d->nlen && memcmp(peer->name, d->name, nlen) == 0)
		return "not_allowed";
	struct node *n = dist_node_peek(d, peer->name, nlen, peer->creation);
	/* None: a node, or an incarnation, new to us (one connected under its
	 * name is dead then, retired once this one is up). Its entry is made
	 * once it is authenticated (accepted_node). */
	if (n == NULL)
		return "ok";
	const char *answer = "ok";
	pthread_mutex_lock(&n->lock);
	if (n->state == NODE_GONE && n->conn == NULL && !n->accepting) {
		/* A pid of it made us take it for dead; it connects, so it is
		 * not: revived once authenticated (accepted_node). */
	} else if (n->state == NODE_UP && n->conn != NULL && !n->accepting &&
	           n->creation == peer->creation) {
		/* The incarnation we are connected to connects again: its side
		 * of our connection is gone (a partition its tick noticed first,
		 * a reset we have not seen). "alive": if it answers "true" and
		 * then proves the cookie, our old connection is dropped (node
		 * down for its links and monitors) and this one replaces it. */
		answer = "alive";
		n->accepting = true;
		h->n = n;
		h->replace = true;
	} else if (n->state == NODE_UP || n->state == NODE_GONE || n->conn != NULL || n->accepting) {
		answer = "nok";
	} else if (n->state == NODE_CONNECTING && n->dialing &&
	           strcmp(d->name, peer->name) > 0) {
		/* Both sides connecting at once: the greater name keeps its own
		 * attempt (erl_dist_protocol, "simultaneous connect"). */
		answer = "nok";
	} else {
		if (n->state == NODE_CONNECTING && n->dialing)
			answer = "ok_simultaneous";
		n->accepting = true;
		h->n = n;
		pthread_cond_broadcast(&n->changed);   /* (a refused dial waits for it) */
	}
	pthread_mutex_unlock(&n->lock);
	return answer;
}

/* The peer answered "alive" with "true" and proved the cookie: cut the
 * connection we held to it and wait (until deadline) for the I/O thread
 * to have closed it (node down), so the new one can take its place. */
static void drop_old(struct dist *d, struct node *n, int64_t deadline)
{
	struct timespec ts = { .tv_sec = deadline / 1000, .tv_nsec = deadline % 1000 * 1000000 };
	pthread_mutex_lock(&n->lock);
	struct conn *old = n->conn;
	if (old != NULL)
		conn_cut(old, "it connected again (its side of the old connection was gone)");
	while (old != NULL && n->conn == old && !atomic_load(&d->stopping) &&
	       wire_now_ms() < deadline)
		pthread_cond_timedwait(&n->changed, &n->lock, &ts);   /* (monotonic) */
	pthread_mutex_unlock(&n->lock);
}

/* The node an authenticated peer is: the one it was answered for, or its
 * entry, made (or revived) now. */
static struct node *accepted_node(struct hs *h, const struct dist_id *peer)
{
	if (h->n != NULL)
		return h->n;
	return dist_node_by_name(h->d, peer->name, strnlen(peer->name, sizeof(peer->name)),
	                         peer->creation, true);
}

static void *accept_main(void *arg)
{
	struct hs *h = arg;
	struct dist *d = h->d;
	int fd = h->fd;
	struct dist_id me, peer;
	self_id(d, &me);
	char err[300] = "";
	int rc = -ECANCELED;
	if (hs_begin(d, fd)) {
		rc = dist_handshake_accept(fd, &me, d->cookie, accept_status, h, &peer, SETUP_MS,
		                           err, sizeof(err));
		hs_end(d, fd);
	}
	struct node *n = rc == 0 ? accepted_node(h, &peer) : NULL;
	if (n != NULL && h->replace)
		drop_old(d, n, wire_deadline(SETUP_MS));
	if (n != NULL && dist_conn_up(d, n, fd, &peer))
		fd = -1;
	else if (h->n != NULL)
		dist_setup_failed(d, h->n, false, rc == 0 ? "refused" : err);
	if (rc == 0 && n == NULL) {
		char shown[2 * DIST_NAME_MAX];
		util_printable(shown, sizeof(shown), peer.name);
		fprintf(stderr, "wisp: dist: refused a connection from %s: this node cannot name it "
		        "(a name of printable ASCII only, and room in the node table)\n", shown);
	}
	if (rc != 0 && rc != -ECANCELED && !atomic_load(&d->stopping))
		fprintf(stderr, "wisp: dist: refused a connection: %s\n", err);
	if (fd >= 0)
		close(fd);
	free(h);
	unclaim(d, false);
	conn_thread_done(d);
	return NULL;
}

int conn_thread(struct dist *d, void *(*fn)(void *), void *arg)
{
	pthread_mutex_lock(&d->lock);
	bool ok = !atomic_load(&d->stopping);
	if (ok)
		d->handshakes++;
	pthread_mutex_unlock(&d->lock);
	if (!ok)
		return -1;
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	int rc = pthread_create(&t, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		conn_thread_done(d);
		return -1;
	}
	return 0;
}

static void start_thread(struct dist *d, void *(*fn)(void *), struct hs *h)
{
	if (conn_thread(d, fn, h) == 0)
		return;
	bool dial = fn == dial_main;
	unclaim(d, dial);
	if (dial)
		dist_setup_failed(d, h->n, true, "no thread for the connection");
	else
		close(h->fd);
	free(h);
}

void conn_dial(struct dist *d, struct node *n)
{
	struct hs *h = calloc(1, sizeof(*h));
	if (h == NULL) {
		dist_setup_failed(d, n, true, "out of memory");
		return;
	}
	h->d = d;
	h->n = n;
	h->fd = -1;
	if (!claim(d, true)) {
		free(h);
		dist_setup_failed(d, n, true, "too many connections are being set up "
		                  "(DIST_MAX_DIALING)");
		return;
	}
	pthread_mutex_lock(&n->lock);
	n->dialing = true;
	pthread_mutex_unlock(&n->lock);
	start_thread(d, dial_main, h);
}

/* ---- writing ---- */

/* Have the I/O thread flush c when its socket takes more (node lock
 * held): EPOLLOUT, one-shot, on its epoll (added there on first need).
 * Off is left to the one-shot: an event after the queue emptied flushes
 * nothing. */
static void want_out(struct conn *c, bool on)
{
	if (!on || c->out_armed)
		return;
	struct epoll_event ev = { .events = EPOLLOUT | EPOLLONESHOT, .data.u64 = c->token };
	if (epoll_ctl(c->d->epfd, c->out_added ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev) == 0)
		c->out_added = c->out_armed = true;
}

/* Write what is queued (node lock held); false if the socket broke. */
static bool flush(struct conn *c)
{
	while (c->outoff < c->outlen) {
		ssize_t w = send(c->fd, c->out + c->outoff, c->outlen - c->outoff,
		                 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (w <= 0)
			return false;
		c->outoff += (size_t)w;
		atomic_fetch_sub(&c->d->out_bytes, (uint64_t)w);
		atomic_store_explicit(&c->last_tx_ms, conn_now_ms(), memory_order_relaxed);
	}
	if (c->outoff == c->outlen)
		c->outoff = c->outlen = 0;
	want_out(c, c->outlen > 0);
	return true;
}

/* Nodes whose connection holds output that processes on this thread wrote
 * while running, to be written when the process stops (conn_flush_corked).
 * Per thread because a process's sends all happen on its scheduler's
 * thread: no lock, no shared state. */
#define CORK_MAX 16
static _Thread_local struct node *corked[CORK_MAX];
static _Thread_local int ncorked;

static bool cork(struct conn *c)
{
	if (proc_self() == NULL)
		return false;             /* not a process: write now */
	for (int i = 0; i < ncorked; i++)
		if (corked[i] == c->node)
			return true;
	if (ncorked == CORK_MAX)
		return false;
	corked[ncorked++] = c->node;
	return true;
}

void conn_flush_corked(void *ctx)
{
	(void)ctx;
	for (int i = 0; i < ncorked; i++) {
		struct node *n = corked[i];
		pthread_mutex_lock(&n->lock);
		if (n->conn != NULL && !flush(n->conn))
			want_out(n->conn, true);   /* (the I/O thread sees it broken) */
		pthread_mutex_unlock(&n->lock);
	}
	ncorked = 0;
}

void conn_write(struct conn *c, const void *p, size_t len)
{
	if (c->dead)
		return;
	bool corked_now = cork(c);
	size_t done = 0;
	if (!corked_now && c->outlen == 0) {
		/* Nothing queued: straight to the socket. */
		while (done < len) {
			ssize_t w = send(c->fd, (const char *)p + done, len - done,
			                 MSG_DONTWAIT | MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				break;
			done += (size_t)w;
		}
		if (done > 0)
			atomic_store_explicit(&c->last_tx_ms, conn_now_ms(), memory_order_relaxed);
		if (done == len)
			return;
	}
	size_t rest = len - done;
	if (c->outlen + rest > DIST_MAX_OUT) {
		c->dead = "it stopped reading what this node sends";
		shutdown(c->fd, SHUT_RDWR);
		return;
	}
	if (atomic_load(&c->d->out_bytes) + rest > DIST_MAX_OUT_ALL) {
		c->dead = "it is not reading what this node sends, and all peers' queues are "
		          "full (DIST_MAX_OUT_ALL)";
		shutdown(c->fd, SHUT_RDWR);
		return;
	}
	if (c->outlen + rest > c->outcap) {
		size_t cap = c->outcap ? c->outcap : 65536;
		while (cap < c->outlen + rest)
			cap *= 2;
		unsigned char *o = realloc(c->out, cap);
		if (o == NULL) {
			c->dead = "out of memory for what this node sends";
			shutdown(c->fd, SHUT_RDWR);
			return;
		}
		c->out = o;
		c->outcap = cap;
	}
	memcpy(c->out + c->outlen, (const char *)p + done, rest);
	c->outlen += rest;
	atomic_fetch_add(&c->d->out_bytes, rest);
	if (!corked_now)
		want_out(c, true);   /* (corked: written when its process stops) */
}

void conn_cut(struct conn *c, const char *why)
{
	c->dead = why;
	shutdown(c->fd, SHUT_RDWR);   /* (its reader wakes: the socket reports its end) */
}

/* ---- reading, and tearing down ----
 *
 * A connection's socket is armed, one-shot, in the schedulers' reactor
 * (rt_remote_arm) under its token: node index << 40 | a serial. The
 * scheduler that polls gets the event and reads the frames itself, so the
 * processes they wake run next on that thread, with no hop through
 * another thread (docs/architecture.md, "Latency between nodes"). Who
 * may read, and who tears a connection down, is decided under its node's
 * lock:
 *
 *  - A reader claims c (reading, found by token as n->conn, not closing),
 *    reads until the socket is empty (or READS_PER_EVENT chunks), and
 *    gives the claim back: arming the socket again, or, if c must close
 *    (the read found its end, a malformed frame, or closing was set
 *    meanwhile), tearing it down itself. One-shot arming and the claim
 *    keep one reader at a time, so frames are handled in order; an event
 *    that finds c claimed is dropped (its reader arms the socket again
 *    when done, and the kernel reports what arrived meanwhile then).
 *  - Anyone else wanting c closed (the tick: silence or c->dead; a
 *    failed flush; stopping) sets closing; if no one reads c it tears c
 *    down itself, else the reader will. So exactly one thread tears c
 *    down, after the last frame it read was handled: no message from the
 *    peer is delivered after its noconnection.
 *  - Teardown (dist_conn_down, then close and free) removes c from
 *    n->conn first; a late event for c (either reactor) finds another
 *    token or none there and is ignored. Nothing keeps a pointer to c
 *    without the node's lock.
 *
 * The I/O thread also reads a connection no scheduler has read for half
 * a tick time (read_if_stale): the schedulers may all be stuck in
 * blocking host calls, and the peer's ticks must still be heard. */

#define TOKEN_SERIAL_BITS 40

uint64_t conn_new_token(struct dist *d, const struct node *n)
{
	uint64_t serial = (atomic_fetch_add(&d->conn_serial, 1) + 1) &
	                  ((1ull << TOKEN_SERIAL_BITS) - 1);
	return (uint64_t)n->index << TOKEN_SERIAL_BITS | serial;
}

/* The connection token names (node lock held), or NULL: torn down. */
static struct conn *conn_of(struct node *n, uint64_t token)
{
	struct conn *c = n->conn;
	return c != NULL && c->token == token ? c : NULL;
}

static struct node *node_of_token(struct dist *d, uint64_t token)
{
	return dist_node_at(d, (uint32_t)(token >> TOKEN_SERIAL_BITS));
}

/* The calling thread is to tear c down (node lock held): counted until
 * it has, so that stopping waits for the whole teardown (which delivers
 * into the runtime), not only for c to leave its node. Returns true. */
static bool mine_to_tear(struct conn *c)
{
	atomic_fetch_add(&c->d->tearing, 1);
	return true;
}

/* c is to close for why (node lock held; why c->dead says, if it is
 * set: a write that fails on a socket shut for it must not hide it):
 * true if the caller is to tear it down (after unlocking); false if its
 * reader will when it stops, or another thread already is. */
static bool close_asked(struct conn *c, const char *why)
{
	if (c->closing != NULL)
		return false;
	const char *dead = atomic_load(&c->dead);
	c->closing = dead != NULL ? dead : why;
	return !c->reading && mine_to_tear(c);
}

/* Take c down (closing set, no one reading it, mine_to_tear counted, no
 * lock held): its node is down for every local side (after which no one
 * finds c), its socket closes (leaving both reactors) and c is freed. */
static void teardown(struct dist *d, struct conn *c)
{
	rt_remote_watching(d->rt, false);
	dist_conn_down(d, c, c->closing);
	atomic_fetch_sub(&d->out_bytes, c->outlen - c->outoff);
	atomic_fetch_sub(&d->in_bytes, c->incap);
	close(c->fd);
	free(c->out);
	free(c->in);
	free(c);
	if (atomic_fetch_sub(&d->tearing, 1) == 1) {
		pthread_mutex_lock(&d->lock);
		pthread_cond_broadcast(&d->hs_done);
		pthread_mutex_unlock(&d->lock);
	}
}

int conn_watch(struct dist *d, struct conn *c)
{
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	int rc = rt_remote_arm(d->rt, c->fd, c->token);
	if (rc == 0)
		rt_remote_watching(d->rt, true);   /* (teardown undoes it) */
	return rc;
}

static uint32_t frame_len(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Handle every whole frame in c->in. NULL, or why c must close. On
 * return c->in starts at a frame (whose length, if it has 4 bytes, is
 * within DIST_MAX_FRAME). */
static const char *frames(struct dist *d, struct conn *c)
{
	size_t off = 0;
	while (c->inlen - off >= 4) {
		const unsigned char *p = c->in + off;
		uint32_t len = frame_len(p);
		if (len > DIST_MAX_FRAME)
			return "a frame over the size limit (64 MiB: a message that large cannot "
			       "reach a wisp node)";
		if (c->inlen - off - 4 < len)
			break;
		if (len > 0 && dist_frame(d, c, p + 4, len) != 0)
			return "a malformed frame";
		off += 4 + (size_t)len;
	}
	if (off > 0) {   /* (not while a large frame arrives: that would copy it per read) */
		memmove(c->in, c->in + off, c->inlen - off);
		c->inlen -= off;
	}
	return NULL;
}

/* How much c's next read may take: a chunk, or the rest of the frame
 * begun in c->in if that is more (a large frame is read into place in
 * few reads). Never more: what a read takes is handled before the next,
 * so this bounds a wakeup's work (READS_PER_EVENT chunks of small
 * frames, or one large frame), not the socket's receive buffer (tens of
 * MiB of small frames in one read, decoded by a scheduler that should be
 * running processes). */
static size_t read_want(const struct conn *c)
{
	if (c->inlen < 4)
		return READ_CHUNK;
	size_t whole = 4 + (size_t)frame_len(c->in);   /* (frames() checked the limit) */
	return whole > c->inlen + READ_CHUNK ? whole - c->inlen : READ_CHUNK;
}

/* Room in c->in for a read of want bytes (at least a chunk's, or what
 * the frame needs): the buffer doubles, as bytes arrive (a frame's
 * header alone reserves nothing large), but never past what the frame
 * begun needs. NULL, or why c must close. */
static const char *make_room(struct dist *d, struct conn *c, size_t want)
{
	if (c->incap - c->inlen >= READ_CHUNK || c->incap - c->inlen >= want)
		return NULL;
	size_t cap = c->incap ? c->incap * 2 : 2 * READ_CHUNK;
	if (cap > c->inlen + want)
		cap = c->inlen + want > 2 * READ_CHUNK ? c->inlen + want : 2 * READ_CHUNK;
	if (cap <= c->incap)
		return NULL;
	/* (Each peer's buffer is bounded by the frame size; all of them
	 * together too: peers that each send most of a largest frame and
	 * stop would add up.) */
	if (atomic_fetch_add(&d->in_bytes, cap - c->incap) + (cap - c->incap) > DIST_MAX_IN_ALL) {
		atomic_fetch_sub(&d->in_bytes, cap - c->incap);
		return "the frames all peers have begun fill this node's input (DIST_MAX_IN_ALL)";
	}
	unsigned char *in = realloc(c->in, cap);
	if (in == NULL) {
		atomic_fetch_sub(&d->in_bytes, cap - c->incap);
		return "out of memory";
	}
	c->in = in;
	c->incap = cap;
	return NULL;
}

/* A buffer that grew for a large frame goes back to two chunks once
 * what it holds (and the frame begun) fits in them, whatever follows:
 * a peer that keeps part of a frame pending must not keep up to 64 MiB
 * of this node's input bound (DIST_MAX_IN_ALL) for one frame it sent
 * long ago. */
static void shrink(struct dist *d, struct conn *c)
{
	if (c->incap <= 4 * READ_CHUNK || c->inlen + read_want(c) > 2 * READ_CHUNK)
		return;
	if (c->inlen == 0) {
		free(c->in);
		c->in = NULL;
		atomic_fetch_sub(&d->in_bytes, c->incap);
		c->incap = 0;
		return;
	}
	unsigned char *in = realloc(c->in, 2 * READ_CHUNK);
	if (in == NULL)
		return;   /* (kept as it is) */
	atomic_fetch_sub(&d->in_bytes, c->incap - 2 * READ_CHUNK);
	c->in = in;
	c->incap = 2 * READ_CHUNK;
}

/* Read what c has (claimed: reading), up to READS_PER_EVENT reads of
 * read_want(). NULL, or why it must close. */
static const char *readable(struct dist *d, struct conn *c)
{
	for (int i = 0; i < READS_PER_EVENT; i++) {
		size_t want = read_want(c);
		const char *why = make_room(d, c, want);
		if (why != NULL)
			return why;
		size_t ask = c->incap - c->inlen < want ? c->incap - c->inlen : want;
		ssize_t r = recv(c->fd, c->in + c->inlen, ask, MSG_DONTWAIT);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return NULL;
		if (r == 0)
			return "connection closed";
		if (r < 0)
			return strerror(errno);
		c->inlen += (size_t)r;
		atomic_store_explicit(&c->last_rx_ms, conn_now_ms(), memory_order_relaxed);
		if ((why = frames(d, c)) != NULL)
			return why;
		shrink(d, c);
		/* Less than asked for: the socket is empty (what comes later,
		 * arming it again reports), so no read just to hear EAGAIN. */
		if ((size_t)r < ask)
			return NULL;
	}
	return NULL;   /* (more may wait: arming the socket again reports it) */
}

/* c's reader is done (why: NULL, or why c must close): arm its socket
 * again, or tear it down if it must close. */
static void end_read(struct dist *d, struct conn *c, const char *why)
{
	struct node *n = c->node;
	const char *dead = atomic_load(&c->dead);
	if (dead != NULL)
		why = dead;   /* (its socket was shut: the read saw that) */
	pthread_mutex_lock(&n->lock);
	c->reading = false;
	if (why != NULL && c->closing == NULL)
		c->closing = why;
	if (c->closing == NULL && rt_remote_arm(d->rt, c->fd, c->token) != 0)
		c->closing = "cannot watch its socket";
	bool mine = c->closing != NULL && mine_to_tear(c);
	pthread_mutex_unlock(&n->lock);
	if (mine)
		teardown(d, c);
}

/* The connection token names, claimed for reading; NULL if it is gone,
 * closing or being read. */
static struct conn *claim_read(struct dist *d, uint64_t token)
{
	struct node *n = node_of_token(d, token);
	if (n == NULL)
		return NULL;
	pthread_mutex_lock(&n->lock);
	struct conn *c = conn_of(n, token);
	if (c != NULL && (c->closing != NULL || c->reading))
		c = NULL;
	if (c != NULL)
		c->reading = true;
	pthread_mutex_unlock(&n->lock);
	return c;
}

void conn_readable(void *ctx, uint64_t token)
{
	struct dist *d = ctx;
	struct conn *c = claim_read(d, token);
	if (c != NULL)
		end_read(d, c, readable(d, c));
}

/* Read n's connection here if nothing was read from it for stale_ms and
 * no one reads it now (see above). */
static void read_if_stale(struct dist *d, struct node *n, int64_t now, int64_t stale_ms)
{
	pthread_mutex_lock(&n->lock);
	struct conn *c = n->conn;
	if (c != NULL && (c->closing != NULL || c->reading ||
	                  now - atomic_load(&c->last_rx_ms) <= stale_ms))
		c = NULL;
	if (c != NULL)
		c->reading = true;
	pthread_mutex_unlock(&n->lock);
	if (c != NULL)
		end_read(d, c, readable(d, c));
}

/* ---- the I/O thread ---- */

#define TOKEN_LISTEN 1   /* (connections' tokens are >= 1 << 40) */
#define TOKEN_WAKE 2

/* EPOLLOUT (or an error) on the connection token names: flush it. */
static void writable(struct dist *d, uint64_t token)
{
	struct node *n = node_of_token(d, token);
	if (n == NULL)
		return;
	pthread_mutex_lock(&n->lock);
	struct conn *c = conn_of(n, token);
	bool mine = false;
	if (c != NULL) {
		c->out_armed = false;
		if (c->closing == NULL && !flush(c))
			mine = close_asked(c, "write failed");
	}
	pthread_mutex_unlock(&n->lock);
	if (mine)
		teardown(d, c);
}

void conn_moved_due(struct dist *d, int64_t at_ms)
{
	int64_t cur = atomic_load(&d->moved_next_ms);
	while (at_ms < cur)
		if (atomic_compare_exchange_weak(&d->moved_next_ms, &cur, at_ms)) {
			uint64_t one = 1;
			if (write(d->evfd, &one, sizeof(one)) < 0) {
				/* (the counter is full: the thread is awake anyway) */
			}
			return;
		}
}

static void accept_all(struct dist *d)
{
	for (;;) {
		int fd = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			return;
		if (!claim(d, false)) {
			close(fd);
			if (!d->told_accepts) {
				d->told_accepts = true;
				fprintf(stderr, "wisp: dist: refused a connection: %u handshakes are under "
				        "way already (DIST_MAX_ACCEPTING; said once)\n", DIST_MAX_ACCEPTING);
			}
			continue;
		}
		struct hs *h = calloc(1, sizeof(*h));
		if (h == NULL) {
			unclaim(d, false);
			close(fd);
			continue;
		}
		h->d = d;
		h->fd = fd;
		start_thread(d, accept_main, h);
	}
}

/* Every tick: read connections no scheduler read lately, tick idle
 * ones, drop silent ones (nothing read for a whole tick time: not while
 * a reader is at it). */
static void tick(struct dist *d, int64_t now)
{
	int64_t t = (int64_t)d->cfg.ticktime_s * 1000;
	uint32_t nn = atomic_load(&d->nnodes);
	for (uint32_t i = 0; i < nn; i++) {
		struct node *n = d->nodes[i];
		read_if_stale(d, n, now, t / 2);
		bool mine = false;
		pthread_mutex_lock(&n->lock);
		struct conn *c = n->conn;
		if (c != NULL && c->closing == NULL) {
			const char *dead = atomic_load(&c->dead);
			if (dead != NULL || (!c->reading && now - atomic_load(&c->last_rx_ms) > t)) {
				mine = close_asked(c, "no answer within the tick time (net_ticktime)");
			} else if (now - atomic_load(&c->last_tx_ms) >= t / 4) {
				static const unsigned char zero[4];
				conn_write(c, zero, 4);
			}
		}
		pthread_mutex_unlock(&n->lock);
		if (mine)
			teardown(d, c);
	}
}

/* Sends held for processes that moved whose wait ended go on (at its
 * end, not at the next tick, a quarter of net_ticktime later). A look at
 * every node, so at most one every MOVED_STEP_MS: a peer's many moves
 * cost few. */
#define MOVED_STEP_MS 100

static void moved_tick(struct dist *d, int64_t now)
{
	/* (Cleared before the look: a reader's later conn_moved_due, for an
	 * entry the look may miss, stands.) */
	atomic_store(&d->moved_next_ms, INT64_MAX);
	int64_t next = INT64_MAX;
	uint32_t nn = atomic_load(&d->nnodes);
	for (uint32_t i = 0; i < nn; i++) {
		int64_t t = dist_moved_tick(d, d->nodes[i], now);
		next = t < next ? t : next;
	}
	if (next != INT64_MAX && next < now + MOVED_STEP_MS)
		next = now + MOVED_STEP_MS;
	int64_t cur = atomic_load(&d->moved_next_ms);
	while (next < cur && !atomic_compare_exchange_weak(&d->moved_next_ms, &cur, next))
		;
}

/* How long a stopping node gives its connections to take what it still
 * has to say: the last words of its processes (a main process's EXIT and
 * DOWN signals to its remote links and monitors) are what the peers see
 * of its end, and must not be cut off by the close. */
#define STOP_DRAIN_MS 2000

/* Write what c holds (node lock held), waiting for its socket to take it
 * until deadline; false if the socket broke. */
static bool drain(struct conn *c, int64_t deadline)
{
	for (;;) {
		if (!flush(c))
			return false;
		int64_t left = deadline - conn_now_ms();
		if (c->outoff == c->outlen || left <= 0)
			return true;
		struct pollfd p = { .fd = c->fd, .events = POLLOUT };
		if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
			return false;
	}
}

/* Stopping: every connection closes (peers see the node go), after what
 * is queued for it has gone out (drain, up to STOP_DRAIN_MS in all). One
 * being brought up first writes what was held for it while it was being
 * set up (flush_held, on the thread that set it up, marks it UP when
 * done): that is waited for, or those messages would be lost with it. One
 * being read is torn down by its reader, waited for, as is every teardown
 * under way (they deliver into the runtime, which the node leaves next). */
static void close_all(struct dist *d)
{
	int64_t deadline = conn_now_ms() + STOP_DRAIN_MS;
	struct timespec ts = { .tv_sec = deadline / 1000, .tv_nsec = deadline % 1000 * 1000000 };
	uint32_t nn = atomic_load(&d->nnodes);
	for (uint32_t i = 0; i < nn; i++) {
		struct node *n = d->nodes[i];
		pthread_mutex_lock(&n->lock);
		struct conn *c = n->conn;
		while (c != NULL && n->conn == c && n->state == NODE_CONNECTING &&
		       c->closing == NULL && conn_now_ms() < deadline)
			pthread_cond_timedwait(&n->changed, &n->lock, &ts);   /* (monotonic) */
		if (n->conn != c)
			c = NULL;   /* (gone meanwhile: torn down by its reader) */
		bool mine = false;
		if (c != NULL) {
			/* (A connection already dead keeps the reason it died of.) */
			if (c->closing == NULL && atomic_load(&c->dead) == NULL && !drain(c, deadline))
				c->dead = "its socket broke while this node stopped";
			mine = close_asked(c, "this node is stopping");
			while (!mine && n->conn == c)
				pthread_cond_wait(&n->changed, &n->lock);
		}
		pthread_mutex_unlock(&n->lock);
		if (mine)
			teardown(d, c);
	}
	pthread_mutex_lock(&d->lock);
	while (atomic_load(&d->tearing) > 0)
		pthread_cond_wait(&d->hs_done, &d->lock);
	pthread_mutex_unlock(&d->lock);
}

static void *io_main(void *arg)
{
	struct dist *d = arg;
	int64_t step = (int64_t)d->cfg.ticktime_s * 1000 / 4;
	if (step < 1)
		step = 1;
	int64_t next = conn_now_ms() + step;
	struct epoll_event ev[64];
	while (!atomic_load(&d->stopping)) {
		int64_t moved = atomic_load(&d->moved_next_ms);
		int64_t due = next < moved ? next : moved;
		int64_t wait = due - conn_now_ms();
		int n = epoll_wait(d->epfd, ev, 64, wait > 0 ? (int)wait : 0);
		for (int i = 0; i < n; i++) {
			uint64_t token = ev[i].data.u64;
			if (token == TOKEN_LISTEN) {
				accept_all(d);
			} else if (token == TOKEN_WAKE) {
				uint64_t v;
				if (read(d->evfd, &v, sizeof(v)) < 0)
					continue;
			} else {
				writable(d, token);
			}
		}
		int64_t now = conn_now_ms();
		if (now >= next) {
			tick(d, now);
			dist_tick(d, now);
			next = now + step;
		}
		if (now >= atomic_load(&d->moved_next_ms))
			moved_tick(d, now);
	}
	close_all(d);
	return NULL;
}

int conn_start(struct dist *d, char *err, size_t errlen)
{
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	d->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct epoll_event l = { .events = EPOLLIN, .data.u64 = TOKEN_LISTEN };
	struct epoll_event e = { .events = EPOLLIN, .data.u64 = TOKEN_WAKE };
	if (d->epfd < 0 || d->evfd < 0 || epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->listen_fd, &l) != 0 ||
	    epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->evfd, &e) != 0 ||
	    pthread_create(&d->io, NULL, io_main, d) != 0) {
		snprintf(err, errlen, "cannot start the distribution thread: %s", strerror(errno));
		return -ENOMEM;
	}
	d->io_started = true;
	return 0;
}

void conn_stop(struct dist *d)
{
	if (!d->io_started)
		return;
	atomic_store(&d->stopping, true);
	uint64_t one = 1;
	if (write(d->evfd, &one, sizeof(one)) < 0) {
		/* (the thread also wakes at its next tick) */
	}
	pthread_join(d->io, NULL);
	d->io_started = false;
	/* Handshakes in flight end now: their sockets are cut, and dials
	 * waiting for a peer's attempt (await_peer) wake. */
	uint32_t nn = atomic_load(&d->nnodes);
	for (uint32_t i = 0; i < nn; i++) {
		pthread_mutex_lock(&d->nodes[i]->lock);
		pthread_cond_broadcast(&d->nodes[i]->changed);
		pthread_mutex_unlock(&d->nodes[i]->lock);
	}
	pthread_mutex_lock(&d->lock);
	for (uint32_t i = 0; i < d->nhs_fds; i++)
		shutdown(d->hs_fds[i], SHUT_RDWR);
	while (d->handshakes > 0)
		pthread_cond_wait(&d->hs_done, &d->lock);
	pthread_mutex_unlock(&d->lock);
	close(d->epfd);
	close(d->evfd);
	d->epfd = d->evfd = -1;
}
