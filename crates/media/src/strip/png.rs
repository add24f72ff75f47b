//! PNG: the chunks are walked from the signature to IEND and copied whole (their CRCs stay
//! valid), except eXIf, tEXt, zTXt, iTXt (XMP lives in one) and tIME. A rotated image's eXIf is
//! replaced by one that holds only the orientation.

use super::exif::{orientation_only_tiff, orientation_to_keep};
use super::malformed;
use crate::MediaError;

const SIGNATURE: &[u8] = &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
/// The PNG specification's largest chunk length (2^31 − 1).
const CHUNK_BYTES_MAX: usize = 0x7FFF_FFFF;
/// Length, type and CRC around each chunk's data.
const CHUNK_OVERHEAD_BYTES: usize = 12;

fn broken(what: impl std::fmt::Display) -> MediaError {
    malformed("PNG", what)
}

/// Copies `bytes` without its metadata chunks.
pub(super) fn strip(bytes: &[u8]) -> Result<Vec<u8>, MediaError> {
    if !bytes.starts_with(SIGNATURE) {
        return Err(broken("no PNG signature"));
    }
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(SIGNATURE);
    let mut pos = SIGNATURE.len();
    loop {
        let header = bytes
            .get(pos..pos + 8)
            .ok_or_else(|| broken("ends before its IEND chunk"))?;
        let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let kind: [u8; 4] = [header[4], header[5], header[6], header[7]];
        let name = String::from_utf8_lossy(&kind);
        if length > CHUNK_BYTES_MAX {
            return Err(broken(format_args!("chunk {name} claims {length} bytes")));
        }
        let end = pos + CHUNK_OVERHEAD_BYTES + length;
        let chunk = bytes
            .get(pos..end)
            .ok_or_else(|| broken(format_args!("chunk {name} runs past the end")))?;
        match &kind {
            b"eXIf" => {
                if let Some(value) = orientation_to_keep(&chunk[8..8 + length]) {
                    out.extend(chunk_bytes(b"eXIf", &orientation_only_tiff(value)));
                }
            }
            b"tEXt" | b"zTXt" | b"iTXt" | b"tIME" => {}
            _ => out.extend_from_slice(chunk),
        }
        pos = end;
        if &kind == b"IEND" {
            return Ok(out);
        }
    }
}

/// A whole chunk: length, type, data and the CRC over type and data.
fn chunk_bytes(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut chunk = Vec::with_capacity(CHUNK_OVERHEAD_BYTES + data.len());
    let length = u32::try_from(data.len()).expect("only small chunks are written");
    chunk.extend_from_slice(&length.to_be_bytes());
    chunk.extend_from_slice(kind);
    chunk.extend_from_slice(data);
    let crc = crc32(&chunk[4..]);
    chunk.extend_from_slice(&crc.to_be_bytes());
    chunk
}

/// CRC-32 (ISO-HDLC, as PNG uses), bit by bit: it only ever runs over a few dozen bytes.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_iend_chunk_of_every_png() {
        assert_eq!(crc32(b"IEND"), 0xAE42_6082);
    }
}
