//! Erlang terms: the External Term Format (ETF) that Erlang nodes speak,
//! for messages to and from Erlang code.
//!
//! A message whose tag is [`TAG_TERM`] carries exactly one
//! term, encoded with its version byte (131). [`Term`] is an owned term:
//! build one with the constructors and `From` impls, send it with
//! [`Term::send_to`], and read one with [`Term::decode`].
//!
//! ```
//! use std::time::Duration;
//! use wisp::{Mailbox, Term, TAG_TERM};
//!
//! let mb = Mailbox::<()>::new();
//! let me = mb.process().pid();
//! // {hello, <<"world">>, [1, 2, 3], self()}
//! let t = Term::tuple(vec![
//!     Term::atom("hello"),
//!     Term::from("world"),
//!     Term::list(vec![1.into(), 2.into(), 3.into()]),
//!     Term::Pid(me),
//! ]);
//! t.send_to(me).unwrap();
//! let envelope = mb.receive_matching(&[TAG_TERM], Duration::from_secs(5)).unwrap();
//! let got = Term::decode(&envelope.bytes).unwrap();
//! assert_eq!(got, t);
//! assert!(got.as_tuple().unwrap()[0].is_atom("hello"));
//! ```
//!
//! # What maps to what
//!
//! - Integers are `Int(i128)`: every integer of 64 bits, signed or not,
//!   and more. Larger ones decode as [`Term::Opaque`].
//! - `Float(f64)`: Erlang has no NaN or infinity; encoding one is an error.
//! - `Atom(String)`: at most 255 characters. Atoms Erlang wrote in Latin-1
//!   (OTP 25 and older do, for atoms that fit it) are converted to UTF-8.
//! - `Binary(Vec<u8>)`; bitstrings (a partial last byte) are opaque.
//! - `List(Vec<Term>)`: proper lists; `[]` is `List(vec![])`. A list of
//!   small integers, which Erlang may write as a string (`"abc"`), decodes
//!   as a list of `Int`s and is written back as Erlang writes it; see
//!   [`Term::charlist`]. An improper list (`[a | b]`) is opaque.
//! - `Map(Vec<(Term, Term)>)`: pairs in the order they were written
//!   (equality compares that order; Erlang's does not).
//! - `Pid(Pid)`: a wisp process. On the wire it is the pid of a node with
//!   an empty name (`NEW_PID_EXT`, node `''`, ID = the low 32 bits of the
//!   pid, Serial = the high 32 bits, Creation 0); the host translates those
//!   to and from real nodes' pids where messages cross a node. Any other
//!   pid (one of a named node) is not a wisp process here: it decodes as
//!   `Opaque`.
//! - `Opaque(Vec<u8>)`: one encoded term (without the version byte) that
//!   the others cannot hold: references, ports, funs, bitstrings, improper
//!   lists, integers beyond `i128`, other nodes' pids. It is written back
//!   byte for byte, so a reference received can be sent on.
//!
//! Terms are written as OTP 26 writes them (`term_to_binary(T,
//! [{minor_version, 2}])`: UTF-8 atoms, the smallest integer encoding,
//! `NEW_FLOAT_EXT`), so for anything but maps whose pairs are in another
//! order, the bytes are the ones erl would send.
//!
//! Decoding is for untrusted bytes: every length is checked against the
//! input before use, no allocation is larger than the input could fill,
//! and nesting deeper than [`MAX_DEPTH`] is an error rather than a stack
//! overflow. Compressed terms (tag 80) are not accepted.

use std::fmt;

use crate::codec::CodecError;
use crate::process::{Pid, SendError};
use crate::TAG_TERM;

/// How deep tuples, lists and maps may nest inside each other, in
/// [`Term::decode`] and [`Term::encode`] (the C SDK's `WISP_TERM_MAX_DEPTH`).
pub const MAX_DEPTH: usize = 64;

const VERSION: u8 = 131;
const NEW_FLOAT_EXT: u8 = 70;
const BIT_BINARY_EXT: u8 = 77;
const NEW_PID_EXT: u8 = 88;
const NEW_PORT_EXT: u8 = 89;
const NEWER_REFERENCE_EXT: u8 = 90;
const SMALL_INTEGER_EXT: u8 = 97;
const INTEGER_EXT: u8 = 98;
const FLOAT_EXT: u8 = 99;
const ATOM_EXT: u8 = 100;
const REFERENCE_EXT: u8 = 101;
const PORT_EXT: u8 = 102;
const PID_EXT: u8 = 103;
const SMALL_TUPLE_EXT: u8 = 104;
const LARGE_TUPLE_EXT: u8 = 105;
const NIL_EXT: u8 = 106;
const STRING_EXT: u8 = 107;
const LIST_EXT: u8 = 108;
const BINARY_EXT: u8 = 109;
const SMALL_BIG_EXT: u8 = 110;
const LARGE_BIG_EXT: u8 = 111;
const NEW_FUN_EXT: u8 = 112;
const EXPORT_EXT: u8 = 113;
const NEW_REFERENCE_EXT: u8 = 114;
const SMALL_ATOM_EXT: u8 = 115;
const MAP_EXT: u8 = 116;
const ATOM_UTF8_EXT: u8 = 118;
const SMALL_ATOM_UTF8_EXT: u8 = 119;
const V4_PORT_EXT: u8 = 120;

const MAX_ATOM_CHARS: usize = 255;
/// Elements reserved ahead of decoding them: a count read from the input
/// is a claim, and each Term is many times the byte it may take.
const PREALLOCATE: usize = 1024;

/// An Erlang term (see the [module](self) for what maps to what).
#[derive(Clone, Debug, PartialEq)]
pub enum Term {
    /// An integer.
    Int(i128),
    /// A float (finite).
    Float(f64),
    /// An atom: at most 255 characters.
    Atom(String),
    /// A binary.
    Binary(Vec<u8>),
    /// A tuple.
    Tuple(Vec<Term>),
    /// A proper list; `[]` is an empty one.
    List(Vec<Term>),
    /// A map, as key-value pairs.
    Map(Vec<(Term, Term)>),
    /// A wisp process.
    Pid(Pid),
    /// One encoded term the other variants cannot hold, without the
    /// version byte: a reference, port, fun, bitstring, improper list,
    /// huge integer or another node's pid.
    Opaque(Vec<u8>),
}

/// Why bytes are not a term, or a term cannot be written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TermError {
    /// The input ends inside the term.
    Truncated,
    /// Tuples, lists and maps nest deeper than [`MAX_DEPTH`].
    TooDeep,
    /// Bytes are left after the term.
    TrailingBytes(usize),
    /// The input is not a term: what is wrong, and at which byte.
    Malformed(String),
    /// The term has no encoding Erlang accepts (a NaN, an atom of more
    /// than 255 characters, opaque bytes that are not one term, ...).
    Unencodable(String),
}

impl fmt::Display for TermError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TermError::Truncated => f.write_str("the term is truncated"),
            TermError::TooDeep => write!(f, "the term nests deeper than {MAX_DEPTH} levels"),
            TermError::TrailingBytes(n) => write!(f, "{n} bytes after the term"),
            TermError::Malformed(why) => write!(f, "not an Erlang term: {why}"),
            TermError::Unencodable(why) => write!(f, "cannot encode the term: {why}"),
        }
    }
}

impl std::error::Error for TermError {}

impl Term {
    /// The atom `name`.
    pub fn atom(name: &str) -> Term {
        Term::Atom(name.to_string())
    }

    /// A tuple of `elements`.
    pub fn tuple(elements: Vec<Term>) -> Term {
        Term::Tuple(elements)
    }

    /// A proper list of `elements`.
    pub fn list(elements: Vec<Term>) -> Term {
        Term::List(elements)
    }

    /// `[]`.
    pub fn nil() -> Term {
        Term::List(Vec::new())
    }

    /// A binary.
    pub fn binary(bytes: impl Into<Vec<u8>>) -> Term {
        Term::Binary(bytes.into())
    }

    /// A map of `pairs`.
    pub fn map(pairs: Vec<(Term, Term)>) -> Term {
        Term::Map(pairs)
    }

    /// An Erlang string: the list of `text`'s characters (`"héllo"` in
    /// Erlang is `[104, 233, 108, 108, 111]`). For a binary, use
    /// [`Term::from`] a `&str`.
    pub fn charlist(text: &str) -> Term {
        Term::List(text.chars().map(|c| Term::Int(c as i128)).collect())
    }

    /// True if this is the atom `name`.
    pub fn is_atom(&self, name: &str) -> bool {
        matches!(self, Term::Atom(a) if a == name)
    }

    /// The atom's name.
    pub fn as_atom(&self) -> Option<&str> {
        match self {
            Term::Atom(a) => Some(a),
            _ => None,
        }
    }

    /// The integer, if it is one that fits an `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Term::Int(i) => i64::try_from(*i).ok(),
            _ => None,
        }
    }

    /// The integer, if it is one that fits a `u64`.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Term::Int(i) => u64::try_from(*i).ok(),
            _ => None,
        }
    }

    /// The float.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Term::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The binary's bytes.
    pub fn as_binary(&self) -> Option<&[u8]> {
        match self {
            Term::Binary(b) => Some(b),
            _ => None,
        }
    }

    /// The tuple's elements.
    pub fn as_tuple(&self) -> Option<&[Term]> {
        match self {
            Term::Tuple(t) => Some(t),
            _ => None,
        }
    }

    /// The list's elements.
    pub fn as_list(&self) -> Option<&[Term]> {
        match self {
            Term::List(l) => Some(l),
            _ => None,
        }
    }

    /// The map's pairs.
    pub fn as_map(&self) -> Option<&[(Term, Term)]> {
        match self {
            Term::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The value of `key` in a map (the first pair with that key).
    pub fn get(&self, key: &Term) -> Option<&Term> {
        self.as_map()?.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The process.
    pub fn as_pid(&self) -> Option<Pid> {
        match self {
            Term::Pid(p) => Some(*p),
            _ => None,
        }
    }

    /// The text of an Erlang string: a list of characters (what
    /// [`Term::charlist`] makes), `None` for any other term.
    pub fn as_charlist(&self) -> Option<String> {
        self.as_list()?
            .iter()
            .map(|t| match t {
                Term::Int(c) => u32::try_from(*c).ok().and_then(char::from_u32),
                _ => None,
            })
            .collect()
    }

    /// The term in the external format, with its version byte.
    pub fn encode(&self) -> Result<Vec<u8>, TermError> {
        let mut out = Vec::new();
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Append the term, with its version byte, to `out`. On error `out` may
    /// hold part of it.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), TermError> {
        out.push(VERSION);
        encode_term(self, out, MAX_DEPTH)
    }

    /// Read one term, with its version byte, that fills `bytes` exactly.
    pub fn decode(bytes: &[u8]) -> Result<Term, TermError> {
        match bytes.first() {
            None => return Err(TermError::Truncated),
            Some(&VERSION) => {}
            Some(v) => return Err(TermError::Malformed(format!("version byte {v}, not {VERSION}"))),
        }
        let mut r = Reader { buf: bytes, pos: 1 };
        let t = decode_term(&mut r, MAX_DEPTH)?;
        match bytes.len() - r.pos {
            0 => Ok(t),
            n => Err(TermError::TrailingBytes(n)),
        }
    }

    /// Send the term to `to` as a [`TAG_TERM`] message.
    /// Sending to a dead process is not an error (the message is dropped).
    pub fn send_to(&self, to: Pid) -> Result<(), SendError> {
        let bytes = self.encode().map_err(|e| SendError::Encode(CodecError(e.to_string())))?;
        to.send_raw(TAG_TERM, &bytes)
    }
}

impl From<i64> for Term {
    fn from(v: i64) -> Term {
        Term::Int(v.into())
    }
}
impl From<i32> for Term {
    fn from(v: i32) -> Term {
        Term::Int(v.into())
    }
}
impl From<u64> for Term {
    fn from(v: u64) -> Term {
        Term::Int(v.into())
    }
}
impl From<u32> for Term {
    fn from(v: u32) -> Term {
        Term::Int(v.into())
    }
}
impl From<usize> for Term {
    fn from(v: usize) -> Term {
        Term::Int(v as i128)
    }
}
impl From<f64> for Term {
    fn from(v: f64) -> Term {
        Term::Float(v)
    }
}
/// `true` and `false` are atoms in Erlang.
impl From<bool> for Term {
    fn from(v: bool) -> Term {
        Term::atom(if v { "true" } else { "false" })
    }
}
/// Text becomes a binary (`<<"text">>`), as Erlang code today expects;
/// [`Term::atom`] and [`Term::charlist`] make the other two.
impl From<&str> for Term {
    fn from(v: &str) -> Term {
        Term::Binary(v.as_bytes().to_vec())
    }
}
impl From<String> for Term {
    fn from(v: String) -> Term {
        Term::Binary(v.into_bytes())
    }
}
impl From<&[u8]> for Term {
    fn from(v: &[u8]) -> Term {
        Term::Binary(v.to_vec())
    }
}
impl From<Vec<u8>> for Term {
    fn from(v: Vec<u8>) -> Term {
        Term::Binary(v)
    }
}
impl From<Vec<Term>> for Term {
    fn from(v: Vec<Term>) -> Term {
        Term::List(v)
    }
}
impl From<Pid> for Term {
    fn from(v: Pid) -> Term {
        Term::Pid(v)
    }
}

// ---- encoding ----

fn unencodable(why: impl Into<String>) -> TermError {
    TermError::Unencodable(why.into())
}

fn count32(n: usize, what: &str) -> Result<u32, TermError> {
    u32::try_from(n).map_err(|_| unencodable(format!("{what} of {n} elements")))
}

fn encode_term(t: &Term, out: &mut Vec<u8>, depth: usize) -> Result<(), TermError> {
    match t {
        Term::Int(i) => encode_int(*i, out),
        Term::Float(f) if f.is_finite() => {
            out.push(NEW_FLOAT_EXT);
            out.extend_from_slice(&f.to_bits().to_be_bytes());
        }
        Term::Float(f) => return Err(unencodable(format!("the float {f} (Erlang has none)"))),
        Term::Atom(a) => encode_atom(a, out)?,
        Term::Binary(b) => {
            out.push(BINARY_EXT);
            out.extend_from_slice(&count32(b.len(), "a binary")?.to_be_bytes());
            out.extend_from_slice(b);
        }
        Term::Pid(p) => {
            let raw = p.raw();
            out.extend_from_slice(&[NEW_PID_EXT, SMALL_ATOM_UTF8_EXT, 0]);
            out.extend_from_slice(&(raw as u32).to_be_bytes()); // ID
            out.extend_from_slice(&((raw >> 32) as u32).to_be_bytes()); // Serial
            out.extend_from_slice(&0u32.to_be_bytes()); // Creation
        }
        Term::Opaque(bytes) => {
            let mut r = Reader { buf: bytes, pos: 0 };
            match decode_term(&mut r, depth) {
                Ok(_) if r.pos == bytes.len() => out.extend_from_slice(bytes),
                Ok(_) => return Err(unencodable("opaque bytes hold more than one term")),
                Err(e) => return Err(unencodable(format!("opaque bytes are not a term ({e})"))),
            }
        }
        Term::Tuple(_) | Term::List(_) | Term::Map(_) if depth == 0 => return Err(TermError::TooDeep),
        Term::Tuple(elements) => {
            let n = count32(elements.len(), "a tuple")?;
            match u8::try_from(n) {
                Ok(small) => out.extend_from_slice(&[SMALL_TUPLE_EXT, small]),
                Err(_) => {
                    out.push(LARGE_TUPLE_EXT);
                    out.extend_from_slice(&n.to_be_bytes());
                }
            }
            for e in elements {
                encode_term(e, out, depth - 1)?;
            }
        }
        Term::List(elements) => encode_list(elements, out, depth)?,
        Term::Map(pairs) => {
            out.push(MAP_EXT);
            out.extend_from_slice(&count32(pairs.len(), "a map")?.to_be_bytes());
            for (k, v) in pairs {
                encode_term(k, out, depth - 1)?;
                encode_term(v, out, depth - 1)?;
            }
        }
    }
    Ok(())
}

/// The smallest encoding, as erts chooses it.
fn encode_int(i: i128, out: &mut Vec<u8>) {
    if let Ok(small) = u8::try_from(i) {
        out.extend_from_slice(&[SMALL_INTEGER_EXT, small]);
    } else if let Ok(int) = i32::try_from(i) {
        out.push(INTEGER_EXT);
        out.extend_from_slice(&int.to_be_bytes());
    } else {
        let digits = i.unsigned_abs().to_le_bytes();
        let n = digits.iter().rposition(|&d| d != 0).map_or(0, |p| p + 1);
        out.extend_from_slice(&[SMALL_BIG_EXT, n as u8, (i < 0) as u8]);
        out.extend_from_slice(&digits[..n]);
    }
}

fn encode_atom(name: &str, out: &mut Vec<u8>) -> Result<(), TermError> {
    let chars = name.chars().count();
    if chars > MAX_ATOM_CHARS {
        return Err(unencodable(format!("an atom of {chars} characters (at most {MAX_ATOM_CHARS})")));
    }
    match u8::try_from(name.len()) {
        Ok(n) => out.extend_from_slice(&[SMALL_ATOM_UTF8_EXT, n]),
        Err(_) => {
            out.push(ATOM_UTF8_EXT);
            out.extend_from_slice(&(name.len() as u16).to_be_bytes()); // <= 255 * 4 bytes
        }
    }
    out.extend_from_slice(name.as_bytes());
    Ok(())
}

/// `[]` is NIL_EXT; a list of up to 65535 integers 0..=255 is STRING_EXT,
/// as erts writes it; anything else LIST_EXT, elements, NIL_EXT.
fn encode_list(elements: &[Term], out: &mut Vec<u8>, depth: usize) -> Result<(), TermError> {
    if elements.is_empty() {
        out.push(NIL_EXT);
        return Ok(());
    }
    let bytes: Option<Vec<u8>> = elements
        .iter()
        .map(|e| match e {
            Term::Int(i) => u8::try_from(*i).ok(),
            _ => None,
        })
        .collect();
    if let Some(bytes) = bytes.filter(|b| b.len() <= u16::MAX as usize) {
        out.push(STRING_EXT);
        out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        out.extend_from_slice(&bytes);
        return Ok(());
    }
    out.push(LIST_EXT);
    out.extend_from_slice(&count32(elements.len(), "a list")?.to_be_bytes());
    for e in elements {
        encode_term(e, out, depth - 1)?;
    }
    out.push(NIL_EXT);
    Ok(())
}

// ---- decoding ----

/// A cursor over untrusted input: every read checks what is left.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], TermError> {
        if n > self.left() {
            return Err(TermError::Truncated);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, TermError> {
        Ok(self.take(1)?[0])
    }

    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    fn be(&mut self, bytes: usize) -> Result<u32, TermError> {
        Ok(self.take(bytes)?.iter().fold(0u32, |v, &b| v << 8 | b as u32))
    }

    /// A count of `per`-byte-at-least items, refused if the input cannot
    /// hold them (so no allocation is larger than the input).
    fn count(&mut self, bytes: usize, per: usize) -> Result<usize, TermError> {
        let n = self.be(bytes)? as usize;
        if n.saturating_mul(per) > self.left() {
            return Err(TermError::Truncated);
        }
        Ok(n)
    }

    fn malformed(&self, at: usize, why: &str) -> TermError {
        TermError::Malformed(format!("{why} at byte {at}"))
    }
}

/// One term at r; `depth`: containers it may still open.
fn decode_term(r: &mut Reader, depth: usize) -> Result<Term, TermError> {
    let start = r.pos;
    let tag = r.u8()?;
    // The bytes from the tag to where r is now, as they are.
    let opaque = |r: &Reader| -> Result<Term, TermError> { Ok(Term::Opaque(r.buf[start..r.pos].to_vec())) };
    match tag {
        SMALL_INTEGER_EXT => Ok(Term::Int(r.u8()?.into())),
        INTEGER_EXT => Ok(Term::Int((r.be(4)? as i32).into())),
        SMALL_BIG_EXT | LARGE_BIG_EXT => {
            let n = r.be(if tag == SMALL_BIG_EXT { 1 } else { 4 })? as usize;
            let negative = r.u8()? != 0;
            match big_int(r.take(n)?, negative) {
                Some(i) => Ok(Term::Int(i)),
                None => opaque(r),
            }
        }
        NEW_FLOAT_EXT => {
            let bits = r.take(8)?.iter().fold(0u64, |v, &b| v << 8 | b as u64);
            finite(r, start, f64::from_bits(bits))
        }
        FLOAT_EXT => {
            let text = r.take(31)?;
            let text = std::str::from_utf8(text).ok().map(|t| t.trim_end_matches('\0'));
            match text.and_then(|t| t.parse::<f64>().ok()) {
                Some(f) => finite(r, start, f),
                None => Err(r.malformed(start, "a FLOAT_EXT that is not a number")),
            }
        }
        ATOM_EXT | SMALL_ATOM_EXT | ATOM_UTF8_EXT | SMALL_ATOM_UTF8_EXT => {
            r.pos = start;
            Ok(Term::Atom(read_atom(r)?))
        }
        BINARY_EXT => {
            let n = r.be(4)? as usize;
            Ok(Term::Binary(r.take(n)?.to_vec()))
        }
        STRING_EXT => {
            let n = r.be(2)? as usize;
            Ok(Term::List(r.take(n)?.iter().map(|&b| Term::Int(b.into())).collect()))
        }
        NIL_EXT => Ok(Term::List(Vec::new())),
        SMALL_TUPLE_EXT | LARGE_TUPLE_EXT | LIST_EXT | MAP_EXT if depth == 0 => Err(TermError::TooDeep),
        SMALL_TUPLE_EXT | LARGE_TUPLE_EXT => {
            let n = r.count(if tag == SMALL_TUPLE_EXT { 1 } else { 4 }, 1)?;
            let elements = (0..n).map(|_| decode_term(r, depth - 1)).collect::<Result<_, _>>()?;
            Ok(Term::Tuple(elements))
        }
        MAP_EXT => {
            let n = r.count(4, 2)?;
            let mut pairs = Vec::with_capacity(n.min(PREALLOCATE));
            for _ in 0..n {
                let k = decode_term(r, depth - 1)?;
                pairs.push((k, decode_term(r, depth - 1)?));
            }
            Ok(Term::Map(pairs))
        }
        LIST_EXT => {
            r.pos = start;
            match decode_list(r, depth)? {
                Some(elements) => Ok(Term::List(elements)),
                None => opaque(r),
            }
        }
        NEW_PID_EXT => {
            let node = read_atom(r)?;
            let (id, serial, creation) = (r.be(4)?, r.be(4)?, r.be(4)?);
            if node.is_empty() && creation == 0 {
                Ok(Term::Pid(Pid::from_raw((serial as u64) << 32 | id as u64)))
            } else {
                opaque(r)
            }
        }
        // After the node: ID, Serial and Creation (1 byte) of the old pid;
        // the ID (4 or 8 bytes) and Creation (1 or 4) of ports; the
        // Creation and ID words of references.
        PID_EXT => node_term(r, 9, 0).and_then(|_| opaque(r)),
        PORT_EXT | REFERENCE_EXT => node_term(r, 5, 0).and_then(|_| opaque(r)),
        NEW_PORT_EXT => node_term(r, 8, 0).and_then(|_| opaque(r)),
        V4_PORT_EXT => node_term(r, 12, 0).and_then(|_| opaque(r)),
        NEWER_REFERENCE_EXT | NEW_REFERENCE_EXT => {
            let words = r.be(2)? as usize;
            node_term(r, if tag == NEWER_REFERENCE_EXT { 4 } else { 1 }, words).and_then(|_| opaque(r))
        }
        EXPORT_EXT => {
            read_atom(r)?;
            read_atom(r)?;
            if r.u8()? != SMALL_INTEGER_EXT {
                return Err(r.malformed(start, "an EXPORT_EXT whose arity is not a small integer"));
            }
            r.u8()?;
            opaque(r)
        }
        NEW_FUN_EXT => {
            // Size counts itself and everything after it.
            let size = r.be(4)? as usize;
            if size < 4 {
                return Err(r.malformed(start, "a NEW_FUN_EXT shorter than its size field"));
            }
            r.take(size - 4)?;
            opaque(r)
        }
        BIT_BINARY_EXT => {
            let n = r.be(4)? as usize;
            r.u8()?;
            r.take(n)?;
            opaque(r)
        }
        80 => Err(r.malformed(start, "a compressed term (not supported)")),
        _ => Err(r.malformed(start, &format!("unknown tag {tag}"))),
    }
}

fn finite(r: &Reader, at: usize, f: f64) -> Result<Term, TermError> {
    if f.is_finite() {
        Ok(Term::Float(f))
    } else {
        Err(r.malformed(at, "a float that is not finite"))
    }
}

/// A big integer's little-endian digits, if it fits an i128.
fn big_int(digits: &[u8], negative: bool) -> Option<i128> {
    let used = digits.iter().rposition(|&d| d != 0).map_or(0, |p| p + 1);
    if used > 16 {
        return None;
    }
    let mut le = [0u8; 16];
    le[..used].copy_from_slice(&digits[..used]);
    let mag = u128::from_le_bytes(le);
    if negative {
        0i128.checked_sub_unsigned(mag)
    } else {
        i128::try_from(mag).ok()
    }
}

/// An atom in any of its four encodings, as UTF-8.
fn read_atom(r: &mut Reader) -> Result<String, TermError> {
    let start = r.pos;
    let tag = r.u8()?;
    let n = match tag {
        ATOM_EXT | ATOM_UTF8_EXT => r.be(2)? as usize,
        SMALL_ATOM_EXT | SMALL_ATOM_UTF8_EXT => r.u8()? as usize,
        _ => return Err(r.malformed(start, &format!("tag {tag} where an atom belongs"))),
    };
    let bytes = r.take(n)?;
    let name: String = if tag == ATOM_EXT || tag == SMALL_ATOM_EXT {
        bytes.iter().map(|&b| b as char).collect() // Latin-1: the first 256 code points
    } else {
        std::str::from_utf8(bytes).map_err(|_| r.malformed(start, "an atom that is not UTF-8"))?.to_string()
    };
    if name.chars().count() > MAX_ATOM_CHARS {
        return Err(r.malformed(start, "an atom of more than 255 characters"));
    }
    Ok(name)
}

/// The node's atom, `fixed` bytes, then `words` 32-bit words.
fn node_term(r: &mut Reader, fixed: usize, words: usize) -> Result<(), TermError> {
    read_atom(r)?;
    r.take(fixed)?;
    r.take(words.checked_mul(4).ok_or(TermError::Truncated)?)?;
    Ok(())
}

/// A LIST_EXT at r: its elements if it is a proper list, None (r past it)
/// if improper. A tail that is itself a list (or a string) continues it,
/// as `[1 | [2]]` is `[1, 2]`.
fn decode_list(r: &mut Reader, depth: usize) -> Result<Option<Vec<Term>>, TermError> {
    let mut elements = Vec::new();
    loop {
        match r.peek() {
            Some(LIST_EXT) => {
                r.u8()?;
                let n = r.count(4, 1)?;
                elements.reserve(n.min(PREALLOCATE));
                for _ in 0..n {
                    elements.push(decode_term(r, depth - 1)?);
                }
            }
            Some(NIL_EXT) => {
                r.u8()?;
                return Ok(Some(elements));
            }
            Some(STRING_EXT) => {
                if let Term::List(chars) = decode_term(r, depth - 1)? {
                    elements.extend(chars);
                }
                return Ok(Some(elements));
            }
            _ => {
                decode_term(r, depth - 1)?;
                return Ok(None);
            }
        }
    }
}
