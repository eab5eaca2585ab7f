//! threads — wasm32-wasip1 has no threads: spawning must fail cleanly with an
//! Err (the pthread stubs in the sysroot return ENOTSUP) rather than fail to
//! link or trap. The main thread's own facilities keep working.
use std::thread;
use std::time::Duration;

fn main() {
    let name = thread::current().name().unwrap_or("?").to_string();
    println!("main thread: {name}");
    match thread::Builder::new().name("worker".into()).spawn(|| 6 * 7) {
        Ok(handle) => println!("spawned, worker returned {}", handle.join().unwrap()),
        Err(e) => println!("spawn failed: {e} (kind {:?})", e.kind()),
    }
    thread::sleep(Duration::from_millis(1));
    println!("still running after sleep");
}
