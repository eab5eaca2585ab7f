/*
 * proc.h — wisp's processes, as the host functions (src/host) see them.
 *
 * A process is an instance of a module running on its own fiber (a task of
 * src/sched), with a mailbox, links, monitors, names, timers and a
 * capability set. The runtime (struct rt, proc_impl.h) owns the schedulers,
 * the process table, the registry and the pools. Nothing here is global:
 * two runtimes can live in one program.
 *
 * Who touches what (the one rule that keeps this lock-light):
 * - A process's own state — links, monitors, trap_exit, its private message
 *   list — is touched only by the process itself, on its fiber. Other
 *   processes change it by sending *signals* (link, unlink, monitor,
 *   demonitor, exit) through its mailbox, which the owner applies when it
 *   drains the mailbox, as BEAM does. So links need no locks and signals
 *   from one sender keep their order with its messages.
 * - The mailbox head is the only field other threads write: a lock-free
 *   push (mailbox.c).
 * - Scheduling state is the task's (src/sched), under its spinlock.
 * - struct proc memory is never freed while the runtime lives: a slot is
 *   reused by later processes with a new generation in the pid, so a racing
 *   sender holding a stale pointer writes into a live struct whose owner
 *   discards messages addressed to an older pid (msg->to).
 *
 * The host layer keeps its own per-process state (WASI, scratch buffers)
 * in `host`, an area of rt_config.hooks.host_size bytes allocated with the
 * struct; proc never looks inside it, it only calls the hooks.
 *
 * Error convention: 0 or a negative errno (table in docs/HACKING.md); the
 * host functions turn them into the guest's codes. A guest's broken
 * contract traps it (engine_trap_msg); a process that must end unwinds
 * through engine_exit and never returns to its caller.
 */
#ifndef WISP_PROC_H
#define WISP_PROC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/engine.h"
#include "sched/sched.h"
#include "wisp/guest.h"

struct caps;
struct log;
struct reg_name;
struct rt;
struct send_timer;

/* Pids: a local pid is generation << 32 | slot, generations of 31 bits
 * (ptable.c); bit 63 set marks a process of another node, which the
 * remote layer (struct proc_remote) names and reaches. */
#define PROC_PID_REMOTE (1ull << 63)
#define PROC_GEN_MAX 0x7fffffffu
static inline bool proc_pid_is_remote(uint64_t pid)
{
	return (pid & PROC_PID_REMOTE) != 0;
}

/* proc_receive_fd's "the fd is readable" (not an error). */
#define PROC_READY 1

/* What travels through a mailbox. DATA, EXIT and DOWN become messages the
 * guest receives (kind = WISP_MSG_*); the others are signals the owner
 * applies when draining. */
enum msg_kind {
	MSG_DATA = WISP_MSG_DATA,
	MSG_EXIT = WISP_MSG_EXIT,
	MSG_DOWN = WISP_MSG_DOWN,
	SIG_LINK = 16,        /* from wants a link */
	SIG_UNLINK,           /* from dropped its link */
	SIG_MONITOR,          /* from monitors the owner with ref */
	SIG_DEMONITOR,        /* from dropped monitor ref */
	SIG_EXIT_LINK,        /* linked process `from` ended with reason */
	SIG_EXIT,             /* exit signal sent by exit_signal() */
	SIG_KILL,             /* kill(): untrappable */
	SIG_MARK,             /* the remote layer's mark behind what from's node
	                         sent a process that moved (proc_forward_forever):
	                         queued in order by a forwarder, dropped by others */
};

struct reason {
	uint32_t kind;        /* WISP_EXIT_* */
	int32_t code;         /* CODE: the code; TERM: bytes of the term in text */
	char text[200];       /* TRAP: "unreachable in foo"; TERM: an Erlang
	                         term in the external format (no version byte) */
};

/* How many bytes of r->text the reason holds (a TERM's are binary). */
static inline size_t reason_text_len(const struct reason *r)
{
	if (r->kind == WISP_EXIT_TERM)
		return r->code > 0 && (size_t)r->code <= sizeof(r->text) ? (size_t)r->code : 0;
	size_t n = 0;
	while (n < sizeof(r->text) && r->text[n] != '\0')
		n++;
	return n;
}

struct msg {
	struct msg *next;
	_Atomic int64_t *acct;  /* the account it is charged to, or NULL */
	uint64_t to;          /* the addressee's pid (incarnation check) */
	uint64_t from;
	uint64_t tag;         /* DATA: tag; DOWN: monitor ref */
	uint64_t ref;         /* DATA: request ref; monitor signals: ref */
	uint32_t kind;        /* enum msg_kind */
	uint32_t len;         /* bytes in data */
	struct msg_socket *sock;  /* a socket moving with it, or NULL */
	unsigned char data[]; /* DATA payload; EXIT/DOWN: wisp_exit_reason + text */
};

/* A socket moving with a message: out of line, so that the header of the
 * many messages that carry none stays one cache line (64 bytes). */
struct msg_socket {
	int fd;                    /* the host fd, the message's (-1: taken) */
	_Atomic uint32_t *acct;    /* its sender's fds_in_flight */
	/* The host layer's state of the socket (a TLS session) or NULL, freed
	 * with extra_free (never closing fd) if the message is freed with the
	 * socket still in it. */
	void *extra;
	void (*extra_free)(void *extra);
};

/* Lock-free multi-producer mailbox (mailbox.c). */
struct mailbox {
	_Atomic(struct msg *) head;   /* pushed by anyone; MBOX_CLOSED when dead */
	struct msg *first, *last;     /* owner's private FIFO of messages */
	uint32_t n;                   /* messages in that list (owner's) */
};

/* What a parked process waits for (struct proc's wait_kind): set by the
 * call that parks it, for inspection (wisp ps). */
enum proc_wait {
	PROC_WAIT_NONE,
	PROC_WAIT_RECEIVE,      /* a message (wait_until: its timeout) */
	PROC_WAIT_RECEIVE_FD,   /* a message, or fd wait_on readable */
	PROC_WAIT_CALL,         /* the reply of process wait_on (request) */
	PROC_WAIT_SERVED,       /* a served file's server, wait_on (wasi_served.c) */
	PROC_WAIT_TIMER,        /* its timer (sleep) */
	PROC_WAIT_FD,           /* fd (wait_on & 0xffffffff) to be ready for
	                           REACTOR_* (wait_on >> 32): a socket, a pipe */
	PROC_WAIT_BLOCKING,     /* a job on the blocking pool (DNS, a compile) */
	PROC_WAIT_HIBERNATE,    /* a message, hibernated (hibernate()) */
};

struct proc_trace;

struct pidref {               /* a monitor: ref and the other side */
	uint64_t ref;
	uint64_t pid;
};

/* A small set owned by the process (signal.c). */
struct pidset {
	struct pidref *v;
	uint32_t n, cap;
};

struct proc {
	struct task task;         /* scheduling (src/sched) */
	_Atomic uint64_t pid;     /* current incarnation; 0 while free */
	uint32_t index;
	uint32_t gen;
	struct mailbox mbox;
	/* Sockets it sent (send_fd) that no one has received yet: they count
	 * against its fd limit until then, so a mailbox cannot hold fds
	 * beyond every limit. Kept across the slot's incarnations (never
	 * reset), so a late decrement from an old one cannot underflow. */
	_Atomic uint32_t fds_in_flight;
	atomic_bool exiting;      /* past the point of no return */
	atomic_flag trace_lock;   /* guards changes of `trace` (trace.c) */
	/* What it waits for (enum proc_wait), written by itself before it
	 * parks and read by an inspector under its task's lock (inspect.c);
	 * with the pid or fd waited on, and the wait's deadline (UINT64_MAX:
	 * none). */
	uint8_t wait_kind;
	_Atomic uint32_t wait_seq;/* identifies the current wait (I/O tokens) */
	uint64_t wait_on;
	uint64_t wait_until;
	/* Tracing (trace.c): the trace its events go to, or NULL: read by
	 * the process at every event (one branch when untraced), changed
	 * under trace_lock. */
	_Atomic(struct proc_trace *) trace;
	/* For inspection, set before its pid is published: who spawned it
	 * (0: the runtime or another node), and when (the scheduler group's
	 * coarse clock, ns). */
	uint64_t parent;
	uint64_t born_ns;         /* when it was made (the group's coarse clock) */
	/* Reductions of its ended slices, host work included (itself, at each
	 * slice end, and its last one at its end; read by anyone: ps, its
	 * crash report, the CPU limit): its slice in progress adds what its
	 * fuel lost. */
	_Atomic uint64_t reductions;

	/* execution */
	struct rt *rt;
	/* What it runs (the runtime's module table). Atomic: a reload's walk
	 * of the processes reads it from another thread (upgrade.c). */
	engine_module *_Atomic mod;
	engine_instance *inst;
	bool is_main;
	bool program;             /* runs its module's _start (proc_spawn_program) */
	engine_instance *old_inst;   /* the instance it just handed over from */
	uint32_t resume_fn;          /* and where the new one goes on (upgrade.c) */
	uint32_t entry_fn;        /* spawn: table index, and its argument */
	unsigned char *arg;
	uint32_t arg_len;

	/* owned by the process itself (see the top of this file) */
	bool trap_exit;
	bool forwarding;          /* in proc_forward_forever (SIG_MARK is kept) */
	/* Parked in a host call that holds no pointer into its memory across
	 * the park (proc_park_may_move): hibernating may move the memory. */
	bool park_may_move;
	/* 1 + its place among rt's code watchers, or 0 (upgrade.c: written
	 * under the modules' lock; zero or not is the process's own doing) */
	_Atomic uint32_t code_watch;
	/* Inside wisp_code_change (upgrade.c): the slices it may still run
	 * before it is stopped (rolled back); 0 otherwise. */
	uint32_t upgrade_slices;
	struct pidset links;      /* keyed by the linked pid */
	struct pidset watchers;   /* processes monitoring me */
	struct pidset watching;   /* processes I monitor */
	struct reg_name *names;   /* its registered names (registry's lock) */

	/* Its wake timer, reused for every timed wait, so that parking with a
	 * timeout allocates nothing and leaves nothing behind. */
	struct sched_timer wake;
	struct engine_frozen *frozen;   /* its memory, while hibernated */
	/* send_after timers aimed at it (timers.c), under tlock: they are
	 * charged to it, and cancelled when it ends (as BEAM does). */
	atomic_flag tlock;
	struct send_timer *timers;

	/* Memory: every byte the process holds or causes the host to hold —
	 * linear memory and tables (the engine charges them), its mailbox,
	 * timers aimed at it, names, host state — is charged to `usage`,
	 * against mem_limit (its capability's max_memory). What it asks for
	 * itself fails at the limit (memory.grow, a name, a file); what others
	 * push at it (messages, timers) ends it with reason LIMIT instead. */
	_Atomic int64_t usage;
	uint64_t mem_limit;       /* copied at spawn: senders read it */
	/* A push found it full: it ends at its next drain. Holds the pid of
	 * the incarnation the pusher meant (0: none): a sender racing with the
	 * slot's reuse must not end the next process in it. */
	_Atomic uint64_t over_limit;
	struct caps *caps;        /* what it may do (shared, immutable) */

	/* Why it must end, decided by a signal or a limit before the engine
	 * unwinds it (the first decision wins); text is malloc'd (NULL: none). */
	bool doomed;
	uint32_t doom_kind;
	int32_t doom_code;
	char *doom_text;          /* doom_len bytes (not NUL-terminated) */
	size_t doom_len;
	uint64_t doom_from;       /* the linked process whose exit signal
	                             decided it (0: its own trap or limit) */
	uint64_t killed_by;       /* the sender of the kill that decided it
	                             (0: none, or the runtime) */
	bool panic_quiet;         /* its panic was expected (report.c) */
};

/* The host layer's state of p: host_size bytes right after the struct. */
static inline void *proc_host(struct proc *p)
{
	return (char *)p + sizeof(*p);
}

/* What the layer above (src/host) gives the runtime: the size of its
 * per-process state and what to do with it. */
struct proc_hooks {
	size_t host_size;
	/* A new process (host zeroed) is about to create its instance. */
	void (*start)(void *host, struct proc *p);
	/* Its instance exists (instantiation done, no export run yet). */
	void (*ready)(void *host, engine_instance *inst);
	/* It is ending, on its fiber, before its links, monitors and names
	 * hear of it (may be NULL): end what others must see end first
	 * (a served file's CLOSE reaches its server before the DOWN). */
	void (*exiting)(void *host);
	/* It ended, or the runtime discards it: free what host holds. */
	void (*end)(void *host);
};

/* The layer that reaches processes of other nodes (src/dist), handed
 * down by the embedder. proc routes every message and signal addressed to
 * a remote pid (PROC_PID_REMOTE) to deliver(); the remote layer brings
 * others' messages and signals in with proc_deliver(), their senders
 * named by remote pids. */
struct proc_remote {
	/* The runtime is up (before the main process starts): start work.
	 * 0 or a negative errno (message in err): the run does not start. */
	int (*attach)(void *ctx, struct rt *rt, char *err, size_t errlen);
	/* The runtime is stopping: no more deliveries into it after this
	 * returns; deliver() may still be called and drops then. */
	void (*detach)(void *ctx);
	/* m, addressed to remote pid m->to, is the remote layer's now (it
	 * answers a link or monitor request itself if the node cannot be
	 * reached). False: no such node; m is not consumed. */
	bool (*deliver)(void *ctx, struct msg *m);
	/* A forwarder (proc_forward_forever) passes m on to remote pid m->to:
	 * as deliver(), but to that pid as it is, never redirected to where
	 * it moved (a redirection to a process of this node could hand m back
	 * to the forwarder: another node's claims would have it pass m round
	 * for ever). */
	bool (*forward)(void *ctx, struct msg *m);
	/* Whether the node of remote pid is connected. */
	bool (*alive)(void *ctx, uint64_t pid);
	/* The calling thread's process stops running (parks, yields, ends):
	 * write what it sent. (What a process sends to other nodes while it
	 * runs goes out in one write when it stops, not one per message.) */
	void (*flush)(void *ctx);
	/* A forwarder (proc_forward_forever) passed on a message: old (it) to
	 * to, from remote pid sender; the sender's node may learn where old
	 * went. */
	void (*moved)(void *ctx, uint64_t old, uint64_t to, uint64_t sender);
	/* A forwarder met a SIG_MARK from remote pid marker: everything
	 * marker's node sent old before it has been passed on to to. */
	void (*marked)(void *ctx, uint64_t old, uint64_t to, uint64_t marker);
	/* A module was loaded as a new version (rt_code_load): keep its bytes
	 * to ship to nodes that spawn its functions (copied). */
	void (*loaded)(void *ctx, const unsigned char *hash, const void *bytes,
	               size_t len);
	/* That version was unloaded (nobody runs it any more): its bytes can
	 * go (NULL: nothing to do). */
	void (*forgot)(void *ctx, const unsigned char *hash);
	/* A socket armed with rt_remote_arm is readable (or broken): token is
	 * what it was armed with. On a scheduler thread, between processes
	 * (no process runs on it meanwhile), so the processes it wakes run
	 * next on this thread. */
	void (*io_ready)(void *ctx, uint64_t token);
	void *ctx;
};

/* Loading modules while the runtime runs (a module another node ships, a
 * new version): the embedder's compiler, handed down. */
struct proc_loader {
	/* Compile and load the module in bytes, named `what` in messages; 0
	 * or a negative errno (message in err). May take seconds: never called
	 * on a scheduler's thread. */
	int (*load)(void *ctx, const char *what, const void *bytes, size_t len, engine_module **out,
	            char *err, size_t errlen);
	void *ctx;
};

#define RT_HASH_BYTES 32          /* SHA-256: a module's name between nodes */

/* Runtime configuration. */
/* Who controls the runtime from outside (a control socket): started once
 * the runtime is up, stopped before it stops. */
struct proc_control {
	int (*attach)(void *ctx, struct rt *rt, char *err, size_t errlen);
	void (*detach)(void *ctx);
	void *ctx;
};

struct rt_config {
	int schedulers;           /* threads (0: one per online CPU) */
	int64_t reductions;       /* fuel per slice (0: 4000, like BEAM) */
	size_t stack_size;        /* per process (0: 256 KiB) */
	uint64_t max_message;     /* bytes (0: 64 MiB) */
	struct caps *root;        /* the main process's capabilities */
	const struct proc_hooks *hooks;
	/* Set (to a signal number) by the embedder to stop the runtime: the
	 * main process gets an exit signal with reason SHUTDOWN; if it has not
	 * ended after shutdown_grace_ns, or the flag is set again (a new
	 * number or a count), everything stops at once. NULL: never. */
	atomic_int *stop;
	uint64_t shutdown_grace_ns;   /* 0: 5 s */
	/* No main process (wisp serve: the embedder spawns programs with
	 * rt_spawn_program): the runtime runs until stopped, and then until
	 * its processes have ended (or shutdown_grace_ns has passed). */
	bool no_main;
	/* Processes waiting longer than this hibernate (0: never). */
	uint64_t hibernate_after_ns;
	/* Other nodes (NULL: this runtime is alone). */
	const struct proc_remote *remote;
	/* The main module's bytes' SHA-256, and how to load others (NULL:
	 * no module but the main one). */
	unsigned char module_hash[RT_HASH_BYTES];
	const struct proc_loader *loader;
	const struct proc_control *control;   /* (NULL: none) */
	/* Where crash reports go (report.c; NULL: nowhere). */
	struct log *log;
};

/* Run `mod` as the main process of a new runtime (which owns mod from now
 * on, and unloads it: at the end, or once a newer version is current and
 * no process runs it): its _start runs; returns
 * when it ends, after stopping every other process. *res is the main
 * process's result and *reason its exit reason. Returns 0; 1 if a
 * scheduler thread could not be stopped (stuck in a blocking call: the
 * runtime and its modules then stay, and the program should exit); or a
 * negative errno if the runtime could not start (message in err). */
int rt_run_main(engine_module *mod, const struct rt_config *cfg,
                struct engine_result *res, struct reason *reason,
                char *err, size_t errlen);
#define RT_STOPPED 2   /* rt_run_main: stopped by cfg->stop before the main ended */

/* ---- used by the host functions (src/host), on a process's fiber ---- */

/* The process running on this thread, or NULL. */
struct proc *proc_self(void);
uint64_t proc_pid(const struct proc *p);

/* Spawn with the parent's capabilities, or with `caps` (a set the parent
 * narrowed; the child holds a reference). -EPERM (no spawn capability),
 * -EAGAIN (a process limit), -EINVAL (flags, no spawn entry), -ENOMEM.
 * A program is a whole WASI command module, mod (held by the caller; the
 * child holds its own): its _start runs, and host_init (copied) waits for
 * the host layer to take when it starts (its stdio, say); -EINVAL if mod
 * has no _start. */
int proc_spawn_program(struct proc *parent, engine_module *mod, const void *host_init,
                       uint32_t len, uint32_t flags, struct caps *caps,
                       struct wisp_spawned *out);
/* What a program's spawn left for the host (malloc'd, the caller's now),
 * or NULL: taken once, when the process starts (proc_hooks.start). */
void *proc_take_host_init(struct proc *p, uint32_t *len);
int proc_spawn(struct proc *parent, uint32_t fn, const void *arg, uint32_t len,
               uint32_t flags, struct caps *caps, struct wisp_spawned *out);
/* -EMSGSIZE over the size limit, -ENOMEM; a dead addressee is no error. */
int proc_send(struct proc *self, uint64_t to, uint64_t tag, uint64_t ref,
              const void *data, uint32_t len);
/* Send a socket (host fd, owned by the message from now on), with the
 * host layer's state of it (`extra`, NULL for none; owned by the message
 * too: extra_free frees it if nobody receives it, also when the send
 * fails). */
int proc_send_fd(struct proc *self, uint64_t to, uint64_t tag, int host_fd,
                 void *extra, void (*extra_free)(void *extra));
/* Find (and wait for, up to timeout_ns; < 0: forever) a message matching
 * tags; on success *out is the message, still queued: proc_take() it or
 * leave it. -ETIMEDOUT. */
int proc_receive(struct proc *self, const uint64_t *tags, uint32_t ntags,
                 int64_t timeout_ns, struct msg **out);
void proc_take(struct proc *self, struct msg *m);
/* proc_receive that also returns PROC_READY as soon as host fd `fd` is
 * readable (a process waiting on its mailbox and a socket at once);
 * -EINVAL for an fd the reactor cannot watch. `edge`: fd is registered
 * (proc_fd_watch). */
int proc_receive_fd(struct proc *self, const uint64_t *tags, uint32_t ntags,
                    int fd, bool edge, int64_t timeout_ns, struct msg **out);
/* Send and wait for the reply (-ESRCH: the callee died or never existed;
 * -EINVAL: to self). */
int proc_request(struct proc *self, uint64_t to, uint64_t tag, const void *data,
                 uint32_t len, int64_t timeout_ns, struct msg **out);
int proc_link(struct proc *self, uint64_t pid);
int proc_unlink(struct proc *self, uint64_t pid);
int proc_monitor(struct proc *self, uint64_t pid, uint64_t *ref);
/* -ENOENT: no such monitor. */
int proc_demonitor(struct proc *self, uint64_t ref);
int proc_kill(struct proc *self, uint64_t pid);
int proc_exit_signal(struct proc *self, uint64_t pid, int32_t code);
bool proc_alive(struct rt *rt, uint64_t pid);
bool proc_set_trap_exit(struct proc *self, bool on);
void proc_yield(struct proc *self);
/* Wait for the next message or signal with the process hibernated: its
 * stack and memory go back to the kernel until then. Returns at once if
 * one is queued already. */
void proc_hibernate(struct proc *self);
void proc_sleep(struct proc *self, int64_t ns);
/* Around a park by a host call that holds no pointer into the guest's
 * memory across it (it resolves guest addresses again afterwards): then,
 * and only then, hibernation may move the memory to another pool slot,
 * which wakes without page faults. Every other park keeps the memory's
 * address (a WASI read's iovecs, a poll's event array point into it). */
static inline void proc_park_may_move(struct proc *self, bool on)
{
	self->park_may_move = on;
}
int proc_send_after(struct proc *self, uint64_t to, uint64_t tag, const void *data,
                    uint32_t len, int64_t delay_ns, uint64_t *timer);
/* -ENOENT: fired already, cancelled, or never existed. */
int proc_cancel_timer(struct proc *self, uint64_t timer);
/* Names of 1..255 bytes. -EEXIST, -ESRCH (pid not alive), -ENOENT. */
int proc_register(struct proc *self, const char *name, uint32_t len, uint64_t pid);
int proc_unregister(struct proc *self, const char *name, uint32_t len);
int proc_whereis(struct proc *self, const char *name, uint32_t len, uint64_t *pid);

/* End self with a panic: reason TRAP, code WISP_TRAP_PANIC, text the
 * first len bytes of text (cut at a NUL, shortened to fit a reason at a
 * character's boundary). quiet: someone expects it (a test that must
 * panic), so its crash report is at level info. Never returns. */
_Noreturn void proc_panic(struct proc *self, const char *text, size_t len, bool quiet);
/* Where the runtime's reports go (rt_config.log; NULL: nowhere). */
struct log *proc_log(const struct proc *p);

/* The remote layer's context (rt_config.remote->ctx), or NULL. */
void *proc_remote_ctx(const struct proc *p);
/* The SHA-256 of the module self runs (false: unknown). */
bool proc_module_hash(struct proc *self, unsigned char hash[RT_HASH_BYTES]);
/* A fresh reference (bit 63 set). */
uint64_t proc_make_ref(struct proc *self);
/* self's registered names, each followed by a NUL (registry_names_of). */
size_t proc_names(struct proc *self, char *buf, size_t cap);
/* Self hands itself over to `to`, its new incarnation (migration), and
 * forwards from now on: its queued messages, then every later one, go to
 * `to` with their sender, tag and ref; an exit signal from a process it
 * is linked to reaches `to` as one from that process (`to` sees what self
 * would have: a message if self trapped exits; else an abnormal one ends
 * self, and through their link, `to`); an EXIT from `to` ends self with
 * `to`'s reason, so whoever links to or monitors self sees the new
 * incarnation's end. DOWNs of the monitors self held are dropped (the new
 * incarnation makes its own). Self must be linked to `to`. Never returns. */
_Noreturn void proc_forward_forever(struct proc *self, uint64_t to);
/* Hold a link to remote pid, and/or a monitor of it with mon_ref (0:
 * none), whose other side the remote node made already (remote spawn):
 * no signal is sent. 0 or -ENOMEM. */
int proc_bond_remote(struct proc *self, uint64_t pid, bool link, uint64_t mon_ref);

/* ---- used by the remote layer (src/dist), on its own threads ---- */

/* Push m into local pid's mailbox and wake it. False (m not consumed) if
 * pid is not alive. */
bool rt_deliver(struct rt *rt, uint64_t pid, struct msg *m);
/* m could not be delivered: answer a link or monitor request in it as a
 * dead process does (NOPROC), and free it. */
void rt_refuse(struct rt *rt, struct msg *m);
/* A fresh reference (bit 63 set). */
uint64_t rt_new_ref(struct rt *rt);
/* The pid registered under name, or 0. */
uint64_t rt_whereis(struct rt *rt, const char *name, uint32_t len);
/* The most a message may hold. */
uint64_t rt_max_message(const struct rt *rt);
/* The remote layer's sockets, read by the schedulers (docs/architecture.md,
 * "Latency between nodes"): report fd once, when it is readable or broken,
 * to remote->io_ready(token) on whichever scheduler polls (one-shot: armed
 * again by calling this again). token < 2^63. 0 or a negative errno. A
 * closed fd leaves the reactor by itself. */
int rt_remote_arm(struct rt *rt, int fd, uint64_t token);

/* State the host layer keeps for the whole runtime (a cache shared by
 * every process, say), one per `make` function: made by make() on the
 * first call (under the runtime's lock; NULL from make: no state, the
 * next call tries again), the same pointer afterwards, freed with
 * destroy() when the runtime is freed (after every process and message).
 * At most RT_HOST_SHARED kinds; NULL past that or if make fails. */
#define RT_HOST_SHARED 4
void *rt_host_shared(struct rt *rt, void *(*make)(void), void (*destroy)(void *));
/* One socket more (true) or less (false) is armed for good: while any is,
 * an idle scheduler waits in the reactor rather than on its condition
 * variable. */
void rt_remote_watching(struct rt *rt, bool more);

/* The module table (modules.c): modules by the SHA-256 of their bytes.
 * A module found or loaded is held for the caller, who gives it back with
 * rt_module_put once done with it (a process made of it holds its own):
 * a version of the main module that nobody holds and that is no longer
 * current is unloaded. */
engine_module *rt_module_find(struct rt *rt, const unsigned char hash[RT_HASH_BYTES]);
/* Hold m once more (the caller holds it already) / give a hold back. */
void rt_module_hold(engine_module *m);
void rt_module_put(struct rt *rt, engine_module *m);
/* The hash of a module of the table (false: not one). */
bool rt_module_hash(const engine_module *mod, unsigned char hash[RT_HASH_BYTES]);
/* better is the module named hash built better (the optimized tier, from
 * the same bytes): new processes of it are made of better from now on
 * (engine_module_latest), those running go on as they are; the table owns
 * better then. -ENOENT if hash is not in the table (any more), -EEXIST if
 * it has a better build already. */
int rt_module_better(struct rt *rt, const unsigned char hash[RT_HASH_BYTES],
                     engine_module *better);
/* Whether mod is such a better build. */
bool rt_module_is_better(const engine_module *mod);
/* Load bytes as the module named hash (checked: -EBADMSG if they are not
 * that module's; `what` names it in messages), or find it loaded already;
 * held for the caller. Blocks while compiling, and while another thread
 * loads or unloads the same hash: never on a scheduler's thread.
 * -ENOTSUP without a loader. */
int rt_module_load(struct rt *rt, const unsigned char hash[RT_HASH_BYTES], const void *bytes,
                   size_t len, const char *what, engine_module **out, char *err, size_t errlen);

/* Hot code reload (upgrade.c). The version of the main module m is (0:
 * none), and the current one (its module in *mod if mod, held for the
 * caller: rt_module_put). */
uint32_t rt_code_version(struct rt *rt, const engine_module *m);
uint32_t rt_code_current(struct rt *rt, engine_module **mod);
/* The current version's number, and its hash in hash. */
uint32_t rt_code_current_hash(struct rt *rt, unsigned char hash[RT_HASH_BYTES]);
/* The most wisp_code_change may run: 67M reductions (a tight loop here
 * reaches it in about 0.7 s of CPU; reading a state takes about one per
 * 64 bytes copied by the host, or per trip of a guest's own loop). Past
 * it, it is stopped and the process goes on in its old version. */
#define RT_UPGRADE_MAX_REDUCTIONS (1ull << 26)
/* The most a new version's module may hold (the compile limits bound what
 * compiling it takes): rt_code_load refuses more (-EFBIG). */
#define RT_CODE_MAX_BYTES (256u << 20)
/* Load bytes as the next version of the main module, which becomes
 * current (watchers are told): its number in *vsn. Blocks while
 * compiling (never on a scheduler's thread). -EINVAL (message in err) if
 * it cannot take over processes, -EEXIST if those bytes are a version
 * already (its number in *vsn), -EBUSY if processes (other than the main
 * one) still run a version older than the current one — the new version
 * would make theirs the third — unless purge, which kills them (reason
 * KILLED, "purged: ...") and says so in err ("purged N processes ...";
 * err is left as it was on a success that purged nobody); or
 * rt_module_load's errors. */
int rt_code_load(struct rt *rt, const void *bytes, size_t len, bool purge, uint32_t *vsn,
                 char *err, size_t errlen);
/* Get (or stop getting) a WISP_TAG_CODE message, from 0, with the new
 * version's number (u32), whenever a version becomes current. */
int proc_code_watch(struct proc *self, bool on);
/* The module self runs. */
engine_module *proc_module(const struct proc *self);
/* The version of the main module self runs (0: none). */
uint32_t proc_code_version(struct proc *self);
/* Hand self over to the current version (the state: len bytes the new
 * code's wisp_code_change reads as its spawn argument). Returns only on
 * failure, with why: -ENOENT (it runs the current version already),
 * -EBUSY (called from wisp_code_change: self is moving already),
 * -ECANCELED (the new version refused or trapped: self goes on as it
 * was), -ENOMEM. A process killed while wisp_code_change ran ends
 * instead of returning. */
int proc_upgrade(struct proc *self, const void *state, uint32_t len, char *why, size_t whylen);
/* The limits an instance of p is made with. */
void proc_instance_limits(struct proc *p, struct engine_limits *lim);

/* A program (see proc_spawn_program) of mod (held by the caller), started
 * by the embedder from a thread of its own, with caps: its pid, or 0 and
 * *err: -EAGAIN (caps' process limit), -EINVAL (no _start), -ENOMEM. */
uint64_t rt_spawn_program(struct rt *rt, engine_module *mod, struct caps *caps,
                          const void *host_init, uint32_t len, int *err);
/* A process of mod made for another node, not started (its pid known,
 * not yet reachable): fn(arg) in a new instance, with the runtime's root
 * capabilities; linked to remote pid link_to (0: none) and monitored by
 * remote pid watcher with watch_ref (0: none). NULL and *err: -EAGAIN
 * (a limit), -EINVAL (no spawn entry), -ENOMEM. */
struct proc *rt_spawn_unstarted(struct rt *rt, engine_module *mod, uint32_t fn,
                                const void *arg, uint32_t len, uint64_t link_to,
                                uint64_t watcher, uint64_t watch_ref, int *err);
uint64_t rt_unstarted_pid(const struct proc *p);
/* Register a started process under name (a migrated process's names):
 * 0, -EEXIST, -ESRCH, -ENOMEM. */
int rt_register(struct proc *p, const char *name, uint32_t len);
void rt_start_unstarted(struct proc *p);
void rt_drop_unstarted(struct proc *p);
uint64_t proc_max_message(const struct proc *self);
/* Charge the CPU work of a host call that moved `bytes` to the calling
 * process (its slice ends sooner; past its CPU limit it ends with LIMIT,
 * unwinding out of the call). */
void proc_charge_work(struct proc *self, uint64_t bytes);
/* The CPU time the process has run, in ns (its own, not the host's). */
uint64_t proc_cpu_time_ns(const struct proc *p);
/* Charge bytes of host state to p (the host layer's allocations: WASI
 * tables, buffers): 0, or -ENOMEM (nothing charged) past its limit. */
int proc_charge(struct proc *p, uint64_t bytes);
void proc_uncharge(struct proc *p, uint64_t bytes);
/* The spawn argument (spawn_arg). */
const unsigned char *proc_arg(const struct proc *self, uint32_t *len);

/* Park until fd is ready for events (REACTOR_READ/WRITE), the timeout
 * passes (-ETIMEDOUT; timeout_ns < 0: none) or a signal arrives (spurious
 * returns are allowed: the caller retries its operation). 0 or -errno. */
int proc_wait_fd(struct proc *self, int fd, uint32_t events, int64_t timeout_ns);
/* The same for several fds: returns when any may be ready. */
int proc_wait_fds(struct proc *self, const int *fds, const uint32_t *events,
                  uint32_t n, int64_t timeout_ns);

/* Registered fds (src/io/reactor.h, "registered once"): a socket a
 * process owns is registered with the runtime's reactor once
 * (proc_fd_watch: 0, or -errno and the fd is waited for the one-shot way),
 * and each read or write that may find it not ready takes a ticket first
 * (proc_fd_ticket, no system call); after EAGAIN, the wait below parks
 * unless an edge came since the ticket. */
int proc_fd_watch(struct proc *self, int fd);
/* Before closing a registered fd (reactor_unwatch); p: who registered it
 * (any thread, or the runtime's teardown). */
void proc_fd_unwatch(struct proc *p, int fd);
uint64_t proc_fd_ticket(struct proc *self, int fd);
/* reactor_drained: may a read of registered stream socket fd, which the
 * read after `ticket` emptied, be skipped for a wait? */
bool proc_fd_drained(struct proc *self, int fd, uint64_t ticket);

/* One fd of a wait: `edge` says it is registered and `ticket` was taken
 * before the caller last found it not ready; else it is armed one-shot. */
struct proc_fd_wait {
	int fd;
	uint32_t events;      /* REACTOR_READ | REACTOR_WRITE */
	bool edge;
	uint64_t ticket;
};
/* Park until one of the n fds may be ready, the timeout passes
 * (-ETIMEDOUT; timeout_ns < 0: none) or a signal arrives. 0: look again
 * (woken, or an edge came since a ticket: no park at all; spurious returns
 * are allowed). -errno: a one-shot fd the reactor cannot watch (-EPERM),
 * -ENOMEM for the timer. */
int proc_wait_fdset(struct proc *self, const struct proc_fd_wait *w, uint32_t n,
                    int64_t timeout_ns);

/* Run fn(arg) on the runtime's blocking pool (for work that may block a
 * thread: DNS resolution) and park until it is done. 0, or -errno if it
 * could not be queued. */
int proc_run_blocking(struct proc *self, void (*fn)(void *), void *arg);

/* ---- statistics (stats.c) ----
 *
 * Counters of what the runtime did, kept per scheduler thread (plain
 * stores to the thread's own cache line, summed when read) so that
 * counting costs a spawn or a message no shared atomic; threads that are
 * no scheduler count into one shared slot. */
#define RT_EXIT_KINDS (WISP_EXIT_TERM + 1)
/* An exit kind's name, as reports, metrics' labels and `wisp stats` say
 * it ("normal", "trap", ...; "unknown" past RT_EXIT_KINDS; report.c). */
const char *proc_exit_kind_name(uint32_t kind);
/* A reason's: its kind's, or "panic" for a trap that was a panic. */
const char *proc_reason_name(const struct reason *why);
enum rt_counter {
	RT_SPAWNED,                   /* processes made visible (every spawn) */
	RT_EXITED,                    /* + a WISP_EXIT_* kind: processes ended */
	RT_MSG_SENT = RT_EXITED + RT_EXIT_KINDS,   /* data messages processes sent */
	RT_DROPPED_NOPROC,            /* data messages to no such (or a dead) process */
	RT_DROPPED_LIMIT,             /* ... refused by the addressee's memory limit */
	RT_DROPPED_NONODE,            /* ... to a pid of a node not known */
	RT_MSG_BYTES_IN,              /* bytes of messages charged to mailboxes */
	RT_MSG_BYTES_OUT,             /* ... and taken off them again */
	RT_REDUCTIONS,                /* reductions processes used */
	RT_SOCKETS_OPENED,            /* sockets that entered a process's fd table */
	RT_SOCKETS_CLOSED,            /* ... and left one */
	RT_COUNTERS
};
/* Add n to counter c (any thread). WISP_NO_STATS compiles counting out:
 * the baseline bench/metrics_run.py measures counting against. */
#ifndef WISP_NO_STATS
void rt_count(struct rt *rt, enum rt_counter c, uint64_t n);
#else
static inline void rt_count(struct rt *rt, enum rt_counter c, uint64_t n)
{
	(void)rt;
	(void)c;
	(void)n;
}
#endif

/* The runtime's figures, as of now: O(schedulers), never a walk over the
 * processes (each figure is read on its own: they may be an event apart). */
struct rt_stats {
	uint64_t uptime_ns;
	uint64_t counter[RT_COUNTERS];   /* summed over the threads */
	uint64_t processes;              /* alive (spawned and not yet reaped) */
	uint64_t hibernated;
	uint64_t names;                  /* registered names */
	uint64_t io_waiting;             /* processes waiting for an fd */
	uint64_t sockets;                /* open, in processes' fd tables */
	uint64_t global_queued;          /* runnable, in the global queue */
	/* Memory, in bytes of address space (pages are committed on first
	 * touch): linear memories in pool slots and mapped on their own, the
	 * pool's slabs, fiber stacks in use and all stack slabs, messages
	 * queued (charged to mailboxes, send_after timers included), and the
	 * process table's records. */
	uint64_t mem_linear_pooled, mem_linear_own, mem_linear_slabs;
	uint64_t mem_stacks, mem_stack_slabs;
	uint64_t mem_messages;
	uint64_t mem_process_table;
	int nsched;
	struct sched_stats sched[];      /* nsched of them */
};
/* A snapshot of rt's figures (malloc'd: the caller frees it), or NULL if
 * out of memory. Any thread, while the runtime runs. */
struct rt_stats *rt_stats_read(struct rt *rt);

#endif
