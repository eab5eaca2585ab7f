/*
 * inspect.c — listing the processes of a running runtime (wisp ps), one
 * in detail (wisp inspect), and exit signals from outside (wisp kill).
 *
 * The walk. rt_list goes through the process table slot by slot (two
 * acquire loads a slot, no table lock) and looks at each live process
 * under its task's spinlock (sched_task_peek), for well under a
 * microsecond: no global lock, no pause of any scheduler, no stopped
 * world. What it may read there depends on the task's state:
 *   - always: the pid (checked again under the lock: a slot reused
 *     meanwhile holds another process, left out), the fields set before
 *     the pid was published (parent, birth), the atomics (memory
 *     account, reductions of ended slices);
 *   - not running (runnable, waiting, hibernated): what only the process
 *     writes, as it left it when it switched out — its wait, its mailbox
 *     list and count, its fuel, its links and monitors, its stack (walked
 *     by frame pointers to the first return address into its module,
 *     which names the wasm function it is in).
 * A process cannot end while its lock is held (its end is written under
 * it), and a new one cannot take the slot before that, so every field
 * read under the lock belongs to the pid that was checked. Names come
 * from the registry, under its mutex, for that pid only. Nothing is
 * taken while the task lock is held but atomics: the module a function
 * name is looked up in is held (rt_module_hold: the process holds it
 * too, so the count is not 0) and named after the lock is let go.
 *
 * A running process is not waited for by the listing (it shows as
 * running, with what any thread may read); wisp inspect waits a little
 * for it to stop, since links and monitors are only readable then.
 *
 * Rejected: asking each process for its state with a signal (BEAM's
 * process_info for another process): a million wake-ups for one listing,
 * and a process stuck in a long host call never answers; a seqlock per
 * process: every process would pay a counter update at every park for
 * the rare listing, where the task lock is taken at every park already.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "caps.h"
#include "inspect.h"
#include "mailbox.h"
#include "proc_impl.h"

/* Signals and messages pushed but not drained yet are counted up to
 * this (the walk holds the task lock meanwhile: a chain of cold nodes
 * costs ~100 ns each, and a waker of the process spins that long). */
#define PENDING_COUNT_MAX 1000
/* Frames walked to find the innermost wasm one (wisp's own frames between
 * a park and the guest are fewer than ten). */
#define LIST_FRAMES 24
/* Modules a listing holds at once to name functions in. */
#define WALK_MODULES 16

const char *proc_view_name(enum proc_view v)
{
	switch (v) {
	case PROC_VIEW_RUNNING: return "running";
	case PROC_VIEW_RUNNABLE: return "runnable";
	case PROC_VIEW_WAITING: return "waiting";
	case PROC_VIEW_HIBERNATED: return "hibernated";
	}
	return "?";
}

const char *proc_wait_name(enum proc_wait w)
{
	switch (w) {
	case PROC_WAIT_NONE: return "";
	case PROC_WAIT_RECEIVE: return "receive";
	case PROC_WAIT_RECEIVE_FD: return "receive_fd";
	case PROC_WAIT_CALL: return "call";
	case PROC_WAIT_SERVED: return "served_file";
	case PROC_WAIT_TIMER: return "timer";
	case PROC_WAIT_FD: return "fd";
	case PROC_WAIT_BLOCKING: return "blocking";
	case PROC_WAIT_HIBERNATE: return "hibernate";
	}
	return "?";
}

/* Modules held for a walk, so that each is held once, not once a
 * process. */
struct held {
	engine_module *mod[WALK_MODULES];
	size_t n;
};

/* m (which a process not running holds) held in h, or false if h is
 * full (the function then goes unnamed). Under the task lock: an atomic
 * add only. */
static bool hold(struct held *h, engine_module *m)
{
	for (size_t i = 0; i < h->n; i++)
		if (h->mod[i] == m)
			return true;
	if (h->n == WALK_MODULES)
		return false;
	rt_module_hold(m);
	h->mod[h->n++] = m;
	return true;
}

static void release_all(struct rt *rt, struct held *h)
{
	for (size_t i = 0; i < h->n; i++)
		rt_module_put(rt, h->mod[i]);
	h->n = 0;
}

/* One look at a process (sched_task_peek's argument). */
struct look {
	uint64_t pid;
	uint64_t now;             /* the coarse clock births are stamped with */
	uint64_t now_ns;          /* the clock deadlines are set by */
	struct held *held;
	struct proc_info *info;
	bool alive;
	bool own;                 /* its own state was readable (not running) */
	engine_module *mod;       /* held; the frames' module (NULL: none) */
	uintptr_t pcs[PROC_DETAIL_FRAMES];
	size_t npcs, max_pcs;
	bool all_frames;          /* the module keeps frame pointers */
	struct proc_detail *d;    /* for rt_inspect, else NULL */
	bool sets_fit;            /* d's arrays held the sets */
};

/* Messages and signals pushed and not yet drained (the process is not
 * running: only pushes happen, which prepend). */
static uint32_t pending(struct proc *p)
{
	uint32_t n = 0;
	struct msg *m = atomic_load_explicit(&p->mbox.head, memory_order_acquire);
	for (; m != NULL && m != MBOX_CLOSED && n < PENDING_COUNT_MAX; m = m->next)
		n++;
	return n;
}

static bool frame(uintptr_t ret, void *arg)
{
	struct look *l = arg;
	if (!engine_module_has_return(l->mod, ret))
		return l->npcs == 0;   /* wisp's frames first; the guest's after */
	l->pcs[l->npcs++] = ret;
	return l->all_frames && l->npcs < l->max_pcs;
}

/* The wasm frames of a process not running whose stack is readable, in
 * l->mod (held). */
static void look_at_stack(struct task *t, struct proc *p, struct look *l)
{
	if (l->mod == NULL || p->inst == NULL)
		return;
	l->all_frames = engine_module_frame_pointers(l->mod);
	sched_task_frames(t, LIST_FRAMES + l->max_pcs, frame, l);
}

/* What only the process writes: it is not running. */
static void look_at_own(struct task *t, struct proc *p, const struct sched_task_view *v,
                        struct look *l)
{
	struct proc_info *in = l->info;
	l->own = true;
	in->mailbox = p->mbox.n + pending(p);
	in->stack = v->stack_used;
	in->cpu_ns = v->cpu_ns;
	/* (A scheduler freezing it charges the work to its fuel meanwhile.) */
	if (p->inst != NULL && v->state != TASK_FREEZING) {
		int64_t left = engine_instance_vmctx(p->inst)->fuel;
		if (left < p->rt->cfg.reductions)
			in->reductions += (uint64_t)(p->rt->cfg.reductions - left);
	}
	/* (It holds its module, and cannot let go of it now.) */
	engine_module *m = atomic_load_explicit(&p->mod, memory_order_relaxed);
	if (m != NULL && hold(l->held, m))
		l->mod = m;
	if (v->state != TASK_RUNNABLE) {
		in->wait = (enum proc_wait)p->wait_kind;
		in->wait_on = p->wait_on;
		if (p->wait_until != UINT64_MAX)
			in->wait_left_ns = p->wait_until > l->now_ns ? (int64_t)(p->wait_until - l->now_ns)
			                                             : 0;
	}
	if (v->stack_readable)
		look_at_stack(t, p, l);
}

/* The detail only rt_inspect wants (not running). */
static void look_at_detail(struct proc *p, struct look *l)
{
	struct proc_detail *d = l->d;
	d->trap_exit = p->trap_exit;
	d->traced = atomic_load_explicit(&p->trace, memory_order_relaxed) != NULL;
	uint64_t bytes = 0;
	uint32_t n = 0;
	for (struct msg *m = p->mbox.first; m != NULL && n < PENDING_COUNT_MAX; m = m->next, n++)
		bytes += msg_bytes(m);
	d->mailbox_bytes = bytes;
	/* (Sized by a first look: if a set grew since, look again.) */
	l->sets_fit = p->links.n <= d->nlinks && p->watching.n <= d->nmonitors &&
	              p->watchers.n <= d->nmonitored_by;
	d->nlinks = p->links.n;
	d->nmonitors = p->watching.n;
	d->nmonitored_by = p->watchers.n;
	if (!l->sets_fit)
		return;   /* (the counts size the next look) */
	if (d->nlinks > 0)
		memcpy(d->links, p->links.v, d->nlinks * sizeof(*d->links));
	if (d->nmonitors > 0)
		memcpy(d->monitors, p->watching.v, d->nmonitors * sizeof(*d->monitors));
	if (d->nmonitored_by > 0)
		memcpy(d->monitored_by, p->watchers.v, d->nmonitored_by * sizeof(*d->monitored_by));
}

/* sched_task_peek's function: under t's lock. */
static void look_at(struct task *t, const struct sched_task_view *v, void *arg)
{
	struct look *l = arg;
	struct proc *p = proc_of_task(t);
	if (v->state == TASK_FREE || atomic_load_explicit(&p->pid, memory_order_acquire) != l->pid)
		return;
	l->alive = true;
	struct proc_info *in = l->info;
	in->pid = l->pid;
	in->parent = p->parent;
	in->is_main = p->is_main;
	in->program = p->program;
	in->age_ns = l->now > p->born_ns ? l->now - p->born_ns : 0;
	int64_t usage = atomic_load_explicit(&p->usage, memory_order_relaxed);
	in->memory = usage > 0 ? (uint64_t)usage : 0;
	in->reductions = atomic_load_explicit(&p->reductions, memory_order_relaxed);
	in->wait_left_ns = -1;
	switch (v->state) {
	case TASK_RUNNING:
		in->state = PROC_VIEW_RUNNING;
		return;
	case TASK_RUNNABLE:
		in->state = PROC_VIEW_RUNNABLE;
		break;
	default:
		in->state = v->hibernated ? PROC_VIEW_HIBERNATED : PROC_VIEW_WAITING;
		break;
	}
	look_at_own(t, p, v, l);
	if (l->d != NULL) {
		l->d->caps = p->caps;
		caps_ref(p->caps);
		look_at_detail(p, l);
	}
}

/* Look at the process in slot p as pid (sched_task_peek), then fill in
 * what needs no task lock: its names, its function's name. */
static void look(struct rt *rt, struct proc *p, struct look *l)
{
	sched_task_peek(&p->task, look_at, l);
	if (!l->alive)
		return;
	struct proc_info *in = l->info;
	/* (Names are at most 255 bytes: the first always fits.) */
	registry_names_of_pid(&rt->registry, p, l->pid, in->name, sizeof(in->name), &in->nnames);
	if (l->npcs > 0)
		engine_module_function_at(l->mod, l->pcs[0], in->function, sizeof(in->function));
}

static uint64_t coarse_now(struct rt *rt)
{
	/* (The clock processes' births are stamped with.) */
	return atomic_load_explicit(&rt->sg.coarse_ns, memory_order_relaxed);
}

int rt_list(struct rt *rt, int (*emit)(const struct proc_info *info, void *ctx), void *ctx,
            const atomic_bool *stop)
{
	struct held held = { .n = 0 };
	struct proc_info *in = malloc(sizeof(*in));
	if (in == NULL)
		return -ENOMEM;
	int rc = 0;
	uint64_t now = coarse_now(rt), now_precise = sched_now_ns();
	for (uint32_t c = 0; c < PT_MAX_CHUNKS && rc == 0; c++) {
		struct proc **chunk = atomic_load_explicit(&rt->ptable.chunks[c], memory_order_acquire);
		if (chunk == NULL)
			break;
		for (uint32_t i = 0; i < PT_CHUNK && rc == 0; i++) {
			if ((i & 1023) == 0 && stop != NULL && atomic_load(stop)) {
				rc = -ECANCELED;
				break;
			}
			struct proc *p = __atomic_load_n(&chunk[i], __ATOMIC_ACQUIRE);
			uint64_t pid = p != NULL ? atomic_load_explicit(&p->pid, memory_order_acquire) : 0;
			if (pid == 0)
				continue;
			memset(in, 0, sizeof(*in));
			struct look l = { .pid = pid, .now = now, .now_ns = now_precise, .held = &held,
			                  .info = in, .max_pcs = 1 };
			look(rt, p, &l);
			if (l.alive)
				rc = emit(in, ctx);
		}
	}
	release_all(rt, &held);
	free(in);
	return rc;
}

/* ---- one process in detail ---- */

/* Looks to find a running process stopped: first in a tight loop (a
 * process that computes is runnable for a moment between two slices),
 * then a millisecond apart (one in a long host call). */
#define INSPECT_SPINS 20000
#define INSPECT_TRIES (INSPECT_SPINS + 200)

static void pause_ms(void)
{
	struct timespec ts = { 0, 1000000 };
	nanosleep(&ts, NULL);
}

/* Room in d for n links, monitors and watchers (each at least 1). */
static int size_sets(struct proc_detail *d, uint32_t nl, uint32_t nm, uint32_t nw)
{
	free(d->links);
	free(d->monitors);
	free(d->monitored_by);
	d->links = malloc((nl + 1) * sizeof(*d->links));
	d->monitors = malloc((nm + 1) * sizeof(*d->monitors));
	d->monitored_by = malloc((nw + 1) * sizeof(*d->monitored_by));
	d->nlinks = nl;
	d->nmonitors = nm;
	d->nmonitored_by = nw;
	return d->links && d->monitors && d->monitored_by ? 0 : -ENOMEM;
}

/* The frames' names, the module's version and hash (after the lock). */
static int name_frames(struct rt *rt, struct look *l, struct proc_detail *d)
{
	if (l->mod == NULL)
		return 0;   /* (running whenever it was looked at) */
	d->vsn = rt_code_version(rt, l->mod);
	d->optimized = !engine_module_frame_pointers(l->mod);
	d->has_hash = rt_module_hash(l->mod, d->hash);
	/* As a crash report names them: the calls before the return
	 * addresses, an export's wasm2c wrapper folded into the function it
	 * exports, the calls gcc inlined listed one by one. */
	uintptr_t calls[PROC_DETAIL_FRAMES];
	for (size_t i = 0; i < l->npcs; i++)
		calls[i] = l->pcs[i] - 1;
	struct engine_frame *fr = malloc(PROC_DETAIL_FRAMES * sizeof(*fr));
	d->frames = calloc(PROC_DETAIL_FRAMES + 1, sizeof(*d->frames));
	if (fr == NULL || d->frames == NULL) {
		free(fr);
		return -ENOMEM;
	}
	size_t n = engine_backtrace_functions(l->mod, calls, l->npcs, fr, PROC_DETAIL_FRAMES);
	for (size_t i = 0; i < n; i++)
		snprintf(d->frames[i], sizeof(d->frames[i]), "%s", fr[i].name);
	free(fr);
	d->nframes = (uint32_t)n;
	return 0;
}

/* Every name p holds as pid into d (and the first, and the count, into
 * d->info). 0 or -ENOMEM. */
static int all_names(struct rt *rt, struct proc *p, uint64_t pid, struct proc_detail *d)
{
	uint32_t count;
	size_t cap = registry_names_of_pid(&rt->registry, p, pid, NULL, 0, &count);
	for (;;) {
		free(d->names);
		if ((d->names = malloc(cap + 1)) == NULL)
			return -ENOMEM;
		size_t need = registry_names_of_pid(&rt->registry, p, pid, d->names, cap, &count);
		if (need <= cap) {
			d->names_len = (uint32_t)need;
			break;
		}
		cap = need;   /* (it registered more meanwhile) */
	}
	d->info.nnames = count;
	snprintf(d->info.name, sizeof(d->info.name), "%s", count > 0 ? d->names : "");
	return 0;
}

int rt_inspect(struct rt *rt, uint64_t pid, struct proc_detail *d)
{
	memset(d, 0, sizeof(*d));
	struct proc *p = ptable_get(&rt->ptable, pid);
	if (p == NULL || atomic_load(&p->pid) != pid)
		return -ESRCH;
	struct held held = { .n = 0 };
	int rc = size_sets(d, 4, 4, 4);
	struct look l;
	for (int tries = 0; rc == 0; tries++) {
		if (d->caps != NULL)
			caps_unref(d->caps);
		d->caps = NULL;
		release_all(rt, &held);
		memset(&d->info, 0, sizeof(d->info));
		l = (struct look){ .pid = pid, .now = coarse_now(rt), .now_ns = sched_now_ns(),
		                   .held = &held, .info = &d->info, .max_pcs = PROC_DETAIL_FRAMES,
		                   .d = d };
		sched_task_peek(&p->task, look_at, &l);
		if (!l.alive) {
			rc = -ESRCH;
			break;
		}
		if (l.own && !l.sets_fit) {
			rc = size_sets(d, d->nlinks * 2, d->nmonitors * 2, d->nmonitored_by * 2);
			continue;
		}
		if (l.own || tries == INSPECT_TRIES)
			break;
		if (tries < INSPECT_SPINS)
			sched_yield();
		else
			pause_ms();
	}
	if (rc == 0) {
		d->complete = l.own;
		/* (Names and the innermost function as the listing gets them.) */
		struct proc_info *in = &d->info;
		rc = all_names(rt, p, pid, d);
		if (rc == 0)
			rc = name_frames(rt, &l, d);
		if (rc == 0 && d->nframes > 0)
			snprintf(in->function, sizeof(in->function), "%s", d->frames[0]);
	}
	release_all(rt, &held);
	if (rc != 0)
		rt_inspect_free(d);
	return rc;
}

void rt_inspect_free(struct proc_detail *d)
{
	free(d->links);
	free(d->monitors);
	free(d->monitored_by);
	free(d->frames);
	free(d->names);
	if (d->caps != NULL)
		caps_unref(d->caps);
	memset(d, 0, sizeof(*d));
}

/* ---- exit signals from outside ---- */

int rt_exit_signal(struct rt *rt, uint64_t pid, const struct reason *r, bool kill)
{
	if (proc_pid_is_remote(pid) || pid == 0)
		return -ESRCH;
	struct msg *m = msg_reason(kill ? SIG_KILL : SIG_EXIT, pid, 0, 0, r);
	if (m == NULL)
		return -ENOMEM;
	if (!proc_deliver(rt, pid, m)) {
		msg_free(m);
		return -ESRCH;
	}
	return 0;
}
