//! The member's rules: mutes, mentions in muted rooms, hidden previews,
//! and coalescing with the unread badge.

use std::time::Duration;

use serde_json::json;

use super::{COALESCE_SECS, GRACE_MS, PushServer, android, direct, group, register, say};
use crate::common::{Stomp, http_json, signup};
use ieum_test_support::{TestDb, both_backends};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_muted_room_gives_no_push() {
    let db = TestDb::sqlite().await;
    let push = PushServer::start(&db).await;
    let server = &push.server;
    let (alice, _) = signup(server, "alice").await;
    let (bob, bob_id) = signup(server, "bob").await;
    android(server, &bob, "bob-phone").await;
    let muted = direct(server, &alice, &bob_id).await;
    let (status, body) = http_json(
        server.addr,
        "PUT",
        &format!("/api/rooms/{muted}/mute"),
        Some(&bob),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["muted"], true);
    assert!(body["until"].is_null());
    let (_, shown) = http_json(
        server.addr,
        "GET",
        &format!("/api/rooms/{muted}/mute"),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(shown["muted"], true);
    let mut client = Stomp::connect(&server.ws_url(), &alice).await;
    let quiet = say(&mut client, &muted, "shh").await;
    // A second room of bob's, unmuted, whose push marks that the muted
    // message's time has passed.
    let open = group(server, &alice, "open", &[&bob]).await;
    let marker = say(&mut client, &open, "loud").await;
    push.wait_push("bob-phone", marker).await;
    let pushed_quiet = push
        .pushes_to("bob-phone")
        .iter()
        .any(|p| p["data"]["roomId"] == muted.as_str());
    assert!(!pushed_quiet, "seq {quiet} of the muted room was pushed");
    // Unmuted, the room pushes again.
    let (status, _) = http_json(
        server.addr,
        "DELETE",
        &format!("/api/rooms/{muted}/mute"),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let loud = say(&mut client, &muted, "now you hear me").await;
    push.wait_push("bob-phone", loud).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mention_in_a_muted_room_pushes_as_the_member_chose() {
    let db = TestDb::sqlite().await;
    let push = PushServer::start(&db).await;
    let server = &push.server;
    let (alice, _) = signup(server, "alice").await;
    let (bob, _) = signup(server, "bob").await;
    android(server, &bob, "bob-phone").await;
    let room = group(server, &alice, "team", &[&bob]).await;
    let (status, _) = http_json(
        server.addr,
        "PUT",
        &format!("/api/rooms/{room}/mute"),
        Some(&bob),
        Some(json!({"until": "2099-01-01T00:00:00Z"})),
    )
    .await;
    assert_eq!(status, 200);
    let mut client = Stomp::connect(&server.ws_url(), &alice).await;
    // By default a mention still pushes.
    let mention = say(&mut client, &room, "@bob look").await;
    let sent = push.wait_push("bob-phone", mention).await;
    assert_eq!(sent["notification"]["title"], "team");
    assert_eq!(sent["notification"]["body"], "alice: @bob look");
    // Turned off, it does not: the plain message after it marks the time.
    let (status, prefs) = http_json(
        server.addr,
        "PATCH",
        "/api/me/push",
        Some(&bob),
        Some(json!({"mentionsWhenMuted": false})),
    )
    .await;
    assert_eq!(status, 200, "{prefs}");
    assert_eq!(prefs["mentionsWhenMuted"], false);
    let silent = say(&mut client, &room, "@bob again").await;
    let other = group(server, &alice, "other", &[&bob]).await;
    let marker = say(&mut client, &other, "marker").await;
    push.wait_push("bob-phone", marker).await;
    assert!(
        !push
            .pushes_to("bob-phone")
            .iter()
            .any(|p| super::seq_of(p) == silent && p["data"]["roomId"] == room.as_str()),
        "{:?}",
        push.pushes_to("bob-phone")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_previews_and_data_only_devices() {
    let db = TestDb::sqlite().await;
    let push = PushServer::start(&db).await;
    let server = &push.server;
    let (alice, _) = signup(server, "alice").await;
    let (bob, bob_id) = signup(server, "bob").await;
    register(
        server,
        &bob,
        json!({"platform": "android", "token": "couple-app", "dataOnly": true, "locale": "ko"}),
    )
    .await;
    register(
        server,
        &bob,
        json!({"platform": "ios", "token": "bob-ipad", "locale": "en-US"}),
    )
    .await;
    let (status, _) = http_json(
        server.addr,
        "PATCH",
        "/api/me/push",
        Some(&bob),
        Some(json!({"previews": false})),
    )
    .await;
    assert_eq!(status, 200);
    let room = direct(server, &alice, &bob_id).await;
    let mut client = Stomp::connect(&server.ws_url(), &alice).await;
    let seq = say(&mut client, &room, "비밀이야").await;
    let couple = push.wait_push("couple-app", seq).await;
    assert!(couple.get("notification").is_none());
    assert_eq!(couple["data"]["title"], "alice");
    assert_eq!(couple["data"]["body"], "새 메시지");
    let ipad = push.wait_push("bob-ipad", seq).await;
    assert_eq!(ipad["notification"]["body"], "New message");
    assert!(!ipad.to_string().contains("비밀이야"));
}

/// 50 messages in 10 s to an offline partner: one push per coalescing
/// window at most (PROTOCOL.md: the first a grace period after the first
/// message, then at most one per window), the last carrying the last
/// message, and its badge the unread count.
async fn a_burst_is_coalesced_and_the_last_badge_is_the_unread_count(db: TestDb) {
    let push = PushServer::start(&db).await;
    let server = &push.server;
    let (alice, _) = signup(server, "alice").await;
    let (bob, bob_id) = signup(server, "bob").await;
    android(server, &bob, "bob-phone").await;
    let room = direct(server, &alice, &bob_id).await;
    let mut client = Stomp::connect(&server.ws_url(), &alice).await;
    let started = tokio::time::Instant::now();
    let mut pace = tokio::time::interval(Duration::from_millis(200));
    let mut last = 0;
    for n in 0..50 {
        pace.tick().await;
        last = say(&mut client, &room, &format!("메시지 {n}")).await;
    }
    let span = started.elapsed();
    let final_push = push.wait_push("bob-phone", last).await;
    assert_eq!(final_push["data"]["badge"], "50");
    assert_eq!(final_push["apns"]["payload"]["aps"]["badge"], 50);
    assert_eq!(final_push["notification"]["body"], "메시지 49");
    let pushes = push.pushes_to("bob-phone");
    let windows = (span.as_millis() as u64 + GRACE_MS).div_ceil(COALESCE_SECS * 1000);
    assert!(
        pushes.len() as u64 <= 1 + windows,
        "{} pushes in {span:?}",
        pushes.len()
    );
    assert!(pushes.len() >= 2, "a 10 s burst spans several windows");
    // The counts add up to the messages.
    let counted: i64 = pushes
        .iter()
        .map(|p| p["data"]["count"].as_str().unwrap().parse::<i64>().unwrap())
        .sum();
    assert_eq!(counted, 50);
}

both_backends!(a_burst_is_coalesced_and_the_last_badge_is_the_unread_count);
