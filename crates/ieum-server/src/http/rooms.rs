//! Native room endpoints under `/api/rooms`.

use actix_web::{HttpResponse, web};
use ieum_domain::room::Room;
use ieum_domain::rooms::{CreateRoom, Entry, JoinRequest};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::app::AppState;
use crate::http::errors::ApiError;
use crate::http::extract::Authenticated;
use crate::views::{MemberJson, RoleName, RoomJson, RoomSummaryJson, VisibilityName};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::http::push::room_routes(
        crate::http::messages::room_routes(
            web::scope("/api/rooms")
                .route("", web::post().to(create))
                .route("", web::get().to(list))
                .route("/direct", web::post().to(direct))
                .route("/join", web::post().to(join_by_code))
                .route("/{id}", web::get().to(get))
                .route("/{id}/join", web::post().to(join))
                .route("/{id}/leave", web::post().to(leave))
                .route("/{id}/members", web::get().to(members))
                .route("/{id}/members/{user_id}/role", web::put().to(set_role))
                .route("/{id}/invite-code", web::post().to(rotate_code))
                .route("/{id}/invite-code", web::get().to(get_code))
                .route("/{id}/invite-code", web::delete().to(revoke_code))
                .route("/{id}/favorite", web::put().to(favorite))
                .route("/{id}/favorite", web::delete().to(unfavorite))
                .route("/{id}/read", web::post().to(read))
                .route(
                    "/{id}/messages",
                    web::get().to(crate::http::history::native_history),
                ),
        ),
    ));
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateBody {
    name: String,
    description: Option<String>,
    image_url: Option<String>,
    visibility: Option<VisibilityName>,
    password: Option<String>,
    member_limit: Option<u32>,
}

async fn create(
    state: web::Data<AppState>,
    who: Authenticated,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let room = state
        .rooms
        .create_group(
            &who.0,
            CreateRoom {
                id: None,
                name: b.name,
                description: b.description,
                image_url: b.image_url,
                visibility: b.visibility.map(Into::into),
                password: b.password,
                member_limit: b.member_limit,
            },
        )
        .await?;
    Ok(HttpResponse::Created().json(RoomJson::from(&room)))
}

async fn list(state: web::Data<AppState>, who: Authenticated) -> Result<HttpResponse, ApiError> {
    let rooms = state.rooms.my_rooms(&who.0).await?;
    let items: Vec<_> = rooms.iter().map(RoomSummaryJson::from).collect();
    Ok(HttpResponse::Ok().json(json!({ "rooms": items })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DirectBody {
    user_id: Uuid,
}

async fn direct(
    state: web::Data<AppState>,
    who: Authenticated,
    body: web::Json<DirectBody>,
) -> Result<HttpResponse, ApiError> {
    let room = state.rooms.open_direct(&who.0, body.user_id).await?;
    Ok(HttpResponse::Ok().json(RoomJson::from(&room)))
}

async fn get(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let room = state.rooms.get(&who.0, &id).await?;
    Ok(HttpResponse::Ok().json(RoomJson::from(&room)))
}

/// Unknown fields (contract C's `chatSeq`) are ignored.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JoinBody {
    password: Option<String>,
    invite_code: Option<String>,
}

/// Joins under the room's rules; shared by the native and contract C routes.
pub(crate) async fn join_room(
    state: &AppState,
    who: &Authenticated,
    id: &str,
    body: Option<web::Json<JoinBody>>,
) -> Result<Room, ApiError> {
    let b = body.map(web::Json::into_inner).unwrap_or_default();
    let req = JoinRequest {
        password: b.password,
        invite_code: b.invite_code,
    };
    Ok(state.rooms.join(&who.0, id, req).await?)
}

async fn join(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
    body: Option<web::Json<JoinBody>>,
) -> Result<HttpResponse, ApiError> {
    let room = join_room(&state, &who, &id, body).await?;
    Ok(HttpResponse::Ok().json(RoomJson::from(&room)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CodeBody {
    invite_code: String,
}

async fn join_by_code(
    state: web::Data<AppState>,
    who: Authenticated,
    body: web::Json<CodeBody>,
) -> Result<HttpResponse, ApiError> {
    let room = state.rooms.join_by_code(&who.0, &body.invite_code).await?;
    Ok(HttpResponse::Ok().json(RoomJson::from(&room)))
}

async fn leave(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.rooms.leave(&who.0, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn members(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let members = state.rooms.members(&who.0, &id).await?;
    let items: Vec<_> = members.iter().map(MemberJson::from).collect();
    Ok(HttpResponse::Ok().json(json!({ "members": items })))
}

#[derive(Deserialize)]
struct RoleBody {
    role: RoleName,
}

async fn set_role(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<(String, Uuid)>,
    body: web::Json<RoleBody>,
) -> Result<HttpResponse, ApiError> {
    let (id, user) = path.into_inner();
    state
        .rooms
        .set_role(&who.0, &id, user, body.role.into())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn rotate_code(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let code = state.rooms.rotate_invite_code(&who.0, &id).await?;
    Ok(HttpResponse::Created().json(json!({ "inviteCode": code })))
}

async fn get_code(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let code = state.rooms.invite_code(&who.0, &id).await?;
    Ok(HttpResponse::Ok().json(json!({ "inviteCode": code })))
}

async fn revoke_code(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.rooms.revoke_invite_code(&who.0, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn favorite(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.rooms.set_favorite(&who.0, &id, true).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn unfavorite(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.rooms.set_favorite(&who.0, &id, false).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
struct ReadBody {
    seq: i64,
}

async fn read(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
    body: web::Json<ReadBody>,
) -> Result<HttpResponse, ApiError> {
    // The same use case as the STOMP read: the room (all the reader's devices
    // included) gets the READ event.
    let r = state
        .chat
        .mark_read(&who.0, &id, Entry::MembersOnly, Vec::new(), Some(body.seq))
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "lastReadSeq": r.last_read_seq })))
}
