//! Builders of test files: images with known pixels, EXIF blocks with GPS tags, containers'
//! chunks and segments, and readers that check what came out.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Rgb, RgbImage, RgbaImage};

/// Red on the left half, blue on the right: after a quarter turn the halves show which way the
/// image was turned.
pub fn red_left_blue_right(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, _| {
        if x < width / 2 {
            Rgb([255, 0, 0])
        } else {
            Rgb([0, 0, 255])
        }
    })
}

/// A checkerboard with a transparent top half: pixels a lossless round trip must keep.
pub fn half_transparent(width: u32, height: u32) -> RgbaImage {
    RgbaImage::from_fn(width, height, |x, y| {
        let alpha = if y < height / 2 { 0 } else { 255 };
        let shade = if (x / 4 + y / 4) % 2 == 0 { 20 } else { 200 };
        image::Rgba([shade, shade, 255 - shade, alpha])
    })
}

pub fn encode(image: impl Into<DynamicImage>, format: ImageFormat) -> Vec<u8> {
    let mut bytes = Vec::new();
    image
        .into()
        .write_to(&mut Cursor::new(&mut bytes), format)
        .expect("encodes");
    bytes
}

pub fn decode(bytes: &[u8]) -> DynamicImage {
    image::load_from_memory(bytes).expect("decodes")
}

/// The orientation a decoder reads from a file's EXIF.
pub fn orientation_of(bytes: &[u8]) -> Orientation {
    ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .expect("in memory")
        .into_decoder()
        .expect("a decoder")
        .orientation()
        .expect("an orientation")
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

pub fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

/// The latitude as stored in [`exif_with_gps`]: 52° 31' 12.34", three little-endian rationals.
pub fn latitude_bytes() -> Vec<u8> {
    rationals(&[(52, 1), (31, 1), (1234, 100)])
}

/// The camera maker's name in [`exif_with_gps`].
pub const MAKER: &[u8] = b"PhoneMakerX";

fn rationals(values: &[(u32, u32)]) -> Vec<u8> {
    values
        .iter()
        .flat_map(|(n, d)| n.to_le_bytes().into_iter().chain(d.to_le_bytes()))
        .collect()
}

/// A little-endian TIFF structure as phones write it: IFD0 with the maker, the orientation and a
/// pointer to a GPS IFD holding latitude and longitude.
pub fn exif_with_gps(orientation: u16) -> Vec<u8> {
    const IFD0_AT: u32 = 8;
    const GPS_IFD_AT: u32 = IFD0_AT + 2 + 3 * 12 + 4; // 50
    const LATITUDE_AT: u32 = GPS_IFD_AT + 2 + 4 * 12 + 4; // 104
    const LONGITUDE_AT: u32 = LATITUDE_AT + 24;
    const MAKER_AT: u32 = LONGITUDE_AT + 24;
    fn entry(tiff: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: [u8; 4]) {
        tiff.extend(tag.to_le_bytes());
        tiff.extend(kind.to_le_bytes());
        tiff.extend(count.to_le_bytes());
        tiff.extend(value);
    }
    let (ascii, short, long, rational) = (2, 3, 4, 5);
    let mut tiff = b"II\x2A\0".to_vec();
    tiff.extend(IFD0_AT.to_le_bytes());
    tiff.extend(3u16.to_le_bytes());
    entry(
        &mut tiff,
        0x010F,
        ascii,
        MAKER.len() as u32 + 1,
        MAKER_AT.to_le_bytes(),
    );
    let [o0, o1] = orientation.to_le_bytes();
    entry(&mut tiff, 0x0112, short, 1, [o0, o1, 0, 0]);
    entry(&mut tiff, 0x8825, long, 1, GPS_IFD_AT.to_le_bytes());
    tiff.extend(0u32.to_le_bytes());
    assert_eq!(tiff.len(), GPS_IFD_AT as usize);
    tiff.extend(4u16.to_le_bytes());
    entry(&mut tiff, 0x0001, ascii, 2, *b"N\0\0\0");
    entry(&mut tiff, 0x0002, rational, 3, LATITUDE_AT.to_le_bytes());
    entry(&mut tiff, 0x0003, ascii, 2, *b"E\0\0\0");
    entry(&mut tiff, 0x0004, rational, 3, LONGITUDE_AT.to_le_bytes());
    tiff.extend(0u32.to_le_bytes());
    assert_eq!(tiff.len(), LATITUDE_AT as usize);
    tiff.extend(latitude_bytes());
    tiff.extend(rationals(&[(13, 1), (24, 1), (5678, 100)]));
    assert_eq!(tiff.len(), MAKER_AT as usize);
    tiff.extend(MAKER);
    tiff.push(0);
    tiff
}

/// An XMP packet that names a GPS position, as photo editors write it.
pub const XMP_PACKET: &[u8] = b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF><rdf:Description \
    exif:GPSLatitude='52,31.2N'/></rdf:RDF></x:xmpmeta>";

/// CRC-32 as PNG uses it.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

pub fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
    chunk.extend(kind);
    chunk.extend(data);
    let crc = crc32(&chunk[4..]);
    chunk.extend(crc.to_be_bytes());
    chunk
}

/// The four-character types of a PNG's chunks, in order.
pub fn png_chunk_kinds(png: &[u8]) -> Vec<String> {
    let mut kinds = Vec::new();
    let mut pos = 8;
    while pos + 8 <= png.len() {
        let length = u32::from_be_bytes(png[pos..pos + 4].try_into().unwrap()) as usize;
        kinds.push(String::from_utf8_lossy(&png[pos + 4..pos + 8]).into_owned());
        pos += 12 + length;
    }
    kinds
}

/// `png` with `chunks` inserted right after IHDR (signature 8 bytes, IHDR 25).
pub fn png_with_chunks_after_ihdr(png: &[u8], chunks: &[Vec<u8>]) -> Vec<u8> {
    let mut out = png[..33].to_vec();
    for chunk in chunks {
        out.extend(chunk);
    }
    out.extend(&png[33..]);
    out
}

/// A JPEG segment: marker, length (counting itself) and payload.
pub fn jpeg_segment(marker: u8, payload: &[u8]) -> Vec<u8> {
    let mut segment = vec![0xFF, marker];
    segment.extend((payload.len() as u16 + 2).to_be_bytes());
    segment.extend(payload);
    segment
}

/// `jpeg` with `segments` inserted right after SOI, where cameras put their APP1.
pub fn jpeg_with_segments_after_soi(jpeg: &[u8], segments: &[Vec<u8>]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    for segment in segments {
        out.extend(segment);
    }
    out.extend(&jpeg[2..]);
    out
}

/// The markers of a JPEG's segments before its first scan.
pub fn jpeg_markers_before_scan(jpeg: &[u8]) -> Vec<u8> {
    let mut markers = Vec::new();
    let mut pos = 2;
    while pos + 4 <= jpeg.len() && jpeg[pos] == 0xFF {
        let marker = jpeg[pos + 1];
        markers.push(marker);
        if marker == 0xDA {
            break;
        }
        pos += 2 + u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]) as usize;
    }
    markers
}

/// A RIFF chunk: four-character code, little-endian size, data and a pad byte to an even size.
pub fn riff_chunk(fourcc: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut chunk = fourcc.to_vec();
    chunk.extend((data.len() as u32).to_le_bytes());
    chunk.extend(data);
    if data.len() % 2 == 1 {
        chunk.push(0);
    }
    chunk
}

/// The chunks of a WebP file after its RIFF header, as (fourcc, data).
pub fn webp_chunks(webp: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut chunks = Vec::new();
    let mut pos = 12;
    while pos + 8 <= webp.len() {
        let size = u32::from_le_bytes(webp[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let fourcc = String::from_utf8_lossy(&webp[pos..pos + 4]).into_owned();
        chunks.push((fourcc, webp[pos + 8..pos + 8 + size].to_vec()));
        pos += 8 + size + size % 2;
    }
    chunks
}
