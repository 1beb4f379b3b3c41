//! Devices, mutes, preferences, proofs of delivery and the push outbox
//! (migration `m20261202_000009_push`).
//!
//! The outbox's writes are single statements whose CASE arms read the row
//! as it was: a message that lands while a worker sends keeps the entry
//! pending instead of being lost to the worker's "sent". A worker's writes
//! name its claim, so one whose lease lapsed (and whose entry another took)
//! writes nothing. On PostgreSQL `FOR UPDATE SKIP LOCKED` hands each due
//! entry to one node; SQLite is one node.

use async_trait::async_trait;
use ieum_domain::ports::{DeviceRepository, PushRepository};
use ieum_domain::push::{Device, Mute, OutboxEntry, Planned, Platform, PushPrefs};
use ieum_domain::{DomainError, DomainResult};
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, TransactionTrait, Value};
use uuid::Uuid;

use crate::Store;
use crate::error::db_err;
use crate::sql::{exec, get, rows};

const DEVICE_COLS: &str =
    "id, user_id, platform, token, app_version, locale, data_only, family_id, created_at";

fn device_row(r: &QueryResult) -> DomainResult<Device> {
    let platform: String = get(r, "platform")?;
    Ok(Device {
        id: get(r, "id")?,
        user_id: get(r, "user_id")?,
        platform: Platform::parse(&platform)
            .ok_or_else(|| DomainError::Internal(format!("stored platform {platform:?}")))?,
        token: get(r, "token")?,
        app_version: get(r, "app_version")?,
        locale: get(r, "locale")?,
        data_only: get(r, "data_only")?,
        family_id: get(r, "family_id")?,
        created_at: get(r, "created_at")?,
    })
}

/// Deletes a device and what was queued or proven for it.
async fn forget_device(c: &impl ConnectionTrait, id: Uuid) -> DomainResult<u64> {
    exec(
        c,
        "DELETE FROM push_outbox WHERE device_id = ?",
        vec![id.into()],
    )
    .await?;
    exec(
        c,
        "DELETE FROM push_delivered WHERE device_id = ?",
        vec![id.into()],
    )
    .await?;
    exec(c, "DELETE FROM devices WHERE id = ?", vec![id.into()]).await
}

#[derive(Debug, Clone)]
pub struct SqlDevices {
    store: Store,
}

impl SqlDevices {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    async fn forget_where(&self, condition: &str, value: Value) -> DomainResult<u64> {
        let tx = self.store.connection().begin().await.map_err(db_err)?;
        let found = rows(
            &tx,
            &format!("SELECT id FROM devices WHERE {condition}"),
            vec![value],
        )
        .await?;
        let mut removed = 0;
        for row in &found {
            removed += forget_device(&tx, get(row, "id")?).await?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(removed)
    }
}

#[async_trait]
impl DeviceRepository for SqlDevices {
    async fn register(&self, device: &Device) -> DomainResult<Device> {
        let tx = self.store.connection().begin().await.map_err(db_err)?;
        let held = rows(
            &tx,
            "SELECT id, user_id FROM devices WHERE token = ?",
            vec![device.token.as_str().into()],
        )
        .await?;
        if let Some(row) = held.first() {
            let owner: Uuid = get(row, "user_id")?;
            if owner != device.user_id {
                // A phone that changed accounts: nothing of the old owner's
                // may reach the new one.
                let id: Uuid = get(row, "id")?;
                exec(
                    &tx,
                    "DELETE FROM push_outbox WHERE device_id = ?",
                    vec![id.into()],
                )
                .await?;
                exec(
                    &tx,
                    "DELETE FROM push_delivered WHERE device_id = ?",
                    vec![id.into()],
                )
                .await?;
            }
        }
        exec(
            &tx,
            &format!(
                "INSERT INTO devices ({DEVICE_COLS}, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (token) DO UPDATE SET user_id = excluded.user_id, \
                 platform = excluded.platform, app_version = excluded.app_version, \
                 locale = excluded.locale, data_only = excluded.data_only, \
                 family_id = excluded.family_id, created_at = excluded.created_at, \
                 updated_at = excluded.updated_at"
            ),
            vec![
                device.id.into(),
                device.user_id.into(),
                device.platform.as_str().into(),
                device.token.as_str().into(),
                device.app_version.clone().into(),
                device.locale.clone().into(),
                device.data_only.into(),
                device.family_id.into(),
                device.created_at.into(),
                device.created_at.into(),
            ],
        )
        .await?;
        let stored = rows(
            &tx,
            &format!("SELECT {DEVICE_COLS} FROM devices WHERE token = ?"),
            vec![device.token.as_str().into()],
        )
        .await?;
        tx.commit().await.map_err(db_err)?;
        stored
            .first()
            .map(device_row)
            .unwrap_or_else(|| Err(DomainError::Internal("registered device not found".into())))
    }

    async fn find(&self, id: Uuid) -> DomainResult<Option<Device>> {
        let db = self.store.connection();
        rows(
            db,
            &format!("SELECT {DEVICE_COLS} FROM devices WHERE id = ?"),
            vec![id.into()],
        )
        .await?
        .first()
        .map(device_row)
        .transpose()
    }

    async fn of_users(&self, users: &[Uuid]) -> DomainResult<Vec<Device>> {
        let db = self.store.connection();
        let mut found = Vec::new();
        for chunk in users.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(", ");
            for row in rows(
                db,
                &format!(
                    "SELECT {DEVICE_COLS} FROM devices WHERE user_id IN ({marks}) ORDER BY created_at, id"
                ),
                chunk.iter().map(|id| (*id).into()).collect(),
            )
            .await?
            .iter()
            {
                found.push(device_row(row)?);
            }
        }
        Ok(found)
    }

    async fn remove(&self, user_id: Uuid, id: Uuid) -> DomainResult<bool> {
        let tx = self.store.connection().begin().await.map_err(db_err)?;
        let owned = rows(
            &tx,
            "SELECT id FROM devices WHERE id = ? AND user_id = ?",
            vec![id.into(), user_id.into()],
        )
        .await?;
        let removed = if owned.is_empty() {
            0
        } else {
            forget_device(&tx, id).await?
        };
        tx.commit().await.map_err(db_err)?;
        Ok(removed > 0)
    }

    async fn remove_token(&self, token: &str) -> DomainResult<bool> {
        Ok(self.forget_where("token = ?", token.into()).await? > 0)
    }

    async fn remove_family(&self, family_id: Uuid) -> DomainResult<u64> {
        self.forget_where("family_id = ?", family_id.into()).await
    }
}

const OUTBOX_COLS: &str = "device_id, room_id, user_id, message_id, seq, first_seq, count, \
     mentioned, latest_ms, attempts, sent_seq, claim";

fn entry_row(r: &QueryResult) -> DomainResult<OutboxEntry> {
    let attempts: i32 = get(r, "attempts")?;
    let claim: Option<Uuid> = get(r, "claim")?;
    Ok(OutboxEntry {
        device_id: get(r, "device_id")?,
        room_id: get(r, "room_id")?,
        user_id: get(r, "user_id")?,
        message_id: get(r, "message_id")?,
        seq: get(r, "seq")?,
        first_seq: get(r, "first_seq")?,
        count: get(r, "count")?,
        mentioned: get(r, "mentioned")?,
        latest_ms: get(r, "latest_ms")?,
        attempts: u32::try_from(attempts).unwrap_or(0),
        sent_seq: get(r, "sent_seq")?,
        claim: claim.ok_or_else(|| DomainError::Internal("claimed entry without claim".into()))?,
    })
}

#[derive(Debug, Clone)]
pub struct SqlPush {
    store: Store,
}

impl SqlPush {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

/// The entry's key and its worker's claim, for the `WHERE` of a worker's write.
fn claimed(entry: &OutboxEntry) -> [Value; 3] {
    [
        entry.device_id.into(),
        entry.room_id.as_str().into(),
        entry.claim.into(),
    ]
}

#[async_trait]
impl PushRepository for SqlPush {
    async fn prefs(&self, user_id: Uuid) -> DomainResult<PushPrefs> {
        let found = rows(
            self.store.connection(),
            "SELECT previews, mentions_when_muted FROM push_prefs WHERE user_id = ?",
            vec![user_id.into()],
        )
        .await?;
        match found.first() {
            None => Ok(PushPrefs::default()),
            Some(row) => Ok(PushPrefs {
                previews: get(row, "previews")?,
                mentions_when_muted: get(row, "mentions_when_muted")?,
            }),
        }
    }

    async fn set_prefs(&self, user_id: Uuid, prefs: PushPrefs) -> DomainResult<()> {
        exec(
            self.store.connection(),
            "INSERT INTO push_prefs (user_id, previews, mentions_when_muted) VALUES (?, ?, ?) \
             ON CONFLICT (user_id) DO UPDATE SET previews = excluded.previews, \
             mentions_when_muted = excluded.mentions_when_muted",
            vec![
                user_id.into(),
                prefs.previews.into(),
                prefs.mentions_when_muted.into(),
            ],
        )
        .await
        .map(|_| ())
    }

    async fn mute(&self, user_id: Uuid, room_id: &str, mute: Mute) -> DomainResult<()> {
        exec(
            self.store.connection(),
            "INSERT INTO room_mutes (user_id, room_id, until_ms) VALUES (?, ?, ?) \
             ON CONFLICT (user_id, room_id) DO UPDATE SET until_ms = excluded.until_ms",
            vec![
                user_id.into(),
                room_id.into(),
                mute.until.map(|at| at.timestamp_millis()).into(),
            ],
        )
        .await
        .map(|_| ())
    }

    async fn unmute(&self, user_id: Uuid, room_id: &str) -> DomainResult<bool> {
        Ok(exec(
            self.store.connection(),
            "DELETE FROM room_mutes WHERE user_id = ? AND room_id = ?",
            vec![user_id.into(), room_id.into()],
        )
        .await?
            > 0)
    }

    async fn mute_of(&self, user_id: Uuid, room_id: &str) -> DomainResult<Option<Mute>> {
        rows(
            self.store.connection(),
            "SELECT until_ms FROM room_mutes WHERE user_id = ? AND room_id = ?",
            vec![user_id.into(), room_id.into()],
        )
        .await?
        .first()
        .map(mute_row)
        .transpose()
    }

    async fn mutes_in(&self, room_id: &str) -> DomainResult<Vec<(Uuid, Mute)>> {
        rows(
            self.store.connection(),
            "SELECT user_id, until_ms FROM room_mutes WHERE room_id = ?",
            vec![room_id.into()],
        )
        .await?
        .iter()
        .map(|row| Ok((get(row, "user_id")?, mute_row(row)?)))
        .collect()
    }

    async fn record_delivered(
        &self,
        user_id: Uuid,
        device: Option<Uuid>,
        room_id: &str,
        seq: i64,
    ) -> DomainResult<()> {
        exec(
            self.store.connection(),
            "INSERT INTO push_delivered (user_id, room_id, device_id, seq) \
             SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM devices WHERE user_id = ?) \
             ON CONFLICT (user_id, room_id, device_id) DO UPDATE SET seq = \
             CASE WHEN excluded.seq > push_delivered.seq THEN excluded.seq ELSE push_delivered.seq END",
            vec![
                user_id.into(),
                room_id.into(),
                device.unwrap_or(Uuid::nil()).into(),
                seq.into(),
                user_id.into(),
            ],
        )
        .await
        .map(|_| ())
    }

    async fn delivered(&self, user_id: Uuid, device: Uuid, room_id: &str) -> DomainResult<i64> {
        let found = rows(
            self.store.connection(),
            "SELECT MAX(seq) AS seq FROM push_delivered \
             WHERE user_id = ? AND room_id = ? AND device_id IN (?, ?)",
            vec![
                user_id.into(),
                room_id.into(),
                device.into(),
                Uuid::nil().into(),
            ],
        )
        .await?;
        Ok(match found.first() {
            Some(row) => get::<Option<i64>>(row, "seq")?.unwrap_or(0),
            None => 0,
        })
    }

    async fn enqueue(&self, planned: &Planned) -> DomainResult<()> {
        exec(
            self.store.connection(),
            &format!(
                "INSERT INTO push_outbox ({OUTBOX_COLS}, state, due_ms, quiet_until_ms, claimed_until_ms) \
                 SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, NULL, 'pending', ?, 0, 0 \
                 WHERE EXISTS (SELECT 1 FROM devices WHERE id = ? AND user_id = ?) \
                 ON CONFLICT (device_id, room_id) DO UPDATE SET \
                 due_ms = CASE WHEN {PENDING} THEN push_outbox.due_ms \
                   WHEN push_outbox.quiet_until_ms > excluded.due_ms THEN push_outbox.quiet_until_ms \
                   ELSE excluded.due_ms END, \
                 first_seq = CASE WHEN NOT ({PENDING}) OR excluded.first_seq < push_outbox.first_seq \
                   THEN excluded.first_seq ELSE push_outbox.first_seq END, \
                 count = CASE WHEN {PENDING} THEN push_outbox.count + excluded.count \
                   ELSE excluded.count END, \
                 mentioned = CASE WHEN {PENDING} THEN (push_outbox.mentioned OR excluded.mentioned) \
                   ELSE excluded.mentioned END, \
                 attempts = CASE WHEN {PENDING} THEN push_outbox.attempts ELSE 0 END, \
                 message_id = CASE WHEN excluded.seq > push_outbox.seq THEN excluded.message_id \
                   ELSE push_outbox.message_id END, \
                 seq = CASE WHEN excluded.seq > push_outbox.seq THEN excluded.seq ELSE push_outbox.seq END, \
                 latest_ms = excluded.latest_ms, \
                 user_id = excluded.user_id, \
                 state = 'pending'"
            ),
            vec![
                planned.device_id.into(),
                planned.room_id.as_str().into(),
                planned.user_id.into(),
                planned.message_id.into(),
                planned.seq.into(),
                planned.first_seq.into(),
                planned.count.into(),
                planned.mentioned.into(),
                planned.at_ms.into(),
                planned.due_ms.into(),
                planned.device_id.into(),
                planned.user_id.into(),
            ],
        )
        .await
        .map(|_| ())
    }

    async fn claim_due(
        &self,
        now_ms: i64,
        claim: Uuid,
        lease_until_ms: i64,
        limit: u32,
    ) -> DomainResult<Vec<OutboxEntry>> {
        let db = self.store.connection();
        let lock = match db.get_database_backend() {
            DbBackend::Postgres => "FOR UPDATE SKIP LOCKED",
            _ => "",
        };
        rows(
            db,
            &format!(
                "UPDATE push_outbox SET claim = ?, claimed_until_ms = ? \
                 WHERE (device_id, room_id) IN (SELECT device_id, room_id FROM push_outbox \
                   WHERE state = 'pending' AND due_ms <= ? AND claimed_until_ms <= ? \
                   ORDER BY due_ms LIMIT ? {lock}) \
                 RETURNING {OUTBOX_COLS}"
            ),
            vec![
                claim.into(),
                lease_until_ms.into(),
                now_ms.into(),
                now_ms.into(),
                i64::from(limit).into(),
            ],
        )
        .await?
        .iter()
        .map(entry_row)
        .collect()
    }

    async fn sent(&self, entry: &OutboxEntry, quiet_until_ms: i64) -> DomainResult<()> {
        let mut values = vec![
            entry.seq.into(),
            quiet_until_ms.into(),
            entry.count.into(),
            entry.count.into(),
            entry.seq.into(),
            quiet_until_ms.into(),
            entry.seq.into(),
        ];
        values.extend(claimed(entry));
        exec(
            self.store.connection(),
            "UPDATE push_outbox SET sent_seq = ?, quiet_until_ms = ?, claim = NULL, \
             claimed_until_ms = 0, attempts = 0, \
             count = CASE WHEN count > ? THEN count - ? ELSE 0 END, \
             first_seq = ? + 1, due_ms = ?, \
             state = CASE WHEN seq > ? THEN 'pending' ELSE 'idle' END \
             WHERE device_id = ? AND room_id = ? AND claim = ?",
            values,
        )
        .await
        .map(|_| ())
    }

    async fn skipped(&self, entry: &OutboxEntry, next_due_ms: i64) -> DomainResult<()> {
        let mut values = vec![
            entry.count.into(),
            entry.count.into(),
            entry.seq.into(),
            entry.seq.into(),
            next_due_ms.into(),
            entry.seq.into(),
        ];
        values.extend(claimed(entry));
        exec(
            self.store.connection(),
            "UPDATE push_outbox SET claim = NULL, claimed_until_ms = 0, attempts = 0, \
             count = CASE WHEN count > ? THEN count - ? ELSE 0 END, \
             first_seq = ? + 1, \
             due_ms = CASE WHEN seq > ? THEN ? ELSE due_ms END, \
             state = CASE WHEN seq > ? THEN 'pending' ELSE 'idle' END \
             WHERE device_id = ? AND room_id = ? AND claim = ?",
            values,
        )
        .await
        .map(|_| ())
    }

    async fn retry(
        &self,
        entry: &OutboxEntry,
        due_ms: i64,
        first_seq: i64,
        attempts: u32,
    ) -> DomainResult<()> {
        let mut values = vec![
            due_ms.into(),
            first_seq.into(),
            i32::try_from(attempts).unwrap_or(i32::MAX).into(),
        ];
        values.extend(claimed(entry));
        exec(
            self.store.connection(),
            "UPDATE push_outbox SET due_ms = ?, first_seq = ?, attempts = ?, claim = NULL, \
             claimed_until_ms = 0 WHERE device_id = ? AND room_id = ? AND claim = ?",
            values,
        )
        .await
        .map(|_| ())
    }
}

/// "the row is pending", as the ON CONFLICT arms of `enqueue` see it.
const PENDING: &str = "push_outbox.state = 'pending'";

fn mute_row(row: &QueryResult) -> DomainResult<Mute> {
    let until: Option<i64> = get(row, "until_ms")?;
    Ok(Mute {
        until: until.and_then(chrono::DateTime::from_timestamp_millis),
    })
}
