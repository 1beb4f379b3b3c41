//! Uploads and attachments: `POST /api/uploads` begins one (a presigned PUT),
//! `POST /api/uploads/{id}/complete` checks the bytes, `GET
//! /api/attachments/{id}` answers the attachment with its stable links, and
//! `GET /media/{id}/{rendition}` turns a link into a fresh presigned GET.
//! The bytes themselves go to the object store (for the embedded store,
//! `crate::http::files`).

use actix_web::{HttpResponse, web};
use ieum_domain::DomainError;
use ieum_domain::attachment::{Attachment, AttachmentState, Purpose, ThumbnailSize};
use ieum_domain::attachments::UploadRequest;
use serde::Deserialize;
use uuid::Uuid;

use crate::app::AppState;
use crate::http::errors::ApiError;
use crate::http::extract::Authenticated;
use crate::views::{AttachmentJson, AttachmentUrls, UploadJson};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/uploads", web::post().to(begin))
        .route("/api/uploads/{id}/complete", web::post().to(complete))
        .route("/api/attachments/{id}", web::get().to(get))
        .route("/media/{id}/{rendition}", web::get().to(media));
}

#[derive(Deserialize)]
struct MediaQuery {
    #[serde(default)]
    sig: String,
}

/// A stable file link ([`crate::links`]): a `302` to a fresh presigned GET
/// while the file may be served; `410 expired` after its expiry, `409
/// not_clean` while it is scanned or once it was found infected, `404` for
/// a link this server did not sign. The redirect may be cached briefly.
async fn media(
    state: web::Data<AppState>,
    path: web::Path<(Uuid, String)>,
    query: web::Query<MediaQuery>,
) -> Result<HttpResponse, ApiError> {
    let (id, rendition) = path.into_inner();
    let Some(rendition) = state.links.verify(id, &rendition, &query.sig) else {
        return Err(ieum_domain::error::named::attachment_not_found().into());
    };
    let download = state.attachments.download_linked(id, rendition).await?;
    let lifetime = (download.expires_at - chrono::Utc::now()).num_seconds();
    Ok(HttpResponse::Found()
        .insert_header((actix_web::http::header::LOCATION, download.url))
        .insert_header((
            actix_web::http::header::CACHE_CONTROL,
            format!("private, max-age={}", (lifetime / 2).clamp(0, 300)),
        ))
        .finish())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BeginBody {
    /// Left out for a profile image.
    room_id: Option<String>,
    /// `message` (default), `profile_image` or `room_image`.
    purpose: Option<String>,
    file_name: String,
    content_type: String,
    size: u64,
}

async fn begin(
    state: web::Data<AppState>,
    who: Authenticated,
    body: web::Json<BeginBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let purpose = match body.purpose.as_deref() {
        None => Purpose::Message,
        Some(name) => Purpose::parse(name).ok_or_else(|| {
            DomainError::invalid(
                "invalid_purpose",
                "purpose is message, profile_image or room_image",
            )
        })?,
    };
    let started = state
        .attachments
        .begin_upload(
            &who.0,
            body.room_id.as_deref(),
            UploadRequest {
                purpose,
                file_name: body.file_name,
                declared_type: body.content_type,
                size: body.size,
            },
        )
        .await?;
    Ok(HttpResponse::Created().json(UploadJson::from(&started)))
}

async fn complete(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let attachment = state.attachments.complete(&who.0, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(AttachmentJson::new(&attachment, urls(&state, &attachment))))
}

async fn get(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let attachment = state.attachments.get(&who.0, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(AttachmentJson::new(&attachment, urls(&state, &attachment))))
}

/// The stable links while the attachment may be served; none otherwise.
/// An image's `imageUrl` (contract B sends it back in its IMAGE message)
/// is there from the upload on: it answers 409 until the scan ends.
fn urls(state: &AppState, attachment: &Attachment) -> AttachmentUrls {
    let links = &state.links;
    let image = attachment.is_image()
        && matches!(
            attachment.state,
            AttachmentState::Scanning | AttachmentState::Clean
        );
    let mut urls = AttachmentUrls {
        image: image.then(|| links.file(attachment.id)),
        ..AttachmentUrls::default()
    };
    if attachment.is_downloadable(chrono::Utc::now()) {
        urls.file = Some(links.file(attachment.id));
        if attachment.is_image() {
            urls.thumbnail_small = Some(links.thumbnail(attachment.id, ThumbnailSize::Small));
            urls.thumbnail_large = Some(links.thumbnail(attachment.id, ThumbnailSize::Large));
        }
    }
    urls
}
