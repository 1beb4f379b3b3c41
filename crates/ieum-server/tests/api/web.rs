//! The web client's files, the API reference at `/docs`, and which web
//! origins may use the server: its own, the listed ones, and no other, on
//! the HTTP API and on every real-time handshake alike (issue 19).

use crate::common;
use crate::hardening::{header, http_with};
use crate::stompjs::{run_node, run_node_with_env};

use common::{TestServer, WAIT, signup};
use ieum_test_support::TestDb;
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const LISTED: &str = "https://app.example.com";
const OTHER: &str = "https://evil.example";

/// Opens a WebSocket to `path` with `origin` (if any); answers the
/// handshake's status (101 when it upgraded).
async fn handshake(server: &TestServer, path: &str, origin: Option<&str>) -> u16 {
    let mut req = format!("ws://{}{path}", server.addr)
        .into_client_request()
        .unwrap();
    if let Some(origin) = origin {
        req.headers_mut().insert("origin", origin.parse().unwrap());
    }
    match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(req))
        .await
        .expect("handshake answered in time")
    {
        Ok((_, response)) => response.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("handshake {path}: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_its_own_and_listed_origins_may_use_the_server() {
    let db = TestDb::sqlite().await;
    let server = TestServer::start_with(&db, |s| {
        s.allowed_origins = Some(format!("{LISTED}, http://localhost:5173"))
    })
    .await;
    let (token, _) = signup(&server, "origins").await;
    let me = |origin: &'static str| {
        let token = token.clone();
        let addr = server.addr;
        async move {
            http_with(
                addr,
                "GET",
                "/api/me",
                Some(&token),
                None,
                &[("Origin", origin)],
            )
            .await
        }
    };
    // Another origin: refused with the code, and no CORS grant.
    let (status, headers, body) = me(OTHER).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "origin_not_allowed");
    assert_eq!(header(&headers, "access-control-allow-origin"), None);
    // Its own origin (the Host the request names) and a listed one.
    let (status, _, body) = me("http://x").await;
    assert_eq!(status, 200, "{body}");
    let (status, headers, body) = me(LISTED).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        header(&headers, "access-control-allow-origin"),
        Some(LISTED)
    );
    assert!(
        header(&headers, "access-control-expose-headers")
            .is_some_and(|h| h.contains("x-request-id")),
        "{headers:?}"
    );
    // A preflight: granted to the listed origin, refused to another.
    let preflight = |origin: &'static str| async move {
        let headers = [
            ("Origin", origin),
            ("Access-Control-Request-Method", "PATCH"),
            (
                "Access-Control-Request-Headers",
                "authorization, content-type",
            ),
        ];
        http_with(server.addr, "OPTIONS", "/api/me", None, None, &headers).await
    };
    let (status, headers, _) = preflight(LISTED).await;
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "access-control-allow-origin"),
        Some(LISTED)
    );
    assert!(
        header(&headers, "access-control-allow-methods").is_some_and(|m| m.contains("PATCH")),
        "{headers:?}"
    );
    let (status, headers, body) = preflight(OTHER).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(header(&headers, "access-control-allow-origin"), None);
    // Every real-time handshake: refused for another origin; the listed
    // one, and native clients (no Origin), connect.
    for path in [
        "/ws/chat",
        "/ws/json",
        "/socket.io/?EIO=4&transport=websocket",
        "/ws/chat/000/abc/websocket",
    ] {
        assert_eq!(handshake(&server, path, Some(OTHER)).await, 403, "{path}");
        assert_eq!(handshake(&server, path, Some(LISTED)).await, 101, "{path}");
        assert_eq!(handshake(&server, path, None).await, 101, "{path}");
    }
    // The HTTP transports: Socket.IO's polling, SockJS's xhr, SSE.
    for (method, path) in [
        ("GET", "/socket.io/?EIO=4&transport=polling"),
        ("POST", "/ws/chat/000/xyz/xhr"),
        ("GET", "/api/events?ticket=x"),
    ] {
        let (status, _, body) =
            http_with(server.addr, method, path, None, None, &[("Origin", OTHER)]).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert_eq!(body["code"], "origin_not_allowed", "{path}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_and_the_api_reference_are_served_from_the_binary() {
    let db = TestDb::sqlite().await;
    let server = TestServer::start(&db).await;
    let (status, headers, _) = http_with(server.addr, "GET", "/", None, None, &[]).await;
    assert_eq!(status, 200);
    let policy = header(&headers, "content-security-policy")
        .unwrap_or_default()
        .to_owned();
    assert!(
        policy.contains("script-src 'self'") && !policy.contains("unsafe"),
        "{policy}"
    );
    // A module of the client, revalidated by its ETag.
    let (status, headers, _) = http_with(server.addr, "GET", "/web/app.js", None, None, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/javascript; charset=utf-8")
    );
    let tag = header(&headers, "etag").expect("an ETag").to_owned();
    let (status, _, _) = http_with(
        server.addr,
        "GET",
        "/web/app.js",
        None,
        None,
        &[("If-None-Match", &tag)],
    )
    .await;
    assert_eq!(status, 304);
    // Nothing outside the client's directory.
    for path in [
        "/web/../Cargo.toml",
        "/web/%2e%2e/Cargo.toml",
        "/web/nope.js",
        "/web/",
    ] {
        let (status, _, body) = http_with(server.addr, "GET", path, None, None, &[]).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    // The API reference: Swagger UI over /openapi.json, all of it local.
    let (status, headers, _) = http_with(server.addr, "GET", "/docs", None, None, &[]).await;
    assert_eq!(status, 200);
    assert!(header(&headers, "content-type").is_some_and(|t| t.starts_with("text/html")));
    let (status, _, _) = http_with(
        server.addr,
        "GET",
        "/web/vendor/swagger-ui/swagger-ui-bundle.js",
        None,
        None,
        &[],
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, spec) = http_with(server.addr, "GET", "/openapi.json", None, None, &[]).await;
    assert_eq!(status, 200);
    assert!(
        spec["paths"]
            .as_object()
            .is_some_and(|p| p.contains_key("/docs")),
        "{}",
        Value::Null
    );
    server.stop().await;
}

/// In Chromium (e2e/origins.mjs): a page of an unlisted origin can neither
/// read the API nor open the WebSocket, a listed one can do both, and
/// `/docs` renders every operation from the binary's own files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_browser_only_listed_origins_get_in_and_the_docs_render() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let db = TestDb::sqlite().await;
    let server = TestServer::start_with(&db, |s| {
        s.allowed_origins = Some(format!("http://127.0.0.1:{port}"))
    })
    .await;
    run_node(&server, "origins.mjs", &[port.to_string()]).await;
    server.stop().await;
}

/// The web client in Chromium (e2e/browser.mjs): two people pair as a
/// couple and chat in Korean through an IME, see typing, delivered and
/// read, edit, delete, search, miss 20 messages offline and get each once
/// and in order, upload a photo and see its thumbnail; axe-core finds no
/// serious or critical violation; a screenshot of every screen is saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_client_chats_in_a_real_browser() {
    let db = TestDb::sqlite().await;
    let server = TestServer::start(&db).await;
    run_node(&server, "browser.mjs", &[]).await;
    server.stop().await;
}

/// The admin console in Chromium (e2e/admin.mjs): an admin made by the
/// real `ieum admin grant` works the report queue (deletes the message,
/// suspends its author, whose open page is signed out), lifts the
/// suspension from the user search, reads rooms and the audit log; a
/// moderator sees no audit log, a member no console; axe-core passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_console_works_in_a_real_browser() {
    let db = TestDb::sqlite().await;
    let server = TestServer::start(&db).await;
    let args = [
        server.data_dir.display().to_string(),
        env!("CARGO_BIN_EXE_ieum").to_owned(),
    ];
    let env = [("DATABASE_URL", db.url().to_owned())];
    run_node_with_env(&server, "admin.mjs", &args, &env).await;
    server.stop().await;
}
