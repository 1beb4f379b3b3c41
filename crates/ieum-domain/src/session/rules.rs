//! Per-connection rules every transport applies the same way: when a
//! message counts as delivered, when it was proven received (for pushes),
//! how often typing notices go out, and how fast a connection may send.

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

/// Proofs of receipt, for pushes. Writing a message to a socket proves
/// nothing: a phone that froze (or lost its radio) leaves it in the TCP
/// buffers. The transport asks for a mark after writing messages, sends
/// something the client must answer after reading them (a WebSocket ping),
/// and on the answer everything written before the mark counts as
/// received. One mark is in flight at a time; what is written meanwhile
/// waits for the next. Memory: a seq per room.
#[derive(Debug, Default)]
pub struct ProofTracker {
    unproven: HashMap<String, i64>,
    in_flight: Option<InFlight>,
    next_mark: u64,
}

#[derive(Debug)]
struct InFlight {
    mark: u64,
    sent: Instant,
    rooms: HashMap<String, i64>,
}

/// A mark unanswered this long is given up: its rooms wait for the next
/// one (a client may answer only the latest of several pings, a proxy may
/// eat pongs).
pub const PROOF_RETRY: Duration = Duration::from_secs(5);

impl ProofTracker {
    /// A message of another member was written to the client.
    pub fn written(&mut self, room_id: &str, seq: i64) {
        let entry = self.unproven.entry(room_id.to_owned()).or_insert(seq);
        *entry = (*entry).max(seq);
    }

    /// A mark to send when something waits for proof and no mark is out
    /// (or the one out went unanswered for [`PROOF_RETRY`]).
    pub fn request(&mut self, now: Instant) -> Option<u64> {
        if let Some(out) = &self.in_flight {
            if now.duration_since(out.sent) < PROOF_RETRY {
                return None;
            }
            let lapsed = self.in_flight.take().map(|f| f.rooms).unwrap_or_default();
            for (room, seq) in lapsed {
                self.written(&room, seq);
            }
        }
        if self.unproven.is_empty() {
            return None;
        }
        self.next_mark += 1;
        self.in_flight = Some(InFlight {
            mark: self.next_mark,
            sent: now,
            rooms: std::mem::take(&mut self.unproven),
        });
        Some(self.next_mark)
    }

    /// The mark out, if any: every ping may carry it.
    pub fn outstanding(&self) -> Option<u64> {
        self.in_flight.as_ref().map(|f| f.mark)
    }

    /// The client answered `mark` (or a later one): the (room, seq) pairs
    /// it proves.
    pub fn answered(&mut self, mark: u64) -> Vec<(String, i64)> {
        match self.in_flight.take() {
            Some(out) if out.mark <= mark => out.rooms.into_iter().collect(),
            other => {
                self.in_flight = other;
                Vec::new()
            }
        }
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

/// A token bucket for sends.
#[derive(Debug)]
pub(super) struct Bucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    at: Instant,
}

impl Bucket {
    pub(super) fn new(rate: u32) -> Self {
        let rate = f64::from(rate.max(1));
        Self {
            tokens: rate * 2.0,
            rate,
            burst: rate * 2.0,
            at: Instant::now(),
        }
    }

    pub(super) fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}
