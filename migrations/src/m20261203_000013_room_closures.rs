//! Closed rooms (issue 20): staff close a group room; it keeps its history
//! and takes no members again.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RoomClosures {
    Table,
    RoomId,
    ClosedAt,
    /// The staff member (none: the server itself).
    ClosedBy,
    Reason,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RoomClosures::Table)
                    .col(string(RoomClosures::RoomId).primary_key())
                    .col(timestamp_with_time_zone(RoomClosures::ClosedAt))
                    .col(uuid_null(RoomClosures::ClosedBy))
                    .col(text(RoomClosures::Reason))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RoomClosures::Table).to_owned())
            .await
    }
}
