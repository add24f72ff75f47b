//! WebP: the RIFF container's chunks are copied whole except EXIF and XMP; the VP8X header's
//! flags that announce them are cleared and the RIFF size is set to what remains. A rotated
//! image's EXIF is replaced by one that holds only the orientation (and its flag stays set).

use super::exif::{orientation_only_tiff, orientation_to_keep};
use super::malformed;
use crate::MediaError;

/// "RIFF", the size of what follows, "WEBP".
const HEADER_BYTES: usize = 12;
/// Four-character code and size before each chunk's data.
const CHUNK_HEADER_BYTES: usize = 8;
/// Bits of the first byte of VP8X's data (WebP container specification).
const VP8X_EXIF_FLAG: u8 = 0x08;
const VP8X_XMP_FLAG: u8 = 0x04;

fn broken(what: impl std::fmt::Display) -> MediaError {
    malformed("WebP", what)
}

/// Copies `bytes` without its metadata chunks.
pub(super) fn strip(bytes: &[u8]) -> Result<Vec<u8>, MediaError> {
    let header = bytes
        .get(..HEADER_BYTES)
        .filter(|h| h.starts_with(b"RIFF") && &h[8..] == b"WEBP")
        .ok_or_else(|| broken("no RIFF WEBP header"))?;
    let riff_end = 8 + u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
    if riff_end > bytes.len() {
        return Err(broken("its RIFF size runs past the end"));
    }
    let mut out = Vec::with_capacity(riff_end);
    out.extend_from_slice(header);
    let mut vp8x_flags_at = None;
    let mut exif_seen = false;
    let mut exif_kept = false;
    let mut pos = HEADER_BYTES;
    while pos < riff_end {
        let chunk_header = bytes
            .get(pos..pos + CHUNK_HEADER_BYTES)
            .filter(|_| pos + CHUNK_HEADER_BYTES <= riff_end)
            .ok_or_else(|| broken("a chunk header runs past the RIFF size"))?;
        let fourcc: [u8; 4] = [
            chunk_header[0],
            chunk_header[1],
            chunk_header[2],
            chunk_header[3],
        ];
        let name = String::from_utf8_lossy(&fourcc);
        let size = u32::from_le_bytes([
            chunk_header[4],
            chunk_header[5],
            chunk_header[6],
            chunk_header[7],
        ]) as usize;
        // Chunks are padded to an even size; the pad byte is not counted in `size`.
        let end = pos + CHUNK_HEADER_BYTES + size + (size & 1);
        if end > riff_end {
            return Err(broken(format_args!("chunk {name} runs past the RIFF size")));
        }
        let chunk = &bytes[pos..end];
        let data = &chunk[CHUNK_HEADER_BYTES..CHUNK_HEADER_BYTES + size];
        match &fourcc {
            b"VP8X" => {
                if size < 1 {
                    return Err(broken("an empty VP8X chunk"));
                }
                vp8x_flags_at = Some(out.len() + CHUNK_HEADER_BYTES);
                out.extend_from_slice(chunk);
            }
            b"EXIF" => {
                // Decoders read the first EXIF chunk; later ones are dropped like any metadata.
                let first = !exif_seen;
                exif_seen = true;
                if let Some(value) = orientation_to_keep(data).filter(|_| first) {
                    let tiff = orientation_only_tiff(value);
                    out.extend_from_slice(b"EXIF");
                    let length = u32::try_from(tiff.len()).expect("a few dozen bytes");
                    out.extend_from_slice(&length.to_le_bytes());
                    out.extend_from_slice(&tiff);
                    debug_assert!(tiff.len().is_multiple_of(2), "needs no pad byte");
                    exif_kept = true;
                }
            }
            b"XMP " => {}
            _ => out.extend_from_slice(chunk),
        }
        pos = end;
    }
    if let Some(at) = vp8x_flags_at {
        out[at] &= !VP8X_XMP_FLAG;
        if !exif_kept {
            out[at] &= !VP8X_EXIF_FLAG;
        }
    }
    let riff_size = u32::try_from(out.len() - 8).expect("never larger than the input's RIFF size");
    out[4..8].copy_from_slice(&riff_size.to_le_bytes());
    Ok(out)
}
