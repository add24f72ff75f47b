//! What a scenario measures: latency histograms (HDR, microseconds) and completions over time.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Largest latency recorded, in microseconds (longer ones are clamped): a minute.
const LATENCY_US_MAX: u64 = 60_000_000;

/// Width of one bucket of a timeline.
pub const TICK: Duration = Duration::from_millis(250);

/// The three latencies of a message, each from its (scheduled) send.
pub struct Latencies {
    /// Until the durable `ack` (status `sent`).
    pub ack: Histogram<u64>,
    /// Until the other side holds it.
    pub receive: Histogram<u64>,
    /// Until the other side's `delivered` receipt is back (status `delivered`).
    pub receipt: Histogram<u64>,
}

impl Default for Latencies {
    fn default() -> Self {
        let new = || Histogram::new_with_bounds(1, LATENCY_US_MAX, 3).expect("valid bounds");
        Latencies {
            ack: new(),
            receive: new(),
            receipt: new(),
        }
    }
}

/// Records `d` into `h`, clamped to the histogram's range.
pub fn record(h: &mut Histogram<u64>, d: Duration) {
    let us = (d.as_micros() as u64).clamp(1, LATENCY_US_MAX);
    h.record(us).expect("clamped into range");
}

impl Latencies {
    /// Adds another device's or pair's histograms.
    pub fn merge(&mut self, other: &Latencies) {
        self.ack.add(&other.ack).expect("same bounds");
        self.receive.add(&other.receive).expect("same bounds");
        self.receipt.add(&other.receipt).expect("same bounds");
    }
}

/// Percentiles of one histogram, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// (percentile, ms) points of the percentile curve, for the plot.
    pub curve: Vec<(f64, f64)>,
}

/// Percentiles of the curve: denser towards the tail, as a tail is what the plot is for.
const CURVE: &[f64] = &[
    0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 100.0,
];

impl Summary {
    /// Summarises `h`.
    pub fn of(h: &Histogram<u64>) -> Summary {
        let ms = |us: u64| us as f64 / 1000.0;
        let at = |p: f64| ms(h.value_at_quantile(p / 100.0));
        Summary {
            count: h.len(),
            p50_ms: at(50.0),
            p90_ms: at(90.0),
            p99_ms: at(99.0),
            p999_ms: at(99.9),
            max_ms: ms(h.max()),
            curve: CURVE.iter().map(|&p| (p, at(p))).collect(),
        }
    }
}

/// The three summaries of [`Latencies`].
#[derive(Debug, Clone, Serialize)]
pub struct LatencySummary {
    pub send_to_ack: Summary,
    pub send_to_receive: Summary,
    pub send_to_receipt: Summary,
}

impl LatencySummary {
    pub fn of(l: &Latencies) -> LatencySummary {
        LatencySummary {
            send_to_ack: Summary::of(&l.ack),
            send_to_receive: Summary::of(&l.receive),
            send_to_receipt: Summary::of(&l.receipt),
        }
    }
}

/// Completions per [`TICK`] since the start of a run.
#[derive(Debug, Clone, Default)]
pub struct Timeline(pub Vec<u64>);

impl Timeline {
    /// Counts one completion `since` the start.
    pub fn count(&mut self, since: Duration) {
        let index = (since.as_nanos() / TICK.as_nanos()) as usize;
        if self.0.len() <= index {
            self.0.resize(index + 1, 0);
        }
        self.0[index] += 1;
    }

    pub fn merge(&mut self, other: &Timeline) {
        if self.0.len() < other.0.len() {
            self.0.resize(other.0.len(), 0);
        }
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a += b;
        }
    }

    /// Rates per second, one per tick, over the first `ticks` ticks.
    pub fn rates(&self, ticks: usize) -> Vec<f64> {
        let per_second = 1.0 / TICK.as_secs_f64();
        (0..ticks)
            .map(|i| self.0.get(i).copied().unwrap_or(0) as f64 * per_second)
            .collect()
    }
}
