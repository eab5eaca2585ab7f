/*
 * modules.c — the runtime's module table: every module its processes run,
 * named by the SHA-256 of its bytes.
 *
 * A run starts with one module (the one `wisp run` was given, which the
 * runtime owns from then on); others come while it runs: new versions of
 * it (hot reload, upgrade.c) and modules another node ships for a process
 * it spawns here (src/dist). A module is loaded once per hash, however
 * many processes run it or ask for it at once. Each entry holds the build
 * loaded first and, once the background compile lands, its optimized
 * build (rt_module_better): one entry, one count of users.
 *
 * Who may unload what. Each process holds its entry from the moment it is
 * made until it is freed (its instance with it), and so does every other
 * holder between finding a module and using it (a remote spawn between
 * the lookup and the process, an upgrade between reading the current
 * version and instantiating it): rt_module_hold / rt_module_put. A count
 * goes from 0 to 1 only under the table's lock (a lookup); everyone else
 * who takes it holds it already (a child is made by a running parent,
 * which holds its entry), and the put that brings it to 0 takes the lock
 * to decide (the entry stays allocated for it even if another thread
 * retired it first). An entry that is a version of the main module no
 * longer current is then taken out of the table and unloaded, Erlang's
 * purge of old code nobody runs (rt_modules_retire does the same for the
 * versions a new one retires while nobody holds them). Modules shipped by
 * other nodes (version 0) and the current version stay: the next spawn
 * would need them again.
 *
 * Loading means compiling, which takes milliseconds to seconds: callers are
 * threads of their own (the distribution layer's, the control socket's),
 * never schedulers.
 *
 * One load per hash. A hash is loaded by one thread at a time, and not
 * while its previous entry is being unloaded: others wait (mods_cond),
 * then find it in the table or load it themselves. The reason is
 * dlopen's, not the compile's: a build is loaded through
 * "/proc/self/fd/N" (engine_module_load), and dlopen, given a file it has
 * loaded already, returns that object and adds the new name to it; the
 * first module to be unloaded then closes its fd while the object lives
 * on with that name, and the next module loaded through the same fd
 * number ran the old one's code (three guests loading the same version
 * at once made a later version run an earlier one's code). With one
 * load of a file at a time, every object has one name and one module.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sha256.h"
#include "proc_impl.h"

_Static_assert(RT_HASH_BYTES == UTIL_SHA256_BYTES, "module names are SHA-256");

/* The entry of a module in the table (both builds point at it). */
static struct rt_mod *entry(const engine_module *m)
{
	return engine_module_owner(m);
}

/* (mods_lock held) */
static struct rt_mod *find_locked(struct rt *rt, const unsigned char hash[RT_HASH_BYTES])
{
	for (size_t i = 0; i < rt->nmods; i++)
		if (memcmp(rt->mods[i]->hash, hash, RT_HASH_BYTES) == 0)
			return rt->mods[i];
	return NULL;
}

/* A new entry for mod as hash, in the table (mods_lock held); NULL: out
 * of memory. */
static struct rt_mod *add_locked(struct rt *rt, const unsigned char hash[RT_HASH_BYTES],
                                 engine_module *mod)
{
	if (rt->nmods == rt->capmods) {
		size_t cap = rt->capmods ? rt->capmods * 2 : 4;
		struct rt_mod **v = realloc(rt->mods, cap * sizeof(*v));
		if (v == NULL)
			return NULL;
		rt->mods = v;
		rt->capmods = cap;
	}
	struct rt_mod *e = aligned_alloc(alignof(struct rt_mod), sizeof(*e));
	if (e == NULL)
		return NULL;
	memset(e, 0, sizeof(*e));
	atomic_init(&e->users, 0);
	memcpy(e->hash, hash, RT_HASH_BYTES);
	e->mod = mod;
	e->listed = true;
	engine_module_set_owner(mod, e);
	rt->mods[rt->nmods++] = e;
	return e;
}

/* Unload e's builds (out of the table, nobody holds it); the memory
 * pool forgets their images first. */
static void unload_builds(struct rt *rt, struct rt_mod *e)
{
	engine_mem_pool_forget(rt->limits.mem_pool, e->better);
	engine_mem_pool_forget(rt->limits.mem_pool, e->mod);
	engine_module_unload(e->better);
	engine_module_unload(e->mod);
	e->better = e->mod = NULL;
}

int rt_modules_init(struct rt *rt)
{
	pthread_mutex_init(&rt->mods_lock, NULL);
	pthread_cond_init(&rt->mods_cond, NULL);
	pthread_mutex_init(&rt->code_lock, NULL);
	struct rt_mod *e = add_locked(rt, rt->cfg.module_hash, rt->mod);
	if (e == NULL)
		return -ENOMEM;
	e->vsn = rt->last_vsn = 1;   /* the main module: version 1 */
	rt->current = e;
	return 0;
}

void rt_modules_free(struct rt *rt)
{
	for (size_t i = 0; i < rt->nmods; i++) {
		unload_builds(rt, rt->mods[i]);
		free(rt->mods[i]);
	}
	for (struct rt_mod *e = rt->mods_gone, *next; e != NULL; e = next) {
		next = e->next_gone;
		free(e);
	}
	rt->mods_gone = NULL;
	free(rt->mods);
	rt->mods = NULL;
	free(rt->loading);
	rt->loading = NULL;
	rt->nloading = rt->caploading = 0;
	pthread_cond_destroy(&rt->mods_cond);
	free(rt->code_watchers);
	rt->code_watchers = NULL;
	rt->ncode_watchers = rt->capcode_watchers = 0;
	rt->nmods = rt->capmods = 0;
	pthread_mutex_destroy(&rt->mods_lock);
	pthread_mutex_destroy(&rt->code_lock);
}

void rt_module_hold(engine_module *m)
{
	atomic_fetch_add_explicit(&entry(m)->users, 1, memory_order_relaxed);
}

/* Whether e leaves the table (mods_lock held): nobody holds it, and it is
 * a version of the main module that is no longer current (or a module
 * refused as a version). */
static bool retired_locked(const struct rt *rt, const struct rt_mod *e)
{
	return (e->vsn != 0 || e->transient) && e != rt->current && atomic_load(&e->users) == 0;
}

/* Take e out of the table (mods_lock held). Its entry stays allocated,
 * on the list of those gone, while the runtime lasts: a put that brought
 * its count to 0 may still be on its way to the lock to look at it. */
static void remove_locked(struct rt *rt, struct rt_mod *e)
{
	for (size_t i = 0; i < rt->nmods; i++)
		if (rt->mods[i] == e) {
			rt->mods[i] = rt->mods[--rt->nmods];
			break;
		}
	e->listed = false;
	e->unloading = true;
	e->next_gone = rt->mods_gone;
	rt->mods_gone = e;
}

/* e left the table: unload it, and let the other nodes forget its bytes.
 * A load of its hash waits until its builds are unloaded. */
static void forget(struct rt *rt, struct rt_mod *e)
{
	const struct proc_remote *r = rt->cfg.remote;
	if (r != NULL && r->forgot != NULL)
		r->forgot(r->ctx, e->hash);
	unload_builds(rt, e);
	pthread_mutex_lock(&rt->mods_lock);
	e->unloading = false;
	pthread_cond_broadcast(&rt->mods_cond);
	pthread_mutex_unlock(&rt->mods_lock);
}

void rt_module_put(struct rt *rt, engine_module *m)
{
	struct rt_mod *e = entry(m);
	if (atomic_fetch_sub_explicit(&e->users, 1, memory_order_acq_rel) != 1)
		return;
	/* The last, for now: decided under the lock (a lookup may have taken
	 * it again meanwhile, and even given it back and retired it: then it
	 * is out of the table, but its entry is still there to read). */
	pthread_mutex_lock(&rt->mods_lock);
	bool gone = e->listed && retired_locked(rt, e);
	if (gone)
		remove_locked(rt, e);
	pthread_mutex_unlock(&rt->mods_lock);
	if (gone)
		forget(rt, e);
}

void rt_modules_retire(struct rt *rt)
{
	for (;;) {
		struct rt_mod *gone = NULL;
		pthread_mutex_lock(&rt->mods_lock);
		for (size_t i = 0; i < rt->nmods && gone == NULL; i++)
			if (retired_locked(rt, rt->mods[i]))
				gone = rt->mods[i];
		if (gone != NULL)
			remove_locked(rt, gone);
		pthread_mutex_unlock(&rt->mods_lock);
		if (gone == NULL)
			return;
		forget(rt, gone);
	}
}

engine_module *rt_module_find(struct rt *rt, const unsigned char hash[RT_HASH_BYTES])
{
	pthread_mutex_lock(&rt->mods_lock);
	struct rt_mod *e = find_locked(rt, hash);
	if (e != NULL)
		atomic_fetch_add(&e->users, 1);   /* (0 to 1 only here, under the lock) */
	pthread_mutex_unlock(&rt->mods_lock);
	return e != NULL ? e->mod : NULL;
}

bool rt_module_hash(const engine_module *mod, unsigned char hash[RT_HASH_BYTES])
{
	const struct rt_mod *e = entry(mod);
	if (e != NULL)
		memcpy(hash, e->hash, RT_HASH_BYTES);
	return e != NULL;
}

int rt_module_better(struct rt *rt, const unsigned char hash[RT_HASH_BYTES],
                     engine_module *better)
{
	pthread_mutex_lock(&rt->mods_lock);
	struct rt_mod *e = find_locked(rt, hash);
	int rc = e == NULL ? -ENOENT : e->better != NULL ? -EEXIST : 0;
	if (rc == 0) {
		e->better = better;
		engine_module_set_owner(better, e);
		engine_module_set_successor(e->mod, better);
	}
	pthread_mutex_unlock(&rt->mods_lock);
	return rc;
}

bool rt_module_is_better(const engine_module *mod)
{
	const struct rt_mod *e = entry(mod);
	return e != NULL && e->mod != mod;
}

/* Whether hash is being loaded, or its entry unloaded (mods_lock held). */
static bool busy_locked(const struct rt *rt, const unsigned char hash[RT_HASH_BYTES])
{
	for (size_t i = 0; i < rt->nloading; i++)
		if (memcmp(rt->loading[i], hash, RT_HASH_BYTES) == 0)
			return true;
	for (const struct rt_mod *e = rt->mods_gone; e != NULL; e = e->next_gone)
		if (e->unloading && memcmp(e->hash, hash, RT_HASH_BYTES) == 0)
			return true;
	return false;
}

/* Hash's entry, held for the caller, once no other thread loads or
 * unloads it; NULL if there is none, and then hash is the caller's to
 * load (marked: load_done), or *rc is -ENOMEM. (mods_lock held) */
static struct rt_mod *find_or_claim_locked(struct rt *rt, const unsigned char hash[RT_HASH_BYTES],
                                           int *rc)
{
	*rc = 0;
	for (;;) {
		struct rt_mod *e = find_locked(rt, hash);
		if (e != NULL) {
			atomic_fetch_add(&e->users, 1);
			return e;
		}
		if (!busy_locked(rt, hash))
			break;
		pthread_cond_wait(&rt->mods_cond, &rt->mods_lock);
	}
	if (rt->nloading == rt->caploading) {
		size_t cap = rt->caploading ? rt->caploading * 2 : 4;
		unsigned char (*v)[RT_HASH_BYTES] = realloc(rt->loading, cap * sizeof(*v));
		if (v == NULL) {
			*rc = -ENOMEM;
			return NULL;
		}
		rt->loading = v;
		rt->caploading = cap;
	}
	memcpy(rt->loading[rt->nloading++], hash, RT_HASH_BYTES);
	return NULL;
}

/* The caller's load of hash is over (mods_lock held): others may go on. */
static void load_done_locked(struct rt *rt, const unsigned char hash[RT_HASH_BYTES])
{
	for (size_t i = 0; i < rt->nloading; i++)
		if (memcmp(rt->loading[i], hash, RT_HASH_BYTES) == 0) {
			memcpy(rt->loading[i], rt->loading[--rt->nloading], RT_HASH_BYTES);
			break;
		}
	pthread_cond_broadcast(&rt->mods_cond);
}

int rt_module_load(struct rt *rt, const unsigned char hash[RT_HASH_BYTES], const void *bytes,
                   size_t len, const char *what, engine_module **out, char *err, size_t errlen)
{
	*out = NULL;
	int rc;
	pthread_mutex_lock(&rt->mods_lock);
	struct rt_mod *e = find_or_claim_locked(rt, hash, &rc);
	pthread_mutex_unlock(&rt->mods_lock);
	if (e != NULL || rc != 0) {
		if (e != NULL)
			*out = e->mod;
		else
			snprintf(err, errlen, "out of memory");
		return rc;
	}
	/* Ours to load (and to give up: load_done_locked below). */
	const struct proc_loader *l = rt->cfg.loader;
	unsigned char h[RT_HASH_BYTES];
	util_sha256(bytes, len, h);
	engine_module *m = NULL;
	if (memcmp(h, hash, RT_HASH_BYTES) != 0) {
		snprintf(err, errlen, "the module's bytes do not match its hash");
		rc = -EBADMSG;
	} else if (l == NULL) {
		snprintf(err, errlen, "this runtime loads no modules but its own");
		rc = -ENOTSUP;
	} else {
		rc = l->load(l->ctx, what, bytes, len, &m, err, errlen);
	}
	pthread_mutex_lock(&rt->mods_lock);
	if (rc == 0) {
		e = add_locked(rt, hash, m);   /* (nobody else could add it) */
		if (e != NULL)
			atomic_fetch_add(&e->users, 1);
	}
	load_done_locked(rt, hash);
	pthread_mutex_unlock(&rt->mods_lock);
	if (rc == 0 && e == NULL) {
		engine_module_unload(m);
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
	}
	*out = e != NULL ? e->mod : NULL;
	return rc;
}
