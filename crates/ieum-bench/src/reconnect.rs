//! Reconnect storm (issue 22): N connected, subscribed clients drop at once
//! (as when their node restarts or a load balancer resets them), messages
//! arrive in their rooms while they are away, and they all reconnect at the
//! same moment and resume with `last-seq`.
//!
//! It reports handshakes per second, the time until every client is resumed
//! (its SUBSCRIBE's RECEIPT) and until every client has its replay (each
//! missed message, by seq, with no gap and no duplicate), and every failure
//! by its code: the upgrade's HTTP status, or the ERROR frame's `code`. A
//! client whose attempt fails waits (the server's Retry-After when it gives
//! one, else 100 ms doubling to 2 s, with jitter) and tries again until the
//! deadline, as a well-behaved mobile client does.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use ieum_stomp::{Command, Decoder, Frame, Item, Limits, encode};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::fanout::{self, Target};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[derive(clap::Args, Clone)]
pub struct Args {
    /// ieum's WebSocket URL (ws://HOST/ws/chat).
    #[arg(long)]
    url: String,
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    #[arg(long, default_value_t = 100)]
    rooms: usize,
    /// Messages sent to every room while its clients are away.
    #[arg(long, default_value_t = 3)]
    missed: u64,
    /// New connections per second while the clients first connect.
    #[arg(long, default_value_t = 1000)]
    ramp: u64,
    /// Seconds the reconnecting clients keep trying.
    #[arg(long, default_value_t = 60)]
    deadline: u64,
}

/// Replay errors shown on stderr (the first few, to tell what they are).
static WRONG_SHOWN: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// What one client's reconnect came to.
struct Outcome {
    /// When its SUBSCRIBE's RECEIPT came (from the storm's start).
    resumed: Option<Duration>,
    /// When the last missed message came.
    replayed: Option<Duration>,
    /// Failed attempts, by code.
    failures: BTreeMap<String, u64>,
    /// Missed messages received out of order, twice, or not at all.
    wrong: u64,
}

pub async fn run(a: Args) -> Result<(), BoxError> {
    // Only for sign-ups over HTTP (the clients below speak for themselves).
    let fa = fanout::Args::ieum(&a.url, "reconnect");
    let run = uuid::Uuid::new_v4().simple().to_string()[..6].to_owned();
    let per_room = (a.connections / a.rooms).max(1);
    let users = fanout::tokens(&fa, per_room.min(50) + 1).await?;
    let (publisher_token, users) = users.split_last().ok_or("no users")?;

    // The publisher joins every room (contract A joins on SUBSCRIBE).
    let mut publisher = open(&a.url, publisher_token)
        .await
        .map_err(|e| format!("publisher: {e}"))?;
    for room in 0..a.rooms {
        let (topic, _) = fanout::destinations(Target::Ieum, room, &run);
        subscribe(&mut publisher, &format!("p{room}"), &topic, None).await?;
    }

    // Every client connected and subscribed, remembering its room's seq.
    let gap = Duration::from_secs_f64(1.0 / a.ramp.max(1) as f64);
    let mut opening = Vec::new();
    for c in 0..a.connections {
        let (topic, _) = fanout::destinations(Target::Ieum, c % a.rooms, &run);
        let token = users[c % users.len()].clone();
        let url = a.url.clone();
        opening.push(tokio::spawn(async move {
            let mut ws = open(&url, &token).await?;
            let seq = subscribe(&mut ws, "0", &topic, None).await?;
            Ok::<_, BoxError>((ws, seq))
        }));
        tokio::time::sleep(gap).await;
    }
    let mut clients = Vec::with_capacity(a.connections);
    for (c, t) in opening.into_iter().enumerate() {
        let (ws, seq) = t.await?.map_err(|e| format!("connection {c}: {e}"))?;
        clients.push((ws, seq));
    }
    eprintln!("{} clients subscribed; dropping them all", clients.len());

    // All drop at once: the TCP connections close under the server.
    let seqs: Vec<i64> = clients.iter().map(|(_, seq)| *seq).collect();
    drop(clients);

    // While they are away, every room gets `missed` messages.
    for room in 0..a.rooms {
        for n in 0..a.missed {
            let (_, send) = fanout::destinations(Target::Ieum, room, &run);
            let body = format!(r#"{{"roomId":"b{run}-{room}","message":"missed {n}"}}"#);
            let receipt = format!("m{room}-{n}");
            let f = Frame::new(Command::Send)
                .header("destination", send)
                .header("receipt", receipt.clone())
                .body(body);
            publisher.send(text(&f)).await?;
            until_receipt(&mut publisher, &receipt).await?;
        }
    }

    // The storm: every client at once, each resuming from its seq.
    eprintln!("reconnecting {} clients at once", seqs.len());
    let start = Instant::now();
    let deadline = start + Duration::from_secs(a.deadline);
    let outcomes = Arc::new(Mutex::new(Vec::with_capacity(seqs.len())));
    let mut storm = Vec::with_capacity(seqs.len());
    for (c, seq) in seqs.into_iter().enumerate() {
        let (topic, _) = fanout::destinations(Target::Ieum, c % a.rooms, &run);
        let token = users[c % users.len()].clone();
        let (url, outcomes, missed) = (a.url.clone(), outcomes.clone(), a.missed);
        storm.push(tokio::spawn(async move {
            let outcome = resume(&url, &token, &topic, seq, missed, start, deadline).await;
            outcomes.lock().await.push(outcome);
        }));
    }
    for t in storm {
        t.await?;
    }
    report(&outcomes.lock().await, a.missed);
    Ok(())
}

/// One client's reconnect: tries until resumed or the deadline, then reads
/// its replay.
async fn resume(
    url: &str,
    token: &str,
    topic: &str,
    last_seq: i64,
    missed: u64,
    start: Instant,
    deadline: Instant,
) -> Outcome {
    let mut outcome = Outcome {
        resumed: None,
        replayed: None,
        failures: BTreeMap::new(),
        wrong: 0,
    };
    let mut attempt = 0u32;
    let mut ws = loop {
        let tried = async {
            let mut ws = open(url, token).await?;
            subscribe(&mut ws, "0", topic, Some(last_seq)).await?;
            Ok::<_, Failure>(ws)
        };
        match tried.await {
            Ok(ws) => break ws,
            Err(failure) => {
                *outcome.failures.entry(failure.code).or_default() += 1;
                attempt += 1;
                let wait = failure
                    .retry_after
                    .unwrap_or_else(|| Duration::from_millis((100u64 << attempt.min(5)).min(2000)));
                let jitter = Duration::from_millis(u64::from(rand_below(250)));
                if Instant::now() + wait > deadline {
                    return outcome;
                }
                tokio::time::sleep(wait + jitter).await;
            }
        }
    };
    outcome.resumed = Some(start.elapsed());
    // The replay: seqs above last-seq, rising, each once. Contract A leaves
    // SYSTEM notices out (joins reach it as events), so a rise by more than
    // one is no loss; the missed messages must all come, in their order.
    let mut next = last_seq + 1;
    let mut expected_missed = 0;
    let mut got = 0;
    let mut decoder = Decoder::new(Limits::default());
    let until = Instant::now() + Duration::from_secs(30);
    while got < missed {
        let Ok(Some(Ok(msg))) = tokio::time::timeout_at(until.into(), ws.next()).await else {
            break;
        };
        match msg {
            Ws::Text(t) => decoder.push(t.as_bytes()),
            Ws::Binary(b) => decoder.push(&b),
            _ => continue,
        }
        while let Ok(Some(Item::Frame(f))) = decoder.next() {
            let Some(seq) = f.get("seq").and_then(|s| s.parse::<i64>().ok()) else {
                continue;
            };
            if seq < next {
                outcome.wrong += 1;
                if WRONG_SHOWN.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < 5 {
                    eprintln!(
                        "replay: after seq {last_seq} expected above {next}, got {seq}: {}",
                        String::from_utf8_lossy(&f.body)
                            .chars()
                            .take(160)
                            .collect::<String>()
                    );
                }
            }
            next = next.max(seq + 1);
            let body = String::from_utf8_lossy(&f.body);
            if body.contains("missed ") {
                if !body.contains(&format!("\"missed {expected_missed}\"")) {
                    outcome.wrong += 1;
                }
                expected_missed += 1;
                got += 1;
            }
        }
    }
    if got == missed {
        outcome.replayed = Some(start.elapsed());
    } else {
        outcome.wrong += missed - got;
        if WRONG_SHOWN.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < 5 {
            eprintln!("replay: after seq {last_seq}, {got} of {missed} missed messages came");
        }
    }
    let _ = ws.send(Ws::Close(None)).await;
    outcome
}

fn report(outcomes: &[Outcome], missed: u64) {
    let n = outcomes.len();
    let mut resumed: Vec<Duration> = outcomes.iter().filter_map(|o| o.resumed).collect();
    resumed.sort_unstable();
    let replayed = outcomes.iter().filter_map(|o| o.replayed).max();
    let mut failures: BTreeMap<&str, u64> = BTreeMap::new();
    for o in outcomes {
        for (code, count) in &o.failures {
            *failures.entry(code).or_default() += count;
        }
    }
    let clients_retried = outcomes.iter().filter(|o| !o.failures.is_empty()).count();
    let wrong: u64 = outcomes.iter().map(|o| o.wrong).sum();
    let all = resumed.last().copied().unwrap_or_default();
    let at = |q: f64| {
        resumed
            .get(((resumed.len() as f64 * q).ceil() as usize).saturating_sub(1))
            .map_or(0.0, Duration::as_secs_f64)
    };
    println!(
        "| clients | resumed | handshakes/s | p50 resumed s | p99 resumed s | all resumed s | all replayed s | clients that retried | failed attempts by code | replay errors |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    println!(
        "| {n} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {clients_retried} | {failures:?} | {wrong} (of {} missed messages) |",
        resumed.len(),
        resumed.len() as f64 / all.as_secs_f64().max(1e-6),
        at(0.5),
        at(0.99),
        all.as_secs_f64(),
        replayed.map_or("-".into(), |d| format!("{:.2}", d.as_secs_f64())),
        n as u64 * missed,
    );
}

/// A failed attempt: its code (`http_503`, an ERROR frame's code, `io`).
struct Failure {
    code: String,
    retry_after: Option<Duration>,
}

impl From<tokio_tungstenite::tungstenite::Error> for Failure {
    fn from(e: tokio_tungstenite::tungstenite::Error) -> Self {
        use tokio_tungstenite::tungstenite::Error;
        match e {
            Error::Http(response) => Failure {
                code: format!("http_{}", response.status().as_u16()),
                retry_after: response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok()?.trim().parse().ok())
                    .map(Duration::from_secs),
            },
            Error::Io(io) => Failure {
                code: format!("io_{:?}", io.kind()),
                retry_after: None,
            },
            other => Failure {
                code: format!("ws: {other}"),
                retry_after: None,
            },
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.code)
    }
}

impl From<Failure> for BoxError {
    fn from(f: Failure) -> Self {
        f.code.into()
    }
}

fn text(f: &Frame) -> Ws {
    Ws::Text(String::from_utf8_lossy(&encode(f)).into_owned().into())
}

/// Upgrades and CONNECTs with the token.
async fn open(url: &str, token: &str) -> Result<WsStream, Failure> {
    let mut req = url.into_client_request()?;
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "v12.stomp".parse().expect("ascii"),
    );
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(8 * 1024);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(config), true).await?;
    let connect = Frame::new(Command::Connect)
        .header("accept-version", "1.2")
        .header("host", "/")
        .header("heart-beat", "0,0")
        .header("Authorization", format!("Bearer {token}"));
    ws.send(text(&connect)).await?;
    match next_frame(&mut ws).await? {
        f if f.command == Command::Connected => Ok(ws),
        f => Err(refused(&f)),
    }
}

/// SUBSCRIBEs (resuming after `last_seq` when given) and answers the seq live
/// delivery starts after, from the RECEIPT.
async fn subscribe(
    ws: &mut WsStream,
    id: &str,
    topic: &str,
    last_seq: Option<i64>,
) -> Result<i64, Failure> {
    let mut sub = Frame::new(Command::Subscribe)
        .header("id", id)
        .header("destination", topic)
        .header("receipt", format!("s-{id}"));
    if let Some(seq) = last_seq {
        sub = sub.header("last-seq", seq.to_string());
    }
    ws.send(text(&sub)).await?;
    loop {
        let f = next_frame(ws).await?;
        match f.command {
            Command::Receipt => {
                return Ok(f.get("last-seq").and_then(|s| s.parse().ok()).unwrap_or(0));
            }
            Command::Error => return Err(refused(&f)),
            _ => {}
        }
    }
}

async fn until_receipt(ws: &mut WsStream, receipt: &str) -> Result<(), Failure> {
    loop {
        let f = next_frame(ws).await?;
        match f.command {
            Command::Receipt if f.get("receipt-id") == Some(receipt) => return Ok(()),
            Command::Error => return Err(refused(&f)),
            _ => {}
        }
    }
}

fn refused(f: &Frame) -> Failure {
    Failure {
        code: f
            .get("code")
            .or(f.get("message"))
            .unwrap_or("error")
            .to_owned(),
        retry_after: None,
    }
}

/// The next frame (30 s at most; a single frame per WebSocket message is
/// what ieum sends, but a decoder keeps any rest).
async fn next_frame(ws: &mut WsStream) -> Result<Frame, Failure> {
    let mut decoder = Decoder::new(Limits {
        max_frame_bytes: 1 << 20,
        ..Limits::default()
    });
    let timeout = |what: &str| Failure {
        code: what.into(),
        retry_after: None,
    };
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .map_err(|_| timeout("timeout"))?
            .ok_or_else(|| timeout("closed"))??;
        match msg {
            Ws::Text(t) => decoder.push(t.as_bytes()),
            Ws::Binary(b) => decoder.push(&b),
            Ws::Close(_) => return Err(timeout("closed")),
            _ => continue,
        }
        if let Ok(Some(Item::Frame(f))) = decoder.next() {
            return Ok(f);
        }
    }
}

/// A small random number for jitter (no rand dependency for one call).
fn rand_below(n: u32) -> u32 {
    (uuid::Uuid::new_v4().as_u128() % u128::from(n)) as u32
}
