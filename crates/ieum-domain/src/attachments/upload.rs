//! Uploading: announce the file and get a presigned PUT, then complete it
//! once the bytes are in the store.

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::attachment::{
    Attachment, AttachmentState, ContentType, DeclaredType, Family, NewUpload, PresignedRequest,
    Purpose, THUMBNAIL_TYPE, ThumbnailSize, VerifiedUpload, personal_room, sniff,
};
use crate::auth::Principal;
use crate::error::{DomainError, DomainResult, ErrorKind, named};
use crate::ports::Fetched;

use super::AttachmentService;

/// What a client says it is about to upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRequest {
    pub file_name: String,
    /// The client's content type; the presigned PUT binds it (normalised).
    pub declared_type: String,
    /// Exact length in bytes; the presigned PUT binds it.
    pub size: u64,
    /// A message's file, a profile image (no room) or a room's image.
    pub purpose: Purpose,
}

/// An upload begun: where to send the bytes, then `complete` with the id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadStarted {
    pub attachment_id: Uuid,
    pub upload: PresignedRequest,
}

/// Quota frees only when files expire or are deleted, so a client should
/// not retry at once; an hour is a hint, not a promise.
const QUOTA_RETRY_AFTER_SECS: u64 = 3600;

impl AttachmentService {
    /// Announces an upload into a room `who` is an active member of: checks
    /// the name, the declared type and size against the policy, the upload
    /// rate and the quota, stores a `Pending` attachment and answers a
    /// presigned PUT bound to the declared length and type.
    ///
    /// The quota is checked, not reserved: parallel uploads may each pass
    /// and overshoot it by one file each, which the upload rate bounds.
    pub async fn begin_upload(
        &self,
        who: &Principal,
        room_id: Option<&str>,
        request: UploadRequest,
    ) -> DomainResult<UploadStarted> {
        let file_name = self.policy.check_file_name(&request.file_name)?;
        let declared = self
            .policy
            .check_declared(&request.declared_type, request.size)?;
        if request.purpose != Purpose::Message && declared.family != Some(Family::Image) {
            return Err(named::unsupported_type(
                "profile and room images must be images",
            ));
        }
        let room_id = match (request.purpose, room_id) {
            (Purpose::ProfileImage, None) => personal_room(who.user_id),
            (Purpose::ProfileImage, Some(_)) => {
                return Err(DomainError::invalid(
                    "invalid_room",
                    "a profile image belongs to no room: leave roomId out",
                ));
            }
            (_, None) => {
                return Err(DomainError::invalid("invalid_room", "roomId is needed"));
            }
            (_, Some(room_id)) => {
                self.rooms.require_member(who.user_id, room_id).await?;
                room_id.to_owned()
            }
        };
        self.limiter
            .reserve(&self.policy.upload_rate, &who.user_id.to_string())
            .await?;
        let used = self.attachments.bytes_used_by(who.user_id).await?;
        if used.saturating_add(request.size) > self.policy.quota_bytes {
            return Err(DomainError::RateLimited {
                code: "quota_exceeded",
                retry_after_secs: QUOTA_RETRY_AFTER_SECS,
            });
        }
        let attachment = Attachment::announced(
            NewUpload {
                owner: who.user_id,
                room_id,
                purpose: request.purpose,
                file_name,
                declared_type: declared.essence,
                size: request.size,
            },
            &self.policy,
            self.clock.now(),
        );
        self.attachments.insert(&attachment).await?;
        let upload = self
            .store
            .presign_put(
                &attachment.upload_key(),
                &attachment.declared_type,
                attachment.size,
                self.policy.upload_url_lifetime,
            )
            .await?;
        Ok(UploadStarted {
            attachment_id: attachment.id,
            upload,
        })
    }

    /// Checks the uploaded bytes: the declared size exactly, a type the
    /// policy allows and of the declared family (from the magic numbers), its
    /// family's size limit. Images get their copy without metadata and their
    /// thumbnails. Then the attachment is `Scanning` (or `Clean` with
    /// `scan: skipped` when no scanner is configured).
    ///
    /// Refused bytes are deleted and the attachment is `Failed`: nothing is
    /// kept. Bytes not there yet are `upload_missing` and the upload may be
    /// retried; a trouble of the store or the image processor leaves it
    /// `Pending` to complete again. Completing twice answers the attachment.
    pub async fn complete(&self, who: &Principal, id: Uuid) -> DomainResult<Attachment> {
        let mut attachment = self
            .attachments
            .find(id)
            .await?
            .filter(|attachment| attachment.owner == who.user_id)
            .ok_or_else(named::attachment_not_found)?;
        match attachment.state {
            AttachmentState::Pending => {}
            AttachmentState::Scanning | AttachmentState::Clean => return Ok(attachment),
            AttachmentState::Infected => return Err(named::not_clean("the file is infected")),
            AttachmentState::Failed => {
                return Err(named::not_clean("the upload was refused; start a new one"));
            }
            AttachmentState::Expired => return Err(named::expired()),
            AttachmentState::Deleted => return Err(named::attachment_not_found()),
        }
        if attachment.is_past_expiry(self.clock.now()) {
            return Err(named::expired());
        }
        let bytes = match self
            .store
            .get(&attachment.upload_key(), attachment.size)
            .await?
        {
            Fetched::Bytes(bytes) => bytes,
            Fetched::Missing => {
                return Err(DomainError::invalid(
                    "upload_missing",
                    "the file has not been uploaded yet",
                ));
            }
            Fetched::TooLarge { size } => {
                let refusal = named::too_large(format!(
                    "{size} bytes were uploaded, {} declared",
                    attachment.size
                ));
                return Err(self.refuse(attachment, refusal).await);
            }
        };
        let verified = match self.verify(&attachment, &bytes).await {
            Ok(verified) => verified,
            Err(refusal) if refusal.kind() == ErrorKind::Invalid => {
                return Err(self.refuse(attachment, refusal).await);
            }
            Err(trouble) => return Err(trouble),
        };
        attachment.verified(verified)?;
        if self.scanner.is_none() {
            attachment.scan_skipped()?;
        }
        if !self
            .attachments
            .set_state(&attachment, AttachmentState::Pending)
            .await?
        {
            // A parallel `complete` stored it first: answer what it stored.
            return self
                .attachments
                .find(id)
                .await?
                .ok_or_else(named::attachment_not_found);
        }
        // Only the verified copy stays: the upload URL may be used again
        // until it expires, and an image's upload may carry GPS.
        if let Err(error) = self.store.delete(&attachment.upload_key()).await {
            tracing::warn!(attachment = %id, error = %error, "deleting an upload failed");
        }
        Ok(attachment)
    }

    /// What the bytes are; stores an image's copy and thumbnails. `Invalid`
    /// errors are refusals of the bytes, others are troubles to retry.
    async fn verify(&self, attachment: &Attachment, bytes: &[u8]) -> DomainResult<VerifiedUpload> {
        let length = bytes.len() as u64;
        if length != attachment.size {
            return Err(DomainError::invalid(
                "size_mismatch",
                format!("{length} bytes were uploaded, {} declared", attachment.size),
            ));
        }
        let declared = DeclaredType::parse(&attachment.declared_type)?;
        let detected = self
            .policy
            .check_detected(&declared, sniff(bytes), length)?;
        if detected.family() != Family::Image {
            // What is checked is copied where no presigned PUT can reach it.
            let copy = Attachment {
                detected_type: Some(detected),
                ..attachment.clone()
            };
            self.store
                .put(&copy.served_key(), bytes.to_vec(), detected.mime())
                .await?;
            return Ok(VerifiedUpload {
                size: length,
                detected_type: detected,
                sha256: sha256_hex(bytes),
                width: None,
                height: None,
            });
        }
        self.store_image(attachment, bytes, detected).await
    }

    /// Stores the image's thumbnails and its copy without metadata (which is
    /// what is served, scanned, hashed and counted).
    async fn store_image(
        &self,
        attachment: &Attachment,
        bytes: &[u8],
        detected: ContentType,
    ) -> DomainResult<VerifiedUpload> {
        let processed = self.images.process(bytes, detected).await?;
        let image = Attachment {
            detected_type: Some(detected),
            ..attachment.clone()
        };
        for size in ThumbnailSize::ALL {
            self.store
                .put(
                    &image.thumbnail_key(size),
                    processed.thumbnail(size).to_vec(),
                    THUMBNAIL_TYPE.mime(),
                )
                .await?;
        }
        let verified = VerifiedUpload {
            size: processed.served.len() as u64,
            detected_type: detected,
            sha256: sha256_hex(&processed.served),
            width: Some(processed.width),
            height: Some(processed.height),
        };
        self.store
            .put(&image.served_key(), processed.served, detected.mime())
            .await?;
        Ok(verified)
    }

    /// Marks the attachment `Failed` and deletes its bytes; answers `refusal`.
    async fn refuse(&self, mut attachment: Attachment, refusal: DomainError) -> DomainError {
        let from = attachment.state;
        if let Err(error) = attachment.refused() {
            return error;
        }
        match self.attachments.set_state(&attachment, from).await {
            Ok(true) => self.delete_objects_or_log(&attachment).await,
            Ok(false) => {}
            Err(error) => return error,
        }
        tracing::debug!(attachment = %attachment.id, code = refusal.code(), "upload refused");
        refusal
    }
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}
