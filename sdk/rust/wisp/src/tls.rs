//! TLS streams: [`TlsStream`] reads and writes like a
//! [`TcpStream`], encrypted by the host (OpenSSL).
//!
//! A TLS stream starts as a TCP stream: [`TlsStream::connect`] dials and
//! verifies the server (the system's CA store, and the name given), and
//! [`TlsStream::client`] / [`TlsStream::accept`] run the client or server
//! handshake on a `TcpStream` the process already holds. The handshake
//! parks only the calling process while it waits for the network.
//!
//! - [`ClientConfig`]: the server's name (SNI and verification), ALPN
//!   protocols, a CA file instead of the system's store, a handshake
//!   timeout; verification is on unless
//!   [`danger_accept_any_certificate`](ClientConfig::danger_accept_any_certificate)
//!   says otherwise.
//! - [`ServerConfig`]: certificate chain and key files, ALPN protocols.
//!
//! Certificate, key and CA files are read by the host from the process's
//! directories (`wisp run --dir`), found as `std::fs::File::open` would
//! find them; a path outside them is `PermissionDenied`. Errors carry the
//! host's reason as their text ("the server's certificate was refused:
//! certificate has expired"); their kind is the usual one (`TimedOut`,
//! `ConnectionReset`, `PermissionDenied`, `InvalidInput`, and `Other` for
//! a refused handshake).
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use wisp::tls::TlsStream;
//!
//! let mut s = TlsStream::connect(("example.com", 443), "example.com").unwrap();
//! s.write_all(b"HEAD / HTTP/1.1\r\nHost: example.com\r\n\r\n").unwrap();
//! let mut reply = [0u8; 512];
//! let n = s.read(&mut reply).unwrap();
//! ```
//!
//! A TLS stream is a socket of its process: it closes (with TLS's
//! close_notify) when dropped or when the process ends. It moves to
//! another process as the TCP stream under it
//! ([`into_socket`](TlsStream::into_socket), sent like any `TcpStream`;
//! the receiver takes it back with [`from_socket`](TlsStream::from_socket)),
//! with its TLS state.

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::time::Duration;

use crate::socket::{TcpStream, ToSocketAddrs};
use crate::sys;

/// WASI `ENOTCAPABLE`.
const ENOTCAPABLE: i32 = 76;
/// WASI `EPROTO`: a refused handshake, a broken stream.
const EPROTO: i32 = 65;
/// WASI `EINVAL`.
const EINVAL: i32 = 28;
/// WASI `ECONNRESET`, `EIO`, `EPIPE`: the other failures of a stream the
/// host explains (a peer gone without close_notify, a stream that failed
/// before, writing after `shutdown`).
const ECONNRESET: i32 = 15;
const EIO: i32 = 29;
const EPIPE: i32 = 64;

/// Why this process's last TLS call failed, as the host put it ("" if
/// none has).
pub fn last_error() -> String {
    let mut buf = vec![0u8; 512];
    let mut len = 0u32;
    if unsafe { sys::tls_last_error(buf.as_mut_ptr(), buf.len() as u32, &mut len) } != 0 {
        return String::new();
    }
    buf.truncate(len as usize);
    String::from_utf8_lossy(&buf).into_owned()
}

/// `rc` (a WASI errno) as an error carrying the host's reason.
fn check(rc: i32) -> io::Result<()> {
    if rc == 0 {
        return Ok(());
    }
    let kind = match rc {
        ENOTCAPABLE => io::ErrorKind::PermissionDenied,
        EPROTO => io::ErrorKind::Other,
        EINVAL => io::ErrorKind::InvalidInput,
        _ => io::Error::from_raw_os_error(rc).kind(),
    };
    let why = last_error();
    Err(io::Error::new(kind, if why.is_empty() { io::Error::from_raw_os_error(rc).to_string() } else { why }))
}

/// A read's or write's error, with the host's reason when TLS failed
/// ("TLS read: the peer closed the connection without close_notify ...")
/// rather than the bare errno's text.
fn explained(e: io::Error) -> io::Error {
    let kind = match e.raw_os_error() {
        Some(EPROTO) => io::ErrorKind::Other,
        Some(ECONNRESET | EIO | EPIPE) => e.kind(),
        _ => return e,
    };
    let why = last_error();
    if why.is_empty() {
        e
    } else {
        io::Error::new(kind, why)
    }
}

fn ns(t: Option<Duration>) -> i64 {
    t.map_or(-1, |d| d.as_nanos().min(i64::MAX as u128) as i64)
}

/// The options as the host reads them; the strings they point to are
/// borrowed from the config for the call.
fn text(s: &Option<String>) -> (*const u8, u32) {
    s.as_ref().map_or((std::ptr::null(), 0), |s| (s.as_ptr(), s.len() as u32))
}

/// A client's side of TLS. Verification of the server is on by default.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    server_name: Option<String>,
    alpn: Option<String>,
    ca_file: Option<String>,
    verify: bool,
    timeout: Option<Duration>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientConfig {
    /// Verify against the system's CA store; no ALPN; no timeout.
    pub fn new() -> ClientConfig {
        ClientConfig { server_name: None, alpn: None, ca_file: None, verify: true, timeout: None }
    }
    /// The server's name: sent as SNI and checked against its certificate
    /// (an IP address is checked as one). Required when verifying.
    pub fn server_name(mut self, name: &str) -> Self {
        self.server_name = Some(name.to_owned());
        self
    }
    /// The protocols to offer with ALPN, preferred first.
    pub fn alpn(mut self, protocols: &[&str]) -> Self {
        self.alpn = Some(protocols.join(","));
        self
    }
    /// Trust only the PEM certificates of this file (a path in the
    /// process's directories) instead of the system's store.
    pub fn ca_file(mut self, path: &str) -> Self {
        self.ca_file = Some(path.to_owned());
        self
    }
    /// Accept any certificate and name: for tests against throwaway
    /// certificates only.
    pub fn danger_accept_any_certificate(mut self) -> Self {
        self.verify = false;
        self
    }
    /// Give up a handshake after this long (`TimedOut`).
    pub fn handshake_timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }
}

/// A server's side of TLS: its certificate and key.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    cert_file: Option<String>,
    key_file: Option<String>,
    alpn: Option<String>,
    timeout: Option<Duration>,
}

impl ServerConfig {
    /// The PEM certificate chain (leaf first) and its unencrypted PEM key,
    /// paths in the process's directories (read at each handshake).
    pub fn new(cert_file: &str, key_file: &str) -> ServerConfig {
        ServerConfig {
            cert_file: Some(cert_file.to_owned()),
            key_file: Some(key_file.to_owned()),
            alpn: None,
            timeout: None,
        }
    }
    /// The protocols it accepts with ALPN, preferred first; a client that
    /// offers ALPN but none of them is refused.
    pub fn alpn(mut self, protocols: &[&str]) -> Self {
        self.alpn = Some(protocols.join(","));
        self
    }
    /// Give up a handshake after this long (`TimedOut`): a client that
    /// stalls costs its process no more.
    pub fn handshake_timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }
}

/// A TLS stream: `Read` and `Write` in plaintext, like a `TcpStream`
/// (whose timeouts it uses: [`get_ref`](TlsStream::get_ref)). A read of 0
/// bytes means the peer ended the stream properly (close_notify); one that
/// went away without is an error, not the end of the data.
#[derive(Debug)]
pub struct TlsStream {
    tcp: TcpStream,
}

impl TlsStream {
    /// Connect to `addr` and verify it as `server_name` against the
    /// system's CA store.
    pub fn connect<A: ToSocketAddrs>(addr: A, server_name: &str) -> io::Result<TlsStream> {
        Self::connect_with(addr, &ClientConfig::new().server_name(server_name))
    }

    /// Connect to `addr` with `config`.
    pub fn connect_with<A: ToSocketAddrs>(addr: A, config: &ClientConfig) -> io::Result<TlsStream> {
        Self::client(TcpStream::connect(addr)?, config)
    }

    /// The client handshake on a connected `tcp`.
    pub fn client(tcp: TcpStream, config: &ClientConfig) -> io::Result<TlsStream> {
        if config.verify && config.server_name.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a verifying TLS client needs the server's name, which its certificate must carry: \
                 ClientConfig::server_name (or danger_accept_any_certificate, for tests)",
            ));
        }
        let (name, name_len) = text(&config.server_name);
        let (alpn, alpn_len) = text(&config.alpn);
        let (ca, ca_len) = text(&config.ca_file);
        let opts = sys::TlsOptions {
            flags: if config.verify { 0 } else { sys::TLS_NO_VERIFY },
            server_name: name,
            server_name_len: name_len,
            alpn,
            alpn_len,
            ca_file: ca,
            ca_file_len: ca_len,
            cert_file: std::ptr::null(),
            cert_file_len: 0,
            key_file: std::ptr::null(),
            key_file_len: 0,
        };
        check(unsafe { sys::tls_connect(tcp.as_raw_fd(), &opts, sys::TLS_OPTIONS_SIZE, ns(config.timeout)) })?;
        Ok(TlsStream { tcp })
    }

    /// The server handshake on an accepted `tcp`.
    pub fn accept(tcp: TcpStream, config: &ServerConfig) -> io::Result<TlsStream> {
        let (alpn, alpn_len) = text(&config.alpn);
        let (cert, cert_len) = text(&config.cert_file);
        let (key, key_len) = text(&config.key_file);
        let opts = sys::TlsOptions {
            flags: 0,
            server_name: std::ptr::null(),
            server_name_len: 0,
            alpn,
            alpn_len,
            ca_file: std::ptr::null(),
            ca_file_len: 0,
            cert_file: cert,
            cert_file_len: cert_len,
            key_file: key,
            key_file_len: key_len,
        };
        check(unsafe { sys::tls_accept(tcp.as_raw_fd(), &opts, sys::TLS_OPTIONS_SIZE, ns(config.timeout)) })?;
        Ok(TlsStream { tcp })
    }

    /// The protocol ALPN chose, if any.
    pub fn alpn_protocol(&self) -> Option<Vec<u8>> {
        let mut buf = [0u8; 255];
        let mut len = 0u32;
        let rc = unsafe { sys::tls_alpn(self.tcp.as_raw_fd(), buf.as_mut_ptr(), buf.len() as u32, &mut len) };
        (rc == 0 && len > 0).then(|| buf[..len as usize].to_vec())
    }

    /// The socket under it (for its timeouts and addresses; reading or
    /// writing it reads and writes through TLS too).
    pub fn get_ref(&self) -> &TcpStream {
        &self.tcp
    }

    /// The socket, still carrying the TLS session: to send to another
    /// process like any `TcpStream`.
    pub fn into_socket(self) -> TcpStream {
        self.tcp
    }

    /// A socket that carries a TLS session (one sent by
    /// [`into_socket`](Self::into_socket)); `InvalidInput` if it does not.
    pub fn from_socket(tcp: TcpStream) -> io::Result<TlsStream> {
        let mut len = 0u32;
        match unsafe { sys::tls_alpn(tcp.as_raw_fd(), std::ptr::null_mut(), 0, &mut len) } {
            EINVAL => Err(io::Error::new(io::ErrorKind::InvalidInput, "not a TLS stream")),
            _ => Ok(TlsStream { tcp }),
        }
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for &TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.tcp).read(buf).map_err(explained)
    }
}

impl Write for &TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&self.tcp).write(buf).map_err(explained)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
