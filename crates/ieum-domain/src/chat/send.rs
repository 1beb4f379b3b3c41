//! Sending: checks, mentions, store, then publish.

use uuid::Uuid;

use crate::error::DomainResult;
use chrono::Duration;

use crate::error::DomainError;
use crate::hub::RoomEvent;
use crate::message::{Appended, MessageKind, NewMessage, SendMessage};
use crate::room::RoomKind;
use crate::rooms::Entry;

use super::{ChatService, Sender};

impl ChatService {
    /// Checks the sender may write, stores the message (its seq assigned in the
    /// storing transaction), then publishes it. A retry with the same client
    /// message id returns the stored message and stores nothing.
    pub async fn send(
        &self,
        sender: &Sender,
        room_id: &str,
        entry: Entry,
        req: SendMessage,
    ) -> DomainResult<Appended> {
        let (mut kind, content, image_url, client_msg_id) = self.policy.check(&req)?;
        self.limiter
            .reserve(&self.limiter.limits().send_user, &sender.id.to_string())
            .await?;
        let room_kind = self
            .rooms
            .member_kind(&sender.principal(), room_id, entry)
            .await?;
        if room_kind == RoomKind::Direct {
            self.check_blocks(sender.id, room_id).await?;
        }
        let now = self.clock.now();
        // A thread reply: the parent is a live, top-level message of this room.
        if let Some(parent) = req.parent_id {
            let p = self.messages.find(parent).await?;
            match p {
                Some(p) if p.room_id == room_id && !p.deleted && p.parent_id.is_none() => {}
                _ => {
                    return Err(DomainError::invalid(
                        "invalid_parent",
                        "a reply needs a live top-level message of this room",
                    ));
                }
            }
            kind = MessageKind::Thread;
        }
        let expires_at = match req.ttl_seconds {
            Some(ttl) if ttl == 0 || ttl > self.policy.max_ttl_secs => {
                return Err(DomainError::invalid(
                    "invalid_ttl",
                    format!("ttlSeconds must be 1 to {}", self.policy.max_ttl_secs),
                ));
            }
            Some(ttl) => {
                kind = MessageKind::Temp;
                Some(now + Duration::seconds(i64::from(ttl)))
            }
            None if kind == MessageKind::Temp => {
                return Err(DomainError::invalid(
                    "invalid_ttl",
                    "TEMP messages need ttlSeconds",
                ));
            }
            None => None,
        };
        let mentions = self.resolve_mentions(room_id, &content).await?;
        let appended = self
            .messages
            .append(NewMessage {
                parent_id: req.parent_id,
                expires_at,
                mentions,
                id: Uuid::now_v7(),
                room_id: room_id.to_owned(),
                sender_id: sender.id,
                sender_username: sender.username.clone(),
                sender_name: sender.display_name.clone(),
                sender_image: sender.image.clone(),
                kind,
                content,
                image_url,
                client_msg_id,
                created_at: now,
            })
            .await?;
        if expires_at.is_some() {
            self.expiry_wake.notify_one();
        }
        // Publishing a duplicate again is harmless (feeds drop seqs they delivered)
        // and repairs a crash between storing and publishing.
        self.hub
            .publish(RoomEvent::message(appended.message.clone()))
            .await;
        Ok(appended)
    }

    /// `@username` mentions of the room's members.
    async fn resolve_mentions(&self, room_id: &str, content: &str) -> DomainResult<Vec<Uuid>> {
        if !content.contains('@') {
            return Ok(Vec::new());
        }
        let names = crate::message::extract_mentions(content);
        if names.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .room_repo
            .members(room_id)
            .await?
            .into_iter()
            .filter(|m| names.contains(&m.username))
            .map(|m| m.user_id)
            .collect())
    }

    /// In a 1:1 room, neither may write when one blocked the other.
    async fn check_blocks(&self, who: Uuid, room_id: &str) -> DomainResult<()> {
        for m in self.room_repo.members(room_id).await? {
            if m.user_id != who && self.social.blocked_between(who, m.user_id).await? {
                return Err(crate::error::named::blocked());
            }
        }
        Ok(())
    }
}
