//! # wisp: Erlang-style processes for Rust
//!
//! Write ordinary blocking Rust; run it as many isolated processes on the
//! wisp runtime. Each process is a fresh instance of your WebAssembly
//! module (its own memory: nothing is shared), scheduled M:N on fibers,
//! talking by typed messages. Links, monitors and supervisors make failures
//! visible and recoverable: a panic ends one process, not the program.
//!
//! ```
//! use wisp::Mailbox;
//!
//! #[wisp::main]
//! fn main(mailbox: Mailbox<String>) {
//!     let me = mailbox.process();
//!     let name = String::from("doc");
//!     wisp::spawn!(|me, name| me.send(&format!("hello, {name}"))).unwrap();
//!     assert_eq!(mailbox.receive().unwrap(), "hello, doc");
//! }
//! ```
//!
//! - [`#[wisp::main]`](macro@main): `main` receives the first process's
//!   mailbox; [`#[wisp::test]`](macro@test): a drop-in for `#[test]` running
//!   each test as its own process (`should_panic`, `ignore`, timeouts).
//! - [`spawn!`], [`spawn_link!`], [`spawn_monitor!`]: start a closure as a
//!   process, with copies of the variables it names (serialized into it),
//!   optionally with a capability set; [`spawn_on!`] and its forms, on
//!   another node.
//! - [`spawn`](fn@spawn), [`spawn_link`](fn@spawn_link),
//!   [`spawn_monitor`](fn@spawn_monitor): start `f(arg, mailbox)` as a
//!   process; `f` is a function or non-capturing closure, `arg` any
//!   serializable value.
//! - [`Process<M>`]: a typed, copyable, serializable handle; [`Pid`] the
//!   untyped id.
//! - [`Mailbox<M>`]: [`receive`](Mailbox::receive), timeouts, selective
//!   receive by tag, [`Event`]s for exit signals and monitor notices.
//! - [`Process::call`]: request/reply with a timeout; a dead process is an
//!   error, not a hang.
//! - [`register`]/[`whereis`], [`sleep`], [`send_after`].
//! - [`server::Server`] with one typed handler per message type
//!   ([`Handle`], [`HandleDeferred`] with [`Deferred`] replies) and typed
//!   [`ServerRef`]s, [`registry::Name`] for typed names, and
//!   [`supervisor::Supervisor`]: OTP's gen_server and supervisor.
//! - [`codec`]: a wire format per mailbox (bincode, MessagePack, JSON, raw
//!   bytes); decode errors name the type expected.
//! - [`fs`]: `std::fs` with capability denials as `PermissionDenied` naming
//!   what is missing (network, spawn and caps errors are too).
//! - [`net`]: `TcpListener`, `TcpStream` (`std::io::Read`/`Write`),
//!   `UdpSocket`, DNS [`net::lookup`]; blocking calls park only the caller,
//!   and sockets move between processes by message
//!   ([`net::spawn_with_stream`], [`Process::send_stream`]).
//! - Timeouts are [`Duration`](std::time::Duration)s everywhere
//!   ([`FOREVER`]: no limit; `Duration::ZERO`: poll), except the socket
//!   setters that mirror std's and take std's `Option<Duration>`.
//! - [`Caps`]: a smaller capability set for a child (no directories, no
//!   network, memory and CPU limits, ...), [`spawn_with`],
//!   [`spawn_without_fs`]; narrowing only, as the host enforces.
//! - [`node`]: distribution: this runtime as a node of an Erlang cluster
//!   (`wisp run --sname`), [`node::spawn_on`] another node, sends to names
//!   there, [`node::monitor_node`]; pids travel inside messages and name
//!   the same process on every node.
//! - [`term`]: Erlang terms ([`Term`]) in the external term format, for
//!   messages to and from Erlang code ([`TAG_TERM`]).
//! - [`program`]: whole WASI programs (any `wasm32-wasip1` command
//!   module) as child processes, as `std::process::Command` runs
//!   executables: [`program::Program`] with arguments, environment, a
//!   narrowed [`Caps`] and piped stdio (`Read`/`Write` on the pipes),
//!   [`program::Child::wait`] for its exit status; [`served`]: a
//!   program's files served by a process of yours
//!   ([`served::MemFs`] in memory, or any [`served::FileServer`]).
//! - [`code`], [`upgradable!`]: hot code reload: servers ([`Upgrade`]) and
//!   supervisors move onto a new version of the program (`wisp reload`)
//!   in place, between two messages, with their state.
//! - [`test_main!`]: the older harness running each test as its own process.
//! - `http` (feature `http`): an HTTP/1.1 server, a process per connection
//!   and handlers in plain blocking code (`wisp::http::serve`).
//!
//! The raw host ABI is in [`sys`]. Build for `wasm32-wasip1` and run with
//! `wisp run`: `wisp new NAME` makes a project where plain `cargo run` and
//! `cargo test` do (see the crate's README).
#![warn(missing_docs)]

// Modules, each using only those listed before it (no cycles; checked by
// the repository's tests/e2e/test_rust_sdk.py):
//   sys, codec, time, fnptr,  the raw ABI, wire formats, timeouts,
//   fs                        function indices, files
//   caps                      capability sets (handles only)
//   socket                    TCP/UDP sockets on OwnedFds; no processes
//   process                   Pid, Process<M>: signals, sends, calls
//   term                      Erlang terms (ETF), sent as TAG_TERM messages
//   message                   envelopes, replies, the raw receive and
//                             moved-socket checks
//   code                      versions of the program, the table of
//                             upgradable types, the wisp_code_change entry
//   mailbox                   Mailbox<M>, Event<M>: typed receives
//   spawn                     spawning, the spawn protocol, spawn!'s captures
//   served                    served files: the protocol, FileServer, MemFs
//   program                   whole WASI programs as child processes
//   node                      distribution: node names, sends to names
//                             there, spawn_on, monitor_node
//   timer, registry           timers and names (typed: Name<T>)
//   server, supervisor        gen_server and supervisor
//   test                      #[wisp::test]'s runner and test_main!
//   net                       the public face of socket, with the parts of
//                             mailbox and spawn that concern sockets
//   tls                       TLS streams on sockets
//   http                      HTTP/1.1 servers (feature "http")
// A type's inherent methods are all in its own module.
pub mod caps;
pub mod code;
pub mod codec;
mod fnptr;
pub mod fs;
#[cfg(feature = "http")]
pub mod http;
mod mailbox;
mod message;
pub mod net;
pub mod node;
mod process;
pub mod program;
pub mod registry;
pub mod served;
pub mod server;
mod socket;
pub mod spawn;
pub mod supervisor;
pub mod sys;
pub mod term;
pub mod tls;
pub mod test;
mod time;
mod timer;

pub use caps::{Caps, CapsError, Stdio};
pub use mailbox::{Event, Mailbox};
pub use message::{Envelope, RecvError, ReplyTo};
pub use process::{
    exit, hibernate, install_panic_hook, self_pid, trap_exits, yield_now, CallError, ExitReason, MonitorRef, Pid,
    Process, SendError,
};
pub use registry::{register, unregister, whereis, Name, RegistryError};
pub use server::{Deferred, Handle, HandleDeferred, Server, ServerRef, Upgrade};
#[doc(hidden)]
pub use spawn::wisp_spawn_entry;
pub use spawn::{
    spawn, spawn_link, spawn_link_with, spawn_monitor, spawn_monitor_with, spawn_with, spawn_without_fs, SpawnError,
};
pub use supervisor::{ChildSpec, Restart, Strategy, Supervisor, SupervisorRef};
pub use term::{Term, TermError};
pub use time::FOREVER;
pub use node::{spawn_link_on, spawn_monitor_on, spawn_on};
pub use wisp_macros::{main, spawn, spawn_link, spawn_link_on, spawn_monitor, spawn_monitor_on, spawn_on, test};
pub use timer::{send_after, sleep, TimerRef};

/// The tag of typed messages ([`Process::send`]).
pub const TAG_MSG: u64 = 1;
/// The tag of typed requests ([`Process::call`]).
pub const TAG_CALL: u64 = 2;
/// The tag of server casts.
pub const TAG_CAST: u64 = 3;
/// The tag of start acknowledgements (servers, supervisors).
pub(crate) const TAG_ACK: u64 = 4;
/// The tag of supervisor requests.
pub(crate) const TAG_SUP: u64 = 5;
// Tags 6, 7: moved sockets (net::TAG_TCP_STREAM, ...); 8: test reports.
/// The tag of upgrade requests ([`ServerRef::upgrade`]).
pub(crate) const TAG_UPGRADE: u64 = 9;
// Tag 10: an upgrade's refusal (code::TAG_REFUSAL).
/// Tags from here up (below 2^63) are free for applications'
/// [`Pid::send_tagged`]; the crate uses the ones below, and [`TAG_TERM`].
pub const TAG_USER: u64 = 1 << 16;
/// The tag of a message carrying one Erlang term ([`Term::send_to`],
/// [`Term::decode`]); the C SDK's `WISP_TAG_TERM`, the value the host maps
/// to and from Erlang messages.
pub const TAG_TERM: u64 = 0x7fff_ffff_ffff_7465;

/// List the server types a new version of this program can take over, once
/// per program: `wisp::upgradable!(Kv, Conn);`. Each must implement
/// [`Upgrade`](crate::server::Upgrade) (a compile error says so if one does
/// not). It generates the export `wisp_code_change`, which the host calls
/// in a new version to take a process over, and tells the servers of these
/// types in every version that they can move.
///
/// A server of a type the new version does not list stays on its old code
/// (the new version refuses it, naming the types it lists); one of a type
/// the old version did not list does not move at all. A program without
/// the macro exports no `wisp_code_change`, and `wisp reload` refuses it as
/// a new version.
#[macro_export]
macro_rules! upgradable {
    ($($t:ty),* $(,)?) => {
        const _: () = {
            static TYPES: &[$crate::code::Upgradable] = &[$($crate::server::upgradable::<$t>()),*];

            #[no_mangle]
            extern "C" fn wisp_code_change(old_vsn: u32, state_len: u32) -> i32 {
                $crate::code::code_change(TYPES, $crate::supervisor::resume_supervisor, old_vsn, state_len)
            }

            // Every instance registers the table before any export runs
            // (wasm-ld turns .init_array entries into constructors).
            extern "C" fn register() {
                $crate::code::register(TYPES)
            }
            #[used]
            #[cfg_attr(target_family = "wasm", link_section = ".init_array")]
            static REGISTER: extern "C" fn() = register;
        };
    };
}
