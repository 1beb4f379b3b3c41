//! The outbox: retries that honour `Retry-After`, dead tokens, a node
//! killed between deciding and sending, two nodes on one PostgreSQL.

use std::collections::HashMap;

use serde_json::json;

use super::{PushServer, android, direct, say};
use crate::common::{Node, Stomp, WAIT, http_json, signup, signup_at};
use ieum_test_support::fcm::{FakeFcm, Reply};
use ieum_test_support::{PgDatabase, TestDb};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_fcm_is_retried_and_the_push_sent_once() {
    let db = TestDb::sqlite().await;
    let push = PushServer::start(&db).await;
    let server = &push.server;
    let (alice, _) = signup(server, "alice").await;
    let (bob, bob_id) = signup(server, "bob").await;
    android(server, &bob, "bob-phone").await;
    let room = direct(server, &alice, &bob_id).await;
    push.fcm.script([Reply::Status(503, Some(1))]);
    let mut client = Stomp::connect(&server.ws_url(), &alice).await;
    let seq = say(&mut client, &room, "retry me").await;
    push.wait_push("bob-phone", seq).await;
    let attempts = push.fcm.attempts();
    assert_eq!(attempts.len(), 2, "503, then 200");
    // The next message's push comes; the first went out once.
    let next = say(&mut client, &room, "next").await;
    push.wait_push("bob-phone", next).await;
    let first = push
        .pushes_to("bob-phone")
        .iter()
        .filter(|p| super::seq_of(p) == seq)
        .count();
    assert_eq!(first, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unregistered_token_is_removed() {
    let db = TestDb::sqlite().await;
    let push = PushServer::start(&db).await;
    let server = &push.server;
    let (alice, _) = signup(server, "alice").await;
    let (bob, bob_id) = signup(server, "bob").await;
    android(server, &bob, "old-install").await;
    android(server, &bob, "new-install").await;
    push.fcm.unregister("old-install");
    let room = direct(server, &alice, &bob_id).await;
    let mut client = Stomp::connect(&server.ws_url(), &alice).await;
    let seq = say(&mut client, &room, "hello").await;
    push.wait_push("new-install", seq).await;
    push.fcm
        .wait_until(WAIT, "a send to the old install", |f| {
            f.attempts().iter().any(|a| a["token"] == "old-install")
        })
        .await;
    // The device goes once FCM said so: wait for it, with a deadline.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, devices) =
            http_json(server.addr, "GET", "/api/devices", Some(&bob), None).await;
        assert_eq!(status, 200);
        if devices.as_array().unwrap().len() == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still registered: {devices}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let next = say(&mut client, &room, "again").await;
    push.wait_push("new-install", next).await;
    let old = push
        .fcm
        .attempts()
        .iter()
        .filter(|a| a["token"] == "old-install")
        .count();
    assert_eq!(old, 1, "a removed token is not tried again");
}

/// A node's settings; `lease_secs` is how soon another node takes a push a
/// dead one claimed (a send is abandoned after three quarters of it, so it
/// must stay well above a loaded machine's answer time).
fn node_env(db: &PgDatabase, fcm: &FakeFcm, lease_secs: u32) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", db.url().to_owned()),
        ("IEUM_FCM_CREDENTIALS", fcm.account_json()),
        ("IEUM_FCM_ENDPOINT", fcm.endpoint()),
        ("IEUM_PUSH_GRACE_MS", "300".into()),
        ("IEUM_PUSH_COALESCE_SECS", "1".into()),
        ("IEUM_PUSH_LEASE_SECS", lease_secs.to_string()),
        ("IEUM_PUSH_POLL_MS", "100".into()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_decided_before_a_crash_goes_out_once_after_the_restart() {
    let db = PgDatabase::create().await;
    let fcm = FakeFcm::start();
    let mut first = Node::spawn(&node_env(&db, &fcm, 4));
    let (alice, _) = signup_at(first.addr, "alice").await;
    let (bob, bob_id) = signup_at(first.addr, "bob").await;
    let (status, _) = http_json(
        first.addr,
        "POST",
        "/api/devices",
        Some(&bob),
        Some(json!({"platform": "android", "token": "bob-phone"})),
    )
    .await;
    assert_eq!(status, 201);
    let (_, room) = http_json(
        first.addr,
        "POST",
        "/api/rooms/direct",
        Some(&alice),
        Some(json!({"userId": bob_id})),
    )
    .await;
    let room = room["id"].as_str().unwrap().to_owned();
    // The token endpoint holds: the node decides, claims the push, and
    // waits for its access token when it is killed.
    fcm.hold_tokens(true);
    let mut client = Stomp::connect(&first.ws_url(), &alice).await;
    let seq = say(&mut client, &room, "before the crash").await;
    fcm.wait_until(WAIT, "the node asking for a token", |f| {
        f.token_requests() >= 1
    })
    .await;
    drop(client);
    first.kill();
    assert!(
        fcm.attempts().is_empty(),
        "nothing was sent before the kill"
    );
    fcm.hold_tokens(false);
    let second = Node::spawn(&node_env(&db, &fcm, 4));
    fcm.wait_until(WAIT, "the push after the restart", |f| {
        f.pushes().iter().any(|p| super::seq_of(p) == seq)
    })
    .await;
    // A later message's push marks a later round: still once.
    let mut client = Stomp::connect(&second.ws_url(), &alice).await;
    let next = say(&mut client, &room, "after the restart").await;
    fcm.wait_until(WAIT, "the next push", |f| {
        f.pushes().iter().any(|p| super::seq_of(p) == next)
    })
    .await;
    let once = fcm
        .pushes()
        .iter()
        .filter(|p| super::seq_of(p) == seq)
        .count();
    assert_eq!(once, 1, "{:?}", fcm.pushes());
    assert!(fcm.problems().is_empty(), "{:?}", fcm.problems());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_postgres_send_each_push_once() {
    let db = PgDatabase::create().await;
    let fcm = FakeFcm::start();
    let one = Node::spawn(&node_env(&db, &fcm, 30));
    let two = Node::spawn(&node_env(&db, &fcm, 30));
    let (alice, _) = signup_at(one.addr, "alice").await;
    let (bob, bob_id) = signup_at(one.addr, "bob").await;
    for n in 0..20 {
        let (status, body) = http_json(
            two.addr,
            "POST",
            "/api/devices",
            Some(&bob),
            Some(json!({"platform": "android", "token": format!("bob-{n}")})),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let (_, room) = http_json(
        one.addr,
        "POST",
        "/api/rooms/direct",
        Some(&alice),
        Some(json!({"userId": bob_id})),
    )
    .await;
    let room = room["id"].as_str().unwrap().to_owned();
    // Messages sent on both nodes: each plans on its own, both workers claim.
    let mut on_one = Stomp::connect(&one.ws_url(), &alice).await;
    let mut on_two = Stomp::connect(&two.ws_url(), &alice).await;
    let mut seqs = Vec::new();
    for n in 0..5 {
        seqs.push(say(&mut on_one, &room, &format!("one {n}")).await);
        seqs.push(say(&mut on_two, &room, &format!("two {n}")).await);
    }
    let last = *seqs.iter().max().unwrap();
    fcm.wait_until(WAIT, "every device's push of the last message", |f| {
        f.pushes()
            .iter()
            .filter(|p| super::seq_of(p) == last)
            .count()
            == 20
    })
    .await;
    let mut per_push: HashMap<(String, String), usize> = HashMap::new();
    for p in fcm.pushes() {
        *per_push
            .entry((
                p["token"].as_str().unwrap().to_owned(),
                p["data"]["messageId"].as_str().unwrap().to_owned(),
            ))
            .or_default() += 1;
    }
    assert!(per_push.values().all(|n| *n == 1), "{per_push:?}");
    assert!(fcm.problems().is_empty(), "{:?}", fcm.problems());
}
