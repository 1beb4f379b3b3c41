//! The JSON of the views, pinned: a rename in the domain must not reach the
//! wire. Field names, enum casing, `null` against absent.

use chrono::{DateTime, TimeZone, Utc};
use ieum_domain::attachment::{AttachmentState, ScanStatus};
use ieum_domain::message::{Message, MessageFile, MessageKind, MessagePreview, ReactionCount};
use ieum_domain::room::{
    HistoryVisibility, PinPolicy, Role, Room, RoomKind, RoomSummary, Visibility,
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::*;

fn at(millis: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 6, 10, 0).unwrap()
        + chrono::Duration::milliseconds(millis.into())
}

fn links() -> crate::links::FileLinks {
    crate::links::FileLinks::new("https://chat.example", b"a test secret of enough length!!")
}

fn message() -> Message {
    Message {
        id: Uuid::from_u128(0x10),
        room_id: "room-1".into(),
        seq: 7,
        sender_id: Uuid::from_u128(0x20),
        sender_username: "alice".into(),
        sender_name: "Alice".into(),
        sender_image: None,
        kind: MessageKind::Text,
        content: "hi @bob".into(),
        image_url: None,
        file: None,
        client_msg_id: Some("c-1".into()),
        created_at: at(456),
        read_at: None,
        parent_id: None,
        reply_count: 0,
        last_reply_at: None,
        edited_at: Some(at(789)),
        deleted: false,
        expires_at: None,
        mentions: vec![Uuid::from_u128(0x30)],
        reactions: Vec::new(),
    }
}

fn room() -> Room {
    Room {
        id: "room-1".into(),
        kind: RoomKind::Group,
        name: "Lobby".into(),
        description: None,
        image_url: Some("https://example.com/a.png".into()),
        visibility: Visibility::Public,
        password_hash: Some("$argon2id$secret".into()),
        member_limit: 50,
        member_count: 3,
        invite_code: Some("SECRET".into()),
        created_by: Uuid::from_u128(0x20),
        created_at: at(0),
        last_seq: 7,
        last_message_at: Some(at(456)),
        history_visibility: HistoryVisibility::UntilLeave,
        pin_policy: PinPolicy::Admins,
    }
}

fn to_json(view: impl serde::Serialize) -> Value {
    serde_json::to_value(view).unwrap()
}

#[test]
fn a_message_has_its_camel_case_fields_and_an_upper_case_type() {
    assert_eq!(
        to_json(MessageJson::new(&message(), &links())),
        json!({
            "id": "00000000-0000-0000-0000-000000000010",
            "roomId": "room-1",
            "seq": 7,
            "senderId": "00000000-0000-0000-0000-000000000020",
            "senderUsername": "alice",
            "senderName": "Alice",
            "senderImage": null,
            "type": "TEXT",
            "content": "hi @bob",
            "imageUrl": null,
            "clientMsgId": "c-1",
            "createdAt": "2026-11-24T06:10:00.456Z",
            "readAt": null,
            "parentId": null,
            "replyCount": 0,
            "lastReplyAt": null,
            "editedAt": "2026-11-24T06:10:00.789Z",
            "deleted": false,
            "expiresAt": null,
            "mentions": ["00000000-0000-0000-0000-000000000030"],
        })
    );
}

#[test]
fn reactions_appear_only_when_a_message_has_some() {
    let mut message = message();
    message.reactions.push(ReactionCount {
        emoji: "👍".into(),
        count: 1,
        user_ids: vec![Uuid::from_u128(0x20)],
    });
    assert_eq!(
        to_json(MessageJson::new(&message, &links()))["reactions"],
        json!([{ "emoji": "👍", "count": 1, "userIds": ["00000000-0000-0000-0000-000000000020"] }])
    );
}

#[test]
fn a_room_summary_nests_the_room_with_lower_and_snake_case_values() {
    let summary = RoomSummary {
        room: room(),
        role: Role::Admin,
        favorite: true,
        last_read_seq: 5,
        unread_count: 2,
        mention_count: 1,
        last_message: Some(MessagePreview {
            id: Uuid::from_u128(0x10),
            seq: 7,
            sender_id: Uuid::from_u128(0x20),
            sender_name: "Alice".into(),
            kind: MessageKind::Image,
            content: "".into(),
            created_at: at(456),
        }),
    };
    assert_eq!(
        to_json(RoomSummaryJson::from(&summary)),
        json!({
            "room": {
                "id": "room-1",
                "kind": "group",
                "name": "Lobby",
                "description": null,
                "imageUrl": "https://example.com/a.png",
                "visibility": "public",
                "memberLimit": 50,
                "memberCount": 3,
                "createdBy": "00000000-0000-0000-0000-000000000020",
                "createdAt": "2026-11-24T06:10:00Z",
                "lastSeq": 7,
                "lastMessageAt": "2026-11-24T06:10:00.456Z",
                "historyVisibility": "until_leave",
                "pinPolicy": "admins",
                "hasPassword": true,
            },
            "role": "admin",
            "favorite": true,
            "lastReadSeq": 5,
            "unreadCount": 2,
            "mentionCount": 1,
            "lastMessage": {
                "id": "00000000-0000-0000-0000-000000000010",
                "seq": 7,
                "senderId": "00000000-0000-0000-0000-000000000020",
                "senderName": "Alice",
                "type": "IMAGE",
                "content": "",
                "createdAt": "2026-11-24T06:10:00.456Z",
            },
        })
    );
    let empty = RoomSummary {
        last_message: None,
        ..summary
    };
    assert_eq!(
        to_json(RoomSummaryJson::from(&empty))["lastMessage"],
        Value::Null
    );
}

#[test]
fn a_room_event_carries_the_room_with_has_password_and_without_secrets() {
    let room = room();
    let event = crate::wire::event_body(
        crate::wire::SHAPE_NATIVE,
        &ieum_domain::hub::RoomEvent::ephemeral(
            room.id.clone(),
            ieum_domain::hub::EventPayload::RoomUpdated(Box::new(room.clone())),
            None,
        ),
        &links(),
    );
    let event: Value = serde_json::from_slice(&event).unwrap();
    let with_flag = to_json(RoomJson::from(&room));
    assert_eq!(event["room"], with_flag);
    assert_eq!(with_flag["hasPassword"], room.has_password());
    let text = with_flag.to_string();
    assert!(
        !text.contains("SECRET") && !text.contains("argon2"),
        "{text}"
    );
}

#[test]
fn request_bodies_name_the_room_enums_as_the_views_do() {
    fn read<T: serde::de::DeserializeOwned>(name: &str) -> T {
        serde_json::from_value(json!(name)).unwrap()
    }
    for visibility in [Visibility::Public, Visibility::Private] {
        assert_eq!(
            Visibility::from(read::<VisibilityName>(visibility.as_str())),
            visibility
        );
    }
    for role in [Role::Member, Role::Admin, Role::Owner] {
        assert_eq!(Role::from(read::<RoleName>(role.as_str())), role);
    }
    for history in [
        HistoryVisibility::All,
        HistoryVisibility::UntilLeave,
        HistoryVisibility::None,
    ] {
        assert_eq!(
            HistoryVisibility::from(read::<HistoryVisibilityName>(history.as_str())),
            history
        );
    }
    for policy in [PinPolicy::Members, PinPolicy::Admins] {
        assert_eq!(
            PinPolicy::from(read::<PinPolicyName>(policy.as_str())),
            policy
        );
    }
}

fn file(state: AttachmentState, scan: ScanStatus) -> MessageFile {
    MessageFile {
        id: Uuid::from_u128(0x30),
        name: "cat.png".into(),
        size: 1234,
        content_type: "image/png".into(),
        width: Some(640),
        height: Some(480),
        scan,
        state,
        is_image: true,
    }
}

#[test]
fn a_clean_file_carries_stable_links_and_a_pending_or_infected_one_none() {
    let with = |file| Message {
        kind: MessageKind::Image,
        file: Some(file),
        ..message()
    };
    let clean = to_json(MessageJson::new(
        &with(file(AttachmentState::Clean, ScanStatus::Clean)),
        &links(),
    ));
    let id = "00000000-0000-0000-0000-000000000030";
    assert_eq!(clean["file"]["scan"], "clean");
    assert_eq!(clean["file"]["width"], 640);
    let url = clean["file"]["url"].as_str().unwrap();
    assert!(url.starts_with(&format!("https://chat.example/media/{id}/file?sig=")));
    let thumb = clean["file"]["thumbnailUrl"].as_str().unwrap();
    assert!(thumb.starts_with(&format!("https://chat.example/media/{id}/thumb-320?sig=")));
    for (state, scan) in [
        (AttachmentState::Scanning, ScanStatus::Pending),
        (AttachmentState::Infected, ScanStatus::Infected),
        (AttachmentState::Expired, ScanStatus::Clean),
    ] {
        let view = to_json(MessageJson::new(&with(file(state, scan)), &links()));
        assert_eq!(view["file"]["scan"], scan.as_str());
        assert_eq!(view["file"]["state"], state.as_str());
        assert_eq!(view["file"]["url"], Value::Null);
        assert_eq!(view["file"]["thumbnailUrl"], Value::Null);
    }
    assert!(
        to_json(MessageJson::new(&message(), &links()))
            .get("file")
            .is_none()
    );
}

#[test]
fn contract_b_gives_an_uploaded_image_its_link_until_it_is_found_infected() {
    let with = |state, scan| Message {
        kind: MessageKind::Image,
        file: Some(file(state, scan)),
        ..message()
    };
    let scanning = crate::wire::contract_b_message(
        &with(AttachmentState::Scanning, ScanStatus::Pending),
        &links(),
    );
    assert!(scanning["imageUrl"].as_str().unwrap().contains("/media/"));
    let infected = crate::wire::contract_b_message(
        &with(AttachmentState::Infected, ScanStatus::Infected),
        &links(),
    );
    assert_eq!(infected["imageUrl"], Value::Null);
}
