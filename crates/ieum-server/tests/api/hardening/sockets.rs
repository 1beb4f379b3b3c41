//! Sockets before and after CONNECT: frame budgets, tokens, subscriptions, typing.

use super::*;

// 1. Memory without a token.
async fn a_frame_announcing_more_than_the_budget_is_refused_from_its_header(db: TestDb) {
    let server = TestServer::start_with(&db, |s| s.ws_preauth_max_bytes = Some(4096)).await;
    let (alice, _) = signup(&server, "alice").await;
    let mut bystander = Stomp::connect(&server.ws_url(), &alice).await;
    bystander.subscribe("e", "/user/queue/errors", &[]).await;

    // 2^62 bytes announced, nothing of it sent: refused from the 14 header bytes.
    let mut attacker = raw_upgrade(server.addr).await;
    attacker
        .write_all(&frame_header(0x1, 1 << 62))
        .await
        .unwrap();
    assert_eq!(close_code(&mut attacker).await, Some(1009));

    // Over the pre-authentication budget, also refused before its payload.
    let mut attacker = raw_upgrade(server.addr).await;
    attacker.write_all(&frame_header(0x1, 4097)).await.unwrap();
    assert_eq!(close_code(&mut attacker).await, Some(1009));

    // Fragments that add up past the budget.
    let mut attacker = raw_upgrade(server.addr).await;
    let mut bytes = Vec::new();
    for (first, last) in [(true, false), (false, false), (false, false)] {
        let mut h = frame_header(if first { 0x1 } else { 0x0 }, 2000);
        if !last {
            h[0] &= 0x7f;
        }
        bytes.extend_from_slice(&h);
        bytes.extend(std::iter::repeat_n(b'x', 2000));
    }
    let _ = attacker.write_all(&bytes).await;
    assert_eq!(close_code(&mut attacker).await, Some(1009));

    // The bystander did not notice.
    let (s, room) = create_room(&server, &alice, json!({"name": "still fine"})).await;
    assert_eq!(s, 201, "{room}");
    let dest = format!("/app/rooms/{}/messages", room["id"].as_str().unwrap());
    bystander
        .send_json(&dest, &json!({"content": "hi"}), Some("r"), &[])
        .await;
    bystander.expect_receipt("r").await;
    server.stop().await;
}

async fn after_connect_the_frame_limit_applies(db: TestDb) {
    let server = TestServer::start_with(&db, |s| {
        s.ws_preauth_max_bytes = Some(4096);
        s.stomp_max_frame_bytes = Some(8192);
    })
    .await;
    let (alice, _) = signup(&server, "alice").await;
    let mut alice_ws = Stomp::connect(&server.ws_url(), &alice).await;
    // Larger than the pre-authentication budget, within the frame limit.
    let (_, room) = create_room(&server, &alice, json!({"name": "big"})).await;
    let dest = format!("/app/rooms/{}/messages", room["id"].as_str().unwrap());
    alice_ws
        .send_json(
            &dest,
            &json!({"content": "가".repeat(2000)}),
            Some("r"),
            &[],
        )
        .await;
    alice_ws.expect_receipt("r").await;
    server.stop().await;
}

// 8. Contract C events after leave and rejoin on one connection.
async fn contract_c_events_follow_a_rejoin_on_the_same_connection(db: TestDb) {
    let server = TestServer::start(&db).await;
    let a = server.addr;
    let (alice, _) = signup(&server, "alice").await;
    let (bob, _) = signup(&server, "bob").await;
    let (_, created) = http_json(
        a,
        "POST",
        "/api/chatrooms/new",
        Some(&alice),
        Some(
            json!({"chatType": "group", "chatName": "rejoin", "password": "", "isDirected": false}),
        ),
    )
    .await;
    let seq = created["chatSeq"].as_str().unwrap().to_owned();
    let mut bob_ws = Stomp::connect(&server.ws_url(), &bob).await;
    bob_ws.subscribe("ev", "/user/queue/events", &[]).await;
    bob_ws.next_event("rooms").await;
    let join = format!("/api/chatrooms/join/{seq}");
    let (s, _) = http_json(a, "PUT", &join, Some(&bob), Some(json!({"chatSeq": seq}))).await;
    assert_eq!(s, 200);
    bob_ws.next_event("member_joined").await;
    let (s, _) = http_json(
        a,
        "DELETE",
        &format!("/api/chatrooms/leave/{seq}"),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(s, 204);
    bob_ws.next_event("member_left").await;
    let (s, _) = http_json(a, "PUT", &join, Some(&bob), Some(json!({"chatSeq": seq}))).await;
    assert_eq!(s, 200);
    bob_ws.next_event("member_joined").await;
    let mut alice_ws = Stomp::connect(&server.ws_url(), &alice).await;
    alice_ws
        .send_json(
            "/app/events",
            &json!({"event": "chat", "data": {"chatSeq": seq, "message": "welcome back"}}),
            Some("c"),
            &[],
        )
        .await;
    alice_ws.expect_receipt("c").await;
    loop {
        let (_, ev) = bob_ws.next_event("message").await;
        if ev["event"] == "chat" && ev["data"]["message"] == "welcome back" {
            break;
        }
    }
    server.stop().await;
}

async fn the_typing_throttle_survives_fake_room_ids(db: TestDb) {
    // An interval long enough that the 300 fake notices fit in it.
    let server = TestServer::start_with(&db, |s| s.typing_interval_ms = Some(120_000)).await;
    let (alice, _) = signup(&server, "alice").await;
    let (bob, _) = signup(&server, "bob").await;
    let (_, room) = create_room(&server, &alice, json!({"name": "typing"})).await;
    let id = room["id"].as_str().unwrap().to_owned();
    http_json(
        server.addr,
        "POST",
        &format!("/api/rooms/{id}/join"),
        Some(&bob),
        None,
    )
    .await;
    let mut bob_ws = Stomp::connect(&server.ws_url(), &bob).await;
    bob_ws
        .subscribe("r", &format!("/topic/rooms/{id}"), &[])
        .await;
    let mut alice_ws = Stomp::connect(&server.ws_url(), &alice).await;
    alice_ws.subscribe("e", "/user/queue/errors", &[]).await;
    let typing = format!("/app/rooms/{id}/typing");
    alice_ws
        .send_json(&typing, &json!({}), Some("t0"), &[])
        .await;
    alice_ws.expect_receipt("t0").await;
    for i in 0..300 {
        alice_ws
            .send_json(
                &format!("/app/rooms/fake-{i}/typing"),
                &json!({}),
                None,
                &[],
            )
            .await;
    }
    alice_ws
        .send_json(&typing, &json!({}), Some("t1"), &[])
        .await;
    alice_ws.expect_receipt("t1").await;
    let frames = bob_ws.drain(Duration::from_millis(500)).await;
    let typing_events = frames
        .iter()
        .filter(|f| f.get("event") == Some("typing"))
        .count();
    assert_eq!(
        typing_events, 1,
        "the second notice within the interval is dropped"
    );
    server.stop().await;
}

async fn a_signed_token_for_a_missing_user_is_refused(db: TestDb) {
    let server = TestServer::start(&db).await;
    let codec = ieum_auth::JwtCodec::new(SECRET.as_bytes());
    let now = chrono::Utc::now();
    let ghost = codec
        .encode_access(
            &AccessClaims {
                user_id: uuid::Uuid::new_v4(),
                username: "ghost".into(),
                expires_at: now + chrono::Duration::minutes(5),
                family_id: None,
            },
            now,
        )
        .unwrap();
    let (s, body) = create_room(&server, &ghost, json!({"name": "ghost town"})).await;
    assert_eq!(
        (s, body["code"].as_str()),
        (401, Some("unknown_user")),
        "{body}"
    );
    let (s, _, _) = http_with(
        server.addr,
        "GET",
        &format!("/ws/chat?token={ghost}"),
        None,
        None,
        &[
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "13"),
        ],
    )
    .await;
    assert_eq!(s, 401);
    server.stop().await;
}

/// The socket leaves actix's dispatcher at the upgrade (`wsio`): a refused
/// upgrade still gets its whole problem body, and a frame that arrived in
/// the same packet as the upgrade request is read, not lost.
async fn the_socket_changes_hands_at_the_upgrade_without_losing_a_byte(db: TestDb) {
    let server = TestServer::start(&db).await;
    let (alice, _) = signup(&server, "alice").await;

    let (s, headers, body) = http_with(
        server.addr,
        "GET",
        "/ws/chat?token=not-a-token",
        None,
        None,
        &[
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "13"),
        ],
    )
    .await;
    assert_eq!(
        (s, body["code"].as_str()),
        (401, Some("token_invalid")),
        "{body}"
    );
    assert_eq!(
        header(&headers, "content-type"),
        Some("application/problem+json")
    );

    // Handshake and CONNECT in one write: the CONNECT rides in the bytes the
    // HTTP parser read past the request's head.
    let connect = format!(
        "CONNECT\naccept-version:1.2\nhost:ieum\nheart-beat:0,0\nAuthorization:Bearer {alice}\n\n\0"
    );
    let mut bytes =
        b"GET /ws/chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Protocol: v12.stomp\r\n\r\n"
            .to_vec();
    bytes.extend_from_slice(&frame_header(0x1, connect.len() as u64));
    bytes.extend_from_slice(connect.as_bytes());
    let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    s.write_all(&bytes).await.unwrap();
    let read = async {
        let mut got = Vec::new();
        let mut chunk = [0u8; 1024];
        while !String::from_utf8_lossy(&got).contains("CONNECTED") {
            let n = s.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&chunk[..n]);
        }
        String::from_utf8_lossy(&got).into_owned()
    };
    let got = tokio::time::timeout(WAIT, read)
        .await
        .expect("CONNECTED in time");
    assert!(got.starts_with("HTTP/1.1 101"), "{got}");
    assert!(got.contains("user-name:alice"), "{got}");
    server.stop().await;
}

/// actix-http hands every request with `Upgrade: websocket` to the upgrade
/// service: one that is no handshake, or a handshake to a resource that
/// streams (SSE), gets a 400 problem at once, not an answer buffered whole.
async fn an_upgrade_header_does_not_turn_a_stream_into_a_buffer(db: TestDb) {
    let server = TestServer::start(&db).await;
    let (alice, _) = signup(&server, "alice").await;
    let (s, _, body) = http_with(
        server.addr,
        "POST",
        "/api/rooms",
        Some(&alice),
        Some(json!({"name": "not an upgrade"})),
        &[("Upgrade", "websocket")],
    )
    .await;
    assert_eq!(
        (s, body["code"].as_str()),
        (400, Some("not_a_websocket_handshake")),
        "{body}"
    );
    let (s, ticket) = http_json(
        server.addr,
        "POST",
        "/api/events/ticket",
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(s, 201, "{ticket}");
    let (s, headers, body) = http_with(
        server.addr,
        "GET",
        &format!("/api/events?ticket={}", ticket["ticket"].as_str().unwrap()),
        None,
        None,
        &[
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "13"),
        ],
    )
    .await;
    assert_eq!(
        (s, body["code"].as_str()),
        (400, Some("not_a_websocket_handshake")),
        "{body}"
    );
    assert_eq!(header(&headers, "connection"), Some("close"));
    // No room was made by the refused POST.
    let (s, rooms) = http_json(server.addr, "GET", "/api/rooms", Some(&alice), None).await;
    assert_eq!(s, 200);
    assert!(!rooms.to_string().contains("not an upgrade"), "{rooms}");
    server.stop().await;
}

async fn a_kicked_subscription_id_can_be_used_again(db: TestDb) {
    let server = TestServer::start(&db).await;
    let a = server.addr;
    let (alice, _) = signup(&server, "alice").await;
    let (bob, bob_id) = signup(&server, "bob").await;
    let (_, room) = create_room(&server, &alice, json!({"name": "kicks"})).await;
    let id = room["id"].as_str().unwrap().to_owned();
    http_json(
        a,
        "POST",
        &format!("/api/rooms/{id}/join"),
        Some(&bob),
        None,
    )
    .await;
    let mut bob_ws = Stomp::connect(&server.ws_url(), &bob).await;
    let topic = format!("/topic/rooms/{id}");
    bob_ws.subscribe("room", &topic, &[]).await;
    let (s, _) = http_json(
        a,
        "POST",
        &format!("/api/rooms/{id}/members/{bob_id}/kick"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(s, 204);
    bob_ws.next_event("member_left").await;
    let (s, _) = http_json(
        a,
        "POST",
        &format!("/api/rooms/{id}/join"),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(s, 200);
    bob_ws.subscribe("room", &topic, &[]).await;
    server.stop().await;
}

both_backends!(
    a_frame_announcing_more_than_the_budget_is_refused_from_its_header,
    after_connect_the_frame_limit_applies,
    contract_c_events_follow_a_rejoin_on_the_same_connection,
    the_typing_throttle_survives_fake_room_ids,
    a_signed_token_for_a_missing_user_is_refused,
    the_socket_changes_hands_at_the_upgrade_without_losing_a_byte,
    an_upgrade_header_does_not_turn_a_stream_into_a_buffer,
    a_kicked_subscription_id_can_be_used_again,
);
