//! Servers and supervisors, each test in its own wisp process.
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use wisp::server::{Context, Handlers, Handover, MigrateError, MigrateResult, StartError};
use wisp::supervisor::{SupervisorError, EXIT_INTENSITY};
use wisp::{
    CallError, ChildSpec, Deferred, Event, ExitReason, Handle, HandleDeferred, Mailbox, Name, Pid, Process, Restart, Server,
    ServerRef, Strategy, Supervisor, SupervisorRef,
};

const SEC: Duration = Duration::from_secs(5);

/// A counter server; `Call::Crash` panics inside its handler.
struct Counter {
    n: i64,
    report: Option<Process<String>>,
}

#[derive(Serialize, Deserialize, Debug)]
enum Call {
    Get,
    Crash,
    Stop,
}

/// "Add this" (a cast).
#[derive(Serialize, Deserialize, Debug)]
struct Add(i64);

/// "Report this with the count" (deferred: a helper process answers).
#[derive(Serialize, Deserialize, Debug)]
struct Echo(String);

impl Server for Counter {
    type Arg = (i64, Option<Process<String>>);

    fn init((n, report): Self::Arg, _cx: &mut Context<Self>) -> Result<Self, String> {
        if n < 0 {
            return Err(format!("negative start {n}"));
        }
        Ok(Counter { n, report })
    }
    fn handlers(h: &mut Handlers<Self>) {
        h.handle::<Call>().handle::<Add>().deferred::<Echo>();
    }
    fn handle_info(&mut self, ev: Event<()>, _cx: &mut Context<Self>) {
        if let (Event::Other(env), Some(r)) = (ev, self.report) {
            r.send(&format!("info tag {} at {}", env.tag, self.n));
        }
    }
    fn terminate(&mut self, reason: &ExitReason) {
        if let Some(r) = self.report {
            r.send(&format!("terminate {reason}"));
        }
    }
}

impl Handle<Call> for Counter {
    type Reply = i64;
    fn handle(&mut self, msg: Call, cx: &mut Context<Self>) -> i64 {
        match msg {
            Call::Get => self.n,
            Call::Crash => panic!("crash requested at {}", self.n),
            Call::Stop => {
                cx.stop(ExitReason::Normal);
                self.n
            }
        }
    }
}

impl Handle<Add> for Counter {
    type Reply = ();
    fn handle(&mut self, Add(d): Add, _cx: &mut Context<Self>) {
        self.n += d;
    }
}

impl HandleDeferred<Echo> for Counter {
    type Reply = String;
    fn handle_deferred(&mut self, Echo(text): Echo, reply: Deferred<String>, _cx: &mut Context<Self>) {
        let n = self.n;
        // Another process answers, after the server has moved on.
        wisp::spawn!(|text, n, reply| {
            wisp::sleep(Duration::from_millis(20));
            reply.reply(&format!("{text} at {n} from {:?}", wisp::self_pid())).unwrap();
        })
        .unwrap();
    }
}

#[wisp::test]
fn server_call_cast_info_and_stop() {
    let me = Mailbox::<String>::new();
    let c = Counter::start((10, Some(me.process()))).unwrap();
    c.cast(&Add(5));
    assert_eq!(c.call(&Call::Get), Ok(15));
    let r: Result<(), CallError> = c.call(&Add(1));
    assert_eq!(r, Ok(()));
    // Anything else goes to handle_info.
    c.pid().send_raw(wisp::TAG_USER, b"x").unwrap();
    assert_eq!(me.receive_timeout(SEC).unwrap(), "info tag 65536 at 16");
    assert_eq!(c.call(&Call::Stop), Ok(16));
    assert_eq!(me.receive_timeout(SEC).unwrap(), "terminate normal");
    // A dead server: an error at once, not a hang.
    assert_eq!(c.call_timeout(&Call::Get, wisp::FOREVER), Err(CallError::NoProc));
}

#[wisp::test]
fn init_errors_are_returned() {
    assert_eq!(Counter::start((-1, None)), Err(StartError::Init("negative start -1".into())));
}

#[wisp::test]
fn bad_requests_and_casts_do_not_crash_a_server() {
    let c = Counter::start((1, None)).unwrap();
    let wrong: Process<String> = c.pid().typed();
    match wrong.call::<i64>(&"not a Call".into(), SEC) {
        Err(CallError::BadRequest(why)) => assert!(why.contains("no handler"), "{why}"),
        other => panic!("{other:?}"),
    }
    // A server of another type: its messages are refused, by name.
    struct Other;
    impl Server for Other {
        type Arg = ();
        fn init(_: (), _: &mut Context<Self>) -> Result<Self, String> {
            Ok(Other)
        }
        fn handlers(_: &mut Handlers<Self>) {}
    }
    impl Handle<u8> for Other {
        type Reply = u8;
        fn handle(&mut self, m: u8, _: &mut Context<Self>) -> u8 {
            m
        }
    }
    let confused = wisp::ServerRef::<Other>::from_pid(c.pid());
    match confused.call(&7u8) {
        Err(CallError::BadRequest(why)) => {
            assert!(why.contains("no handler for this message type") && why.contains("the request was a u8"), "{why}");
            assert!(why.contains("servers::Call") && why.contains("servers::Add"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    c.pid().send_tagged(wisp::TAG_CAST, &"not a message").unwrap();
    assert_eq!(c.call(&Call::Get), Ok(1));
}

#[wisp::test]
fn a_deferred_reply_comes_from_another_process() {
    let c = Counter::start((4, None)).unwrap();
    let reply = c.call(&Echo("hi".into())).unwrap();
    assert!(reply.starts_with("hi at 4 from "), "{reply}");
    assert!(!reply.ends_with(&format!("{:?}", c.pid())), "{reply}");
    // The server went on meanwhile: two deferred calls from two callers.
    let me = Mailbox::<String>::new();
    let to = me.process();
    wisp::spawn!(|c, to| to.send(&c.call(&Echo("first".into())).unwrap())).unwrap();
    c.cast(&Add(1));
    assert_eq!(c.call(&Call::Get), Ok(5));
    assert!(me.receive_timeout(SEC).unwrap().starts_with("first at "));
}

#[wisp::test]
fn typed_names_find_typed_handles() {
    const COUNTER: Name<ServerRef<Counter>> = Name::new("servers-counter");
    let c = Counter::start((9, None)).unwrap();
    COUNTER.register(&c).unwrap();
    assert_eq!(COUNTER.whereis().unwrap().call(&Call::Get), Ok(9));
    assert_eq!(COUNTER.register(&c), Err(wisp::RegistryError::Taken));
    COUNTER.unregister().unwrap();
    assert!(COUNTER.whereis().is_none());
}

#[wisp::test]
fn a_panicking_callback_kills_the_server_and_callers_see_noproc() {
    let c = Counter::start((3, None)).unwrap();
    let mon = c.monitor();
    assert_eq!(c.call(&Call::Crash), Err(CallError::NoProc));
    match Mailbox::<()>::new().receive_matching(&[mon.raw()], SEC) {
        Ok(env) => match ExitReason::from_bytes(&env.bytes) {
            Some(ExitReason::Panic(t)) => assert!(t.contains("tests/servers.rs:") && t.ends_with(": crash requested at 3"), "{t}"),
            r => panic!("{r:?}"),
        },
        Err(e) => panic!("{e}"),
    }
}

/// A server that can move (Handover); what travels is its count only.
struct Mover {
    n: i64,
    failures: Vec<String>,
    refuse_save: bool,
}

#[derive(Serialize, Deserialize)]
struct MoverImage(i64);

/// Move there and answer how it went (deferred).
#[derive(Serialize, Deserialize)]
struct Go(String);
/// Move there; a failure only reaches migrate_failed (a cast).
#[derive(Serialize, Deserialize)]
struct GoQuietly(String);
/// Count one, make save fail or not, and answer the count and failures.
#[derive(Serialize, Deserialize)]
struct Bump(bool);

impl Server for Mover {
    type Arg = ();
    fn init(_: (), _: &mut Context<Self>) -> Result<Self, String> {
        Ok(Mover { n: 0, failures: Vec::new(), refuse_save: false })
    }
    fn handlers(h: &mut Handlers<Self>) {
        h.deferred::<Go>().handle::<GoQuietly>().handle::<Bump>();
    }
}

impl HandleDeferred<Go> for Mover {
    type Reply = MigrateResult;
    fn handle_deferred(&mut self, Go(node): Go, reply: Deferred<MigrateResult>, cx: &mut Context<Self>) {
        cx.migrate_to_and_reply(&node, reply);
    }
}

impl Handle<GoQuietly> for Mover {
    type Reply = ();
    fn handle(&mut self, GoQuietly(node): GoQuietly, cx: &mut Context<Self>) {
        cx.migrate_to(&node);
    }
}

impl Handle<Bump> for Mover {
    type Reply = (i64, Vec<String>);
    fn handle(&mut self, Bump(refuse): Bump, _: &mut Context<Self>) -> (i64, Vec<String>) {
        self.n += 1;
        self.refuse_save = refuse;
        (self.n, self.failures.clone())
    }
}

impl Handover for Mover {
    type Saved = MoverImage;
    fn save(&self) -> Result<impl std::borrow::Borrow<MoverImage>, String> {
        if self.refuse_save {
            return Err("refused".into());
        }
        Ok(MoverImage(self.n))
    }
    fn restore(MoverImage(n): MoverImage, _: &mut Context<Self>) -> Result<Self, String> {
        Ok(Mover { n, failures: Vec::new(), refuse_save: false })
    }
    fn migrate_failed(&mut self, node: &str, error: &MigrateError, _: &mut Context<Self>) {
        self.failures.push(format!("{node}: {error}"));
    }
}

#[wisp::test]
fn a_server_that_cannot_move_goes_on_with_its_state() {
    // Moves that cannot happen here: no node (a plain `wisp run`), or, on
    // a node, one that does not exist; on a node also a name that is no
    // node's and a save that refuses. (tests/e2e/test_dist_sdk.py moves
    // servers between real nodes.)
    let name = wisp::node::name();
    let host = name.as_deref().and_then(|n| n.split('@').nth(1)).unwrap_or("localhost").to_string();
    let nobody = format!("nobody@{host}");
    let why = if name.is_some() { MigrateError::Unreachable } else { MigrateError::NotANode };
    let m = Mover::start(()).unwrap();
    assert_eq!(m.call(&Bump(false)), Ok((1, vec![])));
    assert_eq!(m.call_timeout(&Go(nobody.clone()), Duration::from_secs(60)), Ok(Err(why.clone())));
    m.cast(&GoQuietly(nobody.clone()));
    let told = vec![format!("{nobody}: {why}"); 2];
    assert_eq!(m.call(&Bump(false)), Ok((2, told.clone())));
    if name.is_some() {
        assert_eq!(m.call(&Go("no-at-sign".into())), Ok(Err(MigrateError::BadName)));
        assert_eq!(m.call(&Bump(true)), Ok((3, [told.clone(), vec![format!("no-at-sign: {}", MigrateError::BadName)]].concat())));
        let refused = m.call_timeout(&Go(nobody), Duration::from_secs(60));
        assert_eq!(refused, Ok(Err(MigrateError::Save("refused".into()))));
    }
    assert!(m.is_alive());
}

/// Wait until the child `id` runs with a pid other than `old`.
fn restarted(sup: &SupervisorRef, id: &str, old: Pid) -> Pid {
    let t = Instant::now();
    loop {
        if let Some(p) = sup.child(id) {
            if p != old {
                return p;
            }
        }
        assert!(t.elapsed() < SEC, "{id} was not restarted");
        wisp::sleep(Duration::from_millis(2));
    }
}

fn worker(_id: u32, mb: Mailbox<u32>) {
    // Exits with the code it is sent (0: normally), or runs forever.
    if let Ok(code) = mb.receive() {
        wisp::exit(code as i32);
    }
}

fn three_workers(s: Strategy) -> SupervisorRef {
    Supervisor::new(s)
        .intensity(10, SEC)
        .child(ChildSpec::worker("a", worker, 1))
        .child(ChildSpec::worker("b", worker, 2))
        .child(ChildSpec::worker("c", worker, 3))
        .start()
        .unwrap()
}

fn pids(sup: &SupervisorRef) -> Vec<Pid> {
    sup.which_children().unwrap().into_iter().map(|c| c.pid.unwrap()).collect()
}

#[wisp::test]
fn a_supervisor_restarts_a_crashed_server() {
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(ChildSpec::server::<Counter>("counter", (7, None)))
        .start()
        .unwrap();
    let old = sup.child("counter").unwrap();
    let c = wisp::ServerRef::<Counter>::from_pid(old);
    c.cast(&Add(1));
    assert_eq!(c.call(&Call::Crash), Err(CallError::NoProc));
    let new = restarted(&sup, "counter", old);
    // Restarted from its spec: the state is the initial one again.
    assert_eq!(wisp::ServerRef::<Counter>::from_pid(new).call(&Call::Get), Ok(7));
}

#[wisp::test]
fn one_for_one_restarts_only_the_dead_child() {
    let sup = three_workers(Strategy::OneForOne);
    let before = pids(&sup);
    before[1].kill();
    let b = restarted(&sup, "b", before[1]);
    assert_eq!(pids(&sup), vec![before[0], b, before[2]]);
}

#[wisp::test]
fn one_for_all_restarts_every_child() {
    let sup = three_workers(Strategy::OneForAll);
    let before = pids(&sup);
    before[1].typed::<u32>().send(&4); // exits with code 4
    restarted(&sup, "b", before[1]);
    let after = pids(&sup);
    for i in 0..3 {
        assert_ne!(after[i], before[i]);
        assert!(!before[i].is_alive());
    }
}

#[wisp::test]
fn rest_for_one_restarts_the_later_children() {
    let sup = three_workers(Strategy::RestForOne);
    let before = pids(&sup);
    before[1].kill();
    restarted(&sup, "b", before[1]);
    let after = pids(&sup);
    assert_eq!(after[0], before[0]);
    assert_ne!(after[1], before[1]);
    assert_ne!(after[2], before[2]);
}

#[wisp::test]
fn restart_types() {
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(ChildSpec::worker("perm", worker, 0))
        .child(ChildSpec::worker("trans", worker, 0).restart(Restart::Transient))
        .child(ChildSpec::worker("temp", worker, 0).restart(Restart::Temporary))
        .start()
        .unwrap();
    let before = pids(&sup);
    // Normal exits: only the permanent child comes back.
    for p in &before {
        p.typed::<u32>().send(&0);
    }
    restarted(&sup, "perm", before[0]);
    let t = Instant::now();
    let kids = loop {
        let kids = sup.which_children().unwrap();
        if kids.len() == 2 && kids[1].pid.is_none() {
            break kids;
        }
        assert!(t.elapsed() < SEC, "{kids:?}");
        wisp::sleep(Duration::from_millis(2));
    };
    assert_eq!(kids.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), vec!["perm", "trans"]);
    assert_eq!(kids[1].pid, None);
    // An abnormal exit of a transient child: restarted.
    let sup2 = Supervisor::new(Strategy::OneForOne)
        .child(ChildSpec::worker("trans", worker, 0).restart(Restart::Transient))
        .start()
        .unwrap();
    let t = sup2.child("trans").unwrap();
    t.typed::<u32>().send(&3);
    restarted(&sup2, "trans", t);
}

fn crasher(_: (), _mb: Mailbox<()>) {
    panic!("I always crash");
}

fn steady(report: Process<Pid>, mb: Mailbox<()>) {
    report.send(&wisp::self_pid());
    let _ = mb.receive();
}

#[wisp::test]
fn hitting_the_restart_intensity_ends_the_supervisor() {
    // Linked and trapping, so the supervisor's end is observed however fast
    // it comes (a monitor taken after start could see only NoProc).
    wisp::trap_exits(true);
    let me = Mailbox::<Pid>::new();
    let sup = Supervisor::new(Strategy::OneForOne)
        .intensity(3, Duration::from_secs(10))
        .child(ChildSpec::worker("steady", steady, me.process()))
        .child(ChildSpec::worker("crasher", crasher, ()))
        .start_link()
        .unwrap();
    let steady = me.receive_timeout(SEC).unwrap();
    match me.receive_event(SEC).unwrap() {
        Event::Exit { from, reason } => assert_eq!((from, reason), (sup.pid(), ExitReason::Code(EXIT_INTENSITY))),
        other => panic!("{other:?}"),
    }
    // It stopped its other children on the way out.
    assert!(!steady.is_alive());
}

#[wisp::test]
fn a_linked_caller_sees_the_supervisor_give_up() {
    wisp::trap_exits(true);
    let sup = Supervisor::new(Strategy::OneForOne)
        .intensity(1, Duration::from_secs(10))
        .child(ChildSpec::worker("crasher", crasher, ()))
        .start_link()
        .unwrap();
    match Mailbox::<()>::new().receive_event(SEC).unwrap() {
        Event::Exit { from, reason } => assert_eq!((from, reason), (sup.pid(), ExitReason::Code(EXIT_INTENSITY))),
        other => panic!("{other:?}"),
    }
}

#[wisp::test]
fn dynamic_children() {
    let sup = Supervisor::new(Strategy::OneForOne).start().unwrap();
    assert!(sup.which_children().unwrap().is_empty());
    let p = sup.start_child(ChildSpec::worker("w", worker, 9)).unwrap();
    assert!(p.is_alive());
    assert_eq!(sup.start_child(ChildSpec::worker("w", worker, 9)), Err(SupervisorError::AlreadyPresent));
    let c = sup.start_child(ChildSpec::server::<Counter>("c", (2, None))).unwrap();
    assert_eq!(wisp::ServerRef::<Counter>::from_pid(c).call(&Call::Get), Ok(2));
    assert!(matches!(
        sup.start_child(ChildSpec::server::<Counter>("bad", (-5, None))),
        Err(SupervisorError::Start(_))
    ));
    sup.terminate_child("w").unwrap();
    assert!(!p.is_alive());
    assert_eq!(sup.terminate_child("w"), Err(SupervisorError::NotFound));
    let ids: Vec<_> = sup.which_children().unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(ids, vec!["c"]);
}

#[wisp::test]
fn shutdown_runs_terminate_of_trapping_servers() {
    struct Tidy(Process<String>);
    impl Server for Tidy {
        type Arg = Process<String>;
        fn init(p: Process<String>, cx: &mut Context<Self>) -> Result<Self, String> {
            cx.trap_exits(true);
            Ok(Tidy(p))
        }
        fn handlers(_: &mut Handlers<Self>) {}
        fn terminate(&mut self, reason: &ExitReason) {
            self.0.send(&format!("tidy: {reason}"));
        }
    }
    let me = Mailbox::<String>::new();
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(ChildSpec::server::<Tidy>("tidy", me.process()))
        .start()
        .unwrap();
    sup.terminate_child("tidy").unwrap();
    assert_eq!(me.receive_timeout(SEC).unwrap(), "tidy: exit code 70");
}

#[wisp::test]
fn nested_supervisors() {
    let inner = Supervisor::new(Strategy::OneForOne).child(ChildSpec::worker("leaf", worker, 1));
    let sup = Supervisor::new(Strategy::OneForOne).child(ChildSpec::supervisor("inner", inner)).start().unwrap();
    let inner_pid = sup.child("inner").unwrap();
    inner_pid.kill();
    let new_inner = restarted(&sup, "inner", inner_pid);
    let inner_ref = SupervisorRef::from_pid(new_inner);
    assert!(inner_ref.child("leaf").unwrap().is_alive());
}
