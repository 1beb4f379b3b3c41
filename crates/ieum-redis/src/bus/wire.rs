//! The bus's own format: what one node tells the others, in JSON.
//!
//! Longer than the ~600 lines we aim for, on purpose: this file is the whole
//! format, each mirror type beside its conversions both ways and under the
//! compatibility rules below, so a change to the format is reviewed in one
//! place. Its tests are in `wire/tests.rs`.
//!
//! The domain's types are not the format. Each has a mirror here, converted
//! field by field both ways, so a rename in the domain or in an HTTP shape
//! changes a conversion below and never what crosses nodes: during a rolling
//! upgrade, nodes of two releases share the channel.
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

/// The domain's types, under one name so the mirrors below can take theirs.
mod domain {
    pub(super) use ieum_domain::hub::EventPayload;
    pub(super) use ieum_domain::message::{Message, MessageKind, ReactionCount};
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
pub(crate) const KINDS: [&str; 14] = [
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

// Domain -> wire. Domain values are taken apart field by field, so a field
// added to the domain does not compile here until the bus says what it does
// with it.

impl From<&domain::EventPayload> for Payload {
    fn from(payload: &domain::EventPayload) -> Self {
        use domain::EventPayload as E;
        match payload {
            E::Message(message) => Self::Message(message.into()),
            E::Read {
                user_id,
                seq,
                message_ids,
                read_at,
            } => Self::Read {
                user_id: *user_id,
                seq: *seq,
                message_ids: message_ids.clone(),
                read_at: *read_at,
            },
            E::Delivered { user_id, seq } => Self::Delivered {
                user_id: *user_id,
                seq: *seq,
            },
            E::Typing { user_id, at, until } => Self::Typing {
                user_id: *user_id,
                at: *at,
                until: *until,
            },
            E::Presence {
                user_id,
                online,
                at,
            } => Self::Presence {
                user_id: *user_id,
                online: *online,
                at: *at,
            },
            E::MemberJoined {
                room,
                user_id,
                username,
            } => Self::MemberJoined {
                room: room.as_ref().into(),
                user_id: *user_id,
                username: username.clone(),
            },
            E::MemberLeft {
                room_id,
                user_id,
                kicked,
            } => Self::MemberLeft {
                room_id: room_id.clone(),
                user_id: *user_id,
                kicked: *kicked,
            },
            E::RoomCreated(room) => Self::RoomCreated(room.as_ref().into()),
            E::RoomUpdated(room) => Self::RoomUpdated(room.as_ref().into()),
            E::Edited {
                message_id,
                seq,
                content,
                edited_at,
            } => Self::Edited {
                message_id: *message_id,
                seq: *seq,
                content: content.clone(),
                edited_at: *edited_at,
            },
            E::Deleted {
                message_id,
                seq,
                expired,
            } => Self::Deleted {
                message_id: *message_id,
                seq: *seq,
                expired: *expired,
            },
            E::Reaction {
                message_id,
                user_id,
                emoji,
                added,
            } => Self::Reaction {
                message_id: *message_id,
                user_id: *user_id,
                emoji: emoji.clone(),
                added: *added,
            },
            E::Pinned {
                message_id,
                by,
                pinned,
            } => Self::Pinned {
                message_id: *message_id,
                by: *by,
                pinned: *pinned,
            },
            E::SessionRevoked { family_id } => Self::SessionRevoked {
                family_id: *family_id,
            },
        }
    }
}

impl From<&domain::Room> for Room {
    fn from(room: &domain::Room) -> Self {
        let domain::Room {
            id,
            kind,
            name,
            description,
            image_url,
            visibility,
            password_hash,
            member_limit,
            member_count,
            invite_code: _, // a secret: read from the store by whoever needs it
            created_by,
            created_at,
            last_seq,
            last_message_at,
            history_visibility,
            pin_policy,
        } = room;
        Self {
            id: id.clone(),
            kind: (*kind).into(),
            name: name.clone(),
            description: description.clone(),
            image_url: image_url.clone(),
            visibility: (*visibility).into(),
            has_password: password_hash.is_some(),
            member_limit: *member_limit,
            member_count: *member_count,
            created_by: *created_by,
            created_at: *created_at,
            last_seq: *last_seq,
            last_message_at: *last_message_at,
            history_visibility: (*history_visibility).into(),
            pin_policy: (*pin_policy).into(),
        }
    }
}

impl From<&domain::Message> for Message {
    fn from(message: &domain::Message) -> Self {
        let domain::Message {
            id,
            room_id,
            seq,
            sender_id,
            sender_username,
            sender_name,
            sender_image,
            kind,
            content,
            image_url,
            client_msg_id,
            created_at,
            read_at,
            parent_id,
            reply_count,
            last_reply_at,
            edited_at,
            deleted,
            expires_at,
            mentions,
            reactions,
        } = message;
        Self {
            id: *id,
            room_id: room_id.clone(),
            seq: *seq,
            sender_id: *sender_id,
            sender_username: sender_username.clone(),
            sender_name: sender_name.clone(),
            sender_image: sender_image.clone(),
            kind: (*kind).into(),
            content: content.clone(),
            image_url: image_url.clone(),
            client_msg_id: client_msg_id.clone(),
            created_at: *created_at,
            read_at: *read_at,
            parent_id: *parent_id,
            reply_count: *reply_count,
            last_reply_at: *last_reply_at,
            edited_at: *edited_at,
            deleted: *deleted,
            expires_at: *expires_at,
            mentions: mentions.clone(),
            reactions: reactions.iter().map(ReactionCount::from).collect(),
        }
    }
}

impl From<&domain::ReactionCount> for ReactionCount {
    fn from(reaction: &domain::ReactionCount) -> Self {
        let domain::ReactionCount {
            emoji,
            count,
            user_ids,
        } = reaction;
        Self {
            emoji: emoji.clone(),
            count: *count,
            user_ids: user_ids.clone(),
        }
    }
}

// Wire -> domain.

impl From<Payload> for domain::EventPayload {
    fn from(payload: Payload) -> Self {
        use Payload as P;
        match payload {
            P::Message(message) => Self::Message(message.into()),
            P::Read {
                user_id,
                seq,
                message_ids,
                read_at,
            } => Self::Read {
                user_id,
                seq,
                message_ids,
                read_at,
            },
            P::Delivered { user_id, seq } => Self::Delivered { user_id, seq },
            P::Typing { user_id, at, until } => Self::Typing { user_id, at, until },
            P::Presence {
                user_id,
                online,
                at,
            } => Self::Presence {
                user_id,
                online,
                at,
            },
            P::MemberJoined {
                room,
                user_id,
                username,
            } => Self::MemberJoined {
                room: Box::new(room.into()),
                user_id,
                username,
            },
            P::MemberLeft {
                room_id,
                user_id,
                kicked,
            } => Self::MemberLeft {
                room_id,
                user_id,
                kicked,
            },
            P::RoomCreated(room) => Self::RoomCreated(Box::new(room.into())),
            P::RoomUpdated(room) => Self::RoomUpdated(Box::new(room.into())),
            P::Edited {
                message_id,
                seq,
                content,
                edited_at,
            } => Self::Edited {
                message_id,
                seq,
                content,
                edited_at,
            },
            P::Deleted {
                message_id,
                seq,
                expired,
            } => Self::Deleted {
                message_id,
                seq,
                expired,
            },
            P::Reaction {
                message_id,
                user_id,
                emoji,
                added,
            } => Self::Reaction {
                message_id,
                user_id,
                emoji,
                added,
            },
            P::Pinned {
                message_id,
                by,
                pinned,
            } => Self::Pinned {
                message_id,
                by,
                pinned,
            },
            P::SessionRevoked { family_id } => Self::SessionRevoked { family_id },
        }
    }
}

impl From<Room> for domain::Room {
    fn from(room: Room) -> Self {
        Self {
            id: room.id,
            kind: room.kind.into(),
            name: room.name,
            description: room.description,
            image_url: room.image_url,
            visibility: room.visibility.into(),
            password_hash: room.has_password.then(|| PASSWORD_HASH_STAND_IN.to_owned()),
            member_limit: room.member_limit,
            member_count: room.member_count,
            // Not shared either; admins read it from the store.
            invite_code: None,
            created_by: room.created_by,
            created_at: room.created_at,
            last_seq: room.last_seq,
            last_message_at: room.last_message_at,
            history_visibility: room.history_visibility.into(),
            pin_policy: room.pin_policy.into(),
        }
    }
}

impl From<Message> for domain::Message {
    fn from(message: Message) -> Self {
        Self {
            id: message.id,
            room_id: message.room_id,
            seq: message.seq,
            sender_id: message.sender_id,
            sender_username: message.sender_username,
            sender_name: message.sender_name,
            sender_image: message.sender_image,
            kind: message.kind.into(),
            content: message.content,
            image_url: message.image_url,
            client_msg_id: message.client_msg_id,
            created_at: message.created_at,
            read_at: message.read_at,
            parent_id: message.parent_id,
            reply_count: message.reply_count,
            last_reply_at: message.last_reply_at,
            edited_at: message.edited_at,
            deleted: message.deleted,
            expires_at: message.expires_at,
            mentions: message.mentions,
            reactions: message.reactions.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<ReactionCount> for domain::ReactionCount {
    fn from(reaction: ReactionCount) -> Self {
        Self {
            emoji: reaction.emoji,
            count: reaction.count,
            user_ids: reaction.user_ids,
        }
    }
}

/// Both ways between a domain enum and its mirror, value for value.
macro_rules! mirror_enum {
    ($wire:ident <-> $domain:ident { $($variant:ident),+ $(,)? }) => {
        impl From<domain::$domain> for $wire {
            fn from(value: domain::$domain) -> Self {
                match value {
                    $(domain::$domain::$variant => Self::$variant,)+
                }
            }
        }
        impl From<$wire> for domain::$domain {
            fn from(value: $wire) -> Self {
                match value {
                    $($wire::$variant => Self::$variant,)+
                }
            }
        }
    };
}

mirror_enum!(RoomKind <-> RoomKind { Direct, Group });
mirror_enum!(Visibility <-> Visibility { Public, Private });
mirror_enum!(HistoryVisibility <-> HistoryVisibility { All, UntilLeave, None });
mirror_enum!(PinPolicy <-> PinPolicy { Members, Admins });
mirror_enum!(MessageKind <-> MessageKind { Text, Image, File, Sticker, System, Thread, Temp });

#[cfg(test)]
mod tests;
