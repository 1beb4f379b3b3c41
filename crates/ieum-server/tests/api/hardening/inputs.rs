//! Rules and inputs: who may read and rule what, refused characters, pages and files.

use super::*;

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

async fn pages_say_how_a_browser_may_run_them(db: TestDb) {
    let server = TestServer::start(&db).await;
    let (s, h, _) = http_with(server.addr, "GET", "/", None, None, &[]).await;
    assert_eq!(s, 200);
    let csp = header(&h, "content-security-policy").expect("a CSP");
    assert!(
        csp.contains("frame-ancestors 'none'")
            && csp.contains("script-src 'self';")
            && !csp.contains("unsafe"),
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
    a_leaver_cannot_read_a_later_message_as_a_thread_parent,
    whoever_opens_a_direct_room_cannot_rule_it,
    the_nul_character_is_refused_alike_on_every_backend,
    pages_say_how_a_browser_may_run_them,
    names_refuse_invisible_spoofing_characters,
    the_database_and_data_dir_are_private,
);
