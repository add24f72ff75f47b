//! The results of a bench run: JSON (`--json`) and the tables printed at the end.

use std::fmt::Write;

use serde::Serialize;

use super::stats::{LatencySummary, Summary, TICK};
use super::traffic::{Options, Outcome};
use super::{connections, storm, BenchArgs};

/// Everything a run measured.
#[derive(Debug, Serialize)]
pub struct Report {
    /// UTC date of the run (YYYY-MM-DD).
    pub date: String,
    pub machine: Machine,
    /// `own` (a server the bench started) or the URL given.
    pub server: String,
    pub scenario: String,
    pub raw: Option<ThroughputReport>,
    pub throughput: Option<ThroughputReport>,
    pub latency: Vec<LatencyReport>,
    pub connections: Option<connections::Report>,
    pub reconnect_storm: Option<storm::Report>,
}

/// Where it ran.
#[derive(Debug, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu: String,
    pub os: String,
}

/// `raw` and `throughput`.
#[derive(Debug, Serialize)]
pub struct ThroughputReport {
    pub pairs: usize,
    pub window: usize,
    pub duration_s: f64,
    pub sent: u64,
    /// Messages whose `delivered` receipt came back within the run.
    pub completed: u64,
    pub messages_per_second: f64,
    /// `messages_per_second` / the raw forwarder's, measured in the same invocation.
    pub ratio_to_raw: Option<f64>,
    pub incomplete: u64,
    pub failed: u64,
    pub latency: LatencySummary,
    /// Completions per second, one value per 250 ms.
    pub timeline_per_s: Vec<f64>,
}

impl ThroughputReport {
    pub fn of(options: &Options, outcome: &Outcome, raw: Option<f64>) -> ThroughputReport {
        let seconds = options.duration.as_secs_f64();
        let rate = outcome.completed_in_window as f64 / seconds;
        let ticks = (options.duration.as_nanos() / TICK.as_nanos()) as usize;
        ThroughputReport {
            pairs: options.pairs,
            window: options.window,
            duration_s: seconds,
            sent: outcome.sent,
            completed: outcome.completed_in_window,
            messages_per_second: rate,
            ratio_to_raw: raw.filter(|r| *r > 0.0).map(|r| rate / r),
            incomplete: outcome.incomplete,
            failed: outcome.failed,
            latency: LatencySummary::of(&outcome.latencies),
            timeline_per_s: outcome.timeline.rates(ticks),
        }
    }
}

/// One `latency` run.
#[derive(Debug, Serialize)]
pub struct LatencyReport {
    /// Scheduled total rate, messages per second.
    pub rate: f64,
    pub pairs: usize,
    pub duration_s: f64,
    pub sent: u64,
    pub completed: u64,
    pub incomplete: u64,
    pub failed: u64,
    pub latency: LatencySummary,
}

impl Report {
    pub fn new(args: &BenchArgs) -> Report {
        Report {
            date: today(),
            machine: Machine::here(),
            server: args.server.clone().unwrap_or_else(|| "own".into()),
            scenario: format!("{:?}", args.scenario).to_lowercase(),
            raw: None,
            throughput: None,
            latency: Vec::new(),
            connections: None,
            reconnect_storm: None,
        }
    }

    /// The tables printed at the end of a run.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(
            out,
            "\n{} · {} cores · {} · {}",
            self.date, m.nproc, m.cpu, m.os
        );
        let rows: Vec<(&str, &ThroughputReport)> =
            [("raw", &self.raw), ("surechat", &self.throughput)]
                .into_iter()
                .filter_map(|(name, r)| r.as_ref().map(|r| (name, r)))
                .collect();
        if !rows.is_empty() {
            let _ = writeln!(
                out,
                "\nthroughput (message + receipt, end to end)\n{:<10} {:>6} {:>7} {:>12} {:>9} {:>11} {:>11}",
                "", "pairs", "window", "msg/s", "vs raw", "p50 ms", "p99 ms"
            );
            for (name, r) in rows {
                let ratio = r
                    .ratio_to_raw
                    .map_or("-".into(), |x| format!("{:.1} %", x * 100.0));
                let _ = writeln!(
                    out,
                    "{:<10} {:>6} {:>7} {:>12.0} {:>9} {:>11.2} {:>11.2}",
                    name,
                    r.pairs,
                    r.window,
                    r.messages_per_second,
                    ratio,
                    r.latency.send_to_receipt.p50_ms,
                    r.latency.send_to_receipt.p99_ms
                );
            }
        }
        if !self.latency.is_empty() {
            let _ = writeln!(
                out,
                "\nlatency (ms, from the scheduled send)\n{:<10} {:<14} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                "rate", "", "count", "p50", "p90", "p99", "p99.9", "max"
            );
            for l in &self.latency {
                let parts = [
                    ("send→ack", &l.latency.send_to_ack),
                    ("send→receive", &l.latency.send_to_receive),
                    ("send→receipt", &l.latency.send_to_receipt),
                ];
                for (i, (name, s)) in parts.into_iter().enumerate() {
                    let rate = if i == 0 {
                        format!("{}", l.rate)
                    } else {
                        String::new()
                    };
                    let _ = writeln!(out, "{rate:<10} {}", summary_row(name, s));
                }
                if l.incomplete + l.failed > 0 {
                    let _ = writeln!(
                        out,
                        "           incomplete {}, failed {}",
                        l.incomplete, l.failed
                    );
                }
            }
        }
        if let Some(c) = &self.connections {
            let per = c
                .server_bytes_per_connection
                .map_or("-".into(), |b| format!("{:.1} KiB", b as f64 / 1024.0));
            let _ = writeln!(
                out,
                "\nconnections\n{} idle authenticated connections ({} source addresses) opened in {:.2} s; server memory per connection {per} (RSS {} → {} KiB)",
                c.opened,
                c.source_addresses,
                c.open_seconds,
                c.server_rss_before_kib.map_or("-".into(), |v| v.to_string()),
                c.server_rss_after_kib.map_or("-".into(), |v| v.to_string()),
            );
        }
        if let Some(s) = &self.reconnect_storm {
            let _ = writeln!(
                out,
                "\nreconnect storm\n{} devices, {} messages each written while cut; all resumed in {:.2} s (missing {}, duplicates {}); connect {:.2} s, backlog write {:.2} s",
                s.devices,
                s.backlog_per_device,
                s.resume_seconds,
                s.missing,
                s.duplicates,
                s.connect_seconds,
                s.backlog_write_seconds
            );
        }
        out
    }
}

fn summary_row(name: &str, s: &Summary) -> String {
    format!(
        "{name:<14} {:>9} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
        s.count, s.p50_ms, s.p90_ms, s.p99_ms, s.p999_ms, s.max_ms
    )
}

impl Machine {
    fn here() -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("model name"))
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
            .unwrap_or_else(|| "unknown".into());
        let os = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                    .map(|v| v.trim_matches('"').to_owned())
            })
            .unwrap_or_else(|| std::env::consts::OS.into());
        Machine {
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu,
            os,
        }
    }
}

/// Today's UTC date, from days since the Unix epoch (Howard Hinnant's civil-from-days).
fn today() -> String {
    let days = (server::now_s() / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}
