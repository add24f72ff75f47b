//! The servers under test: `surechat serve` children the bench starts — one on a temporary data
//! directory (SQLite), or several on a fresh schema of a PostgreSQL database — with rate limits
//! raised for the bench and ephemeral ports; or running servers given by URL. Also the admin
//! calls a scenario needs (conversations, backlog) and user tokens.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use protocol::Role;
use server::auth::Auth;
use tokio::process::{Child, Command};

use super::http::HttpConn;
use super::usage::Database;

/// Admin key and JWT secret of a server the bench starts (it lives only for the run).
const ADMIN_KEY: &str = "bench-admin-key-0123456789";
const JWT_SECRET: &str = "bench-jwt-secret-0123456789abcdef0123";

/// Lifetime of the tokens the bench mints: longer than any run.
const TOKEN_TTL_S: u64 = 86_400;

/// Parallel admin HTTP connections used to set a scenario up.
const ADMIN_CONCURRENCY: usize = 32;

/// How long a node the bench starts may take to listen (PostgreSQL migrations included).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Prefix of the schemas the bench creates in a `--database` (dropped after each scenario).
const SCHEMA_PREFIX: &str = "surechat_bench";

/// One server (node) under test.
pub struct Node {
    /// Its HTTP address.
    pub address: SocketAddr,
    /// Its WebSocket URL.
    pub ws_url: String,
    /// Its process id, when known (to read its memory and CPU time).
    pub pid: Option<u32>,
}

impl Node {
    fn at(address: SocketAddr, pid: Option<u32>) -> Node {
        Node {
            address,
            ws_url: format!("ws://{address}/v1/ws"),
            pid,
        }
    }
}

/// What the bench starts when it is not given `--server`.
#[derive(Debug, Clone)]
pub struct Own {
    /// How many `surechat serve` nodes.
    pub nodes: usize,
    /// A PostgreSQL database to put them on (a fresh schema in it); SQLite when absent.
    pub database: Option<String>,
}

/// The servers under test: one node, or several sharing one PostgreSQL database.
pub struct Target {
    /// At least one.
    pub nodes: Vec<Node>,
    /// The PostgreSQL database the nodes share, when known: its statistics are sampled.
    pub database: Option<Database>,
    admin_key: String,
    auth: Auth,
    children: Vec<Child>,
    /// `(database URL, schema)` of a schema the bench created, dropped by [`Target::stop`].
    schema: Option<(String, String)>,
    _data: Option<tempfile::TempDir>,
}

/// One admin write: a path, the bearer token and a JSON body.
pub struct Post {
    pub path: String,
    pub bearer: String,
    pub body: String,
}

impl Target {
    /// Starts `own.nodes` `surechat serve` nodes and waits until each listens: on a temporary
    /// data directory (SQLite, one node), or on a fresh schema of `own.database`.
    pub async fn start_own(own: &Own) -> anyhow::Result<Target> {
        if own.nodes > 1 && own.database.is_none() {
            bail!(
                "--nodes {} needs --database: several nodes share PostgreSQL",
                own.nodes
            );
        }
        // Under the working directory, not /tmp: the fsync of every commit must hit a real disk
        // (a tmpfs /tmp would make every ack look free).
        let data = tempfile::Builder::new()
            .prefix(".surechat-bench-")
            .tempdir_in(".")
            .context("creating the bench data directory")?;
        let (url, schema, database) = match &own.database {
            Some(base) => {
                // Connected first, so that a database it cannot reach leaves no schema behind.
                let database = Database::connect(base).await?;
                let (url, schema) = server::store::postgres::fresh_schema(base, SCHEMA_PREFIX)
                    .await
                    .context("creating a schema for the bench")?;
                (Some(url), Some((base.clone(), schema)), Some(database))
            }
            None => (None, None, None),
        };
        let mut target = Target {
            nodes: Vec::new(),
            database,
            admin_key: ADMIN_KEY.into(),
            auth: Auth::new(JWT_SECRET, ADMIN_KEY),
            children: Vec::new(),
            schema,
            _data: None,
        };
        for index in 0..own.nodes.max(1) {
            let dir = data.path().join(format!("node-{}", index + 1));
            match spawn_node(&dir, url.as_deref()).await {
                Ok((node, child)) => {
                    target.nodes.push(node);
                    target.children.push(child);
                }
                Err(err) => {
                    target.stop().await.ok();
                    return Err(err);
                }
            }
        }
        target._data = Some(data);
        Ok(target)
    }

    /// Running servers at `urls` (`http://IP:PORT` each), with their process ids when known
    /// (in the same order) and the database they share when given.
    pub async fn external(
        urls: &[String],
        admin_key: &str,
        jwt_secret: &str,
        pids: &[u32],
        database: Option<&str>,
    ) -> anyhow::Result<Target> {
        let mut nodes = Vec::new();
        for (index, url) in urls.iter().enumerate() {
            let host = url
                .trim_start_matches("http://")
                .trim_start_matches("ws://")
                .split('/')
                .next()
                .unwrap_or_default();
            let address: SocketAddr = host
                .parse()
                .with_context(|| format!("--server must be http://IP:PORT, not {url}"))?;
            nodes.push(Node::at(address, pids.get(index).copied()));
        }
        if nodes.is_empty() {
            bail!("--server names no server");
        }
        let database = match database {
            Some(url) => Some(Database::connect(url).await?),
            None => None,
        };
        Ok(Target {
            nodes,
            database,
            admin_key: admin_key.into(),
            auth: Auth::new(jwt_secret, admin_key),
            children: Vec::new(),
            schema: None,
            _data: None,
        })
    }

    /// The node that device `index` connects to: devices are spread round-robin.
    pub fn node(&self, index: usize) -> &Node {
        &self.nodes[index % self.nodes.len()]
    }

    /// A token for `user` as `role`, signed with the server's secret.
    pub fn token(&self, user: &str, role: Role) -> String {
        self.auth.mint(user, role, server::now_s(), TOKEN_TTL_S)
    }

    /// Creates conversations (id, client, operator) through the admin API.
    pub async fn create_conversations(
        &self,
        conversations: Vec<(String, String, String)>,
    ) -> anyhow::Result<()> {
        let posts = conversations
            .into_iter()
            .map(|(id, client, operator)| Post {
                path: "/v1/conversations".into(),
                bearer: self.admin_key.clone(),
                body: serde_json::json!({
                    "id": id,
                    "participants": [
                        {"user_id": client, "role": "client"},
                        {"user_id": operator, "role": "operator"},
                    ],
                })
                .to_string(),
            })
            .collect();
        self.post_all(posts).await
    }

    /// Runs every post over a few keep-alive connections; fails on any answer but 2xx.
    pub async fn post_all(&self, posts: Vec<Post>) -> anyhow::Result<()> {
        let queue = Arc::new(Mutex::new(VecDeque::from(posts)));
        let mut workers = Vec::new();
        for worker in 0..ADMIN_CONCURRENCY {
            let queue = queue.clone();
            let address = self.node(worker).address;
            workers.push(tokio::spawn(async move {
                let mut conn = HttpConn::connect(address).await?;
                loop {
                    let Some(post) = queue.lock().expect("queue").pop_front() else {
                        return anyhow::Ok(());
                    };
                    let (status, body) = conn.post(&post.path, &post.bearer, &post.body).await?;
                    if !(200..300).contains(&status) {
                        bail!("POST {} answered {status}: {body}", post.path);
                    }
                }
            }));
        }
        for worker in workers {
            worker.await??;
        }
        Ok(())
    }

    /// The servers' resident memory in KiB (`VmRSS`, summed over the nodes), when every
    /// node's process is known.
    pub fn rss_kib(&self) -> Option<u64> {
        self.nodes
            .iter()
            .map(|node| super::usage::rss_kib(node.pid?))
            .sum()
    }

    /// Stops the servers the bench started (SIGTERM, then waits) and drops their schema.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        for child in &self.children {
            if let Some(pid) = child.id() {
                // SAFETY: sending a signal to our own child process.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
            }
        }
        for mut child in self.children.drain(..) {
            if tokio::time::timeout(Duration::from_secs(20), child.wait())
                .await
                .is_err()
            {
                child.start_kill()?;
                child.wait().await?;
            }
        }
        if let Some((url, schema)) = self.schema.take() {
            server::store::postgres::drop_schema(&url, &schema)
                .await
                .with_context(|| format!("dropping the bench schema {schema}"))?;
        }
        Ok(())
    }
}

/// Starts one `surechat serve` with its data directory `dir` (created), on PostgreSQL at
/// `database` when given, and waits until it listens.
async fn spawn_node(dir: &Path, database: Option<&str>) -> anyhow::Result<(Node, Child)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let exe = std::env::current_exe().context("finding the surechat binary")?;
    let mut command = Command::new(exe);
    command
        .args(["serve", "--listen", &address.to_string(), "--data"])
        .arg(dir);
    if let Some(url) = database {
        command.args(["--database", url]);
    }
    let mut child = command
        .env("SURECHAT_ADMIN_KEY", ADMIN_KEY)
        .env("SURECHAT_JWT_SECRET", JWT_SECRET)
        // Bench operators are generated: they join the directory when they connect.
        .env("SURECHAT_OPERATORS_AUTO_REGISTER", "true")
        // A bench device sends far above a person's rate; the limit is not what is measured.
        .env("SURECHAT_SENDS_PER_SECOND_MAX", "1000000")
        .env("SURECHAT_SENDS_BURST_MAX", "1000000")
        // The bench opens tens of thousands of connections from a few loopback addresses.
        .env("SURECHAT_CONNECTIONS_PER_ADDRESS_MAX", "1000000")
        .env("SURECHAT_CONNECTIONS_MAX", "1000000")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("starting surechat serve")?;
    crate::serve::until_listening(&mut child, START_TIMEOUT).await?;
    let pid = child.id();
    Ok((Node::at(address, pid), child))
}
