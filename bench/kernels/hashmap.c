/*
 * hashmap — word counting with an open-addressing hash table of malloc'd
 * string keys: hashing, memcmp, pointer chasing, malloc and table growth.
 * This is the shape of ordinary server and tooling code (symbol tables,
 * caches, JSON object keys) rather than numeric loops, and it exercises the
 * guest's malloc (dlmalloc in wasi-libc, glibc's natively) and memory.grow.
 */
#include <stdlib.h>
#include <string.h>
#include "bench.h"

typedef struct {
    char *key;          /* NULL: empty slot */
    uint32_t len;
    uint32_t hash;
    uint64_t count;
} slot;

typedef struct {
    slot *slots;
    size_t cap;         /* power of two */
    size_t used;
} table;

static uint32_t fnv1a(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static slot *probe(slot *slots, size_t cap, const char *s, uint32_t n, uint32_t h)
{
    for (size_t i = h & (cap - 1);; i = (i + 1) & (cap - 1)) {
        slot *e = &slots[i];
        if (!e->key || (e->hash == h && e->len == n && memcmp(e->key, s, n) == 0))
            return e;
    }
}

static int grow(table *t)
{
    size_t cap = t->cap * 2;
    slot *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].key)
            *probe(slots, cap, t->slots[i].key, t->slots[i].len, t->slots[i].hash) = t->slots[i];
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
    return 0;
}

/* Counts one occurrence of s[0..n). Returns 0, or -1 when out of memory. */
static int count_word(table *t, const char *s, uint32_t n)
{
    if ((t->used + 1) * 4 > t->cap * 3 && grow(t) < 0)
        return -1;
    uint32_t h = fnv1a(s, n);
    slot *e = probe(t->slots, t->cap, s, n, h);
    if (!e->key) {
        if (!(e->key = malloc(n)))
            return -1;
        memcpy(e->key, s, n);
        e->len = n;
        e->hash = h;
        t->used++;
    }
    e->count++;
    return 0;
}

/*
 * A pseudo-random word from a vocabulary of 2^17 ids, each spelled as its
 * base-16 digits turned into syllables. Small ids are far more likely (the
 * id has a random number of bits), so frequencies are Zipf-like, as in text.
 */
static uint32_t make_word(char *out, uint64_t *rng)
{
    static const char *syl[] = {"ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "zen", "qua",
                                "ber", "dal", "fi", "gor", "hu", "jin"};
    uint64_t x = *rng;
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    *rng = x;
    uint32_t bits = 4 + (uint32_t)(x % 14);
    uint32_t id = (uint32_t)(x >> 20) & ((1u << bits) - 1);
    uint32_t n = 0;
    do {
        for (const char *s = syl[id & 15]; *s; s++)
            out[n++] = *s;
    } while ((id >>= 4) != 0);
    return n;
}

int main(void)
{
    long words = (long)bench_param(13000000);
    table t = {calloc(16, sizeof(slot)), 16, 0};
    if (!t.slots)
        return 1;
    uint64_t rng = 88172645463325252u;
    char w[64];
    uint64_t t0 = bench_now_ns();
    for (long i = 0; i < words; i++)
        if (count_word(&t, w, make_word(w, &rng)) < 0)
            return 1;
    uint64_t sum = t.used;
    for (size_t i = 0; i < t.cap; i++)
        if (t.slots[i].key)
            sum += t.slots[i].count * t.slots[i].hash;
    uint64_t t1 = bench_now_ns();
    bench_report(sum, t0, t1);
    for (size_t i = 0; i < t.cap; i++)
        free(t.slots[i].key);
    free(t.slots);
    return 0;
}
