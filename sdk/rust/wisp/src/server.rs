//! Servers: OTP's gen_server for Rust, with one typed handler per message
//! type.
//!
//! A [`Server`] is a state value owned by its own process, changed only by
//! its handlers, one message at a time. Each message type `M` it accepts
//! has its own handler, `impl Handle<M> for MyServer` (answers at once) or
//! `impl HandleDeferred<M> for MyServer` (keeps a [`Deferred`] reply token
//! and answers later, possibly from another process), listed once in
//! [`Server::handlers`]. Clients hold a typed, copyable [`ServerRef<S>`]
//! whose [`call`](ServerRef::call) and [`cast`](ServerRef::cast) accept
//! only the message types `S` handles, and return the reply type of that
//! handler: sending a `ServerRef<Kv>` a message `Kv` has no handler for is
//! a compile error.
//!
//! ```
//! use std::collections::HashMap;
//! use serde::{Deserialize, Serialize};
//! use wisp::server::{Context, Handle, Handlers, Server};
//!
//! struct Kv(HashMap<String, String>);
//!
//! #[derive(Serialize, Deserialize)]
//! struct Get(String);
//! #[derive(Serialize, Deserialize)]
//! struct Put(String, String);
//!
//! impl Server for Kv {
//!     type Arg = ();
//!     fn init(_: (), _cx: &mut Context<Self>) -> Result<Self, String> {
//!         Ok(Kv(HashMap::new()))
//!     }
//!     fn handlers(h: &mut Handlers<Self>) {
//!         h.handle::<Get>().handle::<Put>();
//!     }
//! }
//!
//! impl Handle<Get> for Kv {
//!     type Reply = Option<String>;
//!     fn handle(&mut self, Get(k): Get, _cx: &mut Context<Self>) -> Option<String> {
//!         self.0.get(&k).cloned()
//!     }
//! }
//!
//! impl Handle<Put> for Kv {
//!     type Reply = Option<String>;        // the old value
//!     fn handle(&mut self, Put(k, v): Put, _cx: &mut Context<Self>) -> Option<String> {
//!         self.0.insert(k, v)
//!     }
//! }
//!
//! let kv = Kv::start(()).unwrap();
//! kv.cast(&Put("lang".into(), "rust".into()));
//! assert_eq!(kv.call(&Get("lang".into())).unwrap(), Some("rust".to_string()));
//! ```
//!
//! Start is synchronous, as in Erlang: [`Server::start_link`] returns once
//! `init` has returned in the new process, with `init`'s error or the
//! reason the process died during `init`. A panic in any handler traps the
//! process (reason `Trap`): callers waiting on it get
//! [`CallError::NoProc`], links and supervisors see the trap.
//!
//! **Moving to another node.** A server whose state can travel
//! ([`Handover`]: `save` and `restore`) moves to another node when one of
//! its handlers asks, [`Context::migrate_to`], on a runtime that is a node
//! (`wisp run --sname`) to a node that runs with `--allow-remote-spawn`.
//! The move happens between two messages: after the handler has returned
//! and its reply was sent, the loop saves the state and calls the host's
//! `wisp_node.migrate`, which starts a new incarnation of the server on
//! that node, with the state, linked to this process and registered there
//! under its names; this process then becomes a **forwarder** and never
//! runs guest code again. The new incarnation restores the state and
//! serves the same handlers. Clients keep their [`ServerRef`]: calls and
//! casts to the old pid are forwarded in order with their sender and
//! reference (replies come straight back from the new node), including the
//! ones queued when the move happened, so none is lost or handled twice
//! (and a sender's node, once told where the server went, sends there
//! directly, still in order).
//! Links and monitors of the old pid see the server's real end (the
//! forwarder ends with the new incarnation's reason); the parent's exit
//! signal still stops it; the trap-exits setting travels. The server's
//! identity stays the old pid: when it dies (killed, or its node lost) the
//! server ends too, with that reason. If the move fails — the node cannot
//! be reached or refuses, a name is taken there, `save` fails — the server
//! goes on where it was with its state, and the error goes to
//! [`Handover::migrate_failed`] and, with
//! [`Context::migrate_to_and_reply`], to the caller who asked
//! ([`MigrateError`]).
//!
//! **Moving onto a new version of the program** (hot code reload, `wisp
//! reload`): a server whose type implements [`Upgrade`] (over
//! [`Handover`]'s `save` and `restore`) and is listed in the program's
//! [`upgradable!`](crate::upgradable) moves in place — same process, pid,
//! mailbox, links, names, timers — between two messages, by itself when a
//! version becomes current (or when asked, [`ServerRef::upgrade`]); the
//! new version rebuilds its state ([`Upgrade::upgrade`], which can read an
//! older layout) and serves its own handlers. A refusal leaves it on its
//! old code with its state ([`Upgrade::upgrade_failed`] gets why).
//! [`Upgrade`] says when and how; [`code`] how it works.
//!
//! **A connection per server**: a server may hold one TCP stream
//! ([`Context::set_stream`], [`Server::start_with_stream`]); the loop then
//! calls [`Server::handle_readable`] when it is readable, between
//! messages. The stream stays held across an upgrade.
//!
//! Wire protocol: calls are requests with tag [`TAG_CALL`](crate::TAG_CALL),
//! casts messages with tag [`TAG_CAST`](crate::TAG_CAST); the payload is
//! the message type's key (a hash of its type name, 8 bytes LE) and the
//! message (bincode). The server looks the key up in the table
//! [`Server::handlers`] built in its own process, so nothing from a message
//! chooses code to run but that table. The start acknowledgement is a
//! message with an internal tag carrying `Result<(), String>`. A new
//! incarnation starts as any spawned process (a function of this module by
//! its table index, `spawn::spawn_parts`), its argument the parent, its
//! earlier pids, the trap-exits setting, the caller to answer and the
//! state's image (`Handover::Saved`, encoded apart from the rest). An
//! upgrade hands the same over to the new version ([`code`]'s
//! `Handoff`), with the held stream's fd; an upgrade request is a call with
//! an internal tag, answered by the new version once it runs.

use std::any::{type_name, Any, TypeId};
use std::borrow::Borrow;
use std::fmt;
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{de::DeserializeOwned, Deserialize, Deserializer, Serialize, Serializer};

use crate::code::{self, Handoff, Upgradable};
pub use crate::code::UpgradeError;
use crate::codec::{Bincode, CodecError};
use crate::mailbox::{event_of, Event, Mailbox};
use crate::message::{self, receive_raw, Envelope, RecvError, ReplyTo};
use crate::process::{
    call_bytes, call_tagged, runtime_is_node, self_pid, trap_exits, CallError, ExitReason, MonitorRef, Pid,
    SendError,
};
use crate::registry::Named;
use crate::socket::TcpStream;
use crate::spawn::{spawn_flags, spawn_parts, SpawnError};
use crate::time::FOREVER;
use crate::{codec, node, sys};

/// The default timeout of [`ServerRef::call`], as Erlang's.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// A server: its state, how it starts and stops, and which message types
/// it handles (each with its own [`Handle`] or [`HandleDeferred`] impl).
/// See the [module](self) for an example.
pub trait Server: Sized + 'static {
    /// What `init` gets.
    type Arg: Serialize + DeserializeOwned;

    /// Build the state, in the new process. An `Err` makes `start` return
    /// [`StartError::Init`] (the process then ends normally).
    fn init(arg: Self::Arg, cx: &mut Context<Self>) -> Result<Self, String>;

    /// List the message types the server handles:
    /// `h.handle::<Get>().handle::<Put>().deferred::<Slow>()`. A message of
    /// a type not listed is refused ([`CallError::BadRequest`] for a call).
    fn handlers(h: &mut Handlers<Self>);

    /// Anything that is not a call or cast: exit signals of links when the
    /// server traps exits (see [`Context::trap_exits`]), monitor notices,
    /// moved sockets, other tags. (Plain messages with
    /// [`TAG_MSG`](crate::TAG_MSG) arrive as `Event::Message(())` if empty,
    /// else as bad messages: send servers casts.)
    fn handle_info(&mut self, event: Event<()>, cx: &mut Context<Self>) {
        let _ = (event, cx);
    }

    /// A message that did not decode or has no handler (a bad call has
    /// already been answered with [`CallError::BadRequest`]). The default
    /// reports it on stderr and goes on.
    fn handle_bad_message(&mut self, error: RecvError, cx: &mut Context<Self>) {
        eprintln!("wisp: server {:?}: {}", cx.this().pid(), error);
    }

    /// The TCP stream the server holds ([`Context::set_stream`],
    /// [`start_with_stream`](Self::start_with_stream)) is readable: data
    /// waits, or the peer closed it (a read returns 0). Read once, from
    /// [`Context::stream`]: that read does not block. Called between two
    /// messages, as handlers are. The default stops holding the stream (it
    /// closes) and says so on stderr: a server that holds one handles it.
    fn handle_readable(&mut self, cx: &mut Context<Self>) {
        eprintln!("wisp: server {:?}: its stream is readable but it has no handle_readable: closing it", self_pid());
        cx.take_stream();
    }

    /// Called once when the server stops through [`Context::stop`], or
    /// because its parent's exit signal arrived while it traps exits. Not
    /// called when it panics or is killed.
    fn terminate(&mut self, reason: &ExitReason) {
        let _ = reason;
    }

    /// Start the server as a new process and wait for `init`.
    fn start(arg: Self::Arg) -> Result<ServerRef<Self>, StartError> {
        start_with::<Self>(arg, 0)
    }

    /// As [`start`](Self::start), linked to the caller (for supervision).
    fn start_link(arg: Self::Arg) -> Result<ServerRef<Self>, StartError> {
        start_with::<Self>(arg, sys::SPAWN_LINK)
    }

    /// As [`start`](Self::start), with `stream` moved to the new server
    /// before `init`, which finds it in [`Context::stream`]: a server per
    /// connection, whose [`handle_readable`](Self::handle_readable) reads
    /// it. Not linked: a connection that fails ends alone. (The caller
    /// loses the stream, even when the start fails.)
    fn start_with_stream(arg: Self::Arg, stream: TcpStream) -> Result<ServerRef<Self>, StartError> {
        start_stream::<Self>(arg, stream)
    }
}

/// A handler for messages of type `M` that answers at once: the value it
/// returns is the reply to a [`ServerRef::call`] (and is dropped for a
/// [`ServerRef::cast`]).
pub trait Handle<M>: Server {
    /// What a call with an `M` returns.
    type Reply: Serialize + DeserializeOwned;

    /// Handle one `M`.
    fn handle(&mut self, msg: M, cx: &mut Context<Self>) -> Self::Reply;
}

/// A handler for messages of type `M` that answers later: it gets a
/// [`Deferred`] token, keeps it or hands it to another process (it is
/// serializable), and whoever holds it replies once with
/// [`Deferred::reply`]. The server goes on with other messages meanwhile.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use wisp::server::{Context, Deferred, HandleDeferred, Handlers, Server};
///
/// struct Squarer;
/// #[derive(Serialize, Deserialize)]
/// struct Square(u64);
///
/// impl Server for Squarer {
///     type Arg = ();
///     fn init(_: (), _: &mut Context<Self>) -> Result<Self, String> { Ok(Squarer) }
///     fn handlers(h: &mut Handlers<Self>) { h.deferred::<Square>(); }
/// }
///
/// impl HandleDeferred<Square> for Squarer {
///     type Reply = u64;
///     fn handle_deferred(&mut self, Square(n): Square, reply: Deferred<u64>, _: &mut Context<Self>) {
///         // A worker process answers the caller; the server is free at once.
///         wisp::spawn!(|n, reply| { let _ = reply.reply(&(n * n)); }).unwrap();
///     }
/// }
///
/// let s = Squarer::start(()).unwrap();
/// assert_eq!(s.call(&Square(12)).unwrap(), 144);
/// ```
pub trait HandleDeferred<M>: Server {
    /// What a call with an `M` returns.
    type Reply: Serialize + DeserializeOwned;

    /// Handle one `M`; reply through `reply` now or later.
    fn handle_deferred(&mut self, msg: M, reply: Deferred<Self::Reply>, cx: &mut Context<Self>);
}

/// The kind of a [`Handle`] handler (a type-level marker of [`Handler`]).
#[derive(Debug)]
pub enum Now {}
/// The kind of a [`HandleDeferred`] handler (a type-level marker of [`Handler`]).
#[derive(Debug)]
pub enum Later {}

/// What [`ServerRef`] needs of a handler of `M`, either kind `K` ([`Now`]
/// or [`Later`]): implemented for every [`Handle`] and [`HandleDeferred`],
/// never by hand. The compiler infers `K`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not handle `{M}` messages",
    label = "`{Self}` has no handler for this message type",
    note = "a ServerRef<{Self}> accepts only the message types its server handles: implement \
            `wisp::Handle<{M}>` (or `wisp::HandleDeferred<{M}>`) for `{Self}` and list it \
            in its Server::handlers (`h.handle::<{M}>()`, `h.deferred::<{M}>()`)"
)]
pub trait Handler<M, K>: Server {
    /// What a call with an `M` returns.
    type Reply: Serialize + DeserializeOwned;

    /// Run the handler; `reply` is `None` for a cast.
    #[doc(hidden)]
    fn dispatch(&mut self, msg: M, reply: Option<ReplyTo>, cx: &mut Context<Self>);
}

impl<S: Handle<M>, M> Handler<M, Now> for S {
    type Reply = <S as Handle<M>>::Reply;

    fn dispatch(&mut self, msg: M, reply: Option<ReplyTo>, cx: &mut Context<Self>) {
        let r = self.handle(msg, cx);
        if let Some(to) = reply {
            if let Err(e) = to.reply(&r) {
                eprintln!("wisp: server {:?}: cannot send the reply: {e}", self_pid());
            }
        }
    }
}

impl<S: HandleDeferred<M>, M> Handler<M, Later> for S {
    type Reply = <S as HandleDeferred<M>>::Reply;

    fn dispatch(&mut self, msg: M, reply: Option<ReplyTo>, cx: &mut Context<Self>) {
        self.handle_deferred(msg, Deferred::new(reply), cx);
    }
}

/// A reply owed to a caller: [`HandleDeferred`] gets one per message. It
/// is serializable, so it can travel to another process, which replies
/// instead of the server. For a cast there is nobody to answer and
/// [`reply`](Self::reply) does nothing.
///
/// A token dropped without an answer tells the caller so at once: its
/// `call` returns [`CallError::NoReply`] instead of waiting for its
/// timeout. That holds for a token dropped by the handler, and for one a
/// worker received and dropped (its function returned without replying).
/// A token that was serialized — handed to another process, saved with the
/// state — leaves answering to the copy: dropping the original says
/// nothing. A holder that dies (a panic, a kill) runs no destructor: then
/// the caller waits for its timeout, or gets [`CallError::NoProc`] if the
/// server itself ended.
pub struct Deferred<R> {
    to: Option<ReplyTo>,
    /// Set when the token is serialized: a copy now answers (or says it
    /// will not), so dropping this one tells the caller nothing.
    handed_over: AtomicBool,
    _r: PhantomData<fn(R)>,
}

impl<R> Deferred<R> {
    fn new(to: Option<ReplyTo>) -> Self {
        Deferred { to, handed_over: AtomicBool::new(false), _r: PhantomData }
    }

    /// Who is waiting, if anyone (a cast has nobody).
    pub fn caller(&self) -> Option<Pid> {
        self.to.map(|t| t.pid)
    }

    /// The caller to answer, taken: the token's drop then says nothing.
    fn take(&mut self) -> Option<ReplyTo> {
        self.to.take()
    }
}

impl<R: Serialize> Deferred<R> {
    /// Answer the caller (its `call` returns `value`). Answering a caller
    /// that gave up or died is not an error.
    pub fn reply(mut self, value: &R) -> Result<(), SendError> {
        match self.take() {
            Some(to) => to.reply(value),
            None => Ok(()),
        }
    }
}

impl<R> Drop for Deferred<R> {
    fn drop(&mut self) {
        if let Some(to) = self.to.take() {
            if !self.handed_over.load(Ordering::Relaxed) {
                to.reply_none();
            }
        }
    }
}

impl<R> fmt::Debug for Deferred<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Deferred({:?})", self.to)
    }
}
impl<R> Serialize for Deferred<R> {
    fn serialize<Se: Serializer>(&self, s: Se) -> Result<Se::Ok, Se::Error> {
        self.handed_over.store(true, Ordering::Relaxed);
        self.to.serialize(s)
    }
}
impl<'de, R> Deserialize<'de> for Deferred<R> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Deferred::new(Option::<ReplyTo>::deserialize(d)?))
    }
}

/// The key of message type `M` on the wire: FNV-1a of its type name. All
/// processes of a run are the same module, so they agree on it.
fn type_key<M>() -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in type_name::<M>().bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

type Dispatch<S> = fn(&mut S, &[u8], Option<ReplyTo>, &mut Context<S>) -> Result<(), CodecError>;

fn dispatch<S: Handler<M, K>, M: DeserializeOwned, K>(
    s: &mut S,
    bytes: &[u8],
    reply: Option<ReplyTo>,
    cx: &mut Context<S>,
) -> Result<(), CodecError> {
    let m: M = codec::decode(bytes)?;
    s.dispatch(m, reply, cx);
    Ok(())
}

/// The table of a server's handlers, built by [`Server::handlers`] in the
/// server's own process.
pub struct Handlers<S: Server> {
    table: Vec<(u64, &'static str, Dispatch<S>)>,
}

impl<S: Server> fmt::Debug for Handlers<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.table.iter().map(|e| e.1)).finish()
    }
}

impl<S: Server> Handlers<S> {
    fn add<M: DeserializeOwned, K>(&mut self) -> &mut Self
    where
        S: Handler<M, K>,
    {
        let key = type_key::<M>();
        if !self.table.iter().any(|e| e.0 == key) {
            self.table.push((key, type_name::<M>(), dispatch::<S, M, K>));
        }
        self
    }

    /// Accept messages of type `M`, handled by `impl Handle<M> for S`.
    pub fn handle<M: DeserializeOwned>(&mut self) -> &mut Self
    where
        S: Handle<M>,
    {
        self.add::<M, Now>()
    }

    /// Accept messages of type `M`, handled by `impl HandleDeferred<M> for S`.
    pub fn deferred<M: DeserializeOwned>(&mut self) -> &mut Self
    where
        S: HandleDeferred<M>,
    {
        self.add::<M, Later>()
    }

    fn find(&self, key: u64) -> Option<Dispatch<S>> {
        self.table.iter().find(|e| e.0 == key).map(|e| e.2)
    }
}

/// What handlers can do besides changing the state.
pub struct Context<S: Server> {
    parent: Pid,
    stop: Option<ExitReason>,
    /// A move asked for by [`Context::migrate_to`], made after the handler.
    moving: Option<Move<S>>,
    /// The pids of this server's earlier incarnations, oldest first (empty
    /// until it migrates): forwarders to this one, the first the pid its
    /// clients were given.
    former: Vec<Pid>,
    /// The connection the server holds: the loop wakes when it is readable.
    stream: Option<TcpStream>,
}

/// A move the server loop makes between two messages: `run` is
/// [`migrate`] of the server's type (which has the [`Handover`] bound the
/// loop does not), it returns only if the move failed.
struct Move<S: Server> {
    node: String,
    reply: Option<ReplyTo>,
    run: fn(&mut S, &mut Context<S>, &str, Option<ReplyTo>),
}

impl<S: Server> Context<S> {
    fn new(parent: Pid, former: Vec<Pid>) -> Self {
        Context { parent, stop: None, moving: None, former, stream: None }
    }

    /// A handle on this server, by its current pid: after a migration
    /// that is the new incarnation's (the [`ServerRef`]s clients hold name
    /// the first incarnation, which forwards to it: both reach the server).
    pub fn this(&self) -> ServerRef<S> {
        ServerRef::from_pid(self_pid())
    }

    /// The pids this server had before it migrated, oldest first (empty if
    /// it never moved). The first is the pid it started with, the one its
    /// clients' [`ServerRef`]s and its links know; each is now a forwarder
    /// to the next, and to this incarnation.
    pub fn former_pids(&self) -> &[Pid] {
        &self.former
    }

    /// The process that started this server.
    pub fn parent(&self) -> Pid {
        self.parent
    }

    /// Stop after this handler: `terminate(&reason)` runs, then the
    /// process ends with `reason` (`Normal` ends it quietly).
    pub fn stop(&mut self, reason: ExitReason) {
        self.stop = Some(reason);
    }

    /// Trap exit signals (then they arrive in `handle_info`, and the
    /// parent's makes the server stop with `terminate`). The setting
    /// travels with a migrating server.
    pub fn trap_exits(&mut self, on: bool) {
        trap_exits(on);
    }

    /// Hold `stream`: from now on the server also wakes when it is
    /// readable, and [`Server::handle_readable`] reads it. Messages and
    /// the stream are served in turn, one at a time. Returns the stream
    /// held before, if any (one at a time). A held stream stays open and
    /// held across an [upgrade](Upgrade) (the process keeps its sockets);
    /// a server holding one cannot [migrate](Self::migrate_to).
    pub fn set_stream(&mut self, stream: TcpStream) -> Option<TcpStream> {
        self.stream.replace(stream)
    }

    /// The stream the server holds, to read or write.
    pub fn stream(&mut self) -> Option<&mut TcpStream> {
        self.stream.as_mut()
    }

    /// Stop holding the stream and take it (dropping it closes it).
    pub fn take_stream(&mut self) -> Option<TcpStream> {
        self.stream.take()
    }
}

impl<S: Handover> Context<S> {
    /// Move this server to `node` (`NAME@HOST`) once the running handler
    /// has returned (and its reply, if it is a [`Handle`], has been sent):
    /// between two messages, as the module's docs describe. On success
    /// the server goes on there, [`Handover::restore`]d from what
    /// [`Handover::save`] made here, and the old pid forwards to it; on
    /// failure it goes on here unchanged, and [`Handover::migrate_failed`]
    /// gets the error. A [`stop`](Self::stop) asked in the same handler
    /// wins (no move is tried); asking twice keeps the last request (the
    /// caller of a replaced [`migrate_to_and_reply`](Self::migrate_to_and_reply)
    /// gets no answer).
    pub fn migrate_to(&mut self, node: &str) {
        self.moving = Some(Move { node: node.to_string(), reply: None, run: migrate::<S> });
    }

    /// As [`migrate_to`](Self::migrate_to), and answer `reply` with the
    /// outcome: [`Migrated`] from the new incarnation once it has restored
    /// its state on `node`, or the [`MigrateError`] from here when the move
    /// failed (the caller's `call` returns either). For the
    /// [`HandleDeferred`] handler of a "move" message: [`Handover`] shows
    /// one.
    pub fn migrate_to_and_reply(&mut self, node: &str, mut reply: Deferred<MigrateResult>) {
        self.moving = Some(Move { node: node.to_string(), reply: reply.take(), run: migrate::<S> });
    }
}

/// Why a server or supervisor did not start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartError {
    /// The process could not be spawned.
    Spawn(SpawnError),
    /// `init` returned this error.
    Init(String),
    /// The process died during `init`.
    Died(ExitReason),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Spawn(e) => write!(f, "spawn failed: {e}"),
            StartError::Init(e) => write!(f, "init failed: {e}"),
            StartError::Died(r) => write!(f, "died during init: {r}"),
        }
    }
}
impl std::error::Error for StartError {}

/// A client handle on a running server of type `S`: copyable and
/// serializable (as its pid). It accepts only the message types `S` has a
/// handler for, and each call returns that handler's reply type.
pub struct ServerRef<S> {
    pid: Pid,
    _s: PhantomData<fn(S)>,
}

impl<S> Clone for ServerRef<S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S> Copy for ServerRef<S> {}
impl<S> PartialEq for ServerRef<S> {
    fn eq(&self, o: &Self) -> bool {
        self.pid == o.pid
    }
}
impl<S> Eq for ServerRef<S> {}
impl<S> fmt::Debug for ServerRef<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerRef{:?}", self.pid)
    }
}
impl<S> Serialize for ServerRef<S> {
    fn serialize<Se: Serializer>(&self, s: Se) -> Result<Se::Ok, Se::Error> {
        self.pid.serialize(s)
    }
}
impl<'de, S> Deserialize<'de> for ServerRef<S> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(ServerRef::from_pid(Pid::deserialize(d)?))
    }
}
impl<S: Server> Named for ServerRef<S> {
    fn pid(&self) -> Pid {
        self.pid
    }
    fn from_pid(pid: Pid) -> Self {
        ServerRef::from_pid(pid)
    }
}

impl<S> ServerRef<S> {
    /// A handle on the server with this pid; nothing checks it is an `S`
    /// (messages it has no handler for are refused).
    pub fn from_pid(pid: Pid) -> Self {
        ServerRef { pid, _s: PhantomData }
    }

    /// Its pid.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Monitor the server.
    pub fn monitor(&self) -> MonitorRef {
        self.pid.monitor()
    }

    /// True while the server runs.
    pub fn is_alive(&self) -> bool {
        self.pid.is_alive()
    }
}

/// A request or cast payload: the type key, then the message.
fn payload<M: Serialize>(msg: &M) -> Result<Vec<u8>, SendError> {
    let mut bytes = type_key::<M>().to_le_bytes().to_vec();
    codec::encode_into(&mut bytes, msg).map_err(SendError::Encode)?;
    Ok(bytes)
}

impl<S: Server> ServerRef<S> {
    /// Call with an `M` and wait up to [`DEFAULT_CALL_TIMEOUT`] for the
    /// reply of `S`'s handler of `M`.
    pub fn call<M: Serialize, K>(&self, msg: &M) -> Result<<S as Handler<M, K>>::Reply, CallError>
    where
        S: Handler<M, K>,
    {
        self.call_timeout(msg, DEFAULT_CALL_TIMEOUT)
    }

    /// Call and wait up to `timeout` for the reply; a dead server, or one
    /// that dies meanwhile, is [`CallError::NoProc`]; one that has no
    /// handler of `M` listed in its [`Server::handlers`] answers
    /// [`CallError::BadRequest`].
    pub fn call_timeout<M: Serialize, K>(
        &self,
        msg: &M,
        timeout: Duration,
    ) -> Result<<S as Handler<M, K>>::Reply, CallError>
    where
        S: Handler<M, K>,
    {
        let bytes = payload(msg).map_err(CallError::Send)?;
        call_bytes(self.pid, crate::TAG_CALL, &bytes, timeout).map_err(|e| match e {
            CallError::BadRequest(why) => CallError::BadRequest(format!("{why} (the request was {})", crate::codec::a_type::<M>())),
            e => e,
        })
    }

    /// Send an `M` without waiting (a dead server drops it); the handler's
    /// reply is dropped.
    ///
    /// # Panics
    /// If `msg` cannot be encoded or is over the message limit;
    /// [`try_cast`](Self::try_cast) returns those.
    pub fn cast<M: Serialize, K>(&self, msg: &M)
    where
        S: Handler<M, K>,
    {
        if let Err(e) = self.try_cast(msg) {
            panic!("wisp: cast to {:?}: {}", self.pid, e);
        }
    }

    /// Send an `M` without waiting, returning encoding and size errors.
    pub fn try_cast<M: Serialize, K>(&self, msg: &M) -> Result<(), SendError>
    where
        S: Handler<M, K>,
    {
        self.pid.send_raw(crate::TAG_CAST, &payload(msg)?)
    }
}

fn start_with<S: Server>(arg: S::Arg, flags: u32) -> Result<ServerRef<S>, StartError> {
    let s = spawn_flags(&(self_pid(), arg), server_main::<S>, flags | sys::SPAWN_MONITOR)
        .map_err(StartError::Spawn)?;
    let pid = Pid::from_raw(s.pid);
    wait_ack(pid, MonitorRef(s.monitor))?;
    Ok(ServerRef::from_pid(pid))
}

fn start_stream<S: Server>(arg: S::Arg, stream: TcpStream) -> Result<ServerRef<S>, StartError> {
    let s = spawn_flags(&(self_pid(), arg), stream_server_main::<S>, sys::SPAWN_MONITOR).map_err(StartError::Spawn)?;
    let pid = Pid::from_raw(s.pid);
    if pid.send_socket(stream).is_err() {
        pid.kill(); // (it waits for the stream: wait_ack sees it killed)
    }
    wait_ack(pid, MonitorRef(s.monitor))?;
    Ok(ServerRef::from_pid(pid))
}

/// Start `S` as a linked server from its encoded `Arg` (supervisors' child
/// specs hold this function's table index).
pub(crate) fn start_linked_from<S: Server>(arg: &[u8]) -> Result<Pid, StartError> {
    let arg: S::Arg = codec::decode(arg).map_err(|e| StartError::Init(e.0))?;
    S::start_link(arg).map(|s| s.pid())
}

/// Wait for `pid`'s start acknowledgement (or its death), then drop the
/// monitor.
pub(crate) fn wait_ack(pid: Pid, mon: MonitorRef) -> Result<(), StartError> {
    loop {
        let env = receive_raw(&[crate::TAG_ACK, mon.raw()], sys::INFINITY).expect("an infinite receive returned");
        if env.kind == sys::MSG_DOWN {
            let reason = ExitReason::from_bytes(&env.bytes).unwrap_or(ExitReason::NoProc);
            return Err(StartError::Died(reason));
        }
        if env.from != pid {
            continue; // a stale acknowledgement of an earlier start
        }
        mon.demonitor();
        let r: Result<(), String> = codec::decode(&env.bytes).unwrap_or_else(|e| Err(e.0));
        return r.map_err(StartError::Init);
    }
}

pub(crate) fn ack(parent: Pid, r: &Result<(), String>) {
    let _ = parent.send_tagged(crate::TAG_ACK, r);
}

/// End the calling process with `reason`.
pub(crate) fn exit_with(reason: &ExitReason) {
    match reason {
        ExitReason::Normal => {}
        ExitReason::Code(c) => std::process::exit(*c),
        ExitReason::Killed => self_pid().kill(),
        ExitReason::Trap(t) => panic!("{t}"),
        // The text says where already: end with it as it is.
        ExitReason::Panic(t) => crate::process::end_with_panic(t, 0),
        ExitReason::NoProc => std::process::exit(1),
        // A limit cannot be imposed on oneself here: end abnormally with its text.
        ExitReason::Limit(t) => panic!("{t}"),
        // As the runtime ends a process that does not trap the shutdown.
        ExitReason::Shutdown(sig) => std::process::exit(128 + sig),
        // Another node's reasons: end abnormally, saying which.
        ExitReason::NoConnection | ExitReason::Term(_) => panic!("{reason}"),
    }
}

/// Run one call or cast: find the handler of its type key, decode, handle.
fn handle_one<S: Server>(
    state: &mut S,
    handlers: &Handlers<S>,
    env: Envelope,
    reply: Option<ReplyTo>,
    cx: &mut Context<S>,
) {
    let found = match env.bytes.get(..8) {
        Some(k) => handlers.find(u64::from_le_bytes(k.try_into().unwrap())),
        None => None,
    };
    let error = match found {
        None => CodecError(format!(
            "no handler for this message type (the server handles {:?}; list others in Server::handlers)",
            handlers
        )),
        Some(f) => match f(state, &env.bytes[8..], reply, cx) {
            Ok(()) => return,
            Err(e) => e,
        },
    };
    if let Some(r) = reply {
        r.reply_bad_request(&error.0);
    }
    state.handle_bad_message(RecvError::Decode { envelope: env, error }, cx);
}

fn server_main<S: Server>((parent, arg): (Pid, S::Arg), _mb: Mailbox<()>) {
    init_and_serve::<S>(parent, arg, None);
}

fn stream_server_main<S: Server>((parent, arg): (Pid, S::Arg), mb: Mailbox<()>) {
    match mb.receive_stream(FOREVER) {
        Ok(stream) => init_and_serve::<S>(parent, arg, Some(stream)),
        Err(e) => ack(parent, &Err(format!("no stream came: {e}"))),
    }
}

fn init_and_serve<S: Server>(parent: Pid, arg: S::Arg, stream: Option<TcpStream>) {
    let mut cx = Context::<S>::new(parent, Vec::new());
    cx.stream = stream;
    let state = match S::init(arg, &mut cx) {
        Ok(s) => s,
        Err(e) => return ack(parent, &Err(e)),
    };
    ack(parent, &Ok(()));
    serve(state, cx);
}

/// The server loop: one message (or readable stream) at a time until a
/// stop, with the moves handlers ask for, and upgrades, made between two
/// messages. Returns only when the server ends normally.
fn serve<S: Server>(mut state: S, mut cx: Context<S>) {
    let mut handlers = Handlers { table: Vec::new() };
    S::handlers(&mut handlers);
    let upgrade = code::upgradable_of::<S>();
    // (A module another node shipped is no version: it never moves.)
    let automatic = upgrade.filter(|u| u.automatic && code::version() != 0);
    if let Some(u) = automatic {
        // Watch first, then look: no version can become current unheard.
        // A server started by code older than the current (a supervisor or
        // acceptor that has not moved) moves before its first message.
        code::watch();
        (u.upgrade)(&mut state, &mut cx, None);
    }
    let reason = loop {
        if let Some(r) = cx.stop.take() {
            break r;
        }
        if let Some(m) = cx.moving.take() {
            (m.run)(&mut state, &mut cx, &m.node, m.reply); // (returns only if it failed)
            continue;
        }
        let Some(r) = next_message(&mut state, &mut cx) else { continue };
        if r.socket.is_some() {
            match event_of::<(), Bincode>(r) {
                Ok(ev) => state.handle_info(ev, &mut cx),
                Err(e) => state.handle_bad_message(e, &mut cx),
            }
            continue;
        }
        let env = r.env;
        match (env.kind, env.tag) {
            (sys::MSG_DATA, crate::TAG_CALL) if env.reference != 0 => {
                let reply = env.reply_to();
                handle_one(&mut state, &handlers, env, reply, &mut cx);
            }
            (sys::MSG_DATA, crate::TAG_CAST) => handle_one(&mut state, &handlers, env, None, &mut cx),
            // A version became current (from the host: pid 0).
            (sys::MSG_DATA, sys::TAG_CODE) if env.from.raw() == 0 => {
                if let Some(u) = automatic {
                    (u.upgrade)(&mut state, &mut cx, None); // (returns only if it stays)
                }
            }
            // ServerRef::upgrade, a supervisor moving its children.
            (sys::MSG_DATA, crate::TAG_UPGRADE) if env.reference != 0 => {
                let reply = env.reply_to();
                match upgrade {
                    Some(u) => (u.upgrade)(&mut state, &mut cx, reply),
                    None => answer_upgrade(reply, Err(UpgradeError::NotUpgradable)),
                }
            }
            // The parent's exit signal, or (trapping exits, after a move)
            // the end of an earlier incarnation, whose pid is the server's
            // identity: killed, or its node lost.
            (sys::MSG_EXIT, _) if env.from == cx.parent || cx.former.contains(&env.from) => {
                break ExitReason::from_bytes(&env.bytes).unwrap_or(ExitReason::Killed);
            }
            _ => match event_of::<(), Bincode>(message::Received { env, socket: None }) {
                Ok(ev) => state.handle_info(ev, &mut cx),
                Err(e) => state.handle_bad_message(e, &mut cx),
            },
        }
    };
    if automatic.is_some() {
        code::unwatch();
    }
    state.terminate(&reason);
    exit_with(&reason);
}

/// Wait for the next message; if the held stream becomes readable first,
/// let the server read it and return `None`.
fn next_message<S: Server>(state: &mut S, cx: &mut Context<S>) -> Option<message::Received> {
    let Some(fd) = cx.stream.as_ref().map(|s| s.as_raw_fd()) else {
        return Some(message::receive(&[], sys::INFINITY).expect("an infinite receive returned"));
    };
    let r = message::receive_or_readable(&[], fd, sys::INFINITY).expect("an infinite receive returned");
    if r.is_none() {
        state.handle_readable(cx);
    }
    r
}

// ---- migration: the state handed over to a new incarnation ----

/// A server whose state can be handed over to a new incarnation of it, in
/// a new process: what [`Context::migrate_to`] needs to move the server to
/// another node between two messages. [`save`](Self::save) chooses what
/// travels (all of the state, or the part the rest is rebuilt from: a
/// socket, a monitor or a file handle cannot travel), and
/// [`restore`](Self::restore) builds the state from it in the new
/// incarnation, which then serves the same handlers.
///
/// A state that travels whole is its own `Saved`:
///
/// ```no_run
/// use std::borrow::Borrow;
/// use serde::{Deserialize, Serialize};
/// use wisp::server::{
///     Context, Deferred, Handle, HandleDeferred, Handlers, Handover, MigrateResult, Server,
/// };
///
/// #[derive(Serialize, Deserialize)]
/// struct Counter {
///     n: u64,
/// }
///
/// #[derive(Serialize, Deserialize)]
/// struct Incr;
/// #[derive(Serialize, Deserialize)]
/// struct MoveTo(String);
///
/// impl Server for Counter {
///     type Arg = ();
///     fn init(_: (), _: &mut Context<Self>) -> Result<Self, String> {
///         Ok(Counter { n: 0 })
///     }
///     fn handlers(h: &mut Handlers<Self>) {
///         h.handle::<Incr>().deferred::<MoveTo>();
///     }
/// }
///
/// impl Handle<Incr> for Counter {
///     type Reply = u64;
///     fn handle(&mut self, _: Incr, _: &mut Context<Self>) -> u64 {
///         self.n += 1;
///         self.n
///     }
/// }
///
/// // The caller learns the outcome: Migrated from the new node, or the error.
/// impl HandleDeferred<MoveTo> for Counter {
///     type Reply = MigrateResult;
///     fn handle_deferred(&mut self, MoveTo(node): MoveTo, reply: Deferred<MigrateResult>, cx: &mut Context<Self>) {
///         cx.migrate_to_and_reply(&node, reply);
///     }
/// }
///
/// impl Handover for Counter {
///     type Saved = Counter;
///     fn save(&self) -> Result<impl Borrow<Counter>, String> {
///         Ok(self) // encoded from the reference: no copy
///     }
///     fn restore(saved: Counter, _: &mut Context<Self>) -> Result<Self, String> {
///         Ok(saved)
///     }
/// }
///
/// let c = Counter::start(()).unwrap();
/// assert_eq!(c.call(&Incr).unwrap(), 1);
/// let moved = c.call(&MoveTo("spare@host".into())).unwrap().unwrap();
/// assert_eq!(moved.node, "spare@host");
/// assert_eq!(c.call(&Incr).unwrap(), 2); // the same ServerRef, the count carried over
/// ```
///
/// The saved state is encoded with the crate's codec (bincode); pids in it
/// ([`Pid`], [`Process`](crate::Process), [`ServerRef`], [`ReplyTo`],
/// [`Deferred`]) travel in their portable form and name the same
/// processes there, so a [`Deferred`] kept in the state can be answered by
/// the new incarnation. What does not travel: the monitors the server
/// holds (a [`MonitorRef`] in the saved state is dead there: make new ones
/// in `restore`), sockets, and the timers it started (they fire here, and
/// the old pid forwards their messages, but cannot be cancelled there).
pub trait Handover: Server {
    /// What travels: the state, or the part of it the rest is rebuilt
    /// from.
    type Saved: Serialize + DeserializeOwned;

    /// What to hand over, taken between two messages: `Ok(self)` when the
    /// state is its own `Saved`, else a value made for the purpose. An
    /// `Err` cancels the move ([`MigrateError::Save`]), and the server
    /// goes on as it was.
    fn save(&self) -> Result<impl Borrow<Self::Saved>, String>;

    /// Build the state from what [`save`](Self::save) made, in the new
    /// incarnation, before it takes any message (it may trap exits, make
    /// monitors, start timers through `cx`). The move has happened by
    /// then, and cannot be undone: an `Err` ends the server (a panic,
    /// whose text goes to that node's stderr; links and monitors of its
    /// pid see a `Trap`), after answering a
    /// [`Context::migrate_to_and_reply`] caller [`MigrateError::Restore`].
    /// Keep it for states this code cannot take; what `save` made, it
    /// should.
    fn restore(saved: Self::Saved, cx: &mut Context<Self>) -> Result<Self, String>;

    /// A move to `node` failed; the server goes on here, its state as it
    /// was, and may try again ([`Context::migrate_to`] once more) or stop.
    /// The default reports it on stderr.
    fn migrate_failed(&mut self, node: &str, error: &MigrateError, cx: &mut Context<Self>) {
        eprintln!("wisp: server {:?}: cannot migrate to {node}: {error}", cx.this().pid());
    }
}

/// Where a server went: what [`Context::migrate_to_and_reply`] answers,
/// from the new incarnation, once it has restored its state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Migrated {
    /// The node the server runs on now.
    pub node: String,
    /// The new incarnation's pid; the server's old pid forwards to it.
    pub pid: Pid,
}

/// The reply of [`Context::migrate_to_and_reply`].
pub type MigrateResult = Result<Migrated, MigrateError>;

/// Why a server did not move. All but [`Restore`](Self::Restore) leave it
/// running where it was, its state unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MigrateError {
    /// This runtime is no node: start it with `wisp run --sname NAME`.
    NotANode,
    /// The node name is not `NAME@HOST` of 1 to 255 bytes.
    BadName,
    /// The node cannot be reached (no such node, or it is down).
    Unreachable,
    /// Not allowed: by the node, which starts incarnations from other
    /// nodes only when run with `--allow-remote-spawn`, or by this
    /// process's capabilities ([`Caps::deny_nodes`](crate::Caps::deny_nodes),
    /// [`Caps::deny_spawn`](crate::Caps::deny_spawn)).
    Refused,
    /// The node did not start the new incarnation: one of the server's
    /// registered names is taken there (the usual cause; it must be free,
    /// as the names move — and a node the server has left keeps them for
    /// its forwarder, so it cannot move back there), or the node could not
    /// use the module or the node name. `wisp run -v` on this node prints
    /// the node's reason.
    Rejected,
    /// A limit: the node's process limit, too many spawns waiting there,
    /// or more names than a move carries (64).
    Limit,
    /// The node did not answer in time (120 s, which includes shipping the
    /// module there and compiling it).
    Timeout,
    /// The saved state is larger than the message limit.
    TooBig,
    /// The host could not allocate.
    NoMemory,
    /// [`Handover::save`] returned this error.
    Save(String),
    /// The saved state could not be encoded.
    Encode(String),
    /// The new incarnation could not decode or [`restore`](Handover::restore)
    /// the state (this text): the move had happened, and the server ended.
    /// The caller may learn of that end first: the reply comes from the
    /// new node, the end through the old pid's, and the two race (its
    /// `call` then returns [`CallError::NoProc`]).
    Restore(String),
}

impl fmt::Display for MigrateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MigrateError::NotANode => f.write_str("this runtime is no node (start it with wisp run --sname NAME)"),
            MigrateError::BadName => f.write_str("bad node name: a node is NAME@HOST"),
            MigrateError::Unreachable => f.write_str("the node cannot be reached"),
            MigrateError::Refused => f.write_str(
                "not allowed: the node does not accept remote spawns (wisp run --allow-remote-spawn), or this \
                 process may not spawn or use other nodes (its capabilities)",
            ),
            MigrateError::Rejected => f.write_str(
                "the node did not start the new incarnation (one of the server's registered names is taken \
                 there?); wisp run -v says why",
            ),
            MigrateError::Limit => f.write_str("a process or spawn limit was reached"),
            MigrateError::Timeout => f.write_str("the node did not answer in time"),
            MigrateError::TooBig => f.write_str("the saved state is larger than the message limit"),
            MigrateError::NoMemory => f.write_str("the host is out of memory"),
            MigrateError::Save(e) => write!(f, "save failed: {e}"),
            MigrateError::Encode(e) => write!(f, "cannot encode the saved state: {e}"),
            MigrateError::Restore(e) => write!(f, "the new incarnation could not restore the state: {e}"),
        }
    }
}
impl std::error::Error for MigrateError {}

/// The argument of a new incarnation ([`resume_server`]).
#[derive(Serialize, Deserialize)]
struct Resume {
    parent: Pid,
    /// `Context::former` of the new incarnation.
    former: Vec<Pid>,
    trap_exits: bool,
    /// Who to tell the outcome ([`Context::migrate_to_and_reply`]).
    reply: Option<ReplyTo>,
    /// The state's image: [`Handover::Saved`] in the crate's codec, apart
    /// from the rest so that it can be read on its own.
    image: Vec<u8>,
}

/// Make the move `cx.migrate_to` asked for: returns only if it failed,
/// after telling the caller (if any) and [`Handover::migrate_failed`].
fn migrate<S: Handover>(state: &mut S, cx: &mut Context<S>, node: &str, reply: Option<ReplyTo>) {
    let error = try_migrate(state, cx, node, reply);
    if let Some(to) = reply {
        if let Err(e) = to.reply(&MigrateResult::Err(error.clone())) {
            eprintln!("wisp: server {:?}: cannot send the reply: {e}", self_pid());
        }
    }
    state.migrate_failed(node, &error, cx);
}

/// Save the state and move to `node`; returns only on failure. On success
/// this process forwards every message to the new incarnation from then
/// on (sys::node_migrate does not return), and ends with it.
fn try_migrate<S: Handover>(state: &S, cx: &Context<S>, node: &str, reply: Option<ReplyTo>) -> MigrateError {
    if !runtime_is_node() {
        return MigrateError::NotANode;
    }
    if node.is_empty() || node.len() > 255 || !node.contains('@') {
        return MigrateError::BadName;
    }
    if cx.stream.is_some() {
        return MigrateError::Save(
            "the server holds a TCP stream (Context::set_stream), which cannot move to another node".into(),
        );
    }
    let image = match state.save() {
        Ok(saved) => match codec::encode(saved.borrow()) {
            Ok(bytes) => bytes,
            Err(e) => return MigrateError::Encode(e.0),
        },
        Err(e) => return MigrateError::Save(e),
    };
    let mut former = cx.former.clone();
    former.push(self_pid());
    let trapping = trap_exits(true);
    trap_exits(trapping);
    let resume = Resume { parent: cx.parent, former, trap_exits: trapping, reply, image };
    let (entry, payload) = match spawn_parts(&resume, resume_server::<S>) {
        Ok(parts) => parts,
        Err(e) => return MigrateError::Encode(e.to_string()),
    };
    let Ok(len) = u32::try_from(payload.len()) else { return MigrateError::TooBig };
    let rc = unsafe { sys::node_migrate(node.as_ptr(), node.len() as u32, entry, payload.as_ptr(), len) };
    match rc {
        sys::ENOTFOUND => MigrateError::Unreachable,
        sys::EPERM => MigrateError::Refused,
        sys::EINVAL => MigrateError::Rejected,
        sys::ELIMIT => MigrateError::Limit,
        sys::ETIMEDOUT => MigrateError::Timeout,
        sys::ETOOBIG => MigrateError::TooBig,
        _ => MigrateError::NoMemory,
    }
}

/// The new incarnation: restore the state, say so, serve.
fn resume_server<S: Handover>(r: Resume, _mb: Mailbox<()>) {
    trap_exits(r.trap_exits);
    let mut cx = Context::<S>::new(r.parent, r.former);
    let restored = match codec::decode::<S::Saved>(&r.image) {
        Ok(saved) => S::restore(saved, &mut cx),
        Err(e) => Err(e.0),
    };
    let outcome = match &restored {
        Ok(_) => Ok(Migrated { node: node::name().unwrap_or_default(), pid: self_pid() }),
        Err(e) => Err(MigrateError::Restore(e.clone())),
    };
    if let Some(to) = r.reply {
        if let Err(e) = to.reply(&outcome) {
            eprintln!("wisp: server {:?}: cannot send the reply: {e}", self_pid());
        }
    }
    match restored {
        Ok(state) => serve(state, cx),
        Err(_) => panic!("wisp: server {:?}: {}", cx.former[0], outcome.unwrap_err()),
    }
}

// ---- upgrades: the server moves onto a new version of the program ----

/// A server that moves onto a new version of the program (hot code
/// reload, `wisp reload`), in place: the same process, pid, mailbox,
/// links, names, timers and held stream ([`Context::set_stream`]), with its
/// state saved by the old code ([`Handover::save`]) and rebuilt by the new
/// ([`upgrade`](Self::upgrade), by default [`Handover::restore`]), then
/// served by the new code's handlers. The program lists its upgradable
/// types once, with [`upgradable!`](crate::upgradable), which is what
/// makes the new version able to take them over:
///
/// ```no_run
/// use std::borrow::Borrow;
/// use std::collections::BTreeMap;
/// use serde::{Deserialize, Serialize};
/// use wisp::server::{Context, Handle, Handlers, Handover, Server, Upgrade};
///
/// #[derive(Serialize, Deserialize)]
/// struct Kv {
///     map: BTreeMap<String, String>,
/// }
///
/// impl Server for Kv {
///     type Arg = ();
///     fn init(_: (), _: &mut Context<Self>) -> Result<Self, String> {
///         Ok(Kv { map: BTreeMap::new() })
///     }
///     fn handlers(h: &mut Handlers<Self>) { /* ... */ }
/// }
///
/// impl Handover for Kv {
///     type Saved = Kv;
///     fn save(&self) -> Result<impl Borrow<Kv>, String> {
///         Ok(self)
///     }
///     fn restore(saved: Kv, _: &mut Context<Self>) -> Result<Self, String> {
///         Ok(saved)
///     }
/// }
///
/// impl Upgrade for Kv {} // version 1 of its state; moves by itself
///
/// wisp::upgradable!(Kv);
/// ```
///
/// **When.** By default ([`AUTOMATIC`](Self::AUTOMATIC)) the server
/// watches for new versions and moves as soon as it has finished the
/// message it is handling: the host's notice is queued behind the messages
/// that came before it, so those are answered by the old code and every
/// later one by the new (a message sent once `wisp reload` has returned is
/// the new code's). A server started by old code (a supervisor or an
/// acceptor that has not moved yet) moves before its first message. With
/// `AUTOMATIC = false` it moves only when asked,
/// [`ServerRef::upgrade`], which is what a [`Supervisor`](crate::Supervisor)
/// does for its children, one by one.
///
/// **A new layout.** The saved state carries the old code's
/// [`VSN`](Self::VSN) (Erlang's `-vsn`): a version whose `Saved` type
/// changed raises it and reads the older layouts in
/// [`upgrade`](Self::upgrade):
///
/// ```no_run
/// # use std::borrow::Borrow;
/// # use std::collections::BTreeMap;
/// # use serde::{Deserialize, Serialize};
/// # use wisp::server::{Context, Handlers, Handover, OldState, Server, Upgrade};
/// # #[derive(Serialize, Deserialize)]
/// # struct Kv { map: BTreeMap<String, Entry> }
/// # #[derive(Serialize, Deserialize)]
/// # struct Entry { value: String, writes: u64 }
/// # impl Server for Kv {
/// #     type Arg = ();
/// #     fn init(_: (), _: &mut Context<Self>) -> Result<Self, String> { Ok(Kv { map: BTreeMap::new() }) }
/// #     fn handlers(h: &mut Handlers<Self>) {}
/// # }
/// # impl Handover for Kv {
/// #     type Saved = Kv;
/// #     fn save(&self) -> Result<impl Borrow<Kv>, String> { Ok(self) }
/// #     fn restore(saved: Kv, _: &mut Context<Self>) -> Result<Self, String> { Ok(saved) }
/// # }
/// /// Version 1's state, as it was.
/// #[derive(Deserialize)]
/// struct KvV1 {
///     map: BTreeMap<String, String>,
/// }
///
/// impl Upgrade for Kv {
///     const VSN: u32 = 2;
///     fn upgrade(old: OldState<'_>, cx: &mut Context<Self>) -> Result<Self, String> {
///         match old.vsn() {
///             1 => {
///                 let v1: KvV1 = old.decode()?;
///                 let map = v1.map.into_iter().map(|(k, value)| (k, Entry { value, writes: 1 })).collect();
///                 Ok(Kv { map })
///             }
///             2 => Self::restore(old.decode()?, cx),
///             v => Err(format!("a state of version {v} is newer than this code (2)")),
///         }
///     }
/// }
/// ```
///
/// **Refusing.** An `Err` from [`upgrade`](Self::upgrade) (or a panic
/// there, or a new version that does not list the type in its
/// `upgradable!`) leaves the server on its old code with its state, as if
/// nothing had happened, and its [`upgrade_failed`](Self::upgrade_failed)
/// gets the reason ([`UpgradeError`]). It stays there until the next
/// version (or [`ServerRef::upgrade`]); while it does, the host refuses a
/// further version (two at most, as in Erlang: `wisp reload --purge` kills
/// what still runs the oldest).
///
/// **Keys.** The new version finds the type by its name
/// (`std::any::type_name`: crate, module path and name), as servers find
/// message types: keep them from version to version. A renamed type, or a
/// message type whose name or layout changed, is a new one (old clients
/// get [`CallError::BadRequest`] for it).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not upgradable: wisp::upgradable! lists only types that implement wisp::server::Upgrade",
    label = "listed in wisp::upgradable!",
    note = "a new version takes a server over with the state its old code saved: implement \
            wisp::server::Handover (save, restore) and `impl wisp::server::Upgrade for {Self} {{}}`"
)]
pub trait Upgrade: Handover {
    /// The version of this code's `Saved` layout, handed to the next
    /// version's [`upgrade`](Self::upgrade) (1 unless a layout changed).
    const VSN: u32 = 1;

    /// Whether the server moves by itself when a version becomes current
    /// (true), or only when asked ([`ServerRef::upgrade`], its supervisor).
    const AUTOMATIC: bool = true;

    /// Build the state, in the new version, from what the old code's
    /// [`Handover::save`] made: `old.vsn()` is the old code's
    /// [`VSN`](Self::VSN). Runs before the process has left the old code:
    /// an `Err` (or a panic) is a refusal, and the server goes on there
    /// (what `upgrade` did through `cx` — monitors, timers, trapping exits —
    /// stays done). The default takes a state of this code's own `VSN`
    /// (decoded as `Saved`, then [`Handover::restore`]) and refuses others.
    /// The held stream ([`Context::stream`]) is attached after it returns.
    fn upgrade(old: OldState<'_>, cx: &mut Context<Self>) -> Result<Self, String> {
        if old.vsn() != Self::VSN {
            return Err(format!(
                "the state is of version {} and this code of version {}: {}'s Upgrade::upgrade must convert it \
                 (the default takes its own version only)",
                old.vsn(),
                Self::VSN,
                type_name::<Self>()
            ));
        }
        Self::restore(old.decode()?, cx)
    }

    /// A move onto a new version failed; the server goes on with its old
    /// code and state. The default reports it on stderr.
    fn upgrade_failed(&mut self, error: &UpgradeError, cx: &mut Context<Self>) {
        let _ = cx;
        eprintln!("wisp: server {:?} ({}) stays on version {}: {error}", self_pid(), type_name::<Self>(), code::version());
    }
}

/// The state the old code saved, as [`Upgrade::upgrade`] gets it.
#[derive(Clone, Copy, Debug)]
pub struct OldState<'a> {
    vsn: u32,
    bytes: &'a [u8],
}

impl OldState<'_> {
    /// The old code's [`Upgrade::VSN`]: which layout the bytes are.
    pub fn vsn(&self) -> u32 {
        self.vsn
    }

    /// The saved state in the crate's codec ([`codec::decode`]).
    pub fn bytes(&self) -> &[u8] {
        self.bytes
    }

    /// The saved state as a `T` (the `Saved` type of that version: a copy
    /// of an old one's definition does).
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, String> {
        codec::decode(self.bytes).map_err(|e| format!("cannot read the saved state of version {}: {e}", self.vsn))
    }
}

/// The reply of [`ServerRef::upgrade`]: the version the server runs now.
pub type UpgradeResult = Result<u32, UpgradeError>;

/// How long [`ServerRef::upgrade`] waits: making the new instance and
/// rebuilding the state take their time.
pub const UPGRADE_TIMEOUT: Duration = Duration::from_secs(60);

impl<S: Upgrade> ServerRef<S> {
    /// Move the server onto the current version now, between two of its
    /// messages, and wait until it runs there: `Ok(Ok(n))` once it runs
    /// version `n` (the current one, or the one it ran when it was current
    /// already), `Ok(Err(e))` if it goes on with its old code (refused,
    /// or its type is not in [`upgradable!`](crate::upgradable)). For
    /// servers that are not [`AUTOMATIC`](Upgrade::AUTOMATIC); on others it
    /// does what they do anyway.
    pub fn upgrade(&self) -> Result<UpgradeResult, CallError> {
        call_tagged(self.pid, crate::TAG_UPGRADE, &(), UPGRADE_TIMEOUT)
    }
}

fn answer_upgrade(reply: Option<ReplyTo>, r: UpgradeResult) {
    if let Some(to) = reply {
        if let Err(e) = to.reply(&r) {
            eprintln!("wisp: server {:?}: cannot send the reply: {e}", self_pid());
        }
    }
}

/// The entry of `T` in the table [`upgradable!`](crate::upgradable) makes.
#[doc(hidden)]
pub const fn upgradable<T: Upgrade>() -> Upgradable {
    Upgradable {
        type_id: TypeId::of::<T>,
        name: type_name::<T>,
        automatic: T::AUTOMATIC,
        upgrade: upgrade_erased::<T>,
        resume: resume_erased::<T>,
        starter: starter_of::<T>,
    }
}

fn starter_of<T: Server>() -> u32 {
    let f: fn(&[u8]) -> Result<Pid, StartError> = start_linked_from::<T>;
    f as usize as u32
}

fn upgrade_erased<S: Upgrade>(state: &mut dyn Any, cx: &mut dyn Any, reply: Option<ReplyTo>) {
    match (state.downcast_mut::<S>(), cx.downcast_mut::<Context<S>>()) {
        (Some(state), Some(cx)) => upgrade_server(state, cx, reply),
        _ => unreachable!("wisp: an upgrade entry called with another type's state"),
    }
}

/// Move onto the current version (returns only if the server stays: it
/// runs the current version already, or the move failed).
fn upgrade_server<S: Upgrade>(state: &mut S, cx: &mut Context<S>, reply: Option<ReplyTo>) {
    if code::version() == code::current() {
        return answer_upgrade(reply, Ok(code::version()));
    }
    let error = match state.save() {
        Err(e) => UpgradeError::Save(e),
        Ok(saved) => match codec::encode(saved.borrow()) {
            Err(e) => UpgradeError::Encode(e.0),
            Ok(image) => {
                let h = Handoff {
                    kind: type_name::<S>().to_string(),
                    vsn: S::VSN,
                    parent: cx.parent,
                    former: cx.former.clone(),
                    stream: cx.stream.as_ref().map(|s| s.as_raw_fd()),
                    reply,
                    image,
                };
                match code::hand_over(&h) {
                    None => return answer_upgrade(reply, Ok(code::version())),
                    Some(e) => e,
                }
            }
        },
    };
    answer_upgrade(reply, Err(error.clone()));
    state.upgrade_failed(&error, cx);
}

/// In the new version: rebuild the server, and serve.
fn resume_erased<S: Upgrade>(h: Handoff) -> Result<Box<dyn FnOnce()>, String> {
    let mut cx = Context::<S>::new(h.parent, h.former);
    let state = S::upgrade(OldState { vsn: h.vsn, bytes: &h.image }, &mut cx)?;
    // Only now: a stream dropped on the way to an Err would have closed
    // the socket the old code goes on with.
    if let Some(fd) = h.stream {
        // SAFETY: `fd` is the stream the old code's Context held (the
        // handoff is this crate's, written by upgrade_server and read back
        // from the process's own upgrade state); the process keeps its fds
        // across the move and the old instance is dropped without running
        // a destructor, so nothing else owns it now.
        cx.stream = Some(TcpStream::from(unsafe { OwnedFd::from_raw_fd(fd) }));
    }
    let reply = h.reply;
    Ok(Box::new(move || {
        answer_upgrade(reply, Ok(code::version()));
        serve(state, cx)
    }))
}
