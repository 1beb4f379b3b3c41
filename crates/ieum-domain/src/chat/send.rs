//! Sending: checks, mentions, store, then publish.

use uuid::Uuid;

use crate::error::DomainResult;
use chrono::Duration;

use crate::attachment::{Attachment, attachment_in_use};
use crate::attachments::Attached;
use crate::error::DomainError;
use crate::hub::{EventPayload, RoomEvent};
use crate::message::{Appended, Message, MessageFile, MessageKind, NewMessage, SendMessage};
use crate::room::RoomKind;
use crate::rooms::Entry;

use super::{ChatService, Sender};

/// How a send took its attachment. One lives for one send: the size of
/// the larger variant costs nothing.
#[allow(clippy::large_enum_variant)]
enum Claim {
    Taken(Attachment),
    /// The attachment went with this earlier send of the same message.
    Retry(Message),
}

impl ChatService {
    /// Checks the sender may write, stores the message (its seq assigned in the
    /// storing transaction), then publishes it. A retry with the same client
    /// message id returns the stored message and stores nothing. Counted in
    /// `ieum_sends_total` by result (`ok`, `duplicate` or the error code).
    pub async fn send(
        &self,
        sender: &Sender,
        room_id: &str,
        entry: Entry,
        req: SendMessage,
    ) -> DomainResult<Appended> {
        let result = self.store_and_publish(sender, room_id, entry, req).await;
        match &result {
            Ok(a) if !a.duplicate => self.sent.increment(1),
            Ok(_) => metrics::counter!("ieum_sends_total", "result" => "duplicate").increment(1),
            Err(e) => metrics::counter!("ieum_sends_total", "result" => e.code()).increment(1),
        }
        result
    }

    async fn store_and_publish(
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
            .sender_kind(&sender.principal(), room_id, entry)
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
        let id = Uuid::now_v7();
        let attachment = match req.attachment_id {
            None => None,
            Some(attachment_id) => {
                match self
                    .claim_attachment(sender, room_id, attachment_id, (id, kind), &client_msg_id)
                    .await?
                {
                    Claim::Taken(attachment) => Some(attachment),
                    Claim::Retry(message) => {
                        return Ok(Appended {
                            message,
                            duplicate: true,
                        });
                    }
                }
            }
        };
        let appended = self
            .messages
            .append(NewMessage {
                parent_id: req.parent_id,
                expires_at,
                mentions,
                id,
                room_id: room_id.to_owned(),
                sender_id: sender.id,
                sender_username: sender.username.clone(),
                sender_name: sender.display_name.clone(),
                sender_image: sender.image.clone(),
                kind,
                content,
                image_url,
                client_msg_id: client_msg_id.clone(),
                created_at: now,
            })
            .await;
        let mut appended = match (appended, &attachment) {
            (Ok(appended), _) => appended,
            (Err(error), Some(attachment)) => {
                self.release_attachment(attachment.id, id).await;
                return Err(error);
            }
            (Err(error), None) => return Err(error),
        };
        if let Some(attachment) = &attachment {
            if appended.message.id == id {
                appended.message.file = Some(MessageFile::from(attachment));
            } else {
                // A retry of an earlier send (same client message id) that
                // carried another file: this claim is not needed.
                self.release_attachment(attachment.id, id).await;
            }
        }
        if expires_at.is_some() {
            self.expiry_wake.notify_one();
        }
        // Publishing a duplicate again is harmless (feeds drop seqs they delivered)
        // and repairs a crash between storing and publishing.
        self.hub
            .publish(RoomEvent::message(appended.message.clone()))
            .await;
        if !appended.duplicate {
            self.plan_push(&appended.message);
        }
        Ok(appended)
    }

    /// Queues the message for push planning: the sender's answer does not
    /// wait for it. A crash in between loses the pushes, never the message.
    fn plan_push(&self, message: &Message) {
        if let Some(push) = &self.push {
            push.plan(message);
        }
    }

    /// Takes the attachment for message `id`. A retry of a send that took it
    /// already (same sender, same client message id) answers that message.
    async fn claim_attachment(
        &self,
        sender: &Sender,
        room_id: &str,
        attachment_id: Uuid,
        (id, kind): (Uuid, MessageKind),
        client_msg_id: &Option<String>,
    ) -> DomainResult<Claim> {
        let Some(attachments) = &self.attachments else {
            return Err(DomainError::invalid(
                "attachments_unavailable",
                "this server takes no attachments",
            ));
        };
        let who = sender.principal();
        match attachments
            .attach(&who, room_id, attachment_id, id, kind)
            .await?
        {
            Attached::Now(attachment) => Ok(Claim::Taken(attachment)),
            Attached::AlreadyIn(Some(message_id)) => match self.messages.find(message_id).await? {
                Some(message)
                    if message.sender_id == sender.id
                        && client_msg_id.is_some()
                        && message.client_msg_id == *client_msg_id =>
                {
                    Ok(Claim::Retry(message))
                }
                _ => Err(attachment_in_use()),
            },
            Attached::AlreadyIn(None) => Err(attachment_in_use()),
        }
    }

    async fn release_attachment(&self, attachment_id: Uuid, message_id: Uuid) {
        if let Some(attachments) = &self.attachments
            && let Err(error) = attachments.release(attachment_id, message_id).await
        {
            tracing::warn!(attachment = %attachment_id, error = %error, "releasing an attachment failed");
        }
    }

    /// Tells the room that an IMAGE or FILE message's file changed (its scan
    /// ended, it expired). An attachment no message took tells no one.
    pub async fn file_changed(&self, attachment: &Attachment) -> DomainResult<()> {
        let Some(message_id) = attachment.message_id else {
            return Ok(());
        };
        let Some(message) = self.messages.find(message_id).await? else {
            return Ok(());
        };
        self.hub
            .publish(RoomEvent::ephemeral(
                message.room_id.clone(),
                EventPayload::FileUpdated {
                    message_id,
                    seq: message.seq,
                    file: Box::new(MessageFile::from(attachment)),
                },
                None,
            ))
            .await;
        Ok(())
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
