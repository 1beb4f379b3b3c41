use ieum_domain::DomainError;
use sea_orm::{DbErr, SqlErr};

/// Maps a database error onto the domain: connection trouble is `Unavailable`,
/// the rest `Internal` (details go to the log, not to clients).
pub(crate) fn db_err(e: DbErr) -> DomainError {
    match e {
        DbErr::Exec(ref r) | DbErr::Query(ref r) | DbErr::Conn(ref r) if disk_full(r) => {
            DomainError::StorageFull(e.to_string())
        }
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => DomainError::Unavailable(e.to_string()),
        DbErr::Exec(ref r) | DbErr::Query(ref r) if connection_lost(r) => {
            DomainError::Unavailable(e.to_string())
        }
        other => DomainError::Internal(format!("database: {other}")),
    }
}

/// A statement that failed because the database went away (a restart, a
/// failover, a network cut), not because of the statement: the client may
/// try again (`unavailable`).
fn connection_lost(e: &sea_orm::RuntimeErr) -> bool {
    use sea_orm::sqlx::Error;
    let sea_orm::RuntimeErr::SqlxError(e) = e else {
        return false;
    };
    match e.as_ref() {
        Error::Io(_)
        | Error::Tls(_)
        | Error::Protocol(_)
        | Error::PoolTimedOut
        | Error::PoolClosed
        | Error::WorkerCrashed => true,
        // Class 08 (connection exception) and 57P0x (the server shutting
        // down, or not taking connections yet).
        Error::Database(d) => d
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    }
}

pub(crate) fn is_unique_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// SQLite's SQLITE_FULL (13), PostgreSQL's disk_full (53100), or the OS's
/// "no space left on device".
fn disk_full(e: &sea_orm::RuntimeErr) -> bool {
    use sea_orm::sqlx::Error;
    let sea_orm::RuntimeErr::SqlxError(e) = e else {
        return false;
    };
    match e.as_ref() {
        Error::Database(d) => d.code().is_some_and(|c| c == "13" || c == "53100"),
        Error::Io(io) => io.kind() == std::io::ErrorKind::StorageFull,
        _ => false,
    }
}
