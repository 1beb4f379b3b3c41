use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Messages {
    Table,
    Id,
    RoomId,
    Seq,
    EditedAt,
    DeletedAt,
    ParentId,
    ReplyCount,
    LastReplyAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Rooms {
    Table,
    HistoryVisibility,
    PinPolicy,
}

#[derive(DeriveIden)]
enum RoomMembers {
    Table,
    LeftSeq,
}

#[derive(DeriveIden)]
enum MessageEdits {
    Table,
    Id,
    MessageId,
    Content,
    EditedAt,
}

#[derive(DeriveIden)]
enum Reactions {
    Table,
    MessageId,
    UserId,
    Emoji,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Pins {
    Table,
    RoomId,
    MessageId,
    PinnedBy,
    PinnedAt,
}

#[derive(DeriveIden)]
enum Mentions {
    Table,
    MessageId,
    RoomId,
    UserId,
    Seq,
}

async fn add(
    manager: &SchemaManager<'_>,
    table: impl IntoIden + 'static,
    col: ColumnDef,
) -> Result<(), DbErr> {
    let mut col = col;
    manager
        .alter_table(Table::alter().table(table).add_column(&mut col).to_owned())
        .await
}

fn message_fk(
    table: impl IntoIden + 'static,
    col: impl IntoIden + 'static,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, col)
        .to(Messages::Table, Messages::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add(
            manager,
            Messages::Table,
            timestamp_with_time_zone_null(Messages::EditedAt),
        )
        .await?;
        add(
            manager,
            Messages::Table,
            timestamp_with_time_zone_null(Messages::DeletedAt),
        )
        .await?;
        add(manager, Messages::Table, uuid_null(Messages::ParentId)).await?;
        add(
            manager,
            Messages::Table,
            integer(Messages::ReplyCount).default(0).to_owned(),
        )
        .await?;
        add(
            manager,
            Messages::Table,
            timestamp_with_time_zone_null(Messages::LastReplyAt),
        )
        .await?;
        add(
            manager,
            Messages::Table,
            timestamp_with_time_zone_null(Messages::ExpiresAt),
        )
        .await?;
        add(
            manager,
            Rooms::Table,
            string(Rooms::HistoryVisibility).default("all").to_owned(),
        )
        .await?;
        add(
            manager,
            Rooms::Table,
            string(Rooms::PinPolicy).default("members").to_owned(),
        )
        .await?;
        add(
            manager,
            RoomMembers::Table,
            big_integer_null(RoomMembers::LeftSeq),
        )
        .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_messages_parent")
                    .table(Messages::Table)
                    .col(Messages::ParentId)
                    .col(Messages::Seq)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_messages_expires")
                    .table(Messages::Table)
                    .col(Messages::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MessageEdits::Table)
                    .col(pk_uuid(MessageEdits::Id))
                    .col(uuid(MessageEdits::MessageId))
                    .col(text(MessageEdits::Content))
                    .col(timestamp_with_time_zone(MessageEdits::EditedAt))
                    .foreign_key(&mut message_fk(
                        MessageEdits::Table,
                        MessageEdits::MessageId,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Reactions::Table)
                    .col(uuid(Reactions::MessageId))
                    .col(uuid(Reactions::UserId))
                    .col(string(Reactions::Emoji))
                    .col(timestamp_with_time_zone(Reactions::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(Reactions::MessageId)
                            .col(Reactions::UserId)
                            .col(Reactions::Emoji),
                    )
                    .foreign_key(&mut message_fk(Reactions::Table, Reactions::MessageId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Pins::Table)
                    .col(string(Pins::RoomId))
                    .col(uuid(Pins::MessageId))
                    .col(uuid(Pins::PinnedBy))
                    .col(timestamp_with_time_zone(Pins::PinnedAt))
                    .primary_key(Index::create().col(Pins::RoomId).col(Pins::MessageId))
                    .foreign_key(&mut message_fk(Pins::Table, Pins::MessageId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Mentions::Table)
                    .col(uuid(Mentions::MessageId))
                    .col(string(Mentions::RoomId))
                    .col(uuid(Mentions::UserId))
                    .col(big_integer(Mentions::Seq))
                    .primary_key(
                        Index::create()
                            .col(Mentions::MessageId)
                            .col(Mentions::UserId),
                    )
                    .foreign_key(&mut message_fk(Mentions::Table, Mentions::MessageId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_mentions_user_room")
                    .table(Mentions::Table)
                    .col(Mentions::UserId)
                    .col(Mentions::RoomId)
                    .col(Mentions::Seq)
                    .to_owned(),
            )
            .await?;
        let _ = Messages::RoomId;
        // Substring search over message content.
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared("CREATE EXTENSION IF NOT EXISTS pg_trgm")
                    .await?;
                db.execute_unprepared(
                    "CREATE INDEX IF NOT EXISTS idx_messages_content_trgm ON messages USING gin (content gin_trgm_ops)",
                )
                .await?;
            }
            DbBackend::Sqlite => {
                db.execute_unprepared(
                    "CREATE VIRTUAL TABLE messages_fts USING fts5(content, content='messages', content_rowid='rowid', tokenize='trigram')",
                )
                .await?;
                db.execute_unprepared(
                    "CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN \
                       INSERT INTO messages_fts(rowid, content) VALUES (new.rowid, new.content); END",
                )
                .await?;
                db.execute_unprepared(
                    "CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages BEGIN \
                       INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.rowid, old.content); END",
                )
                .await?;
                db.execute_unprepared(
                    "CREATE TRIGGER messages_fts_au AFTER UPDATE OF content ON messages BEGIN \
                       INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.rowid, old.content); \
                       INSERT INTO messages_fts(rowid, content) VALUES (new.rowid, new.content); END",
                )
                .await?;
                db.execute_unprepared("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")
                    .await?;
            }
            _ => {}
        }
        Ok(())
    }
}
