//! `surechat bench`: a load generator on the SDK's core ([`client::Session`]), against a
//! `surechat serve` it starts (temporary data directory, ephemeral port, rate limits raised),
//! several it starts on a fresh schema of a PostgreSQL database (`--nodes N --database URL`), or
//! running servers (`--server`, one or several). With several nodes, the two sides of each
//! conversation are on different nodes. Scenarios:
//!
//! - `raw`: the ceiling — the same traffic through a forwarder with no storage and no logic;
//! - `throughput`: pairs sending as fast as their window allows, end to end (send → durable ack
//!   → received by the other side → its `delivered` receipt back at the sender);
//! - `latency`: a fixed total rate, percentiles from the scheduled send time;
//! - `connections`: idle authenticated connections and the server's memory per connection;
//! - `reconnect-storm`: every connection cut at once, a backlog written, all back at once.
//!
//! Throughput and latency runs also report what they cost the servers ([`usage`]): CPU time per
//! message and memory of each node, its writer's commits, and PostgreSQL's commits, WAL and
//! backend CPU time. Progress goes to stderr; results are printed as tables and written as JSON
//! (`--json`) and an SVG plot (`--plot`). Every ack stays durable: the server is run as
//! configured, fsync and all.

mod connections;
mod device;
mod http;
mod plot;
mod raw;
mod report;
mod stats;
mod storm;
mod target;
mod traffic;
mod usage;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};

use report::{LatencyReport, Report, ThroughputReport};
use stats::LatencySummary;
use target::{Own, Target};

/// Which scenario to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    Throughput,
    Latency,
    Connections,
    ReconnectStorm,
    Raw,
    All,
}

/// `surechat bench` options.
#[derive(Args, Clone, Debug)]
pub struct BenchArgs {
    /// What to run.
    #[arg(long, value_enum, default_value = "all")]
    scenario: Scenario,
    /// Seconds of sending per throughput, raw and latency run.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Conversations (a client and an operator each) for throughput, raw and latency.
    #[arg(long, default_value_t = 100)]
    pairs: usize,
    /// Messages in flight (sent, not yet acknowledged) per device.
    #[arg(long, default_value_t = 32)]
    window: usize,
    /// Total send rates of the latency scenario, in messages per second (one run each).
    #[arg(long, value_delimiter = ',', default_value = "1000")]
    rate: Vec<f64>,
    /// Idle connections of the connections scenario.
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// Devices of the reconnect-storm scenario.
    #[arg(long, default_value_t = 10_000)]
    devices: usize,
    /// Messages written for each device while it is away (reconnect-storm).
    #[arg(long, default_value_t = 5)]
    backlog: u64,
    /// Bytes of each message body.
    #[arg(long, default_value_t = 64)]
    body_bytes: usize,
    /// How devices make message ids: time-ordered like the SDKs (UUIDv7), or random (UUIDv4),
    /// to measure what the order of ids costs storage.
    #[arg(long, value_enum, default_value = "ordered")]
    ids: traffic::Ids,
    /// Servers the bench starts for each scenario: more than one needs --database.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    nodes: u64,
    /// PostgreSQL database for the servers the bench starts (each scenario gets a fresh schema
    /// in it, dropped afterwards); with --server, the database those servers use, to read its
    /// statistics. Without it, the bench's server runs on SQLite.
    #[arg(long)]
    database: Option<String>,
    /// Benchmark running servers (http://IP:PORT, repeated or comma-separated) instead of
    /// starting them; devices are spread over them.
    #[arg(long, value_delimiter = ',', requires_all = ["admin_key", "jwt_secret"], conflicts_with = "nodes")]
    server: Vec<String>,
    /// The running server's admin key (with --server).
    #[arg(long, env = "SURECHAT_ADMIN_KEY", hide_env_values = true)]
    admin_key: Option<String>,
    /// The running server's JWT secret (with --server), to sign device tokens.
    #[arg(long, env = "SURECHAT_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// The running servers' process ids (with --server, in the same order), to read their
    /// memory and CPU time.
    #[arg(long, value_delimiter = ',')]
    server_pid: Vec<u32>,
    /// Write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Draw the latency percentiles and throughput over time to this SVG file.
    #[arg(long)]
    plot: Option<PathBuf>,
}

/// Runs `surechat bench`.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    crate::rlimit::raise_open_files();
    crate::serve::runtime()?.block_on(bench(args))
}

/// A short random id that keeps the names of one run apart from another's on the same server.
pub fn run_id() -> String {
    server::auth::random_hex(4)
}

async fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let wants = |s: Scenario| args.scenario == s || args.scenario == Scenario::All;
    let mut report = Report::new(&args);
    let duration = Duration::from_secs_f64(args.duration);
    let options = |mode| traffic::Options {
        pairs: args.pairs,
        window: args.window,
        body_bytes: args.body_bytes,
        duration,
        mode,
        ids: args.ids,
    };
    // The ceiling first, so the real runs can be given as a ratio to it.
    if wants(Scenario::Raw) || wants(Scenario::Throughput) {
        let relay = raw::relay().await?;
        let options = options(traffic::Mode::Flat);
        let outcome =
            with_progress("raw", "msg/s", duration, |p| raw::run(&relay, &options, p)).await?;
        report.raw = Some(ThroughputReport::of(&options, &outcome, None));
    }
    if wants(Scenario::Throughput) {
        let mut target = start(&args).await?;
        let options = options(traffic::Mode::Flat);
        let outcome = with_progress("throughput", "msg/s", duration, |p| {
            traffic::run(&target, &options, p)
        })
        .await;
        target.stop().await?;
        let raw = report.raw.as_ref().map(|r| r.messages_per_second);
        report.throughput = Some(ThroughputReport::of(&options, &outcome?, raw));
    }
    if wants(Scenario::Latency) {
        for &rate in &args.rate {
            let mut target = start(&args).await?;
            let options = options(traffic::Mode::Rate(rate));
            let label = format!("latency @ {rate} msg/s");
            let outcome = with_progress(&label, "msg/s", duration, |p| {
                traffic::run(&target, &options, p)
            })
            .await;
            target.stop().await?;
            let outcome = outcome?;
            report.latency.push(LatencyReport {
                rate,
                pairs: args.pairs,
                duration_s: args.duration,
                sent: outcome.sent,
                completed: outcome.completed,
                incomplete: outcome.incomplete,
                failed: outcome.failed,
                latency: LatencySummary::of(&outcome.latencies),
                usage: outcome.usage,
            });
        }
    }
    if wants(Scenario::Connections) {
        let mut target = start(&args).await?;
        let count = args.connections;
        let result = with_progress("connections", "opened/s", Duration::ZERO, |p| {
            connections::run(&target, count, p)
        })
        .await;
        target.stop().await?;
        report.connections = Some(result?);
    }
    if wants(Scenario::ReconnectStorm) {
        let mut target = start(&args).await?;
        let (count, backlog) = (args.devices, args.backlog);
        let result = with_progress("reconnect-storm", "devices/s", Duration::ZERO, |p| {
            storm::run(&target, count, backlog, p)
        })
        .await;
        target.stop().await?;
        report.reconnect_storm = Some(result?);
    }
    print!("{}", report.table());
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = &args.plot {
        std::fs::write(path, plot::svg(&report))
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// The servers under test: those given, or fresh ones for this scenario.
async fn start(args: &BenchArgs) -> anyhow::Result<Target> {
    if args.server.is_empty() {
        return Target::start_own(&Own {
            nodes: args.nodes as usize,
            database: args.database.clone(),
        })
        .await;
    }
    Target::external(
        &args.server,
        args.admin_key
            .as_deref()
            .context("--admin-key is required")?,
        args.jwt_secret
            .as_deref()
            .context("--jwt-secret is required")?,
        &args.server_pid,
        args.database.as_deref(),
    )
    .await
}

/// Runs `work` while printing, once a second on stderr, how far it got.
async fn with_progress<T, F, Fut>(
    label: &str,
    unit: &str,
    planned: Duration,
    work: F,
) -> anyhow::Result<T>
where
    F: FnOnce(Arc<AtomicU64>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    eprintln!("{label}: starting");
    let printer = {
        let counter = counter.clone();
        let label = label.to_owned();
        let unit = unit.to_owned();
        tokio::spawn(async move {
            let mut last = 0;
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                let now = counter.load(Ordering::Relaxed);
                let elapsed = started.elapsed().as_secs_f64();
                let of = if planned.is_zero() {
                    String::new()
                } else {
                    format!(" of {:.0}", planned.as_secs_f64())
                };
                eprintln!(
                    "{label}: {elapsed:.0} s{of}, {} {unit}, {now} done",
                    now - last
                );
                last = now;
            }
        })
    };
    let result = work(counter.clone()).await;
    printer.abort();
    eprintln!(
        "{label}: finished in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    result
}
