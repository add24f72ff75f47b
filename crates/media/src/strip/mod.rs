//! Lossless metadata removal: each format's container is walked and its segments or chunks are
//! copied whole, except those that carry metadata. Pixels are never decoded or re-encoded here.
//!
//! A photo's orientation lives in its EXIF; phones rotate by tag, not by pixels. Where the
//! original says "rotated", a minimal EXIF with only that tag takes the place of the original, so
//! a photo is still displayed upright ([`exif`]).
//!
//! Bytes after the format's end marker (JPEG EOI, PNG IEND, GIF trailer, the RIFF size) are
//! dropped too: no viewer reads them, and they can carry anything (a second image with its own
//! EXIF, an appended archive).

mod exif;
mod gif;
mod jpeg;
mod png;
mod webp;

use crate::MediaError;

/// Removes the metadata of an image of type `mime`. `Ok(None)` when the result would be the same
/// bytes (nothing to remove) or for a type without a remover.
pub(crate) fn strip(mime: &str, bytes: &[u8]) -> Result<Option<Vec<u8>>, MediaError> {
    let stripped = match mime {
        "image/jpeg" => jpeg::strip(bytes)?,
        "image/png" => png::strip(bytes)?,
        "image/webp" => webp::strip(bytes)?,
        "image/gif" => gif::strip(bytes)?,
        _ => return Ok(None),
    };
    // Comparing the result is simpler and surer than tracking every place a remover might
    // change something (e.g. an orientation-only EXIF replaced by an identical one).
    Ok((stripped != bytes).then_some(stripped))
}

/// The error for a container whose structure is broken: `what` says where.
fn malformed(format: &str, what: impl std::fmt::Display) -> MediaError {
    MediaError::Undecodable(format!("{format}: {what}"))
}
