//! Timers: sleeping and delayed messages. Timers live in the host: a
//! delayed message is sent even if its sender has ended.

use std::time::Duration;

use serde::{Deserialize, Serialize};


use crate::codec::Codec;
use crate::process::{check_send, len32, Process, SendError};
use crate::sys;
use crate::time::{sleep_ns, timeout_ns};

/// Park the calling process for at least `d` (other processes run);
/// [`FOREVER`](crate::FOREVER) never returns. Messages arriving meanwhile
/// do not end the sleep.
pub fn sleep(d: Duration) {
    unsafe { sys::sleep(sleep_ns(d)) }
}

/// A pending delayed message; any process holding it may cancel it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TimerRef(u64);

impl TimerRef {
    /// Cancel the timer: true if it had not fired (its message will not be
    /// delivered), false if it had fired or was cancelled already.
    pub fn cancel(self) -> bool {
        unsafe { sys::cancel(self.0) == sys::OK }
    }
}

/// Send `msg` to `to` after `delay`, as if the caller sent it then. The
/// message is encoded now.
pub fn send_after<M, C: Codec<M>>(to: Process<M, C>, msg: &M, delay: Duration) -> Result<TimerRef, SendError> {
    let bytes = C::encode(msg).map_err(SendError::Encode)?;
    let mut t = 0u64;
    let rc = unsafe {
        sys::send_after(to.pid().raw(), crate::TAG_MSG, bytes.as_ptr(), len32(bytes.len())?, timeout_ns(delay), &mut t)
    };
    check_send(rc)?;
    Ok(TimerRef(t))
}
