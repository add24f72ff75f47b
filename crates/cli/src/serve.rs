//! `surechat serve`: the server on SQLite, with logs, signals and graceful shutdown.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use server::cluster::pg_bus::PgBus;
use server::store::postgres::{PgOptions, PgStore};
use server::store::sqlite::{SqliteOptions, SqliteStore};
use server::{AppState, Config};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Starts logging to stderr in the configured format; `RUST_LOG` filters (default `info`), but
/// never below [`library_caps`], whatever it says.
pub fn init_logs(config: &Config) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(library_caps());
    if config.log_format == "json" {
        registry.with(layer.json()).init();
    } else {
        registry.with(layer).init();
    }
}

/// The most detailed level of libraries that would log what passes through them: at `trace`,
/// tungstenite prints every WebSocket frame (a `hello`'s token, every message body), and the
/// HTTP, TLS and PostgreSQL crates print requests, headers or query parameters. Tokens and
/// bodies must never reach a log, so these targets stop at `debug` even under `RUST_LOG=trace`
/// (a second filter beside `RUST_LOG`'s, which an event must pass too). Our own targets log no
/// token or body at any level.
pub fn library_caps() -> tracing_subscriber::filter::Targets {
    use tracing_subscriber::filter::LevelFilter;
    tracing_subscriber::filter::Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_targets(
            [
                "tungstenite",
                "tokio_tungstenite",
                "axum",
                "hyper",
                "hyper_util",
                "h2",
                "http",
                "reqwest",
                "rustls",
                "tokio_postgres",
                "postgres_protocol",
            ]
            .map(|target| (target, LevelFilter::DEBUG)),
        )
}

/// Runs `surechat serve`.
pub fn serve(mut config: Config) -> anyhow::Result<()> {
    init_logs(&config);
    let open_files = crate::rlimit::raise_open_files();
    tracing::debug!(open_files, "open-files limit");
    fit_connections(&mut config, open_files as usize);
    runtime()?.block_on(run(config, |_, _| async { Ok(()) }))
}

/// Files the server needs besides its connections (storage, readers, PostgreSQL, logs).
const FILES_RESERVED: usize = 256;

/// Lowers `connections_max` to fit the open-files limit, so that the server refuses connections
/// over the cap instead of failing to accept (and to open its own files) once none is left.
fn fit_connections(config: &mut Config, open_files: usize) {
    let fits = open_files.saturating_sub(FILES_RESERVED).max(1);
    if config.connections_max > fits {
        tracing::warn!(
            connections_max = config.connections_max,
            open_files,
            "lowering connections_max to {fits} to fit the open-files limit"
        );
        config.connections_max = fits;
    }
}

/// The tokio runtime of the server.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
}

/// Opens storage, binds, calls `ready` (the demo seeds its booking there), then serves until
/// SIGTERM or SIGINT and shuts down gracefully.
pub async fn run<F, Fut>(config: Config, ready: F) -> anyhow::Result<()>
where
    F: FnOnce(Arc<AppState>, String) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let shutdown = CancellationToken::new();
    let state = match open_store(&config).await? {
        Opened::Postgres(store) => {
            let node = u64::from_str_radix(&server::auth::random_hex(8), 16).expect("hex");
            tracing::info!(node, "storage open on PostgreSQL");
            let bus = PgBus::new(store.config().clone(), node);
            let sweep = std::time::Duration::from_millis(config.sweep_interval_ms);
            AppState::clustered(config, Arc::new(store), bus, sweep, shutdown.clone())
        }
        Opened::Sqlite(store) => {
            tracing::info!(path = %store.path().display(), "storage open");
            AppState::new(config, Arc::new(store), shutdown.clone())
        }
    };
    let listen = state.config.listen;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;
    let base = format!("http://{address}");
    tracing::info!(%address, "listening");
    ready(state.clone(), base.clone()).await?;
    // Printed on stdout, one line, for scripts and tests that start the server on port 0.
    println!("surechat listening on {base}");
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: closing connections with 1012 after their writes");
        shutdown.cancel();
    });
    server::run(listener, state).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("installing the SIGINT handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Storage as the configuration names it.
pub enum Opened {
    /// `database` is set.
    Postgres(PgStore),
    /// SQLite under `data`.
    Sqlite(SqliteStore),
}

impl Opened {
    /// As the `Store` every command speaks to.
    pub fn into_store(self) -> Arc<dyn server::store::Store> {
        match self {
            Opened::Postgres(store) => Arc::new(store),
            Opened::Sqlite(store) => Arc::new(store),
        }
    }
}

/// Opens (and migrates) the storage `config` names: PostgreSQL when `database` is set, else
/// SQLite under `data`. Used by `serve` and by commands that work on the data directly.
pub async fn open_store(config: &Config) -> anyhow::Result<Opened> {
    Ok(match config.database.clone() {
        Some(url) => {
            let options = PgOptions {
                group_commit_max: config.group_commit_max,
                ..PgOptions::default()
            };
            Opened::Postgres(PgStore::connect(&url, options).await?)
        }
        None => Opened::Sqlite(SqliteStore::open(
            &config.data,
            SqliteOptions {
                group_commit_max: config.group_commit_max,
                busy_timeout: std::time::Duration::from_millis(config.sqlite_busy_timeout_ms),
            },
        )?),
    })
}

/// Waits until a `surechat serve` child (stdout piped) says it listens, within `within`.
pub async fn until_listening(
    child: &mut tokio::process::Child,
    within: std::time::Duration,
) -> anyhow::Result<()> {
    use tokio::io::AsyncBufReadExt;
    let stdout = child
        .stdout
        .take()
        .context("the server's stdout is piped")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let wait = async {
        while let Some(line) = lines.next_line().await? {
            if line.starts_with("surechat listening on") {
                return anyhow::Ok(());
            }
        }
        anyhow::bail!("the server exited before listening")
    };
    tokio::time::timeout(within, wait)
        .await
        .with_context(|| format!("the server did not start listening in {within:?}"))?
}
