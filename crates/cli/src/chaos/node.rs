//! Server nodes of a chaos run: `surechat serve` child processes that can be SIGKILLed or
//! SIGTERMed and started again on the same address and data, and the storage faults that make
//! them refuse writes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use protocol::api::ParticipantSpec;
use protocol::Role;
use server::store::postgres::{PgOptions, PgStore};
use server::store::sqlite::{SqliteOptions, SqliteStore};
use server::store::Store;
use tokio::process::{Child, Command};

/// Where the run's data lives: an SQLite directory (one node) or a PostgreSQL schema (any number
/// of nodes).
#[derive(Clone)]
pub enum Storage {
    /// `surechat serve --data DIR`.
    Sqlite(PathBuf),
    /// `surechat serve --database URL` (a URL pinned to the fresh schema `schema`).
    Postgres { url: String, schema: String },
}

impl Storage {
    /// Opens the store in this process (to seed and to check).
    pub async fn open(&self) -> anyhow::Result<Arc<dyn Store>> {
        Ok(match self {
            Storage::Sqlite(dir) => Arc::new(SqliteStore::open(dir, SqliteOptions::default())?),
            Storage::Postgres { url, .. } => {
                Arc::new(PgStore::connect(url, PgOptions::default()).await?)
            }
        })
    }
}

/// Creates the conversations `chaos-0..pairs` (client-i, operator-i) before any node starts.
pub async fn seed_conversations(storage: &Storage, pairs: usize) -> anyhow::Result<()> {
    let store = storage.open().await?;
    for pair in 0..pairs {
        let participants = vec![
            ParticipantSpec {
                user_id: format!("client-{pair}"),
                role: Role::Client,
                email: None,
            },
            ParticipantSpec {
                user_id: format!("operator-{pair}"),
                role: Role::Operator,
                email: None,
            },
        ];
        store
            .create_conversation(format!("chaos-{pair}"), participants, 8, server::now_ms())
            .await?;
    }
    Ok(())
}

/// How long a SIGTERMed node may take to exit before it is SIGKILLed: it answers what is in
/// flight first, which takes well under a second unless storage hangs.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// The server's SQLite busy timeout in runs with refusals: a write lock held from outside makes
/// the node's writes fail after this long, not after the default 5 s.
pub const REFUSAL_BUSY_TIMEOUT_MS: u64 = 100;

/// What a node is started with, besides storage.
#[derive(Clone)]
pub struct Settings {
    pub admin_key: String,
    pub jwt_secret: String,
    /// `sends_per_second_max` and `sends_burst_max`.
    pub rate_limit: (u32, u32),
    /// `sqlite_busy_timeout_ms`.
    pub busy_timeout_ms: u64,
    /// `RUST_LOG` of the node (its stderr is the run's).
    pub log: &'static str,
}

/// One server process.
pub struct Node {
    /// Its rank among the run's nodes.
    index: usize,
    storage: Storage,
    data: PathBuf,
    address: SocketAddr,
    settings: Settings,
    child: Option<Child>,
}

impl Node {
    /// Starts a node on a free port of 127.0.0.1.
    pub async fn start(
        index: usize,
        storage: &Storage,
        data: &Path,
        settings: &Settings,
    ) -> anyhow::Result<Node> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut node = Node {
            index,
            storage: storage.clone(),
            data: data.to_owned(),
            address: SocketAddr::from(([127, 0, 0, 1], port)),
            settings: settings.clone(),
            child: None,
        };
        node.ensure_running().await?;
        Ok(node)
    }

    /// Where it listens (the same across restarts).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Starts the process if it is not running, and waits until it listens.
    pub async fn ensure_running(&mut self) -> anyhow::Result<()> {
        if self.child.is_some() {
            return Ok(());
        }
        let exe = std::env::current_exe().context("finding the surechat binary")?;
        let mut command = Command::new(exe);
        command
            .args(["serve", "--listen", &self.address.to_string(), "--data"])
            .arg(&self.data);
        if let Storage::Postgres { url, schema } = &self.storage {
            // Named, so that storage faults can find this node's connections.
            let separator = if url.contains('?') { '&' } else { '?' };
            let name = application_name(schema, self.index);
            command.args([
                "--database",
                &format!("{url}{separator}application_name={name}"),
            ]);
        }
        let settings = &self.settings;
        let mut child = command
            .env("SURECHAT_ADMIN_KEY", &settings.admin_key)
            .env("SURECHAT_JWT_SECRET", &settings.jwt_secret)
            // The pairs' operators are generated: they join the directory when they connect.
            .env("SURECHAT_OPERATORS_AUTO_REGISTER", "true")
            // Short heartbeats so stalled connections are found within seconds.
            .env("SURECHAT_HEARTBEAT_INTERVAL_MS", "1000")
            .env("SURECHAT_HEARTBEAT_GRACE_MS", "1000")
            .env(
                "SURECHAT_SENDS_PER_SECOND_MAX",
                settings.rate_limit.0.to_string(),
            )
            .env(
                "SURECHAT_SENDS_BURST_MAX",
                settings.rate_limit.1.to_string(),
            )
            // A device sends about 40 files a minute here, faster after an outage: the default
            // of 60 uploads a minute would refuse some, which is not what a run measures.
            .env("SURECHAT_UPLOADS_PER_MINUTE", "600")
            .env(
                "SURECHAT_SQLITE_BUSY_TIMEOUT_MS",
                settings.busy_timeout_ms.to_string(),
            )
            .env("RUST_LOG", settings.log)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting a server node")?;
        // Binding may briefly fail right after a kill while the port is released.
        crate::serve::until_listening(&mut child, Duration::from_secs(30)).await?;
        self.child = Some(child);
        Ok(())
    }

    /// SIGKILL.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.start_kill()?;
            child.wait().await?;
        }
        Ok(())
    }

    /// SIGTERM and wait for a graceful exit (SIGKILL after [`STOP_TIMEOUT`]).
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status()
                    .await?;
            }
            if tokio::time::timeout(STOP_TIMEOUT, child.wait())
                .await
                .is_err()
            {
                eprintln!(
                    "chaos: node {} did not exit within {STOP_TIMEOUT:?} of SIGTERM; killing it",
                    self.address
                );
                child.start_kill()?;
                child.wait().await?;
            }
        }
        Ok(())
    }
}

/// Makes storage refuse the writes of node `node` for `for_ms`, by real faults from outside the
/// node: on SQLite this process holds the database's write lock (`BEGIN IMMEDIATE`), so the
/// node's writer gives up after its busy timeout and answers its batch `unavailable`; on
/// PostgreSQL it terminates the node's connections (named by `application_name`) every 50 ms, so
/// the batch in flight fails. Bounded by `for_ms` and, on PostgreSQL, by a count of rounds.
pub async fn refuse_storage(storage: &Storage, node: usize, for_ms: u64) -> anyhow::Result<()> {
    let hold = Duration::from_millis(for_ms);
    match storage {
        Storage::Sqlite(dir) => {
            let path = dir.join(server::store::sqlite::DATABASE_FILE);
            tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                let conn = rusqlite::Connection::open(&path)?;
                // The node's writer holds the lock for a commit at a time: wait for a gap.
                conn.busy_timeout(Duration::from_secs(5))?;
                conn.execute_batch("BEGIN IMMEDIATE")?;
                std::thread::sleep(hold);
                conn.execute_batch("ROLLBACK")?;
                Ok(())
            })
            .await?
        }
        Storage::Postgres { url, schema } => {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
            let driver = tokio::spawn(connection);
            let name = application_name(schema, node);
            let started = tokio::time::Instant::now();
            let rounds = for_ms / 50 + 1;
            let mut terminated = 0i64;
            for _ in 0..rounds {
                if started.elapsed() >= hold {
                    break;
                }
                let row = client
                    .query_one(
                        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) \
                         FROM pg_stat_activity \
                         WHERE application_name = $1 AND pid <> pg_backend_pid()",
                        &[&name],
                    )
                    .await?;
                terminated += row.get::<_, i64>(0);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if terminated == 0 {
                // Not fatal (the node may have been down), but a fault that did nothing is news.
                eprintln!("chaos: storage refusal found no connection of node {node} ({name})");
            }
            drop(client);
            let _ = driver.await;
            Ok(())
        }
    }
}

/// The `application_name` of node `node`'s PostgreSQL connections: unique to the run's schema,
/// so faults never touch another run's nodes.
fn application_name(schema: &str, node: usize) -> String {
    let mut name = format!("{schema}-n{node}");
    name.truncate(63);
    name
}
