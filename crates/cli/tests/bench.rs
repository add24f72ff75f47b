//! `surechat bench` runs each scenario briefly, with small counts, and writes JSON with the
//! expected fields. Speed is not judged here (BENCHMARKS.md is where numbers live).

use std::process::Command;

use serde_json::Value;

/// Runs `surechat bench --scenario NAME` with `extra` flags; returns the JSON it wrote.
fn bench(scenario: &str, extra: &[&str]) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("bench.json");
    let plot = dir.path().join("bench.svg");
    let output = Command::new(env!("CARGO_BIN_EXE_surechat"))
        .current_dir(dir.path())
        .args(["bench", "--scenario", scenario, "--json"])
        .arg(&json)
        .arg("--plot")
        .arg(&plot)
        .args(extra)
        .output()
        .expect("running surechat bench");
    assert!(
        output.status.success(),
        "bench {scenario} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let svg = std::fs::read_to_string(&plot).expect("the plot was written");
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    let text = std::fs::read_to_string(&json).expect("the JSON was written");
    serde_json::from_str(&text).expect("the JSON parses")
}

const SHORT: &[&str] = &["--duration", "2", "--pairs", "4", "--window", "8"];

fn number(value: &Value, path: &str) -> f64 {
    let mut v = value;
    for key in path.split('.') {
        v = &v[key];
    }
    v.as_f64()
        .unwrap_or_else(|| panic!("{path} is not a number in {value:#}"))
}

#[test]
fn throughput_runs_raw_too_and_reports_the_ratio() {
    let report = bench("throughput", SHORT);
    assert!(report["machine"]["nproc"].as_u64().unwrap() >= 1);
    assert!(number(&report, "raw.messages_per_second") > 0.0);
    assert!(number(&report, "throughput.messages_per_second") > 0.0);
    assert!(number(&report, "throughput.ratio_to_raw") > 0.0);
    assert_eq!(number(&report, "throughput.failed"), 0.0);
    for kind in ["send_to_ack", "send_to_receive", "send_to_receipt"] {
        let count = number(&report, &format!("throughput.latency.{kind}.count"));
        assert!(count > 0.0, "{kind} has no samples");
        number(&report, &format!("throughput.latency.{kind}.p99_ms"));
    }
    assert!(!report["throughput"]["timeline_per_s"]
        .as_array()
        .unwrap()
        .is_empty());
    // Each message stored at least its body's bytes and its 36-character id.
    let node = &report["throughput"]["usage"]["nodes"][0];
    assert!(number(node, "database_bytes") > 0.0);
    assert!(number(node, "database_bytes_per_message") > 36.0);
}

#[test]
fn raw_alone() {
    let report = bench("raw", SHORT);
    assert!(number(&report, "raw.messages_per_second") > 0.0);
    assert!(report["throughput"].is_null());
}

#[test]
fn latency_at_two_rates() {
    let mut flags = SHORT.to_vec();
    flags.extend(["--rate", "100,200"]);
    let report = bench("latency", &flags);
    let runs = report["latency"].as_array().expect("latency runs");
    assert_eq!(runs.len(), 2);
    for run in runs {
        assert!(run["completed"].as_u64().unwrap() > 0);
        assert_eq!(run["failed"].as_u64(), Some(0));
        for kind in ["send_to_ack", "send_to_receive", "send_to_receipt"] {
            for field in ["p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms"] {
                number(run, &format!("latency.{kind}.{field}"));
            }
        }
    }
}

#[test]
fn connections() {
    let report = bench("connections", &["--connections", "200"]);
    assert_eq!(number(&report, "connections.opened"), 200.0);
    number(&report, "connections.open_seconds");
    number(&report, "connections.server_bytes_per_connection");
}

#[test]
fn reconnect_storm() {
    let report = bench("reconnect-storm", &["--devices", "100", "--backlog", "3"]);
    assert_eq!(number(&report, "reconnect_storm.missing"), 0.0);
    assert_eq!(number(&report, "reconnect_storm.duplicates"), 0.0);
    assert_eq!(number(&report, "reconnect_storm.messages"), 300.0);
    number(&report, "reconnect_storm.resume_seconds");
}

/// Two nodes the bench starts on a fresh schema of the test database: every message crosses
/// nodes (a pair's client and operator are on different ones), all of them complete, and the
/// report says what each node and PostgreSQL spent.
#[test]
fn two_nodes_on_postgres() {
    let database = testkit::postgres::shared_database();
    let mut flags = SHORT.to_vec();
    flags.extend(["--rate", "200", "--nodes", "2", "--database", &database]);
    let report = bench("latency", &flags);
    assert_eq!(report["nodes"].as_u64(), Some(2));
    assert_eq!(report["storage"].as_str(), Some("postgres"));
    let run = &report["latency"][0];
    let sent = number(run, "sent");
    assert!(sent > 0.0);
    assert_eq!(number(run, "completed"), sent, "every message completed");
    assert_eq!(number(run, "incomplete"), 0.0);
    assert_eq!(number(run, "failed"), 0.0);
    assert_eq!(number(run, "usage.messages"), sent);
    let nodes = run["usage"]["nodes"]
        .as_array()
        .expect("a usage row per node");
    assert_eq!(nodes.len(), 2);
    for node in nodes {
        number(node, "cpu_seconds");
        number(node, "cpu_us_per_message");
        assert!(number(node, "rss_kib") > 0.0);
        assert!(number(node, "writer_commits") > 0.0);
        number(node, "writes_per_commit");
        number(node, "writer_busy_seconds");
        // Each node carries clients and operators of other nodes' pairs: it hears notices.
        assert!(number(node, "notices_published") > 0.0);
        assert!(number(node, "notices_heard") > 0.0);
        assert!(number(node, "database_bytes_per_message") > 36.0);
    }
    assert!(number(run, "usage.postgres.commits") > 0.0);
    number(run, "usage.postgres.commits_per_second");
    number(run, "usage.postgres.messages_per_commit");
    number(run, "usage.postgres.wal_bytes_per_message");
}
