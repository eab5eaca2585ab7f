/*
 * wisp_code.c — the wisp_code namespace: hot code reload (load a new
 * version of the main module, ask which version runs, hear of new ones,
 * move onto the current one). The versions and the handover are the
 * runtime's (src/proc/upgrade.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proc/caps.h"
#include "wisp_api.h"

#define NS(name) Z_wisp_codeZ_##name
#define SELF struct host_proc *hp = HOST_PROC(self)

struct load_job {
	struct rt *rt;
	const void *bytes;
	uint32_t len;
	uint32_t vsn;
	int rc;
	char err[512];
};

static void do_load(void *arg)
{
	struct load_job *j = arg;
	j->rc = rt_code_load(j->rt, j->bytes, j->len, false, &j->vsn, j->err, sizeof(j->err));
}

u32 NS(load)(void *self, u32 bytes, u32 len, u32 vsn_out)
{
	SELF;
	if (hp->caps != NULL && !hp->caps->may_load_code) {
		caps_log_denied(hp->caps, proc_pid(hp->proc), "%s",
		                "wisp_code_load: no capability to load code (WISP_DENY_CODE)");
		return WISP_EPERM;
	}
	if (len == 0 || len > RT_CODE_MAX_BYTES)
		return len == 0 ? WISP_EINVAL : WISP_ETOOBIG;
	api_work(hp, len);
	api_ptr(hp, vsn_out, 4, "wisp_code_load");
	/* A copy: compiling takes a blocking thread while the caller parks. */
	struct load_job j = { .rt = hp->proc->rt, .len = len };
	void *copy = malloc(len);
	if (copy == NULL)
		return WISP_ENOMEM;
	memcpy(copy, api_ptr(hp, bytes, len, "wisp_code_load"), len);
	j.bytes = copy;
	int rc = proc_run_blocking(hp->proc, do_load, &j);
	free(copy);
	if (rc != 0)
		return WISP_ELIMIT;
	if (j.rc == 0 || j.rc == -EEXIST)
		api_put_u32(hp, vsn_out, j.vsn, "wisp_code_load");
	if (j.rc == 0)
		return WISP_OK;
	if (j.rc == -EEXIST)
		return WISP_EEXIST;
	if (j.rc == -EBUSY)
		return WISP_ELIMIT;
	return j.rc == -ENOMEM ? WISP_ENOMEM : WISP_EINVAL;
}

u32 NS(version)(void *self, u32 which)
{
	SELF;
	struct rt *rt = hp->proc->rt;
	if (which == WISP_CODE_CURRENT)
		return rt_code_current(rt, NULL);
	if (which == WISP_CODE_TIER)
		return rt_module_is_better(proc_module(hp->proc));
	return which == WISP_CODE_MINE ? proc_code_version(hp->proc) : 0;
}

u32 NS(watch)(void *self, u32 on)
{
	SELF;
	return wisp_code(proc_code_watch(hp->proc, on != 0));
}

u32 NS(upgrade)(void *self, u32 state, u32 len, u32 why, u32 why_cap)
{
	SELF;
	if (len > proc_max_message(hp->proc))
		return WISP_ETOOBIG;
	api_work(hp, len);
	const void *st = api_ptr(hp, state, len, "wisp_code_upgrade");
	if (why_cap > 0)
		api_ptr(hp, why, why_cap, "wisp_code_upgrade");
	char text[300];
	int rc = proc_upgrade(hp->proc, st, len, text, sizeof(text));
	/* (Only on failure: the process goes on with its old version.) */
	if (why_cap > 0) {
		char *w = api_ptr(hp, why, why_cap, "wisp_code_upgrade");
		size_t n = strnlen(text, why_cap - 1);
		memcpy(w, text, n);
		w[n] = '\0';
	}
	switch (rc) {
	case -ENOENT: return WISP_ENOTFOUND;
	case -ENOMEM: return WISP_ENOMEM;
	default: return WISP_EINVAL;
	}
}
