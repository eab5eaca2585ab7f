/*
 * runtime.c — starting a runtime with a main process, and tearing it down.
 *
 * The caller's thread only waits (and ticks the schedulers for
 * preemption): the main process runs on a scheduler like any other. When
 * it ends, every scheduler stops after its current slice; processes still
 * alive are then discarded (their instances freed, their fibers never
 * resumed), which is what "wisp run ends when the main process ends"
 * means. A scheduler stuck in a blocking host call (a read from a
 * terminal, say) would keep its thread; such a thread is given a grace
 * period and then left behind, and the runtime is not freed, since the
 * process is about to exit anyway.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "caps.h"
#include "proc_impl.h"

#define DEFAULT_FUEL 4000
#define DEFAULT_STACK (256u * 1024)
#define DEFAULT_MAX_MESSAGE (64ull << 20)
#define MEM_POOL_PER_CLASS 1024
/* Slots of the memory pool left unused this long give their pages back
 * (engine_mem_pool_trim): a burst of processes leaves no lasting RSS. */
#define POOL_TRIM_NS (10ull * 1000000000)

static void no_start(void *host, struct proc *p) { (void)host; (void)p; }
static void no_ready(void *host, engine_instance *in) { (void)host; (void)in; }
static void no_end(void *host) { (void)host; }

static const struct proc_hooks no_hooks = { 0, no_start, no_ready, NULL, no_end };

static void discard(struct proc *p, void *arg)
{
	(void)arg;
	proc_discard(p);
}

void *rt_host_shared(struct rt *rt, void *(*make)(void), void (*destroy)(void *))
{
	for (int i = 0; i < RT_HOST_SHARED; i++) {
		struct rt_host_shared *h = &rt->host_shared[i];
		void *state = atomic_load_explicit(&h->state, memory_order_acquire);
		if (state != NULL && h->make == make)
			return state;
	}
	void *state = NULL;
	pthread_mutex_lock(&rt->blocking_lock);
	for (int i = 0; i < RT_HOST_SHARED && state == NULL; i++) {
		struct rt_host_shared *h = &rt->host_shared[i];
		if (h->make == make && h->state != NULL) {
			state = h->state;
		} else if (h->make == NULL || (h->make == make && h->state == NULL)) {
			if ((state = make()) == NULL)
				break;
			h->make = make;
			h->destroy = destroy;
			atomic_store_explicit(&h->state, state, memory_order_release);
		}
	}
	pthread_mutex_unlock(&rt->blocking_lock);
	return state;
}

/* The host layer's shared state goes after every process and message
 * (which may hold references into it). */
static void host_shared_free(struct rt *rt)
{
	for (int i = 0; i < RT_HOST_SHARED; i++)
		if (rt->host_shared[i].state != NULL)
			rt->host_shared[i].destroy(rt->host_shared[i].state);
}

static void rt_free(struct rt *rt)
{
	ptable_each(&rt->ptable, discard, rt);
	ptable_destroy(&rt->ptable);
	registry_destroy(&rt->registry);
	rt_modules_free(rt);
	stack_pool_destroy(&rt->stacks);
	engine_mem_pool_free(rt->limits.mem_pool);
	rt_stats_free(rt);
	host_shared_free(rt);
	pthread_mutex_destroy(&rt->blocking_lock);
	pthread_mutex_destroy(&rt->done_lock);
	pthread_cond_destroy(&rt->done_cond);
	free(rt);
}

/* One scheduler per CPU this process may run on: under `taskset` or a
 * cpuset, the machine's count would put several schedulers on one CPU,
 * preempting each other while they hold run queues (Go sizes GOMAXPROCS
 * the same way). */
static int cpus_allowed(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	return (int)sysconf(_SC_NPROCESSORS_ONLN);
}

static int scheduler_count(const struct rt_config *cfg)
{
	int n = cfg->schedulers > 0 ? cfg->schedulers : cpus_allowed();
	if (n < 1)
		n = 1;
	return n > SCHED_MAX ? SCHED_MAX : n;
}

/* The runtime's state before any thread runs. */
static struct rt *rt_new(engine_module *mod, const struct rt_config *cfg,
                         char *err, size_t errlen)
{
	struct rt *rt = calloc(1, sizeof(*rt));
	if (rt == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	rt->cfg = *cfg;
	rt->hooks = cfg->hooks ? *cfg->hooks : no_hooks;
	if (rt->cfg.reductions <= 0)
		rt->cfg.reductions = DEFAULT_FUEL;
	if (rt->cfg.stack_size == 0)
		rt->cfg.stack_size = DEFAULT_STACK;
	if (rt->cfg.max_message == 0)
		rt->cfg.max_message = DEFAULT_MAX_MESSAGE;
	rt->mod = mod;
	rt->limits.fuel_per_slice = rt->cfg.reductions;
	rt->limits.max_memory = 0;   /* per process, from its capabilities */
	rt->limits.mem_pool = engine_mem_pool_new(MEM_POOL_PER_CLASS);
	pthread_mutex_init(&rt->blocking_lock, NULL);
	pthread_mutex_init(&rt->done_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&rt->done_cond, &ca);
	pthread_condattr_destroy(&ca);
	stack_pool_init(&rt->stacks, rt->cfg.stack_size);
	/* (The module table last: once it holds the main module, rt_free
	 * unloads it, and the caller must not.) */
	if (ptable_init(&rt->ptable, rt->hooks.host_size) != 0 ||
	    registry_init(&rt->registry) != 0 || rt->limits.mem_pool == NULL ||
	    rt_stats_init(rt, scheduler_count(cfg)) != 0 || rt_modules_init(rt) != 0) {
		snprintf(err, errlen, "cannot initialise the runtime: out of memory");
		rt_free(rt);
		return NULL;
	}
	return rt;
}

/* The embedder asks us to stop (a signal): tell the main process, as
 * Erlang's init:stop tells the root of the tree; stop everything if it
 * does not end within the grace period or the request comes again. */
static bool shutdown_step(struct rt *rt, int *seen, uint64_t *deadline)
{
	int now = atomic_load(rt->cfg.stop);
	if (now == *seen)
		return *deadline != 0 && sched_now_ns() >= *deadline;
	if (*seen != 0)
		return true;              /* asked twice: now */
	*seen = now;
	*deadline = sched_now_ns() + (rt->cfg.shutdown_grace_ns ? rt->cfg.shutdown_grace_ns
	                                                       : 5000000000ull);
	struct reason r = { WISP_EXIT_SHUTDOWN, now, "" };
	snprintf(r.text, sizeof(r.text), "shutdown (signal %d)", now);
	uint64_t main_pid = rt->main_pid;
	struct msg *m = msg_reason(SIG_EXIT, main_pid, 0, 0, &r);
	if (m != NULL && !proc_deliver(rt, main_pid, m))
		msg_free(m);
	return false;
}

/* Wait for the main process, ticking for preemption meanwhile; false if it
 * was stopped (cfg->stop) before it ended. */
static bool wait_main(struct rt *rt)
{
	int seen = 0;
	uint64_t deadline = 0, next_trim = sched_now_ns() + POOL_TRIM_NS;
	pthread_mutex_lock(&rt->done_lock);
	while (!rt->done) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += SCHED_TICK_NS;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&rt->done_cond, &rt->done_lock, &ts);
		if (!rt->done) {
			pthread_mutex_unlock(&rt->done_lock);
			sched_tick(&rt->sg);
			if (sched_now_ns() >= next_trim) {
				engine_mem_pool_trim(rt->limits.mem_pool);
				stack_pool_trim(&rt->stacks);
				next_trim = sched_now_ns() + POOL_TRIM_NS;
			}
			bool force = rt->cfg.stop != NULL && shutdown_step(rt, &seen, &deadline);
			/* No main process: asked to stop, done once the rest are. */
			if (rt->cfg.no_main && seen != 0 && atomic_load(&rt->live) == 0)
				force = true;
			pthread_mutex_lock(&rt->done_lock);
			if (force && !rt->done) {
				pthread_mutex_unlock(&rt->done_lock);
				return false;
			}
		}
	}
	pthread_mutex_unlock(&rt->done_lock);
	return true;
}

int rt_run_main(engine_module *mod, const struct rt_config *cfg,
                struct engine_result *res, struct reason *reason,
                char *err, size_t errlen)
{
	struct rt *rt = rt_new(mod, cfg, err, errlen);
	if (rt == NULL) {
		engine_module_unload(mod);
		return -ENOMEM;
	}
	struct sched_ops ops = {
		.exited = proc_exited,
		.io_ready = proc_io_ready,
		.freeze = proc_freeze,
		.thaw = proc_thaw,
		.ctx = rt,
	};
	int rc = sched_start(&rt->sg, scheduler_count(cfg), &ops, err, errlen);
	if (rc != 0) {
		rt_free(rt);
		return rc;
	}
	sched_set_hibernation(&rt->sg, cfg->hibernate_after_ns);
	const struct proc_remote *remote = cfg->remote;
	if (remote != NULL && (rc = remote->attach(remote->ctx, rt, err, errlen)) != 0) {
		sched_stop(&rt->sg, proc_drop_timer);
		rt_free(rt);
		return rc;
	}
	const struct proc_control *control = cfg->control;
	if (control != NULL && (rc = control->attach(control->ctx, rt, err, errlen)) != 0) {
		if (remote != NULL)
			remote->detach(remote->ctx);
		sched_stop(&rt->sg, proc_drop_timer);
		rt_free(rt);
		return rc;
	}
	rc = cfg->no_main ? 0 : proc_start_main(rt, cfg->root);
	if (rc != 0) {
		snprintf(err, errlen, "cannot create the main process: %s", strerror(-rc));
		if (control != NULL)
			control->detach(control->ctx);
		if (remote != NULL)
			remote->detach(remote->ctx);
		sched_stop(&rt->sg, proc_drop_timer);
		rt_free(rt);
		return rc;
	}
	bool ended = wait_main(rt);
	if (control != NULL)
		control->detach(control->ctx);
	/* Other nodes see this node go before its processes are discarded. */
	if (remote != NULL)
		remote->detach(remote->ctx);
	if (ended) {
		*res = rt->main_res;
		*reason = rt->main_reason;
	} else {
		memset(res, 0, sizeof(*res));
		res->outcome = ENGINE_EXITED;
		*reason = (struct reason){ WISP_EXIT_SHUTDOWN, atomic_load(cfg->stop), "shutdown" };
	}

	/* Stop: the main process is gone; the others are discarded. A thread
	 * stuck in a blocking call keeps the runtime alive: leave it all. */
	if (!sched_stop(&rt->sg, proc_drop_timer) || !blocking_pool_stop(rt))
		return 1;   /* threads remain: the caller must not unload the module */
	rt_free(rt);
	return ended ? 0 : RT_STOPPED;
}
