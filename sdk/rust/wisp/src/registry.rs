//! The name registry: one per run, shared by all processes. A process's
//! names vanish when it ends.
//!
//! Names can be typed: a [`Name<T>`] registers and finds a `T` (a
//! `Process<M>`, a `ServerRef<S>`, a `SupervisorRef`), so what comes back
//! from [`Name::whereis`] is a handle of the right type.
//!
//! ```
//! use wisp::registry::Name;
//! use wisp::{Mailbox, Process};
//!
//! const LOGGER: Name<Process<String>> = Name::new("logger");
//!
//! let mb = Mailbox::<String>::new();
//! LOGGER.register(&mb.process()).unwrap();
//! LOGGER.whereis().unwrap().send(&"hello".to_string());
//! assert_eq!(mb.receive().unwrap(), "hello");
//! ```

use std::fmt;
use std::marker::PhantomData;

use crate::process::{Pid, Process};
use crate::sys;

/// Why a registry call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistryError {
    /// The name is taken.
    Taken,
    /// The process is dead.
    NoProc,
    /// No such name.
    NotFound,
    /// The name is empty or longer than 255 bytes.
    BadName,
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RegistryError::Taken => "name already registered",
            RegistryError::NoProc => "no such process",
            RegistryError::NotFound => "no such name",
            RegistryError::BadName => "names are 1 to 255 bytes",
        })
    }
}
impl std::error::Error for RegistryError {}

fn err(rc: i32) -> Result<(), RegistryError> {
    match rc {
        sys::OK => Ok(()),
        sys::EEXIST => Err(RegistryError::Taken),
        sys::ENOPROC => Err(RegistryError::NoProc),
        sys::ENOTFOUND => Err(RegistryError::NotFound),
        _ => Err(RegistryError::BadName),
    }
}

/// Bind `name` to a live process (any, not only the caller).
pub fn register<M>(name: &str, process: Process<M>) -> Result<(), RegistryError> {
    err(unsafe { sys::register(name.as_ptr(), name.len() as u32, process.pid().raw()) })
}

/// Remove a name.
pub fn unregister(name: &str) -> Result<(), RegistryError> {
    err(unsafe { sys::unregister(name.as_ptr(), name.len() as u32) })
}

/// The process registered as `name`, as a handle accepting `M` (nothing
/// checks the type: a message it cannot decode reaches it as a decode
/// error).
pub fn whereis<M>(name: &str) -> Option<Process<M>> {
    whereis_pid(name).map(Pid::typed)
}

/// The pid registered as `name`.
pub fn whereis_pid(name: &str) -> Option<Pid> {
    let mut pid = 0u64;
    let rc = unsafe { sys::whereis(name.as_ptr(), name.len() as u32, &mut pid) };
    (rc == sys::OK && pid != 0).then(|| Pid::from_raw(pid))
}

/// A handle that can be registered under a [`Name`]: it is a pid with a
/// type.
pub trait Named {
    /// The process it names.
    fn pid(&self) -> Pid;
    /// The handle on `pid` (nothing checks the process is of this kind).
    fn from_pid(pid: Pid) -> Self;
}

impl Named for Pid {
    fn pid(&self) -> Pid {
        *self
    }
    fn from_pid(pid: Pid) -> Self {
        pid
    }
}

impl<M, C> Named for Process<M, C> {
    fn pid(&self) -> Pid {
        Process::pid(self)
    }
    fn from_pid(pid: Pid) -> Self {
        Process::from_pid(pid)
    }
}

/// A registered name for handles of type `T`: `const KV: Name<ServerRef<Kv>>
/// = Name::new("kv");` then `KV.register(&kv)` and `KV.whereis()`.
pub struct Name<T> {
    name: &'static str,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for Name<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Name<T> {}
impl<T> fmt::Debug for Name<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({:?})", self.name)
    }
}

impl<T: Named> Name<T> {
    /// A name (1 to 255 bytes, checked when used).
    pub const fn new(name: &'static str) -> Self {
        Name { name, _t: PhantomData }
    }

    /// The name's text.
    pub const fn as_str(&self) -> &'static str {
        self.name
    }

    /// Bind the name to `handle`'s process.
    pub fn register(&self, handle: &T) -> Result<(), RegistryError> {
        err(unsafe { sys::register(self.name.as_ptr(), self.name.len() as u32, handle.pid().raw()) })
    }

    /// Remove the name.
    pub fn unregister(&self) -> Result<(), RegistryError> {
        unregister(self.name)
    }

    /// The handle registered under the name, if any.
    pub fn whereis(&self) -> Option<T> {
        whereis_pid(self.name).map(T::from_pid)
    }
}
