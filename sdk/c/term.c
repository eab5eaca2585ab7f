/*
 * sdk/c/term.c — Erlang's External Term Format for C guests
 * (include/wisp/term.h says what each call promises).
 *
 * Compile it together with the guest, as sdk/c/wisp.c:
 *   clang --target=wasm32-wasi --sysroot=/usr -O2 -I<wisp>/include \
 *         app.c <wisp>/sdk/c/wisp.c <wisp>/sdk/c/term.c -o app.wasm
 * It needs nothing from wisp.c or the host (it also builds natively).
 *
 * Design. The encoder appends to a caller's buffer and never fails in the
 * middle of a term: a call that does not fit, or a value Erlang refuses,
 * sets a flag that turns every later call into counting, so a caller
 * writes a whole term and checks once. Encodings are the ones OTP writes
 * (OTP 26's, i.e. term_to_binary with {minor_version, 2}: UTF-8 atoms), so
 * that a term built here is byte for byte what erl would send.
 *
 * The decoder is a cursor over untrusted bytes. Each get works on a copy of
 * the cursor and stores it back only on success, so a failed get consumes
 * nothing. Every read is preceded by a `have` check of the bytes left;
 * lengths are compared with what is left, never added to a pointer first.
 * Whole terms (skip, raw) are measured by one recursive function whose
 * depth is bounded by WISP_TERM_MAX_DEPTH; a list's tail is followed by a
 * loop, not recursion. Every element of a container takes at least one
 * byte, so measuring is linear in the input however large the counts claim
 * to be. Measuring checks structure (tags, lengths, nesting), not contents:
 * an atom's UTF-8 is checked when it is read as an atom, not when it is
 * skipped or passed through raw.
 *
 * Rejected: decoding into a tree (needs allocation; the Rust crate does
 * that); erl_interface's ei (a library to link and a different error
 * style); accepting compressed terms (tag 80: needs zlib in every guest).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <wisp/term.h>

/* Tags of the external term format (erts's erl_ext_dist). */
enum {
	ETF_VERSION = 131,   /* (prefixed: -DVERSION=N is how programs number their builds) */
	NEW_FLOAT_EXT = 70,
	BIT_BINARY_EXT = 77,
	NEW_PID_EXT = 88,
	NEW_PORT_EXT = 89,
	NEWER_REFERENCE_EXT = 90,
	SMALL_INTEGER_EXT = 97,
	INTEGER_EXT = 98,
	FLOAT_EXT = 99,
	ATOM_EXT = 100,
	REFERENCE_EXT = 101,
	PORT_EXT = 102,
	PID_EXT = 103,
	SMALL_TUPLE_EXT = 104,
	LARGE_TUPLE_EXT = 105,
	NIL_EXT = 106,
	STRING_EXT = 107,
	LIST_EXT = 108,
	BINARY_EXT = 109,
	SMALL_BIG_EXT = 110,
	LARGE_BIG_EXT = 111,
	NEW_FUN_EXT = 112,
	EXPORT_EXT = 113,
	NEW_REFERENCE_EXT = 114,
	SMALL_ATOM_EXT = 115,
	MAP_EXT = 116,
	ATOM_UTF8_EXT = 118,
	SMALL_ATOM_UTF8_EXT = 119,
	V4_PORT_EXT = 120,
};

#define MAX_ATOM_CHARS 255

/* Characters in s[0..n) if it is well-formed UTF-8 (no overlong forms, no
 * surrogates, nothing above U+10FFFF, as erts checks atoms), else -1. */
static long utf8_chars(const uint8_t *s, size_t n)
{
	long chars = 0;
	size_t i = 0;
	while (i < n) {
		uint8_t c = s[i];
		size_t more;
		uint32_t cp, min;
		if (c < 0x80) {
			i++;
			chars++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			more = 1, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			more = 2, cp = c & 0x0f, min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			more = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return -1;
		}
		if (n - i - 1 < more)
			return -1;
		for (size_t j = 1; j <= more; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return -1;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return -1;
		i += more + 1;
		chars++;
	}
	return chars;
}

/* ---- encoding ---- */

static void put_bytes(struct wisp_term_enc *e, const void *p, size_t n)
{
	if (!e->overflow && !e->invalid && n > e->cap - e->len)
		e->overflow = true;
	if (!e->overflow && !e->invalid && n > 0)
		memcpy(e->buf + e->len, p, n);
	e->len += n;
}

static void put_u8(struct wisp_term_enc *e, uint8_t v)
{
	put_bytes(e, &v, 1);
}

static void put_tag_be(struct wisp_term_enc *e, uint8_t tag, uint64_t v, int bytes)
{
	uint8_t b[9];
	b[0] = tag;
	for (int i = 0; i < bytes; i++)
		b[1 + i] = (uint8_t)(v >> 8 * (bytes - 1 - i));
	put_bytes(e, b, 1 + (size_t)bytes);
}

static void put_be32(struct wisp_term_enc *e, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
	put_bytes(e, b, 4);
}

void wisp_term_enc_init(struct wisp_term_enc *e, void *buf, size_t cap)
{
	e->buf = buf;
	e->cap = cap;
	e->len = 0;
	e->overflow = false;
	e->invalid = false;
	put_u8(e, ETF_VERSION);
}

int64_t wisp_term_enc_len(const struct wisp_term_enc *e)
{
	if (e->invalid)
		return WISP_TERM_EINVAL;
	if (e->overflow)
		return WISP_TERM_EOVERFLOW;
	return (int64_t)e->len;
}

/* SMALL_BIG_EXT of a magnitude, digits little-endian, as few as it needs. */
static void put_big(struct wisp_term_enc *e, bool negative, uint64_t mag)
{
	uint8_t b[3 + 8];
	uint8_t n = 0;
	for (; mag != 0; mag >>= 8)
		b[3 + n++] = (uint8_t)mag;
	b[0] = SMALL_BIG_EXT;
	b[1] = n;
	b[2] = negative;
	put_bytes(e, b, 3 + (size_t)n);
}

void wisp_term_put_int(struct wisp_term_enc *e, int64_t v)
{
	if (v >= 0 && v <= 255)
		put_tag_be(e, SMALL_INTEGER_EXT, (uint64_t)v, 1);
	else if (v >= INT32_MIN && v <= INT32_MAX)
		put_tag_be(e, INTEGER_EXT, (uint64_t)v, 4);
	else if (v < 0)
		put_big(e, true, 0 - (uint64_t)v);
	else
		put_big(e, false, (uint64_t)v);
}

void wisp_term_put_uint(struct wisp_term_enc *e, uint64_t v)
{
	if (v <= INT64_MAX)
		wisp_term_put_int(e, (int64_t)v);
	else
		put_big(e, false, v);
}

void wisp_term_put_float(struct wisp_term_enc *e, double v)
{
	uint64_t bits;
	if (!isfinite(v)) {
		e->invalid = true;
		return;
	}
	memcpy(&bits, &v, sizeof bits);
	put_tag_be(e, NEW_FLOAT_EXT, bits, 8);
}

void wisp_term_put_atom(struct wisp_term_enc *e, const char *name, size_t len)
{
	long chars = utf8_chars((const uint8_t *)name, len);
	if (chars < 0 || chars > MAX_ATOM_CHARS) {
		e->invalid = true;
		return;
	}
	if (len <= 255)
		put_tag_be(e, SMALL_ATOM_UTF8_EXT, len, 1);
	else
		put_tag_be(e, ATOM_UTF8_EXT, len, 2);
	put_bytes(e, name, len);
}

void wisp_term_put_binary(struct wisp_term_enc *e, const void *data, size_t len)
{
	if (len > UINT32_MAX) {
		e->invalid = true;
		return;
	}
	put_tag_be(e, BINARY_EXT, len, 4);
	put_bytes(e, data, len);
}

void wisp_term_put_string(struct wisp_term_enc *e, const void *data, size_t len)
{
	const uint8_t *s = data;
	if (len == 0) {
		wisp_term_put_nil(e);
	} else if (len <= UINT16_MAX) {
		put_tag_be(e, STRING_EXT, len, 2);
		put_bytes(e, data, len);
	} else if (len <= UINT32_MAX) {
		wisp_term_put_list(e, (uint32_t)len);
		for (size_t i = 0; i < len; i++)
			put_tag_be(e, SMALL_INTEGER_EXT, s[i], 1);
		wisp_term_put_nil(e);
	} else {
		e->invalid = true;
	}
}

void wisp_term_put_tuple(struct wisp_term_enc *e, uint32_t arity)
{
	if (arity <= 255)
		put_tag_be(e, SMALL_TUPLE_EXT, arity, 1);
	else
		put_tag_be(e, LARGE_TUPLE_EXT, arity, 4);
}

void wisp_term_put_list(struct wisp_term_enc *e, uint32_t len)
{
	put_tag_be(e, LIST_EXT, len, 4);
}

void wisp_term_put_nil(struct wisp_term_enc *e)
{
	put_u8(e, NIL_EXT);
}

void wisp_term_put_map(struct wisp_term_enc *e, uint32_t pairs)
{
	put_tag_be(e, MAP_EXT, pairs, 4);
}

void wisp_term_put_pid(struct wisp_term_enc *e, wisp_pid_t pid)
{
	const uint8_t head[3] = { NEW_PID_EXT, SMALL_ATOM_UTF8_EXT, 0 };
	put_bytes(e, head, sizeof head);
	put_be32(e, (uint32_t)pid);          /* ID */
	put_be32(e, (uint32_t)(pid >> 32));  /* Serial */
	put_be32(e, 0);                      /* Creation */
}

void wisp_term_put_raw(struct wisp_term_enc *e, const void *term, size_t len)
{
	struct wisp_term_dec d = { term, (const uint8_t *)term + len };
	if (len == 0 || wisp_term_skip(&d) != WISP_TERM_OK || !wisp_term_dec_done(&d)) {
		e->invalid = true;
		return;
	}
	put_bytes(e, term, len);
}

/* ---- decoding: reading fields ---- */

/* True if at least n bytes are left at p. */
static bool have(const uint8_t *p, const uint8_t *end, size_t n)
{
	return (size_t)(end - p) >= n;
}

static uint64_t be(const uint8_t *p, int bytes)
{
	uint64_t v = 0;
	for (int i = 0; i < bytes; i++)
		v = v << 8 | p[i];
	return v;
}

/* Reads a tag byte followed by a big-endian length field of `bytes` bytes
 * (0 for none) at *p; on success *p is past both. */
static int read_head(const uint8_t **p, const uint8_t *end, int bytes, uint32_t *field)
{
	if (!have(*p, end, 1 + (size_t)bytes))
		return WISP_TERM_ETRUNC;
	*field = (uint32_t)be(*p + 1, bytes);
	*p += 1 + bytes;
	return WISP_TERM_OK;
}

/* Reads a length field then that many bytes; *p is then past them. */
static int read_span(const uint8_t **p, const uint8_t *end, int bytes,
                     const uint8_t **data, size_t *len)
{
	uint32_t n;
	const uint8_t *q = *p;
	int rc = read_head(&q, end, bytes, &n);
	if (rc != WISP_TERM_OK)
		return rc;
	if (!have(q, end, n))
		return WISP_TERM_ETRUNC;
	*data = q;
	*len = n;
	*p = q + n;
	return WISP_TERM_OK;
}

struct atom {
	const uint8_t *s;
	size_t len;
	bool latin1;   /* ATOM_EXT or SMALL_ATOM_EXT */
};

/* An atom in any of its four encodings (its structure, not its text). */
static int read_atom(const uint8_t **p, const uint8_t *end, struct atom *a)
{
	if (!have(*p, end, 1))
		return WISP_TERM_ETRUNC;
	switch (**p) {
	case ATOM_EXT:
	case ATOM_UTF8_EXT:
		a->latin1 = **p == ATOM_EXT;
		return read_span(p, end, 2, &a->s, &a->len);
	case SMALL_ATOM_EXT:
	case SMALL_ATOM_UTF8_EXT:
		a->latin1 = **p == SMALL_ATOM_EXT;
		return read_span(p, end, 1, &a->s, &a->len);
	default:
		return WISP_TERM_ETYPE;
	}
}

/* An integer as sign and magnitude; ERANGE beyond 64 bits of magnitude
 * (leading zero digits are accepted, as erts does). */
static int read_integer(const uint8_t **p, const uint8_t *end, bool *neg, uint64_t *mag)
{
	const uint8_t *q = *p;
	uint32_t v, n;
	int rc;
	if (!have(q, end, 1))
		return WISP_TERM_ETRUNC;
	switch (*q) {
	case SMALL_INTEGER_EXT:
	case INTEGER_EXT:
		rc = read_head(&q, end, *q == SMALL_INTEGER_EXT ? 1 : 4, &v);
		if (rc != WISP_TERM_OK)
			return rc;
		/* SMALL_INTEGER_EXT's byte is unsigned, INTEGER_EXT is int32. */
		*neg = (*p)[0] == INTEGER_EXT && (int32_t)v < 0;
		*mag = *neg ? 0 - (uint64_t)(int64_t)(int32_t)v : v;
		break;
	case SMALL_BIG_EXT:
	case LARGE_BIG_EXT:
		/* The digit count, a sign byte, then the digits, least
		 * significant first. */
		rc = read_head(&q, end, *q == SMALL_BIG_EXT ? 1 : 4, &n);
		if (rc != WISP_TERM_OK)
			return rc;
		if (!have(q, end, 1) || !have(q + 1, end, n))
			return WISP_TERM_ETRUNC;
		*neg = q[0] != 0;
		*mag = 0;
		for (uint32_t i = 0; i < n; i++) {
			if (i < 8)
				*mag |= (uint64_t)q[1 + i] << 8 * i;
			else if (q[1 + i] != 0)
				return WISP_TERM_ERANGE;
		}
		q += 1 + n;
		break;
	default:
		return WISP_TERM_ETYPE;
	}
	*p = q;
	return WISP_TERM_OK;
}

/* ---- decoding: measuring whole terms ---- */

static int measure(const uint8_t **p, const uint8_t *end, int depth);

/* n terms in a row. */
static int measure_n(const uint8_t **p, const uint8_t *end, int depth, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		int rc = measure(p, end, depth);
		if (rc != WISP_TERM_OK)
			return rc;
	}
	return WISP_TERM_OK;
}

/* A pid, port or reference at *p: the node's atom, then `fixed` bytes,
 * then, if `counted` (the newer references), as many 32-bit words as the
 * 16-bit count before the node says. */
static int measure_node_term(const uint8_t **p, const uint8_t *end, bool counted, size_t fixed)
{
	const uint8_t *q = *p + 1;
	size_t words = 0;
	struct atom node;
	int rc;
	if (counted) {
		if (!have(q, end, 2))
			return WISP_TERM_ETRUNC;
		words = (size_t)be(q, 2);
		q += 2;
	}
	rc = read_atom(&q, end, &node);
	if (rc == WISP_TERM_ETYPE)
		return WISP_TERM_EBAD;
	if (rc != WISP_TERM_OK)
		return rc;
	if (!have(q, end, fixed) || !have(q + fixed, end, 4 * words))
		return WISP_TERM_ETRUNC;
	*p = q + fixed + 4 * words;
	return WISP_TERM_OK;
}

/* Moves *p past the term there if it is well-formed and nests at most
 * `depth` containers deep; leaves *p alone otherwise. */
static int measure(const uint8_t **p, const uint8_t *end, int depth)
{
	const uint8_t *q = *p, *data;
	uint32_t n;
	size_t len;
	int rc;
	if (!have(q, end, 1))
		return WISP_TERM_ETRUNC;
	switch (*q) {
	case SMALL_INTEGER_EXT: rc = read_head(&q, end, 1, &n); break;
	case INTEGER_EXT:       rc = read_head(&q, end, 4, &n); break;
	case NIL_EXT:           rc = read_head(&q, end, 0, &n); break;
	case NEW_FLOAT_EXT:
	case FLOAT_EXT:
		len = *q == NEW_FLOAT_EXT ? 8 : 31;
		if (!have(q, end, 1 + len))
			return WISP_TERM_ETRUNC;
		q += 1 + len;
		rc = WISP_TERM_OK;
		break;
	case SMALL_BIG_EXT:
	case LARGE_BIG_EXT: {
		bool neg;
		uint64_t mag;
		rc = read_integer(&q, end, &neg, &mag);
		if (rc == WISP_TERM_ERANGE) {
			/* Too big for 64 bits, but a fine term: its length. */
			rc = read_head(&q, end, *q == SMALL_BIG_EXT ? 1 : 4, &n);
			if (rc == WISP_TERM_OK)
				q += 1 + n;   /* read_integer checked these are there */
		}
		break;
	}
	case ATOM_EXT:
	case ATOM_UTF8_EXT:
	case SMALL_ATOM_EXT:
	case SMALL_ATOM_UTF8_EXT: {
		struct atom a;
		rc = read_atom(&q, end, &a);
		break;
	}
	case BINARY_EXT: rc = read_span(&q, end, 4, &data, &len); break;
	case STRING_EXT: rc = read_span(&q, end, 2, &data, &len); break;
	case BIT_BINARY_EXT:
		/* Length, the bits used in the last byte, the bytes. */
		rc = read_head(&q, end, 4, &n);
		if (rc == WISP_TERM_OK && (!have(q, end, 1) || !have(q + 1, end, n)))
			rc = WISP_TERM_ETRUNC;
		else if (rc == WISP_TERM_OK)
			q += 1 + n;
		break;
	case SMALL_TUPLE_EXT:
	case LARGE_TUPLE_EXT:
	case MAP_EXT:
		if (depth == 0)
			return WISP_TERM_EDEPTH;
		rc = read_head(&q, end, *q == SMALL_TUPLE_EXT ? 1 : 4, &n);
		if (rc == WISP_TERM_OK)
			rc = measure_n(&q, end, depth - 1, (**p == MAP_EXT ? 2 : 1) * (uint64_t)n);
		break;
	case LIST_EXT:
		/* Elements, then the tail: another list is followed by this
		 * loop at the same depth, not by recursion. */
		if (depth == 0)
			return WISP_TERM_EDEPTH;
		rc = WISP_TERM_OK;
		while (rc == WISP_TERM_OK && have(q, end, 1) && *q == LIST_EXT) {
			rc = read_head(&q, end, 4, &n);
			if (rc == WISP_TERM_OK)
				rc = measure_n(&q, end, depth - 1, n);
		}
		if (rc == WISP_TERM_OK)
			rc = measure(&q, end, depth - 1);
		break;
	case NEW_PID_EXT:         rc = measure_node_term(&q, end, false, 12); break;
	case PID_EXT:             rc = measure_node_term(&q, end, false, 9); break;
	case NEW_PORT_EXT:        rc = measure_node_term(&q, end, false, 8); break;
	case PORT_EXT:            rc = measure_node_term(&q, end, false, 5); break;
	case V4_PORT_EXT:         rc = measure_node_term(&q, end, false, 12); break;
	case REFERENCE_EXT:       rc = measure_node_term(&q, end, false, 5); break;
	case NEWER_REFERENCE_EXT: rc = measure_node_term(&q, end, true, 4); break;
	case NEW_REFERENCE_EXT:   rc = measure_node_term(&q, end, true, 1); break;
	case EXPORT_EXT: {
		/* fun Module:Function/Arity: two atoms and a small integer. */
		struct atom a;
		q++;
		rc = read_atom(&q, end, &a);
		if (rc == WISP_TERM_OK)
			rc = read_atom(&q, end, &a);
		if (rc == WISP_TERM_OK && have(q, end, 1) && *q != SMALL_INTEGER_EXT)
			rc = WISP_TERM_ETYPE;
		if (rc == WISP_TERM_OK)
			rc = read_head(&q, end, 1, &n);
		if (rc == WISP_TERM_ETYPE)
			rc = WISP_TERM_EBAD;
		break;
	}
	case NEW_FUN_EXT:
		/* Size counts itself and everything after it. */
		rc = read_head(&q, end, 4, &n);
		if (rc == WISP_TERM_OK && n < 4)
			rc = WISP_TERM_EBAD;
		else if (rc == WISP_TERM_OK && !have(q, end, n - 4))
			rc = WISP_TERM_ETRUNC;
		else if (rc == WISP_TERM_OK)
			q += n - 4;
		break;
	default:
		/* FUN_EXT (gone since OTP 23), compressed terms, atom cache
		 * references (only inside distribution headers), unknown tags. */
		return WISP_TERM_EBAD;
	}
	if (rc == WISP_TERM_OK)
		*p = q;
	return rc;
}

/* ---- decoding: the cursor ---- */

int wisp_term_dec_init(struct wisp_term_dec *d, const void *buf, size_t len)
{
	const uint8_t *b = buf;
	d->p = d->end = b;
	if (len == 0)
		return WISP_TERM_ETRUNC;
	if (b[0] != ETF_VERSION)
		return WISP_TERM_EBAD;
	d->p = b + 1;
	d->end = b + len;
	return WISP_TERM_OK;
}

bool wisp_term_dec_done(const struct wisp_term_dec *d)
{
	return d->p == d->end;
}

int wisp_term_peek(const struct wisp_term_dec *d)
{
	if (!have(d->p, d->end, 1))
		return WISP_TERM_ETRUNC;
	switch (*d->p) {
	case SMALL_INTEGER_EXT: case INTEGER_EXT: case SMALL_BIG_EXT: case LARGE_BIG_EXT:
		return WISP_TERM_INT;
	case NEW_FLOAT_EXT: case FLOAT_EXT:
		return WISP_TERM_FLOAT;
	case ATOM_EXT: case SMALL_ATOM_EXT: case ATOM_UTF8_EXT: case SMALL_ATOM_UTF8_EXT:
		return WISP_TERM_ATOM;
	case BINARY_EXT:
		return WISP_TERM_BINARY;
	case SMALL_TUPLE_EXT: case LARGE_TUPLE_EXT:
		return WISP_TERM_TUPLE;
	case LIST_EXT:
		return WISP_TERM_LIST;
	case NIL_EXT:
		return WISP_TERM_NIL;
	case MAP_EXT:
		return WISP_TERM_MAP;
	case NEW_PID_EXT: case PID_EXT:
		return WISP_TERM_PID;
	case STRING_EXT:
		return WISP_TERM_STRING;
	case NEWER_REFERENCE_EXT: case NEW_REFERENCE_EXT: case REFERENCE_EXT:
		return WISP_TERM_REF;
	case BIT_BINARY_EXT: case NEW_PORT_EXT: case PORT_EXT: case V4_PORT_EXT:
	case EXPORT_EXT: case NEW_FUN_EXT:
		return WISP_TERM_OTHER;
	default:
		return WISP_TERM_EBAD;
	}
}

int wisp_term_get_int(struct wisp_term_dec *d, int64_t *v)
{
	const uint8_t *q = d->p;
	bool neg;
	uint64_t mag;
	int rc = read_integer(&q, d->end, &neg, &mag);
	if (rc != WISP_TERM_OK)
		return rc;
	if (mag > (uint64_t)INT64_MAX + (neg ? 1 : 0))
		return WISP_TERM_ERANGE;
	/* mag - 1 fits an int64 even for -2^63, whose magnitude does not. */
	*v = neg && mag != 0 ? -(int64_t)(mag - 1) - 1 : (int64_t)mag;
	d->p = q;
	return WISP_TERM_OK;
}

int wisp_term_get_uint(struct wisp_term_dec *d, uint64_t *v)
{
	const uint8_t *q = d->p;
	bool neg;
	uint64_t mag;
	int rc = read_integer(&q, d->end, &neg, &mag);
	if (rc != WISP_TERM_OK)
		return rc;
	if (neg && mag != 0)
		return WISP_TERM_ERANGE;
	*v = mag;
	d->p = q;
	return WISP_TERM_OK;
}

/* FLOAT_EXT: the value as text ("%.20e"), NUL-padded to 31 bytes. */
static int parse_float_text(const uint8_t *text, double *v)
{
	char s[32], *stop;
	memcpy(s, text, 31);
	s[31] = '\0';
	*v = strtod(s, &stop);
	if (stop == s || *stop != '\0')
		return WISP_TERM_EBAD;
	return WISP_TERM_OK;
}

int wisp_term_get_float(struct wisp_term_dec *d, double *v)
{
	const uint8_t *q = d->p;
	double f;
	int rc = wisp_term_peek(d);
	if (rc != WISP_TERM_FLOAT)
		return rc < 0 ? rc : WISP_TERM_ETYPE;
	rc = measure(&q, d->end, 0);
	if (rc != WISP_TERM_OK)
		return rc;
	if (*d->p == NEW_FLOAT_EXT) {
		uint64_t bits = be(d->p + 1, 8);
		memcpy(&f, &bits, sizeof f);
	} else if (parse_float_text(d->p + 1, &f) != WISP_TERM_OK) {
		return WISP_TERM_EBAD;
	}
	if (!isfinite(f))
		return WISP_TERM_EBAD;
	*v = f;
	d->p = q;
	return WISP_TERM_OK;
}

/* True if the atom's text a is the UTF-8 string name[0..n). */
static bool atom_equals(const struct atom *a, const char *name, size_t n)
{
	const uint8_t *u = (const uint8_t *)name;
	size_t j = 0;
	if (!a->latin1)
		return a->len == n && memcmp(a->s, name, n) == 0;
	/* Latin-1 is the first 256 code points: one UTF-8 byte below 0x80,
	 * two (0xc2 or 0xc3, then a continuation byte) above. */
	for (size_t i = 0; i < a->len; i++) {
		uint8_t c = a->s[i];
		if (c < 0x80) {
			if (j >= n || u[j] != c)
				return false;
			j++;
		} else {
			if (n - j < 2 || u[j] != (0xc0 | c >> 6) || u[j + 1] != (0x80 | (c & 0x3f)))
				return false;
			j += 2;
		}
	}
	return j == n;
}

int wisp_term_get_atom(struct wisp_term_dec *d, const char **name, size_t *len)
{
	const uint8_t *q = d->p;
	struct atom a;
	int rc = read_atom(&q, d->end, &a);
	if (rc != WISP_TERM_OK)
		return rc;
	if (a.latin1) {
		if (a.len > MAX_ATOM_CHARS)
			return WISP_TERM_EBAD;
		for (size_t i = 0; i < a.len; i++)
			if (a.s[i] >= 0x80)
				return WISP_TERM_ENODE;
	} else {
		long chars = utf8_chars(a.s, a.len);
		if (chars < 0 || chars > MAX_ATOM_CHARS)
			return WISP_TERM_EBAD;
	}
	*name = (const char *)a.s;
	*len = a.len;
	d->p = q;
	return WISP_TERM_OK;
}

int wisp_term_match_atom(struct wisp_term_dec *d, const char *name)
{
	const uint8_t *q = d->p;
	struct atom a;
	int rc = read_atom(&q, d->end, &a);
	if (rc == WISP_TERM_ETYPE)
		return 0;
	if (rc != WISP_TERM_OK)
		return rc;
	if (!atom_equals(&a, name, strlen(name)))
		return 0;
	d->p = q;
	return 1;
}

/* A term that is one tag and a length-prefixed run of bytes. */
static int get_span(struct wisp_term_dec *d, uint8_t tag, int bytes,
                    const uint8_t **data, size_t *len)
{
	const uint8_t *q = d->p;
	int rc;
	if (!have(q, d->end, 1))
		return WISP_TERM_ETRUNC;
	if (*q != tag)
		return WISP_TERM_ETYPE;
	rc = read_span(&q, d->end, bytes, data, len);
	if (rc == WISP_TERM_OK)
		d->p = q;
	return rc;
}

int wisp_term_get_binary(struct wisp_term_dec *d, const uint8_t **data, size_t *len)
{
	return get_span(d, BINARY_EXT, 4, data, len);
}

int wisp_term_get_string(struct wisp_term_dec *d, const uint8_t **data, size_t *len)
{
	if (have(d->p, d->end, 1) && *d->p == NIL_EXT) {
		*data = d->p;
		*len = 0;
		d->p++;
		return WISP_TERM_OK;
	}
	return get_span(d, STRING_EXT, 2, data, len);
}

/* A container's header: its count, checked against the bytes left (each
 * of `per` * count terms takes at least one byte, plus `extra`). */
static int get_header(struct wisp_term_dec *d, uint8_t tag, int bytes, size_t per,
                      size_t extra, uint32_t *count)
{
	const uint8_t *q = d->p;
	uint32_t n;
	int rc;
	if (!have(q, d->end, 1))
		return WISP_TERM_ETRUNC;
	if (*q != tag)
		return WISP_TERM_ETYPE;
	rc = read_head(&q, d->end, bytes, &n);
	if (rc != WISP_TERM_OK)
		return rc;
	if ((uint64_t)(d->end - q) < per * (uint64_t)n + extra)
		return WISP_TERM_ETRUNC;
	*count = n;
	d->p = q;
	return WISP_TERM_OK;
}

int wisp_term_get_tuple(struct wisp_term_dec *d, uint32_t *arity)
{
	if (have(d->p, d->end, 1) && *d->p == LARGE_TUPLE_EXT)
		return get_header(d, LARGE_TUPLE_EXT, 4, 1, 0, arity);
	return get_header(d, SMALL_TUPLE_EXT, 1, 1, 0, arity);
}

int wisp_term_get_list(struct wisp_term_dec *d, uint32_t *len)
{
	struct wisp_term_dec at = *d;
	int rc;
	if (wisp_term_get_nil(d) == WISP_TERM_OK) {
		*len = 0;
		return WISP_TERM_OK;
	}
	rc = get_header(&at, LIST_EXT, 4, 1, 1, len);
	if (rc != WISP_TERM_OK)
		return rc;
	/* An empty LIST_EXT (erts never writes one, but reads it) is [] if
	 * its tail is nil; anything else would not be a list. */
	if (*len == 0 && wisp_term_get_nil(&at) != WISP_TERM_OK)
		return WISP_TERM_EBAD;
	*d = at;
	return WISP_TERM_OK;
}

int wisp_term_get_nil(struct wisp_term_dec *d)
{
	uint32_t none;
	return get_header(d, NIL_EXT, 0, 0, 0, &none);
}

int wisp_term_get_map(struct wisp_term_dec *d, uint32_t *pairs)
{
	return get_header(d, MAP_EXT, 4, 2, 0, pairs);
}

int wisp_term_get_pid(struct wisp_term_dec *d, wisp_pid_t *pid)
{
	const uint8_t *q = d->p;
	struct atom node;
	int rc;
	if (!have(q, d->end, 1))
		return WISP_TERM_ETRUNC;
	if (*q != NEW_PID_EXT && *q != PID_EXT)
		return WISP_TERM_ETYPE;
	bool old = *q == PID_EXT;   /* 1-byte Creation; the host never writes it */
	q++;
	rc = read_atom(&q, d->end, &node);
	if (rc != WISP_TERM_OK)
		return rc == WISP_TERM_ETYPE ? WISP_TERM_EBAD : rc;
	if (!have(q, d->end, old ? 9 : 12))
		return WISP_TERM_ETRUNC;
	if (node.len != 0)
		return WISP_TERM_ENODE;
	if (old || be(q + 8, 4) != 0)   /* Creation */
		return WISP_TERM_EBAD;
	*pid = be(q + 4, 4) << 32 | be(q, 4);   /* Serial, ID */
	d->p = q + 12;
	return WISP_TERM_OK;
}

int wisp_term_get_raw(struct wisp_term_dec *d, const uint8_t **term, size_t *len)
{
	const uint8_t *q = d->p;
	int rc = measure(&q, d->end, WISP_TERM_MAX_DEPTH);
	if (rc != WISP_TERM_OK)
		return rc;
	*term = d->p;
	*len = (size_t)(q - d->p);
	d->p = q;
	return WISP_TERM_OK;
}

int wisp_term_skip(struct wisp_term_dec *d)
{
	const uint8_t *term;
	size_t len;
	return wisp_term_get_raw(d, &term, &len);
}
