/*
 * dist_impl.h — the node's state, shared by dist.c (nodes, routing,
 * control messages) and conn.c (sockets, reading them on the schedulers,
 * the I/O thread, handshakes).
 *
 * Locks, in the order they may be taken: d->lock (the node table's names,
 * the handshake list), then one node's lock (its connection, output,
 * pending messages, pid names, links and monitors). Nothing is delivered
 * into the runtime while a node's lock is held: delivering can come back
 * here (a refused link answers through the remote layer). Arming the
 * runtime's reactor for a connection is done under it (rt_remote_arm,
 * rt_remote_watching: the scheduler's locks come after, and never call
 * back up).
 */
#ifndef WISP_DIST_IMPL_H
#define WISP_DIST_IMPL_H

#include <pthread.h>
#include <stdatomic.h>

#include "dist.h"
#include "etf.h"
#include "handshake.h"
#include "moved.h"
#include "xlink.h"

#define DIST_MAX_NODES 65536u   /* incarnations of nodes known in one run */
#define DIST_MAX_INCARNATIONS 4096   /* of them, of one node name */
#define DIST_MAX_GUEST_NODES 4096    /* made for guests' calls, never connected */
#define DIST_NODE_BUCKETS 16384u     /* of each index of the node table */
#define DIST_MAX_HANDLES (1u << 22)  /* remote pids named by a table (dist.c) */
#define DIST_HANDLE_BITS 40     /* remote pid: 1 | node index (23) | handle (40) */
#define DIST_MAX_DIALING 256    /* connections of ours being set up at once */
#define DIST_MAX_ACCEPTING 256  /* peers' handshakes under way at once */
#define DIST_MIN_HELD_BYTES (128u << 20)   /* held for all of them (see may_hold) */
#define DIST_MAX_FRAME (64u << 20 | 4096u)   /* refused beyond: the peer is broken */
#define DIST_MAX_UNSTARTED 1024 /* a node's remote spawns waiting for their go */

enum node_state {
	NODE_IDLE,        /* not connected (never, or lost): a send connects */
	NODE_CONNECTING,
	NODE_UP,
	NODE_GONE,        /* an older incarnation: its processes are dead */
};

/* Monitors a peer may hold on the built-in net_kernel (which never goes
 * down, so they stay until demonitored). */
#define DIST_MAX_BUILTIN_MONITORS 1024

struct conn;

/* A message held while its node is being connected. */
struct held {
	struct held *next;
	struct msg *m;
	size_t bytes;             /* of m and this, counted in dist.held_bytes */
	size_t namelen;           /* a send to a registered name: > 0 */
	char name[];
};

struct node {
	struct node *next_name, *next_exact;   /* the table's indexes (d->lock) */
	bool by_guest;            /* made for a guest's call, never connected (d->lock) */
	uint32_t index;
	char name[256];
	size_t nlen;
	uint32_t creation;        /* 0: not known yet */
	uint16_t port_hint;       /* EPMD-less: name@host:port */
	pthread_mutex_t lock;
	enum node_state state;
	uint32_t told_why;        /* the set-up failure last said on stderr,
	                             hashed (0: none since it was up) */
	struct conn *conn;        /* UP: the connection */
	bool dialing;             /* a connect attempt of ours is running */
	bool accepting;           /* a peer's attempt was answered "ok" */
	pthread_cond_t changed;   /* state changes (dist_connect waits) */
	struct held *pend, *pend_last;  /* CONNECTING: held for it */
	/* Its processes' names: (serial << 32 | id) <-> handle (1-based). */
	uint64_t *keys;           /* by handle - 1 */
	uint64_t nkeys, capkeys;
	uint32_t *slots;          /* open addressing: handle, 0 = empty */
	uint64_t capslots;
	/* Its remote spawns waiting for their module (d->lock). */
	uint32_t nspawn;
	uint64_t spawn_bytes;
	/* Links and monitors across this node (xlink.c); of them, the peer's
	 * monitors of the built-in net_kernel. */
	struct xset x;
	uint32_t nbuiltin;
	uint64_t unlink_id;
	uint32_t nunstarted;      /* its spawns waiting for their go (d->lock) */
	/* Its processes that moved, and ours it was told of (moved.c;
	 * dist.c, "Processes that moved"). */
	struct moved_map moved;
	atomic_bool redirects;    /* moved holds an entry not TOLD: route looks */
	uint32_t encoding;        /* route() calls between their check and write */
};

/* A connection: its node's (node->conn) from dist_conn_up until it is
 * torn down; every thread finds it there, under the node's lock, or by
 * its token (never by a pointer kept without that lock). conn.c says who
 * reads it and who tears it down. */
struct conn {
	struct dist *d;
	struct node *node;
	int fd;
	uint64_t token;           /* in both reactors: conn_new_token() */
	uint64_t peer_flags;
	uint32_t creation;        /* the peer's (as its pids carry it) */
	/* output, under node->lock */
	unsigned char *out;
	size_t outlen, outoff, outcap;
	bool out_added;           /* the fd is in the I/O thread's epoll */
	bool out_armed;           /* EPOLLOUT armed there (one-shot) */
	_Atomic int64_t last_tx_ms;
	/* input: its reader's alone (the thread that set `reading`) */
	unsigned char *in;
	size_t inlen, incap;
	_Atomic int64_t last_rx_ms;
	/* Under node->lock: a thread is reading it (one at a time); why it
	 * is being torn down (NULL: it is not). */
	bool reading;
	const char *closing;
	/* Why it must be dropped (the peer stopped reading, a new incarnation
	 * of the peer connected), or NULL. */
	_Atomic(const char *) dead;
};

/* A module's bytes, kept to ship to nodes that spawn its functions. */
struct dist_code {
	unsigned char hash[RT_HASH_BYTES];
	const unsigned char *bytes;
	size_t len;
	bool owned;               /* (the main module's belong to the embedder) */
};

/* A remote spawn waiting for its module to arrive from the requester. */
struct spawn_req {
	struct spawn_req *next;
	struct node *n;           /* the requester's node */
	uint64_t from;            /* the requester */
	uint64_t req_ref, mon_ref;
	unsigned char hash[RT_HASH_BYTES];
	uint32_t fn, flags, len;
	char *names;              /* NUL-terminated, names_len bytes (NULL: none) */
	size_t names_len;
	int64_t deadline_ms;      /* answered "timed out" after, unless loading */
	bool loading;             /* its module arrived and is being compiled */
	unsigned char arg[];
};

/* What other nodes' remote spawns may hold here while modules travel
 * (docs/security.md): requests waiting per requesting node (count and
 * bytes, arguments included), modules being fetched or compiled at once,
 * and modules received in all. Beyond, a request is answered "limit". */
#define DIST_MAX_SPAWN_WAITING 1024
#define DIST_MAX_SPAWN_BYTES (64u << 20)
#define DIST_MAX_FETCHES 8
#define DIST_MAX_MODULES 1024
#define DIST_SPAWN_WAIT_MS 120000   /* as long as the requester waits */

/* A remote spawn of ours waiting for its answer (dist_spawn_done). */
struct asked {
	struct asked *next;
	struct node *n;
	uint64_t from, req_ref;
};

/* A process spawned for another node, waiting for its requester's go. */
struct unstarted {
	struct unstarted *next;
	struct proc *p;
	uint64_t pid;
	struct node *n;
	int64_t deadline_ms;
	char *names;              /* to take when it starts (owned) */
	size_t names_len;
};

struct dist {
	struct dist_config cfg;
	char name[256];           /* alive@host */
	size_t nlen;
	char alive[256], host[256];
	char cookie[256];
	uint32_t creation;
	int listen_fd;
	uint16_t port;
	uint16_t epmd_port;
	int epmd_fd;              /* the registration (-1: none) */
	struct proc_remote remote;
	struct rt *rt;            /* attached runtime (NULL before/after) */
	atomic_bool stopping;
	/* the I/O thread */
	int epfd, evfd;
	pthread_t io;
	bool io_started;
	/* node table: nodes[i - 1] for index i; never shrinks while the node
	 * lives, so a lookup by index needs no lock */
	pthread_mutex_t lock;
	_Atomic(struct node *) *nodes;
	_Atomic uint32_t nnodes;
	struct node **byname, **byexact;   /* indexes (dist.c) */
	uint64_t seed;                     /* of their hash */
	uint32_t nguest;                   /* entries by_guest */
	_Atomic uint32_t nhandles;         /* in all nodes' pid tables */
	atomic_bool told_handles;
	bool told_full;
	atomic_bool told_push;   /* said once: pushes refused */
	atomic_bool pushing;     /* a pushed version is being loaded (one at a time) */
	/* threads of conn_thread in flight, so stopping can wait for them; of
	 * them, connections being set up (each bounded), and the sockets of
	 * their handshakes, so stopping can cut them short */
	uint32_t handshakes;
	pthread_cond_t hs_done;   /* (also: tearing reached 0) */
	_Atomic uint32_t tearing; /* connections being torn down (conn.c) */
	uint32_t ndialing, naccepting;
	int hs_fds[DIST_MAX_DIALING + DIST_MAX_ACCEPTING];
	uint32_t nhs_fds;
	bool told_accepts;        /* (the I/O thread's) */
	char **connect;           /* cfg.connect, copied */
	/* remote spawn (d->lock): modules' bytes, requests waiting for a
	 * module, fetches asked for, processes waiting for their go */
	struct dist_code *code;
	size_t ncode, capcode;
	struct spawn_req *waiting;
	struct unstarted *unstarted;
	struct asked *asked;
	bool trace;               /* WISP_DIST_TRACE: frames and routes on stderr */
	unsigned up_delay_ms;     /* WISP_DIST_TEST_UP_DELAY_MS: a new connection
	                             waits this long before writing what was held
	                             for it (tests widen that window with it) */
	atomic_bool told_oversize;
	atomic_bool told_no_spawn;     /* a remote spawn refused: said once */
	_Atomic uint64_t held_bytes;   /* messages held for nodes being connected */
	_Atomic uint64_t out_bytes;    /* queued on connections (conn.c) */
	_Atomic uint64_t in_bytes;     /* their input buffers (conn.c) */
	atomic_bool told_held;
	/* When a wait of processes that moved ends next (INT64_MAX: none
	 * waits; dist.c, "Processes that moved"): the I/O thread's, lowered
	 * by readers through conn_moved_due. */
	_Atomic int64_t moved_next_ms;
	_Atomic uint64_t conn_serial;  /* connections made (their tokens) */
};

/* ---- dist.c, for conn.c ---- */

/* A connection to node n is up (handshake done): take it. False: refused
 * (stopping, or another connection won); the caller closes fd. */
bool dist_conn_up(struct dist *d, struct node *n, int fd, const struct dist_id *peer);
/* A connection attempt to n failed: ours (dial) or the peer's we had
 * answered "ok". Unless the other attempt is still running or won, n is
 * not reachable: held messages are dropped, links and monitors told. */
void dist_setup_failed(struct dist *d, struct node *n, bool dial, const char *why);
/* c is lost (closed, broken, silent): tell every local side. Called by
 * the thread tearing c down (conn.c: its last reader, or the I/O thread),
 * no lock held; c is freed after. */
void dist_conn_down(struct dist *d, struct conn *c, const char *why);
/* One frame from c (without its length), handled, by c's reader (a
 * scheduler thread between processes, or the I/O thread), no lock held.
 * -1: malformed, the connection must close. */
int dist_frame(struct dist *d, struct conn *c, const unsigned char *p, size_t len);
/* The entry of incarnation `creation` of node `name` (created if new).
 * live: that incarnation is connecting to us (an authenticated
 * handshake), so it is not taken for a dead one, even if another
 * incarnation is connected. */
struct node *dist_node_by_name(struct dist *d, const char *name, size_t nlen, uint32_t creation,
                               bool live);
/* The entry an accepted handshake with (name, creation) would use, if
 * there is one (nothing is made or changed: the peer is not authenticated
 * yet). */
struct node *dist_node_peek(struct dist *d, const char *name, size_t nlen, uint32_t creation);
/* The entry of index i, or NULL (no lock needed: entries stay). */
struct node *dist_node_at(struct dist *d, uint32_t index);

/* Messages held for n's processes that moved, waiting since before
 * now_ms, go on (the I/O thread's, when d->moved_next_ms comes). When
 * the next of n's waits ends (INT64_MAX: none waits). */
int64_t dist_moved_tick(struct dist *d, struct node *n, int64_t now_ms);

/* ---- conn.c, for dist.c ---- */

int conn_listen(struct dist *d, char *err, size_t errlen);
int conn_start(struct dist *d, char *err, size_t errlen);
void conn_stop(struct dist *d);
/* Start connecting to n (state CONNECTING already set, lock not held). */
void conn_dial(struct dist *d, struct node *n);
/* Queue bytes on c (node lock held). On a process's thread they wait in
 * c's buffer until the process stops running (conn_flush_corked, called
 * by proc then), so a burst of sends is one write; elsewhere they are
 * written now if the socket takes them. */
void conn_write(struct conn *c, const void *p, size_t len);
/* Write what processes on the calling thread left corked (proc_remote's
 * flush; ctx: the node). */
void conn_flush_corked(void *ctx);
/* Cut c (node lock held): its peer is dead though its socket never said
 * so (a new incarnation of it connected, or it connected again: why).
 * Nothing more is written to c; its socket is shut, so its reader closes
 * it (its node is down) at once. */
void conn_cut(struct conn *c, const char *why);
/* A token for a new connection to n: n's index and a serial, so a late
 * event for a connection torn down never reaches its successor. */
uint64_t conn_new_token(struct dist *d, const struct node *n);
/* Start reading c, just made n->conn (node lock held): the schedulers
 * watch its socket. 0, or a negative errno: nothing was armed, and the
 * caller undoes n->conn and frees c. */
int conn_watch(struct dist *d, struct conn *c);
/* proc_remote.io_ready: c's socket (token) is readable or broken; read
 * it, on this scheduler thread, if no one else is. ctx: the node. */
void conn_readable(void *ctx, uint64_t token);
/* A wait of processes that moved ends at at_ms: the I/O thread looks then
 * (woken if it would look later). Any thread. */
void conn_moved_due(struct dist *d, int64_t at_ms);
int64_t conn_now_ms(void);
/* Run fn(arg) on a thread of its own, counted so that stopping waits for
 * it; fn calls conn_thread_done(d) last. -1 if none could start (or the
 * node is stopping): fn is not called. */
int conn_thread(struct dist *d, void *(*fn)(void *), void *arg);
void conn_thread_done(struct dist *d);

/* ---- dist.c, for conn.c: every tick ---- */
void dist_tick(struct dist *d, int64_t now_ms);

#endif
