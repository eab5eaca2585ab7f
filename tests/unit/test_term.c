/*
 * test_term.c — the guest SDK's Erlang term codec (sdk/c/term.c, compiled
 * natively): exact encodings at every integer boundary, round trips of
 * every type, bad input (every prefix of a term, wrong types, nesting past
 * the limit, mutated bytes) refused without reading past the end.
 *
 * Inputs are copied into buffers of exactly their size (`exact`), so under
 * ASan (make check SANITIZE=address) a read one byte past the end fails.
 * Agreement with real Erlang is tests/e2e/test_term.py's: erl there is the
 * oracle for the byte sequences written out by hand here.
 */
#include "unit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wisp/term.h>

#define BYTES(...) ((const uint8_t[]){ __VA_ARGS__ }), sizeof((const uint8_t[]){ __VA_ARGS__ })

/* A heap copy of b[0..n) with nothing after it. */
static uint8_t *exact(const uint8_t *b, size_t n)
{
	uint8_t *p = malloc(n ? n : 1);
	assert_non_null(p);
	if (n)
		memcpy(p, b, n);
	return p;
}

/* The encoder's output must be exactly want[0..n) (version byte included). */
static void assert_encoded(const struct wisp_term_enc *e, const uint8_t *want, size_t n)
{
	assert_int_equal(wisp_term_enc_len(e), (int64_t)n);
	if (memcmp(e->buf, want, n) != 0) {
		for (size_t i = 0; i < e->len; i++)
			fprintf(stderr, "%d%s", e->buf[i], i + 1 < e->len ? "," : "\n");
		fail_msg("encoding differs");
	}
}

/* Decodes a whole buffer of exactly one term from an exact copy. */
struct dec_buf {
	uint8_t *copy;
	struct wisp_term_dec d;
};

static void dec_open(struct dec_buf *b, const uint8_t *bytes, size_t n)
{
	b->copy = exact(bytes, n);
	assert_int_equal(wisp_term_dec_init(&b->d, b->copy, n), WISP_TERM_OK);
}

/* ---- integers ---- */

struct int_case {
	int64_t v;
	uint8_t bytes[12];
	size_t n;
};

static void integers_are_encoded_as_erlang_does(void **state)
{
	(void)state;
	static const struct int_case cases[] = {
		{ 0, { 131, 97, 0 }, 3 },
		{ 127, { 131, 97, 127 }, 3 },
		{ 128, { 131, 97, 128 }, 3 },
		{ 255, { 131, 97, 255 }, 3 },
		{ 256, { 131, 98, 0, 0, 1, 0 }, 6 },
		{ -1, { 131, 98, 255, 255, 255, 255 }, 6 },
		{ INT32_MAX, { 131, 98, 0x7f, 255, 255, 255 }, 6 },
		{ INT32_MIN, { 131, 98, 0x80, 0, 0, 0 }, 6 },
		{ (int64_t)INT32_MAX + 1, { 131, 110, 4, 0, 0, 0, 0, 0x80 }, 8 },
		{ (int64_t)INT32_MIN - 1, { 131, 110, 4, 1, 1, 0, 0, 0x80 }, 8 },
		{ (int64_t)1 << 40, { 131, 110, 6, 0, 0, 0, 0, 0, 0, 1 }, 10 },
		{ INT64_MAX, { 131, 110, 8, 0, 255, 255, 255, 255, 255, 255, 255, 0x7f }, 12 },
		{ INT64_MIN, { 131, 110, 8, 1, 0, 0, 0, 0, 0, 0, 0, 0x80 }, 12 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint8_t buf[32];
		struct wisp_term_enc e;
		struct dec_buf b;
		int64_t v;
		wisp_term_enc_init(&e, buf, sizeof buf);
		wisp_term_put_int(&e, cases[i].v);
		assert_encoded(&e, cases[i].bytes, cases[i].n);

		dec_open(&b, buf, (size_t)e.len);
		assert_int_equal(wisp_term_peek(&b.d), WISP_TERM_INT);
		assert_int_equal(wisp_term_get_int(&b.d, &v), WISP_TERM_OK);
		assert_true(v == cases[i].v);
		assert_true(wisp_term_dec_done(&b.d));
		free(b.copy);

		/* get_uint takes the non-negative ones, refuses the others */
		uint64_t u;
		dec_open(&b, buf, (size_t)e.len);
		if (cases[i].v >= 0) {
			assert_int_equal(wisp_term_get_uint(&b.d, &u), WISP_TERM_OK);
			assert_true(u == (uint64_t)cases[i].v);
		} else {
			assert_int_equal(wisp_term_get_uint(&b.d, &u), WISP_TERM_ERANGE);
			assert_ptr_equal(b.d.p, b.copy + 1);
		}
		free(b.copy);
	}
}

static void unsigned_integers_and_big_ones(void **state)
{
	(void)state;
	uint8_t buf[32];
	struct wisp_term_enc e;
	struct dec_buf b;
	uint64_t u;
	int64_t v;

	wisp_term_enc_init(&e, buf, sizeof buf);
	wisp_term_put_uint(&e, UINT64_MAX);
	assert_encoded(&e, BYTES(131, 110, 8, 0, 255, 255, 255, 255, 255, 255, 255, 255));
	dec_open(&b, buf, (size_t)e.len);
	assert_int_equal(wisp_term_get_int(&b.d, &v), WISP_TERM_ERANGE);
	assert_int_equal(wisp_term_get_uint(&b.d, &u), WISP_TERM_OK);
	assert_true(u == UINT64_MAX);
	free(b.copy);

	wisp_term_enc_init(&e, buf, sizeof buf);
	wisp_term_put_uint(&e, 300);
	assert_encoded(&e, BYTES(131, 98, 0, 0, 1, 44));

	/* 2^64 needs nine digits: out of range for both, skippable */
	dec_open(&b, BYTES(131, 110, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1));
	assert_int_equal(wisp_term_get_uint(&b.d, &u), WISP_TERM_ERANGE);
	assert_int_equal(wisp_term_get_int(&b.d, &v), WISP_TERM_ERANGE);
	assert_int_equal(wisp_term_skip(&b.d), WISP_TERM_OK);
	assert_true(wisp_term_dec_done(&b.d));
	free(b.copy);

	/* leading zero digits, LARGE_BIG_EXT, negative zero: all read */
	dec_open(&b, BYTES(131, 110, 10, 1, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0));
	assert_int_equal(wisp_term_get_int(&b.d, &v), WISP_TERM_OK);
	assert_true(v == -5);
	free(b.copy);
	dec_open(&b, BYTES(131, 111, 0, 0, 0, 2, 0, 0x34, 0x12));
	assert_int_equal(wisp_term_get_int(&b.d, &v), WISP_TERM_OK);
	assert_true(v == 0x1234);
	free(b.copy);
	dec_open(&b, BYTES(131, 110, 1, 1, 0));
	assert_int_equal(wisp_term_get_uint(&b.d, &u), WISP_TERM_OK);
	assert_true(u == 0);
	free(b.copy);

	/* -2^63 - 1 and 2^63 do not fit an int64 */
	dec_open(&b, BYTES(131, 110, 8, 1, 1, 0, 0, 0, 0, 0, 0, 0x80));
	assert_int_equal(wisp_term_get_int(&b.d, &v), WISP_TERM_ERANGE);
	free(b.copy);
	dec_open(&b, BYTES(131, 110, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0x80));
	assert_int_equal(wisp_term_get_int(&b.d, &v), WISP_TERM_ERANGE);
	assert_int_equal(wisp_term_get_uint(&b.d, &u), WISP_TERM_OK);
	assert_true(u == (uint64_t)1 << 63);
	free(b.copy);
}

/* ---- the other types ---- */

static void floats(void **state)
{
	(void)state;
	uint8_t buf[16];
	struct wisp_term_enc e;
	struct dec_buf b;
	double f;

	wisp_term_enc_init(&e, buf, sizeof buf);
	wisp_term_put_float(&e, 1.5);
	assert_encoded(&e, BYTES(131, 70, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0));
	dec_open(&b, buf, 10);
	assert_int_equal(wisp_term_peek(&b.d), WISP_TERM_FLOAT);
	assert_int_equal(wisp_term_get_float(&b.d, &f), WISP_TERM_OK);
	assert_true(f == 1.5);
	free(b.copy);

	const double values[] = { 0.0, -0.0, -2.25, 1e300, 5e-324, 3.141592653589793 };
	for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
		wisp_term_enc_init(&e, buf, sizeof buf);
		wisp_term_put_float(&e, values[i]);
		dec_open(&b, buf, (size_t)wisp_term_enc_len(&e));
		assert_int_equal(wisp_term_get_float(&b.d, &f), WISP_TERM_OK);
		assert_memory_equal(&f, &values[i], sizeof f);   /* -0.0 too */
		free(b.copy);
	}

	/* Erlang has no NaN or infinity: refused both ways */
	wisp_term_enc_init(&e, buf, sizeof buf);
	wisp_term_put_float(&e, NAN);
	assert_int_equal(wisp_term_enc_len(&e), WISP_TERM_EINVAL);
	wisp_term_enc_init(&e, buf, sizeof buf);
	wisp_term_put_float(&e, -INFINITY);
	assert_int_equal(wisp_term_enc_len(&e), WISP_TERM_EINVAL);
	dec_open(&b, BYTES(131, 70, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0));
	assert_int_equal(wisp_term_get_float(&b.d, &f), WISP_TERM_EBAD);
	free(b.copy);

	/* FLOAT_EXT, the old text form: 31 bytes, NUL-padded */
	uint8_t old[33] = { 131, 99 };
	memcpy(old + 2, "1.50000000000000000000e+00", 26);
	dec_open(&b, old, sizeof old);
	assert_int_equal(wisp_term_peek(&b.d), WISP_TERM_FLOAT);
	assert_int_equal(wisp_term_get_float(&b.d, &f), WISP_TERM_OK);
	assert_true(f == 1.5);
	assert_true(wisp_term_dec_done(&b.d));
	free(b.copy);
	memcpy(old + 2, "1.5x", 4);
	dec_open(&b, old, sizeof old);
	assert_int_equal(wisp_term_get_float(&b.d, &f), WISP_TERM_EBAD);
	free(b.copy);
}

static void atoms(void **state)
{
	(void)state;
	uint8_t buf[1100];
	struct wisp_term_enc e;
	struct dec_buf b;
	const char *name;
	size_t len;

	wisp_term_enc_init(&e, buf, sizeof buf);
	wisp_term_put_atom(&e, "ok", 2);
	assert_encoded(&e, BYTES(131, 119, 2, 'o', 'k'));
	dec_open(&b, buf, 5);
	assert_int_equal(wisp_term_peek(&b.d), WISP_TERM_ATOM);
	assert_int_equal(wisp_term_match_atom(&b.d, "okay"), 0);
	assert_int_equal(wisp_term_match_atom(&b.d, "o"), 0);
	assert_int_equal(wisp_term_get_atom(&b.d, &name, &len), WISP_TERM_OK);
	assert_int_equal(len, 2);
	assert_memory_equal(name, "ok", 2);
	free(b.copy);

	/* 255 characters of 3 bytes: ATOM_UTF8_EXT with a 2-byte length */
	char euro[255 * 3 + 3];
	for (int i = 0; i < 256; i++)
		memcpy(euro + 3 * i, "\xe2\x82\xac", 3);
	wisp_term_enc_init(&e, buf, sizeof buf);
	wisp_term_put_atom(&e, euro, 255 * 3);
	assert_int_equal(wisp_term_enc_len(&e), 1 + 3 + 255 * 3);
	assert_int_equal(buf[1], 118);
	assert_int_equal(buf[2] << 8 | buf[3], 765);
	dec_open(&b, buf, (size_t)e.len);
	assert_int_equal(wisp_term_get_atom(&b.d, &name, &len), WISP_TERM_OK);
	assert_int_equal(len, 765);
	assert_memory_equal(name, euro, 765);
	free(b.copy);

	/* 256 characters, bad UTF-8, surrogates, overlong forms: refused */
	const struct { const char *s; size_t n; } bad[] = {
		{ euro, 256 * 3 }, { "\xff", 1 }, { "a\xe2\x82", 3 },
		{ "\xed\xa0\x80", 3 }, { "\xc0\xaf", 2 }, { "\xf4\x90\x80\x80", 4 },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		wisp_term_enc_init(&e, buf, sizeof buf);
		wisp_term_put_atom(&e, bad[i].s, bad[i].n);
		assert_int_equal(wisp_term_enc_len(&e), WISP_TERM_EINVAL);
		uint8_t in[8] = { 131, 119, (uint8_t)bad[i].n };
		if (bad[i].n <= 4) {
			memcpy(in + 3, bad[i].s, bad[i].n);
			dec_open(&b, in, 3 + bad[i].n);
			assert_int_equal(wisp_term_get_atom(&b.d, &name, &len), WISP_TERM_EBAD);
			assert_int_equal(wisp_term_skip(&b.d), WISP_TERM_OK);   /* structure is fine */
			free(b.copy);
		}
	}

	/* Latin-1 atoms: ASCII ones read as they are; others only match */
	dec_open(&b, BYTES(131, 100, 0, 2, 'o', 'k'));
	assert_int_equal(wisp_term_get_atom(&b.d, &name, &len), WISP_TERM_OK);
	assert_memory_equal(name, "ok", 2);
	free(b.copy);
	dec_open(&b, BYTES(131, 115, 4, 'c', 'a', 'f', 0xe9));
	assert_int_equal(wisp_term_get_atom(&b.d, &name, &len), WISP_TERM_ENODE);
	assert_int_equal(wisp_term_match_atom(&b.d, "caf"), 0);
	assert_int_equal(wisp_term_match_atom(&b.d, "caf\xc3\xa9x"), 0);
	assert_int_equal(wisp_term_match_atom(&b.d, "caf\xc3\xa9"), 1);
	assert_true(wisp_term_dec_done(&b.d));
	free(b.copy);
	/* ...and a UTF-8 atom matches its UTF-8 text */
	dec_open(&b, BYTES(131, 119, 5, 'c', 'a', 'f', 0xc3, 0xa9));
	assert_int_equal(wisp_term_match_atom(&b.d, "caf\xc3\xa9"), 1);
	free(b.copy);
}

static void binaries_and_strings(void **state)
{
	(void)state;
	static uint8_t buf[150000];
	static uint8_t big[70000];
	struct wisp_term_enc e;
	struct dec_buf b;
	const uint8_t *data;
	size_t len;

	wisp_term_enc_init(&e, buf, sizeof buf);
	wisp_term_put_binary(&e, "\1\2\3", 3);
	assert_encoded(&e, BYTES(131, 109, 0, 0, 0, 3, 1, 2, 3));
	dec_open(&b, buf, 9);
	assert_int_equal(wisp_term_peek(&b.d), WISP_TERM_BINARY);
	assert_int_equal(wisp_term_get_binary(&b.d, &data, &len), WISP_TERM_OK);
	assert_int_equal(len, 3);
	assert_memory_equal(data, "\1\2\3", 3);
	free(b.copy);

	wisp_term_enc_init(&e, buf, sizeof buf);
	wisp_term_put_string(&e, "abc", 3);
	assert_encoded(&e, BYTES(131, 107, 0, 3, 'a', 'b', 'c'));
	dec_open(&b, buf, 7);
	assert_int_equal(wisp_term_peek(&b.d), WISP_TERM_STRING);
	assert_int_equal(wisp_term_get_string(&b.d, &data, &len), WISP_TERM_OK);
	assert_int_equal(len, 3);
	assert_memory_equal(data, "abc", 3);
	free(b.copy);

	/* "" is nil; get_string reads it as empty */
	wisp_term_enc_init(&e, buf, sizeof buf);
	wisp_term_put_string(&e, "", 0);
	assert_encoded(&e, BYTES(131, 106));
	dec_open(&b, buf, 2);
	assert_int_equal(wisp_term_get_string(&b.d, &data, &len), WISP_TERM_OK);
	assert_int_equal(len, 0);
	assert_true(wisp_term_dec_done(&b.d));
	free(b.copy);

	/* longer than STRING_EXT holds: a list of small integers */
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (uint8_t)(i * 7);
	wisp_term_enc_init(&e, buf, sizeof buf);
	wisp_term_put_string(&e, big, sizeof big);
	assert_int_equal(wisp_term_enc_len(&e), 1 + 5 + 2 * 70000 + 1);
	dec_open(&b, buf, (size_t)e.len);
	uint32_t n;
	assert_int_equal(wisp_term_get_string(&b.d, &data, &len), WISP_TERM_ETYPE);
	assert_int_equal(wisp_term_get_list(&b.d, &n), WISP_TERM_OK);
	assert_int_equal(n, 70000);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t u;
		assert_int_equal(wisp_term_get_uint(&b.d, &u), WISP_TERM_OK);
		assert_true(u == big[i]);
	}
	assert_int_equal(wisp_term_get_nil(&b.d), WISP_TERM_OK);
	assert_true(wisp_term_dec_done(&b.d));
	free(b.copy);
}

static void containers(void **state)
{
	(void)state;
	uint8_t buf[64];
	struct wisp_term_enc e;
	struct dec_buf b;
	uint32_t n;
	int64_t v;

	/* {ok, [1, 2 | 3], #{a => []}} */
	wisp_term_enc_init(&e, buf, sizeof buf);
	wisp_term_put_tuple(&e, 3);
	wisp_term_put_atom(&e, "ok", 2);
	wisp_term_put_list(&e, 2);
	wisp_term_put_int(&e, 1);
	wisp_term_put_int(&e, 2);
	wisp_term_put_int(&e, 3);
	wisp_term_put_map(&e, 1);
	wisp_term_put_atom(&e, "a", 1);
	wisp_term_put_nil(&e);
	assert_encoded(&e, BYTES(131, 104, 3, 119, 2, 'o', 'k', 108, 0, 0, 0, 2, 97, 1, 97, 2, 97, 3,
	                         116, 0, 0, 0, 1, 119, 1, 'a', 106));
	dec_open(&b, buf, (size_t)e.len);
	assert_int_equal(wisp_term_peek(&b.d), WISP_TERM_TUPLE);
	assert_int_equal(wisp_term_get_tuple(&b.d, &n), WISP_TERM_OK);
	assert_int_equal(n, 3);
	assert_int_equal(wisp_term_match_atom(&b.d, "ok"), 1);
	assert_int_equal(wisp_term_peek(&b.d), WISP_TERM_LIST);
	assert_int_equal(wisp_term_get_list(&b.d, &n), WISP_TERM_OK);
	assert_int_equal(n, 2);
	for (int i = 1; i <= 3; i++) {
		assert_int_equal(wisp_term_get_int(&b.d, &v), WISP_TERM_OK);
		assert_int_equal(v, i);
	}
	assert_int_equal(wisp_term_peek(&b.d), WISP_TERM_MAP);
	assert_int_equal(wisp_term_get_map(&b.d, &n), WISP_TERM_OK);
	assert_int_equal(n, 1);
	assert_int_equal(wisp_term_match_atom(&b.d, "a"), 1);
	assert_int_equal(wisp_term_peek(&b.d), WISP_TERM_NIL);
	assert_int_equal(wisp_term_get_list(&b.d, &n), WISP_TERM_OK);   /* [] is a list of 0 */
	assert_int_equal(n, 0);
	assert_true(wisp_term_dec_done(&b.d));
	assert_int_equal(wisp_term_peek(&b.d), WISP_TERM_ETRUNC);
	free(b.copy);

	/* a large tuple */
	wisp_term_enc_init(&e, buf, sizeof buf);
	wisp_term_put_tuple(&e, 256);
	assert_encoded(&e, BYTES(131, 105, 0, 0, 1, 0));
	dec_open(&b, buf, (size_t)e.len);
	assert_int_equal(wisp_term_get_tuple(&b.d, &n), WISP_TERM_ETRUNC);   /* no room for 256 */
	free(b.copy);

	/* an empty LIST_EXT with a nil tail is [] (erts reads it) */
	dec_open(&b, BYTES(131, 108, 0, 0, 0, 0, 106));
	assert_int_equal(wisp_term_get_list(&b.d, &n), WISP_TERM_OK);
	assert_int_equal(n, 0);
	assert_true(wisp_term_dec_done(&b.d));
	free(b.copy);
	dec_open(&b, BYTES(131, 108, 0, 0, 0, 0, 97, 1));
	assert_int_equal(wisp_term_get_list(&b.d, &n), WISP_TERM_EBAD);
	free(b.copy);

	/* counts larger than the input could hold are refused at the header */
	dec_open(&b, BYTES(131, 116, 0, 0, 0, 4, 97, 1, 97, 2, 97, 3));
	assert_int_equal(wisp_term_get_map(&b.d, &n), WISP_TERM_ETRUNC);
	assert_int_equal(wisp_term_skip(&b.d), WISP_TERM_ETRUNC);
	free(b.copy);
	dec_open(&b, BYTES(131, 108, 0xff, 0xff, 0xff, 0xff, 97, 1, 106));
	assert_int_equal(wisp_term_get_list(&b.d, &n), WISP_TERM_ETRUNC);
	assert_int_equal(wisp_term_skip(&b.d), WISP_TERM_ETRUNC);
	free(b.copy);
}

static void pids(void **state)
{
	(void)state;
	uint8_t buf[32];
	struct wisp_term_enc e;
	struct dec_buf b;
	wisp_pid_t pid;
	const wisp_pid_t p = (wisp_pid_t)5 << 32 | 7;

	wisp_term_enc_init(&e, buf, sizeof buf);
	wisp_term_put_pid(&e, p);
	assert_encoded(&e, BYTES(131, 88, 119, 0, 0, 0, 0, 7, 0, 0, 0, 5, 0, 0, 0, 0));
	dec_open(&b, buf, (size_t)e.len);
	assert_int_equal(wisp_term_peek(&b.d), WISP_TERM_PID);
	assert_int_equal(wisp_term_get_pid(&b.d, &pid), WISP_TERM_OK);
	assert_true(pid == p);
	free(b.copy);

	/* the largest pid survives (all 64 bits) */
	wisp_term_enc_init(&e, buf, sizeof buf);
	wisp_term_put_pid(&e, UINT64_MAX);
	dec_open(&b, buf, (size_t)e.len);
	assert_int_equal(wisp_term_get_pid(&b.d, &pid), WISP_TERM_OK);
	assert_true(pid == UINT64_MAX);
	free(b.copy);

	/* the empty node in the old Latin-1 encoding is still the empty node */
	dec_open(&b, BYTES(131, 88, 100, 0, 0, 0, 0, 0, 7, 0, 0, 0, 5, 0, 0, 0, 0));
	assert_int_equal(wisp_term_get_pid(&b.d, &pid), WISP_TERM_OK);
	assert_true(pid == p);
	free(b.copy);

	/* a named node's pid: not for a guest; raw bytes are fine */
	const uint8_t *raw;
	size_t len;
	dec_open(&b, BYTES(131, 88, 119, 3, 'a', '@', 'b', 0, 0, 0, 7, 0, 0, 0, 5, 0, 0, 0, 1));
	assert_int_equal(wisp_term_get_pid(&b.d, &pid), WISP_TERM_ENODE);
	assert_ptr_equal(b.d.p, b.copy + 1);
	assert_int_equal(wisp_term_get_raw(&b.d, &raw, &len), WISP_TERM_OK);
	assert_int_equal(len, 18);
	assert_ptr_equal(raw, b.copy + 1);
	free(b.copy);
	/* Creation other than 0, the old PID_EXT, a node that is no atom */
	dec_open(&b, BYTES(131, 88, 119, 0, 0, 0, 0, 7, 0, 0, 0, 5, 0, 0, 0, 1));
	assert_int_equal(wisp_term_get_pid(&b.d, &pid), WISP_TERM_EBAD);
	free(b.copy);
	dec_open(&b, BYTES(131, 103, 119, 0, 0, 0, 0, 7, 0, 0, 0, 5, 0));
	assert_int_equal(wisp_term_peek(&b.d), WISP_TERM_PID);
	assert_int_equal(wisp_term_get_pid(&b.d, &pid), WISP_TERM_EBAD);
	assert_int_equal(wisp_term_skip(&b.d), WISP_TERM_OK);
	free(b.copy);
	dec_open(&b, BYTES(131, 88, 97, 0, 0, 0, 0, 7, 0, 0, 0, 5, 0, 0, 0, 0));
	assert_int_equal(wisp_term_get_pid(&b.d, &pid), WISP_TERM_EBAD);
	assert_int_equal(wisp_term_skip(&b.d), WISP_TERM_EBAD);
	free(b.copy);
}

/* A reference from erl (make_ref() on nonode@nohost), a port, an export,
 * a fun's outer frame and a bitstring: opaque, carried as raw bytes. */
static const uint8_t REF[] = { 90, 0, 3, 100, 0, 13, 'n', 'o', 'n', 'o', 'd', 'e', '@', 'n', 'o', 'h',
                               'o', 's', 't', 0, 0, 0, 0, 0, 2, 90, 79, 197, 128, 0, 2, 235, 233, 240,
                               200 };
static const uint8_t PORT[] = { 120, 119, 1, 'n', 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 1 };
static const uint8_t EXPORT[] = { 113, 119, 1, 'm', 119, 1, 'f', 97, 2 };
static const uint8_t FUN[] = { 112, 0, 0, 0, 7, 1, 2, 3 };
static const uint8_t BITS[] = { 77, 0, 0, 0, 1, 3, 0xe0 };

static void opaque_terms_pass_through_raw(void **state)
{
	(void)state;
	const struct { const uint8_t *t; size_t n; int type; } cases[] = {
		{ REF, sizeof REF, WISP_TERM_REF },
		{ PORT, sizeof PORT, WISP_TERM_OTHER },
		{ EXPORT, sizeof EXPORT, WISP_TERM_OTHER },
		{ FUN, sizeof FUN, WISP_TERM_OTHER },
		{ BITS, sizeof BITS, WISP_TERM_OTHER },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint8_t buf[128];
		struct wisp_term_enc e;
		struct dec_buf b;
		const uint8_t *raw;
		size_t len;
		/* {Term, Term} through put_raw, then out again with get_raw */
		wisp_term_enc_init(&e, buf, sizeof buf);
		wisp_term_put_tuple(&e, 2);
		wisp_term_put_raw(&e, cases[i].t, cases[i].n);
		wisp_term_put_raw(&e, cases[i].t, cases[i].n);
		assert_int_equal(wisp_term_enc_len(&e), 3 + 2 * (int64_t)cases[i].n);
		dec_open(&b, buf, (size_t)e.len);
		uint32_t n;
		assert_int_equal(wisp_term_get_tuple(&b.d, &n), WISP_TERM_OK);
		assert_int_equal(wisp_term_peek(&b.d), cases[i].type);
		assert_int_equal(wisp_term_get_raw(&b.d, &raw, &len), WISP_TERM_OK);
		assert_int_equal(len, cases[i].n);
		assert_memory_equal(raw, cases[i].t, len);
		assert_int_equal(wisp_term_skip(&b.d), WISP_TERM_OK);
		assert_true(wisp_term_dec_done(&b.d));
		free(b.copy);
	}

	/* put_raw wants exactly one well-formed term */
	uint8_t buf[64];
	struct wisp_term_enc e;
	const uint8_t two[] = { 97, 1, 97, 2 }, cut[] = { 109, 0, 0, 0, 9, 1 }, fun_ext[] = { 117, 0 };
	const uint8_t *bad[] = { two, cut, fun_ext, REF };
	const size_t bad_n[] = { sizeof two, sizeof cut, sizeof fun_ext, 0 };
	for (size_t i = 0; i < 4; i++) {
		wisp_term_enc_init(&e, buf, sizeof buf);
		wisp_term_put_raw(&e, bad[i], bad_n[i]);
		assert_int_equal(wisp_term_enc_len(&e), WISP_TERM_EINVAL);
	}
}

/* ---- bad input ---- */

/* Reads the next term by the typed gets, depth-first; 0 or the first error.
 * (A guest's way through an unknown term.) */
static int walk(struct wisp_term_dec *d, int depth)
{
	int64_t v;
	uint64_t u;
	double f;
	const char *name;
	const uint8_t *data;
	size_t len;
	uint32_t n;
	wisp_pid_t pid;
	int rc, type = wisp_term_peek(d);
	if (depth > WISP_TERM_MAX_DEPTH)
		return WISP_TERM_EDEPTH;
	switch (type) {
	case WISP_TERM_INT:
		rc = wisp_term_get_int(d, &v);
		if (rc == WISP_TERM_ERANGE)
			rc = wisp_term_get_uint(d, &u);
		return rc == WISP_TERM_ERANGE ? wisp_term_skip(d) : rc;
	case WISP_TERM_FLOAT:
		return wisp_term_get_float(d, &f);
	case WISP_TERM_ATOM:
		rc = wisp_term_get_atom(d, &name, &len);
		return rc == WISP_TERM_ENODE ? wisp_term_skip(d) : rc;
	case WISP_TERM_BINARY:
		return wisp_term_get_binary(d, &data, &len);
	case WISP_TERM_STRING:
		return wisp_term_get_string(d, &data, &len);
	case WISP_TERM_NIL:
		return wisp_term_get_nil(d);
	case WISP_TERM_PID:
		rc = wisp_term_get_pid(d, &pid);
		return rc == WISP_TERM_ENODE ? wisp_term_get_raw(d, &data, &len) : rc;
	case WISP_TERM_REF:
	case WISP_TERM_OTHER:
		return wisp_term_get_raw(d, &data, &len);
	case WISP_TERM_TUPLE:
		rc = wisp_term_get_tuple(d, &n);
		break;
	case WISP_TERM_MAP:
		rc = wisp_term_get_map(d, &n);
		n *= 2;
		break;
	case WISP_TERM_LIST:
		rc = wisp_term_get_list(d, &n);
		n += 1;   /* the tail */
		break;
	default:
		return type;
	}
	for (uint64_t i = 0; rc == WISP_TERM_OK && i < n; i++)
		rc = walk(d, depth + 1);
	return rc;
}

/* One term with every type in it, nested, written to e. */
static void put_sample(struct wisp_term_enc *e)
{
	wisp_term_put_tuple(e, 19);
	wisp_term_put_atom(e, "ok", 2);
	wisp_term_put_int(e, -1);
	wisp_term_put_int(e, 300);
	wisp_term_put_int(e, INT64_MIN);
	wisp_term_put_uint(e, UINT64_MAX);
	wisp_term_put_float(e, -2.5);
	wisp_term_put_atom(e, "h\xc3\xa9llo", 6);
	wisp_term_put_binary(e, "\0\1\2", 3);
	wisp_term_put_string(e, "abc", 3);
	wisp_term_put_list(e, 3);
	wisp_term_put_int(e, 1);
	wisp_term_put_list(e, 1);
	wisp_term_put_int(e, 2);
	wisp_term_put_nil(e);
	wisp_term_put_tuple(e, 0);
	wisp_term_put_nil(e);
	wisp_term_put_map(e, 2);
	wisp_term_put_atom(e, "a", 1);
	wisp_term_put_int(e, 1);
	wisp_term_put_string(e, "k", 1);
	wisp_term_put_binary(e, "", 0);
	wisp_term_put_pid(e, (wisp_pid_t)3 << 32 | 4);
	wisp_term_put_nil(e);
	wisp_term_put_raw(e, REF, sizeof REF);
	wisp_term_put_raw(e, PORT, sizeof PORT);
	wisp_term_put_raw(e, EXPORT, sizeof EXPORT);
	wisp_term_put_raw(e, FUN, sizeof FUN);
	wisp_term_put_raw(e, BITS, sizeof BITS);
	/* 2^64 as a LARGE_BIG_EXT (nothing writes one: raw) */
	wisp_term_put_raw(e, BYTES(111, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1));
}

static size_t sample(uint8_t *buf, size_t cap)
{
	struct wisp_term_enc e;
	wisp_term_enc_init(&e, buf, cap);
	put_sample(&e);
	assert_true(wisp_term_enc_len(&e) > 0);
	return e.len;
}

static void the_sample_walks(void **state)
{
	(void)state;
	uint8_t buf[512];
	size_t n = sample(buf, sizeof buf);
	struct dec_buf b;
	dec_open(&b, buf, n);
	assert_int_equal(walk(&b.d, 0), WISP_TERM_OK);
	assert_true(wisp_term_dec_done(&b.d));
	free(b.copy);
}

/* Every proper prefix of a term is an error, for the typed walk and for
 * skip, and nothing reads past the prefix (ASan: exact copies). */
static void every_prefix_is_an_error(void **state)
{
	(void)state;
	uint8_t buf[512];
	size_t n = sample(buf, sizeof buf);
	for (size_t len = 0; len < n; len++) {
		uint8_t *copy = exact(buf, len);
		struct wisp_term_dec d;
		int rc = wisp_term_dec_init(&d, copy, len);
		if (len == 0) {
			assert_int_equal(rc, WISP_TERM_ETRUNC);
		} else {
			assert_int_equal(rc, WISP_TERM_OK);
			struct wisp_term_dec d2 = d;
			rc = walk(&d, 0);
			if (rc == WISP_TERM_OK)
				fail_msg("prefix of %zu bytes (of %zu) walked", len, n);
			assert_int_equal(rc, WISP_TERM_ETRUNC);
			assert_int_equal(wisp_term_skip(&d2), WISP_TERM_ETRUNC);
			assert_ptr_equal(d2.p, copy + 1);   /* a failed get consumes nothing */
		}
		free(copy);
	}
}

static void wrong_types_are_refused_and_consume_nothing(void **state)
{
	(void)state;
	uint8_t buf[512];
	size_t n = sample(buf, sizeof buf);
	struct dec_buf b;
	dec_open(&b, buf, n);
	uint32_t arity;
	assert_int_equal(wisp_term_get_tuple(&b.d, &arity), WISP_TERM_OK);
	/* at every element, each get that does not fit its type says so */
	for (uint32_t i = 0; i < arity; i++) {
		const uint8_t *at = b.d.p;
		int type = wisp_term_peek(&b.d);
		int64_t v;
		uint64_t u;
		double f;
		const char *name;
		const uint8_t *data;
		size_t len;
		uint32_t count;
		wisp_pid_t pid;
		if (type != WISP_TERM_INT) {
			assert_int_equal(wisp_term_get_int(&b.d, &v), WISP_TERM_ETYPE);
			assert_int_equal(wisp_term_get_uint(&b.d, &u), WISP_TERM_ETYPE);
		}
		if (type != WISP_TERM_FLOAT)
			assert_int_equal(wisp_term_get_float(&b.d, &f), WISP_TERM_ETYPE);
		if (type != WISP_TERM_ATOM) {
			assert_int_equal(wisp_term_get_atom(&b.d, &name, &len), WISP_TERM_ETYPE);
			assert_int_equal(wisp_term_match_atom(&b.d, "ok"), 0);
		}
		if (type != WISP_TERM_BINARY)
			assert_int_equal(wisp_term_get_binary(&b.d, &data, &len), WISP_TERM_ETYPE);
		if (type != WISP_TERM_STRING && type != WISP_TERM_NIL)
			assert_int_equal(wisp_term_get_string(&b.d, &data, &len), WISP_TERM_ETYPE);
		if (type != WISP_TERM_TUPLE)
			assert_int_equal(wisp_term_get_tuple(&b.d, &count), WISP_TERM_ETYPE);
		if (type != WISP_TERM_LIST && type != WISP_TERM_NIL)
			assert_int_equal(wisp_term_get_list(&b.d, &count), WISP_TERM_ETYPE);
		if (type != WISP_TERM_NIL)
			assert_int_equal(wisp_term_get_nil(&b.d), WISP_TERM_ETYPE);
		if (type != WISP_TERM_MAP)
			assert_int_equal(wisp_term_get_map(&b.d, &count), WISP_TERM_ETYPE);
		if (type != WISP_TERM_PID)
			assert_int_equal(wisp_term_get_pid(&b.d, &pid), WISP_TERM_ETYPE);
		assert_ptr_equal(b.d.p, at);
		assert_int_equal(walk(&b.d, 1), WISP_TERM_OK);
	}
	assert_true(wisp_term_dec_done(&b.d));
	free(b.copy);

	/* not a term at all */
	struct wisp_term_dec d;
	assert_int_equal(wisp_term_dec_init(&d, BYTES(130, 97, 1)), WISP_TERM_EBAD);
	const uint8_t *tags = (const uint8_t[]){ 131, 80, 0, 0, 0, 1, 0x78 };   /* compressed */
	assert_int_equal(wisp_term_dec_init(&d, tags, 7), WISP_TERM_OK);
	assert_int_equal(wisp_term_peek(&d), WISP_TERM_EBAD);
	assert_int_equal(wisp_term_skip(&d), WISP_TERM_EBAD);
}

/* `levels` containers of `kind` (a tuple, a list, a map value) around 0. */
static uint8_t *nested(int kind, size_t levels, size_t *n)
{
	size_t per = kind == 0 ? 2 : kind == 1 ? 5 : 7, tail = kind == 1 ? 1 : 0;
	uint8_t *p = malloc(1 + levels * (per + tail) + 2), *q = p;
	assert_non_null(p);
	*q++ = 131;
	for (size_t i = 0; i < levels; i++) {
		const uint8_t tuple[] = { 104, 1 }, list[] = { 108, 0, 0, 0, 1 },
		              map[] = { 116, 0, 0, 0, 1, 97, 0 };
		const uint8_t *h = kind == 0 ? tuple : kind == 1 ? list : map;
		memcpy(q, h, per);
		q += per;
	}
	*q++ = 97;
	*q++ = 0;
	for (size_t i = 0; i < levels * tail; i++)
		*q++ = 106;
	*n = (size_t)(q - p);
	return p;
}

static void nesting_beyond_the_limit_is_refused(void **state)
{
	(void)state;
	for (int kind = 0; kind < 3; kind++) {
		size_t n;
		struct wisp_term_dec d;
		uint8_t *p = nested(kind, WISP_TERM_MAX_DEPTH, &n);
		assert_int_equal(wisp_term_dec_init(&d, p, n), WISP_TERM_OK);
		assert_int_equal(wisp_term_skip(&d), WISP_TERM_OK);
		assert_true(wisp_term_dec_done(&d));
		free(p);

		p = nested(kind, WISP_TERM_MAX_DEPTH + 1, &n);
		assert_int_equal(wisp_term_dec_init(&d, p, n), WISP_TERM_OK);
		assert_int_equal(wisp_term_skip(&d), WISP_TERM_EDEPTH);
		assert_ptr_equal(d.p, p + 1);
		free(p);

		/* a million levels: refused as quickly, the stack untouched */
		p = nested(kind, 1000000, &n);
		assert_int_equal(wisp_term_dec_init(&d, p, n), WISP_TERM_OK);
		assert_int_equal(wisp_term_skip(&d), WISP_TERM_EDEPTH);
		free(p);
	}

	/* a list whose tail is a list (and so on) is followed by a loop: no
	 * depth limit, as for the flat list erl writes */
	size_t links = 100000, n = 1 + links * 7 + 1;
	uint8_t *p = malloc(n), *q = p;
	assert_non_null(p);
	*q++ = 131;
	for (size_t i = 0; i < links; i++) {
		memcpy(q, (const uint8_t[]){ 108, 0, 0, 0, 1, 97, 1 }, 7);
		q += 7;
	}
	*q = 106;
	struct wisp_term_dec d;
	assert_int_equal(wisp_term_dec_init(&d, p, n), WISP_TERM_OK);
	assert_int_equal(wisp_term_skip(&d), WISP_TERM_OK);
	assert_true(wisp_term_dec_done(&d));
	free(p);
}

/* Random damage to the sample: whatever the bytes, decoding stays inside
 * them; when the typed walk accepts a term, skip agrees on its end. */
static void mutated_input_is_read_safely(void **state)
{
	(void)state;
	uint8_t buf[512];
	size_t n = sample(buf, sizeof buf);
	uint64_t x = 0x9e3779b97f4a7c15ull;
	int walked = 0;
	for (int round = 0; round < 20000; round++) {
		uint8_t *copy = exact(buf, n);
		size_t len = n;
		for (int k = 0; k < 1 + round % 4; k++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			size_t at = 1 + (size_t)(x % (n - 1));
			copy[at] = (uint8_t)(x >> 32);
		}
		if (round % 3 == 0)
			len = 1 + (size_t)((x >> 40) % (n - 1));
		uint8_t *in = exact(copy, len);
		struct wisp_term_dec d, d2;
		assert_int_equal(wisp_term_dec_init(&d, in, len), WISP_TERM_OK);
		d2 = d;
		int rc = walk(&d, 0);
		int rs = wisp_term_skip(&d2);
		assert_true(d.p >= in && d.p <= in + len);
		assert_true(d2.p >= in && d2.p <= in + len);
		if (rc == WISP_TERM_OK) {
			walked++;
			assert_int_equal(rs, WISP_TERM_OK);
			assert_ptr_equal(d.p, d2.p);
		}
		free(in);
		free(copy);
	}
	/* some damage is harmless (digits, bytes of binaries) */
	assert_true(walked > 0);
}

/* ---- the encoder's buffer ---- */

static void overflow_writes_nothing_past_the_buffer_and_measures(void **state)
{
	(void)state;
	uint8_t full[512], buf[520];
	size_t n = sample(full, sizeof full);
	struct wisp_term_enc e;
	for (size_t cap = 0; cap < n; cap++) {
		memset(buf, 0xaa, sizeof buf);
		wisp_term_enc_init(&e, buf, cap);
		put_sample(&e);
		assert_int_equal(wisp_term_enc_len(&e), WISP_TERM_EOVERFLOW);
		assert_true(e.overflow);
		assert_int_equal(e.len, n);   /* what it needs */
		for (size_t i = cap; i < sizeof buf; i++)
			assert_int_equal(buf[i], 0xaa);
	}
	/* a measuring pass needs no buffer */
	wisp_term_enc_init(&e, NULL, 0);
	put_sample(&e);
	assert_int_equal(e.len, n);
	/* a value Erlang refuses wins over a full buffer, and sticks */
	wisp_term_enc_init(&e, buf, 2);
	wisp_term_put_atom(&e, "\xff", 1);
	wisp_term_put_int(&e, 1);
	assert_int_equal(wisp_term_enc_len(&e), WISP_TERM_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(integers_are_encoded_as_erlang_does),
		cmocka_unit_test(unsigned_integers_and_big_ones),
		cmocka_unit_test(floats),
		cmocka_unit_test(atoms),
		cmocka_unit_test(binaries_and_strings),
		cmocka_unit_test(containers),
		cmocka_unit_test(pids),
		cmocka_unit_test(opaque_terms_pass_through_raw),
		cmocka_unit_test(the_sample_walks),
		cmocka_unit_test(every_prefix_is_an_error),
		cmocka_unit_test(wrong_types_are_refused_and_consume_nothing),
		cmocka_unit_test(nesting_beyond_the_limit_is_refused),
		cmocka_unit_test(mutated_input_is_read_safely),
		cmocka_unit_test(overflow_writes_nothing_past_the_buffer_and_measures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
