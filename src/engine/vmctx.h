/*
 * vmctx.h — the few words of per-instance state that generated code touches.
 *
 * This header is shared by the host and by every generated translation unit
 * (the compile pipeline pastes it into the prelude), so its layout is part of
 * wisp's module ABI: changing it must bump WISP_MODULE_ABI, which is part of
 * the cache key.
 *
 * Layout in memory, one allocation per instance:
 *
 *     [ struct wisp_vmctx ][ Z_wisp_guest_instance_t (wasm2c's struct) ]
 *                          ^ `instance` in generated code
 *
 * Generated code finds its vmctx at a fixed negative offset from `instance`,
 * so the reduction hook costs no thread-local access and no extra import.
 */
#ifndef WISP_VMCTX_H
#define WISP_VMCTX_H

#include <stdint.h>

#define WISP_MODULE_ABI 4

struct wisp_vmctx {
	/* Reductions left in this slice: loop iterations, charged in batches
	 * of WISP_LOOP_BATCH; wisp_hook_slow() runs below zero. */
	int64_t fuel;
	/* Every function entry calls wisp_hook_slow() when its frame is below
	 * this address. Normally stack_floor; the scheduler raises it to
	 * UINTPTR_MAX to preempt a process that has run a whole tick (code that
	 * calls but never loops). Written by another thread: a plain aligned
	 * word, read once per entry. */
	uintptr_t stack_limit;
	/* The real limit: lowest stack address a wasm function may start at
	 * (headroom for host calls already subtracted); below it, the call
	 * traps with WASM_RT_TRAP_EXHAUSTION. */
	uintptr_t stack_floor;
	/* The engine instance that owns this vmctx (opaque to generated code). */
	void *owner;
	/* Set while instantiating when the memory came from the pool holding
	 * the module's image already: the generated code then skips loading
	 * the active data segments (wasm_rt_allocate_memory, memory.c). */
	uint32_t preloaded;
};

#define WISP_VMCTX_OF(instance) \
	((struct wisp_vmctx *)((char *)(instance) - sizeof(struct wisp_vmctx)))

#define WISP_LOOP_BATCH 64

/* Called by generated code when fuel runs out or the stack limit is crossed,
 * with wasm2c's instance pointer (the vmctx is found from it here, so the
 * fast path keeps no extra pointer live across loops). Either returns (fuel
 * refilled, possibly after the process was descheduled) or does not return
 * (the instance trapped). */
void wisp_hook_slow(void *instance);

/* What a compiled module exports to the host: the only dynamic symbol of the
 * shared object, named wisp_module_v<WISP_MODULE_ABI>. */
struct wisp_fn_entry {
	const void *addr;   /* native entry of the function */
	uint32_t index;     /* wasm function index */
	const char *name;   /* from the name section, or func[N] */
	uint32_t line_first, line_last;   /* its body's lines in tu.c (0: none) */
};

/* wisp_module_abi.flags */
#define WISP_MODULE_FRAME_POINTERS 1u   /* every function keeps a frame pointer */
#define WISP_MODULE_DEBUG_LINES    2u   /* DWARF line and inline info (-g1) */
#define WISP_MODULE_START_SECTION  4u   /* instantiation runs a start function */

struct wisp_module_abi {
	uint32_t abi;                       /* WISP_MODULE_ABI */
	uint32_t instance_size;             /* sizeof(Z_wisp_guest_instance_t) */
	void (*init_module)(void);          /* once per load, before instantiate */
	void (*instantiate)(void *instance, void *host);
	void (*free_instance)(void *instance);
	void (*start)(void *instance);      /* "_start" export, or NULL */
	/* "wisp_spawn_entry" export of type (i32, i32) -> (), or NULL */
	void (*spawn_entry)(void *instance, uint32_t fn, uint32_t arg_len);
	void *(*memory)(void *instance);    /* "memory" export (wasm_rt_memory_t*), or NULL */
	const struct wisp_fn_entry *fns;    /* defined functions, in index order */
	uint32_t nfns;
	/* Address just past the last function's code: a sentinel function the
	 * pipeline emits after the last body. Code beyond it (helpers tcc emits
	 * at the end of the unit, init code) belongs to no wasm function. */
	const void *code_end;
	uint32_t flags;                     /* WISP_MODULE_* */
	/* The value of the module's shadow stack pointer (wasm_info's
	 * stack_pointer), or NULL: an out-of-bounds trap near the bottom of
	 * that stack is worded as a full shadow stack (trap.c). */
	uint32_t (*stack_pointer)(void *instance);
	/* Hot code reload (docs/abi.md, "wisp_code"): the "wisp_code_change"
	 * export of type (i32, i32) -> i32, or NULL. */
	int32_t (*code_change)(void *instance, uint32_t old_vsn, uint32_t state_len);
	/* The instance's first table if it is a funcref table it defines
	 * (wasm_rt_funcref_table_t *), or NULL: where a function is called by
	 * its table index from outside the guest (engine_instance_run_fn). */
	void *(*table)(void *instance);
};

#endif
