/*
 * wisp_caps.c — the wisp_caps namespace: a process builds a capability set
 * for the processes it spawns, starting from a copy of its own. Every
 * operation removes or lowers something; none adds. A set is frozen once a
 * process has been spawned with it (the children hold it; it must not
 * change under them). Handles are indexes into the caller's own small table:
 * another process's handle numbers mean nothing here, so they cannot be
 * forged into authority. A narrowed set keeps referring to the directory
 * fds its root opened (see caps.h): dropping a directory or making it
 * read-only never looks a host path up again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proc/caps.h"
#include "wisp_api.h"

#define NS(name) Z_wisp_capsZ_##name
#define SELF struct host_proc *hp = HOST_PROC(self)

static struct caps *draft(struct host_proc *hp, u32 h, bool for_change)
{
	if (h >= HOST_NDRAFTS || hp->drafts == NULL || hp->drafts[h] == NULL)
		return NULL;
	struct caps *c = hp->drafts[h];
	if (for_change && c->frozen)
		return NULL;
	return c;
}

u32 NS(new)(void *self, u32 out)
{
	SELF;
	api_ptr(hp, out, 4, "wisp_caps_new");
	struct proc *p = hp->proc;
	if (!p->caps->may_create_caps) {
		caps_log_denied(p->caps, proc_pid(p), "wisp_caps_new: not allowed");
		return WISP_EPERM;
	}
	if (hp->drafts == NULL && (hp->drafts = calloc(HOST_NDRAFTS, sizeof(*hp->drafts))) == NULL)
		return WISP_ENOMEM;
	for (u32 h = 0; h < HOST_NDRAFTS; h++) {
		if (hp->drafts[h] == NULL) {
			hp->drafts[h] = caps_derive(p->caps);
			if (hp->drafts[h] == NULL)
				return WISP_ENOMEM;
			memcpy(api_ptr(hp, out, 4, "wisp_caps_new"), &h, 4);
			return WISP_OK;
		}
	}
	return WISP_ELIMIT;
}

u32 NS(free)(void *self, u32 h)
{
	SELF;
	struct caps *c = draft(hp, h, false);
	if (c == NULL)
		return WISP_EINVAL;
	caps_unref(c);          /* children spawned with it keep their reference */
	hp->drafts[h] = NULL;
	return WISP_OK;
}

/* Does directory i match the guest name g (len 0: every directory)?
 * ("data/" names "data", as --dir data/ does.) */
static bool dir_is(const struct caps *c, int i, const char *g, u32 len)
{
	if (len == 0)
		return true;
	size_t n = caps_dir_name_len(g, len);
	return strlen(c->dirs[i].guest) == n && memcmp(c->dirs[i].guest, g, n) == 0;
}

/* Drop the directory the guest sees as `guest` (all of them if len 0). */
u32 NS(drop_dir)(void *self, u32 h, u32 guest, u32 len)
{
	SELF;
	struct caps *c = draft(hp, h, true);
	if (c == NULL)
		return WISP_EINVAL;
	const char *g = len ? api_ptr(hp, guest, len, "wisp_caps_drop_dir") : NULL;
	bool found = false;
	for (int i = 0; i < c->ndirs;) {
		if (dir_is(c, i, g, len)) {
			caps_drop_dir(c, i);
			found = true;
		} else {
			i++;
		}
	}
	return found || len == 0 ? WISP_OK : WISP_ENOTFOUND;
}

u32 NS(read_only)(void *self, u32 h, u32 guest, u32 len)
{
	SELF;
	struct caps *c = draft(hp, h, true);
	if (c == NULL)
		return WISP_EINVAL;
	const char *g = len ? api_ptr(hp, guest, len, "wisp_caps_read_only") : NULL;
	bool found = false;
	for (int i = 0; i < c->ndirs; i++) {
		if (dir_is(c, i, g, len)) {
			c->dirs[i].read_only = true;
			found = true;
		}
	}
	return found || len == 0 ? WISP_OK : WISP_ENOTFOUND;
}

u32 NS(clear_env)(void *self, u32 h)
{
	SELF;
	struct caps *c = draft(hp, h, true);
	if (c == NULL)
		return WISP_EINVAL;
	for (int i = 0; i < c->nenv; i++)
		free(c->env[i]);
	c->nenv = 0;
	c->env[0] = NULL;
	return WISP_OK;
}

/* inherit (0) -> null (1) -> closed (2): only towards closed. */
u32 NS(set_stdio)(void *self, u32 h, u32 fd, u32 mode)
{
	SELF;
	struct caps *c = draft(hp, h, true);
	if (c == NULL || fd > 2 || mode > CAP_STDIO_CLOSED)
		return WISP_EINVAL;
	if (mode < c->stdio[fd])
		return WISP_EPERM;   /* that would widen */
	c->stdio[fd] = (uint8_t)mode;
	return WISP_OK;
}

u32 NS(drop_network)(void *self, u32 h)
{
	SELF;
	struct caps *c = draft(hp, h, true);
	if (c == NULL)
		return WISP_EINVAL;
	c->nconnect = c->nlisten = 0;
	c->udp = c->dns = false;
	return WISP_OK;
}

/* Lower a limit: the result is min(current, value). */
u32 NS(limit)(void *self, u32 h, u32 which, u64 value)
{
	SELF;
	struct caps *c = draft(hp, h, true);
	if (c == NULL)
		return WISP_EINVAL;
	uint64_t *field;
	switch (which) {
	case WISP_LIMIT_MEMORY: field = &c->max_memory; break;
	case WISP_LIMIT_CPU: field = &c->max_cpu; break;
	case WISP_LIMIT_MESSAGE: field = &c->max_message; break;
	case WISP_LIMIT_FDS: field = &c->max_fds; break;
	case WISP_LIMIT_PROCESSES:
		/* This set's own quota; its parents' quotas still apply too. */
		field = &c->max_processes;
		if (value == 0)
			c->may_spawn = false;
		break;
	default:
		return WISP_EINVAL;
	}
	if (value < *field)
		*field = value;
	return WISP_OK;
}

u32 NS(deny)(void *self, u32 h, u32 what)
{
	SELF;
	struct caps *c = draft(hp, h, true);
	if (c == NULL || (what & ~(uint32_t)(WISP_DENY_SPAWN | WISP_DENY_CAPS | WISP_DENY_NODES |
	                                     WISP_DENY_CODE)) != 0)
		return WISP_EINVAL;
	if (what & WISP_DENY_CODE)
		c->may_load_code = false;
	if (what & WISP_DENY_NODES)
		c->may_use_nodes = false;
	if (what & WISP_DENY_SPAWN)
		c->may_spawn = false;
	if (what & WISP_DENY_CAPS)
		c->may_create_caps = false;
	return WISP_OK;
}

struct caps *host_caps_take(struct host_proc *hp, u32 h)
{
	struct caps *c = draft(hp, h, false);
	if (c != NULL && !c->frozen) {
		if (caps_finish(c) != 0)
			return NULL;
		c->frozen = true;
	}
	return c;
}

/* wisp_process.spawn_with: spawn with a set built here (frozen from now). */
u32 Z_wisp_processZ_spawn_with(void *self, u32 h, u32 fn, u32 arg, u32 arg_len,
                               u32 flags, u32 out)
{
	SELF;
	if (draft(hp, h, false) == NULL)
		return WISP_EINVAL;
	if (arg_len > proc_max_message(hp->proc))
		return WISP_ETOOBIG;
	api_work(hp, arg_len);
	const void *a = api_ptr(hp, arg, arg_len, "wisp_spawn_with");
	api_ptr(hp, out, sizeof(struct wisp_spawned), "wisp_spawn_with");
	struct caps *c = host_caps_take(hp, h);
	if (c == NULL)
		return WISP_ENOMEM;
	struct wisp_spawned s = { 0, 0 };
	int rc = proc_spawn(hp->proc, fn, a, arg_len, flags, c, &s);
	if (rc == 0)
		memcpy(api_ptr(hp, out, sizeof(s), "wisp_spawn_with"), &s, sizeof(s));
	return wisp_code(rc);
}
