//! `connections`: many idle, authenticated connections (each got its `welcome`), and what they
//! cost the server in memory. Beyond one source address's ephemeral ports, sockets are bound to
//! further loopback addresses (127.0.0.2, …) before connecting.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use client::{ConnectionStatus, Event};
use protocol::Role;
use serde::Serialize;
use tokio::sync::{mpsc, watch, Semaphore};

use super::device::{self, Link};
use super::target::Target;

/// Connections per loopback source address: below the 28,000-odd ephemeral ports of one.
const PER_SOURCE_ADDRESS: usize = 20_000;

/// Connection attempts in progress at once: a burst, not a thundering herd on the accept queue.
const CONNECTING_MAX: usize = 256;

/// Time to let the server's allocator settle before and after reading its memory.
const SETTLE: Duration = Duration::from_millis(1_000);

/// What the scenario measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub connections: usize,
    pub opened: usize,
    pub source_addresses: usize,
    pub open_seconds: f64,
    pub server_rss_before_kib: Option<u64>,
    pub server_rss_after_kib: Option<u64>,
    /// (RSS after − RSS before) / connections.
    pub server_bytes_per_connection: Option<u64>,
}

/// The source address of connection `index` of `count`, or none when one address is enough.
pub fn source(index: usize, count: usize) -> Option<Ipv4Addr> {
    (count > PER_SOURCE_ADDRESS).then(|| {
        let n = 1 + index / PER_SOURCE_ADDRESS;
        Ipv4Addr::new(127, 0, 0, n as u8)
    })
}

/// Opens `count` connections, reads the server's memory, closes them.
pub async fn run(
    target: &Target,
    count: usize,
    progress: Arc<AtomicU64>,
) -> anyhow::Result<Report> {
    let files = crate::rlimit::raise_open_files();
    if count as u64 + 64 > files {
        bail!("{count} connections need more open files than this process may have ({files})");
    }
    let run = super::run_id();
    tokio::time::sleep(SETTLE).await;
    let rss_before = target.rss_kib();
    let (opened_tx, mut opened_rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = watch::channel(false);
    let permits = Arc::new(Semaphore::new(CONNECTING_MAX));
    let started = Instant::now();
    for index in 0..count {
        let token = target.token(&format!("bench-{run}-idle-{index}"), Role::Client);
        let link = Link::new(
            &target.node(index).ws_url,
            target.node(index).address,
            source(index, count),
            token,
            device::config(1, index as u64),
        );
        let permit = permits.clone().acquire_owned().await?;
        tokio::spawn(idle(link, permit, opened_tx.clone(), stop_rx.clone()));
    }
    drop(opened_tx);
    let mut opened = 0;
    while opened < count {
        match tokio::time::timeout(Duration::from_secs(60), opened_rx.recv()).await {
            Ok(Some(())) => {
                opened += 1;
                progress.fetch_add(1, Ordering::Relaxed);
            }
            Ok(None) | Err(_) => break,
        }
    }
    let open_seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(SETTLE).await;
    let rss_after = target.rss_kib();
    stop_tx.send_replace(true);
    if opened < count {
        bail!("only {opened} of {count} connections opened");
    }
    let per_connection = rss_before
        .zip(rss_after)
        .map(|(before, after)| after.saturating_sub(before) * 1024 / count.max(1) as u64);
    Ok(Report {
        connections: count,
        opened,
        source_addresses: count.div_ceil(PER_SOURCE_ADDRESS),
        open_seconds,
        server_rss_before_kib: rss_before,
        server_rss_after_kib: rss_after,
        server_bytes_per_connection: per_connection,
    })
}

/// One idle device: connects, reports its `welcome`, then only answers pings until stopped.
async fn idle(
    mut link: Link,
    permit: tokio::sync::OwnedSemaphorePermit,
    opened: mpsc::UnboundedSender<()>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut permit = Some(permit);
    let mut events = Vec::new();
    link.session.connect(Instant::now());
    loop {
        link.drive(&mut events).await;
        for event in events.drain(..) {
            if event == Event::ConnectionStatus(ConnectionStatus::Connected) && permit.is_some() {
                permit = None;
                opened.send(()).ok().context("the run ended")?;
            }
        }
        let wake = link.session.poll_timeout();
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return Ok(()),
            next = link.next() => link.handle(Instant::now(), next),
            _ = sleep_until(wake) => link.session.handle_timeout(Instant::now()),
        }
    }
}

/// Sleeps until `at`, or forever.
pub async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
