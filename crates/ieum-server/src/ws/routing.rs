//! STOMP destinations and bodies onto session commands: a pure function of
//! the frame, unit-tested like a codec (no IO, no state).

use ieum_domain::DomainError;
use ieum_domain::message::{MessageKind, SendMessage};
use ieum_domain::rooms::Entry;
use ieum_domain::session::Command;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::wire::{SHAPE_A, SHAPE_B, SHAPE_NATIVE};

pub const ERRORS_DESTINATION: &str = "/user/queue/errors";
pub const EVENTS_DESTINATION: &str = "/user/queue/events";

/// Which client contract a frame speaks: decides the shape of its error notices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Native,
    Couple,
}

/// Where a subscription points.
pub enum Target {
    Room {
        room_id: String,
        shape: u8,
        entry: Entry,
    },
    Errors,
    /// Contract C's events: the user's rooms, their feed and the lobby.
    Events,
}

pub fn subscribe_target(destination: &str) -> Option<Target> {
    if let Some(room_id) = destination.strip_prefix("/topic/chat.") {
        return Some(Target::Room {
            room_id: room_id.to_owned(),
            shape: SHAPE_A,
            entry: Entry::AutoJoin,
        });
    }
    if let Some(room_id) = destination.strip_prefix("/topic/rooms/") {
        return Some(Target::Room {
            room_id: room_id.to_owned(),
            shape: SHAPE_NATIVE,
            entry: Entry::MembersOnly,
        });
    }
    if let Some(room_id) = destination.strip_prefix("/topic/couple/") {
        return Some(Target::Room {
            room_id: room_id.to_owned(),
            shape: SHAPE_B,
            entry: Entry::MembersOnly,
        });
    }
    match destination {
        ERRORS_DESTINATION => Some(Target::Errors),
        EVENTS_DESTINATION => Some(Target::Events),
        _ => None,
    }
}

/// A CONNECT `heart-beat` header: two integers.
pub fn parse_heartbeat(v: &str) -> Option<(u64, u64)> {
    let (a, b) = v.split_once(',')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContractASend {
    room_id: String,
    message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NativeSend {
    #[serde(rename = "type")]
    kind: Option<String>,
    parent_id: Option<uuid::Uuid>,
    ttl_seconds: Option<u32>,
    #[serde(default)]
    content: String,
    image_url: Option<String>,
    attachment_id: Option<uuid::Uuid>,
    client_msg_id: Option<String>,
}

pub fn bad_body(e: impl std::fmt::Display) -> DomainError {
    DomainError::invalid("invalid_body", format!("invalid JSON body: {e}"))
}

/// The client's id of a message (`tempId`, `clientMsgId`) from a body that
/// may not have parsed as a whole, so that an error can still carry it.
pub fn readable_temp_id(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    ["tempId", "clientMsgId"]
        .into_iter()
        .find_map(|key| value.get(key)?.as_str().map(str::to_owned))
}

/// A JSON object body. serde would also read a struct from an array, by
/// position (`["room-1","hi"]`); the contracts document objects, so anything
/// else is `invalid_body`.
pub fn object_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, DomainError> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(bad_body)?;
    if !value.is_object() {
        return Err(bad_body("the body must be a JSON object"));
    }
    serde_json::from_value(value).map_err(bad_body)
}

fn parse_kind(kind: Option<&str>) -> Result<Option<MessageKind>, DomainError> {
    match kind {
        None => Ok(None),
        Some(k) => MessageKind::parse(k).map(Some).ok_or_else(|| {
            DomainError::invalid("invalid_type", format!("unknown message type {k:?}"))
        }),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CoupleSend {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    content: String,
    image_url: Option<String>,
    temp_id: Option<String>,
    /// ieum's own: the upload, when the client knows it (else read from
    /// an `imageUrl` that is one of ieum's file links).
    attachment_id: Option<uuid::Uuid>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ReadBody {
    #[serde(default)]
    message_ids: Vec<uuid::Uuid>,
    seq: Option<i64>,
}

#[derive(Deserialize)]
struct EventsSend {
    event: String,
    data: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChatEvent {
    chat_seq: serde_json::Value,
    message: String,
}

fn read_body(body: &[u8]) -> Result<ReadBody, DomainError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(ReadBody::default());
    }
    object_body(body)
}

pub fn profile_of(destination: &str) -> Profile {
    if destination.starts_with("/app/chat/") || destination.starts_with("/topic/couple/") {
        Profile::Couple
    } else {
        Profile::Native
    }
}

/// Contract C's client event (`chat`), from `SEND /app/events` or a
/// Socket.IO event, onto a command.
pub fn parse_event(name: &str, data: serde_json::Value) -> Result<Command, DomainError> {
    parse_event_with(name, data, None)
}

fn parse_event_with(
    name: &str,
    data: serde_json::Value,
    client_msg_id: Option<String>,
) -> Result<Command, DomainError> {
    if name != "chat" {
        return Err(DomainError::invalid(
            "unknown_event",
            format!("unknown event {name:?}"),
        ));
    }
    if !data.is_object() {
        return Err(bad_body("data must be a JSON object"));
    }
    let c: ChatEvent = serde_json::from_value(data).map_err(bad_body)?;
    let room_id = match c.chat_seq {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    };
    Ok(Command::Message {
        room_id,
        entry: Entry::MembersOnly,
        msg: SendMessage {
            parent_id: None,
            ttl_seconds: None,
            kind: None,
            content: c.message,
            image_url: None,
            attachment_id: None,
            client_msg_id,
        },
    })
}

/// Maps a SEND's destination and body onto an action.
pub fn parse_send(
    destination: &str,
    body: &[u8],
    header_cmid: Option<String>,
) -> Result<Command, DomainError> {
    if destination == "/app/chat.send" {
        let b: ContractASend = object_body(body)?;
        return Ok(Command::Message {
            room_id: b.room_id,
            entry: Entry::AutoJoin,
            msg: SendMessage {
                parent_id: None,
                ttl_seconds: None,
                kind: None,
                content: b.message,
                image_url: None,
                attachment_id: None,
                client_msg_id: header_cmid,
            },
        });
    }
    if destination == "/app/events" {
        let e: EventsSend = object_body(body)?;
        return parse_event_with(&e.event, e.data, header_cmid);
    }
    if let Some(rest) = destination.strip_prefix("/app/rooms/") {
        if let Some(room_id) = rest.strip_suffix("/messages") {
            let b: NativeSend = object_body(body)?;
            return Ok(Command::Message {
                room_id: room_id.to_owned(),
                entry: Entry::MembersOnly,
                msg: SendMessage {
                    parent_id: b.parent_id,
                    ttl_seconds: b.ttl_seconds,
                    kind: parse_kind(b.kind.as_deref())?,
                    content: b.content,
                    image_url: b.image_url,
                    attachment_id: b.attachment_id,
                    client_msg_id: b.client_msg_id.or(header_cmid),
                },
            });
        }
        if let Some(room_id) = rest.strip_suffix("/read") {
            let b = read_body(body)?;
            return Ok(Command::Read {
                room_id: room_id.to_owned(),
                message_ids: b.message_ids,
                upto: b.seq,
            });
        }
        if let Some(room_id) = rest.strip_suffix("/typing") {
            return Ok(Command::Typing {
                room_id: room_id.to_owned(),
            });
        }
    }
    if let Some(rest) = destination.strip_prefix("/app/chat/") {
        if let Some(room_id) = rest.strip_suffix("/read") {
            let b = read_body(body)?;
            return Ok(Command::Read {
                room_id: room_id.to_owned(),
                message_ids: b.message_ids,
                upto: b.seq,
            });
        }
        if let Some(room_id) = rest.strip_suffix("/typing") {
            return Ok(Command::Typing {
                room_id: room_id.to_owned(),
            });
        }
        if !rest.contains('/') {
            let b: CoupleSend = object_body(body)?;
            return Ok(Command::Message {
                room_id: rest.to_owned(),
                entry: Entry::MembersOnly,
                msg: SendMessage {
                    parent_id: None,
                    ttl_seconds: None,
                    kind: parse_kind(b.kind.as_deref())?,
                    content: b.content,
                    image_url: b.image_url,
                    attachment_id: b.attachment_id,
                    client_msg_id: b.temp_id.or(header_cmid),
                },
            });
        }
    }
    Err(DomainError::not_found(
        "unknown_destination",
        format!("cannot send to {destination}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_map_onto_rooms() {
        assert!(
            matches!(subscribe_target("/topic/chat.room-1"), Some(Target::Room { room_id, shape: SHAPE_A, entry: Entry::AutoJoin }) if room_id == "room-1")
        );
        assert!(matches!(
            subscribe_target("/topic/rooms/abc"),
            Some(Target::Room {
                shape: SHAPE_NATIVE,
                entry: Entry::MembersOnly,
                ..
            })
        ));
        assert!(matches!(
            subscribe_target(ERRORS_DESTINATION),
            Some(Target::Errors)
        ));
        assert!(subscribe_target("/topic/other").is_none());
        let Command::Message {
            room_id,
            entry,
            msg,
        } = parse_send(
            "/app/chat.send",
            br#"{"roomId":"room-1","message":"hi"}"#,
            None,
        )
        .unwrap()
        else {
            panic!("a message")
        };
        assert_eq!(
            (room_id.as_str(), entry, msg.content.as_str()),
            ("room-1", Entry::AutoJoin, "hi")
        );
        let Command::Message { msg, .. } = parse_send(
            "/app/rooms/x/messages",
            br#"{"type":"image","imageUrl":"https://i/x.png","clientMsgId":"c1"}"#,
            None,
        )
        .unwrap() else {
            panic!("a message")
        };
        assert_eq!(msg.kind, Some(MessageKind::Image));
        assert_eq!(msg.client_msg_id.as_deref(), Some("c1"));
        let Command::Message { room_id, msg, .. } = parse_send(
            "/app/chat/c-1",
            br#"{"type":"TEXT","content":"hello","imageUrl":null,"tempId":"t-1"}"#,
            None,
        )
        .unwrap() else {
            panic!("a message")
        };
        assert_eq!(
            (room_id.as_str(), msg.client_msg_id.as_deref()),
            ("c-1", Some("t-1"))
        );
        assert!(matches!(
            parse_send("/app/chat/c-1/typing", b"", None),
            Ok(Command::Typing { .. })
        ));
        assert!(matches!(
            parse_send(
                "/app/chat/c-1/read",
                br#"{"messageIds":["0197a3f5-6b1c-7c4e-9d2a-2f1e0b9c8d7e"]}"#,
                None
            ),
            Ok(Command::Read { message_ids, .. }) if message_ids.len() == 1
        ));
        assert!(matches!(
            parse_send(
                "/app/events",
                br#"{"event":"chat","data":{"chatSeq":"r","message":"m"}}"#,
                None
            ),
            Ok(Command::Message { room_id, .. }) if room_id == "r"
        ));
        assert_eq!(
            parse_send("/app/chat.send", b"{nope", None)
                .unwrap_err()
                .code(),
            "invalid_body"
        );
        assert_eq!(
            parse_send("/app/x", b"{}", None).unwrap_err().code(),
            "unknown_destination"
        );
        assert_eq!(parse_heartbeat("10000, 0"), Some((10000, 0)));
        assert_eq!(parse_heartbeat("x"), None);
    }

    #[test]
    fn an_array_where_an_object_is_documented_is_invalid_body() {
        for (destination, body) in [
            ("/app/chat.send", &br#"["room-1","hello"]"#[..]),
            ("/app/rooms/x/messages", br#"["hi"]"#),
            ("/app/chat/c-1", br#"["TEXT","hello"]"#),
            (
                "/app/chat/c-1/read",
                br#"[["0197a3f5-6b1c-7c4e-9d2a-2f1e0b9c8d7e"]]"#,
            ),
            ("/app/events", br#"{"event":"chat","data":["r","m"]}"#),
        ] {
            assert_eq!(
                parse_send(destination, body, None).unwrap_err().code(),
                "invalid_body",
                "{destination}"
            );
        }
    }

    #[test]
    fn a_temp_id_is_read_from_a_body_that_did_not_parse() {
        let body = br#"{"type":"VIDEO","content":"x","tempId":"t-9"}"#;
        assert!(parse_send("/app/chat/c-1", body, None).is_err());
        assert_eq!(readable_temp_id(body).as_deref(), Some("t-9"));
        assert_eq!(readable_temp_id(b"{nope"), None);
    }
}
