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

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ieum_domain::message::{
    Appended, HistoryQuery, Message, MessageKind, NewMessage, ReactionCount, SearchQuery,
};
use ieum_domain::ports::MessageRepository;
use ieum_domain::{DomainError, DomainResult};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::Store;
use crate::entity::{message, room};
use crate::error::{db_err, is_unique_violation};
use crate::sql::stmt;

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

struct Job {
    msg: NewMessage,
    reply: oneshot::Sender<DomainResult<Appended>>,
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

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("room", &self.msg.room_id)
            .finish()
    }
}

pub(crate) fn to_message(m: message::Model) -> DomainResult<Message> {
    Ok(Message {
        kind: MessageKind::parse(&m.kind)
            .ok_or_else(|| DomainError::Internal("stored message kind is not readable".into()))?,
        id: m.id,
        room_id: m.room_id,
        seq: m.seq,
        sender_id: m.sender_id,
        sender_username: m.sender_username,
        sender_name: m.sender_name,
        sender_image: m.sender_image,
        content: m.content,
        image_url: m.image_url,
        client_msg_id: m.client_msg_id,
        created_at: m.created_at,
        read_at: m.read_at,
        parent_id: m.parent_id,
        reply_count: m.reply_count,
        last_reply_at: m.last_reply_at,
        edited_at: m.edited_at,
        deleted: m.deleted_at.is_some(),
        expires_at: m.expires_at,
        mentions: Vec::new(),
        reactions: Vec::new(),
    })
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

    fn writer_for(&self, room_id: &str) -> mpsc::Sender<Job> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        room_id.hash(&mut h);
        let slot = &self.writers[(h.finish() as usize) % self.writers.len()];
        let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
        match &*slot {
            Some(tx) if !tx.is_closed() => tx.clone(),
            _ => {
                let (tx, rx) = mpsc::channel(self.options.queue.max(1));
                let span = tracing::debug_span!("writer");
                tokio::spawn(tracing::Instrument::instrument(
                    run_writer(self.store.clone(), rx, self.options.max_batch.max(1)),
                    span,
                ));
                *slot = Some(tx.clone());
                tx
            }
        }
    }
}

/// Moves the trigram index's pending list into the index proper, off the send
/// path. A GIN index with `fastupdate` collects new entries in a pending list
/// and the insert that finds the list over `gin_pending_list_limit` merges it,
/// which stalled that one send (and every send queued behind its writer) for
/// tens of milliseconds every few seconds under load. The migration raises the
/// limit to 16 MB, so the insert-time merge stays a safety valve, and this task
/// merges the list every interval on a connection of the shared pool. One node
/// at a time does it (an advisory lock); the others skip their turn.
async fn flush_search_index(store: Store, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let sql = "SELECT CASE WHEN pg_try_advisory_xact_lock(7234012002) \
                   THEN gin_clean_pending_list('idx_messages_content_trgm') END AS pages";
        if let Err(e) = store
            .connection()
            .execute_unprepared(&format!("BEGIN; {sql}; COMMIT"))
            .await
        {
            tracing::debug!(error = %e, "search index flush failed");
        }
    }
}

async fn run_writer(shared: Store, mut rx: mpsc::Receiver<Job>, max_batch: usize) {
    let store = match shared.dedicated(1).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "no connection of its own for a message writer; using the shared pool");
            shared
        }
    };
    let mut batch = Vec::with_capacity(max_batch);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let jobs: Vec<Job> = std::mem::take(&mut batch);
        let msgs: Vec<&NewMessage> = jobs.iter().map(|j| &j.msg).collect();
        match write_batch(&store, &msgs).await {
            Ok(results) => {
                for (job, r) in jobs.into_iter().zip(results) {
                    let _ = job.reply.send(r);
                }
            }
            Err(e) if jobs.len() > 1 => {
                tracing::warn!(error = %e, size = jobs.len(), "batch failed; storing its sends one by one");
                for job in jobs {
                    let r = match write_batch(&store, &[&job.msg]).await {
                        Ok(mut r) => r
                            .pop()
                            .unwrap_or_else(|| Err(DomainError::Internal("no result".into()))),
                        Err(e) => recover_duplicate(&store, &job.msg, e).await,
                    };
                    let _ = job.reply.send(r);
                }
            }
            Err(e) => {
                let job = jobs.into_iter().next().expect("one job");
                let r = recover_duplicate(&store, &job.msg, e).await;
                let _ = job.reply.send(r);
            }
        }
    }
}

/// After a failed single insert: if another node stored the same client message
/// id meanwhile (a unique violation), answer with that message.
async fn recover_duplicate(
    store: &Store,
    msg: &NewMessage,
    err: DomainError,
) -> DomainResult<Appended> {
    if let Some(cmid) = &msg.client_msg_id
        && let Ok(Some(existing)) = message::Entity::find()
            .filter(message::Column::RoomId.eq(msg.room_id.as_str()))
            .filter(message::Column::SenderId.eq(msg.sender_id))
            .filter(message::Column::ClientMsgId.eq(cmid.as_str()))
            .one(store.connection())
            .await
    {
        return Ok(Appended {
            message: to_message(existing)?,
            duplicate: true,
        });
    }
    Err(err)
}

type DedupeKey = (String, uuid::Uuid, String);

fn key(m: &NewMessage) -> Option<DedupeKey> {
    m.client_msg_id
        .as_ref()
        .map(|c| (m.room_id.clone(), m.sender_id, c.clone()))
}

enum Slot {
    /// Stored earlier (before this batch).
    Existing(Box<Message>),
    /// Same client id as an earlier send of this batch (its index).
    SameAs(usize),
    /// New: index into the rows inserted.
    New,
    Failed(DomainError),
}

/// What a batch does with each send, decided before anything is written.
struct Plan {
    slots: Vec<Slot>,
    /// New sends per room, in order of first appearance (indexes into the batch).
    rooms: Vec<(String, Vec<usize>)>,
}

fn plan(msgs: &[&NewMessage], existing: &HashMap<DedupeKey, Message>) -> Plan {
    let mut slots: Vec<Slot> = Vec::with_capacity(msgs.len());
    let mut first_of: HashMap<DedupeKey, usize> = HashMap::new();
    let mut rooms: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        if let Some(k) = key(m) {
            if let Some(found) = existing.get(&k) {
                slots.push(Slot::Existing(Box::new(found.clone())));
                continue;
            }
            if let Some(&j) = first_of.get(&k) {
                slots.push(Slot::SameAs(j));
                continue;
            }
            first_of.insert(k, i);
        }
        slots.push(Slot::New);
        match rooms.iter_mut().find(|(r, _)| *r == m.room_id) {
            Some((_, idx)) => idx.push(i),
            None => rooms.push((m.room_id.clone(), vec![i])),
        }
    }
    Plan { slots, rooms }
}

/// Stores a batch atomically. The outer error fails the whole batch; the inner
/// results are per send.
///
/// On PostgreSQL a batch of plain sends (no mentions, no thread replies) is one
/// statement: a data-modifying CTE bumps every room's `last_seq` and inserts the
/// rows with seqs taken from the bumped values, so the batch costs one round
/// trip and one commit (two more when it holds a send stored before). Anything
/// else (and SQLite) goes through a transaction.
async fn write_batch(
    store: &Store,
    msgs: &[&NewMessage],
) -> DomainResult<Vec<DomainResult<Appended>>> {
    let db = store.connection();
    let backend = db.get_database_backend();
    let one_statement = backend == DbBackend::Postgres
        && msgs
            .iter()
            .all(|m| m.mentions.is_empty() && m.parent_id.is_none());
    let (slots, seqs) = if one_statement {
        // Most sends are new: insert without looking first. A send stored
        // earlier makes the unique client-id index refuse the statement, which
        // rolls back all of it (the seq bump too); only then does the batch
        // look its client ids up. One round trip instead of two.
        let Plan { mut slots, rooms } = plan(msgs, &HashMap::new());
        match insert_one_statement(db, msgs, &rooms, &mut slots).await {
            Ok(seqs) => (slots, seqs),
            Err(e) if e.code() == "duplicate" && msgs.iter().any(|m| m.client_msg_id.is_some()) => {
                let existing = find_existing(db, msgs).await?;
                let Plan { mut slots, rooms } = plan(msgs, &existing);
                let seqs = insert_one_statement(db, msgs, &rooms, &mut slots).await?;
                (slots, seqs)
            }
            Err(e) => return Err(e),
        }
    } else {
        let tx = db.begin().await.map_err(db_err)?;
        let existing = find_existing(&tx, msgs).await?;
        let Plan { mut slots, rooms } = plan(msgs, &existing);
        let seqs = insert_in_transaction(&tx, msgs, &rooms, &mut slots).await?;
        tx.commit().await.map_err(db_err)?;
        (slots, seqs)
    };
    Ok(results(msgs, &slots, &seqs))
}

/// Marks every send of a room that does not exist as failed.
fn room_missing(slots: &mut [Slot], idx: &[usize]) {
    for &i in idx {
        slots[i] = Slot::Failed(DomainError::not_found("room_not_found", "no such room"));
    }
}

fn duplicate_or_db_err(e: sea_orm::DbErr) -> DomainError {
    if is_unique_violation(&e) {
        DomainError::conflict("duplicate", "a message with that client id or seq exists")
    } else {
        db_err(e)
    }
}

/// The columns a new message row sets, in the order of `INSERT_COLUMNS`.
const INSERT_COLUMNS: &str = "id, room_id, seq, sender_id, sender_username, sender_name, \
     sender_image, kind, content, image_url, client_msg_id, created_at, expires_at, reply_count";

async fn insert_one_statement(
    db: &impl ConnectionTrait,
    msgs: &[&NewMessage],
    rooms: &[(String, Vec<usize>)],
    slots: &mut [Slot],
) -> DomainResult<Vec<i64>> {
    let mut seqs = vec![0; msgs.len()];
    if rooms.is_empty() {
        return Ok(seqs);
    }
    // v(column1 = room id, column2 = how many, column3 = newest time);
    // m(column1 = room id, column2 = position in its room from 1, then the row).
    let mut sql = String::from(
        "WITH bump AS (UPDATE rooms SET last_seq = rooms.last_seq + v.column2, \
         last_message_at = v.column3 FROM (VALUES ",
    );
    let mut values: Vec<sea_orm::Value> = Vec::with_capacity(rooms.len() * 3 + msgs.len() * 13);
    for (n, (room_id, idx)) in rooms.iter().enumerate() {
        sql.push_str(if n == 0 { "(?, ?, ?)" } else { ", (?, ?, ?)" });
        let newest = idx.iter().map(|&i| msgs[i].created_at).max();
        values.push(room_id.as_str().into());
        values.push((idx.len() as i64).into());
        values.push(newest.into());
    }
    sql.push_str(
        ") AS v WHERE rooms.id = v.column1 RETURNING rooms.id, rooms.last_seq - v.column2 AS base), \
         ins AS (INSERT INTO messages (",
    );
    sql.push_str(INSERT_COLUMNS);
    sql.push_str(
        ") SELECT m.column3, m.column1, bump.base + m.column2, m.column4, m.column5, m.column6, \
         m.column7, m.column8, m.column9, m.column10, m.column11, m.column12, m.column13, 0 \
         FROM (VALUES ",
    );
    let mut first = true;
    for (room_id, idx) in rooms {
        for (pos, &i) in idx.iter().enumerate() {
            let m = msgs[i];
            if !first {
                sql.push_str(", ");
            }
            sql.push_str("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
            first = false;
            values.extend([
                room_id.as_str().into(),
                (pos as i64 + 1).into(),
                m.id.into(),
                m.sender_id.into(),
                m.sender_username.as_str().into(),
                m.sender_name.as_str().into(),
                m.sender_image.clone().into(),
                m.kind.as_str().into(),
                m.content.as_str().into(),
                m.image_url.clone().into(),
                m.client_msg_id.clone().into(),
                m.created_at.into(),
                m.expires_at.into(),
            ]);
        }
    }
    sql.push_str(") AS m JOIN bump ON bump.id = m.column1) SELECT id, base FROM bump");
    let rows = db
        .query_all_raw(stmt(DbBackend::Postgres, &sql, values))
        .await
        .map_err(duplicate_or_db_err)?;
    let mut base: HashMap<String, i64> = HashMap::with_capacity(rows.len());
    for row in rows {
        let id: String = row
            .try_get("", "id")
            .map_err(|e| DomainError::Internal(format!("room id: {e}")))?;
        let b: i64 = row
            .try_get("", "base")
            .map_err(|e| DomainError::Internal(format!("last_seq: {e}")))?;
        base.insert(id, b);
    }
    for (room_id, idx) in rooms {
        match base.get(room_id) {
            Some(b) => {
                for (n, &i) in idx.iter().enumerate() {
                    seqs[i] = b + 1 + n as i64;
                }
            }
            None => room_missing(slots, idx),
        }
    }
    Ok(seqs)
}

async fn insert_in_transaction(
    tx: &DatabaseTransaction,
    msgs: &[&NewMessage],
    rooms: &[(String, Vec<usize>)],
    slots: &mut [Slot],
) -> DomainResult<Vec<i64>> {
    let backend = tx.get_database_backend();
    let mut seqs: Vec<i64> = vec![0; msgs.len()];
    for (room_id, idx) in rooms {
        let k = idx.len() as i64;
        let newest = idx
            .iter()
            .map(|&i| msgs[i].created_at)
            .max()
            .expect("non-empty");
        let row = tx
            .query_one_raw(stmt(
                backend,
                "UPDATE rooms SET last_seq = last_seq + ?, last_message_at = ? WHERE id = ? RETURNING last_seq",
                vec![k.into(), newest.into(), room_id.as_str().into()],
            ))
            .await
            .map_err(db_err)?;
        match row {
            Some(row) => {
                let last: i64 = row
                    .try_get("", "last_seq")
                    .map_err(|e| DomainError::Internal(format!("last_seq: {e}")))?;
                for (n, &i) in idx.iter().enumerate() {
                    seqs[i] = last - k + 1 + n as i64;
                }
            }
            None => room_missing(slots, idx),
        }
    }
    let rows: Vec<message::ActiveModel> = msgs
        .iter()
        .enumerate()
        .filter(|(i, _)| matches!(slots[*i], Slot::New))
        .map(|(i, m)| message::ActiveModel {
            id: Set(m.id),
            room_id: Set(m.room_id.clone()),
            seq: Set(seqs[i]),
            sender_id: Set(m.sender_id),
            sender_username: Set(m.sender_username.clone()),
            sender_name: Set(m.sender_name.clone()),
            sender_image: Set(m.sender_image.clone()),
            kind: Set(m.kind.as_str().to_owned()),
            content: Set(m.content.clone()),
            image_url: Set(m.image_url.clone()),
            client_msg_id: Set(m.client_msg_id.clone()),
            created_at: Set(m.created_at),
            read_at: Set(None),
            edited_at: Set(None),
            deleted_at: Set(None),
            parent_id: Set(m.parent_id),
            reply_count: Set(0),
            last_reply_at: Set(None),
            expires_at: Set(m.expires_at),
        })
        .collect();
    for chunk in rows.chunks(500) {
        message::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(tx)
            .await
            .map_err(duplicate_or_db_err)?;
    }
    for (i, m) in msgs.iter().enumerate() {
        if !matches!(slots[i], Slot::New) {
            continue;
        }
        for user in &m.mentions {
            tx.execute_raw(stmt(
                backend,
                "INSERT INTO mentions (message_id, room_id, user_id, seq) VALUES (?, ?, ?, ?)",
                vec![
                    m.id.into(),
                    m.room_id.as_str().into(),
                    (*user).into(),
                    seqs[i].into(),
                ],
            ))
            .await
            .map_err(db_err)?;
        }
        if let Some(parent) = m.parent_id {
            tx.execute_raw(stmt(
                backend,
                "UPDATE messages SET reply_count = reply_count + 1, last_reply_at = ? WHERE id = ?",
                vec![m.created_at.into(), parent.into()],
            ))
            .await
            .map_err(db_err)?;
        }
    }
    Ok(seqs)
}

/// Each send's answer once its batch is stored.
fn results(msgs: &[&NewMessage], slots: &[Slot], seqs: &[i64]) -> Vec<DomainResult<Appended>> {
    let stored = |i: usize| -> Message {
        let m = msgs[i];
        Message {
            id: m.id,
            room_id: m.room_id.clone(),
            seq: seqs[i],
            sender_id: m.sender_id,
            sender_username: m.sender_username.clone(),
            sender_name: m.sender_name.clone(),
            sender_image: m.sender_image.clone(),
            kind: m.kind,
            content: m.content.clone(),
            image_url: m.image_url.clone(),
            client_msg_id: m.client_msg_id.clone(),
            created_at: m.created_at,
            read_at: None,
            parent_id: m.parent_id,
            reply_count: 0,
            last_reply_at: None,
            edited_at: None,
            deleted: false,
            expires_at: m.expires_at,
            mentions: m.mentions.clone(),
            reactions: Vec::new(),
        }
    };
    let mut out = Vec::with_capacity(msgs.len());
    for i in 0..msgs.len() {
        out.push(match &slots[i] {
            Slot::Existing(m) => Ok(Appended {
                message: m.as_ref().clone(),
                duplicate: true,
            }),
            Slot::New => Ok(Appended {
                message: stored(i),
                duplicate: false,
            }),
            Slot::SameAs(j) => match &slots[*j] {
                Slot::New => Ok(Appended {
                    message: stored(*j),
                    duplicate: true,
                }),
                Slot::Failed(e) => Err(e.clone()),
                _ => Err(DomainError::Internal("dedupe chain".into())),
            },
            Slot::Failed(e) => Err(e.clone()),
        });
    }
    out
}

/// Messages already stored under the batch's client ids: one query for the
/// whole batch, an index lookup per key (the unique index on room, sender and
/// client id).
async fn find_existing(
    tx: &impl ConnectionTrait,
    msgs: &[&NewMessage],
) -> DomainResult<HashMap<DedupeKey, Message>> {
    let keys: std::collections::HashSet<DedupeKey> = msgs.iter().filter_map(|m| key(m)).collect();
    let mut found = HashMap::new();
    if keys.is_empty() {
        return Ok(found);
    }
    let mut sql = String::from("SELECT m.* FROM messages m JOIN (VALUES ");
    let mut values: Vec<sea_orm::Value> = Vec::with_capacity(keys.len() * 3);
    for (n, (room, sender, cmid)) in keys.iter().enumerate() {
        sql.push_str(if n == 0 { "(?, ?, ?)" } else { ", (?, ?, ?)" });
        values.extend([room.as_str().into(), (*sender).into(), cmid.as_str().into()]);
    }
    sql.push_str(
        ") AS k ON m.room_id = k.column1 AND m.sender_id = k.column2 AND m.client_msg_id = k.column3",
    );
    let backend = tx.get_database_backend();
    let rows = message::Entity::find()
        .from_raw_sql(stmt(backend, &sql, values))
        .all(tx)
        .await
        .map_err(db_err)?;
    for row in rows {
        let m = to_message(row)?;
        if let Some(c) = m.client_msg_id.clone() {
            found.insert((m.room_id.clone(), m.sender_id, c), m);
        }
    }
    Ok(found)
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
        self.attach_mentions(&mut out).await?;
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
        self.attach_mentions(&mut out).await?;
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
        self.attach_mentions(&mut out).await?;
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
        self.attach_mentions(&mut out).await?;
        Ok(out)
    }
}

/// The filters every search applies to a message row `m`.
fn common_filters(q: &SearchQuery, sql: &mut String, values: &mut Vec<sea_orm::Value>) {
    sql.push_str(" AND m.deleted_at IS NULL AND (m.expires_at IS NULL OR m.expires_at > ?) AND m.kind <> 'SYSTEM'");
    values.push(q.now.into());
    if let Some(sender) = q.sender_id {
        sql.push_str(" AND m.sender_id = ?");
        values.push(sender.into());
    }
    if let Some(from) = q.from {
        sql.push_str(" AND m.created_at >= ?");
        values.push(from.into());
    }
    if let Some(to) = q.to {
        sql.push_str(" AND m.created_at < ?");
        values.push(to.into());
    }
    if let Some((at, id)) = q.before {
        sql.push_str(" AND (m.created_at < ? OR (m.created_at = ? AND m.id < ?))");
        values.extend([at.into(), at.into(), id.into()]);
    }
}

/// PostgreSQL: one bitmap over the user's readable rooms ANDed with one over
/// the pg_trgm GIN index (three characters or more), so the work follows the
/// matches in the user's rooms, not the table's size. Someone who left a room
/// under `until_leave` reads it up to the seq at which they left.
fn search_sql_postgres(q: &SearchQuery) -> (String, Vec<sea_orm::Value>) {
    let readable = "FROM room_members rm JOIN rooms r ON r.id = rm.room_id WHERE rm.user_id = ? \
        AND (rm.state = 'active' OR (rm.state = 'left' AND r.history_visibility IN ('all', 'until_leave')))";
    let mut values: Vec<sea_orm::Value> = vec![q.user_id.into()];
    let mut sql = format!(
        "SELECT m.* FROM messages m WHERE m.room_id = ANY (ARRAY(SELECT rm.room_id {readable}"
    );
    if let Some(room) = &q.room_id {
        sql.push_str(" AND rm.room_id = ?");
        values.push(room.as_str().into());
    }
    sql.push_str(&format!(
        ")) AND m.seq <= COALESCE((SELECT CASE WHEN rm.state = 'active' OR r.history_visibility = 'all' \
         THEN NULL ELSE COALESCE(rm.left_seq, 0) END {readable} AND rm.room_id = m.room_id), m.seq)"
    ));
    values.push(q.user_id.into());
    common_filters(q, &mut sql, &mut values);
    sql.push_str(
        " AND m.content ILIKE ? ESCAPE '\\' ORDER BY m.created_at DESC, m.id DESC LIMIT ?",
    );
    values.push(format!("%{}%", escape_like(&q.text)).into());
    values.push(i64::from(q.limit.max(1)).into());
    (sql, values)
}

/// SQLite: the trigram FTS5 index finds substrings of three characters or
/// more; shorter ones are a LIKE within the user's rooms.
fn search_sql_sqlite(q: &SearchQuery) -> (String, Vec<sea_orm::Value>) {
    let mut sql = String::from(
        "SELECT m.* FROM messages m \
         JOIN room_members rm ON rm.room_id = m.room_id AND rm.user_id = ? \
         JOIN rooms r ON r.id = m.room_id \
         WHERE (rm.state = 'active' OR (rm.state = 'left' AND (r.history_visibility = 'all' \
              OR (r.history_visibility = 'until_leave' AND m.seq <= COALESCE(rm.left_seq, 0)))))",
    );
    let mut values: Vec<sea_orm::Value> = vec![q.user_id.into()];
    if let Some(room) = &q.room_id {
        sql.push_str(" AND m.room_id = ?");
        values.push(room.as_str().into());
    }
    common_filters(q, &mut sql, &mut values);
    if q.text.chars().count() >= 3 {
        sql.push_str(" AND m.rowid IN (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?)");
        values.push(format!("\"{}\"", q.text.replace('"', "\"\"")).into());
    } else {
        sql.push_str(" AND m.content LIKE ? ESCAPE '\\'");
        values.push(format!("%{}%", escape_like(&q.text)).into());
    }
    sql.push_str(" ORDER BY m.created_at DESC, m.id DESC LIMIT ?");
    values.push(i64::from(q.limit.max(1)).into());
    (sql, values)
}

/// `%`, `_` and `\` are text, not patterns.
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn get<T: sea_orm::TryGetable>(row: &sea_orm::QueryResult, col: &str) -> DomainResult<T> {
    row.try_get::<T>("", col)
        .map_err(|e| DomainError::Internal(format!("reading {col}: {e}")))
}

/// A statement with its values.
type Sql<'a> = (&'a str, Vec<sea_orm::Value>);

impl SqlMessages {
    /// Inserts (`on`) or deletes one row; true when something changed. An insert
    /// that meets the row already there changes nothing.
    async fn toggle_row(&self, on: bool, insert: Sql<'_>, delete: Sql<'_>) -> DomainResult<bool> {
        let db = self.store.connection();
        let (sql, values) = if on { insert } else { delete };
        match db
            .execute_raw(stmt(db.get_database_backend(), sql, values))
            .await
        {
            Ok(r) => Ok(r.rows_affected() == 1),
            Err(e) if on && is_unique_violation(&e) => Ok(false),
            Err(e) => Err(db_err(e)),
        }
    }

    async fn attach_mentions(&self, msgs: &mut [Message]) -> DomainResult<()> {
        let ids: Vec<Uuid> = msgs.iter().map(|m| m.id).collect();
        if ids.is_empty() {
            return Ok(());
        }
        let db = self.store.connection();
        for chunk in ids.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let rows = db
                .query_all_raw(stmt(
                    db.get_database_backend(),
                    &format!(
                        "SELECT message_id, user_id FROM mentions WHERE message_id IN ({marks})"
                    ),
                    chunk.iter().map(|id| (*id).into()).collect(),
                ))
                .await
                .map_err(db_err)?;
            for r in rows {
                let (mid, user): (Uuid, Uuid) = (get(&r, "message_id")?, get(&r, "user_id")?);
                if let Some(m) = msgs.iter_mut().find(|m| m.id == mid) {
                    m.mentions.push(user);
                }
            }
        }
        Ok(())
    }
}
