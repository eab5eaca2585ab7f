//! bench — figures for a minimal Rust process: `bench spawn N` spawns N idle
//! processes (each parked in receive), prints the spawn rate, then "ready"
//! and sleeps 3 s so the runner's RSS can be read; `bench call N` times N
//! `call` round trips to a server.
use std::time::{Duration, Instant};

use wisp::server::{Context, Handlers};
use wisp::{Handle, Mailbox, Server};

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
        _ => eprintln!("usage: bench spawn|call N"),
    }
}
