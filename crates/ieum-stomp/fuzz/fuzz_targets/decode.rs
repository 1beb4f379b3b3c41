//! Feeds arbitrary bytes to the decoder, split at a fuzzer-chosen point, and
//! checks that every decoded frame survives an encode/decode round trip.
#![no_main]

use ieum_stomp::{Decoder, Item, Limits, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_frame_bytes: 4096,
        max_headers: 16,
        max_header_bytes: 512,
    };
    let split = data.first().map(|b| *b as usize % (data.len() + 1)).unwrap_or(0);
    let mut d = Decoder::new(limits);
    let mut frames = Vec::new();
    for chunk in [&data[..split], &data[split..]] {
        d.push(chunk);
        loop {
            match d.next() {
                Ok(Some(Item::Frame(f))) => frames.push(f),
                Ok(Some(Item::Heartbeat)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    for f in frames {
        let bytes = encode(&f);
        let mut again = Decoder::new(Limits {
            max_frame_bytes: usize::MAX / 2,
            max_headers: usize::MAX / 2,
            max_header_bytes: usize::MAX / 2,
        });
        again.push(&bytes);
        match again.next() {
            Ok(Some(Item::Frame(g))) => {
                assert_eq!(g.command, f.command);
                assert_eq!(g.body, f.body);
            }
            other => panic!("re-encoded frame did not decode: {other:?}"),
        }
    }
});
