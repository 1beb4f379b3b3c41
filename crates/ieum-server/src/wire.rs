//! Event bodies on the wire, one encoding per shape: the native protocol's
//! (its messages and rooms through `crate::views`) and each client contract's,
//! whose fixed shapes are here. Documented in docs/PROTOCOL.md.

use chrono::{DateTime, SecondsFormat, Utc};
use ieum_domain::attachment::AttachmentState;
use ieum_domain::hub::{EventPayload, RoomEvent};
use ieum_domain::message::{Message, MessageKind};
use ieum_domain::room::Room;
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::links::FileLinks;
use crate::views::{FileJson, MessageJson, RoomJson};

/// Wire shapes, used as the hub's cache slots.
pub const SHAPE_NATIVE: u8 = 0;
/// Contract A (`/topic/chat.{roomId}`).
pub const SHAPE_A: u8 = 1;
/// Contract B (`/topic/couple/{coupleId}`).
pub const SHAPE_B: u8 = 2;
/// Contract C's events (`/user/queue/events`).
pub const SHAPE_C: u8 = 3;

pub fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Contract B's local date-time: `2024-01-11T10:10:00`, in UTC.
pub fn local_time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
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

/// Contract B's `imageUrl`: an uploaded image's stable link (it answers
/// 409 while the image is scanned), or the URL the client sent.
fn contract_b_image_url(m: &Message, links: &FileLinks) -> Option<String> {
    match &m.file {
        _ if m.deleted => None,
        Some(file)
            if matches!(
                file.state,
                AttachmentState::Scanning | AttachmentState::Clean
            ) =>
        {
            Some(links.file(file.id))
        }
        Some(_) => None,
        None => m.image_url.clone(),
    }
}

/// Contract B's message, plus `seq` and `roomId`.
pub fn contract_b_message(m: &Message, links: &FileLinks) -> Value {
    json!({
        "id": m.id,
        "senderId": m.sender_id,
        "senderName": m.sender_name,
        "senderProfileImage": m.sender_image,
        "content": m.content,
        "type": m.kind.as_str(),
        "imageUrl": contract_b_image_url(m, links),
        "isRead": m.read_at.is_some(),
        "readAt": m.read_at.as_ref().map(local_time),
        "createdAt": local_time(&m.created_at),
        "tempId": m.client_msg_id,
        "seq": m.seq,
        "roomId": m.room_id,
    })
}

/// Contract C's message.
pub fn contract_c_message(m: &Message) -> Value {
    json!({
        "msgSeq": m.seq,
        "chatSeq": m.room_id,
        "userId": m.sender_id,
        "nickname": m.sender_name,
        "message": m.content,
        "type": m.kind.as_str(),
        "createdAt": rfc3339(&m.created_at),
    })
}

/// Contract C's room.
pub fn contract_c_room(r: &Room) -> Value {
    json!({
        "chatSeq": r.id,
        "chatName": r.name,
        "chatType": r.visibility.as_str(),
        "isDirected": r.kind == ieum_domain::room::RoomKind::Direct,
        "hasPassword": r.has_password(),
        "memberCount": r.member_count,
        "memberLimit": r.member_limit,
    })
}

/// The `event` header of a MESSAGE frame carrying this payload.
pub fn event_name(p: &EventPayload) -> &'static str {
    match p {
        EventPayload::Message(_) => "message",
        EventPayload::Read { .. } => "read",
        EventPayload::Delivered { .. } => "delivered",
        EventPayload::Typing { .. } => "typing",
        EventPayload::Presence { .. } => "presence",
        EventPayload::MemberJoined { .. } => "member_joined",
        EventPayload::MemberLeft { .. } => "member_left",
        EventPayload::MemberMuted { .. } => "member_muted",
        EventPayload::RoomCreated(_) => "room_created",
        EventPayload::RoomUpdated(_) => "room_updated",
        EventPayload::Edited { .. } => "edited",
        EventPayload::Deleted { .. } => "deleted",
        EventPayload::Reaction { .. } => "reaction",
        EventPayload::Pinned { .. } => "pinned",
        EventPayload::SessionRevoked { .. } => "session_revoked",
        EventPayload::UserSuspended { .. } => "user_suspended",
        EventPayload::FileUpdated { .. } => "file_updated",
    }
}

fn native(event: &RoomEvent, links: &FileLinks) -> Option<Value> {
    let room = &event.room_id;
    Some(match &event.payload {
        EventPayload::Message(m) => serde_json::to_value(MessageJson::new(m, links)).ok()?,
        EventPayload::FileUpdated {
            message_id,
            seq,
            file,
        } => json!({
            "event": "FILE_UPDATED", "roomId": room, "messageId": message_id, "seq": seq,
            "file": FileJson::new(file, links),
        }),
        EventPayload::Read {
            user_id,
            seq,
            message_ids,
            read_at,
        } => json!({
            "event": "READ", "roomId": room, "userId": user_id, "seq": seq,
            "messageIds": message_ids, "readAt": rfc3339(read_at),
        }),
        EventPayload::Delivered { user_id, seq } => json!({
            "event": "DELIVERED", "roomId": room, "userId": user_id, "seq": seq,
        }),
        EventPayload::Typing { user_id, at, until } => json!({
            "event": "TYPING", "roomId": room, "userId": user_id, "at": rfc3339(at), "until": rfc3339(until),
        }),
        EventPayload::Presence {
            user_id,
            online,
            at,
        } => json!({
            "event": "PRESENCE", "roomId": room, "userId": user_id, "online": online, "at": rfc3339(at),
        }),
        EventPayload::MemberJoined {
            room,
            user_id,
            username,
        } => json!({
            "event": "MEMBER_JOINED", "roomId": room.id, "userId": user_id, "username": username,
        }),
        EventPayload::MemberLeft {
            room_id,
            user_id,
            kicked,
        } => json!({
            "event": "MEMBER_LEFT", "roomId": room_id, "userId": user_id, "kicked": kicked,
        }),
        EventPayload::MemberMuted { user_id, until } => json!({
            "event": "MEMBER_MUTED", "roomId": room, "userId": user_id,
            "until": until.as_ref().map(rfc3339),
        }),
        EventPayload::RoomCreated(_) => return None,
        EventPayload::RoomUpdated(r) => json!({
            "event": "ROOM_UPDATED", "roomId": r.id, "room": RoomJson::from(r.as_ref()),
        }),
        EventPayload::Edited {
            message_id,
            seq,
            content,
            edited_at,
        } => json!({
            "event": "EDITED", "roomId": room, "messageId": message_id, "seq": seq,
            "content": content, "editedAt": rfc3339(edited_at),
        }),
        EventPayload::Deleted {
            message_id,
            seq,
            expired,
        } => json!({
            "event": "DELETED", "roomId": room, "messageId": message_id, "seq": seq, "expired": expired,
        }),
        EventPayload::Reaction {
            message_id,
            user_id,
            emoji,
            added,
        } => json!({
            "event": "REACTION", "roomId": room, "messageId": message_id, "userId": user_id,
            "emoji": emoji, "added": added,
        }),
        EventPayload::Pinned {
            message_id,
            by,
            pinned,
        } => json!({
            "event": if *pinned { "PINNED" } else { "UNPINNED" }, "roomId": room,
            "messageId": message_id, "by": by,
        }),
        // The session ends the connection instead (`Session::ended`).
        EventPayload::SessionRevoked { .. } | EventPayload::UserSuspended { .. } => return None,
    })
}

fn contract_b(event: &RoomEvent, links: &FileLinks) -> Option<Value> {
    Some(match &event.payload {
        EventPayload::Message(m) if m.kind != MessageKind::System => contract_b_message(m, links),
        EventPayload::FileUpdated {
            message_id, file, ..
        } => json!({
            "type": "FILE_UPDATED", "id": message_id, "scan": file.scan.as_str(),
            "imageUrl": file.is_downloadable().then(|| links.file(file.id)),
        }),
        EventPayload::Read {
            user_id,
            message_ids,
            read_at,
            ..
        } => json!({
            "type": "READ_RECEIPT", "messageIds": message_ids, "readAt": local_time(read_at), "userId": user_id,
        }),
        EventPayload::Typing { user_id, at, .. } => json!({
            "type": "SYSTEM", "event": "TYPING", "userId": user_id, "timestamp": local_time(at),
        }),
        EventPayload::Presence {
            user_id,
            online,
            at,
        } => json!({
            "type": "SYSTEM",
            "event": if *online { "USER_CONNECTED" } else { "USER_DISCONNECTED" },
            "userId": user_id, "timestamp": local_time(at),
        }),
        EventPayload::Edited {
            message_id,
            content,
            edited_at,
            ..
        } => json!({
            "type": "MESSAGE_EDITED", "id": message_id, "content": content,
            "editedAt": local_time(edited_at),
        }),
        EventPayload::Deleted {
            message_id,
            expired,
            ..
        } => json!({ "type": "MESSAGE_DELETED", "id": message_id, "expired": expired }),
        EventPayload::Reaction {
            message_id,
            user_id,
            emoji,
            added,
        } => json!({
            "type": "REACTION", "id": message_id, "userId": user_id, "emoji": emoji, "added": added,
        }),
        EventPayload::Pinned {
            message_id,
            by,
            pinned,
        } => json!({
            "type": if *pinned { "MESSAGE_PINNED" } else { "MESSAGE_UNPINNED" },
            "id": message_id, "userId": by,
        }),
        // Contract B's rooms are couples, and a partner leaves only when the
        // couple ends: one event per partner, the one who ended it first.
        EventPayload::MemberLeft { user_id, .. } => json!({
            "type": "SYSTEM", "event": "COUPLE_ENDED", "userId": user_id,
            "timestamp": local_time(&chrono::Utc::now()),
        }),
        _ => return None,
    })
}

/// Contract A's events besides messages: new `type` values beside the
/// messages' own (`TEXT`, ...), with the room and the message `id`.
fn contract_a(event: &RoomEvent) -> Option<Value> {
    let room = &event.room_id;
    Some(match &event.payload {
        EventPayload::Message(m) if m.kind != MessageKind::System => {
            serde_json::to_value(ContractAMessage::from(m)).ok()?
        }
        EventPayload::Edited {
            message_id,
            seq,
            content,
            edited_at,
        } => json!({
            "type": "EDITED", "roomId": room, "id": message_id, "seq": seq,
            "message": content, "editedAt": rfc3339(edited_at),
        }),
        EventPayload::Deleted {
            message_id,
            seq,
            expired,
        } => json!({
            "type": "DELETED", "roomId": room, "id": message_id, "seq": seq, "expired": expired,
        }),
        EventPayload::Reaction {
            message_id,
            user_id,
            emoji,
            added,
        } => json!({
            "type": "REACTION", "roomId": room, "id": message_id, "userId": user_id,
            "emoji": emoji, "added": added,
        }),
        EventPayload::Pinned {
            message_id,
            by,
            pinned,
        } => json!({
            "type": if *pinned { "PINNED" } else { "UNPINNED" }, "roomId": room,
            "id": message_id, "userId": by,
        }),
        EventPayload::MemberJoined {
            room,
            user_id,
            username,
        } => json!({ "type": "JOIN", "roomId": room.id, "userId": user_id, "sender": username }),
        EventPayload::MemberLeft {
            room_id,
            user_id,
            kicked,
        } => json!({ "type": "LEAVE", "roomId": room_id, "userId": user_id, "kicked": kicked }),
        _ => return None,
    })
}

fn contract_c(event: &RoomEvent) -> Option<Value> {
    let (name, data) = contract_c_event(event)?;
    Some(json!({ "event": name, "data": data }))
}

/// Contract C's event for a room event: its socket.io name and data.
pub fn contract_c_event(event: &RoomEvent) -> Option<(&'static str, Value)> {
    Some(match &event.payload {
        EventPayload::Message(m) if m.kind != MessageKind::System => {
            ("chat", contract_c_message(m))
        }
        EventPayload::MemberJoined {
            room,
            user_id,
            username,
        } => (
            "join room",
            json!({ "chatSeq": room.id, "room": contract_c_room(room), "userId": user_id, "nickname": username }),
        ),
        EventPayload::MemberLeft {
            room_id,
            user_id,
            kicked,
        } => (
            "user leave",
            json!({ "chatSeq": room_id, "userId": user_id, "kicked": kicked }),
        ),
        EventPayload::RoomCreated(room) => ("new room", contract_c_room(room)),
        EventPayload::Edited {
            message_id,
            seq,
            content,
            edited_at,
        } => (
            "chat edited",
            json!({ "chatSeq": event.room_id, "msgSeq": seq, "msgId": message_id,
                    "message": content, "editedAt": rfc3339(edited_at) }),
        ),
        EventPayload::Deleted {
            message_id,
            seq,
            expired,
        } => (
            "chat deleted",
            json!({ "chatSeq": event.room_id, "msgSeq": seq, "msgId": message_id, "expired": expired }),
        ),
        EventPayload::Reaction {
            message_id,
            user_id,
            emoji,
            added,
        } => (
            "chat reaction",
            json!({ "chatSeq": event.room_id, "msgId": message_id, "userId": user_id,
                    "emoji": emoji, "added": added }),
        ),
        EventPayload::Pinned {
            message_id,
            by,
            pinned,
        } => (
            if *pinned {
                "chat pinned"
            } else {
                "chat unpinned"
            },
            json!({ "chatSeq": event.room_id, "msgId": message_id, "userId": by }),
        ),
        _ => return None,
    })
}

/// The body of a MESSAGE frame for a subscription of `shape`; empty when that
/// shape does not carry this kind of event.
pub fn event_body(shape: u8, event: &RoomEvent, links: &FileLinks) -> Vec<u8> {
    let value = match shape {
        SHAPE_A => contract_a(event),
        SHAPE_B => contract_b(event, links),
        SHAPE_C => contract_c(event),
        _ => native(event, links),
    };
    value
        .map(|v| v.to_string().into_bytes())
        .unwrap_or_default()
}
