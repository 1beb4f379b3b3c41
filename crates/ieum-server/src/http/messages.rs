//! Message operations over HTTP: edit, delete, edit history, threads,
//! reactions, pins, search; and room settings, kicks and bans.

use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use ieum_domain::DomainError;
use ieum_domain::message::SearchQuery;
use ieum_domain::room::RoomSettings;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::app::AppState;
use crate::http::errors::ApiError;
use crate::http::extract::Authenticated;
use crate::views::{HistoryVisibilityName, MessageJson, PinPolicyName, ReactionJson, RoomJson};
use crate::wire::rfc3339;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/search/messages", web::get().to(search));
}

/// Mounted inside the `/api/rooms` scope.
pub fn room_routes(scope: actix_web::Scope) -> actix_web::Scope {
    scope
        .route("/{id}", web::patch().to(update_room))
        .route("/{id}/members/{user_id}/kick", web::post().to(kick))
        .route("/{id}/members/{user_id}/ban", web::post().to(ban))
        .route("/{id}/members/{user_id}/unban", web::post().to(unban))
        .route("/{id}/members/{user_id}/mute", web::put().to(mute_member))
        .route(
            "/{id}/members/{user_id}/mute",
            web::delete().to(unmute_member),
        )
        .route("/{id}/messages/{msg}", web::patch().to(edit))
        .route("/{id}/messages/{msg}", web::delete().to(delete))
        .route("/{id}/messages/{msg}/edits", web::get().to(edits))
        .route("/{id}/messages/{msg}/thread", web::get().to(thread))
        .route("/{id}/messages/{msg}/reactions", web::get().to(reactions))
        .route(
            "/{id}/messages/{msg}/reactions/{emoji}",
            web::put().to(react),
        )
        .route(
            "/{id}/messages/{msg}/reactions/{emoji}",
            web::delete().to(react),
        )
        .route("/{id}/pins", web::get().to(pins))
        .route("/{id}/pins/{msg}", web::put().to(pin))
        .route("/{id}/pins/{msg}", web::delete().to(pin))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SettingsBody {
    name: Option<String>,
    #[serde(default, with = "double_option")]
    description: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    image_url: Option<Option<String>>,
    history_visibility: Option<HistoryVisibilityName>,
    pin_policy: Option<PinPolicyName>,
    /// An image uploaded into this room with purpose `room_image`: it
    /// becomes the room's image (its link), and the one it replaces is deleted.
    image_attachment_id: Option<Uuid>,
}

mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

async fn update_room(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
    body: web::Json<SettingsBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let mut image_url = b.image_url;
    // The image a change of the room's image replaces is deleted after it.
    let before = match image_url.is_some() || b.image_attachment_id.is_some() {
        true => state.rooms.get(&who.0, &id).await?.image_url,
        false => None,
    };
    let mut adopted = None;
    if let Some(attachment) = b.image_attachment_id {
        let taken = state
            .attachments
            .adopt(&who.0, attachment, Some(&id))
            .await?;
        adopted = Some((attachment, taken));
        image_url = Some(Some(state.links.file(attachment)));
    }
    let updated = state
        .rooms
        .update_settings(
            &who.0,
            &id,
            RoomSettings {
                name: b.name,
                description: b.description,
                image_url,
                history_visibility: b.history_visibility.map(Into::into),
                pin_policy: b.pin_policy.map(Into::into),
            },
        )
        .await;
    let room = match (updated, adopted) {
        (Ok(room), _) => room,
        // Not allowed to change the room: the image goes back to unused.
        (Err(error), Some((attachment, taken))) => {
            state.attachments.unadopt(attachment, taken).await?;
            return Err(error.into());
        }
        (Err(error), None) => return Err(error.into()),
    };
    if let Some(old) = before.as_deref().and_then(crate::links::attachment_in)
        && Some(old) != adopted.map(|(attachment, _)| attachment)
    {
        state.attachments.discard_room_image(&id, old).await?;
    }
    Ok(HttpResponse::Ok().json(RoomJson::from(&room)))
}

async fn kick(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<(String, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (id, user) = path.into_inner();
    state.rooms.kick(&who.0, &id, user, false).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn ban(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<(String, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (id, user) = path.into_inner();
    state.rooms.kick(&who.0, &id, user, true).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn unban(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<(String, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (id, user) = path.into_inner();
    state.rooms.unban(&who.0, &id, user).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MuteBody {
    /// RFC 3339, in the future.
    until: chrono::DateTime<chrono::Utc>,
}

/// A room admin mutes a member until `until`: they read, not send.
async fn mute_member(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<(String, Uuid)>,
    body: web::Json<MuteBody>,
) -> Result<HttpResponse, ApiError> {
    let (id, user) = path.into_inner();
    state
        .rooms
        .mute(&who.0, &id, user, Some(body.until))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn unmute_member(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<(String, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (id, user) = path.into_inner();
    state.rooms.mute(&who.0, &id, user, None).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
struct EditBody {
    content: String,
}

async fn edit(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<(String, Uuid)>,
    body: web::Json<EditBody>,
) -> Result<HttpResponse, ApiError> {
    let (id, msg) = path.into_inner();
    let message = state
        .chat
        .edit(&who.0, &id, msg, body.into_inner().content)
        .await?;
    Ok(HttpResponse::Ok().json(MessageJson::new(&message, &state.links)))
}

async fn delete(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<(String, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (id, msg) = path.into_inner();
    state.chat.delete(&who.0, &id, msg).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn edits(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<(String, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (id, msg) = path.into_inner();
    let edits = state.chat.edit_history(&who.0, &id, msg).await?;
    let items: Vec<_> = edits
        .iter()
        .map(|(c, at)| json!({ "content": c, "replacedAt": rfc3339(at) }))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "edits": items })))
}

#[derive(Deserialize)]
struct ThreadParams {
    after: Option<i64>,
    limit: Option<u32>,
}

async fn thread(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<(String, Uuid)>,
    q: web::Query<ThreadParams>,
) -> Result<HttpResponse, ApiError> {
    let (id, msg) = path.into_inner();
    let (parent, replies) = state
        .chat
        .thread(&who.0, &id, msg, q.after, q.limit)
        .await?;
    let replies: Vec<_> = replies
        .iter()
        .map(|m| MessageJson::new(m, &state.links))
        .collect();
    let parent = MessageJson::new(&parent, &state.links);
    Ok(HttpResponse::Ok().json(json!({ "parent": parent, "replies": replies })))
}

async fn reactions(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<(String, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (id, msg) = path.into_inner();
    let reactions = state.chat.reactions(&who.0, &id, msg).await?;
    let items: Vec<_> = reactions.iter().map(ReactionJson::from).collect();
    Ok(HttpResponse::Ok().json(json!({ "reactions": items })))
}

/// PUT adds the reaction, DELETE removes it.
async fn react(
    state: web::Data<AppState>,
    who: Authenticated,
    req: HttpRequest,
    path: web::Path<(String, Uuid, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, msg, emoji) = path.into_inner();
    let on = req.method() == Method::PUT;
    state.chat.react(&who.0, &id, msg, &emoji, on).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn sender_of(
    state: &AppState,
    who: &Authenticated,
) -> Result<ieum_domain::chat::Sender, ApiError> {
    let user = state.auth.me(&who.0).await?;
    Ok(ieum_domain::chat::Sender::from(&user))
}

/// PUT pins, DELETE unpins.
async fn pin(
    state: web::Data<AppState>,
    who: Authenticated,
    req: HttpRequest,
    path: web::Path<(String, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (id, msg) = path.into_inner();
    let sender = sender_of(&state, &who).await?;
    let on = req.method() == Method::PUT;
    state.chat.pin(&sender, &id, msg, on).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn pins(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let pins = state.chat.pins(&who.0, &id).await?;
    let items: Vec<_> = pins
        .iter()
        .map(|(message, by, at)| {
            json!({ "message": MessageJson::new(message, &state.links), "pinnedBy": by, "pinnedAt": rfc3339(at) })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "pins": items })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SearchParams {
    q: String,
    room_id: Option<String>,
    sender_id: Option<Uuid>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    /// `nextCursor` of the previous page.
    cursor: Option<String>,
    limit: Option<u32>,
}

fn parse_cursor(c: &str) -> Result<(DateTime<Utc>, Uuid), DomainError> {
    let bad = || {
        DomainError::invalid(
            "invalid_cursor",
            "cursor must be a nextCursor from a previous page",
        )
    };
    let (at, id) = c.split_once('_').ok_or_else(bad)?;
    Ok((
        DateTime::parse_from_rfc3339(at)
            .map_err(|_| bad())?
            .with_timezone(&Utc),
        id.parse().map_err(|_| bad())?,
    ))
}

/// `{"messages":[...newest first],"nextCursor":...|null}`.
async fn search(
    state: web::Data<AppState>,
    who: Authenticated,
    q: web::Query<SearchParams>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let limit = state.chat.policy().page(Some(q.limit.unwrap_or(20)));
    let before = q.cursor.as_deref().map(parse_cursor).transpose()?;
    let found = state
        .chat
        .search(SearchQuery {
            user_id: who.0.user_id,
            text: q.q,
            room_id: q.room_id,
            sender_id: q.sender_id,
            from: q.from,
            to: q.to,
            before,
            limit,
            now: Utc::now(),
        })
        .await?;
    let next = (found.len() as u32 == limit)
        .then(|| found.last())
        .flatten()
        .map(|m| {
            format!(
                "{}_{}",
                m.created_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                m.id
            )
        });
    let messages: Vec<_> = found
        .iter()
        .map(|m| MessageJson::new(m, &state.links))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "messages": messages, "nextCursor": next })))
}
