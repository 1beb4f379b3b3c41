//! Users and refresh tokens.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ieum_domain::DomainResult;
use ieum_domain::moderation::Suspension;
use ieum_domain::ports::{RefreshTokenRecord, RefreshTokenRepository, Standing, UserRepository};
use ieum_domain::user::{NewUser, User, UserCredentials};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::Store;
use crate::entity::{refresh_token, user};
use crate::error::{db_err, is_unique_violation};
use crate::sql::{get, rows};

pub(crate) fn to_user(m: user::Model) -> User {
    User {
        id: m.id,
        username: m.username,
        display_name: m.display_name,
        profile_image_url: m.profile_image_url,
        status_message: m.status_message,
        created_at: m.created_at,
        discoverable: m.discoverable,
    }
}

#[derive(Debug, Clone)]
pub struct SqlUsers {
    store: Store,
}

impl SqlUsers {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

#[async_trait]
impl UserRepository for SqlUsers {
    async fn create(&self, u: NewUser) -> DomainResult<User> {
        let am = user::ActiveModel {
            id: Set(u.id),
            username: Set(u.username),
            display_name: Set(u.display_name),
            password_hash: Set(u.password_hash),
            profile_image_url: Set(None),
            status_message: Set(None),
            created_at: Set(u.created_at),
            updated_at: Set(u.created_at),
            last_seen_at: Set(None),
            discoverable: Set(false),
        };
        match user::Entity::insert(am)
            .exec_with_returning(self.store.connection())
            .await
        {
            Ok(m) => Ok(to_user(m)),
            Err(e) if is_unique_violation(&e) => Err(ieum_domain::error::named::username_taken()),
            Err(e) => Err(db_err(e)),
        }
    }

    async fn find_credentials(&self, username: &str) -> DomainResult<Option<UserCredentials>> {
        let found = user::Entity::find()
            .filter(user::Column::Username.eq(username))
            .one(self.store.connection())
            .await
            .map_err(db_err)?;
        Ok(found.map(|m| {
            let password_hash = m.password_hash.clone();
            UserCredentials {
                user: to_user(m),
                password_hash,
            }
        }))
    }

    async fn find_by_id(&self, id: Uuid) -> DomainResult<Option<User>> {
        Ok(user::Entity::find_by_id(id)
            .one(self.store.connection())
            .await
            .map_err(db_err)?
            .map(to_user))
    }

    async fn standing(&self, id: Uuid, family: Option<Uuid>) -> DomainResult<Option<Standing>> {
        use sea_orm::FromQueryResult;
        let found = rows(
            self.store.connection(),
            "SELECT u.*, s.until AS s_until, s.reason AS s_reason, s.suspended_by AS s_by, \
             s.at AS s_at, CASE WHEN EXISTS (SELECT 1 FROM refresh_tokens t \
             WHERE t.family_id = ? AND t.revoked_at IS NOT NULL) THEN 1 ELSE 0 END AS revoked \
             FROM users u LEFT JOIN suspensions s ON s.user_id = u.id WHERE u.id = ?",
            vec![family.into(), id.into()],
        )
        .await?;
        let Some(row) = found.first() else {
            return Ok(None);
        };
        let model = user::Model::from_query_result(row, "").map_err(db_err)?;
        let at: Option<DateTime<Utc>> = get(row, "s_at")?;
        let suspension = match at {
            Some(at) => Some(Suspension {
                until: get(row, "s_until")?,
                reason: get(row, "s_reason")?,
                by: get(row, "s_by")?,
                at,
            }),
            None => None,
        };
        Ok(Some(Standing {
            user: to_user(model),
            suspension,
            family_revoked: get::<i32>(row, "revoked")? == 1,
        }))
    }
}

#[derive(Debug, Clone)]
pub struct SqlRefreshTokens {
    store: Store,
}

impl SqlRefreshTokens {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

fn to_record(m: refresh_token::Model) -> RefreshTokenRecord {
    RefreshTokenRecord {
        id: m.id,
        family_id: m.family_id,
        user_id: m.user_id,
        token_hash: m.token_hash,
        created_at: m.created_at,
        expires_at: m.expires_at,
        used_at: m.used_at,
        revoked_at: m.revoked_at,
    }
}

#[async_trait]
impl RefreshTokenRepository for SqlRefreshTokens {
    async fn insert(&self, r: RefreshTokenRecord) -> DomainResult<()> {
        let am = refresh_token::ActiveModel {
            id: Set(r.id),
            family_id: Set(r.family_id),
            user_id: Set(r.user_id),
            token_hash: Set(r.token_hash),
            created_at: Set(r.created_at),
            expires_at: Set(r.expires_at),
            used_at: Set(r.used_at),
            revoked_at: Set(r.revoked_at),
        };
        refresh_token::Entity::insert(am)
            .exec_without_returning(self.store.connection())
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn find(&self, id: Uuid) -> DomainResult<Option<RefreshTokenRecord>> {
        Ok(refresh_token::Entity::find_by_id(id)
            .one(self.store.connection())
            .await
            .map_err(db_err)?
            .map(to_record))
    }

    async fn mark_used(&self, id: Uuid, at: DateTime<Utc>) -> DomainResult<bool> {
        let res = refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::UsedAt, Expr::value(at))
            .filter(refresh_token::Column::Id.eq(id))
            .filter(refresh_token::Column::UsedAt.is_null())
            .filter(refresh_token::Column::RevokedAt.is_null())
            .exec(self.store.connection())
            .await
            .map_err(db_err)?;
        Ok(res.rows_affected == 1)
    }

    async fn revoke_family(&self, family_id: Uuid, at: DateTime<Utc>) -> DomainResult<u64> {
        let res = refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::RevokedAt, Expr::value(at))
            .filter(refresh_token::Column::FamilyId.eq(family_id))
            .filter(refresh_token::Column::RevokedAt.is_null())
            .exec(self.store.connection())
            .await
            .map_err(db_err)?;
        Ok(res.rows_affected)
    }

    async fn family_revoked(&self, family_id: Uuid) -> DomainResult<bool> {
        let revoked = refresh_token::Entity::find()
            .filter(refresh_token::Column::FamilyId.eq(family_id))
            .filter(refresh_token::Column::RevokedAt.is_not_null())
            .one(self.store.connection())
            .await
            .map_err(db_err)?;
        Ok(revoked.is_some())
    }
}
