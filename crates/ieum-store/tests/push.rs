//! The push adapter's SQL, run on SQLite and on PostgreSQL: devices moving
//! between users, the outbox's coalescing and claims, proofs of delivery.

use chrono::Utc;
use ieum_domain::ports::{DeviceRepository, PushRepository};
use ieum_domain::push::{Device, Mute, OutboxEntry, Planned, Platform, PushPrefs};
use ieum_store::{SqlDevices, SqlPush, Store, StoreOptions};
use ieum_test_support::{TestDb, both_backends};
use uuid::Uuid;

async fn store(db: &TestDb) -> Store {
    let store = Store::connect(db.url(), &StoreOptions::default())
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    store
}

fn device(user_id: Uuid, token: &str, family_id: Option<Uuid>) -> Device {
    Device {
        id: Uuid::now_v7(),
        user_id,
        platform: Platform::Android,
        token: token.into(),
        app_version: Some("1.0".into()),
        locale: Some("ko-KR".into()),
        data_only: false,
        family_id,
        created_at: Utc::now(),
    }
}

fn planned(device: &Device, seq: i64, at_ms: i64, due_ms: i64) -> Planned {
    Planned {
        device_id: device.id,
        user_id: device.user_id,
        room_id: "room-1".into(),
        message_id: Uuid::now_v7(),
        seq,
        first_seq: seq,
        count: 1,
        mentioned: false,
        at_ms,
        due_ms,
    }
}

async fn claim(push: &SqlPush, now_ms: i64) -> Vec<OutboxEntry> {
    push.claim_due(now_ms, Uuid::new_v4(), now_ms + 30_000, 100)
        .await
        .unwrap()
}

async fn a_token_moves_to_its_new_user_and_logout_removes_a_family(db: TestDb) {
    let store = store(&db).await;
    let devices = SqlDevices::new(store.clone());
    let (bob, dave, family) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let first = devices
        .register(&device(bob, "phone", Some(family)))
        .await
        .unwrap();
    let again = devices
        .register(&device(dave, "phone", None))
        .await
        .unwrap();
    assert_eq!(again.id, first.id, "a token keeps its device id");
    assert_eq!(again.user_id, dave);
    assert!(devices.of_users(&[bob]).await.unwrap().is_empty());
    devices
        .register(&device(bob, "tablet", Some(family)))
        .await
        .unwrap();
    devices
        .register(&device(bob, "laptop", None))
        .await
        .unwrap();
    assert_eq!(devices.remove_family(family).await.unwrap(), 1);
    let left = devices.of_users(&[bob, dave]).await.unwrap();
    let tokens: Vec<_> = left.iter().map(|d| d.token.as_str()).collect();
    assert_eq!(tokens, ["phone", "laptop"]);
    assert!(
        !devices.remove(bob, first.id).await.unwrap(),
        "not bob's any more"
    );
    assert!(devices.remove_token("phone").await.unwrap());
    store.close().await;
}

async fn pending_entries_coalesce_and_are_claimed_once(db: TestDb) {
    let store = store(&db).await;
    let devices = SqlDevices::new(store.clone());
    let push = SqlPush::new(store.clone());
    let phone = devices
        .register(&device(Uuid::now_v7(), "phone", None))
        .await
        .unwrap();
    push.enqueue(&planned(&phone, 1, 1_000, 4_000))
        .await
        .unwrap();
    push.enqueue(&Planned {
        mentioned: true,
        ..planned(&phone, 2, 2_000, 5_000)
    })
    .await
    .unwrap();
    push.enqueue(&planned(&phone, 3, 3_000, 6_000))
        .await
        .unwrap();
    assert!(
        claim(&push, 3_999).await.is_empty(),
        "due at the first message's time"
    );
    let entries = claim(&push, 4_000).await;
    assert_eq!(entries.len(), 1);
    let entry = &entries[0];
    assert_eq!((entry.seq, entry.first_seq, entry.count), (3, 1, 3));
    assert!(entry.mentioned);
    assert_eq!(entry.latest_ms, 3_000);
    assert!(claim(&push, 4_000).await.is_empty(), "claimed once");
    // A message while the push is out keeps the entry pending.
    push.enqueue(&planned(&phone, 4, 4_100, 7_100))
        .await
        .unwrap();
    push.sent(entry, 14_000).await.unwrap();
    assert!(
        claim(&push, 13_999).await.is_empty(),
        "quiet until the window ends"
    );
    let next = claim(&push, 14_000).await;
    assert_eq!(next.len(), 1);
    assert_eq!(
        (
            next[0].seq,
            next[0].first_seq,
            next[0].count,
            next[0].sent_seq
        ),
        (4, 4, 1, 3)
    );
    push.sent(&next[0], 24_000).await.unwrap();
    assert!(claim(&push, 100_000).await.is_empty(), "idle");
    // After the window, a new message is due a grace period after it; in
    // the window, when the window ends.
    push.enqueue(&planned(&phone, 5, 20_000, 23_000))
        .await
        .unwrap();
    assert!(claim(&push, 23_999).await.is_empty());
    assert_eq!(claim(&push, 24_000).await.len(), 1);
    store.close().await;
}

async fn a_stale_claim_writes_nothing(db: TestDb) {
    let store = store(&db).await;
    let devices = SqlDevices::new(store.clone());
    let push = SqlPush::new(store.clone());
    let phone = devices
        .register(&device(Uuid::now_v7(), "phone", None))
        .await
        .unwrap();
    push.enqueue(&planned(&phone, 1, 0, 0)).await.unwrap();
    let mut stale = push
        .claim_due(0, Uuid::new_v4(), 10, 10)
        .await
        .unwrap()
        .remove(0);
    // The lease lapsed; another worker takes the entry.
    let taken = claim(&push, 11).await;
    assert_eq!(taken.len(), 1);
    stale.claim = Uuid::new_v4();
    push.sent(&stale, 1_000_000).await.unwrap();
    push.retry(&taken[0], 50, 1, 1).await.unwrap();
    let again = claim(&push, 50).await;
    assert_eq!(again.len(), 1, "the stale worker's 'sent' did not count");
    assert_eq!(again[0].attempts, 1);
    store.close().await;
}

async fn proofs_keep_the_highest_seq_and_need_a_device(db: TestDb) {
    let store = store(&db).await;
    let devices = SqlDevices::new(store.clone());
    let push = SqlPush::new(store.clone());
    let (bob, carol) = (Uuid::now_v7(), Uuid::now_v7());
    let phone = devices.register(&device(bob, "phone", None)).await.unwrap();
    push.record_delivered(bob, Some(phone.id), "room-1", 5)
        .await
        .unwrap();
    push.record_delivered(bob, Some(phone.id), "room-1", 3)
        .await
        .unwrap();
    assert_eq!(push.delivered(bob, phone.id, "room-1").await.unwrap(), 5);
    push.record_delivered(bob, None, "room-1", 9).await.unwrap();
    assert_eq!(
        push.delivered(bob, phone.id, "room-1").await.unwrap(),
        9,
        "a web connection counts for all"
    );
    assert_eq!(push.delivered(bob, phone.id, "room-2").await.unwrap(), 0);
    push.record_delivered(carol, None, "room-1", 9)
        .await
        .unwrap();
    assert_eq!(
        push.delivered(carol, Uuid::now_v7(), "room-1")
            .await
            .unwrap(),
        0,
        "no device, nothing written"
    );
    store.close().await;
}

async fn mutes_and_preferences_round_trip(db: TestDb) {
    let store = store(&db).await;
    let push = SqlPush::new(store.clone());
    let bob = Uuid::now_v7();
    assert_eq!(push.prefs(bob).await.unwrap(), PushPrefs::default());
    let prefs = PushPrefs {
        previews: false,
        mentions_when_muted: false,
    };
    push.set_prefs(bob, prefs).await.unwrap();
    assert_eq!(push.prefs(bob).await.unwrap(), prefs);
    let until = chrono::DateTime::from_timestamp_millis(4_102_444_800_000).unwrap();
    push.mute(bob, "room-1", Mute { until: Some(until) })
        .await
        .unwrap();
    push.mute(bob, "room-2", Mute { until: None })
        .await
        .unwrap();
    assert_eq!(
        push.mute_of(bob, "room-1").await.unwrap(),
        Some(Mute { until: Some(until) })
    );
    assert_eq!(
        push.mutes_in("room-2").await.unwrap(),
        vec![(bob, Mute { until: None })]
    );
    assert!(push.unmute(bob, "room-2").await.unwrap());
    assert!(!push.unmute(bob, "room-2").await.unwrap());
    store.close().await;
}

both_backends!(
    a_token_moves_to_its_new_user_and_logout_removes_a_family,
    pending_entries_coalesce_and_are_claimed_once,
    a_stale_claim_writes_nothing,
    proofs_keep_the_highest_seq_and_need_a_device,
    mutes_and_preferences_round_trip,
);
