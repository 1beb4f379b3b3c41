use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Rooms {
    Table,
    Id,
    Kind,
    Name,
    Description,
    ImageUrl,
    Visibility,
    PasswordHash,
    MemberLimit,
    MemberCount,
    InviteCode,
    CreatedBy,
    CreatedAt,
    LastSeq,
    LastMessageAt,
}

#[derive(DeriveIden)]
enum RoomMembers {
    Table,
    RoomId,
    UserId,
    Role,
    State,
    JoinedAt,
    LastReadSeq,
    Favorite,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    Id,
    RoomId,
    Seq,
    SenderId,
    SenderUsername,
    SenderName,
    SenderImage,
    Kind,
    Content,
    ImageUrl,
    ClientMsgId,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Rooms::Table)
                    .col(string(Rooms::Id).primary_key())
                    .col(string(Rooms::Kind))
                    .col(string(Rooms::Name))
                    .col(text_null(Rooms::Description))
                    .col(string_null(Rooms::ImageUrl))
                    .col(string(Rooms::Visibility))
                    .col(string_null(Rooms::PasswordHash))
                    .col(integer(Rooms::MemberLimit))
                    .col(integer(Rooms::MemberCount).default(0))
                    .col(string_null(Rooms::InviteCode).unique_key())
                    .col(uuid(Rooms::CreatedBy))
                    .col(timestamp_with_time_zone(Rooms::CreatedAt))
                    .col(big_integer(Rooms::LastSeq).default(0))
                    .col(timestamp_with_time_zone_null(Rooms::LastMessageAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RoomMembers::Table)
                    .col(string(RoomMembers::RoomId))
                    .col(uuid(RoomMembers::UserId))
                    .col(string(RoomMembers::Role))
                    .col(string(RoomMembers::State))
                    .col(timestamp_with_time_zone(RoomMembers::JoinedAt))
                    .col(big_integer(RoomMembers::LastReadSeq).default(0))
                    .col(boolean(RoomMembers::Favorite).default(false))
                    .primary_key(
                        Index::create()
                            .col(RoomMembers::RoomId)
                            .col(RoomMembers::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(RoomMembers::Table, RoomMembers::RoomId)
                            .to(Rooms::Table, Rooms::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(RoomMembers::Table, RoomMembers::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_room_members_user")
                    .table(RoomMembers::Table)
                    .col(RoomMembers::UserId)
                    .col(RoomMembers::State)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Messages::Table)
                    .col(pk_uuid(Messages::Id))
                    .col(string(Messages::RoomId))
                    .col(big_integer(Messages::Seq))
                    .col(uuid(Messages::SenderId))
                    .col(string(Messages::SenderUsername))
                    .col(string(Messages::SenderName))
                    .col(string_null(Messages::SenderImage))
                    .col(string(Messages::Kind))
                    .col(text(Messages::Content))
                    .col(string_null(Messages::ImageUrl))
                    .col(string_null(Messages::ClientMsgId))
                    .col(timestamp_with_time_zone(Messages::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Messages::Table, Messages::RoomId)
                            .to(Rooms::Table, Rooms::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_messages_room_seq")
                    .table(Messages::Table)
                    .col(Messages::RoomId)
                    .col(Messages::Seq)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_messages_client_id")
                    .table(Messages::Table)
                    .col(Messages::RoomId)
                    .col(Messages::SenderId)
                    .col(Messages::ClientMsgId)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            Messages::Table.into_iden(),
            RoomMembers::Table.into_iden(),
            Rooms::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(t).to_owned())
                .await?;
        }
        Ok(())
    }
}
