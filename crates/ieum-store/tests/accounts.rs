//! The store adapter's account cases, run on SQLite and on PostgreSQL.

use std::sync::Arc;

use chrono::{Duration, Utc};
use ieum_domain::ports::{RefreshTokenRecord, RefreshTokenRepository, UserRepository};
use ieum_domain::user::NewUser;
use ieum_store::{SqlRefreshTokens, SqlUsers, Store, StoreOptions};
use ieum_test_support::{TestDb, both_backends};
use uuid::Uuid;

async fn store(db: &TestDb) -> Store {
    let store = Store::connect(db.url(), &StoreOptions::default())
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    store
}

fn new_user(name: &str) -> NewUser {
    NewUser {
        id: Uuid::now_v7(),
        username: name.into(),
        display_name: "김철수 🐰".into(),
        password_hash: "$argon2id$fake".into(),
        created_at: Utc::now(),
    }
}

async fn users_are_created_found_and_unique(db: TestDb) {
    let store = store(&db).await;
    assert!(store.pending_migrations().await.unwrap().is_empty());
    let users = SqlUsers::new(store.clone());
    let alice = users.create(new_user("alice")).await.unwrap();
    assert_eq!(alice.display_name, "김철수 🐰");

    let creds = users
        .find_credentials("alice")
        .await
        .unwrap()
        .expect("found");
    assert_eq!(creds.user.id, alice.id);
    assert_eq!(creds.password_hash, "$argon2id$fake");
    assert!(users.find_credentials("bob").await.unwrap().is_none());
    assert_eq!(
        users.find_by_id(alice.id).await.unwrap().unwrap().username,
        "alice"
    );
    assert!(users.find_by_id(Uuid::now_v7()).await.unwrap().is_none());

    let err = users.create(new_user("alice")).await.unwrap_err();
    assert_eq!(err.code(), "username_taken");
    store.close().await;
}

fn token(user_id: Uuid, family_id: Uuid) -> RefreshTokenRecord {
    let now = Utc::now();
    RefreshTokenRecord {
        id: Uuid::now_v7(),
        family_id,
        user_id,
        token_hash: "ab".repeat(32),
        created_at: now,
        expires_at: now + Duration::days(30),
        used_at: None,
        revoked_at: None,
    }
}

async fn refresh_tokens_mark_used_once_and_revoke_by_family(db: TestDb) {
    let store = store(&db).await;
    let users = SqlUsers::new(store.clone());
    let tokens = Arc::new(SqlRefreshTokens::new(store.clone()));
    let alice = users.create(new_user("alice")).await.unwrap();
    let family = Uuid::now_v7();
    let t1 = token(alice.id, family);
    let t2 = token(alice.id, family);
    let other = token(alice.id, Uuid::now_v7());
    for t in [&t1, &t2, &other] {
        tokens.insert(t.clone()).await.unwrap();
    }
    assert_eq!(
        tokens.find(t1.id).await.unwrap().unwrap(),
        t1_with_times(&tokens, &t1).await
    );

    // Eight racing marks: exactly one wins.
    let mut handles = Vec::new();
    for _ in 0..8 {
        let tokens = tokens.clone();
        let id = t1.id;
        handles.push(tokio::spawn(async move {
            tokens.mark_used(id, Utc::now()).await.unwrap()
        }));
    }
    let mut wins = 0;
    for h in handles {
        wins += usize::from(h.await.unwrap());
    }
    assert_eq!(wins, 1);
    assert!(tokens.find(t1.id).await.unwrap().unwrap().used_at.is_some());

    assert_eq!(tokens.revoke_family(family, Utc::now()).await.unwrap(), 2);
    assert_eq!(tokens.revoke_family(family, Utc::now()).await.unwrap(), 0);
    assert!(
        tokens
            .find(t2.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
    assert!(
        !tokens.mark_used(t2.id, Utc::now()).await.unwrap(),
        "revoked cannot be used"
    );
    assert!(
        tokens
            .find(other.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none()
    );
    assert!(tokens.find(Uuid::now_v7()).await.unwrap().is_none());
    store.close().await;
}

/// Timestamps come back at the backend's precision (microseconds on PostgreSQL).
async fn t1_with_times(tokens: &SqlRefreshTokens, t: &RefreshTokenRecord) -> RefreshTokenRecord {
    let stored = tokens.find(t.id).await.unwrap().unwrap();
    assert!((stored.created_at - t.created_at).num_milliseconds().abs() < 1);
    RefreshTokenRecord {
        created_at: stored.created_at,
        expires_at: stored.expires_at,
        ..t.clone()
    }
}

async fn migrations_are_idempotent(db: TestDb) {
    let store = store(&db).await;
    store.migrate().await.expect("second run is a no-op");
    store.ping().await.unwrap();
    store.close().await;
}

both_backends!(
    users_are_created_found_and_unique,
    refresh_tokens_mark_used_once_and_revoke_by_family,
    migrations_are_idempotent,
);
