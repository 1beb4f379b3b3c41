//! STOMP session rules over a real WebSocket: handshake auth, subprotocols,
//! heart-beats, receipts.

use crate::common;

use std::time::Duration;

use common::{Stomp, TestServer, signup};
use futures_util::{SinkExt, StreamExt};
use ieum_stomp::{Command, Frame};
use ieum_test_support::TestDb;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_token_subprotocols_and_disconnect_receipt() {
    let db = TestDb::sqlite().await;
    let server = TestServer::start(&db).await;
    let (token, _) = signup(&server, "alice").await;

    // ?token= on the handshake: CONNECT needs no header then.
    let mut req = format!("{}?token={token}", server.ws_url())
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "v11.stomp, v12.stomp".parse().unwrap(),
    );
    let (mut ws, resp) = tokio_tungstenite::connect_async(req)
        .await
        .expect("upgrade");
    assert_eq!(
        resp.headers().get("sec-websocket-protocol").unwrap(),
        "v11.stomp",
        "the first offered protocol the server knows"
    );
    ws.send(WsMessage::Text(
        "CONNECT\naccept-version:1.1,1.2\nhost:x\n\n\0".into(),
    ))
    .await
    .unwrap();
    let reply = tokio::time::timeout(common::WAIT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let text = reply.into_text().unwrap();
    assert!(text.starts_with("CONNECTED\n"), "{text}");
    assert!(text.contains("version:1.2\n"), "{text}");
    assert!(text.contains("user-name:alice\n"), "{text}");

    // A bad token on the handshake is an HTTP 401.
    let req = format!("{}?token=bad", server.ws_url())
        .into_client_request()
        .unwrap();
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
        other => panic!("expected 401, got {other:?}"),
    }

    // No subprotocol offered at all still works.
    let req = server.ws_url().into_client_request().unwrap();
    let (mut ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert!(resp.headers().get("sec-websocket-protocol").is_none());
    ws.send(WsMessage::Text(
        format!("CONNECT\naccept-version:1.2\nAuthorization:Bearer {token}\n\n\0").into(),
    ))
    .await
    .unwrap();
    let text = ws.next().await.unwrap().unwrap().into_text().unwrap();
    assert!(text.starts_with("CONNECTED\n"), "{text}");

    // DISCONNECT gets its RECEIPT, then the server closes.
    let mut c = Stomp::connect(&server.ws_url(), &token).await;
    c.send_frame(&Frame::new(Command::Disconnect).header("receipt", "bye"))
        .await;
    let f = c.recv().await.unwrap();
    assert_eq!(
        (f.command, f.get("receipt-id")),
        (Command::Receipt, Some("bye"))
    );
    assert_eq!(c.recv().await, None);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_are_sent_and_silence_is_enforced() {
    let db = TestDb::sqlite().await;
    let server = TestServer::start_with(&db, |s| s.stomp_heartbeat_ms = Some(200)).await;
    let (token, _) = signup(&server, "alice").await;
    let req = server.ws_url().into_client_request().unwrap();
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws.send(WsMessage::Text(
        format!(
            "CONNECT\naccept-version:1.2\nheart-beat:200,200\nAuthorization:Bearer {token}\n\n\0"
        )
        .into(),
    ))
    .await
    .unwrap();
    let text = ws.next().await.unwrap().unwrap().into_text().unwrap();
    assert!(text.contains("heart-beat:200,200"), "{text}");
    // The server's EOL heart-beats arrive; then, as we stay silent, an ERROR and a close.
    let mut beats = 0;
    let mut error = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, ws.next()).await {
        match msg {
            Ok(WsMessage::Text(t)) if t.as_str() == "\n" => beats += 1,
            Ok(WsMessage::Text(t)) if t.starts_with("ERROR") => error = Some(t.to_string()),
            Ok(WsMessage::Close(_)) | Err(_) => break,
            _ => {}
        }
    }
    assert!(beats >= 1, "server heart-beats");
    let error = error.expect("ERROR before close");
    assert!(error.contains("code:heartbeat_timeout"), "{error}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_without_connect_is_closed() {
    let db = TestDb::sqlite().await;
    let server = TestServer::start_with(&db, |s| s.stomp_connect_timeout_ms = Some(300)).await;
    let mut c = Stomp::open(&server.ws_url()).await;
    let f = c.recv().await.expect("ERROR");
    assert_eq!(f.get("code"), Some("connect_timeout"));
    assert_eq!(c.recv().await, None);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_over_the_connection_cap_get_503_and_a_freed_place_is_reused() {
    let db = TestDb::sqlite().await;
    let server = TestServer::start_with(&db, |s| s.ws_max_connections = Some(2)).await;
    let (token, _) = signup(&server, "alice").await;
    let first = Stomp::connect(&server.ws_url(), &token).await;
    let mut second = Stomp::connect(&server.ws_url(), &token).await;

    // The third handshake is refused with a problem+json 503, and the two held
    // connections are unharmed.
    let req = server.ws_url().into_client_request().unwrap();
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            assert_eq!(r.status(), 503);
            assert_eq!(r.headers().get("retry-after").unwrap(), "5");
            assert_eq!(
                r.headers().get("content-type").unwrap(),
                "application/problem+json"
            );
            let body: serde_json::Value =
                serde_json::from_slice(r.body().as_deref().unwrap()).unwrap();
            assert_eq!(body["code"], "too_many_connections", "{body}");
        }
        other => panic!("expected 503, got {other:?}"),
    }
    let receipt = second.subscribe("errors", "/user/queue/errors", &[]).await;
    assert_eq!(receipt.command, Command::Receipt, "{receipt:?}");

    // A closed connection gives its place back: a new handshake succeeds once
    // the server has seen the close (retried until then, within the wait).
    first.disconnect().await;
    let deadline = tokio::time::Instant::now() + common::WAIT;
    loop {
        let req = server.ws_url().into_client_request().unwrap();
        match tokio_tungstenite::connect_async(req).await {
            Ok(_) => break,
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 503 => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the closed connection's place never came back"
                );
                tokio::task::yield_now().await;
            }
            Err(e) => panic!("{e}"),
        }
    }
    server.stop().await;
}

/// Connections that have not finished their CONNECT are capped apart from
/// the connection cap (a reconnect storm, or sockets opened and left
/// silent): the next upgrade gets 503 `handshake_backlog` with Retry-After,
/// signed-in connections do not count, and a CONNECT frees the place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_past_the_pending_handshake_cap_get_503_until_a_connect_finishes() {
    let db = TestDb::sqlite().await;
    let server = TestServer::start_with(&db, |s| s.ws_max_pending_handshakes = Some(1)).await;
    let (token, _) = signup(&server, "alice").await;
    // Signed in: not pending.
    let mut signed_in = Stomp::connect(&server.ws_url(), &token).await;
    // Open, no CONNECT yet: the one pending place.
    let mut waiting = Stomp::open(&server.ws_url()).await;
    let req = server.ws_url().into_client_request().unwrap();
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            assert_eq!(r.status(), 503);
            assert_eq!(r.headers().get("retry-after").unwrap(), "1");
            let body: serde_json::Value =
                serde_json::from_slice(r.body().as_deref().unwrap()).unwrap();
            assert_eq!(body["code"], "handshake_backlog", "{body}");
        }
        other => panic!("expected 503, got {other:?}"),
    }
    // The waiting one signs in; its place is free at once (CONNECTED came
    // after it was given back).
    waiting
        .send_frame(
            &ieum_stomp::Frame::new(Command::Connect)
                .header("accept-version", "1.2")
                .header("Authorization", format!("Bearer {token}")),
        )
        .await;
    let connected = waiting.recv().await.expect("CONNECTED");
    assert_eq!(connected.command, Command::Connected, "{connected:?}");
    let third = Stomp::connect(&server.ws_url(), &token).await;
    let receipt = signed_in
        .subscribe("errors", "/user/queue/errors", &[])
        .await;
    assert_eq!(receipt.command, Command::Receipt, "{receipt:?}");
    drop(third);
    server.stop().await;
}
