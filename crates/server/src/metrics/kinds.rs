//! The three shapes a series takes: a counter family keyed by label values, a histogram, and the
//! text they render to. Hand-written rather than a metrics crate: a few dozen series do not need a
//! registry, and every label value here comes from a closed set chosen by the server.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Counters of one series, one per combination of label values.
#[derive(Default)]
pub struct Family(Mutex<BTreeMap<Vec<&'static str>, u64>>);

impl Family {
    /// Adds `n` to the counter of `labels` (values in the order of the series' label names).
    pub fn add(&self, labels: &[&'static str], n: u64) {
        *self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(labels.to_vec())
            .or_default() += n;
    }

    /// Adds one.
    pub fn inc(&self, labels: &[&'static str]) {
        self.add(labels, 1);
    }

    /// The counter of `labels` (0 if never counted).
    #[cfg(test)]
    pub fn get(&self, labels: &[&'static str]) -> u64 {
        let counters = self.0.lock().unwrap_or_else(|p| p.into_inner());
        counters.get(labels).copied().unwrap_or(0)
    }

    /// Renders every counter of the series.
    pub fn render(&self, out: &mut String, name: &str, help: &str, label_names: &[&str]) {
        header(out, name, help, "counter");
        let counters = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for (values, n) in counters.iter() {
            let _ = writeln!(out, "{name}{} {n}", labels(label_names, values));
        }
    }
}

/// A histogram with fixed bucket bounds. Observations are in the series' base unit (seconds for
/// times); the sum is kept in millionths of it so that it fits an atomic integer.
pub struct Histogram {
    bounds: &'static [f64],
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// An empty histogram over `bounds` (increasing upper bounds; `+Inf` is implied).
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    /// Records one value (negative values count as 0).
    pub fn observe(&self, value: f64) {
        let value = if value.is_finite() {
            value.max(0.0)
        } else {
            0.0
        };
        // Buckets are cumulative at render time: only the first bucket that holds it counts here.
        if let Some(at) = self.bounds.iter().position(|bound| value <= *bound) {
            self.buckets[at].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((value * 1e6).min(u64::MAX as f64) as u64, Ordering::Relaxed);
    }

    /// Records a duration in seconds.
    pub fn observe_duration(&self, elapsed: Duration) {
        self.observe(elapsed.as_secs_f64());
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Renders the buckets, sum and count, with `extra` labels (`stage="read"`) on every line.
    pub fn render_samples(&self, out: &mut String, name: &str, extra: &str) {
        let mut cumulative = 0;
        let sep = if extra.is_empty() { "" } else { "," };
        for (bucket, bound) in self.buckets.iter().zip(self.bounds) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{extra}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = self.count();
        let _ = writeln!(out, "{name}_bucket{{{extra}{sep}le=\"+Inf\"}} {count}");
        let braces = if extra.is_empty() {
            String::new()
        } else {
            format!("{{{extra}}}")
        };
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }

    /// Renders the whole series.
    pub fn render(&self, out: &mut String, name: &str, help: &str) {
        header(out, name, help, "histogram");
        self.render_samples(out, name, "");
    }
}

/// `# HELP` and `# TYPE` lines.
pub fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A series with one sample and no labels.
pub fn single(out: &mut String, name: &str, help: &str, kind: &str, value: impl std::fmt::Display) {
    header(out, name, help, kind);
    let _ = writeln!(out, "{name} {value}");
}

/// `{a="x",b="y"}`, or nothing without labels.
fn labels(names: &[&str], values: &[&str]) -> String {
    if names.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> = names
        .iter()
        .zip(values)
        .map(|(name, value)| format!("{name}=\"{value}\""))
        .collect();
    format!("{{{}}}", pairs.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_sum_is_in_base_units() {
        let h = Histogram::new(&[0.1, 1.0]);
        h.observe(0.05);
        h.observe(0.5);
        h.observe(7.0);
        let mut out = String::new();
        h.render(&mut out, "x_seconds", "X.");
        assert!(out.contains("x_seconds_bucket{le=\"0.1\"} 1\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"1\"} 2\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_seconds_sum 7.55\n"), "{out}");
        assert!(out.contains("x_seconds_count 3\n"), "{out}");
    }

    #[test]
    fn families_render_their_labels_in_order() {
        let f = Family::default();
        f.inc(&["rate_limited", "ws"]);
        f.add(&["rate_limited", "ws"], 2);
        f.inc(&["forbidden", "http"]);
        let mut out = String::new();
        f.render(&mut out, "r_total", "R.", &["code", "via"]);
        assert!(
            out.contains("r_total{code=\"rate_limited\",via=\"ws\"} 3\n"),
            "{out}"
        );
        assert!(
            out.contains("r_total{code=\"forbidden\",via=\"http\"} 1\n"),
            "{out}"
        );
        assert_eq!(f.get(&["forbidden", "http"]), 1);
    }
}
