//! Capability sets for children (wisp::Caps), each test in its own wisp
//! process. The file-system test needs a directory granted as /scratch
//! (tests/e2e/test_rust_sdk.py runs it with `--dir TMP::/scratch`); without
//! one it says so and checks only the child's side.
use std::time::Duration;

use wisp::{Caps, CapsError, Event, ExitReason, Mailbox, SpawnError, Stdio};

const SEC: Duration = Duration::from_secs(5);

/// What a child found when it tried to read `path`.
fn try_read(path: String) -> Result<String, String> {
    std::fs::read_to_string(&path).map_err(|e| e.to_string())
}

#[wisp::test]
fn a_child_without_fs_cannot_open_what_the_parent_can() {
    let me = Mailbox::<Result<String, String>>::new();
    let path = "/scratch/caps-secret.txt".to_string();
    let granted = std::fs::write(&path, "secret").is_ok();
    if granted {
        assert_eq!(try_read(path.clone()).unwrap(), "secret");
        // An ordinary child inherits the directory...
        wisp::spawn((me.process(), path.clone()), |(parent, p), _: Mailbox<()>| parent.send(&try_read(p))).unwrap();
        assert_eq!(me.receive_timeout(SEC).unwrap(), Ok("secret".to_string()));
    } else {
        println!("no /scratch granted (run with --dir DIR::/scratch): checking the child only");
    }
    // ...one spawned without fs has none.
    wisp::spawn_without_fs((me.process(), path.clone()), |(parent, p), _: Mailbox<()>| parent.send(&try_read(p)))
        .unwrap();
    let got = me.receive_timeout(SEC).unwrap();
    assert!(got.is_err(), "the child read the file: {got:?}");
    // Also by dropping the one directory by name (and again with the builder).
    if granted {
        let caps = Caps::inherit().unwrap().drop_dir("/scratch").unwrap();
        wisp::spawn_with(&caps, (me.process(), path.clone()), |(parent, p), _: Mailbox<()>| parent.send(&try_read(p)))
            .unwrap();
        assert!(me.receive_timeout(SEC).unwrap().is_err());
        println!("child without fs: open {path} denied, parent reads it");
    }
    assert_eq!(Caps::inherit().unwrap().drop_dir("/no-such-dir").unwrap_err(), CapsError::NoSuchDir);
}

#[wisp::test]
fn widening_is_refused_and_a_used_set_is_frozen() {
    // stdio goes inherit -> null -> closed, never back.
    let caps = Caps::inherit().unwrap().stdin(Stdio::Closed).unwrap();
    assert_eq!(caps.stdin(Stdio::Null).unwrap_err(), CapsError::Widen);
    let caps = Caps::inherit().unwrap().stdout(Stdio::Null).unwrap();
    assert_eq!(caps.stdout(Stdio::Inherit).unwrap_err(), CapsError::Widen);
    // Limits only go down: asking for more keeps the lower one (no error).
    let caps = Caps::inherit().unwrap().max_message(1024).unwrap().max_message(1 << 40).unwrap();
    let me = Mailbox::<bool>::new();
    wisp::spawn_with(&caps, me.process(), |parent, _: Mailbox<()>| {
        // a 2 KiB message is over the 1 KiB limit
        let too_big = parent.pid().send_raw(wisp::TAG_USER, &[0u8; 2048]).is_err();
        parent.send(&too_big);
    })
    .unwrap();
    assert!(me.receive_timeout(SEC).unwrap(), "the raised message limit was not kept at 1 KiB");
    // Used by a spawn: frozen.
    assert_eq!(caps.drop_network().unwrap_err(), CapsError::Frozen);

    // A child denied caps cannot build sets; one denied spawn cannot spawn.
    let me = Mailbox::<(Option<String>, Option<String>)>::new();
    let caps = Caps::inherit().unwrap().deny_caps().unwrap().deny_spawn().unwrap();
    wisp::spawn_with(&caps, me.process(), |parent, _: Mailbox<()>| {
        let c = Caps::inherit().err().map(|e| format!("{e:?}"));
        let s = wisp::spawn((), |(), _: Mailbox<()>| {}).err().map(|e| format!("{e:?}"));
        parent.send(&(c, s));
    })
    .unwrap();
    let (c, s) = me.receive_timeout(SEC).unwrap();
    assert_eq!((c.as_deref(), s.as_deref()), (Some("Denied"), Some("Denied")));
    let _ = (CapsError::Denied, SpawnError::Denied); // the variants those name

    // A child denied code loading cannot load a version (checked before
    // the bytes are even looked at).
    let me = Mailbox::<String>::new();
    let caps = Caps::inherit().unwrap().deny_code().unwrap();
    wisp::spawn_with(&caps, me.process(), |parent, _: Mailbox<()>| {
        parent.send(&format!("{:?}", wisp::code::load(b"\0asm\x01\0\0\0").err()));
    })
    .unwrap();
    assert_eq!(me.receive_timeout(SEC).unwrap(), "Some(Denied)");
}

#[wisp::test]
fn a_cpu_limited_spinner_dies_with_the_limit_and_the_parent_goes_on() {
    let me = Mailbox::<()>::new();
    let caps = Caps::inherit().unwrap().max_cpu(2_000_000).unwrap();
    let (p, mon) = wisp::spawn_monitor_with(&caps, 0u64, |mut n, _: Mailbox<()>| loop {
        n = std::hint::black_box(n.wrapping_add(1));
    })
    .unwrap();
    match me.receive_event(Duration::from_secs(30)).unwrap() {
        Event::Down { monitor, pid, reason } => {
            assert_eq!((monitor, pid), (mon, p.pid()));
            assert_eq!(reason, ExitReason::Limit("cpu limit".into()));
            assert_eq!(reason.to_string(), "limit: cpu limit");
        }
        other => panic!("expected a Down, got {other:?}"),
    }
    // The parent is alive and well, and a linked one traps it as an Exit.
    wisp::trap_exits(true);
    let p = wisp::spawn_link_with(&caps, 0u64, |mut n, _: Mailbox<()>| loop {
        n = std::hint::black_box(n.wrapping_add(1));
    })
    .unwrap();
    match me.receive_event(Duration::from_secs(30)).unwrap() {
        Event::Exit { from, reason } => assert_eq!((from, reason), (p.pid(), ExitReason::Limit("cpu limit".into()))),
        other => panic!("expected an Exit, got {other:?}"),
    }
}

#[wisp::test]
fn a_memory_limited_child_cannot_allocate_past_its_limit() {
    let me = Mailbox::<bool>::new();
    let caps = Caps::inherit().unwrap().max_memory(4 << 20).unwrap();
    let (p, mon) = wisp::spawn_monitor_with(&caps, me.process(), |parent, _: Mailbox<()>| {
        let mut v: Vec<u8> = Vec::new();
        parent.send(&v.try_reserve_exact(64 << 20).is_err()); // fails cleanly
        let big = std::hint::black_box(vec![1u8; 64 << 20]); // aborts: Rust's OOM is a trap
        parent.send(&(big[12345] == 1));
    })
    .unwrap();
    assert!(me.receive_timeout(SEC).unwrap(), "try_reserve of 64 MiB succeeded under a 4 MiB limit");
    match me.receive_event(SEC).unwrap() {
        Event::Down { monitor, pid, reason: ExitReason::Trap(_) } => assert_eq!((monitor, pid), (mon, p.pid())),
        other => panic!("expected the child to trap, got {other:?}"),
    }
    // A limit below the module's initial memory: the child never runs, it
    // ends at instantiation with a trap.
    let tiny = Caps::inherit().unwrap().max_memory(64 << 10).unwrap();
    let (p, mon) = wisp::spawn_monitor_with(&tiny, me.process(), |p, _: Mailbox<()>| p.send(&true)).unwrap();
    match me.receive_event(SEC).unwrap() {
        Event::Down { monitor, pid, reason: ExitReason::Trap(t) } => {
            assert_eq!((monitor, pid), (mon, p.pid()));
            assert!(t.contains("memory limit"), "{t}");
        }
        other => panic!("expected the child to trap at instantiation, got {other:?}"),
    }
}

#[wisp::test]
fn a_child_process_limit_holds() {
    let me = Mailbox::<(u32, Option<String>)>::new();
    let caps = Caps::inherit().unwrap().max_processes(4).unwrap();
    // The child itself counts against the set: it may start 3 more.
    wisp::spawn_with(&caps, me.process(), |parent, mb: Mailbox<()>| {
        let mut n = 0;
        let err = loop {
            match wisp::spawn(mb.process(), |p, _: Mailbox<()>| {
                let _ = p;
                wisp::sleep(Duration::from_secs(2));
            }) {
                Ok(_) => n += 1,
                Err(e) => break Some(format!("{e:?}")),
            }
            if n > 10 {
                break None;
            }
        };
        parent.send(&(n, err));
    })
    .unwrap();
    let (n, err) = me.receive_timeout(SEC).unwrap();
    assert_eq!(err.as_deref(), Some("Limit"));
    assert_eq!(n, 3, "the child and 3 more make the 4 allowed");
}

/// What a child without the network or files gets from each call.
fn denials(_: (), _mb: Mailbox<()>) -> Vec<(String, String, String)> {
    use wisp::net::{lookup, TcpListener, TcpStream, UdpSocket};
    let mut out = Vec::new();
    let mut note = |what: &str, e: std::io::Error| out.push((what.to_string(), format!("{:?}", e.kind()), e.to_string()));
    note("listen", TcpListener::bind("127.0.0.1:0").unwrap_err());
    note("connect", TcpStream::connect("127.0.0.1:9").unwrap_err());
    note("udp", UdpSocket::bind("127.0.0.1:0").unwrap_err());
    note("dns", lookup("localhost").unwrap_err());
    note("file", wisp::fs::read_to_string("/scratch/caps-secret.txt").unwrap_err());
    note("spawn", std::io::Error::from(wisp::spawn((), |_, _: Mailbox<()>| {}).unwrap_err()));
    out
}

#[wisp::test]
fn capability_denials_are_permission_denied_and_name_the_capability() {
    let me = Mailbox::<Vec<(String, String, String)>>::new();
    let caps = Caps::inherit().unwrap().drop_all_dirs().unwrap().drop_network().unwrap().deny_spawn().unwrap();
    wisp::spawn_with(&caps, me.process(), |parent, mb: Mailbox<()>| parent.send(&denials((), mb))).unwrap();
    let got = me.receive_timeout(SEC).unwrap();
    let needs = [
        ("listen", "--allow-listen"),
        ("connect", "--allow-connect"),
        ("udp", "--allow-udp"),
        ("dns", "--allow-dns"),
        ("file", "/scratch/caps-secret.txt: not allowed by the process's capabilities: no directory granted for it (wisp run --dir)"),
        ("spawn", "Caps::deny_spawn"),
    ];
    assert_eq!(got.len(), needs.len(), "{got:?}");
    for ((what, kind, text), (want, needle)) in got.iter().zip(needs) {
        assert_eq!(what, want);
        assert_eq!(kind, "PermissionDenied", "{what}: {text}");
        assert!(text.contains(needle), "{what}: {text:?} does not name {needle:?}");
        if needle.starts_with("--allow-") {
            assert_eq!(text.matches("--allow-").count(), 1, "{what}: names other capabilities: {text:?}");
        }
    }
}

/// Each `wisp::fs` call in a child, on files under /scratch: what it gave
/// (call, error kind, text), or "ok".
fn fs_calls(_: (), _mb: Mailbox<()>) -> Vec<(String, String, String)> {
    use std::fs::OpenOptions;
    let mut out = Vec::new();
    let mut note = |what: &str, r: std::io::Result<()>| {
        out.push(match r {
            Ok(()) => (what.to_string(), "ok".to_string(), String::new()),
            Err(e) => (what.to_string(), format!("{:?}", e.kind()), e.to_string()),
        })
    };
    let (f, d) = ("/scratch/caps-fs/file", "/scratch/caps-fs/dir");
    note("read", wisp::fs::read(f).map(drop));
    note("open", wisp::fs::open(f).map(drop));
    note("metadata", wisp::fs::metadata(f).map(drop));
    note("symlink_metadata", wisp::fs::symlink_metadata(f).map(drop));
    note("read_dir", wisp::fs::read_dir(d).map(drop));
    note("write", wisp::fs::write(f, "new"));
    note("create", wisp::fs::create("/scratch/caps-fs/new").map(drop));
    note("open_with", wisp::fs::open_with(f, OpenOptions::new().append(true)).map(drop));
    note("create_dir", wisp::fs::create_dir("/scratch/caps-fs/newdir"));
    note("create_dir_all", wisp::fs::create_dir_all("/scratch/caps-fs/a/b"));
    note("remove_file", wisp::fs::remove_file(f));
    note("remove_dir", wisp::fs::remove_dir(d));
    note("remove_dir_all", wisp::fs::remove_dir_all(d));
    note("rename", wisp::fs::rename(f, "/scratch/caps-fs/moved"));
    note("copy", wisp::fs::copy(f, "/scratch/caps-fs/copied").map(drop));
    out
}

#[wisp::test]
fn every_fs_denial_is_permission_denied_naming_the_capability() {
    let me = Mailbox::<Vec<(String, String, String)>>::new();
    let granted = wisp::fs::create_dir_all("/scratch/caps-fs/dir").is_ok()
        && wisp::fs::write("/scratch/caps-fs/file", "old").is_ok();
    let sets = [("no dirs", Caps::inherit().unwrap().drop_all_dirs().unwrap())];
    let read_only = granted.then(|| ("read-only", Caps::inherit().unwrap().read_only_all().unwrap()));
    for (which, caps) in sets.into_iter().chain(read_only) {
        wisp::spawn_with(&caps, me.process(), |parent, mb: Mailbox<()>| parent.send(&fs_calls((), mb))).unwrap();
        let got = me.receive_timeout(SEC).unwrap();
        assert_eq!(got.len(), 15, "{got:?}");
        // Read-only: reading works, every change is denied.
        let reads = ["read", "open", "metadata", "symlink_metadata", "read_dir"];
        for (what, kind, text) in &got {
            if which == "read-only" && reads.contains(&what.as_str()) {
                assert_eq!(kind, "ok", "{which}: {what}: {text}");
                continue;
            }
            assert_eq!(kind, "PermissionDenied", "{which}: {what}: {text}");
            assert!(text.contains("/scratch/caps-fs/"), "{which}: {what}: {text:?} names no path");
            assert!(text.contains("--dir"), "{which}: {what}: {text:?} names no capability");
            if what == "rename" {
                assert!(text.starts_with("/scratch/caps-fs/file -> /scratch/caps-fs/moved: "), "{text:?}");
            }
        }
    }
    if granted {
        // Nothing changed under the read-only set.
        assert_eq!(std::fs::read_to_string("/scratch/caps-fs/file").unwrap(), "old");
    }
}
