/*
 * wisp/guest.h — the wisp host ABI for C guests (wasm32-wasi), version 1.
 *
 * Every process is an isolated instance of a module. Processes share nothing
 * and talk by messages: bytes plus a 64-bit tag, copied from the sender's
 * memory into the receiver's mailbox. Links, monitors and exit signals
 * follow Erlang's semantics (see docs/abi.md).
 *
 * Conventions: a function that can fail returns 0 on success, or an error
 * code whose kind depends on its namespace (each section header below says
 * which, as src/common/abi.def defines it):
 *   - wisp_process, wisp_message, wisp_timer, wisp_registry, wisp_caps:
 *     a positive WISP_E* code below ("errors: WISP codes");
 *   - wisp_net: a WASI errno value, i.e. the constants of wasi-libc's
 *     <errno.h> (ETIMEDOUT, ECONNREFUSED, ...; "errors: WASI errno"),
 *     because sockets are WASI fds and WASI calls on them return those too.
 *     So a wisp_net timeout is ETIMEDOUT (73), while a receive timeout is
 *     WISP_ETIMEDOUT (2): compare each call with its own namespace's codes.
 * A pointer/length outside the caller's memory traps the caller. Calls
 * marked "blocks" park the calling process (other processes keep running).
 *
 * Build a guest with: clang --target=wasm32-wasi --sysroot=/usr -O2
 *   -I<wisp>/include app.c <wisp>/sdk/c/wisp.c -o app.wasm
 * (wisp.c provides the spawn entry and small helpers declared at the end).
 */
#ifndef WISP_GUEST_H
#define WISP_GUEST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WISP_ABI_VERSION 1

typedef uint64_t wisp_pid_t;       /* 0 is never a valid process id */

/* Return codes of the wisp_process, wisp_message, wisp_timer, wisp_registry
 * and wisp_caps namespaces (not wisp_net: see above). */
#define WISP_OK        0
#define WISP_ENOPROC   1   /* no such process (dead, or never existed) */
#define WISP_ETIMEDOUT 2   /* receive/request timed out */
#define WISP_ETOOSMALL 3   /* buffer too small; the message stays queued,
                              info->len says how big it is */
#define WISP_EINVAL    4   /* bad argument (flags, kind, length) */
#define WISP_EEXIST    5   /* name already registered */
#define WISP_ETOOBIG   6   /* message larger than the process's limit */
#define WISP_ENOMEM    7   /* the host could not allocate */
#define WISP_ENOTFOUND 8   /* no such timer / name / monitor */
#define WISP_EPERM     9   /* a capability the process lacks */
#define WISP_ELIMIT   10   /* a limit reached: spawn: the process table is
                              full, or the capability set's process limit
                              (WISP_LIMIT_PROCESSES); wisp_caps_new: 16
                              sets open */
#define WISP_EREADY   11   /* receive_fd: the fd is readable (no message taken) */

/* Timeouts, in nanoseconds. */
#define WISP_INFINITY  (-1LL)
#define WISP_NOWAIT    0LL

/* Kinds of messages in a mailbox. */
#define WISP_MSG_DATA  0   /* sent with wisp_send / wisp_send_after */
#define WISP_MSG_EXIT  1   /* exit signal of a linked process (trapping exits) */
#define WISP_MSG_DOWN  2   /* a monitored process ended */

/* Exit reasons. */
#define WISP_EXIT_NORMAL 0 /* _start/entry returned, or proc_exit(0) */
#define WISP_EXIT_CODE   1 /* proc_exit(code) with code != 0 */
#define WISP_EXIT_TRAP   2 /* the process trapped; text says how */
#define WISP_EXIT_KILLED 3 /* wisp_kill, or the runtime stopping it */
#define WISP_EXIT_NOPROC 4 /* linked/monitored a process that did not exist */
#define WISP_EXIT_LIMIT  5 /* killed by a limit of its capabilities; text
                              says which ("cpu limit") */
#define WISP_EXIT_SHUTDOWN 6 /* the runtime is shutting down (wisp got
                              SIGTERM or SIGINT): an exit signal to the main
                              process, trappable like any other */
#define WISP_EXIT_NOCONNECTION 7 /* the process's node cannot be reached
                              (Erlang's noconnection) */
#define WISP_EXIT_TERM 8   /* an Erlang reason wisp has no kind for: the
                              text is the term in the external format
                              without its version byte (code = its length) */

/* WISP_EXIT_TRAP's code: 0 for a trap (text: "<kind> in <function>"),
 * WISP_TRAP_PANIC when the process panicked (wisp_panic; text: its
 * message, which the Rust crate writes as "<file>:<line>:<col>: <msg>"). */
#define WISP_TRAP_PANIC 1
/* wisp_panic's flags: the panic is expected (a test that must panic), so
 * its crash report is written at level info only. */
#define WISP_PANIC_QUIET 1u

/* A supervisor's report (wisp_supervisor_report), for the runtime's log:
 * what happened to one of its children. Pointers are guest addresses. */
#define WISP_SUP_RESTARTING 1   /* child ended (reason), and is restarted */
#define WISP_SUP_CHILD_ENDED 2  /* child ended abnormally (reason), and is not
                                   restarted (temporary, transient) */
#define WISP_SUP_START_FAILED 3 /* child did not (re)start (error) */
#define WISP_SUP_GIVING_UP 4    /* more than max_restarts restarts within
                                   period_ms: the supervisor stops its
                                   children and exits; child and reason are
                                   the last restart's */
struct wisp_sup_report {
	uint32_t event;                /* WISP_SUP_* */
	uint32_t max_restarts;         /* GIVING_UP */
	uint64_t child;                /* the child's pid (0: none) */
	uint32_t id, id_len;           /* the child's id (text) */
	uint32_t reason, reason_len;   /* how it ended: a struct wisp_exit_reason
	                                  and its text, as an EXIT message's
	                                  payload (len 0: none) */
	uint32_t error, error_len;     /* START_FAILED: why (text) */
	uint32_t period_ms;            /* GIVING_UP */
	uint32_t reserved;             /* 0 */
};

/* What wisp_receive tells about the message it delivered. */
/* Tags are the sender's choice, but references the host makes (monitor
 * refs, request refs, timer ids) all have bit 63 set: tags below 2^63 never
 * clash with them. */
struct wisp_msg_info {
	uint64_t tag;      /* DATA: the sender's tag; DOWN: the monitor ref;
	                      EXIT: 0 */
	wisp_pid_t from;   /* DATA: the sender; EXIT/DOWN: the process that ended */
	uint64_t ref;      /* DATA sent by wisp_request: reply with
	                      wisp_send(from, ref, ...); else 0 */
	uint32_t len;      /* payload bytes */
	uint32_t kind;     /* WISP_MSG_* */
};

/* Payload of EXIT and DOWN messages: the reason, then len-8 bytes of text
 * (the trap message), not NUL-terminated. */
struct wisp_exit_reason {
	uint32_t kind;     /* WISP_EXIT_* */
	int32_t code;      /* WISP_EXIT_CODE: the code */
};

/* Flags for wisp_spawn. */
#define WISP_SPAWN_LINK    1u   /* link to the child atomically */
#define WISP_SPAWN_MONITOR 2u   /* monitor the child; ref in out->monitor */

struct wisp_spawned {
	wisp_pid_t pid;
	uint64_t monitor;  /* monitor ref if WISP_SPAWN_MONITOR */
};

/* A whole WASI program to run as a child process (wisp_program_spawn).
 * Pointers are guest addresses (32-bit: the struct is the same for the
 * host). */
struct wisp_program_spec {
	uint32_t module, module_len;   /* the module's bytes (a wasm32-wasi command) */
	uint32_t args, args_len;       /* argv, argv[0] first: NUL-terminated
	                                  strings back to back (len 0: none) */
	uint32_t env, env_len;         /* "KEY=VALUE" strings likewise */
	int32_t caps;                  /* a wisp_caps handle, or -1: the caller's
	                                  own set (directories, network, limits) */
	uint32_t flags;                /* WISP_SPAWN_LINK | WISP_SPAWN_MONITOR */
	uint32_t stdio[3];             /* WISP_STDIO_* for fds 0, 1, 2 */
	uint32_t mounts, nmounts;      /* served directories: nmounts struct
	                                  wisp_mount (at most WISP_MAX_MOUNTS) */
};

/* A directory of the child's whose files a process serves (docs/abi.md,
 * "Served files"): the child sees a preopened directory named path (after
 * its capability set's), and its file calls below it become WISP_TAG_FILE
 * requests to server, a process of this runtime. */
struct wisp_mount {
	uint64_t server;               /* the serving process's pid */
	uint32_t path, path_len;       /* the guest name, "/data" say */
};
#define WISP_MAX_MOUNTS 16u

/* Served files (docs/abi.md, "Served files"): a request is a DATA message
 * with tag WISP_TAG_FILE (sent with wisp_request's kind of ref; CLOSE with
 * ref 0: no reply wanted) whose payload is a little-endian header
 *   u32 op; u32 flags; u64 handle; u64 offset; u32 len; u32 rights
 * (WISP_FILE_REQUEST_SIZE bytes) then the path (OPEN, PSTAT) or the data
 * (WRITE); the reply, sent to the ref, is
 *   u16 error (a WASI errno, 0: ok); u8 filetype; u8 pad; u32 len; u64 value
 * (WISP_FILE_REPLY_SIZE bytes) then len bytes of data. Data is at most
 * WISP_FILE_MAX_DATA bytes either way. */
#define WISP_TAG_FILE 0x7fffffffffff6669ull   /* "fi" */
#define WISP_FILE_OP_OPEN    1u   /* path; flags = oflags | fdflags << 16;
                                     rights = WISP_FILE_RIGHT_*: value =
                                     a handle, and the filetype */
#define WISP_FILE_OP_READ    2u   /* handle, offset, len: up to len bytes */
#define WISP_FILE_OP_WRITE   3u   /* handle, offset (UINT64_MAX: at the
                                     end), data: value = bytes written */
#define WISP_FILE_OP_STAT    4u   /* handle: a WASI filestat (64 bytes) */
#define WISP_FILE_OP_PSTAT   5u   /* path: a WASI filestat (64 bytes) */
#define WISP_FILE_OP_READDIR 6u   /* handle, offset = cookie, len: WASI
                                     dirents back to back, at most len */
#define WISP_FILE_OP_CLOSE   7u   /* handle (sent with ref 0: no reply) */
#define WISP_FILE_RIGHT_READ  1u
#define WISP_FILE_RIGHT_WRITE 2u
#define WISP_FILE_REQUEST_SIZE 32u
#define WISP_FILE_REPLY_SIZE 16u
#define WISP_FILE_STAT_SIZE 64u
#define WISP_FILE_DIRENT_SIZE 24u
#define WISP_FILE_MAX_DATA 65536u

struct wisp_program_out {
	uint64_t pid;
	uint64_t monitor;              /* if WISP_SPAWN_MONITOR */
	int32_t fds[3];                /* the caller's end of each pipe (stdin:
	                                  for writing, stdout/stderr: for
	                                  reading), else -1 */
	uint32_t reserved;
};

/* The constants and structs above are shared with the host (which includes
 * this header); the imports below exist only in guests. */
#if defined(__wasm__)
#define WISP_IMPORT(ns, name) \
	__attribute__((import_module(ns), import_name(name)))
#else
#define WISP_IMPORT(ns, name)
#endif

/* ---- wisp_process (errors: WISP codes) ---- */

/* The ABI version the host implements (WISP_ABI_VERSION). */
WISP_IMPORT("wisp_process", "abi_version") int32_t wisp_abi_version(void);

/* This process's id. */
WISP_IMPORT("wisp_process", "self") wisp_pid_t wisp_self(void);

/* Start a new process: a fresh instance of this module that calls its
 * exported wisp_spawn_entry(fn, arg_len); wisp.c's entry copies the
 * argument with wisp_spawn_arg and calls the function whose table index is
 * `fn` as fn(arg, arg_len). The argument bytes are copied now. A bad `fn`
 * makes the child trap, not the caller. */
WISP_IMPORT("wisp_process", "spawn")
int32_t wisp_spawn_raw(uint32_t fn, const void *arg, uint32_t arg_len,
                       uint32_t flags, struct wisp_spawned *out);

/* In a new process: copy up to len bytes of the spawn argument to buf;
 * returns the argument's full length. */
WISP_IMPORT("wisp_process", "spawn_arg")
uint32_t wisp_spawn_arg(void *buf, uint32_t len);

/* Send `pid` an exit signal with reason WISP_EXIT_KILLED that it cannot
 * trap. 0 even if pid is dead (as Erlang's exit(Pid, kill)). */
WISP_IMPORT("wisp_process", "kill") int32_t wisp_kill(wisp_pid_t pid);

/* Send `pid` an exit signal with reason CODE(code), or NORMAL if code is 0
 * (which a non-trapping process ignores), as Erlang's exit(Pid, Reason). */
WISP_IMPORT("wisp_process", "exit_signal")
int32_t wisp_exit_signal(wisp_pid_t pid, int32_t code);

/* Links are bidirectional: when either ends with a reason other than
 * NORMAL, the other receives an exit signal: it dies with the same reason,
 * or gets a WISP_MSG_EXIT message if it traps exits. Linking to a dead or
 * unknown process delivers an immediate NOPROC exit signal. */
WISP_IMPORT("wisp_process", "link") int32_t wisp_link(wisp_pid_t pid);
WISP_IMPORT("wisp_process", "unlink") int32_t wisp_unlink(wisp_pid_t pid);

/* Monitors are one-way: when pid ends, this process gets a WISP_MSG_DOWN
 * message (tag = the ref, from = pid, payload = reason); monitoring a dead
 * process delivers DOWN with NOPROC at once. */
WISP_IMPORT("wisp_process", "monitor")
int32_t wisp_monitor(wisp_pid_t pid, uint64_t *ref);
/* Remove a monitor and any DOWN message of it already queued: WISP_OK if
 * the monitor was active or its DOWN was queued, WISP_ENOTFOUND otherwise. */
WISP_IMPORT("wisp_process", "demonitor") int32_t wisp_demonitor(uint64_t ref);

/* Turn trapping of exit signals on (1) or off (0); returns the old value. */
WISP_IMPORT("wisp_process", "trap_exit") int32_t wisp_trap_exit(int32_t on);

/* 1 if pid is alive, 0 if not. */
WISP_IMPORT("wisp_process", "alive") int32_t wisp_alive(wisp_pid_t pid);

/* Let other processes run (the runtime also preempts by reductions). */
WISP_IMPORT("wisp_process", "yield") void wisp_yield(void);

/* Wait, hibernated, for the next message or signal (erlang:hibernate):
 * the process's native stack and the pages of its memory go back to the
 * host until something arrives; then it continues with its state intact.
 * Returns at once if a message is queued already. */
WISP_IMPORT("wisp_process", "hibernate") void wisp_hibernate(void);

/* As wisp_spawn_raw, with the capability set `handle` (made with wisp_caps,
 * below) instead of a copy of the caller's own. */
WISP_IMPORT("wisp_process", "spawn_with")
int32_t wisp_spawn_with(int32_t handle, uint32_t fn, const void *arg,
                        uint32_t arg_len, uint32_t flags, struct wisp_spawned *out);

/* End this process with a panic: reason WISP_EXIT_TRAP, code
 * WISP_TRAP_PANIC, text the first len bytes of text (up to a NUL; a reason
 * holds 199 bytes, a longer text is cut and ends with "..."). Its links,
 * monitors and crash report show the text. flags: WISP_PANIC_QUIET. Text
 * outside memory traps instead. Never returns. */
_Noreturn WISP_IMPORT("wisp_process", "panic")
void wisp_panic(const char *text, uint32_t len, uint32_t flags);

/* Write a supervisor report (struct wisp_sup_report) to the runtime's log,
 * as OTP's supervisors do: a restart, a child that did not start, the
 * restart intensity reached. Texts are bounded (an id to 255 bytes, an
 * error to 511, a reason's text to 199); the log's level and rate limit
 * apply. WISP_EINVAL for an unknown event or a nonzero reserved field;
 * pointers outside memory trap. */
WISP_IMPORT("wisp_process", "supervisor_report")
int32_t wisp_supervisor_report(const struct wisp_sup_report *report);

/* ---- wisp_message (errors: WISP codes) ---- */

/* Copy len bytes at data into pid's mailbox with `tag`. Sending to a dead
 * process is not an error (the message is dropped, as in Erlang).
 * WISP_ETOOBIG if len exceeds the message size limit. Order between one
 * sender and one receiver is preserved. */
WISP_IMPORT("wisp_message", "send")
int32_t wisp_send(wisp_pid_t pid, uint64_t tag, const void *data, uint32_t len);

/* Take the first message whose tag is one of tags[0..ntags) (any message if
 * ntags == 0; EXIT and DOWN messages match by their tag too: use ntags == 0
 * or include the monitor ref) and copy it to buf. Blocks up to timeout_ns
 * (WISP_INFINITY, or WISP_NOWAIT to poll). Returns WISP_ETIMEDOUT, or
 * WISP_ETOOSMALL leaving the message queued with info->len set. */
WISP_IMPORT("wisp_message", "receive")
int32_t wisp_receive(const uint64_t *tags, uint32_t ntags, int64_t timeout_ns,
                     void *buf, uint32_t buf_len, struct wisp_msg_info *info);

/* wisp_receive that also returns WISP_EREADY, taking no message, as soon as
 * socket `fd` has data (or the peer closed it): one process can wait on its
 * mailbox and a connection at once. WISP_EINVAL if fd is not a socket. */
WISP_IMPORT("wisp_message", "receive_fd")
int32_t wisp_receive_fd(const uint64_t *tags, uint32_t ntags, int32_t fd,
                        int64_t timeout_ns, void *buf, uint32_t buf_len,
                        struct wisp_msg_info *info);

/* Send a request (a DATA message with a fresh ref) and wait for the reply,
 * i.e. a message with tag == ref, up to timeout_ns. WISP_ENOPROC if pid is
 * dead or dies before replying; WISP_ETIMEDOUT; WISP_ETOOSMALL leaves the
 * reply queued (receive it with tag info->tag); WISP_EINVAL for a request to
 * oneself (it could never be answered). Other messages stay queued. */
WISP_IMPORT("wisp_message", "request")
int32_t wisp_request(wisp_pid_t pid, uint64_t tag, const void *data, uint32_t len,
                     int64_t timeout_ns, void *buf, uint32_t buf_len,
                     struct wisp_msg_info *info);

/* Move socket `fd` (a wisp_net socket) to pid: the caller loses it at once
 * (the fd number is free again). pid receives a DATA message with `tag`
 * whose 4-byte payload is the socket's fd in pid's own table. If pid is
 * dead, or ends with the message unreceived, the socket is closed.
 * WISP_EINVAL if fd is not a wisp socket of the caller. */
WISP_IMPORT("wisp_message", "send_fd")
int32_t wisp_send_fd(wisp_pid_t pid, uint64_t tag, int32_t fd);

/* ---- wisp_timer (errors: WISP codes) ---- */

/* Block for ns nanoseconds. */
WISP_IMPORT("wisp_timer", "sleep") void wisp_sleep(int64_t ns);

/* Send a message to pid after delay_ns; *timer identifies it for cancel. */
WISP_IMPORT("wisp_timer", "send_after")
int32_t wisp_send_after(wisp_pid_t pid, uint64_t tag, const void *data,
                        uint32_t len, int64_t delay_ns, uint64_t *timer);

/* Cancel a timer: WISP_OK if it had not fired, WISP_ENOTFOUND otherwise. */
WISP_IMPORT("wisp_timer", "cancel") int32_t wisp_cancel_timer(uint64_t timer);

/* ---- wisp_registry (errors: WISP codes) ---- */

/* Names are bytes (1..255). A process's names vanish when it ends. */
WISP_IMPORT("wisp_registry", "register")
int32_t wisp_register(const char *name, uint32_t len, wisp_pid_t pid);
WISP_IMPORT("wisp_registry", "unregister")
int32_t wisp_unregister(const char *name, uint32_t len);
WISP_IMPORT("wisp_registry", "whereis")
int32_t wisp_whereis(const char *name, uint32_t len, wisp_pid_t *pid);

/* ---- wisp_net (errors: WASI errno) ----
 *
 * TCP in blocking style: a call that would block parks the calling process
 * (others run) until the socket is ready or `timeout_ns` passes
 * (WISP_INFINITY: no timeout). Sockets are WASI fds: fd_read/fd_write,
 * read()/write()/close() from wasi-libc work on them too (without a
 * timeout). Addresses are numeric IPv4/IPv6 literals. Return values are
 * WASI errno codes, not WISP_E* codes: 0 on success, else the value of the
 * <errno.h> constant of wasi-libc (e.g. ECONNREFUSED 14, EADDRINUSE 3,
 * ETIMEDOUT 73, ENOBUFS 42, ENOTCAPABLE 76 when the capabilities deny the
 * call). A process's sockets close when it ends. */

WISP_IMPORT("wisp_net", "tcp_listen")
int32_t wisp_tcp_listen(const char *addr, uint32_t addr_len, uint32_t port,
                        uint32_t backlog, int32_t *fd);
WISP_IMPORT("wisp_net", "tcp_accept")
int32_t wisp_tcp_accept(int32_t fd, int64_t timeout_ns, int32_t *conn);
WISP_IMPORT("wisp_net", "tcp_connect")
int32_t wisp_tcp_connect(const char *addr, uint32_t addr_len, uint32_t port,
                         int64_t timeout_ns, int32_t *fd);
/* *n = bytes read (0: the peer closed) / written. */
WISP_IMPORT("wisp_net", "read")
int32_t wisp_net_read(int32_t fd, void *buf, uint32_t len, int64_t timeout_ns,
                      uint32_t *n);
WISP_IMPORT("wisp_net", "write")
int32_t wisp_net_write(int32_t fd, const void *buf, uint32_t len,
                       int64_t timeout_ns, uint32_t *n);
WISP_IMPORT("wisp_net", "set_nodelay")
int32_t wisp_net_set_nodelay(int32_t fd, uint32_t on);
/* The address as text (not NUL-terminated) into buf, its length in *len
 * (ENOBUFS (42) if buf_len is smaller), the port in *port. */
WISP_IMPORT("wisp_net", "local_addr")
int32_t wisp_net_local_addr(int32_t fd, char *buf, uint32_t buf_len,
                            uint32_t *len, uint32_t *port);
WISP_IMPORT("wisp_net", "peer_addr")
int32_t wisp_net_peer_addr(int32_t fd, char *buf, uint32_t buf_len,
                           uint32_t *len, uint32_t *port);

/* Resolve a host name (on a blocking pool; the process parks meanwhile):
 * each address as text, NUL-terminated, back to back in buf; *used bytes,
 * *count addresses. ENOENT (44) if the name does not exist. */
WISP_IMPORT("wisp_net", "resolve")
int32_t wisp_resolve(const char *name, uint32_t name_len, char *buf,
                     uint32_t buf_len, uint32_t *used, uint32_t *count);

/* UDP: datagram sockets (WASI fds too). addr_len 0 in send_to: to the
 * address given to udp_connect. */
WISP_IMPORT("wisp_net", "udp_bind")
int32_t wisp_udp_bind(const char *addr, uint32_t addr_len, uint32_t port,
                      int32_t *fd);
WISP_IMPORT("wisp_net", "udp_connect")
int32_t wisp_udp_connect(int32_t fd, const char *addr, uint32_t addr_len,
                         uint32_t port);
WISP_IMPORT("wisp_net", "udp_send_to")
int32_t wisp_udp_send_to(int32_t fd, const void *buf, uint32_t len,
                         const char *addr, uint32_t addr_len, uint32_t port,
                         int64_t timeout_ns, uint32_t *n);
WISP_IMPORT("wisp_net", "udp_recv_from")
int32_t wisp_udp_recv_from(int32_t fd, void *buf, uint32_t len,
                           int64_t timeout_ns, uint32_t *n, char *addr,
                           uint32_t addr_buf_len, uint32_t *addr_len,
                           uint32_t *port);

/* ---- wisp_tls (errors: WASI errno) ----
 *
 * TLS streams (OpenSSL in the host) over wisp_net TCP sockets. connect
 * (client) and accept (server) run the handshake on a connected TCP fd,
 * parking the process while it waits (other processes run), for at most
 * timeout_ns; on success the same fd is a TLS stream: wisp_net_read/
 * wisp_net_write, read()/write() and recv()/send() carry plaintext through
 * it, shutdown(fd, SHUT_WR) sends close_notify then the FIN (later
 * writes: EPIPE), close() sends close_notify, and wisp_send_fd moves it (with its TLS
 * state) to another process. On failure the fd stays a plain TCP socket
 * whose connection is of no further use: close it. Errors: EPROTO (65) a
 * failed handshake (bad certificate, no common protocol or ALPN, garbage)
 * or a broken stream, ECONNRESET (15) a peer that closed mid-handshake or
 * without close_notify, ETIMEDOUT (73), ENOTCAPABLE (76) a file outside the
 * process's directories, EINVAL bad options; wisp_tls_last_error gives the
 * reason as text ("the server's certificate was refused: certificate has
 * expired"). The host reads certificate, key and CA files itself, from
 * paths resolved through the process's --dir directories as its own
 * open() would be. A client verifies the server (system CA store, or
 * ca_file) and its name unless flags has WISP_TLS_NO_VERIFY. TLS 1.2 at
 * least; renegotiation is refused. */

#define WISP_TLS_NO_VERIFY   1   /* client: accept any certificate (tests only) */
#define WISP_TLS_OPTIONS_SIZE 44 /* sizeof(struct wisp_tls_options) */

/* Strings are (pointer, length), not NUL-terminated; length 0: not given. */
struct wisp_tls_options {
	uint32_t flags;            /* WISP_TLS_NO_VERIFY */
	const char *server_name;   /* client: SNI and the name verified (a DNS
	                              name or an IP literal) */
	uint32_t server_name_len;
	const char *alpn;          /* protocols, comma-separated ("h2,http/1.1"),
	                              in order of preference; a server with a list
	                              refuses clients offering none of them */
	uint32_t alpn_len;
	const char *ca_file;       /* client: trust only these PEM certificates
	                              instead of the system's store */
	uint32_t ca_file_len;
	const char *cert_file;     /* server: PEM chain, leaf first */
	uint32_t cert_file_len;
	const char *key_file;      /* server: PEM private key (unencrypted) */
	uint32_t key_file_len;
};

WISP_IMPORT("wisp_tls", "connect")
int32_t wisp_tls_connect(int32_t fd, const struct wisp_tls_options *opts, uint32_t opts_len,
                         int64_t timeout_ns);
WISP_IMPORT("wisp_tls", "accept")
int32_t wisp_tls_accept(int32_t fd, const struct wisp_tls_options *opts, uint32_t opts_len,
                        int64_t timeout_ns);
/* The protocol ALPN chose (not NUL-terminated; *len 0: none); ENOBUFS if
 * buf_len is smaller (*len says how big); EINVAL if fd is not TLS. */
WISP_IMPORT("wisp_tls", "alpn")
int32_t wisp_tls_alpn(int32_t fd, char *buf, uint32_t buf_len, uint32_t *len);
/* Why this process's last failed wisp_tls call (or TLS read/write) failed,
 * as text (not NUL-terminated; *len 0: none yet); ENOBUFS as above. */
WISP_IMPORT("wisp_tls", "last_error")
int32_t wisp_tls_last_error(char *buf, uint32_t buf_len, uint32_t *len);

/* ---- wisp_caps (errors: WISP codes) ----
 *
 * Capability sets for children. wisp_caps_new gives a handle to a copy of
 * the caller's own set; the calls below only remove or lower (a call that
 * would widen is WISP_EPERM); wisp_spawn_with starts a process with it (the
 * set is frozen from then on: changes give WISP_EINVAL). Handles are the
 * caller's own (at most 16 at once); WISP_EINVAL for an unknown one. */

#define WISP_LIMIT_MEMORY    0   /* bytes of linear memory */
#define WISP_LIMIT_CPU       1   /* reductions over the lifetime */
#define WISP_LIMIT_MESSAGE   2   /* bytes per message */
#define WISP_LIMIT_PROCESSES 3   /* live processes spawned under the set */
#define WISP_LIMIT_FDS       4   /* fds a process may hold (a new one must be
                                    numbered below it): EMFILE beyond */
#define WISP_DENY_SPAWN      1u
#define WISP_DENY_CAPS       2u
#define WISP_DENY_NODES      4u   /* wisp_node_*, and any call aimed at a pid
                                    of another node: WISP_EPERM */
#define WISP_DENY_CODE       8u   /* wisp_code_load: WISP_EPERM */
/* A child's stdio (wisp_caps_stdio; wisp_program_spawn's spec->stdio[i]). */
#define WISP_STDIO_INHERIT   0   /* the caller's (a program: a copy of its fd i) */
#define WISP_STDIO_NULL      1   /* /dev/null */
#define WISP_STDIO_CLOSED    2   /* none */
#define WISP_STDIO_PIPE      3   /* programs: a pipe, the caller's end in out->fds[i] */
#define WISP_STDIO_FD        0x80000000u /* programs: | fd, a copy of the caller's fd */

WISP_IMPORT("wisp_caps", "new") int32_t wisp_caps_new(int32_t *handle);
WISP_IMPORT("wisp_caps", "free") int32_t wisp_caps_free(int32_t handle);
/* Drop the directory the child would see as `guest` (all if len is 0). */
WISP_IMPORT("wisp_caps", "drop_dir")
int32_t wisp_caps_drop_dir(int32_t handle, const char *guest, uint32_t len);
/* Make it (all if len is 0) read-only. */
WISP_IMPORT("wisp_caps", "read_only")
int32_t wisp_caps_read_only(int32_t handle, const char *guest, uint32_t len);
WISP_IMPORT("wisp_caps", "clear_env") int32_t wisp_caps_clear_env(int32_t handle);
/* fd 0..2: WISP_STDIO_INHERIT -> NULL -> CLOSED, never back. */
WISP_IMPORT("wisp_caps", "set_stdio")
int32_t wisp_caps_set_stdio(int32_t handle, uint32_t fd, uint32_t mode);
WISP_IMPORT("wisp_caps", "drop_network") int32_t wisp_caps_drop_network(int32_t handle);
/* The limit becomes min(current, value). */
WISP_IMPORT("wisp_caps", "limit")
int32_t wisp_caps_limit(int32_t handle, uint32_t which, uint64_t value);
WISP_IMPORT("wisp_caps", "deny") int32_t wisp_caps_deny(int32_t handle, uint32_t what);

/* ---- wisp_node (errors: WISP codes) ----
 * This runtime as a node of an Erlang cluster (wisp run --name/--sname).
 * Processes of other nodes are reached with the calls above: their pids
 * come in messages (the `from` of a message, pids inside Erlang terms) and
 * wisp_send, wisp_link, wisp_monitor and wisp_kill take them like any pid.
 * A message to a process of another language is the Erlang term
 * {Tag, Binary} (docs/abi.md, "Distribution"). Node names are
 * NAME@HOST, not NUL-terminated. */

/* This node's name into buf (up to cap bytes); its length (0: not a node). */
WISP_IMPORT("wisp_node", "name") uint32_t wisp_node_name(char *buf, uint32_t cap);
/* The connected nodes' names, each followed by a NUL, into buf (up to cap
 * bytes); the bytes all of them need. */
WISP_IMPORT("wisp_node", "list") uint32_t wisp_node_list(char *buf, uint32_t cap);
/* The name of the node pid lives on; its length (0: no node knows it). */
WISP_IMPORT("wisp_node", "of") uint32_t wisp_node_of(wisp_pid_t pid, char *buf, uint32_t cap);
/* Connect to node now (as Erlang's net_kernel:connect_node; sends connect
 * on first use anyway). WISP_ENOTFOUND if it cannot be reached (or this
 * runtime is no node), WISP_EPERM without the capability. */
WISP_IMPORT("wisp_node", "connect") int32_t wisp_node_connect(const char *node, uint32_t len);
/* Send {tag, data} to the process registered as `name` on `node` (Erlang's
 * {Name, Node} ! Msg); with tag WISP_TAG_TERM (wisp/term.h) data is one
 * Erlang term. Dropped if there is no such process or node, as in Erlang.
 * WISP_EPERM without the capability. */
WISP_IMPORT("wisp_node", "send")
int32_t wisp_node_send(const char *node, uint32_t node_len, const char *name,
                       uint32_t name_len, uint64_t tag, const void *data, uint32_t len);
/* Start fn(arg) as a process on `node` (as wisp_spawn_raw: fn is a table
 * index of this module's, which the node fetches by its hash if it lacks
 * it, checks and compiles). The node must allow it (wisp run
 * --allow-remote-spawn); the process gets that node's capabilities.
 * WISP_SPAWN_LINK/MONITOR hold before it runs. Blocks until the node
 * answers (the first spawn of a module there includes shipping and
 * compiling it). WISP_ENOTFOUND: the node cannot be reached; WISP_EPERM:
 * no capability here, or the node refuses remote spawns; WISP_ELIMIT: its
 * process limit; WISP_ETIMEDOUT: no answer within 120 s. */
/* A pid as bytes any node reads (Erlang's NEW_PID_EXT, without the version
 * byte): how a pid travels inside a payload or a spawn argument, where no
 * one rewrites it. Returns the length (up to cap bytes copied; 0: not a
 * node, or no node knows pid). pid_decode reads such bytes back into this
 * node's name for that pid: WISP_OK, or WISP_EINVAL. */
WISP_IMPORT("wisp_node", "pid_encode")
uint32_t wisp_node_pid_encode(wisp_pid_t pid, void *buf, uint32_t cap);
WISP_IMPORT("wisp_node", "pid_decode")
int32_t wisp_node_pid_decode(const void *buf, uint32_t len, wisp_pid_t *pid);
/* Erlang's monitor_node: *ref gets a monitor of node itself; when the node
 * is lost (or cannot be reached now: this connects if needed) a DOWN
 * arrives with that ref, reason WISP_EXIT_NOCONNECTION, from a pid that
 * stands for the node (wisp_node_of names it). wisp_demonitor(ref) ends
 * it. WISP_EPERM without the capability. */
WISP_IMPORT("wisp_node", "monitor")
int32_t wisp_node_monitor(const char *node, uint32_t len, uint64_t *ref);
/* Move the calling process to `node` (a server, between two messages): a
 * new incarnation there runs fn(state) (fn as in wisp_node_spawn_raw),
 * under the caller's registered names; the caller becomes its forwarder
 * and this call does not return. Messages queued for the caller and every
 * later one reach the new incarnation with their sender (so replies go
 * straight back); links and monitors of the caller follow it (the
 * forwarder ends with the new incarnation's reason); the monitors the
 * caller held do not (the new incarnation makes its own from its state).
 * On failure it returns as wisp_node_spawn_raw does (and the caller goes
 * on as it was): e.g. WISP_EINVAL with "name taken" under -v. */
WISP_IMPORT("wisp_node", "migrate")
int32_t wisp_node_migrate_raw(const char *node, uint32_t node_len, uint32_t fn, const void *state,
                              uint32_t state_len);
WISP_IMPORT("wisp_node", "spawn")
int32_t wisp_node_spawn_raw(const char *node, uint32_t node_len, uint32_t fn, const void *arg,
                            uint32_t arg_len, uint32_t flags, struct wisp_spawned *out);

/* ---- wisp_code (errors: WISP codes) ----
 *
 * Hot code reload (sdk/c/README.md has an example). The run's main module
 * is version 1; a new version is loaded from a guest (wisp_code_load) or
 * from another terminal (wisp reload), and becomes current. A process
 * moves onto the current version at a point it chooses (a server: between
 * two messages) with wisp_code_upgrade(state): the new version's
 *     __attribute__((export_name("wisp_code_change")))
 *     int32_t wisp_code_change(uint32_t old_vsn, uint32_t state_len)
 * (a module that does not export it cannot be a version) runs in a new
 * instance, reads the state with wisp_spawn_arg, and returns the function
 * the process is to go on in, a void (*)(void) cast to int32_t (its table
 * index), to take over; anything <= 0, a trap or an
 * exit refuses: the process goes on with the old version, and
 * wisp_code_upgrade returns WISP_EINVAL with the reason. On success that
 * function runs in the new instance, and the process goes on there: same
 * pid, mailbox, links, monitors, names, timers, sockets and capabilities
 * (WISP_CODE_RESUME_WITH below builds the return value). */
#define WISP_CODE_RESUME_WITH(fn) ((int32_t)(uintptr_t)(void (*)(void))(fn))
#define WISP_TAG_CODE 0x7fffffffffff636full   /* "a version became current" */
#define WISP_CODE_MINE    0   /* wisp_code_version: the caller's version */
#define WISP_CODE_CURRENT 1   /* the current one */
#define WISP_CODE_TIER    2   /* 1 if the caller runs the optimized build of
                                 its code (built in the background while the
                                 run went on), else 0 */

/* Load the module in bytes as the next version (compiled first; nothing
 * changes if it fails): its number in *vsn. WISP_EINVAL: not a module
 * wisp can run, or it exports no wisp_code_change; WISP_EEXIST:
 * those bytes are a version already (its number in *vsn); WISP_EPERM
 * without the capability (WISP_DENY_CODE). */
WISP_IMPORT("wisp_code", "load")
int32_t wisp_code_load(const void *bytes, uint32_t len, uint32_t *vsn);
/* The version the caller runs (WISP_CODE_MINE), the current one, or the
 * caller's tier (WISP_CODE_TIER). */
WISP_IMPORT("wisp_code", "version") int32_t wisp_code_version(int32_t which);
/* on != 0: a WISP_TAG_CODE message (the version's number, 4 bytes)
 * whenever a version becomes current; 0: no more. */
WISP_IMPORT("wisp_code", "watch") int32_t wisp_code_watch(int32_t on);
/* Move onto the current version with state (see above). Returns only if
 * the caller goes on with its old version: WISP_ENOTFOUND (it runs the
 * current one), WISP_EINVAL (the new version refused: the reason, up to
 * why_cap bytes, NUL-terminated, in why), WISP_ETOOBIG, WISP_ENOMEM. */
WISP_IMPORT("wisp_code", "upgrade")
int32_t wisp_code_upgrade(const void *state, uint32_t len, char *why, uint32_t why_cap);

/* ---- wisp_program (errors: WISP codes) ----
 *
 * Whole WASI programs as child processes: a command module (its bytes),
 * its arguments and environment, a capability set (at most the caller's),
 * and its stdio. The module is compiled first (the caller waits; the
 * compile cache makes a second spawn of the same bytes quick). The child
 * runs its _start; its end is its exit reason (WISP_EXIT_NORMAL for
 * status 0, WISP_EXIT_CODE with the status, WISP_EXIT_TRAP), seen through
 * a link or monitor. A pipe end is an fd of the caller's: read and write
 * it with the usual calls (read(), write(), fread() on fdopen()), which
 * park the caller, never a thread, when the pipe is empty or full; closing
 * the stdin end gives the program end-of-file. */

/* Spawn spec (see struct wisp_program_spec); the child's pid and the
 * caller's pipe ends in *out. Fails with the reason (NUL-terminated) in
 * why (why_cap bytes, may be 0): WISP_EINVAL (the module is not one wisp
 * can run — the reason names what is wrong, an import wisp lacks say —,
 * has no _start, or a bad argument or fd), WISP_ETOOBIG, WISP_EPERM (no
 * spawn capability), WISP_ELIMIT, WISP_ENOMEM. */
WISP_IMPORT("wisp_program", "spawn")
int32_t wisp_program_spawn(const struct wisp_program_spec *spec, struct wisp_program_out *out,
                           char *why, uint32_t why_cap);

#undef WISP_IMPORT

/* ---- helpers in sdk/c/wisp.c ---- */

/* TLS in one call each (wisp_tls_connect/accept with NUL-terminated
 * strings; NULL: not given). WASI errno codes. */
int32_t wisp_tls_client(int32_t fd, const char *server_name, const char *alpn,
                        const char *ca_file, uint32_t flags, int64_t timeout_ns);
int32_t wisp_tls_server(int32_t fd, const char *cert_file, const char *key_file,
                        const char *alpn, int64_t timeout_ns);
/* Connect to addr:port (a numeric address) and start TLS with
 * server_name verified against the system's CA store; on failure nothing
 * stays open. */
int32_t wisp_tls_dial(const char *addr, uint32_t port, const char *server_name,
                      int64_t timeout_ns, int32_t *fd);
/* wisp_tls_last_error as a NUL-terminated string in buf (cut to cap). */
const char *wisp_tls_error(char *buf, uint32_t cap);

/* The process entry wisp.c exports; called by the host in a new process. */
void wisp_spawn_entry(uint32_t fn, uint32_t arg_len);

typedef void (*wisp_fn)(const void *arg, uint32_t len);

/* Move this process to node, to go on as fn(state, len) there
 * (wisp_node_migrate_raw); returns only on failure, with its code. */
int32_t wisp_node_migrate(const char *node, wisp_fn fn, const void *state, uint32_t len);

/* Spawn fn(arg, len) on node (wisp_node_spawn_raw); WISP_* code. */
int32_t wisp_node_spawn(const char *node, wisp_fn fn, const void *arg, uint32_t len,
                        uint32_t flags, struct wisp_spawned *out);

/* wisp_node_connect and wisp_node_send with NUL-terminated names; WISP_*
 * codes. */
int32_t wisp_node_connect_name(const char *node);
int32_t wisp_node_send_name(const char *node, const char *name, uint64_t tag,
                            const void *data, uint32_t len);

/* A pid inside a payload. A wisp_pid_t means something only in the
 * runtime that made it, and a payload may reach another node, where
 * nobody rewrites it. wisp_pid_pack writes pid into buf in the form that
 * names the same process wherever it is read: the portable form
 * (wisp_node_pid_encode) when this runtime is a node, else the pid's 8
 * bytes, little-endian (no payload leaves a runtime that is no node).
 * Returns the length, at most WISP_PID_PACK_MAX (nothing is written if it
 * is more than cap); 0 if no node knows pid. wisp_pid_unpack reads such
 * bytes (in the same runtime, or on another node): WISP_OK, or WISP_EINVAL
 * for bytes that are not a packed pid. */
#define WISP_PID_PACK_MAX 271u
uint32_t wisp_pid_pack(wisp_pid_t pid, void *buf, uint32_t cap);
int32_t wisp_pid_unpack(const void *buf, uint32_t len, wisp_pid_t *pid);

/* Spawn fn(arg, len) as a new process; returns its pid or 0 on error. */
wisp_pid_t wisp_spawn(wisp_fn fn, const void *arg, uint32_t len);
wisp_pid_t wisp_spawn_link(wisp_fn fn, const void *arg, uint32_t len);
/* Spawn and monitor: returns the pid, the monitor ref in *ref. */
wisp_pid_t wisp_spawn_monitor(wisp_fn fn, const void *arg, uint32_t len,
                              uint64_t *ref);

/* Spawn fn(arg, len) with no directories at all (0 on error). */
wisp_pid_t wisp_spawn_without_fs(wisp_fn fn, const void *arg, uint32_t len);

/* The whole file at path (a module to spawn or load, say), malloc'd, its
 * length in *len; NULL if it cannot be read. */
void *wisp_read_file(const char *path, uint32_t *len);
/* Wait for the DOWN of monitor (wisp_spawn_monitor, a program spawned
 * with WISP_SPAWN_MONITOR): its reason, and the reason's text (cut to cap,
 * NUL-terminated; cap may be 0). */
int32_t wisp_wait_down(uint64_t monitor, struct wisp_exit_reason *reason, char *text,
                       uint32_t cap);
/* Register/whereis with NUL-terminated names (wisp_whereis_name: below). */
int32_t wisp_register_name(const char *name, wisp_pid_t pid);

/* Serving files (docs/abi.md, "Served files"): a server receives messages
 * with tag WISP_TAG_FILE (into a buffer of WISP_FILE_REQUEST_SIZE +
 * WISP_FILE_MAX_DATA bytes holds any), decodes each and answers it; the
 * example is tests/guests/c/served.c, an in-memory file tree. */
struct wisp_file_request {
	uint32_t op;            /* WISP_FILE_OP_* */
	uint32_t flags;         /* OPEN: WASI oflags | fdflags << 16 */
	uint64_t handle;        /* what the server's OPEN answered */
	uint64_t offset;        /* READ, WRITE (UINT64_MAX: at the end),
	                           READDIR (the cookie) */
	uint32_t len;           /* READ, READDIR: the most bytes wanted */
	uint32_t rights;        /* OPEN: WISP_FILE_RIGHT_* */
	const uint8_t *data;    /* OPEN, PSTAT: the path (normalised, relative
	                           to the root, "" the root, no NUL);
	                           WRITE: the bytes */
	uint32_t data_len;
	wisp_pid_t from;
	uint64_t ref;           /* 0: no reply wanted (CLOSE) */
};
/* Decode the request msg (info->len bytes, as received with info):
 * WISP_OK, or WISP_EINVAL if it is no served-file request. */
int32_t wisp_file_decode(const void *msg, const struct wisp_msg_info *info,
                         struct wisp_file_request *req);
/* Answer req: error (a WASI errno, 0: done), filetype, value, and len
 * bytes of data (at most WISP_FILE_MAX_DATA). Nothing is sent for a
 * request that wants no reply. WISP codes (WISP_ENOMEM). */
int32_t wisp_file_reply(const struct wisp_file_request *req, uint16_t error, uint8_t filetype,
                        uint64_t value, const void *data, uint32_t len);
/* A WASI filestat (WISP_FILE_STAT_SIZE bytes) at out, times 0. */
void wisp_file_stat(void *out, uint64_t ino, uint8_t filetype, uint64_t size);
/* One WASI dirent (its next cookie, inode, type and name) at buf, of which
 * room bytes are free: the bytes written, header first, cut at room (an
 * entry cut short ends a listing: the program asks again, larger). */
uint32_t wisp_file_dirent(void *buf, uint32_t room, uint64_t next, uint64_t ino, uint8_t type,
                          const char *name, uint32_t namelen);
wisp_pid_t wisp_whereis_name(const char *name);   /* 0 if none */

#ifdef __cplusplus
}
#endif

#endif
