use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "room_members")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub room_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    pub role: String,
    pub state: String,
    pub joined_at: DateTimeUtc,
    pub last_read_seq: i64,
    pub favorite: bool,
    pub delivered_seq: i64,
    pub left_seq: Option<i64>,
    pub muted_until: Option<DateTimeUtc>,
    #[sea_orm(belongs_to, from = "room_id", to = "id")]
    pub room: BelongsTo<super::room::Entity>,
    #[sea_orm(belongs_to, from = "user_id", to = "id")]
    pub user: BelongsTo<super::user::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
