//! Sockets: TCP and UDP over the host's `wisp_net`, as WASI fds owned by
//! [`OwnedFd`]s. The public face is [`crate::net`] (which also has the
//! parts that need processes: moving sockets, spawning with a stream).
//! This module knows nothing of processes or mailboxes, so those can build
//! on it.

use std::cell::Cell;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::sys;
use crate::time::{optional_timeout_ns, timeout_ns};

const BACKLOG: u32 = 1024;

// wisp_net returns WASI errno values (sys.rs: "errors: WASI errno"), which
// io::Error::from_raw_os_error maps to io::ErrorKind on wasm32-wasip1.
/// WASI `ENOBUFS`: the buffer given was too small.
const ENOBUFS: i32 = 42;
/// WASI `ENOTCAPABLE`: the process's capabilities do not allow the call.
const ENOTCAPABLE: i32 = 76;

/// Which capability a call needs: named in its denial.
#[derive(Clone, Copy)]
enum Need {
    Listen,
    Connect,
    Udp,
    Dns,
    /// Calls on a socket the process holds (no capability of their own).
    Held,
}

impl Need {
    fn text(self) -> &'static str {
        match self {
            Need::Listen => "listening needs --allow-listen [HOST:]PORT",
            Need::Connect => "connecting needs --allow-connect HOST:PORT",
            Need::Udp => "UDP needs --allow-udp",
            Need::Dns => "name lookups need --allow-dns",
            Need::Held => "the network was dropped from its set",
        }
    }
}

/// `rc` as a result; a capability denial is `PermissionDenied` naming the
/// capability `need` (std would leave WASI's ENOTCAPABLE `Uncategorized`).
fn check_cap(rc: i32, need: Need) -> io::Result<()> {
    match rc {
        0 => Ok(()),
        ENOTCAPABLE => Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "not allowed by the process's capabilities: {} (wisp run; a child may have less: Caps::drop_network)",
                need.text()
            ),
        )),
        rc => Err(io::Error::from_raw_os_error(rc)),
    }
}

fn check(rc: i32) -> io::Result<()> {
    check_cap(rc, Need::Held)
}

fn len32(n: usize) -> u32 {
    n.min(u32::MAX as usize) as u32
}

fn invalid(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what)
}

fn no_zero_timeout(t: Option<Duration>) -> io::Result<()> {
    if t == Some(Duration::ZERO) {
        Err(invalid("cannot set a 0 duration timeout"))
    } else {
        Ok(())
    }
}

/// Parse the host's address text ("127.0.0.1", "::1", "fe80::1%eth0").
fn parse_ip(text: &[u8]) -> io::Result<IpAddr> {
    let text = std::str::from_utf8(text).map_err(|_| invalid("address is not text"))?;
    let text = text.split('%').next().unwrap_or(text);
    text.parse::<IpAddr>().map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("bad address {text:?}")))
}

type AddrFn = unsafe extern "C" fn(i32, *mut u8, u32, *mut u32, *mut u32) -> i32;

fn addr_of(fd: i32, f: AddrFn) -> io::Result<SocketAddr> {
    let mut buf = [0u8; 128];
    let (mut len, mut port) = (0u32, 0u32);
    check(unsafe { f(fd, buf.as_mut_ptr(), buf.len() as u32, &mut len, &mut port) })?;
    let ip = parse_ip(&buf[..(len as usize).min(buf.len())])?;
    Ok(SocketAddr::new(ip, port as u16))
}

/// Try `f` on each address; the first success, or the last error.
fn each_addr<A: ToSocketAddrs + ?Sized, T>(addr: &A, mut f: impl FnMut(&SocketAddr) -> io::Result<T>) -> io::Result<T> {
    let mut last = None;
    for a in addr.to_socket_addrs()? {
        match f(&a) {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| invalid("no addresses to use")))
}

// ---- addresses and DNS ----

/// Resolve a host name to its addresses (the host's resolver, run on a
/// blocking pool; the caller parks meanwhile). A numeric address is
/// returned as is. An unknown name is an error of kind `NotFound`.
pub fn lookup(name: &str) -> io::Result<Vec<IpAddr>> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let mut size = 1024usize;
    loop {
        let mut buf = vec![0u8; size];
        let (mut used, mut count) = (0u32, 0u32);
        let rc = unsafe {
            sys::resolve(name.as_ptr(), len32(name.len()), buf.as_mut_ptr(), len32(buf.len()), &mut used, &mut count)
        };
        if rc == ENOBUFS && size < 1 << 20 {
            size *= 16;
            continue;
        }
        check_cap(rc, Need::Dns)?;
        buf.truncate((used as usize).min(size));
        return buf.split(|&b| b == 0).filter(|s| !s.is_empty()).map(parse_ip).collect();
    }
}

/// What can name socket addresses: this module's version of
/// `std::net::ToSocketAddrs`, resolving host names with [`lookup`].
/// Implemented for `SocketAddr` (and V4/V6), `(IpAddr, u16)`,
/// `(&str, u16)`, `(String, u16)`, `"host:port"` strings, slices and
/// vectors of `SocketAddr`, and references to all of these.
pub trait ToSocketAddrs {
    /// The addresses, in the order to try them.
    fn to_socket_addrs(&self) -> io::Result<Vec<SocketAddr>>;
}

impl ToSocketAddrs for SocketAddr {
    fn to_socket_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![*self])
    }
}
impl ToSocketAddrs for SocketAddrV4 {
    fn to_socket_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![SocketAddr::V4(*self)])
    }
}
impl ToSocketAddrs for SocketAddrV6 {
    fn to_socket_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![SocketAddr::V6(*self)])
    }
}
impl ToSocketAddrs for (IpAddr, u16) {
    fn to_socket_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![SocketAddr::new(self.0, self.1)])
    }
}
impl ToSocketAddrs for (Ipv4Addr, u16) {
    fn to_socket_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![SocketAddr::new(self.0.into(), self.1)])
    }
}
impl ToSocketAddrs for (Ipv6Addr, u16) {
    fn to_socket_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![SocketAddr::new(self.0.into(), self.1)])
    }
}
impl ToSocketAddrs for (&str, u16) {
    fn to_socket_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        let host = self.0.trim_start_matches('[').trim_end_matches(']');
        Ok(lookup(host)?.into_iter().map(|ip| SocketAddr::new(ip, self.1)).collect())
    }
}
impl ToSocketAddrs for (String, u16) {
    fn to_socket_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        (self.0.as_str(), self.1).to_socket_addrs()
    }
}
impl ToSocketAddrs for str {
    fn to_socket_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        if let Ok(a) = self.parse::<SocketAddr>() {
            return Ok(vec![a]);
        }
        let (host, port) = self.rsplit_once(':').ok_or_else(|| invalid("invalid socket address"))?;
        let port: u16 = port.parse().map_err(|_| invalid("invalid port value"))?;
        (host, port).to_socket_addrs()
    }
}
impl ToSocketAddrs for String {
    fn to_socket_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        self.as_str().to_socket_addrs()
    }
}
impl ToSocketAddrs for [SocketAddr] {
    fn to_socket_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(self.to_vec())
    }
}
impl ToSocketAddrs for Vec<SocketAddr> {
    fn to_socket_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(self.clone())
    }
}
impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {
    fn to_socket_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        (**self).to_socket_addrs()
    }
}

// ---- the fd all sockets own ----

/// The fd a `wisp_net` call just created and stored for the caller.
fn adopt(fd: i32) -> OwnedFd {
    // SAFETY: the host installed `fd` in this process's table for this
    // call and handed it to the caller alone: it is open, and nothing else
    // owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

mod sealed {
    pub trait Sealed {}
}

/// The tag of a moved [`TcpStream`] ([`Pid::send_socket`](crate::Pid::send_socket)).
pub const TAG_TCP_STREAM: u64 = 6;
/// The tag of a moved [`TcpListener`].
pub const TAG_TCP_LISTENER: u64 = 7;

/// A socket that can move to another process: [`TcpStream`] and
/// [`TcpListener`]. Each kind travels under its own tag, so a receiver
/// always gets the kind that was sent. (The crate does not move
/// [`UdpSocket`]s.) Like std's sockets, each converts to and from the
/// [`OwnedFd`] it holds.
pub trait Socket: sealed::Sealed + AsRawFd + Into<OwnedFd> + From<OwnedFd> {
    /// The message tag this kind travels under.
    const TAG: u64;
}

/// A socket received in a message, of whichever kind was sent
/// ([`Event::Socket`](crate::Event::Socket)).
#[derive(Debug)]
pub enum AnySocket {
    /// A connection.
    Tcp(TcpStream),
    /// A listening socket.
    Listener(TcpListener),
}

// ---- TCP ----

/// A listening TCP socket. Closed when dropped (or when its process ends).
pub struct TcpListener {
    fd: OwnedFd,
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TcpListener");
        if let Ok(a) = self.local_addr() {
            d.field("addr", &a);
        }
        d.field("fd", &self.fd.as_raw_fd()).finish()
    }
}

impl TcpListener {
    /// Bind (with `SO_REUSEADDR`) and listen on the first address that
    /// works. Port 0 picks a free port: see [`local_addr`](Self::local_addr).
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        each_addr(&addr, |a| {
            let ip = a.ip().to_string();
            let mut fd = -1;
            check_cap(unsafe { sys::tcp_listen(ip.as_ptr(), len32(ip.len()), a.port() as u32, BACKLOG, &mut fd) }, Need::Listen)?;
            Ok(TcpListener { fd: adopt(fd) })
        })
    }

    /// Wait for a connection (parking the process); the stream has
    /// `TCP_NODELAY` set.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        self.accept_ns(sys::INFINITY)
    }

    /// As [`accept`](Self::accept), waiting at most `timeout` (an error of
    /// kind `TimedOut` then; `Duration::ZERO` polls).
    pub fn accept_timeout(&self, timeout: Duration) -> io::Result<(TcpStream, SocketAddr)> {
        self.accept_ns(timeout_ns(timeout))
    }

    fn accept_ns(&self, ns: i64) -> io::Result<(TcpStream, SocketAddr)> {
        let mut conn = -1;
        check(unsafe { sys::tcp_accept(self.fd.as_raw_fd(), ns, &mut conn) })?;
        let s = TcpStream::from(adopt(conn));
        let peer = s.peer_addr()?;
        Ok((s, peer))
    }

    /// An endless iterator of accepted connections (`accept` in a loop).
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The address it listens on (with the actual port if bound to 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        addr_of(self.fd.as_raw_fd(), sys::local_addr)
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
impl AsFd for TcpListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
impl From<TcpListener> for OwnedFd {
    fn from(l: TcpListener) -> OwnedFd {
        l.fd
    }
}
impl From<OwnedFd> for TcpListener {
    fn from(fd: OwnedFd) -> TcpListener {
        TcpListener { fd }
    }
}
impl sealed::Sealed for TcpListener {}
impl Socket for TcpListener {
    const TAG: u64 = TAG_TCP_LISTENER;
}

/// The iterator of [`TcpListener::incoming`]; never ends.
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;
    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

/// A TCP connection: `std::io::Read` and `Write` in blocking style (the
/// process parks while the socket is not ready). Closed when dropped, when
/// its process ends, or — after [`send_stream`](crate::Process::send_stream) — by
/// its new owner.
pub struct TcpStream {
    fd: OwnedFd,
    read_timeout: Cell<Option<Duration>>,
    write_timeout: Cell<Option<Duration>>,
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TcpStream");
        if let Ok(a) = self.local_addr() {
            d.field("addr", &a);
        }
        if let Ok(a) = self.peer_addr() {
            d.field("peer", &a);
        }
        d.field("fd", &self.fd.as_raw_fd()).finish()
    }
}

impl TcpStream {
    /// Connect to the first address that accepts (no timeout: the
    /// system's own). Errors: `ConnectionRefused`, `TimedOut`, ...
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        each_addr(&addr, |a| Self::connect_ns(a, sys::INFINITY))
    }

    /// Connect, giving up after `timeout` (an error of kind `TimedOut`).
    /// A zero timeout is an `InvalidInput` error, as in std.
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        no_zero_timeout(Some(timeout))?;
        Self::connect_ns(addr, timeout_ns(timeout))
    }

    fn connect_ns(a: &SocketAddr, ns: i64) -> io::Result<TcpStream> {
        let ip = a.ip().to_string();
        let mut fd = -1;
        check_cap(unsafe { sys::tcp_connect(ip.as_ptr(), len32(ip.len()), a.port() as u32, ns, &mut fd) }, Need::Connect)?;
        Ok(TcpStream::from(adopt(fd)))
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        addr_of(self.fd.as_raw_fd(), sys::peer_addr)
    }

    /// This end's address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        addr_of(self.fd.as_raw_fd(), sys::local_addr)
    }

    /// Shut down reading, writing or both (WASI `sock_shutdown`): after
    /// `Write` the peer reads end-of-stream.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let flags = match how {
            Shutdown::Read => 1,
            Shutdown::Write => 2,
            Shutdown::Both => 3,
        };
        check(unsafe { sys::sock_shutdown(self.fd.as_raw_fd(), flags) })
    }

    /// Turn Nagle's algorithm off (`true`, the default for accepted
    /// connections) or on.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        check(unsafe { sys::set_nodelay(self.fd.as_raw_fd(), on as u32) })
    }

    /// Limit how long a `read` waits (`None`: forever, the default); a read
    /// that times out is an error of kind `TimedOut`. `Some(ZERO)` is an
    /// `InvalidInput` error, as in std.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        no_zero_timeout(t)?;
        self.read_timeout.set(t);
        Ok(())
    }

    /// Limit how long a `write` waits for room (`None`: forever).
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        no_zero_timeout(t)?;
        self.write_timeout.set(t);
        Ok(())
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.read_timeout.get())
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.write_timeout.get())
    }

    /// Read with an explicit timeout, whatever the stream's setting.
    pub fn read_timeout_once(&self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        self.read_ns(buf, timeout_ns(timeout))
    }

    fn read_ns(&self, buf: &mut [u8], ns: i64) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut n = 0u32;
        check(unsafe { sys::net_read(self.fd.as_raw_fd(), buf.as_mut_ptr(), len32(buf.len()), ns, &mut n) })?;
        Ok(n as usize)
    }

    fn write_ns(&self, buf: &[u8], ns: i64) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut n = 0u32;
        check(unsafe { sys::net_write(self.fd.as_raw_fd(), buf.as_ptr(), len32(buf.len()), ns, &mut n) })?;
        Ok(n as usize)
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_ns(buf, optional_timeout_ns(self.read_timeout.get()))
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_ns(buf, optional_timeout_ns(self.write_timeout.get()))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
impl AsFd for TcpStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
impl From<TcpStream> for OwnedFd {
    fn from(s: TcpStream) -> OwnedFd {
        s.fd
    }
}
impl From<OwnedFd> for TcpStream {
    fn from(fd: OwnedFd) -> TcpStream {
        TcpStream { fd, read_timeout: Cell::new(None), write_timeout: Cell::new(None) }
    }
}
impl sealed::Sealed for TcpStream {}
impl Socket for TcpStream {
    const TAG: u64 = TAG_TCP_STREAM;
}

// ---- UDP ----

/// A UDP socket. Closed when dropped. It stays in the process that bound
/// it (it is not a [`Socket`]: the crate moves only TCP sockets).
pub struct UdpSocket {
    fd: OwnedFd,
    read_timeout: Cell<Option<Duration>>,
    write_timeout: Cell<Option<Duration>>,
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("UdpSocket");
        if let Ok(a) = self.local_addr() {
            d.field("addr", &a);
        }
        d.field("fd", &self.fd.as_raw_fd()).finish()
    }
}

impl UdpSocket {
    /// Bind to the first address that works (port 0 picks one).
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        each_addr(&addr, |a| {
            let ip = a.ip().to_string();
            let mut fd = -1;
            check_cap(unsafe { sys::udp_bind(ip.as_ptr(), len32(ip.len()), a.port() as u32, &mut fd) }, Need::Udp)?;
            Ok(UdpSocket::from(adopt(fd)))
        })
    }

    /// Set the default destination ([`send`](Self::send)) and accept
    /// datagrams only from it.
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        each_addr(&addr, |a| {
            let ip = a.ip().to_string();
            check_cap(unsafe { sys::udp_connect(self.fd.as_raw_fd(), ip.as_ptr(), len32(ip.len()), a.port() as u32) }, Need::Udp)
        })
    }

    /// Send one datagram to `addr` (its first address); returns the bytes sent.
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let a = *addr.to_socket_addrs()?.first().ok_or_else(|| invalid("no addresses to send data to"))?;
        let ip = a.ip().to_string();
        self.send_raw(buf, ip.as_bytes(), a.port())
    }

    /// Send one datagram to the connected address.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.send_raw(buf, &[], 0)
    }

    fn send_raw(&self, buf: &[u8], ip: &[u8], port: u16) -> io::Result<usize> {
        let mut n = 0u32;
        let ns = optional_timeout_ns(self.write_timeout.get());
        check_cap(unsafe {
            sys::udp_send_to(self.fd.as_raw_fd(), buf.as_ptr(), len32(buf.len()), ip.as_ptr(), len32(ip.len()), port as u32, ns, &mut n)
        }, Need::Udp)?;
        Ok(n as usize)
    }

    /// Wait for one datagram (up to the read timeout); returns its length
    /// (truncated to `buf`) and sender.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let (mut n, mut alen, mut port) = (0u32, 0u32, 0u32);
        let mut abuf = [0u8; 128];
        let ns = optional_timeout_ns(self.read_timeout.get());
        check(unsafe {
            sys::udp_recv_from(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr(),
                len32(buf.len()),
                ns,
                &mut n,
                abuf.as_mut_ptr(),
                abuf.len() as u32,
                &mut alen,
                &mut port,
            )
        })?;
        let ip = parse_ip(&abuf[..(alen as usize).min(abuf.len())])?;
        Ok((n as usize, SocketAddr::new(ip, port as u16)))
    }

    /// [`recv_from`](Self::recv_from) without the sender.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv_from(buf).map(|(n, _)| n)
    }

    /// The bound address (with the actual port).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        addr_of(self.fd.as_raw_fd(), sys::local_addr)
    }

    /// The connected address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        addr_of(self.fd.as_raw_fd(), sys::peer_addr)
    }

    /// Limit how long `recv`/`recv_from` wait (`None`: forever); a timeout
    /// is an error of kind `TimedOut`.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        no_zero_timeout(t)?;
        self.read_timeout.set(t);
        Ok(())
    }

    /// Limit how long `send`/`send_to` wait.
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        no_zero_timeout(t)?;
        self.write_timeout.set(t);
        Ok(())
    }
}

impl AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
impl AsFd for UdpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
impl From<UdpSocket> for OwnedFd {
    fn from(s: UdpSocket) -> OwnedFd {
        s.fd
    }
}
impl From<OwnedFd> for UdpSocket {
    fn from(fd: OwnedFd) -> UdpSocket {
        UdpSocket { fd, read_timeout: Cell::new(None), write_timeout: Cell::new(None) }
    }
}
