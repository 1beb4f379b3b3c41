//! Messaging use cases: send (stored, then published), history, subscribe with
//! gap-free resume.
//!
//! One type, [`ChatService`], its `impl` blocks spread by concern: `send.rs`,
//! `history.rs`, `subscribe.rs` (and resume replay), `receipts.rs` (reads,
//! deliveries, typing), `edits.rs` (edit, delete, expiry), `reactions.rs`,
//! `pins.rs`, `threads.rs`, `search.rs`. The types and the helpers several of
//! them share stay here.

mod edits;
mod history;
mod pins;
mod reactions;
mod receipts;
mod search;
mod send;
mod subscribe;
#[cfg(test)]
mod tests;
mod threads;

use std::sync::Arc;

use uuid::Uuid;

use crate::attachments::AttachmentService;
use crate::auth::Principal;
use crate::error::DomainResult;
use chrono::{DateTime, Utc};

use crate::hub::{Hub, Mailbox};
use crate::message::{Message, MessageKind, MessagePolicy, NewMessage};
use crate::ports::{Clock, MessageRepository, ReceiptRepository, RoomRepository, SocialRepository};
use crate::push::PushService;
use crate::rooms::{Entry, RoomService};
use crate::throttle::Limiter;
use crate::user::User;

/// Who sends, as messages show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub image: Option<String>,
}

impl From<&User> for Sender {
    fn from(u: &User) -> Self {
        Self {
            id: u.id,
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            image: u.profile_image_url.clone(),
        }
    }
}

impl Sender {
    /// A SYSTEM message of a room whose `actor` is this sender.
    pub fn system_message(&self, room_id: &str, content: String, at: DateTime<Utc>) -> NewMessage {
        NewMessage {
            parent_id: None,
            expires_at: None,
            mentions: Vec::new(),
            id: Uuid::now_v7(),
            room_id: room_id.to_owned(),
            sender_id: self.id,
            sender_username: self.username.clone(),
            sender_name: self.display_name.clone(),
            sender_image: self.image.clone(),
            kind: MessageKind::System,
            content,
            image_url: None,
            client_msg_id: None,
            created_at: at,
        }
    }

    pub fn principal(&self) -> Principal {
        Principal {
            user_id: self.id,
            username: self.username.clone(),
        }
    }
}

/// A subscription made: the feed delivers every seq above `live_after` to the
/// mailbox; a resuming client first reads `(resume_after, live_after]` with
/// [`ChatService::replay_page`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscribed {
    pub live_after: i64,
    /// A 1:1 room: deliveries to the other member count as "delivered".
    pub direct: bool,
    /// Where replay starts (after this seq), when the client asked to resume.
    pub resume_after: Option<i64>,
    /// True when more was missed than `max_resume`: replay starts later and the
    /// client should page history for the rest.
    pub truncated: bool,
}

/// A subscription asked for by a connection.
#[derive(Debug, Clone)]
pub struct SubscribeRequest {
    pub room_id: String,
    pub entry: Entry,
    pub subscription: Arc<str>,
    /// The wire shape the subscription speaks (opaque here).
    pub shape: u8,
    pub mailbox: Mailbox,
    /// Resume: replay every message after this seq first.
    pub resume_after: Option<i64>,
}

pub struct ChatService {
    rooms: Arc<RoomService>,
    room_repo: Arc<dyn RoomRepository>,
    messages: Arc<dyn MessageRepository>,
    receipts: Arc<dyn ReceiptRepository>,
    social: Arc<dyn SocialRepository>,
    hub: Arc<Hub>,
    clock: Arc<dyn Clock>,
    policy: MessagePolicy,
    expiry_wake: tokio::sync::Notify,
    limiter: Arc<Limiter>,
    /// IMAGE and FILE messages' uploads; `None`: sends with an attachment
    /// are refused.
    attachments: Option<Arc<AttachmentService>>,
    /// Plans pushes for each new message; `None`: no pushes.
    push: Option<Arc<PushService>>,
    /// `ieum_sends_total{result="ok"}`, the common case, its handle taken once.
    sent: metrics::Counter,
}

/// How long a typing indicator lasts unless renewed; clients renew at most
/// every [`TYPING_MIN_INTERVAL_MS`].
pub const TYPING_TTL_MS: i64 = 5000;
pub const TYPING_MIN_INTERVAL_MS: u64 = 1000;

/// A read receipt as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadReceipt {
    pub last_read_seq: i64,
    pub message_ids: Vec<Uuid>,
    pub read_at: DateTime<Utc>,
}

/// What a [`ChatService`] works with, by name.
pub struct ChatPorts {
    pub rooms: Arc<RoomService>,
    pub room_repo: Arc<dyn RoomRepository>,
    pub messages: Arc<dyn MessageRepository>,
    pub receipts: Arc<dyn ReceiptRepository>,
    pub social: Arc<dyn SocialRepository>,
    pub hub: Arc<Hub>,
    pub clock: Arc<dyn Clock>,
}

impl ChatService {
    pub fn new(ports: ChatPorts, policy: MessagePolicy) -> Self {
        let ChatPorts {
            rooms,
            room_repo,
            messages,
            receipts,
            social,
            hub,
            clock,
        } = ports;
        Self {
            rooms,
            room_repo,
            messages,
            receipts,
            social,
            hub,
            clock,
            policy,
            sent: metrics::counter!("ieum_sends_total", "result" => "ok"),
            expiry_wake: tokio::sync::Notify::new(),
            limiter: Arc::new(Limiter::in_memory()),
            attachments: None,
            push: None,
        }
    }

    /// Lets IMAGE and FILE messages reference uploads.
    pub fn with_attachments(mut self, attachments: Arc<AttachmentService>) -> Self {
        self.attachments = Some(attachments);
        self
    }

    /// Plans a push for each new message's recipients.
    pub fn with_push(mut self, push: Arc<PushService>) -> Self {
        self.push = Some(push);
        self
    }

    /// Uses these rate limits (shared by every node with Redis).
    pub fn with_limiter(mut self, limiter: Arc<Limiter>) -> Self {
        self.limiter = limiter;
        self
    }

    pub fn policy(&self) -> MessagePolicy {
        self.policy
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    async fn attach_reactions(&self, page: &mut [Message]) -> DomainResult<()> {
        let ids: Vec<Uuid> = page.iter().filter(|m| !m.deleted).map(|m| m.id).collect();
        if ids.is_empty() {
            return Ok(());
        }
        for (id, r) in self.messages.reactions(ids).await? {
            if let Some(m) = page.iter_mut().find(|m| m.id == id) {
                m.reactions.push(r);
            }
        }
        Ok(())
    }

    /// A message of the room the caller may act on.
    async fn live_message(&self, room_id: &str, id: Uuid) -> DomainResult<Message> {
        match self.messages.find(id).await? {
            Some(m) if m.room_id == room_id && !m.deleted => Ok(m),
            _ => Err(crate::error::named::message_not_found()),
        }
    }
}
