//! wisp::term against a real erl, driven by tests/e2e/test_term.py: the
//! same commands as tests/guests/c/term_copy.c, one per line on stdin.
//!
//!   copy HEX   the term travels to this process as a TAG_TERM message,
//!              is decoded into a Term and encoded again: "ok HEX" or
//!              "error WHY"
//!   pid HEX    the term is a pid: "pid N" or "error WHY"
//!   build      terms made with the constructors: "NAME HEX" lines, "end"
use std::io::{self, BufRead, Write};
use std::time::Duration;

use wisp::{Mailbox, Pid, Term, TAG_TERM};

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap()).collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn copy(mb: &Mailbox<()>, bytes: &[u8]) -> String {
    let me = mb.process().pid();
    me.send_raw(TAG_TERM, bytes).unwrap();
    let env = mb.receive_matching(&[TAG_TERM], Duration::from_secs(10)).unwrap();
    match Term::decode(&env.bytes).and_then(|t| t.encode()) {
        Ok(out) => format!("ok {}", hex(&out)),
        Err(e) => format!("error {e}"),
    }
}

fn pid(bytes: &[u8]) -> String {
    match Term::decode(bytes) {
        Ok(Term::Pid(p)) => format!("pid {}", p.raw()),
        Ok(other) => format!("error not a wisp pid: {other:?}"),
        Err(e) => format!("error {e}"),
    }
}

fn build(out: &mut impl Write) {
    let ints: [i64; 13] =
        [0, 127, 128, 255, 256, -1, -128, i32::MAX as i64, i32::MIN as i64, i32::MAX as i64 + 1,
         i32::MIN as i64 - 1, i64::MAX, i64::MIN];
    let mut terms: Vec<(String, Term)> = ints.iter().map(|&i| (format!("int:{i}"), Term::from(i))).collect();
    let long_string: String = (0..70000).map(|i| (b'a' + (i % 26) as u8) as char).collect();
    terms.extend([
        ("uint_max".into(), Term::from(u64::MAX)),
        ("float".into(), Term::from(1.5)),
        ("float_tiny".into(), Term::from(5e-324)),
        ("float_neg".into(), Term::from(-1e300)),
        ("atom".into(), Term::atom("ok")),
        ("atom_empty".into(), Term::atom("")),
        ("atom_utf8".into(), Term::atom("héllo €")),
        ("atom_long".into(), Term::atom(&"€".repeat(255))),
        ("binary".into(), Term::binary(vec![0, 1, 2, 255])),
        ("binary_empty".into(), Term::from("")),
        ("string".into(), Term::charlist("abc")),
        ("string_empty".into(), Term::charlist("")),
        ("string_long".into(), Term::charlist(&long_string)),
        ("tuple".into(), Term::tuple(vec![Term::atom("ok"), 1.into()])),
        ("tuple_empty".into(), Term::tuple(vec![])),
        ("tuple_large".into(), Term::tuple((1..=300).map(Term::from).collect())),
        ("list".into(), Term::list(vec![1.into(), 1000.into()])),
        ("map".into(), Term::map(vec![
            (Term::atom("a"), 1.into()),
            (Term::atom("b"), Term::list(vec![Term::atom("x")])),
        ])),
        ("map_empty".into(), Term::map(vec![])),
        ("pid".into(), Term::Pid(Pid::from_raw(5 << 32 | 7))),
        ("pid_max".into(), Term::Pid(Pid::from_raw(u64::MAX))),
        ("nested".into(), Term::tuple(vec![
            Term::atom("reply"),
            Term::Pid(Pid::from_raw(42)),
            Term::map(vec![(Term::from("k"), Term::list(vec![0.25.into(), Term::charlist("hi")]))]),
        ])),
        ("charlist_unicode".into(), Term::charlist("h€llo")),
        ("bool".into(), Term::from(true)),
        ("int_i128_min".into(), Term::Int(i128::MIN)),
    ]);
    for (name, t) in terms {
        match t.encode() {
            Ok(b) => writeln!(out, "{name} {}", hex(&b)).unwrap(),
            Err(e) => writeln!(out, "{name} error {e}").unwrap(),
        }
    }
    writeln!(out, "end").unwrap();
}

fn main() {
    let mb = Mailbox::<()>::new();
    let stdout = io::stdout();
    let mut out = stdout.lock();
    for line in io::stdin().lock().lines() {
        let line = line.unwrap();
        let (cmd, arg) = line.split_once(' ').unwrap_or((&line, ""));
        match cmd {
            "copy" => writeln!(out, "{}", copy(&mb, &unhex(arg))).unwrap(),
            "pid" => writeln!(out, "{}", pid(&unhex(arg))).unwrap(),
            "build" => build(&mut out),
            _ => writeln!(out, "unknown command").unwrap(),
        }
    }
}
