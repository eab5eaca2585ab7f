/*
 * limits.h — bounds on the compile step (see limits.c): what a module may
 * declare before wisp compiles it, and what each compiler process may use.
 *
 * Error convention (compile pipeline): 0 or a negative errno with a message.
 */
#ifndef WISP_LIMITS_H
#define WISP_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wasm_reader.h"
#include "../common/util.h"

/* The defaults are far beyond real programs (the largest Rust and C
 * programs seen have a few tens of thousands of functions and a few MiB of
 * data) and well below what hurts the host: wasm2c takes ~50 s for 40,000
 * functions and grows quadratically. Each has a flag to raise it. */
#define LIMITS_MODULE_BYTES   (256ull << 20)   /* --compile-max-module */
#define LIMITS_FUNCTIONS      50000ull         /* --compile-max-functions */
#define LIMITS_DATA_BYTES     (256ull << 20)   /* --compile-max-data */
#define LIMITS_CPU_SECONDS    600ull           /* --compile-max-cpu */
#define LIMITS_MEMORY_BYTES   (4ull << 30)     /* --compile-max-memory */
/* The background build of the optimized tier: the same limits, niced, and
 * at most this long by the clock. */
#define LIMITS_BACKGROUND_WALL_SECONDS 1800ull
#define LIMITS_BACKGROUND_NICE 10

struct compile_limits {
	uint64_t module_bytes;       /* size of the .wasm file */
	uint64_t functions;          /* imported + defined */
	uint64_t data_bytes;         /* all data segments' contents */
	struct util_limits tool;     /* per compiler process (wasm2c, cc, ...) */
};

/* The defaults above (foreground: no wall-clock limit, not niced). */
void limits_default(struct compile_limits *l);

/* Check a module of `len` bytes against the counts; -E2BIG with a message
 * naming the limit and the flag that raises it. */
int limits_check_module(const struct compile_limits *l, size_t len,
                        const struct wasm_info *info, char *err, size_t errlen);

/* A compiler process (`tool`) failed with *st after printing `output`: if a
 * limit explains it, write a message naming the limit and its flag and
 * return true. */
bool limits_explain(const char *tool, const struct util_run_status *st,
                    const struct util_limits *lim, const char *output,
                    char *err, size_t errlen);

/* "16M", "1.5G"-style rendering of a byte count for messages. */
void limits_format_size(uint64_t bytes, char *out, size_t outlen);

#endif
