//! Cutting metadata out of an image without re-encoding it: pure functions,
//! bytes in, bytes out. Each format keeps a list of what draws the picture
//! (an allow-list, so an unknown chunk is dropped rather than trusted) and
//! drops everything after the format's end marker, where phones append
//! previews that carry their own EXIF.

mod gif;
mod jpeg;
mod png;
mod webp;

use ieum_domain::attachment::ContentType;
use image::metadata::Orientation;

use crate::ImageFailure;

/// The upload without its metadata.
#[derive(Debug)]
pub(crate) struct Stripped {
    pub(crate) bytes: Vec<u8>,
    /// What the dropped EXIF asked for, when not "as stored". For JPEG and
    /// WebP it is already written back into `bytes` as the only tag.
    pub(crate) orientation: Option<Orientation>,
}

pub(crate) fn strip(bytes: &[u8], content_type: ContentType) -> Result<Stripped, ImageFailure> {
    match content_type {
        ContentType::Jpeg => jpeg::strip(bytes),
        ContentType::Png => png::strip(bytes),
        ContentType::Gif => gif::strip(bytes),
        ContentType::WebP => webp::strip(bytes),
        other => Err(ImageFailure::UnsupportedFormat(other.mime())),
    }
}

/// A bounds-checked slice, or the format's "truncated" error.
fn take<'a>(
    bytes: &'a [u8],
    start: usize,
    len: usize,
    format: &'static str,
) -> Result<&'a [u8], ImageFailure> {
    start
        .checked_add(len)
        .and_then(|end| bytes.get(start..end))
        .ok_or(ImageFailure::Malformed {
            format,
            reason: "truncated",
        })
}
