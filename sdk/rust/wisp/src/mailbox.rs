//! Mailboxes: typed receive, selective receive by tag, signals as events,
//! and request/reply.
//!
//! The queue lives in the host; a [`Mailbox`] is only a typed view of the
//! calling process's queue, so it costs nothing and holds no state. Typed
//! messages travel with tag [`TAG_MSG`](crate::TAG_MSG) and calls with
//! [`TAG_CALL`](crate::TAG_CALL): [`Mailbox::receive`] takes only the
//! former, so calls, exit signals and monitor notices stay queued until
//! asked for ([`Mailbox::receive_call`], [`Mailbox::receive_event`]).

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::codec::{self, CodecError};
use crate::process::{len32, CallError, ExitReason, MonitorRef, Pid, Process, SendError};
use crate::sys;

/// Wait without a limit (a `Duration` of more than 2^63 ns means forever).
pub const FOREVER: Duration = Duration::MAX;

pub(crate) fn timeout_ns(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(sys::INFINITY)
}

/// A message as the host delivered it, not yet decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The sender's tag (DATA), the monitor ref (DOWN), 0 (EXIT).
    pub tag: u64,
    /// The sender, or the process that ended.
    pub from: Pid,
    /// Nonzero for a request: reply with [`Envelope::reply_to`].
    pub reference: u64,
    /// `sys::MSG_DATA`, `MSG_EXIT` or `MSG_DOWN`.
    pub kind: u32,
    /// The payload.
    pub bytes: Vec<u8>,
}

impl Envelope {
    /// Decode the payload as a `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, CodecError> {
        codec::decode(&self.bytes)
    }

    /// Where to send the reply, for a request.
    pub fn reply_to(&self) -> Option<ReplyTo> {
        (self.reference != 0).then_some(ReplyTo { pid: self.from, reference: self.reference })
    }
}

/// Why a receive returned no message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecvError {
    /// Nothing arrived within the timeout (or nothing was queued, for a poll).
    Timeout,
    /// A message arrived but did not decode as the expected type. It has
    /// been taken out of the mailbox; `envelope` holds its bytes.
    Decode {
        /// The message.
        envelope: Envelope,
        /// What the decoder said.
        error: CodecError,
    },
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Timeout => f.write_str("receive timed out"),
            RecvError::Decode { envelope, error } => {
                write!(f, "cannot decode a message from {:?} (tag {}): {}", envelope.from, envelope.tag, error)
            }
        }
    }
}
impl std::error::Error for RecvError {}

/// Where to send the reply to a call. Serializable: it may be handed to
/// another process, which then replies instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyTo {
    /// The caller.
    pub pid: Pid,
    /// The request's ref: the reply's tag.
    pub reference: u64,
}

const REPLY_OK: u8 = 0;
const REPLY_BAD_REQUEST: u8 = 1;

impl ReplyTo {
    /// Send the reply (the caller's `call` returns it). Replying to a caller
    /// that gave up or died is not an error.
    pub fn reply<R: Serialize + ?Sized>(self, value: &R) -> Result<(), SendError> {
        let mut bytes = vec![REPLY_OK];
        codec::encode_into(&mut bytes, value).map_err(SendError::Encode)?;
        self.pid.send_raw(self.reference, &bytes)
    }

    /// Tell the caller its request could not be decoded
    /// ([`CallError::BadRequest`]).
    pub fn reply_bad_request(self, why: &str) {
        let mut bytes = vec![REPLY_BAD_REQUEST];
        bytes.extend_from_slice(why.as_bytes());
        let _ = self.pid.send_raw(self.reference, &bytes);
    }
}

/// Anything a process can receive, decoded.
#[derive(Debug)]
pub enum Event<M> {
    /// A typed message ([`Process::send`]).
    Message(M),
    /// A typed request ([`Process::call`]): answer with `reply`.
    Call(M, ReplyTo),
    /// A linked process ended, or someone sent an exit signal, while the
    /// caller traps exits ([`trap_exits`](crate::trap_exits)).
    Exit {
        /// Who.
        from: Pid,
        /// Why.
        reason: ExitReason,
    },
    /// A monitored process ended.
    Down {
        /// The monitor's ref.
        monitor: MonitorRef,
        /// Who.
        pid: Pid,
        /// Why.
        reason: ExitReason,
    },
    /// A socket another process moved here ([`Pid::send_socket`],
    /// [`Process::send_stream`](crate::Process::send_stream)): the
    /// receiver owns it now.
    Socket(crate::net::AnySocket),
    /// A message with another tag ([`Pid::send_tagged`], replies that came
    /// after their call timed out, ...).
    Other(Envelope),
}

/// Receive the oldest message matching `tags` (any if empty), waiting up to
/// `timeout_ns`. Payloads of up to 256 bytes are received on the stack.
pub(crate) fn receive_raw(tags: &[u64], timeout_ns: i64) -> Result<Envelope, RecvError> {
    let mut small = [0u8; 256];
    let mut info = sys::MsgInfo::default();
    let rc = unsafe {
        sys::receive(tags.as_ptr(), tags.len() as u32, timeout_ns, small.as_mut_ptr(), small.len() as u32, &mut info)
    };
    let bytes = match rc {
        sys::OK => small[..info.len as usize].to_vec(),
        sys::ETOOSMALL => {
            // The message stays queued and is still the oldest match.
            let mut big = vec![0u8; info.len as usize];
            let rc = unsafe {
                sys::receive(tags.as_ptr(), tags.len() as u32, sys::NOWAIT, big.as_mut_ptr(), info.len, &mut info)
            };
            assert_eq!(rc, sys::OK, "wisp: a message vanished from the mailbox");
            big.truncate(info.len as usize);
            big
        }
        sys::ETIMEDOUT => return Err(RecvError::Timeout),
        rc => panic!("wisp: receive failed with code {rc}"),
    };
    Ok(Envelope { tag: info.tag, from: Pid::from_raw(info.from), reference: info.reference, kind: info.kind, bytes })
}

fn decode_as<T: DeserializeOwned>(env: Envelope) -> Result<T, RecvError> {
    match codec::decode(&env.bytes) {
        Ok(v) => Ok(v),
        Err(error) => Err(RecvError::Decode { envelope: env, error }),
    }
}

/// The calling process's mailbox, receiving messages of type `M`.
///
/// A spawned function gets one as its second argument; the main process
/// makes one with [`Mailbox::new`].
pub struct Mailbox<M> {
    _msg: PhantomData<fn() -> M>,
}

impl<M> fmt::Debug for Mailbox<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mailbox({:?})", crate::self_pid())
    }
}

impl<M> Default for Mailbox<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M> Mailbox<M> {
    /// A view of the calling process's mailbox as one receiving `M`.
    pub fn new() -> Self {
        Mailbox { _msg: PhantomData }
    }

    /// The same mailbox viewed as receiving `N`.
    pub fn retype<N>(self) -> Mailbox<N> {
        Mailbox::new()
    }

    /// A handle on the calling process, typed by what this mailbox receives.
    pub fn process(&self) -> Process<M> {
        crate::self_pid().typed()
    }

    /// Selective receive: the oldest message whose tag is one of `tags`
    /// (any message if `tags` is empty), undecoded. Other messages stay
    /// queued in order. Exit signals have tag 0, monitor notices their
    /// monitor's ref.
    pub fn receive_matching(&self, tags: &[u64], timeout: Duration) -> Result<Envelope, RecvError> {
        receive_raw(tags, timeout_ns(timeout))
    }

    /// Selective receive of a value sent with [`Pid::send_tagged`] under `tag`.
    pub fn receive_tagged<T: DeserializeOwned>(&self, tag: u64, timeout: Duration) -> Result<T, RecvError> {
        decode_as(receive_raw(&[tag], timeout_ns(timeout))?)
    }
}

impl<M: DeserializeOwned> Mailbox<M> {
    /// Wait for the next message of type `M`. Other kinds of messages
    /// (calls, exit signals, monitor notices, other tags) stay queued.
    /// A message that does not decode is taken out and returned as
    /// [`RecvError::Decode`]; the process goes on.
    pub fn receive(&self) -> Result<M, RecvError> {
        self.receive_timeout(FOREVER)
    }

    /// As [`receive`](Self::receive), waiting at most `timeout`.
    pub fn receive_timeout(&self, timeout: Duration) -> Result<M, RecvError> {
        decode_as(receive_raw(&[crate::TAG_MSG], timeout_ns(timeout))?)
    }

    /// As [`receive`](Self::receive) without waiting: `Err(Timeout)` if no
    /// message is queued.
    pub fn try_receive(&self) -> Result<M, RecvError> {
        self.receive_timeout(Duration::ZERO)
    }

    /// Wait up to `timeout` for the next call ([`Process::call`]); answer
    /// it with the [`ReplyTo`]. A request that does not decode is answered
    /// with [`CallError::BadRequest`] and returned as `RecvError::Decode`.
    pub fn receive_call(&self, timeout: Duration) -> Result<(M, ReplyTo), RecvError> {
        let env = receive_raw(&[crate::TAG_CALL], timeout_ns(timeout))?;
        decode_call(env)
    }

    /// Wait up to `timeout` for anything: messages, calls, exit signals,
    /// monitor notices, other tags, in arrival order.
    pub fn receive_event(&self, timeout: Duration) -> Result<Event<M>, RecvError> {
        let env = receive_raw(&[], timeout_ns(timeout))?;
        event_of(env)
    }
}

fn decode_call<M: DeserializeOwned>(env: Envelope) -> Result<(M, ReplyTo), RecvError> {
    let reply = env.reply_to().unwrap_or(ReplyTo { pid: env.from, reference: 0 });
    match codec::decode(&env.bytes) {
        Ok(m) => Ok((m, reply)),
        Err(error) => {
            if reply.reference != 0 {
                reply.reply_bad_request(&error.0);
            }
            Err(RecvError::Decode { envelope: env, error })
        }
    }
}

pub(crate) fn event_of<M: DeserializeOwned>(env: Envelope) -> Result<Event<M>, RecvError> {
    match env.kind {
        sys::MSG_EXIT | sys::MSG_DOWN => {
            let reason = ExitReason::from_bytes(&env.bytes).unwrap_or(ExitReason::Trap("malformed exit reason".into()));
            Ok(if env.kind == sys::MSG_EXIT {
                Event::Exit { from: env.from, reason }
            } else {
                Event::Down { monitor: MonitorRef(env.tag), pid: env.from, reason }
            })
        }
        _ if env.tag == crate::TAG_MSG => decode_as(env).map(Event::Message),
        _ if env.tag == crate::TAG_CALL && env.reference != 0 => {
            decode_call(env).map(|(m, r)| Event::Call(m, r))
        }
        _ => Ok(match crate::net::socket_of(&env) {
            Some(s) => Event::Socket(s),
            None => Event::Other(env),
        }),
    }
}

/// Send `msg` as a request with `tag` to `pid` and wait for the reply.
pub(crate) fn call_tagged<T: Serialize + ?Sized, R: DeserializeOwned>(
    pid: Pid,
    tag: u64,
    msg: &T,
    timeout: Duration,
) -> Result<R, CallError> {
    let bytes = codec::encode(msg).map_err(|e| CallError::Send(SendError::Encode(e)))?;
    let len = len32(bytes.len()).map_err(CallError::Send)?;
    let mut small = [0u8; 256];
    let mut info = sys::MsgInfo::default();
    let rc = unsafe {
        sys::request(pid.raw(), tag, bytes.as_ptr(), len, timeout_ns(timeout), small.as_mut_ptr(), small.len() as u32, &mut info)
    };
    let reply = match rc {
        sys::OK => small[..info.len as usize].to_vec(),
        sys::ETOOSMALL => receive_raw(&[info.tag], sys::NOWAIT).map_err(|_| CallError::Timeout)?.bytes,
        sys::ENOPROC => return Err(CallError::NoProc),
        sys::ETIMEDOUT => return Err(CallError::Timeout),
        sys::EINVAL => return Err(CallError::SelfCall),
        sys::ETOOBIG => return Err(CallError::Send(SendError::TooBig)),
        _ => return Err(CallError::Send(SendError::NoMemory)),
    };
    match reply.split_first() {
        Some((&REPLY_OK, rest)) => codec::decode(rest).map_err(CallError::Decode),
        Some((&REPLY_BAD_REQUEST, rest)) => Err(CallError::BadRequest(String::from_utf8_lossy(rest).into_owned())),
        _ => Err(CallError::Decode(CodecError("malformed reply".into()))),
    }
}
