//! Fan-out benchmark over STOMP on WebSocket, for ieum and for any plain STOMP
//! broker (RabbitMQ Web-STOMP).
//!
//! C connections are spread over R rooms (C / R per room); in every room P of
//! them publish, together sending `rate` messages per second for `duration`
//! seconds after a `warmup`. Every body carries the publisher, its sequence
//! number and the send time, so receivers measure end-to-end latency and count
//! loss, duplicates and reordering (per publisher, per room).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use ieum_stomp::{Command, Decoder, Frame, Item, Limits, encode};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// ieum: signup over HTTP, Bearer on CONNECT, contract A destinations.
    Ieum,
    /// A plain STOMP broker: login/passcode, /topic/ destinations.
    Stomp,
    /// ieum over Socket.IO v4 on its WebSocket transport (`--url
    /// ws://HOST/socket.io/?EIO=4&transport=websocket`): contract C's
    /// `chat` events, one user per connection, each a member of its room.
    Sio,
}

#[derive(clap::Args, Clone)]
pub struct Args {
    #[arg(long, value_enum, default_value = "ieum")]
    pub(crate) target: Target,
    /// WebSocket URL (ieum: ws://127.0.0.1:8080/ws/chat; RabbitMQ:
    /// ws://127.0.0.1:15674/ws; Socket.IO:
    /// ws://127.0.0.1:8080/socket.io/?EIO=4&transport=websocket).
    #[arg(long)]
    pub(crate) url: String,
    /// ieum's HTTP base (for signups); default from the WebSocket URL.
    #[arg(long)]
    pub(crate) http: Option<String>,
    #[arg(long, default_value = "guest")]
    pub(crate) login: String,
    #[arg(long, default_value = "guest")]
    pub(crate) passcode: String,
    #[arg(long, default_value_t = 1000)]
    pub(crate) connections: usize,
    #[arg(long, default_value_t = 100)]
    pub(crate) rooms: usize,
    /// Publishers per room.
    #[arg(long, default_value_t = 1)]
    pub(crate) publishers: usize,
    /// Messages per second sent in total.
    #[arg(long, default_value_t = 1000.0)]
    pub(crate) rate: f64,
    #[arg(long, default_value_t = 20)]
    pub(crate) duration: u64,
    #[arg(long, default_value_t = 5)]
    pub(crate) warmup: u64,
    /// New connections per second while ramping up.
    #[arg(long, default_value_t = 500)]
    pub(crate) ramp: u64,
    /// A label for the report (W2, W10, W100, ...).
    #[arg(long, default_value = "run")]
    pub(crate) name: String,
    /// RabbitMQ delivering durably (with `--target stomp`): each subscriber
    /// gets its own durable quorum queue bound to the room's topic, every
    /// SEND is persistent and asks for a RECEIPT, which RabbitMQ gives once
    /// the queues hold the message (publisher confirms). Reported as
    /// `stomp-durable`.
    #[arg(long)]
    pub(crate) durable: bool,
    /// The broker's virtual host (CONNECT's `host`); the durable queues of a
    /// run go away with it.
    #[arg(long, default_value = "/")]
    pub(crate) vhost: String,
}

impl Args {
    /// ieum at `url` with contract A and one publisher a room: the base the
    /// other modes (soak, reconnect) adjust.
    pub(crate) fn ieum(url: &str, name: &str) -> Self {
        Args {
            target: Target::Ieum,
            url: url.to_owned(),
            http: None,
            login: String::new(),
            passcode: String::new(),
            connections: 1000,
            rooms: 100,
            publishers: 1,
            rate: 1.0,
            duration: 0,
            warmup: 0,
            ramp: 500,
            name: name.to_owned(),
            durable: false,
            vhost: "/".to_owned(),
        }
    }

    /// The target's name in reports.
    pub(crate) fn target_name(&self) -> String {
        match (self.target, self.durable) {
            (Target::Stomp, true) => "stomp-durable".to_owned(),
            (t, _) => format!("{t:?}").to_lowercase(),
        }
    }
}

pub(crate) fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros() as u64
}

#[derive(Default)]
pub(crate) struct Stats {
    latencies_us: Vec<u32>,
    received: u64,
    duplicates: u64,
    reordered: u64,
    /// ERROR frames received, by their `code` header (a server cutting a slow
    /// consumer says so before it closes).
    errors: std::collections::BTreeMap<String, u64>,
    /// RECEIPTs for SENDs (with `--durable`: the broker's confirms).
    receipts: u64,
}

pub(crate) struct Shared {
    pub(crate) stats: Mutex<Stats>,
    pub(crate) measuring_from: u64,
    pub(crate) measuring_to: u64,
    pub(crate) sent_measured: AtomicU64,
}

impl Stats {
    /// Counts one delivery of publisher `pid`'s `seq`, sent at `sent` µs,
    /// against the last seq seen from it.
    pub(crate) fn observe(
        &mut self,
        shared: &Shared,
        last: &mut HashMap<u32, u64>,
        (pid, seq, sent): (u32, u64, u64),
    ) {
        let now = now_micros();
        if sent >= shared.measuring_from && sent < shared.measuring_to {
            self.received += 1;
            self.latencies_us
                .push(now.saturating_sub(sent).min(u32::MAX as u64) as u32);
        }
        match last.get(&pid) {
            Some(&prev) if seq == prev => self.duplicates += 1,
            Some(&prev) if seq < prev => self.reordered += 1,
            _ => {
                last.insert(pid, seq);
            }
        }
    }

    pub(crate) fn error(&mut self, code: &str) {
        *self.errors.entry(code.to_owned()).or_default() += 1;
    }
}

impl Shared {
    pub(crate) fn new(start_at: u64, a: &Args) -> Self {
        Self {
            stats: Mutex::new(Stats::default()),
            measuring_from: start_at + a.warmup * 1_000_000,
            measuring_to: start_at + (a.warmup + a.duration) * 1_000_000,
            sent_measured: AtomicU64::new(0),
        }
    }

    /// Adds one connection's counts to the run's.
    pub(crate) async fn merge(&self, local: Stats) {
        let mut s = self.stats.lock().await;
        s.received += local.received;
        s.duplicates += local.duplicates;
        s.reordered += local.reordered;
        s.receipts += local.receipts;
        for (code, n) in local.errors {
            *s.errors.entry(code).or_default() += n;
        }
        s.latencies_us.extend(local.latencies_us);
    }
}

/// (publisher id, its seq, sent at µs) from a body.
pub(crate) fn parse_body(target: Target, body: &[u8]) -> Option<(u32, u64, u64)> {
    let text = std::str::from_utf8(body).ok()?;
    let payload = match target {
        // Contract A's delivered shape: the payload is the "message" field. A
        // borrowed, typed parse: the load tool shares the cores with the server,
        // so its own per-message cost is kept close to the plain-STOMP target's.
        Target::Ieum => {
            #[derive(serde::Deserialize)]
            struct Delivered<'a> {
                #[serde(borrow)]
                message: std::borrow::Cow<'a, str>,
            }
            serde_json::from_str::<Delivered<'_>>(text).ok()?.message
        }
        Target::Stomp | Target::Sio => std::borrow::Cow::Borrowed(text),
    };
    parse_payload(&payload)
}

/// `publisher:seq:sent_us`, what every benchmark message carries.
pub(crate) fn parse_payload(payload: &str) -> Option<(u32, u64, u64)> {
    let mut it = payload.split(':');
    Some((
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
    ))
}

/// One HTTP/1.1 request with a JSON body (and a Bearer token when given);
/// answers the response's JSON.
pub(crate) async fn http(
    method: &str,
    base: &str,
    path: &str,
    body: &str,
    token: Option<&str>,
) -> Result<serde_json::Value, BoxError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = base
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut s = tokio::net::TcpStream::connect(&host).await?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await?;
    let raw = String::from_utf8_lossy(&raw);
    let status: u16 = raw
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let payload = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    if !(200..300).contains(&status) {
        return Err(format!("{method} {path}: {status} {payload}").into());
    }
    if payload.trim().is_empty() {
        return Ok(serde_json::Value::Null);
    }
    Ok(serde_json::from_str(payload)?)
}

/// ieum's HTTP base: `--http`, or the WebSocket URL's scheme and host.
pub(crate) fn http_base(a: &Args) -> String {
    a.http.clone().unwrap_or_else(|| {
        let url = a.url.replace("ws://", "http://");
        match url["http://".len()..].find('/') {
            Some(i) => url[..i + "http://".len()].to_owned(),
            None => url,
        }
    })
}

pub(crate) async fn tokens(a: &Args, n: usize) -> Result<Vec<String>, BoxError> {
    let base = http_base(a);
    let run = uuid::Uuid::new_v4().simple().to_string();
    // A few signups at a time: each is a password hash on the server.
    let mut out = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(8) {
        let signups = chunk.iter().map(|i| {
            let body = format!(
                r#"{{"username":"bench{}u{i}","password":"benchpass"}}"#,
                &run[..8]
            );
            let base = base.clone();
            async move { http("POST", &base, "/auth/signup", &body, None).await }
        });
        for v in futures_util::future::join_all(signups).await {
            let v = v?;
            let t = v["data"]["accessToken"]
                .as_str()
                .ok_or_else(|| format!("signup failed: {v}"))?;
            out.push(t.to_owned());
        }
    }
    Ok(out)
}

type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(a: &Args, token: Option<&str>) -> Result<WsStream, BoxError> {
    let mut req = a.url.as_str().into_client_request()?;
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "v12.stomp".parse()?);
    // tungstenite zero-fills its whole read buffer (128 KiB by default) before
    // every read; with small frames that memset was a third of the load tool's
    // CPU, taken from whichever server it measures. Nagle off, as browsers do.
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(8 * 1024);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(config), true).await?;
    let mut connect = Frame::new(Command::Connect)
        .header("accept-version", "1.2")
        .header("host", a.vhost.clone())
        .header("heart-beat", "0,0");
    connect = match token {
        Some(t) => connect.header("Authorization", format!("Bearer {t}")),
        None => connect
            .header("login", a.login.clone())
            .header("passcode", a.passcode.clone()),
    };
    ws.send(Ws::Text(
        String::from_utf8_lossy(&encode(&connect))
            .into_owned()
            .into(),
    ))
    .await?;
    // Wait for CONNECTED.
    let mut d = Decoder::new(Limits::default());
    loop {
        match ws.next().await {
            Some(Ok(Ws::Text(t))) => d.push(t.as_bytes()),
            Some(Ok(Ws::Binary(b))) => d.push(&b),
            Some(Ok(_)) => continue,
            _ => return Err("closed before CONNECTED".into()),
        }
        if let Some(Item::Frame(f)) = d.next()? {
            if f.command == Command::Connected {
                return Ok(ws);
            }
            return Err(format!("CONNECT refused: {:?}", f.get("message")).into());
        }
    }
}

pub(crate) fn destinations(target: Target, room: usize, run: &str) -> (String, String) {
    match target {
        Target::Ieum => (
            format!("/topic/chat.b{run}-{room}"),
            "/app/chat.send".to_owned(),
        ),
        Target::Stomp | Target::Sio => (
            format!("/topic/b{run}.{room}"),
            format!("/topic/b{run}.{room}"),
        ),
    }
}

/// Opens a connection and subscribes it, waiting for the SUBSCRIBE's RECEIPT so
/// that no message is sent before every subscriber listens.
/// (RabbitMQ sends no RECEIPT for SUBSCRIBE: there a probe message sent to the
/// topic and received back proves the subscription instead.)
pub(crate) async fn ready_connection(
    a: &Args,
    token: Option<&str>,
    topic: &str,
) -> Result<(WsStream, Decoder), BoxError> {
    let mut ws = open(a, token).await?;
    // RabbitMQ names a durable subscription's queue after its id: one queue
    // per subscriber needs an id of its own.
    let id = if a.durable {
        format!("d-{}", uuid::Uuid::new_v4().simple())
    } else {
        "0".to_owned()
    };
    let mut sub = Frame::new(Command::Subscribe)
        .header("id", id)
        .header("destination", topic);
    if a.target == Target::Ieum {
        sub = sub.header("receipt", "ready");
    }
    if a.durable {
        sub = sub
            .header("durable", "true")
            .header("auto-delete", "false")
            .header("x-queue-type", "quorum");
    }
    ws.send(Ws::Text(
        String::from_utf8_lossy(&encode(&sub)).into_owned().into(),
    ))
    .await?;
    let probe = format!("probe-{}", uuid::Uuid::new_v4().simple());
    if a.target == Target::Stomp {
        let f = Frame::new(Command::Send)
            .header("destination", topic)
            .body(probe.clone());
        ws.send(Ws::Text(
            String::from_utf8_lossy(&encode(&f)).into_owned().into(),
        ))
        .await?;
    }
    let mut d = Decoder::new(Limits {
        max_frame_bytes: 1 << 20,
        ..Limits::default()
    });
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
            Ok(Some(Ok(Ws::Text(t)))) => d.push(t.as_bytes()),
            Ok(Some(Ok(Ws::Binary(b)))) => d.push(&b),
            Ok(Some(Ok(_))) => continue,
            _ => return Err("no RECEIPT for SUBSCRIBE".into()),
        }
        while let Some(item) = d.next()? {
            if let Item::Frame(f) = item {
                match f.command {
                    Command::Receipt => return Ok((ws, d)),
                    Command::Message if f.body == probe.as_bytes() => return Ok((ws, d)),
                    Command::Error => {
                        return Err(format!("SUBSCRIBE refused: {:?}", f.get("message")).into());
                    }
                    _ => {}
                }
            }
        }
    }
}

pub async fn run(a: Args) -> Result<(), BoxError> {
    if a.target == Target::Sio {
        return crate::sio::run(a).await;
    }
    let run = uuid::Uuid::new_v4().simple().to_string()[..6].to_owned();
    let per_room = (a.connections / a.rooms).max(1);
    let users = if a.target == Target::Ieum {
        eprintln!("signing up {} users...", per_room.min(50));
        tokens(&a, per_room.min(50)).await?
    } else {
        Vec::new()
    };
    // Phase 1: every connection opened and subscribed (ramped).
    let ramp_gap = Duration::from_secs_f64(1.0 / a.ramp.max(1) as f64);
    let mut opening = Vec::new();
    for c in 0..a.connections {
        let room = c % a.rooms;
        let token = users.get(c % users.len().max(1)).cloned();
        let a2 = a.clone();
        let (topic, _) = destinations(a.target, room, &run);
        opening.push(tokio::spawn(async move {
            ready_connection(&a2, token.as_deref(), &topic).await
        }));
        tokio::time::sleep(ramp_gap).await;
    }
    let mut conns = Vec::new();
    let mut failed = 0;
    for (c, t) in opening.into_iter().enumerate() {
        match t.await? {
            Ok(conn) => conns.push((c, conn)),
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
    eprintln!("{} connections subscribed; sending", conns.len());
    // Phase 2: warm-up, then the measured window.
    let start_at = now_micros() + 500_000;
    let shared = Arc::new(Shared::new(start_at, &a));
    let publishers_total = a.rooms * a.publishers.min(per_room);
    let interval = Duration::from_secs_f64(publishers_total as f64 / a.rate.max(0.001));
    let mut tasks = Vec::new();
    let mut publisher_id = 0u32;
    for (c, (ws, decoder)) in conns {
        let room = c % a.rooms;
        let pid = if c / a.rooms < a.publishers {
            publisher_id += 1;
            publisher_id
        } else {
            0
        };
        let a2 = a.clone();
        let shared = shared.clone();
        let run = run.clone();
        tasks.push(tokio::spawn(async move {
            connection(a2, ws, decoder, room, pid, interval, start_at, shared, run).await;
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    report(&a, &shared, per_room).await;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn connection(
    a: Args,
    ws: WsStream,
    mut d: Decoder,
    room: usize,
    publisher: u32,
    interval: Duration,
    start_at: u64,
    shared: Arc<Shared>,
    run: String,
) {
    let (mut tx, mut rx) = ws.split();
    let (_, send_dest) = destinations(a.target, room, &run);
    let end = shared.measuring_to + 3_000_000;
    let reader_shared = shared.clone();
    let target = a.target;
    let reader = tokio::spawn(async move {
        let mut last: HashMap<u32, u64> = HashMap::new();
        let mut local = Stats::default();
        let deadline =
            tokio::time::Instant::now() + Duration::from_micros(end.saturating_sub(now_micros()));
        while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(deadline, rx.next()).await {
            match msg {
                Ws::Text(t) => d.push(t.as_bytes()),
                Ws::Binary(b) => d.push(&b),
                _ => continue,
            }
            while let Ok(Some(item)) = d.next() {
                let Item::Frame(f) = item else { continue };
                if f.command == Command::Error {
                    local.error(f.get("code").or(f.get("message")).unwrap_or("?"));
                }
                if f.command == Command::Receipt {
                    local.receipts += 1;
                }
                if f.command != Command::Message {
                    continue;
                }
                if let Some(m) = parse_body(target, &f.body) {
                    local.observe(&reader_shared, &mut last, m);
                }
            }
        }
        reader_shared.merge(local).await;
    });
    if publisher > 0 {
        // Spread publishers over the interval so sends are not in lockstep.
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
            let payload = format!("{publisher}:{seq}:{now}");
            let body = match a.target {
                Target::Ieum => format!(r#"{{"roomId":"b{run}-{room}","message":"{payload}"}}"#),
                Target::Stomp | Target::Sio => payload,
            };
            if now >= shared.measuring_from {
                shared.sent_measured.fetch_add(1, Ordering::Relaxed);
            }
            let mut f = Frame::new(Command::Send)
                .header("destination", send_dest.clone())
                .body(body);
            if a.durable {
                f = f
                    .header("persistent", "true")
                    .header("receipt", seq.to_string());
            }
            if tx
                .send(Ws::Text(
                    String::from_utf8_lossy(&encode(&f)).into_owned().into(),
                ))
                .await
                .is_err()
            {
                break;
            }
        }
    }
    let _ = reader.await;
}

pub(crate) async fn report(a: &Args, shared: &Shared, per_room: usize) {
    let mut s = shared.stats.lock().await;
    s.latencies_us.sort_unstable();
    let pct = |p: f64| -> f64 {
        if s.latencies_us.is_empty() {
            return f64::NAN;
        }
        let i = ((s.latencies_us.len() as f64 * p).ceil() as usize)
            .saturating_sub(1)
            .min(s.latencies_us.len() - 1);
        s.latencies_us[i] as f64 / 1000.0
    };
    let sent = shared.sent_measured.load(Ordering::Relaxed);
    let expected = sent * per_room as u64;
    let lost = expected.saturating_sub(s.received);
    let report = serde_json::json!({
        "bench": "fanout", "name": a.name, "target": a.target_name(),
        "connections": a.connections, "rooms": a.rooms, "publishers_per_room": a.publishers,
        "rate_sent": a.rate, "duration_s": a.duration, "sent": sent, "expected": expected,
        "received": s.received, "lost": lost, "duplicates": s.duplicates, "reordered": s.reordered,
        "errors": s.errors, "receipts": s.receipts,
        "delivered_per_s": s.received as f64 / a.duration as f64,
        "p50_ms": pct(0.5), "p90_ms": pct(0.9), "p99_ms": pct(0.99), "p999_ms": pct(0.999),
        "max_ms": pct(1.0),
    });
    println!("{report}");
    println!(
        "{:<6} {:<6} sent {:>7} delivered {:>8}/{:<8} lost {:>6} dup {:>4} reorder {:>4} | p50 {:>7.2} p90 {:>7.2} p99 {:>7.2} p99.9 {:>7.2} max {:>7.2} ms",
        a.name,
        a.target_name(),
        sent,
        s.received,
        expected,
        lost,
        s.duplicates,
        s.reordered,
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(0.999),
        pct(1.0)
    );
}

#[derive(clap::Args, Clone)]
pub struct IdleArgs {
    #[command(flatten)]
    pub common: Args,
    /// Seconds to hold the connections open once all are subscribed.
    #[arg(long, default_value_t = 10)]
    pub hold: u64,
}

/// Opens and subscribes `connections` idle connections, reports when all are
/// up, holds them, then closes. Measure the server's RSS meanwhile.
pub async fn idle(a: IdleArgs) -> Result<(), BoxError> {
    if a.common.target == Target::Sio {
        return crate::sio::idle(a).await;
    }
    let c = a.common;
    let run = uuid::Uuid::new_v4().simple().to_string()[..6].to_owned();
    let users = if c.target == Target::Ieum {
        tokens(&c, 1).await?
    } else {
        Vec::new()
    };
    let ramp_gap = Duration::from_secs_f64(1.0 / c.ramp.max(1) as f64);
    let mut opening = Vec::new();
    for i in 0..c.connections {
        let (topic, _) = destinations(c.target, i % c.rooms, &run);
        let token = users.first().cloned();
        let a2 = c.clone();
        opening.push(tokio::spawn(async move {
            ready_connection(&a2, token.as_deref(), &topic).await
        }));
        tokio::time::sleep(ramp_gap).await;
    }
    let mut held = Vec::new();
    let mut failed = 0;
    for t in opening {
        match t.await? {
            Ok(conn) => held.push(conn),
            Err(_) => failed += 1,
        }
    }
    println!(
        "{{\"bench\":\"idle\",\"connections\":{},\"failed\":{failed}}}",
        held.len()
    );
    eprintln!(
        "all {} connections subscribed ({failed} failed); holding {} s",
        held.len(),
        a.hold
    );
    tokio::time::sleep(Duration::from_secs(a.hold)).await;
    drop(held);
    Ok(())
}
