//! Property tests: valid traffic split anywhere is never refused, and no byte
//! sequence panics the guard.

use ieum_wsframe::{FrameGuard, Limits, Refusal};
use proptest::prelude::*;

const LIMITS: Limits = Limits {
    max_frame_bytes: 200,
    max_message_bytes: 600,
};

fn masked_frame(final_fragment: bool, opcode: u8, payload_len: usize) -> Vec<u8> {
    let mut bytes = vec![if final_fragment { 0x80 } else { 0 } | opcode];
    if payload_len <= 125 {
        bytes.push(0x80 | payload_len as u8);
    } else {
        bytes.push(0x80 | 126);
        bytes.extend((payload_len as u16).to_be_bytes());
    }
    bytes.extend([0xA1, 0xB2, 0xC3, 0xD4]);
    bytes.resize(bytes.len() + payload_len, 0x5A);
    bytes
}

/// A whole message: 1 to 3 fragments of at most 200 bytes each (so at most 600 in
/// all), each fragment optionally followed by a control frame.
fn message() -> impl Strategy<Value = Vec<u8>> {
    let control = proptest::option::of((
        proptest::sample::select(vec![0x8u8, 0x9, 0xA]),
        0..=125usize,
    ));
    (
        proptest::sample::select(vec![0x1u8, 0x2]),
        proptest::collection::vec((0..=200usize, control), 1..=3),
    )
        .prop_map(|(opcode, fragments)| {
            let last = fragments.len() - 1;
            let mut bytes = Vec::new();
            for (index, (payload_len, control)) in fragments.into_iter().enumerate() {
                let fragment_opcode = if index == 0 { opcode } else { 0x0 };
                bytes.extend(masked_frame(index == last, fragment_opcode, payload_len));
                if let Some((control_opcode, control_len)) = control {
                    bytes.extend(masked_frame(true, control_opcode, control_len));
                }
            }
            bytes
        })
}

fn chunks<'bytes>(bytes: &'bytes [u8], cuts: &[usize]) -> Vec<&'bytes [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|cut| cut % (bytes.len() + 1)).collect();
    points.extend([0, bytes.len()]);
    points.sort_unstable();
    points
        .windows(2)
        .map(|pair| &bytes[pair[0]..pair[1]])
        .collect()
}

proptest! {
    #[test]
    fn valid_masked_frames_split_anywhere_are_all_accepted(
        messages in proptest::collection::vec(message(), 1..6),
        cuts in proptest::collection::vec(any::<usize>(), 0..20),
    ) {
        let bytes = messages.concat();
        let mut guard = FrameGuard::new();
        for chunk in chunks(&bytes, &cuts) {
            prop_assert_eq!(guard.scan(chunk, LIMITS), Ok(()));
        }
        prop_assert!(guard.at_frame_boundary());
    }

    #[test]
    fn random_bytes_never_panic_and_a_refusal_stays(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        cuts in proptest::collection::vec(any::<usize>(), 0..20),
        max_frame_bytes in 0..2000usize,
        max_message_bytes in 0..4000usize,
    ) {
        let limits = Limits { max_frame_bytes, max_message_bytes };
        let mut guard = FrameGuard::new();
        let mut first_refusal: Option<Refusal> = None;
        for chunk in chunks(&bytes, &cuts) {
            let result = guard.scan(chunk, limits);
            match &first_refusal {
                Some(first) => prop_assert_eq!(result, Err(first.clone())),
                None => first_refusal = result.err(),
            }
        }
    }
}
