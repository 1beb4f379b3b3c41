//! The device API: registration, a token that changes hands, logout,
//! removal, and what it refuses.

use serde_json::{Value, json};

use super::{PushServer, android};
use crate::common::{TestServer, http_json};
use ieum_test_support::TestDb;

async fn login(server: &TestServer, username: &str) -> (String, String) {
    let (status, body) = http_json(
        server.addr,
        "POST",
        "/auth/login",
        None,
        Some(json!({"username": username, "password": "testpass"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    (
        body["data"]["accessToken"].as_str().unwrap().to_owned(),
        body["data"]["refreshToken"].as_str().unwrap().to_owned(),
    )
}

async fn signup(server: &TestServer, username: &str) {
    let (status, body) = http_json(
        server.addr,
        "POST",
        "/auth/signup",
        None,
        Some(json!({"username": username, "password": "testpass"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

async fn devices(server: &TestServer, token: &str) -> Vec<Value> {
    let (status, body) = http_json(server.addr, "GET", "/api/devices", Some(token), None).await;
    assert_eq!(status, 200, "{body}");
    body.as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_is_registered_listed_and_removed() {
    let db = TestDb::sqlite().await;
    let push = PushServer::start(&db).await;
    let server = &push.server;
    signup(server, "bob").await;
    let (bob, _) = login(server, "bob").await;
    let (status, body) = http_json(server.addr, "POST", "/api/devices", Some(&bob), Some(json!({"platform": "android", "token": "t-1", "appVersion": "2.3.0", "locale": "ko-KR"}))).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["platform"], "android");
    assert_eq!(body["appVersion"], "2.3.0");
    assert!(body.get("token").is_none(), "the token is not echoed");
    let id = body["id"].as_str().unwrap().to_owned();
    // The same token again is the same device.
    assert_eq!(android(server, &bob, "t-1").await, id);
    assert_eq!(devices(server, &bob).await.len(), 1);
    let (status, _) = http_json(
        server.addr,
        "DELETE",
        &format!("/api/devices/{id}"),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert!(devices(server, &bob).await.is_empty());
    let (status, problem) = http_json(
        server.addr,
        "DELETE",
        &format!("/api/devices/{id}"),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(problem["code"], "device_not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_shows_up_under_another_user_moves_to_them() {
    let db = TestDb::sqlite().await;
    let push = PushServer::start(&db).await;
    let server = &push.server;
    signup(server, "bob").await;
    signup(server, "dave").await;
    let (bob, _) = login(server, "bob").await;
    let (dave, _) = login(server, "dave").await;
    let id = android(server, &bob, "shared-phone").await;
    assert_eq!(android(server, &dave, "shared-phone").await, id);
    assert!(devices(server, &bob).await.is_empty());
    assert_eq!(devices(server, &dave).await.len(), 1);
    // Bob may not remove what is now dave's.
    let (status, _) = http_json(
        server.addr,
        "DELETE",
        &format!("/api/devices/{id}"),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_removes_that_sessions_device_only() {
    let db = TestDb::sqlite().await;
    let push = PushServer::start(&db).await;
    let server = &push.server;
    signup(server, "bob").await;
    let (phone_session, phone_refresh) = login(server, "bob").await;
    let (tablet_session, _) = login(server, "bob").await;
    android(server, &phone_session, "bob-phone").await;
    android(server, &tablet_session, "bob-tablet").await;
    let (status, body) = http_json(
        server.addr,
        "POST",
        "/auth/logout",
        None,
        Some(json!({"refreshToken": phone_refresh})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let left: Vec<Value> = devices(server, &tablet_session).await;
    assert_eq!(left.len(), 1);
    // The logged-out session may not register again.
    let (status, _) = http_json(
        server.addr,
        "POST",
        "/api/devices",
        Some(&phone_session),
        Some(json!({"platform": "android", "token": "bob-phone"})),
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_registrations_are_refused_with_a_code() {
    let db = TestDb::sqlite().await;
    let push = PushServer::start(&db).await;
    let server = &push.server;
    signup(server, "bob").await;
    let (bob, _) = login(server, "bob").await;
    for (body, code) in [
        (
            json!({"platform": "symbian", "token": "t"}),
            "invalid_platform",
        ),
        (json!({"platform": "android", "token": ""}), "invalid_token"),
        (
            json!({"platform": "android", "token": "x".repeat(5000)}),
            "invalid_token",
        ),
        (
            json!({"platform": "android", "token": "t", "locale": "x".repeat(100)}),
            "invalid_locale",
        ),
    ] {
        let (status, problem) =
            http_json(server.addr, "POST", "/api/devices", Some(&bob), Some(body)).await;
        assert_eq!(status, 400, "{problem}");
        assert_eq!(problem["code"], code, "{problem}");
    }
    let (status, _) = http_json(
        server.addr,
        "POST",
        "/api/devices",
        None,
        Some(json!({"platform": "android", "token": "t"})),
    )
    .await;
    assert_eq!(status, 401);
    let (status, problem) = http_json(
        server.addr,
        "PUT",
        "/api/rooms/nowhere/mute",
        Some(&bob),
        Some(json!({})),
    )
    .await;
    assert!(status == 403 || status == 404, "{status} {problem}");
}
