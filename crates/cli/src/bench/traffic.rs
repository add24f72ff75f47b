//! Conversations with a connected client and operator sending to each other: as fast as the
//! window allows (`throughput`) or at a fixed total rate (`latency`). Each pair is one task that
//! owns both devices, so every timestamp of a message (send, ack, receive, receipt) is read on
//! one clock in one place.
//!
//! Latencies are measured from the *scheduled* send time: when a pair falls behind its schedule,
//! the delay counts (no coordinated omission).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use client::{DeliveryStatus, Event};
use protocol::Role;
use tokio::sync::{mpsc, watch};

use super::device::{self, Link};
use super::stats::{record, Latencies, Timeline};
use super::target::{Node, Target};
use super::usage::{self, Usage};

/// How long the last messages may take to complete after sending stopped.
const DRAIN: Duration = Duration::from_secs(10);

/// How long connecting every pair may take.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How a pair sends.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// Both sides keep `window` messages unacknowledged at all times.
    Flat,
    /// The pairs together send `rate` messages per second, evenly spaced.
    Rate(f64),
}

/// How the devices make message ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Ids {
    /// Time-ordered (UUIDv7), as both SDKs make them: the storage's unique index of ids grows at
    /// its end.
    Ordered,
    /// Random (UUIDv4): every id lands at a random place of that index.
    Random,
}

impl Ids {
    /// A fresh message id.
    pub fn new_id(self) -> String {
        match self {
            Ids::Ordered => uuid::Uuid::now_v7().to_string(),
            Ids::Random => uuid::Uuid::new_v4().to_string(),
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub pairs: usize,
    pub window: usize,
    pub body_bytes: usize,
    pub duration: Duration,
    pub mode: Mode,
    pub ids: Ids,
}

/// What the pairs measured together.
#[derive(Default)]
pub struct Outcome {
    pub latencies: Latencies,
    pub timeline: Timeline,
    /// Messages sent (scheduled) before the end.
    pub sent: u64,
    /// Messages whose receipt came back before the end of the sending window.
    pub completed_in_window: u64,
    /// Messages whose receipt came back at all.
    pub completed: u64,
    /// Messages refused for good.
    pub failed: u64,
    /// Messages still incomplete after the drain.
    pub incomplete: u64,
    /// What the servers spent, from the start of sending until the last completion.
    pub usage: Option<Usage>,
}

impl Outcome {
    fn merge(&mut self, other: Outcome) {
        self.latencies.merge(&other.latencies);
        self.timeline.merge(&other.timeline);
        self.sent += other.sent;
        self.completed_in_window += other.completed_in_window;
        self.completed += other.completed;
        self.failed += other.failed;
        self.incomplete += other.incomplete;
    }
}

/// Creates the conversations, connects every pair, runs them together and merges what they saw.
/// With several nodes, pair `i`'s client connects to node `i` and its operator to node `i + 1`
/// (modulo the count): every message crosses nodes, as behind a load balancer that places the
/// two sides independently, and each node carries as many clients as operators.
pub async fn run(
    target: &Target,
    options: &Options,
    progress: Arc<AtomicU64>,
) -> anyhow::Result<Outcome> {
    let run = super::run_id();
    let names: Vec<(String, String, String)> = (0..options.pairs)
        .map(|i| {
            (
                format!("bench-{run}-{i}"),
                format!("bench-{run}-c{i}"),
                format!("bench-{run}-o{i}"),
            )
        })
        .collect();
    target.create_conversations(names.clone()).await?;
    let (ready_tx, mut ready_rx) = mpsc::channel(options.pairs.max(1));
    let (start_tx, start_rx) = watch::channel(None::<Instant>);
    let mut tasks = Vec::new();
    for (index, (conversation, client, operator)) in names.into_iter().enumerate() {
        let links = [
            new_link(
                target,
                target.node(index),
                &client,
                Role::Client,
                options,
                index as u64 * 2,
            ),
            new_link(
                target,
                target.node(index + 1),
                &operator,
                Role::Operator,
                options,
                index as u64 * 2 + 1,
            ),
        ];
        let pair = Pair {
            index,
            conversation,
            links,
            options: options.clone(),
            progress: progress.clone(),
        };
        tasks.push(tokio::spawn(pair.run(ready_tx.clone(), start_rx.clone())));
    }
    drop(ready_tx);
    for _ in 0..options.pairs {
        tokio::time::timeout(READY_TIMEOUT, ready_rx.recv())
            .await
            .context("the pairs did not connect in time")?
            .context("a pair failed to connect")?;
    }
    let before = usage::sample(target, false).await;
    start_tx.send_replace(Some(Instant::now()));
    let mut outcome = Outcome::default();
    for task in tasks {
        outcome.merge(task.await??);
    }
    let after = usage::sample(target, true).await;
    outcome.usage = Some(Usage::between(target, &before, &after, outcome.completed));
    Ok(outcome)
}

fn new_link(
    target: &Target,
    node: &Node,
    user: &str,
    role: Role,
    options: &Options,
    seed: u64,
) -> Link {
    Link::new(
        &node.ws_url,
        node.address,
        None,
        target.token(user, role),
        device::config(options.window, seed),
    )
}

struct Pair {
    index: usize,
    conversation: String,
    /// Client, operator.
    links: [Link; 2],
    options: Options,
    progress: Arc<AtomicU64>,
}

/// A message of the run: when it was (scheduled to be) sent, and by which side.
struct Tracked {
    at: Instant,
    side: usize,
}

impl Pair {
    async fn run(
        mut self,
        ready: mpsc::Sender<()>,
        mut start: watch::Receiver<Option<Instant>>,
    ) -> anyhow::Result<Outcome> {
        self.connect().await?;
        let _ = ready.send(()).await;
        let start = start
            .wait_for(Option::is_some)
            .await
            .context("the run was abandoned")?
            .expect("checked");
        self.traffic(start).await
    }

    /// Connects both devices and waits until both have caught up with the conversation.
    async fn connect(&mut self) -> anyhow::Result<()> {
        let now = Instant::now();
        let mut synced = [false, false];
        let mut events = Vec::new();
        for link in &mut self.links {
            link.session.connect(now);
        }
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        while synced != [true, true] {
            for (side, link) in self.links.iter_mut().enumerate() {
                link.drive(&mut events).await;
                for event in events.drain(..) {
                    if let Event::Synced { .. } = event {
                        synced[side] = true;
                    }
                }
            }
            if synced == [true, true] {
                break;
            }
            let [a, b] = &mut self.links;
            tokio::select! {
                next = a.next() => a.handle(Instant::now(), next),
                next = b.next() => b.handle(Instant::now(), next),
                _ = tokio::time::sleep_until(deadline) => bail!("pair {} did not sync", self.index),
            }
        }
        Ok(())
    }

    async fn traffic(&mut self, start: Instant) -> anyhow::Result<Outcome> {
        let options = self.options.clone();
        let end = start + options.duration;
        let body: String = format!("{:0>width$}", self.index, width = options.body_bytes.max(1));
        let mut outcome = Outcome::default();
        let mut tracked: HashMap<String, Tracked> = HashMap::new();
        let mut events = Vec::new();
        // Rate mode: this pair's share, staggered so pairs do not send in lockstep.
        let interval = match options.mode {
            Mode::Rate(rate) => Some(Duration::from_secs_f64(options.pairs as f64 / rate)),
            Mode::Flat => None,
        };
        let phase = interval.map_or(Duration::ZERO, |i| {
            i.mul_f64(self.index as f64 / options.pairs as f64)
        });
        let mut scheduled: u64 = 0;
        loop {
            let now = Instant::now();
            if now < end {
                match interval {
                    None => {
                        for side in 0..2 {
                            let link = &mut self.links[side];
                            while link.session.pending_count() < options.window {
                                let id = options.ids.new_id();
                                link.session
                                    .send(now, id.clone(), &self.conversation, &body, None);
                                tracked.insert(id, Tracked { at: now, side });
                                outcome.sent += 1;
                            }
                        }
                    }
                    Some(interval) => loop {
                        let at = start + phase + interval * scheduled as u32;
                        if at > now || at >= end {
                            break;
                        }
                        let side = (scheduled % 2) as usize;
                        let id = options.ids.new_id();
                        self.links[side].session.send(
                            now,
                            id.clone(),
                            &self.conversation,
                            &body,
                            None,
                        );
                        tracked.insert(id, Tracked { at, side });
                        outcome.sent += 1;
                        scheduled += 1;
                    },
                }
            }
            for side in 0..2 {
                self.links[side].drive(&mut events).await;
                let now = Instant::now();
                for event in events.drain(..) {
                    self.observe(side, now, start, end, event, &mut tracked, &mut outcome);
                }
            }
            let now = Instant::now();
            if now >= end && (tracked.is_empty() || now >= end + DRAIN) {
                break;
            }
            let mut wake = if now < end {
                match interval {
                    Some(interval) => (start + phase + interval * scheduled as u32).min(end),
                    None => end,
                }
            } else {
                end + DRAIN
            };
            for link in &self.links {
                if let Some(at) = link.session.poll_timeout() {
                    wake = wake.min(at);
                }
            }
            let [a, b] = &mut self.links;
            tokio::select! {
                next = a.next() => {
                    let now = Instant::now();
                    a.handle(now, next);
                    a.handle_ready(now);
                }
                next = b.next() => {
                    let now = Instant::now();
                    b.handle(now, next);
                    b.handle_ready(now);
                }
                _ = tokio::time::sleep_until(wake.into()) => {
                    let now = Instant::now();
                    for link in &mut self.links {
                        if link.session.poll_timeout().is_some_and(|at| at <= now) {
                            link.session.handle_timeout(now);
                        }
                    }
                }
            }
        }
        outcome.incomplete = tracked.len() as u64;
        Ok(outcome)
    }

    #[allow(clippy::too_many_arguments)]
    fn observe(
        &self,
        side: usize,
        now: Instant,
        start: Instant,
        end: Instant,
        event: Event,
        tracked: &mut HashMap<String, Tracked>,
        outcome: &mut Outcome,
    ) {
        match event {
            Event::DeliveryStatus { id, status, .. } => match status {
                DeliveryStatus::Sent { .. } => {
                    if let Some(t) = tracked.get(&id) {
                        record(
                            &mut outcome.latencies.ack,
                            now.saturating_duration_since(t.at),
                        );
                    }
                }
                DeliveryStatus::Delivered | DeliveryStatus::Read => {
                    if let Some(t) = tracked.remove(&id) {
                        record(
                            &mut outcome.latencies.receipt,
                            now.saturating_duration_since(t.at),
                        );
                        outcome.completed += 1;
                        if now <= end {
                            outcome.completed_in_window += 1;
                        }
                        outcome.timeline.count(now.saturating_duration_since(start));
                        self.progress.fetch_add(1, Ordering::Relaxed);
                    }
                }
                DeliveryStatus::Failed { .. } => {
                    if tracked.remove(&id).is_some() {
                        outcome.failed += 1;
                    }
                }
                DeliveryStatus::Sending => {}
            },
            Event::Message(message) => {
                if let Some(t) = tracked.get(&message.id) {
                    if t.side != side {
                        record(
                            &mut outcome.latencies.receive,
                            now.saturating_duration_since(t.at),
                        );
                    }
                }
            }
            _ => {}
        }
    }
}
