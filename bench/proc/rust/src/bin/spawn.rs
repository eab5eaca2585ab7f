//! spawn -- spawn+exit throughput: spawn N processes that end at once, then
//! wait until all have; us per spawn+exit. Each child's last act is a
//! message to the parent (the crate's basic calls only; the C guest uses a
//! monitor and its DOWN message, Go a WaitGroup whose Done is likewise the
//! goroutine's last act).
use std::time::Instant;

use procbench::{arg, die};
use wisp::{Mailbox, Process};

fn child(parent: Process<()>, _mb: Mailbox<()>) {
    parent.send(&());
}

fn main() {
    let n = arg(1, "N", false);
    let mb = Mailbox::<()>::new();
    let me = mb.process();
    let t0 = Instant::now();
    for _ in 0..n {
        if let Err(e) = wisp::spawn(me, child) {
            die("wisp::spawn", e);
        }
    }
    for _ in 0..n {
        if let Err(e) = mb.receive() {
            die("receive", e);
        }
    }
    let dt = t0.elapsed();
    println!("RESULT spawn_us={:.4} n={n}", dt.as_secs_f64() * 1e6 / n as f64);
}
