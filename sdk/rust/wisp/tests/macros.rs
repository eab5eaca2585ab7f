//! The macros: #[wisp::test] itself, spawn! and friends.
use std::time::Duration;

use wisp::Mailbox;

#[wisp::test]
fn a_plain_test_passes() {
    assert_eq!(2 + 2, 4);
}

#[wisp::test]
#[should_panic(expected = "boom 7")]
fn should_panic_with_the_expected_text() {
    panic!("boom {}", 7);
}

/// A panic message bigger than a message (64 MiB) may be: the test
/// process's report to the runner once failed to send, and an expected
/// panic counted as a failure.
#[wisp::test]
#[should_panic(expected = "needle at the end")]
fn a_panic_bigger_than_a_message_still_matches_its_expected_text() {
    let mut s = "x".repeat(65 << 20);
    s.push_str("needle at the end");
    std::panic::panic_any(s);
}

#[wisp::test]
fn spawn_copies_captures() {
    let me = Mailbox::<String>::new();
    let to = me.process();
    let name = String::from("ann");
    let n = 3u32;
    wisp::spawn!(|to, name, n| to.send(&format!("{name} x{n}"))).unwrap();
    assert_eq!(me.receive_timeout(Duration::from_secs(5)).unwrap(), "ann x3");
    assert_eq!(name, "ann"); // the caller keeps its own copy
}


#[wisp::test]
fn spawn_link_links_and_spawn_monitor_monitors() {
    wisp::trap_exits(true);
    let me = Mailbox::<()>::new();
    let why = String::from("linked crash");
    let child = wisp::spawn_link!(|why| panic!("{why}")).unwrap();
    match me.receive_event(Duration::from_secs(5)).unwrap() {
        wisp::Event::Exit { from, reason } => {
            assert_eq!(from, child.pid());
            assert!(matches!(&reason, wisp::ExitReason::Panic(t) if t.ends_with(": linked crash")), "{reason:?}");
        }
        other => panic!("{other:?}"),
    }
    let code = 7i32;
    let (child, mon) = wisp::spawn_monitor!(|code| wisp::exit(code)).unwrap();
    match me.receive_event(Duration::from_secs(5)).unwrap() {
        wisp::Event::Down { monitor, pid, reason } => {
            assert_eq!((monitor, pid, reason), (mon, child.pid(), wisp::ExitReason::Code(7)));
        }
        other => panic!("{other:?}"),
    }
}

#[wisp::test]
fn spawn_with_a_capability_set() {
    let me = Mailbox::<String>::new();
    let to = me.process();
    let caps = wisp::Caps::inherit().unwrap().deny_spawn().unwrap();
    wisp::spawn!(&caps, |to| {
        let denied = wisp::spawn((), |_, _: Mailbox<()>| {}).unwrap_err();
        to.send(&denied.to_string());
    })
    .unwrap();
    assert!(me.receive_timeout(Duration::from_secs(5)).unwrap().starts_with("not allowed to spawn"));
}

#[wisp::test]
fn a_test_gets_its_own_mailbox(mailbox: Mailbox<u8>) {
    mailbox.process().send(&3);
    assert_eq!(mailbox.receive_timeout(Duration::from_secs(5)), Ok(3));
}
