//! Uploads and attachments: `POST /api/uploads` begins one (a presigned PUT),
//! `POST /api/uploads/{id}/complete` checks the bytes, `GET
//! /api/attachments/{id}` answers the attachment with fresh presigned GETs.
//! The bytes themselves go to the object store (for the embedded store,
//! `crate::http::files`).

use actix_web::{HttpResponse, web};
use ieum_domain::attachment::{Attachment, AttachmentState, Rendition, ThumbnailSize};
use ieum_domain::attachments::UploadRequest;
use ieum_domain::auth::Principal;
use ieum_domain::error::DomainResult;
use serde::Deserialize;
use uuid::Uuid;

use crate::app::AppState;
use crate::http::errors::ApiError;
use crate::http::extract::Authenticated;
use crate::views::{AttachmentJson, AttachmentUrls, UploadJson};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/uploads", web::post().to(begin))
        .route("/api/uploads/{id}/complete", web::post().to(complete))
        .route("/api/attachments/{id}", web::get().to(get));
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BeginBody {
    room_id: String,
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
    let started = state
        .attachments
        .begin_upload(
            &who.0,
            &body.room_id,
            UploadRequest {
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
    let urls = urls(&state, &who.0, &attachment).await?;
    Ok(HttpResponse::Ok().json(AttachmentJson::new(&attachment, urls)))
}

async fn get(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let attachment = state.attachments.get(&who.0, id.into_inner()).await?;
    let urls = urls(&state, &who.0, &attachment).await?;
    Ok(HttpResponse::Ok().json(AttachmentJson::new(&attachment, urls)))
}

/// Fresh presigned GETs while the attachment is clean; none otherwise.
async fn urls(
    state: &AppState,
    who: &Principal,
    attachment: &Attachment,
) -> DomainResult<AttachmentUrls> {
    if attachment.state != AttachmentState::Clean {
        return Ok(AttachmentUrls::default());
    }
    let download = |rendition| state.attachments.download(who, attachment.id, rendition);
    let file = match download(Rendition::File).await {
        Ok(request) => request.url,
        // Expired between the read and now: the view says so without URLs.
        Err(error) if error.code() == "expired" => return Ok(AttachmentUrls::default()),
        Err(error) => return Err(error),
    };
    let mut urls = AttachmentUrls {
        file: Some(file),
        ..AttachmentUrls::default()
    };
    if attachment.is_image() {
        urls.thumbnail_small = Some(
            download(Rendition::Thumbnail(ThumbnailSize::Small))
                .await?
                .url,
        );
        urls.thumbnail_large = Some(
            download(Rendition::Thumbnail(ThumbnailSize::Large))
                .await?
                .url,
        );
    }
    Ok(urls)
}
