//! Rooms and messages in the store, on SQLite and on PostgreSQL.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::Utc;
use ieum_domain::message::{HistoryQuery, MessageKind, NewMessage};
use ieum_domain::ports::{JoinOutcome, MessageRepository, RoomRepository, UserRepository};
use ieum_domain::room::{
    HistoryVisibility, MemberState, NewRoom, PinPolicy, Role, RoomKind, Visibility,
};
use ieum_domain::user::{NewUser, User};
use ieum_store::{SqlMessages, SqlRooms, SqlUsers, Store, StoreOptions, WriterOptions};
use ieum_test_support::{TestDb, both_backends};
use uuid::Uuid;

async fn store(db: &TestDb) -> Store {
    let s = Store::connect(db.url(), &StoreOptions::default())
        .await
        .unwrap();
    s.migrate().await.unwrap();
    s
}

async fn user(store: &Store, name: &str) -> User {
    SqlUsers::new(store.clone())
        .create(NewUser {
            id: Uuid::now_v7(),
            username: name.into(),
            display_name: name.into(),
            password_hash: "x".into(),
            created_at: Utc::now(),
        })
        .await
        .unwrap()
}

fn new_room(id: &str, owner: Uuid, limit: u32) -> NewRoom {
    NewRoom {
        id: id.into(),
        kind: RoomKind::Group,
        name: format!("방 {id}"),
        description: None,
        image_url: None,
        visibility: Visibility::Public,
        password_hash: None,
        member_limit: limit,
        history_visibility: HistoryVisibility::All,
        pin_policy: PinPolicy::Members,
        created_by: owner,
        creator_role: Role::Owner,
        created_at: Utc::now(),
    }
}

fn msg(room: &str, sender: &User, content: &str, cmid: Option<&str>) -> NewMessage {
    NewMessage {
        parent_id: None,
        expires_at: None,
        mentions: Vec::new(),
        id: Uuid::now_v7(),
        room_id: room.into(),
        sender_id: sender.id,
        sender_username: sender.username.clone(),
        sender_name: sender.display_name.clone(),
        sender_image: None,
        kind: MessageKind::Text,
        content: content.into(),
        image_url: None,
        client_msg_id: cmid.map(str::to_owned),
        created_at: Utc::now(),
    }
}

fn writer_options(db: &TestDb) -> WriterOptions {
    WriterOptions {
        writers: if db.is_postgres() { 4 } else { 1 },
        ..WriterOptions::default()
    }
}

async fn seats_are_limited_and_freed(db: TestDb) {
    let store = store(&db).await;
    let rooms = SqlRooms::new(store.clone());
    let (a, b, c) = (
        user(&store, "alice").await,
        user(&store, "bob").await,
        user(&store, "carol").await,
    );
    let room = rooms.create(new_room("room-1", a.id, 2)).await.unwrap();
    assert_eq!(room.member_count, 1);
    assert_eq!(
        rooms
            .create(new_room("room-1", a.id, 2))
            .await
            .unwrap_err()
            .code(),
        "room_exists"
    );
    let now = Utc::now();
    assert_eq!(
        rooms
            .add_member("room-1", a.id, Role::Member, now)
            .await
            .unwrap(),
        JoinOutcome::AlreadyMember
    );
    assert_eq!(
        rooms
            .add_member("room-1", b.id, Role::Member, now)
            .await
            .unwrap(),
        JoinOutcome::Joined
    );
    assert_eq!(
        rooms
            .add_member("room-1", c.id, Role::Member, now)
            .await
            .unwrap(),
        JoinOutcome::Full
    );
    assert!(
        rooms
            .remove_member("room-1", b.id, MemberState::Left)
            .await
            .unwrap()
    );
    assert!(
        !rooms
            .remove_member("room-1", b.id, MemberState::Left)
            .await
            .unwrap()
    );
    assert_eq!(
        rooms
            .add_member("room-1", c.id, Role::Member, now)
            .await
            .unwrap(),
        JoinOutcome::Joined
    );
    assert_eq!(rooms.find("room-1").await.unwrap().unwrap().member_count, 2);
    assert!(
        rooms
            .remove_member("room-1", c.id, MemberState::Banned)
            .await
            .unwrap()
    );
    assert_eq!(
        rooms
            .add_member("room-1", c.id, Role::Member, now)
            .await
            .unwrap(),
        JoinOutcome::Banned
    );
    let members = rooms.members("room-1").await.unwrap();
    assert_eq!(
        members
            .iter()
            .map(|m| m.username.as_str())
            .collect::<Vec<_>>(),
        ["alice"]
    );
    assert_eq!(members[0].role, Role::Owner);
    rooms
        .set_invite_code("room-1", Some("ABC".into()))
        .await
        .unwrap();
    assert_eq!(
        rooms.find_by_invite_code("ABC").await.unwrap().unwrap().id,
        "room-1"
    );
    store.close().await;
}

async fn seqs_are_gapless_under_concurrent_sends(db: TestDb) {
    let store = store(&db).await;
    let rooms = SqlRooms::new(store.clone());
    let messages = Arc::new(SqlMessages::new(store.clone(), writer_options(&db)));
    let a = user(&store, "alice").await;
    for r in ["r1", "r2", "r3"] {
        rooms.create(new_room(r, a.id, 50)).await.unwrap();
    }
    let mut tasks = Vec::new();
    for i in 0..150 {
        let messages = messages.clone();
        let m = msg(["r1", "r2", "r3"][i % 3], &a, &format!("안녕 {i} 👋"), None);
        tasks.push(tokio::spawn(
            async move { messages.append(m).await.unwrap() },
        ));
    }
    for t in tasks {
        assert!(!t.await.unwrap().duplicate);
    }
    for r in ["r1", "r2", "r3"] {
        let page = messages
            .page(
                r,
                HistoryQuery {
                    limit: 500,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let seqs: Vec<i64> = page.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, (1..=50).collect::<Vec<_>>(), "room {r}");
        assert_eq!(messages.last_seq(r).await.unwrap(), 50);
    }
    let err = messages
        .append(msg("nope", &a, "x", None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "room_not_found");
    store.close().await;
}

async fn client_ids_dedupe_even_when_racing(db: TestDb) {
    let store = store(&db).await;
    let rooms = SqlRooms::new(store.clone());
    let messages = Arc::new(SqlMessages::new(store.clone(), writer_options(&db)));
    let (a, b) = (user(&store, "alice").await, user(&store, "bob").await);
    rooms.create(new_room("r", a.id, 50)).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let messages = messages.clone();
        let m = msg("r", &a, "once", Some("tmp-1"));
        tasks.push(tokio::spawn(
            async move { messages.append(m).await.unwrap() },
        ));
    }
    let mut ids = HashSet::new();
    let mut fresh = 0;
    for t in tasks {
        let r = t.await.unwrap();
        ids.insert(r.message.id);
        fresh += usize::from(!r.duplicate);
    }
    assert_eq!((ids.len(), fresh), (1, 1));
    // Later retry: the stored one again.
    let again = messages
        .append(msg("r", &a, "once", Some("tmp-1")))
        .await
        .unwrap();
    assert!(again.duplicate);
    assert!(ids.contains(&again.message.id));
    // Another sender may use the same client id.
    let other = messages
        .append(msg("r", &b, "mine", Some("tmp-1")))
        .await
        .unwrap();
    assert!(!other.duplicate);
    assert_eq!(messages.last_seq("r").await.unwrap(), 2);
    // A retry racing new sends (likely one batch): the new ones are stored with
    // gapless seqs, the retry answers with the stored message.
    let mut tasks = Vec::new();
    for i in 0..10 {
        let messages = messages.clone();
        let cmid = if i == 5 {
            "tmp-1".to_string()
        } else {
            format!("new-{i}")
        };
        let m = msg("r", &a, "burst", Some(&cmid));
        tasks.push(tokio::spawn(
            async move { messages.append(m).await.unwrap() },
        ));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        let r = t.await.unwrap();
        if r.message.client_msg_id.as_deref() == Some("tmp-1") {
            assert!(r.duplicate && ids.contains(&r.message.id));
        } else {
            assert!(!r.duplicate);
            seqs.push(r.message.seq);
        }
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (3..=11).collect::<Vec<_>>());
    assert_eq!(messages.last_seq("r").await.unwrap(), 11);
    store.close().await;
}

async fn history_pages_and_room_lists(db: TestDb) {
    let store = store(&db).await;
    let rooms = SqlRooms::new(store.clone());
    let messages = SqlMessages::new(store.clone(), writer_options(&db));
    let (a, b) = (user(&store, "alice").await, user(&store, "bob").await);
    rooms.create(new_room("quiet", a.id, 50)).await.unwrap();
    rooms.create(new_room("busy", a.id, 50)).await.unwrap();
    rooms
        .add_member("busy", b.id, Role::Member, Utc::now())
        .await
        .unwrap();
    for i in 1..=10 {
        let sender = if i % 2 == 0 { &a } else { &b };
        messages
            .append(msg("busy", sender, &format!("m{i}"), None))
            .await
            .unwrap();
    }
    let q = |before, after, limit| HistoryQuery {
        before,
        after,
        limit,
        skip_system: false,
    };
    let seqs = |v: Vec<ieum_domain::message::Message>| v.iter().map(|m| m.seq).collect::<Vec<_>>();
    assert_eq!(
        seqs(messages.page("busy", q(None, None, 3)).await.unwrap()),
        [8, 9, 10]
    );
    assert_eq!(
        seqs(messages.page("busy", q(Some(8), None, 3)).await.unwrap()),
        [5, 6, 7]
    );
    assert_eq!(
        seqs(messages.page("busy", q(None, Some(7), 10)).await.unwrap()),
        [8, 9, 10]
    );
    assert_eq!(
        seqs(
            messages
                .page("busy", q(Some(5), Some(1), 10))
                .await
                .unwrap()
        ),
        [2, 3, 4]
    );

    let list = rooms.rooms_of(a.id).await.unwrap();
    assert_eq!(
        list.iter().map(|r| r.room.id.as_str()).collect::<Vec<_>>(),
        ["busy", "quiet"]
    );
    assert_eq!(list[0].unread_count, 5, "bob's five messages");
    // A deleted (or expired) message is not unread any more.
    let m1 = messages.page("busy", q(Some(2), None, 1)).await.unwrap();
    messages.tombstone(m1[0].id, Utc::now()).await.unwrap();
    let list = rooms.rooms_of(a.id).await.unwrap();
    assert_eq!(list[0].unread_count, 4, "m1 was deleted");
    assert_eq!(list[0].last_message.as_ref().unwrap().content, "m10");
    assert!(list[1].last_message.is_none());
    assert_eq!(rooms.mark_read("busy", a.id, 9).await.unwrap(), 9);
    assert_eq!(
        rooms.mark_read("busy", a.id, 3).await.unwrap(),
        9,
        "never backwards"
    );
    assert_eq!(
        rooms.rooms_of(a.id).await.unwrap()[0].unread_count,
        0,
        "m10 is alice's own"
    );
    rooms.set_favorite("quiet", a.id, true).await.unwrap();
    let list = rooms.rooms_of(a.id).await.unwrap();
    assert_eq!(list[0].room.id, "quiet", "favorites first");
    assert!(list[0].favorite);
    store.close().await;
}

/// A ban of someone outside the room never makes them a member, even for a
/// moment, and needs no seat; an active member is not an outsider.
async fn outsiders_are_banned_without_a_seat(db: TestDb) {
    let store = store(&db).await;
    let rooms = SqlRooms::new(store.clone());
    let (a, b, c) = (
        user(&store, "alice").await,
        user(&store, "bob").await,
        user(&store, "carol").await,
    );
    // A full room: the owner holds its only seat.
    rooms.create(new_room("full", a.id, 1)).await.unwrap();
    let now = Utc::now();
    assert!(rooms.ban_outsider("full", b.id, now).await.unwrap());
    let m = rooms.membership("full", b.id).await.unwrap().unwrap();
    assert_eq!(m.state, MemberState::Banned);
    assert_eq!(rooms.find("full").await.unwrap().unwrap().member_count, 1);
    assert_eq!(
        rooms
            .add_member("full", b.id, Role::Member, now)
            .await
            .unwrap(),
        JoinOutcome::Banned
    );
    // Someone who left before is banned the same way.
    rooms.create(new_room("open", a.id, 5)).await.unwrap();
    rooms
        .add_member("open", c.id, Role::Member, now)
        .await
        .unwrap();
    assert!(
        rooms
            .remove_member("open", c.id, MemberState::Left)
            .await
            .unwrap()
    );
    assert!(rooms.ban_outsider("open", c.id, now).await.unwrap());
    assert_eq!(
        rooms.membership("open", c.id).await.unwrap().unwrap().state,
        MemberState::Banned
    );
    // An active member is not an outsider: nothing changes.
    assert!(!rooms.ban_outsider("open", a.id, now).await.unwrap());
    assert!(
        rooms
            .membership("open", a.id)
            .await
            .unwrap()
            .unwrap()
            .is_active()
    );
    store.close().await;
}

/// The couple's room is the domain's `NewRoom::direct`, every column of it,
/// with both partners as plain members (nobody rules a 1:1 room).
async fn a_couple_room_is_made_with_every_room_column(db: TestDb) {
    use ieum_domain::ports::{Couple, CoupleRepository};
    let store = store(&db).await;
    let (a, b) = (user(&store, "alice").await, user(&store, "bob").await);
    let couple = Couple {
        id: Uuid::now_v7(),
        user_a: a.id,
        user_b: b.id,
        created_at: Utc::now(),
    };
    let room = NewRoom {
        history_visibility: HistoryVisibility::UntilLeave,
        ..NewRoom::direct(couple.id.to_string(), "a ♥ b".into(), a.id, Utc::now())
    };
    ieum_store::SqlSocial::new(store.clone())
        .create(couple.clone(), room)
        .await
        .unwrap();
    let rooms = SqlRooms::new(store.clone());
    let made = rooms.find(&couple.id.to_string()).await.unwrap().unwrap();
    assert_eq!(
        (
            made.kind,
            made.visibility,
            made.member_limit,
            made.member_count
        ),
        (RoomKind::Direct, Visibility::Private, 2, 2)
    );
    assert_eq!(made.history_visibility, HistoryVisibility::UntilLeave);
    assert_eq!(made.pin_policy, PinPolicy::Members);
    for u in [a.id, b.id] {
        let m = rooms.membership(&made.id, u).await.unwrap().unwrap();
        assert_eq!((m.role, m.state), (Role::Member, MemberState::Active));
    }
}

both_backends!(
    a_couple_room_is_made_with_every_room_column,
    outsiders_are_banned_without_a_seat,
    seats_are_limited_and_freed,
    seqs_are_gapless_under_concurrent_sends,
    client_ids_dedupe_even_when_racing,
    history_pages_and_room_lists,
    write_path_migration_rolls_back_and_forward,
);

/// PostgreSQL: new messages' trigram entries wait in the index's pending list
/// only until the store's flusher merges them (no send pays for the merge),
/// and search finds them before and after.
#[tokio::test]
async fn search_index_pending_entries_are_merged_in_the_background() {
    use sea_orm::ConnectionTrait;
    let db = TestDb::postgres().await;
    let store = store(&db).await;
    let conn = store.connection();
    conn.execute_unprepared("CREATE EXTENSION IF NOT EXISTS pgstattuple")
        .await
        .unwrap();
    let pending = || async {
        let row = conn
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                "SELECT pending_tuples::bigint AS n FROM pgstatginindex('idx_messages_content_trgm')",
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<i64>("", "n").unwrap()
    };
    let limit = conn
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT array_to_string(reloptions, ',') AS o FROM pg_class \
             WHERE relname = 'idx_messages_content_trgm'",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<String>("", "o")
        .unwrap();
    assert_eq!(limit, "gin_pending_list_limit=16384");
    let rooms = SqlRooms::new(store.clone());
    let a = user(&store, "alice").await;
    rooms.create(new_room("r", a.id, 50)).await.unwrap();
    // Without the flusher the entries stay pending: the check below can fail.
    let idle = SqlMessages::new(
        store.clone(),
        WriterOptions {
            search_flush_ms: 0,
            ..writer_options(&db)
        },
    );
    for i in 0..10 {
        idle.append(msg("r", &a, &format!("답장 기다림 {i}"), None))
            .await
            .unwrap();
    }
    assert!(pending().await > 0, "nothing pending to merge");
    drop(idle);
    let messages = SqlMessages::new(
        store.clone(),
        WriterOptions {
            search_flush_ms: 50,
            ..writer_options(&db)
        },
    );
    messages
        .append(msg("r", &a, "비밀 답장", None))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while pending().await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the flusher did not merge the pending entries"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let found = messages
        .search(ieum_domain::message::SearchQuery {
            user_id: a.id,
            text: "답장".into(),
            room_id: None,
            sender_id: None,
            from: None,
            to: None,
            before: None,
            limit: 50,
            now: Utc::now(),
        })
        .await
        .unwrap();
    assert_eq!(found.len(), 11);
    drop(messages);
    store.close().await;
}

/// The write-path migration rolls back and forward on both backends: the
/// indexes of columns plain messages leave empty are partial after it and
/// full before it.
async fn write_path_migration_rolls_back_and_forward(db: TestDb) {
    use ieum_migration::{Migrator, MigratorTrait};
    use sea_orm::ConnectionTrait;
    let store = store(&db).await;
    let conn = store.connection();
    let definitions = || async {
        let sql = if db.is_postgres() {
            "SELECT indexdef AS d FROM pg_indexes WHERE indexname IN \
             ('idx_messages_parent', 'idx_messages_expires', 'uq_messages_client_id') ORDER BY indexname"
        } else {
            "SELECT sql AS d FROM sqlite_master WHERE name IN \
             ('idx_messages_parent', 'idx_messages_expires', 'uq_messages_client_id') ORDER BY name"
        };
        let rows = conn
            .query_all_raw(sea_orm::Statement::from_string(
                conn.get_database_backend(),
                sql,
            ))
            .await
            .unwrap();
        rows.iter()
            .map(|r| r.try_get::<String>("", "d").unwrap())
            .collect::<Vec<_>>()
    };
    let partial = |defs: &[String]| defs.iter().filter(|d| d.contains("WHERE")).count();
    let after = definitions().await;
    assert_eq!((after.len(), partial(&after)), (3, 3), "{after:?}");
    // Down to before the write-path migration (the later ones first).
    let later = Migrator::migrations().len() - 5;
    Migrator::down(conn, Some(later as u32 + 1)).await.unwrap();
    let before = definitions().await;
    assert_eq!((before.len(), partial(&before)), (3, 0), "{before:?}");
    Migrator::up(conn, None).await.unwrap();
    assert_eq!(partial(&definitions().await), 3);
    store.close().await;
}
