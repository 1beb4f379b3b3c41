//! SockJS on `/ws/chat` for Spring's browser clients (`new SockJS('/ws/chat')`
//! with STOMP on top): `/info`, and three transports under
//! `/ws/chat/{server}/{session}/`:
//! - `websocket`: SockJS frames in WebSocket text messages;
//! - `xhr_streaming`: one POST answers a long response of frames, ended
//!   after [`STREAM_LIMIT`] bytes so the client opens the next;
//! - `xhr`: one POST answers the frames queued (or `h` after
//!   [`HEARTBEAT`]);
//!
//! and `xhr_send`, where the client POSTs a JSON array of STOMP strings.
//! Every transport carries the same STOMP connection (`connection.rs`); the
//! HTTP ones queue its writes in an outbox ([`crate::outbox`]) that the
//! receiving requests drain. Sessions live in this node's memory, like
//! Socket.IO's (docs/DEPLOY.md, sticky sessions).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, ProtocolError};
use futures_util::Stream;
use tokio::sync::{Notify, OwnedMutexGuard, mpsc, watch};
use tokio::time::Instant;
use tracing::Instrument;

use super::connection::Conn;
use super::guard::Budget;
use super::sink::Sink;
use super::{HandshakeQuery, admit_handshake, serve, too_many_connections};
use crate::app::AppState;
use crate::http::errors::problem_response;
use crate::http::extract::{client_address, read_limited};
use crate::outbox::Outbox;

/// SockJS's heart-beat: a receiving request with nothing to say for this
/// long answers (or streams) an `h` frame.
pub const HEARTBEAT: Duration = Duration::from_secs(25);
/// A session no request has received for this long is closed.
pub const DISCONNECT_DELAY: Duration = Duration::from_secs(5);
/// Bytes one xhr-streaming response carries before it ends (the client,
/// which keeps the whole response text, opens the next).
pub const STREAM_LIMIT: usize = 128 * 1024;
/// Frames one HTTP session may have queued for its client.
const OUTBOX_FRAMES: usize = 1024;
/// STOMP strings of one session that may wait for its connection.
const INBOUND_MESSAGES: usize = 64;

/// The SockJS sessions on HTTP this node holds, by session id.
pub type Registry = crate::outbox::Registry<Handle>;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/ws/chat/info", web::get().to(info))
        .route(
            "/ws/chat/{server}/{session}/websocket",
            web::get().to(websocket),
        )
        .route("/ws/chat/{server}/{session}/xhr", web::post().to(poll))
        .route(
            "/ws/chat/{server}/{session}/xhr_streaming",
            web::post().to(stream),
        )
        .route("/ws/chat/{server}/{session}/xhr_send", web::post().to(send));
}

/// What an HTTP session's requests share with its STOMP connection.
pub struct Handle {
    pub(super) outbox: Outbox,
    inbound: mpsc::Sender<Bytes>,
    /// One receiving request at a time.
    receiving: Arc<tokio::sync::Mutex<()>>,
    /// Since when no request receives (`None` while one does).
    detached: watch::Sender<Option<Instant>>,
    closed: AtomicBool,
    closing: Notify,
    /// The STOMP connection's frame budget: small until CONNECT.
    budget: Budget,
    /// Who opened the session: requests from elsewhere do not find it.
    address: String,
}

impl Handle {
    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The STOMP connection ended: requests drain what is queued and end.
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.closing.notify_waiters();
        self.closing.notify_one();
    }
}

/// A receiving request's hold on its session, let go when the request ends
/// (answered, or dropped by a client that went away).
struct Receiving {
    handle: Arc<Handle>,
    _lock: OwnedMutexGuard<()>,
}

impl Receiving {
    fn new(handle: Arc<Handle>, lock: OwnedMutexGuard<()>) -> Self {
        handle.detached.send_replace(None);
        Self {
            handle,
            _lock: lock,
        }
    }
}

impl Drop for Receiving {
    fn drop(&mut self) {
        self.handle.detached.send_replace(Some(Instant::now()));
    }
}

/// SockJS's `/info`: what `new SockJS('/ws/chat')` asks first.
async fn info() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((
            "cache-control",
            "no-store, no-cache, must-revalidate, max-age=0",
        ))
        .json(serde_json::json!({
            "websocket": true,
            "origins": ["*:*"],
            "cookie_needed": false,
            "entropy": rand_entropy(),
        }))
}

fn rand_entropy() -> u32 {
    let bytes = *uuid::Uuid::new_v4().as_bytes();
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// The session id of a transport path, when both ids are well formed.
fn session_id(path: &(String, String)) -> Option<&str> {
    let valid = |s: &str| !s.is_empty() && s.len() <= 64 && !s.contains('.');
    (valid(&path.0) && valid(&path.1)).then_some(path.1.as_str())
}

fn unknown_session() -> HttpResponse {
    problem_response(
        actix_web::http::StatusCode::NOT_FOUND,
        "not_found",
        "no such SockJS session on this node (ids are 1 to 64 characters without dots)".into(),
    )
}

/// SockJS's websocket transport: STOMP in SockJS frames.
async fn websocket(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<HandshakeQuery>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, actix_web::Error> {
    if session_id(&path).is_none() {
        return Ok(unknown_session());
    }
    serve(req, state, query, true).await
}

/// The session `path` names, for a request from the address that opened it.
fn find(
    state: &AppState,
    req: &HttpRequest,
    path: &(String, String),
) -> Option<(String, Arc<Handle>)> {
    let id = session_id(path)?;
    let handle = state.sockjs.find(id)?;
    (handle.address == client_address(req)).then(|| (id.to_owned(), handle))
}

/// Opens an HTTP session under `id`: its STOMP connection running, the
/// handle in the registry. Refused like a WebSocket handshake: a bad token
/// (401), or a node at its most connections (503).
async fn open(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    query: &HandshakeQuery,
    id: &str,
) -> Result<Arc<Handle>, HttpResponse> {
    let slot = state
        .ws_connections
        .try_open(state.config.ws_max_connections)
        .ok_or_else(|| too_many_connections(&state.config))?;
    let pending = state
        .ws_pending
        .try_open(state.config.ws_max_pending_handshakes)
        .ok_or_else(|| super::handshake_backlog(&state.config))?;
    let handshake = admit_handshake(state, req, query.token.as_deref()).await?;
    let budget = Budget::new(state.config.ws_preauth_max_bytes);
    let (tx, rx) = mpsc::channel(INBOUND_MESSAGES);
    let handle = Arc::new(Handle {
        outbox: Outbox::new(OUTBOX_FRAMES),
        inbound: tx,
        receiving: Arc::default(),
        detached: watch::Sender::new(Some(Instant::now())),
        closed: AtomicBool::new(false),
        closing: Notify::new(),
        budget: budget.clone(),
        address: client_address(req),
    });
    let held = state.sockjs.insert(id, handle.clone());
    if !Arc::ptr_eq(&held, &handle) {
        // Two requests opened the same id at once: the other one won.
        return Ok(held);
    }
    let conn = Conn::new(
        state.clone().into_inner(),
        handshake,
        Sink::Http(handle.clone()),
        budget,
        true,
    )
    .pending(pending);
    let span = tracing::info_span!(
        "sockjs",
        conn = conn.session.id(),
        user = tracing::field::Empty
    );
    let registry = state.sockjs.clone();
    let (id, held) = (id.to_owned(), handle.clone());
    let inbound = Box::pin(inbound(handle.clone(), rx));
    let conn = Box::new(conn);
    actix_web::rt::spawn(
        async move {
            conn.run(inbound).await;
            drop(slot);
            // A late request still finds the session, and its close frame.
            tokio::time::sleep(DISCONNECT_DELAY).await;
            registry.remove(&id, &held);
        }
        .instrument(span),
    );
    Ok(handle)
}

/// What `xhr_send` brings, as the STOMP connection reads it. Ends when no
/// request has received for [`DISCONNECT_DELAY`]: the client went away.
fn inbound(
    handle: Arc<Handle>,
    rx: mpsc::Receiver<Bytes>,
) -> impl Stream<Item = Result<AggregatedMessage, ProtocolError>> {
    let detached = handle.detached.subscribe();
    futures_util::stream::unfold((rx, detached), |(mut rx, mut detached)| async move {
        loop {
            let since = *detached.borrow_and_update();
            let abandoned = async {
                match since {
                    Some(at) => tokio::time::sleep_until(at + DISCONNECT_DELAY).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                message = rx.recv() => {
                    return message.map(|m| (Ok(AggregatedMessage::Binary(m)), (rx, detached)));
                }
                _ = abandoned => return None,
                changed = detached.changed() => changed.ok()?,
            }
        }
    })
}

/// What a receiving request finds.
enum Next {
    /// Frames, each ended by a newline.
    Frames(String),
    Heartbeat,
    Closed,
}

async fn next(handle: &Handle, max_bytes: usize) -> Next {
    let deadline = Instant::now() + HEARTBEAT;
    loop {
        let closing = handle.closing.notified();
        tokio::pin!(closing);
        closing.as_mut().enable();
        let taken = handle.outbox.take(max_bytes);
        if !taken.is_empty() {
            let mut frames = String::with_capacity(taken.iter().map(|f| f.len() + 1).sum());
            for frame in taken {
                frames.push_str(&frame);
                frames.push('\n');
            }
            return Next::Frames(frames);
        }
        if handle.is_closed() {
            return Next::Closed;
        }
        tokio::select! {
            _ = handle.outbox.ready() => {}
            _ = closing => {}
            _ = tokio::time::sleep_until(deadline) => return Next::Heartbeat,
        }
    }
}

const GO_AWAY: &str = "c[3000,\"Go away!\"]\n";
const ANOTHER: &str = "c[2010,\"Another connection still open\"]\n";

fn javascript() -> actix_web::HttpResponseBuilder {
    let mut r = HttpResponse::Ok();
    r.content_type("application/javascript; charset=UTF-8")
        .insert_header(("cache-control", "no-store, no-cache, no-transform"))
        // nginx must pass each frame on as it comes (deploy/nginx).
        .insert_header(("x-accel-buffering", "no"));
    r
}

/// The session a receiving request names, opened if new, and the request's
/// hold on it; or the answer when it cannot receive.
async fn receiving(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    query: &HandshakeQuery,
    path: &(String, String),
) -> Result<Receiving, HttpResponse> {
    let handle = match find(state, req, path) {
        Some((_, handle)) => handle,
        None => {
            let id = session_id(path).ok_or_else(unknown_session)?;
            if state.sockjs.find(id).is_some() {
                return Err(unknown_session());
            }
            open(state, req, query, id).await?
        }
    };
    match handle.receiving.clone().try_lock_owned() {
        Ok(lock) => Ok(Receiving::new(handle, lock)),
        // SockJS's answer to a second receiver; the first goes on.
        Err(_) => Err(javascript().body(ANOTHER)),
    }
}

/// `xhr`: one answer of what is queued, or a heart-beat.
async fn poll(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<HandshakeQuery>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let receiving = match receiving(&state, &req, &query, &path).await {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    let body = match next(&receiving.handle, STREAM_LIMIT).await {
        Next::Frames(frames) => frames,
        Next::Heartbeat => "h\n".to_owned(),
        Next::Closed => GO_AWAY.to_owned(),
    };
    javascript().body(body)
}

/// `xhr_streaming`: a prelude (2 KiB of `h` that old browsers need before
/// they show a response's first bytes), then frames as they come.
async fn stream(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<HandshakeQuery>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let receiving = match receiving(&state, &req, &query, &path).await {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    let mut prelude = "h".repeat(2048);
    prelude.push('\n');
    let first = futures_util::stream::once(async move { Ok(Bytes::from(prelude)) });
    let frames =
        futures_util::stream::unfold((Some(receiving), 0usize), |(receiving, sent)| async move {
            let receiving = receiving?;
            if sent >= STREAM_LIMIT {
                return None;
            }
            let (chunk, go_on) = match next(&receiving.handle, STREAM_LIMIT - sent).await {
                Next::Frames(frames) => (frames, true),
                Next::Heartbeat => ("h\n".to_owned(), true),
                Next::Closed => (GO_AWAY.to_owned(), false),
            };
            let sent = sent + chunk.len();
            let state = (go_on.then_some(receiving), sent);
            Some((Ok::<_, actix_web::Error>(Bytes::from(chunk)), state))
        });
    javascript().streaming(futures_util::StreamExt::chain(first, frames))
}

/// SockJS's text answer to a bad `xhr_send` (500, as its servers answer).
fn send_refused(message: &'static str) -> HttpResponse {
    HttpResponse::InternalServerError()
        .content_type("text/plain; charset=UTF-8")
        .body(message)
}

/// `xhr_send`: a JSON array of STOMP strings for the session's connection.
/// Bounded by the connection's budget (small until CONNECT); the request
/// waits while the connection is behind.
async fn send(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Payload,
) -> HttpResponse {
    let Some((_, handle)) = find(&state, &req, &path) else {
        return unknown_session();
    };
    let body = match read_limited(body, handle.budget.max_bytes()).await {
        Ok(body) => body,
        Err(answer) => return answer,
    };
    if body.is_empty() {
        return send_refused("Payload expected.");
    }
    let parts = match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(serde_json::Value::Array(items)) => items,
        Ok(item @ serde_json::Value::String(_)) => vec![item],
        _ => return send_refused("Broken JSON encoding."),
    };
    let mut strings = Vec::with_capacity(parts.len());
    for part in parts {
        match part {
            serde_json::Value::String(s) => strings.push(s),
            _ => return send_refused("Broken JSON encoding."),
        }
    }
    for s in strings {
        if handle.inbound.send(Bytes::from(s)).await.is_err() {
            return unknown_session();
        }
    }
    HttpResponse::NoContent()
        .content_type("text/plain; charset=UTF-8")
        .finish()
}
