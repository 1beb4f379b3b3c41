//! One STOMP connection: the loop that reads WebSocket messages into the STOMP
//! decoder, writes the session's deliveries, and keeps the timers (CONNECT
//! deadline, partial frames, heart-beats, WebSocket pings). What each frame
//! does is in `commands.rs`; the rules are the session core's.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix_ws::{AggregatedMessage, CloseCode, CloseReason, ProtocolError};
use futures_util::{Stream, StreamExt};
use ieum_domain::DomainError;
use ieum_domain::auth::Grant;
use ieum_domain::hub::{Delivery, MailboxReceiver};
use ieum_domain::session::Session;
use ieum_stomp::{Decoder, Frame, Item, Limits};
use tokio::time::Instant;

use super::frames::{error_frame, frame_text};
use super::guard::Budget;
use super::notices::error_notice;
use super::routing::ERRORS_DESTINATION;
use super::sink::Sink;
use crate::app::AppState;

/// When neither side wants STOMP heart-beats, WebSocket pings keep NATs open.
const WS_PING: Duration = Duration::from_secs(30);
const WS_IDLE: Duration = Duration::from_secs(90);
/// The start of a proof-of-receipt ping's payload (then the mark, 8 bytes).
const PROOF_PREFIX: &[u8] = b"ieum-proof:";

/// A WebSocket ping's payload carrying a proof mark (STOMP and JSON alike).
pub(crate) fn proof_payload(mark: u64) -> Vec<u8> {
    let mut payload = PROOF_PREFIX.to_vec();
    payload.extend_from_slice(&mark.to_be_bytes());
    payload
}

/// The mark a pong's payload answers, if it answers one.
pub(crate) fn proof_mark(payload: &[u8]) -> Option<u64> {
    payload
        .strip_prefix(PROOF_PREFIX)
        .and_then(|rest| <[u8; 8]>::try_from(rest).ok())
        .map(u64::from_be_bytes)
}

/// Stops the connection loop (after whatever was sent to say why).
pub(super) struct Stop;
pub(super) type Step = Result<(), Stop>;

/// What woke the connection loop.
enum Wake {
    Message(Option<Result<AggregatedMessage, ProtocolError>>),
    Delivery(Option<Delivery>),
    Overflowed,
    Timer,
    Drained,
}

pub(super) struct Conn {
    /// Shared, not copied: a copy of every service handle per connection
    /// is hundreds of bytes each idle connection would hold.
    pub(super) state: Arc<AppState>,
    pub(super) session: Session,
    inbox: Option<MailboxReceiver>,
    /// What a token on the upgrade request proved.
    pub(super) handshake: Option<Grant>,
    decoder: Decoder,
    /// The `/user/queue/errors` subscription, a transport matter: failures of
    /// single frames go there instead of closing the connection.
    pub(super) errors_sub: Option<String>,
    /// Each subscription's MESSAGE prefix, escaped once.
    pub(super) prefixes: HashMap<Arc<str>, String>,
    pub(super) send_every: Option<Duration>,
    pub(super) expect_every: Option<Duration>,
    started: Instant,
    last_recv: Instant,
    last_send: Instant,
    last_ping: Instant,
    partial_since: Option<Instant>,
    out: Option<Sink>,
    pub(super) budget: Budget,
    /// How to close when the loop stops, if not the default.
    close_with: Option<CloseReason>,
    token_expires: Option<Instant>,
    /// SockJS framing around the STOMP text (`o`, `a[...]`, `h`, `c[...]`).
    sockjs: bool,
    /// This connection's place among those not signed in yet, given back
    /// when CONNECT succeeds (or the connection ends).
    pending: Option<super::ConnectionSlot>,
}

impl Conn {
    pub(super) fn new(
        state: Arc<AppState>,
        handshake: Option<Grant>,
        out: Sink,
        budget: Budget,
        sockjs: bool,
    ) -> Self {
        let c = &state.config;
        let limits = Limits {
            max_frame_bytes: c.stomp_max_frame_bytes,
            max_headers: c.stomp_max_headers,
            max_header_bytes: c.stomp_max_header_bytes,
        };
        // Only a WebSocket's pongs prove what a client read.
        let proofs = if out.has_pings() {
            crate::app::Proofs::Answered
        } else {
            crate::app::Proofs::None
        };
        let transport = match (sockjs, out.has_pings()) {
            (false, _) => "stomp",
            (true, true) => "sockjs-websocket",
            (true, false) => "sockjs-xhr",
        };
        let (session, inbox) = state.open_session(proofs, transport);
        let now = Instant::now();
        Self {
            state,
            session,
            inbox: Some(inbox),
            handshake,
            decoder: Decoder::new(limits),
            errors_sub: None,
            prefixes: HashMap::new(),
            send_every: None,
            expect_every: None,
            started: now,
            last_recv: now,
            last_send: now,
            last_ping: now,
            partial_since: None,
            out: Some(out),
            budget,
            close_with: None,
            token_expires: None,
            sockjs,
            pending: None,
        }
    }

    /// Holds `slot` until CONNECT succeeds.
    pub(super) fn pending(mut self, slot: super::ConnectionSlot) -> Self {
        self.pending = Some(slot);
        self
    }

    /// CONNECT succeeded: the connection no longer counts as a pending handshake.
    pub(super) fn signed_in(&mut self) {
        self.pending = None;
    }

    /// Runs the connection until it ends. Boxed: a future keeps its
    /// arguments apart from its locals, so a `Conn` by value would be held
    /// twice, or three times, by every idle connection's task.
    pub(super) async fn run<S>(mut self: Box<Self>, mut stream: S)
    where
        S: Stream<Item = Result<AggregatedMessage, ProtocolError>> + Unpin,
    {
        let MailboxReceiver {
            rx: mut inbox,
            overflow,
        } = self.inbox.take().expect("inbox");
        let mut close = Some(CloseReason {
            code: CloseCode::Normal,
            description: None,
        });
        let mut draining = self.state.drain.subscribe();
        // Made once and re-armed, not remade on every pass of the loop: each
        // would register with the timer wheel or a waiter list per frame.
        let overflowed = overflow.wait();
        let drained = draining.wait_for(|d| *d);
        if self.sockjs && Box::pin(self.write_raw("o".to_owned())).await.is_err() {
            Box::pin(self.session.close()).await;
            return;
        }
        let mut deadline = self.next_deadline();
        let timer = tokio::time::sleep_until(deadline);
        tokio::pin!(overflowed, drained, timer);
        loop {
            let next = self.next_deadline();
            if next != deadline {
                deadline = next;
                timer.as_mut().reset(deadline);
            }
            let wake = tokio::select! {
                msg = stream.next() => Wake::Message(msg),
                d = inbox.recv() => Wake::Delivery(d),
                _ = &mut overflowed => Wake::Overflowed,
                _ = &mut timer => Wake::Timer,
                _ = &mut drained => Wake::Drained,
            };
            let fired = matches!(wake, Wake::Timer);
            let step = match wake {
                // The per-message path: its future (under 1 KiB) lives in
                // the loop's own state, and a delivery allocates nothing.
                Wake::Delivery(Some(d)) => self.deliver(d).await,
                // The rest boxed: their future (about 6 KiB, a SEND through
                // to the store) exists only while one runs, so an idle
                // connection's task does not hold it (docs/benchmarks.md).
                wake => Box::pin(self.on_wake(wake, &mut close)).await,
            };
            if fired {
                // A deadline that passed without moving (a ping already
                // sent) must not fire again at once.
                deadline = self.next_deadline();
                timer.as_mut().reset(deadline);
            }
            if step.is_err() {
                if let Some(reason) = self.close_with.take() {
                    close = Some(reason);
                }
                break;
            }
        }
        Box::pin(self.finish(close)).await;
    }

    /// Handles what woke the loop; `close` is how to close if it stops.
    async fn on_wake(&mut self, wake: Wake, close: &mut Option<CloseReason>) -> Step {
        match wake {
            Wake::Message(msg) => match msg {
                Some(Ok(AggregatedMessage::Text(t))) if self.sockjs => self.on_sockjs(&t).await,
                Some(Ok(AggregatedMessage::Text(t))) => self.on_bytes(t.as_bytes()).await,
                Some(Ok(AggregatedMessage::Binary(b))) => self.on_bytes(&b).await,
                Some(Ok(AggregatedMessage::Ping(p))) => {
                    self.last_recv = Instant::now();
                    self.sink().pong(&p).await.map_err(|_| Stop)
                }
                Some(Ok(AggregatedMessage::Pong(p))) => {
                    self.last_recv = Instant::now();
                    self.on_pong(&p).await
                }
                Some(Ok(AggregatedMessage::Close(_))) | None => {
                    *close = None;
                    Err(Stop)
                }
                Some(Err(e)) => {
                    *close = Some(self.refused_frame(&e).await);
                    Err(Stop)
                }
            },
            Wake::Delivery(Some(d)) => self.deliver(d).await,
            Wake::Delivery(None) => Err(Stop),
            Wake::Overflowed => {
                self.close_after_error(
                    "slow_consumer",
                    "the connection fell too far behind; reconnect and resume with last-seq",
                    CloseCode::Policy,
                    "slow consumer",
                )
                .await
            }
            Wake::Timer => self.on_timer().await,
            Wake::Drained => {
                self.close_after_error(
                    "server_shutdown",
                    "this server is going away; reconnect (to another node) and resume with last-seq",
                    CloseCode::Restart,
                    "server shutdown",
                )
                .await
            }
        }
    }

    /// The loop ended: the session closes, then the socket.
    async fn finish(&mut self, close: Option<CloseReason>) {
        self.session.close().await;
        if self.sockjs {
            // SockJS's own close frame first: sockjs-client reads it as the end.
            let code = close.as_ref().map_or(1000, |c| u16::from(c.code));
            let _ = self
                .write_raw(format!(
                    "c[{code},{}]",
                    serde_json::Value::String("closed".into())
                ))
                .await;
        }
        let limit = Duration::from_millis(self.state.config.ws_write_timeout_ms);
        if let Some(out) = self.out.take() {
            out.close(close, limit).await;
        }
    }

    /// A SockJS message: a JSON array of strings (or one string), each
    /// STOMP bytes. Anything else breaks SockJS's framing.
    async fn on_sockjs(&mut self, text: &str) -> Step {
        let parts = match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Array(items)) if items.iter().all(|i| i.is_string()) => items,
            Ok(item @ serde_json::Value::String(_)) => vec![item],
            _ => {
                return self
                    .fatal(
                        "invalid_frame",
                        "a SockJS message is a JSON array of strings",
                        None,
                    )
                    .await;
            }
        };
        for part in parts {
            if let serde_json::Value::String(bytes) = part {
                self.on_bytes(bytes.as_bytes()).await?;
            }
        }
        Ok(())
    }

    /// An oversized or malformed WebSocket frame: refused from its header by
    /// the guard, or by actix's parser. Says why, and how to close.
    async fn refused_frame(&mut self, e: &actix_ws::ProtocolError) -> CloseReason {
        let (code, close_code, message) = match (self.budget.refusal(), e) {
            (Some(r @ ieum_wsframe::Refusal::Protocol(_)), _) => {
                ("websocket_error", CloseCode::Protocol, format!("{r:?}"))
            }
            (Some(r), _) => ("frame_too_large", CloseCode::Size, format!("{r:?}")),
            (None, actix_ws::ProtocolError::Overflow) => {
                ("frame_too_large", CloseCode::Size, e.to_string())
            }
            (None, _) => ("websocket_error", CloseCode::Protocol, e.to_string()),
        };
        tracing::debug!(code, %message, "websocket frame refused");
        let _ = self.send_error(code, &message, None).await;
        CloseReason {
            code: close_code,
            description: Some(code.into()),
        }
    }

    /// The session may go on no longer (its family was revoked, its token
    /// expired): ERROR with the code, then close with 1008, the WebSocket
    /// code for a policy that ended the connection. The client logs in or
    /// refreshes, reconnects and resumes by seq.
    pub(super) async fn end_session(&mut self, code: &str, message: &str) -> Step {
        tracing::debug!(code, "session ended");
        self.close_after_error(code, message, CloseCode::Policy, code)
            .await
    }

    /// An ERROR frame with `code`, then the close `close_code` with
    /// `description` as its reason.
    async fn close_after_error(
        &mut self,
        code: &str,
        message: &str,
        close_code: CloseCode,
        description: &str,
    ) -> Step {
        let _ = self.send_error(code, message, None).await;
        self.close_with = Some(CloseReason {
            code: close_code,
            description: Some(description.into()),
        });
        Err(Stop)
    }

    /// Notes when the access token the session signed in with expires, on
    /// this clock (once: the loop's deadline must not move on every pass).
    pub(super) fn note_token_expiry(&mut self) {
        self.token_expires = self.session.expires_at().map(|at| {
            let left = at - chrono::Utc::now();
            Instant::now() + left.to_std().unwrap_or_default()
        });
    }

    fn next_deadline(&self) -> Instant {
        let c = &self.state.config;
        let mut d = self.started + Duration::from_secs(24 * 3600);
        if let Some(expiry) = self.token_expires {
            d = d.min(expiry);
        }
        if self.session.user().is_none() {
            d = d.min(self.started + Duration::from_millis(c.stomp_connect_timeout_ms));
        }
        if let Some(p) = self.partial_since {
            d = d.min(p + Duration::from_millis(c.stomp_partial_frame_timeout_ms));
        }
        if let Some(every) = self.send_every {
            d = d.min(self.last_send + every);
        }
        match self.expect_every {
            Some(every) => d = d.min(self.last_recv + every * 2),
            None if !self.out.as_ref().is_some_and(Sink::has_pings) => {}
            None => {
                d = d.min(self.last_ping.max(self.last_recv) + WS_PING);
                d = d.min(self.last_recv + WS_IDLE);
            }
        }
        d
    }

    async fn on_timer(&mut self) -> Step {
        if self.token_expires.is_some_and(|at| at <= Instant::now()) {
            return self
                .end_session(
                    "token_expired",
                    "the access token expired; reconnect with a fresh one",
                )
                .await;
        }
        let now = Instant::now();
        let c = self.state.config.clone();
        if self.session.user().is_none()
            && now >= self.started + Duration::from_millis(c.stomp_connect_timeout_ms)
        {
            return self
                .fatal("connect_timeout", "no CONNECT frame in time", None)
                .await;
        }
        if let Some(p) = self.partial_since
            && now >= p + Duration::from_millis(c.stomp_partial_frame_timeout_ms)
        {
            return self
                .fatal("missing_nul", "frame not terminated by NUL in time", None)
                .await;
        }
        match self.expect_every {
            Some(every) if now >= self.last_recv + every * 2 => {
                return self
                    .fatal("heartbeat_timeout", "no heart-beat from the client", None)
                    .await;
            }
            // HTTP carriers: their requests, and SockJS's own heart-beats.
            None if !self.out.as_ref().is_some_and(Sink::has_pings) => {}
            None if now >= self.last_recv + WS_IDLE => return Err(Stop),
            None if now >= self.last_ping.max(self.last_recv) + WS_PING => {
                self.last_ping = now;
                let payload = self
                    .session
                    .proof_outstanding()
                    .map(proof_payload)
                    .unwrap_or_default();
                self.sink().ping(&payload).await.map_err(|_| Stop)?;
            }
            _ => {}
        }
        if let Some(every) = self.send_every
            && now >= self.last_send + every
        {
            self.write_text("\n".to_owned()).await?;
        }
        Ok(())
    }

    /// After writing messages: a WebSocket ping carrying the session's
    /// proof mark. Clients answer pings as they read the socket (browsers
    /// and OkHttp do it themselves), so the pong proves they read every
    /// message written before it: a frozen phone answers none and is pushed.
    pub(super) async fn ask_for_proof(&mut self) -> Step {
        let Some(mark) = self.session.proof_request() else {
            return Ok(());
        };
        self.sink()
            .ping(&proof_payload(mark))
            .await
            .map_err(|_| Stop)
    }

    fn sink(&mut self) -> &mut Sink {
        self.out
            .as_mut()
            .expect("the sink lives until the loop ends")
    }

    async fn on_pong(&mut self, payload: &[u8]) -> Step {
        if let Some(mark) = proof_mark(payload) {
            self.session.proven(mark).await;
            // What was written while this mark was out waits for the next.
            self.ask_for_proof().await?;
        }
        Ok(())
    }

    /// STOMP text for the client: as it is, or in a SockJS message frame.
    pub(super) async fn write_text(&mut self, text: String) -> Step {
        if self.sockjs {
            let framed = format!(
                "a{}",
                serde_json::Value::Array(vec![serde_json::Value::String(text)])
            );
            return self.write_raw(framed).await;
        }
        self.write_raw(text).await
    }

    async fn write_raw(&mut self, text: String) -> Step {
        self.last_send = Instant::now();
        let limit = Duration::from_millis(self.state.config.ws_write_timeout_ms);
        self.sink().text(text, limit).await.map_err(|_| Stop)
    }

    pub(super) async fn write_frame(&mut self, frame: &Frame) -> Step {
        self.write_text(frame_text(frame)).await
    }

    pub(super) async fn send_error(
        &mut self,
        code: &str,
        message: &str,
        receipt: Option<&str>,
    ) -> Step {
        self.write_frame(&error_frame(code, message, receipt)).await
    }

    /// ERROR, then close.
    pub(super) async fn fatal(&mut self, code: &str, message: &str, receipt: Option<&str>) -> Step {
        tracing::debug!(code, message, "stomp error; closing");
        let _ = self.send_error(code, message, receipt).await;
        Err(Stop)
    }

    /// A failure of one SEND or SUBSCRIBE: to `/user/queue/errors` when the client
    /// listens there (the connection goes on), else an ERROR frame and close.
    pub(super) async fn app_error(
        &mut self,
        err: &DomainError,
        frame: &Frame,
        temp_id: Option<&str>,
    ) -> Step {
        crate::http::errors::log_if_server_error(err);
        let Some(sub) = self.errors_sub.clone() else {
            return self
                .fatal(err.code(), &err.public_message(), frame.get("receipt"))
                .await;
        };
        let body = error_notice(err, frame, temp_id);
        let notice = Frame::new(ieum_stomp::Command::Message)
            .header("destination", ERRORS_DESTINATION)
            .header("subscription", sub)
            .header("message-id", uuid::Uuid::new_v4().simple().to_string())
            .header("content-type", "application/json")
            .body(body.to_string());
        self.write_frame(&notice).await
    }

    async fn on_bytes(&mut self, bytes: &[u8]) -> Step {
        self.last_recv = Instant::now();
        self.decoder.push(bytes);
        loop {
            match self.decoder.next() {
                Ok(Some(Item::Frame(f))) => self.on_frame(f).await?,
                Ok(Some(Item::Heartbeat)) => {}
                Ok(None) => break,
                Err(e) => return self.fatal(e.code(), &e.to_string(), None).await,
            }
        }
        self.partial_since = if self.decoder.has_partial() {
            Some(self.partial_since.unwrap_or_else(Instant::now))
        } else {
            None
        };
        Ok(())
    }
}
