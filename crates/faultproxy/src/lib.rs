//! A TCP proxy that breaks the network on purpose, for tests and chaos runs.
//!
//! Put a [`FaultProxy`] between WebSocket clients and the server, point the clients at
//! [`FaultProxy::local_addr`], then cut, freeze, slow down or refuse their connections while
//! traffic flows, and check that the delivery guarantee survives.
//!
//! ```no_run
//! # async fn example(server: std::net::SocketAddr) -> std::io::Result<()> {
//! use std::time::Duration;
//!
//! let proxy = faultproxy::FaultProxy::start("127.0.0.1:0".parse().unwrap(), server).await?;
//! proxy.set_seed(7); // jitter is reproducible per seed
//! // ... connect clients to proxy.local_addr() ...
//! proxy.set_latency(Duration::from_millis(50), Duration::from_millis(20));
//! proxy.drop_all(); // every client sees its connection end and reconnects
//! proxy.wait_connections(2).await; // both clients are back
//! proxy.heal();
//! proxy.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`FaultProxy`] (this file): the handle; every fault is a method on it. [`Faults`] and
//!   [`Stats`] are what it reports.
//! - `conn`: the accept loop and one task per connection, which connects upstream and runs one
//!   pump per direction.
//! - `pump`: one direction of one connection: read, delay, throttle, write — or black-hole.
//! - `rng`: the seeded xorshift64* generator behind jitter.
//! - `ws`: WebSocket frame boundaries of the client → server direction, for
//!   [`FaultProxy::inject_text_frames`].
//! - [`limits`]: every bound, with its unit and why it has its value.
//!
//! # How faults reach connections
//! The settings live in one `tokio::sync::watch` value. Every pump re-reads it whenever it
//! changes, so `drop_all`, `stall` and a new bandwidth apply to data already in flight; latency
//! applies to chunks read after the change (a chunk's delivery time is fixed when it is read).
//! `drop_all` and `stall(true)` bump an epoch in that value: a connection remembers the epochs it
//! was born in, so it is affected by the cuts after its birth and never by older ones.
//!
//! **Invariant:** the bytes of one direction are written in the order they were read; latency,
//! jitter and throttling delay them but never reorder them.
//!
//! **Invariant:** a black-holed connection never forwards another byte, even after
//! `stall(false)` or `heal()`.
//!
//! **Invariant:** memory per connection is bounded by twice [`limits::QUEUE_BYTES_MAX`] plus two
//! chunks; past that the proxy stops reading and the sender feels TCP backpressure.

mod conn;
pub mod limits;
mod pump;
mod rng;
mod ws;

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use conn::{Control, Shared};

/// A running fault proxy. Cheap to clone: clones control the same proxy. The proxy stops when
/// [`FaultProxy::shutdown`] is called or the last clone is dropped.
#[derive(Clone)]
pub struct FaultProxy {
    handle: Arc<Handle>,
}

/// What the clones share. Separate from [`Shared`] (which the tasks hold) so that dropping the
/// last user-facing clone can stop the tasks: they do not keep the proxy alive themselves.
struct Handle {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    accept_task: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.control.send_modify(|c| c.shutdown = true);
    }
}

/// The faults currently configured, as set by the [`FaultProxy`] methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Faults {
    /// Delay added to every chunk, each direction.
    pub latency: Duration,
    /// Upper bound (exclusive) of the uniform random delay added on top of `latency`.
    pub jitter: Duration,
    /// Throttle of each direction of each connection; `None` is unlimited.
    pub bytes_per_s: Option<u64>,
    /// New connections are closed at once.
    pub refuse: bool,
    /// Connections are black holes (existing ones were turned into black holes when it was set).
    pub stall: bool,
}

/// Counters since the proxy started. Byte counts are bytes written to the named endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Connections accepted from clients, refused ones included.
    pub accepted: u64,
    /// Connections closed at once because of [`FaultProxy::refuse`] or
    /// [`limits::CONNECTIONS_MAX`].
    pub refused: u64,
    /// Connections closed because the upstream could not be reached.
    pub upstream_failed: u64,
    /// Connections closed by [`FaultProxy::drop_all`] or shutdown.
    pub dropped: u64,
    /// Connections turned into black holes by [`FaultProxy::stall`].
    pub stalled: u64,
    /// Bytes forwarded from clients to the upstream.
    pub bytes_to_upstream: u64,
    /// Bytes forwarded from the upstream to clients.
    pub bytes_to_client: u64,
    /// Bytes read and thrown away by black holes (including those queued when the stall began).
    pub bytes_discarded: u64,
    /// WebSocket frames injected by [`FaultProxy::inject_text_frames`].
    pub frames_injected: u64,
}

impl FaultProxy {
    /// Listens on `listen` (port 0 picks a free port; see [`FaultProxy::local_addr`]) and forwards
    /// each accepted connection to `upstream`, with no fault until one is set. Jitter uses seed 0
    /// until [`FaultProxy::set_seed`].
    pub async fn start(listen: SocketAddr, upstream: SocketAddr) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind(listen).await?;
        let local_addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(upstream));
        let accept_task = tokio::spawn(conn::accept_loop(listener, shared.clone()));
        tracing::debug!(%local_addr, %upstream, "fault proxy listening");
        Ok(FaultProxy {
            handle: Arc::new(Handle {
                shared,
                local_addr,
                accept_task: Mutex::new(Some(accept_task)),
            }),
        })
    }

    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.local_addr
    }

    /// Where new connections are forwarded.
    pub fn upstream(&self) -> SocketAddr {
        self.control().borrow().upstream
    }

    /// Forwards new connections to `upstream`; existing ones stay where they are.
    pub fn set_upstream(&self, upstream: SocketAddr) {
        // Only the accept loop reads it, when a connection arrives: no need to wake the pumps.
        self.control().send_if_modified(|c| {
            c.upstream = upstream;
            false
        });
    }

    /// Seeds the jitter of connections accepted from now on. Each direction of each connection
    /// draws from its own generator, derived from the seed and the connection's number (its rank
    /// in [`Stats::accepted`]), so a run that opens connections in the same order replays the
    /// same delays whatever the scheduling.
    pub fn set_seed(&self, seed: u64) {
        self.handle.shared.seed.store(seed, Relaxed);
    }

    /// Closes every current connection at once, both sides: each endpoint sees its TCP connection
    /// end (FIN, or RST if it had unread bytes in flight). New connections are not affected.
    pub fn drop_all(&self) {
        self.control()
            .send_modify(|c| c.drop_epoch = c.drop_epoch.wrapping_add(1));
    }

    /// With `on`, turns every current connection and every new one into a black hole, for good:
    /// both sockets stay open but no byte is forwarded either way again (bytes read are thrown
    /// away), like a peer that vanished without a FIN. A new connection accepted while stalled is
    /// not connected upstream at all, as a SYN lost in a partition would not be. With `!on`, new
    /// connections work again; black holes stay black holes until an endpoint closes its side
    /// (then the proxy closes the other) or [`FaultProxy::drop_all`].
    pub fn stall(&self, on: bool) {
        self.control().send_if_modified(|c| {
            c.faults.stall = on;
            if on {
                c.stall_epoch = c.stall_epoch.wrapping_add(1);
            }
            // Turning it off only matters to the accept loop; turning it on must wake the pumps.
            on
        });
    }

    /// Delays each chunk by `base` plus a uniform random `0..jitter`, each direction, never
    /// delivering a chunk before the previous one of its direction. Applies to chunks read from
    /// now on. Each is clamped to [`limits::LATENCY_MS_MAX`].
    pub fn set_latency(&self, base: Duration, jitter: Duration) {
        let max = Duration::from_millis(limits::LATENCY_MS_MAX);
        self.control().send_modify(|c| {
            c.faults.latency = base.min(max);
            c.faults.jitter = jitter.min(max);
        });
    }

    /// Throttles each direction of each connection to `bytes_per_s` (token bucket with a burst of
    /// [`limits::BURST_MS`]); `None` is unlimited. `Some(0)` is taken as unlimited too: a link
    /// that delivers nothing is [`FaultProxy::stall`].
    pub fn set_bandwidth(&self, bytes_per_s: Option<u64>) {
        let bytes_per_s = bytes_per_s.filter(|&rate| rate > 0);
        self.control()
            .send_modify(|c| c.faults.bytes_per_s = bytes_per_s);
    }

    /// Puts `texts`, as complete masked WebSocket text frames (what a client sends), into the
    /// client → server stream of every current connection, once each, at that stream's next
    /// message boundary: after the HTTP upgrade request and at least one whole message from the
    /// client, never inside a frame or a fragmented message, never after the client's close.
    /// To the server they come from the client itself, between its own frames — bad input on a
    /// device's own connection. Connections that are not WebSocket never reach a boundary.
    /// At most [`limits::INJECT_FRAMES_MAX`] texts are taken; a call replaces injections still
    /// waiting for their boundary.
    pub fn inject_text_frames(&self, texts: Vec<String>) {
        let mut texts = texts;
        texts.truncate(limits::INJECT_FRAMES_MAX);
        let texts = Arc::new(texts);
        self.control().send_modify(|c| {
            c.inject_epoch = c.inject_epoch.wrapping_add(1);
            c.inject = texts;
        });
    }

    /// With `on`, new connections are accepted and reset at once, without a byte: the client sees
    /// its connection reset, as from a server that is down. Existing connections are unaffected.
    pub fn refuse(&self, on: bool) {
        self.control().send_if_modified(|c| {
            c.faults.refuse = on;
            false
        });
    }

    /// Removes every fault: no latency, unlimited bandwidth, refuse and stall off. Connections
    /// already black-holed stay so, and chunks already queued keep their delivery time.
    pub fn heal(&self) {
        self.control().send_modify(|c| c.faults = Faults::default());
    }

    /// The faults currently configured.
    pub fn faults(&self) -> Faults {
        self.control().borrow().faults
    }

    /// Connections open now (client side accepted and not yet closed), black holes included.
    pub fn connections(&self) -> usize {
        *self.handle.shared.open.borrow()
    }

    /// Waits until exactly `n` connections are open. Tests use it instead of sleeping: after
    /// `drop_all`, `wait_connections(0)`; after clients reconnect, `wait_connections(k)`. Wrap it
    /// in a timeout: it waits for ever if the count never gets there.
    pub async fn wait_connections(&self, n: usize) {
        let mut open = self.handle.shared.open.subscribe();
        // The sender lives in `shared`, which we hold: `wait_for` cannot fail.
        let _ = open.wait_for(|&open| open == n).await;
    }

    /// The counters since start.
    pub fn stats(&self) -> Stats {
        self.handle.shared.counters.snapshot()
    }

    /// Stops listening, closes every connection and waits until all of them are closed. Other
    /// clones then control a stopped proxy (their calls have no effect).
    pub async fn shutdown(self) {
        self.control().send_modify(|c| c.shutdown = true);
        let task = self
            .handle
            .accept_task
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(task) = task {
            if let Err(error) = task.await {
                if error.is_panic() {
                    // A bug of ours: surface it in the test that shut the proxy down.
                    std::panic::resume_unwind(error.into_panic());
                }
            }
        }
    }

    fn control(&self) -> &tokio::sync::watch::Sender<Control> {
        &self.handle.shared.control
    }
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("local_addr", &self.local_addr())
            .field("upstream", &self.upstream())
            .field("faults", &self.faults())
            .field("connections", &self.connections())
            .finish()
    }
}
