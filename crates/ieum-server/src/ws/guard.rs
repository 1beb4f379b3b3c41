//! The raw bytes of a WebSocket connection, checked frame header by frame
//! header before actix buffers them (see `ieum_wsframe` for why).
//!
//! Until CONNECT succeeds a connection gets a small budget; after it, the
//! configured frame limit. A refused frame ends the stream with an error and
//! leaves the refusal for the connection to close with its code (1009 or 1002).

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use futures_util::Stream;
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

    /// Why the stream ended, when the guard ended it.
    pub fn refusal(&self) -> Option<Refusal> {
        self.refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// `inner` with every frame header checked against the budget.
pub struct Guarded<S> {
    inner: S,
    guard: FrameGuard,
    budget: Budget,
    done: bool,
}

impl<S> Guarded<S> {
    pub fn new(inner: S, budget: Budget) -> Self {
        Self {
            inner,
            guard: FrameGuard::new(),
            budget,
            done: false,
        }
    }
}

impl<S> Stream for Guarded<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(bytes))) => {
                let max = this.budget.max_bytes.load(Ordering::Relaxed);
                let limits = Limits {
                    max_frame_bytes: max,
                    max_message_bytes: max,
                };
                match this.guard.scan(&bytes, limits) {
                    Ok(()) => Poll::Ready(Some(Ok(bytes))),
                    Err(refusal) => {
                        *this
                            .budget
                            .refused
                            .lock()
                            .unwrap_or_else(|p| p.into_inner()) = Some(refusal);
                        this.done = true;
                        Poll::Ready(Some(Err(PayloadError::Overflow)))
                    }
                }
            }
            other => other,
        }
    }
}
