//! Wire formats: how a typed message becomes bytes and back.
//!
//! A [`Codec`] is chosen per mailbox or process handle, as a type
//! parameter with a default: [`Mailbox<M, C = Bincode>`](crate::Mailbox)
//! and [`Process<M, C = Bincode>`](crate::Process). Both ends of a
//! conversation must use the same one; switch a handle with
//! [`Mailbox::with_codec`](crate::Mailbox::with_codec) and
//! [`Process::with_codec`](crate::Process::with_codec).
//!
//! - [`Bincode`] (default): bincode 1 with variable-length integers,
//!   little endian, trailing bytes rejected. Compact and fast; lengths
//!   inside a message never make the decoder allocate more than the message
//!   could hold.
//! - `MessagePack` (feature `msgpack`, rmp-serde) and `Json` (feature
//!   `json`, serde_json): self-describing formats, for messages that other
//!   tools read or that change shape between versions.
//! - [`Raw`]: `Vec<u8>` payloads as they are, with no encoding step: the
//!   sender's bytes are handed to the host without a copy, the receiver
//!   gets the host's buffer.
//!
//! Every decode failure is an `Err` that names the type that was expected
//! ([`CodecError`]), never a panic. Spawn arguments, replies, and the
//! crate's own protocols (servers, supervisors) always use [`Bincode`];
//! [`encode`] and [`decode`] are that format.
//!
//! ```
//! use wisp::codec::{Bincode, Codec};
//! let value = ("hi".to_string(), 7u32);
//! let bytes = Bincode::encode(&value).unwrap();
//! let (err, _bytes) = <Bincode as Codec<u64>>::decode(bytes[..2].to_vec()).unwrap_err();
//! assert!(err.0.contains("expected a u64"), "{err}");
//! ```

use std::any::type_name;
use std::borrow::Cow;

use bincode::Options;
use serde::{de::DeserializeOwned, Serialize};

fn options() -> impl Options {
    bincode::DefaultOptions::new().reject_trailing_bytes()
}

/// Why a message could not be encoded or decoded; the text names the type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecError(pub String);

impl std::fmt::Display for CodecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CodecError {}

/// A wire format for values of type `T`.
pub trait Codec<T>: 'static {
    /// The format's name, for messages.
    const NAME: &'static str;

    /// `value` as bytes (borrowed when the format needs no work).
    fn encode(value: &T) -> Result<Cow<'_, [u8]>, CodecError>;

    /// A `T` from exactly `bytes`; on failure the bytes come back with the
    /// error, which names `T`.
    fn decode(bytes: Vec<u8>) -> Result<T, (CodecError, Vec<u8>)>;
}

fn encode_error<T: ?Sized>(format: &str, e: impl std::fmt::Display) -> CodecError {
    CodecError(format!("cannot encode {} as {format}: {e}", a_type::<T>()))
}

fn decode_error<T>(format: &str, len: usize, why: impl std::fmt::Display) -> CodecError {
    CodecError(format!("expected {} ({format}), got {len} bytes that are not one: {why}", a_type::<T>()))
}

/// `T`'s name as a reader writes it, after "a" or "an": "a u64", "an
/// Option<String>", "a my_app::Point". Paths into the standard library are
/// cut to the item's name (`alloc::string::String` is `String`); other
/// paths stay whole, so two types of the same name can be told apart.
pub(crate) fn a_type<T: ?Sized>() -> String {
    let name = short_type_name(type_name::<T>());
    let mut chars = name.chars();
    let an = match (chars.next(), chars.next()) {
        (Some('a' | 'e' | 'i' | 'o' | 'A' | 'E' | 'I' | 'O'), _) => true,
        (Some('f'), Some(d)) => d.is_ascii_digit(), // an f64
        _ => false,
    };
    format!("{} {name}", if an { "an" } else { "a" })
}

/// `full` (a `std::any::type_name`) with every path that starts in `std`,
/// `core` or `alloc` cut to its last segment.
fn short_type_name(full: &str) -> String {
    let mut out = String::with_capacity(full.len());
    let mut rest = full;
    while let Some(c) = rest.chars().next() {
        let path_len = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        if path_len == 0 {
            out.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let path = &rest[..path_len];
        let std_path = ["std::", "core::", "alloc::"].iter().any(|p| path.starts_with(p));
        out.push_str(if std_path { path.rsplit("::").next().unwrap_or(path) } else { path });
        rest = &rest[path_len..];
    }
    out
}

/// bincode's error in words: its "io error" is a message that ended early.
fn bincode_why(e: &bincode::Error) -> String {
    match &**e {
        bincode::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "the message ended early".to_string()
        }
        other => other.to_string(),
    }
}

/// bincode 1, variable-length integers, trailing bytes rejected: the
/// default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bincode;

impl<T: Serialize + DeserializeOwned> Codec<T> for Bincode {
    const NAME: &'static str = "bincode";

    fn encode(value: &T) -> Result<Cow<'_, [u8]>, CodecError> {
        encode(value).map(Cow::Owned)
    }

    fn decode(bytes: Vec<u8>) -> Result<T, (CodecError, Vec<u8>)> {
        decode(&bytes).map_err(|e| (e, bytes))
    }
}

/// Raw bytes: a `Vec<u8>` message is its own payload, with no encoding and
/// no copy on either side (beyond the host's copy into the receiver).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Raw;

impl Codec<Vec<u8>> for Raw {
    const NAME: &'static str = "raw";

    fn encode(value: &Vec<u8>) -> Result<Cow<'_, [u8]>, CodecError> {
        Ok(Cow::Borrowed(value))
    }

    fn decode(bytes: Vec<u8>) -> Result<Vec<u8>, (CodecError, Vec<u8>)> {
        Ok(bytes)
    }
}

/// MessagePack (rmp-serde; structs as maps with field names, so either
/// end may add optional fields). Feature `msgpack`.
#[cfg(feature = "msgpack")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MessagePack;

#[cfg(feature = "msgpack")]
impl<T: Serialize + DeserializeOwned> Codec<T> for MessagePack {
    const NAME: &'static str = "MessagePack";

    fn encode(value: &T) -> Result<Cow<'_, [u8]>, CodecError> {
        rmp_serde::to_vec_named(value).map(Cow::Owned).map_err(|e| encode_error::<T>(<Self as Codec<T>>::NAME, e))
    }

    fn decode(bytes: Vec<u8>) -> Result<T, (CodecError, Vec<u8>)> {
        rmp_serde::from_slice(&bytes).map_err(|e| (decode_error::<T>(<Self as Codec<T>>::NAME, bytes.len(), e), bytes))
    }
}

/// JSON (serde_json). Feature `json`.
#[cfg(feature = "json")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Json;

#[cfg(feature = "json")]
impl<T: Serialize + DeserializeOwned> Codec<T> for Json {
    const NAME: &'static str = "JSON";

    fn encode(value: &T) -> Result<Cow<'_, [u8]>, CodecError> {
        serde_json::to_vec(value).map(Cow::Owned).map_err(|e| encode_error::<T>(<Self as Codec<T>>::NAME, e))
    }

    fn decode(bytes: Vec<u8>) -> Result<T, (CodecError, Vec<u8>)> {
        serde_json::from_slice(&bytes).map_err(|e| (decode_error::<T>(<Self as Codec<T>>::NAME, bytes.len(), e), bytes))
    }
}

/// Encode `value` in the crate's own format ([`Bincode`]).
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    options().serialize(value).map_err(|e| encode_error::<T>("bincode", bincode_why(&e)))
}

/// Append `value` in the crate's own format to `out`.
pub fn encode_into<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<(), CodecError> {
    options().serialize_into(out, value).map_err(|e| encode_error::<T>("bincode", bincode_why(&e)))
}

/// How many bytes [`encode`] would make of `value`, found without making
/// them (a walk of the value).
pub(crate) fn encoded_size<T: Serialize + ?Sized>(value: &T) -> Result<u64, CodecError> {
    options().serialized_size(value).map_err(|e| encode_error::<T>("bincode", bincode_why(&e)))
}

/// Decode a `T` from exactly `bytes` in the crate's own format; the error
/// names `T`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    options().deserialize(bytes).map_err(|e| decode_error::<T>("bincode", bytes.len(), bincode_why(&e)))
}
