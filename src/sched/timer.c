/*
 * timer.c — timers per scheduler: a binary min-heap on deadline plus an id
 * map, under one mutex per scheduler.
 *
 * A timer is added on the scheduler thread that runs its task (so heaps
 * spread with the work) and fired by that scheduler's loop — or by the tick
 * thread when that scheduler's thread is stuck in a host call (sched_tick).
 * Cancelling may come from any thread: a timer with an id is found through
 * the id map of the scheduler the id names (its low bits), removed from the
 * heap at its recorded position, and handed to the canceller, who frees it
 * at once (a cancelled timer keeps nothing alive until its deadline).
 *
 * Ownership is decided under the scheduler's lock: firing pops a timer and
 * clears its owner before calling fire() with the lock released; cancelling
 * removes it only while it is still queued. So exactly one of the two gets
 * the timer, and fire() may free it. fire() runs with no lock held, so it
 * may add or cancel timers anywhere.
 *
 * The id map is chained through the timers themselves and resized both
 * ways (grown at load 1, shrunk below 1/8), so churn never leaves it large
 * and nothing ever scans it. Alternatives: one global id map (what wisp had:
 * a global lock on every send_after and a cancel that could not free the
 * payload, since the heap kept a pointer); a hierarchical timing wheel
 * (O(1) insert, but coarse resolution for the sub-millisecond timeouts
 * receive allows) — the heap is O(log n) in the timers of one scheduler.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "sched_impl.h"

#define ID_SCHED_BITS 10
_Static_assert((1u << ID_SCHED_BITS) >= SCHED_MAX, "timer ids name a scheduler");
#define IDS_MIN 16

uint64_t sched_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- the heap (under th->lock) ---- */

static void place(struct timer_heap *th, size_t i, struct sched_timer *t)
{
	th->h[i] = t;
	t->idx = (uint32_t)i;
}

static void sift_up(struct timer_heap *th, size_t i, struct sched_timer *t)
{
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (th->h[parent]->deadline <= t->deadline)
			break;
		place(th, i, th->h[parent]);
		i = parent;
	}
	place(th, i, t);
}

static void sift_down(struct timer_heap *th, size_t i, struct sched_timer *t)
{
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= th->n)
			break;
		if (c + 1 < th->n && th->h[c + 1]->deadline < th->h[c]->deadline)
			c++;
		if (t->deadline <= th->h[c]->deadline)
			break;
		place(th, i, th->h[c]);
		i = c;
	}
	place(th, i, t);
}

static void update_next(struct timer_heap *th)
{
	atomic_store_explicit(&th->next, th->n ? th->h[0]->deadline : UINT64_MAX,
	                      memory_order_release);
}

/* Remove the timer at position i. */
static void heap_remove(struct timer_heap *th, size_t i)
{
	struct sched_timer *last = th->h[--th->n];
	if (i < th->n) {
		if (i > 0 && last->deadline < th->h[(i - 1) / 2]->deadline)
			sift_up(th, i, last);
		else
			sift_down(th, i, last);
	}
	if (th->cap > 64 && th->n < th->cap / 4) {
		struct sched_timer **h = realloc(th->h, th->cap / 2 * sizeof(*h));
		if (h != NULL) {
			th->h = h;
			th->cap /= 2;
		}
	}
	update_next(th);
}

/* ---- the id map (under th->lock) ---- */

static size_t id_slot(const struct timer_heap *th, uint64_t id)
{
	/* ids are sequential above the scheduler bits: spread them. */
	return (size_t)((id >> ID_SCHED_BITS) * 0x9e3779b97f4a7c15ull >> 20) & (th->capids - 1);
}

static void ids_rehash(struct timer_heap *th, size_t cap)
{
	struct sched_timer **n = calloc(cap, sizeof(*n));
	if (n == NULL)
		return;   /* keep the old table: longer chains, still correct */
	struct sched_timer **old = th->ids;
	size_t oldcap = th->capids;
	th->ids = n;
	th->capids = cap;
	for (size_t i = 0; i < oldcap; i++) {
		struct sched_timer *t = old[i];
		while (t != NULL) {
			struct sched_timer *next = t->hnext;
			size_t j = id_slot(th, t->id);
			t->hnext = n[j];
			n[j] = t;
			t = next;
		}
	}
	free(old);
}

static int ids_put(struct timer_heap *th, struct sched_timer *t)
{
	if (th->capids == 0) {
		th->ids = calloc(IDS_MIN, sizeof(*th->ids));
		if (th->ids == NULL)
			return -ENOMEM;
		th->capids = IDS_MIN;
	} else if (th->nids >= th->capids) {
		ids_rehash(th, th->capids * 2);
	}
	size_t j = id_slot(th, t->id);
	t->hnext = th->ids[j];
	th->ids[j] = t;
	th->nids++;
	return 0;
}

static struct sched_timer *ids_del(struct timer_heap *th, uint64_t id)
{
	if (th->capids == 0)
		return NULL;
	struct sched_timer **pp = &th->ids[id_slot(th, id)];
	for (; *pp != NULL; pp = &(*pp)->hnext) {
		struct sched_timer *t = *pp;
		if (t->id == id) {
			*pp = t->hnext;
			t->hnext = NULL;
			th->nids--;
			if (th->capids > IDS_MIN && th->nids < th->capids / 8)
				ids_rehash(th, th->capids / 2);
			return t;
		}
	}
	return NULL;
}

/* ---- API ---- */

void timer_heap_init(struct timer_heap *th)
{
	pthread_mutex_init(&th->lock, NULL);
	atomic_init(&th->next, UINT64_MAX);
}

void timer_heap_destroy(struct timer_heap *th, void (*drop)(struct sched_timer *t))
{
	for (size_t i = 0; i < th->n; i++) {
		atomic_store(&th->h[i]->owner, NULL);
		if (drop != NULL)
			drop(th->h[i]);
	}
	free(th->h);
	free(th->ids);
	pthread_mutex_destroy(&th->lock);
}

int sched_timer_add(struct sched_timer *t, bool with_id)
{
	struct sched *s = sched_self();
	if (s == NULL)
		return -EINVAL;
	struct timer_heap *th = &s->timers;
	pthread_mutex_lock(&th->lock);
	if (th->n == th->cap) {
		size_t cap = th->cap ? th->cap * 2 : 64;
		struct sched_timer **h = realloc(th->h, cap * sizeof(*h));
		if (h == NULL) {
			pthread_mutex_unlock(&th->lock);
			return -ENOMEM;
		}
		th->h = h;
		th->cap = cap;
	}
	t->id = 0;
	t->hnext = NULL;
	if (with_id) {
		t->id = 1ull << 63 | ++th->next_seq << ID_SCHED_BITS | (uint64_t)s->id;
		if (ids_put(th, t) != 0) {
			pthread_mutex_unlock(&th->lock);
			return -ENOMEM;
		}
	}
	atomic_store_explicit(&t->owner, s, memory_order_relaxed);
	sift_up(th, th->n++, t);
	update_next(th);
	pthread_mutex_unlock(&th->lock);
	return 0;
}

struct sched_timer *sched_timer_take(struct sched_group *g, uint64_t id)
{
	uint64_t sid = id & ((1u << ID_SCHED_BITS) - 1);
	if (!(id >> 63) || sid >= (uint64_t)g->nsched)
		return NULL;
	struct timer_heap *th = &g->scheds[sid].timers;
	pthread_mutex_lock(&th->lock);
	struct sched_timer *t = ids_del(th, id);
	if (t != NULL) {
		heap_remove(th, t->idx);
		atomic_store_explicit(&t->owner, NULL, memory_order_relaxed);
	}
	pthread_mutex_unlock(&th->lock);
	return t;
}

bool sched_timer_cancel(struct sched_timer *t)
{
	struct sched *s = atomic_load_explicit(&t->owner, memory_order_acquire);
	if (s == NULL)
		return false;
	struct timer_heap *th = &s->timers;
	bool removed = false;
	pthread_mutex_lock(&th->lock);
	if (atomic_load_explicit(&t->owner, memory_order_relaxed) == s) {
		if (t->id != 0)
			ids_del(th, t->id);
		heap_remove(th, t->idx);
		atomic_store_explicit(&t->owner, NULL, memory_order_relaxed);
		removed = true;
	}
	pthread_mutex_unlock(&th->lock);
	return removed;
}

/* Pop one due timer (owner cleared) and its fire function, read under the
 * lock (its owner may re-arm it as soon as the lock is released), or NULL. */
static struct sched_timer *pop_due(struct timer_heap *th, uint64_t now,
                                   void (**fire)(struct sched_timer *))
{
	if (atomic_load_explicit(&th->next, memory_order_acquire) > now)
		return NULL;
	pthread_mutex_lock(&th->lock);
	struct sched_timer *t = NULL;
	if (th->n > 0 && th->h[0]->deadline <= now) {
		t = th->h[0];
		*fire = t->fire;
		if (t->id != 0)
			ids_del(th, t->id);
		heap_remove(th, 0);
		atomic_store_explicit(&t->owner, NULL, memory_order_relaxed);
	}
	pthread_mutex_unlock(&th->lock);
	return t;
}

int timer_heap_fire(struct timer_heap *th, int max)
{
	uint64_t now = sched_now_ns();
	int fired = 0;
	struct sched_timer *t;
	void (*fire)(struct sched_timer *);
	while (fired < max && (t = pop_due(th, now, &fire)) != NULL) {
		fire(t);    /* may free or re-arm t */
		fired++;
	}
	return fired;
}
