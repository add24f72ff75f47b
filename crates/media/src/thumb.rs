//! Decoding under limits, dimensions as displayed, and the JPEG thumbnail.
//!
//! The thumbnail is made before the orientation is applied, so a rotation only ever touches the
//! small image: the full-size pixels are held in memory once.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits, RgbImage};

use crate::{MediaError, THUMB_PX_MAX};

/// Largest width or height decoded, in pixels. 20000 is above any phone or camera photo (a
/// 200-megapixel sensor is 16320 wide) and below what a small file can claim to make us allocate.
pub(crate) const IMAGE_PX_MAX: u32 = 20_000;

/// Largest decoded pixel buffer (and decoder allocation), in bytes. 256 MiB holds a 64-megapixel
/// photo as RGBA; several uploads finishing at once must still fit in a server's memory.
pub(crate) const DECODED_BYTES_MAX: u64 = 256 * 1024 * 1024;

/// JPEG quality of thumbnails: 80 is where artefacts stop showing at thumbnail size.
const THUMB_JPEG_QUALITY: u8 = 80;

/// An image's dimensions as displayed and its thumbnail.
pub(crate) struct Decoded {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) thumb_jpeg: Vec<u8>,
}

fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(IMAGE_PX_MAX);
    limits.max_image_height = Some(IMAGE_PX_MAX);
    limits.max_alloc = Some(DECODED_BYTES_MAX);
    limits
}

fn media_error(error: ImageError) -> MediaError {
    match error {
        ImageError::Limits(_) => MediaError::TooLarge,
        other => MediaError::Undecodable(other.to_string()),
    }
}

/// Decodes an image of type `mime` (the first frame of an animation) and makes its thumbnail.
pub(crate) fn decode(mime: &str, bytes: &[u8]) -> Result<Decoded, MediaError> {
    let format = ImageFormat::from_mime_type(mime)
        .ok_or_else(|| MediaError::Undecodable(format!("{mime} is not an image type")))?;
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits());
    // `into_decoder` checks the width and height; the buffer about to be allocated is checked
    // here, as `ImageReader::decode` would, so a large canvas within both is refused too.
    let mut decoder = reader.into_decoder().map_err(media_error)?;
    limits()
        .reserve(decoder.total_bytes())
        .map_err(media_error)?;
    let orientation = decoder.orientation().map_err(media_error)?;
    let image = DynamicImage::from_decoder(decoder).map_err(media_error)?;

    let (width, height) = if swaps_sides(orientation) {
        (image.height(), image.width())
    } else {
        (image.width(), image.height())
    };
    let mut thumb = if image.width().max(image.height()) > THUMB_PX_MAX {
        image.thumbnail(THUMB_PX_MAX, THUMB_PX_MAX)
    } else {
        image
    };
    thumb.apply_orientation(orientation);
    let mut thumb_jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut thumb_jpeg, THUMB_JPEG_QUALITY)
        .encode_image(&flattened_on_white(&thumb))
        .map_err(|e| MediaError::Undecodable(format!("thumbnail: {e}")))?;
    Ok(Decoded {
        width,
        height,
        thumb_jpeg,
    })
}

/// Whether displaying with this orientation turns the image a quarter, so width and height trade.
fn swaps_sides(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

/// The image as RGB, transparent parts composed over white: JPEG has no alpha, and a transparent
/// area that turned black would hide dark content (a logo, a signature).
fn flattened_on_white(image: &DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.to_rgb8();
    }
    let rgba = image.to_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let over_white = |c: u8| {
            let (c, a) = (u16::from(c), u16::from(a));
            // Rounded (c·a + 255·(255 − a)) / 255, which is at most 255.
            ((c * a + 255 * (255 - a) + 127) / 255) as u8
        };
        image::Rgb([over_white(r), over_white(g), over_white(b)])
    })
}
