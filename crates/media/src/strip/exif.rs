//! Just enough EXIF to keep a photo's orientation: read the tag from an original EXIF block and
//! write a block that holds nothing else.

use image::metadata::Orientation;

/// The prefix of EXIF data inside a JPEG APP1 segment (and, from some writers, a WebP EXIF chunk)
/// before the TIFF structure starts.
pub(super) const JPEG_EXIF_PREFIX: &[u8] = b"Exif\0\0";

/// The orientation tag's value (2–8) of a TIFF-structured EXIF block when the image is displayed
/// transformed; `None` when it is upright (1), has no tag, or the block is unreadable: then there
/// is nothing worth keeping.
pub(super) fn orientation_to_keep(tiff: &[u8]) -> Option<u8> {
    let tiff = tiff.strip_prefix(JPEG_EXIF_PREFIX).unwrap_or(tiff);
    Orientation::from_exif_chunk(tiff)
        .map(Orientation::to_exif)
        .filter(|&value| value != 1)
}

/// Bytes of [`orientation_only_tiff`]: header (8) + entry count (2) + one entry (12) + offset of
/// the next IFD (4).
const ORIENTATION_TIFF_BYTES: usize = 26;

/// A TIFF structure whose only IFD holds one entry: orientation (tag 0x0112, type SHORT, count 1)
/// = `value`. Big-endian, like most cameras write it.
pub(super) fn orientation_only_tiff(value: u8) -> Vec<u8> {
    let mut tiff = Vec::with_capacity(ORIENTATION_TIFF_BYTES);
    tiff.extend_from_slice(b"MM\0\x2A"); // byte order, TIFF magic 42
    tiff.extend_from_slice(&8u32.to_be_bytes()); // IFD0 right after the header
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // orientation
    tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_be_bytes()); // one value
    tiff.extend_from_slice(&u16::from(value).to_be_bytes()); // the value, left-aligned in 4 bytes
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    debug_assert_eq!(tiff.len(), ORIENTATION_TIFF_BYTES);
    tiff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_orientation_only_block_reads_back() {
        for value in 1..=8 {
            let tiff = orientation_only_tiff(value);
            assert_eq!(
                Orientation::from_exif_chunk(&tiff).map(Orientation::to_exif),
                Some(value)
            );
        }
    }

    #[test]
    fn upright_and_unreadable_blocks_keep_nothing() {
        assert_eq!(orientation_to_keep(&orientation_only_tiff(1)), None);
        assert_eq!(orientation_to_keep(b"not a tiff"), None);
        assert_eq!(orientation_to_keep(&orientation_only_tiff(6)), Some(6));
        let mut prefixed = JPEG_EXIF_PREFIX.to_vec();
        prefixed.extend(orientation_only_tiff(8));
        assert_eq!(orientation_to_keep(&prefixed), Some(8));
    }
}
