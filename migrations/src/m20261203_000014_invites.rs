//! Invite codes (issue 21): with `IEUM_REGISTRATION=invite`, signing up
//! takes a code an admin made.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum InviteCodes {
    Table,
    Code,
    /// The admin (none: the server's CLI).
    CreatedBy,
    CreatedAt,
    ExpiresAt,
    MaxUses,
    UsesLeft,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(InviteCodes::Table)
                    .col(string(InviteCodes::Code).primary_key())
                    .col(uuid_null(InviteCodes::CreatedBy))
                    .col(timestamp_with_time_zone(InviteCodes::CreatedAt))
                    .col(timestamp_with_time_zone_null(InviteCodes::ExpiresAt))
                    .col(integer(InviteCodes::MaxUses))
                    .col(integer(InviteCodes::UsesLeft))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(InviteCodes::Table).to_owned())
            .await
    }
}
