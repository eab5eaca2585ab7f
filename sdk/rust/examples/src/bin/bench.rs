//! bench — figures for a minimal Rust process: `bench spawn N` spawns N idle
//! processes (each parked in receive), prints the spawn rate, then "ready"
//! and sleeps 3 s so the runner's RSS can be read; `bench call N` times N
//! `call` round trips to a server; `bench pids N` times N local messages
//! that each carry a process handle the receiver answers through (run it
//! with and without `--sname`: pids are u64s in a runtime that is no node,
//! in the portable form on a node), and N encodings and decodings of a
//! pid alone.
use std::time::{Duration, Instant};

use wisp::server::{Context, Handlers};
use serde::{Deserialize, Serialize};
use wisp::{Handle, Mailbox, Pid, Process, Server};

fn idle(_: (), mb: Mailbox<()>) {
    let _ = mb.receive();
}

struct Echo;
impl Server for Echo {
    type Arg = ();
    fn init(_: (), _cx: &mut Context<Self>) -> Result<Self, String> {
        Ok(Echo)
    }
    fn handlers(h: &mut Handlers<Self>) {
        h.handle::<u64>();
    }
}
impl Handle<u64> for Echo {
    type Reply = u64;
    fn handle(&mut self, n: u64, _cx: &mut Context<Self>) -> u64 {
        n + 1
    }
}

#[derive(Serialize, Deserialize)]
struct Ping {
    n: u64,
    reply_to: Process<u64>,
}

fn ponger(_: (), mb: Mailbox<Ping>) {
    while let Ok(p) = mb.receive() {
        p.reply_to.send(&p.n);
    }
}

fn per(n: u64, t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e6 / n.max(1) as f64
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    match args.get(1).map(String::as_str) {
        Some("spawn") => {
            let t = Instant::now();
            for _ in 0..n {
                wisp::spawn((), idle).unwrap();
            }
            let dt = t.elapsed();
            println!("spawned {n} in {:.3} s: {:.1} us/spawn", dt.as_secs_f64(), dt.as_secs_f64() * 1e6 / n.max(1) as f64);
            println!("ready");
            wisp::sleep(Duration::from_secs(3));
        }
        Some("call") => {
            let s = Echo::start(()).unwrap();
            for i in 0..1000 {
                s.call(&i).unwrap();
            }
            let t = Instant::now();
            for i in 0..n {
                assert_eq!(s.call(&i).unwrap(), i + 1);
            }
            let dt = t.elapsed();
            println!("{n} calls in {:.3} s: {:.2} us/call", dt.as_secs_f64(), dt.as_secs_f64() * 1e6 / n as f64);
        }
        Some("pids") => {
            let mb = Mailbox::<u64>::new();
            let me = mb.process();
            let pong = wisp::spawn((), ponger).unwrap();
            for n in 0..1000 {
                pong.send(&Ping { n, reply_to: me });
                mb.receive().unwrap();
            }
            let t = Instant::now();
            for n in 0..n {
                pong.send(&Ping { n, reply_to: me });
                assert_eq!(mb.receive().unwrap(), n);
            }
            let round = per(n, t);
            let pid = me.pid();
            let t = Instant::now();
            let mut bytes = 0;
            for _ in 0..n {
                let b = wisp::codec::encode(&pid).unwrap();
                bytes = b.len();
                let back: Pid = wisp::codec::decode(&b).unwrap();
                assert_eq!(back, pid);
            }
            let codec = per(n, t);
            let node = wisp::node::name().unwrap_or_else(|| "no node".into());
            println!("{node}: {round:.2} us per round trip carrying a pid; a pid encodes in {bytes} bytes, \
                      {codec:.3} us to encode and decode");
        }
        _ => eprintln!("usage: bench spawn|call|pids N"),
    }
}
