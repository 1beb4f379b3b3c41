//! Round trips and robustness of both codecs on generated input.

use ieum_engineio::engine::{Packet, SEPARATOR, decode_payload, encode_payload};
use ieum_engineio::socket::{Kind, SioPacket};
use proptest::prelude::*;
use serde_json::{Value, json};

fn engine_packet() -> impl Strategy<Value = Packet> {
    let data = "[^\u{1e}]{0,40}";
    prop_oneof![
        data.prop_map(Packet::Open),
        Just(Packet::Close),
        data.prop_map(Packet::Ping),
        data.prop_map(Packet::Pong),
        data.prop_map(Packet::Message),
        Just(Packet::Upgrade),
        Just(Packet::Noop),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        ".{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,5}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn sio_packet() -> impl Strategy<Value = SioPacket> {
    (
        prop_oneof![
            Just(Kind::Connect),
            Just(Kind::Disconnect),
            Just(Kind::Event),
            Just(Kind::Ack),
            Just(Kind::ConnectError)
        ],
        prop_oneof![Just("/".to_owned()), "/[a-z]{1,8}"],
        proptest::option::of(any::<u64>()),
        "[a-z ]{1,10}",
        json_value(),
    )
        .prop_map(|(kind, namespace, id, name, value)| {
            // What each type may carry (the decoder refuses the rest).
            let data = match kind {
                Kind::Event => Some(json!([name, value])),
                Kind::Disconnect => None,
                Kind::Ack => Some(json!([value])),
                Kind::Connect => Some(json!({ "auth": value })),
                Kind::ConnectError => Some(json!({ "message": name, "data": value })),
            };
            SioPacket {
                kind,
                namespace,
                id,
                data,
            }
        })
}

proptest! {
    #[test]
    fn engine_payloads_round_trip(packets in prop::collection::vec(engine_packet(), 1..8)) {
        let encoded: Vec<String> = packets.iter().map(Packet::encode).collect();
        let body = encode_payload(&encoded);
        prop_assert_eq!(decode_payload(&body, usize::MAX, 100).unwrap(), packets);
    }

    #[test]
    fn engine_decoding_never_panics(body in ".{0,200}") {
        let _ = decode_payload(&body, 1000, 16);
    }

    #[test]
    fn socket_packets_round_trip(packet in sio_packet()) {
        let decoded = SioPacket::decode(&packet.encode()).unwrap();
        prop_assert_eq!(decoded, packet);
    }

    #[test]
    fn socket_decoding_never_panics(text in ".{0,200}") {
        let _ = SioPacket::decode(&text);
    }

    #[test]
    fn a_separator_never_hides_inside_a_packet(a in "[^\u{1e}]{0,20}", b in "[^\u{1e}]{0,20}") {
        let body = format!("4{a}{SEPARATOR}4{b}");
        prop_assert_eq!(decode_payload(&body, usize::MAX, 10).unwrap().len(), 2);
    }
}
