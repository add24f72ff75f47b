//! Syntax of the ids on the wire. Conversation and user ids are chosen by the integrator (a booking
//! id, a customer id), so they are checked for size and a safe alphabet that needs no escaping in
//! URLs or logs; message ids are UUIDs chosen by the device.

use crate::limits::{CONVERSATION_ID_BYTES_MAX, USER_ID_BYTES_MAX};
use crate::ErrorCode;

/// The JSON Schema `pattern` of a conversation id (and its `minLength`/`maxLength`:
/// 1 … [`CONVERSATION_ID_BYTES_MAX`]), as [`check_conversation_id`] checks it.
pub const CONVERSATION_ID_PATTERN: &str = "^[A-Za-z0-9._:@-]{1,128}$";

/// The JSON Schema `pattern` of a user id (and its `minLength`/`maxLength`: 1 …
/// [`USER_ID_BYTES_MAX`]), as [`check_user_id`] checks it.
pub const USER_ID_PATTERN: &str = "^[A-Za-z0-9._:@-]{1,128}$";

/// The JSON Schema `pattern` of a message id: a hyphenated UUID, any case, as
/// [`parse_message_id`] accepts it.
pub const MESSAGE_ID_PATTERN: &str =
    "^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$";

/// The largest `seq`, cursor or numeric id the stores hold (a signed 64-bit integer in SQLite and
/// PostgreSQL): numbers above it in a request are rejected as bad input, never sent to storage.
pub const NUMBER_MAX: u64 = i64::MAX as u64;

/// Whether `c` may appear in a conversation or user id: ASCII letters, digits and `-_.:@`.
fn id_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b':' | b'@')
}

/// Checks an external conversation id: 1 to 128 bytes of `[A-Za-z0-9-_.:@]`.
pub fn check_conversation_id(id: &str) -> Result<(), ErrorCode> {
    if id.is_empty() || id.len() > CONVERSATION_ID_BYTES_MAX || !id.bytes().all(id_char) {
        return Err(ErrorCode::InvalidConversationId);
    }
    Ok(())
}

/// Checks a user id: 1 to 128 bytes of `[A-Za-z0-9-_.:@]`.
pub fn check_user_id(id: &str) -> Result<(), ErrorCode> {
    if id.is_empty() || id.len() > USER_ID_BYTES_MAX || !id.bytes().all(id_char) {
        return Err(ErrorCode::InvalidUserId);
    }
    Ok(())
}

/// Parses a message id: a UUID in its hyphenated form (any case). Returns it in canonical
/// lowercase form, so `ABC…` and `abc…` are the same idempotency key.
pub fn parse_message_id(id: &str) -> Result<uuid::Uuid, ErrorCode> {
    if id.len() != 36 {
        return Err(ErrorCode::InvalidId);
    }
    uuid::Uuid::try_parse(id).map_err(|_| ErrorCode::InvalidId)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert!(check_conversation_id("booking-1001").is_ok());
        assert!(check_conversation_id("").is_err());
        assert!(check_conversation_id("a/b").is_err());
        assert!(check_conversation_id(&"x".repeat(129)).is_err());
        assert!(check_user_id("ana@example.com").is_ok());
        assert!(check_user_id("ana smith").is_err());
        let id = parse_message_id("0190F3C2-7A3B-7C4D-8E5F-1A2B3C4D5E6F").unwrap();
        assert_eq!(id.to_string(), "0190f3c2-7a3b-7c4d-8e5f-1a2b3c4d5e6f");
        assert_eq!(parse_message_id("not-a-uuid"), Err(ErrorCode::InvalidId));
        assert_eq!(
            parse_message_id("0190f3c27a3b7c4d8e5f1a2b3c4d5e6f"),
            Err(ErrorCode::InvalidId)
        );
        assert_eq!(
            CONVERSATION_ID_PATTERN,
            format!("^[A-Za-z0-9._:@-]{{1,{CONVERSATION_ID_BYTES_MAX}}}$")
        );
        assert_eq!(
            USER_ID_PATTERN,
            format!("^[A-Za-z0-9._:@-]{{1,{USER_ID_BYTES_MAX}}}$")
        );
    }
}
