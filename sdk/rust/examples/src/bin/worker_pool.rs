//! worker_pool — a supervised pool of workers that survives crashing ones.
//!
//! Four workers run under a one_for_one supervisor, each registered as
//! `worker-<i>`. Jobs go round-robin by `call`; a job divisible by 5 is
//! poison: the worker panics, the caller's `call` fails with `NoProc`
//! instead of hanging, and the supervisor starts a fresh worker that
//! registers the name again.
//!
//! Run: `cargo run --bin worker_pool [jobs]` in sdk/rust.
use std::time::Duration;

use wisp::{CallError, ChildSpec, Mailbox, Process, Strategy, Supervisor};

const WORKERS: u32 = 4;

fn worker(i: u32, mb: Mailbox<u64>) {
    wisp::register(&format!("worker-{i}"), mb.process()).expect("name taken");
    loop {
        let Ok((n, reply)) = mb.receive_call(wisp::FOREVER) else { continue };
        if n % 5 == 0 {
            panic!("worker-{i}: job {n} is poison");
        }
        let _ = reply.reply(&(n * n));
    }
}

/// The worker registered as `name`, waiting for a restart if needed; not
/// `not_this` (a pid known to be dead).
fn lookup(name: &str, not_this: Option<Process<u64>>) -> Process<u64> {
    loop {
        match wisp::whereis::<u64>(name) {
            Some(p) if Some(p) != not_this => return p,
            _ => wisp::sleep(Duration::from_millis(1)),
        }
    }
}

fn main() {
    let jobs: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(12);
    let mut sup = Supervisor::new(Strategy::OneForOne).intensity(jobs as u32, Duration::from_secs(5));
    for i in 1..=WORKERS {
        sup = sup.child(ChildSpec::worker(&format!("worker-{i}"), worker, i));
    }
    let sup = sup.start_link().expect("the pool did not start");
    println!("pool: {WORKERS} workers under a one_for_one supervisor");
    let (mut ok, mut crashed) = (0, 0);
    for n in 1..=jobs {
        let name = format!("worker-{}", n % WORKERS as u64 + 1);
        let w = lookup(&name, None);
        match w.call::<u64>(&n, Duration::from_secs(5)) {
            Ok(sq) => {
                ok += 1;
                println!("job {n}: {n}^2 = {sq} ({name})");
            }
            Err(CallError::NoProc) => {
                crashed += 1;
                let again = lookup(&name, Some(w));
                assert!(again.is_alive());
                println!("job {n}: {name} crashed; the supervisor restarted it");
            }
            Err(e) => panic!("job {n}: {e}"),
        }
    }
    let alive = sup.which_children().unwrap().iter().filter(|c| c.pid.is_some_and(|p| p.is_alive())).count();
    println!("pool: {jobs} jobs, {ok} results, {crashed} crashes survived, {alive} workers alive");
}
