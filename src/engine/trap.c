/*
 * trap.c — traps, exits and the reduction hook's slow path.
 *
 * A trap anywhere in generated code (wasm_rt_trap), in a host function
 * (engine_trap_msg) or a guest's proc_exit (engine_exit) unwinds with
 * longjmp to the entry frame of the running instance (instance.c), never
 * further: the host carries on. No signal handlers are involved: memory
 * accesses are bounds-checked in code and stack overflow is caught by the
 * hook at every function entry, which compares the frame address with the
 * instance's stack limit.
 *
 * Which wasm function trapped is found from the return addresses on the
 * stack (symbolize.c): by frame pointers and addresses in the fast tier, by
 * the unwinder and DWARF line and inlining records in the optimized tier.
 * The trap path itself only finds the innermost return address inside the
 * module's code and unwinds; the name is looked up afterwards
 * (engine_attribute_trap, from instance.c), because a trap may be a stack
 * overflow with little stack left below it. Names come from the guest and
 * are escaped before they reach a message.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "engine_impl.h"
#include "common/util.h"

static _Thread_local engine_instance *tl_current;

engine_instance *engine_current(void)
{
	return tl_current;
}

engine_instance *engine_set_current(engine_instance *in)
{
	engine_instance *prev = tl_current;
	tl_current = in;
	return prev;
}

const char *engine_trap_name(wasm_rt_trap_t kind)
{
	switch (kind) {
	case WASM_RT_TRAP_NONE: return "no trap";
	case WASM_RT_TRAP_OOB: return "out of bounds memory access";
	case WASM_RT_TRAP_INT_OVERFLOW: return "integer overflow";
	case WASM_RT_TRAP_DIV_BY_ZERO: return "integer divide by zero";
	case WASM_RT_TRAP_INVALID_CONVERSION: return "invalid conversion to integer";
	case WASM_RT_TRAP_UNREACHABLE: return "unreachable";
	case WASM_RT_TRAP_CALL_INDIRECT: return "indirect call type mismatch or null";
	case WASM_RT_TRAP_UNCAUGHT_EXCEPTION: return "uncaught exception";
	case WASM_RT_TRAP_EXHAUSTION: return "call stack exhausted";
	}
	return "unknown trap";
}

const char *wasm_rt_strerror(wasm_rt_trap_t trap)
{
	return engine_trap_name(trap);
}


/* How close to address 0 the shadow stack pointer must be for an
 * out-of-bounds access to count as its overflow. */
#define SHADOW_STACK_SLACK 4096

void engine_attribute_trap(engine_instance *in)
{
	struct engine_result *r = in->res;
	r->function[0] = '\0';
	if (in->phase == PHASE_INSTANTIATE) {
		snprintf(r->function, sizeof(r->function), "<instantiation>");
		return;
	}
	const char *name = in->trap_pc ? engine_symbolize_pc(in->mod, in->trap_pc) : NULL;
	char plain[sizeof(r->function)];
	if (name != NULL) {
		engine_display_name(name, plain, sizeof(plain));
		util_printable(r->function, sizeof(r->function), plain);   /* guest text */
	}
	/* Toolchains put the shadow stack (the wasm program's own stack, in
	 * its linear memory) below everything else and let it grow down to
	 * address 0: overflowing it wraps the pointer and the next store is
	 * out of bounds. Say so rather than leave a bare out-of-bounds access
	 * (a leaf function's frame is not in the global yet: hence the slack). */
	uint32_t (*sp)(void *) = in->mod->abi->stack_pointer;
	if (r->trap == WASM_RT_TRAP_OOB && sp != NULL && r->message[0] == '\0') {
		int32_t v = (int32_t)sp(in->w2c);
		if (v < SHADOW_STACK_SLACK) {
			r->trap = WASM_RT_TRAP_EXHAUSTION;
			snprintf(r->message, sizeof(r->message), "shadow stack full "
			         "(__stack_pointer %" PRId32 "): link with a larger "
			         "-z stack-size", v);
		}
	}
}

_Noreturn void engine_unwind(engine_instance *in)
{
	longjmp(in->unwind, 1);
}

static _Noreturn void trap_here(engine_instance *in, wasm_rt_trap_t kind,
                                const char *msg, void **fp)
{
	struct engine_result *r = in->res;
	r->outcome = ENGINE_TRAPPED;
	r->trap = kind;
	snprintf(r->message, sizeof(r->message), "%s", msg ? msg : "");
	/* Only return addresses are taken here: naming them (which may read
	 * DWARF) happens after the unwind, in enter() and for a crash report,
	 * where the stack is shallow again (engine.h: the trap path's stack
	 * budget). */
	r->nframes = in->phase == PHASE_INSTANTIATE ? 0
	             : engine_backtrace(in, fp, r->frames, ENGINE_BACKTRACE_MAX);
	in->trap_pc = r->nframes > 0 ? r->frames[0] : 0;
	engine_unwind(in);
}

static _Noreturn void no_instance(const char *what)
{
	fprintf(stderr, "wisp: internal error: %s outside any instance\n", what);
	abort();
}

void wasm_rt_trap(wasm_rt_trap_t kind)
{
	engine_instance *in = tl_current;
	if (in == NULL)
		no_instance("trap");
	trap_here(in, kind, NULL, __builtin_frame_address(0));
}

_Noreturn void engine_trap_msg(engine_instance *in, wasm_rt_trap_t kind,
                               const char *msg)
{
	if (in == NULL)
		no_instance("trap");
	trap_here(in, kind, msg, __builtin_frame_address(0));
}

_Noreturn void engine_handover(engine_instance *in)
{
	if (in == NULL)
		no_instance("handover");
	in->res->outcome = ENGINE_HANDED_OVER;
	longjmp(in->unwind, 1);
}

_Noreturn void engine_exit(engine_instance *in, int code)
{
	if (in == NULL)
		no_instance("exit");
	in->res->outcome = ENGINE_EXITED;
	in->res->exit_code = code;
	engine_unwind(in);
}

_Noreturn void engine_exit_traced(engine_instance *in, int code)
{
	if (in == NULL)
		no_instance("exit");
	struct engine_result *r = in->res;
	r->nframes = in->phase == PHASE_INSTANTIATE ? 0
	             : engine_backtrace(in, __builtin_frame_address(0), r->frames,
	                                ENGINE_BACKTRACE_MAX);
	engine_exit(in, code);
}

/* The reduction hook's slow path: stack overflow traps; running out of fuel
 * or a preemption request (the scheduler raised stack_limit) ends the
 * slice: the embedder's slice_end (the scheduler: yield to the run queue,
 * handle pending signals) runs, then a new slice starts. */
void wisp_hook_slow(void *instance)
{
	struct wisp_vmctx *ctx = WISP_VMCTX_OF(instance);
	engine_instance *in = ctx->owner;
	if ((uintptr_t)__builtin_frame_address(0) < ctx->stack_floor)
		trap_here(in, WASM_RT_TRAP_EXHAUSTION, NULL, __builtin_frame_address(0));
	/* Out of fuel, or preempted (stack_limit raised): end the slice. */
	__atomic_store_n(&ctx->stack_limit, ctx->stack_floor, __ATOMIC_RELAXED);
	if (in->limits.slice_end != NULL)
		in->limits.slice_end(in->host);
	ctx->fuel = in->limits.fuel_per_slice;
}

/* Exception handling's legacy encoding (wasm2c --enable-exceptions): a try
 * block setjmps into a jmp_buf on its own frame and makes it the instance's
 * unwind target; a throw copies its values into the instance and longjmps
 * there, or traps "uncaught exception" when no try is active. The state is
 * the running instance's: a fiber switch in the middle of a try (a
 * preempted loop) carries it along, and instances share nothing. The
 * compile pipeline refuses tags over EXC_DATA_MAX bytes; the check here
 * stays as a guard. */
void wasm_rt_load_exception(uint32_t tag, uint32_t size, const void *values)
{
	engine_instance *in = tl_current;
	if (in == NULL)
		no_instance("exception");
	if (size > EXC_DATA_MAX)
		engine_trap_msg(in, WASM_RT_TRAP_UNCAUGHT_EXCEPTION, "exception too large");
	if (in->exc_data == NULL && (in->exc_data = malloc(EXC_DATA_MAX)) == NULL)
		engine_trap_msg(in, WASM_RT_TRAP_UNCAUGHT_EXCEPTION, "out of memory for an exception");
	in->exc_tag = tag;
	in->exc_size = size;
	memcpy(in->exc_data, values, size);
}

void wasm_rt_throw(void)
{
	engine_instance *in = tl_current;
	if (in == NULL)
		no_instance("exception");
	if (in->exc_target == NULL)
		wasm_rt_trap(WASM_RT_TRAP_UNCAUGHT_EXCEPTION);
	longjmp(*in->exc_target, 1);
}

WASM_RT_UNWIND_TARGET *wasm_rt_get_unwind_target(void)
{
	return tl_current ? tl_current->exc_target : NULL;
}

void wasm_rt_set_unwind_target(WASM_RT_UNWIND_TARGET *target)
{
	if (tl_current)
		tl_current->exc_target = target;
}

uint32_t wasm_rt_exception_tag(void)
{
	return tl_current ? tl_current->exc_tag : 0;
}

uint32_t wasm_rt_exception_size(void)
{
	return tl_current ? tl_current->exc_size : 0;
}

void *wasm_rt_exception(void)
{
	return tl_current ? tl_current->exc_data : NULL;
}

/* wasm-rt.h's global set-up. wisp's engine has no global state to set up
 * (see the top of this file), so there is nothing to do and the runtime is
 * always ready; generated init_module() asserts wasm_rt_is_initialized(). */
void wasm_rt_init(void)
{
}

bool wasm_rt_is_initialized(void)
{
	return true;
}

void wasm_rt_free(void)
{
}
