/*
 * wisp/term.h — Erlang terms for C guests: an encoder and a decoder of the
 * External Term Format (ETF, erts's erl_ext_dist), implemented by
 * sdk/c/term.c.
 *
 * A wisp message whose tag is WISP_TAG_TERM carries exactly one term in ETF,
 * starting with the version byte 131; that is how guests talk to Erlang
 * code (docs/abi.md, "Erlang terms in messages"). The codec is plain C: it
 * allocates nothing and calls no host function, so it also compiles
 * natively (the unit test does).
 *
 * Encoding writes into a caller's buffer through a struct wisp_term_enc.
 * A call that does not fit sets `overflow` and writes nothing, but `len`
 * goes on counting the bytes the term needs (as snprintf does): one pass
 * with a zero-capacity buffer measures a term. A value Erlang would refuse
 * (a float that is not finite, an atom longer than 255 characters or not
 * UTF-8, raw bytes that are not one term) sets `invalid`. Either flag makes
 * every later call do nothing but count; check wisp_term_enc_len() once at
 * the end instead of after every call. Containers are written as a header
 * with a count followed by that many terms (a map: that many key, value
 * pairs; a list: that many elements, then its tail, usually nil): the
 * encoder does not check that the counts match.
 *
 * Decoding walks a struct wisp_term_dec cursor over a buffer. Every get
 * reads one term (or one container header) and moves the cursor past it,
 * or returns a negative WISP_TERM_E* code and leaves the cursor where it
 * was. No call reads outside [p, end), whatever the bytes are: lengths and
 * counts are checked against what is left before anything is read, and
 * nesting deeper than WISP_TERM_MAX_DEPTH is refused, so hostile input can
 * neither overrun the buffer nor the guest's stack. Pointers handed out
 * (atoms, binaries, strings, raw terms) point into the decoded buffer.
 *
 * Pids: a guest sees a process id as the pid of a node with an empty name
 * (NEW_PID_EXT, node '', ID = the low 32 bits of the wisp_pid_t, Serial =
 * the high 32 bits, Creation = 0); the host translates those to and from
 * the pids of real nodes where messages cross a node's boundary. References,
 * ports and funs pass through as opaque bytes (wisp_term_get_raw,
 * wisp_term_put_raw).
 *
 * Sending a term (wisp_term_send, wisp_term_send_name) is the host's
 * business, so those two live in sdk/c/wisp.c.
 */
#ifndef WISP_TERM_H
#define WISP_TERM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "guest.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The tag of a message that carries one Erlang term (ETF, with its version
 * byte). Bit 63 is clear, so it is a tag a guest may send ("te" in its low
 * bytes); the host uses the same value to map messages to and from Erlang
 * terms. Do not use it for anything else. */
#define WISP_TAG_TERM 0x7fffffffffff7465ull

/* Nesting (tuples, lists, maps inside each other) the decoder follows. */
#define WISP_TERM_MAX_DEPTH 64

/* Results: 0, or one of these (negative, so never a WISP_E* code). */
#define WISP_TERM_OK         0
#define WISP_TERM_ETRUNC   (-1)  /* the input ends inside the term */
#define WISP_TERM_ETYPE    (-2)  /* the next term is of another type */
#define WISP_TERM_ERANGE   (-3)  /* an integer that does not fit the C type */
#define WISP_TERM_EBAD     (-4)  /* malformed: unknown tag, wrong version byte,
                                    an atom that is not UTF-8, ... */
#define WISP_TERM_EDEPTH   (-5)  /* nested deeper than WISP_TERM_MAX_DEPTH */
#define WISP_TERM_ENODE    (-6)  /* a pid or atom a guest cannot take: a pid
                                    of a named node, an atom in Latin-1 with
                                    characters beyond ASCII (see the gets) */
#define WISP_TERM_EOVERFLOW (-7) /* encoder: the buffer is too small */
#define WISP_TERM_EINVAL   (-8)  /* encoder: a value Erlang refuses */

/* ---- encoding ---- */

struct wisp_term_enc {
	uint8_t *buf;
	size_t cap;      /* bytes of buf */
	size_t len;      /* bytes written, or needed once overflow is set */
	bool overflow;   /* a write did not fit in cap */
	bool invalid;    /* a value could not be encoded */
};

/* Start a term in buf[0..cap): writes the version byte 131. */
void wisp_term_enc_init(struct wisp_term_enc *e, void *buf, size_t cap);
/* The term's length in bytes (version byte included) if everything was
 * written, else WISP_TERM_EOVERFLOW (e->len is then the size needed) or
 * WISP_TERM_EINVAL. */
int64_t wisp_term_enc_len(const struct wisp_term_enc *e);

/* Integers as Erlang writes them: SMALL_INTEGER_EXT for 0..255,
 * INTEGER_EXT for the rest of int32, else SMALL_BIG_EXT. */
void wisp_term_put_int(struct wisp_term_enc *e, int64_t v);
void wisp_term_put_uint(struct wisp_term_enc *e, uint64_t v);
/* NEW_FLOAT_EXT; NaN and infinities are invalid (Erlang has none). */
void wisp_term_put_float(struct wisp_term_enc *e, double v);
/* An atom of len bytes of UTF-8 (not NUL-terminated), at most 255
 * characters: SMALL_ATOM_UTF8_EXT, or ATOM_UTF8_EXT beyond 255 bytes. */
void wisp_term_put_atom(struct wisp_term_enc *e, const char *name, size_t len);
/* BINARY_EXT; at most 2^32-1 bytes. */
void wisp_term_put_binary(struct wisp_term_enc *e, const void *data, size_t len);
/* A list of bytes, as Erlang writes one ("abc" is [97,98,99]): STRING_EXT
 * up to 65535 bytes, nil when empty, else a LIST_EXT of small integers. */
void wisp_term_put_string(struct wisp_term_enc *e, const void *data, size_t len);
/* Headers: SMALL_TUPLE_EXT (LARGE_TUPLE_EXT beyond 255), LIST_EXT (then
 * len elements and a tail: wisp_term_put_nil for a proper list; an empty
 * list is just nil), MAP_EXT (then pairs keys and values, alternating). */
void wisp_term_put_tuple(struct wisp_term_enc *e, uint32_t arity);
void wisp_term_put_list(struct wisp_term_enc *e, uint32_t len);
void wisp_term_put_nil(struct wisp_term_enc *e);
void wisp_term_put_map(struct wisp_term_enc *e, uint32_t pairs);
/* A process: the empty-node NEW_PID_EXT described above. */
void wisp_term_put_pid(struct wisp_term_enc *e, wisp_pid_t pid);
/* Append one term already encoded, without its version byte (e.g. bytes
 * wisp_term_get_raw handed out: a reference). Invalid unless the bytes are
 * exactly one well-formed term. */
void wisp_term_put_raw(struct wisp_term_enc *e, const void *term, size_t len);

/* ---- decoding ---- */

struct wisp_term_dec {
	const uint8_t *p;     /* the next term */
	const uint8_t *end;   /* one past the input */
};

enum wisp_term_type {
	WISP_TERM_INT,     /* SMALL_INTEGER, INTEGER, SMALL_BIG, LARGE_BIG */
	WISP_TERM_FLOAT,   /* NEW_FLOAT, FLOAT (the old text form) */
	WISP_TERM_ATOM,    /* ATOM, SMALL_ATOM, ATOM_UTF8, SMALL_ATOM_UTF8 */
	WISP_TERM_BINARY,  /* BINARY (not bitstrings: OTHER) */
	WISP_TERM_TUPLE,   /* SMALL_TUPLE, LARGE_TUPLE */
	WISP_TERM_LIST,    /* LIST (a non-empty list) */
	WISP_TERM_NIL,     /* NIL: the empty list */
	WISP_TERM_MAP,     /* MAP */
	WISP_TERM_PID,     /* NEW_PID, PID (of any node) */
	WISP_TERM_STRING,  /* STRING: a list of bytes */
	WISP_TERM_REF,     /* NEWER_REFERENCE, NEW_REFERENCE, REFERENCE */
	WISP_TERM_OTHER,   /* ports, funs, bitstrings, ...: raw bytes only */
};

/* Start decoding buf[0..len): checks and skips the version byte 131
 * (WISP_TERM_EBAD if it is another byte, WISP_TERM_ETRUNC if len is 0). */
int wisp_term_dec_init(struct wisp_term_dec *d, const void *buf, size_t len);
/* True when the cursor is at the end of the input (a message holds exactly
 * one term: check this after reading it). */
bool wisp_term_dec_done(const struct wisp_term_dec *d);
/* The type of the next term (an enum wisp_term_type), or WISP_TERM_ETRUNC
 * at the end of the input, or WISP_TERM_EBAD for a tag that is no term.
 * Looks at the tag only: the term itself may still be malformed. */
int wisp_term_peek(const struct wisp_term_dec *d);

/* An integer; WISP_TERM_ERANGE if it does not fit (the cursor stays). */
int wisp_term_get_int(struct wisp_term_dec *d, int64_t *v);
int wisp_term_get_uint(struct wisp_term_dec *d, uint64_t *v);
/* A float (an integer is WISP_TERM_ETYPE: Erlang keeps them apart). */
int wisp_term_get_float(struct wisp_term_dec *d, double *v);
/* An atom's UTF-8 bytes (*name is not NUL-terminated). Latin-1 atoms
 * (ATOM_EXT, SMALL_ATOM_EXT) are handed out as they are when they are
 * ASCII, and are WISP_TERM_ENODE otherwise: their bytes are not UTF-8 (take
 * them with wisp_term_get_raw, or compare with wisp_term_match_atom). */
int wisp_term_get_atom(struct wisp_term_dec *d, const char **name, size_t *len);
/* 1, having consumed it, if the next term is the atom `name` (a
 * NUL-terminated UTF-8 string; in any of the four atom encodings); 0 if the
 * next term is anything else (nothing consumed); negative if it is
 * malformed. */
int wisp_term_match_atom(struct wisp_term_dec *d, const char *name);
int wisp_term_get_binary(struct wisp_term_dec *d, const uint8_t **data, size_t *len);
/* A list of bytes: STRING_EXT, or nil (length 0). A LIST_EXT of small
 * integers is WISP_TERM_ETYPE: walk it with wisp_term_get_list. */
int wisp_term_get_string(struct wisp_term_dec *d, const uint8_t **data, size_t *len);
/* Headers; the elements follow. A list: LIST_EXT gives *len >= 1 elements
 * followed by a tail (nil for a proper list); nil gives *len = 0 and no
 * tail; a STRING_EXT is WISP_TERM_ETYPE (use wisp_term_get_string). */
int wisp_term_get_tuple(struct wisp_term_dec *d, uint32_t *arity);
int wisp_term_get_list(struct wisp_term_dec *d, uint32_t *len);
int wisp_term_get_nil(struct wisp_term_dec *d);
int wisp_term_get_map(struct wisp_term_dec *d, uint32_t *pairs);
/* A process, in the empty-node form only (NEW_PID_EXT, Creation 0; the
 * older PID_EXT is WISP_TERM_EBAD). The pid of a named node is
 * WISP_TERM_ENODE: the host rewrites every pid that reaches a guest
 * into the empty-node form, so a named node's pid was never translated (a
 * term built by hand, or bytes from outside a message) and no wisp_pid_t
 * would reach that process; take it whole with wisp_term_get_raw. */
int wisp_term_get_pid(struct wisp_term_dec *d, wisp_pid_t *pid);
/* The bytes of the next term, whole (any type, nested terms included, no
 * version byte): for references and anything opaque. Its structure is
 * checked (tags, lengths, nesting), not its contents (atoms' UTF-8, pids'
 * nodes). Compressed terms (tag 80) and atom cache references (82, only
 * inside distribution headers) are WISP_TERM_EBAD, as is FUN_EXT (117,
 * gone since OTP 23). */
int wisp_term_get_raw(struct wisp_term_dec *d, const uint8_t **term, size_t *len);
/* Step over the next term, checked as wisp_term_get_raw checks it. */
int wisp_term_skip(struct wisp_term_dec *d);

/* ---- sending (in sdk/c/wisp.c: these call the host) ---- */

/* Send the term e holds as a WISP_TAG_TERM message: to pid, or to the
 * process registered as `name` on `node` (NUL-terminated; Erlang's
 * {Name, Node} ! Term). WISP_EINVAL if e overflowed its buffer or holds
 * an invalid value (nothing is sent); else what wisp_send and
 * wisp_node_send return. */
int32_t wisp_term_send(wisp_pid_t pid, const struct wisp_term_enc *e);
int32_t wisp_term_send_name(const char *node, const char *name, const struct wisp_term_enc *e);

#ifdef __cplusplus
}
#endif

#endif
