//! Rooms over HTTP (and a slow consumer over WebSocket), on both backends.

use crate::common;

use common::{Stomp, TestServer, http_json, signup};
use ieum_test_support::{TestDb, both_backends};
use serde_json::json;

async fn room_rules_over_http(db: TestDb) {
    let server = TestServer::start(&db).await;
    let a = server.addr;
    let (alice, alice_id) = signup(&server, "alice").await;
    let (bob, bob_id) = signup(&server, "bob").await;
    let (carol, _) = signup(&server, "carol").await;

    // Password room with a member limit of 2.
    let (s, room) = http_json(
        a,
        "POST",
        "/api/rooms",
        Some(&alice),
        Some(json!({
            "name": "비밀 방", "description": "설명", "password": "sesame12", "memberLimit": 2
        })),
    )
    .await;
    assert_eq!(s, 201, "{room}");
    assert_eq!(room["hasPassword"], true);
    assert!(room.get("passwordHash").is_none());
    let id = room["id"].as_str().unwrap().to_owned();
    let (s, body) = http_json(
        a,
        "POST",
        &format!("/api/rooms/{id}/join"),
        Some(&bob),
        Some(json!({"password": "wrong"})),
    )
    .await;
    assert_eq!((s, body["code"].as_str()), (403, Some("wrong_password")));
    let (s, _) = http_json(
        a,
        "POST",
        &format!("/api/rooms/{id}/join"),
        Some(&bob),
        Some(json!({"password": "sesame12"})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, body) = http_json(
        a,
        "POST",
        &format!("/api/rooms/{id}/join"),
        Some(&carol),
        Some(json!({"password": "sesame12"})),
    )
    .await;
    assert_eq!((s, body["code"].as_str()), (409, Some("room_full")));

    // Private room: only with the invite code, which only admins may make.
    let (_, private) = http_json(
        a,
        "POST",
        "/api/rooms",
        Some(&alice),
        Some(json!({"name": "private", "visibility": "private"})),
    )
    .await;
    let pid = private["id"].as_str().unwrap().to_owned();
    let (s, body) = http_json(
        a,
        "POST",
        &format!("/api/rooms/{pid}/join"),
        Some(&carol),
        None,
    )
    .await;
    assert_eq!((s, body["code"].as_str()), (403, Some("private_room")));
    let (s, _) = http_json(a, "GET", &format!("/api/rooms/{pid}"), Some(&carol), None).await;
    assert_eq!(s, 404, "private rooms are invisible to outsiders");
    let (s, code) = http_json(
        a,
        "POST",
        &format!("/api/rooms/{pid}/invite-code"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(s, 201);
    let code = code["inviteCode"].as_str().unwrap().to_owned();
    let (s, body) = http_json(
        a,
        "POST",
        "/api/rooms/join",
        Some(&carol),
        Some(json!({"inviteCode": "NOPE"})),
    )
    .await;
    assert_eq!(
        (s, body["code"].as_str()),
        (404, Some("invalid_invite_code"))
    );
    let (s, _) = http_json(
        a,
        "POST",
        "/api/rooms/join",
        Some(&carol),
        Some(json!({"inviteCode": code})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, body) = http_json(
        a,
        "POST",
        &format!("/api/rooms/{pid}/invite-code"),
        Some(&carol),
        None,
    )
    .await;
    assert_eq!((s, body["code"].as_str()), (403, Some("insufficient_role")));

    // Roles: the owner makes carol admin; carol may now rotate the code.
    let carol_id = http_json(a, "GET", "/api/me", Some(&carol), None).await.1["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, _) = http_json(
        a,
        "PUT",
        &format!("/api/rooms/{pid}/members/{carol_id}/role"),
        Some(&alice),
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = http_json(
        a,
        "POST",
        &format!("/api/rooms/{pid}/invite-code"),
        Some(&carol),
        None,
    )
    .await;
    assert_eq!(s, 201);
    let (_, members) = http_json(
        a,
        "GET",
        &format!("/api/rooms/{pid}/members"),
        Some(&carol),
        None,
    )
    .await;
    let roles: Vec<(String, String)> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["username"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [
            ("alice".into(), "owner".into()),
            ("carol".into(), "admin".into())
        ]
    );

    // The owner leaves: the admin inherits the room.
    let (s, _) = http_json(
        a,
        "POST",
        &format!("/api/rooms/{pid}/leave"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (_, members) = http_json(
        a,
        "GET",
        &format!("/api/rooms/{pid}/members"),
        Some(&carol),
        None,
    )
    .await;
    assert_eq!(members["members"][0]["role"], "owner");

    // Direct rooms: one per pair, the same from both sides.
    let (s, d1) = http_json(
        a,
        "POST",
        "/api/rooms/direct",
        Some(&alice),
        Some(json!({"userId": bob_id})),
    )
    .await;
    assert_eq!(s, 200, "{d1}");
    let (_, d2) = http_json(
        a,
        "POST",
        "/api/rooms/direct",
        Some(&bob),
        Some(json!({"userId": alice_id})),
    )
    .await;
    assert_eq!(d1["id"], d2["id"]);
    assert_eq!(d1["kind"], "direct");
    let (s, body) = http_json(
        a,
        "POST",
        &format!("/api/rooms/{}/join", d1["id"].as_str().unwrap()),
        Some(&carol),
        None,
    )
    .await;
    assert_eq!((s, body["code"].as_str()), (403, Some("direct_room")));

    // Room list: unread counts, last message, favorites first.
    let did = d1["id"].as_str().unwrap().to_owned();
    let mut b = Stomp::connect(&server.ws_url(), &bob).await;
    for n in 0..3 {
        b.send_json(
            &format!("/app/rooms/{did}/messages"),
            &json!({"content": format!("안녕 {n}")}),
            Some("r"),
            &[],
        )
        .await;
        b.expect_receipt("r").await;
    }
    let (_, list) = http_json(a, "GET", "/api/rooms", Some(&alice), None).await;
    let rooms = list["rooms"].as_array().unwrap();
    assert_eq!(rooms[0]["room"]["id"], did.as_str(), "latest message first");
    assert_eq!(rooms[0]["unreadCount"], 3);
    assert_eq!(rooms[0]["lastMessage"]["content"], "안녕 2");
    let (s, read) = http_json(
        a,
        "POST",
        &format!("/api/rooms/{did}/read"),
        Some(&alice),
        Some(json!({"seq": 99})),
    )
    .await;
    assert_eq!(
        (s, read["lastReadSeq"].as_i64()),
        (200, Some(3)),
        "clamped to the newest message"
    );
    let (s, _) = http_json(
        a,
        "PUT",
        &format!("/api/rooms/{id}/favorite"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (_, list) = http_json(a, "GET", "/api/rooms", Some(&alice), None).await;
    let rooms = list["rooms"].as_array().unwrap();
    assert_eq!(rooms[0]["room"]["id"], id.as_str(), "favorite first");
    assert_eq!(rooms[0]["favorite"], true);
    assert_eq!(rooms[1]["unreadCount"], 0);

    // Bad input.
    let (s, body) = http_json(
        a,
        "POST",
        "/api/rooms",
        Some(&alice),
        Some(json!({"name": " "})),
    )
    .await;
    assert_eq!((s, body["code"].as_str()), (400, Some("invalid_room_name")));
    let (s, body) = http_json(
        a,
        "POST",
        "/api/rooms",
        Some(&alice),
        Some(json!({"name": "x", "memberLimit": 100000})),
    )
    .await;
    assert_eq!(
        (s, body["code"].as_str()),
        (400, Some("invalid_member_limit"))
    );
    let (s, body) = http_json(
        a,
        "POST",
        "/api/rooms",
        Some(&alice),
        Some(json!({"name": "x", "bogus": 1})),
    )
    .await;
    assert_eq!((s, body["code"].as_str()), (400, Some("invalid_body")));
    let (s, _) = http_json(a, "GET", "/api/rooms", None, None).await;
    assert_eq!(s, 401);
    server.stop().await;
}

/// A subscriber that stops reading is dropped with an ERROR; the others in its
/// room get every message.
async fn a_slow_consumer_is_dropped_and_never_slows_its_room(db: TestDb) {
    // Big messages, so that the socket buffers between server and client fill up.
    let server = TestServer::start_with(&db, |s| {
        s.ws_outbound_queue = Some(4);
        s.max_message_chars = Some(50_000);
        s.stomp_max_frame_bytes = Some(1024 * 1024);
        s.ws_write_timeout_ms = Some(120_000);
    })
    .await;
    let (alice, _) = signup(&server, "alice").await;
    let (_, room) = http_json(
        server.addr,
        "POST",
        "/api/rooms",
        Some(&alice),
        Some(json!({"name": "r"})),
    )
    .await;
    let room = room["id"].as_str().unwrap().to_owned();
    let dest = format!("/topic/rooms/{room}");
    let mut slow = Stomp::connect(&server.ws_url(), &alice).await;
    slow.subscribe("s", &dest, &[]).await;
    let mut fast = Stomp::connect(&server.ws_url(), &alice).await;
    fast.subscribe("s", &dest, &[]).await;
    let mut sender = Stomp::connect(&server.ws_url(), &alice).await;
    let big = "가".repeat(50_000);
    let total = 300;
    // The fast subscriber reads each message before the next is sent (lockstep),
    // so its queue never holds more than one however slowly this machine runs.
    let (read_tx, mut read_rx) = tokio::sync::mpsc::channel::<()>(1);
    let reader = tokio::spawn(async move {
        let mut n = 0;
        while n < total {
            fast.next_message().await;
            n += 1;
            let _ = read_tx.send(()).await;
        }
        n
    });
    for _ in 0..total {
        sender
            .send_json(
                &format!("/app/rooms/{room}/messages"),
                &json!({"content": big}),
                Some("r"),
                &[],
            )
            .await;
        sender.expect_receipt("r").await;
        read_rx.recv().await.expect("the fast subscriber reads on");
    }
    assert_eq!(
        reader.await.unwrap(),
        total,
        "the fast subscriber got everything"
    );
    // Now the slow one reads what reached it: some messages, then the ERROR, then the close.
    let mut messages = 0;
    let mut error = None;
    while let Some(f) = slow.recv().await {
        match f.command {
            ieum_stomp::Command::Message => messages += 1,
            ieum_stomp::Command::Error => error = Some(f),
            _ => {}
        }
    }
    assert!(messages < total, "dropped before the end ({messages})");
    let error = error.expect("an ERROR frame");
    assert_eq!(error.get("code"), Some("slow_consumer"));
    server.stop().await;
}

both_backends!(
    room_rules_over_http,
    a_slow_consumer_is_dropped_and_never_slows_its_room
);
