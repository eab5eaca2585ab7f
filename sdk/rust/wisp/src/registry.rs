//! The name registry: one per run, shared by all processes. A process's
//! names vanish when it ends.

use std::fmt;

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
