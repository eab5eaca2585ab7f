/*
 * symbolize.c — which wasm function a trap happened in.
 *
 * Two builds, two ways (the module says which: wisp_module_abi.flags):
 *
 * - Fast tier (tcc): every function keeps a frame pointer and nothing is
 *   inlined, so the trap walks the frame chain (bounded by the instance's
 *   stack) to the first return address inside the module's code, and the
 *   function with the greatest start address at or below it is the one.
 *
 * - Optimized tier (gcc -O2): no frame pointers, and gcc inlines wasm
 *   functions into each other. Return addresses come from the unwinder
 *   (_Unwind_Backtrace, .eh_frame); each is mapped to a source line of the
 *   module's tu.c with its DWARF line table, and through the inlining
 *   records (-g1 keeps them) to the line of every inlined call around it.
 *   The first of those lines that lies inside a wasm function's body (the
 *   epilogue records each body's lines) names the innermost wasm function —
 *   so a trap in wasm2c's inlined load helper inside an inlined wasm
 *   function inside another is reported as the inlined wasm function.
 *   elfutils' libdw reads the DWARF; its session is opened on a module's
 *   first trap and kept, and answers are cached per address, since a
 *   program that traps often usually traps in the same place.
 *
 * Alternative rejected: keeping frame pointers and forbidding inlining of
 * wasm functions in the optimized tier made call-heavy code 1.7x slower.
 */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unwind.h>

#include "engine_impl.h"

#define MAX_FRAMES 64
#define CACHE_SIZE 256

struct symbolizer {
	pthread_mutex_t lock;
	Dwfl *dwfl;
	Dwfl_Module *mod;
	bool failed;
	struct { uintptr_t pc; const struct fn_range *fn; } cache[CACHE_SIZE];
};

static const Dwfl_Callbacks offline_callbacks = {
	.find_debuginfo = dwfl_standard_find_debuginfo,
	.section_address = dwfl_offline_section_address,
};

void symbolizer_free(struct symbolizer *s)
{
	if (s == NULL)
		return;
	if (s->dwfl)
		dwfl_end(s->dwfl);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* The function whose body holds `line`, or NULL. */
static const struct fn_range *fn_by_line(const engine_module *m, uint64_t line)
{
	for (uint32_t i = 0; i < m->nfns; i++)
		if (m->fns[i].line_first != 0 && line >= m->fns[i].line_first &&
		    line <= m->fns[i].line_last)
			return &m->fns[i];
	return NULL;
}

/* The greatest start <= pc below code_end, or NULL. */
static const struct fn_range *fn_by_address(const engine_module *m, uintptr_t a)
{
	if (m->nfns == 0 || a < m->fns[0].start || a >= (uintptr_t)m->abi->code_end)
		return NULL;
	uint32_t lo = 0, hi = m->nfns;
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (m->fns[mid].start <= a)
			lo = mid;
		else
			hi = mid;
	}
	return &m->fns[lo];
}

static bool open_dwarf(engine_module *m, struct symbolizer *s)
{
	if (s->dwfl != NULL)
		return true;
	if (s->failed)
		return false;
	s->dwfl = dwfl_begin(&offline_callbacks);
	if (s->dwfl != NULL) {
		dwfl_report_begin(s->dwfl);
		s->mod = dwfl_report_elf(s->dwfl, "module", m->path, -1, m->base, false);
		dwfl_report_end(s->dwfl, NULL, NULL);
	}
	if (s->dwfl == NULL || s->mod == NULL) {
		if (s->dwfl)
			dwfl_end(s->dwfl);
		s->dwfl = NULL;
		s->failed = true;
		return false;
	}
	return true;
}

/* Map pc through the line table and the inlining records. */
static const struct fn_range *fn_by_dwarf(engine_module *m, struct symbolizer *s,
                                          uintptr_t pc)
{
	if (!open_dwarf(m, s))
		return NULL;
	Dwfl_Line *l = dwfl_module_getsrc(s->mod, pc);
	int lineno = 0;
	if (l != NULL && dwfl_lineinfo(l, NULL, &lineno, NULL, NULL, NULL) != NULL) {
		const struct fn_range *fn = fn_by_line(m, (uint64_t)lineno);
		if (fn != NULL)
			return fn;
	}
	Dwarf_Addr bias = 0;
	Dwarf_Die *cu = dwfl_module_addrdie(s->mod, pc, &bias);
	if (cu == NULL)
		return NULL;
	Dwarf_Die *scopes = NULL;
	int n = dwarf_getscopes(cu, pc - bias, &scopes);
	const struct fn_range *fn = NULL;
	for (int i = 0; i < n && fn == NULL; i++) {
		if (dwarf_tag(&scopes[i]) != DW_TAG_inlined_subroutine)
			continue;
		Dwarf_Attribute attr;
		Dwarf_Word call_line;
		if (dwarf_attr(&scopes[i], DW_AT_call_line, &attr) != NULL &&
		    dwarf_formudata(&attr, &call_line) == 0)
			fn = fn_by_line(m, call_line);
	}
	free(scopes);
	return fn;
}

static const struct fn_range *lookup(engine_module *m, uintptr_t pc)
{
	if ((m->abi->flags & WISP_MODULE_DEBUG_LINES) == 0)
		return fn_by_address(m, pc);
	if (pc < m->fns[0].start || pc >= (uintptr_t)m->abi->code_end)
		return NULL;
	struct symbolizer *s = m->sym;
	unsigned slot = (unsigned)((pc >> 2) ^ (pc >> 11)) % CACHE_SIZE;
	const struct fn_range *fn;
	pthread_mutex_lock(&s->lock);
	if (s->cache[slot].pc == pc) {
		fn = s->cache[slot].fn;
	} else {
		fn = fn_by_dwarf(m, s, pc);
		if (fn == NULL)
			fn = fn_by_address(m, pc);
		s->cache[slot].pc = pc;
		s->cache[slot].fn = fn;
	}
	pthread_mutex_unlock(&s->lock);
	return fn;
}

/* Is pc inside the module's wasm functions (before the end sentinel)? */
static bool in_module_code(const engine_module *m, uintptr_t pc)
{
	return m->nfns > 0 && pc >= m->fns[0].start && pc < (uintptr_t)m->abi->code_end;
}

struct unwind_state {
	const engine_module *m;
	uintptr_t pc;
	int frames;
};

/* Stop at the first return address inside the module: the innermost wasm
 * function (lookup() answers for any address in that range). */
static _Unwind_Reason_Code collect(struct _Unwind_Context *ctx, void *arg)
{
	struct unwind_state *st = arg;
	int before = 0;
	uintptr_t pc = _Unwind_GetIPInfo(ctx, &before);
	if (pc == 0 || ++st->frames > MAX_FRAMES)
		return _URC_END_OF_STACK;
	/* A return address may point just past a call that never returns:
	 * look up the byte before it (the unwinder says which it is). */
	pc = before ? pc : pc - 1;
	if (!in_module_code(st->m, pc))
		return _URC_NO_REASON;
	st->pc = pc;
	return _URC_END_OF_STACK;
}

/* Frame-pointer walk within the instance's stack. */
static uintptr_t walk_frames(engine_instance *in, void **fp)
{
	for (int n = 0; n < MAX_FRAMES; n++) {
		uintptr_t f = (uintptr_t)fp;
		if (f < in->stack_lo || f + 2 * sizeof(void *) > in->stack_hi ||
		    (f & (sizeof(void *) - 1)) != 0)
			break;
		uintptr_t pc = (uintptr_t)fp[1] - 1;
		if (in_module_code(in->mod, pc))
			return pc;
		void **next = (void **)fp[0];
		if ((uintptr_t)next <= f)
			break;
		fp = next;
	}
	return 0;
}

uintptr_t engine_trap_pc(engine_instance *in, void **fp)
{
	engine_module *m = in->mod;
	if (m->abi->flags & WISP_MODULE_FRAME_POINTERS)
		return walk_frames(in, fp);
	struct unwind_state st = { .m = m };
	_Unwind_Backtrace(collect, &st);
	return st.pc;
}

const char *engine_symbolize_pc(engine_module *m, uintptr_t pc)
{
	const struct fn_range *fn = lookup(m, pc);
	return fn != NULL ? fn->name : NULL;
}

bool engine_module_has_return(const engine_module *m, uintptr_t ret)
{
	return ret != 0 && in_module_code(m, ret - 1);
}

bool engine_module_frame_pointers(const engine_module *m)
{
	return (m->abi->flags & WISP_MODULE_FRAME_POINTERS) != 0;
}

const char *engine_module_function_at(engine_module *m, uintptr_t ret)
{
	/* (The call before the return address: as the trap path looks.) */
	return engine_module_has_return(m, ret) ? engine_symbolize_pc(m, ret - 1) : NULL;
}

struct symbolizer *symbolizer_new(void)
{
	struct symbolizer *s = calloc(1, sizeof(*s));
	if (s != NULL)
		pthread_mutex_init(&s->lock, NULL);
	return s;
}
