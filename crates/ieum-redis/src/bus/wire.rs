//! The bus's own format: what one node tells the others, in JSON.
//!
//! The domain's types are not the format. Each has a mirror here, converted
//! field by field both ways in `wire/convert.rs`, so a rename in the domain
//! or in an HTTP shape changes a conversion and never what crosses nodes:
//! during a rolling upgrade, nodes of two releases share the channel. The
//! tests are in `wire/tests.rs`.
//!
//! Version 1 is the format the bus had before it was versioned (the domain
//! types' serde shapes, frozen here), plus `v` and the room's `hasPassword`.
//! A message without `v` is from a node of before versioning and reads as v1.
//!
//! Secrets stay on their node: a room crosses with `hasPassword`, never its
//! password hash or invite code.
//!
//! # Compatibility
//!
//! Every change must be readable by the release before it, and every release
//! must read what the one before it writes:
//!
//! - Add a field only as optional, with `#[serde(default)]`, so messages
//!   without it still decode. Nothing here denies unknown fields: older nodes
//!   skip the new one. A payload is `{"<kind>": {...}}`: its fields go inside
//!   the kind's object, never beside the kind.
//! - Never rename or retype a field, a variant or an enum value: the serde
//!   names here are the format.
//! - An enum added after v1 inside a payload has an `Unknown` variant
//!   (`#[serde(other)]`), so a value a newer node adds does not make the
//!   whole message unreadable here (`ScanStatus`, `AttachmentState`).
//! - A new kind of event is a new variant (and an entry in [`KINDS`]). Older
//!   nodes drop it with a debug log and keep their subscription.
//! - Bump [`VERSION`] only for a change old nodes must refuse. A node decodes
//!   what it knows of a message of any `v`, so such a change must also put the
//!   changed data under a new field or variant name, which old nodes do not
//!   read; `v` then tells newer nodes which rules the writer followed.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use ieum_domain::hub::{Hub, RoomEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The domain's types, under one name so the mirrors can take theirs.
mod domain {
    pub(super) use ieum_domain::attachment::{AttachmentState, ScanStatus};
    pub(super) use ieum_domain::hub::EventPayload;
    pub(super) use ieum_domain::message::{Message, MessageFile, MessageKind, ReactionCount};
    pub(super) use ieum_domain::room::{HistoryVisibility, PinPolicy, Room, RoomKind, Visibility};
}

/// The version this node writes.
pub(crate) const VERSION: u32 = 1;

/// Stands in for a password hash on nodes other than the room's: it makes
/// `Room::has_password()` true and is nothing else. The hash never crosses
/// nodes, and a join always reads the room from the store (`RoomService::join`
/// and `enter` read it through the repository before `admit` checks the
/// password), never from an event. It is no PHC string, so a verify against
/// it would fail rather than pass.
pub(crate) const PASSWORD_HASH_STAND_IN: &str = "(hash not shared across nodes)";

/// Every payload variant's name on the wire.
pub(crate) const KINDS: [&str; 17] = [
    "message",
    "read",
    "delivered",
    "typing",
    "presence",
    "member_joined",
    "member_left",
    "room_created",
    "room_updated",
    "edited",
    "deleted",
    "reaction",
    "pinned",
    "session_revoked",
    "file_updated",
    "user_suspended",
    "member_muted",
];

fn before_versioning() -> u32 {
    1
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Envelope<P> {
    #[serde(default = "before_versioning")]
    pub v: u32,
    /// The node that published it.
    pub node: Uuid,
    /// The feed: a room id, a user's feed or the lobby.
    #[serde(rename = "room")]
    pub feed: String,
    #[serde(default)]
    pub seq: Option<i64>,
    /// Not delivered to this user's connections.
    #[serde(default)]
    pub exclude: Option<Uuid>,
    /// When it was published (milliseconds since the epoch, the publisher's
    /// clock): the bus's lag. Absent from nodes of before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<i64>,
    pub payload: P,
}

// One payload per bus message, converted once: the size of the largest variant
// costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Payload {
    Message(Message),
    Read {
        user_id: Uuid,
        seq: i64,
        message_ids: Vec<Uuid>,
        read_at: DateTime<Utc>,
    },
    Delivered {
        user_id: Uuid,
        seq: i64,
    },
    Typing {
        user_id: Uuid,
        at: DateTime<Utc>,
        until: DateTime<Utc>,
    },
    Presence {
        user_id: Uuid,
        online: bool,
        at: DateTime<Utc>,
    },
    MemberJoined {
        room: Room,
        user_id: Uuid,
        username: String,
    },
    MemberLeft {
        room_id: String,
        user_id: Uuid,
        kicked: bool,
    },
    RoomCreated(Room),
    RoomUpdated(Room),
    Edited {
        message_id: Uuid,
        seq: i64,
        content: String,
        edited_at: DateTime<Utc>,
    },
    Deleted {
        message_id: Uuid,
        seq: i64,
        expired: bool,
    },
    Reaction {
        message_id: Uuid,
        user_id: Uuid,
        emoji: String,
        added: bool,
    },
    Pinned {
        message_id: Uuid,
        by: Uuid,
        pinned: bool,
    },
    /// Added after v1 as a new kind: older nodes drop it (their connections
    /// then end at token expiry, as before).
    SessionRevoked {
        family_id: Uuid,
    },
    /// Added after v1 as a new kind: older nodes drop it (their members see
    /// the file's new state on their next history read).
    FileUpdated {
        message_id: Uuid,
        seq: i64,
        file: MessageFile,
    },
    /// Added after v1 as a new kind: older nodes drop it (their connections
    /// of the suspended user then end at token expiry).
    UserSuspended {
        user_id: Uuid,
    },
    /// Added after v1 as a new kind: older nodes drop it (their member cache
    /// then lets a muted member send until the entry is evicted).
    MemberMuted {
        user_id: Uuid,
        until: Option<DateTime<Utc>>,
    },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Room {
    pub id: String,
    pub kind: RoomKind,
    pub name: String,
    pub description: Option<String>,
    pub image_url: Option<String>,
    pub visibility: Visibility,
    /// Added in v1; absent from messages of before versioning.
    #[serde(default)]
    pub has_password: bool,
    pub member_limit: u32,
    pub member_count: u32,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_seq: i64,
    pub last_message_at: Option<DateTime<Utc>>,
    pub history_visibility: HistoryVisibility,
    pub pin_policy: PinPolicy,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Message {
    pub id: Uuid,
    pub room_id: String,
    pub seq: i64,
    pub sender_id: Uuid,
    pub sender_username: String,
    pub sender_name: String,
    pub sender_image: Option<String>,
    #[serde(rename = "type")]
    pub kind: MessageKind,
    pub content: String,
    pub image_url: Option<String>,
    pub client_msg_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
    pub parent_id: Option<Uuid>,
    pub reply_count: i32,
    pub last_reply_at: Option<DateTime<Utc>>,
    pub edited_at: Option<DateTime<Utc>>,
    pub deleted: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub mentions: Vec<Uuid>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<ReactionCount>,
    /// Added after v1, optional: older nodes deliver the message without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<MessageFile>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MessageFile {
    pub id: Uuid,
    pub name: String,
    pub size: u64,
    pub content_type: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub scan: ScanStatus,
    pub state: AttachmentState,
    pub is_image: bool,
}

/// A file's scan. `Unknown` reads a value a newer node added, so the
/// whole message still decodes here; it shows as `Pending` (history, read
/// from the store, has the truth).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ScanStatus {
    Pending,
    Clean,
    Skipped,
    Infected,
    Failed,
    #[serde(other, skip_serializing)]
    Unknown,
}

/// A file's state. `Unknown`, as for [`ScanStatus`], shows as `Scanning`:
/// no URL is handed out for it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AttachmentState {
    Pending,
    Scanning,
    Clean,
    Infected,
    Failed,
    Expired,
    Deleted,
    #[serde(other, skip_serializing)]
    Unknown,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReactionCount {
    pub emoji: String,
    pub count: i64,
    pub user_ids: Vec<Uuid>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RoomKind {
    Direct,
    Group,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Visibility {
    Public,
    Private,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum HistoryVisibility {
    All,
    UntilLeave,
    None,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PinPolicy {
    Members,
    Admins,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub(crate) enum MessageKind {
    Text,
    Image,
    File,
    Sticker,
    System,
    Thread,
    Temp,
}

/// A bus message as this node reads it.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// An event for the hub.
    Event(Arc<RoomEvent>),
    /// A kind of event this node does not know (a newer node's): skipped.
    UnknownKind { kind: String },
    /// A kind it knows that does not decode (from a newer node that broke the
    /// rules above, or a bug).
    Malformed {
        kind: String,
        error: serde_json::Error,
    },
}

/// This node's event as a bus message.
pub(crate) fn encode(node: Uuid, event: &RoomEvent) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(&Envelope {
        v: VERSION,
        node,
        feed: event.room_id.clone(),
        seq: event.seq,
        exclude: event.exclude_user,
        at_ms: Some(chrono::Utc::now().timestamp_millis()),
        payload: Payload::from(&event.payload),
    })
}

/// Reads a bus message's envelope; the payload is left for
/// [`Envelope::into_incoming`], so messages a node skips (its own) are never
/// converted and an unknown payload still tells who sent it. An error means
/// not even the envelope is readable.
pub(crate) fn read(bytes: &[u8]) -> serde_json::Result<Envelope<serde_json::Value>> {
    serde_json::from_slice(bytes)
}

impl Envelope<serde_json::Value> {
    pub(crate) fn into_incoming(self) -> Incoming {
        let kind = payload_kind(&self.payload);
        match serde_json::from_value::<Payload>(self.payload) {
            Ok(payload) => Incoming::Event(Hub::event_from_wire(
                self.feed,
                self.seq,
                payload.into(),
                self.exclude,
            )),
            Err(_) if !KINDS.contains(&kind.as_str()) => Incoming::UnknownKind { kind },
            Err(error) => Incoming::Malformed { kind, error },
        }
    }
}

/// The variant name of an externally tagged payload: `{"kind": {...}}`.
fn payload_kind(payload: &serde_json::Value) -> String {
    match payload {
        serde_json::Value::Object(map) if map.len() == 1 => map.keys().next().cloned(),
        serde_json::Value::String(unit) => Some(unit.clone()),
        _ => None,
    }
    .unwrap_or_else(|| "(not a payload)".to_owned())
}

mod convert;

#[cfg(test)]
mod tests;
