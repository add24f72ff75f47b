//! Prometheus metrics, kept as atomics and rendered as text at `GET /metrics`. Each series answers
//! a question someone on call asks (are messages reaching people, how fast, who is refused and
//! why, is the writer keeping up, are outboxes behind, is a node sick); `docs/operations.md` lists
//! them with healthy values. Label values come from closed sets: never a user or conversation id.

pub mod delivery_clock;
pub mod kinds;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use delivery_clock::{DeliveryClock, Stage};
use kinds::{header, single, Family, Histogram};

use crate::store::uploads::StorageUsage;

/// Bytes of attachments per conversation: from a few photos to a long case's worth of scans.
const CONVERSATION_BYTES: &[f64] = &[1_048_576.0, 10_485_760.0, 104_857_600.0, 1_073_741_824.0];

/// Send-to-ack and commit latency bounds, in seconds.
const FAST_SECONDS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
/// Store-to-receipt bounds, in seconds: a read can take an hour.
const DELIVERY_SECONDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
    3600.0,
];
/// Offline-time bounds, in seconds.
const GAP_SECONDS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0,
];
/// Outbox-size bounds, in messages.
const PENDING_MESSAGES: &[f64] = &[0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 500.0, 1000.0];
/// Batch-size bounds, in writes.
const BATCH_WRITES: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// Which way an error answer went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A WebSocket `error` frame or failed `ack`.
    Ws,
    /// An HTTP error answer.
    Http,
}

/// Who closed a WebSocket connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The server sent the close frame (or gave up on the transport).
    Server,
    /// The device closed, or its transport ended.
    Client,
}

/// Why an outbox delivery attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The connection could not be made.
    Connect,
    /// No answer in time.
    Timeout,
    /// The destination policy refused the address.
    Refused,
    /// The receiver answered 4xx.
    Http4xx,
    /// The receiver answered 5xx (or another non-2xx).
    Http5xx,
    /// Anything else.
    Other,
}

impl Failure {
    fn as_str(self) -> &'static str {
        match self {
            Failure::Connect => "connect",
            Failure::Timeout => "timeout",
            Failure::Refused => "refused",
            Failure::Http4xx => "http_4xx",
            Failure::Http5xx => "http_5xx",
            Failure::Other => "other",
        }
    }
}

/// The storage writer's counters, shared by a store and the metrics page.
pub struct WriterStats {
    /// Writes submitted and not yet taken into a batch.
    pub queue_depth: AtomicI64,
    /// Writes per committed (or failed) batch.
    pub batch_size: Histogram,
    /// Time to run and commit one batch.
    pub commit_seconds: Histogram,
    /// Batches that failed as a whole.
    pub failures: AtomicU64,
}

impl Default for WriterStats {
    fn default() -> Self {
        WriterStats {
            queue_depth: AtomicI64::new(0),
            batch_size: Histogram::new(BATCH_WRITES),
            commit_seconds: Histogram::new(FAST_SECONDS),
            failures: AtomicU64::new(0),
        }
    }
}

impl WriterStats {
    /// A batch of `writes` ran for `elapsed`, and committed or not.
    pub fn batch(&self, writes: usize, elapsed: Duration, committed: bool) {
        self.batch_size.observe(writes as f64);
        self.commit_seconds.observe_duration(elapsed);
        if !committed {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What is read at scrape time rather than counted.
pub struct Snapshot<'a> {
    /// Whether `/readyz` would answer 200.
    pub ready: bool,
    /// Operators available on this node.
    pub operators_available: usize,
    /// The store's writer, if it has one.
    pub writer: Option<&'a WriterStats>,
    /// Attachments in storage, when storage answered in time.
    pub attachments: Option<StorageUsage>,
}

/// Every counted metric of the server.
pub struct Metrics {
    /// Messages newly stored.
    pub messages_stored: AtomicU64,
    acks: Family,
    /// Receipts recorded that moved a cursor.
    pub receipts: AtomicU64,
    /// Open WebSocket connections.
    pub connections_open: AtomicI64,
    /// Connections authenticated.
    pub connects: AtomicU64,
    /// Bytes queued for devices' sockets and not yet taken by the kernel, over all connections.
    pub write_queue_bytes: AtomicI64,
    disconnects: Family,
    /// Messages sent from storage to catch a device up (resume backlog and gap fills).
    pub resume_backlog: AtomicU64,
    send_to_ack: Histogram,
    refusals: Family,
    closes: Family,
    reconnect_gap: Histogram,
    resume_pending: Histogram,
    delivered: Histogram,
    read: Histogram,
    delivery_clock: Mutex<DeliveryClock>,
    /// Notices not queued because a device's queue was full.
    pub hub_drops: AtomicU64,
    outbox_deliveries: Family,
    outbox_failures: Family,
    /// Age of the oldest webhook event not yet delivered to an active endpoint, in ms.
    pub webhook_lag_ms: AtomicU64,
    /// Webhook endpoints disabled after failing too long.
    pub webhooks_disabled: AtomicU64,
    cluster_notices: Family,
    /// Times the bus said notices may have been lost.
    pub cluster_missed: AtomicU64,
    /// Conversations in which a sweep found news notices had not brought.
    pub cluster_catchups: AtomicU64,
    /// Uploads created.
    pub uploads_created: AtomicU64,
    /// Bytes of upload chunks received and stored.
    pub upload_bytes_received: AtomicU64,
    uploads_complete: AtomicU64,
    uploads_refused: AtomicU64,
    /// Uploads removed because no message named them in time.
    pub uploads_expired: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            messages_stored: AtomicU64::new(0),
            acks: Family::default(),
            receipts: AtomicU64::new(0),
            connections_open: AtomicI64::new(0),
            connects: AtomicU64::new(0),
            write_queue_bytes: AtomicI64::new(0),
            disconnects: Family::default(),
            resume_backlog: AtomicU64::new(0),
            send_to_ack: Histogram::new(FAST_SECONDS),
            refusals: Family::default(),
            closes: Family::default(),
            reconnect_gap: Histogram::new(GAP_SECONDS),
            resume_pending: Histogram::new(PENDING_MESSAGES),
            delivered: Histogram::new(DELIVERY_SECONDS),
            read: Histogram::new(DELIVERY_SECONDS),
            delivery_clock: Mutex::new(DeliveryClock::default()),
            hub_drops: AtomicU64::new(0),
            outbox_deliveries: Family::default(),
            outbox_failures: Family::default(),
            webhook_lag_ms: AtomicU64::new(0),
            webhooks_disabled: AtomicU64::new(0),
            cluster_notices: Family::default(),
            cluster_missed: AtomicU64::new(0),
            cluster_catchups: AtomicU64::new(0),
            uploads_created: AtomicU64::new(0),
            upload_bytes_received: AtomicU64::new(0),
            uploads_complete: AtomicU64::new(0),
            uploads_refused: AtomicU64::new(0),
            uploads_expired: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// Counts a decided upload: complete, or refused for its content.
    pub fn upload_decided(&self, complete: bool) {
        let counter = if complete {
            &self.uploads_complete
        } else {
            &self.uploads_refused
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn render_uploads(&self, out: &mut String, usage: Option<&StorageUsage>) {
        let load = |v: &AtomicU64| v.load(Ordering::Relaxed);
        single(
            out,
            "surechat_uploads_created_total",
            "Uploads created.",
            "counter",
            load(&self.uploads_created),
        );
        single(
            out,
            "surechat_upload_bytes_received_total",
            "Bytes of upload chunks received and stored.",
            "counter",
            load(&self.upload_bytes_received),
        );
        header(
            out,
            "surechat_uploads_decided_total",
            "Uploads whose every byte arrived, by outcome: complete, or refused for their content.",
            "counter",
        );
        {
            use std::fmt::Write;
            let _ = writeln!(
                out,
                "surechat_uploads_decided_total{{outcome=\"complete\"}} {}\nsurechat_uploads_decided_total{{outcome=\"refused\"}} {}",
                load(&self.uploads_complete),
                load(&self.uploads_refused)
            );
        }
        single(
            out,
            "surechat_uploads_expired_total",
            "Uploads removed because no message named them within upload_ttl_s.",
            "counter",
            load(&self.uploads_expired),
        );
        let Some(usage) = usage else {
            return;
        };
        single(
            out,
            "surechat_uploads_stored",
            "Uploads in storage, in any state.",
            "gauge",
            usage.uploads,
        );
        single(
            out,
            "surechat_attachment_storage_bytes",
            "Bytes of complete uploads in storage.",
            "gauge",
            usage.bytes,
        );
        if let Some(bytes) = usage.database_bytes {
            single(
                out,
                "surechat_database_bytes",
                "Bytes of the database's tables and indexes in use (read at scrape time).",
                "gauge",
                bytes,
            );
        }
        let per_conversation = Histogram::new(CONVERSATION_BYTES);
        for bytes in &usage.per_conversation {
            per_conversation.observe(*bytes as f64);
        }
        per_conversation.render(
            out,
            "surechat_conversation_attachment_bytes",
            "Conversations by the bytes of the attachments their messages carry (read at scrape time).",
        );
    }

    /// Counts an ack outcome (`stored`, `duplicate`, or an error code).
    pub fn ack(&self, outcome: &'static str) {
        self.acks.inc(&[outcome]);
    }

    /// Counts a disconnect by its reason label.
    pub fn disconnect(&self, reason: &'static str) {
        self.disconnects.inc(&[reason]);
    }

    /// Counts an error answer.
    pub fn refusal(&self, code: protocol::ErrorCode, via: Via) {
        let via = match via {
            Via::Ws => "ws",
            Via::Http => "http",
        };
        self.refusals.inc(&[code.as_str(), via]);
    }

    /// Counts a WebSocket close.
    pub fn close(&self, side: Side, code: u16) {
        let side = match side {
            Side::Server => "server",
            Side::Client => "client",
        };
        self.closes.inc(&[side, close_code_label(code)]);
    }

    /// Records one send-to-ack latency.
    pub fn send_to_ack(&self, elapsed: Duration) {
        self.send_to_ack.observe_duration(elapsed);
    }

    /// What a device reported when it said hello after a reconnect.
    pub fn resumed(&self, offline: Option<Duration>, pending: Option<u64>) {
        if let Some(offline) = offline {
            self.reconnect_gap.observe_duration(offline);
        }
        if let Some(pending) = pending {
            self.resume_pending.observe(pending as f64);
        }
    }

    /// A message was committed: its clock starts.
    pub fn message_stored(&self, conversation: &str, seq: u64, sender: &str, now: Instant) {
        self.clock().stored(conversation, seq, sender, now);
    }

    /// A participant's cursors moved: times the messages they newly cover.
    pub fn cursors_moved(
        &self,
        conversation: &str,
        user: &str,
        delivered: u64,
        read: u64,
        now: Instant,
    ) {
        let times = self
            .clock()
            .receipt(conversation, user, delivered, read, now);
        for (stage, elapsed) in times {
            match stage {
                Stage::Delivered => self.delivered.observe_duration(elapsed),
                Stage::Read => self.read.observe_duration(elapsed),
            }
        }
    }

    fn clock(&self) -> std::sync::MutexGuard<'_, DeliveryClock> {
        self.delivery_clock
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// A webhook was delivered.
    pub fn webhook_delivered(&self) {
        self.outbox_deliveries.inc(&["webhook"]);
    }

    /// A webhook delivery attempt failed.
    pub fn webhook_failed(&self, failure: Failure) {
        self.outbox_failures.inc(&["webhook", failure.as_str()]);
    }

    /// A push or an email was accepted by the push service or the SMTP server.
    pub fn reach_sent(&self, channel: crate::store::reach::Channel) {
        self.outbox_deliveries.inc(&[channel.as_str()]);
    }

    /// A push or email attempt failed (retried later, or given up).
    pub fn reach_failed(&self, channel: crate::store::reach::Channel) {
        self.outbox_failures
            .inc(&[channel.as_str(), Failure::Other.as_str()]);
    }

    /// Counts cluster notices this node published (`heard == false`) or heard from others.
    pub fn cluster_notices(&self, heard: bool, n: u64) {
        self.cluster_notices
            .add(&[if heard { "heard" } else { "published" }], n);
    }

    /// Renders the Prometheus text exposition format.
    pub fn render(&self, snapshot: &Snapshot<'_>) -> String {
        let mut out = String::new();
        let out = &mut out;
        let load = |v: &AtomicU64| v.load(Ordering::Relaxed);
        header(
            out,
            "surechat_build_info",
            "The running version; always 1.",
            "gauge",
        );
        {
            use std::fmt::Write;
            let _ = writeln!(
                out,
                "surechat_build_info{{version=\"{}\",protocol=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION"),
                protocol::PROTOCOL_VERSION
            );
        }
        single(
            out,
            "surechat_ready",
            "1 when /readyz answers 200 (storage answers, not shutting down), else 0.",
            "gauge",
            u8::from(snapshot.ready),
        );
        single(
            out,
            "surechat_messages_stored_total",
            "Messages newly stored.",
            "counter",
            load(&self.messages_stored),
        );
        self.render_uploads(out, snapshot.attachments.as_ref());
        self.acks.render(
            out,
            "surechat_acks_total",
            "Answers to sends, by outcome.",
            &["outcome"],
        );
        single(
            out,
            "surechat_receipts_total",
            "Receipts that moved a cursor.",
            "counter",
            load(&self.receipts),
        );
        self.refusals.render(
            out,
            "surechat_refusals_total",
            "Error answers, by error code and by WebSocket or HTTP.",
            &["code", "via"],
        );
        single(
            out,
            "surechat_connections_open",
            "Open WebSocket connections.",
            "gauge",
            self.connections_open.load(Ordering::Relaxed),
        );
        single(
            out,
            "surechat_connection_write_queue_bytes",
            "Bytes queued for devices' sockets, not yet taken by the kernel.",
            "gauge",
            self.write_queue_bytes.load(Ordering::Relaxed),
        );
        single(
            out,
            "surechat_connects_total",
            "WebSocket connections authenticated.",
            "counter",
            load(&self.connects),
        );
        self.disconnects.render(
            out,
            "surechat_disconnects_total",
            "WebSocket connections closed, by reason.",
            &["reason"],
        );
        self.closes.render(
            out,
            "surechat_connection_closes_total",
            "WebSocket closes, by the side that closed and the close code.",
            &["side", "code"],
        );
        self.reconnect_gap.render(
            out,
            "surechat_reconnect_gap_seconds",
            "Time a device was without a connection before this one, as it reported.",
        );
        self.resume_pending.render(
            out,
            "surechat_resume_outbox_pending",
            "Messages in a device's outbox when it said hello, as it reported.",
        );
        single(
            out,
            "surechat_resume_backlog_messages_total",
            "Messages sent from storage to catch devices up.",
            "counter",
            load(&self.resume_backlog),
        );
        self.send_to_ack.render(
            out,
            "surechat_send_to_ack_seconds",
            "Time from receiving a send to sending its ack.",
        );
        header(out, "surechat_delivery_seconds", "Time from a message being stored to the first delivered or read receipt of another participant covering it.", "histogram");
        self.delivered
            .render_samples(out, "surechat_delivery_seconds", "stage=\"delivered\"");
        self.read
            .render_samples(out, "surechat_delivery_seconds", "stage=\"read\"");
        single(
            out,
            "surechat_hub_queue_drops_total",
            "Notices not queued because a device's queue was full (it is closed 4409 and resumes).",
            "counter",
            load(&self.hub_drops),
        );
        let writer = WriterStats::default();
        let writer = snapshot.writer.unwrap_or(&writer);
        writer.batch_size.render(
            out,
            "surechat_writer_batch_size",
            "Writes per storage commit.",
        );
        writer.commit_seconds.render(
            out,
            "surechat_writer_commit_seconds",
            "Time to run and commit one batch of writes.",
        );
        single(
            out,
            "surechat_writer_queue_depth",
            "Writes waiting for the storage writer.",
            "gauge",
            writer.queue_depth.load(Ordering::Relaxed).max(0),
        );
        single(
            out,
            "surechat_writer_failures_total",
            "Batches of writes that failed as a whole.",
            "counter",
            load(&writer.failures),
        );
        header(
            out,
            "surechat_outbox_lag_seconds",
            "Age of the oldest event not yet delivered to an active endpoint; 0 when caught up.",
            "gauge",
        );
        {
            use std::fmt::Write;
            let lag = load(&self.webhook_lag_ms) as f64 / 1e3;
            let _ = writeln!(
                out,
                "surechat_outbox_lag_seconds{{outbox=\"webhook\"}} {lag}"
            );
            header(
                out,
                "surechat_outbox_endpoints_disabled",
                "Endpoints disabled after failing too long.",
                "gauge",
            );
            let disabled = load(&self.webhooks_disabled);
            let _ = writeln!(
                out,
                "surechat_outbox_endpoints_disabled{{outbox=\"webhook\"}} {disabled}"
            );
        }
        self.outbox_deliveries.render(
            out,
            "surechat_outbox_deliveries_total",
            "Outbox deliveries accepted by their receiver.",
            &["outbox"],
        );
        self.outbox_failures.render(
            out,
            "surechat_outbox_failures_total",
            "Outbox delivery attempts that failed, by reason.",
            &["outbox", "reason"],
        );
        self.cluster_notices.render(
            out,
            "surechat_cluster_notices_total",
            "Notices published to or heard from other nodes.",
            &["direction"],
        );
        single(
            out,
            "surechat_cluster_notices_missed_total",
            "Times the bus said notices may have been lost.",
            "counter",
            load(&self.cluster_missed),
        );
        single(
            out,
            "surechat_cluster_sweep_catchups_total",
            "Conversations in which a sweep found news that notices had not brought.",
            "counter",
            load(&self.cluster_catchups),
        );
        single(
            out,
            "surechat_operators_available",
            "Operators connected to this node whose status is available.",
            "gauge",
            snapshot.operators_available,
        );
        std::mem::take(out)
    }
}

/// A close code as a label: the codes the protocol and RFC 6455 define, anything else `other`.
fn close_code_label(code: u16) -> &'static str {
    match code {
        1000 => "1000",
        1001 => "1001",
        1002 => "1002",
        1003 => "1003",
        1005 => "1005",
        1006 => "1006",
        1007 => "1007",
        1008 => "1008",
        1009 => "1009",
        1011 => "1011",
        1012 => "1012",
        1013 => "1013",
        4400 => "4400",
        4401 => "4401",
        4408 => "4408",
        4409 => "4409",
        4429 => "4429",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_time_messages_from_store_to_delivered_and_read() {
        let metrics = Metrics::default();
        let t0 = Instant::now();
        metrics.message_stored("c", 1, "ana", t0);
        metrics.cursors_moved("c", "olga", 1, 1, t0 + Duration::from_millis(30));
        assert_eq!(metrics.delivered.count(), 1);
        assert_eq!(metrics.read.count(), 1);
        let text = metrics.render(&Snapshot {
            ready: true,
            operators_available: 2,
            writer: None,
            attachments: None,
        });
        assert!(
            text.contains("surechat_delivery_seconds_bucket{stage=\"read\",le=\"0.05\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("surechat_delivery_seconds_count{stage=\"delivered\"} 1\n"));
        assert!(text.contains("surechat_operators_available 2\n"));
        assert!(text.contains("surechat_ready 1\n"));
    }

    #[test]
    fn unknown_close_codes_share_one_label() {
        let metrics = Metrics::default();
        metrics.close(Side::Client, 4000);
        metrics.close(Side::Client, 3999);
        metrics.close(Side::Server, 4401);
        assert_eq!(metrics.closes.get(&["client", "other"]), 2);
        assert_eq!(metrics.closes.get(&["server", "4401"]), 1);
    }
}
