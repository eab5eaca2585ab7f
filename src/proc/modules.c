/*
 * modules.c — the runtime's module table: every module its processes run,
 * named by the SHA-256 of its bytes.
 *
 * A run starts with one module (the one `wisp run` was given); others come
 * while it runs — today, modules another node ships for a process it
 * spawns here (src/dist). A module is loaded once per hash, however many
 * processes run it or ask for it at once, and stays loaded until the
 * runtime ends: a process may be running any of them at any time, and
 * unloading needs the purge rules of hot code reload (not here yet).
 *
 * Loading means compiling, which takes milliseconds to seconds: callers are
 * threads of their own (the distribution layer's), never schedulers. Two
 * threads loading the same hash both compile (the compile cache makes the
 * second cheap); the first to finish is kept, the other unloaded.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sha256.h"
#include "proc_impl.h"

_Static_assert(RT_HASH_BYTES == UTIL_SHA256_BYTES, "module names are SHA-256");

/* (mods_lock held) */
static engine_module *find_locked(struct rt *rt, const unsigned char hash[RT_HASH_BYTES])
{
	for (size_t i = 0; i < rt->nmods; i++)
		if (memcmp(rt->mods[i].hash, hash, RT_HASH_BYTES) == 0)
			return rt->mods[i].mod;
	return NULL;
}

/* Add mod as hash (mods_lock held); -ENOMEM. */
static int add_locked(struct rt *rt, const unsigned char hash[RT_HASH_BYTES], engine_module *mod)
{
	if (rt->nmods == rt->capmods) {
		size_t cap = rt->capmods ? rt->capmods * 2 : 4;
		struct rt_mod *v = realloc(rt->mods, cap * sizeof(*v));
		if (v == NULL)
			return -ENOMEM;
		rt->mods = v;
		rt->capmods = cap;
	}
	memcpy(rt->mods[rt->nmods].hash, hash, RT_HASH_BYTES);
	rt->mods[rt->nmods].mod = mod;
	rt->mods[rt->nmods].vsn = 0;
	rt->mods[rt->nmods].better = false;
	rt->nmods++;
	return 0;
}

int rt_modules_init(struct rt *rt)
{
	pthread_mutex_init(&rt->mods_lock, NULL);
	pthread_mutex_init(&rt->code_lock, NULL);
	int rc = add_locked(rt, rt->cfg.module_hash, rt->mod);
	if (rc == 0) {
		rt->mods[0].vsn = rt->last_vsn = 1;   /* the main module: version 1 */
		rt->current = rt->mod;
	}
	return rc;
}

void rt_modules_free(struct rt *rt)
{
	/* The first is the embedder's, unloaded by it. */
	for (size_t i = 1; i < rt->nmods; i++)
		engine_module_unload(rt->mods[i].mod);
	free(rt->mods);
	rt->mods = NULL;
	free(rt->code_watchers);
	rt->code_watchers = NULL;
	rt->ncode_watchers = rt->capcode_watchers = 0;
	rt->nmods = rt->capmods = 0;
	pthread_mutex_destroy(&rt->mods_lock);
	pthread_mutex_destroy(&rt->code_lock);
}

engine_module *rt_module_find(struct rt *rt, const unsigned char hash[RT_HASH_BYTES])
{
	pthread_mutex_lock(&rt->mods_lock);
	engine_module *m = find_locked(rt, hash);
	pthread_mutex_unlock(&rt->mods_lock);
	return m;
}

bool rt_module_hash(struct rt *rt, const engine_module *mod, unsigned char hash[RT_HASH_BYTES])
{
	bool found = false;
	pthread_mutex_lock(&rt->mods_lock);
	for (size_t i = 0; i < rt->nmods && !found; i++)
		if (rt->mods[i].mod == mod) {
			memcpy(hash, rt->mods[i].hash, RT_HASH_BYTES);
			found = true;
		}
	pthread_mutex_unlock(&rt->mods_lock);
	return found;
}

int rt_module_better(struct rt *rt, engine_module *mod, engine_module *better)
{
	pthread_mutex_lock(&rt->mods_lock);
	int rc = -ENOENT;
	for (size_t i = 0; i < rt->nmods && rc == -ENOENT; i++)
		if (rt->mods[i].mod == mod) {
			unsigned char hash[RT_HASH_BYTES];
			uint32_t vsn = rt->mods[i].vsn;
			memcpy(hash, rt->mods[i].hash, RT_HASH_BYTES);
			if ((rc = add_locked(rt, hash, better)) == 0) {
				rt->mods[rt->nmods - 1].vsn = vsn;
				rt->mods[rt->nmods - 1].better = true;
				engine_module_set_successor(mod, better);
				if (rt->current == mod)
					rt->current = better;
			}
		}
	pthread_mutex_unlock(&rt->mods_lock);
	return rc;
}

bool rt_module_is_better(struct rt *rt, const engine_module *mod)
{
	bool b = false;
	pthread_mutex_lock(&rt->mods_lock);
	for (size_t i = 0; i < rt->nmods; i++)
		if (rt->mods[i].mod == mod)
			b = rt->mods[i].better;
	pthread_mutex_unlock(&rt->mods_lock);
	return b;
}

int rt_module_load(struct rt *rt, const unsigned char hash[RT_HASH_BYTES], const void *bytes,
                   size_t len, engine_module **out, char *err, size_t errlen)
{
	if ((*out = rt_module_find(rt, hash)) != NULL)
		return 0;
	unsigned char h[RT_HASH_BYTES];
	util_sha256(bytes, len, h);
	if (memcmp(h, hash, RT_HASH_BYTES) != 0) {
		snprintf(err, errlen, "the module's bytes do not match its hash");
		return -EBADMSG;
	}
	const struct proc_loader *l = rt->cfg.loader;
	if (l == NULL) {
		snprintf(err, errlen, "this runtime loads no modules but its own");
		return -ENOTSUP;
	}
	engine_module *m;
	int rc = l->load(l->ctx, bytes, len, &m, err, errlen);
	if (rc != 0)
		return rc;
	pthread_mutex_lock(&rt->mods_lock);
	engine_module *won = find_locked(rt, hash);
	if (won == NULL && (rc = add_locked(rt, hash, m)) == 0)
		won = m;
	pthread_mutex_unlock(&rt->mods_lock);
	if (won != m)
		engine_module_unload(m);
	if (won == NULL) {
		snprintf(err, errlen, "out of memory");
		return rc;
	}
	*out = won;
	return 0;
}
