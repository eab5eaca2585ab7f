/*
 * ccrun.c — run the C compiler over a build: one translation unit, or the
 * units split.c cut, several compilers at a time, then the link.
 *
 * Each compiler runs through util_run, so each is bounded like any tool
 * (RLIMIT_CPU and RLIMIT_AS per process, its own process group, killed
 * with wisp): with J compilers at a time a build may hold J times the
 * memory limit, and J is at most the CPUs this process may use. Workers
 * are threads, each blocked in util_run for one unit at a time and taking
 * the next from a shared counter (units are of about equal length, so no
 * ordering is needed); the calling thread waits, and on a terminal shows
 * how many units are done. A failed unit fails the build at once: no
 * further unit starts, the compilers still running are killed (util_run's
 * progress callback asks for it within 250 ms), and its message is the
 * build's.
 *
 * Alternative rejected: a single thread polling every tool's pipes. It
 * would need util_run cut in two (start, then collect) for no gain: the
 * compilers are separate processes either way, and util_run's parent-death
 * signal follows the thread that started the tool, which here stays in
 * util_run until the tool has ended.
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ccrun.h"
#include "limits.h"
#include "split.h"

/* Line tables and inlining records, functions in source order and kept
 * distinct, so a trap names its wasm function (src/engine/symbolize.c);
 * each function's stack use (stackcheck.c). -O2 with -O3's limit for
 * inlining functions not declared inline (30 instructions, -O2's is 15):
 * that limit is what made fib 1.97x native -> 1.1x (gcc inlines the
 * recursion into itself, as it does natively at -O2 where the function is
 * smaller, without the reduction hook and the stack check). Plain -O3
 * did the same, and no other kernel differed beyond noise in interleaved
 * runs, but cost 3-5 % more compile time: a 100 KB Rust module built in
 * 2.00-2.06 s here against 1.93-2.01 s. Not -march=native: the cache key
 * would have to name the CPU (a cache copied to an older machine would run
 * instructions it lacks). */
const char *const ccrun_opt_flags[] = {
	"-O2", "--param=max-inline-insns-auto=30",
	"-fPIC", "-w", "-fvisibility=hidden", "-g1",
	"-fno-toplevel-reorder", "-fno-reorder-blocks-and-partition",
	"-fno-ipa-icf", "-fno-partial-inlining", "-fno-strict-aliasing",
	"-fstack-usage", NULL,
};

#define MAX_ARGS 64

struct task {
	char *argv[MAX_ARGS];
	int rc;                          /* util_run's */
	struct util_run_status st;
	char out[8192];                  /* the compiler's output */
};

struct pool {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	const struct util_limits *lim;
	struct task *tasks;
	const unsigned *order;           /* which task to start next */
	unsigned ntasks, next, done, alive;
	bool failed;
};

static bool task_failed(const struct task *t)
{
	return t->rc < 0 || t->st.code != 0;
}

/* util_run's progress callback in a worker: stop this unit's compiler once
 * another unit has failed (the build has failed: no use waiting for it). */
static bool stop_if_failed(void *arg, double secs)
{
	struct pool *pl = arg;
	(void)secs;
	pthread_mutex_lock(&pl->lock);
	bool failed = pl->failed;
	pthread_mutex_unlock(&pl->lock);
	return failed;
}

static void *worker(void *arg)
{
	struct pool *pl = arg;
	pthread_mutex_lock(&pl->lock);
	while (!pl->failed && pl->next < pl->ntasks) {
		struct task *t = &pl->tasks[pl->order[pl->next++]];
		pthread_mutex_unlock(&pl->lock);
		t->rc = util_run(t->argv, pl->lim, t->out, sizeof(t->out), stop_if_failed, pl,
		                 &t->st);
		pthread_mutex_lock(&pl->lock);
		pl->done++;
		pl->failed |= task_failed(t);
		pthread_cond_broadcast(&pl->changed);
	}
	pl->alive--;
	pthread_cond_broadcast(&pl->changed);
	pthread_mutex_unlock(&pl->lock);
	return NULL;
}

struct shown {
	const struct ccrun *c;
	double t0;
	bool any;
};

static void show(struct shown *s, unsigned done, unsigned n)
{
	double secs = util_now() - s->t0;
	if (!s->c->progress || secs < 1.0)
		return;
	if (n > 1)
		fprintf(stderr, "\rwisp: compiling %s (%s tier): %u/%u units, %.0f s", s->c->display,
		        s->c->opt ? "opt" : "fast", done, n, secs);
	else
		fprintf(stderr, "\rwisp: compiling %s (%s tier) with %s ... %.0f s", s->c->display,
		        s->c->opt ? "opt" : "fast", s->c->cc, secs);
	s->any = true;
}

static bool show_one(void *arg, double secs)
{
	(void)secs;
	show(arg, 0, 1);
	return false;
}

/* Run the tasks in `order`, at most `jobs` at a time; 0 once all have run
 * (whatever their status), or a negative errno if no worker could start. */
static int run_tasks(struct task *tasks, const unsigned *order, unsigned n, unsigned jobs,
                     struct shown *s)
{
	if (n == 1) {
		tasks[0].rc = util_run(tasks[0].argv, s->c->lim, tasks[0].out, sizeof(tasks[0].out),
		                       s->c->progress ? show_one : NULL, s, &tasks[0].st);
		return 0;
	}
	struct pool pl = { .lim = s->c->lim, .tasks = tasks, .order = order, .ntasks = n };
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&pl.changed, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&pl.lock, NULL);
	pthread_t th[SPLIT_MAX_UNITS + 1];
	unsigned started = 0;
	if (jobs > n)
		jobs = n;
	if (jobs > sizeof(th) / sizeof(th[0]))
		jobs = sizeof(th) / sizeof(th[0]);
	pthread_mutex_lock(&pl.lock);
	for (; started < jobs; started++) {
		pl.alive++;
		if (pthread_create(&th[started], NULL, worker, &pl) != 0) {
			pl.alive--;
			break;
		}
	}
	while (pl.alive > 0) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 250 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&pl.changed, &pl.lock, &ts);
		show(s, pl.done, n);
	}
	pthread_mutex_unlock(&pl.lock);
	for (unsigned i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	pthread_cond_destroy(&pl.changed);
	pthread_mutex_destroy(&pl.lock);
	return started > 0 ? 0 : -EAGAIN;
}

/* The message for a task that failed. */
static int explain(const struct ccrun *c, struct task *t, char *err, size_t errlen)
{
	if (t->rc < 0) {
		snprintf(err, errlen, "cannot run the C compiler '%s': %s", c->cc, strerror(-t->rc));
		return t->rc;
	}
	char tool[300];
	snprintf(tool, sizeof(tool), "the C compiler '%s'", c->cc);
	if (limits_explain(tool, &t->st, c->lim, t->out, err, errlen))
		return -E2BIG;
	char *nl = strchr(t->out, '\n');
	if (nl && nl - t->out > 400)
		*nl = '\0';
	if (t->st.signal != 0)
		snprintf(err, errlen, "the C compiler '%s' was killed (%s) on generated code:\n%.900s",
		         c->cc, strsignal(t->st.signal), t->out);
	else
		snprintf(err, errlen, "the C compiler '%s' failed (status %d) on generated code:\n%.900s",
		         c->cc, t->st.code, t->out);
	return -EIO;
}

/* The tasks' indices, largest source file first: with more units than
 * compilers, the last to start are the shortest, so the compilers end
 * close together (a 6,800-line unit started last kept one core busy alone
 * for 0.4 s). (Sizes only order; a file that cannot be read counts 0.) */
static void longest_first(const char (*src)[PATH_MAX + 64], unsigned n, unsigned *order)
{
	off_t size[SPLIT_MAX_UNITS + 1];
	for (unsigned i = 0; i < n; i++) {
		struct stat sb;
		size[i] = src[i][0] && stat(src[i], &sb) == 0 ? sb.st_size : 0;
		unsigned j = i;
		for (; j > 0 && size[order[j - 1]] < size[i]; j--)
			order[j] = order[j - 1];
		order[j] = i;
	}
}

/* Append to argv (at *n, NULL-terminated); false if it is full. */
static bool push(char **argv, unsigned *n, const char *arg)
{
	if (*n + 1 >= MAX_ARGS)
		return false;
	argv[(*n)++] = (char *)arg;
	argv[*n] = NULL;
	return true;
}

static void push_opt_flags(char **argv, unsigned *n)
{
	for (const char *const *f = ccrun_opt_flags; *f; f++)
		push(argv, n, *f);
}

int ccrun_build(const struct ccrun *c, const char *workdir, const struct codegen_files *files,
                const char *out_so, char *err, size_t errlen)
{
	char inc[PATH_MAX + 2];
	snprintf(inc, sizeof(inc), "-I%s", workdir);
	const char *data = files->data_obj[0] ? files->data_obj : NULL;
	struct shown s = { c, util_now(), false };
	unsigned units = files->nunits > 1 ? files->nunits : 0;
	/* units + main.c, then the link; or tu.c alone */
	unsigned ntasks = units ? units + 1 : 1;
	assert(ntasks <= SPLIT_MAX_UNITS + 1);        /* split.c's bound */
	struct task *tasks = calloc(ntasks + 1, sizeof(*tasks));
	char (*src)[PATH_MAX + 64] = calloc(ntasks, sizeof(*src));
	char (*obj)[PATH_MAX + 64] = calloc(ntasks, sizeof(*obj));
	if (tasks == NULL || src == NULL || obj == NULL) {
		free(tasks);
		free(src);
		free(obj);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	struct task *link = &tasks[ntasks];
	unsigned ln = 0;
	push(link->argv, &ln, c->cc);
	push(link->argv, &ln, "-shared");
	if (units == 0) {
		/* -lm: generated code calls libm (floor, sqrt, ...), which the
		 * host itself may not link. The data object goes last but one. */
		struct task *t = &tasks[0];
		unsigned n = 0;
		push(t->argv, &n, c->cc);
		push(t->argv, &n, "-shared");
		if (c->opt)
			push_opt_flags(t->argv, &n);
		else
			push(t->argv, &n, "-w");
		push(t->argv, &n, inc);
		push(t->argv, &n, "-o");
		push(t->argv, &n, out_so);
		push(t->argv, &n, files->tu);
		if (data)
			push(t->argv, &n, data);
		push(t->argv, &n, "-lm");
	} else {
		for (unsigned i = 0; i < ntasks; i++) {
			if (i > 0) {
				snprintf(src[i], sizeof(src[i]), "%s/unit%u.c", workdir, i - 1);
				snprintf(obj[i], sizeof(obj[i]), "%s/unit%u.o", workdir, i - 1);
			} else {
				snprintf(src[i], sizeof(src[i]), "%s/main.c", workdir);
				snprintf(obj[i], sizeof(obj[i]), "%s/main.o", workdir);
			}
			unsigned n = 0;
			push(tasks[i].argv, &n, c->cc);
			push_opt_flags(tasks[i].argv, &n);
			push(tasks[i].argv, &n, "-c");
			push(tasks[i].argv, &n, inc);
			push(tasks[i].argv, &n, "-o");
			push(tasks[i].argv, &n, obj[i]);
			push(tasks[i].argv, &n, src[i]);
			if (i > 0)
				push(link->argv, &ln, obj[i]);
		}
		push(link->argv, &ln, obj[0]);     /* main.o last: the sentinel */
		push(link->argv, &ln, "-o");
		push(link->argv, &ln, out_so);
		if (data)
			push(link->argv, &ln, data);
		push(link->argv, &ln, "-lm");
	}
	unsigned order[SPLIT_MAX_UNITS + 1];
	longest_first(src, ntasks, order);
	int rc = run_tasks(tasks, order, ntasks, c->jobs ? c->jobs : 1, &s);
	if (rc != 0)
		snprintf(err, errlen, "cannot start a thread to run the C compiler: %s",
		         strerror(-rc));
	/* the first that failed by itself (not stopped for another's failure) */
	for (unsigned i = 0; i < ntasks && rc == 0; i++)
		if (task_failed(&tasks[i]) && !tasks[i].st.stopped)
			rc = explain(c, &tasks[i], err, errlen);
	if (rc == 0 && units > 0) {
		link->rc = util_run(link->argv, c->lim, link->out, sizeof(link->out), NULL, NULL,
		                    &link->st);
		if (task_failed(link))
			rc = explain(c, link, err, errlen);
	}
	if (s.any)
		fprintf(stderr, "\r\033[K");
	free(tasks);
	free(src);
	free(obj);
	return rc;
}

unsigned ccrun_default_jobs(bool background)
{
	cpu_set_t set;
	long n = 0;
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		n = CPU_COUNT(&set);
	if (n <= 0)
		n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n <= 0)
		n = 1;
	if (background)
		n /= 2;
	if (n > SPLIT_MAX_UNITS)
		n = SPLIT_MAX_UNITS;
	return n > 0 ? (unsigned)n : 1;
}
