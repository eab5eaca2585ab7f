//! Servers that hold a TCP stream (`Context::set_stream`,
//! `Server::start_with_stream`): the loop serves the stream and the
//! mailbox in turn. Each test its own wisp process, over real loopback.
use std::io::{Read, Write};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wisp::net::{AnySocket, TcpListener, TcpStream};
use wisp::server::{Context, Handle, Handlers, Server, StartError};
use wisp::{Event, ExitReason, Mailbox};

/// A connected pair: (our end, the end a server will hold).
fn pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (server, _) = l.accept().unwrap();
    (client, server)
}

fn read_some(s: &mut TcpStream) -> String {
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Answers each line in capitals; counts them.
struct Upper {
    lines: u64,
}

#[derive(Serialize, Deserialize)]
struct Lines;

impl Server for Upper {
    type Arg = bool; // refuse to start
    fn init(refuse: bool, cx: &mut Context<Self>) -> Result<Self, String> {
        if refuse {
            return Err("no".into());
        }
        assert!(cx.stream().is_some(), "init sees the stream");
        Ok(Upper { lines: 0 })
    }
    fn handlers(h: &mut Handlers<Self>) {
        h.handle::<Lines>();
    }
    fn handle_readable(&mut self, cx: &mut Context<Self>) {
        let mut buf = [0u8; 256];
        let s = cx.stream().unwrap();
        match s.read(&mut buf) {
            Ok(0) | Err(_) => cx.stop(ExitReason::Normal),
            Ok(n) => {
                self.lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
                s.write_all(&buf[..n].to_ascii_uppercase()).unwrap();
            }
        }
    }
}

impl Handle<Lines> for Upper {
    type Reply = u64;
    fn handle(&mut self, _: Lines, _: &mut Context<Self>) -> u64 {
        self.lines
    }
}

#[wisp::test]
fn a_server_per_connection_serves_its_stream_and_its_mailbox() {
    let (mut client, end) = pair();
    let s = Upper::start_with_stream(false, end).unwrap();
    client.write_all(b"hi\n").unwrap();
    assert_eq!(read_some(&mut client), "HI\n");
    assert_eq!(s.call(&Lines).unwrap(), 1);
    client.write_all(b"a\nb\n").unwrap();
    let mut got = String::new();
    while got.len() < 4 {
        got += &read_some(&mut client);
    }
    assert_eq!(got, "A\nB\n");
    assert_eq!(s.call(&Lines).unwrap(), 3);
    // The client leaves: the server reads 0 and stops.
    let mon = s.monitor();
    drop(client);
    let mb = Mailbox::<()>::new();
    match mb.receive_event(Duration::from_secs(10)).unwrap() {
        Event::Down { monitor, reason, .. } => {
            assert_eq!(monitor, mon);
            assert_eq!(reason, ExitReason::Normal);
        }
        e => panic!("expected the server's end, got {e:?}"),
    }
}

#[wisp::test]
fn a_server_that_does_not_start_closes_the_stream_it_got() {
    let (mut client, end) = pair();
    assert_eq!(Upper::start_with_stream(true, end).unwrap_err(), StartError::Init("no".into()));
    assert_eq!(client.read(&mut [0u8; 8]).unwrap(), 0);
}

/// Holds a stream it got by message, and has no handle_readable.
struct Deaf;

#[derive(Serialize, Deserialize)]
struct Ping;

impl Server for Deaf {
    type Arg = ();
    fn init(_: (), _: &mut Context<Self>) -> Result<Self, String> {
        Ok(Deaf)
    }
    fn handlers(h: &mut Handlers<Self>) {
        h.handle::<Ping>();
    }
    fn handle_info(&mut self, event: Event<()>, cx: &mut Context<Self>) {
        if let Event::Socket(AnySocket::Tcp(s)) = event {
            assert!(cx.set_stream(s).is_none());
        }
    }
}

impl Handle<Ping> for Deaf {
    type Reply = bool; // whether it holds a stream
    fn handle(&mut self, _: Ping, cx: &mut Context<Self>) -> bool {
        cx.stream().is_some()
    }
}

#[wisp::test]
fn a_stream_nobody_reads_is_closed_and_the_server_goes_on() {
    let (mut client, end) = pair();
    let s = Deaf::start(()).unwrap();
    assert!(!s.call(&Ping).unwrap());
    s.pid().send_socket(end).unwrap();
    assert!(s.call(&Ping).unwrap()); // (the socket came before the call)
    client.write_all(b"anyone?\n").unwrap();
    // The default handle_readable drops the stream: the client sees its
    // end (a reset: it closed with our line unread).
    match client.read(&mut [0u8; 8]) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        r => panic!("expected the stream's end, got {r:?}"),
    }
    assert!(!s.call(&Ping).unwrap());
}
