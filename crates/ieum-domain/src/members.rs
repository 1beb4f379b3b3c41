//! Who is an active member of which room, remembered per node so that a SEND,
//! a typing notice or a read does not cost a membership query each.
//!
//! The cache is only as good as the events this node sees. Every membership that
//! ends does so with a `MemberLeft` event on the room (leave, kick, ban), and
//! every event of every room passes [`Hub::deliver`](crate::hub::Hub::deliver)
//! on every node while the bus is up; that drops the entry. So an entry is
//! trusted only while:
//! - the bus is complete ([`EventBus::epoch`](crate::ports::EventBus::epoch) is
//!   `Some`) and has not reconnected since the entry was made (events may have
//!   been lost meanwhile): a new epoch empties the cache;
//! - no member left anywhere between the store read and the insert (a
//!   [`MemberTicket`] taken before the read says so), so a read that raced a
//!   kick is not remembered;
//! - it is younger than the TTL, which bounds how long a lost event (a publish
//!   that failed on the other node) can keep a removed member sending.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

use crate::room::RoomKind;

/// The most entries kept; past it the cache starts over.
const MAX_ENTRIES: usize = 100_000;

/// Taken before reading a membership from the store; [`MemberCache::remember`]
/// keeps the result only if nothing that could change it happened since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberTicket {
    changes: u64,
    epoch: u64,
}

#[derive(Debug)]
struct Inner {
    /// Room id -> member -> (room kind, remembered at).
    rooms: HashMap<String, HashMap<Uuid, (RoomKind, Instant)>>,
    len: usize,
    /// Bumped by every membership that ended.
    changes: u64,
    /// The bus epoch the entries belong to.
    epoch: u64,
}

#[derive(Debug)]
pub struct MemberCache {
    ttl: Duration,
    inner: Mutex<Inner>,
}

impl MemberCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            inner: Mutex::new(Inner {
                rooms: HashMap::new(),
                len: 0,
                changes: 0,
                epoch: 0,
            }),
        }
    }

    fn lock(&self, epoch: u64) -> std::sync::MutexGuard<'_, Inner> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.epoch != epoch {
            g.rooms.clear();
            g.len = 0;
            g.epoch = epoch;
            // Tickets of the old epoch are void.
            g.changes += 1;
        }
        g
    }

    /// The room's kind if `user` is known to be an active member. `epoch` is the
    /// bus's now (`None`: the bus is down, nothing is trusted).
    pub fn get(&self, epoch: Option<u64>, room_id: &str, user: Uuid) -> Option<RoomKind> {
        let g = self.lock(epoch?);
        let (kind, at) = g.rooms.get(room_id)?.get(&user)?;
        (at.elapsed() < self.ttl).then_some(*kind)
    }

    pub fn ticket(&self, epoch: Option<u64>) -> Option<MemberTicket> {
        let epoch = epoch?;
        let g = self.lock(epoch);
        Some(MemberTicket {
            changes: g.changes,
            epoch,
        })
    }

    /// Remembers an active membership read from the store after `ticket` was
    /// taken, unless a membership ended or the bus reconnected since.
    pub fn remember(&self, ticket: MemberTicket, room_id: &str, user: Uuid, kind: RoomKind) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.changes != ticket.changes || g.epoch != ticket.epoch {
            return;
        }
        if g.len >= MAX_ENTRIES {
            g.rooms.clear();
            g.len = 0;
        }
        let members = g.rooms.entry(room_id.to_owned()).or_default();
        if members.insert(user, (kind, Instant::now())).is_none() {
            g.len += 1;
        }
    }

    /// A membership ended (seen as a `MemberLeft` event).
    pub fn forget(&self, room_id: &str, user: Uuid) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.changes += 1;
        let removed = match g.rooms.get_mut(room_id) {
            Some(members) => {
                let removed = members.remove(&user).is_some();
                if members.is_empty() {
                    g.rooms.remove(room_id);
                }
                removed
            }
            None => false,
        };
        if removed {
            g.len -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(15);

    #[tokio::test(start_paused = true)]
    async fn remembers_until_a_leave_a_new_epoch_or_the_ttl() {
        let c = MemberCache::new(TTL);
        let u = Uuid::now_v7();
        assert_eq!(c.get(Some(1), "r", u), None);
        let t = c.ticket(Some(1)).unwrap();
        c.remember(t, "r", u, RoomKind::Group);
        assert_eq!(c.get(Some(1), "r", u), Some(RoomKind::Group));
        // The bus is down: nothing is trusted.
        assert_eq!(c.get(None, "r", u), None);
        assert!(c.ticket(None).is_none());
        // A leave drops it.
        c.forget("r", u);
        assert_eq!(c.get(Some(1), "r", u), None);
        // A new bus epoch (a reconnect) drops everything.
        let t = c.ticket(Some(1)).unwrap();
        c.remember(t, "r", u, RoomKind::Direct);
        assert_eq!(c.get(Some(1), "r", u), Some(RoomKind::Direct));
        assert_eq!(c.get(Some(2), "r", u), None);
        assert_eq!(c.get(Some(1), "r", u), None);
        // The TTL.
        let t = c.ticket(Some(1)).unwrap();
        c.remember(t, "r", u, RoomKind::Group);
        tokio::time::advance(TTL - Duration::from_millis(1)).await;
        assert_eq!(c.get(Some(1), "r", u), Some(RoomKind::Group));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(c.get(Some(1), "r", u), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_that_raced_a_leave_is_not_remembered() {
        let c = MemberCache::new(TTL);
        let (u, other) = (Uuid::now_v7(), Uuid::now_v7());
        let t = c.ticket(Some(1)).unwrap();
        // Someone (anyone) left while the store was read.
        c.forget("r", other);
        c.remember(t, "r", u, RoomKind::Group);
        assert_eq!(c.get(Some(1), "r", u), None);
        // Nor one whose bus reconnected meanwhile.
        let t = c.ticket(Some(1)).unwrap();
        assert_eq!(c.get(Some(2), "r", u), None);
        c.remember(t, "r", u, RoomKind::Group);
        assert_eq!(c.get(Some(2), "r", u), None);
        // A ticket taken afterwards is good.
        let t = c.ticket(Some(2)).unwrap();
        c.remember(t, "r", u, RoomKind::Group);
        assert_eq!(c.get(Some(2), "r", u), Some(RoomKind::Group));
    }
}
