//! One behavior per test: which headers the guard refuses, and when.

use ieum_wsframe::{FrameGuard, Limits, Refusal};

const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CONTINUATION: u8 = 0x0;
const PING: u8 = 0x9;
const LIMITS: Limits = Limits {
    max_frame_bytes: 1000,
    max_message_bytes: 2500,
};

/// A masked client frame header with the shortest length encoding.
fn header(final_fragment: bool, opcode: u8, payload_len: u64) -> Vec<u8> {
    let mut bytes = vec![if final_fragment { 0x80 } else { 0 } | opcode];
    match payload_len {
        0..=125 => bytes.push(0x80 | payload_len as u8),
        126..=0xFFFF => {
            bytes.push(0x80 | 126);
            bytes.extend((payload_len as u16).to_be_bytes());
        }
        _ => {
            bytes.push(0x80 | 127);
            bytes.extend(payload_len.to_be_bytes());
        }
    }
    bytes.extend([0x12, 0x34, 0x56, 0x78]);
    bytes
}

fn frame(final_fragment: bool, opcode: u8, payload_len: usize) -> Vec<u8> {
    let mut bytes = header(final_fragment, opcode, payload_len as u64);
    bytes.resize(bytes.len() + payload_len, 0xAB);
    bytes
}

fn too_large(announced: u64) -> Refusal {
    Refusal::FrameTooLarge {
        announced,
        limit: LIMITS.max_frame_bytes,
    }
}

fn protocol(reason: &'static str) -> Result<(), Refusal> {
    Err(Refusal::Protocol(reason))
}

fn scan_fresh(bytes: &[u8]) -> Result<(), Refusal> {
    FrameGuard::new().scan(bytes, LIMITS)
}

#[test]
fn a_2_pow_62_byte_announcement_is_refused_from_its_ten_length_bytes_alone() {
    let refusal = scan_fresh(&header(true, BINARY, 1 << 62)[..10]).unwrap_err();
    assert_eq!(refusal, too_large(1 << 62));
    assert_eq!(refusal.close_code(), 1009);
}

#[test]
fn a_frame_at_exactly_the_limit_passes_in_every_length_encoding() {
    for limit in [125, 1000, 65_536] {
        let limits = Limits {
            max_frame_bytes: limit,
            max_message_bytes: limit,
        };
        let mut guard = FrameGuard::new();
        assert_eq!(guard.scan(&frame(true, TEXT, limit), limits), Ok(()));
        assert!(guard.at_frame_boundary());
    }
}

#[test]
fn a_header_announcing_one_byte_over_the_limit_is_refused_before_its_payload() {
    for limit in [125, 1000, 65_536] {
        let limits = Limits {
            max_frame_bytes: limit,
            max_message_bytes: limit,
        };
        let refusal = FrameGuard::new().scan(&header(true, TEXT, limit as u64 + 1), limits);
        let announced = limit as u64 + 1;
        assert_eq!(refusal, Err(Refusal::FrameTooLarge { announced, limit }));
    }
}

#[test]
fn a_header_split_byte_by_byte_is_refused_at_its_last_length_byte() {
    let mut guard = FrameGuard::new();
    let results: Vec<_> = header(true, BINARY, 70_000)
        .iter()
        .map(|byte| guard.scan(&[*byte], LIMITS))
        .collect();
    assert!(
        results[..9].iter().all(Result::is_ok),
        "refused before the length was complete"
    );
    assert_eq!(results[9], Err(too_large(70_000)));
}

#[test]
fn many_frames_in_one_chunk_pass_and_end_at_a_boundary() {
    let mut guard = FrameGuard::new();
    let frames = [
        frame(true, TEXT, 5),
        frame(true, PING, 125),
        frame(true, BINARY, 300),
        frame(true, TEXT, 0),
    ];
    assert_eq!(guard.scan(&frames.concat(), LIMITS), Ok(()));
    assert!(guard.at_frame_boundary());
}

#[test]
fn fragments_adding_up_to_the_message_limit_pass() {
    let fragments = [
        frame(false, TEXT, 1000),
        frame(false, CONTINUATION, 1000),
        frame(true, CONTINUATION, 500),
    ];
    assert_eq!(scan_fresh(&fragments.concat()), Ok(()));
}

#[test]
fn fragments_adding_up_past_the_message_limit_are_refused_at_the_last_header() {
    let fragments = [
        frame(false, TEXT, 1000),
        frame(false, CONTINUATION, 1000),
        header(true, CONTINUATION, 501),
    ];
    assert_eq!(
        scan_fresh(&fragments.concat()),
        Err(Refusal::MessageTooLarge {
            total: 2501,
            limit: 2500
        })
    );
}

#[test]
fn a_control_frame_over_125_bytes_is_a_protocol_error() {
    let refusal = scan_fresh(&header(true, PING, 126)[..2]).unwrap_err();
    assert_eq!(refusal, Refusal::Protocol("control frame over 125 bytes"));
    assert_eq!(refusal.close_code(), 1002);
}

#[test]
fn control_frames_inside_a_fragmented_message_do_not_count_toward_it() {
    let ping = frame(true, PING, 125);
    let message = [
        frame(false, TEXT, 1000),
        ping.clone(),
        frame(false, CONTINUATION, 1000),
        ping,
        frame(true, CONTINUATION, 500),
    ];
    assert_eq!(scan_fresh(&message.concat()), Ok(()));
}

#[test]
fn a_continuation_with_no_message_open_is_refused() {
    assert_eq!(
        scan_fresh(&frame(true, CONTINUATION, 3)),
        protocol("continuation with no message open")
    );
}

#[test]
fn a_new_data_frame_inside_an_open_message_is_refused() {
    let frames = [frame(false, TEXT, 3), frame(true, BINARY, 3)];
    assert_eq!(
        scan_fresh(&frames.concat()),
        protocol("new data frame inside an open message")
    );
}

#[test]
fn a_reserved_opcode_is_refused() {
    assert_eq!(scan_fresh(&[0x83]), protocol("reserved opcode"));
}

#[test]
fn an_unmasked_frame_is_refused() {
    assert_eq!(scan_fresh(&[0x81, 0x03]), protocol("unmasked client frame"));
}

#[test]
fn a_64_bit_length_with_its_top_bit_set_is_refused() {
    let refusal = scan_fresh(&header(true, BINARY, 1 << 63)[..10]);
    assert_eq!(refusal, protocol("64-bit length with its top bit set"));
}

#[test]
fn a_refusal_is_returned_again_for_every_later_chunk() {
    let mut guard = FrameGuard::new();
    let first = guard.scan(&header(true, TEXT, 1001), LIMITS);
    assert!(first.is_err());
    assert_eq!(guard.scan(&frame(true, TEXT, 1), LIMITS), first);
}

#[test]
fn limits_raised_between_chunks_apply_to_the_next_header() {
    let mut guard = FrameGuard::new();
    let before_login = Limits {
        max_frame_bytes: 10,
        max_message_bytes: 10,
    };
    assert_eq!(guard.scan(&frame(true, TEXT, 10), before_login), Ok(()));
    assert_eq!(guard.scan(&frame(true, TEXT, 1000), LIMITS), Ok(()));
}
