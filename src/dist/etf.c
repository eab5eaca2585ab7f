/*
 * etf.c — Erlang's external term format, as much as distribution needs.
 *
 * Everything a peer sends is read through a bounds-checked cursor: a frame
 * from the network is hostile until proven otherwise, so no read may pass
 * its end, whatever lengths and counts it claims. Whole terms are walked
 * iteratively — a count of terms still to read, not recursion — so a
 * deeply nested term costs no stack (the walk may run on a process's small
 * fiber stack), and a count larger than the bytes left is refused at once
 * (every term takes at least one byte).
 *
 * Writing uses the compact forms Erlang itself writes (SMALL_INTEGER,
 * SMALL_ATOM_UTF8, NEW_PID, NEWER_REFERENCE); reading accepts every form
 * of the types it reads.
 *
 * libei (erl_interface) was the alternative: its decoders take no buffer
 * length and trust the lengths inside a term, so each frame would have to
 * be validated by a walk like this one first; the walk and the few
 * encoders distribution needs are less code than the glue.
 */
#include <stdlib.h>
#include <string.h>

#include "etf.h"

/* ---- writing ---- */

void etf_buf_free(struct etf_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

static bool reserve(struct etf_buf *b, size_t more)
{
	if (b->oom)
		return false;
	if (b->len + more <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + more)
		cap *= 2;
	unsigned char *p = realloc(b->p, cap);
	if (p == NULL) {
		b->oom = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

void etf_raw(struct etf_buf *b, const void *data, size_t len)
{
	if (len == 0 || !reserve(b, len))
		return;
	memcpy(b->p + b->len, data, len);
	b->len += len;
}

void etf_u8(struct etf_buf *b, uint8_t v)
{
	etf_raw(b, &v, 1);
}

static void u16(struct etf_buf *b, uint16_t v)
{
	unsigned char x[2] = { (unsigned char)(v >> 8), (unsigned char)v };
	etf_raw(b, x, 2);
}

void etf_u32(struct etf_buf *b, uint32_t v)
{
	unsigned char x[4] = { (unsigned char)(v >> 24), (unsigned char)(v >> 16),
	                       (unsigned char)(v >> 8), (unsigned char)v };
	etf_raw(b, x, 4);
}

void etf_tuple(struct etf_buf *b, uint32_t arity)
{
	if (arity < 256) {
		etf_u8(b, ETF_SMALL_TUPLE);
		etf_u8(b, (uint8_t)arity);
	} else {
		etf_u8(b, ETF_LARGE_TUPLE);
		etf_u32(b, arity);
	}
}

void etf_list(struct etf_buf *b, uint32_t n)
{
	etf_u8(b, ETF_LIST);
	etf_u32(b, n);
}

void etf_nil(struct etf_buf *b)
{
	etf_u8(b, ETF_NIL);
}

void etf_atom(struct etf_buf *b, const char *s, size_t len)
{
	if (len < 256) {
		etf_u8(b, ETF_SMALL_ATOM_UTF8);
		etf_u8(b, (uint8_t)len);
	} else {
		etf_u8(b, ETF_ATOM_UTF8);
		u16(b, (uint16_t)len);
	}
	etf_raw(b, s, len);
}

/* SMALL_BIG with the magnitude's bytes, least significant first. */
static void big(struct etf_buf *b, uint64_t mag, bool neg)
{
	unsigned char d[8];
	uint8_t n = 0;
	while (mag != 0) {
		d[n++] = (unsigned char)mag;
		mag >>= 8;
	}
	etf_u8(b, ETF_SMALL_BIG);
	etf_u8(b, n);
	etf_u8(b, neg);
	etf_raw(b, d, n);
}

void etf_int(struct etf_buf *b, int64_t v)
{
	if (v >= 0 && v < 256) {
		etf_u8(b, ETF_SMALL_INTEGER);
		etf_u8(b, (uint8_t)v);
	} else if (v >= INT32_MIN && v <= INT32_MAX) {
		etf_u8(b, ETF_INTEGER);
		etf_u32(b, (uint32_t)(int32_t)v);
	} else {
		big(b, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, v < 0);
	}
}

void etf_uint(struct etf_buf *b, uint64_t v)
{
	if (v <= INT32_MAX)
		etf_int(b, (int64_t)v);
	else
		big(b, v, false);
}

void etf_binary(struct etf_buf *b, const void *data, uint32_t len)
{
	etf_u8(b, ETF_BINARY);
	etf_u32(b, len);
	etf_raw(b, data, len);
}

void etf_pid(struct etf_buf *b, const struct etf_pid *pid)
{
	etf_u8(b, ETF_NEW_PID);
	etf_atom(b, pid->node, pid->nlen);
	etf_u32(b, pid->id);
	etf_u32(b, pid->serial);
	etf_u32(b, pid->creation);
}

void etf_ref(struct etf_buf *b, const struct etf_ref *ref)
{
	etf_u8(b, ETF_NEWER_REFERENCE);
	u16(b, (uint16_t)ref->n);
	etf_atom(b, ref->node, ref->nlen);
	etf_u32(b, ref->creation);
	for (uint32_t i = 0; i < ref->n; i++)
		etf_u32(b, ref->id[i]);
}

/* ---- reading ---- */

static size_t left(const struct etf_dec *d)
{
	return (size_t)(d->end - d->p);
}

static uint32_t rd32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint16_t rd16(const unsigned char *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

int etf_peek(const struct etf_dec *d)
{
	return left(d) > 0 ? d->p[0] : -1;
}

int etf_tuple_hdr(struct etf_dec *d, uint32_t *arity)
{
	if (left(d) >= 2 && d->p[0] == ETF_SMALL_TUPLE) {
		*arity = d->p[1];
		d->p += 2;
		return 0;
	}
	if (left(d) >= 5 && d->p[0] == ETF_LARGE_TUPLE) {
		*arity = rd32(d->p + 1);
		d->p += 5;
		return 0;
	}
	return -1;
}

int etf_list_hdr(struct etf_dec *d, uint32_t *n)
{
	if (left(d) >= 1 && d->p[0] == ETF_NIL) {
		*n = 0;
		d->p += 1;
		return 0;
	}
	if (left(d) >= 5 && d->p[0] == ETF_LIST) {
		*n = rd32(d->p + 1);
		d->p += 5;
		return 0;
	}
	return -1;
}

/* The atom at p (any of its four forms): its text and whole size. */
static int atom_at(const unsigned char *p, size_t avail, const char **s, size_t *len,
                   size_t *size)
{
	if (avail < 2)
		return -1;
	size_t hdr, n;
	if (p[0] == ETF_SMALL_ATOM_UTF8 || p[0] == ETF_SMALL_ATOM) {
		hdr = 2;
		n = p[1];
	} else if ((p[0] == ETF_ATOM_UTF8 || p[0] == ETF_ATOM) && avail >= 3) {
		hdr = 3;
		n = rd16(p + 1);
	} else {
		return -1;
	}
	if (n > 255 * 4 || avail - hdr < n)
		return -1;
	*s = (const char *)p + hdr;
	*len = n;
	*size = hdr + n;
	return 0;
}

int etf_get_atom(struct etf_dec *d, const char **s, size_t *len)
{
	size_t size;
	if (atom_at(d->p, left(d), s, len, &size) != 0)
		return -1;
	d->p += size;
	return 0;
}

bool etf_atom_is(const char *a, size_t alen, const char *s)
{
	return strlen(s) == alen && memcmp(a, s, alen) == 0;
}

/* An integer's magnitude and sign, if it fits in 64 bits. */
static int get_mag(struct etf_dec *d, uint64_t *mag, bool *neg)
{
	const unsigned char *p = d->p;
	size_t avail = left(d);
	if (avail >= 2 && p[0] == ETF_SMALL_INTEGER) {
		*mag = p[1];
		*neg = false;
		d->p += 2;
		return 0;
	}
	if (avail >= 5 && p[0] == ETF_INTEGER) {
		int32_t v = (int32_t)rd32(p + 1);
		*neg = v < 0;
		*mag = v < 0 ? (uint64_t)(-(int64_t)v) : (uint64_t)v;
		d->p += 5;
		return 0;
	}
	size_t n, hdr;
	if (avail >= 3 && p[0] == ETF_SMALL_BIG) {
		n = p[1];
		hdr = 2;
	} else if (avail >= 6 && p[0] == ETF_LARGE_BIG) {
		n = rd32(p + 1);
		hdr = 5;
	} else {
		return -1;
	}
	if (avail - hdr - 1 < n)
		return -1;
	const unsigned char *digits = p + hdr + 1;
	uint64_t m = 0;
	for (size_t i = n; i-- > 0;) {
		if (i >= 8 && digits[i] != 0)
			return -1;         /* more than 64 bits */
		if (i < 8)
			m |= (uint64_t)digits[i] << (8 * i);
	}
	*mag = m;
	*neg = p[hdr] != 0 && m != 0;
	d->p += hdr + 1 + n;
	return 0;
}

int etf_get_int(struct etf_dec *d, int64_t *v)
{
	struct etf_dec save = *d;
	uint64_t mag;
	bool neg;
	if (get_mag(d, &mag, &neg) != 0)
		return -1;
	if ((!neg && mag > INT64_MAX) || (neg && mag > (uint64_t)INT64_MAX + 1)) {
		*d = save;
		return -1;
	}
	*v = neg ? (int64_t)(0 - mag) : (int64_t)mag;
	return 0;
}

int etf_get_uint(struct etf_dec *d, uint64_t *v)
{
	struct etf_dec save = *d;
	uint64_t mag;
	bool neg;
	if (get_mag(d, &mag, &neg) != 0)
		return -1;
	if (neg) {
		*d = save;
		return -1;
	}
	*v = mag;
	return 0;
}

int etf_get_binary(struct etf_dec *d, const unsigned char **data, uint32_t *len)
{
	if (left(d) < 5 || d->p[0] != ETF_BINARY)
		return -1;
	uint32_t n = rd32(d->p + 1);
	if (left(d) - 5 < n)
		return -1;
	*data = d->p + 5;
	*len = n;
	d->p += 5 + (size_t)n;
	return 0;
}

int etf_get_pid(struct etf_dec *d, struct etf_pid *pid)
{
	int tag = etf_peek(d);
	if (tag != ETF_NEW_PID && tag != ETF_PID)
		return -1;
	size_t size;
	if (atom_at(d->p + 1, left(d) - 1, &pid->node, &pid->nlen, &size) != 0)
		return -1;
	const unsigned char *q = d->p + 1 + size;
	size_t rest = tag == ETF_NEW_PID ? 12 : 9;
	if ((size_t)(d->end - q) < rest)
		return -1;
	pid->id = rd32(q);
	pid->serial = rd32(q + 4);
	pid->creation = tag == ETF_NEW_PID ? rd32(q + 8) : q[8];
	d->p = q + rest;
	return 0;
}

int etf_get_ref(struct etf_dec *d, struct etf_ref *ref)
{
	int tag = etf_peek(d);
	if ((tag != ETF_NEWER_REFERENCE && tag != ETF_NEW_REFERENCE) || left(d) < 3)
		return -1;
	uint32_t n = rd16(d->p + 1);
	size_t size;
	if (n < 1 || n > 5 || atom_at(d->p + 3, left(d) - 3, &ref->node, &ref->nlen, &size) != 0)
		return -1;
	const unsigned char *q = d->p + 3 + size;
	size_t cre = tag == ETF_NEWER_REFERENCE ? 4 : 1;
	if ((size_t)(d->end - q) < cre + 4 * (size_t)n)
		return -1;
	ref->creation = cre == 4 ? rd32(q) : q[0];
	q += cre;
	ref->n = n;
	for (uint32_t i = 0; i < n; i++)
		ref->id[i] = rd32(q + 4 * i);
	d->p = q + 4 * (size_t)n;
	return 0;
}

/* The next term's own bytes (for a container: its header only) and how
 * many terms it contains that follow it. -1 if malformed or cut short. */
static int step(const struct etf_dec *d, size_t *size, uint64_t *children)
{
	const unsigned char *p = d->p;
	size_t avail = left(d), s = 0;
	uint64_t kids = 0;
	if (avail < 1)
		return -1;
	const char *a;
	size_t alen, asz;
	switch (p[0]) {
	case ETF_SMALL_INTEGER: s = 2; break;
	case ETF_INTEGER: s = 5; break;
	case ETF_NEW_FLOAT: s = 9; break;
	case ETF_FLOAT: s = 32; break;
	case ETF_NIL: s = 1; break;
	case ETF_SMALL_ATOM_UTF8: case ETF_SMALL_ATOM:
	case ETF_ATOM_UTF8: case ETF_ATOM:
		if (atom_at(p, avail, &a, &alen, &s) != 0)
			return -1;
		break;
	case ETF_SMALL_TUPLE:
		if (avail < 2)
			return -1;
		s = 2;
		kids = p[1];
		break;
	case ETF_LARGE_TUPLE:
		if (avail < 5)
			return -1;
		s = 5;
		kids = rd32(p + 1);
		break;
	case ETF_LIST:
		if (avail < 5)
			return -1;
		s = 5;
		kids = (uint64_t)rd32(p + 1) + 1;   /* and the tail */
		break;
	case ETF_MAP:
		if (avail < 5)
			return -1;
		s = 5;
		kids = 2 * (uint64_t)rd32(p + 1);
		break;
	case ETF_STRING:
		if (avail < 3)
			return -1;
		s = 3 + (size_t)rd16(p + 1);
		break;
	case ETF_BINARY:
		if (avail < 5)
			return -1;
		s = 5 + (size_t)rd32(p + 1);
		break;
	case ETF_BIT_BINARY:
		if (avail < 6)
			return -1;
		s = 6 + (size_t)rd32(p + 1);
		break;
	case ETF_SMALL_BIG:
		if (avail < 2)
			return -1;
		s = 3 + (size_t)p[1];
		break;
	case ETF_LARGE_BIG:
		if (avail < 5)
			return -1;
		s = 6 + (size_t)rd32(p + 1);
		break;
	case ETF_PID: case ETF_NEW_PID:
		if (atom_at(p + 1, avail - 1, &a, &alen, &asz) != 0)
			return -1;
		s = 1 + asz + (p[0] == ETF_NEW_PID ? 12 : 9);
		break;
	case ETF_PORT: case ETF_NEW_PORT: case ETF_V4_PORT:
		if (atom_at(p + 1, avail - 1, &a, &alen, &asz) != 0)
			return -1;
		s = 1 + asz + (p[0] == ETF_PORT ? 5 : p[0] == ETF_NEW_PORT ? 8 : 12);
		break;
	case ETF_NEW_REFERENCE: case ETF_NEWER_REFERENCE: {
		if (avail < 3)
			return -1;
		uint32_t n = rd16(p + 1);
		if (n > 5 || atom_at(p + 3, avail - 3, &a, &alen, &asz) != 0)
			return -1;
		s = 3 + asz + (p[0] == ETF_NEWER_REFERENCE ? 4 : 1) + 4 * (size_t)n;
		break;
	}
	case ETF_EXPORT:          /* module, function, arity follow */
		s = 1;
		kids = 3;
		break;
	case ETF_NEW_FUN:         /* one size covers it all */
		if (avail < 5)
			return -1;
		s = rd32(p + 1) + (size_t)1;
		if (s < 5)
			return -1;
		break;
	default:
		return -1;            /* an atom cache ref, or not a term */
	}
	if (s > avail)
		return -1;
	*size = s;
	*children = kids;
	return 0;
}

int etf_skip(struct etf_dec *d)
{
	struct etf_dec c = *d;
	uint64_t pending = 1;
	while (pending > 0) {
		size_t s;
		uint64_t kids;
		if (step(&c, &s, &kids) != 0)
			return -1;
		c.p += s;
		pending += kids - 1;
		if (pending > left(&c))
			return -1;        /* each term takes a byte at least */
	}
	*d = c;
	return 0;
}

int etf_copy_mapping_pids(struct etf_dec *d, struct etf_buf *b, etf_pid_map map, void *ctx)
{
	struct etf_dec c = *d;
	uint64_t pending = 1;
	while (pending > 0) {
		size_t s;
		uint64_t kids;
		if (step(&c, &s, &kids) != 0)
			return -1;
		if (c.p[0] == ETF_PID || c.p[0] == ETF_NEW_PID) {
			struct etf_pid pid;
			if (etf_get_pid(&c, &pid) != 0 || !map(ctx, &pid, b))
				return -1;
		} else {
			etf_raw(b, c.p, s);
			c.p += s;
		}
		pending += kids - 1;
		if (pending > left(&c))
			return -1;
	}
	*d = c;
	return b->oom ? -1 : 0;
}
