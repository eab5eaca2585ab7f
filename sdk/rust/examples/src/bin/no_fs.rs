//! no_fs — a child spawned without file-system access: the parent reads a
//! file, the child (same code, same module) is refused, and the error says
//! which capability it lacks.
//!
//! Run: `cargo run --bin no_fs -- DIR` is not enough: the runner must grant
//! the directory, e.g. `wisp run --dir /tmp::/data no_fs.wasm /data/x.txt`.
use wisp::{Mailbox, Process};

/// Read `path` and say what happened.
fn try_read(path: &str) -> String {
    match wisp::fs::read_to_string(path) {
        Ok(text) => format!("read {} bytes", text.len()),
        Err(e) => format!("{:?}: {e}", e.kind()),
    }
}

#[wisp::main]
fn main(mailbox: Mailbox<String>) {
    let path = std::env::args().nth(1).unwrap_or_else(|| "/data/note.txt".into());
    wisp::fs::write(&path, "a note only the parent may read\n").expect("the runner must grant the directory");
    println!("parent: {}", try_read(&path));
    let me: Process<String> = mailbox.process();
    let sandboxed = wisp::spawn_without_fs((me, path.clone()), |(me, path), _: Mailbox<()>| {
        me.send(&try_read(&path));
    });
    sandboxed.expect("cannot spawn");
    println!("child without fs: {}", mailbox.receive().unwrap());
}
