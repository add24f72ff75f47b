//! The SDK's [`Session`] against the server's connection [`Core`] and a real store, on simulated
//! time: two devices type messages while connections drop, storage refuses writes, the send
//! budget refuses sends, frames sit in flight both ways and writes of dropped connections commit
//! late. The faults end with each connection cut while acks are on their way, so the devices
//! resend stored messages that the catch-up then shows them. Then every outbox must drain — a
//! liveness property no single-side test can show (it caught the FIFO guard waiting forever for a
//! blocker the device had seen stored) — and storage must hold every message once, in each
//! sender's order, under the seq its ack named.
//!
//! Both sides are the production code: the session decides what to resend and when, the core
//! decides what to take, refuse and answer. `SURECHAT_MODEL_SEEDS=n` runs more seeds;
//! `MODEL_SEED=n` runs one, and a failure prints each session's state.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use client::session::{Action, Config as SessionConfig, Event, Session};
use protocol::api::ParticipantSpec;
use protocol::frames::{decode_server_frame, ClientFrame, ServerFrame};
use protocol::Role;
use server::auth::Claims;
use server::gateway::core::{Authenticated, Core, Output, Read, StoreOutcome};
use server::gateway::limiter::SendBudget;
use server::store::memory::MemoryStore;
use server::store::{Store, StoreError};
use server::Config;
use testkit::Rng;

const CONVERSATION: &str = "booking-model";
const MESSAGES_PER_DEVICE: usize = 40;
const STEPS_MAX: usize = 60_000;
/// Steps with faults; after them only the send budget refuses.
const FAULT_STEPS: usize = 8_000;

type StoreFuture = Pin<Box<dyn Future<Output = StoreOutcome> + Send>>;

/// What travels from the server to the device: frames, then maybe the close.
enum Down {
    Frame(ServerFrame),
    Close(u16),
}

struct Connection {
    attempt: u64,
    core: Core,
    /// Frames the device wrote, not yet read by the server.
    up: VecDeque<ClientFrame>,
    /// Frames the server wrote, not yet read by the device.
    down: VecDeque<Down>,
    /// Store requests submitted, by ticket, not yet answered.
    pending: Vec<(u64, StoreFuture)>,
    closing: bool,
}

struct Device {
    user: &'static str,
    role: Role,
    session: Session,
    connection: Option<Connection>,
    /// Ids in the order the app sent them, with the seq of their ack.
    sent: Vec<(String, Option<u64>)>,
}

struct Model {
    rng: Rng,
    store: Arc<dyn Store>,
    config: Arc<Config>,
    budget: Arc<SendBudget>,
    now: Instant,
    /// Store futures of connections that are gone: their writes still commit, at some point.
    orphans: Vec<StoreFuture>,
    /// The newest seq stored, and the newest every connection has been woken up to (as the
    /// hub's notices do): a message stored through a connection that is gone reaches the
    /// devices this way.
    latest: u64,
    announced: u64,
}

impl Model {
    /// Carries out what the session and the core ask for until both are quiet.
    async fn pump(&mut self, device: &mut Device) {
        loop {
            let mut busy = false;
            while let Some(action) = device.session.poll_action() {
                busy = true;
                match action {
                    Action::Connect { attempt } => {
                        self.drop_connection(device);
                        let core = Core::new(self.config.clone(), self.budget.clone(), self.now);
                        device.connection = Some(Connection {
                            attempt,
                            core,
                            up: VecDeque::new(),
                            down: VecDeque::new(),
                            pending: Vec::new(),
                            closing: false,
                        });
                        device.session.handle_open(self.now, attempt);
                    }
                    Action::Disconnect => self.drop_connection(device),
                    // The model's devices send no files.
                    Action::Upload(_) | Action::CancelUpload { .. } => {
                        unreachable!("no files in this model")
                    }
                }
            }
            while let Some(event) = device.session.poll_event() {
                busy = true;
                if let Event::Message(m) = event {
                    if m.status.is_none() && self.rng.chance(50) {
                        device.session.mark_read(self.now, CONVERSATION);
                    }
                }
            }
            // Transmits are polled after the events are "stored" (this model's device storage
            // never fails).
            while let Some(frame) = device.session.poll_transmit() {
                busy = true;
                if let Some(c) = device.connection.as_mut().filter(|c| !c.closing) {
                    c.up.push_back(frame);
                }
            }
            if let Some(c) = device.connection.as_mut() {
                while let Some(output) = c.core.poll_output() {
                    busy = true;
                    self.output(device.user, device.role, c, output).await;
                }
                let queued = c.core.queued_bytes();
                c.core.handle_written(self.now, queued);
            }
            if !busy {
                return;
            }
        }
    }

    async fn output(&mut self, user: &str, role: Role, c: &mut Connection, output: Output) {
        match output {
            Output::Send(text) => {
                let frame = decode_server_frame(text.as_str()).expect("valid frames");
                c.down.push_back(Down::Frame(frame));
            }
            Output::Authenticate { .. } => {
                let states = self.store.conversation_states_of(user.into()).await;
                let authenticated = Authenticated {
                    claims: Claims {
                        sub: user.into(),
                        role,
                        exp: u64::MAX,
                        iat: 0,
                        nbf: None,
                        scope: None,
                    },
                    token_expires: self.now + Duration::from_secs(3600),
                    connection_id: c.attempt,
                    states,
                    presence: vec![],
                };
                c.core.handle_welcome(self.now, authenticated);
            }
            Output::Append { ticket, request } => {
                let refused = FAULTS.with(|f| *f.borrow()) && self.rng.chance(8);
                let future: StoreFuture = if refused {
                    Box::pin(async {
                        StoreOutcome::Appended(Err(StoreError::Unavailable("injected".into())))
                    })
                } else {
                    let pending = self.store.append(request);
                    Box::pin(async move { StoreOutcome::Appended(pending.await) })
                };
                c.pending.push((ticket, future));
            }
            Output::Receipt { ticket, request } => {
                let pending = self.store.record_receipt(request);
                c.pending.push((
                    ticket,
                    Box::pin(async move { StoreOutcome::Receipt(pending.await) }),
                ));
            }
            Output::Read(Read::Page {
                conversation,
                after,
                limit,
            }) => {
                let page = self
                    .store
                    .messages_since(conversation.clone(), after, limit)
                    .await;
                c.core.handle_page(&conversation, page);
            }
            Output::Read(Read::Conversation(id)) => {
                let view = self.store.conversation(id.clone()).await;
                c.core.handle_conversation(&id, view);
            }
            Output::Read(Read::States) => {
                let states = self.store.conversation_states_of(user.into()).await;
                c.core.handle_states(states);
            }
            Output::Close(ending) => {
                c.closing = true;
                c.down.push_back(Down::Close(ending.code));
            }
            _ => {}
        }
    }

    /// The connection is gone without a word (its store requests still commit).
    fn drop_connection(&mut self, device: &mut Device) {
        if let Some(gone) = device.connection.take() {
            self.orphans
                .extend(gone.pending.into_iter().map(|(_, f)| f));
        }
    }

    /// One random step of one device.
    async fn step(&mut self, device: &mut Device, faults: bool, sending: bool) {
        let choice = self.rng.below(100);
        match device.connection.as_mut() {
            Some(c) if faults && choice < 5 => {
                let attempt = c.attempt;

                self.drop_connection(device);
                device.session.handle_close(self.now, attempt, None);
            }
            _ if choice < 20 => {
                // Typing is spread over the fault phase and beyond.
                if sending && device.sent.len() < MESSAGES_PER_DEVICE && self.rng.chance(4) {
                    let id = uuid::Uuid::new_v4().to_string();
                    let body = format!("{} {}", device.user, device.sent.len());
                    device
                        .session
                        .send(self.now, id.clone(), CONVERSATION, &body, None);
                    device.sent.push((id, None));
                }
            }
            Some(c) if choice < 45 && !c.up.is_empty() => {
                let frame = c.up.pop_front().expect("checked");
                c.core.handle_text(self.now, &frame.encode());
            }
            Some(c) if choice < 70 && !c.down.is_empty() => {
                let attempt = c.attempt;
                match c.down.pop_front().expect("checked") {
                    Down::Frame(frame) => {
                        if let ServerFrame::Ack(ack) = &frame {
                            if let Some(entry) = device.sent.iter_mut().find(|s| s.0 == ack.id) {
                                assert!(
                                    entry.1.is_none_or(|seq| seq == ack.seq),
                                    "one id, one seq"
                                );
                                entry.1 = Some(ack.seq);
                            }
                        }
                        device.session.handle_frame(self.now, frame);
                    }
                    Down::Close(code) => {
                        device.connection = None;
                        device.session.handle_close(self.now, attempt, Some(code));
                    }
                }
            }
            Some(c) if choice < 85 && !c.pending.is_empty() => {
                // The store answers one request (commits happened in submission order).
                let (ticket, future) = c.pending.remove(self.rng.below(c.pending.len()));
                let outcome = future.await;
                if let StoreOutcome::Appended(Ok(appended)) = &outcome {
                    self.latest = self.latest.max(appended.message.seq);
                }
                c.core.handle_stored(self.now, ticket, outcome);
            }
            _ if choice < 88 && !self.orphans.is_empty() => {
                // A write of a connection that is gone commits (its answer is lost).
                let future = self.orphans.remove(0);
                if let StoreOutcome::Appended(Ok(appended)) = future.await {
                    self.latest = self.latest.max(appended.message.seq);
                }
            }
            _ => {
                self.now += Duration::from_millis(self.rng.below(120) as u64);
                if let Some(c) = device.connection.as_mut() {
                    c.core.handle_timeout(self.now);
                }
                if device
                    .session
                    .poll_timeout()
                    .is_some_and(|at| at <= self.now)
                {
                    device.session.handle_timeout(self.now);
                }
            }
        }
        self.pump(device).await;
    }
}

/// Wakes every connection up to the newest seq, as the hub's notices do after a commit.
fn announce(model: &mut Model, devices: &mut [Device]) {
    if model.latest == model.announced {
        return;
    }
    model.announced = model.latest;
    for device in devices.iter_mut() {
        if let Some(c) = device.connection.as_mut() {
            c.core.handle_notice(server::hub::HubEvent::Wake {
                conversation: CONVERSATION.into(),
                seq: model.latest,
            });
        }
    }
}

thread_local! {
    /// Whether storage refuses writes now and then (the fault phase).
    static FAULTS: std::cell::RefCell<bool> = const { std::cell::RefCell::new(true) };
}

async fn run(seed: u64) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let participants = vec![
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
    ];
    store
        .create_conversation(CONVERSATION.into(), participants, 32, 0)
        .await
        .unwrap();
    // A budget well below the rate the devices type at, as in `surechat chaos --refusals`.
    let config = Config {
        sends_burst_max: 2,
        sends_per_second_max: 1,
        heartbeat_interval_ms: 3_600_000,
        ..Config::default()
    };
    let budget = Arc::new(SendBudget::new(
        config.sends_burst_max,
        config.sends_per_second_max,
    ));
    let mut model = Model {
        rng: Rng(seed),
        store: store.clone(),
        config: Arc::new(config),
        budget,
        now: Instant::now(),
        orphans: Vec::new(),
        latest: 0,
        announced: 0,
    };
    let session_config = SessionConfig {
        backoff_first_ms: 100,
        backoff_base_ms: 200,
        backoff_cap_ms: 2_000,
        ..SessionConfig::default()
    };
    let mut devices: Vec<Device> = [("ana", Role::Client), ("olga", Role::Operator)]
        .into_iter()
        .map(|(user, role)| {
            let mut session = Session::new(session_config.clone(), "token");
            session.connect(model.now);
            Device {
                user,
                role,
                session,
                connection: None,
                sent: Vec::new(),
            }
        })
        .collect();
    for device in &mut devices {
        model.pump(device).await;
    }
    let done = |devices: &[Device]| {
        devices.iter().all(|d| {
            // An outbox entry also leaves when the message comes back in a catch-up after a
            // lost ack; storage is checked below.
            d.sent.len() == MESSAGES_PER_DEVICE && d.session.pending_count() == 0
        })
    };
    let mut steps = 0;
    let mut final_cut = [false; 2];
    while !done(&devices) {
        steps += 1;
        if steps >= STEPS_MAX {
            let states: Vec<String> = devices
                .iter()
                .map(|d| format!("{}: {}", d.user, d.session.describe(model.now)))
                .collect();
            panic!(
                "seed {seed}: the outboxes did not drain in {STEPS_MAX} steps\n{}",
                states.join("\n")
            );
        }
        let faults = steps < FAULT_STEPS;
        FAULTS.with(|f| *f.borrow_mut() = faults);
        // The faults end with each device's connection cut while at least two acks are on
        // their way to it: the device resends messages that are stored, on a new connection,
        // while the catch-up shows them to it, and the send budget refuses some of the copies.
        if !faults {
            for (d, device) in devices.iter_mut().enumerate() {
                let lost_acks = device.connection.as_ref().map_or(0, |c| {
                    c.down
                        .iter()
                        .filter(|d| matches!(d, Down::Frame(ServerFrame::Ack(_))))
                        .count()
                });
                if !final_cut[d] && lost_acks >= 2 {
                    final_cut[d] = true;
                    let attempt = device.connection.as_ref().expect("connected").attempt;
                    model.drop_connection(device);
                    device.session.handle_close(model.now, attempt, None);
                    model.pump(device).await;
                }
            }
        }
        let d = model.rng.below(devices.len());
        model.step(&mut devices[d], faults, true).await;
        announce(&mut model, &mut devices);
        for device in &mut devices {
            model.pump(device).await;
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
            .sent
            .iter()
            .map(|(id, _)| {
                *by_id
                    .get(id.as_str())
                    .unwrap_or_else(|| panic!("seed {seed}: {id} left the outbox unstored"))
            })
            .collect();
        for (i, pair) in seqs.windows(2).enumerate() {
            assert!(
                pair[0] < pair[1],
                "seed {seed}: {}'s messages {i} and {} stored at seqs {} and {}",
                device.user,
                i + 1,
                pair[0],
                pair[1]
            );
        }
        for ((id, acked), seq) in device.sent.iter().zip(&seqs) {
            assert!(
                acked.is_none_or(|a| a == *seq),
                "seed {seed}: {id} acked at {acked:?}, stored at {seq}"
            );
        }
    }
}

#[tokio::test]
async fn outboxes_drain_in_order_under_refusals() {
    let seeds: u64 = std::env::var("SURECHAT_MODEL_SEEDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(120);
    let only: Option<u64> = std::env::var("MODEL_SEED")
        .ok()
        .and_then(|s| s.parse().ok());
    for seed in 0..seeds {
        if only.is_none_or(|o| o == seed) {
            run(seed).await;
        }
    }
}
