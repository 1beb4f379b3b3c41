//! Messaging use cases: send (stored, then published), history, subscribe with
//! gap-free resume.

use std::sync::Arc;

use uuid::Uuid;

use crate::auth::Principal;
use crate::error::DomainResult;
use chrono::{DateTime, Duration, Utc};

use crate::error::DomainError;
use crate::hub::{EventPayload, Hub, Mailbox, RoomEvent};
use crate::message::{Appended, HistoryQuery, Message, MessagePolicy, NewMessage, SendMessage};
use crate::ports::{Clock, MessageRepository, ReceiptRepository, RoomRepository, SocialRepository};
use crate::room::RoomKind;
use crate::rooms::{Entry, RoomService};
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

impl ChatService {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        rooms: Arc<RoomService>,
        room_repo: Arc<dyn RoomRepository>,
        messages: Arc<dyn MessageRepository>,
        receipts: Arc<dyn ReceiptRepository>,
        social: Arc<dyn SocialRepository>,
        hub: Arc<Hub>,
        clock: Arc<dyn Clock>,
        policy: MessagePolicy,
    ) -> Self {
        Self {
            rooms,
            room_repo,
            messages,
            receipts,
            social,
            hub,
            clock,
            policy,
        }
    }

    /// In a 1:1 room, neither may write when one blocked the other.
    async fn check_blocks(&self, who: Uuid, room_id: &str) -> DomainResult<()> {
        for m in self.room_repo.members(room_id).await? {
            if m.user_id != who && self.social.blocked_between(who, m.user_id).await? {
                return Err(DomainError::forbidden(
                    "blocked",
                    "one of you blocked the other",
                ));
            }
        }
        Ok(())
    }

    /// Marks messages read (the listed ones, or up to `upto`), moves the read
    /// cursor and tells the room (all of the reader's devices included).
    pub async fn mark_read(
        &self,
        who: &Principal,
        room_id: &str,
        entry: Entry,
        message_ids: Vec<Uuid>,
        upto: Option<i64>,
    ) -> DomainResult<ReadReceipt> {
        let member = self.rooms.enter(who, room_id, entry).await?;
        let at = self.clock.now();
        let marked = if member.room_kind == RoomKind::Direct {
            self.receipts
                .mark_messages_read(room_id, who.user_id, message_ids, upto, at)
                .await?
        } else {
            Vec::new()
        };
        let seq = marked
            .iter()
            .map(|(_, s)| *s)
            .chain(upto)
            .max()
            .unwrap_or(0);
        let last_read_seq = self.rooms.mark_read(who, room_id, seq).await?;
        let ids: Vec<Uuid> = marked.iter().map(|(id, _)| *id).collect();
        self.hub
            .publish(RoomEvent::ephemeral(
                room_id,
                EventPayload::Read {
                    user_id: who.user_id,
                    seq: last_read_seq,
                    message_ids: ids.clone(),
                    read_at: at,
                },
                None,
            ))
            .await;
        Ok(ReadReceipt {
            last_read_seq,
            message_ids: ids,
            read_at: at,
        })
    }

    /// A message of a 1:1 room reached one of `who`'s devices.
    pub async fn delivered(&self, who: Uuid, room_id: &str, seq: i64) -> DomainResult<()> {
        if self.receipts.mark_delivered(room_id, who, seq).await? {
            self.hub
                .publish(RoomEvent::ephemeral(
                    room_id,
                    EventPayload::Delivered { user_id: who, seq },
                    None,
                ))
                .await;
        }
        Ok(())
    }

    /// Tells the room's other members that `who` is typing; never stored.
    pub async fn typing(&self, who: &Principal, room_id: &str, entry: Entry) -> DomainResult<()> {
        self.rooms.enter(who, room_id, entry).await?;
        let at = self.clock.now();
        self.hub
            .publish(RoomEvent::ephemeral(
                room_id,
                EventPayload::Typing {
                    user_id: who.user_id,
                    at,
                    until: at + Duration::milliseconds(TYPING_TTL_MS),
                },
                Some(who.user_id),
            ))
            .await;
        Ok(())
    }

    /// Subscribes a connection to a non-room feed (its user feed, the lobby).
    pub async fn subscribe_feed(
        &self,
        who: &Principal,
        feed: &str,
        subscription: Arc<str>,
        shape: u8,
        mailbox: Mailbox,
    ) -> DomainResult<()> {
        self.hub
            .subscribe(feed, who.user_id, subscription, shape, mailbox)
            .await?;
        Ok(())
    }

    pub fn policy(&self) -> MessagePolicy {
        self.policy
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

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
        let (kind, content, image_url, client_msg_id) = self.policy.check(&req)?;
        let member = self
            .rooms
            .enter(&sender.principal(), room_id, entry)
            .await?;
        if member.room_kind == RoomKind::Direct {
            self.check_blocks(sender.id, room_id).await?;
        }
        let appended = self
            .messages
            .append(NewMessage {
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
                created_at: self.clock.now(),
            })
            .await?;
        // Publishing a duplicate again is harmless (feeds drop seqs they delivered)
        // and repairs a crash between storing and publishing.
        self.hub
            .publish(RoomEvent::message(appended.message.clone()))
            .await;
        Ok(appended)
    }

    /// A page of history, oldest first.
    pub async fn history(
        &self,
        who: &Principal,
        room_id: &str,
        entry: Entry,
        mut q: HistoryQuery,
    ) -> DomainResult<Vec<Message>> {
        self.rooms.enter(who, room_id, entry).await?;
        q.limit = self.policy.page(Some(q.limit).filter(|l| *l > 0));
        self.messages.page(room_id, q).await
    }

    /// Subscribes a connection's mailbox to a room after checking membership.
    pub async fn subscribe(
        &self,
        who: &Principal,
        req: SubscribeRequest,
    ) -> DomainResult<Subscribed> {
        let member = self.rooms.enter(who, &req.room_id, req.entry).await?;
        let live_after = self
            .hub
            .subscribe(
                &req.room_id,
                who.user_id,
                req.subscription,
                req.shape,
                req.mailbox,
            )
            .await?;
        let max = i64::from(self.policy.max_resume);
        let (resume_after, truncated) = match req.resume_after {
            Some(after) if live_after - after.max(0) > max => (Some(live_after - max), true),
            Some(after) => (Some(after.max(0)), false),
            None => (None, false),
        };
        Ok(Subscribed {
            live_after,
            direct: member.room_kind == RoomKind::Direct,
            resume_after,
            truncated,
        })
    }

    pub fn unsubscribe(&self, room_id: &str, mailbox: &Mailbox, subscription: Arc<str>) {
        self.hub.unsubscribe(room_id, mailbox, subscription);
    }

    /// The next page of a resume: messages with `after < seq <= upto`, oldest
    /// first, at most `max_page`. Membership was checked at subscribe.
    pub async fn replay_page(
        &self,
        room_id: &str,
        after: i64,
        upto: i64,
    ) -> DomainResult<Vec<Message>> {
        if after >= upto {
            return Ok(Vec::new());
        }
        let limit = ((upto - after) as u32).min(self.policy.max_page);
        self.messages
            .page(
                room_id,
                HistoryQuery {
                    after: Some(after),
                    before: Some(upto + 1),
                    limit,
                },
            )
            .await
    }
}
