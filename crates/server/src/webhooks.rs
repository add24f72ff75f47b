//! Webhook delivery: business events (written to the `events` table in the transaction of the
//! change that caused them) are POSTed to each active endpoint, in event order, signed with
//! HMAC-SHA256 over `timestamp.body`.
//!
//! Per endpoint, delivery is strictly ordered: event N+1 is sent only after event N got a 2xx,
//! and the endpoint's cursor (`delivered_up_to`) is stored after each success. A failure is
//! retried with exponential backoff (`webhook_backoff_first_ms`, 1 s by default, doubling,
//! capped at 10 min) for as long as
//! `webhook_disable_after_ms` (24 h by default) without a success; then the endpoint is disabled
//! (visible in `GET /v1/webhooks`) until re-enabled. A crash between a delivery and the storing
//! of its cursor redelivers that event with the same delivery id: duplicates are possible only
//! as redeliveries. One node delivers at a time (a lease in storage).
//!
//! The same loop records `message.unread_timeout` events every few seconds.
//!
//! Receivers are reached over plain HTTP (`http://`); put a TLS-terminating proxy in front of a
//! receiver that only speaks HTTPS.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use sha2::Sha256;

use crate::store::{EventRecord, Webhook};
use crate::{now_ms, AppState};

/// How often the loop looks for events to deliver.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// How often unread messages are checked for `message.unread_timeout`.
const UNREAD_CHECK_INTERVAL_MS: u64 = 5_000;
/// Events fetched per endpoint per round.
const EVENTS_PER_ROUND: u32 = 100;
/// Lease held by the node that delivers; renewed on every round that has work.
const LEASE_MS: u64 = 5_000;
/// Longest backoff of a failing endpoint (the first is `webhook_backoff_first_ms`).
const BACKOFF_CAP_MS: u64 = 10 * 60 * 1_000;

/// Where a webhook goes: `http://host[:port]/path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `host:port` to connect to.
    pub authority: String,
    /// Request path with query.
    pub path: String,
}

impl Target {
    /// Parses an endpoint URL.
    pub fn parse(url: &str) -> Result<Target, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            "webhook URLs must start with http:// (for an HTTPS receiver, put a TLS-terminating proxy in front)".to_owned()
        })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        // As `protocol::api::WEBHOOK_URL_PATTERN` says: host characters of RFC 3986 (no user
        // info), and a path of visible ASCII, which goes into the request line as it is.
        let host_char = |c: u8| c.is_ascii_alphanumeric() || b"._~%!$&'()*+,;=:[]-".contains(&c);
        if authority.is_empty() || !authority.bytes().all(host_char) {
            return Err(format!(
                "`{}` has no valid host",
                crate::validate::truncate(url)
            ));
        }
        if !path.bytes().all(|c| c.is_ascii_graphic()) {
            return Err(format!(
                "the path of `{}` must be visible ASCII (percent-encode the rest)",
                crate::validate::truncate(url)
            ));
        }
        let authority = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        Ok(Target {
            authority,
            path: path.to_owned(),
        })
    }
}

/// The signature header value: `v1=` and hex HMAC-SHA256 of `"{timestamp}.{body}"`.
pub fn signature(secret: &str, timestamp: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key size");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    format!(
        "v1={}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// POSTs one event; `Ok` on a 2xx answer.
async fn deliver(webhook: &Webhook, event: &EventRecord, timeout: Duration) -> Result<(), String> {
    let target = Target::parse(&webhook.url)?;
    let body = serde_json::to_vec(event).expect("events serialise");
    let timestamp = now_ms() / 1000;
    let request = hyper::Request::post(&target.path)
        .header(hyper::header::HOST, &target.authority)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header("x-surechat-delivery", event.id.to_string())
        .header("x-surechat-event", &event.kind)
        .header("x-surechat-timestamp", timestamp.to_string())
        .header(
            "x-surechat-signature",
            signature(&webhook.secret, timestamp, &body),
        )
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let attempt = async {
        let stream = tokio::net::TcpStream::connect(&target.authority)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(connection);
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("request: {e}"))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {}", response.status().as_u16()))
        }
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| "timed out".to_owned())?
}

/// Runs the delivery loop until shutdown.
pub async fn run(app: Arc<AppState>) {
    let holder = crate::auth::random_hex(8);
    // In memory: when each failing endpoint may be tried again.
    let mut retry_at: HashMap<u64, u64> = HashMap::new();
    let mut next_unread_check = 0;
    let timeout = Duration::from_millis(app.config.webhook_timeout_ms);
    loop {
        tokio::select! {
            _ = app.shutdown.cancelled() => return,
            _ = tokio::time::sleep(POLL_INTERVAL) => {}
        }
        let now = now_ms();
        // Reads first: an idle server must not write (take the lease, an fsync) five times a
        // second just to find there is nothing to deliver.
        let Ok(webhooks) = app.store.webhooks().await else {
            continue;
        };
        let mut pending = false;
        for webhook in webhooks.iter().filter(|w| w.state == "active") {
            let waiting = retry_at.get(&webhook.id).is_some_and(|at| *at > now);
            if !waiting
                && matches!(app.store.events_since(webhook.delivered_up_to, 1).await, Ok(e) if !e.is_empty())
            {
                pending = true;
                break;
            }
        }
        let unread_due = app.config.unread_timeout_ms > 0 && now >= next_unread_check;
        if !pending && !unread_due {
            continue;
        }
        match app
            .store
            .lease("webhooks".into(), holder.clone(), LEASE_MS, now)
            .await
        {
            Ok(true) => {}
            _ => continue,
        }
        if unread_due {
            next_unread_check = now + UNREAD_CHECK_INTERVAL_MS;
            if let Err(err) = app
                .store
                .flag_unread(now.saturating_sub(app.config.unread_timeout_ms), now)
                .await
            {
                tracing::warn!(%err, "cannot check unread messages");
            }
        }
        for mut webhook in webhooks.into_iter().filter(|w| w.state == "active") {
            if retry_at.get(&webhook.id).is_some_and(|at| *at > now) {
                continue;
            }
            let Ok(events) = app
                .store
                .events_since(webhook.delivered_up_to, EVENTS_PER_ROUND)
                .await
            else {
                continue;
            };
            for event in events {
                if app.shutdown.is_cancelled() {
                    return;
                }
                match deliver(&webhook, &event, timeout).await {
                    Ok(()) => {
                        webhook.delivered_up_to = event.id;
                        webhook.failures = 0;
                        webhook.failing_since = 0;
                        webhook.last_error = None;
                        retry_at.remove(&webhook.id);
                        if let Err(err) = app.store.update_webhook(webhook.clone()).await {
                            tracing::warn!(%err, "cannot store a webhook's progress; it will be redelivered");
                            break;
                        }
                    }
                    Err(why) => {
                        let now = now_ms();
                        webhook.failures += 1;
                        if webhook.failing_since == 0 {
                            webhook.failing_since = now;
                        }
                        webhook.last_error = Some(why.clone());
                        if now.saturating_sub(webhook.failing_since)
                            >= app.config.webhook_disable_after_ms
                        {
                            webhook.state = "disabled".into();
                            tracing::warn!(webhook = webhook.id, %why, "webhook disabled after sustained failure");
                        }
                        let shift = webhook.failures.saturating_sub(1).min(20) as u32;
                        let backoff = app
                            .config
                            .webhook_backoff_first_ms
                            .saturating_mul(1 << shift)
                            .min(BACKOFF_CAP_MS);
                        retry_at.insert(webhook.id, now + backoff);
                        tracing::info!(webhook = webhook.id, event = event.id, %why, backoff, "webhook delivery failed; will retry");
                        let _ = app.store.update_webhook(webhook.clone()).await;
                        break; // keep the order: nothing after this event until it is delivered
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_signatures() {
        assert_eq!(
            Target::parse("http://127.0.0.1:9000/hooks?x=1").unwrap(),
            Target {
                authority: "127.0.0.1:9000".into(),
                path: "/hooks?x=1".into()
            }
        );
        assert_eq!(
            Target::parse("http://example.test").unwrap().authority,
            "example.test:80"
        );
        assert!(Target::parse("https://example.test/").is_err());
        assert!(Target::parse("http:///x").is_err());
        // A known vector: HMAC-SHA256("secret", "1700000000.{}").
        let sig = signature("secret", 1_700_000_000, b"{}");
        assert!(sig.starts_with("v1=") && sig.len() == 3 + 64);
        assert_ne!(sig, signature("secret", 1_700_000_001, b"{}"));
    }
}
