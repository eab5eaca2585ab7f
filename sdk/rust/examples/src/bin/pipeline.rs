//! pipeline — a tiny shell for WASI programs (wisp::program): it runs
//! `PROG ARGS | PROG ARGS | ...`, each program a process of its own whose
//! stdout is piped into the next one's stdin (the first reads this
//! process's stdin, the last writes its stdout), then says how each ended.
//! Any wasm32-wasi command module is a program: this example is one too,
//! with a few filters of its own, so it can run itself.
//!
//!   pipeline run 'PROG ARGS | PROG ARGS ...'   PROG: a .wasm file this process may read
//!   pipeline upper | rev | wc | crash          act as that filter, stdin to stdout
//!
//! ```text
//! cargo build --release --bin pipeline
//! cd target/wasm32-wasip1/release
//! printf 'hello world\nsecond line\n' | wisp run --dir .::/bin pipeline.wasm \
//!     run '/bin/pipeline.wasm upper | /bin/pipeline.wasm rev | /bin/pipeline.wasm wc'
//! ```
//!
//! prints `2 4 24`. A stage that fails (`crash` panics) is reported on
//! stderr with its exit reason, and the others go on; the exit status is
//! the last stage's.
use std::io::{self, Read, Write};

use wisp::program::{Child, Program, Stdio};

/// Start every stage, each reading the previous one's stdout.
fn start(stages: &[Vec<&str>]) -> Result<Vec<Child>, String> {
    let mut children: Vec<Child> = Vec::new();
    for (i, words) in stages.iter().enumerate() {
        let mut p = Program::from_path(words[0]);
        p.args(&words[1..]);
        if let Some(prev) = children.last_mut() {
            // The previous stage's stdout becomes this one's stdin (the
            // caller's copy closes with `p`, at the end of this iteration).
            p.stdin(prev.stdout.take().expect("piped"));
        }
        if i + 1 < stages.len() {
            p.stdout(Stdio::piped());
        }
        children.push(p.spawn().map_err(|e| format!("stage {} ({}): {e}", i + 1, words[0]))?);
    }
    Ok(children)
}

fn run(line: &str) -> i32 {
    let stages: Vec<Vec<&str>> = line.split('|').map(|s| s.split_whitespace().collect()).collect();
    if stages.iter().any(|s| s.is_empty()) {
        eprintln!("pipeline: an empty stage in {line:?}");
        return 2;
    }
    let mut children = match start(&stages) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pipeline: {e}");
            return 1;
        }
    };
    let mut last = 0;
    for (i, child) in children.iter_mut().enumerate() {
        let status = child.wait().expect("wait");
        if !status.success() {
            eprintln!("pipeline: stage {} ({}) ended: {status}", i + 1, stages[i][0]);
        }
        last = status.code().unwrap_or(1);
    }
    last
}

/// This program as a filter.
fn filter(name: &str) -> i32 {
    let mut input = String::new();
    io::stdin().read_to_string(&mut input).expect("stdin");
    let mut out = io::stdout().lock();
    let written = match name {
        "upper" => write!(out, "{}", input.to_uppercase()),
        "rev" => input.lines().try_for_each(|l| writeln!(out, "{}", l.chars().rev().collect::<String>())),
        "wc" => writeln!(out, "{} {} {}", input.lines().count(), input.split_whitespace().count(), input.len()),
        "crash" => panic!("a filter that crashes"),
        _ => {
            eprintln!("usage: pipeline run 'PROG ARGS | ...' | pipeline upper|rev|wc|crash");
            return 2;
        }
    };
    match written {
        Ok(()) => 0,
        // (The next stage is gone: end quietly, as a filter killed by SIGPIPE does.)
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => 141,
        Err(e) => panic!("stdout: {e}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let code = match args.get(1).map(String::as_str) {
        Some("run") if args.len() == 3 => run(&args[2]),
        Some(name) => filter(name),
        None => filter(""),
    };
    std::process::exit(code);
}
