//! The type of a file comes from its first bytes; disguised files have none.

use media::{is_inline_image, process, sniff, Processed, SNIFF_BYTES};

use crate::files::{encode, red_left_blue_right};

#[test]
fn each_allowed_type_is_recognised_by_its_magic_number() {
    let png = encode(red_left_blue_right(4, 4), image::ImageFormat::Png);
    let cases: &[(&[u8], &str)] = &[
        (&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F'], "image/jpeg"),
        (&[0xFF, 0xD8, 0xFF, 0xE1], "image/jpeg"),
        (&png, "image/png"),
        (b"GIF87a\x01\0\x01\0", "image/gif"),
        (b"GIF89a\x01\0\x01\0", "image/gif"),
        (b"RIFF\x24\0\0\0WEBPVP8L", "image/webp"),
        (b"%PDF-1.7\n%\xE2\xE3", "application/pdf"),
        (
            b"%PDF-1.4\n<html><script>alert(1)</script>",
            "application/pdf",
        ),
    ];
    for (head, mime) in cases {
        assert_eq!(
            sniff(head),
            Some(*mime),
            "{:?}",
            String::from_utf8_lossy(head)
        );
    }
}

#[test]
fn disguised_and_unknown_files_are_refused() {
    let cases: &[&[u8]] = &[
        b"<!DOCTYPE html><html><body>photo</body></html>",
        b"<html><script>alert(1)</script>",
        b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>",
        b"<?xml version='1.0'?>\n<svg xmlns='http://www.w3.org/2000/svg'/>",
        b"#!/bin/sh\nrm -rf /\n",
        b"PK\x03\x04\x14\0\0\0\x08\0",
        b"just some text, long enough to be read in full",
        b"RIFF\x24\0\0\0WAVEfmt ", // RIFF, but audio
        b"GIF90a",
        b"\xFF\xD8", // too short to be sure
        b"%PDF",
        b"",
    ];
    for head in cases {
        assert_eq!(sniff(head), None, "{:?}", String::from_utf8_lossy(head));
    }
}

#[test]
fn the_documented_head_is_enough_to_decide() {
    let webp_head = b"RIFF\x24\0\0\0WEBP";
    assert_eq!(SNIFF_BYTES, webp_head.len());
    assert_eq!(sniff(&webp_head[..SNIFF_BYTES]), Some("image/webp"));
    assert_eq!(sniff(&webp_head[..SNIFF_BYTES - 1]), None);
}

#[test]
fn only_the_four_image_types_are_shown_inline() {
    for mime in ["image/jpeg", "image/png", "image/gif", "image/webp"] {
        assert!(is_inline_image(mime), "{mime}");
    }
    for mime in [
        "application/pdf",
        "image/svg+xml",
        "text/html",
        "",
        "IMAGE/PNG",
    ] {
        assert!(!is_inline_image(mime), "{mime}");
    }
}

#[test]
fn a_pdf_is_stored_unchanged_without_dimensions_or_thumbnail() {
    let pdf = b"%PDF-1.7\n1 0 obj << /Author (someone) >> endobj\n%%EOF\n";
    assert_eq!(
        process("application/pdf", pdf, true),
        Ok(Processed::default())
    );
    assert_eq!(
        process("application/pdf", pdf, false),
        Ok(Processed::default())
    );
}
