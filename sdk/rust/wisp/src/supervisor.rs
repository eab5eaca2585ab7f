//! Supervisors: OTP's supervisor for Rust.
//!
//! A supervisor is a process that starts its children (linked), traps
//! exits, and restarts children that end according to their [`Restart`]
//! type and its [`Strategy`]. More than `max_restarts` restarts within
//! `period` means something is badly wrong: the supervisor then stops all
//! its children (last started first) and exits with
//! [`EXIT_INTENSITY`], which its own supervisor sees and acts on.
//!
//! Children are described by [`ChildSpec`]s: a function-table index and
//! encoded arguments, since the supervisor runs in its own instance of the
//! module. The index becomes a function again in the supervisor
//! (`fnptr::fn_at`), so only this module makes specs (their constructors)
//! and only this crate encodes them: neither `ChildSpec` nor `Supervisor`
//! can be deserialized from bytes another process chose, and the
//! supervisor takes specs only from its spawn argument and from requests,
//! which only [`SupervisorRef`] makes. A child is stopped by an exit signal with code
//! [`EXIT_SHUTDOWN`] (a server trapping exits runs `terminate`), and killed
//! if it has not ended after its shutdown time. Children started later are
//! stopped first.
//!
//! Requests to a running supervisor ([`SupervisorRef`]) are calls with an
//! internal tag, answered between child events.
//!
//! **New versions of the program** (hot code reload): when the program
//! lists its upgradable types ([`upgradable!`](crate::upgradable)), a
//! supervisor moves its children onto a new version one by one, in start
//! order — each server child by an upgrade request
//! ([`ServerRef::upgrade`](crate::ServerRef::upgrade), answered once it
//! runs there), each nested supervisor by the same round of its own — and
//! then itself, so that the children it restarts afterwards run the new
//! code. A top-level supervisor starts the round when a version becomes
//! current (or at start, if started by older code); a nested one when its
//! parent asks; [`SupervisorRef::upgrade`] asks again. The first child
//! that does not move (its new version refused, [`UpgradeError::Child`])
//! ends the round: the children after it and the supervisor stay where
//! they are. Its specs cross to the new version in a portable form,
//! servers by their type's key, found in the new version's table; a plain
//! process (`ChildSpec::worker`) has no such key, so a supervisor with one
//! stays on its version ([`UpgradeError::Plain`]), its other children
//! moving all the same. Servers that move by themselves
//! ([`Upgrade::AUTOMATIC`](crate::server::Upgrade::AUTOMATIC)) have done so
//! already when asked: for a rollout in order, make them move only when
//! asked.

use std::any::type_name;
use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::code::{self, Handoff, UpgradeError};
use crate::fnptr::fn_at;
use crate::mailbox::Mailbox;
use crate::message::{receive_raw, Envelope, ReplyTo};
use crate::process::{call_tagged, self_pid, trap_exits, CallError, ExitReason, MonitorRef, Pid};
use crate::server::{
    ack, exit_with, start_linked_from, wait_ack, Server, StartError, UpgradeResult, UPGRADE_TIMEOUT,
};
use crate::time::FOREVER;
use crate::node::spawn_raw_on;
use crate::spawn::{spawn_flags, spawn_parts, spawn_raw, SpawnError};
use crate::{codec, sys};

/// The exit-signal code with which a supervisor stops a child.
pub const EXIT_SHUTDOWN: i32 = 70;
/// The exit code of a supervisor that hit its restart intensity.
pub const EXIT_INTENSITY: i32 = 71;

/// Which children a supervisor restarts when one ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Strategy {
    /// Only that child.
    OneForOne,
    /// All children: the others are stopped, then all started again.
    OneForAll,
    /// That child and those started after it.
    RestForOne,
}

/// When a child is restarted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Restart {
    /// Always.
    Permanent,
    /// Only if it ended abnormally (not `Normal`, not [`EXIT_SHUTDOWN`]).
    Transient,
    /// Never: it is forgotten when it ends.
    Temporary,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
enum Start {
    /// spawn_link(entry, payload): a plain process.
    Spawn { entry: u32, payload: Vec<u8> },
    /// starter(payload): a `fn(&[u8]) -> Result<Pid, StartError>` that
    /// starts a linked server whose type's key (`type_name`) is `key`.
    Server { key: String, starter: u32, payload: Vec<u8> },
    /// A nested supervisor: its `SupSpec`, encoded.
    Supervisor { payload: Vec<u8> },
    /// spawn_link_on(node, entry, payload) on the first of `nodes` that
    /// starts it: a plain process on another node.
    Remote { nodes: Vec<String>, entry: u32, payload: Vec<u8> },
}

/// How to start, restart and stop one child.
#[derive(Clone, Debug)]
pub struct ChildSpec(Spec);

/// A child spec as it travels to the supervisor (private: see the module's
/// docs).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Spec {
    id: String,
    start: Start,
    restart: Restart,
    shutdown_ms: u64,
}

fn starter_of(f: fn(&[u8]) -> Result<Pid, StartError>) -> u32 {
    f as usize as u32
}

fn start_supervisor(payload: &[u8]) -> Result<Pid, StartError> {
    let mut sup: SupSpec = codec::decode(payload).map_err(|e| StartError::Init(e.0))?;
    sup.nested = true;
    Supervisor(sup).start_link().map(|s| s.pid())
}

impl ChildSpec {
    /// A plain process `f(arg, mailbox)`, started with `spawn_link`.
    /// Permanent, 5 s to shut down.
    pub fn worker<A, M>(id: &str, f: fn(A, Mailbox<M>), arg: A) -> ChildSpec
    where
        A: Serialize + DeserializeOwned,
    {
        let (entry, payload) = spawn_parts(&arg, f).expect("wisp: cannot encode a child's argument");
        ChildSpec::new(id, Start::Spawn { entry, payload })
    }

    /// A plain process `f(arg, mailbox)` on another node, started with
    /// [`spawn_link_on`](crate::node::spawn_link_on) on the first of
    /// `nodes` that starts it (tried in order at every start and restart):
    /// the supervisor runs here, its child there. A child whose node is
    /// lost ends with [`ExitReason::NoConnection`] and is restarted like
    /// any other, on the next node that answers; a start fails only when
    /// none does. The nodes must run with `--allow-remote-spawn`.
    /// Permanent, 5 s to shut down.
    ///
    /// ```no_run
    /// use wisp::{ChildSpec, Strategy, Supervisor};
    /// fn worker(n: u32, mb: wisp::Mailbox<u32>) { /* ... */ }
    /// let sup = Supervisor::new(Strategy::OneForOne)
    ///     .child(ChildSpec::worker_on("w1", &["pool@host", "spare@host"], worker, 1))
    ///     .start_link()
    ///     .unwrap();
    /// ```
    pub fn worker_on<A, M>(id: &str, nodes: &[&str], f: fn(A, Mailbox<M>), arg: A) -> ChildSpec
    where
        A: Serialize + DeserializeOwned,
    {
        let (entry, payload) = spawn_parts(&arg, f).expect("wisp: cannot encode a child's argument");
        let nodes = nodes.iter().map(|n| n.to_string()).collect();
        ChildSpec::new(id, Start::Remote { nodes, entry, payload })
    }

    /// A [`Server`] started with [`Server::start_link`]`(arg)`.
    pub fn server<S: Server>(id: &str, arg: S::Arg) -> ChildSpec {
        let payload = codec::encode(&arg).expect("wisp: cannot encode a child's argument");
        let key = type_name::<S>().to_string();
        ChildSpec::new(id, Start::Server { key, starter: starter_of(start_linked_from::<S>), payload })
    }

    /// A nested supervisor.
    pub fn supervisor(id: &str, sup: Supervisor) -> ChildSpec {
        let payload = codec::encode(&sup.0).expect("wisp: cannot encode a supervisor");
        ChildSpec::new(id, Start::Supervisor { payload })
    }

    fn new(id: &str, start: Start) -> ChildSpec {
        ChildSpec(Spec { id: id.to_string(), start, restart: Restart::Permanent, shutdown_ms: 5000 })
    }

    /// Set the restart type.
    pub fn restart(mut self, r: Restart) -> ChildSpec {
        self.0.restart = r;
        self
    }

    /// Set how long the child may take to stop before it is killed.
    pub fn shutdown(mut self, d: Duration) -> ChildSpec {
        self.0.shutdown_ms = d.as_millis() as u64;
        self
    }

    /// Its id.
    pub fn id(&self) -> &str {
        &self.0.id
    }
}

impl Spec {
    fn start(&self) -> Result<Pid, StartError> {
        match &self.start {
            Start::Spawn { entry, payload } => spawn_raw(*entry, payload, sys::SPAWN_LINK)
                .map(|s| Pid::from_raw(s.pid))
                .map_err(StartError::Spawn),
            Start::Remote { nodes, entry, payload } => {
                let mut last = SpawnError::Unreachable;
                for node in nodes {
                    match spawn_raw_on(node, *entry, payload, sys::SPAWN_LINK) {
                        Ok(s) => return Ok(Pid::from_raw(s.pid)),
                        Err(e) => last = e,
                    }
                }
                Err(StartError::Spawn(last))
            }
            Start::Server { starter, payload, .. } => {
                // SAFETY: `starter` was made by starter_of from a function of
                // this type (or, after an upgrade, by the table entry of the
                // server's type, `Upgradable::starter`, which makes the same
                // index): a Spec is made only by ChildSpec's constructors
                // and from_portable, and decoded only from this crate's own
                // encodings of one (the supervisor's spawn argument,
                // SupervisorRef requests).
                let f: fn(&[u8]) -> Result<Pid, StartError> = unsafe { fn_at(*starter) };
                f(payload)
            }
            Start::Supervisor { payload } => start_supervisor(payload),
        }
    }
}

/// A supervisor's description: strategy, restart intensity, children.
/// Build it, then [`start_link`](Supervisor::start_link) it.
///
/// ```no_run
/// use std::time::Duration;
/// use wisp::{ChildSpec, Strategy, Supervisor};
///
/// fn worker(n: u32, mb: wisp::Mailbox<u32>) { /* ... */ }
///
/// let sup = Supervisor::new(Strategy::OneForOne)
///     .intensity(3, Duration::from_secs(5))
///     .child(ChildSpec::worker("w1", worker, 1))
///     .child(ChildSpec::worker("w2", worker, 2))
///     .start_link()
///     .unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct Supervisor(SupSpec);

/// A supervisor's description as it travels (private, as [`Spec`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SupSpec {
    strategy: Strategy,
    max_restarts: u32,
    period_ms: u64,
    children: Vec<Spec>,
    /// A child of another supervisor (which moves it onto new versions).
    nested: bool,
}

impl Supervisor {
    /// A supervisor with `strategy`, no children, and an intensity of 3
    /// restarts in 5 seconds.
    pub fn new(strategy: Strategy) -> Supervisor {
        Supervisor(SupSpec { strategy, max_restarts: 3, period_ms: 5000, children: Vec::new(), nested: false })
    }

    /// At most `max_restarts` restarts within `period`; one more and the
    /// supervisor gives up and exits with [`EXIT_INTENSITY`].
    pub fn intensity(mut self, max_restarts: u32, period: Duration) -> Supervisor {
        self.0.max_restarts = max_restarts;
        self.0.period_ms = period.as_millis() as u64;
        self
    }

    /// Add a child (children start in the order added).
    pub fn child(mut self, spec: ChildSpec) -> Supervisor {
        self.0.children.push(spec.0);
        self
    }

    /// Start the supervisor, linked to the caller, and its children; returns
    /// once all have started (or with the first start error, after stopping
    /// those already started).
    pub fn start_link(self) -> Result<SupervisorRef, StartError> {
        self.start_with(sys::SPAWN_LINK)
    }

    /// As [`start_link`](Self::start_link), not linked.
    pub fn start(self) -> Result<SupervisorRef, StartError> {
        self.start_with(0)
    }

    fn start_with(self, flags: u32) -> Result<SupervisorRef, StartError> {
        let s = spawn_flags(&(self_pid(), self.0), supervisor_main, flags | sys::SPAWN_MONITOR)
            .map_err(StartError::Spawn)?;
        let pid = Pid::from_raw(s.pid);
        wait_ack(pid, MonitorRef(s.monitor))?;
        Ok(SupervisorRef { pid })
    }
}

/// A running child, as [`SupervisorRef::which_children`] reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildInfo {
    /// The spec's id.
    pub id: String,
    /// Its process, if running.
    pub pid: Option<Pid>,
}

#[derive(Serialize, Deserialize)]
enum Request {
    StartChild(Spec),
    TerminateChild(String),
    WhichChildren,
    Upgrade,
}

/// Why a supervisor request failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SupervisorError {
    /// The call itself failed (dead supervisor, timeout).
    Call(CallError),
    /// The child did not start.
    Start(String),
    /// A child with this id exists already.
    AlreadyPresent,
    /// No child with this id.
    NotFound,
}

impl fmt::Display for SupervisorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SupervisorError::Call(e) => write!(f, "{e}"),
            SupervisorError::Start(e) => write!(f, "child did not start: {e}"),
            SupervisorError::AlreadyPresent => f.write_str("a child with this id exists"),
            SupervisorError::NotFound => f.write_str("no child with this id"),
        }
    }
}
impl std::error::Error for SupervisorError {}

#[derive(Serialize, Deserialize)]
enum Reply {
    Started(Pid),
    Done,
    Children(Vec<ChildInfo>),
    StartFailed(String),
    AlreadyPresent,
    NotFound,
    Upgraded(UpgradeResult),
}

/// A handle on a running supervisor: copyable, serializable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupervisorRef {
    pid: Pid,
}

const SUP_TIMEOUT: Duration = Duration::from_secs(60);

impl crate::registry::Named for SupervisorRef {
    fn pid(&self) -> Pid {
        self.pid
    }
    fn from_pid(pid: Pid) -> Self {
        SupervisorRef { pid }
    }
}

impl SupervisorRef {
    /// A handle on the supervisor with this pid (e.g. a nested supervisor
    /// found with [`child`](Self::child)); nothing checks it is one.
    pub fn from_pid(pid: Pid) -> SupervisorRef {
        SupervisorRef { pid }
    }

    /// Its pid.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    fn request(&self, r: &Request) -> Result<Reply, SupervisorError> {
        call_tagged(self.pid, crate::TAG_SUP, r, SUP_TIMEOUT).map_err(SupervisorError::Call)
    }

    /// Move the supervisor's children onto the current version of the
    /// program, one by one in start order, then the supervisor itself, and
    /// wait: `Ok(n)` once all run version `n`, else the first error (the
    /// children after that one, and the supervisor, stay where they are).
    /// What a supervisor does by itself when a version becomes current (see
    /// the [module](self)); this asks again, e.g. after a refusal was
    /// dealt with. No time limit: each child has [`UPGRADE_TIMEOUT`].
    pub fn upgrade(&self) -> Result<UpgradeResult, SupervisorError> {
        match call_tagged(self.pid, crate::TAG_SUP, &Request::Upgrade, FOREVER).map_err(SupervisorError::Call)? {
            Reply::Upgraded(r) => Ok(r),
            _ => Err(SupervisorError::Call(CallError::Decode(codec::CodecError("unexpected reply".into())))),
        }
    }

    /// Start a new child under the supervisor (dynamic children).
    pub fn start_child(&self, spec: ChildSpec) -> Result<Pid, SupervisorError> {
        match self.request(&Request::StartChild(spec.0))? {
            Reply::Started(p) => Ok(p),
            Reply::AlreadyPresent => Err(SupervisorError::AlreadyPresent),
            Reply::StartFailed(e) => Err(SupervisorError::Start(e)),
            _ => Err(SupervisorError::Call(CallError::Decode(codec::CodecError("unexpected reply".into())))),
        }
    }

    /// Stop the child with this id and forget its spec.
    pub fn terminate_child(&self, id: &str) -> Result<(), SupervisorError> {
        match self.request(&Request::TerminateChild(id.to_string()))? {
            Reply::Done => Ok(()),
            Reply::NotFound => Err(SupervisorError::NotFound),
            _ => Err(SupervisorError::Call(CallError::Decode(codec::CodecError("unexpected reply".into())))),
        }
    }

    /// The children, in start order, with their current pids.
    pub fn which_children(&self) -> Result<Vec<ChildInfo>, SupervisorError> {
        match self.request(&Request::WhichChildren)? {
            Reply::Children(c) => Ok(c),
            _ => Err(SupervisorError::Call(CallError::Decode(codec::CodecError("unexpected reply".into())))),
        }
    }

    /// The pid of the child with this id, if running.
    pub fn child(&self, id: &str) -> Option<Pid> {
        self.which_children().ok()?.into_iter().find(|c| c.id == id)?.pid
    }
}

struct Child {
    spec: Spec,
    pid: Option<Pid>,
}

/// A supervisor report about one child, for the runtime's log (as OTP's
/// supervisor reports: `wisp run --log-level`, `--log-format`).
struct Report<'a> {
    id: &'a str,
    pid: Option<Pid>,
    reason: Option<&'a ExitReason>,
    error: &'a str,
}

impl Report<'_> {
    fn write(&self, event: u32, max_restarts: usize, period: Duration) {
        let reason = self.reason.map(ExitReason::to_bytes).unwrap_or_default();
        let r = sys::SupReport {
            event,
            max_restarts: max_restarts.min(u32::MAX as usize) as u32,
            child: self.pid.map_or(0, |p| p.raw()),
            id: self.id.as_ptr() as u32,
            id_len: self.id.len() as u32,
            reason: reason.as_ptr() as u32,
            reason_len: reason.len() as u32,
            error: self.error.as_ptr() as u32,
            error_len: self.error.len() as u32,
            period_ms: period.as_millis().min(u32::MAX as u128) as u32,
            reserved: 0,
        };
        unsafe { sys::supervisor_report(&r) };
    }
}

struct State {
    parent: Pid,
    /// A child of another supervisor: moves when that one asks.
    nested: bool,
    strategy: Strategy,
    max_restarts: usize,
    period: Duration,
    children: Vec<Child>,
    restarts: VecDeque<Instant>,
}

/// Stop one child: exit signal EXIT_SHUTDOWN, then kill after its shutdown
/// time; returns once it has ended. Its link's EXIT may stay queued: the
/// main loop ignores EXITs of pids that are no longer children.
fn shutdown(pid: Pid, spec: &Spec) {
    let mon = pid.monitor();
    pid.exit_signal(EXIT_SHUTDOWN);
    let wait = (spec.shutdown_ms as i64).saturating_mul(1_000_000);
    if receive_raw(&[mon.raw()], wait).is_err() {
        pid.kill();
        let _ = receive_raw(&[mon.raw()], sys::INFINITY);
    }
}

impl State {
    /// Stop the running children among `range`, last first.
    fn stop_range(&mut self, from: usize) {
        for i in (from..self.children.len()).rev() {
            if let Some(pid) = self.children[i].pid.take() {
                shutdown(pid, &self.children[i].spec);
            }
        }
        self.children.retain(|c| c.pid.is_some() || c.spec.restart != Restart::Temporary);
    }

    fn stop_all_and_exit(&mut self, reason: &ExitReason) -> ! {
        self.stop_range(0);
        exit_with(reason);
        std::process::exit(EXIT_INTENSITY)
    }

    /// Record a restart; if that exceeds the intensity, report it (the
    /// last restart: child `id`, `pid`, `reason`) and exit.
    fn count_restart(&mut self, id: &str, pid: Option<Pid>, reason: Option<&ExitReason>) {
        let now = Instant::now();
        self.restarts.push_back(now);
        while let Some(&t) = self.restarts.front() {
            if now.duration_since(t) > self.period {
                self.restarts.pop_front();
            } else {
                break;
            }
        }
        if self.restarts.len() > self.max_restarts {
            let r = Report { id, pid, reason, error: "" };
            r.write(sys::SUP_GIVING_UP, self.max_restarts, self.period);
            self.stop_all_and_exit(&ExitReason::Code(EXIT_INTENSITY));
        }
    }

    /// Start child i again; a start that fails is reported, counts as a
    /// restart and is tried again.
    fn restart_one(&mut self, i: usize) {
        loop {
            match self.children[i].spec.start() {
                Ok(p) => break self.children[i].pid = Some(p),
                Err(e) => {
                    let id = self.children[i].spec.id.clone();
                    let error = e.to_string();
                    Report { id: &id, pid: None, reason: None, error: &error }.write(sys::SUP_START_FAILED, 0, Duration::ZERO);
                    self.count_restart(&id, None, None);
                }
            }
        }
    }

    /// Start children[from..] that have no process, in order.
    fn start_from(&mut self, from: usize) {
        for i in from..self.children.len() {
            if self.children[i].pid.is_none() {
                self.restart_one(i);
            }
        }
    }

    fn child_exited(&mut self, i: usize, reason: ExitReason) {
        let pid = self.children[i].pid.take();
        let abnormal = !(reason.is_normal() || reason == ExitReason::Code(EXIT_SHUTDOWN));
        let restart = match self.children[i].spec.restart {
            Restart::Permanent => true,
            Restart::Transient => abnormal,
            Restart::Temporary => false,
        };
        let id = self.children[i].spec.id.clone();
        if !restart {
            if abnormal {
                Report { id: &id, pid, reason: Some(&reason), error: "" }.write(sys::SUP_CHILD_ENDED, 0, Duration::ZERO);
            }
            if self.children[i].spec.restart == Restart::Temporary {
                self.children.remove(i);
            }
            return;
        }
        // (Past the intensity this reports giving up instead, and exits.)
        self.count_restart(&id, pid, Some(&reason));
        Report { id: &id, pid, reason: Some(&reason), error: "" }.write(sys::SUP_RESTARTING, 0, Duration::ZERO);
        match self.strategy {
            // Only this one: start_from(i) would also start siblings that
            // are not running, which one_for_one leaves alone.
            Strategy::OneForOne => self.restart_one(i),
            Strategy::OneForAll => {
                self.stop_range(0);
                self.start_from(0);
            }
            Strategy::RestForOne => {
                let id = self.children[i].spec.id.clone();
                self.stop_range(i);
                let from = self.children.iter().position(|c| c.spec.id == id).unwrap_or(i);
                self.start_from(from);
            }
        }
    }

    fn request(&mut self, env: &Envelope) {
        let Some(reply_to) = env.reply_to() else { return };
        let reply = match codec::decode::<Request>(&env.bytes) {
            Err(e) => return reply_to.reply_bad_request(&e.0),
            Ok(Request::StartChild(spec)) => {
                if self.children.iter().any(|c| c.spec.id == spec.id) {
                    Reply::AlreadyPresent
                } else {
                    match spec.start() {
                        Ok(p) => {
                            self.children.push(Child { spec, pid: Some(p) });
                            Reply::Started(p)
                        }
                        Err(e) => Reply::StartFailed(e.to_string()),
                    }
                }
            }
            Ok(Request::TerminateChild(id)) => match self.children.iter().position(|c| c.spec.id == id) {
                None => Reply::NotFound,
                Some(i) => {
                    let c = self.children.remove(i);
                    if let Some(pid) = c.pid {
                        shutdown(pid, &c.spec);
                    }
                    Reply::Done
                }
            },
            Ok(Request::WhichChildren) => Reply::Children(
                self.children.iter().map(|c| ChildInfo { id: c.spec.id.clone(), pid: c.pid }).collect(),
            ),
            Ok(Request::Upgrade) => return self.upgrade(Some(reply_to)), // (answers itself)
        };
        let _ = reply_to.reply(&reply);
    }
}

fn supervisor_main((parent, spec): (Pid, SupSpec), _mb: Mailbox<()>) {
    trap_exits(true);
    let mut st = State {
        parent,
        nested: spec.nested,
        strategy: spec.strategy,
        max_restarts: spec.max_restarts as usize,
        period: Duration::from_millis(spec.period_ms),
        children: Vec::new(),
        restarts: VecDeque::new(),
    };
    for c in spec.children {
        match c.start() {
            Ok(p) => st.children.push(Child { spec: c, pid: Some(p) }),
            Err(e) => {
                let why = format!("child {}: {e}", c.id);
                st.stop_range(0);
                return ack(parent, &Err(why));
            }
        }
    }
    ack(parent, &Ok(()));
    supervise(st);
}

/// The supervisor's loop: child events and requests, one at a time.
fn supervise(mut st: State) -> ! {
    if code::registered() && !st.nested {
        // Watch first, then look (as servers do): a supervisor started by
        // older code moves at once.
        code::watch();
        if code::version() != code::current() {
            st.upgrade(None);
        }
    }
    loop {
        let env = receive_raw(&[], sys::INFINITY).expect("an infinite receive returned");
        match env.kind {
            sys::MSG_EXIT => {
                let reason = ExitReason::from_bytes(&env.bytes).unwrap_or(ExitReason::Killed);
                if env.from == st.parent {
                    st.stop_all_and_exit(&reason);
                }
                if let Some(i) = st.children.iter().position(|c| c.pid == Some(env.from)) {
                    st.child_exited(i, reason);
                }
            }
            sys::MSG_DATA if env.tag == crate::TAG_SUP => st.request(&env),
            // A version became current (from the host: pid 0).
            sys::MSG_DATA if env.tag == sys::TAG_CODE && env.from.raw() == 0 && !st.nested => st.upgrade(None),
            _ => {}
        }
    }
}

// ---- upgrades: children one by one, then the supervisor ----

/// A child spec in a form any version of the program can start again:
/// servers by their type's key (found in that version's `upgradable!`),
/// nested supervisors by theirs, recursively. Plain processes have none.
#[derive(Serialize, Deserialize)]
struct PortableSpec {
    id: String,
    start: PortableStart,
    restart: Restart,
    shutdown_ms: u64,
}

#[derive(Serialize, Deserialize)]
enum PortableStart {
    Server { key: String, payload: Vec<u8> },
    Supervisor(PortableSup),
}

#[derive(Serialize, Deserialize)]
struct PortableSup {
    strategy: Strategy,
    max_restarts: u32,
    period_ms: u64,
    children: Vec<PortableSpec>,
}

/// What a supervisor hands over to the new version.
#[derive(Serialize, Deserialize)]
struct SavedSupervisor {
    sup: PortableSup,
    nested: bool,
    /// Each child's process, in `sup.children`'s order.
    pids: Vec<Option<Pid>>,
    /// How long ago each restart still counted was, oldest first.
    restart_ages_ms: Vec<u64>,
}

fn child_error(id: &str, error: UpgradeError) -> UpgradeError {
    UpgradeError::Child { id: id.to_string(), error: Box::new(error) }
}

impl Spec {
    fn portable(&self) -> Result<PortableSpec, UpgradeError> {
        let start = match &self.start {
            Start::Server { key, payload, .. } => PortableStart::Server { key: key.clone(), payload: payload.clone() },
            Start::Supervisor { payload } => {
                let sup: SupSpec = codec::decode(payload).map_err(|e| child_error(&self.id, UpgradeError::Encode(e.0)))?;
                PortableStart::Supervisor(sup.portable().map_err(|e| child_error(&self.id, e))?)
            }
            Start::Spawn { .. } | Start::Remote { .. } => return Err(child_error(&self.id, UpgradeError::Plain)),
        };
        Ok(PortableSpec { id: self.id.clone(), start, restart: self.restart, shutdown_ms: self.shutdown_ms })
    }

    /// In the new version: the spec with this version's functions.
    fn from_portable(p: PortableSpec) -> Result<Spec, String> {
        let start = match p.start {
            PortableStart::Server { key, payload } => match code::upgradable_named(&key) {
                Some(u) => Start::Server { starter: (u.starter)(), key, payload },
                None => {
                    return Err(format!(
                        "child {}: this version does not list its server type {key} in wisp::upgradable!",
                        p.id
                    ))
                }
            },
            PortableStart::Supervisor(sup) => {
                let sup = SupSpec::from_portable(sup).map_err(|e| format!("child {}: {e}", p.id))?;
                Start::Supervisor { payload: codec::encode(&sup).map_err(|e| e.0)? }
            }
        };
        Ok(Spec { id: p.id, start, restart: p.restart, shutdown_ms: p.shutdown_ms })
    }
}

impl SupSpec {
    fn portable(&self) -> Result<PortableSup, UpgradeError> {
        let children = self.children.iter().map(Spec::portable).collect::<Result<_, _>>()?;
        Ok(PortableSup { strategy: self.strategy, max_restarts: self.max_restarts, period_ms: self.period_ms, children })
    }

    fn from_portable(p: PortableSup) -> Result<SupSpec, String> {
        let children = p.children.into_iter().map(Spec::from_portable).collect::<Result<_, _>>()?;
        let (strategy, max_restarts, period_ms) = (p.strategy, p.max_restarts, p.period_ms);
        Ok(SupSpec { strategy, max_restarts, period_ms, children, nested: false })
    }
}

impl State {
    /// Move the children one by one, in start order, then this
    /// supervisor; answer `reply` (from the new version once it runs
    /// there). Returns only if the supervisor stays on this version.
    fn upgrade(&mut self, reply: Option<ReplyTo>) {
        let error = match self.move_children() {
            Err(e) => e,
            Ok(()) => match self.hand_over(reply) {
                None => return answer(reply, Ok(code::version())),
                Some(e) => e,
            },
        };
        eprintln!("wisp: supervisor {:?} stays on version {}: {error}", self_pid(), code::version());
        answer(reply, Err(error));
    }

    /// Ask each running child that can move (servers, supervisors) to, and
    /// wait; the first that does not stops the round. Plain processes do
    /// not move (they pin this supervisor: see `hand_over`).
    fn move_children(&self) -> Result<(), UpgradeError> {
        for c in &self.children {
            let Some(pid) = c.pid else { continue };
            let r: Result<UpgradeResult, CallError> = match &c.spec.start {
                Start::Server { .. } => call_tagged(pid, crate::TAG_UPGRADE, &(), UPGRADE_TIMEOUT),
                Start::Supervisor { .. } => match call_tagged(pid, crate::TAG_SUP, &Request::Upgrade, FOREVER) {
                    Ok(Reply::Upgraded(r)) => Ok(r),
                    Ok(_) => Err(CallError::Decode(codec::CodecError("unexpected reply".into()))),
                    Err(e) => Err(e),
                },
                Start::Spawn { .. } | Start::Remote { .. } => continue,
            };
            match r {
                // (One that died meanwhile is restarted as usual, on this
                // supervisor's version.)
                Ok(Ok(_)) | Err(CallError::NoProc) => {}
                Ok(Err(e)) => return Err(child_error(&c.spec.id, e)),
                Err(e) => return Err(child_error(&c.spec.id, UpgradeError::Failed(format!("no answer: {e}")))),
            }
        }
        Ok(())
    }

    /// Move this supervisor onto the current version (`None`: it runs it
    /// already), with its children's specs in portable form.
    fn hand_over(&self, reply: Option<ReplyTo>) -> Option<UpgradeError> {
        if code::version() == code::current() {
            return None;
        }
        let specs: Vec<Spec> = self.children.iter().map(|c| c.spec.clone()).collect();
        let sup = SupSpec {
            strategy: self.strategy,
            max_restarts: self.max_restarts as u32,
            period_ms: self.period.as_millis() as u64,
            children: specs,
            nested: self.nested,
        };
        let sup = match sup.portable() {
            Ok(p) => p,
            Err(e) => return Some(e),
        };
        let now = Instant::now();
        let saved = SavedSupervisor {
            sup,
            nested: self.nested,
            pids: self.children.iter().map(|c| c.pid).collect(),
            restart_ages_ms: self.restarts.iter().map(|t| now.duration_since(*t).as_millis() as u64).collect(),
        };
        let image = match codec::encode(&saved) {
            Ok(b) => b,
            Err(e) => return Some(UpgradeError::Encode(e.0)),
        };
        let h = Handoff {
            kind: code::SUPERVISOR_KIND.to_string(),
            vsn: 1,
            parent: self.parent,
            former: Vec::new(),
            stream: None,
            reply,
            image,
        };
        code::hand_over(&h)
    }
}

fn answer(reply: Option<ReplyTo>, r: UpgradeResult) {
    if let Some(to) = reply {
        let _ = to.reply(&Reply::Upgraded(r));
    }
}

/// In the new version: the supervisor from what the old one handed over
/// (`upgradable!` passes this to `code_change`).
#[doc(hidden)]
pub fn resume_supervisor(h: Handoff) -> Result<Box<dyn FnOnce()>, String> {
    let saved: SavedSupervisor =
        codec::decode(&h.image).map_err(|e| format!("cannot read a {}: {e}", type_name::<SavedSupervisor>()))?;
    if saved.pids.len() != saved.sup.children.len() {
        return Err("a supervisor's state with a pid count that is not its child count".into());
    }
    let sup = SupSpec::from_portable(saved.sup)?;
    let now = Instant::now();
    let st = State {
        parent: h.parent,
        nested: saved.nested,
        strategy: sup.strategy,
        max_restarts: sup.max_restarts as usize,
        period: Duration::from_millis(sup.period_ms),
        children: sup.children.into_iter().zip(saved.pids).map(|(spec, pid)| Child { spec, pid }).collect(),
        restarts: saved
            .restart_ages_ms
            .iter()
            .map(|&ms| now.checked_sub(Duration::from_millis(ms)).unwrap_or(now))
            .collect(),
    };
    let reply = h.reply;
    Ok(Box::new(move || {
        answer(reply, Ok(code::version()));
        supervise(st)
    }))
}
