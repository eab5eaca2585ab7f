/*
 * blocking.c — a small pool of threads for work that may block a thread
 * (DNS resolution through getaddrinfo), so that schedulers never stall.
 *
 * The calling process queues a job that lives on its own stack and parks
 * until a pool thread has run it; a signal that wakes it meanwhile (a kill)
 * waits until the job is done, so the job's memory is never released while
 * a pool thread uses it. Threads are started on first use (most programs
 * never need them), at most POOL_THREADS.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proc_impl.h"

#define POOL_THREADS 4

struct bjob {
	void (*fn)(void *);
	void *arg;
	struct proc *proc;
	atomic_bool done;
	struct bjob *next;
};

struct blocking_pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct bjob *head, *tail;
	pthread_t threads[POOL_THREADS];
	int nthreads, idle;
	bool stop;
};

static void *worker(void *arg)
{
	struct blocking_pool *bp = arg;
	pthread_mutex_lock(&bp->lock);
	for (;;) {
		while (bp->head == NULL && !bp->stop) {
			bp->idle++;
			pthread_cond_wait(&bp->cond, &bp->lock);
			bp->idle--;
		}
		if (bp->head == NULL)
			break;
		struct bjob *j = bp->head;
		bp->head = j->next;
		if (bp->head == NULL)
			bp->tail = NULL;
		pthread_mutex_unlock(&bp->lock);
		j->fn(j->arg);
		/* After `done` the job's stack may be gone: take what we need. */
		struct proc *p = j->proc;
		atomic_store(&j->done, true);
		sched_wake(&p->rt->sg, &p->task);
		pthread_mutex_lock(&bp->lock);
	}
	pthread_mutex_unlock(&bp->lock);
	return NULL;
}

int proc_run_blocking(struct proc *self, void (*fn)(void *), void *arg)
{
	struct rt *rt = self->rt;
	pthread_mutex_lock(&rt->blocking_lock);
	if (rt->blocking == NULL) {
		struct blocking_pool *bp = calloc(1, sizeof(*bp));
		if (bp == NULL) {
			pthread_mutex_unlock(&rt->blocking_lock);
			return -ENOMEM;
		}
		pthread_mutex_init(&bp->lock, NULL);
		pthread_cond_init(&bp->cond, NULL);
		rt->blocking = bp;
	}
	pthread_mutex_unlock(&rt->blocking_lock);
	struct blocking_pool *bp = rt->blocking;

	struct bjob job = { .fn = fn, .arg = arg, .proc = self };
	atomic_init(&job.done, false);
	pthread_mutex_lock(&bp->lock);
	if (bp->idle == 0 && bp->nthreads < POOL_THREADS &&
	    pthread_create(&bp->threads[bp->nthreads], NULL, worker, bp) == 0)
		bp->nthreads++;
	if (bp->nthreads == 0) {
		pthread_mutex_unlock(&bp->lock);
		return -EAGAIN;
	}
	if (bp->tail)
		bp->tail->next = &job;
	else
		bp->head = &job;
	bp->tail = &job;
	pthread_cond_signal(&bp->cond);
	pthread_mutex_unlock(&bp->lock);
	/* The job lives on this stack and a pool thread writes it: the
	 * process must not hibernate (drop its stack) meanwhile. */
	self->task.no_hibernate = true;
	proc_waiting(self, PROC_WAIT_BLOCKING, 0);
	while (!atomic_load(&job.done))
		proc_park(self);
	self->task.no_hibernate = false;
	return 0;
}

bool blocking_pool_stop(struct rt *rt)
{
	struct blocking_pool *bp = rt->blocking;
	if (bp == NULL)
		return true;
	pthread_mutex_lock(&bp->lock);
	bp->stop = true;
	pthread_cond_broadcast(&bp->cond);
	pthread_mutex_unlock(&bp->lock);
	bool all = true;
	for (int i = 0; i < bp->nthreads; i++) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 2;
		if (pthread_timedjoin_np(bp->threads[i], NULL, &ts) != 0)
			all = false;
	}
	if (!all)
		return false;   /* a thread is stuck in a resolver: leave it */
	pthread_mutex_destroy(&bp->lock);
	pthread_cond_destroy(&bp->cond);
	free(bp);
	rt->blocking = NULL;
	return true;
}
