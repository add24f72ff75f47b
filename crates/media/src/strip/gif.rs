//! GIF: the blocks are walked from the header to the trailer and copied whole, except comment
//! extensions and XMP's application extension ("XMP DataXMP"). NETSCAPE looping, graphic control
//! and plain-text extensions stay: they say how the animation plays.

use super::malformed;
use crate::MediaError;

/// Signature and version, then the logical screen descriptor.
const HEADER_BYTES: usize = 6 + 7;
const EXTENSION: u8 = 0x21;
const IMAGE_DESCRIPTOR: u8 = 0x2C;
const TRAILER: u8 = 0x3B;
const COMMENT_LABEL: u8 = 0xFE;
const APPLICATION_LABEL: u8 = 0xFF;
/// An application extension's first sub-block: its size (11), identifier and authentication code.
const XMP_APPLICATION: &[u8] = b"\x0BXMP DataXMP";
/// The image descriptor's bytes after its separator.
const IMAGE_DESCRIPTOR_BYTES: usize = 9;

fn broken(what: impl std::fmt::Display) -> MediaError {
    malformed("GIF", what)
}

/// Copies `bytes` without its comment and XMP extensions.
pub(super) fn strip(bytes: &[u8]) -> Result<Vec<u8>, MediaError> {
    let header = bytes
        .get(..HEADER_BYTES)
        .ok_or_else(|| broken("ends inside its header"))?;
    let global_table_end = HEADER_BYTES + colour_table_bytes(header[10]);
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(
        bytes
            .get(..global_table_end)
            .ok_or_else(|| broken("ends inside its colour table"))?,
    );
    let mut pos = global_table_end;
    loop {
        let start = pos;
        match bytes.get(pos) {
            None => return Err(broken("ends before its trailer")),
            Some(&TRAILER) => {
                out.push(TRAILER);
                return Ok(out);
            }
            Some(&EXTENSION) => {
                let label = *bytes
                    .get(pos + 1)
                    .ok_or_else(|| broken("ends inside an extension"))?;
                pos = skip_sub_blocks(bytes, pos + 2)?;
                let first_block = &bytes[start + 2..pos];
                let metadata = label == COMMENT_LABEL
                    || (label == APPLICATION_LABEL && first_block.starts_with(XMP_APPLICATION));
                if !metadata {
                    out.extend_from_slice(&bytes[start..pos]);
                }
            }
            Some(&IMAGE_DESCRIPTOR) => {
                let packed = *bytes
                    .get(pos + IMAGE_DESCRIPTOR_BYTES)
                    .ok_or_else(|| broken("ends inside an image descriptor"))?;
                // Then the local colour table and the LZW minimum code size byte.
                pos += 1 + IMAGE_DESCRIPTOR_BYTES + colour_table_bytes(packed) + 1;
                pos = skip_sub_blocks(bytes, pos)?;
                out.extend_from_slice(&bytes[start..pos]);
            }
            Some(other) => {
                return Err(broken(format_args!(
                    "unknown block 0x{other:02X} at byte {pos}"
                )))
            }
        }
    }
}

/// Bytes of the colour table announced by a packed field (global or local): none when its top
/// bit is clear, else 3 × 2^(n+1) for its low three bits n.
fn colour_table_bytes(packed: u8) -> usize {
    if packed & 0x80 == 0 {
        0
    } else {
        3 << ((packed & 0x07) + 1)
    }
}

/// Skips a sequence of data sub-blocks (a size byte, then that many bytes) up to and including
/// its terminator (size 0), returning the position after it.
fn skip_sub_blocks(bytes: &[u8], mut pos: usize) -> Result<usize, MediaError> {
    loop {
        let size = *bytes
            .get(pos)
            .ok_or_else(|| broken("ends inside a block's data"))? as usize;
        pos += 1;
        if size == 0 {
            return Ok(pos);
        }
        pos += size;
    }
}
