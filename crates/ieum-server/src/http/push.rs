//! Push registrations and the member's say over them: `/api/devices`,
//! `/api/me/push` (previews, mentions in muted rooms) and
//! `/api/rooms/{id}/mute`.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use ieum_domain::DomainError;
use ieum_domain::push::{Device, DeviceRegistration, Mute, Platform, PrefsUpdate, PushPrefs};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::app::AppState;
use crate::http::errors::ApiError;
use crate::http::extract::{Admitted, Authenticated};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/devices", web::post().to(register))
        .route("/api/devices", web::get().to(devices))
        .route("/api/devices/{id}", web::delete().to(remove))
        .route("/api/me/push", web::get().to(prefs))
        .route("/api/me/push", web::patch().to(update_prefs));
}

/// Mounted inside the `/api/rooms` scope.
pub fn room_routes(scope: actix_web::Scope) -> actix_web::Scope {
    scope
        .route("/{id}/mute", web::get().to(mute_of))
        .route("/{id}/mute", web::put().to(mute))
        .route("/{id}/mute", web::delete().to(unmute))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DeviceBody {
    platform: String,
    token: String,
    app_version: Option<String>,
    locale: Option<String>,
    /// The app draws its own notifications (the couple app): data only.
    #[serde(default)]
    data_only: bool,
}

/// A device as its owner sees it; the token is not echoed.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeviceJson<'a> {
    id: Uuid,
    platform: &'static str,
    app_version: Option<&'a str>,
    locale: Option<&'a str>,
    data_only: bool,
    created_at: DateTime<Utc>,
}

impl<'a> From<&'a Device> for DeviceJson<'a> {
    fn from(d: &'a Device) -> Self {
        Self {
            id: d.id,
            platform: d.platform.as_str(),
            app_version: d.app_version.as_deref(),
            locale: d.locale.as_deref(),
            data_only: d.data_only,
            created_at: d.created_at,
        }
    }
}

async fn register(
    state: web::Data<AppState>,
    who: Admitted,
    body: web::Json<DeviceBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let platform = Platform::parse(&body.platform).ok_or_else(|| {
        DomainError::invalid("invalid_platform", "platform must be android, ios or web")
    })?;
    let device = state
        .push
        .register_device(
            &who.0,
            DeviceRegistration {
                platform,
                token: body.token,
                app_version: body.app_version,
                locale: body.locale,
                data_only: body.data_only,
            },
        )
        .await?;
    Ok(HttpResponse::Created().json(DeviceJson::from(&device)))
}

async fn devices(state: web::Data<AppState>, who: Authenticated) -> Result<HttpResponse, ApiError> {
    let devices = state.push.devices(&who.0).await?;
    let views: Vec<DeviceJson<'_>> = devices.iter().map(DeviceJson::from).collect();
    Ok(HttpResponse::Ok().json(views))
}

async fn remove(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    state.push.remove_device(&who.0, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PrefsJson {
    previews: bool,
    mentions_when_muted: bool,
}

impl From<PushPrefs> for PrefsJson {
    fn from(p: PushPrefs) -> Self {
        Self {
            previews: p.previews,
            mentions_when_muted: p.mentions_when_muted,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PrefsBody {
    previews: Option<bool>,
    mentions_when_muted: Option<bool>,
}

async fn prefs(state: web::Data<AppState>, who: Authenticated) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(PrefsJson::from(state.push.prefs(&who.0).await?)))
}

async fn update_prefs(
    state: web::Data<AppState>,
    who: Authenticated,
    body: web::Json<PrefsBody>,
) -> Result<HttpResponse, ApiError> {
    let update = PrefsUpdate {
        previews: body.previews,
        mentions_when_muted: body.mentions_when_muted,
    };
    Ok(HttpResponse::Ok().json(PrefsJson::from(
        state.push.update_prefs(&who.0, update).await?,
    )))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MuteJson<'a> {
    room_id: &'a str,
    muted: bool,
    /// `null` while muted: until unmuted.
    until: Option<DateTime<Utc>>,
}

/// `{}` or `{"until": null}`: until unmuted.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MuteBody {
    until: Option<DateTime<Utc>>,
}

async fn mute_of(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let room_id = path.into_inner();
    let mute = state.push.mute_of(&who.0, &room_id).await?;
    Ok(HttpResponse::Ok().json(MuteJson {
        room_id: &room_id,
        muted: mute.is_some(),
        until: mute.and_then(|m| m.until),
    }))
}

async fn mute(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<String>,
    body: web::Json<MuteBody>,
) -> Result<HttpResponse, ApiError> {
    let room_id = path.into_inner();
    let mute = state
        .push
        .mute(&who.0, &room_id, Mute { until: body.until })
        .await?;
    Ok(HttpResponse::Ok().json(MuteJson {
        room_id: &room_id,
        muted: true,
        until: mute.until,
    }))
}

async fn unmute(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.push.unmute(&who.0, &path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}
