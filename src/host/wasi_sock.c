/*
 * wasi_sock.c — the sock_* functions of preview 1 on fds that are sockets.
 *
 * Preview 1 cannot create sockets; a guest only holds one if the embedder
 * hands it over (stdio, or a listener once networking lands) or accepts a
 * connection on such a listener. Non-socket fds give ENOTSOCK, free slots
 * EBADF. Sends use MSG_NOSIGNAL so a closed peer is EPIPE, never SIGPIPE.
 */
#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "tls.h"
#include "wasi_impl.h"

#define W(self) wasi_ctx_of(HOST_PROC(self))
#define MEM(self) (HOST_PROC(self)->mem)
#define STACK_IOVS 16

#define WASI_RIFLAG_PEEK 0x1
#define WASI_RIFLAG_WAITALL 0x2
#define WASI_ROFLAG_TRUNCATED 0x1
#define WASI_SDFLAG_RD 0x1
#define WASI_SDFLAG_WR 0x2

/* The socket at `fd` holding `rights`: EBADF, ENOTSOCK or ENOTCAPABLE. */
static struct wasi_fd *sock_lookup(struct wasi_ctx *w, uint32_t fd,
                                   uint64_t rights, uint16_t *err)
{
	struct wasi_fd *f = wasi_fd_lookup(w, fd, 0, err);
	if (f == NULL)
		return NULL;
	if (f->filetype != WASI_FILETYPE_SOCKET_STREAM &&
	    f->filetype != WASI_FILETYPE_SOCKET_DGRAM) {
		*err = WASI_ENOTSOCK;
		return NULL;
	}
	return wasi_fd_lookup(w, fd, rights, err);
}

uint32_t WASI_FN(sock_accept)(WASI_SELF, uint32_t fd, uint32_t flags,
                              uint32_t fd_out)
{
	wasi_call_work(self);
	uint16_t err;
	struct wasi_fd *f = sock_lookup(W(self), fd, WASI_RIGHT_SOCK_ACCEPT,
	                                &err);
	if (f == NULL)
		return err;
	if (flags & ~(uint32_t)WASI_FDFLAG_NONBLOCK)
		return WASI_EINVAL;
	if (engine_guest_ptr(MEM(self), fd_out, 4) == NULL)
		return WASI_EFAULT;
	int fl = SOCK_CLOEXEC;
	/* A wisp listener's connections are wisp sockets too: non-blocking on
	 * the host, parking the process when the guest wants to block. */
	if ((flags & WASI_FDFLAG_NONBLOCK) || f->parks)
		fl |= SOCK_NONBLOCK;
	/* A borrowed listener (stdin) the guest made non-blocking: its host
	 * fd's flags are not ours, so look before accepting. */
	if (wasi_would_block(f, false))
		return WASI_EAGAIN;
	int h;
	while ((h = accept4(f->host, NULL, NULL, fl)) < 0 && errno == EAGAIN &&
	       wasi_wait_ready(self, f, false))
		;
	if (h < 0)
		return wasi_errno(errno);
	struct wasi_fd nf = {
		.host = h,
		.filetype = WASI_FILETYPE_SOCKET_STREAM,
		.rights_base = WASI_RIGHTS_SOCKET & f->rights_inheriting,
		.rights_inheriting = f->rights_inheriting,
		.parks = f->parks,
		.guest_nonblock = (flags & WASI_FDFLAG_NONBLOCK) != 0,
	};
	uint32_t slot;
	err = wasi_fd_insert(W(self), &nf, &slot);
	if (err) {
		close(h);
		return err;
	}
	return wasi_put32(MEM(self), fd_out, slot);
}

/* sock_recv or sock_send (write) on a TLS stream: plaintext
 * through it, the first non-empty iovec at a time; PEEK and WAITALL are
 * ENOTSUP there. Frees iov. */
static uint32_t tls_sock(WASI_SELF, struct wasi_fd *f, struct iovec *iov, int niov,
                         struct iovec *stackbuf, uint32_t ri_flags, uint32_t datalen,
                         uint32_t ro_flags, bool write)
{
	uint16_t err = ri_flags != 0 ? WASI_ENOTSUP : 0;
	size_t done = 0;
	int i = 0;
	while (i < niov - 1 && iov[i].iov_len == 0)
		i++;
	if (err == 0 && niov > 0)
		err = tls_io(HOST_PROC(self), f, iov[i].iov_base, iov[i].iov_len, write, -1, &done);
	wasi_iov_free(HOST_PROC(self), iov, stackbuf);
	if (err)
		return err;
	wasi_moved(self, done);
	if (!write)
		wasi_st16(engine_guest_ptr(MEM(self), ro_flags, 2), 0);
	return wasi_put32(MEM(self), datalen, (uint32_t)done);
}

uint32_t WASI_FN(sock_recv)(WASI_SELF, uint32_t fd, uint32_t ri_data,
                            uint32_t ri_data_len, uint32_t ri_flags,
                            uint32_t ro_datalen, uint32_t ro_flags)
{
	wasi_call_work(self);
	uint16_t err;
	struct wasi_fd *f = sock_lookup(W(self), fd, WASI_RIGHT_FD_READ, &err);
	if (f == NULL)
		return err;
	if (ri_flags & ~(uint32_t)(WASI_RIFLAG_PEEK | WASI_RIFLAG_WAITALL))
		return WASI_EINVAL;
	if (engine_guest_ptr(MEM(self), ro_datalen, 4) == NULL ||
	    engine_guest_ptr(MEM(self), ro_flags, 2) == NULL)
		return WASI_EFAULT;
	struct iovec stackbuf[STACK_IOVS], *iov;
	int niov;
	err = wasi_iov_load(HOST_PROC(self), ri_data, ri_data_len, stackbuf,
	                    STACK_IOVS, &iov, &niov);
	if (err)
		return err;
	if (f->tls != NULL)   /* no flags through TLS */
		return tls_sock(self, f, iov, niov, stackbuf, ri_flags, ro_datalen, ro_flags,
		                false);
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)niov };
	int fl = 0;
	if (f->borrowed && (f->vflags & WASI_FDFLAG_NONBLOCK))
		fl |= MSG_DONTWAIT;   /* the guest's own NONBLOCK (wasi_fd.c) */
	if (ri_flags & WASI_RIFLAG_PEEK)
		fl |= MSG_PEEK;
	if (ri_flags & WASI_RIFLAG_WAITALL)
		fl |= MSG_WAITALL;
	ssize_t r;
	int e;
	while ((r = recvmsg(f->host, &msg, fl)) < 0 && (e = errno) == EAGAIN &&
	       wasi_wait_ready(self, f, false))
		;
	e = errno;
	wasi_iov_free(HOST_PROC(self), iov, stackbuf);
	if (r < 0)
		return wasi_errno(e);
	wasi_moved(self, (uint64_t)r);
	wasi_put32(MEM(self), ro_datalen, (uint32_t)r);
	uint16_t ro = (msg.msg_flags & MSG_TRUNC) ? WASI_ROFLAG_TRUNCATED : 0;
	wasi_st16(engine_guest_ptr(MEM(self), ro_flags, 2), ro);
	return 0;
}

uint32_t WASI_FN(sock_send)(WASI_SELF, uint32_t fd, uint32_t si_data,
                            uint32_t si_data_len, uint32_t si_flags,
                            uint32_t so_datalen)
{
	wasi_call_work(self);
	uint16_t err;
	struct wasi_fd *f = sock_lookup(W(self), fd, WASI_RIGHT_FD_WRITE, &err);
	if (f == NULL)
		return err;
	if (si_flags != 0)   /* preview 1 defines no siflags */
		return WASI_EINVAL;
	if (engine_guest_ptr(MEM(self), so_datalen, 4) == NULL)
		return WASI_EFAULT;
	struct iovec stackbuf[STACK_IOVS], *iov;
	int niov;
	err = wasi_iov_load(HOST_PROC(self), si_data, si_data_len, stackbuf,
	                    STACK_IOVS, &iov, &niov);
	if (err)
		return err;
	if (f->tls != NULL)
		return tls_sock(self, f, iov, niov, stackbuf, 0, so_datalen, 0, true);
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)niov };
	ssize_t r;
	int e;
	int fl = MSG_NOSIGNAL;
	if (f->borrowed && (f->vflags & WASI_FDFLAG_NONBLOCK))
		fl |= MSG_DONTWAIT;
	while ((r = sendmsg(f->host, &msg, fl)) < 0 && (e = errno) == EAGAIN &&
	       wasi_wait_ready(self, f, true))
		;
	e = errno;
	wasi_iov_free(HOST_PROC(self), iov, stackbuf);
	if (r < 0)
		return wasi_errno(e);
	wasi_moved(self, (uint64_t)r);
	return wasi_put32(MEM(self), so_datalen, (uint32_t)r);
}

uint32_t WASI_FN(sock_shutdown)(WASI_SELF, uint32_t fd, uint32_t how)
{
	wasi_call_work(self);
	uint16_t err;
	struct wasi_fd *f = sock_lookup(W(self), fd, WASI_RIGHT_SOCK_SHUTDOWN,
	                                &err);
	if (f == NULL)
		return err;
	int h;
	switch (how) {
	case WASI_SDFLAG_RD: h = SHUT_RD; break;
	case WASI_SDFLAG_WR: h = SHUT_WR; break;
	case WASI_SDFLAG_RD | WASI_SDFLAG_WR: h = SHUT_RDWR; break;
	default: return WASI_EINVAL;
	}
	/* TLS ends its writing with a close_notify before the FIN: without it
	 * the peer sees a truncated stream (an error), not the end. */
	if (f->tls != NULL && (how & WASI_SDFLAG_WR)) {
		if ((err = tls_shutdown_write(HOST_PROC(self), fd)) != 0)
			return err;
		f = sock_lookup(W(self), fd, WASI_RIGHT_SOCK_SHUTDOWN, &err);
		if (f == NULL)
			return err;
	}
	return shutdown(f->host, h) == 0 ? 0 : wasi_errno(errno);
}
