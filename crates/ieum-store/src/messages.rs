//! Messages, stored through group commit.
//!
//! Sends go to a small set of writer tasks (a room always to the same one, so its
//! order is kept on this node). A writer takes every send waiting for it, up to a
//! batch limit, and stores them in one transaction: per room one
//! `UPDATE rooms SET last_seq = last_seq + k ... RETURNING last_seq` allocates the
//! seqs under the room row's lock, then one multi-row INSERT. Each sender is
//! answered only after the commit, so a RECEIPT always names a durable message.
//! When a batch fails as a whole, its sends are retried one by one so that one
//! bad send cannot fail the others.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use async_trait::async_trait;
use ieum_domain::message::{Appended, HistoryQuery, Message, MessageKind, NewMessage};
use ieum_domain::ports::MessageRepository;
use ieum_domain::{DomainError, DomainResult};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};
use tokio::sync::{mpsc, oneshot};

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
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            writers: 4,
            max_batch: 256,
            queue: 4096,
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
    writers: Vec<mpsc::Sender<Job>>,
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
    })
}

impl SqlMessages {
    /// Starts the writer tasks on the current Tokio runtime.
    pub fn new(store: Store, options: WriterOptions) -> Self {
        let writers = (0..options.writers.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::channel(options.queue.max(1));
                tokio::spawn(run_writer(store.clone(), rx, options.max_batch.max(1)));
                tx
            })
            .collect();
        Self { store, writers }
    }

    fn writer_for(&self, room_id: &str) -> &mpsc::Sender<Job> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        room_id.hash(&mut h);
        &self.writers[(h.finish() as usize) % self.writers.len()]
    }
}

async fn run_writer(store: Store, mut rx: mpsc::Receiver<Job>, max_batch: usize) {
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
    Existing(Message),
    /// Same client id as an earlier send of this batch (its index).
    SameAs(usize),
    /// New: index into the rows inserted.
    New,
    Failed(DomainError),
}

/// Stores a batch in one transaction. The outer error fails the whole batch; the
/// inner results are per send.
async fn write_batch(
    store: &Store,
    msgs: &[&NewMessage],
) -> DomainResult<Vec<DomainResult<Appended>>> {
    let db = store.connection();
    let tx = db.begin().await.map_err(db_err)?;
    let mut slots: Vec<Slot> = Vec::with_capacity(msgs.len());
    let existing = find_existing(&tx, msgs).await?;
    let mut first_of: HashMap<DedupeKey, usize> = HashMap::new();
    // Which sends are new, per room in order of first appearance.
    let mut rooms: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        if let Some(k) = key(m) {
            if let Some(found) = existing.get(&k) {
                slots.push(Slot::Existing(found.clone()));
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
    let backend = db.get_database_backend();
    let mut seqs: Vec<i64> = vec![0; msgs.len()];
    for (room_id, idx) in &rooms {
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
            None => {
                for &i in idx {
                    slots[i] =
                        Slot::Failed(DomainError::not_found("room_not_found", "no such room"));
                }
            }
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
        })
        .collect();
    for chunk in rows.chunks(500) {
        message::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(&tx)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    DomainError::conflict(
                        "duplicate",
                        "a message with that client id or seq exists",
                    )
                } else {
                    db_err(e)
                }
            })?;
    }
    tx.commit().await.map_err(db_err)?;

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
        }
    };
    let mut out = Vec::with_capacity(msgs.len());
    for i in 0..msgs.len() {
        out.push(match &slots[i] {
            Slot::Existing(m) => Ok(Appended {
                message: m.clone(),
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
    Ok(out)
}

async fn find_existing(
    tx: &DatabaseTransaction,
    msgs: &[&NewMessage],
) -> DomainResult<HashMap<DedupeKey, Message>> {
    let mut by_room: HashMap<&str, Vec<&str>> = HashMap::new();
    for m in msgs {
        if let Some(c) = &m.client_msg_id {
            by_room
                .entry(m.room_id.as_str())
                .or_default()
                .push(c.as_str());
        }
    }
    let mut found = HashMap::new();
    for (room_id, ids) in by_room {
        let rows = message::Entity::find()
            .filter(message::Column::RoomId.eq(room_id))
            .filter(message::Column::ClientMsgId.is_in(ids))
            .all(tx)
            .await
            .map_err(db_err)?;
        for row in rows {
            let m = to_message(row)?;
            if let Some(c) = m.client_msg_id.clone() {
                found.insert((m.room_id.clone(), m.sender_id, c), m);
            }
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
        rows.into_iter().map(to_message).collect()
    }

    async fn last_seq(&self, room_id: &str) -> DomainResult<i64> {
        Ok(room::Entity::find_by_id(room_id.to_owned())
            .one(self.store.connection())
            .await
            .map_err(db_err)?
            .map(|r| r.last_seq)
            .unwrap_or(0))
    }
}
