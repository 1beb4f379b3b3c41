//! [`LocalDiskStore`]: the port over files, and the two calls the server
//! makes when a presigned URL is used.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use ieum_domain::attachment::{Disposition, PresignedRequest, ServeAs, TransferMethod};
use ieum_domain::error::{DomainError, DomainResult};
use ieum_domain::ports::{Clock, Fetched, ObjectStore};
use thiserror::Error;
use uuid::Uuid;

use crate::keys::{KeyError, object_path};
use crate::token::{Grant, Terms, TokenError, TokenKey};

/// Where a write waits until it is complete; no key can name it.
const STAGING: &str = ".staging";
/// Staging files older than this when the store opens were left by a crash.
const STALE_STAGING: std::time::Duration = std::time::Duration::from_secs(3600);

pub struct LocalDiskConfig {
    /// Created (0700) if missing.
    pub root: PathBuf,
    /// ieum's own public URL, e.g. `https://chat.example.com`; presigned
    /// URLs are `{public_base}/files/{token}`.
    pub public_base: String,
    pub token_key: TokenKey,
}

/// The store could not be opened.
#[derive(Debug, Error)]
#[error("cannot prepare the object directory {path}: {source}")]
pub struct LocalDiskError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// Why a presigned request was refused. The server picks the status.
#[derive(Debug, Error)]
pub enum TransferError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("the upload must be sent as {expected:?}, not {got:?}")]
    WrongContentType { expected: String, got: String },
    #[error("the upload must have exactly {expected} bytes, not {got}")]
    WrongLength { expected: u64, got: u64 },
    /// A GET for an object that is not (or no longer) there.
    #[error("no such object")]
    Missing,
    #[error("object key refused: {0}")]
    Key(#[from] KeyError),
    #[error("object store: {0}")]
    Io(#[from] io::Error),
}

/// An object to serve for a presigned GET, with how to serve it.
#[derive(Debug)]
pub struct Download {
    pub file: File,
    pub length: u64,
    pub content_type: String,
    pub disposition: Disposition,
    pub file_name: String,
}

/// Objects as files under one root, with presigned URLs that ieum serves.
#[derive(Clone)]
pub struct LocalDiskStore {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    staging: PathBuf,
    public_base: String,
    token_key: TokenKey,
    clock: Arc<dyn Clock>,
}

impl LocalDiskStore {
    /// Creates the root and its staging area (0700) if missing, and removes
    /// what a crash left in the staging area.
    pub fn open(config: LocalDiskConfig, clock: Arc<dyn Clock>) -> Result<Self, LocalDiskError> {
        let staging = config.root.join(STAGING);
        private_dirs(&staging).map_err(|source| LocalDiskError {
            path: staging.clone(),
            source,
        })?;
        remove_stale(&staging);
        Ok(Self {
            inner: Arc::new(Inner {
                root: config.root,
                staging,
                public_base: config.public_base.trim_end_matches('/').to_owned(),
                token_key: config.token_key,
                clock,
            }),
        })
    }

    /// The exact body length a presigned PUT allows, once the token and the
    /// content type are checked: read at most one byte more before
    /// [`Self::accept_put`], so a longer body never fills memory.
    pub fn authorize_put(
        &self,
        token: &str,
        content_type: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, TransferError> {
        let (_, length) = self.put_grant(token, content_type, now)?;
        Ok(length)
    }

    /// Stores the body of a presigned PUT if the token allows it and the body
    /// has exactly the bound length and content type; otherwise nothing is kept.
    pub async fn accept_put(
        &self,
        token: &str,
        content_type: &str,
        body: Vec<u8>,
        now: DateTime<Utc>,
    ) -> Result<(), TransferError> {
        let mut writer = self.begin_put(token, content_type, now).await?;
        writer.write(body).await?;
        writer.finish().await
    }

    /// Starts receiving the body of a presigned PUT the token allows: the
    /// bytes go to a staging file chunk by chunk ([`PutWriter`]), so memory
    /// holds one chunk, never the upload.
    pub async fn begin_put(
        &self,
        token: &str,
        content_type: &str,
        now: DateTime<Utc>,
    ) -> Result<PutWriter, TransferError> {
        let (key, expected) = self.put_grant(token, content_type, now)?;
        let path = object_path(&self.inner.root, &key)?;
        let staged = self.inner.staging.join(format!("{}.tmp", Uuid::new_v4()));
        let opened = staged.clone();
        let file = blocking(move || {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&opened)
        })
        .await?;
        Ok(PutWriter {
            inner: Arc::clone(&self.inner),
            file: Some(file),
            staged: Some(staged),
            path,
            expected,
            written: 0,
        })
    }

    /// The object a presigned GET names, opened, with how to serve it.
    pub async fn open_get(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Download, TransferError> {
        let grant = self
            .inner
            .token_key
            .verify(token, TransferMethod::Get, now)?;
        let Terms::Get {
            content_type,
            disposition,
            file_name,
        } = grant.terms
        else {
            unreachable!("verify checked the method");
        };
        let path = object_path(&self.inner.root, &grant.key)?;
        let (file, length) = blocking(move || {
            let file = File::open(&path)?;
            let length = file.metadata()?.len();
            Ok((file, length))
        })
        .await
        .map_err(|error| match error.kind() {
            io::ErrorKind::NotFound => TransferError::Missing,
            _ => TransferError::Io(error),
        })?;
        Ok(Download {
            file,
            length,
            content_type,
            disposition,
            file_name,
        })
    }

    fn put_grant(
        &self,
        token: &str,
        content_type: &str,
        now: DateTime<Utc>,
    ) -> Result<(String, u64), TransferError> {
        let grant = self
            .inner
            .token_key
            .verify(token, TransferMethod::Put, now)?;
        let Terms::Put {
            length,
            content_type: expected,
        } = grant.terms
        else {
            unreachable!("verify checked the method");
        };
        if content_type != expected {
            return Err(TransferError::WrongContentType {
                expected,
                got: content_type.to_owned(),
            });
        }
        Ok((grant.key, length))
    }

    fn presign(
        &self,
        key: &str,
        terms: Terms,
        expires_in: Duration,
    ) -> DomainResult<PresignedRequest> {
        self.path(key)?;
        let expires_at = whole_seconds(self.inner.clock.now() + expires_in);
        let method = terms.method();
        let headers = match &terms {
            Terms::Put { content_type, .. } => {
                vec![("Content-Type".to_owned(), content_type.clone())]
            }
            Terms::Get { .. } => Vec::new(),
        };
        let grant = Grant {
            key: key.to_owned(),
            expires_at,
            terms,
        };
        let token = self
            .inner
            .token_key
            .sign(&grant)
            .map_err(|error| DomainError::Internal(format!("cannot presign {key}: {error}")))?;
        Ok(PresignedRequest {
            url: format!("{}/files/{token}", self.inner.public_base),
            method,
            headers,
            expires_at,
        })
    }

    fn path(&self, key: &str) -> DomainResult<PathBuf> {
        object_path(&self.inner.root, key).map_err(key_refused)
    }
}

#[async_trait]
impl ObjectStore for LocalDiskStore {
    async fn put(&self, key: &str, bytes: Vec<u8>, _content_type: &str) -> DomainResult<()> {
        // The type is not kept: a GET is served as its presigned ServeAs says.
        let path = self.path(key)?;
        let inner = Arc::clone(&self.inner);
        blocking(move || inner.write_atomically(&path, &bytes))
            .await
            .map_err(|error| io_failed("write", key, &error))
    }

    async fn get(&self, key: &str, max_bytes: u64) -> DomainResult<Fetched> {
        let path = self.path(key)?;
        blocking(move || read_at_most(&path, max_bytes))
            .await
            .map_err(|error| io_failed("read", key, &error))
    }

    async fn delete(&self, key: &str) -> DomainResult<()> {
        let path = self.path(key)?;
        let inner = Arc::clone(&self.inner);
        blocking(move || inner.remove(&path))
            .await
            .map_err(|error| io_failed("delete", key, &error))
    }

    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        length: u64,
        expires_in: Duration,
    ) -> DomainResult<PresignedRequest> {
        let terms = Terms::Put {
            length,
            content_type: content_type.to_owned(),
        };
        self.presign(key, terms, expires_in)
    }

    async fn presign_get(
        &self,
        key: &str,
        serve: &ServeAs,
        expires_in: Duration,
    ) -> DomainResult<PresignedRequest> {
        let terms = Terms::Get {
            content_type: serve.content_type.mime().to_owned(),
            disposition: serve.disposition,
            file_name: serve.file_name.clone(),
        };
        self.presign(key, terms, expires_in)
    }
}

/// A presigned PUT's body on its way to disk. Finished with exactly the
/// bound length, it replaces the object at once (synced, then renamed, as
/// every write here); anything else, or a drop before `finish`, keeps
/// nothing.
pub struct PutWriter {
    inner: Arc<Inner>,
    file: Option<File>,
    /// `None` once the object is in place.
    staged: Option<PathBuf>,
    path: PathBuf,
    expected: u64,
    written: u64,
}

impl PutWriter {
    /// The exact length the token binds.
    pub fn expected(&self) -> u64 {
        self.expected
    }

    /// Appends a chunk; a body growing past the bound length is refused.
    pub async fn write(&mut self, chunk: Vec<u8>) -> Result<(), TransferError> {
        let got = self.written.saturating_add(chunk.len() as u64);
        if got > self.expected {
            return Err(TransferError::WrongLength {
                expected: self.expected,
                got,
            });
        }
        let mut file = self
            .file
            .take()
            .ok_or_else(|| io::Error::other("the upload was already refused"))?;
        let file = blocking(move || {
            file.write_all(&chunk)?;
            Ok(file)
        })
        .await?;
        self.file = Some(file);
        self.written = got;
        Ok(())
    }

    /// Puts the object in place if exactly the bound length came.
    pub async fn finish(mut self) -> Result<(), TransferError> {
        if self.written != self.expected {
            return Err(TransferError::WrongLength {
                expected: self.expected,
                got: self.written,
            });
        }
        let file = self
            .file
            .take()
            .ok_or_else(|| io::Error::other("the upload was already refused"))?;
        let staged = self.staged.clone().unwrap_or_default();
        let (inner, path) = (Arc::clone(&self.inner), self.path.clone());
        blocking(move || {
            file.sync_all()?;
            drop(file);
            inner.move_into_place(&staged, &path)
        })
        .await?;
        self.staged = None;
        Ok(())
    }
}

impl Drop for PutWriter {
    fn drop(&mut self) {
        if let Some(staged) = self.staged.take() {
            let _ = fs::remove_file(staged);
        }
    }
}

impl Inner {
    /// Writes to a staging file, syncs it, then renames it over `path`: a
    /// reader sees the old object or the whole new one, never part of one.
    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let staged = self.staging.join(format!("{}.tmp", Uuid::new_v4()));
        let outcome = stage(&staged, bytes).and_then(|()| self.move_into_place(&staged, path));
        if outcome.is_err() {
            let _ = fs::remove_file(&staged);
        }
        outcome
    }

    fn move_into_place(&self, staged: &Path, path: &Path) -> io::Result<()> {
        let parent = path.parent().unwrap_or(&self.root);
        // A delete pruning the (then empty) parent may race us: one retry.
        for attempt in 0..2 {
            private_dirs(parent)?;
            match fs::rename(staged, path) {
                Err(error) if error.kind() == io::ErrorKind::NotFound && attempt == 0 => continue,
                Err(error) => return Err(error),
                Ok(()) => break,
            }
        }
        // The rename itself is durable once the directory is synced.
        File::open(parent)?.sync_all()
    }

    /// Removes the file, then its parents as long as they are empty (up to
    /// the root). A missing file is fine.
    fn remove(&self, path: &Path) -> io::Result<()> {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(error),
        }
        let mut directory = path.parent();
        while let Some(dir) = directory {
            if dir == self.root || !dir.starts_with(&self.root) || fs::remove_dir(dir).is_err() {
                break;
            }
            directory = dir.parent();
        }
        Ok(())
    }
}

fn stage(staged: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(staged)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// The size is checked before reading, and the read is capped too, so an
/// object larger than `max_bytes` never fills memory.
fn read_at_most(path: &Path, max_bytes: u64) -> io::Result<Fetched> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Fetched::Missing),
        Err(error) => return Err(error),
    };
    let size = file.metadata()?.len();
    if size > max_bytes {
        return Ok(Fetched::TooLarge { size });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)?;
    let read = bytes.len() as u64;
    if read > max_bytes {
        return Ok(Fetched::TooLarge { size: read });
    }
    Ok(Fetched::Bytes(bytes))
}

/// Best effort: a file that cannot be removed now is tried at the next start.
fn remove_stale(staging: &Path) {
    let Ok(entries) = fs::read_dir(staging) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry
            .metadata()
            .and_then(|metadata| metadata.modified())
            .is_ok_and(|modified| modified.elapsed().is_ok_and(|age| age > STALE_STAGING));
        if stale {
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn private_dirs(path: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(path)
}

fn whole_seconds(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(at)
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|join_error| Err(io::Error::other(join_error)))
}

fn key_refused(error: KeyError) -> DomainError {
    DomainError::Internal(format!("object key refused: {error}"))
}

fn io_failed(action: &str, key: &str, error: &io::Error) -> DomainError {
    let what = format!("local object store: cannot {action} {key}: {error}");
    if matches!(
        error.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    ) {
        DomainError::StorageFull(what)
    } else {
        DomainError::Unavailable(what)
    }
}
