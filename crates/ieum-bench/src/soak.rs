//! Soak (issue 21): W10's shape (C connections, 10 a room, one publisher a
//! room) at a fixed rate for a long time, with connection churn: every
//! minute `churn` percent of the connections drop and connect again. Each
//! minute prints one line: the server's RSS and open files (from /proc of
//! `--server-pid`), deliveries, p99 send-to-delivery latency, reconnects
//! and ERROR frames. A leak shows as a line that keeps rising.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use ieum_stomp::{Command, Frame, Item, encode};
use tokio::sync::{Mutex, Notify};
use tokio_tungstenite::tungstenite::Message as Ws;

use crate::fanout::{self, Target, now_micros};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(clap::Args, Clone)]
pub struct Args {
    /// ieum's WebSocket URL (ws://HOST/ws/chat).
    #[arg(long)]
    url: String,
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    #[arg(long, default_value_t = 100)]
    rooms: usize,
    /// Messages per second sent in total.
    #[arg(long, default_value_t = 1250.0)]
    rate: f64,
    #[arg(long, default_value_t = 30)]
    minutes: u64,
    /// Percent of the connections that reconnect each minute.
    #[arg(long, default_value_t = 1.0)]
    churn: f64,
    /// The server's process id, for its RSS and open files.
    #[arg(long)]
    server_pid: u32,
}

#[derive(Default)]
struct Minute {
    latencies_us: Vec<u32>,
    errors: std::collections::BTreeMap<String, u64>,
}

struct Shared {
    minute: Mutex<Minute>,
    delivered: AtomicU64,
    sent: AtomicU64,
    reconnects: AtomicU64,
    end: u64,
}

fn fanout_args(a: &Args) -> fanout::Args {
    fanout::Args {
        connections: a.connections,
        rooms: a.rooms,
        rate: a.rate,
        duration: a.minutes * 60,
        ..fanout::Args::ieum(&a.url, "soak")
    }
}

fn proc_status(pid: u32) -> (u64, usize) {
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?.to_owned();
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    (rss, fds)
}

pub async fn run(a: Args) -> Result<(), BoxError> {
    let fa = fanout_args(&a);
    let run = uuid::Uuid::new_v4().simple().to_string()[..6].to_owned();
    let per_room = (a.connections / a.rooms).max(1);
    let users = fanout::tokens(&fa, per_room.min(50)).await?;
    // The connections outlive the last report by a margin, so that it sees them.
    let end = now_micros() + (a.minutes * 60 + 15) * 1_000_000;
    let shared = Arc::new(Shared {
        minute: Mutex::new(Minute::default()),
        delivered: AtomicU64::new(0),
        sent: AtomicU64::new(0),
        reconnects: AtomicU64::new(0),
        end,
    });
    let interval = Duration::from_secs_f64(a.rooms as f64 / a.rate.max(0.001));
    let rooms = a.rooms;
    let mut kicks = Vec::new();
    let mut tasks = Vec::new();
    for c in 0..a.connections {
        let kick = Arc::new(Notify::new());
        kicks.push(kick.clone());
        let token = users[c % users.len()].clone();
        let (fa, shared, run) = (fa.clone(), shared.clone(), run.clone());
        let publisher = c < a.rooms;
        tasks.push(tokio::spawn(async move {
            connection(fa, token, c % rooms, publisher, interval, kick, shared, run).await
        }));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    eprintln!(
        "{} connections started; soaking for {} min",
        a.connections, a.minutes
    );
    println!(
        "| minute | server RSS MiB | server open files | delivered/s | p99 ms | reconnects | ERROR frames |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let per_minute = ((a.connections as f64 * a.churn / 100.0).round() as usize).max(1);
    let mut next_kick = 0;
    let mut delivered_before = 0;
    for minute in 1..=a.minutes {
        tokio::time::sleep(Duration::from_secs(60)).await;
        let m = std::mem::take(&mut *shared.minute.lock().await);
        let mut lat = m.latencies_us;
        lat.sort_unstable();
        let p99 = lat
            .get(((lat.len() as f64 * 0.99).ceil() as usize).saturating_sub(1))
            .map_or(0.0, |us| *us as f64 / 1000.0);
        let delivered = shared.delivered.load(Ordering::Relaxed);
        let (rss, fds) = proc_status(a.server_pid);
        println!(
            "| {minute} | {:.1} | {fds} | {:.0} | {p99:.2} | {} | {:?} |",
            rss as f64 / 1024.0,
            (delivered - delivered_before) as f64 / 60.0,
            shared.reconnects.load(Ordering::Relaxed),
            m.errors
        );
        delivered_before = delivered;
        // This minute's churn: the next connections in turn drop and reconnect.
        for _ in 0..per_minute {
            kicks[next_kick % kicks.len()].notify_one();
            next_kick += 1;
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    eprintln!(
        "sent {}, delivered {}",
        shared.sent.load(Ordering::Relaxed),
        shared.delivered.load(Ordering::Relaxed)
    );
    Ok(())
}

/// One client: connects, subscribes to its room, publishes if it is its
/// room's publisher, and connects again when kicked, until the end.
#[allow(clippy::too_many_arguments)]
async fn connection(
    fa: fanout::Args,
    token: String,
    room: usize,
    publisher: bool,
    interval: Duration,
    kick: Arc<Notify>,
    shared: Arc<Shared>,
    run: String,
) {
    let (topic, send_dest) = fanout::destinations(Target::Ieum, room, &run);
    let mut seq = 0u64;
    while now_micros() < shared.end {
        let (ws, mut d) = match fanout::ready_connection(&fa, Some(&token), &topic).await {
            Ok(c) => c,
            Err(e) => {
                shared
                    .minute
                    .lock()
                    .await
                    .errors
                    .entry(format!("connect: {e}"))
                    .and_modify(|n| *n += 1)
                    .or_insert(1);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let (mut tx, mut rx) = ws.split();
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let deadline = tokio::time::Instant::now()
            + Duration::from_micros(shared.end.saturating_sub(now_micros()));
        let kicked = loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break false,
                _ = kick.notified() => break true,
                _ = tick.tick(), if publisher => {
                    seq += 1;
                    let now = now_micros();
                    let body = format!(r#"{{"roomId":"b{run}-{room}","message":"1:{seq}:{now}"}}"#);
                    let f = Frame::new(Command::Send).header("destination", send_dest.clone()).body(body);
                    if tx.send(Ws::Text(String::from_utf8_lossy(&encode(&f)).into_owned().into())).await.is_err() {
                        break true;
                    }
                    shared.sent.fetch_add(1, Ordering::Relaxed);
                }
                msg = rx.next() => {
                    let Some(Ok(msg)) = msg else { break true };
                    match msg {
                        Ws::Text(t) => d.push(t.as_bytes()),
                        Ws::Binary(b) => d.push(&b),
                        _ => continue,
                    }
                    while let Ok(Some(item)) = d.next() {
                        let Item::Frame(f) = item else { continue };
                        if f.command == Command::Error {
                            let code = f.get("code").or(f.get("message")).unwrap_or("?").to_owned();
                            shared.minute.lock().await.errors.entry(code).and_modify(|n| *n += 1).or_insert(1);
                        }
                        if f.command != Command::Message {
                            continue;
                        }
                        if let Some((_, _, sent)) = fanout::parse_body(Target::Ieum, &f.body) {
                            shared.delivered.fetch_add(1, Ordering::Relaxed);
                            let us = now_micros().saturating_sub(sent).min(u32::MAX as u64) as u32;
                            shared.minute.lock().await.latencies_us.push(us);
                        }
                    }
                }
            }
        };
        let _ = tx.send(Ws::Close(None)).await;
        if kicked {
            shared.reconnects.fetch_add(1, Ordering::Relaxed);
        }
    }
}
