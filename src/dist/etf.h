/*
 * etf.h — the parts of Erlang's external term format the distribution
 * layer reads and writes (see etf.c).
 */
#ifndef WISP_DIST_ETF_H
#define WISP_DIST_ETF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Tags (erl_ext_dist). */
enum {
	ETF_VERSION = 131,
	ETF_NEW_FLOAT = 70,
	ETF_BIT_BINARY = 77,
	ETF_NEW_PID = 88,
	ETF_NEW_PORT = 89,
	ETF_NEWER_REFERENCE = 90,
	ETF_SMALL_INTEGER = 97,
	ETF_INTEGER = 98,
	ETF_FLOAT = 99,
	ETF_ATOM = 100,
	ETF_REFERENCE = 101,
	ETF_PORT = 102,
	ETF_PID = 103,
	ETF_SMALL_TUPLE = 104,
	ETF_LARGE_TUPLE = 105,
	ETF_NIL = 106,
	ETF_STRING = 107,
	ETF_LIST = 108,
	ETF_BINARY = 109,
	ETF_SMALL_BIG = 110,
	ETF_LARGE_BIG = 111,
	ETF_NEW_FUN = 112,
	ETF_EXPORT = 113,
	ETF_NEW_REFERENCE = 114,
	ETF_SMALL_ATOM = 115,
	ETF_MAP = 116,
	ETF_V4_PORT = 120,
	ETF_ATOM_UTF8 = 118,
	ETF_SMALL_ATOM_UTF8 = 119,
};

/* A growing output buffer. Out of memory sets oom and drops later writes
 * (check once at the end). */
struct etf_buf {
	unsigned char *p;
	size_t len, cap;
	bool oom;
};

void etf_buf_free(struct etf_buf *b);
void etf_raw(struct etf_buf *b, const void *data, size_t len);
void etf_u8(struct etf_buf *b, uint8_t v);
void etf_u32(struct etf_buf *b, uint32_t v);   /* big-endian, as all of ETF */
void etf_tuple(struct etf_buf *b, uint32_t arity);
void etf_list(struct etf_buf *b, uint32_t n);  /* then n elements and a tail */
void etf_nil(struct etf_buf *b);
void etf_atom(struct etf_buf *b, const char *s, size_t len);   /* UTF-8 */
void etf_int(struct etf_buf *b, int64_t v);
void etf_uint(struct etf_buf *b, uint64_t v);
void etf_binary(struct etf_buf *b, const void *data, uint32_t len);

struct etf_pid {
	const char *node;     /* into the buffer decoded (not NUL-terminated) */
	size_t nlen;
	uint32_t id, serial, creation;
};
struct etf_ref {
	const char *node;
	size_t nlen;
	uint32_t creation;
	uint32_t n;           /* words in id (1..5) */
	uint32_t id[5];
};

void etf_pid(struct etf_buf *b, const struct etf_pid *pid);
void etf_ref(struct etf_buf *b, const struct etf_ref *ref);

/* A read cursor. Every get checks the bounds and the type: 0, or -1 if
 * the next term is not of that type or is malformed (the cursor does not
 * move then). */
struct etf_dec {
	const unsigned char *p, *end;
};

/* The tag of the next term, or -1 at the end. */
int etf_peek(const struct etf_dec *d);
int etf_tuple_hdr(struct etf_dec *d, uint32_t *arity);
int etf_list_hdr(struct etf_dec *d, uint32_t *n);      /* LIST_EXT or NIL */
int etf_get_atom(struct etf_dec *d, const char **s, size_t *len);
int etf_get_int(struct etf_dec *d, int64_t *v);        /* fits in int64 */
int etf_get_uint(struct etf_dec *d, uint64_t *v);      /* fits in uint64 */
int etf_get_binary(struct etf_dec *d, const unsigned char **data, uint32_t *len);
int etf_get_pid(struct etf_dec *d, struct etf_pid *pid);
int etf_get_ref(struct etf_dec *d, struct etf_ref *ref);
/* Skip one whole term (nested at most ETF_MAX_DEPTH deep). */
#define ETF_MAX_DEPTH 512
int etf_skip(struct etf_dec *d);
/* Whether the atom is `s`. */
bool etf_atom_is(const char *a, size_t alen, const char *s);

/* Copy one term from d to b, each pid in it replaced by map(pid): the
 * way pids cross the boundary between a node and its guests. map returns
 * false to refuse the term (the copy fails). -1 if malformed or refused. */
typedef bool (*etf_pid_map)(void *ctx, const struct etf_pid *in, struct etf_buf *out);
int etf_copy_mapping_pids(struct etf_dec *d, struct etf_buf *b, etf_pid_map map, void *ctx);

#endif
