/*
 * wasi.h — WASI preview 1 (wasi_snapshot_preview1) state for one process.
 *
 * The functions themselves are the exported symbols
 * Z_wasi_snapshot_preview1Z_<name> (wasm2c's mangling), called directly by
 * generated code with the process's struct host_proc as first argument.
 *
 * Error convention: WASI functions return a WASI errno (0 = success); a guest
 * pointer or length outside its memory gives WASI_EFAULT, never a host
 * crash. Paths are confined to preopened directories by the kernel
 * (openat2 with RESOLVE_BENEATH), see wasi_path.c.
 */
#ifndef WISP_WASI_H
#define WISP_WASI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct caps;
struct wasi_ctx;

/* Create one process's WASI state from its capability set: copies the
 * arguments and environment, numbers stdio 0-2 and the set's directories
 * from 3 in order. The directory fds are the set's own (shared, never
 * re-opened by path, never closed here): `c` must outlive the state.
 * `inherit` gives the host fds that CAP_STDIO_INHERIT stands for (NULL: 0,
 * 1 and 2; the unit tests pass pipes). Returns 0 or a negative errno with a
 * message in err. */
int wasi_ctx_new(const struct caps *c, const int *inherit,
                 struct wasi_ctx **out, char *err, size_t errlen);
/* Close every fd the guest still holds (never the stdio or directory fds of
 * its capability set) and free. NULL is allowed. */
void wasi_ctx_free(struct wasi_ctx *w);
/* Close w's served files (their servers hear CLOSE now; w may be NULL):
 * a process that ends does this before its DOWN goes out. */
void wasi_ctx_close_served(struct wasi_ctx *w);

struct host_proc;
/* The process's WASI state, created from hp->caps on first use; if that
 * fails (no memory) the calling guest traps with the reason. */
struct wasi_ctx *wasi_ctx_of(struct host_proc *hp);

#endif
