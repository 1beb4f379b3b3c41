use ieum_domain::DomainError;
use sea_orm::{DbErr, SqlErr};

/// Maps a database error onto the domain: connection trouble is `Unavailable`,
/// the rest `Internal` (details go to the log, not to clients).
pub(crate) fn db_err(e: DbErr) -> DomainError {
    match e {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => DomainError::Unavailable(e.to_string()),
        other => DomainError::Internal(format!("database: {other}")),
    }
}

pub(crate) fn is_unique_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}
