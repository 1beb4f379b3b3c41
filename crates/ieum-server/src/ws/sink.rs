//! Where a STOMP connection writes: a WebSocket, or the outbox of a SockJS
//! session carried by HTTP requests (xhr-streaming, xhr-polling).

use std::sync::Arc;
use std::time::Duration;

use actix_ws::CloseReason;

use super::sockjs::Handle;

/// A write that could not be made: the peer is gone or too far behind.
pub(super) struct Gone;

pub(super) enum Sink {
    Ws(crate::wsio::WsOut),
    Http(Arc<Handle>),
}

impl Sink {
    /// Whether the carrier has WebSocket pings: HTTP sessions are kept alive
    /// by their requests, and SockJS's heart-beat frames, instead.
    pub(super) fn has_pings(&self) -> bool {
        matches!(self, Sink::Ws(_))
    }

    /// Writes one text message. A WebSocket peer that takes no data within
    /// `limit` (its TCP window stays full) is gone, so a stalled phone
    /// cannot pin its session forever; an HTTP session whose outbox is full
    /// is too far behind.
    pub(super) async fn text(&mut self, text: String, limit: Duration) -> Result<(), Gone> {
        match self {
            Sink::Ws(out) => match tokio::time::timeout(limit, out.text(text)).await {
                Ok(Ok(())) => Ok(()),
                _ => Err(Gone),
            },
            Sink::Http(handle) => handle.outbox.push(text).then_some(()).ok_or(Gone),
        }
    }

    pub(super) async fn ping(&mut self, payload: &[u8]) -> Result<(), Gone> {
        match self {
            Sink::Ws(out) => out.ping(payload).await.map_err(|_| Gone),
            Sink::Http(_) => Ok(()),
        }
    }

    pub(super) async fn pong(&mut self, payload: &[u8]) -> Result<(), Gone> {
        match self {
            Sink::Ws(out) => out.pong(payload).await.map_err(|_| Gone),
            Sink::Http(_) => Ok(()),
        }
    }

    /// Ends the carrier: a WebSocket close (within `limit`), or the HTTP
    /// session marked closed so that its requests end once drained.
    pub(super) async fn close(self, reason: Option<CloseReason>, limit: Duration) {
        match self {
            Sink::Ws(out) => {
                let _ = tokio::time::timeout(limit, out.close(reason)).await;
            }
            Sink::Http(handle) => handle.close(),
        }
    }
}
