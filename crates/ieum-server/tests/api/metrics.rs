//! `/metrics` (issue 21) on the real binary, alone in its process so the
//! counts are this test's: after real STOMP traffic the named series say
//! exactly what the clients did, the endpoint lives only on
//! `IEUM_METRICS_ADDR` when that is set, and every series the shipped
//! Grafana dashboard and alert rules use exists.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::binary::{base_command, start, temp_dir};
use crate::common::{Stomp, WAIT, create_room, http_json, signup_at};
use serde_json::json;

/// `GET path` over plain HTTP: (status, body).
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw.split(' ').nth(1).unwrap().parse().unwrap();
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Series by name, then by their labels (`k="v"` pairs, sorted).
type Series = BTreeMap<String, BTreeMap<String, f64>>;

fn parse(text: &str) -> Series {
    let mut out = Series::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (series, value) = line.rsplit_once(' ').expect("a sample");
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => {
                let mut pairs: Vec<&str> = rest.trim_end_matches('}').split(',').collect();
                pairs.sort_unstable();
                (n, pairs.join(","))
            }
            None => (series, String::new()),
        };
        out.entry(name.to_owned())
            .or_default()
            .insert(labels, value.parse().expect("a number"));
    }
    out
}

fn value(s: &Series, name: &str, labels: &str) -> f64 {
    s.get(name)
        .and_then(|m| m.get(labels))
        .copied()
        .unwrap_or_else(|| panic!("no {name}{{{labels}}} in {:#?}", s.get(name)))
}

fn scrape(addr: &str) -> Series {
    let (status, body) = get(addr, "/metrics");
    assert_eq!(status, 200, "{body}");
    parse(&body)
}

#[test]
fn metrics_count_what_the_clients_did() {
    let dir = temp_dir();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let metrics_addr = format!("127.0.0.1:{port}");
    let mut cmd = base_command(&dir);
    cmd.env("IEUM_METRICS_ADDR", &metrics_addr);
    let server = start(cmd);
    let addr: std::net::SocketAddr = server.addr.parse().unwrap();
    let (status, _) = get(&server.addr, "/metrics");
    assert_eq!(
        status, 404,
        "with IEUM_METRICS_ADDR the public address has no /metrics"
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (alice, _) = signup_at(addr, "alice").await;
        let (bob, _) = signup_at(addr, "bob").await;
        let (carol, _) = signup_at(addr, "carol").await;
        let shared = create_room(addr, &alice, "shared").await;
        let closed = create_room(addr, &carol, "carol's").await;
        let (s, _) = http_json(
            addr,
            "POST",
            &format!("/api/rooms/{shared}/join"),
            Some(&bob),
            None,
        )
        .await;
        assert_eq!(s, 200);
        let ws = format!("ws://{addr}/ws/chat");
        let mut aw = Stomp::connect(&ws, &alice).await;
        let mut bw = Stomp::connect(&ws, &bob).await;
        bw.subscribe("s", &format!("/topic/rooms/{shared}"), &[])
            .await;
        aw.subscribe("e", "/user/queue/errors", &[]).await;
        for i in 0..5 {
            aw.send_json(
                &format!("/app/rooms/{shared}/messages"),
                &json!({"content": format!("m{i}")}),
                Some("r"),
                &[],
            )
            .await;
            aw.expect_receipt("r").await;
        }
        for _ in 0..5 {
            bw.next_message().await;
        }
        // One refused SEND: alice is not in carol's room.
        aw.send_json(
            &format!("/app/rooms/{closed}/messages"),
            &json!({"content": "x"}),
            None,
            &[],
        )
        .await;
        let (_, err) = aw.next_message().await;
        assert_eq!(err["code"], "not_a_member");

        let s = scrape(&metrics_addr);
        assert_eq!(value(&s, "ieum_sends_total", "result=\"ok\""), 5.0);
        assert_eq!(
            value(&s, "ieum_sends_total", "result=\"not_a_member\""),
            1.0
        );
        assert_eq!(
            value(
                &s,
                "ieum_errors_total",
                "code=\"not_a_member\",surface=\"socket\""
            ),
            1.0
        );
        assert_eq!(
            value(
                &s,
                "ieum_handshakes_total",
                "result=\"ok\",transport=\"stomp\""
            ),
            2.0
        );
        assert_eq!(
            value(
                &s,
                "ieum_connections",
                "state=\"authenticated\",transport=\"stomp\""
            ),
            2.0
        );
        assert!(value(&s, "ieum_deliveries_total", "transport=\"stomp\"") >= 5.0);
        // Each of the five reached bob's connection once.
        assert_eq!(value(&s, "ieum_delivery_latency_seconds_count", ""), 5.0);
        // The five and the SYSTEM notice of bob's join, in some batches.
        assert_eq!(value(&s, "ieum_store_batch_messages_sum", ""), 6.0);
        assert!(value(&s, "ieum_store_commit_seconds_count", "result=\"ok\"") >= 1.0);
        assert_eq!(value(&s, "ieum_db_pool_max_connections", ""), 1.0);
        assert_eq!(value(&s, "ieum_queue_depth", "queue=\"push_outbox\""), 0.0);
        assert_eq!(value(&s, "ieum_database_up", ""), 1.0);
        assert!(value(&s, "ieum_process_resident_memory_bytes", "") > 1e6);
        assert!(value(&s, "ieum_process_open_fds", "") > 3.0);
        // A missing token is a problem+json error counted by its code.
        let (status, _) = http_json(addr, "GET", "/api/me", None, None).await;
        assert_eq!(status, 401);

        aw.disconnect().await;
        bw.disconnect().await;
    });
    // Both gone: the gauge comes back to zero (waited for, not slept on).
    let deadline = Instant::now() + WAIT;
    loop {
        let s = scrape(&metrics_addr);
        let open = value(
            &s,
            "ieum_connections",
            "state=\"authenticated\",transport=\"stomp\"",
        );
        if open == 0.0 {
            assert!(
                value(
                    &s,
                    "ieum_errors_total",
                    "code=\"missing_token\",surface=\"http\""
                ) >= 1.0
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{open} connections still counted"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // The dashboard and the alert rules name only series that exist.
    let s = scrape(&metrics_addr);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for file in [
        "deploy/grafana/ieum-dashboard.json",
        "deploy/prometheus/ieum-alerts.yml",
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let mut used = 0;
        for (i, _) in text.match_indices("ieum_") {
            let name: String = text[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name == "ieum_" || !name.chars().nth(5).is_some_and(|c| c.is_ascii_lowercase()) {
                continue;
            }
            used += 1;
            assert!(
                s.contains_key(&name),
                "{file} uses {name}, which /metrics does not have"
            );
        }
        assert!(used > 5, "{file} uses {used} series");
    }
    drop(server);
    std::fs::remove_dir_all(dir).ok();
}
