//! kv_upgrade, version 1: the store keeps strings; the protocol answers in
//! words (see main.rs).
use std::borrow::Borrow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use wisp::server::{Context, Handle, Handlers, Handover, Server, Upgrade};
use wisp::{ExitReason, ServerRef};

// ---- the store ----

#[derive(Serialize, Deserialize)]
pub struct Kv {
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

impl Server for Kv {
    type Arg = ();
    fn init(_: (), _: &mut Context<Self>) -> Result<Self, String> {
        Ok(Kv { map: BTreeMap::new() })
    }
    fn handlers(h: &mut Handlers<Self>) {
        h.handle::<Set>().handle::<Get>().handle::<Del>();
    }
}

impl Handle<Set> for Kv {
    type Reply = ();
    fn handle(&mut self, Set(k, v): Set, _: &mut Context<Self>) {
        self.map.insert(k, v);
    }
}

impl Handle<Get> for Kv {
    type Reply = Option<String>;
    fn handle(&mut self, Get(k): Get, _: &mut Context<Self>) -> Option<String> {
        self.map.get(&k).cloned()
    }
}

impl Handle<Del> for Kv {
    type Reply = bool;
    fn handle(&mut self, Del(k): Del, _: &mut Context<Self>) -> bool {
        self.map.remove(&k).is_some()
    }
}

/// The whole state travels to the next version.
impl Handover for Kv {
    type Saved = Kv;
    fn save(&self) -> Result<impl Borrow<Kv>, String> {
        Ok(self)
    }
    fn restore(saved: Kv, _: &mut Context<Self>) -> Result<Self, String> {
        Ok(saved)
    }
}

/// Layout version 1 (`VSN`), moving by itself.
impl Upgrade for Kv {}

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

impl Conn {
    fn command(&mut self, line: &str) -> String {
        self.commands += 1;
        let words: Vec<&str> = line.splitn(3, ' ').collect();
        let r = match words.as_slice() {
            ["SET", k, v] => self.kv.call(&Set(k.to_string(), v.to_string())).map(|()| "OK".to_string()),
            ["GET", k] => self.kv.call(&Get(k.to_string())).map(|v| match v {
                Some(v) => format!("VALUE {v}"),
                None => "NOT FOUND".into(),
            }),
            ["DEL", k] => self.kv.call(&Del(k.to_string())).map(|had| if had { "DELETED" } else { "NOT FOUND" }.into()),
            ["COUNT"] => Ok(format!("COUNT {}", self.commands)),
            _ => Ok("ERROR unknown command".into()),
        };
        r.unwrap_or_else(|e| format!("ERROR {e}"))
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
