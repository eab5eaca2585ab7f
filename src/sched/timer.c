/*
 * timer.c — timers per scheduler: a hierarchical timing wheel plus an id
 * map, under one mutex per scheduler.
 *
 * A timer is added on the scheduler thread that runs its task (so wheels
 * spread with the work) and fired by that scheduler's loop — or by the tick
 * thread when that scheduler's thread is stuck in a host call (sched_tick).
 * Cancelling may come from any thread: a timer with an id is found through
 * the id map of the scheduler the id names (its low bits), unlinked from its
 * slot, and handed to the canceller, who frees it at once (a cancelled timer
 * keeps nothing alive until its deadline).
 *
 * Ownership is decided under the scheduler's lock: firing takes a timer off
 * its slot and clears its owner before calling fire() with the lock
 * released; cancelling removes it only while it is still queued. So exactly
 * one of the two gets the timer, and fire() may free it. fire() runs with no
 * lock held, so it may add or cancel timers anywhere.
 *
 * The wheel (Varghese and Lauck's hierarchical timing wheels, as the Linux
 * kernel used them): time is counted in ticks of 2^16 ns (65.5 µs); level 0
 * has 4096 slots, one per tick (268 ms: the sleeps and timeouts processes
 * use most never cascade); levels 1-3 have 256 slots each, every slot
 * covering 2^(12+8(l-1)) ticks, so the four levels reach 2^36 ticks (52
 * days) ahead — a timer further out goes in the last slot and is put back
 * when it comes up. A timer goes in the slot of its deadline's tick at the lowest
 * level that reaches it; when level 0 wraps, the next slot of level 1 is
 * spread over level 0, and so on up. Adding and cancelling are O(1) (a
 * doubly linked slot list and a bitmap of non-empty slots); firing is O(1)
 * per timer plus the cascades, which move each timer at most once per
 * level. Timers of one tick fire together: a slot's wake-ups are one batch.
 * A timer's exact deadline is kept: one due later within its tick stays
 * until then, so a timer never fires early and at most a tick late.
 *
 * Alternative replaced: a binary heap per scheduler, O(log n) with a cache
 * miss per level; with 100k sleeping processes its sift-downs were a fifth
 * of the CPU a wake-up cost.
 *
 * The id map is chained through the timers themselves and resized both
 * ways (grown at load 1, shrunk below 1/8), so churn never leaves it large
 * and nothing ever scans it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "sched_impl.h"

#define ID_SCHED_BITS 10
_Static_assert((1u << ID_SCHED_BITS) >= SCHED_MAX, "timer ids name a scheduler");
_Static_assert(WHEEL_SLOTS == 1u << 12 && WHEEL_UPPER_SLOTS == 1u << 8,
               "the levels are L0_BITS and LN_BITS wide");
#define ID_COUNT_MASK ((1ull << (32 - ID_SCHED_BITS)) - 1)   /* then 31 random bits */
#define IDS_MIN 16

#define TICK_SHIFT 16                 /* a tick is 65.536 µs */
#define L0_BITS 12
#define LN_BITS 8
#define LN_SLOTS (1u << LN_BITS)
/* The first tick level l (>= 1) does not reach from cur: bits below. */
#define LEVEL_SHIFT(l) (L0_BITS + LN_BITS * ((l) - 1))

uint64_t sched_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- the wheel (under w->lock) ---- */

static uint64_t tick_of(uint64_t ns)
{
	return ns >> TICK_SHIFT;
}

static struct sched_timer **slot_head(struct timer_wheel *w, unsigned lvl, unsigned slot)
{
	return lvl == 0 ? &w->l0[slot] : &w->upper[lvl - 1][slot];
}

static uint64_t *occ_word(struct timer_wheel *w, unsigned lvl, unsigned slot)
{
	return lvl == 0 ? &w->occ0[slot >> 6] : &w->occ_upper[lvl - 1][slot >> 6];
}

static void occupy(struct timer_wheel *w, unsigned lvl, unsigned slot, bool on)
{
	uint64_t bit = 1ull << (slot & 63);
	if (on)
		*occ_word(w, lvl, slot) |= bit;
	else
		*occ_word(w, lvl, slot) &= ~bit;
}

/* Link t into the slot its deadline belongs in, seen from w->cur. */
static void place(struct timer_wheel *w, struct sched_timer *t)
{
	uint64_t tick = tick_of(t->deadline);
	if (tick < w->cur)
		tick = w->cur;            /* due already: the next tick processed */
	uint64_t delta = tick - w->cur;
	unsigned lvl, slot;
	if (delta < WHEEL_SLOTS) {
		lvl = 0;
		slot = (unsigned)(tick & (WHEEL_SLOTS - 1));
	} else {
		lvl = 1;
		while (lvl < WHEEL_LEVELS - 1 && delta >= (1ull << LEVEL_SHIFT(lvl + 1)))
			lvl++;
		if (delta >= (1ull << LEVEL_SHIFT(WHEEL_LEVELS)))
			tick = w->cur + (1ull << LEVEL_SHIFT(WHEEL_LEVELS)) - 1;   /* re-placed later */
		slot = (unsigned)((tick >> LEVEL_SHIFT(lvl)) & (LN_SLOTS - 1));
	}
	struct sched_timer **head = slot_head(w, lvl, slot);
	t->next = *head;
	if (*head != NULL)
		(*head)->pprev = &t->next;
	t->pprev = head;
	*head = t;
	t->where = lvl << 16 | slot;
	occupy(w, lvl, slot, true);
}

static void unlink_timer(struct timer_wheel *w, struct sched_timer *t)
{
	*t->pprev = t->next;
	if (t->next != NULL)
		t->next->pprev = t->pprev;
	unsigned lvl = t->where >> 16, slot = t->where & 0xffff;
	if (*slot_head(w, lvl, slot) == NULL)
		occupy(w, lvl, slot, false);
	t->next = NULL;
	t->pprev = NULL;
}

/* Spread level lvl's slot for the current position over the levels below. */
static void cascade(struct timer_wheel *w, unsigned lvl)
{
	unsigned slot = (unsigned)((w->cur >> LEVEL_SHIFT(lvl)) & (LN_SLOTS - 1));
	struct sched_timer *t = *slot_head(w, lvl, slot);
	*slot_head(w, lvl, slot) = NULL;
	occupy(w, lvl, slot, false);
	while (t != NULL) {
		struct sched_timer *next = t->next;
		place(w, t);
		t = next;
	}
}

/* The first occupied level-0 slot at or after `from` within this round of
 * 256, or -1. */
static int next_l0(const struct timer_wheel *w, unsigned from)
{
	for (unsigned word = from >> 6; word < WHEEL_SLOTS / 64; word++) {
		uint64_t bits = w->occ0[word];
		if (word == from >> 6)
			bits &= ~0ull << (from & 63);
		if (bits)
			return (int)(word * 64 + (unsigned)__builtin_ctzll(bits));
	}
	return -1;
}


/* Move cur to the next tick, cascading higher levels at their boundaries. */
static void advance(struct timer_wheel *w)
{
	w->cur++;
	for (unsigned lvl = 1; lvl < WHEEL_LEVELS; lvl++) {
		if (w->cur & ((1ull << LEVEL_SHIFT(lvl)) - 1))
			break;
		cascade(w, lvl);
	}
}

/* Skip ticks with nothing to do, up to `target` (never past a cascade
 * boundary, where higher levels come down). */
static void skip_empty(struct timer_wheel *w, uint64_t target)
{
	while (w->cur < target) {
		unsigned pos = (unsigned)(w->cur & (WHEEL_SLOTS - 1));
		if (w->occ0[pos >> 6] & (1ull << (pos & 63)))
			return;
		int nxt = next_l0(w, pos);
		uint64_t round_end = (w->cur | (WHEEL_SLOTS - 1)) + 1;
		uint64_t to = nxt >= 0 ? (w->cur & ~(uint64_t)(WHEEL_SLOTS - 1)) + (uint64_t)nxt
		                       : round_end;
		if (to > target)
			to = target;
		if (to == round_end) {
			w->cur = round_end - 1;
			advance(w);           /* cascades at the boundary */
		} else {
			w->cur = to;
		}
	}
}

/* The earliest deadline, or a lower bound of it (UINT64_MAX: none). */
static uint64_t earliest(const struct timer_wheel *w)
{
	if (w->n == 0)
		return UINT64_MAX;
	unsigned pos = (unsigned)(w->cur & (WHEEL_SLOTS - 1));
	int s = next_l0(w, pos);
	if (s >= 0) {
		uint64_t best = UINT64_MAX;
		for (const struct sched_timer *t = w->l0[s]; t; t = t->next)
			if (t->deadline < best)
				best = t->deadline;
		return best;
	}
	/* Nothing in the rest of this round: the next cascade, at the latest. */
	/* Whether upper levels hold timers or only level 0 slots before cur's
	 * (the next round) do, nothing is due before the round ends. */
	uint64_t round_end = (w->cur | (WHEEL_SLOTS - 1)) + 1;
	return round_end << TICK_SHIFT;
}

static void update_next(struct timer_wheel *w)
{
	atomic_store_explicit(&w->next, earliest(w), memory_order_release);
}

/* ---- the id map (under w->lock) ---- */

static size_t id_slot(const struct timer_wheel *w, uint64_t id)
{
	/* (a count, and random bits, above the scheduler bits: spread them) */
	return (size_t)((id >> ID_SCHED_BITS) * 0x9e3779b97f4a7c15ull >> 20) & (w->capids - 1);
}

static void ids_rehash(struct timer_wheel *w, size_t cap)
{
	struct sched_timer **n = calloc(cap, sizeof(*n));
	if (n == NULL)
		return;   /* keep the old table: longer chains, still correct */
	struct sched_timer **old = w->ids;
	size_t oldcap = w->capids;
	w->ids = n;
	w->capids = cap;
	for (size_t i = 0; i < oldcap; i++) {
		struct sched_timer *t = old[i];
		while (t != NULL) {
			struct sched_timer *next = t->hnext;
			size_t j = id_slot(w, t->id);
			t->hnext = n[j];
			n[j] = t;
			t = next;
		}
	}
	free(old);
}

static int ids_put(struct timer_wheel *w, struct sched_timer *t)
{
	if (w->capids == 0) {
		w->ids = calloc(IDS_MIN, sizeof(*w->ids));
		if (w->ids == NULL)
			return -ENOMEM;
		w->capids = IDS_MIN;
	} else if (w->nids >= w->capids) {
		ids_rehash(w, w->capids * 2);
	}
	size_t j = id_slot(w, t->id);
	t->hnext = w->ids[j];
	w->ids[j] = t;
	w->nids++;
	return 0;
}

/* The link that holds the live timer with this id (*link NULL: none), or
 * NULL while the table is empty. */
static struct sched_timer **ids_link(struct timer_wheel *w, uint64_t id)
{
	if (w->capids == 0)
		return NULL;
	struct sched_timer **pp = &w->ids[id_slot(w, id)];
	while (*pp != NULL && (*pp)->id != id)
		pp = &(*pp)->hnext;
	return pp;
}

static bool ids_has(struct timer_wheel *w, uint64_t id)
{
	struct sched_timer **pp = ids_link(w, id);
	return pp != NULL && *pp != NULL;
}

static struct sched_timer *ids_del(struct timer_wheel *w, uint64_t id)
{
	struct sched_timer **pp = ids_link(w, id);
	struct sched_timer *t = pp != NULL ? *pp : NULL;
	if (t == NULL)
		return NULL;
	*pp = t->hnext;
	t->hnext = NULL;
	w->nids--;
	if (w->capids > IDS_MIN && w->nids < w->capids / 8)
		ids_rehash(w, w->capids / 2);
	return t;
}

/* ---- API ---- */

static void add_locked(struct timer_wheel *w, struct sched_timer *t, struct sched *owner);
static void remove_timer(struct timer_wheel *w, struct sched_timer *t);

void timer_wheel_init_at(struct timer_wheel *w, uint64_t now)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->lock, NULL);
	w->cur = tick_of(now);
	atomic_init(&w->next, UINT64_MAX);
}

void timer_wheel_init(struct timer_wheel *w)
{
	timer_wheel_init_at(w, sched_now_ns());
}

void timer_wheel_add_raw(struct timer_wheel *w, struct sched_timer *t, struct sched *owner)
{
	pthread_mutex_lock(&w->lock);
	t->id = 0;
	t->hnext = NULL;
	add_locked(w, t, owner);
	pthread_mutex_unlock(&w->lock);
}

bool timer_wheel_remove_raw(struct timer_wheel *w, struct sched_timer *t)
{
	pthread_mutex_lock(&w->lock);
	bool queued = atomic_load_explicit(&t->owner, memory_order_relaxed) != NULL;
	if (queued)
		remove_timer(w, t);
	pthread_mutex_unlock(&w->lock);
	return queued;
}

void timer_wheel_destroy(struct timer_wheel *w, void (*drop)(struct sched_timer *t))
{
	for (unsigned lvl = 0; lvl < WHEEL_LEVELS; lvl++) {
		for (unsigned s = 0; s < (lvl ? WHEEL_UPPER_SLOTS : WHEEL_SLOTS); s++) {
			struct sched_timer *t = *slot_head(w, lvl, s);
			while (t != NULL) {
				struct sched_timer *next = t->next;
				atomic_store(&t->owner, NULL);
				if (drop != NULL)
					drop(t);
				t = next;
			}
		}
	}
	free(w->ids);
	pthread_mutex_destroy(&w->lock);
}

/* Queue t (under lock); owner is what t->owner will say. */
static void add_locked(struct timer_wheel *w, struct sched_timer *t, struct sched *owner)
{
	atomic_store_explicit(&t->owner, owner, memory_order_relaxed);
	place(w, t);
	w->n++;
	if (t->deadline < atomic_load_explicit(&w->next, memory_order_relaxed))
		atomic_store_explicit(&w->next, t->deadline, memory_order_release);
}

int sched_timer_add(struct sched_timer *t, uint64_t *id)
{
	struct sched *s = sched_self();
	if (s == NULL)
		return -EINVAL;
	struct timer_wheel *w = &s->timers;
	pthread_mutex_lock(&w->lock);
	t->id = 0;
	t->hnext = NULL;
	if (id != NULL) {
		/* Any process holding an id may cancel its timer (docs/abi.md):
		 * the 31 bits above a 22-bit count are random, as a ref's are
		 * (rt_new_ref), or a process that had set one timer cancelled
		 * others' by trying the ids next to its own. Drawn again while
		 * a live timer has the id. */
		do {
			t->id = 1ull << 63 | (uint64_t)util_random31() << 32 |
			        (++w->next_seq & ID_COUNT_MASK) << ID_SCHED_BITS | (uint64_t)s->id;
		} while (ids_has(w, t->id));
		if (ids_put(w, t) != 0) {
			pthread_mutex_unlock(&w->lock);
			return -ENOMEM;
		}
		*id = t->id;
	}
	add_locked(w, t, s);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

/* Off the wheel (under lock): the caller owns t now. */
static void remove_timer(struct timer_wheel *w, struct sched_timer *t)
{
	if (t->id != 0)
		ids_del(w, t->id);
	unlink_timer(w, t);
	w->n--;
	/* Release: whoever sees NULL without taking the lock (cancel) may
	 * write t at once, after what the wheel read of it (its deadline). */
	atomic_store_explicit(&t->owner, NULL, memory_order_release);
}

struct sched_timer *sched_timer_take(struct sched_group *g, uint64_t id)
{
	uint64_t sid = id & ((1u << ID_SCHED_BITS) - 1);
	if (!(id >> 63) || sid >= (uint64_t)g->nsched)
		return NULL;
	struct timer_wheel *w = &g->scheds[sid].timers;
	pthread_mutex_lock(&w->lock);
	struct sched_timer *t = ids_del(w, id);
	if (t != NULL) {
		t->id = 0;
		remove_timer(w, t);
	}
	pthread_mutex_unlock(&w->lock);
	return t;
}

bool sched_timer_cancel(struct sched_timer *t)
{
	struct sched *s = atomic_load_explicit(&t->owner, memory_order_acquire);
	if (s == NULL)
		return false;
	struct timer_wheel *w = &s->timers;
	bool removed = false;
	pthread_mutex_lock(&w->lock);
	if (atomic_load_explicit(&t->owner, memory_order_relaxed) == s) {
		remove_timer(w, t);
		removed = true;
	}
	pthread_mutex_unlock(&w->lock);
	return removed;
}

/* Take up to max timers due at `now` off the wheel into a list (linked by
 * `next`), with their fire functions read under the lock (an owner may
 * re-arm its timer as soon as the lock is released). */
static int collect_due(struct timer_wheel *w, uint64_t now, int max,
                       struct sched_timer **out, void (**fires)(struct sched_timer *))
{
	int got = 0;
	uint64_t target = tick_of(now);
	while (got < max && w->n > 0) {
		skip_empty(w, target);
		if (w->cur > target)
			break;
		unsigned pos = (unsigned)(w->cur & (WHEEL_SLOTS - 1));
		struct sched_timer *t = w->l0[pos];
		bool later = false;
		while (t != NULL && got < max) {
			struct sched_timer *next = t->next;
			if (t->deadline > now) {
				later = true;      /* due later within this tick */
			} else {
				remove_timer(w, t);
				fires[got] = t->fire;
				out[got++] = t;
			}
			t = next;
		}
		if (later || t != NULL || w->cur == target)
			break;             /* this tick is not over, or this round is */
		advance(w);
	}
	update_next(w);
	return got;
}

int timer_wheel_fire(struct timer_wheel *w, int max)
{
	return timer_wheel_fire_at(w, sched_now_ns(), max);
}

int timer_wheel_fire_at(struct timer_wheel *w, uint64_t now, int max)
{
	if (atomic_load_explicit(&w->next, memory_order_acquire) > now)
		return 0;
	struct sched_timer *batch[64];
	void (*fires[64])(struct sched_timer *);
	if (max > 64)
		max = 64;
	pthread_mutex_lock(&w->lock);
	int n = collect_due(w, now, max, batch, fires);
	pthread_mutex_unlock(&w->lock);
	for (int i = 0; i < n; i++)
		fires[i](batch[i]);    /* may free or re-arm it */
	return n;
}
