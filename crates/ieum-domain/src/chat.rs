//! Messaging use cases: send (stored, then published), history, subscribe with
//! gap-free resume.

use std::sync::Arc;

use uuid::Uuid;

use crate::auth::Principal;
use crate::error::DomainResult;
use chrono::{DateTime, Duration, Utc};

use crate::error::DomainError;
use crate::hub::{EventPayload, Hub, Mailbox, RoomEvent};
use crate::message::{
    Appended, HistoryPage, HistoryQuery, Message, MessageKind, MessagePolicy, NewMessage,
    SearchQuery, SendMessage,
};
use crate::ports::{Clock, MessageRepository, ReceiptRepository, RoomRepository, SocialRepository};
use crate::room::{PinPolicy, Role, RoomKind};
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
            expiry_wake: tokio::sync::Notify::new(),
            limiter: Arc::new(Limiter::in_memory()),
        }
    }

    /// Uses these rate limits (shared by every node with Redis).
    pub fn with_limiter(mut self, limiter: Arc<Limiter>) -> Self {
        self.limiter = limiter;
        self
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
        let kind = self.rooms.member_kind(who, room_id, entry).await?;
        self.limiter
            .reserve(&self.limiter.limits().read_user, &who.user_id.to_string())
            .await?;
        let at = self.clock.now();
        let marked = if kind == RoomKind::Direct {
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
        let last_read_seq = self.rooms.record_read(who, room_id, seq).await?;
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
        self.rooms.member_kind(who, room_id, entry).await?;
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

    /// A page of history, oldest first, within what the caller may read.
    pub async fn history(
        &self,
        who: &Principal,
        room_id: &str,
        entry: Entry,
        mut q: HistoryQuery,
    ) -> DomainResult<Vec<Message>> {
        let upto = self.rooms.readable_upto(who, room_id, entry).await?;
        q.limit = self.policy.page(Some(q.limit));
        if let Some(max) = upto {
            q.before = Some(q.before.map_or(max + 1, |b| b.min(max + 1)));
        }
        let mut page = self.messages.page(room_id, q).await?;
        self.attach_reactions(&mut page).await?;
        Ok(page)
    }

    /// A page of history and whether there is more: a full page may have more
    /// behind it. `limit` 0 (or none) is the default page, as in [`Self::history`].
    pub async fn history_page(
        &self,
        who: &Principal,
        room_id: &str,
        entry: Entry,
        q: HistoryQuery,
    ) -> DomainResult<HistoryPage> {
        let limit = self.policy.page(Some(q.limit));
        let messages = self.history(who, room_id, entry, q).await?;
        let has_more = messages.len() as u32 >= limit;
        Ok(HistoryPage { messages, has_more })
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

    async fn tombstone(&self, m: &Message, expired: bool, now: DateTime<Utc>) -> DomainResult<()> {
        if self.messages.tombstone(m.id, now).await?.is_some() {
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

    pub async fn react(
        &self,
        who: &Principal,
        room_id: &str,
        id: Uuid,
        emoji: &str,
        on: bool,
    ) -> DomainResult<()> {
        self.rooms.require_member(who.user_id, room_id).await?;
        self.limiter
            .reserve(
                &self.limiter.limits().reaction_user,
                &who.user_id.to_string(),
            )
            .await?;
        self.live_message(room_id, id).await?;
        let emoji = crate::message::check_emoji(emoji)?;
        if self
            .messages
            .set_reaction(id, who.user_id, &emoji, on, self.clock.now())
            .await?
        {
            self.hub
                .publish(RoomEvent::ephemeral(
                    room_id,
                    EventPayload::Reaction {
                        message_id: id,
                        user_id: who.user_id,
                        emoji,
                        added: on,
                    },
                    None,
                ))
                .await;
        }
        Ok(())
    }

    pub async fn reactions(
        &self,
        who: &Principal,
        room_id: &str,
        id: Uuid,
    ) -> DomainResult<Vec<crate::message::ReactionCount>> {
        self.rooms.require_member(who.user_id, room_id).await?;
        self.live_message(room_id, id).await?;
        Ok(self
            .messages
            .reactions(vec![id])
            .await?
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }

    /// Pins or unpins under the room's pin policy; a pin also leaves a SYSTEM
    /// message in the room.
    pub async fn pin(
        &self,
        sender: &Sender,
        room_id: &str,
        id: Uuid,
        on: bool,
    ) -> DomainResult<()> {
        let who = sender.principal();
        let me = self.rooms.require_member(who.user_id, room_id).await?;
        let room = self.rooms.room(room_id).await?;
        if room.pin_policy == PinPolicy::Admins && me.role < Role::Admin {
            return Err(crate::error::named::insufficient_role(
                "only admins may pin in this room",
            ));
        }
        self.live_message(room_id, id).await?;
        let now = self.clock.now();
        if !self
            .messages
            .set_pin(room_id, id, who.user_id, on, now)
            .await?
        {
            return Ok(());
        }
        self.hub
            .publish(RoomEvent::ephemeral(
                room_id,
                EventPayload::Pinned {
                    message_id: id,
                    by: who.user_id,
                    pinned: on,
                },
                None,
            ))
            .await;
        if on {
            let content = format!("{} pinned a message", sender.display_name);
            self.rooms.post_system(room_id, sender, content).await;
        }
        Ok(())
    }

    pub async fn pins(
        &self,
        who: &Principal,
        room_id: &str,
    ) -> DomainResult<Vec<(Message, Uuid, DateTime<Utc>)>> {
        self.rooms.require_member(who.user_id, room_id).await?;
        self.messages.pins(room_id).await
    }

    /// Replies to a message, oldest first.
    pub async fn thread(
        &self,
        who: &Principal,
        room_id: &str,
        parent: Uuid,
        after: Option<i64>,
        limit: Option<u32>,
    ) -> DomainResult<(Message, Vec<Message>)> {
        let upto = self
            .rooms
            .readable_upto(who, room_id, Entry::MembersOnly)
            .await?;
        let p = self.live_message(room_id, parent).await?;
        // A leaver who may read only up to their leave sees no later parent.
        if upto.is_some_and(|max| p.seq > max) {
            return Err(crate::error::named::message_not_found());
        }
        let mut replies = self
            .messages
            .thread(parent, after, self.policy.page(limit))
            .await?;
        if let Some(max) = upto {
            replies.retain(|m| m.seq <= max);
        }
        self.attach_reactions(&mut replies).await?;
        Ok((p, replies))
    }

    /// Substring search in what the caller may read.
    pub async fn search(&self, mut q: SearchQuery) -> DomainResult<Vec<Message>> {
        crate::text::refuse_nul(&q.text)?;
        let text = q.text.trim().to_owned();
        let n = text.chars().count();
        if n == 0 || n > crate::message::SEARCH_MAX_CHARS {
            return Err(DomainError::invalid(
                "invalid_query",
                format!(
                    "q must be 1 to {} characters",
                    crate::message::SEARCH_MAX_CHARS
                ),
            ));
        }
        q.text = text;
        q.limit = self.policy.page(Some(q.limit).filter(|l| *l > 0));
        q.now = self.clock.now();
        self.messages.search(q).await
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
                    skip_system: false,
                },
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::ReactionCount;
    use crate::ports::{
        LocalBus, MockClock, MockMessageRepository, MockPasswordHasher, MockReceiptRepository,
        MockRoomRepository, MockSocialRepository, MockUserRepository,
    };
    use crate::room::{MemberState, Membership};
    use crate::rooms::RoomPolicy;

    fn who() -> Principal {
        Principal {
            user_id: Uuid::from_u128(1),
            username: "alice".into(),
        }
    }

    fn message(seq: i64) -> Message {
        Message {
            id: Uuid::from_u128(seq as u128),
            room_id: "room-1".into(),
            seq,
            sender_id: Uuid::from_u128(2),
            sender_username: "bob".into(),
            sender_name: "bob".into(),
            sender_image: None,
            kind: MessageKind::Text,
            content: "hi".into(),
            image_url: None,
            client_msg_id: None,
            created_at: Utc::now(),
            read_at: None,
            parent_id: None,
            reply_count: 0,
            last_reply_at: None,
            edited_at: None,
            deleted: false,
            expires_at: None,
            mentions: Vec::new(),
            reactions: Vec::<ReactionCount>::new(),
        }
    }

    /// A member of room-1 whose history holds `stored` messages; the store
    /// answers at most the page size it was asked for.
    fn service(stored: i64) -> ChatService {
        let mut rooms = MockRoomRepository::new();
        rooms.expect_membership().returning(|room_id, user_id| {
            Ok(Some(Membership {
                room_id: room_id.into(),
                room_kind: RoomKind::Group,
                user_id,
                role: Role::Member,
                state: MemberState::Active,
                joined_at: Utc::now(),
                last_read_seq: 0,
                favorite: false,
                left_seq: None,
            }))
        });
        let rooms = Arc::new(rooms);
        let mut messages = MockMessageRepository::new();
        messages.expect_page().returning(move |_, q| {
            let n = i64::from(q.limit).min(stored);
            Ok((1..=n).map(message).collect())
        });
        messages.expect_reactions().returning(|_| Ok(Vec::new()));
        messages.expect_last_seq().returning(|_| Ok(0));
        let messages = Arc::new(messages);
        let mut clock = MockClock::new();
        clock.expect_now().returning(Utc::now);
        let clock = Arc::new(clock);
        let hub = Hub::new(messages.clone(), Arc::new(LocalBus));
        let room_service = Arc::new(RoomService::new(
            crate::rooms::RoomPorts {
                messages: messages.clone(),
                rooms: rooms.clone(),
                users: Arc::new(MockUserRepository::new()),
                social: Arc::new(MockSocialRepository::new()),
                hasher: Arc::new(MockPasswordHasher::new()),
                hub: hub.clone(),
                clock: clock.clone(),
            },
            RoomPolicy::default(),
        ));
        ChatService::new(
            ChatPorts {
                rooms: room_service,
                room_repo: rooms,
                messages,
                receipts: Arc::new(MockReceiptRepository::new()),
                social: Arc::new(MockSocialRepository::new()),
                hub,
                clock,
            },
            MessagePolicy::default(),
        )
    }

    fn query(limit: u32) -> HistoryQuery {
        HistoryQuery {
            limit,
            ..HistoryQuery::default()
        }
    }

    #[tokio::test]
    async fn a_zero_limit_is_the_default_page_and_says_no_more_when_short() {
        let svc = service(3);
        let page = svc
            .history_page(&who(), "room-1", Entry::MembersOnly, query(0))
            .await
            .unwrap();
        assert_eq!(page.messages.len(), 3);
        assert!(!page.has_more, "3 of a default page of 50");
    }

    #[tokio::test]
    async fn a_full_page_says_there_may_be_more() {
        let svc = service(80);
        let page = svc
            .history_page(&who(), "room-1", Entry::MembersOnly, query(0))
            .await
            .unwrap();
        assert_eq!(page.messages.len(), 50, "the default page");
        assert!(page.has_more);
        let page = svc
            .history_page(&who(), "room-1", Entry::MembersOnly, query(10_000))
            .await
            .unwrap();
        assert_eq!(page.messages.len(), 80, "capped at 500, all 80 fit");
        assert!(!page.has_more);
    }
}
