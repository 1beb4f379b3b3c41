//! Rooms and memberships.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ieum_domain::message::{MessageKind, MessagePreview};
use ieum_domain::ports::{JoinOutcome, RoomRepository};
use ieum_domain::room::{
    HistoryVisibility, MemberState, MemberView, Membership, NewRoom, PinPolicy, Role, Room,
    RoomKind, RoomSettings, RoomSummary, Visibility,
};
use ieum_domain::{DomainError, DomainResult};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, ExprTrait, QueryFilter,
    QueryResult, TransactionTrait,
};
use uuid::Uuid;

use crate::Store;
use crate::entity::{room, room_member};
use crate::error::{db_err, is_unique_violation};
use crate::sql::stmt;

fn bad_row(what: &str) -> DomainError {
    DomainError::Internal(format!("stored {what} is not readable"))
}

pub(crate) fn to_room(m: room::Model) -> DomainResult<Room> {
    Ok(Room {
        kind: RoomKind::parse(&m.kind).ok_or_else(|| bad_row("room kind"))?,
        visibility: Visibility::parse(&m.visibility).ok_or_else(|| bad_row("visibility"))?,
        id: m.id,
        name: m.name,
        description: m.description,
        image_url: m.image_url,
        password_hash: m.password_hash,
        member_limit: Ord::max(m.member_limit, 0) as u32,
        member_count: Ord::max(m.member_count, 0) as u32,
        invite_code: m.invite_code,
        created_by: m.created_by,
        created_at: m.created_at,
        last_seq: m.last_seq,
        last_message_at: m.last_message_at,
        history_visibility: HistoryVisibility::parse(&m.history_visibility)
            .ok_or_else(|| bad_row("history visibility"))?,
        pin_policy: PinPolicy::parse(&m.pin_policy).ok_or_else(|| bad_row("pin policy"))?,
    })
}

fn to_membership(m: room_member::Model, kind: RoomKind) -> DomainResult<Membership> {
    Ok(Membership {
        room_kind: kind,
        role: Role::parse(&m.role).ok_or_else(|| bad_row("role"))?,
        state: MemberState::parse(&m.state).ok_or_else(|| bad_row("member state"))?,
        room_id: m.room_id,
        user_id: m.user_id,
        joined_at: m.joined_at,
        last_read_seq: m.last_read_seq,
        favorite: m.favorite,
        left_seq: m.left_seq,
        muted_until: m.muted_until,
    })
}

#[derive(Debug, Clone)]
pub struct SqlRooms {
    store: Store,
}

impl SqlRooms {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

fn get<T: sea_orm::TryGetable>(row: &QueryResult, col: &str) -> DomainResult<T> {
    row.try_get::<T>("", col)
        .map_err(|e| DomainError::Internal(format!("reading {col}: {e}")))
}

/// Inserts the room as the domain made it, with its creator (in the role the
/// domain chose) and `others` as active members, inside the caller's
/// transaction. An existing id is `Conflict { code: "room_exists" }`.
pub(crate) async fn insert_room(
    tx: &sea_orm::DatabaseTransaction,
    r: &NewRoom,
    others: &[Uuid],
) -> DomainResult<room::Model> {
    let am = room::ActiveModel {
        id: Set(r.id.clone()),
        kind: Set(r.kind.as_str().to_owned()),
        name: Set(r.name.clone()),
        description: Set(r.description.clone()),
        image_url: Set(r.image_url.clone()),
        visibility: Set(r.visibility.as_str().to_owned()),
        password_hash: Set(r.password_hash.clone()),
        member_limit: Set(r.member_limit as i32),
        member_count: Set(1 + others.len() as i32),
        invite_code: Set(None),
        created_by: Set(r.created_by),
        created_at: Set(r.created_at),
        last_seq: Set(0),
        last_message_at: Set(None),
        history_visibility: Set(r.history_visibility.as_str().to_owned()),
        pin_policy: Set(r.pin_policy.as_str().to_owned()),
    };
    let created = match room::Entity::insert(am).exec_with_returning(tx).await {
        Ok(m) => m,
        Err(e) if is_unique_violation(&e) => {
            return Err(ieum_domain::error::named::room_exists());
        }
        Err(e) => return Err(db_err(e)),
    };
    let members = std::iter::once((r.created_by, r.creator_role))
        .chain(others.iter().map(|u| (*u, Role::Member)));
    for (user_id, role) in members {
        room_member::Entity::insert(new_member_row(
            r.id.clone(),
            user_id,
            role,
            MemberState::Active,
            r.created_at,
        ))
        .exec_without_returning(tx)
        .await
        .map_err(db_err)?;
    }
    Ok(created)
}

/// A membership row for someone the room has never had.
fn new_member_row(
    room_id: String,
    user_id: Uuid,
    role: Role,
    state: MemberState,
    at: DateTime<Utc>,
) -> room_member::ActiveModel {
    room_member::ActiveModel {
        room_id: Set(room_id),
        user_id: Set(user_id),
        role: Set(role.as_str().to_owned()),
        state: Set(state.as_str().to_owned()),
        joined_at: Set(at),
        last_read_seq: Set(0),
        favorite: Set(false),
        delivered_seq: Set(0),
        left_seq: Set(None),
        muted_until: Set(None),
    }
}

/// A user's membership row in a room, whatever its state.
async fn member_row(
    tx: &sea_orm::DatabaseTransaction,
    room_id: &str,
    user_id: Uuid,
) -> DomainResult<Option<room_member::Model>> {
    room_member::Entity::find_by_id((room_id.to_owned(), user_id))
        .one(tx)
        .await
        .map_err(db_err)
}

#[async_trait]
impl RoomRepository for SqlRooms {
    async fn create(&self, r: NewRoom) -> DomainResult<Room> {
        let db = self.store.connection();
        let tx = db.begin().await.map_err(db_err)?;
        let created = insert_room(&tx, &r, &[]).await?;
        tx.commit().await.map_err(db_err)?;
        to_room(created)
    }

    async fn find(&self, id: &str) -> DomainResult<Option<Room>> {
        room::Entity::find_by_id(id.to_owned())
            .one(self.store.connection())
            .await
            .map_err(db_err)?
            .map(to_room)
            .transpose()
    }

    async fn find_by_invite_code(&self, code: &str) -> DomainResult<Option<Room>> {
        room::Entity::find()
            .filter(room::Column::InviteCode.eq(code))
            .one(self.store.connection())
            .await
            .map_err(db_err)?
            .map(to_room)
            .transpose()
    }

    async fn membership(&self, room_id: &str, user_id: Uuid) -> DomainResult<Option<Membership>> {
        let db = self.store.connection();
        let row = db
            .query_one_raw(stmt(
                db.get_database_backend(),
                "SELECT m.room_id, m.user_id, m.role, m.state, m.joined_at, m.last_read_seq, m.favorite, \
                 m.left_seq, m.muted_until, r.kind AS room_kind FROM room_members m JOIN rooms r ON r.id = m.room_id \
                 WHERE m.room_id = ? AND m.user_id = ?",
                vec![room_id.into(), user_id.into()],
            ))
            .await
            .map_err(db_err)?;
        let Some(r) = row else { return Ok(None) };
        let kind = RoomKind::parse(&get::<String>(&r, "room_kind")?)
            .ok_or_else(|| bad_row("room kind"))?;
        to_membership(
            room_member::Model {
                room_id: get(&r, "room_id")?,
                user_id: get(&r, "user_id")?,
                role: get(&r, "role")?,
                state: get(&r, "state")?,
                joined_at: get(&r, "joined_at")?,
                last_read_seq: get(&r, "last_read_seq")?,
                favorite: get(&r, "favorite")?,
                delivered_seq: 0,
                left_seq: get(&r, "left_seq")?,
                muted_until: get(&r, "muted_until")?,
            },
            kind,
        )
        .map(Some)
    }

    async fn add_member(
        &self,
        room_id: &str,
        user_id: Uuid,
        role: Role,
        at: DateTime<Utc>,
    ) -> DomainResult<JoinOutcome> {
        let db = self.store.connection();
        let tx = db.begin().await.map_err(db_err)?;
        let existing = member_row(&tx, room_id, user_id).await?;
        match existing.as_ref().map(|m| m.state.as_str()) {
            Some("active") => return Ok(JoinOutcome::AlreadyMember),
            Some("banned") => return Ok(JoinOutcome::Banned),
            _ => {}
        }
        if !crate::sql::rows(
            &tx,
            "SELECT 1 AS closed FROM room_closures WHERE room_id = ?",
            vec![room_id.into()],
        )
        .await?
        .is_empty()
        {
            return Ok(JoinOutcome::Closed);
        }
        // Take a seat atomically: the row update fails when the room is full.
        let seat = room::Entity::update_many()
            .col_expr(
                room::Column::MemberCount,
                Expr::col(room::Column::MemberCount).add(1),
            )
            .filter(room::Column::Id.eq(room_id))
            .filter(Expr::col(room::Column::MemberCount).lt(Expr::col(room::Column::MemberLimit)))
            .exec(&tx)
            .await
            .map_err(db_err)?;
        if seat.rows_affected == 0 {
            return Ok(JoinOutcome::Full);
        }
        let am = room_member::ActiveModel {
            room_id: Set(room_id.to_owned()),
            user_id: Set(user_id),
            role: Set(role.as_str().to_owned()),
            state: Set(MemberState::Active.as_str().to_owned()),
            joined_at: Set(at),
            last_read_seq: Set(existing.as_ref().map(|m| m.last_read_seq).unwrap_or(0)),
            favorite: Set(existing.as_ref().is_some_and(|m| m.favorite)),
            delivered_seq: Set(existing.as_ref().map(|m| m.delivered_seq).unwrap_or(0)),
            left_seq: Set(None),
            // Leaving and joining again does not end a mute.
            muted_until: Set(existing.as_ref().and_then(|m| m.muted_until)),
        };
        let res = if existing.is_some() {
            room_member::Entity::update(am).exec(&tx).await.map(|_| ())
        } else {
            room_member::Entity::insert(am)
                .exec_without_returning(&tx)
                .await
                .map(|_| ())
        };
        match res {
            Ok(()) => {}
            // A concurrent join of the same user won: they are a member.
            Err(e) if is_unique_violation(&e) => return Ok(JoinOutcome::AlreadyMember),
            Err(e) => return Err(db_err(e)),
        }
        tx.commit().await.map_err(db_err)?;
        Ok(JoinOutcome::Joined)
    }

    async fn ban_outsider(
        &self,
        room_id: &str,
        user_id: Uuid,
        at: DateTime<Utc>,
    ) -> DomainResult<bool> {
        let db = self.store.connection();
        let tx = db.begin().await.map_err(db_err)?;
        let existing = member_row(&tx, room_id, user_id).await?;
        let res = match existing {
            Some(m) if m.state == MemberState::Active.as_str() => return Ok(false),
            Some(_) => room_member::Entity::update_many()
                .col_expr(
                    room_member::Column::State,
                    Expr::value(MemberState::Banned.as_str()),
                )
                .filter(room_member::Column::RoomId.eq(room_id))
                .filter(room_member::Column::UserId.eq(user_id))
                .filter(room_member::Column::State.ne(MemberState::Active.as_str()))
                .exec(&tx)
                .await
                .map(|r| r.rows_affected == 1),
            None => room_member::Entity::insert(new_member_row(
                room_id.to_owned(),
                user_id,
                Role::Member,
                MemberState::Banned,
                at,
            ))
            .exec_without_returning(&tx)
            .await
            .map(|_| true),
        };
        match res {
            Ok(true) => {}
            // A concurrent join won: they are (becoming) an active member.
            Ok(false) => return Ok(false),
            Err(e) if is_unique_violation(&e) => return Ok(false),
            Err(e) => return Err(db_err(e)),
        }
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }

    async fn close(
        &self,
        room_id: &str,
        by: Option<Uuid>,
        at: DateTime<Utc>,
        reason: &str,
    ) -> DomainResult<bool> {
        let closed = crate::sql::exec(
            self.store.connection(),
            "INSERT INTO room_closures (room_id, closed_at, closed_by, reason) VALUES (?, ?, ?, ?) \
             ON CONFLICT (room_id) DO NOTHING",
            vec![room_id.into(), at.into(), by.into(), reason.into()],
        )
        .await?;
        Ok(closed == 1)
    }

    async fn remove_member(
        &self,
        room_id: &str,
        user_id: Uuid,
        state: MemberState,
    ) -> DomainResult<bool> {
        let db = self.store.connection();
        let tx = db.begin().await.map_err(db_err)?;
        let last_seq = room::Entity::find_by_id(room_id.to_owned())
            .one(&tx)
            .await
            .map_err(db_err)?
            .map(|r| r.last_seq)
            .unwrap_or(0);
        let res = room_member::Entity::update_many()
            .col_expr(room_member::Column::State, Expr::value(state.as_str()))
            .col_expr(room_member::Column::LeftSeq, Expr::value(last_seq))
            .filter(room_member::Column::RoomId.eq(room_id))
            .filter(room_member::Column::UserId.eq(user_id))
            .filter(room_member::Column::State.eq(MemberState::Active.as_str()))
            .exec(&tx)
            .await
            .map_err(db_err)?;
        if res.rows_affected == 1 {
            room::Entity::update_many()
                .col_expr(
                    room::Column::MemberCount,
                    Expr::col(room::Column::MemberCount).sub(1),
                )
                .filter(room::Column::Id.eq(room_id))
                .exec(&tx)
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(res.rows_affected == 1)
    }

    async fn set_role(&self, room_id: &str, user_id: Uuid, role: Role) -> DomainResult<bool> {
        let res = room_member::Entity::update_many()
            .col_expr(room_member::Column::Role, Expr::value(role.as_str()))
            .filter(room_member::Column::RoomId.eq(room_id))
            .filter(room_member::Column::UserId.eq(user_id))
            .exec(self.store.connection())
            .await
            .map_err(db_err)?;
        Ok(res.rows_affected == 1)
    }

    async fn set_muted(
        &self,
        room_id: &str,
        user_id: Uuid,
        until: Option<DateTime<Utc>>,
    ) -> DomainResult<bool> {
        let res = room_member::Entity::update_many()
            .col_expr(room_member::Column::MutedUntil, Expr::value(until))
            .filter(room_member::Column::RoomId.eq(room_id))
            .filter(room_member::Column::UserId.eq(user_id))
            .filter(room_member::Column::State.eq(MemberState::Active.as_str()))
            .exec(self.store.connection())
            .await
            .map_err(db_err)?;
        Ok(res.rows_affected == 1)
    }

    async fn unban(&self, room_id: &str, user_id: Uuid) -> DomainResult<bool> {
        let res = room_member::Entity::update_many()
            .col_expr(
                room_member::Column::State,
                Expr::value(MemberState::Left.as_str()),
            )
            .filter(room_member::Column::RoomId.eq(room_id))
            .filter(room_member::Column::UserId.eq(user_id))
            .filter(room_member::Column::State.eq(MemberState::Banned.as_str()))
            .exec(self.store.connection())
            .await
            .map_err(db_err)?;
        Ok(res.rows_affected == 1)
    }

    async fn set_favorite(
        &self,
        room_id: &str,
        user_id: Uuid,
        favorite: bool,
    ) -> DomainResult<bool> {
        let res = room_member::Entity::update_many()
            .col_expr(room_member::Column::Favorite, Expr::value(favorite))
            .filter(room_member::Column::RoomId.eq(room_id))
            .filter(room_member::Column::UserId.eq(user_id))
            .exec(self.store.connection())
            .await
            .map_err(db_err)?;
        Ok(res.rows_affected == 1)
    }

    async fn set_invite_code(&self, room_id: &str, code: Option<String>) -> DomainResult<()> {
        room::Entity::update_many()
            .col_expr(room::Column::InviteCode, Expr::value(code))
            .filter(room::Column::Id.eq(room_id))
            .exec(self.store.connection())
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn members(&self, room_id: &str) -> DomainResult<Vec<MemberView>> {
        let db = self.store.connection();
        let rows = db
            .query_all_raw(stmt(
                db.get_database_backend(),
                "SELECT m.user_id, m.role, m.joined_at, m.last_read_seq, u.username, u.display_name, u.profile_image_url \
                 FROM room_members m JOIN users u ON u.id = m.user_id \
                 WHERE m.room_id = ? AND m.state = 'active' ORDER BY m.joined_at, m.user_id",
                vec![room_id.into()],
            ))
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(MemberView {
                    user_id: get(r, "user_id")?,
                    role: Role::parse(&get::<String>(r, "role")?).ok_or_else(|| bad_row("role"))?,
                    joined_at: get(r, "joined_at")?,
                    last_read_seq: get(r, "last_read_seq")?,
                    username: get(r, "username")?,
                    display_name: get(r, "display_name")?,
                    profile_image_url: get(r, "profile_image_url")?,
                })
            })
            .collect()
    }

    async fn rooms_of(&self, user_id: Uuid) -> DomainResult<Vec<RoomSummary>> {
        let db = self.store.connection();
        let rows = db
            .query_all_raw(stmt(
                db.get_database_backend(),
                "SELECT r.*, m.role AS my_role, m.favorite AS my_favorite, m.last_read_seq AS my_last_read_seq, \
                   (SELECT COUNT(*) FROM messages x WHERE x.room_id = r.id AND x.seq > m.last_read_seq \
                      AND x.sender_id <> ? AND x.kind <> 'SYSTEM' AND x.deleted_at IS NULL) AS unread_count, \
                   (SELECT COUNT(*) FROM mentions mn WHERE mn.room_id = r.id AND mn.user_id = ? \
                      AND mn.seq > m.last_read_seq) AS mention_count, \
                   lm.id AS lm_id, lm.seq AS lm_seq, lm.sender_id AS lm_sender_id, \
                   lm.sender_name AS lm_sender_name, lm.kind AS lm_kind, lm.content AS lm_content, \
                   lm.created_at AS lm_created_at \
                 FROM room_members m JOIN rooms r ON r.id = m.room_id \
                 LEFT JOIN messages lm ON lm.room_id = r.id AND lm.seq = r.last_seq \
                 WHERE m.user_id = ? AND m.state = 'active' \
                 ORDER BY m.favorite DESC, COALESCE(r.last_message_at, r.created_at) DESC, r.id",
                vec![user_id.into(), user_id.into(), user_id.into()],
            ))
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                let room = to_room(room::Model {
                    id: get(r, "id")?,
                    kind: get(r, "kind")?,
                    name: get(r, "name")?,
                    description: get(r, "description")?,
                    image_url: get(r, "image_url")?,
                    visibility: get(r, "visibility")?,
                    password_hash: get(r, "password_hash")?,
                    member_limit: get(r, "member_limit")?,
                    member_count: get(r, "member_count")?,
                    invite_code: get(r, "invite_code")?,
                    created_by: get(r, "created_by")?,
                    created_at: get(r, "created_at")?,
                    last_seq: get(r, "last_seq")?,
                    last_message_at: get(r, "last_message_at")?,
                    history_visibility: get(r, "history_visibility")?,
                    pin_policy: get(r, "pin_policy")?,
                })?;
                let last_message = match get::<Option<Uuid>>(r, "lm_id")? {
                    Some(id) => Some(MessagePreview {
                        id,
                        seq: get(r, "lm_seq")?,
                        sender_id: get(r, "lm_sender_id")?,
                        sender_name: get(r, "lm_sender_name")?,
                        kind: MessageKind::parse(&get::<String>(r, "lm_kind")?)
                            .ok_or_else(|| bad_row("message kind"))?,
                        content: get(r, "lm_content")?,
                        created_at: get(r, "lm_created_at")?,
                    }),
                    None => None,
                };
                Ok(RoomSummary {
                    room,
                    role: Role::parse(&get::<String>(r, "my_role")?)
                        .ok_or_else(|| bad_row("role"))?,
                    favorite: get(r, "my_favorite")?,
                    last_read_seq: get(r, "my_last_read_seq")?,
                    unread_count: get(r, "unread_count")?,
                    mention_count: get(r, "mention_count")?,
                    last_message,
                })
            })
            .collect()
    }

    async fn update_settings(&self, room_id: &str, s: RoomSettings) -> DomainResult<()> {
        let mut q = room::Entity::update_many().filter(room::Column::Id.eq(room_id));
        let mut any = false;
        if let Some(v) = s.name {
            q = q.col_expr(room::Column::Name, Expr::value(v));
            any = true;
        }
        if let Some(v) = s.description {
            q = q.col_expr(room::Column::Description, Expr::value(v));
            any = true;
        }
        if let Some(v) = s.image_url {
            q = q.col_expr(room::Column::ImageUrl, Expr::value(v));
            any = true;
        }
        if let Some(v) = s.history_visibility {
            q = q.col_expr(room::Column::HistoryVisibility, Expr::value(v.as_str()));
            any = true;
        }
        if let Some(v) = s.pin_policy {
            q = q.col_expr(room::Column::PinPolicy, Expr::value(v.as_str()));
            any = true;
        }
        if any {
            q.exec(self.store.connection()).await.map_err(db_err)?;
        }
        Ok(())
    }

    async fn mark_read(&self, room_id: &str, user_id: Uuid, seq: i64) -> DomainResult<i64> {
        let db = self.store.connection();
        room_member::Entity::update_many()
            .col_expr(room_member::Column::LastReadSeq, Expr::value(seq))
            .filter(room_member::Column::RoomId.eq(room_id))
            .filter(room_member::Column::UserId.eq(user_id))
            .filter(room_member::Column::LastReadSeq.lt(seq))
            .exec(db)
            .await
            .map_err(db_err)?;
        Ok(
            room_member::Entity::find_by_id((room_id.to_owned(), user_id))
                .one(db)
                .await
                .map_err(db_err)?
                .map(|m| m.last_read_seq)
                .unwrap_or(0),
        )
    }
}
