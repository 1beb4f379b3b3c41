//! The ports of files: the virus scanner, the object store, attachments'
//! records and the image processor.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::attachment::{
    Attachment, AttachmentState, ContentType, PresignedRequest, ProcessedImage, ServeAs,
};
use crate::error::DomainResult;

/// What a virus scan found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanVerdict {
    Clean,
    /// A signature matched; `signature` is the scanner's name for it
    /// (`Win.Test.EICAR_HDB-1`, `Eicar-Test-Signature.UNOFFICIAL`, ...).
    Infected {
        signature: String,
    },
}

/// Scans an object's bytes for malware (clamd in production). Only
/// `Ok(Clean)` makes an object clean: a scanner that cannot be reached, or
/// cannot scan right now, is `Unavailable`, and the caller keeps the object
/// waiting and scans it again later.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait VirusScanner: Send + Sync {
    /// Scans the whole object. The bytes are borrowed, not moved: the caller
    /// keeps its one copy (to hash or store it too) and the adapter streams it
    /// to the scanner in chunks straight from the slice, so the object is
    /// never held twice. An object is bounded by the upload limit, so one copy
    /// in memory is affordable; a reader would tie the domain to an IO crate.
    /// An object larger than the scanner accepts is
    /// `Invalid { code: "too_large" }`, refused before anything is sent when
    /// the adapter knows the limit.
    async fn scan(&self, bytes: &[u8]) -> DomainResult<ScanVerdict>;
}

/// What reading an object found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// Nothing under the key (never uploaded, or deleted).
    Missing,
    /// The object holds more than the caller's limit; it was not read.
    TooLarge {
        size: u64,
    },
    Bytes(Vec<u8>),
}

/// Where attachments' bytes live: S3-compatible storage, or the local disk
/// (whose adapter serves the presigned URLs itself, with signed tokens).
/// Keys are paths of `/`-separated segments ([`crate::attachment::Attachment::keys`]).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// Stores `bytes` under `key`, replacing what was there, durably.
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> DomainResult<()>;
    /// The object, read only when it holds at most `max_bytes` (the size is
    /// known before reading, so an oversized upload never fills memory).
    async fn get(&self, key: &str, max_bytes: u64) -> DomainResult<Fetched>;
    /// Removes the object; `Ok` also when there was none, so deleting twice is fine.
    async fn delete(&self, key: &str) -> DomainResult<()>;
    /// A PUT the client sends itself, usable for `expires_in`; the storage
    /// refuses a body of any other length or content type than these.
    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        length: u64,
        expires_in: Duration,
    ) -> DomainResult<PresignedRequest>;
    /// A GET the client sends itself, usable for `expires_in`, answered with
    /// `serve`'s content type, disposition and file name whatever the object
    /// was stored with.
    async fn presign_get(
        &self,
        key: &str,
        serve: &ServeAs,
        expires_in: Duration,
    ) -> DomainResult<PresignedRequest>;
}

/// Attachments' records. Every state change is a compare-and-set, so two
/// nodes running the same job never both act on one attachment.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait AttachmentRepository: Send + Sync {
    /// Stores a new attachment (it is `Pending`).
    async fn insert(&self, attachment: &Attachment) -> DomainResult<()>;
    async fn find(&self, id: Uuid) -> DomainResult<Option<Attachment>>;
    /// Writes the attachment's state, scan outcome and what was learned
    /// (size, detected type, sha256, dimensions) if the stored state is still
    /// `from`; false (nothing written) when another caller moved it first.
    async fn set_state(&self, attachment: &Attachment, from: AttachmentState)
    -> DomainResult<bool>;
    /// Records the message that references it; false (nothing written) when
    /// a message already does, or when it is no longer `Scanning` or `Clean`.
    async fn mark_attached(&self, id: Uuid, message_id: Uuid) -> DomainResult<bool>;
    /// Marks it `Deleted` if its state is still `from` and nothing took it
    /// (`message_id` empty); false (nothing written) otherwise. What the
    /// sweep of unused uploads claims a row with, so a send or a profile
    /// that takes the upload at the same moment keeps it.
    async fn delete_unused(&self, id: Uuid, from: AttachmentState) -> DomainResult<bool>;
    /// Undoes [`Self::mark_attached`] for a message that was not stored;
    /// nothing happens when another message holds it.
    async fn release(&self, id: Uuid, message_id: Uuid) -> DomainResult<()>;
    /// `Scanning` attachments, oldest first.
    async fn awaiting_scan(&self, limit: u32) -> DomainResult<Vec<Attachment>>;
    /// Attachments whose `expires_at` is at or before `now`, neither expired
    /// nor deleted, soonest first. Found again after a restart: the store is
    /// the job's memory.
    async fn due_expired(&self, now: DateTime<Utc>, limit: u32) -> DomainResult<Vec<Attachment>>;
    /// Attachments created before `cutoff` that no message references,
    /// neither expired nor deleted, oldest first.
    async fn unattached_before(
        &self,
        cutoff: DateTime<Utc>,
        limit: u32,
    ) -> DomainResult<Vec<Attachment>>;
    /// The sum of `size` over the owner's `Pending`, `Scanning` and `Clean`
    /// attachments: what counts against their quota.
    async fn bytes_used_by(&self, owner: Uuid) -> DomainResult<u64>;
}

/// Makes what is served of an uploaded image. Runs off the async threads
/// (decoding a 12-megapixel photo takes a while). It guarantees:
///
/// - the served copy and both thumbnails carry no EXIF, XMP, IPTC or maker
///   data at all, GPS above all (a couple's photos must not say where they
///   live); the orientation is applied to the pixels (or kept as the only
///   tag), so nothing shows sideways;
/// - the served copy keeps its format and, where the format allows, is the
///   upload with the metadata segments cut out rather than re-encoded, so an
///   image without metadata is served byte for byte as uploaded;
/// - thumbnails are [`crate::attachment::THUMBNAIL_TYPE`], their longest
///   edge at most [`crate::attachment::THUMBNAIL_SMALL_PX`] and
///   [`crate::attachment::THUMBNAIL_LARGE_PX`], never upscaled, first frame
///   only;
/// - `width` and `height` are the served image's as displayed.
///
/// It reads untrusted bytes before the virus scan: decode with limits on
/// pixels and memory. An image it cannot read (corrupt, over those limits,
/// or a format it does not handle) is `Invalid { code: "unsupported_type" }`;
/// the policy should allow only image types it reads.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ImageProcessor: Send + Sync {
    async fn process(
        &self,
        bytes: &[u8],
        content_type: ContentType,
    ) -> DomainResult<ProcessedImage>;
}
