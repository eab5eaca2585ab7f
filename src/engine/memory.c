/*
 * memory.c — linear memories for generated code (wasm-rt.h's memory API).
 *
 * A memory is one private anonymous mapping with MAP_NORESERVE: the kernel
 * commits pages on first touch, so a memory "reserved" at its current size
 * costs nothing until used. Growth extends the mapping with mremap(), which
 * may move it: generated code re-reads mem->data on every access, and host
 * functions must not keep guest pointers across a call that can grow memory
 * (none of the WASI calls do).
 *
 * Bounds are checked explicitly by generated code against mem->size
 * (WASM_RT_MEMCHECK_SIGNAL_HANDLER=0): no 8 GiB guard regions, so a million
 * memories fit in the address space.
 *
 * A memory may grow to the module's declared maximum, as long as the
 * owner's account (engine_limits.usage: memories, tables and whatever else
 * the owner charges) stays within max_memory. A failed growth
 * returns UINT32_MAX as wasm requires (memory.grow yields -1); it never traps.
 *
 * Alternative rejected: reserving the full maximum up front (PROT_NONE) and
 * mprotect()ing on growth avoids moves, but a 4 GiB reservation per memory
 * caps the process at ~32k memories in a 47-bit address space.
 *
 * Pooling (engine_mem_pool): a runtime that spawns many processes gives its
 * instances a pool. Memories of at most POOL_PAGES wasm pages come from
 * slabs: one 32 MiB mapping (aligned to its size) holds a header page and
 * as many memories of one size as fit, so a million memories are a few
 * thousand kernel mappings and none is mapped or unmapped per spawn. A
 * freed memory must read as zeros again before its slot is reused; only
 * pages the kernel has resident can hold anything, so those are cleared
 * with memset and stay warm (a spawn faults nothing). Which pages are
 * resident costs a mincore() — more than the rest of a spawn on this kind
 * of machine when done per memory — so freed slots are marked dirty and
 * cleared a slab at a time, with one mincore over the dirty slots' span,
 * when the pool runs out of clean slots or 32 are waiting: freed slots are
 * reused before older clean ones, so a churn keeps reusing its own few. A memory that grows leaves its slab: its pages
 * are copied to a mapping of its own and the slot is freed (the slab never
 * has a hole another mapping could take).
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "common/lifo.h"
#include "engine_impl.h"

#define PAGE_SIZE_WASM 65536u
#define MAX_PAGES 65536u
#define POOL_PAGES 32u            /* memories up to 2 MiB are pooled */
#define SLAB_BYTES (32u << 20)    /* a slab: aligned to its size */
#define SLAB_HEADER 4096u
#define SLAB_MAX_SLOTS 512u
#define SLAB_MAGIC 0x77697370736c6162ull
#define DIRTY_BATCH 32u           /* freed slots cleared together (pool_take) */

/* At the start of every slab (its first page). */
struct slab {
	uint64_t magic;
	uint32_t pages;               /* wasm pages per slot */
	uint32_t nslots;
	uint64_t dirty[SLAB_MAX_SLOTS / 64];   /* freed, not yet cleared */
	uint64_t imaged[SLAB_MAX_SLOTS / 64];  /* clean, holding its class's image */
	uint64_t owned[SLAB_MAX_SLOTS / 64];   /* taken by a memory, not given back */
	struct slab *next_dirty;      /* in its class's list of dirty slabs */
	bool listed;
	bool stale;                   /* listed at the last trim already */
};

struct mem_class {
	struct slab **slabs;          /* every slab made, for freeing */
	size_t nslabs, capslabs;
	void **clean;                 /* slots ready to use (LIFO: warm) */
	size_t nclean, capclean;      /* capclean >= every slot there is */
	size_t low_water;             /* the least nclean since the last trim */
	size_t peak_in_use;           /* the most slots in use since then */
	size_t ncold;                 /* clean[0..ncold) hold no pages (trimmed) */
	size_t nslots;
	size_t ndirty;                /* freed slots waiting to be cleared */
	struct slab *dirty_slabs;
	/* The module whose image this class's slots are cleared to (the
	 * first with an image to free a memory of this size here), and that
	 * image by OS page of a slot (NULL: a zero page). */
	const engine_module *img_mod;
	const unsigned char **img_page;
};

struct engine_mem_pool {
	pthread_mutex_t lock;
	size_t max_per_class;         /* slots kept warm (clean or dirty);
	                                 beyond, their pages are dropped */
	bool swap;                    /* swap was on when the pool was made */
	struct mem_class cls[POOL_PAGES + 1];   /* by page count */
	/* Classes' img_page arrays of modules unloaded since (see
	 * engine_mem_pool_forget), freed with the pool. */
	void **old_img;
	size_t nold_img, capold_img;
	/* Bytes of the memories mapped on their own (engine_mem_pool_stats):
	 * changed only next to an mmap, mremap or munmap, which cost far more. */
	_Atomic int64_t own_bytes;
};

struct engine_mem_pool *engine_mem_pool_new(size_t max_per_class)
{
	struct engine_mem_pool *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	pthread_mutex_init(&p->lock, NULL);
	p->max_per_class = max_per_class;
	struct sysinfo si;
	p->swap = sysinfo(&si) != 0 || si.totalswap > 0;
	return p;
}

void engine_mem_pool_free(struct engine_mem_pool *p)
{
	if (p == NULL)
		return;
	for (unsigned c = 1; c <= POOL_PAGES; c++) {
		for (size_t i = 0; i < p->cls[c].nslabs; i++)
			munmap(p->cls[c].slabs[i], SLAB_BYTES);
		free(p->cls[c].slabs);
		free(p->cls[c].clean);
		free(p->cls[c].img_page);
	}
	for (size_t i = 0; i < p->nold_img; i++)
		free(p->old_img[i]);
	free(p->old_img);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static struct engine_mem_pool *current_pool(void)
{
	engine_instance *in = engine_current();
	return in ? in->limits.mem_pool : NULL;
}

static size_t slot_bytes(uint32_t pages)
{
	return (size_t)pages * PAGE_SIZE_WASM;
}

/* A memory of in's mapped on its own grew (or shrank, by -bytes). */
static void count_own(const engine_instance *in, int64_t bytes)
{
	if (in != NULL && in->limits.mem_pool != NULL)
		atomic_fetch_add_explicit(&in->limits.mem_pool->own_bytes, bytes, memory_order_relaxed);
}

void engine_mem_pool_stats(struct engine_mem_pool *p, struct engine_mem_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	for (uint32_t pages = 1; pages <= POOL_PAGES; pages++) {
		const struct mem_class *c = &p->cls[pages];
		out->pooled_bytes += (c->nslots - c->nclean - c->ndirty) * slot_bytes(pages);
		out->slab_bytes += c->nslabs * (uint64_t)SLAB_BYTES;
	}
	pthread_mutex_unlock(&p->lock);
	int64_t own = atomic_load_explicit(&p->own_bytes, memory_order_relaxed);
	out->own_bytes = own > 0 ? (uint64_t)own : 0;
}

static char *slot_addr(struct slab *s, uint32_t i)
{
	return (char *)s + SLAB_HEADER + (size_t)i * slot_bytes(s->pages);
}

static uint32_t slot_index(const struct slab *s, const void *data)
{
	return (uint32_t)(((const char *)data - slot_addr((struct slab *)s, 0)) /
	                  slot_bytes(s->pages));
}

static bool bit(const uint64_t *v, uint32_t i)
{
	return v[i / 64] >> (i % 64) & 1;
}

static void set_bit(uint64_t *v, uint32_t i, bool on)
{
	if (on)
		v[i / 64] |= 1ull << (i % 64);
	else
		v[i / 64] &= ~(1ull << (i % 64));
}

/* A slot changing hands (under lock): taken when it was not owned, given
 * back when it was. Anything else would give two processes one memory, so
 * it is a fault of the runtime that must not go on silently. */
static void set_owned(struct slab *s, uint32_t i, bool on)
{
	if (bit(s->owned, i) == on) {
		fprintf(stderr, "wisp: internal error: memory slot %p %s twice\n",
		        (void *)slot_addr(s, i), on ? "taken" : "given back");
		abort();
	}
	set_bit(s->owned, i, on);
}

static bool push_ptr(void ***v, size_t *n, size_t *cap, void *x)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 64;
		void **q = realloc(*v, c * sizeof(*q));
		if (q == NULL)
			return false;
		*v = q;
		*cap = c;
	}
	(*v)[(*n)++] = x;
	return true;
}

/* A new slab of `pages`-page slots, all clean (under lock). */
static bool new_slab(struct engine_mem_pool *p, uint32_t pages)
{
	struct mem_class *c = &p->cls[pages];
	/* Aligned to its size: twice the size mapped, the excess unmapped. */
	char *raw = mmap(NULL, 2 * (size_t)SLAB_BYTES, PROT_READ | PROT_WRITE,
	                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw == MAP_FAILED)
		return false;
	uintptr_t base = ((uintptr_t)raw + SLAB_BYTES - 1) & ~(uintptr_t)(SLAB_BYTES - 1);
	if (base > (uintptr_t)raw)
		munmap(raw, base - (uintptr_t)raw);
	munmap((char *)base + SLAB_BYTES, (uintptr_t)raw + 2 * (size_t)SLAB_BYTES - base - SLAB_BYTES);
	struct slab *s = (struct slab *)base;
	uint32_t n = (uint32_t)((SLAB_BYTES - SLAB_HEADER) / slot_bytes(pages));
	if (n > SLAB_MAX_SLOTS)
		n = SLAB_MAX_SLOTS;
	if (c->capclean < c->nslots + n) {
		size_t cap = c->capclean ? c->capclean : 64;
		while (cap < c->nslots + n)
			cap *= 2;
		void **q = realloc(c->clean, cap * sizeof(*q));
		if (q == NULL) {
			munmap(s, SLAB_BYTES);
			return false;
		}
		c->clean = q;
		c->capclean = cap;
	}
	if (!push_ptr((void ***)&c->slabs, &c->nslabs, &c->capslabs, s)) {
		munmap(s, SLAB_BYTES);
		return false;
	}
	s->magic = SLAB_MAGIC;
	s->pages = pages;
	s->nslots = n;
	c->nslots += n;
	for (uint32_t i = n; i-- > 0;)      /* the lowest slot first */
		c->clean[c->nclean++] = slot_addr(s, i);
	return true;
}

/* Clear the dirty slots of s (one mincore for the whole slab), making them
 * clean (under lock): each page back to what its class's image holds there,
 * or zero. Resident pages are rewritten in place and stay warm (an image
 * page the last owner did not change is only compared); a page not
 * resident is zero unless there is swap (dropped then), and an image page
 * is filled in. Clean slots beyond the class's quota give their pages back
 * instead (and are zero). */
static void clear_slab(struct engine_mem_pool *p, struct slab *s)
{
	struct mem_class *c = &p->cls[s->pages];
	size_t bytes = slot_bytes(s->pages), per = bytes / 4096;
	/* One mincore over the dirty slots' span only (freed slots cluster:
	 * the pool reuses LIFO), not the whole slab. */
	uint32_t first = s->nslots, last = 0;
	for (uint32_t i = 0; i < s->nslots; i++)
		if (bit(s->dirty, i)) {
			if (first == s->nslots)
				first = i;
			last = i;
		}
	if (first == s->nslots)
		return;
	size_t npages = (size_t)(last - first + 1) * per;
	unsigned char *vec = malloc(npages);
	bool known = vec != NULL && mincore(slot_addr(s, first), npages * 4096, vec) == 0;
	const unsigned char **img = c->img_page;
	for (uint32_t i = first; i <= last; i++) {
		if (!bit(s->dirty, i))
			continue;
		char *slot = slot_addr(s, i);
		if (!known || c->nclean >= p->max_per_class) {
			madvise(slot, bytes, MADV_DONTNEED);
			set_bit(s->imaged, i, false);
		} else {
			const unsigned char *v = vec + (size_t)(i - first) * per;
			for (size_t k = 0; k < per; k++) {
				char *page = slot + k * 4096;
				const unsigned char *want = img ? img[k] : NULL;
				if (want != NULL) {
					if (!(v[k] & 1) || memcmp(page, want, 4096) != 0)
						memcpy(page, want, 4096);
				} else if (v[k] & 1) {
					memset(page, 0, 4096);
				} else if (p->swap) {
					madvise(page, 4096, MADV_DONTNEED);
				}
			}
			set_bit(s->imaged, i, img != NULL);
		}
		/* capclean holds every slot of every slab (new_slab), so this fits. */
		c->clean[c->nclean++] = slot;
		c->ndirty--;
	}
	memset(s->dirty, 0, sizeof(s->dirty));
	free(vec);
}

/* Make a slot holding an image (img_page, by OS page) zero. */
static void unimage(const unsigned char **img_page, char *slot, uint32_t pages)
{
	for (size_t k = 0; k < slot_bytes(pages) / 4096; k++)
		if (img_page[k] != NULL)
			memset(slot + k * 4096, 0, 4096);
}

/* A memory of `pages` pages from the pool, or NULL: holding mod's image
 * (*imaged set) if the pool has such a slot, else zero. */
static void *pool_take(struct engine_mem_pool *p, uint32_t pages,
                       const engine_module *mod, bool *imaged)
{
	*imaged = false;
	if (p == NULL || pages == 0 || pages > POOL_PAGES)
		return NULL;
	struct mem_class *c = &p->cls[pages];
	void *m = NULL;
	bool was_imaged = false;
	const engine_module *img_mod;
	const unsigned char **img_page;
	pthread_mutex_lock(&p->lock);
	/* Freed slots are reused first, a batch at a time (one mincore for the
	 * batch): taking older clean slots while freed ones pile up dirty would
	 * cycle the churn through every slot the pool ever had and keep them
	 * all resident. */
	if ((c->nclean == 0 || c->ndirty >= DIRTY_BATCH) && c->dirty_slabs != NULL) {
		struct slab *s = c->dirty_slabs;
		c->dirty_slabs = s->next_dirty;
		s->listed = false;
		s->stale = false;
		clear_slab(p, s);
	}
	if (c->nclean == 0 && new_slab(p, pages))
		c->ncold = c->nclean;     /* a new slab's: never touched */
	if (c->nclean > 0) {
		m = c->clean[--c->nclean];
		if (c->nclean < c->low_water)
			c->low_water = c->nclean;
		if (c->nclean < c->ncold)
			c->ncold = c->nclean;
		size_t used = c->nslots - c->nclean - c->ndirty;
		if (used > c->peak_in_use)
			c->peak_in_use = used;
		struct slab *s = (struct slab *)((uintptr_t)m & ~(uintptr_t)(SLAB_BYTES - 1));
		uint32_t i = slot_index(s, m);
		was_imaged = bit(s->imaged, i);
		set_bit(s->imaged, i, false);
		set_owned(s, i, true);
	}
	img_mod = c->img_mod;       /* (under the lock: engine_mem_pool_forget) */
	img_page = c->img_page;
	pthread_mutex_unlock(&p->lock);
	if (was_imaged && mod != NULL && mod == img_mod)
		*imaged = true;
	else if (was_imaged)
		unimage(img_page, m, pages);
	return m;
}

/* Whether the memories of mod's instances may start from a slot holding
 * mod's image instead of zero plus its data segments: it has an image of
 * this size, and instantiation runs no guest code (a start function's
 * writes are in the image, and need not happen twice the same). */
static bool image_usable(const engine_module *mod, uint32_t pages)
{
	return mod != NULL &&
	       atomic_load_explicit(&mod->image_state, memory_order_acquire) == 2 &&
	       !(mod->abi->flags & WISP_MODULE_START_SECTION) &&
	       engine_image_os_pages(mod->image) == slot_bytes(pages) / 4096;
}

/* Class c's image from now on: mod's (under lock). */
static void claim_class(struct mem_class *c, const engine_module *mod, uint32_t pages)
{
	size_t per = slot_bytes(pages) / 4096;
	const unsigned char **v = calloc(per, sizeof(*v));
	if (v == NULL)
		return;                 /* stays zero-cleared */
	for (size_t k = 0; k < per; k++)
		v[k] = engine_image_page(mod->image, (uint32_t)k);
	c->img_page = v;
	c->img_mod = mod;
}

/* The slab a pooled memory's data lives in. */
static struct slab *slab_of(const void *data)
{
	struct slab *s = (struct slab *)((uintptr_t)data & ~(uintptr_t)(SLAB_BYTES - 1));
	assert(s->magic == SLAB_MAGIC);
	return s;
}

/* Back to the pool (freed by an instance of mod): to be cleared later,
 * while the class holds fewer than max_per_class warm slots; beyond, its
 * pages are dropped now and it is clean (zero) at once. Without the bound,
 * a pool would keep the pages of every memory ever freed resident until
 * reused: 100k hibernated processes (each gives its slot back) held 100k
 * slots' pages, more than doubling what a hibernated process costs. */
static void pool_give(struct engine_mem_pool *p, void *data, const engine_module *mod)
{
	struct slab *s = slab_of(data);
	uint32_t i = slot_index(s, data);
	struct mem_class *c = &p->cls[s->pages];
	bool usable = image_usable(mod, s->pages);
	pthread_mutex_lock(&p->lock);
	set_owned(s, i, false);
	if (usable && c->img_mod == NULL)
		claim_class(c, mod, s->pages);
	bool warm = c->nclean + c->ndirty < p->max_per_class;
	if (warm) {
		s->dirty[i / 64] |= 1ull << (i % 64);
		c->ndirty++;
		if (!s->listed) {
			s->listed = true;
			s->next_dirty = c->dirty_slabs;
			c->dirty_slabs = s;
		}
	}
	pthread_mutex_unlock(&p->lock);
	if (warm)
		return;
	madvise(data, slot_bytes(s->pages), MADV_DONTNEED);   /* (outside the lock) */
	pthread_mutex_lock(&p->lock);
	set_bit(s->imaged, i, false);
	c->clean[c->nclean++] = data;
	pthread_mutex_unlock(&p->lock);
}

void engine_mem_pool_forget(struct engine_mem_pool *p, const engine_module *mod)
{
	if (p == NULL || mod == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	for (uint32_t pages = 1; pages <= POOL_PAGES; pages++) {
		struct mem_class *c = &p->cls[pages];
		if (c->img_mod != mod)
			continue;
		/* Clean slots holding the image: zero (dropped). Dirty ones are
		 * cleared to zero when reused (clear_slab: no image now). */
		for (size_t i = 0; i < c->nslabs; i++) {
			struct slab *s = c->slabs[i];
			for (uint32_t k = 0; k < s->nslots; k++)
				if (bit(s->imaged, k)) {
					madvise(slot_addr(s, k), slot_bytes(pages), MADV_DONTNEED);
					set_bit(s->imaged, k, false);
				}
		}
		/* A pool_take may still read the array outside the lock (which
		 * pages to zero): kept until the pool goes (lost if no memory). */
		push_ptr(&p->old_img, &p->nold_img, &p->capold_img, (void *)c->img_page);
		c->img_page = NULL;
		c->img_mod = NULL;
	}
	pthread_mutex_unlock(&p->lock);
}

/* Trim class c (see engine_mem_pool_trim): the slots below its low point
 * that still hold pages are taken out of the stack (no one can take them
 * while their pages go), emptied, and put back at the bottom, cold. */
/* The freed slots of dirty slabs that were dirty at the last trim too (no
 * one needed a clean slot since: they wait for nothing), made clean and
 * cold (n->lock held; *out gets them, at most cap). */
static size_t take_stale_dirty(struct mem_class *c, void **out, size_t cap, bool any)
{
	size_t k = 0;
	for (struct slab **pp = &c->dirty_slabs; *pp != NULL && k < cap;) {
		struct slab *s = *pp;
		if (!s->stale && !any) {
			s->stale = true;
			pp = &s->next_dirty;
			continue;
		}
		for (uint32_t i = 0; i < s->nslots && k < cap; i++)
			if (bit(s->dirty, i)) {
				set_bit(s->dirty, i, false);
				c->ndirty--;
				out[k++] = slot_addr(s, i);
			}
		bool empty = true;
		for (uint32_t w = 0; w < SLAB_MAX_SLOTS / 64; w++)
			empty = empty && s->dirty[w] == 0;
		if (!empty) {
			pp = &s->next_dirty;
			continue;
		}
		*pp = s->next_dirty;
		s->listed = false;
		s->stale = false;
	}
	return k;
}

static size_t trim_class(struct engine_mem_pool *p, struct mem_class *c, uint32_t pages)
{
	pthread_mutex_lock(&p->lock);
	size_t lo = c->ncold, hi = c->low_water < c->nclean ? c->low_water : c->nclean;
	if (hi < lo)
		hi = lo;                  /* (all below the low point is cold already) */
	c->low_water = c->nclean;
	/* Warm slots beyond what the interval's peak in use (and a quarter
	 * more) needs go too: freed slots wait dirty until the clean ones run
	 * out, so once a burst has grown the pool, the churn would cycle
	 * through all of its slots and keep them all resident. */
	size_t keep = c->peak_in_use + c->peak_in_use / 4 + 16;
	c->peak_in_use = c->nslots - c->nclean - c->ndirty;
	size_t warm = c->nclean - lo + c->ndirty;
	size_t excess = warm > keep ? warm - keep : 0;
	size_t hi_ex = lo + (excess < c->nclean - lo ? excess : c->nclean - lo);
	if (hi_ex > hi)
		hi = hi_ex;
	size_t k = hi - lo;
	excess = excess > k ? excess - k : 0;
	size_t cap = k + c->ndirty;
	void **out = cap ? malloc(cap * sizeof(*out)) : NULL;
	if (out == NULL) {
		pthread_mutex_unlock(&p->lock);
		return 0;
	}
	lifo_take(c->clean, &c->nclean, lo, hi, out);
	c->low_water -= k;
	size_t stale = take_stale_dirty(c, out + k, cap - k, false);
	k += stale;
	if (excess > stale)
		k += take_stale_dirty(c, out + k, excess - stale < cap - k ? excess - stale : cap - k, true);
	pthread_mutex_unlock(&p->lock);
	for (size_t i = 0; i < k; i++)
		madvise(out[i], slot_bytes(pages), MADV_DONTNEED);   /* (outside the lock) */
	pthread_mutex_lock(&p->lock);
	/* Back at the bottom, above what was cold already (it may have
	 * shrunk meanwhile: these are cold too). */
	for (size_t i = 0; i < k; i++) {
		struct slab *s = slab_of(out[i]);
		set_bit(s->imaged, slot_index(s, out[i]), false);
	}
	lifo_put_cold(c->clean, &c->nclean, &c->ncold, out, k);
	c->low_water += k;
	pthread_mutex_unlock(&p->lock);
	free(out);
	return k;
}

size_t engine_mem_pool_trim(struct engine_mem_pool *p)
{
	size_t n = 0;
	for (uint32_t pages = 1; p != NULL && pages <= POOL_PAGES; pages++)
		n += trim_class(p, &p->cls[pages], pages);
	return n;
}

/* The module's own maximum; the owner's byte limit is checked by
 * engine_charge (it counts tables and host state too). */
static uint64_t limit_pages(uint32_t max_pages)
{
	return max_pages > MAX_PAGES ? MAX_PAGES : max_pages;
}

static void *map_bytes(uint64_t bytes)
{
	if (bytes == 0)
		return NULL;
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* A pooled memory growing past its slot: a new mapping of new_bytes gets
 * the slot's resident pages (the others read as zero), and the slot goes
 * back to the pool, to be cleared like any freed one. (Moving the slot's
 * pages out with mremap left a hole in the slab until it was mapped
 * again, and another thread's mmap or mremap could land in the hole
 * meanwhile: the refill then mapped over it, giving one range two owners.)
 * NULL if out of memory (the memory stays as it was). */
static void *leave_slot(engine_instance *in, wasm_rt_memory_t *mem, uint64_t new_bytes)
{
	unsigned char *q = map_bytes(new_bytes);
	if (q == NULL)
		return NULL;
	struct engine_mem_pool *pool = in->limits.mem_pool;   /* (pooled: set) */
	size_t n = mem->size / 4096;
	unsigned char *vec = malloc(n);
	/* (With swap a page not resident may hold data: copy them all.) */
	bool all = vec == NULL || pool->swap || mincore(mem->data, mem->size, vec) != 0;
	for (size_t k = 0; k < n; k++)
		if (all || (vec[k] & 1))
			memcpy(q + k * 4096, mem->data + k * 4096, 4096);
	free(vec);
	pool_give(pool, mem->data, in->mod);
	in->mem_pooled = false;
	return q;
}

void wasm_rt_allocate_memory(wasm_rt_memory_t *mem, uint32_t initial_pages,
                             uint32_t max_pages)
{
	engine_instance *in = engine_current();
	mem->data = NULL;
	mem->pages = 0;
	mem->size = 0;
	mem->max_pages = max_pages;
	uint64_t bytes = (uint64_t)initial_pages * PAGE_SIZE_WASM;
	if ((uint64_t)initial_pages > limit_pages(max_pages) || !engine_charge(in, bytes)) {
		if (in != NULL)
			engine_trap_msg(in, WASM_RT_TRAP_OOB,
			                "initial memory exceeds the memory limit");
		abort();
	}
	if (bytes != 0) {
		bool imaged;
		mem->data = pool_take(current_pool(), initial_pages, in ? in->mod : NULL, &imaged);
		if (in != NULL) {
			in->mem_pooled = mem->data != NULL;
			/* The generated code skips the data segments then. */
			in->vmctx->preloaded = imaged;
		}
		if (mem->data == NULL && (mem->data = map_bytes(bytes)) != NULL)
			count_own(in, (int64_t)bytes);
		if (mem->data == NULL) {
			engine_uncharge(in, bytes);
			if (in != NULL)
				engine_trap_msg(in, WASM_RT_TRAP_OOB,
				                "out of memory allocating linear memory");
			abort();
		}
	}
	mem->pages = initial_pages;
	if (in != NULL)
		in->mem_initial_pages = initial_pages;
	/* A 4 GiB memory has size 2^32, which does not fit; wasm2c's own
	 * runtime has the same limit. Cap at the largest representable size. */
	mem->size = bytes > UINT32_MAX ? UINT32_MAX : (uint32_t)bytes;
}

uint32_t wasm_rt_grow_memory(wasm_rt_memory_t *mem, uint32_t delta)
{
	uint32_t old = mem->pages;
	uint64_t want = (uint64_t)old + delta;
	if (delta == 0)
		return old;
	if (want > limit_pages(mem->max_pages))
		return UINT32_MAX;
	uint64_t new_bytes = want * PAGE_SIZE_WASM;
	if (new_bytes > UINT32_MAX)
		return UINT32_MAX;   /* see wasm_rt_allocate_memory */
	engine_instance *in = engine_current();
	if (!engine_charge(in, new_bytes - mem->size))
		return UINT32_MAX;
	void *p;
	bool pooled = in != NULL && in->mem_pooled;
	if (mem->data == NULL)
		p = map_bytes(new_bytes);
	else if (in != NULL && in->mem_pooled)
		p = leave_slot(in, mem, new_bytes);
	else if ((p = mremap(mem->data, mem->size, new_bytes, MREMAP_MAYMOVE)) == MAP_FAILED)
		p = NULL;
	if (p == NULL) {
		engine_uncharge(in, new_bytes - mem->size);
		return UINT32_MAX;
	}
	/* (A memory that left its slot is on its own now, all of it.) */
	count_own(in, (int64_t)new_bytes - (pooled ? 0 : (int64_t)old * PAGE_SIZE_WASM));
	mem->data = p;
	mem->pages = (uint32_t)want;
	mem->size = (uint32_t)new_bytes;
	return old;
}

void wasm_rt_free_memory(wasm_rt_memory_t *mem)
{
	/* A pool slot goes back to its slab (cleared later); a memory that
	 * grew has left its slab and is unmapped like any other. */
	engine_instance *in = engine_current();
	/* What was charged: the pages (a 4 GiB memory's size is capped at
	 * UINT32_MAX, one byte short; a hibernated memory, its slot back in
	 * the pool, keeps its pages and still counts). */
	uint64_t bytes = (uint64_t)mem->pages * PAGE_SIZE_WASM;
	engine_uncharge(in, bytes);
	if (mem->data != NULL && in != NULL && in->mem_pooled)
		pool_give(current_pool(), mem->data, in->mod);
	else if (mem->data != NULL && munmap(mem->data, bytes) == 0)
		count_own(in, -(int64_t)bytes);
	mem->data = NULL;
	mem->size = 0;
	mem->pages = 0;
}

/* ---- hibernation: a frozen instance's slot goes back to the pool ---- */

bool engine_memory_release(engine_instance *in)
{
	wasm_rt_memory_t *mem = engine_instance_memory(in);
	if (mem == NULL || mem->data == NULL || !in->mem_pooled || in->limits.mem_pool == NULL)
		return false;
	pool_give(in->limits.mem_pool, mem->data, in->mod);
	/* Nothing runs in a frozen instance; should anything look, its
	 * memory is empty (bounds checks fail) rather than a dangling pointer. */
	mem->data = NULL;
	mem->size = 0;
	in->mem_pooled = false;
	return true;
}

int engine_memory_reacquire(engine_instance *in, uint32_t size, bool *imaged)
{
	wasm_rt_memory_t *mem = engine_instance_memory(in);
	uint32_t pages = size / PAGE_SIZE_WASM;
	void *data = pool_take(in->limits.mem_pool, pages, in->mod, imaged);
	if (data == NULL)
		return -ENOMEM;
	mem->data = data;
	mem->size = size;
	in->mem_pooled = true;
	return 0;
}
