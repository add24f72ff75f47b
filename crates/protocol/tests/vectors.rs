//! The wire vectors in `tests/vectors/*.json` are examples of every frame, shared with the browser
//! SDK's tests. This test holds them to the Rust types:
//! - every valid frame decodes, and re-encodes to exactly the JSON of the vector (canonical form);
//! - every `equivalent` form decodes to the same frame;
//! - every invalid text fails to decode with the expected code, `ref` and frame type;
//! - every frame type of [`ClientFrame`] and [`ServerFrame`] has at least one vector;
//! - the resume example is a consistent conversation (gap-free seqs from the cursors, `synced`
//!   where the backlog ends, `resync` exactly for void cursors).
//!
//! It also checks that `docs/protocol.md` mentions every error code, close code and limit, has a
//! heading for every frame type, and shows the resume example's frames in its worked example.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use protocol::frames::{decode_server_frame, ClientFrame, ServerFrame};
use protocol::{decode_client_frame, ErrorCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

/// Every `*.json` file of the vectors directory, by file name.
fn vector_files() -> BTreeMap<String, Value> {
    let mut files = BTreeMap::new();
    let dir = vectors_dir();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let value: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
        files.insert(name, value);
    }
    assert!(!files.is_empty(), "no vectors in {}", dir.display());
    files
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Client,
    Server,
}

fn direction(value: &Value, context: &str) -> Direction {
    match value.as_str() {
        Some("client") => Direction::Client,
        Some("server") => Direction::Server,
        other => panic!("{context}: `direction` must be \"client\" or \"server\", not {other:?}"),
    }
}

fn str_field<'a>(value: &'a Value, key: &str, context: &str) -> &'a str {
    match value.get(key).and_then(Value::as_str) {
        Some(text) if !text.trim().is_empty() => text,
        _ => panic!("{context}: needs a non-empty string `{key}`"),
    }
}

/// A decoded frame of either direction.
#[derive(Debug, Clone, PartialEq)]
enum Frame {
    Client(ClientFrame),
    Server(ServerFrame),
}

impl Frame {
    fn encode(&self) -> String {
        match self {
            Frame::Client(frame) => frame.encode(),
            Frame::Server(frame) => frame.encode(),
        }
    }

    /// The `type` of the frame, as the encoder writes it.
    fn kind(&self) -> String {
        let value: Value = serde_json::from_str(&self.encode()).unwrap();
        value["type"].as_str().unwrap().to_owned()
    }
}

fn decode(direction: Direction, text: &str) -> Result<Frame, String> {
    match direction {
        Direction::Client => decode_client_frame(text)
            .map(Frame::Client)
            .map_err(|e| format!("{:?}: {}", e.code, e.message)),
        Direction::Server => decode_server_frame(text)
            .map(Frame::Server)
            .map_err(|e| e.to_string()),
    }
}

/// Decodes a vector's frame, checks it is canonical, and checks the frame's own invariants.
fn check_frame(direction: Direction, json: &Value, context: &str) -> Frame {
    assert!(json.is_object(), "{context}: `frame` must be a JSON object");
    let text = serde_json::to_string(json).unwrap();
    let frame =
        decode(direction, &text).unwrap_or_else(|e| panic!("{context}: does not decode: {e}"));
    let again: Value = serde_json::from_str(&frame.encode()).unwrap();
    assert_eq!(
        &again, json,
        "{context}: re-encoding differs from the vector (vectors must be canonical)"
    );
    if let Frame::Server(ServerFrame::Error(error)) = &frame {
        assert_eq!(
            error.permanent,
            error.code.is_permanent(),
            "{context}: `permanent` must match the code"
        );
        assert!(
            error.retry_after_ms.is_none() || error.code == ErrorCode::RateLimited,
            "{context}: only rate_limited carries retry_after_ms"
        );
    }
    frame
}

/// Checks one file of `{"direction", "vectors": [...]}`; returns the frames it holds.
fn check_vectors_file(file: &str, value: &Value) -> Vec<Frame> {
    let direction = direction(&value["direction"], file);
    let vectors = value["vectors"]
        .as_array()
        .unwrap_or_else(|| panic!("{file}: `vectors` must be an array"));
    assert!(!vectors.is_empty(), "{file}: no vectors");
    let mut names = BTreeSet::new();
    let mut frames = Vec::new();
    for vector in vectors {
        let name = str_field(vector, "name", file);
        let context = format!("{file}: {name}");
        assert!(names.insert(name), "{context}: duplicate name");
        str_field(vector, "meaning", &context);
        match (vector.get("frame"), vector.get("text")) {
            (Some(json), None) => {
                let frame = check_frame(direction, json, &context);
                for (i, form) in vector
                    .get("equivalent")
                    .map(|e| e.as_array().expect("`equivalent` is an array").as_slice())
                    .unwrap_or_default()
                    .iter()
                    .enumerate()
                {
                    let text = serde_json::to_string(form).unwrap();
                    let other = decode(direction, &text).unwrap_or_else(|e| {
                        panic!("{context}: equivalent form {i} does not decode: {e}")
                    });
                    assert_eq!(
                        other, frame,
                        "{context}: equivalent form {i} decodes differently"
                    );
                    assert_ne!(
                        form, json,
                        "{context}: equivalent form {i} is the canonical form"
                    );
                }
                frames.push(frame);
            }
            (None, Some(text)) => check_invalid(direction, text, vector, &context),
            _ => panic!("{context}: needs exactly one of `frame` (valid) or `text` (invalid)"),
        }
    }
    frames
}

/// An invalid client text: the decode error names the code, the request and the frame type.
fn check_invalid(direction: Direction, text: &Value, vector: &Value, context: &str) {
    assert_eq!(
        direction,
        Direction::Client,
        "{context}: invalid vectors are client texts"
    );
    let text = text
        .as_str()
        .unwrap_or_else(|| panic!("{context}: `text` must be a string"));
    let expected_code: ErrorCode = serde_json::from_value(vector["code"].clone())
        .unwrap_or_else(|e| panic!("{context}: `code` is not an error code: {e}"));
    let expected_ref = optional_string(vector, "ref", context);
    let expected_type = optional_string(vector, "frame_type", context);
    assert!(
        matches!(
            expected_code,
            ErrorCode::MalformedFrame | ErrorCode::UnknownFrame
        ),
        "{context}: decoding fails only with malformed_frame or unknown_frame"
    );
    let err = match decode_client_frame(text) {
        Ok(frame) => panic!("{context}: decodes, as {frame:?}"),
        Err(err) => err,
    };
    assert_eq!(err.code, expected_code, "{context}: code ({})", err.message);
    assert_eq!(err.reference, expected_ref, "{context}: ref");
    assert_eq!(err.frame, expected_type, "{context}: frame type");
    let ServerFrame::Error(frame) = err.to_frame() else {
        panic!("{context}: to_frame must give an error frame");
    };
    assert_eq!(
        (frame.code, frame.reference, frame.frame, frame.permanent),
        (expected_code, expected_ref, expected_type, true),
        "{context}: error frame"
    );
}

fn optional_string(vector: &Value, key: &str, context: &str) -> Option<String> {
    match vector.get(key) {
        Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text.clone()),
        _ => panic!("{context}: `{key}` must be a string or null"),
    }
}

/// The variants of a `type`-tagged enum, as serde names them: the list serde gives when asked for
/// an unknown variant. A new variant is in this list without anyone having to update the test.
fn variants<T: DeserializeOwned + std::fmt::Debug>() -> BTreeSet<String> {
    let err = serde_json::from_str::<T>(r#"{"type":"no such frame type"}"#)
        .unwrap_err()
        .to_string();
    let (_, expected) = err
        .split_once("expected")
        .unwrap_or_else(|| panic!("unexpected serde message: {err}"));
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// Checks the resume example: every frame is valid and canonical, and the story is one the server
/// could tell.
fn check_resume_example(file: &str, value: &Value) -> Vec<Frame> {
    let steps = value["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("{file}: `steps` must be an array"));
    let mut frames = Vec::new();
    // Per conversation: the highest seq the device holds, contiguously.
    let mut cursors: HashMap<String, u64> = HashMap::new();
    let mut void_cursors: BTreeSet<String> = BTreeSet::new();
    let mut resynced: BTreeSet<String> = BTreeSet::new();
    let mut synced: BTreeSet<String> = BTreeSet::new();
    let mut welcomed: BTreeSet<String> = BTreeSet::new();
    let mut acked: HashMap<String, (String, u64, u64)> = HashMap::new();
    let mut seen: HashMap<String, (String, u64, u64)> = HashMap::new();
    for (i, step) in steps.iter().enumerate() {
        let context = format!("{file}: step {i}");
        str_field(step, "meaning", &context);
        let direction = direction(&step["direction"], &context);
        let frame = check_frame(direction, &step["frame"], &context);
        match (i, &frame) {
            (0, Frame::Client(ClientFrame::Hello(hello))) => {
                for cursor in &hello.cursors {
                    cursors.insert(cursor.conversation.clone(), cursor.seq);
                }
            }
            (0, _) => panic!("{context}: the first step is the device's hello"),
            (1, Frame::Server(ServerFrame::Welcome(welcome))) => {
                let Frame::Client(ClientFrame::Hello(hello)) = &frames[0] else {
                    unreachable!()
                };
                for state in &welcome.conversations {
                    let cursor = hello.cursors.iter().find(|c| c.conversation == state.id);
                    let valid = cursor.is_none_or(|c| {
                        c.seq <= state.last_seq && c.epoch.is_none_or(|e| e == state.epoch)
                    });
                    if !valid {
                        void_cursors.insert(state.id.clone());
                    }
                    cursors.entry(state.id.clone()).or_insert(0);
                    welcomed.insert(state.id.clone());
                }
            }
            (1, _) => panic!("{context}: the second step is the server's welcome"),
            (_, Frame::Server(ServerFrame::Resync(resync))) => {
                assert!(
                    !synced.contains(&resync.conversation),
                    "{context}: resync comes before the conversation's backlog"
                );
                resynced.insert(resync.conversation.clone());
                cursors.insert(resync.conversation.clone(), 0);
            }
            (_, Frame::Server(ServerFrame::Message(message))) => {
                let cursor = cursors
                    .get_mut(&message.conversation)
                    .unwrap_or_else(|| panic!("{context}: message of an unknown conversation"));
                assert_eq!(message.seq, *cursor + 1, "{context}: seq must have no gap");
                *cursor = message.seq;
                seen.insert(
                    message.id.clone(),
                    (message.conversation.clone(), message.seq, message.ts),
                );
            }
            (_, Frame::Server(ServerFrame::Synced(s))) => {
                assert_eq!(
                    Some(&s.seq),
                    cursors.get(&s.conversation),
                    "{context}: synced names the last seq sent"
                );
                synced.insert(s.conversation.clone());
            }
            (_, Frame::Server(ServerFrame::Ack(ack))) => {
                acked.insert(ack.id.clone(), (ack.conversation.clone(), ack.seq, ack.ts));
            }
            (_, Frame::Client(ClientFrame::Receipt(receipt))) => {
                let held = cursors.get(&receipt.conversation).copied().unwrap_or(0);
                for cursor in [receipt.delivered, receipt.read].into_iter().flatten() {
                    assert!(
                        cursor <= held,
                        "{context}: a receipt covers only messages the device holds"
                    );
                }
            }
            _ => {}
        }
        frames.push(frame);
    }
    assert_eq!(
        resynced, void_cursors,
        "{file}: resync exactly the conversations whose cursor is void"
    );
    for (id, ack) in &acked {
        if let Some(message) = seen.get(id) {
            assert_eq!(message, ack, "{file}: ack and message of {id} agree");
        }
    }
    assert_eq!(
        welcomed, synced,
        "{file}: every conversation of the welcome gets its synced"
    );
    frames
}

#[test]
fn vectors_decode_reencode_and_cover_every_frame_type() {
    let mut client_types = BTreeSet::new();
    let mut server_types = BTreeSet::new();
    for (file, value) in vector_files() {
        str_field(&value, "description", &file);
        let frames = if value.get("vectors").is_some() {
            check_vectors_file(&file, &value)
        } else if value.get("steps").is_some() {
            check_resume_example(&file, &value)
        } else {
            panic!("{file}: needs `vectors` or `steps`");
        };
        for frame in frames {
            match &frame {
                Frame::Client(_) => client_types.insert(frame.kind()),
                Frame::Server(_) => server_types.insert(frame.kind()),
            };
        }
    }
    let all_client = variants::<ClientFrame>();
    let all_server = variants::<ServerFrame>();
    assert!(all_client.contains("hello") && all_client.contains("send"));
    assert!(all_server.contains("welcome") && all_server.contains("message"));
    let missing: Vec<_> = all_client.difference(&client_types).collect();
    assert!(
        missing.is_empty(),
        "client frames without a vector: {missing:?}"
    );
    let missing: Vec<_> = all_server.difference(&server_types).collect();
    assert!(
        missing.is_empty(),
        "server frames without a vector: {missing:?}"
    );
}

fn protocol_doc() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/protocol.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `(name, value)` of every `pub const NAME: TYPE = VALUE;` in a source file of this crate.
fn constants_of(source: &str) -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(source);
    let text = std::fs::read_to_string(&path).unwrap();
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("pub const "))
        .map(|rest| {
            let (name, rest) = rest.split_once(':').expect("`pub const NAME: TYPE`");
            let value = rest.split_once('=').map_or("", |(_, v)| v);
            let value = value.trim().trim_end_matches(';').trim();
            (name.trim().to_owned(), value.to_owned())
        })
        .collect()
}

#[test]
fn doc_mentions_every_error_code() {
    let doc = protocol_doc();
    let missing: Vec<_> = ErrorCode::ALL
        .iter()
        .map(|code| code.as_str())
        .filter(|code| !doc.contains(&format!("`{code}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/protocol.md does not mention: {missing:?}"
    );
}

#[test]
fn doc_mentions_every_close_code() {
    use protocol::close;
    let doc = protocol_doc();
    let constants = constants_of("close.rs");
    let known = [
        ("NORMAL", close::NORMAL),
        ("MESSAGE_TOO_BIG", close::MESSAGE_TOO_BIG),
        ("SERVICE_RESTART", close::SERVICE_RESTART),
        ("PROTOCOL_ERROR", close::PROTOCOL_ERROR),
        ("UNAUTHORIZED", close::UNAUTHORIZED),
        ("HEARTBEAT_TIMEOUT", close::HEARTBEAT_TIMEOUT),
        ("TOO_SLOW", close::TOO_SLOW),
        ("POLICY_VIOLATION", close::POLICY_VIOLATION),
    ];
    for (name, code) in known {
        assert!(
            constants.iter().any(|(n, _)| n == name),
            "close::{name} not found in src/close.rs"
        );
        assert!(
            doc.contains(&format!("`{code}`")),
            "docs/protocol.md does not mention close code {code} ({name})"
        );
    }
    // Constants added to close.rs later are checked too, from the source.
    for (name, value) in constants {
        assert!(
            doc.contains(&format!("`{value}`")),
            "docs/protocol.md does not mention close code {value} ({name})"
        );
    }
}

#[test]
fn doc_mentions_every_limit() {
    let doc = protocol_doc();
    let missing: Vec<_> = constants_of("limits.rs")
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| !doc.contains(&format!("`{name}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/protocol.md does not mention: {missing:?}"
    );
}

#[test]
fn doc_has_a_heading_for_every_frame_type() {
    let doc = protocol_doc();
    let headings: Vec<&str> = doc.lines().filter(|l| l.starts_with('#')).collect();
    for kind in variants::<ClientFrame>()
        .into_iter()
        .chain(variants::<ServerFrame>())
    {
        assert!(
            headings.iter().any(|h| h.contains(&format!("`{kind}`"))),
            "docs/protocol.md has no heading for `{kind}`"
        );
    }
}

#[test]
fn doc_worked_example_matches_resume_example() {
    let doc = protocol_doc();
    let files = vector_files();
    let example = &files["resume_example.json"];
    for (i, step) in example["steps"].as_array().unwrap().iter().enumerate() {
        let frame = check_frame(
            direction(&step["direction"], "resume_example.json"),
            &step["frame"],
            "resume_example.json",
        );
        if matches!(frame, Frame::Client(ClientFrame::Hello(_))) {
            continue; // the doc shortens the token
        }
        let line = format!(
            "{:>2} {} {}",
            i + 1,
            if matches!(frame, Frame::Client(_)) {
                "→"
            } else {
                "←"
            },
            frame.encode()
        );
        assert!(
            doc.contains(&line),
            "docs/protocol.md's worked example lacks step {}: {line}",
            i + 1
        );
    }
}
