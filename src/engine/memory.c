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
 * instances a pool. A freed memory of at most POOL_PAGES wasm pages is kept
 * by its page count and handed to the next instance asking for that many
 * initial pages. It must read as zeros again: only pages the kernel has
 * resident can hold anything, so those (mincore) are cleared with memset and
 * stay warm. A spawn then costs no mmap/munmap and no first-touch page
 * faults, which cost 10-28 us each on this kind of machine — more than the
 * rest of a spawn together.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "engine_impl.h"

#define PAGE_SIZE_WASM 65536u
#define MAX_PAGES 65536u
#define POOL_PAGES 16u            /* memories up to 1 MiB are pooled */

struct engine_mem_pool {
	pthread_mutex_t lock;
	size_t max_per_class;
	bool swap;                    /* swap was on when the pool was made */
	struct {
		void **v;
		size_t n, cap;
	} cls[POOL_PAGES + 1];        /* by page count */
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
		for (size_t i = 0; i < p->cls[c].n; i++)
			munmap(p->cls[c].v[i], (size_t)c * PAGE_SIZE_WASM);
		free(p->cls[c].v);
	}
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static struct engine_mem_pool *current_pool(void)
{
	engine_instance *in = engine_current();
	return in ? in->limits.mem_pool : NULL;
}

static void *pool_take(struct engine_mem_pool *p, uint32_t pages)
{
	void *m = NULL;
	if (p == NULL || pages == 0 || pages > POOL_PAGES)
		return NULL;
	pthread_mutex_lock(&p->lock);
	if (p->cls[pages].n > 0)
		m = p->cls[pages].v[--p->cls[pages].n];
	pthread_mutex_unlock(&p->lock);
	return m;
}

/* Zero what can be non-zero: the resident pages, and — only where there is
 * swap — the non-resident ones (a page in swap is not resident but holds
 * data). Without swap a non-resident anonymous page was never written and
 * reads as zero, and leaving it alone saves an madvise whose TLB shootdown
 * across CPUs cost more than everything else in a spawn (skynet: 3x). */
static void scrub(void *data, size_t bytes, bool swap)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t n = bytes / page;
	unsigned char vec[POOL_PAGES * PAGE_SIZE_WASM / 4096];
	if (n > sizeof(vec) || mincore(data, bytes, vec) != 0) {
		madvise(data, bytes, MADV_DONTNEED);
		return;
	}
	/* Resident pages are cleared in place (they stay warm); a page that is
	 * not resident may still hold data in swap, so those runs are dropped. */
	for (size_t i = 0; i < n;) {
		size_t j = i;
		bool resident = vec[i] & 1;
		while (j < n && (bool)(vec[j] & 1) == resident)
			j++;
		if (resident)
			memset((char *)data + i * page, 0, (j - i) * page);
		else if (swap)
			madvise((char *)data + i * page, (j - i) * page, MADV_DONTNEED);
		i = j;
	}
}

/* Keep a memory for reuse; false if the pool will not take it. */
static bool pool_give(struct engine_mem_pool *p, void *data, uint32_t pages)
{
	if (p == NULL || pages == 0 || pages > POOL_PAGES)
		return false;
	pthread_mutex_lock(&p->lock);
	bool room = p->cls[pages].n < p->max_per_class;
	pthread_mutex_unlock(&p->lock);
	if (!room)
		return false;
	scrub(data, (size_t)pages * PAGE_SIZE_WASM, p->swap);
	pthread_mutex_lock(&p->lock);
	bool ok = false;
	if (p->cls[pages].n < p->max_per_class) {
		if (p->cls[pages].n == p->cls[pages].cap) {
			size_t cap = p->cls[pages].cap ? p->cls[pages].cap * 2 : 64;
			void **v = realloc(p->cls[pages].v, cap * sizeof(*v));
			if (v != NULL) {
				p->cls[pages].v = v;
				p->cls[pages].cap = cap;
			}
		}
		if (p->cls[pages].n < p->cls[pages].cap) {
			p->cls[pages].v[p->cls[pages].n++] = data;
			ok = true;
		}
	}
	pthread_mutex_unlock(&p->lock);
	return ok;
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
		mem->data = pool_take(current_pool(), initial_pages);
		if (mem->data == NULL)
			mem->data = map_bytes(bytes);
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
	if (mem->data == NULL)
		p = map_bytes(new_bytes);
	else if ((p = mremap(mem->data, mem->size, new_bytes, MREMAP_MAYMOVE)) == MAP_FAILED)
		p = NULL;
	if (p == NULL) {
		engine_uncharge(in, new_bytes - mem->size);
		return UINT32_MAX;
	}
	mem->data = p;
	mem->pages = (uint32_t)want;
	mem->size = (uint32_t)new_bytes;
	return old;
}

void wasm_rt_free_memory(wasm_rt_memory_t *mem)
{
	/* Only a memory still at its initial size is pooled: the pool is
	 * taken from by initial size, and a grown one would wait forever. */
	engine_instance *in = engine_current();
	/* What was charged and mapped: the pages (a 4 GiB memory's size is
	 * capped at UINT32_MAX, one byte short). */
	uint64_t bytes = (uint64_t)mem->pages * PAGE_SIZE_WASM;
	engine_uncharge(in, bytes);
	bool poolable = in != NULL && mem->pages == in->mem_initial_pages;
	if (mem->data != NULL &&
	    !(poolable && pool_give(current_pool(), mem->data, mem->pages)))
		munmap(mem->data, bytes);
	mem->data = NULL;
	mem->size = 0;
	mem->pages = 0;
}
