/*
 * stack.h — native stacks for fibers, carved from large pooled mappings.
 */
#ifndef WISP_STACK_H
#define WISP_STACK_H

#include <pthread.h>
#include <stddef.h>

struct stack_pool {
	pthread_mutex_t lock;
	size_t stack_size;        /* bytes per stack, a multiple of the page size */
	void **free;              /* stacks ready for reuse (warm) */
	size_t nfree, capfree;
	void **slabs;             /* every mapping made (its guard first), for
	                             stack_pool_destroy */
	size_t nslabs, capslabs;
	size_t slab_stacks;       /* stacks per new slab, above its guard */
	size_t live;              /* stacks handed out */
	size_t low_water;         /* the least nfree since the last trim */
	size_t ncold;             /* free[0..ncold) hold no pages (trimmed) */
};

/* Give back the pages of free stacks no spawn took since the last call
 * (those below the free list's low point): a burst's stacks do not stay
 * resident. Call it every few seconds (any thread); returns how many. */
size_t stack_pool_trim(struct stack_pool *p);

/* stack_size is rounded up to the page size. */
void stack_pool_init(struct stack_pool *p, size_t stack_size);
/* Unmaps every slab; stacks still in use become invalid. */
void stack_pool_destroy(struct stack_pool *p);
/* A stack of p->stack_size bytes (lowest address), or NULL if out of
 * address space. Contents are unspecified. */
void *stack_alloc(struct stack_pool *p);
void stack_free(struct stack_pool *p, void *stack);
/* Bytes of the stacks handed out, and of every slab made (address space:
 * a stack's pages are committed as it touches them). Any thread. */
void stack_pool_usage(struct stack_pool *p, size_t *in_use, size_t *mapped);

#endif
