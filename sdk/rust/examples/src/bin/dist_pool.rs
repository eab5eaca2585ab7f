//! dist_pool — a distributed worker pool: the supervisor runs on this node
//! (the boss), its four workers on another node, and a worker that crashes
//! — or whose whole node is lost — is started again by the supervisor on
//! the next node that answers.
//!
//! Each worker is a `ChildSpec::worker_on` child, started on the first of
//! the nodes given that accepts it. Its spawn argument carries the boss's
//! `Process` handle, a pid that crosses nodes inside the argument: the
//! worker announces itself with it (`Ready`, carrying its own handle back
//! the other way). Jobs go round-robin by `call`; a job divisible by 5 is
//! poison: that worker panics, the boss's `call` fails with `NoProc`
//! instead of hanging, the supervisor (linked to the worker across the
//! nodes) gets its exit signal with the panic as the reason and starts a
//! fresh worker, which announces itself.
//!
//! With `--failover`, after its jobs the boss waits until the first node
//! is lost (`node::monitor_node`); the supervisor sees every worker end
//! with `noconnection` and restarts them on the next node; the boss runs
//! as many jobs again there.
//!
//! Run (two terminals; build with `cargo build --release --bin dist_pool`
//! in sdk/rust; the wasm is in target/wasm32-wasip1/release/):
//!
//! ```text
//! wisp run --sname pool --allow-remote-spawn dist_pool.wasm serve
//! wisp run --sname boss dist_pool.wasm boss 12 pool@$(hostname -s)
//! ```
//!
//! Failover: start a second `serve` node (`--sname spare`), then
//! `... boss 12 pool@HOST spare@HOST --failover`, and stop the pool node
//! when the boss says it waits.
use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wisp::{node, CallError, ChildSpec, Event, Mailbox, Process, Strategy, Supervisor};

const WORKERS: u32 = 4;

/// What a worker says when it starts: who and where it is, and its handle.
#[derive(Serialize, Deserialize, Debug, Clone)]
struct Ready {
    worker: u32,
    node: String,
    jobs: Process<u64>,
}

fn worker((i, boss): (u32, Process<Ready>), mb: Mailbox<u64>) {
    let node = node::name().unwrap_or_default();
    boss.send(&Ready { worker: i, node, jobs: mb.process() });
    loop {
        let Ok((n, reply)) = mb.receive_call(wisp::FOREVER) else { continue };
        if n % 5 == 0 {
            panic!("worker-{i}: job {n} is poison");
        }
        let _ = reply.reply(&(n * n));
    }
}

/// The workers as last announced.
struct Pool {
    mb: Mailbox<Ready>,
    workers: HashMap<u32, Ready>,
}

impl Pool {
    /// Take announcements until worker `i` runs as another process than
    /// `dead` (every announcement updates the pool).
    fn await_restart(&mut self, i: u32, dead: Option<Process<u64>>) -> &Ready {
        while self.workers.get(&i).map_or(true, |w| Some(w.jobs) == dead) {
            let r = self.mb.receive_timeout(Duration::from_secs(60)).expect("no worker announced itself");
            self.workers.insert(r.worker, r);
        }
        &self.workers[&i]
    }

    /// Run jobs `from..=to`; (results, crashes).
    fn run(&mut self, from: u64, to: u64) -> (u32, u32) {
        let (mut ok, mut crashed) = (0, 0);
        for n in from..=to {
            let i = (n % WORKERS as u64) as u32 + 1;
            let w = self.await_restart(i, None).clone();
            match w.jobs.call::<u64>(&n, Duration::from_secs(10)) {
                Ok(sq) => {
                    ok += 1;
                    println!("job {n}: {n}^2 = {sq} (worker-{i} on {})", w.node);
                }
                Err(CallError::NoProc) => {
                    crashed += 1;
                    let again = self.await_restart(i, Some(w.jobs));
                    println!("job {n}: worker-{i} crashed on {}; the supervisor restarted it on {}", w.node, again.node);
                }
                Err(e) => panic!("job {n}: {e}"),
            }
        }
        (ok, crashed)
    }
}

fn boss(jobs: u64, nodes: &[&str], failover: bool) {
    let watch = failover.then(|| node::monitor_node(nodes[0]).expect("cannot watch the first node"));
    let mb = Mailbox::<Ready>::new();
    let me = mb.process();
    let mut sup = Supervisor::new(Strategy::OneForOne).intensity(jobs as u32 + 2 * WORKERS, Duration::from_secs(10));
    for i in 1..=WORKERS {
        sup = sup.child(ChildSpec::worker_on(&format!("worker-{i}"), nodes, worker, (i, me)));
    }
    let sup = sup.start_link().expect("the pool did not start");
    let mut pool = Pool { mb, workers: HashMap::new() };
    for i in 1..=WORKERS {
        pool.await_restart(i, None);
    }
    let here = node::name().unwrap_or_default();
    println!("pool: {WORKERS} workers on {} under a one_for_one supervisor on {here}", pool.workers[&1].node);
    let (mut ok, mut crashed) = pool.run(1, jobs);
    if let Some(watch) = watch {
        let lost = nodes[0];
        println!("pool: waiting for {lost} to go");
        let reason = loop {
            match pool.mb.receive_event(wisp::FOREVER) {
                Ok(Event::Down { monitor, reason, .. }) if monitor == watch => break reason,
                Ok(Event::Message(r)) => drop(pool.workers.insert(r.worker, r)),
                _ => {}
            }
        };
        println!("pool: lost {lost} ({reason})");
        for i in 1..=WORKERS {
            while pool.workers[&i].node == lost {
                let r = pool.mb.receive_timeout(Duration::from_secs(60)).expect("no worker came back");
                pool.workers.insert(r.worker, r);
            }
        }
        println!("pool: {WORKERS} workers restarted on {}", pool.workers[&1].node);
        let (o, c) = pool.run(jobs + 1, 2 * jobs);
        ok += o;
        crashed += c;
    }
    let children = sup.which_children().expect("the supervisor is gone");
    let alive = children.iter().filter(|c| c.pid.is_some_and(|p| p.is_alive())).count();
    let total = if failover { 2 * jobs } else { jobs };
    println!("pool: {total} jobs, {ok} results, {crashed} crashes survived, {alive} workers alive");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("serve") => {
            println!("serving on {}", node::name().expect("run with wisp run --sname NAME"));
            loop {
                wisp::sleep(Duration::from_secs(3600));
            }
        }
        Some("boss") if args.len() >= 4 => {
            let jobs = args[2].parse().expect("jobs: a number");
            let failover = args.iter().any(|a| a == "--failover");
            let nodes: Vec<&str> = args[3..].iter().map(String::as_str).filter(|a| !a.starts_with("--")).collect();
            boss(jobs, &nodes, failover);
        }
        _ => {
            eprintln!("usage: dist_pool serve | dist_pool boss JOBS NODE [NODE...] [--failover]");
            std::process::exit(2);
        }
    }
}
