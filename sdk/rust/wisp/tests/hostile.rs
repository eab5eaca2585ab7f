//! What a hostile peer can do to a process using the crate: messages built
//! by hand to hurt their receiver. Each test in its own wisp process.
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wisp::server::{Context, Handlers};
use wisp::codec::{Raw, MAX_DEPTH};
use wisp::{CallError, Deferred, Handle, HandleDeferred, Mailbox, Pid, RecvError, Server};

const SEC: Duration = Duration::from_secs(5);

/// A recursive message type: nothing in the type bounds how deep a value
/// of it nests.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum Tree {
    Leaf,
    Node(Vec<Tree>),
}

/// bincode of `depth` nested one-child nodes: `Node([Node([... Leaf])])`.
fn deep_tree(depth: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(2 * depth + 1);
    for _ in 0..depth {
        b.extend_from_slice(&[1, 1]); // variant Node, a Vec of length 1
    }
    b.push(0); // Leaf
    b
}

/// The key the server protocol puts before a message of type `M`.
fn key<M>() -> [u8; 8] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in std::any::type_name::<M>().bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h.to_le_bytes()
}

struct Forest {
    trees: u32,
}

#[derive(Serialize, Deserialize, Debug)]
struct Count;

impl Server for Forest {
    type Arg = ();
    fn init(_: (), _: &mut Context<Self>) -> Result<Self, String> {
        Ok(Forest { trees: 0 })
    }
    fn handlers(h: &mut Handlers<Self>) {
        h.handle::<Tree>().handle::<Count>().deferred::<Slow>();
    }
    fn handle_bad_message(&mut self, _: RecvError, _: &mut Context<Self>) {}
}

impl Handle<Tree> for Forest {
    type Reply = u32;
    fn handle(&mut self, _: Tree, _: &mut Context<Self>) -> u32 {
        self.trees += 1;
        self.trees
    }
}

impl Handle<Count> for Forest {
    type Reply = u32;
    fn handle(&mut self, _: Count, _: &mut Context<Self>) -> u32 {
        self.trees
    }
}

/// Deferred: `Slow(mode)` hands the token to a worker that misbehaves as
/// `mode` says.
#[derive(Serialize, Deserialize, Debug)]
struct Slow(u8);

impl HandleDeferred<Slow> for Forest {
    type Reply = u64;
    fn handle_deferred(&mut self, Slow(mode): Slow, reply: Deferred<u64>, _: &mut Context<Self>) {
        match mode {
            // Dropped unanswered, here.
            0 => drop(reply),
            // Handed to a worker that ends without answering.
            1 => {
                wisp::spawn!(|reply| {
                    let _ = &reply;
                })
                .unwrap();
            }
            // Handed to a worker that dies without answering.
            2 => {
                wisp::spawn!(|reply| {
                    let _ = &reply;
                    panic!("worker dies");
                })
                .unwrap();
            }
            // Answered with the wrong type by a worker that forged the token's type.
            3 => {
                let bytes = wisp::codec::encode(&reply).unwrap();
                wisp::spawn!(|bytes| {
                    let forged: Deferred<String> = wisp::codec::decode(&bytes).unwrap();
                    forged.reply(&"not a u64 at all".to_string()).unwrap();
                })
                .unwrap();
            }
            // Answered twice.
            _ => {
                let bytes = wisp::codec::encode(&reply).unwrap();
                let again: Deferred<u64> = wisp::codec::decode(&bytes).unwrap();
                reply.reply(&1).unwrap();
                again.reply(&2).unwrap();
            }
        }
    }
}

/// A call from "another process" with hand-made bytes: `key`, then `body`.
fn raw_call(to: Pid, key: [u8; 8], body: &[u8]) -> Result<u32, CallError> {
    let mut bytes = key.to_vec();
    bytes.extend_from_slice(body);
    to.typed::<Vec<u8>>().with_codec::<Raw>().call::<u32>(&bytes, SEC)
}

#[wisp::test]
fn a_deeply_nested_request_is_refused_and_the_server_goes_on() {
    let s = Forest::start(()).unwrap();
    // A kilobyte nesting 500 deep was enough to exhaust the server's stack.
    for depth in [500, 200_000] {
        match raw_call(s.pid(), key::<Tree>(), &deep_tree(depth)) {
            Err(CallError::BadRequest(why)) => {
                assert!(why.contains("nests deeper than 128 levels"), "{why}");
                assert!(why.contains("hostile::Tree"), "{why}");
            }
            other => panic!("depth {depth}: {other:?}"),
        }
    }
    // As a cast too; then the server still answers.
    let mut cast = key::<Tree>().to_vec();
    cast.extend(deep_tree(100_000));
    s.pid().send_raw(wisp::TAG_CAST, &cast).unwrap();
    assert_eq!(s.call(&Count).unwrap(), 0);
    // Within the limit a recursive message is an ordinary one.
    assert_eq!(raw_call(s.pid(), key::<Tree>(), &deep_tree(MAX_DEPTH / 2 - 1)), Ok(1));
    assert_eq!(s.call(&Count).unwrap(), 1);
}

#[wisp::test]
fn a_deeply_nested_message_is_a_decode_error_in_every_codec() {
    let mb = Mailbox::<Tree>::new();
    let me = mb.process().pid();
    me.send_raw(wisp::TAG_MSG, &deep_tree(200_000)).unwrap();
    match mb.receive_timeout(SEC) {
        Err(RecvError::Decode { error, .. }) => assert!(error.0.contains("nests deeper than"), "{error}"),
        other => panic!("{other:?}"),
    }
    // The deepest value allowed decodes, one more level is refused.
    me.send_raw(wisp::TAG_MSG, &deep_tree(MAX_DEPTH / 2 - 1)).unwrap();
    assert!(mb.receive_timeout(SEC).is_ok());
    me.send_raw(wisp::TAG_MSG, &deep_tree(MAX_DEPTH / 2)).unwrap();
    assert!(matches!(mb.receive_timeout(SEC), Err(RecvError::Decode { .. })));
    #[cfg(feature = "msgpack")]
    {
        // MessagePack's own limit (1024) is past what the stack holds.
        let mut b = Vec::new();
        for _ in 0..1000 {
            b.extend_from_slice(&[0x81, 0xa4]); // {"Node": [
            b.extend_from_slice(b"Node");
            b.push(0x91);
        }
        b.extend_from_slice(&[0xa4]);
        b.extend_from_slice(b"Leaf");
        me.send_raw(wisp::TAG_MSG, &b).unwrap();
        let mp = Mailbox::<Tree>::new().with_codec::<wisp::codec::MessagePack>();
        match mp.receive_timeout(SEC) {
            Err(RecvError::Decode { error, .. }) => assert!(error.0.contains("nests deeper than"), "{error}"),
            other => panic!("{other:?}"),
        }
    }
    #[cfg(feature = "json")]
    {
        let text = format!("{}\"Leaf\"{}", "{\"Node\":[".repeat(1000), "]}".repeat(1000));
        me.send_raw(wisp::TAG_MSG, text.as_bytes()).unwrap();
        let js = Mailbox::<Tree>::new().with_codec::<wisp::codec::Json>();
        assert!(matches!(js.receive_timeout(SEC), Err(RecvError::Decode { .. })));
        // A JSON value within the limit is one.
        let text = format!("{}\"Leaf\"{}", "{\"Node\":[".repeat(10), "]}".repeat(10));
        me.send_raw(wisp::TAG_MSG, text.as_bytes()).unwrap();
        assert!(js.receive_timeout(SEC).is_ok());
    }
}

/// 2 KiB: 4096 of them (what serde reserves for a length it cannot
/// believe) are 8 MiB.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Big([[u64; 32]; 8]);

#[wisp::test]
fn huge_length_prefixes_reserve_no_more_than_the_message_holds() {
    // Lengths of 2^32 - 1 at every level, to a process allowed 4 MiB: the
    // decoder once reserved 8 MiB for them, and the process died.
    let caps = wisp::Caps::inherit().unwrap().max_memory(4 << 20).unwrap();
    let me = Mailbox::<String>::new();
    let p = wisp::spawn_with(&caps, me.process(), |parent, mb: Mailbox<Vec<Vec<Big>>>| {
        let r = mb.receive_timeout(SEC);
        parent.send(&format!("{:?}", r.map(|v| v.len())));
    })
    .unwrap();
    let mut b = Vec::new();
    for _ in 0..3 {
        b.push(0xfc);
        b.extend(u32::MAX.to_le_bytes());
    }
    p.pid().send_raw(wisp::TAG_MSG, &b).unwrap();
    let got = me.receive_timeout(SEC).unwrap();
    assert!(got.contains("Decode") && got.contains("the message ended early"), "{got}");
    // Honest lengths still decode, as many elements as they say.
    let mb = Mailbox::<Vec<()>>::new();
    mb.process().send(&vec![(); 100_000]);
    assert_eq!(mb.receive_timeout(SEC).unwrap().len(), 100_000);
}

#[wisp::test]
fn a_dropped_reply_token_answers_at_once_and_a_forged_one_cannot_confuse() {
    let s = Forest::start(()).unwrap();
    // Dropped by the handler, or by a worker that returned: NoReply, not a
    // wait for the timeout (a minute here: the test would time out).
    let long = Duration::from_secs(60);
    assert_eq!(s.call_timeout(&Slow(0), long), Err(CallError::NoReply));
    assert_eq!(s.call_timeout(&Slow(1), long), Err(CallError::NoReply));
    // A worker that dies runs no destructor: the caller's timeout ends it.
    assert_eq!(s.call_timeout(&Slow(2), Duration::from_millis(300)), Err(CallError::Timeout));
    // A token retyped by its holder: the caller's decode names its type.
    match s.call(&Slow(3)) {
        Err(CallError::Decode(e)) => assert!(e.0.contains("expected a u64"), "{e}"),
        other => panic!("{other:?}"),
    }
    // Answered twice: the first answer counts, the second is a stray message.
    assert_eq!(s.call(&Slow(4)), Ok(1));
    assert_eq!(s.call(&Count).unwrap(), 0);
}

