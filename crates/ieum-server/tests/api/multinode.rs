//! Two real `ieum` processes on one PostgreSQL and one Redis (a key prefix of
//! their own): cross-node delivery, presence across nodes and node death, and
//! a node whose Redis is absent.

use crate::common;

use std::time::Duration;

use common::{Node, Stomp, http_json, signup_at};
use ieum_test_support::{PgDatabase, RedisPrefix, redis_url};
use serde_json::json;

pub(crate) fn env(
    db: &PgDatabase,
    prefix: &RedisPrefix,
    redis: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", db.url().to_owned()),
        ("REDIS_URL", redis.to_owned()),
        ("IEUM_REDIS_PREFIX", prefix.0.clone()),
        ("IEUM_PRESENCE_TTL_SECS", "2".into()),
        ("IEUM_STOMP_HEARTBEAT_MS", "0".into()),
    ]
}

/// Polls until the node listens on the bus (its readiness says so).
pub(crate) async fn wait_for_bus(node: &Node) {
    wait_for_bus_at(node.addr).await;
}

/// [`wait_for_bus`] for a node at `addr` (a process or a container).
pub(crate) async fn wait_for_bus_at(addr: std::net::SocketAddr) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while http_json(addr, "GET", "/ready", None, None).await.1["redis"] != "ok" {
        assert!(
            std::time::Instant::now() < deadline,
            "the node's bus never came up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Alice (on node a) makes a group room and Bob (on node b) joins it:
/// (alice's token, bob's token, bob's id, room id).
async fn alice_and_bob_in_a_room(a: &Node, b: &Node) -> (String, String, String, String) {
    let (alice, _) = signup_at(a.addr, "alice").await;
    let (bob, bob_id) = signup_at(b.addr, "bob").await;
    let (s, room) = http_json(
        a.addr,
        "POST",
        "/api/rooms",
        Some(&alice),
        Some(json!({"name": "club"})),
    )
    .await;
    assert_eq!(s, 201, "{room}");
    let room = room["id"].as_str().unwrap().to_owned();
    let (s, _) = http_json(
        b.addr,
        "POST",
        &format!("/api/rooms/{room}/join"),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(s, 200);
    (alice, bob, bob_id, room)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_exchange_messages_typing_receipts_and_presence() {
    let db = PgDatabase::create().await;
    let prefix = RedisPrefix::new();
    let e = env(&db, &prefix, &redis_url());
    let (mut a, b) = tokio::task::spawn_blocking(move || (Node::spawn(&e), Node::spawn(&e)))
        .await
        .unwrap();
    let (alice, alice_id) = signup_at(a.addr, "alice").await;
    let (bob, bob_id) = signup_at(b.addr, "bob").await;
    let (_, room) = http_json(
        a.addr,
        "POST",
        "/api/rooms/direct",
        Some(&alice),
        Some(json!({"userId": bob_id})),
    )
    .await;
    let room = room["id"].as_str().unwrap().to_owned();
    let topic = format!("/topic/rooms/{room}");
    let send = format!("/app/rooms/{room}/messages");

    let mut bw = Stomp::connect(&b.ws_url(), &bob).await;
    bw.subscribe("s", &topic, &[]).await;
    let mut aw = Stomp::connect(&a.ws_url(), &alice).await;
    aw.subscribe("s", &topic, &[]).await;
    // Presence crosses nodes.
    let (_, p) = bw.next_event("presence").await;
    assert_eq!(
        (p["userId"].as_str(), p["online"].as_bool()),
        (Some(alice_id.as_str()), Some(true))
    );

    // Both send concurrently; each side sees every message once, in seq order.
    let sa = send.clone();
    let sb = send.clone();
    let ja = tokio::spawn(async move {
        for n in 0..50 {
            aw.send_json(&sa, &json!({"content": format!("a{n}")}), Some("r"), &[])
                .await;
            aw.expect_receipt("r").await;
        }
        aw
    });
    let jb = tokio::spawn(async move {
        for n in 0..50 {
            bw.send_json(&sb, &json!({"content": format!("b{n}")}), Some("r"), &[])
                .await;
            bw.expect_receipt("r").await;
        }
        bw
    });
    let (mut aw, mut bw) = (ja.await.unwrap(), jb.await.unwrap());
    for ws in [&mut aw, &mut bw] {
        let mut seqs = Vec::new();
        while seqs.len() < 100 {
            let (_, m) = ws.next_message().await;
            seqs.push(m["seq"].as_i64().unwrap());
        }
        assert_eq!(
            seqs,
            (1..=100).collect::<Vec<_>>(),
            "exactly once, in order, on both nodes"
        );
    }
    // Each node timed the bus on the other's 50 messages (and more events).
    let at = b.addr;
    let text = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(at).unwrap();
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        raw
    })
    .await
    .unwrap();
    let lagged: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("ieum_bus_lag_seconds_count "))
        .expect("ieum_bus_lag_seconds on a node with Redis")
        .parse()
        .unwrap();
    assert!(lagged >= 50.0, "{lagged} bus messages timed");
    // Typing and read receipts cross nodes too.
    aw.send_json(
        &format!("/app/rooms/{room}/typing"),
        &json!({}),
        Some("t"),
        &[],
    )
    .await;
    aw.expect_receipt("t").await;
    let (_, t) = bw.next_event("typing").await;
    assert_eq!(t["userId"], alice_id.as_str());
    bw.send_json(
        &format!("/app/rooms/{room}/read"),
        &json!({"seq": 100}),
        Some("rd"),
        &[],
    )
    .await;
    bw.expect_receipt("rd").await;
    let (_, r) = aw.next_event("read").await;
    assert_eq!(
        (r["userId"].as_str(), r["seq"].as_i64()),
        (Some(bob_id.as_str()), Some(100))
    );

    // Node A dies: alice is offline for bob within the TTL; she resumes on B with no gap.
    drop(aw);
    a.kill();
    let (_, p) = bw.next_event("presence").await;
    assert_eq!(
        (p["userId"].as_str(), p["online"].as_bool()),
        (Some(alice_id.as_str()), Some(false))
    );
    for n in 0..5 {
        bw.send_json(
            &send,
            &json!({"content": format!("while away {n}")}),
            Some("r"),
            &[],
        )
        .await;
        bw.expect_receipt("r").await;
    }
    let mut again = Stomp::connect(&b.ws_url(), &alice).await;
    again.subscribe("s", &topic, &[("last-seq", "100")]).await;
    let mut seqs = Vec::new();
    while seqs.len() < 5 {
        seqs.push(again.next_message().await.1["seq"].as_i64().unwrap());
    }
    assert_eq!(seqs, [101, 102, 103, 104, 105]);
    drop(b);
}

/// Memberships are cached per node for SENDs; a kick on one node must reach the
/// other: the kicked member's subscription ends there and their next SEND fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_removed_on_one_node_is_cut_off_on_the_other() {
    let db = PgDatabase::create().await;
    let prefix = RedisPrefix::new();
    let e = env(&db, &prefix, &redis_url());
    let (a, b) = tokio::task::spawn_blocking(move || (Node::spawn(&e), Node::spawn(&e)))
        .await
        .unwrap();
    let (alice, bob, bob_id, room) = alice_and_bob_in_a_room(&a, &b).await;
    let topic = format!("/topic/rooms/{room}");
    let send = format!("/app/rooms/{room}/messages");
    let mut bw = Stomp::connect(&b.ws_url(), &bob).await;
    bw.subscribe("s", &topic, &[]).await;
    bw.subscribe("errs", "/user/queue/errors", &[]).await;
    // Two SENDs as a member: the second is served from node b's cache.
    for n in 0..2 {
        bw.send_json(
            &send,
            &json!({"content": format!("hi {n}")}),
            Some("r"),
            &[],
        )
        .await;
        bw.expect_receipt("r").await;
    }
    let (s, _) = http_json(
        a.addr,
        "POST",
        &format!("/api/rooms/{room}/members/{bob_id}/kick"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (_, ev) = bw.next_event("member_left").await;
    assert_eq!(
        (ev["userId"].as_str(), ev["kicked"].as_bool()),
        (Some(bob_id.as_str()), Some(true))
    );
    bw.send_json(&send, &json!({"content": "still here?"}), None, &[])
        .await;
    loop {
        let (f, m) = bw.next_message().await;
        if f.get("destination") == Some("/user/queue/errors") {
            assert_eq!(m["code"], "not_a_member", "{m}");
            break;
        }
        assert_ne!(
            m["content"], "still here?",
            "a kicked member's SEND was stored"
        );
    }
    let mut aw = Stomp::connect(&a.ws_url(), &alice).await;
    aw.send_json(&send, &json!({"content": "after the kick"}), Some("r"), &[])
        .await;
    aw.expect_receipt("r").await;
    let frames = bw.drain(Duration::from_millis(500)).await;
    assert!(
        frames.iter().all(|f| f.get("event") != Some("message")),
        "the kicked member's subscription on the other node ended: {frames:?}"
    );
}

/// Rooms cross nodes in the bus's own format, which carries the password flag
/// (never the hash): a password room made through one node is announced as
/// locked to contract C's clients on the other (issue 14).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_room_made_on_one_node_is_announced_as_locked_on_the_other() {
    let db = PgDatabase::create().await;
    let prefix = RedisPrefix::new();
    let e = env(&db, &prefix, &redis_url());
    let (a, b) = tokio::task::spawn_blocking(move || (Node::spawn(&e), Node::spawn(&e)))
        .await
        .unwrap();
    // An unsequenced event is not replayed.
    wait_for_bus(&b).await;
    let (alice, _) = signup_at(a.addr, "alice").await;
    let (bob, _) = signup_at(b.addr, "bob").await;
    let mut bw = Stomp::connect(&b.ws_url(), &bob).await;
    bw.subscribe("ev", "/user/queue/events", &[]).await;
    bw.next_event("rooms").await;

    let (s, created) = http_json(
        a.addr,
        "POST",
        "/api/chatrooms/new",
        Some(&alice),
        Some(json!({
            "chatType": "group", "chatName": "x", "password": "sesame12", "isDirected": false
        })),
    )
    .await;
    assert_eq!(s, 201, "{created}");
    let chat_seq = created["chatSeq"].as_str().unwrap();
    let (_, ev) = bw.next_event("room_created").await;
    assert_eq!(
        (
            ev["event"].as_str(),
            ev["data"]["chatSeq"].as_str(),
            ev["data"]["hasPassword"].as_bool()
        ),
        (Some("new room"), Some(chat_seq), Some(true)),
        "{ev}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_on_one_node_ends_the_sessions_on_the_other() {
    let db = PgDatabase::create().await;
    let prefix = RedisPrefix::new();
    let e = env(&db, &prefix, &redis_url());
    let (a, b) = tokio::task::spawn_blocking(move || (Node::spawn(&e), Node::spawn(&e)))
        .await
        .unwrap();
    wait_for_bus(&b).await;
    signup_at(a.addr, "alice").await;
    let (s, login) = http_json(
        a.addr,
        "POST",
        "/auth/login",
        None,
        Some(json!({"username": "alice", "password": "testpass"})),
    )
    .await;
    assert_eq!(s, 200, "{login}");
    let access = login["data"]["accessToken"].as_str().unwrap();
    let mut on_b = Stomp::connect(&b.ws_url(), access).await;
    let (s, _) = http_json(
        a.addr,
        "POST",
        "/auth/logout",
        None,
        Some(json!({"refreshToken": login["data"]["refreshToken"]})),
    )
    .await;
    assert_eq!(s, 200);
    let f = on_b.recv().await.expect("an ERROR before the close");
    assert_eq!(f.get("code"), Some("session_revoked"), "{f:?}");
    assert_eq!(on_b.recv().await, None);
    assert_eq!(on_b.close_code, Some(1008));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_redis_serves_its_own_clients_and_says_degraded() {
    let db = PgDatabase::create().await;
    let prefix = RedisPrefix::new();
    // Nothing listens on port 1.
    let e = env(&db, &prefix, "redis://127.0.0.1:1");
    let node = tokio::task::spawn_blocking(move || Node::spawn(&e))
        .await
        .unwrap();
    let (s, ready) = http_json(node.addr, "GET", "/ready", None, None).await;
    assert_eq!(s, 200, "{ready}");
    assert_eq!(
        (ready["status"].as_str(), ready["redis"].as_str()),
        (Some("degraded"), Some("degraded"))
    );
    let (alice, _) = signup_at(node.addr, "alice").await;
    let (_, room) = http_json(
        node.addr,
        "POST",
        "/api/rooms",
        Some(&alice),
        Some(json!({"name": "solo"})),
    )
    .await;
    let room = room["id"].as_str().unwrap().to_owned();
    let mut w = tokio::time::timeout(
        Duration::from_secs(20),
        Stomp::connect(&node.ws_url(), &alice),
    )
    .await
    .unwrap();
    w.subscribe("s", &format!("/topic/rooms/{room}"), &[]).await;
    w.say(&room, "still works").await;
    let (_, m) = w.next_message().await;
    assert_eq!(m["content"], "still works");
    drop(node);
}

/// A private redis-server on a free port, for a test that restarts it.
struct PrivateRedis {
    port: u16,
    child: Option<std::process::Child>,
}

impl PrivateRedis {
    fn start_on(port: u16) -> Self {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/test checks for Redis)");
        // Ready when it accepts connections.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::yield_now();
        }
        Self {
            port,
            child: Some(child),
        }
    }

    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port)
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_loses_nothing_and_recovers_by_itself() {
    let db = PgDatabase::create().await;
    let prefix = RedisPrefix::new();
    let mut redis = tokio::task::spawn_blocking(PrivateRedis::start)
        .await
        .unwrap();
    let port = redis.port;
    let e = env(&db, &prefix, &format!("redis://127.0.0.1:{port}"));
    let (a, b) = tokio::task::spawn_blocking(move || (Node::spawn(&e), Node::spawn(&e)))
        .await
        .unwrap();
    let (alice, bob, _, room) = alice_and_bob_in_a_room(&a, &b).await;
    let mut bw = Stomp::connect(&b.ws_url(), &bob).await;
    bw.subscribe("s", &format!("/topic/rooms/{room}"), &[])
        .await;
    let mut aw = Stomp::connect(&a.ws_url(), &alice).await;
    let send = format!("/app/rooms/{room}/messages");
    let mut receipted = Vec::new();
    for n in 0..60 {
        if n == 20 {
            redis.kill();
        }
        if n == 40 {
            redis = tokio::task::spawn_blocking(move || PrivateRedis::start_on(port))
                .await
                .unwrap();
        }
        aw.send_json(&send, &json!({"content": format!("m{n}")}), Some("r"), &[])
            .await;
        receipted.push(
            aw.expect_receipt("r")
                .await
                .get("seq")
                .unwrap()
                .parse::<i64>()
                .unwrap(),
        );
    }
    // Seq 1 is bob's join.
    assert_eq!(receipted, (2..=61).collect::<Vec<_>>());
    let mut seqs = Vec::new();
    while seqs.len() < 60 {
        seqs.push(bw.next_message().await.1["seq"].as_i64().unwrap());
    }
    assert_eq!(
        seqs,
        (2..=61).collect::<Vec<_>>(),
        "no loss, no gap, no duplicate across the restart"
    );
    let extra: Vec<_> = bw
        .drain(Duration::from_millis(300))
        .await
        .into_iter()
        .filter(|f| f.get("event").is_none_or(|e| e == "message"))
        .collect();
    assert!(extra.is_empty(), "{extra:?}");
    // Cross-node delivery works again without a restart of either node.
    aw.send_json(&send, &json!({"content": "after"}), Some("r"), &[])
        .await;
    aw.expect_receipt("r").await;
    assert_eq!(bw.next_message().await.1["content"], "after");
    drop((a, b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_sessions_with_a_reconnect_error() {
    let db = PgDatabase::create().await;
    let prefix = RedisPrefix::new();
    let e = env(&db, &prefix, &redis_url());
    let mut node = tokio::task::spawn_blocking(move || Node::spawn(&e))
        .await
        .unwrap();
    let (alice, _) = signup_at(node.addr, "alice").await;
    let mut w = Stomp::connect(&node.ws_url(), &alice).await;
    let mut child = node.child.take().unwrap();
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let f = w.recv().await.expect("an ERROR before the close");
    assert_eq!(
        (f.command, f.get("code")),
        (ieum_stomp::Command::Error, Some("server_shutdown"))
    );
    assert_eq!(w.recv().await, None);
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
}
