/*
 * ptable.c — the process table: pid → struct proc.
 *
 * A pid is (generation << 32) | index. Slots live in chunks of 65536
 * pointers allocated on first use and never moved, so a lookup is two
 * acquire loads and no lock; a struct proc, once allocated for a slot, is
 * kept for that slot until the runtime ends and reused with the next
 * generation, so a stale pid can never reach freed memory, and comparing
 * p->pid with the pid tells whether it is still the same process.
 * Generations start at 1, so 0 is never a pid. Free slots are reused LIFO
 * (the most recently freed proc struct is still in cache).
 */
#include <stdlib.h>
#include <string.h>

#include "rt_impl.h"

int ptable_init(struct ptable *t)
{
	memset(t, 0, sizeof(*t));
	return pthread_mutex_init(&t->lock, NULL) == 0 ? 0 : -1;
}

void ptable_destroy(struct ptable *t)
{
	for (uint32_t c = 0; c < PT_MAX_CHUNKS; c++) {
		struct proc **chunk = atomic_load(&t->chunks[c]);
		if (chunk == NULL)
			break;
		for (uint32_t i = 0; i < PT_CHUNK; i++)
			free(chunk[i]);
		free(chunk);
	}
	free(t->free);
	pthread_mutex_destroy(&t->lock);
}

struct proc *ptable_get(struct ptable *t, uint64_t pid)
{
	uint32_t index = (uint32_t)pid;
	if (pid == 0 || (index >> PT_CHUNK_BITS) >= PT_MAX_CHUNKS)
		return NULL;
	struct proc **chunk = atomic_load_explicit(&t->chunks[index >> PT_CHUNK_BITS],
	                                           memory_order_acquire);
	if (chunk == NULL)
		return NULL;
	return __atomic_load_n(&chunk[index & (PT_CHUNK - 1)], __ATOMIC_ACQUIRE);
}

struct proc *ptable_alloc(struct ptable *t)
{
	pthread_mutex_lock(&t->lock);
	struct proc *p = NULL;
	if (t->nfree > 0) {
		uint32_t index = t->free[--t->nfree];
		p = ptable_get(t, (uint64_t)1 << 32 | index);
	} else if ((t->next >> PT_CHUNK_BITS) < PT_MAX_CHUNKS) {
		uint32_t index = t->next;
		uint32_t c = index >> PT_CHUNK_BITS;
		struct proc **chunk = atomic_load(&t->chunks[c]);
		if (chunk == NULL) {
			chunk = calloc(PT_CHUNK, sizeof(*chunk));
			if (chunk)
				atomic_store_explicit(&t->chunks[c], chunk, memory_order_release);
		}
		p = chunk ? calloc(1, sizeof(*p)) : NULL;
		if (p != NULL) {
			p->index = index;
			atomic_flag_clear(&p->slock);
			__atomic_store_n(&chunk[index & (PT_CHUNK - 1)], p, __ATOMIC_RELEASE);
			t->next++;
		}
	}
	if (p != NULL)
		p->gen++;
	pthread_mutex_unlock(&t->lock);
	return p;
}

void ptable_release(struct ptable *t, struct proc *p)
{
	pthread_mutex_lock(&t->lock);
	if (t->nfree == t->capfree) {
		uint32_t cap = t->capfree ? t->capfree * 2 : 1024;
		uint32_t *f = realloc(t->free, cap * sizeof(*f));
		if (f == NULL) {
			/* The slot is lost (never reused): no harm but a leak. */
			pthread_mutex_unlock(&t->lock);
			return;
		}
		t->free = f;
		t->capfree = cap;
	}
	t->free[t->nfree++] = p->index;
	pthread_mutex_unlock(&t->lock);
}

void ptable_each(struct ptable *t, void (*fn)(struct proc *p, void *arg), void *arg)
{
	for (uint32_t c = 0; c < PT_MAX_CHUNKS; c++) {
		struct proc **chunk = atomic_load(&t->chunks[c]);
		if (chunk == NULL)
			break;
		for (uint32_t i = 0; i < PT_CHUNK; i++)
			if (chunk[i])
				fn(chunk[i], arg);
	}
}
