/*
 * codegen.h — .wasm to one C translation unit (see codegen.c).
 */
#ifndef WISP_CODEGEN_H
#define WISP_CODEGEN_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "wasm_reader.h"
#include "../common/util.h"

/* What codegen_translate leaves in the work directory for the compiler. */
struct codegen_files {
	char tu[PATH_MAX + 32];          /* the translation unit */
	char data_obj[PATH_MAX + 32];    /* the data segments' object to link,
	                                    or "" (blob.c) */
	uint32_t nunits;                 /* 1: compile tu alone; more: compile
	                                    unit0.c .. unit<n-1>.c and main.c
	                                    beside it, and link (split.c) */
};

/* Translate the module bytes[0, len) (already read and checked into
 * `info`; written to workdir for wasm2c) into workdir/tu.c plus, if it
 * has data, an object with the data segments' bytes; then, if `units` is
 * not 1, cut tu.c into that many units (0: as many as its size calls for,
 * split_units_for; never more than the module's functions). wasm2c runs
 * under `lim`. Returns 0, or a
 * negative errno with a message in err (-EINVAL: wasm2c rejected or could
 * not translate the module; -E2BIG: a limit stopped wasm2c; -EPROTO:
 * wasm2c's output was not what wisp expects). */
int codegen_translate(const uint8_t *bytes, size_t len,
                      const struct wasm_info *info, const struct util_limits *lim,
                      const char *workdir, uint32_t units, struct codegen_files *files,
                      char *err, size_t errlen);

/* The prelude text pasted at the top of every translation unit. */
const char *codegen_prelude(void);

#endif
