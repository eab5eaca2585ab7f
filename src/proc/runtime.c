/*
 * runtime.c — starting a runtime with a main process, and tearing it down.
 *
 * The caller's thread only waits: the main process runs on a scheduler
 * like any other. When it ends, every scheduler stops after its current
 * slice; processes still alive are then discarded (their instances freed,
 * their fibers never resumed), which is what "wisp run ends when the main
 * process ends" means. A scheduler stuck in a blocking host call (a read
 * from a terminal, say) would keep its thread; such a thread is given a
 * grace period and then left behind, and the runtime is not freed, since
 * the process is about to exit anyway.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "caps.h"
#include "mailbox.h"
#include "rt_impl.h"

#define DEFAULT_FUEL 4000
#define DEFAULT_STACK (256u * 1024)
#define DEFAULT_MAX_MESSAGE (64ull << 20)
#define MAX_SCHEDULERS 1024

/* Free what a process that never finished still holds. */
static void discard(struct proc *p, void *arg)
{
	(void)arg;
	if (p->stack == NULL)
		return;   /* free slot */
	engine_instance_free(p->inst);
	wasi_ctx_free(p->host.wasi);
	for (int i = 0; i < 4; i++)
		free(p->host.scratch[i]);
	struct msg *m = mbox_close(&p->mbox);
	while (m) {
		struct msg *next = m->next;
		msg_free(m);
		m = next;
	}
	mbox_clear(&p->mbox);
	free(p->arg);
	proc_release(p);
}

static void rt_free(struct rt *rt)
{
	ptable_each(&rt->ptable, discard, rt);
	ptable_destroy(&rt->ptable);
	registry_destroy(&rt->registry);
	stack_pool_destroy(&rt->stacks);
	engine_mem_pool_free(rt->limits.mem_pool);
	reactor_destroy(&rt->reactor);
	free(rt->timer_ids);
	pthread_mutex_destroy(&rt->timer_lock);
	pthread_mutex_destroy(&rt->done_lock);
	pthread_cond_destroy(&rt->done_cond);
	free(rt);
}

int rt_run_main(engine_module *mod, const struct rt_config *cfg,
                struct engine_result *res, struct reason *reason,
                char *err, size_t errlen)
{
	struct rt *rt = calloc(1, sizeof(*rt));
	if (rt == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rt->cfg = *cfg;
	if (rt->cfg.reductions <= 0)
		rt->cfg.reductions = DEFAULT_FUEL;
	if (rt->cfg.stack_size == 0)
		rt->cfg.stack_size = DEFAULT_STACK;
	if (rt->cfg.max_message == 0)
		rt->cfg.max_message = DEFAULT_MAX_MESSAGE;
	rt->nsched = cfg->schedulers > 0 ? cfg->schedulers : (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (rt->nsched < 1)
		rt->nsched = 1;
	if (rt->nsched > MAX_SCHEDULERS)
		rt->nsched = MAX_SCHEDULERS;
	rt->mod = mod;
	rt->limits.fuel_per_slice = rt->cfg.reductions;
	rt->limits.max_memory = 0;   /* per process, from its capabilities */
	rt->limits.mem_pool = engine_mem_pool_new(4096);
	pthread_mutex_init(&rt->timer_lock, NULL);
	pthread_mutex_init(&rt->blocking_lock, NULL);
	pthread_mutex_init(&rt->done_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&rt->done_cond, &ca);
	pthread_condattr_destroy(&ca);
	stack_pool_init(&rt->stacks, rt->cfg.stack_size);
	if (reactor_init(&rt->reactor) != 0) {
		snprintf(err, errlen, "cannot create the I/O reactor: %s", strerror(errno));
		stack_pool_destroy(&rt->stacks);
		free(rt);
		return -EIO;
	}
	if (ptable_init(&rt->ptable) != 0 || registry_init(&rt->registry) != 0) {
		snprintf(err, errlen, "cannot initialise the runtime");
		rt_free(rt);
		return -ENOMEM;
	}

	/* The main process, built like a spawned one. */
	struct proc *p = ptable_alloc(&rt->ptable);
	void *stack = p ? stack_alloc(&rt->stacks) : NULL;
	if (stack == NULL) {
		snprintf(err, errlen, "out of memory creating the main process");
		rt_free(rt);
		return -ENOMEM;
	}
	mbox_init(&p->mbox);
	p->rt = rt;
	p->is_main = true;
	caps_ref(cfg->root);
	p->caps = cfg->root;
	p->stack = stack;
	fiber_init(&p->fiber, stack, rt->stacks.stack_size, proc_fiber_main, p);
	p->state = PS_RUNNABLE;
	atomic_store(&rt->live, 1);
	atomic_store(&p->pid, (uint64_t)p->gen << 32 | p->index);

	int rc = sched_start(rt, err, errlen);
	if (rc != 0) {
		free(rt->scheds);
		rt_free(rt);
		return rc;
	}
	sched_enqueue(rt, p);

	/* Wait for the main process, ticking for preemption meanwhile. */
	pthread_mutex_lock(&rt->done_lock);
	while (!rt->done) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += TICK_NS;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&rt->done_cond, &rt->done_lock, &ts);
		if (!rt->done) {
			pthread_mutex_unlock(&rt->done_lock);
			sched_tick(rt);
			pthread_mutex_lock(&rt->done_lock);
		}
	}
	pthread_mutex_unlock(&rt->done_lock);
	*res = rt->main_res;
	*reason = rt->main_reason;

	/* Stop: the main process is gone; the others are discarded. A thread
	 * stuck in a blocking call keeps the runtime alive: leave it all. */
	if (!sched_stop(rt) || !blocking_pool_stop(rt))
		return 1;   /* threads remain: the caller must not unload the module */
	rt_free(rt);
	return 0;
}
