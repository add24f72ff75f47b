//! The frame decoders against mutated input (the server's client-frame decoder, and the
//! server-frame decoder the Rust SDK reads with): every wire vector is mutated thousands of
//! times (seeded, so a failure reproduces) — bytes flipped, cut, duplicated, spliced with JSON
//! punctuation. The decoder must never panic, must answer only `malformed_frame` or
//! `unknown_frame` when it refuses, and whatever it accepts must survive an encode/decode round
//! trip unchanged. (A coverage-guided fuzzer needs a nightly toolchain; this runs on stable, in
//! the ordinary test suite.)

use protocol::frames::decode_server_frame;
use protocol::{decode_client_frame, ErrorCode};

/// Mutations per run; bounded so the test takes well under a second in debug builds.
/// `SURECHAT_FUZZ_CASES=5000000 cargo test --release -p surechat-protocol --test decode_mutations`
/// runs millions.
fn mutations() -> usize {
    std::env::var("SURECHAT_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000)
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn seeds() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let mut texts = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let value: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap()).unwrap();
        let vectors = value["vectors"].as_array().cloned().unwrap_or_default();
        for vector in vectors {
            if let Some(frame) = vector.get("frame") {
                texts.push(frame.to_string());
            }
            if let Some(text) = vector.get("text").and_then(|t| t.as_str()) {
                texts.push(text.to_owned());
            }
        }
    }
    assert!(texts.len() > 10, "the wire vectors are the seeds");
    texts
}

fn mutate(rng: &mut Rng, text: &str) -> Vec<u8> {
    const PIECES: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        "\"",
        ":",
        ",",
        "null",
        "-1",
        "1e999",
        "\\u0000",
        "\\",
        "\u{1F600}",
        "\"type\"",
        "\"send\"",
    ];
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(5) {
            0 if !bytes.is_empty() => {
                let i = at.min(bytes.len() - 1);
                bytes[i] ^= 1 << rng.below(8);
            }
            1 => bytes.truncate(at),
            2 => {
                let piece = PIECES[rng.below(PIECES.len())].as_bytes();
                bytes.splice(at..at, piece.iter().copied());
            }
            3 if !bytes.is_empty() => {
                let end = (at + rng.below(16)).min(bytes.len());
                let copy = bytes[at.min(end)..end].to_vec();
                bytes.splice(at..at, copy);
            }
            _ => {
                let end = (at + rng.below(8)).min(bytes.len());
                bytes.drain(at.min(end)..end);
            }
        }
    }
    bytes
}

#[test]
fn mutated_frames_never_panic_and_refusals_are_typed() {
    let seeds = seeds();
    let mut rng = Rng(0x5eed_f00d);
    let (mut accepted, mut refused) = (0, 0);
    for i in 0..mutations() {
        let bytes = mutate(&mut rng, &seeds[i % seeds.len()]);
        // The transport only hands over valid UTF-8 text frames.
        let Ok(text) = String::from_utf8(bytes) else {
            continue;
        };
        match decode_client_frame(&text) {
            Ok(frame) => {
                accepted += 1;
                let again = decode_client_frame(&frame.encode())
                    .unwrap_or_else(|e| panic!("re-decoding {text:?}: {e:?}"));
                assert_eq!(again, frame, "round trip of {text:?}");
            }
            Err(err) => {
                refused += 1;
                assert!(
                    matches!(
                        err.code,
                        ErrorCode::MalformedFrame | ErrorCode::UnknownFrame
                    ),
                    "{text:?}: {err:?}"
                );
                assert!(!err.message.is_empty());
            }
        }
    }
    assert!(
        accepted > 100 && refused > 1000,
        "the mutations exercise both paths: {accepted} accepted, {refused} refused"
    );
}

/// The server-frame decoder (what a device reads) never panics on mutated frames, and whatever it
/// accepts survives an encode/decode round trip.
#[test]
fn mutated_server_frames_never_panic() {
    let seeds = seeds();
    let mut rng = Rng(0xdec0_de5e);
    let (mut accepted, mut refused) = (0, 0);
    for i in 0..mutations() {
        let bytes = mutate(&mut rng, &seeds[i % seeds.len()]);
        let Ok(text) = String::from_utf8(bytes) else {
            continue;
        };
        match decode_server_frame(&text) {
            Ok(frame) => {
                accepted += 1;
                let again = decode_server_frame(&frame.encode())
                    .unwrap_or_else(|e| panic!("re-decoding {text:?}: {e:?}"));
                assert_eq!(again, frame, "round trip of {text:?}");
            }
            Err(_) => refused += 1,
        }
    }
    assert!(
        accepted > 100 && refused > 1000,
        "the mutations exercise both paths: {accepted} accepted, {refused} refused"
    );
}
