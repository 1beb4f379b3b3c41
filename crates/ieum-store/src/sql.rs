//! Raw statements written once with `?` placeholders for both backends.

use ieum_domain::{DomainError, DomainResult};
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement, Value};

use crate::error::db_err;

pub(crate) fn stmt(backend: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = match backend {
        DbBackend::Postgres => {
            let mut out = String::with_capacity(sql.len() + 8);
            let mut n = 0;
            for c in sql.chars() {
                if c == '?' {
                    n += 1;
                    out.push('$');
                    out.push_str(&n.to_string());
                } else {
                    out.push(c);
                }
            }
            out
        }
        _ => sql.to_owned(),
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// A column of a raw row.
pub(crate) fn get<T: sea_orm::TryGetable>(row: &QueryResult, col: &str) -> DomainResult<T> {
    row.try_get::<T>("", col)
        .map_err(|e| DomainError::Internal(format!("reading {col}: {e}")))
}

/// Runs a statement; answers the rows it touched.
pub(crate) async fn exec(
    c: &impl ConnectionTrait,
    sql: &str,
    values: Vec<Value>,
) -> DomainResult<u64> {
    Ok(c.execute_raw(stmt(c.get_database_backend(), sql, values))
        .await
        .map_err(db_err)?
        .rows_affected())
}

/// Runs a query; answers its rows.
pub(crate) async fn rows(
    c: &impl ConnectionTrait,
    sql: &str,
    values: Vec<Value>,
) -> DomainResult<Vec<QueryResult>> {
    c.query_all_raw(stmt(c.get_database_backend(), sql, values))
        .await
        .map_err(db_err)
}

/// The `n` of a `SELECT COUNT(*) AS n ...`.
pub(crate) async fn count(
    c: &impl ConnectionTrait,
    sql: &str,
    values: Vec<Value>,
) -> DomainResult<u64> {
    let found = rows(c, sql, values).await?;
    let n: i64 = found.first().map(|r| get(r, "n")).transpose()?.unwrap_or(0);
    Ok(n.max(0) as u64)
}
