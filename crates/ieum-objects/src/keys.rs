//! Object keys to paths under the root, refusing any key that could name
//! something outside it. Pure: no file system access.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// Longest key accepted, in bytes (the domain's are under 64).
pub(crate) const KEY_MAX_BYTES: usize = 1024;

/// Why a key was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    #[error("the key is empty")]
    Empty,
    #[error("the key is longer than {KEY_MAX_BYTES} bytes")]
    TooLong,
    #[error("the key is absolute (starts with '/')")]
    Absolute,
    #[error("the key has an empty segment ('//' or a trailing '/')")]
    EmptySegment,
    /// `.`, `..` and hidden names (the staging area is `.staging`).
    #[error("the key has a segment starting with '.': {0:?}")]
    DotSegment(String),
    /// Backslash, NUL, or anything but ASCII letters, digits, `.`, `_`, `-`.
    #[error("the key holds a forbidden character {0:?}")]
    ForbiddenCharacter(char),
}

/// The path of `key` under `root`, or why the key is refused.
pub(crate) fn object_path(root: &Path, key: &str) -> Result<PathBuf, KeyError> {
    check(key)?;
    let mut path = root.to_path_buf();
    path.extend(key.split('/'));
    Ok(path)
}

fn check(key: &str) -> Result<(), KeyError> {
    if key.is_empty() {
        return Err(KeyError::Empty);
    }
    if key.len() > KEY_MAX_BYTES {
        return Err(KeyError::TooLong);
    }
    if let Some(forbidden) = key
        .chars()
        .find(|character| !(character.is_ascii_alphanumeric() || "/._-".contains(*character)))
    {
        return Err(KeyError::ForbiddenCharacter(forbidden));
    }
    if key.starts_with('/') {
        return Err(KeyError::Absolute);
    }
    for segment in key.split('/') {
        if segment.is_empty() {
            return Err(KeyError::EmptySegment);
        }
        if segment.starts_with('.') {
            return Err(KeyError::DotSegment(segment.to_owned()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(key: &str) -> KeyError {
        object_path(Path::new("/srv/objects"), key).unwrap_err()
    }

    #[test]
    fn domain_keys_map_under_the_root() {
        let path = object_path(
            Path::new("/srv/objects"),
            "attachments/0190b2c4-5d6e-7f00-8a1b-2c3d4e5f6a7b/thumb-320",
        )
        .unwrap();
        assert_eq!(
            path,
            Path::new("/srv/objects/attachments/0190b2c4-5d6e-7f00-8a1b-2c3d4e5f6a7b/thumb-320")
        );
    }

    #[test]
    fn keys_that_could_escape_are_refused() {
        assert_eq!(refused(""), KeyError::Empty);
        assert_eq!(refused("/etc/passwd"), KeyError::Absolute);
        assert_eq!(refused("a//b"), KeyError::EmptySegment);
        assert_eq!(refused("a/b/"), KeyError::EmptySegment);
        assert_eq!(refused("../x"), KeyError::DotSegment("..".into()));
        assert_eq!(refused("a/../../x"), KeyError::DotSegment("..".into()));
        assert_eq!(refused("a/./b"), KeyError::DotSegment(".".into()));
        assert_eq!(
            refused(".staging/x"),
            KeyError::DotSegment(".staging".into())
        );
        assert_eq!(refused("a\\..\\b"), KeyError::ForbiddenCharacter('\\'));
        assert_eq!(refused("a\0b"), KeyError::ForbiddenCharacter('\0'));
        assert_eq!(refused("a/b c"), KeyError::ForbiddenCharacter(' '));
        assert_eq!(refused(&"a".repeat(KEY_MAX_BYTES + 1)), KeyError::TooLong);
    }
}
