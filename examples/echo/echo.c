/*
 * echo — a TCP echo server, one wisp process per connection.
 *
 *   wisp run --allow-listen PORT examples/echo.wasm [PORT [ADDRESS]]
 *                                                   (default 7000 127.0.0.1)
 *
 * The acceptor accepts a connection, spawns a handler and moves the socket
 * into it with wisp_send_fd; the handler reads and writes in plain blocking
 * style (the runtime parks it while the socket is not ready). A handler that
 * receives the line "crash" traps on purpose: that one connection closes,
 * every other keeps working. Port 0 picks a free port; the first line of
 * output says which.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wisp/guest.h>

#define TAG_CONN 1

static void handler(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	uint64_t tag = TAG_CONN;
	struct wisp_msg_info info;
	int32_t fd;
	if (wisp_receive(&tag, 1, WISP_INFINITY, &fd, sizeof(fd), &info) != WISP_OK)
		return;
	char buf[4096];
	for (;;) {
		uint32_t n = 0, off = 0, w;
		if (wisp_net_read(fd, buf, sizeof(buf), WISP_INFINITY, &n) != 0 || n == 0)
			break;
		if (n >= 5 && memcmp(buf, "crash", 5) == 0)
			__builtin_trap();   /* a bug in one handler ends one process */
		while (off < n) {
			if (wisp_net_write(fd, buf + off, n - off, WISP_INFINITY, &w) != 0)
				goto out;
			off += w;
		}
	}
out:
	close(fd);
}

int main(int argc, char **argv)
{
	unsigned port = argc > 1 ? (unsigned)atoi(argv[1]) : 7000;
	const char *addr = argc > 2 ? argv[2] : "127.0.0.1";
	int32_t lfd;
	int rc = wisp_tcp_listen(addr, (uint32_t)strlen(addr), port, 1024, &lfd);
	if (rc != 0) {
		fprintf(stderr, "echo: cannot listen on %s:%u: %s%s\n", addr, port, strerror(rc),
		        rc == ENOTCAPABLE ? " (give it 'wisp run --allow-listen PORT')" : "");
		return 1;
	}
	char text[64];
	uint32_t tl = 0, actual = 0;
	wisp_net_local_addr(lfd, text, sizeof(text), &tl, &actual);
	printf("listening on %.*s:%u\n", (int)tl, text, actual);
	fflush(stdout);
	for (;;) {
		int32_t conn;
		if (wisp_tcp_accept(lfd, WISP_INFINITY, &conn) != 0)
			continue;
		wisp_pid_t pid = wisp_spawn(handler, NULL, 0);
		if (pid == 0 || wisp_send_fd(pid, TAG_CONN, conn) != WISP_OK)
			close(conn);
	}
}
