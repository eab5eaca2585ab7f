//! Networking over real loopback connections, each test its own wisp
//! process (`cargo test`, #[wisp::test]). Clients and servers are
//! processes of the same run.
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use wisp::net::{self, AnySocket, Ready, TcpListener, TcpStream, UdpSocket};
use wisp::{Event, Mailbox, Pid, RecvError};

const SEC: Duration = Duration::from_secs(5);

fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    assert_eq!(a.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_ne!(a.port(), 0);
    (l, a)
}

fn echo_handler(_: (), mut s: TcpStream, _mb: Mailbox<()>) {
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if &buf[..n] == b"crash\n" {
                    panic!("the handler crashes on purpose");
                }
                s.write_all(&buf[..n].to_ascii_uppercase()).unwrap();
            }
        }
    }
}

#[wisp::test]
fn a_client_process_talks_to_the_server_over_loopback() {
    let (l, addr) = listener();
    let me = Mailbox::<String>::new();
    wisp::spawn((me.process(), addr.port()), |(parent, port), _mb: Mailbox<()>| {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        assert_eq!(s.peer_addr().unwrap().port(), port);
        s.write_all(b"hello\n").unwrap();
        let mut line = String::new();
        BufReader::new(&s).read_line(&mut line).unwrap();
        parent.send(&line);
        s.shutdown(Shutdown::Write).unwrap();
    })
    .unwrap();
    let (mut conn, peer) = l.accept_timeout(SEC).unwrap();
    assert_eq!(conn.peer_addr().unwrap(), peer);
    assert_eq!(conn.local_addr().unwrap(), addr);
    conn.set_nodelay(true).unwrap();
    let mut buf = [0u8; 64];
    let n = conn.read(&mut buf).unwrap();
    conn.write_all(&buf[..n]).unwrap();
    assert_eq!(me.receive_timeout(SEC).unwrap(), "hello\n");
    // After the client's shutdown(Write) the server reads end-of-stream.
    conn.set_read_timeout(Some(SEC)).unwrap();
    assert_eq!(conn.read(&mut buf).unwrap(), 0);
}

#[wisp::test]
fn errors_have_the_usual_kinds() {
    // Refused: a port nobody listens on any more.
    let (l, addr) = listener();
    drop(l);
    let e = TcpStream::connect(addr).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
    let e = TcpStream::connect_timeout(&addr, SEC).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
    // In use.
    let (_l, addr) = listener();
    let e = TcpListener::bind(addr).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AddrInUse, "{e}");
    // Bad addresses and zero timeouts.
    assert_eq!(TcpListener::bind("127.0.0.1").unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(TcpStream::connect_timeout(&addr, Duration::ZERO).unwrap_err().kind(), ErrorKind::InvalidInput);
}

#[wisp::test]
fn timeouts_are_timed_out_errors() {
    let (l, addr) = listener();
    let t = Instant::now();
    let e = l.accept_timeout(Duration::from_millis(50)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    assert!(t.elapsed() >= Duration::from_millis(50));
    assert_eq!(l.accept_timeout(Duration::ZERO).unwrap_err().kind(), ErrorKind::TimedOut);

    let mut c = TcpStream::connect(addr).unwrap();
    let (_s, _) = l.accept().unwrap();
    assert_eq!(c.read_timeout().unwrap(), None);
    assert_eq!(c.set_read_timeout(Some(Duration::ZERO)).unwrap_err().kind(), ErrorKind::InvalidInput);
    c.set_read_timeout(Some(Duration::from_millis(40))).unwrap();
    let t = Instant::now();
    let e = c.read(&mut [0u8; 8]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    assert!(t.elapsed() >= Duration::from_millis(40));
    let e = c.read_timeout_once(&mut [0u8; 8], Duration::from_millis(10)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    // Writes to a peer that never reads fill the buffers, then time out.
    c.set_write_timeout(Some(Duration::from_millis(50))).unwrap();
    let chunk = vec![7u8; 1 << 16];
    let e = loop {
        if let Err(e) = c.write(&chunk) {
            break e;
        }
    };
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
}

#[wisp::test]
fn dropping_a_stream_closes_it() {
    let (l, addr) = listener();
    let c = TcpStream::connect(addr).unwrap();
    let (mut s, _) = l.accept().unwrap();
    drop(c);
    s.set_read_timeout(Some(SEC)).unwrap();
    assert_eq!(s.read(&mut [0u8; 8]).unwrap(), 0);
}

#[wisp::test]
fn spawn_with_stream_moves_the_connection_into_a_handler() {
    let (l, addr) = listener();
    let mut clients = Vec::new();
    for i in 0..20 {
        let c = TcpStream::connect(addr).unwrap();
        let (s, _) = l.accept().unwrap();
        net::spawn_with_stream(s, (), echo_handler).unwrap();
        clients.push((i, c));
    }
    for (i, c) in &mut clients {
        writeln!(c, "client {i}").unwrap();
    }
    for (i, c) in &clients {
        c.set_read_timeout(Some(SEC)).unwrap();
        let mut line = String::new();
        BufReader::new(c).read_line(&mut line).unwrap();
        assert_eq!(line, format!("CLIENT {i}\n"));
    }
    // One handler crashes: its connection closes, the others go on.
    clients[3].1.write_all(b"crash\n").unwrap();
    assert_eq!(clients[3].1.read(&mut [0u8; 8]).unwrap(), 0);
    clients[4].1.write_all(b"still here\n").unwrap();
    let mut buf = [0u8; 32];
    let n = clients[4].1.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"STILL HERE\n");
}

#[wisp::test]
fn sockets_travel_typed_in_messages() {
    let (l, addr) = listener();
    let me = Mailbox::<String>::new();
    // A process that takes a stream from its mailbox, and a listener too.
    let p = wisp::spawn(me.process(), |parent, mb: Mailbox<String>| {
        let l: TcpListener = mb.receive_socket(SEC).unwrap();
        let (mut s, _) = l.accept_timeout(SEC).unwrap();
        let mut other = mb.receive_stream(SEC).unwrap();
        let mut buf = [0u8; 16];
        let n = s.read(&mut buf).unwrap();
        other.write_all(&buf[..n]).unwrap();
        parent.send(&"moved".to_string());
    })
    .unwrap();
    p.pid().send_socket(l).unwrap(); // the listener is gone from here...
    let mut a = TcpStream::connect(addr).unwrap(); // ...but still listening there
    let (b1, b2) = {
        let l2 = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l2.local_addr().unwrap()).unwrap();
        (c, l2.accept().unwrap().0)
    };
    p.send_stream(b2).unwrap();
    a.write_all(b"via two moves").unwrap();
    assert_eq!(me.receive_timeout(SEC).unwrap(), "moved");
    let mut got = Vec::new();
    let mut b1 = b1;
    b1.set_read_timeout(Some(SEC)).unwrap();
    b1.read_to_end(&mut got).unwrap(); // the handler ended: EOF
    assert_eq!(got, b"via two moves");
}

#[wisp::test]
fn a_socket_arrives_as_an_event_and_dies_with_an_unreceived_message() {
    let (l, addr) = listener();
    let me = Mailbox::<()>::new();
    let c = TcpStream::connect(addr).unwrap();
    let (s, _) = l.accept().unwrap();
    me.process().send_stream(s).unwrap();
    match me.receive_event(SEC).unwrap() {
        Event::Socket(AnySocket::Tcp(mut s)) => s.write_all(b"x").unwrap(),
        e => panic!("expected a socket, got {e:?}"),
    }
    let mut c = c;
    c.set_read_timeout(Some(SEC)).unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(c.read(&mut buf).unwrap(), 1);
    assert_eq!(c.read(&mut buf).unwrap(), 0); // dropped at the end of the match arm

    // Sent to a process that ends without receiving it: closed.
    let c = TcpStream::connect(addr).unwrap();
    let (s, _) = l.accept().unwrap();
    let (p, mon) = wisp::spawn_monitor((), |_, _mb: Mailbox<()>| wisp::sleep(Duration::from_millis(20))).unwrap();
    p.send_stream(s).unwrap();
    let _ = me.receive_matching(&[mon.raw()], SEC).unwrap();
    let mut c = c;
    c.set_read_timeout(Some(SEC)).unwrap();
    assert_eq!(c.read(&mut buf).unwrap(), 0);
}

/// The lowest fd not open in this process (where the host puts the next
/// socket it installs).
fn lowest_free_fd() -> i32 {
    let mut stat = [0u8; 24];
    (0..).find(|&fd| unsafe { wisp::sys::fd_fdstat_get(fd, stat.as_mut_ptr()) } != 0).unwrap()
}

fn forge_socket_message((to, fd): (Pid, i32), _mb: Mailbox<()>) {
    to.send_raw(net::TAG_TCP_STREAM, &fd.to_le_bytes()).unwrap();
}

// Any process can send four bytes under a socket tag. Taking them for a
// moved socket would make the receiver own, and close, an fd that is not
// the sender's to give: here its own listener, or a number the next socket
// it opens will get.
#[wisp::test]
fn a_forged_socket_message_is_not_taken_for_a_socket() {
    let (l, addr) = listener();
    let me = Mailbox::<()>::new();
    let own = l.as_raw_fd();
    wisp::spawn((me.process().pid(), own), forge_socket_message).unwrap();
    match me.receive_event(SEC).unwrap() {
        Event::Other(env) => assert_eq!((env.tag, env.bytes), (net::TAG_TCP_STREAM, own.to_le_bytes().to_vec())),
        e => panic!("a forged message was taken for a socket: {e:?}"),
    }
    wisp::spawn((me.process().pid(), own), forge_socket_message).unwrap();
    assert!(matches!(me.receive_stream(SEC), Err(RecvError::Decode { .. })));
    // A free fd named: not taken either, and still free.
    let free = lowest_free_fd();
    wisp::spawn((me.process().pid(), free), forge_socket_message).unwrap();
    assert!(matches!(me.receive_event(SEC).unwrap(), Event::Other(_)));
    assert_eq!(lowest_free_fd(), free);
    // The listener is open and still ours.
    let _c = TcpStream::connect(addr).unwrap();
    l.accept_timeout(SEC).unwrap();
}

// What makes a moved socket recognisable: the host installs it at the
// lowest free fd (a gap below other open fds here).
#[wisp::test]
fn a_moved_socket_lands_in_the_lowest_free_fd() {
    let (l, addr) = listener();
    let me = Mailbox::<()>::new();
    let _c = TcpStream::connect(addr).unwrap();
    let (s, _) = l.accept().unwrap();
    let above = TcpListener::bind("127.0.0.1:0").unwrap();
    let slot = s.as_raw_fd();
    assert!(slot < above.as_raw_fd());
    me.process().send_stream(s).unwrap();
    assert_eq!(lowest_free_fd(), slot);
    match me.receive_event(SEC).unwrap() {
        Event::Socket(AnySocket::Tcp(s)) => assert_eq!(s.as_raw_fd(), slot),
        e => panic!("expected the socket, got {e:?}"),
    }
}

#[wisp::test]
fn receive_or_readable_waits_on_mailbox_and_socket() {
    let (l, addr) = listener();
    let mb = Mailbox::<String>::new();
    let mut c = TcpStream::connect(addr).unwrap();
    let (mut s, _) = l.accept().unwrap();
    // Nothing yet: a timeout.
    assert!(matches!(mb.receive_or_readable(&s, Duration::from_millis(20)), Err(wisp::RecvError::Timeout)));
    // A message first.
    wisp::send_after(mb.process(), &"tick".to_string(), Duration::from_millis(10)).unwrap();
    match mb.receive_or_readable(&s, SEC).unwrap() {
        Ready::Message(m) => assert_eq!(m, "tick"),
        Ready::Readable => panic!("nothing was written"),
    }
    // Then data.
    c.write_all(b"data").unwrap();
    assert!(matches!(mb.receive_or_readable(&s, SEC).unwrap(), Ready::Readable));
    let mut buf = [0u8; 8];
    assert_eq!(s.read(&mut buf).unwrap(), 4);
    // The peer closing makes it readable too (a read returns 0).
    drop(c);
    assert!(matches!(mb.receive_or_readable(&s, SEC).unwrap(), Ready::Readable));
    assert_eq!(s.read(&mut buf).unwrap(), 0);
}

#[wisp::test]
fn udp_send_to_recv_from_and_connect() {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (aa, ba) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    assert_ne!(aa.port(), 0);
    assert_eq!(a.send_to(b"ping", ba).unwrap(), 4);
    let mut buf = [0u8; 16];
    b.set_read_timeout(Some(SEC)).unwrap();
    let (n, from) = b.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"ping"[..], aa));
    // Connected: send and recv without addresses.
    b.connect(aa).unwrap();
    assert_eq!(b.peer_addr().unwrap(), aa);
    b.send(b"pong").unwrap();
    a.set_read_timeout(Some(SEC)).unwrap();
    assert_eq!(a.recv(&mut buf).unwrap(), 4);
    assert_eq!(&buf[..4], b"pong");
    // A receive timeout.
    a.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    assert_eq!(a.recv(&mut buf).unwrap_err().kind(), ErrorKind::TimedOut);
}

#[wisp::test]
fn dns_lookup() {
    let ips = net::lookup("localhost").unwrap();
    assert!(ips.iter().any(|ip| ip.is_loopback()), "{ips:?}");
    assert_eq!(net::lookup("10.1.2.3").unwrap(), vec![IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3))]);
    let e = net::lookup("no-such-host.invalid").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    // Host names work wherever addresses do.
    let (l, addr) = listener();
    let _c = TcpStream::connect(format!("localhost:{}", addr.port()))
        .or_else(|_| TcpStream::connect(("127.0.0.1", addr.port())))
        .unwrap();
    l.accept_timeout(SEC).unwrap();
}
