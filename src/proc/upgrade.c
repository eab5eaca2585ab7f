/*
 * upgrade.c — hot code reload: versions of the run's main module, and a
 * process handing itself over to the current one (same pid, mailbox,
 * links, monitors, names, timers, sockets, capabilities).
 *
 * Versions. The main module is version 1; each module loaded as a new
 * version (rt_code_load) gets the next number and becomes current.
 * Processes keep running the version they run until they upgrade; a
 * version no longer current is unloaded when the last process running it
 * ends or moves on (the module table's counts, modules.c).
 * Processes that asked (proc_code_watch) get a message when a version
 * becomes current: tag WISP_TAG_CODE, from 0, its number (4 bytes).
 *
 * Handover (proc_upgrade), a state machine on the process's own stack:
 *
 *   RUNNING(old) --upgrade(state)--> CHANGING: a new instance of the
 *     current version is made and its "wisp_code_change"(old_vsn, len)
 *     runs nested, inside the host call, reading the state as a spawn
 *     argument; the process's module, instance, host memory and
 *     preemption target are the new instance's meanwhile (the old
 *     instance in old_inst: a runtime ending now frees both), and it may
 *     run RT_UPGRADE_MAX_REDUCTIONS. It returns the table index of a
 *     function () -> () to go on in, or a number <= 0 to refuse.
 *   CHANGING --trap, exit, the budget spent, a refusal, or an index that
 *     is no function () -> ()--> RUNNING(old): the new instance is freed,
 *     everything points back at the old one, and the call returns the
 *     reason (rollback; nothing else changed).
 *   CHANGING --an index--> HANDED_OVER: the old instance's entry call is
 *     ended (engine_handover: its frames, the host call's among them, are
 *     dropped); proc_fiber_main frees the old instance and calls that
 *     function of the new one, where the process goes on. (By its table
 *     index, not as an export: wasm-ld wraps every export of a command
 *     module in the constructors, which must not run twice.)
 *
 * Nothing outside the instance changes at any step, so senders, links,
 * timers and sockets see one process throughout; a message that arrives
 * meanwhile waits in the mailbox, in order, for the new code.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sha256.h"
#include "proc_impl.h"
#include "sched/sched.h"

uint32_t rt_code_version(struct rt *rt, const engine_module *m)
{
	const struct rt_mod *e = engine_module_owner(m);
	pthread_mutex_lock(&rt->mods_lock);
	uint32_t v = e != NULL ? e->vsn : 0;
	pthread_mutex_unlock(&rt->mods_lock);
	return v;
}

uint32_t rt_code_current(struct rt *rt, engine_module **mod)
{
	pthread_mutex_lock(&rt->mods_lock);
	struct rt_mod *e = rt->current;
	if (mod != NULL) {
		*mod = engine_module_latest(e->mod);
		atomic_fetch_add(&e->users, 1);   /* (the caller's hold: rt_module_put) */
	}
	pthread_mutex_unlock(&rt->mods_lock);
	return e->vsn;
}

uint32_t rt_code_current_hash(struct rt *rt, unsigned char hash[RT_HASH_BYTES])
{
	pthread_mutex_lock(&rt->mods_lock);
	memcpy(hash, rt->current->hash, RT_HASH_BYTES);
	uint32_t v = rt->current->vsn;
	pthread_mutex_unlock(&rt->mods_lock);
	return v;
}

/* Tell the watchers that vsn is current (mods_lock held). (Each leaves
 * the list when it ends: proc_notify_exit.) */
static void tell_watchers(struct rt *rt, uint32_t vsn)
{
	for (uint32_t i = 0; i < rt->ncode_watchers; i++) {
		uint64_t pid = rt->code_watchers[i];
		struct msg *m = msg_new(MSG_DATA, pid, 0, WISP_TAG_CODE, 0, &vsn, sizeof(vsn));
		if (m != NULL && !proc_deliver(rt, pid, m))
			msg_free(m);
	}
}

/* Processes running one of the old versions (not the main process: it
 * is the run itself, and is never purged). The walk reads other
 * processes' module pointers as they change them (a spawn, a move, an
 * exit), so it compares pointers and never follows one: a process's
 * module may be unloaded the moment it lets go of it. The old versions
 * are held meanwhile (s->held), so none of their builds can be unloaded
 * and its address taken by another module while the walk runs: a
 * pointer equal to one of theirs is theirs. */
struct stragglers {
	struct rt_mod **held;         /* the old versions, held: release_old */
	const engine_module **builds; /* their builds (2 per version, NULL: none) */
	uint32_t nold;
	uint32_t count;
	uint32_t replaced;   /* the newest of them (the current one's predecessor) */
	uint64_t main_pid;
	bool kill;
	struct reason why;
};

static void find_straggler(struct proc *p, void *arg)
{
	struct stragglers *s = arg;
	uint64_t pid = atomic_load_explicit(&p->pid, memory_order_acquire);
	const engine_module *mod = atomic_load_explicit(&p->mod, memory_order_relaxed);
	if (pid == 0 || pid == s->main_pid || mod == NULL)
		return;
	for (uint32_t i = 0; i < 2 * s->nold; i++)
		if (mod == s->builds[i]) {
			s->count++;
			if (s->kill) {
				struct msg *m = msg_reason(SIG_KILL, pid, 0, 0, &s->why);
				if (m != NULL && !proc_deliver(p->rt, pid, m))
					msg_free(m);
			}
			return;
		}
}

/* Let go of the old versions count_old_old held (some may be unloaded
 * now), and free s's lists. */
static void release_old(struct rt *rt, struct stragglers *s)
{
	for (uint32_t i = 0; i < s->nold; i++)
		rt_module_put(rt, s->held[i]->mod);
	free(s->held);
	free(s->builds);
}

/* Processes on versions older than the current one (which a new version
 * turns into "old-old", as Erlang would say), counted into s, whose
 * versions it holds (release_old). -ENOMEM; -EBUSY with a message if
 * there are some and !purge. */
static int count_old_old(struct rt *rt, struct stragglers *s, bool purge, char *err,
                         size_t errlen)
{
	s->main_pid = rt->main_pid;
	pthread_mutex_lock(&rt->mods_lock);
	uint32_t cv = rt->current->vsn;
	s->held = malloc(rt->nmods * sizeof(*s->held));
	s->builds = malloc(2 * rt->nmods * sizeof(*s->builds));
	for (size_t i = 0; s->held != NULL && s->builds != NULL && i < rt->nmods; i++) {
		struct rt_mod *e = rt->mods[i];
		if (e->vsn == 0 || e->vsn >= cv)
			continue;
		atomic_fetch_add(&e->users, 1);   /* (under the lock: it may be at 0) */
		s->builds[2 * s->nold] = e->mod;
		s->builds[2 * s->nold + 1] = e->better;
		s->held[s->nold++] = e;
	}
	pthread_mutex_unlock(&rt->mods_lock);
	if (s->held == NULL || s->builds == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (s->nold > 0)
		ptable_each(&rt->ptable, find_straggler, s);
	if (s->count > 0 && !purge) {
		snprintf(err, errlen, "%u process%s still run%s version %u or older, which a new "
		         "version would replace a second time: move %s onto version %u first, or "
		         "reload with --purge (which kills %s)", s->count, s->count == 1 ? "" : "es",
		         s->count == 1 ? "s" : "", cv - 1, s->count == 1 ? "it" : "them", cv,
		         s->count == 1 ? "it" : "them");
		return -EBUSY;
	}
	s->replaced = cv - 1;
	s->why = (struct reason){ WISP_EXIT_KILLED, 0, "" };
	snprintf(s->why.text, sizeof(s->why.text),
	         "purged: its code (version %u or older) was replaced twice", cv - 1);
	return 0;
}

int rt_code_load(struct rt *rt, const void *bytes, size_t len, bool purge, uint32_t *vsn,
                 char *err, size_t errlen)
{
	if (len > RT_CODE_MAX_BYTES) {
		snprintf(err, errlen, "the module is over %u MiB", RT_CODE_MAX_BYTES >> 20);
		return -EFBIG;
	}
	unsigned char hash[RT_HASH_BYTES];
	util_sha256(bytes, len, hash);
	engine_module *m;
	int rc = rt_module_load(rt, hash, bytes, len, "(the new version)", &m, err, errlen);
	if (rc != 0)
		return rc;
	struct rt_mod *e = engine_module_owner(m);
	if (!engine_module_can_take_over(m)) {
		snprintf(err, errlen, "the module exports no wisp_code_change (i32, i32) -> i32 (or "
		         "has no function table of its own): it cannot take over running processes "
		         "(C: export one, sdk/c/README.md; Rust: wisp::upgradable!)");
		rc = -EINVAL;
	}
	/* (Loads are serialised: two would both pass the check below.) */
	pthread_mutex_lock(&rt->code_lock);
	struct stragglers s = { .kill = false };
	if (rc == 0 && rt_code_version(rt, m) == 0)
		rc = count_old_old(rt, &s, purge, err, errlen);
	pthread_mutex_lock(&rt->mods_lock);
	if (rc != 0) {
		/* Refused: unloaded once nobody holds it (a spawn from another
		 * node may be holding it now). */
		e->transient = e->vsn == 0;
	} else if (e->vsn != 0) {
		rc = -EEXIST;
		*vsn = e->vsn;
		if (e == rt->current)
			snprintf(err, errlen, "those bytes are version %u already, the current one: "
			         "nothing changed (was the new version built?)", e->vsn);
		else
			snprintf(err, errlen, "those bytes are version %u already (version %u is "
			         "current): a version loads once; to run its code again, load a build "
			         "that differs from it", e->vsn, rt->current->vsn);
	} else {
		e->vsn = *vsn = ++rt->last_vsn;
		rt->current = e;
	}
	pthread_mutex_unlock(&rt->mods_lock);
	/* Purged once the new version is current (a supervisor restarting one
	 * of them finds it so, and can move onto it first), and before the
	 * watchers hear of it (a straggler that watches cannot slip onto it
	 * between the count and the kill). */
	if (rc == 0 && s.count > 0) {
		s.kill = true;
		s.count = 0;
		ptable_each(&rt->ptable, find_straggler, &s);
		if (s.count > 0)
			snprintf(err, errlen, "purged %u process%s still on version %u or older",
			         s.count, s.count == 1 ? "" : "es", s.replaced);
	}
	if (rc == 0) {
		pthread_mutex_lock(&rt->mods_lock);
		tell_watchers(rt, e->vsn);
		pthread_mutex_unlock(&rt->mods_lock);
	}
	const struct proc_remote *r = rt->cfg.remote;
	if (rc == 0 && r != NULL && r->loaded != NULL)
		r->loaded(r->ctx, hash, bytes, len);
	pthread_mutex_unlock(&rt->code_lock);
	release_old(rt, &s);
	rt_module_put(rt, m);
	if (rc == 0)
		rt_modules_retire(rt);   /* (the version it replaced, if nobody runs it) */
	return rc;
}

int proc_code_watch(struct proc *self, bool on)
{
	struct rt *rt = self->rt;
	int rc = 0;
	pthread_mutex_lock(&rt->mods_lock);
	uint32_t mine = atomic_load_explicit(&self->code_watch, memory_order_relaxed);
	if (!on && mine != 0) {
		/* The last one takes its place (and learns it). */
		uint32_t at = mine - 1;
		uint64_t last = rt->code_watchers[--rt->ncode_watchers];
		rt->code_watchers[at] = last;
		struct proc *moved = at < rt->ncode_watchers ? ptable_get(&rt->ptable, last) : NULL;
		if (moved != NULL)
			atomic_store_explicit(&moved->code_watch, at + 1, memory_order_relaxed);
		atomic_store_explicit(&self->code_watch, 0, memory_order_relaxed);
	} else if (on && mine == 0) {
		if (rt->ncode_watchers == rt->capcode_watchers) {
			uint32_t cap = rt->capcode_watchers ? rt->capcode_watchers * 2 : 16;
			uint64_t *v = realloc(rt->code_watchers, cap * sizeof(*v));
			if (v == NULL)
				rc = -ENOMEM;
			else
				rt->code_watchers = v, rt->capcode_watchers = cap;
		}
		if (rc == 0) {
			rt->code_watchers[rt->ncode_watchers++] = proc_pid(self);
			atomic_store_explicit(&self->code_watch, rt->ncode_watchers,
			                      memory_order_relaxed);
		}
	}
	pthread_mutex_unlock(&rt->mods_lock);
	return rc;
}

/* The process runs `in` from now on (as far as its host calls, fuel and
 * preemption go). */
static void point_at(struct proc *p, engine_instance *in)
{
	p->inst = in;
	p->rt->hooks.ready(proc_host(p), in);
	sched_publish_vmctx(&p->task, engine_instance_vmctx(in));
}

/* The state handed to wisp_code_change, read as its spawn argument: in
 * self->arg while it runs, the process's own argument kept here. */
struct change_arg {
	unsigned char *own;
	uint32_t own_len;
	unsigned char state[];
};

static struct change_arg *change_arg_of(struct proc *p)
{
	return (struct change_arg *)(p->arg - offsetof(struct change_arg, state));
}

/* Give p its own argument back (the change ended). */
static void change_arg_end(struct proc *p)
{
	struct change_arg *a = change_arg_of(p);
	p->arg = a->own;
	p->arg_len = a->own_len;
	free(a);
}

void proc_upgrade_discard(struct proc *p)
{
	if (p->upgrade_slices == 0)
		return;
	p->upgrade_slices = 0;
	change_arg_end(p);
}

/* Hand self over to next (held for it), from version old_vsn: returns
 * only if that fails (rolled back, why says why). While the new code's
 * wisp_code_change runs, the process is as it will be if that succeeds
 * (its instance and module the new ones, the old instance in old_inst),
 * so that a runtime ending meanwhile frees both (proc_discard). */
static int change_to(struct proc *self, engine_module *next, uint32_t old_vsn,
                     const void *state, uint32_t len, char *why, size_t whylen)
{
	struct engine_limits lim;
	proc_instance_limits(self, &lim);
	struct engine_result res;
	engine_instance *old = self->inst;
	engine_module *was = self->mod;
	struct change_arg *arg = malloc(sizeof(*arg) + len);
	if (arg == NULL) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	engine_instance *in = engine_instance_new(next, proc_host(self), &lim, &res);
	if (in == NULL) {
		free(arg);
		snprintf(why, whylen, "the new version could not be instantiated: %s%s%s",
		         res.message[0] ? res.message : engine_trap_name(res.trap),
		         res.function[0] ? " in " : "", res.function);
		return -ECANCELED;
	}
	*arg = (struct change_arg){ self->arg, self->arg_len };
	memcpy(arg->state, state, len);
	self->arg = arg->state;
	self->arg_len = len;
	uint64_t slices = RT_UPGRADE_MAX_REDUCTIONS / (uint64_t)self->rt->cfg.reductions;
	self->upgrade_slices = slices == 0 ? 1 : slices > UINT32_MAX ? UINT32_MAX : (uint32_t)slices;
	self->mod = next;
	self->old_inst = old;
	point_at(self, in);
	int32_t ret = -1;
	engine_instance_run_code_change(in, old_vsn, len, &ret, &res);
	self->upgrade_slices = 0;
	change_arg_end(self);
	bool resumable = res.outcome == ENGINE_RETURNED && ret > 0 &&
	                 engine_instance_has_void_fn(in, (uint32_t)ret);
	if (!resumable) {
		self->mod = was;
		self->old_inst = NULL;
		point_at(self, old);
		engine_instance_free(in);
		if (res.outcome == ENGINE_TRAPPED)
			snprintf(why, whylen, "wisp_code_change trapped: %s%s%s",
			         res.trap == WASM_RT_TRAP_NONE ? res.message : engine_trap_name(res.trap),
			         res.function[0] ? " in " : "", res.function);
		else if (res.outcome == ENGINE_EXITED)
			snprintf(why, whylen, "wisp_code_change exited (%d)", res.exit_code);
		else if (ret > 0)
			snprintf(why, whylen, "wisp_code_change returned %d, which is no function () -> () "
			         "of the new version's table", (int)ret);
		else
			snprintf(why, whylen, "wisp_code_change refused the state (%d)", (int)ret);
		return -ECANCELED;
	}
	/* (The caller's hold of next is the process's now; the old module's
	 * goes with old_inst.) */
	self->resume_fn = (uint32_t)ret;
	engine_handover(old);
}

int proc_upgrade(struct proc *self, const void *state, uint32_t len, char *why, size_t whylen)
{
	struct rt *rt = self->rt;
	engine_module *next;
	uint32_t next_vsn = rt_code_current(rt, &next);
	uint32_t old_vsn = rt_code_version(rt, self->mod);
	int rc;
	if (self->old_inst != NULL) {
		/* Called from wisp_code_change: the process is moving already
		 * (a second move from in there would drop the first's old
		 * instance, still on the stack below). */
		snprintf(why, whylen, "the process is moving already (called from wisp_code_change)");
		rc = -EBUSY;
	} else if (next_vsn == old_vsn || old_vsn == 0) {
		snprintf(why, whylen, old_vsn == 0 ? "this process runs no version of the main module"
		                                   : "it runs the current version already");
		rc = -ENOENT;
	} else {
		rc = change_to(self, next, old_vsn, state, len, why, whylen);   /* (if it fails) */
	}
	rt_module_put(rt, next);
	/* Killed meanwhile (that may be how the change ended, or a signal
	 * waits): the process ends now, before its old code runs on. (Not
	 * before the put: ending unwinds this frame.) */
	proc_drain(self);
	return rc;
}
