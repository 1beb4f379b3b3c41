//! Reading and writing WebSocket frames on the socket itself, after the
//! upgrade. Nothing is buffered while a connection is idle: a read buffer
//! exists only while a frame is arriving, a write buffer only while one
//! frame goes out.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_codec::{Decoder, Encoder};
use actix_http::ws::{CloseReason, Codec, Frame, Item, Message, ProtocolError};
use actix_web::web::{Bytes, BytesMut};
use actix_ws::AggregatedMessage;
use bytestring::ByteString;
use futures_util::Stream;
use ieum_wsframe::FrameGuard;
use tokio::net::TcpStream;

use crate::ws::guard::Budget;

/// What one read takes from the socket at most.
const READ_CHUNK: usize = 4096;
/// RFC 6455 section 5.5: a control frame carries at most 125 bytes.
const MAX_CONTROL_PAYLOAD: usize = 125;
/// A close frame's reason text: 125 bytes less the two of the code.
const MAX_CLOSE_REASON: usize = MAX_CONTROL_PAYLOAD - 2;

/// The peer is gone, or stopped taking data within the write limit.
#[derive(Debug)]
pub struct Closed;

/// The messages a client sends: frames decoded from the socket,
/// continuations joined, every header checked by the guard first.
pub struct WsIn {
    io: Arc<TcpStream>,
    buf: BytesMut,
    codec: Codec,
    guard: FrameGuard,
    budget: Budget,
    /// The message being joined from continuation frames.
    joining: Option<(Kind, BytesMut)>,
    max_message: usize,
    /// A refusal of the bytes that came with the upgrade request, said first.
    refused: Option<ProtocolError>,
    done: bool,
}

#[derive(Clone, Copy)]
enum Kind {
    Text,
    Binary,
}

impl WsIn {
    pub(super) fn new(io: Arc<TcpStream>, leftover: BytesMut, max: usize, budget: Budget) -> Self {
        let mut this = Self {
            io,
            buf: BytesMut::new(),
            codec: Codec::new().max_size(max),
            guard: FrameGuard::new(),
            budget,
            joining: None,
            max_message: max,
            refused: None,
            done: false,
        };
        // Bytes that came with the upgrade request pass the guard like any others.
        if !leftover.is_empty() && !this.admit(&leftover) {
            this.refused = Some(ProtocolError::Overflow);
        }
        this.buf = leftover;
        this
    }

    /// Checks bytes read from the socket; false when the guard refused them.
    fn admit(&mut self, bytes: &[u8]) -> bool {
        self.budget.scan(&mut self.guard, bytes)
    }

    /// The next whole message in what was read, if any.
    fn decode(&mut self) -> Result<Option<AggregatedMessage>, ProtocolError> {
        while let Some(frame) = self.codec.decode(&mut self.buf)? {
            let message = match frame {
                Frame::Text(bytes) => AggregatedMessage::Text(text(bytes)?),
                Frame::Binary(bytes) => AggregatedMessage::Binary(bytes),
                Frame::Ping(bytes) => AggregatedMessage::Ping(bytes),
                Frame::Pong(bytes) => AggregatedMessage::Pong(bytes),
                Frame::Close(reason) => AggregatedMessage::Close(reason),
                Frame::Continuation(item) => match self.join(item)? {
                    Some(message) => message,
                    None => continue,
                },
            };
            return Ok(Some(message));
        }
        Ok(None)
    }

    /// One continuation frame; the message once its last frame is in.
    fn join(&mut self, item: Item) -> Result<Option<AggregatedMessage>, ProtocolError> {
        let (bytes, last) = match item {
            Item::FirstText(_) | Item::FirstBinary(_) if self.joining.is_some() => {
                return Err(ProtocolError::ContinuationStarted);
            }
            Item::FirstText(b) => {
                self.joining = Some((Kind::Text, BytesMut::new()));
                (b, false)
            }
            Item::FirstBinary(b) => {
                self.joining = Some((Kind::Binary, BytesMut::new()));
                (b, false)
            }
            Item::Continue(b) => (b, false),
            Item::Last(b) => (b, true),
        };
        let Some((kind, joined)) = self.joining.as_mut() else {
            return Err(ProtocolError::ContinuationNotStarted);
        };
        if joined.len() + bytes.len() > self.max_message {
            return Err(ProtocolError::Overflow);
        }
        joined.extend_from_slice(&bytes);
        if !last {
            return Ok(None);
        }
        let kind = *kind;
        let joined = self
            .joining
            .take()
            .map(|(_, b)| b.freeze())
            .unwrap_or_default();
        Ok(Some(match kind {
            Kind::Text => AggregatedMessage::Text(text(joined)?),
            Kind::Binary => AggregatedMessage::Binary(joined),
        }))
    }

    /// Reads what the socket has. `Ready(Ok(false))` at the end of the stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool, ProtocolError>> {
        loop {
            match self.io.poll_read_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(ProtocolError::Io(e))),
                Poll::Pending => return Poll::Pending,
            }
            let mut chunk = [0u8; READ_CHUNK];
            match self.io.try_read(&mut chunk) {
                Ok(0) => return Poll::Ready(Ok(false)),
                Ok(n) => {
                    if !self.admit(&chunk[..n]) {
                        return Poll::Ready(Err(ProtocolError::Overflow));
                    }
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Poll::Ready(Ok(true));
                }
                // Readiness was stale: cleared, so the next poll waits.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(ProtocolError::Io(e))),
            }
        }
    }
}

impl Stream for WsIn {
    type Item = Result<AggregatedMessage, ProtocolError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if let Some(refusal) = this.refused.take() {
            this.done = true;
            return Poll::Ready(Some(Err(refusal)));
        }
        loop {
            match this.decode() {
                Ok(Some(message)) => return Poll::Ready(Some(Ok(message))),
                Ok(None) => {}
                Err(e) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
            }
            // Nothing read is kept as an allocation while waiting, and the
            // start of a frame not in yet is kept in a buffer of its size,
            // not in what a large frame before it grew.
            if this.buf.is_empty() && this.buf.capacity() > 0 {
                this.buf = BytesMut::new();
            } else if this.buf.capacity() > READ_CHUNK.max(2 * this.buf.len()) {
                this.buf = BytesMut::from(&this.buf[..]);
            }
            match this.poll_fill(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(true)) => {}
                Poll::Ready(Ok(false)) => {
                    this.done = true;
                    return Poll::Ready(None);
                }
                Poll::Ready(Err(e)) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }
}

fn text(bytes: Bytes) -> Result<ByteString, ProtocolError> {
    ByteString::try_from(bytes)
        .map_err(|e| ProtocolError::Io(io::Error::new(io::ErrorKind::InvalidData, e)))
}

/// Where a connection's messages go: each frame written whole, within the
/// write limit, or the connection counts as gone.
pub struct WsOut {
    io: Arc<TcpStream>,
    codec: Codec,
    limit: Duration,
    /// A write was cut off mid-frame (or failed): the stream is unusable.
    broken: bool,
}

impl WsOut {
    pub(super) fn new(io: Arc<TcpStream>, limit: Duration) -> Self {
        Self {
            io,
            codec: Codec::new(),
            limit,
            broken: false,
        }
    }

    pub async fn text(&mut self, text: impl Into<ByteString>) -> Result<(), Closed> {
        self.send(Message::Text(text.into())).await
    }

    pub async fn ping(&mut self, payload: &[u8]) -> Result<(), Closed> {
        let payload = &payload[..payload.len().min(MAX_CONTROL_PAYLOAD)];
        self.send(Message::Ping(Bytes::copy_from_slice(payload)))
            .await
    }

    pub async fn pong(&mut self, payload: &[u8]) -> Result<(), Closed> {
        let payload = &payload[..payload.len().min(MAX_CONTROL_PAYLOAD)];
        self.send(Message::Pong(Bytes::copy_from_slice(payload)))
            .await
    }

    /// Sends the close frame; the socket itself closes when the connection
    /// ends (see `super::linger`).
    pub async fn close(mut self, reason: Option<CloseReason>) -> Result<(), Closed> {
        let reason = reason.map(|mut r| {
            if let Some(d) = r.description.as_mut() {
                let mut end = d.len().min(MAX_CLOSE_REASON);
                while !d.is_char_boundary(end) {
                    end -= 1;
                }
                d.truncate(end);
            }
            r
        });
        self.send(Message::Close(reason)).await
    }

    async fn send(&mut self, message: Message) -> Result<(), Closed> {
        if self.broken {
            return Err(Closed);
        }
        let mut frame = BytesMut::new();
        self.codec.encode(message, &mut frame).map_err(|_| Closed)?;
        // Cleared only once the frame is out whole: a write cancelled or
        // timed out halfway leaves the stream unusable.
        self.broken = true;
        match tokio::time::timeout(self.limit, write_all(&self.io, &frame)).await {
            Ok(Ok(())) => {
                self.broken = false;
                Ok(())
            }
            _ => Err(Closed),
        }
    }
}

pub(super) async fn write_all(io: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        io.writable().await?;
        match io.try_write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
