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

