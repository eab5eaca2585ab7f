/*
 * tls.h — TLS streams over a process's sockets (wisp_tls.c), as the rest
 * of the host layer sees them: the WASI table frees them, the WASI and
 * wisp_net I/O calls read and write through them, and messages carry them
 * from one process to another with their socket.
 */
#ifndef WISP_TLS_H
#define WISP_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct host_proc;
struct ssl_st;
struct tls_stream;
struct wasi_fd;

/* Free a stream (its SSL state and the memory charged for it). An
 * established one sends its close_notify first, without waiting (the
 * socket is still open; the caller closes it afterwards). Takes void *
 * to serve as a moving socket's extra_free (struct msg_socket). NULL is
 * allowed. */
void tls_stream_free(void *t);

/* Read or write up to len bytes at p through f's TLS stream, for the
 * guest of hp, as a socket read/write does: parks the process while the
 * stream waits for its socket (the guest's NONBLOCK: WASI_EAGAIN
 * instead), up to timeout_ns (< 0: no limit; WASI_ETIMEDOUT). p stays
 * valid across the park (it is not guest memory that may move: callers
 * with guest addresses use tls_xfer). *done: bytes moved; a read of 0
 * means the peer closed the stream (close_notify). A WASI errno. */
uint16_t tls_io(struct host_proc *hp, struct wasi_fd *f, void *p, size_t len,
                bool write, int64_t timeout_ns, size_t *done);

/* wisp_net.read/write on TLS stream `fd`: as tls_io, with the guest's
 * buffer (buf, len) resolved again after every park, and *n_out written
 * to guest memory. A WASI errno. */
uint32_t tls_xfer(struct host_proc *hp, uint32_t fd, uint32_t buf, uint32_t len,
                  int64_t timeout_ns, uint32_t n_out, bool write);

/* sock_shutdown's writing half on TLS stream `fd`: send its close_notify
 * (once; later writes are WASI_EPIPE), parking while the socket has no
 * room, for at most SHUTDOWN_WAIT (a peer that reads nothing must not hold
 * the process: WASI_ETIMEDOUT); the guest's NONBLOCK: WASI_EAGAIN instead,
 * and the next call finishes it. The caller shuts the TCP side down after
 * a 0 only: a FIN before the close_notify is a truncated stream to the
 * peer. A stream that is not established, or failed, has none to send: 0.
 * A WASI errno. */
uint16_t tls_shutdown_write(struct host_proc *hp, uint32_t fd);

/* Whether f's TLS stream holds bytes not read yet (decrypted, or read
 * ahead from the socket and making up a record, or the peer's end): it is
 * readable whatever its socket says (poll, receive_fd). On the process's
 * own fiber: it may decrypt a record read ahead (never waits), and a
 * failure it meets is the next read's. */
bool tls_pending(const struct wasi_fd *f);

/* A stream moving to another process in a message: uncharge it from the
 * process that sent it (tls_stream_leave) and charge the receiver
 * (tls_stream_join: WASI_ENOMEM past its memory limit, the stream
 * unchanged). */
void tls_stream_leave(struct tls_stream *t);
uint16_t tls_stream_join(struct tls_stream *t, struct host_proc *hp);

/* A node's TLS state (one per runtime, made on first use through
 * rt_host_shared): the contexts it caches and its socket BIO method.
 * tls_node_new: NULL if out of memory. */
void *tls_node_new(void);
void tls_node_free(void *node);

/* Read and write ssl's records over host socket fd (not owned), with
 * node's socket BIO, as every stream does: OpenSSL's socket BIO, but
 * writing with send(MSG_NOSIGNAL), so that a peer gone away is EPIPE and
 * never a SIGPIPE. 0, or -ENOMEM. */
int tls_attach_socket(void *node, struct ssl_st *ssl, int fd);

#endif
