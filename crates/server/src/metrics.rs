//! Prometheus metrics, kept as atomics and rendered as text at `GET /metrics`. Hand-written rather
//! than a metrics crate: a dozen counters do not need a registry.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

/// Upper bounds of the send-to-ack latency buckets, in seconds.
const LATENCY_BUCKETS_S: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Every metric of the server.
#[derive(Default)]
pub struct Metrics {
    /// Messages newly stored.
    pub messages_stored: AtomicU64,
    /// Acks by outcome (`stored`, `duplicate`, or an error code).
    acks: Mutex<BTreeMap<String, u64>>,
    /// Receipts recorded that moved a cursor.
    pub receipts: AtomicU64,
    /// Open WebSocket connections.
    pub connections_open: AtomicI64,
    /// Connections authenticated.
    pub connects: AtomicU64,
    /// Bytes queued for devices' sockets and not yet taken by the kernel, over all connections.
    pub write_queue_bytes: AtomicI64,
    /// Disconnects by reason.
    disconnects: Mutex<BTreeMap<String, u64>>,
    /// Messages sent from storage to catch a device up (resume backlog and gap fills).
    pub resume_backlog: AtomicU64,
    latency_buckets: [AtomicU64; 12],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
}

impl Metrics {
    /// Counts an ack outcome.
    pub fn ack(&self, outcome: &str) {
        *self
            .acks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(outcome.to_owned())
            .or_default() += 1;
    }

    /// Counts a disconnect.
    pub fn disconnect(&self, reason: &str) {
        *self
            .disconnects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(reason.to_owned())
            .or_default() += 1;
    }

    /// Records one send-to-ack latency.
    pub fn send_to_ack(&self, elapsed: std::time::Duration) {
        let seconds = elapsed.as_secs_f64();
        for (bucket, bound) in self.latency_buckets.iter().zip(LATENCY_BUCKETS_S) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// Renders the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        counter(
            &mut out,
            "surechat_messages_stored_total",
            "Messages newly stored.",
            self.messages_stored.load(Ordering::Relaxed),
        );
        let _ = writeln!(out, "# HELP surechat_acks_total Answers to sends, by outcome.\n# TYPE surechat_acks_total counter");
        for (outcome, n) in self.acks.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(out, "surechat_acks_total{{outcome=\"{outcome}\"}} {n}");
        }
        counter(
            &mut out,
            "surechat_receipts_total",
            "Receipts that moved a cursor.",
            self.receipts.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP surechat_connections_open Open WebSocket connections.\n# TYPE surechat_connections_open gauge\nsurechat_connections_open {}",
            self.connections_open.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP surechat_connection_write_queue_bytes Bytes queued for devices' sockets, not yet taken by the kernel.\n# TYPE surechat_connection_write_queue_bytes gauge\nsurechat_connection_write_queue_bytes {}",
            self.write_queue_bytes.load(Ordering::Relaxed)
        );
        counter(
            &mut out,
            "surechat_connects_total",
            "WebSocket connections authenticated.",
            self.connects.load(Ordering::Relaxed),
        );
        let _ = writeln!(out, "# HELP surechat_disconnects_total WebSocket connections closed, by reason.\n# TYPE surechat_disconnects_total counter");
        for (reason, n) in self
            .disconnects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(out, "surechat_disconnects_total{{reason=\"{reason}\"}} {n}");
        }
        counter(
            &mut out,
            "surechat_resume_backlog_messages_total",
            "Messages sent from storage to catch devices up.",
            self.resume_backlog.load(Ordering::Relaxed),
        );
        let name = "surechat_send_to_ack_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time from receiving a send to sending its ack.\n# TYPE {name} histogram"
        );
        for (bucket, bound) in self.latency_buckets.iter().zip(LATENCY_BUCKETS_S) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {count}");
        out
    }
}
