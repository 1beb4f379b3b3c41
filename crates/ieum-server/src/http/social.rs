//! Profiles, friends, blocks and presence under `/api`.

use actix_web::{HttpResponse, web};
use ieum_domain::ports::ProfileUpdate;
use ieum_domain::user::User;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::app::AppState;
use crate::http::errors::ApiError;
use crate::http::extract::Authenticated;
use crate::links::attachment_in;
use crate::views::{MeJson, PresenceJson, UserJson, friend_state_name};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/me", web::patch().to(update_me))
        .route("/api/users", web::get().to(find_users))
        .route("/api/users/{id}", web::get().to(user))
        .route("/api/users/{id}/presence", web::get().to(presence))
        .route("/api/friends", web::get().to(friends))
        .route("/api/friends/requests", web::get().to(requests))
        .route("/api/friends/requests", web::post().to(request_by_username))
        .route("/api/friends/{id}", web::post().to(add_friend))
        .route("/api/friends/{id}", web::delete().to(remove_friend))
        .route("/api/blocks", web::get().to(blocks))
        .route("/api/blocks/{id}", web::put().to(block))
        .route("/api/blocks/{id}", web::delete().to(unblock));
}

fn users_json(users: &[User]) -> Vec<UserJson<'_>> {
    users.iter().map(UserJson::from).collect()
}

/// Absent fields are left alone; `null` clears a field.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ProfileBody {
    display_name: Option<String>,
    #[serde(default, with = "double_option")]
    profile_image_url: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    status_message: Option<Option<String>>,
    discoverable: Option<bool>,
    /// An image uploaded with purpose `profile_image`: it becomes the
    /// profile image (its link), and the one it replaces is deleted.
    profile_image_attachment_id: Option<uuid::Uuid>,
}

mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

async fn update_me(
    state: web::Data<AppState>,
    who: Authenticated,
    body: web::Json<ProfileBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let mut profile_image_url = b.profile_image_url;
    // The image a change of the profile image replaces is deleted after it.
    let before = match profile_image_url.is_some() || b.profile_image_attachment_id.is_some() {
        true => state.auth.me(&who.0).await?.profile_image_url,
        false => None,
    };
    let mut adopted = None;
    if let Some(id) = b.profile_image_attachment_id {
        adopted = Some((id, state.attachments.adopt(&who.0, id, None).await?));
        profile_image_url = Some(Some(state.links.file(id)));
    }
    let updated = state
        .social
        .update_profile(
            &who.0,
            ProfileUpdate {
                display_name: b.display_name,
                profile_image_url,
                status_message: b.status_message,
                discoverable: b.discoverable,
            },
        )
        .await;
    let user = match (updated, adopted) {
        (Ok(user), _) => user,
        (Err(error), Some((id, taken))) => {
            state.attachments.unadopt(id, taken).await?;
            return Err(error.into());
        }
        (Err(error), None) => return Err(error.into()),
    };
    if let Some(old) = before.as_deref().and_then(attachment_in)
        && Some(old) != adopted.map(|(id, _)| id)
    {
        state.attachments.discard_profile_image(&who.0, old).await?;
    }
    Ok(HttpResponse::Ok().json(MeJson::from(&user)))
}

#[derive(Deserialize)]
struct FindUsers {
    q: String,
    #[serde(default)]
    limit: u32,
}

/// People by username prefix (`SocialService::find_users`).
async fn find_users(
    state: web::Data<AppState>,
    who: Authenticated,
    query: web::Query<FindUsers>,
) -> Result<HttpResponse, ApiError> {
    let users = state
        .social
        .find_users(&who.0, &query.q, query.limit)
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "users": users_json(&users) })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsernameBody {
    username: String,
}

/// A friend request by username; answers who it went to and the state.
async fn request_by_username(
    state: web::Data<AppState>,
    who: Authenticated,
    body: web::Json<UsernameBody>,
) -> Result<HttpResponse, ApiError> {
    let (user, friend_state) = state
        .social
        .request_friend_by_username(&who.0, &body.username)
        .await?;
    Ok(HttpResponse::Ok().json(json!({
        "user": UserJson::from(&user),
        "state": friend_state_name(friend_state),
    })))
}

async fn user(
    state: web::Data<AppState>,
    _who: Authenticated,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let user = state.social.user(*id).await?;
    Ok(HttpResponse::Ok().json(UserJson::from(&user)))
}

async fn presence(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let presence = state.social.presence_of(&who.0, *id).await?;
    Ok(HttpResponse::Ok().json(PresenceJson::from(&presence)))
}

async fn friends(state: web::Data<AppState>, who: Authenticated) -> Result<HttpResponse, ApiError> {
    let friends = state.social.friends(&who.0).await?;
    Ok(HttpResponse::Ok().json(json!({ "friends": users_json(&friends) })))
}

async fn requests(
    state: web::Data<AppState>,
    who: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let incoming = state.social.incoming_requests(&who.0).await?;
    let outgoing = state.social.outgoing_requests(&who.0).await?;
    Ok(HttpResponse::Ok().json(json!({
        "incoming": users_json(&incoming),
        "outgoing": users_json(&outgoing),
    })))
}

/// Sends a request, or accepts the other's pending request.
async fn add_friend(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let friend_state = state.social.request_friend(&who.0, *id).await?;
    Ok(HttpResponse::Ok().json(json!({ "state": friend_state_name(friend_state) })))
}

async fn remove_friend(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    state.social.remove_friend(&who.0, *id).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn blocks(state: web::Data<AppState>, who: Authenticated) -> Result<HttpResponse, ApiError> {
    let blocked = state.social.blocks(&who.0).await?;
    Ok(HttpResponse::Ok().json(json!({ "blocked": users_json(&blocked) })))
}

async fn block(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    state.social.block(&who.0, *id).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn unblock(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    state.social.unblock(&who.0, *id).await?;
    Ok(HttpResponse::NoContent().finish())
}
