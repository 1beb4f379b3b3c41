//! Attachments: files and images uploaded into a room, referenced by IMAGE
//! and FILE messages.
//!
//! The bytes never pass through ieum on the way in: the client gets a
//! presigned PUT bound to the declared length and type and sends them
//! straight to the object store; `complete` then reads them back to check
//! size, type (from the magic numbers, [`sniff`]) and hash. The use cases
//! are [`crate::attachments::AttachmentService`]; the life cycle is in
//! `state.rs`, the rules about what may be uploaded in `policy.rs`.
//!
//! **The scan never blocks a send.** A message may reference an attachment
//! that is still `Scanning`; subscribers see it with `scan: pending`, its
//! name, size, type and image dimensions (to lay out a placeholder), and no
//! URL. When the scan ends the server publishes an event with the new scan
//! status: `clean` brings the URLs, `infected` means they never come. Only a
//! `Clean` attachment is served ([`Attachment::is_downloadable`]).
//!
//! **No scanner configured** is not a state of its own: the attachment
//! becomes `Clean` with [`ScanOutcome::Skipped`], so "may it be served?" is
//! one question of the state everywhere, and the view still tells
//! `scan: skipped` from `scan: clean` ([`Attachment::scan_status`]).
//!
//! **Storage keys**: the client uploads to `attachments/{id}/upload`. What
//! is checked, scanned and served is a copy no presigned URL names (the
//! upload URL stays usable until it expires, so a second PUT must not swap
//! the bytes after the scan): `attachments/{id}/file`, or for an image
//! `attachments/{id}/image`, a copy without metadata. The upload (which may
//! carry GPS) is deleted once the copy is stored; thumbnails are
//! `attachments/{id}/thumb-{px}`. The upload is never rewritten by ieum, so
//! a `complete` retried after a crash reads the client's bytes again. Keys
//! are never reused: a served object never changes, and clients may cache it
//! by attachment id forever.

mod policy;
mod sniff;
mod state;

pub use policy::{AttachmentPolicy, DeclaredType, FILE_NAME_MAX_BYTES, SizeLimits};
pub use sniff::{ContentType, Family, SNIFF_BYTES, Sniffed, sniff};
pub use state::{AttachmentState, VerifiedUpload};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::{DomainError, DomainResult, named};
use crate::message::MessageKind;

/// What malware screening found. Kept through expiry and deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanOutcome {
    /// Not scanned (yet).
    NotScanned,
    Clean,
    /// No scanner is configured; the attachment became clean unscanned.
    Skipped,
    /// `signature` is the scanner's name for what it found.
    Infected {
        signature: String,
    },
}

impl ScanOutcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::NotScanned => "not_scanned",
            Self::Clean => "clean",
            Self::Skipped => "skipped",
            Self::Infected { .. } => "infected",
        }
    }

    /// The inverse of [`Self::as_str`]; `signature` is read for `infected` only.
    pub fn parse(name: &str, signature: Option<String>) -> Option<Self> {
        Some(match name {
            "not_scanned" => Self::NotScanned,
            "clean" => Self::Clean,
            "skipped" => Self::Skipped,
            "infected" => Self::Infected {
                signature: signature.unwrap_or_default(),
            },
            _ => return None,
        })
    }
}

/// The `scan` a message's file shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanStatus {
    /// Uploading or waiting for the scanner.
    Pending,
    Clean,
    /// No scanner is configured.
    Skipped,
    Infected,
    /// Refused before a scan (size, type, unreadable, too large to scan).
    Failed,
}

impl ScanStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Clean => "clean",
            Self::Skipped => "skipped",
            Self::Infected => "infected",
            Self::Failed => "failed",
        }
    }
}

/// What an upload is for, chosen when it begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// An IMAGE or FILE message's file (the default).
    Message,
    /// The uploader's profile image: in no room, never expires.
    ProfileImage,
    /// A room's image: uploaded into the room, never expires.
    RoomImage,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Message => "message",
            Self::ProfileImage => "profile_image",
            Self::RoomImage => "room_image",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "message" => Self::Message,
            "profile_image" => Self::ProfileImage,
            "room_image" => Self::RoomImage,
            _ => return None,
        })
    }
}

/// The room a profile image is kept under: the owner's own, which no real
/// room id can be (they hold no `:` but `dm:`).
pub fn personal_room(owner: Uuid) -> String {
    format!("user:{}", owner.simple())
}

/// What references a room's image in place of a message id (the room ids
/// are strings): a name-based UUID of the room id.
pub fn room_image_holder(room_id: &str) -> Uuid {
    const NAMESPACE: Uuid = Uuid::from_u128(0x6965_756d_2d72_6f6f_6d2d_696d_6167_6573);
    Uuid::new_v5(&NAMESPACE, room_id.as_bytes())
}

/// An uploaded (or announced) file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub id: Uuid,
    pub owner: Uuid,
    /// The room it was uploaded into; [`personal_room`] for a profile image.
    pub room_id: String,
    pub purpose: Purpose,
    /// As offered for download ([`AttachmentPolicy::check_file_name`]).
    pub file_name: String,
    /// Bytes: as declared until the upload is verified, then as stored (for
    /// images, the served copy without metadata).
    pub size: u64,
    /// The client's claim, `type/subtype` in lower case; the upload is bound to it.
    pub declared_type: String,
    /// From the bytes, once verified. What the file is served as.
    pub detected_type: Option<ContentType>,
    /// Lower-case hex SHA-256 of the stored bytes, once verified.
    pub sha256: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub state: AttachmentState,
    pub scan: ScanOutcome,
    /// The message that references it (for a profile image its user's id,
    /// for a room image [`room_image_holder`]); an upload nothing took is
    /// deleted after the policy's unattached lifetime.
    pub message_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    /// `None`: kept until deleted.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Every key that may hold the bytes of attachment `id` (its upload, its
/// served copy, its thumbnails): what deleting it removes, and what a backup
/// with files copies.
pub fn keys_of(id: Uuid) -> Vec<String> {
    let mut keys = vec![
        format!("attachments/{id}/upload"),
        format!("attachments/{id}/image"),
        format!("attachments/{id}/file"),
    ];
    keys.extend(
        ThumbnailSize::ALL.map(|size| format!("attachments/{id}/thumb-{}", size.max_edge_px())),
    );
    keys
}

impl Attachment {
    /// A new attachment waiting for its bytes.
    pub fn announced(upload: NewUpload, policy: &AttachmentPolicy, now: DateTime<Utc>) -> Self {
        Self {
            id: Uuid::now_v7(),
            owner: upload.owner,
            room_id: upload.room_id,
            purpose: upload.purpose,
            file_name: upload.file_name,
            size: upload.size,
            declared_type: upload.declared_type,
            detected_type: None,
            sha256: None,
            width: None,
            height: None,
            state: AttachmentState::Pending,
            scan: ScanOutcome::NotScanned,
            message_id: None,
            created_at: now,
            expires_at: policy
                .expires_after
                .filter(|_| upload.purpose == Purpose::Message)
                .map(|after| now + after),
        }
    }

    /// Where the client's presigned PUT puts the bytes.
    pub fn upload_key(&self) -> String {
        format!("attachments/{}/upload", self.id)
    }

    /// Where the served bytes are: a copy no presigned URL names (the
    /// upload URL may be used again until it expires, so the upload itself
    /// is never what is scanned and served). For an image the copy without
    /// metadata.
    pub fn served_key(&self) -> String {
        if self.is_image() {
            format!("attachments/{}/image", self.id)
        } else {
            format!("attachments/{}/file", self.id)
        }
    }

    pub fn thumbnail_key(&self, size: ThumbnailSize) -> String {
        format!("attachments/{}/thumb-{}", self.id, size.max_edge_px())
    }

    /// Every key that may hold its bytes: what deleting it removes.
    pub fn keys(&self) -> Vec<String> {
        keys_of(self.id)
    }

    pub fn is_image(&self) -> bool {
        self.detected_type
            .is_some_and(|detected| detected.family() == Family::Image)
    }

    /// The `scan` to show. Expired and deleted attachments keep what their
    /// scan found; their view shows the state first.
    pub fn scan_status(&self) -> ScanStatus {
        match (&self.scan, self.state) {
            (ScanOutcome::Infected { .. }, _) => ScanStatus::Infected,
            (ScanOutcome::Clean, _) => ScanStatus::Clean,
            (ScanOutcome::Skipped, _) => ScanStatus::Skipped,
            (ScanOutcome::NotScanned, AttachmentState::Failed) => ScanStatus::Failed,
            (ScanOutcome::NotScanned, _) => ScanStatus::Pending,
        }
    }

    /// Whether `sender` may reference it in a message of `kind` in `room_id`:
    /// their own upload into that room, verified (scanning or clean, so a
    /// send never waits for the scan), not yet in a message, not expired; an
    /// IMAGE message needs an image.
    pub fn check_reference(
        &self,
        sender: Uuid,
        room_id: &str,
        kind: MessageKind,
        now: DateTime<Utc>,
    ) -> DomainResult<()> {
        if self.owner != sender || self.room_id != room_id || self.state == AttachmentState::Deleted
        {
            return Err(named::attachment_not_found());
        }
        if self.state == AttachmentState::Expired || self.is_past_expiry(now) {
            return Err(named::expired());
        }
        match self.state {
            AttachmentState::Scanning | AttachmentState::Clean => {}
            AttachmentState::Pending => {
                return Err(named::not_clean("the upload is not complete"));
            }
            AttachmentState::Infected => return Err(named::not_clean("the file is infected")),
            _ => return Err(named::not_clean("the upload was refused")),
        }
        if self.purpose != Purpose::Message {
            return Err(DomainError::invalid(
                "attachment_purpose",
                "this upload is a profile or room image, not a message's file",
            ));
        }
        if self.message_id.is_some() {
            return Err(attachment_in_use());
        }
        match kind {
            MessageKind::File => Ok(()),
            MessageKind::Image if self.is_image() => Ok(()),
            MessageKind::Image => Err(DomainError::invalid(
                "not_an_image",
                "an IMAGE message needs an image",
            )),
            _ => Err(DomainError::invalid(
                "attachment_kind",
                "only IMAGE and FILE messages carry attachments",
            )),
        }
    }
}

pub(crate) fn attachment_in_use() -> DomainError {
    DomainError::conflict("attachment_in_use", "this file is already in a message")
}

/// What `begin_upload` was told, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUpload {
    pub owner: Uuid,
    pub room_id: String,
    pub purpose: Purpose,
    pub file_name: String,
    pub declared_type: String,
    pub size: u64,
}

/// The two thumbnails every image gets: still JPEGs (transparency flattened
/// onto white), the longest edge at most this many pixels, never upscaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ThumbnailSize {
    /// [`THUMBNAIL_SMALL_PX`]: a message bubble, a list.
    Small,
    /// [`THUMBNAIL_LARGE_PX`]: a full-screen preview on a phone.
    Large,
}

pub const THUMBNAIL_SMALL_PX: u32 = 320;
pub const THUMBNAIL_LARGE_PX: u32 = 1280;
/// What thumbnails are encoded as.
pub const THUMBNAIL_TYPE: ContentType = ContentType::Jpeg;

impl ThumbnailSize {
    pub const ALL: [Self; 2] = [Self::Small, Self::Large];

    pub fn max_edge_px(self) -> u32 {
        match self {
            Self::Small => THUMBNAIL_SMALL_PX,
            Self::Large => THUMBNAIL_LARGE_PX,
        }
    }
}

/// What an [`crate::ports::ImageProcessor`] makes of an uploaded image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessedImage {
    /// As displayed, after the orientation is applied.
    pub width: u32,
    pub height: u32,
    /// The image to serve, in its own format, without metadata.
    pub served: Vec<u8>,
    pub small: Vec<u8>,
    pub large: Vec<u8>,
}

impl ProcessedImage {
    pub fn thumbnail(&self, size: ThumbnailSize) -> &[u8] {
        match size {
            ThumbnailSize::Small => &self.small,
            ThumbnailSize::Large => &self.large,
        }
    }
}

/// Which of an attachment's objects a download asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rendition {
    File,
    Thumbnail(ThumbnailSize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferMethod {
    Get,
    Put,
}

impl TransferMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Put => "PUT",
        }
    }
}

/// A request the client makes itself, straight to the storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedRequest {
    pub url: String,
    pub method: TransferMethod,
    /// Headers the client must send as they are (the signature covers them).
    pub headers: Vec<(String, String)>,
    pub expires_at: DateTime<Utc>,
}

/// Whether a download is shown in place or saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    Inline,
    Attachment,
}

/// How the storage must answer a download: always the detected type, never
/// the declared one, so a file is never served as something it is not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeAs {
    pub content_type: ContentType,
    pub file_name: String,
    pub disposition: Disposition,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An announced PNG upload of 10 bytes by user 1 into room-1.
    pub(crate) fn pending() -> Attachment {
        Attachment::announced(
            NewUpload {
                owner: Uuid::from_u128(1),
                room_id: "room-1".into(),
                purpose: Purpose::Message,
                file_name: "a.png".into(),
                declared_type: "image/png".into(),
                size: 10,
            },
            &AttachmentPolicy::default(),
            Utc::now(),
        )
    }

    fn in_state(state: AttachmentState, detected: ContentType) -> Attachment {
        Attachment {
            state,
            detected_type: Some(detected),
            ..pending()
        }
    }

    fn reference(attachment: &Attachment, kind: MessageKind) -> DomainResult<()> {
        attachment.check_reference(Uuid::from_u128(1), "room-1", kind, Utc::now())
    }

    #[test]
    fn a_scanning_or_clean_upload_may_be_sent_at_once() {
        for state in [AttachmentState::Scanning, AttachmentState::Clean] {
            let attachment = in_state(state, ContentType::Png);
            assert!(reference(&attachment, MessageKind::Image).is_ok());
            assert!(reference(&attachment, MessageKind::File).is_ok());
        }
    }

    #[test]
    fn unfinished_infected_or_refused_uploads_are_not_clean() {
        for state in [
            AttachmentState::Pending,
            AttachmentState::Infected,
            AttachmentState::Failed,
        ] {
            let err = reference(&in_state(state, ContentType::Png), MessageKind::File).unwrap_err();
            assert_eq!(err.code(), "not_clean", "{state:?}");
        }
    }

    #[test]
    fn an_expired_upload_cannot_be_sent_even_before_the_job_ran() {
        let expired = in_state(AttachmentState::Expired, ContentType::Png);
        assert_eq!(
            reference(&expired, MessageKind::File).unwrap_err().code(),
            "expired"
        );
        let due = Attachment {
            expires_at: Some(Utc::now() - chrono::Duration::seconds(1)),
            ..in_state(AttachmentState::Clean, ContentType::Png)
        };
        assert_eq!(
            reference(&due, MessageKind::File).unwrap_err().code(),
            "expired"
        );
    }

    #[test]
    fn someone_elses_or_another_rooms_upload_is_not_found() {
        let attachment = in_state(AttachmentState::Clean, ContentType::Png);
        let theirs =
            attachment.check_reference(Uuid::from_u128(2), "room-1", MessageKind::File, Utc::now());
        assert_eq!(theirs.unwrap_err().code(), "attachment_not_found");
        let elsewhere =
            attachment.check_reference(Uuid::from_u128(1), "room-2", MessageKind::File, Utc::now());
        assert_eq!(elsewhere.unwrap_err().code(), "attachment_not_found");
        let deleted = in_state(AttachmentState::Deleted, ContentType::Png);
        assert_eq!(
            reference(&deleted, MessageKind::File).unwrap_err().code(),
            "attachment_not_found"
        );
    }

    #[test]
    fn an_upload_goes_into_one_message_only() {
        let attachment = Attachment {
            message_id: Some(Uuid::from_u128(7)),
            ..in_state(AttachmentState::Clean, ContentType::Png)
        };
        let err = reference(&attachment, MessageKind::File).unwrap_err();
        assert_eq!(err.code(), "attachment_in_use");
    }

    #[test]
    fn an_image_message_needs_an_image_and_text_messages_carry_none() {
        let pdf = in_state(AttachmentState::Clean, ContentType::Pdf);
        assert_eq!(
            reference(&pdf, MessageKind::Image).unwrap_err().code(),
            "not_an_image"
        );
        assert!(reference(&pdf, MessageKind::File).is_ok());
        let err = reference(&pdf, MessageKind::Text).unwrap_err();
        assert_eq!(err.code(), "attachment_kind");
    }

    #[test]
    fn the_scan_status_tells_skipped_from_clean_and_survives_expiry() {
        let mut attachment = in_state(AttachmentState::Scanning, ContentType::Png);
        assert_eq!(attachment.scan_status(), ScanStatus::Pending);
        attachment.scan_skipped().unwrap();
        assert_eq!(attachment.scan_status(), ScanStatus::Skipped);
        attachment.expire().unwrap();
        assert_eq!(attachment.scan_status(), ScanStatus::Skipped);
        let failed = in_state(AttachmentState::Failed, ContentType::Png);
        assert_eq!(failed.scan_status(), ScanStatus::Failed);
        let infected = Attachment {
            scan: ScanOutcome::Infected {
                signature: "x".into(),
            },
            ..in_state(AttachmentState::Infected, ContentType::Png)
        };
        assert_eq!(infected.scan_status(), ScanStatus::Infected);
    }

    #[test]
    fn scan_outcomes_round_trip_through_their_names() {
        for outcome in [
            ScanOutcome::NotScanned,
            ScanOutcome::Clean,
            ScanOutcome::Skipped,
            ScanOutcome::Infected {
                signature: "Eicar".into(),
            },
        ] {
            let signature = match &outcome {
                ScanOutcome::Infected { signature } => Some(signature.clone()),
                _ => None,
            };
            assert_eq!(
                ScanOutcome::parse(outcome.as_str(), signature),
                Some(outcome)
            );
        }
        assert_eq!(ScanOutcome::parse("maybe", None), None);
    }

    #[test]
    fn images_are_served_from_their_own_copy_other_files_from_the_upload() {
        let image = in_state(AttachmentState::Clean, ContentType::Png);
        assert_eq!(
            image.served_key(),
            format!("attachments/{}/image", image.id)
        );
        let pdf = in_state(AttachmentState::Clean, ContentType::Pdf);
        assert_eq!(pdf.served_key(), format!("attachments/{}/file", pdf.id));
        assert_eq!(pdf.upload_key(), format!("attachments/{}/upload", pdf.id));
    }

    #[test]
    fn deleting_covers_every_key_an_attachment_may_have() {
        let image = in_state(AttachmentState::Clean, ContentType::Png);
        let keys = image.keys();
        assert_eq!(keys.len(), 5);
        assert!(keys.contains(&image.upload_key()));
        assert!(keys.contains(&image.served_key()));
        for size in ThumbnailSize::ALL {
            assert!(keys.contains(&image.thumbnail_key(size)));
        }
        assert!(keys[3].ends_with("/thumb-320") && keys[4].ends_with("/thumb-1280"));
    }
}
