//! What an Engine.IO session has for its client: encoded packets, drained
//! by whichever transport holds the session (a long-poll GET, or the
//! WebSocket after an upgrade). Bounded: a client that stops fetching
//! fills it and its session ends (the slow-consumer rule of every transport).

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::Notify;

pub(super) struct Outbox {
    queue: Mutex<VecDeque<String>>,
    notify: Notify,
    max_packets: usize,
}

impl Outbox {
    pub(super) fn new(max_packets: usize) -> Self {
        Self {
            queue: Mutex::new(VecDeque::new()),
            notify: Notify::new(),
            max_packets,
        }
    }

    /// Queues a packet; false when the queue is full (the session must end).
    pub(super) fn push(&self, packet: String) -> bool {
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
    pub(super) fn take(&self, max_bytes: usize) -> Vec<String> {
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
    pub(super) async fn ready(&self) {
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
