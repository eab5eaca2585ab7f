/*
 * registry.c — process names: an open-addressing hash table from name bytes
 * to pid under one mutex (registrations are rare next to messages).
 *
 * A name is bound to a live process only: registration checks, under the
 * registry lock, that the process has not started exiting; the exit path
 * sets `exiting` first and then removes the process's names under the same
 * lock, so a dead process's name can never be found, nor registered.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "rt_impl.h"

#define TOMB ((char *)1)

int registry_init(struct registry *r)
{
	memset(r, 0, sizeof(*r));
	return pthread_mutex_init(&r->lock, NULL) == 0 ? 0 : -1;
}

void registry_destroy(struct registry *r)
{
	for (uint32_t i = 0; i < r->cap; i++)
		if (r->slots[i].name && r->slots[i].name != TOMB)
			free(r->slots[i].name);
	free(r->slots);
	pthread_mutex_destroy(&r->lock);
}

static uint32_t hash(const char *name, uint32_t len)
{
	return (uint32_t)XXH3_64bits(name, len);
}

/* Index of name's slot, or of the slot to insert it in (-1: table full). */
static int64_t find(const struct registry *r, const char *name, uint32_t len,
                    bool for_insert)
{
	if (r->cap == 0)
		return -1;
	uint32_t mask = r->cap - 1, i = hash(name, len) & mask;
	int64_t tomb = -1;
	for (uint32_t n = 0; n < r->cap; n++, i = (i + 1) & mask) {
		struct reg_entry *e = &r->slots[i];
		if (e->name == NULL)
			return for_insert && tomb >= 0 ? tomb : (for_insert ? (int64_t)i : -1);
		if (e->name == TOMB) {
			if (tomb < 0)
				tomb = i;
			continue;
		}
		if (e->len == len && memcmp(e->name, name, len) == 0)
			return i;
	}
	return for_insert ? tomb : -1;
}

static int grow(struct registry *r)
{
	uint32_t cap = r->cap ? r->cap * 2 : 64;
	struct reg_entry *old = r->slots;
	uint32_t oldcap = r->cap;
	r->slots = calloc(cap, sizeof(*r->slots));
	if (r->slots == NULL) {
		r->slots = old;
		return -ENOMEM;
	}
	r->cap = cap;
	r->count = r->tombs = 0;
	for (uint32_t i = 0; i < oldcap; i++) {
		if (old[i].name && old[i].name != TOMB) {
			int64_t j = find(r, old[i].name, old[i].len, true);
			r->slots[j] = old[i];
			r->count++;
		}
	}
	free(old);
	return 0;
}

/* Bind name to p (alive, checked under the lock). */
int registry_put(struct registry *r, const char *name, uint32_t len, struct proc *p,
                 uint64_t pid)
{
	int rc = WISP_OK;
	pthread_mutex_lock(&r->lock);
	if (atomic_load(&p->pid) != pid || atomic_load(&p->exiting)) {
		rc = WISP_ENOPROC;
		goto out;
	}
	int64_t i = find(r, name, len, false);
	if (i >= 0) {
		rc = WISP_EEXIST;
		goto out;
	}
	if ((r->count + r->tombs + 1) * 4 > r->cap * 3 && grow(r) != 0) {
		rc = WISP_ENOMEM;
		goto out;
	}
	i = find(r, name, len, true);
	char *copy = malloc(len ? len : 1);
	if (copy == NULL) {
		rc = WISP_ENOMEM;
		goto out;
	}
	memcpy(copy, name, len);
	if (r->slots[i].name == TOMB)
		r->tombs--;
	r->slots[i] = (struct reg_entry){ copy, len, pid };
	r->count++;
	atomic_fetch_add(&p->nnames, 1);
out:
	pthread_mutex_unlock(&r->lock);
	return rc;
}

/* Remove name; *pid is who had it. */
int registry_del(struct registry *r, const char *name, uint32_t len, uint64_t *pid)
{
	pthread_mutex_lock(&r->lock);
	int64_t i = find(r, name, len, false);
	if (i < 0) {
		pthread_mutex_unlock(&r->lock);
		return WISP_ENOTFOUND;
	}
	*pid = r->slots[i].pid;
	free(r->slots[i].name);
	r->slots[i].name = TOMB;
	r->count--;
	r->tombs++;
	pthread_mutex_unlock(&r->lock);
	return WISP_OK;
}

int registry_get(struct registry *r, const char *name, uint32_t len, uint64_t *pid)
{
	pthread_mutex_lock(&r->lock);
	int64_t i = find(r, name, len, false);
	*pid = i >= 0 ? r->slots[i].pid : 0;
	pthread_mutex_unlock(&r->lock);
	return i >= 0 ? WISP_OK : WISP_ENOTFOUND;
}

void registry_forget(struct registry *r, uint64_t pid)
{
	pthread_mutex_lock(&r->lock);
	for (uint32_t i = 0; i < r->cap; i++) {
		struct reg_entry *e = &r->slots[i];
		if (e->name && e->name != TOMB && e->pid == pid) {
			free(e->name);
			e->name = TOMB;
			r->count--;
			r->tombs++;
		}
	}
	pthread_mutex_unlock(&r->lock);
}

void registry_exit(struct registry *r, struct proc *p, uint64_t pid)
{
	pthread_mutex_lock(&r->lock);
	atomic_store(&p->exiting, true);
	bool named = atomic_load(&p->nnames) > 0;
	pthread_mutex_unlock(&r->lock);
	if (named)
		registry_forget(r, pid);
}
