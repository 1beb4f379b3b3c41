use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    LastSeenAt,
}

#[derive(DeriveIden)]
enum RoomMembers {
    Table,
    DeliveredSeq,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    ReadAt,
}

#[derive(DeriveIden)]
enum Couples {
    Table,
    Id,
    UserA,
    UserB,
    CreatedAt,
}

#[derive(DeriveIden)]
enum CoupleMembers {
    Table,
    UserId,
    CoupleId,
}

#[derive(DeriveIden)]
enum CoupleInvites {
    Table,
    Code,
    InviterId,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Friendships {
    Table,
    UserId,
    OtherId,
    State,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Blocks {
    Table,
    BlockerId,
    BlockedId,
    CreatedAt,
}

fn user_fk<T: IntoIden + 'static, C: IntoIden + 'static>(
    table: T,
    col: C,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, col)
        .to(Users::Table, Users::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite can add only one column per ALTER TABLE.
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(timestamp_with_time_zone_null(Users::LastSeenAt))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(RoomMembers::Table)
                    .add_column(big_integer(RoomMembers::DeliveredSeq).default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Messages::Table)
                    .add_column(timestamp_with_time_zone_null(Messages::ReadAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Couples::Table)
                    .col(pk_uuid(Couples::Id))
                    .col(uuid(Couples::UserA))
                    .col(uuid(Couples::UserB))
                    .col(timestamp_with_time_zone(Couples::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CoupleMembers::Table)
                    .col(pk_uuid(CoupleMembers::UserId))
                    .col(uuid(CoupleMembers::CoupleId))
                    .foreign_key(&mut user_fk(CoupleMembers::Table, CoupleMembers::UserId))
                    .foreign_key(
                        ForeignKey::create()
                            .from(CoupleMembers::Table, CoupleMembers::CoupleId)
                            .to(Couples::Table, Couples::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CoupleInvites::Table)
                    .col(string(CoupleInvites::Code).primary_key())
                    .col(uuid(CoupleInvites::InviterId))
                    .col(timestamp_with_time_zone(CoupleInvites::ExpiresAt))
                    .foreign_key(&mut user_fk(CoupleInvites::Table, CoupleInvites::InviterId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Friendships::Table)
                    .col(uuid(Friendships::UserId))
                    .col(uuid(Friendships::OtherId))
                    .col(string(Friendships::State))
                    .col(timestamp_with_time_zone(Friendships::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(Friendships::UserId)
                            .col(Friendships::OtherId),
                    )
                    .foreign_key(&mut user_fk(Friendships::Table, Friendships::UserId))
                    .foreign_key(&mut user_fk(Friendships::Table, Friendships::OtherId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Blocks::Table)
                    .col(uuid(Blocks::BlockerId))
                    .col(uuid(Blocks::BlockedId))
                    .col(timestamp_with_time_zone(Blocks::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(Blocks::BlockerId)
                            .col(Blocks::BlockedId),
                    )
                    .foreign_key(&mut user_fk(Blocks::Table, Blocks::BlockerId))
                    .foreign_key(&mut user_fk(Blocks::Table, Blocks::BlockedId))
                    .to_owned(),
            )
            .await
    }
}
