//! Issue 4's behaviour over real WebSocket clients and HTTP, on both backends:
//! contract C, sent/delivered/read across devices, presence, privacy, friends.

use crate::common;

use std::time::Duration;

use common::{Stomp, TestServer, http_json, signup};
use ieum_stomp::{Command, Frame};
use ieum_test_support::{TestDb, both_backends};
use serde_json::json;

async fn direct_room(server: &TestServer, token: &str, peer: &str) -> String {
    let (s, room) = http_json(
        server.addr,
        "POST",
        "/api/rooms/direct",
        Some(token),
        Some(json!({"userId": peer})),
    )
    .await;
    assert_eq!(s, 200, "{room}");
    room["id"].as_str().unwrap().to_owned()
}

/// Two devices for alice, one for bob: bob's message is sent (RECEIPT), then
/// delivered (alice's device got it), then read (alice read it on one device);
/// the unread count is zero for both of alice's devices.
async fn sent_delivered_read_in_order_across_devices(db: TestDb) {
    let server = TestServer::start(&db).await;
    let (alice, alice_id) = signup(&server, "alice").await;
    let (bob, bob_id) = signup(&server, "bob").await;
    let room = direct_room(&server, &alice, &bob_id).await;
    let topic = format!("/topic/rooms/{room}");
    let mut phone = Stomp::connect(&server.ws_url(), &alice).await;
    phone.subscribe("s", &topic, &[]).await;
    let mut laptop = Stomp::connect(&server.ws_url(), &alice).await;
    laptop.subscribe("s", &topic, &[]).await;
    let mut b = Stomp::connect(&server.ws_url(), &bob).await;
    b.subscribe("s", &topic, &[]).await;

    b.send_json(
        &format!("/app/rooms/{room}/messages"),
        &json!({"content": "밥 먹었어?"}),
        Some("m1"),
        &[],
    )
    .await;
    let receipt = b.expect_receipt("m1").await; // sent
    let seq: i64 = receipt.get("seq").unwrap().parse().unwrap();
    let (_, msg) = phone.next_message().await;
    assert_eq!(msg["content"], "밥 먹었어?");
    let (_, msg2) = laptop.next_message().await;
    assert_eq!(msg2["id"], msg["id"], "every device gets it");

    let (_, delivered) = b.next_event("delivered").await;
    assert_eq!(
        (delivered["userId"].as_str(), delivered["seq"].as_i64()),
        (Some(alice_id.as_str()), Some(seq))
    );
    let (_, list) = http_json(server.addr, "GET", "/api/rooms", Some(&alice), None).await;
    assert_eq!(list["rooms"][0]["unreadCount"], 1);

    phone
        .send_json(
            &format!("/app/rooms/{room}/read"),
            &json!({"seq": seq}),
            Some("rd"),
            &[],
        )
        .await;
    let r = phone.expect_receipt("rd").await;
    assert_eq!(r.get("last-read-seq"), Some(seq.to_string().as_str()));
    let (_, read) = b.next_event("read").await; // read, after delivered
    assert_eq!(read["userId"], alice_id.as_str());
    assert_eq!(read["seq"], seq);
    assert_eq!(read["messageIds"][0], msg["id"]);
    let (_, on_laptop) = laptop.next_event("read").await;
    assert_eq!(
        on_laptop["userId"],
        alice_id.as_str(),
        "the other device learns the room was read"
    );
    let (_, list) = http_json(server.addr, "GET", "/api/rooms", Some(&alice), None).await;
    assert_eq!(list["rooms"][0]["unreadCount"], 0);
    server.stop().await;
}

/// USER_CONNECTED on the first device, USER_DISCONNECTED only when the last one
/// goes, also when it dies without DISCONNECT (heart-beat timeout).
async fn presence_counts_devices_and_notices_dead_ones(db: TestDb) {
    let server = TestServer::start_with(&db, |s| s.stomp_heartbeat_ms = Some(300)).await;
    let (alice, alice_id) = signup(&server, "alice").await;
    let (bob, bob_id) = signup(&server, "bob").await;
    let room = direct_room(&server, &alice, &bob_id).await;
    let topic = format!("/topic/rooms/{room}");
    let mut b = Stomp::connect(&server.ws_url(), &bob).await;
    b.subscribe("s", &topic, &[]).await;

    let phone = Stomp::connect(&server.ws_url(), &alice).await;
    let (_, p) = b.next_event("presence").await;
    assert_eq!(
        (p["userId"].as_str(), p["online"].as_bool()),
        (Some(alice_id.as_str()), Some(true))
    );
    let (s, view) = http_json(
        server.addr,
        "GET",
        &format!("/api/users/{alice_id}/presence"),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!((s, view["online"].as_bool()), (200, Some(true)));

    // A second device that speaks heart-beats and then goes silent.
    let mut laptop = Stomp::open(&server.ws_url()).await;
    laptop
        .send_frame(
            &Frame::new(Command::Connect)
                .header("accept-version", "1.2")
                .header("heart-beat", "300,0")
                .header("Authorization", format!("Bearer {alice}")),
        )
        .await;
    assert_eq!(laptop.recv().await.unwrap().command, Command::Connected);
    phone.disconnect().await;
    // The laptop still counts: no offline event yet. Its silence ends it (> 600 ms).
    let (_, p) = b.next_event("presence").await;
    assert_eq!(
        p["online"], false,
        "offline only after the last device died"
    );
    let (_, view) = http_json(
        server.addr,
        "GET",
        &format!("/api/users/{alice_id}/presence"),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(view["online"], false);
    assert!(view["lastSeenAt"].is_string());
    drop(laptop);
    server.stop().await;
}

/// A user sees no presence or typing from someone they share no room with.
async fn strangers_see_no_presence_or_typing(db: TestDb) {
    let server = TestServer::start(&db).await;
    let (alice, _) = signup(&server, "alice").await;
    let (_bob, bob_id) = signup(&server, "bob").await;
    let (eve, _) = signup(&server, "eve").await;
    let (eve_id, room) = {
        let (_, me) = http_json(server.addr, "GET", "/api/me", Some(&eve), None).await;
        (
            me["id"].as_str().unwrap().to_owned(),
            direct_room(&server, &alice, &bob_id).await,
        )
    };
    let (_, eve_room) = http_json(
        server.addr,
        "POST",
        "/api/rooms",
        Some(&eve),
        Some(json!({"name": "eve's"})),
    )
    .await;
    let eve_room = eve_room["id"].as_str().unwrap().to_owned();
    let mut e = Stomp::connect(&server.ws_url(), &eve).await;
    e.subscribe("s", &format!("/topic/rooms/{eve_room}"), &[])
        .await;
    e.subscribe("errs", "/user/queue/errors", &[]).await;
    // Eve cannot even subscribe to their room.
    e.send_frame(
        &Frame::new(Command::Subscribe)
            .header("id", "x")
            .header("destination", format!("/topic/rooms/{room}")),
    )
    .await;
    let (_, err) = e.next_message().await;
    assert_eq!(err["code"], "not_a_member");
    let mut a = Stomp::connect(&server.ws_url(), &alice).await;
    a.send_json(
        &format!("/app/rooms/{room}/typing"),
        &json!({}),
        Some("t"),
        &[],
    )
    .await;
    a.expect_receipt("t").await;
    let frames = e.drain(Duration::from_millis(500)).await;
    assert!(
        frames
            .iter()
            .all(|f| f.get("event") != Some("presence") && f.get("event") != Some("typing")),
        "{frames:?}"
    );
    let (s, _) = http_json(
        server.addr,
        "GET",
        &format!("/api/users/{bob_id}/presence"),
        Some(&eve),
        None,
    )
    .await;
    assert_eq!(s, 404, "presence is private to people who share a room");
    let (s, _) = http_json(
        server.addr,
        "GET",
        &format!("/api/users/{eve_id}/presence"),
        Some(&eve),
        None,
    )
    .await;
    assert_eq!(s, 200, "one's own presence");
    server.stop().await;
}

/// Contract C: REST create/join/leave/messages and the socket.io-style events.
async fn contract_c_rooms_and_events(db: TestDb) {
    let server = TestServer::start(&db).await;
    let a = server.addr;
    let (alice, _) = signup(&server, "alice").await;
    let (bob, bob_id) = signup(&server, "bob").await;
    let mut bob_ws = Stomp::connect(&server.ws_url(), &bob).await;
    bob_ws.subscribe("ev", "/user/queue/events", &[]).await;
    let (_, rooms) = bob_ws.next_event("rooms").await;
    assert_eq!(rooms["event"], "rooms");
    assert_eq!(rooms["data"], json!([]));
    let mut alice_ws = Stomp::connect(&server.ws_url(), &alice).await;
    alice_ws.subscribe("ev", "/user/queue/events", &[]).await;
    alice_ws.next_event("rooms").await;

    // new room: public rooms reach everyone.
    let (s, created) = http_json(
        a,
        "POST",
        "/api/chatrooms/new",
        Some(&alice),
        Some(json!({
            "chatType": "group", "chatName": "수다방", "password": "", "isDirected": false
        })),
    )
    .await;
    assert_eq!(s, 201, "{created}");
    assert_eq!(created["chatName"], "수다방");
    let chat_seq = created["chatSeq"].as_str().unwrap().to_owned();
    let (_, ev) = bob_ws.next_event("room_created").await;
    assert_eq!(
        (ev["event"].as_str(), ev["data"]["chatSeq"].as_str()),
        (Some("new room"), Some(chat_seq.as_str()))
    );

    // Password room: wrong password 403.
    let (_, locked) = http_json(
        a,
        "POST",
        "/api/chatrooms/new",
        Some(&alice),
        Some(json!({
            "chatType": "group", "chatName": "locked", "password": "sesame12", "isDirected": false
        })),
    )
    .await;
    let locked = locked["chatSeq"].as_str().unwrap().to_owned();
    let (s, _) = http_json(
        a,
        "PUT",
        &format!("/api/chatrooms/join/{locked}"),
        Some(&bob),
        Some(json!({"chatSeq": locked, "password": "nope"})),
    )
    .await;
    assert_eq!(s, 403);

    // join room: to the members, the joiner included.
    let (s, joined) = http_json(
        a,
        "PUT",
        &format!("/api/chatrooms/join/{chat_seq}"),
        Some(&bob),
        Some(json!({"chatSeq": chat_seq})),
    )
    .await;
    assert_eq!(s, 200, "{joined}");
    assert_eq!(joined["chatSeq"], chat_seq.as_str());
    for ws in [&mut alice_ws, &mut bob_ws] {
        let (_, ev) = ws.next_event("member_joined").await;
        assert_eq!(
            (ev["event"].as_str(), ev["data"]["userId"].as_str()),
            (Some("join room"), Some(bob_id.as_str()))
        );
    }

    // chat: client -> server over /app/events; server -> every member, sender included.
    bob_ws
        .send_json(
            "/app/events",
            &json!({"event": "chat", "data": {"chatSeq": chat_seq, "message": "안녕하세요"}}),
            Some("c1"),
            &[],
        )
        .await;
    bob_ws.expect_receipt("c1").await;
    for ws in [&mut alice_ws, &mut bob_ws] {
        let (_, ev) = ws.next_event("message").await;
        assert_eq!(ev["event"], "chat");
        assert_eq!(ev["data"]["message"], "안녕하세요");
        assert_eq!(ev["data"]["chatSeq"], chat_seq.as_str());
    }
    for n in 0..4 {
        bob_ws.send_json("/app/events", &json!({"event": "chat", "data": {"chatSeq": chat_seq, "message": format!("m{n}")}}), Some("c"), &[]).await;
        bob_ws.expect_receipt("c").await;
    }
    let (s, page) = http_json(
        a,
        "GET",
        &format!("/api/chatrooms/message/{chat_seq}/-1/3"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let texts: Vec<&str> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["m1", "m2", "m3"]);
    let m1_seq = page[0]["msgSeq"].as_i64().unwrap();
    let (_, page) = http_json(
        a,
        "GET",
        &format!("/api/chatrooms/message/{chat_seq}/{m1_seq}/2"),
        Some(&alice),
        None,
    )
    .await;
    let texts: Vec<&str> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["안녕하세요", "m0"]);

    // user leave: to the members, the leaver included; then the leaver hears no more.
    let (s, _) = http_json(
        a,
        "DELETE",
        &format!("/api/chatrooms/leave/{chat_seq}"),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(s, 204);
    for ws in [&mut alice_ws, &mut bob_ws] {
        let (_, ev) = ws.next_event("member_left").await;
        assert_eq!(
            (ev["event"].as_str(), ev["data"]["userId"].as_str()),
            (Some("user leave"), Some(bob_id.as_str()))
        );
    }
    alice_ws
        .send_json(
            "/app/events",
            &json!({"event": "chat", "data": {"chatSeq": chat_seq, "message": "bye"}}),
            Some("c2"),
            &[],
        )
        .await;
    alice_ws.expect_receipt("c2").await;
    alice_ws.next_event("message").await;
    let frames = bob_ws.drain(Duration::from_millis(400)).await;
    assert!(
        frames.iter().all(|f| f.get("event") != Some("message")),
        "{frames:?}"
    );
    server.stop().await;
}

/// Profiles, friends and blocks; a block closes the direct room.
async fn profiles_friends_and_blocks(db: TestDb) {
    let server = TestServer::start(&db).await;
    let a = server.addr;
    let (alice, alice_id) = signup(&server, "alice").await;
    let (bob, bob_id) = signup(&server, "bob").await;

    let (s, me) = http_json(a, "PATCH", "/api/me", Some(&alice), Some(json!({
        "displayName": "앨리스 🐰", "statusMessage": "오늘도 화이팅", "profileImageUrl": "https://cdn.example/a.png"
    }))).await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(
        (me["displayName"].as_str(), me["statusMessage"].as_str()),
        (Some("앨리스 🐰"), Some("오늘도 화이팅"))
    );
    let (_, me) = http_json(
        a,
        "PATCH",
        "/api/me",
        Some(&alice),
        Some(json!({"statusMessage": null})),
    )
    .await;
    assert!(me["statusMessage"].is_null());
    assert_eq!(me["displayName"], "앨리스 🐰", "absent fields stay");
    let (s, _) = http_json(
        a,
        "PATCH",
        "/api/me",
        Some(&alice),
        Some(json!({"profileImageUrl": "javascript:x"})),
    )
    .await;
    assert_eq!(s, 400);

    let (_, r) = http_json(
        a,
        "POST",
        &format!("/api/friends/{bob_id}"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(r["state"], "requested");
    let (_, reqs) = http_json(a, "GET", "/api/friends/requests", Some(&bob), None).await;
    assert_eq!(reqs["incoming"][0]["id"], alice_id.as_str());
    let (_, r) = http_json(
        a,
        "POST",
        &format!("/api/friends/{alice_id}"),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(r["state"], "friends", "asking back accepts");
    let (_, f) = http_json(a, "GET", "/api/friends", Some(&alice), None).await;
    assert_eq!(f["friends"][0]["username"], "bob");

    let room = direct_room(&server, &alice, &bob_id).await;
    let (s, _) = http_json(
        a,
        "PUT",
        &format!("/api/blocks/{alice_id}"),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (_, f) = http_json(a, "GET", "/api/friends", Some(&alice), None).await;
    assert_eq!(f["friends"], json!([]), "a block ends the friendship");
    let (s, body) = http_json(
        a,
        "POST",
        "/api/rooms/direct",
        Some(&alice),
        Some(json!({"userId": bob_id})),
    )
    .await;
    assert_eq!((s, body["code"].as_str()), (403, Some("blocked")));
    let mut ws = Stomp::connect(&server.ws_url(), &alice).await;
    ws.subscribe("errs", "/user/queue/errors", &[]).await;
    ws.send_json(
        &format!("/app/rooms/{room}/messages"),
        &json!({"content": "hi?"}),
        None,
        &[],
    )
    .await;
    let (_, err) = ws.next_message().await;
    assert_eq!(err["code"], "blocked");
    let (s, _) = http_json(
        a,
        "DELETE",
        &format!("/api/blocks/{alice_id}"),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(s, 204);
    ws.send_json(
        &format!("/app/rooms/{room}/messages"),
        &json!({"content": "hi again"}),
        Some("ok"),
        &[],
    )
    .await;
    ws.expect_receipt("ok").await;
    server.stop().await;
}

both_backends!(
    sent_delivered_read_in_order_across_devices,
    presence_counts_devices_and_notices_dead_ones,
    strangers_see_no_presence_or_typing,
    contract_c_rooms_and_events,
    profiles_friends_and_blocks,
    a_replayed_message_is_delivered,
);

/// A message that reaches the recipient by resume (it was offline when it
/// was sent) counts as delivered too: the sender sees DELIVERED once the
/// replay reaches the device.
async fn a_replayed_message_is_delivered(db: TestDb) {
    let server = TestServer::start(&db).await;
    let (alice, alice_id) = signup(&server, "alice").await;
    let (bob, bob_id) = signup(&server, "bob").await;
    let room = direct_room(&server, &alice, &bob_id).await;
    let topic = format!("/topic/rooms/{room}");
    let mut b = Stomp::connect(&server.ws_url(), &bob).await;
    b.subscribe("s", &topic, &[]).await;
    // Alice is offline while Bob writes.
    b.send_json(
        &format!("/app/rooms/{room}/messages"),
        &json!({"content": "자니?"}),
        Some("m1"),
        &[],
    )
    .await;
    let seq: i64 = b
        .expect_receipt("m1")
        .await
        .get("seq")
        .unwrap()
        .parse()
        .unwrap();
    let mut a = Stomp::connect(&server.ws_url(), &alice).await;
    a.subscribe("s", &topic, &[("last-seq", "0")]).await;
    let (_, replayed) = a.next_message().await;
    assert_eq!(replayed["content"], "자니?");
    let (_, delivered) = b.next_event("delivered").await;
    assert_eq!(
        (delivered["userId"].as_str(), delivered["seq"].as_i64()),
        (Some(alice_id.as_str()), Some(seq))
    );
    server.stop().await;
}
