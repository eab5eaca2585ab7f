//! Served files: a process of yours answers a program's file calls.
//!
//! A [`Program`](crate::program::Program) can have a directory *served*
//! ([`Program::mount_served`](crate::program::Program::mount_served)): the
//! program sees it as one more preopened directory, and its `open`,
//! `read`, `write`, `lseek`, `fstat`, `stat`, `readdir` and `close` below
//! it become requests to a process you name. The program is an unmodified
//! WASI program that believes it reads files; what it reads is that
//! process's memory, a key-value process, a TCP stream: whatever the
//! server does.
//!
//! ```no_run
//! use wisp::program::{Program, Stdio};
//! use wisp::served::MemFs;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // An in-memory tree in a process of its own, in one line.
//! let files = MemFs::new().with_file("config.txt", "name=wisp\n").spawn()?;
//! let out = Program::from_path("/p/report.wasm")
//!     .arg("/data")
//!     .mount_served("/data", files)          // the program's /data is `files`
//!     .output()?;
//! assert!(out.status.success());
//! // What the program wrote is the server's.
//! let report = files.read("report.txt")?;
//! # Ok(()) }
//! ```
//!
//! The pieces, from the most done for you to the least:
//!
//! - [`MemFs`]: a tree of files and directories in memory (a map of path
//!   to bytes), read and written by the program; build it, [`spawn`](MemFs::spawn)
//!   it, and ask its [`MemFsServer`] for the files afterwards.
//! - [`FileServer`]: a trait with one method per request, every one but
//!   [`open`](FileServer::open) with a default that refuses with the errno
//!   POSIX would give; [`spawn`](fn@spawn) runs one as a process,
//!   [`serve`] runs one in the calling process.
//! - [`FileRequest`], [`Request`] and [`Reply`]: one request decoded from
//!   a message, typed, and its typed answer, for a loop of your own (a
//!   server that also serves other messages, or forwards requests).
//!
//! # The protocol
//!
//! docs/abi.md ("Served files") is its definition; its constants are in
//! [`sys`] (`TAG_FILE`, `FILE_OP_*`, ...), the same as the C
//! SDK's (`scripts/check-abi` checks that they agree). A request is a
//! message tagged [`sys::TAG_FILE`] from the
//! program's process, asking for a reply (every one but CLOSE); the host
//! waits for the reply, or for the server's end, which the program's call
//! sees as `EIO` (nothing hangs on a server that dies).
//!
//! - **Paths** arrive normalised by the host, relative to the mount's
//!   root (`""` is the root itself, `"sub/a.txt"` a file below it): never
//!   absolute, never with `.` or `..` (a program climbing above the root
//!   is refused before anything is sent), no symbolic links.
//! - **Handles** are the server's: [`open`](FileServer::open) makes one,
//!   every other call names it, [`close`](FileServer::close) ends it (when
//!   the program closes the file, or ends with it open). The root is
//!   opened (as a directory) when the program first lists or stats it.
//! - **Positions** are the host's: each read and write names its offset
//!   (`pread`/`pwrite`), an append write names [`WriteAt::End`], and a
//!   seek to the end asks [`stat`](FileServer::stat) for the size. A
//!   server keeps no position.
//! - **Sizes**: a read asks for at most 64 KiB ([`sys::FILE_MAX_DATA`]),
//!   a write brings at most that; fewer bytes than asked is a short read
//!   (none: the end of the file), as POSIX's.
//! - **Errors** are WASI errnos ([`Errno`]); the program's call returns the
//!   one the server answers (`ENOENT` is "No such file or directory" to a
//!   C program).
//! - **Who asks**: the host, for the programs the server is mounted into,
//!   each request from the program's own process
//!   ([`FileRequest::from`]). But a request is a message, and any process
//!   that knows the server's pid can send one (as it can kill the server:
//!   processes of one run trust each other with signals,
//!   docs/security.md). [`serve`] answers whoever asks; a server that
//!   must tell its programs from other processes runs a loop of its own
//!   and checks [`FileRequest::from`]. A reply goes to the sender alone,
//!   and one to a sender that has ended is dropped.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::ops::{Bound, ControlFlow};

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::mailbox::Mailbox;
use crate::message::{self, Envelope, ReplyTo};
use crate::process::{call_tagged, CallError, Pid, SendError};
use crate::spawn::SpawnError;
use crate::sys;
use crate::time::FOREVER;

// ---- errnos ----

/// A WASI errno: what a served call fails with, as the program sees it
/// (a C program's `errno`, a Rust program's `io::Error`). The constants
/// are the ones a file server needs; [`Errno::from_raw`] makes any other.
///
/// On `wasm32-wasip1` Rust's raw OS errors *are* WASI errnos, so an
/// `io::Error` converts both ways without loss
/// (`io::Error::from(Errno::NOENT).kind()` is `NotFound`), and `?` turns a
/// failed `std::fs` call into the errno to answer.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(u16);

impl Errno {
    /// Permission denied.
    pub const ACCES: Errno = Errno(2);
    /// Bad file descriptor: a handle that is not open (for this).
    pub const BADF: Errno = Errno(8);
    /// File exists (an exclusive create of one that does).
    pub const EXIST: Errno = Errno(20);
    /// File too large.
    pub const FBIG: Errno = Errno(22);
    /// Illegal byte sequence (a path that is not UTF-8).
    pub const ILSEQ: Errno = Errno(25);
    /// Invalid argument.
    pub const INVAL: Errno = Errno(28);
    /// I/O error: what the program sees when its server fails.
    pub const IO: Errno = Errno(29);
    /// Is a directory.
    pub const ISDIR: Errno = Errno(31);
    /// File name too long.
    pub const NAMETOOLONG: Errno = Errno(37);
    /// No such file or directory.
    pub const NOENT: Errno = Errno(44);
    /// Out of memory.
    pub const NOMEM: Errno = Errno(48);
    /// No space left on device.
    pub const NOSPC: Errno = Errno(51);
    /// Function not implemented: a request this server does not serve.
    pub const NOSYS: Errno = Errno(52);
    /// Not a directory.
    pub const NOTDIR: Errno = Errno(54);
    /// Not supported.
    pub const NOTSUP: Errno = Errno(58);
    /// Operation not permitted.
    pub const PERM: Errno = Errno(63);
    /// Read-only file system.
    pub const ROFS: Errno = Errno(69);

    /// The largest errno WASI defines (`ENOTCAPABLE`); the host answers a
    /// program `EIO` for a larger one.
    const MAX: u16 = 76;

    /// The errno numbered `raw`, if WASI defines one (1 to 76).
    pub const fn from_raw(raw: u16) -> Option<Errno> {
        if raw >= 1 && raw <= Errno::MAX {
            Some(Errno(raw))
        } else {
            None
        }
    }

    /// Its number.
    pub const fn raw(self) -> u16 {
        self.0
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Errno({})", self.0)
    }
}

/// The C library's text for it, e.g. "No such file or directory (os error 44)".
impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", io::Error::from(*self))
    }
}

impl std::error::Error for Errno {}

impl From<Errno> for io::Error {
    fn from(e: Errno) -> io::Error {
        io::Error::from_raw_os_error(i32::from(e.0))
    }
}

/// The error's own errno if it has one (any error from the host: a file,
/// a socket), else the nearest by its kind (`EIO` for the rest).
impl From<io::Error> for Errno {
    fn from(e: io::Error) -> Errno {
        if let Some(raw) = e.raw_os_error().and_then(|r| u16::try_from(r).ok()).and_then(Errno::from_raw) {
            return raw;
        }
        match e.kind() {
            io::ErrorKind::NotFound => Errno::NOENT,
            io::ErrorKind::PermissionDenied => Errno::ACCES,
            io::ErrorKind::AlreadyExists => Errno::EXIST,
            io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => Errno::INVAL,
            io::ErrorKind::Unsupported => Errno::NOTSUP,
            io::ErrorKind::OutOfMemory => Errno::NOMEM,
            _ => Errno::IO,
        }
    }
}

// ---- what requests and replies carry ----

/// A WASI filetype, as an OPEN reply, a filestat and a directory entry
/// carry it. (The host refuses sockets in a served tree, and there are no
/// symbolic links in one.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FileType {
    /// Not known (or none of the others).
    Unknown,
    /// A block device.
    BlockDevice,
    /// A character device.
    CharacterDevice,
    /// A directory: it can be listed and have files opened below it.
    Directory,
    /// A file: it can be read, written and seeked.
    RegularFile,
}

impl FileType {
    /// The WASI number (0 to 4).
    pub const fn raw(self) -> u8 {
        match self {
            FileType::Unknown => 0,
            FileType::BlockDevice => 1,
            FileType::CharacterDevice => 2,
            FileType::Directory => 3,
            FileType::RegularFile => 4,
        }
    }

    /// The filetype numbered `raw`; `None` for one a served tree cannot
    /// hold (sockets, symbolic links) or no filetype at all.
    pub const fn from_raw(raw: u8) -> Option<FileType> {
        match raw {
            0 => Some(FileType::Unknown),
            1 => Some(FileType::BlockDevice),
            2 => Some(FileType::CharacterDevice),
            3 => Some(FileType::Directory),
            4 => Some(FileType::RegularFile),
            _ => None,
        }
    }
}

/// What `stat` and `fstat` say about a file: WASI's filestat. Times are
/// nanoseconds since the Unix epoch (0: unknown).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStat {
    /// The device (0 will do).
    pub dev: u64,
    /// The inode: a number of the file's own (`ls -i`; tools that walk a
    /// tree use it to spot a file met twice).
    pub ino: u64,
    /// What it is.
    pub filetype: FileType,
    /// Hard links to it (1 will do).
    pub nlink: u64,
    /// Its size in bytes: what a seek to the end finds.
    pub size: u64,
    /// Last access.
    pub atim: u64,
    /// Last change of its data.
    pub mtim: u64,
    /// Last change of its status.
    pub ctim: u64,
}

impl FileStat {
    /// A file `size` bytes long, inode `ino`, one link, no times.
    pub const fn file(ino: u64, size: u64) -> FileStat {
        FileStat { dev: 0, ino, filetype: FileType::RegularFile, nlink: 1, size, atim: 0, mtim: 0, ctim: 0 }
    }

    /// A directory, inode `ino`, one link, no times.
    pub const fn dir(ino: u64) -> FileStat {
        FileStat { filetype: FileType::Directory, ..FileStat::file(ino, 0) }
    }

    /// WASI's layout (preview 1, 64 bytes): dev, ino, filetype (and 7
    /// bytes of padding), nlink, size, atim, mtim, ctim, little-endian.
    pub fn to_bytes(&self) -> [u8; sys::FILE_STAT_SIZE as usize] {
        let mut b = [0u8; sys::FILE_STAT_SIZE as usize];
        b[0..8].copy_from_slice(&self.dev.to_le_bytes());
        b[8..16].copy_from_slice(&self.ino.to_le_bytes());
        b[16] = self.filetype.raw();
        for (at, v) in [(24, self.nlink), (32, self.size), (40, self.atim), (48, self.mtim), (56, self.ctim)] {
            b[at..at + 8].copy_from_slice(&v.to_le_bytes());
        }
        b
    }

    /// The filestat in `b` ([`to_bytes`](Self::to_bytes)'s layout);
    /// `None` if `b` is not 64 bytes or its filetype is none a served tree
    /// holds.
    pub fn from_bytes(b: &[u8]) -> Option<FileStat> {
        if b.len() != sys::FILE_STAT_SIZE as usize {
            return None;
        }
        Some(FileStat {
            dev: le64(b, 0),
            ino: le64(b, 8),
            filetype: FileType::from_raw(b[16])?,
            nlink: le64(b, 24),
            size: le64(b, 32),
            atim: le64(b, 40),
            mtim: le64(b, 48),
            ctim: le64(b, 56),
        })
    }
}

/// One entry of a directory listing.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DirEntry {
    /// Its name in the directory (no slash).
    pub name: String,
    /// What it is (`readdir`'s `d_type`).
    pub filetype: FileType,
    /// Its inode (`d_ino`).
    pub ino: u64,
}

impl DirEntry {
    /// The entry `name`.
    pub fn new(name: impl Into<String>, filetype: FileType, ino: u64) -> DirEntry {
        DirEntry { name: name.into(), filetype, ino }
    }
}

/// WASI dirents of `entries` back to back, as a READDIR reply carries
/// them, cut at `len` bytes: the first entry is the listing's `first`-th
/// (its `d_next`, the cookie to go on from after it, is `first + 1`, and
/// so on). The last entry may be cut short, as WASI's `fd_readdir` allows:
/// a program that meets one asks again from its cookie, with a larger
/// buffer if the entry did not fit at all. Fewer than `len` bytes means
/// the listing ended. ([`Reply::Entries`] does this for you.) An entry
/// at position `u64::MAX` has no cookie after it, and is not packed: the
/// listing ends before it (a program can ask from any cookie; none wraps
/// to 0, which would start the listing again).
pub fn pack_dirents<'a>(entries: impl IntoIterator<Item = &'a DirEntry>, first: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = first;
    for e in entries {
        let Some(next) = at.checked_add(1) else { break };
        if out.len() >= len {
            break;
        }
        at = next;
        let name = e.name.as_bytes();
        let mut rec = Vec::with_capacity(sys::FILE_DIRENT_SIZE as usize + name.len());
        rec.extend_from_slice(&next.to_le_bytes());
        rec.extend_from_slice(&e.ino.to_le_bytes());
        rec.extend_from_slice(&(name.len() as u32).to_le_bytes());
        rec.push(e.filetype.raw());
        rec.resize(sys::FILE_DIRENT_SIZE as usize, 0);
        rec.extend_from_slice(name);
        let room = len - out.len();
        out.extend_from_slice(&rec[..rec.len().min(room)]);
    }
    out
}

/// How a program opens a file: the `open(2)` flags the request carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct OpenFlags {
    /// It may read (`O_RDONLY`, `O_RDWR`), or list a directory.
    pub read: bool,
    /// It may write (`O_WRONLY`, `O_RDWR`, `O_APPEND`, or `O_TRUNC`).
    pub write: bool,
    /// `O_CREAT`: create the file if it does not exist.
    pub create: bool,
    /// `O_EXCL` (with `create`): fail with [`Errno::EXIST`] if it exists.
    pub exclusive: bool,
    /// `O_TRUNC`: make it empty.
    pub truncate: bool,
    /// `O_DIRECTORY`: fail with [`Errno::NOTDIR`] unless it is a directory.
    pub directory: bool,
    /// `O_APPEND`: its writes go to the end ([`WriteAt::End`]).
    pub append: bool,
}

// WASI's oflags and fdflags, as OPEN's `flags` carries them (oflags |
// fdflags << 16).
const O_CREAT: u32 = 1;
const O_DIRECTORY: u32 = 2;
const O_EXCL: u32 = 4;
const O_TRUNC: u32 = 8;
const FDFLAG_APPEND: u32 = 1;

impl OpenFlags {
    /// The flags of an OPEN request's `flags` (WASI's oflags, and its
    /// fdflags shifted left by 16) and `rights` (`FILE_RIGHT_*`). Other
    /// fdflags (sync, non-blocking) are dropped: a served file has nothing
    /// to sync.
    pub const fn from_raw(flags: u32, rights: u32) -> OpenFlags {
        OpenFlags {
            read: rights & sys::FILE_RIGHT_READ != 0,
            write: rights & sys::FILE_RIGHT_WRITE != 0,
            create: flags & O_CREAT != 0,
            exclusive: flags & O_EXCL != 0,
            truncate: flags & O_TRUNC != 0,
            directory: flags & O_DIRECTORY != 0,
            append: (flags >> 16) & FDFLAG_APPEND != 0,
        }
    }

    /// The request's `flags` and `rights` fields for these flags.
    pub const fn to_raw(self) -> (u32, u32) {
        let mut flags = 0;
        let mut rights = 0;
        if self.create {
            flags |= O_CREAT;
        }
        if self.exclusive {
            flags |= O_EXCL;
        }
        if self.truncate {
            flags |= O_TRUNC;
        }
        if self.directory {
            flags |= O_DIRECTORY;
        }
        if self.append {
            flags |= FDFLAG_APPEND << 16;
        }
        if self.read {
            rights |= sys::FILE_RIGHT_READ;
        }
        if self.write {
            rights |= sys::FILE_RIGHT_WRITE;
        }
        (flags, rights)
    }
}

/// Where a write goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WriteAt {
    /// At this offset (past the end: the gap reads as zeros).
    Offset(u64),
    /// At the end of the file, wherever it is now (`O_APPEND`).
    End,
}

/// What a successful open answers: the handle the program's further
/// calls on the file name, and what the file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Opened {
    /// The server's handle: any number; requests name it until CLOSE.
    pub handle: u64,
    /// [`FileType::Directory`] for a directory (one the program may list
    /// and open files below), [`FileType::RegularFile`] for a file.
    pub filetype: FileType,
}

impl Opened {
    /// A file opened as `handle`.
    pub const fn file(handle: u64) -> Opened {
        Opened { handle, filetype: FileType::RegularFile }
    }

    /// A directory opened as `handle`.
    pub const fn dir(handle: u64) -> Opened {
        Opened { handle, filetype: FileType::Directory }
    }
}

// ---- requests and replies ----

/// One served-file request, decoded: what the program's call asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// `open`, `opendir`, `fopen`: open `path` (`""` the root); answer
    /// [`Reply::Opened`].
    Open {
        /// Relative to the root, normalised.
        path: String,
        /// How.
        flags: OpenFlags,
    },
    /// `read`, `pread`: at most `len` bytes from `offset`; answer
    /// [`Reply::Data`] (fewer bytes: a short read; none: the end).
    Read {
        /// What OPEN answered.
        handle: u64,
        /// Where.
        offset: u64,
        /// At most this many (at most 64 KiB).
        len: u32,
    },
    /// `write`, `pwrite`: `data` at `at`; answer [`Reply::Written`] with
    /// how many bytes were taken.
    Write {
        /// What OPEN answered.
        handle: u64,
        /// Where.
        at: WriteAt,
        /// The bytes (at most 64 KiB).
        data: Vec<u8>,
    },
    /// `fstat`, and a seek to the end: answer [`Reply::Stat`].
    Stat {
        /// What OPEN answered.
        handle: u64,
    },
    /// `stat` of a path: answer [`Reply::Stat`].
    PathStat {
        /// Relative to the root, normalised.
        path: String,
    },
    /// `readdir`: the listing from position `cookie` on (0: from the
    /// start), at most `len` bytes of it; answer [`Reply::Entries`].
    ReadDir {
        /// What OPEN answered (a directory).
        handle: u64,
        /// The position to go on from.
        cookie: u64,
        /// At most this many bytes of dirents.
        len: u32,
    },
    /// The program closed the file (or ended with it open). No reply.
    Close {
        /// What OPEN answered.
        handle: u64,
    },
}

/// Little-endian integers at `at` of `b` (which the caller checked).
fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

impl Request {
    /// Decode a request's payload (the 32-byte header, then the path or
    /// the data). Fails with the errno to answer: [`Errno::INVAL`] for a
    /// payload shorter than its header, [`Errno::NOSYS`] for an operation
    /// this crate does not know, [`Errno::ILSEQ`] for a path that is not
    /// UTF-8.
    ///
    /// ```
    /// use wisp::served::{OpenFlags, Request};
    /// let open = Request::Open { path: "sub/a.txt".into(), flags: OpenFlags { read: true, ..Default::default() } };
    /// assert_eq!(Request::from_bytes(&open.to_bytes()), Ok(open));
    /// assert_eq!(Request::from_bytes(&[1, 2, 3]), Err(wisp::served::Errno::INVAL));
    /// ```
    pub fn from_bytes(b: &[u8]) -> Result<Request, Errno> {
        let head = sys::FILE_REQUEST_SIZE as usize;
        if b.len() < head {
            return Err(Errno::INVAL);
        }
        let (op, flags, handle, offset, len, rights) =
            (le32(b, 0), le32(b, 4), le64(b, 8), le64(b, 16), le32(b, 24), le32(b, 28));
        let rest = &b[head..];
        let path = || String::from_utf8(rest.to_vec()).map_err(|_| Errno::ILSEQ);
        Ok(match op {
            sys::FILE_OP_OPEN => Request::Open { path: path()?, flags: OpenFlags::from_raw(flags, rights) },
            sys::FILE_OP_READ => Request::Read { handle, offset, len },
            sys::FILE_OP_WRITE => Request::Write {
                handle,
                at: if offset == u64::MAX { WriteAt::End } else { WriteAt::Offset(offset) },
                data: rest.to_vec(),
            },
            sys::FILE_OP_STAT => Request::Stat { handle },
            sys::FILE_OP_PSTAT => Request::PathStat { path: path()? },
            sys::FILE_OP_READDIR => Request::ReadDir { handle, cookie: offset, len },
            sys::FILE_OP_CLOSE => Request::Close { handle },
            _ => return Err(Errno::NOSYS),
        })
    }

    /// The payload that carries this request, as the host sends it (for a
    /// process that forwards requests, or asks a server itself).
    pub fn to_bytes(&self) -> Vec<u8> {
        let (mut flags, mut handle, mut offset, mut len, mut rights) = (0, 0, 0, 0, 0);
        let mut extra: &[u8] = &[];
        let op = match self {
            Request::Open { path, flags: f } => {
                (flags, rights) = f.to_raw();
                extra = path.as_bytes();
                sys::FILE_OP_OPEN
            }
            Request::Read { handle: h, offset: o, len: l } => {
                (handle, offset, len) = (*h, *o, *l);
                sys::FILE_OP_READ
            }
            Request::Write { handle: h, at, data } => {
                handle = *h;
                offset = match at {
                    WriteAt::Offset(o) => *o,
                    WriteAt::End => u64::MAX,
                };
                extra = data;
                sys::FILE_OP_WRITE
            }
            Request::Stat { handle: h } => {
                handle = *h;
                sys::FILE_OP_STAT
            }
            Request::PathStat { path } => {
                extra = path.as_bytes();
                sys::FILE_OP_PSTAT
            }
            Request::ReadDir { handle: h, cookie, len: l } => {
                (handle, offset, len) = (*h, *cookie, *l);
                sys::FILE_OP_READDIR
            }
            Request::Close { handle: h } => {
                handle = *h;
                sys::FILE_OP_CLOSE
            }
        };
        let mut b = Vec::with_capacity(sys::FILE_REQUEST_SIZE as usize + extra.len());
        b.extend_from_slice(&op.to_le_bytes());
        b.extend_from_slice(&flags.to_le_bytes());
        b.extend_from_slice(&handle.to_le_bytes());
        b.extend_from_slice(&offset.to_le_bytes());
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(&rights.to_le_bytes());
        b.extend_from_slice(extra);
        b
    }

    /// The handle it names (`None` for OPEN and PSTAT, which name a path).
    pub fn handle(&self) -> Option<u64> {
        match self {
            Request::Open { .. } | Request::PathStat { .. } => None,
            Request::Read { handle, .. }
            | Request::Write { handle, .. }
            | Request::Stat { handle }
            | Request::ReadDir { handle, .. }
            | Request::Close { handle } => Some(*handle),
        }
    }
}

/// The answer to a [`Request`]: the variant its request names, or an
/// [`Error`](Reply::Error) for any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// To [`Request::Open`].
    Opened(Opened),
    /// To [`Request::Read`]: the bytes (those beyond the request's `len`
    /// are not sent). To [`Request::ReadDir`]: dirents the server packed
    /// itself ([`pack_dirents`]).
    Data(Vec<u8>),
    /// To [`Request::Write`]: how many of its bytes were written (all, or
    /// a short write; more than it brought is `EIO` to the program).
    Written(u64),
    /// To [`Request::Stat`] and [`Request::PathStat`].
    Stat(FileStat),
    /// To [`Request::ReadDir`]: the listing from the request's cookie on
    /// (the entry at that position first); packed into the request's
    /// length, the rest left for the program's next READDIR.
    Entries(Vec<DirEntry>),
    /// The call fails with this errno.
    Error(Errno),
}

impl From<Errno> for Reply {
    fn from(e: Errno) -> Reply {
        Reply::Error(e)
    }
}

/// A reply header (16 bytes) and its data.
fn reply_bytes(error: u16, filetype: u8, value: u64, data: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(sys::FILE_REPLY_SIZE as usize + data.len());
    b.extend_from_slice(&error.to_le_bytes());
    b.push(filetype);
    b.push(0);
    b.extend_from_slice(&(data.len() as u32).to_le_bytes());
    b.extend_from_slice(&value.to_le_bytes());
    b.extend_from_slice(data);
    b
}

impl Reply {
    /// The payload that answers `request` with this reply: a 16-byte
    /// header (u16 error, u8 filetype, u8 0, u32 len, u64 value) and `len`
    /// bytes of data. A reply of another request's kind ([`Reply::Data`]
    /// to an OPEN) is sent as [`Errno::IO`], which the program sees: the
    /// server is broken, and says so rather than misleading it.
    pub fn to_bytes(&self, request: &Request) -> Vec<u8> {
        let max = sys::FILE_MAX_DATA as usize;
        match (self, request) {
            (Reply::Error(e), _) => reply_bytes(e.raw(), 0, 0, &[]),
            (Reply::Opened(o), Request::Open { .. }) => reply_bytes(0, o.filetype.raw(), o.handle, &[]),
            (Reply::Data(d), Request::Read { len, .. } | Request::ReadDir { len, .. }) => {
                reply_bytes(0, 0, 0, &d[..d.len().min(*len as usize).min(max)])
            }
            (Reply::Written(n), Request::Write { .. }) => reply_bytes(0, 0, *n, &[]),
            (Reply::Stat(st), Request::Stat { .. } | Request::PathStat { .. }) => reply_bytes(0, 0, 0, &st.to_bytes()),
            (Reply::Entries(es), Request::ReadDir { cookie, len, .. }) => {
                reply_bytes(0, 0, 0, &pack_dirents(es, *cookie, (*len as usize).min(max)))
            }
            _ => reply_bytes(Errno::IO.raw(), 0, 0, &[]),
        }
    }
}

/// A request as received: the [`Request`], and whom to answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRequest {
    /// What is asked.
    pub request: Request,
    from: Pid,
    reference: u64,
}

/// A message that came as a served-file request but is none: too short,
/// an unknown operation, a path that is not UTF-8, or not tagged
/// [`sys::TAG_FILE`] at all. [`reply`](Self::reply)
/// answers it with its errno.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadRequest {
    /// The sender.
    pub from: Pid,
    /// The sender's ref (0: it wants no reply).
    pub reference: u64,
    /// What it is answered: [`Errno::INVAL`], [`Errno::NOSYS`] or [`Errno::ILSEQ`].
    pub errno: Errno,
}

impl BadRequest {
    /// Answer the sender with the errno (if it asked for a reply).
    pub fn reply(&self) -> Result<(), SendError> {
        if self.reference == 0 {
            return Ok(());
        }
        self.from.send_raw(self.reference, &reply_bytes(self.errno.raw(), 0, 0, &[]))
    }
}

impl fmt::Display for BadRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a bad served-file request from {:?}: {}", self.from, self.errno)
    }
}

impl std::error::Error for BadRequest {}

impl FileRequest {
    /// Decode a received message (a DATA message tagged
    /// [`sys::TAG_FILE`], as
    /// [`Mailbox::receive_matching`](crate::Mailbox::receive_matching)
    /// takes it).
    pub fn decode(env: &Envelope) -> Result<FileRequest, BadRequest> {
        let bad = |errno| BadRequest { from: env.from, reference: env.reference, errno };
        if env.kind != sys::MSG_DATA || env.tag != sys::TAG_FILE {
            return Err(bad(Errno::INVAL));
        }
        let request = Request::from_bytes(&env.bytes).map_err(bad)?;
        Ok(FileRequest { request, from: env.from, reference: env.reference })
    }

    /// The process whose call it is: the program's.
    pub fn from(&self) -> Pid {
        self.from
    }

    /// False for a CLOSE, which wants no reply.
    pub fn wants_reply(&self) -> bool {
        self.reference != 0
    }

    /// Answer it ([`Reply::to_bytes`]); nothing is sent for a request that
    /// wants no reply. A program that has ended meanwhile is no error.
    pub fn reply(self, reply: Reply) -> Result<(), SendError> {
        if self.reference == 0 {
            return Ok(());
        }
        self.from.send_raw(self.reference, &reply.to_bytes(&self.request))
    }
}

// ---- servers ----

/// A file server: one method per request, called by [`serve`] as requests
/// arrive (one at a time, in order). Only [`open`](Self::open) must be
/// written; every other method has a default that refuses as POSIX
/// would, so a server implements what it serves:
///
/// | method | default |
/// |---|---|
/// | [`read`](Self::read), [`write`](Self::write) | [`Errno::BADF`] (not open for that) |
/// | [`stat`](Self::stat), [`readdir`](Self::readdir) | [`Errno::NOSYS`] |
/// | [`path_stat`](Self::path_stat) | `open` it, `stat` it, `close` it |
/// | [`close`](Self::close) | nothing |
/// | [`message`](Self::message) (every other message) | a request is answered "bad request"; go on |
///
/// Handles are the server's to choose ([`Opened`]); the host holds them
/// for the program and closes every one it opened (when the program
/// closes the file, or ends). A server process that panics or ends makes
/// the program's pending and later calls fail with `EIO`.
///
/// ```
/// use wisp::served::{Errno, FileServer, FileStat, OpenFlags, Opened, Reply, Request};
///
/// /// One read-only file, "motd", in the root.
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Motd(String);
///
/// impl FileServer for Motd {
///     fn open(&mut self, path: &str, flags: OpenFlags) -> Result<Opened, Errno> {
///         match path {
///             "" => Ok(Opened::dir(0)),
///             "motd" if flags.write => Err(Errno::ROFS),
///             "motd" => Ok(Opened::file(1)),
///             _ => Err(Errno::NOENT),
///         }
///     }
///     fn read(&mut self, handle: u64, offset: u64, len: usize) -> Result<Vec<u8>, Errno> {
///         let text = self.0.as_bytes();
///         match handle {
///             1 => Ok(text.iter().skip(offset as usize).take(len).copied().collect()),
///             _ => Err(Errno::ISDIR),
///         }
///     }
///     fn stat(&mut self, handle: u64) -> Result<FileStat, Errno> {
///         Ok(if handle == 1 { FileStat::file(2, self.0.len() as u64) } else { FileStat::dir(1) })
///     }
/// }
///
/// // What serve() does with each request (here without a program):
/// let mut motd = Motd("hello\n".into());
/// let read = Request::Read { handle: 1, offset: 2, len: 100 };
/// assert_eq!(motd.answer(&read), Some(Reply::Data(b"llo\n".to_vec())));
/// let stat = Request::PathStat { path: "motd".into() };   // the default: open, stat, close
/// assert_eq!(motd.answer(&stat), Some(Reply::Stat(FileStat::file(2, 6))));
/// let write = Request::Write { handle: 1, at: wisp::served::WriteAt::End, data: b"x".to_vec() };
/// assert_eq!(motd.answer(&write), Some(Reply::Error(Errno::BADF)));
///
/// // As a process of its own, to mount into programs:
/// let server = wisp::served::spawn(Motd("hello\n".into())).unwrap();
/// # server.kill();
/// ```
pub trait FileServer {
    /// Open `path` (relative to the root, normalised; `""` is the root,
    /// which must open as a directory). Check what `flags` ask: a write
    /// to a read-only tree ([`Errno::ROFS`]), `create` of a missing file,
    /// `exclusive`, `truncate`, `directory` of a file ([`Errno::NOTDIR`]).
    fn open(&mut self, path: &str, flags: OpenFlags) -> Result<Opened, Errno>;

    /// At most `len` bytes of `handle` from `offset` (fewer: a short read;
    /// none: the end).
    fn read(&mut self, handle: u64, offset: u64, len: usize) -> Result<Vec<u8>, Errno> {
        let _ = (handle, offset, len);
        Err(Errno::BADF)
    }

    /// Write `data` to `handle` at `at`: how many bytes were written.
    fn write(&mut self, handle: u64, at: WriteAt, data: &[u8]) -> Result<usize, Errno> {
        let _ = (handle, at, data);
        Err(Errno::BADF)
    }

    /// What `handle` is (its size: a seek to its end asks this).
    fn stat(&mut self, handle: u64) -> Result<FileStat, Errno> {
        let _ = handle;
        Err(Errno::NOSYS)
    }

    /// What `path` is: by default, [`open`](Self::open) it for reading,
    /// [`stat`](Self::stat) the handle and [`close`](Self::close) it.
    fn path_stat(&mut self, path: &str) -> Result<FileStat, Errno> {
        let opened = self.open(path, OpenFlags { read: true, ..OpenFlags::default() })?;
        let st = self.stat(opened.handle);
        self.close(opened.handle);
        st
    }

    /// The listing of directory `handle` from position `cookie` on (0:
    /// from the start; the entry at that position first). Return as many
    /// as you like: those beyond what fits the program's buffer are asked
    /// for again, from their position. (The positions are the cookies the
    /// program goes on from: the listing must keep its order while it is
    /// read.)
    fn readdir(&mut self, handle: u64, cookie: u64) -> Result<Vec<DirEntry>, Errno> {
        let _ = (handle, cookie);
        Err(Errno::NOSYS)
    }

    /// The program is done with `handle`.
    fn close(&mut self, handle: u64) {
        let _ = handle;
    }

    /// Any other message (another tag, an exit signal, a monitor's
    /// `Down`): [`serve`] returns when this says `Break`. By default a
    /// request (a [`call`](crate::Process::call), or any message with a
    /// ref) is answered with [`CallError::BadRequest`] so its
    /// sender does not wait, and the loop goes on.
    fn message(&mut self, env: Envelope) -> ControlFlow<()> {
        refuse(&env);
        ControlFlow::Continue(())
    }

    /// The reply to `request`, by the methods above (`None` for a CLOSE,
    /// which has none). [`serve`] calls it for each request; a loop of
    /// your own can too.
    fn answer(&mut self, request: &Request) -> Option<Reply> {
        let reply = match request {
            Request::Open { path, flags } => self.open(path, *flags).map(Reply::Opened),
            Request::Read { handle, offset, len } => {
                let len = (*len).min(sys::FILE_MAX_DATA) as usize;
                self.read(*handle, *offset, len).map(Reply::Data)
            }
            Request::Write { handle, at, data } => self.write(*handle, *at, data).map(|n| Reply::Written(n as u64)),
            Request::Stat { handle } => self.stat(*handle).map(Reply::Stat),
            Request::PathStat { path } => self.path_stat(path).map(Reply::Stat),
            Request::ReadDir { handle, cookie, .. } => self.readdir(*handle, *cookie).map(Reply::Entries),
            Request::Close { handle } => {
                self.close(*handle);
                return None;
            }
        };
        Some(reply.unwrap_or_else(Reply::Error))
    }
}

/// Answer a message that asks for a reply "bad request" (its sender's
/// [`call`](crate::Process::call) fails with [`CallError::BadRequest`]).
fn refuse(env: &Envelope) {
    if let Some(to) = env.reply_to() {
        to.reply_bad_request("a file server: not a request it serves");
    }
}

/// Run `server` in the calling process: take every message in order,
/// answer each served-file request with [`FileServer::answer`] (a
/// malformed one with its errno, [`BadRequest::reply`]), and give every
/// other message to [`FileServer::message`]. Returns the server when
/// `message` says `Break`; otherwise runs until the process ends.
pub fn serve<S: FileServer>(mut server: S) -> S {
    loop {
        let Ok(env) = message::receive_raw(&[], sys::INFINITY) else { continue };
        if env.kind != sys::MSG_DATA || env.tag != sys::TAG_FILE {
            if server.message(env).is_break() {
                return server;
            }
            continue;
        }
        match FileRequest::decode(&env) {
            Ok(req) => {
                if let Some(reply) = server.answer(&req.request) {
                    // (A program that ended meanwhile needs no answer.)
                    let _ = req.reply(reply);
                }
            }
            Err(bad) => {
                let _ = bad.reply();
            }
        }
    }
}

/// A spawned server's body.
fn serve_process<S: FileServer>(server: S, _: Mailbox<()>) {
    serve(server);
}

/// Start `server` as a process of its own running [`serve`]; its pid is
/// what a program mounts
/// ([`Program::mount_served`](crate::program::Program::mount_served)).
/// The server is copied into the new process (serialized, as a spawn's
/// argument is): the caller's copy is not the one that serves.
pub fn spawn<S>(server: S) -> Result<Pid, SpawnError>
where
    S: FileServer + Serialize + DeserializeOwned,
{
    Ok(crate::spawn::spawn(server, serve_process::<S>)?.pid())
}

/// As [`spawn`](fn@spawn), linked to the caller: the server ends when
/// the caller does (and the caller, unless it traps exits, if the server
/// panics).
pub fn spawn_link<S>(server: S) -> Result<Pid, SpawnError>
where
    S: FileServer + Serialize + DeserializeOwned,
{
    Ok(crate::spawn::spawn_link(server, serve_process::<S>)?.pid())
}

// ---- MemFs ----

/// Files' bytes as serde bytes: a length and one copy each way, where a
/// `Vec<u8>` is a sequence, a call per byte (a 256 MiB tree took half a
/// minute to copy to its server). Bincode lays both out alike.
mod bytes {
    use std::fmt;

    use serde::de::{self, Deserializer, SeqAccess, Visitor};
    use serde::{Deserialize, Serialize, Serializer};

    /// Bytes to send.
    pub(super) struct Bytes<'a>(pub &'a [u8]);

    impl Serialize for Bytes<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }

    /// Bytes received.
    pub(super) struct ByteBuf(pub Vec<u8>);

    struct BufVisitor;

    impl<'de> Visitor<'de> for BufVisitor {
        type Value = ByteBuf;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("bytes")
        }

        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<ByteBuf, E> {
            Ok(ByteBuf(v.to_vec()))
        }

        fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<ByteBuf, E> {
            Ok(ByteBuf(v))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ByteBuf, A::Error> {
            let mut v = Vec::new();
            while let Some(b) = seq.next_element()? {
                v.push(b);
            }
            Ok(ByteBuf(v))
        }
    }

    impl<'de> Deserialize<'de> for ByteBuf {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ByteBuf, D::Error> {
            d.deserialize_byte_buf(BufVisitor)
        }
    }

    /// `#[serde(with = "bytes")]` for a `Vec<u8>`.
    pub(super) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        ByteBuf::deserialize(d).map(|b| b.0)
    }

    /// `#[serde(with = "bytes::opt")]` for an `Option<Vec<u8>>`.
    pub(super) mod opt {
        use serde::{Deserialize, Deserializer, Serialize, Serializer};

        use super::{ByteBuf, Bytes};

        pub(in super::super) fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
            v.as_deref().map(Bytes).serialize(s)
        }

        pub(in super::super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
            Ok(Option::<ByteBuf>::deserialize(d)?.map(|b| b.0))
        }
    }
}


/// A tree of files and directories in memory, served to programs: the
/// ready-made [`FileServer`]. Build it, [`spawn`](MemFs::spawn) it and
/// mount it; the programs read its files, create and write them (unless
/// it is [`read_only`](MemFs::read_only)), list its directories, and what
/// they wrote stays: ask the [`MemFsServer`] for it.
///
/// ```
/// use wisp::served::MemFs;
///
/// let fs = MemFs::new()
///     .with_file("config.txt", "name=wisp\n")
///     .with_file("sub/a.txt", "alpha\n")   // "sub" is made on the way
///     .with_dir("out");
/// let server = fs.spawn().unwrap();           // now a process: mount server.pid()
/// server.insert_file("out/later.txt", "more").unwrap();
/// assert_eq!(server.read("config.txt").unwrap().as_deref(), Some(&b"name=wisp\n"[..]));
/// assert_eq!(server.read("missing").unwrap(), None);
/// let now = server.snapshot().unwrap();
/// assert_eq!(now.file("out/later.txt"), Some(&b"more"[..]));
/// assert!(now.is_dir("sub"));
/// # server.pid().kill();
/// ```
///
/// Paths are relative to the root, `/`-separated (a leading `/` is
/// ignored; `..` is refused). Only files and directories: no links, no
/// renames, no removal (those are not served calls). Inodes are numbered
/// in order of creation; times are 0.
///
/// **Its size is bounded** ([`size_limit`](MemFs::size_limit), 256 MiB
/// by default): the programs' writes and creates may grow the tree to the
/// limit, counting each file's bytes and, for each file and directory,
/// its path and 64 bytes; past it a write fails with [`Errno::FBIG`] (a
/// file that alone would be larger) or [`Errno::NOSPC`], a create with
/// [`Errno::NOSPC`], as a full disk's would. Without a bound a program
/// could make its server take memory it never asked of its own: one byte
/// written at an offset of 2 GiB took the server 2 GiB of zeros. (What
/// the parent puts in itself, [`insert_file`](MemFs::insert_file),
/// counts but is never refused for size.)
///
/// **Under a memory limit** (`wisp run --max-memory`,
/// [`Caps::max_memory`](crate::caps::Caps::max_memory)) set the size
/// limit well below it: the host charges a process for the messages
/// waiting in its mailbox, and one that arrives when its memory is at its
/// limit ends it (docs/security.md), so a server whose tree filled its
/// memory would end at the next write (a message of up to 64 KiB). Short
/// of that, the server keeps room for its own work: a write or create
/// that would leave it less than 1 MiB to allocate is [`Errno::NOSPC`],
/// never an allocation that fails and ends it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MemFs {
    nodes: BTreeMap<String, Node>,
    next_ino: u64,
    read_only: bool,
    /// The most `used` may grow to by the programs' writes and creates.
    limit: u64,
    /// What the tree holds: its files' bytes, and `node_cost` of each node.
    used: u64,
    #[serde(skip)]
    handles: BTreeMap<u64, Handle>,
    #[serde(skip)]
    next_handle: u64,
    /// The last READDIR answers, by handle, the latest last (at most
    /// [`LISTINGS`]).
    #[serde(skip)]
    listings: Vec<(u64, Listed)>,
}

/// A file (`data` is its bytes) or a directory (`data` is `None`).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Node {
    ino: u64,
    #[serde(with = "bytes::opt")]
    data: Option<Vec<u8>>,
}

/// An open handle: the node's path, and whether it was opened for writing.
#[derive(Clone, Debug)]
struct Handle {
    path: String,
    write: bool,
}

/// A READDIR's answer: the entries from position `first` on, by name. The
/// next READDIR goes on from one of those positions (the cookie after the
/// last entry the program took), so it starts after that entry's name: a
/// seek, where going on from a bare position walks the directory from its
/// start (a listing read 4 KiB at a time would cost the square of its
/// length). Only the last [`LISTINGS`] are kept, whatever the handles
/// open (each holds up to 64 KiB of names: one per handle would let a
/// program make its server hold 64 KiB per fd it may have); a listing of
/// one that was dropped goes on by position, slower but right.
#[derive(Clone, Debug)]
struct Listed {
    first: u64,
    names: Vec<String>,
}

/// How many READDIR answers a MemFs keeps to go on from ([`Listed`]):
/// the directories listed at once, a tree walk's depth of them.
const LISTINGS: usize = 8;

/// Where a listing starts.
enum ListFrom {
    /// At the directory's `n`-th entry (0: the first).
    Position(u64),
    /// After the entry of this name.
    After(String),
}

/// [`MemFs::size_limit`]'s default.
const DEFAULT_SIZE_LIMIT: u64 = 256 << 20;

/// What a node costs the tree's size besides its data: its path, and this.
const NODE_COST: u64 = 64;

/// What a MemFs keeps free for its own work after a write or create: the
/// next requests (a 64 KiB write and its copies, a reply) and replies to
/// its [`MemFsServer`] must find memory, or the server would end.
const HEADROOM: usize = 1 << 20;

/// The most bytes of dirents one READDIR is answered with: those of
/// any READDIR (at most [`sys::FILE_MAX_DATA`]) and one entry more, so the
/// listing is never cut short by the bound; yet a directory of millions
/// costs a READDIR no more than this.
const READDIR_BYTES: usize = sys::FILE_MAX_DATA as usize;

impl Default for MemFs {
    fn default() -> MemFs {
        MemFs::new()
    }
}

/// `path` as the tree's key: its components joined by `/`, without empty
/// ones and `.`; `..` is [`Errno::INVAL`] (the host resolves those before
/// a request is sent).
fn clean(path: &str) -> Result<String, Errno> {
    let mut out = String::new();
    for c in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if c == ".." {
            return Err(Errno::INVAL);
        }
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str(c);
    }
    Ok(out)
}

/// The directory `path` is in (`""` for one in the root); `None` for the
/// root itself.
fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    Some(path.rfind('/').map_or("", |i| &path[..i]))
}

/// What the node at `path` costs the tree besides its data.
fn node_cost(path: &str) -> u64 {
    NODE_COST + path.len() as u64
}

/// Run `grow`, a fallible allocation, while [`HEADROOM`] bytes are held
/// aside: `grow`'s result, or [`Errno::NOSPC`] (and `grow` not run) if
/// they cannot be. The room is given back after, so whatever `grow` took,
/// it is free for what comes next.
fn with_headroom<T>(grow: impl FnOnce() -> Result<T, Errno>) -> Result<T, Errno> {
    let mut room = Vec::<u8>::new();
    room.try_reserve_exact(HEADROOM).map_err(|_| Errno::NOSPC)?;
    let r = grow();
    drop(room);
    r
}

/// Whether `bytes` more (an infallible allocation about to be made: a new
/// node) and [`HEADROOM`] besides can be allocated now: [`Errno::NOSPC`]
/// if not. (Taken and given back at once: what follows finds it free.)
fn room_for(bytes: usize) -> Result<(), Errno> {
    Vec::<u8>::new().try_reserve_exact(HEADROOM + bytes).map_err(|_| Errno::NOSPC)
}

impl MemFs {
    /// An empty tree: the root directory alone.
    pub fn new() -> MemFs {
        let mut fs = MemFs {
            nodes: BTreeMap::new(),
            next_ino: 1,
            read_only: false,
            limit: DEFAULT_SIZE_LIMIT,
            used: 0,
            handles: BTreeMap::new(),
            next_handle: 1,
            listings: Vec::new(),
        };
        fs.add(String::new(), None);
        fs
    }

    /// The tree with a file at `path` holding `contents` (replacing one
    /// there), and the directories above it.
    ///
    /// # Panics
    /// If `path` is a directory, lies below a file, or holds `..`:
    /// [`insert_file`](Self::insert_file) returns those as errors.
    pub fn with_file(mut self, path: &str, contents: impl Into<Vec<u8>>) -> MemFs {
        if let Err(e) = self.insert_file(path, contents) {
            panic!("wisp: MemFs::with_file({path:?}): {e}");
        }
        self
    }

    /// The tree with a directory at `path` (and those above it).
    ///
    /// # Panics
    /// If `path` is a file, lies below one, or holds `..`
    /// ([`insert_dir`](Self::insert_dir) returns those as errors).
    pub fn with_dir(mut self, path: &str) -> MemFs {
        if let Err(e) = self.insert_dir(path) {
            panic!("wisp: MemFs::with_dir({path:?}): {e}");
        }
        self
    }

    /// The tree served read-only: opening for writing, or creating, fails
    /// with [`Errno::ROFS`] (`insert_file` still works).
    pub fn read_only(mut self) -> MemFs {
        self.read_only = true;
        self
    }

    /// The tree served with at most `bytes` in it (256 MiB by default):
    /// its files' bytes, and for each file and directory its path's length
    /// and 64. A program's write past it fails with [`Errno::FBIG`] if
    /// the file alone would be larger, else [`Errno::NOSPC`]; a create
    /// with [`Errno::NOSPC`]. Under a memory limit, keep it well below
    /// that (half, say: see above). (A tree larger than a message holds,
    /// 64 MiB by default, cannot be [`snapshot`](MemFsServer::snapshot)
    /// whole: read its files one at a time.)
    pub fn size_limit(mut self, bytes: u64) -> MemFs {
        self.limit = bytes;
        self
    }

    /// What the tree holds, as [`size_limit`](Self::size_limit) counts it.
    pub fn size(&self) -> u64 {
        self.used
    }

    /// Put `contents` at `path` (replacing a file there), making the
    /// directories above it. [`Errno::ISDIR`] if `path` is a directory (the
    /// root included), [`Errno::NOTDIR`] if it lies below a file,
    /// [`Errno::INVAL`] if it holds `..`.
    pub fn insert_file(&mut self, path: &str, contents: impl Into<Vec<u8>>) -> Result<(), Errno> {
        let path = clean(path)?;
        match self.nodes.get_mut(&path) {
            Some(Node { data: Some(data), .. }) => {
                let contents = contents.into();
                self.used = self.used - data.len() as u64 + contents.len() as u64;
                *data = contents;
            }
            Some(Node { data: None, .. }) => return Err(Errno::ISDIR),
            None => {
                self.make_dirs(parent(&path).ok_or(Errno::ISDIR)?)?;
                self.add(path, Some(contents.into()));
            }
        }
        Ok(())
    }

    /// Make a directory at `path` and those above it (there already: done).
    /// [`Errno::NOTDIR`] if it or one above it is a file, [`Errno::INVAL`]
    /// if it holds `..`.
    pub fn insert_dir(&mut self, path: &str) -> Result<(), Errno> {
        self.make_dirs(&clean(path)?)
    }

    /// The file at `path`, if there is one.
    pub fn file(&self, path: &str) -> Option<&[u8]> {
        self.nodes.get(&clean(path).ok()?)?.data.as_deref()
    }

    /// Whether `path` is a directory.
    pub fn is_dir(&self, path: &str) -> bool {
        clean(path).ok().and_then(|p| self.nodes.get(&p)).is_some_and(|n| n.data.is_none())
    }

    /// Every file, by path, in path order.
    pub fn files(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.nodes.iter().filter_map(|(p, n)| Some((p.as_str(), n.data.as_deref()?)))
    }

    /// Start a process serving the tree ([`spawn`](fn@spawn)): mount
    /// [`MemFsServer::pid`]. It runs until killed (or the run ends).
    pub fn spawn(self) -> Result<MemFsServer, SpawnError> {
        Ok(MemFsServer { pid: spawn(self)? })
    }

    /// As [`spawn`](Self::spawn), linked to the caller: the server ends
    /// when the caller does.
    pub fn spawn_link(self) -> Result<MemFsServer, SpawnError> {
        Ok(MemFsServer { pid: spawn_link(self)? })
    }

    /// `dir` (clean) and every directory above it, made if missing.
    fn make_dirs(&mut self, dir: &str) -> Result<(), Errno> {
        match self.nodes.get(dir) {
            Some(Node { data: None, .. }) => return Ok(()),
            Some(_) => return Err(Errno::NOTDIR),
            None => {}
        }
        if let Some(up) = parent(dir) {
            self.make_dirs(up)?;
        }
        self.add(dir.to_string(), None);
        Ok(())
    }

    fn add(&mut self, path: String, data: Option<Vec<u8>>) {
        self.used += node_cost(&path) + data.as_ref().map_or(0, |d| d.len() as u64);
        self.nodes.insert(path, Node { ino: self.next_ino, data });
        self.next_ino += 1;
    }

    /// Whether `more` bytes fit the tree's limit: [`Errno::NOSPC`] if not.
    fn fits(&self, more: u64) -> Result<(), Errno> {
        match self.used.checked_add(more) {
            Some(total) if total <= self.limit => Ok(()),
            _ => Err(Errno::NOSPC),
        }
    }

    fn stat_of(node: &Node) -> FileStat {
        match &node.data {
            Some(d) => FileStat::file(node.ino, d.len() as u64),
            None => FileStat::dir(node.ino),
        }
    }

    /// The node `handle` is open on.
    fn node(&mut self, handle: u64) -> Result<(&Handle, &mut Node), Errno> {
        let h = self.handles.get(&handle).ok_or(Errno::BADF)?;
        // (Nothing is ever removed, so an open handle's node is there.)
        let node = self.nodes.get_mut(&h.path).ok_or(Errno::BADF)?;
        Ok((h, node))
    }

    /// The file at `path`, made if `flags` say so.
    fn open_node(&mut self, path: &str, flags: OpenFlags) -> Result<(), Errno> {
        match self.nodes.get_mut(path) {
            Some(_) if flags.create && flags.exclusive => Err(Errno::EXIST),
            Some(Node { data: None, .. }) if flags.write => Err(Errno::ISDIR),
            Some(Node { data: None, .. }) => Ok(()),
            Some(Node { data: Some(_), .. }) if flags.directory => Err(Errno::NOTDIR),
            Some(Node { data: Some(_), .. }) if self.read_only && (flags.write || flags.truncate) => Err(Errno::ROFS),
            Some(Node { data: Some(d), .. }) => {
                if flags.truncate {
                    self.used -= d.len() as u64;
                    *d = Vec::new();
                }
                Ok(())
            }
            None if !flags.create || flags.directory => Err(Errno::NOENT),
            None if self.read_only => Err(Errno::ROFS),
            None => match parent(path).and_then(|p| self.nodes.get(p)) {
                Some(Node { data: None, .. }) => {
                    self.fits(node_cost(path))?;
                    // (The key, and a node of the map's that may split.)
                    room_for(2 * path.len() + 1024)?;
                    self.add(path.to_string(), Some(Vec::new()));
                    Ok(())
                }
                Some(_) => Err(Errno::NOTDIR),
                None => Err(Errno::NOENT),
            },
        }
    }

    /// Entries of directory `dir` (its key) in name order from `from`,
    /// [`READDIR_BYTES`] of them and one more (or to the end). The keys
    /// below `dir` are one run, its children's subtrees inside it: each
    /// subtree is jumped over (a seek past "child/", to "child0", '0'
    /// being the character after '/'), so a listing costs its directory's
    /// entries, not the tree's.
    fn children(&self, dir: &str, from: ListFrom) -> Vec<DirEntry> {
        let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
        let (mut skip, mut start) = match from {
            ListFrom::Position(n) => (n, Bound::Included(prefix.clone())),
            ListFrom::After(name) => (0, Bound::Excluded(format!("{prefix}{name}"))),
        };
        let mut out = Vec::new();
        let mut bytes = 0;
        loop {
            let mut jump = None;
            let range = (start.as_ref().map(String::as_str), Bound::Unbounded);
            for (key, node) in self.nodes.range::<str, _>(range) {
                let Some(name) = key.strip_prefix(prefix.as_str()) else { return out };
                if name.is_empty() {
                    continue; // (the root itself)
                }
                if let Some(slash) = name.find('/') {
                    jump = Some(format!("{prefix}{}0", &name[..slash]));
                    break;
                }
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                if bytes > READDIR_BYTES {
                    return out;
                }
                bytes += sys::FILE_DIRENT_SIZE as usize + name.len();
                let filetype = if node.data.is_some() { FileType::RegularFile } else { FileType::Directory };
                out.push(DirEntry::new(name, filetype, node.ino));
            }
            match jump {
                Some(key) => start = Bound::Included(key),
                None => return out,
            }
        }
    }
}

/// The requests a [`MemFsServer`] makes of its process. Each is answered
/// `Result<T, String>`: the value, or why it could not be sent.
#[derive(Serialize, Deserialize)]
enum MemFsCall {
    /// `Option<Vec<u8>>`: the file.
    Read(String),
    /// `Result<(), u16>`: the errno of a refusal.
    Insert(String, #[serde(with = "bytes")] Vec<u8>),
    /// `MemFs`: the tree.
    Snapshot,
}

/// Answer `to` with `Ok(value)`, or, if that cannot be sent (larger than
/// a message may be, or than the memory left to encode it), with
/// `Err(why)`: the caller always has an answer, and the server lives on.
fn answer_call<T: Serialize>(to: ReplyTo, value: &T) {
    let why = match to.try_reply(&Ok::<&T, String>(value)) {
        Ok(()) => return,
        Err(SendError::TooBig) => "the answer is larger than a message may be".to_string(),
        Err(SendError::NoMemory) => "out of memory for the answer".to_string(),
        Err(SendError::Encode(e)) => e.to_string(),
    };
    let _ = to.reply(&Err::<(), String>(why));
}

impl FileServer for MemFs {
    fn open(&mut self, path: &str, flags: OpenFlags) -> Result<Opened, Errno> {
        let path = clean(path)?;
        self.open_node(&path, flags)?;
        let dir = self.nodes[&path].data.is_none();
        let handle = self.next_handle;
        self.next_handle += 1;
        self.handles.insert(handle, Handle { path, write: flags.write });
        Ok(if dir { Opened::dir(handle) } else { Opened::file(handle) })
    }

    fn read(&mut self, handle: u64, offset: u64, len: usize) -> Result<Vec<u8>, Errno> {
        let (_, node) = self.node(handle)?;
        let data = node.data.as_ref().ok_or(Errno::ISDIR)?;
        let from = usize::try_from(offset).unwrap_or(usize::MAX).min(data.len());
        Ok(data[from..data.len().min(from.saturating_add(len))].to_vec())
    }

    fn write(&mut self, handle: u64, at: WriteAt, bytes: &[u8]) -> Result<usize, Errno> {
        let (used, limit) = (self.used, self.limit);
        let (h, node) = self.node(handle)?;
        if !h.write {
            return Err(Errno::BADF);
        }
        let data = node.data.as_mut().ok_or(Errno::ISDIR)?;
        let from = match at {
            WriteAt::Offset(o) => o,
            WriteAt::End => data.len() as u64,
        };
        let end = from.checked_add(bytes.len() as u64).ok_or(Errno::FBIG)?;
        let grow = end.saturating_sub(data.len() as u64);
        if grow > 0 {
            if end > limit {
                return Err(Errno::FBIG);
            }
            if used + grow > limit {
                return Err(Errno::NOSPC);
            }
            // (The limit is below 4 GiB on wasm32 unless raised past it.)
            let end = usize::try_from(end).map_err(|_| Errno::FBIG)?;
            with_headroom(|| {
                // Amortised growth for appends; exactly what is needed if
                // that much more does not fit.
                let more = end - data.len();
                data.try_reserve(more).or_else(|_| data.try_reserve_exact(more)).map_err(|_| Errno::NOSPC)
            })?;
            data.resize(end, 0);
        }
        let from = from as usize; // (at most `end`, which fits)
        data[from..from + bytes.len()].copy_from_slice(bytes);
        self.used += grow;
        Ok(bytes.len())
    }

    fn stat(&mut self, handle: u64) -> Result<FileStat, Errno> {
        let (_, node) = self.node(handle)?;
        Ok(MemFs::stat_of(node))
    }

    fn path_stat(&mut self, path: &str) -> Result<FileStat, Errno> {
        self.nodes.get(&clean(path)?).map(MemFs::stat_of).ok_or(Errno::NOENT)
    }

    fn readdir(&mut self, handle: u64, cookie: u64) -> Result<Vec<DirEntry>, Errno> {
        let h = self.handles.get(&handle).ok_or(Errno::BADF)?;
        if self.nodes.get(&h.path).is_some_and(|n| n.data.is_some()) {
            return Err(Errno::NOTDIR);
        }
        // Going on from the handle's last answer: after the name before
        // `cookie`.
        let last = self.listings.iter().position(|(k, _)| *k == handle).map(|i| self.listings.remove(i).1);
        let from = match last {
            Some(l) if cookie > l.first && cookie - l.first <= l.names.len() as u64 => {
                ListFrom::After(l.names.into_iter().nth((cookie - l.first - 1) as usize).unwrap_or_default())
            }
            _ => ListFrom::Position(cookie),
        };
        let entries = self.children(&h.path, from);
        if self.listings.len() == LISTINGS {
            self.listings.remove(0);
        }
        let names = entries.iter().map(|e| e.name.clone()).collect();
        self.listings.push((handle, Listed { first: cookie, names }));
        Ok(entries)
    }

    fn close(&mut self, handle: u64) {
        self.handles.remove(&handle);
        self.listings.retain(|(k, _)| *k != handle);
    }

    /// Its [`MemFsServer`]'s calls; anything else as the default does.
    fn message(&mut self, env: Envelope) -> ControlFlow<()> {
        let (Some(to), true) = (env.reply_to(), env.tag == crate::TAG_CALL) else {
            refuse(&env);
            return ControlFlow::Continue(());
        };
        match env.decode::<MemFsCall>() {
            Ok(MemFsCall::Read(path)) => answer_call(to, &self.file(&path).map(bytes::Bytes)),
            Ok(MemFsCall::Insert(path, bytes)) => answer_call(to, &self.insert_file(&path, bytes).map_err(|e| e.raw())),
            Ok(MemFsCall::Snapshot) => answer_call(to, &*self),
            Err(e) => to.reply_bad_request(&e.0),
        }
        ControlFlow::Continue(())
    }
}

/// A running [`MemFs`]: mount its [`pid`](Self::pid) (or the handle
/// itself: it converts to a [`Pid`]); read and change its tree while
/// programs use it. Each method is a call to the server process
/// ([`Process::call`](crate::Process::call)): between two requests of a
/// program, never inside one. A server that is not running is
/// `NotConnected`; an answer too large for a message (a file, or a tree,
/// of more than 64 MiB by default) is an error of kind `Other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MemFsServer {
    pid: Pid,
}

impl From<MemFsServer> for Pid {
    fn from(s: MemFsServer) -> Pid {
        s.pid
    }
}

impl From<&MemFsServer> for Pid {
    fn from(s: &MemFsServer) -> Pid {
        s.pid
    }
}

/// A failed call to a MemFs process, as an `io::Error`.
fn call_error(pid: Pid, e: CallError) -> io::Error {
    match e {
        CallError::NoProc => io::Error::new(io::ErrorKind::NotConnected, format!("the MemFs server {pid:?} is not running")),
        e => io::Error::new(io::ErrorKind::Other, format!("the MemFs server {pid:?}: {e}")),
    }
}

impl MemFsServer {
    /// The server's process.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    fn call<R: DeserializeOwned>(&self, call: &MemFsCall) -> io::Result<R> {
        let r: Result<R, String> =
            call_tagged(self.pid, crate::TAG_CALL, call, FOREVER).map_err(|e| call_error(self.pid, e))?;
        r.map_err(|why| io::Error::new(io::ErrorKind::Other, format!("the MemFs server {:?}: {why}", self.pid)))
    }

    /// The file at `path` now (`None`: there is none).
    pub fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        let file: Option<bytes::ByteBuf> = self.call(&MemFsCall::Read(path.to_string()))?;
        Ok(file.map(|b| b.0))
    }

    /// Put a file there ([`MemFs::insert_file`]; its errno as an `io::Error`).
    pub fn insert_file(&self, path: &str, contents: impl Into<Vec<u8>>) -> io::Result<()> {
        let r: Result<(), u16> = self.call(&MemFsCall::Insert(path.to_string(), contents.into()))?;
        r.map_err(|e| io::Error::from(Errno::from_raw(e).unwrap_or(Errno::IO)))
    }

    /// A copy of the whole tree now.
    pub fn snapshot(&self) -> io::Result<MemFs> {
        self.call(&MemFsCall::Snapshot)
    }
}
