//! Capabilities: what a child process may do.
//!
//! Every process runs with a capability set: its directories (and which are
//! read-only), environment, stdio, network rules, whether it may spawn or
//! build sets, and its limits (memory, CPU, message size, processes). The
//! main process gets the set `wisp run` was given (`--dir`, `--env`,
//! `--allow-connect`, `--max-memory`, ...; see the repository's
//! `docs/security.md`); a child spawned with [`spawn`](fn@crate::spawn) gets
//! a copy of its parent's.
//!
//! [`Caps`] builds a *smaller* set for a child, following the host's rules:
//! it starts as a copy of the caller's own ([`Caps::inherit`]) and every
//! method only removes or lowers. A call that would widen (giving back a
//! stdio stream that was closed) is refused with [`CapsError::Widen`];
//! nothing is silently ignored. Limits become `min(current, value)`: asking
//! for more than the caller has keeps the caller's. Spawn with
//! [`spawn_with`](crate::spawn_with), [`spawn_link_with`](crate::spawn_link_with)
//! or [`spawn_monitor_with`](crate::spawn_monitor_with); the set is
//! frozen from then on ([`CapsError::Frozen`]), and can start more children.
//!
//! ```no_run
//! use wisp::{Caps, Mailbox, Stdio};
//!
//! fn untrusted(job: String, _mb: Mailbox<()>) { /* ... */ }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let caps = Caps::inherit()?
//!     .drop_all_dirs()?
//!     .drop_network()?
//!     .clear_env()?
//!     .stdin(Stdio::Closed)?
//!     .max_memory(16 << 20)?        // bytes of linear memory
//!     .max_cpu(50_000_000)?         // reductions over its lifetime
//!     .deny_spawn()?;
//! let child = wisp::spawn_with(&caps, "job 1".to_string(), untrusted)?;
//! # Ok(()) }
//! ```
//!
//! A child killed by its CPU limit ends with
//! [`ExitReason::Limit`](crate::ExitReason::Limit)`("cpu limit")`; beyond
//! its memory limit allocation fails (`Vec::try_reserve` returns an error;
//! an ordinary allocation aborts, which ends the child with a `Trap`).

use std::fmt;

use crate::sys;

/// Why a [`Caps`] call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapsError {
    /// The call would give the child more than the set has (`EPERM`), e.g.
    /// stdio back from `Closed` to `Null`.
    Widen,
    /// The caller may not build capability sets ([`Caps::deny_caps`] in its
    /// own set).
    Denied,
    /// The set was used to spawn and can no longer change (`EINVAL`).
    Frozen,
    /// No directory with that guest path in the set (`ENOTFOUND`).
    NoSuchDir,
    /// The caller has 16 sets open already (`ELIMIT`).
    TooManySets,
    /// Any other code from the host.
    Host(i32),
}

impl fmt::Display for CapsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CapsError::Widen => f.write_str("that would widen the capability set"),
            CapsError::Denied => {
                f.write_str("not allowed to build capability sets by the process's capabilities (Caps::deny_caps)")
            }
            CapsError::Frozen => f.write_str("the capability set is in use and cannot change"),
            CapsError::NoSuchDir => f.write_str("no such directory in the capability set"),
            CapsError::TooManySets => f.write_str("too many capability sets open (16)"),
            CapsError::Host(rc) => write!(f, "the host refused (code {rc})"),
        }
    }
}
impl std::error::Error for CapsError {}

/// As an `io::Error`: a denial (`Denied`, `Widen`) is `PermissionDenied`.
impl From<CapsError> for std::io::Error {
    fn from(e: CapsError) -> std::io::Error {
        let kind = match e {
            CapsError::Denied | CapsError::Widen => std::io::ErrorKind::PermissionDenied,
            CapsError::NoSuchDir => std::io::ErrorKind::NotFound,
            _ => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, e)
    }
}

fn check(rc: i32) -> Result<(), CapsError> {
    match rc {
        sys::OK => Ok(()),
        sys::EPERM => Err(CapsError::Widen),
        sys::EINVAL => Err(CapsError::Frozen),
        sys::ENOTFOUND => Err(CapsError::NoSuchDir),
        sys::ELIMIT => Err(CapsError::TooManySets),
        rc => Err(CapsError::Host(rc)),
    }
}

/// What a child's standard stream (stdin, stdout, stderr) is. A stream
/// goes only `Inherit` → `Null` → `Closed`, never back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdio {
    /// The parent's stream (only valid while it still is).
    Inherit,
    /// Reads see end-of-file, writes are discarded.
    Null,
    /// No such file descriptor.
    Closed,
}

/// A capability set for children: a handle to a copy of the caller's own
/// set, narrowed by its methods (see the [module docs](self)). Each method
/// consumes and returns the set so calls chain with `?`. Dropping it frees
/// the handle; children spawned with it keep their capabilities.
///
/// Handles belong to the process that made them: a `Caps` is neither
/// `Send`-able to another process nor serializable.
#[derive(Debug)]
pub struct Caps {
    handle: i32,
}

impl Caps {
    /// A copy of the caller's own capability set.
    ///
    /// Errors: [`CapsError::Denied`] if the caller may not build sets,
    /// [`CapsError::TooManySets`] with 16 open.
    pub fn inherit() -> Result<Caps, CapsError> {
        let mut handle = -1;
        match unsafe { sys::caps_new(&mut handle) } {
            sys::OK => Ok(Caps { handle }),
            sys::EPERM => Err(CapsError::Denied),
            rc => Err(check(rc).unwrap_err()),
        }
    }

    /// The raw handle (for [`sys`]).
    pub fn raw(&self) -> i32 {
        self.handle
    }

    fn done(self, rc: i32) -> Result<Caps, CapsError> {
        check(rc).map(|()| self)
    }

    /// Drop the directory the child would see as `guest` (e.g. `"/data"`).
    /// [`CapsError::NoSuchDir`] if there is none.
    pub fn drop_dir(self, guest: &str) -> Result<Caps, CapsError> {
        if guest.is_empty() {
            return Err(CapsError::NoSuchDir); // an empty path would mean "all"
        }
        let rc = unsafe { sys::caps_drop_dir(self.handle, guest.as_ptr(), guest.len() as u32) };
        self.done(rc)
    }

    /// Drop every directory: the child has no file system at all.
    pub fn drop_all_dirs(self) -> Result<Caps, CapsError> {
        let rc = unsafe { sys::caps_drop_dir(self.handle, std::ptr::null(), 0) };
        self.done(rc)
    }

    /// Make the directory the child would see as `guest` read-only.
    pub fn read_only(self, guest: &str) -> Result<Caps, CapsError> {
        if guest.is_empty() {
            return Err(CapsError::NoSuchDir);
        }
        let rc = unsafe { sys::caps_read_only(self.handle, guest.as_ptr(), guest.len() as u32) };
        self.done(rc)
    }

    /// Make every directory read-only.
    pub fn read_only_all(self) -> Result<Caps, CapsError> {
        let rc = unsafe { sys::caps_read_only(self.handle, std::ptr::null(), 0) };
        self.done(rc)
    }

    /// An empty environment.
    pub fn clear_env(self) -> Result<Caps, CapsError> {
        let rc = unsafe { sys::caps_clear_env(self.handle) };
        self.done(rc)
    }

    fn stdio(self, fd: u32, s: Stdio) -> Result<Caps, CapsError> {
        let mode = match s {
            Stdio::Inherit => sys::STDIO_INHERIT,
            Stdio::Null => sys::STDIO_NULL,
            Stdio::Closed => sys::STDIO_CLOSED,
        };
        let rc = unsafe { sys::caps_set_stdio(self.handle, fd, mode) };
        self.done(rc)
    }

    /// The child's stdin; going back towards `Inherit` is [`CapsError::Widen`].
    pub fn stdin(self, s: Stdio) -> Result<Caps, CapsError> {
        self.stdio(0, s)
    }

    /// The child's stdout; going back towards `Inherit` is [`CapsError::Widen`].
    pub fn stdout(self, s: Stdio) -> Result<Caps, CapsError> {
        self.stdio(1, s)
    }

    /// The child's stderr; going back towards `Inherit` is [`CapsError::Widen`].
    pub fn stderr(self, s: Stdio) -> Result<Caps, CapsError> {
        self.stdio(2, s)
    }

    /// No network: no connect, listen, UDP or DNS.
    pub fn drop_network(self) -> Result<Caps, CapsError> {
        let rc = unsafe { sys::caps_drop_network(self.handle) };
        self.done(rc)
    }

    fn limit(self, which: u32, value: u64) -> Result<Caps, CapsError> {
        let rc = unsafe { sys::caps_limit(self.handle, which, value) };
        self.done(rc)
    }

    /// At most `bytes` of linear memory (min with the current limit); beyond
    /// it, growing memory fails. It must leave room for the module's initial
    /// memory (a Rust module starts with about 1.1 MiB: its 1 MiB stack and
    /// data), or the child ends at once with a `Trap` ("initial memory
    /// exceeds the memory limit").
    pub fn max_memory(self, bytes: u64) -> Result<Caps, CapsError> {
        self.limit(sys::LIMIT_MEMORY, bytes)
    }

    /// At most `reductions` of work over the child's lifetime (min with the
    /// current limit): a reduction is about a loop iteration (see
    /// `docs/security.md`). Beyond it the child ends with
    /// [`ExitReason::Limit`](crate::ExitReason::Limit)`("cpu limit")`.
    pub fn max_cpu(self, reductions: u64) -> Result<Caps, CapsError> {
        self.limit(sys::LIMIT_CPU, reductions)
    }

    /// Messages (and spawn arguments) of at most `bytes` (min with the
    /// current limit); larger sends fail with `TooBig`.
    pub fn max_message(self, bytes: u64) -> Result<Caps, CapsError> {
        self.limit(sys::LIMIT_MESSAGE, bytes)
    }

    /// At most `n` live processes spawned under this set (the child and its
    /// descendants; min with the current limit); 0: the child may not spawn.
    pub fn max_processes(self, n: u64) -> Result<Caps, CapsError> {
        self.limit(sys::LIMIT_PROCESSES, n)
    }

    /// The child may not spawn (its spawns fail with [`SpawnError::Denied`](crate::SpawnError::Denied)).
    pub fn deny_spawn(self) -> Result<Caps, CapsError> {
        let rc = unsafe { sys::caps_deny(self.handle, sys::DENY_SPAWN) };
        self.done(rc)
    }

    /// The child may not build capability sets ([`Caps::inherit`] fails
    /// with [`CapsError::Denied`]).
    pub fn deny_caps(self) -> Result<Caps, CapsError> {
        let rc = unsafe { sys::caps_deny(self.handle, sys::DENY_CAPS) };
        self.done(rc)
    }

    /// The child may not use other nodes: connect to them, send to names
    /// there, spawn there ([`node`](crate::node) calls fail with
    /// `Denied`/[`SpawnError::NodeRefused`](crate::SpawnError::NodeRefused)),
    /// nor send, link or monitor across them (to a pid of another node it
    /// was given: refused as denied).
    pub fn deny_nodes(self) -> Result<Caps, CapsError> {
        let rc = unsafe { sys::caps_deny(self.handle, sys::DENY_NODES) };
        self.done(rc)
    }

    /// The child may not load new versions of the program
    /// ([`code::load`](crate::code::load) fails with
    /// [`LoadError::Denied`](crate::code::LoadError::Denied)). Moving onto a
    /// version someone else loaded still works.
    pub fn deny_code(self) -> Result<Caps, CapsError> {
        let rc = unsafe { sys::caps_deny(self.handle, sys::DENY_CODE) };
        self.done(rc)
    }
}

impl Drop for Caps {
    fn drop(&mut self) {
        unsafe { sys::caps_free(self.handle) };
    }
}
