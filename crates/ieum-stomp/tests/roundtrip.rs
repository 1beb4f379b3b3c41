//! Property tests: any frame encodes and decodes back to itself, however the
//! bytes are split, and arbitrary bytes never panic the decoder.

use ieum_stomp::{Command, Decoder, Frame, Item, Limits, encode};
use proptest::prelude::*;

fn command() -> impl Strategy<Value = Command> {
    proptest::sample::select(Command::ALL.to_vec())
}

fn frame() -> impl Strategy<Value = Frame> {
    (
        command(),
        proptest::collection::vec(("[a-z\\-]{1,12}", any::<String>()), 0..6),
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_filter_map("representable", |(command, headers, body)| {
            // CONNECT/CONNECTED headers are not escaped: they cannot carry EOL or ':' in names.
            if !command.escapes_headers() && headers.iter().any(|(_, v)| v.contains(['\n', '\r'])) {
                return None;
            }
            let headers: Vec<_> = headers
                .into_iter()
                .filter(|(k, _)| k != "content-length")
                .collect();
            Some(Frame {
                command,
                headers,
                body,
            })
        })
}

fn decode_chunks(bytes: &[u8], cuts: &[usize]) -> Vec<Item> {
    let mut d = Decoder::new(Limits::default());
    let mut items = Vec::new();
    let mut last = 0;
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.sort_unstable();
    points.push(bytes.len());
    for p in points {
        d.push(&bytes[last..p]);
        last = p;
        while let Some(item) = d.next().expect("valid input decodes") {
            items.push(item);
        }
    }
    items
}

proptest! {
    #[test]
    fn frames_round_trip_across_arbitrary_splits(
        frames in proptest::collection::vec(frame(), 1..4),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let mut bytes = Vec::new();
        for f in &frames {
            bytes.extend(encode(f));
            bytes.push(b'\n'); // a heart-beat between frames
        }
        let got: Vec<Frame> = decode_chunks(&bytes, &cuts)
            .into_iter()
            .filter_map(|i| match i { Item::Frame(f) => Some(f), Item::Heartbeat => None })
            .collect();
        prop_assert_eq!(got.len(), frames.len());
        for (g, f) in got.iter().zip(&frames) {
            prop_assert_eq!(g.command, f.command);
            prop_assert_eq!(&g.body, &f.body);
            for (k, v) in &f.headers {
                // the first occurrence of each name is what a reader sees
                let first = f.headers.iter().find(|(k2, _)| k2 == k).map(|(_, v)| v.as_str());
                prop_assert_eq!(g.get(k), first, "header {} (sent {:?})", k, v);
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut d = Decoder::new(Limits { max_frame_bytes: 1024, max_headers: 8, max_header_bytes: 128 });
        d.push(&bytes);
        for _ in 0..bytes.len() + 1 {
            match d.next() {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break,
            }
        }
    }
}
