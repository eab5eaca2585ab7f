/*
 * ptable.c — the process table: pid → struct proc.
 *
 * A pid is (generation << 32) | index, generations of 31 bits: bit 63 of
 * a pid marks a process of another node (proc.h, PROC_PID_REMOTE), which
 * the table never holds. Slots live in chunks of 65536
 * pointers allocated on first use and never moved, so a lookup is two
 * acquire loads and no lock; a struct proc, once allocated for a slot, is
 * kept for that slot until the runtime ends and reused with the next
 * generation, so a stale pid can never reach freed memory, and comparing
 * p->pid with the pid tells whether it is still the same process.
 * Generations start at 1, so 0 is never a pid. Free slots are reused LIFO
 * (the most recently freed proc struct is still in cache). A slot whose
 * 31-bit generation is used up is retired, never reused: a pid can then
 * never name two processes, however long the runtime spawns (at one spawn
 * a microsecond on one slot, a slot retires every 36 minutes and costs a
 * few hundred bytes).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proc_impl.h"

int ptable_init(struct ptable *t, size_t extra)
{
	memset(t, 0, sizeof(*t));
	t->extra = extra;
	return pthread_mutex_init(&t->lock, NULL) == 0 ? 0 : -ENOMEM;
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

size_t ptable_slots(struct ptable *t)
{
	pthread_mutex_lock(&t->lock);
	size_t n = t->next;
	pthread_mutex_unlock(&t->lock);
	return n;
}

struct proc *ptable_get(struct ptable *t, uint64_t pid)
{
	return pid == 0 || proc_pid_is_remote(pid) ? NULL : ptable_at(t, (uint32_t)pid);
}

struct proc *ptable_at(struct ptable *t, uint32_t index)
{
	if ((index >> PT_CHUNK_BITS) >= PT_MAX_CHUNKS)
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
		p = ptable_at(t, t->free[--t->nfree]);
	} else if ((t->next >> PT_CHUNK_BITS) < PT_MAX_CHUNKS) {
		uint32_t index = t->next;
		uint32_t c = index >> PT_CHUNK_BITS;
		struct proc **chunk = atomic_load(&t->chunks[c]);
		if (chunk == NULL) {
			chunk = calloc(PT_CHUNK, sizeof(*chunk));
			if (chunk)
				atomic_store_explicit(&t->chunks[c], chunk, memory_order_release);
		}
		p = chunk ? calloc(1, sizeof(*p) + t->extra) : NULL;
		if (p != NULL) {
			p->index = index;
			atomic_flag_clear(&p->task.lock);
			atomic_flag_clear(&p->trace_lock);
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
	if (p->gen == PROC_GEN_MAX)
		return;   /* retired (see the top) */
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
		struct proc **chunk = atomic_load_explicit(&t->chunks[c], memory_order_acquire);
		if (chunk == NULL)
			break;
		for (uint32_t i = 0; i < PT_CHUNK; i++) {
			/* (A slot may be filled meanwhile: ptable_alloc.) */
			struct proc *p = __atomic_load_n(&chunk[i], __ATOMIC_ACQUIRE);
			if (p != NULL)
				fn(p, arg);
		}
	}
}
