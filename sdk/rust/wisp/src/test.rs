//! The test harness behind [`test_main!`](crate::test_main): each test runs
//! as its own process, so a panic (a trap) fails that test only.
//!
//! Output is libtest's: `running N tests`, `test name ... ok|FAILED`, the
//! failures, `test result: ...`, exit status 101 on failure. Arguments: a
//! substring filter, `--exact`, `--list`, `--timeout=SECONDS` (per test,
//! default 60); libtest's other flags (`--nocapture`, `--test-threads`, ...)
//! are accepted and ignored. Tests run one at a time and their output is
//! not captured: what a test prints appears just before its result line.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::fnptr::fn_at;
use crate::mailbox::Mailbox;
use crate::message::receive_raw;
use crate::process::ExitReason;
use crate::spawn::spawn_monitor;
use crate::time::timeout_ns;

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
                timeout = Duration::from_secs_f64(s[10..].parse().unwrap_or(60.0));
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
