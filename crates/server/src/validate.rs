//! Checks shared by the WebSocket and HTTP paths, so both reject the same input with the same code.

use protocol::ids::{check_conversation_id, parse_message_id};
use protocol::ErrorCode;

use crate::config::Config;

/// Checks a message to send; returns its id in canonical form, or the code and a detail.
pub fn message(
    config: &Config,
    id: &str,
    conversation: &str,
    body: &str,
) -> Result<String, (ErrorCode, String)> {
    let id = parse_message_id(id).map_err(|code| {
        (
            code,
            format!("message id `{}` is not a hyphenated UUID", truncate(id)),
        )
    })?;
    check_conversation_id(conversation).map_err(|code| (code, code.title().to_owned()))?;
    if body.is_empty() {
        return Err((ErrorCode::EmptyMessage, "message body is empty".into()));
    }
    let max = config.message_bytes_max;
    if body.len() > max {
        let detail = format!(
            "message body of {} bytes is over the limit of {max} bytes",
            body.len()
        );
        return Err((ErrorCode::MessageTooLarge, detail));
    }
    Ok(id.to_string())
}

/// At most 64 bytes of `text` (on a character boundary), for echoing bad input in errors.
pub fn truncate(text: &str) -> &str {
    let mut end = text.len().min(64);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
