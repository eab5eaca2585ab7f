//! kv_server — a key-value store as a server process: one typed handler per
//! message type, calls and casts, a typed registered name.
//!
//! Run: `cargo run --bin kv_server` in sdk/rust.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use wisp::server::{Context, Handlers};
use wisp::{Handle, Name, Server, ServerRef};

/// The store's state: owned by its process, changed one message at a time.
struct Kv {
    map: BTreeMap<String, String>,
}

/// The value of a key.
#[derive(Serialize, Deserialize, Debug)]
struct Get(String);
/// Set a key; the reply is the old value.
#[derive(Serialize, Deserialize, Debug)]
struct Put(String, String);
/// How many keys.
#[derive(Serialize, Deserialize, Debug)]
struct Len;
/// Remove a key (sent as a cast: nobody waits).
#[derive(Serialize, Deserialize, Debug)]
struct Delete(String);
/// Remove every key.
#[derive(Serialize, Deserialize, Debug)]
struct Clear;

impl Server for Kv {
    type Arg = Vec<(String, String)>;

    fn init(initial: Self::Arg, _cx: &mut Context<Self>) -> Result<Self, String> {
        Ok(Kv { map: initial.into_iter().collect() })
    }

    fn handlers(h: &mut Handlers<Self>) {
        h.handle::<Get>().handle::<Put>().handle::<Len>().handle::<Delete>().handle::<Clear>();
    }
}

impl Handle<Get> for Kv {
    type Reply = Option<String>;
    fn handle(&mut self, Get(k): Get, _cx: &mut Context<Self>) -> Option<String> {
        self.map.get(&k).cloned()
    }
}

impl Handle<Put> for Kv {
    type Reply = Option<String>;
    fn handle(&mut self, Put(k, v): Put, _cx: &mut Context<Self>) -> Option<String> {
        self.map.insert(k, v)
    }
}

impl Handle<Len> for Kv {
    type Reply = usize;
    fn handle(&mut self, _: Len, _cx: &mut Context<Self>) -> usize {
        self.map.len()
    }
}

impl Handle<Delete> for Kv {
    type Reply = ();
    fn handle(&mut self, Delete(k): Delete, _cx: &mut Context<Self>) {
        self.map.remove(&k);
    }
}

impl Handle<Clear> for Kv {
    type Reply = ();
    fn handle(&mut self, _: Clear, _cx: &mut Context<Self>) {
        self.map.clear();
    }
}

/// The store's name: whereis gives back a `ServerRef<Kv>`.
const KV: Name<ServerRef<Kv>> = Name::new("kv");

fn main() {
    let kv = Kv::start_link(vec![("lang".into(), "rust".into())]).expect("kv did not start");
    KV.register(&kv).unwrap();
    println!("get lang -> {:?}", kv.call(&Get("lang".into())).unwrap());
    println!("put lang -> {:?}", kv.call(&Put("lang".into(), "Rust 2021".into())).unwrap());
    println!("put runtime -> {:?}", kv.call(&Put("runtime".into(), "wisp".into())).unwrap());
    // A client in another process, finding the store by its typed name.
    let (_, mon) = wisp::spawn_monitor!(|| {
        KV.whereis().unwrap().call(&Put("from".into(), "another process".into())).unwrap();
    })
    .unwrap();
    wisp::Mailbox::<()>::new().receive_matching(&[mon.raw()], wisp::FOREVER).unwrap();
    println!("get from -> {:?}", kv.call(&Get("from".into())).unwrap());
    kv.cast(&Delete("lang".into()));
    println!("get lang -> {:?}", kv.call(&Get("lang".into())).unwrap());
    println!("len -> {}", kv.call(&Len).unwrap());
    kv.cast(&Clear);
    println!("len -> {}", kv.call(&Len).unwrap());
}
