//! Cheaper message inserts, measured by issue 7's benchmarks.
//!
//! - The indexes on columns that plain messages leave empty (`parent_id`,
//!   `expires_at`, `client_msg_id`) become partial: every query that uses
//!   them compares the column with a value, which implies it is not null, so
//!   they serve the same queries while a plain message no longer adds three
//!   index entries of nulls. The client-id index stays unique.
//! - PostgreSQL: the trigram index's pending list may grow to 16 MB before an
//!   insert has to merge it; the message store merges it in the background
//!   every second instead (`SqlMessages`), so no send waits for the merge.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const PARTIAL: [&str; 3] = [
    "CREATE INDEX idx_messages_parent ON messages (parent_id, seq) WHERE parent_id IS NOT NULL",
    "CREATE INDEX idx_messages_expires ON messages (expires_at) WHERE expires_at IS NOT NULL",
    "CREATE UNIQUE INDEX uq_messages_client_id ON messages (room_id, sender_id, client_msg_id) \
     WHERE client_msg_id IS NOT NULL",
];

const FULL: [&str; 3] = [
    "CREATE INDEX idx_messages_parent ON messages (parent_id, seq)",
    "CREATE INDEX idx_messages_expires ON messages (expires_at)",
    "CREATE UNIQUE INDEX uq_messages_client_id ON messages (room_id, sender_id, client_msg_id)",
];

const NAMES: [&str; 3] = [
    "idx_messages_parent",
    "idx_messages_expires",
    "uq_messages_client_id",
];

async fn recreate(manager: &SchemaManager<'_>, with: [&str; 3]) -> Result<(), DbErr> {
    let db = manager.get_connection();
    for (name, create) in NAMES.iter().zip(with) {
        db.execute_unprepared(&format!("DROP INDEX {name}")).await?;
        db.execute_unprepared(create).await?;
    }
    Ok(())
}

/// The trigram index exists on PostgreSQL only (SQLite searches with FTS5).
async fn on_postgres(manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    if manager.get_database_backend() == DbBackend::Postgres {
        manager.get_connection().execute_unprepared(sql).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        recreate(manager, PARTIAL).await?;
        on_postgres(
            manager,
            "ALTER INDEX idx_messages_content_trgm SET (gin_pending_list_limit = 16384)",
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        on_postgres(
            manager,
            "ALTER INDEX idx_messages_content_trgm RESET (gin_pending_list_limit)",
        )
        .await?;
        recreate(manager, FULL).await
    }
}
