//! Server-wide moderation (issue 20): staff roles, suspensions, and the
//! append-only audit log. No foreign keys, as elsewhere.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ServerRoles {
    Table,
    UserId,
    Role,
}

#[derive(DeriveIden)]
enum Suspensions {
    Table,
    UserId,
    /// NULL: until lifted.
    Until,
    Reason,
    SuspendedBy,
    At,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    /// UUIDv7: time-ordered, the log's cursor.
    Id,
    At,
    ActorId,
    Action,
    TargetKind,
    TargetId,
    Reason,
    RequestId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ServerRoles::Table)
                    .col(pk_uuid(ServerRoles::UserId))
                    .col(string(ServerRoles::Role))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Suspensions::Table)
                    .col(pk_uuid(Suspensions::UserId))
                    .col(timestamp_with_time_zone_null(Suspensions::Until))
                    .col(text(Suspensions::Reason))
                    .col(uuid_null(Suspensions::SuspendedBy))
                    .col(timestamp_with_time_zone(Suspensions::At))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuditLog::Table)
                    .col(pk_uuid(AuditLog::Id))
                    .col(timestamp_with_time_zone(AuditLog::At))
                    .col(uuid_null(AuditLog::ActorId))
                    .col(string(AuditLog::Action))
                    .col(string(AuditLog::TargetKind))
                    .col(string(AuditLog::TargetId))
                    .col(text_null(AuditLog::Reason))
                    .col(string_null(AuditLog::RequestId))
                    .to_owned(),
            )
            .await?;
        // Retention deletes by time; filters by target and by actor.
        for (name, col) in [
            ("idx_audit_log_at", AuditLog::At),
            ("idx_audit_log_target", AuditLog::TargetId),
            ("idx_audit_log_actor", AuditLog::ActorId),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(AuditLog::Table)
                        .col(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Table::drop().table(AuditLog::Table).to_owned(),
            Table::drop().table(Suspensions::Table).to_owned(),
            Table::drop().table(ServerRoles::Table).to_owned(),
        ] {
            manager.drop_table(table).await?;
        }
        Ok(())
    }
}
