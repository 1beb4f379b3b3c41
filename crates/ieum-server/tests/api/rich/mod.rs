//! Rich messages and search over real WebSocket clients and HTTP, on both
//! backends.

use crate::common;

use std::time::Duration;

use common::{Stomp, TestServer, http_json, signup};
use ieum_test_support::{TestDb, both_backends};
use serde_json::{Value, json};

struct Room {
    id: String,
    send: String,
}

async fn room(server: &TestServer, owner: &str, members: &[&str]) -> Room {
    let (_, r) = http_json(
        server.addr,
        "POST",
        "/api/rooms",
        Some(owner),
        Some(json!({"name": "rich"})),
    )
    .await;
    let id = r["id"].as_str().unwrap().to_owned();
    for m in members {
        let (s, _) = http_json(
            server.addr,
            "POST",
            &format!("/api/rooms/{id}/join"),
            Some(m),
            None,
        )
        .await;
        assert_eq!(s, 200);
    }
    Room {
        send: format!("/app/rooms/{id}/messages"),
        id,
    }
}

async fn send(ws: &mut Stomp, room: &Room, body: Value) -> (String, i64) {
    ws.send_json(&room.send, &body, Some("s"), &[]).await;
    let r = ws.expect_receipt("s").await;
    (
        r.get("message-id").unwrap().to_owned(),
        r.get("seq").unwrap().parse().unwrap(),
    )
}

async fn history(server: &TestServer, token: &str, room: &str) -> Vec<Value> {
    let (s, page) = http_json(
        server.addr,
        "GET",
        &format!("/api/rooms/{room}/messages?limit=500"),
        Some(token),
        None,
    )
    .await;
    assert_eq!(s, 200, "{page}");
    page["messages"].as_array().unwrap().clone()
}

mod membership;
mod messages;
mod search;
