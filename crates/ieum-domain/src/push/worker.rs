//! The outbox worker: claims due entries, decides with what is known by
//! now, sends, and files the gateway's answer. Any number of workers (one
//! per node) share the outbox; a claim holds for the lease, so an entry
//! whose node died mid-send is taken up again after it.

use std::sync::Arc;

use uuid::Uuid;

use crate::error::DomainResult;
use crate::room::Membership;

use super::content::Draft;
use super::{Device, Notification, OutboxEntry, PushOutcome, PushService, millis};

/// How many messages before a deleted latest one are looked at for one
/// still there to push.
const NEWEST_LIVE_LOOKBACK: i64 = 50;

/// The longest `Retry-After` honoured (a larger one is a mistake).
const MAX_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);

/// What a due entry comes to.
enum Decision {
    /// Nothing to send, and why (for the log).
    Skip(&'static str),
    /// The device is receiving but the latest message is younger than the
    /// grace period: look again then, from the first seq not yet received.
    Wait {
        due_ms: i64,
        first_seq: i64,
    },
    Send(Box<Notification>),
}

impl PushService {
    /// Works the outbox until the task is stopped.
    pub async fn run_worker(self: Arc<Self>) {
        loop {
            match self.run_due().await {
                Ok(taken) if taken >= self.policy.batch as usize => continue,
                Ok(_) => {}
                Err(error) => tracing::warn!(error = %error, "push round failed"),
            }
            tokio::time::sleep(self.policy.poll).await;
        }
    }

    /// One round: claims due entries and handles them side by side.
    /// Answers how many were claimed.
    pub async fn run_due(self: &Arc<Self>) -> DomainResult<usize> {
        let now_ms = self.now_ms();
        let claim = Uuid::new_v4();
        let lease_until = now_ms.saturating_add(millis(self.policy.lease));
        let entries = self
            .outbox
            .claim_due(now_ms, claim, lease_until, self.policy.batch)
            .await?;
        let taken = entries.len();
        let mut tasks = tokio::task::JoinSet::new();
        for entry in entries {
            let service = self.clone();
            // Done well inside the lease, or given up: past it another
            // worker may take the entry and send it again.
            let limit = service.policy.lease.mul_f64(0.75);
            tasks.spawn(async move {
                match tokio::time::timeout(limit, service.handle(&entry)).await {
                    Ok(Ok(())) => {}
                    // The claim lapses and another round takes it up.
                    Ok(Err(error)) => {
                        tracing::warn!(device = %entry.device_id, room = %entry.room_id, error = %error, "push failed");
                    }
                    Err(_) => {
                        tracing::warn!(device = %entry.device_id, room = %entry.room_id, "push took longer than its lease allows; retried later");
                    }
                }
            });
        }
        while tasks.join_next().await.is_some() {}
        Ok(taken)
    }

    async fn handle(&self, entry: &OutboxEntry) -> DomainResult<()> {
        let device = self
            .devices
            .find(entry.device_id)
            .await?
            .filter(|d| d.user_id == entry.user_id);
        let Some(device) = device else {
            // Gone, or moved to another account since: nothing of this
            // member's may reach it.
            return self.skip(entry).await;
        };
        if let Some(family) = device.family_id
            && self.tokens.family_revoked(family).await?
        {
            // Its session was logged out or revoked (a reused refresh token).
            tracing::debug!(device = %device.id, "device of a revoked session removed");
            return self
                .devices
                .remove(device.user_id, device.id)
                .await
                .map(|_| ());
        }
        match self.decide(entry, &device).await? {
            Decision::Skip(reason) => {
                tracing::debug!(device = %device.id, room = %entry.room_id, seq = entry.seq, reason, "no push");
                self.skip(entry).await
            }
            Decision::Wait { due_ms, first_seq } => {
                self.outbox
                    .retry(entry, due_ms, first_seq, entry.attempts)
                    .await
            }
            Decision::Send(notification) => self.send(entry, &device, &notification).await,
        }
    }

    async fn decide(&self, entry: &OutboxEntry, device: &Device) -> DomainResult<Decision> {
        if entry.seq <= entry.sent_seq {
            return Ok(Decision::Skip("sent already"));
        }
        let now = self.clock.now();
        let Some(message) = self.newest_live(entry, now).await? else {
            return Ok(Decision::Skip("messages deleted or expired"));
        };
        let member = self
            .rooms
            .membership(&entry.room_id, entry.user_id)
            .await?
            .filter(Membership::is_active);
        let Some(member) = member else {
            return Ok(Decision::Skip("no longer a member"));
        };
        if member.last_read_seq >= entry.seq {
            return Ok(Decision::Skip("read"));
        }
        let delivered = self
            .outbox
            .delivered(entry.user_id, device.id, &entry.room_id)
            .await?;
        if delivered >= entry.seq {
            return Ok(Decision::Skip("received"));
        }
        let settles = entry.latest_ms.saturating_add(millis(self.policy.grace));
        if now.timestamp_millis() < settles && delivered >= entry.first_seq {
            return Ok(Decision::Wait {
                due_ms: settles,
                first_seq: delivered + 1,
            });
        }
        let prefs = self.outbox.prefs(entry.user_id).await?;
        let muted = self
            .outbox
            .mute_of(entry.user_id, &entry.room_id)
            .await?
            .is_some_and(|m| m.active(now));
        if muted && !(entry.mentioned && prefs.mentions_when_muted) {
            return Ok(Decision::Skip("muted"));
        }
        if self
            .social
            .blocked_between(entry.user_id, message.sender_id)
            .await?
        {
            return Ok(Decision::Skip("blocked"));
        }
        let Some(room) = self.rooms.find(&entry.room_id).await? else {
            return Ok(Decision::Skip("room gone"));
        };
        let badge = self
            .rooms
            .rooms_of(entry.user_id)
            .await?
            .iter()
            .map(|r| r.unread_count)
            .sum();
        let notification = Draft {
            device,
            room: &room,
            message: &message,
            prefs,
            entry,
            badge,
        }
        .notification();
        Ok(Decision::Send(Box::new(notification)))
    }

    /// The newest message of the entry still there to push: the latest,
    /// or, when it was deleted or expired, the newest before it since the
    /// last push.
    async fn newest_live(
        &self,
        entry: &OutboxEntry,
        now: chrono::DateTime<chrono::Utc>,
    ) -> DomainResult<Option<crate::message::Message>> {
        let live = |m: &crate::message::Message| {
            !m.deleted
                && m.kind != crate::message::MessageKind::System
                && m.expires_at.is_none_or(|at| at > now)
        };
        if let Some(latest) = self.messages.find(entry.message_id).await?
            && live(&latest)
        {
            return Ok(Some(latest));
        }
        let span = (entry.seq - entry.first_seq + 1).clamp(1, NEWEST_LIVE_LOOKBACK);
        let page = self
            .messages
            .page(
                &entry.room_id,
                crate::message::HistoryQuery {
                    before: Some(entry.seq + 1),
                    after: Some((entry.first_seq - 1).max(entry.sent_seq)),
                    limit: span as u32,
                    skip_system: true,
                },
            )
            .await?;
        Ok(page
            .into_iter()
            .filter(|m| m.sender_id != entry.user_id && live(m))
            .max_by_key(|m| m.seq))
    }

    async fn send(
        &self,
        entry: &OutboxEntry,
        device: &Device,
        notification: &Notification,
    ) -> DomainResult<()> {
        let outcome = self.gateway.send(notification).await;
        let now_ms = self.now_ms();
        match outcome {
            PushOutcome::Sent => {
                tracing::debug!(device = %device.id, room = %entry.room_id, seq = entry.seq, "push sent");
                let quiet_until = now_ms.saturating_add(millis(self.policy.coalesce));
                self.outbox.sent(entry, quiet_until).await
            }
            PushOutcome::Retry { after } => {
                let attempts = entry.attempts + 1;
                if attempts >= self.policy.max_attempts {
                    tracing::warn!(device = %device.id, room = %entry.room_id, attempts, "push given up");
                    return self.skip(entry).await;
                }
                let wait = after
                    .map(|after| after.min(MAX_RETRY_AFTER))
                    .unwrap_or_else(|| self.backoff(attempts));
                tracing::debug!(device = %device.id, attempts, wait_ms = millis(wait), "push retried later");
                self.outbox
                    .retry(
                        entry,
                        now_ms.saturating_add(millis(wait)),
                        entry.first_seq,
                        attempts,
                    )
                    .await
            }
            PushOutcome::BadToken => {
                tracing::info!(device = %device.id, "push token refused; device removed");
                self.devices.remove_token(&device.token).await.map(|_| ())
            }
            PushOutcome::Rejected { reason } => {
                tracing::warn!(device = %device.id, room = %entry.room_id, reason, "push refused");
                self.skip(entry).await
            }
        }
    }

    /// Idles the entry; messages that came meanwhile get their own grace.
    async fn skip(&self, entry: &OutboxEntry) -> DomainResult<()> {
        let next_due = self.now_ms().saturating_add(millis(self.policy.grace));
        self.outbox.skipped(entry, next_due).await
    }

    /// The wait before retry number `attempts` (1, 2, ...): doubling from
    /// `retry_base`, at most `retry_max`.
    fn backoff(&self, attempts: u32) -> std::time::Duration {
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1));
        self.policy
            .retry_base
            .saturating_mul(factor)
            .min(self.policy.retry_max)
    }
}
