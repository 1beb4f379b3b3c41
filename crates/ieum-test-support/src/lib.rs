//! Test helpers for real services.
//!
//! * [`PgDatabase`]: a fresh PostgreSQL database per test, dropped afterwards.
//! * [`SqliteFile`]: a fresh SQLite file per test, removed afterwards.
//! * [`TestDb`]: either, so one test body runs on both backends ([`both_backends!`]).
//! * [`redis_url`] and [`RedisPrefix`]: a Redis key prefix per test.
//! * [`S3Bucket`]: a bucket of the test S3 server (s3s-fs) per test.
//!
//! URLs come from `TEST_DATABASE_URL` and `TEST_REDIS_URL`, defaulting to the local
//! services. A service that cannot be reached fails the test with a message that says
//! how to start it: nothing is ever skipped.

pub mod fcm;

use std::path::PathBuf;

use sea_orm::{ConnectionTrait, Database};
use uuid::Uuid;

pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// The maintenance database URL tests create their databases from.
pub fn pg_admin_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_owned())
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| DEFAULT_REDIS_URL.to_owned())
}

/// The same server URL with another database: the path is replaced, the query
/// string kept.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{db}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

fn unreachable_pg(url: &str, err: impl std::fmt::Display) -> ! {
    panic!(
        "PostgreSQL is not reachable at {url}: {err}\n\
         Start it (on Debian: `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, \
         or run scripts/test which does that) or point TEST_DATABASE_URL at a server where the user may CREATE DATABASE. \
         PostgreSQL tests are never skipped."
    )
}

/// A PostgreSQL database made for one test and dropped when this value drops.
pub struct PgDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl PgDatabase {
    pub async fn create() -> Self {
        let admin_url = pg_admin_url();
        let name = format!("ieum_test_{}", Uuid::new_v4().simple());
        let admin = Database::connect(admin_url.as_str())
            .await
            .unwrap_or_else(|e| unreachable_pg(&admin_url, e));
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap_or_else(|e| unreachable_pg(&admin_url, e));
        let _ = admin.close().await;
        let url = with_database(&admin_url, &name);
        Self {
            admin_url,
            name,
            url,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        // Drop runs inside a test's runtime, which cannot block on itself: use a
        // thread with a runtime of its own.
        let joined = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let admin = Database::connect(admin_url.as_str()).await?;
                admin.execute_unprepared(&sql).await?;
                admin.close().await
            })
        })
        .join();
        if let Ok(Err(e)) = joined {
            eprintln!("warning: could not drop test database {}: {e}", self.name);
        }
    }
}

/// A SQLite database file for one test, removed (with its WAL files) on drop.
pub struct SqliteFile {
    dir: PathBuf,
    url: String,
}

impl SqliteFile {
    pub fn create() -> Self {
        let dir = std::env::temp_dir().join(format!("ieum-test-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.join("ieum.db").display());
        Self { dir, url }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

impl Drop for SqliteFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A database for one test on either backend.
pub enum TestDb {
    Sqlite(SqliteFile),
    Postgres(PgDatabase),
}

impl TestDb {
    pub async fn sqlite() -> Self {
        Self::Sqlite(SqliteFile::create())
    }

    pub async fn postgres() -> Self {
        Self::Postgres(PgDatabase::create().await)
    }

    pub fn url(&self) -> &str {
        match self {
            Self::Sqlite(s) => s.url(),
            Self::Postgres(p) => p.url(),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }
}

/// A Redis key prefix unique to one test. Everything the test (or the servers it
/// starts) writes goes under it; dropping the value deletes `prefix*`.
#[derive(Debug)]
pub struct RedisPrefix(pub String);

impl Drop for RedisPrefix {
    fn drop(&mut self) {
        let pattern = format!("{}*", self.0);
        let url = redis_url();
        let _ = std::thread::spawn(move || {
            use deadpool_redis::redis;
            let Ok(client) = redis::Client::open(url.as_str()) else {
                return;
            };
            let Ok(mut conn) =
                client.get_connection_with_timeout(std::time::Duration::from_secs(2))
            else {
                return;
            };
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(&pattern)
                .query(&mut conn)
                .unwrap_or_default();
            if !keys.is_empty() {
                let _: Result<i64, _> = redis::cmd("DEL").arg(keys).query(&mut conn);
            }
        })
        .join();
    }
}

impl RedisPrefix {
    pub fn new() -> Self {
        Self(format!("ieum-test:{}:", Uuid::new_v4().simple()))
    }
}

impl Default for RedisPrefix {
    fn default() -> Self {
        Self::new()
    }
}

/// A bucket of the suite's S3-compatible server, made for one test and
/// removed with everything in it when this value drops. The server is
/// s3s-fs (started by scripts/test), whose buckets are directories of its
/// root: `TEST_S3_ROOT`. `TEST_S3_ENDPOINT`, `TEST_S3_ACCESS_KEY` and
/// `TEST_S3_SECRET_KEY` say how to reach it.
#[derive(Debug)]
pub struct S3Bucket {
    pub name: String,
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    dir: PathBuf,
}

impl S3Bucket {
    pub fn create() -> Self {
        let var =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
        let endpoint = var("TEST_S3_ENDPOINT", "http://127.0.0.1:8014");
        let root = PathBuf::from(var("TEST_S3_ROOT", "/tmp/ieum-s3/data"));
        let authority = endpoint.trim_start_matches("http://").to_owned();
        if std::net::TcpStream::connect(&authority).is_err() || !root.is_dir() {
            panic!(
                "no S3-compatible server at {endpoint} with its root at {}: run scripts/test, \
                 which builds and starts s3s-fs, or set TEST_S3_ENDPOINT and TEST_S3_ROOT. \
                 S3 tests are never skipped.",
                root.display()
            );
        }
        let name = format!("ieum-test-{}", Uuid::new_v4().simple());
        let dir = root.join(&name);
        std::fs::create_dir(&dir).expect("create the bucket's directory");
        Self {
            name,
            endpoint,
            access_key: var("TEST_S3_ACCESS_KEY", "ieum-test-key"),
            secret_key: var("TEST_S3_SECRET_KEY", "ieum-test-secret-not-a-secret"),
            dir,
        }
    }

    /// Objects in the bucket (files under its directory, s3s-fs's own
    /// bookkeeping aside).
    pub fn object_count(&self) -> usize {
        count_files(&self.dir)
    }
}

/// Files under `dir`, in every subdirectory, leaving out names that start
/// with a dot (stores' staging and bookkeeping): how tests see what a store
/// kept.
pub fn count_files(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|entry| !entry.file_name().to_string_lossy().starts_with('.'))
        .map(|entry| {
            if entry.path().is_dir() {
                count_files(&entry.path())
            } else {
                1
            }
        })
        .sum()
}

impl Drop for S3Bucket {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs an `async fn(TestDb)` test body once on SQLite and once on PostgreSQL:
/// `both_backends!(name_of_async_fn);` makes `name_of_async_fn_sqlite` and
/// `name_of_async_fn_postgres` tests.
#[macro_export]
macro_rules! both_backends {
    ($($case:ident),+ $(,)?) => {
        $(
            $crate::paste_backend_tests!($case);
        )+
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! paste_backend_tests {
    ($case:ident) => {
        mod $case {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$case($crate::TestDb::sqlite().await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$case($crate::TestDb::postgres().await).await;
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_replaced_in_urls() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/test?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "x"),
            "postgres://h:5432/x"
        );
    }

    #[tokio::test]
    async fn a_postgres_database_is_made_and_dropped() {
        let name;
        {
            let db = PgDatabase::create().await;
            name = db.name.clone();
            let conn = Database::connect(db.url())
                .await
                .expect("connect to new db");
            conn.execute_unprepared("CREATE TABLE t (x int)")
                .await
                .unwrap();
            conn.close().await.unwrap();
        }
        let admin = Database::connect(pg_admin_url().as_str()).await.unwrap();
        let rows = admin
            .query_all_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                format!("SELECT 1 FROM pg_database WHERE datname = '{name}'"),
            ))
            .await
            .unwrap();
        assert!(rows.is_empty(), "test database {name} was left behind");
    }
}
