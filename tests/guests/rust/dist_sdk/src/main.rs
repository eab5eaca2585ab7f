//! The wisp crate's distribution API (wisp::node, pids in messages and
//! spawn arguments across nodes), driven by tests/e2e/test_dist_sdk.py,
//! which starts two or three `wisp run --sname` nodes and an erl node.
//! Each command prints what it saw, one fact a line:
//!
//!   serve            register "svc", print "ready NODE", answer Req's
//!                    (messages and calls) until Stop
//!   client A C       talk to svc on A (by name, then by the pid that came
//!                    back inside a reply; a call), and relay through A to
//!                    svc on C, which answers this process directly
//!   spawner A        spawn_link_on / spawn_monitor_on / spawn_on A: where
//!                    the children run, and the reasons they end with
//!   errors A         the errors: unknown node, a node refusing remote
//!                    spawns (A), bad names, a child denied nodes
//!   nonode           the same calls in a runtime that is no node
//!   pidform          how a pid is encoded here (u64 or portable)
//!   watch A          monitor_node(A), then the Down when A is lost
//!   beam E           terms and typed messages to the registered `echo`
//!                    of the BEAM node E, and its replies
//!   local            local processes passing pids, calls, a supervisor:
//!                    what every program does, in whichever form pids take
//!   counter, mclient, mkill, mpoison
//!                    a server that migrates between nodes (migrate.rs)
use std::time::Duration;

use serde::{Deserialize, Serialize};
mod migrate;

use wisp::{node, Caps, ChildSpec, Event, Mailbox, Pid, Process, Strategy, Supervisor, Term};

const WAIT: Duration = Duration::from_secs(20);

#[derive(Serialize, Deserialize, Debug)]
enum Req {
    /// Answer `reply_to` with the text in capitals.
    Echo { text: String, reply_to: Process<Reply> },
    /// Send `via` an Echo of `text` for `reply_to`.
    Relay { via: Process<Req>, text: String, reply_to: Process<Reply> },
    Stop,
}

#[derive(Serialize, Deserialize, Debug)]
struct Reply {
    text: String,
    node: String,
    server: Process<Req>,
}

fn here() -> String {
    node::name().unwrap_or_else(|| "nonode".into())
}

fn serve() {
    let mb = Mailbox::<Req>::new();
    let me = mb.process();
    wisp::register("svc", me).expect("register svc");
    println!("ready {}", here());
    loop {
        match mb.receive_event(wisp::FOREVER) {
            Ok(Event::Message(Req::Echo { text, reply_to })) => {
                reply_to.send(&Reply { text: text.to_uppercase(), node: here(), server: me });
            }
            Ok(Event::Message(Req::Relay { via, text, reply_to })) => via.send(&Req::Echo { text, reply_to }),
            Ok(Event::Call(Req::Echo { text, .. }, r)) => {
                let _ = r.reply(&Reply { text: text.to_uppercase(), node: here(), server: me });
            }
            Ok(Event::Message(Req::Stop)) => return,
            other => println!("serve: unexpected {other:?}"),
        }
    }
}

/// The next typed reply, with the pid that sent it.
fn reply(mb: &Mailbox<Reply>) -> (Reply, Pid) {
    let env = mb.receive_matching(&[wisp::TAG_MSG], WAIT).expect("no reply");
    (env.decode().expect("a reply that does not decode"), env.from)
}

fn client(a: &str, c: &str) {
    let mb = Mailbox::<Reply>::new();
    let me = mb.process();
    println!("connect {:?}", node::connect(a));
    println!("connected {}", node::nodes().iter().any(|n| n == a));
    node::send_named(a, "svc", &Req::Echo { text: "hi".into(), reply_to: me }).unwrap();
    let (r, from) = reply(&mb);
    println!("reply {} from {}", r.text, r.node);
    // The pid inside the reply names the process that sent it.
    println!("server pid is the sender {}", r.server.pid() == from);
    println!("server lives on {}", node::of(r.server.pid()).unwrap_or_default());
    let a_svc = r.server;
    a_svc.send(&Req::Echo { text: "by pid".into(), reply_to: me });
    println!("by pid {}", reply(&mb).0.text);
    let called: Reply = a_svc.call(&Req::Echo { text: "called".into(), reply_to: me }, WAIT).expect("call");
    println!("call {} from {}", called.text, called.node);
    // A third node: C's server, learnt from C, handed to A with our own
    // pid; A sends C an Echo for us, and C answers us directly.
    node::send_named(c, "svc", &Req::Echo { text: "c".into(), reply_to: me }).unwrap();
    let (rc, _) = reply(&mb);
    a_svc.send(&Req::Relay { via: rc.server, text: "relayed".into(), reply_to: me });
    let (relayed, from) = reply(&mb);
    println!("relay {} from {} sender is C's svc {}", relayed.text, relayed.node, from == rc.server.pid());
}

#[derive(Serialize, Deserialize, Debug)]
struct Hello {
    node: String,
    me: Pid,
}

/// Say where it runs to `parent`, wait for a word, then panic.
fn child_panics(parent: Process<Hello>, mb: Mailbox<()>) {
    parent.send(&Hello { node: here(), me: wisp::self_pid() });
    let _ = mb.receive();
    panic!("child gives up on purpose");
}

fn child_exits(code: i32, _mb: Mailbox<()>) {
    wisp::exit(code)
}

fn child_waits(_: (), mb: Mailbox<()>) {
    let _ = mb.receive();
}

fn spawner(a: &str) {
    wisp::trap_exits(true);
    let mb = Mailbox::<Hello>::new();
    let me = mb.process();
    let child = node::spawn_link_on(a, me, child_panics).expect("spawn_link_on");
    let hello = mb.receive_timeout(WAIT).expect("no hello");
    println!("linked child on {} knows itself {}", hello.node, hello.me == child.pid());
    println!("child's node seen from here {}", node::of(child.pid()).unwrap_or_default());
    child.pid().typed::<()>().send(&());
    loop {
        match mb.receive_event(WAIT).expect("no exit signal") {
            Event::Exit { from, reason } if from == child.pid() => {
                println!("exit {}", reason);
                break;
            }
            other => println!("spawner: unexpected {other:?}"),
        }
    }
    let (p, mon) = node::spawn_monitor_on(a, 7, child_exits).expect("spawn_monitor_on");
    down(&mb, p.pid(), mon);
    let (p, mon) = node::spawn_monitor_on(a, (), child_waits).expect("spawn_monitor_on");
    p.kill();
    down(&mb, p.pid(), mon);
    // spawn_link_on!: a closure with copies of variables, there.
    let word = String::from("captured");
    let to = mb.process();
    let c = wisp::spawn_link_on!(a, |word, to| to.send(&Hello { node: format!("{word} on {}", here()), me: wisp::self_pid() }))
        .expect("spawn_link_on!");
    let hello = mb.receive_timeout(WAIT).expect("no hello from the closure");
    println!("closure {} knows itself {}", hello.node, hello.me == c.pid());
    loop {
        match mb.receive_event(WAIT).expect("no exit signal") {
            Event::Exit { from, reason } if from == c.pid() => break println!("closure exit {reason}"),
            other => println!("spawner: unexpected {other:?}"),
        }
    }
    // Unlinked, unmonitored: its end is nobody's business here.
    let p = node::spawn_on(a, (), child_waits).expect("spawn_on");
    println!("plain child alive {}", p.is_alive());
    let mon = p.monitor();
    p.send(&());
    down(&mb, p.pid(), mon);
}

fn down(mb: &Mailbox<Hello>, pid: Pid, mon: wisp::MonitorRef) {
    loop {
        match mb.receive_event(WAIT).expect("no down") {
            Event::Down { monitor, pid: who, reason } if monitor == mon && who == pid => {
                return println!("down {}", reason);
            }
            other => println!("spawner: unexpected {other:?}"),
        }
    }
}

fn errors(a: &str) {
    let host = here().split('@').nth(1).unwrap_or("localhost").to_string();
    let nobody = format!("nobody@{host}");
    println!("unknown node: {:?}", node::spawn_on(&nobody, (), child_waits).err());
    println!("connect unknown: {:?}", node::connect(&nobody));
    println!("refusing node: {:?}", node::spawn_on(a, (), child_waits).err());
    println!("bad node name: {:?}", node::connect("no-at-sign"));
    println!("bad registered name: {:?}", node::send_named(a, &"x".repeat(300), &1u8));
    let caps = Caps::inherit().unwrap().deny_nodes().unwrap();
    let mb = Mailbox::<String>::new();
    let me = mb.process();
    let a2 = a.to_string();
    wisp::spawn!(&caps, |me, a2| {
        me.send(&format!("{:?} {:?} {:?}", node::connect(&a2), node::send_named(&a2, "svc", &1u8),
                         node::spawn_on(&a2, (), child_waits).err()));
    })
    .unwrap();
    println!("denied child: {}", mb.receive_timeout(WAIT).unwrap());
}

fn nonode() {
    println!("name {:?}", node::name());
    println!("nodes {:?}", node::nodes());
    println!("connect {:?}", node::connect("x@y"));
    println!("send_named {:?}", node::send_named("x@y", "svc", &1u8));
    println!("spawn_on {:?}", node::spawn_on("x@y", (), child_waits).err());
    let n = 1u8;
    println!("spawn_on! {:?}", wisp::spawn_on!("x@y", |n| drop(n)).err());
    println!("of self {:?}", node::of(wisp::self_pid()));
}

fn pidform() {
    let me = wisp::self_pid();
    let bytes = wisp::codec::encode(&me).unwrap();
    let as_u64 = wisp::codec::encode(&me.raw()).unwrap();
    println!("pid as u64 {}", bytes == as_u64);
    // The portable form: bincode's length, then NEW_PID_EXT (88).
    println!("portable {}", bytes.len() > 1 && bytes[1] == 88);
    if wisp::node::name().is_some() {
        // The crate writes local pids itself: byte for byte the host's form.
        let mut host = [0u8; 300];
        let n = unsafe { wisp::sys::node_pid_encode(me.raw(), host.as_mut_ptr(), 300) } as usize;
        println!("as the host writes it {}", bytes[1..] == host[..n] && bytes[0] as usize == n);
    }
    let back: Pid = wisp::codec::decode(&bytes).unwrap();
    println!("round trip {}", back == me);
    let zero: Pid = wisp::codec::decode(&wisp::codec::encode(&Pid::from_raw(0)).unwrap()).unwrap();
    println!("zero {}", zero.raw());
    // The self-describing codecs carry it too (JSON: bytes as numbers).
    use wisp::codec::{Codec, Json, MessagePack};
    let j = <Json as Codec<Pid>>::encode(&me).unwrap().into_owned();
    println!("json round trip {}", <Json as Codec<Pid>>::decode(j).ok() == Some(me));
    let m = <MessagePack as Codec<Pid>>::encode(&me).unwrap().into_owned();
    println!("msgpack round trip {}", <MessagePack as Codec<Pid>>::decode(m).ok() == Some(me));
    // Bytes that are not a pid: a decode error, not a crash.
    let junk = wisp::codec::encode(&vec![88u8, 1, 2, 3]).unwrap();
    println!("junk {}", wisp::codec::decode::<Pid>(&junk).is_err());
}

/// The next Down of `watch`: (reason, the node its pid stands for).
fn node_down(mb: &Mailbox<()>, watch: wisp::MonitorRef) -> (wisp::ExitReason, String) {
    loop {
        match mb.receive_event(wisp::FOREVER) {
            Ok(Event::Down { monitor, pid, reason }) if monitor == watch => {
                return (reason, node::of(pid).unwrap_or_default())
            }
            other => println!("watch: unexpected {other:?}"),
        }
    }
}

fn watch(a: &str) {
    let mb = Mailbox::<()>::new();
    let host = here().split('@').nth(1).unwrap_or("localhost").to_string();
    let nobody = format!("nobody@{host}");
    let (reason, of) = node_down(&mb, node::monitor_node(&nobody).expect("monitor_node"));
    println!("unreachable node: down {reason} from {of}");
    println!("bad name: {:?}", node::monitor_node("no-at-sign"));
    let quiet = node::monitor_node(a).expect("monitor_node");
    println!("demonitor {}", quiet.demonitor());
    let m = node::monitor_node(a).expect("monitor_node");
    println!("watching {a}");
    let (reason, of) = node_down(&mb, m);
    println!("nodedown {reason} from {of}");
    println!("no down of the demonitored watch {}", mb.receive_matching(&[quiet.raw()], Duration::ZERO).is_err());
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Note {
    text: String,
    from: Pid,
}

fn beam(e: &str) {
    let mb = Mailbox::<Note>::new();
    let me = wisp::self_pid();
    // {ping, self(), <<"hi">>}: the BEAM process answers {pong, <<"hi">>, self()}.
    let ping = Term::tuple(vec![Term::atom("ping"), Term::Pid(me), Term::from("hi")]);
    node::send_named_term(e, "echo", &ping).unwrap();
    let env = mb.receive_matching(&[wisp::TAG_TERM], WAIT).expect("no pong");
    let pong = Term::decode(&env.bytes).unwrap();
    let erl = match pong.as_tuple() {
        Some([tag, bin, pid]) if tag.is_atom("pong") => {
            println!("pong {}", String::from_utf8_lossy(bin.as_binary().unwrap_or_default()));
            pid.as_pid().expect("a pid")
        }
        _ => panic!("unexpected {pong:?}"),
    };
    println!("erlang pid is the sender {}", erl == env.from);
    println!("erlang pid lives on {}", node::of(erl).unwrap_or_default());
    // A typed message, by name: Erlang gets {1, Binary} and sends it back
    // to the pid of the ping, as it came; it arrives as a typed message,
    // the pid inside it unchanged.
    node::send_named(e, "echo", &Note { text: "by name".into(), from: me }).unwrap();
    let n = mb.receive_timeout(WAIT).expect("no note back");
    println!("note back {:?} from me {}", n.text, n.from == me);
    // By pid: a Process handle on the Erlang process.
    erl.typed::<Note>().send(&Note { text: "by pid".into(), from: me });
    let n = mb.receive_timeout(WAIT).expect("no note back");
    println!("note back {:?} from me {}", n.text, n.from == me);
    // The BEAM node stops after its echo does: watched, its end is a Down.
    let watch = node::monitor_node(e).unwrap();
    node::send_named_term(e, "echo", &Term::atom("stop")).unwrap();
    let (reason, of) = node_down(&mb.retype::<()>(), watch);
    println!("erl node down {reason} from {of}");
}

/// Local processes, as any program has them: pids inside messages and
/// spawn arguments, a call, a supervisor's children. The same lines
/// whether pids travel as u64s or in the portable form.
fn local() {
    let mb = Mailbox::<Reply>::new();
    let me = mb.process();
    let svc = wisp::spawn((), |_, smb: Mailbox<Req>| {
        let me = smb.process();
        while let Ok(ev) = smb.receive_event(wisp::FOREVER) {
            match ev {
                Event::Message(Req::Echo { text, reply_to }) => {
                    reply_to.send(&Reply { text: text.to_uppercase(), node: here(), server: me })
                }
                Event::Call(Req::Echo { text, .. }, r) => {
                    let _ = r.reply(&Reply { text, node: here(), server: me });
                }
                _ => return,
            }
        }
    })
    .unwrap();
    svc.send(&Req::Echo { text: "local".into(), reply_to: me });
    let (r, from) = reply(&mb);
    println!("local reply {} server is sender {}", r.text, r.server.pid() == from && from == svc.pid());
    let called: Reply = svc.call(&Req::Echo { text: "call".into(), reply_to: me }, WAIT).unwrap();
    println!("local call {}", called.text);
    // A pid in a spawn argument.
    wisp::spawn!(|me| me.send(&Reply { text: "spawned".into(), node: here(), server: me.pid().typed() }))
        .unwrap();
    println!("spawn arg {}", reply(&mb).0.text);
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(ChildSpec::worker("w", child_waits, ()))
        .start_link()
        .unwrap();
    let w = sup.child("w").expect("a child");
    w.kill();
    let mut again = None;
    for _ in 0..100 {
        match sup.child("w") {
            Some(p) if p != w => {
                again = Some(p);
                break;
            }
            _ => wisp::sleep(Duration::from_millis(20)),
        }
    }
    println!("supervisor restarted its child {}", again.is_some_and(|p| p.is_alive()));
    svc.send(&Req::Stop);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    match arg(1) {
        "serve" => serve(),
        "client" => client(arg(2), arg(3)),
        "spawner" => spawner(arg(2)),
        "errors" => errors(arg(2)),
        "nonode" => nonode(),
        "pidform" => pidform(),
        "watch" => watch(arg(2)),
        "beam" => beam(arg(2)),
        "local" => local(),
        "counter" => migrate::counter(arg(2) == "trap"),
        "mclient" => migrate::mclient(arg(2), arg(3), arg(4), arg(5).parse().expect("a number of calls")),
        "mkill" => migrate::mkill(arg(2), arg(3), arg(4)),
        "mpoison" => migrate::mpoison(arg(2), arg(3)),
        _ => {
            eprintln!("usage: dist_sdk serve | client A C | spawner A | errors A | nonode | pidform | watch A | beam E | local \
                       | counter [trap] | mclient A B N CALLS | mkill A B D | mpoison A B");
            std::process::exit(2);
        }
    }
}
