/*
 * wisp_registry.c — the wisp_registry namespace: names for processes.
 */
#include <stdio.h>
#include <string.h>

#include "wisp_api.h"

#define NS(name) Z_wisp_registryZ_##name
#define SELF struct host_proc *hp = HOST_PROC(self)

u32 NS(register)(void *self, u32 name, u32 len, u64 pid)
{
	SELF;
	if (len == 0 || len > 255)
		return WISP_EINVAL;
	api_work(hp, len);
	return wisp_code(proc_register(hp->proc, api_ptr(hp, name, len, "wisp_register"),
	                               len, pid));
}

u32 NS(unregister)(void *self, u32 name, u32 len)
{
	SELF;
	if (len == 0 || len > 255)
		return WISP_EINVAL;
	return wisp_code(proc_unregister(hp->proc, api_ptr(hp, name, len, "wisp_unregister"),
	                                 len));
}

u32 NS(whereis)(void *self, u32 name, u32 len, u32 out)
{
	SELF;
	if (len == 0 || len > 255)
		return WISP_EINVAL;
	const char *n = api_ptr(hp, name, len, "wisp_whereis");
	api_ptr(hp, out, 8, "wisp_whereis");
	uint64_t pid = 0;
	int rc = proc_whereis(hp->proc, n, len, &pid);
	api_put_u64(hp, out, pid, "wisp_whereis");
	return wisp_code(rc);
}
