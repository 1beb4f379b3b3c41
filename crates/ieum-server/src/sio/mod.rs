//! `/socket.io/`: Socket.IO v4 (Engine.IO 4) for contract C's socket.io
//! clients, unchanged (docs/PROTOCOL.md, "Socket.IO").
//!
//! A transport adapter over the session core, like `ws/`: `engine.rs` runs
//! one session (its domain `Session`, the Socket.IO socket on `/`, pings,
//! contract C's events), `crate::outbox` queues what it has for the client, and
//! this file serves the two carriers socket.io-client uses: HTTP
//! long-polling (a GET waits for packets, a POST brings the client's) and
//! WebSocket, either from the start or as an upgrade of a polling session
//! (probe `2probe`/`3probe`, then `5`). The codecs are ieum-engineio's.
//!
//! Sessions live in this node's memory: a long-polling client must reach
//! the node that holds its session (docs/DEPLOY.md: sticky sessions).

mod engine;

use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::AggregatedMessage;
use futures_util::StreamExt;
use ieum_engineio::{Packet, decode_payload, encode_payload};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::app::AppState;
use crate::outbox::Outbox;
use engine::{Carrier, Engine, Handle, Timing};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/socket.io/", web::get().to(get))
        .route("/socket.io/", web::post().to(post));
}

/// The Engine.IO sessions this node holds, by sid.
pub type Registry = crate::outbox::Registry<Handle>;

/// Packets one session may have queued for its client.
const OUTBOX_PACKETS: usize = 1024;
/// Packets of the client's one session may wait for its task.
const INBOUND_PACKETS: usize = 64;
/// Packets in one long-polling POST.
const PACKETS_PER_POST: usize = 64;

#[derive(Deserialize)]
struct EngineQuery {
    #[serde(rename = "EIO")]
    eio: Option<String>,
    transport: Option<String>,
    sid: Option<String>,
    token: Option<String>,
}

/// Engine.IO's error answer: `{"code", "message"}` with 400.
fn engine_error(code: u8, message: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({"code": code, "message": message}))
}

fn text(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=UTF-8")
        .insert_header(("cache-control", "no-store"))
        .body(body)
}

/// The largest body or message a session takes (`maxPayload`).
fn max_payload(state: &AppState) -> usize {
    crate::ws::ws_max_bytes(&state.config)
}

fn timing(state: &AppState) -> Timing {
    Timing {
        ping_interval: Duration::from_millis(state.config.sio_ping_interval_ms),
        ping_timeout: Duration::from_millis(state.config.sio_ping_timeout_ms),
        connect_timeout: Duration::from_millis(state.config.stomp_connect_timeout_ms),
    }
}

/// Checks the query: Engine.IO 4 and a known transport. The refusal is
/// Engine.IO's error code and message.
fn check_query(query: &EngineQuery) -> Result<&str, (u8, &'static str)> {
    if query.eio.as_deref() != Some("4") {
        return Err((5, "Unsupported protocol version: this server speaks EIO=4"));
    }
    match query.transport.as_deref() {
        Some(t @ ("polling" | "websocket")) => Ok(t),
        _ => Err((0, "Transport unknown")),
    }
}

/// Opens a session: its handle in the registry, its task running. Answers
/// the handle and the open packet.
async fn open(
    state: &AppState,
    req: &HttpRequest,
    query: &EngineQuery,
    carrier: Carrier,
) -> Result<(Arc<Handle>, String), Box<HttpResponse>> {
    let handshake = crate::ws::admit_handshake(state, req, query.token.as_deref())
        .await
        .map_err(Box::new)?;
    let Some(slot) = state
        .ws_connections
        .try_open(state.config.ws_max_connections)
    else {
        return Err(Box::new(crate::ws::too_many_connections(&state.config)));
    };
    let (session, inbox) = state.open_session(crate::app::Proofs::Answered, "socket.io");
    let sid = uuid::Uuid::new_v4().simple().to_string();
    let (tx, rx) = mpsc::channel(INBOUND_PACKETS);
    let handle = Arc::new(Handle::new(
        sid.clone(),
        tx,
        Outbox::new(OUTBOX_PACKETS),
        carrier,
        max_payload(state),
    ));
    state.sio.insert(&sid, handle.clone());
    let timing = timing(state);
    let opened = json!({
        "sid": sid,
        "upgrades": if carrier == Carrier::Polling { vec!["websocket"] } else { Vec::new() },
        "pingInterval": timing.ping_interval.as_millis() as u64,
        "pingTimeout": timing.ping_timeout.as_millis() as u64,
        "maxPayload": max_payload(state),
    });
    let engine = Box::new(Engine::new(
        state.clone(),
        session,
        inbox,
        handle.clone(),
        rx,
        handshake,
        timing,
    ));
    let span = tracing::info_span!("sio", sid = %sid);
    actix_web::rt::spawn(
        async move {
            engine.run().await;
            drop(slot);
        }
        .instrument(span),
    );
    Ok((handle, Packet::Open(opened.to_string()).encode()))
}

async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<EngineQuery>,
) -> Result<HttpResponse, actix_web::Error> {
    let transport = match check_query(&query) {
        Ok(t) => t,
        Err((code, message)) => return Ok(engine_error(code, message)),
    };
    if transport == "websocket" {
        return websocket(req, state, query.into_inner()).await;
    }
    let Some(sid) = &query.sid else {
        return Ok(match open(&state, &req, &query, Carrier::Polling).await {
            Ok((_, opened)) => text(opened),
            Err(answer) => *answer,
        });
    };
    let Some(handle) = state.sio.find(sid) else {
        return Ok(engine_error(1, "Session ID unknown"));
    };
    if handle.carrier() == Carrier::WebSocket {
        return Ok(engine_error(
            3,
            "Bad request: the session was upgraded to WebSocket",
        ));
    }
    // A second GET while one waits breaks the protocol: both end.
    let Ok(_poll) = handle.polling.try_lock() else {
        handle.close();
        return Ok(engine_error(3, "Bad request: overlapping polls"));
    };
    Ok(text(encode_payload(
        &poll(&handle, max_payload(&state)).await,
    )))
}

/// Waits for packets (a ping comes every interval, so not for long); a
/// closed session answers `close`.
async fn poll(handle: &Handle, max_bytes: usize) -> Vec<String> {
    loop {
        let taken = handle.outbox.take(max_bytes);
        if !taken.is_empty() {
            return taken;
        }
        if handle.is_closed() {
            return vec![Packet::Close.encode()];
        }
        tokio::select! {
            _ = handle.outbox.ready() => {}
            _ = handle.closing.notified() => {}
        }
    }
}

async fn post(
    state: web::Data<AppState>,
    query: web::Query<EngineQuery>,
    body: web::Payload,
) -> HttpResponse {
    if let Err((code, message)) = check_query(&query) {
        return engine_error(code, message);
    }
    let Some(handle) = query.sid.as_deref().and_then(|sid| state.sio.find(sid)) else {
        return engine_error(1, "Session ID unknown");
    };
    // Until the socket's CONNECT succeeds, the pre-auth budget.
    let limit = if handle.is_authenticated() {
        max_payload(&state)
    } else {
        state.config.ws_preauth_max_bytes
    };
    let body = match crate::http::extract::read_limited(body, limit).await {
        Ok(body) => body,
        Err(answer) => {
            handle.close();
            return answer;
        }
    };
    let packets = std::str::from_utf8(&body)
        .map_err(|_| "the body is not UTF-8".to_owned())
        .and_then(|text| decode_payload(text, limit, PACKETS_PER_POST).map_err(|e| e.to_string()));
    let packets = match packets {
        Ok(packets) => packets,
        Err(message) => {
            // A client that sends what it may not is closed (Engine.IO does so).
            tracing::debug!(%message, "socket.io body refused");
            handle.close();
            return engine_error(3, &format!("Bad request: {message}"));
        }
    };
    for packet in packets {
        if handle.inbound.send(packet).await.is_err() {
            return engine_error(1, "Session ID unknown");
        }
    }
    text("ok".to_owned())
}

/// A WebSocket: a session of its own (`sid` absent), or the upgrade of a
/// polling session.
async fn websocket(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: EngineQuery,
) -> Result<HttpResponse, actix_web::Error> {
    let upgrading = match &query.sid {
        Some(sid) => match state.sio.find(sid) {
            Some(handle) if handle.carrier() == Carrier::Polling => Some(handle),
            Some(_) => return Ok(engine_error(3, "Bad request: already upgraded")),
            None => return Ok(engine_error(1, "Session ID unknown")),
        },
        None => None,
    };
    // Not an upgrade (or one this listener cannot hand over): refused
    // before any session opens.
    if actix_http::ws::handshake(req.head()).is_err() || !crate::wsio::can_upgrade(&req) {
        return Ok(engine_error(3, "Bad request: not a WebSocket upgrade"));
    }
    let (handle, opened) = match upgrading {
        Some(handle) => (handle, None),
        None => match open(&state, &req, &query, Carrier::WebSocket).await {
            Ok((handle, opened)) => (handle, Some(opened)),
            Err(answer) => return Ok(*answer),
        },
    };
    // Frame headers are checked before payloads are buffered: the small
    // pre-auth budget until the socket's CONNECT succeeds.
    let budget = crate::ws::guard::Budget::new(if handle.is_authenticated() {
        max_payload(&state)
    } else {
        state.config.ws_preauth_max_bytes
    });
    handle.watch_budget(budget.clone());
    let limits = crate::wsio::Limits {
        max_bytes: max_payload(&state),
        budget,
        write_timeout: Duration::from_millis(state.config.ws_write_timeout_ms),
    };
    let span = tracing::info_span!("sio-ws", sid = %handle.sid);
    // A session opened here closes if its 101 never goes out.
    let unrun = CloseUnlessRun(opened.is_some().then(|| handle.clone()));
    crate::wsio::upgrade(&req, &[], limits, move |mut out, mut stream| {
        unrun.disarm();
        async move {
            if let Some(opened) = opened
                && out.text(opened).await.is_err()
            {
                handle.close();
                return;
            }
            let write_timeout = Duration::from_millis(state.config.ws_write_timeout_ms);
            loop {
                let writing = handle.carrier() == Carrier::WebSocket;
                tokio::select! {
                    message = stream.next() => match message {
                        Some(Ok(AggregatedMessage::Text(text))) => {
                            match Packet::decode(&text) {
                                Ok(Packet::Ping(probe)) if probe == "probe" => {
                                    // The probe of an upgrade: answered here, then the
                                    // waiting poll is released with a noop.
                                    handle.set_carrier(Carrier::Probing);
                                    if out.text(Packet::Pong(probe).encode()).await.is_err() { break; }
                                    handle.outbox.push(Packet::Noop.encode());
                                }
                                Ok(Packet::Upgrade) => handle.set_carrier(Carrier::WebSocket),
                                Ok(packet) => {
                                    if handle.inbound.send(packet).await.is_err() { break; }
                                }
                                Err(e) => {
                                    tracing::debug!(error = %e, "socket.io packet refused");
                                    break;
                                }
                            }
                        }
                        Some(Ok(AggregatedMessage::Ping(p))) => {
                            if out.pong(&p).await.is_err() { break; }
                        }
                        Some(Ok(AggregatedMessage::Binary(_))) => {
                            tracing::debug!("socket.io binary message refused");
                            break;
                        }
                        Some(Ok(AggregatedMessage::Pong(_))) => {}
                        Some(Ok(AggregatedMessage::Close(_))) | Some(Err(_)) | None => break,
                    },
                    _ = handle.outbox.ready(), if writing => {
                        for packet in handle.outbox.take(usize::MAX) {
                            match tokio::time::timeout(write_timeout, out.text(packet)).await {
                                Ok(Ok(())) => {}
                                _ => { handle.close(); break; }
                            }
                        }
                        if handle.is_closed() { break; }
                    }
                    _ = handle.closing.notified() => break,
                }
            }
            if handle.carrier() != Carrier::WebSocket {
                // The upgrade failed (a proxy dropped the WebSocket): the
                // session goes on polling, its packets untouched.
                handle.set_carrier(Carrier::Polling);
                let _ = tokio::time::timeout(write_timeout, out.close(None)).await;
                return;
            }
            handle.close();
            // What the session said last (its close packet) goes out first,
            // unless the peer takes nothing any more.
            let _ = tokio::time::timeout(write_timeout, async {
                for packet in handle.outbox.take(usize::MAX) {
                    if out.text(packet).await.is_err() {
                        break;
                    }
                }
                let _ = out.close(None).await;
            })
            .await;
        }
        .instrument(span)
    })
}

/// Closes a session whose WebSocket never started (its 101 could not be
/// written), instead of leaving it to the ping timeout.
struct CloseUnlessRun(Option<Arc<Handle>>);

impl CloseUnlessRun {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CloseUnlessRun {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            handle.close();
        }
    }
}
