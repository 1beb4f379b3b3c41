//! Staff closing a room, on mocks.

use super::*;
use crate::moderation::{
    Actor, MockAuditLog, MockModerationRepository, ModerationService, ServerRole,
};
use crate::room::MemberView;
use crate::user::User;

const STAFF: Uuid = Uuid::from_u128(77);

fn moderation(role: ServerRole, audit: MockAuditLog) -> ModerationService {
    let mut repo = MockModerationRepository::new();
    repo.expect_role_of().returning(move |_| Ok(role));
    let mut clock = MockClock::new();
    clock.expect_now().returning(Utc::now);
    ModerationService::new(
        Arc::new(repo),
        Arc::new(audit),
        Arc::new(MockUserRepository::new()),
        Arc::new(clock),
    )
}

fn member(id: u128) -> MemberView {
    MemberView {
        user_id: Uuid::from_u128(id),
        username: format!("u{id}"),
        display_name: format!("u{id}"),
        profile_image_url: None,
        role: Role::Member,
        joined_at: Utc::now(),
        last_read_seq: 0,
    }
}

/// A room service whose SYSTEM messages go to `sys`, acted on by "keeper".
fn rooms_service(rooms: MockRoomRepository, sys: MockMessageRepository) -> RoomService {
    let mut users = MockUserRepository::new();
    users.expect_find_by_id().returning(|id| {
        Ok(Some(User {
            id,
            username: "keeper".into(),
            display_name: "keeper".into(),
            profile_image_url: None,
            status_message: None,
            created_at: Utc::now(),
            discoverable: false,
        }))
    });
    service_posting_to(
        rooms,
        MockPasswordHasher::new(),
        users,
        MockCoupleRepository::new(),
        sys,
    )
}

/// The code a closing is refused with, by someone of `role`; nothing is
/// audited.
async fn refused(rooms: MockRoomRepository, role: ServerRole, reason: &str) -> &'static str {
    let mut audit = MockAuditLog::new();
    audit.expect_append().never();
    rooms_service(rooms, MockMessageRepository::new())
        .close_by_staff(
            &moderation(role, audit),
            &Actor::user(STAFF, None),
            "room-1",
            reason,
        )
        .await
        .unwrap_err()
        .code()
}

#[tokio::test]
async fn a_moderator_closes_a_group_room_removing_everyone_and_auditing_it() {
    let mut rooms = MockRoomRepository::new();
    rooms
        .expect_find()
        .returning(|_| Ok(Some(room(Visibility::Public, false))));
    rooms
        .expect_close()
        .withf(|id, by, _, reason| id == "room-1" && *by == Some(STAFF) && reason == "spam ring")
        .times(1)
        .returning(|_, _, _, _| Ok(true));
    rooms
        .expect_members()
        .returning(|_| Ok(vec![member(1), member(2)]));
    rooms
        .expect_remove_member()
        .withf(|id, _, state| id == "room-1" && *state == MemberState::Left)
        .times(2)
        .returning(|_, _, _| Ok(true));
    let mut sys = MockMessageRepository::new();
    sys.expect_append()
        .withf(|m| m.content.contains("closed this room: spam ring"))
        .times(1)
        .returning(|_| Err(DomainError::Unavailable("not stored in this test".into())));
    let mut audit = MockAuditLog::new();
    audit
        .expect_append()
        .withf(|e| {
            e.action == "room.close"
                && e.target_id == "room-1"
                && e.actor_id == Some(STAFF)
                && e.reason.as_deref() == Some("spam ring")
        })
        .times(1)
        .returning(|_| Ok(()));
    let svc = rooms_service(rooms, sys);
    svc.close_by_staff(
        &moderation(ServerRole::Moderator, audit),
        &Actor::user(STAFF, None),
        "room-1",
        " spam ring ",
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn only_staff_close_only_open_group_rooms_and_with_a_reason() {
    let untouched = || {
        let mut rooms = MockRoomRepository::new();
        rooms
            .expect_find()
            .returning(|_| Ok(Some(room(Visibility::Public, false))));
        rooms.expect_close().never();
        rooms.expect_remove_member().never();
        rooms
    };
    assert_eq!(
        refused(untouched(), ServerRole::Member, "x").await,
        "not_staff"
    );
    assert_eq!(
        refused(untouched(), ServerRole::Admin, "  ").await,
        "invalid_reason"
    );

    let mut direct = MockRoomRepository::new();
    direct.expect_find().returning(|_| {
        Ok(Some(Room {
            kind: RoomKind::Direct,
            ..room(Visibility::Private, false)
        }))
    });
    direct.expect_close().never();
    assert_eq!(
        refused(direct, ServerRole::Admin, "x").await,
        "not_closable"
    );

    let mut closed = MockRoomRepository::new();
    closed
        .expect_find()
        .returning(|_| Ok(Some(room(Visibility::Public, false))));
    closed.expect_close().returning(|_, _, _, _| Ok(false));
    closed.expect_remove_member().never();
    assert_eq!(refused(closed, ServerRole::Admin, "x").await, "room_closed");
}

#[tokio::test]
async fn nobody_joins_a_closed_room() {
    let mut rooms = MockRoomRepository::new();
    rooms
        .expect_find()
        .returning(|_| Ok(Some(room(Visibility::Public, false))));
    rooms.expect_membership().returning(|_, _| Ok(None));
    rooms
        .expect_add_member()
        .returning(|_, _, _, _| Ok(JoinOutcome::Closed));
    let svc = service(rooms, MockPasswordHasher::new());
    let err = svc
        .join(&who(), "room-1", JoinRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "room_closed");
}
