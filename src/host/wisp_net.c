/*
 * wisp_net.c — the wisp_net namespace: TCP for processes, written in
 * blocking style by the guest and run on the reactor by the host.
 *
 * Every socket is an fd in the process's WASI table (so fd_read, fd_write,
 * sock_recv, sock_send, sock_shutdown, poll and fd_close work on it too),
 * marked `parks`: non-blocking on the host, and an operation that would
 * block parks the calling process until the reactor reports the socket
 * ready (or the call's timeout passes), while the scheduler runs others.
 * A process's sockets are closed when it ends (its WASI table is freed).
 *
 * Addresses are numeric IPv4 or IPv6 literals ("127.0.0.1", "::1").
 * Return values are WASI errno codes (0: success), as for WASI's own
 * socket calls; ETIMEDOUT (73) when a timeout passes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io/reactor.h"
#include "proc/caps.h"
#include "tls.h"
#include "wasi_impl.h"
#include "wisp_api.h"

#define NS(name) Z_wisp_netZ_##name
#define SELF struct host_proc *hp = HOST_PROC(self)
#define MAX_ADDR 64

enum net_use { USE_CONNECT, USE_LISTEN, USE_UDP, USE_DNS };

/* May the calling process do this? A denial is ENOTCAPABLE, logged under
 * `wisp run -v` with the capability that is missing. */
static uint16_t allowed(struct host_proc *hp, enum net_use use, const char *host,
                        unsigned port)
{
	struct caps *c = hp->proc ? hp->proc->caps : NULL;
	bool ok = false;
	if (c != NULL) {
		switch (use) {
		case USE_CONNECT: ok = caps_may_connect(c, host, port); break;
		case USE_LISTEN: ok = caps_may_listen(c, host, port); break;
		case USE_UDP: ok = c->udp; break;
		case USE_DNS: ok = c->dns; break;
		}
	}
	if (ok)
		return 0;
	if (c != NULL) {
		uint64_t pid = proc_pid(hp->proc);
		switch (use) {
		case USE_CONNECT:
			caps_log_denied(c, pid, "connect to %s:%u: no --allow-connect rule matches", host, port);
			break;
		case USE_LISTEN:
			caps_log_denied(c, pid, "listen on %s:%u: no --allow-listen rule matches", host, port);
			break;
		case USE_UDP:
			caps_log_denied(c, pid, "UDP: not allowed (--allow-udp)");
			break;
		case USE_DNS:
			caps_log_denied(c, pid, "DNS lookup of %s: not allowed (--allow-dns)", host);
			break;
		}
	}
	return WASI_ENOTCAPABLE;
}

/* Parse a numeric address and port into a sockaddr; the address text, for
 * capability checks, into text_out if not NULL. */
static uint16_t parse_addr_text(struct host_proc *hp, u32 addr, u32 len, u32 port,
                                struct sockaddr_storage *ss, socklen_t *sl,
                                char *text_out);

static uint16_t parse_addr(struct host_proc *hp, u32 addr, u32 len, u32 port,
                           struct sockaddr_storage *ss, socklen_t *sl)
{
	return parse_addr_text(hp, addr, len, port, ss, sl, NULL);
}

static uint16_t parse_addr_text(struct host_proc *hp, u32 addr, u32 len, u32 port,
                                struct sockaddr_storage *ss, socklen_t *sl,
                                char *text_out)
{
	char text[MAX_ADDR];
	if (len == 0 || len >= sizeof(text) || port > 65535)
		return WASI_EINVAL;
	memcpy(text, api_ptr(hp, addr, len, "wisp_net"), len);
	text[len] = '\0';
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
	if (text_out != NULL)
		memcpy(text_out, text, len + 1);
	if (inet_pton(AF_INET, text, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)port);
		*sl = sizeof(*v4);
		return 0;
	}
	if (inet_pton(AF_INET6, text, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)port);
		*sl = sizeof(*v6);
		return 0;
	}
	return WASI_EINVAL;
}

uint16_t net_adopt_socket(struct host_proc *hp, int sock, struct tls_stream *tls,
                          uint32_t *slot)
{
	/* A socket moving between processes keeps its kind. */
	int type = SOCK_STREAM;
	socklen_t tl = sizeof(type);
	getsockopt(sock, SOL_SOCKET, SO_TYPE, &type, &tl);
	struct wasi_fd nf = {
		.host = sock,
		.filetype = type == SOCK_DGRAM ? WASI_FILETYPE_SOCKET_DGRAM
		                               : WASI_FILETYPE_SOCKET_STREAM,
		.rights_base = WASI_RIGHTS_SOCKET,
		.rights_inheriting = WASI_RIGHTS_SOCKET,
		.parks = true,
		.tls = tls,
	};
	uint16_t err;
	if (tls != NULL && (err = tls_stream_join(tls, hp)) != 0)
		return err;
	if ((err = wasi_fd_insert(wasi_ctx_of(hp), &nf, slot)) != 0 && tls != NULL)
		tls_stream_leave(tls);
	return err;
}

static struct wasi_fd *sock_of(struct host_proc *hp, u32 fd, uint8_t want, uint16_t *err);

int wasi_socket_host_fd(struct host_proc *hp, uint32_t fd)
{
	uint16_t err;
	struct wasi_fd *f = sock_of(hp, fd, 0, &err);
	return f ? f->host : -1;
}

int net_socket_to_wait(struct host_proc *hp, uint32_t fd, bool *edge)
{
	uint16_t err;
	struct wasi_fd *f = sock_of(hp, fd, 0, &err);
	*edge = f != NULL && hp->proc != NULL && wasi_fd_watched(wasi_ctx_of(hp), f);
	return f ? f->host : -1;
}

int net_give_socket(struct host_proc *hp, uint32_t fd, struct tls_stream **tls)
{
	uint16_t err;
	struct wasi_fd *f = wasi_fd_lookup(wasi_ctx_of(hp), fd, 0, &err);
	/* Only a socket of its own moves: never stdio (borrowed, maybe a
	 * parking pipe), never a file. */
	if (f == NULL || !f->parks || f->borrowed ||
	    (f->filetype != WASI_FILETYPE_SOCKET_STREAM &&
	     f->filetype != WASI_FILETYPE_SOCKET_DGRAM))
		return -1;
	int host = f->host;
	*tls = f->tls;          /* its TLS state goes with it */
	if (f->tls != NULL)
		tls_stream_leave(f->tls);
	f->tls = NULL;
	f->borrowed = true;     /* release the slot, not the socket */
	wasi_fd_release(f);
	return host;
}

/* Free slot `slot` of the caller's table, closing its socket. */
static void drop_slot(struct host_proc *hp, uint32_t slot)
{
	uint16_t err;
	struct wasi_fd *f = wasi_fd_lookup(wasi_ctx_of(hp), slot, 0, &err);
	if (f != NULL)
		wasi_fd_release(f);
}

/* Put a host socket into the WASI table as a parking stream socket. */
static uint16_t install(struct host_proc *hp, int sock, u32 fd_out)
{
	uint32_t slot;
	uint16_t err = net_adopt_socket(hp, sock, NULL, &slot);
	if (err) {
		close(sock);
		return err;
	}
	uint32_t v = slot;
	memcpy(api_ptr(hp, fd_out, 4, "wisp_net"), &v, 4);
	return 0;
}

/* The caller's socket `fd` of filetype `want` (0: either kind). */
static struct wasi_fd *sock_of(struct host_proc *hp, u32 fd, uint8_t want, uint16_t *err)
{
	struct wasi_fd *f = wasi_fd_lookup(wasi_ctx_of(hp), fd, 0, err);
	if (f == NULL)
		return NULL;
	bool sock = f->filetype == WASI_FILETYPE_SOCKET_STREAM ||
	            f->filetype == WASI_FILETYPE_SOCKET_DGRAM;
	if (!sock || (want != 0 && f->filetype != want)) {
		*err = WASI_ENOTSOCK;
		return NULL;
	}
	return f;
}

static struct wasi_fd *sock_fd(struct host_proc *hp, u32 fd, uint16_t *err)
{
	return sock_of(hp, fd, WASI_FILETYPE_SOCKET_STREAM, err);
}

static struct wasi_fd *dgram_fd(struct host_proc *hp, u32 fd, uint16_t *err)
{
	return sock_of(hp, fd, WASI_FILETYPE_SOCKET_DGRAM, err);
}

/* After the caller's operation on f found it not ready (EAGAIN): wait for
 * f (parking the process); WASI errno, or 0 to retry. f must be the
 * caller's table slot (it keeps f's registration and ticket: wasi_fd_wait),
 * and is to be looked up again afterwards. */
static uint16_t wait_for(struct host_proc *hp, struct wasi_fd *f, uint32_t ev,
                         int64_t timeout)
{
	if (hp->proc == NULL)
		return WASI_EAGAIN;
	/* Every caller resolves guest addresses again after this. */
	proc_park_may_move(hp->proc, true);
	int rc = wasi_fd_wait(wasi_ctx_of(hp), f, ev, timeout);
	proc_park_may_move(hp->proc, false);
	if (rc == -ETIMEDOUT)
		return WASI_ETIMEDOUT;
	return rc == 0 ? 0 : wasi_errno(-rc);
}

uint16_t net_wait_fd(struct host_proc *hp, struct wasi_fd *f, uint32_t ev, int64_t timeout)
{
	return wait_for(hp, f, ev, timeout);
}

u32 NS(tcp_listen)(void *self, u32 addr, u32 len, u32 port, u32 backlog, u32 fd_out)
{
	SELF;
	api_ptr(hp, fd_out, 4, "wisp_tcp_listen");
	struct sockaddr_storage ss;
	socklen_t sl;
	char host[MAX_ADDR];
	uint16_t err = parse_addr_text(hp, addr, len, port, &ss, &sl, host);
	if (err || (err = allowed(hp, USE_LISTEN, host, port)) != 0)
		return err;
	int s = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s < 0)
		return wasi_errno(errno);
	int one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s, (struct sockaddr *)&ss, sl) != 0 ||
	    listen(s, backlog > 0 && backlog < 65536 ? (int)backlog : 128) != 0) {
		int e = errno;
		close(s);
		return wasi_errno(e);
	}
	return install(hp, s, fd_out);
}

u32 NS(tcp_accept)(void *self, u32 fd, u64 timeout, u32 fd_out)
{
	SELF;
	api_ptr(hp, fd_out, 4, "wisp_tcp_accept");
	uint16_t err;
	struct wasi_fd *f = sock_fd(hp, fd, &err);
	if (f == NULL)
		return err;
	for (;;) {
		int c = accept4(f->host, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (c >= 0) {
			int one = 1;
			setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			return install(hp, c, fd_out);
		}
		if (errno != EAGAIN && errno != EINTR)
			return wasi_errno(errno);
		if ((err = wait_for(hp, f, REACTOR_READ, (int64_t)timeout)) != 0)
			return err;
		f = sock_fd(hp, fd, &err);   /* the table may have been reused */
		if (f == NULL)
			return err;
	}
}

/* Wait, parked, for the handshake of socket `s` in slot `slot` to end:
 * 0 when connected, else a WASI errno. A wake-up is no proof (a
 * registered socket reports edges it had before connecting): connect()
 * again says where it stands. */
static uint16_t await_connect(struct host_proc *hp, uint32_t slot, int s, int64_t timeout)
{
	uint64_t deadline = timeout < 0 ? UINT64_MAX : sched_now_ns() + (uint64_t)timeout;
	for (;;) {
		uint16_t err;
		struct wasi_fd *f = wasi_fd_lookup(wasi_ctx_of(hp), slot, 0, &err);
		if (f == NULL || f->host != s)
			return WASI_EBADF;
		uint64_t now = sched_now_ns();
		if (now >= deadline)
			return WASI_ETIMEDOUT;
		if ((err = wait_for(hp, f, REACTOR_WRITE,
		                    deadline == UINT64_MAX ? -1 : (int64_t)(deadline - now))) != 0)
			return err;
		int soerr = 0;
		socklen_t el = sizeof(soerr);
		if (getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &el) != 0)
			return wasi_errno(errno);
		if (soerr != 0)
			return wasi_errno(soerr);
		struct sockaddr_storage peer;
		socklen_t pl = sizeof(peer);
		if (getpeername(s, (struct sockaddr *)&peer, &pl) == 0)
			return 0;
		if (errno != ENOTCONN)
			return wasi_errno(errno);
	}
}

u32 NS(tcp_connect)(void *self, u32 addr, u32 len, u32 port, u64 timeout, u32 fd_out)
{
	SELF;
	api_ptr(hp, fd_out, 4, "wisp_tcp_connect");
	struct sockaddr_storage ss;
	socklen_t sl;
	char host[MAX_ADDR];
	uint16_t err = parse_addr_text(hp, addr, len, port, &ss, &sl, host);
	if (err || (err = allowed(hp, USE_CONNECT, host, port)) != 0)
		return err;
	int s = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s < 0)
		return wasi_errno(errno);
	/* In the table from the start: a connect that waits is an fd of the
	 * process (its fd limit, the host's reserve), and a kill while it is
	 * parked closes it with the table (a socket held only here leaked). */
	uint32_t slot;
	if ((err = net_adopt_socket(hp, s, NULL, &slot)) != 0) {
		close(s);
		return err;
	}
	if (connect(s, (struct sockaddr *)&ss, sl) != 0) {
		if (errno != EINPROGRESS) {
			err = wasi_errno(errno);
			drop_slot(hp, slot);
			return err;
		}
		if ((err = await_connect(hp, slot, s, (int64_t)timeout)) != 0) {
			drop_slot(hp, slot);
			return err;
		}
	}
	int one = 1;
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	memcpy(api_ptr(hp, fd_out, 4, "wisp_tcp_connect"), &slot, 4);
	return 0;
}

/* read/write with a timeout (WASI's fd_read/fd_write wait forever). */
static u32 xfer(void *self, u32 fd, u32 buf, u32 len, u64 timeout, u32 n_out, bool write)
{
	SELF;
	api_ptr(hp, n_out, 4, write ? "wisp_net_write" : "wisp_net_read");
	api_ptr(hp, buf, len, write ? "wisp_net_write" : "wisp_net_read");
	uint16_t err;
	struct wasi_fd *f = sock_fd(hp, fd, &err);
	if (f == NULL)
		return err;
	if (f->tls != NULL)      /* plaintext through the TLS stream */
		return tls_xfer(hp, fd, buf, len, (int64_t)timeout, n_out, write);
	bool skipped = false, last_try = false;
	for (;;) {
		/* A read that would only say EAGAIN is not made: the last one
		 * emptied the socket and no edge came since (it waits at once).
		 * If that wait times out, one read is made after all: data that
		 * came before this call but whose edge no poll has taken yet is
		 * not reported as a timeout. */
		skipped = !write && !last_try && f->drained && hp->proc != NULL &&
		          proc_fd_drained(hp->proc, f->host, f->ticket);
		if (skipped) {
			errno = EAGAIN;
			goto wait;
		}
		/* Re-resolved each time: a hibernated process's memory may wake
		 * in another place (wait_for). */
		void *p = engine_guest_ptr(hp->mem, buf, len);
		ssize_t r = write ? send(f->host, p, len, MSG_NOSIGNAL)
		                  : recv(f->host, p, len, 0);
		if (r >= 0) {
			/* Fewer bytes than asked for: it is empty now. */
			if (!write && f->watch == WASI_WATCH_ON)
				f->drained = r > 0 && (uint32_t)r < len;
			uint32_t v = (uint32_t)r;
			memcpy(api_ptr(hp, n_out, 4, "wisp_net"), &v, 4);
			api_work(hp, v);
			return 0;
		}
		if (errno != EAGAIN && errno != EINTR)
			return wasi_errno(errno);
		if (last_try)
			return WASI_ETIMEDOUT;
	wait:
		err = wait_for(hp, f, write ? REACTOR_WRITE : REACTOR_READ, (int64_t)timeout);
		if (err == WASI_ETIMEDOUT && skipped)
			last_try = true;
		else if (err != 0)
			return err;
		f = sock_fd(hp, fd, &err);
		if (f == NULL)
			return err;
	}
}

u32 NS(read)(void *self, u32 fd, u32 buf, u32 len, u64 timeout, u32 n_out)
{
	return xfer(self, fd, buf, len, timeout, n_out, false);
}

u32 NS(write)(void *self, u32 fd, u32 buf, u32 len, u64 timeout, u32 n_out)
{
	return xfer(self, fd, buf, len, timeout, n_out, true);
}

u32 NS(set_nodelay)(void *self, u32 fd, u32 on)
{
	SELF;
	uint16_t err;
	struct wasi_fd *f = sock_fd(hp, fd, &err);
	if (f == NULL)
		return err;
	int v = on != 0;
	return setsockopt(f->host, IPPROTO_TCP, TCP_NODELAY, &v, sizeof(v)) == 0
	       ? 0 : wasi_errno(errno);
}

/* The local or peer address as text, and the port. */
static u32 addr_of(void *self, u32 fd, u32 buf, u32 buf_len, u32 len_out,
                   u32 port_out, bool peer)
{
	SELF;
	api_ptr(hp, len_out, 4, "wisp_net_addr");
	api_ptr(hp, port_out, 4, "wisp_net_addr");
	uint16_t err;
	struct wasi_fd *f = sock_of(hp, fd, 0, &err);
	if (f == NULL)
		return err;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if ((peer ? getpeername(f->host, (struct sockaddr *)&ss, &sl)
	          : getsockname(f->host, (struct sockaddr *)&ss, &sl)) != 0)
		return wasi_errno(errno);
	char text[INET6_ADDRSTRLEN];
	uint32_t port;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &v4->sin_addr, text, sizeof(text));
		port = ntohs(v4->sin_port);
	} else {
		struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof(text));
		port = ntohs(v6->sin6_port);
	}
	uint32_t n = (uint32_t)strlen(text);
	memcpy(api_ptr(hp, len_out, 4, "wisp_net_addr"), &n, 4);
	memcpy(api_ptr(hp, port_out, 4, "wisp_net_addr"), &port, 4);
	if (n > buf_len)
		return WASI_ENOBUFS;
	memcpy(api_ptr(hp, buf, n, "wisp_net_addr"), text, n);
	return 0;
}

u32 NS(local_addr)(void *self, u32 fd, u32 buf, u32 buf_len, u32 len_out, u32 port_out)
{
	return addr_of(self, fd, buf, buf_len, len_out, port_out, false);
}

u32 NS(peer_addr)(void *self, u32 fd, u32 buf, u32 buf_len, u32 len_out, u32 port_out)
{
	return addr_of(self, fd, buf, buf_len, len_out, port_out, true);
}

/* ---- DNS, on the blocking pool ---- */

struct resolve_job {
	char name[256];
	struct addrinfo *res;
	int rc;
};

static void do_resolve(void *arg)
{
	struct resolve_job *j = arg;
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	j->rc = getaddrinfo(j->name, NULL, &hints, &j->res);
}

u32 NS(resolve)(void *self, u32 name, u32 name_len, u32 buf, u32 buf_len,
                u32 used_out, u32 count_out)
{
	SELF;
	api_ptr(hp, used_out, 4, "wisp_resolve");
	api_ptr(hp, count_out, 4, "wisp_resolve");
	api_ptr(hp, buf, buf_len, "wisp_resolve");
	struct resolve_job job = { .res = NULL };
	if (name_len == 0 || name_len >= sizeof(job.name))
		return WASI_EINVAL;
	memcpy(job.name, api_ptr(hp, name, name_len, "wisp_resolve"), name_len);
	if (memchr(job.name, '\0', name_len) != NULL)
		return WASI_EINVAL;
	job.name[name_len] = '\0';
	uint16_t denied = allowed(hp, USE_DNS, job.name, 0);
	if (denied)
		return denied;
	if (hp->proc == NULL)
		do_resolve(&job);
	else if (proc_run_blocking(hp->proc, do_resolve, &job) != 0)
		return WASI_EAGAIN;
	if (job.rc != 0) {
		if (job.res)
			freeaddrinfo(job.res);
		return job.rc == EAI_NONAME || job.rc == EAI_NODATA ? WASI_ENOENT
		       : job.rc == EAI_AGAIN ? WASI_EAGAIN : WASI_EIO;
	}
	/* Each address as text, NUL-terminated, without duplicates. */
	char out[2048];
	uint32_t used = 0, count = 0;
	uint16_t err = 0;
	for (struct addrinfo *a = job.res; a; a = a->ai_next) {
		char text[INET6_ADDRSTRLEN];
		const void *src = a->ai_family == AF_INET
		        ? (const void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr
		        : (const void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr;
		if (inet_ntop(a->ai_family, src, text, sizeof(text)) == NULL)
			continue;
		size_t tl = strlen(text) + 1;
		bool dup = false;
		for (uint32_t off = 0; off < used; off += (uint32_t)strlen(out + off) + 1)
			dup |= strcmp(out + off, text) == 0;
		if (dup)
			continue;
		if (used + tl > sizeof(out)) {
			err = WASI_ENOBUFS;
			break;
		}
		memcpy(out + used, text, tl);
		used += (uint32_t)tl;
		count++;
	}
	freeaddrinfo(job.res);
	memcpy(api_ptr(hp, used_out, 4, "wisp_resolve"), &used, 4);
	memcpy(api_ptr(hp, count_out, 4, "wisp_resolve"), &count, 4);
	if (used > buf_len)
		return WASI_ENOBUFS;
	memcpy(api_ptr(hp, buf, used, "wisp_resolve"), out, used);
	return err;
}

/* ---- UDP ---- */

u32 NS(udp_bind)(void *self, u32 addr, u32 len, u32 port, u32 fd_out)
{
	SELF;
	api_ptr(hp, fd_out, 4, "wisp_udp_bind");
	struct sockaddr_storage ss;
	socklen_t sl;
	uint16_t err = parse_addr(hp, addr, len, port, &ss, &sl);
	if (err || (err = allowed(hp, USE_UDP, "", 0)) != 0)
		return err;
	int s = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s < 0)
		return wasi_errno(errno);
	if (bind(s, (struct sockaddr *)&ss, sl) != 0) {
		int e = errno;
		close(s);
		return wasi_errno(e);
	}
	return install(hp, s, fd_out);   /* net_adopt_socket reads its kind */
}

u32 NS(udp_connect)(void *self, u32 fd, u32 addr, u32 len, u32 port)
{
	SELF;
	uint16_t err;
	struct wasi_fd *f = dgram_fd(hp, fd, &err);
	if (f == NULL)
		return err;
	struct sockaddr_storage ss;
	socklen_t sl;
	if ((err = parse_addr(hp, addr, len, port, &ss, &sl)) != 0)
		return err;
	return connect(f->host, (struct sockaddr *)&ss, sl) == 0 ? 0 : wasi_errno(errno);
}

/* addr_len 0: to the connected peer. */
u32 NS(udp_send_to)(void *self, u32 fd, u32 buf, u32 len, u32 addr, u32 addr_len,
                    u32 port, u64 timeout, u32 n_out)
{
	SELF;
	api_ptr(hp, n_out, 4, "wisp_udp_send_to");
	api_ptr(hp, buf, len, "wisp_udp_send_to");
	uint16_t err;
	struct sockaddr_storage ss;
	socklen_t sl = 0;
	if (addr_len != 0 && (err = parse_addr(hp, addr, addr_len, port, &ss, &sl)) != 0)
		return err;
	struct wasi_fd *f = dgram_fd(hp, fd, &err);
	if (f == NULL)
		return err;
	for (;;) {
		ssize_t r = sendto(f->host, engine_guest_ptr(hp->mem, buf, len), len, MSG_NOSIGNAL,
		                   sl ? (struct sockaddr *)&ss : NULL, sl);
		if (r >= 0) {
			uint32_t v = (uint32_t)r;
			memcpy(api_ptr(hp, n_out, 4, "wisp_udp_send_to"), &v, 4);
			api_work(hp, v);
			return 0;
		}
		if (errno != EAGAIN && errno != EINTR)
			return wasi_errno(errno);
		if ((err = wait_for(hp, f, REACTOR_WRITE, (int64_t)timeout)) != 0)
			return err;
		if ((f = dgram_fd(hp, fd, &err)) == NULL)
			return err;
	}
}

/* The sender's address as text into addr_buf (length in *addr_len_out),
 * its port in *port_out. */
u32 NS(udp_recv_from)(void *self, u32 fd, u32 buf, u32 len, u64 timeout, u32 n_out,
                      u32 addr_buf, u32 addr_buf_len, u32 addr_len_out, u32 port_out)
{
	SELF;
	api_ptr(hp, n_out, 4, "wisp_udp_recv_from");
	api_ptr(hp, buf, len, "wisp_udp_recv_from");
	api_ptr(hp, addr_buf, addr_buf_len, "wisp_udp_recv_from");
	api_ptr(hp, addr_len_out, 4, "wisp_udp_recv_from");
	api_ptr(hp, port_out, 4, "wisp_udp_recv_from");
	uint16_t err;
	struct wasi_fd *f = dgram_fd(hp, fd, &err);
	if (f == NULL)
		return err;
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		ssize_t r = recvfrom(f->host, engine_guest_ptr(hp->mem, buf, len), len, 0,
		                     (struct sockaddr *)&ss, &sl);
		if (r >= 0) {
			char text[INET6_ADDRSTRLEN] = "";
			uint32_t p = 0;
			if (ss.ss_family == AF_INET) {
				inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, text, sizeof(text));
				p = ntohs(((struct sockaddr_in *)&ss)->sin_port);
			} else if (ss.ss_family == AF_INET6) {
				inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, text, sizeof(text));
				p = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
			}
			uint32_t tl = (uint32_t)strlen(text), v = (uint32_t)r;
			if (tl > addr_buf_len)
				tl = addr_buf_len;
			memcpy(api_ptr(hp, addr_buf, tl, "wisp_udp_recv_from"), text, tl);
			memcpy(api_ptr(hp, addr_len_out, 4, "wisp_udp_recv_from"), &tl, 4);
			memcpy(api_ptr(hp, port_out, 4, "wisp_udp_recv_from"), &p, 4);
			memcpy(api_ptr(hp, n_out, 4, "wisp_udp_recv_from"), &v, 4);
			api_work(hp, v);
			return 0;
		}
		if (errno != EAGAIN && errno != EINTR)
			return wasi_errno(errno);
		if ((err = wait_for(hp, f, REACTOR_READ, (int64_t)timeout)) != 0)
			return err;
		if ((f = dgram_fd(hp, fd, &err)) == NULL)
			return err;
	}
}
