//! Reaching the person, not only the device: Web Push to browsers with no page open, and an
//! email to a guest who left, when a message stays unread.
//!
//! One loop (on one node at a time: a lease in storage) does two things every
//! `reach_interval_ms`:
//! 1. **Decide.** It reads the facts of every reachable participant with something unread
//!    ([`crate::store::reach::ReachStore::reach_facts`]), asks [`policy::decide`], and stores
//!    each decision together with its deliveries (one per push subscription, or the email with
//!    its single-use link) in one transaction. Storage, not memory, holds what is pending, so a
//!    restart between a message and its email sends the email once; a mark per person,
//!    conversation and channel keeps a decision from being taken twice.
//! 2. **Deliver.** It sends what is due from the outbox: encrypted pushes ([`webpush`]) and
//!    emails over SMTP ([`email`]). Just before sending it checks again that the delivery is
//!    still wanted ([`policy::still_wanted`]): nothing once the person read the first message it
//!    tells of, no push once a device of theirs is connected. A failure is retried with backoff
//!    (`webhook_backoff_first_ms` doubling, at most 10 minutes) until the delivery expires
//!    (`push_ttl_s` for pushes, a day for emails); a push service answering 404 or 410 removes
//!    the subscription. A crash between sending and recording sends that delivery again after
//!    the restart: an email carries the same `Message-ID` then.
//!
//! Private notes are not text messages: they are never decided on, quoted or counted.

pub mod compose;
pub mod email;
pub mod links;
pub mod policy;
pub mod routes;
mod settings;
pub mod webpush;

use std::sync::Arc;
use std::time::Duration;

use protocol::frames::PresenceStatus;
use protocol::Role;

use crate::store::reach::{Channel, Delivery, EmailLink, Notice, ReachFacts, Settled};
use crate::{now_ms, AppState, Config};

/// Lease held by the node that reaches people: longer than one delivery may take (the SMTP and
/// push timeouts are 10 s by default), renewed before each delivery.
const LEASE_MS: u64 = 30_000;
/// Deliveries sent per round.
const DELIVERIES_PER_ROUND: u32 = 100;
/// Longest wait between two attempts of a failing delivery.
const BACKOFF_CAP_MS: u64 = 10 * 60 * 1000;
/// How long an email is retried before it is given up.
const EMAIL_EXPIRY_MS: u64 = 24 * 3600 * 1000;
/// Lifetime of the client token a redeemed link mints, in seconds (a day, like `POST /v1/tokens`).
pub const LINK_SESSION_TTL_S: u64 = 24 * 3600;

/// The keys and connections reaching people needs, made once at start.
pub struct Reach {
    /// The server's VAPID key pair.
    pub vapid: webpush::Vapid,
    /// The SMTP connection, when `smtp_host` is set.
    mailer: Option<email::Mailer>,
    /// The HTTP client for push services, under the destination policy.
    client: Option<reqwest::Client>,
}

impl Reach {
    /// From the settings: the VAPID key given (else a fresh one for this process only: `surechat
    /// serve` keeps one in the data directory), and the SMTP mailer if configured.
    pub fn new(config: &Config) -> Reach {
        let vapid = match config.vapid_private_key.as_deref() {
            Some(pem) => webpush::Vapid::from_pem(pem).unwrap_or_else(|err| {
                tracing::error!(%err, "vapid_private_key is not usable; pushes use a key of this process only");
                webpush::Vapid::generate()
            }),
            None => webpush::Vapid::generate(),
        };
        let mailer = smtp_settings(config).and_then(|settings| {
            email::Mailer::new(&settings)
                .map_err(|err| tracing::error!(%err, "cannot set up SMTP; no email is sent"))
                .ok()
        });
        let client = crate::webhooks::destination::client_for(
            config,
            config.push_allow_private,
            concat!("surechat-push/", env!("CARGO_PKG_VERSION")),
        )
        .map_err(|err| tracing::error!(%err, "cannot build the push client; no push is sent"))
        .ok();
        Reach {
            vapid,
            mailer,
            client,
        }
    }
}

/// The SMTP settings of the config, if email is configured.
pub fn smtp_settings(config: &Config) -> Option<email::SmtpSettings> {
    let host = config.smtp_host.clone()?;
    Some(email::SmtpSettings {
        host,
        port: config.smtp_port,
        security: config.smtp_security.parse().ok()?,
        username: config.smtp_username.clone(),
        password: config.smtp_password.clone(),
        timeout: Duration::from_millis(config.smtp_timeout_ms),
        ca_file: None,
    })
}

/// The server's own URL for links: `public_url`, else `http://` and the address it listens on.
pub fn public_url(app: &AppState) -> String {
    let config = &app.config;
    match &config.public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => format!("http://{}", app.bound.get().unwrap_or(&config.listen)),
    }
}

/// The page an email's link opens: `email_link_base`, else the demo's client page.
fn link_base(app: &AppState) -> String {
    app.config
        .email_link_base
        .clone()
        .unwrap_or_else(|| format!("{}/web/demo/client.html", public_url(app)))
}

fn rules(app: &AppState) -> policy::Rules {
    let config = &app.config;
    policy::Rules {
        push: app.reach.client.is_some(),
        push_delay_ms: config.push_delay_ms,
        email: app.reach.mailer.is_some() && config.email_from.is_some(),
        email_delay_ms: config.email_delay_ms,
        email_period_ms: config.email_period_ms,
    }
}

/// Whether a device of `user` is connected: to this node, or (operators) to any node.
fn connected(app: &AppState, user: &str, role: Role) -> bool {
    app.hub.has_user(user)
        || (role == Role::Operator && app.presence.status(user) != PresenceStatus::Offline)
}

/// Runs the loop until shutdown.
pub async fn run(app: Arc<AppState>) {
    let holder = crate::auth::random_hex(8);
    let interval = Duration::from_millis(app.config.reach_interval_ms.max(10));
    loop {
        tokio::select! {
            _ = app.shutdown.cancelled() => break,
            _ = tokio::time::sleep(interval) => {}
        }
        let rules = rules(&app);
        if !rules.push && !rules.email {
            continue;
        }
        // Reads first: an idle server must not take the lease (a write) every second.
        let now = now_ms();
        let facts = match app.store.reach_facts().await {
            Ok(facts) => facts,
            Err(err) => {
                tracing::warn!(%err, "cannot read whom to notify");
                continue;
            }
        };
        let decisions: Vec<(ReachFacts, Vec<policy::Decision>)> = facts
            .into_iter()
            .map(|f| {
                let decisions =
                    policy::decide(&f, connected(&app, &f.user_id, f.role), &rules, now);
                (f, decisions)
            })
            .filter(|(_, d)| !d.is_empty())
            .collect();
        let due = app
            .store
            .reach_due(now, 1)
            .await
            .map(|d| !d.is_empty())
            .unwrap_or(false);
        if decisions.is_empty() && !due {
            continue;
        }
        match app
            .store
            .lease("reach".into(), holder.clone(), LEASE_MS, now)
            .await
        {
            Ok(true) => {}
            _ => continue,
        }
        if !decisions.is_empty() {
            let notices = notices(&app, decisions, now).await;
            if let Err(err) = app.store.reach_enqueue(notices, now).await {
                tracing::warn!(%err, "cannot store notifications; deciding again next round");
            }
        }
        deliver_due(&app, &holder).await;
    }
}

/// Turns decisions into notices: the deliveries with their payloads, and each email's link.
async fn notices(
    app: &AppState,
    decisions: Vec<(ReachFacts, Vec<policy::Decision>)>,
    now: u64,
) -> Vec<Notice> {
    let config = &app.config;
    let mut notices = Vec::new();
    let names = operator_names(app).await;
    let name = |id: &str| {
        names
            .iter()
            .find(|(o, _)| o == id)
            .map_or_else(|| "An operator".to_owned(), |(_, n)| n.clone())
    };
    for (facts, decisions) in decisions {
        for decision in decisions {
            match decision.channel {
                Channel::Push => {
                    let Ok(subscriptions) =
                        app.store.push_subscriptions(facts.user_id.clone()).await
                    else {
                        continue;
                    };
                    // A client's push opens the conversation through a fresh link, like an
                    // email's: the browser may have no session left. An operator's opens the
                    // console.
                    let (url, link) = match facts.role {
                        Role::Client => {
                            let link = new_link(app, &facts, now);
                            (link_url(app, &link), Some(link))
                        }
                        Role::Operator => (format!("{}/web/console/", public_url(app)), None),
                    };
                    let payload =
                        compose::push_payload(&facts, &decision, config.push_bodies, &url);
                    notices.push(Notice {
                        channel: Channel::Push,
                        conversation_id: facts.conversation_id.clone(),
                        user_id: facts.user_id.clone(),
                        first_seq: decision.first_seq,
                        up_to_seq: decision.up_to_seq,
                        deliveries: subscriptions
                            .into_iter()
                            .map(|s| (s.id, payload.clone()))
                            .collect(),
                        expires_at: now + config.push_ttl_s * 1000,
                        link,
                    });
                }
                Channel::Email => {
                    let Some(to) = facts.email.clone() else {
                        continue;
                    };
                    let link = new_link(app, &facts, now);
                    let unsubscribe = format!(
                        "{}/unsubscribe?token={}",
                        public_url(app),
                        links::unsubscribe_token(&app.auth, &facts.user_id)
                    );
                    let content = compose::email(
                        &facts,
                        &decision,
                        &to,
                        config.email_bodies,
                        &link_url(app, &link),
                        &unsubscribe,
                        name,
                    );
                    notices.push(Notice {
                        channel: Channel::Email,
                        conversation_id: facts.conversation_id.clone(),
                        user_id: facts.user_id.clone(),
                        first_seq: decision.first_seq,
                        up_to_seq: decision.up_to_seq,
                        deliveries: vec![(
                            to,
                            serde_json::to_string(&content).expect("emails serialise"),
                        )],
                        expires_at: now + EMAIL_EXPIRY_MS,
                        link: Some(link),
                    });
                }
            }
        }
    }
    notices
}

fn new_link(app: &AppState, facts: &ReachFacts, now: u64) -> EmailLink {
    EmailLink {
        id: links::new_link_id(),
        conversation_id: facts.conversation_id.clone(),
        user_id: facts.user_id.clone(),
        expires_at: now + app.config.email_link_ttl_ms,
    }
}

fn link_url(app: &AppState, link: &EmailLink) -> String {
    links::with_query(
        &link_base(app),
        "surechat_link",
        &links::link_token(&app.auth, &link.id),
    )
}

/// The directory's operators as (id, display name).
async fn operator_names(app: &AppState) -> Vec<(String, String)> {
    app.store
        .operators()
        .await
        .map(|all| all.into_iter().map(|o| (o.id, o.name)).collect())
        .unwrap_or_default()
}

/// Sends what is due, one delivery after the other, and records each outcome.
async fn deliver_due(app: &AppState, holder: &str) {
    let Ok(due) = app.store.reach_due(now_ms(), DELIVERIES_PER_ROUND).await else {
        return;
    };
    for delivery in due {
        if app.shutdown.is_cancelled() {
            return;
        }
        // One delivery may take the SMTP or push timeout: the lease is renewed before each, so
        // it never runs out under a round and lets another node send the same rows.
        match app
            .store
            .lease("reach".into(), holder.to_owned(), LEASE_MS, now_ms())
            .await
        {
            Ok(true) => {}
            _ => return,
        }
        let settled = attempt(app, &delivery).await;
        let channel = delivery.channel;
        match &settled {
            Settled::Sent => app.metrics.reach_sent(channel),
            Settled::Retry { error, .. } | Settled::Failed(error) => {
                tracing::info!(delivery = delivery.id, channel = channel.as_str(), %error, "notification not delivered");
                app.metrics.reach_failed(channel);
            }
            Settled::Gone => {
                tracing::info!(delivery = delivery.id, "push subscription gone; removed");
            }
            Settled::Cancelled => {}
        }
        if let Err(err) = app.store.reach_settle(delivery, settled, now_ms()).await {
            tracing::warn!(%err, "cannot record a notification's outcome; it may be sent again");
        }
    }
}

/// One attempt at a delivery.
async fn attempt(app: &AppState, delivery: &Delivery) -> Settled {
    let now = now_ms();
    let participant = match app
        .store
        .participant(delivery.conversation_id.clone(), delivery.user_id.clone())
        .await
    {
        Ok(Some(p)) => p,
        Ok(None) => return Settled::Cancelled,
        Err(err) => return retry(app, delivery, err.to_string(), now),
    };
    let is_connected = connected(app, &delivery.user_id, participant.role);
    if !policy::still_wanted(
        delivery.channel,
        delivery.first_seq,
        participant.read,
        is_connected,
    ) {
        return Settled::Cancelled;
    }
    if now >= delivery.expires_at {
        return Settled::Failed("expired before it could be delivered".into());
    }
    match delivery.channel {
        Channel::Push => push(app, delivery, now).await,
        Channel::Email => send_email(app, delivery, now).await,
    }
}

async fn push(app: &AppState, delivery: &Delivery, now: u64) -> Settled {
    let Some(client) = &app.reach.client else {
        return retry(app, delivery, "no push client".into(), now);
    };
    let subscription = match app.store.push_subscriptions(delivery.user_id.clone()).await {
        Ok(all) => all.into_iter().find(|s| s.id == delivery.target),
        Err(err) => return retry(app, delivery, err.to_string(), now),
    };
    let Some(subscription) = subscription else {
        return Settled::Cancelled;
    };
    let target = webpush::Subscription {
        endpoint: subscription.endpoint,
        p256dh: subscription.p256dh,
        auth: subscription.auth,
    };
    let ttl = (delivery.expires_at.saturating_sub(now) / 1000).min(u64::from(u32::MAX)) as u32;
    let subject = push_subject(app);
    match webpush::send(
        client,
        &app.reach.vapid,
        &subject,
        &target,
        delivery.payload.as_bytes(),
        ttl,
        &app.reach.vapid.topic(&delivery.conversation_id),
        webpush::Urgency::Normal,
    )
    .await
    {
        webpush::PushOutcome::Delivered => Settled::Sent,
        webpush::PushOutcome::Gone => Settled::Gone,
        webpush::PushOutcome::Retry {
            reason,
            retry_after_s,
        } => match retry(app, delivery, reason, now) {
            // The push service's own wait, when it says one and it is longer.
            Settled::Retry { at, error } => Settled::Retry {
                at: at.max(now + retry_after_s.unwrap_or(0).saturating_mul(1000)),
                error,
            },
            other => other,
        },
        webpush::PushOutcome::Refused(why) => Settled::Failed(why),
    }
}

/// The VAPID `sub` claim: `push_subject`, else the public URL (an `https:` contact).
fn push_subject(app: &AppState) -> String {
    app.config
        .push_subject
        .clone()
        .unwrap_or_else(|| public_url(app))
}

async fn send_email(app: &AppState, delivery: &Delivery, now: u64) -> Settled {
    let (Some(mailer), Some(from)) = (&app.reach.mailer, &app.config.email_from) else {
        return retry(app, delivery, "email is not configured".into(), now);
    };
    let content: compose::EmailContent = match serde_json::from_str(&delivery.payload) {
        Ok(content) => content,
        Err(err) => return Settled::Failed(format!("stored email cannot be read: {err}")),
    };
    let host = app
        .config
        .public_url
        .as_deref()
        .and_then(|u| u.split("://").nth(1))
        .map(|rest| rest.split(['/', ':']).next().unwrap_or("surechat"))
        .unwrap_or("surechat")
        .to_owned();
    let message = email::Email {
        from: from.clone(),
        to: content.to,
        subject: content.subject,
        text: content.text,
        // The same on every attempt: a resend after a crash is recognisably the same email.
        message_id: format!("notify-{}-{}@{host}", delivery.id, delivery.first_seq),
        list_unsubscribe_url: Some(content.unsubscribe_url),
        reply_to: None,
    };
    match mailer.send(&message).await {
        Ok(()) => Settled::Sent,
        Err(email::SendError::Transient(why)) => retry(app, delivery, why, now),
        Err(email::SendError::Permanent(why)) => Settled::Failed(why),
    }
}

/// Sends one email now, outside the outbox (a password reset: the person is waiting, and asks
/// again if it does not come); whether the SMTP server took it.
pub async fn send_now(app: &AppState, to: &str, subject: &str, text: &str) -> bool {
    let (Some(mailer), Some(from)) = (&app.reach.mailer, &app.config.email_from) else {
        return false;
    };
    let email = email::Email {
        from: from.clone(),
        to: to.to_owned(),
        subject: subject.to_owned(),
        text: text.to_owned(),
        message_id: format!("{}@surechat", crate::auth::random_hex(16)),
        list_unsubscribe_url: None,
        reply_to: None,
    };
    match mailer.send(&email).await {
        Ok(()) => {
            app.metrics.reach_sent(Channel::Email);
            true
        }
        Err(err) => {
            tracing::warn!(%err, "an email could not be sent");
            app.metrics.reach_failed(Channel::Email);
            false
        }
    }
}

fn retry(app: &AppState, delivery: &Delivery, error: String, now: u64) -> Settled {
    let wait = policy::backoff(
        delivery.attempts + 1,
        app.config.webhook_backoff_first_ms,
        BACKOFF_CAP_MS,
    );
    if now + wait >= delivery.expires_at {
        return Settled::Failed(format!("{error} (gave up: expires before the next try)"));
    }
    Settled::Retry {
        at: now + wait,
        error,
    }
}
