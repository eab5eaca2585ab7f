/*
 * wisp_node.c — the wisp_node namespace: this runtime as a node of an
 * Erlang cluster (src/dist). Sending to a pid of another node needs
 * nothing new (wisp_send takes any pid); these calls name nodes.
 *
 * Connecting to a node, or sending by name to one (which connects on
 * first use), needs the capability WISP_DENY_NODES takes away; so does
 * every call of the other namespaces aimed at a pid of another node (a
 * send to it connects on first use too: node_may_reach). A runtime
 * started without --name/--sname is no node: name() is 0, list() is
 * empty, connect(), send(), spawn(), migrate() and monitor() are
 * WISP_ENOTFOUND (and -v says why).
 */
#include <string.h>

#include "dist/dist.h"
#include "proc/caps.h"
#include "proc/mailbox.h"
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
	uint32_t scanned;
	size_t need = dist_nodes(d, out, cap, &scanned);
	api_work(hp, need + 64 * (uint64_t)scanned);   /* (a reduction per entry looked at) */
	return (u32)need;
}

u32 NS(of)(void *self, u64 pid, u32 buf, u32 cap)
{
	SELF;
	struct dist *d = node_of(hp);
	char name[256];
	size_t n = d ? dist_pid_node(d, pid, name, sizeof(name)) : 0;
	return give(hp, buf, cap, name, n, "wisp_node_of");
}

/* A call that names another node in a runtime that is no node: the
 * guest gets WISP_ENOTFOUND, as for a node that cannot be reached; -v
 * says which it was. */
static u32 not_a_node(struct host_proc *hp, const char *call)
{
	if (hp->caps != NULL)
		caps_log_denied(hp->caps, proc_pid(hp->proc), "%s: this runtime is no node (wisp run "
		                "--sname NAME or --name NAME@HOST)", call);
	return WISP_ENOTFOUND;
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

bool node_may_reach(struct host_proc *hp, uint64_t pid, const char *call)
{
	const struct caps *c = hp->caps;
	if (!proc_pid_is_remote(pid) || c == NULL || c->may_use_nodes)
		return true;
	caps_log_denied(c, proc_pid(hp->proc), "%s to a process of another node "
	                "(WISP_DENY_NODES)", call);
	return false;
}

struct connect_job {
	struct dist *d;
	char node[256];
	size_t len;
	int rc;
};

/* A failed dist_connect (or request) as the guest's code: a bad name,
 * no room for another node, or not reachable. */
static u32 connect_code(int rc)
{
	return rc == 0 ? WISP_OK : rc == -EINVAL ? WISP_EINVAL : rc == -EAGAIN ? WISP_ELIMIT
	                                                                  : WISP_ENOTFOUND;
}

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
		return not_a_node(hp, "wisp_node_connect");
	if (!may_use_nodes(hp))
		return WISP_EPERM;
	/* Connecting blocks (EPMD, the handshake): on the blocking pool, the
	 * process parked meanwhile. */
	if (proc_run_blocking(hp->proc, do_connect, &j) != 0)
		return WISP_ELIMIT;
	return connect_code(j.rc);
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
		return not_a_node(hp, "wisp_node_send");
	if (!may_use_nodes(hp))
		return WISP_EPERM;
	rt_count(hp->proc->rt, RT_MSG_SENT, 1);
	return wisp_code(dist_send_named(d, proc_pid(hp->proc), n, nlen, r, namelen, tag, 0, p,
	                                 len));
}

/* How long a remote spawn may take: the module may have to travel and be
 * compiled there first. */
#define SPAWN_WAIT_NS (120ull * 1000000000)

/* The answer's text as the guest's code (the process was not made). */
static u32 spawn_refused(struct host_proc *hp, const char *node, size_t nlen, const struct msg *m)
{
	char why[256];
	size_t n = m->len < sizeof(why) - 1 ? m->len : sizeof(why) - 1;
	memcpy(why, m->data, n);
	why[n] = '\0';
	if (hp->caps != NULL)
		caps_log_denied(hp->caps, proc_pid(hp->proc), "wisp_node_spawn on %.*s: %s", (int)nlen,
		                node, why);
	if (strncmp(why, "not allowed", 11) == 0)
		return WISP_EPERM;
	if (strncmp(why, "limit", 5) == 0)
		return WISP_ELIMIT;
	if (strncmp(why, "unreachable", 11) == 0)
		return WISP_ENOTFOUND;
	return WISP_EINVAL;
}

/* A process of the caller's module on another node (spawn and migrate):
 * *child its pid, not started yet (dist_spawn_go starts it). The guest's
 * code on failure. names: the names it takes there ("a\0b\0"). */
static u32 spawn_there(struct host_proc *hp, struct dist *d, const char *node, size_t nlen,
                       uint32_t fn, const void *arg, uint32_t arg_len, uint32_t flags,
                       uint64_t mon, const char *names, size_t names_len, uint64_t *child)
{
	struct connect_job j = { .d = d, .len = nlen };
	memcpy(j.node, node, nlen);
	if (!may_use_nodes(hp))
		return WISP_EPERM;
	if (hp->caps != NULL && !hp->caps->may_spawn) {
		caps_log_denied(hp->caps, proc_pid(hp->proc), "wisp_node_spawn: no spawn capability");
		return WISP_EPERM;
	}
	unsigned char hash[RT_HASH_BYTES];
	if (!proc_module_hash(hp->proc, hash))
		return WISP_EINVAL;
	if (proc_run_blocking(hp->proc, do_connect, &j) != 0)
		return WISP_ELIMIT;
	if (j.rc != 0)
		return connect_code(j.rc);
	uint64_t me = proc_pid(hp->proc), req = proc_make_ref(hp->proc);
	int rc = dist_spawn_request(d, me, j.node, nlen, hash, fn, arg, arg_len, flags, req, mon,
	                            names, names_len);
	if (rc != 0)
		return rc == -EMSGSIZE ? WISP_ETOOBIG : connect_code(rc);
	struct msg *m;
	rc = proc_receive(hp->proc, &req, 1, (int64_t)SPAWN_WAIT_NS, &m);
	dist_spawn_done(d, req);
	if (rc != 0)
		return wisp_code(rc);
	proc_take(hp->proc, m);
	*child = m->from;
	u32 code = *child ? WISP_OK : spawn_refused(hp, j.node, nlen, m);
	msg_free(m);
	return code;
}

/* Our side of the link (and monitor, ref mon) with child, made there by
 * spawn_there, then its go: it cannot end before we would hear of it. */
static u32 start_there(struct host_proc *hp, struct dist *d, uint64_t me, uint64_t child,
                       bool link, uint64_t mon)
{
	if (proc_bond_remote(hp->proc, child, link, mon) != 0)
		return WISP_ENOMEM;   /* (never started: dropped there after a while) */
	if (link)
		dist_note_link(d, me, child);
	if (mon)
		dist_note_monitor(d, me, child, mon);
	dist_spawn_go(d, me, child);
	return WISP_OK;
}

u32 NS(spawn)(void *self, u32 node, u32 nlen, u32 fn, u32 arg, u32 arg_len, u32 flags,
              u32 out)
{
	SELF;
	struct dist *d = node_of(hp);
	if (nlen == 0 || nlen >= 256 || (flags & ~(uint32_t)(WISP_SPAWN_LINK | WISP_SPAWN_MONITOR)))
		return WISP_EINVAL;
	if (arg_len > proc_max_message(hp->proc))
		return WISP_ETOOBIG;
	api_work(hp, arg_len);
	char name[256];
	memcpy(name, api_ptr(hp, node, nlen, "wisp_node_spawn"), nlen);
	const void *a = api_ptr(hp, arg, arg_len, "wisp_node_spawn");
	api_ptr(hp, out, sizeof(struct wisp_spawned), "wisp_node_spawn");
	if (d == NULL)
		return not_a_node(hp, "wisp_node_spawn");
	uint64_t me = proc_pid(hp->proc), child = 0;
	uint64_t mon = (flags & WISP_SPAWN_MONITOR) ? proc_make_ref(hp->proc) : 0;
	u32 code = spawn_there(hp, d, name, nlen, fn, a, arg_len, flags, mon, NULL, 0, &child);
	if (code == WISP_OK)
		code = start_there(hp, d, me, child, flags & WISP_SPAWN_LINK, mon);
	if (code != WISP_OK)
		return code;
	struct wisp_spawned s = { child, mon };
	memcpy(api_ptr(hp, out, sizeof(s), "wisp_node_spawn"), &s, sizeof(s));
	return WISP_OK;
}

/* Move the caller to node: a new incarnation runs fn(state) there, linked
 * to the caller, under the caller's names; the caller then forwards to it
 * (proc_forward_forever) and never returns. On failure the caller goes on
 * as it was (the guest's code). */
u32 NS(migrate)(void *self, u32 node, u32 nlen, u32 fn, u32 state, u32 state_len)
{
	SELF;
	struct dist *d = node_of(hp);
	if (nlen == 0 || nlen >= 256)
		return WISP_EINVAL;
	if (state_len > proc_max_message(hp->proc))
		return WISP_ETOOBIG;
	api_work(hp, state_len);
	char name[256];
	memcpy(name, api_ptr(hp, node, nlen, "wisp_node_migrate"), nlen);
	const void *st = api_ptr(hp, state, state_len, "wisp_node_migrate");
	if (d == NULL)
		return not_a_node(hp, "wisp_node_migrate");
	char names[64 * 256];
	size_t names_len = proc_names(hp->proc, names, sizeof(names));
	if (names_len > sizeof(names))
		return WISP_ELIMIT;
	uint64_t me = proc_pid(hp->proc), child = 0;
	u32 code = spawn_there(hp, d, name, nlen, fn, st, state_len, WISP_SPAWN_LINK, 0, names,
	                       names_len, &child);
	if (code == WISP_OK)
		code = start_there(hp, d, me, child, true, 0);
	if (code != WISP_OK)
		return code;
	proc_forward_forever(hp->proc, child);
}

u32 NS(pid_encode)(void *self, u64 pid, u32 buf, u32 cap)
{
	SELF;
	struct dist *d = node_of(hp);
	unsigned char b[300];
	size_t n = d ? dist_pid_encode(d, pid, b, sizeof(b)) : 0;
	if (n == 0 || n > sizeof(b))
		return 0;
	if (cap > 0)
		memcpy(api_ptr(hp, buf, cap < n ? cap : n, "wisp_node_pid_encode"), b, cap < n ? cap : n);
	return (u32)n;
}

u32 NS(pid_decode)(void *self, u32 buf, u32 len, u32 out)
{
	SELF;
	struct dist *d = node_of(hp);
	const void *p = api_ptr(hp, buf, len, "wisp_node_pid_decode");
	api_ptr(hp, out, 8, "wisp_node_pid_decode");
	uint64_t pid;
	if (d == NULL || dist_pid_decode(d, p, len, &pid) != 0)
		return WISP_EINVAL;
	api_put_u64(hp, out, pid, "wisp_node_pid_decode");
	return WISP_OK;
}

/* Erlang's monitor_node: a monitor of the node itself (its stand-in pid,
 * dist_node_pid), connecting if it is not connected: DOWN noconnection
 * when it is lost or cannot be reached; wisp_demonitor(ref) ends it. */
u32 NS(monitor)(void *self, u32 node, u32 len, u32 out)
{
	SELF;
	struct dist *d = node_of(hp);
	if (len == 0 || len >= 256)
		return WISP_EINVAL;
	struct connect_job j = { .d = d, .len = len };
	memcpy(j.node, api_ptr(hp, node, len, "wisp_node_monitor"), len);
	api_ptr(hp, out, 8, "wisp_node_monitor");
	if (d == NULL)
		return not_a_node(hp, "wisp_node_monitor");
	if (!may_use_nodes(hp))
		return WISP_EPERM;
	uint64_t pid = dist_node_pid(d, j.node, len);
	if (pid == 0)
		return WISP_EINVAL;
	uint64_t me = proc_pid(hp->proc), ref = proc_make_ref(hp->proc);
	if (proc_bond_remote(hp->proc, pid, false, ref) != 0)
		return WISP_ENOMEM;
	dist_note_monitor(d, me, pid, ref);
	api_put_u64(hp, out, ref, "wisp_node_monitor");
	/* Not connected: connect now; failing, the monitor fires (the node's
	 * loss tells every monitor noted on it). */
	if (proc_run_blocking(hp->proc, do_connect, &j) != 0)
		return WISP_ELIMIT;
	return WISP_OK;
}
