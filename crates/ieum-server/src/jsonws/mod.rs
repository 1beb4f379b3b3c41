//! `GET /ws/json`: a plain JSON WebSocket for clients with no STOMP library
//! (seed 000's handler took JSON): one JSON object per WebSocket text
//! message, each way (docs/PROTOCOL.md, "JSON WebSocket").
//!
//! A third adapter over the session core: the same authorization, limits,
//! resume by seq, rate limits and error codes as STOMP; the events carry the
//! native shape. `commands.rs` parses the client's objects (pure,
//! unit-tested); `connection.rs` runs the loop.

mod commands;
mod connection;

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Deserialize;
use tracing::Instrument;

use crate::app::AppState;
use crate::http::errors::ApiError;
use crate::http::extract::bearer_token;
use crate::ws::guard;
use connection::JsonConn;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/ws/json", web::get().to(upgrade));
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
    let token = query
        .token
        .clone()
        .or_else(|| bearer_token(&req).map(str::to_owned));
    let handshake = match token {
        Some(t) => match state.auth.admit(&t).await {
            Ok(grant) => Some(grant),
            Err(e) => return Ok(ApiError(e).error_response()),
        },
        None => None,
    };
    let Some(slot) = state
        .ws_connections
        .try_open(state.config.ws_max_connections)
    else {
        return Ok(crate::ws::too_many_connections(&state.config));
    };
    let limits = crate::wsio::Limits {
        max_bytes: crate::ws::ws_max_bytes(&state.config),
        budget: guard::Budget::new(state.config.ws_preauth_max_bytes),
        write_timeout: Duration::from_millis(state.config.ws_write_timeout_ms),
    };
    let budget = limits.budget.clone();
    crate::wsio::upgrade(&req, &[], limits, move |out, stream| {
        let conn = Box::new(JsonConn::new(state.into_inner(), out, budget));
        let span = tracing::info_span!("ws-json", conn = conn.id(), user = tracing::field::Empty);
        async move {
            conn.run(stream, handshake).await;
            drop(slot);
        }
        .instrument(span)
    })
}
