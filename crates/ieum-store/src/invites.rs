//! Invite codes (`IEUM_REGISTRATION=invite`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ieum_domain::DomainResult;
use ieum_domain::registration::{Invite, InviteRepository};

use crate::Store;
use crate::sql::{exec, get, rows};

pub struct SqlInvites {
    store: Store,
}

impl SqlInvites {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

#[async_trait]
impl InviteRepository for SqlInvites {
    async fn insert(&self, i: &Invite) -> DomainResult<()> {
        exec(
            self.store.connection(),
            "INSERT INTO invite_codes (code, created_by, created_at, expires_at, max_uses, uses_left) \
             VALUES (?, ?, ?, ?, ?, ?)",
            vec![
                i.code.clone().into(),
                i.created_by.into(),
                i.created_at.into(),
                i.expires_at.into(),
                (i.max_uses as i32).into(),
                (i.uses_left as i32).into(),
            ],
        )
        .await?;
        Ok(())
    }

    async fn usable(&self, now: DateTime<Utc>) -> DomainResult<Vec<Invite>> {
        rows(
            self.store.connection(),
            "SELECT code, created_by, created_at, expires_at, max_uses, uses_left FROM invite_codes \
             WHERE uses_left > 0 AND (expires_at IS NULL OR expires_at > ?) \
             ORDER BY created_at DESC LIMIT 500",
            vec![now.into()],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(Invite {
                code: get(r, "code")?,
                created_by: get(r, "created_by")?,
                created_at: get(r, "created_at")?,
                expires_at: get(r, "expires_at")?,
                max_uses: get::<i32>(r, "max_uses")?.max(0) as u32,
                uses_left: get::<i32>(r, "uses_left")?.max(0) as u32,
            })
        })
        .collect()
    }

    async fn revoke(&self, code: &str) -> DomainResult<bool> {
        Ok(exec(
            self.store.connection(),
            "DELETE FROM invite_codes WHERE code = ?",
            vec![code.into()],
        )
        .await?
            == 1)
    }

    async fn take(&self, code: &str, now: DateTime<Utc>) -> DomainResult<bool> {
        Ok(exec(
            self.store.connection(),
            "UPDATE invite_codes SET uses_left = uses_left - 1 \
             WHERE code = ? AND uses_left > 0 AND (expires_at IS NULL OR expires_at > ?)",
            vec![code.into(), now.into()],
        )
        .await?
            == 1)
    }

    async fn give_back(&self, code: &str) -> DomainResult<()> {
        exec(
            self.store.connection(),
            "UPDATE invite_codes SET uses_left = uses_left + 1 WHERE code = ? AND uses_left < max_uses",
            vec![code.into()],
        )
        .await?;
        Ok(())
    }
}
