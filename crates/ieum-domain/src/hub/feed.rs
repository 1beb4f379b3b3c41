//! A room's feed: the task that delivers the room's events to its local
//! subscribers in seq order, filling gaps from the store.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use uuid::Uuid;

use crate::message::HistoryQuery;

use super::{Delivery, EventPayload, Hub, MAX_GAP_FILL, Mailbox, RoomEvent};

pub(super) struct Subscriber {
    pub(super) mailbox: Mailbox,
    pub(super) subscription: Arc<str>,
    pub(super) shape: u8,
    pub(super) user_id: Uuid,
}

pub(super) enum FeedCmd {
    Event(Arc<RoomEvent>),
    Subscribe {
        subscriber: Subscriber,
        reply: oneshot::Sender<i64>,
    },
    Unsubscribe {
        mailbox_id: u64,
        subscription: Arc<str>,
    },
    /// Catch up with the store (after the bus lost messages).
    Resync,
}

struct Feed {
    room_id: String,
    delivered: i64,
    subscribers: Vec<Subscriber>,
    /// `ieum_delivery_latency_seconds`, its handle taken once per feed.
    latency: metrics::Histogram,
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
        // From the send (the message's time) to its first hand-over to a
        // connection on this node.
        if let EventPayload::Message(m) = &event.payload
            && !self.subscribers.is_empty()
        {
            let waited = (chrono::Utc::now() - m.created_at)
                .num_microseconds()
                .unwrap_or(0);
            self.latency.record(waited.max(0) as f64 / 1e6);
        }
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

pub(super) async fn run_feed(
    hub: Arc<Hub>,
    room_id: String,
    mut rx: mpsc::UnboundedReceiver<FeedCmd>,
) {
    // Where live delivery starts. A store that does not answer after a few
    // tries ends the feed: pending subscribes then fail with `Unavailable`
    // (clients get a clear error and retry) instead of a feed that would
    // silently deliver nothing or replay from the wrong place.
    // A user's feed or the lobby has no seq to ask the store for: every
    // CONNECT starts its user's feed, so that would be a query per login.
    let mut delivered = super::unsequenced(&room_id).then_some(0);
    for attempt in 0..5u32 {
        if delivered.is_some() {
            break;
        }
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
        latency: metrics::histogram!("ieum_delivery_latency_seconds"),
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
        feed.subscribers.retain(|s| !s.mailbox.is_closed());
        if feed.subscribers.is_empty() && retire(&hub, &feed.room_id, &rx) {
            hub.bus.unwatch(&feed.room_id).await;
            return;
        }
    }
}
