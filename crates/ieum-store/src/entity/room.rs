use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "rooms")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub kind: String,
    pub name: String,
    pub description: Option<String>,
    pub image_url: Option<String>,
    pub visibility: String,
    pub password_hash: Option<String>,
    pub member_limit: i32,
    pub member_count: i32,
    #[sea_orm(unique)]
    pub invite_code: Option<String>,
    pub created_by: Uuid,
    pub created_at: DateTimeUtc,
    pub last_seq: i64,
    pub last_message_at: Option<DateTimeUtc>,
    pub history_visibility: String,
    pub pin_policy: String,
    #[sea_orm(has_many)]
    pub members: HasMany<super::room_member::Entity>,
    #[sea_orm(has_many)]
    pub messages: HasMany<super::message::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
