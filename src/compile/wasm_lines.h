/*
 * wasm_lines.h — where each function of a wasm module starts in its source,
 * from the module's own DWARF line table (the ".debug_line" custom section
 * that clang -g and rustc's debug builds write), for crash reports.
 */
#ifndef WISP_WASM_LINES_H
#define WISP_WASM_LINES_H

#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"
#include "wasm_reader.h"

/* The source file and line each defined function's code starts at, as an
 * engine_sources with one reference (the caller's: engine_sources_unref),
 * or *out = NULL when the module has no line table or no row of it falls
 * in a function. bytes/len are the module info was read from. Hostile
 * input is fine: every read is bounded, the work linear in the section, a
 * malformed unit ends the reading (what was read before stays). 0 or
 * -ENOMEM. */
int wasm_source_lines(const uint8_t *bytes, size_t len, const struct wasm_info *info,
                      struct engine_sources **out);

#endif
