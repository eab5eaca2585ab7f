/*
 * engine.h — wisp's implementation of what wasm2c's generated code needs
 * (wasm-rt.h), plus loading compiled modules and running instances.
 *
 * No process-global mutable state: everything hangs off an engine_module or
 * an engine_instance; the instance currently running on a thread is found
 * through one thread-local pointer (the scheduler thread's "current").
 *
 * Error convention: functions that can fail for reasons outside the program
 * (files, memory, bad modules) return 0 or a negative errno and fill an
 * error message buffer; broken invariants assert.
 */
#ifndef WISP_ENGINE_H
#define WISP_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <wasm-rt.h>

#include "vmctx.h"

typedef struct engine_module engine_module;
typedef struct engine_instance engine_instance;

/* How a call into an instance ended. */
enum engine_outcome {
	ENGINE_RETURNED = 0,   /* the export returned normally */
	ENGINE_EXITED,         /* the guest called proc_exit (code in exit_code) */
	ENGINE_TRAPPED,        /* a trap: kind, function and message are set */
	ENGINE_HANDED_OVER,    /* the guest handed over to a new version
	                          (engine_handover): its frames are gone */
};

/* The most return addresses a backtrace keeps (innermost first). */
#define ENGINE_BACKTRACE_MAX 32

struct engine_result {
	enum engine_outcome outcome;
	int exit_code;               /* ENGINE_EXITED */
	wasm_rt_trap_t trap;         /* ENGINE_TRAPPED */
	char function[128];          /* wasm function name, "" if unknown */
	char message[256];           /* extra detail, e.g. "memory limit" */
	/* Where the guest's code was when it trapped, or when the embedder
	 * ended it with engine_exit_traced: the return addresses inside the
	 * module's code, innermost first (engine_backtrace_functions names
	 * them). 0 frames otherwise (a return, proc_exit, a trap while
	 * instantiating). */
	uint32_t nframes;
	uintptr_t frames[ENGINE_BACKTRACE_MAX];
};

/* One wasm function of a backtrace. */
struct engine_frame {
	uint32_t index;              /* its index in the module's function space */
	/* Its name-section name, Rust's demangled ("func[N]" without one):
	 * guest text, not escaped. */
	char name[128];
	const char *file;            /* the source file its code starts in, from
	                                the module's DWARF (engine_sources), or NULL */
	uint32_t line;               /* and the line (0: unknown) */
};

/* Where each defined function of a module starts in its source, from the
 * wasm module's own DWARF line table (src/compile/wasm_lines.c makes it).
 * Reference-counted: the builds of one module share it. Every array is
 * malloc'd, and freed with the last reference. */
struct engine_sources {
	_Atomic uint32_t refs;
	uint32_t first;              /* function index of defined function 0 */
	uint32_t nfuncs;             /* defined functions */
	uint32_t *file;              /* per defined function: index into files,
	                                or UINT32_MAX (unknown) */
	uint32_t *line;              /* per defined function (0: unknown) */
	char **files;                /* file names ("dir/name"), guest text */
	uint32_t nfiles;
};
void engine_sources_unref(struct engine_sources *s);

struct engine_limits {
	/* Bytes the owner may hold in all: linear memory and tables count here,
	 * and so does whatever else the owner charges to `usage` (0: no limit
	 * but the 4 GiB of a 32-bit memory). */
	uint64_t max_memory;
	/* The owner's account (a process's, for wisp): the engine adds the
	 * bytes of the instance's memories and tables and takes them off when
	 * they are freed. NULL: the instance keeps its own. */
	_Atomic int64_t *usage;
	int64_t fuel_per_slice;      /* reductions per slice (0: 4000) */
	/* The native stack guest code runs on (a fiber's); 0: the calling
	 * thread's stack. */
	uintptr_t stack_lo, stack_hi;
	/* Called when a slice's fuel runs out, from guest code's hook, with
	 * the instance's host pointer; may switch fibers (the process yields)
	 * and returns when the instance may go on. NULL: a new slice starts at
	 * once. It may also end the instance (engine_exit) instead. */
	void (*slice_end)(void *host);
	/* Runs fn(arg) on a large stack (the scheduler thread's) and returns;
	 * used to name a trap's function, which reads DWARF. NULL: call it on
	 * the current stack. */
	void (*call_on_big_stack)(void (*fn)(void *), void *arg);
	/* Where freed linear memories wait for reuse (NULL: none). */
	struct engine_mem_pool *mem_pool;
};

/* A pool of freed linear memories for instances of one runtime, at most
 * max_per_class of each size (memory.c). Thread-safe. */
struct engine_mem_pool *engine_mem_pool_new(size_t max_per_class);
void engine_mem_pool_free(struct engine_mem_pool *p);
/* Give back the pages of clean slots that no memory took since the last
 * call (the bottom of each class's stack of clean slots, below its low
 * point since then): a burst of processes leaves its slots warm, and
 * without this they would stay resident for good. Call it every few
 * seconds (any thread). Returns the slots released. */
size_t engine_mem_pool_trim(struct engine_mem_pool *p);
/* mod is about to be unloaded: no slot of p may be taken as holding its
 * image any more (a class keeps the image of the first module to free a
 * memory of its size, by pointer: read after the unload, and matched by
 * a module loaded later at the same address). Call it before
 * engine_module_unload, from any thread. */
void engine_mem_pool_forget(struct engine_mem_pool *p, const engine_module *mod);
/* What the linear memories of p's instances take now, in bytes of address
 * space (the kernel commits a page when it is first touched): pooled
 * memories (slots in use), memories mapped on their own (over the pool's
 * size, or grown out of their slot), and the pool's slabs. O(size classes),
 * any thread. */
struct engine_mem_stats {
	uint64_t pooled_bytes;
	uint64_t own_bytes;
	uint64_t slab_bytes;
};
void engine_mem_pool_stats(struct engine_mem_pool *p, struct engine_mem_stats *out);

/* The native stack budget of guest code. A wasm function may start only if
 * the address of a local in its frame is at least ENGINE_STACK_HEADROOM above
 * the low end of the stack it runs on (the entry check, WISP_ENTRY), and the
 * compile pipeline refuses a module any of whose compiled functions needs
 * more than ENGINE_MAX_FRAME bytes of stack per call (its frame, saved
 * registers, return address and outgoing arguments; src/compile/stackcheck.c).
 * So below a frame that passed its check lie at most one frame of its own
 * and one callee's frame, which zeroes its locals before its own check can
 * fail: 2 * ENGINE_MAX_FRAME. The rest of the headroom, ENGINE_TRAP_RESERVE,
 * is for the trap path (which only records one return address before it
 * unwinds) and for host functions, which get at least HEADROOM - MAX_FRAME.
 * A function that passes the check can therefore never write below its
 * stack. */
#define ENGINE_STACK_HEADROOM (128u * 1024)
#define ENGINE_MAX_FRAME (48u * 1024)
#define ENGINE_TRAP_RESERVE (ENGINE_STACK_HEADROOM - 2 * ENGINE_MAX_FRAME)

/* The most bytes of values a thrown exception (exception handling's legacy
 * encoding) carries: an instance's payload buffer has this size, and the
 * compile pipeline refuses a module with a larger tag. */
#define ENGINE_EXCEPTION_MAX 256
_Static_assert(ENGINE_TRAP_RESERVE >= 16 * 1024,
               "the stack headroom must leave room for the trap path");

/* Load a compiled module (shared object produced by the compile pipeline).
 * If fd >= 0 the object is loaded from that open file (through
 * /proc/self/fd, so what is loaded is the file that was verified, whatever
 * happens to so_path meanwhile) and so_path only names it in messages and
 * for its debug information; else it is loaded from so_path.
 * On failure returns a negative errno and writes a message to err.
 * The module stays loaded until engine_module_unload(); fd stays the
 * caller's. */
int engine_module_load(const char *so_path, int fd, engine_module **out,
                       char *err, size_t errlen);
void engine_module_unload(engine_module *m);
/* `better` is the same module built better (the optimized tier): new
 * instances should be made of it. Both stay loaded. */
void engine_module_set_successor(engine_module *m, engine_module *better);
/* m, or the best build of the same module there is now. */
engine_module *engine_module_latest(engine_module *m);
/* The embedder's word for m (its entry in a module table, say): set once,
 * before m is shared; NULL until then. */
void engine_module_set_owner(engine_module *m, void *owner);
void *engine_module_owner(const engine_module *m);
bool engine_module_has_start(const engine_module *m);
/* m's source positions (a reference is taken; the caller keeps its own).
 * Before m is shared; a better build set later (engine_module_set_successor)
 * gets them too. */
void engine_module_set_sources(engine_module *m, struct engine_sources *s);

/* The wasm functions of a backtrace (engine_result.frames, n of them),
 * innermost first, at most cap: an optimized build's frame may hold
 * several (calls gcc inlined), a frame outside any function none. May read
 * the module's DWARF: call it on a big stack (engine_limits.
 * call_on_big_stack), from any thread. Returns how many it wrote. */
size_t engine_backtrace_functions(engine_module *m, const uintptr_t *frames, size_t n,
                                  struct engine_frame *out, size_t cap);

/* Create an instance. `host` is passed to every imported function as its
 * first argument (see src/host/host.h). Data segments and the start
 * function run here; a trap during instantiation is reported in *res and
 * NULL is returned (also on allocation failure, with res->message set). */
engine_instance *engine_instance_new(engine_module *m, void *host,
                                     const struct engine_limits *lim,
                                     struct engine_result *res);
void engine_instance_free(engine_instance *in);
/* The module in is an instance of. */
engine_module *engine_instance_module(const engine_instance *in);

/* Run the "_start" export to completion, catching traps and proc_exit. */
void engine_instance_run_start(engine_instance *in, struct engine_result *res);

/* Run the "wisp_spawn_entry" export, (i32 fn, i32 arg_len) -> (), the entry
 * of a spawned process. */
void engine_instance_run_spawn_entry(engine_instance *in, uint32_t fn,
                                     uint32_t arg_len, struct engine_result *res);
bool engine_module_has_spawn_entry(const engine_module *m);

/* Hot code reload. Whether m exports "wisp_code_change" (i32, i32) -> i32
 * and defines a funcref table: what a version must have to take over a
 * running process. */
bool engine_module_can_take_over(const engine_module *m);
/* Run in's "wisp_code_change"(old_vsn, state_len), catching traps: its
 * result in *ret when res->outcome is ENGINE_RETURNED. May run nested,
 * inside a host call of another instance on the same stack. */
void engine_instance_run_code_change(engine_instance *in, uint32_t old_vsn, uint32_t state_len,
                                     int32_t *ret, struct engine_result *res);
/* Whether in's own table holds a function () -> () at index. */
bool engine_instance_has_void_fn(const engine_instance *in, uint32_t index);
/* Run the function () -> () at index `index` of in's own table (a trap
 * if there is none of that type there). */
void engine_instance_run_fn(engine_instance *in, uint32_t index, struct engine_result *res);
/* End the running instance's entry call with ENGINE_HANDED_OVER: its
 * frames are dropped (nothing of them is resumed). Only from a host
 * function invoked by it. */
_Noreturn void engine_handover(engine_instance *in);

/* The instance's vmctx, and a request (from any thread) that the instance
 * end its slice at its next function entry. The vmctx is freed with the
 * instance: the caller must know the instance is alive. */
struct wisp_vmctx *engine_instance_vmctx(engine_instance *in);
void engine_vmctx_preempt(struct wisp_vmctx *ctx);

/* Hibernation (hibernate.c): give back the pages of in's memory, keeping
 * what differs from the module's initial image in *out (NULL: nothing to
 * keep, or no memory). 0, or -ENOMEM / -EAGAIN (nothing given back: the
 * instance stays as it was). Thaw restores it and frees f; NULL is fine.
 * Only while no code of the instance runs. may_move: nothing holds a
 * pointer into the memory until the instance runs again, so a pooled
 * memory's slot may go back to the pool and the memory wake in another
 * (no page faults then); else the memory keeps its address and its pages
 * are dropped in place. */
struct engine_frozen;
int engine_instance_freeze(engine_instance *in, bool may_move, struct engine_frozen **out);
/* f is consumed. -ENOMEM: no memory to wake into; the instance's memory
 * is then empty (any access traps) and its owner should end it. */
int engine_instance_thaw(engine_instance *in, struct engine_frozen *f);
size_t engine_frozen_bytes(const struct engine_frozen *f);
/* The bytes freezing f looked at and thawing it will write (its memory's
 * resident pages, the image's pages, the record): the host's work, which
 * the embedder charges to the instance's owner. */
uint64_t engine_frozen_work(const struct engine_frozen *f);

/* The instance's exported linear memory, or NULL if it has none. */
wasm_rt_memory_t *engine_instance_memory(engine_instance *in);

/* End the running instance with an exit code (WASI proc_exit); only
 * callable from a host function invoked by that instance. */
_Noreturn void engine_exit(engine_instance *in, int code);
/* The same, keeping where the guest's code was (engine_result.frames):
 * for an end the embedder decided (a kill, a limit, a panic), which a
 * crash report shows like a trap's. From a host function or the
 * instance's slice_end. */
_Noreturn void engine_exit_traced(engine_instance *in, int code);

/* Trap the running instance with a message (e.g. a host function detecting
 * a broken guest contract). Only callable from host code invoked by it. */
_Noreturn void engine_trap_msg(engine_instance *in, wasm_rt_trap_t kind,
                               const char *msg);

/* The instance running on this thread, or NULL. */
engine_instance *engine_current(void);
/* Set it (returns the previous one). A scheduler moving fibers between
 * threads saves it before a fiber switches out and restores it after the
 * fiber resumes, on whichever thread that is. */
engine_instance *engine_set_current(engine_instance *in);

/* Inspection (a parked process's stack, read from another thread). Is
 * ret a return address into m's wasm functions? (Immutable data: any
 * thread, while m is loaded.) */
bool engine_module_has_return(const engine_module *m, uintptr_t ret);
/* Whether m's wasm functions keep frame pointers (the fast tier): a
 * frame-pointer walk then goes on through its frames; else only the
 * innermost return address into it is meaningful. */
bool engine_module_frame_pointers(const engine_module *m);
/* The wasm function a return address into m returns to, as a crash
 * report names it (its name-section name, Rust's demangled, or func[N]),
 * into out (cap bytes, cut to fit). False (out "") if ret is not in m.
 * May read m's DWARF (milliseconds the first time, a deep stack): not on
 * a fiber. */
bool engine_module_function_at(engine_module *m, uintptr_t ret, char *out, size_t cap);

/* A function's name as people read it: Rust's mangling undone, else raw as
 * it is (not escaped), truncated to cap (demangle.c). Also for the compile
 * pipeline's messages. */
void engine_display_name(const char *raw, char *out, size_t cap);

/* Human-readable trap kind: "unreachable", "out of bounds memory access"... */
const char *engine_trap_name(wasm_rt_trap_t kind);

/* Bounds-checked view of guest memory: a host pointer to [addr, addr+len)
 * or NULL if any byte is outside the memory. len may be 0. */
static inline void *engine_guest_ptr(wasm_rt_memory_t *mem, uint32_t addr,
                                     uint64_t len)
{
	if (mem == NULL || len > mem->size || addr > mem->size - len)
		return NULL;
	return mem->data + addr;
}

#endif
