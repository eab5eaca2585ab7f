//! The wire format of messages: bincode 1 with variable-length integers,
//! little endian, trailing bytes rejected. Compact, offline (Debian packages
//! it), and every decode failure is an `Err`, never a panic. Lengths inside
//! a message never make the decoder allocate more than the message could
//! hold (bincode preallocates cautiously).

use bincode::Options;
use serde::{de::DeserializeOwned, Serialize};

fn options() -> impl Options {
    bincode::DefaultOptions::new().reject_trailing_bytes()
}

/// Why a message could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecError(pub String);

impl std::fmt::Display for CodecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CodecError {}

/// Encode `value` in wisp's wire format.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    options().serialize(value).map_err(|e| CodecError(e.to_string()))
}

/// Append `value` in wisp's wire format to `out`.
pub fn encode_into<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<(), CodecError> {
    options().serialize_into(out, value).map_err(|e| CodecError(e.to_string()))
}

/// Decode a `T` from exactly `bytes`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    options().deserialize(bytes).map_err(|e| CodecError(e.to_string()))
}
