//! Staff roles, suspensions and the audit log (issue 20).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ieum_domain::moderation::{
    AuditEntry, AuditLog, AuditQuery, ModerationRepository, Report, ReportTarget, Resolution,
    ServerRole, StaffUserView, Suspension,
};
use ieum_domain::room::Room;
use ieum_domain::{DomainError, DomainResult};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QueryResult, QuerySelect,
    TransactionTrait, Value,
};
use uuid::Uuid;

use crate::Store;
use crate::entity::{room, user};
use crate::error::{db_err, is_unique_violation};
use crate::sql::{exec, get, rows, stmt};

const REPORT_COLS: &str = "id, reporter_id, target_kind, target_id, room_id, reason, created_at, \
     state, resolved_by, resolved_at, note";

fn report_row(row: &QueryResult) -> DomainResult<Report> {
    let kind: String = get(row, "target_kind")?;
    let target_id: String = get(row, "target_id")?;
    let parse = |text: &str| {
        Uuid::parse_str(text)
            .map_err(|_| DomainError::Internal(format!("stored report target {text:?}")))
    };
    let target = match kind.as_str() {
        "message" => ReportTarget::Message {
            id: parse(&target_id)?,
            room_id: get::<Option<String>>(row, "room_id")?.unwrap_or_default(),
        },
        "user" => ReportTarget::User(parse(&target_id)?),
        other => {
            return Err(DomainError::Internal(format!(
                "stored report kind {other:?}"
            )));
        }
    };
    let state: String = get(row, "state")?;
    let resolved = match state.as_str() {
        "open" => None,
        _ => Some(Resolution {
            by: get::<Option<Uuid>>(row, "resolved_by")?.unwrap_or_default(),
            at: get::<Option<DateTime<Utc>>>(row, "resolved_at")?.unwrap_or_default(),
            outcome: state,
            note: get(row, "note")?,
        }),
    };
    Ok(Report {
        id: get(row, "id")?,
        reporter_id: get(row, "reporter_id")?,
        target,
        reason: get(row, "reason")?,
        created_at: get(row, "created_at")?,
        resolved,
    })
}

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
        // One transaction: a crash between the two leaves the old suspension,
        // never none.
        let tx = self.store.connection().begin().await.map_err(db_err)?;
        let removed = exec(
            &tx,
            "DELETE FROM suspensions WHERE user_id = ?",
            vec![user_id.into()],
        )
        .await?;
        if let Some(s) = suspension {
            exec(
                &tx,
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
        tx.commit().await.map_err(db_err)?;
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

    async fn insert_report(&self, r: &Report) -> DomainResult<bool> {
        let (kind, target, room) = match &r.target {
            ReportTarget::Message { id, room_id } => {
                ("message", id.to_string(), Some(room_id.clone()))
            }
            ReportTarget::User(id) => ("user", id.to_string(), None),
        };
        let c = self.store.connection();
        let result = c
            .execute_raw(stmt(
                c.get_database_backend(),
                &format!("INSERT INTO reports ({REPORT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, 'open', NULL, NULL, NULL)"),
                vec![
                    r.id.into(),
                    r.reporter_id.into(),
                    kind.into(),
                    target.into(),
                    room.into(),
                    r.reason.clone().into(),
                    r.created_at.into(),
                ],
            ))
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(db_err(e)),
        }
    }

    async fn reports(
        &self,
        open: bool,
        after: Option<Uuid>,
        limit: u32,
    ) -> DomainResult<Vec<Report>> {
        let (filter, order, cursor) = if open {
            ("state = 'open'", "ASC", "id > ?")
        } else {
            ("state <> 'open'", "DESC", "id < ?")
        };
        let mut values: Vec<Value> = Vec::new();
        let mut sql = format!("SELECT {REPORT_COLS} FROM reports WHERE {filter}");
        if let Some(after) = after {
            sql.push_str(&format!(" AND {cursor}"));
            values.push(after.into());
        }
        sql.push_str(&format!(" ORDER BY id {order} LIMIT {}", limit.max(1)));
        rows(self.store.connection(), &sql, values)
            .await?
            .iter()
            .map(report_row)
            .collect()
    }

    async fn resolve_report(&self, id: Uuid, r: &Resolution) -> DomainResult<Option<Report>> {
        let c = self.store.connection();
        let changed = exec(
            c,
            "UPDATE reports SET state = ?, resolved_by = ?, resolved_at = ?, note = ? \
             WHERE id = ? AND state = 'open'",
            vec![
                r.outcome.clone().into(),
                r.by.into(),
                r.at.into(),
                r.note.clone().into(),
                id.into(),
            ],
        )
        .await?;
        if changed == 0 {
            return Ok(None);
        }
        let found = rows(
            c,
            &format!("SELECT {REPORT_COLS} FROM reports WHERE id = ?"),
            vec![id.into()],
        )
        .await?;
        found.first().map(report_row).transpose()
    }

    async fn find_users(&self, prefix: &str, limit: u32) -> DomainResult<Vec<StaffUserView>> {
        let c = self.store.connection();
        let found = user::Entity::find()
            .filter(user::Column::Username.starts_with(prefix))
            .order_by_asc(user::Column::Username)
            .limit(u64::from(limit))
            .all(c)
            .await
            .map_err(db_err)?;
        let mut out = Vec::with_capacity(found.len());
        for m in found {
            let id = m.id;
            out.push(StaffUserView {
                user: crate::users::to_user(m),
                role: self.role_of(id).await?,
                suspension: self.suspension_of(id).await?,
            });
        }
        Ok(out)
    }

    async fn list_rooms<'a>(
        &self,
        query: Option<&'a str>,
        before: Option<&'a str>,
        limit: u32,
    ) -> DomainResult<Vec<Room>> {
        let mut q = room::Entity::find();
        if let Some(text) = query {
            q = q.filter(room::Column::Name.contains(text));
        }
        if let Some(before) = before {
            q = q.filter(room::Column::Id.lt(before));
        }
        q.order_by_desc(room::Column::Id)
            .limit(u64::from(limit))
            .all(self.store.connection())
            .await
            .map_err(db_err)?
            .into_iter()
            .map(crate::rooms::to_room)
            .collect()
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
