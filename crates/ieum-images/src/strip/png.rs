//! PNG: a signature and chunks. Kept: the critical chunks, transparency,
//! colour (gAMA, cHRM, sRGB, iCCP, sBIT, cICP, mDCV, cLLI), background,
//! pixel size and APNG's animation chunks. Dropped: text (tEXt, zTXt, iTXt),
//! eXIf, tIME and any chunk not on the list, and anything after IEND.

use super::{Stripped, take};
use crate::ImageFailure;
use crate::exif;

const FORMAT: &str = "PNG";
const SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";
const KEPT: [&[u8; 4]; 17] = [
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT",
    b"cICP", b"mDCV", b"cLLI", b"bKGD", b"pHYs", b"acTL", b"fcTL",
];
const ANIMATION_DATA: &[u8; 4] = b"fdAT";

pub(super) fn strip(bytes: &[u8]) -> Result<Stripped, ImageFailure> {
    if !bytes.starts_with(SIGNATURE) {
        return Err(ImageFailure::Malformed {
            format: FORMAT,
            reason: "no PNG signature",
        });
    }
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(SIGNATURE);
    let mut orientation = None;
    let mut pos = SIGNATURE.len();
    loop {
        let header = take(bytes, pos, 8, FORMAT)?;
        let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let kind: [u8; 4] = [header[4], header[5], header[6], header[7]];
        let length = usize::try_from(length).map_err(|_| ImageFailure::Malformed {
            format: FORMAT,
            reason: "chunk too long",
        })?;
        // Length, type, data, CRC.
        let chunk = take(bytes, pos, 12 + length, FORMAT)?;
        pos += chunk.len();
        if &kind == b"eXIf" {
            orientation = orientation.or_else(|| exif::read_orientation(&chunk[8..8 + length]));
        }
        if KEPT.contains(&&kind) || &kind == ANIMATION_DATA {
            out.extend_from_slice(chunk);
        }
        if &kind == b"IEND" {
            break;
        }
    }
    Ok(Stripped {
        bytes: out,
        orientation,
    })
}
