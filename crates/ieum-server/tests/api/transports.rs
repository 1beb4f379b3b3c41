//! The transports beside STOMP, with real client libraries: Socket.IO v4
//! (contract C's socket.io front end; e2e/socketio.mjs, and across two nodes
//! e2e/socketio-nodes.mjs), what the Engine.IO endpoint answers to bad input
//! (raw HTTP), and the plain JSON WebSocket with the `ws` package
//! (e2e/jsonws.mjs).

use crate::common::{self, TestServer};
use crate::stompjs::run_script;
use ieum_test_support::{TestDb, both_backends};

async fn socket_io_client_speaks_contract_c(db: TestDb) {
    run_script(db, "socketio.mjs").await;
}

both_backends!(socket_io_client_speaks_contract_c);

/// A Socket.IO client on node 1 and a STOMP client on node 2 chat (one
/// PostgreSQL, one Redis).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_io_on_one_node_chats_with_stomp_on_another() {
    use crate::multinode::{env, wait_for_bus};
    let db = ieum_test_support::PgDatabase::create().await;
    let prefix = ieum_test_support::RedisPrefix::new();
    let redis = ieum_test_support::redis_url();
    let one = common::Node::spawn(&env(&db, &prefix, &redis));
    let two = common::Node::spawn(&env(&db, &prefix, &redis));
    wait_for_bus(&one).await;
    wait_for_bus(&two).await;
    let urls = [
        format!("http://{}", one.addr),
        format!("http://{}", two.addr),
    ];
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../e2e");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg("socketio-nodes.mjs")
            .args(urls)
            .current_dir(dir)
            .output()
            .expect("node must be installed to run the contract tests")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "socketio-nodes.mjs failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
}

/// A raw HTTP/1.1 request; answers status and body text.
async fn raw(server: &TestServer, method: &str, path: &str, body: &str) -> (u16, String) {
    let addr = server.addr;
    let (method, path, body) = (method.to_owned(), path.to_owned(), body.to_owned());
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(common::WAIT)).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let status = raw.split(' ').nth(1).unwrap().parse().unwrap();
        let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
        (status, body)
    })
    .await
    .unwrap()
}

/// Opens a polling session; answers its sid.
async fn open(server: &TestServer) -> String {
    let (status, body) = raw(server, "GET", "/socket.io/?EIO=4&transport=polling", "").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with('0'), "{body}");
    let open: serde_json::Value = serde_json::from_str(&body[1..]).unwrap();
    assert_eq!(open["upgrades"], serde_json::json!(["websocket"]));
    open["sid"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_engine_io_input_gets_engine_io_errors_and_harms_no_one() {
    let db = TestDb::sqlite().await;
    // Sessions without CONNECT live out the test however slow the machine.
    let server = TestServer::start_with(&db, |s| s.stomp_connect_timeout_ms = Some(120_000)).await;
    // Another session, which must live through all of it.
    let bystander = open(&server).await;
    let (status, body) = raw(&server, "GET", "/socket.io/?EIO=3&transport=polling", "").await;
    assert_eq!((status, body.contains("\"code\":5")), (400, true), "{body}");
    let (status, body) = raw(
        &server,
        "GET",
        "/socket.io/?EIO=4&transport=carrier-pigeon",
        "",
    )
    .await;
    assert_eq!((status, body.contains("\"code\":0")), (400, true), "{body}");
    let (status, body) = raw(
        &server,
        "GET",
        "/socket.io/?EIO=4&transport=polling&sid=nope",
        "",
    )
    .await;
    assert_eq!((status, body.contains("\"code\":1")), (400, true), "{body}");
    let (status, body) = raw(
        &server,
        "POST",
        "/socket.io/?EIO=4&transport=polling&sid=nope",
        "40",
    )
    .await;
    assert_eq!((status, body.contains("\"code\":1")), (400, true), "{body}");
    // A malformed packet ends its own session only.
    let victim = open(&server).await;
    let (status, body) = raw(
        &server,
        "POST",
        &format!("/socket.io/?EIO=4&transport=polling&sid={victim}"),
        "9garbage",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = raw(
        &server,
        "GET",
        &format!("/socket.io/?EIO=4&transport=polling&sid={victim}"),
        "",
    )
    .await;
    assert!(status == 400 || body == "1", "{status} {body}");
    // An oversized body is refused before it is read as packets, and ends
    // its own session.
    let big = open(&server).await;
    let huge = format!("4{}", "x".repeat(300 * 1024));
    let (status, body) = raw(
        &server,
        "POST",
        &format!("/socket.io/?EIO=4&transport=polling&sid={big}"),
        &huge,
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("body_too_large"), "{body}");
    // A Socket.IO packet it cannot read: an `error` event, the session goes on.
    let other = open(&server).await;
    let post = format!("/socket.io/?EIO=4&transport=polling&sid={other}");
    let (status, body) = raw(&server, "POST", &post, "42{\"not\":\"an event\"}").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, body) = raw(&server, "GET", &post, "").await;
    assert_eq!(status, 200);
    assert!(
        body.contains("\"error\"") && body.contains("invalid_event"),
        "{body}"
    );
    // Connecting without a token: CONNECT_ERROR with the code.
    let (status, _) = raw(&server, "POST", &post, "40").await;
    assert_eq!(status, 200);
    let (_, body) = raw(&server, "GET", &post, "").await;
    assert!(
        body.starts_with("44") && body.contains("missing_token"),
        "{body}"
    );
    // The bystander lived through all of it.
    let post = format!("/socket.io/?EIO=4&transport=polling&sid={bystander}");
    let (status, _) = raw(&server, "POST", &post, "40").await;
    assert_eq!(status, 200);
    let (_, body) = raw(&server, "GET", &post, "").await;
    assert!(body.starts_with("44"), "{body}");
    server.stop().await;
}

/// SockJS's HTTP transports: bad requests get SockJS's answers and harm
/// no other session; a second receiver is refused with `c[2010]`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sockjs_http_input_gets_sockjs_errors_and_harms_no_one() {
    let db = TestDb::sqlite().await;
    let server = TestServer::start_with(&db, |s| s.stomp_connect_timeout_ms = Some(120_000)).await;
    let (token, _) = common::signup(&server, "sockjs_http").await;
    let base = "/ws/chat/000";
    // A bystander session, opened by a poll: `o`.
    let (status, body) = raw(&server, "POST", &format!("{base}/bystander/xhr"), "").await;
    assert_eq!((status, body.as_str()), (200, "o\n"));
    // Sends to a session nobody opened, or with ids SockJS cannot have.
    let (status, _) = raw(&server, "POST", &format!("{base}/nope/xhr_send"), "[\"x\"]").await;
    assert_eq!(status, 404);
    let (status, _) = raw(&server, "POST", "/ws/chat/0.0/x/xhr", "").await;
    assert_eq!(status, 404);
    let (status, body) = raw(&server, "POST", &format!("{base}/victim/xhr"), "").await;
    assert_eq!((status, body.as_str()), (200, "o\n"));
    let send = format!("{base}/victim/xhr_send");
    let (status, body) = raw(&server, "POST", &send, "").await;
    assert_eq!((status, body.as_str()), (500, "Payload expected."));
    let (status, body) = raw(&server, "POST", &send, "[\"half").await;
    assert_eq!((status, body.as_str()), (500, "Broken JSON encoding."));
    let (status, body) = raw(&server, "POST", &send, "[1,2]").await;
    assert_eq!((status, body.as_str()), (500, "Broken JSON encoding."));
    // Before CONNECT, the pre-authentication budget.
    let huge = format!("[\"{}\"]", "x".repeat(64 * 1024));
    let (status, body) = raw(&server, "POST", &send, &huge).await;
    assert_eq!(status, 413, "{body}");
    // Two receivers at once: one of them is refused at once, the other
    // receives what the session says next.
    let poll = format!("{base}/victim/xhr");
    let (status, body) = {
        let (one, two) = (
            raw(&server, "POST", &poll, ""),
            raw(&server, "POST", &poll, ""),
        );
        tokio::pin!(one, two);
        let (first, other) = tokio::select! {
            r = &mut one => (r, two),
            r = &mut two => (r, one),
        };
        assert_eq!(
            first,
            (
                200,
                "c[2010,\"Another connection still open\"]\n".to_owned()
            )
        );
        let connect = "[\"CONNECT\\naccept-version:1.2\\n\\n\\u0000\"]";
        let (status, _) = raw(&server, "POST", &send, connect).await;
        assert_eq!(status, 204);
        other.await
    };
    assert_eq!(status, 200);
    assert!(
        body.starts_with("a[\"ERROR") && body.contains("missing_token"),
        "{body}"
    );
    // The STOMP connection ended with its ERROR: the session closes.
    let (_, body) = raw(&server, "POST", &format!("{base}/victim/xhr"), "").await;
    assert!(body.starts_with("c["), "{body}");
    // The bystander lived through all of it and signs in.
    let connect =
        format!("[\"CONNECT\\naccept-version:1.2\\nAuthorization:Bearer {token}\\n\\n\\u0000\"]");
    let (status, _) = raw(
        &server,
        "POST",
        &format!("{base}/bystander/xhr_send"),
        &connect,
    )
    .await;
    assert_eq!(status, 204);
    let (status, body) = raw(&server, "POST", &format!("{base}/bystander/xhr"), "").await;
    assert_eq!(status, 200);
    assert!(body.starts_with("a[\"CONNECTED"), "{body}");
    server.stop().await;
}

/// The plain JSON WebSocket with the `ws` package (e2e/jsonws.mjs).
async fn a_plain_ws_client_speaks_the_json_websocket(db: TestDb) {
    run_script(db, "jsonws.mjs").await;
}

both_backends!(a_plain_ws_client_speaks_the_json_websocket);

/// Server-Sent Events with the `eventsource` package (e2e/sse.mjs).
async fn eventsource_reads_the_sse_stream(db: TestDb) {
    run_script(db, "sse.mjs").await;
}

both_backends!(eventsource_reads_the_sse_stream);

/// One room, every transport: STOMP, Socket.IO, SockJS, SSE and the JSON
/// WebSocket see the same messages in the same order, and history agrees
/// (e2e/mixed.mjs).
async fn every_transport_sees_one_room_alike(db: TestDb) {
    run_script(db, "mixed.mjs").await;
}

both_backends!(every_transport_sees_one_room_alike);

/// SockJS (websocket transport) with @stomp/stompjs on top (e2e/sockjs.mjs).
async fn sockjs_client_carries_stomp(db: TestDb) {
    run_script(db, "sockjs.mjs").await;
}

both_backends!(sockjs_client_carries_stomp);
