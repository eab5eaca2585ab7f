/*
 * test_tls.c — the socket BIO under every TLS stream (src/host/wisp_tls.c,
 * tls_attach_socket), driven by real OpenSSL sessions over a socketpair:
 * a server SSL object on wisp's BIO, a client on OpenSSL's own.
 *
 * What it must do as OpenSSL's socket BIO does: a handshake and records
 * both ways, EAGAIN as "want read/write", a peer that closes without
 * close_notify as an error (not as the stream's end). What it must do
 * better: a write to a peer that has gone is EPIPE, never a SIGPIPE. This
 * binary keeps SIGPIPE's default action (the process dies), as any program
 * embedding the host might: with OpenSSL's BIO, which write()s, the test
 * run dies here.
 */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "host/tls.h"

struct pair {
	void *node;
	SSL_CTX *sctx, *cctx;
	SSL *server, *client;     /* server: on wisp's BIO; client: OpenSSL's */
	int sfd, cfd;
};

/* A self-signed P-256 certificate and its key. */
static void identity(X509 **cert, EVP_PKEY **key)
{
	*key = EVP_EC_gen("P-256");
	assert_non_null(*key);
	X509 *c = X509_new();
	assert_non_null(c);
	ASN1_INTEGER_set(X509_get_serialNumber(c), 1);
	X509_gmtime_adj(X509_getm_notBefore(c), 0);
	X509_gmtime_adj(X509_getm_notAfter(c), 3600);
	X509_NAME *name = X509_get_subject_name(c);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1,
	                           -1, 0);
	X509_set_issuer_name(c, name);
	assert_int_equal(X509_set_pubkey(c, *key), 1);
	assert_true(X509_sign(c, *key, EVP_sha256()) > 0);
	*cert = c;
}

static void nonblocking(int fd)
{
	assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
}

/* Both ends, the handshake done. */
static struct pair connected(void)
{
	struct pair p = { .node = tls_node_new() };
	assert_non_null(p.node);
	X509 *cert;
	EVP_PKEY *key;
	identity(&cert, &key);
	p.sctx = SSL_CTX_new(TLS_server_method());
	p.cctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(p.sctx);
	assert_non_null(p.cctx);
	assert_int_equal(SSL_CTX_use_certificate(p.sctx, cert), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(p.sctx, key), 1);
	X509_free(cert);
	EVP_PKEY_free(key);
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	p.sfd = sv[0];
	p.cfd = sv[1];
	nonblocking(p.sfd);
	nonblocking(p.cfd);
	p.server = SSL_new(p.sctx);
	p.client = SSL_new(p.cctx);
	assert_int_equal(tls_attach_socket(p.node, p.server, p.sfd), 0);
	assert_int_equal(SSL_set_fd(p.client, p.cfd), 1);
	SSL_set_accept_state(p.server);
	SSL_set_connect_state(p.client);
	/* Each side in turn until both are done: a side that waits for the
	 * other says so (want read), never blocks. */
	int sdone = 0, cdone = 0;
	for (int i = 0; i < 100 && !(sdone && cdone); i++) {
		if (!cdone) {
			int r = SSL_do_handshake(p.client);
			cdone = r == 1;
			assert_true(cdone || SSL_get_error(p.client, r) == SSL_ERROR_WANT_READ);
		}
		if (!sdone) {
			int r = SSL_do_handshake(p.server);
			sdone = r == 1;
			assert_true(sdone || SSL_get_error(p.server, r) == SSL_ERROR_WANT_READ);
		}
	}
	assert_true(sdone && cdone);
	return p;
}

static void pair_free(struct pair *p)
{
	SSL_free(p->server);
	SSL_free(p->client);
	SSL_CTX_free(p->sctx);
	SSL_CTX_free(p->cctx);
	if (p->sfd >= 0)
		close(p->sfd);
	if (p->cfd >= 0)
		close(p->cfd);
	tls_node_free(p->node);
	ERR_clear_error();
}

/* One record each way: "ping" from the client, "pong" back. */
static void ping_pong(struct pair *p)
{
	char buf[64];
	size_t n = 0;
	int r;
	assert_int_equal(SSL_write_ex(p->client, "ping", 4, &n), 1);
	while ((r = SSL_read_ex(p->server, buf, sizeof(buf), &n)) != 1)
		assert_int_equal(SSL_get_error(p->server, r), SSL_ERROR_WANT_READ);
	assert_int_equal(n, 4);
	assert_memory_equal(buf, "ping", 4);
	assert_int_equal(SSL_write_ex(p->server, "pong", 4, &n), 1);
	assert_int_equal(n, 4);
	/* (TLS 1.3: the client's first read also takes the server's tickets.) */
	while ((r = SSL_read_ex(p->client, buf, sizeof(buf), &n)) != 1)
		assert_int_equal(SSL_get_error(p->client, r), SSL_ERROR_WANT_READ);
	assert_int_equal(n, 4);
	assert_memory_equal(buf, "pong", 4);
}

static void records_go_both_ways(void **state)
{
	(void)state;
	struct pair p = connected();
	char buf[64];
	size_t n = 0;
	/* Nothing sent yet: the server wants to read (EAGAIN), no error. */
	assert_int_equal(SSL_read_ex(p.server, buf, sizeof(buf), &n), 0);
	assert_int_equal(SSL_get_error(p.server, 0), SSL_ERROR_WANT_READ);
	ping_pong(&p);
	ping_pong(&p);
	/* A close_notify is the stream's end. */
	assert_true(SSL_shutdown(p.client) >= 0);
	assert_int_equal(SSL_read_ex(p.server, buf, sizeof(buf), &n), 0);
	assert_int_equal(SSL_get_error(p.server, 0), SSL_ERROR_ZERO_RETURN);
	pair_free(&p);
}

static void a_write_to_a_peer_gone_is_epipe_not_sigpipe(void **state)
{
	(void)state;
	struct pair p = connected();
	close(p.cfd);
	p.cfd = -1;
	char data[1024];
	memset(data, 'x', sizeof(data));
	size_t n;
	errno = 0;
	ERR_clear_error();
	int r = SSL_write_ex(p.server, data, sizeof(data), &n);
	/* Still here: no SIGPIPE. */
	assert_int_equal(r, 0);
	assert_int_equal(SSL_get_error(p.server, r), SSL_ERROR_SYSCALL);
	assert_int_equal(errno, EPIPE);
	pair_free(&p);
}

static void a_close_without_close_notify_is_an_error(void **state)
{
	(void)state;
	struct pair p = connected();
	ping_pong(&p);          /* nothing unread at the client: a close, not a reset */
	close(p.cfd);
	p.cfd = -1;
	char buf[64];
	size_t n;
	ERR_clear_error();
	int r = SSL_read_ex(p.server, buf, sizeof(buf), &n);
	assert_int_equal(r, 0);
	assert_int_equal(SSL_get_error(p.server, r), SSL_ERROR_SSL);
	assert_int_equal(ERR_GET_REASON(ERR_peek_last_error()), SSL_R_UNEXPECTED_EOF_WHILE_READING);
	pair_free(&p);
}

int main(void)
{
	/* The default action, whatever the parent left: a SIGPIPE ends this
	 * process, and the test with it. */
	signal(SIGPIPE, SIG_DFL);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(records_go_both_ways),
		cmocka_unit_test(a_write_to_a_peer_gone_is_epipe_not_sigpipe),
		cmocka_unit_test(a_close_without_close_notify_is_an_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
