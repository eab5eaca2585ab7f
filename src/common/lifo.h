/*
 * lifo.h — the free lists of wisp's pools (fiber stacks, memory slots) are
 * LIFO stacks of pointers whose bottom part may be *cold* (its pages given
 * back): v[0..ncold) cold, v[ncold..n) warm, taken from the top. Trimming
 * takes a range out (so no one can take those entries while their pages
 * go, outside the pool's lock), then puts them back at the bottom, cold.
 * These two steps, shared by stack.c and memory.c; the caller holds its
 * pool's lock around each.
 */
#ifndef WISP_LIFO_H
#define WISP_LIFO_H

#include <stddef.h>
#include <string.h>

/* Move v[lo..hi) to out and close the gap; *n shrinks by hi - lo. */
static inline void lifo_take(void **v, size_t *n, size_t lo, size_t hi, void **out)
{
	memcpy(out, v + lo, (hi - lo) * sizeof(*v));
	memmove(v + lo, v + hi, (*n - hi) * sizeof(*v));
	*n -= hi - lo;
}

/* Put in[0..k) back just above the cold part (which may have shrunk
 * meanwhile), cold themselves now. (v has room: it held them before.) */
static inline void lifo_put_cold(void **v, size_t *n, size_t *ncold, void **in, size_t k)
{
	size_t at = *ncold < *n ? *ncold : *n;
	memmove(v + at + k, v + at, (*n - at) * sizeof(*v));
	memcpy(v + at, in, k * sizeof(*v));
	*n += k;
	*ncold = at + k;
}

#endif
