/*
 * wisp_tls.c — the wisp_tls namespace: TLS client and server streams for
 * processes, over their wisp_net TCP sockets, with OpenSSL 3.
 *
 * A TLS stream is a socket of the process whose slot holds an SSL object
 * (struct wasi_fd's `tls`): the guest turns a connected TCP fd into one
 * with wisp_tls.connect or wisp_tls.accept, and keeps the fd number. So
 * everything that holds for a socket holds for it: it counts against the
 * process's fd limit, closes (with a close_notify) when the process ends or
 * is killed, and moves to another process in a message with its SSL state
 * (the message carries the SSL object beside the host fd: struct
 * msg_socket's extra). wisp_net.read/write, and WASI's fd_read/fd_write and
 * sock_recv/sock_send on the fd, read and write plaintext through it.
 *
 * Never blocking a scheduler thread: the socket stays non-blocking, and
 * OpenSSL's SSL_ERROR_WANT_READ/WANT_WRITE parks the process on the fd
 * (net_wait_fd: the reactor) until it is ready or the call's deadline
 * passes. Nothing of OpenSSL's is on the stack while the process is
 * parked: every park happens between two OpenSSL calls, so a kill that
 * unwinds the parked call leaves a consistent SSL object in the slot, which
 * the process's end frees; and OpenSSL's per-thread state (its error
 * queue) is never carried across a park, after which the process may run
 * on another thread (each call clears the queue first and reads it at
 * once).
 *
 * What the host checks, whatever the guest asks (docs/security.md):
 *   - files (certificate chain, key, CA bundle) are read by the host from
 *     paths the process's directories hold, resolved as its own path_open
 *     would be (wasi_open_guest_path: openat2 beneath the preopen); any
 *     other path is ENOTCAPABLE, with a message;
 *   - a client verifies the server's chain against the system's CA store
 *     (Debian's ca-certificates, read lazily from its hashed directory) or
 *     the CA file given, and its name (SSL_set1_host, or the IP address);
 *     only the explicit flag WISP_TLS_NO_VERIFY turns that off;
 *   - TLS 1.2 at least; renegotiation refused (SSL_OP_NO_RENEGOTIATION);
 *     no compression; a peer that closes without close_notify is an error
 *     (a truncated stream is not taken for its end);
 *   - each stream's memory is charged to its process (STREAM_BYTES, what
 *     an idle stream was measured to cost: OpenSSL's allocations cannot
 *     be attributed one by one without a process-wide allocator hook),
 *     and so is its context's (CTX_PER_FILE_BYTE for each byte of the
 *     files it was made from), moved with the stream.
 *
 * Contexts (SSL_CTX: the certificate chain and key, the trusted CAs, the
 * session ticket keys) are the node's, cached (struct tls_node, one per
 * runtime: rt_host_shared) and keyed by what they are made from: the role
 * and the identity of each file (device, inode, size, mtime and ctime of
 * the file the process opened). Building one (parsing PEM, fetching
 * algorithms, checking the key) cost 1.2 ms of the 1.9 ms a server spent
 * per connection; a cached one costs two openat2+fstat. Sharing a context
 * never shares a capability: every handshake opens every file through
 * the calling process's own directories first, as it would to read it,
 * and only then looks for a context made from the same files; a process
 * that may not open the key gets ENOTCAPABLE whatever is cached. A file
 * changed in the last second is read and used but not cached from (a
 * rewrite within one tick of the file system's clock keeps its stat); a
 * replaced or rewritten file has a new identity, and the next handshake
 * makes a new context. At most CTX_CACHE_MAX, the least recently used
 * dropped; none older than an hour (new ticket keys). Servers send one
 * stateless session ticket per handshake (sealed with the context's keys,
 * so a ticket resumes only with the same certificate and key; nothing is
 * stored per client); clients keep no sessions.
 *
 * Below OpenSSL, a socket BIO of our own (tls_attach_socket): OpenSSL's
 * writes with write(), and a peer gone away would raise SIGPIPE; ours
 * sends with MSG_NOSIGNAL. Handshake steps run on the scheduler thread's
 * stack (sched_call_on_thread_stack), not the process's.
 *
 * Errors are WASI errnos, as for wisp_net: EPROTO for a failed handshake or
 * a broken stream, ECONNRESET for a peer that went away, ETIMEDOUT,
 * ENOTCAPABLE, EINVAL; the text of the process's last failure (which
 * certificate check failed, which file was refused) is wisp_tls.last_error.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "io/reactor.h"
#include "proc/caps.h"
#include "sched/sched.h"
#include "tls.h"
#include "wasi_impl.h"
#include "wisp_api.h"

#define NS(name) Z_wisp_tlsZ_##name
#define SELF struct host_proc *hp = HOST_PROC(self)

#define OPTIONS_SIZE 44          /* struct wisp_tls_options (guest.h) */
#define OPT_NO_VERIFY 1u
#define OPT_ALL OPT_NO_VERIFY
#define MAX_NAME 253             /* a DNS name */
#define MAX_ALPN_TEXT 1024
#define MAX_PATH 4096
#define MAX_PEM (1u << 20)       /* a CA bundle is ~200 KB */
#define MAX_ERROR 400
/* What a stream is charged to its process: the memory an idle stream
 * costs the node, measured (bench/net_run.py's idle rows, OpenSSL 3.0):
 * the server RSS with 2,000 idle TLS echo connections less that with
 * 2,000 idle TCP echo connections is 24.9 KB a connection, of which ~20 KB
 * in malloc's arenas (the SSL object's 34 allocations hold 13.9 KB: 7.6 KB
 * the SSL structure itself, two AES-GCM contexts, the session; the 16 KB
 * record buffers are released while idle, SSL_MODE_RELEASE_BUFFERS). The
 * context's is CTX_PER_FILE_BYTE's. */
#define STREAM_BYTES (25u * 1024)
/* What a context holds for each byte of the PEM files it is made from:
 * parsed certificates cost ~3.9 times their text (a 1 MiB chain of 686
 * certificates, 4.0 MiB). Charged to every stream using the context,
 * shared or not: a stream keeps its context alive after the cache dropped
 * it, and a file touched before each handshake makes a new context for
 * each (4 MiB a connection, at 25 KiB a stream, was past any memory
 * limit). Streams of a cached context with big files are charged more
 * than they cost; a client trusting a whole bundle can use the system's
 * store (no file) instead. */
#define CTX_PER_FILE_BYTE 4u
#define CTX_CACHE_MAX 32         /* contexts a node keeps (each ~10 KB + its certificates) */
#define CTX_MAX_AGE_NS (3600ull * 1000000000u)   /* then made again (new ticket keys) */
#define SERVER_TICKETS 1         /* session tickets a server sends per handshake */
/* How long sock_shutdown waits for room in the socket for a close_notify
 * (WASI's shutdown has no timeout of its own). */
#define SHUTDOWN_WAIT_NS (10ull * 1000000000u)
/* A file changed less than this long ago is not cached from: a rewrite in
 * the same tick of the file system's clock (a few ms) would keep its
 * identity (the "racy git" problem). */
#define SETTLE_NS 1000000000ull

struct tls_stream {
	SSL *ssl;
	struct proc *charged;    /* the process `charge` is charged to */
	uint64_t charge;         /* STREAM_BYTES, and its context's files' share */
	bool established;        /* the handshake completed */
	bool broken;             /* a fatal error: no more I/O, no close_notify */
	bool close_sent;         /* sock_shutdown sent its close_notify whole */
	unsigned char *alpn;     /* a server's protocols, in wire form */
	size_t alpn_len;
	/* A failure tls_pending's peek met (e 0: none), which the next read or
	 * write reports: SSL_get_error's e, errno, OpenSSL's last error. */
	struct {
		int e, sys_errno;
		unsigned long code;
	} held;
};

/* The guest's options, copied (NULL: not given). */
struct options {
	uint32_t flags;
	char *name, *alpn, *ca_file, *cert_file, *key_file;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The time left until deadline, for net_wait_fd (-1: none). */
static int64_t left_until(uint64_t deadline)
{
	if (deadline == UINT64_MAX)
		return -1;
	uint64_t now = now_ns();
	return now >= deadline ? 0 : (int64_t)(deadline - now);
}

static uint64_t deadline_of(int64_t timeout_ns)
{
	return timeout_ns < 0 ? UINT64_MAX : now_ns() + (uint64_t)timeout_ns;
}

/* Record why the process's TLS call failed (wisp_tls.last_error). */
static void set_error(struct host_proc *hp, const char *fmt, ...)
{
	char text[MAX_ERROR];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	struct wasi_ctx *w = wasi_ctx_of(hp);
	free(w->tls_error);
	w->tls_error = strdup(text);
}

/* ---- streams ---- */

void tls_stream_leave(struct tls_stream *t)
{
	if (t->charged != NULL) {
		proc_uncharge(t->charged, t->charge);
		t->charged = NULL;
	}
}

uint16_t tls_stream_join(struct tls_stream *t, struct host_proc *hp)
{
	if (hp->proc == NULL)
		return 0;
	if (proc_charge(hp->proc, t->charge) != 0)
		return WASI_ENOMEM;
	t->charged = hp->proc;
	return 0;
}

void tls_stream_free(void *arg)
{
	struct tls_stream *t = arg;
	if (t == NULL)
		return;
	tls_stream_leave(t);
	if (t->established && !t->broken) {
		/* One try, never a wait: a full socket buffer loses it. */
		ERR_clear_error();
		SSL_shutdown(t->ssl);
	}
	SSL_free(t->ssl);
	ERR_clear_error();
	free(t->alpn);
	free(t);
}

bool tls_pending(const struct wasi_fd *f)
{
	struct tls_stream *t = f->tls;
	if (t == NULL || !t->established || t->broken)
		return false;
	if (SSL_pending(t->ssl) > 0)
		return true;
	if (!SSL_has_pending(t->ssl))
		return false;
	/* Read ahead: bytes taken from the socket but not yet decrypted,
	 * which the socket's readiness no longer shows. A peek decrypts a
	 * whole record if there is one (and tries the socket, which does not
	 * block, for the rest if not): readable if it gives anything but "want
	 * more" (a record, the peer's close_notify, an error: the read that
	 * follows returns it). */
	char c;
	size_t n;
	ERR_clear_error();
	errno = 0;
	int r = SSL_peek_ex(t->ssl, &c, 1, &n);
	int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, r);
	if (e != SSL_ERROR_NONE && e != SSL_ERROR_ZERO_RETURN && e != SSL_ERROR_WANT_READ &&
	    e != SSL_ERROR_WANT_WRITE && t->held.e == 0) {
		t->held.e = e;
		t->held.sys_errno = errno;
		t->held.code = ERR_peek_last_error();
	}
	ERR_clear_error();
	return e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE;
}

/* ---- the guest's options ---- */

/* A copy of the guest's string (addr, len), NUL-terminated, or NULL for
 * len 0. EINVAL if longer than max or holding a NUL. */
static uint16_t copy_text(struct host_proc *hp, u32 addr, u32 len, u32 max, const char *what,
                          char **out)
{
	*out = NULL;
	if (len == 0)
		return 0;
	if (len > max) {
		set_error(hp, "%s: longer than %u bytes", what, max);
		return WASI_EINVAL;
	}
	const char *p = api_ptr(hp, addr, len, "wisp_tls");
	if (memchr(p, '\0', len) != NULL) {
		set_error(hp, "%s: holds a NUL byte", what);
		return WASI_EINVAL;
	}
	if ((*out = strndup(p, len)) == NULL)
		return WASI_ENOMEM;
	return 0;
}

static void options_free(struct options *o)
{
	free(o->name);
	free(o->alpn);
	free(o->ca_file);
	free(o->cert_file);
	free(o->key_file);
}

static uint16_t options_read(struct host_proc *hp, u32 addr, u32 len, struct options *o)
{
	memset(o, 0, sizeof(*o));
	if (len != OPTIONS_SIZE) {
		set_error(hp, "options: %u bytes, not the %u of struct wisp_tls_options", len,
		          OPTIONS_SIZE);
		return WASI_EINVAL;
	}
	uint32_t v[OPTIONS_SIZE / 4];
	memcpy(v, api_ptr(hp, addr, len, "wisp_tls"), len);
	o->flags = v[0];
	if (o->flags & ~OPT_ALL) {
		set_error(hp, "options: unknown flags 0x%x", o->flags & ~OPT_ALL);
		return WASI_EINVAL;
	}
	uint16_t err;
	if ((err = copy_text(hp, v[1], v[2], MAX_NAME, "server name", &o->name)) ||
	    (err = copy_text(hp, v[3], v[4], MAX_ALPN_TEXT, "ALPN list", &o->alpn)) ||
	    (err = copy_text(hp, v[5], v[6], MAX_PATH, "CA file", &o->ca_file)) ||
	    (err = copy_text(hp, v[7], v[8], MAX_PATH, "certificate file", &o->cert_file)) ||
	    (err = copy_text(hp, v[9], v[10], MAX_PATH, "key file", &o->key_file))) {
		options_free(o);
		return err;
	}
	return 0;
}

/* "h2,http/1.1" in ALPN's wire form (each name after its length byte). */
static uint16_t alpn_wire(struct host_proc *hp, const char *text, unsigned char **out,
                          size_t *len)
{
	size_t n = strlen(text);
	unsigned char *w = malloc(n + 1);
	if (w == NULL)
		return WASI_ENOMEM;
	size_t at = 0;
	for (const char *p = text;;) {
		const char *comma = strchr(p, ',');
		size_t l = comma ? (size_t)(comma - p) : strlen(p);
		if (l == 0 || l > 255) {
			free(w);
			set_error(hp, "ALPN list \"%s\": a protocol name is empty or longer than 255 bytes",
			          text);
			return WASI_EINVAL;
		}
		w[at++] = (unsigned char)l;
		memcpy(w + at, p, l);
		at += l;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	*out = w;
	*len = at;
	return 0;
}

/* ---- files, read through the process's directories ---- */

/* What identifies the contents of a file without reading it: the same
 * inode, unchanged (a write moves mtime and ctime; ctime cannot be set
 * back by anyone; a file replaced by a rename is another inode). */
struct file_id {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
};

/* A file the guest names, opened by the host for the process. */
struct guest_file {
	int fd;                  /* -1: not opened */
	const char *path, *what; /* the guest's path, and which file it is */
	struct file_id id;
};

static bool same_time(struct timespec a, struct timespec b)
{
	return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

static bool same_file(const struct file_id *a, const struct file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       same_time(a->mtime, b->mtime) && same_time(a->ctime, b->ctime);
}

/* Open the file the guest names `path` as its own path_open would, through
 * the process's preopens (any other path is ENOTCAPABLE, with a message
 * and a capability log line), and stat it: a regular file of at most
 * MAX_PEM bytes. On success gf->fd is open (close_file). */
static uint16_t open_file(struct host_proc *hp, const char *path, const char *what,
                          struct guest_file *gf)
{
	uint16_t err;
	*gf = (struct guest_file){ .fd = -1, .path = path, .what = what };
	int fd = wasi_open_guest_path(wasi_ctx_of(hp), path, &err);
	if (fd < 0) {
		if (err == WASI_ENOTCAPABLE) {
			set_error(hp, "%s %s: not below a directory the process was given (--dir)", what,
			          path);
			if (hp->proc != NULL && hp->proc->caps != NULL)
				caps_log_denied(hp->proc->caps, proc_pid(hp->proc),
				                "TLS %s %s: not below any of its directories", what, path);
		} else {
			set_error(hp, "%s %s: cannot open it (WASI errno %u)", what, path, err);
		}
		return err;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		set_error(hp, "%s %s: not a regular file", what, path);
		close(fd);
		return WASI_EINVAL;
	}
	if (st.st_size > MAX_PEM) {
		set_error(hp, "%s %s: larger than %u bytes", what, path, MAX_PEM);
		close(fd);
		return WASI_EINVAL;
	}
	gf->fd = fd;
	gf->id = (struct file_id){ .dev = st.st_dev, .ino = st.st_ino, .size = st.st_size,
	                           .mtime = st.st_mtim, .ctime = st.st_ctim };
	return 0;
}

/* Whether gf last changed long enough ago to be identified by its stat. */
static bool settled(const struct guest_file *gf)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	int64_t ns = (int64_t)(now.tv_sec - gf->id.ctime.tv_sec) * 1000000000 +
	             (now.tv_nsec - gf->id.ctime.tv_nsec);
	int64_t mns = (int64_t)(now.tv_sec - gf->id.mtime.tv_sec) * 1000000000 +
	              (now.tv_nsec - gf->id.mtime.tv_nsec);
	return ns >= (int64_t)SETTLE_NS && mns >= (int64_t)SETTLE_NS;
}

static void close_file(struct guest_file *gf)
{
	if (gf->fd >= 0)
		close(gf->fd);
	gf->fd = -1;
}

/* The contents of an opened file (as much as it held when opened) as a
 * memory BIO. */
static uint16_t read_file(const struct guest_file *gf, BIO **out)
{
	size_t size = (size_t)gf->id.size, got = 0;
	char *buf = malloc(size + 1);
	if (buf == NULL)
		return WASI_ENOMEM;
	uint16_t err = 0;
	while (got < size) {
		ssize_t r = pread(gf->fd, buf + got, size - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			err = r < 0 ? wasi_errno(errno) : 0;
			break;
		}
		got += (size_t)r;
	}
	*out = NULL;
	if (err == 0 && ((*out = BIO_new(BIO_s_mem())) == NULL ||
	                 BIO_write(*out, buf, (int)got) != (int)got))
		err = WASI_ENOMEM;
	OPENSSL_cleanse(buf, size);   /* it may be a private key */
	free(buf);
	if (err != 0) {
		BIO_free(*out);
		*out = NULL;
	}
	return err;
}

/* OpenSSL's last error as text ("" if none). */
static const char *ossl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	return r ? r : "";
}

/* A server's certificate chain (leaf first) and its key, from their
 * opened files. */
static uint16_t load_identity(struct host_proc *hp, SSL_CTX *ctx, const struct guest_file *cert,
                              const struct guest_file *key)
{
	BIO *b;
	uint16_t err = read_file(cert, &b);
	if (err)
		return err;
	ERR_clear_error();
	X509 *leaf = PEM_read_bio_X509_AUX(b, NULL, NULL, NULL);
	bool ok = leaf != NULL && SSL_CTX_use_certificate(ctx, leaf) == 1;
	X509_free(leaf);
	X509 *ca;
	while (ok && (ca = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		if (SSL_CTX_add0_chain_cert(ctx, ca) != 1) {
			X509_free(ca);
			ok = false;
		}
	}
	BIO_free(b);
	if (!ok) {
		set_error(hp, "certificate file %s: no usable PEM certificate (%s)", cert->path,
		          ossl_reason());
		return WASI_EINVAL;
	}
	if ((err = read_file(key, &b)) != 0)
		return err;
	ERR_clear_error();
	/* No passphrase callback: an encrypted key is refused, not prompted
	 * for on the host's terminal. */
	EVP_PKEY *pkey = PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)"");
	BIO_free(b);
	ok = pkey != NULL && SSL_CTX_use_PrivateKey(ctx, pkey) == 1;
	EVP_PKEY_free(pkey);
	if (!ok) {
		set_error(hp, "key file %s: no usable unencrypted PEM private key (%s)", key->path,
		          ossl_reason());
		return WASI_EINVAL;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		set_error(hp, "key file %s does not match certificate %s", key->path, cert->path);
		return WASI_EINVAL;
	}
	return 0;
}

/* Trust the certificates of the guest's (opened) CA file. */
static uint16_t load_cas(struct host_proc *hp, SSL_CTX *ctx, const struct guest_file *gf)
{
	BIO *b;
	uint16_t err = read_file(gf, &b);
	if (err)
		return err;
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	unsigned n = 0;
	X509 *c;
	ERR_clear_error();
	while ((c = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		if (X509_STORE_add_cert(store, c) == 1)
			n++;
		X509_free(c);
	}
	ERR_clear_error();     /* the end of the file is an error too */
	BIO_free(b);
	if (n == 0) {
		set_error(hp, "CA file %s: no PEM certificate in it", gf->path);
		return WASI_EINVAL;
	}
	return 0;
}

/* A server's ALPN choice: the first of its own protocols the client
 * offers; none in common ends the handshake (no_application_protocol).
 * A stream without protocols of its own (the context is shared with
 * those that have some) takes none. */
static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
	(void)arg;
	struct tls_stream *t = SSL_get_app_data(ssl);
	if (t == NULL || t->alpn == NULL)
		return SSL_TLSEXT_ERR_NOACK;
	unsigned char *sel;
	if (SSL_select_next_proto(&sel, outlen, t->alpn, (unsigned)t->alpn_len, in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

/* ---- contexts, shared by the node ---- */

/* What a context is made from: its role and the files it holds, by
 * identity (a server: certificate and key; a verifying client: its CA
 * file if any). Whatever else differs between streams (name, ALPN) is set
 * on the SSL object. */
struct ctx_key {
	bool server;
	bool verify;             /* a client that verifies its server */
	unsigned nfiles;
	struct file_id files[2];
};

static bool same_key(const struct ctx_key *a, const struct ctx_key *b)
{
	if (a->server != b->server || a->verify != b->verify || a->nfiles != b->nfiles)
		return false;
	for (unsigned i = 0; i < a->nfiles; i++)
		if (!same_file(&a->files[i], &b->files[i]))
			return false;
	return true;
}

struct ctx_entry {
	struct ctx_key key;
	SSL_CTX *ctx;            /* NULL: a free entry */
	uint64_t made_ns, used;  /* when it was made; the clock at its last use */
};

/* The node's TLS state (rt_host_shared): the socket BIO method and the
 * context cache, under `lock` (held for a lookup or an insertion, never
 * while a file is read or a context built). */
struct tls_node {
	pthread_mutex_t lock;
	BIO_METHOD *bio;
	uint64_t clock;
	struct ctx_entry cache[CTX_CACHE_MAX];
};

static BIO_METHOD *socket_bio_method(void);

void *tls_node_new(void)
{
	struct tls_node *n = calloc(1, sizeof(*n));
	if (n == NULL)
		return NULL;
	if ((n->bio = socket_bio_method()) == NULL) {
		free(n);
		return NULL;
	}
	pthread_mutex_init(&n->lock, NULL);
	return n;
}

void tls_node_free(void *arg)
{
	struct tls_node *n = arg;
	for (int i = 0; i < CTX_CACHE_MAX; i++)
		SSL_CTX_free(n->cache[i].ctx);
	BIO_meth_free(n->bio);
	pthread_mutex_destroy(&n->lock);
	free(n);
}

/* The node of hp's runtime; NULL (an error set) if it cannot be made. */
static struct tls_node *node_of(struct host_proc *hp)
{
	struct tls_node *n = NULL;
	if (hp->proc != NULL)
		n = rt_host_shared(hp->proc->rt, tls_node_new, tls_node_free);
	if (n == NULL)
		set_error(hp, "cannot set up TLS: %s", hp->proc ? "out of memory"
		                                                : "not in a wisp process");
	return n;
}

/* Whether e was made over CTX_MAX_AGE_NS before now (now, taken before
 * the lock, may be older than e). */
static bool expired(const struct ctx_entry *e, uint64_t now)
{
	return now > e->made_ns && now - e->made_ns > CTX_MAX_AGE_NS;
}

/* The cached context made from key, with a reference for the caller; or
 * NULL. One older than CTX_MAX_AGE_NS is dropped (it is made again:
 * a server's session ticket keys change with it). */
static SSL_CTX *cache_get(struct tls_node *n, const struct ctx_key *key, uint64_t now)
{
	SSL_CTX *ctx = NULL;
	pthread_mutex_lock(&n->lock);
	for (int i = 0; i < CTX_CACHE_MAX; i++) {
		struct ctx_entry *e = &n->cache[i];
		if (e->ctx == NULL || !same_key(&e->key, key))
			continue;
		if (expired(e, now)) {
			SSL_CTX_free(e->ctx);
			e->ctx = NULL;
			break;
		}
		e->used = ++n->clock;
		ctx = e->ctx;
		SSL_CTX_up_ref(ctx);
		break;
	}
	pthread_mutex_unlock(&n->lock);
	return ctx;
}

/* Keep ctx (made from key) for others: in a free entry, or the least
 * recently used one's. If one made from the same files got there first,
 * that one is kept and returned instead (ctx freed); the caller's
 * reference is to what is returned. */
static SSL_CTX *cache_put(struct tls_node *n, const struct ctx_key *key, SSL_CTX *ctx,
                          uint64_t now)
{
	pthread_mutex_lock(&n->lock);
	struct ctx_entry *victim = &n->cache[0];
	for (int i = 0; i < CTX_CACHE_MAX; i++) {
		struct ctx_entry *e = &n->cache[i];
		if (e->ctx != NULL && same_key(&e->key, key) && !expired(e, now)) {
			SSL_CTX_up_ref(e->ctx);
			SSL_CTX_free(ctx);
			ctx = e->ctx;
			e->used = ++n->clock;
			victim = NULL;
			break;
		}
		if (victim->ctx != NULL && (e->ctx == NULL || e->used < victim->used))
			victim = e;
	}
	if (victim != NULL) {
		SSL_CTX_free(victim->ctx);
		SSL_CTX_up_ref(ctx);
		*victim = (struct ctx_entry){ .key = *key, .ctx = ctx, .made_ns = now,
		                              .used = ++n->clock };
	}
	pthread_mutex_unlock(&n->lock);
	return ctx;
}

/* A new context for key, made from the opened files. */
static uint16_t build_ctx(struct host_proc *hp, const struct ctx_key *key,
                          const struct guest_file *files, SSL_CTX **out)
{
	ERR_clear_error();
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());
	if (ctx == NULL) {
		set_error(hp, "cannot set up TLS: %s", ossl_reason());
		return WASI_ENOMEM;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* Read ahead: a record's header and body in one recv (and the records
	 * behind it), not two: one syscall less per request of an echo. The
	 * bytes read but not yet decrypted are counted by tls_pending. */
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	/* No server-side session cache (memory per client, never bounded by
	 * a process); servers resume with stateless tickets instead, sealed
	 * with this context's keys (so only to the same certificate and key),
	 * one ticket per handshake as Go's servers send. Clients keep no
	 * sessions. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (key->server) {
		SSL_CTX_set_num_tickets(ctx, SERVER_TICKETS);
	} else {
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
		SSL_CTX_set_num_tickets(ctx, 0);
	}
	/* Partial writes: a write returns what went out, as send() does.
	 * Moving buffer: guest memory may be elsewhere on a retry. Idle
	 * streams give their record buffers back. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	                      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	uint16_t err = 0;
	if (key->server) {
		err = load_identity(hp, ctx, &files[0], &files[1]);
		SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
	} else if (key->verify) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		if (key->nfiles == 1)
			err = load_cas(hp, ctx, &files[0]);
		else if (SSL_CTX_set_default_verify_dir(ctx) != 1) {
			/* The system's hashed directory (SSL_CERT_DIR, else
			 * /usr/lib/ssl/certs): certificates read when needed. */
			set_error(hp, "cannot use the system's CA store: %s", ossl_reason());
			err = WASI_EIO;
		}
	}
	if (err != 0) {
		SSL_CTX_free(ctx);
		return err;
	}
	*out = ctx;
	return 0;
}

/* The context of a stream, from the guest's options, with a reference
 * for the caller: the node's if one was made from the same files, else a
 * new one, kept for the next (unless a file changed within SETTLE_NS);
 * the size of the files it is made from in *file_bytes.
 * Every file is opened (through the process's own directories: the
 * capability check is this process's, at every call) and identified
 * whether or not it is read. */
static uint16_t make_ctx(struct host_proc *hp, struct tls_node *node, const struct options *o,
                         bool server, SSL_CTX **out, uint64_t *file_bytes)
{
	struct ctx_key key = { .server = server, .verify = !server && !(o->flags & OPT_NO_VERIFY) };
	struct guest_file files[2] = { { .fd = -1 }, { .fd = -1 } };
	uint16_t err = 0;
	if (server) {
		if (o->cert_file == NULL || o->key_file == NULL) {
			set_error(hp, "a TLS server needs a certificate file and a key file");
			return WASI_EINVAL;
		}
		if ((err = open_file(hp, o->cert_file, "certificate file", &files[0])) == 0)
			err = open_file(hp, o->key_file, "key file", &files[1]);
		key.nfiles = 2;
	} else if (key.verify && o->ca_file != NULL) {
		err = open_file(hp, o->ca_file, "CA file", &files[0]);
		key.nfiles = 1;
	}
	bool keep = true;
	*file_bytes = 0;
	for (unsigned i = 0; err == 0 && i < key.nfiles; i++) {
		key.files[i] = files[i].id;
		keep = keep && settled(&files[i]);
		*file_bytes += (uint64_t)files[i].id.size;
	}
	uint64_t now = now_ns();
	SSL_CTX *ctx = NULL;
	if (err == 0 && (ctx = cache_get(node, &key, now)) == NULL &&
	    (err = build_ctx(hp, &key, files, &ctx)) == 0 && keep)
		ctx = cache_put(node, &key, ctx, now);
	close_file(&files[0]);
	close_file(&files[1]);
	*out = ctx;
	return err;
}

/* ---- the socket BIO ---- */

/* OpenSSL's socket BIO writes with write(): a peer gone away raises
 * SIGPIPE, which kills the whole node unless every program embedding the
 * host ignores it. This one is OpenSSL's socket BIO with send(...,
 * MSG_NOSIGNAL) instead (EPIPE comes back as an error), over the fd in its
 * data (not owned: the WASI table closes it). Its other behaviour is the
 * socket BIO's, which the TLS layer relies on: EAGAIN is a retry (the
 * caller parks), a read of 0 marks end of file (BIO_eof: the record
 * layer's "unexpected eof" when no close_notify came first). */
static int sock_fd(BIO *b)
{
	return (int)(intptr_t)BIO_get_data(b);
}

static int sock_write(BIO *b, const char *data, size_t len, size_t *done)
{
	BIO_clear_retry_flags(b);
	ssize_t r;
	do
		r = send(sock_fd(b), data, len, MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	if (r >= 0) {
		*done = (size_t)r;
		return 1;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		BIO_set_retry_write(b);
	*done = 0;
	return 0;
}

static int sock_read(BIO *b, char *buf, size_t len, size_t *done)
{
	BIO_clear_retry_flags(b);
	*done = 0;
	if (buf == NULL)
		return 0;
	ssize_t r;
	do
		r = recv(sock_fd(b), buf, len, 0);
	while (r < 0 && errno == EINTR);
	if (r > 0) {
		*done = (size_t)r;
		return 1;
	}
	if (r == 0)
		BIO_set_flags(b, BIO_FLAGS_IN_EOF);
	else if (errno == EAGAIN || errno == EWOULDBLOCK)
		BIO_set_retry_read(b);
	return 0;
}

static int sock_puts(BIO *b, const char *str)
{
	size_t done;
	return sock_write(b, str, strlen(str), &done) == 1 ? (int)done : -1;
}

static long sock_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)num;
	switch (cmd) {
	case BIO_C_GET_FD:
		if (ptr != NULL)
			*(int *)ptr = sock_fd(b);
		return sock_fd(b);
	case BIO_CTRL_EOF:
		return BIO_test_flags(b, BIO_FLAGS_IN_EOF) != 0;
	case BIO_CTRL_GET_CLOSE:
		return BIO_NOCLOSE;
	case BIO_CTRL_SET_CLOSE:
	case BIO_CTRL_FLUSH:
	case BIO_CTRL_DUP:
		return 1;
	default:
		return 0;
	}
}

/* The method (one per node: OpenSSL allocates it). */
static BIO_METHOD *socket_bio_method(void)
{
	int type = BIO_get_new_index();
	BIO_METHOD *m = type < 0 ? NULL
	              : BIO_meth_new(type | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
	                             "wisp socket");
	if (m == NULL || BIO_meth_set_write_ex(m, sock_write) != 1 ||
	    BIO_meth_set_read_ex(m, sock_read) != 1 || BIO_meth_set_puts(m, sock_puts) != 1 ||
	    BIO_meth_set_ctrl(m, sock_ctrl) != 1) {
		BIO_meth_free(m);
		return NULL;
	}
	return m;
}

int tls_attach_socket(void *node, SSL *ssl, int fd)
{
	BIO *bio = BIO_new(((struct tls_node *)node)->bio);
	if (bio == NULL)
		return -ENOMEM;
	BIO_set_data(bio, (void *)(intptr_t)fd);
	BIO_set_init(bio, 1);
	SSL_set_bio(ssl, bio, bio);   /* one BIO both ways: one reference, the SSL's */
	return 0;
}

/* ---- handshakes ---- */

/* Why a handshake or an I/O call on t failed (SSL_get_error's e, errno
 * after it, OpenSSL's last error then), as the process's error text; the
 * WASI errno to return. Clears the thread's error queue. */
/* The names a certificate is for (its DNS and IP subjectAltNames, else
 * its subject's CN), comma-separated into buf: what a refused name is told
 * against. */
static void cert_names(X509 *x, char *buf, size_t cap)
{
	size_t at = 0;
	buf[0] = '\0';
	GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans) && at < cap; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
		char ip[INET6_ADDRSTRLEN] = "";
		const char *name = NULL;
		if (g->type == GEN_DNS) {
			name = (const char *)ASN1_STRING_get0_data(g->d.dNSName);
		} else if (g->type == GEN_IPADD) {
			int len = ASN1_STRING_length(g->d.iPAddress);
			const unsigned char *a = ASN1_STRING_get0_data(g->d.iPAddress);
			if (len == 4 || len == 16)
				name = inet_ntop(len == 4 ? AF_INET : AF_INET6, a, ip, sizeof(ip));
		}
		if (name != NULL)
			at += (size_t)snprintf(buf + at, cap - at, "%s%s", at ? ", " : "", name);
	}
	GENERAL_NAMES_free(sans);
	if (at == 0)
		X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf, (int)cap);
}

/* Why a client refused the server's certificate (verify result v), with
 * what the certificate says when that helps: the names it is for, or who
 * made it. */
static void refused_cert(struct host_proc *hp, struct tls_stream *t, long v, const char *doing)
{
	const char *why = X509_verify_cert_error_string(v);
	STACK_OF(X509) *chain = SSL_get_peer_cert_chain(t->ssl);
	X509 *leaf = chain != NULL && sk_X509_num(chain) > 0 ? sk_X509_value(chain, 0) : NULL;
	char names[160];
	if (leaf != NULL && (v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH)) {
		cert_names(leaf, names, sizeof(names));
		set_error(hp, "%s: the server's certificate was refused: %s (it is for %s)", doing, why,
		          names[0] ? names : "no name");
	} else if (leaf != NULL && (v == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
	                            v == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
	                            v == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY)) {
		char issuer[160];
		X509 *top = sk_X509_value(chain, sk_X509_num(chain) - 1);
		X509_NAME_oneline(X509_get_issuer_name(top), issuer, sizeof(issuer));
		set_error(hp, "%s: the server's certificate was refused: %s (issuer %s is not a trusted "
		          "CA: give its certificate as the CA file to trust it)", doing, why, issuer);
	} else {
		set_error(hp, "%s: the server's certificate was refused: %s", doing, why);
	}
}

static uint16_t describe(struct host_proc *hp, struct tls_stream *t, int e, int sys_errno,
                         unsigned long le, const char *doing)
{
	long v = SSL_get_verify_result(t->ssl);
	if (!t->established && SSL_get_verify_mode(t->ssl) != SSL_VERIFY_NONE && v != X509_V_OK &&
	    !SSL_is_server(t->ssl)) {
		refused_cert(hp, t, v, doing);
		ERR_clear_error();
		return WASI_EPROTO;
	}
	uint16_t err = WASI_EPROTO;
	int reason = le != 0 ? ERR_GET_REASON(le) : 0;
	if (reason > SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256) {
		/* The peer ended it with an alert: say so, in the alert's words
		 * (OpenSSL's reason, "tlsv1 alert unknown ca", reads as ours). */
		set_error(hp, "%s: the %s refused it: alert \"%s\"", doing,
		          SSL_is_server(t->ssl) ? "client" : "server",
		          SSL_alert_desc_string_long(reason - SSL_AD_REASON_OFFSET));
	} else if (reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
		set_error(hp, t->established ? "%s: the peer closed the connection without close_notify "
		                               "(what it sent may be cut short)"
		                             : "%s: the peer closed the connection", doing);
		err = WASI_ECONNRESET;
	} else if (le != 0) {
		const char *r = ERR_reason_error_string(le);
		set_error(hp, "%s: %s", doing, r ? r : "a TLS protocol error");
		if (ERR_GET_REASON(le) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
			err = WASI_ECONNRESET;
	} else if (e == SSL_ERROR_SYSCALL && sys_errno != 0) {
		set_error(hp, "%s: %s", doing, strerror(sys_errno));
		err = wasi_errno(sys_errno);
	} else {
		set_error(hp, "%s: the peer closed the connection", doing);
		err = WASI_ECONNRESET;
	}
	ERR_clear_error();
	return err;
}

/* A new stream over socket f, set up from the options (not yet started). */
static uint16_t stream_new(struct host_proc *hp, struct wasi_fd *f, const struct options *o,
                           bool server, struct tls_stream **out)
{
	if (!server && !(o->flags & OPT_NO_VERIFY) && o->name == NULL) {
		set_error(hp, "a verifying client needs the server's name (or WISP_TLS_NO_VERIFY)");
		return WASI_EINVAL;
	}
	struct tls_stream *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return WASI_ENOMEM;
	uint16_t err = 0;
	SSL_CTX *ctx = NULL;
	struct tls_node *node = node_of(hp);
	if (node == NULL) {
		err = WASI_ENOMEM;
		goto fail;
	}
	if (o->alpn != NULL && (err = alpn_wire(hp, o->alpn, &t->alpn, &t->alpn_len)) != 0)
		goto fail;
	uint64_t file_bytes = 0;
	if ((err = make_ctx(hp, node, o, server, &ctx, &file_bytes)) != 0)
		goto fail;
	t->charge = STREAM_BYTES + CTX_PER_FILE_BYTE * file_bytes;
	t->ssl = SSL_new(ctx);
	SSL_CTX_free(ctx);   /* the SSL holds it */
	if (t->ssl == NULL || tls_attach_socket(node, t->ssl, f->host) != 0) {
		err = WASI_ENOMEM;
		goto fail;
	}
	SSL_set_app_data(t->ssl, t);
	if (server) {
		SSL_set_accept_state(t->ssl);
	} else {
		SSL_set_connect_state(t->ssl);
		if (o->name != NULL) {
			unsigned char ip[16];
			bool literal = inet_pton(AF_INET, o->name, ip) == 1 ||
			               inet_pton(AF_INET6, o->name, ip) == 1;
			bool ok = literal
			        ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), o->name) == 1
			        : SSL_set_tlsext_host_name(t->ssl, o->name) == 1 &&
			          SSL_set1_host(t->ssl, o->name) == 1;
			if (!ok) {
				set_error(hp, "server name \"%s\": not a usable host name", o->name);
				err = WASI_EINVAL;
				goto fail;
			}
		}
		if (t->alpn != NULL && SSL_set_alpn_protos(t->ssl, t->alpn, (unsigned)t->alpn_len) != 0) {
			err = WASI_ENOMEM;
			goto fail;
		}
	}
	if ((err = tls_stream_join(t, hp)) != 0) {
		set_error(hp, "no memory left for a TLS stream (the process's memory limit)");
		goto fail;
	}
	*out = t;
	return 0;
fail:
	ERR_clear_error();
	tls_stream_free(t);
	return err;
}

/* One SSL_do_handshake: its result, SSL_get_error's and errno. */
struct handshake_step {
	SSL *ssl;
	int r, e, sys_errno;
	unsigned long code;      /* OpenSSL's last error */
};

static void handshake_step(void *arg)
{
	struct handshake_step *h = arg;
	ERR_clear_error();
	errno = 0;
	h->r = SSL_do_handshake(h->ssl);
	h->sys_errno = errno;
	h->e = h->r == 1 ? SSL_ERROR_NONE : SSL_get_error(h->ssl, h->r);
	h->code = ERR_peek_last_error();
}

/* Run t's handshake on socket `fd` (whose slot holds t), parking while it
 * waits, until the deadline. Each step runs on the scheduler thread's
 * stack: a server's handshake (signing, key exchange, certificate
 * encoding) reaches ~10 KB deep, pages a process's own stack would keep
 * for as long as the connection lives; nothing parks inside a step. */
static uint16_t run_handshake(struct host_proc *hp, u32 fd, struct tls_stream *t,
                              uint64_t deadline, const char *doing)
{
	struct wasi_ctx *w = wasi_ctx_of(hp);
	for (;;) {
		struct handshake_step h = { .ssl = t->ssl };
		sched_call_on_thread_stack(handshake_step, &h);
		if (h.r == 1) {
			t->established = true;
			return 0;
		}
		int e = h.e;
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
			t->broken = true;
			return describe(hp, t, e, h.sys_errno, h.code, doing);
		}
		uint16_t err;
		struct wasi_fd *f = wasi_fd_lookup(w, fd, 0, &err);
		int64_t left = left_until(deadline);
		if (left == 0) {
			set_error(hp, "%s: timed out", doing);
			return WASI_ETIMEDOUT;
		}
		err = net_wait_fd(hp, f, e == SSL_ERROR_WANT_READ ? REACTOR_READ : REACTOR_WRITE,
		                  left);
		if (err == WASI_ETIMEDOUT)
			set_error(hp, "%s: timed out", doing);
		if (err != 0)
			return err;
		/* The slot is the process's own: nothing ran in it meanwhile. */
		f = wasi_fd_lookup(w, fd, 0, &err);
		assert(f != NULL && f->tls == t);
	}
}

static u32 handshake(void *self, u32 fd, u32 opts, u32 opts_len, u64 timeout, bool server)
{
	SELF;
	const char *doing = server ? "TLS handshake (server)" : "TLS handshake (client)";
	uint16_t err;
	struct wasi_ctx *w = wasi_ctx_of(hp);
	struct wasi_fd *f = wasi_fd_lookup(w, fd, WASI_RIGHT_FD_READ | WASI_RIGHT_FD_WRITE, &err);
	if (f == NULL)
		return err;
	if (f->filetype != WASI_FILETYPE_SOCKET_STREAM || !f->parks || f->borrowed) {
		set_error(hp, "%s: fd %u is not a wisp TCP stream", doing, fd);
		return WASI_ENOTSOCK;
	}
	if (f->tls != NULL) {
		set_error(hp, "%s: fd %u is a TLS stream already", doing, fd);
		return WASI_EINVAL;
	}
	struct options o;
	if ((err = options_read(hp, opts, opts_len, &o)) != 0)
		return err;
	char label[MAX_NAME + 64];
	if (!server && o.name != NULL) {
		snprintf(label, sizeof(label), "%s with %s", doing, o.name);
		doing = label;
	}
	struct tls_stream *t = NULL;
	err = stream_new(hp, f, &o, server, &t);
	options_free(&o);
	if (err != 0)
		return err;
	/* In the slot from now on: a kill while parked frees it with the
	 * table. (Guest memory is not touched again: it may move.) */
	f->tls = t;
	err = run_handshake(hp, fd, t, deadline_of((int64_t)timeout), doing);
	if (err != 0) {
		/* The fd stays the guest's, a TCP socket again (in no state to
		 * carry anything but a new connection's worth of nothing). */
		uint16_t gone;
		f = wasi_fd_lookup(w, fd, 0, &gone);
		assert(f != NULL && f->tls == t);
		f->tls = NULL;
		t->broken = true;
		tls_stream_free(t);
		return err == 0 ? WASI_EPROTO : err;
	}
	return 0;
}

u32 NS(connect)(void *self, u32 fd, u32 opts, u32 opts_len, u64 timeout)
{
	return handshake(self, fd, opts, opts_len, timeout, false);
}

u32 NS(accept)(void *self, u32 fd, u32 opts, u32 opts_len, u64 timeout)
{
	return handshake(self, fd, opts, opts_len, timeout, true);
}

/* ---- reading and writing ---- */

enum { STEP_DONE, STEP_WAIT, STEP_FAILED };

/* One SSL_read_ex/SSL_write_ex: STEP_DONE with *n (0 on a read: the peer
 * sent close_notify), STEP_WAIT with the reactor event to wait for in
 * *ev, or STEP_FAILED with a WASI errno in *err (and the error text). */
static int step(struct host_proc *hp, struct tls_stream *t, void *p, size_t len, bool write,
                size_t *n, uint32_t *ev, uint16_t *err)
{
	*n = 0;
	if (t->broken) {
		set_error(hp, "TLS stream: unusable after an earlier error");
		*err = WASI_EIO;
		return STEP_FAILED;
	}
	if (t->held.e != 0) {
		/* tls_pending's peek failed: that is this call's failure. */
		t->broken = true;
		*err = describe(hp, t, t->held.e, t->held.sys_errno, t->held.code,
		                write ? "TLS write" : "TLS read");
		return STEP_FAILED;
	}
	if (len == 0)
		return STEP_DONE;
	if (write && (SSL_get_shutdown(t->ssl) & SSL_SENT_SHUTDOWN)) {
		/* The stream itself stays usable: reading goes on. */
		set_error(hp, "TLS write: the stream was shut down for writing");
		*err = WASI_EPIPE;
		return STEP_FAILED;
	}
	/* (Empty, as every failure here leaves it: the peek is cheaper than
	 * clearing its 16 slots on every call.) */
	if (ERR_peek_error() != 0)
		ERR_clear_error();
	errno = 0;
	int r = write ? SSL_write_ex(t->ssl, p, len, n) : SSL_read_ex(t->ssl, p, len, n);
	if (r == 1)
		return STEP_DONE;
	int e = SSL_get_error(t->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		*ev = e == SSL_ERROR_WANT_READ ? REACTOR_READ : REACTOR_WRITE;
		return STEP_WAIT;
	}
	if (e == SSL_ERROR_ZERO_RETURN && !write) {
		*n = 0;
		return STEP_DONE;
	}
	t->broken = true;
	*err = describe(hp, t, e, errno, ERR_peek_last_error(), write ? "TLS write" : "TLS read");
	return STEP_FAILED;
}

uint16_t tls_io(struct host_proc *hp, struct wasi_fd *f, void *p, size_t len, bool write,
                int64_t timeout_ns, size_t *done)
{
	uint64_t deadline = deadline_of(timeout_ns);
	struct tls_stream *t = f->tls;
	for (;;) {
		uint32_t ev = 0;
		uint16_t err = 0;
		switch (step(hp, t, p, len, write, done, &ev, &err)) {
		case STEP_DONE: return 0;
		case STEP_FAILED: return err;
		default: break;
		}
		if (f->guest_nonblock)
			return WASI_EAGAIN;
		if (hp->proc == NULL)
			return WASI_EAGAIN;
		int64_t left = left_until(deadline);
		if (left == 0)
			return WASI_ETIMEDOUT;
		/* Through the slot, as every wait on a socket: arming its host
		 * fd one-shot would replace its edge-triggered registration,
		 * and the next wait through the slot would never be woken. */
		int rc = wasi_fd_wait(wasi_ctx_of(hp), f, ev, left);
		if (rc == -ETIMEDOUT)
			return WASI_ETIMEDOUT;
		if (rc != 0)
			return wasi_errno(-rc);
	}
}

/* fd's slot if it is a TLS stream (looked up again after every park). */
static struct wasi_fd *stream_fd(struct wasi_ctx *w, uint32_t fd, uint16_t *err)
{
	struct wasi_fd *f = wasi_fd_lookup(w, fd, 0, err);
	if (f != NULL && f->tls == NULL) {
		*err = WASI_EBADF;
		return NULL;
	}
	return f;
}

uint32_t tls_xfer(struct host_proc *hp, uint32_t fd, uint32_t buf, uint32_t len,
                  int64_t timeout_ns, uint32_t n_out, bool write)
{
	const char *call = write ? "wisp_net_write" : "wisp_net_read";
	uint64_t deadline = deadline_of(timeout_ns);
	struct wasi_ctx *w = wasi_ctx_of(hp);
	for (;;) {
		uint16_t err;
		struct wasi_fd *f = stream_fd(w, fd, &err);
		if (f == NULL)
			return err;
		/* Resolved again each time: a parked process's memory may move. */
		void *p = api_ptr(hp, buf, len, call);
		size_t n;
		uint32_t ev = 0;
		switch (step(hp, f->tls, p, len, write, &n, &ev, &err)) {
		case STEP_DONE: {
			uint32_t v = (uint32_t)n;
			memcpy(api_ptr(hp, n_out, 4, call), &v, 4);
			api_work(hp, v);
			return 0;
		}
		case STEP_FAILED: return err;
		default: break;
		}
		if (f->guest_nonblock)
			return WASI_EAGAIN;
		int64_t left = left_until(deadline);
		if (left == 0)
			return WASI_ETIMEDOUT;
		if ((err = net_wait_fd(hp, f, ev, left)) != 0)
			return err;
	}
}

uint16_t tls_shutdown_write(struct host_proc *hp, uint32_t fd)
{
	uint64_t deadline = now_ns() + SHUTDOWN_WAIT_NS;
	struct wasi_ctx *w = wasi_ctx_of(hp);
	for (;;) {
		uint16_t err;
		struct wasi_fd *f = stream_fd(w, fd, &err);
		if (f == NULL)
			return err;
		struct tls_stream *t = f->tls;
		if (!t->established || t->broken)
			return 0;
		if (ERR_peek_error() != 0)
			ERR_clear_error();
		errno = 0;
		/* 1 or 0: sent (and the peer's received, or not yet); < 0 with
		 * WANT_WRITE: the record waits in OpenSSL for room, and the next
		 * call sends it. A call after it was sent would read the peer's
		 * close_notify instead: not what the guest asked for. */
		if (t->close_sent)
			return 0;
		int r = SSL_shutdown(t->ssl);
		if (r >= 0) {
			t->close_sent = true;
			return 0;
		}
		int e = SSL_get_error(t->ssl, r);
		if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ) {
			t->broken = true;
			return describe(hp, t, e, errno, ERR_peek_last_error(), "TLS shutdown");
		}
		if (f->guest_nonblock || hp->proc == NULL)
			return WASI_EAGAIN;
		int64_t left = left_until(deadline);
		if (left == 0 ||
		    (err = net_wait_fd(hp, f, e == SSL_ERROR_WANT_READ ? REACTOR_READ : REACTOR_WRITE,
		                       left)) == WASI_ETIMEDOUT) {
			set_error(hp, "TLS shutdown: the peer read nothing for %d s: no close_notify sent",
			          (int)(SHUTDOWN_WAIT_NS / 1000000000u));
			return WASI_ETIMEDOUT;
		}
		if (err != 0)
			return err;
	}
}

/* ---- what the guest may ask of a stream ---- */

/* Copy text (len bytes) out to the guest's (buf, buf_len), its length in
 * *len_out; ENOBUFS if it does not fit. */
static u32 give_text(struct host_proc *hp, const void *text, uint32_t len, u32 buf, u32 buf_len,
                     u32 len_out)
{
	api_ptr(hp, len_out, 4, "wisp_tls");
	memcpy(api_ptr(hp, len_out, 4, "wisp_tls"), &len, 4);
	if (len > buf_len)
		return WASI_ENOBUFS;
	if (len > 0)
		memcpy(api_ptr(hp, buf, len, "wisp_tls"), text, len);
	return 0;
}

u32 NS(alpn)(void *self, u32 fd, u32 buf, u32 buf_len, u32 len_out)
{
	SELF;
	uint16_t err;
	struct wasi_fd *f = wasi_fd_lookup(wasi_ctx_of(hp), fd, 0, &err);
	if (f == NULL)
		return err;
	if (f->tls == NULL)
		return WASI_EINVAL;
	const unsigned char *p = NULL;
	unsigned int n = 0;
	SSL_get0_alpn_selected(f->tls->ssl, &p, &n);
	return give_text(hp, p, n, buf, buf_len, len_out);
}

u32 NS(last_error)(void *self, u32 buf, u32 buf_len, u32 len_out)
{
	SELF;
	const char *e = wasi_ctx_of(hp)->tls_error;
	return give_text(hp, e ? e : "", e ? (uint32_t)strlen(e) : 0, buf, buf_len, len_out);
}
