//! STOMP frames the server writes. MESSAGE frames of a subscription share a
//! prefix escaped once (see [`message_prefix`]); everything else goes through
//! ieum-stomp's encoder, so header escaping is written once, there.

use ieum_domain::hub::{EventPayload, RoomEvent};
use ieum_stomp::{Command, Frame, encode_header_value};
use serde_json::json;

use crate::links::FileLinks;
use crate::wire::{event_body, event_name};

/// "MESSAGE\ndestination:..\nsubscription:..\n", escaped once per subscription.
pub fn message_prefix(destination: &str, subscription: &str) -> String {
    format!(
        "MESSAGE\ndestination:{}\nsubscription:{}\n",
        encode_header_value(destination),
        encode_header_value(subscription)
    )
}

/// A MESSAGE frame for `event` in `shape`, or `None` when the shape carries no
/// such event.
pub fn event_frame(
    prefix: &str,
    shape: u8,
    event: &RoomEvent,
    links: &FileLinks,
) -> Option<String> {
    let body = event.wire(shape as usize, |e| event_body(shape, e, links));
    if body.is_empty() {
        return None;
    }
    let body = String::from_utf8_lossy(&body);
    let mut text = String::with_capacity(prefix.len() + body.len() + 160);
    text.push_str(prefix);
    text.push_str("message-id:");
    match &event.payload {
        EventPayload::Message(m) => {
            text.push_str(&m.id.to_string());
            text.push_str("\nseq:");
            text.push_str(&m.seq.to_string());
        }
        _ => text.push_str(&uuid::Uuid::new_v4().simple().to_string()),
    }
    text.push_str("\nevent:");
    text.push_str(event_name(&event.payload));
    push_json_body(&mut text, &body);
    Some(text)
}

/// A MESSAGE frame with a named event and a JSON body (contract C's `rooms`).
pub fn named_event_frame(prefix: &str, event: &str, body: &str) -> String {
    let mut text = String::with_capacity(prefix.len() + body.len() + 120);
    text.push_str(prefix);
    text.push_str("message-id:");
    text.push_str(&uuid::Uuid::new_v4().simple().to_string());
    text.push_str("\nevent:");
    text.push_str(event);
    push_json_body(&mut text, body);
    text
}

fn push_json_body(text: &mut String, body: &str) {
    text.push_str("\ncontent-type:application/json\ncontent-length:");
    text.push_str(&body.len().to_string());
    text.push_str("\n\n");
    text.push_str(body);
    text.push('\0');
}

/// An ERROR frame: `code` and `message` as headers and as a JSON body.
pub fn error_frame(code: &str, message: &str, receipt: Option<&str>) -> Frame {
    let mut frame = Frame::new(Command::Error)
        .header("message", message)
        .header("code", code)
        .header("content-type", "application/json");
    if let Some(r) = receipt {
        frame = frame.header("receipt-id", r);
    }
    frame.body(json!({ "code": code, "message": message }).to_string())
}

/// The RECEIPT a frame asked for, with extra headers.
pub fn receipt_frame(receipt: &str, extra: &[(&str, String)]) -> Frame {
    let mut frame = Frame::new(Command::Receipt).header("receipt-id", receipt);
    for (k, v) in extra {
        frame = frame.header(*k, v.clone());
    }
    frame
}

/// A frame as WebSocket text (STOMP frames are UTF-8 but for bodies).
pub fn frame_text(frame: &Frame) -> String {
    let bytes = ieum_stomp::encode(frame);
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_escape_their_headers_once() {
        assert_eq!(
            message_prefix("/topic/a:b", "s\n1"),
            "MESSAGE\ndestination:/topic/a\\cb\nsubscription:s\\n1\n"
        );
    }

    #[test]
    fn named_events_carry_their_length() {
        let text = named_event_frame("P\n", "rooms", "{}");
        assert!(
            text.contains("\nevent:rooms\ncontent-type:application/json\ncontent-length:2\n\n{}\0")
        );
    }
}
