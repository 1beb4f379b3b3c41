//! Contract A's account endpoints and `/api/me` through the real actix app, on
//! SQLite and on PostgreSQL.

use crate::common;

use actix_web::test;
use common::{app, call, post_json, state, temp_dir};
use ieum_test_support::{TestDb, both_backends};
use serde_json::{Value, json};

fn assert_envelope_error(body: &Value) {
    let obj = body.as_object().expect("object");
    assert_eq!(obj.len(), 3, "exactly success, message, data: {body}");
    assert_eq!(body["success"], false);
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(body["data"].is_null());
}

fn tokens(body: &Value) -> (String, String) {
    assert_eq!(body["success"], true, "{body}");
    assert!(body["message"].is_string());
    let a = body["data"]["accessToken"]
        .as_str()
        .expect("accessToken")
        .to_owned();
    let r = body["data"]["refreshToken"]
        .as_str()
        .expect("refreshToken")
        .to_owned();
    assert_eq!(a.split('.').count(), 3, "JWT");
    assert_eq!(r.split('.').count(), 3, "JWT");
    (a, r)
}

async fn contract_a_signup_login_refresh_logout(db: TestDb) {
    let dir = temp_dir();
    let app = app(state(&db, dir.clone()).await).await;

    let (s, _, body) = call(
        &app,
        post_json(
            "/auth/signup",
            json!({"username":"testuser","password":"testpass","displayName":"김철수"}),
        ),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    let (access, _) = tokens(&body);

    let (s, _, body) = call(
        &app,
        post_json(
            "/auth/signup",
            json!({"username":"TestUser","password":"otherpass"}),
        ),
    )
    .await;
    assert_eq!(s, 409);
    assert_envelope_error(&body);

    let (s, _, body) = call(
        &app,
        post_json(
            "/auth/login",
            json!({"username":"testuser","password":"testpass"}),
        ),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let (_, refresh1) = tokens(&body);

    let (s, _, body) = call(
        &app,
        post_json(
            "/auth/login",
            json!({"username":"testuser","password":"wrongpass"}),
        ),
    )
    .await;
    assert_eq!(s, 401);
    assert_envelope_error(&body);
    let (s, _, body) = call(
        &app,
        post_json(
            "/auth/login",
            json!({"username":"nobody","password":"testpass"}),
        ),
    )
    .await;
    assert_eq!(s, 401);
    assert_envelope_error(&body);

    // /api/me with the signup's access token; Korean display name round-trips.
    let (s, _, me) = call(
        &app,
        test::TestRequest::get()
            .uri("/api/me")
            .insert_header(("Authorization", format!("Bearer {access}"))),
    )
    .await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(me["username"], "testuser");
    assert_eq!(me["displayName"], "김철수");

    // Refresh rotates: a new pair, and the old refresh token stops working.
    let (s, _, body) = call(
        &app,
        post_json("/auth/refresh", json!({"refreshToken": refresh1})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let (access2, refresh2) = tokens(&body);
    assert_ne!(refresh2, refresh1);
    let (s, _, body) = call(
        &app,
        post_json("/auth/refresh", json!({"refreshToken": refresh1})),
    )
    .await;
    assert_eq!(s, 401);
    assert_envelope_error(&body);
    // That reuse revoked the family: the rotated token is dead too.
    let (s, _, _) = call(
        &app,
        post_json("/auth/refresh", json!({"refreshToken": refresh2})),
    )
    .await;
    assert_eq!(s, 401, "family revoked after reuse");

    // A fresh login is a new family; logout revokes it.
    let (_, _, body) = call(
        &app,
        post_json(
            "/auth/login",
            json!({"username":"testuser","password":"testpass"}),
        ),
    )
    .await;
    let (_, refresh3) = tokens(&body);
    let (s, _, body) = call(
        &app,
        post_json("/auth/logout", json!({"refreshToken": refresh3})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["success"], true);
    let (s, _, _) = call(
        &app,
        post_json("/auth/refresh", json!({"refreshToken": refresh3})),
    )
    .await;
    assert_eq!(s, 401, "logged out");

    // Access tokens keep working until they expire (documented).
    let (s, _, _) = call(
        &app,
        test::TestRequest::get()
            .uri("/api/me")
            .insert_header(("Authorization", format!("Bearer {access2}"))),
    )
    .await;
    assert_eq!(s, 200);
    std::fs::remove_dir_all(dir).ok();
}

async fn bad_input_gets_clear_errors(db: TestDb) {
    let dir = temp_dir();
    let app = app(state(&db, dir.clone()).await).await;

    let (s, h, body) = call(&app, test::TestRequest::get().uri("/api/me")).await;
    assert_eq!(s, 401);
    assert_eq!(h.get("content-type").unwrap(), "application/problem+json");
    assert_eq!(body["code"], "missing_token");
    let (s, _, body) = call(
        &app,
        test::TestRequest::get()
            .uri("/api/me")
            .insert_header(("Authorization", "Bearer not.a.jwt")),
    )
    .await;
    assert_eq!(s, 401);
    assert_eq!(body["code"], "token_invalid");

    let (s, _, body) = call(
        &app,
        test::TestRequest::post()
            .uri("/auth/login")
            .insert_header(("content-type", "application/json"))
            .set_payload("{not json"),
    )
    .await;
    assert_eq!(s, 400);
    assert_envelope_error(&body);

    let (s, _, body) = call(
        &app,
        post_json(
            "/auth/signup",
            json!({"username":"a b","password":"testpass"}),
        ),
    )
    .await;
    assert_eq!(s, 400);
    assert_envelope_error(&body);
    let (s, _, body) = call(
        &app,
        post_json(
            "/auth/signup",
            json!({"username":"shorty","password":"short"}),
        ),
    )
    .await;
    assert_eq!(s, 400);
    assert!(body["message"].as_str().unwrap().contains("8"));

    let big = "x".repeat(100 * 1024);
    let (s, _, body) = call(
        &app,
        post_json(
            "/auth/login",
            json!({"username": big, "password": "testpass"}),
        ),
    )
    .await;
    assert_eq!(s, 400, "over the JSON limit");
    assert_envelope_error(&body);

    let (s, h, body) = call(&app, test::TestRequest::get().uri("/no/such/route")).await;
    assert_eq!(s, 404);
    assert_eq!(body["code"], "not_found");
    assert!(h.get("x-request-id").is_some());
    std::fs::remove_dir_all(dir).ok();
}

async fn login_is_throttled_per_username(db: TestDb) {
    let dir = temp_dir();
    let app = app(state(&db, dir.clone()).await).await;
    call(
        &app,
        post_json(
            "/auth/signup",
            json!({"username":"victim","password":"testpass"}),
        ),
    )
    .await;
    for _ in 0..3 {
        let (s, _, _) = call(
            &app,
            post_json(
                "/auth/login",
                json!({"username":"victim","password":"guess123"}),
            ),
        )
        .await;
        assert_eq!(s, 401);
    }
    // Even the right password waits now.
    let (s, h, body) = call(
        &app,
        post_json(
            "/auth/login",
            json!({"username":"victim","password":"testpass"}),
        ),
    )
    .await;
    assert_eq!(s, 429, "{body}");
    assert_envelope_error(&body);
    let retry: u64 = h
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0);
    // Another account is unaffected.
    call(
        &app,
        post_json(
            "/auth/signup",
            json!({"username":"bystander","password":"testpass"}),
        ),
    )
    .await;
    let (s, _, _) = call(
        &app,
        post_json(
            "/auth/login",
            json!({"username":"bystander","password":"testpass"}),
        ),
    )
    .await;
    assert_eq!(s, 200);
    std::fs::remove_dir_all(dir).ok();
}

async fn accounts_survive_a_restart(db: TestDb) {
    let dir = temp_dir();
    let first = state(&db, dir.clone()).await;
    let app1 = app(first.clone()).await;
    let (s, _, body) = call(
        &app1,
        post_json(
            "/auth/signup",
            json!({"username":"persist","password":"testpass"}),
        ),
    )
    .await;
    assert_eq!(s, 201);
    let (_, refresh) = tokens(&body);
    drop(app1);
    first.store.close().await;

    let app2 = app(state(&db, dir.clone()).await).await;
    let (s, _, _) = call(
        &app2,
        post_json(
            "/auth/login",
            json!({"username":"persist","password":"testpass"}),
        ),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _, _) = call(
        &app2,
        post_json("/auth/refresh", json!({"refreshToken": refresh})),
    )
    .await;
    assert_eq!(s, 200, "refresh tokens survive too");
    std::fs::remove_dir_all(dir).ok();
}

async fn health_and_ready(db: TestDb) {
    let dir = temp_dir();
    let app = app(state(&db, dir.clone()).await).await;
    let (s, _, body) = call(&app, test::TestRequest::get().uri("/health")).await;
    assert_eq!((s, body["status"].as_str()), (200, Some("ok")));
    let (s, _, body) = call(&app, test::TestRequest::get().uri("/ready")).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["migrations"], "applied");
    let (s, h, _) = call(&app, test::TestRequest::get().uri("/")).await;
    assert_eq!(s, 200);
    assert!(
        h.get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    std::fs::remove_dir_all(dir).ok();
}

both_backends!(
    contract_a_signup_login_refresh_logout,
    bad_input_gets_clear_errors,
    login_is_throttled_per_username,
    accounts_survive_a_restart,
    health_and_ready,
);
