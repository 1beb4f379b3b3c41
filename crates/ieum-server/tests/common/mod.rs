//! Shared setup for the server's tests: the real actix app on a real database.
#![allow(dead_code)]

use std::path::PathBuf;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::test;
use ieum_server::config::Settings;
use ieum_server::{AppState, Config, build_state};
use ieum_test_support::TestDb;
use serde_json::Value;

pub const SECRET: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a6978";

pub fn temp_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("ieum-srv-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn settings(db: &TestDb, data_dir: PathBuf) -> Settings {
    Settings {
        database_url: Some(db.url().to_owned()),
        data_dir: Some(data_dir),
        jwt_secret: Some(SECRET.into()),
        argon2_memory_kib: Some(64),
        argon2_iterations: Some(1),
        login_max_failures_per_user: Some(3),
        ..Default::default()
    }
}

pub async fn state(db: &TestDb, data_dir: PathBuf) -> AppState {
    build_state(Config::resolve(settings(db, data_dir)).unwrap())
        .await
        .expect("state")
}

pub async fn app(
    state: AppState,
) -> impl Service<
    actix_http::Request,
    Response = ServiceResponse<impl MessageBody>,
    Error = actix_web::Error,
> {
    test::init_service(ieum_server::app::app(state)).await
}

/// Sends a request and returns status, headers and JSON body.
pub async fn call<S, B>(
    app: &S,
    req: test::TestRequest,
) -> (u16, actix_web::http::header::HeaderMap, Value)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let res = test::call_service(app, req.to_request()).await;
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let bytes = test::read_body(res).await;
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    (status, headers, body)
}

pub fn post_json(path: &str, body: Value) -> test::TestRequest {
    test::TestRequest::post().uri(path).set_json(body)
}
