//! `surechat chaos`: a server on a temporary data directory, client/operator pairs each with its
//! own SDK instance and local store, sending at random through fault proxies while faults are
//! injected at random (seeded); then the faults stop, the run waits for convergence, and a
//! checker verifies the delivery contract against storage. Exits non-zero on any violation.
//!
//! About one message in eight carries one or two small PDFs ([`files`]), uploaded through the
//! same proxies and faults; the checker holds every attachment's stored hash to what was sent
//! and downloads the bytes through the receiving device.
//!
//! With `--refusals` the server also *refuses* sends: a low seeded rate limit (`rate_limited`)
//! and storage that refuses writes (`unavailable`), on top of the faults every run has (bad-frame
//! bursts on a device's own connection, server SIGKILL and SIGTERM, network faults).
//!
//! With `--private-database` the run starts its own PostgreSQL ([`testkit::postgres`]), and
//! `--database-restarts` puts restarts of it among the faults: the whole database goes away under
//! every node at once, and the nodes must come back by themselves.

mod check;
mod files;
mod node;
mod schedule;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use client::{Client, ClientOptions, Config, Event};
use faultproxy::FaultProxy;
use protocol::Role;

use node::{Node, Storage};
use schedule::{Fault, Rng};

/// Admin key and JWT secret of the chaos server (it lives only for the run).
const ADMIN_KEY: &str = "chaos-admin-key-0123456789";
const JWT_SECRET: &str = "chaos-jwt-secret-0123456789abcdef0123";

/// `surechat chaos` options.
#[derive(Args, Clone)]
pub struct ChaosArgs {
    /// How long to send and inject faults, in seconds.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Client/operator pairs (one conversation each).
    #[arg(long, default_value_t = 4)]
    pairs: usize,
    /// Seed of the fault schedule and the send timing; random if absent (always printed).
    #[arg(long)]
    seed: Option<u64>,
    /// How long convergence may take after the faults stop, in seconds.
    #[arg(long, default_value_t = 120)]
    converge_timeout: u64,
    /// Keep the temporary directory (data, local stores) and the PostgreSQL schema after the run.
    #[arg(long)]
    keep: bool,
    /// Run the nodes on PostgreSQL (a fresh schema in this database) instead of SQLite.
    #[arg(long)]
    database: Option<String>,
    /// Server nodes (more than one needs --database); node kills then move devices to another node.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// Make the server refuse sends too: the nodes run with a low send rate limit drawn from the
    /// seed (3-6 a second, burst up to 3 more; devices send about 4.4 a second, more after a
    /// reconnect), and about one fault in four makes storage refuse writes for 0.3-2.5 s, so
    /// sends in flight fail `unavailable` — on SQLite this process holds the database's write
    /// lock (the nodes' busy timeout is 100 ms); on PostgreSQL it terminates the node's
    /// connections every 50 ms. Devices must resend in order and the checker must still find
    /// FIFO per sender.
    #[arg(long)]
    refusals: bool,
    /// Run the nodes on a PostgreSQL of the run's own (initdb in a temporary directory, on a free
    /// port, with Debian's binaries or those in SURECHAT_POSTGRES_BIN; as root they run as the
    /// `postgres` user), stopped and removed at the end. Instead of --database.
    #[arg(long, conflicts_with = "database")]
    private_database: bool,
    /// Put restarts of the database among the faults (about one in four): it is stopped with
    /// `pg_ctl stop -m fast` (every node's connections terminated), kept down for 0-2 s and
    /// started again; sends meanwhile are refused `unavailable` and devices resend. Needs
    /// --private-database: restarting a shared database would break everyone else's work.
    #[arg(long, requires = "private_database")]
    database_restarts: bool,
}

/// A message that entered an outbox: what the checker holds the system to.
#[derive(Debug, Clone)]
pub struct Sent {
    id: String,
    conversation: String,
    sender: String,
    /// The sender's own counter: FIFO means stored in increasing `n`.
    n: u64,
    /// The files it carries, in order.
    files: Vec<files::SentFile>,
}

/// One device: a user's SDK instance with its own local store, behind its own proxy.
struct Device {
    user: String,
    conversation: String,
    token: String,
    store: PathBuf,
    proxy: FaultProxy,
    client: tokio::sync::Mutex<Client>,
}

impl Device {
    fn start_client(&self) -> anyhow::Result<Client> {
        start_client(&self.proxy, &self.token, &self.store, &self.conversation)
    }
}

/// Starts an SDK instance on `store`, through `proxy`, with a short backoff cap so the run
/// converges quickly once faults stop.
fn start_client(
    proxy: &FaultProxy,
    token: &str,
    store: &std::path::Path,
    conversation: &str,
) -> anyhow::Result<Client> {
    let mut options = ClientOptions::new(format!("ws://{}/v1/ws", proxy.local_addr()), token);
    options.store = Some(store.to_owned());
    options.config = Config {
        backoff_first_ms: 100,
        backoff_base_ms: 200,
        backoff_cap_ms: 2_000,
        connect_timeout_ms: 3_000,
        ..Config::default()
    };
    // Small chunks, so that even small files take several requests and meet the faults; a
    // short idle timeout, so a stalled upload is given up as fast as a stalled WebSocket.
    options.upload_chunk_bytes = 16 * 1024;
    options.http_idle_timeout_ms = 3_000;
    let (client, events) = Client::start(options)?;
    tokio::spawn(read_events(client.clone(), conversation.to_owned(), events));
    Ok(client)
}

/// Reads a client's events; marks the conversation read as messages arrive (a user looking at
/// the chat), so statuses can converge to `read`.
async fn read_events(
    client: Client,
    conversation: String,
    mut events: tokio::sync::mpsc::Receiver<Event>,
) {
    while let Some(event) = events.recv().await {
        if let Event::Message(m) = event {
            if m.status.is_none() {
                let _ = client.mark_read(&conversation);
            }
        }
    }
}

/// A node went down: the load balancer sends its devices to a live node, where they resume; the
/// node comes back after `down_ms`.
async fn node_down(
    devices: &[Arc<Device>],
    nodes: &mut [Node],
    node: usize,
    down_ms: u64,
) -> anyhow::Result<()> {
    if nodes.len() > 1 {
        let other = nodes[(node + 1) % nodes.len()].address();
        for device in devices
            .iter()
            .filter(|d| d.proxy.upstream() == nodes[node].address())
        {
            device.proxy.set_upstream(other);
            device.proxy.drop_all();
        }
    }
    tokio::time::sleep(Duration::from_millis(down_ms)).await;
    nodes[node].ensure_running().await
}

/// `count` frames the server must answer with an error (and, past its allowance of
/// `BAD_FRAMES_BURST_MAX`, a 4429 close), and never store: undecodable, unknown, incomplete,
/// invalid sends to the device's own conversation, a receipt for a conversation that does not
/// exist, a second `hello`. The ids are fresh UUIDs no outbox holds: if one were ever stored,
/// the checker would report a message that never entered an outbox.
fn bad_frames(conversation: &str, count: u64, salt: u64) -> Vec<String> {
    (0..count)
        .map(|i| {
            let id = uuid::Uuid::from_u64_pair(0xbad0_f4a3_e000_0000 ^ salt, i).to_string();
            match i % 7 {
                0 => "this is not json".to_owned(),
                1 => r#"{"type":"nonsense"}"#.to_owned(),
                2 => r#"{"type":"send"}"#.to_owned(),
                3 => format!(
                    r#"{{"type":"send","id":"not-a-uuid","conversation":"{conversation}","body":"x"}}"#
                ),
                4 => format!(
                    r#"{{"type":"send","id":"{id}","conversation":"{conversation}","body":""}}"#
                ),
                5 => r#"{"type":"receipt","conversation":"no-such-conversation","delivered":1,"read":1}"#
                    .to_owned(),
                _ => r#"{"type":"hello","v":1,"token":"x","cursors":[]}"#.to_owned(),
            }
        })
        .collect()
}

/// Runs `surechat chaos`.
pub fn run(args: ChaosArgs) -> anyhow::Result<()> {
    crate::serve::runtime()?.block_on(chaos(args))
}

async fn chaos(args: ChaosArgs) -> anyhow::Result<()> {
    let seed = args.seed.unwrap_or_else(|| {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).expect("OS randomness");
        u64::from_le_bytes(bytes) % 1_000_000
    });
    let duration = Duration::from_secs(args.duration);
    // The run's own PostgreSQL, if asked for: dropped (stopped and removed) at the end.
    let private = if args.private_database {
        let started = tokio::task::spawn_blocking(testkit::postgres::Postgres::start)
            .await?
            .map_err(|e| anyhow::anyhow!("starting a private PostgreSQL: {e}"))?;
        Some(Arc::new(started))
    } else {
        None
    };
    let mut args = args;
    if let Some(pg) = &private {
        args.database = Some(pg.url());
    }
    let on = if args.database.is_some() {
        format!("{} node(s) on PostgreSQL", args.nodes)
    } else {
        "1 node on SQLite".into()
    };
    let mut flags = String::new();
    if args.refusals {
        flags.push_str(" --refusals");
    }
    if args.private_database {
        flags.push_str(" --private-database");
    }
    if args.database_restarts {
        flags.push_str(" --database-restarts");
    }
    println!(
        "surechat chaos: seed {seed}, {} pairs, {on}, {} s of faults{flags} (rerun with --seed {seed}{flags})",
        args.pairs, args.duration
    );
    let settings = node::Settings {
        admin_key: ADMIN_KEY.into(),
        jwt_secret: JWT_SECRET.into(),
        rate_limit: if args.refusals {
            schedule::rate_limit(seed)
        } else {
            (1000, 2000)
        },
        busy_timeout_ms: if args.refusals {
            node::REFUSAL_BUSY_TIMEOUT_MS
        } else {
            5_000
        },
        // Storage refusals are the point of --refusals, and outages of --database-restarts:
        // their errors would only bury the rest.
        log: if args.refusals || args.database_restarts {
            "error,server::store=off"
        } else {
            "error"
        },
    };
    if args.refusals {
        println!(
            "refusals: sends_per_second_max {}, sends_burst_max {}, storage refusals in the fault mix",
            settings.rate_limit.0, settings.rate_limit.1
        );
    }
    let dir = tempfile::Builder::new()
        .prefix("surechat-chaos-")
        .tempdir()?;
    if args.nodes == 0 || (args.nodes > 1 && args.database.is_none()) {
        anyhow::bail!("--nodes must be 1, or more with --database (nodes share PostgreSQL)");
    }
    let schema = match &args.database {
        Some(url) => Some(server::store::postgres::fresh_schema(url, "surechat_chaos").await?),
        None => None,
    };
    let storage = match &schema {
        Some((url, name)) => Storage::Postgres {
            url: url.clone(),
            schema: name.clone(),
        },
        None => Storage::Sqlite(dir.path().join("server")),
    };
    node::seed_conversations(&storage, args.pairs).await?;
    let mut nodes = Vec::new();
    for n in 0..args.nodes {
        // On SQLite the one node owns the seeded directory; on PostgreSQL each node gets its own
        // (it only holds files such as generated secrets, unused here).
        let data = match &storage {
            Storage::Sqlite(data) => data.clone(),
            Storage::Postgres { .. } => dir.path().join(format!("node-{n}")),
        };
        nodes.push(Node::start(n, &storage, &data, &settings).await?);
    }
    let auth = server::auth::Auth::new(JWT_SECRET, ADMIN_KEY);
    let mut devices = Vec::new();
    for pair in 0..args.pairs {
        for (user, role) in [
            (format!("client-{pair}"), Role::Client),
            (format!("operator-{pair}"), Role::Operator),
        ] {
            // Each device reaches "its" node through its proxy, which plays the load balancer.
            let proxy = FaultProxy::start(
                "127.0.0.1:0".parse()?,
                nodes[devices.len() % nodes.len()].address(),
            )
            .await?;
            proxy.set_seed(seed ^ devices.len() as u64);
            let token = auth.mint(&user, role, server::now_s(), 24 * 3600);
            let store = dir.path().join(format!("{user}.db"));
            let conversation = format!("chaos-{pair}");
            let client =
                tokio::sync::Mutex::new(start_client(&proxy, &token, &store, &conversation)?);
            devices.push(Arc::new(Device {
                user,
                conversation,
                token,
                store,
                proxy,
                client,
            }));
        }
    }

    // Senders: each device sends at random intervals until the faults stop.
    let sent: Arc<Mutex<Vec<Sent>>> = Arc::default();
    let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut senders = Vec::new();
    for (index, device) in devices.iter().enumerate() {
        let (device, sent, stopping) = (device.clone(), sent.clone(), stopping.clone());
        let mut rng = Rng::new(seed.wrapping_add(1 + index as u64));
        senders.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(rng.range(50, 400))).await;
                n += 1;
                let body = format!("{} #{n}", device.user);
                let outgoing = files::files_for(seed, index, n);
                let described = files::described(&outgoing);
                let client = device.client.lock().await;
                let id = if outgoing.is_empty() {
                    client.send(&device.conversation, &body)?
                } else {
                    client.send_with_files(&device.conversation, &body, outgoing)?
                };
                drop(client);
                sent.lock().unwrap().push(Sent {
                    id,
                    conversation: device.conversation.clone(),
                    sender: device.user.clone(),
                    n,
                    files: described,
                });
            }
            anyhow::Ok(())
        }));
    }

    // Faults, on schedule.
    let started = Instant::now();
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mix = schedule::Mix {
        refusals: args.refusals,
        database_restarts: args.database_restarts,
    };
    let faults = schedule::schedule(seed, duration, devices.len(), nodes.len(), mix);
    for (at, fault) in faults {
        tokio::time::sleep_until((started + at).into()).await;
        *counts.entry(fault.kind()).or_default() += 1;
        inject(&fault, &devices, &mut nodes, &storage, private.as_ref()).await?;
    }
    tokio::time::sleep_until((started + duration).into()).await;
    stopping.store(true, std::sync::atomic::Ordering::Relaxed);
    for sender in senders {
        sender.await.context("a sender task")??;
    }

    // Heal everything and wait for convergence.
    for device in &devices {
        device.proxy.heal();
    }
    for node in &mut nodes {
        node.ensure_running().await?;
    }
    let healed = Instant::now();
    let converged =
        check::wait_for_convergence(&devices, Duration::from_secs(args.converge_timeout)).await;
    let convergence = healed.elapsed();
    if converged.is_err() {
        // What each device was doing when the wait ran out: the first thing to read when a
        // seed does not converge.
        for device in &devices {
            let client = device.client.lock().await.clone();
            match client.describe().await {
                Ok(state) => println!("{}: {state}", device.user),
                Err(err) => println!("{}: {err}", device.user),
            }
        }
    }
    let sent = sent.lock().unwrap().clone();
    // Downloads need the nodes: before they stop.
    let download_violations = check::verify_downloads(&devices, &sent).await;
    for node in &mut nodes {
        node.stop().await?;
    }
    let store = storage.open().await?;
    let mut violations = check::verify(&*store, &devices, &sent, args.pairs).await?;
    violations.extend(download_violations);
    drop(store);
    if let (Some(url), Some((_, name))) = (&args.database, &schema) {
        if !args.keep {
            server::store::postgres::drop_schema(url, name).await?;
        }
    }
    for device in &devices {
        device.client.lock().await.stop().await;
    }

    println!(
        "messages that entered an outbox: {} ({} with files, {} files)",
        sent.len(),
        sent.iter().filter(|s| !s.files.is_empty()).count(),
        sent.iter().map(|s| s.files.len()).sum::<usize>()
    );
    let faults: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!(
        "faults injected: {}",
        if faults.is_empty() {
            "none".into()
        } else {
            faults.join(", ")
        }
    );
    match &converged {
        Ok(()) => println!(
            "converged {:.1} s after the faults stopped",
            convergence.as_secs_f64()
        ),
        Err(why) => println!("did NOT converge within {} s: {why}", args.converge_timeout),
    }
    if args.keep {
        println!("kept {}", dir.keep().display());
    }
    if violations.is_empty() && converged.is_ok() {
        println!("checker: OK — every message stored once, every device holds every message once in seq order, FIFO per sender, statuses converged, every attachment stored and downloaded with the hash sent");
        Ok(())
    } else {
        for violation in &violations {
            println!("VIOLATION: {violation}");
        }
        anyhow::bail!(
            "{} violation(s) (seed {seed})",
            violations.len() + usize::from(converged.is_err())
        )
    }
}

async fn inject(
    fault: &Fault,
    devices: &[Arc<Device>],
    nodes: &mut [Node],
    storage: &Storage,
    database: Option<&Arc<testkit::postgres::Postgres>>,
) -> anyhow::Result<()> {
    match fault.clone() {
        Fault::Drop { device } => devices[device].proxy.drop_all(),
        Fault::Stall { device, for_ms } => {
            let proxy = devices[device].proxy.clone();
            proxy.stall(true);
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(for_ms)).await;
                proxy.stall(false);
            });
        }
        Fault::Latency {
            device,
            ms,
            jitter_ms,
            for_ms,
        } => {
            let proxy = devices[device].proxy.clone();
            proxy.set_latency(Duration::from_millis(ms), Duration::from_millis(jitter_ms));
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(for_ms)).await;
                proxy.set_latency(Duration::ZERO, Duration::ZERO);
            });
        }
        Fault::Throttle {
            device,
            bytes_per_s,
            for_ms,
        } => {
            let proxy = devices[device].proxy.clone();
            proxy.set_bandwidth(Some(bytes_per_s));
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(for_ms)).await;
                proxy.set_bandwidth(None);
            });
        }
        Fault::KillServer { node, down_ms } => {
            nodes[node].kill().await?;
            node_down(devices, nodes, node, down_ms).await?;
        }
        Fault::StopServer { node, down_ms } => {
            nodes[node].stop().await?;
            node_down(devices, nodes, node, down_ms).await?;
        }
        Fault::BadFrames { device, count } => {
            let conversation = &devices[device].conversation;
            devices[device].proxy.inject_text_frames(bad_frames(
                conversation,
                count,
                device as u64,
            ));
        }
        Fault::Storage { node, for_ms } => {
            // A fault that cannot be set up (the lock not taken in time) is reported, not fatal:
            // the run goes on and the checker still judges it.
            if let Err(err) = node::refuse_storage(storage, node, for_ms).await {
                eprintln!("chaos: storage refusal not injected: {err:#}");
            }
        }
        Fault::RestartDatabase { down_ms } => {
            let database = database
                .context("a database restart needs --private-database")?
                .clone();
            let pg = database.clone();
            tokio::task::spawn_blocking(move || pg.stop())
                .await?
                .map_err(|e| anyhow::anyhow!("stopping PostgreSQL: {e}"))?;
            tokio::time::sleep(Duration::from_millis(down_ms)).await;
            tokio::task::spawn_blocking(move || database.start_again())
                .await?
                .map_err(|e| anyhow::anyhow!("starting PostgreSQL again: {e}"))?;
        }
        Fault::RestartClient { device } => {
            let device = &devices[device];
            let mut client = device.client.lock().await;
            client.stop().await;
            *client = device.start_client()?;
        }
    }
    Ok(())
}
