//! kv_upgrade, version 2: the store counts each key's writes; the protocol
//! answers `+...` or `-...`, checks keys, and has WRITES, KEYS and UPGRADE
//! (see main.rs). What changed from version 1, and how it travels:
//!
//! - the store's layout (`Kv::VSN` 2): `upgrade` converts version 1's map,
//!   and refuses one holding a key version 2 does not allow;
//! - the messages of version 1 (`Set`, `Get`, `Del`) are kept as they were
//!   (a connection of one version may ask a store of the other while they
//!   move, or when the store refused), new ones added (`Writes`, `Keys`);
//! - a connection's state is the same (`Conn::VSN` stays 1).
use std::borrow::Borrow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use wisp::server::{Context, Handle, Handlers, Handover, OldState, Server, Upgrade};
use wisp::{CallError, ExitReason, ServerRef};

// ---- the store ----

#[derive(Serialize, Deserialize)]
pub struct Kv {
    map: BTreeMap<String, Entry>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    value: String,
    /// How often the key was set.
    writes: u64,
}

/// Version 1's state, as it was.
#[derive(Deserialize)]
struct KvV1 {
    map: BTreeMap<String, String>,
}

/// Set a key.
#[derive(Serialize, Deserialize)]
pub struct Set(pub String, pub String);
/// A key's value.
#[derive(Serialize, Deserialize)]
pub struct Get(pub String);
/// Delete a key: whether it was there.
#[derive(Serialize, Deserialize)]
pub struct Del(pub String);
/// How often a key was set (new in version 2).
#[derive(Serialize, Deserialize)]
pub struct Writes(pub String);
/// The keys, in order (new in version 2).
#[derive(Serialize, Deserialize)]
pub struct Keys;

/// A key version 2 takes: 1 to 64 letters, digits and `_.:-`.
fn good_key(k: &str) -> bool {
    (1..=64).contains(&k.len()) && k.chars().all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c))
}

impl Server for Kv {
    type Arg = ();
    fn init(_: (), _: &mut Context<Self>) -> Result<Self, String> {
        Ok(Kv { map: BTreeMap::new() })
    }
    fn handlers(h: &mut Handlers<Self>) {
        h.handle::<Set>().handle::<Get>().handle::<Del>().handle::<Writes>().handle::<Keys>();
    }
}

impl Handle<Set> for Kv {
    type Reply = ();
    fn handle(&mut self, Set(k, value): Set, _: &mut Context<Self>) {
        let e = self.map.entry(k).or_insert(Entry { value: String::new(), writes: 0 });
        e.value = value;
        e.writes += 1;
    }
}

impl Handle<Get> for Kv {
    type Reply = Option<String>;
    fn handle(&mut self, Get(k): Get, _: &mut Context<Self>) -> Option<String> {
        self.map.get(&k).map(|e| e.value.clone())
    }
}

impl Handle<Del> for Kv {
    type Reply = bool;
    fn handle(&mut self, Del(k): Del, _: &mut Context<Self>) -> bool {
        self.map.remove(&k).is_some()
    }
}

impl Handle<Writes> for Kv {
    type Reply = Option<u64>;
    fn handle(&mut self, Writes(k): Writes, _: &mut Context<Self>) -> Option<u64> {
        self.map.get(&k).map(|e| e.writes)
    }
}

impl Handle<Keys> for Kv {
    type Reply = Vec<String>;
    fn handle(&mut self, _: Keys, _: &mut Context<Self>) -> Vec<String> {
        self.map.keys().cloned().collect()
    }
}

impl Handover for Kv {
    type Saved = Kv;
    fn save(&self) -> Result<impl Borrow<Kv>, String> {
        Ok(self)
    }
    fn restore(saved: Kv, _: &mut Context<Self>) -> Result<Self, String> {
        Ok(saved)
    }
}

impl Upgrade for Kv {
    const VSN: u32 = 2;

    fn upgrade(old: OldState<'_>, cx: &mut Context<Self>) -> Result<Self, String> {
        match old.vsn() {
            1 => {
                let v1: KvV1 = old.decode()?;
                if let Some(bad) = v1.map.keys().find(|k| !good_key(k)) {
                    return Err(format!(
                        "version 2 keeps keys of letters, digits and _.:- only, and the store holds {bad:?}: \
                         delete it, then UPGRADE"
                    ));
                }
                let n = v1.map.len();
                let map = v1.map.into_iter().map(|(k, value)| (k, Entry { value, writes: 1 })).collect();
                println!("kv: version 2 took over {n} key{} from version 1", if n == 1 { "" } else { "s" });
                Ok(Kv { map })
            }
            2 => Self::restore(old.decode()?, cx),
            v => Err(format!("a store of version {v} is newer than this code")),
        }
    }
}

// ---- a connection ----

#[derive(Serialize, Deserialize)]
pub struct Conn {
    kv: ServerRef<Kv>,
    /// The commands this connection has sent.
    commands: u64,
    /// What was read after the last whole line.
    buf: Vec<u8>,
}

impl Server for Conn {
    type Arg = ServerRef<Kv>;
    fn init(kv: ServerRef<Kv>, _: &mut Context<Self>) -> Result<Self, String> {
        Ok(Conn { kv, commands: 0, buf: Vec::new() })
    }
    fn handlers(_: &mut Handlers<Self>) {}

    fn handle_readable(&mut self, cx: &mut Context<Self>) {
        let Some(lines) = crate::read_lines(&mut self.buf, cx) else { return cx.stop(ExitReason::Normal) };
        for line in lines {
            let reply = self.command(&line);
            if !crate::send_line(cx, &reply) {
                return cx.stop(ExitReason::Normal);
            }
        }
    }
}

/// A call's error as a reply; a message the store has no handler for
/// means it runs version 1 still.
fn error(e: CallError) -> String {
    match e {
        CallError::BadRequest(_) => "-ERR the store runs an older version: UPGRADE it".into(),
        e => format!("-ERR {e}"),
    }
}

impl Conn {
    fn command(&mut self, line: &str) -> String {
        self.commands += 1;
        let words: Vec<&str> = line.splitn(3, ' ').collect();
        let r = match words.as_slice() {
            ["SET", k, _] if !good_key(k) => Ok("-ERR bad key: letters, digits and _.:- only".into()),
            ["SET", k, v] => self.kv.call(&Set(k.to_string(), v.to_string())).map(|()| "+OK".to_string()),
            ["GET", k] => self.kv.call(&Get(k.to_string())).map(|v| match v {
                Some(v) => format!("+{v}"),
                None => "-NOT FOUND".into(),
            }),
            ["DEL", k] => self.kv.call(&Del(k.to_string())).map(|had| format!("+{}", had as u8)),
            ["COUNT"] => Ok(format!("+{}", self.commands)),
            ["WRITES", k] => self.kv.call(&Writes(k.to_string())).map(|n| match n {
                Some(n) => format!("+{n}"),
                None => "-NOT FOUND".into(),
            }),
            ["KEYS"] => self.kv.call(&Keys).map(|keys| format!("+{}", keys.join(" "))),
            ["UPGRADE"] => self.kv.upgrade().map(|r| match r {
                Ok(v) => format!("+OK the store runs version {v}"),
                Err(e) => format!("-ERR {e}"),
            }),
            _ => Ok("-ERR unknown command".into()),
        };
        r.unwrap_or_else(error)
    }
}

impl Handover for Conn {
    type Saved = Conn;
    fn save(&self) -> Result<impl Borrow<Conn>, String> {
        Ok(self)
    }
    fn restore(saved: Conn, _: &mut Context<Self>) -> Result<Self, String> {
        Ok(saved)
    }
}

impl Upgrade for Conn {}
