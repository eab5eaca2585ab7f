//! Served files through the wisp crate (wisp::served), driven by
//! tests/e2e/test_served_sdk.py: this process serves a directory from
//! Rust and starts the unmodified WASI program tests/guests/c/files.c with
//! it mounted as /data (wisp::program's Program::mount_served), its stdout
//! piped; it prints what the program printed ("out: " first), its end
//! ("status REASON"), then what the server holds. Mirrors
//! tests/guests/c/served.c, the C server.
//!
//!   served_sdk MODULE MODE [FILES-ARGS...]
//!
//!   memfs        a MemFs (config.txt, sub/a.txt, sub/b.txt, and N more
//!                files with long names in sub/ when FILES-ARGS starts
//!                with a number N, which is dropped): files FILES-ARGS; then
//!                the server's report.txt and log.txt, and every file's
//!                path
//!   read-only    the same tree served read-only
//!   journal      a FileServer of its own that keeps every write and
//!                serves nothing else (the trait's defaults refuse the
//!                rest): files FILES-ARGS; then its journal
//!   die          a FileServer that ends (exit 9) when asked to read:
//!                files FILES-ARGS; then the server's end
//!   gone         a mount whose server has ended: the spawn's error
//!   attack LIMIT N FILES-ARGS [-- FILES-ARGS]...
//!                a MemFs (config.txt, sub/a.txt, sub/b.txt, and N more
//!                empty files in sub/ with 100-byte names) with
//!                size_limit LIMIT ("default": none set) serving one run
//!                of the program per FILES-ARGS, in turn; then whether
//!                the server still answers ("server config.txt: ...",
//!                "server snapshot: ok" or its error)
use std::io::Read;
use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};
use wisp::program::{Program, Stdio};
use wisp::served::{self, Errno, FileServer, FileStat, MemFs, OpenFlags, Opened, WriteAt};
use wisp::{Envelope, Pid, FOREVER};

/// Run files.c with /data served by `server`; print its output and end.
fn run(module: &[u8], server: Pid, args: &[String]) {
    let mut child = match Program::new(module.to_vec())
        .arg0("files")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .mount_served("/data", server)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            let kind = format!("{e:?}");
            println!("error {}: {e}", kind.split(['(', ' ']).next().unwrap());
            return;
        }
    };
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).expect("read");
    for line in out.lines() {
        println!("out: {line}");
    }
    let status = child.wait().expect("wait");
    println!("status {:?}", status.reason());
}

fn tree(many: usize) -> MemFs {
    let mut fs = MemFs::new()
        .with_file("config.txt", "name=wisp\ncolor=blue\nsize=3\n")
        .with_file("sub/a.txt", "alpha\n")
        .with_file("sub/b.txt", "beta\n");
    for i in 0..many {
        // 100-byte names: a listing of 50 is more than wasi-libc's 4 KiB
        // readdir buffer, so it takes several READDIRs, and entries cut
        // short at a buffer's end.
        fs.insert_file(&format!("sub/{i:03}-{}", "n".repeat(96)), vec![b'x'; i]).unwrap();
    }
    fs
}

fn memfs(module: &[u8], args: &[String], read_only: bool) {
    let (many, args) = match args.first().and_then(|a| a.parse::<usize>().ok()) {
        Some(n) => (n, &args[1..]),
        None => (0, args),
    };
    let fs = if read_only { tree(many).read_only() } else { tree(many) };
    let server = fs.spawn().expect("spawn the MemFs");
    run(module, server.pid(), args);
    // What the program wrote stays the server's.
    for name in ["report.txt", "log.txt"] {
        match server.read(name).expect("ask the server") {
            Some(b) => println!("server {name}: {:?}", String::from_utf8_lossy(&b)),
            None => println!("server {name}: none"),
        }
    }
    match server.snapshot() {
        Ok(fs) => {
            let files: Vec<String> = fs.files().map(|(p, _)| p.to_string()).collect();
            println!("server files: {}", files.join(" "));
        }
        Err(e) => println!("server files: error: {e}"),
    }
}

/// One MemFs, limited as `limit` says, serving each run in `runs` (split
/// at "--") in turn: what a hostile program leaves of its server for the
/// next.
fn attack(module: &[u8], limit: &str, many: &str, runs: &[String]) {
    let mut fs = tree(0);
    for i in 0..many.parse().expect("a number of files") {
        fs.insert_file(&format!("sub/{i:06}-{}", "n".repeat(93)), "").unwrap();
    }
    if limit != "default" {
        fs = fs.size_limit(limit.parse().expect("a size limit"));
    }
    let server = fs.spawn().expect("spawn the MemFs");
    for run_args in runs.split(|a| a == "--") {
        run(module, server.pid(), run_args);
    }
    match server.read("config.txt") {
        Ok(Some(b)) => println!("server config.txt: {:?}", String::from_utf8_lossy(&b)),
        Ok(None) => println!("server config.txt: none"),
        Err(e) => println!("server config.txt: error: {e}"),
    }
    match server.snapshot() {
        Ok(_) => println!("server snapshot: ok"),
        Err(e) => println!("server snapshot: error: {e}"),
    }
}

/// Keeps every write; serves nothing else. Its journal is answered to a
/// call ([`wisp::Process::call`]) with any message.
#[derive(Default, Serialize, Deserialize)]
struct Journal {
    open: Vec<String>,
    log: Vec<String>,
}

impl FileServer for Journal {
    fn open(&mut self, path: &str, flags: OpenFlags) -> Result<Opened, Errno> {
        self.log.push(format!("open {path:?} {flags:?}"));
        if path.is_empty() {
            return Ok(Opened::dir(0));
        }
        if flags.read {
            return Err(Errno::ACCES);
        }
        self.open.push(path.to_string());
        Ok(Opened::file(self.open.len() as u64))
    }

    fn write(&mut self, handle: u64, at: WriteAt, data: &[u8]) -> Result<usize, Errno> {
        let path = (handle as usize).checked_sub(1).and_then(|i| self.open.get(i)).ok_or(Errno::BADF)?;
        self.log.push(format!("write {path:?} {at:?} {:?}", String::from_utf8_lossy(data)));
        Ok(data.len())
    }

    fn close(&mut self, handle: u64) {
        self.log.push(format!("close {handle}"));
    }

    fn message(&mut self, env: Envelope) -> ControlFlow<()> {
        if let Some(to) = env.reply_to() {
            let _ = to.reply(&self.log);
        }
        ControlFlow::Continue(())
    }
}

/// Opens anything as a file of 10 bytes; ends (exit 9) when asked to read.
#[derive(Serialize, Deserialize)]
struct Dies;

impl FileServer for Dies {
    fn open(&mut self, path: &str, _: OpenFlags) -> Result<Opened, Errno> {
        Ok(if path.is_empty() { Opened::dir(0) } else { Opened::file(1) })
    }

    fn stat(&mut self, _: u64) -> Result<FileStat, Errno> {
        Ok(FileStat::file(2, 10))
    }

    fn read(&mut self, _: u64, _: u64, _: usize) -> Result<Vec<u8>, Errno> {
        wisp::exit(9)
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let (module, mode, rest) = (&argv[1], argv[2].as_str(), &argv[3..]);
    let module = std::fs::read(module).expect("cannot read the module");
    match mode {
        "memfs" => memfs(&module, rest, false),
        "read-only" => memfs(&module, rest, true),
        "attack" => attack(&module, &rest[0], &rest[1], &rest[2..]),
        "journal" => {
            let server = served::spawn(Journal::default()).expect("spawn");
            run(&module, server, rest);
            let log: Vec<String> = server.typed::<()>().call(&(), FOREVER).expect("the journal");
            for line in log {
                println!("journal: {line}");
            }
        }
        "die" => {
            let server = served::spawn(Dies).expect("spawn");
            let monitor = server.monitor();
            run(&module, server, rest);
            let mb = wisp::Mailbox::<()>::new();
            match mb.receive_event(FOREVER) {
                Ok(wisp::Event::Down { monitor: m, reason, .. }) if m == monitor => println!("server {reason:?}"),
                other => println!("unexpected {other:?}"),
            }
        }
        "gone" => {
            let (gone, monitor) = wisp::spawn_monitor((), |(), _: wisp::Mailbox<()>| {}).expect("spawn");
            let _ = wisp::Mailbox::<()>::new().receive_matching(&[monitor.raw()], FOREVER);
            run(&module, gone.pid(), rest);
        }
        _ => panic!("unknown mode {mode}"),
    }
}
