//! The ceiling: the same traffic shape as `throughput` through a minimal forwarder with no
//! storage and no logic. Pair `i`'s two sockets connect to `/pair/i`; the relay copies every
//! text frame of one to the other. Each side keeps `window` `send` frames outstanding and
//! answers every `send` it gets with a `receipt`, so one completion is one message plus one
//! receipt, as in the real run (which does more: ack, echo, storage, fan-out).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::{FutureExt, SinkExt, StreamExt};
use protocol::frames::{self, ClientFrame};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message;

use super::device::{self, Ws};
use super::stats::record;
use super::traffic::{Options, Outcome};

/// A relay on an ephemeral loopback port; dropped, it stops accepting.
pub struct Relay {
    pub address: SocketAddr,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Starts the relay.
pub async fn relay() -> anyhow::Result<Relay> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let (joined_tx, mut joined) = mpsc::unbounded_channel::<(String, Ws)>();
    let accept = tokio::spawn(async move {
        let mut waiting: HashMap<String, Ws> = HashMap::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let _ = stream.set_nodelay(true);
                    let joined_tx = joined_tx.clone();
                    tokio::spawn(async move {
                        let mut path = String::new();
                        // The error type is tungstenite's; it is never produced here.
                        #[allow(clippy::result_large_err)]
                        let callback = |request: &Request, response: Response| {
                            path = request.uri().path().to_owned();
                            Ok(response)
                        };
                        if let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await {
                            let _ = joined_tx.send((path, ws));
                        }
                    });
                }
                Some((path, ws)) = joined.recv() => match waiting.remove(&path) {
                    Some(peer) => { tokio::spawn(forward(peer, ws)); }
                    None => { waiting.insert(path, ws); }
                },
            }
        }
    });
    Ok(Relay { address, accept })
}

/// Copies frames both ways, one `send` (write and flush) per frame: the bare forwarder, with
/// the same per-frame write discipline as the server's connection loop.
async fn forward(a: Ws, b: Ws) {
    let (mut a_tx, mut a_rx) = a.split();
    let (mut b_tx, mut b_rx) = b.split();
    loop {
        let (to, next) = tokio::select! {
            m = a_rx.next() => (&mut b_tx, m),
            m = b_rx.next() => (&mut a_tx, m),
        };
        let Some(Ok(message)) = next else { return };
        if to.send(message).await.is_err() {
            return;
        }
    }
}

/// Runs `options.pairs` raw pairs through `relay` (flat mode: full windows).
pub async fn run(
    relay: &Relay,
    options: &Options,
    progress: Arc<AtomicU64>,
) -> anyhow::Result<Outcome> {
    let (start_tx, start_rx) = watch::channel(None::<Instant>);
    let mut connects = Vec::new();
    for pair in 0..options.pairs {
        let url = format!("ws://{}/pair/{pair}", relay.address);
        let address = relay.address;
        connects.push(tokio::spawn(async move {
            let a = device::open(&url, address, None).await?;
            let b = device::open(&url, address, None).await?;
            anyhow::Ok([a, b])
        }));
    }
    let mut tasks = Vec::new();
    for (pair, connect) in connects.into_iter().enumerate() {
        let sockets = connect.await?.context("connecting to the relay")?;
        let options = options.clone();
        let progress = progress.clone();
        let start = start_rx.clone();
        tasks.push(tokio::spawn(async move {
            raw_pair(pair, sockets, options, progress, start).await
        }));
    }
    // Give the relay a moment to pair the last sockets.
    tokio::time::sleep(Duration::from_millis(200)).await;
    start_tx.send_replace(Some(Instant::now()));
    let mut outcome = Outcome::default();
    for task in tasks {
        let one = task.await?;
        outcome.latencies.merge(&one.latencies);
        outcome.timeline.merge(&one.timeline);
        outcome.sent += one.sent;
        outcome.completed += one.completed;
        outcome.completed_in_window += one.completed_in_window;
        outcome.incomplete += one.incomplete;
    }
    Ok(outcome)
}

async fn raw_pair(
    pair: usize,
    mut sockets: [Ws; 2],
    options: Options,
    progress: Arc<AtomicU64>,
    mut start: watch::Receiver<Option<Instant>>,
) -> Outcome {
    let mut outcome = Outcome::default();
    let Ok(start) = start
        .wait_for(Option::is_some)
        .await
        .map(|s| s.expect("set"))
    else {
        return outcome;
    };
    let end = start + options.duration;
    let conversation = format!("raw-{pair}");
    let body: String = format!("{:0>width$}", pair, width = options.body_bytes.max(1));
    // Per side: send times of frames not yet receipted (the relay keeps order), how many frames
    // of the other side it has received (its cumulative receipt), and how many of its own the
    // other side has receipted.
    let mut outstanding: [VecDeque<Instant>; 2] = Default::default();
    let mut received = [0u64; 2];
    let mut completed = [0u64; 2];
    let mut dirty = [true, true];
    loop {
        let now = Instant::now();
        for side in 0..2 {
            if !dirty[side] {
                continue;
            }
            dirty[side] = false;
            let ws = &mut sockets[side];
            let mut wrote = false;
            while now < end && outstanding[side].len() < options.window {
                let frame = ClientFrame::Send(frames::Send {
                    id: uuid::Uuid::new_v4().to_string(),
                    conversation: conversation.clone(),
                    body: body.clone(),
                    kind: Default::default(),
                    attachments: Vec::new(),
                });
                if ws.feed(Message::text(frame.encode())).await.is_err() {
                    return outcome;
                }
                outstanding[side].push_back(now);
                outcome.sent += 1;
                wrote = true;
            }
            if wrote && ws.flush().await.is_err() {
                return outcome;
            }
        }
        if now >= end && outstanding.iter().all(VecDeque::is_empty) {
            break;
        }
        let [a, b] = &mut sockets;
        let (side, next) = tokio::select! {
            m = a.next() => (0, m),
            m = b.next() => (1, m),
            _ = tokio::time::sleep_until((end + Duration::from_secs(10)).into()) => break,
        };
        let mut texts = Vec::new();
        match next {
            Some(Ok(Message::Text(text))) => texts.push(text),
            Some(Ok(_)) => continue,
            _ => break,
        }
        while let Some(Some(Ok(Message::Text(text)))) = sockets[side].next().now_or_never() {
            texts.push(text);
        }
        let now = Instant::now();
        let mut receipts = Vec::new();
        for text in texts {
            match protocol::decode_client_frame(text.as_str()) {
                Ok(ClientFrame::Send(_)) => {
                    // One receipt per message, as a device's session sends after each frame.
                    received[side] += 1;
                    receipts.push(ClientFrame::Receipt(frames::ReceiptUpdate {
                        reference: None,
                        conversation: conversation.clone(),
                        delivered: Some(received[side]),
                        read: None,
                    }));
                }
                Ok(ClientFrame::Receipt(receipt)) => {
                    let delivered = receipt.delivered.unwrap_or(0);
                    // Cumulative: everything this side sent up to `delivered` is complete.
                    while completed[side] < delivered {
                        completed[side] += 1;
                        let Some(at) = outstanding[side].pop_front() else {
                            break;
                        };
                        record(
                            &mut outcome.latencies.receipt,
                            now.saturating_duration_since(at),
                        );
                        outcome.completed += 1;
                        if now <= end {
                            outcome.completed_in_window += 1;
                        }
                        outcome.timeline.count(now.saturating_duration_since(start));
                        progress.fetch_add(1, Ordering::Relaxed);
                    }
                    dirty[side] = true;
                }
                _ => {}
            }
        }
        if !receipts.is_empty() {
            let ws = &mut sockets[side];
            for receipt in receipts {
                if ws.feed(Message::text(receipt.encode())).await.is_err() {
                    return outcome;
                }
            }
            if ws.flush().await.is_err() {
                break;
            }
        }
    }
    outcome.incomplete = outstanding.iter().map(|o| o.len() as u64).sum();
    outcome
}
