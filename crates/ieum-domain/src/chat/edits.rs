//! Edits, deletes and the expiry of self-destructing messages.

use std::sync::Arc;

use uuid::Uuid;

use crate::auth::Principal;
use crate::error::DomainResult;
use chrono::{DateTime, Utc};

use crate::error::DomainError;
use crate::hub::{EventPayload, RoomEvent};
use crate::message::{Message, MessageKind};

use super::ChatService;

impl ChatService {
    /// The author edits within the edit window; the old text is kept.
    pub async fn edit(
        &self,
        who: &Principal,
        room_id: &str,
        id: Uuid,
        content: String,
    ) -> DomainResult<Message> {
        self.rooms.require_member(who.user_id, room_id).await?;
        let m = self.live_message(room_id, id).await?;
        if m.sender_id != who.user_id {
            return Err(DomainError::forbidden(
                "not_author",
                "only the author may edit",
            ));
        }
        if !matches!(
            m.kind,
            MessageKind::Text | MessageKind::Thread | MessageKind::Temp
        ) {
            return Err(DomainError::invalid(
                "not_editable",
                "only text messages can be edited",
            ));
        }
        let now = self.clock.now();
        if now - m.created_at > self.policy.edit_window {
            return Err(DomainError::forbidden(
                "edit_window_passed",
                "the time to edit this message has passed",
            ));
        }
        self.policy.check_content(&content)?;
        let edited = self
            .messages
            .edit(id, content, now)
            .await?
            .ok_or_else(crate::error::named::message_not_found)?;
        self.hub
            .publish(RoomEvent::ephemeral(
                room_id,
                EventPayload::Edited {
                    message_id: id,
                    seq: edited.seq,
                    content: edited.content.clone(),
                    edited_at: now,
                },
                None,
            ))
            .await;
        Ok(edited)
    }

    pub async fn edit_history(
        &self,
        who: &Principal,
        room_id: &str,
        id: Uuid,
    ) -> DomainResult<Vec<(String, DateTime<Utc>)>> {
        self.rooms.require_member(who.user_id, room_id).await?;
        self.live_message(room_id, id).await?;
        self.messages.edits(id).await
    }

    /// The author deletes within the delete window; admins any time. A
    /// tombstone stays in the seq order.
    pub async fn delete(&self, who: &Principal, room_id: &str, id: Uuid) -> DomainResult<()> {
        let me = self.rooms.require_member(who.user_id, room_id).await?;
        let m = self.live_message(room_id, id).await?;
        let now = self.clock.now();
        let is_admin = self.rooms.acts_as_admin(room_id, me.role).await?;
        let author_in_time =
            m.sender_id == who.user_id && now - m.created_at <= self.policy.delete_window;
        if !is_admin && !author_in_time {
            return Err(DomainError::forbidden(
                if m.sender_id == who.user_id {
                    "delete_window_passed"
                } else {
                    "not_author"
                },
                "you may not delete this message",
            ));
        }
        self.tombstone(&m, false, now).await
    }

    /// Staff remove a message anywhere (issue 20): a tombstone, a SYSTEM
    /// notice in a group room, and an entry in the audit log.
    pub async fn moderate_delete(
        &self,
        moderation: &crate::moderation::ModerationService,
        actor: &crate::moderation::Actor,
        id: Uuid,
        reason: &str,
    ) -> DomainResult<Message> {
        moderation.require_staff(actor).await?;
        let reason = crate::moderation::check_reason(reason)?;
        let m = self
            .messages
            .find(id)
            .await?
            .filter(|m| !m.deleted)
            .ok_or_else(crate::error::named::message_not_found)?;
        self.tombstone(&m, false, self.clock.now()).await?;
        if let Some(staff) = actor.user_id {
            self.rooms
                .notice(&m.room_id, staff, |_| {
                    "A moderator removed a message".to_owned()
                })
                .await;
        }
        moderation
            .record(
                actor,
                "message.delete",
                ("message", id.to_string()),
                Some(reason),
            )
            .await?;
        Ok(m)
    }

    async fn tombstone(&self, m: &Message, expired: bool, now: DateTime<Utc>) -> DomainResult<()> {
        if self.messages.tombstone(m.id, now).await?.is_some() {
            // A deleted photo must not stay downloadable through its link.
            // A failure is logged: the deletion itself stands and is told.
            if let (Some(file), Some(attachments)) = (&m.file, &self.attachments)
                && let Err(error) = attachments.delete_with_message(file.id).await
            {
                tracing::warn!(message = %m.id, attachment = %file.id, error = %error, "deleting a deleted message's file failed");
            }
            self.hub
                .publish(RoomEvent::ephemeral(
                    m.room_id.clone(),
                    EventPayload::Deleted {
                        message_id: m.id,
                        seq: m.seq,
                        expired,
                    },
                    None,
                ))
                .await;
        }
        Ok(())
    }

    /// Tombstones every self-destructing message whose time has come.
    pub async fn expire_due(&self) -> DomainResult<usize> {
        let now = self.clock.now();
        let due = self.messages.due_expired(now, 500).await?;
        for m in &due {
            self.tombstone(m, true, now).await?;
        }
        Ok(due.len())
    }

    /// Runs for the process's life: expires messages when due. The next due time
    /// is read from the store, so expiries survive restarts.
    pub async fn run_expiry(self: Arc<Self>) {
        loop {
            if let Err(e) = self.expire_due().await {
                tracing::warn!(error = %e, "expiring messages failed");
            }
            let wait = match self.messages.next_expiry().await {
                Ok(Some(at)) => (at - self.clock.now()).to_std().unwrap_or_default(),
                _ => std::time::Duration::from_secs(60),
            }
            .min(std::time::Duration::from_secs(60));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.expiry_wake.notified() => {}
            }
        }
    }
}
