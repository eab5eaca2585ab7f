//! Raw bindings of the wisp host ABI, version 1 (`include/wisp/guest.h`,
//! `docs/abi.md`). Everything here is a direct host import or a constant of
//! that ABI; the rest of the crate builds the safe API on top.
//!
//! The ABI is defined once, in the repository's `src/common/abi.def`;
//! `scripts/check-abi` (run by wisp's test suite) checks every extern block
//! below against it: names, parameter and result types, and the error space
//! each block's header comment names.
//!
//! Conventions of the ABI: a function that can fail returns 0 or an error
//! code of its namespace's kind: `wisp_process`, `wisp_message`,
//! `wisp_timer`, `wisp_registry` and `wisp_caps` return [`OK`] or a positive
//! `E*` code of this module ("errors: WISP codes"); `wisp_net` (like WASI)
//! returns WASI errno values ("errors: WASI errno"), which
//! `std::io::Error::from_raw_os_error` understands on wasm32-wasip1.
//! Pointers and lengths outside the caller's memory trap the caller; calls
//! marked "blocks" park only the calling process. Timeouts are nanoseconds,
//! [`INFINITY`] waits forever and [`NOWAIT`] polls.
#![allow(missing_docs)]

/// The ABI version these bindings implement.
pub const ABI_VERSION: i32 = 1;

pub const OK: i32 = 0;
/// No such process (dead, or never existed).
pub const ENOPROC: i32 = 1;
/// receive/request timed out (also a poll that found nothing).
pub const ETIMEDOUT: i32 = 2;
/// Buffer too small: the message stays queued, `info.len` says how big it is.
pub const ETOOSMALL: i32 = 3;
/// Bad argument (flags, kind, length; a request to oneself).
pub const EINVAL: i32 = 4;
/// Name already registered.
pub const EEXIST: i32 = 5;
/// Message larger than the process's limit.
pub const ETOOBIG: i32 = 6;
/// The host could not allocate.
pub const ENOMEM: i32 = 7;
/// No such timer / name / monitor.
pub const ENOTFOUND: i32 = 8;
/// A capability the process lacks.
pub const EPERM: i32 = 9;
/// A limit reached: the process table or the capability set's process
/// limit (spawn), 16 capability sets open (`caps_new`).
pub const ELIMIT: i32 = 10;

/// `receive_fd`: the socket is readable (or its peer closed); no message taken.
pub const EREADY: i32 = 11;

/// Wait forever.
pub const INFINITY: i64 = -1;
/// Do not wait.
pub const NOWAIT: i64 = 0;

/// Message kinds (`MsgInfo::kind`).
pub const MSG_DATA: u32 = 0;
pub const MSG_EXIT: u32 = 1;
pub const MSG_DOWN: u32 = 2;

/// Exit reason kinds (`ExitReasonRaw::kind`).
pub const EXIT_NORMAL: u32 = 0;
pub const EXIT_CODE: u32 = 1;
pub const EXIT_TRAP: u32 = 2;
pub const EXIT_KILLED: u32 = 3;
pub const EXIT_NOPROC: u32 = 4;
/// Killed by a limit of its capabilities; the text says which (`cpu limit`).
pub const EXIT_LIMIT: u32 = 5;
/// The runtime is shutting down (wisp got SIGTERM or SIGINT; the code is
/// the signal): an exit signal to the main process, trappable.
pub const EXIT_SHUTDOWN: u32 = 6;
pub const EXIT_NOCONNECTION: u32 = 7;
pub const EXIT_TERM: u32 = 8;
/// `EXIT_TRAP`'s code when the process panicked ([`panic()`]): the text is
/// the panic's message.
pub const TRAP_PANIC: i32 = 1;
/// [`panic()`]'s flags: the panic is expected (a test that must panic): its
/// crash report is at level info only.
pub const PANIC_QUIET: u32 = 1;

/// [`SupReport::event`]: a child ended (`reason`) and is restarted.
pub const SUP_RESTARTING: u32 = 1;
/// A child ended abnormally (`reason`) and is not restarted.
pub const SUP_CHILD_ENDED: u32 = 2;
/// A child did not (re)start (`error`).
pub const SUP_START_FAILED: u32 = 3;
/// More than `max_restarts` restarts within `period_ms`: the supervisor
/// stops its children and exits (child and reason: the last restart's).
pub const SUP_GIVING_UP: u32 = 4;

/// A supervisor's report for the runtime's log (`struct wisp_sup_report`,
/// 48 bytes); pointers and lengths are this module's memory.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SupReport {
    pub event: u32,
    pub max_restarts: u32,
    pub child: u64,
    pub id: u32,
    pub id_len: u32,
    /// A `wisp_exit_reason` payload (as an EXIT message's), or 0 bytes.
    pub reason: u32,
    pub reason_len: u32,
    pub error: u32,
    pub error_len: u32,
    pub period_ms: u32,
    pub reserved: u32,
}

/// The tag of the message `code_watch` asks for: a version became current
/// (from pid 0; its number, u32 LE).
pub const TAG_CODE: u64 = 0x7fff_ffff_ffff_636f;
/// `code_version`: the caller's version, or the current one.
pub const CODE_MINE: i32 = 0;
pub const CODE_CURRENT: i32 = 1;
/// `code_version`: whether the caller runs its run's optimized build.
pub const CODE_TIER: i32 = 2;

/// Flags of [`spawn`].
pub const SPAWN_LINK: u32 = 1;
pub const SPAWN_MONITOR: u32 = 2;

/// What `receive` and `request` tell about the message they delivered
/// (`struct wisp_msg_info`, 32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct MsgInfo {
    /// DATA: the sender's tag; DOWN: the monitor ref; EXIT: 0.
    pub tag: u64,
    /// DATA: the sender; EXIT/DOWN: the process that ended.
    pub from: u64,
    /// DATA sent by `request`: reply with `send(from, ref, ...)`; else 0.
    pub reference: u64,
    /// Payload bytes.
    pub len: u32,
    /// `MSG_*`.
    pub kind: u32,
}

/// `struct wisp_spawned`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Spawned {
    pub pid: u64,
    pub monitor: u64,
}

// ---- wisp_process (errors: WISP codes) ----
#[link(wasm_import_module = "wisp_process")]
extern "C" {
    #[link_name = "abi_version"]
    pub fn abi_version() -> i32;
    #[link_name = "self"]
    pub fn self_pid() -> u64;
    /// Start a process that calls the module's `wisp_spawn_entry(fn, arg_len)`.
    #[link_name = "spawn"]
    pub fn spawn(f: u32, arg: *const u8, arg_len: u32, flags: u32, out: *mut Spawned) -> i32;
    /// Copy up to `len` bytes of this process's spawn argument; returns its full length.
    #[link_name = "spawn_arg"]
    pub fn spawn_arg(buf: *mut u8, len: u32) -> u32;
    #[link_name = "kill"]
    pub fn kill(pid: u64) -> i32;
    #[link_name = "exit_signal"]
    pub fn exit_signal(pid: u64, code: i32) -> i32;
    #[link_name = "link"]
    pub fn link(pid: u64) -> i32;
    #[link_name = "unlink"]
    pub fn unlink(pid: u64) -> i32;
    #[link_name = "monitor"]
    pub fn monitor(pid: u64, reference: *mut u64) -> i32;
    #[link_name = "demonitor"]
    pub fn demonitor(reference: u64) -> i32;
    #[link_name = "trap_exit"]
    pub fn trap_exit(on: i32) -> i32;
    #[link_name = "alive"]
    pub fn alive(pid: u64) -> i32;
    #[link_name = "yield"]
    pub fn yield_now();
    pub fn hibernate();
    /// As [`spawn`], with the capability set `handle` instead of a copy of
    /// the caller's own.
    #[link_name = "spawn_with"]
    pub fn spawn_with(handle: i32, f: u32, arg: *const u8, arg_len: u32, flags: u32, out: *mut Spawned) -> i32;
    /// End this process with a panic whose text is `text[..len]` (reason
    /// `EXIT_TRAP`, code [`TRAP_PANIC`]); flags: [`PANIC_QUIET`]. Never
    /// returns.
    #[link_name = "panic"]
    pub fn panic(text: *const u8, len: u32, flags: u32);
    /// Write a supervisor report to the runtime's log.
    #[link_name = "supervisor_report"]
    pub fn supervisor_report(report: *const SupReport) -> i32;
}

// ---- wisp_message (errors: WISP codes) ----
#[link(wasm_import_module = "wisp_message")]
extern "C" {
    #[link_name = "send"]
    pub fn send(pid: u64, tag: u64, data: *const u8, len: u32) -> i32;
    /// Blocks.
    #[link_name = "receive"]
    pub fn receive(
        tags: *const u64,
        ntags: u32,
        timeout_ns: i64,
        buf: *mut u8,
        buf_len: u32,
        info: *mut MsgInfo,
    ) -> i32;
    /// Blocks.
    #[link_name = "request"]
    pub fn request(
        pid: u64,
        tag: u64,
        data: *const u8,
        len: u32,
        timeout_ns: i64,
        buf: *mut u8,
        buf_len: u32,
        info: *mut MsgInfo,
    ) -> i32;
    /// Blocks. `receive`, or [`EREADY`] as soon as socket `fd` is readable.
    #[link_name = "receive_fd"]
    pub fn receive_fd(
        tags: *const u64,
        ntags: u32,
        fd: i32,
        timeout_ns: i64,
        buf: *mut u8,
        buf_len: u32,
        info: *mut MsgInfo,
    ) -> i32;
    /// Move socket `fd` to `pid` (a DATA message with `tag`, payload: the
    /// fd in `pid`'s table, 4 bytes LE). The caller loses the fd at once.
    #[link_name = "send_fd"]
    pub fn send_fd(pid: u64, tag: u64, fd: i32) -> i32;
}

// ---- wisp_timer (errors: WISP codes) ----
#[link(wasm_import_module = "wisp_timer")]
extern "C" {
    /// Blocks.
    #[link_name = "sleep"]
    pub fn sleep(ns: i64);
    #[link_name = "send_after"]
    pub fn send_after(pid: u64, tag: u64, data: *const u8, len: u32, delay_ns: i64, timer: *mut u64) -> i32;
    #[link_name = "cancel"]
    pub fn cancel(timer: u64) -> i32;
}

// ---- wisp_registry (errors: WISP codes) ----
#[link(wasm_import_module = "wisp_registry")]
extern "C" {
    #[link_name = "register"]
    pub fn register(name: *const u8, len: u32, pid: u64) -> i32;
    #[link_name = "unregister"]
    pub fn unregister(name: *const u8, len: u32) -> i32;
    #[link_name = "whereis"]
    pub fn whereis(name: *const u8, len: u32, pid: *mut u64) -> i32;
}

// ---- wisp_net (errors: WASI errno) ----
// TCP, UDP and DNS. These return **WASI errno** codes (0 on success), not
// the `E*` codes above. Calls marked "blocks" park the process.
#[link(wasm_import_module = "wisp_net")]
extern "C" {
    #[link_name = "tcp_listen"]
    pub fn tcp_listen(addr: *const u8, addr_len: u32, port: u32, backlog: u32, fd: *mut i32) -> i32;
    /// Blocks.
    #[link_name = "tcp_accept"]
    pub fn tcp_accept(fd: i32, timeout_ns: i64, conn: *mut i32) -> i32;
    /// Blocks.
    #[link_name = "tcp_connect"]
    pub fn tcp_connect(addr: *const u8, addr_len: u32, port: u32, timeout_ns: i64, fd: *mut i32) -> i32;
    /// Blocks. `*n == 0`: the peer closed.
    #[link_name = "read"]
    pub fn net_read(fd: i32, buf: *mut u8, len: u32, timeout_ns: i64, n: *mut u32) -> i32;
    /// Blocks. `*n` may be short.
    #[link_name = "write"]
    pub fn net_write(fd: i32, buf: *const u8, len: u32, timeout_ns: i64, n: *mut u32) -> i32;
    #[link_name = "set_nodelay"]
    pub fn set_nodelay(fd: i32, on: u32) -> i32;
    #[link_name = "local_addr"]
    pub fn local_addr(fd: i32, buf: *mut u8, buf_len: u32, len: *mut u32, port: *mut u32) -> i32;
    #[link_name = "peer_addr"]
    pub fn peer_addr(fd: i32, buf: *mut u8, buf_len: u32, len: *mut u32, port: *mut u32) -> i32;
    /// Blocks. NUL-terminated address texts back to back.
    #[link_name = "resolve"]
    pub fn resolve(name: *const u8, name_len: u32, buf: *mut u8, buf_len: u32, used: *mut u32, count: *mut u32) -> i32;
    #[link_name = "udp_bind"]
    pub fn udp_bind(addr: *const u8, addr_len: u32, port: u32, fd: *mut i32) -> i32;
    #[link_name = "udp_connect"]
    pub fn udp_connect(fd: i32, addr: *const u8, addr_len: u32, port: u32) -> i32;
    /// Blocks. `addr_len` 0: to the connected address.
    #[link_name = "udp_send_to"]
    pub fn udp_send_to(
        fd: i32,
        buf: *const u8,
        len: u32,
        addr: *const u8,
        addr_len: u32,
        port: u32,
        timeout_ns: i64,
        n: *mut u32,
    ) -> i32;
    /// Blocks.
    #[link_name = "udp_recv_from"]
    pub fn udp_recv_from(
        fd: i32,
        buf: *mut u8,
        len: u32,
        timeout_ns: i64,
        n: *mut u32,
        addr: *mut u8,
        addr_buf_len: u32,
        addr_len: *mut u32,
        port: *mut u32,
    ) -> i32;
}

/// `TlsOptions::flags`: a client that accepts any certificate.
pub const TLS_NO_VERIFY: u32 = 1;
/// The size of `TlsOptions` (`struct wisp_tls_options`).
pub const TLS_OPTIONS_SIZE: u32 = 44;

/// `struct wisp_tls_options`: strings as (pointer, length); length 0 for
/// none.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TlsOptions {
    pub flags: u32,
    pub server_name: *const u8,
    pub server_name_len: u32,
    pub alpn: *const u8,
    pub alpn_len: u32,
    pub ca_file: *const u8,
    pub ca_file_len: u32,
    pub cert_file: *const u8,
    pub cert_file_len: u32,
    pub key_file: *const u8,
    pub key_file_len: u32,
}

// ---- wisp_tls (errors: WASI errno) ----
// TLS streams over wisp_net TCP sockets (the crate's `tls` module). These
// return **WASI errno** codes; `last_error` says why the last one failed.
#[link(wasm_import_module = "wisp_tls")]
extern "C" {
    /// Blocks. The client handshake on TCP stream `fd`.
    #[link_name = "connect"]
    pub fn tls_connect(fd: i32, opts: *const TlsOptions, opts_len: u32, timeout_ns: i64) -> i32;
    /// Blocks. The server handshake on TCP stream `fd`.
    #[link_name = "accept"]
    pub fn tls_accept(fd: i32, opts: *const TlsOptions, opts_len: u32, timeout_ns: i64) -> i32;
    #[link_name = "alpn"]
    pub fn tls_alpn(fd: i32, buf: *mut u8, buf_len: u32, len: *mut u32) -> i32;
    #[link_name = "last_error"]
    pub fn tls_last_error(buf: *mut u8, buf_len: u32, len: *mut u32) -> i32;
}

// ---- wasi_snapshot_preview1 (errors: WASI errno) ----
// The WASI calls the crate makes directly (on sockets, and polling a
// program's pipes).
#[link(wasm_import_module = "wasi_snapshot_preview1")]
extern "C" {
    /// `how`: 1 read, 2 write, 3 both (WASI `sdflags`).
    #[link_name = "sock_shutdown"]
    pub fn sock_shutdown(fd: i32, how: i32) -> i32;
    /// The 24-byte `fdstat` of `fd` (its first byte: the filetype);
    /// `EBADF` (8) if `fd` is not open.
    #[link_name = "fd_fdstat_get"]
    pub fn fd_fdstat_get(fd: i32, stat: *mut u8) -> i32;
    /// Rights can only be dropped: asking for more fails with
    /// `ENOTCAPABLE` (76) and changes nothing.
    #[link_name = "fd_fdstat_set_rights"]
    pub fn fd_fdstat_set_rights(fd: i32, base: u64, inheriting: u64) -> i32;
    /// Blocks (parks the process until a subscription is due). WASI's
    /// 48-byte subscriptions in, 32-byte events out; their count in
    /// `*nevents`.
    #[link_name = "poll_oneoff"]
    pub fn poll_oneoff(subscriptions: *const u8, events: *mut u8, nsubscriptions: u32, nevents: *mut u32) -> i32;
}

/// `wisp_caps` limits (`limit(handle, which, value)`).
pub const LIMIT_MEMORY: u32 = 0;
pub const LIMIT_CPU: u32 = 1;
pub const LIMIT_MESSAGE: u32 = 2;
pub const LIMIT_PROCESSES: u32 = 3;
pub const LIMIT_FDS: u32 = 4;
/// `wisp_caps` denials (`deny(handle, what)`), bits.
pub const DENY_SPAWN: u32 = 1;
pub const DENY_CAPS: u32 = 2;
pub const DENY_NODES: u32 = 4;
pub const DENY_CODE: u32 = 8;
/// `wisp_caps` stdio modes (`set_stdio(handle, fd, mode)`): inherit -> null -> closed.
pub const STDIO_INHERIT: u32 = 0;
pub const STDIO_NULL: u32 = 1;
pub const STDIO_CLOSED: u32 = 2;

// ---- wisp_caps (errors: WISP codes) ----
// Capability sets for children. Every call but `new` and `free` only
// removes or lowers (`EPERM` if it would widen); a set used by `spawn_with`
// is frozen (`EINVAL`). Handles are the caller's own, at most 16.
#[link(wasm_import_module = "wisp_caps")]
extern "C" {
    /// A handle to a copy of the caller's own set.
    #[link_name = "new"]
    pub fn caps_new(handle: *mut i32) -> i32;
    #[link_name = "free"]
    pub fn caps_free(handle: i32) -> i32;
    /// `len` 0: every directory.
    #[link_name = "drop_dir"]
    pub fn caps_drop_dir(handle: i32, guest: *const u8, len: u32) -> i32;
    /// `len` 0: every directory.
    #[link_name = "read_only"]
    pub fn caps_read_only(handle: i32, guest: *const u8, len: u32) -> i32;
    #[link_name = "clear_env"]
    pub fn caps_clear_env(handle: i32) -> i32;
    #[link_name = "set_stdio"]
    pub fn caps_set_stdio(handle: i32, fd: u32, mode: u32) -> i32;
    #[link_name = "drop_network"]
    pub fn caps_drop_network(handle: i32) -> i32;
    /// The limit becomes min(current, value).
    #[link_name = "limit"]
    pub fn caps_limit(handle: i32, which: u32, value: u64) -> i32;
    #[link_name = "deny"]
    pub fn caps_deny(handle: i32, what: u32) -> i32;
}

// ---- wisp_node (errors: WISP codes) ----
// This runtime as a node of an Erlang cluster (`wisp run --name`).
#[link(wasm_import_module = "wisp_node")]
extern "C" {
    /// This node's name; its length (0: not a node).
    #[link_name = "name"]
    pub fn node_name(buf: *mut u8, cap: u32) -> u32;
    /// Connected nodes' names, each followed by a NUL; the bytes needed.
    #[link_name = "list"]
    pub fn node_list(buf: *mut u8, cap: u32) -> u32;
    /// The node `pid` lives on; the name's length.
    #[link_name = "of"]
    pub fn node_of(pid: u64, buf: *mut u8, cap: u32) -> u32;
    #[link_name = "connect"]
    pub fn node_connect(node: *const u8, len: u32) -> i32;
    /// `{Name, Node} ! {Tag, Binary}`.
    #[link_name = "send"]
    pub fn node_send(node: *const u8, node_len: u32, name: *const u8, name_len: u32,
                     tag: u64, data: *const u8, len: u32) -> i32;
    /// A pid as NEW_PID_EXT bytes any node reads; the length (0: unknown).
    #[link_name = "pid_encode"]
    pub fn node_pid_encode(pid: u64, buf: *mut u8, cap: u32) -> u32;
    #[link_name = "pid_decode"]
    pub fn node_pid_decode(buf: *const u8, len: u32, pid: *mut u64) -> i32;
    /// Monitor a node (Erlang's monitor_node): DOWN noconnection when lost.
    #[link_name = "monitor"]
    pub fn node_monitor(node: *const u8, len: u32, reference: *mut u64) -> i32;
    /// Move the caller to another node as `fn(state)`; returns only on failure.
    #[link_name = "migrate"]
    pub fn node_migrate(node: *const u8, node_len: u32, func: u32, state: *const u8,
                        state_len: u32) -> i32;
    /// Start `fn(arg)` on another node (its module shipped by hash).
    #[link_name = "spawn"]
    pub fn node_spawn(node: *const u8, node_len: u32, func: u32, arg: *const u8, arg_len: u32,
                      flags: u32, out: *mut Spawned) -> i32;
}

// ---- wisp_code (errors: WISP codes) ----
// Hot code reload: versions of the main module, moving onto the current one.
#[link(wasm_import_module = "wisp_code")]
extern "C" {
    /// Load a module as the next version of the main module (it becomes
    /// current); its number in `*vsn`.
    #[link_name = "load"]
    pub fn code_load(bytes: *const u8, len: u32, vsn: *mut u32) -> i32;
    /// The caller's version (`which` 0) or the current one (1).
    #[link_name = "version"]
    pub fn code_version(which: i32) -> i32;
    /// Hear (or stop hearing) of new versions: a message tagged `WISP_TAG_CODE`.
    #[link_name = "watch"]
    pub fn code_watch(on: i32) -> i32;
    /// Move onto the current version with `state`; returns only on failure.
    #[link_name = "upgrade"]
    pub fn code_upgrade(state: *const u8, len: u32, why: *mut u8, why_cap: u32) -> i32;
}

/// `struct wisp_program_spec` (guest addresses are 32-bit).
#[repr(C)]
#[derive(Default, Clone, Copy, Debug)]
pub struct ProgramSpec {
    pub module: u32,
    pub module_len: u32,
    pub args: u32,
    pub args_len: u32,
    pub env: u32,
    pub env_len: u32,
    pub caps: i32,
    pub flags: u32,
    pub stdio: [u32; 3],
    pub mounts: u32,
    pub nmounts: u32,
}

/// `struct wisp_mount`: a served directory of a program's.
#[repr(C)]
#[derive(Default, Clone, Copy, Debug)]
pub struct Mount {
    pub server: u64,
    pub path: u32,
    pub path_len: u32,
}

/// `WISP_MAX_MOUNTS`: the most mounts a program may have.
pub const MAX_MOUNTS: u32 = 16;

// Served files (docs/abi.md, "Served files"; `wisp::served` is the typed
// face of these): a request is a DATA message tagged `TAG_FILE` whose
// payload is a little-endian header (u32 op, u32 flags, u64 handle, u64
// offset, u32 len, u32 rights: `FILE_REQUEST_SIZE` bytes) then the path
// (OPEN, PSTAT) or the data (WRITE); the reply, tagged with the request's
// ref, is a header (u16 error, a WASI errno; u8 filetype; u8 0; u32 len;
// u64 value: `FILE_REPLY_SIZE` bytes) then `len` bytes of data.

/// `WISP_TAG_FILE`: the tag of a served-file request.
pub const TAG_FILE: u64 = 0x7fff_ffff_ffff_6669;
/// OPEN: path; flags = oflags | fdflags << 16; rights: value = a handle,
/// and the filetype.
pub const FILE_OP_OPEN: u32 = 1;
/// READ: handle, offset, len: up to len bytes.
pub const FILE_OP_READ: u32 = 2;
/// WRITE: handle, offset (`u64::MAX`: at the end), data: value = bytes written.
pub const FILE_OP_WRITE: u32 = 3;
/// STAT: handle: a WASI filestat (`FILE_STAT_SIZE` bytes).
pub const FILE_OP_STAT: u32 = 4;
/// PSTAT: path: a WASI filestat.
pub const FILE_OP_PSTAT: u32 = 5;
/// READDIR: handle, offset = cookie, len: WASI dirents back to back, at most len.
pub const FILE_OP_READDIR: u32 = 6;
/// CLOSE: handle (sent with ref 0: no reply).
pub const FILE_OP_CLOSE: u32 = 7;
/// OPEN's rights: reading.
pub const FILE_RIGHT_READ: u32 = 1;
/// OPEN's rights: writing.
pub const FILE_RIGHT_WRITE: u32 = 2;
pub const FILE_REQUEST_SIZE: u32 = 32;
pub const FILE_REPLY_SIZE: u32 = 16;
/// A WASI (preview 1) filestat.
pub const FILE_STAT_SIZE: u32 = 64;
/// A WASI dirent's header (the name follows).
pub const FILE_DIRENT_SIZE: u32 = 24;
/// The most data in a request or a reply.
pub const FILE_MAX_DATA: u32 = 65536;

/// `struct wisp_program_out`.
#[repr(C)]
#[derive(Default, Clone, Copy, Debug)]
pub struct ProgramOut {
    pub pid: u64,
    pub monitor: u64,
    pub fds: [i32; 3],
    pub reserved: u32,
}

/// `ProgramSpec::stdio` values: [`STDIO_INHERIT`], [`STDIO_NULL`] and
/// [`STDIO_CLOSED`] (above: the same values as `set_stdio`'s), a pipe,
/// or `STDIO_FD | fd` (a copy of the caller's `fd`).
pub const STDIO_PIPE: u32 = 3;
pub const STDIO_FD: u32 = 0x8000_0000;

// ---- wisp_program (errors: WISP codes) ----
// Whole WASI programs as child processes.
#[link(wasm_import_module = "wisp_program")]
extern "C" {
    /// Start the command module `spec` describes; the child's pid and the
    /// caller's pipe ends in `*out`, or the reason in `why`.
    #[link_name = "spawn"]
    pub fn program_spawn(spec: *const ProgramSpec, out: *mut ProgramOut, why: *mut u8,
                         why_cap: u32) -> i32;
}
