//! Rate limits and the password-hashing budget: the attacker is refused, the owner is not.

use super::*;

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

both_backends!(
    parallel_signups_past_the_hash_queue_get_503_at_once,
    parallel_wrong_passwords_are_counted_before_they_are_checked,
    the_owner_logs_in_while_someone_guesses_from_elsewhere,
    a_spoofed_forwarded_for_does_not_escape_the_address_limit,
    read_receipts_past_the_rate_are_refused,
    room_creation_is_limited_per_user,
    signups_from_one_address_are_limited,
    couple_codes_cannot_be_guessed_quickly,
    one_users_sends_are_limited_across_connections,
    http_reactions_are_limited,
);
