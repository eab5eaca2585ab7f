//! HTTP/1.1 servers (feature `http`): one process per connection, handlers
//! in plain blocking Rust.
//!
//! [`serve`] accepts connections on a listener and starts a process for
//! each; that process reads requests with [`httparse`], calls your
//! [`Handler`] once per request and writes its response, until the client
//! or the handler ends the connection. A handler that panics ends its own
//! connection only.
//!
//! ```no_run
//! use std::io::{self, Write};
//! use wisp::http::{self, Config, Request, Response};
//! use wisp::net::TcpListener;
//!
//! fn handle(req: &mut Request, res: &mut Response) -> io::Result<()> {
//!     match (req.method(), req.path()) {
//!         ("GET", "/") => res.header("Content-Type", "text/plain").send(b"Hello, world!\n"),
//!         ("POST", "/echo") => {
//!             io::copy(req, res)?;            // streamed: chunked both ways
//!             Ok(())
//!         }
//!         ("GET", "/count") => {
//!             for i in 0..3 {
//!                 writeln!(res, "{i}")?;      // chunked; flush() sends what is written
//!                 res.flush()?;
//!             }
//!             Ok(())
//!         }
//!         _ => res.status(404).send(b"not found\n"),
//!     }
//! }
//!
//! let listener = TcpListener::bind("127.0.0.1:8080").unwrap();
//! http::serve(listener, Config::new(), handle).unwrap();
//! ```
//!
//! - A [`Request`] gives the method, target, headers, and reads its body
//!   (`std::io::Read`; `Content-Length` or chunked, decoded, at most
//!   [`Config::max_body`] bytes).
//! - A [`Response`] takes a status and headers, then either a whole body
//!   ([`send`](Response::send), with `Content-Length`) or writes
//!   (`std::io::Write`: chunked in HTTP/1.1, or `Content-Length` when
//!   [`content_length`](Response::content_length) set it first).
//! - Connections stay open between requests (keep-alive) unless the client
//!   asks otherwise (`Connection: close`, HTTP/1.0 without `keep-alive`);
//!   pipelined requests are answered in order.
//! - [`Config`] bounds what a client may cost: the size of a request's
//!   head (`431`), its number of headers (`431`), its body (`413`), the
//!   time to send a head once it has begun (`408`, against slowloris
//!   clients), the idle time between requests and each body read or
//!   response write. A request that does not parse is `400` and the
//!   connection closes; a handler's error is `500` if it had not begun
//!   its response.
//! - [`Config::tls`] serves HTTPS: each connection process runs the TLS
//!   handshake ([`TlsStream`]) first.
//!
//! Handlers are `fn`s (or closures that capture nothing): each connection
//! process is a fresh instance of the module, and the handler travels to
//! it as a function index, like [`spawn`](crate::spawn())'s functions.

// How a connection runs: a `Conn` owns the socket, the input buffer (a
// window `start..end` of bytes read and not yet consumed), the output
// buffer and the current request's head (copied out of the input buffer,
// so that the body can be read through the same buffer while the head's
// fields stay valid). Per request it splits into a `Request` (the head and
// a `Body` reading from the input) and a `Response` (writing into the
// output); the two share only the socket and a flag saying the response
// has begun (a `100 Continue` must not follow it).
//
// Output is written when a response ends only if no further request is
// already buffered: pipelined requests get their responses in one write,
// and the buffer is always written before the process waits to read.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::mem::MaybeUninit;
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::fnptr::fn_at;
use crate::mailbox::Mailbox;
use crate::socket::{TcpListener, TcpStream};
use crate::spawn::spawn_with_stream;
use crate::tls::{ServerConfig, TlsStream};

/// What answers requests: called once per request, in the connection's
/// process. An `Err` ends the connection (after a `500`, or the status the
/// body's error calls for, if the response had not begun).
pub type Handler = fn(&mut Request<'_>, &mut Response<'_>) -> io::Result<()>;

/// The most headers [`Config::max_headers`] may allow (the parser's table
/// of them lives on the stack).
pub const MAX_HEADERS: usize = 128;

/// An unread request body up to this size is read and dropped after the
/// handler returns, so that the connection can go on; a bigger one closes
/// the connection.
const DRAIN_MAX: u64 = 64 * 1024;
/// Output is written to the socket once this much is buffered.
const FLUSH_AT: usize = 64 * 1024;
/// A streamed response's chunks are this big (or what `flush` finds).
const CHUNK: usize = 16 * 1024;
/// The longest chunk-size line (with extensions) of a chunked body.
const MAX_CHUNK_LINE: usize = 1024;
/// How long a closing connection waits for its client to read the last
/// response (it reads and drops what the client still sends meanwhile).
const LINGER: Duration = Duration::from_secs(2);

/// Limits and options of a server; the defaults suit a service on the open
/// network. Every connection process gets a copy.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Config {
    max_head: u32,
    max_headers: u16,
    max_body: u64,
    head_timeout: Duration,
    idle_timeout: Duration,
    io_timeout: Duration,
    tls: Option<(String, String)>,
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

impl Config {
    /// Heads up to 16 KiB with up to 64 headers, bodies up to 1 MiB, 10 s
    /// to send a head, 60 s idle between requests, 30 s for each body read
    /// and response write; no TLS.
    pub fn new() -> Config {
        Config {
            max_head: 16 * 1024,
            max_headers: 64,
            max_body: 1 << 20,
            head_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            io_timeout: Duration::from_secs(30),
            tls: None,
        }
    }
    /// The largest request head (request line and headers), in bytes
    /// (at least 256); a bigger one is answered `431` (`414` if the request
    /// line alone is that big) and the connection closes.
    pub fn max_head(mut self, bytes: usize) -> Self {
        self.max_head = bytes.clamp(256, u32::MAX as usize) as u32;
        self
    }
    /// The most headers a request may have (at most [`MAX_HEADERS`]); more
    /// is `431`.
    pub fn max_headers(mut self, n: usize) -> Self {
        self.max_headers = n.clamp(1, MAX_HEADERS) as u16;
        self
    }
    /// The largest request body, in bytes: a bigger `Content-Length` is
    /// answered `413` before the handler runs; a chunked body that grows
    /// past it makes the handler's read fail (and the answer `413`).
    pub fn max_body(mut self, bytes: u64) -> Self {
        self.max_body = bytes;
        self
    }
    /// How long a client has to send a whole request head once its first
    /// bytes came: a client that trickles it is answered `408` and the
    /// connection closes.
    pub fn head_timeout(mut self, t: Duration) -> Self {
        self.head_timeout = t.max(Duration::from_millis(1));
        self
    }
    /// How long a connection may wait for its next request; then it closes.
    pub fn idle_timeout(mut self, t: Duration) -> Self {
        self.idle_timeout = t.max(Duration::from_millis(1));
        self
    }
    /// The limit on each read of a body and each write of a response.
    pub fn io_timeout(mut self, t: Duration) -> Self {
        self.io_timeout = t.max(Duration::from_millis(1));
        self
    }
    /// Serve HTTPS with this PEM certificate chain and key (paths in the
    /// process's directories, as [`ServerConfig::new`] reads them); the
    /// handshake must end within the head timeout.
    pub fn tls(mut self, cert_file: &str, key_file: &str) -> Self {
        self.tls = Some((cert_file.to_owned(), key_file.to_owned()));
        self
    }
}

/// Accept connections on `listener` for ever, serving each in a process
/// of its own with `handler`. Returns only when accepting fails for good
/// (the listener's capability is gone, or it is not a listener); a
/// connection that cannot get a process (a limit) is closed and the next
/// one accepted. With [`Config::tls`], a certificate or key file this
/// process cannot open is an error at once (`PermissionDenied` naming the
/// `--dir` it needs, `NotFound`), not a handshake that fails with every
/// client.
pub fn serve(listener: TcpListener, config: Config, handler: Handler) -> io::Result<()> {
    if let Some((cert, key)) = &config.tls {
        for (what, path) in [("certificate", cert), ("key", key)] {
            crate::fs::open(path).map_err(|e| {
                let why = match e.kind() {
                    io::ErrorKind::PermissionDenied => {
                        "not allowed by the process's capabilities: give its directory to wisp run \
                         (--dir-ro DIR)"
                            .to_string()
                    }
                    _ => e.to_string(),
                };
                io::Error::new(e.kind(), format!("HTTPS: cannot open the {what} file {path}: {why}"))
            })?;
        }
    }
    let index = handler as usize as u32;
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if matches!(e.kind(), io::ErrorKind::PermissionDenied | io::ErrorKind::InvalidInput) => {
                return Err(e)
            }
            Err(_) => continue,
        };
        let _ = spawn_with_stream(stream, (index, config.clone()), connection);
    }
}

/// A connection's process: the handler back from its index, then the
/// connection.
fn connection((index, config): (u32, Config), stream: TcpStream, _mailbox: Mailbox<()>) {
    // SAFETY: `index` was made by `serve` as `handler as usize as u32` from
    // a `Handler`, in a process of this module (spawn arguments come only
    // from the spawner).
    let handler: Handler = unsafe { fn_at(index) };
    let peer = stream.peer_addr();
    if let Err(e) = serve_connection(stream, &config, handler) {
        // The server's own fault, which no client can fix: said where its
        // operator looks (a client's failures are the client's, unsaid).
        if matches!(e.kind(), io::ErrorKind::PermissionDenied | io::ErrorKind::InvalidInput) {
            match peer {
                Ok(peer) => eprintln!("wisp::http: connection from {peer}: {e}"),
                Err(_) => eprintln!("wisp::http: a connection: {e}"),
            }
        }
    }
}

/// Serve one connection in the calling process until it ends (for an
/// acceptor of your own; [`serve`] calls it in each connection's process).
/// `Ok` when the client or the server closed it in order, `Err` when a
/// read, a write or the TLS handshake failed.
pub fn serve_connection(stream: TcpStream, config: &Config, handler: Handler) -> io::Result<()> {
    let stream = match &config.tls {
        Some((cert, key)) => {
            let tls = ServerConfig::new(cert, key).handshake_timeout(config.head_timeout);
            TlsStream::accept(stream, &tls)?.into_socket()
        }
        None => stream,
    };
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(config.io_timeout))?;
    let mut conn = Conn {
        stream,
        config: config.clone(),
        input: Input { buf: vec![0; 4096], start: 0, end: 0 },
        head: Head::default(),
        out: Vec::with_capacity(1024),
        chunk: Vec::new(),
        date: DateCache::default(),
    };
    conn.run(handler)
}

// ---------------------------------------------------------------------------
// a connection

struct Conn {
    stream: TcpStream,
    config: Config,
    input: Input,
    head: Head,
    out: Vec<u8>,
    chunk: Vec<u8>,
    date: DateCache,
}

/// How reading a head ended when it did not give a request.
enum NoHead {
    /// The client closed, went idle too long, or the socket failed: close.
    Gone,
    /// Answer with this status, then close.
    Reject(u16),
}

impl Conn {
    fn run(&mut self, handler: Handler) -> io::Result<()> {
        loop {
            match self.read_head() {
                Ok(()) => {}
                Err(NoHead::Gone) => return self.write_out(),
                Err(NoHead::Reject(status)) => {
                    self.reject(status);
                    return self.close();
                }
            }
            if !self.one_request(handler)? {
                return self.close();
            }
        }
    }

    /// Answer the request whose head is in `self.head`; true if the
    /// connection goes on.
    fn one_request(&mut self, handler: Handler) -> io::Result<bool> {
        let framing = match self.head.framing() {
            Ok(f) => f,
            Err(status) => {
                self.reject(status);
                return Ok(false);
            }
        };
        if let Framing::Length(n) = framing {
            if n > self.config.max_body {
                self.reject(413);
                return Ok(false);
            }
        }
        let expect = self.head.expects_continue();
        if expect {
            self.write_out()?; // earlier responses go before the 100 Continue
        }
        let keep_alive = self.head.keep_alive();
        let responded = Cell::new(false);
        let Conn { stream, config, input, head, out, chunk, date } = self;
        let mut req = Request {
            head,
            body: Body {
                stream,
                input,
                framing,
                read: 0,
                max_body: config.max_body,
                timeout: config.io_timeout,
                failed: None,
                expect,
                continued: false,
                responded: &responded,
            },
        };
        let mut res = Response {
            stream,
            out,
            chunk,
            date,
            responded: &responded,
            status: 200,
            extra: Vec::new(),
            invalid: None,
            length: None,
            own_date: false,
            keep_alive,
            minor: req.head.minor,
            head_only: req.head.method() == "HEAD",
            state: State::Head,
        };
        let result = handler(&mut req, &mut res);
        let mut go_on = match result {
            Ok(()) => res.finish()?,
            Err(_) if !res.started() => {
                let status = req.body.failed.unwrap_or(500);
                self.reject(status);
                return Ok(false);
            }
            Err(_) => false,
        };
        go_on = go_on && req.body.settle();
        if go_on && self.input.is_empty() {
            self.write_out()?;
        } else if self.out.len() >= FLUSH_AT {
            self.write_out()?;
        }
        Ok(go_on)
    }

    /// Read the next request's head into `self.head`, waiting at most the
    /// idle timeout for its first bytes and the head timeout from there.
    fn read_head(&mut self) -> Result<(), NoHead> {
        let max = self.config.max_head as usize;
        let mut deadline = None;
        loop {
            if !self.input.is_empty() {
                if self.parse_head()? {
                    return Ok(());
                }
                let pending = self.input.pending();
                if pending.len() >= max {
                    let line_ended = pending.contains(&b'\n');
                    return Err(NoHead::Reject(if line_ended { 431 } else { 414 }));
                }
            }
            let timeout = if self.input.is_empty() {
                self.config.idle_timeout
            } else {
                let now = Instant::now();
                let end = *deadline.get_or_insert(now + self.config.head_timeout);
                let left = end.saturating_duration_since(now);
                if left.is_zero() {
                    return Err(NoHead::Reject(408));
                }
                left
            };
            self.write_out().map_err(|_| NoHead::Gone)?;
            let partial = !self.input.is_empty();
            match self.input.fill(&self.stream, max, timeout) {
                Ok(0) => return Err(NoHead::Gone),
                Ok(_) => {}
                Err(e) if partial && e.kind() == io::ErrorKind::TimedOut => return Err(NoHead::Reject(408)),
                Err(_) => return Err(NoHead::Gone),
            }
        }
    }

    /// Parse what the input holds: true (and the head consumed into
    /// `self.head`) if it is a whole head, false if it needs more.
    fn parse_head(&mut self) -> Result<bool, NoHead> {
        // Uninitialised: httparse writes the headers it finds, and a head
        // costs no 2 KiB of zeroes.
        let mut fields = [MaybeUninit::<httparse::Header>::uninit(); MAX_HEADERS];
        let mut req = httparse::Request::new(&mut []);
        let data = self.input.pending();
        let len = match req.parse_with_uninit_headers(data, &mut fields[..self.config.max_headers as usize]) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(false),
            Err(httparse::Error::TooManyHeaders) => return Err(NoHead::Reject(431)),
            Err(_) => return Err(NoHead::Reject(400)),
        };
        let base = data.as_ptr() as usize;
        let at = |s: &[u8]| (s.as_ptr() as usize - base, s.len());
        let head = &mut self.head;
        head.bytes.clear();
        head.bytes.extend_from_slice(&data[..len]);
        // httparse may give a method as a static string ("GET"), not a
        // slice of `data`: it is the request line's first word, after the
        // empty lines httparse skips.
        let line = data.iter().position(|&b| b != b'\r' && b != b'\n').unwrap_or(0);
        head.method = (line, req.method.map_or(0, str::len));
        head.target = at(req.path.unwrap_or("").as_bytes());
        head.minor = req.version.unwrap_or(1);
        head.fields.clear();
        head.fields.extend(req.headers.iter().map(|h| Field { name: at(h.name.as_bytes()), value: at(h.value) }));
        self.input.consume(len);
        if head.minor == 1 && head.get(b"host").is_none() {
            return Err(NoHead::Reject(400)); // RFC 9112 3.2: a 1.1 request names its host
        }
        if head.all(b"host").nth(1).is_some() {
            return Err(NoHead::Reject(400)); // and once: a proxy may have routed by the other
        }
        Ok(true)
    }

    /// Answer `status` with a short text (the connection then closes).
    fn reject(&mut self, status: u16) {
        let reason = reason(status);
        self.out.extend_from_slice(b"HTTP/1.1 ");
        push_dec(&mut self.out, status as u64);
        self.out.push(b' ');
        self.out.extend_from_slice(reason.as_bytes());
        self.out.extend_from_slice(b"\r\nDate: ");
        self.out.extend_from_slice(self.date.now());
        self.out.extend_from_slice(b"\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ");
        push_dec(&mut self.out, reason.len() as u64 + 1);
        self.out.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
        self.out.extend_from_slice(reason.as_bytes());
        self.out.push(b'\n');
    }

    /// Write what is buffered, stop writing, and drop what the client
    /// still sends for a while, so that it reads the last response rather
    /// than a reset (a socket closed with unread input sends one).
    fn close(&mut self) -> io::Result<()> {
        self.write_out()?;
        let _ = self.stream.shutdown(Shutdown::Write);
        let end = Instant::now() + LINGER;
        let mut scratch = [0u8; 4096];
        let mut dropped = 0usize;
        while dropped < (1 << 20) {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.stream.read_timeout_once(&mut scratch, left) {
                Ok(n @ 1..) => dropped += n,
                _ => break,
            }
        }
        Ok(())
    }

    fn write_out(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            let r = (&self.stream).write_all(&self.out);
            self.out.clear();
            r?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// input

/// Bytes read from the socket: `buf[start..end]` is not consumed yet.
struct Input {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Input {
    fn is_empty(&self) -> bool {
        self.start == self.end
    }

    fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Read more after what is pending (keeping at most `max` pending:
    /// the buffer grows up to that), waiting at most `timeout`. Ok(0) at
    /// the end of the stream.
    fn fill(&mut self, stream: &TcpStream, max: usize, timeout: Duration) -> io::Result<usize> {
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.buf.len() < max {
                self.buf.resize(max.min(self.buf.len() * 2), 0);
            }
        }
        let stop = self.buf.len().min(self.start + max);
        if stop <= self.end {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "the input buffer is full"));
        }
        let n = stream.read_timeout_once(&mut self.buf[self.end..stop], timeout)?;
        self.end += n;
        Ok(n)
    }

    /// Up to `dst.len()` bytes: what is pending, else one read (straight
    /// into `dst` when it is large).
    fn read(&mut self, stream: &TcpStream, dst: &mut [u8], timeout: Duration) -> io::Result<usize> {
        if self.is_empty() {
            if dst.len() >= self.buf.len() / 2 {
                return stream.read_timeout_once(dst, timeout);
            }
            if self.fill(stream, self.buf.len(), timeout)? == 0 {
                return Ok(0);
            }
        }
        let n = dst.len().min(self.end - self.start);
        dst[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
        self.consume(n);
        Ok(n)
    }

    /// The next line (up to and with its `\n`, at most `max` bytes), left
    /// in the buffer: its length, to `consume` when done with it.
    fn line(&mut self, stream: &TcpStream, max: usize, timeout: Duration) -> io::Result<usize> {
        loop {
            if let Some(i) = self.pending().iter().position(|&b| b == b'\n') {
                return Ok(i + 1);
            }
            if self.end - self.start >= max {
                return Err(bad_body("a line of the chunked body is too long"));
            }
            if self.fill(stream, max.max(MAX_CHUNK_LINE), timeout)? == 0 {
                return Err(bad_body("the client closed the connection within the body"));
            }
        }
    }
}

fn bad_body(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

// ---------------------------------------------------------------------------
// the head of a request

/// A header's name and value as (offset, length) in the head's bytes.
#[derive(Clone, Copy)]
struct Field {
    name: (usize, usize),
    value: (usize, usize),
}

#[derive(Default)]
struct Head {
    bytes: Vec<u8>,
    method: (usize, usize),
    target: (usize, usize),
    minor: u8,
    fields: Vec<Field>,
}

/// How a request's body is delimited, and how much of it is left.
#[derive(Clone, Copy, Debug)]
enum Framing {
    Length(u64),
    Chunked(Chunk),
}

/// Where a chunked body's reader is.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Chunk {
    Size,
    Data(u64),
    DataEnd,
    Trailers(usize),
    Done,
}

impl Head {
    fn text(&self, (at, len): (usize, usize)) -> &[u8] {
        &self.bytes[at..at + len]
    }

    fn method(&self) -> &str {
        // httparse gives tokens, which are ASCII.
        std::str::from_utf8(self.text(self.method)).unwrap_or("")
    }

    /// The values of the headers named `name` (ASCII case ignored).
    fn all<'a>(&'a self, name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.fields.iter().filter(move |f| self.text(f.name).eq_ignore_ascii_case(name)).map(|f| self.text(f.value))
    }

    fn get(&self, name: &[u8]) -> Option<&[u8]> {
        let f = self.fields.iter().find(|f| self.text(f.name).eq_ignore_ascii_case(name))?;
        Some(self.text(f.value))
    }

    /// Whether a comma-separated header (`Connection`) has `token`.
    fn has_token(&self, name: &[u8], token: &[u8]) -> bool {
        self.all(name).any(|v| v.split(|&b| b == b',').any(|t| trim(t).eq_ignore_ascii_case(token)))
    }

    fn keep_alive(&self) -> bool {
        if self.minor == 0 {
            self.has_token(b"connection", b"keep-alive")
        } else {
            !self.has_token(b"connection", b"close")
        }
    }

    fn expects_continue(&self) -> bool {
        self.minor == 1 && self.get(b"expect").is_some_and(|v| trim(v).eq_ignore_ascii_case(b"100-continue"))
    }

    /// The body's framing, or the status refusing it (RFC 9112 6): only
    /// `chunked` as a transfer coding (501 otherwise), not together with a
    /// `Content-Length` (400: a request smuggling attempt, or a broken
    /// proxy), and all `Content-Length`s one decimal number (400).
    fn framing(&self) -> Result<Framing, u16> {
        let mut codings = self.all(b"transfer-encoding");
        if let Some(te) = codings.next() {
            if self.get(b"content-length").is_some() || self.minor == 0 {
                return Err(400);
            }
            if codings.next().is_some() || !trim(te).eq_ignore_ascii_case(b"chunked") {
                return Err(501);
            }
            return Ok(Framing::Chunked(Chunk::Size));
        }
        let mut length = None;
        for v in self.all(b"content-length") {
            let n = parse_dec(trim(v)).ok_or(400u16)?;
            if length.is_some_and(|l| l != n) {
                return Err(400);
            }
            length = Some(n);
        }
        Ok(Framing::Length(length.unwrap_or(0)))
    }
}

/// `s` without the spaces and tabs around it (HTTP's OWS).
fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| b != b' ' && b != b'\t').unwrap_or(s.len());
    let end = s.iter().rposition(|&b| b != b' ' && b != b'\t').map_or(start, |i| i + 1);
    &s[start..end]
}

fn parse_dec(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u64, |n, &d| n * 10 + (d - b'0') as u64))
}

// ---------------------------------------------------------------------------
// requests

/// A request: its head, and its body as `std::io::Read` (decoded: the
/// bytes of a chunked body without its framing; end of file at its end).
/// A body read fails when the client sends a broken body or more than
/// [`Config::max_body`], or stalls past the I/O timeout; the answer is then
/// `400`, `413` or `408` unless the handler had begun its own.
pub struct Request<'c> {
    head: &'c Head,
    body: Body<'c>,
}

impl Request<'_> {
    /// The method, as sent (`"GET"`).
    pub fn method(&self) -> &str {
        self.head.method()
    }

    /// The request target as sent: a path and query (`"/a/b?x=1"`), or
    /// `"*"`, or an absolute URL.
    pub fn target(&self) -> &str {
        std::str::from_utf8(self.head.text(self.head.target)).unwrap_or("")
    }

    /// The target without its query (`"/a/b"`), not percent-decoded.
    pub fn path(&self) -> &str {
        let t = self.target();
        t.split_once('?').map_or(t, |(p, _)| p)
    }

    /// The query, after the `?` (`"x=1"`), not percent-decoded.
    pub fn query(&self) -> Option<&str> {
        self.target().split_once('?').map(|(_, q)| q)
    }

    /// The HTTP minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub fn minor_version(&self) -> u8 {
        self.head.minor
    }

    /// The first header of this name (ASCII case ignored), if its value
    /// is UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.get(name.as_bytes()).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every header, in order, as sent (names as the client spelled them).
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.head.fields.iter().map(|f| {
            // httparse gives header names that are tokens: ASCII.
            (std::str::from_utf8(self.head.text(f.name)).unwrap_or(""), self.head.text(f.value))
        })
    }

    /// The body's length when the client gave it (`Content-Length`); `None`
    /// for a chunked body.
    pub fn content_length(&self) -> Option<u64> {
        match self.body.framing {
            Framing::Length(_) => self.head.get(b"content-length").and_then(|v| parse_dec(trim(v))).or(Some(0)),
            Framing::Chunked(_) => None,
        }
    }

    /// The client's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.body.stream.peer_addr()
    }
}

impl Read for Request<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.body.read(buf)
    }
}

/// A request's body: reads through the connection's input.
struct Body<'c> {
    stream: &'c TcpStream,
    input: &'c mut Input,
    framing: Framing,
    read: u64,
    max_body: u64,
    timeout: Duration,
    /// Set when a read failed: the status that answers it.
    failed: Option<u16>,
    /// The client waits for `100 Continue` before it sends the body.
    expect: bool,
    continued: bool,
    responded: &'c Cell<bool>,
}

impl Body<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(status) = self.failed {
            return Err(io::Error::new(io::ErrorKind::InvalidData, reason(status)));
        }
        if buf.is_empty() || matches!(self.framing, Framing::Length(0) | Framing::Chunked(Chunk::Done)) {
            return Ok(0);
        }
        if self.expect && !self.continued && !self.responded.get() {
            self.continued = true;
            (&*self.stream).write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let r = match self.framing {
            Framing::Length(left) => self.read_exact_part(buf, left).map(|n| {
                self.framing = Framing::Length(left - n as u64);
                n
            }),
            Framing::Chunked(_) => self.read_chunked(buf),
        };
        r.map_err(|e| {
            self.failed = Some(match e.kind() {
                io::ErrorKind::TimedOut => 408,
                _ if self.read > self.max_body => 413,
                _ => 400,
            });
            e
        })
    }

    /// Up to `left` bytes of the body; end of stream is an error.
    fn read_exact_part(&mut self, buf: &mut [u8], left: u64) -> io::Result<usize> {
        let want = buf.len().min(left.min(usize::MAX as u64) as usize);
        let n = self.input.read(self.stream, &mut buf[..want], self.timeout)?;
        if n == 0 {
            return Err(bad_body("the client closed the connection within the body"));
        }
        self.read += n as u64;
        Ok(n)
    }

    fn read_chunked(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Framing::Chunked(state) = self.framing else { unreachable!() };
            let next = match state {
                Chunk::Size => {
                    let len = self.input.line(self.stream, MAX_CHUNK_LINE, self.timeout)?;
                    let size = match httparse::parse_chunk_size(&self.input.pending()[..len]) {
                        Ok(httparse::Status::Complete((_, size))) => size,
                        _ => return Err(bad_body("a chunk's size does not parse")),
                    };
                    self.input.consume(len);
                    if size > self.max_body.saturating_sub(self.read) {
                        self.read = self.read.saturating_add(size);
                        return Err(bad_body("the request body is larger than the server accepts"));
                    }
                    if size == 0 {
                        Chunk::Trailers(0)
                    } else {
                        Chunk::Data(size)
                    }
                }
                Chunk::Data(left) => {
                    let n = self.read_exact_part(buf, left)?;
                    self.framing =
                        Framing::Chunked(if n as u64 == left { Chunk::DataEnd } else { Chunk::Data(left - n as u64) });
                    return Ok(n);
                }
                Chunk::DataEnd => {
                    let len = self.input.line(self.stream, 2, self.timeout)?;
                    if !matches!(&self.input.pending()[..len], b"\r\n" | b"\n") {
                        return Err(bad_body("a chunk is longer than its size"));
                    }
                    self.input.consume(len);
                    Chunk::Size
                }
                Chunk::Trailers(seen) => {
                    // Trailer fields are read and dropped, bounded like a head.
                    let len = self.input.line(self.stream, MAX_CHUNK_LINE * 8, self.timeout)?;
                    let blank = matches!(&self.input.pending()[..len], b"\r\n" | b"\n");
                    self.input.consume(len);
                    if blank {
                        self.framing = Framing::Chunked(Chunk::Done);
                        return Ok(0);
                    }
                    if seen + len > MAX_CHUNK_LINE * 8 {
                        return Err(bad_body("the chunked body's trailers are too long"));
                    }
                    Chunk::Trailers(seen + len)
                }
                Chunk::Done => return Ok(0),
            };
            self.framing = Framing::Chunked(next);
        }
    }

    /// After the handler: read what is left of a small body so that the
    /// next request can be read; false if the connection must close.
    fn settle(&mut self) -> bool {
        if self.failed.is_some() {
            return false;
        }
        let done = matches!(self.framing, Framing::Length(0) | Framing::Chunked(Chunk::Done));
        if done {
            return true;
        }
        if self.expect && !self.continued {
            return false; // the client may or may not send it now
        }
        if let Framing::Length(left) = self.framing {
            if left > DRAIN_MAX {
                return false;
            }
        }
        let limit = self.read.saturating_add(DRAIN_MAX);
        let mut scratch = [0u8; 4096];
        while self.read <= limit {
            match self.read(&mut scratch) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        false
    }
}

// ---------------------------------------------------------------------------
// responses

/// Where a response is: before its head, or writing its body.
#[derive(Clone, Copy, Debug, PartialEq)]
enum State {
    Head,
    /// `Content-Length`: this many bytes still to write.
    Fixed(u64),
    Chunked,
    /// HTTP/1.0 without a length: the body ends when the connection closes.
    UntilClose,
    /// No body may follow (HEAD, 204, 304): writes are dropped (HEAD) or refused.
    NoBody,
    Done,
}

/// A response: set the status and headers, then [`send`](Self::send) a
/// body or write one (`std::io::Write`). Without either, the response is
/// empty (`Content-Length: 0`). The server adds `Date`, `Content-Length`
/// or `Transfer-Encoding`, and `Connection` as needed.
///
/// Written bytes are buffered: a streamed body goes out in chunks of
/// 16 KiB or when [`flush`](Write::flush) is called, and the whole
/// response when the handler returns.
pub struct Response<'c> {
    stream: &'c TcpStream,
    out: &'c mut Vec<u8>,
    chunk: &'c mut Vec<u8>,
    date: &'c mut DateCache,
    responded: &'c Cell<bool>,
    status: u16,
    /// The handler's header lines, each ending with CRLF.
    extra: Vec<u8>,
    invalid: Option<&'static str>,
    length: Option<u64>,
    own_date: bool,
    keep_alive: bool,
    minor: u8,
    head_only: bool,
    state: State,
}

impl Response<'_> {
    /// The status code (200 unless set), 200 to 599; ignored once the
    /// response has begun.
    pub fn status(&mut self, code: u16) -> &mut Self {
        if self.state == State::Head {
            if (200..600).contains(&code) {
                self.status = code;
            } else {
                self.invalid = Some("a response status must be 200 to 599");
            }
        }
        self
    }

    /// Add a header; ignored once the response has begun. A name that is
    /// not a token, or a value with a line break, makes the response fail
    /// (`InvalidInput`) rather than be sent. `Content-Length` sets the
    /// body's length ([`content_length`](Self::content_length));
    /// `Connection: close` closes the connection after this response;
    /// `Transfer-Encoding` is the server's to set (refused).
    pub fn header(&mut self, name: &str, value: &str) -> &mut Self {
        if self.state != State::Head {
            return self;
        }
        let value = value.trim_matches(|c| c == ' ' || c == '\t');
        if name.is_empty() || !name.bytes().all(is_token) {
            self.invalid = Some("a header name must be a token");
        } else if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            self.invalid = Some("a header value must not break the line");
        } else if name.eq_ignore_ascii_case("content-length") {
            match parse_dec(value.as_bytes()) {
                Some(n) => self.length = Some(n),
                None => self.invalid = Some("Content-Length must be a number"),
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            self.invalid = Some("Transfer-Encoding is the server's to set");
        } else if name.eq_ignore_ascii_case("connection") {
            if value.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")) {
                self.keep_alive = false;
            }
        } else {
            self.own_date |= name.eq_ignore_ascii_case("date");
            self.extra.extend_from_slice(name.as_bytes());
            self.extra.extend_from_slice(b": ");
            self.extra.extend_from_slice(value.as_bytes());
            self.extra.extend_from_slice(b"\r\n");
        }
        self
    }

    /// Announce the body's length: writes must then total exactly `n`
    /// bytes (fewer closes the connection after the response, more is an
    /// error).
    pub fn content_length(&mut self, n: u64) -> &mut Self {
        if self.state == State::Head {
            self.length = Some(n);
        }
        self
    }

    /// Close the connection after this response.
    pub fn close(&mut self) -> &mut Self {
        self.keep_alive = false;
        self
    }

    /// Send the response with `body` as its whole body; the response is
    /// then complete (later writes fail).
    pub fn send(&mut self, body: &[u8]) -> io::Result<()> {
        if self.state != State::Head {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "the response has begun already"));
        }
        self.length = Some(body.len() as u64);
        self.begin()?;
        self.write_body(body)?;
        self.state = State::Done;
        Ok(())
    }

    /// Whether the head has been written (status and headers are fixed).
    pub fn started(&self) -> bool {
        self.state != State::Head
    }

    /// Write the head, choosing the body's framing.
    fn begin(&mut self) -> io::Result<()> {
        if let Some(why) = self.invalid {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, why));
        }
        let bodiless = self.status == 204 || self.status == 304;
        self.state = if bodiless {
            State::NoBody
        } else if let Some(n) = self.length {
            State::Fixed(n)
        } else if self.minor == 1 {
            State::Chunked
        } else {
            self.keep_alive = false;
            State::UntilClose
        };
        self.responded.set(true);
        let out = &mut *self.out;
        out.extend_from_slice(if self.minor == 0 { b"HTTP/1.0 " } else { b"HTTP/1.1 " });
        push_dec(out, self.status as u64);
        out.push(b' ');
        out.extend_from_slice(reason(self.status).as_bytes());
        out.extend_from_slice(b"\r\n");
        if !self.own_date {
            out.extend_from_slice(b"Date: ");
            out.extend_from_slice(self.date.now());
            out.extend_from_slice(b"\r\n");
        }
        match self.state {
            State::Fixed(n) => {
                out.extend_from_slice(b"Content-Length: ");
                push_dec(out, n);
                out.extend_from_slice(b"\r\n");
            }
            State::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
            _ => {}
        }
        if !self.keep_alive {
            out.extend_from_slice(b"Connection: close\r\n");
        } else if self.minor == 0 {
            out.extend_from_slice(b"Connection: keep-alive\r\n");
        }
        out.extend_from_slice(&self.extra);
        out.extend_from_slice(b"\r\n");
        if self.head_only {
            self.state = State::NoBody;
        }
        Ok(())
    }

    /// Body bytes, framed as the state says.
    fn write_body(&mut self, buf: &[u8]) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(()); // `send(b"")` of a 204, a write of nothing
        }
        match self.state {
            State::Fixed(left) => {
                if buf.len() as u64 > left {
                    return Err(io::Error::new(io::ErrorKind::InvalidInput, "more than the Content-Length"));
                }
                self.state = State::Fixed(left - buf.len() as u64);
                self.put(buf)
            }
            State::UntilClose => self.put(buf),
            State::Chunked => {
                self.chunk.extend_from_slice(buf);
                if self.chunk.len() >= CHUNK {
                    self.put_chunk()?;
                }
                Ok(())
            }
            State::NoBody if self.head_only => Ok(()),
            State::NoBody => Err(io::Error::new(io::ErrorKind::InvalidInput, "this status has no body")),
            State::Done => Err(io::Error::new(io::ErrorKind::InvalidInput, "the response is complete")),
            State::Head => unreachable!("the head is written first"),
        }
    }

    /// Append to the output, writing it out when it is big.
    fn put(&mut self, buf: &[u8]) -> io::Result<()> {
        if self.out.len() + buf.len() < FLUSH_AT {
            self.out.extend_from_slice(buf);
            return Ok(());
        }
        self.write_out()?;
        if buf.len() >= FLUSH_AT {
            (&*self.stream).write_all(buf)
        } else {
            self.out.extend_from_slice(buf);
            Ok(())
        }
    }

    /// The pending chunk, framed, into the output.
    fn put_chunk(&mut self) -> io::Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let mut size = Vec::with_capacity(20);
        push_hex(&mut size, self.chunk.len() as u64);
        size.extend_from_slice(b"\r\n");
        self.put(&size)?;
        let chunk = std::mem::take(self.chunk);
        let r = self.put(&chunk);
        *self.chunk = chunk;
        self.chunk.clear();
        r?;
        self.put(b"\r\n")
    }

    fn write_out(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            let r = (&*self.stream).write_all(self.out);
            self.out.clear();
            r?;
        }
        Ok(())
    }

    /// End the response after the handler returned; true if the
    /// connection can go on.
    fn finish(&mut self) -> io::Result<bool> {
        if self.state == State::Head {
            self.length.get_or_insert(0);
            self.begin()?;
        }
        match self.state {
            State::Chunked => {
                self.put_chunk()?;
                self.put(b"0\r\n\r\n")?;
            }
            State::Fixed(left) if left > 0 => self.keep_alive = false,
            _ => {}
        }
        self.state = State::Done;
        Ok(self.keep_alive)
    }
}

impl Write for Response<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.state == State::Head {
            self.begin()?;
        }
        self.write_body(buf)?;
        Ok(buf.len())
    }

    /// Send what is written so far (as a chunk, when chunked).
    fn flush(&mut self) -> io::Result<()> {
        if self.state == State::Head {
            self.begin()?;
        }
        if self.state == State::Chunked {
            self.put_chunk()?;
        }
        self.write_out()
    }
}

/// RFC 9110's `tchar`.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn push_dec(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

fn push_hex(out: &mut Vec<u8>, n: u64) {
    let digits = 64 - n.leading_zeros().min(60) as usize;
    for shift in (0..digits.div_ceil(4)).rev() {
        out.push(b"0123456789abcdef"[(n >> (shift * 4)) as usize & 15]);
    }
}

/// The reason phrase of a status (RFC 9110 15).
fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

/// The `Date` header's text (IMF-fixdate), made once a second.
#[derive(Default)]
struct DateCache {
    secs: u64,
    text: [u8; 29],
}

impl DateCache {
    fn now(&mut self) -> &[u8] {
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if secs != self.secs || self.text[0] == 0 {
            self.secs = secs;
            self.text = imf_fixdate(secs);
        }
        &self.text
    }
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` for a time in seconds since 1970.
fn imf_fixdate(secs: u64) -> [u8; 29] {
    let days = secs / 86400;
    let rem = secs % 86400;
    // Days to a civil date (proleptic Gregorian; H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u64;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as usize;
    let year = (yoe + era * 400 + (month <= 2) as i64) as u64;
    const WEEKDAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] =
        [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];
    let two = |n: u64| [b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8];
    let mut t = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    t[..3].copy_from_slice(WEEKDAYS[(days % 7) as usize]);
    t[5..7].copy_from_slice(&two(day));
    t[8..11].copy_from_slice(MONTHS[month - 1]);
    t[12..14].copy_from_slice(&two(year / 100));
    t[14..16].copy_from_slice(&two(year % 100));
    t[17..19].copy_from_slice(&two(rem / 3600));
    t[20..22].copy_from_slice(&two(rem / 60 % 60));
    t[23..25].copy_from_slice(&two(rem % 60));
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_imf_fixdates() {
        assert_eq!(&imf_fixdate(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(&imf_fixdate(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(&imf_fixdate(951_825_600), b"Tue, 29 Feb 2000 12:00:00 GMT");
    }

    #[test]
    fn numbers_print() {
        let mut v = Vec::new();
        push_hex(&mut v, 0);
        v.push(b' ');
        push_hex(&mut v, 0x4000);
        v.push(b' ');
        push_dec(&mut v, 18_446_744_073_709_551_615);
        assert_eq!(v, b"0 4000 18446744073709551615");
        assert_eq!(parse_dec(b"12"), Some(12));
        assert_eq!(parse_dec(b"+12"), None);
        assert_eq!(parse_dec(b"99999999999999999999"), None);
    }
}
