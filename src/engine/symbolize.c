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
 * A crash report's backtrace (engine_backtrace, engine_backtrace_functions)
 * goes on past the innermost function the same way: every return address
 * inside the module's code, each mapped to its function — in the optimized
 * tier to every wasm function of its inlining chain, innermost first, so
 * the backtrace lists the wasm calls even where gcc merged their frames.
 * Each function's source file and line, when the module carried DWARF of
 * its own, come from the module's engine_sources.
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
/* Wasm functions one native frame may stand for (gcc's inlining depth
 * seldom passes a few); deeper chains lose their outer calls. */
#define CHAIN_MAX 8

struct symbolizer {
	pthread_mutex_t lock;
	Dwfl *dwfl;
	Dwfl_Module *mod;
	bool failed;
	struct { uintptr_t pc; const struct fn_range *fn; } cache[CACHE_SIZE];
	/* Inlining chains of return addresses (backtraces), likewise. */
	struct {
		uintptr_t pc;
		uint32_t n;
		const struct fn_range *fn[CHAIN_MAX];
	} chains[CACHE_SIZE];
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

/* Every wasm function pc stands for, innermost first: the one whose body
 * holds its line, then the one holding the call line of each inlined
 * call around it (wasm2c's inlined helpers name no wasm function of their
 * own: their call line is inside the wasm function that used them). */
static uint32_t chain_by_dwarf(engine_module *m, struct symbolizer *s, uintptr_t pc,
                               const struct fn_range **out)
{
	uint32_t n = 0;
	if (!open_dwarf(m, s))
		return 0;
	Dwfl_Line *l = dwfl_module_getsrc(s->mod, pc);
	int lineno = 0;
	if (l != NULL && dwfl_lineinfo(l, NULL, &lineno, NULL, NULL, NULL) != NULL &&
	    (out[n] = fn_by_line(m, (uint64_t)lineno)) != NULL)
		n++;
	Dwarf_Addr bias = 0;
	Dwarf_Die *cu = dwfl_module_addrdie(s->mod, pc, &bias);
	if (cu == NULL)
		return n;
	Dwarf_Die *scopes = NULL;
	int ns = dwarf_getscopes(cu, pc - bias, &scopes);
	for (int i = 0; i < ns && n < CHAIN_MAX; i++) {
		Dwarf_Attribute attr;
		Dwarf_Word call_line;
		if (dwarf_tag(&scopes[i]) != DW_TAG_inlined_subroutine ||
		    dwarf_attr(&scopes[i], DW_AT_call_line, &attr) == NULL ||
		    dwarf_formudata(&attr, &call_line) != 0)
			continue;
		const struct fn_range *fn = fn_by_line(m, call_line);
		if (fn != NULL && (n == 0 || out[n - 1] != fn))
			out[n++] = fn;
	}
	free(scopes);
	return n;
}

/* The wasm functions of one return address (see chain_by_dwarf). */
static uint32_t chain(engine_module *m, uintptr_t pc, const struct fn_range **out)
{
	if ((m->abi->flags & WISP_MODULE_DEBUG_LINES) == 0) {
		out[0] = fn_by_address(m, pc);
		return out[0] != NULL;
	}
	if (m->nfns == 0 || pc < m->fns[0].start || pc >= (uintptr_t)m->abi->code_end)
		return 0;
	struct symbolizer *s = m->sym;
	unsigned slot = (unsigned)((pc >> 2) ^ (pc >> 11)) % CACHE_SIZE;
	uint32_t n;
	pthread_mutex_lock(&s->lock);
	if (s->chains[slot].pc != pc) {
		n = chain_by_dwarf(m, s, pc, s->chains[slot].fn);
		if (n == 0 && (s->chains[slot].fn[0] = fn_by_address(m, pc)) != NULL)
			n = 1;
		s->chains[slot].pc = pc;
		s->chains[slot].n = n;
	}
	n = s->chains[slot].n;
	memcpy(out, s->chains[slot].fn, n * sizeof(*out));
	pthread_mutex_unlock(&s->lock);
	return n;
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
	uintptr_t *out;
	uint32_t n, max;
	int frames;
};

/* Keep every return address inside the module (lookup() and chain()
 * answer for any address in that range), up to max; the walk ends at the
 * fiber's first frame (its CFI says so) or after MAX_FRAMES frames. */
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
	st->out[st->n++] = pc;
	return st->n < st->max ? _URC_NO_REASON : _URC_END_OF_STACK;
}

/* Frame-pointer walk within the instance's stack. */
static uint32_t walk_frames(engine_instance *in, void **fp, uintptr_t *out, uint32_t max)
{
	uint32_t k = 0;
	for (int n = 0; n < MAX_FRAMES && k < max; n++) {
		uintptr_t f = (uintptr_t)fp;
		if (f < in->stack_lo || f + 2 * sizeof(void *) > in->stack_hi ||
		    (f & (sizeof(void *) - 1)) != 0)
			break;
		uintptr_t pc = (uintptr_t)fp[1] - 1;
		if (in_module_code(in->mod, pc))
			out[k++] = pc;
		void **next = (void **)fp[0];
		if ((uintptr_t)next <= f)
			break;
		fp = next;
	}
	return k;
}

uint32_t engine_backtrace(engine_instance *in, void **fp, uintptr_t *out, uint32_t max)
{
	engine_module *m = in->mod;
	if (max == 0)
		return 0;
	if (m->abi->flags & WISP_MODULE_FRAME_POINTERS)
		return walk_frames(in, fp, out, max);
	struct unwind_state st = { .m = m, .out = out, .max = max };
	_Unwind_Backtrace(collect, &st);
	return st.n;
}

/* The source position of wasm function index (NULL file: unknown). */
static void source_of(const engine_module *m, uint32_t index, struct engine_frame *f)
{
	const struct engine_sources *s = m->sources;
	f->file = NULL;
	f->line = 0;
	if (s == NULL || index < s->first || index - s->first >= s->nfuncs)
		return;
	uint32_t i = index - s->first;
	if (s->file[i] < s->nfiles && s->line[i] != 0) {
		f->file = s->files[s->file[i]];
		f->line = s->line[i];
	}
}

size_t engine_backtrace_functions(engine_module *m, const uintptr_t *frames, size_t n,
                                  struct engine_frame *out, size_t cap)
{
	size_t k = 0;
	for (size_t i = 0; i < n && k < cap; i++) {
		const struct fn_range *fns[CHAIN_MAX];
		uint32_t nf = chain(m, frames[i], fns);
		for (uint32_t j = 0; j < nf && k < cap; j++) {
			/* An export's wasm2c wrapper (no body lines of its own)
			 * around the function it exports: one wasm function. */
			if (k > 0 && out[k - 1].index == fns[j]->index && fns[j]->line_first == 0)
				continue;
			struct engine_frame *f = &out[k++];
			f->index = fns[j]->index;
			engine_display_name(fns[j]->name, f->name, sizeof(f->name));
			source_of(m, fns[j]->index, f);
		}
	}
	return k;
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

bool engine_module_function_at(engine_module *m, uintptr_t ret, char *out, size_t cap)
{
	/* (The call before the return address: as the trap path looks.) */
	const char *raw = engine_module_has_return(m, ret) ? engine_symbolize_pc(m, ret - 1) : NULL;
	if (cap > 0)
		out[0] = '\0';
	if (raw == NULL || cap == 0)
		return false;
	engine_display_name(raw, out, cap);
	return true;
}

struct symbolizer *symbolizer_new(void)
{
	struct symbolizer *s = calloc(1, sizeof(*s));
	if (s != NULL)
		pthread_mutex_init(&s->lock, NULL);
	return s;
}
