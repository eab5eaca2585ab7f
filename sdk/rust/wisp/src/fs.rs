//! Files, with capability denials spelled out.
//!
//! A process reaches files only under the directories its capability set
//! grants (`wisp run --dir`, `--dir-ro`; a child may have fewer:
//! [`Caps::drop_dir`](crate::Caps::drop_dir)). Outside them, or writing
//! under a read-only one, the host answers WASI's `ENOTCAPABLE`, which
//! `std::fs` reports as an error of kind `Uncategorized` with code 76.
//! The functions here are `std::fs`'s, with that error turned into one of
//! kind [`PermissionDenied`](io::ErrorKind::PermissionDenied) whose message
//! names the path and the capability that is missing; [`explain`] does the
//! same for any other call's error.
//!
//! ```
//! let e = wisp::fs::read_to_string("/etc/passwd").unwrap_err();
//! assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied);
//! assert!(e.to_string().contains("--dir"), "{e}");
//! ```

use std::fs::{self, File, Metadata, OpenOptions, ReadDir};
use std::io;
use std::path::Path;

/// WASI `ENOTCAPABLE`.
const ENOTCAPABLE: i32 = 76;

/// `e` as a `PermissionDenied` error naming `path` and the missing
/// capability if it is a capability denial; otherwise `e` unchanged.
pub fn explain(e: io::Error, path: &Path) -> io::Error {
    denial(e, &path.display())
}

/// `e` as [`explain`] says, the denied path(s) being `what`.
fn denial(e: io::Error, what: &dyn std::fmt::Display) -> io::Error {
    if e.raw_os_error() != Some(ENOTCAPABLE) {
        return e;
    }
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!(
            "{what}: not allowed by the process's capabilities: no directory granted for it \
             (wisp run --dir), or it is read-only (--dir-ro), or this process's set \
             dropped it (Caps::drop_dir, spawn_without_fs)"
        ),
    )
}

fn at<T>(path: &Path, r: io::Result<T>) -> io::Result<T> {
    r.map_err(|e| explain(e, path))
}

/// A call on two paths: a denial names both.
fn between<T>(from: &Path, to: &Path, r: io::Result<T>) -> io::Result<T> {
    r.map_err(|e| denial(e, &format_args!("{} -> {}", from.display(), to.display())))
}

/// `std::fs::read`.
pub fn read<P: AsRef<Path>>(path: P) -> io::Result<Vec<u8>> {
    at(path.as_ref(), fs::read(path.as_ref()))
}

/// `std::fs::read_to_string`.
pub fn read_to_string<P: AsRef<Path>>(path: P) -> io::Result<String> {
    at(path.as_ref(), fs::read_to_string(path.as_ref()))
}

/// `std::fs::write`.
pub fn write<P: AsRef<Path>, C: AsRef<[u8]>>(path: P, contents: C) -> io::Result<()> {
    at(path.as_ref(), fs::write(path.as_ref(), contents))
}

/// `File::open`.
pub fn open<P: AsRef<Path>>(path: P) -> io::Result<File> {
    at(path.as_ref(), File::open(path.as_ref()))
}

/// `File::create`.
pub fn create<P: AsRef<Path>>(path: P) -> io::Result<File> {
    at(path.as_ref(), File::create(path.as_ref()))
}

/// `std::fs::create_dir_all`.
pub fn create_dir_all<P: AsRef<Path>>(path: P) -> io::Result<()> {
    at(path.as_ref(), fs::create_dir_all(path.as_ref()))
}

/// `std::fs::remove_file`.
pub fn remove_file<P: AsRef<Path>>(path: P) -> io::Result<()> {
    at(path.as_ref(), fs::remove_file(path.as_ref()))
}

/// `std::fs::read_dir`.
pub fn read_dir<P: AsRef<Path>>(path: P) -> io::Result<ReadDir> {
    at(path.as_ref(), fs::read_dir(path.as_ref()))
}

/// `std::fs::metadata`.
pub fn metadata<P: AsRef<Path>>(path: P) -> io::Result<Metadata> {
    at(path.as_ref(), fs::metadata(path.as_ref()))
}

/// `std::fs::symlink_metadata`.
pub fn symlink_metadata<P: AsRef<Path>>(path: P) -> io::Result<Metadata> {
    at(path.as_ref(), fs::symlink_metadata(path.as_ref()))
}

/// `std::fs::create_dir`.
pub fn create_dir<P: AsRef<Path>>(path: P) -> io::Result<()> {
    at(path.as_ref(), fs::create_dir(path.as_ref()))
}

/// `std::fs::remove_dir`.
pub fn remove_dir<P: AsRef<Path>>(path: P) -> io::Result<()> {
    at(path.as_ref(), fs::remove_dir(path.as_ref()))
}

/// `std::fs::remove_dir_all`.
pub fn remove_dir_all<P: AsRef<Path>>(path: P) -> io::Result<()> {
    at(path.as_ref(), fs::remove_dir_all(path.as_ref()))
}

/// `std::fs::rename`; a denial names both paths.
pub fn rename<P: AsRef<Path>, Q: AsRef<Path>>(from: P, to: Q) -> io::Result<()> {
    between(from.as_ref(), to.as_ref(), fs::rename(from.as_ref(), to.as_ref()))
}

/// `std::fs::copy`; a denial names both paths.
pub fn copy<P: AsRef<Path>, Q: AsRef<Path>>(from: P, to: Q) -> io::Result<u64> {
    between(from.as_ref(), to.as_ref(), fs::copy(from.as_ref(), to.as_ref()))
}

/// `options.open(path)`: a file opened as [`OpenOptions`] say (append,
/// create_new, ...).
///
/// ```
/// let e = wisp::fs::open_with("/etc/passwd", std::fs::OpenOptions::new().append(true)).unwrap_err();
/// assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied);
/// ```
pub fn open_with<P: AsRef<Path>>(path: P, options: &OpenOptions) -> io::Result<File> {
    at(path.as_ref(), options.open(path.as_ref()))
}
