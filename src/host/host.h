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

#include "engine/engine.h"
#include "proc/proc.h"

struct wasi_ctx;
struct caps;

/* The host's per-process state: lives right after the process's struct
 * proc (the runtime allocates host_proc_hooks.host_size bytes there), set up
 * and freed through host_proc_hooks. Outside a runtime (unit tests) a
 * caller fills one itself with proc == NULL. */
struct host_proc {
	struct proc *proc;         /* the wisp process, or NULL outside a runtime */
	engine_instance *inst;     /* set once instantiated */
	wasm_rt_memory_t *mem;     /* the instance's "memory" export, or NULL */
	struct wasi_ctx *wasi;     /* WASI state: fd table, args, env, preopens */
	/* The capability set WASI builds `wasi` from on the process's first
	 * WASI call (most processes never make one: spawning stays cheap);
	 * it outlives the process's WASI state. NULL: no WASI state is made. */
	const struct caps *caps;
	/* Buffers a host call holds while its process is parked: freed when
	 * the call ends, or by the process's exit if a signal unwinds it. */
	void *scratch[4];
	/* Capability sets being built (wisp_caps handles), allocated on the
	 * first wisp_caps_new: most processes never build one. */
	struct caps **drafts;
	bool wasi_failed;          /* a program whose stdio could not be made */
};

#define HOST_NDRAFTS 16

/* What the runtime calls to set up and free host_proc (host.c). */
extern const struct proc_hooks host_proc_hooks;

/* Allocate scratch memory for a host call that may park (NULL on failure
 * or if all slots are taken); host_scratch_free when done. */
void *host_scratch_alloc(struct host_proc *hp, size_t size);
void host_scratch_free(struct host_proc *hp, void *p);

/* The lowest host fd number no guest may be given: the numbers from it up
 * to RLIMIT_NOFILE are the runtime's reserve (wasi.c, at the top; INT_MAX
 * when the limit is unbounded). Read from the current limit at each call.
 * Every fd made for a guest is checked against it: the WASI fd table's
 * (wasi_fd_insert), a program's stdio (wisp_program.c), and the
 * connections `wisp serve` hands its programs (src/cli/serve.c). */
int wasi_host_fd_ceiling(void);

#define HOST_PROC(self) ((struct host_proc *)(void *)(self))

#endif
