//! `reconnect-storm`: devices connected and caught up; every connection is cut at once; a
//! backlog is written for each while they are away; then the network comes back for all of them
//! at the same instant. Measured: the time until every device has resumed and holds every
//! message of its backlog (its contiguous cursor reached the conversation's end).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use client::Event;
use protocol::Role;
use serde::Serialize;
use tokio::sync::{mpsc, watch, Semaphore};

use super::connections::{sleep_until, source};
use super::device::{self, Link};
use super::target::{Post, Target};

/// How long resuming may take before the devices left are counted as missing.
const RESUME_TIMEOUT: Duration = Duration::from_secs(120);

/// Connection attempts in progress at once while setting up (the storm itself is unbounded).
const CONNECTING_MAX: usize = 256;

/// What the scenario measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub devices: usize,
    pub backlog_per_device: u64,
    pub messages: u64,
    pub connect_seconds: f64,
    pub backlog_write_seconds: f64,
    /// From the network coming back to the last device holding its whole backlog.
    pub resume_seconds: f64,
    /// Devices that did not hold their whole backlog in time (must be 0).
    pub missing: usize,
    /// Messages a device was handed twice (must be 0).
    pub duplicates: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Connected,
    Cut,
    Up(Instant),
    Stop,
}

/// Runs the storm with `count` devices and `backlog` messages each.
pub async fn run(
    target: &Target,
    count: usize,
    backlog: u64,
    progress: Arc<AtomicU64>,
) -> anyhow::Result<Report> {
    let files = crate::rlimit::raise_open_files();
    if count as u64 + 64 > files {
        bail!("{count} devices need more open files than this process may have ({files})");
    }
    let run = super::run_id();
    let conversation = |i: usize| format!("bench-{run}-s{i}");
    let operator = |i: usize| format!("bench-{run}-so{i}");
    target
        .create_conversations(
            (0..count)
                .map(|i| (conversation(i), format!("bench-{run}-sc{i}"), operator(i)))
                .collect(),
        )
        .await?;
    let started = Instant::now();
    let (report_tx, mut reports) = mpsc::unbounded_channel::<Step>();
    let (phase_tx, phase_rx) = watch::channel(Phase::Connected);
    let permits = Arc::new(Semaphore::new(CONNECTING_MAX));
    for i in 0..count {
        let token = target.token(&format!("bench-{run}-sc{i}"), Role::Client);
        let link = Link::new(
            &target.node(i).ws_url,
            target.node(i).address,
            source(i, count),
            token,
            device::config(1, i as u64),
        );
        let permit = permits.clone().acquire_owned().await?;
        let device = Device {
            link,
            conversation: conversation(i),
            backlog,
            report: report_tx.clone(),
            phase: phase_rx.clone(),
        };
        tokio::spawn(device.run(permit));
    }
    drop(report_tx);
    wait_for(&mut reports, count, Step::Synced, &progress).await?;
    let connect_seconds = started.elapsed().as_secs_f64();
    phase_tx.send_replace(Phase::Cut);
    wait_for(&mut reports, count, Step::Cut, &progress).await?;
    let written = Instant::now();
    let mut posts = Vec::new();
    for i in 0..count {
        let bearer = target.token(&operator(i), Role::Operator);
        for n in 0..backlog {
            posts.push(Post {
                path: format!("/v1/conversations/{}/messages", conversation(i)),
                bearer: bearer.clone(),
                body: serde_json::json!({
                    "id": uuid::Uuid::new_v4().to_string(),
                    "body": format!("backlog {n}"),
                })
                .to_string(),
            });
        }
    }
    target.post_all(posts).await?;
    let backlog_write_seconds = written.elapsed().as_secs_f64();
    let up = Instant::now();
    phase_tx.send_replace(Phase::Up(up));
    let mut done = 0;
    let mut last = up;
    let mut duplicates = 0;
    let deadline = tokio::time::Instant::now() + RESUME_TIMEOUT;
    while done < count {
        match tokio::time::timeout_at(deadline, reports.recv()).await {
            Ok(Some(Step::Resumed { at, duplicates: d })) => {
                done += 1;
                last = last.max(at);
                duplicates += d;
                progress.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    phase_tx.send_replace(Phase::Stop);
    Ok(Report {
        devices: count,
        backlog_per_device: backlog,
        messages: backlog * count as u64,
        connect_seconds,
        backlog_write_seconds,
        resume_seconds: last.duration_since(up).as_secs_f64(),
        missing: count - done,
        duplicates,
    })
}

#[derive(Debug, PartialEq)]
enum Step {
    Synced,
    Cut,
    Resumed { at: Instant, duplicates: u64 },
}

async fn wait_for(
    reports: &mut mpsc::UnboundedReceiver<Step>,
    count: usize,
    step: Step,
    progress: &AtomicU64,
) -> anyhow::Result<()> {
    for seen in 0..count {
        let got = tokio::time::timeout(Duration::from_secs(60), reports.recv())
            .await
            .with_context(|| format!("{seen} of {count} devices reached {step:?} in 60 s"))?
            .context("a device stopped")?;
        if got != step {
            bail!("a device reported {got:?} while waiting for {step:?}");
        }
        progress.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

struct Device {
    link: Link,
    conversation: String,
    backlog: u64,
    report: mpsc::UnboundedSender<Step>,
    phase: watch::Receiver<Phase>,
}

impl Device {
    async fn run(mut self, permit: tokio::sync::OwnedSemaphorePermit) -> anyhow::Result<()> {
        let mut permit = Some(permit);
        let mut events = Vec::new();
        let mut seen = Phase::Connected;
        let mut held = 0u64;
        let mut ids = std::collections::HashSet::new();
        let mut duplicates = 0;
        let mut resumed = false;
        self.link.session.connect(Instant::now());
        loop {
            self.link.drive(&mut events).await;
            for event in events.drain(..) {
                match event {
                    Event::Synced { .. } if permit.is_some() => {
                        permit = None;
                        self.report.send(Step::Synced).ok().context("ended")?;
                    }
                    Event::Message(m) => {
                        held += 1;
                        if !ids.insert(m.id) {
                            duplicates += 1;
                        }
                    }
                    _ => {}
                }
            }
            if let Phase::Up(_) = seen {
                if !resumed && self.link.session.cursor(&self.conversation) >= self.backlog {
                    resumed = true;
                    let duplicates = duplicates + held.saturating_sub(self.backlog);
                    let step = Step::Resumed {
                        at: Instant::now(),
                        duplicates,
                    };
                    self.report.send(step).ok().context("ended")?;
                }
            }
            let wake = self.link.session.poll_timeout();
            tokio::select! {
                changed = self.phase.changed() => {
                    changed.context("ended")?;
                    let phase = *self.phase.borrow_and_update();
                    let now = Instant::now();
                    match phase {
                        Phase::Cut => {
                            self.link.session.handle_network(now, false);
                            self.link.drive(&mut events).await;
                            self.report.send(Step::Cut).ok().context("ended")?;
                        }
                        Phase::Up(_) => self.link.session.handle_network(now, true),
                        Phase::Stop => return Ok(()),
                        Phase::Connected => {}
                    }
                    seen = phase;
                }
                next = self.link.next() => self.link.handle(Instant::now(), next),
                _ = sleep_until(wake) => self.link.session.handle_timeout(Instant::now()),
            }
        }
    }
}
