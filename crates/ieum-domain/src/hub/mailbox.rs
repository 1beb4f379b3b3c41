//! A connection's mailbox: the bounded queue feeds deliver into, and the
//! overflow signal that tells a connection it was too slow.
//!
//! Not a tokio channel: one allocates a block of 32 slots up front and
//! keeps it, about 1.6 KiB that every idle connection held. This queue
//! holds nothing while empty and lets go of what a burst made it grow to
//! (docs/benchmarks.md, memory per idle connection).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use super::RoomEvent;

/// A queue emptied after it grew past this many slots gives its memory back.
const KEEP_SLOTS: usize = 16;

/// One event for one subscription of a connection.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub subscription: Arc<str>,
    /// Which wire shape the subscription speaks (opaque to the domain).
    pub shape: u8,
    pub event: Arc<RoomEvent>,
}

#[derive(Debug)]
struct Shared {
    queue: Mutex<VecDeque<Delivery>>,
    capacity: usize,
    /// Wakes the receiver: a delivery came, or the last sender went.
    ready: Notify,
    overflow: Notify,
    senders: AtomicUsize,
    receiver_gone: AtomicBool,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, VecDeque<Delivery>> {
        // A panic while holding it cannot leave the queue half-changed.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The sending half of a connection's outbound queue.
#[derive(Debug)]
pub struct Mailbox {
    pub(super) id: u64,
    shared: Arc<Shared>,
}

impl Clone for Mailbox {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        Self {
            id: self.id,
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.ready.notify_one();
        }
    }
}

#[derive(Debug)]
pub struct MailboxReceiver {
    pub rx: Inbox,
    pub overflow: Overflow,
}

/// The receiving half: what the connection writes to its client.
#[derive(Debug)]
pub struct Inbox(Arc<Shared>);

impl Inbox {
    /// The next delivery, oldest first; `None` once every sender is gone
    /// and the queue is empty. Cancel-safe: a delivery is taken only by a
    /// call that returns it.
    pub async fn recv(&mut self) -> Option<Delivery> {
        loop {
            {
                let mut queue = self.0.queue();
                if let Some(d) = queue.pop_front() {
                    if queue.is_empty() && queue.capacity() > KEEP_SLOTS {
                        *queue = VecDeque::new();
                    }
                    return Some(d);
                }
            }
            if self.0.senders.load(Ordering::Acquire) == 0 {
                // A last delivery may have come between the look above and
                // its sender going: take it (none can come after).
                return self.0.queue().pop_front();
            }
            // A delivery offered since the check left a permit: no wake-up
            // is lost between the check and the wait.
            self.0.ready.notified().await;
        }
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        self.0.receiver_gone.store(true, Ordering::Release);
        self.0.queue().clear();
    }
}

/// Tells a connection that a feed found its mailbox full and dropped it.
#[derive(Debug)]
pub struct Overflow(Arc<Shared>);

impl Overflow {
    /// Resolves when a feed found the mailbox full.
    pub async fn wait(&self) {
        self.0.overflow.notified().await
    }
}

impl MailboxReceiver {
    pub async fn overflowed(&self) {
        self.overflow.wait().await
    }
}

/// A bounded mailbox for one connection.
pub fn mailbox(capacity: usize) -> (Mailbox, MailboxReceiver) {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let shared = Arc::new(Shared {
        queue: Mutex::new(VecDeque::new()),
        capacity: capacity.max(1),
        ready: Notify::new(),
        overflow: Notify::new(),
        senders: AtomicUsize::new(1),
        receiver_gone: AtomicBool::new(false),
    });
    (
        Mailbox {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            shared: shared.clone(),
        },
        MailboxReceiver {
            rx: Inbox(shared.clone()),
            overflow: Overflow(shared),
        },
    )
}

impl Mailbox {
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Whether the connection that reads it is gone.
    pub fn is_closed(&self) -> bool {
        self.shared.receiver_gone.load(Ordering::Acquire)
    }

    /// Hands a delivery over without waiting. `false` when the receiver is gone or
    /// full (then the owner is told it overflowed).
    pub fn offer(&self, d: Delivery) -> bool {
        if self.is_closed() {
            return false;
        }
        {
            let mut queue = self.shared.queue();
            if queue.len() >= self.shared.capacity {
                drop(queue);
                self.shared.overflow.notify_one();
                return false;
            }
            queue.push_back(d);
        }
        self.shared.ready.notify_one();
        true
    }
}
