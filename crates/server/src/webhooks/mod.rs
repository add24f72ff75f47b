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
//! Endpoints are served independently: each has its own task, with the connect and total
//! timeouts of `webhook_connect_timeout_ms` and `webhook_timeout_ms`, so a receiver that hangs
//! delays only its own events. Receivers may be `https://` (the usual web roots, plus
//! `webhook_ca_file`); where a delivery may connect is the policy of [`destination`].

pub mod destination;
mod unread;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::task::JoinHandle;

use crate::metrics::Failure;
use crate::store::{EventRecord, Webhook};
use crate::{now_ms, AppState};

/// How often the loop looks for events to deliver.
const POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);
/// How often unread messages are checked for `message.unread_timeout`.
const UNREAD_CHECK_INTERVAL_MS: u64 = 5_000;
/// Events fetched per endpoint per round.
const EVENTS_PER_ROUND: u32 = 100;
/// Lease held by the node that delivers; renewed on every round that has work (and while any
/// endpoint's task runs), so a slow receiver never outlives the lease.
const LEASE_MS: u64 = 5_000;
/// Longest backoff of a failing endpoint (the first is `webhook_backoff_first_ms`).
const BACKOFF_CAP_MS: u64 = 10 * 60 * 1_000;

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

/// POSTs one event; `Ok` on a 2xx answer, else why not (stored as the endpoint's `last_error`).
async fn deliver(
    client: &reqwest::Client,
    allow_private: bool,
    webhook: &Webhook,
    event: &EventRecord,
) -> Result<(), (Failure, String)> {
    let url = destination::parse_url(&webhook.url).map_err(|why| (Failure::Refused, why))?;
    if !allow_private {
        destination::check_literal(&url).map_err(|e| (Failure::Refused, e.to_string()))?;
    }
    let body = serde_json::to_vec(event).expect("events serialise");
    let timestamp = now_ms() / 1000;
    let signature = signature(&webhook.secret, timestamp, &body);
    let response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("x-surechat-delivery", event.id.to_string())
        .header("x-surechat-event", &event.kind)
        .header("x-surechat-timestamp", timestamp.to_string())
        .header("x-surechat-signature", signature)
        .body(body)
        .send()
        .await
        .map_err(describe)?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        let class = if status.is_client_error() {
            Failure::Http4xx
        } else {
            Failure::Http5xx
        };
        Err((class, format!("HTTP {}", status.as_u16())))
    }
}

/// A delivery error in one line: the policy's refusal as it is, otherwise the kind and the
/// innermost cause (reqwest's own message only says "error sending request"); with its class
/// for the metrics.
fn describe(err: reqwest::Error) -> (Failure, String) {
    let (class, kind) = if err.is_timeout() {
        (Failure::Timeout, "timed out")
    } else if err.is_connect() {
        (Failure::Connect, "connect")
    } else {
        (Failure::Other, "request")
    };
    let mut innermost = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<destination::Refused>() {
            return (Failure::Refused, refused.to_string());
        }
        innermost = cause.to_string();
        source = cause.source();
    }
    (class, format!("{kind}: {innermost}"))
}

/// Runs the delivery loop until shutdown: finds endpoints with work, holds the lease, and starts
/// one task per endpoint that has none running.
pub async fn run(app: Arc<AppState>) {
    let holder = crate::auth::random_hex(8);
    let client = match destination::client(&app.config) {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(%err, "cannot build the webhook client; webhooks are not delivered");
            return;
        }
    };
    // In memory: when each failing endpoint may be tried again.
    let mut retry_at: HashMap<u64, u64> = HashMap::new();
    // The task of each endpoint being served; it answers when it may be tried again, if it failed.
    let mut rounds: HashMap<u64, JoinHandle<Option<u64>>> = HashMap::new();
    let mut next_unread_check = 0;
    let mut unread = unread::UnreadSweep::default();
    loop {
        tokio::select! {
            _ = app.shutdown.cancelled() => break,
            _ = tokio::time::sleep(POLL_INTERVAL) => {}
        }
        let finished: Vec<u64> = rounds
            .iter()
            .filter(|(_, round)| round.is_finished())
            .map(|(id, _)| *id)
            .collect();
        for id in finished {
            let round = rounds.remove(&id).expect("listed above");
            match round.await {
                Ok(Some(at)) => {
                    retry_at.insert(id, at);
                }
                Ok(None) => {
                    retry_at.remove(&id);
                }
                Err(err) => tracing::warn!(webhook = id, %err, "webhook task failed"),
            }
        }
        let now = now_ms();
        // Reads first: an idle server must not write (take the lease, an fsync) five times a
        // second just to find there is nothing to deliver.
        let Ok(webhooks) = app.store.webhooks().await else {
            continue;
        };
        let idle = |webhook: &&Webhook| {
            webhook.state == "active"
                && !rounds.contains_key(&webhook.id)
                && retry_at.get(&webhook.id).is_none_or(|at| *at <= now)
        };
        let mut pending = !rounds.is_empty();
        let mut lag_ms = 0;
        for webhook in webhooks.iter().filter(|w| w.state == "active") {
            // The oldest event this endpoint has not had: its age is the lag, and if the
            // endpoint is free to be served, there is work.
            if let Ok(events) = app.store.events_since(webhook.delivered_up_to, 1).await {
                if let Some(oldest) = events.first() {
                    lag_ms = lag_ms.max(now.saturating_sub(oldest.created_at));
                    pending |= idle(&webhook);
                }
            }
        }
        let disabled = webhooks.iter().filter(|w| w.state == "disabled").count();
        app.metrics.webhook_lag_ms.store(lag_ms, Ordering::Relaxed);
        app.metrics
            .webhooks_disabled
            .store(disabled as u64, Ordering::Relaxed);
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
            _ => {
                // Another node delivers now: stop ours, so no endpoint is served twice at once.
                // An aborted delivery is redelivered later with the same id.
                for (_, round) in rounds.drain() {
                    round.abort();
                }
                continue;
            }
        }
        if unread_due {
            next_unread_check = now + UNREAD_CHECK_INTERVAL_MS;
            let (after, older_than) = unread.window(now, app.config.unread_timeout_ms);
            match app.store.flag_unread(after, older_than, now).await {
                Ok(flagged) => unread.checked(older_than, flagged),
                Err(err) => tracing::warn!(%err, "cannot check unread messages"),
            }
        }
        let starting: Vec<Webhook> = webhooks.iter().filter(idle).cloned().collect();
        for webhook in starting {
            let id = webhook.id;
            rounds.insert(
                id,
                tokio::spawn(serve_endpoint(app.clone(), client.clone(), webhook)),
            );
        }
    }
    // Shutting down: a delivery cut short here is redelivered after the restart, with its id.
    for (_, round) in rounds.drain() {
        round.abort();
    }
}

/// Delivers up to [`EVENTS_PER_ROUND`] events to one endpoint, in order, stopping at the first
/// failure; answers when the endpoint may be tried again after a failure.
async fn serve_endpoint(
    app: Arc<AppState>,
    client: reqwest::Client,
    mut webhook: Webhook,
) -> Option<u64> {
    let events = app
        .store
        .events_since(webhook.delivered_up_to, EVENTS_PER_ROUND)
        .await
        .ok()?;
    for event in events {
        if app.shutdown.is_cancelled() {
            return None;
        }
        match deliver(&client, app.config.webhook_allow_private, &webhook, &event).await {
            Ok(()) => {
                app.metrics.webhook_delivered();
                webhook.delivered_up_to = event.id;
                webhook.failures = 0;
                webhook.failing_since = 0;
                webhook.last_error = None;
                if let Err(err) = app.store.update_webhook(webhook.clone()).await {
                    tracing::warn!(%err, "cannot store a webhook's progress; it will be redelivered");
                    return None;
                }
            }
            Err((class, why)) => {
                app.metrics.webhook_failed(class);
                let now = now_ms();
                webhook.failures += 1;
                if webhook.failing_since == 0 {
                    webhook.failing_since = now;
                }
                webhook.last_error = Some(why.clone());
                if now.saturating_sub(webhook.failing_since) >= app.config.webhook_disable_after_ms
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
                tracing::info!(webhook = webhook.id, event = event.id, %why, backoff, "webhook delivery failed; will retry");
                let _ = app.store.update_webhook(webhook.clone()).await;
                // Keep the order: nothing after this event until it is delivered.
                return Some(now + backoff);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures() {
        // A known vector: HMAC-SHA256("secret", "1700000000.{}").
        let sig = signature("secret", 1_700_000_000, b"{}");
        assert!(sig.starts_with("v1=") && sig.len() == 3 + 64);
        assert_ne!(sig, signature("secret", 1_700_000_001, b"{}"));
    }
}
