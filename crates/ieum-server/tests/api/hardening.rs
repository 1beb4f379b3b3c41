//! Issue 13's findings, each written as the attack: the attacker fails with a
//! clear code and the other users see no difference. Real server, real
//! WebSocket and HTTP clients; SQLite and PostgreSQL where storage matters.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{SECRET, Stomp, TestServer, WAIT, http_json, signup};
use ieum_domain::ports::{AccessClaims, TokenCodec};
use ieum_test_support::{TestDb, both_backends};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An HTTP call with extra headers; answers status, headers (lower-case) and JSON.
async fn http_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (u16, Vec<(String, String)>, Value) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut raw))
        .await
        .expect("answer in time")
        .unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, payload) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (
        status,
        headers,
        serde_json::from_str(payload).unwrap_or(Value::Null),
    )
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn creds(username: &str, password: &str) -> Option<Value> {
    Some(json!({"username": username, "password": password}))
}

async fn create_room(server: &TestServer, token: &str, body: Value) -> (u16, Value) {
    http_json(server.addr, "POST", "/api/rooms", Some(token), Some(body)).await
}

/// A raw WebSocket upgrade to /ws/chat; the stream after the 101.
async fn raw_upgrade(addr: SocketAddr) -> tokio::net::TcpStream {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        b"GET /ws/chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Protocol: v12.stomp\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    s
}

/// A masked client frame header (and mask key) announcing `len` bytes.
fn frame_header(opcode: u8, len: u64) -> Vec<u8> {
    let mut h = vec![0x80 | opcode];
    if len < 126 {
        h.push(0x80 | len as u8);
    } else if len <= u64::from(u16::MAX) {
        h.push(0x80 | 126);
        h.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        h.push(0x80 | 127);
        h.extend_from_slice(&len.to_be_bytes());
    }
    h.extend_from_slice(&[0, 0, 0, 0]);
    h
}

/// Reads server frames until a close frame; its close code (None: the
/// connection ended without one).
async fn close_code(s: &mut tokio::net::TcpStream) -> Option<u16> {
    let read = async {
        loop {
            let mut h = [0u8; 2];
            s.read_exact(&mut h).await.ok()?;
            let len = match h[1] & 0x7f {
                126 => {
                    let mut b = [0u8; 2];
                    s.read_exact(&mut b).await.ok()?;
                    u64::from(u16::from_be_bytes(b))
                }
                127 => {
                    let mut b = [0u8; 8];
                    s.read_exact(&mut b).await.ok()?;
                    u64::from_be_bytes(b)
                }
                n => u64::from(n),
            };
            let mut payload = vec![0u8; len as usize];
            s.read_exact(&mut payload).await.ok()?;
            if h[0] & 0x0f == 0x8 {
                return Some(u16::from_be_bytes([payload[0], payload[1]]));
            }
        }
    };
    tokio::time::timeout(WAIT, read)
        .await
        .expect("closed in time")
}

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

// 2. Unbounded parallel password hashing.
async fn parallel_signups_past_the_hash_queue_get_503_at_once(db: TestDb) {
    let server = TestServer::start_with(&db, |s| {
        s.argon2_memory_kib = Some(4096);
        s.argon2_iterations = Some(4);
        s.hash_memory_budget_mib = Some(4);
        s.hash_queue = Some(2);
    })
    .await;
    let addr = server.addr;
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            tokio::spawn(async move {
                http_with(
                    addr,
                    "POST",
                    "/auth/signup",
                    None,
                    creds(&format!("burst{i:03}"), "testpass"),
                    &[],
                )
                .await
            })
        })
        .collect();
    let (mut created, mut busy) = (0, 0);
    for t in tasks {
        let (status, headers, body) = t.await.unwrap();
        match status {
            201 => created += 1,
            503 => {
                busy += 1;
                assert_eq!(header(&headers, "retry-after"), Some("1"), "{body}");
                assert_eq!(body["success"], false, "{body}");
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    // One hash runs and two wait at any time: most of a burst is refused.
    assert!(busy > 0 && created >= 3, "created {created}, busy {busy}");
    // Once the burst is over, sign-up and login work as before.
    signup(&server, "afterwards").await;
    server.stop().await;
}

// 3 and 11. Parallel guesses; the owner is not locked out.
async fn parallel_wrong_passwords_are_counted_before_they_are_checked(db: TestDb) {
    let server = TestServer::start_with(&db, |s| {
        s.login_max_failures_per_user_client = Some(5);
        s.login_max_failures_per_client = Some(1000);
    })
    .await;
    signup(&server, "victim").await;
    let addr = server.addr;
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            tokio::spawn(async move {
                http_with(
                    addr,
                    "POST",
                    "/auth/login",
                    None,
                    creds("victim", "guess1234"),
                    &[],
                )
                .await
                .0
            })
        })
        .collect();
    let mut checked = 0;
    for t in tasks {
        match t.await.unwrap() {
            401 => checked += 1,
            429 => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(checked, 5, "only the reserved attempts reach the hash");
    server.stop().await;
}

async fn the_owner_logs_in_while_someone_guesses_from_elsewhere(db: TestDb) {
    let server = TestServer::start_with(&db, |s| {
        s.trust_proxy_headers = Some(true);
        s.login_max_failures_per_user_client = Some(3);
    })
    .await;
    signup(&server, "victim").await;
    let attacker = [("X-Forwarded-For", "203.0.113.9")];
    for _ in 0..10 {
        let (s, _, _) = http_with(
            server.addr,
            "POST",
            "/auth/login",
            None,
            creds("victim", "guess1234"),
            &attacker,
        )
        .await;
        assert!(s == 401 || s == 429, "{s}");
    }
    let (s, _, body) = http_with(
        server.addr,
        "POST",
        "/auth/login",
        None,
        creds("victim", "testpass"),
        &attacker,
    )
    .await;
    assert_eq!(
        s, 429,
        "the guessing address waits even with the right password"
    );
    assert_eq!(body["success"], false);
    let (s, _, body) = http_with(
        server.addr,
        "POST",
        "/auth/login",
        None,
        creds("victim", "testpass"),
        &[("X-Forwarded-For", "198.51.100.20")],
    )
    .await;
    assert_eq!(s, 200, "the owner, elsewhere, gets in: {body}");
    server.stop().await;
}

// 4. The client address behind the proxy.
async fn a_spoofed_forwarded_for_does_not_escape_the_address_limit(db: TestDb) {
    let server = TestServer::start_with(&db, |s| {
        s.trust_proxy_headers = Some(true);
        s.login_max_failures_per_client = Some(3);
    })
    .await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        // The client writes the left-most entry; nginx appends what it saw.
        let spoofed = format!("10.{i}.{i}.{i}, 203.0.113.9");
        let (s, _, body) = http_with(
            server.addr,
            "POST",
            "/auth/login",
            None,
            creds(&format!("user{i}"), "guess1234"),
            &[("X-Forwarded-For", &spoofed)],
        )
        .await;
        if s == 429 {
            assert_eq!(body["success"], false);
        }
        statuses.push(s);
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429, 429]);
    server.stop().await;
}

// 5. Read receipts.
async fn read_receipts_past_the_rate_are_refused(db: TestDb) {
    let server = TestServer::start_with(&db, |s| s.read_rate = Some(3)).await;
    let (alice, _) = signup(&server, "alice").await;
    let (bob, _) = signup(&server, "bob").await;
    let (_, room) = create_room(&server, &alice, json!({"name": "reads"})).await;
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
    bob_ws.subscribe("e", "/user/queue/errors", &[]).await;
    let read = format!("/app/rooms/{id}/read");
    for i in 0..20 {
        bob_ws
            .send_json(&read, &json!({"seq": 0}), Some(&format!("r{i}")), &[])
            .await;
    }
    let (mut ok, mut refused) = (0, 0);
    while ok + refused < 20 {
        let f = bob_ws.recv().await.expect("open");
        match f.command {
            ieum_stomp::Command::Receipt => ok += 1,
            ieum_stomp::Command::Message => {
                let v: Value = serde_json::from_slice(&f.body).unwrap();
                assert_eq!(v["code"], "read_rate_limited", "{v}");
                refused += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    // A window is one second: at most two windows' worth pass.
    assert!(ok <= 6 && refused >= 14, "ok {ok}, refused {refused}");
    server.stop().await;
}

// 6. Room creation, also through contract A's auto-create.
async fn room_creation_is_limited_per_user(db: TestDb) {
    let server = TestServer::start_with(&db, |s| s.rooms_per_hour = Some(2)).await;
    let (mallory, _) = signup(&server, "mallory").await;
    let (alice, _) = signup(&server, "alice").await;
    for i in 0..2 {
        let (s, _) = create_room(&server, &mallory, json!({"name": format!("r{i}")})).await;
        assert_eq!(s, 201);
    }
    let (s, body) = create_room(&server, &mallory, json!({"name": "one too many"})).await;
    assert_eq!(
        (s, body["code"].as_str()),
        (429, Some("room_create_rate_limited"))
    );
    let mut ws = Stomp::connect(&server.ws_url(), &mallory).await;
    ws.subscribe("e", "/user/queue/errors", &[]).await;
    ws.send_json(
        "/app/chat.send",
        &json!({"roomId": "auto-made-1", "message": "hi"}),
        None,
        &[],
    )
    .await;
    let (_, err) = ws.next_message().await;
    assert_eq!(err["code"], "room_create_rate_limited", "{err}");
    // Alice is not affected.
    let (s, _) = create_room(&server, &alice, json!({"name": "mine"})).await;
    assert_eq!(s, 201);
    server.stop().await;
}

// 7. Sign-up per address.
async fn signups_from_one_address_are_limited(db: TestDb) {
    let server = TestServer::start_with(&db, |s| {
        s.trust_proxy_headers = Some(true);
        s.signups_per_hour_per_client = Some(2);
    })
    .await;
    let from = |a: &'static str| [("X-Forwarded-For", a)];
    let mut statuses = Vec::new();
    for i in 0..3 {
        let (s, h, _) = http_with(
            server.addr,
            "POST",
            "/auth/signup",
            None,
            creds(&format!("bot{i}"), "testpass"),
            &from("203.0.113.9"),
        )
        .await;
        if s == 429 {
            assert!(header(&h, "retry-after").is_some());
        }
        statuses.push(s);
    }
    assert_eq!(statuses, [201, 201, 429]);
    let (s, _, _) = http_with(
        server.addr,
        "POST",
        "/auth/signup",
        None,
        creds("human", "testpass"),
        &from("198.51.100.20"),
    )
    .await;
    assert_eq!(s, 201);
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

// 9. The lower findings.
async fn a_leaver_cannot_read_a_later_message_as_a_thread_parent(db: TestDb) {
    let server = TestServer::start(&db).await;
    let a = server.addr;
    let (alice, _) = signup(&server, "alice").await;
    let (bob, _) = signup(&server, "bob").await;
    let (_, room) = create_room(&server, &alice, json!({"name": "threads"})).await;
    let id = room["id"].as_str().unwrap().to_owned();
    http_json(
        a,
        "POST",
        &format!("/api/rooms/{id}/join"),
        Some(&bob),
        None,
    )
    .await;
    http_json(
        a,
        "PATCH",
        &format!("/api/rooms/{id}"),
        Some(&alice),
        Some(json!({"historyVisibility": "until_leave"})),
    )
    .await;
    http_json(
        a,
        "POST",
        &format!("/api/rooms/{id}/leave"),
        Some(&bob),
        None,
    )
    .await;
    let mut alice_ws = Stomp::connect(&server.ws_url(), &alice).await;
    alice_ws
        .send_json(
            &format!("/app/rooms/{id}/messages"),
            &json!({"content": "after bob left"}),
            Some("s"),
            &[],
        )
        .await;
    let r = alice_ws.expect_receipt("s").await;
    let msg = r.get("message-id").unwrap().to_owned();
    let path = format!("/api/rooms/{id}/messages/{msg}/thread");
    let (s, body) = http_json(a, "GET", &path, Some(&bob), None).await;
    assert_eq!(
        (s, body["code"].as_str()),
        (404, Some("message_not_found")),
        "{body}"
    );
    let (s, _) = http_json(a, "GET", &path, Some(&alice), None).await;
    assert_eq!(s, 200);
    server.stop().await;
}

async fn whoever_opens_a_direct_room_cannot_rule_it(db: TestDb) {
    let server = TestServer::start(&db).await;
    let a = server.addr;
    let (alice, _) = signup(&server, "alice").await;
    let (_, bob_id) = signup(&server, "bob").await;
    let (s, room) = http_json(
        a,
        "POST",
        "/api/rooms/direct",
        Some(&alice),
        Some(json!({"userId": bob_id})),
    )
    .await;
    assert!(s == 200 || s == 201, "{room}");
    let id = room["id"].as_str().unwrap().to_owned();
    let (s, body) = http_json(
        a,
        "POST",
        &format!("/api/rooms/{id}/members/{bob_id}/ban"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(
        (s, body["code"].as_str()),
        (403, Some("direct_room")),
        "{body}"
    );
    let (s, body) = http_json(
        a,
        "PATCH",
        &format!("/api/rooms/{id}"),
        Some(&alice),
        Some(json!({"historyVisibility": "none"})),
    )
    .await;
    assert_eq!(
        (s, body["code"].as_str()),
        (403, Some("direct_room")),
        "{body}"
    );
    server.stop().await;
}

async fn the_nul_character_is_refused_alike_on_every_backend(db: TestDb) {
    let server = TestServer::start(&db).await;
    let a = server.addr;
    let (alice, _) = signup(&server, "alice").await;
    let (_, room) = create_room(&server, &alice, json!({"name": "nul"})).await;
    let id = room["id"].as_str().unwrap().to_owned();
    let (s, body) = http_json(
        a,
        "PATCH",
        &format!("/api/rooms/{id}"),
        Some(&alice),
        Some(json!({"description": "a\u{0}b"})),
    )
    .await;
    assert_eq!(
        (s, body["code"].as_str()),
        (400, Some("nul_character")),
        "{body}"
    );
    let (s, body) = http_json(
        a,
        "POST",
        "/api/couples/join",
        Some(&alice),
        Some(json!({"code": "AB\u{0}CD"})),
    )
    .await;
    assert_eq!(
        (s, body["code"].as_str()),
        (400, Some("nul_character")),
        "{body}"
    );
    let (s, body) = http_json(a, "GET", "/chat/history/room%00x", Some(&alice), None).await;
    assert_eq!(
        (s, body["code"].as_str()),
        (400, Some("nul_character")),
        "{body}"
    );
    let mut ws = Stomp::connect(&server.ws_url(), &alice).await;
    ws.subscribe("e", "/user/queue/errors", &[]).await;
    let dest = format!("/app/rooms/{id}/messages");
    ws.send_json(&dest, &json!({"content": "x\u{0}y"}), None, &[])
        .await;
    let (_, err) = ws.next_message().await;
    assert_eq!(err["code"], "nul_character", "{err}");
    // Nothing was stored, and the room works.
    ws.send_json(&dest, &json!({"content": "clean"}), Some("ok"), &[])
        .await;
    let r = ws.expect_receipt("ok").await;
    assert_eq!(r.get("seq"), Some("1"), "the refused message took no seq");
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

async fn couple_codes_cannot_be_guessed_quickly(db: TestDb) {
    let server = TestServer::start_with(&db, |s| s.couple_code_tries_per_user = Some(3)).await;
    let (mallory, _) = signup(&server, "mallory").await;
    let mut statuses = Vec::new();
    for i in 0..5 {
        let (s, body) = http_json(
            server.addr,
            "POST",
            "/api/couples/join",
            Some(&mallory),
            Some(json!({"code": format!("GUESS00{i}")})),
        )
        .await;
        if s == 429 {
            assert_eq!(body["code"], "couple_code_rate_limited");
        }
        statuses.push(s);
    }
    assert_eq!(statuses, [404, 404, 404, 429, 429]);
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
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "13"),
        ],
    )
    .await;
    assert_eq!(s, 401);
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

async fn one_users_sends_are_limited_across_connections(db: TestDb) {
    let server = TestServer::start_with(&db, |s| s.user_send_rate = Some(4)).await;
    let (alice, _) = signup(&server, "alice").await;
    let (_, room) = create_room(&server, &alice, json!({"name": "flood"})).await;
    let dest = format!("/app/rooms/{}/messages", room["id"].as_str().unwrap());
    let mut conns = Vec::new();
    for _ in 0..5 {
        let mut ws = Stomp::connect(&server.ws_url(), &alice).await;
        ws.subscribe("e", "/user/queue/errors", &[]).await;
        conns.push(ws);
    }
    for ws in conns.iter_mut() {
        for i in 0..4 {
            ws.send_json(
                &dest,
                &json!({"content": "spam"}),
                Some(&format!("s{i}")),
                &[],
            )
            .await;
        }
    }
    let (mut stored, mut refused) = (0, 0);
    for ws in conns.iter_mut() {
        for _ in 0..4 {
            let f = ws.recv().await.expect("open");
            if f.command == ieum_stomp::Command::Receipt {
                stored += 1;
            } else {
                let v: Value = serde_json::from_slice(&f.body).unwrap();
                assert_eq!(v["code"], "send_rate_limited", "{v}");
                refused += 1;
            }
        }
    }
    // 20 sends over five connections: at most two one-second windows of 4.
    assert!(
        stored <= 8 && refused >= 12,
        "stored {stored}, refused {refused}"
    );
    server.stop().await;
}

async fn http_reactions_are_limited(db: TestDb) {
    let server = TestServer::start_with(&db, |s| s.reaction_rate = Some(2)).await;
    let (alice, _) = signup(&server, "alice").await;
    let (_, room) = create_room(&server, &alice, json!({"name": "reactions"})).await;
    let id = room["id"].as_str().unwrap().to_owned();
    let mut ws = Stomp::connect(&server.ws_url(), &alice).await;
    ws.send_json(
        &format!("/app/rooms/{id}/messages"),
        &json!({"content": "react to me"}),
        Some("s"),
        &[],
    )
    .await;
    let msg = ws
        .expect_receipt("s")
        .await
        .get("message-id")
        .unwrap()
        .to_owned();
    let mut codes = Vec::new();
    for emoji in ["a", "b", "c", "d", "e", "f"] {
        let (s, body) = http_json(
            server.addr,
            "PUT",
            &format!("/api/rooms/{id}/messages/{msg}/reactions/{emoji}"),
            Some(&alice),
            None,
        )
        .await;
        codes.push((s, body["code"].as_str().map(str::to_owned)));
    }
    let limited = codes
        .iter()
        .filter(|(s, c)| *s == 429 && c.as_deref() == Some("reaction_rate_limited"))
        .count();
    assert!(limited >= 2, "{codes:?}");
    server.stop().await;
}

async fn pages_say_how_a_browser_may_run_them(db: TestDb) {
    let server = TestServer::start(&db).await;
    let (s, h, _) = http_with(server.addr, "GET", "/", None, None, &[]).await;
    assert_eq!(s, 200);
    let csp = header(&h, "content-security-policy").expect("a CSP");
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'sha256-"),
        "{csp}"
    );
    assert_eq!(header(&h, "x-frame-options"), Some("DENY"));
    assert_eq!(header(&h, "x-content-type-options"), Some("nosniff"));
    server.stop().await;
}

async fn names_refuse_invisible_spoofing_characters(db: TestDb) {
    let server = TestServer::start(&db).await;
    let (alice, _) = signup(&server, "alice").await;
    for name in ["admin\u{202E}nimda", "ad\u{200B}min"] {
        let (s, body) = http_json(
            server.addr,
            "PATCH",
            "/api/me",
            Some(&alice),
            Some(json!({"displayName": name})),
        )
        .await;
        assert_eq!(
            (s, body["code"].as_str()),
            (400, Some("invalid_display_name")),
            "{body}"
        );
        let (s, body) = create_room(&server, &alice, json!({"name": name})).await;
        assert_eq!(
            (s, body["code"].as_str()),
            (400, Some("invalid_room_name")),
            "{body}"
        );
    }
    let (s, body) = create_room(
        &server,
        &alice,
        json!({"name": "ok", "imageUrl": "//evil.example/x.png"}),
    )
    .await;
    assert_eq!(
        (s, body["code"].as_str()),
        (400, Some("invalid_image_url")),
        "{body}"
    );
    server.stop().await;
}

// 10. Files ieum creates.
#[cfg(unix)]
async fn the_database_and_data_dir_are_private(db: TestDb) {
    use std::os::unix::fs::PermissionsExt;
    let server = TestServer::start(&db).await;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&server.data_dir), 0o700);
    if db.url().starts_with("sqlite://") {
        let path = db.url().trim_start_matches("sqlite://");
        let path = std::path::Path::new(path.split('?').next().unwrap());
        assert_eq!(mode(path), 0o600, "{}", path.display());
    }
    server.stop().await;
}

both_backends!(
    a_frame_announcing_more_than_the_budget_is_refused_from_its_header,
    after_connect_the_frame_limit_applies,
    parallel_signups_past_the_hash_queue_get_503_at_once,
    parallel_wrong_passwords_are_counted_before_they_are_checked,
    the_owner_logs_in_while_someone_guesses_from_elsewhere,
    a_spoofed_forwarded_for_does_not_escape_the_address_limit,
    read_receipts_past_the_rate_are_refused,
    room_creation_is_limited_per_user,
    signups_from_one_address_are_limited,
    contract_c_events_follow_a_rejoin_on_the_same_connection,
    a_leaver_cannot_read_a_later_message_as_a_thread_parent,
    whoever_opens_a_direct_room_cannot_rule_it,
    the_nul_character_is_refused_alike_on_every_backend,
    the_typing_throttle_survives_fake_room_ids,
    couple_codes_cannot_be_guessed_quickly,
    a_signed_token_for_a_missing_user_is_refused,
    a_kicked_subscription_id_can_be_used_again,
    one_users_sends_are_limited_across_connections,
    http_reactions_are_limited,
    pages_say_how_a_browser_may_run_them,
    names_refuse_invisible_spoofing_characters,
    the_database_and_data_dir_are_private,
);
