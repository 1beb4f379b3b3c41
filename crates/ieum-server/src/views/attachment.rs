//! Attachments and the presigned requests of an upload.

use chrono::{DateTime, Utc};
use ieum_domain::attachment::{Attachment, PresignedRequest};
use ieum_domain::attachments::UploadStarted;
use serde::Serialize;
use std::collections::BTreeMap;
use uuid::Uuid;

/// `POST /api/uploads`: where and how to send the bytes.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UploadJson<'a> {
    upload_id: Uuid,
    upload_url: &'a str,
    method: &'static str,
    /// Headers to send as they are: the URL's signature binds them.
    headers: BTreeMap<&'a str, &'a str>,
    expires_at: DateTime<Utc>,
}

impl<'a> From<&'a UploadStarted> for UploadJson<'a> {
    fn from(started: &'a UploadStarted) -> Self {
        let upload: &PresignedRequest = &started.upload;
        Self {
            upload_id: started.attachment_id,
            upload_url: &upload.url,
            method: upload.method.as_str(),
            headers: upload
                .headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str()))
                .collect(),
            expires_at: upload.expires_at,
        }
    }
}

/// An attachment (`POST /api/uploads/{id}/complete`, `GET /api/attachments/{id}`).
/// The URLs are stable links (`crate::links`), present only while the file
/// may be served; `imageUrl` is an image's link from the upload on.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AttachmentJson<'a> {
    id: Uuid,
    room_id: &'a str,
    file_name: &'a str,
    state: &'static str,
    scan: &'static str,
    size: u64,
    /// Detected from the bytes once complete; the declared type before.
    content_type: &'a str,
    width: Option<u32>,
    height: Option<u32>,
    sha256: Option<&'a str>,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    /// The 320-pixel thumbnail (JPEG).
    #[serde(skip_serializing_if = "Option::is_none")]
    thumbnail_url: Option<String>,
    /// The 1280-pixel thumbnail (JPEG).
    #[serde(skip_serializing_if = "Option::is_none")]
    thumbnail_large_url: Option<String>,
    /// An image's link, for contract B's IMAGE message.
    #[serde(skip_serializing_if = "Option::is_none")]
    image_url: Option<String>,
}

/// The links an attachment view carries.
#[derive(Default)]
pub(crate) struct AttachmentUrls {
    pub image: Option<String>,
    pub file: Option<String>,
    pub thumbnail_small: Option<String>,
    pub thumbnail_large: Option<String>,
}

impl<'a> AttachmentJson<'a> {
    pub(crate) fn new(attachment: &'a Attachment, urls: AttachmentUrls) -> Self {
        Self {
            id: attachment.id,
            room_id: &attachment.room_id,
            file_name: &attachment.file_name,
            state: attachment.state.as_str(),
            scan: attachment.scan_status().as_str(),
            size: attachment.size,
            content_type: attachment
                .detected_type
                .map_or(attachment.declared_type.as_str(), |detected| {
                    detected.mime()
                }),
            width: attachment.width,
            height: attachment.height,
            sha256: attachment.sha256.as_deref(),
            created_at: attachment.created_at,
            expires_at: attachment.expires_at,
            url: urls.file,
            thumbnail_url: urls.thumbnail_small,
            thumbnail_large_url: urls.thumbnail_large,
            image_url: urls.image,
        }
    }
}
