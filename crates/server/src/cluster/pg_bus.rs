//! The notice bus on PostgreSQL's LISTEN/NOTIFY. Notices are JSON arrays on a channel named
//! after the schema (`surechat_<schema>`), so deployments sharing a database do not hear each
//! other. Each payload carries the publishing node's id; a node ignores its own.
//!
//! The listening connection is checked every [`HEALTH_INTERVAL`]: if it fails or does not answer
//! within [`HEALTH_TIMEOUT`], it is replaced, and the node is told notices may have been missed.
//! Opening it (connect, `LISTEN`) is bounded by the same timeout, and so is each `NOTIFY` of the
//! publishing connection, which is dropped and reopened after a failure: a database that restarts
//! or stops answering never leaves the bus waiting for ever, and it comes back by itself.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Config, NoTls};
use tokio_util::sync::CancellationToken;

use super::{Bus, Heard, Notice};

/// How often the listening connection is checked.
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(2);
/// How long the check may take before the connection counts as dead.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);
/// The wait before the first attempt to listen again after losing the connection; it doubles
/// with each failed attempt up to [`LISTEN_BACKOFF_MAX`].
const LISTEN_BACKOFF_FIRST: Duration = Duration::from_millis(100);
/// The longest wait between attempts to listen again: bounds how long after the database is
/// back the node hears notices again (plus one connect).
const LISTEN_BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Largest NOTIFY payload sent; PostgreSQL's limit is 8000 bytes.
const PAYLOAD_BYTES_MAX: usize = 7_000;

/// The bus.
pub struct PgBus {
    config: Config,
    node: u64,
    outgoing: mpsc::Sender<Notice>,
    queue: std::sync::Mutex<Option<mpsc::Receiver<Notice>>>,
}

/// Notices waiting to be published, and notifications heard and not yet handled. Beyond either,
/// notices are dropped: a lost notice only delays (the other nodes' sweeps, or a `Missed` here,
/// catch up from storage), and the writer that publishes must never wait.
const NOTICE_QUEUE_MAX: usize = 8192;

impl PgBus {
    /// A bus on the database of `config`, for node `node`.
    pub fn new(config: Config, node: u64) -> Arc<PgBus> {
        let (outgoing, queue) = mpsc::channel(NOTICE_QUEUE_MAX);
        Arc::new(PgBus {
            config,
            node,
            outgoing,
            queue: std::sync::Mutex::new(Some(queue)),
        })
    }

    fn encode(&self, notices: &[Notice]) -> Vec<String> {
        let mut payloads = Vec::new();
        let mut entries: Vec<Value> = Vec::new();
        let mut size = 0;
        for notice in notices {
            let entry = match notice {
                Notice::Message { conversation, seq } => json!(["m", conversation, seq]),
                Notice::Receipt {
                    conversation,
                    user_id,
                } => json!(["r", conversation, user_id]),
                Notice::Membership {
                    conversation,
                    user_id,
                    joined,
                } => {
                    json!([if *joined { "j" } else { "l" }, conversation, user_id])
                }
                Notice::Revoked { user_id } => json!(["v", "", user_id]),
                Notice::Presence => json!(["p", ""]),
            };
            size += entry.to_string().len() + 1;
            entries.push(entry);
            if size > PAYLOAD_BYTES_MAX {
                payloads.push(
                    json!({"n": self.node.to_string(), "e": std::mem::take(&mut entries)})
                        .to_string(),
                );
                size = 0;
            }
        }
        if !entries.is_empty() {
            payloads.push(json!({"n": self.node.to_string(), "e": entries}).to_string());
        }
        payloads
    }

    fn decode(&self, payload: &str) -> Vec<Notice> {
        let Ok(value) = serde_json::from_str::<Value>(payload) else {
            return Vec::new();
        };
        if value["n"].as_str() == Some(self.node.to_string().as_str()) {
            return Vec::new();
        }
        let Some(entries) = value["e"].as_array() else {
            return Vec::new();
        };
        entries
            .iter()
            .filter_map(|e| {
                let conversation = e[1].as_str()?.to_owned();
                Some(match e[0].as_str()? {
                    "m" => Notice::Message {
                        conversation,
                        seq: e[2].as_u64()?,
                    },
                    "r" => Notice::Receipt {
                        conversation,
                        user_id: e[2].as_str()?.to_owned(),
                    },
                    kind @ ("j" | "l") => Notice::Membership {
                        conversation,
                        user_id: e[2].as_str()?.to_owned(),
                        joined: kind == "j",
                    },
                    "v" => Notice::Revoked {
                        user_id: e[2].as_str()?.to_owned(),
                    },
                    "p" => Notice::Presence,
                    _ => return None,
                })
            })
            .collect()
    }
}

/// The channel of the current schema.
async fn channel(client: &tokio_postgres::Client) -> Result<String, tokio_postgres::Error> {
    let schema: String = client
        .query_one("SELECT current_schema()", &[])
        .await?
        .get(0);
    Ok(format!("surechat_{schema}"))
}

impl Bus for PgBus {
    fn publish(&self, notices: Vec<Notice>) {
        for notice in notices {
            if let Err(mpsc::error::TrySendError::Full(_)) = self.outgoing.try_send(notice) {
                tracing::warn!(
                    "notice queue full: a notice is dropped (other nodes' sweeps catch up)"
                );
            }
        }
    }

    fn run(self: Arc<Self>, heard: Arc<dyn Fn(Heard) + Send + Sync>, shutdown: CancellationToken) {
        let queue = self.queue.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(queue) = queue {
            tokio::spawn(self.clone().publish_loop(queue, shutdown.clone()));
        }
        tokio::spawn(self.listen_loop(heard, shutdown));
    }
}

impl PgBus {
    /// Sends queued notices, batching whatever accumulated while the previous NOTIFY ran.
    async fn publish_loop(
        self: Arc<Self>,
        mut queue: mpsc::Receiver<Notice>,
        shutdown: CancellationToken,
    ) {
        let mut client: Option<tokio_postgres::Client> = None;
        let mut channel_name = String::new();
        loop {
            let first = tokio::select! {
                _ = shutdown.cancelled() => return,
                next = queue.recv() => match next { Some(n) => n, None => return },
            };
            let mut notices = vec![first];
            while let Ok(more) = queue.try_recv() {
                notices.push(more);
            }
            if client.as_ref().is_none_or(|c| c.is_closed()) {
                client = None;
                let opened = async {
                    let fresh = crate::store::postgres::connect_bounded(&self.config)
                        .await
                        .map_err(|e| e.to_string())?;
                    let name = channel(&fresh).await.map_err(|e| e.to_string())?;
                    Ok::<_, String>((fresh, name))
                };
                match tokio::time::timeout(HEALTH_TIMEOUT, opened).await {
                    Ok(Ok((fresh, name))) => {
                        channel_name = name;
                        client = Some(fresh);
                    }
                    Ok(Err(err)) => tracing::debug!(%err, "cannot open the publishing connection"),
                    Err(_) => tracing::debug!("the publishing connection did not open in time"),
                }
            }
            let Some(c) = client.as_ref() else {
                tracing::warn!(
                    dropped = notices.len(),
                    "cannot publish notices; other nodes will find out by sweeping"
                );
                continue;
            };
            for payload in self.encode(&notices) {
                let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] =
                    [&channel_name, &payload];
                let notify = c.execute("SELECT pg_notify($1, $2)", &params);
                let failure = match tokio::time::timeout(HEALTH_TIMEOUT, notify).await {
                    Ok(Ok(_)) => continue,
                    Ok(Err(err)) => err.to_string(),
                    Err(_) => "the publishing connection did not answer".to_owned(),
                };
                tracing::warn!(
                    err = failure,
                    "cannot publish notices; other nodes will find out by sweeping"
                );
                // It may be dead without knowing it: the next notices open a fresh one.
                client = None;
                break;
            }
        }
    }

    /// Listens, reconnecting (and reporting possible losses) whenever the connection fails.
    async fn listen_loop(
        self: Arc<Self>,
        heard: Arc<dyn Fn(Heard) + Send + Sync>,
        shutdown: CancellationToken,
    ) {
        let mut backoff = LISTEN_BACKOFF_FIRST;
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            let mut listened = false;
            match self.listen_once(&heard, &shutdown, &mut listened).await {
                Ok(()) => return,
                Err(err) => {
                    tracing::warn!(%err, "notice listener lost; reconnecting");
                    // A connection that listened was fine until now: the next outage starts
                    // from a short wait again.
                    if listened {
                        backoff = LISTEN_BACKOFF_FIRST;
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(LISTEN_BACKOFF_MAX);
                }
            }
        }
    }

    async fn listen_once(
        &self,
        heard: &Arc<dyn Fn(Heard) + Send + Sync>,
        shutdown: &CancellationToken,
        listened: &mut bool,
    ) -> Result<(), String> {
        let mut config = self.config.clone();
        config.application_name(format!("surechat-listen-{}", self.node));
        let (client, mut connection) = tokio::time::timeout(HEALTH_TIMEOUT, config.connect(NoTls))
            .await
            .map_err(|_| "connecting the listener did not finish in time".to_owned())?
            .map_err(|e| e.to_string())?;
        let (notes, mut incoming) = mpsc::channel(NOTICE_QUEUE_MAX);
        let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let dropping = dropped.clone();
        let driver = tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                match message {
                    Ok(AsyncMessage::Notification(n)) => {
                        match notes.try_send(n.payload().to_owned()) {
                            Ok(()) => {}
                            // Behind: forget this one, and have every connection reread its state.
                            Err(mpsc::error::TrySendError::Full(_)) => {
                                dropping.store(true, std::sync::atomic::Ordering::Release);
                            }
                            Err(mpsc::error::TrySendError::Closed(_)) => return,
                        }
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        });
        let listen = async {
            let name = channel(&client).await?;
            client.batch_execute(&format!("LISTEN \"{name}\"")).await
        };
        let listening = tokio::time::timeout(HEALTH_TIMEOUT, listen).await;
        if !matches!(listening, Ok(Ok(()))) {
            driver.abort();
        }
        listening
            .map_err(|_| "LISTEN did not answer in time".to_owned())?
            .map_err(|e| e.to_string())?;
        *listened = true;
        // Whatever was published while we were not listening is unknown to us.
        heard(Heard::Missed);
        let mut health = tokio::time::interval(HEALTH_INTERVAL);
        let result = loop {
            tokio::select! {
                _ = shutdown.cancelled() => break Ok(()),
                payload = incoming.recv() => match payload {
                    Some(payload) => {
                        for notice in self.decode(&payload) {
                            heard(Heard::Notice(notice));
                        }
                        if dropped.swap(false, std::sync::atomic::Ordering::AcqRel) {
                            heard(Heard::Missed);
                        }
                    }
                    None => break Err("the listening connection closed".to_owned()),
                },
                _ = health.tick() => {
                    match tokio::time::timeout(HEALTH_TIMEOUT, client.simple_query("SELECT 1")).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(err)) => break Err(err.to_string()),
                        Err(_) => break Err("the listening connection did not answer".to_owned()),
                    }
                }
            }
        };
        driver.abort();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_skip_own_node() {
        let bus = PgBus::new("host=localhost".parse().unwrap(), 7);
        let other = PgBus::new("host=localhost".parse().unwrap(), 8);
        let notices = vec![
            Notice::Message {
                conversation: "b1".into(),
                seq: 42,
            },
            Notice::Receipt {
                conversation: "b1".into(),
                user_id: "ana".into(),
            },
            Notice::Membership {
                conversation: "b2".into(),
                user_id: "omar".into(),
                joined: false,
            },
            Notice::Revoked {
                user_id: "mallory".into(),
            },
            Notice::Presence,
        ];
        let payloads = bus.encode(&notices);
        assert_eq!(payloads.len(), 1);
        assert_eq!(other.decode(&payloads[0]), notices);
        assert!(
            bus.decode(&payloads[0]).is_empty(),
            "a node ignores its own notices"
        );
        let many: Vec<Notice> = (0..2000)
            .map(|seq| Notice::Message {
                conversation: "conversation".into(),
                seq,
            })
            .collect();
        let payloads = bus.encode(&many);
        assert!(payloads.len() > 1 && payloads.iter().all(|p| p.len() < 8000));
        let back: Vec<Notice> = payloads.iter().flat_map(|p| other.decode(p)).collect();
        assert_eq!(back, many);
    }
}
