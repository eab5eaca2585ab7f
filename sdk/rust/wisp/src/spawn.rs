//! Starting processes: [`spawn`] and its variants (linked, monitored,
//! with a capability set, owning a connection), and the spawn protocol that
//! runs the function in the new process.
//!
//! Spawn protocol (docs/abi.md): the host starts a fresh instance of this
//! module and calls its export `wisp_spawn_entry(fn, arg_len)`. Here `fn` is
//! the function-table index of a monomorphised trampoline
//! `fn(&[u8])`, and the argument bytes are the table index of the user's
//! function (4 bytes, little endian) followed by the encoded argument. The
//! indices are made in the parent and turned back into function pointers
//! in the child by `fnptr::fn_at`, whose contract they keep:
//! only this module writes spawn arguments (nothing else can reach a
//! process's spawn argument but `sys::spawn`, which is `unsafe` for that
//! reason; `node::spawn_on` sends another node what `spawn_parts` and
//! `captured_parts` made), each trampoline is instantiated with the same
//! types as the function whose index travels with it. A node that accepts
//! remote spawns (`--allow-remote-spawn`) runs what its peers send it, so
//! it trusts everyone with its cookie this far, as an Erlang node does.
//!
//! Rust's linker wraps the export in a `command_export` function that runs
//! the module's static constructors first and its destructors (stdout flush)
//! after, so std works in every process as it does under `main`.

use std::fmt;

use serde::{de::DeserializeOwned, Serialize};

use crate::caps::{Caps, CapsError};
use crate::codec;
use crate::fnptr::fn_at;
use crate::mailbox::Mailbox;
use crate::process::{MonitorRef, Pid, Process};
use crate::socket::TcpStream;
use crate::sys;
use crate::time::FOREVER;

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
    /// Building the child's capability set failed ([`spawn_without_fs`](fn@crate::spawn_without_fs)).
    Caps(CapsError),
    /// [`spawn_on`](crate::node::spawn_on): the node cannot be reached (no
    /// such node, it is down, or this runtime is no node).
    Unreachable,
    /// [`spawn_on`](crate::node::spawn_on): not allowed, by this process's
    /// capabilities ([`Caps::deny_nodes`](crate::Caps::deny_nodes),
    /// [`Caps::deny_spawn`](crate::Caps::deny_spawn)) or by the node, which
    /// accepts remote spawns only when run with `--allow-remote-spawn`.
    NodeRefused,
    /// [`spawn_on`](crate::node::spawn_on): the node did not answer in time
    /// (120 s, which includes shipping and compiling the module there).
    Timeout,
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::Encode(e) => write!(f, "cannot encode the argument: {e}"),
            SpawnError::TooBig => f.write_str("argument larger than the limit"),
            SpawnError::Limit => f.write_str("process limit reached"),
            SpawnError::NoMemory => f.write_str("the host is out of memory"),
            SpawnError::Invalid => f.write_str("the host refused the spawn"),
            SpawnError::Denied => f.write_str(
                "not allowed to spawn by the process's capabilities (its set denies spawning: \
                 Caps::deny_spawn, a process limit of 0, or wisp run --max-processes 0)",
            ),
            SpawnError::Caps(e) => write!(f, "cannot build the child's capabilities: {e}"),
            SpawnError::Unreachable => f.write_str(
                "the node cannot be reached (no such node, it is down, or this runtime is no node: \
                 wisp run --name/--sname)",
            ),
            SpawnError::NodeRefused => f.write_str(
                "not allowed: this process may not spawn or use other nodes (its capabilities), or \
                 the node does not accept remote spawns (wisp run --allow-remote-spawn)",
            ),
            SpawnError::Timeout => f.write_str("the node did not answer the spawn in time"),
        }
    }
}
impl std::error::Error for SpawnError {}

/// As an `io::Error` (for `?` in functions returning `io::Result`): a
/// denial is `PermissionDenied`, a limit `OutOfMemory` or `Other`.
impl From<SpawnError> for std::io::Error {
    fn from(e: SpawnError) -> std::io::Error {
        use std::io::ErrorKind;
        let kind = match &e {
            SpawnError::Denied | SpawnError::Caps(CapsError::Denied) | SpawnError::NodeRefused => {
                ErrorKind::PermissionDenied
            }
            SpawnError::Unreachable => ErrorKind::NotConnected,
            SpawnError::Timeout => ErrorKind::TimedOut,
            SpawnError::NoMemory => ErrorKind::OutOfMemory,
            SpawnError::Encode(_) => ErrorKind::InvalidInput,
            _ => ErrorKind::Other,
        };
        std::io::Error::new(kind, e)
    }
}

impl From<CapsError> for SpawnError {
    fn from(e: CapsError) -> SpawnError {
        SpawnError::Caps(e)
    }
}

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
    // SAFETY: spawn_parts made `index` from a `fn(A, Mailbox<M>)` with the
    // A and M it instantiated this trampoline with, and wrote it into the
    // spawn argument, which only the spawner can set.
    let f: fn(A, Mailbox<M>) = unsafe { fn_at(index) };
    let arg: A = match codec::decode(&bytes[4..]) {
        Ok(a) => a,
        Err(e) => panic!("wisp: cannot decode the spawn argument: {e}"),
    };
    f(arg, Mailbox::new());
}

pub(crate) fn spawn_flags<A: Serialize + DeserializeOwned, M>(
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
    Ok(Pid::from_raw(spawn_flags(&arg, f, 0)?.pid).typed())
}

/// As [`spawn`], linked to the caller atomically.
pub fn spawn_link<A, M>(arg: A, f: fn(A, Mailbox<M>)) -> Result<Process<M>, SpawnError>
where
    A: Serialize + DeserializeOwned,
{
    Ok(Pid::from_raw(spawn_flags(&arg, f, sys::SPAWN_LINK)?.pid).typed())
}

/// As [`spawn`], monitored by the caller atomically: the child cannot end
/// unobserved.
pub fn spawn_monitor<A, M>(arg: A, f: fn(A, Mailbox<M>)) -> Result<(Process<M>, MonitorRef), SpawnError>
where
    A: Serialize + DeserializeOwned,
{
    let s = spawn_flags(&arg, f, sys::SPAWN_MONITOR)?;
    Ok((Pid::from_raw(s.pid).typed(), MonitorRef(s.monitor)))
}

fn spawn_caps<A: Serialize + DeserializeOwned, M>(
    caps: &Caps,
    arg: &A,
    f: fn(A, Mailbox<M>),
    flags: u32,
) -> Result<sys::Spawned, SpawnError> {
    let (entry, payload) = spawn_parts(arg, f)?;
    let len = u32::try_from(payload.len()).map_err(|_| SpawnError::TooBig)?;
    let mut out = sys::Spawned::default();
    let rc = unsafe { sys::spawn_with(caps.raw(), entry, payload.as_ptr(), len, flags, &mut out) };
    spawn_result(rc, out)
}

/// As [`spawn`](fn@crate::spawn), with the capability set `caps` instead of a
/// copy of the caller's. `caps` is frozen from then on and can start more
/// children.
pub fn spawn_with<A, M>(caps: &Caps, arg: A, f: fn(A, Mailbox<M>)) -> Result<Process<M>, SpawnError>
where
    A: Serialize + DeserializeOwned,
{
    Ok(Pid::from_raw(spawn_caps(caps, &arg, f, 0)?.pid).typed())
}

/// As [`spawn_with`], linked to the caller atomically.
pub fn spawn_link_with<A, M>(caps: &Caps, arg: A, f: fn(A, Mailbox<M>)) -> Result<Process<M>, SpawnError>
where
    A: Serialize + DeserializeOwned,
{
    Ok(Pid::from_raw(spawn_caps(caps, &arg, f, sys::SPAWN_LINK)?.pid).typed())
}

/// As [`spawn_with`], monitored by the caller atomically.
pub fn spawn_monitor_with<A, M>(
    caps: &Caps,
    arg: A,
    f: fn(A, Mailbox<M>),
) -> Result<(Process<M>, MonitorRef), SpawnError>
where
    A: Serialize + DeserializeOwned,
{
    let s = spawn_caps(caps, &arg, f, sys::SPAWN_MONITOR)?;
    Ok((Pid::from_raw(s.pid).typed(), MonitorRef(s.monitor)))
}

/// Spawn `f(arg, mailbox)` with no directories at all (everything else
/// inherited): `spawn_with(&Caps::inherit()?.drop_all_dirs()?, arg, f)`.
/// Errors building the set are [`SpawnError::Caps`].
pub fn spawn_without_fs<A, M>(arg: A, f: fn(A, Mailbox<M>)) -> Result<Process<M>, SpawnError>
where
    A: Serialize + DeserializeOwned,
{
    let caps = Caps::inherit()?.drop_all_dirs()?;
    spawn_with(&caps, arg, f)
}

/// The spawned side of [`spawn_with_stream`]: take the stream, then run
/// the user's function (its table index travels with the argument).
fn stream_entry<A: DeserializeOwned, M>((f, arg): (u32, A), mb: Mailbox<M>) {
    let Ok(stream) = mb.receive_stream(FOREVER) else { return };
    // SAFETY: spawn_with_stream made `f` from a `fn(A, TcpStream,
    // Mailbox<M>)` with the A and M it instantiated this function with, and
    // only it spawns this function.
    let f: fn(A, TcpStream, Mailbox<M>) = unsafe { fn_at(f) };
    f(arg, stream, mb)
}

/// Start `f(arg, stream, mailbox)` as a new process that owns `stream`
/// (moved to it; the caller loses it). The usual acceptor loop:
/// `for s in listener.incoming().flatten() { spawn_with_stream(s, (), handler)?; }`.
/// The process is not linked to the caller: a crashing connection handler
/// ends alone, its connection closes.
pub fn spawn_with_stream<A, M>(stream: TcpStream, arg: A, f: fn(A, TcpStream, Mailbox<M>)) -> Result<Process<M>, SpawnError>
where
    A: Serialize + DeserializeOwned,
{
    let p = spawn((f as usize as u32, arg), stream_entry::<A, M>)?;
    // Fails only if the host refuses a valid socket; the stream is closed then.
    let _ = p.send_stream(stream);
    Ok(p)
}

/// As [`spawn_with_stream`], linked to the caller.
pub fn spawn_link_with_stream<A, M>(
    stream: TcpStream,
    arg: A,
    f: fn(A, TcpStream, Mailbox<M>),
) -> Result<Process<M>, SpawnError>
where
    A: Serialize + DeserializeOwned,
{
    let p = spawn_link((f as usize as u32, arg), stream_entry::<A, M>)?;
    let _ = p.send_stream(stream);
    Ok(p)
}

/// The host calls this in every new process (see the module's docs). Not
/// for calling: it is public only so that the linker exports it.
#[doc(hidden)]
#[no_mangle]
pub extern "C" fn wisp_spawn_entry(entry: u32, arg_len: u32) {
    crate::process::install_panic_hook();
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
    // SAFETY: the spawner passed `entry` to sys::spawn; the crate's spawns
    // (spawn_raw) pass a trampoline's `fn(&[u8])` index, and sys::spawn's
    // own callers promise the same.
    let f: fn(&[u8]) = unsafe { fn_at(entry) };
    f(&buf[..n]);
}


// ---- spawn!: closures with captures ----

/// What [`spawn!`](crate::spawn!) can copy into a new process: any value
/// serde can serialize and deserialize. Implemented for every such type;
/// the trait exists to say so when a capture is not one.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be captured by spawn!: captures are serialized into the new process",
    label = "this capture is not serializable",
    note = "the new process is a separate instance of the module and shares no memory with this one: \
            a capture is copied there as bytes, so its type must implement serde's Serialize and \
            Deserialize (derive them), or pass something that does (a Process<M> handle, an id, ...)"
)]
pub trait Capture: Serialize + DeserializeOwned {}
impl<T: Serialize + DeserializeOwned> Capture for T {}

/// The check [`spawn!`](crate::spawn!) makes on each capture (a compile
/// error naming it if it is not [`Capture`]).
#[inline(always)]
pub fn assert_capture<T: Capture>(_: &T) {}

/// A tuple of references to captures, as [`spawn!`](crate::spawn!) passes
/// them; `Owned` is the tuple of values the new process decodes.
pub trait Captures: Serialize {
    /// The captures as values.
    type Owned: DeserializeOwned;
}

macro_rules! captures_tuple {
    ($($t:ident),*) => {
        impl<'a, $($t: Capture),*> Captures for ($(&'a $t,)*) {
            type Owned = ($($t,)*);
        }
    };
}
captures_tuple!();
captures_tuple!(A);
captures_tuple!(A, B);
captures_tuple!(A, B, C);
captures_tuple!(A, B, C, D);
captures_tuple!(A, B, C, D, E);
captures_tuple!(A, B, C, D, E, F);
captures_tuple!(A, B, C, D, E, F, G);
captures_tuple!(A, B, C, D, E, F, G, H);
captures_tuple!(A, B, C, D, E, F, G, H, I);
captures_tuple!(A, B, C, D, E, F, G, H, I, J);
captures_tuple!(A, B, C, D, E, F, G, H, I, J, K);
captures_tuple!(A, B, C, D, E, F, G, H, I, J, K, L);

/// The spawn entry and argument that start `f(captures, mailbox)`: the
/// captures are encoded from references and decoded as values, which
/// encode alike (serde serializes `&T` as `T`).
pub(crate) fn captured_parts<C: Captures, M>(captures: &C, f: fn(C::Owned, Mailbox<M>)) -> Result<(u32, Vec<u8>), SpawnError> {
    let payload = spawn_payload(f as usize, captures)?;
    let entry: fn(&[u8]) = trampoline::<C::Owned, M>;
    Ok((entry as usize as u32, payload))
}

fn spawn_captured_flags<C: Captures, M>(
    caps: Option<&Caps>,
    captures: &C,
    f: fn(C::Owned, Mailbox<M>),
    flags: u32,
) -> Result<sys::Spawned, SpawnError> {
    let (entry, payload) = captured_parts(captures, f)?;
    match caps {
        None => spawn_raw(entry, &payload, flags),
        Some(caps) => {
            let len = u32::try_from(payload.len()).map_err(|_| SpawnError::TooBig)?;
            let mut out = sys::Spawned::default();
            let rc = unsafe { sys::spawn_with(caps.raw(), entry, payload.as_ptr(), len, flags, &mut out) };
            spawn_result(rc, out)
        }
    }
}

/// What [`spawn!`](crate::spawn!) expands to: start `f(copies of the
/// captures, mailbox)` as a new process, with the capability set `caps`
/// (a copy of the caller's when `None`).
pub fn spawn_captured<C: Captures, M>(
    caps: Option<&Caps>,
    captures: &C,
    f: fn(C::Owned, Mailbox<M>),
) -> Result<Process<M>, SpawnError> {
    Ok(Pid::from_raw(spawn_captured_flags(caps, captures, f, 0)?.pid).typed())
}

/// What [`spawn_link!`](crate::spawn_link!) expands to: as
/// [`spawn_captured`], linked to the caller.
pub fn spawn_link_captured<C: Captures, M>(
    caps: Option<&Caps>,
    captures: &C,
    f: fn(C::Owned, Mailbox<M>),
) -> Result<Process<M>, SpawnError> {
    Ok(Pid::from_raw(spawn_captured_flags(caps, captures, f, sys::SPAWN_LINK)?.pid).typed())
}

/// What [`spawn_monitor!`](crate::spawn_monitor!) expands to: as
/// [`spawn_captured`], monitored by the caller.
pub fn spawn_monitor_captured<C: Captures, M>(
    caps: Option<&Caps>,
    captures: &C,
    f: fn(C::Owned, Mailbox<M>),
) -> Result<(Process<M>, MonitorRef), SpawnError> {
    let s = spawn_captured_flags(caps, captures, f, sys::SPAWN_MONITOR)?;
    Ok((Pid::from_raw(s.pid).typed(), MonitorRef(s.monitor)))
}
