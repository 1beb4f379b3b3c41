use chrono::TimeZone;
use serde_json::{Value, json};

use super::*;
use domain::EventPayload;

fn at(second: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 11, 10, 10, second).unwrap()
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

const SECRET_HASH: &str = "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$secret";

fn room(password: bool) -> domain::Room {
    domain::Room {
        id: "room-1".into(),
        kind: domain::RoomKind::Group,
        name: "club".into(),
        description: Some("a room".into()),
        image_url: Some("https://x/y.png".into()),
        visibility: domain::Visibility::Private,
        password_hash: password.then(|| SECRET_HASH.to_owned()),
        member_limit: 50,
        member_count: 3,
        invite_code: None,
        created_by: id(1),
        created_at: at(0),
        last_seq: 7,
        last_message_at: Some(at(5)),
        history_visibility: domain::HistoryVisibility::UntilLeave,
        pin_policy: domain::PinPolicy::Admins,
    }
}

fn file() -> domain::MessageFile {
    domain::MessageFile {
        id: id(12),
        name: "사진.jpg".into(),
        size: 1234,
        content_type: "image/jpeg".into(),
        width: Some(640),
        height: Some(480),
        scan: domain::ScanStatus::Pending,
        state: domain::AttachmentState::Scanning,
        is_image: true,
    }
}

fn message() -> domain::Message {
    domain::Message {
        id: id(10),
        room_id: "room-1".into(),
        seq: 8,
        sender_id: id(1),
        sender_username: "alice".into(),
        sender_name: "Alice".into(),
        sender_image: Some("/files/a.png".into()),
        kind: domain::MessageKind::Temp,
        content: "안녕 @bob".into(),
        image_url: None,
        file: Some(file()),
        client_msg_id: Some("c-1".into()),
        created_at: at(1),
        read_at: Some(at(2)),
        parent_id: Some(id(9)),
        reply_count: 2,
        last_reply_at: Some(at(3)),
        edited_at: Some(at(4)),
        deleted: false,
        expires_at: Some(at(59)),
        mentions: vec![id(2)],
        reactions: vec![domain::ReactionCount {
            emoji: ":+1:".into(),
            count: 2,
            user_ids: vec![id(2), id(3)],
        }],
    }
}

/// One payload of every variant (the match below does not compile when the
/// domain gains one).
fn every_variant() -> Vec<EventPayload> {
    let samples = vec![
        EventPayload::Message(message()),
        EventPayload::Read {
            user_id: id(2),
            seq: 8,
            message_ids: vec![id(10), id(11)],
            read_at: at(6),
        },
        EventPayload::Delivered {
            user_id: id(2),
            seq: 8,
        },
        EventPayload::Typing {
            user_id: id(2),
            at: at(6),
            until: at(9),
        },
        EventPayload::Presence {
            user_id: id(2),
            online: true,
            at: at(6),
        },
        EventPayload::MemberJoined {
            room: Box::new(room(true)),
            user_id: id(2),
            username: "bob".into(),
        },
        EventPayload::MemberLeft {
            room_id: "room-1".into(),
            user_id: id(2),
            kicked: true,
        },
        EventPayload::RoomCreated(Box::new(room(true))),
        EventPayload::RoomUpdated(Box::new(room(false))),
        EventPayload::Edited {
            message_id: id(10),
            seq: 8,
            content: "edited".into(),
            edited_at: at(7),
        },
        EventPayload::Deleted {
            message_id: id(10),
            seq: 8,
            expired: true,
        },
        EventPayload::Reaction {
            message_id: id(10),
            user_id: id(2),
            emoji: "🎉".into(),
            added: true,
        },
        EventPayload::Pinned {
            message_id: id(10),
            by: id(1),
            pinned: true,
        },
        EventPayload::SessionRevoked { family_id: id(11) },
        EventPayload::UserSuspended { user_id: id(2) },
        EventPayload::MemberMuted {
            user_id: id(2),
            until: None,
        },
        EventPayload::FileUpdated {
            message_id: id(10),
            seq: 8,
            file: Box::new(domain::MessageFile {
                scan: domain::ScanStatus::Infected,
                state: domain::AttachmentState::Infected,
                ..file()
            }),
        },
    ];
    let mut seen = [false; KINDS.len()];
    for payload in &samples {
        let index = match payload {
            EventPayload::Message(_) => 0,
            EventPayload::Read { .. } => 1,
            EventPayload::Delivered { .. } => 2,
            EventPayload::Typing { .. } => 3,
            EventPayload::Presence { .. } => 4,
            EventPayload::MemberJoined { .. } => 5,
            EventPayload::MemberLeft { .. } => 6,
            EventPayload::RoomCreated(_) => 7,
            EventPayload::RoomUpdated(_) => 8,
            EventPayload::Edited { .. } => 9,
            EventPayload::Deleted { .. } => 10,
            EventPayload::Reaction { .. } => 11,
            EventPayload::Pinned { .. } => 12,
            EventPayload::SessionRevoked { .. } => 13,
            EventPayload::FileUpdated { .. } => 14,
            EventPayload::UserSuspended { .. } => 15,
            EventPayload::MemberMuted { .. } => 16,
        };
        seen[index] = true;
    }
    assert!(seen.iter().all(|s| *s), "a sample of every variant");
    samples
}

fn decode(bytes: &[u8]) -> Incoming {
    read(bytes).expect("envelope").into_incoming()
}

fn decoded_event(bytes: &[u8]) -> Arc<RoomEvent> {
    match decode(bytes) {
        Incoming::Event(event) => event,
        other => panic!("not decoded: {other:?}"),
    }
}

/// The hash crosses as a flag only: compare with the flag, then without it.
fn without_hash(payload: &EventPayload) -> EventPayload {
    let mut payload = payload.clone();
    if let EventPayload::MemberJoined { room, .. }
    | EventPayload::RoomCreated(room)
    | EventPayload::RoomUpdated(room) = &mut payload
    {
        room.password_hash = None;
    }
    payload
}

fn has_password(payload: &EventPayload) -> Option<bool> {
    match payload {
        EventPayload::MemberJoined { room, .. }
        | EventPayload::RoomCreated(room)
        | EventPayload::RoomUpdated(room) => Some(room.has_password()),
        _ => None,
    }
}

#[test]
fn every_payload_variant_round_trips_through_the_wire() {
    let node = id(99);
    for payload in every_variant() {
        let sent = RoomEvent::ephemeral("lobby:", payload.clone(), Some(id(3)));
        let bytes = encode(node, &sent).unwrap();
        let envelope = read(&bytes).unwrap();
        assert_eq!((envelope.v, envelope.node), (VERSION, node));
        let got = decoded_event(&bytes);
        assert_eq!(
            (got.room_id.as_str(), got.seq, got.exclude_user),
            ("lobby:", None, Some(id(3)))
        );
        assert_eq!(has_password(&got.payload), has_password(&payload));
        assert_eq!(without_hash(&got.payload), without_hash(&payload));
    }
    let sequenced = RoomEvent::message(message());
    let got = decoded_event(&encode(node, &sequenced).unwrap());
    assert_eq!((got.room_id.as_str(), got.seq), ("room-1", Some(8)));
    assert_eq!(got.payload, sequenced.payload);
}

fn created(room: domain::Room) -> Vec<u8> {
    let event = RoomEvent::ephemeral("lobby:", EventPayload::RoomCreated(Box::new(room)), None);
    encode(id(1), &event).unwrap()
}

fn created_room(bytes: &[u8]) -> domain::Room {
    match &decoded_event(bytes).payload {
        EventPayload::RoomCreated(room) => room.as_ref().clone(),
        other => panic!("not a room: {other:?}"),
    }
}

#[test]
fn a_rooms_password_crosses_as_a_flag_and_its_secrets_not_at_all() {
    let mut locked = room(true);
    locked.invite_code = Some("INVITE42".into());
    let bytes = created(locked);
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.contains(r#""hasPassword":true"#), "{text}");
    assert!(
        !text.contains("argon2") && !text.contains("INVITE42"),
        "{text}"
    );
    let got = created_room(&bytes);
    assert!(got.has_password());
    assert_eq!(got.password_hash.as_deref(), Some(PASSWORD_HASH_STAND_IN));
    assert_eq!(got.invite_code, None);
}

#[test]
fn a_room_without_a_password_arrives_without_one() {
    let got = created_room(&created(room(false)));
    assert!(!got.has_password());
    assert_eq!(got.password_hash, None);
}

/// A message's file, added after v1 as an optional field: written out,
/// and a message without it (from an older node) reads as one without a file.
#[test]
fn a_message_file_is_written_as_its_own_object_and_is_optional() {
    let bytes = encode(id(99), &RoomEvent::message(message())).unwrap();
    let written: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        written["payload"]["message"]["file"],
        json!({
            "id": "00000000-0000-0000-0000-00000000000c",
            "name": "사진.jpg",
            "size": 1234,
            "contentType": "image/jpeg",
            "width": 640,
            "height": 480,
            "scan": "pending",
            "state": "scanning",
            "isImage": true,
        })
    );
    // A state or scan a newer node added still lets the message through.
    let mut newer = written.clone();
    newer["payload"]["message"]["file"]["state"] = json!("quarantined");
    newer["payload"]["message"]["file"]["scan"] = json!("rescanning");
    match &decoded_event(&serde_json::to_vec(&newer).unwrap()).payload {
        EventPayload::Message(m) => {
            let file = m.file.as_ref().expect("the file");
            assert_eq!(
                (file.state, file.scan),
                (
                    domain::AttachmentState::Scanning,
                    domain::ScanStatus::Pending
                )
            );
        }
        other => panic!("not a message: {other:?}"),
    }
    let mut older = written.clone();
    older["payload"]["message"]
        .as_object_mut()
        .unwrap()
        .remove("file");
    let got = decoded_event(&serde_json::to_vec(&older).unwrap());
    match &got.payload {
        EventPayload::Message(m) => assert_eq!(m.file, None),
        other => panic!("not a message: {other:?}"),
    }
}

/// The format itself, written out: a rename anywhere in the domain must not
/// change a byte of this.
#[test]
fn a_message_event_is_written_in_the_v1_format() {
    let mut plain = message();
    plain.reactions.clear();
    plain.file = None;
    let bytes = encode(id(99), &RoomEvent::message(plain)).unwrap();
    let mut written: Value = serde_json::from_slice(&bytes).unwrap();
    let at = written.as_object_mut().unwrap().remove("at_ms");
    assert!(at.is_some_and(|t| t.is_i64()), "the publish time");
    assert_eq!(
        written,
        json!({
            "v": 1,
            "node": "00000000-0000-0000-0000-000000000063",
            "room": "room-1",
            "seq": 8,
            "exclude": null,
            "payload": {"message": {
                "id": "00000000-0000-0000-0000-00000000000a",
                "roomId": "room-1",
                "seq": 8,
                "senderId": "00000000-0000-0000-0000-000000000001",
                "senderUsername": "alice",
                "senderName": "Alice",
                "senderImage": "/files/a.png",
                "type": "TEMP",
                "content": "안녕 @bob",
                "imageUrl": null,
                "clientMsgId": "c-1",
                "createdAt": "2024-01-11T10:10:01Z",
                "readAt": "2024-01-11T10:10:02Z",
                "parentId": "00000000-0000-0000-0000-000000000009",
                "replyCount": 2,
                "lastReplyAt": "2024-01-11T10:10:03Z",
                "editedAt": "2024-01-11T10:10:04Z",
                "deleted": false,
                "expiresAt": "2024-01-11T10:10:59Z",
                "mentions": ["00000000-0000-0000-0000-000000000002"],
            }},
        })
    );
}

fn room_json() -> Value {
    json!({
        "id": "room-1", "kind": "group", "name": "club", "description": null,
        "imageUrl": null, "visibility": "public", "hasPassword": true,
        "memberLimit": 50, "memberCount": 1,
        "createdBy": "00000000-0000-0000-0000-000000000001",
        "createdAt": "2024-01-11T10:10:00Z", "lastSeq": 0, "lastMessageAt": null,
        "historyVisibility": "all", "pinPolicy": "members",
    })
}

fn joined(body: Value) -> Arc<RoomEvent> {
    decoded_event(body.to_string().as_bytes())
}

#[test]
fn unknown_fields_in_the_envelope_the_payload_and_the_room_are_skipped() {
    let mut room = room_json();
    room["topic"] = json!("a field of a newer node");
    let event = joined(json!({
        "v": 1,
        "node": "00000000-0000-0000-0000-000000000063",
        "room": "room-1",
        "seq": null,
        "exclude": null,
        "trace": {"id": "abc"},
        "payload": {"member_joined": {
            "room": room,
            "user_id": "00000000-0000-0000-0000-000000000002",
            "username": "bob",
            "invited_by": "00000000-0000-0000-0000-000000000001",
        }},
    }));
    let EventPayload::MemberJoined { room, username, .. } = &event.payload else {
        panic!("member joined: {event:?}");
    };
    assert_eq!((room.name.as_str(), username.as_str()), ("club", "bob"));
    assert!(room.has_password());
}

#[test]
fn a_newer_version_is_read_for_the_fields_this_node_knows() {
    let event = joined(json!({
        "v": 2,
        "node": "00000000-0000-0000-0000-000000000063",
        "room": "lobby:",
        "payload": {"room_created": room_json()},
        "priority": "high",
    }));
    assert_eq!((event.room_id.as_str(), event.seq), ("lobby:", None));
    let EventPayload::RoomCreated(room) = &event.payload else {
        panic!("room created: {event:?}");
    };
    assert_eq!(room.id, "room-1");
}

#[test]
fn a_message_of_before_versioning_reads_as_v1() {
    let mut room = room_json();
    room.as_object_mut().unwrap().remove("hasPassword");
    let bytes = json!({
        "node": "00000000-0000-0000-0000-000000000063",
        "room": "lobby:",
        "seq": null,
        "exclude": null,
        "payload": {"room_created": room},
    })
    .to_string();
    assert_eq!(read(bytes.as_bytes()).unwrap().v, 1);
    let EventPayload::RoomCreated(room) = &decoded_event(bytes.as_bytes()).payload else {
        panic!("room created");
    };
    assert!(!room.has_password(), "old nodes never said");
}

#[test]
fn an_unknown_kind_of_event_is_skipped_not_fatal() {
    let incoming = decode(
        json!({
            "v": 2,
            "node": "00000000-0000-0000-0000-000000000063",
            "room": "room-1",
            "payload": {"poll_closed": {"poll_id": "p-1"}},
        })
        .to_string()
        .as_bytes(),
    );
    assert!(
        matches!(&incoming, Incoming::UnknownKind { kind } if kind == "poll_closed"),
        "{incoming:?}"
    );
}

#[test]
fn a_known_kind_that_does_not_decode_is_malformed() {
    let incoming = decode(
        json!({
            "v": 1,
            "node": "00000000-0000-0000-0000-000000000063",
            "room": "room-1",
            "payload": {"typing": {"user_id": "not a uuid"}},
        })
        .to_string()
        .as_bytes(),
    );
    assert!(
        matches!(&incoming, Incoming::Malformed { kind, .. } if kind == "typing"),
        "{incoming:?}"
    );
    assert!(read(b"not json").is_err());
    assert!(read(br#"{"room":"r","payload":{}}"#).is_err(), "no node");
}

#[test]
fn every_kind_is_listed() {
    let mut written: Vec<String> = every_variant()
        .iter()
        .map(|payload| payload_kind(&serde_json::to_value(Payload::from(payload)).unwrap()))
        .collect();
    written.sort();
    let mut listed = KINDS.map(str::to_owned).to_vec();
    listed.sort();
    assert_eq!(written, listed);
}
