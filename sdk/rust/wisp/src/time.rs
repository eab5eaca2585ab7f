//! Timeouts: the one way the crate spells them.
//!
//! Every call that waits with a limit — receiving, calling, accepting,
//! connecting, reading, writing — takes a [`Duration`]; [`FOREVER`] (or any
//! duration beyond 2^63 ns, about 292 years) means no limit, and
//! `Duration::ZERO` polls. The socket setters that mirror std's
//! (`TcpStream::set_read_timeout`, ...) take `Option<Duration>` as std's do,
//! `None` meaning [`FOREVER`]. The host gets nanoseconds, negative for
//! "forever" (`sys::INFINITY`); the conversion is here and nowhere else.

use std::time::Duration;

use crate::sys;

/// Wait without a limit.
pub const FOREVER: Duration = Duration::MAX;

/// A limit for the host: nanoseconds, or [`sys::INFINITY`] beyond 2^63 ns.
pub(crate) fn timeout_ns(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(sys::INFINITY)
}

/// An optional limit (std's setters): `None` is [`FOREVER`].
pub(crate) fn optional_timeout_ns(d: Option<Duration>) -> i64 {
    timeout_ns(d.unwrap_or(FOREVER))
}

/// A duration to sleep for: the host's sleep returns at once for a
/// negative value, so "forever" is the longest sleep it can express.
pub(crate) fn sleep_ns(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}
