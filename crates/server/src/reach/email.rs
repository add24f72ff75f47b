//! Sending one email over SMTP: the message ([`build`]) and the connection ([`Mailer`]).
//!
//! What to send and when (the outbox, retries, links) is decided by the caller; this module only
//! turns an [`Email`] into an RFC 5322 message and hands it to the relay, saying whether a
//! failure is worth retrying ([`SendError`]).
//!
//! Each [`Mailer::send`] opens its own connection and closes it afterwards. Notifications are
//! few, and a fresh connection cannot be left half-way through a transaction by a send that was
//! cancelled (at shutdown, say), nor go stale while the relay restarts.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::{AsyncTransport, Message, Tokio1Executor};

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain SMTP (a relay on the same host or network). Credentials, if any, travel in clear.
    None,
    /// Plain connection upgraded with STARTTLS (usually port 587). The upgrade is required: if
    /// the relay does not offer it, nothing is sent.
    StartTls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

impl FromStr for Security {
    type Err = String;

    /// `none`, `starttls` or `tls` (any case).
    fn from_str(s: &str) -> Result<Security, String> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Ok(Security::None),
            "starttls" => Ok(Security::StartTls),
            "tls" => Ok(Security::Tls),
            _ => Err(format!(
                "unknown SMTP security {s:?}: expected none, starttls or tls"
            )),
        }
    }
}

impl fmt::Display for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Security::None => "none",
            Security::StartTls => "starttls",
            Security::Tls => "tls",
        })
    }
}

/// Where and how to reach the SMTP relay.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    /// Host name or IP address of the relay; with TLS, the name its certificate must carry.
    pub host: String,
    /// TCP port (25, 587 or 465 usually).
    pub port: u16,
    /// Plain, STARTTLS or implicit TLS.
    pub security: Security,
    /// User name for SMTP AUTH; set together with `password`, or neither.
    pub username: Option<String>,
    /// Password for SMTP AUTH. Never printed: `Debug` shows it redacted.
    pub password: Option<String>,
    /// Limit for one whole send: connecting, the TLS handshake, every command and the message.
    /// Past it the connection is dropped and the send fails as [`SendError::Transient`].
    pub timeout: Duration,
    /// A PEM file of extra trusted roots (the private CA that signed the relay's certificate),
    /// trusted along with the public web roots. A self-signed relay certificate marked as a CA
    /// (as `openssl req -x509` makes them) does not work here: the verifier refuses a CA
    /// certificate as a server's own.
    pub ca_file: Option<PathBuf>,
}

impl fmt::Debug for SmtpSettings {
    // By hand so that the password cannot reach a log line through `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| Redacted))
            .field("timeout", &self.timeout)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// Stands for a secret in `Debug` output.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// One plain-text email to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    /// `From`: an address, optionally with a display name (`Surechat <noreply@example.com>`).
    /// Also the envelope sender.
    pub from: String,
    /// `To`: the recipient, same forms as `from`. Also the only envelope recipient.
    pub to: String,
    /// `Subject`, any Unicode (encoded per RFC 2047 when not ASCII).
    pub subject: String,
    /// The body, any Unicode; sent as `text/plain; charset=utf-8`.
    pub text: String,
    /// `Message-ID` without the angle brackets, such as `notify-42@chat.example.com`. Derive it
    /// from what is being sent (an outbox row), not at random, so that a resend after a crash
    /// carries the same id and receivers can recognise the duplicate.
    pub message_id: String,
    /// A URL that unsubscribes the recipient in one POST: becomes `List-Unsubscribe: <url>` and
    /// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058, which wants HTTPS).
    pub list_unsubscribe_url: Option<String>,
    /// `Reply-To`, same forms as `from`.
    pub reply_to: Option<String>,
}

/// Why an email was not accepted by the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Might succeed later: the relay is unreachable or timed out, or answered 4xx, or refused our
    /// configuration (authentication, TLS). Retry with backoff.
    Transient(String),
    /// Will fail the same way again: the relay refused the message or recipient (5xx), or the
    /// email itself is malformed (an invalid address). Do not retry.
    Permanent(String),
}

impl SendError {
    /// Whether retrying might help.
    pub fn is_transient(&self) -> bool {
        matches!(self, SendError::Transient(_))
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Transient(why) => write!(f, "temporary email failure: {why}"),
            SendError::Permanent(why) => write!(f, "permanent email failure: {why}"),
        }
    }
}

impl std::error::Error for SendError {}

/// Classifies an SMTP reply that ended a send, from its code (`421`, `550`, ...) and text.
///
/// 4xx is transient and 5xx permanent (RFC 5321 §4.2.1), except for replies that concern the
/// relay's configuration rather than the message, which are transient so that mail resumes once
/// an operator fixes the settings instead of being dropped: authentication required or refused
/// (530, 534, 535, 538, RFC 4954). 552 (storage exceeded) is transient too, as RFC 5321
/// §4.5.3.1.10 asks. Any other code here is a protocol surprise, treated as transient.
pub fn classify_reply(code: u16, text: &str) -> SendError {
    let why = format!("SMTP {code} {}", text.trim());
    match code {
        530 | 534 | 535 | 538 | 552 => SendError::Transient(why),
        500..=599 => SendError::Permanent(why),
        _ => SendError::Transient(why),
    }
}

/// Classifies a failure of the SMTP client: replies by [`classify_reply`]; everything else
/// (refused or dropped connections, timeouts, TLS, unreadable replies, a relay without the
/// required STARTTLS or AUTH mechanism) is transient.
fn classify(err: &lettre::transport::smtp::Error) -> SendError {
    match err.status() {
        Some(code) => {
            // The source is the reply's text; the error's own `Display` repeats the code.
            let text = std::error::Error::source(err).map_or_else(String::new, |e| e.to_string());
            classify_reply(code.into(), &text)
        }
        None => SendError::Transient(err.to_string()),
    }
}

/// The message for `email`, ready to send: `From`, `To`, `Subject`, `Date`, `Message-ID`,
/// optional `Reply-To` and `List-Unsubscribe`/`List-Unsubscribe-Post`, and a
/// `text/plain; charset=utf-8` body (7bit, quoted-printable or base64, whichever fits). Header
/// values are encoded, so a subject cannot inject headers. An invalid address, message id or
/// unsubscribe URL is a [`SendError::Permanent`].
pub fn build(email: &Email) -> Result<Message, SendError> {
    let mailbox = |field: &str, value: &str| {
        value
            .parse::<Mailbox>()
            .map_err(|e| SendError::Permanent(format!("invalid {field} address {value:?}: {e}")))
    };
    let message_id = &email.message_id;
    if !is_message_id(message_id) {
        return Err(SendError::Permanent(format!(
            "invalid Message-ID {message_id:?}: expected left@right in printable ASCII"
        )));
    }
    let mut builder = Message::builder()
        .from(mailbox("From", &email.from)?)
        .to(mailbox("To", &email.to)?)
        .subject(email.subject.clone())
        .message_id(Some(format!("<{message_id}>")))
        .header(ContentType::TEXT_PLAIN);
    if let Some(reply_to) = &email.reply_to {
        builder = builder.reply_to(mailbox("Reply-To", reply_to)?);
    }
    if let Some(url) = &email.list_unsubscribe_url {
        if !is_header_url(url) {
            return Err(SendError::Permanent(format!(
                "invalid List-Unsubscribe URL {url:?}: expected printable ASCII without spaces or angle brackets"
            )));
        }
        builder = builder
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe"),
                format!("<{url}>"),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".to_owned(),
            ));
    }
    builder
        .body(body(&email.text))
        .map_err(|e| SendError::Permanent(format!("invalid email: {e}")))
}

/// The encoded body of `text`. lettre ends DATA with CRLF.CRLF even when the message already
/// ends with a line break, which would add an empty last line to every line-based (7bit or
/// quoted-printable) body; such a body leaves out its final line break and the terminator's CRLF
/// ends the last line instead. Base64 carries line breaks as data and needs nothing.
fn body(text: &str) -> Body {
    let body = Body::new(text.to_owned());
    let encoding = body.encoding();
    let line_based = matches!(
        encoding,
        ContentTransferEncoding::SevenBit | ContentTransferEncoding::QuotedPrintable
    );
    let trimmed = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t));
    match trimmed {
        Some(trimmed) if line_based => {
            Body::new_with_encoding(trimmed.to_owned(), encoding).unwrap_or(body)
        }
        _ => body,
    }
}

/// `left@right`, both sides non-empty printable ASCII without the characters that would end or
/// split the `<...>` (RFC 5322 §3.6.4, loosely).
fn is_message_id(id: &str) -> bool {
    let Some((left, right)) = id.split_once('@') else {
        return false;
    };
    let fine = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'@' | b'"' | b'\\'))
    };
    fine(left) && fine(right)
}

/// A URL that can stand inside `<...>` in a header without encoding.
fn is_header_url(url: &str) -> bool {
    !url.is_empty()
        && url
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>'))
}

/// How a PEM certificate begins.
const CERTIFICATE: &[u8] = b"-----BEGIN CERTIFICATE-----";

/// A connection recipe for one relay; each [`Mailer::send`] connects, sends and quits.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// Limit for one whole send.
    timeout: Duration,
    /// For `Debug` and errors: where it sends (never the credentials).
    relay: String,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("relay", &self.relay)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// A mailer for the relay in `settings`. Fails on settings that can never work: a username
    /// without a password (or the reverse), an unreadable or invalid `ca_file`. Nothing is
    /// connected yet.
    pub fn new(settings: &SmtpSettings) -> Result<Mailer, String> {
        let tls = |host: &str| -> Result<TlsParameters, String> {
            let mut params = TlsParameters::builder(host.to_owned());
            if let Some(path) = &settings.ca_file {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("reading SMTP CA file {}: {e}", path.display()))?;
                // A file without any certificate parses as an empty list: say so instead of
                // failing later, at the handshake, as an untrusted relay.
                if !pem.windows(CERTIFICATE.len()).any(|w| w == CERTIFICATE) {
                    return Err(format!(
                        "SMTP CA file {}: no PEM certificate in it",
                        path.display()
                    ));
                }
                let cert = Certificate::from_pem(&pem)
                    .map_err(|e| format!("SMTP CA file {}: {e}", path.display()))?;
                params = params.add_root_certificate(cert);
            }
            params
                .build_rustls()
                .map_err(|e| format!("SMTP TLS settings: {e}"))
        };
        let tls = match settings.security {
            Security::None => Tls::None,
            Security::StartTls => Tls::Required(tls(&settings.host)?),
            Security::Tls => Tls::Wrapper(tls(&settings.host)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            .port(settings.port)
            .tls(tls)
            .timeout(Some(settings.timeout));
        match (&settings.username, &settings.password) {
            (Some(user), Some(password)) => {
                builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
            }
            (None, None) => {}
            _ => return Err("SMTP username and password must be set together".to_owned()),
        }
        Ok(Mailer {
            transport: builder.build(),
            timeout: settings.timeout,
            relay: format!(
                "{}:{} ({})",
                settings.host, settings.port, settings.security
            ),
        })
    }

    /// Builds `email` ([`build`]) and hands it to the relay; `Ok` once the relay accepted it.
    /// Takes at most the settings' `timeout`.
    pub async fn send(&self, email: &Email) -> Result<(), SendError> {
        let message = build(email)?;
        // lettre's own timeout bounds only the TCP connect: a relay that accepts and then stops
        // answering would hold the send forever. The connection is this send's alone, so
        // dropping it half-way leaves nothing behind.
        match tokio::time::timeout(self.timeout, self.transport.send(message)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(err)) => Err(classify(&err)),
            Err(_) => Err(SendError::Transient(format!(
                "no answer from {} within {:?}",
                self.relay, self.timeout
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> Email {
        Email {
            from: "Surechat <noreply@chat.example.com>".into(),
            to: "Zoë Müller <zoe@example.org>".into(),
            subject: "Nouveau message de François — ça va ? 👋".into(),
            text: "Bonjour Zoë,\n\nFrançois a écrit : « on se voit à 18 h ? » 🙂\n".into(),
            message_id: "notify-42@chat.example.com".into(),
            list_unsubscribe_url: Some("https://chat.example.com/v1/unsubscribe?t=abc.def".into()),
            reply_to: Some("support@chat.example.com".into()),
        }
    }

    fn formatted(email: &Email) -> String {
        let bytes = build(email).expect("builds").formatted();
        String::from_utf8(bytes).expect("the formatted message is ASCII")
    }

    /// The header block, unfolded, as (name, value) pairs.
    fn headers(raw: &str) -> Vec<(String, String)> {
        let head = raw.split("\r\n\r\n").next().unwrap();
        let mut lines: Vec<String> = Vec::new();
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                lines
                    .last_mut()
                    .expect("a folded line continues a header")
                    .push_str(line);
            } else {
                lines.push(line.to_owned());
            }
        }
        lines
            .iter()
            .map(|line| {
                let (name, value) = line.split_once(':').expect("name: value");
                (name.to_owned(), value.trim().to_owned())
            })
            .collect()
    }

    fn header(raw: &str, name: &str) -> Option<String> {
        headers(raw)
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Decodes the RFC 2047 `=?utf-8?b?...?=` words lettre writes among plain ones; the space
    /// between two encoded words is not part of the text.
    fn decode_words(value: &str) -> String {
        use base64::Engine;
        let mut bytes = Vec::new();
        let mut after_encoded = false;
        for (i, word) in value.split(' ').enumerate() {
            let encoded = word
                .strip_prefix("=?utf-8?b?")
                .and_then(|w| w.strip_suffix("?="));
            if i > 0 && !(after_encoded && encoded.is_some()) {
                bytes.push(b' ');
            }
            match encoded {
                Some(inner) => bytes.extend(
                    base64::engine::general_purpose::STANDARD
                        .decode(inner)
                        .expect("base64"),
                ),
                None => bytes.extend(word.as_bytes()),
            }
            after_encoded = encoded.is_some();
        }
        String::from_utf8(bytes).expect("UTF-8")
    }

    /// The body, undoing the transfer encoding lettre chose.
    fn decoded_body(raw: &str) -> String {
        use base64::Engine;
        let (_, body) = raw.split_once("\r\n\r\n").unwrap();
        match header(raw, "Content-Transfer-Encoding").as_deref() {
            Some("7bit") => body.to_owned(),
            Some("base64") => {
                let joined: String = body.split("\r\n").collect();
                String::from_utf8(
                    base64::engine::general_purpose::STANDARD
                        .decode(joined)
                        .expect("base64"),
                )
                .unwrap()
            }
            Some("quoted-printable") => {
                let mut out = Vec::new();
                let bytes = body.as_bytes();
                let mut i = 0;
                while i < bytes.len() {
                    match bytes[i] {
                        b'=' if bytes[i + 1..].starts_with(b"\r\n") => i += 3,
                        b'=' => {
                            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                            out.push(u8::from_str_radix(hex, 16).unwrap());
                            i += 3;
                        }
                        b => {
                            out.push(b);
                            i += 1;
                        }
                    }
                }
                String::from_utf8(out).unwrap()
            }
            other => panic!("unexpected transfer encoding {other:?}"),
        }
    }

    #[test]
    fn the_message_carries_every_header() {
        let raw = formatted(&email());
        assert_eq!(
            header(&raw, "From").unwrap(),
            "Surechat <noreply@chat.example.com>"
        );
        let to = header(&raw, "To").unwrap();
        assert!(to.ends_with("<zoe@example.org>"), "{to}");
        assert_eq!(
            decode_words(to.trim_end_matches(" <zoe@example.org>")),
            "Zoë Müller"
        );
        let subject = header(&raw, "Subject").unwrap();
        assert!(subject.contains("=?utf-8?b?"), "encoded: {subject}");
        assert_eq!(decode_words(&subject), email().subject);
        assert_eq!(
            header(&raw, "Message-ID").unwrap(),
            "<notify-42@chat.example.com>"
        );
        assert_eq!(
            header(&raw, "Reply-To").unwrap(),
            "support@chat.example.com"
        );
        assert_eq!(
            header(&raw, "List-Unsubscribe").unwrap(),
            "<https://chat.example.com/v1/unsubscribe?t=abc.def>"
        );
        assert_eq!(
            header(&raw, "List-Unsubscribe-Post").unwrap(),
            "List-Unsubscribe=One-Click"
        );
        let date = header(&raw, "Date").expect("a Date header");
        assert!(date.ends_with("+0000"), "RFC 5322 date: {date}");
        assert_eq!(
            header(&raw, "Content-Type").unwrap(),
            "text/plain; charset=utf-8"
        );
        assert!(raw.is_ascii(), "every byte is encoded for a 7-bit path");
    }

    #[test]
    fn the_message_id_is_what_the_caller_chose() {
        let raw1 = formatted(&email());
        let raw2 = formatted(&email());
        assert_eq!(header(&raw1, "Message-ID"), header(&raw2, "Message-ID"));
    }

    #[test]
    fn optional_headers_are_absent_when_unset() {
        let raw = formatted(&Email {
            list_unsubscribe_url: None,
            reply_to: None,
            subject: "plain".into(),
            ..email()
        });
        assert_eq!(header(&raw, "Subject").unwrap(), "plain");
        assert_eq!(header(&raw, "List-Unsubscribe"), None);
        assert_eq!(header(&raw, "List-Unsubscribe-Post"), None);
        assert_eq!(header(&raw, "Reply-To"), None);
    }

    #[test]
    fn a_non_ascii_body_round_trips() {
        // Every line of a message ends with a line break, so texts here end with one too.
        for text in [
            email().text,
            "ascii only, short\n".to_owned(),
            "two lines\r\nwith CRLF\r\n".to_owned(),
            "é\n".to_owned(),
            "ends with an empty line\n\n".to_owned(),
            "日本語のメッセージ。\n".repeat(40),
            format!("{}\nend é\n", "a".repeat(2000)),
        ] {
            let raw = formatted(&Email {
                text: text.clone(),
                ..email()
            });
            assert!(
                raw.split("\r\n").all(|line| line.len() <= 998),
                "line length"
            );
            // What the relay stores: the SMTP client ends DATA with CRLF.CRLF, whose first CRLF
            // ends the body's last line.
            let got = decoded_body(&(raw + "\r\n")).replace("\r\n", "\n");
            assert_eq!(got, text.replace("\r\n", "\n"));
        }
    }

    #[test]
    fn a_subject_cannot_inject_headers() {
        let raw = formatted(&Email {
            subject: "hi\r\nBcc: victim@example.net".into(),
            ..email()
        });
        assert_eq!(header(&raw, "Bcc"), None);
        assert_eq!(build(&email()).unwrap().envelope().to().len(), 1);
    }

    #[test]
    fn invalid_input_is_permanent() {
        let bad = [
            Email {
                to: "not an address".into(),
                ..email()
            },
            Email {
                from: "".into(),
                ..email()
            },
            Email {
                reply_to: Some("nobody@".into()),
                ..email()
            },
            Email {
                message_id: "no-at-sign".into(),
                ..email()
            },
            Email {
                message_id: "a@b>\r\nBcc: x@y".into(),
                ..email()
            },
            Email {
                list_unsubscribe_url: Some("https://x/a b".into()),
                ..email()
            },
            Email {
                list_unsubscribe_url: Some("https://x/>\r\nBcc: x@y".into()),
                ..email()
            },
        ];
        for email in bad {
            match build(&email) {
                Err(SendError::Permanent(_)) => {}
                other => panic!("{email:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn replies_are_classified_by_code() {
        for code in [421, 450, 451, 452, 454, 530, 534, 535, 538, 552, 250, 354] {
            assert!(
                classify_reply(code, "x").is_transient(),
                "{code} is transient"
            );
        }
        for code in [500, 501, 503, 550, 551, 553, 554, 556] {
            assert!(
                !classify_reply(code, "x").is_transient(),
                "{code} is permanent"
            );
        }
        assert_eq!(
            classify_reply(550, " 5.1.1 no such user \r\n"),
            SendError::Permanent("SMTP 550 5.1.1 no such user".into())
        );
    }

    #[test]
    fn security_parses() {
        assert_eq!("none".parse(), Ok(Security::None));
        assert_eq!("STARTTLS".parse(), Ok(Security::StartTls));
        assert_eq!("tls".parse(), Ok(Security::Tls));
        assert!("ssl".parse::<Security>().is_err());
        for s in [Security::None, Security::StartTls, Security::Tls] {
            assert_eq!(s.to_string().parse(), Ok(s));
        }
    }

    fn settings() -> SmtpSettings {
        SmtpSettings {
            host: "smtp.example.com".into(),
            port: 587,
            security: Security::StartTls,
            username: Some("mailer".into()),
            password: Some("hunter2-secret".into()),
            timeout: Duration::from_secs(10),
            ca_file: None,
        }
    }

    #[test]
    fn debug_never_shows_the_password() {
        let settings = settings();
        let shown = format!("{settings:?} {settings:#?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        assert!(shown.contains("mailer"), "{shown}");
        let mailer = Mailer::new(&settings).unwrap();
        let shown = format!("{mailer:?} {mailer:#?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        let none = SmtpSettings {
            password: None,
            username: None,
            ..settings
        };
        assert!(format!("{none:?}").contains("password: None"));
    }

    #[test]
    fn settings_that_cannot_work_are_refused() {
        assert!(Mailer::new(&SmtpSettings {
            password: None,
            ..settings()
        })
        .is_err());
        assert!(Mailer::new(&SmtpSettings {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..settings()
        })
        .is_err());
        for security in [Security::None, Security::StartTls, Security::Tls] {
            Mailer::new(&SmtpSettings {
                security,
                ..settings()
            })
            .unwrap();
        }
    }
}
