/*
 * wire.c — see wire.h.
 *
 * Each operation is "poll until ready or the deadline, then one
 * non-blocking send/recv", repeated. MSG_DONTWAIT makes the call
 * non-blocking whatever the fd's own mode, so the caller's fd flags are
 * never changed; an fd that is not a socket (a pipe in a test) falls back to
 * read/write, which poll has just said will not block for a stream.
 */
#include <errno.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include "wire.h"

int64_t wire_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t wire_deadline(int timeout_ms)
{
	return wire_now_ms() + timeout_ms;
}

/* Wait until fd is ready for `events` or the deadline passes: 0 when ready
 * (an error or hangup counts: the next call reports it), -ETIMEDOUT. */
static int wait_ready(int fd, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - wire_now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd p = { .fd = fd, .events = events };
		int n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

static ssize_t recv_some(int fd, void *buf, size_t len)
{
	ssize_t r = recv(fd, buf, len, MSG_DONTWAIT);
	if (r < 0 && errno == ENOTSOCK)
		r = read(fd, buf, len);
	return r;
}

static ssize_t send_some(int fd, const void *buf, size_t len)
{
	ssize_t r = send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (r < 0 && errno == ENOTSOCK)
		r = write(fd, buf, len);
	return r;
}

int wire_read_exact(int fd, void *buf, size_t len, int64_t deadline, size_t *got)
{
	size_t n = 0;
	int rc = 0;
	while (n < len) {
		ssize_t r = recv_some(fd, (char *)buf + n, len - n);
		if (r > 0) {
			n += (size_t)r;
			continue;
		}
		if (r == 0) {
			rc = -ECONNRESET;
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			rc = -errno;
			break;
		}
		rc = wait_ready(fd, POLLIN, deadline);
		if (rc != 0)
			break;
	}
	if (got != NULL)
		*got = n;
	return rc;
}

int wire_write_all(int fd, const void *buf, size_t len, int64_t deadline)
{
	size_t n = 0;
	while (n < len) {
		ssize_t r = send_some(fd, (const char *)buf + n, len - n);
		if (r > 0) {
			n += (size_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return errno == EPIPE ? -ECONNRESET : -errno;
		int rc = wait_ready(fd, POLLOUT, deadline);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int wire_connect(const struct sockaddr *sa, socklen_t salen, int64_t deadline, int *fd_out)
{
	*fd_out = -1;
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	int rc = 0;
	if (connect(fd, sa, salen) != 0) {
		if (errno != EINPROGRESS) {
			rc = -errno;
		} else {
			rc = wait_ready(fd, POLLOUT, deadline);
			int soerr = 0;
			socklen_t sl = sizeof(soerr);
			if (rc == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
				rc = -errno;
			else if (rc == 0 && soerr != 0)
				rc = -soerr;
		}
	}
	if (rc != 0) {
		close(fd);
		return rc;
	}
	*fd_out = fd;
	return 0;
}
