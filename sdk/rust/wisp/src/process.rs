//! Processes as seen from outside: ids and typed handles, what can be done
//! with them (signals, links, monitors, sends, calls, moving sockets), the
//! calling process's own id and flags, and why processes end.
//!
//! Starting processes is [`crate::spawn`]'s; receiving is the mailbox's.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::time::Duration;

use serde::{de::DeserializeOwned, Deserialize, Deserializer, Serialize, Serializer};

use crate::codec::{self, Bincode, Codec, CodecError};
use crate::socket::{Socket, TcpStream};
use crate::sys;
use crate::time::timeout_ns;

/// A process id: any process, whatever it accepts, on this node or
/// another. Never 0, never reused within a run.
///
/// A pid is serializable, so it travels inside messages and spawn
/// arguments, and names the same process wherever it is decoded:
///
/// - when this runtime is no node (no `wisp run --name`/`--sname`), as its
///   64-bit value (a `u64` to the codec): nothing it encodes can reach
///   another runtime, and that is as cheap as an integer;
/// - when it is a node, always in the portable form, whether the process
///   is local or not: the pid as Erlang's `NEW_PID_EXT` (node name, ID,
///   serial, creation; `wisp_node.pid_encode`), bytes to the codec, which
///   any node turns back into its own name for the process
///   (`pid_decode`). A 64-bit pid means something only on the node that
///   made it, and bytes a node encodes may be forwarded anywhere.
///
/// Whether a runtime is a node is fixed for its run, so both ends of every
/// message agree on the form. The zero pid (no process) is empty bytes in
/// the portable form. A pid no node knows (made up with [`Pid::from_raw`])
/// does not encode there ([`SendError::Encode`]), and bytes that are not a
/// pid are a decode error, as any malformed message is.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pid(u64);

/// Whether this runtime is a node (`wisp run --name`/`--sname`), which
/// decides how pids are encoded ([`Pid`]). Fixed for the run; each process
/// (an instance of its own) asks the host once. (A flag of its own, not
/// `node_form`, so that a runtime that is no node pays one load per pid.)
#[inline]
pub(crate) fn runtime_is_node() -> bool {
    use std::sync::atomic::{AtomicU8, Ordering};
    static KNOWN: AtomicU8 = AtomicU8::new(0); // 0 not asked, 1 no node, 2 a node
    match KNOWN.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => {
            let node = unsafe { sys::node_name(std::ptr::null_mut(), 0) } != 0;
            KNOWN.store(if node { 2 } else { 1 }, Ordering::Relaxed);
            node
        }
    }
}

/// The most bytes of a portable pid: `NEW_PID_EXT`, the node's name as an
/// atom (at most 255 bytes, and a header of at most 3), 12 bytes of
/// numbers. (The C SDK's `WISP_PID_PACK_MAX`.)
const PORTABLE_PID_MAX: usize = 1 + 3 + 255 + 12;

/// How a node writes its own processes' pids: `NEW_PID_EXT` and the node's
/// name (`head`), then ID and Serial (the pid's low and high halves, big
/// endian), then the node's `creation`. Learnt once per process from the
/// host's encoding of the caller's own pid, so that local pids — most of
/// the pids a program sends — are encoded and recognised without a host
/// call; other nodes' pids, and any bytes not exactly of this form (the
/// same node written otherwise, an older creation), go through the host.
struct NodeForm {
    head: Vec<u8>,
    creation: [u8; 4],
}

/// This node's form; `None` if the runtime is no node. Both are fixed for
/// the run (a node's creation is its incarnation's); each process (an
/// instance of its own) asks the host once.
fn node_form() -> Option<&'static NodeForm> {
    static FORM: std::sync::OnceLock<NodeForm> = std::sync::OnceLock::new();
    if !runtime_is_node() {
        return None;
    }
    Some(FORM.get_or_init(|| {
        let mut buf = [0u8; PORTABLE_PID_MAX];
        let n = unsafe { sys::node_pid_encode(sys::self_pid(), buf.as_mut_ptr(), buf.len() as u32) } as usize;
        match n {
            14..=PORTABLE_PID_MAX => NodeForm { head: buf[..n - 12].to_vec(), creation: buf[n - 4..n].try_into().unwrap() },
            _ => NodeForm { head: Vec::new(), creation: [0; 4] }, // (no fast path)
        }
    }))
}

impl Serialize for Pid {
    #[inline]
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if !runtime_is_node() {
            return s.serialize_u64(self.0);
        }
        self.serialize_portable(s)
    }
}

impl Pid {
    /// The portable form ([`Pid`]'s docs); on a node only.
    fn serialize_portable<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Some(form) = node_form() else {
            return s.serialize_u64(self.0);
        };
        if self.0 == 0 {
            return s.serialize_bytes(&[]);
        }
        let mut buf = [0u8; PORTABLE_PID_MAX];
        let n = if self.0 >> 63 == 0 && !form.head.is_empty() {
            let h = form.head.len();
            buf[..h].copy_from_slice(&form.head);
            buf[h..h + 4].copy_from_slice(&(self.0 as u32).to_be_bytes());
            buf[h + 4..h + 8].copy_from_slice(&((self.0 >> 32) as u32).to_be_bytes());
            buf[h + 8..h + 12].copy_from_slice(&form.creation);
            h + 12
        } else {
            unsafe { sys::node_pid_encode(self.0, buf.as_mut_ptr(), buf.len() as u32) as usize }
        };
        if n == 0 || n > buf.len() {
            return Err(serde::ser::Error::custom(format!("pid {self:?} names no process any node knows")));
        }
        s.serialize_bytes(&buf[..n])
    }
}

impl<'de> Deserialize<'de> for Pid {
    #[inline]
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Pid, D::Error> {
        if !runtime_is_node() {
            return u64::deserialize(d).map(Pid);
        }
        d.deserialize_bytes(PortablePid)
    }
}

/// Reads a pid in the portable form: bytes (bincode, MessagePack) or a
/// sequence of bytes (JSON writes bytes as an array of numbers).
struct PortablePid;

impl PortablePid {
    fn decode<E: serde::de::Error>(bytes: &[u8]) -> Result<Pid, E> {
        if bytes.is_empty() {
            return Ok(Pid(0));
        }
        if let Some(form) = node_form().filter(|f| !f.head.is_empty() && bytes.len() == f.head.len() + 12) {
            let (head, rest) = bytes.split_at(form.head.len());
            let id = u32::from_be_bytes(rest[..4].try_into().unwrap());
            let serial = u32::from_be_bytes(rest[4..8].try_into().unwrap());
            // Serials run 1..=2^31-1 (the host's PROC_GEN_MAX); one it would
            // refuse goes to the host, which does.
            if head == form.head && rest[8..] == form.creation && (1..=0x7fff_ffff).contains(&serial) {
                return Ok(Pid((serial as u64) << 32 | id as u64));
            }
        }
        let mut raw = 0u64;
        match unsafe { sys::node_pid_decode(bytes.as_ptr(), u32::try_from(bytes.len()).unwrap_or(u32::MAX), &mut raw) } {
            sys::OK => Ok(Pid(raw)),
            _ => Err(E::custom(format!("{} bytes that are not a pid (NEW_PID_EXT)", bytes.len()))),
        }
    }
}

impl<'de> serde::de::Visitor<'de> for PortablePid {
    type Value = Pid;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a pid in the portable form (the bytes of an Erlang NEW_PID_EXT)")
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Pid, E> {
        PortablePid::decode(v)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Pid, A::Error> {
        let mut bytes = Vec::with_capacity(32);
        while let Some(b) = seq.next_element::<u8>()? {
            if bytes.len() == PORTABLE_PID_MAX {
                return Err(serde::de::Error::custom("too many bytes for a pid"));
            }
            bytes.push(b);
        }
        PortablePid::decode(&bytes)
    }
}

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
        Process::from_pid(self)
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
    /// any other reason ends it. (To end the calling process, [`exit`].)
    pub fn exit_signal(self, code: i32) {
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

    /// Move `socket` to this process: the caller gives it up (it is
    /// consumed) and the process receives it with
    /// [`Mailbox::receive_socket`](crate::Mailbox::receive_socket) (or as an
    /// [`Event::Socket`](crate::Event::Socket)). If the process is dead, or
    /// ends without receiving it, the socket is closed. Errors only if the
    /// host refuses (the socket is then closed).
    pub fn send_socket<S: Socket>(self, socket: S) -> io::Result<()> {
        let fd: OwnedFd = socket.into();
        let raw = fd.into_raw_fd();
        match unsafe { sys::send_fd(self.0, S::TAG, raw) } {
            sys::OK => Ok(()),
            rc => {
                // EINVAL: the host did not take it (not one of its sockets),
                // so it is still ours to close; otherwise the host took it
                // out of our table and closed it.
                if rc == sys::EINVAL {
                    // SAFETY: the fd came from an OwnedFd a moment ago and
                    // the host left it in our table.
                    drop(unsafe { OwnedFd::from_raw_fd(raw) });
                }
                Err(io::Error::new(io::ErrorKind::Other, format!("send_fd failed (wisp code {rc})")))
            }
        }
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

/// A handle on a process that accepts messages of type `M`, encoded with
/// the codec `C` ([`Bincode`] unless chosen: see [`codec`](crate::codec)).
/// It is `Copy` and serializable (as its pid): send it inside messages to
/// give other processes a way to reach this one.
///
/// ```
/// let me = wisp::Mailbox::<String>::new();
/// let p: wisp::Process<String> = me.process();
/// p.send(&"to myself".to_string());
/// assert_eq!(me.receive().unwrap(), "to myself");
/// ```
pub struct Process<M, C = Bincode> {
    pid: Pid,
    _msg: PhantomData<fn(M, C)>,
}

impl<M, C> Clone for Process<M, C> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<M, C> Copy for Process<M, C> {}
impl<M, C> PartialEq for Process<M, C> {
    fn eq(&self, other: &Self) -> bool {
        self.pid == other.pid
    }
}
impl<M, C> Eq for Process<M, C> {}
impl<M, C> std::hash::Hash for Process<M, C> {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.pid.hash(h)
    }
}
impl<M, C> fmt::Debug for Process<M, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Process{:?}", self.pid)
    }
}
impl<M, C> Serialize for Process<M, C> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.pid.serialize(s)
    }
}
impl<'de, M, C> Deserialize<'de> for Process<M, C> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Process::from_pid(Pid::deserialize(d)?))
    }
}
/// The untyped id (as [`Process::pid`]), for what takes any process: a
/// served directory's server, say.
impl<M, C> From<Process<M, C>> for Pid {
    fn from(p: Process<M, C>) -> Pid {
        p.pid
    }
}

impl<M, C> Process<M, C> {
    pub(crate) const fn from_pid(pid: Pid) -> Process<M, C> {
        Process { pid, _msg: PhantomData }
    }

    /// The same process, its messages encoded with codec `D` (its mailbox
    /// must use `D` too: [`Mailbox::with_codec`](crate::Mailbox::with_codec)).
    pub const fn with_codec<D>(self) -> Process<M, D> {
        Process::from_pid(self.pid)
    }

    /// Its pid (which has the rest of what can be done with a process:
    /// [`Pid::send_raw`], [`Pid::send_socket`], ...).
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// True while the process runs ([`Pid::is_alive`]).
    pub fn is_alive(&self) -> bool {
        self.pid.is_alive()
    }

    /// Kill it ([`Pid::kill`]).
    pub fn kill(&self) {
        self.pid.kill()
    }

    /// Send it an exit signal ([`Pid::exit_signal`]).
    pub fn exit_signal(&self, code: i32) {
        self.pid.exit_signal(code)
    }

    /// Link to it ([`Pid::link`]).
    pub fn link(&self) {
        self.pid.link()
    }

    /// Remove the link ([`Pid::unlink`]).
    pub fn unlink(&self) {
        self.pid.unlink()
    }

    /// Monitor it ([`Pid::monitor`]).
    pub fn monitor(&self) -> MonitorRef {
        self.pid.monitor()
    }

    /// Move a connection to this process ([`Pid::send_socket`]); it takes
    /// it with [`Mailbox::receive_stream`](crate::Mailbox::receive_stream).
    pub fn send_stream(&self, stream: TcpStream) -> io::Result<()> {
        self.pid.send_socket(stream)
    }
}

impl<M, C: Codec<M>> Process<M, C> {
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
        let bytes = C::encode(msg).map_err(SendError::Encode)?;
        self.pid.send_raw(crate::TAG_MSG, &bytes)
    }

    /// Send `msg` as a request and wait up to `timeout` ([`FOREVER`](crate::FOREVER)
    /// for no limit) for the reply, which the receiver sends with
    /// [`ReplyTo::reply`](crate::ReplyTo::reply). The target is monitored
    /// while waiting: a dead process, or one that dies before replying, is
    /// [`CallError::NoProc`], never a hang. The caller chooses the reply
    /// type; a reply that does not decode as `R` is [`CallError::Decode`].
    pub fn call<R: DeserializeOwned>(&self, msg: &M, timeout: std::time::Duration) -> Result<R, CallError> {
        let bytes = C::encode(msg).map_err(|e| CallError::Send(SendError::Encode(e)))?;
        call_bytes(self.pid, crate::TAG_CALL, &bytes, timeout)
    }
}

/// The caller's own pid.
pub fn self_pid() -> Pid {
    Pid(unsafe { sys::self_pid() })
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

/// Wait, hibernated, until the next message or signal arrives (Erlang's
/// `erlang:hibernate`): the process's native stack and the pages of its
/// memory go back to the host meanwhile, and it continues with its state
/// intact. Returns at once if a message is queued already. A process that
/// waits in a receive longer than `wisp run --hibernate-after` (10 s by
/// default) hibernates by itself; this is for doing it at once.
pub fn hibernate() {
    unsafe { sys::hibernate() }
}

/// End the calling process with `code` (0 is `Normal`). In the main process
/// this ends the run with that exit status. (To send another process an
/// exit signal, [`Pid::exit_signal`].)
pub fn exit(code: i32) -> ! {
    std::process::exit(code)
}

/// Make a panic in this process end it with the panic's location and
/// message as its exit reason ([`ExitReason::Panic`]), which its links,
/// monitors, supervisor and crash report show, instead of a bare
/// `unreachable` trap. The crate installs it in every process it starts
/// (spawned processes, [`#[wisp::main]`](macro@crate::main),
/// [`#[wisp::test]`](macro@crate::test)); a program with a plain `main` can
/// call it first thing. The message is not printed by Rust's default hook
/// any more: the runtime's crash report on stderr carries it (`wisp run
/// --log-level`). A hook set afterwards with `std::panic::set_hook`
/// replaces this one.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let text = panic_text(info.payload(), info.location());
        end_with_panic(&text, 0)
    }));
}

/// "file:line:col: message", as a panic reads in an exit reason.
pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send), location: Option<&std::panic::Location<'_>>) -> String {
    let message = match (payload.downcast_ref::<&str>(), payload.downcast_ref::<String>()) {
        (Some(s), _) => s,
        (_, Some(s)) => s.as_str(),
        _ => "Box<dyn Any>",
    };
    match location {
        Some(l) => format!("{}:{}:{}: {message}", l.file(), l.line(), l.column()),
        None => message.to_string(),
    }
}

/// End this process with `text` as its panic (sys::panic never returns).
pub(crate) fn end_with_panic(text: &str, flags: u32) -> ! {
    unsafe { sys::panic(text.as_ptr(), text.len() as u32, flags) };
    std::process::abort()
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
    /// It trapped: the text says how and where (`unreachable in
    /// my_crate::f`, `out of bounds memory access in ...`).
    Trap(String),
    /// It panicked: the panic's location and message
    /// (`src/main.rs:12:5: index out of bounds: ...`), cut to 199 bytes.
    /// (A process with the crate's panic hook, [`install_panic_hook`]; a
    /// Rust panic without it is a [`Trap`](ExitReason::Trap), `unreachable
    /// in abort`.)
    Panic(String),
    /// It was killed.
    Killed,
    /// It did not exist when linked or monitored.
    NoProc,
    /// A limit of its capabilities ended it; the text says which
    /// (`"cpu limit"`: see [`Caps::max_cpu`](crate::Caps::max_cpu)).
    Limit(String),
    /// The runtime is shutting down: `wisp` got the signal given (SIGTERM
    /// 15, SIGINT 2). The main process gets it as an exit signal; trapping
    /// exits, it can stop its work in order.
    Shutdown(i32),
    /// The node of the process at the other end was lost (Erlang's
    /// `noconnection`).
    NoConnection,
    /// An Erlang reason with no other form here: the term in the external
    /// format, without its version byte.
    Term(Vec<u8>),
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
            sys::EXIT_TRAP if code == sys::TRAP_PANIC => ExitReason::Panic(String::from_utf8_lossy(&b[8..]).into_owned()),
            sys::EXIT_TRAP => ExitReason::Trap(String::from_utf8_lossy(&b[8..]).into_owned()),
            sys::EXIT_KILLED => ExitReason::Killed,
            sys::EXIT_NOPROC => ExitReason::NoProc,
            sys::EXIT_LIMIT => ExitReason::Limit(String::from_utf8_lossy(&b[8..]).into_owned()),
            sys::EXIT_SHUTDOWN => ExitReason::Shutdown(code),
            sys::EXIT_NOCONNECTION => ExitReason::NoConnection,
            sys::EXIT_TERM => ExitReason::Term(b[8..].to_vec()),
            _ => return None,
        })
    }

    /// True for `Normal`.
    pub fn is_normal(&self) -> bool {
        matches!(self, ExitReason::Normal)
    }

    /// As an `Exit`/`Down` payload (`wisp_exit_reason` and its text): what
    /// [`from_bytes`](Self::from_bytes) reads.
    pub fn to_bytes(&self) -> Vec<u8> {
        let (kind, code, text): (u32, i32, &[u8]) = match self {
            ExitReason::Normal => (sys::EXIT_NORMAL, 0, b""),
            ExitReason::Code(c) => (sys::EXIT_CODE, *c, b""),
            ExitReason::Trap(t) => (sys::EXIT_TRAP, 0, t.as_bytes()),
            ExitReason::Panic(t) => (sys::EXIT_TRAP, sys::TRAP_PANIC, t.as_bytes()),
            ExitReason::Killed => (sys::EXIT_KILLED, 0, b""),
            ExitReason::NoProc => (sys::EXIT_NOPROC, 0, b""),
            ExitReason::Limit(t) => (sys::EXIT_LIMIT, 0, t.as_bytes()),
            ExitReason::Shutdown(sig) => (sys::EXIT_SHUTDOWN, *sig, b""),
            ExitReason::NoConnection => (sys::EXIT_NOCONNECTION, 0, b""),
            ExitReason::Term(t) => (sys::EXIT_TERM, t.len() as i32, t.as_slice()),
        };
        let mut b = Vec::with_capacity(8 + text.len());
        b.extend_from_slice(&kind.to_le_bytes());
        b.extend_from_slice(&code.to_le_bytes());
        b.extend_from_slice(text);
        b
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Normal => f.write_str("normal"),
            ExitReason::Code(c) => write!(f, "exit code {c}"),
            ExitReason::Trap(t) => write!(f, "trap: {t}"),
            ExitReason::Panic(t) => write!(f, "panicked at {t}"),
            ExitReason::Killed => f.write_str("killed"),
            ExitReason::NoProc => f.write_str("noproc"),
            ExitReason::Limit(t) => write!(f, "limit: {t}"),
            ExitReason::Shutdown(sig) => write!(f, "shutdown (signal {sig})"),
            ExitReason::NoConnection => f.write_str("noconnection"),
            ExitReason::Term(t) => write!(f, "erlang reason ({} bytes of term)", t.len()),
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
    /// The server dropped the [`Deferred`](crate::Deferred) reply token
    /// of the call without answering: no reply will come.
    NoReply,
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
            CallError::NoReply => f.write_str("the server dropped the call without answering it"),
        }
    }
}
impl std::error::Error for CallError {}

/// The first byte of a reply (the rest: the encoded value, or the text of
/// why the request could not be decoded). [`ReplyTo`](crate::ReplyTo)
/// writes replies; [`call_tagged`] reads them.
pub(crate) const REPLY_OK: u8 = 0;
pub(crate) const REPLY_BAD_REQUEST: u8 = 1;
/// A reply saying none will come (a dropped [`Deferred`](crate::Deferred)).
pub(crate) const REPLY_NONE: u8 = 2;

/// A reply too big for `call_tagged`'s buffer: still queued, and the first
/// message with its tag (the request's ref, which nothing else uses).
fn take_reply(info: sys::MsgInfo) -> Result<Vec<u8>, CallError> {
    let mut big = vec![0u8; info.len as usize];
    let mut got = sys::MsgInfo::default();
    let rc = unsafe { sys::receive(&info.tag, 1, sys::NOWAIT, big.as_mut_ptr(), info.len, &mut got) };
    if rc != sys::OK {
        return Err(CallError::Timeout);
    }
    big.truncate(got.len as usize);
    Ok(big)
}

/// Send `msg` as a request with `tag` to `pid` and wait for the reply.
pub(crate) fn call_tagged<T: Serialize + ?Sized, R: DeserializeOwned>(
    pid: Pid,
    tag: u64,
    msg: &T,
    timeout: Duration,
) -> Result<R, CallError> {
    let bytes = codec::encode(msg).map_err(|e| CallError::Send(SendError::Encode(e)))?;
    call_bytes(pid, tag, &bytes, timeout)
}

/// Send `bytes` as a request with `tag` to `pid` and wait for the reply.
pub(crate) fn call_bytes<R: DeserializeOwned>(pid: Pid, tag: u64, bytes: &[u8], timeout: Duration) -> Result<R, CallError> {
    let len = len32(bytes.len()).map_err(CallError::Send)?;
    let mut small = [0u8; 256];
    let mut info = sys::MsgInfo::default();
    let rc = unsafe {
        sys::request(pid.raw(), tag, bytes.as_ptr(), len, timeout_ns(timeout), small.as_mut_ptr(), small.len() as u32, &mut info)
    };
    let reply = match rc {
        sys::OK => small[..info.len as usize].to_vec(),
        sys::ETOOSMALL => take_reply(info)?,
        sys::ENOPROC => return Err(CallError::NoProc),
        sys::ETIMEDOUT => return Err(CallError::Timeout),
        sys::EINVAL => return Err(CallError::SelfCall),
        sys::ETOOBIG => return Err(CallError::Send(SendError::TooBig)),
        _ => return Err(CallError::Send(SendError::NoMemory)),
    };
    match reply.split_first() {
        Some((&REPLY_OK, rest)) => codec::decode(rest).map_err(CallError::Decode),
        Some((&REPLY_BAD_REQUEST, rest)) => Err(CallError::BadRequest(String::from_utf8_lossy(rest).into_owned())),
        Some((&REPLY_NONE, [])) => Err(CallError::NoReply),
        _ => Err(CallError::Decode(CodecError("malformed reply".into()))),
    }
}
