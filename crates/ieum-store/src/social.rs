//! Receipts, couples, friends, blocks and profiles.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ieum_domain::DomainResult;
use ieum_domain::ports::{
    Couple, CoupleInvite, CoupleRepository, FriendState, ProfileUpdate, ReceiptRepository,
    SocialRepository,
};
use ieum_domain::room::NewRoom;
use ieum_domain::user::User;
use sea_orm::{ConnectionTrait, QueryResult, TransactionTrait, Value};
use uuid::Uuid;

use crate::Store;
use crate::error::{db_err, is_unique_violation};
use crate::sql::{exec, get, rows, stmt};

const USER_COLS: &str = "u.id, u.username, u.display_name, u.profile_image_url, u.status_message, u.created_at, u.discoverable";

fn user_row(r: &QueryResult) -> DomainResult<User> {
    Ok(User {
        id: get(r, "id")?,
        username: get(r, "username")?,
        display_name: get(r, "display_name")?,
        profile_image_url: get(r, "profile_image_url")?,
        status_message: get(r, "status_message")?,
        created_at: get(r, "created_at")?,
        discoverable: get(r, "discoverable")?,
    })
}

#[derive(Debug, Clone)]
pub struct SqlSocial {
    store: Store,
}

impl SqlSocial {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

#[async_trait]
impl ReceiptRepository for SqlSocial {
    async fn mark_messages_read(
        &self,
        room_id: &str,
        reader: Uuid,
        ids: Vec<Uuid>,
        upto_seq: Option<i64>,
        at: DateTime<Utc>,
    ) -> DomainResult<Vec<(Uuid, i64)>> {
        let db = self.store.connection();
        let tx = db.begin().await.map_err(db_err)?;
        let mut marked = Vec::new();
        let select = |cond: String, mut values: Vec<Value>| {
            let mut v = vec![room_id.into(), reader.into()];
            v.append(&mut values);
            (
                format!(
                    "SELECT id, seq FROM messages WHERE room_id = ? AND sender_id <> ? AND read_at IS NULL AND ({cond})"
                ),
                v,
            )
        };
        let mut queries = Vec::new();
        if !ids.is_empty() {
            let ids: Vec<Uuid> = ids.into_iter().take(500).collect();
            let marks = vec!["?"; ids.len()].join(", ");
            queries.push(select(
                format!("id IN ({marks})"),
                ids.into_iter().map(Value::from).collect(),
            ));
        }
        if let Some(seq) = upto_seq {
            queries.push(select("seq <= ?".into(), vec![seq.into()]));
        }
        for (sql, values) in queries {
            for r in rows(&tx, &sql, values).await? {
                let id: Uuid = get(&r, "id")?;
                if !marked.iter().any(|(m, _)| *m == id) {
                    marked.push((id, get(&r, "seq")?));
                }
            }
        }
        for chunk in marked.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let mut values: Vec<Value> = vec![at.into(), room_id.into()];
            values.extend(chunk.iter().map(|(id, _)| Value::from(*id)));
            exec(
                &tx,
                &format!("UPDATE messages SET read_at = ? WHERE room_id = ? AND id IN ({marks})"),
                values,
            )
            .await?;
        }
        tx.commit().await.map_err(db_err)?;
        marked.sort_by_key(|(_, s)| *s);
        Ok(marked)
    }

    async fn mark_delivered(&self, room_id: &str, user_id: Uuid, seq: i64) -> DomainResult<bool> {
        let n = exec(
            self.store.connection(),
            "UPDATE room_members SET delivered_seq = ? WHERE room_id = ? AND user_id = ? AND delivered_seq < ?",
            vec![seq.into(), room_id.into(), user_id.into(), seq.into()],
        )
        .await?;
        Ok(n == 1)
    }

    async fn share_room(&self, a: Uuid, b: Uuid) -> DomainResult<bool> {
        let found = rows(
            self.store.connection(),
            "SELECT 1 AS one FROM room_members x JOIN room_members y ON x.room_id = y.room_id \
             WHERE x.user_id = ? AND y.user_id = ? AND x.state = 'active' AND y.state = 'active' LIMIT 1",
            vec![a.into(), b.into()],
        )
        .await?;
        Ok(!found.is_empty())
    }

    async fn room_ids_of(&self, user_id: Uuid) -> DomainResult<Vec<String>> {
        rows(
            self.store.connection(),
            "SELECT room_id FROM room_members WHERE user_id = ? AND state = 'active'",
            vec![user_id.into()],
        )
        .await?
        .iter()
        .map(|r| get(r, "room_id"))
        .collect()
    }
}

#[async_trait]
impl SocialRepository for SqlSocial {
    async fn friend_state(&self, user: Uuid, other: Uuid) -> DomainResult<Option<FriendState>> {
        let found = rows(
            self.store.connection(),
            "SELECT state FROM friendships WHERE user_id = ? AND other_id = ?",
            vec![user.into(), other.into()],
        )
        .await?;
        Ok(
            match found
                .first()
                .map(|r| get::<String>(r, "state"))
                .transpose()?
                .as_deref()
            {
                Some("requested") => Some(FriendState::Requested),
                Some("friends") => Some(FriendState::Friends),
                _ => None,
            },
        )
    }

    async fn set_friend_state(
        &self,
        user: Uuid,
        other: Uuid,
        state: Option<FriendState>,
        at: DateTime<Utc>,
    ) -> DomainResult<()> {
        let db = self.store.connection();
        exec(
            db,
            "DELETE FROM friendships WHERE user_id = ? AND other_id = ?",
            vec![user.into(), other.into()],
        )
        .await?;
        if let Some(state) = state {
            let s = match state {
                FriendState::Requested => "requested",
                FriendState::Friends => "friends",
            };
            exec(
                db,
                "INSERT INTO friendships (user_id, other_id, state, created_at) VALUES (?, ?, ?, ?)",
                vec![user.into(), other.into(), s.into(), at.into()],
            )
            .await?;
        }
        Ok(())
    }

    async fn friends_of(&self, user: Uuid, state: FriendState) -> DomainResult<Vec<User>> {
        let s = match state {
            FriendState::Requested => "requested",
            FriendState::Friends => "friends",
        };
        rows(
            self.store.connection(),
            &format!("SELECT {USER_COLS} FROM friendships f JOIN users u ON u.id = f.other_id WHERE f.user_id = ? AND f.state = ? ORDER BY u.username"),
            vec![user.into(), s.into()],
        )
        .await?
        .iter()
        .map(user_row)
        .collect()
    }

    async fn requests_to(&self, user: Uuid) -> DomainResult<Vec<User>> {
        rows(
            self.store.connection(),
            &format!("SELECT {USER_COLS} FROM friendships f JOIN users u ON u.id = f.user_id WHERE f.other_id = ? AND f.state = 'requested' ORDER BY f.created_at"),
            vec![user.into()],
        )
        .await?
        .iter()
        .map(user_row)
        .collect()
    }

    async fn set_block(
        &self,
        blocker: Uuid,
        blocked: Uuid,
        on: bool,
        at: DateTime<Utc>,
    ) -> DomainResult<()> {
        let db = self.store.connection();
        exec(
            db,
            "DELETE FROM blocks WHERE blocker_id = ? AND blocked_id = ?",
            vec![blocker.into(), blocked.into()],
        )
        .await?;
        if on {
            exec(
                db,
                "INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES (?, ?, ?)",
                vec![blocker.into(), blocked.into(), at.into()],
            )
            .await?;
        }
        Ok(())
    }

    async fn find_users(&self, viewer: Uuid, prefix: &str, limit: u32) -> DomainResult<Vec<User>> {
        // `_` is a LIKE wildcard and a username character: escape it.
        let pattern = format!("{}%", prefix.replace('\\', "").replace('_', "\\_"));
        let found = rows(
            self.store.connection(),
            &format!(
                "SELECT {USER_COLS} FROM users u \
                 WHERE u.username LIKE ? ESCAPE '\\' AND u.id <> ? \
                 AND (u.discoverable \
                   OR EXISTS (SELECT 1 FROM room_members a JOIN room_members b ON b.room_id = a.room_id \
                              WHERE a.user_id = u.id AND b.user_id = ? AND a.state = 'active' AND b.state = 'active') \
                   OR EXISTS (SELECT 1 FROM friendships f WHERE f.user_id = ? AND f.other_id = u.id AND f.state = 'friends') \
                   OR EXISTS (SELECT 1 FROM friendships f1 JOIN friendships f2 ON f2.user_id = f1.other_id \
                              WHERE f1.user_id = ? AND f1.state = 'friends' AND f2.other_id = u.id AND f2.state = 'friends')) \
                 AND NOT EXISTS (SELECT 1 FROM blocks k WHERE (k.blocker_id = ? AND k.blocked_id = u.id) \
                                 OR (k.blocker_id = u.id AND k.blocked_id = ?)) \
                 ORDER BY u.username LIMIT ?"
            ),
            vec![
                pattern.into(),
                viewer.into(),
                viewer.into(),
                viewer.into(),
                viewer.into(),
                viewer.into(),
                viewer.into(),
                i64::from(limit).into(),
            ],
        )
        .await?;
        found.iter().map(user_row).collect()
    }

    async fn blocked_between(&self, a: Uuid, b: Uuid) -> DomainResult<bool> {
        let found = rows(
            self.store.connection(),
            "SELECT 1 AS one FROM blocks WHERE (blocker_id = ? AND blocked_id = ?) OR (blocker_id = ? AND blocked_id = ?) LIMIT 1",
            vec![a.into(), b.into(), b.into(), a.into()],
        )
        .await?;
        Ok(!found.is_empty())
    }

    async fn blocks_of(&self, blocker: Uuid) -> DomainResult<Vec<User>> {
        rows(
            self.store.connection(),
            &format!("SELECT {USER_COLS} FROM blocks b JOIN users u ON u.id = b.blocked_id WHERE b.blocker_id = ? ORDER BY u.username"),
            vec![blocker.into()],
        )
        .await?
        .iter()
        .map(user_row)
        .collect()
    }

    async fn update_profile(&self, user: Uuid, p: ProfileUpdate) -> DomainResult<User> {
        let db = self.store.connection();
        let mut sets = vec!["updated_at = ?".to_owned()];
        let mut values: Vec<Value> = vec![Utc::now().into()];
        if let Some(v) = p.display_name {
            sets.push("display_name = ?".into());
            values.push(v.into());
        }
        if let Some(v) = p.profile_image_url {
            sets.push("profile_image_url = ?".into());
            values.push(v.into());
        }
        if let Some(v) = p.status_message {
            sets.push("status_message = ?".into());
            values.push(v.into());
        }
        if let Some(v) = p.discoverable {
            sets.push("discoverable = ?".into());
            values.push(v.into());
        }
        values.push(user.into());
        exec(
            db,
            &format!("UPDATE users SET {} WHERE id = ?", sets.join(", ")),
            values,
        )
        .await?;
        let found = rows(
            db,
            &format!("SELECT {USER_COLS} FROM users u WHERE u.id = ?"),
            vec![user.into()],
        )
        .await?;
        found
            .first()
            .map(user_row)
            .transpose()?
            .ok_or_else(ieum_domain::error::named::user_not_found)
    }

    async fn set_last_seen(&self, user: Uuid, at: DateTime<Utc>) -> DomainResult<()> {
        exec(
            self.store.connection(),
            "UPDATE users SET last_seen_at = ? WHERE id = ?",
            vec![at.into(), user.into()],
        )
        .await?;
        Ok(())
    }

    async fn last_seen(&self, user: Uuid) -> DomainResult<Option<DateTime<Utc>>> {
        let found = rows(
            self.store.connection(),
            "SELECT last_seen_at FROM users WHERE id = ?",
            vec![user.into()],
        )
        .await?;
        Ok(found
            .first()
            .map(|r| get::<Option<DateTime<Utc>>>(r, "last_seen_at"))
            .transpose()?
            .flatten())
    }
}

#[async_trait]
impl CoupleRepository for SqlSocial {
    async fn save_invite(&self, i: CoupleInvite) -> DomainResult<()> {
        let db = self.store.connection();
        // One live code per inviter.
        exec(
            db,
            "DELETE FROM couple_invites WHERE inviter_id = ?",
            vec![i.inviter_id.into()],
        )
        .await?;
        exec(
            db,
            "INSERT INTO couple_invites (code, inviter_id, expires_at) VALUES (?, ?, ?)",
            vec![i.code.into(), i.inviter_id.into(), i.expires_at.into()],
        )
        .await?;
        Ok(())
    }

    async fn take_invite(&self, code: &str) -> DomainResult<Option<CoupleInvite>> {
        let db = self.store.connection();
        let found = rows(
            db,
            "SELECT code, inviter_id, expires_at FROM couple_invites WHERE code = ?",
            vec![code.into()],
        )
        .await?;
        let Some(r) = found.first() else {
            return Ok(None);
        };
        let invite = CoupleInvite {
            code: get(r, "code")?,
            inviter_id: get(r, "inviter_id")?,
            expires_at: get(r, "expires_at")?,
        };
        // Used once: whoever deletes it redeems it.
        let n = exec(
            db,
            "DELETE FROM couple_invites WHERE code = ?",
            vec![code.into()],
        )
        .await?;
        Ok((n == 1).then_some(invite))
    }

    async fn couple_of(&self, user_id: Uuid) -> DomainResult<Option<Couple>> {
        let found = rows(
            self.store.connection(),
            "SELECT c.id, c.user_a, c.user_b, c.created_at FROM couple_members m JOIN couples c ON c.id = m.couple_id WHERE m.user_id = ?",
            vec![user_id.into()],
        )
        .await?;
        found
            .first()
            .map(|r| {
                Ok(Couple {
                    id: get(r, "id")?,
                    user_a: get(r, "user_a")?,
                    user_b: get(r, "user_b")?,
                    created_at: get(r, "created_at")?,
                })
            })
            .transpose()
    }

    async fn create(&self, c: Couple, room: NewRoom) -> DomainResult<Couple> {
        let db = self.store.connection();
        let tx = db.begin().await.map_err(db_err)?;
        let paired = |e: sea_orm::DbErr| {
            if is_unique_violation(&e) {
                ieum_domain::error::named::already_paired()
            } else {
                db_err(e)
            }
        };
        let backend = tx.get_database_backend();
        tx.execute_raw(stmt(
            backend,
            "INSERT INTO couples (id, user_a, user_b, created_at) VALUES (?, ?, ?, ?)",
            vec![
                c.id.into(),
                c.user_a.into(),
                c.user_b.into(),
                c.created_at.into(),
            ],
        ))
        .await
        .map_err(db_err)?;
        for u in [c.user_a, c.user_b] {
            tx.execute_raw(stmt(
                backend,
                "INSERT INTO couple_members (user_id, couple_id) VALUES (?, ?)",
                vec![u.into(), c.id.into()],
            ))
            .await
            .map_err(paired)?;
        }
        // The couple's room, as the domain made it, with both partners.
        let partner = if room.created_by == c.user_a {
            c.user_b
        } else {
            c.user_a
        };
        crate::rooms::insert_room(&tx, &room, &[partner]).await?;
        // Codes either partner shared before pairing die with it: after an
        // unpairing, an old code must not pair anyone without a new consent.
        tx.execute_raw(stmt(
            backend,
            "DELETE FROM couple_invites WHERE inviter_id IN (?, ?)",
            vec![c.user_a.into(), c.user_b.into()],
        ))
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(c)
    }

    async fn dissolve(&self, couple_id: Uuid) -> DomainResult<bool> {
        let done = exec(
            self.store.connection(),
            "DELETE FROM couple_members WHERE couple_id = ?",
            vec![couple_id.into()],
        )
        .await?;
        Ok(done > 0)
    }
}
