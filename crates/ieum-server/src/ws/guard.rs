//! The raw bytes of a WebSocket connection, checked frame header by frame
//! header before their payloads are buffered (see `ieum_wsframe` for why).
//!
//! Until CONNECT succeeds a connection gets a small budget; after it, the
//! configured frame limit. A refused frame ends the stream with an error and
//! leaves the refusal for the connection to close with its code (1009 or 1002).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ieum_wsframe::{FrameGuard, Limits, Refusal};

/// The limit in force for one connection, shared by its reader and its session.
#[derive(Debug, Clone)]
pub struct Budget {
    max_bytes: Arc<AtomicUsize>,
    refused: Arc<Mutex<Option<Refusal>>>,
}

impl Budget {
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes: Arc::new(AtomicUsize::new(max_bytes)),
            refused: Arc::default(),
        }
    }

    /// Raises (or lowers) the limit for the frames still to come.
    pub fn set(&self, max_bytes: usize) {
        self.max_bytes.store(max_bytes, Ordering::Relaxed);
    }

    /// The limit in force now.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes.load(Ordering::Relaxed)
    }

    /// Checks the headers in `bytes`, the next read from the socket, against
    /// the limit in force; false (and the refusal kept) when one is refused.
    pub fn scan(&self, guard: &mut FrameGuard, bytes: &[u8]) -> bool {
        let max = self.max_bytes();
        let limits = Limits {
            max_frame_bytes: max,
            max_message_bytes: max,
        };
        match guard.scan(bytes, limits) {
            Ok(()) => true,
            Err(refusal) => {
                *self.refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(refusal);
                false
            }
        }
    }

    /// Why the stream ended, when the guard ended it.
    pub fn refusal(&self) -> Option<Refusal> {
        self.refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
