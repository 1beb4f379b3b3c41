//! The fan-out and idle benchmarks over Socket.IO v4 (Engine.IO 4 on its
//! WebSocket transport), contract C as the NestJS front end speaks it: the
//! same workloads as over STOMP, so the two transports compare in one run.
//!
//! Contract C delivers a `chat` event for every room a user belongs to, so
//! each connection is a user of its own, a member of one room (STOMP
//! subscribes per room instead).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::fanout::{
    Args, IdleArgs, Shared, Stats, http, http_base, now_micros, parse_payload, report, tokens,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

async fn next_text(ws: &mut WsStream) -> Result<String, BoxError> {
    loop {
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, ws.next()).await {
            Ok(Some(Ok(Ws::Text(t)))) => return Ok(t.as_str().to_owned()),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => return Err(e.into()),
            Ok(None) => return Err("closed during the handshake".into()),
            Err(_) => return Err("no answer within 30 s".into()),
        }
    }
}

/// A connected, signed-in socket: the Engine.IO open packet read, `40`
/// with the token sent, and the `rooms` event (sent once the socket's
/// events subscription is live) received.
async fn open(url: &str, token: &str) -> Result<WsStream, BoxError> {
    let req = url.into_client_request()?;
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(8 * 1024);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(config), true).await?;
    let first = next_text(&mut ws).await?;
    if !first.starts_with('0') {
        return Err(format!("no Engine.IO open packet: {first}").into());
    }
    let connect = format!("40{}", serde_json::json!({ "token": token }));
    ws.send(Ws::Text(connect.into())).await?;
    loop {
        let text = next_text(&mut ws).await?;
        if text.starts_with("42[\"rooms\"") {
            return Ok(ws);
        }
        if text.starts_with("44") {
            return Err(format!("CONNECT refused: {text}").into());
        }
        if text == "2" {
            ws.send(Ws::Text("3".into())).await?;
        }
    }
}

/// Every user signed up, and room `r` (for connections `c % rooms == r`)
/// made by its first member and joined by the others. Answers each
/// connection's token and its room's `chatSeq` as JSON.
async fn setup(a: &Args) -> Result<Vec<(String, String)>, BoxError> {
    let base = http_base(a);
    eprintln!("signing up {} users...", a.connections);
    let users = tokens(a, a.connections).await?;
    let run = &uuid::Uuid::new_v4().simple().to_string()[..6];
    let mut rooms = Vec::with_capacity(a.rooms);
    for (r, token) in users.iter().take(a.rooms).enumerate() {
        let body = serde_json::json!({
            "chatType": "group", "chatName": format!("bench {run} {r}"),
            "password": "", "isDirected": false,
        });
        let v = http(
            "POST",
            &base,
            "/api/chatrooms/new",
            &body.to_string(),
            Some(token),
        )
        .await?;
        rooms.push(v["chatSeq"].to_string());
    }
    let joins: Vec<usize> = (rooms.len()..users.len()).collect();
    for chunk in joins.chunks(16) {
        let all = chunk.iter().map(|&c| {
            let chat_seq = &rooms[c % rooms.len()];
            let path = format!("/api/chatrooms/join/{}", chat_seq.trim_matches('"'));
            let body = format!("{{\"chatSeq\":{chat_seq}}}");
            let (base, token) = (base.clone(), users[c].clone());
            async move { http("PUT", &base, &path, &body, Some(&token)).await }
        });
        for joined in futures_util::future::join_all(all).await {
            joined?;
        }
    }
    Ok(users
        .into_iter()
        .enumerate()
        .map(|(c, token)| (token, rooms[c % rooms.len()].clone()))
        .collect())
}

/// Opens every connection, ramped, and fails the run if any could not.
async fn open_all(a: &Args, tokens: Vec<String>) -> Result<Vec<WsStream>, BoxError> {
    let gap = Duration::from_secs_f64(1.0 / a.ramp.max(1) as f64);
    let mut opening = Vec::new();
    for token in tokens {
        let url = a.url.clone();
        opening.push(tokio::spawn(async move { open(&url, &token).await }));
        tokio::time::sleep(gap).await;
    }
    let (mut conns, mut failed) = (Vec::new(), 0);
    for (c, t) in opening.into_iter().enumerate() {
        match t.await? {
            Ok(ws) => conns.push(ws),
            Err(e) => {
                failed += 1;
                if failed <= 3 {
                    eprintln!("connection {c}: {e}");
                }
            }
        }
    }
    if failed > 0 {
        return Err(format!("{failed} of {} connections failed", a.connections).into());
    }
    Ok(conns)
}

pub async fn run(a: Args) -> Result<(), BoxError> {
    let per_room = (a.connections / a.rooms).max(1);
    let members = setup(&a).await?;
    let rooms: Vec<String> = members.iter().map(|(_, room)| room.clone()).collect();
    let conns = open_all(&a, members.into_iter().map(|(t, _)| t).collect()).await?;
    eprintln!("{} sockets connected; sending", conns.len());
    let start_at = now_micros() + 500_000;
    let shared = Arc::new(Shared::new(start_at, &a));
    let publishers_total = a.rooms * a.publishers.min(per_room);
    let interval = Duration::from_secs_f64(publishers_total as f64 / a.rate.max(0.001));
    let mut tasks = Vec::new();
    let mut publisher_id = 0u32;
    for (c, (ws, room)) in conns.into_iter().zip(rooms).enumerate() {
        let pid = if c / a.rooms < a.publishers {
            publisher_id += 1;
            publisher_id
        } else {
            0
        };
        let shared = shared.clone();
        tasks.push(tokio::spawn(connection(
            ws, room, pid, interval, start_at, shared,
        )));
    }
    for t in tasks {
        let _ = t.await;
    }
    report(&a, &shared, per_room).await;
    Ok(())
}

/// What a `42["chat",{...}]` packet carries that the benchmark reads.
#[derive(serde::Deserialize)]
struct Chat<'a> {
    #[serde(borrow)]
    message: std::borrow::Cow<'a, str>,
}

/// One socket: a writer task (pongs and, for a publisher, its chats), and
/// the reader counting deliveries until the measured window is over.
async fn connection(
    ws: WsStream,
    room: String,
    publisher: u32,
    interval: Duration,
    start_at: u64,
    shared: Arc<Shared>,
) {
    let (mut tx, mut rx) = ws.split();
    let (out, mut queue) = mpsc::unbounded_channel::<String>();
    let writer = tokio::spawn(async move {
        while let Some(text) = queue.recv().await {
            if tx.send(Ws::Text(text.into())).await.is_err() {
                break;
            }
        }
    });
    let end = shared.measuring_to + 3_000_000;
    let reader_shared = shared.clone();
    let pong = out.clone();
    let reader = tokio::spawn(async move {
        let mut last: HashMap<u32, u64> = HashMap::new();
        let mut local = Stats::default();
        let deadline =
            tokio::time::Instant::now() + Duration::from_micros(end.saturating_sub(now_micros()));
        while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(deadline, rx.next()).await {
            let Ws::Text(text) = msg else { continue };
            let text = text.as_str();
            if text == "2" {
                let _ = pong.send("3".to_owned());
            } else if let Some(event) = text.strip_prefix("42") {
                if event.starts_with("[\"chat\"") {
                    let parsed = serde_json::from_str::<(&str, Chat<'_>)>(event);
                    if let Some(m) = parsed.ok().and_then(|(_, c)| parse_payload(&c.message)) {
                        local.observe(&reader_shared, &mut last, m);
                    }
                } else if event.starts_with("[\"error\"") {
                    let v: serde_json::Value = serde_json::from_str(event).unwrap_or_default();
                    local.error(v[1]["code"].as_str().unwrap_or("?"));
                }
            }
        }
        reader_shared.merge(local).await;
    });
    if publisher > 0 {
        let offset =
            Duration::from_micros((publisher as u64 * 7919) % interval.as_micros().max(1) as u64);
        tokio::time::sleep(Duration::from_micros(start_at.saturating_sub(now_micros())) + offset)
            .await;
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut seq = 0u64;
        loop {
            tick.tick().await;
            let now = now_micros();
            if now >= shared.measuring_to {
                break;
            }
            seq += 1;
            if now >= shared.measuring_from {
                shared.sent_measured.fetch_add(1, Ordering::Relaxed);
            }
            let chat =
                format!(r#"42["chat",{{"chatSeq":{room},"message":"{publisher}:{seq}:{now}"}}]"#);
            if out.send(chat).is_err() {
                break;
            }
        }
    }
    let _ = reader.await;
    drop(out);
    writer.abort();
}

/// Holds `connections` idle, signed-in sockets of one user (answering the
/// server's pings), reports when all are up, then closes them.
pub async fn idle(a: IdleArgs) -> Result<(), BoxError> {
    let c = a.common;
    let token = tokens(&c, 1).await?.remove(0);
    let gap = Duration::from_secs_f64(1.0 / c.ramp.max(1) as f64);
    let mut opening = Vec::new();
    for _ in 0..c.connections {
        let (url, token) = (c.url.clone(), token.clone());
        opening.push(tokio::spawn(async move { open(&url, &token).await }));
        tokio::time::sleep(gap).await;
    }
    let (mut held, mut failed) = (Vec::new(), 0);
    for t in opening {
        match t.await? {
            Ok(ws) => held.push(tokio::spawn(answer_pings(ws))),
            Err(_) => failed += 1,
        }
    }
    println!(
        "{{\"bench\":\"idle\",\"connections\":{},\"failed\":{failed}}}",
        held.len()
    );
    eprintln!(
        "all {} sockets connected ({failed} failed); holding {} s",
        held.len(),
        a.hold
    );
    tokio::time::sleep(Duration::from_secs(a.hold)).await;
    for task in held {
        task.abort();
    }
    Ok(())
}

/// Keeps an idle socket alive: Engine.IO's server pings want a pong.
async fn answer_pings(mut ws: WsStream) {
    while let Some(Ok(msg)) = ws.next().await {
        if matches!(&msg, Ws::Text(t) if t.as_str() == "2")
            && ws.send(Ws::Text("3".into())).await.is_err()
        {
            break;
        }
    }
}
