/*
 * xlink.h — the links and monitors between local processes and the
 * processes of one other node, indexed (see xlink.c).
 */
#ifndef WISP_DIST_XLINK_H
#define WISP_DIST_XLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "etf.h"

/* A link (X_LINK), a monitor a local process holds on a remote one
 * (X_MON_OUT) or one a remote process holds on a local one (X_MON_IN). */
enum xkind { X_LINK, X_MON_OUT, X_MON_IN };

struct xlink {
	struct xlink *chain[2];   /* the set's: by key, by the peer's ref (MON_IN) */
	enum xkind kind;
	uint64_t local, remote;
	uint64_t ref;             /* MON_OUT/MON_IN: the local monitor ref */
	struct etf_ref eref;      /* MON_IN: the peer's ref (its node in text) */
	const char *name;         /* MON_IN by name: the name monitored (in text) */
	uint8_t namelen;
	char text[];
};

/* One node's links and monitors: a hash set, so that no number of them
 * makes adding, finding or removing one slower. */
struct xset {
	struct xlink **b[2];      /* buckets: by key, by the peer's ref */
	uint32_t nb;              /* buckets in each (a power of 2, or 0) */
	uint32_t n;
};

/* Add an entry: local, remote, ref as in struct xlink; eref and name for
 * X_MON_IN (NULL, 0 otherwise; eref->nlen at most DIST_NAME_MAX, namelen
 * at most 255). The entry, or NULL if out of memory. */
struct xlink *xset_add(struct xset *s, enum xkind kind, uint64_t local, uint64_t remote,
                       uint64_t ref, const struct etf_ref *eref, const char *name,
                       size_t namelen);
/* The link between local and remote, or NULL. */
struct xlink *xset_link(const struct xset *s, uint64_t local, uint64_t remote);
/* The monitor of kind with local ref, or NULL. */
struct xlink *xset_mon(const struct xset *s, enum xkind kind, uint64_t ref);
/* The X_MON_IN that remote holds with the peer's ref eref, or NULL. */
struct xlink *xset_mon_in(const struct xset *s, uint64_t remote, const struct etf_ref *eref);
/* Take x out of s; the caller frees it (free()). */
void xset_remove(struct xset *s, struct xlink *x);
/* Free every entry whose local side is pid. */
void xset_forget_local(struct xset *s, uint64_t pid);
/* Every entry, as a list linked by chain[0]; s is empty after. */
struct xlink *xset_take(struct xset *s);
/* Free what s holds. */
void xset_free(struct xset *s);

#endif
