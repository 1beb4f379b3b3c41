//! Attachments' records.
//!
//! Every state change is one `UPDATE ... WHERE id = ? AND state = ?`: the
//! database decides which of two racing callers wins (on PostgreSQL the
//! loser waits for the winner's row and then no longer matches), and the
//! count of rows written tells the caller which one it was.
//!
//! The job queries repeat the conditions of their partial indexes word for
//! word (migration `m20261202_000007_attachments`): SQLite uses a partial
//! index only when the query's WHERE contains the index's terms.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ieum_domain::attachment::{Attachment, AttachmentState, ContentType, Purpose, ScanOutcome};
use ieum_domain::ports::AttachmentRepository;
use ieum_domain::{DomainError, DomainResult};
use sea_orm::{ConnectionTrait, QueryResult, Value};
use uuid::Uuid;

use crate::Store;
use crate::error::db_err;
use crate::sql::stmt;

const COLUMNS: &str = "id, owner_id, room_id, file_name, size, declared_type, detected_type, \
     sha256, width, height, state, scan, scan_signature, message_id, created_at, expires_at, \
     purpose";

/// Rows a job may still act on: the same words as the partial indexes'.
const LIVE: &str = "state NOT IN ('expired', 'deleted')";

/// What a repository row could not be read or written as.
#[derive(Debug, thiserror::Error)]
enum RowError {
    #[error("reading {column}: {reason}")]
    Read {
        column: &'static str,
        reason: String,
    },
    #[error("stored {column} is not readable: {value}")]
    Unreadable { column: &'static str, value: String },
    #[error("{column} does not fit the table: {value}")]
    OutOfRange { column: &'static str, value: u64 },
}

impl From<RowError> for DomainError {
    fn from(e: RowError) -> Self {
        DomainError::Internal(e.to_string())
    }
}

fn get<T: sea_orm::TryGetable>(row: &QueryResult, column: &'static str) -> Result<T, RowError> {
    row.try_get::<T>("", column).map_err(|e| RowError::Read {
        column,
        reason: e.to_string(),
    })
}

fn unsigned<T: TryFrom<i64>>(value: i64, column: &'static str) -> Result<T, RowError> {
    T::try_from(value).map_err(|_| RowError::Unreadable {
        column,
        value: value.to_string(),
    })
}

fn signed(value: u64, column: &'static str) -> Result<i64, RowError> {
    i64::try_from(value).map_err(|_| RowError::OutOfRange { column, value })
}

/// The attachments these messages reference, by message id.
pub(crate) async fn referenced_by(
    store: &Store,
    message_ids: &[Uuid],
) -> DomainResult<Vec<(Uuid, Attachment)>> {
    let db = store.connection();
    let mut found = Vec::new();
    for chunk in message_ids.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let rows = db
            .query_all_raw(stmt(
                db.get_database_backend(),
                &format!(
                    "SELECT {COLUMNS} FROM attachments \
                     WHERE message_id IN ({marks}) AND message_id IS NOT NULL"
                ),
                chunk.iter().map(|id| (*id).into()).collect(),
            ))
            .await
            .map_err(db_err)?;
        for row in &rows {
            let attachment = to_attachment(row)?;
            if let Some(message_id) = attachment.message_id {
                found.push((message_id, attachment));
            }
        }
    }
    Ok(found)
}

fn to_attachment(row: &QueryResult) -> Result<Attachment, RowError> {
    let state: String = get(row, "state")?;
    let scan: String = get(row, "scan")?;
    let purpose: String = get(row, "purpose")?;
    let detected: Option<String> = get(row, "detected_type")?;
    let width: Option<i64> = get(row, "width")?;
    let height: Option<i64> = get(row, "height")?;
    Ok(Attachment {
        id: get(row, "id")?,
        owner: get(row, "owner_id")?,
        room_id: get(row, "room_id")?,
        purpose: Purpose::parse(&purpose).ok_or(RowError::Unreadable {
            column: "purpose",
            value: purpose.clone(),
        })?,
        file_name: get(row, "file_name")?,
        size: unsigned(get(row, "size")?, "size")?,
        declared_type: get(row, "declared_type")?,
        detected_type: detected
            .map(|mime| {
                ContentType::from_mime(&mime).ok_or(RowError::Unreadable {
                    column: "detected_type",
                    value: mime,
                })
            })
            .transpose()?,
        sha256: get(row, "sha256")?,
        width: width.map(|w| unsigned(w, "width")).transpose()?,
        height: height.map(|h| unsigned(h, "height")).transpose()?,
        state: AttachmentState::parse(&state).ok_or(RowError::Unreadable {
            column: "state",
            value: state.clone(),
        })?,
        scan: ScanOutcome::parse(&scan, get(row, "scan_signature")?).ok_or(
            RowError::Unreadable {
                column: "scan",
                value: scan.clone(),
            },
        )?,
        message_id: get(row, "message_id")?,
        created_at: get(row, "created_at")?,
        expires_at: get(row, "expires_at")?,
    })
}

fn signature(scan: &ScanOutcome) -> Option<String> {
    match scan {
        ScanOutcome::Infected { signature } => Some(signature.clone()),
        _ => None,
    }
}

fn dimension(value: Option<u32>) -> Value {
    value.map(i64::from).into()
}

#[derive(Debug, Clone)]
pub struct SqlAttachments {
    store: Store,
}

impl SqlAttachments {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    async fn exec(&self, sql: &str, values: Vec<Value>) -> DomainResult<u64> {
        let db = self.store.connection();
        Ok(db
            .execute_raw(stmt(db.get_database_backend(), sql, values))
            .await
            .map_err(db_err)?
            .rows_affected())
    }

    async fn select(&self, condition: &str, values: Vec<Value>) -> DomainResult<Vec<Attachment>> {
        let db = self.store.connection();
        let sql = format!("SELECT {COLUMNS} FROM attachments WHERE {condition}");
        db.query_all_raw(stmt(db.get_database_backend(), &sql, values))
            .await
            .map_err(db_err)?
            .iter()
            .map(|row| to_attachment(row).map_err(DomainError::from))
            .collect()
    }
}

#[async_trait]
impl AttachmentRepository for SqlAttachments {
    async fn insert(&self, attachment: &Attachment) -> DomainResult<()> {
        self.exec(
            &format!(
                "INSERT INTO attachments ({COLUMNS}) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            vec![
                attachment.id.into(),
                attachment.owner.into(),
                attachment.room_id.as_str().into(),
                attachment.file_name.as_str().into(),
                signed(attachment.size, "size")?.into(),
                attachment.declared_type.as_str().into(),
                attachment.detected_type.map(ContentType::mime).into(),
                attachment.sha256.clone().into(),
                dimension(attachment.width),
                dimension(attachment.height),
                attachment.state.as_str().into(),
                attachment.scan.as_str().into(),
                signature(&attachment.scan).into(),
                attachment.message_id.into(),
                attachment.created_at.into(),
                attachment.expires_at.into(),
                attachment.purpose.as_str().into(),
            ],
        )
        .await?;
        Ok(())
    }

    async fn find(&self, id: Uuid) -> DomainResult<Option<Attachment>> {
        Ok(self.select("id = ?", vec![id.into()]).await?.pop())
    }

    async fn set_state(
        &self,
        attachment: &Attachment,
        from: AttachmentState,
    ) -> DomainResult<bool> {
        let written = self
            .exec(
                "UPDATE attachments SET state = ?, scan = ?, scan_signature = ?, size = ?, \
                 detected_type = ?, sha256 = ?, width = ?, height = ? \
                 WHERE id = ? AND state = ?",
                vec![
                    attachment.state.as_str().into(),
                    attachment.scan.as_str().into(),
                    signature(&attachment.scan).into(),
                    signed(attachment.size, "size")?.into(),
                    attachment.detected_type.map(ContentType::mime).into(),
                    attachment.sha256.clone().into(),
                    dimension(attachment.width),
                    dimension(attachment.height),
                    attachment.id.into(),
                    from.as_str().into(),
                ],
            )
            .await?;
        Ok(written == 1)
    }

    async fn mark_attached(&self, id: Uuid, message_id: Uuid) -> DomainResult<bool> {
        let written = self
            .exec(
                "UPDATE attachments SET message_id = ? WHERE id = ? AND message_id IS NULL \
                 AND state IN ('scanning', 'clean')",
                vec![message_id.into(), id.into()],
            )
            .await?;
        Ok(written == 1)
    }

    async fn delete_unused(&self, id: Uuid, from: AttachmentState) -> DomainResult<bool> {
        let written = self
            .exec(
                "UPDATE attachments SET state = 'deleted' \
                 WHERE id = ? AND state = ? AND message_id IS NULL",
                vec![id.into(), from.as_str().into()],
            )
            .await?;
        Ok(written == 1)
    }

    async fn release(&self, id: Uuid, message_id: Uuid) -> DomainResult<()> {
        self.exec(
            "UPDATE attachments SET message_id = NULL WHERE id = ? AND message_id = ?",
            vec![id.into(), message_id.into()],
        )
        .await?;
        Ok(())
    }

    async fn awaiting_scan(&self, limit: u32) -> DomainResult<Vec<Attachment>> {
        self.select(
            "state = ? ORDER BY created_at, id LIMIT ?",
            vec![
                AttachmentState::Scanning.as_str().into(),
                i64::from(limit).into(),
            ],
        )
        .await
    }

    async fn due_expired(&self, now: DateTime<Utc>, limit: u32) -> DomainResult<Vec<Attachment>> {
        self.select(
            &format!(
                "{LIVE} AND expires_at IS NOT NULL AND expires_at <= ? \
                 ORDER BY expires_at, id LIMIT ?"
            ),
            vec![now.into(), i64::from(limit).into()],
        )
        .await
    }

    async fn unattached_before(
        &self,
        cutoff: DateTime<Utc>,
        limit: u32,
    ) -> DomainResult<Vec<Attachment>> {
        self.select(
            &format!(
                "message_id IS NULL AND {LIVE} AND created_at < ? \
                 ORDER BY created_at, id LIMIT ?"
            ),
            vec![cutoff.into(), i64::from(limit).into()],
        )
        .await
    }

    async fn bytes_used_by(&self, owner: Uuid) -> DomainResult<u64> {
        let db = self.store.connection();
        // SUM of a BIGINT is NUMERIC on PostgreSQL: cast it back.
        let found = db
            .query_one_raw(stmt(
                db.get_database_backend(),
                "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) AS used FROM attachments \
                 WHERE owner_id = ? AND state IN (?, ?, ?)",
                vec![
                    owner.into(),
                    AttachmentState::Pending.as_str().into(),
                    AttachmentState::Scanning.as_str().into(),
                    AttachmentState::Clean.as_str().into(),
                ],
            ))
            .await
            .map_err(db_err)?;
        let used: i64 = match found {
            Some(row) => get(&row, "used")?,
            None => 0,
        };
        Ok(unsigned(used, "size")?)
    }
}
