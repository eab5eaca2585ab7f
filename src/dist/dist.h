/*
 * dist.h — this runtime as a node of an Erlang cluster (see dist.c).
 *
 * The embedder (src/cli) makes a node from its options with dist_new(),
 * hands dist_remote(d) to the runtime (rt_config.remote), and frees it
 * with dist_free() after the run. The host layer's guest calls (sending to
 * a name on a node, listing nodes) reach the node through the functions
 * below, on a process's fiber.
 *
 * Error convention: 0 or a negative errno, with a message where the
 * caller passes a buffer.
 */
#ifndef WISP_DIST_H
#define WISP_DIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proc/proc.h"
#include "wisp/term.h"

/* (WISP_TAG_TERM, from wisp/term.h, tags a payload that is one Erlang
 * term: docs/abi.md, "Erlang terms in messages".) */

struct dist_config {
	const char *name;          /* "alive@host", or "alive" (host added) */
	bool longnames;            /* --name (a full host name) or --sname */
	const char *cookie;
	uint16_t port_min, port_max;   /* where to listen (0, 0: any port) */
	bool no_epmd;              /* EPMD-less: peers are named name@host:port */
	uint16_t epmd_port;        /* 0: ERL_EPMD_PORT or 4369 */
	uint32_t ticktime_s;       /* 0: 60, as OTP's net_ticktime */
	const char *const *connect;    /* nodes to connect to at start */
	int nconnect;
	bool allow_remote_spawn;   /* other nodes may start processes here */
	bool allow_code_push;      /* other nodes may push new versions here */
	/* The main module's bytes (served to nodes that spawn its functions:
	 * they must outlive the node) and its SHA-256. */
	const void *module_bytes;
	size_t module_len;
	unsigned char module_hash[RT_HASH_BYTES];
};

struct dist;

/* Push the version hash (loaded here, so its bytes are kept) to every
 * connected node, as the one that replaces old_hash: each loads it if it
 * allows pushes (--allow-code-push) and runs old_hash's version. The
 * number of nodes it was sent to, or -ENOENT (no such bytes here). */
int dist_push_code(struct dist *d, const unsigned char old_hash[RT_HASH_BYTES],
                   const unsigned char hash[RT_HASH_BYTES]);

/* A node: listening, registered with EPMD (started if absent, as erl
 * does) unless no_epmd. */
int dist_new(const struct dist_config *cfg, struct dist **out, char *err, size_t errlen);
void dist_free(struct dist *d);
/* What the runtime calls (rt_config.remote). */
const struct proc_remote *dist_remote(struct dist *d);

/* This node's full name. */
const char *dist_node_name(const struct dist *d);

/* ---- for the host layer (guest calls) ---- */

/* Send {tag, data} (or the term in data, for WISP_TAG_TERM) to the process
 * registered as `name` on `node` (from `from`, a local pid). A node that
 * cannot be reached drops it, as Erlang does. -EINVAL for a bad node name
 * or a payload that is not one term. */
int dist_send_named(struct dist *d, uint64_t from, const char *node, size_t nlen,
                    const char *name, size_t namelen, uint64_t tag, uint64_t ref,
                    const void *data, uint32_t len);
/* Names of the connected nodes, NUL-separated, into buf (at most cap
 * bytes); returns the bytes needed for all of them. *scanned: the entries
 * looked at (the work done, for the caller to charge). */
size_t dist_nodes(struct dist *d, char *buf, size_t cap, uint32_t *scanned);
/* The node name of a pid (local or remote) into buf; its length. */
size_t dist_pid_node(struct dist *d, uint64_t pid, char *buf, size_t cap);
/* A pid in the external format (NEW_PID_EXT, no version byte) into buf;
 * its length (0: a pid no node knows; more than cap: buf too small). */
size_t dist_pid_encode(struct dist *d, uint64_t pid, void *buf, size_t cap);
/* The pid in such bytes (made known here if new): 0, or -EINVAL. */
int dist_pid_decode(struct dist *d, const void *buf, size_t len, uint64_t *pid);
/* The pid that stands for node itself (NAME@HOST[:PORT]): a monitor of it
 * (noted with dist_note_monitor) gets DOWN noconnection when the node is
 * lost or cannot be reached. 0 for a bad name or this node. */
uint64_t dist_node_pid(struct dist *d, const char *node, size_t nlen);
/* Connect to node now (as net_kernel:connect_node): 0 once connected,
 * -EHOSTUNREACH (with a message) if it cannot be. Blocks the caller. */
int dist_connect(struct dist *d, const char *node, size_t nlen, char *err, size_t errlen);

/* Remote spawn (the requester's side, on a process's fiber). Ask node to
 * start fn(arg) of the module named hash, for `from`, with WISP_SPAWN_*
 * flags; the answer comes to `from` as a message tagged req_ref: sent by
 * the new process (from = its pid, empty payload) or by nobody (from = 0,
 * the reason as text). The new process waits for dist_spawn_go, which the
 * requester sends once it holds the link or monitor it asked for (mon_ref:
 * its monitor ref), so none of them can be missed. If the node is lost
 * before the requester calls dist_spawn_done (whatever it got), the answer
 * is a refusal by nobody: "unreachable: ...". */
int dist_spawn_request(struct dist *d, uint64_t from, const char *node, size_t nlen,
                       const unsigned char hash[RT_HASH_BYTES], uint32_t fn, const void *arg,
                       uint32_t len, uint32_t flags, uint64_t req_ref, uint64_t mon_ref,
                       const char *names, size_t names_len);
/* (names: NUL-terminated names the new process takes there before it
 * runs — a migrating process's; refused if one is taken there.) */
void dist_spawn_done(struct dist *d, uint64_t req_ref);
void dist_spawn_go(struct dist *d, uint64_t from, uint64_t child);
/* A link or monitor (ref) between local and remote made without a
 * signal (remote spawn): noted, so that losing the node tells local. */
void dist_note_link(struct dist *d, uint64_t local, uint64_t remote);
void dist_note_monitor(struct dist *d, uint64_t local, uint64_t remote, uint64_t ref);

/* A reason in the external format (as in struct reason, kind TERM) as
 * Erlang would print it, into buf. */
void dist_print_term(const void *term, size_t len, char *buf, size_t cap);

#endif
