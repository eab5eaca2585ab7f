//! Processes, mailboxes, calls, the registry and timers, each test in its
//! own wisp process (`cargo test`, #[wisp::test]).
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use wisp::{CallError, Event, ExitReason, Mailbox, Pid, Process, RecvError, RegistryError};

const SEC: Duration = Duration::from_secs(5);

#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum Msg {
    Hello(String),
    Num(u64),
}

#[wisp::test]
fn spawn_passes_the_argument_and_messages_flow() {
    let me = Mailbox::<Msg>::new();
    let child = wisp::spawn((me.process(), 41u64), |(parent, n), mb: Mailbox<Msg>| {
        parent.send(&Msg::Num(n + 1));
        if let Ok(Msg::Hello(s)) = mb.receive() {
            parent.send(&Msg::Hello(format!("{s} back")));
        }
    })
    .unwrap();
    assert_eq!(me.receive_timeout(SEC).unwrap(), Msg::Num(42));
    child.send(&Msg::Hello("hi".into()));
    assert_eq!(me.receive_timeout(SEC).unwrap(), Msg::Hello("hi back".into()));
    assert_ne!(child.pid(), wisp::self_pid());
}

#[wisp::test]
fn large_arguments_and_messages_arrive_intact() {
    let me = Mailbox::<Vec<u32>>::new();
    let data: Vec<u32> = (0..100_000).collect();
    wisp::spawn((me.process(), data), |(parent, data), _mb: Mailbox<()>| {
        let mut d = data;
        d.reverse();
        parent.send(&d);
    })
    .unwrap();
    let back = me.receive_timeout(SEC).unwrap();
    assert_eq!(back.len(), 100_000);
    assert_eq!(back[0], 99_999);
    assert_eq!(back[99_999], 0);
}

#[wisp::test]
fn timeouts_and_polls_return_timeout() {
    let me = Mailbox::<Msg>::new();
    assert_eq!(me.try_receive(), Err(RecvError::Timeout));
    let t = Instant::now();
    assert_eq!(me.receive_timeout(Duration::from_millis(30)), Err(RecvError::Timeout));
    assert!(t.elapsed() >= Duration::from_millis(30));
}

#[wisp::test]
fn a_message_that_does_not_decode_is_an_error_not_a_crash() {
    let me = Mailbox::<Msg>::new();
    // Wrong type and garbage, then a good message: the receiver sees two
    // errors and goes on.
    me.process().pid().send_tagged(wisp::TAG_MSG, &"a string, not a Msg").unwrap();
    me.process().pid().send_raw(wisp::TAG_MSG, &[0xff, 0xff, 0xff]).unwrap();
    me.process().send(&Msg::Num(7));
    match me.receive() {
        Err(RecvError::Decode { envelope, .. }) => assert_eq!(envelope.from, wisp::self_pid()),
        other => panic!("expected a decode error, got {other:?}"),
    }
    assert!(matches!(me.receive(), Err(RecvError::Decode { .. })));
    assert_eq!(me.receive().unwrap(), Msg::Num(7));
}

#[wisp::test]
fn selective_receive_by_tag() {
    let me = Mailbox::<Msg>::new();
    let pid = wisp::self_pid();
    me.process().send(&Msg::Num(1));
    pid.send_tagged(wisp::TAG_USER, &"first").unwrap();
    pid.send_tagged(wisp::TAG_USER + 1, &"second").unwrap();
    assert_eq!(me.receive_tagged::<String>(wisp::TAG_USER + 1, SEC).unwrap(), "second");
    assert_eq!(me.receive_tagged::<String>(wisp::TAG_USER, SEC).unwrap(), "first");
    assert_eq!(me.receive().unwrap(), Msg::Num(1));
    // The general form: any of several tags.
    pid.send_tagged(wisp::TAG_USER + 5, &5u8).unwrap();
    let env = me.receive_matching(&[wisp::TAG_USER + 4, wisp::TAG_USER + 5], SEC).unwrap();
    assert_eq!((env.tag, env.decode::<u8>().unwrap()), (wisp::TAG_USER + 5, 5));
}

#[wisp::test]
fn a_linked_panic_arrives_as_an_exit_event_when_trapping() {
    wisp::trap_exits(true);
    let me = Mailbox::<()>::new();
    let child = wisp::spawn_link((), |(), _mb: Mailbox<()>| panic!("boom")).unwrap();
    match me.receive_event(SEC).unwrap() {
        Event::Exit { from, reason: ExitReason::Panic(text) } => {
            // The panic's message and location reach the link.
            assert_eq!(from, child.pid());
            assert!(text.contains("tests/processes.rs:") && text.ends_with(": boom"), "{text}");
        }
        other => panic!("{other:?}"),
    }
}

#[wisp::test]
fn a_linked_crash_kills_a_process_that_does_not_trap() {
    let me = Mailbox::<()>::new();
    let (middle, mon) = wisp::spawn_monitor((), |(), _mb: Mailbox<()>| {
        wisp::spawn_link((), |(), _mb: Mailbox<()>| std::process::exit(9)).unwrap();
        wisp::sleep(Duration::from_secs(10));
    })
    .unwrap();
    match me.receive_event(SEC).unwrap() {
        Event::Down { monitor, pid, reason } => {
            assert_eq!((monitor, pid, reason), (mon, middle.pid(), ExitReason::Code(9)));
        }
        other => panic!("{other:?}"),
    }
}

#[wisp::test]
fn monitors_report_down_with_the_reason() {
    let me = Mailbox::<()>::new();
    let (p, mon) = wisp::spawn_monitor(3, |code: i32, _mb: Mailbox<()>| wisp::exit(code)).unwrap();
    match me.receive_event(SEC).unwrap() {
        Event::Down { monitor, pid, reason } => {
            assert_eq!((monitor, pid, reason), (mon, p.pid(), ExitReason::Code(3)))
        }
        other => panic!("{other:?}"),
    }
    // A dead process: Down with NoProc at once.
    let mon = p.monitor();
    match me.receive_event(SEC).unwrap() {
        Event::Down { monitor, reason, .. } => assert_eq!((monitor, reason), (mon, ExitReason::NoProc)),
        other => panic!("{other:?}"),
    }
}

#[wisp::test]
fn demonitor_drops_the_notice_and_kill_kills() {
    let me = Mailbox::<()>::new();
    let p = wisp::spawn((), |(), mb: Mailbox<()>| {
        let _ = mb.receive();
    })
    .unwrap();
    let quiet = p.monitor();
    let loud = p.monitor();
    assert!(quiet.demonitor());
    assert!(p.is_alive());
    p.kill();
    match me.receive_event(SEC).unwrap() {
        Event::Down { monitor, reason, .. } => assert_eq!((monitor, reason), (loud, ExitReason::Killed)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(me.receive_event(Duration::from_millis(20)), Err(RecvError::Timeout)));
    assert!(!p.is_alive());
}

#[wisp::test]
fn exit_signals_are_trapped_as_events() {
    let me = Mailbox::<()>::new();
    let (p, mon) = wisp::spawn_monitor(me.process(), |parent: Process<()>, mb: Mailbox<()>| {
        wisp::trap_exits(true);
        parent.send(&());
        if let Ok(Event::Exit { reason: ExitReason::Code(5), .. }) = mb.receive_event(SEC) {
            wisp::exit(55);
        }
    })
    .unwrap();
    me.receive_timeout(SEC).unwrap();
    p.exit_signal(5);
    match me.receive_event(SEC).unwrap() {
        Event::Down { monitor, reason, .. } => assert_eq!((monitor, reason), (mon, ExitReason::Code(55))),
        other => panic!("{other:?}"),
    }
}

fn echo(_: (), mb: Mailbox<String>) {
    loop {
        match mb.receive_call(wisp::FOREVER) {
            Ok((s, _reply)) if s == "never" => {} // never answered
            Ok((s, reply)) if s == "die" => {
                let _ = reply;
                wisp::exit(1)
            }
            Ok((s, reply)) => reply.reply(&s.to_uppercase()).unwrap(),
            Err(_) => {} // a bad request: already answered with BadRequest
        }
    }
}

#[wisp::test]
fn call_replies_times_out_and_fails_fast_on_dead_processes() {
    let e = wisp::spawn((), echo).unwrap();
    assert_eq!(e.call::<String>(&"abc".into(), SEC), Ok("ABC".into()));
    assert_eq!(e.call::<String>(&"never".into(), Duration::from_millis(30)), Err(CallError::Timeout));
    // The wrong reply type is a decode error, not a panic.
    assert!(matches!(e.call::<u64>(&"x".into(), SEC), Err(CallError::Decode(_))));
    // The wrong request type: the receiver answers BadRequest.
    let wrong: Process<u32> = e.pid().typed();
    assert!(matches!(wrong.call::<String>(&7, SEC), Err(CallError::BadRequest(_))));
    // Dies while we wait: NoProc, not a hang.
    let t = Instant::now();
    assert_eq!(e.call::<String>(&"die".into(), wisp::FOREVER), Err(CallError::NoProc));
    assert_eq!(e.call::<String>(&"abc".into(), wisp::FOREVER), Err(CallError::NoProc));
    assert!(t.elapsed() < SEC);
    let me: Process<String> = wisp::self_pid().typed();
    assert_eq!(me.call::<String>(&"me".into(), SEC), Err(CallError::SelfCall));
}

#[wisp::test]
fn calls_arrive_as_events_too() {
    let e = wisp::spawn((), |(), mb: Mailbox<u32>| {
        if let Ok(Event::Call(n, reply)) = mb.receive_event(SEC) {
            reply.reply(&(n * 2)).unwrap();
        }
    })
    .unwrap();
    assert_eq!(e.call::<u32>(&21, SEC), Ok(42));
}

#[wisp::test]
fn the_registry_is_typed_and_forgets_the_dead() {
    let me = Mailbox::<u32>::new();
    let (p, mon) = wisp::spawn_monitor((), |(), mb: Mailbox<u32>| {
        let n = mb.receive().unwrap();
        wisp::whereis::<u32>("test-parent").unwrap().send(&(n + 1));
    })
    .unwrap();
    wisp::register("test-parent", me.process()).unwrap();
    wisp::register("test-child", p).unwrap();
    assert_eq!(wisp::register("test-child", me.process()), Err(RegistryError::Taken));
    assert_eq!(wisp::register("", me.process()), Err(RegistryError::BadName));
    wisp::whereis::<u32>("test-child").unwrap().send(&1);
    assert_eq!(me.receive_timeout(SEC).unwrap(), 2);
    me.receive_matching(&[mon.raw()], SEC).unwrap();
    assert!(wisp::whereis::<u32>("test-child").is_none());
    assert_eq!(wisp::unregister("test-parent"), Ok(()));
    assert_eq!(wisp::unregister("test-parent"), Err(RegistryError::NotFound));
}

#[wisp::test]
fn timers_send_later_and_cancel() {
    let me = Mailbox::<u32>::new();
    let t0 = Instant::now();
    wisp::send_after(me.process(), &1, Duration::from_millis(40)).unwrap();
    let t = wisp::send_after(me.process(), &2, Duration::from_millis(20)).unwrap();
    assert!(t.cancel());
    assert!(!t.cancel());
    assert_eq!(me.receive_timeout(SEC).unwrap(), 1);
    assert!(t0.elapsed() >= Duration::from_millis(40));
    assert_eq!(me.try_receive(), Err(RecvError::Timeout));
    let t1 = Instant::now();
    wisp::sleep(Duration::from_millis(25));
    assert!(t1.elapsed() >= Duration::from_millis(25));
}

#[wisp::test]
fn handles_serialize_inside_messages() {
    let me = Mailbox::<(Pid, Process<u8>)>::new();
    me.process().send(&(wisp::self_pid(), me.process().pid().typed()));
    let (pid, p) = me.receive().unwrap();
    assert_eq!(pid, wisp::self_pid());
    assert_eq!(p.pid(), pid);
}

#[wisp::test]
fn many_processes() {
    let me = Mailbox::<u32>::new();
    for i in 0..500u32 {
        wisp::spawn((me.process(), i), |(p, i), _mb: Mailbox<()>| p.send(&i)).unwrap();
    }
    let mut sum = 0u64;
    for _ in 0..500 {
        sum += me.receive_timeout(SEC).unwrap() as u64;
    }
    assert_eq!(sum, 499 * 500 / 2);
}

// A sleep of FOREVER sleeps: it once became a sleep of 0 (the "no limit"
// value of receive timeouts means "at once" to the host's sleep).
#[wisp::test]
fn sleep_forever_does_not_return() {
    let me = Mailbox::<u32>::new();
    let p = wisp::spawn(me.process(), |parent: Process<u32>, _mb: Mailbox<()>| {
        wisp::sleep(wisp::FOREVER);
        parent.send(&1);
    })
    .unwrap();
    assert_eq!(me.receive_timeout(Duration::from_millis(100)), Err(RecvError::Timeout));
    assert!(p.is_alive());
    p.kill();
}

/// A type of this crate, for decode errors: named with its path.
#[derive(Serialize, Deserialize, Debug)]
struct Probe(#[allow(dead_code)] u8);

#[wisp::test]
fn decode_errors_name_the_expected_type() {
    let me = Mailbox::<u64>::new();
    me.process().pid().typed::<String>().send(&"not a number at all".to_string());
    match me.receive_timeout(SEC) {
        Err(RecvError::Decode { error, .. }) => assert!(error.0.contains("expected a u64 (bincode)"), "{error}"),
        other => panic!("{other:?}"),
    }
    // A reply of the wrong type: the error says which type was expected.
    let echo = wisp::spawn((), |_, mb: Mailbox<u8>| {
        let (n, reply) = mb.receive_call(wisp::FOREVER).unwrap();
        reply.reply(&n).unwrap();
    })
    .unwrap();
    match echo.call::<String>(&7, SEC) {
        Err(CallError::Decode(e)) => {
            // Named as it is written: `String`, not `alloc::string::String`.
            assert!(e.0.contains("expected a String (bincode)"), "{e}");
            assert!(e.0.contains("the message ended early"), "{e}");
            assert!(!e.0.contains("io error"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    // Paths into std are cut inside generic types too; others stay whole.
    let me = Mailbox::<Option<Vec<String>>>::new();
    me.process().pid().typed::<u64>().send(&300);
    match me.receive_timeout(SEC) {
        Err(RecvError::Decode { error, .. }) => {
            assert!(error.0.contains("expected an Option<Vec<String>> (bincode)"), "{error}")
        }
        other => panic!("{other:?}"),
    }
    let me = Mailbox::<Probe>::new();
    me.process().pid().typed::<u64>().send(&300);
    match me.receive_timeout(SEC) {
        Err(RecvError::Decode { error, .. }) => {
            assert!(error.0.contains("expected a processes::Probe (bincode)"), "{error}")
        }
        other => panic!("{other:?}"),
    }
}

#[wisp::test]
fn codecs_per_mailbox() {
    use wisp::codec::Raw;
    // Raw bytes: no encoding at all.
    let raw = Mailbox::<Vec<u8>>::new().with_codec::<Raw>();
    raw.process().send(&vec![0u8, 159, 146, 150]);
    assert_eq!(raw.receive_timeout(SEC).unwrap(), vec![0u8, 159, 146, 150]);
    // A bincode sender to a Raw mailbox: the receiver sees bincode's bytes.
    Mailbox::<Vec<u8>>::new().process().send(&vec![1u8, 2]);
    assert_eq!(raw.receive_timeout(SEC).unwrap(), vec![2u8, 1, 2]);
}

#[inline(never)]
fn descend(n: u64, parent: &mut [u8; 512]) -> u64 {
    let mut local = [0u8; 512];
    local[(n % 512) as usize] = n as u8;
    parent[0] = local[3];
    if n == 0 {
        return local[0] as u64;
    }
    descend(n - 1, &mut local) + local[(n % 7) as usize] as u64
}

#[wisp::test]
fn a_child_overflowing_its_small_shadow_stack_traps_alone() {
    let me = Mailbox::<u64>::new();
    // A sibling holding state in its own stack and memory, waiting.
    let sibling = wisp::spawn(me.process(), |parent, mb: Mailbox<u64>| {
        let mut keep = [7u8; 512];
        let got = mb.receive().unwrap();
        parent.send(&(descend(50, &mut keep) + got));
    })
    .unwrap();
    let (p, mon) = wisp::spawn_monitor((), |_, _: Mailbox<()>| {
        let mut top = [0u8; 512];
        std::hint::black_box(descend(100_000, &mut top));
    })
    .unwrap();
    match me.receive_event(SEC).unwrap() {
        Event::Down { monitor, pid, reason: ExitReason::Trap(t) } => {
            assert_eq!((monitor, pid), (mon, p.pid()));
            assert!(t.starts_with("call stack exhausted in processes::descend: shadow stack full"), "{t}");
        }
        other => panic!("expected the child to trap, got {other:?}"),
    }
    // The sibling and this process go on, their stacks intact.
    sibling.send(&1000);
    assert_eq!(me.receive_timeout(SEC).unwrap(), 1021);
    let mut top = [0u8; 512];
    assert_eq!(descend(50, &mut top), 21);
}
