//! The push rules, against mocked ports.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use super::*;
use crate::message::Message;
use crate::ports::{
    MockClock, MockDeviceRepository, MockMessageRepository, MockPushGateway, MockPushRepository,
    MockRefreshTokenRepository, MockRoomRepository, MockSocialRepository,
};
use crate::room::{
    HistoryVisibility, MemberState, MemberView, Membership, PinPolicy, Role, Room, RoomKind,
    RoomSummary, Visibility,
};

const ROOM: &str = "room-1";

fn alice() -> Uuid {
    Uuid::from_u128(1)
}

fn bob() -> Uuid {
    Uuid::from_u128(2)
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap()
}

fn phone() -> Device {
    Device {
        id: Uuid::from_u128(10),
        user_id: bob(),
        platform: Platform::Android,
        token: "bob-phone".into(),
        app_version: None,
        locale: Some("ko-KR".into()),
        data_only: false,
        family_id: None,
        created_at: now(),
    }
}

fn message(seq: i64, content: &str) -> Message {
    Message {
        sender_name: "앨리스".into(),
        ..Message::text(ROOM, seq, alice(), content)
    }
}

fn member_view(user_id: Uuid) -> MemberView {
    MemberView {
        user_id,
        username: user_id.to_string(),
        display_name: user_id.to_string(),
        profile_image_url: None,
        role: Role::Member,
        joined_at: now(),
        last_read_seq: 0,
    }
}

fn room() -> Room {
    Room {
        id: ROOM.into(),
        kind: RoomKind::Direct,
        name: "dm".into(),
        description: None,
        image_url: None,
        visibility: Visibility::Private,
        password_hash: None,
        member_limit: 2,
        member_count: 2,
        invite_code: None,
        created_by: alice(),
        created_at: now(),
        last_seq: 0,
        last_message_at: None,
        history_visibility: HistoryVisibility::All,
        pin_policy: PinPolicy::Members,
    }
}

fn membership(last_read_seq: i64) -> Membership {
    Membership {
        room_id: ROOM.into(),
        room_kind: RoomKind::Direct,
        user_id: bob(),
        role: Role::Member,
        state: MemberState::Active,
        joined_at: now(),
        last_read_seq,
        favorite: false,
        left_seq: None,
        muted_until: None,
    }
}

fn entry(seq: i64) -> OutboxEntry {
    OutboxEntry {
        device_id: phone().id,
        room_id: ROOM.into(),
        user_id: bob(),
        message_id: message(seq, "").id,
        seq,
        first_seq: seq,
        count: 1,
        mentioned: false,
        latest_ms: now().timestamp_millis() - 10_000,
        attempts: 0,
        sent_seq: 0,
        claim: Uuid::from_u128(99),
    }
}

/// Every port, to be given expectations and then built into a service.
struct Mocks {
    devices: MockDeviceRepository,
    outbox: MockPushRepository,
    rooms: MockRoomRepository,
    messages: MockMessageRepository,
    social: MockSocialRepository,
    gateway: MockPushGateway,
}

impl Mocks {
    fn new() -> Self {
        let mut rooms = MockRoomRepository::new();
        rooms
            .expect_members()
            .returning(|_| Ok(vec![member_view(alice()), member_view(bob())]));
        let mut devices = MockDeviceRepository::new();
        devices.expect_of_users().returning(|_| Ok(vec![phone()]));
        devices.expect_find().returning(|_| Ok(Some(phone())));
        let mut social = MockSocialRepository::new();
        social.expect_blocked_between().returning(|_, _| Ok(false));
        Self {
            devices,
            outbox: MockPushRepository::new(),
            rooms,
            messages: MockMessageRepository::new(),
            social,
            gateway: MockPushGateway::new(),
        }
    }

    /// What a due entry of seq 1 finds: the message, an unread member, no
    /// proof of delivery, no mute.
    fn due(mut self, content: &'static str, delivered: i64) -> Self {
        self.messages
            .expect_find()
            .returning(move |_| Ok(Some(message(1, content))));
        self.rooms
            .expect_membership()
            .returning(|_, _| Ok(Some(membership(0))));
        self.rooms.expect_find().returning(|_| Ok(Some(room())));
        self.rooms.expect_rooms_of().returning(|_| {
            Ok(vec![RoomSummary {
                room: room(),
                role: Role::Member,
                favorite: false,
                last_read_seq: 0,
                unread_count: 3,
                mention_count: 0,
                last_message: None,
            }])
        });
        self.outbox
            .expect_delivered()
            .returning(move |_, _, _| Ok(delivered));
        self.outbox
            .expect_prefs()
            .returning(|_| Ok(PushPrefs::default()));
        self.outbox.expect_mute_of().returning(|_, _| Ok(None));
        self
    }

    fn build(self) -> Arc<PushService> {
        let mut clock = MockClock::new();
        clock.expect_now().returning(now);
        let mut tokens = MockRefreshTokenRepository::new();
        tokens.expect_family_revoked().returning(|_| Ok(false));
        Arc::new(PushService::new(
            PushPorts {
                devices: Arc::new(self.devices),
                outbox: Arc::new(self.outbox),
                rooms: Arc::new(self.rooms),
                messages: Arc::new(self.messages),
                social: Arc::new(self.social),
                gateway: Arc::new(self.gateway),
                tokens: Arc::new(tokens),
                clock: Arc::new(clock),
            },
            PushPolicy::default(),
        ))
    }

    /// One due entry to claim.
    fn claims(mut self, entry: OutboxEntry) -> Self {
        let mut once = Some(entry);
        self.outbox
            .expect_claim_due()
            .returning(move |_, _, _, _| Ok(once.take().into_iter().collect()));
        self
    }
}

#[tokio::test]
async fn a_message_is_planned_for_the_recipients_devices_after_the_grace_period() {
    let mut mocks = Mocks::new();
    mocks.outbox.expect_mutes_in().returning(|_| Ok(Vec::new()));
    mocks
        .outbox
        .expect_enqueue()
        .withf(|p| {
            p.device_id == phone().id
                && p.user_id == bob()
                && p.seq == 1
                && p.first_seq == 1
                && p.count == 1
                && p.due_ms == now().timestamp_millis() + 3000
        })
        .times(1)
        .returning(|_| Ok(()));
    let service = mocks.build();
    service.on_message(&message(1, "hi")).await.unwrap();
}

#[tokio::test]
async fn a_muted_room_plans_nothing() {
    let mut mocks = Mocks::new();
    mocks
        .outbox
        .expect_mutes_in()
        .returning(|_| Ok(vec![(bob(), Mute { until: None })]));
    mocks.outbox.expect_enqueue().never();
    mocks.build().on_message(&message(1, "hi")).await.unwrap();
}

#[tokio::test]
async fn a_mention_in_a_muted_room_is_planned_as_the_member_chose() {
    for (mentions_when_muted, planned) in [(true, 1), (false, 0)] {
        let mut mocks = Mocks::new();
        mocks
            .outbox
            .expect_mutes_in()
            .returning(|_| Ok(vec![(bob(), Mute { until: None })]));
        mocks.outbox.expect_prefs().returning(move |_| {
            Ok(PushPrefs {
                previews: true,
                mentions_when_muted,
            })
        });
        mocks
            .outbox
            .expect_enqueue()
            .withf(|p| p.mentioned)
            .times(planned)
            .returning(|_| Ok(()));
        let mentioned = Message {
            mentions: vec![bob()],
            ..message(1, "@bob hi")
        };
        mocks.build().on_message(&mentioned).await.unwrap();
    }
}

#[tokio::test]
async fn an_expired_mute_plans_as_usual() {
    let mut mocks = Mocks::new();
    mocks.outbox.expect_mutes_in().returning(|_| {
        Ok(vec![(
            bob(),
            Mute {
                until: Some(now() - chrono::Duration::seconds(1)),
            },
        )])
    });
    mocks.outbox.expect_enqueue().times(1).returning(|_| Ok(()));
    mocks.build().on_message(&message(1, "hi")).await.unwrap();
}

#[tokio::test]
async fn a_member_who_blocked_the_sender_gets_nothing() {
    let mut mocks = Mocks::new();
    mocks.social = MockSocialRepository::new();
    mocks
        .social
        .expect_blocked_between()
        .returning(|_, _| Ok(true));
    mocks.outbox.expect_mutes_in().returning(|_| Ok(Vec::new()));
    mocks.outbox.expect_enqueue().never();
    mocks.build().on_message(&message(1, "hi")).await.unwrap();
}

#[tokio::test]
async fn a_due_push_carries_title_preview_data_and_badge() {
    let mut mocks = Mocks::new().due("사랑해 ❤️", 0).claims(entry(1));
    mocks
        .gateway
        .expect_send()
        .withf(|n| {
            n.token == "bob-phone"
                && n.title == "앨리스"
                && n.body == "사랑해 ❤️"
                && n.badge == 3
                && n.collapse_key == ROOM
                && n.data.room_id == ROOM
                && n.data.seq == 1
                && n.data.kind == "TEXT"
        })
        .times(1)
        .returning(|_| PushOutcome::Sent);
    mocks
        .outbox
        .expect_sent()
        .withf(|e, quiet| e.seq == 1 && *quiet == now().timestamp_millis() + 10_000)
        .times(1)
        .returning(|_, _| Ok(()));
    assert_eq!(mocks.build().run_due().await.unwrap(), 1);
}

#[tokio::test]
async fn a_device_that_received_the_message_gets_no_push() {
    let mut mocks = Mocks::new().due("hi", 1).claims(entry(1));
    mocks.gateway.expect_send().never();
    mocks
        .outbox
        .expect_skipped()
        .times(1)
        .returning(|_, _| Ok(()));
    mocks.build().run_due().await.unwrap();
}

#[tokio::test]
async fn a_read_message_gets_no_push() {
    let mut mocks = Mocks::new().claims(entry(1));
    mocks
        .messages
        .expect_find()
        .returning(|_| Ok(Some(message(1, "hi"))));
    mocks
        .rooms
        .expect_membership()
        .returning(|_, _| Ok(Some(membership(1))));
    mocks.gateway.expect_send().never();
    mocks
        .outbox
        .expect_skipped()
        .times(1)
        .returning(|_, _| Ok(()));
    mocks.build().run_due().await.unwrap();
}

#[tokio::test]
async fn a_deleted_message_is_never_pushed() {
    let mut mocks = Mocks::new().claims(entry(1));
    mocks.messages.expect_find().returning(|_| {
        Ok(Some(Message {
            deleted: true,
            ..message(1, "")
        }))
    });
    mocks.messages.expect_page().returning(|_, _| {
        Ok(vec![Message {
            deleted: true,
            ..message(1, "")
        }])
    });
    mocks.gateway.expect_send().never();
    mocks
        .outbox
        .expect_skipped()
        .times(1)
        .returning(|_, _| Ok(()));
    mocks.build().run_due().await.unwrap();
}

#[tokio::test]
async fn a_deleted_latest_message_pushes_the_one_before_it() {
    let mut mocks = Mocks::new().due("unused", 0).claims(OutboxEntry {
        first_seq: 1,
        count: 2,
        ..entry(2)
    });
    mocks.messages = MockMessageRepository::new();
    mocks.messages.expect_find().returning(|_| {
        Ok(Some(Message {
            deleted: true,
            ..message(2, "")
        }))
    });
    mocks.messages.expect_page().returning(|_, _| {
        Ok(vec![
            message(1, "still here"),
            Message {
                deleted: true,
                ..message(2, "")
            },
        ])
    });
    mocks
        .gateway
        .expect_send()
        .withf(|n| n.body == "still here" && n.data.seq == 1)
        .times(1)
        .returning(|_| PushOutcome::Sent);
    mocks.outbox.expect_sent().returning(|_, _| Ok(()));
    mocks.build().run_due().await.unwrap();
}

#[tokio::test]
async fn a_device_that_changed_hands_gets_nothing_of_the_old_owner() {
    let mut mocks = Mocks::new().claims(entry(1));
    mocks.devices = MockDeviceRepository::new();
    mocks.devices.expect_find().returning(|_| {
        Ok(Some(Device {
            user_id: Uuid::from_u128(77),
            ..phone()
        }))
    });
    mocks.gateway.expect_send().never();
    mocks
        .outbox
        .expect_skipped()
        .times(1)
        .returning(|_, _| Ok(()));
    mocks.build().run_due().await.unwrap();
}

#[tokio::test]
async fn a_receiving_device_is_given_the_grace_period_of_the_latest_message() {
    let latest_ms = now().timestamp_millis() - 1000;
    let mut mocks = Mocks::new().due("hi", 1).claims(OutboxEntry {
        seq: 3,
        first_seq: 1,
        latest_ms,
        ..entry(3)
    });
    mocks.gateway.expect_send().never();
    mocks
        .outbox
        .expect_retry()
        .withf(move |_, due, first, attempts| {
            *due == latest_ms + 3000 && *first == 2 && *attempts == 0
        })
        .times(1)
        .returning(|_, _, _, _| Ok(()));
    mocks.build().run_due().await.unwrap();
}

#[tokio::test]
async fn a_retry_after_is_honoured() {
    let mut mocks = Mocks::new().due("hi", 0).claims(entry(1));
    mocks
        .gateway
        .expect_send()
        .returning(|_| PushOutcome::Retry {
            after: Some(Duration::from_secs(7)),
        });
    mocks
        .outbox
        .expect_retry()
        .withf(|_, due, _, attempts| *due == now().timestamp_millis() + 7000 && *attempts == 1)
        .times(1)
        .returning(|_, _, _, _| Ok(()));
    mocks.build().run_due().await.unwrap();
}

#[tokio::test]
async fn a_refused_token_removes_the_device() {
    let mut mocks = Mocks::new().due("hi", 0).claims(entry(1));
    mocks
        .gateway
        .expect_send()
        .returning(|_| PushOutcome::BadToken);
    mocks
        .devices
        .expect_remove_token()
        .withf(|t| t == "bob-phone")
        .times(1)
        .returning(|_| Ok(true));
    mocks.build().run_due().await.unwrap();
}

#[tokio::test]
async fn hidden_previews_say_only_new_message_in_the_device_language() {
    let mut mocks = Mocks::new().due("secret", 0).claims(entry(1));
    mocks.outbox = MockPushRepository::new();
    let mut once = Some(entry(1));
    mocks
        .outbox
        .expect_claim_due()
        .returning(move |_, _, _, _| Ok(once.take().into_iter().collect()));
    mocks.outbox.expect_delivered().returning(|_, _, _| Ok(0));
    mocks.outbox.expect_mute_of().returning(|_, _| Ok(None));
    mocks.outbox.expect_prefs().returning(|_| {
        Ok(PushPrefs {
            previews: false,
            mentions_when_muted: true,
        })
    });
    mocks
        .gateway
        .expect_send()
        .withf(|n| n.body == "새 메시지" && !n.body.contains("secret"))
        .times(1)
        .returning(|_| PushOutcome::Sent);
    mocks.outbox.expect_sent().returning(|_, _| Ok(()));
    mocks.build().run_due().await.unwrap();
}
