/*
 * pidset.c — the small sets a process owns: its links, the monitors on it
 * and the monitors it holds (struct pidset, proc.h).
 *
 * A dense array (iterated at exit) keyed by `ref` (a monitor's ref; for a
 * link, the other pid stored as its ref too), with a hash index once the
 * set passes INDEX_AT entries: a process that monitors or links to many
 * others (a supervisor, a spawner waiting for 100k DOWNs) looks each up in
 * O(1) instead of scanning — a scan made a spawn benchmark quadratic.
 * The index lives in the same allocation, after the array: `icap` slots
 * (twice cap) of position + 1 (0: empty), linear probing, deletion by
 * backward shift (no tombstones). Small sets, most of them, have none.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proc_impl.h"

#define INDEX_AT 16
#define SET_FREE_ROOM 4   /* entries of a set that cost its owner nothing */

static uint32_t *index_of(const struct pidset *s)
{
	return s->cap >= INDEX_AT ? (uint32_t *)(s->v + s->cap) : NULL;
}

static uint32_t icap(const struct pidset *s)
{
	return s->cap * 2;           /* a power of two: cap is */
}

static uint32_t home(const struct pidset *s, uint64_t key)
{
	return (uint32_t)((key * 0x9e3779b97f4a7c15ull) >> 32) & (icap(s) - 1);
}

static void index_put(struct pidset *s, uint32_t pos)
{
	uint32_t *idx = index_of(s), mask = icap(s) - 1;
	uint32_t j = home(s, s->v[pos].ref);
	while (idx[j] != 0)
		j = (j + 1) & mask;
	idx[j] = pos + 1;
}

/* The index slot holding position pos. */
static uint32_t index_slot(const struct pidset *s, uint32_t pos)
{
	uint32_t *idx = index_of(s), mask = icap(s) - 1;
	uint32_t j = home(s, s->v[pos].ref);
	while (idx[j] != pos + 1)
		j = (j + 1) & mask;
	return j;
}

/* Empty slot j, shifting later entries of its probe chain back. */
static void index_remove(struct pidset *s, uint32_t j)
{
	uint32_t *idx = index_of(s), mask = icap(s) - 1;
	idx[j] = 0;
	for (uint32_t k = (j + 1) & mask; idx[k] != 0; k = (k + 1) & mask) {
		uint32_t h = home(s, s->v[idx[k] - 1].ref);
		/* Move k to j if its home is not in (j, k] (cyclically). */
		bool stays = j < k ? (h > j && h <= k) : (h > j || h <= k);
		if (!stays) {
			idx[j] = idx[k];
			idx[k] = 0;
			j = k;
		}
	}
}

static void index_rebuild(struct pidset *s)
{
	uint32_t *idx = index_of(s);
	if (idx == NULL)
		return;
	memset(idx, 0, icap(s) * sizeof(*idx));
	for (uint32_t i = 0; i < s->n; i++)
		index_put(s, i);
}

/* Position of key, or -1. */
static int64_t find(const struct pidset *s, uint64_t key)
{
	const uint32_t *idx = index_of(s);
	if (idx == NULL) {
		for (uint32_t i = 0; i < s->n; i++)
			if (s->v[i].ref == key)
				return i;
		return -1;
	}
	uint32_t mask = icap(s) - 1;
	for (uint32_t j = home(s, key); idx[j] != 0; j = (j + 1) & mask)
		if (s->v[idx[j] - 1].ref == key)
			return idx[j] - 1;
	return -1;
}

/* Remove the entry at pos (the last one moves into its place). */
static void remove_at(struct pidset *s, uint32_t pos)
{
	uint32_t last = s->n - 1;
	if (index_of(s) != NULL) {
		index_remove(s, index_slot(s, pos));
		if (pos != last) {
			uint32_t j = index_slot(s, last);
			index_of(s)[j] = pos + 1;
		}
	}
	s->v[pos] = s->v[last];
	s->n--;
}

/* The bytes of a set's room (its array, and its index from INDEX_AT). */
static uint64_t room_bytes(uint32_t cap)
{
	return (uint64_t)cap * sizeof(struct pidref) +
	       (cap >= INDEX_AT ? (uint64_t)cap * 2 * sizeof(uint32_t) : 0);
}

/* What a set's room costs its owner: all but the first SET_FREE_ROOM
 * entries, which are part of what any process costs (so a fresh
 * process's account holds only what others pushed at it, which its start
 * relies on: see proc_fiber_main). */
static uint64_t room_charge(uint32_t cap)
{
	return cap > SET_FREE_ROOM ? room_bytes(cap) - room_bytes(SET_FREE_ROOM) : 0;
}

int proc_set_add(struct proc *owner, struct pidset *s, uint64_t ref, uint64_t pid)
{
	if (s->n == s->cap) {
		/* The room is the owner's memory (proc_free_sets gives it back):
		 * a process linking or monitoring in a loop, or monitored by one,
		 * is bounded by its limit like any other host state. */
		uint32_t c = s->cap ? s->cap * 2 : SET_FREE_ROOM;
		uint64_t more = c > s->cap ? room_charge(c) - room_charge(s->cap) : 0;
		if (c < s->cap || proc_charge(owner, more) != 0)
			return -ENOMEM;
		struct pidref *v = realloc(s->v, (size_t)room_bytes(c));
		if (v == NULL) {
			proc_uncharge(owner, more);
			return -ENOMEM;
		}
		s->v = v;
		s->cap = c;
		index_rebuild(s);
	}
	s->v[s->n] = (struct pidref){ ref, pid };
	if (index_of(s) != NULL)
		index_put(s, s->n);
	s->n++;
	return 0;
}

uint64_t proc_set_del_ref(struct pidset *s, uint64_t ref)
{
	int64_t i = find(s, ref);
	if (i < 0)
		return 0;
	uint64_t pid = s->v[i].pid;
	remove_at(s, (uint32_t)i);
	return pid;
}

bool proc_set_has(const struct pidset *s, uint64_t ref)
{
	return find(s, ref) >= 0;
}

bool proc_set_del_pid_scan(struct pidset *s, uint64_t pid)
{
	for (uint32_t i = 0; i < s->n; i++) {
		if (s->v[i].pid == pid) {
			remove_at(s, i);
			return true;
		}
	}
	return false;
}

void proc_free_sets(struct proc *p)
{
	struct pidset *sets[] = { &p->links, &p->watchers, &p->watching };
	for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
		proc_uncharge(p, room_charge(sets[i]->cap));
		free(sets[i]->v);
		*sets[i] = (struct pidset){ NULL, 0, 0 };
	}
}
