//! skynet -- the classic: a tree of processes, 10 children per node down to
//! LEAVES leaves (a power of 10); each leaf sends its number to its parent,
//! each node the sum of its children's. The result is LEAVES*(LEAVES-1)/2.
use std::time::Instant;

use procbench::{arg, die};
use wisp::{Mailbox, Process};

fn node((parent, num, size): (Process<u64>, u64, u64), mb: Mailbox<u64>) {
    let mut sum = num;
    if size > 1 {
        let sub = size / 10;
        let me = mb.process();
        for i in 0..10 {
            if let Err(e) = wisp::spawn((me, num + i * sub, sub), node) {
                die("wisp::spawn", e);
            }
        }
        sum = 0;
        for _ in 0..10 {
            match mb.receive() {
                Ok(x) => sum += x,
                Err(e) => die("receive", e),
            }
        }
    }
    parent.send(&sum);
}

fn main() {
    let leaves = arg(1, "LEAVES", false);
    let mb = Mailbox::<u64>::new();
    let t0 = Instant::now();
    if let Err(e) = wisp::spawn((mb.process(), 0, leaves), node) {
        die("wisp::spawn", e);
    }
    let sum = mb.receive().unwrap_or_else(|e| die("receive", e));
    let dt = t0.elapsed();
    println!("RESULT skynet_s={:.4} leaves={leaves} sum={sum}", dt.as_secs_f64());
}
