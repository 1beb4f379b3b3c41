//! Edits, deletes, pins, threads, reactions, mentions, their time windows and self-destruct.

use super::*;

async fn edits_deletes_pins_threads_reactions_mentions(db: TestDb) {
    let server = TestServer::start_with(&db, |_| {}).await;
    let a = server.addr;
    let (alice, alice_id) = signup(&server, "alice").await;
    let (bob, bob_id) = signup(&server, "bob").await;
    let r = room(&server, &alice, &[&bob]).await;
    let mut aw = Stomp::connect(&server.ws_url(), &alice).await;
    let mut bw = Stomp::connect(&server.ws_url(), &bob).await;
    bw.subscribe("s", &format!("/topic/rooms/{}", r.id), &[])
        .await;

    // Emoji and 4-byte UTF-8 survive; a mention of bob is structured data.
    let (m1, _) = send(&mut aw, &r, json!({"content": "안녕 @bob 🧑‍🚀 𝄞"})).await;
    let (_, msg) = bw.next_message().await;
    assert_eq!(msg["content"], "안녕 @bob 🧑‍🚀 𝄞");
    assert_eq!(msg["mentions"], json!([bob_id]));
    let (_, list) = http_json(a, "GET", "/api/rooms", Some(&bob), None).await;
    assert_eq!(list["rooms"][0]["mentionCount"], 1);

    // Edit: author only, history kept, event to subscribers.
    let (s, body) = http_json(
        a,
        "PATCH",
        &format!("/api/rooms/{}/messages/{m1}", r.id),
        Some(&bob),
        Some(json!({"content": "hijack"})),
    )
    .await;
    assert_eq!((s, body["code"].as_str()), (403, Some("not_author")));
    let (s, edited) = http_json(
        a,
        "PATCH",
        &format!("/api/rooms/{}/messages/{m1}", r.id),
        Some(&alice),
        Some(json!({"content": "안녕하세요 @bob"})),
    )
    .await;
    assert_eq!(s, 200, "{edited}");
    assert!(edited["editedAt"].is_string());
    let (_, ev) = bw.next_event("edited").await;
    assert_eq!(
        (ev["messageId"].as_str(), ev["content"].as_str()),
        (Some(m1.as_str()), Some("안녕하세요 @bob"))
    );
    let (_, edits) = http_json(
        a,
        "GET",
        &format!("/api/rooms/{}/messages/{m1}/edits", r.id),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(edits["edits"][0]["content"], "안녕 @bob 🧑‍🚀 𝄞");

    // Threads: replies name a parent; the parent counts them.
    let (reply, _) = send(&mut bw, &r, json!({"content": "답장", "parentId": m1})).await;
    let (_, body) = bw.next_message().await;
    assert_eq!(body["parentId"], m1.as_str());
    assert_eq!(body["type"], "THREAD");
    let (_, th) = http_json(
        a,
        "GET",
        &format!("/api/rooms/{}/messages/{m1}/thread", r.id),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(th["parent"]["replyCount"], 1);
    assert_eq!(th["replies"][0]["id"], reply.as_str());
    bw.subscribe("errs", "/user/queue/errors", &[]).await;
    bw.send_json(
        &r.send,
        &json!({"content": "x", "parentId": reply}),
        Some("bad"),
        &[],
    )
    .await;
    let (_, err) = bw.next_message().await;
    assert_eq!(err["code"], "invalid_parent", "no replies to replies");

    // Reactions: add, list, remove, events.
    let (s, _) = http_json(
        a,
        "PUT",
        &format!("/api/rooms/{}/messages/{m1}/reactions/%F0%9F%91%8D", r.id),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (_, ev) = bw.next_event("reaction").await;
    assert_eq!(
        (ev["emoji"].as_str(), ev["added"].as_bool()),
        (Some("👍"), Some(true))
    );
    http_json(
        a,
        "PUT",
        &format!("/api/rooms/{}/messages/{m1}/reactions/%F0%9F%91%8D", r.id),
        Some(&alice),
        None,
    )
    .await;
    let (_, rs) = http_json(
        a,
        "GET",
        &format!("/api/rooms/{}/messages/{m1}/reactions", r.id),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(rs["reactions"][0]["count"], 2);
    let (s, _) = http_json(
        a,
        "DELETE",
        &format!("/api/rooms/{}/messages/{m1}/reactions/%F0%9F%91%8D", r.id),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let h = history(&server, &alice, &r.id).await;
    let first = h.iter().find(|m| m["id"] == m1.as_str()).unwrap();
    assert_eq!(first["reactions"][0]["userIds"], json!([alice_id]));

    // Pins: a member pins (room default), a SYSTEM message follows; admins-only policy.
    let (s, _) = http_json(
        a,
        "PUT",
        &format!("/api/rooms/{}/pins/{m1}", r.id),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (_, ev) = bw.next_event("pinned").await;
    assert_eq!(ev["event"], "PINNED");
    let sys = bw.next_system().await;
    assert_eq!(sys["type"], "SYSTEM");
    let (_, pins) = http_json(
        a,
        "GET",
        &format!("/api/rooms/{}/pins", r.id),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(pins["pins"][0]["message"]["id"], m1.as_str());
    http_json(
        a,
        "PATCH",
        &format!("/api/rooms/{}", r.id),
        Some(&alice),
        Some(json!({"pinPolicy": "admins"})),
    )
    .await;
    let (s, body) = http_json(
        a,
        "DELETE",
        &format!("/api/rooms/{}/pins/{m1}", r.id),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!((s, body["code"].as_str()), (403, Some("insufficient_role")));

    // Delete: someone else's message only as admin; a tombstone stays in order.
    let (s, body) = http_json(
        a,
        "DELETE",
        &format!("/api/rooms/{}/messages/{m1}", r.id),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!((s, body["code"].as_str()), (403, Some("not_author")));
    let (s, _) = http_json(
        a,
        "DELETE",
        &format!("/api/rooms/{}/messages/{reply}", r.id),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(s, 204, "the owner deletes anyone's message");
    let (_, ev) = bw.next_event("deleted").await;
    assert_eq!(
        (ev["messageId"].as_str(), ev["expired"].as_bool()),
        (Some(reply.as_str()), Some(false))
    );
    let h = history(&server, &alice, &r.id).await;
    let tomb = h.iter().find(|m| m["id"] == reply.as_str()).unwrap();
    assert_eq!(
        (tomb["deleted"].as_bool(), tomb["content"].as_str()),
        (Some(true), Some(""))
    );
    let (_, found) = http_json(
        a,
        "GET",
        "/api/search/messages?q=%EB%8B%B5%EC%9E%A5",
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(found["messages"], json!([]), "deleted content is not found");
    server.stop().await;
}

async fn edit_and_delete_windows_are_enforced(db: TestDb) {
    // Windows of zero: any edit or delete by the author comes too late.
    let server = TestServer::start_with(&db, |s| {
        s.edit_window_secs = Some(0);
        s.delete_window_secs = Some(0);
    })
    .await;
    let (alice, _) = signup(&server, "alice").await;
    let (bob, _) = signup(&server, "bob").await;
    let r = room(&server, &alice, &[&bob]).await;
    let mut bw = Stomp::connect(&server.ws_url(), &bob).await;
    let (m, _) = send(&mut bw, &r, json!({"content": "x"})).await;
    let path = format!("/api/rooms/{}/messages/{m}", r.id);
    let (s, body) = http_json(
        server.addr,
        "PATCH",
        &path,
        Some(&bob),
        Some(json!({"content": "y"})),
    )
    .await;
    assert_eq!(
        (s, body["code"].as_str()),
        (403, Some("edit_window_passed"))
    );
    let (s, body) = http_json(server.addr, "DELETE", &path, Some(&bob), None).await;
    assert_eq!(
        (s, body["code"].as_str()),
        (403, Some("delete_window_passed"))
    );
    let (s, _) = http_json(server.addr, "DELETE", &path, Some(&alice), None).await;
    assert_eq!(s, 204, "room admins delete at any time");
    server.stop().await;
}

async fn self_destruct_is_gone_everywhere_even_across_a_restart(db: TestDb) {
    let server = TestServer::start(&db).await;
    let (alice, _) = signup(&server, "alice").await;
    let (bob, _) = signup(&server, "bob").await;
    let r = room(&server, &alice, &[&bob]).await;
    let mut bw = Stomp::connect(&server.ws_url(), &bob).await;
    bw.subscribe("s", &format!("/topic/rooms/{}", r.id), &[])
        .await;
    let mut aw = Stomp::connect(&server.ws_url(), &alice).await;
    let (m, _) = send(
        &mut aw,
        &r,
        json!({"content": "곧 사라질 비밀", "ttlSeconds": 1}),
    )
    .await;
    let (_, got) = bw.next_message().await;
    assert_eq!(got["type"], "TEMP");
    assert!(got["expiresAt"].is_string());
    let (_, ev) = bw.next_event("deleted").await;
    assert_eq!(
        (ev["messageId"].as_str(), ev["expired"].as_bool()),
        (Some(m.as_str()), Some(true))
    );
    let h = history(&server, &alice, &r.id).await;
    assert_eq!(
        h.iter().find(|x| x["id"] == m.as_str()).unwrap()["content"],
        ""
    );
    let (_, found) = http_json(
        server.addr,
        "GET",
        "/api/search/messages?q=%EB%B9%84%EB%B0%80",
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(found["messages"], json!([]));

    // Sent just before a stop, due while the server is down: gone after the restart.
    let (m2, _) = send(
        &mut aw,
        &r,
        json!({"content": "재시작 후에도 사라짐", "ttlSeconds": 2}),
    )
    .await;
    drop(aw);
    drop(bw);
    server.stop().await;
    let server = TestServer::start(&db).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let h = history(&server, &alice, &r.id).await;
        let m = h.iter().find(|x| x["id"] == m2.as_str()).unwrap();
        if m["deleted"] == true {
            assert_eq!(m["content"], "");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not expired after the restart"
        );
        // Wait for the expiry by watching the room.
        let mut w = Stomp::connect(&server.ws_url(), &alice).await;
        w.subscribe("s", &format!("/topic/rooms/{}", r.id), &[])
            .await;
        let _ = w.recv_within(Duration::from_secs(3)).await;
    }
    server.stop().await;
}

both_backends!(
    edits_deletes_pins_threads_reactions_mentions,
    edit_and_delete_windows_are_enforced,
    self_destruct_is_gone_everywhere_even_across_a_restart,
);
