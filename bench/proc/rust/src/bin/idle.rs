//! idle -- memory per idle process: spawn N processes that tell the parent
//! they are up and then block in receive; when all are up, print READY and
//! sleep. The harness reads the RSS of wisp's OS process then, subtracts
//! that of a run with N = 0 and kills it. On the way, `PROGRESS spawned=K`
//! at every tenth of N: a run stopped early (the harness's memory guard) or
//! failing says how far it got.
use procbench::{arg, die, park_forever};
use wisp::{Mailbox, Process};

fn idle(parent: Process<u8>, mb: Mailbox<u8>) {
    parent.send(&1);
    let _ = mb.receive();
}

fn main() {
    let n = arg(1, "N (N >= 0)", true);
    let mb = Mailbox::<u8>::new();
    let me = mb.process();
    let every = (n / 10).max(1);
    for i in 1..=n {
        if let Err(e) = wisp::spawn(me, idle) {
            die("wisp::spawn", e);
        }
        if i % every == 0 && i < n {
            println!("PROGRESS spawned={i}");
        }
    }
    for _ in 0..n {
        if let Err(e) = mb.receive() {
            die("receive", e);
        }
    }
    println!("READY n={n}");
    park_forever()
}
