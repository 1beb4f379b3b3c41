//! The `ImageProcessor` port over the `image` crate.
//!
//! Two steps, in this order, so that what is decoded is exactly what is
//! served:
//!
//! 1. **Strip** (`strip`): walk the container (JPEG segments, PNG chunks,
//!    GIF blocks, RIFF chunks) and keep only what draws the picture; EXIF,
//!    XMP, IPTC, comments, text chunks and bytes after the end marker go.
//!    Nothing is re-encoded, so a photo loses no quality and an image
//!    without metadata comes out byte for byte. The EXIF orientation is read
//!    on the way and, for JPEG and WebP, written back as the only tag of a
//!    fresh EXIF block (every browser honours it); a PNG is re-encoded with
//!    the orientation applied instead (lossless, and PNG viewers are less
//!    consistent about `eXIf`).
//! 2. **Render** (`render`): decode the stripped copy under [`ImageLimits`]
//!    (dimensions are checked from the header, before any pixel buffer is
//!    allocated), apply the orientation, and make the two JPEG thumbnails.
//!
//! Both run on `spawn_blocking`: a 12-megapixel photo takes a good fraction
//! of a second to decode and scale.

mod exif;
mod render;
mod strip;

use async_trait::async_trait;
use ieum_domain::attachment::{ContentType, ProcessedImage};
use ieum_domain::error::{DomainError, DomainResult, named};
use ieum_domain::ports::ImageProcessor;

pub use render::ImageLimits;

/// The `image`-crate image processor: JPEG, PNG, GIF and WebP (the types the
/// default attachment policy allows), nothing else.
#[derive(Debug, Clone, Default)]
pub struct ImageCrateProcessor {
    limits: ImageLimits,
}

impl ImageCrateProcessor {
    pub fn new(limits: ImageLimits) -> Self {
        Self { limits }
    }
}

#[async_trait]
impl ImageProcessor for ImageCrateProcessor {
    async fn process(
        &self,
        bytes: &[u8],
        content_type: ContentType,
    ) -> DomainResult<ProcessedImage> {
        let limits = self.limits.clone();
        // The port lends the bytes; the blocking task needs its own copy.
        let owned = bytes.to_vec();
        let outcome =
            tokio::task::spawn_blocking(move || process_blocking(&owned, content_type, &limits))
                .await
                .map_err(|join| {
                    DomainError::Internal(format!("image processing task failed: {join}"))
                })?;
        outcome.map_err(|failure| match failure {
            // Our own encoder failing is not the upload's fault.
            ImageFailure::Encode(_) => DomainError::Internal(failure.to_string()),
            _ => named::unsupported_type(failure.to_string()),
        })
    }
}

/// Why an image was refused: `unsupported_type`, except `Encode`, which is
/// ours (`Internal`).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ImageFailure {
    #[error("{0} images are not processed")]
    UnsupportedFormat(&'static str),
    #[error("the image is not a valid {format}: {reason}")]
    Malformed {
        format: &'static str,
        reason: &'static str,
    },
    #[error("the image is {width}x{height} pixels, over the limit of {limit}")]
    TooLarge {
        width: u32,
        height: u32,
        limit: String,
    },
    #[error("the image is over the decoding limits: {0}")]
    OverLimits(String),
    #[error("the image could not be decoded: {0}")]
    Decode(String),
    #[error("the image could not be encoded: {0}")]
    Encode(String),
}

fn process_blocking(
    bytes: &[u8],
    content_type: ContentType,
    limits: &ImageLimits,
) -> Result<ProcessedImage, ImageFailure> {
    let stripped = strip::strip(bytes, content_type)?;
    render::render(stripped, content_type, limits)
}
