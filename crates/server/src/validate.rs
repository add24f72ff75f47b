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

/// Checks an email address enough to send to it: one `@` with a local part and a domain that has
/// a dot, no spaces or control characters, at most 254 bytes (RFC 5321). What the mailbox is,
/// only the receiving server knows.
pub fn email(address: &str) -> Result<(), &'static str> {
    let address = address.trim();
    if address.len() > 254 {
        return Err("longer than 254 bytes");
    }
    if address
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"'))
    {
        return Err("has spaces or characters addresses cannot hold here");
    }
    let Some((local, domain)) = address.rsplit_once('@') else {
        return Err("has no @");
    };
    if local.is_empty() || local.contains('@') {
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
            " x@y.io ",
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
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }
}
