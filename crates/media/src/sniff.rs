//! The type of a file, decided from its first bytes only (magic numbers), never from its name or
//! the type a device declares: a page named `photo.jpg` must not be served as an image.

/// One allowed type and the bytes that identify it. A signature is a list of (offset, bytes)
/// parts, because WebP's identifying bytes are split by the RIFF size field.
struct Signature {
    mime: &'static str,
    parts: &'static [(usize, &'static [u8])],
}

/// Every type recognised by content. Anything not here (HTML, SVG, scripts, archives, text) has no
/// signature and so is never recognised.
const SIGNATURES: &[Signature] = &[
    Signature {
        mime: "image/jpeg",
        parts: &[(0, &[0xFF, 0xD8, 0xFF])],
    },
    Signature {
        mime: "image/png",
        parts: &[(0, &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A])],
    },
    Signature {
        mime: "image/gif",
        parts: &[(0, b"GIF87a")],
    },
    Signature {
        mime: "image/gif",
        parts: &[(0, b"GIF89a")],
    },
    Signature {
        mime: "image/webp",
        parts: &[(0, b"RIFF"), (8, b"WEBP")],
    },
    Signature {
        mime: "application/pdf",
        parts: &[(0, b"%PDF-")],
    },
];

/// Bytes of the file head that [`sniff`] needs to decide: the end of the furthest signature part
/// (WebP's `WEBP` at offset 8, so 12). Computed from the table so that a new type cannot need
/// more than callers read.
pub const SNIFF_BYTES: usize = furthest_signature_end();

const fn furthest_signature_end() -> usize {
    let mut end = 0;
    let mut i = 0;
    while i < SIGNATURES.len() {
        let parts = SIGNATURES[i].parts;
        let mut j = 0;
        while j < parts.len() {
            let part_end = parts[j].0 + parts[j].1.len();
            if part_end > end {
                end = part_end;
            }
            j += 1;
        }
        i += 1;
    }
    end
}

/// Types recognised by content: returns the MIME type whose magic number starts `head`, or `None`.
/// The server decides an upload's type with this alone, so a script or page disguised by its name
/// or declared type is refused. `head` needs at most [`SNIFF_BYTES`] bytes; more are ignored.
pub fn sniff(head: &[u8]) -> Option<&'static str> {
    SIGNATURES
        .iter()
        .find(|signature| {
            signature
                .parts
                .iter()
                .all(|(offset, bytes)| head.get(*offset..offset + bytes.len()) == Some(*bytes))
        })
        .map(|signature| signature.mime)
}

/// Types a browser may show inline: JPEG, PNG, GIF and WebP. These are decoded by the browser's
/// image code and cannot run script. Everything else (a PDF among them) is served as a download so
/// that it is never rendered in the chat's origin. `mime` is a type as returned by [`sniff`].
pub fn is_inline_image(mime: &str) -> bool {
    matches!(
        mime,
        "image/jpeg" | "image/png" | "image/gif" | "image/webp"
    )
}
