//! Servers: OTP's gen_server for Rust.
//!
//! A [`Server`] is a state value owned by its own process, changed only by
//! its callbacks, one message at a time: calls (request/reply), casts
//! (fire and forget) and infos (plain messages, exit signals, monitor
//! notices). Clients hold a typed, copyable [`ServerRef`].
//!
//! Start is synchronous, as in Erlang: [`Server::start_link`] returns once
//! `init` has returned in the new process, with `init`'s error or the
//! reason the process died during `init`. A panic in any callback traps the
//! process (reason `Trap`): callers waiting on it get
//! [`CallError::NoProc`], links and supervisors see the trap.
//!
//! Wire protocol: calls are requests with tag [`TAG_CALL`](crate::TAG_CALL),
//! casts messages with tag [`TAG_CAST`](crate::TAG_CAST), infos typed
//! messages with [`TAG_MSG`](crate::TAG_MSG) (so `ServerRef::process()` is
//! an ordinary `Process<Info>`); the start acknowledgement is a message with
//! an internal tag carrying `Result<(), String>`.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::{de::DeserializeOwned, Deserialize, Deserializer, Serialize, Serializer};

use crate::mailbox::{event_of, Event, Mailbox};
use crate::message::{self, receive_raw, RecvError};
use crate::process::{call_tagged, self_pid, trap_exits, CallError, ExitReason, MonitorRef, Pid, Process, SendError};
use crate::spawn::{spawn_flags, SpawnError};
use crate::{codec, sys};

/// The default timeout of [`ServerRef::call`], as Erlang's.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// A server: its state and its callbacks. Implement the callbacks you need;
/// use `()` for message types you do not use.
///
/// ```no_run
/// use wisp::server::{Context, Server};
///
/// struct Counter(i64);
///
/// impl Server for Counter {
///     type Arg = i64;
///     type Call = ();        // "what is the count?"
///     type Reply = i64;
///     type Cast = i64;       // "add this"
///     type Info = ();
///
///     fn init(start: i64, _cx: &mut Context<Self>) -> Result<Self, String> {
///         Ok(Counter(start))
///     }
///     fn handle_call(&mut self, _: (), _cx: &mut Context<Self>) -> i64 {
///         self.0
///     }
///     fn handle_cast(&mut self, n: i64, _cx: &mut Context<Self>) {
///         self.0 += n;
///     }
/// }
///
/// let c = Counter::start_link(10).unwrap();
/// c.cast(&5);
/// assert_eq!(c.call(&()).unwrap(), 15);
/// ```
pub trait Server: Sized + 'static {
    /// What `init` gets.
    type Arg: Serialize + DeserializeOwned;
    /// Requests of [`ServerRef::call`].
    type Call: Serialize + DeserializeOwned;
    /// Replies to calls.
    type Reply: Serialize + DeserializeOwned;
    /// Messages of [`ServerRef::cast`].
    type Cast: Serialize + DeserializeOwned;
    /// Plain messages (sent to [`ServerRef::process`], e.g. by timers).
    type Info: Serialize + DeserializeOwned;

    /// Build the state, in the new process. An `Err` makes `start` return
    /// [`StartError::Init`] (the process then ends normally).
    fn init(arg: Self::Arg, cx: &mut Context<Self>) -> Result<Self, String>;

    /// Answer a call.
    fn handle_call(&mut self, msg: Self::Call, cx: &mut Context<Self>) -> Self::Reply;

    /// Handle a cast.
    fn handle_cast(&mut self, msg: Self::Cast, cx: &mut Context<Self>) {
        let _ = (msg, cx);
    }

    /// Handle anything else: typed infos, exit signals of links when the
    /// server traps exits (see [`Context::trap_exits`]), monitor notices,
    /// other tags.
    fn handle_info(&mut self, event: Event<Self::Info>, cx: &mut Context<Self>) {
        let _ = (event, cx);
    }

    /// A message that did not decode (a bad call has already been answered
    /// with [`CallError::BadRequest`]). The default reports it on stderr and
    /// goes on.
    fn handle_bad_message(&mut self, error: RecvError, cx: &mut Context<Self>) {
        eprintln!("wisp: server {:?}: {}", cx.this().pid(), error);
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
}

/// What callbacks can do besides changing the state.
pub struct Context<S: Server> {
    parent: Pid,
    stop: Option<ExitReason>,
    _s: PhantomData<fn(S)>,
}

impl<S: Server> Context<S> {
    /// A handle on this server.
    pub fn this(&self) -> ServerRef<S> {
        ServerRef { pid: self_pid(), _s: PhantomData }
    }

    /// The process that started this server.
    pub fn parent(&self) -> Pid {
        self.parent
    }

    /// Stop after this callback: `terminate(&reason)` runs, then the
    /// process ends with `reason` (`Normal` ends it quietly).
    pub fn stop(&mut self, reason: ExitReason) {
        self.stop = Some(reason);
    }

    /// Trap exit signals (then they arrive in `handle_info`, and the
    /// parent's makes the server stop with `terminate`).
    pub fn trap_exits(&mut self, on: bool) {
        trap_exits(on);
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

/// A client handle on a running server: copyable and serializable (as its
/// pid).
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
        Ok(ServerRef { pid: Pid::deserialize(d)?, _s: PhantomData })
    }
}

impl<S> ServerRef<S> {
    /// A handle on the server's process, from its pid (nothing checks it is
    /// an `S`).
    pub fn from_pid(pid: Pid) -> Self {
        ServerRef { pid, _s: PhantomData }
    }

    /// Its pid.
    pub fn pid(&self) -> Pid {
        self.pid
    }
}

impl<S: Server> ServerRef<S> {
    /// Call with [`DEFAULT_CALL_TIMEOUT`].
    pub fn call(&self, msg: &S::Call) -> Result<S::Reply, CallError> {
        self.call_timeout(msg, DEFAULT_CALL_TIMEOUT)
    }

    /// Call and wait up to `timeout` for the reply; a dead server, or one
    /// that dies meanwhile, is [`CallError::NoProc`].
    pub fn call_timeout(&self, msg: &S::Call, timeout: Duration) -> Result<S::Reply, CallError> {
        call_tagged(self.pid, crate::TAG_CALL, msg, timeout)
    }

    /// Send a cast (to a dead server: dropped).
    pub fn cast(&self, msg: &S::Cast) {
        if let Err(e) = self.pid.send_tagged(crate::TAG_CAST, msg) {
            panic!("wisp: cast to {:?}: {}", self.pid, e);
        }
    }

    /// Send a cast, returning encoding and size errors.
    pub fn try_cast(&self, msg: &S::Cast) -> Result<(), SendError> {
        self.pid.send_tagged(crate::TAG_CAST, msg)
    }

    /// The server's process, for plain messages (its `handle_info`).
    pub fn process(&self) -> Process<S::Info> {
        self.pid.typed()
    }

    /// Monitor the server.
    pub fn monitor(&self) -> MonitorRef {
        self.pid.monitor()
    }
}

fn start_with<S: Server>(arg: S::Arg, flags: u32) -> Result<ServerRef<S>, StartError> {
    let s = spawn_flags(&(self_pid(), arg), server_main::<S>, flags | sys::SPAWN_MONITOR)
        .map_err(StartError::Spawn)?;
    let pid = Pid::from_raw(s.pid);
    wait_ack(pid, MonitorRef(s.monitor))?;
    Ok(ServerRef::from_pid(pid))
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
        ExitReason::NoProc => std::process::exit(1),
        // A limit cannot be imposed on oneself here: end abnormally with its text.
        ExitReason::Limit(t) => panic!("{t}"),
        // As the runtime ends a process that does not trap the shutdown.
        ExitReason::Shutdown(sig) => std::process::exit(128 + sig),
    }
}

fn server_main<S: Server>((parent, arg): (Pid, S::Arg), _mb: Mailbox<S::Info>) {
    let mut cx = Context::<S> { parent, stop: None, _s: PhantomData };
    let mut state = match S::init(arg, &mut cx) {
        Ok(s) => s,
        Err(e) => return ack(parent, &Err(e)),
    };
    ack(parent, &Ok(()));
    let reason = loop {
        if let Some(r) = cx.stop.take() {
            break r;
        }
        let r = message::receive(&[], sys::INFINITY).expect("an infinite receive returned");
        if r.socket.is_some() {
            match event_of::<S::Info>(r) {
                Ok(ev) => state.handle_info(ev, &mut cx),
                Err(e) => state.handle_bad_message(e, &mut cx),
            }
            continue;
        }
        let env = r.env;
        match (env.kind, env.tag) {
            (sys::MSG_DATA, crate::TAG_CALL) if env.reference != 0 => {
                let reply = env.reply_to().unwrap();
                match codec::decode::<S::Call>(&env.bytes) {
                    Ok(m) => {
                        let r = state.handle_call(m, &mut cx);
                        if let Err(e) = reply.reply(&r) {
                            eprintln!("wisp: server {:?}: cannot send the reply: {e}", self_pid());
                        }
                    }
                    Err(error) => {
                        reply.reply_bad_request(&error.0);
                        state.handle_bad_message(RecvError::Decode { envelope: env, error }, &mut cx);
                    }
                }
            }
            (sys::MSG_DATA, crate::TAG_CAST) => match codec::decode::<S::Cast>(&env.bytes) {
                Ok(m) => state.handle_cast(m, &mut cx),
                Err(error) => state.handle_bad_message(RecvError::Decode { envelope: env, error }, &mut cx),
            },
            (sys::MSG_EXIT, _) if env.from == parent => {
                break ExitReason::from_bytes(&env.bytes).unwrap_or(ExitReason::Killed);
            }
            _ => match event_of::<S::Info>(message::Received { env, socket: None }) {
                Ok(ev) => state.handle_info(ev, &mut cx),
                Err(e) => state.handle_bad_message(e, &mut cx),
            },
        }
    };
    state.terminate(&reason);
    exit_with(&reason);
}
