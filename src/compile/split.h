/*
 * split.h — one generated translation unit cut into several, for the
 * optimizing tier's compilers to run in parallel (see split.c).
 */
#ifndef WISP_SPLIT_H
#define WISP_SPLIT_H

#include <stddef.h>
#include <stdint.h>

/* Units whose function bodies hold fewer lines than this are not worth a
 * compiler process of their own (each parses the shared head again, and
 * calls between units are not inlined). gcc -O2 compiles ~7,500 lines of
 * wasm2c's C a second here. */
#define SPLIT_LINES_PER_UNIT 6000u
#define SPLIT_MAX_UNITS 16u

/* Where codegen.c's tu.c keeps what: lines are tu.c's, from 1. */
struct split_layout {
	uint32_t head_end;           /* first line after the shared head (wasm2c's
	                                helpers and types): its module state */
	uint32_t nfuncs;             /* defined functions, in index order */
	const uint32_t *lines;       /* 2 per function: its first and last line */
};

/* How many units the bodies of `layout` make at SPLIT_LINES_PER_UNIT,
 * rounded up to an even count (1: do not split). */
uint32_t split_units_for(const struct split_layout *layout);

/* Write workdir/head.h (the shared head, the module's functions declared
 * hidden, its tables declared extern), workdir/unit<K>.c for K < nunits
 * (contiguous runs of functions of about equal length) and workdir/main.c
 * (the module's state, exports, instantiation and wisp's epilogue) from
 * the translation unit tu_c. Every unit keeps tu.c's line numbers (#line),
 * so line tables, -fstack-usage and the epilogue's body lines still agree.
 * Returns 0, or a negative errno with a message (-EPROTO: tu.c is not laid
 * out as expected). */
int split_write(const char *tu_c, const char *workdir, const struct split_layout *layout,
                uint32_t nunits, char *err, size_t errlen);

#endif
