//! Server-wide moderation over the real HTTP and WebSocket paths (issue
//! 20): the first admin made by the CLI's code, staff suspending and
//! lifting, a suspended user's open socket closed at once, their logins
//! refused, and each action in the audit log with its request id.

use crate::common;
use crate::hardening::http_with;

use std::time::Duration;

use common::{Stomp, TestServer, http_json, signup};
use ieum_server::config::AdminCommand;
use ieum_test_support::{TestDb, both_backends};
use serde_json::{Value, json};

/// `ieum admin grant USERNAME --role ROLE` against the server's database.
async fn grant(db: &TestDb, server: &TestServer, username: &str, role: &str) {
    let config =
        ieum_server::Config::resolve(common::settings(db, server.data_dir.clone())).unwrap();
    ieum_server::app::admin(
        config,
        AdminCommand::Grant {
            username: username.into(),
            role: role.into(),
        },
    )
    .await
    .expect("the grant");
}

async fn login(server: &TestServer, username: &str) -> (u16, Value) {
    http_json(
        server.addr,
        "POST",
        "/auth/login",
        None,
        Some(json!({"username": username, "password": "testpass"})),
    )
    .await
}

/// The `action` of every entry of an audit page, newest first.
fn actions(page: &Value) -> Vec<&str> {
    page["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect()
}

async fn audit(server: &TestServer, token: &str, query: &str) -> (u16, Value) {
    http_json(
        server.addr,
        "GET",
        &format!("/api/admin/audit?{query}"),
        Some(token),
        None,
    )
    .await
}

/// The report queue as `token` sees it.
async fn report_queue(server: &TestServer, token: &str) -> (u16, Value) {
    http_json(server.addr, "GET", "/api/admin/reports", Some(token), None).await
}

async fn staff_suspend_lift_and_every_action_is_audited(db: TestDb) {
    let server = TestServer::start(&db).await;
    let (admin, _) = signup(&server, "boss").await;
    let (moderator, moderator_id) = signup(&server, "keeper").await;
    let (troll, troll_id) = signup(&server, "troll").await;
    grant(&db, &server, "boss", "admin").await;
    grant(&db, &server, "keeper", "moderator").await;
    let (status, role) = http_json(server.addr, "GET", "/api/admin/me", Some(&admin), None).await;
    assert_eq!((status, role["role"].as_str()), (200, Some("admin")));

    // A member gets 403 on every admin route, and nothing happens.
    let suspension = format!("/api/admin/users/{moderator_id}/suspension");
    let role_path = format!("/api/admin/users/{troll_id}/role");
    for (method, path, body) in [
        ("GET", suspension.as_str(), None),
        (
            "PUT",
            suspension.as_str(),
            Some(json!({"reason": "revenge"})),
        ),
        ("DELETE", suspension.as_str(), Some(json!({"reason": "x"}))),
        ("PUT", role_path.as_str(), Some(json!({"role": "admin"}))),
        ("GET", "/api/admin/audit", None),
    ] {
        let (status, body) = http_json(server.addr, method, path, Some(&troll), body).await;
        assert_eq!(status, 403, "{method} {path}: {body}");
        assert_eq!(body["code"], "not_staff", "{method} {path}");
    }
    // A moderator suspends, but reads no audit log and grants no roles.
    let (status, _) = audit(&server, &moderator, "").await;
    assert_eq!(status, 403);

    // The troll is connected; the moderator suspends them for an hour.
    let mut socket = Stomp::connect(&server.ws_url(), &troll).await;
    let until = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let (status, _, body) = http_with(
        server.addr,
        "PUT",
        &format!("/api/admin/users/{troll_id}/suspension"),
        Some(&moderator),
        Some(json!({"until": until, "reason": "spam in every room"})),
        &[("X-Request-Id", "req-suspend-1")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["reason"], "spam in every room");
    // Their open socket ends within 2 s with the code.
    let frame = socket
        .recv_within(Duration::from_secs(2))
        .await
        .expect("the ERROR within 2 s")
        .expect("an ERROR frame before the close");
    assert_eq!(frame.get("code"), Some("suspended"), "{frame:?}");
    assert!(matches!(
        socket.recv_within(Duration::from_secs(2)).await,
        Ok(None)
    ));
    // Their login is refused with the code; their token opens no socket.
    let (status, body) = login(&server, "troll").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.to_string().contains("suspended"), "{body}");
    let mut again = Stomp::open(&server.ws_url()).await;
    again
        .send_raw(
            format!("CONNECT\naccept-version:1.2\nAuthorization:Bearer {troll}\n\n\0").as_bytes(),
        )
        .await;
    let refused = again.recv().await.expect("an ERROR");
    assert_eq!(refused.get("code"), Some("suspended"));
    // Nobody suspends an admin; bad input gets its code.
    let boss_id = http_json(server.addr, "GET", "/api/me", Some(&admin), None)
        .await
        .1["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = http_json(
        server.addr,
        "PUT",
        &format!("/api/admin/users/{boss_id}/suspension"),
        Some(&moderator),
        Some(json!({"reason": "coup"})),
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (403, Some("not_staff")));
    let (status, body) = http_json(
        server.addr,
        "PUT",
        &format!("/api/admin/users/{troll_id}/suspension"),
        Some(&moderator),
        Some(json!({"reason": ""})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_reason"))
    );

    // The admin reads the log: the suspension with who, why and the
    // request id, and the refused login.
    let (status, page) = audit(&server, &admin, &format!("target={troll_id}")).await;
    assert_eq!(status, 200, "{page}");
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(actions(&page), ["security.suspended_login", "user.suspend"]);
    let suspend = &entries[1];
    assert_eq!(suspend["actorId"], moderator_id.as_str());
    assert_eq!(suspend["reason"], "spam in every room");
    assert_eq!(suspend["requestId"], "req-suspend-1");

    // Lifted: they log in again, and the log says so.
    let (status, body) = http_json(
        server.addr,
        "DELETE",
        &format!("/api/admin/users/{troll_id}/suspension"),
        Some(&moderator),
        Some(json!({"reason": "appeal granted"})),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = login(&server, "troll").await;
    assert_eq!(status, 200, "{body}");
    // An empty filter filters nothing.
    let (_, all) = audit(&server, &admin, "action=&target=").await;
    assert!(all["entries"].as_array().unwrap().len() >= 3, "{all}");
    let (_, page) = audit(&server, &admin, "action=user.").await;
    let actions = actions(&page);
    assert_eq!(actions, ["user.lift", "user.suspend"]);
    // Pages: one entry at a time, the cursor leads to the next.
    let (_, first) = audit(&server, &admin, "limit=1").await;
    let next = first["next"].as_str().expect("a cursor").to_owned();
    let (_, second) = audit(&server, &admin, &format!("limit=1&before={next}")).await;
    assert_ne!(first["entries"][0]["id"], second["entries"][0]["id"]);
    server.stop().await;
}

both_backends!(staff_suspend_lift_and_every_action_is_audited);

/// Room admins mute (the member reads, cannot send) and unban (the user
/// joins again), over the real HTTP and STOMP paths; each is audited.
async fn room_admins_mute_and_unban(db: TestDb) {
    let server = TestServer::start(&db).await;
    let (owner, _) = signup(&server, "owner").await;
    let (member, member_id) = signup(&server, "chatter").await;
    let (auditor, _) = signup(&server, "auditor").await;
    grant(&db, &server, "auditor", "admin").await;
    let (status, room) = http_json(
        server.addr,
        "POST",
        "/api/rooms",
        Some(&owner),
        Some(json!({"name": "조용한 방"})),
    )
    .await;
    assert_eq!(status, 201, "{room}");
    let id = room["id"].as_str().unwrap().to_owned();
    let join = format!("/api/rooms/{id}/join");
    assert_eq!(
        http_json(server.addr, "POST", &join, Some(&member), None)
            .await
            .0,
        200
    );

    let mut socket = Stomp::connect(&server.ws_url(), &member).await;
    socket.subscribe("e", "/user/queue/errors", &[]).await;
    let dest = format!("/app/rooms/{id}/messages");
    socket
        .send_json(&dest, &json!({"content": "hello"}), Some("m1"), &[])
        .await;
    socket.expect_receipt("m1").await;

    // Muted for an hour: the SEND is refused with its code; the socket lives.
    let mute = format!("/api/rooms/{id}/members/{member_id}/mute");
    let until = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let (status, body) = http_json(
        server.addr,
        "PUT",
        &mute,
        Some(&owner),
        Some(json!({"until": until})),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    socket
        .send_json(&dest, &json!({"content": "let me talk"}), None, &[])
        .await;
    let (_, err) = socket.next_message().await;
    assert_eq!(err["code"], "muted", "{err}");
    // A member cannot mute the owner.
    let owner_mute = format!(
        "/api/rooms/{id}/members/{}/mute",
        room["createdBy"].as_str().unwrap_or_default()
    );
    let (status, _) = http_json(
        server.addr,
        "PUT",
        &owner_mute,
        Some(&member),
        Some(json!({"until": until})),
    )
    .await;
    assert_eq!(status, 403);
    // Unmuted: sending works again.
    assert_eq!(
        http_json(server.addr, "DELETE", &mute, Some(&owner), None)
            .await
            .0,
        204
    );
    socket
        .send_json(&dest, &json!({"content": "thanks"}), Some("m2"), &[])
        .await;
    socket.expect_receipt("m2").await;

    // Banned, then unbanned: the user joins again.
    let ban = format!("/api/rooms/{id}/members/{member_id}/ban");
    let (status, _, _) = http_with(
        server.addr,
        "POST",
        &ban,
        Some(&owner),
        None,
        &[("X-Request-Id", "req-ban-7")],
    )
    .await;
    assert_eq!(status, 204);
    let (status, body) = http_json(server.addr, "POST", &join, Some(&member), None).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("banned")));
    let unban = format!("/api/rooms/{id}/members/{member_id}/unban");
    assert_eq!(
        http_json(server.addr, "POST", &unban, Some(&owner), None)
            .await
            .0,
        204
    );
    let (status, body) = http_json(server.addr, "POST", &unban, Some(&owner), None).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_banned")));
    assert_eq!(
        http_json(server.addr, "POST", &join, Some(&member), None)
            .await
            .0,
        200
    );

    let (status, page) = audit(
        &server,
        &auditor,
        &format!("target={member_id}&action=room."),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let actions = actions(&page);
    assert_eq!(
        actions,
        ["room.unban", "room.ban", "room.unmute", "room.mute"]
    );
    assert_eq!(page["entries"][1]["requestId"], "req-ban-7", "{page}");
    server.stop().await;
}

both_backends!(room_admins_mute_and_unban);

/// People report a message and a user; staff find them in the queue, remove
/// the message (members see it deleted and a SYSTEM notice), resolve the
/// report, find users and read any room; admins see it all in the log.
async fn reports_reach_staff_who_act_on_them(db: TestDb) {
    let server = TestServer::start(&db).await;
    let (owner, _) = signup(&server, "owner").await;
    let (member, member_id) = signup(&server, "chatter").await;
    let (outsider, _) = signup(&server, "outsider").await;
    let (keeper, _) = signup(&server, "keeper").await;
    let (auditor, _) = signup(&server, "auditor").await;
    grant(&db, &server, "keeper", "moderator").await;
    grant(&db, &server, "auditor", "admin").await;
    let id = common::create_room(server.addr, &owner, "신고방").await;
    assert_eq!(
        http_json(
            server.addr,
            "POST",
            &format!("/api/rooms/{id}/join"),
            Some(&member),
            None
        )
        .await
        .0,
        200
    );
    let topic = format!("/topic/rooms/{id}");
    let mut watcher = Stomp::connect(&server.ws_url(), &owner).await;
    watcher.subscribe("s", &topic, &[]).await;
    let mut speaker = Stomp::connect(&server.ws_url(), &member).await;
    speaker
        .send_json(
            &format!("/app/rooms/{id}/messages"),
            &json!({"content": "나쁜 말"}),
            Some("m"),
            &[],
        )
        .await;
    speaker.expect_receipt("m").await;
    let (_, msg) = watcher.next_message().await;
    let msg_id = msg["id"].as_str().unwrap().to_owned();

    let report = |token: String, body: Value| {
        let addr = server.addr;
        async move { http_json(addr, "POST", "/api/reports", Some(&token), Some(body)).await }
    };
    let about_msg = json!({"messageId": msg_id, "reason": "욕설"});
    // Only people who can see it report a message, never their own.
    let (status, body) = report(outsider.clone(), about_msg.clone()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("message_not_found"))
    );
    let (status, body) = report(member.clone(), about_msg.clone()).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("own_message")));
    let (status, first) = report(owner.clone(), about_msg.clone()).await;
    assert_eq!(status, 201, "{first}");
    let (status, body) = report(owner.clone(), about_msg).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("already_reported"))
    );
    let (status, _) = report(
        owner.clone(),
        json!({"userId": member_id, "reason": "spam"}),
    )
    .await;
    assert_eq!(status, 201);

    // The queue: staff only, oldest first, with what each is about.
    let (status, _) = report_queue(&server, &member).await;
    assert_eq!(status, 403);
    let (status, queue) = report_queue(&server, &keeper).await;
    assert_eq!(status, 200, "{queue}");
    let reports = queue["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0]["message"]["content"], "나쁜 말");
    assert_eq!(reports[0]["reason"], "욕설");
    assert_eq!(reports[1]["user"]["username"], "chatter");

    // Staff remove the message: members see it deleted, then a notice.
    let (status, body) = http_json(
        server.addr,
        "DELETE",
        &format!("/api/admin/messages/{msg_id}"),
        Some(&keeper),
        Some(json!({"reason": "욕설 신고"})),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (_, deleted) = watcher.next_event("deleted").await;
    assert_eq!(deleted["messageId"], msg_id.as_str());
    let notice = watcher.next_system().await;
    assert_eq!(notice["content"], "A moderator removed a message");
    // The report is resolved once; one is left in the queue.
    let resolve = format!(
        "/api/admin/reports/{}/resolve",
        first["id"].as_str().unwrap()
    );
    let (status, done) = http_json(
        server.addr,
        "POST",
        &resolve,
        Some(&keeper),
        Some(json!({"resolution": "actioned", "note": "removed"})),
    )
    .await;
    assert_eq!(
        (status, done["state"].as_str()),
        (200, Some("actioned")),
        "{done}"
    );
    let (status, body) = http_json(
        server.addr,
        "POST",
        &resolve,
        Some(&keeper),
        Some(json!({"resolution": "dismissed"})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("report_not_found"))
    );
    let (_, queue) = report_queue(&server, &keeper).await;
    assert_eq!(queue["reports"].as_array().unwrap().len(), 1);

    // Staff find users and read any room (the tombstone included).
    let (status, found) = http_json(
        server.addr,
        "GET",
        "/api/admin/users?q=chat",
        Some(&keeper),
        None,
    )
    .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["users"][0]["username"], "chatter");
    assert_eq!(found["users"][0]["role"], "member");
    let (_, rooms) = http_json(
        server.addr,
        "GET",
        "/api/admin/rooms?q=%EC%8B%A0%EA%B3%A0",
        Some(&keeper),
        None,
    )
    .await;
    assert_eq!(rooms["rooms"][0]["id"], id.as_str(), "{rooms}");
    let (status, history) = http_json(
        server.addr,
        "GET",
        &format!("/api/admin/rooms/{id}/messages"),
        Some(&keeper),
        None,
    )
    .await;
    assert_eq!(status, 200, "{history}");
    let removed = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == msg_id.as_str())
        .expect("the removed message in the history");
    assert_eq!(removed["deleted"], true);

    let (_, page) = audit(&server, &auditor, "").await;
    let actions = actions(&page);
    for action in ["message.delete", "report.actioned", "room.read"] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    server.stop().await;
}

both_backends!(reports_reach_staff_who_act_on_them);

mod closing;
mod gate;
mod registration;
