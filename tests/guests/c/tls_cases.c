/*
 * tls_cases — TLS from a guest's side, driven by tests/e2e/test_tls.py.
 *
 *   client PORT NAME CAFILE|- FLAGS ALPN|-   connect to 127.0.0.1:PORT,
 *       handshake (NAME verified unless FLAGS has 1), send "ping", print
 *       the echo; or "handshake failed: rc=N: TEXT"
 *   move CERT KEY    serve one connection: the handshake and the first
 *       echo in the acceptor, then the TLS stream moves to a worker process
 *       in a message, which echoes the rest; the acceptor checks the fd is
 *       no longer its own
 *   kill CERT KEY N  accept N connections; each one's handler is killed
 *       while its handshake waits for the client; prints "killed N"
 *   keyout CERT KEY  serve one connection with a key the process may not
 *       read: prints why the handshake could not start
 *   poll CERT KEY    serve one connection: read once, then poll(2) the fd
 *       (at most 10 s) and read again; prints what each returned (the
 *       test sends two records at once: the second is read ahead by
 *       OpenSSL with the first, and is in no socket buffer when polled)
 *   mixed CERT KEY   serve one connection: read(2) (WASI's fd_read) until
 *       "a" comes, answer "got a", then wisp_net_read (no time limit) until
 *       "b" comes, answer "got b"; prints what each returned (the test
 *       sends each only once the server waits for it: both reads park)
 *   halfclose CERT KEY  serve one connection: write "bye", shut down
 *       writing (shutdown(2): a close_notify, then the FIN), read what the
 *       client still sends, then try to write again; prints each result
 *   shared CERT KEY  three connections with the same files: the first
 *       served (and echoed) by this process, the second handed to a child
 *       spawned with no directories at all (its handshake must be refused,
 *       whatever the node has cached), the third by this process again
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <wisp/guest.h>

#define TAG_CONN 1
#define TAG_DONE 2

static const char *arg_or_null(const char *s)
{
	return strcmp(s, "-") == 0 ? NULL : s;
}

static int32_t listen_any(void)
{
	int32_t lfd;
	if (wisp_tcp_listen("127.0.0.1", 9, 0, 128, &lfd) != 0) {
		printf("cannot listen\n");
		exit(1);
	}
	char text[64];
	uint32_t tl = 0, port = 0;
	wisp_net_local_addr(lfd, text, sizeof(text), &tl, &port);
	printf("listening on 127.0.0.1:%u\n", port);
	fflush(stdout);
	return lfd;
}

/* Echo until the peer closes; how many bytes went back. */
static uint32_t echo(int32_t fd)
{
	char buf[4096];
	uint32_t total = 0, n, w;
	while (wisp_net_read(fd, buf, sizeof(buf), WISP_INFINITY, &n) == 0 && n > 0) {
		for (uint32_t off = 0; off < n; off += w)
			if (wisp_net_write(fd, buf + off, n - off, WISP_INFINITY, &w) != 0)
				return total;
		total += n;
	}
	return total;
}

static int client(char **argv)
{
	unsigned port = (unsigned)atoi(argv[2]);
	int32_t fd;
	int32_t rc = wisp_tcp_connect("127.0.0.1", 9, port, 10000000000LL, &fd);
	if (rc != 0) {
		printf("connect failed: %d\n", rc);
		return 1;
	}
	rc = wisp_tls_client(fd, argv[3], arg_or_null(argv[6]), arg_or_null(argv[4]),
	                     (uint32_t)atoi(argv[5]), 10000000000LL);
	if (rc != 0) {
		char why[400];
		printf("handshake failed: rc=%d: %s\n", rc, wisp_tls_error(why, sizeof(why)));
		close(fd);
		return 0;
	}
	char alpn[64];
	uint32_t al = 0;
	wisp_tls_alpn(fd, alpn, sizeof(alpn), &al);
	printf("handshake ok alpn=%.*s\n", (int)al, alpn);
	uint32_t n;
	/* Plain WASI write (fd_write) and wisp_net_read: both go through TLS. */
	if (write(fd, "ping", 4) != 4) {
		printf("write failed\n");
		return 1;
	}
	char buf[64];
	if ((rc = wisp_net_read(fd, buf, sizeof(buf), 10000000000LL, &n)) != 0) {
		printf("read failed: %d\n", rc);
		return 1;
	}
	printf("echo: %.*s\n", (int)n, buf);
	close(fd);
	return 0;
}

static void worker(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	uint64_t tag = TAG_CONN;
	struct wisp_msg_info info;
	int32_t fd;
	if (wisp_receive(&tag, 1, WISP_INFINITY, &fd, sizeof(fd), &info) != WISP_OK)
		return;
	/* Proof the stream is TLS here: the protocol ALPN chose with the
	 * acceptor's handshake. */
	char alpn[64];
	uint32_t al = 0;
	int32_t rc = wisp_tls_alpn(fd, alpn, sizeof(alpn), &al);
	printf("worker got a TLS stream: rc=%d alpn=%.*s\n", rc, (int)al, alpn);
	fflush(stdout);
	uint32_t n = echo(fd);
	printf("worker echoed %u bytes\n", n);
	fflush(stdout);
	close(fd);
	wisp_send(info.from, TAG_DONE, NULL, 0);
}

static int move(char **argv)
{
	int32_t lfd = listen_any(), fd;
	if (wisp_tcp_accept(lfd, WISP_INFINITY, &fd) != 0)
		return 1;
	int32_t rc = wisp_tls_server(fd, argv[2], argv[3], "echo/1", 10000000000LL);
	if (rc != 0) {
		char why[400];
		printf("handshake failed: %s\n", wisp_tls_error(why, sizeof(why)));
		return 1;
	}
	char buf[64];
	uint32_t n, w;
	if (wisp_net_read(fd, buf, sizeof(buf), WISP_INFINITY, &n) != 0 ||
	    wisp_net_write(fd, buf, n, WISP_INFINITY, &w) != 0)
		return 1;
	printf("acceptor echoed %.*s\n", (int)n, buf);
	wisp_pid_t pid = wisp_spawn(worker, NULL, 0);
	if (wisp_send_fd(pid, TAG_CONN, fd) != WISP_OK)
		return 1;
	rc = wisp_net_write(fd, "x", 1, WISP_INFINITY, &w);
	printf("acceptor's fd after the move: rc=%d\n", rc);
	fflush(stdout);
	uint64_t tag = TAG_DONE;
	struct wisp_msg_info info;
	return wisp_receive(&tag, 1, WISP_INFINITY, NULL, 0, &info) == WISP_OK ? 0 : 1;
}

static void stuck_handler(const void *arg, uint32_t len)
{
	char files[2048];
	memcpy(files, arg, len);
	uint64_t tag = TAG_CONN;
	struct wisp_msg_info info;
	int32_t fd;
	if (wisp_receive(&tag, 1, WISP_INFINITY, &fd, sizeof(fd), &info) != WISP_OK)
		return;
	wisp_send(info.from, TAG_DONE, NULL, 0);
	wisp_tls_server(fd, files, files + strlen(files) + 1, NULL, WISP_INFINITY);
	printf("handshake returned: it should have been killed\n");
}

static int kill_mid_handshake(char **argv)
{
	int32_t lfd = listen_any();
	int count = atoi(argv[4]), killed = 0;
	char files[2048];
	size_t cl = strlen(argv[2]) + 1, kl = strlen(argv[3]) + 1;
	if (cl + kl > sizeof(files))
		return 2;
	memcpy(files, argv[2], cl);
	memcpy(files + cl, argv[3], kl);
	for (int i = 0; i < count; i++) {
		int32_t fd;
		if (wisp_tcp_accept(lfd, WISP_INFINITY, &fd) != 0)
			return 1;
		wisp_pid_t pid = wisp_spawn(stuck_handler, files, (uint32_t)(cl + kl));
		uint64_t ref, tag = TAG_DONE;
		struct wisp_msg_info info;
		wisp_monitor(pid, &ref);
		wisp_send_fd(pid, TAG_CONN, fd);
		/* It has the socket; give it time to park in its handshake. */
		wisp_receive(&tag, 1, WISP_INFINITY, NULL, 0, &info);
		wisp_sleep(100000000);
		wisp_kill(pid);
		struct wisp_exit_reason r;
		char text[64];
		if (wisp_wait_down(ref, &r, text, sizeof(text)) == WISP_OK && r.kind == WISP_EXIT_KILLED)
			killed++;
	}
	printf("killed %d\n", killed);
	return 0;
}

static int keyout(char **argv)
{
	int32_t lfd = listen_any(), fd;
	if (wisp_tcp_accept(lfd, WISP_INFINITY, &fd) != 0)
		return 1;
	int32_t rc = wisp_tls_server(fd, argv[2], argv[3], NULL, 10000000000LL);
	char why[400];
	printf("accept: rc=%d: %s\n", rc, rc ? wisp_tls_error(why, sizeof(why)) : "ok");
	close(fd);
	return 0;
}

/* Try a TLS server handshake on the socket received, with the files in
 * arg ("cert\0key\0"), and report to the sender. */
static void fs_less_handler(const void *arg, uint32_t len)
{
	char files[2048];
	if (len > sizeof(files))
		return;
	memcpy(files, arg, len);
	uint64_t tag = TAG_CONN;
	struct wisp_msg_info info;
	int32_t fd;
	if (wisp_receive(&tag, 1, WISP_INFINITY, &fd, sizeof(fd), &info) != WISP_OK)
		return;
	int32_t rc = wisp_tls_server(fd, files, files + strlen(files) + 1, NULL, 10000000000LL);
	char why[400];
	printf("child: rc=%d: %s\n", rc, rc ? wisp_tls_error(why, sizeof(why)) : "ok");
	fflush(stdout);
	close(fd);
	wisp_send(info.from, TAG_DONE, NULL, 0);
}

/* Serve one connection here: handshake and one echo. */
static int serve_one(int32_t lfd, const char *cert, const char *key, const char *who)
{
	int32_t fd;
	if (wisp_tcp_accept(lfd, WISP_INFINITY, &fd) != 0)
		return 1;
	int32_t rc = wisp_tls_server(fd, cert, key, NULL, 10000000000LL);
	char why[400];
	printf("%s: rc=%d: %s\n", who, rc, rc ? wisp_tls_error(why, sizeof(why)) : "ok");
	fflush(stdout);
	char buf[64];
	uint32_t n, w;
	if (rc == 0 && wisp_net_read(fd, buf, sizeof(buf), WISP_INFINITY, &n) == 0)
		wisp_net_write(fd, buf, n, WISP_INFINITY, &w);
	close(fd);
	return 0;
}

static int shared(char **argv)
{
	int32_t lfd = listen_any(), fd;
	char files[2048];
	size_t cl = strlen(argv[2]) + 1, kl = strlen(argv[3]) + 1;
	if (cl + kl > sizeof(files))
		return 2;
	memcpy(files, argv[2], cl);
	memcpy(files + cl, argv[3], kl);
	if (serve_one(lfd, argv[2], argv[3], "parent") != 0)
		return 1;
	if (wisp_tcp_accept(lfd, WISP_INFINITY, &fd) != 0)
		return 1;
	wisp_pid_t pid = wisp_spawn_without_fs(fs_less_handler, files, (uint32_t)(cl + kl));
	if (pid == 0 || wisp_send_fd(pid, TAG_CONN, fd) != WISP_OK)
		return 1;
	uint64_t tag = TAG_DONE;
	struct wisp_msg_info info;
	if (wisp_receive(&tag, 1, WISP_INFINITY, NULL, 0, &info) != WISP_OK)
		return 1;
	return serve_one(lfd, argv[2], argv[3], "parent again");
}

static int poll_after_read(char **argv)
{
	int32_t lfd = listen_any(), fd;
	if (wisp_tcp_accept(lfd, WISP_INFINITY, &fd) != 0)
		return 1;
	int32_t rc = wisp_tls_server(fd, argv[2], argv[3], NULL, 10000000000LL);
	if (rc != 0)
		return 1;
	char buf[256];
	ssize_t n = read(fd, buf, sizeof(buf));
	printf("read %.*s\n", (int)(n > 0 ? n : 0), buf);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int ready = poll(&p, 1, 10000);
	printf("poll: %d%s\n", ready, ready == 1 && (p.revents & POLLIN) ? " POLLIN" : "");
	n = read(fd, buf, sizeof(buf));
	printf("read %.*s\n", (int)(n > 0 ? n : 0), buf);
	close(fd);
	return 0;
}

static int half_close(char **argv)
{
	int32_t lfd = listen_any(), fd;
	if (wisp_tcp_accept(lfd, WISP_INFINITY, &fd) != 0)
		return 1;
	if (wisp_tls_server(fd, argv[2], argv[3], NULL, 10000000000LL) != 0)
		return 1;
	if (write(fd, "bye", 3) != 3)
		return 1;
	int rc = shutdown(fd, SHUT_WR);
	printf("shutdown: %d\n", rc == 0 ? 0 : errno);
	fflush(stdout);
	char buf[64];
	uint32_t n = 0, w = 0;
	rc = wisp_net_read(fd, buf, sizeof(buf), 10000000000LL, &n);
	printf("read after shutdown: rc=%d %.*s\n", rc, (int)n, buf);
	rc = wisp_net_write(fd, "more", 4, 10000000000LL, &w);
	char why[400];
	printf("write after shutdown: rc=%d: %s\n", rc, wisp_tls_error(why, sizeof(why)));
	close(fd);
	return 0;
}

static int mixed_waits(char **argv)
{
	int32_t lfd = listen_any(), fd;
	if (wisp_tcp_accept(lfd, WISP_INFINITY, &fd) != 0)
		return 1;
	/* No time limits anywhere: a timer left from a wait would wake the
	 * process, and hide a wake-up the reactor lost. */
	if (wisp_tls_server(fd, argv[2], argv[3], NULL, WISP_INFINITY) != 0)
		return 1;
	char buf[64];
	ssize_t n = read(fd, buf, sizeof(buf));
	printf("read: %.*s\n", (int)(n > 0 ? n : 0), buf);
	fflush(stdout);
	if (n <= 0 || write(fd, "got a", 5) != 5)
		return 1;
	uint32_t got = 0, w;
	int32_t rc = wisp_net_read(fd, buf, sizeof(buf), WISP_INFINITY, &got);
	printf("wisp_net_read: rc=%d %.*s\n", rc, (int)(rc == 0 ? got : 0), buf);
	fflush(stdout);
	if (rc == 0)
		wisp_net_write(fd, "got b", 5, WISP_INFINITY, &w);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 7 && strcmp(argv[1], "client") == 0)
		return client(argv);
	if (argc >= 4 && strcmp(argv[1], "move") == 0)
		return move(argv);
	if (argc >= 5 && strcmp(argv[1], "kill") == 0)
		return kill_mid_handshake(argv);
	if (argc >= 4 && strcmp(argv[1], "keyout") == 0)
		return keyout(argv);
	if (argc >= 4 && strcmp(argv[1], "poll") == 0)
		return poll_after_read(argv);
	if (argc >= 4 && strcmp(argv[1], "halfclose") == 0)
		return half_close(argv);
	if (argc >= 4 && strcmp(argv[1], "mixed") == 0)
		return mixed_waits(argv);
	if (argc >= 4 && strcmp(argv[1], "shared") == 0)
		return shared(argv);
	fprintf(stderr, "usage: see the top of tls_cases.c\n");
	return 2;
}
