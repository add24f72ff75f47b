//! File handling for chat attachments (`docs/protocol.md` §14.1), pure and without IO: the server
//! hands it the bytes of a finished upload and stores what it returns.
//!
//! # Layout
//! - [`sniff`](sniff()) and [`is_inline_image`]: the type of a file from its content alone, and
//!   whether a browser may show it inline.
//! - [`process`]: for an image, lossless metadata removal (the `strip` module, one file per
//!   format), then its size as displayed and a JPEG thumbnail (the `thumb` module).
//!
//! **Invariant:** image pixels are never re-encoded: metadata removal copies the original
//! segments or chunks whole and only leaves some out, so a stored photo loses no quality.

mod sniff;
mod strip;
mod thumb;

pub use sniff::{is_inline_image, sniff, SNIFF_BYTES};

/// Longest side of a thumbnail, in pixels. 320 fills a chat bubble on a phone at 2× density
/// while a thumbnail stays a few tens of KiB.
pub const THUMB_PX_MAX: u32 = 320;

/// What the server stores for an upload after [`process`]. For anything but an image every field
/// is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Processed {
    /// The content to store instead of the upload, when metadata was removed; `None` when the
    /// upload is stored as it came (nothing to remove, or removal was not asked for). The server
    /// computes size and SHA-256 of what it stores, so it needs to know which bytes those are.
    pub replaced: Option<Vec<u8>>,
    /// Width in pixels after applying the EXIF orientation, i.e. as displayed, for images: a
    /// device lays out the space for a photo before it has loaded it.
    pub width: Option<u32>,
    /// Height in pixels after applying the EXIF orientation, i.e. as displayed, for images.
    pub height: Option<u32>,
    /// A JPEG thumbnail at most [`THUMB_PX_MAX`] on its longer side (never upscaled), orientation
    /// applied and transparency flattened on white, for images: lists of messages show it
    /// instead of downloading the whole file.
    pub thumb: Option<Vec<u8>>,
}

/// Why an upload whose content says "image" cannot be processed. The server refuses such an
/// upload rather than storing a file it could not vouch for.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MediaError {
    /// The content starts like an image but its structure is broken or it does not decode
    /// (truncated, corrupt, or a disguised file behind a valid signature). The text says where.
    #[error("the image does not decode: {0}")]
    Undecodable(String),
    /// The image's dimensions or decoded size are beyond the limits (see the `thumb` module): a
    /// small file can claim a huge canvas (a decompression bomb), and decoding it would take more
    /// memory than one upload may.
    #[error("the image is too large to decode")]
    TooLarge,
}

/// Processes an upload whose type [`sniff`](sniff()) found. For an image type: removes its
/// metadata when `strip` is set (EXIF with GPS position, XMP, IPTC, comments, text chunks; the
/// orientation is kept so photos stay upright), reads its dimensions as displayed and makes its
/// thumbnail, all from the bytes that will be stored. For other types (PDF) there is nothing to
/// do: `Ok` with every field `None`.
pub fn process(mime: &str, bytes: &[u8], strip: bool) -> Result<Processed, MediaError> {
    // The types shown inline are exactly the image types this crate decodes.
    if !is_inline_image(mime) {
        return Ok(Processed::default());
    }
    let replaced = if strip {
        strip::strip(mime, bytes)?
    } else {
        None
    };
    // Decode what will be stored, not the upload: dimensions and thumbnail then describe the
    // stored file, and a removal that broke the file is caught here.
    let stored = replaced.as_deref().unwrap_or(bytes);
    let decoded = thumb::decode(mime, stored)?;
    Ok(Processed {
        replaced,
        width: Some(decoded.width),
        height: Some(decoded.height),
        thumb: Some(decoded.thumb_jpeg),
    })
}
