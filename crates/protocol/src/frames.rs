//! WebSocket frames. Every frame is one JSON object in one text message, with a `type` field.
//! `docs/protocol.md` describes each frame; `tests/vectors/*.json` holds examples of each.

use serde::{Deserialize, Serialize};

use crate::{ErrorCode, Role};

/// A frame sent by a device to the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// First frame of every connection: authenticates and resumes.
    Hello(Hello),
    /// Stores a message (idempotent by `id`).
    Send(Send),
    /// Moves this user's cumulative `delivered`/`read` cursors forward.
    Receipt(ReceiptUpdate),
    /// An ephemeral typing signal, never stored.
    Typing(TypingUpdate),
    /// Asks the server for a `pong` (devices may use it to probe the connection).
    Ping(Ping),
    /// Answers a server `ping`.
    Pong(Pong),
    /// An operator's explicit availability switch (`available` or `away`).
    Presence(PresenceUpdate),
}

/// `presence` from an operator's device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceUpdate {
    /// `available` or `away` (`offline` is derived from having no connection).
    pub status: PresenceStatus,
}

/// An operator's availability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceStatus {
    /// Connected and taking conversations.
    Available,
    /// Connected, not taking new conversations.
    Away,
    /// No connection (after a short leave delay, so a page reload does not flap).
    Offline,
}

/// `presence` from the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// Conversation the receiving device shares with the operator.
    pub conversation: String,
    /// The operator.
    pub user_id: String,
    /// Their availability.
    pub status: PresenceStatus,
}

/// `hello`: the token and the device's cursors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// Protocol version the device speaks ([`crate::PROTOCOL_VERSION`]).
    pub v: u32,
    /// The user's token (a JWT).
    pub token: String,
    /// Per conversation, the highest `seq` up to which the device holds every message. A
    /// conversation of the user that is not listed starts at 0 (everything is sent).
    #[serde(default)]
    pub cursors: Vec<Cursor>,
    /// How long the device was without a connection before this one, in milliseconds; absent on
    /// its first connection. Only reported in the server's metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_ms: Option<u64>,
    /// Messages in the device's outbox as it says hello. Only reported in the server's metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<u64>,
}

/// A device's position in one conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Conversation id.
    pub conversation: String,
    /// Highest `seq` up to which the device holds every message (contiguous).
    pub seq: u64,
    /// The conversation's epoch the cursor belongs to, if the device knows it. When it differs from
    /// the server's, the server answers `resync` and starts the conversation over from 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
}

/// `send`: a message created on the device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Send {
    /// The message's id: a UUID the device generated, its idempotency key.
    pub id: String,
    /// Conversation id.
    pub conversation: String,
    /// The text, at most the configured number of bytes of UTF-8.
    pub body: String,
    /// `note` for a private note between operators; absent for an ordinary message.
    #[serde(default, skip_serializing_if = "MessageKind::is_text")]
    pub kind: MessageKind,
    /// Ids of complete uploads of the sender in this conversation, in the order they are shown
    /// (at most `ATTACHMENTS_MAX`). With attachments the body may be empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<String>,
}

/// `receipt` from a device: cumulative cursors. Either or both may be given; cursors only move
/// forward (a lower value is ignored), and `read` implies `delivered`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptUpdate {
    /// Optional request reference, echoed in an `error` frame if the receipt is rejected.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Conversation id.
    pub conversation: String,
    /// Highest `seq` up to which the device has stored every message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered: Option<u64>,
    /// Highest `seq` up to which the user has seen every message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read: Option<u64>,
}

/// `typing` from a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypingUpdate {
    /// Conversation id.
    pub conversation: String,
    /// `true` while the user types (renew at least every `TYPING_TTL_MS`), `false` to stop.
    pub active: bool,
}

/// `ping` from a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Ping {
    /// Optional reference echoed in the `pong`.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// `pong` from a device, answering a server `ping`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Pong {}

/// A frame sent by the server to a device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// Answer to `hello`: who the device is, heartbeat timing, and the state of every
    /// conversation of the user. Resume frames follow.
    Welcome(Welcome),
    /// A stored message (backlog or live). Devices deduplicate by `id` and order by `seq`.
    Message(Message),
    /// The durable acknowledgement of a `send`: the message is committed.
    Ack(Ack),
    /// Everything up to `seq` has been sent to this device; live messages follow.
    Synced(Synced),
    /// A participant's cumulative cursors changed.
    Receipt(Receipt),
    /// Another participant started or stopped typing.
    Typing(Typing),
    /// The user was added to a conversation while connected; its messages follow from `seq` 1.
    Joined(Joined),
    /// The user was removed from a conversation; no more frames for it will come.
    Left(Left),
    /// The device's cursor does not fit this conversation (other epoch, or beyond its end): drop
    /// the local copy of the conversation; the server sends it again from `seq` 1.
    Resync(Resync),
    /// A request was rejected, or a frame could not be understood.
    Error(ErrorFrame),
    /// Heartbeat; answer with `pong`.
    Ping(ServerPing),
    /// Answer to a device `ping`.
    Pong(Ping),
    /// A position of the timeline that is not for this device (a private note).
    Skip(Skip),
    /// An operator's availability changed (sent to the conversations they take part in).
    Presence(Presence),
}

/// `welcome`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    /// Protocol version of the server.
    pub v: u32,
    /// The authenticated user.
    pub user_id: String,
    /// The user's role, from the token.
    pub role: Role,
    /// This connection's id, for logs and support.
    pub connection_id: String,
    /// How often the server sends `ping`, in milliseconds.
    pub heartbeat_ms: u64,
    /// After this many milliseconds without any frame from the server, the device should treat
    /// the connection as dead and reconnect.
    pub timeout_ms: u64,
    /// Every conversation of the user.
    pub conversations: Vec<ConversationState>,
}

/// A conversation as a device sees it on connect or on joining.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ConversationState {
    /// Conversation id.
    pub id: String,
    /// Changes when storage was reset or restored; cursors of another epoch are void.
    pub epoch: u64,
    /// The last `seq` stored.
    pub last_seq: u64,
    /// Every participant with their cursors.
    pub participants: Vec<ParticipantState>,
    /// `open` (absent), `pending` or `resolved`.
    #[serde(default, skip_serializing_if = "ConversationStatus::is_open")]
    pub status: ConversationStatus,
    /// The operator the conversation is assigned to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// The business's booking data (dates, customer name, booking status…), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
    /// Closed to new messages.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub closed: bool,
}

/// Where a conversation is in the operators' workflow.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ConversationStatus {
    /// Needs attention (the default; a client message reopens a resolved conversation).
    #[default]
    Open,
    /// Waiting on something (the client, the business).
    Pending,
    /// Done.
    Resolved,
}

impl ConversationStatus {
    /// Whether this is the default (omitted on the wire).
    pub fn is_open(&self) -> bool {
        *self == ConversationStatus::Open
    }

    /// The wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationStatus::Open => "open",
            ConversationStatus::Pending => "pending",
            ConversationStatus::Resolved => "resolved",
        }
    }

    /// Parses the storage name.
    pub fn parse(text: &str) -> Option<ConversationStatus> {
        match text {
            "open" => Some(ConversationStatus::Open),
            "pending" => Some(ConversationStatus::Pending),
            "resolved" => Some(ConversationStatus::Resolved),
            _ => None,
        }
    }
}

/// A participant and their cumulative cursors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ParticipantState {
    /// User id.
    pub user_id: String,
    /// Role in this conversation.
    pub role: Role,
    /// Highest `seq` stored on one of the user's devices.
    pub delivered: u64,
    /// Highest `seq` the user has seen.
    pub read: u64,
}

/// `message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Message {
    /// Conversation id.
    pub conversation: String,
    /// The id the sending device chose.
    pub id: String,
    /// Position in the conversation: 1, 2, 3, … with no gaps.
    pub seq: u64,
    /// User id of the sender.
    pub sender: String,
    /// Role of the sender in this conversation.
    pub role: Role,
    /// The text (for system messages, a human-readable summary of `data`).
    pub body: String,
    /// Server time the message was stored, in milliseconds since the Unix epoch.
    pub ts: u64,
    /// What kind of message: absent for an ordinary `text` message.
    #[serde(default, skip_serializing_if = "MessageKind::is_text")]
    pub kind: MessageKind,
    /// For system messages, the event: `{"event": "assigned", "from": …, "to": …, "by": …,
    /// "note": …}` or `{"event": "status", "from": …, "to": …, "by": …}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
    /// The files the message carries, in the order the sender gave them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
}

/// A file a message carries: an upload that was complete when the message was stored. The
/// bytes are served by `GET /v1/attachments/{id}`; this is what a device shows before fetching.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Attachment {
    /// The upload id.
    pub id: String,
    /// The file name the sender gave (display only).
    pub name: String,
    /// The type found in the content, e.g. `image/jpeg`.
    #[serde(rename = "type")]
    pub content_type: String,
    /// Bytes, as stored.
    pub size: u64,
    /// Hex SHA-256 of the stored bytes.
    pub sha256: String,
    /// Pixels across, for images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Pixels down, for images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Whether a thumbnail exists (`GET /v1/attachments/{id}/thumb`).
    #[serde(default)]
    pub thumb: bool,
}

/// The kinds of timeline entries.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// A message a participant wrote.
    #[default]
    Text,
    /// A private note between operators: never sent to clients (they get `skip` instead).
    Note,
    /// A change of the conversation (assignment, status) recorded in its timeline.
    System,
}

impl MessageKind {
    /// Whether this is the default kind (omitted on the wire).
    pub fn is_text(&self) -> bool {
        *self == MessageKind::Text
    }

    /// The wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Text => "text",
            MessageKind::Note => "note",
            MessageKind::System => "system",
        }
    }

    /// Parses the storage name.
    pub fn parse(text: &str) -> Option<MessageKind> {
        match text {
            "text" => Some(MessageKind::Text),
            "note" => Some(MessageKind::Note),
            "system" => Some(MessageKind::System),
            _ => None,
        }
    }
}

/// `skip`: `seq` exists in the conversation but is not for this device (a private note between
/// operators). The device advances its cursor past it as if it held it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skip {
    /// Conversation id.
    pub conversation: String,
    /// The skipped position.
    pub seq: u64,
}

/// `ack`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The message id from `send`.
    pub id: String,
    /// Conversation id.
    pub conversation: String,
    /// The message's `seq`.
    pub seq: u64,
    /// Server time the message was stored, in milliseconds since the Unix epoch.
    pub ts: u64,
}

/// `synced`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Synced {
    /// Conversation id.
    pub conversation: String,
    /// The device now holds (or has been sent) everything up to this `seq`.
    pub seq: u64,
}

/// `receipt` from the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// Conversation id.
    pub conversation: String,
    /// Whose cursors changed.
    pub user_id: String,
    /// Their role in this conversation.
    pub role: Role,
    /// Their delivered cursor.
    pub delivered: u64,
    /// Their read cursor.
    pub read: u64,
}

/// `typing` from the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Typing {
    /// Conversation id.
    pub conversation: String,
    /// Who is typing.
    pub user_id: String,
    /// Their role.
    pub role: Role,
    /// Whether they are typing; an active signal expires after `TYPING_TTL_MS` unless renewed.
    pub active: bool,
}

/// `joined`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Joined {
    /// The conversation joined.
    pub conversation: ConversationState,
}

/// `left`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Left {
    /// Conversation id.
    pub conversation: String,
}

/// `resync`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resync {
    /// Conversation id.
    pub conversation: String,
    /// The conversation's current epoch.
    pub epoch: u64,
    /// The conversation's last `seq`.
    pub last_seq: u64,
}

/// `error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorFrame {
    /// The request this answers: a `send`'s message id, or the `ref` of another frame; absent
    /// when the frame could not be read far enough to find one.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The `type` of the offending frame, when it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<String>,
    /// Stable machine-readable code.
    pub code: ErrorCode,
    /// Human-readable detail.
    pub message: String,
    /// Whether retrying unchanged can never succeed (the message becomes `failed`).
    pub permanent: bool,
    /// For `rate_limited`: when to retry, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl ErrorFrame {
    /// An error frame for `code` with a message, naming the request `reference`.
    pub fn new(code: ErrorCode, message: impl Into<String>, reference: Option<String>) -> Self {
        ErrorFrame {
            reference,
            frame: None,
            code,
            message: message.into(),
            permanent: code.is_permanent(),
            retry_after_ms: None,
        }
    }
}

/// `ping` from the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerPing {
    /// Server time, in milliseconds since the Unix epoch.
    pub ts: u64,
}

/// Why a client frame could not be decoded, with what could be learnt of the request so the
/// `error` frame can name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// `malformed_frame` or `unknown_frame`.
    pub code: ErrorCode,
    /// The `type` field, if the frame had one.
    pub frame: Option<String>,
    /// The `id` of a `send` or the `ref` of another frame, if present.
    pub reference: Option<String>,
    /// What was wrong.
    pub message: String,
}

impl DecodeError {
    /// The `error` frame that answers this failure.
    pub fn to_frame(&self) -> ServerFrame {
        let mut frame = ErrorFrame::new(self.code, self.message.clone(), self.reference.clone());
        frame.frame = self.frame.clone();
        ServerFrame::Error(frame)
    }
}

const CLIENT_FRAME_TYPES: &[&str] = &[
    "hello", "send", "receipt", "typing", "ping", "pong", "presence",
];

/// Decodes a client frame. On failure, looks at the text again (only then) to name the request:
/// its `type`, and its `id` (for `send`) or `ref`.
pub fn decode_client_frame(text: &str) -> Result<ClientFrame, DecodeError> {
    match serde_json::from_str::<ClientFrame>(text) {
        Ok(frame) => Ok(frame),
        Err(err) => Err(explain_decode_failure(text, err)),
    }
}

fn explain_decode_failure(text: &str, err: serde_json::Error) -> DecodeError {
    let Ok(serde_json::Value::Object(object)) = serde_json::from_str::<serde_json::Value>(text)
    else {
        return DecodeError {
            code: ErrorCode::MalformedFrame,
            frame: None,
            reference: None,
            message: format!("a frame must be a JSON object: {err}"),
        };
    };
    let frame = object
        .get("type")
        .and_then(|t| t.as_str())
        .map(str::to_owned);
    let reference_key = if frame.as_deref() == Some("send") {
        "id"
    } else {
        "ref"
    };
    let reference = object
        .get(reference_key)
        .and_then(|r| r.as_str())
        .map(str::to_owned);
    match frame.as_deref() {
        None => DecodeError {
            code: ErrorCode::MalformedFrame,
            frame,
            reference,
            message: "a frame must have a string field `type`".into(),
        },
        Some(kind) if !CLIENT_FRAME_TYPES.contains(&kind) => DecodeError {
            code: ErrorCode::UnknownFrame,
            message: format!("unknown frame type `{kind}`"),
            frame,
            reference,
        },
        Some(kind) => DecodeError {
            code: ErrorCode::MalformedFrame,
            message: format!("invalid `{kind}` frame: {err}"),
            frame,
            reference,
        },
    }
}

impl ServerFrame {
    /// Encodes the frame as the JSON text sent on the wire.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("server frames always serialise")
    }
}

impl ClientFrame {
    /// Encodes the frame as the JSON text sent on the wire.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("client frames always serialise")
    }
}

/// Decodes a server frame (used by devices). An `error` with a code this build does not know (a
/// newer server's) is read by its `permanent` flag, as `docs/protocol.md` §13 promises: it
/// becomes `bad_request` (permanent) or `unavailable` (transient), its message naming the code.
pub fn decode_server_frame(text: &str) -> Result<ServerFrame, serde_json::Error> {
    serde_json::from_str(text).or_else(|err| {
        let Ok(serde_json::Value::Object(mut value)) = serde_json::from_str(text) else {
            return Err(err);
        };
        let unknown_code = value.get("type").and_then(|t| t.as_str()) == Some("error")
            && value
                .get("code")
                .and_then(|c| c.as_str())
                .is_some_and(|c| serde_json::from_value::<ErrorCode>(c.into()).is_err());
        let permanent = value.get("permanent").and_then(|p| p.as_bool());
        let (true, Some(permanent)) = (unknown_code, permanent) else {
            return Err(err);
        };
        let code = value["code"].as_str().unwrap_or_default().to_owned();
        let known = if permanent {
            ErrorCode::BadRequest
        } else {
            ErrorCode::Unavailable
        };
        let message = value.get("message").and_then(|m| m.as_str()).unwrap_or("");
        value.insert("message".into(), format!("{code}: {message}").into());
        value.insert("code".into(), known.as_str().into());
        serde_json::from_value(serde_json::Value::Object(value)).map_err(|_| err)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_failures_name_the_request() {
        let err = decode_client_frame(r#"{"type":"send","id":"x1","body":"hi"}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::MalformedFrame);
        assert_eq!(err.reference.as_deref(), Some("x1"));
        assert_eq!(err.frame.as_deref(), Some("send"));

        let err = decode_client_frame(r#"{"type":"dance","ref":"r9"}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::UnknownFrame);
        assert_eq!(err.reference.as_deref(), Some("r9"));

        let err = decode_client_frame("{not json").unwrap_err();
        assert_eq!(err.code, ErrorCode::MalformedFrame);
        assert_eq!(err.reference, None);

        let err = decode_client_frame("[1,2]").unwrap_err();
        assert_eq!(err.code, ErrorCode::MalformedFrame);
    }
}
