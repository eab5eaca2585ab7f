/*
 * wire.h — byte I/O on stream sockets under a deadline, for the short
 * exchanges of distribution set-up (EPMD requests, the handshake).
 *
 * Every call is bounded by an absolute deadline on the monotonic clock
 * (milliseconds, wire_deadline()), so a peer that stops answering costs the
 * caller at most the time it allowed, never a hung thread. The fd may be
 * blocking or non-blocking: reads and writes never block in the kernel
 * (MSG_DONTWAIT, after poll says the fd is ready), and never raise SIGPIPE
 * (MSG_NOSIGNAL). Reads take exactly the bytes asked for and nothing more,
 * so whatever the peer sends next stays in the socket for the caller.
 *
 * Error convention: 0 or a negative errno. -ETIMEDOUT when the deadline
 * passes, -ECONNRESET when the peer closed the stream (also a clean EOF).
 */
#ifndef WISP_DIST_WIRE_H
#define WISP_DIST_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Milliseconds on the monotonic clock. */
int64_t wire_now_ms(void);

/* The deadline timeout_ms from now (a negative timeout: already passed). */
int64_t wire_deadline(int timeout_ms);

/* Read exactly len bytes. On -ECONNRESET, *got (if not NULL) says how many
 * had arrived before the end of the stream; on success it is len. */
int wire_read_exact(int fd, void *buf, size_t len, int64_t deadline, size_t *got);

/* Write all len bytes. */
int wire_write_all(int fd, const void *buf, size_t len, int64_t deadline);

/* A new TCP socket (SOCK_CLOEXEC | SOCK_NONBLOCK) connected to sa, in
 * *fd_out; the socket stays non-blocking. -ECONNREFUSED, -ETIMEDOUT, ... */
int wire_connect(const struct sockaddr *sa, socklen_t salen, int64_t deadline, int *fd_out);

#endif
