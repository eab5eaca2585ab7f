//! sleepers — 20,000 processes that each sleep, then report: processes are
//! cheap enough to use one per task, even when most of them wait.
//!
//! Run: `cargo run --release --bin sleepers [N]`.
use std::time::{Duration, Instant};

use wisp::Mailbox;

#[wisp::main]
fn main(mailbox: Mailbox<u32>) {
    let n: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let me = mailbox.process();
    let start = Instant::now();
    for i in 0..n {
        // Each sleeps 100 ms to 1 s (parked: no thread, no CPU), then
        // sends its number back.
        wisp::spawn!(|me, i| {
            wisp::sleep(Duration::from_millis(100 + (i as u64 * 7919) % 900));
            me.send(&i);
        })
        .expect("cannot spawn");
    }
    let spawned = start.elapsed();
    let mut seen = vec![false; n as usize];
    for _ in 0..n {
        let i = mailbox.receive().expect("receive failed");
        assert!(!std::mem::replace(&mut seen[i as usize], true), "{i} reported twice");
    }
    println!("{n} processes slept and reported; all {n} distinct");
    eprintln!("spawned in {:.2} s, all done in {:.2} s", spawned.as_secs_f64(), start.elapsed().as_secs_f64());
}
