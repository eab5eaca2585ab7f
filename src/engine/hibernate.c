/*
 * hibernate.c — giving an idle instance's linear memory back to the kernel,
 * and restoring it.
 *
 * The module's image: right after its first instantiation, before any
 * guest code has run, an instance's memory holds exactly what every new
 * instance starts with (data segments applied, the rest zero). Its nonzero
 * pages are copied once into the module's image; every later instance
 * starts the same (instantiation is deterministic: wasm2c's generated code
 * applies the segments).
 *
 * Freezing an instance (its process waits, see src/sched): every resident
 * page of its memory is compared with what the page holds in the image (or
 * zero beyond it). The differences are encoded compactly — runs of changed
 * bytes, or the raw page when that is smaller — and the whole memory range
 * is dropped with one MADV_DONTNEED (the mapping stays; pages fault back in
 * as zero). A waiting process typically has a few dirty pages with a few
 * hundred changed bytes each (its shadow stack's top, allocator state), so
 * a frozen memory costs hundreds of bytes instead of pages.
 *
 * Thawing: the image's pages are copied back, then the differences are
 * applied on top; pages that were zero stay unmapped until touched.
 *
 * Alternatives rejected: a copy-on-write mapping of the image per memory
 * (memfd, MAP_PRIVATE) shares clean pages for free but costs a kernel
 * mapping or two per process, and vm.max_map_count (65530) then caps a run
 * near 30k processes; userfaultfd fills pages lazily but needs privilege
 * (vm.unprivileged_userfaultfd is 0 on Debian) for faults the kernel takes
 * on the guest's behalf (a read() into guest memory), and shares nothing.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>

#include "engine_impl.h"

#define OS_PAGE 4096u
#define RUN_GAP 8           /* merge runs closer than this */

struct engine_image {
	uint32_t npages;        /* nonzero pages */
	uint32_t *index;        /* their page numbers, ascending */
	unsigned char *pages;   /* npages * OS_PAGE bytes */
	uint32_t mem_pages;     /* OS pages the memory had when snapshotted */
};

/* A frozen memory: a sequence of records, one per page that differs from
 * its reference (image page or zero):
 *   u32 page, u16 kind (0: runs, 1: raw), u16 count (runs; raw: 0)
 *   runs: u16 offset, u16 length, bytes...; raw: OS_PAGE bytes. */
struct engine_frozen {
	size_t len;
	uint64_t work;          /* bytes freezing looked at and thawing will
	                           write: what the process is charged for */
	size_t mem_size;        /* the memory's bytes when frozen (it cannot grow
	                           while frozen: nothing runs) */
	bool released;          /* its slot went back to the pool */
	unsigned char data[];
};

static const unsigned char zero_page[OS_PAGE];

/* The memory's length in bytes: its pages (mem->size of a 4 GiB memory is
 * capped at UINT32_MAX, one byte short of its last page). */
static size_t mem_bytes(const wasm_rt_memory_t *mem)
{
	return (size_t)mem->pages * 65536u;
}

static bool all_zero(const unsigned char *p)
{
	return memcmp(p, zero_page, OS_PAGE) == 0;
}

/* ---- the module's image ---- */

void engine_image_free(struct engine_image *img)
{
	if (img == NULL)
		return;
	free(img->index);
	free(img->pages);
	free(img);
}

/* Snapshot in's memory as the module's image, once (the first instance
 * after instantiation; thread-safe). */
void engine_image_capture(engine_instance *in)
{
	engine_module *m = in->mod;
	if (atomic_load_explicit(&m->image_state, memory_order_acquire) != 0)
		return;
	int expect = 0;
	if (!atomic_compare_exchange_strong(&m->image_state, &expect, 1))
		return;              /* another instance captures it */
	wasm_rt_memory_t *mem = engine_instance_memory(in);
	struct engine_image *img = calloc(1, sizeof(*img));
	uint32_t n = mem ? (uint32_t)(mem_bytes(mem) / OS_PAGE) : 0;
	uint32_t nz = 0;
	for (uint32_t i = 0; i < n; i++)
		nz += !all_zero(mem->data + (size_t)i * OS_PAGE);
	if (img != NULL) {
		img->index = malloc((nz ? nz : 1) * sizeof(*img->index));
		img->pages = malloc((size_t)(nz ? nz : 1) * OS_PAGE);
		img->mem_pages = n;
	}
	if (img == NULL || img->index == NULL || img->pages == NULL) {
		engine_image_free(img);
		atomic_store(&m->image_state, 3);   /* none: nothing hibernates */
		return;
	}
	for (uint32_t i = 0; i < n; i++) {
		const unsigned char *p = mem->data + (size_t)i * OS_PAGE;
		if (all_zero(p))
			continue;
		img->index[img->npages] = i;
		memcpy(img->pages + (size_t)img->npages * OS_PAGE, p, OS_PAGE);
		img->npages++;
	}
	m->image = img;
	atomic_store_explicit(&m->image_state, 2, memory_order_release);
}

uint32_t engine_image_os_pages(const struct engine_image *img)
{
	return img->mem_pages;
}

/* The image's copy of page i, or NULL (zero). */
const unsigned char *engine_image_page(const struct engine_image *img, uint32_t i)
{
	uint32_t lo = 0, hi = img->npages;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (img->index[mid] < i)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < img->npages && img->index[lo] == i ? img->pages + (size_t)lo * OS_PAGE : NULL;
}

/* ---- freezing ---- */

struct buf {
	unsigned char *p;
	size_t len, cap;
	bool oom;
};

static void put(struct buf *b, const void *src, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 1024;
		while (cap < b->len + n)
			cap *= 2;
		unsigned char *q = realloc(b->p, cap);
		if (q == NULL) {
			b->oom = true;
			return;
		}
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, src, n);
	b->len += n;
}

static void put16(struct buf *b, uint16_t v)
{
	put(b, &v, 2);
}

/* The next run of bytes where cur differs from ref, at or after *i: its
 * [start, end) (runs closer than RUN_GAP merge); false when none is left.
 * *i moves past it. */
static bool next_run(const unsigned char *cur, const unsigned char *ref, uint32_t *i,
                     uint32_t *start, uint32_t *end)
{
	while (*i < OS_PAGE && cur[*i] == ref[*i])
		(*i)++;
	if (*i >= OS_PAGE)
		return false;
	*start = *i;
	*end = *i + 1;
	for (uint32_t j = *end, same = 0; j < OS_PAGE && same < RUN_GAP; j++) {
		if (cur[j] != ref[j]) {
			*end = j + 1;
			same = 0;
		} else {
			same++;
		}
	}
	*i = *end;
	return true;
}

/* Encode page `page` (cur) against ref: runs of differing bytes, or raw. */
static void encode_page(struct buf *b, uint32_t page, const unsigned char *cur,
                        const unsigned char *ref)
{
	/* First pass: the runs and their encoded size. */
	size_t size = 0;
	uint16_t count = 0;
	uint32_t i = 0, start, end;
	while (next_run(cur, ref, &i, &start, &end)) {
		size += 4 + (end - start);
		count++;
	}
	put(b, &page, 4);
	if (size >= OS_PAGE) {
		put16(b, 1);
		put16(b, 0);
		put(b, cur, OS_PAGE);
		return;
	}
	put16(b, 0);
	put16(b, count);
	for (i = 0; next_run(cur, ref, &i, &start, &end);) {
		put16(b, (uint16_t)start);
		put16(b, (uint16_t)(end - start));
		put(b, cur + start, end - start);
	}
}

int engine_instance_freeze(engine_instance *in, bool may_move, struct engine_frozen **out)
{
	*out = NULL;
	engine_module *m = in->mod;
	wasm_rt_memory_t *mem = engine_instance_memory(in);
	if (mem == NULL || mem->pages == 0)
		return 0;
	if (atomic_load_explicit(&m->image_state, memory_order_acquire) != 2)
		return -EAGAIN;
	const struct engine_image *img = m->image;
	size_t bytes = mem_bytes(mem);
	uint32_t n = (uint32_t)(bytes / OS_PAGE);
	unsigned char *resident = malloc(n);
	if (resident == NULL)
		return -ENOMEM;
	if (mincore(mem->data, bytes, resident) != 0) {
		free(resident);
		return -errno;
	}
	struct buf b = { 0 };
	uint64_t work = n;      /* the residency vector */
	for (uint32_t i = 0; i < n && !b.oom; i++) {
		/* Not resident: never touched or dropped, so zero — unless there
		 * is swap, where a page out of memory still holds data: read it.
		 * A zero page still differs from a nonzero image page (the image
		 * is the first instance's memory after its start function, which
		 * may have written where this instance never did): thaw would
		 * otherwise put the image's bytes there. */
		const unsigned char *ref = engine_image_page(img, i);
		if (!(resident[i] & 1) && !m->swap && ref == NULL)
			continue;
		const unsigned char *cur = mem->data + (size_t)i * OS_PAGE;
		if (ref == NULL)
			ref = zero_page;
		work += OS_PAGE;
		if (memcmp(cur, ref, OS_PAGE) != 0)
			encode_page(&b, i, cur, ref);
	}
	free(resident);
	struct engine_frozen *f = b.oom ? NULL : malloc(sizeof(*f) + b.len);
	if (f == NULL) {
		free(b.p);
		return -ENOMEM;    /* nothing dropped: it stays awake */
	}
	f->len = b.len;
	f->mem_size = bytes;
	/* Thaw copies the image's pages back, then the record. */
	for (uint32_t k = 0; k < img->npages && img->index[k] < n; k++)
		work += OS_PAGE;
	f->work = work + 2 * b.len;
	if (b.len)
		memcpy(f->data, b.p, b.len);
	free(b.p);
	/* A pooled memory's slot goes back to the pool, cleared in a batch
	 * and reused warm; waking takes a warm slot again (no page faults,
	 * which cost more than the rest of a wake-up). Any other memory
	 * drops its pages in place. */
	f->released = may_move && engine_memory_release(in);
	if (!f->released)
		madvise(mem->data, bytes, MADV_DONTNEED);
	*out = f;
	return 0;
}

int engine_instance_thaw(engine_instance *in, struct engine_frozen *f)
{
	if (f == NULL)
		return 0;
	wasm_rt_memory_t *mem = engine_instance_memory(in);
	const struct engine_image *img = in->mod->image;
	bool imaged = false;
	if (f->released && engine_memory_reacquire(in, (uint32_t)f->mem_size, &imaged) != 0) {
		free(f);
		return -ENOMEM;    /* its memory stays empty: see memory.c */
	}
	uint32_t n = (uint32_t)(f->mem_size / OS_PAGE);
	for (uint32_t k = 0; !imaged && k < img->npages && img->index[k] < n; k++)
		memcpy(mem->data + (size_t)img->index[k] * OS_PAGE, img->pages + (size_t)k * OS_PAGE,
		       OS_PAGE);
	const unsigned char *p = f->data, *end = f->data + f->len;
	while (p < end) {
		uint32_t page;
		uint16_t kind, count;
		memcpy(&page, p, 4);
		memcpy(&kind, p + 4, 2);
		memcpy(&count, p + 6, 2);
		p += 8;
		unsigned char *dst = mem->data + (size_t)page * OS_PAGE;
		if (kind == 1) {
			memcpy(dst, p, OS_PAGE);
			p += OS_PAGE;
			continue;
		}
		for (uint16_t r = 0; r < count; r++) {
			uint16_t off, len;
			memcpy(&off, p, 2);
			memcpy(&len, p + 2, 2);
			memcpy(dst + off, p + 4, len);
			p += 4 + len;
		}
	}
	free(f);
	return 0;
}

size_t engine_frozen_bytes(const struct engine_frozen *f)
{
	return f ? sizeof(*f) + f->len : 0;
}

uint64_t engine_frozen_work(const struct engine_frozen *f)
{
	return f ? f->work : 0;
}
