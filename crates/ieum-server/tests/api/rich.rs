//! Rich messages and search over real WebSocket clients and HTTP, on both
//! backends.

mod common;

use std::time::Duration;

use common::{Stomp, TestServer, http_json, signup};
use ieum_test_support::{TestDb, both_backends};
use serde_json::{Value, json};

struct Room {
    id: String,
    send: String,
}

async fn room(server: &TestServer, owner: &str, members: &[&str]) -> Room {
    let (_, r) = http_json(
        server.addr,
        "POST",
        "/api/rooms",
        Some(owner),
        Some(json!({"name": "rich"})),
    )
    .await;
    let id = r["id"].as_str().unwrap().to_owned();
    for m in members {
        let (s, _) = http_json(
            server.addr,
            "POST",
            &format!("/api/rooms/{id}/join"),
            Some(m),
            None,
        )
        .await;
        assert_eq!(s, 200);
    }
    Room {
        send: format!("/app/rooms/{id}/messages"),
        id,
    }
}

async fn send(ws: &mut Stomp, room: &Room, body: Value) -> (String, i64) {
    ws.send_json(&room.send, &body, Some("s"), &[]).await;
    let r = ws.expect_receipt("s").await;
    (
        r.get("message-id").unwrap().to_owned(),
        r.get("seq").unwrap().parse().unwrap(),
    )
}

async fn history(server: &TestServer, token: &str, room: &str) -> Vec<Value> {
    let (s, page) = http_json(
        server.addr,
        "GET",
        &format!("/api/rooms/{room}/messages?limit=500"),
        Some(token),
        None,
    )
    .await;
    assert_eq!(s, 200, "{page}");
    page["messages"].as_array().unwrap().clone()
}

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
    let (_, body) = aw_next_for(&mut bw).await;
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

async fn aw_next_for(ws: &mut Stomp) -> (ieum_stomp::Frame, Value) {
    ws.next_message().await
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

async fn search_finds_korean_substrings_and_respects_access(db: TestDb) {
    let server = TestServer::start(&db).await;
    let a = server.addr;
    let (alice, _) = signup(&server, "alice").await;
    let (bob, bob_id) = signup(&server, "bob").await;
    let (eve, _) = signup(&server, "eve").await;
    let r = room(&server, &alice, &[&bob]).await;
    let secret = room(&server, &eve, &[]).await;
    let mut aw = Stomp::connect(&server.ws_url(), &alice).await;
    let mut bw = Stomp::connect(&server.ws_url(), &bob).await;
    let mut ew = Stomp::connect(&server.ws_url(), &eve).await;
    for text in [
        "오늘 날씨가 좋네요",
        "회의록을 공유했어요",
        "Hello World from Seoul",
        "100% 완료_했음 \\ 끝",
        "점심 🍜 먹자 lunch",
    ] {
        send(&mut aw, &r, json!({"content": text})).await;
    }
    send(&mut bw, &r, json!({"content": "bob의 날씨 이야기"})).await;
    send(&mut ew, &secret, json!({"content": "eve의 날씨 비밀"})).await;

    let search = |token: String, q: String| async move {
        let (s, body) = http_json(
            a,
            "GET",
            &format!("/api/search/messages?{q}"),
            Some(&token),
            None,
        )
        .await;
        assert_eq!(s, 200, "{body}");
        body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["content"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let enc = |s: &str| s.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
    assert_eq!(
        search(alice.clone(), format!("q={}", enc("날씨"))).await,
        ["bob의 날씨 이야기", "오늘 날씨가 좋네요"],
        "two-character Korean"
    );
    assert_eq!(
        search(alice.clone(), format!("q={}", enc("회의록"))).await,
        ["회의록을 공유했어요"]
    );
    assert_eq!(
        search(alice.clone(), format!("q={}", enc("날씨가 좋"))).await,
        ["오늘 날씨가 좋네요"]
    );
    assert_eq!(
        search(alice.clone(), "q=hello%20world".into()).await,
        ["Hello World from Seoul"],
        "case-insensitive"
    );
    assert_eq!(
        search(alice.clone(), "q=SEOUL".into()).await,
        ["Hello World from Seoul"]
    );
    assert_eq!(
        search(alice.clone(), format!("q={}", enc("🍜"))).await,
        ["점심 🍜 먹자 lunch"],
        "emoji"
    );
    assert_eq!(
        search(alice.clone(), format!("q={}", enc("🍜 먹자 lun"))).await,
        ["점심 🍜 먹자 lunch"],
        "mixed"
    );
    assert_eq!(
        search(alice.clone(), format!("q={}", enc("100%"))).await,
        ["100% 완료_했음 \\ 끝"],
        "% is text"
    );
    assert_eq!(
        search(alice.clone(), format!("q={}", enc("%"))).await.len(),
        1,
        "% alone is text too"
    );
    assert_eq!(
        search(alice.clone(), format!("q={}", enc("_"))).await.len(),
        1,
        "_ is text"
    );
    assert_eq!(
        search(alice.clone(), format!("q={}", enc("\\")))
            .await
            .len(),
        1,
        "backslash is text"
    );
    assert_eq!(
        search(alice.clone(), format!("q={}", enc("\"'")))
            .await
            .len(),
        0,
        "quotes are text"
    );
    assert_eq!(
        search(
            alice.clone(),
            format!("q={}&senderId={bob_id}", enc("날씨"))
        )
        .await,
        ["bob의 날씨 이야기"],
        "author filter"
    );
    let future = "2999-01-01T00:00:00Z";
    assert!(
        search(alice.clone(), format!("q={}&from={future}", enc("날씨")))
            .await
            .is_empty(),
        "period filter"
    );
    assert_eq!(
        search(
            alice.clone(),
            format!("q={}&to={future}&roomId={}", enc("날씨"), r.id)
        )
        .await
        .len(),
        2
    );
    // Eve's room is not alice's to read, and eve sees none of alice's.
    assert!(
        !search(alice.clone(), format!("q={}", enc("비밀")))
            .await
            .contains(&"eve의 날씨 비밀".to_owned())
    );
    assert_eq!(
        search(eve.clone(), format!("q={}", enc("날씨"))).await,
        ["eve의 날씨 비밀"]
    );
    // Paging with the cursor.
    let (_, p1) = http_json(
        a,
        "GET",
        &format!("/api/search/messages?q={}&limit=1", enc("날씨")),
        Some(&alice),
        None,
    )
    .await;
    let cursor = p1["nextCursor"].as_str().unwrap().to_owned();
    let (_, p2) = http_json(
        a,
        "GET",
        &format!(
            "/api/search/messages?q={}&limit=1&cursor={}",
            enc("날씨"),
            enc(&cursor)
        ),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(p2["messages"][0]["content"], "오늘 날씨가 좋네요");

    // until_leave: after bob leaves, later messages are hidden from him.
    http_json(
        a,
        "PATCH",
        &format!("/api/rooms/{}", r.id),
        Some(&alice),
        Some(json!({"historyVisibility": "until_leave"})),
    )
    .await;
    let (s, _) = http_json(
        a,
        "POST",
        &format!("/api/rooms/{}/leave", r.id),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(s, 204);
    send(&mut aw, &r, json!({"content": "떠난 뒤의 날씨"})).await;
    let bob_sees = search(bob.clone(), format!("q={}", enc("날씨"))).await;
    assert!(bob_sees.contains(&"오늘 날씨가 좋네요".to_owned()));
    assert!(
        !bob_sees.contains(&"떠난 뒤의 날씨".to_owned()),
        "{bob_sees:?}"
    );
    let h = history(&server, &bob, &r.id).await;
    assert!(h.iter().all(|m| m["content"] != "떠난 뒤의 날씨"));
    // none: nothing at all.
    http_json(
        a,
        "PATCH",
        &format!("/api/rooms/{}", r.id),
        Some(&alice),
        Some(json!({"historyVisibility": "none"})),
    )
    .await;
    assert!(
        search(bob.clone(), format!("q={}", enc("날씨")))
            .await
            .is_empty()
    );
    let (s, _) = http_json(
        a,
        "GET",
        &format!("/api/rooms/{}/messages", r.id),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(s, 403);
    // all: everything again.
    http_json(
        a,
        "PATCH",
        &format!("/api/rooms/{}", r.id),
        Some(&alice),
        Some(json!({"historyVisibility": "all"})),
    )
    .await;
    assert!(
        search(bob.clone(), format!("q={}", enc("날씨")))
            .await
            .contains(&"떠난 뒤의 날씨".to_owned())
    );
    let (s, _) = http_json(a, "GET", "/api/search/messages?q=", Some(&alice), None).await;
    assert_eq!(s, 400);
    server.stop().await;
}

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
    system_messages_for_joins_leaves_kicks_and_renames,
    edits_deletes_pins_threads_reactions_mentions,
    edit_and_delete_windows_are_enforced,
    self_destruct_is_gone_everywhere_even_across_a_restart,
    search_finds_korean_substrings_and_respects_access,
    kicks_and_bans,
);
