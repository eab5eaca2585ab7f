/*
 * codegen.c — from a validated .wasm to one C translation unit.
 *
 *   wasm2c module.wasm -n wisp_guest  →  wisp_guest.c + wisp_guest.h
 *   tu.c = prelude (vmctx.h + prelude.c.in)
 *        + wisp_guest.c with the reduction points rewritten
 *        + an epilogue describing the module (struct wisp_module_abi)
 *
 * Reduction points are placed in the C text rather than by a binaryen pass:
 * wasm2c (1.0.32) emits `FUNC_PROLOGUE;` at the start of every function body
 * and a `w2c_L<n>:` label at every loop head (the target of every backward
 * branch), so rewriting those two anchors puts a check at exactly the places
 * the design asks for, with no change to the wasm (binaryen's
 * --log-execution also instruments function exits and shifts function
 * indices; Debian ships no binaryen C library). The anchors are counted: a
 * module whose functions yield no FUNC_PROLOGUE means an unexpected wasm2c
 * and is refused rather than run without preemption.
 *
 * For the optimizing tier a large tu.c is then cut into units compiled in
 * parallel (split.c); the cut follows the lines recorded here.
 *
 * The epilogue lists every defined function's native address with its wasm
 * index and name, taken from wasm2c's forward declarations, which appear in
 * function-index order, and the lines of tu.c its body occupies, which is
 * how a trap in code the C compiler inlined still names the innermost wasm
 * function (src/engine/symbolize.c). wasm2c's own helpers (loads, stores,
 * math) are forced inline (WISP_INLINE).
 */
#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blob.h"
#include "codegen.h"
#include "limits.h"
#include "split.h"
#include "../common/util.h"
#include "../engine/engine.h"
#include "../engine/vmctx.h"

extern const char wisp_prelude_text[];

const char *codegen_prelude(void)
{
	return wisp_prelude_text;
}

/* wasm2c's name mangling for exports: [A-Za-z0-9_] except 'Z' are kept,
 * everything else (and 'Z') becomes Z + two hex digits per byte. */
static void mangle(const char *name, char *out, size_t outlen)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)name; *p && n + 4 < outlen; p++) {
		if ((isalnum(*p) || *p == '_') && *p != 'Z')
			out[n++] = (char)*p;
		else
			n += (size_t)snprintf(out + n, outlen - n, "Z%02X", *p);
	}
	out[n] = '\0';
}

static void put_c_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\' || *p == '?')
			fprintf(f, "\\%03o", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			fprintf(f, "\\%03o", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

/* Is `line` a wasm2c loop label ("  w2c_L12: ")? */
/* A statement of a function body that calls one of wasm2c's bulk
 * helpers (memory.fill & co.): "NAME(" at the start of the line. */
static bool is_bulk_call(const char *q, const char *end)
{
	static const char *const names[] = {
		"memory_fill(", "memory_copy(", "memory_init(",
		"funcref_table_init(", "externref_table_init(",
		"funcref_table_copy(", "externref_table_copy(",
		"funcref_table_fill(", "externref_table_fill(",
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		size_t n = strlen(names[i]);
		if ((size_t)(end - q) > n && memcmp(q, names[i], n) == 0)
			return true;
	}
	return false;
}

/* wasm2c 1.0.32's funcref_table_init (active and passive element
 * segments) makes an entry's instance `(char*)instance + module_offset`,
 * where module_offset is 0 for a defined function and, for an imported
 * one, the offset of the field that holds the import's instance: the
 * address of that field, not its value. A host function called through
 * such an entry (call_indirect; Rust at opt-level 0 calls an `extern "C"`
 * import passed as a function pointer that way) would get a pointer into
 * the guest's instance as its host_proc. So an imported function's entry
 * gets ELEM_IMPORT, the top bit, or'ed into its offset (the field's offset
 * may itself be 0), and the helper's line loads the field for those.
 * (ref.func of an import is right in 1.0.32, and is not rewritten.) */
#define ELEM_IMPORT "(~(SIZE_MAX >> 1))"
static const char table_init_line[] = "(char*)module_instance + src_expr->module_offset};";
static const char import_offset[] = ", offsetof(Z_wisp_guest_instance_t, ";

/* The line `p` (`len` bytes) without its indent. */
static const char *skip_indent(const char *p, size_t len)
{
	while (len > 0 && *p == ' ')
		p++, len--;
	return p;
}

/* wasm2c 1.0.32 packs a thrown exception's values into a struct
 * (`struct wasm_tag_ji { u64 j0; u32 i1; };` for a tag of (i64, i32)),
 * but both its throw (`tmp = {w2c_i1, w2c_j0, }`) and its catch
 * (`w2c_i1 = tmp.j0;`) list the values last first: field `j0` holds the
 * i32, and in a tag of mixed types a value lands in a field of another type
 * (an i64 was cut to 32 bits). Declaring the fields' types in reverse order,
 * names kept, makes each field the type of the value it holds; a tag whose
 * values share one type is unchanged. */
#define TAG_FIELDS_MAX (ENGINE_EXCEPTION_MAX / 4)

struct tag_struct {
	bool open;                  /* inside `struct wasm_tag_... {` */
	bool overflow;              /* more fields than a tag can have */
	unsigned n;
	const char *line[TAG_FIELDS_MAX];
	size_t len[TAG_FIELDS_MAX];
};

enum tag_line { TAG_NONE, TAG_WRITTEN, TAG_HELD };

/* Handles the lines of a tag struct: TAG_HELD for a field line (kept until
 * the struct's end), TAG_WRITTEN when the line was written (the struct's
 * end writes its fields first, counted in *line), TAG_NONE for any other
 * line. Sets overflow for more fields than ENGINE_EXCEPTION_MAX bytes hold
 * (wasm_code.c refuses such a tag, so it means unexpected wasm2c output). */
static enum tag_line rewrite_tag_struct(struct tag_struct *t, FILE *f, const char *p,
                                        size_t len, uint32_t *line)
{
	if (!t->open) {
		if (len < 17 || strncmp(p, "struct wasm_tag_", 16) != 0 || p[len - 1] != '{')
			return TAG_NONE;
		t->open = true;
		t->n = 0;
		fwrite(p, 1, len, f);
		return TAG_WRITTEN;
	}
	if (len == 2 && p[0] == '}' && p[1] == ';') {
		for (unsigned i = 0; i < t->n; i++) {
			const char *field = t->line[i], *kind = t->line[t->n - 1 - i];
			const char *name = memrchr(field, ' ', t->len[i]);
			const char *kend = memrchr(kind, ' ', t->len[t->n - 1 - i]);
			fwrite(kind, 1, (size_t)(kend - kind), f);
			fwrite(name, 1, t->len[i] - (size_t)(name - field), f);
			fputc('\n', f);
		}
		*line += t->n;
		fwrite(p, 1, len, f);
		t->open = false;
		return TAG_WRITTEN;
	}
	if (t->n == TAG_FIELDS_MAX || memrchr(p, ' ', len) == NULL) {
		t->overflow = true;
		fwrite(p, 1, len, f);
		return TAG_WRITTEN;
	}
	t->line[t->n] = p;
	t->len[t->n++] = len;
	return TAG_HELD;
}

/* wasm2c 1.0.32 saves a caught exception for a later rethrow in
 * `void *w2c_T<n> = alloca(w2c_T<n>_size);`, and gcc calls a frame with
 * alloca unbounded (stackcheck.c refuses it). The engine never holds more
 * than ENGINE_EXCEPTION_MAX bytes (wasm_rt_load_exception), so a fixed
 * array in the same block does. True if the line was that one, rewritten. */
static bool rewrite_rethrow_save(FILE *f, const char *p, size_t len)
{
	const char *q = p;
	while (q < p + len && *q == ' ')
		q++;
	size_t rest = (size_t)(p + len - q);
	if (rest < 12 || strncmp(q, "void *w2c_T", 11) != 0 || memmem(q, rest, "alloca(", 7) == NULL)
		return false;
	const char *id = q + 6;                       /* w2c_T<n> */
	const char *id_end = id + 5;
	while (id_end < p + len && *id_end >= '0' && *id_end <= '9')
		id_end++;
	int idlen = (int)(id_end - id);
	fwrite(p, 1, (size_t)(q - p), f);
	fprintf(f, "unsigned char %.*s_buf[%d]; void *%.*s = %.*s_buf;", idlen, id,
	        ENGINE_EXCEPTION_MAX, idlen, id, idlen, id);
	return true;
}

/* Functions work on a local copy of the memory's record (`wisp_m_`: its
 * base and size) instead of the instance's. wasm2c stores into guest memory
 * with memcpy, a char-typed access that may alias anything, the instance's
 * record included, so gcc reloaded the base and the size from the instance
 * after every store, and could keep neither in a register across a loop
 * (matmul: 3.2x native with, 2.3x without). A copy whose address never
 * escapes cannot be aliased. The record changes only under a call: a
 * memory.grow, or any call into the module or the host (which may grow it,
 * or park the process and have hibernation move its memory to another
 * slot; a preempted process is never hibernated), so the copy is taken
 * again after every line that calls something. wasm2c writes one statement
 * per line and never calls inside a larger expression, and the refresh
 * goes on the same line, so trap attribution by line is unchanged. Not
 * done for a module with no memory or several, nor with exception
 * handling (a catch lands by longjmp, after which a local changed since
 * the try's setjmp is indeterminate). */
struct local_mem {
	bool on;
	char field[128];    /* "w2c_memory": the instance's field */
	char ref[160];      /* "&instance->w2c_memory" */
	size_t reflen;
};

static bool is_ident_char(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

/* The one memory's field in the instance struct of wasm2c's header. */
static void local_mem_plan(struct local_mem *lm, const char *hdr, size_t hdrlen,
                           const char *src, size_t srclen)
{
	static const char decl[] = "  wasm_rt_memory_t ";
	int found = 0;
	lm->on = false;
	for (const char *p = hdr, *end = hdr + hdrlen; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		size_t n = sizeof(decl) - 1;
		if (len > n + 1 && memcmp(p, decl, n) == 0 && p[len - 1] == ';' &&
		    len - n - 1 < sizeof(lm->field)) {
			memcpy(lm->field, p + n, len - n - 1);
			lm->field[len - n - 1] = '\0';
			found++;
		}
		p += len + 1;
	}
	if (found != 1 || memmem(src, srclen, "wasm_rt_try(", 12) != NULL)
		return;
	for (const char *c = lm->field; *c; c++)
		if (!is_ident_char(*c))
			return;
	lm->reflen = (size_t)snprintf(lm->ref, sizeof(lm->ref), "&instance->%s", lm->field);
	lm->on = true;
}

/* The next `&instance-><field>` in [p, end) that is the memory's, or NULL:
 * not the start of a longer field's (a memory exported as "T" is w2c_T,
 * an unnamed table w2c_T0). */
static const char *local_mem_ref(const struct local_mem *lm, const char *p, const char *end)
{
	size_t rn = lm->reflen;
	for (const char *hit; (hit = memmem(p, (size_t)(end - p), lm->ref, rn)) != NULL;
	     p = hit + rn)
		if (hit + rn == end || !is_ident_char(hit[rn]))
			return hit;
	return NULL;
}

/* Write a body line with the memory as the local copy, and take the copy
 * again after it if it calls anything. */
static void local_mem_line(const struct local_mem *lm, FILE *f, const char *p, size_t len)
{
	size_t rn = lm->reflen;
	bool grows = memmem(p, len, "wasm_rt_grow_memory(", 20) != NULL;
	bool calls = false;
	const char *end = p + len;
	while (p < end) {
		const char *hit = grows ? NULL : local_mem_ref(lm, p, end);
		const char *stop = hit ? hit : end;
		/* Anything else of the instance's, with a call on the line: a
		 * function of the module or the host, or the grow itself. */
		if (memmem(p, (size_t)(stop - p), "instance", 8) != NULL)
			calls = true;
		fwrite(p, 1, (size_t)(stop - p), f);
		if (hit == NULL)
			break;
		fputs("&wisp_m_", f);
		p = hit + rn;
	}
	const char *start = end - len;
	if (calls && memchr(start, '(', len) != NULL && len > 0 && end[-1] == ';')
		fprintf(f, " wisp_m_ = instance->%s;", lm->field);
}

/* If the line `p` is wasm2c's elem-segment entry for an imported function,
 * "{N, (wasm_rt_function_ptr_t)Z_<ns>Z_<fn>, offsetof(...)},", write it
 * with ELEM_IMPORT in its offset. */
static bool rewrite_import_elem(FILE *f, const char *p, size_t len)
{
	static const char ptr[] = "(wasm_rt_function_ptr_t)Z_";
	const char *q = skip_indent(p, len);
	size_t n = len - (size_t)(q - p);
	const char *off = memmem(q, n, import_offset, sizeof(import_offset) - 1);
	if (n == 0 || q[0] != '{' || memmem(q, n, ptr, sizeof(ptr) - 1) == NULL || off == NULL)
		return false;
	fwrite(p, 1, (size_t)(off - p) + 2, f);
	fputs(ELEM_IMPORT " | ", f);
	fwrite(off + 2, 1, len - (size_t)(off + 2 - p), f);
	return true;
}

/* If the line `p` is table_init_line, write it fixed (with its indent). */
static bool rewrite_table_init(FILE *f, const char *p, size_t len)
{
	const char *q = skip_indent(p, len);
	size_t n = sizeof(table_init_line) - 1;
	if (len - (size_t)(q - p) != n || memcmp(q, table_init_line, n) != 0)
		return false;
	fwrite(p, 1, (size_t)(q - p), f);
	fputs("(src_expr->module_offset & " ELEM_IMPORT ") ? *(void **)((char*)module_instance + "
	      "(src_expr->module_offset & ~" ELEM_IMPORT ")) : "
	      "(char*)module_instance + src_expr->module_offset};", f);
	return true;
}

static int is_loop_label(const char *line, size_t len)
{
	size_t i = 0;
	while (i < len && line[i] == ' ')
		i++;
	if (len - i < 7 || strncmp(line + i, "w2c_L", 5) != 0)
		return 0;
	i += 5;
	if (!isdigit((unsigned char)line[i]))
		return 0;
	while (i < len && isdigit((unsigned char)line[i]))
		i++;
	if (i >= len || line[i] != ':')
		return 0;
	for (i++; i < len; i++)
		if (line[i] != ' ' && line[i] != '\r')
			return 0;
	return 1;
}

/* Is `line` a forward declaration "static <type> w2c_<name>(...);" of a
 * defined function? On success *sym is the symbol (malloc'd; Rust's mangled
 * names run to hundreds of characters). */
static int is_fn_decl(const char *line, size_t len, char **sym)
{
	if (len < 12 || strncmp(line, "static ", 7) != 0 || line[len - 1] != ';')
		return 0;
	const char *end = line + len;
	/* The return type may be several words ("struct wasm_multi_ii"). */
	const char *p = memmem(line + 6, len - 6, " w2c_", 5);
	if (p == NULL || memchr(line, '=', len) != NULL)
		return 0;
	p++;
	const char *s = p;
	while (p < end && (isalnum((unsigned char)*p) || *p == '_'))
		p++;
	if (p >= end || *p != '(')
		return 0;
	*sym = strndup(s, (size_t)(p - s));
	return *sym != NULL;
}

/* Is `line` the start of the definition of `sym`, "static <type> sym(...) {"?
 * (Long parameter lists continue on the next line, so only the start is
 * matched: not a declaration, and sym followed by its parameters.) */
static int is_fn_def(const char *line, size_t len, const char *sym)
{
	size_t n = strlen(sym);
	if (len < 8 + n || strncmp(line, "static ", 7) != 0 || line[len - 1] == ';')
		return 0;
	const char *p = memmem(line, len, sym, n);
	return p != NULL && p[-1] == ' ' && p + n < line + len && p[n] == '(';
}

/* Find the parameter types of Z_wisp_guest_instantiate in the header, after
 * the instance itself: one `struct Z_<ns>_instance_t*` per import module. */
static int instantiate_params(const char *hdr, char types[][96], int max, int *n)
{
	const char *p = strstr(hdr, "void Z_wisp_guest_instantiate(");
	if (p == NULL)
		return -1;
	const char *end = strchr(p, ')');
	if (end == NULL)
		return -1;
	*n = 0;
	const char *q = p;
	while ((q = strstr(q, "struct ")) != NULL && q < end) {
		q += 7;
		const char *s = q;
		while (q < end && *q != '*' && *q != ' ')
			q++;
		if (*n >= max || (size_t)(q - s) >= 96)
			return -1;
		memcpy(types[*n], s, (size_t)(q - s));
		types[*n][q - s] = '\0';
		(*n)++;
	}
	return 0;
}

/* wisp_stack_pointer(), reading global idx: through wasm2c's accessor if
 * the global is exported, else as the field wasm2c names w2c_g<idx>
 * (wisp imports no globals, so no field is a pointer). Returns 1 if the
 * field's name is unsure (an exported global is called "g<idx>" too) and
 * nothing was written, 0 if written, -ENOMEM. */
static int emit_stack_pointer(FILE *f, const struct wasm_info *info, uint32_t idx)
{
	char field[24];
	snprintf(field, sizeof(field), "g%u", idx);
	for (uint32_t i = 0; i < info->nexports; i++) {
		const struct wasm_export *e = &info->exports[i];
		if (e->kind != WASM_KIND_GLOBAL)
			continue;
		if (e->index == idx) {
			size_t cap = 3 * strlen(e->name) + 8;
			char *m = malloc(cap);
			if (m == NULL)
				return -ENOMEM;
			mangle(e->name, m, cap);
			fprintf(f, "static uint32_t wisp_stack_pointer(void *i) {\n"
			           "  return (uint32_t)*Z_wisp_guestZ_%s((Z_wisp_guest_instance_t *)i);\n}\n", m);
			free(m);
			return 0;
		}
		if (strcmp(e->name, field) == 0)
			return 1;
	}
	fprintf(f, "static uint32_t wisp_stack_pointer(void *i) {\n"
	           "  return (uint32_t)((Z_wisp_guest_instance_t *)i)->w2c_%s;\n}\n", field);
	return 0;
}

static int write_epilogue(FILE *f, const struct wasm_info *info, char **syms,
                          const uint32_t *lines, uint32_t nsyms, const char *hdr,
                          char *err, size_t errlen)
{
	char types[64][96];
	int ntypes;
	if (instantiate_params(hdr, types, 64, &ntypes) != 0) {
		snprintf(err, errlen, "unexpected wasm2c output: no instantiate function");
		return -EPROTO;
	}
	fprintf(f, "\n/* --- wisp epilogue --- */\n");
	fprintf(f, "static void wisp_instantiate(void *inst, void *host) {\n"
	           "  (void)host;\n  Z_wisp_guest_instantiate((Z_wisp_guest_instance_t *)inst");
	for (int i = 0; i < ntypes; i++)
		fprintf(f, ", (struct %s *)host", types[i]);
	fprintf(f, ");\n}\n");
	fprintf(f, "static void wisp_free(void *inst) { Z_wisp_guest_free((Z_wisp_guest_instance_t *)inst); }\n");

	/* The host calls wasm2c's own export functions; a wrapper of ours
	 * would lie beyond code_end with the export's code inlined into it. */
	char start_fn[600] = "0", memory_fn[600] = "0", mangled[512];
	const struct wasm_export *start = wasm_find_export(info, "_start", WASM_KIND_FUNC);
	if (start != NULL) {
		mangle("_start", mangled, sizeof(mangled));
		snprintf(start_fn, sizeof(start_fn), "(void (*)(void *))Z_wisp_guestZ_%s", mangled);
	}
	char spawn_fn[600] = "0";
	const struct wasm_export *se = wasm_find_export(info, "wisp_spawn_entry", WASM_KIND_FUNC);
	const struct wasm_functype *st = se ? wasm_func_type(info, se->index) : NULL;
	if (st != NULL && strcmp(st->params, "ii") == 0 && st->nresults == 0) {
		mangle("wisp_spawn_entry", mangled, sizeof(mangled));
		snprintf(spawn_fn, sizeof(spawn_fn),
		         "(void (*)(void *, uint32_t, uint32_t))Z_wisp_guestZ_%s", mangled);
	}
	char change_fn[600] = "0";
	const struct wasm_export *cc = wasm_find_export(info, "wisp_code_change", WASM_KIND_FUNC);
	const struct wasm_functype *ct = cc ? wasm_func_type(info, cc->index) : NULL;
	if (ct != NULL && strcmp(ct->params, "ii") == 0 && ct->nresults == 1 &&
	    ct->results[0] == 'i') {
		mangle("wisp_code_change", mangled, sizeof(mangled));
		snprintf(change_fn, sizeof(change_fn),
		         "(int32_t (*)(void *, uint32_t, uint32_t))Z_wisp_guestZ_%s", mangled);
	}
	/* The first table, if the module defines it and it holds funcrefs
	 * (wasm2c names it w2c_T0 then). */
	char table_fn[600] = "0";
	if (info->table0_defined_funcref) {
		fprintf(f, "static void *wisp_table(void *i) {\n"
		           "  return &((Z_wisp_guest_instance_t *)i)->w2c_T0;\n}\n");
		snprintf(table_fn, sizeof(table_fn), "wisp_table");
	}
	const struct wasm_export *mem = wasm_find_export(info, "memory", WASM_KIND_MEMORY);
	if (mem != NULL) {
		mangle("memory", mangled, sizeof(mangled));
		snprintf(memory_fn, sizeof(memory_fn), "(void *(*)(void *))Z_wisp_guestZ_%s", mangled);
	}

	/* Every defined function, then every export function of a defined
	 * function (wasm2c's wrapper, into which the C compiler may inline the
	 * function itself), under the exported function's index and name. */
	uint32_t nentries = 0;
	fprintf(f, "static const struct wisp_fn_entry wisp_fns[] = {\n");
	for (uint32_t i = 0; i < nsyms + info->nexports; i++) {
		uint32_t index, first = 0, last = 0;
		char *em = NULL;      /* a mangled export name, any length */
		if (i < nsyms) {
			index = info->nfunc_imports + i;
			first = lines[2 * i];
			last = lines[2 * i + 1];
		} else {
			const struct wasm_export *e = &info->exports[i - nsyms];
			if (e->kind != WASM_KIND_FUNC || e->index < info->nfunc_imports)
				continue;
			index = e->index;
			size_t cap = 3 * strlen(e->name) + 8;
			if ((em = malloc(cap)) == NULL) {
				snprintf(err, errlen, "out of memory");
				return -ENOMEM;
			}
			mangle(e->name, em, cap);
		}
		const char *name = wasm_func_name(info, index);
		char fallback[32];
		if (name == NULL) {
			snprintf(fallback, sizeof(fallback), "func[%u]", index);
			name = fallback;
		}
		if (em != NULL)
			fprintf(f, "  { (const void *)Z_wisp_guestZ_%s, %uu, ", em, index);
		else
			fprintf(f, "  { (const void *)%s, %uu, ", syms[i], index);
		free(em);
		put_c_string(f, name);
		fprintf(f, ", %uu, %uu },\n", first, last);
		nentries++;
	}
	fprintf(f, "  { 0, 0, 0, 0, 0 }\n};\n");
	const char *sp_fn = "0";
	if (info->stack_pointer != 0) {
		int rc = emit_stack_pointer(f, info, info->stack_pointer - 1);
		if (rc < 0) {
			snprintf(err, errlen, "out of memory");
			return rc;
		}
		if (rc == 0)
			sp_fn = "wisp_stack_pointer";
	}
	fprintf(f, "__attribute__((visibility(\"default\"))) const struct wisp_module_abi wisp_module_v%d = {\n"
	           "  %d, sizeof(Z_wisp_guest_instance_t), Z_wisp_guest_init_module,\n"
	           "  wisp_instantiate, wisp_free, %s, %s, %s, wisp_fns, %uu,\n"
	           "  (const void *)wisp_code_end, WISP_BUILD_FLAGS%s, %s, %s, %s\n};\n",
	        WISP_MODULE_ABI, WISP_MODULE_ABI, start_fn, spawn_fn, memory_fn, nentries,
	        info->has_start_section ? " | WISP_MODULE_START_SECTION" : "", sp_fn, change_fn,
	        table_fn);
	return 0;
}

/* ---- data segments: out of wasm2c's hands ---------------------------------
 *
 * wasm2c spells every data byte as "0x2a, " (6 bytes of C per byte of data)
 * and the C compiler then parses it: 16 MiB of data took gcc -O2 21.6 s and
 * 2.6 GB. So wasm2c gets a copy of the module in which every data segment is
 * cut to its first byte (it still emits the array, the LOAD_DATA call that
 * bounds-checks an active segment at instantiation, and the dropped flag and
 * size of a passive one), and the rewrite below puts the real lengths back
 * and points each array into the bytes of a linked object (blob.c). wasm2c
 * runs with --no-debug-names, so data segment N is always
 * data_segment_data_w2c_d<N>, whatever the name section says. */

struct data_plan {
	const struct wasm_info *info;
	uint64_t *off;              /* each segment's offset in the blob */
	uint32_t arrays, loads;     /* rewritten so far, checked at the end */
	uint32_t want_arrays, want_loads;
	bool skipping;              /* inside an array literal ... */
	int64_t skipping_n;         /* ... of this segment */
};

static void put_leb(uint8_t **p, uint64_t v)
{
	do {
		uint8_t b = v & 0x7f;
		v >>= 7;
		*(*p)++ = b | (v ? 0x80 : 0);
	} while (v);
}

/* The module with every data segment cut to at most one byte, for wasm2c. */
static int write_stripped(const uint8_t *bytes, size_t len, const struct wasm_info *info,
                          const char *path, char *err, size_t errlen)
{
	const struct wasm_span sec = info->data_section;
	size_t cap = 16 + (size_t)info->ndata_segments * 8;
	for (uint32_t i = 0; i < info->ndata_segments; i++)
		cap += info->data_segments[i].len_at - info->data_segments[i].at;
	uint8_t *body = malloc(cap), *head = malloc(16);
	int rc = 0;
	if (body == NULL || head == NULL) {
		rc = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	uint8_t *b = body, *h = head;
	put_leb(&b, info->ndata_segments);
	for (uint32_t i = 0; i < info->ndata_segments; i++) {
		const struct wasm_data_segment *d = &info->data_segments[i];
		memcpy(b, bytes + d->at, d->len_at - d->at);
		b += d->len_at - d->at;
		put_leb(&b, d->len > 0);
		if (d->len > 0)
			*b++ = bytes[d->data_at];
	}
	*h++ = 11;                                   /* section 'data' */
	put_leb(&h, (uint64_t)(b - body));
	FILE *f = fopen(path, "wbe");
	if (f == NULL) {
		rc = -errno;
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		goto out;
	}
	size_t after = sec.at + sec.len;
	fwrite(bytes, 1, sec.at, f);
	fwrite(head, 1, (size_t)(h - head), f);
	fwrite(body, 1, (size_t)(b - body), f);
	fwrite(bytes + after, 1, len - after, f);
	if (fclose(f) != 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
	}
out:
	free(body);
	free(head);
	return rc;
}

/* The object holding every non-empty segment's bytes, in index order. */
static int write_data_object(const uint8_t *bytes, const struct wasm_info *info,
                             const char *path, char *err, size_t errlen)
{
	struct blob_piece *pieces = calloc(info->ndata_segments, sizeof(*pieces));
	if (pieces == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	size_t n = 0;
	for (uint32_t i = 0; i < info->ndata_segments; i++)
		if (info->data_segments[i].len > 0)
			pieces[n++] = (struct blob_piece){ bytes + info->data_segments[i].data_at,
			                                   info->data_segments[i].len };
	int rc = blob_write_object(path, "wisp_data", pieces, n);
	free(pieces);
	if (rc != 0)
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(-rc));
	return rc;
}

/* The segment number after `prefix` at p (p + strlen(prefix) is a digit),
 * or -1; *after is set past the digits. */
static int64_t segment_after(const char *p, const char *end, const char *prefix,
                             const char **after)
{
	size_t n = strlen(prefix);
	if ((size_t)(end - p) <= n || strncmp(p, prefix, n) != 0 || !isdigit((unsigned char)p[n]))
		return -1;
	int64_t v = 0;
	p += n;
	while (p < end && isdigit((unsigned char)*p) && v < UINT32_MAX)
		v = v * 10 + (*p++ - '0');
	*after = p;
	return v;
}

static bool segment_ok(const struct data_plan *dp, int64_t n)
{
	return n >= 0 && n < dp->info->ndata_segments && dp->info->data_segments[n].len > 0;
}

/* Rewrite one line of wasm2c's output that concerns data segments; false
 * if it does not, so the caller writes it as it is. Every input line still
 * becomes exactly one output line (line numbers name functions). */
static bool rewrite_data_line(struct data_plan *dp, FILE *f, const char *p, size_t len)
{
	const char *end = p + len, *after;
	if (dp->skipping) {
		/* the array's bytes are dropped; its closing line names them */
		if (len == 2 && p[0] == '}' && p[1] == ';') {
			fprintf(f, "#define data_segment_data_w2c_d%" PRId64 " (wisp_data + %"
			        PRIu64 "u)", dp->skipping_n, dp->off[dp->skipping_n]);
			dp->skipping = false;
		}
		return true;
	}
	int64_t n = segment_after(p, end, "static const u8 data_segment_data_w2c_d", &after);
	if (n >= 0) {
		if (!segment_ok(dp, n) || strncmp(after, "[] = {", (size_t)(end - after)) != 0)
			return false;             /* counted as missing at the end */
		fputs("extern const u8 wisp_data[] __attribute__((visibility(\"hidden\")));", f);
		dp->arrays++;
		dp->skipping = true;
		dp->skipping_n = n;
		return true;
	}
	/* Two passes: find whether anything here is ours, then write. */
	for (int write = 0; write < 2; write++) {
		bool changed = false;
		const char *q = p;
		for (const char *hit; (hit = memmem(q, (size_t)(end - q), "data_segment_", 13)) != NULL;) {
			/* LOAD_DATA(mem, offset, data_segment_data_w2c_dN, 1); */
			if ((n = segment_after(hit, end, "data_segment_data_w2c_d", &after)) >= 0 &&
			    segment_ok(dp, n) && end - after == 5 && memcmp(after, ", 1);", 5) == 0 &&
			    memmem(p, len, "LOAD_DATA(", 10) != NULL) {
				if (write) {
					/* (instantiation: not if the memory holds the
					 * module's image already, see vmctx.h) */
					fputs("if (!WISP_VMCTX_OF(instance)->preloaded) ", f);
					fwrite(q, 1, (size_t)(after - q), f);
					fprintf(f, ", %" PRIu32 "u);", dp->info->data_segments[n].len);
					dp->loads++;
				}
				q = end;
				changed = true;
				break;
			}
			/* memory.init: (instance->data_segment_dropped_w2c_dN ? 0 : 1) */
			if ((n = segment_after(hit, end, "data_segment_dropped_w2c_d", &after)) >= 0 &&
			    segment_ok(dp, n) && end - after >= 9 && memcmp(after, " ? 0 : 1)", 9) == 0) {
				if (write) {
					fwrite(q, 1, (size_t)(after - q), f);
					fprintf(f, " ? 0 : %" PRIu32 "u)", dp->info->data_segments[n].len);
				}
				q = after + 9;
				changed = true;
				continue;
			}
			if (write)
				fwrite(q, 1, (size_t)(hit + 13 - q), f);
			q = hit + 13;
		}
		if (!changed)
			return false;                 /* the caller writes it as it is */
		if (write)
			fwrite(q, 1, (size_t)(end - q), f);
	}
	return true;
}

static int plan_data(struct data_plan *dp, const struct wasm_info *info)
{
	*dp = (struct data_plan){ .info = info };
	dp->off = calloc(info->ndata_segments ? info->ndata_segments : 1, sizeof(*dp->off));
	if (dp->off == NULL)
		return -ENOMEM;
	uint64_t off = 0;
	for (uint32_t i = 0; i < info->ndata_segments; i++) {
		const struct wasm_data_segment *d = &info->data_segments[i];
		dp->off[i] = off;
		off += d->len;
		dp->want_arrays += d->len > 0;
		dp->want_loads += d->len > 0 && !d->passive;
	}
	return 0;
}

/* ---- running wasm2c --------------------------------------------------------- */

static int run_wasm2c(const char *in, const char *gen_c, const struct util_limits *lim,
                      char *err, size_t errlen)
{
	/* --no-debug-names: a malformed name section must not fail a module
	 * (wasm2c rejects one otherwise), and data segments keep their
	 * index-based names (see above). wisp takes names from its own
	 * reader. --enable-exceptions: exception handling's legacy encoding
	 * (wasm_code.c refuses what wasm2c cannot translate). */
	char *argv[] = { "wasm2c", (char *)in, "-n", "wisp_guest", "-o", (char *)gen_c,
	                 "--no-debug-names", "--enable-exceptions", NULL };
	char out[4096];
	struct util_run_status st;
	int rc = util_run(argv, lim, out, sizeof(out), NULL, NULL, &st);
	if (rc < 0) {
		snprintf(err, errlen, "cannot run wasm2c: %s (install the wabt package)",
		         strerror(-rc));
		return rc;
	}
	if (st.code == 0)
		return 0;
	if (limits_explain("wasm2c", &st, lim, out, err, errlen))
		return -E2BIG;
	if (st.signal != 0) {
		snprintf(err, errlen, "wasm2c crashed (%s) translating the module; wisp "
		         "cannot run it", strsignal(st.signal));
		return -EINVAL;
	}
	/* wasm2c prints "<file>:<offset>: error: ..." lines; keep the first. */
	char *msg = strstr(out, "error: ");
	msg = msg ? msg + 7 : out;
	char *nl = strchr(msg, '\n');
	if (nl)
		*nl = '\0';
	if (*msg == '\0')
		snprintf(err, errlen, "invalid module: wasm2c refused it (status %d) "
		         "without saying why", st.code);
	else
		snprintf(err, errlen, "invalid module: %s", msg);
	return -EINVAL;
}

/* The module's bytes as they are, at path. */
static int write_verbatim(const uint8_t *bytes, size_t len, const char *path, char *err,
                          size_t errlen)
{
	FILE *f = fopen(path, "wbe");
	bool ok = f != NULL && fwrite(bytes, 1, len, f) == len;
	int rc = ok ? 0 : -(errno ? errno : EIO);
	if (f != NULL && fclose(f) != 0 && ok)
		rc = -errno;
	if (rc != 0)
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(-rc));
	return rc;
}

/* wasm2c 1.0.32's first line after its helpers and types: where the
 * module's own state begins (split.c's head ends). */
static const char state_anchor[] = "static bool s_module_initialized = false;";

int codegen_translate(const uint8_t *bytes, size_t len,
                      const struct wasm_info *info, const struct util_limits *lim,
                      const char *workdir, uint32_t units, struct codegen_files *files,
                      char *err, size_t errlen)
{
	char gen_c[PATH_MAX + 32], gen_h[PATH_MAX + 32], stripped[PATH_MAX + 32];
	snprintf(gen_c, sizeof(gen_c), "%s/wisp_guest.c", workdir);
	snprintf(gen_h, sizeof(gen_h), "%s/wisp_guest.h", workdir);
	snprintf(stripped, sizeof(stripped), "%s/module.wasm", workdir);
	snprintf(files->tu, sizeof(files->tu), "%s/tu.c", workdir);
	files->data_obj[0] = '\0';
	files->nunits = 1;

	struct data_plan dp;
	int rc = plan_data(&dp, info);
	if (rc != 0) {
		snprintf(err, errlen, "out of memory");
		return rc;
	}
	/* wasm2c reads the bytes that were checked and hashed, never the
	 * module's path again: a file changed on disk meanwhile would put
	 * other code in the cache under these bytes' key; and a module given
	 * as bytes (shipped, a new version, a program) has no path. */
	if (dp.want_arrays > 0) {
		snprintf(files->data_obj, sizeof(files->data_obj), "%s/data.o", workdir);
		rc = write_stripped(bytes, len, info, stripped, err, errlen);
		if (rc == 0)
			rc = write_data_object(bytes, info, files->data_obj, err, errlen);
	} else {
		rc = write_verbatim(bytes, len, stripped, err, errlen);
	}
	if (rc != 0) {
		free(dp.off);
		return rc;
	}
	rc = run_wasm2c(stripped, gen_c, lim, err, errlen);
	if (rc != 0) {
		free(dp.off);
		return rc;
	}

	uint8_t *src = NULL, *hdr = NULL;
	size_t srclen, hdrlen;
	if ((rc = util_read_file(gen_c, &src, &srclen)) != 0 ||
	    (rc = util_read_file(gen_h, &hdr, &hdrlen)) != 0) {
		free(src);
		free(dp.off);
		snprintf(err, errlen, "cannot read wasm2c output: %s", strerror(-rc));
		return rc;
	}
	const char *tu_path = files->tu;
	FILE *f = fopen(tu_path, "w");
	if (f == NULL) {
		rc = -errno;
		snprintf(err, errlen, "cannot write %s: %s", tu_path, strerror(errno));
		goto out;
	}
	char **syms = calloc(info->nfuncs ? info->nfuncs : 1, sizeof(*syms));
	if (syms == NULL) {
		rc = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		fclose(f);
		goto out;
	}
	/* Each defined function's body lines in tu.c, in index order: how a
	 * trap's line (through any inlining) names its wasm function. */
	uint32_t *lines = calloc(2 * (size_t)(info->nfuncs ? info->nfuncs : 1), sizeof(*lines));
	if (lines == NULL) {
		free(syms);
		fclose(f);
		rc = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	uint32_t nsyms = 0, nprologues = 0, ndefs = 0, line = 1, head_end = 0;
	bool in_def = false, table_init_fixed = false, import_elems = false;
	struct tag_struct tags = { 0 };
	enum tag_line tag;
	struct local_mem lm;
	local_mem_plan(&lm, (const char *)hdr, hdrlen, (const char *)src, srclen);
	rc = 0;
	const char *prelude = codegen_prelude();
	fputs(prelude, f);
	for (const char *c = prelude; *c; c++)
		line += *c == '\n';
	const char *p = (const char *)src, *end = p + srclen;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		const char *q = p;
		while (q < p + len && *q == ' ')
			q++;
		if (in_def && is_bulk_call(q, p + len)) {
			/* charged for its size first: see WISP_BULK_* in the prelude */
			fwrite(p, 1, (size_t)(q - p), f);
			fputs("WISP_BULK_", f);
			len -= (size_t)(q - p);
			p = q;
		}
		if ((size_t)(p + len - q) == 14 && strncmp(q, "FUNC_PROLOGUE;", 14) == 0) {
			fwrite(p, 1, (size_t)(q - p), f);
			fputs("WISP_ENTRY();", f);
			if (lm.on)
				fprintf(f, " wasm_rt_memory_t wisp_m_ = instance->%s;", lm.field);
			nprologues++;
		} else if (len > 14 && (q = memmem(p, len, "static inline ", 14)) != NULL) {
			/* wasm2c's helpers, also inside its DEFINE_* macros */
			fwrite(p, 1, (size_t)(q - p) + 14, f);
			fputs("WISP_INLINE ", f);
			fwrite(q + 14, 1, len - (size_t)(q - p) - 14, f);
		} else if (is_loop_label(p, len)) {
			fwrite(p, 1, len, f);
			fputs(" WISP_LOOP();", f);
		} else if (rewrite_data_line(&dp, f, p, len)) {
			/* a data segment's array, LOAD_DATA or memory.init */
		} else if (rewrite_table_init(f, p, len)) {
			table_init_fixed = true;
		} else if (rewrite_import_elem(f, p, len)) {
			import_elems = true;
		} else if (!in_def && (tag = rewrite_tag_struct(&tags, f, p, len, &line)) != TAG_NONE) {
			if (tag == TAG_HELD) {  /* written at the struct's end */
				p += len + 1;
				continue;
			}
		} else if (in_def && rewrite_rethrow_save(f, p, len)) {
			/* a fixed buffer for a rethrow, not alloca */
		} else {
			if (nsyms < info->nfuncs && is_fn_decl(p, len, &syms[nsyms])) {
				nsyms++;
			} else if (head_end == 0 && ndefs == 0 && len == sizeof(state_anchor) - 1 &&
			           memcmp(p, state_anchor, len) == 0) {
				head_end = line;
			} else if (!in_def && ndefs < nsyms && is_fn_def(p, len, syms[ndefs])) {
				lines[ndefs * 2] = line;
				in_def = true;
			} else if (in_def && len == 1 && p[0] == '}') {
				lines[ndefs * 2 + 1] = line;
				in_def = false;
				ndefs++;
			}
			if (in_def && lm.on)
				local_mem_line(&lm, f, p, len);
			else
				fwrite(p, 1, len, f);
		}
		fputc('\n', f);
		line++;
		p += len + 1;
	}
	/* The end of wasm2c's code: every function, and the export functions
	 * that may have them inlined, lie before it (-fno-toplevel-reorder). */
	fputs("\n__attribute__((noinline)) static void wisp_code_end(void) "
	      "{ __asm__ volatile(\"# wisp code end\"); }\n", f);
	if (dp.arrays != dp.want_arrays || dp.loads != dp.want_loads) {
		snprintf(err, errlen, "unexpected wasm2c output: %u of %u data segment arrays "
		         "and %u of %u active segment loads found (wisp expects wabt 1.0.32's "
		         "wasm2c)", dp.arrays, dp.want_arrays, dp.loads, dp.want_loads);
		rc = -EPROTO;
	} else if (tags.open || tags.overflow) {
		snprintf(err, errlen, "unexpected wasm2c output: an exception tag's struct %s "
		         "(wisp expects wabt 1.0.32's wasm2c)",
		         tags.open ? "does not end" : "has too many fields");
		rc = -EPROTO;
	} else if (import_elems && !table_init_fixed) {
		snprintf(err, errlen, "unexpected wasm2c output: element segments name imported "
		         "functions but funcref_table_init was not found (wisp expects wabt 1.0.32's wasm2c)");
		rc = -EPROTO;
	} else if (nsyms != info->nfuncs || nprologues != info->nfuncs || ndefs != info->nfuncs) {
		snprintf(err, errlen, "unexpected wasm2c output: %u functions, %u declarations, "
		         "%u definitions, %u prologues (wisp expects wabt 1.0.32's wasm2c)",
		         info->nfuncs, nsyms, ndefs, nprologues);
		rc = -EPROTO;
	} else {
		rc = write_epilogue(f, info, syms, lines, nsyms, (const char *)hdr, err, errlen);
	}
	if (fclose(f) != 0 && rc == 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot write %s: %s", tu_path, strerror(errno));
	}
	struct split_layout lay = { head_end, info->nfuncs, lines };
	if (units == 0 && rc == 0 && head_end != 0)
		units = split_units_for(&lay);
	if (units > info->nfuncs)
		units = info->nfuncs;
	if (rc == 0 && units > 1) {
		if (head_end == 0) {
			snprintf(err, errlen, "unexpected wasm2c output: no '%s' (wisp expects "
			         "wabt 1.0.32's wasm2c)", state_anchor);
			rc = -EPROTO;
		} else if ((rc = split_write(tu_path, workdir, &lay, units, err, errlen)) == 0) {
			files->nunits = units;
		}
	}
	free(lines);
	for (uint32_t i = 0; i < nsyms; i++)
		free(syms[i]);
	free(syms);
out:
	free(dp.off);
	free(src);
	free(hdr);
	return rc;
}
