//! GIF: header, screen descriptor, colour table, then extensions and images
//! up to the trailer. Kept: images, graphic control (timing, transparency),
//! plain text (drawn content) and the looping application extension.
//! Dropped: comments, every other application extension (XMP lives in one)
//! and anything after the trailer. GIF has no orientation.

use super::{Stripped, take};
use crate::ImageFailure;

const FORMAT: &str = "GIF";
const EXTENSION: u8 = 0x21;
const IMAGE: u8 = 0x2C;
const TRAILER: u8 = 0x3B;
const GRAPHIC_CONTROL: u8 = 0xF9;
const PLAIN_TEXT: u8 = 0x01;
const APPLICATION: u8 = 0xFF;

fn malformed(reason: &'static str) -> ImageFailure {
    ImageFailure::Malformed {
        format: FORMAT,
        reason,
    }
}

pub(super) fn strip(bytes: &[u8]) -> Result<Stripped, ImageFailure> {
    if !(bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a")) {
        return Err(malformed("no GIF header"));
    }
    let screen = take(bytes, 6, 7, FORMAT)?;
    let mut pos = 13 + colour_table_len(screen[4]);
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(take(bytes, 0, pos, FORMAT)?);
    loop {
        let introducer = *bytes.get(pos).ok_or_else(|| malformed("truncated"))?;
        let start = pos;
        let keep = match introducer {
            TRAILER => {
                out.push(TRAILER);
                break;
            }
            EXTENSION => {
                let label = *bytes.get(pos + 1).ok_or_else(|| malformed("truncated"))?;
                pos += 2;
                let first_block = bytes.get(pos..).unwrap_or_default();
                let keep = match label {
                    GRAPHIC_CONTROL | PLAIN_TEXT => true,
                    APPLICATION => {
                        first_block.starts_with(b"\x0bNETSCAPE2.0")
                            || first_block.starts_with(b"\x0bANIMEXTS1.0")
                    }
                    _ => false,
                };
                pos = sub_blocks_end(bytes, pos)?;
                keep
            }
            IMAGE => {
                let descriptor = take(bytes, pos, 10, FORMAT)?;
                pos += 10 + colour_table_len(descriptor[9]);
                // The LZW minimum code size, then the data sub-blocks.
                pos = sub_blocks_end(bytes, pos + 1)?;
                true
            }
            _ => return Err(malformed("unknown block")),
        };
        if keep {
            out.extend_from_slice(take(bytes, start, pos - start, FORMAT)?);
        }
    }
    Ok(Stripped {
        bytes: out,
        orientation: None,
    })
}

/// Bytes of the colour table a packed field announces (none without its flag).
fn colour_table_len(packed: u8) -> usize {
    if packed & 0x80 == 0 {
        0
    } else {
        3 << ((packed & 0x07) + 1)
    }
}

/// The offset just past a chain of sub-blocks (each a length byte and that
/// many bytes) ended by a zero length.
fn sub_blocks_end(bytes: &[u8], mut pos: usize) -> Result<usize, ImageFailure> {
    loop {
        let size = usize::from(*bytes.get(pos).ok_or_else(|| malformed("truncated"))?);
        pos += 1;
        if size == 0 {
            return Ok(pos);
        }
        take(bytes, pos, size, FORMAT)?;
        pos += size;
    }
}
