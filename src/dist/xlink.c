/*
 * xlink.c — one node's links and monitors across the node boundary, as
 * a hash set.
 *
 * dist.c notes every link and monitor between a local process and a
 * process of another node, so that losing that node can tell each local
 * side. A peer decides how many there are: it may link a million of its
 * pids to one local process, or monitor one a million times. A list
 * searched on every LINK (to keep links unique), DOWN and DEMONITOR made
 * such a flood quadratic — 40,000 links held the node's I/O thread for
 * 4 s, a million would for hours — so entries are chained in buckets by
 * their key: (local, remote) for a link, the local ref for a monitor.
 * A monitor a peer holds is also found by the peer's own ref (DEMONITOR
 * names it so): those are in a second set of buckets. Both are resized
 * together at a load of one entry per bucket, so every operation is
 * O(1) on average whatever the peer sends.
 *
 * Each entry is one allocation sized for the names it keeps (the peer
 * ref's node, a monitored name), about 120 bytes for a link: a flat
 * array of fixed 256-byte names cost 600 bytes an entry.
 *
 * The caller (dist.c) holds the node's lock around every call.
 */
#include <stdlib.h>
#include <string.h>

#include "handshake.h"
#include "xlink.h"

static uint64_t mix(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ull;
	k ^= k >> 33;
	return k;
}

static uint64_t key_hash(enum xkind kind, uint64_t local, uint64_t remote, uint64_t ref)
{
	if (kind == X_LINK)
		return mix(local ^ mix(remote));
	return mix(ref ^ (uint64_t)kind << 56);
}

static uint64_t eref_hash(uint64_t remote, const struct etf_ref *r)
{
	uint64_t h = mix(remote) ^ r->creation;
	for (uint32_t i = 0; i < r->n; i++)
		h = mix(h ^ r->id[i]);
	for (size_t i = 0; i < r->nlen; i++)
		h = (h ^ (unsigned char)r->node[i]) * 0x100000001b3ull;
	return mix(h);
}

static uint64_t hash_of(const struct xlink *x, int which)
{
	return which == 0 ? key_hash(x->kind, x->local, x->remote, x->ref)
	                  : eref_hash(x->remote, &x->eref);
}

static bool in_eref_set(const struct xlink *x)
{
	return x->kind == X_MON_IN;
}

/* Every entry, as a list linked by chain[0]; the buckets left empty. */
static struct xlink *collect(struct xset *s)
{
	struct xlink *all = NULL;
	for (uint32_t i = 0; i < s->nb; i++) {
		struct xlink *x = s->b[0][i];
		while (x != NULL) {
			struct xlink *next = x->chain[0];
			x->chain[0] = all;
			all = x;
			x = next;
		}
		s->b[0][i] = s->b[1][i] = NULL;
	}
	s->n = 0;
	return all;
}

static void insert(struct xset *s, struct xlink *x, int which)
{
	struct xlink **slot = &s->b[which][hash_of(x, which) & (s->nb - 1)];
	x->chain[which] = *slot;
	*slot = x;
}

/* Double the buckets (or make the first 16); false if out of memory. */
static bool grow(struct xset *s)
{
	uint32_t nb = s->nb ? s->nb * 2 : 16;
	struct xlink **b0 = calloc(nb, sizeof(*b0)), **b1 = calloc(nb, sizeof(*b1));
	if (b0 == NULL || b1 == NULL || nb == 0) {
		free(b0);
		free(b1);
		return false;
	}
	struct xlink *all = collect(s);
	free(s->b[0]);
	free(s->b[1]);
	*s = (struct xset){ { b0, b1 }, nb, 0 };
	while (all != NULL) {
		struct xlink *next = all->chain[0];
		insert(s, all, 0);
		if (in_eref_set(all))
			insert(s, all, 1);
		s->n++;
		all = next;
	}
	return true;
}

struct xlink *xset_add(struct xset *s, enum xkind kind, uint64_t local, uint64_t remote,
                       uint64_t ref, const struct etf_ref *eref, const char *name,
                       size_t namelen)
{
	size_t enlen = eref != NULL ? eref->nlen : 0;
	if (enlen > DIST_NAME_MAX || namelen > 255)
		return NULL;
	if (s->n >= s->nb && !grow(s))
		return NULL;
	struct xlink *x = calloc(1, sizeof(*x) + enlen + namelen);
	if (x == NULL)
		return NULL;
	x->kind = kind;
	x->local = local;
	x->remote = remote;
	x->ref = ref;
	if (eref != NULL) {
		x->eref = *eref;
		memcpy(x->text, eref->node, enlen);
		x->eref.node = x->text;
	}
	if (namelen > 0) {
		memcpy(x->text + enlen, name, namelen);
		x->name = x->text + enlen;
		x->namelen = (uint8_t)namelen;
	}
	insert(s, x, 0);
	if (in_eref_set(x))
		insert(s, x, 1);
	s->n++;
	return x;
}

struct xlink *xset_link(const struct xset *s, uint64_t local, uint64_t remote)
{
	if (s->nb == 0)
		return NULL;
	struct xlink *x = s->b[0][key_hash(X_LINK, local, remote, 0) & (s->nb - 1)];
	for (; x != NULL; x = x->chain[0])
		if (x->kind == X_LINK && x->local == local && x->remote == remote)
			return x;
	return NULL;
}

struct xlink *xset_mon(const struct xset *s, enum xkind kind, uint64_t ref)
{
	if (s->nb == 0)
		return NULL;
	struct xlink *x = s->b[0][key_hash(kind, 0, 0, ref) & (s->nb - 1)];
	for (; x != NULL; x = x->chain[0])
		if (x->kind == kind && x->ref == ref)
			return x;
	return NULL;
}

static bool same_eref(const struct etf_ref *a, const struct etf_ref *b)
{
	return a->n == b->n && a->creation == b->creation && a->nlen == b->nlen &&
	       memcmp(a->node, b->node, a->nlen) == 0 &&
	       memcmp(a->id, b->id, a->n * sizeof(a->id[0])) == 0;
}

struct xlink *xset_mon_in(const struct xset *s, uint64_t remote, const struct etf_ref *eref)
{
	if (s->nb == 0 || eref->n > 5)
		return NULL;
	struct xlink *x = s->b[1][eref_hash(remote, eref) & (s->nb - 1)];
	for (; x != NULL; x = x->chain[1])
		if (x->remote == remote && same_eref(&x->eref, eref))
			return x;
	return NULL;
}

static void unchain(struct xset *s, struct xlink *x, int which)
{
	struct xlink **pp = &s->b[which][hash_of(x, which) & (s->nb - 1)];
	while (*pp != x)
		pp = &(*pp)->chain[which];
	*pp = x->chain[which];
}

void xset_remove(struct xset *s, struct xlink *x)
{
	unchain(s, x, 0);
	if (in_eref_set(x))
		unchain(s, x, 1);
	s->n--;
}

void xset_forget_local(struct xset *s, uint64_t pid)
{
	for (uint32_t i = 0; i < s->nb; i++) {
		struct xlink *x = s->b[0][i];
		while (x != NULL) {
			struct xlink *next = x->chain[0];
			if (x->local == pid) {
				xset_remove(s, x);
				free(x);
			}
			x = next;
		}
	}
}

struct xlink *xset_take(struct xset *s)
{
	struct xlink *all = collect(s);
	free(s->b[0]);
	free(s->b[1]);
	*s = (struct xset){ { NULL, NULL }, 0, 0 };
	return all;
}

void xset_free(struct xset *s)
{
	struct xlink *x = xset_take(s);
	while (x != NULL) {
		struct xlink *next = x->chain[0];
		free(x);
		x = next;
	}
}
