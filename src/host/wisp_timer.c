/*
 * wisp_timer.c — the wisp_timer namespace: sleep, send_after, cancel.
 * Timers live on the scheduler of the process that set them (timer.c).
 */
#include <stdio.h>
#include <string.h>

#include "wisp_api.h"

#define NS(name) Z_wisp_timerZ_##name
#define SELF struct host_proc *hp = HOST_PROC(self)

void NS(sleep)(void *self, u64 ns)
{
	SELF;
	proc_park_may_move(hp->proc, true);
	proc_sleep(hp->proc, (int64_t)ns);
	proc_park_may_move(hp->proc, false);
}

u32 NS(send_after)(void *self, u64 pid, u64 tag, u32 data, u32 len, u64 delay,
                   u32 timer_out)
{
	SELF;
	if (len > proc_max_message(hp->proc))
		return WISP_ETOOBIG;
	api_work(hp, len);
	const void *d = api_ptr(hp, data, len, "wisp_send_after");
	api_ptr(hp, timer_out, 8, "wisp_send_after");
	if (!node_may_reach(hp, pid, "wisp_send_after"))
		return WISP_EPERM;
	uint64_t id = 0;
	int rc = proc_send_after(hp->proc, pid, tag, d, len, (int64_t)delay, &id);
	if (rc == 0)
		api_put_u64(hp, timer_out, id, "wisp_send_after");
	return wisp_code(rc);
}

u32 NS(cancel)(void *self, u64 timer)
{
	SELF;
	return wisp_code(proc_cancel_timer(hp->proc, timer));
}
