//! Kicks, bans, and the SYSTEM messages membership changes post.

use super::*;

async fn kicks_and_bans(db: TestDb) {
    let server = TestServer::start(&db).await;
    let a = server.addr;
    let (alice, _) = signup(&server, "alice").await;
    let (bob, bob_id) = signup(&server, "bob").await;
    let r = room(&server, &alice, &[&bob]).await;
    let mut bw = Stomp::connect(&server.ws_url(), &bob).await;
    bw.subscribe("s", &format!("/topic/rooms/{}", r.id), &[])
        .await;
    let (s, _) = http_json(
        a,
        "POST",
        &format!("/api/rooms/{}/members/{bob_id}/ban", r.id),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (_, ev) = bw.next_event("member_left").await;
    assert_eq!(ev["kicked"], true);
    let (s, body) = http_json(
        a,
        "POST",
        &format!("/api/rooms/{}/join", r.id),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!((s, body["code"].as_str()), (403, Some("banned")));
    // Banning an account that does not exist is a 404, not a server error.
    let (s, body) = http_json(
        a,
        "POST",
        &format!("/api/rooms/{}/members/{}/ban", r.id, uuid::Uuid::new_v4()),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!((s, body["code"].as_str()), (404, Some("user_not_found")));
    let mut aw = Stomp::connect(&server.ws_url(), &alice).await;
    send(&mut aw, &r, json!({"content": "after the ban"})).await;
    let frames = bw.drain(Duration::from_millis(400)).await;
    assert!(
        frames.iter().all(|f| f.get("event") != Some("message")),
        "a banned user hears nothing"
    );
    server.stop().await;
}

async fn system_messages_for_joins_leaves_kicks_and_renames(db: TestDb) {
    let server = TestServer::start(&db).await;
    let a = server.addr;
    let (alice, _) = signup(&server, "alice").await;
    let (bob, _) = signup(&server, "bob").await;
    let (carol, carol_id) = signup(&server, "carol").await;
    let r = room(&server, &alice, &[]).await;
    let mut aw = Stomp::connect(&server.ws_url(), &alice).await;
    aw.subscribe("s", &format!("/topic/rooms/{}", r.id), &[])
        .await;
    http_json(
        a,
        "POST",
        &format!("/api/rooms/{}/join", r.id),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(aw.next_system().await["content"], "bob joined");
    http_json(
        a,
        "PATCH",
        &format!("/api/rooms/{}", r.id),
        Some(&alice),
        Some(json!({"name": "새 이름"})),
    )
    .await;
    assert_eq!(
        aw.next_system().await["content"],
        "alice renamed the room to 새 이름"
    );
    http_json(
        a,
        "POST",
        &format!("/api/rooms/{}/join", r.id),
        Some(&carol),
        None,
    )
    .await;
    assert_eq!(aw.next_system().await["content"], "carol joined");
    http_json(
        a,
        "POST",
        &format!("/api/rooms/{}/members/{carol_id}/kick", r.id),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(aw.next_system().await["content"], "alice removed carol");
    http_json(
        a,
        "POST",
        &format!("/api/rooms/{}/leave", r.id),
        Some(&bob),
        None,
    )
    .await;
    let left = aw.next_system().await;
    assert_eq!(
        (left["content"].as_str(), left["type"].as_str()),
        (Some("bob left"), Some("SYSTEM"))
    );
    // Native history has them; contract A's history (no such type there) does not.
    let h = history(&server, &alice, &r.id).await;
    assert_eq!(h.iter().filter(|m| m["type"] == "SYSTEM").count(), 5);
    let (_, a_hist) = http_json(
        a,
        "GET",
        &format!("/chat/history/{}", r.id),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(a_hist, json!([]));
    // They do not count as unread.
    let (_, list) = http_json(a, "GET", "/api/rooms", Some(&alice), None).await;
    assert_eq!(list["rooms"][0]["unreadCount"], 0);
    server.stop().await;
}

both_backends!(
    kicks_and_bans,
    system_messages_for_joins_leaves_kicks_and_renames,
);
