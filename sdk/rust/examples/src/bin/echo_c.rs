//! echo_c — a TCP line server whose handler calls C code linked into the
//! module (csrc/parse.c, built by build.rs): it shouts each line back. The
//! C code has a bug: a line starting with "segv" makes it write outside
//! the module's memory. That traps in C, in one connection's process: its
//! connection closes, the others and the server go on.
//!
//! Run: `cargo run --bin echo_c -- 7002` (the runner of sdk/rust allows
//! loopback), then `nc 127.0.0.1 7002`.
use std::io::{BufRead, BufReader, Write};

use wisp::net::{self, TcpListener, TcpStream};
use wisp::Mailbox;

extern "C" {
    /// Upper-case the line in place; the number of letters (csrc/parse.c).
    fn parse_shout(line: *mut u8, len: i32) -> i32;
}

fn handler(_: (), stream: TcpStream, _mb: Mailbox<()>) {
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    while matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
        let mut bytes = std::mem::take(&mut line).into_bytes();
        // SAFETY: the pointer and length are those of a live Vec<u8>.
        let letters = unsafe { parse_shout(bytes.as_mut_ptr(), bytes.len() as i32) };
        let mut out = &stream;
        if out.write_all(&bytes).and_then(|_| writeln!(out, "({letters} letters)")).is_err() {
            return;
        }
    }
}

fn main() {
    let port: u16 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(7002);
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("cannot listen");
    println!("shouting on {}", listener.local_addr().unwrap());
    for stream in listener.incoming().flatten() {
        net::spawn_with_stream(stream, (), handler).expect("cannot spawn");
    }
}
