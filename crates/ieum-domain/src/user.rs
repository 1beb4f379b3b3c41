//! Users and the rules for their names.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::{DomainError, DomainResult};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub profile_image_url: Option<String>,
    pub status_message: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Anyone may find this user by username; off by default (people who
    /// share a room or are friends, or friends of friends, always may).
    pub discoverable: bool,
}

/// A user as the credential check needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCredentials {
    pub user: User,
    pub password_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
}

pub const USERNAME_MIN: usize = 3;
pub const USERNAME_MAX: usize = 32;
pub const DISPLAY_NAME_MAX: usize = 50;
pub const PASSWORD_MIN: usize = 8;
/// Bounded so that hashing cost cannot be driven up by the client.
pub const PASSWORD_MAX_BYTES: usize = 256;

/// Usernames are ASCII, case-insensitive and stored lower-case:
/// 3 to 32 of `a-z 0-9 _ . -`, starting with a letter or digit.
pub fn normalize_username(raw: &str) -> DomainResult<String> {
    let name = raw.trim().to_ascii_lowercase();
    let len = name.chars().count();
    if !(USERNAME_MIN..=USERNAME_MAX).contains(&len) {
        return Err(DomainError::invalid(
            "invalid_username",
            format!("username must be {USERNAME_MIN} to {USERNAME_MAX} characters"),
        ));
    }
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !first_ok || !rest_ok {
        return Err(DomainError::invalid(
            "invalid_username",
            "username may contain only a-z, 0-9, '_', '.', '-' and must start with a letter or digit",
        ));
    }
    Ok(name)
}

/// Display names are any Unicode text (Korean, emoji) of 1 to 50 characters,
/// trimmed, without control characters.
pub fn normalize_display_name(raw: &str) -> DomainResult<String> {
    let name = raw.trim();
    let len = name.chars().count();
    if len == 0 || len > DISPLAY_NAME_MAX {
        return Err(DomainError::invalid(
            "invalid_display_name",
            format!("display name must be 1 to {DISPLAY_NAME_MAX} characters"),
        ));
    }
    crate::text::refuse_nul(name)?;
    if !crate::text::is_clean_name(name) {
        return Err(DomainError::invalid(
            "invalid_display_name",
            "display name must not contain control or invisible formatting characters",
        ));
    }
    Ok(name.to_owned())
}

pub fn check_password(password: &str) -> DomainResult<()> {
    if password.chars().count() < PASSWORD_MIN {
        return Err(DomainError::invalid(
            "weak_password",
            format!("password must be at least {PASSWORD_MIN} characters"),
        ));
    }
    if password.len() > PASSWORD_MAX_BYTES {
        return Err(DomainError::invalid(
            "invalid_password",
            format!("password must be at most {PASSWORD_MAX_BYTES} bytes"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lowercased_and_checked() {
        assert_eq!(normalize_username(" TestUser ").unwrap(), "testuser");
        assert_eq!(normalize_username("a.b-c_9").unwrap(), "a.b-c_9");
        assert!(normalize_username("ab").is_err());
        assert!(normalize_username("_abc").is_err());
        assert!(normalize_username("한글이름").is_err());
        assert!(normalize_username(&"a".repeat(33)).is_err());
        assert_eq!(
            normalize_username("bad name").unwrap_err().code(),
            "invalid_username"
        );
    }

    #[test]
    fn korean_and_emoji_display_names_work() {
        assert_eq!(normalize_display_name(" 김철수 ").unwrap(), "김철수");
        assert_eq!(normalize_display_name("토끼🐰").unwrap(), "토끼🐰");
        assert!(normalize_display_name("").is_err());
        assert!(normalize_display_name("a\u{0007}b").is_err());
        assert!(normalize_display_name(&"가".repeat(50)).is_ok());
        assert!(normalize_display_name(&"가".repeat(51)).is_err());
    }

    #[test]
    fn passwords_are_bounded() {
        assert!(check_password("testpass").is_ok());
        assert_eq!(check_password("short").unwrap_err().code(), "weak_password");
        assert!(check_password(&"x".repeat(257)).is_err());
    }
}
