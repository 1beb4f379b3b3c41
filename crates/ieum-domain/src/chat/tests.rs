//! Unit tests of the messaging use cases, against mocked ports.

use super::*;
use crate::message::HistoryQuery;
use crate::ports::{
    LocalBus, MockClock, MockMessageRepository, MockPasswordHasher, MockReceiptRepository,
    MockRoomRepository, MockSocialRepository, MockUserRepository,
};
use crate::room::{MemberState, Membership, Role, RoomKind};
use crate::rooms::RoomPolicy;

fn who() -> Principal {
    Principal {
        user_id: Uuid::from_u128(1),
        username: "alice".into(),
    }
}

fn message(seq: i64) -> Message {
    Message {
        sender_username: "bob".into(),
        sender_name: "bob".into(),
        ..Message::text("room-1", seq, Uuid::from_u128(2), "hi")
    }
}

/// A member of room-1 whose history holds `stored` messages; the store
/// answers at most the page size it was asked for.
fn service(stored: i64) -> ChatService {
    let mut rooms = MockRoomRepository::new();
    rooms.expect_membership().returning(|room_id, user_id| {
        Ok(Some(Membership {
            room_id: room_id.into(),
            room_kind: RoomKind::Group,
            user_id,
            role: Role::Member,
            state: MemberState::Active,
            joined_at: Utc::now(),
            last_read_seq: 0,
            favorite: false,
            left_seq: None,
            muted_until: None,
        }))
    });
    let rooms = Arc::new(rooms);
    let mut messages = MockMessageRepository::new();
    messages.expect_page().returning(move |_, q| {
        let n = i64::from(q.limit).min(stored);
        Ok((1..=n).map(message).collect())
    });
    messages.expect_reactions().returning(|_| Ok(Vec::new()));
    messages.expect_last_seq().returning(|_| Ok(0));
    let messages = Arc::new(messages);
    let mut clock = MockClock::new();
    clock.expect_now().returning(Utc::now);
    let clock = Arc::new(clock);
    let hub = Hub::new(messages.clone(), Arc::new(LocalBus));
    let room_service = Arc::new(RoomService::new(
        crate::rooms::RoomPorts {
            messages: messages.clone(),
            rooms: rooms.clone(),
            users: Arc::new(MockUserRepository::new()),
            social: Arc::new(MockSocialRepository::new()),
            couples: Arc::new(crate::ports::MockCoupleRepository::new()),
            hasher: Arc::new(MockPasswordHasher::new()),
            hub: hub.clone(),
            clock: clock.clone(),
        },
        RoomPolicy::default(),
    ));
    ChatService::new(
        ChatPorts {
            rooms: room_service,
            room_repo: rooms,
            messages,
            receipts: Arc::new(MockReceiptRepository::new()),
            social: Arc::new(MockSocialRepository::new()),
            hub,
            clock,
        },
        MessagePolicy::default(),
    )
}

fn query(limit: u32) -> HistoryQuery {
    HistoryQuery {
        limit,
        ..HistoryQuery::default()
    }
}

#[tokio::test]
async fn a_zero_limit_is_the_default_page_and_says_no_more_when_short() {
    let svc = service(3);
    let page = svc
        .history_page(&who(), "room-1", Entry::MembersOnly, query(0))
        .await
        .unwrap();
    assert_eq!(page.messages.len(), 3);
    assert!(!page.has_more, "3 of a default page of 50");
}

#[tokio::test]
async fn a_full_page_says_there_may_be_more() {
    let svc = service(80);
    let page = svc
        .history_page(&who(), "room-1", Entry::MembersOnly, query(0))
        .await
        .unwrap();
    assert_eq!(page.messages.len(), 50, "the default page");
    assert!(page.has_more);
    let page = svc
        .history_page(&who(), "room-1", Entry::MembersOnly, query(10_000))
        .await
        .unwrap();
    assert_eq!(page.messages.len(), 80, "capped at 500, all 80 fit");
    assert!(!page.has_more);
}
