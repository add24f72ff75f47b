//! The server under test: either a `surechat serve` child process on a temporary data directory
//! (rate limits raised for the bench, an ephemeral port) or a running server given by URL. Also
//! the admin calls a scenario needs (conversations, backlog) and user tokens.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use protocol::Role;
use server::auth::Auth;
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};

use super::http::HttpConn;

/// Admin key and JWT secret of a server the bench starts (it lives only for the run).
const ADMIN_KEY: &str = "bench-admin-key-0123456789";
const JWT_SECRET: &str = "bench-jwt-secret-0123456789abcdef0123";

/// Lifetime of the tokens the bench mints: longer than any run.
const TOKEN_TTL_S: u64 = 86_400;

/// Parallel admin HTTP connections used to set a scenario up.
const ADMIN_CONCURRENCY: usize = 32;

/// The server under test.
pub struct Target {
    /// Its HTTP address.
    pub address: SocketAddr,
    /// Its WebSocket URL.
    pub ws_url: String,
    /// Its process id, when known (to read its memory).
    pub pid: Option<u32>,
    admin_key: String,
    auth: Auth,
    child: Option<Child>,
    _data: Option<tempfile::TempDir>,
}

/// One admin write: a path, the bearer token and a JSON body.
pub struct Post {
    pub path: String,
    pub bearer: String,
    pub body: String,
}

impl Target {
    /// Starts `surechat serve` on a temporary directory and waits until it listens.
    pub async fn start_own() -> anyhow::Result<Target> {
        // Under the working directory, not /tmp: the fsync of every commit must hit a real disk
        // (a tmpfs /tmp would make every ack look free).
        let data = tempfile::Builder::new()
            .prefix(".surechat-bench-")
            .tempdir_in(".")
            .context("creating the bench data directory")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let exe = std::env::current_exe().context("finding the surechat binary")?;
        let mut child = Command::new(exe)
            .args(["serve", "--listen", &address.to_string(), "--data"])
            .arg(data.path())
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
        let stdout = child.stdout.take().expect("piped");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let wait = async {
            while let Some(line) = lines.next_line().await? {
                if line.starts_with("surechat listening on") {
                    return anyhow::Ok(());
                }
            }
            bail!("the server exited before listening")
        };
        tokio::time::timeout(Duration::from_secs(30), wait)
            .await
            .context("the server did not start listening in 30 s")??;
        Ok(Target {
            address,
            ws_url: format!("ws://{address}/v1/ws"),
            pid: child.id(),
            admin_key: ADMIN_KEY.into(),
            auth: Auth::new(JWT_SECRET, ADMIN_KEY),
            child: Some(child),
            _data: Some(data),
        })
    }

    /// A running server at `url` (`http://host:port`).
    pub fn external(
        url: &str,
        admin_key: &str,
        jwt_secret: &str,
        pid: Option<u32>,
    ) -> anyhow::Result<Target> {
        let host = url
            .trim_start_matches("http://")
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap_or_default();
        let address: SocketAddr = host
            .parse()
            .with_context(|| format!("--server must be http://IP:PORT, not {url}"))?;
        Ok(Target {
            address,
            ws_url: format!("ws://{address}/v1/ws"),
            pid,
            admin_key: admin_key.into(),
            auth: Auth::new(jwt_secret, admin_key),
            child: None,
            _data: None,
        })
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
        for _ in 0..ADMIN_CONCURRENCY {
            let queue = queue.clone();
            let address = self.address;
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

    /// The server's resident memory in KiB (`VmRSS`), when its process is known.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid?)).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Stops a server the bench started (SIGTERM, then waits).
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                // SAFETY: sending a signal to our own child process.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
            }
            if tokio::time::timeout(Duration::from_secs(20), child.wait())
                .await
                .is_err()
            {
                child.start_kill()?;
                child.wait().await?;
            }
        }
        Ok(())
    }
}
