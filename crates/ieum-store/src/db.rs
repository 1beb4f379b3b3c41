use std::time::Duration;

use ieum_domain::{DomainError, DomainResult};
use ieum_migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend};

use crate::error::db_err;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    /// The backend a database URL names, if any.
    pub(crate) fn of(url: &str) -> Option<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else {
            None
        }
    }
}

/// Why the store could not be opened at start: a setting to fix, or a
/// database that does not answer.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("database URL must start with postgres:// or sqlite:")]
    BadUrl,
    #[error("{0}")]
    Unreachable(#[from] DomainError),
}

#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// A database handle shared by every repository.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
    backend: Backend,
    url: std::sync::Arc<str>,
    options: StoreOptions,
}

impl Store {
    /// Connects to `postgres://...` or `sqlite://...` (created when missing).
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self, ConnectError> {
        let backend = Backend::of(url).ok_or(ConnectError::BadUrl)?;
        Ok(Self::open(url, backend, options, None).await?)
    }

    /// A handle over a pool of its own of at most `connections` connections to
    /// the same database (SQLite: this same handle, it has one connection).
    /// Opened from a task, its sockets are driven by that task's runtime, so a
    /// writer task that owns one never waits for another thread to see its
    /// database's answers.
    pub async fn dedicated(&self, connections: u32) -> DomainResult<Self> {
        match self.backend {
            Backend::Sqlite => Ok(self.clone()),
            Backend::Postgres => {
                Self::open(&self.url, self.backend, &self.options, Some(connections)).await
            }
        }
    }

    async fn open(
        url: &str,
        backend: Backend,
        options: &StoreOptions,
        max: Option<u32>,
    ) -> DomainResult<Self> {
        let mut opts = ConnectOptions::new(url.to_owned());
        // SQLite has one writer at a time, and a transaction that reads before it
        // writes fails at once (SQLITE_BUSY) when another writer went first. One
        // connection serializes everything instead: the embedded store trades
        // read concurrency for never failing a write under load.
        let max = match backend {
            Backend::Sqlite => 1,
            Backend::Postgres => max.unwrap_or(options.max_connections),
        };
        opts.max_connections(max)
            .acquire_timeout(options.acquire_timeout)
            .connect_timeout(options.acquire_timeout)
            // The pool's default pings every connection it hands out: a second
            // round trip per statement. Only a connection idle long enough to
            // have been dropped by a proxy or a restart is pinged.
            .test_before_acquire_if_idle_for(Duration::from_secs(30))
            .sqlx_logging(false);
        if backend == Backend::Sqlite {
            opts.map_sqlx_sqlite_opts(|o: SqliteConnectOptions| {
                o.create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(10))
                    .synchronous(SqliteSynchronous::Full)
                    .foreign_keys(true)
            });
        }
        let db = Database::connect(opts).await.map_err(|e| {
            DomainError::Unavailable(format!("cannot connect to the database: {e}"))
        })?;
        Ok(Self {
            db,
            backend,
            url: url.into(),
            options: options.clone(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Applies every pending migration. On PostgreSQL, nodes starting together
    /// take turns (an advisory lock held by an open transaction), so the second
    /// finds nothing pending.
    pub async fn migrate(&self) -> DomainResult<()> {
        if self.backend == Backend::Postgres {
            use sea_orm::{ConnectionTrait, TransactionTrait};
            let lock = self.db.begin().await.map_err(db_err)?;
            lock.execute_unprepared("SELECT pg_advisory_xact_lock(7234012001)")
                .await
                .map_err(db_err)?;
            let result = Migrator::up(&self.db, None).await.map_err(db_err);
            lock.commit().await.map_err(db_err)?;
            return result;
        }
        Migrator::up(&self.db, None).await.map_err(db_err)
    }

    /// Names of migrations not applied yet.
    pub async fn pending_migrations(&self) -> DomainResult<Vec<String>> {
        Ok(Migrator::get_pending_migrations(&self.db)
            .await
            .map_err(db_err)?
            .iter()
            .map(|m| m.name().to_owned())
            .collect())
    }

    /// On PostgreSQL, pg_trgm only indexes Korean (and any non-ASCII letters)
    /// when the database's LC_CTYPE is a UTF-8 locale. Returns a warning to log
    /// when it is not.
    pub async fn search_locale_warning(&self) -> DomainResult<Option<String>> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        use sea_orm::ConnectionTrait;
        let row = self
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                "SELECT current_setting('lc_ctype') AS lc_ctype",
            ))
            .await
            .map_err(db_err)?;
        let ctype: String = row
            .and_then(|r| r.try_get("", "lc_ctype").ok())
            .unwrap_or_default();
        let utf8 = ctype.to_ascii_lowercase().replace('-', "").contains("utf8");
        Ok((!utf8).then(|| {
            format!(
                "the database's LC_CTYPE is {ctype:?}, not a UTF-8 locale: substring search over Korean text \
                 cannot use the trigram index and will be slow. Create the database with \
                 LC_CTYPE 'C.UTF-8' (CREATE DATABASE ... LC_CTYPE 'C.UTF-8' TEMPLATE template0)."
            )
        }))
    }

    /// A round trip to the database.
    pub async fn ping(&self) -> DomainResult<()> {
        self.db.ping().await.map_err(db_err)
    }

    /// The pool's connections: (open, idle). The writers' own connections
    /// are not in it.
    pub fn pool_connections(&self) -> (u32, u32) {
        match self.backend {
            Backend::Postgres => {
                let pool = self.db.get_postgres_connection_pool();
                (pool.size(), pool.num_idle() as u32)
            }
            Backend::Sqlite => {
                let pool = self.db.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle() as u32)
            }
        }
    }

    /// The most connections the pool opens.
    pub fn pool_max(&self) -> u32 {
        match self.backend {
            Backend::Postgres => self.options.max_connections,
            Backend::Sqlite => 1,
        }
    }

    /// Work waiting in the database's queues: (pushes due or coalescing in
    /// the outbox, attachments waiting for or in their scan).
    pub async fn queue_depths(&self) -> DomainResult<(u64, u64)> {
        let count = |sql| crate::sql::count(&self.db, sql, vec![]);
        Ok((
            count("SELECT COUNT(*) AS n FROM push_outbox WHERE state = 'pending'").await?,
            count("SELECT COUNT(*) AS n FROM attachments WHERE state = 'scanning'").await?,
        ))
    }

    pub fn db_backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    pub async fn close(self) {
        let _ = self.db.close().await;
    }
}
