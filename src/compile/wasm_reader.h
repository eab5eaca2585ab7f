/*
 * wasm_reader.h — a strict, bounded reader of WebAssembly binary modules,
 * and the checks that decide whether wisp can run a module.
 *
 * The reader is the first thing that touches untrusted bytes, before wasm2c
 * sees them. It promises, for any input:
 *   - no read outside [bytes, bytes + len), no crash, no undefined behaviour;
 *   - work linear in len (every loop step consumes at least one byte);
 *   - memory linear in len: every count field is checked against the bytes
 *     left in its section before anything is allocated for it, and against
 *     wisp's limits (those of the JS API, WASM_LIMIT_* below);
 *   - on rejection, one message a user can act on, with the byte offset.
 *
 * What it checks is the binary format of the core spec plus the proposals
 * wasm2c 1.0.32 runs (multi-value, reference types, bulk memory, SIMD,
 * exceptions' tag section, extended constant expressions): magic and
 * version, section order (custom sections anywhere), every section's size
 * against its contents, counts, LEB128 encodings, UTF-8 names, limits, and
 * the indices the module's own tables of contents refer to (type indices of
 * functions and imports, export and start indices, unique export names).
 * Function bodies are only framed (size, local declarations, final `end`):
 * instructions are left to wasm2c's validator, after wasm_check_code (at
 * compile time only) has refused the proposals wisp does not run — SIMD and
 * exception handling among those read here — and over-deep nesting, by
 * name. memory64, shared memories, 64-bit tables, custom page sizes and GC
 * types are rejected by name. The offsets of the function bodies and of the
 * data segments are kept (bodies, data_segments) for the compile step.
 *
 * The "name" custom section is read leniently, because an engine must not
 * reject a module for a bad custom section: if it is malformed it is ignored
 * as a whole and names_error says why. Within it, an entry whose function
 * index is out of range or whose name contains a NUL is skipped, and for a
 * function named twice the first name wins (likewise for the module name).
 * Only the first "name" section counts. Note that wasm2c itself rejects a
 * malformed name section unless run with --no-debug-names.
 *
 * Error convention (compile pipeline): 0 on success; -EINVAL for a module
 * that is malformed or that wisp cannot run, -ENOMEM when allocation fails;
 * either way a NUL-terminated message is written to err (if errlen > 0).
 * Module names quoted in messages are escaped and shortened, so a message
 * is always printable.
 */
#ifndef WISP_WASM_READER_H
#define WISP_WASM_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits on what a module may declare (the JS API's implementation limits;
 * a module over them is rejected with a message naming the limit). */
#define WASM_LIMIT_MODULE_BYTES (1u << 30)
#define WASM_LIMIT_TYPES        1000000u
#define WASM_LIMIT_FUNCS        1000000u   /* imported + defined */
#define WASM_LIMIT_IMPORTS      100000u
#define WASM_LIMIT_EXPORTS      100000u
#define WASM_LIMIT_GLOBALS      1000000u
#define WASM_LIMIT_TABLES       100000u
#define WASM_LIMIT_MEMORIES     100u       /* wasm_check_wisp allows 1 */
#define WASM_LIMIT_TAGS         1000000u
#define WASM_LIMIT_ELEM_SEGS    100000u
#define WASM_LIMIT_DATA_SEGS    100000u
#define WASM_LIMIT_PARAMS       1000u
#define WASM_LIMIT_RESULTS      1000u
#define WASM_LIMIT_LOCALS       50000u     /* per function, params excluded */
#define WASM_LIMIT_BODY_BYTES   7654321u
#define WASM_MAX_PAGES          65536u     /* 64 KiB pages: 4 GiB */
#define WASM_LIMIT_NESTING      10000u     /* blocks inside blocks (wasm2c
                                              recurses per level) */

/* Kinds of imports and exports, as encoded in the binary format. */
enum wasm_kind {
	WASM_KIND_FUNC = 0,
	WASM_KIND_TABLE = 1,
	WASM_KIND_MEMORY = 2,
	WASM_KIND_GLOBAL = 3,
	WASM_KIND_TAG = 4,
};

/* A function type. Value types are spelled one letter each, the letters of
 * src/common/abi.h: i = i32, I = i64, f = f32, F = f64, plus V = v128,
 * r = funcref, e = externref. Both strings are NUL-terminated ("" for
 * none), so a type compares to a host_import entry with strcmp. */
struct wasm_functype {
	char *params;
	char *results;
	uint32_t nparams, nresults;     /* their lengths */
};

/* Limits of a table (elements) or memory (64 KiB pages). */
struct wasm_limits {
	uint64_t min, max;              /* max is meaningful only if has_max */
	bool has_max;
};

struct wasm_import {
	char *module, *name;            /* valid UTF-8, no NUL byte inside */
	uint8_t kind;                   /* enum wasm_kind */
	uint32_t type_index;            /* FUNC and TAG: index into types */
	struct wasm_limits limits;      /* TABLE and MEMORY */
	char global_type;               /* GLOBAL: value type letter */
	bool global_mutable;            /* GLOBAL */
};

struct wasm_export {
	char *name;                     /* valid UTF-8, no NUL, unique */
	uint8_t kind;                   /* enum wasm_kind */
	uint32_t index;                 /* in range for its index space */
};

/* A span of the module's bytes: [at, at + len). Modules are at most
 * WASM_LIMIT_MODULE_BYTES long, so offsets fit in 32 bits. */
struct wasm_span {
	uint32_t at, len;
};

/* A data segment, where its parts are in the module's bytes. */
struct wasm_data_segment {
	uint32_t at;                    /* its flags (first byte of the entry) */
	uint32_t len_at;                /* the LEB128 of its length */
	uint32_t data_at;               /* its contents ... */
	uint32_t len;                   /* ... and their length */
	bool passive;
};

/* Everything wisp needs to know about a module before compiling it. Index
 * spaces put imports first: function i < nfunc_imports is the i-th
 * function import, function nfunc_imports + j is defined function j. All
 * pointers are owned by the wasm_info (one arena) and live until
 * wasm_info_free(). */
struct wasm_info {
	struct wasm_functype *types;  uint32_t ntypes;
	struct wasm_import *imports;  uint32_t nimports;
	uint32_t nfunc_imports;
	uint32_t *func_types;         uint32_t nfuncs;  /* defined functions */
	struct wasm_export *exports;  uint32_t nexports;

	/* Memories (imported + defined); mem_* describe memory 0. */
	uint32_t nmemories;
	bool memory_imported;           /* memory 0 is an import */
	uint64_t mem_min, mem_max;      /* pages; mem_max only if mem_has_max */
	bool mem_has_max;

	uint32_t ntables;               /* imported + defined */
	bool table0_defined_funcref;    /* table 0 is the module's own, of funcref */
	uint32_t nglobals;              /* imported + defined */
	uint32_t ntags;                 /* imported + defined */
	uint32_t max_tag_payload;       /* bytes of the largest tag's values, as
	                                   wasm2c lays them out (see wasm_code.c) */
	uint32_t nelem_segments;
	uint32_t ndata_segments;
	struct wasm_data_segment *data_segments;   /* ndata_segments of them */
	uint64_t data_bytes;            /* their contents, in total */
	struct wasm_span data_section;  /* the whole section 'data', id byte
	                                   included (len 0: none) */
	struct wasm_span *bodies;       /* nfuncs: each body, local declarations
	                                   included, its size excluded */
	struct wasm_span code_section;  /* the contents of section 'code' (the
	                                   origin of DWARF's code addresses) */
	/* The contents (after the name) of the first custom sections of these
	 * names: the module's own DWARF line table and its strings (len 0:
	 * none). Only framed, never interpreted here (wasm_lines.c). */
	struct wasm_span debug_line, debug_line_str, debug_str;
	uint32_t v128_global;           /* 1 + the first global of type v128, or 0 */
	/* 1 + the global that is the module's shadow stack pointer, or 0: the
	 * defined mutable i32 the name section calls "__stack_pointer", or,
	 * when no global is named, global 0 if it is a defined mutable i32
	 * (where LLVM's linker always puts it). Only used to word traps. */
	uint32_t stack_pointer;
	bool *global_mut_i32;           /* per global: defined, mutable, i32 */
	bool has_data_count;            /* datacount section present ... */
	uint32_t data_count;            /* ... and its value (== ndata_segments) */

	bool has_start_section;
	uint32_t start_func;            /* a valid function index */

	/* From the "name" section: func_names has nfunc_imports + nfuncs
	 * entries, NULL where a function has no name; func_names itself is
	 * NULL when no function has one. Names are valid UTF-8 without NUL but
	 * otherwise arbitrary: escape them before pasting them into C. */
	char **func_names;
	char *module_name;              /* or NULL */
	char *names_error;              /* why the name section was ignored, or NULL */

	void *arena_;                   /* private: owns all of the above */
};

/*
 * Read a binary module from bytes[0, len). On success fills *out and
 * returns 0; the caller must release it with wasm_info_free(). On failure
 * returns -EINVAL (malformed or over a limit) or -ENOMEM, writes a message
 * to err, and leaves *out zeroed (wasm_info_free on it is a no-op). bytes is
 * not retained.
 */
int wasm_read(const uint8_t *bytes, size_t len, struct wasm_info *out,
              char *err, size_t errlen);

/* Release everything wasm_read() allocated and zero *info. Safe on a zeroed
 * struct and on NULL. */
void wasm_info_free(struct wasm_info *info);

/* The export with this name if it is of this kind (enum wasm_kind), else
 * NULL. Export names are unique, so there is at most one. */
const struct wasm_export *wasm_find_export(const struct wasm_info *info,
                                           const char *name, uint8_t kind);

/* The name-section name of a function (index space index), or NULL if it
 * has none or the index is out of range. */
const char *wasm_func_name(const struct wasm_info *info, uint32_t func_index);

/* The type of a function (index space index, imported or defined), or NULL
 * if the index is out of range. */
const struct wasm_functype *wasm_func_type(const struct wasm_info *info,
                                           uint32_t func_index);

/* "(i32, i64) -> (f32)": a function type for messages, truncated to cap. */
void wasm_format_type(const struct wasm_functype *t, char *buf, size_t cap);

/*
 * Decide whether wisp can run a module that wasm_read() accepted: every
 * function import must be one wisp provides (host_import_find()) with
 * exactly the ABI table's signature; no memory, table, global or tag may be
 * imported; at most one memory. Returns 0, or -EINVAL with a message naming
 * the first offending import (in module order) or the memory count.
 * Whether "_start" exists is left to the caller (wasm_find_export()).
 */
int wasm_check_wisp(const struct wasm_info *info, char *err, size_t errlen);

/*
 * Check what the function bodies of a module wasm_read() accepted use
 * (wasm_code.c): refuse, naming the feature, the function and the byte
 * offset, the proposals wisp does not run (SIMD, exception handling, tail
 * calls, typed function references, GC, threads), unknown instructions,
 * and blocks nested deeper than max_depth. For the compile step: the cached
 * path does not need it. bytes/len are the module wasm_read() read.
 * Returns 0 or -EINVAL with a message.
 */
int wasm_check_code(const uint8_t *bytes, size_t len, const struct wasm_info *info,
                    uint32_t max_depth, char *err, size_t errlen);

#endif
