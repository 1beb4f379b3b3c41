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
}

impl Store {
    /// Connects to `postgres://...` or `sqlite://...` (created when missing).
    pub async fn connect(url: &str, options: &StoreOptions) -> DomainResult<Self> {
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(DomainError::invalid(
                "bad_database_url",
                "database URL must start with postgres:// or sqlite:",
            ));
        };
        let mut opts = ConnectOptions::new(url.to_owned());
        opts.max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_timeout(options.acquire_timeout)
            .sqlx_logging(false);
        if backend == Backend::Sqlite {
            opts.map_sqlx_sqlite_opts(|o: SqliteConnectOptions| {
                o.create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
            });
        }
        let db = Database::connect(opts).await.map_err(|e| {
            DomainError::Unavailable(format!("cannot connect to the database: {e}"))
        })?;
        Ok(Self { db, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Applies every pending migration.
    pub async fn migrate(&self) -> DomainResult<()> {
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

    /// A round trip to the database.
    pub async fn ping(&self) -> DomainResult<()> {
        self.db.ping().await.map_err(db_err)
    }

    pub fn db_backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    pub async fn close(self) {
        let _ = self.db.close().await;
    }
}
