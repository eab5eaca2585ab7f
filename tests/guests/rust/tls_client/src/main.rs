//! tls_client — wisp::tls::TlsStream against a server of the test's
//! (tests/e2e/test_tls.py).
//!
//!   tls_client PORT NAME CAFILE   connect to 127.0.0.1:PORT, verify NAME
//!       against CAFILE, offer ALPN h2 and echo/1, send a line and print
//!       what comes back, then read to the end of the stream and print
//!       how it ended ("end: ok", or "end: error: KIND: TEXT"); or
//!       "error: KIND: TEXT"
//!   tls_client PORT - CAFILE      the same without the server's name
use std::io::{BufRead, BufReader, Read, Write};
use std::time::Duration;

use wisp::tls::{ClientConfig, TlsStream};

#[wisp::main]
fn main(_mb: wisp::Mailbox<()>) {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = args[1].parse().unwrap();
    let mut config = ClientConfig::new();
    if args[2] != "-" {
        config = config.server_name(&args[2]);
    }
    let config = config
        .ca_file(&args[3])
        .alpn(&["h2", "echo/1"])
        .handshake_timeout(Duration::from_secs(20));
    match TlsStream::connect_with(("127.0.0.1", port), &config) {
        Err(e) => println!("error: {:?}: {}", e.kind(), e),
        Ok(mut s) => {
            let alpn = s.alpn_protocol().map(|p| String::from_utf8_lossy(&p).into_owned());
            println!("connected, alpn {alpn:?}");
            s.write_all(b"hello from rust\n").unwrap();
            let mut line = String::new();
            let mut r = BufReader::new(&mut s);
            r.read_line(&mut line).unwrap();
            print!("echo: {line}");
            match r.read_to_end(&mut Vec::new()) {
                Ok(_) => println!("end: ok"),
                Err(e) => println!("end: error: {:?}: {}", e.kind(), e),
            }
        }
    }
}
