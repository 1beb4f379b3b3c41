//! JSON shapes on the wire: the native protocol's and each client contract's.
//! Documented in docs/PROTOCOL.md.

use chrono::{DateTime, SecondsFormat, Utc};
use ieum_domain::hub::{EventPayload, RoomEvent};
use ieum_domain::message::Message;
use serde::Serialize;
use uuid::Uuid;

/// Wire shapes, used as the hub's cache slots.
pub const SHAPE_NATIVE: u8 = 0;
pub const SHAPE_A: u8 = 1;

pub fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Contract A's message: `roomId`, `sender`, `message`, `sentAt` (RFC 3339 UTC),
/// plus ieum's `id`, `seq` and `type`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractAMessage<'a> {
    pub id: Uuid,
    pub room_id: &'a str,
    pub sender: &'a str,
    pub message: &'a str,
    pub sent_at: String,
    pub seq: i64,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub sender_name: &'a str,
}

impl<'a> From<&'a Message> for ContractAMessage<'a> {
    fn from(m: &'a Message) -> Self {
        Self {
            id: m.id,
            room_id: &m.room_id,
            sender: &m.sender_username,
            message: &m.content,
            sent_at: rfc3339(&m.created_at),
            seq: m.seq,
            kind: m.kind.as_str(),
            sender_name: &m.sender_name,
        }
    }
}

/// The body of a MESSAGE frame for a subscription of `shape`.
pub fn event_body(shape: u8, event: &RoomEvent) -> Vec<u8> {
    let EventPayload::Message(m) = &event.payload;
    let r = match shape {
        SHAPE_A => serde_json::to_vec(&ContractAMessage::from(m)),
        _ => serde_json::to_vec(m),
    };
    r.unwrap_or_else(|_| b"{}".to_vec())
}
