/*
 * wisp_node.c — the wisp_node namespace: this runtime as a node of an
 * Erlang cluster (src/dist). Sending to a pid of another node needs
 * nothing new (wisp_send takes any pid); these calls name nodes.
 *
 * Connecting to a node, or sending by name to one (which connects on
 * first use), needs the capability WISP_DENY_NODES takes away. A runtime
 * started without --name/--sname is no node: name() is 0, list() is
 * empty, connect() and send() are WISP_ENOTFOUND.
 */
#include <string.h>

#include "dist/dist.h"
#include "proc/caps.h"
#include "wisp_api.h"

#define NS(name) Z_wisp_nodeZ_##name
#define SELF struct host_proc *hp = HOST_PROC(self)

static struct dist *node_of(struct host_proc *hp)
{
	return hp->proc != NULL ? proc_remote_ctx(hp->proc) : NULL;
}

/* Copy len bytes of s to the guest's buf (at most cap); the full length. */
static u32 give(struct host_proc *hp, u32 buf, u32 cap, const char *s, size_t len,
                const char *call)
{
	if (cap > 0)
		memcpy(api_ptr(hp, buf, cap < len ? cap : len, call), s, cap < len ? cap : len);
	return (u32)len;
}

u32 NS(name)(void *self, u32 buf, u32 cap)
{
	SELF;
	struct dist *d = node_of(hp);
	const char *n = d ? dist_node_name(d) : "";
	return give(hp, buf, cap, n, strlen(n), "wisp_node_name");
}

u32 NS(list)(void *self, u32 buf, u32 cap)
{
	SELF;
	struct dist *d = node_of(hp);
	if (d == NULL)
		return 0;
	char *out = cap ? api_ptr(hp, buf, cap, "wisp_node_list") : NULL;
	return (u32)dist_nodes(d, out, cap);
}

u32 NS(of)(void *self, u64 pid, u32 buf, u32 cap)
{
	SELF;
	struct dist *d = node_of(hp);
	char name[256];
	size_t n = d ? dist_pid_node(d, pid, name, sizeof(name)) : 0;
	return give(hp, buf, cap, name, n, "wisp_node_of");
}

static bool may_use_nodes(struct host_proc *hp)
{
	const struct caps *c = hp->caps;
	if (c != NULL && !c->may_use_nodes) {
		caps_log_denied(c, proc_pid(hp->proc), "%s", "using other nodes (WISP_DENY_NODES)");
		return false;
	}
	return true;
}

struct connect_job {
	struct dist *d;
	char node[256];
	size_t len;
	int rc;
};

static void do_connect(void *arg)
{
	struct connect_job *j = arg;
	char err[256];
	j->rc = dist_connect(j->d, j->node, j->len, err, sizeof(err));
}

u32 NS(connect)(void *self, u32 node, u32 len)
{
	SELF;
	struct dist *d = node_of(hp);
	if (len == 0 || len >= 256)
		return WISP_EINVAL;
	struct connect_job j = { .d = d, .len = len };
	memcpy(j.node, api_ptr(hp, node, len, "wisp_node_connect"), len);
	if (d == NULL)
		return WISP_ENOTFOUND;
	if (!may_use_nodes(hp))
		return WISP_EPERM;
	/* Connecting blocks (EPMD, the handshake): on the blocking pool, the
	 * process parked meanwhile. */
	if (proc_run_blocking(hp->proc, do_connect, &j) != 0)
		return WISP_ELIMIT;
	return j.rc == 0 ? WISP_OK : j.rc == -EINVAL ? WISP_EINVAL : WISP_ENOTFOUND;
}

u32 NS(send)(void *self, u32 node, u32 nlen, u32 name, u32 namelen, u64 tag, u32 data,
             u32 len)
{
	SELF;
	struct dist *d = node_of(hp);
	if (nlen == 0 || nlen >= 256 || namelen == 0 || namelen > 255)
		return WISP_EINVAL;
	if (len > proc_max_message(hp->proc))
		return WISP_ETOOBIG;
	api_work(hp, len);
	char n[256], r[256];
	memcpy(n, api_ptr(hp, node, nlen, "wisp_node_send"), nlen);
	memcpy(r, api_ptr(hp, name, namelen, "wisp_node_send"), namelen);
	const void *p = api_ptr(hp, data, len, "wisp_node_send");
	if (d == NULL)
		return WISP_ENOTFOUND;
	if (!may_use_nodes(hp))
		return WISP_EPERM;
	return wisp_code(dist_send_named(d, proc_pid(hp->proc), n, nlen, r, namelen, tag, 0, p,
	                                 len));
}
