//! A stored message into the outbox: one pending entry per recipient's
//! device, unless the member muted the room or blocked the sender.

use std::collections::HashMap;

use crate::error::DomainResult;
use crate::message::{Message, MessageKind};

use super::{Planned, PushService, millis};

impl PushService {
    /// Plans pushes for a message just stored. SYSTEM messages (joins,
    /// pins) push no one.
    pub async fn on_message(&self, message: &Message) -> DomainResult<()> {
        if message.kind == MessageKind::System || message.deleted {
            return Ok(());
        }
        let recipients: Vec<_> = self
            .rooms
            .members(&message.room_id)
            .await?
            .into_iter()
            .map(|m| m.user_id)
            .filter(|user| *user != message.sender_id)
            .collect();
        if recipients.is_empty() {
            return Ok(());
        }
        let devices = self.devices.of_users(&recipients).await?;
        if devices.is_empty() {
            return Ok(());
        }
        let now = self.clock.now();
        let mutes: HashMap<_, _> = self
            .outbox
            .mutes_in(&message.room_id)
            .await?
            .into_iter()
            .collect();
        let mut allowed = HashMap::new();
        let at_ms = now.timestamp_millis();
        let due_ms = at_ms.saturating_add(millis(self.policy.grace));
        for device in devices {
            let user = device.user_id;
            let mentioned = message.mentions.contains(&user);
            let push = match allowed.get(&user) {
                Some(push) => *push,
                None => {
                    let muted = mutes.get(&user).is_some_and(|m| m.active(now));
                    let push = self.may_push(message, user, muted, mentioned).await?;
                    allowed.insert(user, push);
                    push
                }
            };
            if !push {
                continue;
            }
            self.outbox
                .enqueue(&Planned {
                    device_id: device.id,
                    user_id: user,
                    room_id: message.room_id.clone(),
                    message_id: message.id,
                    seq: message.seq,
                    mentioned,
                    at_ms,
                    due_ms,
                })
                .await?;
        }
        Ok(())
    }

    /// The member's own rules: a mute (which a mention passes when they
    /// said so) and blocks.
    async fn may_push(
        &self,
        message: &Message,
        user: uuid::Uuid,
        muted: bool,
        mentioned: bool,
    ) -> DomainResult<bool> {
        if muted && !(mentioned && self.outbox.prefs(user).await?.mentions_when_muted) {
            return Ok(false);
        }
        Ok(!self.social.blocked_between(user, message.sender_id).await?)
    }
}
