//! The group-commit writers: a room's sends queue for one writer task, which
//! stores every send waiting for it as one batch (see `messages/mod.rs`).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use ieum_domain::message::{Appended, Message, NewMessage};
use ieum_domain::{DomainError, DomainResult};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait,
    QueryFilter, TransactionTrait,
};
use tokio::sync::{mpsc, oneshot};

use crate::Store;
use crate::entity::message;
use crate::error::{db_err, is_unique_violation};
use crate::sql::stmt;

use super::{SqlMessages, to_message};

pub(super) struct Job {
    pub(super) msg: NewMessage,
    pub(super) reply: oneshot::Sender<DomainResult<Appended>>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("room", &self.msg.room_id)
            .finish()
    }
}

impl SqlMessages {
    pub(super) fn writer_for(&self, room_id: &str) -> mpsc::Sender<Job> {
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
    let started = std::time::Instant::now();
    let written = write_batch_once(store, msgs).await;
    metrics::histogram!("ieum_store_batch_messages").record(msgs.len() as f64);
    metrics::histogram!(
        "ieum_store_commit_seconds",
        "result" => if written.is_ok() { "ok" } else { "error" }
    )
    .record(started.elapsed().as_secs_f64());
    written
}

async fn write_batch_once(
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
        slots[i] = Slot::Failed(ieum_domain::error::named::room_not_found());
    }
}

fn duplicate_or_db_err(e: sea_orm::DbErr) -> DomainError {
    if is_unique_violation(&e) {
        ieum_domain::error::named::duplicate_message()
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
            file: None,
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
