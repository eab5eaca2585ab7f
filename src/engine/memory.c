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
 * The limit a memory may grow to is the smaller of the module's declared
 * maximum and the instance's max_memory (engine_limits). A failed growth
 * returns UINT32_MAX as wasm requires (memory.grow yields -1); it never traps.
 *
 * Alternative rejected: reserving the full maximum up front (PROT_NONE) and
 * mprotect()ing on growth avoids moves, but a 4 GiB reservation per memory
 * caps the process at ~32k memories in a 47-bit address space.
 */
#include <errno.h>
#include <sys/mman.h>

#include "engine_impl.h"

#define PAGE_SIZE_WASM 65536u
#define MAX_PAGES 65536u

static uint64_t limit_pages(uint32_t max_pages)
{
	engine_instance *in = engine_current();
	uint64_t limit = max_pages;
	if (limit > MAX_PAGES)
		limit = MAX_PAGES;
	if (in != NULL && in->limits.max_memory != 0) {
		uint64_t lim = in->limits.max_memory / PAGE_SIZE_WASM;
		if (lim < limit)
			limit = lim;
	}
	return limit;
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
	if ((uint64_t)initial_pages > limit_pages(max_pages)) {
		if (in != NULL)
			engine_trap_msg(in, WASM_RT_TRAP_OOB,
			                "initial memory exceeds the memory limit");
		abort();
	}
	uint64_t bytes = (uint64_t)initial_pages * PAGE_SIZE_WASM;
	if (bytes != 0) {
		mem->data = map_bytes(bytes);
		if (mem->data == NULL) {
			if (in != NULL)
				engine_trap_msg(in, WASM_RT_TRAP_OOB,
				                "out of memory allocating linear memory");
			abort();
		}
	}
	mem->pages = initial_pages;
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
	void *p;
	if (mem->data == NULL) {
		p = map_bytes(new_bytes);
		if (p == NULL)
			return UINT32_MAX;
	} else {
		p = mremap(mem->data, mem->size, new_bytes, MREMAP_MAYMOVE);
		if (p == MAP_FAILED)
			return UINT32_MAX;
	}
	mem->data = p;
	mem->pages = (uint32_t)want;
	mem->size = (uint32_t)new_bytes;
	return old;
}

void wasm_rt_free_memory(wasm_rt_memory_t *mem)
{
	if (mem->data != NULL)
		munmap(mem->data, mem->size);
	mem->data = NULL;
	mem->size = 0;
	mem->pages = 0;
}
