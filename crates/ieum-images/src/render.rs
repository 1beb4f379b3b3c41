//! Decoding the stripped copy under limits and making the thumbnails.

use std::io::Cursor;

use ieum_domain::attachment::{
    ContentType, ProcessedImage, THUMBNAIL_LARGE_PX, THUMBNAIL_SMALL_PX, THUMBNAIL_TYPE,
};
use image::codecs::jpeg::JpegEncoder;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits, RgbImage};

use crate::ImageFailure;
use crate::strip::Stripped;

/// JPEG quality of the thumbnails: small files, no visible blocking at
/// phone sizes.
const THUMBNAIL_QUALITY: u8 = 85;

/// What the processor agrees to decode. An upload is read before the virus
/// scan, so a few hundred bytes announcing 100 000 x 100 000 pixels (a
/// decompression bomb) must be refused from its header, before any pixel
/// buffer exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageLimits {
    /// Widest image decoded, in pixels.
    pub max_width: u32,
    /// Tallest image decoded, in pixels.
    pub max_height: u32,
    /// Most pixels decoded (width x height): the decoded buffer is 3 or 4
    /// bytes per pixel, so this bounds memory more tightly than the edges.
    pub max_pixels: u64,
    /// The `image` crate's allocation limit for one decode, in bytes.
    pub max_alloc_bytes: u64,
}

impl Default for ImageLimits {
    /// 50 megapixels (a 48-megapixel phone photo fits, 8000 x 6000), 16 384
    /// pixels on an edge, 512 MiB of decoder allocations.
    fn default() -> Self {
        Self {
            max_width: 16_384,
            max_height: 16_384,
            max_pixels: 50_000_000,
            max_alloc_bytes: 512 * 1024 * 1024,
        }
    }
}

impl ImageLimits {
    fn for_image_crate(&self) -> Limits {
        let mut limits = Limits::default();
        limits.max_image_width = Some(self.max_width);
        limits.max_image_height = Some(self.max_height);
        limits.max_alloc = Some(self.max_alloc_bytes);
        limits
    }
}

pub(crate) fn render(
    stripped: Stripped,
    content_type: ContentType,
    limits: &ImageLimits,
) -> Result<ProcessedImage, ImageFailure> {
    let image = decode(&stripped.bytes, content_type, limits)?;
    // Scale first, orient the small results: rotating the full image would
    // allocate a second full-size buffer.
    let large = fit_within(&image, THUMBNAIL_LARGE_PX);
    let small = fit_within(&large, THUMBNAIL_SMALL_PX);
    let orientation = stripped.orientation.unwrap_or(Orientation::NoTransforms);
    let (served, width, height) = match (content_type, stripped.orientation) {
        // PNG is re-encoded with the orientation applied (lossless).
        (ContentType::Png, Some(orientation)) => {
            let mut oriented = image;
            oriented.apply_orientation(orientation);
            let mut png = Vec::new();
            oriented
                .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
                .map_err(|error| ImageFailure::Encode(error.to_string()))?;
            (png, oriented.width(), oriented.height())
        }
        _ if swaps_edges(orientation) => (stripped.bytes, image.height(), image.width()),
        _ => (stripped.bytes, image.width(), image.height()),
    };
    Ok(ProcessedImage {
        width,
        height,
        served,
        small: thumbnail_bytes(small, orientation)?,
        large: thumbnail_bytes(large, orientation)?,
    })
}

fn decode(
    bytes: &[u8],
    content_type: ContentType,
    limits: &ImageLimits,
) -> Result<DynamicImage, ImageFailure> {
    let format = match content_type {
        ContentType::Jpeg => ImageFormat::Jpeg,
        ContentType::Png => ImageFormat::Png,
        ContentType::Gif => ImageFormat::Gif,
        ContentType::WebP => ImageFormat::WebP,
        other => return Err(ImageFailure::UnsupportedFormat(other.mime())),
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits.for_image_crate());
    let decoder = reader.into_decoder().map_err(decode_failure)?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(ImageFailure::TooLarge {
            width,
            height,
            limit: format!("{} pixels", limits.max_pixels),
        });
    }
    // Animated GIF and WebP: the decoder yields the first frame.
    DynamicImage::from_decoder(decoder).map_err(decode_failure)
}

fn decode_failure(error: ImageError) -> ImageFailure {
    match error {
        ImageError::Limits(limit) => ImageFailure::OverLimits(limit.to_string()),
        ImageError::Unsupported(unsupported) => ImageFailure::Decode(unsupported.to_string()),
        other => ImageFailure::Decode(other.to_string()),
    }
}

/// The image scaled so its longest edge is at most `max_edge`, aspect ratio
/// kept (each edge at least one pixel); never upscaled.
fn fit_within(image: &DynamicImage, max_edge: u32) -> DynamicImage {
    let (width, height) = (image.width(), image.height());
    let longest = width.max(height);
    if longest <= max_edge {
        return image.clone();
    }
    let scale = |edge: u32| -> u32 {
        let scaled =
            (u64::from(edge) * u64::from(max_edge) + u64::from(longest) / 2) / u64::from(longest);
        u32::try_from(scaled).unwrap_or(max_edge).clamp(1, max_edge)
    };
    // `thumbnail_exact` averages whole source areas (fast, no ringing) and
    // keeps the buffer at the target size.
    image.thumbnail_exact(scale(width), scale(height))
}

fn swaps_edges(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

/// A thumbnail as [`THUMBNAIL_TYPE`]: oriented, transparency flattened onto
/// white, no metadata (the encoder writes a JFIF header only).
fn thumbnail_bytes(
    mut thumbnail: DynamicImage,
    orientation: Orientation,
) -> Result<Vec<u8>, ImageFailure> {
    debug_assert_eq!(THUMBNAIL_TYPE, ContentType::Jpeg);
    thumbnail.apply_orientation(orientation);
    let rgb = onto_white(&thumbnail);
    let mut jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpeg, THUMBNAIL_QUALITY)
        .encode_image(&rgb)
        .map_err(|error| ImageFailure::Encode(error.to_string()))?;
    Ok(jpeg)
}

fn onto_white(image: &DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.to_rgb8();
    }
    let rgba = image.to_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [red, green, blue, alpha] = rgba.get_pixel(x, y).0;
        let blend = |channel: u8| -> u8 {
            let alpha = u16::from(alpha);
            let mixed = (u16::from(channel) * alpha + 255 * (255 - alpha) + 127) / 255;
            u8::try_from(mixed).unwrap_or(u8::MAX)
        };
        image::Rgb([blend(red), blend(green), blend(blue)])
    })
}
