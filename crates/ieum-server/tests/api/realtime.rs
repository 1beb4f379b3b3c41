//! The real-time core over real WebSocket clients on loopback, on SQLite and on
//! PostgreSQL: ordered exactly-once delivery, resume without gap, client message
//! id dedupe, and bad input that harms nobody else.

use crate::common;

use std::collections::HashMap;

use common::{Stomp, TestServer, http_json, signup};
use ieum_stomp::{Command, Frame};
use ieum_test_support::{TestDb, both_backends};
use serde_json::json;

async fn make_room(server: &TestServer, token: &str, name: &str) -> String {
    let (s, body) = http_json(
        server.addr,
        "POST",
        "/api/rooms",
        Some(token),
        Some(json!({"name": name})),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn join(server: &TestServer, token: &str, room: &str) {
    let (s, body) = http_json(
        server.addr,
        "POST",
        &format!("/api/rooms/{room}/join"),
        Some(token),
        None,
    )
    .await;
    assert_eq!(s, 200, "{body}");
}

/// 50 clients send 100 messages each into 5 rooms: every subscriber gets every
/// message of its room exactly once, in seq order, and history equals it.
async fn fifty_clients_five_rooms_exactly_once_in_order(db: TestDb) {
    let server = TestServer::start(&db).await;
    let (owner, _) = signup(&server, "owner").await;
    let mut rooms = Vec::new();
    for r in 0..5 {
        rooms.push(make_room(&server, &owner, &format!("방 {r}")).await);
    }
    let mut clients = Vec::new();
    for i in 0..50 {
        let (token, _) = signup(&server, &format!("user{i}")).await;
        let room = rooms[i % 5].clone();
        join(&server, &token, &room).await;
        let mut c = Stomp::connect(&server.ws_url(), &token).await;
        c.subscribe("s", &format!("/topic/rooms/{room}"), &[]).await;
        clients.push((i, room, c));
    }
    // Each client sends its 100 messages (receipts awaited per client), all at once.
    let mut tasks = Vec::new();
    for (i, room, mut c) in clients {
        tasks.push(tokio::spawn(async move {
            let dest = format!("/app/rooms/{room}/messages");
            for n in 0..100 {
                let receipt = format!("r{n}");
                c.send_json(
                    &dest,
                    &json!({"content": format!("{i}:{n} 안녕")}),
                    Some(&receipt),
                    &[],
                )
                .await;
                let r = c.expect_receipt(&receipt).await;
                assert!(r.get("seq").is_some() && r.get("message-id").is_some());
            }
            // Then read until this room's 1000 messages arrived.
            let mut seqs = Vec::new();
            let mut ids = Vec::new();
            while seqs.len() < 1000 {
                let (f, body) = c.next_message().await;
                assert_eq!(f.get("seq").unwrap(), body["seq"].to_string());
                seqs.push(body["seq"].as_i64().unwrap());
                ids.push(body["id"].as_str().unwrap().to_owned());
            }
            let extra: Vec<_> = c
                .drain(std::time::Duration::from_millis(300))
                .await
                .into_iter()
                .filter(|f| f.get("event").is_none_or(|e| e == "message"))
                .collect();
            assert!(extra.is_empty(), "nothing extra: {extra:?}");
            (room, seqs, ids)
        }));
    }
    let mut delivered: HashMap<String, Vec<String>> = HashMap::new();
    for t in tasks {
        let (room, seqs, ids) = t.await.unwrap();
        // Seqs 1..=10 are the SYSTEM messages of the room's ten joins.
        assert_eq!(
            seqs,
            (11..=1010).collect::<Vec<i64>>(),
            "every message once, in seq order"
        );
        match delivered.get(&room) {
            Some(prev) => assert_eq!(prev, &ids, "subscribers of a room see the same stream"),
            None => {
                delivered.insert(room, ids);
            }
        }
    }
    for (room, ids) in delivered {
        let mut history = Vec::new();
        let mut after = 0;
        loop {
            let (s, page) = http_json(
                server.addr,
                "GET",
                &format!("/api/rooms/{room}/messages?after={after}&limit=500"),
                Some(&owner),
                None,
            )
            .await;
            assert_eq!(s, 200);
            let msgs = page["messages"].as_array().unwrap().clone();
            if msgs.is_empty() {
                break;
            }
            after = msgs.last().unwrap()["seq"].as_i64().unwrap();
            history.extend(
                msgs.iter()
                    .filter(|m| m["type"] != "SYSTEM")
                    .map(|m| m["id"].as_str().unwrap().to_owned()),
            );
        }
        assert_eq!(history, ids, "history equals what was delivered");
    }
    server.stop().await;
}

/// Disconnect, 20 messages, reconnect naming the last seq: exactly those 20,
/// then live ones.
async fn resume_after_reconnect_has_no_gap_and_no_duplicate(db: TestDb) {
    let server = TestServer::start(&db).await;
    let (alice, _) = signup(&server, "alice").await;
    let (bob, _) = signup(&server, "bob").await;
    let room = make_room(&server, &alice, "resume").await;
    join(&server, &bob, &room).await;
    let dest = format!("/topic/rooms/{room}");
    let send_dest = format!("/app/rooms/{room}/messages");

    let mut b = Stomp::connect(&server.ws_url(), &bob).await;
    b.subscribe("s", &dest, &[]).await;
    let mut a = Stomp::connect(&server.ws_url(), &alice).await;
    for n in 0..5 {
        a.send_json(
            &send_dest,
            &json!({"content": format!("before {n}")}),
            Some("r"),
            &[],
        )
        .await;
        a.expect_receipt("r").await;
    }
    let mut last = 0;
    for _ in 0..5 {
        last = b.next_message().await.1["seq"].as_i64().unwrap();
    }
    assert_eq!(last, 6, "seq 1 is bob's join");
    b.disconnect().await;

    for n in 0..20 {
        a.send_json(
            &send_dest,
            &json!({"content": format!("missed {n}")}),
            Some("r"),
            &[],
        )
        .await;
        a.expect_receipt("r").await;
    }
    let mut b = Stomp::connect(&server.ws_url(), &bob).await;
    let receipt = b
        .subscribe("s", &dest, &[("last-seq", &last.to_string())])
        .await;
    assert_eq!(receipt.get("last-seq"), Some("26"));
    // Live messages race the replay: send them now.
    for n in 0..3 {
        a.send_json(
            &send_dest,
            &json!({"content": format!("live {n}")}),
            Some("r"),
            &[],
        )
        .await;
        a.expect_receipt("r").await;
    }
    let mut got = Vec::new();
    for _ in 0..23 {
        let (_, m) = b.next_message().await;
        got.push((
            m["seq"].as_i64().unwrap(),
            m["content"].as_str().unwrap().to_owned(),
        ));
    }
    let seqs: Vec<i64> = got.iter().map(|g| g.0).collect();
    assert_eq!(seqs, (7..=29).collect::<Vec<_>>());
    assert_eq!(got[0].1, "missed 0");
    assert_eq!(got[20].1, "live 0");
    let extra: Vec<_> = b
        .drain(std::time::Duration::from_millis(300))
        .await
        .into_iter()
        .filter(|f| f.get("event").is_none_or(|e| e == "message"))
        .collect();
    assert!(extra.is_empty(), "no duplicate: {extra:?}");
    server.stop().await;
}

/// The same client message id sent three times at once: one stored message and
/// three receipts naming it.
async fn same_client_id_three_times_is_stored_once(db: TestDb) {
    let server = TestServer::start(&db).await;
    let (alice, _) = signup(&server, "alice").await;
    let room = make_room(&server, &alice, "dedupe").await;
    let send_dest = format!("/app/rooms/{room}/messages");
    let mut conns = Vec::new();
    for _ in 0..3 {
        conns.push(Stomp::connect(&server.ws_url(), &alice).await);
    }
    let mut tasks = Vec::new();
    for (i, mut c) in conns.into_iter().enumerate() {
        let dest = send_dest.clone();
        tasks.push(tokio::spawn(async move {
            let receipt = format!("r{i}");
            c.send_json(
                &dest,
                &json!({"content": "once"}),
                Some(&receipt),
                &[("client-msg-id", "tmp-42")],
            )
            .await;
            let r = c.expect_receipt(&receipt).await;
            (
                r.get("message-id").unwrap().to_owned(),
                r.get("seq").unwrap().to_owned(),
            )
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
    assert_eq!(ids[0].1, "1");
    let (_, page) = http_json(
        server.addr,
        "GET",
        &format!("/api/rooms/{room}/messages"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 1);
    server.stop().await;
}

/// Each kind of bad input gets an ERROR frame and a close, while another client
/// in the same room keeps chatting, and nothing stored is harmed.
async fn bad_input_gets_an_error_and_harms_nobody(db: TestDb) {
    let server = TestServer::start_with(&db, |s| {
        s.stomp_max_frame_bytes = Some(4096);
        s.stomp_partial_frame_timeout_ms = Some(500);
    })
    .await;
    let (alice, _) = signup(&server, "alice").await;
    let (mallory, _) = signup(&server, "mallory").await;
    let room = make_room(&server, &alice, "safe").await;
    join(&server, &mallory, &room).await;
    let dest = format!("/topic/rooms/{room}");
    let send_dest = format!("/app/rooms/{room}/messages");
    let mut a = Stomp::connect(&server.ws_url(), &alice).await;
    a.subscribe("s", &dest, &[]).await;

    let big = format!("SEND\ndestination:{send_dest}\n\n{}\0", "x".repeat(5000));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "garbage",
            b"\x01\x02garbage\n\n\0".to_vec(),
            "unknown_command",
        ),
        (
            "unknown command",
            b"FLY\ndestination:/x\n\n\0".to_vec(),
            "unknown_command",
        ),
        (
            "no NUL",
            format!("SEND\ndestination:{send_dest}\n\n{{\"content\":\"x\"}}").into_bytes(),
            "missing_nul",
        ),
        ("oversized", big.into_bytes(), "frame_too_large"),
        (
            "bad JSON",
            format!("SEND\ndestination:{send_dest}\nreceipt:r\n\n{{not json\0").into_bytes(),
            "invalid_body",
        ),
        (
            "bad content-length",
            format!("SEND\ndestination:{send_dest}\ncontent-length:2\n\nabc\0").into_bytes(),
            "missing_nul",
        ),
    ];
    for (n, (what, bytes, code)) in cases.into_iter().enumerate() {
        let mut m = Stomp::connect(&server.ws_url(), &mallory).await;
        m.send_raw(&bytes).await;
        let f = m
            .recv()
            .await
            .unwrap_or_else(|| panic!("{what}: closed without ERROR"));
        assert_eq!(f.command, Command::Error, "{what}: {f:?}");
        assert_eq!(f.get("code"), Some(code), "{what}: {f:?}");
        assert!(f.get("message").is_some_and(|m| !m.is_empty()), "{what}");
        assert_eq!(m.recv().await, None, "{what}: closed after ERROR");

        // Alice still chats.
        a.send_json(
            &send_dest,
            &json!({"content": format!("still here {n}")}),
            Some("ok"),
            &[],
        )
        .await;
        a.expect_receipt("ok").await;
        let (_, body) = a.next_message().await;
        assert_eq!(body["content"], format!("still here {n}"));
    }
    // A SEND before CONNECT, and a bad token.
    let mut m = Stomp::open(&server.ws_url()).await;
    m.send_frame(&Frame::new(Command::Send).header("destination", "/x"))
        .await;
    assert_eq!(m.recv().await.unwrap().get("code"), Some("not_connected"));
    let mut m = Stomp::open(&server.ws_url()).await;
    m.send_frame(
        &Frame::new(Command::Connect)
            .header("accept-version", "1.2")
            .header("Authorization", "Bearer nope"),
    )
    .await;
    let f = m.recv().await.unwrap();
    assert_eq!(
        (f.command, f.get("code")),
        (Command::Error, Some("token_invalid"))
    );
    assert_eq!(m.recv().await, None);

    // Non-fatal errors go to /user/queue/errors for clients that listen there.
    let mut m = Stomp::connect(&server.ws_url(), &mallory).await;
    m.subscribe("e", "/user/queue/errors", &[]).await;
    m.send_raw(format!("SEND\ndestination:{send_dest}\n\n{{oops\0").as_bytes())
        .await;
    let (f, body) = m.next_message().await;
    assert_eq!(f.get("destination"), Some("/user/queue/errors"));
    assert_eq!(body["code"], "invalid_body");
    m.send_json(&send_dest, &json!({"content": "fine"}), Some("r"), &[])
        .await;
    m.expect_receipt("r").await;

    // Stored history is intact: the six "still here" and "fine", nothing else.
    let (_, page) = http_json(
        server.addr,
        "GET",
        &format!("/api/rooms/{room}/messages"),
        Some(&alice),
        None,
    )
    .await;
    let contents: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["type"] != "SYSTEM")
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents.len(), 7, "{contents:?}");
    assert_eq!(contents[6], "fine");
    server.stop().await;
}

/// Membership is checked on every SUBSCRIBE and SEND.
async fn strangers_cannot_subscribe_or_send(db: TestDb) {
    let server = TestServer::start(&db).await;
    let (alice, _) = signup(&server, "alice").await;
    let (eve, _) = signup(&server, "eve").await;
    let room = make_room(&server, &alice, "private-ish").await;
    let mut e = Stomp::connect(&server.ws_url(), &eve).await;
    e.subscribe("errs", "/user/queue/errors", &[]).await;
    e.send_frame(
        &Frame::new(Command::Subscribe)
            .header("id", "s")
            .header("destination", format!("/topic/rooms/{room}")),
    )
    .await;
    let (_, body) = e.next_message().await;
    assert_eq!(body["code"], "not_a_member");
    e.send_json(
        &format!("/app/rooms/{room}/messages"),
        &json!({"content": "hi"}),
        None,
        &[],
    )
    .await;
    let (_, body) = e.next_message().await;
    assert_eq!(body["code"], "not_a_member");
    let (s, _) = http_json(
        server.addr,
        "GET",
        &format!("/api/rooms/{room}/messages"),
        Some(&eve),
        None,
    )
    .await;
    assert_eq!(s, 403);
    server.stop().await;
}

both_backends!(
    fifty_clients_five_rooms_exactly_once_in_order,
    resume_after_reconnect_has_no_gap_and_no_duplicate,
    same_client_id_three_times_is_stored_once,
    bad_input_gets_an_error_and_harms_nobody,
    strangers_cannot_subscribe_or_send,
);
