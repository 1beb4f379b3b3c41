//! One error type for every use case, each carrying a stable machine `code`.

use thiserror::Error;

/// The broad class of an error: adapters map it onto their wire (HTTP status,
/// STOMP ERROR frame, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Invalid,
    Unauthenticated,
    Forbidden,
    NotFound,
    Conflict,
    RateLimited,
    Unavailable,
    Internal,
}

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum DomainError {
    /// The request is malformed or breaks a rule about its content.
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error("{message}")]
    Unauthenticated { code: &'static str, message: String },
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A rate limit refused the request; `code` names the limit.
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited {
        code: &'static str,
        retry_after_secs: u64,
    },
    /// The node is at capacity for this kind of work (password hashing):
    /// refused at once instead of queued without bound.
    #[error("the server is busy; retry in {retry_after_secs} s")]
    Busy {
        code: &'static str,
        retry_after_secs: u64,
    },
    /// A backing service (database, cache) failed or is unreachable.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// The disk under the database or the files is full: nothing was
    /// written, and nothing will be until an operator frees space.
    #[error("storage full: {0}")]
    StorageFull(String),
    #[error("internal error: {0}")]
    Internal(String),
}

pub type DomainResult<T> = Result<T, DomainError>;

impl DomainError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            message: message.into(),
        }
    }
    pub fn unauthenticated(code: &'static str, message: impl Into<String>) -> Self {
        Self::Unauthenticated {
            code,
            message: message.into(),
        }
    }
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::Forbidden {
            code,
            message: message.into(),
        }
    }
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::NotFound {
            code,
            message: message.into(),
        }
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid { .. } => ErrorKind::Invalid,
            Self::Unauthenticated { .. } => ErrorKind::Unauthenticated,
            Self::Forbidden { .. } => ErrorKind::Forbidden,
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::Conflict { .. } => ErrorKind::Conflict,
            Self::RateLimited { .. } => ErrorKind::RateLimited,
            Self::Unavailable(_) | Self::StorageFull(_) | Self::Busy { .. } => {
                ErrorKind::Unavailable
            }
            Self::Internal(_) => ErrorKind::Internal,
        }
    }

    /// Stable machine-readable code, documented in docs/PROTOCOL.md.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid { code, .. }
            | Self::Unauthenticated { code, .. }
            | Self::Forbidden { code, .. }
            | Self::NotFound { code, .. }
            | Self::Conflict { code, .. }
            | Self::RateLimited { code, .. }
            | Self::Busy { code, .. } => code,
            Self::Unavailable(_) => "unavailable",
            Self::StorageFull(_) => "storage_full",
            Self::Internal(_) => "internal",
        }
    }

    /// Seconds a client should wait before retrying, where that is known.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::RateLimited {
                retry_after_secs, ..
            }
            | Self::Busy {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        }
    }

    /// Text that may be shown to a client. Internal details stay in the logs.
    pub fn public_message(&self) -> String {
        match self {
            Self::Unavailable(_) => "a backing service is unavailable; try again".to_owned(),
            Self::StorageFull(_) => {
                "the server's storage is full: nothing was stored; try again later".to_owned()
            }
            Self::Internal(_) => "internal server error".to_owned(),
            other => other.to_string(),
        }
    }
}

/// The named errors that more than one place answers, so their codes are
/// typed once (STYLE.md, "Errors"). Adapters use these too: a store that finds
/// a unique violation reports the domain's named outcome (the port's doc says
/// which) rather than choosing a public code of its own.
pub mod named {
    use super::DomainError;

    pub fn user_not_found() -> DomainError {
        DomainError::not_found("user_not_found", "no such user")
    }
    pub fn blocked() -> DomainError {
        DomainError::forbidden("blocked", "one of you blocked the other")
    }
    pub fn banned() -> DomainError {
        DomainError::forbidden("banned", "you are banned from this room")
    }
    pub fn message_not_found() -> DomainError {
        DomainError::not_found("message_not_found", "no such message")
    }
    pub fn empty_content() -> DomainError {
        DomainError::invalid("empty_content", "message content is empty")
    }
    pub fn insufficient_role(message: impl Into<String>) -> DomainError {
        DomainError::forbidden("insufficient_role", message)
    }
    pub fn invalid_invite_code(message: impl Into<String>) -> DomainError {
        DomainError::not_found("invalid_invite_code", message)
    }
    pub fn already_paired() -> DomainError {
        DomainError::conflict("already_paired", "already in a couple")
    }
    pub fn username_taken() -> DomainError {
        DomainError::conflict("username_taken", "that username is already taken")
    }
    pub fn room_exists() -> DomainError {
        DomainError::conflict("room_exists", "a room with that id exists")
    }
    pub fn room_not_found() -> DomainError {
        DomainError::not_found("room_not_found", "no such room")
    }
    /// A message whose client id (or seq) the room already has.
    pub fn duplicate_message() -> DomainError {
        DomainError::conflict("duplicate", "a message with that client id or seq exists")
    }
    pub fn not_paired() -> DomainError {
        DomainError::not_found("not_paired", "you are not in a couple")
    }
    /// A file over a size limit (the policy's, the declared size, or the
    /// scanner's). HTTP answers 413.
    pub fn too_large(message: impl Into<String>) -> DomainError {
        DomainError::invalid("too_large", message)
    }
    /// A file whose bytes are not an allowed type, or not the declared kind.
    /// HTTP answers 415.
    pub fn unsupported_type(message: impl Into<String>) -> DomainError {
        DomainError::invalid("unsupported_type", message)
    }
    /// An attachment that may not be served or referenced yet (or ever):
    /// still uploading or scanning, infected, or refused. HTTP answers 409.
    pub fn not_clean(message: impl Into<String>) -> DomainError {
        DomainError::conflict("not_clean", message)
    }
    /// An attachment whose time is over: its bytes are gone. HTTP answers 410
    /// (the kind is `NotFound`, the code says gone for good).
    pub fn expired() -> DomainError {
        DomainError::not_found("expired", "this file has expired")
    }
    /// No attachment of that id that the caller may see.
    pub fn attachment_not_found() -> DomainError {
        DomainError::not_found("attachment_not_found", "no such attachment")
    }
}

/// One refusal a client was told of (`ieum_errors_total`), by where it was
/// told (`http`, `socket`) and its code.
pub fn count_refusal(surface: &'static str, code: &'static str) {
    metrics::counter!("ieum_errors_total", "surface" => surface, "code" => code).increment(1);
}
