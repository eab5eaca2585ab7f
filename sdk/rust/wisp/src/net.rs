//! Networking: TCP, UDP and DNS in plain blocking style.
//!
//! A call that would block (accept, connect, read, write, receive, lookup)
//! parks only the calling process; the others run meanwhile (the runtime's
//! epoll reactor wakes it). So the natural design is Erlang's: one process
//! per connection, written as straight-line blocking code.
//!
//! - [`TcpListener`]: [`bind`](TcpListener::bind), [`accept`](TcpListener::accept),
//!   [`accept_timeout`](TcpListener::accept_timeout), [`incoming`](TcpListener::incoming).
//! - [`TcpStream`]: [`connect`](TcpStream::connect),
//!   [`connect_timeout`](TcpStream::connect_timeout), `std::io::Read` and
//!   `Write` (so `BufReader`, `write_all`, `io::copy` work), read and write
//!   timeouts, [`shutdown`](TcpStream::shutdown); closed when dropped.
//! - [`UdpSocket`]: bind, connect, `send_to`, `recv_from`.
//! - [`lookup`]: DNS, `name -> Vec<IpAddr>`.
//!
//! Sockets are WASI fds held by [`OwnedFd`](std::os::fd::OwnedFd)s (each
//! converts to and from one, as std's sockets do). They belong to one
//! process (they close when it ends) and move to another one only by being
//! sent: [`Pid::send_socket`](crate::Pid::send_socket) and
//! [`Process::send_stream`](crate::Process::send_stream) *consume* the
//! socket, so the sender cannot use it afterwards, and the receiver takes
//! it, typed, with [`Mailbox::receive_stream`](crate::Mailbox::receive_stream) /
//! [`Mailbox::receive_socket`](crate::Mailbox::receive_socket), or as an
//! [`Event::Socket`](crate::Event::Socket). A message that merely looks
//! like a moved socket (four bytes under a socket tag, which any process
//! can send) is never taken for one. [`spawn_with_stream`] does both
//! halves: it starts `f(arg, stream, mailbox)` as a process owning the
//! stream. [`Mailbox::receive_or_readable`](crate::Mailbox::receive_or_readable)
//! waits for a message *or* data on a socket at once (a chat client: lines
//! from the room, lines from the network).
//!
//! Errors are `std::io::Error`s built from the host's WASI errno, so their
//! [`kind`](std::io::Error::kind) is the usual one: `ConnectionRefused`,
//! `TimedOut` (every timeout of this module; timeouts are
//! [`Duration`](std::time::Duration)s as everywhere in the crate, with
//! std's `Option<Duration>` in the setters that mirror std's), `AddrInUse`, `NotFound` (an
//! unknown host name), `ConnectionReset`, `BrokenPipe`, ...; and
//! `PermissionDenied` when the process's capabilities forbid the call (the
//! network is denied unless `wisp run` is given `--allow-listen`,
//! `--allow-connect`, `--allow-udp`, `--allow-dns`).
//!
//! Addresses: anything implementing this module's [`ToSocketAddrs`]:
//! `"127.0.0.1:7000"`, `("localhost", 7000)`, `"[::1]:80"`, a
//! `SocketAddr`; host names are resolved with [`lookup`] (std's own
//! resolver does not exist on wasm32-wasip1).
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use wisp::net::{TcpListener, TcpStream};
//!
//! fn handler(_: (), mut s: TcpStream, _mb: wisp::Mailbox<()>) {
//!     let mut buf = [0u8; 4096];
//!     while let Ok(n @ 1..) = s.read(&mut buf) {
//!         if s.write_all(&buf[..n]).is_err() { break }
//!     }
//! }
//!
//! let listener = TcpListener::bind("127.0.0.1:7000").unwrap();
//! for stream in listener.incoming().flatten() {
//!     wisp::net::spawn_with_stream(stream, (), handler).unwrap();
//! }
//! ```

// The sockets themselves are in crate::socket, which knows nothing of
// processes; what needs processes is in the modules of the types it
// belongs to (Pid::send_socket, Mailbox::receive_socket, spawn_with_stream).
// This module only gathers them under one name.

pub use crate::mailbox::Ready;
pub use crate::socket::{
    lookup, AnySocket, Incoming, Socket, TcpListener, TcpStream, ToSocketAddrs, UdpSocket, TAG_TCP_LISTENER,
    TAG_TCP_STREAM,
};
pub use crate::spawn::{spawn_link_with_stream, spawn_with_stream};
