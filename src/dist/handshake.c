/*
 * handshake.c — the distribution handshake, version 6 (see handshake.h).
 *
 * The exchange, A connecting to B; every message is a 2-byte big-endian
 * length and a body whose first byte is its tag:
 *
 *   A -> B  send_name       'N' flags:64 creation:32 nlen:16 name
 *   B -> A  status          's' text          ("alive": A answers 's' "true"|"false")
 *   B -> A  challenge       'N' flags:64 challenge:32 creation:32 nlen:16 name
 *   A -> B  challenge_reply 'r' challenge:32 digest:16
 *   B -> A  challenge_ack   'a' digest:16
 *
 * digest = MD5(cookie ++ decimal(challenge)): A's reply answers B's
 * challenge and carries A's own, which B's ack answers. Digests are
 * compared in constant time; challenges come from getrandom.
 *
 * Version 6 only. OTP 25 registers 6 as its highest version in EPMD and
 * then always sends 'N'; OTP 23/24 send 'N' to a peer whose EPMD entry says
 * 6, which wisp's does. The version 5 messages ('n' name and challenge,
 * and the 'c' complement OTP 23/24 add when they start with 'n') are
 * refused with -EPROTONOSUPPORT rather than half supported: nothing that
 * finds wisp through EPMD sends them.
 *
 * Every message is read into a DIST_HANDSHAKE_MAX buffer on the stack, by
 * exact lengths (the length prefix first, then just that body), so the
 * fd is left at the first byte after the handshake and no input can make
 * this code allocate or read past a buffer. Each read and write runs under
 * the one deadline the caller's timeout sets (wire.c).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

/* MD5() and CRYPTO_memcmp are all this file takes from libcrypto. MD5's
 * low-level functions are deprecated in OpenSSL 3 in favour of EVP, whose
 * set-up costs about a millisecond per process (see docs/architecture.md);
 * the handshake fixes the hash, so the compatibility API is declared for
 * this file only. */
#define OPENSSL_API_COMPAT 0x10101000L
#include <openssl/crypto.h>
#include <openssl/md5.h>

#include "common/util.h"
#include "handshake.h"
#include "wire.h"

enum {
	TAG_NAME = 'N', TAG_OLD_NAME = 'n', TAG_STATUS = 's', TAG_REPLY = 'r',
	TAG_ACK = 'a', TAG_COMPLEMENT = 'c',
	NAME_FIXED = 1 + 8 + 4 + 2,            /* 'N' flags creation nlen */
	CHALLENGE_FIXED = 1 + 8 + 4 + 4 + 2,   /* 'N' flags challenge creation nlen */
	REPLY_LEN = 1 + 4 + 16,
	ACK_LEN = 1 + 16,
};

/* One handshake in progress: where it reads and writes, until when, and
 * how its messages name the peer. */
struct hs {
	int fd;
	int64_t deadline;
	int timeout_ms;
	char peer[2 * DIST_NAME_MAX];          /* the peer's name, escaped, for messages */
	char *err;
	size_t errlen;
};

static int fail(struct hs *h, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Record "handshake with PEER: <message>" and return rc. */
static int fail(struct hs *h, int rc, const char *fmt, ...)
{
	if (h->err == NULL || h->errlen == 0)
		return rc;
	int n = snprintf(h->err, h->errlen, "handshake with %s: ", h->peer);
	if (n >= 0 && (size_t)n < h->errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(h->err + n, h->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return rc;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

void dist_handshake_digest(uint32_t challenge, const char *cookie, uint8_t out[16])
{
	char text[16];
	int n = snprintf(text, sizeof(text), "%u", challenge);
	MD5_CTX c;
	MD5_Init(&c);
	MD5_Update(&c, cookie, strlen(cookie));
	MD5_Update(&c, text, (size_t)n);
	MD5_Final(out, &c);
}

/* A full node name: 1..DIST_NAME_MAX bytes, no control bytes, an '@' with
 * something on both sides. */
static bool name_ok(const char *name, size_t len)
{
	if (len == 0 || len > DIST_NAME_MAX)
		return false;
	const char *at = memchr(name, '@', len);
	if (at == NULL || at == name || at == name + len - 1)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

/* A challenge from the kernel's random source. */
static int new_challenge(struct hs *h, uint32_t *out)
{
	for (;;) {
		ssize_t r = getrandom(out, sizeof(*out), 0);
		if (r == (ssize_t)sizeof(*out))
			return 0;
		if (r < 0 && errno != EINTR)
			return fail(h, -errno, "no random challenge: %s", strerror(errno));
	}
}

/* Turn a wire error into the handshake's message; `what` is the message
 * being read or written. */
static int io_fail(struct hs *h, int rc, const char *what, size_t got, size_t want)
{
	if (rc == -ETIMEDOUT)
		return fail(h, rc, "timed out after %d ms waiting for %s", h->timeout_ms, what);
	if (rc == -ECONNRESET && got > 0)
		return fail(h, rc, "the peer closed the connection in the middle of %s "
		            "(%zu of %zu bytes)", what, got, want);
	if (rc == -ECONNRESET)
		return fail(h, rc, "the peer closed the connection before %s", what);
	return fail(h, rc, "%s: %s", what, strerror(-rc));
}

static int send_msg(struct hs *h, const uint8_t *body, size_t len, const char *what)
{
	uint8_t buf[2 + DIST_HANDSHAKE_MAX];
	if (len > DIST_HANDSHAKE_MAX)
		return fail(h, -EMSGSIZE, "%s would be %zu bytes", what, len);
	put16(buf, (uint16_t)len);
	memcpy(buf + 2, body, len);
	int rc = wire_write_all(h->fd, buf, 2 + len, h->deadline);
	return rc == 0 ? 0 : io_fail(h, rc, what, 0, 0);
}

/* Read one message into body (DIST_HANDSHAKE_MAX bytes): its length in
 * *len, at least 1 (the tag). */
static int recv_msg(struct hs *h, uint8_t *body, size_t *len, const char *what)
{
	uint8_t hdr[2];
	size_t got;
	int rc = wire_read_exact(h->fd, hdr, 2, h->deadline, &got);
	if (rc != 0)
		return io_fail(h, rc, what, got, 2);
	*len = get16(hdr);
	if (*len == 0)
		return fail(h, -EPROTO, "%s is empty", what);
	if (*len > DIST_HANDSHAKE_MAX)
		return fail(h, -EMSGSIZE, "%s claims %zu bytes (at most %d)", what, *len,
		            DIST_HANDSHAKE_MAX);
	rc = wire_read_exact(h->fd, body, *len, h->deadline, &got);
	return rc == 0 ? 0 : io_fail(h, rc, what, got, *len);
}

/* The names of the mandatory flags missing from `flags`, comma-separated. */
static void missing_names(uint64_t missing, char *out, size_t cap)
{
	static const struct { uint64_t flag; const char *name; } names[] = {
		{ DIST_FLAG_EXTENDED_REFERENCES, "EXTENDED_REFERENCES" },
		{ DIST_FLAG_FUN_TAGS, "FUN_TAGS" },
		{ DIST_FLAG_EXTENDED_PIDS_PORTS, "EXTENDED_PIDS_PORTS" },
		{ DIST_FLAG_NEW_FUN_TAGS, "NEW_FUN_TAGS" },
		{ DIST_FLAG_EXPORT_PTR_TAG, "EXPORT_PTR_TAG" },
		{ DIST_FLAG_BIT_BINARIES, "BIT_BINARIES" },
		{ DIST_FLAG_NEW_FLOATS, "NEW_FLOATS" },
		{ DIST_FLAG_UTF8_ATOMS, "UTF8_ATOMS" },
		{ DIST_FLAG_MAP_TAG, "MAP_TAG" },
		{ DIST_FLAG_BIG_CREATION, "BIG_CREATION" },
		{ DIST_FLAG_HANDSHAKE_23, "HANDSHAKE_23" },
	};
	size_t n = 0;
	out[0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!(missing & names[i].flag) || n >= cap)
			continue;
		int w = snprintf(out + n, cap - n, "%s%s", n ? ", " : "", names[i].name);
		n += w > 0 ? (size_t)w : 0;
	}
}

/* The peer's flags as the rest of wisp should see them (the OTP 25 digest
 * bit stands for the whole mandatory set), or -EPROTONOSUPPORT if it lacks
 * any mandatory flag. */
static int check_flags(struct hs *h, uint64_t *flags)
{
	if (*flags & DIST_FLAG_MANDATORY_25_DIGEST)
		*flags |= DIST_FLAGS_MANDATORY;
	uint64_t missing = DIST_FLAGS_MANDATORY & ~*flags;
	if (missing == 0)
		return 0;
	char names[400];
	missing_names(missing, names, sizeof(names));
	return fail(h, -EPROTONOSUPPORT, "the peer lacks distribution flags OTP 25 makes "
	            "mandatory (%s): it is older than OTP 23 or incomplete", names);
}

/* Copy a valid node name from a message into id->name. */
static int take_name(struct hs *h, const uint8_t *p, size_t len, struct dist_id *id)
{
	char raw[DIST_NAME_MAX + 1];
	size_t n = len < DIST_NAME_MAX ? len : DIST_NAME_MAX;
	memcpy(raw, p, n);
	raw[n] = '\0';
	if (!name_ok((const char *)p, len)) {
		char shown[2 * DIST_NAME_MAX];
		util_printable(shown, sizeof(shown), raw);
		return fail(h, -EPROTO, "the peer's node name '%s'%s is not a valid "
		            "\"alive@host\" name", shown, len > DIST_NAME_MAX ? "..." : "");
	}
	memcpy(id->name, raw, n + 1);
	return 0;
}

static void hs_init(struct hs *h, int fd, int timeout_ms, const char *peer, char *err,
                    size_t errlen)
{
	h->fd = fd;
	h->timeout_ms = timeout_ms;
	h->deadline = wire_deadline(timeout_ms);
	h->err = err;
	h->errlen = errlen;
	util_printable(h->peer, sizeof(h->peer), peer);
	if (err != NULL && errlen > 0)
		err[0] = '\0';
}

/* The version 5 messages ('n', 'c'): refused, see the top of this file. */
static int refuse_v5(struct hs *h, const char *what)
{
	return fail(h, -EPROTONOSUPPORT, "the peer sent %s; wisp speaks distribution "
	            "version 6 only (OTP 23 or later)", what);
}

static int check_self(struct hs *h, const struct dist_id *self, const char *cookie)
{
	if (!name_ok(self->name, strnlen(self->name, sizeof(self->name))) ||
	    self->name[DIST_NAME_MAX] != '\0')
		return fail(h, -EINVAL, "our own node name is not a valid \"alive@host\" name");
	if (cookie == NULL)
		return fail(h, -EINVAL, "no cookie");
	return 0;
}

/* ---- connect role ------------------------------------------------------ */

static int send_name(struct hs *h, const struct dist_id *self)
{
	uint8_t m[NAME_FIXED + DIST_NAME_MAX];
	size_t n = strlen(self->name);
	m[0] = TAG_NAME;
	put64(m + 1, self->flags);
	put32(m + 9, self->creation);
	put16(m + 13, (uint16_t)n);
	memcpy(m + NAME_FIXED, self->name, n);
	return send_msg(h, m, NAME_FIXED + n, "our name");
}

static bool text_is(const char *s, size_t n, const char *text)
{
	return n == strlen(text) && memcmp(s, text, n) == 0;
}

/* The peer's status; "alive" is answered as stale(ctx) says (see
 * handshake.h). */
static int recv_status(struct hs *h, bool (*stale)(void *ctx), void *ctx)
{
	uint8_t m[DIST_HANDSHAKE_MAX];
	size_t len;
	int rc = recv_msg(h, m, &len, "the status");
	if (rc != 0)
		return rc;
	if (m[0] != TAG_STATUS)
		return fail(h, -EPROTO, "expected the status ('s'), got a message of type %u", m[0]);
	const char *s = (const char *)m + 1;
	size_t n = len - 1;
	if (text_is(s, n, "ok") || text_is(s, n, "ok_simultaneous"))
		return 0;
	if (text_is(s, n, "alive")) {
		static const uint8_t yes[] = { TAG_STATUS, 't', 'r', 'u', 'e' };
		static const uint8_t no[] = { TAG_STATUS, 'f', 'a', 'l', 's', 'e' };
		if (stale == NULL || stale(ctx))
			return send_msg(h, yes, sizeof(yes), "our answer to status alive");
		rc = send_msg(h, no, sizeof(no), "our answer to status alive");
		return rc != 0 ? rc : fail(h, -EISCONN, "it holds a connection to us already, "
		                           "which we hold too");
	}
	if (text_is(s, n, "nok"))
		return fail(h, -EALREADY, "refused (status nok): its own connection attempt "
		            "to us goes on instead");
	if (text_is(s, n, "not_allowed"))
		return fail(h, -EPERM, "refused (status not_allowed)");
	char shown[64], raw[32];
	snprintf(raw, sizeof(raw), "%.*s", (int)(n < 31 ? n : 31), s);
	util_printable(shown, sizeof(shown), raw);
	return fail(h, -EPROTO, "unexpected status '%s'", shown);
}

/* The challenge: the peer's flags, creation, name (which must be the one
 * we connected to) and challenge. */
static int recv_challenge(struct hs *h, const char *peer_name, struct dist_id *peer,
                          uint32_t *challenge)
{
	uint8_t m[DIST_HANDSHAKE_MAX];
	size_t len;
	int rc = recv_msg(h, m, &len, "the challenge");
	if (rc != 0)
		return rc;
	if (m[0] == TAG_OLD_NAME)
		return refuse_v5(h, "a version 5 challenge ('n')");
	if (m[0] != TAG_NAME)
		return fail(h, -EPROTO, "expected the challenge ('N'), got a message of type %u", m[0]);
	if (len < CHALLENGE_FIXED || len != CHALLENGE_FIXED + (size_t)get16(m + 17))
		return fail(h, -EPROTO, "malformed challenge (%zu bytes)", len);
	peer->flags = get64(m + 1);
	*challenge = get32(m + 9);
	peer->creation = get32(m + 13);
	rc = take_name(h, m + CHALLENGE_FIXED, len - CHALLENGE_FIXED, peer);
	if (rc != 0)
		return rc;
	if (strcmp(peer->name, peer_name) != 0) {
		char shown[sizeof(h->peer)];
		util_printable(shown, sizeof(shown), peer->name);
		return fail(h, -EPROTO, "we connected to %s but the peer says it is %s",
		            h->peer, shown);
	}
	return check_flags(h, &peer->flags);
}

static int send_reply(struct hs *h, uint32_t ours, uint32_t theirs, const char *cookie)
{
	uint8_t m[REPLY_LEN];
	m[0] = TAG_REPLY;
	put32(m + 1, ours);
	dist_handshake_digest(theirs, cookie, m + 5);
	return send_msg(h, m, sizeof(m), "our challenge reply");
}

/* The ack must answer our challenge. A peer that hangs up instead found
 * our digest wrong: that is how erl refuses a cookie. */
static int recv_ack(struct hs *h, uint32_t ours, const char *cookie)
{
	uint8_t m[DIST_HANDSHAKE_MAX];
	size_t len;
	uint8_t hdr[2];
	size_t got;
	int rc = wire_read_exact(h->fd, hdr, 2, h->deadline, &got);
	if (rc == -ECONNRESET && got == 0)
		return fail(h, -EACCES, "the cookie did not match: the peer closed the connection "
		            "on our challenge reply (how a node refuses a wrong digest)");
	if (rc != 0)
		return io_fail(h, rc, "the challenge ack", got, 2);
	len = get16(hdr);
	if (len != (size_t)ACK_LEN)
		return fail(h, len > DIST_HANDSHAKE_MAX ? -EMSGSIZE : -EPROTO,
		            "malformed challenge ack (%zu bytes)", len);
	rc = wire_read_exact(h->fd, m, len, h->deadline, &got);
	if (rc != 0)
		return io_fail(h, rc, "the challenge ack", got, len);
	if (m[0] != TAG_ACK)
		return fail(h, -EPROTO, "expected the challenge ack ('a'), got a message of type %u",
		            m[0]);
	uint8_t want[16];
	dist_handshake_digest(ours, cookie, want);
	if (CRYPTO_memcmp(want, m + 1, 16) != 0)
		return fail(h, -EACCES, "the cookie did not match (the peer's challenge ack has "
		            "the wrong digest)");
	return 0;
}

int dist_handshake_connect(int fd, const struct dist_id *self, const char *cookie,
                           const char *peer_name, bool (*stale)(void *ctx), void *ctx,
                           struct dist_id *peer, int timeout_ms, char *err, size_t errlen)
{
	struct hs h;
	hs_init(&h, fd, timeout_ms, peer_name, err, errlen);
	memset(peer, 0, sizeof(*peer));
	int rc = check_self(&h, self, cookie);
	if (rc != 0)
		return rc;
	if (!name_ok(peer_name, strlen(peer_name)))
		return fail(&h, -EINVAL, "not a valid \"alive@host\" node name");
	uint32_t ours = 0, theirs = 0;
	rc = new_challenge(&h, &ours);
	if (rc == 0)
		rc = send_name(&h, self);
	if (rc == 0)
		rc = recv_status(&h, stale, ctx);
	if (rc == 0)
		rc = recv_challenge(&h, peer_name, peer, &theirs);
	if (rc == 0)
		rc = send_reply(&h, ours, theirs, cookie);
	if (rc == 0)
		rc = recv_ack(&h, ours, cookie);
	return rc;
}

/* ---- accept role ------------------------------------------------------- */

static int recv_name(struct hs *h, struct dist_id *peer)
{
	uint8_t m[DIST_HANDSHAKE_MAX];
	size_t len;
	int rc = recv_msg(h, m, &len, "the name message");
	if (rc != 0)
		return rc;
	if (m[0] == TAG_OLD_NAME)
		return refuse_v5(h, "a version 5 name message ('n')");
	if (m[0] != TAG_NAME)
		return fail(h, -EPROTO, "expected the name message ('N'), got a message of type %u",
		            m[0]);
	if (len < NAME_FIXED || len != NAME_FIXED + (size_t)get16(m + 13))
		return fail(h, -EPROTO, "malformed name message (%zu bytes)", len);
	peer->flags = get64(m + 1);
	peer->creation = get32(m + 9);
	rc = take_name(h, m + NAME_FIXED, len - NAME_FIXED, peer);
	if (rc == 0)                    /* from now on, messages name it */
		util_printable(h->peer, sizeof(h->peer), peer->name);
	return rc;
}

static int send_status(struct hs *h, const char *status)
{
	uint8_t m[32];
	size_t n = strlen(status);
	m[0] = TAG_STATUS;
	memcpy(m + 1, status, n);
	return send_msg(h, m, 1 + n, "our status");
}

/* The initiator's answer to "alive". */
static int recv_alive_answer(struct hs *h)
{
	uint8_t m[DIST_HANDSHAKE_MAX];
	size_t len;
	int rc = recv_msg(h, m, &len, "the answer to status alive");
	if (rc != 0)
		return rc;
	if (len == 5 && memcmp(m, "strue", 5) == 0)
		return 0;
	if (len == 6 && memcmp(m, "sfalse", 6) == 0)
		return fail(h, -EISCONN, "it says its existing connection to us is alive");
	return fail(h, -EPROTO, "malformed answer to status alive (%zu bytes)", len);
}

/* Ask the caller, tell the peer. 0 when the handshake goes on. */
static int decide(struct hs *h, const char *(*status)(void *, const struct dist_id *),
                  void *ctx, const struct dist_id *peer)
{
	const char *s = status != NULL ? status(ctx, peer) : "ok";
	bool go = s != NULL && (strcmp(s, "ok") == 0 || strcmp(s, "ok_simultaneous") == 0);
	bool stop = s != NULL && (strcmp(s, "nok") == 0 || strcmp(s, "not_allowed") == 0);
	if (!go && !stop && (s == NULL || strcmp(s, "alive") != 0))
		return fail(h, -EINVAL, "the status callback answered '%.20s', not a status",
		            s != NULL ? s : "(null)");
	int rc = send_status(h, s);
	if (rc != 0 || go)
		return rc;
	if (strcmp(s, "alive") == 0)
		return recv_alive_answer(h);
	if (strcmp(s, "nok") == 0)
		return fail(h, -EALREADY, "refused with status nok: our own connection attempt "
		            "to it goes on instead");
	return fail(h, -EPERM, "refused with status not_allowed");
}

static int send_challenge(struct hs *h, const struct dist_id *self, uint32_t challenge)
{
	uint8_t m[CHALLENGE_FIXED + DIST_NAME_MAX];
	size_t n = strlen(self->name);
	m[0] = TAG_NAME;
	put64(m + 1, self->flags);
	put32(m + 9, challenge);
	put32(m + 13, self->creation);
	put16(m + 17, (uint16_t)n);
	memcpy(m + CHALLENGE_FIXED, self->name, n);
	return send_msg(h, m, CHALLENGE_FIXED + n, "our challenge");
}

/* The reply must answer our challenge; it carries the peer's. */
static int recv_reply(struct hs *h, uint32_t ours, const char *cookie, uint32_t *theirs)
{
	uint8_t m[DIST_HANDSHAKE_MAX];
	size_t len;
	int rc = recv_msg(h, m, &len, "the challenge reply");
	if (rc != 0)
		return rc;
	if (m[0] == TAG_COMPLEMENT)
		return refuse_v5(h, "a version 5 complement ('c')");
	if (m[0] != TAG_REPLY)
		return fail(h, -EPROTO, "expected the challenge reply ('r'), got a message of "
		            "type %u", m[0]);
	if (len != (size_t)REPLY_LEN)
		return fail(h, -EPROTO, "malformed challenge reply (%zu bytes)", len);
	*theirs = get32(m + 1);
	uint8_t want[16];
	dist_handshake_digest(ours, cookie, want);
	if (CRYPTO_memcmp(want, m + 5, 16) != 0)
		return fail(h, -EACCES, "the cookie did not match (the peer's challenge reply has "
		            "the wrong digest)");
	return 0;
}

static int send_ack(struct hs *h, uint32_t theirs, const char *cookie)
{
	uint8_t m[ACK_LEN];
	m[0] = TAG_ACK;
	dist_handshake_digest(theirs, cookie, m + 1);
	return send_msg(h, m, sizeof(m), "our challenge ack");
}

/* A peer that asks us to name it (NAME_ME) or lacks mandatory flags is
 * told not_allowed, so that its side logs a refusal, then dropped. */
static int check_peer(struct hs *h, struct dist_id *peer)
{
	int rc = check_flags(h, &peer->flags);
	if (rc == 0 && (peer->flags & DIST_FLAG_NAME_ME))
		rc = fail(h, -EPROTONOSUPPORT, "the peer asks to be given a node name "
		          "(NAME_ME), which wisp does not do");
	if (rc != 0) {
		struct hs quiet = *h;           /* keep the message that says why */
		quiet.err = NULL;
		send_status(&quiet, "not_allowed");
	}
	return rc;
}

int dist_handshake_accept(int fd, const struct dist_id *self, const char *cookie,
                          const char *(*status)(void *ctx, const struct dist_id *peer),
                          void *ctx, struct dist_id *peer, int timeout_ms,
                          char *err, size_t errlen)
{
	struct hs h;
	hs_init(&h, fd, timeout_ms, "a connecting node", err, errlen);
	memset(peer, 0, sizeof(*peer));
	int rc = check_self(&h, self, cookie);
	if (rc != 0)
		return rc;
	uint32_t ours = 0, theirs = 0;
	rc = new_challenge(&h, &ours);
	if (rc == 0)
		rc = recv_name(&h, peer);
	if (rc == 0)
		rc = check_peer(&h, peer);
	if (rc == 0)
		rc = decide(&h, status, ctx, peer);
	if (rc == 0)
		rc = send_challenge(&h, self, ours);
	if (rc == 0)
		rc = recv_reply(&h, ours, cookie, &theirs);
	if (rc == 0)
		rc = send_ack(&h, theirs, cookie);
	return rc;
}
