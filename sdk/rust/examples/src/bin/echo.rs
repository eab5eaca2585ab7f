//! echo — a supervised TCP echo server, one process per connection (the
//! seed's echo server, in Rust).
//!
//! An acceptor process, supervised (one_for_one), listens and accepts; each
//! connection moves into a fresh handler process (`spawn_with_stream`) that
//! echoes in plain blocking style. A handler that reads "crash" panics: its
//! connection closes, every other keeps working. A handler that reads
//! "restart" kills the acceptor: the supervisor starts a new one, which
//! listens again (and says so), while open connections stay up.
//!
//! Run: `cargo run --bin echo [PORT]` in sdk/rust (default 7000; 0 picks a
//! free port), then `nc 127.0.0.1 7000`. The first line of output says
//! where it listens. (Run under `wisp run`, it needs
//! `--allow-listen 127.0.0.1:*`.)
use std::io::{Read, Write};
use std::time::Duration;

use wisp::net::{self, TcpListener, TcpStream};
use wisp::{ChildSpec, Mailbox, Strategy, Supervisor};

fn handler(_: (), mut stream: TcpStream, _mb: Mailbox<()>) {
    let mut buf = [0u8; 4096];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return, // the client left
            Ok(n) => n,
        };
        if buf[..n].starts_with(b"crash") {
            panic!("echo: a handler crashes on purpose");
        }
        if buf[..n].starts_with(b"restart") {
            if let Some(acceptor) = wisp::whereis::<()>("acceptor") {
                acceptor.kill();
            }
        }
        if stream.write_all(&buf[..n]).is_err() {
            return;
        }
    }
}

fn acceptor(port: u16, mb: Mailbox<()>) {
    wisp::register("acceptor", mb.process()).expect("echo: the name is taken");
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("echo: cannot listen");
    println!("listening on {}", listener.local_addr().unwrap());
    for stream in listener.incoming() {
        match stream {
            Ok(s) => {
                net::spawn_with_stream(s, (), handler).expect("echo: cannot spawn a handler");
            }
            Err(e) => eprintln!("echo: accept: {e}"),
        }
    }
}

fn main() {
    let port: u16 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(7000);
    let _sup = Supervisor::new(Strategy::OneForOne)
        .intensity(5, Duration::from_secs(10))
        .child(ChildSpec::worker("acceptor", acceptor, port))
        .start_link()
        .expect("echo: cannot start the supervisor");
    // The supervisor is linked to this process: it runs as long as we do.
    loop {
        wisp::sleep(Duration::from_secs(3600));
    }
}
