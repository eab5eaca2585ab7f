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
//!   little endian, trailing bytes rejected. Compact and fast; a length
//!   inside a message never makes the decoder reserve room for more
//!   elements than the message has bytes.
//! - `MessagePack` (feature `msgpack`, rmp-serde) and `Json` (feature
//!   `json`, serde_json): self-describing formats, for messages that other
//!   tools read or that change shape between versions.
//! - [`Raw`]: `Vec<u8>` payloads as they are, with no encoding step: the
//!   sender's bytes are handed to the host without a copy, the receiver
//!   gets the host's buffer.
//!
//! Every decode failure is an `Err` that names the type that was expected
//! ([`CodecError`]), never a panic; in every codec, a message nesting
//! deeper than [`MAX_DEPTH`] is one (a recursive type would otherwise
//! let a small message exhaust the receiver's stack). Spawn arguments, replies, and the
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
use std::marker::PhantomData;

use bincode::Options;
use serde::de::DeserializeOwned;
#[cfg(any(feature = "msgpack", feature = "json"))]
use serde::de::DeserializeSeed;
use serde::Serialize;

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
        let mut de = rmp_serde::Deserializer::from_read_ref(&bytes);
        let r = limited_seed::<T>(bytes.len()).deserialize(&mut de);
        r.map_err(|e| (decode_error::<T>(<Self as Codec<T>>::NAME, bytes.len(), e), bytes))
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
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let r = limited_seed::<T>(bytes.len()).deserialize(&mut de).and_then(|v| de.end().map(|()| v));
        r.map_err(|e| (decode_error::<T>(<Self as Codec<T>>::NAME, bytes.len(), e), bytes))
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
    options().deserialize_seed(limited_seed::<T>(bytes.len()), bytes).map_err(|e| decode_error::<T>("bincode", bytes.len(), bincode_why(&e)))
}

/// How deeply the compound values of a decoded message may nest inside
/// each other (sequences, maps, structs, enum variants, `Some`, newtype
/// structs: each level counts). A message nesting deeper is a decode error,
/// in every codec: decoding a recursive type (`enum Tree { Leaf,
/// Node(Vec<Tree>) }`) recurses once per level, and a few hundred levels —
/// a message of a kilobyte from any process — exhaust the receiver's call
/// stack, which ends it. The limit holds well within a process's stack in
/// either compilation tier.
pub const MAX_DEPTH: usize = 128;

/// A `DeserializeSeed` for `T` from a message of `len` bytes, whose
/// decoding counts nesting and preallocates for no more elements than the
/// message has bytes.
fn limited_seed<'de, T: serde::Deserialize<'de>>(len: usize) -> depth::Seed<PhantomData<T>> {
    depth::Seed { seed: PhantomData, lim: depth::Limits { left: MAX_DEPTH, len } }
}

/// The nesting count: a deserializer, visitor and access adapters that pass
/// everything through to the format's own, and count down a level each
/// time the format hands a visitor a compound value (`visit_seq`,
/// `visit_map`, `visit_enum`, `visit_some`, `visit_newtype_struct`). At 0,
/// the compound value is an error instead. The format's code and the
/// type's `Deserialize` are unchanged: only whether they go deeper is
/// decided here, and how many elements a sequence or map says it has
/// (`size_hint`, which collections preallocate by: serde caps it at 4096
/// elements, of any size): at most the message's length, so a length
/// prefix of 2^32 in a small message reserves little.
mod depth {
    use std::fmt;

    use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};

    fn too_deep<E: de::Error>() -> E {
        E::custom(format_args!("the message nests deeper than {} levels", super::MAX_DEPTH))
    }

    /// What a value may still do: open `left` more levels; `len`: the
    /// message's length, the most elements any sequence or map in it is
    /// said to have.
    #[derive(Clone, Copy)]
    pub(super) struct Limits {
        pub(super) left: usize,
        pub(super) len: usize,
    }

    /// A seed whose value keeps within `lim`.
    pub(super) struct Seed<S> {
        pub(super) seed: S,
        pub(super) lim: Limits,
    }

    impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<S> {
        type Value = S::Value;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
            self.seed.deserialize(Limited { de: d, lim: self.lim })
        }
    }

    /// A deserializer whose values keep within `lim`.
    struct Limited<D> {
        de: D,
        lim: Limits,
    }

    /// Deserializer methods that pass the visitor on, counted.
    macro_rules! forward {
        ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
            fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
                self.de.$method($($arg,)* Counted { visitor, lim: self.lim })
            }
        )*};
    }

    impl<'de, D: Deserializer<'de>> Deserializer<'de> for Limited<D> {
        type Error = D::Error;

        forward! {
            deserialize_any(); deserialize_bool(); deserialize_i8(); deserialize_i16(); deserialize_i32();
            deserialize_i64(); deserialize_i128(); deserialize_u8(); deserialize_u16(); deserialize_u32();
            deserialize_u64(); deserialize_u128(); deserialize_f32(); deserialize_f64(); deserialize_char();
            deserialize_str(); deserialize_string(); deserialize_bytes(); deserialize_byte_buf();
            deserialize_option(); deserialize_unit(); deserialize_unit_struct(name: &'static str);
            deserialize_newtype_struct(name: &'static str); deserialize_seq(); deserialize_tuple(len: usize);
            deserialize_tuple_struct(name: &'static str, len: usize); deserialize_map();
            deserialize_struct(name: &'static str, fields: &'static [&'static str]);
            deserialize_enum(name: &'static str, variants: &'static [&'static str]);
            deserialize_identifier(); deserialize_ignored_any();
        }

        fn is_human_readable(&self) -> bool {
            self.de.is_human_readable()
        }
    }

    /// A visitor that goes a level deeper for each compound value.
    struct Counted<V> {
        visitor: V,
        lim: Limits,
    }

    impl<V> Counted<V> {
        /// The limits inside a compound value, or the error.
        fn deeper<E: de::Error>(&self) -> Result<Limits, E> {
            let left = self.lim.left.checked_sub(1).ok_or_else(too_deep)?;
            Ok(Limits { left, ..self.lim })
        }
    }

    /// Visitor methods for values that open no level.
    macro_rules! scalar {
        ($($method:ident($ty:ty);)*) => {$(
            fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
                self.visitor.$method(v)
            }
        )*};
    }

    impl<'de, V: Visitor<'de>> Visitor<'de> for Counted<V> {
        type Value = V::Value;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.visitor.expecting(f)
        }

        scalar! {
            visit_bool(bool); visit_i8(i8); visit_i16(i16); visit_i32(i32); visit_i64(i64); visit_i128(i128);
            visit_u8(u8); visit_u16(u16); visit_u32(u32); visit_u64(u64); visit_u128(u128);
            visit_f32(f32); visit_f64(f64); visit_char(char); visit_str(&str); visit_borrowed_str(&'de str);
            visit_string(String); visit_bytes(&[u8]); visit_borrowed_bytes(&'de [u8]); visit_byte_buf(Vec<u8>);
        }

        fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
            self.visitor.visit_none()
        }

        fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
            self.visitor.visit_unit()
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
            let lim = self.deeper()?;
            self.visitor.visit_some(Limited { de: d, lim })
        }

        fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
            let lim = self.deeper()?;
            self.visitor.visit_newtype_struct(Limited { de: d, lim })
        }

        fn visit_seq<A: SeqAccess<'de>>(self, a: A) -> Result<V::Value, A::Error> {
            let lim = self.deeper()?;
            self.visitor.visit_seq(Access { access: a, lim })
        }

        fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<V::Value, A::Error> {
            let lim = self.deeper()?;
            self.visitor.visit_map(Access { access: a, lim })
        }

        fn visit_enum<A: EnumAccess<'de>>(self, a: A) -> Result<V::Value, A::Error> {
            let lim = self.deeper()?;
            self.visitor.visit_enum(Access { access: a, lim })
        }
    }

    /// A sequence, map, enum or variant whose elements keep within `lim`.
    struct Access<A> {
        access: A,
        lim: Limits,
    }

    impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Access<A> {
        type Error = A::Error;

        fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, A::Error> {
            self.access.next_element_seed(Seed { seed, lim: self.lim })
        }

        fn size_hint(&self) -> Option<usize> {
            self.access.size_hint().map(|n| n.min(self.lim.len))
        }
    }

    impl<'de, A: MapAccess<'de>> MapAccess<'de> for Access<A> {
        type Error = A::Error;

        fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
            self.access.next_key_seed(Seed { seed, lim: self.lim })
        }

        fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
            self.access.next_value_seed(Seed { seed, lim: self.lim })
        }

        fn size_hint(&self) -> Option<usize> {
            self.access.size_hint().map(|n| n.min(self.lim.len))
        }
    }

    impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for Access<A> {
        type Error = A::Error;
        type Variant = Access<A::Variant>;

        fn variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<(T::Value, Self::Variant), A::Error> {
            let lim = self.lim;
            let (value, variant) = self.access.variant_seed(Seed { seed, lim })?;
            Ok((value, Access { access: variant, lim }))
        }
    }

    impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Access<A> {
        type Error = A::Error;

        fn unit_variant(self) -> Result<(), A::Error> {
            self.access.unit_variant()
        }

        fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
            self.access.newtype_variant_seed(Seed { seed, lim: self.lim })
        }

        fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
            self.access.tuple_variant(len, Counted { visitor, lim: self.lim })
        }

        fn struct_variant<V: Visitor<'de>>(
            self,
            fields: &'static [&'static str],
            visitor: V,
        ) -> Result<V::Value, A::Error> {
            self.access.struct_variant(fields, Counted { visitor, lim: self.lim })
        }
    }
}
