//! Attachments' records (issue 16): one row per upload, kept after its bytes
//! are gone, so a message still shows "expired" and what the scan found.
//!
//! No foreign keys: a row is the jobs' only memory of objects in storage, so
//! it must outlive its owner, room and message (a cascade would leave the
//! objects behind with nothing to find them by).
//!
//! The jobs' queries each have an index that returns rows in the order they
//! are asked for. Expired and deleted rows pile up for good, so the two
//! indexes of the expiry and sweep jobs are partial: they hold live rows only,
//! and the queries repeat the indexes' conditions word for word (SQLite uses
//! a partial index only when the query's WHERE contains its terms).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Attachments {
    Table,
    Id,
    OwnerId,
    RoomId,
    FileName,
    Size,
    DeclaredType,
    DetectedType,
    Sha256,
    Width,
    Height,
    State,
    Scan,
    ScanSignature,
    MessageId,
    CreatedAt,
    ExpiresAt,
}

/// The states nothing leaves; rows in them are never due for a job.
const FINAL_STATES: [&str; 2] = ["expired", "deleted"];

fn live() -> SimpleExpr {
    Expr::col(Attachments::State).is_not_in(FINAL_STATES)
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Attachments::Table)
                    .col(pk_uuid(Attachments::Id))
                    .col(uuid(Attachments::OwnerId))
                    .col(string(Attachments::RoomId))
                    .col(text(Attachments::FileName))
                    .col(big_integer(Attachments::Size))
                    .col(string(Attachments::DeclaredType))
                    .col(string_null(Attachments::DetectedType))
                    .col(string_null(Attachments::Sha256))
                    .col(big_integer_null(Attachments::Width))
                    .col(big_integer_null(Attachments::Height))
                    .col(string(Attachments::State))
                    .col(string(Attachments::Scan))
                    .col(text_null(Attachments::ScanSignature))
                    .col(uuid_null(Attachments::MessageId))
                    .col(timestamp_with_time_zone(Attachments::CreatedAt))
                    .col(timestamp_with_time_zone_null(Attachments::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        // The scan job: `Scanning`, oldest first.
        manager
            .create_index(
                Index::create()
                    .name("idx_attachments_state_created")
                    .table(Attachments::Table)
                    .col(Attachments::State)
                    .col(Attachments::CreatedAt)
                    .col(Attachments::Id)
                    .to_owned(),
            )
            .await?;
        // The expiry job: live rows with an expiry, soonest first.
        manager
            .create_index(
                Index::create()
                    .name("idx_attachments_due_expiry")
                    .table(Attachments::Table)
                    .col(Attachments::ExpiresAt)
                    .col(Attachments::Id)
                    .and_where(live())
                    .and_where(Expr::col(Attachments::ExpiresAt).is_not_null())
                    .to_owned(),
            )
            .await?;
        // The sweep: live rows no message took, oldest first.
        manager
            .create_index(
                Index::create()
                    .name("idx_attachments_unattached")
                    .table(Attachments::Table)
                    .col(Attachments::CreatedAt)
                    .col(Attachments::Id)
                    .and_where(Expr::col(Attachments::MessageId).is_null())
                    .and_where(live())
                    .to_owned(),
            )
            .await?;
        // Quotas: an owner's rows by state.
        manager
            .create_index(
                Index::create()
                    .name("idx_attachments_owner")
                    .table(Attachments::Table)
                    .col(Attachments::OwnerId)
                    .col(Attachments::State)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The indexes go with their table.
        manager
            .drop_table(Table::drop().table(Attachments::Table).to_owned())
            .await
    }
}
