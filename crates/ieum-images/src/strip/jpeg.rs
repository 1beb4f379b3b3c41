//! JPEG: a sequence of marker segments; after each start-of-scan, entropy
//! coded data up to the next marker. Kept: everything the decoder needs
//! (frame, tables, scans, restart intervals), JFIF's APP0, the ICC profile
//! (APP2) and Adobe's APP14 (it says how to read the colours). Dropped: APP1
//! (EXIF, XMP), APP13 (IPTC), the other APPn (maker data, MPF previews), COM,
//! and anything after EOI.

use super::{Stripped, take};
use crate::ImageFailure;
use crate::exif;

const FORMAT: &str = "JPEG";
const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;
const APP0: u8 = 0xE0;
const APP1: u8 = 0xE1;
const APP2: u8 = 0xE2;
const APP14: u8 = 0xEE;
const COM: u8 = 0xFE;

fn malformed(reason: &'static str) -> ImageFailure {
    ImageFailure::Malformed {
        format: FORMAT,
        reason,
    }
}

pub(super) fn strip(bytes: &[u8]) -> Result<Stripped, ImageFailure> {
    if !bytes.starts_with(&[0xFF, SOI]) {
        return Err(malformed("no start-of-image marker"));
    }
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&[0xFF, SOI]);
    let mut orientation = None;
    // Where an orientation-only APP1 goes: after a leading JFIF APP0, if any.
    let mut exif_at = out.len();
    let mut pos = 2;
    loop {
        if bytes.get(pos) != Some(&0xFF) {
            return Err(malformed(if pos >= bytes.len() {
                "truncated"
            } else {
                "expected a marker"
            }));
        }
        // Any number of 0xFF fill bytes may precede a marker.
        while bytes.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        let marker = *bytes.get(pos).ok_or_else(|| malformed("truncated"))?;
        pos += 1;
        match marker {
            EOI => {
                out.extend_from_slice(&[0xFF, EOI]);
                break;
            }
            // Markers without a length (TEM, stray restarts).
            0x01 | 0xD0..=0xD7 => {
                out.extend_from_slice(&[0xFF, marker]);
                continue;
            }
            0x00 | SOI => return Err(malformed("unexpected marker")),
            _ => {}
        }
        let length_bytes = take(bytes, pos, 2, FORMAT)?;
        let length = usize::from(u16::from_be_bytes([length_bytes[0], length_bytes[1]]));
        if length < 2 {
            return Err(malformed("segment length below 2"));
        }
        let segment = take(bytes, pos, length, FORMAT)?;
        let payload = &segment[2..];
        pos += length;
        let keep = match marker {
            APP0 => payload.starts_with(b"JFIF\0"),
            APP1 => {
                if let Some(tiff) = payload.strip_prefix(b"Exif\0\0") {
                    orientation = orientation.or_else(|| exif::read_orientation(tiff));
                }
                false
            }
            APP2 => payload.starts_with(b"ICC_PROFILE\0"),
            APP14 => payload.starts_with(b"Adobe"),
            0xE3..=0xED | 0xEF | COM => false,
            _ => true,
        };
        if keep {
            out.extend_from_slice(&[0xFF, marker]);
            out.extend_from_slice(segment);
            if marker == APP0 && exif_at == 2 {
                exif_at = out.len();
            }
        }
        if marker == SOS {
            let scan_end = entropy_coded_end(bytes, pos)?;
            out.extend_from_slice(&bytes[pos..scan_end]);
            pos = scan_end;
        }
    }
    if let Some(orientation) = orientation {
        let tiff = exif::orientation_only(orientation);
        let mut segment = vec![0xFF, APP1];
        let length = u16::try_from(2 + 6 + tiff.len()).expect("a 26-byte block fits");
        segment.extend_from_slice(&length.to_be_bytes());
        segment.extend_from_slice(b"Exif\0\0");
        segment.extend_from_slice(&tiff);
        out.splice(exif_at..exif_at, segment);
    }
    Ok(Stripped {
        bytes: out,
        orientation,
    })
}

/// The offset of the marker that ends the scan starting at `start`: the
/// first 0xFF not followed by 0x00 (a stuffed byte), a restart marker or
/// another 0xFF (fill).
fn entropy_coded_end(bytes: &[u8], start: usize) -> Result<usize, ImageFailure> {
    let mut index = start;
    while index + 1 < bytes.len() {
        if bytes[index] == 0xFF {
            match bytes[index + 1] {
                0x00 | 0xD0..=0xD7 => index += 2,
                0xFF => index += 1,
                _ => return Ok(index),
            }
        } else {
            index += 1;
        }
    }
    Err(malformed("truncated"))
}
