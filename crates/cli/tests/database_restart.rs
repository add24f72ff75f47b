//! Two `surechat serve` nodes on a private PostgreSQL that is restarted, stopped, cut off and
//! black-holed while SDK clients (with outboxes) send: the nodes answer `unavailable` (HTTP 503
//! problem documents, WebSocket sends refused as retryable, a `hello` closed 1012) instead of
//! hanging, `/readyz` says not ready, and once the database is back the nodes reconnect by
//! themselves — writer, readers and the LISTEN/NOTIFY listener — and every message that entered an
//! outbox is stored exactly once, in order.
//!
//! The database is a private instance ([`testkit::postgres::Postgres`]): restarting the machine's
//! shared PostgreSQL would break the tests that use it in parallel.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use client::{Client, ClientOptions, Config, Event};
use faultproxy::FaultProxy;
use protocol::{frames, Role};
use serde_json::json;
use testkit::postgres::Postgres;
use testkit::{Http, Served};
use tokio::sync::watch;

const ADMIN: &str = "database-restart-admin-key-0123";
const SECRET: &str = "database-restart-jwt-secret-0123456789abcdef";

/// The longest any one HTTP answer may take while the database is away: the server must say
/// `unavailable`, not hang. A read gives up after 5 s, a batch of writes after 5 s plus a 2 s
/// connect attempt (`server::store::postgres`), plus slack for a loaded machine.
const ANSWER_MS_MAX: u64 = 8_000;
/// The longest the nodes may take to be ready again once the database is back.
const RECOVERY_MS_MAX: u64 = 20_000;
/// How long a bounded wait for a distributed condition may take before the test fails.
const CONVERGE_MS_MAX: u64 = 45_000;
/// Sweeps every minute: a device on one node gets another node's message within seconds only
/// through a notice (LISTEN/NOTIFY), so a listener that did not come back fails the test.
const SWEEP_INTERVAL_MS: &str = "60000";

/// A `surechat serve` process, killed on drop.
type Node = Served;

fn start_node(database: &str, data: &std::path::Path) -> Node {
    Served::spawn(
        Command::new(env!("CARGO_BIN_EXE_surechat"))
            .args(["serve", "--listen", "127.0.0.1:0", "--database", database])
            .arg("--data")
            .arg(data)
            .env("SURECHAT_OPERATORS_AUTO_REGISTER", "true")
            .env("SURECHAT_ADMIN_KEY", ADMIN)
            .env("SURECHAT_JWT_SECRET", SECRET)
            .env("SURECHAT_SWEEP_INTERVAL_MS", SWEEP_INTERVAL_MS)
            .env("SURECHAT_SENDS_PER_SECOND_MAX", "1000")
            .env("SURECHAT_SENDS_BURST_MAX", "1000")
            // Storage errors are the point here; logging each one would bury the rest.
            .env("RUST_LOG", "warn,server::store=off")
            .stderr(Stdio::inherit()),
    )
}

/// One user's SDK instance with its own local store (outbox), sending on its own task.
struct Sdk {
    user: String,
    client: Client,
    /// Ids that entered the outbox, in order.
    sent: Arc<Mutex<Vec<String>>>,
    /// Ids of other users' messages this device received, in order.
    received: watch::Receiver<Vec<String>>,
    sending: Option<(
        Arc<std::sync::atomic::AtomicBool>,
        tokio::task::JoinHandle<()>,
    )>,
}

impl Sdk {
    fn start(node: &Node, user: &str, token: &str, store: std::path::PathBuf) -> Sdk {
        let mut options = ClientOptions::new(node.ws(), token);
        options.store = Some(store);
        options.config = Config {
            backoff_first_ms: 50,
            backoff_base_ms: 100,
            backoff_cap_ms: 500,
            ..Config::default()
        };
        let (client, mut events) = Client::start(options).unwrap();
        let (seen, received) = watch::channel(Vec::new());
        let me = user.to_owned();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if let Event::Message(m) = event {
                    if m.sender != me {
                        seen.send_modify(|ids| ids.push(m.id));
                    }
                }
            }
        });
        Sdk {
            user: user.to_owned(),
            client,
            sent: Arc::default(),
            received,
            sending: None,
        }
    }

    /// Sends one message every `every` until [`Sdk::stop_sending`].
    fn keep_sending(&mut self, every: Duration) {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (client, sent, user, stopping) = (
            self.client.clone(),
            self.sent.clone(),
            self.user.clone(),
            stop.clone(),
        );
        let task = tokio::spawn(async move {
            let mut n = 0;
            while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                {
                    // Held across the send, so `sent` has the outbox's order.
                    let mut sent = sent.lock().unwrap();
                    let id = client
                        .send("b1", &format!("{user} #{n}"))
                        .expect("the outbox takes it");
                    sent.push(id);
                }
                // Pacing, not synchronisation.
                tokio::time::sleep(every).await;
            }
        });
        self.sending = Some((stop, task));
    }

    async fn stop_sending(&mut self) {
        if let Some((stop, task)) = self.sending.take() {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            task.await.unwrap();
        }
    }

    fn send_one(&self, body: &str) -> String {
        let mut sent = self.sent.lock().unwrap();
        let id = self.client.send("b1", body).unwrap();
        sent.push(id.clone());
        id
    }

    fn sent(&self) -> Vec<String> {
        self.sent.lock().unwrap().clone()
    }

    /// Waits until this device received `id`; returns how long that took.
    async fn wait_received(&mut self, id: &str, within: Duration) -> Result<Duration, String> {
        let started = Instant::now();
        tokio::time::timeout(
            within,
            self.received.wait_for(|ids| ids.iter().any(|i| i == id)),
        )
        .await
        .map_err(|_| format!("{} did not receive {id} within {within:?}", self.user))?
        .unwrap();
        Ok(started.elapsed())
    }
}

/// Two nodes, two devices (ana, a client, on node one; olga, an operator, on node two) in the
/// conversation `b1`.
struct Cluster {
    nodes: Vec<Node>,
    sdks: Vec<Sdk>,
    ana_token: String,
    _dir: tempfile::TempDir,
}

async fn cluster(database: &str) -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let nodes = vec![
        start_node(database, &dir.path().join("one")),
        start_node(database, &dir.path().join("two")),
    ];
    let created = nodes[0]
        .http()
        .json(
            "POST",
            "/v1/conversations",
            Some(ADMIN),
            &json!({"id": "b1", "participants": [
                {"user_id": "ana", "role": "client"},
                {"user_id": "olga", "role": "operator"}]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let ana_token = token(&nodes[0].http(), "ana", Role::Client).await;
    let olga_token = token(&nodes[1].http(), "olga", Role::Operator).await;
    let sdks = vec![
        Sdk::start(&nodes[0], "ana", &ana_token, dir.path().join("ana.db")),
        Sdk::start(&nodes[1], "olga", &olga_token, dir.path().join("olga.db")),
    ];
    Cluster {
        nodes,
        sdks,
        ana_token,
        _dir: dir,
    }
}

async fn token(http: &Http, user: &str, role: Role) -> String {
    http.token(ADMIN, user, role).await
}

/// A request that must be answered within [`ANSWER_MS_MAX`]; returns the answer and its time.
async fn answered(
    what: &str,
    request: impl std::future::Future<Output = testkit::HttpResponse>,
) -> (testkit::HttpResponse, Duration) {
    let started = Instant::now();
    let response = tokio::time::timeout(Duration::from_millis(ANSWER_MS_MAX), request)
        .await
        .unwrap_or_else(|_| panic!("{what} was not answered within {ANSWER_MS_MAX} ms"));
    let took = started.elapsed();
    if took > Duration::from_secs(1) {
        eprintln!("{what} answered {} after {took:?}", response.status);
    }
    (response, took)
}

/// The value of one series of a node's `/metrics` (0 when absent).
async fn metric(node: &Node, series: &str) -> f64 {
    let (response, _) = answered("/metrics", node.http().get("/metrics", None)).await;
    assert_eq!(response.status, 200);
    response
        .body
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Error frames `unavailable` on WebSockets: a send refused (it stays in the outbox and goes
/// again), or a `hello` or a catch-up read that found no storage (then the node closes with 1012
/// and the device reconnects with backoff).
const UNAVAILABLE_WS: &str = "surechat_refusals_total{code=\"unavailable\",via=\"ws\"}";
const HEARD: &str = "surechat_cluster_notices_total{direction=\"heard\"}";

/// The database is away: every node says so, quickly — `/readyz` 503, an HTTP send 503, both as
/// `unavailable` problem documents, a `hello` answered `unavailable` and closed 1012 — and the
/// devices are told `unavailable` on their WebSockets
/// (sends refused as retryable, or the connection closed with 1012 while storage is away), their
/// messages waiting in the outboxes. Returns the slowest answer.
async fn assert_outage(cluster: &Cluster, unavailable_before: &[f64]) -> Duration {
    let mut slowest = Duration::ZERO;
    let deadline = Instant::now() + Duration::from_millis(CONVERGE_MS_MAX);
    for (index, node) in cluster.nodes.iter().enumerate() {
        let http = node.http();
        // The first probe may still find a connection that has not noticed yet.
        let not_ready = loop {
            let (response, took) = answered("/readyz", http.get("/readyz", None)).await;
            slowest = slowest.max(took);
            if response.status != 200 {
                break response;
            }
            assert!(Instant::now() < deadline, "node {index} stayed ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(not_ready.status, 503, "{}", not_ready.body);
        assert_eq!(not_ready.problem_code(), "unavailable");
        let (refused, took) = answered(
            "an HTTP send",
            http.json(
                "POST",
                "/v1/conversations/b1/messages",
                Some(&cluster.ana_token),
                &json!({"id": testkit::uuid(), "body": "while the database is away"}),
            ),
        )
        .await;
        slowest = slowest.max(took);
        assert_eq!(refused.status, 503, "{}", refused.body);
        assert_eq!(refused.problem_code(), "unavailable");
        let took = assert_hello_refused(node, &cluster.ana_token).await;
        slowest = slowest.max(took);
        // The device on this node keeps sending: it is told `unavailable`.
        while metric(node, UNAVAILABLE_WS).await <= unavailable_before[index] {
            assert!(
                Instant::now() < deadline,
                "node {index} told no device `unavailable`"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    for sdk in &cluster.sdks {
        assert!(
            sdk.client.pending_count().await.unwrap() > 0,
            "{}'s outbox holds what the node could not store",
            sdk.user
        );
    }
    slowest
}

/// A device that says `hello` while storage is away is told `unavailable` and closed with 1012
/// (it reconnects with backoff), within [`ANSWER_MS_MAX`]. Returns how long that took.
async fn assert_hello_refused(node: &Node, token: &str) -> Duration {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message as WsMessage;
    let started = Instant::now();
    let mut ws = testkit::connect_raw(&node.ws()).await;
    let hello = frames::ClientFrame::Hello(frames::Hello {
        v: protocol::PROTOCOL_VERSION,
        token: token.to_owned(),
        cursors: vec![],
        offline_ms: None,
        pending: None,
    });
    ws.send(WsMessage::text(hello.encode())).await.unwrap();
    let mut codes = Vec::new();
    let closed = loop {
        let next = tokio::time::timeout(Duration::from_millis(ANSWER_MS_MAX), ws.next())
            .await
            .unwrap_or_else(|_| panic!("hello was not answered within {ANSWER_MS_MAX} ms"));
        match next {
            Some(Ok(WsMessage::Text(text))) => {
                match frames::decode_server_frame(text.as_str()).unwrap() {
                    frames::ServerFrame::Error(error) => codes.push(error.code),
                    other => panic!("hello while storage is away answered {other:?}"),
                }
            }
            Some(Ok(WsMessage::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break None,
        }
    };
    assert_eq!(codes, [protocol::ErrorCode::Unavailable]);
    assert_eq!(closed, Some(protocol::close::SERVICE_RESTART));
    started.elapsed()
}

/// Waits until every node answers `/readyz` 200; returns how long that took.
async fn wait_ready(cluster: &Cluster) -> Duration {
    let started = Instant::now();
    for (index, node) in cluster.nodes.iter().enumerate() {
        loop {
            let (response, _) = answered("/readyz", node.http().get("/readyz", None)).await;
            if response.status == 200 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_millis(RECOVERY_MS_MAX),
                "node {index} not ready {RECOVERY_MS_MAX} ms after the database came back: {}",
                response.body
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    started.elapsed()
}

/// Notices flow both ways again: a message sent on one node is heard by the other node's
/// listener (its `heard` counter grows) and reaches the device there within seconds — sweeps run
/// once a minute, so only a notice can bring it that fast. The listener may come back a little
/// after the writer, so a marker goes out every 500 ms until one is heard. Returns how long the
/// slower direction took to be heard.
async fn assert_notices_flow(cluster: &mut Cluster, round: &str) -> Duration {
    let mut slowest = Duration::ZERO;
    for (from, to) in [(0, 1), (1, 0)] {
        let started = Instant::now();
        let heard_before = metric(&cluster.nodes[to], HEARD).await;
        let mut markers = Vec::new();
        loop {
            markers.push(cluster.sdks[from].send_one(&format!("{round} marker {}", markers.len())));
            let tried = Instant::now();
            while tried.elapsed() < Duration::from_millis(500) {
                if metric(&cluster.nodes[to], HEARD).await > heard_before {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if metric(&cluster.nodes[to], HEARD).await > heard_before {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_millis(RECOVERY_MS_MAX),
                "{round}: node {to} heard no notice from node {from} within {RECOVERY_MS_MAX} ms"
            );
        }
        slowest = slowest.max(started.elapsed());
        let last = markers.last().unwrap().clone();
        let took = cluster.sdks[to]
            .wait_received(&last, Duration::from_secs(10))
            .await
            .unwrap_or_else(|why| panic!("{round}: {why} (sweeps are a minute apart)"));
        eprintln!(
            "{round}: node {to} hears node {from} again; device got the marker {took:?} after"
        );
    }
    slowest
}

/// Every message that entered an outbox is stored exactly once, in each sender's order, with
/// `seq` 1, 2, 3, … and nothing else; both devices converge on all of it.
async fn assert_stored_once_in_order(cluster: &mut Cluster) {
    for sdk in &mut cluster.sdks {
        sdk.stop_sending().await;
    }
    let deadline = Instant::now() + Duration::from_millis(CONVERGE_MS_MAX);
    for sdk in &cluster.sdks {
        loop {
            let pending = sdk.client.pending_count().await.unwrap();
            if pending == 0 {
                break;
            }
            if Instant::now() > deadline {
                panic!(
                    "{}'s outbox still holds {pending}: {}",
                    sdk.user,
                    sdk.client.describe().await.unwrap()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let mut stored: Vec<frames::Message> = Vec::new();
    let http = cluster.nodes[1].http();
    loop {
        let after = stored.last().map_or(0, |m| m.seq);
        let (page, _) = answered(
            "reading messages",
            http.get(
                &format!("/v1/conversations/b1/messages?after={after}&limit=1000"),
                Some(&cluster.ana_token),
            ),
        )
        .await;
        assert_eq!(page.status, 200, "{}", page.body);
        let messages: Vec<frames::Message> =
            serde_json::from_value(page.json()["messages"].clone()).unwrap();
        if messages.is_empty() {
            break;
        }
        stored.extend(messages);
    }
    assert_eq!(
        stored.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (1..=stored.len() as u64).collect::<Vec<_>>(),
        "seq is gap-free"
    );
    let mut total = 0;
    for sdk in &cluster.sdks {
        let sent = sdk.sent();
        total += sent.len();
        let mine: Vec<&String> = stored
            .iter()
            .filter(|m| m.sender == sdk.user)
            .map(|m| &m.id)
            .collect();
        assert_eq!(
            mine,
            sent.iter().collect::<Vec<_>>(),
            "{}: every message of the outbox stored once, in the order sent",
            sdk.user
        );
    }
    assert_eq!(stored.len(), total, "nothing stored that no outbox held");
    // Each device ends up holding the other's messages, once each, in order.
    for (me, other) in [(0, 1), (1, 0)] {
        let expected = cluster.sdks[other].sent();
        let wait = Duration::from_millis(CONVERGE_MS_MAX);
        let received = &mut cluster.sdks[me].received;
        tokio::time::timeout(wait, received.wait_for(|ids| ids.len() >= expected.len()))
            .await
            .unwrap_or_else(|_| panic!("device {me} did not get every message"))
            .unwrap();
        assert_eq!(
            *received.borrow(),
            expected,
            "device {me} holds each once, in order"
        );
    }
    eprintln!("stored {} messages once each, in order", stored.len());
}

async fn unavailable_ws(cluster: &Cluster) -> Vec<f64> {
    let mut counts = Vec::new();
    for node in &cluster.nodes {
        counts.push(metric(node, UNAVAILABLE_WS).await);
    }
    counts
}

/// Waits until both devices have had some messages stored (the cluster works before a fault).
async fn warm_up(cluster: &Cluster) {
    let deadline = Instant::now() + Duration::from_millis(CONVERGE_MS_MAX);
    for sdk in &cluster.sdks {
        while sdk.sent().len() < 10 || sdk.client.pending_count().await.unwrap() > 5 {
            assert!(Instant::now() < deadline, "{} never got going", sdk.user);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// `pg_ctl restart -m fast` three times while both devices send, then a stop held until every
/// node has refused, and a start: nothing hangs, the nodes come back by themselves, nothing is
/// lost or doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_restarts_while_devices_send() {
    let pg = tokio::task::spawn_blocking(Postgres::start)
        .await
        .unwrap()
        .expect("a private PostgreSQL");
    let mut cluster = cluster(&pg.url()).await;
    for sdk in &mut cluster.sdks {
        sdk.keep_sending(Duration::from_millis(30));
    }
    warm_up(&cluster).await;

    // Quick restarts: every connection is terminated, the server is back within a second.
    for round in 0..3 {
        let restarted = Instant::now();
        pg.restart().expect("pg_ctl restart");
        wait_ready(&cluster).await;
        eprintln!(
            "restart {round}: ready {:?} after pg_ctl restart began",
            restarted.elapsed()
        );
        let heard = assert_notices_flow(&mut cluster, &format!("after restart {round}")).await;
        eprintln!("restart {round}: notices heard again within {heard:?}");
    }

    // A stop held until every node has said `unavailable`, then a start.
    let before = unavailable_ws(&cluster).await;
    pg.stop().expect("pg_ctl stop");
    let slowest = assert_outage(&cluster, &before).await;
    eprintln!("stopped: slowest answer {slowest:?}");
    let started = Instant::now();
    pg.start_again().expect("pg_ctl start");
    let ready = wait_ready(&cluster).await;
    eprintln!(
        "stopped: ready {ready:?} after the database accepted connections again ({:?} after pg_ctl start began)",
        started.elapsed()
    );
    let heard = assert_notices_flow(&mut cluster, "after the stop").await;
    eprintln!("stopped: notices heard again within {heard:?}");

    assert_stored_once_in_order(&mut cluster).await;
    for sdk in &cluster.sdks {
        sdk.client.stop().await;
    }
}

/// The nodes reach PostgreSQL through a fault proxy. First the database becomes unreachable
/// (connections cut, new ones refused), then it goes silent (every connection, old and new, a
/// black hole: no FIN, no answer — a partition). Each time the nodes answer `unavailable` within
/// bounds, and after healing they replace the dead connections themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_unreachable_while_devices_send() {
    let pg = tokio::task::spawn_blocking(Postgres::start)
        .await
        .unwrap()
        .expect("a private PostgreSQL");
    let proxy = FaultProxy::start(
        "127.0.0.1:0".parse().unwrap(),
        ([127, 0, 0, 1], pg.port()).into(),
    )
    .await
    .unwrap();
    let url = format!(
        "postgres://{}@{}/postgres",
        testkit::postgres::SUPERUSER,
        proxy.local_addr()
    );
    let mut cluster = cluster(&url).await;
    for sdk in &mut cluster.sdks {
        sdk.keep_sending(Duration::from_millis(30));
    }
    warm_up(&cluster).await;

    // Unreachable: every connection cut, new ones reset at once.
    let before = unavailable_ws(&cluster).await;
    proxy.refuse(true);
    proxy.drop_all();
    let slowest = assert_outage(&cluster, &before).await;
    eprintln!("refused: slowest answer {slowest:?}");
    proxy.heal();
    let ready = wait_ready(&cluster).await;
    eprintln!("refused: ready {ready:?} after healing");
    let heard = assert_notices_flow(&mut cluster, "after refusing").await;
    eprintln!("refused: notices heard again within {heard:?}");

    // Silent: every connection a black hole, the old ones for good.
    let before = unavailable_ws(&cluster).await;
    proxy.stall(true);
    let slowest = assert_outage(&cluster, &before).await;
    eprintln!("stalled: slowest answer {slowest:?}");
    proxy.heal();
    let ready = wait_ready(&cluster).await;
    eprintln!("stalled: ready {ready:?} after healing");
    let heard = assert_notices_flow(&mut cluster, "after stalling").await;
    eprintln!("stalled: notices heard again within {heard:?}");

    assert_stored_once_in_order(&mut cluster).await;
    for sdk in &cluster.sdks {
        sdk.client.stop().await;
    }
    drop(cluster);
    proxy.shutdown().await;
    drop(pg);
}
