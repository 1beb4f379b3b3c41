//! The one EXIF block ieum writes: a TIFF header and IFD0 holding the
//! orientation tag and nothing else.

use image::metadata::Orientation;

/// A big-endian TIFF structure: header, IFD0 with one SHORT entry (0x0112),
/// no next IFD. 26 bytes; what JPEG's APP1 (after `Exif\0\0`) and WebP's
/// `EXIF` chunk hold.
pub(crate) fn orientation_only(orientation: Orientation) -> Vec<u8> {
    let mut tiff = Vec::with_capacity(26);
    tiff.extend_from_slice(b"MM\x00\x2a");
    tiff.extend_from_slice(&8u32.to_be_bytes());
    tiff.extend_from_slice(&1u16.to_be_bytes());
    tiff.extend_from_slice(&0x0112u16.to_be_bytes());
    tiff.extend_from_slice(&3u16.to_be_bytes());
    tiff.extend_from_slice(&1u32.to_be_bytes());
    tiff.extend_from_slice(&u16::from(orientation.to_exif()).to_be_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0u32.to_be_bytes());
    tiff
}

/// The orientation an EXIF block asks for; `None` when it has none or an
/// unreadable one. Accepts the block with or without JPEG's `Exif\0\0`
/// prefix (some PNG writers keep it in `eXIf`).
pub(crate) fn read_orientation(block: &[u8]) -> Option<Orientation> {
    let tiff = block.strip_prefix(b"Exif\0\0").unwrap_or(block);
    Orientation::from_exif_chunk(tiff).filter(|found| *found != Orientation::NoTransforms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_block_reads_back_as_its_orientation() {
        for orientation in [
            Orientation::Rotate90,
            Orientation::FlipHorizontal,
            Orientation::Rotate270FlipH,
        ] {
            assert_eq!(
                read_orientation(&orientation_only(orientation)),
                Some(orientation)
            );
        }
        assert_eq!(
            read_orientation(&orientation_only(Orientation::NoTransforms)),
            None
        );
    }
}
