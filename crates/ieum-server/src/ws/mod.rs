//! `GET /ws/chat`: STOMP 1.2 over WebSocket (docs/PROTOCOL.md).
//!
//! One task per connection reads WebSocket messages into the STOMP decoder,
//! maps each frame onto a use case, and writes deliveries from the
//! connection's bounded mailbox. Protocol errors answer an ERROR frame and close
//! (STOMP 1.2 requires it); failures of a single SEND or SUBSCRIBE go to
//! `/user/queue/errors` when the client subscribed to it, and are an ERROR
//! frame otherwise.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, Session};
use ieum_domain::DomainError;
use ieum_domain::auth::Principal;
use ieum_domain::chat::{Sender as ChatSender, SubscribeRequest};
use ieum_domain::error::ErrorKind;
use ieum_domain::hub::{
    Delivery, EventPayload, LOBBY_FEED, Mailbox, MailboxReceiver, RoomEvent, mailbox, user_feed,
};
use ieum_domain::message::{MessageKind, SendMessage};
use ieum_domain::rooms::Entry;
use ieum_stomp::{Command, Decoder, Frame, Item, Limits, encode};
use serde::Deserialize;
use serde_json::json;
use tokio::time::Instant;

use crate::app::AppState;
use crate::http::errors::problem_response;
use crate::http::extract::bearer_token;
use crate::wire::{
    SHAPE_A, SHAPE_B, SHAPE_C, SHAPE_NATIVE, contract_c_room, event_body, event_name,
};

mod guard;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/ws/chat", web::get().to(upgrade));
}

/// Subprotocols offered by STOMP clients; clients that offer none are served too.
pub const PROTOCOLS: &[&str] = &["v12.stomp", "v11.stomp", "v10.stomp"];
const SERVER: &str = concat!("ieum/", env!("CARGO_PKG_VERSION"));
/// When neither side wants STOMP heart-beats, WebSocket pings keep NATs open.
const WS_PING: Duration = Duration::from_secs(30);
const WS_IDLE: Duration = Duration::from_secs(90);
pub const ERRORS_DESTINATION: &str = "/user/queue/errors";
/// Rooms whose last typing notice one connection remembers.
const TYPING_ROOMS: usize = 256;
pub const EVENTS_DESTINATION: &str = "/user/queue/events";

/// Which client contract a frame speaks: decides the shape of its error notices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Profile {
    Native,
    Couple,
}

/// The WebSocket connections open on this node, against a cap: past the
/// open-files limit the node could no longer open database connections or
/// files for anyone, so a handshake over the cap is refused with 503 instead.
#[derive(Debug, Clone, Default)]
pub struct Connections(Arc<AtomicUsize>);

/// One connection's place under the cap, given back when dropped.
pub struct ConnectionSlot(Arc<AtomicUsize>);

impl Connections {
    /// A place for one more connection, unless `max` are open.
    pub fn try_open(&self, max: usize) -> Option<ConnectionSlot> {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| ConnectionSlot(self.0.clone()))
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[derive(Deserialize)]
struct HandshakeQuery {
    token: Option<String>,
}

async fn upgrade(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    query: web::Query<HandshakeQuery>,
) -> Result<HttpResponse, actix_web::Error> {
    // A token on the handshake (query or header) is checked now: a bad one is 401.
    let token = query
        .token
        .clone()
        .or_else(|| bearer_token(&req).map(str::to_owned));
    let handshake_principal = match token {
        Some(t) => match state.auth.authenticate_user(&t).await {
            Ok(p) => Some(p),
            Err(e) => {
                return Ok(problem_response(
                    actix_web::http::StatusCode::UNAUTHORIZED,
                    e.code(),
                    e.public_message(),
                ));
            }
        },
        None => None,
    };
    let Some(slot) = state
        .ws_connections
        .try_open(state.config.ws_max_connections)
    else {
        tracing::warn!(
            max = state.config.ws_max_connections,
            "WebSocket handshake refused: this node holds its most connections"
        );
        let mut r = problem_response(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "too_many_connections",
            "this node holds as many connections as it may; retry shortly or elsewhere".into(),
        );
        r.headers_mut().insert(
            actix_web::http::header::RETRY_AFTER,
            actix_web::http::header::HeaderValue::from_static("5"),
        );
        return Ok(r);
    };
    // Every frame header is checked before its payload is buffered: a small
    // budget until CONNECT succeeds, then the frame limit.
    let budget = guard::Budget::new(state.config.ws_preauth_max_bytes);
    let mut guarded =
        actix_web::dev::Payload::from(Box::pin(guard::Guarded::new(body, budget.clone()))
            as std::pin::Pin<Box<dyn futures_util::Stream<Item = _>>>);
    let body = web::Payload::from_request(&req, &mut guarded).await?;
    let (response, session, stream) = actix_ws::handle_with_protocols(&req, body, PROTOCOLS)?;
    // WebSocket messages may carry several frames; the STOMP limits apply per frame.
    let max = ws_max_bytes(&state.config);
    let stream = stream
        .max_frame_size(max)
        .aggregate_continuations()
        .max_continuation_size(max);
    let conn = Conn::new(
        state.get_ref().clone(),
        handshake_principal,
        session,
        budget,
    );
    actix_web::rt::spawn(async move {
        conn.run(stream).await;
        drop(slot);
    });
    Ok(response)
}

/// The largest WebSocket frame or message of an authenticated connection.
fn ws_max_bytes(config: &crate::config::Config) -> usize {
    config.stomp_max_frame_bytes.saturating_mul(4)
}

/// Where a subscription points.
enum Target {
    Room {
        room_id: String,
        shape: u8,
        entry: Entry,
    },
    Errors,
    /// Contract C's events: the user's rooms, their feed and the lobby.
    Events,
}

fn subscribe_target(destination: &str) -> Option<Target> {
    if let Some(room_id) = destination.strip_prefix("/topic/chat.") {
        return Some(Target::Room {
            room_id: room_id.to_owned(),
            shape: SHAPE_A,
            entry: Entry::AutoJoin,
        });
    }
    if let Some(room_id) = destination.strip_prefix("/topic/rooms/") {
        return Some(Target::Room {
            room_id: room_id.to_owned(),
            shape: SHAPE_NATIVE,
            entry: Entry::MembersOnly,
        });
    }
    if let Some(room_id) = destination.strip_prefix("/topic/couple/") {
        return Some(Target::Room {
            room_id: room_id.to_owned(),
            shape: SHAPE_B,
            entry: Entry::MembersOnly,
        });
    }
    match destination {
        ERRORS_DESTINATION => Some(Target::Errors),
        EVENTS_DESTINATION => Some(Target::Events),
        _ => None,
    }
}

struct Sub {
    /// The hub feeds this subscription listens to.
    feeds: Vec<String>,
    shape: u8,
    /// A 1:1 room: what reaches this device counts as delivered.
    direct: bool,
    /// "MESSAGE\ndestination:..\nsubscription:..\n", escaped once.
    prefix: String,
}

/// Stops the connection loop (after whatever was sent to say why).
struct Stop;
type Step = Result<(), Stop>;

/// A token bucket for sends.
struct Bucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: u32) -> Self {
        let rate = f64::from(rate);
        Self {
            tokens: rate * 2.0,
            rate,
            burst: rate * 2.0,
            at: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

fn escape_header(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            ':' => out.push_str("\\c"),
            c => out.push(c),
        }
    }
    out
}

struct Conn {
    state: AppState,
    handshake_principal: Option<Principal>,
    user: Option<ChatSender>,
    decoder: Decoder,
    mailbox: Mailbox,
    inbox: Option<MailboxReceiver>,
    subs: HashMap<String, Sub>,
    errors_sub: Option<String>,
    send_every: Option<Duration>,
    expect_every: Option<Duration>,
    started: Instant,
    last_recv: Instant,
    last_send: Instant,
    last_ping: Instant,
    partial_since: Option<Instant>,
    bucket: Bucket,
    last_typing: HashMap<String, Instant>,
    delivered: HashMap<String, i64>,
    out: Session,
    budget: guard::Budget,
}

impl Conn {
    fn new(
        state: AppState,
        handshake_principal: Option<Principal>,
        out: Session,
        budget: guard::Budget,
    ) -> Self {
        let c = &state.config;
        let limits = Limits {
            max_frame_bytes: c.stomp_max_frame_bytes,
            max_headers: c.stomp_max_headers,
            max_header_bytes: c.stomp_max_header_bytes,
        };
        let (mb, inbox) = mailbox(c.ws_outbound_queue);
        let now = Instant::now();
        let bucket = Bucket::new(c.ws_send_rate);
        Self {
            state,
            handshake_principal,
            user: None,
            decoder: Decoder::new(limits),
            mailbox: mb,
            inbox: Some(inbox),
            subs: HashMap::new(),
            errors_sub: None,
            send_every: None,
            expect_every: None,
            started: now,
            last_recv: now,
            last_send: now,
            last_ping: now,
            partial_since: None,
            bucket,
            last_typing: HashMap::new(),
            delivered: HashMap::new(),
            out,
            budget,
        }
    }

    async fn run(mut self, mut stream: AggregatedMessageStream) {
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
        let mut deadline = self.next_deadline();
        let timer = tokio::time::sleep_until(deadline);
        tokio::pin!(overflowed, drained, timer);
        loop {
            let next = self.next_deadline();
            if next != deadline {
                deadline = next;
                timer.as_mut().reset(deadline);
            }
            let step = tokio::select! {
                msg = stream.recv() => match msg {
                    Some(Ok(AggregatedMessage::Text(t))) => self.on_bytes(t.as_bytes()).await,
                    Some(Ok(AggregatedMessage::Binary(b))) => self.on_bytes(&b).await,
                    Some(Ok(AggregatedMessage::Ping(p))) => {
                        self.last_recv = Instant::now();
                        self.out.pong(&p).await.map_err(|_| Stop)
                    }
                    Some(Ok(AggregatedMessage::Pong(_))) => {
                        self.last_recv = Instant::now();
                        Ok(())
                    }
                    Some(Ok(AggregatedMessage::Close(_))) | None => {
                        close = None;
                        Err(Stop)
                    }
                    Some(Err(e)) => {
                        // An oversized or malformed WebSocket frame: refused from
                        // its header by the guard, or by actix's parser.
                        let (code, close_code, message) = match (self.budget.refusal(), &e) {
                            (Some(r @ ieum_wsframe::Refusal::Protocol(_)), _) => {
                                ("websocket_error", CloseCode::Protocol, format!("{r:?}"))
                            }
                            (Some(r), _) => ("frame_too_large", CloseCode::Size, format!("{r:?}")),
                            (None, actix_http::ws::ProtocolError::Overflow) => {
                                ("frame_too_large", CloseCode::Size, e.to_string())
                            }
                            (None, _) => ("websocket_error", CloseCode::Protocol, e.to_string()),
                        };
                        tracing::debug!(code, %message, "websocket frame refused");
                        let _ = self.send_error(code, &message, None).await;
                        close = Some(CloseReason { code: close_code, description: Some(code.into()) });
                        Err(Stop)
                    }
                },
                d = inbox.recv() => match d {
                    Some(d) => self.deliver(d).await,
                    None => Err(Stop),
                },
                _ = &mut overflowed => {
                    let _ = self
                        .send_error("slow_consumer", "the connection fell too far behind; reconnect and resume with last-seq", None)
                        .await;
                    close = Some(CloseReason { code: CloseCode::Policy, description: Some("slow consumer".into()) });
                    Err(Stop)
                }
                _ = &mut timer => {
                    let step = self.on_timer().await;
                    // A deadline that passed without moving (a ping already
                    // sent) must not fire again at once.
                    deadline = self.next_deadline();
                    timer.as_mut().reset(deadline);
                    step
                }
                _ = &mut drained => {
                    let _ = self
                        .send_error("server_shutdown", "this server is going away; reconnect (to another node) and resume with last-seq", None)
                        .await;
                    close = Some(CloseReason { code: CloseCode::Restart, description: Some("server shutdown".into()) });
                    Err(Stop)
                }
            };
            if step.is_err() {
                break;
            }
        }
        for (sub_id, sub) in self.subs.drain() {
            for feed in &sub.feeds {
                self.state
                    .chat
                    .unsubscribe(feed, &self.mailbox, sub_id.as_str().into());
            }
        }
        if let Some(user) = &self.user
            && let Err(e) = self
                .state
                .social
                .disconnected(user.id, self.mailbox.id())
                .await
        {
            tracing::warn!(error = %e, "presence update failed");
        }
        let _ = self.out.close(close).await;
    }

    fn next_deadline(&self) -> Instant {
        let c = &self.state.config;
        let mut d = self.started + Duration::from_secs(24 * 3600);
        if self.user.is_none() {
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
            None => {
                d = d.min(self.last_ping.max(self.last_recv) + WS_PING);
                d = d.min(self.last_recv + WS_IDLE);
            }
        }
        d
    }

    async fn on_timer(&mut self) -> Step {
        let now = Instant::now();
        let c = self.state.config.clone();
        if self.user.is_none()
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
            None if now >= self.last_recv + WS_IDLE => return Err(Stop),
            None if now >= self.last_ping.max(self.last_recv) + WS_PING => {
                self.last_ping = now;
                self.out.ping(b"").await.map_err(|_| Stop)?;
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

    async fn write_text(&mut self, text: String) -> Step {
        self.last_send = Instant::now();
        // A peer that takes no data for this long (its TCP window stays full) is
        // closed, so a stalled phone cannot pin its session forever.
        let limit = Duration::from_millis(self.state.config.ws_write_timeout_ms);
        match tokio::time::timeout(limit, self.out.text(text)).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(Stop),
        }
    }

    async fn write_frame(&mut self, frame: &Frame) -> Step {
        let bytes = encode(frame);
        let text = String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        self.write_text(text).await
    }

    async fn send_error(&mut self, code: &str, message: &str, receipt: Option<&str>) -> Step {
        let mut f = Frame::new(Command::Error)
            .header("message", message)
            .header("code", code)
            .header("content-type", "application/json");
        if let Some(r) = receipt {
            f = f.header("receipt-id", r);
        }
        let f = f.body(json!({ "code": code, "message": message }).to_string());
        self.write_frame(&f).await
    }

    /// ERROR, then close.
    async fn fatal(&mut self, code: &str, message: &str, receipt: Option<&str>) -> Step {
        tracing::debug!(code, message, "stomp error; closing");
        let _ = self.send_error(code, message, receipt).await;
        Err(Stop)
    }

    /// A failure of one SEND or SUBSCRIBE: to `/user/queue/errors` when the client
    /// listens there (the connection goes on), else an ERROR frame and close.
    async fn app_error(&mut self, err: &DomainError, frame: &Frame, temp_id: Option<&str>) -> Step {
        crate::http::errors::log_if_server_error(err);
        let receipt = frame.get("receipt");
        let Some(sub) = self.errors_sub.clone() else {
            return self.fatal(err.code(), &err.public_message(), receipt).await;
        };
        let profile = frame
            .get("destination")
            .map(profile_of)
            .unwrap_or(Profile::Native);
        let code = match profile {
            Profile::Native => err.code(),
            // Contract B's three codes.
            Profile::Couple => match err.kind() {
                ErrorKind::Unauthenticated => "AUTH_FAILED",
                ErrorKind::Forbidden | ErrorKind::NotFound => "UNAUTHORIZED",
                _ => "SEND_FAILED",
            },
        };
        let mut body = json!({
            "type": "ERROR",
            "code": code,
            "message": err.public_message(),
            "command": frame.command.as_str(),
        });
        if profile == Profile::Couple {
            body["reason"] = json!(err.code());
        }
        if let Some(t) = temp_id {
            body["tempId"] = json!(t);
        }
        if let Some(r) = receipt {
            body["receiptId"] = json!(r);
        }
        if let Some(d) = frame.get("destination") {
            body["destination"] = json!(d);
        }
        let f = Frame::new(Command::Message)
            .header("destination", ERRORS_DESTINATION)
            .header("subscription", sub)
            .header("message-id", uuid::Uuid::new_v4().simple().to_string())
            .header("content-type", "application/json")
            .body(body.to_string());
        self.write_frame(&f).await
    }

    async fn receipt(&mut self, frame: &Frame, extra: &[(&str, String)]) -> Step {
        if let Some(r) = frame.get("receipt") {
            let mut f = Frame::new(Command::Receipt).header("receipt-id", r);
            for (k, v) in extra {
                f = f.header(*k, v.clone());
            }
            self.write_frame(&f).await?;
        }
        Ok(())
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

    async fn on_frame(&mut self, f: Frame) -> Step {
        if self.user.is_none() && !matches!(f.command, Command::Connect | Command::Stomp) {
            return self
                .fatal("not_connected", "send CONNECT first", f.get("receipt"))
                .await;
        }
        match f.command {
            Command::Connect | Command::Stomp => self.on_connect(f).await,
            Command::Subscribe => self.on_subscribe(f).await,
            Command::Unsubscribe => self.on_unsubscribe(f).await,
            Command::Send => self.on_send(f).await,
            Command::Disconnect => {
                self.receipt(&f, &[]).await?;
                Err(Stop)
            }
            // Messages are not acknowledged individually (delivery is ordered by seq
            // and resumable), and SENDs in a transaction take effect at once.
            Command::Ack | Command::Nack | Command::Begin | Command::Commit | Command::Abort => {
                self.receipt(&f, &[]).await
            }
            Command::Connected | Command::Message | Command::Receipt | Command::Error => {
                self.fatal(
                    "unknown_command",
                    &format!("{} is a server frame", f.command),
                    f.get("receipt"),
                )
                .await
            }
        }
    }

    async fn on_connect(&mut self, f: Frame) -> Step {
        if self.user.is_some() {
            return self
                .fatal("already_connected", "CONNECT was already sent", None)
                .await;
        }
        let versions = f.get("accept-version").unwrap_or("1.0");
        let version = ["1.2", "1.1", "1.0"]
            .into_iter()
            .find(|v| versions.split(',').any(|x| x.trim() == *v));
        let Some(version) = version else {
            return self
                .fatal(
                    "unsupported_version",
                    "this server speaks STOMP 1.0, 1.1 and 1.2",
                    None,
                )
                .await;
        };
        let token = ["Authorization", "authorization", "X-Authorization"]
            .into_iter()
            .find_map(|h| f.get(h))
            .map(|v| v.trim())
            .map(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
                    .unwrap_or(v)
            })
            .or_else(|| f.get("token"))
            .or_else(|| f.get("passcode"));
        let principal = match token {
            Some(t) => match self.state.auth.authenticate_user(t.trim()).await {
                Ok(p) => p,
                Err(e) => return self.fatal(e.code(), &e.public_message(), None).await,
            },
            None => match self.handshake_principal.clone() {
                Some(p) => p,
                None => {
                    return self
                        .fatal(
                            "missing_token",
                            "send Authorization: Bearer <access token> in CONNECT",
                            None,
                        )
                        .await;
                }
            },
        };
        let user = match self.state.auth.me(&principal).await {
            Ok(u) => u,
            Err(e) => return self.fatal(e.code(), &e.public_message(), None).await,
        };
        // Heart-beats: cx,cy from the client; the server offers hb,hb.
        let (cx, cy) = match f.get("heart-beat").map(parse_heartbeat) {
            None => (0, 0),
            Some(Some(v)) => v,
            Some(None) => {
                return self
                    .fatal("invalid_heartbeat", "heart-beat must be two integers", None)
                    .await;
            }
        };
        let hb = self.state.config.stomp_heartbeat_ms;
        self.send_every = (hb > 0 && cy > 0).then(|| Duration::from_millis(hb.max(cy)));
        self.expect_every = (hb > 0 && cx > 0).then(|| Duration::from_millis(hb.max(cx)));
        let reply = Frame::new(Command::Connected)
            .header("version", version)
            .header("heart-beat", format!("{hb},{hb}"))
            .header("server", SERVER)
            .header("session", uuid::Uuid::new_v4().simple().to_string())
            .header("user-name", user.username.clone());
        self.user = Some(ChatSender::from(&user));
        self.budget.set(ws_max_bytes(&self.state.config));
        tracing::debug!(user = %user.username, version, "stomp connected");
        self.write_frame(&reply).await?;
        self.receipt(&f, &[]).await?;
        if let Err(e) = self
            .state
            .social
            .connected(user.id, self.mailbox.id())
            .await
        {
            tracing::warn!(error = %e, "presence update failed");
        }
        Ok(())
    }

    fn principal(&self) -> Principal {
        self.user.as_ref().expect("connected").principal()
    }

    async fn on_subscribe(&mut self, f: Frame) -> Step {
        let Some(destination) = f.get("destination").map(str::to_owned) else {
            return self
                .fatal(
                    "missing_header",
                    "SUBSCRIBE needs destination",
                    f.get("receipt"),
                )
                .await;
        };
        let id = f.get("id").unwrap_or(&destination).to_owned();
        if self.subs.contains_key(&id) || self.errors_sub.as_deref() == Some(id.as_str()) {
            let e = DomainError::invalid(
                "duplicate_subscription",
                format!("subscription id {id:?} is in use"),
            );
            return self.app_error(&e, &f, None).await;
        }
        let Some(target) = subscribe_target(&destination) else {
            let e = DomainError::not_found(
                "unknown_destination",
                format!("cannot subscribe to {destination}"),
            );
            return self.app_error(&e, &f, None).await;
        };
        let (room_id, shape, entry) = match target {
            Target::Errors => {
                self.errors_sub = Some(id);
                return self.receipt(&f, &[]).await;
            }
            Target::Events => return self.subscribe_events(&f, id, destination).await,
            Target::Room {
                room_id,
                shape,
                entry,
            } => (room_id, shape, entry),
        };
        let resume_after = match f.get("last-seq").map(|v| v.trim().parse::<i64>()) {
            None => None,
            Some(Ok(v)) => Some(v),
            Some(Err(_)) => {
                let e = DomainError::invalid("invalid_header", "last-seq must be an integer");
                return self.app_error(&e, &f, None).await;
            }
        };
        let req = SubscribeRequest {
            room_id: room_id.clone(),
            entry,
            subscription: id.as_str().into(),
            shape,
            mailbox: self.mailbox.clone(),
            resume_after,
        };
        let subscribed = match self.state.chat.subscribe(&self.principal(), req).await {
            Ok(s) => s,
            Err(e) => return self.app_error(&e, &f, None).await,
        };
        let prefix = format!(
            "MESSAGE\ndestination:{}\nsubscription:{}\n",
            escape_header(&destination),
            escape_header(&id)
        );
        self.subs.insert(
            id.clone(),
            Sub {
                feeds: vec![room_id.clone()],
                shape,
                direct: subscribed.direct,
                prefix,
            },
        );
        self.receipt(&f, &[("last-seq", subscribed.live_after.to_string())])
            .await?;
        if let Some(mut after) = subscribed.resume_after {
            if subscribed.truncated {
                let e = DomainError::invalid(
                    "resume_truncated",
                    format!(
                        "more than {} messages were missed; page older ones with the history API",
                        self.state.chat.policy().max_resume
                    ),
                );
                self.app_error(&e, &f, None).await?;
            }
            while after < subscribed.live_after {
                let page = match self
                    .state
                    .chat
                    .replay_page(&room_id, after, subscribed.live_after)
                    .await
                {
                    Ok(p) => p,
                    Err(e) => return self.fatal(e.code(), &e.public_message(), None).await,
                };
                let Some(last) = page.last().map(|m| m.seq) else {
                    break;
                };
                for m in page {
                    let event = RoomEvent::message(m);
                    self.write_event(&id, shape, &event).await?;
                }
                after = last;
            }
        }
        Ok(())
    }

    async fn on_unsubscribe(&mut self, f: Frame) -> Step {
        let Some(id) = f.get("id").map(str::to_owned) else {
            return self
                .fatal("missing_header", "UNSUBSCRIBE needs id", f.get("receipt"))
                .await;
        };
        if self.errors_sub.as_deref() == Some(id.as_str()) {
            self.errors_sub = None;
        } else if let Some(sub) = self.subs.remove(&id) {
            for feed in &sub.feeds {
                self.state
                    .chat
                    .unsubscribe(feed, &self.mailbox, id.as_str().into());
            }
        }
        self.receipt(&f, &[]).await
    }

    async fn on_send(&mut self, f: Frame) -> Step {
        let Some(destination) = f.get("destination").map(str::to_owned) else {
            return self
                .fatal("missing_header", "SEND needs destination", f.get("receipt"))
                .await;
        };
        let header_cmid = f.get("client-msg-id").map(str::to_owned);
        let action = match parse_send(&destination, &f.body, header_cmid) {
            Ok(a) => a,
            Err(e) => return self.app_error(&e, &f, None).await,
        };
        let sender = self.user.clone().expect("connected");
        match action {
            Action::Message {
                room_id,
                entry,
                msg,
            } => {
                let temp_id = msg.client_msg_id.clone();
                if !self.bucket.take() {
                    let e = DomainError::RateLimited {
                        code: "send_rate_limited",
                        retry_after_secs: 1,
                    };
                    return self.app_error(&e, &f, temp_id.as_deref()).await;
                }
                match self.state.chat.send(&sender, &room_id, entry, msg).await {
                    Ok(appended) => {
                        let m = &appended.message;
                        self.receipt(
                            &f,
                            &[
                                ("message-id", m.id.to_string()),
                                ("seq", m.seq.to_string()),
                                ("room-id", m.room_id.clone()),
                                ("duplicate", appended.duplicate.to_string()),
                            ],
                        )
                        .await
                    }
                    Err(e) => self.app_error(&e, &f, temp_id.as_deref()).await,
                }
            }
            Action::Read {
                room_id,
                message_ids,
                upto,
            } => {
                let who = sender.principal();
                match self
                    .state
                    .chat
                    .mark_read(&who, &room_id, Entry::MembersOnly, message_ids, upto)
                    .await
                {
                    Ok(r) => {
                        self.receipt(&f, &[("last-read-seq", r.last_read_seq.to_string())])
                            .await
                    }
                    Err(e) => self.app_error(&e, &f, None).await,
                }
            }
            Action::Typing { room_id } => {
                // At most one typing event per room per interval; extra ones are dropped.
                let now = Instant::now();
                let min = Duration::from_millis(self.state.config.typing_interval_ms);
                if self
                    .last_typing
                    .get(&room_id)
                    .is_some_and(|t| now < *t + min)
                {
                    return self.receipt(&f, &[]).await;
                }
                // Only rooms the user is in are remembered (the domain refused the
                // rest), and a full map drops stale entries, never live ones.
                if self.last_typing.len() >= TYPING_ROOMS {
                    self.last_typing.retain(|_, at| now < *at + min);
                    if self.last_typing.len() >= TYPING_ROOMS {
                        return self.receipt(&f, &[]).await;
                    }
                }
                match self
                    .state
                    .chat
                    .typing(&sender.principal(), &room_id, Entry::MembersOnly)
                    .await
                {
                    Ok(()) => {
                        self.last_typing.insert(room_id, now);
                        self.receipt(&f, &[]).await
                    }
                    Err(e) => self.app_error(&e, &f, None).await,
                }
            }
        }
    }

    /// Contract C's events: the `rooms` list now, then the user's rooms, own feed
    /// and the lobby.
    async fn subscribe_events(&mut self, f: &Frame, id: String, destination: String) -> Step {
        let who = self.principal();
        let rooms = match self.state.rooms.my_rooms(&who).await {
            Ok(r) => r,
            Err(e) => return self.app_error(&e, f, None).await,
        };
        let mut feeds = vec![user_feed(who.user_id), LOBBY_FEED.to_owned()];
        feeds.extend(rooms.iter().map(|r| r.room.id.clone()));
        for feed in &feeds {
            if let Err(e) = self
                .state
                .chat
                .subscribe_feed(
                    &who,
                    feed,
                    id.as_str().into(),
                    SHAPE_C,
                    self.mailbox.clone(),
                )
                .await
            {
                return self.app_error(&e, f, None).await;
            }
        }
        let prefix = format!(
            "MESSAGE\ndestination:{}\nsubscription:{}\n",
            escape_header(&destination),
            escape_header(&id)
        );
        self.subs.insert(
            id.clone(),
            Sub {
                feeds,
                shape: SHAPE_C,
                direct: false,
                prefix: prefix.clone(),
            },
        );
        self.receipt(f, &[]).await?;
        let list: Vec<_> = rooms.iter().map(|r| contract_c_room(&r.room)).collect();
        let body = json!({ "event": "rooms", "data": list }).to_string();
        let mut text = prefix;
        text.push_str("message-id:");
        text.push_str(&uuid::Uuid::new_v4().simple().to_string());
        text.push_str("\nevent:rooms\ncontent-type:application/json\ncontent-length:");
        text.push_str(&body.len().to_string());
        text.push_str("\n\n");
        text.push_str(&body);
        text.push('\0');
        self.write_text(text).await
    }

    async fn deliver(&mut self, d: Delivery) -> Step {
        let me = self.user.as_ref().map(|u| u.id);
        let Some(sub) = self.subs.get(&*d.subscription) else {
            return Ok(()); // unsubscribed meanwhile
        };
        let (shape, direct) = (sub.shape, sub.direct);
        // An events subscription follows the user into rooms they join or create.
        let entered = match &d.event.payload {
            EventPayload::MemberJoined { room, user_id, .. } if Some(*user_id) == me => {
                Some(room.id.clone())
            }
            EventPayload::RoomCreated(room) if Some(room.created_by) == me => Some(room.id.clone()),
            _ => None,
        };
        if shape == SHAPE_C
            && let Some(room_id) = entered
            && !sub.feeds.contains(&room_id)
        {
            let who = self.principal();
            if self
                .state
                .chat
                .subscribe_feed(
                    &who,
                    &room_id,
                    d.subscription.clone(),
                    SHAPE_C,
                    self.mailbox.clone(),
                )
                .await
                .is_ok()
                && let Some(sub) = self.subs.get_mut(&*d.subscription)
            {
                sub.feeds.push(room_id);
            }
        }
        self.write_event(&d.subscription, shape, &d.event).await?;
        // The feed ends a leaver's subscriptions after this event: forget them
        // here too, so that a rejoin follows the room again (contract C) and a
        // room subscription's id can be used again.
        if let EventPayload::MemberLeft {
            room_id, user_id, ..
        } = &d.event.payload
            && Some(*user_id) == me
        {
            if shape == SHAPE_C {
                if let Some(sub) = self.subs.get_mut(&*d.subscription) {
                    sub.feeds.retain(|feed| feed != room_id);
                }
            } else if self
                .subs
                .get(&*d.subscription)
                .is_some_and(|sub| sub.feeds.iter().all(|feed| feed == room_id))
            {
                self.subs.remove(&*d.subscription);
            }
            self.last_typing.remove(room_id);
        }
        // In 1:1 rooms, reaching a device of the recipient is "delivered".
        if direct
            && let EventPayload::Message(m) = &d.event.payload
            && Some(m.sender_id) != me
            && self.delivered.get(&m.room_id).is_none_or(|s| *s < m.seq)
            && let Some(me) = me
        {
            self.delivered.insert(m.room_id.clone(), m.seq);
            if let Err(e) = self.state.chat.delivered(me, &m.room_id, m.seq).await {
                tracing::warn!(error = %e, "delivery receipt failed");
            }
        }
        Ok(())
    }

    async fn write_event(&mut self, sub_id: &str, shape: u8, event: &RoomEvent) -> Step {
        let Some(sub) = self.subs.get(sub_id) else {
            return Ok(());
        };
        let body = event.wire(shape as usize, |e| event_body(shape, e));
        if body.is_empty() {
            return Ok(()); // this shape does not carry this kind of event
        }
        let body = String::from_utf8_lossy(&body);
        let mut text = String::with_capacity(sub.prefix.len() + body.len() + 160);
        text.push_str(&sub.prefix);
        text.push_str("message-id:");
        match &event.payload {
            EventPayload::Message(m) => {
                text.push_str(&m.id.to_string());
                text.push_str("\nseq:");
                text.push_str(&m.seq.to_string());
            }
            _ => text.push_str(&uuid::Uuid::new_v4().simple().to_string()),
        }
        text.push_str("\nevent:");
        text.push_str(event_name(&event.payload));
        text.push_str("\ncontent-type:application/json\ncontent-length:");
        text.push_str(&body.len().to_string());
        text.push_str("\n\n");
        text.push_str(&body);
        text.push('\0');
        self.write_text(text).await
    }
}

fn parse_heartbeat(v: &str) -> Option<(u64, u64)> {
    let (a, b) = v.split_once(',')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContractASend {
    room_id: String,
    message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NativeSend {
    #[serde(rename = "type")]
    kind: Option<String>,
    parent_id: Option<uuid::Uuid>,
    ttl_seconds: Option<u32>,
    #[serde(default)]
    content: String,
    image_url: Option<String>,
    client_msg_id: Option<String>,
}

fn bad_body(e: impl std::fmt::Display) -> DomainError {
    DomainError::invalid("invalid_body", format!("invalid JSON body: {e}"))
}

fn parse_kind(kind: Option<&str>) -> Result<Option<MessageKind>, DomainError> {
    match kind {
        None => Ok(None),
        Some(k) => MessageKind::parse(k).map(Some).ok_or_else(|| {
            DomainError::invalid("invalid_type", format!("unknown message type {k:?}"))
        }),
    }
}

/// What a SEND asks for.
#[derive(Debug)]
enum Action {
    Message {
        room_id: String,
        entry: Entry,
        msg: SendMessage,
    },
    Read {
        room_id: String,
        message_ids: Vec<uuid::Uuid>,
        upto: Option<i64>,
    },
    Typing {
        room_id: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CoupleSend {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    content: String,
    image_url: Option<String>,
    temp_id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ReadBody {
    #[serde(default)]
    message_ids: Vec<uuid::Uuid>,
    seq: Option<i64>,
}

#[derive(Deserialize)]
struct EventsSend {
    event: String,
    data: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChatEvent {
    chat_seq: serde_json::Value,
    message: String,
}

fn read_body(body: &[u8]) -> Result<ReadBody, DomainError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(ReadBody::default());
    }
    serde_json::from_slice(body).map_err(bad_body)
}

fn profile_of(destination: &str) -> Profile {
    if destination.starts_with("/app/chat/") || destination.starts_with("/topic/couple/") {
        Profile::Couple
    } else {
        Profile::Native
    }
}

/// Maps a SEND's destination and body onto an action.
fn parse_send(
    destination: &str,
    body: &[u8],
    header_cmid: Option<String>,
) -> Result<Action, DomainError> {
    if destination == "/app/chat.send" {
        let b: ContractASend = serde_json::from_slice(body).map_err(bad_body)?;
        return Ok(Action::Message {
            room_id: b.room_id,
            entry: Entry::AutoJoin,
            msg: SendMessage {
                parent_id: None,
                ttl_seconds: None,
                kind: None,
                content: b.message,
                image_url: None,
                client_msg_id: header_cmid,
            },
        });
    }
    if destination == "/app/events" {
        let e: EventsSend = serde_json::from_slice(body).map_err(bad_body)?;
        if e.event != "chat" {
            return Err(DomainError::invalid(
                "unknown_event",
                format!("unknown event {:?}", e.event),
            ));
        }
        let c: ChatEvent = serde_json::from_value(e.data).map_err(bad_body)?;
        let room_id = match c.chat_seq {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
        return Ok(Action::Message {
            room_id,
            entry: Entry::MembersOnly,
            msg: SendMessage {
                parent_id: None,
                ttl_seconds: None,
                kind: None,
                content: c.message,
                image_url: None,
                client_msg_id: header_cmid,
            },
        });
    }
    if let Some(rest) = destination.strip_prefix("/app/rooms/") {
        if let Some(room_id) = rest.strip_suffix("/messages") {
            let b: NativeSend = serde_json::from_slice(body).map_err(bad_body)?;
            return Ok(Action::Message {
                room_id: room_id.to_owned(),
                entry: Entry::MembersOnly,
                msg: SendMessage {
                    parent_id: b.parent_id,
                    ttl_seconds: b.ttl_seconds,
                    kind: parse_kind(b.kind.as_deref())?,
                    content: b.content,
                    image_url: b.image_url,
                    client_msg_id: b.client_msg_id.or(header_cmid),
                },
            });
        }
        if let Some(room_id) = rest.strip_suffix("/read") {
            let b = read_body(body)?;
            return Ok(Action::Read {
                room_id: room_id.to_owned(),
                message_ids: b.message_ids,
                upto: b.seq,
            });
        }
        if let Some(room_id) = rest.strip_suffix("/typing") {
            return Ok(Action::Typing {
                room_id: room_id.to_owned(),
            });
        }
    }
    if let Some(rest) = destination.strip_prefix("/app/chat/") {
        if let Some(room_id) = rest.strip_suffix("/read") {
            let b = read_body(body)?;
            return Ok(Action::Read {
                room_id: room_id.to_owned(),
                message_ids: b.message_ids,
                upto: b.seq,
            });
        }
        if let Some(room_id) = rest.strip_suffix("/typing") {
            return Ok(Action::Typing {
                room_id: room_id.to_owned(),
            });
        }
        if !rest.contains('/') {
            let b: CoupleSend = serde_json::from_slice(body).map_err(bad_body)?;
            return Ok(Action::Message {
                room_id: rest.to_owned(),
                entry: Entry::MembersOnly,
                msg: SendMessage {
                    parent_id: None,
                    ttl_seconds: None,
                    kind: parse_kind(b.kind.as_deref())?,
                    content: b.content,
                    image_url: b.image_url,
                    client_msg_id: b.temp_id.or(header_cmid),
                },
            });
        }
    }
    Err(DomainError::not_found(
        "unknown_destination",
        format!("cannot send to {destination}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_map_onto_rooms() {
        assert!(
            matches!(subscribe_target("/topic/chat.room-1"), Some(Target::Room { room_id, shape: SHAPE_A, entry: Entry::AutoJoin }) if room_id == "room-1")
        );
        assert!(matches!(
            subscribe_target("/topic/rooms/abc"),
            Some(Target::Room {
                shape: SHAPE_NATIVE,
                entry: Entry::MembersOnly,
                ..
            })
        ));
        assert!(matches!(
            subscribe_target(ERRORS_DESTINATION),
            Some(Target::Errors)
        ));
        assert!(subscribe_target("/topic/other").is_none());
        let Action::Message {
            room_id,
            entry,
            msg,
        } = parse_send(
            "/app/chat.send",
            br#"{"roomId":"room-1","message":"hi"}"#,
            None,
        )
        .unwrap()
        else {
            panic!("a message")
        };
        assert_eq!(
            (room_id.as_str(), entry, msg.content.as_str()),
            ("room-1", Entry::AutoJoin, "hi")
        );
        let Action::Message { msg, .. } = parse_send(
            "/app/rooms/x/messages",
            br#"{"type":"image","imageUrl":"https://i/x.png","clientMsgId":"c1"}"#,
            None,
        )
        .unwrap() else {
            panic!("a message")
        };
        assert_eq!(msg.kind, Some(MessageKind::Image));
        assert_eq!(msg.client_msg_id.as_deref(), Some("c1"));
        let Action::Message { room_id, msg, .. } = parse_send(
            "/app/chat/c-1",
            br#"{"type":"TEXT","content":"hello","imageUrl":null,"tempId":"t-1"}"#,
            None,
        )
        .unwrap() else {
            panic!("a message")
        };
        assert_eq!(
            (room_id.as_str(), msg.client_msg_id.as_deref()),
            ("c-1", Some("t-1"))
        );
        assert!(matches!(
            parse_send("/app/chat/c-1/typing", b"", None),
            Ok(Action::Typing { .. })
        ));
        assert!(matches!(
            parse_send(
                "/app/chat/c-1/read",
                br#"{"messageIds":["0197a3f5-6b1c-7c4e-9d2a-2f1e0b9c8d7e"]}"#,
                None
            ),
            Ok(Action::Read { message_ids, .. }) if message_ids.len() == 1
        ));
        assert!(matches!(
            parse_send(
                "/app/events",
                br#"{"event":"chat","data":{"chatSeq":"r","message":"m"}}"#,
                None
            ),
            Ok(Action::Message { room_id, .. }) if room_id == "r"
        ));
        assert_eq!(
            parse_send("/app/chat.send", b"{nope", None)
                .unwrap_err()
                .code(),
            "invalid_body"
        );
        assert_eq!(
            parse_send("/app/x", b"{}", None).unwrap_err().code(),
            "unknown_destination"
        );
        assert_eq!(parse_heartbeat("10000, 0"), Some((10000, 0)));
        assert_eq!(parse_heartbeat("x"), None);
    }
}
