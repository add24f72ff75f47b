//! WebP: EXIF and XMP chunks are removed from the extended (VP8X) format, its flags and the RIFF
//! size follow.

use image::codecs::webp::WebPEncoder;
use image::metadata::Orientation;
use image::{ExtendedColorType, GenericImageView};
use media::process;

use crate::files::*;

const EXIF_FLAG: u8 = 0x08;
const XMP_FLAG: u8 = 0x04;

/// A lossless 30×20 WebP rewrapped in the extended format with EXIF (GPS) and XMP after the
/// image data, where the container specification puts them.
fn webp_with_metadata(orientation: u16) -> Vec<u8> {
    let pixels = red_left_blue_right(30, 20);
    let mut simple = Vec::new();
    WebPEncoder::new_lossless(&mut simple)
        .encode(pixels.as_raw(), 30, 20, ExtendedColorType::Rgb8)
        .unwrap();
    let vp8l = &simple[12..]; // the VP8L chunk, whole
    assert_eq!(&vp8l[..4], b"VP8L");

    let mut vp8x = vec![EXIF_FLAG | XMP_FLAG, 0, 0, 0];
    vp8x.extend(&29u32.to_le_bytes()[..3]); // canvas width − 1
    vp8x.extend(&19u32.to_le_bytes()[..3]); // canvas height − 1
    let mut body = b"WEBP".to_vec();
    body.extend(riff_chunk(b"VP8X", &vp8x));
    body.extend(vp8l);
    body.extend(riff_chunk(b"EXIF", &exif_with_gps(orientation)));
    body.extend(riff_chunk(b"XMP ", XMP_PACKET));
    let mut webp = b"RIFF".to_vec();
    webp.extend((body.len() as u32).to_le_bytes());
    webp.extend(body);
    webp
}

#[test]
fn exif_and_xmp_chunks_are_removed_and_the_header_follows() {
    let tagged = webp_with_metadata(1);
    assert_eq!(
        decode(&tagged).to_rgb8(),
        red_left_blue_right(30, 20),
        "a valid input"
    );

    let processed = process("image/webp", &tagged, true).unwrap();
    let stored = processed.replaced.expect("metadata was removed");
    let chunks = webp_chunks(&stored);
    let fourccs: Vec<&str> = chunks.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(fourccs, ["VP8X", "VP8L"]);
    assert_eq!(chunks[0].1[0] & (EXIF_FLAG | XMP_FLAG), 0, "flags cleared");
    assert_eq!(
        u32::from_le_bytes(stored[4..8].try_into().unwrap()) as usize,
        stored.len() - 8,
        "RIFF size"
    );
    assert!(!contains(&stored, MAKER) && !contains(&stored, b"GPS"));
    assert_eq!(decode(&stored).to_rgb8(), red_left_blue_right(30, 20));
    assert_eq!((processed.width, processed.height), (Some(30), Some(20)));
}

#[test]
fn a_rotated_webp_keeps_only_its_orientation() {
    let tagged = webp_with_metadata(6);
    let processed = process("image/webp", &tagged, true).unwrap();
    let stored = processed.replaced.unwrap();
    let chunks = webp_chunks(&stored);
    let fourccs: Vec<&str> = chunks.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(fourccs, ["VP8X", "VP8L", "EXIF"]);
    assert_eq!(chunks[0].1[0] & (EXIF_FLAG | XMP_FLAG), EXIF_FLAG);
    assert!(!contains(&stored, MAKER) && !contains(&stored, &latitude_bytes()));
    assert_eq!(orientation_of(&stored), Orientation::Rotate90);
    assert_eq!(decode(&stored).dimensions(), (30, 20));
    assert_eq!((processed.width, processed.height), (Some(20), Some(30)));
}

#[test]
fn a_simple_webp_is_left_unchanged() {
    let mut simple = Vec::new();
    WebPEncoder::new_lossless(&mut simple)
        .encode(
            red_left_blue_right(8, 8).as_raw(),
            8,
            8,
            ExtendedColorType::Rgb8,
        )
        .unwrap();
    assert_eq!(process("image/webp", &simple, true).unwrap().replaced, None);
}

#[test]
fn a_riff_size_past_the_end_is_undecodable() {
    let mut tagged = webp_with_metadata(1);
    tagged.truncate(tagged.len() - 10);
    assert!(matches!(
        process("image/webp", &tagged, true),
        Err(media::MediaError::Undecodable(_))
    ));
}
