//! Attachment use cases: begin an upload, complete it, scan, serve, attach to
//! a message, expire.
//!
//! One type, [`AttachmentService`], its `impl` blocks spread by concern:
//! `upload.rs` (begin and complete), `scan.rs` (the scan job), `expiry.rs`
//! (the expiry and abandoned-upload jobs). Serving and attaching stay here.
//! The entity and its rules are in [`crate::attachment`].
//!
//! The jobs (`scan_pending`, `expire_due`, `delete_unattached`) find their
//! work in the store on every round, so a restart loses nothing, and every
//! state change is a compare-and-set, so several nodes may run them at once.

mod expiry;
mod scan;
#[cfg(test)]
mod tests;
mod upload;

use std::sync::Arc;

use uuid::Uuid;

pub use scan::ScanRound;
pub use upload::{UploadRequest, UploadStarted};

use crate::attachment::{
    Attachment, AttachmentPolicy, AttachmentState, Disposition, Family, PresignedRequest, Purpose,
    Rendition, ServeAs, THUMBNAIL_TYPE, attachment_in_use, room_image_holder,
};
use crate::auth::Principal;
use crate::error::{DomainError, DomainResult, ErrorKind, named};
use crate::message::MessageKind;
use crate::ports::{AttachmentRepository, Clock, ImageProcessor, ObjectStore, VirusScanner};
use crate::rooms::RoomService;
use crate::throttle::Limiter;

/// How many attachments one round of a job takes at most; a job whose round
/// came back full runs again at once.
pub const JOB_BATCH: u32 = 100;

/// What an [`AttachmentService`] works with, by name.
pub struct AttachmentPorts {
    pub attachments: Arc<dyn AttachmentRepository>,
    pub store: Arc<dyn ObjectStore>,
    /// Membership: who may upload into and download from a room.
    pub rooms: Arc<RoomService>,
    /// `None`: no scanner is configured, attachments are clean with
    /// `scan: skipped` (the embedded default).
    pub scanner: Option<Arc<dyn VirusScanner>>,
    pub images: Arc<dyn ImageProcessor>,
    pub clock: Arc<dyn Clock>,
}

pub struct AttachmentService {
    attachments: Arc<dyn AttachmentRepository>,
    store: Arc<dyn ObjectStore>,
    rooms: Arc<RoomService>,
    scanner: Option<Arc<dyn VirusScanner>>,
    images: Arc<dyn ImageProcessor>,
    clock: Arc<dyn Clock>,
    limiter: Arc<Limiter>,
    policy: AttachmentPolicy,
}

impl AttachmentService {
    pub fn new(ports: AttachmentPorts, policy: AttachmentPolicy) -> Self {
        let AttachmentPorts {
            attachments,
            store,
            rooms,
            scanner,
            images,
            clock,
        } = ports;
        Self {
            attachments,
            store,
            rooms,
            scanner,
            images,
            clock,
            limiter: Arc::new(Limiter::in_memory()),
            policy,
        }
    }

    /// Uses these rate limits (shared by every node with Redis).
    pub fn with_limiter(mut self, limiter: Arc<Limiter>) -> Self {
        self.limiter = limiter;
        self
    }

    pub fn policy(&self) -> &AttachmentPolicy {
        &self.policy
    }

    /// A presigned GET of the file or one of its thumbnails, for a member
    /// of the attachment's room, while it is clean and not expired. The URL
    /// never outlives the attachment. Stable ieum URLs (`/api/attachments/{id}`)
    /// call this on every request and redirect, so a client may cache them.
    pub async fn download(
        &self,
        who: &Principal,
        id: Uuid,
        rendition: Rendition,
    ) -> DomainResult<PresignedRequest> {
        let attachment = self.get(who, id).await?;
        self.presign_download(attachment, rendition).await
    }

    async fn presign_download(
        &self,
        attachment: Attachment,
        rendition: Rendition,
    ) -> DomainResult<PresignedRequest> {
        let now = self.clock.now();
        match attachment.state {
            AttachmentState::Clean if !attachment.is_past_expiry(now) => {}
            AttachmentState::Clean | AttachmentState::Expired => return Err(named::expired()),
            AttachmentState::Deleted => return Err(named::attachment_not_found()),
            AttachmentState::Infected => return Err(named::not_clean("the file is infected")),
            AttachmentState::Failed => return Err(named::not_clean("the upload was refused")),
            AttachmentState::Pending | AttachmentState::Scanning => {
                return Err(named::not_clean("the file is still being checked"));
            }
        }
        let (key, serve) = serving(&attachment, rendition)?;
        let mut lifetime = self.policy.download_url_lifetime;
        if let Some(expires_at) = attachment.expires_at {
            lifetime = lifetime.min(expires_at - now);
        }
        self.store.presign_get(&key, &serve, lifetime).await
    }

    /// Records that `message_id` references the attachment; one message per
    /// attachment, so a second send with it finds it [`Attached::AlreadyIn`].
    pub async fn attach(
        &self,
        who: &Principal,
        room_id: &str,
        id: Uuid,
        message_id: Uuid,
        kind: MessageKind,
    ) -> DomainResult<Attached> {
        let mut attachment = self
            .attachments
            .find(id)
            .await?
            .ok_or_else(named::attachment_not_found)?;
        // Told only to its owner, in its room: who else holds it.
        if let Some(holder) = attachment.message_id
            && attachment.owner == who.user_id
            && attachment.room_id == room_id
        {
            return Ok(Attached::AlreadyIn(Some(holder)));
        }
        attachment.check_reference(who.user_id, room_id, kind, self.clock.now())?;
        if !self.attachments.mark_attached(id, message_id).await? {
            return Ok(Attached::AlreadyIn(None));
        }
        attachment.message_id = Some(message_id);
        Ok(Attached::Now(attachment))
    }

    /// Frees an attachment taken by [`Self::attach`] for a message whose
    /// store failed, so the send may be retried.
    pub async fn release(&self, id: Uuid, message_id: Uuid) -> DomainResult<()> {
        self.attachments.release(id, message_id).await
    }

    /// Takes a clean image uploaded for `purpose` by `who` as their profile
    /// image (`room_id` `None`) or as `room_id`'s image: from now on the
    /// sweep of unused uploads leaves it, and it never expires. The caller
    /// checks that `who` may change the room, then shows the file's link;
    /// if that fails and the image was taken [`Adopted::now`], it calls
    /// [`Self::release`] with the holder. Taking the image the profile or
    /// room already holds answers it again (not `now`).
    pub async fn adopt(
        &self,
        who: &Principal,
        id: Uuid,
        room_id: Option<&str>,
    ) -> DomainResult<Adopted> {
        let attachment = self
            .attachments
            .find(id)
            .await?
            .filter(|attachment| attachment.owner == who.user_id)
            .ok_or_else(named::attachment_not_found)?;
        let holder = match (attachment.purpose, room_id) {
            (Purpose::ProfileImage, None) => who.user_id,
            (Purpose::RoomImage, Some(room_id)) if attachment.room_id == room_id => {
                room_image_holder(room_id)
            }
            _ => {
                return Err(DomainError::invalid(
                    "attachment_purpose",
                    "upload it with purpose profile_image (no room) or room_image (this room)",
                ));
            }
        };
        if !attachment.is_downloadable(self.clock.now()) {
            return Err(named::not_clean("the image is not clean (yet)"));
        }
        if attachment.message_id == Some(holder) {
            return Ok(Adopted { holder, now: false });
        }
        if !self.attachments.mark_attached(id, holder).await? {
            return Err(attachment_in_use());
        }
        Ok(Adopted { holder, now: true })
    }

    /// Gives back an image [`Self::adopt`] took now, when the change it was
    /// for failed; one it already held stays held.
    pub async fn unadopt(&self, id: Uuid, adopted: Adopted) -> DomainResult<()> {
        if adopted.now {
            self.attachments.release(id, adopted.holder).await?;
        }
        Ok(())
    }

    /// Deletes `who`'s former profile image once another URL or image
    /// replaced it; an attachment that was not their profile image (someone
    /// else's link they had set by hand) is left alone.
    pub async fn discard_profile_image(&self, who: &Principal, id: Uuid) -> DomainResult<()> {
        self.discard(id, Some(who.user_id)).await
    }

    /// Deletes `room_id`'s former image once another URL or image replaced
    /// it; an attachment that was not that room's image is left alone.
    pub async fn discard_room_image(&self, room_id: &str, id: Uuid) -> DomainResult<()> {
        self.discard(id, Some(room_image_holder(room_id))).await
    }

    /// The file of a deleted message goes with it.
    pub async fn delete_with_message(&self, id: Uuid) -> DomainResult<()> {
        self.discard(id, None).await
    }

    /// Marks it `Deleted` first, so its links stop answering at once, then
    /// deletes its objects (a failure leaves objects that are never served,
    /// and is logged). The mark is a compare-and-set: when a job moved the
    /// attachment in between (a scan ended), it reads it again and retries.
    /// With `holder`, only an attachment `holder` holds is discarded.
    async fn discard(&self, id: Uuid, holder: Option<Uuid>) -> DomainResult<()> {
        const TRIES: usize = 5;
        for _ in 0..TRIES {
            let Some(mut attachment) = self.attachments.find(id).await? else {
                return Ok(());
            };
            if attachment.state.is_final()
                || holder.is_some_and(|holder| attachment.message_id != Some(holder))
            {
                return Ok(());
            }
            let from = attachment.state;
            attachment.delete()?;
            if self.attachments.set_state(&attachment, from).await? {
                self.delete_objects_or_log(&attachment).await;
                return Ok(());
            }
        }
        Err(DomainError::Unavailable(format!(
            "attachment {id} kept changing while it was being deleted"
        )))
    }

    /// A presigned GET for a holder of a stable link to the file (one the
    /// server signed for a member, see the server's links): no membership is
    /// asked, the rest is [`Self::download`]'s rule.
    pub async fn download_linked(
        &self,
        id: Uuid,
        rendition: Rendition,
    ) -> DomainResult<PresignedRequest> {
        let attachment = self
            .attachments
            .find(id)
            .await?
            .ok_or_else(named::attachment_not_found)?;
        self.presign_download(attachment, rendition).await
    }

    /// The attachment, if `who` is an active member of its room; otherwise
    /// not found (its existence is not told to outsiders), as when deleted.
    pub async fn get(&self, who: &Principal, id: Uuid) -> DomainResult<Attachment> {
        let attachment = self
            .attachments
            .find(id)
            .await?
            .filter(|attachment| attachment.state != AttachmentState::Deleted)
            .ok_or_else(named::attachment_not_found)?;
        if attachment.purpose == Purpose::ProfileImage {
            // Seen through its link by anyone; as an attachment by its owner.
            return if attachment.owner == who.user_id {
                Ok(attachment)
            } else {
                Err(named::attachment_not_found())
            };
        }
        match self
            .rooms
            .require_member(who.user_id, &attachment.room_id)
            .await
        {
            Ok(_) => Ok(attachment),
            Err(error) if error.kind() == ErrorKind::Forbidden => {
                Err(named::attachment_not_found())
            }
            Err(error) => Err(error),
        }
    }

    /// Deletes every object of the attachment; the first failure stops it.
    async fn delete_objects(&self, attachment: &Attachment) -> DomainResult<()> {
        for key in attachment.keys() {
            self.store.delete(&key).await?;
        }
        Ok(())
    }

    /// Deletes what can be deleted now; leftovers are logged, never served
    /// (only clean attachments are) and removed by the expiry or
    /// abandoned-upload job.
    async fn delete_objects_or_log(&self, attachment: &Attachment) {
        if let Err(error) = self.delete_objects(attachment).await {
            tracing::warn!(attachment = %attachment.id, error = %error, "deleting an attachment's objects failed");
        }
    }
}

/// How [`AttachmentService::attach`] went.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per send
pub enum Attached {
    /// Taken for this message now.
    Now(Attachment),
    /// A message already holds it: this one (a retry of that send may be
    /// answered with it), or `None` when it was taken at the same moment.
    AlreadyIn(Option<Uuid>),
}

/// An image taken as a profile or room image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adopted {
    /// What now references it (the user's id, or the room's image holder).
    pub holder: Uuid,
    /// Taken by this call; false when it already was.
    pub now: bool,
}

/// The key and how to serve it.
fn serving(attachment: &Attachment, rendition: Rendition) -> DomainResult<(String, ServeAs)> {
    let detected = attachment.detected_type.ok_or_else(|| {
        DomainError::Internal(format!("clean attachment {} has no type", attachment.id))
    })?;
    match rendition {
        Rendition::File => {
            let disposition = match detected.family() {
                Family::Image | Family::Video => Disposition::Inline,
                Family::Document | Family::Archive | Family::Text => Disposition::Attachment,
            };
            Ok((
                attachment.served_key(),
                ServeAs {
                    content_type: detected,
                    file_name: attachment.file_name.clone(),
                    disposition,
                },
            ))
        }
        Rendition::Thumbnail(size) if attachment.is_image() => {
            let stem = attachment
                .file_name
                .rsplit_once('.')
                .map_or(attachment.file_name.as_str(), |(stem, _)| stem);
            Ok((
                attachment.thumbnail_key(size),
                ServeAs {
                    content_type: THUMBNAIL_TYPE,
                    file_name: format!("{stem}-{}.jpg", size.max_edge_px()),
                    disposition: Disposition::Inline,
                },
            ))
        }
        Rendition::Thumbnail(_) => Err(DomainError::not_found(
            "no_thumbnail",
            "only images have thumbnails",
        )),
    }
}
