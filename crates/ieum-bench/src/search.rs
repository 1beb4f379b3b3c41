//! Search benchmark: N generated messages (Korean and English) over R rooms in a
//! fresh PostgreSQL database, then Q searches for three-character Korean words
//! limited to one user's rooms, through the store adapter's real query.

use std::time::Instant;

use chrono::Utc;
use ieum_domain::message::SearchQuery;
use ieum_domain::ports::MessageRepository;
use ieum_store::{SqlMessages, Store, StoreOptions, WriterOptions};
use ieum_test_support::with_database;
use sea_orm::{ConnectionTrait, Database};
use uuid::Uuid;

#[derive(clap::Args)]
pub struct Args {
    /// A PostgreSQL URL whose user may CREATE DATABASE.
    #[arg(
        long,
        env = "BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    admin_url: String,
    #[arg(long, default_value_t = 1_000_000)]
    messages: u64,
    #[arg(long, default_value_t = 1000)]
    rooms: u64,
    /// Rooms each user belongs to.
    #[arg(long, default_value_t = 20)]
    rooms_per_user: u64,
    #[arg(long, default_value_t = 300)]
    queries: usize,
    /// Keep the generated database afterwards.
    #[arg(long)]
    keep: bool,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const SENTENCES: &[&str] = &[
    "오늘 날씨가 정말 좋네요",
    "회의록을 공유했어요 확인 부탁드립니다",
    "점심 뭐 먹을까요? 김치찌개 어때요",
    "주말에 등산 가실 분 계신가요",
    "프로젝트 마감이 다음 주 금요일이에요",
    "the weather is lovely today",
    "meeting notes are in the shared folder",
    "let's grab lunch at noon",
    "커피 한잔 하실래요 ☕",
    "배포는 오후 세 시에 진행합니다",
    "고양이 사진 보내드릴게요 🐱",
    "please review the pull request",
    "생일 축하해요 🎉 케이크 준비했어요",
    "지하철이 늦어서 조금 늦을 것 같아요",
    "the build is green again",
    "영화 예매했어요 토요일 저녁 일곱 시",
];

const QUERIES: &[&str] = &[
    "날씨가",
    "회의록",
    "김치찌",
    "등산 가",
    "마감이",
    "고양이",
    "케이크",
    "지하철",
    "영화 예",
    "배포는",
];

/// A fresh database for one run: (admin connection, its name, its URL).
pub(crate) async fn create_database(
    admin_url: &str,
) -> Result<(sea_orm::DatabaseConnection, String, String), BoxError> {
    let name = format!("ieum_bench_{}", Uuid::new_v4().simple());
    let admin = Database::connect(admin_url).await?;
    admin
        .execute_unprepared(&format!(
            "CREATE DATABASE \"{name}\" LC_CTYPE 'C.UTF-8' LC_COLLATE 'C.UTF-8' TEMPLATE template0"
        ))
        .await?;
    let url = with_database(admin_url, &name);
    Ok((admin, name, url))
}

pub(crate) async fn drop_database(
    admin: &sea_orm::DatabaseConnection,
    name: &str,
    keep: bool,
) -> Result<(), BoxError> {
    if keep {
        eprintln!("kept database {name}");
        return Ok(());
    }
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await?;
    Ok(())
}

pub async fn run(a: Args) -> Result<(), BoxError> {
    let (admin, name, url) = create_database(&a.admin_url).await?;
    let result = bench(&a, &url).await;
    drop_database(&admin, &name, a.keep).await?;
    result
}

async fn bench(a: &Args, url: &str) -> Result<(), BoxError> {
    let store = Store::connect(url, &StoreOptions::default()).await?;
    store.migrate().await?;
    let db = store.connection();
    let t0 = Instant::now();
    let sentences = SENTENCES
        .iter()
        .map(|s| format!("'{}'", s.replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(", ");
    let users = a.rooms; // as many users as rooms
    db.execute_unprepared(&format!(
        "INSERT INTO users (id, username, display_name, password_hash, created_at, updated_at) \
         SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, 'user' || i, '사용자' || i, 'x', now(), now() \
         FROM generate_series(0, {}) i",
        users - 1
    ))
    .await?;
    db.execute_unprepared(&format!(
        "INSERT INTO rooms (id, kind, name, visibility, member_limit, member_count, created_by, created_at, last_seq) \
         SELECT 'room-' || r, 'group', '방 ' || r, 'public', 1000, {}, '00000000-0000-4000-8000-000000000000'::uuid, now(), {} \
         FROM generate_series(0, {}) r",
        a.rooms_per_user,
        a.messages / a.rooms,
        a.rooms - 1
    ))
    .await?;
    db.execute_unprepared(&format!(
        "INSERT INTO room_members (room_id, user_id, role, state, joined_at, last_read_seq, favorite, delivered_seq) \
         SELECT 'room-' || ((u * 7 + k) % {rooms}), ('00000000-0000-4000-8000-' || lpad(to_hex(u), 12, '0'))::uuid, \
                'member', 'active', now(), 0, false, 0 \
         FROM generate_series(0, {}) u, generate_series(0, {}) k ON CONFLICT DO NOTHING",
        users - 1,
        a.rooms_per_user - 1,
        rooms = a.rooms
    ))
    .await?;
    // Without the trigram index while loading, then built once.
    db.execute_unprepared("DROP INDEX IF EXISTS idx_messages_content_trgm")
        .await?;
    db.execute_unprepared(&format!(
        "INSERT INTO messages (id, room_id, seq, sender_id, sender_username, sender_name, kind, content, created_at, reply_count) \
         SELECT gen_random_uuid(), 'room-' || (n % {rooms}), n / {rooms} + 1, \
                ('00000000-0000-4000-8000-' || lpad(to_hex(n % {users}), 12, '0'))::uuid, 'user' || (n % {users}), '사용자', 'TEXT', \
                (ARRAY[{sentences}])[1 + (n::bigint * 7919 % {ns})::int] || ' #' || n, \
                now() - make_interval(secs => ({total} - n)), 0 \
         FROM generate_series(0, {last}) n",
        rooms = a.rooms,
        users = users,
        ns = SENTENCES.len(),
        total = a.messages,
        last = a.messages - 1,
    ))
    .await?;
    db.execute_unprepared(
        "CREATE INDEX idx_messages_content_trgm ON messages USING gin (content gin_trgm_ops)",
    )
    .await?;
    db.execute_unprepared("ANALYZE").await?;
    let load = t0.elapsed();

    let messages = SqlMessages::new(store.clone(), WriterOptions::default());
    let mut times = Vec::with_capacity(a.queries);
    let mut hits = 0usize;
    for i in 0..a.queries {
        let user = Uuid::parse_str(&format!(
            "00000000-0000-4000-8000-{:012x}",
            (i as u64 * 37) % users
        ))?;
        let q = SearchQuery {
            user_id: user,
            text: QUERIES[i % QUERIES.len()].to_owned(),
            room_id: None,
            sender_id: None,
            from: None,
            to: None,
            before: None,
            limit: 20,
            now: Utc::now(),
        };
        let t = Instant::now();
        let found = messages.search(q).await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        hits += found.len();
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        times[((times.len() as f64 * p).ceil() as usize)
            .saturating_sub(1)
            .min(times.len() - 1)]
    };
    let report = serde_json::json!({
        "bench": "search",
        "messages": a.messages,
        "rooms": a.rooms,
        "rooms_per_user": a.rooms_per_user,
        "queries": a.queries,
        "load_seconds": load.as_secs_f64(),
        "avg_hits": hits as f64 / a.queries as f64,
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "max_ms": times[times.len() - 1],
    });
    println!("{report}");
    println!(
        "search over {} messages / {} rooms, {} queries (3-character Korean, one user's {} rooms, limit 20): \
         p50 {:.2} ms  p95 {:.2} ms  p99 {:.2} ms  max {:.2} ms  (load {:.1} s)",
        a.messages,
        a.rooms,
        a.queries,
        a.rooms_per_user,
        pct(0.5),
        pct(0.95),
        pct(0.99),
        times[times.len() - 1],
        load.as_secs_f64()
    );
    store.close().await;
    Ok(())
}
