//! The shipped monitoring files against the real tools: the alerting rules pass `promtool` and
//! their unit tests; a live scrape passes `promtool check metrics`, names every series the
//! dashboard and the rules query, and holds exactly the series `docs/operations.md` lists; and a
//! real Prometheus loading the rules fires `SurechatNodeDown` when a node is killed and resolves
//! it when the node is back.
//!
//! Needs Debian's `prometheus` package (`promtool` and `prometheus` in `/usr/bin`); `.ci/run`
//! installs it. Without it these tests fail, never skip.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use testkit::{Http, Served};

const ADMIN: &str = "monitoring-test-admin-key-0123";
const SECRET: &str = "monitoring-test-jwt-secret-0123456789abcdef";

const PROMTOOL: &str = "/usr/bin/promtool";
const PROMETHEUS: &str = "/usr/bin/prometheus";

/// The longest a test waits for Prometheus to see a change: with 1 s scrapes and 1 s rule
/// evaluations a change shows within a few seconds; the rest is room for a loaded CI machine
/// (Prometheus itself takes a few seconds to start).
const PROMETHEUS_WAIT: Duration = Duration::from_secs(60);

/// How often a wait asks Prometheus again: its HTTP API offers nothing to await.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// The alert the node-down test drives.
const NODE_DOWN: &str = "SurechatNodeDown";

fn monitoring_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/monitoring")
}

/// The path of a tool of Debian's `prometheus` package; fails the test when it is missing.
fn tool(path: &str) -> &str {
    assert!(
        Path::new(path).exists(),
        "{path} not found: install Debian's `prometheus` package \
         (`apt-get install --no-install-recommends prometheus`; .ci/run does)"
    );
    path
}

/// `surechat serve` on `data`, listening on `listen`; `None` if it exits before listening (its
/// port still taken, for instance).
fn try_serve(data: &Path, listen: &str) -> Option<Served> {
    Served::try_spawn(
        Command::new(env!("CARGO_BIN_EXE_surechat"))
            .args(["serve", "--listen", listen, "--data"])
            .arg(data)
            .env("SURECHAT_ADMIN_KEY", ADMIN)
            .env("SURECHAT_JWT_SECRET", SECRET)
            .env("RUST_LOG", "warn"),
        |_| {},
    )
}

fn serve(data: &Path, listen: &str) -> Served {
    try_serve(data, listen).expect("surechat serve prints its address")
}

/// A port of 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The scrape of a running server.
async fn scrape(base: &str) -> String {
    let answer = Http::new(base).get("/metrics", None).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body
}

/// Metric families of a scrape by name, with their `# TYPE`.
fn families(scrape: &str) -> BTreeMap<String, String> {
    scrape
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_once(' '))
        .map(|(name, kind)| (name.to_owned(), kind.trim().to_owned()))
        .collect()
}

/// Every identifier in `text` that starts with `surechat_`.
fn series_names(text: &str) -> Vec<String> {
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("surechat_") {
        let starts_word = !rest[..at].ends_with(is_name_char);
        let tail = &rest[at..];
        let end = tail.find(|c: char| !is_name_char(c)).unwrap_or(tail.len());
        if starts_word {
            names.push(tail[..end].to_owned());
        }
        rest = &tail[end..];
    }
    names
}

/// Whether `name` is a family of the scrape, or the `_bucket`/`_sum`/`_count` series of one of
/// its histograms.
fn scraped(name: &str, families: &BTreeMap<String, String>) -> bool {
    families.contains_key(name)
        || ["_bucket", "_sum", "_count"].iter().any(|suffix| {
            name.strip_suffix(suffix)
                .and_then(|family| families.get(family))
                .is_some_and(|kind| kind == "histogram")
        })
}

/// Every `expr` of the dashboard, in panel order.
fn dashboard_exprs() -> Vec<String> {
    fn walk(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value) {
                        ("expr", Value::String(expr)) => out.push(expr.clone()),
                        _ => walk(value, out),
                    }
                }
            }
            Value::Array(values) => values.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let text = std::fs::read_to_string(monitoring_dir().join("dashboard.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).expect("dashboard.json is JSON");
    let mut exprs = Vec::new();
    walk(&dashboard, &mut exprs);
    assert!(!exprs.is_empty(), "the dashboard has no queries");
    exprs
}

/// A dashboard query as Prometheus takes it: Grafana's variables filled in.
fn without_grafana_variables(expr: &str) -> String {
    let filled = expr
        .replace("$__rate_interval", "1m")
        .replace("$instance", ".*");
    assert!(
        !filled.contains('$'),
        "a Grafana variable this test does not fill in: {expr}"
    );
    filled
}

fn alerts_text() -> String {
    std::fs::read_to_string(monitoring_dir().join("alerts.yml")).unwrap()
}

/// `promtool check rules alerts.yml`, then its unit tests (`promtool test rules
/// alerts.test.yml`: the guards against an idle server, the codes left out of the refusal
/// ratio, the delivery median).
#[test]
fn shipped_rules_pass_promtool() {
    for (command, file) in [("check", "alerts.yml"), ("test", "alerts.test.yml")] {
        let output = Command::new(tool(PROMTOOL))
            .args([command, "rules"])
            .arg(monitoring_dir().join(file))
            .output()
            .expect("running promtool");
        assert!(
            output.status.success(),
            "promtool {command} rules {file} failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_scrape_passes_promtool_and_names_every_dashboard_series() {
    let promtool = tool(PROMTOOL);
    let dir = tempfile::tempdir().unwrap();
    let served = serve(&dir.path().join("data"), "127.0.0.1:0");
    // Some traffic, so that labelled series have samples: a stored message and a refusal.
    let http = Http::new(&served.base);
    let body = json!({"participants": [{"user_id": "ana", "role": "client"}, {"user_id": "olga", "role": "operator"}]});
    let created = http
        .json("PUT", "/v1/conversations/b1", Some(ADMIN), &body)
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let token = http.token(ADMIN, "ana", protocol::Role::Client).await;
    let sent = http
        .json(
            "POST",
            "/v1/conversations/b1/messages",
            Some(&token),
            &json!({"id": testkit::uuid(), "body": "hello"}),
        )
        .await;
    assert_eq!(sent.status, 201, "{}", sent.body);
    let refused = http
        .get("/v1/conversations/b1/messages", Some("not-a-token"))
        .await;
    assert_eq!(refused.status, 401, "{}", refused.body);

    let scrape = scrape(&served.base).await;
    let mut check = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running promtool");
    check
        .stdin
        .take()
        .unwrap()
        .write_all(scrape.as_bytes())
        .unwrap();
    let output = check.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}\nscrape:\n{scrape}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let families = families(&scrape);
    let mut missing = Vec::new();
    for expr in dashboard_exprs() {
        for name in series_names(&expr) {
            if !scraped(&name, &families) {
                missing.push(format!("dashboard: {name} (in `{expr}`)"));
            }
        }
    }
    // Comments name no series; everything else (expressions, annotations) must.
    let rules: String = alerts_text()
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let in_rules = series_names(&rules);
    assert!(!in_rules.is_empty(), "alerts.yml names no surechat series");
    for name in in_rules {
        if !scraped(&name, &families) {
            missing.push(format!("alerts.yml: {name}"));
        }
    }
    assert!(
        missing.is_empty(),
        "series not in the scrape:\n{}\nscrape:\n{scrape}",
        missing.join("\n")
    );

    // The table of docs/operations.md § Metrics and the scrape name the same families.
    let operations = std::fs::read_to_string(monitoring_dir().join("../operations.md")).unwrap();
    let section = operations
        .split_once("\n## Metrics\n")
        .expect("operations.md has a Metrics section")
        .1;
    let section = section.split("\n## ").next().unwrap();
    let documented: BTreeSet<String> = series_names(section).into_iter().collect();
    let served: BTreeSet<String> = families
        .keys()
        .filter(|name| name.starts_with("surechat_"))
        .cloned()
        .collect();
    assert_eq!(
        documented.difference(&served).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "documented in operations.md but not served"
    );
    assert_eq!(
        served.difference(&documented).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "served but not documented in operations.md § Metrics"
    );
}

/// A Prometheus process, killed on drop; its log is in `log`.
struct Prometheus {
    child: Child,
    address: String,
    log: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Prometheus scraping `target` every second as job `surechat`, with the shipped rules
    /// evaluated every second and every `for:` set to 0 s, so an alert fires on the first
    /// evaluation that matches.
    fn start(dir: &Path, target: &str) -> Prometheus {
        let rules: String = alerts_text()
            .lines()
            .map(|line| match line.split_once("for: ") {
                Some((indent, _)) if indent.trim().is_empty() => format!("{indent}for: 0s\n"),
                _ => format!("{line}\n"),
            })
            .collect();
        std::fs::write(dir.join("alerts.yml"), rules).unwrap();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - alerts.yml\n\
             scrape_configs:\n  - job_name: surechat\n    static_configs:\n      \
             - targets: ['{target}']\n"
        );
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let output = Command::new(tool(PROMTOOL))
            .args(["check", "config"])
            .arg(dir.join("prometheus.yml"))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "the test's own configuration: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let address = format!("127.0.0.1:{}", free_port());
        let log = dir.join("prometheus.log");
        let child = Command::new(tool(PROMETHEUS))
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting prometheus");
        Prometheus {
            child,
            address,
            log,
        }
    }

    /// `GET path` of Prometheus's HTTP API as JSON, or why not.
    async fn api(&self, path: &str) -> Result<Value, String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let exchange = async {
            let mut socket = tokio::net::TcpStream::connect(&self.address)
                .await
                .map_err(|e| format!("connecting: {e}"))?;
            // HTTP/1.0: the answer ends with the connection and is never chunked.
            let request = format!("GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", self.address);
            socket
                .write_all(request.as_bytes())
                .await
                .map_err(|e| format!("writing: {e}"))?;
            let mut answer = String::new();
            socket
                .read_to_string(&mut answer)
                .await
                .map_err(|e| format!("reading: {e}"))?;
            Ok::<_, String>(answer)
        };
        let answer = tokio::time::timeout(Duration::from_secs(10), exchange)
            .await
            .map_err(|_| "no answer within 10 s".to_owned())??;
        let (_, body) = answer
            .split_once("\r\n\r\n")
            .ok_or_else(|| format!("not an HTTP answer: {answer}"))?;
        serde_json::from_str(body).map_err(|e| format!("{e}: {answer}"))
    }

    /// An instant query's answer.
    async fn query(&self, expr: &str) -> Result<Value, String> {
        self.api(&format!("/api/v1/query?query={}", percent_encode(expr)))
            .await
    }

    /// Polls `probe` until it gives a value; fails with `what`, the last thing seen and the log
    /// of Prometheus after [`PROMETHEUS_WAIT`].
    async fn wait_for<T>(
        &self,
        what: &str,
        mut probe: impl AsyncFnMut(&Prometheus) -> Result<T, String>,
    ) -> T {
        let deadline = Instant::now() + PROMETHEUS_WAIT;
        loop {
            let last = match probe(self).await {
                Ok(value) => return value,
                Err(last) => last,
            };
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                panic!(
                    "waited {PROMETHEUS_WAIT:?} for {what}; last seen: {last}\n\
                     prometheus log (last lines, newest first):\n{}",
                    tail.join("\n")
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// The state of `alert` (`"pending"` or `"firing"`), or `None` when it is inactive.
    async fn alert_state(&self, alert: &str) -> Result<Option<String>, String> {
        let answer = self.api("/api/v1/alerts").await?;
        let alerts = answer["data"]["alerts"]
            .as_array()
            .ok_or_else(|| format!("no alerts list: {answer}"))?;
        Ok(alerts
            .iter()
            .find(|a| a["labels"]["alertname"] == alert)
            .and_then(|a| a["state"].as_str())
            .map(str::to_owned))
    }
}

/// `text` percent-encoded for a query string: everything but unreserved characters.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_fires_the_node_down_alert_and_resolves_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let listen = format!("127.0.0.1:{}", free_port());
    let mut served = serve(&data, &listen);
    let prometheus = Prometheus::start(dir.path(), &listen);

    // The rules are loaded and evaluated, the target is up, and the alert is quiet.
    prometheus
        .wait_for("the target up and the rules evaluated", async |p| {
            let up = p.query("up{job=\"surechat\"}").await?;
            let value = &up["data"]["result"][0]["value"][1];
            if value != "1" {
                return Err(format!("up: {up}"));
            }
            let rules = p.api("/api/v1/rules").await?;
            let node_down = rules["data"]["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|g| g["rules"].as_array().into_iter().flatten())
                .find(|r| r["name"] == NODE_DOWN)
                .ok_or_else(|| format!("no {NODE_DOWN} among the rules: {rules}"))?;
            if node_down["health"] != "ok" {
                return Err(format!("{NODE_DOWN}: {node_down}"));
            }
            match p.alert_state(NODE_DOWN).await? {
                None => Ok(()),
                Some(state) => Err(format!("{NODE_DOWN} is {state} while the node is up")),
            }
        })
        .await;

    // Every rule evaluates without error against a real scrape…
    let rules = prometheus.api("/api/v1/rules").await.unwrap();
    for rule in rules["data"]["groups"][0]["rules"].as_array().unwrap() {
        assert_ne!(rule["health"], "err", "rule {}: {rule}", rule["name"]);
    }
    // …and so does every query of the dashboard.
    for expr in dashboard_exprs() {
        let query = without_grafana_variables(&expr);
        let answer = prometheus
            .query(&query)
            .await
            .unwrap_or_else(|e| panic!("`{query}`: {e}"));
        assert_eq!(answer["status"], "success", "`{query}`: {answer}");
    }

    served.child.kill().unwrap(); // SIGKILL: the node vanishes without a word
    served.child.wait().unwrap();
    prometheus
        .wait_for(&format!("{NODE_DOWN} to fire"), async |p| {
            match p.alert_state(NODE_DOWN).await? {
                Some(state) if state == "firing" => Ok(()),
                state => Err(format!("{NODE_DOWN}: {state:?}")),
            }
        })
        .await;

    // The same node again, on the same port and data; the port may take a moment to be free.
    let deadline = Instant::now() + PROMETHEUS_WAIT;
    let _served = loop {
        if let Some(served) = try_serve(&data, &listen) {
            break served;
        }
        assert!(
            Instant::now() < deadline,
            "surechat serve did not start again on {listen}"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    };
    prometheus
        .wait_for(&format!("{NODE_DOWN} to resolve"), async |p| {
            match p.alert_state(NODE_DOWN).await? {
                Some(state) if state == "firing" => Err(format!("{NODE_DOWN} still firing")),
                _ => Ok(()),
            }
        })
        .await;
}
