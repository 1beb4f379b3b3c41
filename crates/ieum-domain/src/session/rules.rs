//! Two per-connection rules every transport applies the same way: when a
//! message counts as delivered, and how often typing notices go out.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

use crate::message::Message;

/// Delivery receipts: in a 1:1 room, a message that reaches one of the
/// recipient's devices is "delivered". Each connection acknowledges each room's
/// highest seq once; older or repeated messages (a replay after a resume) are
/// not acknowledged again. Groups track no delivery: a write per message per
/// member would cost more than the "1" shows.
#[derive(Debug, Default)]
pub struct DeliveryTracker {
    acked: HashMap<String, i64>,
}

impl DeliveryTracker {
    /// The (room, seq) to acknowledge for `message` reaching `me`, if any.
    pub fn on_delivered(&mut self, direct: bool, message: &Message, me: Uuid) -> Option<i64> {
        if !direct || message.sender_id == me {
            return None;
        }
        if self
            .acked
            .get(&message.room_id)
            .is_some_and(|seq| *seq >= message.seq)
        {
            return None;
        }
        self.acked.insert(message.room_id.clone(), message.seq);
        Some(message.seq)
    }
}

/// Typing notices: at most one per room per interval from one connection; the
/// rest are dropped. Only rooms the user may type in are remembered (call
/// [`TypingThrottle::sent`] after the use case accepted the notice), and a
/// full table drops stale entries, never live ones, so fake room ids cannot
/// reset it.
#[derive(Debug)]
pub struct TypingThrottle {
    interval: Duration,
    capacity: usize,
    last: HashMap<String, Instant>,
}

impl TypingThrottle {
    pub fn new(interval: Duration, capacity: usize) -> Self {
        Self {
            interval,
            capacity: capacity.max(1),
            last: HashMap::new(),
        }
    }

    /// Whether a notice for `room` may go out now.
    pub fn allows(&mut self, room: &str, now: Instant) -> bool {
        if self
            .last
            .get(room)
            .is_some_and(|at| now < *at + self.interval)
        {
            return false;
        }
        if self.last.len() >= self.capacity && !self.last.contains_key(room) {
            let interval = self.interval;
            self.last.retain(|_, at| now < *at + interval);
            return self.last.len() < self.capacity;
        }
        true
    }

    /// A notice for `room` went out at `now`.
    pub fn sent(&mut self, room: &str, now: Instant) {
        self.last.insert(room.to_owned(), now);
    }

    /// The user left `room`.
    pub fn forget(&mut self, room: &str) {
        self.last.remove(room);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(room: &str, seq: i64, sender: u128) -> Message {
        Message::text(room, seq, Uuid::from_u128(sender), "hi")
    }

    #[test]
    fn only_the_recipients_first_sight_of_a_newer_direct_message_is_delivered() {
        let me = Uuid::from_u128(2);
        let mut t = DeliveryTracker::default();
        assert_eq!(t.on_delivered(true, &message("dm", 1, 1), me), Some(1));
        assert_eq!(
            t.on_delivered(true, &message("dm", 1, 1), me),
            None,
            "again"
        );
        assert_eq!(t.on_delivered(true, &message("dm", 3, 1), me), Some(3));
        assert_eq!(
            t.on_delivered(true, &message("dm", 2, 1), me),
            None,
            "older"
        );
        assert_eq!(t.on_delivered(true, &message("dm", 4, 2), me), None, "own");
        assert_eq!(t.on_delivered(false, &message("group", 5, 1), me), None);
    }

    #[tokio::test(start_paused = true)]
    async fn typing_goes_out_once_per_interval_per_room() {
        let mut t = TypingThrottle::new(Duration::from_secs(1), 8);
        let t0 = Instant::now();
        assert!(t.allows("r", t0));
        t.sent("r", t0);
        assert!(!t.allows("r", t0 + Duration::from_millis(500)));
        assert!(t.allows("other", t0));
        assert!(t.allows("r", t0 + Duration::from_secs(1)));
        t.forget("r");
        assert!(t.allows("r", t0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_table_drops_stale_rooms_but_never_forgets_live_ones() {
        let mut t = TypingThrottle::new(Duration::from_secs(1), 2);
        let t0 = Instant::now();
        t.sent("a", t0);
        t.sent("b", t0);
        assert!(!t.allows("c", t0), "full of live entries: refuse");
        assert!(!t.allows("a", t0), "a is still throttled");
        let later = t0 + Duration::from_secs(2);
        assert!(t.allows("c", later), "stale ones made room");
    }
}
