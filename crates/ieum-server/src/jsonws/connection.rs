//! One JSON WebSocket connection: the loop, its timers, and what each
//! client object does to the session.

use std::time::Duration;

use actix_ws::{AggregatedMessage, CloseCode, CloseReason};
use futures_util::StreamExt;
use ieum_domain::DomainError;
use ieum_domain::auth::Grant;
use ieum_domain::hub::{Delivery, MailboxReceiver, RoomEvent};
use ieum_domain::rooms::Entry;
use ieum_domain::session::{Outcome, Session};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::commands::{Request, parse, request_id_of};
use crate::app::AppState;
use crate::wire::{SHAPE_NATIVE, event_body, event_name};
use crate::ws::guard::Budget;
use crate::ws::{proof_mark, proof_payload};
use crate::wsio::{WsIn, WsOut};

/// Pings keep NATs open and prove receipt; silence this long ends it.
const PING_EVERY: Duration = Duration::from_secs(30);
const IDLE: Duration = Duration::from_secs(90);

struct Stop(Option<CloseReason>);
type Step = Result<(), Stop>;

/// What woke the connection loop (its handling is boxed, as in `ws/connection.rs`).
enum Wake {
    Message(Option<Result<AggregatedMessage, actix_ws::ProtocolError>>),
    Delivery(Option<Delivery>),
    Overflowed,
    Drained,
    Timer,
}

fn close(code: CloseCode, why: &str) -> Stop {
    Stop(Some(CloseReason {
        code,
        description: Some(why.to_owned()),
    }))
}

pub(super) struct JsonConn {
    state: std::sync::Arc<AppState>,
    session: Session,
    inbox: Option<MailboxReceiver>,
    out: WsOut,
    budget: Budget,
    started: Instant,
    last_recv: Instant,
    last_ping: Instant,
    token_expires: Option<Instant>,
}

impl JsonConn {
    pub(super) fn new(state: std::sync::Arc<AppState>, out: WsOut, budget: Budget) -> Self {
        let (session, inbox) = state.open_session(crate::app::Proofs::Answered, "json-websocket");
        let now = Instant::now();
        Self {
            state,
            session,
            inbox: Some(inbox),
            out,
            budget,
            started: now,
            last_recv: now,
            last_ping: now,
            token_expires: None,
        }
    }

    pub(super) fn id(&self) -> u64 {
        self.session.id()
    }

    /// Runs the connection until it ends; boxed, so that the task holds one
    /// `JsonConn`, not copies of it.
    pub(super) async fn run(mut self: Box<Self>, mut stream: WsIn, handshake: Option<Grant>) {
        let Some(MailboxReceiver {
            rx: mut inbox,
            overflow,
        }) = self.inbox.take()
        else {
            return;
        };
        let mut draining = self.state.drain.subscribe();
        let overflowed = overflow.wait();
        let drained = draining.wait_for(|d| *d);
        tokio::pin!(overflowed, drained);
        if handshake.is_some()
            && let Err(Stop(why)) = Box::pin(self.authenticate(None, handshake, None)).await
        {
            let _ = self.out.close(why).await;
            return;
        }
        let reason = loop {
            let deadline = self.next_deadline();
            let wake = tokio::select! {
                message = stream.next() => Wake::Message(message),
                delivery = inbox.recv() => Wake::Delivery(delivery),
                _ = &mut overflowed => Wake::Overflowed,
                _ = &mut drained => Wake::Drained,
                _ = tokio::time::sleep_until(deadline) => Wake::Timer,
            };
            let step = match wake {
                // Deliveries in the loop's own state, the rest boxed (as in
                // `ws/connection.rs`).
                Wake::Delivery(Some(delivery)) => self.deliver(delivery).await,
                wake => Box::pin(self.on_wake(wake)).await,
            };
            if let Err(Stop(why)) = step {
                break why;
            }
        };
        Box::pin(self.session.close()).await;
        // A peer that takes nothing any more must not pin this task.
        let limit = Duration::from_millis(self.state.config.ws_write_timeout_ms);
        let _ = tokio::time::timeout(limit, self.out.close(reason)).await;
    }

    async fn on_wake(&mut self, wake: Wake) -> Step {
        match wake {
            Wake::Message(message) => match message {
                Some(Ok(AggregatedMessage::Text(text))) => {
                    self.last_recv = Instant::now();
                    self.on_text(&text).await
                }
                Some(Ok(AggregatedMessage::Binary(_))) => {
                    self.last_recv = Instant::now();
                    self.error("binary_unsupported", "send JSON text messages", None)
                        .await
                }
                Some(Ok(AggregatedMessage::Ping(p))) => {
                    self.last_recv = Instant::now();
                    self.out.pong(&p).await.map_err(|_| Stop(None))
                }
                Some(Ok(AggregatedMessage::Pong(p))) => {
                    self.last_recv = Instant::now();
                    self.on_pong(&p).await
                }
                Some(Ok(AggregatedMessage::Close(_))) | None => Err(Stop(None)),
                Some(Err(e)) => {
                    let (code, close_code) = match (self.budget.refusal(), &e) {
                        (Some(ieum_wsframe::Refusal::Protocol(_)), _) => {
                            ("websocket_error", CloseCode::Protocol)
                        }
                        (Some(_), _) | (None, actix_ws::ProtocolError::Overflow) => {
                            ("frame_too_large", CloseCode::Size)
                        }
                        (None, _) => ("websocket_error", CloseCode::Protocol),
                    };
                    let _ = self.error(code, &e.to_string(), None).await;
                    Err(close(close_code, code))
                }
            },
            Wake::Delivery(Some(delivery)) => self.deliver(delivery).await,
            Wake::Delivery(None) => Err(Stop(None)),
            Wake::Overflowed => {
                self.close_after_error(
                    "slow_consumer",
                    "the connection fell too far behind; reconnect and resume with lastSeq",
                    CloseCode::Policy,
                    "slow consumer",
                )
                .await
            }
            Wake::Drained => {
                self.close_after_error(
                    "server_shutdown",
                    "this server is going away; reconnect and resume with lastSeq",
                    CloseCode::Restart,
                    "server shutdown",
                )
                .await
            }
            Wake::Timer => self.on_timer().await,
        }
    }

    fn next_deadline(&self) -> Instant {
        let c = &self.state.config;
        let mut at = self.last_ping.max(self.last_recv) + PING_EVERY;
        at = at.min(self.last_recv + IDLE);
        if self.session.user().is_none() {
            at = at.min(self.started + Duration::from_millis(c.stomp_connect_timeout_ms));
        }
        if let Some(expiry) = self.token_expires {
            at = at.min(expiry);
        }
        at
    }

    async fn on_timer(&mut self) -> Step {
        let now = Instant::now();
        if self.token_expires.is_some_and(|at| at <= now) {
            return self
                .close_after_error(
                    "token_expired",
                    "the access token expired; reconnect with a fresh one",
                    CloseCode::Policy,
                    "token_expired",
                )
                .await;
        }
        if self.session.user().is_none()
            && now
                >= self.started + Duration::from_millis(self.state.config.stomp_connect_timeout_ms)
        {
            return self
                .close_after_error(
                    "connect_timeout",
                    "no auth in time",
                    CloseCode::Policy,
                    "connect_timeout",
                )
                .await;
        }
        if now >= self.last_recv + IDLE {
            return Err(Stop(None));
        }
        if now >= self.last_ping.max(self.last_recv) + PING_EVERY {
            self.last_ping = now;
            let payload = self
                .session
                .proof_outstanding()
                .map(proof_payload)
                .unwrap_or_default();
            self.out.ping(&payload).await.map_err(|_| Stop(None))?;
        }
        Ok(())
    }

    async fn send(&mut self, value: &Value) -> Step {
        self.send_text(value.to_string()).await
    }

    async fn send_text(&mut self, text: String) -> Step {
        let limit = Duration::from_millis(self.state.config.ws_write_timeout_ms);
        match tokio::time::timeout(limit, self.out.text(text)).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(Stop(None)),
        }
    }

    async fn error(&mut self, code: &str, message: &str, request_id: Option<&str>) -> Step {
        self.send(
            &json!({"type": "error", "code": code, "message": message, "requestId": request_id}),
        )
        .await
    }

    /// An error object with `code`, then the close `close_code` with `why`.
    async fn close_after_error(
        &mut self,
        code: &str,
        message: &str,
        close_code: CloseCode,
        why: &str,
    ) -> Step {
        let _ = self.error(code, message, None).await;
        Err(close(close_code, why))
    }

    async fn domain_error(&mut self, e: &DomainError, request_id: Option<&str>) -> Step {
        crate::http::errors::log_if_server_error(e);
        let mut value = json!({"type": "error", "code": e.code(), "message": e.public_message(), "requestId": request_id});
        if let Some(secs) = e.retry_after_secs() {
            value["retryAfter"] = json!(secs);
        }
        self.send(&value).await
    }

    async fn on_text(&mut self, text: &str) -> Step {
        let (request, request_id) = match parse(text) {
            Ok(parsed) => parsed,
            Err(e) => {
                let request_id = request_id_of(text);
                self.domain_error(&e, request_id.as_deref()).await?;
                // Before auth, nothing but a valid auth is taken.
                if self.session.user().is_none() {
                    return Err(close(CloseCode::Policy, e.code()));
                }
                return Ok(());
            }
        };
        let rid = request_id.as_deref();
        if let Request::Auth { token } = &request {
            if self.session.user().is_some() {
                // Harmless (a client that authenticated on the handshake
                // and sends auth anyway): said, and the connection goes on.
                return self
                    .error(
                        "already_connected",
                        "the connection is already authenticated",
                        rid,
                    )
                    .await;
            }
            let token = token.clone();
            return self.authenticate(Some(&token), None, rid).await;
        }
        if self.session.user().is_none() {
            self.error(
                "not_connected",
                "send {\"type\":\"auth\",\"token\":...} first",
                rid,
            )
            .await?;
            return Err(close(CloseCode::Policy, "not_connected"));
        }
        match request {
            Request::Auth { .. } => Ok(()),
            Request::Ping => self.send(&json!({"type": "pong", "requestId": rid})).await,
            Request::Subscribe { id, room_id, last_seq } => self.subscribe(&id, &room_id, last_seq, rid).await,
            Request::Unsubscribe { id } => {
                if self.session.unsubscribe(&id) {
                    self.send(&json!({"type": "ok", "requestId": rid})).await
                } else {
                    self.error("not_subscribed", &format!("no subscription {id:?}"), rid).await
                }
            }
            Request::Command(command) => match self.session.execute(command).await {
                Ok(Outcome::Sent(appended)) => {
                    let m = &appended.message;
                    self.send(&json!({"type": "sent", "requestId": rid, "messageId": m.id, "seq": m.seq, "duplicate": appended.duplicate}))
                        .await
                }
                Ok(Outcome::Read(receipt)) => {
                    self.send(&json!({"type": "ok", "requestId": rid, "lastReadSeq": receipt.last_read_seq}))
                        .await
                }
                Ok(Outcome::Typed | Outcome::TypingDropped) => match rid {
                    Some(_) => self.send(&json!({"type": "ok", "requestId": rid})).await,
                    None => Ok(()),
                },
                Err(e) => self.domain_error(&e, rid).await,
            },
        }
    }

    async fn authenticate(
        &mut self,
        token: Option<&str>,
        handshake: Option<Grant>,
        rid: Option<&str>,
    ) -> Step {
        match self.session.authenticate(token, handshake).await {
            Ok(user) => {
                self.budget.set(crate::ws::ws_max_bytes(&self.state.config));
                self.token_expires = self.session.expires_at().map(|at| {
                    let left = at - chrono::Utc::now();
                    Instant::now() + left.to_std().unwrap_or_default()
                });
                tracing::Span::current().record("user", tracing::field::display(user.id));
                self.send(&json!({"type": "connected", "requestId": rid, "userId": user.id, "username": user.username}))
                    .await
            }
            Err(e) => {
                let _ = self.domain_error(&e, rid).await;
                Err(close(CloseCode::Policy, e.code()))
            }
        }
    }

    async fn subscribe(
        &mut self,
        id: &str,
        room_id: &str,
        last_seq: Option<i64>,
        rid: Option<&str>,
    ) -> Step {
        let subscribed = match self
            .session
            .subscribe_room(id, room_id, Entry::MembersOnly, SHAPE_NATIVE, last_seq)
            .await
        {
            Ok(s) => s,
            Err(e) => return self.domain_error(&e, rid).await,
        };
        self.send(&json!({"type": "subscribed", "requestId": rid, "id": id, "roomId": room_id, "lastSeq": subscribed.live_after}))
            .await?;
        let Some(mut after) = subscribed.resume_after else {
            return Ok(());
        };
        if subscribed.truncated {
            let message = format!(
                "more than {} messages were missed; page older ones with the history API",
                self.state.chat.policy().max_resume
            );
            self.error("resume_truncated", &message, rid).await?;
        }
        while after < subscribed.live_after {
            let page = match self
                .session
                .replay_page(room_id, after, subscribed.live_after)
                .await
            {
                Ok(page) => page,
                Err(e) => return self.domain_error(&e, rid).await,
            };
            let Some(last) = page.last().map(|m| m.seq) else {
                break;
            };
            for message in page {
                self.write_event(id, &RoomEvent::message(message)).await?;
            }
            after = last;
        }
        Ok(())
    }

    async fn write_event(&mut self, subscription: &str, event: &RoomEvent) -> Step {
        let links = self.state.links.clone();
        let body = event.wire(SHAPE_NATIVE as usize, |e| {
            event_body(SHAPE_NATIVE, e, &links)
        });
        if body.is_empty() {
            return Ok(());
        }
        let text = format!(
            r#"{{"type":"event","subscription":{},"event":"{}","data":{}}}"#,
            Value::String(subscription.to_owned()),
            event_name(&event.payload),
            String::from_utf8_lossy(&body)
        );
        self.send_text(text).await
    }

    async fn deliver(&mut self, delivery: Delivery) -> Step {
        let subscription = delivery.subscription.clone();
        let Some(out) = self.session.on_delivery(delivery).await else {
            if let Some((code, message)) = self.session.ended() {
                return self
                    .close_after_error(code, message, CloseCode::Policy, code)
                    .await;
            }
            return Ok(());
        };
        self.write_event(&subscription, &out.delivery.event).await?;
        if let Some(mark) = self.session.proof_request() {
            self.out
                .ping(&proof_payload(mark))
                .await
                .map_err(|_| Stop(None))?;
        }
        Ok(())
    }

    async fn on_pong(&mut self, payload: &[u8]) -> Step {
        if let Some(mark) = proof_mark(payload) {
            self.session.proven(mark).await;
            if let Some(next) = self.session.proof_request() {
                self.out
                    .ping(&proof_payload(next))
                    .await
                    .map_err(|_| Stop(None))?;
            }
        }
        Ok(())
    }
}
