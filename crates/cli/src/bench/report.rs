//! The results of a bench run: JSON (`--json`) and the tables printed at the end.

use std::fmt::Write;

use serde::Serialize;

use super::stats::{LatencySummary, Summary, TICK};
use super::traffic::{Options, Outcome};
use super::usage::Usage;
use super::{connections, storm, BenchArgs};

/// Everything a run measured.
#[derive(Debug, Serialize)]
pub struct Report {
    /// UTC date of the run (YYYY-MM-DD).
    pub date: String,
    pub machine: Machine,
    /// `own` (servers the bench started) or the URLs given, comma-separated.
    pub server: String,
    /// How many servers (nodes) each scenario ran against.
    pub nodes: usize,
    /// `sqlite` or `postgres` for servers the bench started; `postgres` or `unknown` for
    /// running servers (with or without --database).
    pub storage: String,
    /// How devices made message ids: `ordered` (UUIDv7, as the SDKs do) or `random` (UUIDv4).
    pub ids: String,
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
    /// What the servers spent (none for the raw forwarder).
    pub usage: Option<Usage>,
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
            usage: outcome.usage.clone(),
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
    /// What the servers spent.
    pub usage: Option<Usage>,
}

impl Report {
    pub fn new(args: &BenchArgs) -> Report {
        Report {
            date: today(),
            machine: Machine::here(),
            server: if args.server.is_empty() {
                "own".into()
            } else {
                args.server.join(",")
            },
            nodes: if args.server.is_empty() {
                args.nodes as usize
            } else {
                args.server.len()
            },
            storage: match (args.database.is_some(), args.server.is_empty()) {
                (true, _) => "postgres",
                (false, true) => "sqlite",
                (false, false) => "unknown",
            }
            .into(),
            ids: format!("{:?}", args.ids).to_lowercase(),
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
            "\n{} · {} cores · {} · {}\n{} node(s), {}, {} ids",
            self.date, m.nproc, m.cpu, m.os, self.nodes, self.storage, self.ids
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
            if let Some(usage) = self.throughput.as_ref().and_then(|r| r.usage.as_ref()) {
                usage_rows(&mut out, "throughput", usage);
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
            for l in &self.latency {
                if let Some(usage) = &l.usage {
                    usage_rows(&mut out, &format!("latency @ {} msg/s", l.rate), usage);
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

/// What the servers spent during one run: a row per node, a line for PostgreSQL.
fn usage_rows(out: &mut String, label: &str, usage: &Usage) {
    let opt = |v: Option<f64>, digits: usize| v.map_or("-".into(), |v| format!("{v:.digits$}"));
    let count = |v: Option<u64>| v.map_or("-".into(), |v| v.to_string());
    let _ = writeln!(
        out,
        "\nservers during {label} ({} messages in {:.1} s)\n{:<24} {:>8} {:>9} {:>10} {:>9} {:>9} {:>9} {:>15} {:>9} {:>9}",
        usage.messages,
        usage.seconds,
        "node",
        "cpu s",
        "µs/msg",
        "RSS KiB",
        "commits",
        "writes/c",
        "writer s",
        "notices out/in",
        "DB MB",
        "DB B/msg"
    );
    for node in &usage.nodes {
        let _ = writeln!(
            out,
            "{:<24} {:>8} {:>9} {:>10} {:>9} {:>9} {:>9} {:>15} {:>9} {:>9}",
            node.server.trim_start_matches("http://"),
            opt(node.cpu_seconds, 2),
            opt(node.cpu_us_per_message, 1),
            count(node.rss_kib),
            count(node.writer_commits),
            opt(node.writes_per_commit, 1),
            opt(node.writer_busy_seconds, 2),
            format!(
                "{}/{}",
                count(node.notices_published),
                count(node.notices_heard)
            ),
            opt(node.database_bytes.map(|b| b as f64 / 1e6), 1),
            opt(node.database_bytes_per_message, 0),
        );
    }
    if let Some(pg) = &usage.postgres {
        let _ = writeln!(
            out,
            "postgres: {} commits ({:.0}/s, {:.2} messages per commit), WAL {:.0} B/message, backends {} s CPU ({} µs/message)",
            pg.commits,
            pg.commits_per_second,
            pg.messages_per_commit,
            pg.wal_bytes_per_message,
            opt(pg.backend_cpu_seconds, 2),
            opt(pg.backend_cpu_us_per_message, 1),
        );
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
