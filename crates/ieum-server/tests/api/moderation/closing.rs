//! Staff closing a room.

use super::*;

/// A moderator closes a group room over HTTP: the member's live
/// subscription hears the notice and its end, their SEND is refused, nobody
/// joins again, members keep no seat, and the audit log says who and why.
async fn staff_close_a_room(db: TestDb) {
    let server = TestServer::start(&db).await;
    let (owner, _) = signup(&server, "owner").await;
    let (bob, bob_id) = signup(&server, "bob").await;
    let (moderator, _) = signup(&server, "keeper").await;
    let (late, _) = signup(&server, "late").await;
    grant(&db, &server, "keeper", "moderator").await;
    let room = common::create_room(server.addr, &owner, "spam ring").await;
    let join = format!("/api/rooms/{room}/join");
    let (s, _) = http_json(server.addr, "POST", &join, Some(&bob), None).await;
    assert_eq!(s, 200);
    let mut bw = Stomp::connect(&server.ws_url(), &bob).await;
    bw.subscribe("s", &format!("/topic/rooms/{room}"), &[])
        .await;
    let close = format!("/api/admin/rooms/{room}/close");

    // A room owner is not staff: 403, and nothing happens.
    let (s, body) = http_json(
        server.addr,
        "POST",
        &close,
        Some(&owner),
        Some(json!({"reason": "mine"})),
    )
    .await;
    assert_eq!((s, body["code"].as_str()), (403, Some("not_staff")));

    let (s, body) = http_json(
        server.addr,
        "POST",
        &close,
        Some(&moderator),
        Some(json!({"reason": "spam ring"})),
    )
    .await;
    assert_eq!(s, 204, "{body}");
    let notice = bw.next_system().await;
    assert_eq!(
        notice["content"],
        "The server's moderators closed this room: spam ring"
    );
    // Everyone goes, the owner too; bob hears each until his own.
    loop {
        let (_, ev) = bw.next_event("member_left").await;
        assert_eq!(ev["kicked"], true, "{ev}");
        if ev["userId"] == bob_id.as_str() {
            break;
        }
    }
    bw.send_json(
        &format!("/app/rooms/{room}/messages"),
        &json!({"content": "still here?"}),
        None,
        &[],
    )
    .await;
    // Refused with an ERROR frame (no error queue is subscribed).
    loop {
        let f = bw.recv().await.expect("an answer to the SEND");
        if f.command == ieum_stomp::Command::Error {
            assert_eq!(f.get("code"), Some("not_a_member"), "{f:?}");
            break;
        }
        assert!(
            !String::from_utf8_lossy(&f.body).contains("still here?"),
            "a SEND to a closed room was stored"
        );
    }
    for token in [&bob, &late, &owner] {
        let (s, body) = http_json(server.addr, "POST", &join, Some(token), None).await;
        assert_eq!(
            (s, body["code"].as_str()),
            (403, Some("room_closed")),
            "{body}"
        );
    }
    let (s, body) = http_json(
        server.addr,
        "POST",
        &close,
        Some(&moderator),
        Some(json!({"reason": "again"})),
    )
    .await;
    assert_eq!((s, body["code"].as_str()), (409, Some("room_closed")));

    // The history stays for staff, the notice last.
    let (s, page) = http_json(
        server.addr,
        "GET",
        &format!("/api/admin/rooms/{room}/messages"),
        Some(&moderator),
        None,
    )
    .await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(
        page["messages"][0]["content"],
        "The server's moderators closed this room: spam ring"
    );
    grant(&db, &server, "owner", "admin").await;
    let (_, log) = audit(&server, &owner, "action=room.close").await;
    let entries = log["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{log}");
    assert_eq!(
        (
            entries[0]["targetId"].as_str(),
            entries[0]["reason"].as_str()
        ),
        (Some(room.as_str()), Some("spam ring"))
    );
    server.stop().await;
}

both_backends!(staff_close_a_room);
