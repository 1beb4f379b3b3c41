//! Pushes (issue 17) against a fake FCM that checks what the real one
//! would (ieum-test-support's `fcm`): the OAuth2 assertion's RS256
//! signature against the test service account's public key, and the v1
//! request shape. Areas: `delivery` (who gets a push), `rules` (mutes,
//! mentions, coalescing, badges), `outbox` (retries, dead tokens, crashes,
//! two nodes), `devices` (the HTTP API).

mod delivery;
mod devices;
mod outbox;
mod rules;

use std::time::Duration;

use ieum_stomp::{Command, Frame};
use ieum_test_support::TestDb;
use ieum_test_support::fcm::FakeFcm;
use serde_json::{Value, json};

use crate::common::{Stomp, TestServer, WAIT, http_json};

/// The grace period of these tests: long enough for a loopback pong.
pub const GRACE_MS: u64 = 700;
pub const COALESCE_SECS: u64 = 2;

pub struct PushServer {
    pub server: TestServer,
    pub fcm: FakeFcm,
}

impl PushServer {
    pub async fn start(db: &TestDb) -> Self {
        let fcm = FakeFcm::start();
        let account = fcm.account_json();
        let endpoint = fcm.endpoint();
        let server = TestServer::start_with(db, |s| {
            s.fcm_credentials = Some(account);
            s.fcm_endpoint = Some(endpoint);
            s.push_grace_ms = Some(GRACE_MS);
            s.push_coalesce_secs = Some(COALESCE_SECS);
            s.push_poll_ms = Some(100);
        })
        .await;
        Self { server, fcm }
    }

    /// The fake's accepted pushes to one device token.
    pub fn pushes_to(&self, token: &str) -> Vec<Value> {
        self.fcm
            .pushes()
            .into_iter()
            .filter(|p| p["token"] == token)
            .collect()
    }

    /// Waits for a push to `token` whose data names `seq`.
    pub async fn wait_push(&self, token: &str, seq: i64) -> Value {
        let seq = seq.to_string();
        self.fcm
            .wait_until(WAIT, &format!("a push of seq {seq} to {token}"), |f| {
                f.pushes()
                    .iter()
                    .any(|p| p["token"] == token && p["data"]["seq"] == seq.as_str())
            })
            .await;
        self.pushes_to(token)
            .into_iter()
            .find(|p| p["data"]["seq"] == seq.as_str())
            .unwrap()
    }
}

/// The seq a push's data names (FCM data values are strings).
pub fn seq_of(push: &Value) -> i64 {
    push["data"]["seq"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(-1)
}

/// Registers a device; answers its id.
pub async fn register(server: &TestServer, token: &str, body: Value) -> String {
    let (status, device) =
        http_json(server.addr, "POST", "/api/devices", Some(token), Some(body)).await;
    assert_eq!(status, 201, "{device}");
    device["id"].as_str().unwrap().to_owned()
}

pub async fn android(server: &TestServer, token: &str, device_token: &str) -> String {
    register(
        server,
        token,
        json!({"platform": "android", "token": device_token, "locale": "ko-KR"}),
    )
    .await
}

/// The 1:1 room of the caller and `other`.
pub async fn direct(server: &TestServer, token: &str, other: &str) -> String {
    let (status, room) = http_json(
        server.addr,
        "POST",
        "/api/rooms/direct",
        Some(token),
        Some(json!({"userId": other})),
    )
    .await;
    assert_eq!(status, 200, "{room}");
    room["id"].as_str().unwrap().to_owned()
}

/// A group room of the caller that `others` joined.
pub async fn group(server: &TestServer, token: &str, name: &str, others: &[&str]) -> String {
    let (status, room) = http_json(
        server.addr,
        "POST",
        "/api/rooms",
        Some(token),
        Some(json!({"name": name})),
    )
    .await;
    assert_eq!(status, 201, "{room}");
    let id = room["id"].as_str().unwrap().to_owned();
    for other in others {
        let (status, body) = http_json(
            server.addr,
            "POST",
            &format!("/api/rooms/{id}/join"),
            Some(other),
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    id
}

/// Sends a message over STOMP; answers its seq.
pub async fn say(client: &mut Stomp, room: &str, content: &str) -> i64 {
    let receipt = format!("r-{}", uuid::Uuid::new_v4().simple());
    client
        .send_json(
            &format!("/app/rooms/{room}/messages"),
            &json!({"content": content}),
            Some(&receipt),
            &[],
        )
        .await;
    let frame = client.expect_receipt(&receipt).await;
    frame
        .get("seq")
        .expect("seq on the receipt")
        .parse()
        .unwrap()
}

/// CONNECTs naming a device (`device-id`), and subscribes to the room.
pub async fn connect_device(url: &str, token: &str, device: &str, room: &str) -> Stomp {
    let mut client = Stomp::open(url).await;
    client
        .send_frame(
            &Frame::new(Command::Connect)
                .header("accept-version", "1.2")
                .header("host", "ieum")
                .header("heart-beat", "0,0")
                .header("device-id", device)
                .header("Authorization", format!("Bearer {token}")),
        )
        .await;
    let connected = client.recv().await.expect("CONNECTED");
    assert_eq!(connected.command, Command::Connected, "{connected:?}");
    assert_eq!(connected.get("device-id"), Some(device));
    client
        .subscribe("s", &format!("/topic/rooms/{room}"), &[])
        .await;
    client
}

/// Reads the connection until it closes, as a live app does (which is
/// what answers the server's pings); messages go to the channel.
pub fn keep_reading(mut client: Stomp) -> tokio::sync::mpsc::UnboundedReceiver<Value> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(frame)) = client.recv_within(Duration::from_secs(3600)).await {
            if frame.command == Command::Message
                && let Ok(body) = serde_json::from_slice::<Value>(&frame.body)
            {
                let _ = tx.send(body);
            }
        }
    });
    rx
}
