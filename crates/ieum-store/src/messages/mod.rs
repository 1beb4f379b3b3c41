//! Messages, stored through group commit.
//!
//! Sends go to a small set of writer tasks (a room always to the same one, so its
//! order is kept on this node). A writer takes every send waiting for it, up to a
//! batch limit, and stores them atomically: per room
//! `UPDATE rooms SET last_seq = last_seq + k ... RETURNING` allocates the seqs
//! under the room row's lock, then a multi-row INSERT takes them. On PostgreSQL
//! a batch of plain sends is one statement (one round trip, one commit); other
//! batches and SQLite use a transaction. Each sender is
//! answered only after the commit, so a RECEIPT always names a durable message.
//! When a batch fails as a whole, its sends are retried one by one so that one
//! bad send cannot fail the others.
//!
//! This file is the port impl; the writers and their batches are in `writer.rs`,
//! search (both dialects, index flush) in `search.rs`, row mapping and shared
//! statement helpers in `rows.rs`.

mod rows;
mod search;
mod writer;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ieum_domain::message::{
    Appended, HistoryQuery, Message, MessageKind, NewMessage, ReactionCount, SearchQuery,
};
use ieum_domain::ports::MessageRepository;
use ieum_domain::{DomainError, DomainResult};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::Store;
use crate::entity::{message, room};
use crate::error::db_err;
use crate::sql::stmt;

use rows::get;
pub(crate) use rows::to_message;
use search::{flush_search_index, search_sql_postgres, search_sql_sqlite};
use writer::Job;

#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    /// Parallel writer tasks (rooms are spread over them by hash). SQLite has one
    /// writer at a time anyway: use 1 there.
    pub writers: usize,
    /// The most sends one transaction takes.
    pub max_batch: usize,
    /// Sends that may wait for a writer before senders wait too (backpressure).
    pub queue: usize,
    /// PostgreSQL: how often the search index's pending entries are merged
    /// (milliseconds; 0 leaves it to inserts and autovacuum).
    pub search_flush_ms: u64,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            writers: 4,
            max_batch: 256,
            queue: 4096,
            search_flush_ms: 1000,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SqlMessages {
    store: Store,
    writers: std::sync::Arc<[std::sync::Mutex<Option<mpsc::Sender<Job>>>]>,
    options: WriterOptions,
    _flusher: Option<std::sync::Arc<AbortOnDrop>>,
}

/// Stops a background task when the last handle that needs it is gone.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl SqlMessages {
    /// The writers start on first use, on the runtime of the task that first
    /// sends to them (an actix worker in the server), each with a database
    /// connection of its own opened there: the session, its writer and the
    /// writer's socket then share one thread instead of waking two others per
    /// message. A writer whose runtime has gone (a restarted worker) is started
    /// again on the next send. On PostgreSQL it also starts the search index
    /// flusher on the current Tokio runtime.
    pub fn new(store: Store, options: WriterOptions) -> Self {
        let writers = (0..options.writers.max(1))
            .map(|_| std::sync::Mutex::new(None))
            .collect();
        let flusher = (store.backend() == crate::Backend::Postgres && options.search_flush_ms > 0)
            .then(|| {
                let task = tokio::spawn(tracing::Instrument::instrument(
                    flush_search_index(
                        store.clone(),
                        std::time::Duration::from_millis(options.search_flush_ms),
                    ),
                    tracing::info_span!("search_index_flusher"),
                ));
                std::sync::Arc::new(AbortOnDrop(task.abort_handle()))
            });
        Self {
            store,
            writers,
            options,
            _flusher: flusher,
        }
    }
}

#[async_trait]
impl MessageRepository for SqlMessages {
    async fn append(&self, msg: NewMessage) -> DomainResult<Appended> {
        let (reply, answer) = oneshot::channel();
        self.writer_for(&msg.room_id)
            .send(Job { msg, reply })
            .await
            .map_err(|_| DomainError::Unavailable("message writer stopped".into()))?;
        answer
            .await
            .map_err(|_| DomainError::Unavailable("message writer stopped".into()))?
    }

    async fn page(&self, room_id: &str, q: HistoryQuery) -> DomainResult<Vec<Message>> {
        let mut find = message::Entity::find().filter(message::Column::RoomId.eq(room_id));
        if q.skip_system {
            find = find.filter(message::Column::Kind.ne(MessageKind::System.as_str()));
        }
        if let Some(before) = q.before {
            find = find.filter(message::Column::Seq.lt(before));
        }
        let limit = u64::from(q.limit.max(1));
        let rows = if let Some(after) = q.after {
            find.filter(message::Column::Seq.gt(after))
                .order_by_asc(message::Column::Seq)
                .limit(limit)
                .all(self.store.connection())
                .await
                .map_err(db_err)?
        } else {
            let mut rows = find
                .order_by_desc(message::Column::Seq)
                .limit(limit)
                .all(self.store.connection())
                .await
                .map_err(db_err)?;
            rows.reverse();
            rows
        };
        let mut out = rows
            .into_iter()
            .map(to_message)
            .collect::<DomainResult<Vec<_>>>()?;
        self.fill_details(&mut out).await?;
        Ok(out)
    }

    async fn last_seq(&self, room_id: &str) -> DomainResult<i64> {
        Ok(room::Entity::find_by_id(room_id.to_owned())
            .one(self.store.connection())
            .await
            .map_err(db_err)?
            .map(|r| r.last_seq)
            .unwrap_or(0))
    }

    async fn find(&self, id: Uuid) -> DomainResult<Option<Message>> {
        let found = message::Entity::find_by_id(id)
            .one(self.store.connection())
            .await
            .map_err(db_err)?;
        let Some(m) = found else { return Ok(None) };
        let mut out = vec![to_message(m)?];
        self.fill_details(&mut out).await?;
        Ok(out.pop())
    }

    async fn edit(
        &self,
        id: Uuid,
        content: String,
        at: DateTime<Utc>,
    ) -> DomainResult<Option<Message>> {
        let db = self.store.connection();
        let tx = db.begin().await.map_err(db_err)?;
        let Some(old) = message::Entity::find_by_id(id)
            .one(&tx)
            .await
            .map_err(db_err)?
        else {
            return Ok(None);
        };
        let backend = tx.get_database_backend();
        tx.execute_raw(stmt(
            backend,
            "INSERT INTO message_edits (id, message_id, content, edited_at) VALUES (?, ?, ?, ?)",
            vec![
                Uuid::now_v7().into(),
                id.into(),
                old.content.clone().into(),
                at.into(),
            ],
        ))
        .await
        .map_err(db_err)?;
        tx.execute_raw(stmt(
            backend,
            "UPDATE messages SET content = ?, edited_at = ? WHERE id = ? AND deleted_at IS NULL",
            vec![content.into(), at.into(), id.into()],
        ))
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        self.find(id).await
    }

    async fn edits(&self, id: Uuid) -> DomainResult<Vec<(String, DateTime<Utc>)>> {
        let db = self.store.connection();
        db.query_all_raw(stmt(
            db.get_database_backend(),
            "SELECT content, edited_at FROM message_edits WHERE message_id = ? ORDER BY edited_at, id",
            vec![id.into()],
        ))
        .await
        .map_err(db_err)?
        .iter()
        .map(|r| Ok((get(r, "content")?, get(r, "edited_at")?)))
        .collect()
    }

    async fn tombstone(&self, id: Uuid, at: DateTime<Utc>) -> DomainResult<Option<Message>> {
        let db = self.store.connection();
        let tx = db.begin().await.map_err(db_err)?;
        let backend = tx.get_database_backend();
        let n = tx
            .execute_raw(stmt(
                backend,
                "UPDATE messages SET content = '', image_url = NULL, deleted_at = ? WHERE id = ? AND deleted_at IS NULL",
                vec![at.into(), id.into()],
            ))
            .await
            .map_err(db_err)?
            .rows_affected();
        if n == 0 {
            return Ok(None);
        }
        for table in ["message_edits", "reactions", "pins", "mentions"] {
            tx.execute_raw(stmt(
                backend,
                &format!("DELETE FROM {table} WHERE message_id = ?"),
                vec![id.into()],
            ))
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        self.find(id).await
    }

    async fn due_expired(&self, now: DateTime<Utc>, limit: u32) -> DomainResult<Vec<Message>> {
        message::Entity::find()
            .filter(message::Column::ExpiresAt.lte(now))
            .filter(message::Column::DeletedAt.is_null())
            .order_by_asc(message::Column::ExpiresAt)
            .limit(u64::from(limit))
            .all(self.store.connection())
            .await
            .map_err(db_err)?
            .into_iter()
            .map(to_message)
            .collect()
    }

    async fn next_expiry(&self) -> DomainResult<Option<DateTime<Utc>>> {
        Ok(message::Entity::find()
            .filter(message::Column::ExpiresAt.is_not_null())
            .filter(message::Column::DeletedAt.is_null())
            .order_by_asc(message::Column::ExpiresAt)
            .one(self.store.connection())
            .await
            .map_err(db_err)?
            .and_then(|m| m.expires_at))
    }

    async fn thread(
        &self,
        parent: Uuid,
        after: Option<i64>,
        limit: u32,
    ) -> DomainResult<Vec<Message>> {
        let mut q = message::Entity::find().filter(message::Column::ParentId.eq(parent));
        if let Some(a) = after {
            q = q.filter(message::Column::Seq.gt(a));
        }
        let rows = q
            .order_by_asc(message::Column::Seq)
            .limit(u64::from(limit.max(1)))
            .all(self.store.connection())
            .await
            .map_err(db_err)?;
        let mut out = rows
            .into_iter()
            .map(to_message)
            .collect::<DomainResult<Vec<_>>>()?;
        self.fill_details(&mut out).await?;
        Ok(out)
    }

    async fn set_reaction(
        &self,
        message: Uuid,
        user: Uuid,
        emoji: &str,
        on: bool,
        at: DateTime<Utc>,
    ) -> DomainResult<bool> {
        self.toggle_row(
            on,
            (
                "INSERT INTO reactions (message_id, user_id, emoji, created_at) VALUES (?, ?, ?, ?)",
                vec![message.into(), user.into(), emoji.into(), at.into()],
            ),
            (
                "DELETE FROM reactions WHERE message_id = ? AND user_id = ? AND emoji = ?",
                vec![message.into(), user.into(), emoji.into()],
            ),
        )
        .await
    }

    async fn reactions(&self, messages: Vec<Uuid>) -> DomainResult<Vec<(Uuid, ReactionCount)>> {
        let mut out: Vec<(Uuid, ReactionCount)> = Vec::new();
        let db = self.store.connection();
        for chunk in messages.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let rows = db
                .query_all_raw(stmt(
                    db.get_database_backend(),
                    &format!(
                        "SELECT message_id, emoji, user_id FROM reactions WHERE message_id IN ({marks}) ORDER BY created_at, user_id"
                    ),
                    chunk.iter().map(|id| (*id).into()).collect(),
                ))
                .await
                .map_err(db_err)?;
            for r in rows {
                let (mid, emoji, user): (Uuid, String, Uuid) = (
                    get(&r, "message_id")?,
                    get(&r, "emoji")?,
                    get(&r, "user_id")?,
                );
                match out.iter_mut().find(|(m, c)| *m == mid && c.emoji == emoji) {
                    Some((_, c)) => {
                        c.count += 1;
                        c.user_ids.push(user);
                    }
                    None => out.push((
                        mid,
                        ReactionCount {
                            emoji,
                            count: 1,
                            user_ids: vec![user],
                        },
                    )),
                }
            }
        }
        Ok(out)
    }

    async fn set_pin(
        &self,
        room_id: &str,
        message: Uuid,
        by: Uuid,
        on: bool,
        at: DateTime<Utc>,
    ) -> DomainResult<bool> {
        self.toggle_row(
            on,
            (
                "INSERT INTO pins (room_id, message_id, pinned_by, pinned_at) VALUES (?, ?, ?, ?)",
                vec![room_id.into(), message.into(), by.into(), at.into()],
            ),
            (
                "DELETE FROM pins WHERE room_id = ? AND message_id = ?",
                vec![room_id.into(), message.into()],
            ),
        )
        .await
    }

    async fn pins(&self, room_id: &str) -> DomainResult<Vec<(Message, Uuid, DateTime<Utc>)>> {
        let db = self.store.connection();
        let rows = db
            .query_all_raw(stmt(
                db.get_database_backend(),
                "SELECT message_id, pinned_by, pinned_at FROM pins WHERE room_id = ? ORDER BY pinned_at DESC",
                vec![room_id.into()],
            ))
            .await
            .map_err(db_err)?;
        let mut out = Vec::new();
        for r in rows {
            let id: Uuid = get(&r, "message_id")?;
            if let Some(m) = self.find(id).await? {
                out.push((m, get(&r, "pinned_by")?, get(&r, "pinned_at")?));
            }
        }
        // `find` fills each message's mentions and file.
        Ok(out)
    }

    async fn search(&self, q: SearchQuery) -> DomainResult<Vec<Message>> {
        let db = self.store.connection();
        let backend = db.get_database_backend();
        let (sql, values) = match backend {
            sea_orm::DbBackend::Postgres => search_sql_postgres(&q),
            _ => search_sql_sqlite(&q),
        };
        let rows = db
            .query_all_raw(stmt(backend, &sql, values))
            .await
            .map_err(db_err)?;
        use sea_orm::FromQueryResult;
        let mut out = rows
            .iter()
            .map(|r| {
                message::Model::from_query_result(r, "")
                    .map_err(db_err)
                    .and_then(to_message)
            })
            .collect::<DomainResult<Vec<_>>>()?;
        self.fill_details(&mut out).await?;
        Ok(out)
    }
}
