//! What a traffic run cost the servers: per node, CPU time (`utime + stime` from
//! `/proc/<pid>/stat`), resident memory and the storage writer's commits (from its `/metrics`);
//! and for PostgreSQL, the database's committed transactions (`pg_stat_database.xact_commit`),
//! the WAL written and the CPU time of the database's backends. A [`Sample`] is taken when the
//! sending starts and another after the last message completed; [`Usage::between`] divides the
//! differences by the messages completed in between.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use tokio_postgres::{Client, Config, NoTls};

use super::http::HttpConn;
use super::target::Target;

/// How long after a run PostgreSQL's statistics are read. A backend publishes its counters at
/// most once a second while busy and, when it goes idle less than a second after its last
/// report, only 10 s later (`PGSTAT_IDLE_INTERVAL` in PostgreSQL 15's `pgstat.c`): reading at
/// once would miss the last second of commits.
pub const PG_STATS_SETTLE: Duration = Duration::from_millis(11_000);

/// A PostgreSQL database whose statistics are sampled, over a connection of its own.
pub struct Database {
    client: Client,
}

impl Database {
    /// Connects to `url` (the database the nodes use; the schema does not matter).
    pub async fn connect(url: &str) -> anyhow::Result<Database> {
        let config: Config = url.parse().context("the --database URL")?;
        let (client, connection) = config
            .connect(NoTls)
            .await
            .context("connecting to --database for its statistics")?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Database { client })
    }

    async fn sample(&self) -> anyhow::Result<PgSample> {
        let row = self
            .client
            .query_one(
                "SELECT xact_commit, \
                        pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint, \
                        (SELECT array_agg(pid) FROM pg_stat_activity \
                          WHERE datname = current_database() AND pid <> pg_backend_pid()) \
                   FROM pg_stat_database WHERE datname = current_database()",
                &[],
            )
            .await
            .context("reading pg_stat_database")?;
        let pids: Option<Vec<i32>> = row.get(2);
        let backends = pids
            .unwrap_or_default()
            .into_iter()
            .filter_map(|pid| Some((pid as u32, cpu_ticks(pid as u32)?)))
            .collect();
        Ok(PgSample {
            xact_commit: row.get::<_, i64>(0) as u64,
            wal_bytes: row.get::<_, i64>(1) as u64,
            backends,
        })
    }
}

/// Counters at one instant.
pub struct Sample {
    at: Instant,
    nodes: Vec<NodeSample>,
    pg: Option<PgSample>,
}

struct NodeSample {
    cpu_ticks: Option<u64>,
    metrics: Option<WriterMetrics>,
}

#[derive(Clone, Copy)]
struct WriterMetrics {
    /// `surechat_writer_batch_size_count`: committed (or failed) batches.
    batches: f64,
    /// `surechat_writer_batch_size_sum`: writes in them.
    writes: f64,
    /// `surechat_writer_commit_seconds_sum`: time spent running and committing them.
    busy_seconds: f64,
    /// `surechat_cluster_notices_total{direction="published"}`.
    published: f64,
    /// `surechat_cluster_notices_total{direction="heard"}`.
    heard: f64,
    /// `surechat_database_bytes`: the database's tables and indexes (absent without files).
    database_bytes: Option<f64>,
}

struct PgSample {
    xact_commit: u64,
    wal_bytes: u64,
    /// CPU ticks of each backend connected to the database.
    backends: HashMap<u32, u64>,
}

/// Reads every counter of `target` now. With `settle`, PostgreSQL's statistics are read
/// [`PG_STATS_SETTLE`] later, once its backends have published them (the run is over by then;
/// what little happens meanwhile is background work). Counters that cannot be read are left out.
pub async fn sample(target: &Target, settle: bool) -> Sample {
    let at = Instant::now();
    let mut nodes = Vec::new();
    for node in &target.nodes {
        nodes.push(NodeSample {
            cpu_ticks: node.pid.and_then(cpu_ticks),
            metrics: writer_metrics(node.address).await,
        });
    }
    let pg = match &target.database {
        Some(database) => {
            if settle {
                eprintln!(
                    "reading PostgreSQL's statistics in {} s, once its backends have published them",
                    PG_STATS_SETTLE.as_secs()
                );
                tokio::time::sleep(PG_STATS_SETTLE).await;
            }
            match database.sample().await {
                Ok(sample) => Some(sample),
                Err(err) => {
                    eprintln!("warning: {err:#}");
                    None
                }
            }
        }
        None => None,
    };
    Sample { at, nodes, pg }
}

/// What the servers spent on a run.
#[derive(Debug, Clone, Serialize)]
pub struct Usage {
    /// Wall time between the two samples.
    pub seconds: f64,
    /// Messages completed end to end between them.
    pub messages: u64,
    pub nodes: Vec<NodeUsage>,
    pub postgres: Option<PgUsage>,
}

/// One node's share.
#[derive(Debug, Clone, Serialize)]
pub struct NodeUsage {
    /// `http://IP:PORT`.
    pub server: String,
    /// User plus system CPU time of the process during the run.
    pub cpu_seconds: Option<f64>,
    /// `cpu_seconds` per message completed end to end (by any node), in microseconds.
    pub cpu_us_per_message: Option<f64>,
    /// Resident memory at the end (`VmRSS`).
    pub rss_kib: Option<u64>,
    /// Transactions of the node's storage writer (group commits), from its `/metrics`.
    pub writer_commits: Option<u64>,
    /// Writes (messages, receipts, …) per writer commit.
    pub writes_per_commit: Option<f64>,
    /// Time the writer spent running and committing batches: near the run's length, the writer
    /// is the bottleneck whatever the CPU does.
    pub writer_busy_seconds: Option<f64>,
    /// Cluster notices this node published and heard from others.
    pub notices_published: Option<u64>,
    pub notices_heard: Option<u64>,
    /// The database's tables and indexes after the run, in bytes (`surechat_database_bytes`).
    pub database_bytes: Option<u64>,
    /// Their growth during the run per message completed: what a message costs on disk, with
    /// its receipts' and events' rows and the indexes. Nodes sharing PostgreSQL each report the
    /// whole database's growth.
    pub database_bytes_per_message: Option<f64>,
}

/// The PostgreSQL database's share.
#[derive(Debug, Clone, Serialize)]
pub struct PgUsage {
    /// Transactions committed in the database (`pg_stat_database.xact_commit`): the writers'
    /// group commits, but also every read and every `pg_notify`, each its own transaction.
    pub commits: u64,
    pub commits_per_second: f64,
    pub messages_per_commit: f64,
    /// WAL written by the whole PostgreSQL cluster during the run (every database).
    pub wal_bytes: u64,
    pub wal_bytes_per_message: f64,
    /// CPU time of the database's backend processes (when PostgreSQL runs on this machine);
    /// its background processes (WAL writer, checkpointer) are not counted.
    pub backend_cpu_seconds: Option<f64>,
    pub backend_cpu_us_per_message: Option<f64>,
}

impl Usage {
    /// The differences between `before` and `after` on `target`, `messages` completed between.
    pub fn between(target: &Target, before: &Sample, after: &Sample, messages: u64) -> Usage {
        let seconds = after.at.duration_since(before.at).as_secs_f64();
        let per_message = |x: f64| (messages > 0).then(|| x / messages as f64);
        let tick = ticks_per_second();
        let nodes = target
            .nodes
            .iter()
            .zip(before.nodes.iter().zip(&after.nodes))
            .map(|(node, (b, a))| {
                let cpu = b
                    .cpu_ticks
                    .zip(a.cpu_ticks)
                    .map(|(b, a)| a.saturating_sub(b) as f64 / tick);
                let writer = b.metrics.zip(a.metrics);
                let commits = writer.map(|(b, a)| a.batches - b.batches);
                let writes = writer.map(|(b, a)| a.writes - b.writes);
                NodeUsage {
                    server: format!("http://{}", node.address),
                    cpu_seconds: cpu,
                    cpu_us_per_message: cpu.and_then(|c| per_message(c * 1e6)),
                    rss_kib: node.pid.and_then(rss_kib),
                    writer_commits: commits.map(|c| c as u64),
                    writes_per_commit: commits
                        .zip(writes)
                        .filter(|(c, _)| *c > 0.0)
                        .map(|(c, w)| w / c),
                    writer_busy_seconds: writer.map(|(b, a)| a.busy_seconds - b.busy_seconds),
                    notices_published: writer.map(|(b, a)| (a.published - b.published) as u64),
                    notices_heard: writer.map(|(b, a)| (a.heard - b.heard) as u64),
                    database_bytes: a.metrics.and_then(|a| a.database_bytes).map(|b| b as u64),
                    database_bytes_per_message: writer
                        .and_then(|(b, a)| Some(a.database_bytes? - b.database_bytes?))
                        .and_then(per_message),
                }
            })
            .collect();
        let postgres = before.pg.as_ref().zip(after.pg.as_ref()).map(|(b, a)| {
            let commits = a.xact_commit.saturating_sub(b.xact_commit);
            let wal_bytes = a.wal_bytes.saturating_sub(b.wal_bytes);
            // Backends that existed at both samples count their difference; those that started
            // during the run count all their time (one that ended during the run is lost).
            let backend_ticks: Option<u64> = (!a.backends.is_empty()).then(|| {
                a.backends
                    .iter()
                    .map(|(pid, ticks)| ticks.saturating_sub(*b.backends.get(pid).unwrap_or(&0)))
                    .sum()
            });
            let backend_cpu = backend_ticks.map(|t| t as f64 / tick);
            PgUsage {
                commits,
                commits_per_second: commits as f64 / seconds.max(f64::EPSILON),
                messages_per_commit: messages as f64 / commits.max(1) as f64,
                wal_bytes,
                wal_bytes_per_message: per_message(wal_bytes as f64).unwrap_or(0.0),
                backend_cpu_seconds: backend_cpu,
                backend_cpu_us_per_message: backend_cpu.and_then(|c| per_message(c * 1e6)),
            }
        });
        Usage {
            seconds,
            messages,
            nodes,
            postgres,
        }
    }
}

/// Resident memory of process `pid` in KiB (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// User plus system CPU time of process `pid` (all its threads), in clock ticks: fields 14 and
/// 15 of `/proc/<pid>/stat`, counted after the command name, which may hold spaces.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// The writer's and the bus's counters from a node's `/metrics`, when it answers.
async fn writer_metrics(address: std::net::SocketAddr) -> Option<WriterMetrics> {
    let mut conn = HttpConn::connect(address).await.ok()?;
    let (status, text) = conn.get("/metrics").await.ok()?;
    if status != 200 {
        return None;
    }
    let value = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    Some(WriterMetrics {
        batches: value("surechat_writer_batch_size_count")?,
        writes: value("surechat_writer_batch_size_sum")?,
        busy_seconds: value("surechat_writer_commit_seconds_sum")?,
        published: value("surechat_cluster_notices_total{direction=\"published\"}").unwrap_or(0.0),
        heard: value("surechat_cluster_notices_total{direction=\"heard\"}").unwrap_or(0.0),
        database_bytes: value("surechat_database_bytes"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_cpu_time_and_memory() {
        let pid = std::process::id();
        assert!(cpu_ticks(pid).is_some());
        assert!(rss_kib(pid).is_some_and(|kib| kib > 0));
    }
}
