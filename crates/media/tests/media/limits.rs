//! Dimensions and thumbnail sizes, and files that claim more pixels than may be decoded.

use image::{GenericImageView, ImageFormat, RgbImage};
use media::{process, MediaError, THUMB_PX_MAX};

use crate::files::*;

#[test]
fn a_large_image_gets_a_thumbnail_that_fits() {
    let png = encode(RgbImage::new(2000, 1000), ImageFormat::Png);
    let processed = process("image/png", &png, true).unwrap();
    assert_eq!(
        (processed.width, processed.height),
        (Some(2000), Some(1000))
    );
    let thumb = processed.thumb.unwrap();
    assert_eq!(media::sniff(&thumb), Some("image/jpeg"));
    assert_eq!(decode(&thumb).dimensions(), (THUMB_PX_MAX, 160));
}

#[test]
fn a_small_image_is_not_upscaled() {
    let png = encode(RgbImage::new(100, 50), ImageFormat::Png);
    let thumb = process("image/png", &png, true).unwrap().thumb.unwrap();
    assert_eq!(decode(&thumb).dimensions(), (100, 50));
}

/// A valid 1×1 PNG whose header claims `width`×`height`, with a correct CRC.
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut png = encode(RgbImage::new(1, 1), ImageFormat::Png);
    png[16..20].copy_from_slice(&width.to_be_bytes());
    png[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

#[test]
fn a_decompression_bomb_is_refused_before_it_is_decoded() {
    // Beyond the width and height limit, and within it but beyond the memory limit.
    for (width, height) in [(100_000, 100_000), (19_000, 19_000), (20_001, 1)] {
        // Refused from the header alone: nothing is allocated or decoded.
        let result = process("image/png", &png_claiming(width, height), true);
        assert_eq!(result, Err(MediaError::TooLarge), "{width}×{height}");
    }
}

#[test]
fn a_gif_claiming_a_huge_screen_is_refused() {
    let mut gif = Vec::new();
    {
        let mut encoder = image::codecs::gif::GifEncoder::new(&mut gif);
        encoder
            .encode(&[0, 0, 0, 255], 1, 1, image::ExtendedColorType::Rgba8)
            .unwrap();
    }
    gif[6..10].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]); // logical screen 65535×65535
    assert_eq!(process("image/gif", &gif, true), Err(MediaError::TooLarge));
}

#[test]
fn content_behind_an_image_signature_that_is_not_an_image_is_undecodable() {
    let mut fake = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    fake.extend(b"<html><script>alert(1)</script></html>");
    assert!(matches!(
        process("image/png", &fake, true),
        Err(MediaError::Undecodable(_))
    ));
    assert!(matches!(
        process("image/png", &fake, false),
        Err(MediaError::Undecodable(_))
    ));
}
