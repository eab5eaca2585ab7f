/*
 * test_dist_handshake.c — the distribution handshake (src/dist/handshake.c)
 * between two wisp ends over a socketpair, and against scripted peers that
 * send garbage, truncated or oversized messages, or nothing, at each step.
 * The handshake against real erl nodes, and EPMD, are tested end to end by
 * tests/e2e/test_dist_handshake.py.
 */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dist/handshake.h"

#define COOKIE "sesame"

static struct dist_id make_id(const char *name, uint64_t flags, uint32_t creation)
{
	struct dist_id id;
	memset(&id, 0, sizeof(id));
	snprintf(id.name, sizeof(id.name), "%s", name);
	id.flags = flags;
	id.creation = creation;
	return id;
}

static void make_pair(int sv[2], bool nonblock)
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC |
	                            (nonblock ? SOCK_NONBLOCK : 0), 0, sv), 0);
}

/* ---- two wisp ends -------------------------------------------------- */

/* The accepting end, on a thread: it closes its fd on failure, as a node
 * drops a connection it refuses. */
struct acceptor {
	int fd;
	struct dist_id self;
	const char *cookie;
	const char *status;
	int timeout_ms;
	int rc;
	struct dist_id peer;
	char err[512];
	pthread_t thread;
};

static const char *fixed_status(void *ctx, const struct dist_id *peer)
{
	(void)peer;
	return ctx;
}

static void *accept_main(void *arg)
{
	struct acceptor *a = arg;
	a->rc = dist_handshake_accept(a->fd, &a->self, a->cookie, fixed_status, (void *)a->status,
	                              &a->peer, a->timeout_ms, a->err, sizeof(a->err));
	if (a->rc != 0)
		close(a->fd);
	return NULL;
}

static void start_acceptor(struct acceptor *a, int fd, struct dist_id self, const char *cookie,
                           const char *status)
{
	memset(a, 0, sizeof(*a));
	a->fd = fd;
	a->self = self;
	a->cookie = cookie;
	a->status = status;
	a->timeout_ms = 5000;
	assert_int_equal(pthread_create(&a->thread, NULL, accept_main, a), 0);
}

/* Connect "a@h" (flags cflags, cookie ccookie) to "b@h" (flags aflags,
 * cookie acookie, answering status). Returns the connector's rc;
 * *a holds the acceptor's outcome. On success both fds stay open: sv[0]
 * the connector's, sv[1] the acceptor's. */
static int run_pair(int sv[2], bool nonblock, uint64_t cflags, const char *ccookie,
                    uint64_t aflags, const char *acookie, const char *status,
                    const char *expect_peer, struct dist_id *peer, char *err, size_t errlen,
                    struct acceptor *a)
{
	make_pair(sv, nonblock);
	start_acceptor(a, sv[1], make_id("b@h", aflags, 22), acookie, status);
	struct dist_id self = make_id("a@h", cflags, 11);
	int rc = dist_handshake_connect(sv[0], &self, ccookie, expect_peer, NULL, NULL, peer, 5000, err,
	                                errlen);
	if (rc != 0)
		close(sv[0]);                /* as a node would: the acceptor sees EOF */
	pthread_join(a->thread, NULL);
	return rc;
}

/* The fd is left exactly after the handshake: what each side writes next
 * is the first thing the other reads. */
static void assert_stream_continues(int sv[2])
{
	char buf[8];
	assert_int_equal(write(sv[0], "ping", 4), 4);
	assert_int_equal(write(sv[1], "pong", 4), 4);
	int fl = fcntl(sv[1], F_GETFL);
	fcntl(sv[0], F_SETFL, fl & ~O_NONBLOCK);
	fcntl(sv[1], F_SETFL, fl & ~O_NONBLOCK);
	assert_int_equal(read(sv[1], buf, 4), 4);
	assert_memory_equal(buf, "ping", 4);
	assert_int_equal(read(sv[0], buf, 4), 4);
	assert_memory_equal(buf, "pong", 4);
}

static void handshake_between_two_nodes(bool nonblock)
{
	int sv[2];
	struct dist_id peer;
	struct acceptor a;
	char err[512];
	int rc = run_pair(sv, nonblock, DIST_FLAGS_WISP, COOKIE, DIST_FLAGS_WISP, COOKIE, "ok",
	                  "b@h", &peer, err, sizeof(err), &a);
	assert_int_equal(rc, 0);
	assert_int_equal(a.rc, 0);
	assert_string_equal(peer.name, "b@h");
	assert_int_equal(peer.creation, 22);
	assert_true(peer.flags == DIST_FLAGS_WISP);
	assert_string_equal(a.peer.name, "a@h");
	assert_int_equal(a.peer.creation, 11);
	assert_true(a.peer.flags == DIST_FLAGS_WISP);
	assert_stream_continues(sv);
	close(sv[0]);
	close(sv[1]);
}

static void two_nodes_blocking(void **state)
{
	(void)state;
	handshake_between_two_nodes(false);
}

static void two_nodes_nonblocking(void **state)
{
	(void)state;
	handshake_between_two_nodes(true);
}

/* Each side's message names the peer and the cookie, never the cookie's
 * value. */
static void wrong_cookie_refused_by_both(void **state)
{
	(void)state;
	int sv[2];
	struct dist_id peer;
	struct acceptor a;
	char err[512];
	int rc = run_pair(sv, false, DIST_FLAGS_WISP, "right-cookie", DIST_FLAGS_WISP,
	                  "wrong-cookie", "ok", "b@h", &peer, err, sizeof(err), &a);
	assert_int_equal(rc, -EACCES);
	assert_int_equal(a.rc, -EACCES);
	assert_non_null(strstr(err, "b@h"));
	assert_non_null(strstr(err, "cookie"));
	assert_null(strstr(err, "right-cookie"));
	assert_non_null(strstr(a.err, "a@h"));
	assert_non_null(strstr(a.err, "cookie did not match"));
	assert_null(strstr(a.err, "wrong-cookie"));
	assert_null(strstr(a.err, "right-cookie"));
}

/* What the acceptor's status callback answers decides both outcomes. */
static void statuses(void **state)
{
	(void)state;
	static const struct { const char *status; int connect_rc, accept_rc; } cases[] = {
		{ "ok_simultaneous", 0, 0 },
		{ "alive", 0, 0 },            /* the connector answers "true" */
		{ "nok", -EALREADY, -EALREADY },
		{ "not_allowed", -EPERM, -EPERM },
		{ "maybe", -ECONNRESET, -EINVAL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int sv[2];
		struct dist_id peer;
		struct acceptor a;
		char err[512];
		int rc = run_pair(sv, false, DIST_FLAGS_WISP, COOKIE, DIST_FLAGS_WISP, COOKIE,
		                  cases[i].status, "b@h", &peer, err, sizeof(err), &a);
		if (rc != cases[i].connect_rc || a.rc != cases[i].accept_rc)
			fail_msg("status %s: connect %d (%s), accept %d (%s)", cases[i].status, rc, err,
			         a.rc, a.err);
		if (rc == 0) {
			close(sv[0]);
			close(sv[1]);
		}
	}
}

static void missing_mandatory_flags_refused(void **state)
{
	(void)state;
	uint64_t no_maps = DIST_FLAGS_WISP & ~(DIST_FLAG_MAP_TAG | DIST_FLAG_MANDATORY_25_DIGEST);
	int sv[2];
	struct dist_id peer;
	struct acceptor a;
	char err[512];
	/* The connector lacks MAP_TAG: the acceptor says not_allowed. */
	int rc = run_pair(sv, false, no_maps, COOKIE, DIST_FLAGS_WISP, COOKIE, "ok", "b@h", &peer,
	                  err, sizeof(err), &a);
	assert_int_equal(a.rc, -EPROTONOSUPPORT);
	assert_non_null(strstr(a.err, "MAP_TAG"));
	assert_null(strstr(a.err, "BIG_CREATION"));
	assert_int_equal(rc, -EPERM);
	/* The acceptor lacks BIG_CREATION: the connector refuses its challenge. */
	uint64_t small = DIST_FLAGS_WISP & ~(DIST_FLAG_BIG_CREATION | DIST_FLAG_MANDATORY_25_DIGEST);
	rc = run_pair(sv, false, DIST_FLAGS_WISP, COOKIE, small, COOKIE, "ok", "b@h", &peer, err,
	              sizeof(err), &a);
	assert_int_equal(rc, -EPROTONOSUPPORT);
	assert_non_null(strstr(err, "BIG_CREATION"));
	assert_int_equal(a.rc, -ECONNRESET);
}

/* OTP 25's digest bit stands for the whole mandatory set. */
static void digest_flag_stands_for_mandatory_set(void **state)
{
	(void)state;
	uint64_t digest_only = DIST_FLAG_MANDATORY_25_DIGEST | DIST_FLAG_PUBLISHED;
	int sv[2];
	struct dist_id peer;
	struct acceptor a;
	char err[512];
	int rc = run_pair(sv, false, digest_only, COOKIE, DIST_FLAGS_WISP, COOKIE, "ok", "b@h",
	                  &peer, err, sizeof(err), &a);
	assert_int_equal(rc, 0);
	assert_int_equal(a.rc, 0);
	assert_true(a.peer.flags == (digest_only | DIST_FLAGS_MANDATORY));
	close(sv[0]);
	close(sv[1]);
}

static void peer_with_another_name_refused(void **state)
{
	(void)state;
	int sv[2];
	struct dist_id peer;
	struct acceptor a;
	char err[512];
	int rc = run_pair(sv, false, DIST_FLAGS_WISP, COOKIE, DIST_FLAGS_WISP, COOKIE, "ok",
	                  "c@h", &peer, err, sizeof(err), &a);
	assert_int_equal(rc, -EPROTO);
	assert_non_null(strstr(err, "we connected to c@h but the peer says it is b@h"));
}

/* ---- scripted peers ---------------------------------------------------- */

struct script {
	uint8_t b[4096];
	size_t n;
};

static void put(struct script *s, const void *p, size_t n)
{
	assert_true(s->n + n <= sizeof(s->b));
	memcpy(s->b + s->n, p, n);
	s->n += n;
}

static void put_be(struct script *s, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--) {
		uint8_t c = (uint8_t)(v >> (8 * i));
		put(s, &c, 1);
	}
}

/* A whole message: length, then the body. */
static void msg(struct script *s, const void *body, size_t n)
{
	put_be(s, n, 2);
	put(s, body, n);
}

static void name_msg(struct script *s, uint64_t flags, const char *name)
{
	size_t n = strlen(name);
	put_be(s, 15 + n, 2);
	put(s, "N", 1);
	put_be(s, flags, 8);
	put_be(s, 7, 4);
	put_be(s, n, 2);
	put(s, name, n);
}

static void challenge_msg(struct script *s, uint64_t flags, const char *name)
{
	size_t n = strlen(name);
	put_be(s, 19 + n, 2);
	put(s, "N", 1);
	put_be(s, flags, 8);
	put_be(s, 1234, 4);
	put_be(s, 9, 4);
	put_be(s, n, 2);
	put(s, name, n);
}

/* Feed the script to one end of a socketpair (then EOF unless hold_open),
 * run a handshake role on the other, return its rc and message. */
static int run_script(bool accept_role, const struct script *s, bool hold_open, int timeout_ms,
                      char *err, size_t errlen, int *peer_fd)
{
	int sv[2];
	make_pair(sv, false);
	assert_int_equal(write(sv[1], s->b, s->n), (ssize_t)s->n);
	if (!hold_open)
		shutdown(sv[1], SHUT_WR);
	struct dist_id self = make_id("w@h", DIST_FLAGS_WISP, 5), peer;
	int rc = accept_role
	         ? dist_handshake_accept(sv[0], &self, COOKIE, NULL, NULL, &peer, timeout_ms, err, errlen)
	         : dist_handshake_connect(sv[0], &self, COOKIE, "p@h", NULL, NULL, &peer, timeout_ms,
	                                  err, errlen);
	close(sv[0]);
	if (peer_fd != NULL)
		*peer_fd = sv[1];
	else
		close(sv[1]);
	return rc;
}

static void garbage_at_each_step_of_accept(void **state)
{
	(void)state;
	enum { EMPTY, HUGE, TRUNC, NOTHING, OLD, TAG, NLEN, NOAT, ESC, NAMEME, SHORTREPLY,
	       COMPLEMENT, BADDIGEST, TRUNCREPLY, NCASES };
	static const int want[NCASES] = {
		[EMPTY] = -EPROTO, [HUGE] = -EMSGSIZE, [TRUNC] = -ECONNRESET,
		[NOTHING] = -ECONNRESET, [OLD] = -EPROTONOSUPPORT, [TAG] = -EPROTO,
		[NLEN] = -EPROTO, [NOAT] = -EPROTO, [ESC] = -EPROTO,
		[NAMEME] = -EPROTONOSUPPORT, [SHORTREPLY] = -EPROTO,
		[COMPLEMENT] = -EPROTONOSUPPORT, [BADDIGEST] = -EACCES, [TRUNCREPLY] = -ECONNRESET,
	};
	for (int c = 0; c < NCASES; c++) {
		struct script s = { .n = 0 };
		uint8_t zero[32] = { 0 };
		switch (c) {
		case EMPTY: put_be(&s, 0, 2); break;
		case HUGE: put_be(&s, 0xffff, 2); put(&s, "N", 1); break;
		case TRUNC: put_be(&s, 30, 2); put(&s, "N\0\0\0\0", 5); break;
		case NOTHING: break;
		case OLD: msg(&s, "n\0\5\0\0\0\0p@h", 10); break;
		case TAG: msg(&s, "Xyz", 3); break;
		case NLEN:
			put_be(&s, 15 + 3, 2); put(&s, "N", 1); put_be(&s, DIST_FLAGS_WISP, 8);
			put_be(&s, 1, 4); put_be(&s, 9, 2); put(&s, "p@h", 3);
			break;
		case NOAT: name_msg(&s, DIST_FLAGS_WISP, "nohost"); break;
		case ESC: name_msg(&s, DIST_FLAGS_WISP, "a\x1b[2J@h"); break;
		case NAMEME: name_msg(&s, DIST_FLAGS_WISP | DIST_FLAG_NAME_ME, "p@h"); break;
		case SHORTREPLY: name_msg(&s, DIST_FLAGS_WISP, "p@h"); msg(&s, "r\0\0", 3); break;
		case COMPLEMENT:
			name_msg(&s, DIST_FLAGS_WISP, "p@h"); msg(&s, "c\0\0\0\0\0\0\0\0", 9);
			break;
		case BADDIGEST:
			name_msg(&s, DIST_FLAGS_WISP, "p@h"); put_be(&s, 21, 2); put(&s, "r", 1);
			put(&s, zero, 20);
			break;
		case TRUNCREPLY:
			name_msg(&s, DIST_FLAGS_WISP, "p@h"); put_be(&s, 21, 2); put(&s, "r", 1);
			put(&s, zero, 6);
			break;
		}
		char err[512] = "";
		int rc = run_script(true, &s, false, 5000, err, sizeof(err), NULL);
		if (rc != want[c])
			fail_msg("accept case %d: %d (%s), expected %d", c, rc, err, want[c]);
		assert_non_null(strstr(err, "handshake with "));
		assert_null(strchr(err, '\x1b'));
	}
}

static void garbage_at_each_step_of_connect(void **state)
{
	(void)state;
	enum { NAMED, EMPTYSTATUS, OLDCHAL, TRUNCCHAL, NLEN, OTHERNAME, NOFLAGS, HANGUP,
	       BADACK, TRUNCACK, LONGACK, HUGE, NCASES };
	static const int want[NCASES] = {
		[NAMED] = -EPROTO, [EMPTYSTATUS] = -EPROTO, [OLDCHAL] = -EPROTONOSUPPORT,
		[TRUNCCHAL] = -ECONNRESET, [NLEN] = -EPROTO, [OTHERNAME] = -EPROTO,
		[NOFLAGS] = -EPROTONOSUPPORT, [HANGUP] = -EACCES, [BADACK] = -EACCES,
		[TRUNCACK] = -ECONNRESET, [LONGACK] = -EPROTO, [HUGE] = -EMSGSIZE,
	};
	for (int c = 0; c < NCASES; c++) {
		struct script s = { .n = 0 };
		uint8_t zero[40] = { 0 };
		if (c != NAMED && c != EMPTYSTATUS && c != HUGE)
			msg(&s, "sok", 3);
		switch (c) {
		case NAMED: msg(&s, "snamed:x", 8); break;
		case EMPTYSTATUS: msg(&s, "s", 1); break;
		case HUGE: put_be(&s, 4000, 2); put(&s, "s", 1); break;
		case OLDCHAL: msg(&s, "n\0\5\0\0\0\0\0\0\0\0p@h", 14); break;
		case TRUNCCHAL: put_be(&s, 22, 2); put(&s, "N\0\0", 3); break;
		case NLEN:
			put_be(&s, 22, 2); put(&s, "N", 1); put_be(&s, DIST_FLAGS_WISP, 8);
			put_be(&s, 1, 4); put_be(&s, 1, 4); put_be(&s, 300, 2); put(&s, "p@h", 3);
			break;
		case OTHERNAME: challenge_msg(&s, DIST_FLAGS_WISP, "q@h"); break;
		case NOFLAGS: challenge_msg(&s, DIST_FLAG_PUBLISHED, "p@h"); break;
		case HANGUP: challenge_msg(&s, DIST_FLAGS_WISP, "p@h"); break;
		case BADACK:
			challenge_msg(&s, DIST_FLAGS_WISP, "p@h"); put_be(&s, 17, 2); put(&s, "a", 1);
			put(&s, zero, 16);
			break;
		case TRUNCACK:
			challenge_msg(&s, DIST_FLAGS_WISP, "p@h"); put_be(&s, 17, 2); put(&s, "a", 1);
			put(&s, zero, 4);
			break;
		case LONGACK:
			challenge_msg(&s, DIST_FLAGS_WISP, "p@h"); put_be(&s, 40, 2); put(&s, zero, 40);
			break;
		}
		char err[512] = "";
		int rc = run_script(false, &s, false, 5000, err, sizeof(err), NULL);
		if (rc != want[c])
			fail_msg("connect case %d: %d (%s), expected %d", c, rc, err, want[c]);
		assert_non_null(strstr(err, "handshake with p@h: "));
	}
}

/* Status "alive" is answered "true", right after our name. */
static void alive_is_answered_true(void **state)
{
	(void)state;
	struct script s = { .n = 0 };
	msg(&s, "salive", 6);
	char err[512];
	int peer_fd;
	int rc = run_script(false, &s, false, 5000, err, sizeof(err), &peer_fd);
	assert_int_equal(rc, -ECONNRESET);   /* the script ends there */
	uint8_t got[64];
	ssize_t n = read(peer_fd, got, sizeof(got));
	close(peer_fd);
	size_t name = 2 + 15 + 3;            /* our 'N' name message for "w@h" */
	assert_int_equal(n, (ssize_t)(name + 7));
	assert_memory_equal(got + name, "\0\5strue", 7);
}

static bool holds_one(void *ctx)
{
	(*(int *)ctx)++;
	return false;
}

/* Status "alive" to a caller that holds a connection to the peer already
 * (both sides connected at once, and the peer's attempt won here) is
 * answered "false", and the attempt ends with -EISCONN: answering "true"
 * made the peer drop the connection both sides held. */
static void alive_is_answered_false_when_connected(void **state)
{
	(void)state;
	struct script s = { .n = 0 };
	msg(&s, "salive", 6);
	int sv[2];
	make_pair(sv, false);
	assert_int_equal(write(sv[1], s.b, s.n), (ssize_t)s.n);
	struct dist_id self = make_id("w@h", DIST_FLAGS_WISP, 5), peer;
	char err[512];
	int asked = 0;
	int rc = dist_handshake_connect(sv[0], &self, COOKIE, "p@h", holds_one, &asked, &peer, 5000,
	                                err, sizeof(err));
	close(sv[0]);
	assert_int_equal(rc, -EISCONN);
	assert_int_equal(asked, 1);
	assert_non_null(strstr(err, "handshake with p@h: "));
	uint8_t got[64];
	ssize_t n = read(sv[1], got, sizeof(got));
	close(sv[1]);
	size_t name = 2 + 15 + 3;            /* our 'N' name message for "w@h" */
	assert_int_equal(n, (ssize_t)(name + 8));
	assert_memory_equal(got + name, "\0\6sfalse", 8);
}

/* A peer that goes quiet costs the timeout, in both roles and at any step. */
static void silent_peer_times_out(void **state)
{
	(void)state;
	struct script none = { .n = 0 }, half = { .n = 0 };
	msg(&half, "sok", 3);
	char err[512];
	assert_int_equal(run_script(true, &none, true, 200, err, sizeof(err), NULL), -ETIMEDOUT);
	assert_non_null(strstr(err, "timed out after 200 ms waiting for the name message"));
	assert_int_equal(run_script(false, &half, true, 200, err, sizeof(err), NULL), -ETIMEDOUT);
	assert_non_null(strstr(err, "timed out after 200 ms waiting for the challenge"));
}

static void bad_arguments(void **state)
{
	(void)state;
	struct dist_id self = make_id("noat", DIST_FLAGS_WISP, 1), peer;
	char err[512];
	int sv[2];
	make_pair(sv, false);
	assert_int_equal(dist_handshake_connect(sv[0], &self, COOKIE, "p@h", NULL, NULL, &peer, 100, err,
	                                        sizeof(err)), -EINVAL);
	self = make_id("w@h", DIST_FLAGS_WISP, 1);
	assert_int_equal(dist_handshake_connect(sv[0], &self, COOKIE, "p", NULL, NULL, &peer, 100, err,
	                                        sizeof(err)), -EINVAL);
	assert_int_equal(dist_handshake_accept(sv[0], &self, NULL, NULL, NULL, &peer, 100, err,
	                                       sizeof(err)), -EINVAL);
	close(sv[0]);
	close(sv[1]);
}

/* MD5(cookie ++ decimal challenge), checked against erlang:md5/1 and
 * Python's hashlib: the challenge is unsigned (4294967295, not -1). */
static void digest_is_erlangs(void **state)
{
	(void)state;
	static const struct { const char *cookie; uint32_t challenge; const char *hex; } v[] = {
		{ "secret", 4294967295u, "5dfd181e69aa587cc812eb333e6536b6" },
		{ "abc", 0, "577571be4de9dcce85a041ba0410f29f" },
		{ "COOKIE", 2147483648u, "3f77e55d9b366faa0f7beea0439724f2" },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		uint8_t d[16];
		char hex[33];
		dist_handshake_digest(v[i].challenge, v[i].cookie, d);
		for (int j = 0; j < 16; j++)
			snprintf(hex + 2 * j, 3, "%02x", d[j]);
		assert_string_equal(hex, v[i].hex);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(digest_is_erlangs),
		cmocka_unit_test(two_nodes_blocking),
		cmocka_unit_test(two_nodes_nonblocking),
		cmocka_unit_test(wrong_cookie_refused_by_both),
		cmocka_unit_test(statuses),
		cmocka_unit_test(missing_mandatory_flags_refused),
		cmocka_unit_test(digest_flag_stands_for_mandatory_set),
		cmocka_unit_test(peer_with_another_name_refused),
		cmocka_unit_test(garbage_at_each_step_of_accept),
		cmocka_unit_test(garbage_at_each_step_of_connect),
		cmocka_unit_test(alive_is_answered_true),
		cmocka_unit_test(alive_is_answered_false_when_connected),
		cmocka_unit_test(silent_peer_times_out),
		cmocka_unit_test(bad_arguments),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
