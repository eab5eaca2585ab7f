//! Served files (wisp::served), each test in its own wisp process: the
//! protocol's bytes as docs/abi.md ("Served files") lays them out, built by
//! hand here and compared with what the crate makes and reads; MemFs's
//! answers; and a spawned MemFs asked on the wire as the host asks it.
//! (Programs using served directories: tests/e2e/test_served_sdk.py.)
use std::io;
use std::time::Duration;

use wisp::served::{
    pack_dirents, DirEntry, Errno, FileRequest, FileServer, FileStat, FileType, MemFs, OpenFlags, Opened, Reply,
    Request, WriteAt,
};
use wisp::{sys, CallError, Envelope, Pid};

const SEC: Duration = Duration::from_secs(5);

fn header(op: u32, flags: u32, handle: u64, offset: u64, len: u32, rights: u32) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&op.to_le_bytes());
    b.extend_from_slice(&flags.to_le_bytes());
    b.extend_from_slice(&handle.to_le_bytes());
    b.extend_from_slice(&offset.to_le_bytes());
    b.extend_from_slice(&len.to_le_bytes());
    b.extend_from_slice(&rights.to_le_bytes());
    assert_eq!(b.len(), sys::FILE_REQUEST_SIZE as usize);
    b
}

/// A reply's header fields and data: (error, filetype, value, data).
fn parse_reply(b: &[u8]) -> (u16, u8, u64, Vec<u8>) {
    assert!(b.len() >= sys::FILE_REPLY_SIZE as usize, "short reply {b:?}");
    let len = u32::from_le_bytes(b[4..8].try_into().unwrap()) as usize;
    assert_eq!(b[3], 0, "the pad byte");
    assert_eq!(len, b.len() - sys::FILE_REPLY_SIZE as usize, "len is the payload's");
    (u16::from_le_bytes([b[0], b[1]]), b[2], u64::from_le_bytes(b[8..16].try_into().unwrap()), b[16..].to_vec())
}

#[wisp::test]
fn requests_have_the_protocols_layout() {
    // OPEN "sub/a.txt" with O_CREAT | O_TRUNC (oflags 1 | 8) and O_APPEND
    // (fdflag 1, shifted by 16), for writing (right 2).
    let mut open = header(1, 1 | 8 | 1 << 16, 0, 0, 0, 2);
    open.extend_from_slice(b"sub/a.txt");
    let flags = OpenFlags { write: true, create: true, truncate: true, append: true, ..OpenFlags::default() };
    let req = Request::Open { path: "sub/a.txt".into(), flags };
    assert_eq!(req.to_bytes(), open);
    assert_eq!(Request::from_bytes(&open), Ok(req));
    // O_DIRECTORY | O_EXCL (2 | 4), reading (right 1).
    let dir = OpenFlags::from_raw(2 | 4, 1);
    assert!(dir.directory && dir.exclusive && dir.read && !dir.write && !dir.create && !dir.append);

    let cases = [
        (header(2, 0, 7, 100, 4096, 0), Request::Read { handle: 7, offset: 100, len: 4096 }),
        (header(4, 0, 7, 0, 0, 0), Request::Stat { handle: 7 }),
        (header(6, 0, 3, 12, 8192, 0), Request::ReadDir { handle: 3, cookie: 12, len: 8192 }),
        (header(7, 0, 9, 0, 0, 0), Request::Close { handle: 9 }),
        ([header(5, 0, 0, 0, 0, 0), b"config.txt".to_vec()].concat(), Request::PathStat { path: "config.txt".into() }),
        // An append names no offset: u64::MAX.
        (
            [header(3, 0, 7, u64::MAX, 0, 0), b"tail".to_vec()].concat(),
            Request::Write { handle: 7, at: WriteAt::End, data: b"tail".to_vec() },
        ),
        (
            [header(3, 0, 7, 5, 0, 0), b"mid".to_vec()].concat(),
            Request::Write { handle: 7, at: WriteAt::Offset(5), data: b"mid".to_vec() },
        ),
    ];
    for (bytes, req) in cases {
        assert_eq!(req.to_bytes(), bytes, "{req:?}");
        assert_eq!(Request::from_bytes(&bytes).as_ref(), Ok(&req));
    }
    // The root is the empty path.
    let root = [header(1, 2, 0, 0, 0, 1), Vec::new()].concat();
    assert_eq!(Request::from_bytes(&root), Ok(Request::Open { path: String::new(), flags: OpenFlags::from_raw(2, 1) }));
}

#[wisp::test]
fn bad_requests_are_refused_with_their_errno() {
    assert_eq!(Request::from_bytes(&[]), Err(Errno::INVAL));
    assert_eq!(Request::from_bytes(&header(2, 0, 0, 0, 0, 0)[..31]), Err(Errno::INVAL));
    assert_eq!(Request::from_bytes(&header(99, 0, 0, 0, 0, 0)), Err(Errno::NOSYS));
    assert_eq!(Request::from_bytes(&header(0, 0, 0, 0, 0, 0)), Err(Errno::NOSYS));
    let not_utf8 = [header(5, 0, 0, 0, 0, 0), vec![b'a', 0xff, b'b']].concat();
    assert_eq!(Request::from_bytes(&not_utf8), Err(Errno::ILSEQ));
    // A message with another tag is no request either.
    let env = Envelope { tag: wisp::TAG_USER, from: wisp::self_pid(), reference: 5, kind: sys::MSG_DATA, bytes: root_open() };
    let bad = FileRequest::decode(&env).unwrap_err();
    assert_eq!((bad.errno, bad.reference), (Errno::INVAL, 5));
}

fn root_open() -> Vec<u8> {
    header(1, 2, 0, 0, 0, 1)
}

#[wisp::test]
fn replies_have_the_protocols_layout() {
    let open = Request::Open { path: "a".into(), flags: OpenFlags::default() };
    let read = Request::Read { handle: 1, offset: 0, len: 4 };
    let write = Request::Write { handle: 1, at: WriteAt::End, data: b"xyz".to_vec() };
    let stat = Request::Stat { handle: 1 };
    // OPEN: the filetype in byte 2, the handle in value.
    let b = Reply::Opened(Opened::dir(0x0102_0304_0506_0708)).to_bytes(&open);
    assert_eq!(b, [&[0, 0, 3, 0, 0, 0, 0, 0][..], &0x0102_0304_0506_0708u64.to_le_bytes()].concat());
    assert_eq!(parse_reply(&Reply::Opened(Opened::file(9)).to_bytes(&open)), (0, 4, 9, vec![]));
    // READ: the data, never more than asked.
    assert_eq!(parse_reply(&Reply::Data(b"abcdef".to_vec()).to_bytes(&read)), (0, 0, 0, b"abcd".to_vec()));
    assert_eq!(parse_reply(&Reply::Data(vec![]).to_bytes(&read)), (0, 0, 0, vec![]));
    // WRITE: the count in value.
    assert_eq!(parse_reply(&Reply::Written(3).to_bytes(&write)), (0, 0, 3, vec![]));
    // STAT: 64 bytes: ino at 8, filetype at 16, nlink at 24, size at 32.
    let st = FileStat { mtim: 77, ..FileStat::file(5, 1234) };
    let (e, _, _, data) = parse_reply(&Reply::Stat(st).to_bytes(&stat));
    assert_eq!((e, data.len()), (0, 64));
    assert_eq!(u64::from_le_bytes(data[8..16].try_into().unwrap()), 5);
    assert_eq!(data[16], 4);
    assert_eq!(u64::from_le_bytes(data[24..32].try_into().unwrap()), 1);
    assert_eq!(u64::from_le_bytes(data[32..40].try_into().unwrap()), 1234);
    assert_eq!(u64::from_le_bytes(data[48..56].try_into().unwrap()), 77);
    assert_eq!(FileStat::from_bytes(&data), Some(st));
    assert_eq!(FileStat::from_bytes(&data[..63]), None);
    // An error: the errno, nothing else.
    assert_eq!(Reply::Error(Errno::NOENT).to_bytes(&read), [&[44u8, 0][..], &[0; 14]].concat());
    // A reply of another request's kind is EIO, never a misleading answer.
    assert_eq!(parse_reply(&Reply::Data(b"x".to_vec()).to_bytes(&open)), (29, 0, 0, vec![]));
    assert_eq!(parse_reply(&Reply::Written(1).to_bytes(&stat)), (29, 0, 0, vec![]));
}

#[wisp::test]
fn dirents_are_packed_with_their_cookies_and_cut_at_the_length() {
    let es = [DirEntry::new("a.txt", FileType::RegularFile, 11), DirEntry::new("sub", FileType::Directory, 12)];
    let b = pack_dirents(&es, 5, 1000);
    assert_eq!(b.len(), 24 + 5 + 24 + 3);
    // d_next (the cookie after it), d_ino, d_namlen, d_type, then the name.
    assert_eq!(u64::from_le_bytes(b[0..8].try_into().unwrap()), 6);
    assert_eq!(u64::from_le_bytes(b[8..16].try_into().unwrap()), 11);
    assert_eq!(u32::from_le_bytes(b[16..20].try_into().unwrap()), 5);
    assert_eq!(b[20], 4);
    assert_eq!(&b[24..29], b"a.txt");
    assert_eq!(u64::from_le_bytes(b[29..37].try_into().unwrap()), 7);
    assert_eq!((b[29 + 20], &b[29 + 24..]), (3, &b"sub"[..]));
    // Cut at the length, the last entry short: the buffer is full, so the
    // program knows to ask again from the cookie of the last whole one.
    assert_eq!(pack_dirents(&es, 5, 40), b[..40].to_vec());
    assert_eq!(pack_dirents(&es, 5, 10), b[..10].to_vec());
    // Reply::Entries packs from the request's cookie into its length.
    let req = Request::ReadDir { handle: 1, cookie: 5, len: 40 };
    assert_eq!(parse_reply(&Reply::Entries(es.to_vec()).to_bytes(&req)).3, b[..40].to_vec());
}

#[wisp::test]
fn errnos_are_wasis_and_convert_to_and_from_io_errors() {
    assert_eq!(io::Error::from(Errno::NOENT).kind(), io::ErrorKind::NotFound);
    assert_eq!(io::Error::from(Errno::ACCES).raw_os_error(), Some(2));
    // An error the host gave keeps its errno; a made-up one maps by its kind.
    assert_eq!(Errno::from(io::Error::from_raw_os_error(31)), Errno::ISDIR);
    assert_eq!(Errno::from(io::Error::new(io::ErrorKind::AlreadyExists, "x")), Errno::EXIST);
    assert_eq!(Errno::from(io::Error::new(io::ErrorKind::Other, "x")), Errno::IO);
    assert_eq!(Errno::from_raw(0), None);
    assert_eq!(Errno::from_raw(77), None);
    assert_eq!(Errno::from_raw(76).map(Errno::raw), Some(76));
    assert!(Errno::NOENT.to_string().contains("No such file or directory"), "{}", Errno::NOENT);
}

fn rd() -> OpenFlags {
    OpenFlags { read: true, ..OpenFlags::default() }
}

fn wr() -> OpenFlags {
    OpenFlags { write: true, ..OpenFlags::default() }
}

#[wisp::test]
fn a_memfs_answers_as_a_file_system_would() {
    let mut fs = MemFs::new().with_file("config.txt", "k=v\n").with_file("sub/a.txt", "alpha\n").with_dir("empty");
    // Opening: files, directories, what is missing.
    let root = fs.open("", OpenFlags { directory: true, ..rd() }).unwrap();
    assert_eq!(root.filetype, FileType::Directory);
    assert_eq!(fs.open("nope", rd()), Err(Errno::NOENT));
    assert_eq!(fs.open("config.txt", OpenFlags { directory: true, ..rd() }), Err(Errno::NOTDIR));
    assert_eq!(fs.open("sub", wr()), Err(Errno::ISDIR));
    assert_eq!(fs.open("config.txt/x", OpenFlags { create: true, ..wr() }), Err(Errno::NOTDIR));
    assert_eq!(fs.open("none/x", OpenFlags { create: true, ..wr() }), Err(Errno::NOENT));
    assert_eq!(fs.open("config.txt", OpenFlags { create: true, exclusive: true, ..wr() }), Err(Errno::EXIST));
    // Reading from an offset, short at the end, nothing past it.
    let h = fs.open("sub/a.txt", rd()).unwrap().handle;
    assert_eq!(fs.read(h, 2, 100).unwrap(), b"pha\n");
    assert_eq!(fs.read(h, 6, 100).unwrap(), b"");
    assert_eq!(fs.read(h, 1 << 40, 100).unwrap(), b"");
    assert_eq!(fs.write(h, WriteAt::End, b"x"), Err(Errno::BADF), "opened for reading only");
    assert_eq!(fs.stat(h), Ok(FileStat::file(fs.stat(h).unwrap().ino, 6)));
    // Writing: creating, past the end (zeros between), appending, truncating.
    let w = fs.open("new.bin", OpenFlags { create: true, ..wr() }).unwrap().handle;
    assert_eq!(fs.write(w, WriteAt::Offset(3), b"ab"), Ok(2));
    assert_eq!(fs.write(w, WriteAt::End, b"cd"), Ok(2));
    assert_eq!(fs.file("new.bin"), Some(&b"\0\0\0abcd"[..]));
    assert_eq!(fs.write(w, WriteAt::Offset(0), b"Z"), Ok(1));
    assert_eq!(fs.file("new.bin"), Some(&b"Z\0\0abcd"[..]));
    fs.open("new.bin", OpenFlags { truncate: true, ..wr() }).unwrap();
    assert_eq!(fs.file("new.bin"), Some(&b""[..]));
    // Listing, in name order, from a cookie.
    let names = |v: Vec<DirEntry>| v.into_iter().map(|e| (e.name, e.filetype)).collect::<Vec<_>>();
    let all = names(fs.readdir(root.handle, 0).unwrap());
    assert_eq!(
        all,
        [
            ("config.txt".to_string(), FileType::RegularFile),
            ("empty".to_string(), FileType::Directory),
            ("new.bin".to_string(), FileType::RegularFile),
            ("sub".to_string(), FileType::Directory),
        ]
    );
    assert_eq!(names(fs.readdir(root.handle, 3).unwrap()), all[3..]);
    assert_eq!(fs.readdir(root.handle, 99).unwrap(), vec![]);
    let sub = fs.open("sub", rd()).unwrap().handle;
    assert_eq!(names(fs.readdir(sub, 0).unwrap()), [("a.txt".to_string(), FileType::RegularFile)]);
    assert_eq!(fs.readdir(h, 0), Err(Errno::NOTDIR));
    // Stat by path; a closed handle is gone.
    assert_eq!(fs.path_stat("sub").map(|s| s.filetype), Ok(FileType::Directory));
    assert_eq!(fs.path_stat("missing"), Err(Errno::NOENT));
    fs.close(h);
    assert_eq!(fs.read(h, 0, 1), Err(Errno::BADF));
    // Read-only: nothing opens for writing, nothing is created.
    let mut ro = MemFs::new().with_file("f", "x").read_only();
    assert_eq!(ro.open("f", wr()), Err(Errno::ROFS));
    assert_eq!(ro.open("g", OpenFlags { create: true, ..wr() }), Err(Errno::ROFS));
    assert!(ro.open("f", rd()).is_ok());
}

#[wisp::test]
fn memfs_paths_are_checked() {
    let mut fs = MemFs::new().with_file("/lead/slash.txt", "x");
    assert_eq!(fs.file("lead/slash.txt"), Some(&b"x"[..]));
    assert_eq!(fs.insert_file("lead", "y"), Err(Errno::ISDIR));
    assert_eq!(fs.insert_file("", "y"), Err(Errno::ISDIR));
    assert_eq!(fs.insert_file("lead/slash.txt/under", "y"), Err(Errno::NOTDIR));
    assert_eq!(fs.insert_dir("lead/slash.txt"), Err(Errno::NOTDIR));
    assert_eq!(fs.insert_file("../up", "y"), Err(Errno::INVAL));
    assert!(fs.insert_dir("a/b/c").is_ok() && fs.is_dir("a/b") && fs.is_dir("a/b/c"));
    let files: Vec<_> = fs.files().map(|(p, _)| p.to_string()).collect();
    assert_eq!(files, ["lead/slash.txt"]);
}

/// Ask `server` as the host does: a request tagged TAG_FILE, with a ref.
fn ask(server: Pid, payload: &[u8]) -> (u16, u8, u64, Vec<u8>) {
    let mut buf = vec![0u8; 70000];
    let mut info = sys::MsgInfo::default();
    let rc = unsafe {
        sys::request(
            server.raw(),
            sys::TAG_FILE,
            payload.as_ptr(),
            payload.len() as u32,
            SEC.as_nanos() as i64,
            buf.as_mut_ptr(),
            buf.len() as u32,
            &mut info,
        )
    };
    assert_eq!(rc, sys::OK, "the request");
    parse_reply(&buf[..info.len as usize])
}

#[wisp::test]
fn a_spawned_memfs_answers_on_the_wire_as_the_host_asks() {
    let server = MemFs::new().with_file("config.txt", "name=wisp\n").spawn().unwrap();
    let pid = server.pid();
    // OPEN config.txt for reading and writing: a file, a handle.
    let (e, ft, handle, _) = ask(pid, &[header(1, 0, 0, 0, 0, 3), b"config.txt".to_vec()].concat());
    assert_eq!((e, ft), (0, 4));
    // READ 4 bytes at 5; WRITE at the end; STAT sees the new size.
    assert_eq!(ask(pid, &header(2, 0, handle, 5, 4, 0)), (0, 0, 0, b"wisp".to_vec()));
    assert_eq!(ask(pid, &[header(3, 0, handle, u64::MAX, 0, 0), b"more\n".to_vec()].concat()).2, 5);
    let (e, _, _, st) = ask(pid, &header(4, 0, handle, 0, 0, 0));
    assert_eq!((e, FileStat::from_bytes(&st).map(|s| s.size)), (0, Some(15)));
    // A 64 KiB write and its read back: whole messages both ways.
    let big: Vec<u8> = (0..65536u32).map(|i| (i * 7) as u8).collect();
    assert_eq!(ask(pid, &[header(3, 0, handle, 100, 0, 0), big.clone()].concat()).2, 65536);
    assert_eq!(ask(pid, &header(2, 0, handle, 100, 65536, 0)).3, big);
    // CLOSE wants no reply (ref 0); the handle is gone after.
    pid.send_raw(sys::TAG_FILE, &header(7, 0, handle, 0, 0, 0)).unwrap();
    assert_eq!(ask(pid, &header(2, 0, handle, 0, 4, 0)).0, Errno::BADF.raw());
    // PSTAT, READDIR of the root.
    assert_eq!(ask(pid, &[header(5, 0, 0, 0, 0, 0), b"missing".to_vec()].concat()).0, 44);
    let (_, _, root, _) = ask(pid, &root_open());
    let (e, _, _, ents) = ask(pid, &header(6, 0, root, 0, 4096, 0));
    assert_eq!((e, ents.len(), &ents[24..]), (0, 24 + 10, &b"config.txt"[..]));
    // Garbage is answered with an errno, and the server goes on.
    assert_eq!(ask(pid, &[1, 2, 3]).0, Errno::INVAL.raw());
    assert_eq!(ask(pid, &header(42, 0, 0, 0, 0, 0)).0, Errno::NOSYS.raw());
    // What was written is the server's; its own calls see it.
    let now = server.read("config.txt").unwrap().unwrap();
    assert_eq!(&now[..15], b"name=wisp\nmore\n");
    assert_eq!(now.len(), 100 + 65536);
    // A call it does not understand fails the caller, not the server.
    let e = pid.typed::<String>().call::<u32>(&"what?".to_string(), SEC).unwrap_err();
    assert!(matches!(e, CallError::BadRequest(_)), "{e:?}");
    server.insert_file("later.txt", "x").unwrap();
    assert_eq!(server.snapshot().unwrap().file("later.txt"), Some(&b"x"[..]));
    assert_eq!(server.insert_file("later.txt/under", "x").unwrap_err().raw_os_error(), Some(54));
    // A dead server is NotConnected.
    pid.kill();
    while pid.is_alive() {
        wisp::yield_now();
    }
    assert_eq!(server.read("config.txt").unwrap_err().kind(), io::ErrorKind::NotConnected);
}

/// Each entry of packed dirents: (d_next, name).
fn unpack(b: &[u8]) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 24 <= b.len() {
        let next = u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
        let len = u32::from_le_bytes(b[at + 16..at + 20].try_into().unwrap()) as usize;
        if at + 24 + len > b.len() {
            break; // (cut short: asked for again)
        }
        out.push((next, String::from_utf8_lossy(&b[at + 24..at + 24 + len]).into_owned()));
        at += 24 + len;
    }
    out
}

#[wisp::test]
fn a_cookie_never_wraps_to_the_start() {
    // A program may ask from any cookie, and a server may answer entries
    // whatever it is asked: the entry at u64::MAX has no cookie after it.
    // Its d_next was u64::MAX + 1, 0 (or a panic in a debug build), which
    // sent the program back to the start of the listing.
    let es = [DirEntry::new("a", FileType::RegularFile, 1), DirEntry::new("b", FileType::RegularFile, 2)];
    assert_eq!(unpack(&pack_dirents(&es, u64::MAX - 1, 1000)), [(u64::MAX, "a".to_string())]);
    assert_eq!(pack_dirents(&es, u64::MAX, 1000), Vec::<u8>::new());
    let req = Request::ReadDir { handle: 1, cookie: u64::MAX, len: 4096 };
    assert_eq!(parse_reply(&Reply::Entries(es.to_vec()).to_bytes(&req)), (0, 0, 0, vec![]));
}

#[wisp::test]
fn a_memfs_lists_a_directorys_children_not_their_subtrees() {
    // Keys in order: a, a!b, a/x, a/y/z, a0, b, b.txt, b/c: "a!b" sorts
    // before "a/", "a0" after the whole of a's subtree.
    let mut fs = MemFs::new()
        .with_file("a/x", "")
        .with_file("a/y/z", "")
        .with_file("a!b", "")
        .with_file("a0", "")
        .with_file("b.txt", "")
        .with_file("b/c", "");
    let root = fs.open("", rd()).unwrap().handle;
    let names = |v: Vec<DirEntry>| v.into_iter().map(|e| e.name).collect::<Vec<_>>();
    assert_eq!(names(fs.readdir(root, 0).unwrap()), ["a", "a!b", "a0", "b", "b.txt"]);
    assert_eq!(names(fs.readdir(root, 2).unwrap()), ["a0", "b", "b.txt"]);
    let a = fs.open("a", rd()).unwrap().handle;
    assert_eq!(names(fs.readdir(a, 0).unwrap()), ["x", "y"]);
    assert_eq!(fs.readdir(a, u64::MAX), Ok(vec![]));
}

#[wisp::test]
fn a_memfs_answers_a_readdir_with_what_fits_and_goes_on_by_name() {
    let n = 5000;
    let mut fs = MemFs::new().with_dir("d");
    for i in 0..n {
        fs.insert_file(&format!("d/{i:05}-{}", "x".repeat(40)), "").unwrap();
    }
    let d = fs.open("d", rd()).unwrap().handle;
    // One answer: more than any READDIR holds (64 KiB), not the whole rest
    // of the directory (each READDIR copied out all of it: a listing read
    // 4 KiB at a time cost the square of its length).
    let first = fs.readdir(d, 0).unwrap();
    let bytes: usize = first.iter().map(|e| 24 + e.name.len()).sum();
    assert!(bytes > 65536 && first.len() < n, "{} entries, {bytes} bytes", first.len());
    // Read as wasi-libc does, 4 KiB at a time from the last whole entry's
    // d_next: every name once, in order.
    let mut seen = Vec::new();
    let mut cookie = 0;
    loop {
        let req = Request::ReadDir { handle: d, cookie, len: 4096 };
        let reply = fs.answer(&req).unwrap().to_bytes(&req);
        let (e, _, _, data) = parse_reply(&reply);
        assert_eq!(e, 0);
        let ents = unpack(&data);
        if ents.is_empty() {
            break;
        }
        cookie = ents.last().unwrap().0;
        seen.extend(ents.into_iter().map(|(_, name)| name));
    }
    let want: Vec<String> = (0..n).map(|i| format!("{i:05}-{}", "x".repeat(40))).collect();
    assert_eq!(seen, want);
    // Ten listings at once, in turns: more than the MemFs keeps answers
    // to go on from (it holds a few, not 64 KiB per handle); those it
    // dropped go on by position, and each is whole.
    let hs: Vec<u64> = (0..10).map(|_| fs.open("d", rd()).unwrap().handle).collect();
    let mut cookies = vec![0u64; hs.len()];
    let mut lists = vec![Vec::new(); hs.len()];
    let mut open = hs.len();
    while open > 0 {
        for (k, &h) in hs.iter().enumerate() {
            if cookies[k] == u64::MAX {
                continue;
            }
            let req = Request::ReadDir { handle: h, cookie: cookies[k], len: 4096 };
            let ents = unpack(&parse_reply(&fs.answer(&req).unwrap().to_bytes(&req)).3);
            match ents.last() {
                Some(&(next, _)) => cookies[k] = next,
                None => {
                    cookies[k] = u64::MAX;
                    open -= 1;
                }
            }
            lists[k].extend(ents.into_iter().map(|(_, name)| name));
        }
    }
    assert!(lists.iter().all(|l| *l == want));
    for h in hs {
        fs.close(h);
    }
    // A position asked out of turn is still a position.
    assert_eq!(fs.readdir(d, 4998).unwrap().iter().map(|e| &e.name).collect::<Vec<_>>(), [&want[4998], &want[4999]]);
    assert_eq!(fs.readdir(d, 7).unwrap()[0].name, want[7]);
    assert_eq!(fs.readdir(d, n as u64), Ok(vec![]));
}

#[wisp::test]
fn a_memfs_is_bounded_in_size() {
    let mut fs = MemFs::new().size_limit(1000);
    let base = fs.size();
    assert_eq!(base, 64, "the root: 64 and its empty path");
    let create = OpenFlags { create: true, ..wr() };
    let f = fs.open("f", create).unwrap().handle;
    assert_eq!(fs.size(), base + 65);
    // A file that alone would pass the limit: EFBIG; far past it too, and
    // nothing is allocated for it.
    assert_eq!(fs.write(f, WriteAt::Offset(1000), b"x"), Err(Errno::FBIG));
    assert_eq!(fs.write(f, WriteAt::Offset(u64::MAX - 1), b"xy"), Err(Errno::FBIG));
    assert_eq!(fs.write(f, WriteAt::Offset(u64::MAX), b"x"), Err(Errno::FBIG));
    assert_eq!(fs.file("f"), Some(&b""[..]));
    // Within it, and then the rest by another file: ENOSPC.
    assert_eq!(fs.write(f, WriteAt::Offset(0), &[7; 700]), Ok(700));
    let g = fs.open("g", create).unwrap().handle;
    assert_eq!(fs.write(g, WriteAt::End, &[1; 200]), Err(Errno::NOSPC));
    assert_eq!(fs.write(g, WriteAt::End, &[1; 100]), Ok(100));
    assert_eq!(fs.size(), base + 65 + 700 + 65 + 100);
    assert_eq!(fs.open("h", create), Err(Errno::NOSPC), "a name costs too");
    // Writing over what is there costs nothing; truncating gives it back.
    assert_eq!(fs.write(f, WriteAt::Offset(0), &[8; 700]), Ok(700));
    fs.open("f", OpenFlags { truncate: true, ..wr() }).unwrap();
    assert_eq!(fs.size(), base + 65 + 65 + 100);
    assert!(fs.open("h", create).is_ok());
    // The parent's own insertions count, and are never refused for size.
    fs.insert_file("big", vec![0; 5000]).unwrap();
    assert!(fs.size() > 5000);
    assert_eq!(fs.write(g, WriteAt::End, b"x"), Err(Errno::NOSPC));
}

#[wisp::test]
fn a_memfs_answers_a_call_it_cannot_send_with_an_error() {
    // A program wrote a file larger than a message may be (64 MiB): the
    // parent's read and snapshot could not be answered, and waited for
    // ever. Now they fail, and the server serves on.
    let server = MemFs::new().size_limit(100 << 20).spawn().unwrap();
    let pid = server.pid();
    let (e, _, handle, _) = ask(pid, &[header(1, 1, 0, 0, 0, 2), b"big".to_vec()].concat());
    assert_eq!(e, 0);
    assert_eq!(ask(pid, &[header(3, 0, handle, 65 << 20, 0, 0), b"end".to_vec()].concat()), (0, 0, 3, vec![]));
    for e in [server.read("big").unwrap_err(), server.snapshot().unwrap_err()] {
        assert_eq!(e.kind(), io::ErrorKind::Other, "{e}");
        assert!(e.to_string().ends_with("the answer is larger than a message may be"), "{e}");
    }
    server.insert_file("small", "ok").unwrap();
    assert_eq!(server.read("small").unwrap().as_deref(), Some(&b"ok"[..]));
    assert_eq!(ask(pid, &header(2, 0, handle, (65 << 20) + 1, 10, 0)).3, b"nd");
    pid.kill();
}

#[wisp::test]
fn a_memfs_takes_what_any_process_sends_in_its_stride() {
    // Any process may send a request (the server cannot tell it from the
    // host's): odd ones are answered, or dropped, and the server goes on.
    let server = MemFs::new().with_file("f", "data").spawn().unwrap();
    let pid = server.pid();
    // No ref: no answer wanted, none sent (a READ, an OPEN, garbage).
    pid.send_raw(sys::TAG_FILE, &header(2, 0, 1, 0, 10, 0)).unwrap();
    pid.send_raw(sys::TAG_FILE, &[header(1, 0, 0, 0, 0, 1), b"f".to_vec()].concat()).unwrap();
    pid.send_raw(sys::TAG_FILE, b"junk").unwrap();
    // A request whose sender gives up at once and ends before the answer:
    // the answer goes nowhere.
    let asker = wisp::spawn(pid, |pid: Pid, _: wisp::Mailbox<()>| {
        let req = [header(5, 0, 0, 0, 0, 0), b"f".to_vec()].concat();
        let mut info = sys::MsgInfo::default();
        let mut buf = [0u8; 128];
        let _ = unsafe {
            sys::request(pid.raw(), sys::TAG_FILE, req.as_ptr(), req.len() as u32, 0, buf.as_mut_ptr(), 128, &mut info)
        };
    })
    .unwrap();
    while asker.is_alive() {
        wisp::yield_now();
    }
    // Paths the host never sends: "..", a NUL; handles never opened;
    // a listing from past any end.
    assert_eq!(ask(pid, &[header(1, 0, 0, 0, 0, 1), b"../f".to_vec()].concat()).0, Errno::INVAL.raw());
    assert_eq!(ask(pid, &[header(1, 0, 0, 0, 0, 1), b"f\0x".to_vec()].concat()).0, Errno::NOENT.raw());
    assert_eq!(ask(pid, &header(2, 0, 999, 0, 10, 0)).0, Errno::BADF.raw());
    let (_, _, root, _) = ask(pid, &root_open());
    assert_eq!(ask(pid, &header(6, 0, root, u64::MAX, 4096, 0)), (0, 0, 0, vec![]));
    // And the server is whole.
    assert_eq!(server.read("f").unwrap().as_deref(), Some(&b"data"[..]));
    pid.kill();
}
