//! The `ImageProcessor` port's promises, on images built in the test.

mod fixtures;

use fixtures::*;
use ieum_domain::attachment::{
    ContentType, ProcessedImage, THUMBNAIL_LARGE_PX, THUMBNAIL_SMALL_PX,
};
use ieum_domain::error::DomainError;
use ieum_domain::ports::ImageProcessor;
use ieum_images::{ImageCrateProcessor, ImageLimits};
use image::{DynamicImage, GenericImageView, ImageFormat};

async fn process(bytes: &[u8], content_type: ContentType) -> Result<ProcessedImage, DomainError> {
    ImageCrateProcessor::default()
        .process(bytes, content_type)
        .await
}

fn decode(bytes: &[u8], format: ImageFormat) -> DynamicImage {
    image::load_from_memory_with_format(bytes, format).expect("decodes")
}

/// A thumbnail is a JPEG of these dimensions with no EXIF and no GPS.
fn assert_clean_thumbnail(bytes: &[u8], width: u32, height: u32) {
    assert_eq!(image::guess_format(bytes).unwrap(), ImageFormat::Jpeg);
    assert!(exif_segments(bytes).is_empty(), "a thumbnail carries EXIF");
    assert!(!has_gps(bytes));
    assert_eq!(
        decode(bytes, ImageFormat::Jpeg).dimensions(),
        (width, height)
    );
}

fn assert_unsupported(error: &DomainError, mentions: &str) {
    assert_eq!(error.code(), "unsupported_type", "{error:?}");
    assert!(error.to_string().contains(mentions), "{error}");
}

#[tokio::test]
async fn a_photo_with_gps_loses_it_in_the_served_copy_and_both_thumbnails() {
    let upload = with_gps_exif(&jpeg(2560, 1920), None);
    assert_eq!(exif_segments(&upload).len(), 1, "the input must carry EXIF");
    assert!(
        contains(&upload, b"Exif\0\0") && has_gps(&upload),
        "the input must carry GPS"
    );
    assert!(
        contains(&upload, &GPS_POINTER_ENTRY),
        "the input must carry tag 0x8825"
    );

    let processed = process(&upload, ContentType::Jpeg).await.unwrap();

    assert_eq!((processed.width, processed.height), (2560, 1920));
    assert!(exif_segments(&processed.served).is_empty());
    assert!(!contains(&processed.served, b"Exif") && !has_gps(&processed.served));
    assert_eq!(
        decode(&processed.served, ImageFormat::Jpeg).dimensions(),
        (2560, 1920)
    );
    assert_clean_thumbnail(&processed.small, THUMBNAIL_SMALL_PX, 240);
    assert_clean_thumbnail(&processed.large, THUMBNAIL_LARGE_PX, 960);
}

#[tokio::test]
async fn the_served_jpeg_is_the_upload_with_the_metadata_cut_out_not_re_encoded() {
    let clean = jpeg(64, 48);
    let processed = process(&with_gps_exif(&clean, None), ContentType::Jpeg)
        .await
        .unwrap();
    assert_eq!(processed.served, clean);
}

#[tokio::test]
async fn an_image_without_metadata_is_served_byte_for_byte() {
    let clean_jpeg = jpeg(64, 48);
    assert_eq!(
        process(&clean_jpeg, ContentType::Jpeg)
            .await
            .unwrap()
            .served,
        clean_jpeg
    );
    let clean_png = png(DynamicImage::ImageRgb8(gradient(64, 48)));
    assert_eq!(
        process(&clean_png, ContentType::Png).await.unwrap().served,
        clean_png
    );
}

#[tokio::test]
async fn a_preview_appended_after_the_jpeg_end_is_dropped_with_its_exif() {
    let clean = jpeg(64, 48);
    let mut upload = clean.clone();
    upload.extend_from_slice(&with_gps_exif(&jpeg(16, 16), None));
    assert!(has_gps(&upload));
    let processed = process(&upload, ContentType::Jpeg).await.unwrap();
    assert_eq!(processed.served, clean);
}

#[tokio::test]
async fn the_orientation_is_kept_as_the_only_tag_and_applied_to_thumbnails() {
    // 6: rotate 90 degrees clockwise to display, so 400x200 shows as 200x400.
    let upload = with_gps_exif(&jpeg(400, 200), Some(6));
    let processed = process(&upload, ContentType::Jpeg).await.unwrap();

    assert_eq!((processed.width, processed.height), (200, 400));
    assert!(!has_gps(&processed.served));
    let exif = exif_segments(&processed.served);
    assert_eq!(exif.len(), 1);
    let tiff = &exif[0][6..];
    assert_eq!(tiff.len(), 26, "header, one entry, no next IFD");
    assert_eq!(
        image::metadata::Orientation::from_exif_chunk(tiff),
        Some(image::metadata::Orientation::Rotate90)
    );
    assert_clean_thumbnail(&processed.small, 160, 320);
    assert_clean_thumbnail(&processed.large, 200, 400);
}

#[tokio::test]
async fn a_small_image_is_not_upscaled() {
    let upload = png(DynamicImage::ImageRgb8(gradient(200, 100)));
    let processed = process(&upload, ContentType::Png).await.unwrap();
    assert_eq!((processed.width, processed.height), (200, 100));
    assert_clean_thumbnail(&processed.small, 200, 100);
    assert_clean_thumbnail(&processed.large, 200, 100);
}

#[tokio::test]
async fn a_png_loses_its_text_chunk() {
    let clean = png(DynamicImage::ImageRgb8(gradient(50, 40)));
    let upload = png_with_chunk(
        &clean,
        &png_chunk(b"tEXt", b"Comment\0we live at 12 Main St"),
    );
    assert!(contains(&upload, b"tEXt") && contains(&upload, b"12 Main St"));
    decode(&upload, ImageFormat::Png);

    let processed = process(&upload, ContentType::Png).await.unwrap();

    assert!(!contains(&processed.served, b"tEXt") && !contains(&processed.served, b"12 Main St"));
    assert_eq!(processed.served, clean);
}

#[tokio::test]
async fn a_png_with_an_exif_orientation_is_re_encoded_upright_without_it() {
    let clean = png(DynamicImage::ImageRgb8(gradient(60, 30)));
    let exif = gps_tiff(Some(6));
    let upload = png_with_chunk(&clean, &png_chunk(b"eXIf", &exif));
    assert!(has_gps(&upload));

    let processed = process(&upload, ContentType::Png).await.unwrap();

    assert!(!contains(&processed.served, b"eXIf") && !has_gps(&processed.served));
    assert_eq!((processed.width, processed.height), (30, 60));
    assert_eq!(
        decode(&processed.served, ImageFormat::Png).dimensions(),
        (30, 60)
    );
}

#[tokio::test]
async fn transparency_is_flattened_onto_white_in_thumbnails() {
    let processed = process(&half_transparent_png(20, 10), ContentType::Png)
        .await
        .unwrap();
    let thumbnail = decode(&processed.small, ImageFormat::Jpeg).to_rgb8();
    let pixel = thumbnail.get_pixel(10, 5).0;
    assert!(pixel.iter().all(|channel| *channel > 240), "{pixel:?}");
}

#[tokio::test]
async fn a_webp_loses_its_exif_and_xmp_chunks_and_flags() {
    let upload = webp_with_gps_and_xmp(80, 60);
    assert!(has_gps(&upload) && contains(&upload, b"XMP "));
    decode(&upload, ImageFormat::WebP);

    let processed = process(&upload, ContentType::WebP).await.unwrap();

    let served = &processed.served;
    assert!(!has_gps(served) && !contains(served, b"EXIF") && !contains(served, b"XMP "));
    assert_eq!(
        served[20] & (0x08 | 0x04),
        0,
        "VP8X still announces metadata"
    );
    assert_eq!(
        u32::from_le_bytes(served[4..8].try_into().unwrap()) as usize,
        served.len() - 8
    );
    assert_eq!(decode(served, ImageFormat::WebP).dimensions(), (80, 60));
    assert_clean_thumbnail(&processed.small, 80, 60);
}

#[tokio::test]
async fn a_gif_loses_its_comment_and_keeps_its_frames_in_the_served_copy() {
    let upload = gif_with_comment(30, 20);
    assert!(contains(&upload, b"where we are"));
    let processed = process(&upload, ContentType::Gif).await.unwrap();
    assert!(!contains(&processed.served, b"where we are"));
    assert_eq!(processed.served.len(), upload.len() - 16);
    let frames = image::AnimationDecoder::into_frames(
        image::codecs::gif::GifDecoder::new(std::io::Cursor::new(&processed.served)).unwrap(),
    );
    assert_eq!(frames.count(), 2);
    // The thumbnail is the first frame: red.
    let pixel = decode(&processed.small, ImageFormat::Jpeg)
        .to_rgb8()
        .get_pixel(15, 10)
        .0;
    assert!(pixel[0] > 200 && pixel[2] < 60, "{pixel:?}");
}

#[tokio::test]
async fn a_truncated_jpeg_is_a_clear_error() {
    let whole = jpeg(64, 48);
    let error = process(&whole[..whole.len() / 2], ContentType::Jpeg)
        .await
        .unwrap_err();
    assert_unsupported(&error, "not a valid JPEG: truncated");
}

#[tokio::test]
async fn garbage_is_a_clear_error_in_every_format() {
    let garbage = b"this is not an image at all, just some words".to_vec();
    for content_type in [
        ContentType::Jpeg,
        ContentType::Png,
        ContentType::Gif,
        ContentType::WebP,
    ] {
        let error = process(&garbage, content_type).await.unwrap_err();
        assert_unsupported(&error, "not a valid");
    }
}

#[tokio::test]
async fn a_png_with_corrupt_pixel_data_is_a_clear_error() {
    let mut upload = png(DynamicImage::ImageRgb8(gradient(64, 48)));
    let idat = upload
        .windows(4)
        .position(|window| window == b"IDAT")
        .unwrap();
    for byte in &mut upload[idat + 6..idat + 40] {
        *byte = 0xAA;
    }
    let error = process(&upload, ContentType::Png).await.unwrap_err();
    assert_unsupported(&error, "could not be decoded");
}

#[tokio::test]
async fn an_image_over_the_pixel_limit_is_refused() {
    let processor = ImageCrateProcessor::new(ImageLimits {
        max_pixels: 10_000,
        ..ImageLimits::default()
    });
    let error = processor
        .process(&jpeg(200, 100), ContentType::Jpeg)
        .await
        .unwrap_err();
    assert_unsupported(&error, "200x100 pixels, over the limit of 10000 pixels");
    assert!(
        processor
            .process(&jpeg(100, 100), ContentType::Jpeg)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_decompression_bomb_is_refused_from_its_header() {
    let bomb = png_announcing(100_000, 100_000);
    assert!(bomb.len() < 100);
    let error = process(&bomb, ContentType::Png).await.unwrap_err();
    assert_unsupported(&error, "over the decoding limits");
    // Within the edge limits but over the pixel limit (16 000 x 16 000).
    let error = process(&png_announcing(16_000, 16_000), ContentType::Png)
        .await
        .unwrap_err();
    assert_unsupported(&error, "over the limit of 50000000 pixels");
}

#[tokio::test]
async fn types_the_processor_does_not_read_are_refused() {
    let error = process(&jpeg(8, 8), ContentType::Heic).await.unwrap_err();
    assert_unsupported(&error, "image/heic");
}

#[tokio::test]
async fn a_webp_chunk_header_past_the_riff_end_is_refused_not_a_panic() {
    // The RIFF says 8 bytes (just "WEBP"), yet a chunk header follows it.
    let mut upload = b"RIFF".to_vec();
    upload.extend_from_slice(&8u32.to_le_bytes());
    upload.extend_from_slice(b"WEBP");
    upload.extend_from_slice(b"VP8 ");
    upload.extend_from_slice(&0u32.to_le_bytes());
    let error = process(&upload, ContentType::WebP).await.unwrap_err();
    assert_unsupported(&error, "truncated");
}
