//! JPEG: EXIF with GPS, XMP, IPTC and comments are removed without touching the pixels; a
//! rotated photo keeps its orientation.

use image::metadata::Orientation;
use image::{GenericImageView, ImageFormat};
use media::{process, MediaError, THUMB_PX_MAX};

use crate::files::*;

const APP1: u8 = 0xE1;
const APP13: u8 = 0xED;
const COM: u8 = 0xFE;

/// A 400×200 photo (red left, blue right) as a phone writes it: EXIF with orientation and GPS,
/// then XMP, IPTC and a comment.
fn phone_photo(orientation: u16) -> (Vec<u8>, Vec<u8>) {
    let plain = encode(red_left_blue_right(400, 200), ImageFormat::Jpeg);
    let mut exif = b"Exif\0\0".to_vec();
    exif.extend(exif_with_gps(orientation));
    let mut xmp = b"http://ns.adobe.com/xap/1.0/\0".to_vec();
    xmp.extend(XMP_PACKET);
    let photo = jpeg_with_segments_after_soi(
        &plain,
        &[
            jpeg_segment(APP1, &exif),
            jpeg_segment(APP1, &xmp),
            jpeg_segment(APP13, b"Photoshop 3.0\08BIM\x04\x04\0\0\0\0\0\x05GPS!!"),
            jpeg_segment(COM, b"taken at GPS 52.52N 13.40E"),
        ],
    );
    (plain, photo)
}

#[test]
fn gps_and_other_metadata_are_removed_and_the_rotation_is_kept() {
    let (_, photo) = phone_photo(6);
    assert_eq!(orientation_of(&photo), Orientation::Rotate90);

    let processed = process("image/jpeg", &photo, true).unwrap();
    let stored = processed.replaced.expect("metadata was removed");

    for leak in [
        &b"GPS"[..],
        MAKER,
        &latitude_bytes(),
        b"xmpmeta",
        b"Photoshop",
        b"taken at",
    ] {
        assert!(
            !contains(&stored, leak),
            "{:?} remains",
            String::from_utf8_lossy(leak)
        );
    }
    assert_eq!(count(&stored, b"Exif\0\0"), 1, "one orientation-only EXIF");
    assert_eq!(orientation_of(&stored), Orientation::Rotate90);
    // The orientation APP1 follows JFIF's APP0, which stays first.
    assert_eq!(&jpeg_markers_before_scan(&stored)[..2], &[0xE0, APP1]);

    // The pixels are the same: the scan data was copied, not re-encoded.
    assert_eq!(decode(&stored).to_rgb8(), decode(&photo).to_rgb8());
    assert_eq!(decode(&stored).dimensions(), (400, 200));
    assert_eq!(
        (processed.width, processed.height),
        (Some(200), Some(400)),
        "as displayed"
    );
}

#[test]
fn the_thumbnail_is_turned_as_displayed() {
    let (_, photo) = phone_photo(6);
    let processed = process("image/jpeg", &photo, true).unwrap();
    let thumb = decode(&processed.thumb.expect("a thumbnail"));
    assert_eq!(thumb.dimensions(), (THUMB_PX_MAX / 2, THUMB_PX_MAX));
    // A quarter turn clockwise puts the left (red) half on top.
    let thumb = thumb.to_rgb8();
    let top = thumb.get_pixel(80, 40).0;
    let bottom = thumb.get_pixel(80, 280).0;
    assert!(top[0] > 200 && top[2] < 60, "top is red: {top:?}");
    assert!(
        bottom[2] > 200 && bottom[0] < 60,
        "bottom is blue: {bottom:?}"
    );
}

#[test]
fn an_upright_photo_gets_no_exif_at_all() {
    let (plain, photo) = phone_photo(1);
    let stored = process("image/jpeg", &photo, true)
        .unwrap()
        .replaced
        .unwrap();
    assert!(!contains(&stored, b"Exif"));
    assert!(!contains(&stored, b"GPS"));
    assert_eq!(
        stored, plain,
        "exactly the file before the metadata was added"
    );
}

#[test]
fn without_stripping_the_upload_is_stored_as_it_came() {
    let (_, photo) = phone_photo(6);
    let processed = process("image/jpeg", &photo, false).unwrap();
    assert_eq!(processed.replaced, None);
    assert_eq!((processed.width, processed.height), (Some(200), Some(400)));
}

#[test]
fn a_jpeg_without_metadata_is_left_unchanged() {
    let plain = encode(red_left_blue_right(64, 32), ImageFormat::Jpeg);
    let processed = process("image/jpeg", &plain, true).unwrap();
    assert_eq!(processed.replaced, None);
    assert_eq!((processed.width, processed.height), (Some(64), Some(32)));
    assert_eq!(decode(&processed.thumb.unwrap()).dimensions(), (64, 32));
}

#[test]
fn bytes_after_the_end_of_image_are_dropped() {
    let plain = encode(red_left_blue_right(64, 32), ImageFormat::Jpeg);
    let mut appended = plain.clone();
    appended.extend(b"PK\x03\x04 an archive riding along");
    let stored = process("image/jpeg", &appended, true)
        .unwrap()
        .replaced
        .unwrap();
    assert_eq!(stored, plain);
}

#[test]
fn a_truncated_jpeg_is_undecodable() {
    let plain = encode(red_left_blue_right(64, 32), ImageFormat::Jpeg);
    for cut in [plain.len() - 2, plain.len() / 2, 30, 3] {
        let result = process("image/jpeg", &plain[..cut], true);
        assert!(
            matches!(result, Err(MediaError::Undecodable(_))),
            "cut at {cut}: {result:?}"
        );
    }
}

#[test]
fn a_broken_segment_length_is_undecodable() {
    let plain = encode(red_left_blue_right(16, 16), ImageFormat::Jpeg);
    let mut broken = plain.clone();
    // APP0's length, right after SOI and its marker, now points far past the end.
    broken[4..6].copy_from_slice(&0xFFF0u16.to_be_bytes());
    assert!(matches!(
        process("image/jpeg", &broken, true),
        Err(MediaError::Undecodable(_))
    ));
}
