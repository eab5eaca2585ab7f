//! The wisp crate's programs (wisp::program), driven by
//! tests/e2e/test_program_sdk.py: this process starts the unmodified WASI
//! program tests/guests/c/filter.c (its modes: upper, wc, slow-wc, exit N,
//! trap, env NAME, args, cat PATH, spew N) and prints what it saw, one
//! fact a line. Mirrors tests/guests/c/program.c.
//!
//!   program_sdk MODULE MODE [ARGS...]
//!
//!   pipe            upper, stdin and stdout piped: "out: TEXT"
//!   wc N            slow-wc with N bytes written to its stdin (the writer
//!                   waits for the slow reader)
//!   exit N          exit N, stderr piped: "err: bye"
//!   trap            trap
//!   env             the environment: set, inherited, removed, cleared
//!   args A..        args A..
//!   cat PATH        cat PATH with the caller's directories
//!   cat-nodirs PATH the same under a Caps without directories
//!   inherit         upper, stdout the caller's own
//!   fd              upper | wc: one child's stdout as the next one's stdin
//!   output N        spew N through output(): both pipes read at once
//!   socket          upper with a TCP connection as its stdin and stdout
//!   selective       waits take only their child's Down, in any order
//!   kill            try_wait on a running child, kill, wait
//!   drop            a dropped Child leaves no Down behind
//!   link            linked to a child exiting 7, not trapping exits
//!   link-trap       the same, trapping exits
//!   spawn           only the spawn (a bad module's error)
//!   nul             an argument with a NUL in it
//!   path PATH       Program::from_path(PATH) (a file that cannot be read)
//!
//! Each child's end is printed as "status REASON" (its ExitReason).
use std::io::{Read, Write};
use std::net::Shutdown;
use std::time::Duration;

use wisp::net::{TcpListener, TcpStream};
use wisp::program::{Child, ExitStatus, Program, ProgramError, Stdio};
use wisp::{Caps, Event, Mailbox};

fn status(s: &ExitStatus) {
    println!("status {:?} success={} code={:?}", s.reason(), s.success(), s.code());
}

fn wait(child: &mut Child) {
    status(&child.wait().expect("wait"));
}

fn read_all(r: &mut impl Read) -> String {
    let mut s = String::new();
    r.read_to_string(&mut s).expect("read");
    s.trim_end_matches('\n').to_string()
}

fn spawn(p: &mut Program) -> Child {
    match p.spawn() {
        Ok(c) => c,
        Err(e) => {
            println!("spawn failed: {e}");
            std::process::exit(1);
        }
    }
}

fn error(e: &ProgramError) {
    let kind = format!("{e:?}");
    println!("error {}: {e}", kind.split(['(', ' ']).next().unwrap());
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let (module, mode, rest) = (&argv[1], argv[2].as_str(), &argv[3..]);
    let bytes = std::fs::read(module).expect("cannot read the module");
    let filter = |args: &[&str]| {
        let mut p = Program::new(bytes.clone());
        p.arg0("filter").args(args);
        p
    };
    match mode {
        "pipe" => {
            let mut c = spawn(filter(&["upper"]).stdin(Stdio::piped()).stdout(Stdio::piped()));
            c.stdin.take().unwrap().write_all(b"hello world\nsecond line\n").unwrap();
            println!("out: {}", read_all(c.stdout.as_mut().unwrap()));
            wait(&mut c);
        }
        "wc" => {
            let n: usize = rest[0].parse().unwrap();
            let mut c = spawn(filter(&["slow-wc"]).stdin(Stdio::piped()).stdout(Stdio::piped()));
            let mut chunk = vec![b'x'; 64 << 10];
            for i in (0..chunk.len()).step_by(64) {
                chunk[i] = b'\n';
            }
            let mut stdin = c.stdin.take().unwrap();
            let mut sent = 0;
            while sent < n {
                let k = chunk.len().min(n - sent);
                stdin.write_all(&chunk[..k]).expect("write");
                sent += k;
            }
            drop(stdin);
            println!("out: {}", read_all(c.stdout.as_mut().unwrap()));
            wait(&mut c);
        }
        "exit" => {
            let mut c = spawn(filter(&["exit", &rest[0]]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()));
            println!("err: {}", read_all(c.stderr.as_mut().unwrap()));
            wait(&mut c);
            // output() collects stderr and the status in one call.
            let o = filter(&["exit", &rest[0]]).output().unwrap();
            println!("output: {:?} {:?} {:?}", o.status.code(), String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        }
        "trap" => {
            let s = filter(&["trap"]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status().unwrap();
            status(&s);
            println!("trap text: {:?}", s.trap());
        }
        "env" => {
            let show = |p: &mut Program| String::from_utf8(p.output().unwrap().stdout).unwrap().trim_end().to_string();
            println!("set: {}", show(filter(&["env", "GREETING"]).env("GREETING", "hi")));
            println!("inherited: {}", show(&mut filter(&["env", "FROM_RUN"])));
            println!("removed: {}", show(filter(&["env", "FROM_RUN"]).env_remove("FROM_RUN")));
            println!("cleared: {}", show(filter(&["env", "FROM_RUN"]).env_clear()));
            println!("cleared then set: {}", show(filter(&["env", "GREETING"]).env_clear().envs([("GREETING", "again")])));
        }
        "args" => {
            let o = filter(&["args"]).args(rest).output().unwrap();
            println!("out: {}", String::from_utf8_lossy(&o.stdout).trim_end());
            status(&o.status);
        }
        "cat" | "cat-nodirs" => {
            let caps = Caps::inherit().unwrap().drop_all_dirs().unwrap();
            let mut p = filter(&["cat", &rest[0]]);
            if mode == "cat-nodirs" {
                p.caps(&caps);
            }
            let o = p.stderr(Stdio::null()).output().unwrap();
            println!("out: {}", String::from_utf8_lossy(&o.stdout).trim_end());
            status(&o.status);
        }
        "inherit" => {
            let mut c = spawn(filter(&["upper"]).stdin(Stdio::piped()));
            c.stdin.take().unwrap().write_all(b"hello world\nsecond line\n").unwrap();
            wait(&mut c);
        }
        "fd" => {
            let mut up = spawn(filter(&["upper"]).stdin(Stdio::piped()).stdout(Stdio::piped()));
            // The first child's stdout is the second's stdin; the caller's
            // copy closes with the Program (a temporary), so wc sees end of
            // file when upper ends.
            let mut wc = spawn(filter(&["wc"]).stdin(up.stdout.take().unwrap()).stdout(Stdio::piped()));
            up.stdin.take().unwrap().write_all(b"one two\nthree\n").unwrap();
            println!("up stdout taken: {}", up.stdout.is_none());
            wait(&mut up);
            println!("out: {}", read_all(wc.stdout.as_mut().unwrap()));
            wait(&mut wc);
        }
        "output" => {
            let n: usize = rest[0].parse().unwrap();
            let o = filter(&["spew", &rest[0]]).output().unwrap();
            let (out, err) = (String::from_utf8(o.stdout).unwrap(), String::from_utf8(o.stderr).unwrap());
            let expect = |what: &str| (0..n).map(|i| format!("{what} {i}\n")).collect::<String>();
            println!("stdout {} bytes, as expected: {}", out.len(), out == expect("out"));
            println!("stderr {} bytes, as expected: {}", err.len(), err == expect("err"));
            status(&o.status);
        }
        "socket" => {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (server, _) = listener.accept().unwrap();
            let conn = Stdio::from(server);
            let mut c = spawn(filter(&["upper"]).stdin(conn.clone()).stdout(conn));
            client.write_all(b"over tcp\n").unwrap();
            client.shutdown(Shutdown::Write).unwrap();
            println!("out: {}", read_all(&mut client));
            wait(&mut c);
        }
        "selective" => {
            let mb = Mailbox::<String>::new();
            mb.process().send(&"queued before".to_string());
            let mut one = spawn(filter(&["exit", "1"]).stderr(Stdio::null()));
            let mut two = spawn(filter(&["exit", "2"]).stderr(Stdio::null()));
            mb.process().send(&"queued between".to_string());
            wait(&mut two);
            wait(&mut one);
            // Waiting again gives the same status without receiving.
            status(&one.wait().unwrap());
            println!("try_wait after: {:?}", one.try_wait().unwrap().map(|s| s.code()));
            println!("message: {}", mb.receive().unwrap());
            println!("message: {}", mb.receive().unwrap());
            println!("left: {}", mb.receive_event(Duration::ZERO).is_err());
        }
        "kill" => {
            let mut c = spawn(filter(&["upper"]).stdin(Stdio::piped()).stdout(Stdio::null()));
            // It reads its stdin, which stays open until the end: it cannot
            // end by itself. (Killed before it first parks on the pipe, most
            // likely before it starts: the kill must still reach it.)
            let stdin = c.stdin.take();
            println!("running: {:?}", c.try_wait().unwrap());
            c.kill().unwrap();
            wait(&mut c);
            drop(stdin);
        }
        "drop" => {
            let c = spawn(filter(&["upper"]).stdin(Stdio::piped()).stdout(Stdio::null()));
            let watch = c.pid().monitor();
            drop(c); // its stdin closes: it ends, unwaited
            let mb = Mailbox::<()>::new();
            match mb.receive_event(wisp::FOREVER) {
                Ok(Event::Down { monitor, reason, .. }) => println!("down {:?} ours: {}", reason, monitor == watch),
                other => println!("unexpected: {other:?}"),
            }
            println!("left: {}", mb.receive_event(Duration::ZERO).is_err());
        }
        "link" | "link-trap" => {
            let trapping = mode == "link-trap";
            wisp::trap_exits(trapping);
            let mut c = spawn(filter(&["exit", "7"]).stderr(Stdio::null()).link());
            println!("waiting");
            wait(&mut c);
            let mb = Mailbox::<()>::new();
            match mb.receive_event(wisp::FOREVER) {
                Ok(Event::Exit { from, reason }) => println!("exit {:?} from the child: {}", reason, from == c.pid()),
                other => println!("unexpected: {other:?}"),
            }
        }
        "spawn" => match filter(&[]).stdin(Stdio::null()).stdout(Stdio::null()).spawn() {
            Ok(mut c) => wait(&mut c),
            Err(e) => {
                error(&e);
                println!("as io::Error: {:?}", std::io::Error::from(e).kind());
            }
        },
        "nul" => {
            if let Err(e) = filter(&["args", "a\0b"]).spawn() {
                error(&e);
            }
            if let Err(e) = filter(&["args"]).env("K", "v\0w").spawn() {
                error(&e);
            }
        }
        "path" => {
            let e = Program::from_path(&rest[0]).spawn().unwrap_err();
            error(&e);
            println!("as io::Error: {:?}", std::io::Error::from(e).kind());
        }
        _ => {
            println!("unknown mode {mode}");
            std::process::exit(2);
        }
    }
}
