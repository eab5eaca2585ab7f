//! kv_upgrade — a TCP key-value server whose protocol changes from version
//! 1 to version 2 while its clients stay connected: hot code reload.
//!
//! Each connection is a server of its own (`Conn`, which holds its stream:
//! `Context::set_stream`, `Server::start_with_stream`) speaking the line
//! protocol to its client and asking one store (`Kv`). Both types are
//! upgradable (`Handover` and `Upgrade`, listed in `wisp::upgradable!`):
//! when a new version is loaded, each moves onto it between two lines, in
//! place — same process, same socket — with its state: the store's map
//! (version 2 converts version 1's layout), a connection's command count
//! and the part of a line it has read. `main` only accepts connections; it
//! never moves (the main process is the run itself, and is never purged),
//! so the connections it starts begin on version 1's code and move before
//! their first line.
//!
//! This file is the same in both versions; the protocol and the state are
//! in v1.rs, or in v2.rs with `--features kv_v2`:
//!
//! | command       | version 1                 | version 2                 |
//! |---------------|---------------------------|---------------------------|
//! | SET key value | OK                        | +OK (keys: letters, digits, `_.:-`) |
//! | GET key       | VALUE value / NOT FOUND   | +value / -NOT FOUND       |
//! | DEL key       | DELETED / NOT FOUND       | +1 / +0                   |
//! | COUNT         | COUNT n (this connection) | +n                        |
//! | WRITES key    |                           | +n: how often it was set  |
//! | KEYS          |                           | +the keys                 |
//! | UPGRADE       |                           | move the store now        |
//!
//! Version 2 refuses a store holding a key it does not allow: the store
//! then goes on with version 1's code and state (the connections speak
//! version 2 with it; WRITES waits), until a client deletes the key and
//! sends UPGRADE.
//!
//! Try it (in sdk/rust; 7002 unless a port is given, 0 picks a free one):
//!
//! ```text
//! cargo run --bin kv_upgrade                        # version 1
//! nc 127.0.0.1 7002                                 # SET lang rust, GET lang, COUNT
//! cargo build --bin kv_upgrade --features kv_v2     # (another terminal)
//! ../../wisp reload target/wasm32-wasip1/debug/kv_upgrade.wasm
//! ```
//!
//! The nc session goes on, now in version 2: `GET lang` answers `+rust`,
//! `WRITES lang` `+1`.
use std::io::{Read, Write};

use wisp::net::TcpListener;
use wisp::server::{Context, Server};

#[cfg_attr(not(feature = "kv_v2"), path = "v1.rs")]
#[cfg_attr(feature = "kv_v2", path = "v2.rs")]
mod version;

use version::{Conn, Kv};

// What a new version can take over. (The types keep their keys from
// version to version: same crate, module path and names.)
wisp::upgradable!(Kv, Conn);

/// The most a connection buffers without a newline.
const MAX_LINE: usize = 64 * 1024;

/// Read what the held stream has (one read: it is readable) into `buf`
/// and take the whole lines out of it; `None` when the client closed, or
/// sent a line longer than [`MAX_LINE`].
fn read_lines<S: Server>(buf: &mut Vec<u8>, cx: &mut Context<S>) -> Option<Vec<String>> {
    let mut chunk = [0u8; 4096];
    let n = cx.stream()?.read(&mut chunk).ok().filter(|&n| n > 0)?;
    buf.extend_from_slice(&chunk[..n]);
    let mut lines = Vec::new();
    while let Some(end) = buf.iter().position(|&b| b == b'\n') {
        let line: Vec<u8> = buf.drain(..=end).collect();
        lines.push(String::from_utf8_lossy(&line).trim_end().to_string());
    }
    (buf.len() <= MAX_LINE).then_some(lines)
}

/// Send one line to the client; false if it is gone.
fn send_line<S: Server>(cx: &mut Context<S>, line: &str) -> bool {
    cx.stream().is_some_and(|s| s.write_all(format!("{line}\n").as_bytes()).is_ok())
}

fn main() {
    let port: u16 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(7002);
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("kv_upgrade: cannot listen");
    let kv = Kv::start_link(()).expect("kv_upgrade: cannot start the store");
    println!("kv version {} on {}", wisp::code::version(), listener.local_addr().unwrap());
    for stream in listener.incoming().flatten() {
        if let Err(e) = Conn::start_with_stream(kv, stream) {
            eprintln!("kv_upgrade: a connection did not start: {e}");
        }
    }
}
