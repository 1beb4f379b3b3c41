//! The client's JSON objects, parsed into what the connection does. Pure.

use ieum_domain::DomainError;
use ieum_domain::message::SendMessage;
use ieum_domain::rooms::Entry;
use ieum_domain::session::Command;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

/// One client object: `{"type": ..., "requestId"?: ..., ...}`.
#[derive(Debug, PartialEq)]
pub(super) enum Request {
    Auth {
        token: String,
    },
    Subscribe {
        id: String,
        room_id: String,
        last_seq: Option<i64>,
    },
    Unsubscribe {
        id: String,
    },
    Command(Command),
    Ping,
}

#[derive(Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
enum Body {
    Auth {
        token: String,
        request_id: Option<String>,
    },
    Subscribe {
        id: String,
        room_id: String,
        last_seq: Option<i64>,
        request_id: Option<String>,
    },
    Unsubscribe {
        id: String,
        request_id: Option<String>,
    },
    Send {
        room_id: String,
        #[serde(default)]
        content: String,
        kind: Option<String>,
        client_msg_id: Option<String>,
        parent_id: Option<Uuid>,
        ttl_seconds: Option<u32>,
        image_url: Option<String>,
        attachment_id: Option<Uuid>,
        request_id: Option<String>,
    },
    Read {
        room_id: String,
        seq: Option<i64>,
        #[serde(default)]
        message_ids: Vec<Uuid>,
        request_id: Option<String>,
    },
    Typing {
        room_id: String,
        request_id: Option<String>,
    },
    Ping {
        request_id: Option<String>,
    },
}

/// The `requestId` of an object that may not parse (for its error).
pub(super) fn request_id_of(text: &str) -> Option<String> {
    let value: Value = serde_json::from_str(text).ok()?;
    value.get("requestId")?.as_str().map(str::to_owned)
}

/// Parses one client object; answers it with its `requestId`.
pub(super) fn parse(text: &str) -> Result<(Request, Option<String>), DomainError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| DomainError::invalid("invalid_json", format!("not JSON: {e}")))?;
    let Some(kind) = value.get("type").and_then(Value::as_str) else {
        return Err(DomainError::invalid(
            "missing_type",
            "every object needs a string \"type\"",
        ));
    };
    const KNOWN: [&str; 7] = [
        "auth",
        "subscribe",
        "unsubscribe",
        "send",
        "read",
        "typing",
        "ping",
    ];
    if !KNOWN.contains(&kind) {
        return Err(DomainError::invalid(
            "unknown_type",
            format!("unknown type {kind:?}; one of {}", KNOWN.join(", ")),
        ));
    }
    let body: Body = serde_json::from_value(value)
        .map_err(|e| DomainError::invalid("invalid_body", e.to_string()))?;
    Ok(match body {
        Body::Auth { token, request_id } => (Request::Auth { token }, request_id),
        Body::Subscribe {
            id,
            room_id,
            last_seq,
            request_id,
        } => (
            Request::Subscribe {
                id,
                room_id,
                last_seq,
            },
            request_id,
        ),
        Body::Unsubscribe { id, request_id } => (Request::Unsubscribe { id }, request_id),
        Body::Send {
            room_id,
            content,
            kind,
            client_msg_id,
            parent_id,
            ttl_seconds,
            image_url,
            attachment_id,
            request_id,
        } => {
            let kind = match kind.as_deref() {
                None => None,
                Some(k) => Some(ieum_domain::message::MessageKind::parse(k).ok_or_else(|| {
                    DomainError::invalid("invalid_type", format!("unknown message type {k:?}"))
                })?),
            };
            (
                Request::Command(Command::Message {
                    room_id,
                    entry: Entry::MembersOnly,
                    msg: SendMessage {
                        parent_id,
                        ttl_seconds,
                        kind,
                        content,
                        image_url,
                        attachment_id,
                        client_msg_id,
                    },
                }),
                request_id,
            )
        }
        Body::Read {
            room_id,
            seq,
            message_ids,
            request_id,
        } => (
            Request::Command(Command::Read {
                room_id,
                message_ids,
                upto: seq,
            }),
            request_id,
        ),
        Body::Typing {
            room_id,
            request_id,
        } => (Request::Command(Command::Typing { room_id }), request_id),
        Body::Ping { request_id } => (Request::Ping, request_id),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_send_becomes_a_message_command() {
        let (request, id) =
            parse(r#"{"type":"send","roomId":"r1","content":"안녕","requestId":"7"}"#).unwrap();
        assert_eq!(id.as_deref(), Some("7"));
        let Request::Command(Command::Message { room_id, msg, .. }) = request else {
            panic!("{request:?}");
        };
        assert_eq!((room_id.as_str(), msg.content.as_str()), ("r1", "안녕"));
    }

    #[test]
    fn bad_objects_get_codes() {
        let code = |t: &str| parse(t).unwrap_err().code();
        assert_eq!(code("nope"), "invalid_json");
        assert_eq!(code("{}"), "missing_type");
        assert_eq!(code(r#"{"type":"dance"}"#), "unknown_type");
        assert_eq!(code(r#"{"type":"send"}"#), "invalid_body");
        assert_eq!(
            code(r#"{"type":"send","roomId":"r","extra":1}"#),
            "invalid_body"
        );
        assert_eq!(
            code(r#"{"type":"send","roomId":"r","kind":"HOLOGRAM"}"#),
            "invalid_type"
        );
        assert_eq!(
            request_id_of(r#"{"type":"x","requestId":"q"}"#).as_deref(),
            Some("q")
        );
    }

    #[test]
    fn subscribe_reads_last_seq() {
        let (request, _) =
            parse(r#"{"type":"subscribe","id":"s","roomId":"r","lastSeq":4}"#).unwrap();
        assert_eq!(
            request,
            Request::Subscribe {
                id: "s".into(),
                room_id: "r".into(),
                last_seq: Some(4)
            }
        );
    }
}
