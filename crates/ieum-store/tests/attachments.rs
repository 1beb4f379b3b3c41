//! Attachments' records in the store, on SQLite and on PostgreSQL.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use ieum_domain::attachment::{
    Attachment, AttachmentState, ContentType, Purpose, ScanOutcome, VerifiedUpload,
};
use ieum_domain::ports::{AttachmentRepository, ScanVerdict};
use ieum_store::{SqlAttachments, Store, StoreOptions};
use ieum_test_support::{TestDb, both_backends};
use uuid::Uuid;

async fn store(db: &TestDb) -> Store {
    let store = Store::connect(db.url(), &StoreOptions::default())
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    store
}

/// Whole microseconds: what PostgreSQL keeps of a timestamp.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// A pending upload of `size` bytes by `owner`, created at `created_at`.
fn pending(owner: Uuid, size: u64, created_at: DateTime<Utc>) -> Attachment {
    Attachment {
        id: Uuid::now_v7(),
        owner,
        room_id: "room-1".into(),
        purpose: Purpose::Message,
        file_name: "바다 사진.png".into(),
        size,
        declared_type: "image/png".into(),
        detected_type: None,
        sha256: None,
        width: None,
        height: None,
        state: AttachmentState::Pending,
        scan: ScanOutcome::NotScanned,
        message_id: None,
        created_at,
        expires_at: None,
    }
}

fn in_state(state: AttachmentState, created_at: DateTime<Utc>) -> Attachment {
    Attachment {
        state,
        ..pending(Uuid::now_v7(), 10, created_at)
    }
}

fn verified_png() -> VerifiedUpload {
    VerifiedUpload {
        size: 2_048,
        detected_type: ContentType::Png,
        sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        width: Some(4_032),
        height: Some(3_024),
    }
}

async fn insert_all(repo: &SqlAttachments, attachments: &[Attachment]) {
    for attachment in attachments {
        repo.insert(attachment).await.unwrap();
    }
}

fn ids(attachments: &[Attachment]) -> Vec<Uuid> {
    attachments.iter().map(|a| a.id).collect()
}

async fn an_inserted_attachment_is_found_as_it_was(db: TestDb) {
    let store = store(&db).await;
    let repo = SqlAttachments::new(store.clone());
    let plain = pending(Uuid::now_v7(), 1_024, now());
    let full = Attachment {
        detected_type: Some(ContentType::Jpeg),
        sha256: Some("ab".repeat(32)),
        width: Some(u32::MAX),
        height: Some(1),
        state: AttachmentState::Infected,
        scan: ScanOutcome::Infected {
            signature: "Eicar-Test-Signature".into(),
        },
        message_id: Some(Uuid::now_v7()),
        expires_at: Some(now() + Duration::days(30)),
        size: u64::try_from(i64::MAX).unwrap(),
        purpose: Purpose::RoomImage,
        ..pending(Uuid::now_v7(), 0, now())
    };
    insert_all(&repo, &[plain.clone(), full.clone()]).await;

    assert_eq!(repo.find(plain.id).await.unwrap(), Some(plain));
    assert_eq!(repo.find(full.id).await.unwrap(), Some(full));
    assert_eq!(repo.find(Uuid::now_v7()).await.unwrap(), None);
    store.close().await;
}

async fn a_size_beyond_the_column_is_refused_not_wrapped(db: TestDb) {
    let store = store(&db).await;
    let repo = SqlAttachments::new(store.clone());
    let huge = pending(Uuid::now_v7(), u64::MAX, now());
    assert!(matches!(
        repo.insert(&huge).await,
        Err(ieum_domain::DomainError::Internal(_))
    ));
    assert_eq!(repo.find(huge.id).await.unwrap(), None);
    store.close().await;
}

async fn set_state_writes_the_move_and_what_was_learned(db: TestDb) {
    let store = store(&db).await;
    let repo = SqlAttachments::new(store.clone());
    let mut attachment = pending(Uuid::now_v7(), 4_096, now());
    repo.insert(&attachment).await.unwrap();

    attachment.verified(verified_png()).unwrap();
    assert!(
        repo.set_state(&attachment, AttachmentState::Pending)
            .await
            .unwrap()
    );
    let stored = repo.find(attachment.id).await.unwrap().unwrap();
    assert_eq!(stored, attachment);
    assert_eq!(stored.state, AttachmentState::Scanning);
    assert_eq!(stored.size, 2_048);
    assert_eq!((stored.width, stored.height), (Some(4_032), Some(3_024)));

    attachment
        .scanned(ScanVerdict::Infected {
            signature: "Win.Test.EICAR_HDB-1".into(),
        })
        .unwrap();
    assert!(
        repo.set_state(&attachment, AttachmentState::Scanning)
            .await
            .unwrap()
    );
    assert_eq!(repo.find(attachment.id).await.unwrap(), Some(attachment));
    store.close().await;
}

async fn set_state_leaves_the_rest_of_the_row_alone(db: TestDb) {
    let store = store(&db).await;
    let repo = SqlAttachments::new(store.clone());
    let stored = Attachment {
        state: AttachmentState::Clean,
        scan: ScanOutcome::Skipped,
        message_id: Some(Uuid::now_v7()),
        expires_at: Some(now() + Duration::hours(1)),
        ..pending(Uuid::now_v7(), 10, now())
    };
    repo.insert(&stored).await.unwrap();
    let mut changed = Attachment {
        owner: Uuid::now_v7(),
        room_id: "elsewhere".into(),
        file_name: "other".into(),
        declared_type: "text/plain".into(),
        message_id: None,
        expires_at: None,
        created_at: now() - Duration::days(3),
        ..stored.clone()
    };
    changed.expire().unwrap();
    assert!(
        repo.set_state(&changed, AttachmentState::Clean)
            .await
            .unwrap()
    );
    assert_eq!(
        repo.find(stored.id).await.unwrap(),
        Some(Attachment {
            state: AttachmentState::Expired,
            ..stored
        })
    );
    store.close().await;
}

async fn a_compare_and_set_from_a_stale_state_writes_nothing(db: TestDb) {
    let store = store(&db).await;
    let repo = SqlAttachments::new(store.clone());
    let mut scanning = pending(Uuid::now_v7(), 10, now());
    scanning.verified(verified_png()).unwrap();
    repo.insert(&scanning).await.unwrap();

    let mut first = scanning.clone();
    first.scanned(ScanVerdict::Clean).unwrap();
    let mut second = scanning.clone();
    second
        .scanned(ScanVerdict::Infected {
            signature: "late".into(),
        })
        .unwrap();
    assert!(
        repo.set_state(&first, AttachmentState::Scanning)
            .await
            .unwrap()
    );
    assert!(
        !repo
            .set_state(&second, AttachmentState::Scanning)
            .await
            .unwrap()
    );
    assert_eq!(repo.find(scanning.id).await.unwrap(), Some(first));

    let unknown = pending(Uuid::now_v7(), 10, now());
    assert!(
        !repo
            .set_state(&unknown, AttachmentState::Pending)
            .await
            .unwrap()
    );
    assert_eq!(repo.find(unknown.id).await.unwrap(), None);
    store.close().await;
}

async fn of_two_racing_compare_and_sets_exactly_one_wins(db: TestDb) {
    let store = store(&db).await;
    let repo = SqlAttachments::new(store.clone());
    for _ in 0..20 {
        let mut scanning = pending(Uuid::now_v7(), 10, now());
        scanning.verified(verified_png()).unwrap();
        repo.insert(&scanning).await.unwrap();
        // Two nodes' jobs, one finding it clean and one expiring it.
        let mut clean = scanning.clone();
        clean.scanned(ScanVerdict::Clean).unwrap();
        let mut expired = scanning.clone();
        expired.expire().unwrap();

        let racers = [clean.clone(), expired.clone()].map(|attachment| {
            let repo = repo.clone();
            tokio::spawn(async move {
                repo.set_state(&attachment, AttachmentState::Scanning)
                    .await
                    .unwrap()
            })
        });
        let [clean_won, expired_won] = racers;
        let (clean_won, expired_won) = (clean_won.await.unwrap(), expired_won.await.unwrap());
        assert!(clean_won != expired_won, "exactly one must win");
        let winner = if clean_won { clean } else { expired };
        assert_eq!(repo.find(scanning.id).await.unwrap(), Some(winner));
    }
    store.close().await;
}

async fn an_attachment_goes_into_one_message_only(db: TestDb) {
    let store = store(&db).await;
    let repo = SqlAttachments::new(store.clone());
    let attachment = Attachment {
        state: AttachmentState::Scanning,
        ..pending(Uuid::now_v7(), 10, now())
    };
    repo.insert(&attachment).await.unwrap();
    let (first, second) = (Uuid::now_v7(), Uuid::now_v7());

    assert!(repo.mark_attached(attachment.id, first).await.unwrap());
    assert!(!repo.mark_attached(attachment.id, second).await.unwrap());
    assert!(!repo.mark_attached(attachment.id, first).await.unwrap());
    let stored = repo.find(attachment.id).await.unwrap().unwrap();
    assert_eq!(stored.message_id, Some(first));
    assert_eq!(stored.state, AttachmentState::Scanning);
    assert!(!repo.mark_attached(Uuid::now_v7(), first).await.unwrap());
    store.close().await;
}

async fn awaiting_scan_is_scanning_oldest_first_up_to_the_limit(db: TestDb) {
    let store = store(&db).await;
    let repo = SqlAttachments::new(store.clone());
    let start = now() - Duration::hours(1);
    let at = |minutes| start + Duration::minutes(minutes);
    let newest = in_state(AttachmentState::Scanning, at(30));
    let oldest = in_state(AttachmentState::Scanning, at(1));
    let middle = in_state(AttachmentState::Scanning, at(10));
    let others: Vec<Attachment> = AttachmentState::ALL
        .into_iter()
        .filter(|state| *state != AttachmentState::Scanning)
        .map(|state| in_state(state, at(0)))
        .collect();
    insert_all(&repo, &[newest.clone(), oldest.clone(), middle.clone()]).await;
    insert_all(&repo, &others).await;

    assert_eq!(
        ids(&repo.awaiting_scan(10).await.unwrap()),
        vec![oldest.id, middle.id, newest.id]
    );
    assert_eq!(
        ids(&repo.awaiting_scan(2).await.unwrap()),
        vec![oldest.id, middle.id]
    );
    assert!(repo.awaiting_scan(0).await.unwrap().is_empty());
    store.close().await;
}

async fn due_expired_is_live_attachments_at_or_before_now_soonest_first(db: TestDb) {
    let store = store(&db).await;
    let repo = SqlAttachments::new(store.clone());
    let now = now();
    let expiring = |state, expires_at: Option<DateTime<Utc>>| Attachment {
        expires_at,
        ..in_state(state, now - Duration::days(40))
    };
    let exactly_now = expiring(AttachmentState::Clean, Some(now));
    let long_ago = expiring(AttachmentState::Pending, Some(now - Duration::days(2)));
    let a_second_ago = expiring(AttachmentState::Infected, Some(now - Duration::seconds(1)));
    let a_microsecond_ago = expiring(
        AttachmentState::Failed,
        Some(now - Duration::microseconds(1)),
    );
    let scanning = expiring(AttachmentState::Scanning, Some(now - Duration::hours(1)));
    let not_yet = [
        expiring(
            AttachmentState::Clean,
            Some(now + Duration::microseconds(1)),
        ),
        expiring(AttachmentState::Clean, None),
    ];
    let already_done = [
        expiring(AttachmentState::Expired, Some(now - Duration::days(3))),
        expiring(AttachmentState::Deleted, Some(now - Duration::days(3))),
    ];
    insert_all(
        &repo,
        &[
            exactly_now.clone(),
            long_ago.clone(),
            a_second_ago.clone(),
            a_microsecond_ago.clone(),
            scanning.clone(),
        ],
    )
    .await;
    insert_all(&repo, &not_yet).await;
    insert_all(&repo, &already_done).await;

    let due = repo.due_expired(now, 10).await.unwrap();
    assert_eq!(
        ids(&due),
        vec![
            long_ago.id,
            scanning.id,
            a_second_ago.id,
            a_microsecond_ago.id,
            exactly_now.id
        ]
    );
    assert_eq!(due[0], long_ago);
    assert_eq!(
        ids(&repo.due_expired(now, 2).await.unwrap()),
        vec![long_ago.id, scanning.id]
    );
    assert!(repo.due_expired(now, 0).await.unwrap().is_empty());
    assert!(
        repo.due_expired(now - Duration::days(2) - Duration::microseconds(1), 10)
            .await
            .unwrap()
            .is_empty()
    );
    store.close().await;
}

async fn due_expired_finds_what_a_failed_round_left(db: TestDb) {
    let store = store(&db).await;
    let repo = SqlAttachments::new(store.clone());
    let now = now();
    let due = Attachment {
        expires_at: Some(now - Duration::minutes(5)),
        ..in_state(AttachmentState::Clean, now - Duration::days(1))
    };
    repo.insert(&due).await.unwrap();
    // A round that found it but never wrote the state (its deletion failed).
    assert_eq!(ids(&repo.due_expired(now, 10).await.unwrap()), vec![due.id]);
    let reopened = SqlAttachments::new(
        Store::connect(db.url(), &StoreOptions::default())
            .await
            .unwrap(),
    );
    assert_eq!(
        ids(&reopened.due_expired(now, 10).await.unwrap()),
        vec![due.id]
    );
    // Once written Expired, it is never due again.
    let mut expired = due.clone();
    expired.expire().unwrap();
    assert!(
        reopened
            .set_state(&expired, AttachmentState::Clean)
            .await
            .unwrap()
    );
    assert!(repo.due_expired(now, 10).await.unwrap().is_empty());
    store.close().await;
}

async fn unattached_before_is_live_unreferenced_uploads_oldest_first(db: TestDb) {
    let store = store(&db).await;
    let repo = SqlAttachments::new(store.clone());
    let cutoff = now() - Duration::days(1);
    let oldest = in_state(AttachmentState::Pending, cutoff - Duration::days(5));
    let clean = in_state(AttachmentState::Clean, cutoff - Duration::hours(3));
    let failed = in_state(AttachmentState::Failed, cutoff - Duration::microseconds(1));
    let attached = Attachment {
        message_id: Some(Uuid::now_v7()),
        ..in_state(AttachmentState::Clean, cutoff - Duration::days(6))
    };
    let others = [
        attached,
        in_state(AttachmentState::Scanning, cutoff),
        in_state(AttachmentState::Clean, cutoff + Duration::hours(1)),
        in_state(AttachmentState::Expired, cutoff - Duration::days(7)),
        in_state(AttachmentState::Deleted, cutoff - Duration::days(7)),
    ];
    insert_all(&repo, &[failed.clone(), oldest.clone(), clean.clone()]).await;
    insert_all(&repo, &others).await;

    let found = repo.unattached_before(cutoff, 10).await.unwrap();
    assert_eq!(ids(&found), vec![oldest.id, clean.id, failed.id]);
    assert_eq!(found[0], oldest);
    assert_eq!(
        ids(&repo.unattached_before(cutoff, 1).await.unwrap()),
        vec![oldest.id]
    );
    assert!(repo.unattached_before(cutoff, 0).await.unwrap().is_empty());

    assert!(repo.mark_attached(clean.id, Uuid::now_v7()).await.unwrap());
    assert_eq!(
        ids(&repo.unattached_before(cutoff, 10).await.unwrap()),
        vec![oldest.id, failed.id]
    );
    store.close().await;
}

async fn bytes_used_by_counts_pending_scanning_and_clean_only(db: TestDb) {
    let store = store(&db).await;
    let repo = SqlAttachments::new(store.clone());
    let (owner, someone_else) = (Uuid::now_v7(), Uuid::now_v7());
    assert_eq!(repo.bytes_used_by(owner).await.unwrap(), 0);

    let sizes = [1u64, 10, 100, 1_000, 10_000, 100_000, 1_000_000];
    let mine: Vec<Attachment> = AttachmentState::ALL
        .into_iter()
        .zip(sizes)
        .map(|(state, size)| Attachment {
            state,
            ..pending(owner, size, now())
        })
        .collect();
    insert_all(&repo, &mine).await;
    repo.insert(&pending(someone_else, 5_000_000_000, now()))
        .await
        .unwrap();

    // Pending 1 + Scanning 10 + Clean 100.
    assert_eq!(repo.bytes_used_by(owner).await.unwrap(), 111);
    assert_eq!(
        repo.bytes_used_by(someone_else).await.unwrap(),
        5_000_000_000
    );

    // Verifying rewrites the size: the stored bytes count from then on.
    let mut scanning = mine[0].clone();
    scanning.verified(verified_png()).unwrap();
    assert!(
        repo.set_state(&scanning, AttachmentState::Pending)
            .await
            .unwrap()
    );
    assert_eq!(repo.bytes_used_by(owner).await.unwrap(), 110 + 2_048);
    store.close().await;
}

both_backends!(
    an_inserted_attachment_is_found_as_it_was,
    a_size_beyond_the_column_is_refused_not_wrapped,
    set_state_writes_the_move_and_what_was_learned,
    set_state_leaves_the_rest_of_the_row_alone,
    a_compare_and_set_from_a_stale_state_writes_nothing,
    of_two_racing_compare_and_sets_exactly_one_wins,
    an_attachment_goes_into_one_message_only,
    awaiting_scan_is_scanning_oldest_first_up_to_the_limit,
    due_expired_is_live_attachments_at_or_before_now_soonest_first,
    due_expired_finds_what_a_failed_round_left,
    unattached_before_is_live_unreferenced_uploads_oldest_first,
    bytes_used_by_counts_pending_scanning_and_clean_only,
    the_job_queries_use_their_indexes,
    the_attachments_migration_rolls_back_and_forward,
);

/// The plan of each job's query names its index (PostgreSQL is told not to
/// scan the table, which on an empty table it would rather do).
async fn the_job_queries_use_their_indexes(db: TestDb) {
    use sea_orm::{ConnectionTrait, Statement, TransactionTrait};
    let store = store(&db).await;
    let tx = store.connection().begin().await.unwrap();
    let explain = if db.is_postgres() {
        tx.execute_unprepared("SET LOCAL enable_seqscan = off")
            .await
            .unwrap();
        "EXPLAIN"
    } else {
        "EXPLAIN QUERY PLAN"
    };
    let at = "'2026-12-02 12:00:00+00:00'";
    let owner = "'0193b4a0-0000-7000-8000-000000000000'";
    let cases = [
        (
            "idx_attachments_state_created",
            "state = 'scanning' ORDER BY created_at, id LIMIT 10".to_owned(),
        ),
        (
            "idx_attachments_due_expiry",
            format!(
                "state NOT IN ('expired', 'deleted') AND expires_at IS NOT NULL \
                 AND expires_at <= {at} ORDER BY expires_at, id LIMIT 10"
            ),
        ),
        (
            "idx_attachments_unattached",
            format!(
                "message_id IS NULL AND state NOT IN ('expired', 'deleted') \
                 AND created_at < {at} ORDER BY created_at, id LIMIT 10"
            ),
        ),
        (
            "idx_attachments_owner",
            format!("owner_id = {owner} AND state IN ('pending', 'scanning', 'clean')"),
        ),
    ];
    for (index, condition) in cases {
        let plan = tx
            .query_all_raw(Statement::from_string(
                tx.get_database_backend(),
                format!("{explain} SELECT * FROM attachments WHERE {condition}"),
            ))
            .await
            .unwrap()
            .iter()
            .map(|row| {
                let column = if db.is_postgres() {
                    "QUERY PLAN"
                } else {
                    "detail"
                };
                row.try_get::<String>("", column).unwrap()
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert!(plan.contains(index), "{index} not used:\n{plan}");
        if !db.is_postgres() && index != "idx_attachments_owner" {
            assert!(!plan.contains("TEMP B-TREE"), "{index} sorts:\n{plan}");
        }
    }
    tx.rollback().await.unwrap();
    store.close().await;
}

async fn the_attachments_migration_rolls_back_and_forward(db: TestDb) {
    use ieum_migration::{Migrator, MigratorTrait};
    use sea_orm::{ConnectionTrait, Statement};
    let store = store(&db).await;
    let conn = store.connection();
    let objects = || async {
        let sql = if db.is_postgres() {
            "SELECT relname AS name FROM pg_class WHERE relname LIKE '%attachments%' ORDER BY relname"
        } else {
            "SELECT name FROM sqlite_master WHERE name LIKE '%attachments%' ORDER BY name"
        };
        conn.query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
            .await
            .unwrap()
            .iter()
            .map(|row| row.try_get::<String>("", "name").unwrap())
            .collect::<Vec<_>>()
    };
    let made = objects().await;
    let definitions = || async {
        let sql = if db.is_postgres() {
            "SELECT indexdef AS d FROM pg_indexes WHERE indexname LIKE 'idx_attachments_%' ORDER BY indexname"
        } else {
            "SELECT sql AS d FROM sqlite_master WHERE name LIKE 'idx_attachments_%' ORDER BY name"
        };
        conn.query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
            .await
            .unwrap()
            .iter()
            .map(|row| row.try_get::<String>("", "d").unwrap())
            .collect::<Vec<_>>()
    };
    let partial = definitions()
        .await
        .into_iter()
        .filter(|definition| definition.contains("WHERE"))
        .count();
    assert_eq!(partial, 3, "{:?}", definitions().await);
    for index in [
        "idx_attachments_due_expiry",
        "idx_attachments_message_id",
        "idx_attachments_owner",
        "idx_attachments_state_created",
        "idx_attachments_unattached",
    ] {
        assert!(made.iter().any(|name| name == index), "{made:?}");
    }

    // Down to before the attachments migration (the later ones first).
    let later = Migrator::migrations().len() - 7;
    Migrator::down(conn, Some(later as u32 + 1)).await.unwrap();
    assert_eq!(objects().await, Vec::<String>::new());
    Migrator::up(conn, None).await.unwrap();
    assert_eq!(objects().await, made);
    let repo = SqlAttachments::new(store.clone());
    let attachment = pending(Uuid::now_v7(), 10, now());
    repo.insert(&attachment).await.unwrap();
    assert_eq!(repo.find(attachment.id).await.unwrap(), Some(attachment));
    store.close().await;
}
