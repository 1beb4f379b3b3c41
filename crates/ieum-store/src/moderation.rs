//! Staff roles, suspensions and the audit log (issue 20).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ieum_domain::moderation::{
    AuditEntry, AuditLog, AuditQuery, ModerationRepository, ServerRole, Suspension,
};
use ieum_domain::{DomainError, DomainResult};
use sea_orm::{QueryResult, Value};
use uuid::Uuid;

use crate::Store;
use crate::sql::{exec, get, rows};

#[derive(Debug, Clone)]
pub struct SqlModeration {
    store: Store,
}

impl SqlModeration {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

#[async_trait]
impl ModerationRepository for SqlModeration {
    async fn role_of(&self, user_id: Uuid) -> DomainResult<ServerRole> {
        let found = rows(
            self.store.connection(),
            "SELECT role FROM server_roles WHERE user_id = ?",
            vec![user_id.into()],
        )
        .await?;
        match found.first() {
            Some(row) => ServerRole::parse(&get::<String>(row, "role")?),
            None => Ok(ServerRole::Member),
        }
    }

    async fn set_role(&self, user_id: Uuid, role: ServerRole) -> DomainResult<()> {
        let c = self.store.connection();
        if role == ServerRole::Member {
            exec(
                c,
                "DELETE FROM server_roles WHERE user_id = ?",
                vec![user_id.into()],
            )
            .await?;
        } else {
            exec(
                c,
                "INSERT INTO server_roles (user_id, role) VALUES (?, ?) \
                 ON CONFLICT (user_id) DO UPDATE SET role = excluded.role",
                vec![user_id.into(), role.as_str().into()],
            )
            .await?;
        }
        Ok(())
    }

    async fn suspension_of(&self, user_id: Uuid) -> DomainResult<Option<Suspension>> {
        let found = rows(
            self.store.connection(),
            "SELECT until, reason, suspended_by, at FROM suspensions WHERE user_id = ?",
            vec![user_id.into()],
        )
        .await?;
        found
            .first()
            .map(|row| {
                Ok(Suspension {
                    until: get(row, "until")?,
                    reason: get(row, "reason")?,
                    by: get(row, "suspended_by")?,
                    at: get(row, "at")?,
                })
            })
            .transpose()
    }

    async fn set_suspension(
        &self,
        user_id: Uuid,
        suspension: Option<Suspension>,
    ) -> DomainResult<bool> {
        let c = self.store.connection();
        let removed = exec(
            c,
            "DELETE FROM suspensions WHERE user_id = ?",
            vec![user_id.into()],
        )
        .await?;
        if let Some(s) = suspension {
            exec(
                c,
                "INSERT INTO suspensions (user_id, until, reason, suspended_by, at) VALUES (?, ?, ?, ?, ?)",
                vec![
                    user_id.into(),
                    s.until.into(),
                    s.reason.into(),
                    s.by.into(),
                    s.at.into(),
                ],
            )
            .await?;
        }
        Ok(removed > 0)
    }

    async fn revoke_sessions(&self, user_id: Uuid, at: DateTime<Utc>) -> DomainResult<u64> {
        exec(
            self.store.connection(),
            "UPDATE refresh_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
            vec![at.into(), user_id.into()],
        )
        .await
    }
}

fn entry_row(row: &QueryResult) -> DomainResult<AuditEntry> {
    Ok(AuditEntry {
        id: get(row, "id")?,
        at: get(row, "at")?,
        actor_id: get(row, "actor_id")?,
        action: get(row, "action")?,
        target_kind: get(row, "target_kind")?,
        target_id: get(row, "target_id")?,
        reason: get(row, "reason")?,
        request_id: get(row, "request_id")?,
    })
}

#[async_trait]
impl AuditLog for SqlModeration {
    async fn append(&self, e: AuditEntry) -> DomainResult<()> {
        exec(
            self.store.connection(),
            "INSERT INTO audit_log (id, at, actor_id, action, target_kind, target_id, reason, request_id) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            vec![
                e.id.into(),
                e.at.into(),
                e.actor_id.into(),
                e.action.into(),
                e.target_kind.into(),
                e.target_id.into(),
                e.reason.into(),
                e.request_id.into(),
            ],
        )
        .await
        .map(|_| ())
    }

    async fn page(&self, q: AuditQuery) -> DomainResult<Vec<AuditEntry>> {
        let mut sql = String::from(
            "SELECT id, at, actor_id, action, target_kind, target_id, reason, request_id \
             FROM audit_log WHERE 1 = 1",
        );
        let mut values: Vec<Value> = Vec::new();
        if let Some(actor) = q.actor_id {
            sql.push_str(" AND actor_id = ?");
            values.push(actor.into());
        }
        match q.action {
            Some(prefix) if prefix.ends_with('.') => {
                // Action names are [a-z_.]: no LIKE wildcard can be in them.
                if !prefix
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.')
                {
                    return Err(DomainError::invalid(
                        "invalid_action",
                        "an action is letters, '_' and '.'",
                    ));
                }
                sql.push_str(" AND action LIKE ?");
                values.push(format!("{prefix}%").into());
            }
            Some(action) => {
                sql.push_str(" AND action = ?");
                values.push(action.into());
            }
            None => {}
        }
        if let Some(target) = q.target_id {
            sql.push_str(" AND target_id = ?");
            values.push(target.into());
        }
        if let Some(before) = q.before {
            sql.push_str(" AND id < ?");
            values.push(before.into());
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", q.limit.max(1)));
        rows(self.store.connection(), &sql, values)
            .await?
            .iter()
            .map(entry_row)
            .collect()
    }

    async fn prune(&self, before: DateTime<Utc>) -> DomainResult<u64> {
        exec(
            self.store.connection(),
            "DELETE FROM audit_log WHERE at < ?",
            vec![before.into()],
        )
        .await
    }
}
