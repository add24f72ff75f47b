//! Two `surechat serve` nodes on PostgreSQL behind a real HAProxy, run with the configuration
//! that `docs/operations.md` ("Behind a load balancer") ships, so the example cannot drift from
//! what works. Devices know only the balancer's address; one node is SIGKILLed while a client
//! sends, and every device must resume through the balancer with nothing lost, doubled or
//! reordered.
//!
//! Needs `haproxy` (Debian's package; `scripts/test` installs it) and the PostgreSQL of
//! `SURECHAT_TEST_DATABASE` (default `postgres://root@127.0.0.1:5432/test`).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use client::{ChatMessage, Client, ClientOptions, Config, ConnectionStatus, DeliveryStatus, Event};
use protocol::frames;
use protocol::Role;
use serde_json::json;
use testkit::{Http, Served, WAIT};
use tokio::sync::mpsc;

const ADMIN: &str = "balancer-test-admin-key-0123";
const SECRET: &str = "balancer-test-jwt-secret-0123456789abcdef";

/// Messages the client sends before the kill, and how many of them must be acked first: the
/// rest are in flight or queued when the node dies.
const BEFORE_KILL: usize = 30;
const ACKED_BEFORE_KILL: usize = 10;
/// Messages the client sends after the kill, while it reconnects.
const AFTER_KILL: usize = 30;
const MESSAGES: usize = BEFORE_KILL + AFTER_KILL;

/// How often the test's HAProxy checks `/readyz`; the shipped example says 2 s. Shorter here so
/// the dead node leaves the rotation in well under a second.
const CHECK_INTERVAL: &str = "200ms";

/// A `surechat serve` process on the shared database, killed on drop.
type Node = Served;

/// Starts a node listening on `listen` (`127.0.0.1:0` for any free port), with `env` on top of
/// the test's settings.
fn start_node(listen: &str, database: &str, data: &std::path::Path, env: &[(&str, &str)]) -> Node {
    Served::spawn(
        Command::new(env!("CARGO_BIN_EXE_surechat"))
            .args([
                "serve",
                "--listen",
                listen,
                "--database",
                database,
                "--data",
            ])
            .arg(data)
            .env("SURECHAT_OPERATORS_AUTO_REGISTER", "true")
            .env("SURECHAT_ADMIN_KEY", ADMIN)
            .env("SURECHAT_JWT_SECRET", SECRET)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stderr(Stdio::inherit()),
    )
}

/// `surechat_connections_open` of a node, read from its own `/metrics`.
async fn connections_open(node: &Node) -> i64 {
    let metrics = node.http().get("/metrics", None).await;
    assert_eq!(metrics.status, 200, "{}", metrics.body);
    metrics
        .body
        .lines()
        .find_map(|line| line.strip_prefix("surechat_connections_open "))
        .expect("the gauge is exported")
        .trim()
        .parse()
        .expect("a number")
}

/// The `haproxy` binary: on the `PATH`, or where Debian puts it (`/usr/sbin`, which an
/// unprivileged user's `PATH` often lacks).
fn haproxy() -> std::path::PathBuf {
    let debian = std::path::PathBuf::from("/usr/sbin/haproxy");
    if debian.exists() {
        debian
    } else {
        "haproxy".into()
    }
}

/// An HAProxy process in the foreground with its own configuration, killed on drop.
struct Balancer {
    child: Child,
    base: String,
    /// HAProxy's log lines (it logs to stderr in the foreground), also echoed to the test's.
    log: mpsc::UnboundedReceiver<String>,
    _dir: tempfile::TempDir,
}

impl Balancer {
    /// The shipped example with the test's addresses and check interval.
    fn config(port: u16, nodes: [&str; 2]) -> String {
        let docs = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/operations.md"
        ))
        .unwrap();
        let (_, section) = docs
            .split_once("## Behind a load balancer")
            .expect("operations.md has the section");
        let (_, block) = section
            .split_once("```haproxy\n")
            .expect("the section has an haproxy block");
        let (example, _) = block.split_once("```").unwrap();
        let mut config = example.to_owned();
        for (from, to) in [
            ("bind :8080", format!("bind 127.0.0.1:{port}")),
            ("10.0.0.1:8080", nodes[0].to_owned()),
            ("10.0.0.2:8080", nodes[1].to_owned()),
            ("inter 2s", format!("inter {CHECK_INTERVAL}")),
        ] {
            assert_eq!(
                config.matches(from).count(),
                1,
                "the example in operations.md has `{from}` once"
            );
            config = config.replace(from, &to);
        }
        config
    }

    async fn start(nodes: [&str; 2]) -> Balancer {
        let dir = tempfile::tempdir().unwrap();
        // A free port: bound by us, released, then bound by HAProxy.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, Balancer::config(port, nodes)).unwrap();
        let check = Command::new(haproxy())
            .arg("-c")
            .arg("-f")
            .arg(&path)
            .output()
            .expect("running haproxy (Debian's package `haproxy`; scripts/test installs it)");
        assert!(
            check.status.success(),
            "haproxy refuses the configuration: {}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        // `-db`: in the foreground, no daemon, so killing the child stops it.
        let mut child = Command::new(haproxy())
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting haproxy");
        let (lines, log) = mpsc::unbounded_channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("haproxy: {line}");
                let _ = lines.send(line);
            }
        });
        let mut balancer = Balancer {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
            _dir: dir,
        };
        // HAProxy says nothing when it listens: try to connect until it accepts.
        let deadline = Instant::now() + WAIT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if let Some(status) = balancer.child.try_wait().unwrap() {
                panic!("haproxy exited: {status}");
            }
            assert!(Instant::now() < deadline, "haproxy listens in time");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        balancer
    }

    fn http(&self) -> Http {
        Http::new(&self.base)
    }

    fn ws(&self) -> String {
        self.base.replacen("http", "ws", 1) + "/v1/ws"
    }

    /// Waits for HAProxy to log that `server` of the example's backend changed to `state`
    /// (`DOWN` or `UP`), as its health checks decide.
    async fn until_server(&mut self, server: &str, state: &str) {
        self.until_servers(&[server], state).await;
    }

    /// Waits for HAProxy to log that each of `servers` changed to `state`, in any order.
    async fn until_servers(&mut self, servers: &[&str], state: &str) {
        let mut wanted: Vec<String> = servers
            .iter()
            .map(|server| format!("Server surechat_nodes/{server} is {state}"))
            .collect();
        let deadline = deadline();
        while !wanted.is_empty() {
            let line = tokio::time::timeout_at(deadline, self.log.recv())
                .await
                .unwrap_or_else(|_| panic!("haproxy logs {wanted:?} in time"))
                .expect("haproxy is running");
            wanted.retain(|w| !line.contains(w.as_str()));
        }
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn token(http: &Http, user: &str, role: Role) -> String {
    http.token(ADMIN, user, role).await
}

async fn all_messages(http: &Http, token: &str) -> Vec<frames::Message> {
    http.history(token, "b1").await
}

/// A deadline [`WAIT`] from now, for one step of the test: a device that keeps reporting events
/// (a reconnect loop, say) must still reach what the step waits for by then.
fn deadline() -> tokio::time::Instant {
    tokio::time::Instant::now() + WAIT
}

/// The next event of a device, before `deadline`.
async fn next_event(events: &mut mpsc::Receiver<Event>, deadline: tokio::time::Instant) -> Event {
    tokio::time::timeout_at(deadline, events.recv())
        .await
        .expect("the awaited event comes in time")
        .expect("the client keeps running")
}

/// Starts an SDK device that knows only the balancer, and waits until it is connected.
async fn device(url: &str, token: &str) -> (Client, mpsc::Receiver<Event>) {
    let mut options = ClientOptions::new(url, token);
    options.config = Config {
        backoff_first_ms: 50,
        backoff_base_ms: 100,
        backoff_cap_ms: 500,
        ..Config::default()
    };
    let (client, mut events) = Client::start(options).unwrap();
    let deadline = deadline();
    while next_event(&mut events, deadline).await
        != Event::ConnectionStatus(ConnectionStatus::Connected)
    {}
    (client, events)
}

/// Waits until `condition` holds for the open connections of `nodes`, read from their own
/// `/metrics` (the only way to see where a device landed), polling for at most [`WAIT`].
async fn until_connections(nodes: &[&Node], condition: impl Fn(&[i64]) -> bool) -> Vec<i64> {
    let by = Instant::now() + WAIT;
    loop {
        let mut open = Vec::new();
        for node in nodes {
            open.push(connections_open(node).await);
        }
        if condition(&open) {
            return open;
        }
        assert!(Instant::now() < by, "connections per node stayed {open:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Collects the messages of `b1` a device receives, in the order it receives them, until it has
/// [`MESSAGES`] (or panics at `deadline`).
fn collect_messages(
    mut events: mpsc::Receiver<Event>,
    deadline: tokio::time::Instant,
) -> tokio::task::JoinHandle<Vec<ChatMessage>> {
    tokio::spawn(async move {
        let mut received = Vec::new();
        while received.len() < MESSAGES {
            if let Event::Message(message) = next_event(&mut events, deadline).await {
                if message.conversation == "b1" {
                    received.push(message);
                }
            }
        }
        received
    })
}

/// What `device` received is what was sent: each message once, in the order sent, `seq` 1..N.
fn assert_every_message_once_in_order(device: &str, received: &[ChatMessage], sent: &[String]) {
    assert_eq!(
        received.iter().map(|m| &m.id).collect::<Vec<_>>(),
        sent.iter().collect::<Vec<_>>(),
        "olga's {device} has every message once, in the order sent"
    );
    assert_eq!(
        received.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (1..=sent.len() as u64).map(Some).collect::<Vec<_>>(),
        "olga's {device} sees seq 1..{} without a gap",
        sent.len()
    );
}

/// Devices reach two nodes only through HAProxy (round robin, no stickiness, `/readyz` checks).
/// The node carrying the sending client is SIGKILLed while messages are in flight: HAProxy takes
/// it out, the client and the operator device on that node reconnect through the balancer to
/// the other node, the operator's devices each receive every message once and in order, the
/// client's outbox empties and storage holds each message once, `seq` 1..N. Restarted, the node
/// is taken back and serves the whole conversation to a device that lands on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_node_behind_haproxy_loses_and_doubles_nothing() {
    let database = testkit::postgres::shared_database();
    let (url, schema) = server::store::postgres::fresh_schema(&database, "surechat_test")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = [
        start_node("127.0.0.1:0", &url, &dir.path().join("node1"), &[]),
        start_node("127.0.0.1:0", &url, &dir.path().join("node2"), &[]),
    ];
    let mut balancer = Balancer::start([nodes[0].address(), nodes[1].address()]).await;
    let lb = balancer.http();
    let created = lb
        .json(
            "POST",
            "/v1/conversations",
            Some(ADMIN),
            &json!({"id": "b1", "participants": [
                {"user_id": "ana", "role": "client"},
                {"user_id": "olga", "role": "operator"},
            ]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let ana_token = token(&lb, "ana", Role::Client).await;
    let olga_token = token(&lb, "olga", Role::Operator).await;

    // The client first, so the node it lands on is known: that is the one to kill.
    let (ana, mut ana_events) = device(&balancer.ws(), &ana_token).await;
    let open = until_connections(&[&nodes[0], &nodes[1]], |open| open[0] + open[1] == 1).await;
    let victim = usize::from(open[1] == 1);
    // Two operator devices (a console and a phone): round robin puts the console on the other
    // node and the phone next to the client, so one stays up and one goes down with the client.
    let (olga_console, console_events) = device(&balancer.ws(), &olga_token).await;
    let (olga_phone, phone_events) = device(&balancer.ws(), &olga_token).await;
    let open = until_connections(&[&nodes[0], &nodes[1]], |open| open[0] + open[1] == 3).await;
    assert_eq!(
        (open[victim], open[1 - victim]),
        (2, 1),
        "round robin spreads the devices over both nodes"
    );
    // The whole conversation, kill and reconnects included, within one WAIT.
    let conversation_deadline = deadline();
    let console = collect_messages(console_events, conversation_deadline);
    let phone = collect_messages(phone_events, conversation_deadline);

    let mut ids = Vec::new();
    for i in 0..BEFORE_KILL {
        ids.push(ana.send("b1", &format!("before {i}")).unwrap());
    }
    let mut sent = 0;
    while sent < ACKED_BEFORE_KILL {
        if let Event::DeliveryStatus {
            status: DeliveryStatus::Sent { .. },
            ..
        } = next_event(&mut ana_events, conversation_deadline).await
        {
            sent += 1;
        }
    }
    nodes[victim].child.kill().expect("SIGKILL"); // with sends in flight
    nodes[victim].child.wait().unwrap();
    for i in 0..AFTER_KILL {
        ids.push(ana.send("b1", &format!("after {i}")).unwrap());
    }
    // The `/readyz` checks take the dead node out of the rotation.
    let victim_name = format!("node{}", victim + 1);
    balancer.until_server(&victim_name, "DOWN").await;

    for (name, collector) in [("console", console), ("phone", phone)] {
        let received = collector.await.expect("the collector finishes");
        assert_every_message_once_in_order(name, &received, &ids);
    }
    while ana.pending_count().await.unwrap() > 0 {
        next_event(&mut ana_events, conversation_deadline).await;
    }
    // Every device is now on the node that is up, having come back through the balancer.
    until_connections(&[&nodes[1 - victim]], |open| open[0] == 3).await;

    let stored = all_messages(&lb, &ana_token).await;
    assert_eq!(
        stored.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        ids,
        "storage holds each message once, in the order sent"
    );
    assert_eq!(
        stored.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (1..=MESSAGES as u64).collect::<Vec<_>>()
    );

    // The node comes back on its address: the checks put it back in the rotation, and a device
    // that lands on it gets the whole conversation from storage.
    let addr = nodes[victim].address().to_owned();
    nodes[victim] = start_node(&addr, &url, &dir.path().join(&victim_name), &[]);
    balancer.until_server(&victim_name, "UP").await;
    // Round robin over two nodes: of two connections in a row, one lands on the restarted node.
    let mut laptops = Vec::new();
    while connections_open(&nodes[victim]).await == 0 {
        assert!(laptops.len() < 2, "a new device reaches the restarted node");
        laptops.push(device(&balancer.ws(), &olga_token).await);
        until_connections(&[&nodes[0], &nodes[1]], |open| {
            open[0] + open[1] == 3 + laptops.len() as i64
        })
        .await;
    }
    let (laptop, laptop_events) = laptops.pop().unwrap();
    let received = collect_messages(laptop_events, deadline())
        .await
        .expect("the collector finishes");
    assert_every_message_once_in_order("laptop, on the restarted node,", &received, &ids);

    for client in [&ana, &olga_console, &olga_phone, &laptop] {
        client.stop().await;
    }
    for (client, _) in &laptops {
        client.stop().await;
    }
    drop(balancer);
    drop(nodes);
    server::store::postgres::drop_schema(&database, &schema)
        .await
        .unwrap();
}

/// Behind a balancer every connection a node accepts comes from the balancer's address, its
/// health checks included, so `connections_per_address_max` caps the devices of a node: a node
/// that holds that many fails its checks and HAProxy takes it out, and with every node full a
/// new device is refused. `docs/operations.md` says to raise the cap behind a balancer; this
/// shows why, with a cap of 2 (the default is 1024).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_address_cap_counts_the_balancer_as_one_client() {
    let database = testkit::postgres::shared_database();
    let (url, schema) = server::store::postgres::fresh_schema(&database, "surechat_test")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cap = [("SURECHAT_CONNECTIONS_PER_ADDRESS_MAX", "2")];
    let nodes = [
        start_node("127.0.0.1:0", &url, &dir.path().join("node1"), &cap),
        start_node("127.0.0.1:0", &url, &dir.path().join("node2"), &cap),
    ];
    let mut balancer = Balancer::start([nodes[0].address(), nodes[1].address()]).await;
    // From a node directly: through the balancer, HAProxy would keep the connection open for
    // reuse, holding one of the node's two places.
    let ana_token = token(&Http::new(&nodes[0].base), "ana", Role::Client).await;
    // Four devices fill both nodes; a connect that meets a check holding a place is closed at
    // once, and the device tries again.
    let mut devices = Vec::new();
    for _ in 0..4 {
        devices.push(device(&balancer.ws(), &ana_token).await);
    }
    // Full nodes refuse the checks' connections: HAProxy takes both out.
    balancer.until_servers(&["node1", "node2"], "DOWN").await;
    // No node has a place left: a fifth device is refused, whether HAProxy still tries a node
    // (which closes the connection at once: 502) or has none up (503).
    let refused = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(balancer.ws()))
        .await
        .expect("haproxy answers in time");
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert!(
            [502, 503].contains(&response.status().as_u16()),
            "a fifth device is refused: {}",
            response.status()
        ),
        other => panic!("a fifth device is refused with 502 or 503, not {other:?}"),
    }

    for (client, _) in &devices {
        client.stop().await;
    }
    drop(balancer);
    drop(nodes);
    server::store::postgres::drop_schema(&database, &schema)
        .await
        .unwrap();
}
