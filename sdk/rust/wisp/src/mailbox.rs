//! Mailboxes: typed receive, selective receive by tag, signals as events,
//! sockets sent to this process, and waiting on a socket and the mailbox at
//! once.
//!
//! The queue lives in the host; a [`Mailbox`] is only a typed view of the
//! calling process's queue, so it costs nothing and holds no state. Typed
//! messages travel with tag [`TAG_MSG`](crate::TAG_MSG) and calls with
//! [`TAG_CALL`](crate::TAG_CALL): [`Mailbox::receive`] takes only the
//! former, so calls, exit signals and monitor notices stay queued until
//! asked for ([`Mailbox::receive_call`], [`Mailbox::receive_event`]).

use std::fmt;
use std::marker::PhantomData;
use std::os::fd::AsRawFd;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::codec::{Bincode, Codec, CodecError};
use crate::message::{self, decode_as, Envelope, Received, RecvError, ReplyTo};
use crate::process::{self_pid, ExitReason, MonitorRef, Pid, Process};
use crate::socket::{AnySocket, Socket, TcpListener, TcpStream, TAG_TCP_LISTENER};
use crate::sys;
use crate::time::{timeout_ns, FOREVER};

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
    /// [`Process::send_stream`]): the receiver owns it now. (A message
    /// that only looks like one — a 4-byte payload under a socket tag sent
    /// with `send_raw` — is an [`Event::Other`]: see
    /// [`receive_socket`](Mailbox::receive_socket).)
    Socket(AnySocket),
    /// A message with another tag ([`Pid::send_tagged`], replies that came
    /// after their call timed out, ...).
    Other(Envelope),
}

/// The calling process's mailbox, receiving messages of type `M` encoded
/// with the codec `C` ([`Bincode`] unless chosen: see
/// [`codec`](crate::codec)).
///
/// A spawned function gets one as its second argument; the main process
/// gets one from [`#[wisp::main]`](crate::main) or makes one with
/// [`Mailbox::new`].
///
/// ```
/// use std::time::Duration;
/// let mb = wisp::Mailbox::<u32>::new();
/// mb.process().send(&7);
/// assert_eq!(mb.receive_timeout(Duration::from_secs(1)), Ok(7));
/// assert_eq!(mb.try_receive(), Err(wisp::RecvError::Timeout));
/// ```
pub struct Mailbox<M, C = Bincode> {
    _msg: PhantomData<fn() -> (M, C)>,
}

impl<M, C> fmt::Debug for Mailbox<M, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mailbox({:?})", self_pid())
    }
}

impl<M, C> Default for Mailbox<M, C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M, C> Mailbox<M, C> {
    /// A view of the calling process's mailbox as one receiving `M`.
    pub fn new() -> Self {
        Mailbox { _msg: PhantomData }
    }

    /// The same mailbox viewed as receiving `N`.
    pub fn retype<N>(self) -> Mailbox<N, C> {
        Mailbox::new()
    }

    /// The same mailbox decoding with codec `D` (senders must encode with
    /// it: [`Process::with_codec`]).
    ///
    /// ```
    /// let mb = wisp::Mailbox::<Vec<u8>>::new().with_codec::<wisp::codec::Raw>();
    /// mb.process().send(&b"bytes as they are".to_vec());
    /// assert_eq!(mb.receive().unwrap(), b"bytes as they are");
    /// ```
    pub fn with_codec<D>(self) -> Mailbox<M, D> {
        Mailbox::new()
    }

    /// A handle on the calling process, typed by what this mailbox receives.
    pub fn process(&self) -> Process<M, C> {
        Process::from_pid(self_pid())
    }

    /// Selective receive: the oldest message whose tag is one of `tags`
    /// (any message if `tags` is empty), undecoded. Other messages stay
    /// queued in order. Exit signals have tag 0, monitor notices their
    /// monitor's ref.
    /// A socket that came with the message is closed (receive sockets with
    /// [`receive_socket`](Self::receive_socket) or
    /// [`receive_event`](Self::receive_event)).
    pub fn receive_matching(&self, tags: &[u64], timeout: Duration) -> Result<Envelope, RecvError> {
        message::receive_raw(tags, timeout_ns(timeout))
    }

    /// Selective receive of a value sent with [`Pid::send_tagged`] under `tag`.
    pub fn receive_tagged<T: DeserializeOwned>(&self, tag: u64, timeout: Duration) -> Result<T, RecvError> {
        decode_as(message::receive_raw(&[tag], timeout_ns(timeout))?)
    }
}

impl<M, C: Codec<M>> Mailbox<M, C> {
    /// Wait for the next message of type `M`. Other kinds of messages
    /// (calls, exit signals, monitor notices, other tags) stay queued.
    /// A message that does not decode is taken out and returned as
    /// [`RecvError::Decode`]; the process goes on.
    pub fn receive(&self) -> Result<M, RecvError> {
        self.receive_timeout(FOREVER)
    }

    /// As [`receive`](Self::receive), waiting at most `timeout`.
    pub fn receive_timeout(&self, timeout: Duration) -> Result<M, RecvError> {
        decode_with::<M, C>(message::receive_raw(&[crate::TAG_MSG], timeout_ns(timeout))?)
    }

    /// As [`receive`](Self::receive) without waiting: `Err(Timeout)` if no
    /// message is queued.
    pub fn try_receive(&self) -> Result<M, RecvError> {
        self.receive_timeout(Duration::ZERO)
    }

    /// Wait up to `timeout` for the next call ([`Process::call`]); answer
    /// it with the [`ReplyTo`]. A request that does not decode is answered
    /// with [`CallError::BadRequest`](crate::CallError::BadRequest) and returned as `RecvError::Decode`.
    pub fn receive_call(&self, timeout: Duration) -> Result<(M, ReplyTo), RecvError> {
        let env = message::receive_raw(&[crate::TAG_CALL], timeout_ns(timeout))?;
        decode_call::<M, C>(env)
    }

    /// Wait up to `timeout` for anything: messages, calls, exit signals,
    /// monitor notices, moved sockets, other tags, in arrival order.
    pub fn receive_event(&self, timeout: Duration) -> Result<Event<M>, RecvError> {
        event_of::<M, C>(message::receive(&[], timeout_ns(timeout))?)
    }
}

/// `env`'s payload decoded with `C`, or the envelope back in the error.
fn decode_with<M, C: Codec<M>>(mut env: Envelope) -> Result<M, RecvError> {
    match C::decode(std::mem::take(&mut env.bytes)) {
        Ok(m) => Ok(m),
        Err((error, bytes)) => {
            env.bytes = bytes;
            Err(RecvError::Decode { envelope: env, error })
        }
    }
}

fn decode_call<M, C: Codec<M>>(env: Envelope) -> Result<(M, ReplyTo), RecvError> {
    let reply = env.reply_to().unwrap_or(ReplyTo { pid: env.from, reference: 0 });
    decode_with::<M, C>(env).map(|m| (m, reply)).map_err(|e| {
        if let (RecvError::Decode { error, .. }, true) = (&e, reply.reference != 0) {
            reply.reply_bad_request(&error.0);
        }
        e
    })
}

/// A received message as an event: the socket it moved here, if it did.
pub(crate) fn event_of<M, C: Codec<M>>(r: Received) -> Result<Event<M>, RecvError> {
    let env = r.env;
    if let Some(fd) = r.socket {
        return Ok(Event::Socket(match env.tag {
            TAG_TCP_LISTENER => AnySocket::Listener(TcpListener::from(fd)),
            _ => AnySocket::Tcp(TcpStream::from(fd)),
        }));
    }
    match env.kind {
        sys::MSG_EXIT | sys::MSG_DOWN => {
            let reason = ExitReason::from_bytes(&env.bytes).unwrap_or(ExitReason::Trap("malformed exit reason".into()));
            Ok(if env.kind == sys::MSG_EXIT {
                Event::Exit { from: env.from, reason }
            } else {
                Event::Down { monitor: MonitorRef(env.tag), pid: env.from, reason }
            })
        }
        _ if env.tag == crate::TAG_MSG => decode_with::<M, C>(env).map(Event::Message),
        _ if env.tag == crate::TAG_CALL && env.reference != 0 => {
            decode_call::<M, C>(env).map(|(m, r)| Event::Call(m, r))
        }
        _ => Ok(Event::Other(env)),
    }
}

/// What [`Mailbox::receive_or_readable`] woke up for.
#[derive(Debug)]
pub enum Ready<M> {
    /// A message arrived (and was taken).
    Message(M),
    /// The socket has data to read, or its peer closed it (a read returns
    /// 0): a `read` now does not block.
    Readable,
}

impl<M, C> Mailbox<M, C> {
    /// Wait up to `timeout` for a socket of kind `S` sent to this process
    /// ([`Pid::send_socket`]); other messages stay queued.
    ///
    /// A message under `S`'s tag that did not carry a socket (another
    /// process can `send_raw` 4 bytes under any tag) is taken and returned
    /// as [`RecvError::Decode`]; its payload is never taken for an fd.
    pub fn receive_socket<S: Socket>(&self, timeout: Duration) -> Result<S, RecvError> {
        let r = message::receive(&[S::TAG], timeout_ns(timeout))?;
        match r.socket {
            Some(fd) => Ok(S::from(fd)),
            None => Err(RecvError::Decode { envelope: r.env, error: CodecError("not a socket message".into()) }),
        }
    }

    /// Wait up to `timeout` for a connection sent to this process
    /// ([`Process::send_stream`]); other messages stay queued.
    pub fn receive_stream(&self, timeout: Duration) -> Result<TcpStream, RecvError> {
        self.receive_socket(timeout)
    }

    /// Selective receive that also returns `Ok(None)`, taking no message,
    /// as soon as `socket` is readable (data, or the peer closed). As with
    /// [`receive_matching`](Self::receive_matching), a socket that came with
    /// the message is closed.
    pub fn receive_matching_or_readable(
        &self,
        tags: &[u64],
        socket: &impl AsRawFd,
        timeout: Duration,
    ) -> Result<Option<Envelope>, RecvError> {
        Ok(message::receive_or_readable(tags, socket.as_raw_fd(), timeout_ns(timeout))?.map(|r| r.env))
    }
}

impl<M, C: Codec<M>> Mailbox<M, C> {
    /// Wait up to `timeout` for the next message of type `M` *or* for
    /// `socket` to become readable, whichever comes first: one process
    /// serves its mailbox and a connection at once. After
    /// [`Ready::Readable`], one `read` does not block (beware of buffered
    /// readers: data they hold does not make the socket readable).
    pub fn receive_or_readable(&self, socket: &impl AsRawFd, timeout: Duration) -> Result<Ready<M>, RecvError> {
        match self.receive_matching_or_readable(&[crate::TAG_MSG], socket, timeout)? {
            None => Ok(Ready::Readable),
            Some(env) => decode_with::<M, C>(env).map(Ready::Message),
        }
    }
}
