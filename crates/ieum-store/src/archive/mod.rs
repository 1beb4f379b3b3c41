//! Export and import of a whole database as one archive file
//! ([`format`]), the same for both backends: how an embedded server moves to
//! PostgreSQL, and what a scheduled backup writes.
//!
//! Export reads one consistent snapshot (a read-only repeatable-read
//! transaction on PostgreSQL, a read transaction on SQLite) while the server
//! keeps serving. Import writes in one transaction into a database with no
//! rows: a failure anywhere, a damaged line or a wrong checksum at the very
//! end, leaves it as empty as it was.

mod catalog;
pub mod format;

use std::io::{Read, Write};

use futures_util::StreamExt;
use ieum_domain::DomainError;
use ieum_domain::ports::{Fetched, ObjectStore};
use sea_orm::{AccessMode, IsolationLevel, StreamTrait, TransactionTrait};
use uuid::Uuid;

use crate::Store;
use crate::db::Backend;
use crate::error::db_err;
use format::{FORMAT, Header, Item, Reader, Table, VERSION, Writer};

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the archive is refused: {0}")]
    Damaged(String),
    #[error("the archive is of format version {0}; this ieum reads version {VERSION}")]
    Version(u32),
    #[error(
        "the archive was written at schema {archive} and this ieum's schema is {server}: \
         import it with the ieum version that wrote it, then upgrade"
    )]
    Schema { archive: String, server: String },
    #[error("the archive's table {0} differs from this database's: {1}")]
    Columns(String, String),
    #[error(
        "the database is not empty ({0}): import only into a new database, so nothing is overwritten"
    )]
    NotEmpty(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Database(#[from] DomainError),
}

impl From<sea_orm::DbErr> for ArchiveError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Database(db_err(e))
    }
}

/// Told how far a long export or import has come (a progress bar).
pub trait Progress {
    fn begin(&self, _total_rows: u64) {}
    fn advance(&self, _rows: u64) {}
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub tables: usize,
    pub rows: u64,
    /// Stored files carried.
    pub objects: u64,
    pub schema: String,
}

/// How often progress is told, in rows.
const STEP: u64 = 2_000;
/// Rows a reader hands over at once when importing.
const BATCH: usize = 1_000;

/// Writes every table of `store` to `out` from one snapshot, then, given
/// `files`, every attachment's stored files. The database must be at this
/// version's schema (`ieum migrate`).
pub async fn export<W: Write>(
    store: &Store,
    out: W,
    files: Option<&dyn ObjectStore>,
    progress: &dyn Progress,
) -> Result<(W, Summary), ArchiveError> {
    let pending = store.pending_migrations().await?;
    if !pending.is_empty() {
        return Err(ArchiveError::Unsupported(format!(
            "the database has {} pending migration(s): run `ieum migrate` first",
            pending.len()
        )));
    }
    let db = store.connection();
    let txn = match store.backend() {
        Backend::Postgres => {
            db.begin_with_config(
                Some(IsolationLevel::RepeatableRead),
                Some(AccessMode::ReadOnly),
            )
            .await?
        }
        Backend::Sqlite => db.begin().await?,
    };
    let tables = catalog::tables(&txn).await?;
    let mut header = Header {
        format: FORMAT.into(),
        version: VERSION,
        schema: catalog::schema(&txn).await?,
        source: match store.backend() {
            Backend::Postgres => "postgres".into(),
            Backend::Sqlite => "sqlite".into(),
        },
        created_at: chrono::Utc::now(),
        tables: Vec::with_capacity(tables.len()),
        files: files.is_some(),
    };
    for t in &tables {
        header.tables.push(Table {
            name: t.name.clone(),
            columns: t.archive_columns(),
            rows: catalog::count(&txn, &t.name).await?,
        });
    }
    progress.begin(header.total_rows());
    let mut w = Writer::new(out, &header)?;
    let mut since = 0;
    for (t, declared) in tables.iter().zip(&header.tables) {
        w.table(&t.name)?;
        let mut rows = txn
            .stream_raw(sea_orm::Statement::from_string(
                txn.get_database_backend(),
                t.select(),
            ))
            .await?;
        let mut written = 0;
        let mut values = Vec::with_capacity(t.columns.len());
        while let Some(row) = rows.next().await {
            let row = row?;
            values.clear();
            for c in &t.columns {
                values.push(catalog::read(&row, c)?);
            }
            w.row(&values)?;
            written += 1;
            since += 1;
            if since == STEP {
                progress.advance(since);
                since = 0;
            }
        }
        // The snapshot holds still, so the count agrees; a difference would
        // be a bug that must not pass as a good archive.
        if written != declared.rows {
            return Err(ArchiveError::Unsupported(format!(
                "{} changed while exporting ({} rows counted, {written} read)",
                t.name, declared.rows
            )));
        }
    }
    let attachments = match files {
        Some(_) => attachment_ids(&txn).await?,
        None => Vec::new(),
    };
    drop(txn);
    progress.advance(since);
    if let Some(objects) = files {
        for id in attachments {
            for key in ieum_domain::attachment::keys_of(id) {
                match objects.get(&key, format::MAX_OBJECT).await? {
                    Fetched::Bytes(bytes) => w.object(&key, &bytes)?,
                    Fetched::Missing => {}
                    Fetched::TooLarge { size } => {
                        return Err(ArchiveError::Unsupported(format!(
                            "{key} holds {size} bytes, over the archive's limit of {}",
                            format::MAX_OBJECT
                        )));
                    }
                }
            }
        }
    }
    let (out, rows, objects) = w.finish()?;
    Ok((
        out,
        Summary {
            tables: header.tables.len(),
            rows,
            objects,
            schema: header.schema,
        },
    ))
}

/// A key an archive may carry: one of an attachment's ([`keys_of`]), so a
/// crafted archive writes nowhere else in the store.
///
/// [`keys_of`]: ieum_domain::attachment::keys_of
fn attachment_key(key: &str) -> bool {
    let mut parts = key.splitn(3, '/');
    match (parts.next(), parts.next().map(Uuid::parse_str)) {
        (Some("attachments"), Some(Ok(id))) => ieum_domain::attachment::keys_of(id)
            .iter()
            .any(|k| k == key),
        _ => false,
    }
}

fn check_key(key: &str) -> Result<(), ArchiveError> {
    if attachment_key(key) {
        Ok(())
    } else {
        Err(ArchiveError::Damaged(format!(
            "{key:?} is not a key of an attachment's file"
        )))
    }
}

async fn attachment_ids(c: &impl sea_orm::ConnectionTrait) -> Result<Vec<Uuid>, ArchiveError> {
    let mut ids = Vec::new();
    for row in crate::sql::rows(c, "SELECT id FROM attachments", vec![]).await? {
        ids.push(crate::sql::get(&row, "id")?);
    }
    Ok(ids)
}

/// Reads a whole archive and checks it (format, shape, every value, the
/// checksum) without a database.
pub fn verify<R: Read>(input: R, progress: &dyn Progress) -> Result<Summary, ArchiveError> {
    let mut reader = Reader::open(input, BATCH)?;
    progress.begin(reader.header().total_rows());
    let (mut rows, mut objects) = (0, 0);
    loop {
        match reader.next_item()? {
            Item::Rows(_, batch) => {
                rows += batch.len() as u64;
                progress.advance(batch.len() as u64);
            }
            Item::Object(key, _) => {
                check_key(&key)?;
                objects += 1;
            }
            Item::End => {
                let header = reader.header();
                return Ok(Summary {
                    tables: header.tables.len(),
                    rows,
                    objects,
                    schema: header.schema.clone(),
                });
            }
        }
    }
}

/// Loads an archive into `store`, which must be migrated and hold no rows,
/// and its stored files (if it has them) into `files`. One transaction,
/// committed only after the end line's checksum held; files put before a
/// failure are deleted again.
pub async fn import<R: Read>(
    store: &Store,
    input: R,
    files: &dyn ObjectStore,
    progress: &dyn Progress,
) -> Result<Summary, ArchiveError> {
    let mut put = Vec::new();
    let result = import_into(store, input, files, &mut put, progress).await;
    if result.is_err() {
        for key in put {
            if let Err(e) = files.delete(&key).await {
                tracing::warn!(key, error = %e, "a file of a failed import stays");
            }
        }
    }
    result
}

async fn import_into<R: Read>(
    store: &Store,
    input: R,
    files: &dyn ObjectStore,
    put: &mut Vec<String>,
    progress: &dyn Progress,
) -> Result<Summary, ArchiveError> {
    let mut reader = Reader::open(input, BATCH)?;
    let db = store.connection();
    let txn = db.begin().await?;
    let server = catalog::schema(&txn).await?;
    let header = reader.header().clone();
    if header.schema != server {
        return Err(ArchiveError::Schema {
            archive: header.schema,
            server,
        });
    }
    let local = catalog::tables(&txn).await?;
    let mut targets = Vec::with_capacity(header.tables.len());
    for t in &header.tables {
        let Some(l) = local.iter().find(|l| l.name == t.name) else {
            return Err(ArchiveError::Columns(
                t.name.clone(),
                "this database has no such table".into(),
            ));
        };
        if l.archive_columns() != t.columns {
            return Err(ArchiveError::Columns(
                t.name.clone(),
                "its columns or their kinds differ".into(),
            ));
        }
        targets.push(l);
    }
    if let Some(l) = local
        .iter()
        .find(|l| !header.tables.iter().any(|t| t.name == l.name))
    {
        return Err(ArchiveError::Columns(
            l.name.clone(),
            "the archive lacks it".into(),
        ));
    }
    let mut holding = Vec::new();
    for l in &local {
        let n = catalog::count(&txn, &l.name).await?;
        if n > 0 {
            holding.push(format!("{}: {n} rows", l.name));
        }
    }
    if !holding.is_empty() {
        return Err(ArchiveError::NotEmpty(holding.join(", ")));
    }
    progress.begin(header.total_rows());
    let mut rows = 0;
    // `next_item` answers `End` only after the end line's checksum held.
    loop {
        match reader.next_item()? {
            Item::Rows(i, batch) => {
                let n = batch.len() as u64;
                catalog::insert(&txn, targets[i], &header.tables[i].columns, batch).await?;
                rows += n;
                progress.advance(n);
            }
            Item::Object(key, bytes) => {
                check_key(&key)?;
                files.put(&key, bytes, "application/octet-stream").await?;
                put.push(key);
            }
            Item::End => break,
        }
    }
    txn.commit().await?;
    Ok(Summary {
        tables: header.tables.len(),
        rows,
        objects: put.len() as u64,
        schema: header.schema,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_attachment_keys_are_carried() {
        let id = Uuid::now_v7();
        for key in ieum_domain::attachment::keys_of(id) {
            assert!(attachment_key(&key), "{key}");
        }
        for key in [
            format!("attachments/{id}/../../etc/passwd"),
            format!("attachments/{id}/other"),
            "attachments/not-a-uuid/image".to_owned(),
            format!("profiles/{id}/image"),
            String::new(),
        ] {
            assert!(!attachment_key(&key), "{key}");
        }
    }
}
