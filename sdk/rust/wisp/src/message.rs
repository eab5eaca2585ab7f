//! Messages as the host delivers them: envelopes, replies, and the raw
//! receive every typed receive is built on — including telling a socket
//! that really moved here from a message that only looks like one.
//!
//! # Moved sockets
//!
//! The host moves a socket with a `DATA` message whose 4-byte payload is
//! the socket's fd in the receiver's table, installed when the message is
//! received. Nothing in `wisp_msg_info` marks such a message: any process
//! can `send` 4 bytes under the same tag and name an fd the receiver
//! already owns (its listener, a file), and a receiver that believed it
//! would close that fd when the "socket" is dropped. So the payload is
//! never believed. What is believed is the host's allocation rule (the
//! lowest free fd, as POSIX does; docs/abi.md, `send_fd`): a receive that
//! may take a message under a socket tag first finds the lowest free fd;
//! the message carried a socket only if its payload names exactly that fd
//! and that fd is open after the receive — the host installed it during
//! the call, since nothing else runs in this process meanwhile. A forged
//! payload naming an open fd names one below the floor; one naming the
//! floor finds it still free.
//!
//! The price is a host call per open fd below the lowest free one, with no
//! system call, before receives that can take any tag or a socket tag;
//! receives by other tags (typed messages, calls, replies) pay nothing.
//! A host that marked socket messages itself (a flag in `wisp_msg_info`)
//! would make the probe unnecessary.

use std::fmt;
use std::os::fd::{FromRawFd, OwnedFd};

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::codec::{self, CodecError};
use crate::process::{Pid, SendError, REPLY_BAD_REQUEST, REPLY_NONE, REPLY_OK};
use crate::socket::{TAG_TCP_LISTENER, TAG_TCP_STREAM};
use crate::sys;

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

impl ReplyTo {
    /// Send the reply (the caller's `call` returns it). Replying to a caller
    /// that gave up or died is not an error.
    pub fn reply<R: Serialize + ?Sized>(self, value: &R) -> Result<(), SendError> {
        let mut bytes = vec![REPLY_OK];
        codec::encode_into(&mut bytes, value).map_err(SendError::Encode)?;
        self.pid.send_raw(self.reference, &bytes)
    }

    /// As [`reply`](Self::reply), but a reply this process has not the
    /// memory to encode is [`SendError::NoMemory`] rather than the
    /// process's end: its size is counted first, and its buffer allocated
    /// fallibly. For a reply whose size the caller's request decides (a
    /// file, a whole tree).
    pub(crate) fn try_reply<R: Serialize + ?Sized>(self, value: &R) -> Result<(), SendError> {
        let size = codec::encoded_size(value).map_err(SendError::Encode)?;
        let size = usize::try_from(size).ok().and_then(|n| n.checked_add(1)).ok_or(SendError::TooBig)?;
        let mut bytes = Vec::new();
        bytes.try_reserve_exact(size).map_err(|_| SendError::NoMemory)?;
        bytes.push(REPLY_OK);
        codec::encode_into(&mut bytes, value).map_err(SendError::Encode)?;
        self.pid.send_raw(self.reference, &bytes)
    }

    /// Tell the caller no reply will come
    /// ([`CallError::NoReply`](crate::CallError::NoReply)): a
    /// [`Deferred`](crate::Deferred) token dropped unanswered.
    pub(crate) fn reply_none(self) {
        let _ = self.pid.send_raw(self.reference, &[REPLY_NONE]);
    }

    /// Tell the caller its request could not be decoded
    /// ([`CallError::BadRequest`](crate::CallError::BadRequest)).
    pub fn reply_bad_request(self, why: &str) {
        let mut bytes = vec![REPLY_BAD_REQUEST];
        bytes.extend_from_slice(why.as_bytes());
        let _ = self.pid.send_raw(self.reference, &bytes);
    }
}

/// A received message, and the socket it moved here if it really did.
pub(crate) struct Received {
    pub env: Envelope,
    /// Set only for a message that carried a socket into this process
    /// (see the module's docs); its tag says which kind.
    pub socket: Option<OwnedFd>,
}

/// The tags the crate moves sockets under.
fn is_socket_tag(tag: u64) -> bool {
    tag == TAG_TCP_STREAM || tag == TAG_TCP_LISTENER
}

/// The lowest fd that is not open in this process's table.
fn lowest_free_fd() -> i32 {
    let mut fd = 0;
    while is_open(fd) {
        fd += 1;
    }
    fd
}

/// Whether `fd` is open, without a system call: asking for every right
/// fails on an open fd (rights are only ever dropped, so nothing changes)
/// and on a free one with `EBADF`. (`fd_fdstat_get` would also tell, but
/// the host makes a system call for it, and this runs before receives.)
fn is_open(fd: i32) -> bool {
    unsafe { sys::fd_fdstat_set_rights(fd, u64::MAX, u64::MAX) != EBADF }
}

/// WASI's `EBADF`.
const EBADF: i32 = 8;

/// The WASI filetype of `fd`, or `None` if it is not open.
fn filetype(fd: i32) -> Option<u8> {
    let mut stat = [0u8; 24]; // WASI fdstat; the filetype is its first byte
    (unsafe { sys::fd_fdstat_get(fd, stat.as_mut_ptr()) } == 0).then_some(stat[0])
}

/// WASI's filetype of stream sockets.
const FILETYPE_SOCKET_STREAM: u8 = 6;

/// The socket `env` moved into this process, given `floor`, the lowest
/// free fd just before the receive that delivered it (see the module's
/// docs); `None` for any other message.
fn moved_socket(env: &Envelope, floor: i32) -> Option<OwnedFd> {
    if !is_socket_tag(env.tag) || env.kind != sys::MSG_DATA || env.reference != 0 || env.bytes.len() != 4 {
        return None;
    }
    let fd = i32::from_le_bytes(env.bytes[..4].try_into().unwrap());
    if fd != floor {
        return None; // a forgery: the host installs at the floor
    }
    let kind = filetype(fd)?; // still free: a forgery
    // SAFETY: `fd` was not open just before the receive and is open now;
    // in between only the host ran, and the one fd it installs during a
    // receive is the socket of the message it delivers. So `fd` is that
    // socket, and nothing else in this process owns it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    // Both crate socket tags are stream sockets; a datagram socket sent
    // under one (only sys::send_fd can) is closed, not mistaken for one.
    (kind == FILETYPE_SOCKET_STREAM).then_some(owned)
}

/// The floor to check socket messages against, if a receive by `tags` can
/// take one.
fn floor_for(tags: &[u64]) -> Option<i32> {
    (tags.is_empty() || tags.iter().copied().any(is_socket_tag)).then(lowest_free_fd)
}

fn received(info: &sys::MsgInfo, bytes: Vec<u8>, floor: Option<i32>) -> Received {
    let env = Envelope { tag: info.tag, from: Pid::from_raw(info.from), reference: info.reference, kind: info.kind, bytes };
    let socket = floor.and_then(|f| moved_socket(&env, f));
    Received { env, socket }
}

/// The payload of a message too big for the first buffer: it stayed
/// queued and is still the oldest match of `tags`. (Socket messages always
/// fit the first buffer, so nothing is installed here.)
fn take_big(tags: &[u64], info: &mut sys::MsgInfo) -> Vec<u8> {
    let mut big = vec![0u8; info.len as usize];
    let rc = unsafe { sys::receive(tags.as_ptr(), tags.len() as u32, sys::NOWAIT, big.as_mut_ptr(), info.len, info) };
    assert_eq!(rc, sys::OK, "wisp: a message vanished from the mailbox");
    big.truncate(info.len as usize);
    big
}

/// Receive the oldest message matching `tags` (any if empty), waiting up to
/// `timeout_ns`. Payloads of up to 256 bytes are received on the stack.
pub(crate) fn receive(tags: &[u64], timeout_ns: i64) -> Result<Received, RecvError> {
    let floor = floor_for(tags);
    let mut small = [0u8; 256];
    let mut info = sys::MsgInfo::default();
    let rc = unsafe {
        sys::receive(tags.as_ptr(), tags.len() as u32, timeout_ns, small.as_mut_ptr(), small.len() as u32, &mut info)
    };
    let bytes = match rc {
        sys::OK => small[..info.len as usize].to_vec(),
        sys::ETOOSMALL => take_big(tags, &mut info),
        sys::ETIMEDOUT => return Err(RecvError::Timeout),
        rc => panic!("wisp: receive failed with code {rc}"),
    };
    Ok(received(&info, bytes, floor))
}

/// [`receive`] as an envelope only: a socket that came with the message is
/// closed.
pub(crate) fn receive_raw(tags: &[u64], timeout_ns: i64) -> Result<Envelope, RecvError> {
    receive(tags, timeout_ns).map(|r| r.env)
}

/// [`receive`], or `Ok(None)`, taking no message, as soon as socket `fd`
/// is readable.
pub(crate) fn receive_or_readable(tags: &[u64], fd: i32, timeout_ns: i64) -> Result<Option<Received>, RecvError> {
    let floor = floor_for(tags);
    let mut small = [0u8; 256];
    let mut info = sys::MsgInfo::default();
    let rc = unsafe {
        sys::receive_fd(tags.as_ptr(), tags.len() as u32, fd, timeout_ns, small.as_mut_ptr(), small.len() as u32, &mut info)
    };
    let bytes = match rc {
        sys::OK => small[..info.len as usize].to_vec(),
        sys::ETOOSMALL => take_big(tags, &mut info),
        sys::EREADY => return Ok(None),
        sys::ETIMEDOUT => return Err(RecvError::Timeout),
        rc => panic!("wisp: receive_fd failed with code {rc}"),
    };
    Ok(Some(received(&info, bytes, floor)))
}

/// `env`'s payload decoded as a `T`, or the envelope back in the error.
pub(crate) fn decode_as<T: DeserializeOwned>(env: Envelope) -> Result<T, RecvError> {
    match codec::decode(&env.bytes) {
        Ok(v) => Ok(v),
        Err(error) => Err(RecvError::Decode { envelope: env, error }),
    }
}
