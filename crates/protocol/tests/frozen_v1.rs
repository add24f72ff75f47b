//! Protocol version 1, frozen: `tests/frozen/v1/` holds the wire vectors as version 1 shipped
//! them, and `CHECKSUMS` pins their bytes — they are never edited (the live vectors in
//! `tests/vectors/` move on with the protocol). Whatever the protocol becomes while it still
//! speaks version 1 (`PROTOCOL_VERSIONS`), this test fails on a breaking change:
//! - every version-1 device frame still decodes, to a frame that encodes every field it had;
//! - every version-1 server frame still decodes (the Rust SDK reads them), and so does each with
//!   a field added (SDKs ignore fields they do not know);
//! - every text version 1 refused is still refused, with the same code, `ref` and frame type.
//!
//! Retiring version 1 (see `docs/protocol.md`, "Versions") removes it from `PROTOCOL_VERSIONS`
//! and this test with it, in the same change.

use std::path::{Path, PathBuf};

use protocol::frames::{decode_server_frame, ServerFrame};
use protocol::{decode_client_frame, ErrorCode, PROTOCOL_VERSIONS};
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/frozen/v1")
}

/// FNV-1a, 64 bits: enough to notice an edit (this is a tripwire, not a signature).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn vectors(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(dir().join(file)).unwrap();
    let value: Value = serde_json::from_str(&text).unwrap();
    value["vectors"].as_array().unwrap().clone()
}

/// `expected`'s fields are all in `actual`, with equal values (new fields may be added).
fn keeps_fields(expected: &Value, actual: &Value, at: &str) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (key, value) in e {
                let Some(found) = a.get(key) else {
                    panic!("{at}: field `{key}` is gone from {actual}");
                };
                keeps_fields(value, found, &format!("{at}.{key}"));
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            assert_eq!(e.len(), a.len(), "{at}: {expected} became {actual}");
            for (i, (e, a)) in e.iter().zip(a).enumerate() {
                keeps_fields(e, a, &format!("{at}[{i}]"));
            }
        }
        _ => assert_eq!(expected, actual, "{at}"),
    }
}

#[test]
fn version_1_is_still_spoken() {
    assert!(
        PROTOCOL_VERSIONS.contains(&1),
        "version 1 retired: remove this test with it"
    );
}

#[test]
fn the_frozen_vectors_are_unchanged() {
    let sums = std::fs::read_to_string(dir().join("CHECKSUMS")).unwrap();
    let mut files = 0;
    for line in sums.lines() {
        let (sum, file) = line.split_once("  ").expect("`<fnv1a64>  <file>`");
        let bytes = std::fs::read(dir().join(file)).unwrap();
        assert_eq!(
            format!("{:016x}", fnv1a(&bytes)),
            sum,
            "{file} of protocol version 1 was edited: frozen vectors never change"
        );
        files += 1;
    }
    assert_eq!(files, 3);
}

#[test]
fn version_1_device_frames_are_still_accepted() {
    for v in vectors("client_frames.json") {
        let name = v["name"].as_str().unwrap();
        let frame = decode_client_frame(&v["frame"].to_string())
            .unwrap_or_else(|e| panic!("{name}: a version-1 frame is refused: {e:?}"));
        let encoded: Value = serde_json::from_str(&frame.encode()).unwrap();
        keeps_fields(&v["frame"], &encoded, name);
    }
}

#[test]
fn version_1_server_frames_still_decode_with_fields_added() {
    for v in vectors("server_frames.json") {
        let name = v["name"].as_str().unwrap();
        let frame: ServerFrame =
            decode_server_frame(&v["frame"].to_string()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let encoded: Value = serde_json::to_value(&frame).unwrap();
        keeps_fields(&v["frame"], &encoded, name);
        // A later server may add fields: an SDK of today reads the frame the same.
        let mut newer = v["frame"].clone();
        newer["added_in_a_later_version"] = serde_json::json!({"any": ["thing", 1]});
        let read = decode_server_frame(&newer.to_string())
            .unwrap_or_else(|e| panic!("{name} with a new field: {e}"));
        assert_eq!(read, frame, "{name}: a new field changes nothing");
    }
}

#[test]
fn what_version_1_refused_is_still_refused_the_same_way() {
    for v in vectors("invalid_client_frames.json") {
        let name = v["name"].as_str().unwrap();
        let err = decode_client_frame(v["text"].as_str().unwrap())
            .err()
            .unwrap_or_else(|| panic!("{name}: now accepted"));
        let code: ErrorCode = serde_json::from_value(v["code"].clone()).unwrap();
        assert_eq!(err.code, code, "{name}");
        assert_eq!(err.reference.as_deref(), v["ref"].as_str(), "{name}: ref");
        assert_eq!(
            err.frame.as_deref(),
            v["frame_type"].as_str(),
            "{name}: frame type"
        );
    }
}

/// A newer server's error code: the SDK reads it by its `permanent` flag.
#[test]
fn an_unknown_error_code_is_read_by_its_permanent_flag() {
    for (permanent, code) in [
        (true, ErrorCode::BadRequest),
        (false, ErrorCode::Unavailable),
    ] {
        let text = format!(
            r#"{{"type":"error","ref":"r1","code":"added_later","message":"m","permanent":{permanent}}}"#
        );
        let Ok(ServerFrame::Error(error)) = decode_server_frame(&text) else {
            panic!("{text} is refused");
        };
        assert_eq!((error.code, error.permanent), (code, permanent));
        assert_eq!(error.reference.as_deref(), Some("r1"));
        assert_eq!(error.message, "added_later: m");
    }
    assert!(decode_server_frame(r#"{"type":"error","code":"added_later"}"#).is_err());
}
