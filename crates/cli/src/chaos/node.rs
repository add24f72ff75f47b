//! Server nodes of a chaos run: `surechat serve` child processes that can be SIGKILLed and
//! started again on the same address and data.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use anyhow::Context;
use protocol::api::ParticipantSpec;
use protocol::Role;
use server::store::postgres::{PgOptions, PgStore};
use server::store::sqlite::{SqliteOptions, SqliteStore};
use server::store::Store;
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};

/// Where the run's data lives: an SQLite directory (one node) or a PostgreSQL schema (any number
/// of nodes).
#[derive(Clone)]
pub enum Storage {
    /// `surechat serve --data DIR`.
    Sqlite(PathBuf),
    /// `surechat serve --database URL` (a URL pinned to a fresh schema).
    Postgres(String),
}

impl Storage {
    /// Opens the store in this process (to seed and to check).
    pub async fn open(&self) -> anyhow::Result<Arc<dyn Store>> {
        Ok(match self {
            Storage::Sqlite(dir) => Arc::new(SqliteStore::open(dir, SqliteOptions::default())?),
            Storage::Postgres(url) => Arc::new(PgStore::connect(url, PgOptions::default()).await?),
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
            },
            ParticipantSpec {
                user_id: format!("operator-{pair}"),
                role: Role::Operator,
            },
        ];
        store
            .create_conversation(format!("chaos-{pair}"), participants, 8, server::now_ms())
            .await?;
    }
    Ok(())
}

/// One server process.
pub struct Node {
    storage: Storage,
    data: PathBuf,
    address: SocketAddr,
    admin_key: String,
    jwt_secret: String,
    child: Option<Child>,
}

impl Node {
    /// Starts a node on a free port of 127.0.0.1.
    pub async fn start(
        storage: &Storage,
        data: &Path,
        admin_key: &str,
        jwt_secret: &str,
    ) -> anyhow::Result<Node> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut node = Node {
            storage: storage.clone(),
            data: data.to_owned(),
            address: SocketAddr::from(([127, 0, 0, 1], port)),
            admin_key: admin_key.into(),
            jwt_secret: jwt_secret.into(),
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
        if let Storage::Postgres(url) = &self.storage {
            command.args(["--database", url]);
        }
        let mut child = command
            .env("SURECHAT_ADMIN_KEY", &self.admin_key)
            .env("SURECHAT_JWT_SECRET", &self.jwt_secret)
            // Short heartbeats so stalled connections are found within seconds.
            .env("SURECHAT_HEARTBEAT_INTERVAL_MS", "1000")
            .env("SURECHAT_HEARTBEAT_GRACE_MS", "1000")
            .env("SURECHAT_SENDS_PER_SECOND_MAX", "1000")
            .env("SURECHAT_SENDS_BURST_MAX", "2000")
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting a server node")?;
        let stdout = child.stdout.take().expect("piped");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let wait = async {
            while let Some(line) = lines.next_line().await? {
                if line.starts_with("surechat listening on") {
                    return anyhow::Ok(());
                }
            }
            anyhow::bail!("the node exited before listening")
        };
        // Binding may briefly fail right after a kill while the port is released.
        tokio::time::timeout(std::time::Duration::from_secs(30), wait)
            .await
            .context("the node did not start listening in 30 s")??;
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

    /// SIGTERM and wait for a graceful exit.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status()
                    .await?;
            }
            child.wait().await?;
        }
        Ok(())
    }
}
