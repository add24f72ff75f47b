//! `surechat proxy`: a fault proxy in front of a server, with a small HTTP API to break the
//! network on demand during manual or scripted chaos runs.
//!
//! Run with: `cargo run --bin surechat -- proxy --upstream 127.0.0.1:8080`, point clients at
//! `127.0.0.1:9000`, then for example:
//!
//! ```text
//! curl -X POST 'http://127.0.0.1:9001/latency?ms=200&jitter_ms=50'
//! curl -X POST 'http://127.0.0.1:9001/drop'
//! curl -X POST 'http://127.0.0.1:9001/heal'
//! curl http://127.0.0.1:9001/status
//! ```
//!
//! Every `POST` answers with the same JSON as `GET /status`, so a script sees the effect at once.
//! Bad parameters get `400` with a message naming the parameter.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use faultproxy::FaultProxy;
use serde_json::{json, Value};

/// Settings of `surechat proxy`.
#[derive(clap::Args)]
pub struct ProxyArgs {
    /// Address clients connect to (port 0 picks a free one; the ready line shows it).
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
    /// The server connections are forwarded to.
    #[arg(long)]
    upstream: SocketAddr,
    /// Address of the control HTTP API. Keep it on loopback: it has no authentication.
    #[arg(long, default_value = "127.0.0.1:9001")]
    control: SocketAddr,
}

/// Runs `surechat proxy` until SIGTERM or SIGINT.
pub fn run(args: ProxyArgs) -> anyhow::Result<()> {
    // Logs go to stderr so that stdout carries only the ready line, for scripts.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?
        .block_on(serve(args))
}

async fn serve(args: ProxyArgs) -> anyhow::Result<()> {
    let proxy = FaultProxy::start(args.listen, args.upstream)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let control = tokio::net::TcpListener::bind(args.control)
        .await
        .with_context(|| format!("cannot listen on {} (--control)", args.control))?;
    let control_addr = control.local_addr()?;
    // Printed on stdout, one line, for scripts and tests that start the proxy on port 0.
    println!(
        "surechat proxy listening on {} → {}, control on http://{control_addr}",
        proxy.local_addr(),
        args.upstream
    );
    tracing::info!(listen = %proxy.local_addr(), upstream = %args.upstream, control = %control_addr, "proxy ready");
    axum::serve(control, app(proxy.clone()))
        .with_graceful_shutdown(wait_for_signal())
        .await
        .context("serving the control API")?;
    tracing::info!("shutting down: closing every proxied connection");
    proxy.shutdown().await;
    Ok(())
}

/// The control API.
fn app(proxy: FaultProxy) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/drop", post(drop_all))
        .route("/stall", post(stall))
        .route("/latency", post(latency))
        .route("/bandwidth", post(bandwidth))
        .route("/refuse", post(refuse))
        .route("/heal", post(heal))
        .with_state(proxy)
}

/// Query parameters, kept as strings so that a bad value gets a message naming it.
type Params = Query<HashMap<String, String>>;

/// A `400` naming the bad parameter.
type BadParam = (StatusCode, String);

async fn status(State(proxy): State<FaultProxy>) -> Json<Value> {
    Json(report(&proxy))
}

/// `POST /drop`: close every current connection.
async fn drop_all(State(proxy): State<FaultProxy>) -> Json<Value> {
    proxy.drop_all();
    Json(report(&proxy))
}

/// `POST /stall?on=true|false` (`on` defaults to true).
async fn stall(
    State(proxy): State<FaultProxy>,
    Query(params): Params,
) -> Result<Json<Value>, BadParam> {
    proxy.stall(flag(&params, "on")?);
    Ok(Json(report(&proxy)))
}

/// `POST /latency?ms=N&jitter_ms=N` (each defaults to 0).
async fn latency(
    State(proxy): State<FaultProxy>,
    Query(params): Params,
) -> Result<Json<Value>, BadParam> {
    let ms = number(&params, "ms")?.unwrap_or(0);
    let jitter_ms = number(&params, "jitter_ms")?.unwrap_or(0);
    let max = faultproxy::limits::LATENCY_MS_MAX;
    if ms > max || jitter_ms > max {
        return Err(bad(format!("`ms` and `jitter_ms` must be at most {max}")));
    }
    proxy.set_latency(Duration::from_millis(ms), Duration::from_millis(jitter_ms));
    Ok(Json(report(&proxy)))
}

/// `POST /bandwidth?bytes_per_s=N` (absent or 0: unlimited).
async fn bandwidth(
    State(proxy): State<FaultProxy>,
    Query(params): Params,
) -> Result<Json<Value>, BadParam> {
    proxy.set_bandwidth(number(&params, "bytes_per_s")?.filter(|&rate| rate > 0));
    Ok(Json(report(&proxy)))
}

/// `POST /refuse?on=true|false` (`on` defaults to true).
async fn refuse(
    State(proxy): State<FaultProxy>,
    Query(params): Params,
) -> Result<Json<Value>, BadParam> {
    proxy.refuse(flag(&params, "on")?);
    Ok(Json(report(&proxy)))
}

/// `POST /heal`: remove every fault (black holes stay black holes).
async fn heal(State(proxy): State<FaultProxy>) -> Json<Value> {
    proxy.heal();
    Json(report(&proxy))
}

/// The body of `GET /status` and of every `POST`.
fn report(proxy: &FaultProxy) -> Value {
    let faults = proxy.faults();
    let stats = proxy.stats();
    json!({
        "listen": proxy.local_addr().to_string(),
        "upstream": proxy.upstream().to_string(),
        "connections": proxy.connections(),
        "faults": {
            "latency_ms": u64::try_from(faults.latency.as_millis()).unwrap_or(u64::MAX),
            "jitter_ms": u64::try_from(faults.jitter.as_millis()).unwrap_or(u64::MAX),
            "bytes_per_s": faults.bytes_per_s,
            "refuse": faults.refuse,
            "stall": faults.stall,
        },
        "stats": {
            "accepted": stats.accepted,
            "refused": stats.refused,
            "upstream_failed": stats.upstream_failed,
            "dropped": stats.dropped,
            "stalled": stats.stalled,
            "bytes_to_upstream": stats.bytes_to_upstream,
            "bytes_to_client": stats.bytes_to_client,
            "bytes_discarded": stats.bytes_discarded,
        },
    })
}

/// A boolean parameter; absent means true (`POST /stall` stalls).
fn flag(params: &HashMap<String, String>, name: &str) -> Result<bool, BadParam> {
    match params.get(name).map(String::as_str) {
        None | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(other) => Err(bad(format!(
            "`{name}` must be true or false, not `{other}`"
        ))),
    }
}

/// A non-negative integer parameter, if present.
fn number(params: &HashMap<String, String>, name: &str) -> Result<Option<u64>, BadParam> {
    params
        .get(name)
        .map(|value| {
            value.parse::<u64>().map_err(|_| {
                bad(format!(
                    "`{name}` must be a non-negative integer, not `{value}`"
                ))
            })
        })
        .transpose()
}

fn bad(message: String) -> BadParam {
    (StatusCode::BAD_REQUEST, message)
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
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
