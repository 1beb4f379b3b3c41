//! The tables an archive holds, as this database declares them, and their
//! values in and out.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Value};
use serde_json::Value as Json;
use uuid::Uuid;

use super::ArchiveError;
use super::format::{Column, Kind, timestamp};
use crate::sql;

/// Every table, parents before the tables whose foreign keys name them. A
/// migration that adds a table adds it here: export and import refuse a
/// database holding a table this list lacks.
const ORDER: &[&str] = &[
    "users",
    "refresh_tokens",
    "rooms",
    "room_members",
    "messages",
    "message_edits",
    "reactions",
    "pins",
    "mentions",
    "couples",
    "couple_members",
    "couple_invites",
    "friendships",
    "blocks",
    "attachments",
    "devices",
    "push_prefs",
    "room_mutes",
    "push_delivered",
    "push_outbox",
    "server_roles",
    "suspensions",
    "audit_log",
    "reports",
    "room_closures",
    "invite_codes",
];

/// Tables that are not data: the migrations' own, and SQLite's search index
/// (its triggers fill it again as messages are imported).
fn derived(name: &str) -> bool {
    name == "seaql_migrations" || name.starts_with("sqlite_") || name.starts_with("messages_fts")
}

/// A column as this database holds it.
#[derive(Debug, Clone)]
pub(super) struct LocalColumn {
    pub column: Column,
    /// PostgreSQL `integer` (read as 32 bits).
    pub int32: bool,
}

#[derive(Debug, Clone)]
pub(super) struct LocalTable {
    pub name: String,
    pub columns: Vec<LocalColumn>,
}

impl LocalTable {
    pub fn archive_columns(&self) -> Vec<Column> {
        self.columns.iter().map(|c| c.column.clone()).collect()
    }

    /// The order rows are read in: a thread reply after the message it
    /// answers (both in one room, the root's seq lower).
    pub fn select(&self) -> String {
        let order = if self.name == "messages" {
            " ORDER BY room_id, seq"
        } else {
            ""
        };
        format!(
            "SELECT {} FROM {}{order}",
            self.column_list(),
            quote(&self.name)
        )
    }

    fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|c| quote(&c.column.name))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

fn kind_of(declared: &str) -> Option<(Kind, bool)> {
    let t = declared.to_ascii_lowercase();
    Some(if t.contains("uuid") {
        (Kind::Uuid, false)
    } else if t.contains("timestamp") {
        (Kind::Timestamp, false)
    } else if t.starts_with("bool") {
        (Kind::Bool, false)
    } else if t == "integer" || t == "int" || t == "int4" {
        (Kind::Int, true)
    } else if t.contains("int") {
        (Kind::Int, false)
    } else if t.starts_with("double") || t == "float" || t == "real" {
        (Kind::Float, false)
    } else if t.contains("char") || t == "text" {
        (Kind::Text, false)
    } else {
        return None;
    })
}

/// This database's tables in [`ORDER`].
pub(super) async fn tables(c: &impl ConnectionTrait) -> Result<Vec<LocalTable>, ArchiveError> {
    let backend = c.get_database_backend();
    let names_sql = match backend {
        DbBackend::Postgres => {
            "SELECT table_name AS name FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        }
        _ => "SELECT name FROM sqlite_master WHERE type = 'table'",
    };
    let mut names = Vec::new();
    for row in sql::rows(c, names_sql, vec![]).await? {
        let name: String = sql::get(&row, "name")?;
        if derived(&name) {
            continue;
        }
        if !ORDER.contains(&name.as_str()) {
            return Err(ArchiveError::Unsupported(format!(
                "table {name} is not known to this version's archives"
            )));
        }
        names.push(name);
    }
    let mut out = Vec::new();
    for &name in ORDER {
        if !names.iter().any(|n| n == name) {
            return Err(ArchiveError::Unsupported(format!(
                "this database has no table {name}: is it migrated?"
            )));
        }
        out.push(LocalTable {
            name: name.to_owned(),
            columns: columns(c, backend, name).await?,
        });
    }
    Ok(out)
}

async fn columns(
    c: &impl ConnectionTrait,
    backend: DbBackend,
    table: &str,
) -> Result<Vec<LocalColumn>, ArchiveError> {
    let (columns_sql, int32) = match backend {
        DbBackend::Postgres => (
            "SELECT column_name AS name, data_type AS type FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
            true,
        ),
        _ => (
            "SELECT name, type FROM pragma_table_info(?) ORDER BY cid",
            false,
        ),
    };
    let mut out = Vec::new();
    for row in sql::rows(c, columns_sql, vec![table.into()]).await? {
        let name: String = sql::get(&row, "name")?;
        let declared: String = sql::get(&row, "type")?;
        let (kind, narrow) = kind_of(&declared).ok_or_else(|| {
            ArchiveError::Unsupported(format!("column {table}.{name} has type {declared}"))
        })?;
        out.push(LocalColumn {
            column: Column { name, kind },
            int32: int32 && narrow,
        });
    }
    Ok(out)
}

/// One value of a row read by [`LocalTable::select`].
pub(super) fn read(row: &QueryResult, c: &LocalColumn) -> Result<Json, ArchiveError> {
    let name = c.column.name.as_str();
    Ok(match c.column.kind {
        Kind::Uuid => sql::get::<Option<Uuid>>(row, name)?
            .map(|u| Json::String(u.to_string()))
            .unwrap_or(Json::Null),
        Kind::Timestamp => sql::get::<Option<DateTime<Utc>>>(row, name)?
            .map(timestamp)
            .unwrap_or(Json::Null),
        Kind::Bool => sql::get::<Option<bool>>(row, name)?
            .map(Json::Bool)
            .unwrap_or(Json::Null),
        Kind::Int if c.int32 => sql::get::<Option<i32>>(row, name)?
            .map(Json::from)
            .unwrap_or(Json::Null),
        Kind::Int => sql::get::<Option<i64>>(row, name)?
            .map(Json::from)
            .unwrap_or(Json::Null),
        Kind::Float => sql::get::<Option<f64>>(row, name)?
            .map(Json::from)
            .unwrap_or(Json::Null),
        Kind::Text => sql::get::<Option<String>>(row, name)?
            .map(Json::String)
            .unwrap_or(Json::Null),
    })
}

/// Most placeholders one statement binds (SQLite allows 32,766, PostgreSQL 65,535).
const MAX_PARAMS: usize = 30_000;

/// Inserts `rows` (in the archive's column order, `columns`) in statements
/// of as many rows as the placeholder limit allows.
pub(super) async fn insert(
    c: &impl ConnectionTrait,
    table: &LocalTable,
    columns: &[Column],
    rows: Vec<Vec<Value>>,
) -> Result<(), ArchiveError> {
    let narrow: Vec<bool> = columns
        .iter()
        .map(|a| {
            table
                .columns
                .iter()
                .any(|l| l.int32 && l.column.name == a.name)
        })
        .collect();
    let head = format!(
        "INSERT INTO {} ({}) VALUES ",
        quote(&table.name),
        columns
            .iter()
            .map(|c| quote(&c.name))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let tuple = format!("({})", vec!["?"; columns.len()].join(", "));
    let per_statement = (MAX_PARAMS / columns.len().max(1)).max(1);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let mut values = Vec::with_capacity(per_statement * columns.len());
        let mut sql = head.clone();
        for (i, row) in rows.by_ref().take(per_statement).enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&tuple);
            values.extend(row.into_iter().zip(&narrow).map(|(v, &narrow)| match v {
                Value::BigInt(n) if narrow => Value::Int(n.map(|n| n as i32)),
                v => v,
            }));
        }
        sql::exec(c, &sql, values).await?;
    }
    Ok(())
}

/// Rows in `table` (for the header, and the empty-database check).
pub(super) async fn count(c: &impl ConnectionTrait, table: &str) -> Result<u64, ArchiveError> {
    let sql = format!("SELECT COUNT(*) AS n FROM {}", quote(table));
    Ok(sql::count(c, &sql, vec![]).await?)
}

/// The last migration applied to this database.
pub(super) async fn schema(c: &impl ConnectionTrait) -> Result<String, ArchiveError> {
    let rows = sql::rows(
        c,
        "SELECT version FROM seaql_migrations ORDER BY version DESC LIMIT 1",
        vec![],
    )
    .await?;
    Ok(rows
        .first()
        .map(|r| sql::get::<String>(r, "version"))
        .transpose()?
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_types_of_both_backends_have_one_kind() {
        for (sqlite, postgres, kind) in [
            ("uuid_text", "uuid", Kind::Uuid),
            (
                "timestamp_with_timezone_text",
                "timestamp with time zone",
                Kind::Timestamp,
            ),
            ("boolean", "boolean", Kind::Bool),
            ("integer", "bigint", Kind::Int),
            ("varchar", "character varying", Kind::Text),
            ("text", "text", Kind::Text),
        ] {
            assert_eq!(kind_of(sqlite).unwrap().0, kind, "{sqlite}");
            assert_eq!(kind_of(postgres).unwrap().0, kind, "{postgres}");
        }
        assert!(kind_of("bytea").is_none());
    }
}
