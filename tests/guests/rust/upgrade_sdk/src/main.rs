//! upgrade_sdk — servers of the wisp crate moving onto a new version of the
//! program (hot code reload), built twice: version 1 (default) and
//! version 2 (`--features v2`). tests/e2e/test_upgrade_sdk.py drives it.
//!
//! The servers, all answering `Incr`, `Set(n)` and `Get` with "vV N":
//! - counter: moves by itself; version 2 keeps the count in a u32 and
//!   converts version 1's u64 (refusing one that does not fit, panicking
//!   on 666);
//! - manual: moves only when asked (`Upgrade::AUTOMATIC = false`), by
//!   main or by its supervisor; version 2 says so on stdout ("manual NAME
//!   moves to v2") and refuses a count of 99;
//! - unlisted: version 2 does not list it in `upgradable!`;
//! - bumped: version 2 raises its `VSN` and keeps the default `upgrade`;
//! - forgotten: implements `Upgrade` but no version lists it.
//! Each one's `upgrade_failed` prints "NAME stays on vV: REASON".
//!
//! main (which never moves: it is the run) reads commands on stdin:
//! `load PATH`, `start NAME`, `incr NAME`, `set NAME N`, `get NAME`,
//! `upgrade NAME`, `version`; and prints one line for each. Supervisors:
//! `sup start` starts "sup" with manual servers m1, m2 and a nested
//! supervisor "inner" with m3 (children are named by id: `incr m3`);
//! `supw start` one with a plain worker and m4; `sup upgrade`,
//! `supw upgrade` ask them to move; `kill ID` kills a child.
use std::borrow::Borrow;
use std::collections::HashMap;
use std::io::BufRead;

use serde::{Deserialize, Serialize};
#[cfg(feature = "v2")]
use wisp::server::OldState;
use wisp::server::{Context, Handle, Handlers, Handover, Server, Upgrade, UpgradeError};
use wisp::{ChildSpec, Pid, ServerRef, Strategy, Supervisor, SupervisorRef};

/// This build's version of the program.
const V: u32 = if cfg!(feature = "v2") { 2 } else { 1 };

#[derive(Serialize, Deserialize)]
struct Incr;
#[derive(Serialize, Deserialize)]
struct Set(u64);
#[derive(Serialize, Deserialize)]
struct Get;

// ---- counter ----

#[cfg(not(feature = "v2"))]
#[derive(Serialize, Deserialize)]
struct Counter {
    n: u64,
}

#[cfg(feature = "v2")]
#[derive(Serialize, Deserialize)]
struct Counter {
    n: u32,
    /// The version whose state this one was converted from.
    from: u32,
}

#[cfg(feature = "v2")]
#[derive(Deserialize)]
struct CounterV1 {
    n: u64,
}

impl Counter {
    fn show(&self) -> String {
        #[cfg(feature = "v2")]
        return format!("v{V} {} (from v{})", self.n, self.from);
        #[cfg(not(feature = "v2"))]
        return format!("v{V} {}", self.n);
    }
}

impl Server for Counter {
    type Arg = ();
    fn init(_: (), _: &mut Context<Self>) -> Result<Self, String> {
        #[cfg(feature = "v2")]
        return Ok(Counter { n: 0, from: 2 });
        #[cfg(not(feature = "v2"))]
        return Ok(Counter { n: 0 });
    }
    fn handlers(h: &mut Handlers<Self>) {
        h.handle::<Incr>().handle::<Set>().handle::<Get>();
    }
}

impl Handle<Incr> for Counter {
    type Reply = String;
    fn handle(&mut self, _: Incr, _: &mut Context<Self>) -> String {
        self.n += 1;
        self.show()
    }
}

impl Handle<Set> for Counter {
    type Reply = String;
    fn handle(&mut self, Set(n): Set, _: &mut Context<Self>) -> String {
        self.n = n as _;
        self.show()
    }
}

impl Handle<Get> for Counter {
    type Reply = String;
    fn handle(&mut self, _: Get, _: &mut Context<Self>) -> String {
        self.show()
    }
}

impl Handover for Counter {
    type Saved = Counter;
    fn save(&self) -> Result<impl Borrow<Counter>, String> {
        Ok(self)
    }
    fn restore(saved: Counter, _: &mut Context<Self>) -> Result<Self, String> {
        Ok(saved)
    }
}

#[cfg(not(feature = "v2"))]
impl Upgrade for Counter {
    fn upgrade_failed(&mut self, error: &UpgradeError, _: &mut Context<Self>) {
        println!("counter stays on v{V}: {error}");
    }
}

#[cfg(feature = "v2")]
impl Upgrade for Counter {
    const VSN: u32 = 2;
    fn upgrade(old: OldState<'_>, cx: &mut Context<Self>) -> Result<Self, String> {
        match old.vsn() {
            1 => {
                let v1: CounterV1 = old.decode()?;
                if v1.n == 666 {
                    panic!("version 2 will not take 666");
                }
                let n = u32::try_from(v1.n).map_err(|_| format!("count {} does not fit version 2's u32", v1.n))?;
                Ok(Counter { n, from: 1 })
            }
            _ => Self::restore(old.decode()?, cx),
        }
    }
    fn upgrade_failed(&mut self, error: &UpgradeError, _: &mut Context<Self>) {
        println!("counter stays on v{V}: {error}");
    }
}

// ---- manual, unlisted, bumped, forgotten: a count each ----

macro_rules! simple_server {
    ($t:ident, $name:literal, $vsn:expr, $auto:expr) => {
        #[derive(Serialize, Deserialize)]
        struct $t {
            n: u64,
        }

        impl Server for $t {
            type Arg = ();
            fn init(_: (), _: &mut Context<Self>) -> Result<Self, String> {
                Ok($t { n: 0 })
            }
            fn handlers(h: &mut Handlers<Self>) {
                h.handle::<Incr>().handle::<Set>().handle::<Get>();
            }
        }

        impl Handle<Incr> for $t {
            type Reply = String;
            fn handle(&mut self, _: Incr, _: &mut Context<Self>) -> String {
                self.n += 1;
                format!("v{V} {}", self.n)
            }
        }

        impl Handle<Set> for $t {
            type Reply = String;
            fn handle(&mut self, Set(n): Set, _: &mut Context<Self>) -> String {
                self.n = n;
                format!("v{V} {}", self.n)
            }
        }

        impl Handle<Get> for $t {
            type Reply = String;
            fn handle(&mut self, _: Get, _: &mut Context<Self>) -> String {
                format!("v{V} {}", self.n)
            }
        }

        impl Handover for $t {
            type Saved = $t;
            fn save(&self) -> Result<impl Borrow<$t>, String> {
                Ok(self)
            }
            fn restore(saved: $t, _: &mut Context<Self>) -> Result<Self, String> {
                Ok(saved)
            }
        }

        impl Upgrade for $t {
            const VSN: u32 = $vsn;
            const AUTOMATIC: bool = $auto;
            fn upgrade_failed(&mut self, error: &UpgradeError, _: &mut Context<Self>) {
                println!("{} stays on v{V}: {error}", $name);
            }
        }
    };
}

// ---- manual: named, moves when asked ----

#[derive(Serialize, Deserialize)]
struct Manual {
    name: String,
    n: u64,
}

impl Server for Manual {
    type Arg = String;
    fn init(name: String, _: &mut Context<Self>) -> Result<Self, String> {
        Ok(Manual { name, n: 0 })
    }
    fn handlers(h: &mut Handlers<Self>) {
        h.handle::<Incr>().handle::<Set>().handle::<Get>();
    }
}

impl Handle<Incr> for Manual {
    type Reply = String;
    fn handle(&mut self, _: Incr, _: &mut Context<Self>) -> String {
        self.n += 1;
        format!("v{V} {}", self.n)
    }
}

impl Handle<Set> for Manual {
    type Reply = String;
    fn handle(&mut self, Set(n): Set, _: &mut Context<Self>) -> String {
        self.n = n;
        format!("v{V} {}", self.n)
    }
}

impl Handle<Get> for Manual {
    type Reply = String;
    fn handle(&mut self, _: Get, _: &mut Context<Self>) -> String {
        format!("v{V} {}", self.n)
    }
}

impl Handover for Manual {
    type Saved = Manual;
    fn save(&self) -> Result<impl Borrow<Manual>, String> {
        Ok(self)
    }
    fn restore(saved: Manual, _: &mut Context<Self>) -> Result<Self, String> {
        Ok(saved)
    }
}

impl Upgrade for Manual {
    const AUTOMATIC: bool = false;
    #[cfg(feature = "v2")]
    fn upgrade(old: OldState<'_>, cx: &mut Context<Self>) -> Result<Self, String> {
        let m: Manual = old.decode()?;
        if m.n == 99 {
            return Err(format!("manual {} will not take 99", m.name));
        }
        println!("manual {} moves to v{V}", m.name);
        Self::restore(m, cx)
    }
    fn upgrade_failed(&mut self, error: &UpgradeError, _: &mut Context<Self>) {
        println!("manual {} stays on v{V}: {error}", self.name);
    }
}

/// A plain process: a supervisor's worker.
fn worker(_: (), mb: wisp::Mailbox<()>) {
    while mb.receive().is_ok() {}
}
simple_server!(Unlisted, "unlisted", 1, true);
simple_server!(Bumped, "bumped", V, true);
simple_server!(Forgotten, "forgotten", 1, false);

#[cfg(not(feature = "v2"))]
wisp::upgradable!(Counter, Manual, Unlisted, Bumped);
#[cfg(feature = "v2")]
wisp::upgradable!(Counter, Manual, Bumped);

// ---- main: the commands ----

fn start(kind: &str) -> Result<Pid, String> {
    let r = match kind {
        "counter" => Counter::start(()).map(|s| s.pid()),
        "manual" => Manual::start(kind.to_string()).map(|s| s.pid()),
        "unlisted" => Unlisted::start(()).map(|s| s.pid()),
        "bumped" => Bumped::start(()).map(|s| s.pid()),
        "forgotten" => Forgotten::start(()).map(|s| s.pid()),
        _ => return Err(format!("no kind {kind}")),
    };
    r.map_err(|e| e.to_string())
}

/// The kind of a server's name: "counter2" is a counter.
fn kind(name: &str) -> &str {
    match name.trim_end_matches(|c: char| c.is_ascii_digit()) {
        "m" => "manual",
        k => k,
    }
}

macro_rules! on {
    ($kind:expr, $pid:expr, |$r:ident| $body:expr) => {
        match $kind {
            "counter" => { let $r = ServerRef::<Counter>::from_pid($pid); $body }
            "manual" => { let $r = ServerRef::<Manual>::from_pid($pid); $body }
            "unlisted" => { let $r = ServerRef::<Unlisted>::from_pid($pid); $body }
            "bumped" => { let $r = ServerRef::<Bumped>::from_pid($pid); $body }
            _ => { let $r = ServerRef::<Forgotten>::from_pid($pid); $body }
        }
    };
}

fn start_sup(which: &str) -> Result<SupervisorRef, String> {
    let manual = |id: &str| ChildSpec::server::<Manual>(id, id.to_string());
    let sup = match which {
        "sup" => Supervisor::new(Strategy::OneForOne)
            .child(manual("m1"))
            .child(manual("m2"))
            .child(ChildSpec::supervisor("inner", Supervisor::new(Strategy::OneForOne).child(manual("m3")))),
        _ => Supervisor::new(Strategy::OneForOne).child(ChildSpec::worker("w", worker, ())).child(manual("m4")),
    };
    sup.start_link().map_err(|e| e.to_string())
}

/// A supervised child's pid, by id (m3 is inner's).
fn child(sups: &HashMap<String, SupervisorRef>, id: &str) -> Option<Pid> {
    let sup = sups.get(if id == "m4" { "supw" } else { "sup" })?;
    match id {
        "m3" => SupervisorRef::from_pid(sup.child("inner")?).child(id),
        _ => sup.child(id),
    }
}

fn command(servers: &mut HashMap<String, Pid>, sups: &mut HashMap<String, SupervisorRef>, line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    if let [which @ ("sup" | "supw"), verb] = words.as_slice() {
        return match *verb {
            "start" => match start_sup(which) {
                Ok(s) => {
                    sups.insert(which.to_string(), s);
                    format!("started {which}")
                }
                Err(e) => format!("{which} did not start: {e}"),
            },
            "upgrade" => match sups.get(*which) {
                Some(s) => format!("{which}: {:?}", s.upgrade()),
                None => format!("no {which}"),
            },
            _ => format!("bad command {line:?}"),
        };
    }
    if let ["kill", id] = words.as_slice() {
        return match child(sups, id) {
            Some(pid) => {
                pid.kill();
                // Until its supervisor has restarted it.
                while child(sups, id).map_or(true, |p| p == pid) {
                    wisp::sleep(std::time::Duration::from_millis(1));
                }
                format!("killed {id}")
            }
            None => format!("no child {id}"),
        };
    }
    if let [_, id, ..] = words.as_slice() {
        if id.starts_with('m') && id.len() == 2 {
            if let Some(pid) = child(sups, id) {
                servers.insert(id.to_string(), pid);
            }
        }
    }
    match words.as_slice() {
        ["load", path] => match std::fs::read(path) {
            Ok(bytes) => match wisp::code::load(&bytes) {
                Ok(v) => format!("loaded {v}"),
                Err(e) => format!("load failed: {e}"),
            },
            Err(e) => format!("cannot read {path}: {e}"),
        },
        ["version"] => format!("main runs v{} of {}", wisp::code::version(), wisp::code::current()),
        ["start", name] => match start(kind(name)) {
            Ok(pid) => {
                servers.insert(name.to_string(), pid);
                format!("started {name}")
            }
            Err(e) => format!("{name} did not start: {e}"),
        },
        [verb, name, rest @ ..] => {
            let Some(&pid) = servers.get(*name) else { return format!("no server {name}") };
            let reply = match (*verb, rest) {
                ("incr", []) => on!(kind(name), pid, |r| format!("{:?}", r.call(&Incr))),
                ("get", []) => on!(kind(name), pid, |r| format!("{:?}", r.call(&Get))),
                ("set", [n]) => {
                    let n: u64 = n.parse().unwrap_or(0);
                    on!(kind(name), pid, |r| format!("{:?}", r.call(&Set(n))))
                }
                ("upgrade", []) => on!(kind(name), pid, |r| format!("{:?}", r.upgrade())),
                _ => return format!("bad command {line:?}"),
            };
            format!("{name}: {reply}")
        }
        _ => format!("bad command {line:?}"),
    }
}

fn main() {
    let (mut servers, mut sups) = (HashMap::new(), HashMap::new());
    println!("ready v{V}");
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        println!("{}", command(&mut servers, &mut sups, &line));
    }
}
