/*
 * dist.c — this runtime as a node of an Erlang cluster: node names and
 * incarnations, how pids cross nodes, the control messages of the
 * distribution protocol, and the links and monitors between nodes.
 *
 * Pids. A guest sees 64-bit pids. A local pid is generation << 32 | slot
 * (generations of 31 bits, ptable.c); on the wire it is Erlang's NEW_PID
 * {this node, ID = slot, Serial = generation, Creation = this
 * incarnation}. A pid of another node gets a local name: bit 63, then the
 * index of its node incarnation (23 bits), then 40 bits that hold its (ID,
 * Serial) themselves when they fit, else a handle the node's table maps to
 * them (DIST_DIRECT, handle_of). Every incarnation of a node
 * (name, creation) is its own entry, never reused, so a pid of a node
 * that restarted can never reach the new incarnation's processes: its
 * entry is GONE and anything sent there is dropped (links and monitors
 * answered NOPROC), as Erlang does with creations. An entry becomes GONE
 * when another incarnation of its name connects (accepted, or reached by
 * a dial made for the old one: the connection goes to the new one's
 * entry); retire() then refuses what it held for the old pids, tells
 * their links and monitors noconnection, passes sends by name on to the
 * new incarnation and cuts a connection the old one still had (its peer
 * died unseen, behind a partition). An entry made for sends by name
 * before any incarnation was known (creation 0) is retired alike. Nothing
 * is made for a peer before it is authenticated. Handles live as long as
 * the runtime: a pid may be held in any guest's memory, where no
 * collector can see it; they are bounded in all (DIST_MAX_HANDLES), and
 * BEAM pids never need one.
 *
 * Messages. A wisp message (tag, bytes, request ref) is the term
 * {Tag, Binary} (or {Tag, Binary, Ref} for a request); a payload tagged
 * WISP_TAG_TERM is a whole term of the guest's making. What arrives that
 * is not {Integer, Binary} comes to the guest tagged WISP_TAG_TERM, with
 * pids in it rewritten to the guest's form: NEW_PID with the empty atom
 * as node, ID and Serial the low and high halves of the 64-bit pid
 * (docs/abi.md). Exit reasons map to atoms and tuples (reason_put/get).
 *
 * Links and monitors. proc keeps them per process, as for local ones;
 * what goes out or comes in through here is also noted per node (xlink),
 * so that losing a node tells each local side: noconnection to links and
 * monitors, and a monitor the peer held is dropped. A peer monitoring a
 * local process is given a local ref; its own ref is kept to answer.
 *
 * Threads: a connection's reader (conn.c: a scheduler thread between
 * processes, one at a time per connection) reads frames and calls
 * dist_frame; the processes' own threads call remote_deliver (a send, a
 * link, an exit) and encode and write their frames themselves, under the
 * node's lock; the I/O thread accepts, ticks and writes what a socket
 * could not take at once.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "dist_impl.h"
#include "epmd.h"
#include "proc/mailbox.h"

/* Control message operations (erl_dist_protocol). */
enum {
	OP_LINK = 1, OP_SEND = 2, OP_EXIT = 3, OP_UNLINK = 4, OP_REG_SEND = 6,
	OP_EXIT2 = 8, OP_SEND_TT = 12, OP_EXIT_TT = 13, OP_REG_SEND_TT = 16,
	OP_EXIT2_TT = 18, OP_MONITOR_P = 19, OP_DEMONITOR_P = 20,
	OP_MONITOR_P_EXIT = 21, OP_SEND_SENDER = 22, OP_SEND_SENDER_TT = 23,
	OP_PAYLOAD_EXIT = 24, OP_PAYLOAD_EXIT_TT = 25, OP_PAYLOAD_EXIT2 = 26,
	OP_PAYLOAD_EXIT2_TT = 27, OP_PAYLOAD_MONITOR_P_EXIT = 28,
	OP_UNLINK_ID = 35, OP_UNLINK_ID_ACK = 36,
};

#define PASS_THROUGH 112   /* 'p': no distribution header (no atom cache) */

static const struct reason reason_noconnection = { WISP_EXIT_NOCONNECTION, 0, "" };

/* ---- nodes ---- */

static struct node *node_at(struct dist *d, uint32_t index)
{
	if (index == 0 || index > atomic_load_explicit(&d->nnodes, memory_order_acquire))
		return NULL;
	return atomic_load_explicit(&d->nodes[index - 1], memory_order_acquire);
}

struct node *dist_node_at(struct dist *d, uint32_t index)
{
	return node_at(d, index);
}

/* ---- the node table's indexes (d->lock held) ----
 *
 * Entries are found by name (every incarnation of a name chained in one
 * bucket, newest first) and by (name, creation). A peer chooses names and
 * creations (in the pids it sends), so a scan of the table per pid cost
 * 65,536 steps once it had filled it; the buckets are keyed by a random
 * seed so that it cannot make its names collide either. */

static uint64_t node_hash(const struct dist *d, const char *name, size_t nlen, uint64_t salt)
{
	uint64_t h = d->seed ^ (salt + 1) * 0x9e3779b97f4a7c15ull;
	for (size_t i = 0; i < nlen; i++)
		h = (h ^ (unsigned char)name[i]) * 0x100000001b3ull;
	h ^= h >> 31;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 29;
	return h;
}

static struct node **name_bucket(struct dist *d, const char *name, size_t nlen)
{
	return &d->byname[node_hash(d, name, nlen, UINT64_MAX) & (DIST_NODE_BUCKETS - 1)];
}

static struct node **exact_bucket(struct dist *d, const char *name, size_t nlen, uint32_t creation)
{
	return &d->byexact[node_hash(d, name, nlen, creation) & (DIST_NODE_BUCKETS - 1)];
}

static void exact_add(struct dist *d, struct node *n)
{
	struct node **b = exact_bucket(d, n->name, n->nlen, n->creation);
	n->next_exact = *b;
	*b = n;
}

static void exact_del(struct dist *d, struct node *n)
{
	struct node **pp = exact_bucket(d, n->name, n->nlen, n->creation);
	while (*pp != n)
		pp = &(*pp)->next_exact;
	*pp = n->next_exact;
}

/* n is incarnation `creation` (d->lock held): re-indexed, first among any
 * other entry for it. */
static void set_creation(struct dist *d, struct node *n, uint32_t creation)
{
	exact_del(d, n);
	pthread_mutex_lock(&n->lock);
	n->creation = creation;
	pthread_mutex_unlock(&n->lock);
	exact_add(d, n);
}

static bool same_name(const struct node *n, const char *name, size_t nlen)
{
	return n->nlen == nlen && memcmp(n->name, name, nlen) == 0;
}

static enum node_state state_of(struct node *n)
{
	pthread_mutex_lock(&n->lock);
	enum node_state st = n->state;
	pthread_mutex_unlock(&n->lock);
	return st;
}

/* A node name an entry may have: "alive@host", 1 to 255 bytes of
 * printable ASCII. (They are printed in messages; a peer's pids and a
 * guest's calls name nodes freely.) */
static bool name_ok(const char *name, size_t nlen)
{
	const char *at = memchr(name, '@', nlen);
	if (nlen == 0 || nlen > DIST_NAME_MAX || at == NULL || at == name || at == name + nlen - 1)
		return false;
	for (size_t i = 0; i < nlen; i++)
		if (name[i] <= ' ' || name[i] > '~')
			return false;
	return true;
}

/* "name@host" or "name@host:port" (EPMD-less): the name's length and
 * the port (0: none). -EINVAL with a message if it is neither. */
static int split_node(const char *node, size_t nlen, size_t *namelen, uint16_t *port, char *err,
                      size_t errlen)
{
	const char *colon = memchr(node, ':', nlen);
	*port = 0;
	*namelen = colon != NULL ? (size_t)(colon - node) : nlen;
	if (!name_ok(node, *namelen)) {
		snprintf(err, errlen, "bad node name: expected NAME@HOST (printable ASCII)");
		return -EINVAL;
	}
	if (colon == NULL)
		return 0;
	char num[8] = { 0 };
	size_t pl = nlen - *namelen - 1;
	char *end;
	long p = pl > 0 && pl < sizeof(num) ? (memcpy(num, colon + 1, pl), strtol(num, &end, 10)) : 0;
	if (p < 1 || p > 65535 || *end != '\0') {
		snprintf(err, errlen, "bad port in the node name");
		return -EINVAL;
	}
	*port = (uint16_t)p;
	return 0;
}

/* Why a new entry for name cannot be made (d->lock held), said once:
 * NULL if it can. guest: made for a guest's call, which may have only so
 * many entries that never connected (DIST_MAX_GUEST_NODES). */
static const char *node_room(struct dist *d, const char *name, size_t nlen, bool guest)
{
	if (atomic_load(&d->nnodes) >= DIST_MAX_NODES)
		return "the node table is full (DIST_MAX_NODES node incarnations in this run)";
	if (guest && d->nguest >= DIST_MAX_GUEST_NODES)
		return "guests named too many nodes that were never reached (DIST_MAX_GUEST_NODES)";
	uint32_t same = 0;
	for (struct node *o = *name_bucket(d, name, nlen); o != NULL; o = o->next_name)
		same += same_name(o, name, nlen);
	if (same >= DIST_MAX_INCARNATIONS)
		return "that node name has had too many incarnations (DIST_MAX_INCARNATIONS)";
	return NULL;
}

/* A new entry (d->lock held), made for a guest's call if guest; NULL for
 * a bad name, when there is no room (node_room) or no memory. */
static struct node *node_new(struct dist *d, const char *name, size_t nlen, uint32_t creation,
                             bool guest)
{
	uint32_t n = atomic_load(&d->nnodes);
	if (!name_ok(name, nlen))
		return NULL;
	const char *full = node_room(d, name, nlen, guest);
	if (full != NULL) {
		if (!d->told_full) {
			d->told_full = true;
			fprintf(stderr, "wisp: dist: cannot name node %.*s: %s; its pids and messages "
			        "are refused (said once)\n", (int)nlen, name, full);
		}
		return NULL;
	}
	struct node *node = calloc(1, sizeof(*node));
	if (node == NULL)
		return NULL;
	node->index = n + 1;
	memcpy(node->name, name, nlen);
	node->nlen = nlen;
	node->creation = creation;
	pthread_mutex_init(&node->lock, NULL);
	pthread_condattr_t ca;   /* (waited on with deadlines: conn.c) */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&node->changed, &ca);
	pthread_condattr_destroy(&ca);
	struct node **b = name_bucket(d, name, nlen);
	/* EPMD-less, the port given for a name is every incarnation's (the
	 * latest entry of the name comes first in its bucket). */
	for (struct node *o = *b; o != NULL; o = o->next_name)
		if (same_name(o, name, nlen)) {
			pthread_mutex_lock(&o->lock);
			node->port_hint = o->port_hint;
			pthread_mutex_unlock(&o->lock);
			break;
		}
	node->next_name = *b;
	*b = node;
	/* Another incarnation of this node's own name: one gone (this one is
	 * the live one), not a node to dial. */
	if (nlen == d->nlen && memcmp(name, d->name, nlen) == 0)
		node->state = NODE_GONE;
	exact_add(d, node);
	node->by_guest = guest;
	d->nguest += guest;
	atomic_store_explicit(&d->nodes[n], node, memory_order_release);
	atomic_store_explicit(&d->nnodes, n + 1, memory_order_release);
	return node;
}

/* Free a list of held messages, and their bytes from d's count. */
static void free_held(struct dist *d, struct held *h)
{
	while (h != NULL) {
		struct held *next = h->next;
		atomic_fetch_sub(&d->held_bytes, h->bytes);
		msg_free(h->m);
		free(h);
		h = next;
	}
}

static void node_free(struct dist *d, struct node *n)
{
	free_held(d, n->pend);
	for (uint32_t i = 0; i < n->moved.cap; i++) {
		free_held(d, n->moved.v[i].q);
		free(n->moved.v[i].mark);
	}
	moved_free(&n->moved);
	free(n->keys);
	free(n->slots);
	xset_free(&n->x);
	pthread_mutex_destroy(&n->lock);
	pthread_cond_destroy(&n->changed);
	free(n);
}

/* The entry to reach node `name` by name (for a guest's call): its latest
 * incarnation not known to be gone, made if there is none (d->lock
 * held). */
static struct node *current_locked(struct dist *d, const char *name, size_t nlen)
{
	for (struct node *n = *name_bucket(d, name, nlen); n != NULL; n = n->next_name)
		if (same_name(n, name, nlen) && state_of(n) != NODE_GONE)
			return n;
	return node_new(d, name, nlen, 0, true);
}

static struct node *node_current(struct dist *d, const char *name, size_t nlen)
{
	pthread_mutex_lock(&d->lock);
	struct node *n = current_locked(d, name, nlen);
	pthread_mutex_unlock(&d->lock);
	return n;
}

/* The node a guest or the command line names: NAME@HOST, or
 * NAME@HOST:PORT (reached without EPMD, the port remembered). NULL with
 * -EINVAL (a bad name, message in err), -EAGAIN (no room for another
 * node), or 0 and NULL for this node itself. */
static struct node *node_named(struct dist *d, const char *text, size_t len, int *rc,
                               char *err, size_t errlen)
{
	size_t namelen;
	uint16_t port;
	if ((*rc = split_node(text, len, &namelen, &port, err, errlen)) != 0)
		return NULL;
	if (namelen == d->nlen && memcmp(text, d->name, namelen) == 0)
		return NULL;
	struct node *n = node_current(d, text, namelen);
	if (n == NULL) {
		*rc = -EAGAIN;
		snprintf(err, errlen, "no room for another node (see stderr)");
		return NULL;
	}
	if (port) {
		pthread_mutex_lock(&n->lock);
		n->port_hint = port;
		pthread_mutex_unlock(&n->lock);
	}
	return n;
}

/* The entry for incarnation (name, creation) (d->lock held): that one, or
 * the one made for sends by name that has not learned its creation yet
 * and is not retired (*unknown), or NULL; *other_up if another
 * incarnation is connected. */
static struct node *find_locked(struct dist *d, const char *name, size_t nlen, uint32_t creation,
                                struct node **unknown, bool *other_up)
{
	*unknown = NULL;
	*other_up = false;
	for (struct node *n = *exact_bucket(d, name, nlen, creation); n != NULL; n = n->next_exact)
		if (n->creation == creation && same_name(n, name, nlen))
			return n;
	for (struct node *n = *exact_bucket(d, name, nlen, 0); n != NULL && creation != 0;
	     n = n->next_exact)
		if (n->creation == 0 && same_name(n, name, nlen) && state_of(n) != NODE_GONE) {
			*unknown = n;
			break;
		}
	for (struct node *n = *name_bucket(d, name, nlen); n != NULL && !*other_up; n = n->next_name)
		*other_up = same_name(n, name, nlen) && state_of(n) == NODE_UP;
	return NULL;
}

/* dist_node_by_name, for a guest's call if guest. live: that incarnation
 * is connecting to us (an authenticated handshake), so it is not taken
 * for a dead one, even if another incarnation is connected. */
static struct node *node_by_name(struct dist *d, const char *name, size_t nlen, uint32_t creation,
                                 bool guest, bool live)
{
	pthread_mutex_lock(&d->lock);
	struct node *unknown;
	bool other_up;
	struct node *found = find_locked(d, name, nlen, creation, &unknown, &other_up);
	if (found == NULL && unknown != NULL && creation != 0) {
		/* The entry made for sends by name learns its creation. */
		set_creation(d, unknown, creation);
		found = unknown;
	}
	if (found == NULL) {
		found = node_new(d, name, nlen, creation, guest);
		/* A pid of an incarnation other than the one connected: an
		 * older one (a newer one would have connected), so dead.
		 * Unless it is the one connecting to us now: then the one
		 * connected is the dead one (dist_conn_up retires it). */
		if (found != NULL && other_up && !live) {
			pthread_mutex_lock(&found->lock);
			found->state = NODE_GONE;
			pthread_mutex_unlock(&found->lock);
		}
	} else if (live) {
		/* Connecting, so alive, whatever a pid of it made us think. */
		pthread_mutex_lock(&found->lock);
		if (found->state == NODE_GONE)
			found->state = NODE_IDLE;
		pthread_mutex_unlock(&found->lock);
	}
	pthread_mutex_unlock(&d->lock);
	return found;
}

struct node *dist_node_by_name(struct dist *d, const char *name, size_t nlen, uint32_t creation,
                               bool live)
{
	return node_by_name(d, name, nlen, creation, false, live);
}

struct node *dist_node_peek(struct dist *d, const char *name, size_t nlen, uint32_t creation)
{
	pthread_mutex_lock(&d->lock);
	struct node *unknown;
	bool other_up;
	struct node *found = find_locked(d, name, nlen, creation, &unknown, &other_up);
	pthread_mutex_unlock(&d->lock);
	return found != NULL ? found : unknown;
}

/* ---- pids ---- */

static uint64_t hash64(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	return k;
}

static bool keys_grow(struct node *n)
{
	uint64_t cap = n->capslots ? n->capslots * 2 : 64;
	uint32_t *slots = calloc(cap, sizeof(*slots));
	if (slots == NULL)
		return false;
	for (uint64_t h = 1; h <= n->nkeys; h++) {
		uint64_t i = hash64(n->keys[h - 1]) & (cap - 1);
		while (slots[i] != 0)
			i = (i + 1) & (cap - 1);
		slots[i] = (uint32_t)h;
	}
	free(n->slots);
	n->slots = slots;
	n->capslots = cap;
	return true;
}

/* The low bits of a remote pid hold (ID, Serial) themselves when they
 * fit (DIST_DIRECT set: ID in 16 bits, Serial in 23), else a handle into
 * the node's table. Every BEAM pid fits (15 and 13 bits of pid number),
 * and a wisp node's as long as its process has a slot below 65,536 and a
 * generation below 2^23: so the table, which can only grow (a pid may be
 * held in any guest's memory), holds only the rest. A table a peer fills
 * with pids that do not fit is bounded in all (DIST_MAX_HANDLES). */
#define DIST_DIRECT (1ull << (DIST_HANDLE_BITS - 1))

/* The handle of (id, serial) on node n, made if new; 0 if out of memory
 * or the handles are used up (n->lock held). */
static uint64_t handle_of(struct dist *d, struct node *n, uint32_t id, uint32_t serial)
{
	if (id < 1u << 16 && serial < 1u << 23)
		return DIST_DIRECT | (uint64_t)serial << 16 | id;
	uint64_t key = (uint64_t)serial << 32 | id;
	if (n->capslots != 0) {
		for (uint64_t i = hash64(key) & (n->capslots - 1); n->slots[i] != 0;
		     i = (i + 1) & (n->capslots - 1))
			if (n->keys[n->slots[i] - 1] == key)
				return n->slots[i];
	}
	if (atomic_fetch_add(&d->nhandles, 1) >= DIST_MAX_HANDLES) {
		atomic_fetch_sub(&d->nhandles, 1);
		if (!atomic_exchange(&d->told_handles, true))
			fprintf(stderr, "wisp: dist: cannot name a process of node %.*s: this node has "
			        "named %u processes of other nodes whose pids are not compact "
			        "(DIST_MAX_HANDLES); such pids new to it are refused (said once)\n",
			        (int)n->nlen, n->name, DIST_MAX_HANDLES);
		return 0;
	}
	if ((n->nkeys + 1) * 4 > n->capslots * 3 && !keys_grow(n)) {
		atomic_fetch_sub(&d->nhandles, 1);
		return 0;
	}
	if (n->nkeys == n->capkeys) {
		uint64_t cap = n->capkeys ? n->capkeys * 2 : 64;
		uint64_t *k = realloc(n->keys, cap * sizeof(*k));
		if (k == NULL) {
			atomic_fetch_sub(&d->nhandles, 1);
			return 0;
		}
		n->keys = k;
		n->capkeys = cap;
	}
	n->keys[n->nkeys++] = key;
	uint64_t i = hash64(key) & (n->capslots - 1);
	while (n->slots[i] != 0)
		i = (i + 1) & (n->capslots - 1);
	n->slots[i] = (uint32_t)n->nkeys;
	return n->nkeys;
}

static uint64_t remote_pid(const struct node *n, uint64_t handle)
{
	return PROC_PID_REMOTE | (uint64_t)n->index << DIST_HANDLE_BITS | handle;
}

static struct node *node_of_pid(struct dist *d, uint64_t pid)
{
	if (!proc_pid_is_remote(pid))
		return NULL;
	return node_at(d, (uint32_t)((pid & ~PROC_PID_REMOTE) >> DIST_HANDLE_BITS));
}

/* The wire form of pid: false for a pid no node ever named. */
static bool pid_wire(struct dist *d, uint64_t pid, struct etf_pid *out)
{
	if (!proc_pid_is_remote(pid)) {
		*out = (struct etf_pid){ d->name, d->nlen, (uint32_t)pid, (uint32_t)(pid >> 32),
		                         d->creation };
		return pid != 0;
	}
	struct node *n = node_of_pid(d, pid);
	if (n == NULL)
		return false;
	uint64_t h = pid & ((1ull << DIST_HANDLE_BITS) - 1);
	pthread_mutex_lock(&n->lock);
	bool ok;
	uint64_t key = 0;
	if (h & DIST_DIRECT) {
		ok = true;
		key = (h >> 16 & ((1u << 23) - 1)) << 32 | (h & 0xffff);
	} else {
		ok = h >= 1 && h <= n->nkeys;
		key = ok ? n->keys[h - 1] : 0;
	}
	uint32_t creation = n->creation;
	pthread_mutex_unlock(&n->lock);
	*out = (struct etf_pid){ n->name, n->nlen, (uint32_t)key, (uint32_t)(key >> 32), creation };
	return ok;
}

static bool put_pid(struct dist *d, struct etf_buf *b, uint64_t pid)
{
	struct etf_pid w;
	if (!pid_wire(d, pid, &w))
		return false;
	etf_pid(b, &w);
	return true;
}

/* A local pid no process has (slot UINT32_MAX is never made). */
#define DEAD_PID ((uint64_t)1 << 32 | UINT32_MAX)

/* The local name of a pid from the wire (or from a guest's bytes, if
 * guest); 0 if out of memory or nonsense. */
static uint64_t pid_named(struct dist *d, const struct etf_pid *w, bool guest)
{
	if (w->nlen == d->nlen && memcmp(w->node, d->name, d->nlen) == 0 &&
	    w->creation == d->creation) {
		/* A pid no process here ever had (generation 0, or past the
		 * 31 bits): a dead one, as in Erlang, not a malformed frame. */
		if (w->serial == 0 || w->serial > PROC_GEN_MAX)
			return DEAD_PID;
		return (uint64_t)w->serial << 32 | w->id;
	}
	struct node *n = node_by_name(d, w->node, w->nlen, w->creation, guest, false);
	if (n == NULL)
		return 0;
	pthread_mutex_lock(&n->lock);
	uint64_t h = handle_of(d, n, w->id, w->serial);
	pthread_mutex_unlock(&n->lock);
	return h ? remote_pid(n, h) : 0;
}

static uint64_t pid_local(struct dist *d, const struct etf_pid *w)
{
	return pid_named(d, w, false);
}

static int get_pid(struct dist *d, struct etf_dec *dd, uint64_t *pid)
{
	struct etf_pid w;
	if (etf_get_pid(dd, &w) != 0)
		return -1;
	*pid = pid_local(d, &w);
	return *pid ? 0 : -1;
}

/* Whether w is a process of the node at the other end of c: the sender
 * of a signal that changes state (link, unlink, a link's exit, monitor,
 * demonitor) and of a system request must be (a peer speaks for its own
 * processes only; a forged local sender made a local process link to
 * another that never asked, and a forged third node's made links nobody
 * would break). The sender of a message or of an exit/2 signal is the
 * peer's word, as in Erlang: a forwarder (wisp_node.migrate) passes
 * messages and exit signals on with their original senders, and neither
 * gives the claimed sender any hold here (exit/2 from the peer's own pid
 * does as much). */
static bool of_peer(const struct conn *c, const struct etf_pid *w)
{
	const struct node *n = c->node;
	return w->nlen == n->nlen && memcmp(w->node, n->name, n->nlen) == 0 &&
	       w->creation == c->creation;
}

/* The sender of a signal that changes state (as get_pid): -1 unless
 * of_peer. */
static int get_sender(struct dist *d, const struct conn *c, struct etf_dec *dd, uint64_t *pid)
{
	struct etf_pid w;
	if (etf_get_pid(dd, &w) != 0 || !of_peer(c, &w))
		return -1;
	*pid = pid_local(d, &w);
	return *pid ? 0 : -1;
}

/* Guest form <-> wire form, for pid_copy. */
static bool pid_to_guest(void *ctx, const struct etf_pid *w, struct etf_buf *b)
{
	uint64_t pid = pid_local(ctx, w);
	struct etf_pid g = { "", 0, (uint32_t)pid, (uint32_t)(pid >> 32), 0 };
	if (pid == 0)
		return false;
	etf_pid(b, &g);
	return true;
}

static bool pid_from_guest(void *ctx, const struct etf_pid *g, struct etf_buf *b)
{
	if (g->nlen != 0)
		return false;   /* a guest's pids are its own 64-bit names */
	return put_pid(ctx, b, (uint64_t)g->serial << 32 | g->id);
}

/* ---- refs ---- */

/* A reference from the wire. Its node is kept with monitors (xlink.c),
 * so a node name longer than any node's (DIST_NAME_MAX) makes it
 * malformed: an atom may hold 255 characters of up to 4 bytes. */
static int get_ref(struct etf_dec *dd, struct etf_ref *r)
{
	struct etf_dec save = *dd;
	if (etf_get_ref(dd, r) != 0)
		return -1;
	if (r->nlen > DIST_NAME_MAX) {
		*dd = save;
		return -1;
	}
	return 0;
}

static void put_local_ref(struct dist *d, struct etf_buf *b, uint64_t ref)
{
	struct etf_ref r = { d->name, d->nlen, d->creation, 2, { (uint32_t)ref, (uint32_t)(ref >> 32) } };
	etf_ref(b, &r);
}

static bool ref_is_local(struct dist *d, const struct etf_ref *r, uint64_t *ref)
{
	if (r->nlen != d->nlen || memcmp(r->node, d->name, d->nlen) != 0 || r->n != 2 ||
	    r->creation != d->creation)
		return false;
	*ref = (uint64_t)r->id[1] << 32 | r->id[0];
	return proc_pid_is_remote(*ref);   /* (every local ref has bit 63) */
}

/* ---- reasons ---- */

static void reason_put(struct etf_buf *b, const struct reason *r)
{
	size_t tl = reason_text_len(r);
	switch (r->kind) {
	case WISP_EXIT_NORMAL: etf_atom(b, "normal", 6); break;
	case WISP_EXIT_CODE: etf_int(b, r->code); break;
	case WISP_EXIT_KILLED: etf_atom(b, "killed", 6); break;
	case WISP_EXIT_NOPROC: etf_atom(b, "noproc", 6); break;
	case WISP_EXIT_SHUTDOWN: etf_atom(b, "shutdown", 8); break;
	case WISP_EXIT_NOCONNECTION: etf_atom(b, "noconnection", 12); break;
	case WISP_EXIT_TERM:
		if (tl > 0) {
			etf_raw(b, r->text, tl);
			break;
		}
		etf_atom(b, "unknown", 7);
		break;
	case WISP_EXIT_TRAP:
	case WISP_EXIT_LIMIT:
	default:
		etf_tuple(b, 2);
		if (r->kind == WISP_EXIT_LIMIT)
			etf_atom(b, "limit", 5);
		else if (r->code == WISP_TRAP_PANIC)
			etf_atom(b, "panic", 5);    /* {panic, <<"src/main.rs:3:5: boom">>} */
		else
			etf_atom(b, "trap", 4);
		etf_binary(b, r->text, (uint32_t)tl);
		break;
	}
}

/* A reason from the wire (the cursor moves past it). -1 if malformed. */
static int reason_get(struct etf_dec *dd, struct reason *r)
{
	static const struct { const char *atom; uint32_t kind; } atoms[] = {
		{ "normal", WISP_EXIT_NORMAL }, { "killed", WISP_EXIT_KILLED },
		{ "kill", WISP_EXIT_KILLED }, { "noproc", WISP_EXIT_NOPROC },
		{ "noconnection", WISP_EXIT_NOCONNECTION }, { "shutdown", WISP_EXIT_SHUTDOWN },
	};
	memset(r, 0, sizeof(*r));
	struct etf_dec t = *dd;
	const char *a;
	size_t alen;
	int64_t v;
	uint32_t arity;
	if (etf_get_atom(&t, &a, &alen) == 0) {
		for (size_t i = 0; i < sizeof(atoms) / sizeof(atoms[0]); i++)
			if (etf_atom_is(a, alen, atoms[i].atom)) {
				r->kind = atoms[i].kind;
				*dd = t;
				return 0;
			}
	} else if (etf_get_int(&t, &v) == 0 && v >= INT32_MIN && v <= INT32_MAX) {
		r->kind = v == 0 ? WISP_EXIT_NORMAL : WISP_EXIT_CODE;
		r->code = (int32_t)v;
		*dd = t;
		return 0;
	} else if (etf_tuple_hdr(&t, &arity) == 0 && arity == 2 && etf_get_atom(&t, &a, &alen) == 0 &&
	           (etf_atom_is(a, alen, "trap") || etf_atom_is(a, alen, "limit") ||
	            etf_atom_is(a, alen, "panic"))) {
		const unsigned char *text;
		uint32_t tl;
		if (etf_get_binary(&t, &text, &tl) == 0) {
			r->kind = etf_atom_is(a, alen, "limit") ? WISP_EXIT_LIMIT : WISP_EXIT_TRAP;
			if (etf_atom_is(a, alen, "panic"))
				r->code = WISP_TRAP_PANIC;
			size_t n = tl < sizeof(r->text) - 1 ? tl : sizeof(r->text) - 1;
			memcpy(r->text, text, n);
			*dd = t;
			return 0;
		}
	}
	/* Any other term: kept as it is, if it fits. */
	const unsigned char *start = dd->p;
	if (etf_skip(dd) != 0)
		return -1;
	size_t n = (size_t)(dd->p - start);
	r->kind = WISP_EXIT_TERM;
	if (n <= sizeof(r->text)) {
		memcpy(r->text, start, n);
		r->code = (int32_t)n;
	} else {
		struct etf_buf b = { 0 };
		etf_tuple(&b, 2);
		etf_atom(&b, "reason_too_long", 15);
		etf_uint(&b, n);
		if (!b.oom && b.len <= sizeof(r->text)) {
			memcpy(r->text, b.p, b.len);
			r->code = (int32_t)b.len;
		}
		etf_buf_free(&b);
	}
	return 0;
}

/* ---- links and monitors across a node (n->lock held) ---- */

static void x_note_link(struct node *n, uint64_t local, uint64_t remote)
{
	if (xset_link(&n->x, local, remote) == NULL)
		xset_add(&n->x, X_LINK, local, remote, 0, NULL, NULL, 0);
}

static void x_drop_link(struct node *n, uint64_t local, uint64_t remote)
{
	struct xlink *x = xset_link(&n->x, local, remote);
	if (x != NULL) {
		xset_remove(&n->x, x);
		free(x);
	}
}

/* Forget the monitor of kind with local ref; whether there was one. */
static bool x_drop_mon(struct node *n, enum xkind kind, uint64_t ref)
{
	struct xlink *x = xset_mon(&n->x, kind, ref);
	if (x == NULL)
		return false;
	xset_remove(&n->x, x);
	free(x);
	return true;
}

/* ---- frames out ---- */

/* Start a frame: length (patched by frame_end) and the pass-through byte. */
static void frame_begin(struct etf_buf *b)
{
	etf_u32(b, 0);
	etf_u8(b, PASS_THROUGH);
	etf_u8(b, ETF_VERSION);
}

static bool frame_end(struct etf_buf *b)
{
	if (b->oom || b->len - 4 > DIST_MAX_FRAME)
		return false;
	uint32_t n = (uint32_t)(b->len - 4);
	b->p[0] = (unsigned char)(n >> 24);
	b->p[1] = (unsigned char)(n >> 16);
	b->p[2] = (unsigned char)(n >> 8);
	b->p[3] = (unsigned char)n;
	return true;
}

/* The message part of a DATA frame. */
static bool put_payload(struct dist *d, struct etf_buf *b, const struct msg *m)
{
	etf_u8(b, ETF_VERSION);
	if (m->tag == WISP_TAG_TERM) {
		struct etf_dec t = { m->data, m->data + m->len };
		if (m->len < 1 || m->data[0] != ETF_VERSION)
			return false;
		t.p++;
		return etf_copy_mapping_pids(&t, b, pid_from_guest, d) == 0 && t.p == t.end;
	}
	etf_tuple(b, m->ref ? 3 : 2);
	etf_uint(b, m->tag);
	etf_binary(b, m->data, m->len);
	if (m->ref)
		etf_uint(b, m->ref);
	return true;
}

/* Encode m (addressed to a process of n) as a frame for a peer with
 * `flags`; name: a REG_SEND to that name instead. False if it cannot be
 * (a pid or payload no node can name): it is dropped. */
static bool encode(struct dist *d, uint64_t flags, const struct msg *m, const char *name,
                   size_t namelen, struct etf_buf *b)
{
	bool payload_exit = flags & DIST_FLAG_EXIT_PAYLOAD;
	bool ok = true;
	struct reason r;
	frame_begin(b);
	switch (m->kind) {
	case MSG_DATA:
		if (name != NULL) {
			etf_tuple(b, 4);
			etf_int(b, OP_REG_SEND);
			ok = put_pid(d, b, m->from);
			etf_atom(b, "", 0);
			etf_atom(b, name, namelen);
		} else if (flags & DIST_FLAG_SEND_SENDER) {
			etf_tuple(b, 3);
			etf_int(b, OP_SEND_SENDER);
			ok = put_pid(d, b, m->from) && put_pid(d, b, m->to);
		} else {
			etf_tuple(b, 3);
			etf_int(b, OP_SEND);
			etf_atom(b, "", 0);
			ok = put_pid(d, b, m->to);
		}
		return ok && put_payload(d, b, m) && frame_end(b);
	case SIG_LINK:
		etf_tuple(b, 3);
		etf_int(b, OP_LINK);
		ok = put_pid(d, b, m->from) && put_pid(d, b, m->to);
		break;
	case SIG_UNLINK:
		if (flags & DIST_FLAG_UNLINK_ID) {
			etf_tuple(b, 4);
			etf_int(b, OP_UNLINK_ID);
			etf_uint(b, m->ref);
		} else {
			etf_tuple(b, 3);
			etf_int(b, OP_UNLINK);
		}
		ok = put_pid(d, b, m->from) && put_pid(d, b, m->to);
		break;
	case SIG_EXIT_LINK:
	case SIG_EXIT:
	case SIG_KILL: {
		bool link = m->kind == SIG_EXIT_LINK;
		if (m->kind == SIG_KILL) {
			etf_tuple(b, 4);
			etf_int(b, OP_EXIT2);
			ok = put_pid(d, b, m->from) && put_pid(d, b, m->to);
			etf_atom(b, "kill", 4);
			break;
		}
		msg_get_reason(m, &r);
		etf_tuple(b, payload_exit ? 3 : 4);
		etf_int(b, payload_exit ? (link ? OP_PAYLOAD_EXIT : OP_PAYLOAD_EXIT2)
		                        : (link ? OP_EXIT : OP_EXIT2));
		ok = put_pid(d, b, m->from) && put_pid(d, b, m->to);
		if (payload_exit)
			etf_u8(b, ETF_VERSION);
		reason_put(b, &r);
		break;
	}
	case SIG_MONITOR:
	case SIG_DEMONITOR:
		etf_tuple(b, 4);
		etf_int(b, m->kind == SIG_MONITOR ? OP_MONITOR_P : OP_DEMONITOR_P);
		ok = put_pid(d, b, m->from) && put_pid(d, b, m->to);
		put_local_ref(d, b, m->ref);
		break;
	default:
		return false;
	}
	return ok && frame_end(b);
}

/* The DOWN a local process's end owes a peer's monitor (x): encoded from
 * the monitor's record. */
static bool encode_down(struct dist *d, uint64_t flags, const struct xlink *x,
                        const struct msg *m, struct etf_buf *b)
{
	struct reason r;
	msg_get_reason(m, &r);
	bool payload = flags & DIST_FLAG_EXIT_PAYLOAD;
	frame_begin(b);
	etf_tuple(b, payload ? 4 : 5);
	etf_int(b, payload ? OP_PAYLOAD_MONITOR_P_EXIT : OP_MONITOR_P_EXIT);
	bool ok = true;
	if (x->namelen > 0)
		etf_atom(b, x->name, x->namelen);
	else
		ok = put_pid(d, b, x->local);
	ok = ok && put_pid(d, b, x->remote);
	etf_ref(b, &x->eref);
	if (payload)
		etf_u8(b, ETF_VERSION);
	reason_put(b, &r);
	return ok && frame_end(b);
}

/* ---- losing a node ---- */

static void deliver_or_free(struct dist *d, uint64_t to, struct msg *m)
{
	if (m != NULL && !rt_deliver(d->rt, to, m))
		msg_free(m);
}

/* Tell the local side of every link and monitor in list v (xset_take's)
 * that their node is lost; v is freed. */
static void tell_lost(struct dist *d, struct xlink *v)
{
	for (struct xlink *x = v, *next; x != NULL; x = next) {
		next = x->chain[0];
		if (x->local == 0 || d->rt == NULL) {
			free(x);   /* (local 0: a monitor of a built-in name) */
			continue;
		}
		switch (x->kind) {
		case X_LINK:
			deliver_or_free(d, x->local, msg_reason(SIG_EXIT_LINK, x->local, x->remote, 0,
			                                        &reason_noconnection));
			break;
		case X_MON_OUT:
			deliver_or_free(d, x->local, msg_reason(MSG_DOWN, x->local, x->remote, x->ref,
			                                        &reason_noconnection));
			break;
		case X_MON_IN:
			deliver_or_free(d, x->local, msg_new(SIG_DEMONITOR, x->local, x->remote, 0,
			                                     x->ref, NULL, 0));
			break;
		}
		free(x);
	}
}

/* Node n is not reachable (n->lock held): its links, monitors and held
 * messages are taken out for the caller to answer after unlocking. */
static void take_lost(struct node *n, struct xlink **v, struct held **pend)
{
	*v = xset_take(&n->x);
	n->nbuiltin = 0;
	*pend = n->pend;
	n->pend = n->pend_last = NULL;
}

static void forget_node_spawns(struct dist *d, struct node *n);

/* ---- the remote layer's entry points (proc calls them) ---- */

/* Note what m changes in n's links and monitors (n->lock held). For a
 * DOWN, *down is the peer's monitor it answers (taken out: the caller
 * frees it), or the DOWN is not wanted (false). */
static bool note(struct node *n, const struct msg *m, struct xlink **down)
{
	switch (m->kind) {
	case SIG_LINK:
		x_note_link(n, m->from, m->to);
		break;
	case SIG_UNLINK:
	case SIG_EXIT_LINK:
		x_drop_link(n, m->from, m->to);
		break;
	case SIG_MONITOR:
		xset_add(&n->x, X_MON_OUT, m->from, m->to, m->ref, NULL, NULL, 0);
		break;
	case SIG_DEMONITOR:
		x_drop_mon(n, X_MON_OUT, m->ref);
		break;
	case MSG_DOWN:
		if ((*down = xset_mon(&n->x, X_MON_IN, m->tag)) == NULL)
			return false;
		xset_remove(&n->x, *down);
		break;
	}
	return true;
}

/* Whether m may be held too: the bytes held for all nodes being
 * connected (messages and their records) are bounded (DIST_MIN_HELD_BYTES,
 * or two of the largest messages), as a guest's sends are not charged to
 * it once they leave it. Not their number: while a new connection writes
 * out what was held, a sender that outpaces it holds more, and a count
 * (4,096 per node) dropped messages of a flood on a connection that
 * worked. Beyond, m is dropped as a send to a node that cannot be reached
 * would be, said once on stderr. */
static bool may_hold(struct dist *d, const struct node *n, size_t bytes)
{
	uint64_t cap = 2 * rt_max_message(d->rt);
	if (cap < DIST_MIN_HELD_BYTES)
		cap = DIST_MIN_HELD_BYTES;
	if (atomic_load(&d->held_bytes) + bytes <= cap)
		return true;
	if (!atomic_exchange(&d->told_held, true))
		fprintf(stderr, "wisp: dist: dropped a message to node %.*s: %llu bytes already wait "
		        "for nodes being connected (said once)\n", (int)n->nlen, n->name,
		        (unsigned long long)atomic_load(&d->held_bytes));
	return false;
}

/* Keep m (a send to `name` if not NULL) until n is connected (n->lock
 * held). False: too many held, or no memory (m is not consumed). */
static bool hold(struct dist *d, struct node *n, struct msg *m, const char *name, size_t namelen)
{
	if (name == NULL)
		namelen = 0;
	size_t bytes = msg_bytes(m) + sizeof(struct held) + namelen;
	if (!may_hold(d, n, bytes))
		return false;
	struct held *h = malloc(sizeof(*h) + namelen);
	if (h == NULL)
		return false;
	atomic_fetch_add(&d->held_bytes, bytes);
	h->bytes = bytes;
	h->next = NULL;
	h->m = m;
	h->namelen = namelen;
	if (namelen > 0)
		memcpy(h->name, name, namelen);
	if (n->pend_last)
		n->pend_last->next = h;
	else
		n->pend = h;
	n->pend_last = h;
	return true;
}

/* Redirections one send may follow (see "Processes that moved"): a
 * process moved that many times is reached through forwarders past them;
 * a peer's moves in a cycle or a long chain cost no more. */
#define MOVED_MAX_HOPS 8

static bool redirect(struct dist *d, struct node *n, struct msg *m, unsigned hops);
static void write_marks(struct node *n);
static void remote_loaded(void *ctx, const unsigned char hash[RT_HASH_BYTES], const void *bytes,
                          size_t len);
static void remote_forgot(void *ctx, const unsigned char hash[RT_HASH_BYTES]);
static int64_t moved_expire(struct dist *d, struct node *n, int64_t before, bool lost);

/* Encode and write m to n's connection, or hold it while n connects (a
 * send to an idle node starts connecting). Consumes m. hops: how many
 * redirections m may still follow if its addressee moved (see "Processes
 * that moved"); 0: m goes to its addressee as it is. */
static void route_at(struct dist *d, struct node *n, struct msg *m, const char *name,
                     size_t namelen, unsigned hops)
{
	pthread_mutex_lock(&n->lock);
	if (n->state == NODE_GONE) {
		pthread_mutex_unlock(&n->lock);
		/* A send by name goes on to the incarnation that replaced n. */
		struct node *cur = name != NULL ? node_current(d, n->name, n->nlen) : NULL;
		if (cur != NULL && cur != n) {
			route_at(d, cur, m, name, namelen, hops);
			return;
		}
		if (d->rt != NULL && name == NULL)
			rt_refuse(d->rt, m);   /* answers a link or monitor: NOPROC */
		else
			msg_free(m);
		return;
	}
	if (hops > 0 && name == NULL && m->kind == MSG_DATA && n->redirects && redirect(d, n, m, hops))
		return;   /* (n unlocked) */
	struct xlink *down = NULL;
	if (d->trace)
		fprintf(stderr, "route kind %u to %llx from %llx tag %llx node %u nx %u\n", m->kind,
		        (unsigned long long)m->to, (unsigned long long)m->from,
		        (unsigned long long)m->tag, n->index, n->x.n);
	if (name == NULL && !note(n, m, &down)) {
		pthread_mutex_unlock(&n->lock);
		msg_free(m);
		return;
	}
	if (name == NULL && (m->to & ((1ull << DIST_HANDLE_BITS) - 1)) == 0) {
		/* To the node's stand-in (a node monitor): bookkeeping only. (A
		 * send by name has no pid: m->to is 0.) */
		pthread_mutex_unlock(&n->lock);
		msg_free(m);
		return;
	}
	if (m->kind == SIG_UNLINK)
		m->ref = ++n->unlink_id;
	if (n->state != NODE_UP) {
		/* Erlang connects on first use: held until then. (A DOWN owed
		 * to the peer needs no connection: if there is none, its
		 * monitor is gone with it.) */
		bool dial = n->state == NODE_IDLE;
		if (m->kind != MSG_DOWN && hold(d, n, m, name, namelen))
			m = NULL;
		if (dial)
			n->state = NODE_CONNECTING;
		pthread_mutex_unlock(&n->lock);
		msg_free(m);
		free(down);
		if (dial)
			conn_dial(d, n);
		return;
	}
	uint64_t flags = n->conn->peer_flags;
	n->encoding++;   /* (a mark waits for it: write_marks) */
	pthread_mutex_unlock(&n->lock);

	struct etf_buf b = { 0 };
	bool ok = m->kind == MSG_DOWN ? encode_down(d, flags, down, m, &b)
	                              : encode(d, flags, m, name, namelen, &b);
	free(down);
	pthread_mutex_lock(&n->lock);
	if (ok && n->state == NODE_UP)
		conn_write(n->conn, b.p, b.len);
	if (--n->encoding == 0 && n->moved.marks_due > 0)
		write_marks(n);
	pthread_mutex_unlock(&n->lock);
	if (!ok && m->kind == MSG_DATA && m->tag == WISP_TAG_TERM) {
		fprintf(stderr, "wisp: dist: dropped a message to %.*s: its payload is not one Erlang "
		        "term in the guest's form (docs/abi.md)\n", (int)n->nlen, n->name);
	}
	etf_buf_free(&b);
	msg_free(m);
}

static void route(struct dist *d, struct node *n, struct msg *m, const char *name, size_t namelen)
{
	route_at(d, n, m, name, namelen, MOVED_MAX_HOPS);
}

static bool remote_deliver(void *ctx, struct msg *m)
{
	struct dist *d = ctx;
	struct node *n = node_of_pid(d, m->to);
	if (n == NULL || atomic_load(&d->stopping))
		return false;
	route(d, n, m, NULL, 0);
	return true;
}

/* A forwarder's message goes to its addressee as it is: were it
 * redirected to a process of this node, that could be the forwarder
 * itself (a peer's moves can say so), and m would go round for ever. */
static bool remote_forward(void *ctx, struct msg *m)
{
	struct dist *d = ctx;
	struct node *n = node_of_pid(d, m->to);
	if (n == NULL || atomic_load(&d->stopping))
		return false;
	route_at(d, n, m, NULL, 0, 0);
	return true;
}

static bool remote_alive(void *ctx, uint64_t pid)
{
	struct node *n = node_of_pid(ctx, pid);
	if (n == NULL)
		return false;
	pthread_mutex_lock(&n->lock);
	bool up = n->state == NODE_UP;
	pthread_mutex_unlock(&n->lock);
	return up;
}

/* ---- connections coming and going (conn.c) ---- */

/* Write what was held for n, in order, then mark it UP: sends meanwhile
 * are held too (n stays CONNECTING), so none overtakes an older one.
 * Encoding happens outside n's lock (it may take other nodes' locks). */
static void flush_held(struct dist *d, struct node *n)
{
	for (;;) {
		pthread_mutex_lock(&n->lock);
		struct held *h = n->pend;
		n->pend = n->pend_last = NULL;
		if (h == NULL || n->conn == NULL) {
			if (n->conn != NULL)
				n->state = NODE_UP;
			if (n->encoding == 0 && n->moved.marks_due > 0)
				write_marks(n);
			pthread_cond_broadcast(&n->changed);
			pthread_mutex_unlock(&n->lock);
			free_held(d, h);
			return;
		}
		uint64_t flags = n->conn->peer_flags;
		pthread_mutex_unlock(&n->lock);
		for (struct held *x = h; x != NULL; x = x->next) {
			struct etf_buf b = { 0 };
			if (encode(d, flags, x->m, x->namelen ? x->name : NULL, x->namelen, &b)) {
				pthread_mutex_lock(&n->lock);
				if (n->conn != NULL)
					conn_write(n->conn, b.p, b.len);
				pthread_mutex_unlock(&n->lock);
			}
			etf_buf_free(&b);
		}
		free_held(d, h);
	}
}

/* Split held messages: those sent by name (kept, in order, in *named),
 * and the others, whose addressees are dead: refused (a request's caller
 * hears so at once), their records freed. */
static void held_by_name(struct dist *d, struct held *h, struct held **named, struct held **last)
{
	struct held *dead = NULL;
	*named = *last = NULL;
	while (h != NULL) {
		struct held *next = h->next;
		h->next = NULL;
		if (h->namelen > 0) {
			if (*last)
				(*last)->next = h;
			else
				*named = h;
			*last = h;
		} else {
			if (d->rt != NULL)
				rt_refuse(d->rt, h->m);
			else
				msg_free(h->m);
			h->m = NULL;
			h->next = dead;
			dead = h;
		}
		h = next;
	}
	free_held(d, dead);
}

/* o, an entry of n's name for another incarnation (or for none yet:
 * creation 0), is superseded by n, the incarnation that connected: o is
 * GONE for good (its pids are dead). What o held for sends by name goes on
 * to n, ahead of what n holds (it was sent first); what it held for o's
 * processes is refused, and their links and monitors are told
 * noconnection. A connection o still has is cut: its peer died without
 * the socket saying so (a partition, a host that restarted). */
static void retire(struct dist *d, struct node *o, struct node *n)
{
	struct xlink *v;
	struct held *pend, *named, *last;
	pthread_mutex_lock(&o->lock);
	take_lost(o, &v, &pend);
	o->state = NODE_GONE;
	o->dialing = false;
	if (o->conn != NULL)
		conn_cut(o->conn, "a new incarnation of it connected");   /* (its reader closes it) */
	pthread_cond_broadcast(&o->changed);
	pthread_mutex_unlock(&o->lock);
	held_by_name(d, pend, &named, &last);
	if (named != NULL) {
		pthread_mutex_lock(&n->lock);
		if (n->state != NODE_UP) {
			last->next = n->pend;
			if (n->pend == NULL)
				n->pend_last = last;
			n->pend = named;
			named = NULL;
		}
		pthread_mutex_unlock(&n->lock);
		/* (n is up already: they go out behind what it sent.) */
		for (struct held *h = named; h != NULL; h = h->next) {
			route(d, n, h->m, h->name, h->namelen);
			h->m = NULL;
		}
		free_held(d, named);
	}
	tell_lost(d, v);
	forget_node_spawns(d, o);
	moved_expire(d, o, 0, true);
}

/* n's incarnation is connected: every other entry of its name is retired
 * (older incarnations, and the entry made for sends by name before any
 * incarnation was known). */
static void retire_others(struct dist *d, struct node *n)
{
	for (;;) {
		struct node *o = NULL;
		pthread_mutex_lock(&d->lock);
		for (struct node *x = *name_bucket(d, n->name, n->nlen); x != NULL && o == NULL;
		     x = x->next_name) {
			if (x == n || !same_name(x, n->name, n->nlen))
				continue;
			pthread_mutex_lock(&x->lock);
			if (x->state != NODE_GONE && x->creation != n->creation)
				o = x;
			pthread_mutex_unlock(&x->lock);
		}
		pthread_mutex_unlock(&d->lock);
		if (o == NULL)
			return;
		retire(d, o, n);
	}
}

bool dist_conn_up(struct dist *d, struct node *n, int fd, const struct dist_id *peer)
{
	if (atomic_load(&d->stopping))
		return false;
	/* A dial from an incarnation we knew that reached another one: the
	 * one we knew is dead, the connection is the new one's (and the old
	 * entry is retired below, with what it held). */
	pthread_mutex_lock(&n->lock);
	bool other = n->creation != peer->creation;
	pthread_mutex_unlock(&n->lock);
	/* (Creation 0, an entry made for sends by name: it learns the
	 * creation, unless that incarnation has an entry already.) */
	if (other && (n = dist_node_by_name(d, n->name, n->nlen, peer->creation, true)) == NULL)
		return false;
	struct conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return false;
	c->d = d;
	c->node = n;
	c->fd = fd;
	c->peer_flags = peer->flags;
	c->creation = peer->creation;
	c->token = conn_new_token(d, n);
	atomic_store(&c->last_rx_ms, conn_now_ms());
	atomic_store(&c->last_tx_ms, atomic_load(&c->last_rx_ms));
	pthread_mutex_lock(&d->lock);
	pthread_mutex_lock(&n->lock);
	/* (stopping, looked at under the lock: the I/O thread's last look at
	 * n->conn, when it stops, either sees c or comes before this.) */
	if (n->conn != NULL || n->state == NODE_GONE || atomic_load(&d->stopping)) {
		pthread_mutex_unlock(&n->lock);
		pthread_mutex_unlock(&d->lock);
		free(c);
		return false;
	}
	/* Published and armed under the lock: a reader woken at once waits
	 * for it and finds c; if arming fails, no one has seen c. */
	n->conn = c;
	if (conn_watch(d, c) != 0) {
		n->conn = NULL;
		pthread_mutex_unlock(&n->lock);
		pthread_mutex_unlock(&d->lock);
		free(c);
		return false;
	}
	n->state = NODE_CONNECTING;   /* UP once what was held is written */
	n->dialing = n->accepting = false;
	n->told_why = 0;
	pthread_mutex_unlock(&n->lock);
	if (n->by_guest) {
		n->by_guest = false;   /* (it exists: it counts against nobody) */
		d->nguest--;
	}
	pthread_mutex_unlock(&d->lock);
	retire_others(d, n);
	if (d->up_delay_ms > 0)
		usleep(d->up_delay_ms * 1000u);
	flush_held(d, n);
	return true;
}

/* Whether to say on stderr why n could not be reached (n->lock held):
 * when something was lost with it, or our own dial failed (a guest's
 * connect, spawn, migrate or monitor, or --connect, waits for it and
 * gets only a code); once per reason until it is up again, so that a
 * guest retrying in a loop does not flood stderr. */
static bool tell_setup_failed(struct dist *d, struct node *n, bool dial, bool lost,
                              const char *why)
{
	if (atomic_load(&d->stopping) || (!dial && !lost))
		return false;
	uint32_t h = (uint32_t)node_hash(d, why, strlen(why), 0) | 1;
	if (h == n->told_why)
		return false;
	n->told_why = h;
	return true;
}

void dist_setup_failed(struct dist *d, struct node *n, bool dial, const char *why)
{
	struct xlink *v;
	struct held *pend;
	pthread_mutex_lock(&n->lock);
	if (dial)
		n->dialing = false;
	else
		n->accepting = false;
	if (n->conn != NULL || n->dialing || n->accepting) {   /* the other one may win */
		pthread_mutex_unlock(&n->lock);
		return;
	}
	take_lost(n, &v, &pend);
	if (n->state != NODE_GONE)
		n->state = NODE_IDLE;
	bool tell = tell_setup_failed(d, n, dial, v != NULL || pend != NULL, why);
	pthread_cond_broadcast(&n->changed);
	pthread_mutex_unlock(&n->lock);
	if (tell)
		fprintf(stderr, "wisp: dist: cannot reach node %.*s: %s\n", (int)n->nlen, n->name, why);
	free_held(d, pend);
	tell_lost(d, v);
}

void dist_conn_down(struct dist *d, struct conn *c, const char *why)
{
	struct node *n = c->node;
	struct xlink *v;
	struct held *pend;
	pthread_mutex_lock(&n->lock);
	if (n->conn == c) {
		n->conn = NULL;
		if (n->state != NODE_GONE)
			n->state = NODE_IDLE;
	}
	take_lost(n, &v, &pend);
	pthread_cond_broadcast(&n->changed);
	pthread_mutex_unlock(&n->lock);
	if (!atomic_load(&d->stopping))
		fprintf(stderr, "wisp: dist: node %.*s disconnected: %s\n", (int)n->nlen, n->name, why);
	free_held(d, pend);
	tell_lost(d, v);
	forget_node_spawns(d, n);
	moved_expire(d, n, 0, true);
}

/* ---- frames in ---- */

/* A message from another node over this runtime's size limit is dropped
 * (as a send over the limit here would be refused): said on stderr, the
 * first time only. */
static void oversize(struct dist *d, size_t len)
{
	if (!atomic_exchange(&d->told_oversize, true))
		fprintf(stderr, "wisp: dist: dropped a message of %zu bytes from another node: over "
		        "this node's limit of %llu bytes per message (said once)\n", len,
		        (unsigned long long)rt_max_message(d->rt));
}

/* A DATA message for local `to` from the message term at dd. NULL if the
 * term is malformed (-1 then) or out of memory. */
static struct msg *msg_of_term(struct dist *d, struct etf_dec *dd, uint64_t to, uint64_t from,
                               int *bad)
{
	*bad = 0;
	struct etf_dec t = *dd;
	uint32_t arity, len;
	uint64_t tag, ref = 0;
	const unsigned char *data;
	if (etf_tuple_hdr(&t, &arity) == 0 && (arity == 2 || arity == 3) &&
	    etf_get_uint(&t, &tag) == 0 && tag != WISP_TAG_TERM &&
	    etf_get_binary(&t, &data, &len) == 0 &&
	    (arity == 2 || (etf_get_uint(&t, &ref) == 0 && proc_pid_is_remote(ref))) &&
	    t.p == t.end) {
		*dd = t;
		if (len > rt_max_message(d->rt)) {
			oversize(d, len);
			return NULL;
		}
		return msg_new(MSG_DATA, to, from, tag, ref, data, len);
	}
	struct etf_buf b = { 0 };
	etf_u8(&b, ETF_VERSION);
	if (etf_copy_mapping_pids(dd, &b, pid_to_guest, d) != 0 || dd->p != dd->end) {
		etf_buf_free(&b);
		*bad = 1;
		return NULL;
	}
	struct msg *m = NULL;
	if (b.len <= rt_max_message(d->rt))
		m = msg_new(MSG_DATA, to, from, WISP_TAG_TERM, 0, b.p, (uint32_t)b.len);
	else
		oversize(d, b.len);
	etf_buf_free(&b);
	return m;
}

static void write_frame(struct node *n, struct etf_buf *b)
{
	if (!frame_end(b))
		return;
	pthread_mutex_lock(&n->lock);
	if (n->conn != NULL)
		conn_write(n->conn, b->p, b->len);
	pthread_mutex_unlock(&n->lock);
}

/* The built-in net_kernel: answers {'$gen_call', {From, Tag}, {is_auth, _}}
 * with {Tag, yes}, which is what net_adm:ping waits for. */
static void net_kernel(struct dist *d, struct node *n, struct etf_dec *dd)
{
	struct etf_dec t = *dd;
	uint32_t arity;
	const char *a;
	size_t alen;
	struct etf_pid from;
	if (etf_tuple_hdr(&t, &arity) != 0 || arity != 3 || etf_get_atom(&t, &a, &alen) != 0 ||
	    !etf_atom_is(a, alen, "$gen_call") || etf_tuple_hdr(&t, &arity) != 0 || arity != 2 ||
	    etf_get_pid(&t, &from) != 0)
		return;
	const unsigned char *tag = t.p;
	if (etf_skip(&t) != 0)
		return;
	size_t taglen = (size_t)(t.p - tag);
	if (etf_tuple_hdr(&t, &arity) != 0 || arity != 2 || etf_get_atom(&t, &a, &alen) != 0 ||
	    !etf_atom_is(a, alen, "is_auth"))
		return;
	struct etf_buf b = { 0 };
	frame_begin(&b);
	etf_tuple(&b, 3);
	etf_int(&b, OP_SEND);
	etf_atom(&b, "", 0);
	etf_pid(&b, &from);
	etf_u8(&b, ETF_VERSION);
	etf_tuple(&b, 2);
	etf_raw(&b, tag, taglen);   /* (gen:call matches the reply by it) */
	etf_atom(&b, "yes", 3);
	write_frame(n, &b);
	etf_buf_free(&b);
}

/* A MONITOR_P from the peer: From monitors local `to` (or the process
 * registered as name) with the peer's ref. */
static void monitor_in(struct dist *d, struct node *n, uint64_t from, struct etf_dec *target,
                       const struct etf_ref *eref)
{
	const char *name = NULL;
	size_t namelen = 0;
	uint64_t to = 0;
	if (etf_get_atom(target, &name, &namelen) == 0) {
		if (namelen > 255)
			return;
		to = rt_whereis(d->rt, name, (uint32_t)namelen);
	} else if (get_pid(d, target, &to) != 0 || proc_pid_is_remote(to)) {
		return;
	}
	uint64_t ref = rt_new_ref(d->rt);
	if (d->trace)
		fprintf(stderr, "monitor_in from %llx to %llx ref %llx node %u\n",
		        (unsigned long long)from, (unsigned long long)to, (unsigned long long)ref, n->index);
	/* The built-in net_kernel never goes down: its monitors stay until
	 * demonitored, so a peer may hold only so many. */
	bool builtin = to == 0 && name != NULL && etf_atom_is(name, namelen, "net_kernel");
	pthread_mutex_lock(&n->lock);
	struct xlink *x = NULL;
	if (!builtin || n->nbuiltin < DIST_MAX_BUILTIN_MONITORS)
		x = xset_add(&n->x, X_MON_IN, to, from, ref, eref, name, namelen);
	if (x != NULL && builtin)
		n->nbuiltin++;
	pthread_mutex_unlock(&n->lock);
	if (x == NULL || builtin)
		return;
	struct msg *m = msg_new(SIG_MONITOR, to, from, 0, ref, NULL, 0);
	if (m != NULL && (to == 0 || !rt_deliver(d->rt, to, m)))
		rt_refuse(d->rt, m);   /* DOWN noproc, through route() */
	else if (m == NULL) {
		pthread_mutex_lock(&n->lock);
		x_drop_mon(n, X_MON_IN, ref);
		pthread_mutex_unlock(&n->lock);
	}
}

static void demonitor_in(struct dist *d, struct node *n, uint64_t from, const struct etf_ref *eref)
{
	uint64_t local = 0, ref = 0;
	pthread_mutex_lock(&n->lock);
	struct xlink *x = xset_mon_in(&n->x, from, eref);
	if (x != NULL) {
		local = x->local;
		ref = x->ref;
		if (local == 0)
			n->nbuiltin--;
		xset_remove(&n->x, x);
		free(x);
	}
	pthread_mutex_unlock(&n->lock);
	if (local != 0)
		deliver_or_free(d, local, msg_new(SIG_DEMONITOR, local, from, 0, ref, NULL, 0));
}

/* A link's or exit signal's end (EXIT, EXIT2 and their payload forms). */
static int exit_in(struct dist *d, struct node *n, int op, uint64_t from, uint64_t to,
                   struct etf_dec *rd)
{
	struct reason r;
	struct etf_dec peek = *rd;
	const char *a;
	size_t alen;
	bool kill = etf_get_atom(&peek, &a, &alen) == 0 && etf_atom_is(a, alen, "kill");
	if (reason_get(rd, &r) != 0)
		return -1;
	if (proc_pid_is_remote(to))
		return 0;
	bool link = op == OP_EXIT || op == OP_EXIT_TT || op == OP_PAYLOAD_EXIT ||
	            op == OP_PAYLOAD_EXIT_TT;
	struct msg *m;
	if (link) {
		pthread_mutex_lock(&n->lock);
		x_drop_link(n, to, from);
		pthread_mutex_unlock(&n->lock);
		m = msg_reason(SIG_EXIT_LINK, to, from, 0, &r);
	} else if (kill) {
		m = msg_new(SIG_KILL, to, from, 0, 0, NULL, 0);
	} else {
		m = msg_reason(SIG_EXIT, to, from, 0, &r);
	}
	deliver_or_free(d, to, m);
	return 0;
}

/* Deliver the message term at dd to local `to` from `from`. */
static int data_in(struct dist *d, uint64_t to, uint64_t from, struct etf_dec *dd)
{
	if (to == 0 || proc_pid_is_remote(to))
		return etf_skip(dd);
	int bad;
	struct msg *m = msg_of_term(d, dd, to, from, &bad);
	if (bad)
		return -1;
	deliver_or_free(d, to, m);
	return 0;
}

/* The message term after the control one: its version byte. */
static int payload_start(struct etf_dec *dd)
{
	if (etf_peek(dd) != ETF_VERSION)
		return -1;
	dd->p++;
	return 0;
}

/* ---- remote spawn (wisp nodes between them) ----
 *
 * A guest's spawn_on sends {spawn, ReqRef, Hash, Fn, Arg, Flags, MonRef}
 * to the name $wisp_spawn on the node it chose. That node, if it accepts
 * remote spawns, finds the module by hash or fetches its bytes from the
 * requester ({fetch, Hash} to $wisp_code there, answered {code, Hash,
 * Bytes} or {nocode, Hash}), checks them against the hash, compiles them on
 * a thread of its own, and makes the process, not started, with the link
 * and monitor asked for already in place; it answers {ReqRef, <<>>} sent
 * by the new process (or {ReqRef, <<Why>>} by nobody), and starts it when
 * the requester, holding its own side of the link and monitor, says {go,
 * Pid}. A go that never comes (the requester died or left) drops the
 * process after UNSTARTED_MS. Names under $wisp_ are this layer's: never
 * delivered to a guest. */

#define SYS_PREFIX "$wisp_"
#define SYS_PREFIX_LEN 6
#define UNSTARTED_MS 30000

/* A frame {REG_SEND, From, '', Name} + term, the term built by the caller
 * after this returns (then frame_end). From: this node's pid 0.0 when the
 * layer itself sends. */
static void reg_send_begin(struct dist *d, struct etf_buf *b, uint64_t from, const char *name)
{
	frame_begin(b);
	etf_tuple(b, 4);
	etf_int(b, OP_REG_SEND);
	if (from == 0 || !put_pid(d, b, from)) {
		struct etf_pid none = { d->name, d->nlen, 0, 0, d->creation };
		etf_pid(b, &none);
	}
	etf_atom(b, "", 0);
	etf_atom(b, name, strlen(name));
	etf_u8(b, ETF_VERSION);
}

/* The answer {ReqRef, <<Text>>} to a request, sent by `sender` (0: by
 * nobody, a refusal). */
static void spawn_answer(struct dist *d, struct node *n, uint64_t sender, uint64_t to,
                         uint64_t req_ref, const char *text)
{
	struct etf_buf b = { 0 };
	frame_begin(&b);
	if (sender != 0) {
		etf_tuple(&b, 3);
		etf_int(&b, OP_SEND_SENDER);
		put_pid(d, &b, sender);
	} else {
		etf_tuple(&b, 3);
		etf_int(&b, OP_SEND);
		etf_atom(&b, "", 0);
	}
	if (put_pid(d, &b, to)) {
		etf_u8(&b, ETF_VERSION);
		etf_tuple(&b, 2);
		etf_uint(&b, req_ref);
		etf_binary(&b, text, (uint32_t)strlen(text));
		write_frame(n, &b);
	}
	etf_buf_free(&b);
}

/* Make the process a request asks for (module loaded), unstarted, and
 * answer. */
static void spawn_now(struct dist *d, const struct spawn_req *r, engine_module *mod)
{
	struct node *n = r->n;
	/* Each holds a slot and a stack until its go: a node may not pile up
	 * more than DIST_MAX_UNSTARTED of them. */
	pthread_mutex_lock(&d->lock);
	bool room = n->nunstarted < DIST_MAX_UNSTARTED;
	if (room)
		n->nunstarted++;
	pthread_mutex_unlock(&d->lock);
	if (!room) {
		spawn_answer(d, n, 0, r->from, r->req_ref,
		             "limit: too many of that node's spawns are waiting for their go");
		return;
	}
	/* The names it is to take must be free here (a migrating process's). */
	for (size_t o = 0; o < r->names_len; o += strlen(r->names + o) + 1) {
		const char *nm = r->names + o;
		if (rt_whereis(d->rt, nm, (uint32_t)strlen(nm)) != 0) {
			char why[300];
			snprintf(why, sizeof(why), "name taken: %s is registered on that node", nm);
			pthread_mutex_lock(&d->lock);
			n->nunstarted--;
			pthread_mutex_unlock(&d->lock);
			spawn_answer(d, n, 0, r->from, r->req_ref, why);
			return;
		}
	}
	uint64_t ref = (r->flags & WISP_SPAWN_MONITOR) ? rt_new_ref(d->rt) : 0;
	int err = 0;
	struct proc *p = rt_spawn_unstarted(d->rt, mod, r->fn, r->arg, r->len,
	                                    (r->flags & WISP_SPAWN_LINK) ? r->from : 0,
	                                    ref ? r->from : 0, ref, &err);
	struct unstarted *u = p ? calloc(1, sizeof(*u)) : NULL;
	if (u == NULL) {
		pthread_mutex_lock(&d->lock);
		n->nunstarted--;
		pthread_mutex_unlock(&d->lock);
		if (p != NULL)
			rt_drop_unstarted(p);
		spawn_answer(d, n, 0, r->from, r->req_ref,
		             err == -EAGAIN ? "limit: the node's process limit is reached"
		             : err == -EINVAL ? "the module has no spawn entry"
		                              : "out of memory");
		return;
	}
	uint64_t pid = rt_unstarted_pid(p);
	pthread_mutex_lock(&n->lock);
	if (r->flags & WISP_SPAWN_LINK)
		x_note_link(n, pid, r->from);
	if (ref != 0) {
		struct etf_ref er = { n->name, n->nlen, n->creation, 2,
		                      { (uint32_t)r->mon_ref, (uint32_t)(r->mon_ref >> 32) } };
		xset_add(&n->x, X_MON_IN, pid, r->from, ref, &er, NULL, 0);
	}
	pthread_mutex_unlock(&n->lock);
	*u = (struct unstarted){ NULL, p, pid, n, conn_now_ms() + UNSTARTED_MS, NULL, 0 };
	if (r->names_len > 0 && (u->names = malloc(r->names_len)) != NULL) {
		memcpy(u->names, r->names, r->names_len);
		u->names_len = r->names_len;
	}
	pthread_mutex_lock(&d->lock);
	u->next = d->unstarted;
	d->unstarted = u;
	pthread_mutex_unlock(&d->lock);
	spawn_answer(d, n, pid, r->from, r->req_ref, "");
}

static void drop_unstarted(struct unstarted *u)
{
	pthread_mutex_lock(&u->n->lock);
	xset_forget_local(&u->n->x, u->pid);
	pthread_mutex_unlock(&u->n->lock);
	rt_drop_unstarted(u->p);
	free(u->names);
	free(u);
}

/* Take the unstarted process pid asked for by node n (or, with pid 0,
 * every one of n's whose go is overdue at now, or every one of n's if
 * n is lost: all set). */
static struct unstarted *take_unstarted(struct dist *d, struct node *n, uint64_t pid, int64_t now,
                                        bool all)
{
	struct unstarted *out = NULL;
	pthread_mutex_lock(&d->lock);
	for (struct unstarted **pp = &d->unstarted; *pp != NULL;) {
		struct unstarted *u = *pp;
		bool take = pid ? (u->pid == pid && u->n == n)
		                : (all ? u->n == n : u->deadline_ms <= now);
		if (take) {
			u->n->nunstarted--;
			*pp = u->next;
			u->next = out;
			out = u;
		} else {
			pp = &u->next;
		}
	}
	pthread_mutex_unlock(&d->lock);
	return out;
}

/* Which of the requests waiting for a module take_waiting takes: all
 * conditions set hold. */
struct wait_sel {
	const unsigned char *hash;   /* for this module */
	const struct node *n;        /* from this node */
	bool idle;                   /* whose module is not being compiled */
	int64_t now;                 /* > 0: whose deadline passed */
};

static bool selected(const struct spawn_req *r, const struct wait_sel *s)
{
	return (s->hash == NULL || memcmp(r->hash, s->hash, RT_HASH_BYTES) == 0) &&
	       (s->n == NULL || r->n == s->n) && (!s->idle || !r->loading) &&
	       (s->now == 0 || r->deadline_ms <= s->now);
}

static uint64_t req_bytes(const struct spawn_req *r)
{
	return sizeof(*r) + r->len + r->names_len;
}

/* The waiting requests s selects, taken out (their nodes' counts too). */
static struct spawn_req *take_waiting(struct dist *d, const struct wait_sel *s)
{
	struct spawn_req *out = NULL;
	pthread_mutex_lock(&d->lock);
	for (struct spawn_req **pp = &d->waiting; *pp != NULL;) {
		struct spawn_req *r = *pp;
		if (selected(r, s)) {
			*pp = r->next;
			r->next = out;
			out = r;
			r->n->nspawn--;
			r->n->spawn_bytes -= req_bytes(r);
		} else {
			pp = &r->next;
		}
	}
	pthread_mutex_unlock(&d->lock);
	return out;
}

static void answer_all(struct dist *d, struct spawn_req *r, engine_module *mod, const char *why);

void dist_tick(struct dist *d, int64_t now_ms)
{
	struct unstarted *u = take_unstarted(d, NULL, 0, now_ms, false);
	while (u != NULL) {
		struct unstarted *next = u->next;
		drop_unstarted(u);
		u = next;
	}
	/* Requests whose module never came: the requester stopped waiting. */
	struct wait_sel late = { .idle = true, .now = now_ms };
	answer_all(d, take_waiting(d, &late), NULL, "timed out waiting for the module");
}

/* What a node that is lost leaves behind here: its spawn requests, the
 * processes waiting for its go, and our requests waiting for its answer
 * (answered now: the requester waited out its whole timeout). */
static struct asked *take_asked(struct dist *d, const struct node *n, uint64_t req_ref);

static void forget_node_spawns(struct dist *d, struct node *n)
{
	static const char lost[] = "unreachable: the node was lost before it answered";
	for (struct asked *a = take_asked(d, n, 0), *next; a != NULL; a = next) {
		next = a->next;
		deliver_or_free(d, a->from, msg_new(MSG_DATA, a->from, 0, a->req_ref, 0, lost,
		                                    sizeof(lost) - 1));
		free(a);
	}
	struct wait_sel its = { .n = n };
	struct spawn_req *drop = take_waiting(d, &its);
	while (drop != NULL) {
		struct spawn_req *next = drop->next;
		free(drop);
		drop = next;
	}
	struct unstarted *u = take_unstarted(d, n, 0, 0, true);
	while (u != NULL) {
		struct unstarted *next = u->next;
		drop_unstarted(u);
		u = next;
	}
}

static const struct dist_code *code_find(struct dist *d, const unsigned char *hash)
{
	for (size_t i = 0; i < d->ncode; i++)
		if (memcmp(d->code[i].hash, hash, RT_HASH_BYTES) == 0)
			return &d->code[i];
	return NULL;
}

/* Keep bytes as hash's (d->lock held); false if no memory. */
static bool code_add(struct dist *d, const unsigned char *hash, const unsigned char *bytes,
                     size_t len, bool owned)
{
	if (code_find(d, hash) != NULL)
		return false;
	if (d->ncode == d->capcode) {
		size_t cap = d->capcode ? d->capcode * 2 : 4;
		struct dist_code *v = realloc(d->code, cap * sizeof(*v));
		if (v == NULL)
			return false;
		d->code = v;
		d->capcode = cap;
	}
	struct dist_code *c = &d->code[d->ncode++];
	memcpy(c->hash, hash, RT_HASH_BYTES);
	c->bytes = bytes;
	c->len = len;
	c->owned = owned;
	return true;
}

static void answer_all(struct dist *d, struct spawn_req *r, engine_module *mod, const char *why)
{
	while (r != NULL) {
		struct spawn_req *next = r->next;
		if (mod != NULL)
			spawn_now(d, r, mod);
		else
			spawn_answer(d, r->n, 0, r->from, r->req_ref, why);
		free(r);
		r = next;
	}
}

struct load_job {
	struct dist *d;
	unsigned char hash[RT_HASH_BYTES];
	size_t len;
	unsigned char bytes[];
};

/* Free c's bytes if they are ours (inside their load_job). */
static void code_free(struct dist_code *c)
{
	if (c->owned)
		free((char *)c->bytes - offsetof(struct load_job, bytes));
}

/* A module arrived: check, compile, spawn what waited for it (its own
 * thread: compiling takes long). */
static void *load_main(void *arg)
{
	struct load_job *j = arg;
	struct dist *d = j->d;
	char err[512] = "";
	engine_module *mod = NULL;
	int rc = rt_module_load(d->rt, j->hash, j->bytes, j->len, "(a module from another node)",
	                        &mod, err, sizeof(err));
	bool kept = false;
	if (rc == 0) {
		pthread_mutex_lock(&d->lock);
		kept = code_add(d, j->hash, j->bytes, j->len, true);
		pthread_mutex_unlock(&d->lock);
	}
	char why[600];
	snprintf(why, sizeof(why), "cannot load the module: %s", err);
	struct wait_sel for_it = { .hash = j->hash };
	answer_all(d, take_waiting(d, &for_it), rc == 0 ? mod : NULL, why);
	if (rc == 0)
		rt_module_put(d->rt, mod);
	/* (Kept: the bytes stay, in j, while the module is loaded.) */
	if (!kept)
		free(j);
	conn_thread_done(d);
	return NULL;
}

/* Queue r until its module arrives (d->lock held): NULL, with *fetch if
 * r's node must be asked for it; or why r is refused. Modules fetched at
 * once and modules kept are bounded (DIST_MAX_FETCHES, _MODULES). */
static const char *wait_for_module(struct dist *d, struct spawn_req *r, bool *fetch)
{
	bool known = false, asked = false, loading = false;
	unsigned char seen[DIST_MAX_FETCHES][RT_HASH_BYTES];
	uint32_t nseen = 0;
	for (struct spawn_req *w = d->waiting; w != NULL; w = w->next) {
		bool same = memcmp(w->hash, r->hash, RT_HASH_BYTES) == 0;
		known |= same;
		asked |= same && w->n == r->n;
		loading |= same && w->loading;
		bool counted = false;
		for (uint32_t i = 0; i < nseen && !counted; i++)
			counted = memcmp(seen[i], w->hash, RT_HASH_BYTES) == 0;
		if (!counted && nseen < DIST_MAX_FETCHES)
			memcpy(seen[nseen++], w->hash, RT_HASH_BYTES);
	}
	if (!known && nseen >= DIST_MAX_FETCHES)
		return "limit: the node is fetching too many other modules; try again";
	if (!known && d->ncode >= DIST_MAX_MODULES)
		return "limit: the node holds as many modules from other nodes as it keeps";
	r->deadline_ms = conn_now_ms() + DIST_SPAWN_WAIT_MS;
	r->next = d->waiting;
	d->waiting = r;
	r->n->nspawn++;
	r->n->spawn_bytes += req_bytes(r);
	*fetch = !asked && !loading;
	return NULL;
}

/* {spawn, ReqRef, Hash, Fn, Arg, Flags, MonRef} or {go, Pid} */
static int spawn_in(struct dist *d, struct node *n, const struct etf_pid *wfrom,
                    struct etf_dec *dd)
{
	uint32_t arity, arglen, hlen;
	const char *a;
	size_t alen;
	uint64_t req_ref, fn, flags, mon_ref, child;
	const unsigned char *hash, *arg;
	if (etf_tuple_hdr(dd, &arity) != 0 || etf_get_atom(dd, &a, &alen) != 0)
		return -1;
	if (arity == 2 && etf_atom_is(a, alen, "go")) {
		if (get_pid(d, dd, &child) != 0)
			return -1;
		struct unstarted *u = take_unstarted(d, n, child, 0, false);
		if (u != NULL) {
			rt_start_unstarted(u->p);
			for (size_t o = 0; o < u->names_len; o += strlen(u->names + o) + 1) {
				const char *nm = u->names + o;
				if (rt_register(u->p, nm, (uint32_t)strlen(nm)) != 0)
					fprintf(stderr, "wisp: dist: a process that moved here could not take "
					        "the name %s\n", nm);
			}
			free(u->names);
			free(u);
		}
		return 0;
	}
	uint32_t nnames;
	if (arity != 8 || !etf_atom_is(a, alen, "spawn") || etf_get_uint(dd, &req_ref) != 0 ||
	    etf_get_binary(dd, &hash, &hlen) != 0 || hlen != RT_HASH_BYTES ||
	    etf_get_uint(dd, &fn) != 0 || fn > UINT32_MAX || etf_get_binary(dd, &arg, &arglen) != 0 ||
	    etf_get_uint(dd, &flags) != 0 || etf_get_uint(dd, &mon_ref) != 0 ||
	    etf_list_hdr(dd, &nnames) != 0 || nnames > 64)
		return -1;
	/* The names, as "a\0b\0" (each 1..255 bytes, no NUL in one). */
	char names[64 * 256];
	size_t names_len = 0;
	for (uint32_t i = 0; i < nnames; i++) {
		const unsigned char *nm;
		uint32_t nl;
		if (etf_get_binary(dd, &nm, &nl) != 0 || nl == 0 || nl > 255 || memchr(nm, 0, nl))
			return -1;
		memcpy(names + names_len, nm, nl);
		names[names_len + nl] = '\0';
		names_len += nl + 1;
	}
	if (nnames > 0 && (etf_peek(dd) != ETF_NIL || (dd->p++, false)))
		return -1;
	uint64_t from = pid_local(d, wfrom);
	if (from == 0 || !proc_pid_is_remote(from))
		return -1;
	if (!d->cfg.allow_remote_spawn) {
		/* The requester gets EPERM; whoever runs this node learns why
		 * its spawns fail (once: a peer may ask again and again). */
		if (!atomic_exchange(&d->told_no_spawn, true))
			fprintf(stderr, "wisp: dist: refused a remote spawn from %.*s: this node runs "
			        "without --allow-remote-spawn (said once)\n", (int)n->nlen, n->name);
		spawn_answer(d, n, 0, from, req_ref,
		             "not allowed: that node does not accept remote spawns (--allow-remote-spawn)");
		return 0;
	}
	if (flags & ~(uint64_t)(WISP_SPAWN_LINK | WISP_SPAWN_MONITOR) ||
	    arglen > rt_max_message(d->rt)) {
		spawn_answer(d, n, 0, from, req_ref, "bad request (flags or argument size)");
		return 0;
	}
	struct spawn_req *r = malloc(sizeof(*r) + arglen + names_len);
	if (r == NULL) {
		spawn_answer(d, n, 0, from, req_ref, "out of memory");
		return 0;
	}
	*r = (struct spawn_req){ .n = n, .from = from, .req_ref = req_ref, .mon_ref = mon_ref,
	                         .fn = (uint32_t)fn, .flags = (uint32_t)flags, .len = arglen,
	                         .names = (char *)r->arg + arglen, .names_len = names_len };
	memcpy(r->names, names, names_len);
	memcpy(r->hash, hash, RT_HASH_BYTES);
	memcpy(r->arg, arg, arglen);
	engine_module *mod = rt_module_find(d->rt, r->hash);
	if (mod != NULL) {
		spawn_now(d, r, mod);
		rt_module_put(d->rt, mod);
		free(r);
		return 0;
	}
	/* Not here: wait for it, and ask the requester for it unless it was
	 * asked already or the module is being compiled. */
	const char *refused = NULL;
	bool fetch = false;
	pthread_mutex_lock(&d->lock);
	if (n->nspawn >= DIST_MAX_SPAWN_WAITING ||
	    n->spawn_bytes + req_bytes(r) > DIST_MAX_SPAWN_BYTES) {
		refused = "limit: too many spawn requests from your node wait for their module here";
	} else {
		refused = wait_for_module(d, r, &fetch);
	}
	pthread_mutex_unlock(&d->lock);
	if (refused != NULL) {
		spawn_answer(d, n, 0, from, req_ref, refused);
		free(r);
		return 0;
	}
	if (fetch) {
		struct etf_buf b = { 0 };
		reg_send_begin(d, &b, 0, SYS_PREFIX "code");
		etf_tuple(&b, 2);
		etf_atom(&b, "fetch", 5);
		etf_binary(&b, hash, RT_HASH_BYTES);
		write_frame(n, &b);
		etf_buf_free(&b);
	}
	return 0;
}

/* Whether the bytes n sends as module hash are to be loaded: a request
 * from n waits for it (so n was asked) and no copy is being compiled
 * already. Then every request for it is marked loading. Bytes nobody asked
 * for are not compiled (nor kept), whatever the node's policy. */
static bool code_wanted(struct dist *d, struct node *n, const unsigned char *hash)
{
	bool asked = false, loading = false;
	pthread_mutex_lock(&d->lock);
	for (struct spawn_req *w = d->waiting; w != NULL; w = w->next)
		if (memcmp(w->hash, hash, RT_HASH_BYTES) == 0) {
			asked |= w->n == n;
			loading |= w->loading;
		}
	bool wanted = asked && !loading;
	for (struct spawn_req *w = d->waiting; wanted && w != NULL; w = w->next)
		if (memcmp(w->hash, hash, RT_HASH_BYTES) == 0)
			w->loading = true;
	pthread_mutex_unlock(&d->lock);
	return wanted;
}

/* {fetch, Hash}, {code, Hash, Bytes} or {nocode, Hash} */
static int code_in(struct dist *d, struct node *n, struct etf_dec *dd)
{
	uint32_t arity, hlen, len = 0;
	const char *a;
	size_t alen;
	const unsigned char *hash, *bytes = NULL;
	if (etf_tuple_hdr(dd, &arity) != 0 || etf_get_atom(dd, &a, &alen) != 0 ||
	    etf_get_binary(dd, &hash, &hlen) != 0 || hlen != RT_HASH_BYTES)
		return -1;
	if (arity == 2 && etf_atom_is(a, alen, "fetch")) {
		struct etf_buf b = { 0 };
		reg_send_begin(d, &b, 0, SYS_PREFIX "code");
		pthread_mutex_lock(&d->lock);
		const struct dist_code *c = code_find(d, hash);
		etf_tuple(&b, c ? 3 : 2);
		etf_atom(&b, c ? "code" : "nocode", c ? 4 : 6);
		etf_binary(&b, hash, RT_HASH_BYTES);
		if (c != NULL)
			etf_binary(&b, c->bytes, (uint32_t)c->len);
		pthread_mutex_unlock(&d->lock);
		write_frame(n, &b);
		etf_buf_free(&b);
		return 0;
	}
	if (arity == 2 && etf_atom_is(a, alen, "nocode")) {
		/* (Only the requests this node made: it speaks for no other.) */
		struct wait_sel its = { .hash = hash, .n = n, .idle = true };
		answer_all(d, take_waiting(d, &its), NULL, "the requesting node does not have the module");
		return 0;
	}
	if (arity != 3 || !etf_atom_is(a, alen, "code") || etf_get_binary(dd, &bytes, &len) != 0)
		return -1;
	if (!code_wanted(d, n, hash))
		return 0;   /* not asked for, or already here: ignored */
	struct wait_sel for_it = { .hash = hash };
	struct load_job *j = malloc(sizeof(*j) + len);
	if (j == NULL) {
		answer_all(d, take_waiting(d, &for_it), NULL, "out of memory for the module");
		return 0;
	}
	j->d = d;
	memcpy(j->hash, hash, RT_HASH_BYTES);
	j->len = len;
	memcpy(j->bytes, bytes, len);
	if (conn_thread(d, load_main, j) != 0) {
		free(j);
		answer_all(d, take_waiting(d, &for_it), NULL, "no thread to load the module");
	}
	return 0;
}

/* ---- processes that moved ----
 *
 * A process that moved (wisp_node.migrate) leaves a forwarder under its
 * old pid on node A, passing every message on to its new incarnation on
 * node B. Senders on a third node N that still use the old pid are told
 * where it went, so that their later messages go to B directly, without
 * one message of a sender overtaking an older one on the way:
 *
 *  1. A's forwarder passes on a message from N: A tells N, once,
 *     {moved, Old, New} (the sender is Old itself: a node speaks for its
 *     own processes only).
 *  2. N holds its later sends to Old (MARKED) and sends A a mark behind
 *     everything it sent Old: {mark, Old}. A puts the mark in Old's
 *     mailbox (SIG_MARK), so the forwarder meets it after every message
 *     N sent before it, all passed on to B by then.
 *  3. The forwarder tells B, behind those messages on the A-B
 *     connection: {relay, New, Marker} (from Old); B answers N, once they
 *     are in New's mailbox: {ready, Old, New} (from New).
 *  4. N sends what it held to New, in order (FLUSHING), then every later
 *     send to Old (ACTIVE).
 *
 * The mark is written only when no send to A is between its check and
 * its write (node.encoding), so none of N's messages to Old can follow
 * it. A peer that never answers costs a wait: after MOVED_WAIT_MS (or
 * when more than MOVED_MAX_HELD are held) N sends what it held by the old
 * pid after all (DRAINING) and goes on doing so (ABANDONED); the bounds
 * hold what a peer can make N hold. If A is lost, what is held goes to
 * New. A send follows at most MOVED_MAX_HOPS redirections (a process
 * that moved again is reached through its forwarders past them; a peer's
 * moves in a cycle are not followed without end), and what a forwarder
 * passes on is never redirected (remote_forward: a redirection to a
 * process of this node could hand it back to the forwarder). Only
 * messages are redirected: links, monitors and exit signals
 * stay with the old pid, whose forwarder passes them on and ends with
 * the new incarnation. */

#define MOVED_WAIT_MS 5000
#define MOVED_MAX_WAITING 16          /* entries of one node waiting at once */
#define MOVED_MAX_HELD 4096           /* messages held for one of them */
#define MOVED_MAX_HELD_BYTES (1u << 20)

/* m, addressed to a process that moved, goes to where it is now,
 * following at most hops more redirections. */
static void to_now(struct dist *d, struct msg *m, uint64_t now, unsigned hops)
{
	m->to = now;
	if (proc_pid_is_remote(now)) {
		struct node *t = node_of_pid(d, now);
		if (t != NULL)
			route_at(d, t, m, NULL, 0, hops);
		else
			msg_free(m);
	} else if (d->rt == NULL || !rt_deliver(d->rt, now, m)) {
		msg_free(m);
	}
}

/* Write the marks due on n's connection (n->lock held, nothing being
 * encoded for n). */
static void write_marks(struct node *n)
{
	if (n->state != NODE_UP)
		return;   /* (flush_held writes them once it is) */
	for (uint32_t i = 0; i < n->moved.cap && n->moved.marks_due > 0; i++) {
		struct moved *e = &n->moved.v[i];
		if (e->old == 0 || e->mark == NULL)
			continue;
		conn_write(n->conn, e->mark, e->marklen);
		free(e->mark);
		e->mark = NULL;
		n->moved.marks_due--;
	}
}

/* Send what is held for old (an entry FLUSHING or DRAINING), in order,
 * until none is left: then ACTIVE or ABANDONED. Sends meanwhile are held
 * behind (redirect). */
static void release(struct dist *d, struct node *n, uint64_t old)
{
	for (;;) {
		pthread_mutex_lock(&n->lock);
		struct moved *e = moved_find(&n->moved, old);
		struct held *q = e->q;
		e->q = e->q_last = NULL;
		e->nq = 0;
		e->qbytes = 0;
		bool flushing = e->state == MOVED_FLUSHING;
		uint64_t now = e->now;
		if (q == NULL) {
			e->state = flushing ? MOVED_ACTIVE : MOVED_ABANDONED;
			n->moved.nwaiting--;
		}
		pthread_mutex_unlock(&n->lock);
		if (q == NULL)
			return;
		for (struct held *h = q; h != NULL; h = h->next) {
			if (flushing)
				to_now(d, h->m, now, MOVED_MAX_HOPS - 1);
			else
				route_at(d, n, h->m, NULL, 0, 0);
			h->m = NULL;
		}
		free_held(d, q);
	}
}

/* m is to a pid of n that has an entry (n->lock held): sent to where it
 * is now (following hops - 1 more redirections at most), held behind the
 * others, or (false) sent as it is. Unlocks n if true. */
static bool redirect(struct dist *d, struct node *n, struct msg *m, unsigned hops)
{
	struct moved *e = moved_find(&n->moved, m->to);
	if (e == NULL || e->state == MOVED_TOLD || e->state == MOVED_ABANDONED)
		return false;
	uint64_t old = e->old, now = e->now;
	if (e->state == MOVED_ACTIVE) {
		pthread_mutex_unlock(&n->lock);
		to_now(d, m, now, hops - 1);
		return true;
	}
	size_t bytes = msg_bytes(m) + sizeof(struct held);
	struct held *h = may_hold(d, n, bytes) ? malloc(sizeof(*h)) : NULL;
	bool give_up = e->state == MOVED_MARKED &&
	               (h == NULL || conn_now_ms() > e->deadline_ms || e->nq >= MOVED_MAX_HELD ||
	                e->qbytes + bytes > MOVED_MAX_HELD_BYTES);
	if (h != NULL) {
		atomic_fetch_add(&d->held_bytes, bytes);
		*h = (struct held){ .m = m, .bytes = bytes };
		if (e->q_last)
			e->q_last->next = h;
		else
			e->q = h;
		e->q_last = h;
		e->nq++;
		e->qbytes += bytes;
		m = NULL;
	}
	if (give_up)
		e->state = MOVED_DRAINING;
	pthread_mutex_unlock(&n->lock);
	if (m != NULL)
		route_at(d, n, m, NULL, 0, 0);   /* (no memory to hold it) */
	if (give_up)
		release(d, n, old);
	return true;
}

/* Every entry of n waiting since before `before` (or all if lost) stops
 * waiting: its held messages go by the old pid (DRAINING), or to the new
 * one if n is lost (FLUSHING: the old pid's node cannot pass them on).
 * When the next of the others' waits ends (INT64_MAX: none waits). */
static int64_t moved_expire(struct dist *d, struct node *n, int64_t before, bool lost)
{
	uint64_t olds[MOVED_MAX_WAITING];
	uint32_t k = 0;
	int64_t next = INT64_MAX;
	pthread_mutex_lock(&n->lock);
	for (uint32_t i = 0; i < n->moved.cap && n->moved.nwaiting > 0; i++) {
		struct moved *e = &n->moved.v[i];
		if (e->old == 0 || e->state != MOVED_MARKED)
			continue;
		if ((!lost && e->deadline_ms > before) || k == MOVED_MAX_WAITING) {
			next = e->deadline_ms < next ? e->deadline_ms : next;
			continue;
		}
		e->state = lost ? MOVED_FLUSHING : MOVED_DRAINING;
		if (lost && e->mark != NULL) {
			free(e->mark);
			e->mark = NULL;
			n->moved.marks_due--;
		}
		olds[k++] = e->old;
	}
	pthread_mutex_unlock(&n->lock);
	for (uint32_t i = 0; i < k; i++)
		release(d, n, olds[i]);
	return next;
}

int64_t dist_moved_tick(struct dist *d, struct node *n, int64_t now_ms)
{
	pthread_mutex_lock(&n->lock);
	bool waiting = n->moved.nwaiting > 0;
	pthread_mutex_unlock(&n->lock);
	return waiting ? moved_expire(d, n, now_ms, false) : INT64_MAX;
}

/* {Atom, P1} or {Atom, P1, P2} (p2 0: none) from `from` to the system
 * name `name` on n, sent as any message is (held while n connects, in
 * order with what the calling thread sent n before). */
static void sys_send(struct dist *d, struct node *n, uint64_t from, const char *name,
                     const char *atom, uint64_t p1, uint64_t p2)
{
	struct etf_buf b = { 0 };
	etf_u8(&b, ETF_VERSION);
	etf_tuple(&b, p2 ? 3 : 2);
	etf_atom(&b, atom, strlen(atom));
	for (int i = 0; i < (p2 ? 2 : 1); i++) {
		uint64_t pid = i ? p2 : p1;
		etf_pid(&b, &(struct etf_pid){ "", 0, (uint32_t)pid, (uint32_t)(pid >> 32), 0 });
	}
	struct msg *m = b.oom ? NULL : msg_new(MSG_DATA, 0, from, WISP_TAG_TERM, 0, b.p,
	                                       (uint32_t)b.len);
	etf_buf_free(&b);
	if (m != NULL)
		route(d, n, m, name, strlen(name));
}

/* The forwarder old passed on a message from sender to to: sender's node
 * is told where old went, once (proc_remote.moved), if it is connected. A
 * message's sender is the word of the node that sent it: one naming a
 * node never reached would have this node connect to it (to any host a
 * peer names), and one naming an incarnation gone would tell the one
 * that replaced it. */
static void remote_moved(void *ctx, uint64_t old, uint64_t to, uint64_t sender)
{
	struct dist *d = ctx;
	struct node *ns = node_of_pid(d, sender);
	if (ns == NULL)
		return;
	pthread_mutex_lock(&ns->lock);
	bool tell = ns->state == NODE_UP && moved_find(&ns->moved, old) == NULL &&
	            moved_add(&ns->moved, old, to, MOVED_TOLD) != NULL;
	pthread_mutex_unlock(&ns->lock);
	if (tell)
		sys_send(d, ns, old, SYS_PREFIX "moved", "moved", old, to);
}

/* The forwarder old met the mark of marker's node (proc_remote.marked):
 * to's node is asked to answer that node once what old passed on is in
 * to's mailbox. */
static void remote_marked(void *ctx, uint64_t old, uint64_t to, uint64_t marker)
{
	struct dist *d = ctx;
	struct node *nt = node_of_pid(d, to);
	if (nt != NULL)
		sys_send(d, nt, old, SYS_PREFIX "relay", "relay", to, marker);
}

/* {ready, Old, New} from the node of now: what this node sent old before
 * its mark is in now's mailbox. */
static void ready_for(struct dist *d, uint64_t old, uint64_t now)
{
	struct node *n = node_of_pid(d, old);
	if (n == NULL)
		return;
	pthread_mutex_lock(&n->lock);
	struct moved *e = moved_find(&n->moved, old);
	bool go = e != NULL && e->state == MOVED_MARKED && e->now == now;
	if (go)
		e->state = MOVED_FLUSHING;
	pthread_mutex_unlock(&n->lock);
	if (go)
		release(d, n, old);
}

/* What a node says about processes that moved: "moved" from the old
 * pid's node, "mark" from a sender's node, "relay" from the old pid's
 * node to the new one's, "ready" from the new one's. -1: malformed. */
static int moved_in(struct dist *d, struct node *n, const struct etf_pid *wfrom, const char *name,
                    size_t len, struct etf_dec *dd)
{
	uint32_t arity;
	const char *a;
	size_t alen;
	struct etf_pid w1, w2;
	uint64_t from = pid_local(d, wfrom), p1 = 0, p2 = 0;
	if (etf_tuple_hdr(dd, &arity) != 0 || etf_get_atom(dd, &a, &alen) != 0 ||
	    etf_get_pid(dd, &w1) != 0 || (p1 = pid_local(d, &w1)) == 0 ||
	    (arity == 3 && (etf_get_pid(dd, &w2) != 0 || (p2 = pid_local(d, &w2)) == 0)) ||
	    arity != (etf_atom_is(name, len, SYS_PREFIX "mark") ? 2u : 3u) || from == 0)
		return -1;
	if (etf_atom_is(name, len, SYS_PREFIX "moved")) {
		/* Old = from, a process of n (of_peer); New = p2, anywhere. */
		if (p1 != from || p2 == from || p2 == DEAD_PID)
			return 0;
		struct etf_buf b = { 0 };
		reg_send_begin(d, &b, 0, SYS_PREFIX "mark");
		etf_tuple(&b, 2);
		etf_atom(&b, "mark", 4);
		if (!put_pid(d, &b, from) || !frame_end(&b)) {
			etf_buf_free(&b);
			return 0;
		}
		pthread_mutex_lock(&n->lock);
		struct moved *e = NULL;
		if (moved_find(&n->moved, from) == NULL && n->moved.nwaiting < MOVED_MAX_WAITING)
			e = moved_add(&n->moved, from, p2, MOVED_MARKED);
		if (e != NULL) {
			e->deadline_ms = conn_now_ms() + MOVED_WAIT_MS;
			conn_moved_due(d, e->deadline_ms);
			e->mark = b.p;
			e->marklen = b.len;
			b.p = NULL;
			n->moved.nwaiting++;
			n->moved.marks_due++;
			n->redirects = true;
			if (n->encoding == 0)
				write_marks(n);
		}
		pthread_mutex_unlock(&n->lock);
		free(b.p);
		return 0;
	}
	if (etf_atom_is(name, len, SYS_PREFIX "mark")) {
		/* Into the forwarder's mailbox, behind what n sent it. */
		if (!proc_pid_is_remote(p1) && d->rt != NULL)
			deliver_or_free(d, p1, msg_new(SIG_MARK, p1, from, 0, 0, NULL, 0));
		return 0;
	}
	if (etf_atom_is(name, len, SYS_PREFIX "relay")) {
		/* From the forwarder (Old = from); New = p1, here; the marker's
		 * node is to hear it (this one if the marker is a pid of ours:
		 * DEAD_PID, as this node's own stand-in pid reads). */
		if (proc_pid_is_remote(p1))
			return 0;
		if (!proc_pid_is_remote(p2)) {
			ready_for(d, from, p1);
			return 0;
		}
		struct node *nm = node_of_pid(d, p2);
		if (nm != NULL)
			sys_send(d, nm, p1, SYS_PREFIX "ready", "ready", from, p1);
		return 0;
	}
	/* ready: from New (a process of n) about Old. */
	if (p2 == from && proc_pid_is_remote(p1))
		ready_for(d, p1, p2);
	return 0;
}


/* ---- new versions: kept to ship, pushed to other nodes ---- */

/* A version loaded here (proc_remote.loaded): its bytes are kept, so that
 * processes running it can spawn on other nodes (which fetch it). */
static void remote_loaded(void *ctx, const unsigned char hash[RT_HASH_BYTES], const void *bytes,
                          size_t len)
{
	struct dist *d = ctx;
	struct load_job *j = malloc(sizeof(*j) + len);
	if (j == NULL)
		return;
	j->d = d;
	memcpy(j->hash, hash, RT_HASH_BYTES);
	j->len = len;
	memcpy(j->bytes, bytes, len);
	pthread_mutex_lock(&d->lock);
	bool kept = code_add(d, hash, j->bytes, len, true);
	pthread_mutex_unlock(&d->lock);
	if (!kept)
		free(j);
}

/* A version was unloaded (proc_remote.forgot): nothing here runs it, so
 * no spawn from here will need its bytes. */
static void remote_forgot(void *ctx, const unsigned char hash[RT_HASH_BYTES])
{
	struct dist *d = ctx;
	pthread_mutex_lock(&d->lock);
	struct dist_code *c = (struct dist_code *)code_find(d, hash);
	if (c != NULL) {
		code_free(c);
		*c = d->code[--d->ncode];
	}
	pthread_mutex_unlock(&d->lock);
}

int dist_push_code(struct dist *d, const unsigned char old_hash[RT_HASH_BYTES],
                   const unsigned char hash[RT_HASH_BYTES])
{
	struct etf_buf b = { 0 };
	reg_send_begin(d, &b, 0, SYS_PREFIX "push");
	pthread_mutex_lock(&d->lock);
	const struct dist_code *c = code_find(d, hash);
	if (c != NULL) {
		etf_tuple(&b, 3);
		etf_atom(&b, "push", 4);
		etf_binary(&b, old_hash, RT_HASH_BYTES);
		etf_binary(&b, c->bytes, (uint32_t)c->len);
	}
	pthread_mutex_unlock(&d->lock);
	int sent = 0;
	if (c != NULL && frame_end(&b)) {
		for (uint32_t i = 0; i < atomic_load(&d->nnodes); i++) {
			struct node *n = d->nodes[i];
			pthread_mutex_lock(&n->lock);
			if (n->state == NODE_UP && n->conn != NULL) {
				conn_write(n->conn, b.p, b.len);
				sent++;
			}
			pthread_mutex_unlock(&n->lock);
		}
	}
	etf_buf_free(&b);
	return c == NULL ? -ENOENT : sent;
}

struct push_job {
	struct dist *d;
	char from[DIST_NAME_MAX + 1];
	size_t len;
	unsigned char bytes[];
};

static void *push_main(void *arg)
{
	struct push_job *j = arg;
	char err[600] = "";
	uint32_t vsn = 0;
	int rc = rt_code_load(j->d->rt, j->bytes, j->len, false, &vsn, err, sizeof(err));
	if (rc == 0)
		fprintf(stderr, "wisp: dist: version %u, pushed by %s, is current\n", vsn, j->from);
	else
		fprintf(stderr, "wisp: dist: a version pushed by %s was not loaded: %s\n", j->from, err);
	atomic_store(&j->d->pushing, false);
	conn_thread_done(j->d);
	free(j);
	return NULL;
}

/* {push, OldHash, Bytes} from n: a new version of the program, loaded (in
 * a thread of its own: it compiles) if this node allows pushes and runs
 * the version it replaces. */
static int push_in(struct dist *d, struct node *n, struct etf_dec *dd)
{
	uint32_t arity, hlen, len;
	const char *a;
	size_t alen;
	const unsigned char *old, *bytes;
	if (etf_tuple_hdr(dd, &arity) != 0 || arity != 3 || etf_get_atom(dd, &a, &alen) != 0 ||
	    !etf_atom_is(a, alen, "push") || etf_get_binary(dd, &old, &hlen) != 0 ||
	    hlen != RT_HASH_BYTES || etf_get_binary(dd, &bytes, &len) != 0)
		return -1;
	char from[2 * DIST_NAME_MAX];
	util_printable(from, sizeof(from), n->name);
	if (!d->cfg.allow_code_push) {
		if (!atomic_exchange(&d->told_push, true))
			fprintf(stderr, "wisp: dist: refused a version pushed by %s: this node runs "
			        "without --allow-code-push (said once)\n", from);
		return 0;
	}
	unsigned char have[RT_HASH_BYTES];
	rt_code_current_hash(d->rt, have);
	if (memcmp(have, old, RT_HASH_BYTES) != 0) {
		fprintf(stderr, "wisp: dist: ignored a version pushed by %s: it replaces another "
		        "version than the one this node runs\n", from);
		return 0;
	}
	/* One at a time: a peer repeating a push while it compiles would
	 * otherwise hold a thread and a copy of the bytes per frame. */
	if (atomic_exchange(&d->pushing, true)) {
		fprintf(stderr, "wisp: dist: ignored a version pushed by %s: another pushed version "
		        "is being loaded\n", from);
		return 0;
	}
	struct push_job *j = malloc(sizeof(*j) + len);
	if (j == NULL) {
		atomic_store(&d->pushing, false);
		return 0;
	}
	j->d = d;
	snprintf(j->from, sizeof(j->from), "%s", from);
	j->len = len;
	memcpy(j->bytes, bytes, len);
	if (conn_thread(d, push_main, j) != 0) {
		free(j);
		atomic_store(&d->pushing, false);
	}
	return 0;
}

static int system_in(struct dist *d, struct node *n, const struct etf_pid *wfrom, const char *name,
                     size_t len, struct etf_dec *dd)
{
	if (etf_atom_is(name, len, SYS_PREFIX "spawn"))
		return spawn_in(d, n, wfrom, dd);
	if (etf_atom_is(name, len, SYS_PREFIX "code"))
		return code_in(d, n, dd);
	if (etf_atom_is(name, len, SYS_PREFIX "push"))
		return push_in(d, n, dd);
	if (etf_atom_is(name, len, SYS_PREFIX "moved") || etf_atom_is(name, len, SYS_PREFIX "mark") ||
	    etf_atom_is(name, len, SYS_PREFIX "relay") || etf_atom_is(name, len, SYS_PREFIX "ready"))
		return moved_in(d, n, wfrom, name, len, dd);
	return etf_skip(dd);
}

int dist_spawn_request(struct dist *d, uint64_t from, const char *node, size_t nlen,
                       const unsigned char hash[RT_HASH_BYTES], uint32_t fn, const void *arg,
                       uint32_t len, uint32_t flags, uint64_t req_ref, uint64_t mon_ref,
                       const char *names, size_t names_len)
{
	char err[128];
	int rc;
	struct node *n = node_named(d, node, nlen, &rc, err, sizeof(err));
	if (n == NULL)
		return rc != 0 ? rc : -EINVAL;   /* (this node: wisp_process.spawn is the way) */
	struct etf_buf b = { 0 };
	reg_send_begin(d, &b, from, SYS_PREFIX "spawn");
	etf_tuple(&b, 8);
	etf_atom(&b, "spawn", 5);
	etf_uint(&b, req_ref);
	etf_binary(&b, hash, RT_HASH_BYTES);
	etf_uint(&b, fn);
	etf_binary(&b, arg, len);
	etf_uint(&b, flags);
	etf_uint(&b, mon_ref);
	uint32_t nnames = 0;
	for (size_t o = 0; o < names_len; o += strlen(names + o) + 1)
		nnames++;
	if (nnames > 0) {
		etf_list(&b, nnames);
		for (size_t o = 0; o < names_len; o += strlen(names + o) + 1)
			etf_binary(&b, names + o, (uint32_t)strlen(names + o));
	}
	etf_nil(&b);
	rc = -EHOSTUNREACH;
	struct asked *a = malloc(sizeof(*a));
	if (a == NULL)
		rc = -ENOMEM;
	else if (!frame_end(&b))
		rc = -EMSGSIZE;
	if (a != NULL && rc != -EMSGSIZE) {
		/* (Noted before the request goes: a loss of the node just after
		 * must find it.) */
		*a = (struct asked){ NULL, n, from, req_ref };
		pthread_mutex_lock(&d->lock);
		/* (A requester killed while it waited never said done.) */
		for (struct asked **pp = &d->asked; *pp != NULL;) {
			struct asked *old = *pp;
			if (proc_alive(d->rt, old->from)) {
				pp = &old->next;
			} else {
				*pp = old->next;
				free(old);
			}
		}
		a->next = d->asked;
		d->asked = a;
		pthread_mutex_unlock(&d->lock);
		pthread_mutex_lock(&n->lock);
		if (n->state == NODE_UP) {
			conn_write(n->conn, b.p, b.len);
			rc = 0;
		}
		pthread_mutex_unlock(&n->lock);
		if (rc != 0)
			dist_spawn_done(d, req_ref);
	} else {
		free(a);
	}
	etf_buf_free(&b);
	return rc;
}

/* The requests of ours to node n (or with ref req_ref), taken out. */
static struct asked *take_asked(struct dist *d, const struct node *n, uint64_t req_ref)
{
	struct asked *out = NULL;
	pthread_mutex_lock(&d->lock);
	for (struct asked **pp = &d->asked; *pp != NULL;) {
		struct asked *a = *pp;
		if (n != NULL ? a->n == n : a->req_ref == req_ref) {
			*pp = a->next;
			a->next = out;
			out = a;
		} else {
			pp = &a->next;
		}
	}
	pthread_mutex_unlock(&d->lock);
	return out;
}

void dist_spawn_done(struct dist *d, uint64_t req_ref)
{
	struct asked *a = take_asked(d, NULL, req_ref);
	while (a != NULL) {
		struct asked *next = a->next;
		free(a);
		a = next;
	}
}

void dist_spawn_go(struct dist *d, uint64_t from, uint64_t child)
{
	struct node *n = node_of_pid(d, child);
	if (n == NULL)
		return;
	struct etf_buf b = { 0 };
	reg_send_begin(d, &b, from, SYS_PREFIX "spawn");
	etf_tuple(&b, 2);
	etf_atom(&b, "go", 2);
	if (put_pid(d, &b, child))
		write_frame(n, &b);
	etf_buf_free(&b);
}

void dist_note_link(struct dist *d, uint64_t local, uint64_t remote)
{
	struct node *n = node_of_pid(d, remote);
	if (n == NULL)
		return;
	pthread_mutex_lock(&n->lock);
	x_note_link(n, local, remote);
	pthread_mutex_unlock(&n->lock);
}

void dist_note_monitor(struct dist *d, uint64_t local, uint64_t remote, uint64_t ref)
{
	struct node *n = node_of_pid(d, remote);
	if (n == NULL)
		return;
	pthread_mutex_lock(&n->lock);
	xset_add(&n->x, X_MON_OUT, local, remote, ref, NULL, NULL, 0);
	pthread_mutex_unlock(&n->lock);
}

static int control(struct dist *d, struct conn *c, struct etf_dec *dd)
{
	struct node *n = c->node;
	uint32_t arity;
	int64_t op;
	uint64_t from = 0, to = 0;
	struct etf_ref eref;
	const char *a;
	size_t alen;
	if (etf_tuple_hdr(dd, &arity) != 0 || arity < 1 || etf_get_int(dd, &op) != 0)
		return -1;
	if (d->trace)
		fprintf(stderr, "control op %lld arity %u\n", (long long)op, arity);
	switch (op) {
	case OP_SEND:
	case OP_SEND_TT:
		if (etf_skip(dd) != 0 || get_pid(d, dd, &to) != 0 ||
		    (op == OP_SEND_TT && etf_skip(dd) != 0) || payload_start(dd) != 0)
			return -1;
		return data_in(d, to, 0, dd);
	case OP_SEND_SENDER:
	case OP_SEND_SENDER_TT:
		if (get_pid(d, dd, &from) != 0 || get_pid(d, dd, &to) != 0 ||
		    (op == OP_SEND_SENDER_TT && etf_skip(dd) != 0) || payload_start(dd) != 0)
			return -1;
		return data_in(d, to, from, dd);
	case OP_REG_SEND:
	case OP_REG_SEND_TT: {
		struct etf_pid wfrom;
		if (etf_get_pid(dd, &wfrom) != 0 || etf_skip(dd) != 0 ||
		    etf_get_atom(dd, &a, &alen) != 0 || (op == OP_REG_SEND_TT && etf_skip(dd) != 0) ||
		    payload_start(dd) != 0)
			return -1;
		if (alen > SYS_PREFIX_LEN && memcmp(a, SYS_PREFIX, SYS_PREFIX_LEN) == 0)
			return of_peer(c, &wfrom) ? system_in(d, n, &wfrom, a, alen, dd) : -1;
		if ((from = pid_local(d, &wfrom)) == 0)
			return -1;
		to = alen <= 255 ? rt_whereis(d->rt, a, (uint32_t)alen) : 0;
		if (to == 0 && etf_atom_is(a, alen, "net_kernel")) {
			net_kernel(d, n, dd);
			return etf_skip(dd);
		}
		return data_in(d, to, from, dd);
	}
	case OP_LINK:
		if (get_sender(d, c, dd, &from) != 0 || get_pid(d, dd, &to) != 0)
			return -1;
		if (!proc_pid_is_remote(to)) {
			pthread_mutex_lock(&n->lock);
			x_note_link(n, to, from);
			pthread_mutex_unlock(&n->lock);
			struct msg *m = msg_new(SIG_LINK, to, from, 0, 0, NULL, 0);
			if (m != NULL && !rt_deliver(d->rt, to, m))
				rt_refuse(d->rt, m);   /* EXIT noproc, through route() */
		}
		return 0;
	case OP_UNLINK:
	case OP_UNLINK_ID: {
		uint64_t id = 0;
		if ((op == OP_UNLINK_ID && etf_get_uint(dd, &id) != 0) ||
		    get_sender(d, c, dd, &from) != 0 ||
		    get_pid(d, dd, &to) != 0)
			return -1;
		if (proc_pid_is_remote(to))
			return 0;
		pthread_mutex_lock(&n->lock);
		x_drop_link(n, to, from);
		pthread_mutex_unlock(&n->lock);
		deliver_or_free(d, to, msg_new(SIG_UNLINK, to, from, 0, 0, NULL, 0));
		if (op == OP_UNLINK_ID) {
			struct etf_buf b = { 0 };
			frame_begin(&b);
			etf_tuple(&b, 4);
			etf_int(&b, OP_UNLINK_ID_ACK);
			etf_uint(&b, id);
			put_pid(d, &b, to);
			put_pid(d, &b, from);
			write_frame(n, &b);
			etf_buf_free(&b);
		}
		return 0;
	}
	case OP_UNLINK_ID_ACK:
		return 0;
	case OP_EXIT:
	case OP_EXIT2:
	case OP_EXIT_TT:
	case OP_EXIT2_TT:
		if ((op == OP_EXIT || op == OP_EXIT_TT ? get_sender(d, c, dd, &from)
		                                       : get_pid(d, dd, &from)) != 0 ||
		    get_pid(d, dd, &to) != 0 ||
		    ((op == OP_EXIT_TT || op == OP_EXIT2_TT) && etf_skip(dd) != 0))
			return -1;
		return exit_in(d, n, (int)op, from, to, dd);
	case OP_PAYLOAD_EXIT:
	case OP_PAYLOAD_EXIT2:
	case OP_PAYLOAD_EXIT_TT:
	case OP_PAYLOAD_EXIT2_TT:
		if ((op == OP_PAYLOAD_EXIT || op == OP_PAYLOAD_EXIT_TT ? get_sender(d, c, dd, &from)
		                                                       : get_pid(d, dd, &from)) != 0 ||
		    get_pid(d, dd, &to) != 0 ||
		    ((op == OP_PAYLOAD_EXIT_TT || op == OP_PAYLOAD_EXIT2_TT) && etf_skip(dd) != 0) ||
		    payload_start(dd) != 0)
			return -1;
		return exit_in(d, n, (int)op, from, to, dd);
	case OP_MONITOR_P: {
		if (get_sender(d, c, dd, &from) != 0)
			return -1;
		struct etf_dec target = *dd;
		if (etf_skip(dd) != 0 || get_ref(dd, &eref) != 0)
			return -1;
		monitor_in(d, n, from, &target, &eref);
		return 0;
	}
	case OP_DEMONITOR_P:
		if (get_sender(d, c, dd, &from) != 0 || etf_skip(dd) != 0 || get_ref(dd, &eref) != 0)
			return -1;
		demonitor_in(d, n, from, &eref);
		return 0;
	case OP_MONITOR_P_EXIT:
	case OP_PAYLOAD_MONITOR_P_EXIT: {
		/* {_, FromProc, ToPid, Ref[, Reason]}: the DOWN of our monitor. */
		uint64_t ref;
		struct reason r;
		if (etf_skip(dd) != 0 || get_pid(d, dd, &to) != 0 || get_ref(dd, &eref) != 0 ||
		    (op == OP_PAYLOAD_MONITOR_P_EXIT && payload_start(dd) != 0) ||
		    reason_get(dd, &r) != 0)
			return -1;
		if (!ref_is_local(d, &eref, &ref) || proc_pid_is_remote(to))
			return 0;
		/* Only the monitor's own holder hears of it: the ref decides,
		 * not the pid the peer names. */
		pthread_mutex_lock(&n->lock);
		struct xlink *x = xset_mon(&n->x, X_MON_OUT, ref);
		uint64_t remote = 0;
		if (x != NULL && x->local == to) {
			remote = x->remote;
			xset_remove(&n->x, x);
			free(x);
		}
		pthread_mutex_unlock(&n->lock);
		if (remote != 0)
			deliver_or_free(d, to, msg_reason(MSG_DOWN, to, remote, ref, &r));
		return 0;
	}
	default:
		/* Operations this node did not advertise (spawn, aliases,
		 * group leaders): ignored, as an old node would. */
		return 0;
	}
}

int dist_frame(struct dist *d, struct conn *c, const unsigned char *p, size_t len)
{
	if (d->trace) {
		fprintf(stderr, "frame %zu:", len);
		for (size_t i = 0; i < len && i < 48; i++)
			fprintf(stderr, " %u", p[i]);
		fprintf(stderr, "\n");
	}
	if (len < 2 || p[0] != PASS_THROUGH || p[1] != ETF_VERSION)
		return -1;
	struct etf_dec dd = { p + 2, p + len };
	if (d->rt == NULL)
		return 0;
	return control(d, c, &dd);
}

/* ---- the node ---- */

static int remote_attach(void *ctx, struct rt *rt, char *err, size_t errlen)
{
	struct dist *d = ctx;
	d->rt = rt;
	int rc = conn_start(d, err, errlen);
	if (rc != 0) {
		d->rt = NULL;
		return rc;
	}
	for (char **c = d->connect; c != NULL && *c != NULL; c++) {
		char e[256];
		if (dist_connect(d, *c, strlen(*c), e, sizeof(e)) != 0)
			fprintf(stderr, "wisp: dist: --connect %s: %s\n", *c, e);
	}
	return 0;
}

static void remote_detach(void *ctx)
{
	struct dist *d = ctx;
	atomic_store(&d->stopping, true);
	conn_stop(d);
	/* Processes made for other nodes and never started go with it. */
	struct unstarted *u = d->unstarted;
	d->unstarted = NULL;
	while (u != NULL) {
		struct unstarted *next = u->next;
		rt_drop_unstarted(u->p);
		free(u);
		u = next;
	}
	d->rt = NULL;
}

const struct proc_remote *dist_remote(struct dist *d)
{
	return &d->remote;
}

const char *dist_node_name(const struct dist *d)
{
	return d->name;
}

/* Split "alive@host" (or "alive", host added) into d's names. */
static int set_name(struct dist *d, const struct dist_config *cfg, char *err, size_t errlen)
{
	const char *at = strchr(cfg->name, '@');
	size_t alen = at ? (size_t)(at - cfg->name) : strlen(cfg->name);
	if (alen == 0 || alen >= sizeof(d->alive)) {
		snprintf(err, errlen, "bad node name '%s': expected NAME or NAME@HOST", cfg->name);
		return -EINVAL;
	}
	for (size_t i = 0; i < alen; i++) {
		unsigned char ch = (unsigned char)cfg->name[i];
		if (!(ch == '_' || ch == '-' || (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= 'A' && ch <= 'Z'))) {
			snprintf(err, errlen, "bad node name '%s': the name before '@' may hold "
			         "letters, digits, '_' and '-'", cfg->name);
			return -EINVAL;
		}
	}
	memcpy(d->alive, cfg->name, alen);
	if (at != NULL) {
		snprintf(d->host, sizeof(d->host), "%s", at + 1);
	} else {
		char h[256];
		if (gethostname(h, sizeof(h)) != 0)
			snprintf(h, sizeof(h), "localhost");
		h[sizeof(h) - 1] = '\0';
		if (!cfg->longnames) {
			char *dot = strchr(h, '.');
			if (dot)
				*dot = '\0';
		}
		snprintf(d->host, sizeof(d->host), "%s", h);
	}
	if (d->host[0] == '\0' || (!cfg->longnames && strchr(d->host, '.') != NULL)) {
		snprintf(err, errlen, "bad node name '%s': with --sname the host must not hold "
		         "dots (use --name for a full host name)", cfg->name);
		return -EINVAL;
	}
	int n = snprintf(d->name, sizeof(d->name), "%s@%s", d->alive, d->host);
	if (n < 0 || (size_t)n >= sizeof(d->name)) {
		snprintf(err, errlen, "node name too long");
		return -EINVAL;
	}
	d->nlen = (size_t)n;
	return 0;
}

static char **copy_strings(const char *const *v, int n)
{
	char **c = calloc((size_t)n + 1, sizeof(*c));
	for (int i = 0; c != NULL && i < n; i++)
		if ((c[i] = strdup(v[i])) == NULL)
			return c;   /* (the list ends early: freed by dist_free) */
	return c;
}

int dist_new(const struct dist_config *cfg, struct dist **out, char *err, size_t errlen)
{
	struct dist *d = calloc(1, sizeof(*d));
	if (d == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	d->cfg = *cfg;
	d->listen_fd = d->epmd_fd = d->epfd = d->evfd = -1;
	d->moved_next_ms = INT64_MAX;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->hs_done, NULL);
	d->nodes = calloc(DIST_MAX_NODES, sizeof(*d->nodes));
	d->byname = calloc(DIST_NODE_BUCKETS, sizeof(*d->byname));
	d->byexact = calloc(DIST_NODE_BUCKETS, sizeof(*d->byexact));
	if (getentropy(&d->seed, sizeof(d->seed)) != 0)
		d->seed = (uint64_t)getpid() << 32 ^ (uint64_t)conn_now_ms();
	d->connect = copy_strings(cfg->connect, cfg->nconnect);
	d->trace = getenv("WISP_DIST_TRACE") != NULL;
	const char *delay = getenv("WISP_DIST_TEST_UP_DELAY_MS");
	d->up_delay_ms = delay != NULL ? (unsigned)strtoul(delay, NULL, 10) % 10000 : 0;
	if (cfg->module_bytes != NULL)
		code_add(d, cfg->module_hash, cfg->module_bytes, cfg->module_len, false);
	if (d->cfg.ticktime_s == 0)
		d->cfg.ticktime_s = 60;
	d->remote = (struct proc_remote){ remote_attach, remote_detach, remote_deliver,
	                                  remote_forward, remote_alive, conn_flush_corked,
	                                  remote_moved, remote_marked, remote_loaded,
	                                  remote_forgot, conn_readable, d };
	int rc = d->nodes == NULL || d->byname == NULL || d->byexact == NULL || d->connect == NULL
	         ? -ENOMEM : set_name(d, cfg, err, errlen);
	if (rc == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	if (rc == 0 && (strlen(cfg->cookie) == 0 || strlen(cfg->cookie) >= sizeof(d->cookie))) {
		snprintf(err, errlen, "the cookie must hold 1 to 255 bytes");
		rc = -EINVAL;
	}
	if (rc == 0) {
		snprintf(d->cookie, sizeof(d->cookie), "%s", cfg->cookie);
		rc = conn_listen(d, err, errlen);
	}
	if (rc == 0 && !cfg->no_epmd) {
		d->epmd_port = cfg->epmd_port;
		if (d->epmd_port == 0 && (rc = epmd_parse_port(getenv("ERL_EPMD_PORT"), &d->epmd_port)) != 0)
			snprintf(err, errlen, "ERL_EPMD_PORT is not a port number");
		if (rc == 0)
			rc = epmd_ensure_running(d->epmd_port, err, errlen);
		if (rc == 0)
			rc = epmd_register(d->epmd_port, d->alive, d->port, &d->epmd_fd, &d->creation,
			                   err, errlen);
	}
	if (rc == 0 && cfg->no_epmd) {
		/* No EPMD to hand out creations: a random one, never 0..3 (which
		 * old nodes give special meanings). */
		while (d->creation < 4)
			if (getentropy(&d->creation, sizeof(d->creation)) != 0)
				d->creation = (uint32_t)getpid() ^ (uint32_t)conn_now_ms();
	}
	/* (The caller's strings are copied; none is kept.) */
	d->cfg.name = d->cfg.cookie = NULL;
	d->cfg.connect = NULL;
	if (rc != 0) {
		dist_free(d);
		return rc;
	}
	*out = d;
	return 0;
}

void dist_free(struct dist *d)
{
	if (d == NULL)
		return;
	if (d->io_started)
		remote_detach(d);
	if (d->listen_fd >= 0)
		close(d->listen_fd);
	if (d->epmd_fd >= 0)
		close(d->epmd_fd);
	uint32_t n = d->nodes ? atomic_load(&d->nnodes) : 0;
	for (uint32_t i = 0; i < n; i++)
		node_free(d, d->nodes[i]);
	free(d->nodes);
	free(d->byname);
	free(d->byexact);
	for (size_t i = 0; i < d->ncode; i++)
		code_free(&d->code[i]);
	free(d->code);
	for (struct spawn_req *r = d->waiting; r != NULL;) {
		struct spawn_req *next = r->next;
		free(r);
		r = next;
	}
	for (struct asked *a = d->asked; a != NULL;) {
		struct asked *next = a->next;
		free(a);
		a = next;
	}
	for (char **c = d->connect; c != NULL && *c != NULL; c++)
		free(*c);
	free(d->connect);
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->hs_done);
	free(d);
}

/* ---- for the host layer ---- */

int dist_send_named(struct dist *d, uint64_t from, const char *node, size_t nlen,
                    const char *name, size_t namelen, uint64_t tag, uint64_t ref,
                    const void *data, uint32_t len)
{
	if (namelen == 0 || namelen > 255)
		return -EINVAL;
	if (tag == WISP_TAG_TERM) {
		struct etf_dec t = { data, (const unsigned char *)data + len };
		if (len < 1 || ((const unsigned char *)data)[0] != ETF_VERSION)
			return -EINVAL;
		t.p++;
		if (etf_skip(&t) != 0 || t.p != t.end)
			return -EINVAL;
	}
	char err[128];
	int rc;
	struct node *n = node_named(d, node, nlen, &rc, err, sizeof(err));
	if (n == NULL && rc != 0)
		return rc;
	if (n == NULL) {
		/* This node: as a local send to the name. */
		uint64_t to = rt_whereis(d->rt, name, (uint32_t)namelen);
		struct msg *m = to ? msg_new(MSG_DATA, to, from, tag, ref, data, len) : NULL;
		if (m != NULL && !rt_deliver(d->rt, to, m))
			msg_free(m);
		return 0;
	}
	struct msg *m = msg_new(MSG_DATA, 0, from, tag, ref, data, len);
	if (m == NULL)
		return -ENOMEM;
	route(d, n, m, name, namelen);
	return 0;
}

size_t dist_nodes(struct dist *d, char *buf, size_t cap, uint32_t *scanned)
{
	size_t need = 0;
	pthread_mutex_lock(&d->lock);
	*scanned = atomic_load(&d->nnodes);
	for (uint32_t i = 0; i < *scanned; i++) {
		struct node *n = d->nodes[i];
		if (state_of(n) != NODE_UP)
			continue;
		if (need + n->nlen + 1 <= cap) {
			memcpy(buf + need, n->name, n->nlen);
			buf[need + n->nlen] = '\0';
		}
		need += n->nlen + 1;
	}
	pthread_mutex_unlock(&d->lock);
	return need;
}

uint64_t dist_node_pid(struct dist *d, const char *node, size_t nlen)
{
	char err[128];
	int rc;
	struct node *n = node_named(d, node, nlen, &rc, err, sizeof(err));
	return n != NULL ? remote_pid(n, 0) : 0;
}

size_t dist_pid_encode(struct dist *d, uint64_t pid, void *buf, size_t cap)
{
	struct etf_buf b = { 0 };
	if (!put_pid(d, &b, pid) || b.oom) {
		etf_buf_free(&b);
		return 0;
	}
	size_t n = b.len;
	if (n <= cap)
		memcpy(buf, b.p, n);
	etf_buf_free(&b);
	return n;
}

int dist_pid_decode(struct dist *d, const void *buf, size_t len, uint64_t *pid)
{
	struct etf_dec t = { buf, (const unsigned char *)buf + len };
	struct etf_pid w;
	if (etf_get_pid(&t, &w) != 0 || t.p != t.end || (*pid = pid_named(d, &w, true)) == 0)
		return -EINVAL;
	return 0;
}

size_t dist_pid_node(struct dist *d, uint64_t pid, char *buf, size_t cap)
{
	const char *name = d->name;
	size_t n = d->nlen;
	struct node *node = node_of_pid(d, pid);
	if (proc_pid_is_remote(pid)) {
		if (node == NULL)
			return 0;
		name = node->name;
		n = node->nlen;
	}
	if (cap > 0)
		memcpy(buf, name, n < cap ? n : cap);
	return n;
}

int dist_connect(struct dist *d, const char *node, size_t nlen, char *err, size_t errlen)
{
	/* An entry that turns out to be a dead incarnation's (GONE: the
	 * connection went to the one that replaced it) is tried again, a few
	 * times. */
	for (int tries = 0; tries < 4; tries++) {
		int rc;
		struct node *n = node_named(d, node, nlen, &rc, err, errlen);
		if (n == NULL)
			return rc;
		pthread_mutex_lock(&n->lock);
		bool dial = n->state == NODE_IDLE;
		if (dial)
			n->state = NODE_CONNECTING;
		pthread_mutex_unlock(&n->lock);
		if (dial)
			conn_dial(d, n);
		pthread_mutex_lock(&n->lock);
		while (n->state == NODE_CONNECTING)
			pthread_cond_wait(&n->changed, &n->lock);
		enum node_state st = n->state;
		pthread_mutex_unlock(&n->lock);
		if (st == NODE_UP)
			return 0;
		if (st != NODE_GONE)
			break;
	}
	snprintf(err, errlen, "cannot connect to %.*s", (int)nlen, node);
	return -EHOSTUNREACH;
}

/* Append the term at t to buf (at *o of cap), as Erlang prints the
 * common cases; depth bounds the recursion. -1 if malformed. */
static int print_term(struct etf_dec *t, char *buf, size_t cap, size_t *o, int depth)
{
#define OUT(...) do { if (*o < cap) { int k_ = snprintf(buf + *o, cap - *o, __VA_ARGS__); \
	*o += k_ > 0 && (size_t)k_ < cap - *o ? (size_t)k_ : cap - *o; } } while (0)
	const char *a;
	size_t alen;
	int64_t v;
	uint32_t n;
	const unsigned char *bin;
	int tag = etf_peek(t);
	if (etf_get_atom(t, &a, &alen) == 0) {
		OUT("%.*s", (int)alen, a);
	} else if (etf_get_int(t, &v) == 0) {
		OUT("%lld", (long long)v);
	} else if (etf_get_binary(t, &bin, &n) == 0) {
		OUT("<<\"");
		for (uint32_t i = 0; i < n && i < 80; i++)
			OUT(bin[i] >= 32 && bin[i] < 127 && bin[i] != '"' ? "%c" : "\\x%02x", bin[i]);
		OUT(n > 80 ? "...\">>" : "\">>");
	} else if (depth < 16 && (tag == ETF_SMALL_TUPLE || tag == ETF_LARGE_TUPLE ||
	                          tag == ETF_LIST || tag == ETF_NIL)) {
		bool tuple = tag == ETF_SMALL_TUPLE || tag == ETF_LARGE_TUPLE;
		if ((tuple ? etf_tuple_hdr(t, &n) : etf_list_hdr(t, &n)) != 0)
			return -1;
		OUT(tuple ? "{" : "[");
		for (uint32_t i = 0; i < n; i++) {
			if (i > 0)
				OUT(",");
			if (print_term(t, buf, cap, o, depth + 1) != 0)
				return -1;
		}
		if (!tuple && n > 0) {
			if (etf_peek(t) == ETF_NIL) {
				t->p++;
			} else {
				OUT("|");
				if (print_term(t, buf, cap, o, depth + 1) != 0)
					return -1;
			}
		}
		OUT(tuple ? "}" : "]");
	} else if (etf_skip(t) == 0) {
		OUT("...");
	} else {
		return -1;
	}
	return 0;
#undef OUT
}

void dist_print_term(const void *term, size_t len, char *buf, size_t cap)
{
	if (cap == 0)
		return;
	buf[0] = '\0';
	struct etf_dec t = { term, (const unsigned char *)term + len };
	size_t o = 0;
	if (print_term(&t, buf, cap, &o, 0) != 0)
		snprintf(buf, cap, "(a malformed term)");
}
