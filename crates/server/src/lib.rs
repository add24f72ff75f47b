//! The surechat server: a WebSocket gateway and an HTTP API over a store that keeps the delivery
//! contract of `docs/architecture.md`.
//!
//! # Layout
//! - [`run`] serves a listener until shutdown; [`app`] builds the router (tests drive both).
//! - [`store`]: the [`store::Store`] trait and its implementations (memory, SQLite).
//! - [`hub`]: fan-out of committed changes to connected devices.
//! - [`cluster`]: several nodes on one store: notices between them, and sweeps.
//! - [`gateway`]: the WebSocket connection loop.
//! - [`edge`]: accepting connections: caps per address and in all, header, body and idle timeouts.
//! - [`http`]: the HTTP API, health, readiness and metrics.
//! - [`auth`]: JWT (HS256) user tokens and the admin key.
//! - [`config`]: every setting with its default.
//! - [`error`]: errors to problem documents and `error` frames.
//! - [`metrics`]: Prometheus counters.
//! - [`reach`]: Web Push and email for people with something unread and no device connected.
//! - [`signin`]: operators' accounts, sessions, second factor and single sign-on.
//! - [`validate`]: input checks shared by WebSocket and HTTP.
//! - [`web`]: the embedded browser SDK and demo pages under `/web/`.
//! - [`reach`]: reaching users outside the chat ([`reach::email`]: sending over SMTP).
//! - [`signin`]: operators' single sign-on ([`signin::oidc`]: OpenID Connect).

pub mod attachments;
pub mod auth;
pub mod canned;
pub mod cluster;
pub mod config;
pub mod directory;
pub mod edge;
pub mod error;
pub mod gateway;
pub mod http;
pub mod hub;
pub mod metrics;
pub mod minify;
pub mod openapi;
pub mod operators;
pub mod presence;
pub mod reach;
pub mod request_id;
pub mod search;
pub mod signin;
pub mod store;
pub mod validate;
pub mod web;
pub mod webhooks;
pub mod widget;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::Config;

use crate::auth::Auth;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::store::Store;

/// Everything a request or a connection needs.
pub struct AppState {
    /// Settings.
    pub config: Arc<Config>,
    /// Storage.
    pub store: Arc<dyn Store>,
    /// Fan-out.
    pub hub: Arc<Hub>,
    /// Tokens and the admin key.
    pub auth: Auth,
    /// Counters, shared with the hub, the cluster layer and the webhook loop.
    pub metrics: Arc<Metrics>,
    /// Operators' availability on this node.
    pub presence: Arc<presence::Presence>,
    /// Push and email: keys and connections.
    pub reach: reach::Reach,
    /// Single sign-on providers and their keys.
    pub sso: signin::sso::Providers,
    /// Emails with a sign-in under way on this node (one at a time per account).
    pub signing_in: std::sync::Mutex<std::collections::HashSet<String>>,
    /// The address [`run`] listens on (the configured `listen` may say port 0).
    pub bound: std::sync::OnceLock<std::net::SocketAddr>,
    /// Every user's send budget (WebSocket and HTTP together).
    pub send_budget: Arc<gateway::limiter::SendBudget>,
    /// Cancelled when the server shuts down.
    pub shutdown: CancellationToken,
    /// Open WebSocket connections, awaited on shutdown.
    pub connections: TaskTracker,
}

impl AppState {
    /// State over `store`, attaching a new hub to it. Secrets missing from `config` are generated
    /// for this process only (callers that need them to persist use
    /// [`Config::resolve_secrets`] first).
    pub fn new(config: Config, store: Arc<dyn Store>, shutdown: CancellationToken) -> Arc<Self> {
        let metrics = Arc::new(Metrics::default());
        let hub = Hub::with_metrics(metrics.clone());
        store.attach(hub.clone());
        Self::with_hub(config, store, hub, metrics, None, shutdown)
    }

    /// State of one node of several sharing `store`: its commits are published on `bus`, other
    /// nodes' are heard from it, and followed conversations are swept every `sweep_interval`.
    pub fn clustered(
        config: Config,
        store: Arc<dyn Store>,
        bus: Arc<dyn cluster::Bus>,
        sweep_interval: std::time::Duration,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let metrics = Arc::new(Metrics::default());
        let hub = Hub::with_metrics(metrics.clone());
        let heard = Arc::new(tokio::sync::Notify::new());
        cluster::Cluster::start(
            store.clone(),
            hub.clone(),
            bus.clone(),
            sweep_interval,
            metrics.clone(),
            heard.clone(),
            shutdown.clone(),
        );
        let announcer = metrics.clone();
        let sharing = presence::Sharing {
            store: store.clone(),
            announce: Arc::new(move || {
                announcer.cluster_notices(false, 1);
                bus.publish(vec![cluster::Notice::Presence]);
            }),
            heard,
            node: auth::random_hex(8),
            heartbeat: std::time::Duration::from_millis(config.presence_heartbeat_ms),
            ttl: std::time::Duration::from_millis(config.presence_ttl_ms),
        };
        Self::with_hub(config, store, hub, metrics, Some(sharing), shutdown)
    }

    fn with_hub(
        config: Config,
        store: Arc<dyn Store>,
        hub: Arc<Hub>,
        metrics: Arc<Metrics>,
        sharing: Option<presence::Sharing>,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let jwt_secret = config
            .jwt_secret
            .clone()
            .unwrap_or_else(|| auth::random_hex(32));
        let leave_delay = std::time::Duration::from_millis(config.presence_leave_delay_ms);
        let admin_key = config
            .admin_key
            .clone()
            .unwrap_or_else(|| auth::random_hex(32));
        Arc::new(AppState {
            reach: reach::Reach::new(&config),
            sso: signin::sso::Providers::new(&config),
            signing_in: Default::default(),
            bound: std::sync::OnceLock::new(),
            presence: match sharing {
                Some(sharing) => {
                    presence::Presence::shared(hub.clone(), leave_delay, sharing, shutdown.clone())
                }
                None => presence::Presence::new(hub.clone(), leave_delay),
            },
            send_budget: Arc::new(gateway::limiter::SendBudget::new(
                config.sends_burst_max,
                config.sends_per_second_max,
            )),
            config: Arc::new(config),
            store,
            hub,
            auth: Auth::new(&jwt_secret, &admin_key),
            metrics,
            shutdown,
            connections: TaskTracker::new(),
        })
    }
}

impl AppState {
    /// Verifies a user token now, and refuses it when the user's tokens were revoked at or after
    /// the time it was issued (`POST /v1/users/{id}/revoke`). The one check behind HTTP and the
    /// WebSocket `hello`.
    pub async fn authenticate(
        &self,
        token: &str,
    ) -> Result<auth::Claims, (protocol::ErrorCode, String)> {
        use protocol::ErrorCode;
        let claims = self
            .auth
            .verify(token, now_s())
            .map_err(|code| (code, code.title().to_owned()))?;
        match self.store.tokens_revoked_at(claims.sub.clone()).await {
            Ok(Some(revoked)) if claims.iat <= revoked => Err((
                ErrorCode::TokenInvalid,
                "this user's tokens were revoked; get a new one".to_owned(),
            )),
            Ok(_) => Ok(claims),
            Err(_) => Err((
                ErrorCode::Unavailable,
                "storage is unavailable; retry later".to_owned(),
            )),
        }
    }
}

/// The router: the HTTP API plus the WebSocket gateway at `/v1/ws`.
pub fn app(state: Arc<AppState>) -> Router {
    let pages = Router::new()
        .route("/web", get(web::root))
        .route("/console", get(web::console))
        .route("/console/", get(web::console))
        .route(
            "/web/",
            get(|headers: axum::http::HeaderMap| web::file(http::Path(String::new()), headers)),
        )
        .route("/web/build", get(web::build_id))
        .route("/favicon.ico", get(web::favicon))
        .route("/web/{*path}", get(web::file))
        .layer(axum::middleware::map_response_with_state(
            state.clone(),
            web::secure,
        ));
    let routes = http::routes()
        .route("/v1/ws", get(gateway::upgrade))
        .merge(pages);
    http::fallbacks(routes)
        .layer(axum::middleware::map_response_with_state(
            state.clone(),
            http::count_refusal,
        ))
        .with_state(state)
}

/// Serves `listener` until `state.shutdown` is cancelled, then shuts down gracefully: stops
/// accepting, lets every connection finish its writes in flight (their acks are sent) and close
/// with 1012 "server restarting", and returns once all are closed.
pub async fn run(listener: TcpListener, state: Arc<AppState>) -> std::io::Result<()> {
    if let Ok(address) = listener.local_addr() {
        let _ = state.bound.set(address);
    }
    let shutdown = state.shutdown.clone();
    let connections = state.connections.clone();
    let deliveries = tokio::spawn(webhooks::run(state.clone()));
    let notifications = tokio::spawn(reach::run(state.clone()));
    let collector = tokio::spawn(attachments::collect(state.clone()));
    let config = state.config.clone();
    let router = app(state)
        .layer(axum::middleware::from_fn_with_state(
            config.clone(),
            edge::body_deadline,
        ))
        .layer(axum::middleware::from_fn(request_id::layer));
    edge::serve(listener, router, config, shutdown).await?;
    connections.close();
    connections.wait().await;
    let _ = deliveries.await;
    let _ = notifications.await;
    let _ = collector.await;
    Ok(())
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Seconds since the Unix epoch.
pub fn now_s() -> u64 {
    now_ms() / 1000
}
