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
 * The epilogue lists every defined function's native address with its wasm
 * index and name, taken from wasm2c's forward declarations, which appear in
 * function-index order, and the lines of tu.c its body occupies, which is
 * how a trap in code the C compiler inlined still names the innermost wasm
 * function (src/engine/symbolize.c). wasm2c's own helpers (loads, stores,
 * math) are forced inline (WISP_INLINE).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen.h"
#include "../common/util.h"
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
	fprintf(f, "__attribute__((visibility(\"default\"))) const struct wisp_module_abi wisp_module_v%d = {\n"
	           "  %d, sizeof(Z_wisp_guest_instance_t), Z_wisp_guest_init_module,\n"
	           "  wisp_instantiate, wisp_free, %s, %s, %s, wisp_fns, %uu,\n"
	           "  (const void *)wisp_code_end, WISP_BUILD_FLAGS\n};\n",
	        WISP_MODULE_ABI, WISP_MODULE_ABI, start_fn, spawn_fn, memory_fn, nentries);
	return 0;
}

int codegen_translate(const char *wasm_path, const struct wasm_info *info,
                      const char *workdir, char *tu_path, size_t tu_pathlen,
                      char *err, size_t errlen)
{
	char gen_c[4096], gen_h[4096];
	snprintf(gen_c, sizeof(gen_c), "%s/wisp_guest.c", workdir);
	snprintf(gen_h, sizeof(gen_h), "%s/wisp_guest.h", workdir);
	snprintf(tu_path, tu_pathlen, "%s/tu.c", workdir);

	/* A malformed "name" section must not make a module fail (custom
	 * sections are not part of validation), but wasm2c rejects one unless
	 * told to ignore debug names. */
	char *argv[] = { "wasm2c", (char *)wasm_path, "-n", "wisp_guest",
	                 "-o", gen_c, info->names_error ? "--no-debug-names" : NULL,
	                 NULL };
	char out[4096];
	int rc = util_run(argv, out, sizeof(out), NULL, NULL);
	if (rc < 0) {
		snprintf(err, errlen, "cannot run wasm2c: %s (install the wabt package)",
		         strerror(-rc));
		return rc;
	}
	if (rc != 0) {
		/* wasm2c prints "<file>:<offset>: error: ..." lines; keep the first. */
		char *nl = strchr(out, '\n');
		if (nl)
			*nl = '\0';
		char *msg = strstr(out, "error: ");
		snprintf(err, errlen, "invalid module: %s", msg ? msg + 7 : out);
		return -EINVAL;
	}

	uint8_t *src = NULL, *hdr = NULL;
	size_t srclen, hdrlen;
	if ((rc = util_read_file(gen_c, &src, &srclen)) != 0 ||
	    (rc = util_read_file(gen_h, &hdr, &hdrlen)) != 0) {
		free(src);
		snprintf(err, errlen, "cannot read wasm2c output: %s", strerror(-rc));
		return rc;
	}
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
	uint32_t nsyms = 0, nprologues = 0, ndefs = 0, line = 1;
	bool in_def = false;
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
		if ((size_t)(p + len - q) == 14 && strncmp(q, "FUNC_PROLOGUE;", 14) == 0) {
			fwrite(p, 1, (size_t)(q - p), f);
			fputs("WISP_ENTRY();", f);
			nprologues++;
		} else if (len > 14 && (q = memmem(p, len, "static inline ", 14)) != NULL) {
			/* wasm2c's helpers, also inside its DEFINE_* macros */
			fwrite(p, 1, (size_t)(q - p) + 14, f);
			fputs("WISP_INLINE ", f);
			fwrite(q + 14, 1, len - (size_t)(q - p) - 14, f);
		} else if (is_loop_label(p, len)) {
			fwrite(p, 1, len, f);
			fputs(" WISP_LOOP();", f);
		} else {
			if (nsyms < info->nfuncs && is_fn_decl(p, len, &syms[nsyms])) {
				nsyms++;
			} else if (!in_def && ndefs < nsyms && is_fn_def(p, len, syms[ndefs])) {
				lines[ndefs * 2] = line;
				in_def = true;
			} else if (in_def && len == 1 && p[0] == '}') {
				lines[ndefs * 2 + 1] = line;
				in_def = false;
				ndefs++;
			}
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
	if (nsyms != info->nfuncs || nprologues != info->nfuncs || ndefs != info->nfuncs) {
		snprintf(err, errlen, "unexpected wasm2c output: %u functions, %u declarations, "
		         "%u definitions, %u prologues (wisp expects wabt 1.0.32's wasm2c)",
		         info->nfuncs, nsyms, ndefs, nprologues);
		rc = -EPROTO;
	} else {
		rc = write_epilogue(f, info, syms, lines, nsyms, (const char *)hdr, err, errlen);
	}
	free(lines);
	for (uint32_t i = 0; i < nsyms; i++)
		free(syms[i]);
	free(syms);
	if (fclose(f) != 0 && rc == 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot write %s: %s", tu_path, strerror(errno));
	}
out:
	free(src);
	free(hdr);
	return rc;
}
