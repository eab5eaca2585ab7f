//! sleepers -- the cost of sleeping processes: N processes each loop
//! sleep(100 ms) for D seconds, counting their wake-ups. The main process
//! spawns them, waits until all are up, prints READY, sends each the
//! go-ahead (D), sums the counts they send back when their time is up,
//! prints RESULT and parks; the harness reads the CPU time of wisp's OS
//! process at READY and at RESULT, and divides by the wake-ups.
use std::time::{Duration, Instant};

use procbench::{arg, die, park_forever};
use wisp::{Mailbox, Process};

const PERIOD: Duration = Duration::from_millis(100);

fn sleeper(parent: Process<u64>, mb: Mailbox<u64>) {
    parent.send(&0);
    let ms = mb.receive().unwrap_or_else(|e| die("receive", e));
    let deadline = Instant::now() + Duration::from_millis(ms);
    let mut wakeups = 0u64;
    while Instant::now() < deadline {
        wisp::sleep(PERIOD);
        wakeups += 1;
    }
    parent.send(&wakeups);
    let _ = mb.receive();
}

fn main() {
    let n = arg(1, "N SECONDS", false);
    let secs = arg(2, "N SECONDS", false);
    let mb = Mailbox::<u64>::new();
    let me = mb.process();
    let mut kids = Vec::with_capacity(n as usize);
    for _ in 0..n {
        kids.push(wisp::spawn(me, sleeper).unwrap_or_else(|e| die("wisp::spawn", e)));
    }
    for _ in 0..n {
        mb.receive().unwrap_or_else(|e| die("receive", e));
    }
    println!("READY n={n}");
    for k in &kids {
        k.send(&(secs * 1000));
    }
    let mut total = 0u64;
    for _ in 0..n {
        total += mb.receive().unwrap_or_else(|e| die("receive", e));
    }
    println!("RESULT wakeups={total} n={n} secs={secs}");
    park_forever()
}
