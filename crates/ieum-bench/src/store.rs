//! Store throughput: messages durably stored per second on PostgreSQL.
//!
//! `S` concurrent senders each call the message store's `append` in a loop, as
//! SENDs do (every call returns after its batch committed, so each counts as a
//! RECEIPT after commit) for `duration` seconds after a warm-up. The reference
//! is the same database's rate of plain single-row INSERTs, one transaction
//! each, from the same number of senders over a pool as large as the server's.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use ieum_domain::message::{MessageKind, NewMessage};
use ieum_domain::ports::MessageRepository;
use ieum_store::{SqlMessages, Store, StoreOptions, WriterOptions};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use uuid::Uuid;

use crate::search::{create_database, drop_database};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(clap::Args, Clone)]
pub struct Args {
    /// A PostgreSQL URL whose user may CREATE DATABASE.
    #[arg(
        long,
        env = "BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
    )]
    admin_url: String,
    /// Concurrent senders.
    #[arg(long, default_value_t = 1000)]
    senders: usize,
    #[arg(long, default_value_t = 100)]
    rooms: usize,
    /// Writer tasks of the message store (the server's IEUM_DB_WRITERS).
    #[arg(long, default_value_t = 4)]
    writers: usize,
    /// Pool size (the server's IEUM_DB_MAX_CONNECTIONS).
    #[arg(long, default_value_t = 32)]
    pool: u32,
    #[arg(long, default_value_t = 10)]
    duration: u64,
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// Also measure the single-row INSERT reference.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    reference: bool,
    /// Sends per second in total, paced (0: each sender sends again as soon as
    /// its last send is stored, to find the most the store takes). Paced, the
    /// figure to read is the append latency: the store's own share of a SEND's
    /// end-to-end latency at that rate.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    #[arg(long)]
    keep: bool,
}

/// (p50, p99, p99.9, max) in milliseconds.
fn percentiles(mut us: Vec<u32>) -> serde_json::Value {
    us.sort_unstable();
    let at = |p: f64| {
        us.get(((us.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .map_or(f64::NAN, |v| *v as f64 / 1000.0)
    };
    serde_json::json!({"p50_ms": at(0.5), "p99_ms": at(0.99), "p999_ms": at(0.999), "max_ms": at(1.0)})
}

pub async fn run(a: Args) -> Result<(), BoxError> {
    let (admin, name, url) = create_database(&a.admin_url).await?;
    let result = bench(&a, &url).await;
    drop_database(&admin, &name, a.keep).await?;
    result
}

const SENDER: &str = "00000000-0000-4000-8000-000000000001";

async fn bench(a: &Args, url: &str) -> Result<(), BoxError> {
    let store = Store::connect(
        url,
        &StoreOptions {
            max_connections: a.pool,
            ..StoreOptions::default()
        },
    )
    .await?;
    store.migrate().await?;
    let db = store.connection();
    db.execute_unprepared(&format!(
        "INSERT INTO users (id, username, display_name, password_hash, created_at, updated_at) \
         VALUES ('{SENDER}', 'bench', 'bench', 'x', now(), now()); \
         INSERT INTO rooms (id, kind, name, visibility, member_limit, member_count, created_by, created_at, last_seq) \
         SELECT 'room-' || r, 'group', 'room ' || r, 'public', 1000, 1, '{SENDER}', now(), 0 \
         FROM generate_series(0, {}) r",
        a.rooms - 1
    ))
    .await?;
    let sender = Uuid::parse_str(SENDER)?;

    // Group commit through the store, as the server stores SENDs.
    let messages = Arc::new(SqlMessages::new(
        store.clone(),
        WriterOptions {
            writers: a.writers,
            ..WriterOptions::default()
        },
    ));
    let (stored, per_s, latency) = drive(a, {
        let messages = messages.clone();
        move |room: usize, n: u64| {
            let messages = messages.clone();
            async move {
                messages
                    .append(NewMessage {
                        id: Uuid::now_v7(),
                        room_id: format!("room-{room}"),
                        sender_id: sender,
                        sender_username: "bench".into(),
                        sender_name: "bench".into(),
                        sender_image: None,
                        kind: MessageKind::Text,
                        content: format!("message {n} 안녕하세요"),
                        image_url: None,
                        client_msg_id: Some(format!("c{room}-{n}")),
                        created_at: Utc::now(),
                        parent_id: None,
                        expires_at: None,
                        mentions: Vec::new(),
                    })
                    .await
                    .is_ok()
            }
        }
    })
    .await;
    let count: i64 = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM messages",
        ))
        .await?
        .ok_or("no count")?
        .try_get("", "n")?;
    let gapless: bool = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT bool_and(n = last_seq AND mx = last_seq) AS ok FROM rooms r \
             JOIN (SELECT room_id, count(*) AS n, max(seq) AS mx FROM messages GROUP BY room_id) m \
             ON m.room_id = r.id",
        ))
        .await?
        .ok_or("no check")?
        .try_get::<Option<bool>>("", "ok")?
        .unwrap_or(true);
    println!(
        "{}",
        serde_json::json!({
            "bench": "store", "mode": "group_commit", "senders": a.senders, "rooms": a.rooms,
            "writers": a.writers, "pool": a.pool, "rate": a.rate, "stored": stored,
            "per_s": per_s.round(), "rows": count, "seqs_gapless": gapless,
            "append_latency": latency,
        })
    );
    println!(
        "group commit ({} writers): {:>8.0} messages/s durably stored ({stored} in {} s; {count} rows, seqs gapless: {gapless}); append latency {latency}",
        a.writers, per_s, a.duration
    );
    if !gapless {
        return Err("seqs are not gapless".into());
    }

    if a.reference {
        let next_seq = Arc::new(AtomicU64::new(1_000_000_000));
        let (stored, per_s, latency) = drive(a, {
            let store = store.clone();
            move |room: usize, n: u64| {
                let db = store.connection().clone();
                let seq = next_seq.fetch_add(1, Ordering::Relaxed) as i64;
                async move {
                    db.execute_raw(Statement::from_sql_and_values(
                        DbBackend::Postgres,
                        "INSERT INTO messages (id, room_id, seq, sender_id, sender_username, sender_name, \
                         kind, content, client_msg_id, created_at, reply_count) \
                         VALUES ($1, $2, $3, $4, 'bench', 'bench', 'TEXT', $5, $6, $7, 0)",
                        [
                            Uuid::now_v7().into(),
                            format!("room-{room}").into(),
                            seq.into(),
                            sender.into(),
                            format!("message {n} 안녕하세요").into(),
                            format!("r{room}-{n}").into(),
                            Utc::now().into(),
                        ],
                    ))
                    .await
                    .is_ok()
                }
            }
        })
        .await;
        println!(
            "{}",
            serde_json::json!({
                "bench": "store", "mode": "single_row_insert", "senders": a.senders,
                "rooms": a.rooms, "pool": a.pool, "rate": a.rate, "stored": stored,
                "per_s": per_s.round(), "insert_latency": latency,
            })
        );
        println!(
            "single-row INSERT, one transaction each: {per_s:>8.0} rows/s ({stored} in {} s); latency {latency}",
            a.duration
        );
    }
    store.close().await;
    Ok(())
}

/// Runs `senders` loops of `op(room, n)` for warm-up + duration (paced to
/// `rate` in total when it is set); returns how many succeeded in the measured
/// window, their rate and the latency percentiles of the measured calls.
async fn drive<F, Fut>(a: &Args, op: F) -> (u64, f64, serde_json::Value)
where
    F: Fn(usize, u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(a.senders);
    for s in 0..a.senders {
        let (op, measuring, stop, ok, failed) = (
            op.clone(),
            measuring.clone(),
            stop.clone(),
            ok.clone(),
            failed.clone(),
        );
        let room = s % a.rooms;
        let pace = (a.rate > 0.0).then(|| {
            let every = Duration::from_secs_f64(a.senders as f64 / a.rate);
            // Senders spread over the interval, not in lockstep.
            let start = tokio::time::Instant::now() + every.mul_f64(s as f64 / a.senders as f64);
            let mut tick = tokio::time::interval_at(start, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick
        });
        tasks.push(tokio::spawn(async move {
            let mut pace = pace;
            let mut n = 0u64;
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                if let Some(tick) = pace.as_mut() {
                    tick.tick().await;
                }
                n += 1;
                let t = Instant::now();
                let good = op(room, (s as u64) << 32 | n).await;
                if measuring.load(Ordering::Relaxed) {
                    if good { &ok } else { &failed }.fetch_add(1, Ordering::Relaxed);
                    latencies.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                }
            }
            latencies
        }));
    }
    tokio::time::sleep(Duration::from_secs(a.warmup)).await;
    measuring.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(a.duration)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap_or_default());
    }
    let failed = failed.load(Ordering::Relaxed);
    if failed > 0 {
        eprintln!("{failed} operations failed");
    }
    let ok = ok.load(Ordering::Relaxed);
    (ok, ok as f64 / elapsed, percentiles(latencies))
}
