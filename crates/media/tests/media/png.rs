//! PNG: text, time and EXIF chunks are removed; every other chunk is copied whole.

use image::metadata::Orientation;
use image::{GenericImageView, ImageFormat};
use media::{process, MediaError};

use crate::files::*;

fn png_with_metadata(orientation: u16) -> (Vec<u8>, Vec<u8>) {
    let plain = encode(half_transparent(40, 30), ImageFormat::Png);
    let mut itxt = b"XML:com.adobe.xmp\0\0\0\0\0".to_vec();
    itxt.extend(XMP_PACKET);
    let tagged = png_with_chunks_after_ihdr(
        &plain,
        &[
            png_chunk(b"eXIf", &exif_with_gps(orientation)),
            png_chunk(b"tEXt", b"Comment\0taken at GPS 52.52N"),
            png_chunk(b"zTXt", b"Author\0\0x\x9c\x03\0\0\0\0\x01"),
            png_chunk(b"iTXt", &itxt),
            png_chunk(b"tIME", &[0x07, 0xE9, 1, 2, 3, 4, 5]),
        ],
    );
    (plain, tagged)
}

#[test]
fn text_time_and_exif_chunks_are_removed_and_the_pixels_stay() {
    let (plain, tagged) = png_with_metadata(1);
    let processed = process("image/png", &tagged, true).unwrap();
    let stored = processed.replaced.expect("metadata was removed");
    let kinds = png_chunk_kinds(&stored);
    for kind in ["eXIf", "tEXt", "zTXt", "iTXt", "tIME"] {
        assert!(
            !kinds.iter().any(|k| k == kind),
            "{kind} remains in {kinds:?}"
        );
    }
    assert_eq!(stored, plain);
    assert_eq!(decode(&stored).to_rgba8(), half_transparent(40, 30));
    assert_eq!((processed.width, processed.height), (Some(40), Some(30)));
}

#[test]
fn a_rotated_png_keeps_only_its_orientation() {
    let (_, tagged) = png_with_metadata(8);
    assert_eq!(orientation_of(&tagged), Orientation::Rotate270);
    let processed = process("image/png", &tagged, true).unwrap();
    let stored = processed.replaced.unwrap();
    assert!(!contains(&stored, MAKER));
    assert!(!contains(&stored, &latitude_bytes()));
    assert_eq!(count(&stored, b"eXIf"), 1);
    assert_eq!(orientation_of(&stored), Orientation::Rotate270);
    assert_eq!(decode(&stored).dimensions(), (40, 30));
    assert_eq!((processed.width, processed.height), (Some(30), Some(40)));
}

#[test]
fn a_png_without_metadata_is_left_unchanged_and_bytes_after_iend_are_dropped() {
    let plain = encode(half_transparent(8, 8), ImageFormat::Png);
    assert_eq!(process("image/png", &plain, true).unwrap().replaced, None);
    let mut appended = plain.clone();
    appended.extend(b"<script>alert(1)</script>");
    assert_eq!(
        process("image/png", &appended, true).unwrap().replaced,
        Some(plain)
    );
}

#[test]
fn transparency_is_flattened_on_white_in_the_thumbnail() {
    let plain = encode(half_transparent(40, 30), ImageFormat::Png);
    let thumb = decode(&process("image/png", &plain, true).unwrap().thumb.unwrap()).to_rgb8();
    let top = thumb.get_pixel(20, 3).0;
    assert!(
        top.iter().all(|&c| c > 240),
        "transparent became white: {top:?}"
    );
    let bottom = thumb.get_pixel(1, 27).0;
    assert!(
        bottom[0] < 60 && bottom[2] > 200,
        "opaque stays as it was: {bottom:?}"
    );
}

#[test]
fn a_truncated_png_is_undecodable() {
    let plain = encode(half_transparent(40, 30), ImageFormat::Png);
    for cut in [plain.len() - 1, plain.len() / 2, 20] {
        let result = process("image/png", &plain[..cut], true);
        assert!(
            matches!(result, Err(MediaError::Undecodable(_))),
            "cut at {cut}: {result:?}"
        );
    }
}
