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

#include "cache.h"
#include "limits.h"
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
	struct compile_limits limits;   /* limits_default() unless the CLI says */
	uint8_t key[CACHE_KEY_BYTES];   /* the cache's MAC key (cache.c) */
};

/* A compiled module ready to load: its path in the cache (for messages and
 * its debug information) and an open descriptor of the verified file, to
 * load through /proc/self/fd (engine_module_load). */
struct pipeline_so {
	char path[PATH_MAX];
	int fd;                      /* -1: none */
};
void pipeline_so_close(struct pipeline_so *so);

/* Choose the cache directory ($WISP_CACHE_DIR, else $XDG_CACHE_HOME/wisp,
 * else ~/.cache/wisp), create it, check that this user may trust it
 * (owned, writable by no one else: cache.c) and load or create its key. If
 * any of that fails, falls back to a private temporary directory, removed
 * by pipeline_close(), and prints a warning saying why. Fails only if even
 * that is impossible. Sets the default compile limits. */
int pipeline_open(struct pipeline *p, char *err, size_t errlen);
void pipeline_close(struct pipeline *p);

/* Read, parse and check a module for wisp (imports, memories, _start is
 * checked by the caller). Messages name the file. */
int wasm_file_load(struct wasm_file *wf, const char *path, char *err, size_t errlen);
/* The same for bytes at hand (copied); name stands for the path. */
int wasm_file_from_bytes(struct wasm_file *wf, const char *name, const void *bytes, size_t len,
                         char *err, size_t errlen);
void wasm_file_free(struct wasm_file *wf);

/* The cached shared object for (module, tier), if present and trusted:
 * fills *so (path and an open, verified fd) and returns true. An entry that
 * is present but fails verification is treated as missing
 * (pipeline_compile replaces it), and reported on stderr if warn. */
bool pipeline_lookup(const struct pipeline *p, const struct wasm_file *wf,
                     enum tier t, struct pipeline_so *so, bool warn);

/* Compile (module, tier) into the cache unless a trusted entry is already
 * there; fills *so. The module is first checked against p->limits and for
 * features wasm2c cannot translate (-E2BIG / -EINVAL, naming the limit and
 * its flag, or the feature and the function). Safe against concurrent wisp
 * processes: a lock per (module, tier) makes one compile while the others
 * wait, and files appear in the cache atomically (written aside, sealed,
 * flushed, then renamed). */
int pipeline_compile(const struct pipeline *p, const struct wasm_file *wf,
                     enum tier t, struct pipeline_so *so, char *err, size_t errlen);

/* Does dir hold the cache directory, or lie inside it? (A guest given such
 * a directory could read the cache's key and rewrite native code wisp
 * loads.) */
bool pipeline_overlaps_cache(const struct pipeline *p, const char *dir);

/* Take the cache's background-build lock without waiting: an fd to keep
 * while the build runs, or -1 if another background build holds it. */
int pipeline_background_lock(const struct pipeline *p);

/* Start a detached, low-priority `wisp compile --background` of the
 * module's optimized tier, with this run's compile limits, unless a build of
 * it or any background build is already running. It outlives this process
 * (that is its point) but is bounded: the same CPU and memory limits per
 * compiler process, niceness 10, and a wall-clock limit per tool (see
 * cmd_compile). Errors are ignored: the fast tier keeps working. */
void pipeline_compile_in_background(const struct pipeline *p,
                                    const struct wasm_file *wf);

#endif
