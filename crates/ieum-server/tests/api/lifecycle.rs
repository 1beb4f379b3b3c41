//! A session's life beyond one request (issue 15): access-token expiry and a
//! revoked family end connections, a revoked family cannot reconnect, and
//! people are found by username as their privacy allows. The real-client side
//! (stompjs: logout, unpairing, "unread by N") is e2e/lifecycle.mjs.

use crate::common;

use std::time::Duration;

use common::{Stomp, TestServer, WAIT, http_json, signup};
use ieum_stomp::{Command, Frame};
use ieum_test_support::{TestDb, both_backends};
use serde_json::{Value, json};

/// The next ERROR frame's code, then the close code that follows it.
async fn ended(ws: &mut Stomp, within: Duration) -> (String, Option<u16>) {
    let error = loop {
        let f = ws
            .recv_within(within)
            .await
            .expect("the connection ends in time")
            .expect("an ERROR before the close");
        if f.command == Command::Error {
            break f;
        }
    };
    assert_eq!(ws.recv().await, None, "closed after the ERROR");
    (
        error.get("code").unwrap_or_default().to_owned(),
        ws.close_code,
    )
}

async fn login(server: &TestServer, username: &str) -> Value {
    let (s, body) = http_json(
        server.addr,
        "POST",
        "/auth/login",
        None,
        Some(json!({"username": username, "password": "testpass"})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    body["data"].clone()
}

async fn an_expired_access_token_ends_its_connection(db: TestDb) {
    let server = TestServer::start_with(&db, |s| s.access_token_ttl_secs = Some(2)).await;
    let (token, _) = signup(&server, "brief").await;
    let mut ws = Stomp::connect(&server.ws_url(), &token).await;
    let (code, close) = ended(&mut ws, Duration::from_secs(10)).await;
    assert_eq!((code.as_str(), close), ("token_expired", Some(1008)));
    server.stop().await;
}

async fn a_logged_out_family_can_neither_stay_nor_come_back(db: TestDb) {
    let server = TestServer::start(&db).await;
    signup(&server, "leaver").await;
    let phone = login(&server, "leaver").await;
    let laptop = login(&server, "leaver").await;
    let url = server.ws_url();
    let token = |t: &Value| t["accessToken"].as_str().unwrap().to_owned();
    let mut on_phone = Stomp::connect(&url, &token(&phone)).await;
    let mut on_laptop = Stomp::connect(&url, &token(&laptop)).await;
    let (s, _) = http_json(
        server.addr,
        "POST",
        "/auth/logout",
        None,
        Some(json!({"refreshToken": phone["refreshToken"]})),
    )
    .await;
    assert_eq!(s, 200);
    let (code, close) = ended(&mut on_phone, WAIT).await;
    assert_eq!((code.as_str(), close), ("session_revoked", Some(1008)));
    // The other login's connection goes on.
    on_laptop
        .send_frame(
            &Frame::new(Command::Send)
                .header("destination", "/app/nowhere")
                .header("receipt", "r1"),
        )
        .await;
    let f = on_laptop.recv().await.expect("the laptop stays connected");
    assert_ne!(f.get("code"), Some("session_revoked"), "{f:?}");
    // The phone's access token has not expired, but its family is over.
    let mut again = Stomp::open(&url).await;
    again
        .send_frame(
            &Frame::new(Command::Connect)
                .header("accept-version", "1.2")
                .header("host", "ieum")
                .header("Authorization", format!("Bearer {}", token(&phone))),
        )
        .await;
    let f = again.recv().await.expect("an answer");
    assert_eq!(
        (f.command, f.get("code")),
        (Command::Error, Some("session_revoked"))
    );
    // And on the handshake: 401.
    let (s, body) = http_json(
        server.addr,
        "GET",
        &format!("/ws/chat?token={}", token(&phone)),
        None,
        None,
    )
    .await;
    assert_eq!((s, body["code"].as_str()), (401, Some("session_revoked")));
    server.stop().await;
}

async fn find(server: &TestServer, token: &str, q: &str) -> Vec<String> {
    let (s, body) = http_json(
        server.addr,
        "GET",
        &format!("/api/users?q={q}"),
        Some(token),
        None,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    body["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_owned())
        .collect()
}

async fn befriend(server: &TestServer, a: &str, b_id: &str, b: &str, a_id: &str) {
    for (token, other) in [(a, b_id), (b, a_id)] {
        let (s, body) = http_json(
            server.addr,
            "POST",
            &format!("/api/friends/{other}"),
            Some(token),
            None,
        )
        .await;
        assert_eq!(s, 200, "{body}");
    }
}

async fn people_are_found_by_username_as_their_privacy_allows(db: TestDb) {
    let server = TestServer::start(&db).await;
    let a = server.addr;
    let (me, me_id) = signup(&server, "seeker").await;
    let (mate, _) = signup(&server, "kim_roommate").await;
    let (friend, friend_id) = signup(&server, "kim_friend").await;
    let (fof, fof_id) = signup(&server, "kim_fof").await;
    let (public, _) = signup(&server, "kim_public").await;
    let (_hidden, _) = signup(&server, "kim_hidden").await;
    let (blocker, _) = signup(&server, "kim_blocker").await;
    // kimxroommate would match "kim_" if `_` were a wildcard.
    signup(&server, "kimxroommate").await;
    // A room shared with the roommate and the blocker.
    let (_, room) = http_json(
        a,
        "POST",
        "/api/rooms",
        Some(&me),
        Some(json!({"name": "flat"})),
    )
    .await;
    let room = room["id"].as_str().unwrap().to_owned();
    for t in [&mate, &blocker] {
        let (s, _) = http_json(a, "POST", &format!("/api/rooms/{room}/join"), Some(t), None).await;
        assert_eq!(s, 200);
    }
    befriend(&server, &me, &friend_id, &friend, &me_id).await;
    befriend(&server, &friend, &fof_id, &fof, &friend_id).await;
    let (s, _) = http_json(
        a,
        "PATCH",
        "/api/me",
        Some(&public),
        Some(json!({"discoverable": true})),
    )
    .await;
    assert_eq!(s, 200);
    let (_, blocker_me) = http_json(a, "GET", "/api/me", Some(&blocker), None).await;
    assert_eq!(blocker_me["discoverable"], false, "off by default");
    let (s, _) = http_json(
        a,
        "PUT",
        &format!("/api/blocks/{me_id}"),
        Some(&blocker),
        None,
    )
    .await;
    assert_eq!(s, 204);

    assert_eq!(
        find(&server, &me, "KIM_").await,
        ["kim_fof", "kim_friend", "kim_public", "kim_roommate"]
    );
    assert_eq!(find(&server, &me, "kim_r").await, ["kim_roommate"]);
    // Someone else's privacy setting is theirs: only /api/me shows it.
    let (_, found) = http_json(a, "GET", "/api/users?q=kim_p", Some(&me), None).await;
    assert_eq!(found["users"][0]["username"], "kim_public");
    assert_eq!(found["users"][0].get("discoverable"), None, "{found}");
    assert!(find(&server, &me, "seek").await.is_empty(), "never oneself");
    let (s, body) = http_json(a, "GET", "/api/users?q=%25", Some(&me), None).await;
    assert_eq!((s, body["code"].as_str()), (400, Some("invalid_query")));

    // A friend request by username: someone findable, and no one else.
    let (s, body) = http_json(
        a,
        "POST",
        "/api/friends/requests",
        Some(&me),
        Some(json!({"username": "Kim_Public"})),
    )
    .await;
    assert_eq!(
        (s, body["state"].as_str()),
        (200, Some("requested")),
        "{body}"
    );
    assert_eq!(body["user"]["username"], "kim_public");
    let (_, requests) = http_json(a, "GET", "/api/friends/requests", Some(&public), None).await;
    assert_eq!(requests["incoming"][0]["id"], me_id);
    let (s, body) = http_json(
        a,
        "POST",
        "/api/friends/requests",
        Some(&me),
        Some(json!({"username": "kim_hidden"})),
    )
    .await;
    assert_eq!((s, body["code"].as_str()), (404, Some("user_not_found")));
    server.stop().await;
}

both_backends!(
    an_expired_access_token_ends_its_connection,
    a_logged_out_family_can_neither_stay_nor_come_back,
    people_are_found_by_username_as_their_privacy_allows,
);

/// A subscription id the session keeps for itself cannot be taken, so no
/// client can unsubscribe it and stop hearing its logout.
async fn an_empty_subscription_id_is_refused(db: TestDb) {
    let server = TestServer::start(&db).await;
    let (token, _) = signup(&server, "sneaky").await;
    let mut ws = Stomp::connect(&server.ws_url(), &token).await;
    ws.send_frame(
        &Frame::new(Command::Subscribe)
            .header("id", "")
            .header("destination", "/user/queue/events"),
    )
    .await;
    let f = ws.recv().await.expect("an answer");
    assert_eq!(
        (f.command, f.get("code")),
        (Command::Error, Some("invalid_subscription_id"))
    );
    server.stop().await;
}

/// A code shared before pairing dies with the pairing: after an unpairing it
/// pairs nobody.
async fn codes_from_before_a_pairing_do_not_outlive_it(db: TestDb) {
    let server = TestServer::start(&db).await;
    let a = server.addr;
    let (ann, _) = signup(&server, "ann").await;
    let (ben, _) = signup(&server, "ben").await;
    let (cal, _) = signup(&server, "cal").await;
    let invite = |token: String| async move {
        let (s, body) = http_json(a, "POST", "/api/couples/invite", Some(&token), None).await;
        assert_eq!(s, 201, "{body}");
        body["code"].as_str().unwrap().to_owned()
    };
    let join = |token: String, code: String| async move {
        http_json(
            a,
            "POST",
            "/api/couples/join",
            Some(&token),
            Some(json!({"code": code})),
        )
        .await
    };
    let anns_old_code = invite(ann.clone()).await;
    let bens_code = invite(ben.clone()).await;
    assert_eq!(join(ann.clone(), bens_code).await.0, 200);
    let (s, _) = http_json(a, "DELETE", "/api/couples/me", Some(&ann), None).await;
    assert_eq!(s, 204);
    let (s, body) = join(cal.clone(), anns_old_code).await;
    assert_eq!(
        (s, body["code"].as_str()),
        (404, Some("invalid_invite_code")),
        "{body}"
    );
    // A fresh code works.
    let code = invite(ann).await;
    assert_eq!(join(cal, code).await.0, 200);
    server.stop().await;
}

both_backends!(
    an_empty_subscription_id_is_refused,
    codes_from_before_a_pairing_do_not_outlive_it,
);
