/*
 * fuzz_module.c — libFuzzer targets on module loading.
 *
 * Two targets from one file (see the fuzz block at the end of the Makefile):
 *
 *   fuzz_read     (default)  arbitrary bytes -> wasm_read -> wasm_check_wisp
 *                            and wasm_check_code, plus the lookups the
 *                            pipeline makes on an accepted module (exports,
 *                            names, types).
 *   fuzz_codegen  (-DFUZZ_CODEGEN)  the same, and for every input the reader
 *                            accepts, the rest of the front end:
 *                            codegen_translate (wasm2c as a child process,
 *                            then wisp's rewrite and epilogue) into a scratch
 *                            directory. wasm2c costs milliseconds per input,
 *                            so this target runs orders of magnitude slower;
 *                            most random inputs never reach it.
 *
 * What is checked: the reader's promises (wasm_reader.h): no crash, no
 * sanitizer report, no leak (ASan's leak checker at exit and
 * -detect_leaks=1 per input), a NUL-terminated printable message on every
 * rejection, a zeroed wasm_info after a failure, and the structural
 * invariants of an accepted module (indices in range). codegen_translate
 * must either succeed or fail with a message; it must never crash.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compile/wasm_reader.h"
#ifdef FUZZ_CODEGEN
#include "compile/codegen.h"
#include "common/util.h"
#endif

#define CHECK(cond)                                                          \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "fuzz_module: check failed: %s (%s:%d)\n", \
			        #cond, __FILE__, __LINE__);                  \
			abort();                                             \
		}                                                            \
	} while (0)

static void check_message(const char *err, size_t errlen)
{
	size_t n = strnlen(err, errlen);
	CHECK(n < errlen);      /* NUL-terminated inside the buffer */
	CHECK(n > 0);           /* a rejection says why */
	for (size_t i = 0; i < n; i++)
		CHECK((unsigned char)err[i] >= 0x20 || err[i] == '\t');
}

static void check_accepted(const struct wasm_info *info)
{
	uint32_t nfuncs = info->nfunc_imports + info->nfuncs;
	CHECK(info->nfunc_imports <= info->nimports);
	for (uint32_t i = 0; i < info->nimports; i++) {
		const struct wasm_import *im = &info->imports[i];
		CHECK(im->module != NULL && im->name != NULL);
		if (im->kind == WASM_KIND_FUNC)
			CHECK(im->type_index < info->ntypes);
	}
	for (uint32_t i = 0; i < info->nfuncs; i++)
		CHECK(info->func_types[i] < info->ntypes);
	for (uint32_t i = 0; i < nfuncs; i++) {
		const struct wasm_functype *t = wasm_func_type(info, i);
		CHECK(t != NULL);
		CHECK(strlen(t->params) == t->nparams);
		CHECK(strlen(t->results) == t->nresults);
		const char *name = wasm_func_name(info, i);
		if (name)
			(void)strlen(name);
	}
	CHECK(wasm_func_type(info, nfuncs) == NULL);
	for (uint32_t i = 0; i < info->nexports; i++) {
		const struct wasm_export *e = &info->exports[i];
		CHECK(wasm_find_export(info, e->name, e->kind) == e);
		if (e->kind == WASM_KIND_FUNC)
			CHECK(e->index < nfuncs);
	}
	if (info->has_start_section)
		CHECK(info->start_func < nfuncs);
	if (info->has_data_count)
		CHECK(info->data_count == info->ndata_segments);
	(void)wasm_find_export(info, "_start", WASM_KIND_FUNC);
	(void)wasm_find_export(info, "memory", WASM_KIND_MEMORY);
}

#ifdef FUZZ_CODEGEN
static char workdir[256];
static unsigned long n_codegen, n_translated;

static void cleanup(void)
{
	if (workdir[0])
		util_rm_rf(workdir);
	fprintf(stderr, "fuzz_codegen: %lu inputs reached codegen, %lu translated\n",
	        n_codegen, n_translated);
}

static void front_end(const uint8_t *data, size_t size, const struct wasm_info *info)
{
	if (!workdir[0]) {
		snprintf(workdir, sizeof(workdir), "%s/wisp-fuzz-XXXXXX",
		         getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
		CHECK(mkdtemp(workdir) != NULL);
		atexit(cleanup);
	}
	char err[512];
	struct codegen_files files;
	err[0] = '\0';
	struct util_limits lim = { .cpu_seconds = 60, .memory_bytes = 1ull << 30 };
	/* units 0: split as production does (fuzzed modules are rarely big enough) */
	int rc = codegen_translate(data, size, info, &lim, workdir, 0, &files, err, sizeof(err));
	n_codegen++;
	n_translated += rc == 0;
	if (rc != 0) {
		/* wasm2c's validator refusing the bodies is the usual case;
		 * "unexpected wasm2c output" would mean the rewrite lost track
		 * of wasm2c's text for a module wasm2c accepted. */
		check_message(err, sizeof(err));
		if (rc == -EPROTO && getenv("FUZZ_EPROTO_FATAL")) {
			fprintf(stderr, "fuzz_codegen: %s\n", err);
			abort();
		}
	}
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wasm_info info;
	char err[256];
	memset(&info, 0x5a, sizeof(info));
	memset(err, 0x7f, sizeof(err));
	int rc = wasm_read(data, size, &info, err, sizeof(err));
	if (rc != 0) {
		CHECK(rc == -EINVAL || rc == -ENOMEM);
		check_message(err, sizeof(err));
		struct wasm_info zero;
		memset(&zero, 0, sizeof(zero));
		CHECK(memcmp(&info, &zero, sizeof(info)) == 0);
		wasm_info_free(&info);
		return 0;
	}
	check_accepted(&info);
	memset(err, 0x7f, sizeof(err));
	rc = wasm_check_wisp(&info, err, sizeof(err));
	if (rc != 0) {
		CHECK(rc == -EINVAL);
		check_message(err, sizeof(err));
	}
	/* The compile step's walk of the bodies (wasm_code.c). */
	memset(err, 0x7f, sizeof(err));
	int code_rc = wasm_check_code(data, size, &info, WASM_LIMIT_NESTING, err, sizeof(err));
	if (code_rc != 0) {
		CHECK(code_rc == -EINVAL);
		check_message(err, sizeof(err));
	}
	if (code_rc != 0)
		rc = code_rc;
#ifdef FUZZ_CODEGEN
	else
		front_end(data, size, &info);
#endif
	wasm_info_free(&info);
	wasm_info_free(&info);   /* documented as safe on a zeroed struct */
	return 0;
}
