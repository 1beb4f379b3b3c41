//! The Redis presence adapter against a real Redis, under a key prefix of its own.

use std::time::{Duration, Instant};

use ieum_domain::ports::PresenceRegistry;
use ieum_redis::RedisPresence;
use ieum_test_support::{RedisPrefix, redis_url};
use uuid::Uuid;

fn node(prefix: &RedisPrefix, id: Uuid, ttl_secs: u64) -> RedisPresence {
    RedisPresence::new(&redis_url(), &prefix.0, id, Duration::from_secs(ttl_secs)).unwrap()
}

#[tokio::test]
async fn presence_spans_nodes_and_a_dead_nodes_users_go_offline_once() {
    let prefix = RedisPrefix::new();
    let (a, b) = (
        node(&prefix, Uuid::new_v4(), 1),
        node(&prefix, Uuid::new_v4(), 30),
    );
    a.heartbeat()
        .await
        .expect("Redis reachable (scripts/test starts it)");
    b.heartbeat().await.unwrap();
    let alice = Uuid::new_v4();
    assert!(
        a.connected(alice, 1).await.unwrap(),
        "first device anywhere"
    );
    assert!(!a.connected(alice, 2).await.unwrap());
    assert!(
        !b.connected(alice, 3).await.unwrap(),
        "online on another node already"
    );
    assert!(b.is_online(alice).await.unwrap());
    assert!(!b.disconnected(alice, 3).await.unwrap(), "still on node a");
    assert!(b.is_online(alice).await.unwrap(), "b sees a's connections");
    assert!(a.healthy() && b.healthy());

    // Node a dies (stops heart-beating): once its key expires, b claims alice.
    let deadline = Instant::now() + Duration::from_secs(10);
    let orphans = loop {
        b.heartbeat().await.unwrap();
        let o = b.take_orphaned_users().await.unwrap();
        if !o.is_empty() {
            break o;
        }
        assert!(Instant::now() < deadline, "a's users were never claimed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(orphans, [alice]);
    assert!(!b.is_online(alice).await.unwrap());
    assert!(
        b.take_orphaned_users().await.unwrap().is_empty(),
        "claimed once"
    );
}

#[tokio::test]
async fn an_unreachable_redis_degrades_to_local_answers() {
    let p = RedisPresence::new(
        "redis://127.0.0.1:1",
        "x:",
        Uuid::new_v4(),
        Duration::from_secs(5),
    )
    .unwrap();
    let u = Uuid::new_v4();
    assert!(p.connected(u, 1).await.unwrap());
    assert!(!p.healthy());
    assert!(p.is_online(u).await.unwrap());
    assert!(p.disconnected(u, 1).await.unwrap());
    assert!(p.heartbeat().await.is_err());
}

#[tokio::test]
async fn rate_limits_are_counted_across_nodes() {
    use ieum_domain::throttle::RateCounter;
    let prefix = RedisPrefix::new();
    let a = ieum_redis::RedisRateCounter::new(&redis_url(), &prefix.0).unwrap();
    let b = ieum_redis::RedisRateCounter::new(&redis_url(), &prefix.0).unwrap();
    let now = chrono::Utc::now();
    let window = chrono::Duration::minutes(5);
    assert_eq!(a.hit("login:alice", window, now).await.count, 1);
    assert_eq!(b.hit("login:alice", window, now).await.count, 2);
    let third = a.hit("login:alice", window, now).await;
    assert_eq!(third.count, 3);
    assert!(
        third.resets_in_secs > 200 && third.resets_in_secs <= 300,
        "{third:?}"
    );
    assert_eq!(b.hit("login:bob", window, now).await.count, 1);
    b.release("login:alice").await;
    assert_eq!(a.hit("login:alice", window, now).await.count, 3);
    b.clear("login:alice").await;
    assert_eq!(a.hit("login:alice", window, now).await.count, 1);
}

#[tokio::test]
async fn parallel_hits_on_two_nodes_each_get_their_own_count() {
    use ieum_domain::throttle::RateCounter;
    let prefix = RedisPrefix::new();
    let a =
        std::sync::Arc::new(ieum_redis::RedisRateCounter::new(&redis_url(), &prefix.0).unwrap());
    let b =
        std::sync::Arc::new(ieum_redis::RedisRateCounter::new(&redis_url(), &prefix.0).unwrap());
    let now = chrono::Utc::now();
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let node = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(
                async move { node.hit("k", chrono::Duration::minutes(1), now).await.count },
            )
        })
        .collect();
    let mut counts = Vec::new();
    for t in tasks {
        counts.push(t.await.unwrap());
    }
    counts.sort_unstable();
    assert_eq!(counts, (1..=40).collect::<Vec<u32>>());
}
