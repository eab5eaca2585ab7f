//! chat — a line-based chat server: one room process, one process per
//! client.
//!
//! A client's first line is its name; every later line goes to everyone in
//! the room as "name: line". The room monitors its members, so a client
//! that disconnects — or whose process crashes (send "/crash") — is
//! announced as gone. Each client process waits on its socket and its
//! mailbox at once (`Mailbox::receive_or_readable`): lines from the room
//! are written out, lines from the network go to the room.
//!
//! Run: `cargo run --bin chat [PORT]` in sdk/rust (default 7001; 0 picks a
//! free port), then `nc 127.0.0.1 7001` in two terminals.
use std::collections::HashMap;
use std::io::{Read, Write};

use serde::{Deserialize, Serialize};
use wisp::net::{self, Ready, TcpListener, TcpStream};
use wisp::{Event, Mailbox, MonitorRef, Pid, Process, FOREVER};

/// What the room receives.
#[derive(Serialize, Deserialize, Debug)]
enum Room {
    Join { name: String, client: Process<String> },
    Say { from: Pid, text: String },
}

struct Member {
    name: String,
    client: Process<String>,
}

fn room(_: (), mb: Mailbox<Room>) {
    let mut members: HashMap<MonitorRef, Member> = HashMap::new();
    let broadcast = |members: &HashMap<MonitorRef, Member>, line: String| {
        for m in members.values() {
            m.client.send(&line);
        }
    };
    loop {
        match mb.receive_event(FOREVER) {
            Ok(Event::Message(Room::Join { name, client })) => {
                members.insert(client.monitor(), Member { name: name.clone(), client });
                broadcast(&members, format!("* {name} joined\n"));
            }
            Ok(Event::Message(Room::Say { from, text })) => {
                let who = members.values().find(|m| m.client.pid() == from).map_or("?", |m| m.name.as_str());
                let line = format!("{who}: {text}\n");
                broadcast(&members, line);
            }
            Ok(Event::Down { monitor, .. }) => {
                if let Some(m) = members.remove(&monitor) {
                    broadcast(&members, format!("* {} left\n", m.name));
                }
            }
            _ => {}
        }
    }
}

fn client(room: Process<Room>, mut stream: TcpStream, mb: Mailbox<String>) {
    if stream.write_all(b"name? ").is_err() {
        return;
    }
    let mut named = false;
    let mut pending = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match mb.receive_or_readable(&stream, FOREVER) {
            Ok(Ready::Message(line)) => {
                if stream.write_all(line.as_bytes()).is_err() {
                    return;
                }
            }
            Ok(Ready::Readable) => {
                let n = match stream.read(&mut buf) {
                    Ok(0) | Err(_) => return, // the peer left: the room sees us go
                    Ok(n) => n,
                };
                pending.extend_from_slice(&buf[..n]);
                while let Some(i) = pending.iter().position(|&b| b == b'\n') {
                    let raw: Vec<u8> = pending.drain(..=i).collect();
                    let text = String::from_utf8_lossy(&raw).trim_end_matches(|c| c == '\r' || c == '\n').to_string();
                    if text == "/crash" {
                        panic!("chat: a client process crashes on purpose");
                    }
                    if named {
                        room.send(&Room::Say { from: wisp::self_pid(), text });
                    } else {
                        room.send(&Room::Join { name: text, client: mb.process() });
                        named = true;
                    }
                }
                if pending.len() > 4096 {
                    pending.clear(); // an over-long line: dropped
                }
            }
            Err(_) => {} // a message that did not decode: ignored
        }
    }
}

fn main() {
    let port: u16 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(7001);
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("chat: cannot listen");
    let room = wisp::spawn((), room).expect("chat: cannot start the room");
    println!("chat on {}", listener.local_addr().unwrap());
    for stream in listener.incoming().flatten() {
        net::spawn_with_stream(stream, room, client).expect("chat: cannot spawn a client");
    }
}
