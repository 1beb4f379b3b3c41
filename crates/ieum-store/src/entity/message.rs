use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub room_id: String,
    pub seq: i64,
    pub sender_id: Uuid,
    pub sender_username: String,
    pub sender_name: String,
    pub sender_image: Option<String>,
    pub kind: String,
    #[sea_orm(column_type = "Text")]
    pub content: String,
    pub image_url: Option<String>,
    pub client_msg_id: Option<String>,
    pub created_at: DateTimeUtc,
    pub read_at: Option<DateTimeUtc>,
    pub edited_at: Option<DateTimeUtc>,
    pub deleted_at: Option<DateTimeUtc>,
    pub parent_id: Option<Uuid>,
    pub reply_count: i32,
    pub last_reply_at: Option<DateTimeUtc>,
    pub expires_at: Option<DateTimeUtc>,
    #[sea_orm(belongs_to, from = "room_id", to = "id")]
    pub room: BelongsTo<super::room::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
