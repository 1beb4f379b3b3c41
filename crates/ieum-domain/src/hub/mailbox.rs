//! A connection's mailbox: the bounded queue feeds deliver into, and the
//! overflow signal that tells a connection it was too slow.

use std::sync::Arc;

use tokio::sync::{Notify, mpsc};

use super::RoomEvent;

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
    pub(super) id: u64,
    pub(super) tx: mpsc::Sender<Delivery>,
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
