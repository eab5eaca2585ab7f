/*
 * table.c — funcref and externref tables and function-type registration
 * (wasm-rt.h's table and type API).
 *
 * Tables are plain calloc'd arrays owned by their instance. Growth is capped
 * by the table's declared maximum, by TABLE_HARD_MAX and by the owner's
 * memory limit (their bytes are charged to its account like linear
 * memory), so a guest cannot make the host allocate without bound; failure
 * returns UINT32_MAX as wasm requires (table.grow yields -1).
 *
 * Function types are registered per module, not globally: generated code
 * calls wasm_rt_register_func_type() from its init_module(), which the loader
 * runs with the module set as "loading" on this thread (see module.c).
 * call_indirect compares indices from the same module only, since a table
 * never holds another module's functions in wisp.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine_impl.h"

#define TABLE_HARD_MAX (1u << 24)

static _Noreturn void table_oom(void)
{
	engine_instance *in = engine_current();
	if (in != NULL)
		engine_trap_msg(in, WASM_RT_TRAP_OOB, "table too large");
	fprintf(stderr, "wisp: out of memory allocating a table\n");
	abort();
}

static void *table_alloc(uint32_t n, size_t elem)
{
	engine_instance *in = engine_current();
	if (n > TABLE_HARD_MAX || !engine_charge(in, (uint64_t)n * elem))
		table_oom();
	void *p = calloc(n ? n : 1, elem);
	if (p == NULL) {
		engine_uncharge(in, (uint64_t)n * elem);
		table_oom();
	}
	return p;
}

static void table_free(void *data, uint32_t n, size_t elem)
{
	engine_uncharge(engine_current(), (uint64_t)n * elem);
	free(data);
}

void wasm_rt_allocate_funcref_table(wasm_rt_funcref_table_t *t,
                                    uint32_t elements, uint32_t max_elements)
{
	t->data = table_alloc(elements, sizeof(*t->data));
	t->size = elements;
	t->max_size = max_elements;
}

void wasm_rt_free_funcref_table(wasm_rt_funcref_table_t *t)
{
	table_free(t->data, t->size, sizeof(*t->data));
	t->data = NULL;
	t->size = 0;
}

void wasm_rt_allocate_externref_table(wasm_rt_externref_table_t *t,
                                      uint32_t elements, uint32_t max_elements)
{
	t->data = table_alloc(elements, sizeof(*t->data));
	t->size = elements;
	t->max_size = max_elements;
}

void wasm_rt_free_externref_table(wasm_rt_externref_table_t *t)
{
	table_free(t->data, t->size, sizeof(*t->data));
	t->data = NULL;
	t->size = 0;
}

/* Grow an array of `size` elements of `elem` bytes by `delta`, filling the
 * new slots with `init`. Returns the old size or UINT32_MAX. */
static uint32_t grow_array(void **data, uint32_t *size, uint32_t max_size,
                           uint32_t delta, size_t elem, const void *init)
{
	uint32_t old = *size;
	uint64_t want = (uint64_t)old + delta;
	if (want > max_size || want > TABLE_HARD_MAX)
		return UINT32_MAX;
	if (delta == 0)
		return old;
	engine_instance *in = engine_current();
	if (!engine_charge(in, (uint64_t)delta * elem))
		return UINT32_MAX;
	char *p = realloc(*data, want * elem);
	if (p == NULL) {
		engine_uncharge(in, (uint64_t)delta * elem);
		return UINT32_MAX;
	}
	for (uint64_t i = old; i < want; i++)
		memcpy(p + i * elem, init, elem);
	*data = p;
	*size = (uint32_t)want;
	return old;
}

uint32_t wasm_rt_grow_funcref_table(wasm_rt_funcref_table_t *t, uint32_t delta,
                                    wasm_rt_funcref_t init)
{
	void *d = t->data;
	uint32_t r = grow_array(&d, &t->size, t->max_size, delta, sizeof(init), &init);
	t->data = d;
	return r;
}

uint32_t wasm_rt_grow_externref_table(wasm_rt_externref_table_t *t,
                                      uint32_t delta, wasm_rt_externref_t init)
{
	void *d = t->data;
	uint32_t r = grow_array(&d, &t->size, t->max_size, delta, sizeof(init), &init);
	t->data = d;
	return r;
}

static int same_type(const struct functype *a, uint32_t np, uint32_t nr,
                     const wasm_rt_type_t *types)
{
	if (a->nparams != np || a->nresults != nr)
		return 0;
	for (uint32_t i = 0; i < np + nr; i++)
		if (a->types[i] != types[i])
			return 0;
	return 1;
}

uint32_t wasm_rt_register_func_type(uint32_t params, uint32_t results, ...)
{
	engine_module *m = engine_loading_module();
	if (m == NULL || params + results > 4096) {
		fprintf(stderr, "wisp: internal error: function type registered "
		                "outside module initialisation\n");
		abort();
	}
	wasm_rt_type_t stackbuf[64];
	wasm_rt_type_t *types = params + results <= 64
	        ? stackbuf : malloc((params + results) * sizeof(*types));
	if (types == NULL) {
		m->oom = true;
		return UINT32_MAX;
	}
	va_list ap;
	va_start(ap, results);
	for (uint32_t i = 0; i < params + results; i++)
		types[i] = (wasm_rt_type_t)va_arg(ap, int);
	va_end(ap);

	for (uint32_t i = 0; i < m->ntypes; i++) {
		if (same_type(&m->types[i], params, results, types)) {
			if (types != stackbuf)
				free(types);
			return i;
		}
	}
	if (m->ntypes == m->captypes) {
		uint32_t cap = m->captypes ? m->captypes * 2 : 16;
		struct functype *nt = realloc(m->types, cap * sizeof(*nt));
		if (nt == NULL)
			goto oom;
		m->types = nt;
		m->captypes = cap;
	}
	struct functype *ft = &m->types[m->ntypes];
	ft->nparams = params;
	ft->nresults = results;
	ft->types = malloc((params + results ? params + results : 1) * sizeof(*types));
	if (ft->types == NULL)
		goto oom;
	memcpy(ft->types, types, (params + results) * sizeof(*types));
	if (types != stackbuf)
		free(types);
	return m->ntypes++;
oom:
	/* wasm-rt.h gives this call no way to fail: mark the module, whose
	 * loader checks after init_module and refuses it. */
	if (types != stackbuf)
		free(types);
	m->oom = true;
	return UINT32_MAX;
}

uint32_t wasm_rt_register_tag(uint32_t size)
{
	engine_module *m = engine_loading_module();
	if (m == NULL)
		abort();
	(void)size;
	return m->ntags++;
}
