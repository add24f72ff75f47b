//! The accept loop and the task of one connection.
//!
//! The accept loop decides a connection's fate on arrival (refused, black hole, or forwarded) from
//! one snapshot of the settings, then spawns its task. The task connects upstream and runs the two
//! pumps (client → upstream, upstream → client) side by side until both are done, or until one
//! ends the whole connection.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::limits::{ACCEPT_BACKOFF_MS, CONNECTIONS_MAX, UPSTREAM_CONNECT_TIMEOUT_MS};
use crate::pump::{self, Direction, Outcome, Pump};
use crate::rng::{splitmix64, Rng};
use crate::{Faults, Stats};

/// Everything the handle sets and the tasks read, in one watch value so that a task wakes on any
/// change with a single `changed()`.
#[derive(Debug, Clone)]
pub(crate) struct Control {
    pub upstream: SocketAddr,
    pub faults: Faults,
    /// Bumped by each `drop_all`.
    pub drop_epoch: u64,
    /// Bumped by each `stall(true)`.
    pub stall_epoch: u64,
    /// Set once, by `shutdown` or by dropping the last handle.
    pub shutdown: bool,
    /// Bumped by each `inject_text_frames`, which sets `inject`.
    pub inject_epoch: u64,
    /// The texts of the latest `inject_text_frames`.
    pub inject: Arc<Vec<String>>,
}

/// The epochs a connection was born in: later cuts apply to it, earlier ones do not.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Epochs {
    drop: u64,
    stall: u64,
    /// Injections up to this one were asked for before the connection's birth.
    pub inject: u64,
}

impl Epochs {
    fn of(control: &Control) -> Self {
        Epochs {
            drop: control.drop_epoch,
            stall: control.stall_epoch,
            inject: control.inject_epoch,
        }
    }

    /// Whether the connection must close now: `drop_all` or shutdown since its birth.
    pub(crate) fn cut_by(&self, control: &Control) -> bool {
        control.shutdown || control.drop_epoch != self.drop
    }

    /// Whether the connection must become a black hole: `stall(true)` since its birth.
    pub(crate) fn stalled_by(&self, control: &Control) -> bool {
        control.stall_epoch != self.stall
    }
}

/// State shared by the handle, the accept loop and every connection task.
pub(crate) struct Shared {
    pub control: watch::Sender<Control>,
    /// Open connections, in a watch so that tests can await a count instead of polling.
    pub open: watch::Sender<usize>,
    pub counters: Counters,
    pub seed: AtomicU64,
}

impl Shared {
    pub(crate) fn new(upstream: SocketAddr) -> Self {
        let control = Control {
            upstream,
            faults: Faults::default(),
            drop_epoch: 0,
            stall_epoch: 0,
            shutdown: false,
            inject_epoch: 0,
            inject: Arc::default(),
        };
        Shared {
            control: watch::Sender::new(control),
            open: watch::Sender::new(0),
            counters: Counters::default(),
            seed: AtomicU64::new(0),
        }
    }
}

/// The live counters behind [`Stats`]. Relaxed: each is an independent tally, read for reports.
#[derive(Default)]
pub(crate) struct Counters {
    pub accepted: AtomicU64,
    pub refused: AtomicU64,
    pub upstream_failed: AtomicU64,
    pub dropped: AtomicU64,
    pub stalled: AtomicU64,
    pub bytes_to_upstream: AtomicU64,
    pub bytes_to_client: AtomicU64,
    pub bytes_discarded: AtomicU64,
    pub frames_injected: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            accepted: self.accepted.load(Relaxed),
            refused: self.refused.load(Relaxed),
            upstream_failed: self.upstream_failed.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            stalled: self.stalled.load(Relaxed),
            bytes_to_upstream: self.bytes_to_upstream.load(Relaxed),
            bytes_to_client: self.bytes_to_client.load(Relaxed),
            bytes_discarded: self.bytes_discarded.load(Relaxed),
            frames_injected: self.frames_injected.load(Relaxed),
        }
    }
}

/// Accepts connections until shutdown, then stops listening and waits for every connection task
/// to close its sockets.
pub(crate) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut control = shared.control.subscribe();
    let mut tasks = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            biased;
            _ = control.wait_for(|c| c.shutdown) => break,
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                propagate_panic(done);
                continue;
            }
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((client, peer)) => admit(client, peer, &shared, &mut tasks),
            Err(error) => {
                tracing::warn!(%error, "fault proxy: accept failed");
                tokio::time::sleep(Duration::from_millis(ACCEPT_BACKOFF_MS)).await;
            }
        }
    }
    drop(listener);
    // Every task sees `shutdown` and closes its sockets promptly.
    while let Some(done) = tasks.join_next().await {
        propagate_panic(done);
    }
    tracing::debug!("fault proxy stopped");
}

/// A panic in a connection task is a bug of ours; let it reach whoever awaits the proxy.
fn propagate_panic(done: Result<(), tokio::task::JoinError>) {
    if let Err(error) = done {
        if error.is_panic() {
            std::panic::resume_unwind(error.into_panic());
        }
    }
}

/// Decides the fate of a new connection and spawns its task.
fn admit(client: TcpStream, peer: SocketAddr, shared: &Arc<Shared>, tasks: &mut JoinSet<()>) {
    let number = shared.counters.accepted.fetch_add(1, Relaxed);
    let mut control = shared.control.subscribe();
    let snapshot = control.borrow_and_update().clone();
    let open = *shared.open.borrow();
    if snapshot.faults.refuse || open >= CONNECTIONS_MAX {
        shared.counters.refused.fetch_add(1, Relaxed);
        if !snapshot.faults.refuse {
            tracing::warn!(%peer, limit = CONNECTIONS_MAX, "fault proxy: too many connections");
        }
        // A zero linger turns the close into a reset: what a client sees from a server that is
        // down, and no FIN handshake left for the test to wait on.
        let _ = client.set_zero_linger();
        drop(client);
        return;
    }
    // Small WebSocket frames must not wait for Nagle: the proxy adds only the delay it is told to.
    let _ = client.set_nodelay(true);
    shared.open.send_modify(|open| *open += 1);
    let guard = OpenGuard(shared.clone());
    let born = Connection {
        number,
        peer,
        upstream: snapshot.upstream,
        epochs: Epochs::of(&snapshot),
        seed: shared.seed.load(Relaxed),
        stalled: snapshot.faults.stall,
    };
    tasks.spawn(async move {
        let shared = &guard.0;
        let outcome = born.run(client, control, shared).await;
        tracing::debug!(number, %peer, ?outcome, "fault proxy: connection closed");
        if outcome == Outcome::Dropped {
            shared.counters.dropped.fetch_add(1, Relaxed);
        }
    });
}

/// Counts a connection as open for as long as it lives, even if its task is aborted.
struct OpenGuard(Arc<Shared>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.send_modify(|open| *open -= 1);
    }
}

/// What the accept loop decided about a connection when it arrived.
struct Connection {
    /// Rank among accepted connections; with the seed, it names the jitter sequence.
    number: u64,
    peer: SocketAddr,
    upstream: SocketAddr,
    epochs: Epochs,
    seed: u64,
    /// Born during a stall: a black hole from the start, never connected upstream.
    stalled: bool,
}

impl Connection {
    async fn run(
        self,
        client: TcpStream,
        mut control: watch::Receiver<Control>,
        shared: &Shared,
    ) -> Outcome {
        tracing::debug!(number = self.number, peer = %self.peer, upstream = %self.upstream, "fault proxy: connection");
        if self.stalled {
            shared.counters.stalled.fetch_add(1, Relaxed);
            return pump::black_hole(client, control, self.epochs, shared).await;
        }
        let connect = tokio::time::timeout(
            Duration::from_millis(UPSTREAM_CONNECT_TIMEOUT_MS),
            TcpStream::connect(self.upstream),
        );
        let upstream = tokio::select! {
            connected = connect => connected,
            _ = control.wait_for(|c| self.epochs.cut_by(c)) => return Outcome::Dropped,
        };
        let upstream = match upstream {
            Ok(Ok(upstream)) => upstream,
            Ok(Err(error)) => return self.upstream_failed(shared, &error.to_string()),
            Err(_elapsed) => return self.upstream_failed(shared, "timed out"),
        };
        let _ = upstream.set_nodelay(true);

        let (client_read, client_write) = client.into_split();
        let (upstream_read, upstream_write) = upstream.into_split();
        // Both pumps turn into black holes on the same stall; the connection counts once.
        let black_holed = AtomicBool::new(false);
        let pump = |direction: Direction| Pump {
            direction,
            epochs: self.epochs,
            rng: Rng::new(self.seed ^ splitmix64(self.number.wrapping_mul(2) + direction as u64)),
            shared,
            black_holed: &black_holed,
        };
        let to_upstream =
            pump(Direction::ToUpstream).run(client_read, upstream_write, control.clone());
        let to_client = pump(Direction::ToClient).run(upstream_read, client_write, control);
        tokio::pin!(to_upstream, to_client);
        // A half-close travels on and the other direction keeps going; anything else ends the
        // connection, and returning drops the other pump, which closes its sockets.
        tokio::select! {
            first = &mut to_upstream => match first {
                Outcome::HalfClosed => to_client.await,
                ended => ended,
            },
            first = &mut to_client => match first {
                Outcome::HalfClosed => to_upstream.await,
                ended => ended,
            },
        }
    }

    fn upstream_failed(&self, shared: &Shared, error: &str) -> Outcome {
        shared.counters.upstream_failed.fetch_add(1, Relaxed);
        tracing::debug!(number = self.number, upstream = %self.upstream, %error, "fault proxy: upstream unreachable");
        Outcome::Closed
    }
}
