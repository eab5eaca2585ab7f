/*
 * moved.h — where processes that moved (wisp_node.migrate) went: one
 * node's table of redirections, keyed by pid (see moved.c and dist.c,
 * "Processes that moved").
 */
#ifndef WISP_DIST_MOVED_H
#define WISP_DIST_MOVED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MOVED_MAX 4096u   /* entries of one node's table */

enum moved_state {
	MOVED_TOLD,       /* key: a local forwarder; its node was told where it went */
	MOVED_MARKED,     /* key: a remote forwarder; sends to it are held until
	                     the new incarnation says all sent before reached it */
	MOVED_FLUSHING,   /* the held ones are being sent to the new incarnation */
	MOVED_DRAINING,   /* gave up waiting: the held ones go by the old pid */
	MOVED_ACTIVE,     /* sends to the old pid go to the new one */
	MOVED_ABANDONED,  /* sends to the old pid go to it (its node forwards) */
};

struct held;

struct moved {
	uint64_t old, now;        /* old == 0: a free slot */
	enum moved_state state;
	int64_t deadline_ms;      /* MARKED: given up after */
	struct held *q, *q_last;  /* MARKED, FLUSHING, DRAINING: held, in order */
	uint32_t nq;
	size_t qbytes;
	unsigned char *mark;      /* MARKED: the mark's frame, until written */
	size_t marklen;
};

/* Open addressing, never shrinking: entries live as long as their node's
 * entry (a pid may be used any time later). */
struct moved_map {
	struct moved *v;
	uint32_t cap, n;          /* cap: a power of 2, or 0 */
	uint32_t nwaiting;        /* entries MARKED, FLUSHING or DRAINING */
	uint32_t marks_due;       /* entries whose mark waits to be written */
};

/* The entry for old, or NULL. */
struct moved *moved_find(const struct moved_map *m, uint64_t old);
/* A new entry for old (not there yet): NULL when the map holds MOVED_MAX
 * or out of memory. Entries found before may move (the map grows). */
struct moved *moved_add(struct moved_map *m, uint64_t old, uint64_t now, enum moved_state st);
/* Free the map's memory (the caller frees what entries hold first). */
void moved_free(struct moved_map *m);

#endif
