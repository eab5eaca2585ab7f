/*
 * wisp_process.c — the wisp_process namespace: identity, spawning, links,
 * monitors and exit signals (semantics in src/proc/proc.c and docs/abi.md).
 */
#include <stdio.h>
#include <string.h>

#include "wisp_api.h"

#define NS(name) Z_wisp_processZ_##name
#define SELF struct host_proc *hp = HOST_PROC(self)

u32 NS(abi_version)(void *self)
{
	return WISP_ABI_VERSION;
}

u64 NS(self)(void *self)
{
	SELF;
	return proc_pid(hp->proc);
}

u32 NS(spawn)(void *self, u32 fn, u32 arg, u32 arg_len, u32 flags, u32 out)
{
	SELF;
	if (arg_len > proc_max_message(hp->proc))
		return WISP_ETOOBIG;
	api_work(hp, arg_len);
	const void *a = api_ptr(hp, arg, arg_len, "wisp_spawn");
	api_ptr(hp, out, sizeof(struct wisp_spawned), "wisp_spawn");
	struct wisp_spawned s = { 0, 0 };
	int rc = proc_spawn(hp->proc, fn, a, arg_len, flags, NULL, &s);
	if (rc == 0)
		memcpy(api_ptr(hp, out, sizeof(s), "wisp_spawn"), &s, sizeof(s));
	return wisp_code(rc);
}

u32 NS(spawn_arg)(void *self, u32 buf, u32 len)
{
	SELF;
	uint32_t arg_len;
	const unsigned char *arg = proc_arg(hp->proc, &arg_len);
	uint32_t n = len < arg_len ? len : arg_len;
	if (n > 0)
		memcpy(api_ptr(hp, buf, n, "wisp_spawn_arg"), arg, n);
	return arg_len;
}

u32 NS(kill)(void *self, u64 pid)
{
	SELF;
	if (!node_may_reach(hp, pid, "wisp_kill"))
		return WISP_EPERM;
	return wisp_code(proc_kill(hp->proc, pid));
}

u32 NS(exit_signal)(void *self, u64 pid, u32 code)
{
	SELF;
	if (!node_may_reach(hp, pid, "wisp_exit_signal"))
		return WISP_EPERM;
	return wisp_code(proc_exit_signal(hp->proc, pid, (int32_t)code));
}

u32 NS(link)(void *self, u64 pid)
{
	SELF;
	if (!node_may_reach(hp, pid, "wisp_link"))
		return WISP_EPERM;
	return wisp_code(proc_link(hp->proc, pid));
}

u32 NS(unlink)(void *self, u64 pid)
{
	SELF;
	return wisp_code(proc_unlink(hp->proc, pid));
}

u32 NS(monitor)(void *self, u64 pid, u32 ref_out)
{
	SELF;
	api_ptr(hp, ref_out, 8, "wisp_monitor");
	if (!node_may_reach(hp, pid, "wisp_monitor"))
		return WISP_EPERM;
	uint64_t ref = 0;
	int rc = proc_monitor(hp->proc, pid, &ref);
	if (rc == 0)
		api_put_u64(hp, ref_out, ref, "wisp_monitor");
	return wisp_code(rc);
}

u32 NS(demonitor)(void *self, u64 ref)
{
	SELF;
	return wisp_code(proc_demonitor(hp->proc, ref));
}

u32 NS(trap_exit)(void *self, u32 on)
{
	SELF;
	return proc_set_trap_exit(hp->proc, on != 0);
}

u32 NS(alive)(void *self, u64 pid)
{
	SELF;
	return proc_alive(hp->proc->rt, pid);
}

void NS(yield)(void *self)
{
	SELF;
	proc_yield(hp->proc);
}

void NS(hibernate)(void *self)
{
	SELF;
	proc_park_may_move(hp->proc, true);
	proc_hibernate(hp->proc);
	proc_park_may_move(hp->proc, false);
}

void NS(panic)(void *self, u32 text, u32 len, u32 flags)
{
	SELF;
	const char *t = api_ptr(hp, text, len, "wisp_panic");
	if (hp->proc == NULL)
		engine_trap_msg(engine_current(), WASM_RT_TRAP_UNREACHABLE, "wisp_panic outside a runtime");
	proc_panic(hp->proc, t, len, (flags & WISP_PANIC_QUIET) != 0);
}
