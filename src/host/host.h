/*
 * host.h — the per-process host state that every imported function receives.
 *
 * wasm2c passes each import module's "instance" pointer as the first argument
 * of every imported function. wisp passes the same struct host_proc for every
 * namespace, so a host function casts its first argument to it.
 */
#ifndef WISP_HOST_H
#define WISP_HOST_H

#include <stdint.h>
#include <wasm-rt.h>

#include "../engine/engine.h"

struct wasi_ctx;
struct proc;

struct host_proc {
	engine_instance *inst;     /* set once instantiated */
	wasm_rt_memory_t *mem;     /* the instance's "memory" export, or NULL */
	struct wasi_ctx *wasi;     /* WASI state: fd table, args, env, preopens */
	/* If wasi is NULL, the configuration to create it from on the first
	 * WASI call (most processes never make one: spawning stays cheap). */
	const struct wasi_config *wasi_cfg;
	struct proc *proc;         /* the wisp process, or NULL outside a runtime */
	/* Buffers a host call holds while its process is parked: freed when
	 * the call ends, or by the process's exit if a signal unwinds it. */
	void *scratch[4];
};

/* Allocate scratch memory for a host call that may park (NULL on failure
 * or if all slots are taken); host_scratch_free when done. */
void *host_scratch_alloc(struct host_proc *hp, size_t size);
void host_scratch_free(struct host_proc *hp, void *p);

#define HOST_PROC(self) ((struct host_proc *)(void *)(self))

#endif
