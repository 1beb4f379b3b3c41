//! The data dir and what it holds that only ieum may read: the directory
//! itself (0700), the SQLite file (0600) and the development secret.

use std::path::Path;

use super::{ConfigError, DEV_SECRET_FILE, JwtSecret};

/// Reads the development secret from the data dir, making it on first run.
pub(super) fn dev_secret(data_dir: &Path) -> Result<JwtSecret, ConfigError> {
    let path = data_dir.join(DEV_SECRET_FILE);
    if let Ok(s) = std::fs::read_to_string(&path) {
        let s = s.trim().to_owned();
        if s.len() >= ieum_auth::MIN_SECRET_BYTES {
            return Ok(JwtSecret::DevFile(s, path));
        }
    }
    private_dir(data_dir)?;
    // 244 random bits from the OS (two v4 UUIDs), hex.
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    write_private(&path, &secret)
        .map_err(|e| ConfigError(format!("cannot write {}: {e}", path.display())))?;
    Ok(JwtSecret::DevFile(secret, path))
}

/// Makes the data dir (mode 0700: it holds the database, uploads and the
/// development secret), or narrows an existing one.
pub fn private_dir(dir: &Path) -> Result<(), ConfigError> {
    let fail =
        |e: std::io::Error| ConfigError(format!("cannot prepare data dir {}: {e}", dir.display()));
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        builder.mode(0o700);
        builder.create(dir).map_err(fail)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(fail)?;
    }
    #[cfg(not(unix))]
    builder.create(dir).map_err(fail)?;
    Ok(())
}

/// The embedded database file is created (or narrowed to) mode 0600 before
/// SQLite opens it; SQLite gives its journal files the same mode.
pub fn private_database_file(database_url: &str) -> Result<(), ConfigError> {
    let Some(rest) = database_url.strip_prefix("sqlite://") else {
        return Ok(());
    };
    let path = Path::new(rest.split('?').next().unwrap_or(rest));
    if path.as_os_str().is_empty() || rest.starts_with(":memory:") {
        return Ok(());
    }
    let fail = |e: std::io::Error| ConfigError(format!("cannot prepare {}: {e}", path.display()));
    if let Some(parent) = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty() && !p.exists())
    {
        private_dir(parent)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        opts.mode(0o600);
        opts.open(path).map_err(fail)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(fail)?;
    }
    #[cfg(not(unix))]
    opts.open(path).map_err(fail)?;
    Ok(())
}

fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(content.as_bytes())
}
