/*
 * moved.c — one node's table of processes that moved, as an open
 * addressing hash keyed by pid (never 0), linear probing, grown at half
 * full. Entries are never removed: an old pid may be used at any time,
 * so its redirection lives as long as the node's entry, and the table is
 * bounded instead (MOVED_MAX: a peer cannot make it grow without end).
 * The caller locks (the node's lock).
 */
#include <stdlib.h>

#include "moved.h"

static uint32_t slot_of(uint64_t key, uint32_t cap)
{
	key ^= key >> 29;
	key *= 0xbf58476d1ce4e5b9ull;
	key ^= key >> 32;
	return (uint32_t)key & (cap - 1);
}

struct moved *moved_find(const struct moved_map *m, uint64_t old)
{
	if (m->cap == 0 || old == 0)
		return NULL;
	for (uint32_t i = slot_of(old, m->cap);; i = (i + 1) & (m->cap - 1)) {
		if (m->v[i].old == old)
			return &m->v[i];
		if (m->v[i].old == 0)
			return NULL;
	}
}

static bool grow(struct moved_map *m)
{
	uint32_t cap = m->cap ? m->cap * 2 : 16;
	struct moved *v = calloc(cap, sizeof(*v));
	if (v == NULL)
		return false;
	for (uint32_t i = 0; i < m->cap; i++) {
		if (m->v[i].old == 0)
			continue;
		uint32_t j = slot_of(m->v[i].old, cap);
		while (v[j].old != 0)
			j = (j + 1) & (cap - 1);
		v[j] = m->v[i];
	}
	free(m->v);
	m->v = v;
	m->cap = cap;
	return true;
}

struct moved *moved_add(struct moved_map *m, uint64_t old, uint64_t now, enum moved_state st)
{
	if (old == 0 || m->n >= MOVED_MAX || ((m->n + 1) * 2 > m->cap && !grow(m)))
		return NULL;
	uint32_t i = slot_of(old, m->cap);
	while (m->v[i].old != 0)
		i = (i + 1) & (m->cap - 1);
	m->v[i] = (struct moved){ .old = old, .now = now, .state = st };
	m->n++;
	return &m->v[i];
}

void moved_free(struct moved_map *m)
{
	free(m->v);
	*m = (struct moved_map){ 0 };
}
