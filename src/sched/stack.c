/*
 * stack.c — the fiber stack pool.
 *
 * Stacks come from slabs: one anonymous MAP_NORESERVE mapping holds many
 * stacks, so a million fibers cost a few hundred kernel mappings instead of
 * two million (vm.max_map_count is 65530 by default). There are no guard
 * pages between stacks — an mprotect()ed page would split the mapping —
 * because overflow is caught before it happens: the reduction hook at every
 * wasm function entry compares the frame address with the fiber's limit,
 * which leaves ENGINE_STACK_HEADROOM (engine.h) below it, and the compile
 * pipeline refuses any function whose frame could reach past that
 * headroom. As a last line of defence the lowest stack-sized block of each
 * slab is PROT_NONE: a bug in that reasoning then faults at the bottom of a
 * slab instead of silently writing into whatever mapping lies below it.
 * That costs one extra mapping per slab, not per stack.
 *
 * Freed stacks go to a LIFO free list and are reused warm: their pages are
 * already faulted in, and first-touch page faults cost 10-28 µs here, more
 * than everything else in a spawn. Beyond TRIM_AT free stacks, a freed
 * stack's pages are returned to the kernel (MADV_DONTNEED) before it joins
 * the list; below, stack_pool_trim (every few seconds) returns those of
 * free stacks no spawn took since the previous trim, so a burst of
 * processes does not pin its peak memory: the bottom of the free list
 * below its low point is made cold, and kept below the warm part.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/lifo.h"
#include "stack.h"

#define SLAB_BYTES (64u << 20)   /* 64 MiB of address space per slab */
#define TRIM_AT 16384

static int push(void ***arr, size_t *n, size_t *cap, void *v)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 64;
		void **a = realloc(*arr, c * sizeof(*a));
		if (a == NULL)
			return -1;
		*arr = a;
		*cap = c;
	}
	(*arr)[(*n)++] = v;
	return 0;
}

void stack_pool_init(struct stack_pool *p, size_t stack_size)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	*p = (struct stack_pool){ 0 };
	pthread_mutex_init(&p->lock, NULL);
	p->stack_size = (stack_size + page - 1) & ~(page - 1);
	/* One stack-sized block of each slab is its guard. */
	p->slab_stacks = SLAB_BYTES / p->stack_size;
	p->slab_stacks = p->slab_stacks > 1 ? p->slab_stacks - 1 : 1;
}

void stack_pool_destroy(struct stack_pool *p)
{
	for (size_t i = 0; i < p->nslabs; i++)
		munmap(p->slabs[i], (p->slab_stacks + 1) * p->stack_size);
	free(p->slabs);
	free(p->free);
	pthread_mutex_destroy(&p->lock);
	*p = (struct stack_pool){ 0 };
}

static int grow(struct stack_pool *p)
{
	size_t bytes = (p->slab_stacks + 1) * p->stack_size;
	char *slab = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
	                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (slab == MAP_FAILED)
		return -1;
	if (mprotect(slab, p->stack_size, PROT_NONE) != 0) {   /* the guard */
		munmap(slab, bytes);
		return -1;
	}
	/* The free list must be able to hold every stack there is, so that
	 * stack_free never needs to allocate. */
	size_t total = (p->nslabs + 1) * p->slab_stacks;
	if (p->capfree < total) {
		void **f = realloc(p->free, total * sizeof(*f));
		if (f == NULL) {
			munmap(slab, bytes);
			return -1;
		}
		p->free = f;
		p->capfree = total;
	}
	if (push(&p->slabs, &p->nslabs, &p->capslabs, slab) != 0) {
		munmap(slab, bytes);
		return -1;
	}
	/* Pushed in reverse so the lowest stack is handed out first; stack i
	 * lies above the guard. */
	for (size_t i = p->slab_stacks; i-- > 0;)
		if (push(&p->free, &p->nfree, &p->capfree, slab + (i + 1) * p->stack_size) != 0)
			return -1;
	return 0;
}

void *stack_alloc(struct stack_pool *p)
{
	void *s = NULL;
	pthread_mutex_lock(&p->lock);
	if (p->nfree == 0 && grow(p) == 0)
		p->ncold = p->nfree;      /* a new slab's: never touched */
	if (p->nfree > 0) {
		s = p->free[--p->nfree];
		p->live++;
		if (p->nfree < p->low_water)
			p->low_water = p->nfree;
		if (p->nfree < p->ncold)
			p->ncold = p->nfree;
	}
	pthread_mutex_unlock(&p->lock);
	return s;
}

size_t stack_pool_trim(struct stack_pool *p)
{
	pthread_mutex_lock(&p->lock);
	size_t lo = p->ncold, hi = p->low_water < p->nfree ? p->low_water : p->nfree;
	if (hi < lo)
		hi = lo;                  /* (all below the low point is cold already) */
	size_t k = hi - lo;
	void **out = k ? malloc(k * sizeof(*out)) : NULL;
	if (out == NULL) {
		p->low_water = p->nfree;
		pthread_mutex_unlock(&p->lock);
		return 0;
	}
	lifo_take(p->free, &p->nfree, lo, hi, out);
	pthread_mutex_unlock(&p->lock);
	for (size_t i = 0; i < k; i++)
		madvise(out[i], p->stack_size, MADV_DONTNEED);
	pthread_mutex_lock(&p->lock);
	lifo_put_cold(p->free, &p->nfree, &p->ncold, out, k);
	p->low_water = p->nfree;
	pthread_mutex_unlock(&p->lock);
	free(out);
	return k;
}

void stack_free(struct stack_pool *p, void *stack)
{
	pthread_mutex_lock(&p->lock);
	/* capfree holds every stack ever made (grow), so this fits unless a
	 * stack is freed twice: then say so rather than write past the list. */
	if (p->nfree >= p->capfree) {
		fprintf(stderr, "wisp: internal error: a fiber stack was freed twice (%p)\n", stack);
		abort();
	}
	if (p->nfree >= TRIM_AT)
		madvise(stack, p->stack_size, MADV_DONTNEED);
	p->free[p->nfree++] = stack;
	p->live--;
	pthread_mutex_unlock(&p->lock);
}

void stack_pool_usage(struct stack_pool *p, size_t *in_use, size_t *mapped)
{
	pthread_mutex_lock(&p->lock);
	*in_use = p->live * p->stack_size;
	*mapped = p->nslabs * (p->slab_stacks + 1) * p->stack_size;   /* (a guard each) */
	pthread_mutex_unlock(&p->lock);
}
