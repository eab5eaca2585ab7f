/*
 * pipeline.h — from a .wasm file to a loadable shared object, through the
 * content-addressed compile cache (see pipeline.c).
 *
 * Error convention: named errors with a message (err buffer); the return
 * value is 0 or a negative errno.
 */
#ifndef WISP_PIPELINE_H
#define WISP_PIPELINE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wasm_reader.h"

#define WISP_VERSION "0.1.0"

enum tier { TIER_FAST, TIER_OPT };

/* A module read from disk and checked: bytes, parsed sections. */
struct wasm_file {
	char path[PATH_MAX];
	uint8_t *bytes;
	size_t len;
	struct wasm_info info;
	char key[33];                /* content hash (hex), without tier */
};

struct pipeline {
	char cache_dir[PATH_MAX];    /* where compiled modules live */
	bool cache_is_temp;          /* the configured cache was unusable */
	bool progress;               /* show progress of long compiles on stderr */
	char opt_cc[256];            /* optimizing compiler (WISP_CC or gcc) */
	char fast_cc[256];           /* fast compiler (WISP_FAST_CC or tcc) */
};

/* Choose the cache directory ($WISP_CACHE_DIR, else $XDG_CACHE_HOME/wisp,
 * else ~/.cache/wisp) and create it. If it cannot be created or written,
 * falls back to a private temporary directory, removed by pipeline_close(),
 * and prints a warning saying why. Fails only if even that is impossible. */
int pipeline_open(struct pipeline *p, char *err, size_t errlen);
void pipeline_close(struct pipeline *p);

/* Read, parse and check a module for wisp (imports, memories, _start is
 * checked by the caller). Messages name the file. */
int wasm_file_load(struct wasm_file *wf, const char *path, char *err, size_t errlen);
void wasm_file_free(struct wasm_file *wf);

/* The cached shared object for (module, tier), if present: writes its path
 * and returns true. */
bool pipeline_lookup(const struct pipeline *p, const struct wasm_file *wf,
                     enum tier t, char *so_path, size_t so_len);

/* Compile (module, tier) into the cache unless it is already there; writes
 * the shared object's path. Safe against concurrent wisp processes: a lock
 * per (module, tier) makes one compile while the others wait, and files
 * appear in the cache atomically (written aside, then renamed). */
int pipeline_compile(const struct pipeline *p, const struct wasm_file *wf,
                     enum tier t, char *so_path, size_t so_len,
                     char *err, size_t errlen);

/* Start a detached, low-priority `wisp compile` of the module's optimized
 * tier, unless one is already running. Errors are ignored: the fast tier
 * keeps working. */
void pipeline_compile_in_background(const struct pipeline *p,
                                    const struct wasm_file *wf);

#endif
