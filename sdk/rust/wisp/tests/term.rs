//! Erlang terms (wisp::term): the exact bytes at integer boundaries, round
//! trips of every variant, and bad input (every prefix of a term, unknown
//! tags, nesting past the limit, damaged bytes) refused without a panic.
//! Agreement with a real erl is the repository's tests/e2e/test_term.py.
use std::time::Duration;

use wisp::term::MAX_DEPTH;
use wisp::{Mailbox, Pid, Term, TermError, TAG_TERM};

fn enc(t: &Term) -> Vec<u8> {
    t.encode().unwrap()
}

fn round_trip(t: &Term) {
    let bytes = enc(t);
    assert_eq!(&Term::decode(&bytes).unwrap(), t, "{bytes:?}");
}

/// {ok, -1, ...}: every variant, nested.
fn sample() -> Term {
    let reference = vec![
        90, 0, 3, 100, 0, 13, b'n', b'o', b'n', b'o', b'd', b'e', b'@', b'n', b'o', b'h', b'o', b's', b't', 0, 0,
        0, 0, 0, 2, 90, 79, 197, 128, 0, 2, 235, 233, 240, 200,
    ];
    Term::tuple(vec![
        Term::atom("ok"),
        Term::from(-1),
        Term::from(300),
        Term::from(i64::MIN),
        Term::from(u64::MAX),
        Term::Int(i128::MIN),
        Term::from(-2.5),
        Term::atom("héllo"),
        Term::from("text"),
        Term::charlist("abc"),
        Term::list(vec![1.into(), Term::list(vec![2.into()]), Term::tuple(vec![])]),
        Term::map(vec![(Term::atom("a"), 1.into()), (Term::charlist("k"), Term::binary(Vec::<u8>::new()))]),
        Term::Pid(Pid::from_raw(3 << 32 | 4)),
        Term::nil(),
        Term::Opaque(reference),
        Term::from(true),
    ])
}

#[wisp::test]
fn integers_are_written_as_erlang_writes_them() {
    let cases: &[(i128, &[u8])] = &[
        (0, &[131, 97, 0]),
        (127, &[131, 97, 127]),
        (128, &[131, 97, 128]),
        (255, &[131, 97, 255]),
        (256, &[131, 98, 0, 0, 1, 0]),
        (-1, &[131, 98, 255, 255, 255, 255]),
        (i32::MAX as i128, &[131, 98, 0x7f, 255, 255, 255]),
        (i32::MIN as i128, &[131, 98, 0x80, 0, 0, 0]),
        (i32::MAX as i128 + 1, &[131, 110, 4, 0, 0, 0, 0, 0x80]),
        (i32::MIN as i128 - 1, &[131, 110, 4, 1, 1, 0, 0, 0x80]),
        (i64::MAX as i128, &[131, 110, 8, 0, 255, 255, 255, 255, 255, 255, 255, 0x7f]),
        (i64::MIN as i128, &[131, 110, 8, 1, 0, 0, 0, 0, 0, 0, 0, 0x80]),
        (u64::MAX as i128, &[131, 110, 8, 0, 255, 255, 255, 255, 255, 255, 255, 255]),
        (1 << 64, &[131, 110, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
    ];
    for &(v, bytes) in cases {
        assert_eq!(enc(&Term::Int(v)), bytes, "{v}");
        assert_eq!(Term::decode(bytes).unwrap(), Term::Int(v));
    }
    for v in [i128::MIN, i128::MAX, i128::MIN + 1, -(1 << 100)] {
        round_trip(&Term::Int(v));
    }
    assert_eq!(Term::from(u64::MAX).as_u64(), Some(u64::MAX));
    assert_eq!(Term::from(u64::MAX).as_i64(), None);
    assert_eq!(Term::from(-5).as_u64(), None);
    assert_eq!(Term::from(-5i64).as_i64(), Some(-5));
    // LARGE_BIG_EXT, leading zero digits, negative zero: read
    assert_eq!(Term::decode(&[131, 111, 0, 0, 0, 2, 1, 0x34, 0x12]).unwrap(), Term::Int(-0x1234));
    assert_eq!(Term::decode(&[131, 110, 3, 0, 5, 0, 0]).unwrap(), Term::Int(5));
    assert_eq!(Term::decode(&[131, 110, 1, 1, 0]).unwrap(), Term::Int(0));
}

#[wisp::test]
fn integers_beyond_i128_stay_opaque() {
    // 2^127 and -(2^127) - 1 do not fit; -(2^127) does
    let mut big = vec![131, 110, 16, 0];
    big.extend([0; 15]);
    big.push(0x80);
    assert_eq!(Term::decode(&big).unwrap(), Term::Opaque(big[1..].to_vec()));
    big[3] = 1;
    assert_eq!(Term::decode(&big).unwrap(), Term::Int(i128::MIN));
    big[4] = 1;
    let t = Term::decode(&big).unwrap();
    assert_eq!(t, Term::Opaque(big[1..].to_vec()));
    assert_eq!(enc(&t), big); // written back as it came
}

#[wisp::test]
fn every_variant_round_trips() {
    let s = sample();
    round_trip(&s);
    for t in s.as_tuple().unwrap() {
        round_trip(t);
    }
    round_trip(&Term::Float(-0.0));
    assert!(Term::decode(&enc(&Term::Float(-0.0))).unwrap().as_f64().unwrap().is_sign_negative());
    round_trip(&Term::tuple((0..300).map(Term::from).collect()));
    round_trip(&Term::binary(vec![7; 100_000]));
    round_trip(&Term::atom(&"é".repeat(255)));
    round_trip(&Term::list((0..70_000).map(|i: i32| Term::from(i % 256)).collect()));
}

#[wisp::test]
fn exact_bytes_of_the_other_types() {
    assert_eq!(enc(&Term::from(1.5)), [131, 70, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]);
    assert_eq!(enc(&Term::atom("ok")), [131, 119, 2, b'o', b'k']);
    assert_eq!(enc(&Term::from("ab")), [131, 109, 0, 0, 0, 2, b'a', b'b']);
    assert_eq!(enc(&Term::charlist("ab")), [131, 107, 0, 2, b'a', b'b']);
    assert_eq!(enc(&Term::nil()), [131, 106]);
    assert_eq!(enc(&Term::charlist("")), [131, 106]);
    assert_eq!(
        enc(&Term::list(vec![1.into(), 256.into()])),
        [131, 108, 0, 0, 0, 2, 97, 1, 98, 0, 0, 1, 0, 106]
    );
    assert_eq!(enc(&Term::tuple(vec![Term::atom("a")])), [131, 104, 1, 119, 1, b'a']);
    assert_eq!(enc(&Term::tuple(vec![Term::nil(); 256]))[..6], [131, 105, 0, 0, 1, 0]);
    assert_eq!(enc(&Term::map(vec![(1.into(), 2.into())])), [131, 116, 0, 0, 0, 1, 97, 1, 97, 2]);
    assert_eq!(
        enc(&Term::Pid(Pid::from_raw(5 << 32 | 7))),
        [131, 88, 119, 0, 0, 0, 0, 7, 0, 0, 0, 5, 0, 0, 0, 0]
    );
    // 255 characters of two bytes: ATOM_UTF8_EXT
    let long = enc(&Term::atom(&"é".repeat(255)));
    assert_eq!(long[..4], [131, 118, 1, 254]);
    // a charlist beyond Latin-1 is a LIST_EXT
    assert_eq!(enc(&Term::charlist("€"))[..6], [131, 108, 0, 0, 0, 1]);
    assert_eq!(Term::charlist("h€llo").as_charlist().as_deref(), Some("h€llo"));
}

#[wisp::test]
fn erlang_encodings_the_encoder_never_writes_are_read() {
    // Latin-1 atoms (OTP 25's ATOM_EXT, SMALL_ATOM_EXT)
    assert_eq!(Term::decode(&[131, 100, 0, 4, b'c', b'a', b'f', 0xe9]).unwrap(), Term::atom("café"));
    assert_eq!(Term::decode(&[131, 115, 2, b'o', b'k']).unwrap(), Term::atom("ok"));
    // FLOAT_EXT (minor_version 0)
    let mut old = vec![131, 99];
    old.extend(b"1.50000000000000000000e+00");
    old.resize(33, 0);
    assert_eq!(Term::decode(&old).unwrap(), Term::from(1.5));
    // a list whose tail is a list or a string is one proper list
    assert_eq!(
        Term::decode(&[131, 108, 0, 0, 0, 1, 97, 1, 108, 0, 0, 0, 1, 97, 2, 107, 0, 1, 3]).unwrap(),
        Term::list(vec![1.into(), 2.into(), 3.into()])
    );
    // an empty LIST_EXT is []
    assert_eq!(Term::decode(&[131, 108, 0, 0, 0, 0, 106]).unwrap(), Term::nil());
    // the empty node in the old atom encoding is the empty node
    assert_eq!(
        Term::decode(&[131, 88, 100, 0, 0, 0, 0, 0, 7, 0, 0, 0, 5, 0, 0, 0, 0]).unwrap(),
        Term::Pid(Pid::from_raw(5 << 32 | 7))
    );
}

#[wisp::test]
fn what_the_variants_cannot_hold_is_opaque_and_written_back_as_it_came() {
    let cases: &[&[u8]] = &[
        // [a | b]
        &[108, 0, 0, 0, 1, 119, 1, b'a', 119, 1, b'b'],
        // a named node's pid, and an empty node's with a Creation
        &[88, 119, 3, b'a', b'@', b'b', 0, 0, 0, 7, 0, 0, 0, 5, 0, 0, 0, 1],
        &[88, 119, 0, 0, 0, 0, 7, 0, 0, 0, 5, 0, 0, 0, 1],
        // the old PID_EXT, a port, an export, a fun's frame, a bitstring
        &[103, 119, 0, 0, 0, 0, 7, 0, 0, 0, 5, 0],
        &[120, 119, 1, b'n', 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 1],
        &[113, 119, 1, b'm', 119, 1, b'f', 97, 2],
        &[112, 0, 0, 0, 7, 1, 2, 3],
        &[77, 0, 0, 0, 1, 3, 0xe0],
    ];
    for &c in cases {
        let mut bytes = vec![131];
        bytes.extend_from_slice(c);
        let t = Term::decode(&bytes).unwrap();
        assert_eq!(t, Term::Opaque(c.to_vec()));
        assert_eq!(enc(&t), bytes);
        // inside a tuple as well
        let pair = Term::tuple(vec![t.clone(), t]);
        round_trip(&pair);
    }
}

#[wisp::test]
fn unencodable_terms_are_errors() {
    for t in [
        Term::Float(f64::NAN),
        Term::Float(f64::INFINITY),
        Term::atom(&"a".repeat(256)),
        Term::Opaque(vec![97, 1, 97, 2]),
        Term::Opaque(vec![109, 0, 0, 0, 9]),
        Term::Opaque(vec![]),
        Term::tuple(vec![Term::Opaque(vec![200])]),
    ] {
        assert!(matches!(t.encode(), Err(TermError::Unencodable(_))), "{t:?}");
    }
    // the error reaches a sender as an encode error; nothing is sent
    let mb = Mailbox::<()>::new();
    let err = Term::Float(f64::NAN).send_to(mb.process().pid()).unwrap_err();
    assert!(err.to_string().contains("NaN"), "{err}");
    assert!(mb.receive_matching(&[TAG_TERM], Duration::ZERO).is_err());
}

#[wisp::test]
fn every_prefix_of_a_term_is_an_error() {
    let bytes = enc(&sample());
    for len in 0..bytes.len() {
        match Term::decode(&bytes[..len]) {
            Err(TermError::Truncated) => {}
            other => panic!("prefix of {len} bytes: {other:?}"),
        }
    }
    let mut longer = bytes.clone();
    longer.push(106);
    assert_eq!(Term::decode(&longer), Err(TermError::TrailingBytes(1)));
}

#[wisp::test]
fn malformed_input_says_what_and_where() {
    let bad: &[(&[u8], &str)] = &[
        (&[130, 97, 1], "version byte 130"),
        (&[131, 200], "unknown tag 200 at byte 1"),
        (&[131, 80, 0, 0, 0, 1, 120], "compressed"),
        (&[131, 104, 1, 117, 0], "unknown tag 117 at byte 3"),
        (&[131, 119, 1, 0xff], "not UTF-8"),
        (&[131, 70, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0], "not finite"),
        (&[131, 88, 97, 0, 0, 0, 0, 7, 0, 0, 0, 5, 0, 0, 0, 0], "tag 97 where an atom belongs"),
        (&[131, 112, 0, 0, 0, 3], "shorter than its size"),
    ];
    for &(bytes, why) in bad {
        match Term::decode(bytes) {
            Err(e @ TermError::Malformed(_)) => assert!(e.to_string().contains(why), "{e} / {why}"),
            other => panic!("{bytes:?}: {other:?}"),
        }
    }
    // counts larger than the input could hold: refused before allocating
    assert_eq!(Term::decode(&[131, 108, 255, 255, 255, 255, 106]), Err(TermError::Truncated));
    assert_eq!(Term::decode(&[131, 116, 0, 0, 0, 4, 97, 1, 97, 2, 97, 3]), Err(TermError::Truncated));
    assert_eq!(Term::decode(&[131]), Err(TermError::Truncated));
    assert_eq!(Term::decode(&[]), Err(TermError::Truncated));
}

/// `levels` tuples (kind 0), lists (1) or map values (2) around 0.
fn nested(kind: u8, levels: usize) -> Vec<u8> {
    let head: &[u8] = match kind {
        0 => &[104, 1],
        1 => &[108, 0, 0, 0, 1],
        _ => &[116, 0, 0, 0, 1, 97, 0],
    };
    let mut b = vec![131];
    for _ in 0..levels {
        b.extend_from_slice(head);
    }
    b.extend([97, 0]);
    if kind == 1 {
        b.extend(std::iter::repeat(106).take(levels));
    }
    b
}

#[wisp::test]
fn nesting_beyond_the_limit_is_refused_both_ways() {
    for kind in 0..3 {
        let t = Term::decode(&nested(kind, MAX_DEPTH)).unwrap();
        round_trip(&t);
        assert_eq!(Term::decode(&nested(kind, MAX_DEPTH + 1)), Err(TermError::TooDeep));
        // far deeper: refused as fast, the process's 64 KiB stack untouched
        assert_eq!(Term::decode(&nested(kind, 200_000)), Err(TermError::TooDeep));
        let mut deeper = t;
        deeper = Term::tuple(vec![deeper]);
        assert_eq!(deeper.encode(), Err(TermError::TooDeep));
    }
    // a list continued by list tails is one list, however many links
    let mut b = vec![131];
    for _ in 0..100_000 {
        b.extend([108, 0, 0, 0, 1, 97, 1]);
    }
    b.push(106);
    assert_eq!(Term::decode(&b).unwrap().as_list().unwrap().len(), 100_000);
}

#[wisp::test]
fn damaged_bytes_never_panic() {
    let bytes = enc(&sample());
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut decoded = 0;
    for round in 0..5000 {
        let mut b = bytes.clone();
        for _ in 0..1 + round % 4 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let at = 1 + (x as usize) % (b.len() - 1);
            b[at] = (x >> 32) as u8;
        }
        if round % 3 == 0 {
            b.truncate(1 + ((x >> 40) as usize) % (b.len() - 1));
        }
        if let Ok(t) = Term::decode(&b) {
            decoded += 1;
            // what decodes, encodes, and decodes to itself
            if let Ok(again) = t.encode() {
                assert_eq!(Term::decode(&again).as_ref(), Ok(&t));
            }
        }
    }
    assert!(decoded > 0);
}

#[wisp::test]
fn terms_travel_as_tag_term_messages() {
    let mb = Mailbox::<()>::new();
    let me = mb.process().pid();
    let t = Term::tuple(vec![Term::atom("hello"), Term::Pid(me), sample()]);
    let peer = wisp::spawn!(|me| {
        // echo one term back, with the sender's pid put first
        let mb = Mailbox::<()>::new();
        let env = mb.receive_matching(&[TAG_TERM], wisp::FOREVER).unwrap();
        let got = Term::decode(&env.bytes).unwrap();
        Term::tuple(vec![Term::Pid(env.from), got]).send_to(me).unwrap();
    })
    .unwrap();
    t.send_to(peer.pid()).unwrap();
    let env = mb.receive_matching(&[TAG_TERM], Duration::from_secs(5)).unwrap();
    assert_eq!(env.bytes[0], 131);
    let back = Term::decode(&env.bytes).unwrap();
    assert_eq!(back, Term::tuple(vec![Term::Pid(me), t]));
    assert_eq!(back.as_tuple().unwrap()[1].as_tuple().unwrap()[1].as_pid(), Some(me));
}
