//! Stored text back into domain values, for the SQL stores. A value storage cannot interpret — an
//! unknown role, kind or status, JSON that does not parse — is an error, never a default: a
//! default would quietly change what was stored (a private note shown to clients as text, an
//! operator treated as a client). Both SQL stores read through here, so they agree.

use protocol::frames::{ConversationStatus, MessageKind};
use protocol::Role;
use serde_json::Value;

use super::{StoreError, StoredMessage};

/// A stored value that cannot be interpreted. It reaches callers as
/// [`StoreError::Unavailable`] (see there why), with this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored data cannot be interpreted: {0}")]
pub struct Corrupt(pub String);

impl From<Corrupt> for StoreError {
    fn from(corrupt: Corrupt) -> Self {
        StoreError::Unavailable(corrupt.to_string())
    }
}

/// The columns of `messages` both SQL stores read a message from, in order.
pub(crate) const MESSAGE_COLUMNS: &str =
    "conversation_id, id, seq, sender_id, sender_role, body, created_at, kind, data, attachments";

/// [`MESSAGE_COLUMNS`] of the table aliased `m`, for joins.
pub(crate) const MESSAGE_COLUMNS_OF_M: &str = "m.conversation_id, m.id, m.seq, m.sender_id, \
    m.sender_role, m.body, m.created_at, m.kind, m.data, m.attachments";

/// A participant's or sender's role.
pub(crate) fn role(text: &str) -> Result<Role, Corrupt> {
    Role::parse(text).ok_or_else(|| Corrupt(format!("unknown role {text:?}")))
}

/// A message's kind.
pub(crate) fn kind(text: &str) -> Result<MessageKind, Corrupt> {
    MessageKind::parse(text).ok_or_else(|| Corrupt(format!("unknown message kind {text:?}")))
}

/// A conversation's status.
pub(crate) fn status(text: &str) -> Result<ConversationStatus, Corrupt> {
    ConversationStatus::parse(text)
        .ok_or_else(|| Corrupt(format!("unknown conversation status {text:?}")))
}

/// A JSON column (message data, metadata, event data).
pub(crate) fn json(text: &str) -> Result<Value, Corrupt> {
    serde_json::from_str(text).map_err(|err| Corrupt(format!("bad JSON ({err})")))
}

/// An event's data: the message a `message.created` row names (`0012_…` in SQLite, `0011_…` in
/// PostgreSQL), else its own JSON. `named` says whether the row names a message, `message`
/// whether that message was found beside it.
pub(crate) fn event_data(
    data: &str,
    named: bool,
    message: Option<StoredMessage>,
) -> Result<Value, Corrupt> {
    match (named, message) {
        (false, _) => json(data),
        (true, Some(message)) => Ok(serde_json::to_value(message).expect("messages serialise")),
        (true, None) => Err(Corrupt(
            "an event names a message that is not stored".into(),
        )),
    }
}

/// A message's attachments, stored as a JSON array (absent or `NULL`: none).
pub(crate) fn attachments(
    text: Option<&str>,
) -> Result<Vec<protocol::frames::Attachment>, Corrupt> {
    match text {
        None => Ok(Vec::new()),
        Some(text) => serde_json::from_str(text)
            .map_err(|err| Corrupt(format!("attachments that do not parse: {err}"))),
    }
}

/// A message's attachments as stored: `NULL` when none, so messages without files cost nothing.
pub(crate) fn attachments_text(attachments: &[protocol::frames::Attachment]) -> Option<String> {
    (!attachments.is_empty())
        .then(|| serde_json::to_string(attachments).expect("attachments serialise"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_aliased_columns_are_the_columns() {
        let aliased: Vec<String> = MESSAGE_COLUMNS
            .split(", ")
            .map(|c| format!("m.{c}"))
            .collect();
        assert_eq!(MESSAGE_COLUMNS_OF_M, aliased.join(", "));
    }

    #[test]
    fn known_values_parse() {
        assert_eq!(role("operator"), Ok(Role::Operator));
        assert_eq!(kind("note"), Ok(MessageKind::Note));
        assert_eq!(status("resolved"), Ok(ConversationStatus::Resolved));
        assert_eq!(json(r#"{"a":1}"#), Ok(serde_json::json!({"a": 1})));
    }

    #[test]
    fn unknown_values_are_errors_never_defaults() {
        for err in [
            role("admin").unwrap_err(),
            kind("sticker").unwrap_err(),
            status("archived").unwrap_err(),
            json("{not json").unwrap_err(),
        ] {
            let store_error = StoreError::from(err.clone());
            assert_eq!(store_error.code(), protocol::ErrorCode::Unavailable);
            assert!(
                store_error
                    .to_string()
                    .contains("stored data cannot be interpreted"),
                "{store_error}"
            );
        }
        assert!(
            role("Client").is_err(),
            "case matters: it is stored lowercase"
        );
    }
}
