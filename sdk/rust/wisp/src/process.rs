//! Processes: ids, typed handles, spawning, links, monitors, exit signals.
//!
//! Spawn protocol (docs/abi.md): the host starts a fresh instance of this
//! module and calls its export `wisp_spawn_entry(fn, arg_len)`. Here `fn` is
//! the function-table index of a monomorphised trampoline
//! `fn(&[u8])`, and the argument bytes are the table index of the user's
//! function (4 bytes, little endian) followed by the encoded argument. In
//! wasm a Rust function pointer *is* its table index, so the index travels
//! as a plain `u32` and becomes a function pointer again in the child, where
//! the trampoline, instantiated with the same types as the user's function,
//! decodes the argument and calls it. A bad index traps the child
//! (`call_indirect` checks index and type), never the parent.
//!
//! Rust's linker wraps the export in a `command_export` function that runs
//! the module's static constructors first and its destructors (stdout flush)
//! after, so std works in every process as it does under `main`.

use std::fmt;
use std::marker::PhantomData;

use serde::{de::DeserializeOwned, Deserialize, Deserializer, Serialize, Serializer};

use crate::codec;
use crate::mailbox::Mailbox;
use crate::sys;

/// A process id: any process, whatever it accepts. Never 0, never reused
/// within a run.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Pid(u64);

impl Pid {
    /// The pid behind a raw id (as the host reports it).
    pub const fn from_raw(raw: u64) -> Pid {
        Pid(raw)
    }

    /// The raw id.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// A typed handle on this process. Nothing checks that it accepts `M`:
    /// a message it cannot decode reaches it as a [`RecvError::Decode`](crate::RecvError::Decode).
    pub const fn typed<M>(self) -> Process<M> {
        Process { pid: self, _msg: PhantomData }
    }

    /// True while the process runs.
    pub fn is_alive(self) -> bool {
        unsafe { sys::alive(self.0) != 0 }
    }

    /// Kill it: it ends with [`ExitReason::Killed`], even if it traps exits.
    /// Killing a dead process does nothing; killing oneself ends the caller.
    pub fn kill(self) {
        unsafe { sys::kill(self.0) };
    }

    /// Send it an exit signal with reason `Code(code)`, or `Normal` if `code`
    /// is 0 (Erlang's `exit(Pid, Reason)`): a process trapping exits gets an
    /// [`Event::Exit`](crate::Event::Exit); otherwise `Normal` is ignored and
    /// any other reason ends it.
    pub fn exit(self, code: i32) {
        unsafe { sys::exit_signal(self.0, code) };
    }

    /// Link the caller and this process (both ways): when either ends with
    /// a reason other than `Normal` the other dies with it, or gets an
    /// [`Event::Exit`](crate::Event::Exit) if it traps exits. Linking to a
    /// dead process delivers a `NoProc` exit signal at once.
    pub fn link(self) {
        unsafe { sys::link(self.0) };
    }

    /// Remove the link, if any; no exit signal of it reaches the caller
    /// afterwards.
    pub fn unlink(self) {
        unsafe { sys::unlink(self.0) };
    }

    /// Monitor it: when it ends the caller gets an
    /// [`Event::Down`](crate::Event::Down) with the returned ref (at once,
    /// with `NoProc`, if it is already dead).
    pub fn monitor(self) -> MonitorRef {
        let mut r = 0u64;
        unsafe { sys::monitor(self.0, &mut r) };
        MonitorRef(r)
    }

    /// Send raw bytes with a tag (below 2^63). Sending to a dead process is
    /// not an error (the message is dropped).
    pub fn send_raw(self, tag: u64, bytes: &[u8]) -> Result<(), SendError> {
        let rc = unsafe { sys::send(self.0, tag, bytes.as_ptr(), len32(bytes.len())?) };
        check_send(rc)
    }

    /// Send any serializable value with a tag of the caller's choice; the
    /// receiver picks it up with
    /// [`Mailbox::receive_tagged`](crate::Mailbox::receive_tagged).
    pub fn send_tagged<T: Serialize + ?Sized>(self, tag: u64, value: &T) -> Result<(), SendError> {
        let bytes = codec::encode(value).map_err(SendError::Encode)?;
        self.send_raw(tag, &bytes)
    }
}

impl fmt::Debug for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}.{}>", self.0 >> 32, self.0 & 0xffff_ffff)
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The caller's own pid.
pub fn self_pid() -> Pid {
    Pid(unsafe { sys::self_pid() })
}

/// A handle on a process that accepts messages of type `M`. It is `Copy`
/// and serializable (as its pid): send it inside messages to give other
/// processes a way to reach this one.
pub struct Process<M> {
    pid: Pid,
    _msg: PhantomData<fn(M)>,
}

impl<M> Clone for Process<M> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<M> Copy for Process<M> {}
impl<M> PartialEq for Process<M> {
    fn eq(&self, other: &Self) -> bool {
        self.pid == other.pid
    }
}
impl<M> Eq for Process<M> {}
impl<M> std::hash::Hash for Process<M> {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.pid.hash(h)
    }
}
impl<M> fmt::Debug for Process<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Process{:?}", self.pid)
    }
}
impl<M> Serialize for Process<M> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.pid.serialize(s)
    }
}
impl<'de, M> Deserialize<'de> for Process<M> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Pid::deserialize(d)?.typed())
    }
}
impl<M> std::ops::Deref for Process<M> {
    type Target = Pid;
    fn deref(&self) -> &Pid {
        &self.pid
    }
}

impl<M> Process<M> {
    /// Its pid.
    pub fn pid(&self) -> Pid {
        self.pid
    }
}

impl<M: Serialize> Process<M> {
    /// Send a message (copied now). Sending to a dead process is not an
    /// error, as in Erlang: the message is dropped.
    ///
    /// # Panics
    /// If `msg` cannot be encoded or is larger than the message limit
    /// (64 MiB by default); [`try_send`](Self::try_send) returns those as errors.
    pub fn send(&self, msg: &M) {
        if let Err(e) = self.try_send(msg) {
            panic!("wisp: sending to {:?}: {}", self.pid, e);
        }
    }

    /// Send a message, returning encoding and size errors.
    pub fn try_send(&self, msg: &M) -> Result<(), SendError> {
        self.pid.send_tagged(crate::TAG_MSG, msg)
    }

    /// Send `msg` as a request and wait up to `timeout` ([`FOREVER`](crate::FOREVER)
    /// for no limit) for the reply, which the receiver sends with
    /// [`ReplyTo::reply`](crate::ReplyTo::reply). The target is monitored
    /// while waiting: a dead process, or one that dies before replying, is
    /// [`CallError::NoProc`], never a hang. The caller chooses the reply
    /// type; a reply that does not decode as `R` is [`CallError::Decode`].
    pub fn call<R: DeserializeOwned>(&self, msg: &M, timeout: std::time::Duration) -> Result<R, CallError> {
        crate::mailbox::call_tagged(self.pid, crate::TAG_CALL, msg, timeout)
    }
}

/// A monitor reference: the tag of the [`Event::Down`](crate::Event::Down)
/// the monitor delivers.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MonitorRef(pub(crate) u64);

impl MonitorRef {
    /// The raw ref (bit 63 set).
    pub fn raw(self) -> u64 {
        self.0
    }

    /// Remove the monitor and any `Down` of it already queued. True if it
    /// was active or its `Down` was still queued; false if the `Down` was
    /// already received.
    pub fn demonitor(self) -> bool {
        unsafe { sys::demonitor(self.0) == sys::OK }
    }
}

/// Why a process ended (the payload of `Exit` and `Down` events).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitReason {
    /// Its function returned, or it exited with code 0.
    Normal,
    /// `std::process::exit(code)` with `code != 0`, or an exit signal with that code.
    Code(i32),
    /// It trapped (a Rust panic is a trap: `unreachable in ...`).
    Trap(String),
    /// It was killed.
    Killed,
    /// It did not exist when linked or monitored.
    NoProc,
    /// A limit of its capabilities ended it; the text says which
    /// (`"cpu limit"`: see [`Caps::max_cpu`](crate::Caps::max_cpu)).
    Limit(String),
}

impl ExitReason {
    /// Parse a `wisp_exit_reason` payload; `None` if malformed.
    pub fn from_bytes(b: &[u8]) -> Option<ExitReason> {
        if b.len() < 8 {
            return None;
        }
        let kind = u32::from_le_bytes(b[0..4].try_into().unwrap());
        let code = i32::from_le_bytes(b[4..8].try_into().unwrap());
        Some(match kind {
            sys::EXIT_NORMAL => ExitReason::Normal,
            sys::EXIT_CODE => ExitReason::Code(code),
            sys::EXIT_TRAP => ExitReason::Trap(String::from_utf8_lossy(&b[8..]).into_owned()),
            sys::EXIT_KILLED => ExitReason::Killed,
            sys::EXIT_NOPROC => ExitReason::NoProc,
            sys::EXIT_LIMIT => ExitReason::Limit(String::from_utf8_lossy(&b[8..]).into_owned()),
            _ => return None,
        })
    }

    /// True for `Normal`.
    pub fn is_normal(&self) -> bool {
        matches!(self, ExitReason::Normal)
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Normal => f.write_str("normal"),
            ExitReason::Code(c) => write!(f, "exit code {c}"),
            ExitReason::Trap(t) => write!(f, "trap: {t}"),
            ExitReason::Killed => f.write_str("killed"),
            ExitReason::NoProc => f.write_str("noproc"),
            ExitReason::Limit(t) => write!(f, "limit: {t}"),
        }
    }
}

/// Why a send failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The value could not be encoded.
    Encode(codec::CodecError),
    /// Larger than the message limit.
    TooBig,
    /// The host could not allocate.
    NoMemory,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Encode(e) => write!(f, "cannot encode the message: {e}"),
            SendError::TooBig => f.write_str("message larger than the limit"),
            SendError::NoMemory => f.write_str("the host is out of memory"),
        }
    }
}
impl std::error::Error for SendError {}

pub(crate) fn len32(n: usize) -> Result<u32, SendError> {
    u32::try_from(n).map_err(|_| SendError::TooBig)
}

pub(crate) fn check_send(rc: i32) -> Result<(), SendError> {
    match rc {
        sys::OK => Ok(()),
        sys::ETOOBIG => Err(SendError::TooBig),
        _ => Err(SendError::NoMemory),
    }
}

/// Why a spawn failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpawnError {
    /// The argument could not be encoded.
    Encode(codec::CodecError),
    /// The argument is larger than the message limit.
    TooBig,
    /// The process table is full.
    Limit,
    /// The host could not allocate.
    NoMemory,
    /// The host refused (no spawn entry: should not happen with this crate).
    Invalid,
    /// The capability set forbids spawning ([`Caps::deny_spawn`](crate::Caps::deny_spawn),
    /// [`Caps::max_processes`](crate::Caps::max_processes) 0, `wisp run --max-processes 0`).
    Denied,
    /// Building the child's capability set failed ([`spawn_without_fs`](crate::spawn_without_fs)).
    Caps(crate::CapsError),
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::Encode(e) => write!(f, "cannot encode the argument: {e}"),
            SpawnError::TooBig => f.write_str("argument larger than the limit"),
            SpawnError::Limit => f.write_str("process limit reached"),
            SpawnError::NoMemory => f.write_str("the host is out of memory"),
            SpawnError::Invalid => f.write_str("the host refused the spawn"),
            SpawnError::Denied => f.write_str("not allowed to spawn by the process's capabilities"),
            SpawnError::Caps(e) => write!(f, "cannot build the child's capabilities: {e}"),
        }
    }
}
impl std::error::Error for SpawnError {}

/// Why a [`Process::call`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The process is dead, or died before replying.
    NoProc,
    /// No reply within the timeout.
    Timeout,
    /// The request could not be sent (encoding, size).
    Send(SendError),
    /// The reply did not decode as the expected type.
    Decode(codec::CodecError),
    /// The receiver could not decode the request (it replied so).
    BadRequest(String),
    /// A call to oneself (it could never be answered).
    SelfCall,
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::NoProc => f.write_str("no such process"),
            CallError::Timeout => f.write_str("call timed out"),
            CallError::Send(e) => write!(f, "{e}"),
            CallError::Decode(e) => write!(f, "cannot decode the reply: {e}"),
            CallError::BadRequest(e) => write!(f, "the server could not decode the request: {e}"),
            CallError::SelfCall => f.write_str("a process cannot call itself"),
        }
    }
}
impl std::error::Error for CallError {}

/// The argument of a new process: the user's function index, then its
/// encoded argument.
fn spawn_payload<A: Serialize>(f: usize, arg: &A) -> Result<Vec<u8>, SpawnError> {
    let mut bytes = Vec::with_capacity(16);
    bytes.extend_from_slice(&(f as u32).to_le_bytes());
    codec::encode_into(&mut bytes, arg).map_err(SpawnError::Encode)?;
    Ok(bytes)
}

/// Runs in the child: `bytes` is the payload of [`spawn_payload`].
fn trampoline<A: DeserializeOwned, M>(bytes: &[u8]) {
    let index = u32::from_le_bytes(bytes[..4].try_into().expect("wisp: short spawn argument"));
    // SAFETY: the index was made from a `fn(A, Mailbox<M>)` with the same A
    // and M this trampoline was instantiated with (spawn_with), and a wasm
    // function pointer is its table index. A wrong index traps in
    // call_indirect rather than calling the wrong thing.
    let f: fn(A, Mailbox<M>) = unsafe { std::mem::transmute::<usize, fn(A, Mailbox<M>)>(index as usize) };
    let arg: A = match codec::decode(&bytes[4..]) {
        Ok(a) => a,
        Err(e) => panic!("wisp: cannot decode the spawn argument: {e}"),
    };
    f(arg, Mailbox::new());
}

pub(crate) fn spawn_with<A: Serialize + DeserializeOwned, M>(
    arg: &A,
    f: fn(A, Mailbox<M>),
    flags: u32,
) -> Result<sys::Spawned, SpawnError> {
    let (entry, payload) = spawn_parts(arg, f)?;
    spawn_raw(entry, &payload, flags)
}

/// The spawn entry (function index) and argument bytes that start
/// `f(arg, mailbox)`; valid in any instance of this module.
pub(crate) fn spawn_parts<A: Serialize + DeserializeOwned, M>(
    arg: &A,
    f: fn(A, Mailbox<M>),
) -> Result<(u32, Vec<u8>), SpawnError> {
    let payload = spawn_payload(f as usize, arg)?;
    let entry: fn(&[u8]) = trampoline::<A, M>;
    Ok((entry as usize as u32, payload))
}

pub(crate) fn spawn_raw(entry: u32, payload: &[u8], flags: u32) -> Result<sys::Spawned, SpawnError> {
    let mut out = sys::Spawned::default();
    let len = u32::try_from(payload.len()).map_err(|_| SpawnError::TooBig)?;
    let rc = unsafe { sys::spawn(entry, payload.as_ptr(), len, flags, &mut out) };
    spawn_result(rc, out)
}

pub(crate) fn spawn_result(rc: i32, out: sys::Spawned) -> Result<sys::Spawned, SpawnError> {
    match rc {
        sys::OK => Ok(out),
        sys::ETOOBIG => Err(SpawnError::TooBig),
        sys::ELIMIT => Err(SpawnError::Limit),
        sys::ENOMEM => Err(SpawnError::NoMemory),
        sys::EPERM => Err(SpawnError::Denied),
        _ => Err(SpawnError::Invalid),
    }
}

/// Start `f(arg, mailbox)` as a new process: a fresh, isolated instance of
/// this module. `f` is a plain function or a non-capturing closure; `arg`
/// travels as bytes. The process ends (`Normal`) when `f` returns, and with
/// a `Trap` reason if it panics.
///
/// ```no_run
/// let p = wisp::spawn(3u32, |n, mb: wisp::Mailbox<String>| {
///     for _ in 0..n {
///         println!("{}", mb.receive().unwrap());
///     }
/// }).unwrap();
/// p.send(&"hello".to_string());
/// ```
pub fn spawn<A, M>(arg: A, f: fn(A, Mailbox<M>)) -> Result<Process<M>, SpawnError>
where
    A: Serialize + DeserializeOwned,
{
    Ok(Pid(spawn_with(&arg, f, 0)?.pid).typed())
}

/// As [`spawn`], linked to the caller atomically.
pub fn spawn_link<A, M>(arg: A, f: fn(A, Mailbox<M>)) -> Result<Process<M>, SpawnError>
where
    A: Serialize + DeserializeOwned,
{
    Ok(Pid(spawn_with(&arg, f, sys::SPAWN_LINK)?.pid).typed())
}

/// As [`spawn`], monitored by the caller atomically: the child cannot end
/// unobserved.
pub fn spawn_monitor<A, M>(arg: A, f: fn(A, Mailbox<M>)) -> Result<(Process<M>, MonitorRef), SpawnError>
where
    A: Serialize + DeserializeOwned,
{
    let s = spawn_with(&arg, f, sys::SPAWN_MONITOR)?;
    Ok((Pid(s.pid).typed(), MonitorRef(s.monitor)))
}

/// Turn trapping of exit signals on or off; returns the previous setting.
/// A process trapping exits receives its links' exit signals as
/// [`Event::Exit`](crate::Event::Exit) instead of dying of them.
pub fn trap_exits(on: bool) -> bool {
    unsafe { sys::trap_exit(on as i32) != 0 }
}

/// Let other processes run (never needed for fairness: the runtime preempts).
pub fn yield_now() {
    unsafe { sys::yield_now() }
}

/// End the calling process with `code` (0 is `Normal`). In the main process
/// this ends the run with that exit status.
pub fn exit(code: i32) -> ! {
    std::process::exit(code)
}

/// The host calls this in every new process (see the module's docs).
#[no_mangle]
pub extern "C" fn wisp_spawn_entry(entry: u32, arg_len: u32) {
    // Small arguments stay on the stack: an idle process need not touch the
    // allocator.
    let mut small = [0u8; 128];
    let mut big = Vec::new();
    let buf: &mut [u8] = if arg_len as usize <= small.len() {
        &mut small[..arg_len as usize]
    } else {
        big.resize(arg_len as usize, 0);
        &mut big[..]
    };
    let full = unsafe { sys::spawn_arg(buf.as_mut_ptr(), arg_len) } as usize;
    let n = full.min(buf.len());
    // SAFETY: spawn_raw's callers pass a `fn(&[u8])`; a bad index traps.
    let f: fn(&[u8]) = unsafe { std::mem::transmute::<usize, fn(&[u8])>(entry as usize) };
    f(&buf[..n]);
}

