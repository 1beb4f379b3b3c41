//! Contract B's couple endpoints and history, and contract C's room endpoints
//! (see docs/CONTRACTS.md): thin aliases onto the same use cases.

use actix_web::{HttpResponse, web};
use ieum_domain::message::HistoryQuery;
use ieum_domain::room::Visibility;
use ieum_domain::rooms::{CreateRoom, Entry};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::http::errors::ApiError;
use crate::http::extract::Authenticated;
use crate::http::rooms::{JoinBody, join_room};
use crate::wire::{contract_b_message, contract_c_message, contract_c_room, local_time};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/couples/invite", web::post().to(couple_invite))
        .route("/api/couples/join", web::post().to(couple_join))
        .route("/api/couples/me", web::delete().to(couple_unpair))
        .route("/chat/room", web::get().to(couple_room))
        .route(
            "/chat/rooms/{room_id}/messages",
            web::get().to(couple_history),
        )
        .route("/api/chatrooms/new", web::post().to(c_create))
        .route("/api/chatrooms/join/{room_id}", web::put().to(c_join))
        .route("/api/chatrooms/leave/{room_id}", web::delete().to(c_leave))
        .route(
            "/api/chatrooms/message/{room_id}/{msg_id}/{count}",
            web::get().to(c_messages),
        );
}

async fn couple_invite(
    state: web::Data<AppState>,
    who: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let (code, expires) = state.couples.invite(&who.0).await?;
    Ok(HttpResponse::Created().json(json!({ "code": code, "expiresAt": local_time(&expires) })))
}

#[derive(Deserialize)]
struct CodeBody {
    code: String,
}

async fn couple_join(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    who: Authenticated,
    body: web::Json<CodeBody>,
) -> Result<HttpResponse, ApiError> {
    let client = crate::http::extract::client_address(&req);
    let (couple, partner) = state.couples.join(&who.0, &body.code, &client).await?;
    Ok(HttpResponse::Ok().json(json!({ "coupleId": couple.id, "partnerId": partner })))
}

/// Ends the caller's couple, for both partners (see `CoupleService::unpair`).
async fn couple_unpair(
    state: web::Data<AppState>,
    who: Authenticated,
) -> Result<HttpResponse, ApiError> {
    state.couples.unpair(&who.0).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn couple_room(
    state: web::Data<AppState>,
    who: Authenticated,
) -> Result<HttpResponse, ApiError> {
    match state.couples.mine(&who.0).await? {
        Some((couple, partner)) => Ok(HttpResponse::Ok().json(json!({
            "coupleId": couple.id,
            "partner": {
                "id": partner.id,
                "username": partner.username,
                "name": partner.display_name,
                "displayName": partner.display_name,
                "profileImage": partner.profile_image_url,
                "statusMessage": partner.status_message,
            },
        }))),
        None => Err(ieum_domain::error::named::not_paired().into()),
    }
}

#[derive(Deserialize)]
struct CursorParams {
    /// Messages older than this seq (exclusive); newest page without it.
    cursor: Option<i64>,
    size: Option<u32>,
}

/// Newest first: `{"messages":[...],"nextCursor":seq|null,"hasNext":bool}`.
async fn couple_history(
    state: web::Data<AppState>,
    who: Authenticated,
    room_id: web::Path<String>,
    params: web::Query<CursorParams>,
) -> Result<HttpResponse, ApiError> {
    let size = state.chat.policy().page(Some(params.size.unwrap_or(30)));
    let mut messages = state
        .chat
        .history(
            &who.0,
            &room_id,
            Entry::MembersOnly,
            HistoryQuery {
                before: params.cursor,
                after: None,
                limit: size,
                skip_system: true,
            },
        )
        .await?;
    messages.reverse();
    let next = messages
        .last()
        .map(|m| m.seq)
        .filter(|s| *s > 1 && messages.len() as u32 == size);
    let items: Vec<Value> = messages
        .iter()
        .map(|m| contract_b_message(m, &state.links))
        .collect();
    Ok(HttpResponse::Ok()
        .json(json!({ "messages": items, "nextCursor": next, "hasNext": next.is_some() })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CCreate {
    chat_type: Option<String>,
    chat_name: String,
    password: Option<String>,
    #[serde(default)]
    is_directed: bool,
}

/// `chatType` "private" (or `isDirected`) makes a private room; anything else public.
async fn c_create(
    state: web::Data<AppState>,
    who: Authenticated,
    body: web::Json<CCreate>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let private = b.is_directed
        || b.chat_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("private"));
    let room = state
        .rooms
        .create_group(
            &who.0,
            CreateRoom {
                name: b.chat_name,
                visibility: Some(if private {
                    Visibility::Private
                } else {
                    Visibility::Public
                }),
                password: b.password.filter(|p| !p.is_empty()),
                ..Default::default()
            },
        )
        .await?;
    Ok(HttpResponse::Created().json(json!({ "chatSeq": room.id, "chatName": room.name })))
}

async fn c_join(
    state: web::Data<AppState>,
    who: Authenticated,
    room_id: web::Path<String>,
    body: Option<web::Json<JoinBody>>,
) -> Result<HttpResponse, ApiError> {
    let room = join_room(&state, &who, &room_id, body).await?;
    Ok(HttpResponse::Ok().json(contract_c_room(&room)))
}

async fn c_leave(
    state: web::Data<AppState>,
    who: Authenticated,
    room_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.rooms.leave(&who.0, &room_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The `count` messages before `msgId` (a seq), or the newest `count` for -1;
/// oldest first.
async fn c_messages(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<(String, i64, u32)>,
) -> Result<HttpResponse, ApiError> {
    let (room_id, msg_id, count) = path.into_inner();
    let messages = state
        .chat
        .history(
            &who.0,
            &room_id,
            Entry::MembersOnly,
            HistoryQuery {
                before: (msg_id >= 0).then_some(msg_id),
                after: None,
                limit: count,
                skip_system: true,
            },
        )
        .await?;
    let items: Vec<Value> = messages.iter().map(contract_c_message).collect();
    Ok(HttpResponse::Ok().json(items))
}
