//! JSON bodies of the HTTP API under `/v1`. Messages and participant cursors have the same shape
//! over HTTP as in WebSocket frames ([`crate::frames::Message`], [`crate::frames::ParticipantState`]).

use serde::{Deserialize, Serialize};

use crate::frames::{ConversationStatus, Message, ParticipantState};
use crate::{ErrorCode, Role};

/// An optional non-negative integer, also when written with a zero fraction (`1.0`): JSON Schema,
/// and so the API description, counts that as the integer it equals.
fn integer<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    use serde::de::Error;
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    if let Some(n) = number.as_u64() {
        return Ok(Some(n));
    }
    match number.as_f64() {
        Some(f) if f.fract() == 0.0 && (0.0..2f64.powi(64)).contains(&f) => Ok(Some(f as u64)),
        _ => Err(D::Error::custom(format!(
            "invalid value: {number}, expected a non-negative integer"
        ))),
    }
}

/// A participant to add: `{"user_id": "...", "role": "client" | "operator"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ParticipantSpec {
    /// User id.
    #[schemars(regex(pattern = crate::ids::USER_ID_PATTERN), length(min = 1, max = 128))]
    pub user_id: String,
    /// Role in the conversation.
    pub role: Role,
    /// The person's email address, for telling a client by email of an answer they have not
    /// read (see the guide's notifications section). Kept per user; absent: unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 254), regex(pattern = crate::api::EMAIL_PATTERN))]
    pub email: Option<String>,
}

/// What the server takes as an email address: one `@`, a local part, and a domain of at least
/// two non-empty labels; no whitespace, control characters or `<>,;"`.
pub const EMAIL_PATTERN: &str = r#"^[^\s@<>,;"\x00-\x1f\x7f-\x9f]+@[^\s@<>,;".\x00-\x1f\x7f-\x9f]+(\.[^\s@<>,;".\x00-\x1f\x7f-\x9f]+)+$"#;

/// `POST /v1/conversations` (admin).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CreateConversation {
    /// External id, e.g. the booking id.
    #[schemars(regex(pattern = crate::ids::CONVERSATION_ID_PATTERN), length(min = 1, max = 128))]
    pub id: String,
    /// Initial participants.
    #[serde(default)]
    pub participants: Vec<ParticipantSpec>,
}

/// A conversation as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ConversationView {
    /// External id.
    pub id: String,
    /// Epoch (see the protocol's `resync`).
    pub epoch: u64,
    /// Last `seq` stored.
    pub last_seq: u64,
    /// Creation time, in milliseconds since the Unix epoch.
    pub created_at: u64,
    /// Participants and their cursors.
    pub participants: Vec<ParticipantState>,
    /// `open`, `pending` or `resolved`.
    #[serde(default)]
    pub status: ConversationStatus,
    /// The operator it is assigned to.
    #[serde(default)]
    pub assignee: Option<String>,
    /// The business's booking data.
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
    /// Closed to new messages.
    #[serde(default)]
    pub closed: bool,
}

/// `PUT /v1/conversations/{id}` (admin): creates the conversation or updates it, idempotently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema)]
pub struct UpsertConversation {
    /// Participants to add (existing ones are kept; roles must match).
    #[serde(default)]
    pub participants: Vec<ParticipantSpec>,
    /// Booking data, replacing what was there (absent: unchanged).
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
    /// Close (`true`) or reopen (`false`) to new messages (absent: unchanged).
    #[serde(default)]
    pub closed: Option<bool>,
}

/// `POST /v1/conversations/{id}/assign` (operator or admin): assign, transfer or unassign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AssignBody {
    /// The operator to assign to; `null` unassigns.
    #[schemars(regex(pattern = crate::ids::USER_ID_PATTERN), length(min = 1, max = 128))]
    pub operator_id: Option<String>,
    /// An optional note shown in the timeline (e.g. why it was transferred).
    #[serde(default)]
    pub note: Option<String>,
}

/// An operator of the directory: the only users who can be operators of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Operator {
    /// User id (the `sub` of the operator's tokens).
    pub id: String,
    /// The name clients and other operators see instead of the id.
    pub name: String,
    /// A picture of the operator, if any.
    #[serde(default)]
    pub avatar_url: Option<String>,
    /// Only active operators may connect, be assigned or receive transfers.
    pub active: bool,
}

/// `PUT /v1/operators/{id}` (admin): create or replace a directory entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PutOperator {
    /// The display name (1 to 100 characters, not only spaces).
    #[schemars(length(min = 1, max = 100), regex(pattern = r"\S"))]
    pub name: String,
    /// A picture of the operator (an `https:` or `http:` URL of visible ASCII, at most 2048).
    #[serde(default)]
    #[schemars(length(max = 2048), regex(pattern = r"^https?://[!-~]*$"))]
    pub avatar_url: Option<String>,
    /// Defaults to `true`.
    #[serde(default)]
    pub active: Option<bool>,
}

/// `GET /v1/operators`: the directory, by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OperatorList {
    /// The operators.
    pub operators: Vec<Operator>,
}

/// `POST /v1/conversations/{id}/status` (operator or admin).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StatusBody {
    /// The new status.
    pub status: ConversationStatus,
}

/// `POST /v1/tokens` (admin).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MintToken {
    /// The `sub` claim.
    #[schemars(regex(pattern = crate::ids::USER_ID_PATTERN), length(min = 1, max = 128))]
    pub user_id: String,
    /// The `role` claim.
    pub role: Role,
    /// Lifetime in seconds; defaults to one day, at most 30 days.
    #[serde(default, deserialize_with = "integer")]
    #[schemars(range(min = 1, max = crate::limits::TOKEN_TTL_S_MAX))]
    pub ttl_s: Option<u64>,
    /// `all` lets an operator see every conversation in the inbox (`view=all`, `unassigned`).
    #[serde(default)]
    #[schemars(extend("enum" = ["all", null]))]
    pub scope: Option<String>,
}

/// One row of the operator inbox (`GET /v1/inbox`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InboxRow {
    /// Conversation id.
    pub id: String,
    /// Status.
    pub status: ConversationStatus,
    /// Assigned operator.
    pub assignee: Option<String>,
    /// Booking data.
    pub metadata: Option<serde_json::Value>,
    /// Closed to new messages.
    pub closed: bool,
    /// The newest message the caller may see.
    pub last_message: Option<Message>,
    /// Messages from others the caller has not read.
    pub unread: u64,
    /// Since when the client waits for an answer: the time of the first client message after the
    /// last operator message, ms since the epoch. `null` when nobody waits: the conversation is
    /// resolved, its last message (private notes and status changes aside) is an operator's, or
    /// it has no messages.
    pub waiting_since: Option<u64>,
    /// Last seq (for resuming).
    pub last_seq: u64,
}

/// `GET /v1/inbox?view=mine|unassigned|all`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Inbox {
    /// The view.
    pub view: String,
    /// Rows, longest waiting first, then most recently active.
    pub conversations: Vec<InboxRow>,
}

/// The JSON Schema `pattern` of a webhook URL: `https://` or `http://`, a host name whose last
/// label starts with a letter (so a URL parser never reads it as an IPv4 address), an optional
/// port, and an optional path of visible ASCII characters. (The server also takes IP literals;
/// the destination policy decides where deliveries may go.)
pub const WEBHOOK_URL_PATTERN: &str = r"^https?://(([A-Za-z0-9][A-Za-z0-9-]{0,62}\.){0,30}[A-Za-z][A-Za-z0-9-]{0,62}|((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9]))(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(/[!-~]*)?$";

/// `POST /v1/webhooks` (admin).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CreateWebhook {
    /// Where to POST events (`https://host[:port]/path`, or `http://`).
    #[schemars(regex(pattern = WEBHOOK_URL_PATTERN))]
    pub url: String,
    /// Signing secret, at least 16 characters; generated (and returned once) when absent.
    #[serde(default)]
    #[schemars(length(min = 16))]
    pub secret: Option<String>,
}

/// Answer to `POST /v1/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TokenResponse {
    /// The JWT (HS256).
    pub token: String,
    /// Expiry, in seconds since the Unix epoch.
    pub expires_at: u64,
}

/// One row of `GET /v1/conversations` (user).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ConversationSummary {
    /// External id.
    pub id: String,
    /// Epoch.
    pub epoch: u64,
    /// Last `seq` stored.
    pub last_seq: u64,
    /// The caller's role in it.
    pub role: Role,
    /// The caller's delivered cursor.
    pub delivered: u64,
    /// The caller's read cursor.
    pub read: u64,
    /// Messages from others after the caller's read cursor.
    pub unread: u64,
    /// The newest message, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_message: Option<Message>,
}

/// Answer to `GET /v1/conversations` (user).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ConversationList {
    /// The caller's conversations, most recently active first.
    pub conversations: Vec<ConversationSummary>,
}

/// `POST /v1/conversations/{id}/messages` (user).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SendMessage {
    /// The message id, a UUID chosen by the caller: the idempotency key.
    #[schemars(regex(pattern = crate::ids::MESSAGE_ID_PATTERN), length(min = 36, max = 36))]
    pub id: String,
    /// The text (at most `message_bytes_max` bytes); may be empty when `attachments` is not.
    pub body: String,
    /// `note` for a private note between operators (operators only).
    #[serde(default, skip_serializing_if = "crate::frames::MessageKind::is_text")]
    pub kind: crate::frames::MessageKind,
    /// Ids of complete uploads of the sender in this conversation (at most `ATTACHMENTS_MAX`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub attachments: Vec<String>,
}

/// Answer to `GET /v1/conversations/{id}/messages?after=SEQ&limit=N` (user).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MessagePage {
    /// Conversation id.
    pub conversation: String,
    /// Epoch.
    pub epoch: u64,
    /// Last `seq` stored when the page was read.
    pub last_seq: u64,
    /// Messages with `seq > after`, ascending, at most `limit`.
    pub messages: Vec<Message>,
}

/// `POST /v1/conversations/{id}/receipts` (user). Cursors only move forward.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema)]
pub struct ReceiptBody {
    /// Delivered up to this `seq`.
    #[serde(default, deserialize_with = "integer")]
    #[schemars(range(max = crate::ids::NUMBER_MAX))]
    pub delivered: Option<u64>,
    /// Read up to this `seq`.
    #[serde(default, deserialize_with = "integer")]
    #[schemars(range(max = crate::ids::NUMBER_MAX))]
    pub read: Option<u64>,
}

/// An RFC 9457 problem document (`application/problem+json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Problem {
    /// A URI naming the problem type: `urn:surechat:error:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short human summary of the problem type.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What was wrong with this request.
    pub detail: String,
    /// Stable machine-readable code.
    pub code: ErrorCode,
    /// For `rate_limited`: when to retry, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// For `offset_mismatch`: the upload's stored offset, where to resume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

impl Problem {
    /// A problem document for `code` with `detail`.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("urn:surechat:error:{}", code.as_str()),
            title: code.title().to_owned(),
            status: code.http_status(),
            detail: detail.into(),
            code,
            retry_after_ms: None,
            offset: None,
        }
    }
}

/// `PUT /v1/uploads/{id}` (user): creates an upload, or answers the same one again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUpload {
    /// The conversation it is for (the user must be a participant).
    #[schemars(regex(pattern = crate::ids::CONVERSATION_ID_PATTERN), length(min = 1, max = 128))]
    pub conversation: String,
    /// Bytes in the file, 1 … `attachment_bytes_max`.
    #[schemars(range(min = 1))]
    pub length: u64,
    /// The file's name as the user knows it: 1–255 bytes, no control characters. Shown only.
    #[schemars(length(min = 1, max = 255))]
    pub name: String,
    /// The type the device believes (informational: the server decides by content).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub declared_type: Option<String>,
}

/// An upload as the server answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UploadView {
    /// The upload id (lowercase).
    pub id: String,
    /// Its conversation.
    pub conversation: String,
    /// The file name given at creation.
    pub name: String,
    /// Bytes in the file.
    pub length: u64,
    /// Bytes stored and durable: resume from here.
    pub offset: u64,
    /// `receiving`, `complete` or `refused`.
    pub state: String,
    /// Once complete: the type found in the content.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Once complete: bytes as stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Once complete: hex SHA-256 of the stored bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Once complete, for images: pixels across.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Once complete, for images: pixels down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Whether a thumbnail exists.
    #[serde(default)]
    pub thumb: bool,
}

/// `GET /v1/attachments/{id}/link` (user): signed links for clients that cannot send headers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AttachmentLink {
    /// The file, relative to the server (`/v1/attachments/{id}?…`).
    pub url: String,
    /// The thumbnail, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumb_url: Option<String>,
    /// When the links stop working, ms since the Unix epoch.
    pub expires_at: u64,
}

/// `GET /v1/push/key`: the server's VAPID public key, the `applicationServerKey` a browser
/// subscribes with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PushKey {
    /// Base64url (no padding) of the uncompressed P-256 point (65 bytes).
    pub public_key: String,
}

/// The keys of a push subscription, as `PushSubscription.toJSON()` gives them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PushSubscriptionKeys {
    /// The browser's P-256 public key, base64url.
    #[schemars(length(min = 1, max = 200))]
    pub p256dh: String,
    /// The browser's 16-byte authentication secret, base64url.
    #[schemars(length(min = 1, max = 100))]
    pub auth: String,
}

/// `POST /v1/push/subscriptions` (user): `PushSubscription.toJSON()` as the browser gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PushSubscriptionBody {
    /// The push service's URL for this browser (`https://`).
    #[schemars(length(min = 1, max = 2048))]
    pub endpoint: String,
    /// Its keys.
    pub keys: PushSubscriptionKeys,
    /// When the push service ends the subscription, if it says (ignored: a push answered 404
    /// or 410 removes it).
    #[serde(default, rename = "expirationTime")]
    pub expiration_time: Option<serde_json::Value>,
}

/// A registered push subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PushSubscriptionView {
    /// Its id (for `DELETE /v1/push/subscriptions/{id}`).
    pub id: String,
    /// The push service's URL.
    pub endpoint: String,
    /// When it was registered, in milliseconds since the Unix epoch.
    pub created_at: u64,
}

/// `GET /v1/push/subscriptions` (user): the caller's subscriptions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PushSubscriptionList {
    /// Oldest first.
    pub subscriptions: Vec<PushSubscriptionView>,
}

/// `POST /v1/links/redeem`: a link from an email or a push, used once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RedeemLink {
    /// The `surechat_link` parameter of the link.
    #[schemars(length(min = 1, max = 200))]
    pub token: String,
}

/// Answer to `POST /v1/links/redeem`: a fresh client session for the link's conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LinkSession {
    /// A client token (JWT) for the user.
    pub token: String,
    /// Its expiry, in seconds since the Unix epoch.
    pub expires_at: u64,
    /// The client.
    pub user_id: String,
    /// The conversation the link opens.
    pub conversation_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_may_have_a_zero_fraction() {
        let body: ReceiptBody = serde_json::from_str(r#"{"delivered": 3.0, "read": 2}"#).unwrap();
        assert_eq!((body.delivered, body.read), (Some(3), Some(2)));
        let body: ReceiptBody = serde_json::from_str(r#"{"read": null}"#).unwrap();
        assert_eq!(body, ReceiptBody::default());
        for bad in ["1.5", "-1", "-1.0", "1e30", "\"1\""] {
            let text = format!(r#"{{"delivered": {bad}}}"#);
            assert!(serde_json::from_str::<ReceiptBody>(&text).is_err(), "{bad}");
        }
    }
}
