//! Push notifications (issue 17): devices, the member's mutes and
//! preferences, what each device was proven to have received, and the
//! outbox the push workers claim from.
//!
//! The outbox holds one row per device and room. A message makes it
//! `pending` (or, while pending, bumps its count and latest message); a
//! worker claims due rows, decides, sends, and makes it `idle` again with
//! `quiet_until` closing the coalescing window. Times the workers compare
//! are epoch milliseconds: the same integers on both backends, no text
//! comparisons of SQLite's timestamps.
//!
//! No foreign keys, as elsewhere: deleting a device deletes its rows in the
//! same adapter call.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Devices {
    Table,
    Id,
    UserId,
    Platform,
    Token,
    AppVersion,
    Locale,
    DataOnly,
    FamilyId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PushPrefs {
    Table,
    UserId,
    Previews,
    MentionsWhenMuted,
}

#[derive(DeriveIden)]
enum RoomMutes {
    Table,
    UserId,
    RoomId,
    /// Epoch ms; NULL: muted until unmuted.
    UntilMs,
}

#[derive(DeriveIden)]
enum PushDelivered {
    Table,
    UserId,
    RoomId,
    /// The nil UUID: a connection that named no device (it stands for all).
    DeviceId,
    Seq,
}

#[derive(DeriveIden)]
enum PushOutbox {
    Table,
    DeviceId,
    RoomId,
    UserId,
    State,
    MessageId,
    Seq,
    FirstSeq,
    Count,
    Mentioned,
    LatestMs,
    DueMs,
    QuietUntilMs,
    Attempts,
    Claim,
    ClaimedUntilMs,
    SentSeq,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Devices::Table)
                    .col(pk_uuid(Devices::Id))
                    .col(uuid(Devices::UserId))
                    .col(string(Devices::Platform))
                    .col(text(Devices::Token).unique_key())
                    .col(string_null(Devices::AppVersion))
                    .col(string_null(Devices::Locale))
                    .col(boolean(Devices::DataOnly))
                    .col(uuid_null(Devices::FamilyId))
                    .col(timestamp_with_time_zone(Devices::CreatedAt))
                    .col(timestamp_with_time_zone(Devices::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_devices_user")
                    .table(Devices::Table)
                    .col(Devices::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_devices_family")
                    .table(Devices::Table)
                    .col(Devices::FamilyId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PushPrefs::Table)
                    .col(pk_uuid(PushPrefs::UserId))
                    .col(boolean(PushPrefs::Previews))
                    .col(boolean(PushPrefs::MentionsWhenMuted))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RoomMutes::Table)
                    .col(uuid(RoomMutes::UserId))
                    .col(string(RoomMutes::RoomId))
                    .col(big_integer_null(RoomMutes::UntilMs))
                    .primary_key(
                        Index::create()
                            .col(RoomMutes::UserId)
                            .col(RoomMutes::RoomId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PushDelivered::Table)
                    .col(uuid(PushDelivered::UserId))
                    .col(string(PushDelivered::RoomId))
                    .col(uuid(PushDelivered::DeviceId))
                    .col(big_integer(PushDelivered::Seq))
                    .primary_key(
                        Index::create()
                            .col(PushDelivered::UserId)
                            .col(PushDelivered::RoomId)
                            .col(PushDelivered::DeviceId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PushOutbox::Table)
                    .col(uuid(PushOutbox::DeviceId))
                    .col(string(PushOutbox::RoomId))
                    .col(uuid(PushOutbox::UserId))
                    .col(string(PushOutbox::State))
                    .col(uuid(PushOutbox::MessageId))
                    .col(big_integer(PushOutbox::Seq))
                    .col(big_integer(PushOutbox::FirstSeq))
                    .col(big_integer(PushOutbox::Count))
                    .col(boolean(PushOutbox::Mentioned))
                    .col(big_integer(PushOutbox::LatestMs))
                    .col(big_integer(PushOutbox::DueMs))
                    .col(big_integer(PushOutbox::QuietUntilMs))
                    .col(integer(PushOutbox::Attempts))
                    .col(uuid_null(PushOutbox::Claim))
                    .col(big_integer(PushOutbox::ClaimedUntilMs))
                    .col(big_integer(PushOutbox::SentSeq))
                    .primary_key(
                        Index::create()
                            .col(PushOutbox::DeviceId)
                            .col(PushOutbox::RoomId),
                    )
                    .to_owned(),
            )
            .await?;
        // The workers: pending rows, soonest due first.
        manager
            .create_index(
                Index::create()
                    .name("idx_push_outbox_due")
                    .table(PushOutbox::Table)
                    .col(PushOutbox::State)
                    .col(PushOutbox::DueMs)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            PushOutbox::Table.into_iden(),
            PushDelivered::Table.into_iden(),
            RoomMutes::Table.into_iden(),
            PushPrefs::Table.into_iden(),
            Devices::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
