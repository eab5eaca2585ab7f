/*
 * caps.h — a process's capabilities: what the host lets it do.
 *
 * A capability set is immutable once a process holds it and shared by
 * reference: a child spawned plainly holds its parent's set; a child
 * spawned with a set the parent built (wisp_caps) holds that one, which can
 * only be narrower than the parent's — every builder operation drops or
 * lowers something, none adds. The root set comes from `wisp run`'s options.
 *
 * Enforcement is at the host boundary: WASI sees only the directories,
 * environment and stdio of the set (the kernel confines paths beneath the
 * preopens); wisp_net checks the network rules; spawning checks may_spawn and
 * the process quota; the engine enforces the memory limit (memory.grow
 * fails); the scheduler charges reductions against the CPU limit; sends
 * check the message size limit.
 */
#ifndef WISP_CAPS_H
#define WISP_CAPS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "host/wasi.h"

enum cap_stdio { CAP_STDIO_INHERIT = 0, CAP_STDIO_NULL = 1, CAP_STDIO_CLOSED = 2 };

/* A network rule: host is an address literal or "*"; port 0 means any. */
struct net_rule {
	char host[64];
	uint16_t port;
};

struct caps {
	atomic_int refs;
	struct caps *parent;          /* the set this one was narrowed from */
	/* files, environment, arguments, stdio (as WASI will see them) */
	struct wasi_preopen *dirs;
	int ndirs;
	char **env;
	int nenv;
	char **args;
	int nargs;
	uint8_t stdio[3];             /* enum cap_stdio */
	/* network */
	struct net_rule *connect, *listen;
	int nconnect, nlisten;
	bool udp, dns;
	/* processes */
	bool may_spawn, may_create_caps;
	uint64_t max_processes;       /* live processes spawned under this set */
	atomic_uint_fast64_t live;
	/* limits (UINT64_MAX: none) */
	uint64_t max_memory;          /* bytes of linear memory */
	uint64_t max_cpu;             /* reductions over the process's lifetime */
	uint64_t max_message;         /* bytes per message */
	/* derived: what WASI is built from */
	struct wasi_config wasi;
	int null_fd;                  /* /dev/null for CAP_STDIO_NULL, or -1 */
	bool verbose;                 /* log denials (wisp run -v) */
	bool frozen;                  /* a process holds it: no more changes */
};

/* An empty set: nothing allowed, no limits set yet (UINT64_MAX). */
struct caps *caps_new(void);
/* A mutable copy of c (refs 1, parent c), for narrowing. */
struct caps *caps_derive(struct caps *c);
void caps_ref(struct caps *c);
void caps_unref(struct caps *c);
/* Build c->wasi from the fields (after the last change). 0 or -errno. */
int caps_finish(struct caps *c);

/* Add to a set being built by the CLI (the root): returns 0 or -EINVAL. */
int caps_add_dir(struct caps *c, const char *host, const char *guest, bool ro);
int caps_add_env(struct caps *c, const char *kv);
int caps_set_args(struct caps *c, int argc, const char *const *argv);
int caps_add_rule(struct caps *c, bool listen, const char *spec);

/* Checks (host code; a denial is logged when verbose). */
bool caps_may_connect(const struct caps *c, const char *host, unsigned port);
bool caps_may_listen(const struct caps *c, const char *host, unsigned port);

/* Count a new process against the quotas of c and the sets it was
 * narrowed from; false (nothing counted) if one is full. */
bool caps_charge(struct caps *c);
void caps_uncharge(struct caps *c);

/* Print "wisp: denied: ..." to stderr if c->verbose. */
void caps_log_denied(const struct caps *c, uint64_t pid, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
