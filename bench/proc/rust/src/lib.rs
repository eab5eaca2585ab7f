//! procbench -- what every Rust guest in bench/proc/rust/src/bin/ shares.
//!
//! Each binary is one workload of bench/proc_run.py with the same semantics
//! as bench/proc/c/*.c, bench/proc/erlang/procbench.erl and
//! bench/proc/go/main.go. The main process reads its sizes from argv, times
//! the workload itself and prints one line
//!
//!     RESULT key=value ...
//!
//! (idle and sleepers: `READY n=N` first), so the harness compares runtimes
//! apart from their start-up. Spawned processes print nothing; a failure
//! ends the guest with exit status 1 and a message on stderr.
//!
//! Only the crate's most basic calls are used, on purpose (its API is still
//! moving): `wisp::spawn`, `Mailbox::new`, `Mailbox::receive`,
//! `Mailbox::process`, `Process::send` and `wisp::sleep`.
//!
//! Build: cd bench/proc/rust && ../../../scripts/cargo-wasm build --release

/// argv[i] as a count (> 0, or >= 0 with `zero_ok`); exits with a usage
/// message otherwise.
pub fn arg(i: usize, usage: &str, zero_ok: bool) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    match args.get(i).and_then(|a| a.parse::<u64>().ok()) {
        Some(v) if v > 0 || zero_ok => v,
        _ => {
            let name = args.first().map(String::as_str).unwrap_or("procbench");
            eprintln!("usage: {name} {usage}");
            std::process::exit(2)
        }
    }
}

/// Ends the guest with status 1 and a message naming what failed.
pub fn die(what: &str, err: impl std::fmt::Debug) -> ! {
    eprintln!("procbench: {what} failed: {err:?}");
    std::process::exit(1)
}

/// Parks the calling process for good (the harness kills the program).
pub fn park_forever() -> ! {
    loop {
        wisp::sleep(std::time::Duration::from_secs(3600));
    }
}
