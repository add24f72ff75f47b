//! Model-based test of FIFO per sender: random sends, refusals of every kind (rate limit, storage
//! failures, the FIFO guard's own `out_of_order`), bad frames, pipelining and reconnects, run
//! against the connection core and every store, then compared with the contract: every message
//! of a device's outbox is stored exactly once, and for A before B in one outbox,
//! `seq(A) < seq(B)`.
//!
//! The devices follow `docs/protocol.md` §5 to the letter: after a transient refusal of a
//! message, resend it and every later message, in order, with the same ids, pipelined (after
//! `retry_after_ms` for `rate_limited`). The seed is printed on failure.

mod common;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Backend;
use protocol::api::ParticipantSpec;
use protocol::frames::{decode_server_frame, ClientFrame, ServerFrame};
use protocol::{ErrorCode, Role};
use server::auth::Claims;
use server::gateway::core::{Authenticated, Core, Output, StoreOutcome};
use server::store::{Store, StoreError};
use server::Config;
use testkit::Rng;

const CONVERSATION: &str = "booking-model";
const MESSAGES_PER_DEVICE: usize = 40;
const STEPS_MAX: usize = 20_000;

/// `MODEL_TRACE=1 MODEL_SEED=n` prints what the client device does and is answered, for one seed.
macro_rules! trace {
    ($device:expr, $($arg:tt)*) => {
        if $device.user == "ana" && std::env::var_os("MODEL_TRACE").is_some() {
            eprintln!($($arg)*);
        }
    };
}

type StoreFuture = Pin<Box<dyn Future<Output = StoreOutcome> + Send>>;

/// One device: its outbox, and the connection it has now.
struct Device {
    user: &'static str,
    role: Role,
    ids: Vec<String>,
    acked: Vec<Option<u64>>,
    /// The next outbox position to (re)send.
    next: usize,
    /// Not before this time (after `rate_limited`).
    not_before: Instant,
    connection: Option<Connection>,
}

struct Connection {
    core: Core,
    /// Store requests submitted, by ticket, not yet answered.
    pending: Vec<(u64, StoreFuture)>,
    /// Sends written on this connection and not answered.
    in_flight: usize,
}

struct Model {
    rng: Rng,
    store: Arc<dyn Store>,
    config: Arc<Config>,
    now: Instant,
    /// Futures of connections that are gone: their writes still commit, nobody reads them.
    orphans: Vec<StoreFuture>,
}

impl Model {
    async fn connect(&mut self, device: &mut Device) {
        let budget = Arc::new(server::gateway::limiter::SendBudget::new(
            self.config.sends_burst_max,
            self.config.sends_per_second_max,
        ));
        let mut core = Core::new(self.config.clone(), budget, self.now);
        let hello = r#"{"type":"hello","v":1,"token":"t","cursors":[]}"#;
        core.handle_text(self.now, hello);
        assert!(matches!(
            core.poll_output(),
            Some(Output::Authenticate { .. })
        ));
        let states = self.store.conversation_states_of(device.user.into()).await;
        core.handle_welcome(
            self.now,
            Authenticated {
                claims: Claims {
                    sub: device.user.into(),
                    role: device.role,
                    exp: u64::MAX,
                    iat: 0,
                    nbf: None,
                    scope: None,
                },
                token_expires: self.now + Duration::from_secs(3600),
                connection_id: 1,
                states,
                presence: vec![],
            },
        );
        // Resend from the first message not acknowledged, as after any reconnect.
        device.next = device
            .acked
            .iter()
            .position(Option::is_none)
            .unwrap_or(device.ids.len());
        device.connection = Some(Connection {
            core,
            pending: Vec::new(),
            in_flight: 0,
        });
        self.pump(device).await;
    }

    /// Carries out the core's outputs and hands every frame to the device.
    async fn pump(&mut self, device: &mut Device) {
        loop {
            let Some(connection) = device.connection.as_mut() else {
                return;
            };
            let Some(output) = connection.core.poll_output() else {
                return;
            };
            match output {
                Output::Send(text) => {
                    let frame = decode_server_frame(text.as_str()).expect("valid frames");
                    self.device_reads(device, frame);
                }
                Output::Append { ticket, request } => {
                    let pos = |id: &str| device.ids.iter().position(|i| i == id);
                    trace!(
                        device,
                        "  append {:?} after {:?}",
                        pos(&request.id),
                        request.after.as_deref().map(pos)
                    );
                    // A storage failure: the write is not committed (as a failed batch).
                    let future: StoreFuture = if self.rng.chance(8) {
                        Box::pin(async {
                            StoreOutcome::Appended(Err(StoreError::Unavailable("injected".into())))
                        })
                    } else {
                        let pending = self.store.append(request);
                        Box::pin(async move { StoreOutcome::Appended(pending.await) })
                    };
                    connection.pending.push((ticket, future));
                }
                Output::Receipt { ticket, request } => {
                    let pending = self.store.record_receipt(request);
                    connection.pending.push((
                        ticket,
                        Box::pin(async move { StoreOutcome::Receipt(pending.await) }),
                    ));
                }
                Output::Read(read) => {
                    let core = &mut connection.core;
                    match read {
                        server::gateway::core::Read::Page {
                            conversation,
                            after,
                            limit,
                        } => {
                            let page = self
                                .store
                                .messages_since(conversation.clone(), after, limit)
                                .await;
                            core.handle_page(&conversation, page);
                        }
                        server::gateway::core::Read::Conversation(id) => {
                            let view = self.store.conversation(id.clone()).await;
                            core.handle_conversation(&id, view);
                        }
                        server::gateway::core::Read::States => {
                            let states =
                                self.store.conversation_states_of(device.user.into()).await;
                            core.handle_states(states);
                        }
                    }
                }
                Output::Close(_) => {
                    let gone = device.connection.take().expect("connected");
                    self.orphans
                        .extend(gone.pending.into_iter().map(|(_, f)| f));
                }
                _ => {}
            }
            // Everything queued is written at once in this model (no slow reader here).
            if let Some(connection) = device.connection.as_mut() {
                let queued = connection.core.queued_bytes();
                connection.core.handle_written(self.now, queued);
            }
        }
    }

    fn device_reads(&mut self, device: &mut Device, frame: ServerFrame) {
        let position = |id: &str| device.ids.iter().position(|i| i == id);
        match &frame {
            ServerFrame::Ack(a) => trace!(device, "  ack {:?} seq {}", position(&a.id), a.seq),
            ServerFrame::Error(e) => trace!(
                device,
                "  error {:?} {}",
                e.reference.as_deref().and_then(position),
                e.code.as_str()
            ),
            _ => {}
        }
        match frame {
            ServerFrame::Ack(ack) => {
                let i = position(&ack.id).expect("an ack for one of ours");
                if let Some(seq) = device.acked[i] {
                    assert_eq!(seq, ack.seq, "one id, one seq");
                }
                device.acked[i] = Some(ack.seq);
                if let Some(c) = device.connection.as_mut() {
                    c.in_flight = c.in_flight.saturating_sub(1);
                }
            }
            ServerFrame::Error(error) => {
                let Some(i) = error.reference.as_deref().and_then(position) else {
                    return; // a bad frame's answer
                };
                if let Some(c) = device.connection.as_mut() {
                    c.in_flight = c.in_flight.saturating_sub(1);
                }
                assert!(!error.code.is_permanent(), "{error:?}");
                // Resend it and every later message, in order (already stored ones are acked).
                device.next = device.next.min(i);
                if error.code == ErrorCode::RateLimited {
                    let wait = Duration::from_millis(error.retry_after_ms.unwrap_or(0));
                    device.not_before = device.not_before.max(self.now + wait);
                }
            }
            _ => {}
        }
    }

    /// One random step of one device.
    async fn step(&mut self, device: &mut Device, faults: bool) {
        if device.connection.is_none() {
            return self.connect(device).await;
        }
        let choice = self.rng.below(100);
        let connection = device.connection.as_mut().expect("connected");
        if faults && choice < 3 {
            // The connection drops.
            trace!(device, "connection dropped");
            let gone = device.connection.take().expect("connected");
            self.orphans
                .extend(gone.pending.into_iter().map(|(_, f)| f));
            return;
        }
        if faults && choice < 8 {
            connection.core.handle_text(self.now, "{not json");
        } else if choice < 55 {
            // Send the next message, pipelined up to a window.
            if device.next < device.ids.len()
                && self.now >= device.not_before
                && connection.in_flight < 8
            {
                let i = device.next;
                device.next += 1;
                let send = ClientFrame::Send(protocol::frames::Send {
                    id: device.ids[i].clone(),
                    conversation: CONVERSATION.into(),
                    body: format!("{} {i}", device.user),
                    kind: Default::default(),
                    attachments: Vec::new(),
                });
                connection.in_flight += 1;
                trace!(device, "send {i}");
                connection.core.handle_text(self.now, &send.encode());
            }
        } else if !connection.pending.is_empty() {
            // The store answers one request (the store's own order of commits is untouched: the
            // writes were submitted when output).
            let (ticket, future) = connection
                .pending
                .remove(self.rng.below(connection.pending.len()));
            let outcome = future.await;
            if let StoreOutcome::Appended(r) = &outcome {
                let r = r.as_ref().map(|a| a.message.seq).map_err(|e| e.code());
                trace!(device, "  store answers ticket {ticket}: {r:?}");
            }
            connection.core.handle_stored(self.now, ticket, outcome);
        } else {
            self.now += Duration::from_millis(self.rng.below(200) as u64);
            connection.core.handle_timeout(self.now);
        }
        self.pump(device).await;
    }
}

async fn run(backend: Backend, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let (store, _keep) = backend.store(dir.path()).await;
    store
        .create_conversation(
            CONVERSATION.into(),
            vec![
                ParticipantSpec {
                    user_id: "ana".into(),
                    role: Role::Client,
                    email: None,
                },
                ParticipantSpec {
                    user_id: "olga".into(),
                    role: Role::Operator,
                    email: None,
                },
            ],
            32,
            0,
        )
        .await
        .unwrap();
    let config = Config {
        sends_burst_max: 4,
        sends_per_second_max: 20,
        heartbeat_interval_ms: 3_600_000,
        ..Config::default()
    };
    let mut model = Model {
        rng: Rng(seed),
        store: store.clone(),
        config: Arc::new(config),
        now: Instant::now(),
        orphans: Vec::new(),
    };
    let mut devices: Vec<Device> = [("ana", Role::Client), ("olga", Role::Operator)]
        .into_iter()
        .map(|(user, role)| Device {
            user,
            role,
            ids: (0..MESSAGES_PER_DEVICE)
                .map(|_| uuid::Uuid::new_v4().to_string())
                .collect(),
            acked: vec![None; MESSAGES_PER_DEVICE],
            next: 0,
            not_before: model.now,
            connection: None,
        })
        .collect();
    if let Some(only) = std::env::var("MODEL_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        if only != seed {
            return;
        }
    }
    let done = |devices: &[Device]| devices.iter().all(|d| d.acked.iter().all(Option::is_some));
    let mut steps = 0;
    while !done(&devices) {
        steps += 1;
        assert!(
            steps < STEPS_MAX,
            "seed {seed}: no convergence in {STEPS_MAX} steps"
        );
        // Faults for the first half; then only the rate limit and the guard refuse.
        let faults = steps < STEPS_MAX / 4;
        let d = model.rng.below(devices.len());
        model.step(&mut devices[d], faults).await;
        if model.rng.chance(5) {
            model.now += Duration::from_millis(100);
        }
    }
    for orphan in model.orphans.drain(..) {
        orphan.await;
    }
    let stored = store
        .messages_since(CONVERSATION.into(), 0, 10_000)
        .await
        .unwrap();
    let by_id: HashMap<&str, u64> = stored.iter().map(|m| (m.id.as_str(), m.seq)).collect();
    assert_eq!(by_id.len(), stored.len(), "seed {seed}: an id stored twice");
    for device in &devices {
        let seqs: Vec<u64> = device
            .ids
            .iter()
            .map(|id| {
                *by_id
                    .get(id.as_str())
                    .unwrap_or_else(|| panic!("seed {seed}: {id} acked but not stored"))
            })
            .collect();
        for (i, pair) in seqs.windows(2).enumerate() {
            assert!(
                pair[0] < pair[1],
                "seed {seed}: {}'s outbox positions {i} and {} stored at seqs {} and {}",
                device.user,
                i + 1,
                pair[0],
                pair[1]
            );
        }
        let acked: Vec<u64> = device.acked.iter().map(|a| a.unwrap()).collect();
        assert_eq!(acked, seqs, "seed {seed}: acks name the stored seqs");
    }
    assert_eq!(stored.len(), 2 * MESSAGES_PER_DEVICE, "seed {seed}");
}

/// Runs `seeds`, or as many more as `SURECHAT_MODEL_SEEDS` says (e.g. 100000 for a long run).
async fn many_seeds(backend: Backend, seeds: std::ops::Range<u64>) {
    let count = std::env::var("SURECHAT_MODEL_SEEDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(seeds.end - seeds.start);
    for seed in seeds.start..seeds.start + count {
        run(backend, seed).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_per_sender_holds_under_refusals_memory() {
    many_seeds(Backend::Memory, 0..500).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_per_sender_holds_under_refusals_sqlite() {
    many_seeds(Backend::Sqlite, 1000..1010).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_per_sender_holds_under_refusals_postgres() {
    many_seeds(Backend::Postgres, 2000..2010).await;
}
