//! test_harness_demo — what wisp::test_main! reports: each test is its own
//! process, so the panicking and exiting tests fail alone (exit status 101).
fn passes() {
    assert_eq!(2 + 2, 4);
}

fn panics() {
    println!("about to panic");
    panic!("this test fails on purpose");
}

fn exits_nonzero() {
    wisp::exit(3);
}

fn still_runs_after_failures() {
    let (p, _mon) = wisp::spawn_monitor((), |(), _mb: wisp::Mailbox<()>| {}).unwrap();
    let _ = p;
}

wisp::test_main!(passes, panics, exits_nonzero, still_runs_after_failures);
