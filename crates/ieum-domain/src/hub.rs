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

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use tokio::sync::{Notify, mpsc, oneshot};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::{DomainError, DomainResult};
use crate::members::{MemberCache, MemberTicket};
use crate::message::{HistoryQuery, Message};
use crate::ports::{EventBus, MessageRepository};
use crate::room::{Room, RoomKind};

/// How many wire encodings of one event may be cached (one per protocol shape).
pub const WIRE_SLOTS: usize = 4;
/// The largest gap a feed fills from the store in one go.
pub const MAX_GAP_FILL: i64 = 1000;
/// How long a remembered membership is trusted at most (see [`crate::members`]).
pub const MEMBER_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(15);

// Events live behind an Arc and are made once per room event: the size of the
// largest variant costs nothing per subscriber.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
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
}

/// Something that happened in a room. Stored messages carry their seq; ephemeral
/// events (typing, presence: later) carry none and are delivered as they come.
/// Feeds that carry no room: one per user (events for that user's devices) and
/// one lobby (events for every connected events subscriber).
pub fn user_feed(user_id: Uuid) -> String {
    format!("user:{}", user_id.simple())
}
pub const LOBBY_FEED: &str = "lobby:";

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

/// One event for one subscription of a connection.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub subscription: Arc<str>,
    /// Which wire shape the subscription speaks (opaque to the domain).
    pub shape: u8,
    pub event: Arc<RoomEvent>,
}

/// The sending half of a connection's outbound queue.
#[derive(Debug, Clone)]
pub struct Mailbox {
    id: u64,
    tx: mpsc::Sender<Delivery>,
    overflow: Arc<Notify>,
}

#[derive(Debug)]
pub struct MailboxReceiver {
    pub rx: mpsc::Receiver<Delivery>,
    pub overflow: Overflow,
}

/// Tells a connection that a feed found its mailbox full and dropped it.
#[derive(Debug)]
pub struct Overflow(Arc<Notify>);

impl Overflow {
    /// Resolves when a feed found the mailbox full.
    pub async fn wait(&self) {
        self.0.notified().await
    }
}

impl MailboxReceiver {
    pub async fn overflowed(&self) {
        self.overflow.wait().await
    }
}

/// A bounded mailbox for one connection.
pub fn mailbox(capacity: usize) -> (Mailbox, MailboxReceiver) {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let overflow = Arc::new(Notify::new());
    (
        Mailbox {
            id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            tx,
            overflow: overflow.clone(),
        },
        MailboxReceiver {
            rx,
            overflow: Overflow(overflow),
        },
    )
}

impl Mailbox {
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Hands a delivery over without waiting. `false` when the receiver is gone or
    /// full (then the owner is told it overflowed).
    pub fn offer(&self, d: Delivery) -> bool {
        match self.tx.try_send(d) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.overflow.notify_one();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

struct Subscriber {
    mailbox: Mailbox,
    subscription: Arc<str>,
    shape: u8,
    user_id: Uuid,
}

enum FeedCmd {
    Event(Arc<RoomEvent>),
    Subscribe {
        subscriber: Subscriber,
        reply: oneshot::Sender<i64>,
    },
    Unsubscribe {
        mailbox_id: u64,
        subscription: Arc<str>,
    },
    /// Drops every subscription of a user who left or was removed.
    /// Catch up with the store (after the bus lost messages).
    Resync,
}

type FeedMap = Mutex<HashMap<String, mpsc::UnboundedSender<FeedCmd>>>;

pub struct Hub {
    feeds: FeedMap,
    messages: Arc<dyn MessageRepository>,
    bus: Arc<dyn EventBus>,
    members: MemberCache,
    this: Weak<Hub>,
}

impl Hub {
    pub fn new(messages: Arc<dyn MessageRepository>, bus: Arc<dyn EventBus>) -> Arc<Self> {
        Arc::new_cyclic(|this| Self {
            feeds: Mutex::new(HashMap::new()),
            messages,
            bus,
            members: MemberCache::new(MEMBER_CACHE_TTL),
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
        let tx = self.feeds().get(&event.room_id).cloned();
        if let Some(tx) = tx {
            let _ = tx.send(FeedCmd::Event(event));
        }
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

struct Feed {
    room_id: String,
    delivered: i64,
    subscribers: Vec<Subscriber>,
}

impl Feed {
    fn fan_out(&mut self, event: &Arc<RoomEvent>) {
        self.subscribers.retain(|s| {
            if event.exclude_user == Some(s.user_id) {
                return true;
            }
            s.mailbox.offer(Delivery {
                subscription: s.subscription.clone(),
                shape: s.shape,
                event: event.clone(),
            })
        });
    }

    async fn on_event(&mut self, hub: &Hub, event: Arc<RoomEvent>) {
        let Some(seq) = event.seq else {
            self.fan_out(&event);
            // A member who left (or was removed) gets that event, then nothing
            // more: their live subscriptions end here, on every node.
            if let EventPayload::MemberLeft { user_id, .. } = &event.payload {
                self.subscribers.retain(|s| s.user_id != *user_id);
            }
            return;
        };
        if seq <= self.delivered {
            return; // already delivered: a duplicate from another path
        }
        if seq > self.delivered + 1 {
            self.fill_gap(hub, seq).await;
        }
        self.fan_out(&event);
        self.delivered = seq;
    }

    async fn fill_gap(&mut self, hub: &Hub, upto: i64) {
        let missing = upto - self.delivered - 1;
        let after = if missing > MAX_GAP_FILL {
            tracing::warn!(room = %self.room_id, missing, "gap larger than the fill limit; skipping ahead");
            upto - 1 - MAX_GAP_FILL
        } else {
            self.delivered
        };
        let query = HistoryQuery {
            after: Some(after),
            before: Some(upto),
            limit: (upto - after - 1) as u32,
            skip_system: false,
        };
        match hub.messages.page(&self.room_id, query).await {
            Ok(found) => {
                for m in found {
                    let seq = m.seq;
                    self.fan_out(&RoomEvent::message(m));
                    self.delivered = seq;
                }
            }
            Err(e) => tracing::error!(room = %self.room_id, error = %e, "gap fill failed"),
        }
    }
}

/// Removes an idle feed from the hub, unless a command is already queued for it
/// (subscribes are queued under the same lock, so none can be lost).
fn retire(hub: &Hub, room_id: &str, rx: &mpsc::UnboundedReceiver<FeedCmd>) -> bool {
    let mut feeds = hub.feeds();
    if rx.is_empty() {
        feeds.remove(room_id);
        true
    } else {
        false
    }
}

async fn run_feed(hub: Arc<Hub>, room_id: String, mut rx: mpsc::UnboundedReceiver<FeedCmd>) {
    // Where live delivery starts. A store that does not answer after a few
    // tries ends the feed: pending subscribes then fail with `Unavailable`
    // (clients get a clear error and retry) instead of a feed that would
    // silently deliver nothing or replay from the wrong place.
    let mut delivered = None;
    for attempt in 0..5u32 {
        match hub.messages.last_seq(&room_id).await {
            Ok(seq) => {
                delivered = Some(seq);
                break;
            }
            Err(e) => {
                tracing::warn!(room = %room_id, error = %e, attempt, "cannot read the room's last seq");
                tokio::time::sleep(std::time::Duration::from_millis(100 << attempt)).await;
            }
        }
    }
    let Some(delivered) = delivered else {
        tracing::error!(room = %room_id, "room feed stopped: the store does not answer");
        rx.close();
        let mut feeds = hub.feeds();
        // Ours is the entry whose channel just closed (a newer feed's is open).
        if feeds.get(&room_id).is_some_and(|tx| tx.is_closed()) {
            feeds.remove(&room_id);
        }
        return;
    };
    let mut feed = Feed {
        room_id,
        delivered,
        subscribers: Vec::new(),
    };
    while let Some(cmd) = rx.recv().await {
        match cmd {
            FeedCmd::Event(e) => feed.on_event(&hub, e).await,
            FeedCmd::Subscribe { subscriber, reply } => {
                feed.subscribers.push(subscriber);
                let _ = reply.send(feed.delivered);
            }
            FeedCmd::Unsubscribe {
                mailbox_id,
                subscription,
            } => {
                feed.subscribers
                    .retain(|s| !(s.mailbox.id == mailbox_id && s.subscription == subscription));
            }
            FeedCmd::Resync => {
                if let Ok(last) = hub.messages.last_seq(&feed.room_id).await
                    && last > feed.delivered
                {
                    feed.fill_gap(&hub, last + 1).await;
                }
            }
        }
        // Drop subscribers whose connection is gone.
        feed.subscribers.retain(|s| !s.mailbox.tx.is_closed());
        if feed.subscribers.is_empty() && retire(&hub, &feed.room_id, &rx) {
            hub.bus.unwatch(&feed.room_id).await;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::MessageKind;
    use crate::ports::{LocalBus, MockMessageRepository};
    use std::time::Duration;

    fn msg(seq: i64) -> Message {
        Message {
            id: Uuid::from_u128(seq as u128),
            room_id: "r".into(),
            seq,
            sender_id: Uuid::nil(),
            sender_username: "a".into(),
            sender_name: "a".into(),
            sender_image: None,
            kind: MessageKind::Text,
            content: format!("m{seq}"),
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
            reactions: Vec::new(),
        }
    }

    async fn recv(rx: &mut MailboxReceiver) -> i64 {
        let d = tokio::time::timeout(Duration::from_secs(5), rx.rx.recv())
            .await
            .expect("delivery in time")
            .expect("open");
        d.event.seq.unwrap()
    }

    #[tokio::test]
    async fn delivers_in_order_drops_duplicates_and_fills_gaps_from_the_store() {
        let mut repo = MockMessageRepository::new();
        repo.expect_last_seq().returning(|_| Ok(10));
        repo.expect_page()
            .withf(|room, q| room == "r" && q.after == Some(11) && q.before == Some(14))
            .times(1)
            .returning(|_, _| Ok(vec![msg(12), msg(13)]));
        let hub = Hub::new(Arc::new(repo), Arc::new(LocalBus));
        let (mb, mut rx) = mailbox(16);
        let upto = hub
            .subscribe("r", Uuid::nil(), "sub-0".into(), 0, mb)
            .await
            .unwrap();
        assert_eq!(upto, 10);

        hub.publish(RoomEvent::message(msg(10))).await; // old: dropped
        hub.publish(RoomEvent::message(msg(11))).await;
        hub.publish(RoomEvent::message(msg(14))).await; // gap 12..13 filled
        hub.publish(RoomEvent::message(msg(12))).await; // late duplicate: dropped
        hub.publish(RoomEvent::message(msg(15))).await;
        let got = [
            recv(&mut rx).await,
            recv(&mut rx).await,
            recv(&mut rx).await,
            recv(&mut rx).await,
            recv(&mut rx).await,
        ];
        assert_eq!(got, [11, 12, 13, 14, 15]);
    }

    #[tokio::test]
    async fn a_full_mailbox_is_dropped_and_told_while_others_go_on() {
        let mut repo = MockMessageRepository::new();
        repo.expect_last_seq().returning(|_| Ok(0));
        let hub = Hub::new(Arc::new(repo), Arc::new(LocalBus));
        let (slow, slow_rx) = mailbox(2);
        let (fast, mut fast_rx) = mailbox(64);
        hub.subscribe("r", Uuid::nil(), "s".into(), 0, slow)
            .await
            .unwrap();
        hub.subscribe("r", Uuid::nil(), "f".into(), 0, fast)
            .await
            .unwrap();
        for seq in 1..=5 {
            hub.publish(RoomEvent::message(msg(seq))).await;
        }
        tokio::time::timeout(Duration::from_secs(5), slow_rx.overflowed())
            .await
            .expect("slow consumer told");
        for seq in 1..=5 {
            assert_eq!(recv(&mut fast_rx).await, seq);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_store_that_does_not_answer_fails_the_subscribe_clearly() {
        let mut repo = MockMessageRepository::new();
        repo.expect_last_seq()
            .times(5)
            .returning(|_| Err(DomainError::Unavailable("down".into())));
        let hub = Hub::new(Arc::new(repo), Arc::new(LocalBus));
        let (mb, _rx) = mailbox(4);
        let err = hub
            .subscribe("r", Uuid::nil(), "s".into(), 0, mb)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "unavailable");
        assert_eq!(
            hub.active_rooms(),
            0,
            "the dead feed is gone; a later subscribe starts afresh"
        );
    }

    #[tokio::test]
    async fn feeds_retire_when_their_last_subscriber_leaves() {
        let mut repo = MockMessageRepository::new();
        repo.expect_last_seq().returning(|_| Ok(0));
        let hub = Hub::new(Arc::new(repo), Arc::new(LocalBus));
        let (mb, _rx) = mailbox(4);
        hub.subscribe("r", Uuid::nil(), "s".into(), 0, mb.clone())
            .await
            .unwrap();
        assert_eq!(hub.active_rooms(), 1);
        hub.unsubscribe("r", &mb, "s".into());
        // The feed retires on its own task: resubscribing afterwards still works.
        for _ in 0..100 {
            if hub.active_rooms() == 0 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(hub.active_rooms(), 0);
        let upto = hub
            .subscribe("r", Uuid::nil(), "s2".into(), 0, mb)
            .await
            .unwrap();
        assert_eq!(upto, 0);
    }

    #[test]
    fn wire_encodings_are_made_once() {
        let e = RoomEvent::message(msg(1));
        let calls = std::sync::atomic::AtomicUsize::new(0);
        for _ in 0..3 {
            let b = e.wire(1, |_| {
                calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                b"x".to_vec()
            });
            assert_eq!(&*b, b"x");
        }
        assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 1);
    }
}
