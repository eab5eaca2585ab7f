/*
 * codegen.h — .wasm to one C translation unit (see codegen.c).
 */
#ifndef WISP_CODEGEN_H
#define WISP_CODEGEN_H

#include <stddef.h>

#include "wasm_reader.h"

/* Translate the module at wasm_path (already read and checked into `info`)
 * into workdir/tu.c, whose path is written to tu_path. Returns 0, or a
 * negative errno with a message in err (-EINVAL: wasm2c rejected the
 * module; -EPROTO: wasm2c's output was not what wisp expects). */
int codegen_translate(const char *wasm_path, const struct wasm_info *info,
                      const char *workdir, char *tu_path, size_t tu_pathlen,
                      char *err, size_t errlen);

/* The prelude text pasted at the top of every translation unit. */
const char *codegen_prelude(void);

#endif
