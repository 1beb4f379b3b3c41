//! WebP: a RIFF container of chunks. Kept: VP8X (with its EXIF and XMP flags
//! cleared), ICCP, ANIM, ANMF, ALPH, VP8 and VP8L. Dropped: EXIF, XMP and
//! unknown chunks, and anything past the RIFF length. An orientation comes
//! back as an `EXIF` chunk holding that tag only, at the end as the format
//! wants it.

use super::{Stripped, take};
use crate::ImageFailure;
use crate::exif;

const FORMAT: &str = "WebP";
const KEPT: [&[u8; 4]; 7] = [
    b"VP8X", b"ICCP", b"ANIM", b"ANMF", b"ALPH", b"VP8 ", b"VP8L",
];
const FLAG_EXIF: u8 = 0x08;
const FLAG_XMP: u8 = 0x04;

fn malformed(reason: &'static str) -> ImageFailure {
    ImageFailure::Malformed {
        format: FORMAT,
        reason,
    }
}

pub(super) fn strip(bytes: &[u8]) -> Result<Stripped, ImageFailure> {
    let header = take(bytes, 0, 12, FORMAT)?;
    if &header[0..4] != b"RIFF" || &header[8..12] != b"WEBP" {
        return Err(malformed("no RIFF WEBP header"));
    }
    let riff_len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let riff_end = usize::try_from(riff_len)
        .ok()
        .and_then(|len| len.checked_add(8))
        .ok_or_else(|| malformed("RIFF too long"))?;
    if riff_end > bytes.len() {
        return Err(malformed("truncated"));
    }
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(header);
    let mut orientation = None;
    let mut extended_at = None;
    let mut pos = 12;
    while pos < riff_end {
        // Within the RIFF: a chunk header that starts too close to its end is
        // truncated (bytes after the RIFF are not the image's).
        let chunk_header = take(&bytes[..riff_end], pos, 8, FORMAT)?;
        let kind: [u8; 4] = [
            chunk_header[0],
            chunk_header[1],
            chunk_header[2],
            chunk_header[3],
        ];
        let size = u32::from_le_bytes([
            chunk_header[4],
            chunk_header[5],
            chunk_header[6],
            chunk_header[7],
        ]);
        let size = usize::try_from(size).map_err(|_| malformed("chunk too long"))?;
        // Chunks are padded to an even length; a missing final pad byte is tolerated.
        let padded = size + (size & 1);
        let available = riff_end - pos - 8;
        if size > available {
            return Err(malformed("truncated"));
        }
        let chunk = &bytes[pos..pos + 8 + padded.min(available)];
        pos += chunk.len();
        if &kind == b"EXIF" {
            orientation = orientation.or_else(|| exif::read_orientation(&chunk[8..8 + size]));
        }
        if KEPT.contains(&&kind) {
            if &kind == b"VP8X" {
                // Its flags byte is the chunk's first: a shorter chunk would
                // make the flags below land on the next chunk's name.
                if size < 10 {
                    return Err(malformed("VP8X chunk too short"));
                }
                extended_at = Some(out.len());
            }
            out.extend_from_slice(chunk);
        }
    }
    if let Some(at) = extended_at {
        let flags = out.get_mut(at + 8).ok_or_else(|| malformed("truncated"))?;
        *flags &= !(FLAG_EXIF | FLAG_XMP);
        if orientation.is_some() {
            *flags |= FLAG_EXIF;
        }
    } else {
        // Only the extended format can carry EXIF; a simple file never had any.
        orientation = None;
    }
    if let Some(orientation) = orientation {
        let tiff = exif::orientation_only(orientation);
        out.extend_from_slice(b"EXIF");
        out.extend_from_slice(
            &u32::try_from(tiff.len())
                .expect("a 26-byte block fits")
                .to_le_bytes(),
        );
        out.extend_from_slice(&tiff);
    }
    let riff_len = u32::try_from(out.len() - 8).map_err(|_| malformed("RIFF too long"))?;
    out[4..8].copy_from_slice(&riff_len.to_le_bytes());
    Ok(Stripped {
        bytes: out,
        orientation,
    })
}
