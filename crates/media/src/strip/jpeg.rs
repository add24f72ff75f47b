//! JPEG: the segments are walked from SOI to EOI, through every scan (progressive files have
//! several, with tables between them). APP1 (EXIF, XMP), APP13 (IPTC, Photoshop), COM and the
//! other application segments are left out; kept are JFIF's APP0, the ICC profile in APP2, Adobe's
//! APP14 (it says how to read the colours) and every non-application segment.

use super::exif::{orientation_only_tiff, orientation_to_keep, JPEG_EXIF_PREFIX};
use super::malformed;
use crate::MediaError;

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;
const APP0: u8 = 0xE0;
const APP1: u8 = 0xE1;
const APP2: u8 = 0xE2;
const APP14: u8 = 0xEE;
const APP15: u8 = 0xEF;
const COM: u8 = 0xFE;
/// Markers without a length: TEM and the restart markers RST0–RST7.
const TEM: u8 = 0x01;
const RST0: u8 = 0xD0;
const RST7: u8 = 0xD7;

fn broken(what: impl std::fmt::Display) -> MediaError {
    malformed("JPEG", what)
}

/// Copies `bytes` without its metadata segments. A rotated photo gets an APP1 with only its
/// orientation, right after SOI (or after JFIF's APP0, which must come first).
pub(super) fn strip(bytes: &[u8]) -> Result<Vec<u8>, MediaError> {
    if !bytes.starts_with(&[0xFF, SOI]) {
        return Err(broken("no start-of-image marker"));
    }
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&[0xFF, SOI]);
    let mut orientation_insert_at = out.len();
    let mut exif_seen = false;
    let mut orientation = None;
    let mut pos = 2;
    loop {
        let marker = read_marker(bytes, &mut pos)?;
        match marker {
            EOI => {
                out.extend_from_slice(&[0xFF, EOI]);
                break;
            }
            SOI => {
                return Err(broken(format_args!(
                    "a second start-of-image at byte {pos}"
                )))
            }
            TEM | RST0..=RST7 => out.extend_from_slice(&[0xFF, marker]),
            _ => {
                let segment = read_segment(bytes, &mut pos, marker)?;
                let payload = &segment[2..];
                if marker == APP1 && !exif_seen {
                    if let Some(exif) = payload.strip_prefix(JPEG_EXIF_PREFIX) {
                        // Decoders read the first EXIF segment; so do we.
                        exif_seen = true;
                        orientation = orientation_to_keep(exif);
                    }
                }
                if keeps(marker, payload) {
                    let first_kept = out.len() == 2;
                    out.extend_from_slice(&[0xFF, marker]);
                    out.extend_from_slice(segment);
                    if marker == APP0 && first_kept {
                        orientation_insert_at = out.len();
                    }
                }
                if marker == SOS {
                    copy_entropy_coded_data(bytes, &mut pos, &mut out)?;
                }
            }
        }
    }
    if let Some(value) = orientation {
        let app1 = orientation_app1(value);
        out.splice(orientation_insert_at..orientation_insert_at, app1);
    }
    Ok(out)
}

/// Whether a segment is image data or colour information rather than metadata.
fn keeps(marker: u8, payload: &[u8]) -> bool {
    match marker {
        // JFIF only: its extension (JFXX) holds a thumbnail, which may show the photo before an edit.
        APP0 => payload.starts_with(b"JFIF\0"),
        // The ICC profile only: APP2 also holds MPF, whose index points at images after EOI, and
        // those are dropped.
        APP2 => payload.starts_with(b"ICC_PROFILE\0"),
        APP14 => true,
        APP1..=APP15 | COM => false,
        _ => true,
    }
}

/// Reads a marker at `pos` (skipping fill bytes 0xFF) and moves past it.
fn read_marker(bytes: &[u8], pos: &mut usize) -> Result<u8, MediaError> {
    if bytes.get(*pos) != Some(&0xFF) {
        return Err(if *pos >= bytes.len() {
            broken("ends before its end-of-image marker")
        } else {
            broken(format_args!("expected a marker at byte {pos}"))
        });
    }
    while bytes.get(*pos) == Some(&0xFF) {
        *pos += 1;
    }
    let marker = *bytes
        .get(*pos)
        .ok_or_else(|| broken("ends inside a marker"))?;
    *pos += 1;
    Ok(marker)
}

/// The segment after a marker: its two length bytes (which count themselves) and its payload.
fn read_segment<'a>(bytes: &'a [u8], pos: &mut usize, marker: u8) -> Result<&'a [u8], MediaError> {
    let length = bytes
        .get(*pos..*pos + 2)
        .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        .ok_or_else(|| broken(format_args!("segment 0x{marker:02X} has no length")))?;
    if length < 2 {
        return Err(broken(format_args!(
            "segment 0x{marker:02X} has length {length}"
        )));
    }
    let segment = bytes
        .get(*pos..*pos + length)
        .ok_or_else(|| broken(format_args!("segment 0x{marker:02X} runs past the end")))?;
    *pos += length;
    Ok(segment)
}

/// Copies a scan's entropy-coded data, up to the next marker. In it 0xFF is followed by 0x00 (a
/// stuffed byte), a restart marker, or more 0xFF (fill); anything else is the next marker, and
/// `pos` is left on its 0xFF.
fn copy_entropy_coded_data(
    bytes: &[u8],
    pos: &mut usize,
    out: &mut Vec<u8>,
) -> Result<(), MediaError> {
    let start = *pos;
    let mut at = start;
    loop {
        let ff = bytes[at..]
            .iter()
            .position(|&b| b == 0xFF)
            .ok_or_else(|| broken("ends inside image data, before its end-of-image marker"))?;
        at += ff;
        let mut next = at + 1;
        while bytes.get(next) == Some(&0xFF) {
            next += 1;
        }
        match bytes.get(next) {
            None => {
                return Err(broken(
                    "ends inside image data, before its end-of-image marker",
                ))
            }
            Some(0x00) | Some(RST0..=RST7) => at = next + 1,
            Some(_) => break,
        }
    }
    out.extend_from_slice(&bytes[start..at]);
    *pos = at;
    Ok(())
}

/// An APP1 segment (marker included) whose EXIF holds only the orientation.
fn orientation_app1(value: u8) -> Vec<u8> {
    let tiff = orientation_only_tiff(value);
    let length = 2 + JPEG_EXIF_PREFIX.len() + tiff.len();
    let mut app1 = vec![0xFF, APP1];
    app1.extend_from_slice(
        &u16::try_from(length)
            .expect("a few dozen bytes")
            .to_be_bytes(),
    );
    app1.extend_from_slice(JPEG_EXIF_PREFIX);
    app1.extend_from_slice(&tiff);
    app1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
        let mut segment = vec![0xFF, marker];
        segment.extend((payload.len() as u16 + 2).to_be_bytes());
        segment.extend(payload);
        segment
    }

    /// A progressive file's shape: tables, a scan, more tables and a comment, a second scan.
    /// The scans' data holds a stuffed 0xFF, a restart marker and fill bytes before a marker.
    #[test]
    fn every_scan_is_walked_and_metadata_between_scans_is_dropped() {
        let scan_1_data: &[u8] = &[0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56];
        let scan_2_data: &[u8] = &[0x78, 0xFF, 0x00, 0x9A, 0xFF, 0xD7];
        let parts = |keep_metadata: bool| {
            let mut file = vec![0xFF, SOI];
            file.extend(segment(0xDB, &[0; 5])); // DQT
            file.extend(segment(SOS, &[1, 2, 3]));
            file.extend(scan_1_data);
            if keep_metadata {
                file.extend(segment(COM, b"between scans"));
                file.extend(segment(APP1, b"http://ns.adobe.com/xap/1.0/\0<x/>"));
            }
            file.extend([0xFF]); // a fill byte before the next marker
            file.extend(segment(0xC4, &[9; 4])); // DHT
            file.extend(segment(SOS, &[4, 5, 6]));
            file.extend(scan_2_data);
            file.extend([0xFF, EOI]);
            file
        };
        let mut original = parts(true);
        original.extend(b"trailing");
        let mut expected = parts(false);
        // The fill byte is not copied: markers are written without it.
        let fill_at = expected.len() - (2 + 6 + 2 + 5 + scan_2_data.len() + 2) - 1;
        assert_eq!(expected.remove(fill_at), 0xFF);
        assert_eq!(strip(&original), Ok(expected));
    }

    #[test]
    fn a_rotated_photo_without_jfif_gets_its_orientation_right_after_soi() {
        let mut exif = JPEG_EXIF_PREFIX.to_vec();
        exif.extend(orientation_only_tiff(3));
        exif.extend(b"and more tags");
        let mut original = vec![0xFF, SOI];
        original.extend(segment(APP1, &exif));
        original.extend(segment(0xDB, &[0; 5]));
        original.extend([0xFF, EOI]);
        let stripped = strip(&original).unwrap();
        let mut expected = vec![0xFF, SOI];
        expected.extend(orientation_app1(3));
        expected.extend(segment(0xDB, &[0; 5]));
        expected.extend([0xFF, EOI]);
        assert_eq!(stripped, expected);
    }
}
