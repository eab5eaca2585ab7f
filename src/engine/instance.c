/*
 * instance.c — creating instances and running their exports.
 *
 * An instance is one allocation, [struct wisp_vmctx][wasm2c instance], so
 * generated code reaches its vmctx at a fixed negative offset. Every entry
 * into guest code (instantiation, _start) goes through enter(), which sets
 * the thread's current instance, records the native stack bounds for the
 * overflow check and for trap attribution, and catches the unwind of a trap
 * or proc_exit with setjmp. Guest code never runs outside enter().
 *
 * Stack: a process's instance runs on its fiber's stack (engine_limits
 * stack_lo/hi); otherwise on the calling thread's stack, whose low end is
 * taken from the thread's attributes (at most 8 MiB below the entry frame).
 * The overflow limit is the low end plus ENGINE_STACK_HEADROOM (engine.h
 * says how that budget is split).
 *
 * A trap unwinds to enter() first and is attributed to its wasm function
 * there (trap.c): the trap path below the trapping frame only records a
 * return address, so it needs little stack, which matters when the trap is
 * a stack overflow.
 */
#include <errno.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_impl.h"

#define STACK_MAX_USE (8u * 1024 * 1024)
#define DEFAULT_FUEL 4000

static void thread_stack_bounds(uintptr_t here, uintptr_t *lo, uintptr_t *hi)
{
	pthread_attr_t attr;
	void *addr = NULL;
	size_t size = 0;
	*lo = here > STACK_MAX_USE ? here - STACK_MAX_USE : 0;
	*hi = here + 64 * 1024 * 1024;
	if (pthread_getattr_np(pthread_self(), &attr) == 0) {
		if (pthread_attr_getstack(&attr, &addr, &size) == 0 && addr != NULL) {
			uintptr_t base = (uintptr_t)addr;
			if (base > *lo)
				*lo = base;
			*hi = base + size;
		}
		pthread_attr_destroy(&attr);
	}
}

/* Name the trapping function from the return address the trap kept.
 * Reading DWARF with libdw can take more stack than a small fiber has, so
 * it runs on a big stack when the embedder offers one
 * (engine_limits.call_on_big_stack: the scheduler thread's). */
static void name_trap(void *arg)
{
	engine_attribute_trap(arg);
}

/* Run fn(arg) as guest code of `in`; returns with in->res filled. */
static void enter(engine_instance *in, enum instance_phase phase,
                  void (*fn)(void *), void *arg)
{
	uintptr_t here = (uintptr_t)__builtin_frame_address(0);
	if (in->limits.stack_hi != 0) {
		in->stack_lo = in->limits.stack_lo;
		in->stack_hi = in->limits.stack_hi;
	} else {
		thread_stack_bounds(here, &in->stack_lo, &in->stack_hi);
	}
	in->vmctx->stack_floor = in->stack_lo + ENGINE_STACK_HEADROOM;
	/* Atomic: the scheduler's tick may raise it from another thread. */
	__atomic_store_n(&in->vmctx->stack_limit, in->vmctx->stack_floor, __ATOMIC_RELAXED);
	in->vmctx->fuel = in->limits.fuel_per_slice;
	in->phase = phase;
	in->res->outcome = ENGINE_RETURNED;
	in->res->nframes = 0;
	in->prev_current = engine_set_current(in);
	/* No try of a previous entry is active (a trap or exit may have
	 * unwound past one): a throw with no try traps. */
	in->exc_target = NULL;
	bool trapped = false;
	if (setjmp(in->unwind) == 0)
		fn(arg);
	else
		trapped = in->res->outcome == ENGINE_TRAPPED;
	if (trapped) {
		/* in->phase still says where it trapped (instantiation or not). */
		if (in->limits.call_on_big_stack != NULL)
			in->limits.call_on_big_stack(name_trap, in);
		else
			name_trap(in);
	}
	engine_set_current(in->prev_current);
	in->phase = PHASE_IDLE;
}

static void do_instantiate(void *arg)
{
	engine_instance *in = arg;
	in->mod->abi->instantiate(in->w2c, in->host);
}

engine_instance *engine_instance_new(engine_module *m, void *host,
                                     const struct engine_limits *lim,
                                     struct engine_result *res)
{
	res->outcome = ENGINE_RETURNED;
	res->exit_code = 0;
	res->trap = WASM_RT_TRAP_NONE;
	res->function[0] = res->message[0] = '\0';
	res->nframes = 0;
	/* One allocation: this struct, then (64-byte aligned) the vmctx and
	 * wasm2c's instance, which start zeroed (wasm2c's free tolerates
	 * zeroed members of a half-made instance). */
	size_t head = (sizeof(engine_instance) + 63) & ~(size_t)63;
	size_t bytes = sizeof(struct wisp_vmctx) + m->abi->instance_size;
	engine_instance *in = NULL;
	pthread_mutex_lock(&m->spare_lock);
	if (m->nspare > 0)
		in = m->spare[--m->nspare];
	pthread_mutex_unlock(&m->spare_lock);
	if (in == NULL)
		in = aligned_alloc(64, head + ((bytes + 63) & ~(size_t)63));
	if (in == NULL) {
		res->outcome = ENGINE_TRAPPED;
		snprintf(res->message, sizeof(res->message), "out of memory creating an instance");
		return NULL;
	}
	void *block = (char *)in + head;
	memset(block, 0, bytes);
	*in = (engine_instance){
		.mod = m,
		.host = host,
		.phase = PHASE_IDLE,
		.res = res,
		.vmctx = block,
		.w2c = (char *)block + sizeof(struct wisp_vmctx),
	};
	if (lim)
		in->limits = *lim;
	if (in->limits.fuel_per_slice <= 0)
		in->limits.fuel_per_slice = DEFAULT_FUEL;
	in->usage = in->limits.usage;
	in->vmctx->owner = in;
	enter(in, PHASE_INSTANTIATE, do_instantiate, in);
	if (res->outcome == ENGINE_RETURNED)
		engine_image_capture(in);   /* once per module: see hibernate.c */
	if (res->outcome != ENGINE_RETURNED) {
		/* Memories and tables allocated before the trap are owned by the
		 * half-initialised instance; free_instance releases what exists. */
		engine_instance_free(in);
		return NULL;
	}
	return in;
}

engine_module *engine_instance_module(const engine_instance *in)
{
	return in->mod;
}

void engine_instance_free(engine_instance *in)
{
	if (in == NULL)
		return;
	/* Current while its memories are freed: they go back to its pool. */
	engine_instance *prev = engine_set_current(in);
	in->mod->abi->free_instance(in->w2c);
	engine_set_current(prev);
	free(in->exc_data);
	engine_module *m = in->mod;
	uint32_t keep = SPARE_INSTANCES;   /* (0 under ASan: not a constant
	                                      compared, which -Wtype-limits refuses) */
	pthread_mutex_lock(&m->spare_lock);
	/* Freed twice, two processes would share one instance (its memory):
	 * a fault of the runtime that must not go on silently. */
	for (uint32_t i = 0; i < m->nspare; i++)
		if (m->spare[i] == in) {
			fprintf(stderr, "wisp: internal error: an instance was freed twice (%p)\n",
			        (void *)in);
			abort();
		}
	if (m->nspare < keep) {
		m->spare[m->nspare++] = in;
		in = NULL;
	}
	pthread_mutex_unlock(&m->spare_lock);
	free(in);
}

static void do_start(void *arg)
{
	engine_instance *in = arg;
	in->mod->abi->start(in->w2c);
}

void engine_instance_run_start(engine_instance *in, struct engine_result *res)
{
	memset(res, 0, sizeof(*res));
	in->res = res;
	if (in->mod->abi->start == NULL) {
		res->outcome = ENGINE_TRAPPED;
		res->trap = WASM_RT_TRAP_NONE;
		snprintf(res->message, sizeof(res->message), "module has no _start export");
		return;
	}
	enter(in, PHASE_RUN, do_start, in);
}

struct spawn_call {
	engine_instance *in;
	uint32_t fn, arg_len;
};

static void do_spawn_entry(void *arg)
{
	struct spawn_call *c = arg;
	c->in->mod->abi->spawn_entry(c->in->w2c, c->fn, c->arg_len);
}

bool engine_module_has_spawn_entry(const engine_module *m)
{
	return m->abi->spawn_entry != NULL;
}

void engine_instance_run_spawn_entry(engine_instance *in, uint32_t fn,
                                     uint32_t arg_len, struct engine_result *res)
{
	memset(res, 0, sizeof(*res));
	in->res = res;
	if (in->mod->abi->spawn_entry == NULL) {
		res->outcome = ENGINE_TRAPPED;
		res->trap = WASM_RT_TRAP_NONE;
		snprintf(res->message, sizeof(res->message),
		         "module has no wisp_spawn_entry export");
		return;
	}
	struct spawn_call c = { in, fn, arg_len };
	enter(in, PHASE_RUN, do_spawn_entry, &c);
}

bool engine_module_can_take_over(const engine_module *m)
{
	return m->abi->code_change != NULL && m->abi->table != NULL;
}

struct change_call {
	engine_instance *in;
	uint32_t old_vsn, len;
	int32_t ret;
};

static void do_code_change(void *arg)
{
	struct change_call *c = arg;
	c->ret = c->in->mod->abi->code_change(c->in->w2c, c->old_vsn, c->len);
}

void engine_instance_run_code_change(engine_instance *in, uint32_t old_vsn, uint32_t state_len,
                                     int32_t *ret, struct engine_result *res)
{
	memset(res, 0, sizeof(*res));
	in->res = res;
	if (in->mod->abi->code_change == NULL) {
		res->outcome = ENGINE_TRAPPED;
		snprintf(res->message, sizeof(res->message), "module has no wisp_code_change export");
		return;
	}
	struct change_call c = { in, old_vsn, state_len, -1 };
	enter(in, PHASE_RUN, do_code_change, &c);
	*ret = c.ret;
}

/* The index of the type () -> () among m's, or UINT32_MAX. */
static uint32_t void_type(const engine_module *m)
{
	for (uint32_t i = 0; i < m->ntypes; i++)
		if (m->types[i].nparams == 0 && m->types[i].nresults == 0)
			return i;
	return UINT32_MAX;
}

static void do_fn(void *arg)
{
	const wasm_rt_funcref_t *f = arg;
	((void (*)(void *))f->func)(f->module_instance);
}

bool engine_instance_has_void_fn(const engine_instance *in, uint32_t index)
{
	const wasm_rt_funcref_table_t *t = in->mod->abi->table ? in->mod->abi->table(in->w2c) : NULL;
	uint32_t vt = void_type(in->mod);
	return t != NULL && index < t->size && t->data[index].func != NULL &&
	       t->data[index].func_type == vt && vt != UINT32_MAX;
}

void engine_instance_run_fn(engine_instance *in, uint32_t index, struct engine_result *res)
{
	memset(res, 0, sizeof(*res));
	in->res = res;
	if (!engine_instance_has_void_fn(in, index)) {
		res->outcome = ENGINE_TRAPPED;
		snprintf(res->message, sizeof(res->message), "no function () -> () at table index %u",
		         index);
		return;
	}
	const wasm_rt_funcref_table_t *t = in->mod->abi->table(in->w2c);
	wasm_rt_funcref_t f = t->data[index];
	enter(in, PHASE_RUN, do_fn, &f);
}

static _Atomic int64_t *account(engine_instance *in)
{
	return in->usage != NULL ? in->usage : &in->own_usage;
}

bool engine_charge(engine_instance *in, uint64_t bytes)
{
	if (in == NULL || bytes == 0)
		return true;
	int64_t after = atomic_fetch_add(account(in), (int64_t)bytes) + (int64_t)bytes;
	if (in->limits.max_memory != 0 && after > 0 && (uint64_t)after > in->limits.max_memory) {
		atomic_fetch_sub(account(in), (int64_t)bytes);
		return false;
	}
	return true;
}

void engine_uncharge(engine_instance *in, uint64_t bytes)
{
	if (in != NULL && bytes != 0)
		atomic_fetch_sub(account(in), (int64_t)bytes);
}

struct wisp_vmctx *engine_instance_vmctx(engine_instance *in)
{
	return in->vmctx;
}

void engine_vmctx_preempt(struct wisp_vmctx *ctx)
{
	__atomic_store_n(&ctx->stack_limit, UINTPTR_MAX, __ATOMIC_RELAXED);
}

wasm_rt_memory_t *engine_instance_memory(engine_instance *in)
{
	if (in->mod->abi->memory == NULL)
		return NULL;
	return in->mod->abi->memory(in->w2c);
}
