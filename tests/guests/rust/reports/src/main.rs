//! reports — crash and supervisor reports of Rust processes, and panics as
//! exit reasons (tests/e2e/test_crash_reports.py).
//!
//!   down        a child panics (index out of bounds); print its Down reason
//!   supervisor  a worker that always panics under a one_for_one supervisor
//!               (2 restarts a minute): restarts, then the supervisor gives up
//!   main        the main process panics
use std::time::Duration;

use wisp::{ChildSpec, Event, Mailbox, Strategy, Supervisor};

fn out_of_bounds(_: (), _mb: Mailbox<()>) {
    let v: Vec<u32> = Vec::new();
    let i = std::hint::black_box(3);
    println!("{}", v[i]);
}

fn always_crash(_: (), _mb: Mailbox<()>) {
    panic!("worker gives up");
}

#[wisp::main]
fn main(mb: Mailbox<()>) {
    let mode = std::env::args().nth(1).unwrap_or_default();
    match mode.as_str() {
        "down" => {
            let (_p, _mon) = wisp::spawn_monitor((), out_of_bounds).unwrap();
            match mb.receive_event(Duration::from_secs(30)).unwrap() {
                Event::Down { reason, .. } => println!("down {reason:?}"),
                other => println!("unexpected {other:?}"),
            }
        }
        "supervisor" => {
            wisp::trap_exits(true);
            let sup = Supervisor::new(Strategy::OneForOne)
                .intensity(2, Duration::from_secs(60))
                .child(ChildSpec::worker("crasher", always_crash, ()))
                .start_link()
                .unwrap();
            match mb.receive_event(Duration::from_secs(30)).unwrap() {
                Event::Exit { from, reason } if from == sup.pid() => println!("supervisor ended: {reason}"),
                other => println!("unexpected {other:?}"),
            }
        }
        "main" => panic!("main gives up"),
        "wait" => {
            let w = wisp::spawn((), waiter).unwrap();
            println!("up {}", w.pid());
            let _ = mb.receive();
        }
        _ => println!("usage: reports down|supervisor|main|wait"),
    }
}

/// Mode `wait` (tests/e2e/test_inspect.py; not listed above, which would
/// move the lines the other tests name): main spawns this, prints "up
/// <its pid>" and waits. It waits for ever in a receive, under the crate's
/// functions (what wisp ps and wisp inspect show: Rust's names, demangled).
fn waiter(_: (), mb: Mailbox<()>) {
    let _ = mb.receive();
}
