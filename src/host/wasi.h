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

struct wasi_preopen {
	const char *host_path;   /* directory on the host */
	const char *guest_path;  /* name the guest sees (e.g. "/data" or ".") */
	bool read_only;          /* deny every write/create/remove below it */
};

struct wasi_config {
	int argc;
	const char *const *argv;     /* argv[0] is the program name */
	int envc;
	const char *const *envp;     /* "KEY=VALUE" */
	int npreopens;
	const struct wasi_preopen *preopens;
	int stdio[3];                /* host fds for guest fds 0,1,2 (-1: closed) */
};

struct wasi_ctx;

/* Create the WASI state: copies args/env, opens each preopen (an error names
 * the directory that could not be opened). Returns 0 or a negative errno. */
int wasi_ctx_new(const struct wasi_config *cfg, struct wasi_ctx **out,
                 char *err, size_t errlen);
/* Close every fd the guest still holds (never the stdio fds given in cfg)
 * and free. NULL is allowed. */
void wasi_ctx_free(struct wasi_ctx *w);

struct host_proc;
/* The process's WASI state, created from hp->wasi_cfg on first use; if
 * that fails (a preopened directory vanished, no memory) the calling guest
 * traps with the reason. */
struct wasi_ctx *wasi_ctx_of(struct host_proc *hp);

#endif
