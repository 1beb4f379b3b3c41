//! Room admins mute members (issue 20): until `muted_until` a member reads
//! and receives but cannot send. Leaving and joining again keeps it.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::timestamp_with_time_zone_null;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RoomMembers {
    Table,
    MutedUntil,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(RoomMembers::Table)
                    .add_column(timestamp_with_time_zone_null(RoomMembers::MutedUntil))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(RoomMembers::Table)
                    .drop_column(RoomMembers::MutedUntil)
                    .to_owned(),
            )
            .await
    }
}
