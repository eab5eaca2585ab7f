//! Whole programs as child processes: any WASI command module (a
//! `wasm32-wasip1` program with a `main`, in C, Rust, Zig, ...) runs as a
//! process of its own, with its own arguments, environment, capabilities
//! and stdio, as `std::process::Command` runs an executable.
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use wisp::program::{Program, Stdio};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut child = Program::from_path("/p/filter.wasm")   // read with the caller's capabilities
//!     .arg("upper")
//!     .env("LANG", "C")
//!     .stdin(Stdio::piped())
//!     .stdout(Stdio::piped())
//!     .spawn()?;                                          // ProgramError: the host's reason
//! child.stdin.take().unwrap().write_all(b"hello\n")?;     // dropped: end of file for the program
//! let mut out = String::new();
//! child.stdout.take().unwrap().read_to_string(&mut out)?;
//! let status = child.wait()?;                             // its exit status, from its monitor
//! assert!(status.success());
//! assert_eq!(out, "HELLO\n");
//! # Ok(()) }
//! ```
//!
//! What the child gets:
//!
//! - **Module**: [`Program::new`] takes the module's bytes;
//!   [`Program::from_path`] reads a file at each spawn, through `std::fs`,
//!   so under the caller's own directories (a denial names what is
//!   missing). The host compiles a module once per run (the caller parks
//!   meanwhile) and finds it by its hash afterwards; the compile cache
//!   makes the next run's first spawn cheap too. A module wisp cannot run
//!   is refused with the reason `wisp run` would give, the import wisp
//!   lacks say ([`ProgramError::Invalid`]).
//! - **Arguments**: `argv[0]` is the path given to `from_path`, or
//!   `"program"` for bytes ([`Program::arg0`] changes it), then
//!   [`arg`](Program::arg)/[`args`](Program::args).
//! - **Environment**: the caller's own (`std::env::vars_os`), changed by
//!   [`env`](Program::env), [`envs`](Program::envs),
//!   [`env_remove`](Program::env_remove) and
//!   [`env_clear`](Program::env_clear), as std's.
//! - **Capabilities**: a copy of the caller's set (directories, network
//!   rules, limits), or a narrowed [`Caps`] ([`Program::caps`]); never
//!   more than the caller has. The set's environment and stdio do not
//!   apply: a program gets the environment and stdio its `Program` says.
//! - **Stdio**: per stream, a [`Stdio`]: [`inherit`](Stdio::inherit) (a
//!   copy of the caller's own fd 0, 1 or 2: the default of
//!   [`spawn`](Program::spawn) and [`status`](Program::status)),
//!   [`null`](Stdio::null), [`closed`](Stdio::closed), [`piped`](Stdio::piped)
//!   (the default of [`output`](Program::output) for stdout and stderr), or
//!   a file descriptor the caller holds: a [`ChildStdout`] of another
//!   program (a pipeline), a [`TcpStream`] (a program serving one
//!   connection), a `std::fs::File`, any `OwnedFd`.
//! - **Served directories**: [`Program::mount_served`] gives the program
//!   one more directory, whose files a process of the caller's choosing
//!   serves: a [`MemFs`](crate::served::MemFs) in memory, or any
//!   [`FileServer`](crate::served::FileServer) (see [`served`](crate::served)).
//!   Host directories come only from the capability set.
//!
//! **Pipes** are kernel pipes. The caller's end is an ordinary file
//! descriptor of the caller's ([`ChildStdin`] implements `Write`,
//! [`ChildStdout`] and [`ChildStderr`] `Read`): reading an empty pipe or
//! writing a full one parks only the calling process, so a program that
//! reads slowly makes its writer wait, and nothing is lost. Dropping a
//! [`ChildStdin`] closes it: the program reads end of file. When the
//! program ends its ends close, and the caller reads end of file.
//!
//! **The end** of a program is its exit reason, as for any process:
//! `Normal` for status 0, `Code(status)`, `Trap(text)`, `Killed`, or
//! `Limit` ([`ExitReason`]). Every child is monitored from its start (the
//! spawn and the monitor are one step), and [`Child::wait`] takes exactly
//! the `Down` of that monitor (a selective receive by its ref): messages,
//! calls, other children's `Down`s and exit signals stay queued, in order.
//! So a loop that takes *every* message ([`Mailbox::receive_event`],
//! a server's `handle_info`) takes the child's `Down` too, as an
//! [`Event::Down`] whose monitor is [`Child::monitor`]; `wait` would then
//! wait for ever: turn it into an [`ExitStatus`] with `From<ExitReason>`
//! instead. [`Program::link`] links the child as well (Erlang's rules:
//! a caller that does not trap exits dies with the child's abnormal
//! reason).
//!
//! Dropping a [`Child`] does not stop the program (as std's does not): it
//! runs on, its pipes as they are, and its `Down` is not delivered (the
//! monitor is removed). [`Child::kill`] ends it.
//!
//! [`Mailbox::receive_event`]: crate::Mailbox::receive_event
//! [`Event::Down`]: crate::Event::Down

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use crate::caps::{self, Caps};
use crate::fs::explain;
use crate::message::receive_raw;
use crate::process::{ExitReason, MonitorRef, Pid};
use crate::socket::TcpStream;
use crate::sys;
use crate::time::{timeout_ns, FOREVER};

/// `argv[0]` of a program given as bytes.
const DEFAULT_ARG0: &str = "program";

/// Room for the host's reason (it writes at most 600 bytes).
const WHY_CAP: usize = 1024;

// ---- Stdio ----

/// What one of a program's standard streams (stdin, stdout, stderr) is:
/// `std::process::Stdio`'s counterpart (see the [module docs](self)).
///
/// A value holding a file descriptor ([`Stdio::fd`] and the `From`
/// conversions) owns it, and may be cloned to give the same descriptor to
/// two streams (a socket as both stdin and stdout): the program gets a
/// copy of it, and the caller's closes when the last clone and the
/// [`Program`] holding it are dropped.
#[derive(Clone, Debug)]
pub struct Stdio(Kind);

#[derive(Clone, Debug)]
enum Kind {
    Inherit,
    Null,
    Closed,
    Piped,
    Fd(Rc<OwnedFd>),
}

impl Stdio {
    /// The caller's own stream (a copy of its fd 0, 1 or 2); closed for
    /// the program if the caller's is closed.
    pub fn inherit() -> Stdio {
        Stdio(Kind::Inherit)
    }

    /// `/dev/null`: reads see end of file, writes are discarded.
    pub fn null() -> Stdio {
        Stdio(Kind::Null)
    }

    /// No such file descriptor at all (reads and writes fail with `EBADF`).
    pub fn closed() -> Stdio {
        Stdio(Kind::Closed)
    }

    /// A new pipe between the program and the caller, whose end is in
    /// [`Child::stdin`], [`Child::stdout`] or [`Child::stderr`].
    pub fn piped() -> Stdio {
        Stdio(Kind::Piped)
    }

    /// A file descriptor of the caller's: a pipe, a socket, a file. The
    /// program gets a copy of it (the host duplicates it).
    pub fn fd(fd: impl Into<OwnedFd>) -> Stdio {
        Stdio(Kind::Fd(Rc::new(fd.into())))
    }

    /// The `WISP_STDIO_*` value of the spec.
    fn mode(&self) -> u32 {
        match &self.0 {
            Kind::Inherit => sys::STDIO_INHERIT,
            Kind::Null => sys::STDIO_NULL,
            Kind::Closed => sys::STDIO_CLOSED,
            Kind::Piped => sys::STDIO_PIPE,
            Kind::Fd(fd) => sys::STDIO_FD | fd.as_raw_fd() as u32,
        }
    }
}

/// The capability sets' stdio modes ([`caps::Stdio`]) as a program's.
impl From<caps::Stdio> for Stdio {
    fn from(s: caps::Stdio) -> Stdio {
        match s {
            caps::Stdio::Inherit => Stdio::inherit(),
            caps::Stdio::Null => Stdio::null(),
            caps::Stdio::Closed => Stdio::closed(),
        }
    }
}

impl From<OwnedFd> for Stdio {
    fn from(fd: OwnedFd) -> Stdio {
        Stdio::fd(fd)
    }
}

impl From<File> for Stdio {
    fn from(f: File) -> Stdio {
        Stdio::fd(f)
    }
}

/// A connection as a program's stream: clone the `Stdio` to make it both
/// its stdin and its stdout.
impl From<TcpStream> for Stdio {
    fn from(s: TcpStream) -> Stdio {
        Stdio::fd(s)
    }
}

// ---- errors and statuses ----

/// Why a program could not be started. Each host refusal carries the
/// host's reason, e.g. `the module imports "wisp_process"."teleport", which
/// wisp does not provide`.
#[derive(Debug)]
#[non_exhaustive]
pub enum ProgramError {
    /// The module's file could not be read ([`Program::from_path`]); a
    /// capability denial is `PermissionDenied` naming what is missing.
    Read {
        /// The path given.
        path: PathBuf,
        /// What reading it said.
        error: io::Error,
    },
    /// Not a module wisp runs (malformed, an import wisp lacks, no
    /// `_start`), or a bad argument (a NUL inside an argument, a stdio
    /// descriptor the caller does not hold, a capability set that is not
    /// the caller's).
    Invalid(String),
    /// The module is over 256 MiB, or the arguments or environment over
    /// 1 MiB.
    TooBig(String),
    /// The caller's capabilities do not let it spawn
    /// ([`Caps::deny_spawn`], a process limit of 0).
    Denied(String),
    /// A process limit was reached, or no file descriptor was left for a
    /// pipe.
    Limit(String),
    /// The host could not allocate.
    NoMemory(String),
    /// A served directory's server is not running
    /// ([`Program::mount_served`]): "mount /data: no process N to serve it".
    NoServer(String),
}

impl ProgramError {
    /// The host's reason (or, for [`Read`](ProgramError::Read), the
    /// error's text).
    pub fn reason(&self) -> String {
        match self {
            ProgramError::Read { error, .. } => error.to_string(),
            ProgramError::Invalid(r)
            | ProgramError::TooBig(r)
            | ProgramError::Denied(r)
            | ProgramError::Limit(r)
            | ProgramError::NoMemory(r)
            | ProgramError::NoServer(r) => r.clone(),
        }
    }

    fn from_host(rc: i32, why: &[u8]) -> ProgramError {
        let end = why.iter().position(|&b| b == 0).unwrap_or(why.len());
        let mut r = String::from_utf8_lossy(&why[..end]).into_owned();
        if r.is_empty() {
            r = format!("the host refused (wisp code {rc})");
        }
        match rc {
            sys::ETOOBIG => ProgramError::TooBig(r),
            sys::EPERM => ProgramError::Denied(r),
            sys::ELIMIT => ProgramError::Limit(r),
            sys::ENOMEM => ProgramError::NoMemory(r),
            sys::ENOPROC => ProgramError::NoServer(r),
            _ => ProgramError::Invalid(r),
        }
    }
}

impl fmt::Display for ProgramError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProgramError::Read { path, error } => {
                // (A capability denial's text already starts with the path.)
                let path = path.display().to_string();
                let error = error.to_string();
                let why = error.strip_prefix(&path).and_then(|r| r.strip_prefix(": ")).unwrap_or(&error);
                write!(f, "cannot read the program {path}: {why}")
            }
            ProgramError::Denied(r) => write!(
                f,
                "cannot start the program: {r} (the caller's capabilities deny spawning: Caps::deny_spawn, \
                 a process limit of 0, or wisp run --max-processes 0)"
            ),
            e => write!(f, "cannot start the program: {}", e.reason()),
        }
    }
}

impl std::error::Error for ProgramError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProgramError::Read { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// As an `io::Error` (for `?` in functions returning `io::Result`), its
/// text kept: a denial is `PermissionDenied`, a module or argument wisp
/// refuses `InvalidInput`.
impl From<ProgramError> for io::Error {
    fn from(e: ProgramError) -> io::Error {
        let kind = match &e {
            ProgramError::Read { error, .. } => error.kind(),
            ProgramError::Invalid(_) | ProgramError::TooBig(_) => io::ErrorKind::InvalidInput,
            ProgramError::Denied(_) => io::ErrorKind::PermissionDenied,
            ProgramError::NoMemory(_) => io::ErrorKind::OutOfMemory,
            ProgramError::Limit(_) => io::ErrorKind::Other,
            ProgramError::NoServer(_) => io::ErrorKind::NotConnected,
        };
        io::Error::new(kind, e)
    }
}

/// How a program ended: `std::process::ExitStatus`'s counterpart, holding
/// the program's exit reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExitStatus(ExitReason);

impl ExitStatus {
    /// True if it exited with status 0 (`ExitReason::Normal`).
    pub fn success(&self) -> bool {
        self.0.is_normal()
    }

    /// Its exit status, if it exited (0 for `Normal`); `None` if it
    /// trapped, was killed or hit a limit.
    pub fn code(&self) -> Option<i32> {
        match self.0 {
            ExitReason::Normal => Some(0),
            ExitReason::Code(c) => Some(c),
            _ => None,
        }
    }

    /// The trap's text if it trapped (`"unreachable in main"`, ...), or
    /// the panic's if it panicked.
    pub fn trap(&self) -> Option<&str> {
        match &self.0 {
            ExitReason::Trap(t) | ExitReason::Panic(t) => Some(t),
            _ => None,
        }
    }

    /// The exit reason itself.
    pub fn reason(&self) -> &ExitReason {
        &self.0
    }
}

/// The status a `Down` of a program's monitor carries (a loop that took
/// it with [`Mailbox::receive_event`](crate::Mailbox::receive_event)).
impl From<ExitReason> for ExitStatus {
    fn from(r: ExitReason) -> ExitStatus {
        ExitStatus(r)
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code() {
            Some(c) => write!(f, "exit status: {c}"),
            None => write!(f, "{}", self.0),
        }
    }
}

/// What [`Program::output`] and [`Child::wait_with_output`] collect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// How it ended.
    pub status: ExitStatus,
    /// Everything it wrote to a piped stdout (else empty).
    pub stdout: Vec<u8>,
    /// Everything it wrote to a piped stderr (else empty).
    pub stderr: Vec<u8>,
}

// ---- the caller's ends of pipes ----

macro_rules! pipe_end {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name {
            file: File,
        }

        impl $name {
            /// SAFETY: `fd` is an open fd nothing else in this process owns.
            unsafe fn from_host(fd: RawFd) -> $name {
                $name { file: File::from_raw_fd(fd) }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.file.as_raw_fd())
            }
        }

        impl AsFd for $name {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.file.as_fd()
            }
        }

        impl AsRawFd for $name {
            fn as_raw_fd(&self) -> RawFd {
                self.file.as_raw_fd()
            }
        }

        impl IntoRawFd for $name {
            fn into_raw_fd(self) -> RawFd {
                self.file.into_raw_fd()
            }
        }

        impl From<$name> for OwnedFd {
            fn from(p: $name) -> OwnedFd {
                p.file.into()
            }
        }

        /// The pipe as another program's stream (a pipeline).
        impl From<$name> for Stdio {
            fn from(p: $name) -> Stdio {
                Stdio::fd(p)
            }
        }
    };
}

pipe_end! {
    /// The caller's end of a program's stdin pipe ([`Child::stdin`]):
    /// `Write`. A write to a full pipe parks the caller until the program
    /// reads. Dropping it closes it: the program reads end of file.
    ChildStdin
}
pipe_end! {
    /// The caller's end of a program's stdout pipe ([`Child::stdout`]):
    /// `Read`. A read of an empty pipe parks the caller; end of file
    /// (`Ok(0)`) once the program has ended or closed its stdout.
    ChildStdout
}
pipe_end! {
    /// The caller's end of a program's stderr pipe ([`Child::stderr`]):
    /// `Read`, as [`ChildStdout`].
    ChildStderr
}

impl Write for ChildStdin {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &ChildStdin {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&self.file).write(buf)
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        (&self.file).write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

macro_rules! pipe_read {
    ($name:ident) => {
        impl Read for $name {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                (&*self).read(buf)
            }
            fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
                (&*self).read_to_end(buf)
            }
        }

        impl Read for &$name {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                (&self.file).read(buf)
            }
            fn read_vectored(&mut self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
                (&self.file).read_vectored(bufs)
            }
        }
    };
}
pipe_read!(ChildStdout);
pipe_read!(ChildStderr);

// ---- Program ----

/// Where the module comes from.
enum Module {
    Bytes(Vec<u8>),
    Path(PathBuf),
}

/// A program to start: `std::process::Command`'s counterpart (see the
/// [module docs](self)). Configure it with the builder methods, then
/// [`spawn`](Program::spawn) it (as often as wanted),
/// or run it to its end with [`output`](Program::output) or
/// [`status`](Program::status).
///
/// The lifetime is that of the [`Caps`] given to [`caps`](Program::caps),
/// which the `Program` borrows (a set belongs to the process that built
/// it, and the spawn names it by handle).
pub struct Program<'a> {
    module: Module,
    args: Vec<OsString>,
    env_clear: bool,
    env: BTreeMap<OsString, Option<OsString>>,
    stdio: [Option<Stdio>; 3],
    caps: Option<&'a Caps>,
    link: bool,
    mounts: Vec<(String, Pid)>,
}

impl fmt::Debug for Program<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Program");
        match &self.module {
            Module::Bytes(b) => d.field("module", &format_args!("{} bytes", b.len())),
            Module::Path(p) => d.field("module", p),
        };
        d.field("args", &self.args)
            .field("env_clear", &self.env_clear)
            .field("env", &self.env)
            .field("stdio", &self.stdio)
            .field("caps", &self.caps)
            .field("link", &self.link)
            .field("mounts", &self.mounts)
            .finish()
    }
}

impl<'a> Program<'a> {
    fn with(module: Module, arg0: OsString) -> Program<'a> {
        Program {
            module,
            args: vec![arg0],
            env_clear: false,
            env: BTreeMap::new(),
            stdio: [None, None, None],
            caps: None,
            link: false,
            mounts: Vec::new(),
        }
    }

    /// The program whose module is `bytes` (a WASI command module:
    /// `wasm32-wasip1`, with a `_start`). Its `argv[0]` is `"program"`
    /// ([`arg0`](Self::arg0) changes it).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Program<'a> {
        Program::with(Module::Bytes(bytes.into()), DEFAULT_ARG0.into())
    }

    /// The program in the file at `path`, read at each spawn with the
    /// caller's own capabilities (its directories). Its `argv[0]` is `path`
    /// as given.
    pub fn from_path(path: impl AsRef<Path>) -> Program<'a> {
        let path = path.as_ref();
        Program::with(Module::Path(path.to_path_buf()), path.as_os_str().to_owned())
    }

    /// Set `argv[0]` (what the program believes its name is).
    pub fn arg0(&mut self, name: impl AsRef<OsStr>) -> &mut Self {
        self.args[0] = name.as_ref().to_owned();
        self
    }

    /// Add an argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Add arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Set an environment variable (on top of the caller's environment,
    /// unless [`env_clear`](Self::env_clear)).
    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Self {
        self.env.insert(key.as_ref().to_owned(), Some(value.as_ref().to_owned()));
        self
    }

    /// Set environment variables.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        for (k, v) in vars {
            self.env(k, v);
        }
        self
    }

    /// Remove a variable the program would inherit.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Self {
        self.env.insert(key.as_ref().to_owned(), None);
        self
    }

    /// Inherit nothing: the program's environment is only what
    /// [`env`](Self::env) sets (afterwards; earlier settings are dropped).
    pub fn env_clear(&mut self) -> &mut Self {
        self.env_clear = true;
        self.env.clear();
        self
    }

    /// The program's stdin (default: [`Stdio::inherit`], or
    /// [`Stdio::null`] for [`output`](Self::output)).
    pub fn stdin(&mut self, s: impl Into<Stdio>) -> &mut Self {
        self.stdio[0] = Some(s.into());
        self
    }

    /// The program's stdout (default: [`Stdio::inherit`], or
    /// [`Stdio::piped`] for [`output`](Self::output)).
    pub fn stdout(&mut self, s: impl Into<Stdio>) -> &mut Self {
        self.stdio[1] = Some(s.into());
        self
    }

    /// The program's stderr (default: [`Stdio::inherit`], or
    /// [`Stdio::piped`] for [`output`](Self::output)).
    pub fn stderr(&mut self, s: impl Into<Stdio>) -> &mut Self {
        self.stdio[2] = Some(s.into());
        self
    }

    /// Run the program under `caps` (a narrowed copy of the caller's set:
    /// no directories, read-only ones, no network, limits; see [`Caps`])
    /// instead of a copy of the caller's own. The set is frozen from the
    /// first spawn on ([`CapsError::Frozen`](crate::CapsError::Frozen) for
    /// changes) and can start more children. Its environment and stdio
    /// settings do not apply to programs: the `Program`'s do.
    pub fn caps(&mut self, caps: &'a Caps) -> &mut Self {
        self.caps = Some(caps);
        self
    }

    /// Serve the program's directory `guest_path` (`"/data"`, say) by
    /// `server`, a process of this runtime: a
    /// [`MemFsServer`](crate::served::MemFsServer), the pid of a
    /// [`served::spawn`](crate::served::spawn)ed
    /// [`FileServer`](crate::served::FileServer), or any process that
    /// answers the protocol (docs/abi.md, "Served files"). The program
    /// sees one more preopened directory, after its capability set's, and
    /// its file calls below it become requests to `server`; if `server`
    /// dies they fail with `EIO` (none hangs). At most 16 per program
    /// ([`sys::MAX_MOUNTS`]); a server that is not running when the
    /// program starts is [`ProgramError::NoServer`].
    ///
    /// ```no_run
    /// use wisp::program::Program;
    /// use wisp::served::MemFs;
    /// # fn main() -> std::io::Result<()> {
    /// let site = MemFs::new().with_file("index.html", "<p>hi</p>").read_only().spawn()?;
    /// let logs = MemFs::new().spawn()?;
    /// let status = Program::from_path("/p/httpd.wasm")
    ///     .mount_served("/srv", site)
    ///     .mount_served("/var/log", logs)
    ///     .status()?;
    /// println!("{status}; access log: {:?}", logs.read("access.log")?);
    /// # Ok(()) }
    /// ```
    pub fn mount_served(&mut self, guest_path: impl AsRef<str>, server: impl Into<Pid>) -> &mut Self {
        self.mounts.push((guest_path.as_ref().to_string(), server.into()));
        self
    }

    /// Link the program to the caller as well (it is always monitored):
    /// when the program ends abnormally (a status other than 0, a trap),
    /// a caller that does not [trap exits](crate::trap_exits) dies with
    /// the same reason, and one that does gets an
    /// [`Event::Exit`](crate::Event::Exit); if the caller dies, the
    /// program does too. [`Child::wait`] works as without.
    pub fn link(&mut self) -> &mut Self {
        self.link = true;
        self
    }

    /// Start the program; its streams as set, the caller's own where not
    /// set. Returns once the module is compiled (or found) and the child
    /// exists; the program runs concurrently.
    ///
    /// ```
    /// // Not a wasm module: refused with the host's reason.
    /// let e = wisp::program::Program::new(b"not wasm".to_vec()).spawn().unwrap_err();
    /// assert!(matches!(e, wisp::program::ProgramError::Invalid(_)), "{e}");
    /// ```
    pub fn spawn(&mut self) -> Result<Child, ProgramError> {
        self.spawn_defaulting([Kind::Inherit, Kind::Inherit, Kind::Inherit])
    }

    /// Run the program to its end with stdout and stderr collected (piped
    /// unless set otherwise) and stdin [`null`](Stdio::null) unless set.
    /// Both pipes are read at once, so a program that fills one while the
    /// caller waits on the other cannot stall.
    pub fn output(&mut self) -> io::Result<Output> {
        let child = self.spawn_defaulting([Kind::Null, Kind::Piped, Kind::Piped])?;
        child.wait_with_output()
    }

    /// Run the program to its end, its streams the caller's own unless set,
    /// and return how it ended.
    pub fn status(&mut self) -> io::Result<ExitStatus> {
        self.spawn()?.wait()
    }

    fn spawn_defaulting(&mut self, defaults: [Kind; 3]) -> Result<Child, ProgramError> {
        let path_bytes;
        let module: &[u8] = match &self.module {
            Module::Bytes(b) => b,
            Module::Path(p) => {
                path_bytes = std::fs::read(p)
                    .map_err(|e| ProgramError::Read { path: p.clone(), error: explain(e, p) })?;
                &path_bytes
            }
        };
        let args = pack(self.args.iter().map(|a| a.as_encoded_bytes()), "an argument")?;
        let env = pack(self.environment().iter().map(|kv| kv.as_slice()), "an environment variable")?;
        let [d0, d1, d2] = defaults;
        let stdio = [(0, d0), (1, d1), (2, d2)]
            .map(|(i, d)| self.stdio[i].clone().unwrap_or(Stdio(d)).mode());
        // (The host reads the records and their paths during the spawn.)
        let mounts: Vec<sys::Mount> = self
            .mounts
            .iter()
            .map(|(path, server)| sys::Mount {
                server: server.raw(),
                path: addr(path.as_bytes()),
                path_len: u32::try_from(path.len()).unwrap_or(u32::MAX),
            })
            .collect();
        let spec = sys::ProgramSpec {
            module: addr(module),
            module_len: len32(module.len(), "the module")?,
            args: addr(&args),
            args_len: len32(args.len(), "the arguments")?,
            env: addr(&env),
            env_len: len32(env.len(), "the environment")?,
            caps: self.caps.map_or(-1, |c| c.raw()),
            flags: sys::SPAWN_MONITOR | if self.link { sys::SPAWN_LINK } else { 0 },
            stdio,
            mounts: addr_of(&mounts),
            nmounts: len32(mounts.len(), "the mounts")?,
        };
        let mut out = sys::ProgramOut::default();
        let mut why = [0u8; WHY_CAP];
        let rc = unsafe { sys::program_spawn(&spec, &mut out, why.as_mut_ptr(), WHY_CAP as u32) };
        if rc != sys::OK {
            return Err(ProgramError::from_host(rc, &why));
        }
        // SAFETY: the host put each pipe's end into this process's table
        // just now, as a new fd nothing else here knows.
        let end = |i: usize| (out.fds[i] >= 0).then_some(out.fds[i]);
        Ok(Child {
            stdin: end(0).map(|fd| unsafe { ChildStdin::from_host(fd) }),
            stdout: end(1).map(|fd| unsafe { ChildStdout::from_host(fd) }),
            stderr: end(2).map(|fd| unsafe { ChildStderr::from_host(fd) }),
            pid: Pid::from_raw(out.pid),
            monitor: MonitorRef(out.monitor),
            status: None,
        })
    }

    /// `KEY=VALUE` of every variable the program gets.
    fn environment(&self) -> Vec<Vec<u8>> {
        let mut vars: BTreeMap<OsString, OsString> =
            if self.env_clear { BTreeMap::new() } else { std::env::vars_os().collect() };
        for (k, v) in &self.env {
            match v {
                Some(v) => vars.insert(k.clone(), v.clone()),
                None => vars.remove(k),
            };
        }
        vars.iter()
            .map(|(k, v)| [k.as_encoded_bytes(), b"=", v.as_encoded_bytes()].concat())
            .collect()
    }
}

/// The guest address of `b` (wasm32: 32-bit).
fn addr(b: &[u8]) -> u32 {
    b.as_ptr() as usize as u32
}

/// The guest address of the records `v` holds.
fn addr_of<T>(v: &[T]) -> u32 {
    v.as_ptr() as usize as u32
}

fn len32(n: usize, what: &str) -> Result<u32, ProgramError> {
    u32::try_from(n).map_err(|_| ProgramError::TooBig(format!("{what} is over 4 GiB")))
}

/// `strings` as NUL-terminated strings back to back; a NUL inside one is
/// an error (the host would read two).
fn pack<'s>(strings: impl Iterator<Item = &'s [u8]>, what: &str) -> Result<Vec<u8>, ProgramError> {
    let mut out = Vec::new();
    for s in strings {
        if s.contains(&0) {
            return Err(ProgramError::Invalid(format!(
                "{what} contains a NUL byte: {:?}",
                String::from_utf8_lossy(s)
            )));
        }
        out.extend_from_slice(s);
        out.push(0);
    }
    Ok(out)
}

// ---- Child ----

/// A running (or ended) program: `std::process::Child`'s counterpart.
/// The caller's ends of its pipes are in the public fields (`take()` them
/// to use them on their own).
#[derive(Debug)]
pub struct Child {
    /// The caller's end of the program's stdin, if it was piped.
    pub stdin: Option<ChildStdin>,
    /// The caller's end of the program's stdout, if it was piped.
    pub stdout: Option<ChildStdout>,
    /// The caller's end of the program's stderr, if it was piped.
    pub stderr: Option<ChildStderr>,
    pid: Pid,
    monitor: MonitorRef,
    status: Option<ExitStatus>,
}

impl Child {
    /// The program's process: link, monitor, [`kill`](Pid::kill) or send
    /// it signals as any process.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The monitor whose `Down` [`wait`](Self::wait) takes (see the
    /// [module docs](self) for loops that take every message).
    pub fn monitor(&self) -> MonitorRef {
        self.monitor
    }

    /// Kill the program: it ends with `ExitReason::Killed`, wherever it
    /// is (running, or parked reading or writing a pipe). The kill is a
    /// signal, as [`Pid::kill`]: a program that ends before it reaches it
    /// ends with its own status, and one that has ended is not touched.
    /// [`wait`](Self::wait) then returns the status.
    pub fn kill(&mut self) -> io::Result<()> {
        if self.status.is_none() {
            self.pid.kill();
        }
        Ok(())
    }

    /// Wait for the program to end and return how. Its stdin, if still
    /// here, is closed first (so a program reading it to its end can
    /// finish). Only the `Down` of this child's monitor is taken from the
    /// mailbox; calling it again returns the same status.
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        Ok(self.wait_timeout(FOREVER)?.expect("wisp: a receive without a limit timed out"))
    }

    /// The status if the program has ended, without waiting.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.wait_timeout(Duration::ZERO)
    }

    /// Wait at most `timeout` for the program to end: `None` if it runs
    /// on. (Its stdin stays open.)
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            match receive_raw(&[self.monitor.raw()], timeout_ns(timeout)) {
                Ok(env) => {
                    let reason = ExitReason::from_bytes(&env.bytes)
                        .unwrap_or_else(|| ExitReason::Trap("malformed exit reason".into()));
                    self.status = Some(ExitStatus(reason));
                }
                Err(_) => return Ok(None),
            }
        }
        Ok(self.status.clone())
    }

    /// Wait for the program to end, collecting what it writes to its piped
    /// stdout and stderr (both read at once: a program filling one pipe
    /// while the caller waits on the other cannot stall). Its stdin is
    /// closed first.
    pub fn wait_with_output(mut self) -> io::Result<Output> {
        drop(self.stdin.take());
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        match (self.stdout.take(), self.stderr.take()) {
            (Some(mut out), None) => {
                out.read_to_end(&mut stdout)?;
            }
            (None, Some(mut err)) => {
                err.read_to_end(&mut stderr)?;
            }
            (Some(out), Some(err)) => read_both(out, err, &mut stdout, &mut stderr)?,
            (None, None) => {}
        }
        let status = self.wait()?;
        Ok(Output { status, stdout, stderr })
    }
}

impl Drop for Child {
    /// The program runs on; its monitor is removed, so no `Down` of it is
    /// left in the caller's mailbox.
    fn drop(&mut self) {
        if self.status.is_none() {
            self.monitor.demonitor();
        }
    }
}

// WASI's poll_oneoff layouts (preview 1): a subscription is 48 bytes
// (userdata u64 at 0, tag u8 at 8, for fd_read the fd u32 at 16), an
// event 32 (userdata u64 at 0, error u16 at 8, ...).
const SUBSCRIPTION_SIZE: usize = 48;
const EVENT_SIZE: usize = 32;
const EVENTTYPE_FD_READ: u8 = 1;

/// Read `out` and `err` to their ends at once: wait (parked, in
/// `poll_oneoff`) until either is readable, then read once from each that
/// is (one read then takes what is there, or sees end of file, without
/// waiting).
fn read_both(out: ChildStdout, err: ChildStderr, out_buf: &mut Vec<u8>, err_buf: &mut Vec<u8>) -> io::Result<()> {
    let mut pipes: [(Option<File>, &mut Vec<u8>); 2] = [(Some(out.file), out_buf), (Some(err.file), err_buf)];
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let mut subs = [0u8; 2 * SUBSCRIPTION_SIZE];
        let mut n = 0;
        for (i, (file, _)) in pipes.iter().enumerate() {
            if let Some(f) = file {
                let s = &mut subs[n * SUBSCRIPTION_SIZE..(n + 1) * SUBSCRIPTION_SIZE];
                s[0..8].copy_from_slice(&(i as u64).to_le_bytes());
                s[8] = EVENTTYPE_FD_READ;
                s[16..20].copy_from_slice(&(f.as_raw_fd() as u32).to_le_bytes());
                n += 1;
            }
        }
        if n == 0 {
            return Ok(());
        }
        let mut events = [0u8; 2 * EVENT_SIZE];
        let mut ready = 0u32;
        let rc = unsafe { sys::poll_oneoff(subs.as_ptr(), events.as_mut_ptr(), n as u32, &mut ready) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        for e in events.chunks_exact(EVENT_SIZE).take(ready as usize) {
            let i = u64::from_le_bytes(e[0..8].try_into().unwrap()) as usize;
            let (file, buf) = &mut pipes[i];
            // (An error in the event shows in the read too.)
            let got = file.as_mut().expect("wisp: an event for a closed pipe").read(&mut chunk)?;
            if got == 0 {
                *file = None;
            } else {
                buf.extend_from_slice(&chunk[..got]);
            }
        }
    }
}
