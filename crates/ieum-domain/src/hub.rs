//! The node's fan-out: one feed per room with local subscribers, delivering room
//! events to connection mailboxes in seq order with no gap and no duplicate.
//!
//! Events reach a feed from this node's own sends and from other nodes (through
//! the [`EventBus`]). They may arrive out of order or not at all (a lost Pub/Sub
//! message). The store's per-room seq is the truth: an event at or below what the
//! feed delivered is a duplicate and dropped; an event past a gap first pulls the
//! missing messages from the store. That is sound because a seq only becomes
//! visible after every lower seq of its room committed (seqs are allocated under
//! the room row's lock inside the storing transaction).
//!
//! Every connection has one bounded mailbox. A mailbox that is full when the feed
//! delivers is a slow consumer: it is dropped from every feed that meets it full
//! and told through [`MailboxReceiver::overflowed`], so one slow phone never
//! slows its room.
//!
//! The feed task is in `hub/feed.rs`, the mailboxes in `hub/mailbox.rs`.

mod feed;
mod mailbox;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use tokio::sync::{mpsc, oneshot};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::{DomainError, DomainResult};
use crate::members::{MemberCache, MemberTicket};
use crate::message::Message;
use crate::ports::{EventBus, MessageRepository};
use crate::replays::{ReplayCache, Slot};
use crate::room::{Room, RoomKind};

/// How many wire encodings of one event may be cached (one per protocol shape).
pub const WIRE_SLOTS: usize = 4;
/// The largest gap a feed fills from the store in one go.
pub const MAX_GAP_FILL: i64 = 1000;
/// How long a remembered membership is trusted at most (see [`crate::members`]).
pub const MEMBER_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(15);
/// How long a replayed page is shared at most (see [`crate::replays`]).
pub const REPLAY_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);

// Events live behind an Arc and are made once per room event: the size of the
// largest variant costs nothing per subscriber.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventPayload {
    /// A stored message (sequenced).
    Message(Message),
    /// A member read up to `seq` (and, in 1:1 rooms, these messages).
    Read {
        user_id: Uuid,
        seq: i64,
        message_ids: Vec<Uuid>,
        read_at: DateTime<Utc>,
    },
    /// A message reached at least one device of this member (1:1 rooms).
    Delivered {
        user_id: Uuid,
        seq: i64,
    },
    Typing {
        user_id: Uuid,
        at: DateTime<Utc>,
        until: DateTime<Utc>,
    },
    Presence {
        user_id: Uuid,
        online: bool,
        at: DateTime<Utc>,
    },
    MemberJoined {
        room: Box<Room>,
        user_id: Uuid,
        username: String,
    },
    MemberLeft {
        room_id: String,
        user_id: Uuid,
        kicked: bool,
    },
    /// A room admin muted a member until `until` (`None`: unmuted).
    MemberMuted {
        user_id: Uuid,
        until: Option<DateTime<Utc>>,
    },
    RoomCreated(Box<Room>),
    RoomUpdated(Box<Room>),
    Edited {
        message_id: Uuid,
        seq: i64,
        content: String,
        edited_at: DateTime<Utc>,
    },
    /// A tombstone: by its author or an admin, or a self-destruct that expired.
    Deleted {
        message_id: Uuid,
        seq: i64,
        expired: bool,
    },
    Reaction {
        message_id: Uuid,
        user_id: Uuid,
        emoji: String,
        added: bool,
    },
    Pinned {
        message_id: Uuid,
        by: Uuid,
        pinned: bool,
    },
    /// An IMAGE or FILE message's file changed after the send: its scan
    /// ended (clean, infected, failed) or it expired.
    FileUpdated {
        message_id: Uuid,
        seq: i64,
        file: Box<crate::message::MessageFile>,
    },
    /// A session family was revoked (logout, refresh-token reuse): on the
    /// user's feed, for the sessions to end. Never written to a client.
    SessionRevoked {
        family_id: Uuid,
    },
    /// The user was suspended: on their feed, for every session of theirs
    /// to end with `suspended`. Never written to a client.
    UserSuspended {
        user_id: Uuid,
    },
}

/// Something that happened in a room. Stored messages carry their seq; ephemeral
/// events (typing, presence: later) carry none and are delivered as they come.
/// Feeds that carry no room: one per user (events for that user's devices) and
/// one lobby (events for every connected events subscriber).
pub fn user_feed(user_id: Uuid) -> String {
    format!("user:{}", user_id.simple())
}
pub const LOBBY_FEED: &str = "lobby:";

/// A user's feed or the lobby: no stored message belongs to them. (No room id
/// starts with `user:`: client-chosen ids hold no `:`, server-made ones are
/// UUIDs or `dm:...`.)
fn unsequenced(feed: &str) -> bool {
    feed.starts_with("user:") || feed == LOBBY_FEED
}

#[derive(Debug)]
pub struct RoomEvent {
    /// The feed: a room id, [`user_feed`] or [`LOBBY_FEED`].
    pub room_id: String,
    pub seq: Option<i64>,
    pub payload: EventPayload,
    /// Not delivered to this user's connections (typing: "others get").
    pub exclude_user: Option<Uuid>,
    wire: [OnceLock<Arc<[u8]>>; WIRE_SLOTS],
}

impl RoomEvent {
    pub fn message(m: Message) -> Arc<Self> {
        Arc::new(Self {
            room_id: m.room_id.clone(),
            seq: Some(m.seq),
            payload: EventPayload::Message(m),
            exclude_user: None,
            wire: Default::default(),
        })
    }

    /// An unsequenced event on a feed.
    pub fn ephemeral(
        feed: impl Into<String>,
        payload: EventPayload,
        exclude_user: Option<Uuid>,
    ) -> Arc<Self> {
        Arc::new(Self {
            room_id: feed.into(),
            seq: None,
            payload,
            exclude_user,
            wire: Default::default(),
        })
    }

    /// The event's encoding for one wire shape, made once per event and shared by
    /// every subscriber of that shape.
    pub fn wire(&self, slot: usize, encode: impl FnOnce(&RoomEvent) -> Vec<u8>) -> Arc<[u8]> {
        self.wire[slot % WIRE_SLOTS]
            .get_or_init(|| encode(self).into())
            .clone()
    }
}

pub use mailbox::{Delivery, Inbox, Mailbox, MailboxReceiver, Overflow, mailbox};

use feed::{FeedCmd, Subscriber, run_feed};

type FeedMap = Mutex<HashMap<String, mpsc::UnboundedSender<FeedCmd>>>;

pub struct Hub {
    feeds: FeedMap,
    messages: Arc<dyn MessageRepository>,
    bus: Arc<dyn EventBus>,
    members: MemberCache,
    replays: ReplayCache,
    this: Weak<Hub>,
}

impl Hub {
    pub fn new(messages: Arc<dyn MessageRepository>, bus: Arc<dyn EventBus>) -> Arc<Self> {
        Arc::new_cyclic(|this| Self {
            feeds: Mutex::new(HashMap::new()),
            messages,
            bus,
            members: MemberCache::new(MEMBER_CACHE_TTL),
            replays: ReplayCache::new(REPLAY_CACHE_TTL),
            this: this.clone(),
        })
    }

    fn feeds(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::UnboundedSender<FeedCmd>>> {
        self.feeds.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends an event to the other nodes and to this node's subscribers.
    pub async fn publish(&self, event: Arc<RoomEvent>) {
        if let Err(e) = self.bus.publish(&event).await {
            // Other nodes fill the gap from the store when the next event arrives.
            tracing::warn!(room = %event.room_id, error = %e, "bus publish failed");
        }
        self.deliver(event);
    }

    /// Hands an event to this node's feed of its room, if it has one. Every event
    /// of every room passes here (local ones and, while the bus is up, other
    /// nodes'), which keeps the member cache right.
    pub fn deliver(&self, event: Arc<RoomEvent>) {
        if let EventPayload::MemberLeft {
            room_id, user_id, ..
        } = &event.payload
        {
            self.members.forget(room_id, *user_id);
        }
        if let EventPayload::MemberMuted { user_id, .. } = &event.payload {
            // Muted members are never cached: their next send reads the store.
            self.members.forget(&event.room_id, *user_id);
        }
        if !matches!(
            event.payload,
            EventPayload::Typing { .. } | EventPayload::Presence { .. }
        ) {
            // It may have changed what a replayed page of its room holds.
            self.replays.forget_room(&event.room_id);
        }
        let tx = self.feeds().get(&event.room_id).cloned();
        if let Some(tx) = tx {
            let _ = tx.send(FeedCmd::Event(event));
        }
    }

    /// Where connections resuming `room_id` from `after` to `upto` share one
    /// read of that page; `None`: read it alone (see [`crate::replays`]).
    pub fn replay_slot(&self, room_id: &str, after: i64, upto: i64) -> Option<Slot> {
        self.replays.slot(self.bus.epoch(), room_id, after, upto)
    }

    /// A shared read of that page failed: the next asker reads again.
    pub fn replay_failed(&self, room_id: &str, after: i64, upto: i64) {
        self.replays.forget(room_id, after, upto);
    }

    /// Makes every feed catch up with the store: after the bus was down, events
    /// of other nodes may be missing with no later event to reveal the gap.
    pub fn resync(&self) {
        for tx in self.feeds().values() {
            let _ = tx.send(FeedCmd::Resync);
        }
    }

    /// Rebuilds an event received from another node.
    pub fn event_from_wire(
        room_id: String,
        seq: Option<i64>,
        payload: EventPayload,
        exclude_user: Option<Uuid>,
    ) -> Arc<RoomEvent> {
        Arc::new(RoomEvent {
            room_id,
            seq,
            payload,
            exclude_user,
            wire: Default::default(),
        })
    }

    /// The room's kind if `user_id` is known to be an active member of it.
    pub fn cached_member(&self, room_id: &str, user_id: Uuid) -> Option<RoomKind> {
        self.members.get(self.bus.epoch(), room_id, user_id)
    }

    /// Taken before a membership is read from the store, for [`Hub::remember_member`].
    pub fn member_ticket(&self) -> Option<MemberTicket> {
        self.members.ticket(self.bus.epoch())
    }

    pub fn remember_member(
        &self,
        ticket: MemberTicket,
        room_id: &str,
        user_id: Uuid,
        kind: RoomKind,
    ) {
        self.members.remember(ticket, room_id, user_id, kind);
    }

    /// Number of rooms with local subscribers.
    pub fn active_rooms(&self) -> usize {
        self.feeds().len()
    }

    /// Adds a subscription. Returns the seq the room's feed has delivered up to:
    /// every later message reaches the mailbox; a resuming client reads the ones
    /// before from the store.
    pub async fn subscribe(
        &self,
        room_id: &str,
        user_id: Uuid,
        subscription: Arc<str>,
        shape: u8,
        mailbox: Mailbox,
    ) -> DomainResult<i64> {
        let (reply, answer) = oneshot::channel();
        let cmd = FeedCmd::Subscribe {
            subscriber: Subscriber {
                mailbox,
                subscription,
                shape,
                user_id,
            },
            reply,
        };
        let created = {
            let mut feeds = self.feeds();
            let (created, tx) = match feeds.get(room_id) {
                Some(tx) if !tx.is_closed() => (false, tx.clone()),
                _ => {
                    let (tx, rx) = mpsc::unbounded_channel();
                    feeds.insert(room_id.to_owned(), tx.clone());
                    let hub = self.this.upgrade().expect("hub alive");
                    let span = tracing::debug_span!("feed", room = %room_id);
                    tokio::spawn(tracing::Instrument::instrument(
                        run_feed(hub, room_id.to_owned(), rx),
                        span,
                    ));
                    (true, tx)
                }
            };
            // Sent under the lock, so a feed that is retiring sees it queued.
            let _ = tx.send(cmd);
            created
        };
        if created {
            self.bus.watch(room_id).await;
        }
        answer
            .await
            .map_err(|_| DomainError::Unavailable("room feed stopped".into()))
    }

    pub fn unsubscribe(&self, room_id: &str, mailbox: &Mailbox, subscription: Arc<str>) {
        if let Some(tx) = self.feeds().get(room_id) {
            let _ = tx.send(FeedCmd::Unsubscribe {
                mailbox_id: mailbox.id,
                subscription,
            });
        }
    }
}
