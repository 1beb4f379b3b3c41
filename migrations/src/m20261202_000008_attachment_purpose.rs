//! What an attachment is for: a message's file (every attachment so far),
//! a user's profile image or a room's image. Profile and room images never
//! expire and are never taken by a message. And an index on `message_id`:
//! every history page now reads the files of its IMAGE and FILE messages
//! (`message_id IN (...) AND message_id IS NOT NULL`, the index's own terms).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::string;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Attachments {
    Table,
    Purpose,
    MessageId,
}

const MESSAGE_INDEX: &str = "idx_attachments_message_id";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Attachments::Table)
                    .add_column(string(Attachments::Purpose).default("message"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(MESSAGE_INDEX)
                    .table(Attachments::Table)
                    .col(Attachments::MessageId)
                    // Partial: the sweep's `message_id IS NULL` query keeps
                    // its own index (SQLite would otherwise take this one).
                    .and_where(Expr::col(Attachments::MessageId).is_not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(MESSAGE_INDEX)
                    .table(Attachments::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Attachments::Table)
                    .drop_column(Attachments::Purpose)
                    .to_owned(),
            )
            .await
    }
}
