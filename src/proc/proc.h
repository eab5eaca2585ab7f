/*
 * proc.h — wisp's processes and the runtime that schedules them.
 *
 * A process is an instance of a module running on its own fiber, with a
 * mailbox, links, monitors and names. The runtime (struct rt) owns the
 * schedulers (one thread each), the process table, the stack pool, the
 * registry and the timer id map. Nothing here is global: two runtimes can
 * live in one program.
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
 * - Scheduling state (state, pending_wake) is guarded by the process's
 *   spinlock `slock` (sched.c).
 * - struct proc memory is never freed while the runtime lives: a slot is
 *   reused by later processes with a new generation in the pid, so a racing
 *   sender holding a stale pointer writes into a live struct whose owner
 *   discards messages addressed to an older pid (msg->to).
 */
#ifndef WISP_PROC_H
#define WISP_PROC_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/engine.h"
#include "host/host.h"
#include "host/wasi.h"
#include "sched/fiber.h"
#include "sched/stack.h"
#include "wisp/guest.h"

struct caps;

struct rt;
struct sched;

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
};

struct reason {
	uint32_t kind;        /* WISP_EXIT_* */
	int32_t code;
	char text[200];       /* for TRAP: "unreachable in foo" */
};

struct msg {
	struct msg *next;
	uint64_t to;          /* the addressee's pid (incarnation check) */
	uint64_t from;
	uint64_t tag;         /* DATA: tag; DOWN: monitor ref */
	uint64_t ref;         /* DATA: request ref; monitor signals: ref */
	uint32_t kind;        /* enum msg_kind */
	uint32_t len;         /* bytes in data */
	int fd;               /* a socket moving with the message, or -1 */
	unsigned char data[]; /* DATA payload; EXIT/DOWN: wisp_exit_reason + text */
};

/* Lock-free multi-producer mailbox (mailbox.c). */
struct mailbox {
	_Atomic(struct msg *) head;   /* pushed by anyone; MBOX_CLOSED when dead */
	struct msg *first, *last;     /* owner's private FIFO of messages */
};

#define MBOX_CLOSED ((struct msg *)1)

enum proc_state { PS_FREE, PS_RUNNABLE, PS_RUNNING, PS_WAITING };
enum yield_why { Y_YIELD, Y_PARK, Y_EXIT };

struct pidref {               /* a monitor: ref and the other side */
	uint64_t ref;
	uint64_t pid;
};

struct proc {
	_Atomic uint64_t pid;     /* current incarnation; 0 while free */
	uint32_t index;
	uint32_t gen;
	struct mailbox mbox;
	atomic_bool exiting;      /* past the point of no return */

	/* scheduling (sched.c) */
	atomic_flag slock;
	uint8_t state;            /* enum proc_state, under slock */
	bool pending_wake;        /* woken while not waiting, under slock */
	uint8_t why;              /* enum yield_why, set before switching out */
	struct proc *rq_next;
	struct sched *sched;      /* scheduler running it / last ran it */
	_Atomic uint64_t wait_seq; /* identifies the current wait (timers, I/O) */
	struct fiber fiber;
	void *stack;

	/* execution */
	struct rt *rt;
	engine_instance *inst;
	struct host_proc host;
	bool is_main;
	uint32_t entry_fn;        /* spawn: table index, and its argument */
	unsigned char *arg;
	uint32_t arg_len;

	/* owned by the process itself (see the top of this file) */
	bool trap_exit;
	uint64_t *links;
	uint32_t nlinks, caplinks;
	struct pidref *watchers;  /* processes monitoring me */
	uint32_t nwatchers, capwatchers;
	struct pidref *watching;  /* processes I monitor */
	uint32_t nwatching, capwatching;
	atomic_uint nnames;       /* names registered for this process */

	/* Its wake timer (timers in rt_impl.h), reused for every timed wait so
	 * that parking with a timeout allocates nothing and leaves nothing
	 * behind; queued while in a scheduler's heap. */
	_Alignas(16) unsigned char wake_timer[80];
	atomic_bool wake_queued;
	struct caps *caps;        /* what it may do (shared, immutable) */
	uint64_t cpu_used;        /* reductions charged so far */
	struct caps *drafts[16];  /* capability sets it is building (wisp_caps) */

	struct reason reason;     /* why it ended (set by the exit path) */
	bool reason_set;          /* reason came from a signal, not the engine */
};

/* Runtime configuration. */
struct rt_config {
	int schedulers;           /* threads (0: one per online CPU) */
	int64_t reductions;       /* fuel per slice (0: 4000, like BEAM) */
	size_t stack_size;        /* per process (0: 256 KiB) */
	uint64_t max_message;     /* bytes (0: 64 MiB) */
	struct caps *root;        /* the main process's capabilities */
};

/* Run `mod` as the main process of a new runtime: its _start runs; returns
 * when it ends, after stopping every other process. *res is the main
 * process's result and *reason its exit reason. Returns 0; 1 if a
 * scheduler thread could not be stopped (stuck in a blocking call: the
 * module must then stay loaded, and the program should exit); or a
 * negative errno if the runtime could not start (message in err). */
int rt_run_main(engine_module *mod, const struct rt_config *cfg,
                struct engine_result *res, struct reason *reason,
                char *err, size_t errlen);

/* ---- used by the host functions (src/host/wisp_*.c), on a process's fiber ---- */

/* The process running on this thread. */
struct proc *proc_self(void);

/* Spawn with the parent's capabilities, or with `caps` (a set the parent
 * narrowed; the child holds a reference). */
int proc_spawn(struct proc *parent, uint32_t fn, const void *arg, uint32_t len,
               uint32_t flags, struct caps *caps, struct wisp_spawned *out);
int proc_send(struct proc *self, uint64_t to, uint64_t tag, uint64_t ref,
              const void *data, uint32_t len);
/* Send a socket (host fd, owned by the message from now on). */
int proc_send_fd(struct proc *self, uint64_t to, uint64_t tag, int host_fd);
/* Find (and wait for, up to timeout_ns) a message matching tags; on success
 * *out is the message, still queued: proc_take() or leave it. */
int proc_receive(struct proc *self, const uint64_t *tags, uint32_t ntags,
                 int64_t timeout_ns, struct msg **out);
void proc_take(struct proc *self, struct msg *m);
/* proc_receive that also returns WISP_EREADY as soon as host fd `fd` is
 * readable (a process waiting on its mailbox and a socket at once). */
int proc_receive_fd(struct proc *self, const uint64_t *tags, uint32_t ntags,
                    int fd, int64_t timeout_ns, struct msg **out);
int proc_request(struct proc *self, uint64_t to, uint64_t tag, const void *data,
                 uint32_t len, int64_t timeout_ns, struct msg **out);
int proc_link(struct proc *self, uint64_t pid);
int proc_unlink(struct proc *self, uint64_t pid);
int proc_monitor(struct proc *self, uint64_t pid, uint64_t *ref);
int proc_demonitor(struct proc *self, uint64_t ref);
int proc_kill(struct proc *self, uint64_t pid);
int proc_exit_signal(struct proc *self, uint64_t pid, int32_t code);
bool proc_alive(struct rt *rt, uint64_t pid);
void proc_yield(struct proc *self);
void proc_sleep(struct proc *self, int64_t ns);
int proc_send_after(struct proc *self, uint64_t to, uint64_t tag, const void *data,
                    uint32_t len, int64_t delay_ns, uint64_t *timer);
int proc_cancel_timer(struct proc *self, uint64_t timer);
int proc_register(struct proc *self, const char *name, uint32_t len, uint64_t pid);
int proc_unregister(struct proc *self, const char *name, uint32_t len);
int proc_whereis(struct proc *self, const char *name, uint32_t len, uint64_t *pid);
uint64_t proc_max_message(const struct proc *self);

/* Park until fd is ready for events (REACTOR_READ/WRITE), the timeout
 * passes (-ETIMEDOUT; timeout_ns < 0: none) or a signal arrives (spurious
 * returns are allowed: the caller retries its operation). 0 or -errno. */
int proc_wait_fd(struct proc *self, int fd, uint32_t events, int64_t timeout_ns);
/* The same for several fds: returns when any may be ready. */
int proc_wait_fds(struct proc *self, const int *fds, const uint32_t *events,
                  uint32_t n, int64_t timeout_ns);

/* Run fn(arg) on the runtime's blocking pool (for work that may block a
 * thread: DNS resolution) and park until it is done. 0, or -errno if it
 * could not be queued. */
int proc_run_blocking(struct proc *self, void (*fn)(void *), void *arg);

#endif
