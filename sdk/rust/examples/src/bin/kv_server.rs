//! kv_server — a key-value store as a server process, with call and cast.
//!
//! Run: `cargo run --bin kv_server` in sdk/rust.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use wisp::server::Context;
use wisp::{Server, ServerRef};

/// The store's state: owned by its process, changed one message at a time.
struct Kv {
    map: BTreeMap<String, String>,
}

/// Requests that want an answer.
#[derive(Serialize, Deserialize, Debug)]
enum Call {
    Get(String),
    Put(String, String),
    Len,
}

/// Answers.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum Reply {
    Value(Option<String>),
    Old(Option<String>),
    Len(usize),
}

/// Fire-and-forget requests.
#[derive(Serialize, Deserialize, Debug)]
enum Cast {
    Delete(String),
    Clear,
}

impl Server for Kv {
    type Arg = Vec<(String, String)>;
    type Call = Call;
    type Reply = Reply;
    type Cast = Cast;
    type Info = ();

    fn init(initial: Self::Arg, _cx: &mut Context<Self>) -> Result<Self, String> {
        Ok(Kv { map: initial.into_iter().collect() })
    }

    fn handle_call(&mut self, msg: Call, _cx: &mut Context<Self>) -> Reply {
        match msg {
            Call::Get(k) => Reply::Value(self.map.get(&k).cloned()),
            Call::Put(k, v) => Reply::Old(self.map.insert(k, v)),
            Call::Len => Reply::Len(self.map.len()),
        }
    }

    fn handle_cast(&mut self, msg: Cast, _cx: &mut Context<Self>) {
        match msg {
            Cast::Delete(k) => {
                self.map.remove(&k);
            }
            Cast::Clear => self.map.clear(),
        }
    }
}

/// A client in another process, finding the store by name.
fn client(_: (), mb: wisp::Mailbox<()>) {
    let kv: ServerRef<Kv> = ServerRef::from_pid(wisp::registry::whereis_pid("kv").unwrap());
    kv.call(&Call::Put("from".into(), "another process".into())).unwrap();
    drop(mb);
}

fn main() {
    let kv = Kv::start_link(vec![("lang".into(), "rust".into())]).expect("kv did not start");
    wisp::register("kv", kv.process()).unwrap();
    println!("get lang -> {:?}", kv.call(&Call::Get("lang".into())).unwrap());
    println!("put lang -> {:?}", kv.call(&Call::Put("lang".into(), "Rust 2021".into())).unwrap());
    println!("put runtime -> {:?}", kv.call(&Call::Put("runtime".into(), "wisp".into())).unwrap());
    let (_, mon) = wisp::spawn_monitor((), client).unwrap();
    wisp::Mailbox::<()>::new().receive_matching(&[mon.raw()], wisp::FOREVER).unwrap();
    println!("get from -> {:?}", kv.call(&Call::Get("from".into())).unwrap());
    kv.cast(&Cast::Delete("lang".into()));
    println!("get lang -> {:?}", kv.call(&Call::Get("lang".into())).unwrap());
    println!("len -> {:?}", kv.call(&Call::Len).unwrap());
    kv.cast(&Cast::Clear);
    println!("len -> {:?}", kv.call(&Call::Len).unwrap());
}
