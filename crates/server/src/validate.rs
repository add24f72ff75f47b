//! Checks shared by the WebSocket and HTTP paths, so both reject the same input with the same code.

use protocol::ids::{check_conversation_id, parse_message_id};
use protocol::ErrorCode;

use crate::config::Config;

/// Checks a message to send; returns its id and its attachments' ids in canonical form, or the
/// code and a detail. A message with attachments may have an empty body.
pub fn message(
    config: &Config,
    id: &str,
    conversation: &str,
    body: &str,
    attachments: &[String],
) -> Result<(String, Vec<String>), (ErrorCode, String)> {
    let id = parse_message_id(id).map_err(|code| {
        (
            code,
            format!("message id `{}` is not a hyphenated UUID", truncate(id)),
        )
    })?;
    check_conversation_id(conversation).map_err(|code| (code, code.title().to_owned()))?;
    if body.is_empty() && attachments.is_empty() {
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
    let chars_max = config.message_chars_max();
    if body.len() > chars_max {
        // Only a body of more bytes than the limit can have more characters.
        let chars = body.chars().count();
        if chars > chars_max {
            let detail = format!(
                "message body of {chars} characters is over the limit of {chars_max} characters"
            );
            return Err((ErrorCode::MessageTooLarge, detail));
        }
    }
    Ok((id.to_string(), attachment_ids(attachments)?))
}

/// The attachments' ids in canonical form: at most `ATTACHMENTS_MAX`, each a UUID, none twice.
/// An id that is not a UUID cannot name an upload: `attachment_not_found`, like any unknown id.
fn attachment_ids(ids: &[String]) -> Result<Vec<String>, (ErrorCode, String)> {
    let max = protocol::limits::ATTACHMENTS_MAX;
    if ids.len() > max {
        let detail = format!("{} attachments are over the limit of {max}", ids.len());
        return Err((ErrorCode::MessageTooLarge, detail));
    }
    let mut canonical: Vec<String> = Vec::with_capacity(ids.len());
    for id in ids {
        let parsed = parse_message_id(id)
            .map_err(|_| {
                (
                    ErrorCode::AttachmentNotFound,
                    format!("attachment `{}` is not an upload id", truncate(id)),
                )
            })?
            .to_string();
        if canonical.contains(&parsed) {
            return Err((
                ErrorCode::AttachmentNotFound,
                format!("attachment {parsed} is named twice"),
            ));
        }
        canonical.push(parsed);
    }
    Ok(canonical)
}

/// Whether `text` is only what `\s` matches in the API document's (ECMAScript) patterns: a text
/// its schema requires to match `\S` is refused exactly when this holds, so "not only spaces"
/// means the same to the server as to the published schema.
pub fn blank(text: &str) -> bool {
    text.chars().all(|c| {
        matches!(
            c,
            '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
                ..='\u{200a}'
                    | '\u{2028}'
                    | '\u{2029}'
                    | '\u{202f}'
                    | '\u{205f}'
                    | '\u{3000}'
                    | '\u{feff}'
        )
    })
}

/// At most 64 bytes of `text` (on a character boundary), for echoing bad input in errors.
pub fn truncate(text: &str) -> &str {
    let mut end = text.len().min(64);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Checks an email address enough to send to it: one `@` with a local part and a domain of at
/// least two non-empty dot-separated labels, no whitespace, control characters or `<>,;"`, at
/// most 254 characters (RFC 5321). What the mailbox is, only the receiving server knows. The
/// same rule as `protocol::api::EMAIL_PATTERN`, which the API document publishes.
pub fn email(address: &str) -> Result<(), &'static str> {
    if address.chars().count() > 254 {
        return Err("longer than 254 characters");
    }
    let bad = |c: char| {
        c.is_whitespace()
            || c.is_control()
            || ('\u{7f}'..='\u{9f}').contains(&c)
            || c == '\u{feff}'
            || matches!(c, '<' | '>' | ',' | ';' | '"')
    };
    if address.chars().any(bad) {
        return Err("has spaces or characters addresses cannot hold here");
    }
    let Some((local, domain)) = address.split_once('@') else {
        return Err("has no @");
    };
    if local.is_empty() || domain.contains('@') {
        return Err("needs exactly one @ with a name before it");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 || labels.iter().any(|l| l.is_empty()) {
        return Err("needs a domain like example.com after the @");
    }
    Ok(())
}

#[cfg(test)]
mod email_tests {
    use super::email;

    #[test]
    fn addresses() {
        for good in [
            "guest@example.com",
            "a.b+tag@mail.example.co.uk",
            "ünïcode@exämple.com",
        ] {
            assert_eq!(email(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "guest",
            "@example.com",
            "guest@",
            "guest@localhost",
            "a@b@c.com",
            "guest@exa mple.com",
            "g<x>@example.com",
            "a@.com",
            "a@b..com",
            " x@y.io",
            "x@y.io ",
            "x\u{feff}@y.io",
            "x\u{85}@y.io",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }
}
