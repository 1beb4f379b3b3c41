//! What an HTTP-carried session has for its client: encoded packets or
//! frames, drained by whichever request holds the session (an Engine.IO
//! long-poll GET or its WebSocket after an upgrade; a SockJS xhr poll or
//! stream). Bounded: a client that stops fetching fills it and its session
//! ends (the slow-consumer rule of every transport).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

pub(crate) struct Outbox {
    queue: Mutex<VecDeque<String>>,
    notify: Notify,
    max_packets: usize,
}

impl Outbox {
    pub(crate) fn new(max_packets: usize) -> Self {
        Self {
            queue: Mutex::new(VecDeque::new()),
            notify: Notify::new(),
            max_packets,
        }
    }

    /// Queues a packet; false when the queue is full (the session must end).
    pub(crate) fn push(&self, packet: String) -> bool {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if queue.len() >= self.max_packets {
            return false;
        }
        queue.push_back(packet);
        drop(queue);
        self.notify.notify_one();
        true
    }

    /// Everything queued, up to `max_bytes` (at least one packet).
    pub(crate) fn take(&self, max_bytes: usize) -> Vec<String> {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let mut taken = Vec::new();
        let mut bytes = 0;
        while let Some(next) = queue.front() {
            if !taken.is_empty() && bytes + next.len() + 1 > max_bytes {
                break;
            }
            bytes += next.len() + 1;
            taken.extend(queue.pop_front());
        }
        if !queue.is_empty() {
            // More than one response holds: the next fetch finds it at once.
            self.notify.notify_one();
        }
        taken
    }

    /// Resolves once something may be queued.
    pub(crate) async fn ready(&self) {
        if !self
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
        {
            return;
        }
        self.notify.notified().await;
    }
}

/// The HTTP-carried sessions this node holds, by id: a request for a
/// session must reach the node that holds it (sticky sessions, DEPLOY.md).
pub struct Registry<H>(Arc<Mutex<HashMap<String, Arc<H>>>>);

impl<H> Clone for Registry<H> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<H> Default for Registry<H> {
    fn default() -> Self {
        Self(Arc::default())
    }
}

impl<H> Registry<H> {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<H>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn find(&self, id: &str) -> Option<Arc<H>> {
        self.map().get(id).cloned()
    }

    /// Holds `handle` under `id`, unless a session holds the id already:
    /// then that one is answered.
    pub(crate) fn insert(&self, id: &str, handle: Arc<H>) -> Arc<H> {
        self.map().entry(id.to_owned()).or_insert(handle).clone()
    }

    /// Lets go of `handle`, if `id` still names it.
    pub(crate) fn remove(&self, id: &str, handle: &Arc<H>) {
        let mut map = self.map();
        if map.get(id).is_some_and(|held| Arc::ptr_eq(held, handle)) {
            map.remove(id);
        }
    }
}
