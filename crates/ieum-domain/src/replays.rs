//! The pages a resume replays, read once from the store for every connection
//! that asks for the same page at about the same time.
//!
//! After a reconnect storm every member of a room resumes from the same
//! `last-seq` at once and asks for the same page `(after, upto]`: one store
//! read serves them all (the first asks, the others wait for its answer).
//!
//! A page is only as good as the events this node sees, as with the member
//! cache (`crate::members`): every change to a stored message (an edit, a
//! delete, a reaction, a pin, a read, a file's scan) is an event of its room,
//! and every event of every room passes [`Hub::deliver`](crate::hub::Hub::deliver)
//! on every node while the bus is up, which drops the room's pages. Typing and
//! presence change nothing stored and drop nothing. So a page is shared only:
//! - while the bus is complete and has not reconnected since it was read (a
//!   new epoch empties the cache);
//! - until the next such event of its room;
//! - for at most the TTL, which bounds what a lost event can leave stale (a
//!   sender's changed display name, which is no room event, too).
//!
//! A connection that got a page before an event still hears the event: it
//! subscribed before it asked for the page.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::message::Message;

/// A replayed page, shared.
pub type Page = Arc<Vec<Message>>;

/// Pages spanning more seqs than this are read by each connection itself:
/// what a storm replays is short, and long pages would make the cache large.
pub const MAX_SHARED_SPAN: i64 = 64;
/// The most pages kept (each at most [`MAX_SHARED_SPAN`] messages); past it
/// the cache starts over.
const MAX_PAGES: usize = 256;

/// One page being read, or read: whoever comes first reads, the others wait.
#[derive(Clone, Default)]
pub struct Slot(Arc<OnceCell<Option<Page>>>);

impl Slot {
    /// The page: `read`'s answer, run by the first caller only. `None` when
    /// that read failed; each caller then reads (and fails) on its own.
    pub async fn get_or_read<F, Fut>(&self, read: F) -> Option<Page>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Option<Page>>,
    {
        self.0.get_or_init(read).await.clone()
    }
}

/// A room's pages: (after, upto) -> (slot, made at).
type Pages = HashMap<(i64, i64), (Slot, Instant)>;

#[derive(Default)]
struct Inner {
    /// Room id -> its pages.
    rooms: HashMap<String, Pages>,
    len: usize,
    /// The bus epoch the pages belong to.
    epoch: u64,
}

pub struct ReplayCache {
    ttl: Duration,
    inner: Mutex<Inner>,
}

impl ReplayCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The slot of `room_id`'s page `(after, upto]`, made if there is none
    /// (or only an expired one). `None`: read the store directly, because
    /// the bus may be missing events (`epoch` is `None`) or the page is long.
    pub fn slot(&self, epoch: Option<u64>, room_id: &str, after: i64, upto: i64) -> Option<Slot> {
        let epoch = epoch?;
        if upto - after > MAX_SHARED_SPAN {
            return None;
        }
        let mut inner = self.inner();
        if inner.epoch != epoch || inner.len >= MAX_PAGES {
            inner.rooms.clear();
            inner.len = 0;
            inner.epoch = epoch;
        }
        let now = Instant::now();
        let Inner { rooms, len, .. } = &mut *inner;
        let pages = rooms.entry(room_id.to_owned()).or_default();
        match pages.get(&(after, upto)) {
            Some((slot, made)) if now.duration_since(*made) < self.ttl => {
                return Some(slot.clone());
            }
            Some(_) => {}
            None => *len += 1,
        }
        let slot = Slot::default();
        pages.insert((after, upto), (slot.clone(), now));
        Some(slot)
    }

    /// Drops `room_id`'s pages: something stored in it changed.
    pub fn forget_room(&self, room_id: &str) {
        let mut inner = self.inner();
        if let Some(pages) = inner.rooms.remove(room_id) {
            inner.len -= pages.len();
        }
    }

    /// Drops one page whose read failed, so that the next caller reads again.
    pub fn forget(&self, room_id: &str, after: i64, upto: i64) {
        let mut inner = self.inner();
        let Inner { rooms, len, .. } = &mut *inner;
        if let Some(pages) = rooms.get_mut(room_id)
            && pages.remove(&(after, upto)).is_some()
        {
            *len -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(n: i64) -> Option<Page> {
        Some(Arc::new(
            (1..=n)
                .map(|seq| Message::text("r", seq, uuid::Uuid::nil(), "x"))
                .collect(),
        ))
    }

    #[tokio::test]
    async fn one_read_serves_everyone_who_asks_for_the_same_page() {
        let cache = ReplayCache::new(Duration::from_secs(5));
        let reads = std::sync::atomic::AtomicUsize::new(0);
        let ask = || async {
            let slot = cache.slot(Some(1), "r", 10, 13).expect("shared");
            slot.get_or_read(|| async {
                reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::task::yield_now().await;
                page(3)
            })
            .await
        };
        let (a, b, c) = tokio::join!(ask(), ask(), ask());
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 1);
        for p in [a, b, c] {
            assert_eq!(p.expect("page").len(), 3);
        }
    }

    #[tokio::test]
    async fn an_event_of_the_room_a_new_epoch_or_the_ttl_start_over() {
        tokio::time::pause();
        let cache = ReplayCache::new(Duration::from_secs(5));
        let first = cache.slot(Some(1), "r", 0, 3).unwrap();
        first.get_or_read(|| async { page(3) }).await;
        let fresh = |slot: &Slot| !Arc::ptr_eq(&slot.0, &first.0);

        assert!(!fresh(&cache.slot(Some(1), "r", 0, 3).unwrap()), "shared");
        cache.forget_room("other");
        assert!(
            !fresh(&cache.slot(Some(1), "r", 0, 3).unwrap()),
            "another room's event"
        );
        cache.forget_room("r");
        assert!(
            fresh(&cache.slot(Some(1), "r", 0, 3).unwrap()),
            "its room's event"
        );

        let cache = ReplayCache::new(Duration::from_secs(5));
        let first = cache.slot(Some(1), "r", 0, 3).unwrap();
        let fresh = |slot: &Slot| !Arc::ptr_eq(&slot.0, &first.0);
        assert!(
            fresh(&cache.slot(Some(2), "r", 0, 3).unwrap()),
            "a new epoch"
        );
        let second = cache.slot(Some(2), "r", 0, 3).unwrap();
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(
            !Arc::ptr_eq(&second.0, &cache.slot(Some(2), "r", 0, 3).unwrap().0),
            "the TTL"
        );
    }

    #[test]
    fn no_sharing_without_a_complete_bus_or_for_long_pages() {
        let cache = ReplayCache::new(Duration::from_secs(5));
        assert!(cache.slot(None, "r", 0, 3).is_none());
        assert!(cache.slot(Some(1), "r", 0, MAX_SHARED_SPAN + 1).is_none());
        assert!(cache.slot(Some(1), "r", 0, MAX_SHARED_SPAN).is_some());
    }

    #[tokio::test]
    async fn a_failed_read_is_not_kept() {
        let cache = ReplayCache::new(Duration::from_secs(5));
        let slot = cache.slot(Some(1), "r", 0, 3).unwrap();
        assert!(slot.get_or_read(|| async { None }).await.is_none());
        cache.forget("r", 0, 3);
        let again = cache.slot(Some(1), "r", 0, 3).unwrap();
        assert_eq!(
            again.get_or_read(|| async { page(3) }).await.unwrap().len(),
            3
        );
    }
}
