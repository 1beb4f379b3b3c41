//! Stored messages into the outbox: for each recipient's device, the
//! messages it may be pushed (not the member's own, none from someone
//! either blocked, in a muted room only mentions when the member said so).
//!
//! Sends hand messages to a queue ([`PushService::plan`]); one planner task
//! per node takes what piled up, room by room, and plans each room's batch
//! with two queries and one outbox write per device, however many messages
//! the batch holds. A burst in a busy room thus costs the database little,
//! and the planner never holds more than one connection of the pool the
//! message path needs.

use std::collections::HashMap;

use uuid::Uuid;

use crate::error::DomainResult;
use crate::message::{Message, MessageKind};

use super::{Planned, PushService, millis};

/// Messages waiting to be planned; past this a message gets no push (it is
/// stored all the same) and a warning says so.
pub const PLAN_QUEUE: usize = 10_000;
/// Messages one planner pass takes.
const PLAN_BATCH: usize = 1_000;

impl PushService {
    /// Queues a message just stored for planning; never waits.
    pub fn plan(&self, message: &Message) {
        if message.kind == MessageKind::System || message.deleted {
            return;
        }
        if self.plans.try_send(message.clone()).is_err() {
            tracing::warn!(room = %message.room_id, seq = message.seq, "push plan queue full; this message is pushed to no one");
        }
    }

    /// Plans what the queue holds until the task is stopped.
    pub async fn run_planner(self: std::sync::Arc<Self>) {
        let Some(mut queue) = self.queue.lock().await.take() else {
            tracing::error!("a second push planner was started; it stops");
            return;
        };
        while let Some(first) = queue.recv().await {
            let mut batch = vec![first];
            while batch.len() < PLAN_BATCH {
                match queue.try_recv() {
                    Ok(message) => batch.push(message),
                    Err(_) => break,
                }
            }
            let mut rooms: HashMap<String, Vec<Message>> = HashMap::new();
            for message in batch {
                rooms
                    .entry(message.room_id.clone())
                    .or_default()
                    .push(message);
            }
            for (room_id, messages) in rooms {
                if let Err(error) = self.plan_room(&room_id, &messages).await {
                    tracing::warn!(room = %room_id, messages = messages.len(), error = %error, "planning pushes failed");
                }
            }
        }
    }

    /// Plans one message at once (tests, and callers without a planner).
    pub async fn on_message(&self, message: &Message) -> DomainResult<()> {
        if message.kind == MessageKind::System || message.deleted {
            return Ok(());
        }
        self.plan_room(&message.room_id, std::slice::from_ref(message))
            .await
    }

    async fn plan_room(&self, room_id: &str, messages: &[Message]) -> DomainResult<()> {
        let recipients: Vec<Uuid> = self
            .rooms
            .members(room_id)
            .await?
            .into_iter()
            .map(|m| m.user_id)
            .filter(|user| messages.iter().any(|m| m.sender_id != *user))
            .collect();
        if recipients.is_empty() {
            return Ok(());
        }
        let devices = self.devices.of_users(&recipients).await?;
        if devices.is_empty() {
            return Ok(());
        }
        let now = self.clock.now();
        let mutes: HashMap<_, _> = self.outbox.mutes_in(room_id).await?.into_iter().collect();
        let at_ms = now.timestamp_millis();
        let due_ms = at_ms.saturating_add(millis(self.policy.grace));
        let mut pushed: HashMap<Uuid, Option<Planned>> = HashMap::new();
        for device in devices {
            let user = device.user_id;
            if let std::collections::hash_map::Entry::Vacant(slot) = pushed.entry(user) {
                let muted = mutes.get(&user).is_some_and(|m| m.active(now));
                slot.insert(self.plan_for(user, messages, muted).await?);
            }
            let Some(Some(plan)) = pushed.get(&user) else {
                continue;
            };
            self.outbox
                .enqueue(&Planned {
                    device_id: device.id,
                    at_ms,
                    due_ms,
                    ..plan.clone()
                })
                .await?;
        }
        Ok(())
    }

    /// What of `messages` one member may be pushed, as a plan without its
    /// device: their count, the latest, whether one mentions them.
    async fn plan_for(
        &self,
        user: Uuid,
        messages: &[Message],
        muted: bool,
    ) -> DomainResult<Option<Planned>> {
        let any_mention = messages
            .iter()
            .any(|m| m.sender_id != user && m.mentions.contains(&user));
        let mentions_pass =
            muted && any_mention && self.outbox.prefs(user).await?.mentions_when_muted;
        let mut blocked: HashMap<Uuid, bool> = HashMap::new();
        let mut kept: Vec<&Message> = Vec::new();
        for message in messages {
            if message.sender_id == user {
                continue;
            }
            let mentioned = message.mentions.contains(&user);
            if muted && !(mentioned && mentions_pass) {
                continue;
            }
            let sender = message.sender_id;
            let is_blocked = match blocked.get(&sender) {
                Some(b) => *b,
                None => {
                    let b = self.social.blocked_between(user, sender).await?;
                    blocked.insert(sender, b);
                    b
                }
            };
            if !is_blocked {
                kept.push(message);
            }
        }
        let Some(latest) = kept.iter().max_by_key(|m| m.seq) else {
            return Ok(None);
        };
        Ok(Some(Planned {
            device_id: Uuid::nil(),
            user_id: user,
            room_id: latest.room_id.clone(),
            message_id: latest.id,
            seq: latest.seq,
            first_seq: kept.iter().map(|m| m.seq).min().unwrap_or(latest.seq),
            count: kept.len() as i64,
            mentioned: kept.iter().any(|m| m.mentions.contains(&user)),
            at_ms: 0,
            due_ms: 0,
        }))
    }
}
