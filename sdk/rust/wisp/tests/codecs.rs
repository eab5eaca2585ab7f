//! Codecs per mailbox: JSON and MessagePack (features `json`, `msgpack`:
//! `cargo test --all-features --test codecs`), Raw bytes, and what a
//! mismatch looks like.
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wisp::{Mailbox, RecvError};

const SEC: Duration = Duration::from_secs(5);

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Order {
    id: u32,
    item: String,
    rush: Option<bool>,
}

fn order() -> Order {
    Order { id: 7, item: "tea".into(), rush: Some(true) }
}

#[cfg(feature = "json")]
#[wisp::test]
fn json_mailboxes_carry_json() {
    use wisp::codec::Json;
    let mb = Mailbox::<Order>::new().with_codec::<Json>();
    let to = mb.process();
    wisp::spawn!(|to| to.send(&Order { id: 7, item: "tea".into(), rush: Some(true) })).unwrap();
    assert_eq!(mb.receive_timeout(SEC).unwrap(), order());
    // On the wire it is JSON: a raw mailbox sees the text.
    let raw = Mailbox::<Vec<u8>>::new().with_codec::<wisp::codec::Raw>();
    raw.process().pid().typed::<Order>().with_codec::<Json>().send(&order());
    let text = String::from_utf8(raw.receive_timeout(SEC).unwrap()).unwrap();
    assert_eq!(text, r#"{"id":7,"item":"tea","rush":true}"#);
    // Bad JSON: an error naming the type, the message taken out.
    raw.process().send(&b"{\"id\": \"seven\"}".to_vec());
    match mb.receive_timeout(SEC) {
        Err(RecvError::Decode { error, envelope }) => {
            assert!(error.0.contains("Order (JSON)"), "{error}");
            assert_eq!(envelope.bytes, b"{\"id\": \"seven\"}");
        }
        other => panic!("{other:?}"),
    }
}

#[cfg(feature = "msgpack")]
#[wisp::test]
fn msgpack_mailboxes_carry_msgpack() {
    use wisp::codec::MessagePack;
    let mb = Mailbox::<Order>::new().with_codec::<MessagePack>();
    let to = mb.process();
    let o = order();
    wisp::spawn!(|to, o| to.send(&o)).unwrap();
    assert_eq!(mb.receive_timeout(SEC).unwrap(), order());
    // Named fields: a reader without `rush` still decodes it.
    #[derive(Deserialize, Serialize, Debug, PartialEq)]
    struct Slim {
        id: u32,
        item: String,
    }
    mb.process().send(&order());
    let slim = Mailbox::<Slim>::new().with_codec::<MessagePack>();
    assert_eq!(slim.receive_timeout(SEC).unwrap(), Slim { id: 7, item: "tea".into() });
}

#[wisp::test]
fn a_codec_mismatch_is_a_decode_error_not_a_crash() {
    // Bincode's bytes of a String are not a u32 in bincode either.
    let mb = Mailbox::<u32>::new();
    mb.process().pid().typed::<String>().send(&"hello".into());
    assert!(matches!(mb.receive_timeout(SEC), Err(RecvError::Decode { .. })));
}
