//! The staff gate: every admin route refuses a member, whatever it is about.

use super::*;

/// A room owner (not staff) calls every admin route with real ids: each
/// answers 403 `not_staff`, and the message, the report, the room and the
/// invites are as they were.
async fn no_member_passes_the_staff_gate(db: TestDb) {
    let server = TestServer::start(&db).await;
    let (owner, owner_id) = signup(&server, "owner").await;
    let (member, member_id) = signup(&server, "chatter").await;
    let (keeper, _) = signup(&server, "keeper").await;
    grant(&db, &server, "keeper", "admin").await;
    let room = common::create_room(server.addr, &owner, "게이트").await;
    common::join_room(server.addr, &member, &room).await;
    let mut ws = Stomp::connect(&server.ws_url(), &member).await;
    ws.subscribe("s", &format!("/topic/rooms/{room}"), &[])
        .await;
    ws.say(&room, "남아 있을 말").await;
    let (_, msg) = ws.next_message().await;
    let msg_id = msg["id"].as_str().unwrap().to_owned();
    let (status, report) = http_json(
        server.addr,
        "POST",
        "/api/reports",
        Some(&owner),
        Some(json!({"messageId": msg_id, "reason": "test"})),
    )
    .await;
    assert_eq!(status, 201, "{report}");
    let report_id = report["id"].as_str().unwrap();
    let (status, invite) = http_json(
        server.addr,
        "POST",
        "/api/admin/invites",
        Some(&keeper),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 201, "{invite}");
    let code = invite["code"].as_str().unwrap();

    let routes = [
        (
            "GET",
            format!("/api/admin/users/{member_id}/suspension"),
            None,
        ),
        (
            "PUT",
            format!("/api/admin/users/{member_id}/suspension"),
            Some(json!({"reason": "x"})),
        ),
        (
            "DELETE",
            format!("/api/admin/users/{member_id}/suspension"),
            Some(json!({"reason": "x"})),
        ),
        (
            "PUT",
            format!("/api/admin/users/{owner_id}/role"),
            Some(json!({"role": "admin"})),
        ),
        ("GET", "/api/admin/audit".to_owned(), None),
        ("GET", "/api/admin/reports".to_owned(), None),
        (
            "POST",
            format!("/api/admin/reports/{report_id}/resolve"),
            Some(json!({"resolution": "dismissed"})),
        ),
        (
            "DELETE",
            format!("/api/admin/messages/{msg_id}"),
            Some(json!({"reason": "x"})),
        ),
        ("GET", "/api/admin/users?q=cha".to_owned(), None),
        ("GET", "/api/admin/rooms".to_owned(), None),
        ("GET", format!("/api/admin/rooms/{room}/messages"), None),
        (
            "POST",
            format!("/api/admin/rooms/{room}/close"),
            Some(json!({"reason": "x"})),
        ),
        ("POST", "/api/admin/invites".to_owned(), Some(json!({}))),
        ("GET", "/api/admin/invites".to_owned(), None),
        ("DELETE", format!("/api/admin/invites/{code}"), None),
    ];
    for (method, path, body) in routes {
        let (status, answer) = http_json(server.addr, method, &path, Some(&owner), body).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (403, Some("not_staff")),
            "{method} {path}: {answer}"
        );
    }
    let (status, me) = http_json(server.addr, "GET", "/api/admin/me", Some(&owner), None).await;
    assert_eq!((status, me["role"].as_str()), (200, Some("member")), "{me}");

    // Nothing moved: the room is open and holds the message, the report
    // waits, the invite is live, the owner has no role.
    ws.say(&room, "아직 열려 있다").await;
    let (_, next) = ws.next_message().await;
    assert_eq!(next["content"], "아직 열려 있다");
    let (status, page) = http_json(
        server.addr,
        "GET",
        &format!("/api/rooms/{room}/messages"),
        Some(&owner),
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.to_string().contains("남아 있을 말"), "{page}");
    let (_, queue) = report_queue(&server, &keeper).await;
    assert_eq!(queue["reports"].as_array().unwrap().len(), 1, "{queue}");
    let (_, invites) = http_json(
        server.addr,
        "GET",
        "/api/admin/invites",
        Some(&keeper),
        None,
    )
    .await;
    assert!(invites.to_string().contains(code), "{invites}");
    let (status, audit) = audit(&server, &keeper, "").await;
    assert_eq!(status, 200);
    // Only what the admin did: the grant, at most, and the invite.
    let done = actions(&audit);
    assert!(done.contains(&"invite.create"), "{audit}");
    assert!(
        done.iter()
            .all(|a| ["role.admin", "invite.create"].contains(a)),
        "a refused call left an audit entry: {audit}"
    );
    server.stop().await;
}
both_backends!(no_member_passes_the_staff_gate);
