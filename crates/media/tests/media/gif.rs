//! GIF: comment and XMP extensions are removed; looping and frames stay.

use image::codecs::gif::{GifEncoder, Repeat};
use image::{Delay, Frame, GenericImageView};
use media::process;

use crate::files::*;

const EXTENSION: u8 = 0x21;

fn looping_gif() -> Vec<u8> {
    let mut gif = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut gif);
        encoder.set_repeat(Repeat::Infinite).unwrap();
        let frame = image::DynamicImage::from(red_left_blue_right(24, 12)).to_rgba8();
        encoder
            .encode_frame(Frame::from_parts(
                frame,
                0,
                0,
                Delay::from_numer_denom_ms(100, 1),
            ))
            .unwrap();
    } // the trailer is written when the encoder is dropped
    gif
}

/// Where the blocks start: after the header, the screen descriptor and the global colour table.
fn blocks_start(gif: &[u8]) -> usize {
    let packed = gif[10];
    13 + if packed & 0x80 == 0 {
        0
    } else {
        3 << ((packed & 7) + 1)
    }
}

#[test]
fn comments_and_xmp_are_removed_and_looping_stays() {
    let plain = looping_gif();
    assert!(contains(&plain, b"NETSCAPE2.0"));
    let at = blocks_start(&plain);
    let mut tagged = plain[..at].to_vec();
    // A comment extension, in two sub-blocks.
    tagged.extend([EXTENSION, 0xFE, 6]);
    tagged.extend(b"GPS 52");
    tagged.extend([5]);
    tagged.extend(b".52 N");
    tagged.push(0);
    // XMP's application extension: identifier, then the packet as sub-blocks.
    tagged.extend([EXTENSION, 0xFF, 11]);
    tagged.extend(b"XMP DataXMP");
    for piece in XMP_PACKET.chunks(255) {
        tagged.push(piece.len() as u8);
        tagged.extend(piece);
    }
    tagged.push(0);
    tagged.extend(&plain[at..]);
    assert_eq!(decode(&tagged).dimensions(), (24, 12), "a valid input");

    let processed = process("image/gif", &tagged, true).unwrap();
    let stored = processed.replaced.expect("metadata was removed");
    assert_eq!(stored, plain);
    assert!(!contains(&stored, b"GPS") && !contains(&stored, b"XMP"));
    assert!(contains(&stored, b"NETSCAPE2.0"));
    assert_eq!((processed.width, processed.height), (Some(24), Some(12)));
    assert!(processed.thumb.is_some());
}

#[test]
fn a_gif_without_metadata_is_left_unchanged_and_a_truncated_one_is_undecodable() {
    let plain = looping_gif();
    assert_eq!(process("image/gif", &plain, true).unwrap().replaced, None);
    let cut = &plain[..plain.len() - 1];
    assert!(matches!(
        process("image/gif", cut, true),
        Err(media::MediaError::Undecodable(_))
    ));
}
