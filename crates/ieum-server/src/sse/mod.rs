//! `GET /api/events`: Server-Sent Events (docs/PROTOCOL.md, "Server-Sent
//! Events"), for the Spring + SSE backend's notification clients and any
//! EventSource. A fourth adapter over the session core: one room's events
//! with resume by seq (`id:` is the seq, `Last-Event-ID` or `lastEventId`
//! resumes), or, without `roomId`, the events of all the user's rooms.
//!
//! EventSource sends no headers, so it authenticates with a ticket from
//! `POST /api/events/ticket` (`ticket.rs`): short-lived, good once. SSE has
//! no way to ask the client whether it read an event, so what it delivers
//! proves nothing for pushes.

pub mod ticket;

use std::time::Duration;

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use chrono::Utc;
use ieum_domain::DomainError;
use ieum_domain::auth::{Grant, Principal};
use ieum_domain::hub::{MailboxReceiver, RoomEvent};
use ieum_domain::rooms::Entry;
use ieum_domain::session::Session;
use ieum_domain::throttle::RateLimit;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::Instrument;

use crate::app::AppState;
use crate::http::errors::ApiError;
use crate::http::extract::Admitted;
use crate::wire::{SHAPE_NATIVE, event_body, event_name};
use ticket::{TICKET_SECS, Ticket, TicketError};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/events/ticket", web::post().to(issue))
        .route("/api/events", web::get().to(stream));
}

/// A comment line this often keeps proxies and NATs from closing the stream.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// Chunks queued for a client's socket before the stream counts as stalled.
const QUEUED_CHUNKS: usize = 256;
/// What EventSource waits before reconnecting (the `retry:` field).
const RETRY_MS: u64 = 3000;

async fn issue(state: web::Data<AppState>, who: Admitted) -> HttpResponse {
    let ticket = Ticket {
        user_id: who.0.principal.user_id,
        family_id: who.0.family_id,
        expires_at: Utc::now().timestamp() + TICKET_SECS,
        nonce: uuid::Uuid::new_v4(),
    };
    HttpResponse::Created()
        .insert_header(("cache-control", "no-store"))
        .json(json!({"ticket": state.tickets.issue(&ticket), "expiresIn": TICKET_SECS}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StreamQuery {
    ticket: Option<String>,
    room_id: Option<String>,
    last_event_id: Option<String>,
}

fn refused(e: DomainError) -> HttpResponse {
    ApiError(e).error_response()
}

/// The ticket's grant, used once.
async fn redeem(state: &AppState, text: Option<&str>) -> Result<Grant, DomainError> {
    let Some(text) = text else {
        return Err(DomainError::unauthenticated(
            "missing_ticket",
            "get one with POST /api/events/ticket and pass it as ?ticket=",
        ));
    };
    let ticket = state
        .tickets
        .check(text, Utc::now().timestamp())
        .map_err(|e| match e {
            TicketError::Invalid => DomainError::unauthenticated(
                "ticket_invalid",
                "the ticket is not one of this server's",
            ),
            TicketError::Expired => {
                DomainError::unauthenticated("ticket_expired", "the ticket expired; get a new one")
            }
        })?;
    let once = RateLimit::new(
        "sse ticket",
        "ticket_used",
        1,
        chrono::Duration::seconds(TICKET_SECS * 2),
    );
    state
        .limiter
        .reserve(&once, &ticket.nonce.to_string())
        .await
        .map_err(|e| match e {
            DomainError::RateLimited { .. } => {
                DomainError::unauthenticated("ticket_used", "a ticket is good once; get a new one")
            }
            other => other,
        })?;
    let user = state
        .auth
        .me(&Principal {
            user_id: ticket.user_id,
            username: String::new(),
        })
        .await?;
    let grant = Grant {
        principal: Principal {
            user_id: user.id,
            username: user.username,
        },
        // The stream lives as long as an access token would.
        expires_at: Utc::now()
            + chrono::Duration::seconds(state.config.access_token_ttl_secs as i64),
        family_id: ticket.family_id,
    };
    state.auth.check_live(&grant).await?;
    Ok(grant)
}

async fn stream(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<StreamQuery>,
) -> HttpResponse {
    let grant = match redeem(&state, query.ticket.as_deref()).await {
        Ok(grant) => grant,
        Err(e) => return refused(e),
    };
    let last = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| query.last_event_id.clone());
    let resume_after = match last.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(text) => match text.parse::<i64>() {
            Ok(seq) if seq >= 0 => Some(seq),
            _ => {
                return refused(DomainError::invalid(
                    "invalid_last_event_id",
                    "Last-Event-ID must be a seq this stream sent",
                ));
            }
        },
    };
    if resume_after.is_some() && query.room_id.is_none() {
        return refused(DomainError::invalid(
            "invalid_last_event_id",
            "resume needs roomId: the stream of all rooms has no event ids",
        ));
    }
    let Some(slot) = state
        .ws_connections
        .try_open(state.config.ws_max_connections)
    else {
        return crate::ws::too_many_connections(&state.config);
    };
    let (mut session, inbox) = state.open_session(crate::app::Proofs::None, "sse");
    if let Err(e) = session.authenticate(None, Some(grant)).await {
        return refused(e);
    }
    let (tx, rx) = mpsc::channel::<Bytes>(QUEUED_CHUNKS);
    let mut opening = format!("retry: {RETRY_MS}\n\n");
    let room = query.room_id.clone();
    match &room {
        Some(room_id) => {
            let subscribed = match session
                .subscribe_room(
                    "sse",
                    room_id,
                    Entry::MembersOnly,
                    SHAPE_NATIVE,
                    resume_after,
                )
                .await
            {
                Ok(s) => s,
                Err(e) => {
                    session.close().await;
                    return refused(e);
                }
            };
            opening.push_str(&frame(
                None,
                "subscribed",
                &json!({"roomId": room_id, "lastSeq": subscribed.live_after}).to_string(),
            ));
            let _ = tx.try_send(Bytes::from(opening));
            let writer = Writer {
                state: state.get_ref().clone(),
                tx: tx.clone(),
            };
            let replay = (
                subscribed.resume_after,
                subscribed.live_after,
                subscribed.truncated,
            );
            let span = tracing::info_span!("sse", room = %room_id);
            actix_web::rt::spawn(
                async move {
                    writer
                        .run(session, inbox, Some((room_id_owned(&room), replay)))
                        .await;
                    drop(slot);
                }
                .instrument(span),
            );
        }
        None => {
            let rooms = match session.subscribe_events("sse", SHAPE_NATIVE).await {
                Ok(rooms) => rooms,
                Err(e) => {
                    session.close().await;
                    return refused(e);
                }
            };
            let list: Vec<_> = rooms
                .iter()
                .map(crate::views::RoomSummaryJson::from)
                .collect();
            let list = serde_json::to_string(&list).unwrap_or_else(|_| "[]".to_owned());
            opening.push_str(&frame(None, "rooms", &list));
            let _ = tx.try_send(Bytes::from(opening));
            let writer = Writer {
                state: state.get_ref().clone(),
                tx: tx.clone(),
            };
            let span = tracing::info_span!("sse", room = "*");
            actix_web::rt::spawn(
                async move {
                    writer.run(session, inbox, None).await;
                    drop(slot);
                }
                .instrument(span),
            );
        }
    }
    drop(tx);
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, actix_web::Error>(chunk), rx))
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-store"))
        // nginx passes the stream through as it comes.
        .insert_header(("x-accel-buffering", "no"))
        .streaming(body)
}

fn room_id_owned(room: &Option<String>) -> String {
    room.clone().unwrap_or_default()
}

/// One SSE event: `id:` (a message's seq), `event:`, one `data:` line (JSON
/// holds no raw newline).
fn frame(id: Option<i64>, event: &str, data: &str) -> String {
    let mut text = String::with_capacity(data.len() + 48);
    if let Some(id) = id {
        text.push_str("id: ");
        text.push_str(&id.to_string());
        text.push('\n');
    }
    text.push_str("event: ");
    text.push_str(event);
    text.push_str("\ndata: ");
    text.push_str(data);
    text.push_str("\n\n");
    text
}

struct Writer {
    state: AppState,
    tx: mpsc::Sender<Bytes>,
}

type Replay = (String, (Option<i64>, i64, bool));

impl Writer {
    /// Sends a chunk; false when the client is gone or stalled (a full queue
    /// for longer than the write timeout).
    async fn send(&self, text: String) -> bool {
        let limit = Duration::from_millis(self.state.config.ws_write_timeout_ms);
        matches!(
            tokio::time::timeout(limit, self.tx.send(Bytes::from(text))).await,
            Ok(Ok(()))
        )
    }

    async fn event(&self, event: &RoomEvent, with_ids: bool) -> bool {
        let links = &self.state.links;
        let body = event.wire(SHAPE_NATIVE as usize, |e| {
            event_body(SHAPE_NATIVE, e, links)
        });
        if body.is_empty() {
            return true;
        }
        let id = match &event.payload {
            ieum_domain::hub::EventPayload::Message(m) if with_ids => Some(m.seq),
            _ => None,
        };
        self.send(frame(
            id,
            event_name(&event.payload),
            &String::from_utf8_lossy(&body),
        ))
        .await
    }

    async fn error(&self, code: &str, message: &str) {
        let _ = self
            .send(frame(
                None,
                "error",
                &json!({"code": code, "message": message}).to_string(),
            ))
            .await;
    }

    async fn run(self, mut session: Session, inbox: MailboxReceiver, replay: Option<Replay>) {
        let with_ids = replay.is_some();
        if let Some((room_id, (Some(mut after), live_after, truncated))) = replay {
            if truncated {
                self.error(
                    "resume_truncated",
                    "more were missed than a resume replays; page older ones with the history API",
                )
                .await;
            }
            while after < live_after {
                let page = match session.replay_page(&room_id, after, live_after).await {
                    Ok(page) => page,
                    Err(e) => {
                        self.error(e.code(), &e.public_message()).await;
                        session.close().await;
                        return;
                    }
                };
                let Some(last) = page.last().map(|m| m.seq) else {
                    break;
                };
                for message in page {
                    if !self.event(&RoomEvent::message(message), true).await {
                        session.close().await;
                        return;
                    }
                }
                after = last;
            }
        }
        let MailboxReceiver {
            rx: mut inbox,
            overflow,
        } = inbox;
        let mut draining = self.state.drain.subscribe();
        let overflowed = overflow.wait();
        let drained = draining.wait_for(|d| *d);
        tokio::pin!(overflowed, drained);
        let expires = session
            .expires_at()
            .map(|at| Instant::now() + (at - Utc::now()).to_std().unwrap_or_default());
        let expiry = tokio::time::sleep_until(
            expires.unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400)),
        );
        tokio::pin!(expiry);
        let mut beat = tokio::time::interval_at(Instant::now() + HEARTBEAT, HEARTBEAT);
        loop {
            let alive = tokio::select! {
                delivery = inbox.recv() => match delivery {
                    Some(delivery) => match session.on_delivery(delivery).await {
                        Some(out) => self.event(&out.delivery.event, with_ids).await,
                        None if session.ended().is_some() => {
                            if let Some((code, message)) = session.ended() {
                                self.error(code, message).await;
                            }
                            false
                        }
                        None => true,
                    },
                    None => false,
                },
                _ = beat.tick() => self.send(": keep-alive\n\n".to_owned()).await,
                _ = self.tx.closed() => false,
                _ = &mut overflowed => {
                    self.error("slow_consumer", "the stream fell too far behind; reconnect with Last-Event-ID").await;
                    false
                }
                _ = &mut drained => {
                    self.error("server_shutdown", "this server is going away; reconnect with Last-Event-ID").await;
                    false
                }
                _ = &mut expiry => {
                    self.error("token_expired", "the session's time is up; get a new ticket and reconnect").await;
                    false
                }
            };
            if !alive {
                break;
            }
        }
        session.close().await;
    }
}
