//! Reports (issue 20): people report a message or a user; staff resolve.
//! One open report per reporter and target (a partial unique index on
//! both backends).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Reports {
    Table,
    /// UUIDv7: time-ordered, the queue's cursor.
    Id,
    ReporterId,
    /// `message` or `user`.
    TargetKind,
    TargetId,
    /// The message's room, for a message report.
    RoomId,
    Reason,
    CreatedAt,
    /// `open`, `dismissed` or `actioned`.
    State,
    ResolvedBy,
    ResolvedAt,
    Note,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Reports::Table)
                    .col(pk_uuid(Reports::Id))
                    .col(uuid(Reports::ReporterId))
                    .col(string(Reports::TargetKind))
                    .col(string(Reports::TargetId))
                    .col(string_null(Reports::RoomId))
                    .col(text(Reports::Reason))
                    .col(timestamp_with_time_zone(Reports::CreatedAt))
                    .col(string(Reports::State))
                    .col(uuid_null(Reports::ResolvedBy))
                    .col(timestamp_with_time_zone_null(Reports::ResolvedAt))
                    .col(text_null(Reports::Note))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX idx_reports_open_once ON reports (reporter_id, target_kind, target_id) \
                 WHERE state = 'open'",
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_reports_state")
                    .table(Reports::Table)
                    .col(Reports::State)
                    .col(Reports::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Reports::Table).to_owned())
            .await
    }
}
