//! Distribution: this runtime as a node of an Erlang cluster, and
//! processes on other nodes.
//!
//! A runtime started with `wisp run --sname NAME` (or `--name NAME@HOST`)
//! and a cookie (`--cookie`, else `~/.erlang.cookie`) is a node: other wisp
//! nodes and BEAM nodes are its peers. A process of another node is an
//! ordinary [`Pid`]: [`Process::send`](crate::Process::send),
//! [`call`](crate::Process::call), [`link`](Pid::link),
//! [`monitor`](Pid::monitor), [`kill`](Pid::kill) work on it unchanged, and
//! pids travel inside messages and spawn arguments (a [`Pid`] is encoded in
//! a portable form on a node: see its docs), so a pid received from
//! another node names the same process. When a node is lost, links to its
//! processes deliver [`ExitReason::NoConnection`](crate::ExitReason::NoConnection)
//! and monitors a `Down` with it.
//!
//! This module names nodes: [`name`], [`nodes`], [`of`], [`connect`];
//! sends to a registered name on a node ([`send_named`], the Erlang
//! `{Name, Node} ! Msg`); starts processes there ([`spawn_on`],
//! [`spawn_link_on`], [`spawn_monitor_on`]: a function of this module, its
//! argument encoded as for [`spawn`](fn@crate::spawn); the module travels
//! by hash, and the node must run with `--allow-remote-spawn`; or a closure
//! with copies of variables, [`spawn_on!`](crate::spawn_on!) as
//! [`spawn!`](crate::spawn!)); and
//! watches a node ([`monitor_node`], Erlang's `monitor_node`).
//!
//! ```no_run
//! use wisp::{node, Mailbox, Process};
//!
//! fn greeter(reply_to: Process<String>, _mb: Mailbox<()>) {
//!     let here = node::name().unwrap_or_default();
//!     reply_to.send(&format!("hello from {here}"));
//! }
//!
//! let mb = Mailbox::<String>::new();
//! node::spawn_on("pool@host", mb.process(), greeter).unwrap();
//! println!("{}", mb.receive().unwrap());       // hello from pool@host
//! ```

use std::fmt;

use serde::{de::DeserializeOwned, Serialize};

use crate::codec::{self, CodecError};
use crate::mailbox::Mailbox;
use crate::process::{runtime_is_node, MonitorRef, Pid, Process};
use crate::spawn::{captured_parts, spawn_parts, spawn_result, Captures, SpawnError};
use crate::sys;
use crate::term::Term;

/// Why a node call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeError {
    /// This runtime is no node: start it with `wisp run --sname NAME` (or
    /// `--name NAME@HOST`).
    NotANode,
    /// The node cannot be reached ([`connect`]).
    Unreachable,
    /// A node name that is not `NAME@HOST` (or `NAME@HOST:PORT`), or a
    /// registered name of 0 or more than 255 bytes.
    BadName,
    /// This process's capabilities forbid using other nodes
    /// ([`Caps::deny_nodes`](crate::Caps::deny_nodes)).
    Denied,
    /// The message could not be encoded, or is not one Erlang term
    /// ([`send_named_term`]).
    Encode(CodecError),
    /// Larger than the message limit.
    TooBig,
    /// The host could not allocate, or had no thread free to connect with.
    NoMemory,
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeError::NotANode => f.write_str("this runtime is no node (start it with wisp run --sname NAME)"),
            NodeError::Unreachable => f.write_str("the node cannot be reached"),
            NodeError::BadName => f.write_str("bad name: a node is NAME@HOST, a registered name 1 to 255 bytes"),
            NodeError::Denied => f.write_str(
                "not allowed to use other nodes by the process's capabilities (Caps::deny_nodes)",
            ),
            NodeError::Encode(e) => write!(f, "cannot encode the message: {e}"),
            NodeError::TooBig => f.write_str("message larger than the limit"),
            NodeError::NoMemory => f.write_str("the host is out of memory"),
        }
    }
}
impl std::error::Error for NodeError {}

/// As an `io::Error`: a denial is `PermissionDenied`, an unreachable node
/// `NotConnected`.
impl From<NodeError> for std::io::Error {
    fn from(e: NodeError) -> std::io::Error {
        use std::io::ErrorKind;
        let kind = match &e {
            NodeError::Denied => ErrorKind::PermissionDenied,
            NodeError::Unreachable | NodeError::NotANode => ErrorKind::NotConnected,
            NodeError::BadName | NodeError::Encode(_) => ErrorKind::InvalidInput,
            NodeError::TooBig | NodeError::NoMemory => ErrorKind::Other,
        };
        std::io::Error::new(kind, e)
    }
}

fn node_error(rc: i32) -> Result<(), NodeError> {
    match rc {
        sys::OK => Ok(()),
        sys::ENOTFOUND if !runtime_is_node() => Err(NodeError::NotANode),
        sys::ENOTFOUND => Err(NodeError::Unreachable),
        sys::EINVAL => Err(NodeError::BadName),
        sys::EPERM => Err(NodeError::Denied),
        sys::ETOOBIG => Err(NodeError::TooBig),
        _ => Err(NodeError::NoMemory),
    }
}

/// A name the host filled in: `fill(buf, cap)` returns the length it needs.
fn host_string(fill: impl Fn(*mut u8, u32) -> u32) -> String {
    let mut buf = vec![0u8; 256];
    loop {
        let n = fill(buf.as_mut_ptr(), buf.len() as u32) as usize;
        if n <= buf.len() {
            buf.truncate(n);
            return String::from_utf8_lossy(&buf).into_owned();
        }
        buf.resize(n, 0); // (the list can grow between two calls)
    }
}

/// This node's name (`NAME@HOST`), or `None` if the runtime is no node.
pub fn name() -> Option<String> {
    let n = host_string(|p, cap| unsafe { sys::node_name(p, cap) });
    (!n.is_empty()).then_some(n)
}

/// The nodes this one is connected to now (empty if it is no node).
pub fn nodes() -> Vec<String> {
    let all = host_string(|p, cap| unsafe { sys::node_list(p, cap) });
    all.split('\0').filter(|n| !n.is_empty()).map(str::to_string).collect()
}

/// The node `pid` lives on (this node's name for a local process); `None`
/// if the runtime is no node or no node knows `pid`.
pub fn of(pid: Pid) -> Option<String> {
    let n = host_string(|p, cap| unsafe { sys::node_of(pid.raw(), p, cap) });
    (!n.is_empty()).then_some(n)
}

/// Connect to `node` now (`NAME@HOST`, or `NAME@HOST:PORT` without EPMD),
/// parking the caller until the connection is up or has failed. Not needed
/// before sending or spawning, which connect on first use as Erlang does;
/// it tells whether the node is there.
pub fn connect(node: &str) -> Result<(), NodeError> {
    let len = u32::try_from(node.len()).map_err(|_| NodeError::BadName)?;
    node_error(unsafe { sys::node_connect(node.as_ptr(), len) })
}

/// Send raw bytes with `tag` to the process registered as `name` on `node`
/// (Erlang's `{Name, Node} ! {Tag, Binary}`; a process of this node if
/// `node` is this one). As any send, a message to a name or node that does
/// not exist is dropped, not an error.
pub fn send_named_raw(node: &str, name: &str, tag: u64, bytes: &[u8]) -> Result<(), NodeError> {
    let nlen = u32::try_from(node.len()).map_err(|_| NodeError::BadName)?;
    let namelen = u32::try_from(name.len()).map_err(|_| NodeError::BadName)?;
    let len = u32::try_from(bytes.len()).map_err(|_| NodeError::TooBig)?;
    let rc = unsafe { sys::node_send(node.as_ptr(), nlen, name.as_ptr(), namelen, tag, bytes.as_ptr(), len) };
    node_error(rc)
}

/// Send a typed message to the process registered as `name` on `node`: what
/// [`Process::send`](crate::Process::send) sends, so a wisp process there
/// receives it with [`Mailbox::receive`] (bincode; pids inside travel in
/// their portable form). Dropped if there is no such name or node.
///
/// ```no_run
/// wisp::node::send_named("kv@host", "kv", &("get", "lang".to_string())).unwrap();
/// ```
pub fn send_named<T: Serialize + ?Sized>(node: &str, name: &str, msg: &T) -> Result<(), NodeError> {
    let bytes = codec::encode(msg).map_err(NodeError::Encode)?;
    send_named_raw(node, name, crate::TAG_MSG, &bytes)
}

/// Send an Erlang term to the process registered as `name` on `node`: a
/// BEAM process there receives the term itself (`{Name, Node} ! Term`), a
/// wisp process a [`TAG_TERM`](crate::TAG_TERM) message. Pids in the term
/// ([`Term::Pid`]) arrive as the same processes.
///
/// ```no_run
/// use wisp::{node, Term};
/// let me = wisp::self_pid();
/// // {hello, <<"wisp">>, self()}
/// let t = Term::tuple(vec![Term::atom("hello"), Term::from("wisp"), Term::Pid(me)]);
/// node::send_named_term("erl@host", "greeter", &t).unwrap();
/// ```
pub fn send_named_term(node: &str, name: &str, term: &Term) -> Result<(), NodeError> {
    let bytes = term.encode().map_err(|e| NodeError::Encode(CodecError(e.to_string())))?;
    send_named_raw(node, name, crate::TAG_TERM, &bytes)
}

// ---- remote spawn ----

/// The host's answer to a remote spawn as a `SpawnError`: its `EPERM` may
/// come from the node (which refuses remote spawns) as well as from here.
fn remote_spawn_result(rc: i32, out: sys::Spawned) -> Result<sys::Spawned, SpawnError> {
    match rc {
        sys::ENOTFOUND => Err(SpawnError::Unreachable),
        sys::EPERM => Err(SpawnError::NodeRefused),
        sys::ETIMEDOUT => Err(SpawnError::Timeout),
        _ => spawn_result(rc, out),
    }
}

fn spawn_on_flags<A: Serialize + DeserializeOwned, M>(
    node: &str,
    arg: &A,
    f: fn(A, Mailbox<M>),
    flags: u32,
) -> Result<sys::Spawned, SpawnError> {
    let (entry, payload) = spawn_parts(arg, f)?;
    spawn_raw_on(node, entry, &payload, flags)
}

/// Start the crate's spawn entry `entry` with `payload` on `node` (see
/// [`spawn_parts`]); the supervisor's remote children come here too.
pub(crate) fn spawn_raw_on(node: &str, entry: u32, payload: &[u8], flags: u32) -> Result<sys::Spawned, SpawnError> {
    if !runtime_is_node() {
        return Err(SpawnError::Unreachable);
    }
    let nlen = u32::try_from(node.len()).map_err(|_| SpawnError::Invalid)?;
    let len = u32::try_from(payload.len()).map_err(|_| SpawnError::TooBig)?;
    let mut out = sys::Spawned::default();
    let rc = unsafe { sys::node_spawn(node.as_ptr(), nlen, entry, payload.as_ptr(), len, flags, &mut out) };
    remote_spawn_result(rc, out)
}

/// Start `f(arg, mailbox)` as a new process on `node`: as
/// [`spawn`](fn@crate::spawn) (a plain function or non-capturing closure,
/// `arg` encoded with the crate's codec, pids in it portable), in an
/// instance of this module there. The node fetches the module by its
/// hash if it lacks it, checks it and compiles it (cached); it must run
/// with `wisp run --allow-remote-spawn`, and the process gets that node's
/// capabilities, not the caller's. Parks the caller until the node
/// answers.
///
/// Errors: [`SpawnError::Unreachable`] (no such node, or this runtime is
/// no node), [`SpawnError::NodeRefused`] (the node does not accept remote
/// spawns, or this process may not spawn or use nodes),
/// [`SpawnError::Limit`], [`SpawnError::Timeout`], and the argument's
/// encoding errors.
pub fn spawn_on<A, M>(node: &str, arg: A, f: fn(A, Mailbox<M>)) -> Result<Process<M>, SpawnError>
where
    A: Serialize + DeserializeOwned,
{
    Ok(Pid::from_raw(spawn_on_flags(node, &arg, f, 0)?.pid).typed())
}

/// As [`spawn_on`], linked to the caller before the process runs: if
/// either ends abnormally the other gets the exit signal, with the real
/// reason, and [`ExitReason::NoConnection`](crate::ExitReason::NoConnection)
/// if the node is lost.
pub fn spawn_link_on<A, M>(node: &str, arg: A, f: fn(A, Mailbox<M>)) -> Result<Process<M>, SpawnError>
where
    A: Serialize + DeserializeOwned,
{
    Ok(Pid::from_raw(spawn_on_flags(node, &arg, f, sys::SPAWN_LINK)?.pid).typed())
}

/// As [`spawn_on`], monitored by the caller before the process runs: its
/// end is an [`Event::Down`](crate::Event::Down) with the returned ref
/// (reason `NoConnection` if the node is lost).
pub fn spawn_monitor_on<A, M>(
    node: &str,
    arg: A,
    f: fn(A, Mailbox<M>),
) -> Result<(Process<M>, MonitorRef), SpawnError>
where
    A: Serialize + DeserializeOwned,
{
    let s = spawn_on_flags(node, &arg, f, sys::SPAWN_MONITOR)?;
    Ok((Pid::from_raw(s.pid).typed(), MonitorRef(s.monitor)))
}

/// What [`spawn_on!`](crate::spawn_on!) expands to: start `f(copies of
/// the captures, mailbox)` on `node`, as [`spawn_on`].
pub fn spawn_on_captured<C: Captures, M>(
    node: &str,
    captures: &C,
    f: fn(C::Owned, Mailbox<M>),
) -> Result<Process<M>, SpawnError> {
    let (entry, payload) = captured_parts(captures, f)?;
    Ok(Pid::from_raw(spawn_raw_on(node, entry, &payload, 0)?.pid).typed())
}

/// What [`spawn_link_on!`](crate::spawn_link_on!) expands to: as
/// [`spawn_on_captured`], linked to the caller.
pub fn spawn_link_on_captured<C: Captures, M>(
    node: &str,
    captures: &C,
    f: fn(C::Owned, Mailbox<M>),
) -> Result<Process<M>, SpawnError> {
    let (entry, payload) = captured_parts(captures, f)?;
    Ok(Pid::from_raw(spawn_raw_on(node, entry, &payload, sys::SPAWN_LINK)?.pid).typed())
}

/// What [`spawn_monitor_on!`](crate::spawn_monitor_on!) expands to: as
/// [`spawn_on_captured`], monitored by the caller.
pub fn spawn_monitor_on_captured<C: Captures, M>(
    node: &str,
    captures: &C,
    f: fn(C::Owned, Mailbox<M>),
) -> Result<(Process<M>, MonitorRef), SpawnError> {
    let (entry, payload) = captured_parts(captures, f)?;
    let s = spawn_raw_on(node, entry, &payload, sys::SPAWN_MONITOR)?;
    Ok((Pid::from_raw(s.pid).typed(), MonitorRef(s.monitor)))
}

// ---- watching a node ----

/// Watch `node`, as Erlang's `monitor_node(Node, true)`: when the node is
/// lost (its connection closes, or it stays silent for the net tick time)
/// — or at once if it cannot be reached now (this connects if needed) —
/// the caller receives an [`Event::Down`](crate::Event::Down) with the
/// returned ref and reason
/// [`NoConnection`](crate::ExitReason::NoConnection), from a pid that
/// stands for the node ([`of`] names it). [`MonitorRef::demonitor`] ends
/// the watch. Any node can be watched, BEAM nodes included.
///
/// ```no_run
/// use wisp::{node, Event, Mailbox};
/// let watch = node::monitor_node("pool@host").unwrap();
/// let mb = Mailbox::<()>::new();
/// if let Ok(Event::Down { monitor, reason, .. }) = mb.receive_event(wisp::FOREVER) {
///     assert_eq!(monitor, watch);
///     println!("pool@host is gone: {reason}");      // noconnection
/// }
/// ```
pub fn monitor_node(node: &str) -> Result<MonitorRef, NodeError> {
    let len = u32::try_from(node.len()).map_err(|_| NodeError::BadName)?;
    let mut r = 0u64;
    node_error(unsafe { sys::node_monitor(node.as_ptr(), len, &mut r) })?;
    Ok(MonitorRef(r))
}
