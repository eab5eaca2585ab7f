//! A server that moves between nodes (wisp::server::Handover), driven by
//! tests/e2e/test_dist_sdk.py:
//!
//!   counter [trap]   start the Counter server (trapping exits with
//!                    "trap"), register it as "counter", print "ready
//!                    NODE"; when it ends (wherever it runs by then) print
//!                    "counter ended REASON" and exit
//!   mclient A B N H  on the counter of node A: failed moves (to N, which
//!                    refuses remote spawns; to no node; to a bad name; to
//!                    B while a name of it is taken there; with save
//!                    refusing), then H calls by the old ServerRef while
//!                    another process moves it to B halfway, casts, its
//!                    names on both nodes, and a stop with exit code 7
//!                    (seen by a link and a monitor of the old pid)
//!   mkill A B D      move A's trapping counter to B, then on to D, then
//!                    kill its first pid: the incarnation on D ends too
//!                    (terminate runs)
//!   mpoison A B      a move whose restore fails: the caller hears why,
//!                    the server ends
//!
//! The Counter's state is its count, the failed moves it was told of, a
//! process to report its end to and two switches; the node it runs on is
//! not saved but found again by restore (a part that does not travel).
use std::borrow::Borrow;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wisp::server::{
    Context, Deferred, Handle, HandleDeferred, Handlers, Handover, MigrateError, MigrateResult, Server,
};
use wisp::{node, Event, ExitReason, Mailbox, Pid, Process, ServerRef};

/// Long enough for the first move, which ships the module to the node and
/// compiles it there, on a loaded machine.
const SLOW: Duration = Duration::from_secs(120);
/// The tag of a ping sent by name: its payload is a `Process<ToClient>`.
const TAG_PING: u64 = wisp::TAG_USER + 1;

struct Counter {
    n: u64,
    failed: Vec<String>,
    report: Option<Process<ToClient>>,
    refuse_save: bool,
    poison: bool,
    /// Where it runs: not saved (restore finds it again).
    here: String,
}

/// What travels: everything but `here`.
#[derive(Serialize, Deserialize)]
struct Image {
    n: u64,
    failed: Vec<String>,
    report: Option<Process<ToClient>>,
    refuse_save: bool,
    poison: bool,
}

#[derive(Serialize, Deserialize, Debug)]
enum Ask {
    Incr,
    Get,
    Register(String),
    Unregister(String),
    RefuseSave(bool),
    Poison,
    Report(Process<ToClient>),
    Stop(i32),
}

/// A cast.
#[derive(Serialize, Deserialize, Debug)]
struct Add(u64);

/// Move to this node, answering where it went (deferred).
#[derive(Serialize, Deserialize, Debug)]
struct MoveTo(String);

#[derive(Serialize, Deserialize, Debug)]
struct Answer {
    n: u64,
    node: String,
    failed: Vec<String>,
    trapping: bool,
    /// "counter" names this process where it runs.
    named: bool,
    /// Context::former_pids: its pids before it moved.
    former: Vec<Pid>,
}

#[derive(Serialize, Deserialize, Debug)]
enum ToClient {
    Pong { node: String, server: ServerRef<Counter> },
    Moved(MigrateResult),
    Ended(String),
}

fn here() -> String {
    node::name().unwrap_or_else(|| "nonode".into())
}

fn trapping() -> bool {
    let on = wisp::trap_exits(true);
    wisp::trap_exits(on);
    on
}

impl Server for Counter {
    type Arg = bool;

    fn init(trap: bool, cx: &mut Context<Self>) -> Result<Self, String> {
        cx.trap_exits(trap);
        Ok(Counter { n: 0, failed: Vec::new(), report: None, refuse_save: false, poison: false, here: here() })
    }

    fn handlers(h: &mut Handlers<Self>) {
        h.handle::<Ask>().handle::<Add>().deferred::<MoveTo>();
    }

    /// A ping by name: answer with where this is and a handle on it.
    fn handle_info(&mut self, event: Event<()>, cx: &mut Context<Self>) {
        match event {
            Event::Other(env) if env.tag == TAG_PING => {
                if let Ok(to) = env.decode::<Process<ToClient>>() {
                    to.send(&ToClient::Pong { node: self.here.clone(), server: cx.this() });
                }
            }
            other => println!("counter: unexpected {other:?}"),
        }
    }

    fn terminate(&mut self, reason: &ExitReason) {
        if let Some(r) = self.report {
            r.send(&ToClient::Ended(format!("terminate {reason} on {}", self.here)));
        }
    }
}

impl Handle<Ask> for Counter {
    type Reply = Answer;
    fn handle(&mut self, ask: Ask, cx: &mut Context<Self>) -> Answer {
        match ask {
            Ask::Incr => self.n += 1,
            Ask::Get => {}
            Ask::Register(name) => wisp::register(&name, wisp::self_pid().typed::<()>()).expect("register"),
            Ask::Unregister(name) => wisp::unregister(&name).expect("unregister"),
            Ask::RefuseSave(on) => self.refuse_save = on,
            Ask::Poison => self.poison = true,
            Ask::Report(to) => self.report = Some(to),
            Ask::Stop(code) => cx.stop(ExitReason::Code(code)),
        }
        Answer {
            n: self.n,
            node: self.here.clone(),
            failed: self.failed.clone(),
            trapping: trapping(),
            named: wisp::registry::whereis_pid("counter") == Some(wisp::self_pid()),
            former: cx.former_pids().to_vec(),
        }
    }
}

impl Handle<Add> for Counter {
    type Reply = ();
    fn handle(&mut self, Add(k): Add, _: &mut Context<Self>) {
        self.n += k;
    }
}

impl HandleDeferred<MoveTo> for Counter {
    type Reply = MigrateResult;
    fn handle_deferred(&mut self, MoveTo(node): MoveTo, reply: Deferred<MigrateResult>, cx: &mut Context<Self>) {
        cx.migrate_to_and_reply(&node, reply);
    }
}

impl Handover for Counter {
    type Saved = Image;

    fn save(&self) -> Result<impl Borrow<Image>, String> {
        if self.refuse_save {
            return Err("not now".into());
        }
        Ok(Image {
            n: self.n,
            failed: self.failed.clone(),
            report: self.report,
            refuse_save: self.refuse_save,
            poison: self.poison,
        })
    }

    fn restore(i: Image, _: &mut Context<Self>) -> Result<Self, String> {
        if i.poison {
            return Err(format!("poisoned at {}", i.n));
        }
        Ok(Counter { n: i.n, failed: i.failed, report: i.report, refuse_save: i.refuse_save, poison: false, here: here() })
    }

    fn migrate_failed(&mut self, node: &str, error: &MigrateError, _: &mut Context<Self>) {
        self.failed.push(format!("{node}: {error:?}"));
    }
}

/// `counter [trap]`: start it, then wait for its end.
pub fn counter(trap: bool) {
    let mb = Mailbox::<()>::new();
    let c = Counter::start(trap).expect("start the counter");
    wisp::register("counter", c.pid().typed::<()>()).expect("register counter");
    let mon = c.monitor();
    println!("ready {}", here());
    loop {
        match mb.receive_event(wisp::FOREVER) {
            Ok(Event::Down { monitor, reason, .. }) if monitor == mon => {
                return println!("counter ended {reason}");
            }
            other => println!("counter main: unexpected {other:?}"),
        }
    }
}

/// Ask the process registered as "counter" on `node` where it is.
fn ping(mb: &Mailbox<ToClient>, node: &str) -> (String, ServerRef<Counter>) {
    let me = wisp::codec::encode(&mb.process()).unwrap();
    node::send_named_raw(node, "counter", TAG_PING, &me).expect("ping");
    match mb.receive_timeout(SLOW) {
        Ok(ToClient::Pong { node, server }) => (node, server),
        other => panic!("no pong from {node}: {other:?}"),
    }
}

fn call(s: ServerRef<Counter>, ask: Ask) -> Answer {
    s.call_timeout(&ask, SLOW).expect("call")
}

fn move_to(s: ServerRef<Counter>, node: &str) -> MigrateResult {
    s.call_timeout(&MoveTo(node.into()), SLOW).expect("call MoveTo")
}

/// What a failed move returned, without the node (its text varies).
fn failed(r: MigrateResult) -> String {
    match r {
        Ok(m) => format!("moved to {}", m.node),
        Err(e) => format!("{e:?}"),
    }
}

pub fn mclient(a: &str, b: &str, refusing: &str, calls: u64) {
    let mb = Mailbox::<ToClient>::new();
    let (at, s) = ping(&mb, a);
    println!("found on {}", at == a);
    let mon = s.monitor();
    wisp::trap_exits(true);
    s.pid().link();
    let host = a.split('@').nth(1).unwrap_or("localhost");
    println!("to a refusing node: {}", failed(move_to(s, refusing)));
    println!("to no node: {}", failed(move_to(s, &format!("nobody@{host}"))));
    println!("to a bad name: {}", failed(move_to(s, "no-at-sign")));
    call(s, Ask::Register("svc".into())); // B's serve holds "svc"
    println!("with a name taken there: {}", failed(move_to(s, b)));
    call(s, Ask::Unregister("svc".into()));
    call(s, Ask::RefuseSave(true));
    println!("with save refusing: {}", failed(move_to(s, b)));
    let g = call(s, Ask::RefuseSave(false));
    println!("still on A {} count {} failures told {}", g.node == a, g.n, g.failed.len());

    // The hammer: calls by the old ServerRef; halfway, another process
    // moves the server while they go on.
    let me = mb.process();
    let mut nodes: Vec<String> = Vec::new();
    for i in 1..=calls {
        let r = call(s, Ask::Incr);
        if r.n != g.n + i {
            println!("call {i} got count {} (expected {})", r.n, g.n + i);
            std::process::exit(1);
        }
        if nodes.last() != Some(&r.node) {
            nodes.push(r.node);
        }
        if i == calls / 2 {
            let to = b.to_string();
            wisp::spawn!(|s, to, me| me.send(&ToClient::Moved(move_to(s, &to)))).expect("spawn the mover");
        }
    }
    let froms: Vec<&str> = nodes.iter().map(|n| if n == a { "A" } else if n == b { "B" } else { n }).collect();
    println!("{calls} calls answered in order, from {}", froms.join(" then "));
    let moved = match mb.receive_timeout(SLOW) {
        Ok(ToClient::Moved(Ok(m))) => m,
        other => panic!("the mover: {other:?}"),
    };
    println!("moved to B {}, a new pid {}", moved.node == b, moved.pid != s.pid());
    s.cast(&Add(5));
    let g = call(s, Ask::Get);
    println!("after the move: on B {} count {} failures carried {} named there {}", g.node == b, g.n, g.failed.len(), g.named);
    for (label, n) in [("A", a), ("B", b)] {
        let (at, server) = ping(&mb, n);
        println!("by name on {label}: answered from B {} by the new pid {}", at == b, server.pid() == moved.pid);
    }
    let last = call(s, Ask::Stop(7));
    println!("stopped at {}", last.n);
    let mut ends = Vec::new();
    while ends.len() < 2 {
        match mb.receive_event(SLOW) {
            Ok(Event::Down { monitor, reason, .. }) if monitor == mon => ends.push(format!("down {reason}")),
            Ok(Event::Exit { from, reason }) if from == s.pid() => ends.push(format!("exit {reason}")),
            other => println!("mclient: unexpected {other:?}"),
        }
    }
    ends.sort();
    println!("{}", ends.join(", "));
}

/// The next Down (monitors of the server) or report of the server's end,
/// as a line.
fn next(mb: &Mailbox<ToClient>) -> String {
    match mb.receive_event(SLOW) {
        Ok(Event::Down { reason, .. }) => format!("down {reason}"),
        Ok(Event::Message(ToClient::Ended(t))) => t,
        other => format!("unexpected {other:?}"),
    }
}

pub fn mkill(a: &str, b: &str, d: &str) {
    let mb = Mailbox::<ToClient>::new();
    let (_, s) = ping(&mb, a);
    s.monitor();
    call(s, Ask::Report(mb.process()));
    println!("moved to B {}", matches!(move_to(s, b), Ok(m) if m.node == b));
    println!("moved on to D {}", matches!(move_to(s, d), Ok(m) if m.node == d));
    let g = call(s, Ask::Get);
    println!("on D {} trapping {} former pids {} the first the client's {}", g.node == d, g.trapping,
             g.former.len(), g.former.first() == Some(&s.pid()));
    s.pid().kill();
    let mut ends = vec![next(&mb), next(&mb)];
    ends.sort();
    for e in ends {
        println!("{}", e.replace(d, "D"));
    }
}

pub fn mpoison(a: &str, b: &str) {
    let mb = Mailbox::<ToClient>::new();
    let (_, s) = ping(&mb, a);
    s.monitor();
    call(s, Ask::Poison);
    // The reply comes from B, the server's end through A: either can
    // reach this node first.
    match s.call_timeout(&MoveTo(b.into()), SLOW) {
        Ok(r) => println!("move: {}", failed(r)),
        Err(e) => println!("move: call failed {e:?}"),
    }
    let down = next(&mb);
    println!("{}", if down.starts_with("down panicked at ") { "down panic" } else { &down });
}
