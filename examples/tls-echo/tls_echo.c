/*
 * tls_echo — a TLS echo server, one wisp process per connection.
 *
 *   wisp run --allow-listen PORT --dir-ro CERTDIR examples/tls_echo.wasm \
 *       PORT CERTDIR/cert.pem CERTDIR/key.pem [ALPN [HANDSHAKE_SECS]]
 *
 * The acceptor accepts TCP connections and moves each into a handler
 * process of its own (wisp_send_fd), which runs the TLS handshake
 * (wisp_tls_server: the host reads the certificate and key from the
 * directory the process was given) and echoes plaintext back in blocking
 * style; the runtime parks the handler whenever TLS waits for the network,
 * so a slow or stalled client costs its own process only. A failed
 * handshake is reported on stderr with the reason the host gives
 * (wisp_tls_error): "tls_echo: handshake failed: ...". ALPN: the protocols
 * the server accepts, comma-separated ("-": none); HANDSHAKE_SECS: how
 * long a client may take to finish its handshake (default 10). Port 0
 * picks a free port; the first line of output says which.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wisp/guest.h>

#define TAG_CONN 1
#define MAX_ARG 1024

/* What a handler is spawned with: "cert\0key\0alpn\0" and the timeout. */
struct config {
	int64_t handshake_ns;
	char files[3 * MAX_ARG];
};

static void handler(const void *arg, uint32_t len)
{
	struct config c;
	if (len > sizeof(c) || len < sizeof(c.handshake_ns))
		return;
	memcpy(&c, arg, len);
	const char *cert = c.files, *key = cert + strlen(cert) + 1, *alpn = key + strlen(key) + 1;
	uint64_t tag = TAG_CONN;
	struct wisp_msg_info info;
	int32_t fd;
	if (wisp_receive(&tag, 1, WISP_INFINITY, &fd, sizeof(fd), &info) != WISP_OK)
		return;
	int32_t rc = wisp_tls_server(fd, cert, key, *alpn ? alpn : NULL, c.handshake_ns);
	if (rc != 0) {
		char why[400];
		fprintf(stderr, "tls_echo: handshake failed: %s (errno %d)\n", wisp_tls_error(why, sizeof(why)),
		        rc);
		close(fd);
		return;
	}
	char buf[16384];
	for (;;) {
		uint32_t n = 0, off = 0, w;
		if ((rc = wisp_net_read(fd, buf, sizeof(buf), WISP_INFINITY, &n)) != 0) {
			/* A peer that closed without close_notify too: its last
			 * bytes may have been cut off. */
			char why[400];
			fprintf(stderr, "tls_echo: connection ended: %s\n", wisp_tls_error(why, sizeof(why)));
			break;
		}
		if (n == 0)
			break;
		while (off < n) {
			if (wisp_net_write(fd, buf + off, n - off, WISP_INFINITY, &w) != 0)
				goto out;
			off += w;
		}
	}
out:
	close(fd);     /* sends close_notify */
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: tls_echo PORT CERT KEY [ALPN [HANDSHAKE_SECS]]\n");
		return 2;
	}
	unsigned port = (unsigned)atoi(argv[1]);
	const char *alpn = argc > 4 && strcmp(argv[4], "-") != 0 ? argv[4] : "";
	struct config c = { .handshake_ns = (argc > 5 ? atoll(argv[5]) : 10) * 1000000000LL };
	if (strlen(argv[2]) >= MAX_ARG || strlen(argv[3]) >= MAX_ARG || strlen(alpn) >= MAX_ARG) {
		fprintf(stderr, "tls_echo: an argument is too long\n");
		return 2;
	}
	size_t at = 0;
	const char *parts[3] = { argv[2], argv[3], alpn };
	for (int i = 0; i < 3; i++) {
		memcpy(c.files + at, parts[i], strlen(parts[i]) + 1);
		at += strlen(parts[i]) + 1;
	}
	uint32_t clen = (uint32_t)(sizeof(c.handshake_ns) + at);
	const char *addr = "127.0.0.1";
	int32_t lfd;
	int rc = wisp_tcp_listen(addr, (uint32_t)strlen(addr), port, 1024, &lfd);
	if (rc != 0) {
		fprintf(stderr, "tls_echo: cannot listen on %s:%u: %s\n", addr, port, strerror(rc));
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
		wisp_pid_t pid = wisp_spawn(handler, &c, clen);
		if (pid == 0 || wisp_send_fd(pid, TAG_CONN, conn) != WISP_OK)
			close(conn);
	}
}
