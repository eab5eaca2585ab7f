/*
 * host.c — the host layer's per-process state (struct host_proc), as the
 * runtime sets it up and frees it (struct proc_hooks, src/proc/proc.h).
 *
 * The state lives inside the process's slot, right after struct proc, so a
 * spawn allocates nothing for it; the WASI state and the wisp_caps drafts
 * are created on first use, since most processes never need them.
 */
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "proc/caps.h"
#include "wasi.h"
#include "wisp_program.h"

static void host_start(void *host, struct proc *p)
{
	struct host_proc *hp = host;
	hp->proc = p;
	hp->caps = p->caps;   /* WASI state is made from it on first use */
	uint32_t len;
	struct program_stdio *ps = proc_take_host_init(p, &len);
	if (ps == NULL)
		return;
	/* A program (wisp_program.c): its stdio (of the fds its spawn made)
	 * and its served directories are made now. Should that fail, it gets no WASI state at all rather
	 * than one whose stdio is the runtime's. */
	char err[256];
	if (len < sizeof(*ps) || program_stdio_adopt(hp, ps, len, err, sizeof(err)) != 0) {
		if (len >= sizeof(*ps))
			program_stdio_close(ps);
		hp->wasi_failed = true;
	}
	free(ps);
}

static void host_ready(void *host, engine_instance *inst)
{
	struct host_proc *hp = host;
	hp->inst = inst;
	hp->mem = engine_instance_memory(inst);
}

static void host_exiting(void *host)
{
	struct host_proc *hp = host;
	wasi_ctx_close_served(hp->wasi);
}

static void host_end(void *host)
{
	struct host_proc *hp = host;
	for (int i = 0; i < 4; i++) {     /* host calls a signal unwound */
		free(hp->scratch[i]);
		hp->scratch[i] = NULL;
	}
	wasi_ctx_free(hp->wasi);
	hp->wasi = NULL;
	if (hp->drafts != NULL) {
		for (int i = 0; i < HOST_NDRAFTS; i++)
			caps_unref(hp->drafts[i]);
		free(hp->drafts);
		hp->drafts = NULL;
	}
	hp->inst = NULL;
	hp->mem = NULL;
}

const struct proc_hooks host_proc_hooks = {
	.host_size = sizeof(struct host_proc),
	.start = host_start,
	.ready = host_ready,
	.exiting = host_exiting,
	.end = host_end,
};
