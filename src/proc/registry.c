/*
 * registry.c — process names: a chained hash table from name bytes to pid
 * under one mutex (registrations are rare next to messages).
 *
 * Each name is one allocation, linked twice: into its hash bucket and into
 * its owner's own list (struct proc.names), so a process's exit removes its
 * names without looking at anyone else's — no operation scans the table.
 * The bucket array doubles above load 1 and halves below 1/8, so churn of
 * register/unregister never leaves it large (no tombstones).
 *
 * A name is bound to a live process only: registration links the name,
 * then checks that the process has not started exiting (and takes the name
 * back if it has); the exit path sets `exiting`, then looks at the
 * process's names and removes them under the registry lock. Both orders
 * are sequentially consistent, so one side always sees the other: a dead
 * process's name can never be found, nor registered, and a process that
 * never had a name exits without the lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "proc_impl.h"

#define BUCKETS_MIN 64

struct reg_name {
	struct reg_name *hnext;        /* bucket chain */
	struct reg_name *pnext;        /* the owner's names */
	struct reg_name **pprev;       /* what points at us in the owner's list */
	struct proc *owner;
	uint64_t pid;
	uint32_t len;
	char name[];
};

int registry_init(struct registry *r)
{
	memset(r, 0, sizeof(*r));
	return pthread_mutex_init(&r->lock, NULL) == 0 ? 0 : -ENOMEM;
}

void registry_destroy(struct registry *r)
{
	for (size_t i = 0; i < r->cap; i++) {
		struct reg_name *n = r->buckets[i];
		while (n != NULL) {
			struct reg_name *next = n->hnext;
			free(n);
			n = next;
		}
	}
	free(r->buckets);
	pthread_mutex_destroy(&r->lock);
}

static size_t bucket(const struct registry *r, const char *name, uint32_t len)
{
	return (size_t)XXH3_64bits(name, len) & (r->cap - 1);
}

/* Resize to cap buckets (a power of 2); on failure keep the old ones. */
static void rehash(struct registry *r, size_t cap)
{
	struct reg_name **b = calloc(cap, sizeof(*b));
	if (b == NULL)
		return;
	struct reg_name **old = r->buckets;
	size_t oldcap = r->cap;
	r->buckets = b;
	r->cap = cap;
	for (size_t i = 0; i < oldcap; i++) {
		struct reg_name *n = old[i];
		while (n != NULL) {
			struct reg_name *next = n->hnext;
			size_t j = bucket(r, n->name, n->len);
			n->hnext = b[j];
			b[j] = n;
			n = next;
		}
	}
	free(old);
}

/* The link that points at name's entry (or at NULL where it would go). */
static struct reg_name **find(struct registry *r, const char *name, uint32_t len)
{
	struct reg_name **pp = &r->buckets[bucket(r, name, len)];
	while (*pp != NULL && !((*pp)->len == len && memcmp((*pp)->name, name, len) == 0))
		pp = &(*pp)->hnext;
	return pp;
}

/* Unlink n (found at *pp) from its bucket and its owner; free it. */
static void unlink_at(struct registry *r, struct reg_name **pp, bool charged)
{
	struct reg_name *n = *pp;
	*pp = n->hnext;
	*n->pprev = n->pnext;
	if (n->pnext != NULL)
		n->pnext->pprev = n->pprev;
	if (charged)
		proc_uncharge(n->owner, sizeof(*n) + n->len);
	free(n);
	r->count--;
	if (r->cap > BUCKETS_MIN && r->count < r->cap / 8)
		rehash(r, r->cap / 2);
}

static void remove_at(struct registry *r, struct reg_name **pp)
{
	unlink_at(r, pp, true);
}

int registry_put(struct registry *r, const char *name, uint32_t len, struct proc *p,
                 uint64_t pid)
{
	int rc = 0;
	pthread_mutex_lock(&r->lock);
	if (atomic_load(&p->pid) != pid || atomic_load(&p->exiting)) {
		rc = -ESRCH;
		goto out;
	}
	if (r->cap == 0) {
		rehash(r, BUCKETS_MIN);
		if (r->cap == 0) {
			rc = -ENOMEM;
			goto out;
		}
	}
	struct reg_name **pp = find(r, name, len);
	if (*pp != NULL) {
		rc = -EEXIST;
		goto out;
	}
	struct reg_name *n = malloc(sizeof(*n) + len);
	if (n == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	memcpy(n->name, name, len);
	n->len = len;
	n->pid = pid;
	n->owner = p;
	n->hnext = NULL;
	*pp = n;
	n->pnext = p->names;
	if (p->names != NULL)
		p->names->pprev = &n->pnext;
	n->pprev = &p->names;
	__atomic_store_n(&p->names, n, __ATOMIC_SEQ_CST);
	if (++r->count > r->cap)
		rehash(r, r->cap * 2);
	/* registry_exit sets `exiting`, then looks at names without the
	 * lock: one of the two sees the other's store. If the exit went by
	 * and the slot already holds a new process (exiting false again),
	 * its pid differs: the pid was cleared before the slot was freed. */
	if (atomic_load(&p->exiting) || atomic_load(&p->pid) != pid)
		rc = -ESRCH;
	/* A name is charged to the process it names (freed with it); only
	 * now, when its exit, if under way, waits for this lock to take the
	 * name off again. */
	else if (proc_charge(p, sizeof(*n) + len) != 0)
		rc = -ENOMEM;
	if (rc != 0)
		unlink_at(r, find(r, name, len), false);
out:
	pthread_mutex_unlock(&r->lock);
	return rc;
}

int registry_del(struct registry *r, const char *name, uint32_t len)
{
	int rc = -ENOENT;
	pthread_mutex_lock(&r->lock);
	if (r->cap > 0) {
		struct reg_name **pp = find(r, name, len);
		if (*pp != NULL) {
			remove_at(r, pp);
			rc = 0;
		}
	}
	pthread_mutex_unlock(&r->lock);
	return rc;
}

int registry_get(struct registry *r, const char *name, uint32_t len, uint64_t *pid)
{
	pthread_mutex_lock(&r->lock);
	struct reg_name *n = r->cap > 0 ? *find(r, name, len) : NULL;
	*pid = n != NULL ? n->pid : 0;
	pthread_mutex_unlock(&r->lock);
	return n != NULL ? 0 : -ENOENT;
}

void registry_exit(struct registry *r, struct proc *p)
{
	/* Most processes never had a name: no lock for them (every exit
	 * taking the one registry lock made it a point of contention). */
	atomic_store(&p->exiting, true);
	if (__atomic_load_n(&p->names, __ATOMIC_SEQ_CST) == NULL)
		return;
	pthread_mutex_lock(&r->lock);
	while (p->names != NULL) {
		struct reg_name *n = p->names;
		remove_at(r, find(r, n->name, n->len));
	}
	pthread_mutex_unlock(&r->lock);
}

size_t registry_count(struct registry *r)
{
	pthread_mutex_lock(&r->lock);
	size_t n = r->count;
	pthread_mutex_unlock(&r->lock);
	return n;
}

/* ---- the wisp_registry calls ---- */

static bool valid_name(uint32_t len)
{
	return len > 0 && len <= 255;
}

int proc_register(struct proc *self, const char *name, uint32_t len, uint64_t pid)
{
	if (!valid_name(len))
		return -EINVAL;
	struct proc *p = ptable_get(&self->rt->ptable, pid);
	if (p == NULL)
		return -ESRCH;
	return registry_put(&self->rt->registry, name, len, p, pid);
}

int proc_unregister(struct proc *self, const char *name, uint32_t len)
{
	if (!valid_name(len))
		return -EINVAL;
	return registry_del(&self->rt->registry, name, len);
}

int proc_whereis(struct proc *self, const char *name, uint32_t len, uint64_t *pid)
{
	if (!valid_name(len))
		return -EINVAL;
	return registry_get(&self->rt->registry, name, len, pid);
}

size_t registry_names_of_pid(struct registry *r, struct proc *p, uint64_t pid, char *buf,
                             size_t cap, uint32_t *count)
{
	size_t need = 0;
	uint32_t n = 0;
	pthread_mutex_lock(&r->lock);
	for (struct reg_name *e = p->names; e != NULL; e = e->pnext) {
		if (e->pid != pid)
			continue;
		if (need + e->len + 1 <= cap) {
			memcpy(buf + need, e->name, e->len);
			buf[need + e->len] = '\0';
		}
		need += e->len + 1;
		n++;
	}
	pthread_mutex_unlock(&r->lock);
	*count = n;
	return need;
}

size_t registry_names_of(struct registry *r, struct proc *p, char *buf, size_t cap)
{
	size_t need = 0;
	pthread_mutex_lock(&r->lock);
	for (struct reg_name *n = p->names; n != NULL; n = n->pnext) {
		if (need + n->len + 1 <= cap) {
			memcpy(buf + need, n->name, n->len);
			buf[need + n->len] = '\0';
		}
		need += n->len + 1;
	}
	pthread_mutex_unlock(&r->lock);
	return need;
}
