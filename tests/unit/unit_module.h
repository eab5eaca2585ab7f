/* unit_module.h — a real module for unit tests: WAT text through wat2wasm
 * and the compile pipeline (fast tier) into a loaded engine_module, in a
 * private cache directory removed afterwards. */
#ifndef WISP_UNIT_MODULE_H
#define WISP_UNIT_MODULE_H

#include <stdio.h>
#include <stdlib.h>

#include "common/util.h"
#include "compile/pipeline.h"
#include "engine/engine.h"

struct unit_module {
	char dir[64];
	struct pipeline p;
	struct wasm_file wf;
	engine_module *mod;
};

/* NULL (and a message on stderr) if any step fails. */
static inline struct unit_module *unit_module_build(const char *wat_text)
{
	struct unit_module *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/wisp-unit-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return NULL;
	char wat[128], wasm[128], err[2048];
	snprintf(wat, sizeof(wat), "%s/m.wat", f->dir);
	snprintf(wasm, sizeof(wasm), "%s/m.wasm", f->dir);
	FILE *out = fopen(wat, "w");
	if (out == NULL)
		return NULL;
	fputs(wat_text, out);
	fclose(out);
	char *argv[] = { "wat2wasm", "--debug-names", wat, "-o", wasm, NULL };
	struct util_run_status st;
	if (util_run(argv, NULL, err, sizeof(err), NULL, NULL, &st) != 0 || st.code != 0) {
		fprintf(stderr, "wat2wasm: %s\n", err);
		return NULL;
	}
	setenv("WISP_CACHE_DIR", f->dir, 1);
	struct pipeline_so so;
	if (pipeline_open(&f->p, err, sizeof(err)) != 0 ||
	    wasm_file_load(&f->wf, wasm, err, sizeof(err)) != 0 ||
	    pipeline_compile(&f->p, &f->wf, TIER_FAST, &so, err, sizeof(err)) != 0 ||
	    engine_module_load(so.path, so.fd, &f->mod, err, sizeof(err)) != 0) {
		fprintf(stderr, "unit_module_build: %s\n", err);
		return NULL;
	}
	pipeline_so_close(&so);
	return f;
}

/* The same compiled module loaded once more, its own (for a runtime, which
 * takes over the module it runs); NULL if that fails. */
static inline engine_module *unit_module_again(struct unit_module *f)
{
	struct pipeline_so so = { .fd = -1 };
	engine_module *m = NULL;
	char err[512];
	if (!pipeline_lookup(&f->p, &f->wf, TIER_FAST, &so, true) ||
	    engine_module_load(so.path, so.fd, &m, err, sizeof(err)) != 0)
		m = NULL;
	pipeline_so_close(&so);
	return m;
}

static inline void unit_module_free(struct unit_module *f)
{
	engine_module_unload(f->mod);
	wasm_file_free(&f->wf);
	pipeline_close(&f->p);
	util_rm_rf(f->dir);
	free(f);
}

#endif
