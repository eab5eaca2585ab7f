/*
 * inspect.h — looking into a running runtime from outside its processes:
 * listing them (wisp ps), one in detail (wisp inspect), an exit signal
 * from outside (wisp kill) and tracing one (wisp trace). inspect.c and
 * trace.c; the control socket (src/cli) is the user.
 *
 * Nothing here stops the world. A process is looked at under its own
 * task's spinlock for a moment (sched_task_peek): while it is not running
 * it cannot start, so what only it writes — its links, its mailbox list,
 * its wait, its stack — can be read; a running one shows what any thread
 * may read (its pid, account, reductions so far). A process that ends
 * while the listing walks the table is left out; the struct it lived in
 * is never freed while the runtime lives (ptable.c), so a walk cannot
 * read freed memory whatever it races with.
 *
 * Error convention: proc's (0 or a negative errno).
 */
#ifndef WISP_PROC_INSPECT_H
#define WISP_PROC_INSPECT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "proc.h"

/* How a process is, as listed. */
enum proc_view {
	PROC_VIEW_RUNNING,      /* on a scheduler now */
	PROC_VIEW_RUNNABLE,     /* in a run queue */
	PROC_VIEW_WAITING,      /* parked (wait says for what) */
	PROC_VIEW_HIBERNATED,   /* parked, its stack and memory given back */
};
const char *proc_view_name(enum proc_view v);
/* "receive", "call", ... ("" for PROC_WAIT_NONE). */
const char *proc_wait_name(enum proc_wait w);

#define PROC_INFO_NAME 256       /* a registered name (255 bytes) + NUL */
#define PROC_INFO_FUNCTION 128

/* One process, as wisp ps lists it. Strings are NUL-terminated and hold
 * the guest's bytes as they are (a name, a wasm function name): escape
 * them before they reach a terminal. */
struct proc_info {
	uint64_t pid;
	uint64_t parent;         /* 0: the runtime or another node */
	enum proc_view state;
	enum proc_wait wait;     /* WAITING/HIBERNATED: what for (else NONE) */
	uint64_t wait_on;        /* CALL, SERVED: the pid; FD, RECEIVE_FD: the fd */
	int64_t wait_left_ns;    /* time to the wait's deadline (-1: none) */
	uint64_t reductions;     /* in all, the slice in progress but a running one's */
	uint64_t memory;         /* its account: linear memory, tables, mailbox,
	                            timers, names, host state (bytes) */
	uint64_t stack;          /* native stack in use (bytes; 0 while running) */
	uint32_t mailbox;        /* messages queued (0 while running: unknown;
	                            those not yet drained counted up to 1,000) */
	uint64_t age_ns;
	uint64_t cpu_ns;         /* CPU time it ran (0 while running) */
	bool is_main, program;
	uint32_t nnames;         /* names it is registered under */
	char name[PROC_INFO_NAME];          /* the first of them, or "" */
	char function[PROC_INFO_FUNCTION];  /* the wasm function it is in, or "" */
};

/* Call emit(info, ctx) for every live process, slot by slot, each looked
 * at for a moment under its task's lock (no global lock; a process
 * started or ended during the walk may or may not be listed). Stops when
 * emit returns nonzero (that value is returned) or *stop becomes true
 * (-ECANCELED); else returns 0. Never on a scheduler thread: it may read
 * a module's DWARF to name functions. */
int rt_list(struct rt *rt, int (*emit)(const struct proc_info *info, void *ctx), void *ctx,
            const atomic_bool *stop);

#define PROC_DETAIL_FRAMES 32

/* One process in detail (wisp inspect). */
struct proc_detail {
	struct proc_info info;
	/* Its own state (links, monitors, trap_exit, stack) could be read:
	 * false if it was running every time it was looked at. */
	bool complete;
	bool trap_exit;
	uint32_t vsn;            /* its module's version of the main module (0: none) */
	bool optimized;          /* the module's optimized build */
	unsigned char hash[RT_HASH_BYTES];
	bool has_hash;
	struct pidref *links;    /* ref = pid */
	struct pidref *monitors;      /* it monitors pid (ref) */
	struct pidref *monitored_by;  /* pid monitors it (ref) */
	uint32_t nlinks, nmonitors, nmonitored_by;
	/* Its wasm frames, innermost first (optimized code: the innermost
	 * only: its frames keep no frame pointers). */
	char (*frames)[PROC_INFO_FUNCTION];
	uint32_t nframes;
	char *names;             /* every name, each followed by a NUL */
	uint32_t names_len;
	struct caps *caps;       /* its capability set (a reference) */
	uint64_t mailbox_bytes;  /* of its account: messages queued (0: unknown) */
	bool traced;
};
/* 0, -ESRCH (no such process), -ENOMEM. Free with rt_inspect_free.
 * Not on a scheduler thread (waits a little for a running process to
 * stop, and may read DWARF). */
int rt_inspect(struct rt *rt, uint64_t pid, struct proc_detail *d);
void rt_inspect_free(struct proc_detail *d);

/* An exit signal from outside any process (Erlang's exit/2 from the
 * shell), from pid 0: kill (untrappable: it ends with r), or r as a
 * linked process's exit signal would be (a process trapping exits gets
 * an EXIT message; NORMAL is ignored by one that does not). 0, -ESRCH
 * (no such local process), -ENOMEM. */
int rt_exit_signal(struct rt *rt, uint64_t pid, const struct reason *r, bool kill);

/* ---- tracing (trace.c) ---- */

/* What a traced process did. */
enum proc_trace_what {
	PROC_TRACE_SEND,         /* it sent a message or signal (kind) to other */
	PROC_TRACE_RECEIVE,      /* a message or signal (kind) from other reached it */
	PROC_TRACE_SPAWN,        /* it spawned other (tag: WISP_SPAWN_* flags) */
	PROC_TRACE_EXIT,         /* it ended with the reason */
};

#define PROC_TRACE_DATA 40

struct proc_trace_event {
	uint64_t ns;             /* monotonic time */
	uint64_t other;          /* the other process (0: none, or from outside) */
	uint64_t tag;            /* DATA: the tag; DOWN: the monitor ref;
	                            monitor signals: the ref */
	uint32_t what;           /* enum proc_trace_what */
	uint32_t kind;           /* the message's enum msg_kind */
	uint32_t len;            /* DATA: its bytes */
	uint32_t reason_kind;    /* EXIT, DOWN, exit signals, an end: WISP_EXIT_* */
	int32_t reason_code;     /* its code (TERM: bytes of the term) */
	uint16_t nbytes;         /* bytes in data: the payload's first, or the
	                            reason's text (a TERM's first bytes) */
	bool trapping;           /* RECEIVE: it traps exits (an exit signal
	                            becomes a message) */
	bool fd;                 /* DATA: a socket travels with it */
	unsigned char data[PROC_TRACE_DATA];
};

struct proc_trace;
/* Trace pid from now on: its events go into a ring of PROC_TRACE_RING
 * events, which the caller empties with proc_trace_read; when it is full
 * the process goes on and the events are counted as dropped (a trace
 * never makes a process wait). 0, -ESRCH, -EBUSY (traced already: one
 * trace at a time), -ENOMEM. */
#define PROC_TRACE_RING 2048
int rt_trace_start(struct rt *rt, uint64_t pid, struct proc_trace **out);
/* Up to max events, oldest first (one reader at a time); *dropped: the
 * events lost since the last call; *ended: the process has ended and
 * every event has been read (its last was PROC_TRACE_EXIT). */
size_t proc_trace_read(struct proc_trace *t, struct proc_trace_event *ev, size_t max,
                       uint64_t *dropped, bool *ended);
uint64_t proc_trace_pid(const struct proc_trace *t);
/* Stop tracing and free t (whether or not the process ended). */
void rt_trace_stop(struct proc_trace *t);

#endif
