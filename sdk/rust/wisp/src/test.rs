//! Tests as processes: [`#[wisp::test]`](macro@crate::test) with libtest, and
//! the older harness [`test_main!`](crate::test_main). Each test runs as its
//! own process, so a panic (a trap) fails that test only.
//!
//! # `#[wisp::test]`
//!
//! A drop-in for `#[test]`: the attribute turns the function into a
//! libtest `#[test]` that calls [`run_test`], which spawns the body as a
//! process, waits for it to end and returns `Err(`[`Failure`]`)` when it
//! failed. No panic ever happens in libtest's own process (under
//! `panic = "abort"`, the only strategy on wasm32-wasip1, one would end the
//! whole run). The child's panic hook sends the panic's message and
//! location to the test's process before the child traps, so a failure
//! reads `test panicked at tests/kv.rs:12:5: ...`.
//!
//! ```
//! #[wisp::test]
//! fn adds() {
//!     assert_eq!(1 + 1, 2);
//! }
//!
//! #[wisp::test]
//! #[should_panic(expected = "divide by zero")]
//! fn divides() {
//!     let zero = std::hint::black_box(0);
//!     let _ = 1 / zero;
//! }
//! # fn main() {}
//! ```
//!
//! # `test_main!`
//!
//! Output is libtest's: `running N tests`, `test name ... ok|FAILED`, the
//! failures, `test result: ...`, exit status 101 on failure. Arguments: a
//! substring filter, `--exact`, `--list`, `--timeout=SECONDS` (per test,
//! default 60); libtest's other flags (`--nocapture`, `--test-threads`, ...)
//! are accepted and ignored. Tests run one at a time and their output is
//! not captured: what a test prints appears just before its result line.

use std::fmt;
use std::io::Write;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::fnptr::fn_at;
use crate::mailbox::Mailbox;
use crate::message::receive_raw;
use crate::process::{self_pid, ExitReason, Pid};
use crate::spawn::spawn_monitor;
use crate::time::{timeout_ns, FOREVER};
use crate::{codec, sys};

/// The tag of a test process's report to the test runner.
const TAG_TEST_REPORT: u64 = 8;

/// The default time a [`#[wisp::test]`](macro@crate::test) may run.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Whether a test must panic (`#[should_panic]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShouldPanic {
    /// It must not.
    No,
    /// It must.
    Yes,
    /// It must, with a message containing this text.
    YesWithMessage(&'static str),
}

/// What [`#[wisp::test]`](macro@crate::test) knows about a test.
#[derive(Clone, Copy, Debug)]
pub struct TestSpec {
    /// Its path (`module::name`).
    pub name: &'static str,
    /// `#[should_panic]`.
    pub should_panic: ShouldPanic,
    /// How long it may run ([`DEFAULT_TIMEOUT`] when `None`).
    pub timeout: Option<Duration>,
}

/// Why a test failed: libtest prints it (`Error: test panicked at
/// src/lib.rs:3:5: ...`).
#[derive(Clone, PartialEq, Eq)]
pub struct Failure(pub String);

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

/// What a test function may return: `()` or `Result<(), E: Debug>`.
pub trait TestOutcome {
    /// Why it failed, if it did.
    fn failure(self) -> Option<String>;
}

impl TestOutcome for () {
    fn failure(self) -> Option<String> {
        None
    }
}

impl<E: fmt::Debug> TestOutcome for Result<(), E> {
    fn failure(self) -> Option<String> {
        self.err().map(|e| format!("the test returned Err({e:?})"))
    }
}

/// What a test process tells the runner before it ends.
#[derive(Serialize, Deserialize, Debug)]
enum Report {
    /// `message` is cut to [`REPORT_MAX`] bytes; `expected`: whether the
    /// whole of it contains the text `should_panic` expects (the child
    /// checks, as a cut message may have lost it).
    Panicked { message: String, location: String, expected: bool },
    Failed(String),
}

/// The most of a panic message (or a failure) a report carries: a report
/// must fit in a message whatever the test panicked with.
const REPORT_MAX: usize = 64 << 10;

/// `text`, cut to at most [`REPORT_MAX`] bytes at a character boundary,
/// saying how much was cut.
fn cut(text: &str) -> String {
    if text.len() <= REPORT_MAX {
        return text.to_string();
    }
    let mut end = REPORT_MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} more bytes)", &text[..end], text.len() - end)
}

fn send_report(to: Pid, r: &Report) {
    let _ = to.send_tagged(TAG_TEST_REPORT, r);
}

/// The test process: report panics and failures to `runner`, run the body.
/// A panic ends it with the panic as its reason ([`ExitReason::Panic`]);
/// its crash report (stderr) is at level error unless the test expects
/// the panic (then info: not shown by default).
fn test_child<M, R: TestOutcome>(
    (runner, body, report_panics, expected): (Pid, u32, bool, Option<String>),
    mb: Mailbox<M>,
) {
    std::panic::set_hook(Box::new(move |info| {
        let p = info.payload();
        let message = match (p.downcast_ref::<&str>(), p.downcast_ref::<String>()) {
            (Some(s), _) => s,
            (_, Some(s)) => s.as_str(),
            _ => "Box<dyn Any>",
        };
        let location = info.location().map(|l| l.to_string()).unwrap_or_else(|| "<unknown>".into());
        let found = expected.as_deref().is_some_and(|t| message.contains(t));
        send_report(runner, &Report::Panicked { message: cut(message), location, expected: found });
        let text = crate::process::panic_text(p, info.location());
        crate::process::end_with_panic(&text, if report_panics { 0 } else { sys::PANIC_QUIET })
    }));
    // SAFETY: run_test made `body` from a `fn(Mailbox<M>) -> R` with the M
    // and R it instantiated this function with, and only run_test spawns it.
    let f: fn(Mailbox<M>) -> R = unsafe { fn_at(body) };
    if let Some(why) = f(mb).failure() {
        send_report(runner, &Report::Failed(cut(&why)));
        std::process::exit(1);
    }
}

/// Run one test as its own process and say how it went: the body of every
/// [`#[wisp::test]`](macro@crate::test). `body` runs in a new process with a
/// mailbox; the test passes if it returns (`Ok`/`()`) within the timeout,
/// or, with [`ShouldPanic`], if it panics (with the expected text).
/// Nothing here panics.
pub fn run_test<M, R: TestOutcome>(spec: TestSpec, body: fn(Mailbox<M>) -> R) -> Result<(), Failure> {
    let timeout = spec.timeout.unwrap_or(DEFAULT_TIMEOUT);
    let report_panics = spec.should_panic == ShouldPanic::No;
    let expected = match spec.should_panic {
        ShouldPanic::YesWithMessage(text) => Some(text.to_string()),
        _ => None,
    };
    let (p, mon) = spawn_monitor((self_pid(), body as usize as u32, report_panics, expected), test_child::<M, R>)
        .map_err(|e| Failure(format!("cannot start the test process: {e}")))?;
    let reason = match receive_raw(&[mon.raw()], timeout_ns(timeout)) {
        Ok(env) => ExitReason::from_bytes(&env.bytes).unwrap_or(ExitReason::Trap("malformed exit reason".into())),
        Err(_) => {
            p.kill();
            let _ = receive_raw(&[mon.raw()], timeout_ns(FOREVER));
            return Err(Failure(format!("{}: timed out after {:?} (killed)", spec.name, timeout)));
        }
    };
    // The child's report, sent before it ended; reports of earlier tests'
    // processes (one that timed out) are dropped.
    let mut report = None;
    while let Ok(env) = receive_raw(&[TAG_TEST_REPORT], sys::NOWAIT) {
        if env.from == p.pid() {
            report = codec::decode::<Report>(&env.bytes).ok();
        }
    }
    judge(spec.should_panic, &reason, report)
}

fn judge(should_panic: ShouldPanic, reason: &ExitReason, report: Option<Report>) -> Result<(), Failure> {
    let fail = |s: String| Err(Failure(s));
    match (reason, report, should_panic) {
        (ExitReason::Normal, _, ShouldPanic::No) => Ok(()),
        (ExitReason::Normal, _, _) => fail("the test did not panic as expected".into()),
        (ExitReason::Panic(_) | ExitReason::Trap(_), Some(Report::Panicked { message, location, expected }), expect) => match expect {
            ShouldPanic::No => fail(format!("test panicked at {location}:\n{message}")),
            ShouldPanic::Yes => Ok(()),
            ShouldPanic::YesWithMessage(_) if expected => Ok(()),
            ShouldPanic::YesWithMessage(text) => fail(format!(
                "panic did not contain the expected string\n      panic message: {message:?}\n expected substring: {text:?}\n      (at {location})"
            )),
        },
        (_, Some(Report::Failed(why)), _) => fail(why),
        (r, _, _) => fail(format!("the test process ended: {r}")),
    }
}

/// Run `f` (a `fn()` given as its table index) in this process.
fn run_one(f: u32, _mb: Mailbox<()>) {
    // SAFETY: `run` made `f` from a `fn()`, and only `run` spawns this
    // private function.
    let f: fn() = unsafe { fn_at(f) };
    f();
}

/// Run the tests (name, function) with the process's arguments; never returns.
pub fn run(tests: &[(&str, fn())]) -> ! {
    let mut filters = Vec::new();
    let (mut exact, mut list) = (false, false);
    let mut timeout = Duration::from_secs(60);
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--exact" => exact = true,
            "--list" => list = true,
            s if s.starts_with("--timeout=") => {
                // (A value that is no duration — negative, NaN, huge — keeps the default.)
                timeout = s[10..].parse().ok().and_then(|v| Duration::try_from_secs_f64(v).ok()).unwrap_or(timeout);
            }
            s if s.starts_with('-') => {}
            s => filters.push(s.to_string()),
        }
    }
    let selected: Vec<_> = tests
        .iter()
        .filter(|(name, _)| {
            filters.is_empty() || filters.iter().any(|f| if exact { name == f } else { name.contains(f.as_str()) })
        })
        .collect();
    if list {
        for (name, _) in &selected {
            println!("{name}: test");
        }
        std::process::exit(0);
    }
    let filtered = tests.len() - selected.len();
    let start = Instant::now();
    println!("\nrunning {} test{}", selected.len(), if selected.len() == 1 { "" } else { "s" });
    let mut failures = Vec::new();
    for (name, f) in &selected {
        let outcome = match spawn_monitor(*f as usize as u32, run_one) {
            Err(e) => Err(format!("spawn failed: {e}")),
            Ok((p, mon)) => match receive_raw(&[mon.raw()], timeout_ns(timeout)) {
                Ok(env) => match ExitReason::from_bytes(&env.bytes) {
                    Some(ExitReason::Normal) => Ok(()),
                    Some(r) => Err(format!("the test process ended: {r}")),
                    None => Err("malformed exit reason".into()),
                },
                Err(_) => {
                    p.kill();
                    mon.demonitor();
                    Err(format!("timed out after {timeout:?} (killed)"))
                }
            },
        };
        match outcome {
            Ok(()) => println!("test {name} ... ok"),
            Err(why) => {
                println!("test {name} ... FAILED");
                failures.push((name, why));
            }
        }
        let _ = std::io::stdout().flush();
    }
    if !failures.is_empty() {
        println!("\nfailures:\n");
        for (name, why) in &failures {
            println!("---- {name} ----\n{why}\n");
        }
        println!("failures:");
        for (name, _) in &failures {
            println!("    {name}");
        }
    }
    let passed = selected.len() - failures.len();
    println!(
        "\ntest result: {}. {} passed; {} failed; 0 ignored; 0 measured; {} filtered out; finished in {:.2}s\n",
        if failures.is_empty() { "ok" } else { "FAILED" },
        passed,
        failures.len(),
        filtered,
        start.elapsed().as_secs_f64()
    );
    let _ = std::io::stdout().flush();
    std::process::exit(if failures.is_empty() { 0 } else { 101 })
}

/// Define `main` for a test binary (`harness = false` in Cargo.toml) that
/// runs each listed `fn()` as its own wisp process, with libtest-like
/// output. A test passes if its function returns; it fails if it panics
/// (any trap), exits with a nonzero code, is killed, or times out.
///
/// ```no_run
/// fn adds() { assert_eq!(1 + 1, 2); }
/// fn fails() { panic!("only this test fails"); }
/// wisp::test_main!(adds, fails);
/// ```
#[macro_export]
macro_rules! test_main {
    ($($name:ident),* $(,)?) => {
        fn main() {
            $crate::test::run(&[$((stringify!($name), $name as fn())),*])
        }
    };
}
