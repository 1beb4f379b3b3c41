//! Feeds arbitrary text to the long-polling body decoder and every Engine.IO
//! message to the Socket.IO decoder; what decodes must survive a round trip.
#![no_main]

use ieum_engineio::engine::{Packet, decode_payload, encode_payload};
use ieum_engineio::socket::SioPacket;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(packets) = decode_payload(text, 1 << 16, 64) else {
        return;
    };
    let encoded: Vec<String> = packets.iter().map(Packet::encode).collect();
    assert_eq!(decode_payload(&encode_payload(&encoded), 1 << 20, 64).unwrap(), packets);
    for packet in packets {
        if let Packet::Message(inner) = packet
            && let Ok(sio) = SioPacket::decode(&inner)
        {
            assert_eq!(SioPacket::decode(&sio.encode()).unwrap(), sio);
        }
    }
});
