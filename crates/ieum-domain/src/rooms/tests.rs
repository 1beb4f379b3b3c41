//! Unit tests of the room use cases, against mocked ports.

use super::invites::invite_code;
use super::*;
use crate::ports::{
    Couple, JoinOutcome, LocalBus, MockClock, MockCoupleRepository, MockMessageRepository,
    MockPasswordHasher, MockRoomRepository, MockSocialRepository, MockUserRepository,
};
use crate::room::{HistoryVisibility, MemberState, Role, RoomSettings};
use chrono::Utc;
use uuid::Uuid;

fn who() -> Principal {
    Principal {
        user_id: Uuid::from_u128(1),
        username: "alice".into(),
    }
}

fn room(visibility: Visibility, password: bool) -> Room {
    Room {
        id: "room-1".into(),
        kind: RoomKind::Group,
        name: "room-1".into(),
        description: None,
        image_url: None,
        visibility,
        password_hash: password.then(|| "HASH".into()),
        member_limit: 50,
        member_count: 1,
        invite_code: Some("CODE".into()),
        created_by: Uuid::from_u128(9),
        created_at: Utc::now(),
        last_seq: 0,
        last_message_at: None,
        history_visibility: HistoryVisibility::All,
        pin_policy: crate::room::PinPolicy::Members,
    }
}

/// A group-room membership as the repository would return it.
fn membership(room_id: &str, user_id: Uuid, role: Role, state: MemberState) -> Membership {
    Membership {
        room_id: room_id.into(),
        room_kind: RoomKind::Group,
        user_id,
        role,
        state,
        joined_at: Utc::now(),
        last_read_seq: 0,
        favorite: false,
        left_seq: None,
        muted_until: None,
    }
}

fn service(rooms: MockRoomRepository, hasher: MockPasswordHasher) -> RoomService {
    service_with_users(rooms, hasher, MockUserRepository::new())
}

fn service_with_users(
    rooms: MockRoomRepository,
    hasher: MockPasswordHasher,
    users: MockUserRepository,
) -> RoomService {
    let mut couples = MockCoupleRepository::new();
    couples.expect_couple_of().returning(|_| Ok(None));
    service_with(rooms, hasher, users, couples)
}

fn service_with(
    rooms: MockRoomRepository,
    hasher: MockPasswordHasher,
    users: MockUserRepository,
    couples: MockCoupleRepository,
) -> RoomService {
    let mut sys = MockMessageRepository::new();
    sys.expect_last_seq().returning(|_| Ok(0));
    service_posting_to(rooms, hasher, users, couples, sys)
}

/// A room service whose SYSTEM messages go to `sys`.
fn service_posting_to(
    rooms: MockRoomRepository,
    hasher: MockPasswordHasher,
    users: MockUserRepository,
    couples: MockCoupleRepository,
    sys: MockMessageRepository,
) -> RoomService {
    let mut clock = MockClock::new();
    clock.expect_now().returning(Utc::now);
    let mut messages = MockMessageRepository::new();
    messages.expect_last_seq().returning(|_| Ok(0));
    RoomService::new(
        RoomPorts {
            messages: Arc::new(sys),
            rooms: Arc::new(rooms),
            users: Arc::new(users),
            social: Arc::new(MockSocialRepository::new()),
            couples: Arc::new(couples),
            hasher: Arc::new(hasher),
            hub: Hub::new(Arc::new(messages), Arc::new(LocalBus)),
            clock: Arc::new(clock),
        },
        RoomPolicy::default(),
    )
}

#[tokio::test]
async fn joining_checks_privacy_password_and_seats() {
    // private without code
    let mut rooms = MockRoomRepository::new();
    rooms
        .expect_find()
        .returning(|_| Ok(Some(room(Visibility::Private, false))));
    rooms.expect_membership().returning(|_, _| Ok(None));
    rooms.expect_add_member().never();
    let svc = service(rooms, MockPasswordHasher::new());
    let err = svc
        .join(&who(), "room-1", JoinRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "private_room");

    // wrong password
    let mut rooms = MockRoomRepository::new();
    rooms
        .expect_find()
        .returning(|_| Ok(Some(room(Visibility::Public, true))));
    rooms.expect_membership().returning(|_, _| Ok(None));
    let mut hasher = MockPasswordHasher::new();
    hasher.expect_verify().returning(|p, _| Ok(p == "right"));
    let svc = service(rooms, hasher);
    let wrong = JoinRequest {
        password: Some("wrong".into()),
        invite_code: None,
    };
    assert_eq!(
        svc.join(&who(), "room-1", wrong).await.unwrap_err().code(),
        "wrong_password"
    );

    // full
    let mut rooms = MockRoomRepository::new();
    rooms
        .expect_find()
        .returning(|_| Ok(Some(room(Visibility::Public, false))));
    rooms.expect_membership().returning(|_, _| Ok(None));
    rooms
        .expect_add_member()
        .returning(|_, _, _, _| Ok(JoinOutcome::Full));
    let svc = service(rooms, MockPasswordHasher::new());
    let err = svc
        .join(&who(), "room-1", JoinRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "room_full");
}

#[tokio::test]
async fn banned_users_stay_out_even_with_auto_join() {
    let mut rooms = MockRoomRepository::new();
    rooms
        .expect_find()
        .returning(|_| Ok(Some(room(Visibility::Public, false))));
    rooms
        .expect_membership()
        .returning(|r, u| Ok(Some(membership(r, u, Role::Member, MemberState::Banned))));
    rooms.expect_add_member().never();
    let svc = service(rooms, MockPasswordHasher::new());
    let err = svc
        .enter(&who(), "room-1", Entry::AutoJoin)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "banned");
}

#[tokio::test]
async fn banning_an_unknown_user_is_not_found() {
    let mut rooms = MockRoomRepository::new();
    rooms.expect_membership().returning(|r, u| {
        Ok((u == who().user_id).then(|| membership(r, u, Role::Owner, MemberState::Active)))
    });
    rooms
        .expect_find()
        .returning(|_| Ok(Some(room(Visibility::Public, false))));
    rooms.expect_ban_outsider().never();
    let mut users = MockUserRepository::new();
    users.expect_find_by_id().returning(|_| Ok(None));
    let svc = service_with_users(rooms, MockPasswordHasher::new(), users);
    let err = svc
        .kick(&who(), "room-1", Uuid::from_u128(99), true)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "user_not_found");
}

#[tokio::test]
async fn nobody_rules_a_direct_room_whatever_role_is_stored() {
    let mut rooms = MockRoomRepository::new();
    rooms
        .expect_membership()
        .returning(|r, u| Ok(Some(membership(r, u, Role::Owner, MemberState::Active))));
    rooms.expect_find().returning(|_| {
        Ok(Some(Room {
            kind: RoomKind::Direct,
            ..room(Visibility::Private, false)
        }))
    });
    rooms.expect_remove_member().never();
    rooms.expect_update_settings().never();
    let svc = service(rooms, MockPasswordHasher::new());
    let err = svc
        .kick(&who(), "room-1", Uuid::from_u128(99), true)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "direct_room");
    let err = svc
        .update_settings(&who(), "room-1", RoomSettings::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "direct_room");
    assert!(!svc.acts_as_admin("room-1", Role::Owner).await.unwrap());
}

#[tokio::test]
async fn room_creation_past_the_hourly_limit_is_refused_before_storing() {
    let mut rooms = MockRoomRepository::new();
    rooms.expect_create().times(2).returning(|r| {
        Ok(Room {
            id: r.id,
            ..room(Visibility::Public, false)
        })
    });
    let mut limits = crate::throttle::RateLimits::default();
    limits.room_create_user.max = 2;
    let limiter = crate::throttle::Limiter::new(
        Arc::new(crate::throttle::MemoryRateCounter::new(10)),
        Arc::new(crate::ports::SystemClock),
        limits,
    );
    let svc = service(rooms, MockPasswordHasher::new()).with_limiter(Arc::new(limiter));
    for _ in 0..2 {
        svc.create_group(
            &who(),
            CreateRoom {
                name: "r".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    let err = svc
        .create_group(
            &who(),
            CreateRoom {
                name: "r".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "room_create_rate_limited");
    assert!(err.retry_after_secs().is_some_and(|s| s > 3000));
}

#[tokio::test]
async fn auto_join_creates_unknown_rooms_as_public_groups() {
    let mut rooms = MockRoomRepository::new();
    rooms.expect_find().returning(|_| Ok(None));
    rooms
        .expect_create()
        .withf(|r| {
            r.id == "room-7" && r.visibility == Visibility::Public && r.kind == RoomKind::Group
        })
        .times(1)
        .returning(|r| {
            Ok(Room {
                id: r.id,
                ..room(Visibility::Public, false)
            })
        });
    let mut calls = 0;
    rooms.expect_membership().returning(move |r, u| {
        calls += 1;
        Ok(
            (r == "room-7" && calls > 2)
                .then(|| membership(r, u, Role::Owner, MemberState::Active)),
        )
    });
    rooms
        .expect_add_member()
        .returning(|_, _, _, _| Ok(JoinOutcome::AlreadyMember));
    let svc = service(rooms, MockPasswordHasher::new());
    let m = svc.enter(&who(), "room-7", Entry::AutoJoin).await.unwrap();
    assert!(m.is_active());
    let err = svc
        .enter(&who(), "bad id!", Entry::AutoJoin)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_room_id");
}

#[test]
fn invite_codes_look_random() {
    let a = invite_code();
    assert_eq!(a.len(), 12);
    assert_ne!(a, invite_code());
}

#[tokio::test]
async fn leaving_the_couple_room_is_refused_and_a_plain_direct_room_may_be_left() {
    let couple_id = Uuid::from_u128(77);
    let direct = |room_id: &str| Membership {
        room_kind: RoomKind::Direct,
        ..membership(room_id, who().user_id, Role::Member, MemberState::Active)
    };
    let mut rooms = MockRoomRepository::new();
    rooms
        .expect_membership()
        .returning(move |id, _| Ok(Some(direct(id))));
    rooms
        .expect_remove_member()
        .times(1)
        .returning(|_, _, _| Ok(true));
    rooms.expect_find().returning(|_| Ok(None));
    let mut couples = MockCoupleRepository::new();
    couples.expect_couple_of().returning(move |u| {
        Ok(Some(Couple {
            id: couple_id,
            user_a: u,
            user_b: Uuid::from_u128(2),
            created_at: Utc::now(),
        }))
    });
    let svc = service_with(
        rooms,
        MockPasswordHasher::new(),
        MockUserRepository::new(),
        couples,
    );
    let err = svc.leave(&who(), &couple_id.to_string()).await.unwrap_err();
    assert_eq!(err.code(), "couple_room");
    // Another direct room of a paired user is left as before.
    svc.leave(&who(), "dm:a:b").await.unwrap();
}

#[tokio::test]
async fn ending_a_couple_removes_both_partners_the_one_who_ended_it_first() {
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = order.clone();
    let mut rooms = MockRoomRepository::new();
    rooms
        .expect_remove_member()
        .times(2)
        .returning(move |room, user, state| {
            assert_eq!((room, state), ("c-1", MemberState::Left));
            seen.lock().unwrap().push(user);
            Ok(true)
        });
    let svc = service(rooms, MockPasswordHasher::new());
    let (by, partner) = (Uuid::from_u128(1), Uuid::from_u128(2));
    svc.end_couple("c-1", by, partner).await.unwrap();
    assert_eq!(*order.lock().unwrap(), vec![by, partner]);
}

/// Memberships by user: alice (`who()`) with `mine`, everyone else a member.
fn ranks(rooms: &mut MockRoomRepository, mine: Role) {
    rooms
        .expect_find()
        .returning(|_| Ok(Some(room(Visibility::Public, false))));
    rooms.expect_membership().returning(move |id, user| {
        let role = if user == who().user_id {
            mine
        } else {
            Role::Member
        };
        Ok(Some(membership(id, user, role, MemberState::Active)))
    });
}

#[tokio::test]
async fn only_room_admins_mute_a_lower_rank_for_a_time_to_come() {
    let target = Uuid::from_u128(2);
    let soon = Utc::now() + chrono::Duration::hours(1);
    // A plain member cannot mute.
    let mut rooms = MockRoomRepository::new();
    ranks(&mut rooms, Role::Member);
    rooms.expect_set_muted().never();
    let err = service(rooms, MockPasswordHasher::new())
        .mute(&who(), "room-1", target, Some(soon))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "insufficient_role");
    // An admin cannot mute into the past, nor themselves.
    let mut rooms = MockRoomRepository::new();
    ranks(&mut rooms, Role::Admin);
    rooms.expect_set_muted().never();
    let svc = service(rooms, MockPasswordHasher::new());
    let past = Utc::now() - chrono::Duration::seconds(1);
    let err = svc
        .mute(&who(), "room-1", target, Some(past))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_until");
    let err = svc
        .mute(&who(), "room-1", who().user_id, Some(soon))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "own_mute");
    // An admin mutes a member: stored until then.
    let mut rooms = MockRoomRepository::new();
    ranks(&mut rooms, Role::Admin);
    rooms
        .expect_set_muted()
        .withf(move |room, user, until| room == "room-1" && *user == target && *until == Some(soon))
        .times(1)
        .returning(|_, _, _| Ok(true));
    service(rooms, MockPasswordHasher::new())
        .mute(&who(), "room-1", target, Some(soon))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_muted_member_reads_but_cannot_send() {
    let mut rooms = MockRoomRepository::new();
    rooms
        .expect_find()
        .returning(|_| Ok(Some(room(Visibility::Public, false))));
    rooms.expect_membership().returning(|id, user| {
        Ok(Some(Membership {
            muted_until: Some(Utc::now() + chrono::Duration::minutes(5)),
            ..membership(id, user, Role::Member, MemberState::Active)
        }))
    });
    let svc = service(rooms, MockPasswordHasher::new());
    let err = svc
        .sender_kind(&who(), "room-1", Entry::MembersOnly)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "muted");
    assert_eq!(
        svc.member_kind(&who(), "room-1", Entry::MembersOnly)
            .await
            .unwrap(),
        RoomKind::Group,
        "reading (receipts) is still allowed"
    );
}

#[tokio::test]
async fn unbanning_someone_not_banned_says_so() {
    let mut rooms = MockRoomRepository::new();
    ranks(&mut rooms, Role::Owner);
    rooms.expect_unban().times(1).returning(|_, _| Ok(false));
    let err = service(rooms, MockPasswordHasher::new())
        .unban(&who(), "room-1", Uuid::from_u128(2))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "not_banned");
}

mod closing;
