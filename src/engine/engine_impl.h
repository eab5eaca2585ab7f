/*
 * engine_impl.h — engine internals shared by module.c, instance.c, memory.c,
 * table.c and trap.c. Not for use outside src/engine/.
 */
#ifndef WISP_ENGINE_IMPL_H
#define WISP_ENGINE_IMPL_H

#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>

#include "engine.h"

/* Function signatures registered by a module's init_module(); the index is
 * what wasm_rt_register_func_type returns, compared by call_indirect. */
struct functype {
	uint32_t nparams, nresults;
	wasm_rt_type_t *types;       /* params then results */
};

struct fn_range {
	uintptr_t start;
	uint32_t index;
	const char *name;
	uint32_t line_first, line_last;   /* body lines in tu.c (0: unknown) */
};

struct symbolizer;

/* (None under ASan, so that a use after free is still caught.) */
#if defined(__SANITIZE_ADDRESS__)
#define SPARE_INSTANCES 0
#else
#define SPARE_INSTANCES 64
#endif

struct engine_module {
	void *dl;
	int name_fd;                 /* the fd dlopen named it by, or -1 */
	/* The same module, built better (the optimized tier): new instances
	 * are made of it from then on (engine_module_latest). */
	_Atomic(engine_module *) successor;
	void *owner;                 /* the embedder's (engine_module_set_owner) */
	char *path;                  /* the shared object, for its DWARF */
	uintptr_t base;              /* its load address */
	struct symbolizer *sym;      /* trap attribution state (symbolize.c) */
	struct engine_sources *sources;   /* source positions, or NULL */
	const struct wisp_module_abi *abi;
	struct fn_range *fns;        /* sorted by start address */
	uint32_t nfns;
	struct functype *types;
	uint32_t ntypes, captypes;
	uint32_t ntags;
	bool oom;                    /* registration ran out of memory */
	/* The memory every instance starts with (hibernate.c): 0 not yet
	 * captured, 1 being captured, 2 ready in `image`, 3 none. */
	atomic_int image_state;
	struct engine_image *image;
	bool swap;                   /* swap was on at load: see hibernate.c */
	/* Freed instance allocations, all of one size, kept for reuse
	 * (instance.c): malloc's path for blocks this large is slower. */
	pthread_mutex_t spare_lock;
	void *spare[SPARE_INSTANCES + 1];
	uint32_t nspare;
};

struct engine_image;
struct engine_frozen;
/* Capture the image from the first instance, after instantiation. */
void engine_image_capture(engine_instance *in);
void engine_image_free(struct engine_image *img);
/* The image's copy of OS page i (NULL: zero), and how many OS pages the
 * memory had when the image was taken. */
const unsigned char *engine_image_page(const struct engine_image *img, uint32_t i);
uint32_t engine_image_os_pages(const struct engine_image *img);
/* Hibernation (memory.c): give a pooled memory's slot back to the pool
 * (false: not pooled; the memory stays), and take one again for it (holding
 * the module's image if *imaged, else zero; -ENOMEM). */
bool engine_memory_release(engine_instance *in);
int engine_memory_reacquire(engine_instance *in, uint32_t size, bool *imaged);

enum instance_phase { PHASE_IDLE, PHASE_INSTANTIATE, PHASE_RUN };

struct engine_instance {
	engine_module *mod;
	void *host;
	struct engine_limits limits;
	enum instance_phase phase;
	jmp_buf unwind;              /* where traps and exits land */
	struct engine_result *res;   /* filled by trap/exit before unwinding */
	uintptr_t stack_lo, stack_hi;/* the native stack the instance runs on */
	engine_instance *prev_current;
	uintptr_t trap_pc;           /* innermost return address in the module's
	                                code at the last trap (0: none) */
	_Atomic int64_t *usage;      /* limits.usage, or &own_usage */
	_Atomic int64_t own_usage;
	/* Exception-handling state (per instance, never global): the thrown
	 * exception, its payload buffer made on the first throw (EXC_DATA_MAX
	 * bytes), and the innermost try's jmp_buf (NULL: none; reset by
	 * enter()). */
	uint32_t exc_tag, exc_size;
	unsigned char *exc_data;
	WASM_RT_UNWIND_TARGET *exc_target;
	uint32_t mem_initial_pages;  /* its memory's size when created */
	bool mem_pooled;             /* its memory is a pool slot (memory.c) */
	/* vmctx + wasm2c's instance struct, in the same allocation as this
	 * struct, right after it (64-byte aligned). */
	struct wisp_vmctx *vmctx;
	void *w2c;                   /* wasm2c instance: vmctx + 1 */
};

#define EXC_DATA_MAX ENGINE_EXCEPTION_MAX

/* Set by module.c while init_module() runs, so that the context-free
 * wasm_rt_register_func_type() knows which module it registers for. */
engine_module *engine_loading_module(void);

/* The return addresses inside the module's code on the stack below frame
 * fp (a trap's, or a host function's), innermost first, at most max into
 * out; how many (symbolize.c). Uses little stack: it runs on the trapping
 * stack, which may be nearly exhausted. */
uint32_t engine_backtrace(engine_instance *in, void **fp, uintptr_t *out, uint32_t max);
/* The wasm function (its raw name-section name, or func[N]) whose code pc
 * belongs to, or NULL. May read the module's DWARF: call it after the
 * unwind. */
const char *engine_symbolize_pc(engine_module *m, uintptr_t pc);
/* After a trap has unwound to enter(): name its function in the result
 * (escaped for a terminal). */
void engine_attribute_trap(engine_instance *in);
struct symbolizer *symbolizer_new(void);
void symbolizer_free(struct symbolizer *s);

/* Charge bytes of memory or table to in's account: false (nothing
 * charged) if that would pass limits.max_memory. in may be NULL (memories
 * made outside any instance are not accounted). */
bool engine_charge(engine_instance *in, uint64_t bytes);
void engine_uncharge(engine_instance *in, uint64_t bytes);

/* Unwind to the running instance's entry with its result already filled. */
_Noreturn void engine_unwind(engine_instance *in);

#endif
