//! ping_pong — two processes bounce a counter back and forth.
//!
//! Run: `cargo run --bin ping_pong` (in sdk/rust; `../../scripts/cargo-wasm
//! run --bin ping_pong` on Debian without rustup's target).
use serde::{Deserialize, Serialize};
use wisp::{Mailbox, Process};

#[derive(Serialize, Deserialize, Debug)]
enum Msg {
    Ping { n: u32, reply_to: Process<Msg> },
    Pong { n: u32 },
}

fn ponger(_: (), mb: Mailbox<Msg>) {
    loop {
        match mb.receive() {
            Ok(Msg::Ping { n, reply_to }) => reply_to.send(&Msg::Pong { n }),
            Ok(other) => eprintln!("ponger: unexpected {other:?}"),
            Err(e) => eprintln!("ponger: {e}"),
        }
    }
}

fn main() {
    let rounds: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let me = Mailbox::<Msg>::new();
    let pong = wisp::spawn((), ponger).expect("spawn");
    for n in 1..=rounds {
        pong.send(&Msg::Ping { n, reply_to: me.process() });
        match me.receive() {
            Ok(Msg::Pong { n }) if n <= 5 || n == rounds => println!("pong {n}"),
            Ok(Msg::Pong { .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    println!("ping_pong: {rounds} round trips");
}
