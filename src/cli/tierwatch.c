/*
 * tierwatch.c — the tier swap: a run that started on the fast tier (wisp
 * compiles the optimized one in the background, a detached `wisp compile
 * --background`) looks for the optimized build in the cache every
 * TIER_POLL_MS; once it is there and trusted (pipeline_lookup checks it
 * as any cached entry), it is loaded and becomes the module's better build
 * (rt_module_better): every process made from then on runs it, while the
 * ones running go on with the fast code (the two stay loaded). A long-
 * running server started on the fast tier thus gets optimized code for
 * its later processes without a restart. The watch gives up after
 * TIER_WATCH_S (the build failed, or was never started because another
 * build held the lock).
 */
#include "tierwatch.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TIER_POLL_MS 500
#define TIER_WATCH_S (30 * 60)

struct tierwatch {
	const struct pipeline *p;
	const struct wasm_file *wf;
	unsigned char hash[RT_HASH_BYTES];   /* the module's */
	struct rt *rt;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop, running;
};

/* Wait up to ms, or until told to stop: whether to go on. */
static bool nap(struct tierwatch *t, int ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_nsec += (long)ms * 1000000;
	ts.tv_sec += ts.tv_nsec / 1000000000;
	ts.tv_nsec %= 1000000000;
	pthread_mutex_lock(&t->lock);
	while (!t->stop && pthread_cond_timedwait(&t->cond, &t->lock, &ts) == 0)
		;
	bool go = !t->stop;
	pthread_mutex_unlock(&t->lock);
	return go;
}

static void *watch_main(void *arg)
{
	struct tierwatch *t = arg;
	for (int waited = 0; waited < TIER_WATCH_S * 1000 && nap(t, TIER_POLL_MS);
	     waited += TIER_POLL_MS) {
		struct pipeline_so so = { .fd = -1 };
		/* (An untrusted file there is said once, not every poll.) */
		if (!pipeline_lookup(t->p, t->wf, TIER_OPT, &so, waited == 0))
			continue;
		engine_module *opt;
		char err[512];
		int rc = engine_module_load(so.path, so.fd, &opt, err, sizeof(err));
		pipeline_so_close(&so);
		if (rc != 0) {
			fprintf(stderr, "wisp: the optimized build could not be loaded: %s\n", err);
		} else if (rt_module_better(t->rt, t->hash, opt) != 0) {
			engine_module_unload(opt);
		}
		return NULL;
	}
	return NULL;
}

struct tierwatch *tierwatch_new(const struct pipeline *p, const struct wasm_file *wf,
                                const unsigned char hash[RT_HASH_BYTES])
{
	struct tierwatch *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->p = p;
	t->wf = wf;
	memcpy(t->hash, hash, RT_HASH_BYTES);
	pthread_mutex_init(&t->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cond, &ca);
	pthread_condattr_destroy(&ca);
	return t;
}

void tierwatch_start(struct tierwatch *t, struct rt *rt)
{
	if (t == NULL || t->running)
		return;
	t->rt = rt;
	t->running = pthread_create(&t->thread, NULL, watch_main, t) == 0;
}

void tierwatch_stop(struct tierwatch *t)
{
	if (t == NULL || !t->running)
		return;
	pthread_mutex_lock(&t->lock);
	t->stop = true;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->thread, NULL);
	t->running = false;
}

void tierwatch_free(struct tierwatch *t)
{
	if (t == NULL)
		return;
	tierwatch_stop(t);
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->cond);
	free(t);
}
