//! `GET /ws/chat`: STOMP 1.2 over WebSocket (docs/PROTOCOL.md).
//!
//! The STOMP transport adapter over the session core
//! (`ieum_domain::session`): `mod.rs` upgrades (connection cap, frame guard),
//! `connection.rs` runs the loop and timers, `commands.rs` maps each frame onto
//! the session, `routing.rs` maps destinations and bodies onto commands (pure),
//! `frames.rs` writes frames and `notices.rs` shapes per-contract errors. Protocol errors answer an ERROR frame and close
//! (STOMP 1.2 requires it); failures of a single SEND or SUBSCRIBE go to
//! `/user/queue/errors` when the client subscribed to it, and are an ERROR
//! frame otherwise.

mod commands;
mod connection;
mod frames;
pub(crate) mod guard;
mod notices;
mod routing;
mod sink;
pub mod sockjs;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Deserialize;
use tracing::Instrument;

pub(crate) use connection::{proof_mark, proof_payload};
pub use routing::{ERRORS_DESTINATION, EVENTS_DESTINATION, parse_event};

use ieum_domain::auth::Grant;

use crate::app::AppState;
use crate::http::errors::{ApiError, problem_response};
use crate::http::extract::bearer_token;
use connection::Conn;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/ws/chat", web::get().to(upgrade))
        .configure(sockjs::routes);
}

/// Subprotocols offered by STOMP clients; clients that offer none are served too.
pub const PROTOCOLS: &[&str] = &["v12.stomp", "v11.stomp", "v10.stomp"];

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

    /// How many are open now.
    pub fn open(&self) -> usize {
        self.0.load(Ordering::Acquire)
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
    state: web::Data<AppState>,
    query: web::Query<HandshakeQuery>,
) -> Result<HttpResponse, actix_web::Error> {
    serve(req, state, query, false).await
}

async fn serve(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<HandshakeQuery>,
    sockjs: bool,
) -> Result<HttpResponse, actix_web::Error> {
    // The caps first: a token in the URL costs database reads, which a node
    // already behind should not spend.
    let Some(slot) = state
        .ws_connections
        .try_open(state.config.ws_max_connections)
    else {
        return Ok(too_many_connections(&state.config));
    };
    let Some(pending) = state
        .ws_pending
        .try_open(state.config.ws_max_pending_handshakes)
    else {
        return Ok(handshake_backlog(&state.config));
    };
    let handshake = match admit_handshake(&state, &req, query.token.as_deref()).await {
        Ok(grant) => grant,
        Err(answer) => return Ok(answer),
    };
    // Every frame header is checked before its payload is read: a small
    // budget until CONNECT succeeds, then the frame limit. WebSocket
    // messages may carry several frames; the STOMP limits apply per frame.
    let limits = crate::wsio::Limits {
        max_bytes: ws_max_bytes(&state.config),
        budget: guard::Budget::new(state.config.ws_preauth_max_bytes),
        write_timeout: Duration::from_millis(state.config.ws_write_timeout_ms),
    };
    let budget = limits.budget.clone();
    let protocols = if sockjs { &[][..] } else { PROTOCOLS };
    crate::wsio::upgrade(&req, protocols, limits, move |out, stream| {
        let conn = Box::new(
            Conn::new(
                state.into_inner(),
                handshake,
                sink::Sink::Ws(out),
                budget,
                sockjs,
            )
            .pending(pending),
        );
        let span =
            tracing::info_span!("ws", conn = conn.session.id(), user = tracing::field::Empty);
        async move {
            conn.run(stream).await;
            drop(slot);
        }
        .instrument(span)
    })
}

/// A token on a real-time handshake (in the query, where browsers must put
/// it, or the `Authorization` header) is checked before anything opens: a
/// bad one answers 401, a store that does not answer 503. No token is
/// fine: the protocol's own CONNECT brings it.
pub(crate) async fn admit_handshake(
    state: &AppState,
    req: &HttpRequest,
    query_token: Option<&str>,
) -> Result<Option<Grant>, HttpResponse> {
    let Some(token) = query_token.or_else(|| bearer_token(req)) else {
        return Ok(None);
    };
    state
        .auth
        .admit(token)
        .await
        .map(Some)
        .map_err(|e| ApiError(e).error_response())
}

/// 503 with `Retry-After`: this node holds its most connections (of any
/// real-time transport).
pub(crate) fn too_many_connections(config: &crate::config::Config) -> HttpResponse {
    tracing::warn!(
        max = config.ws_max_connections,
        "real-time connection refused: this node holds its most connections"
    );
    retry_later(
        "too_many_connections",
        "this node holds as many connections as it may; retry shortly or elsewhere",
        "5",
    )
}

/// 503 with `Retry-After`: this node has as many connections waiting for
/// their CONNECT to finish as it takes (a reconnect storm); a client that
/// waits and retries gets in.
pub(crate) fn handshake_backlog(config: &crate::config::Config) -> HttpResponse {
    tracing::warn!(
        max = config.ws_max_pending_handshakes,
        "real-time connection refused: this node is behind on handshakes"
    );
    retry_later(
        "handshake_backlog",
        "this node is behind on handshakes; retry after the given seconds",
        "1",
    )
}

/// A refused handshake: 503 problem+json with `Retry-After: seconds`.
fn retry_later(code: &'static str, detail: &str, seconds: &'static str) -> HttpResponse {
    let mut r = problem_response(
        actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
        code,
        detail.into(),
    );
    r.headers_mut().insert(
        actix_web::http::header::RETRY_AFTER,
        actix_web::http::header::HeaderValue::from_static(seconds),
    );
    r
}

/// The largest WebSocket frame or message of an authenticated connection.
pub(crate) fn ws_max_bytes(config: &crate::config::Config) -> usize {
    config.stomp_max_frame_bytes.saturating_mul(4)
}
