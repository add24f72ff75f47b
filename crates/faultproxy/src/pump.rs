//! One direction of one connection: read a chunk from one endpoint, give it a delivery time
//! (latency, jitter), queue it, and write it to the other endpoint when it is due and the
//! bandwidth allows — or, once stalled, read and throw away.
//!
//! Each pump is one loop over a closed set of inputs: the settings changed, a write finished, a
//! read finished. Reads and writes are raced in one `select!` and both are cancel-safe (a
//! cancelled `read`/`write` on a TCP half transfers nothing), so a settings change interrupts a
//! pump that is waiting on a peer, a delivery time or the bucket.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::conn::{Control, Epochs, Shared};
use crate::limits::{BURST_MS, CHUNK_BYTES_MAX, QUEUE_BYTES_MAX};
use crate::rng::Rng;
use crate::ws::{masked_text_frame, FrameScanner};

/// Which way a pump carries bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    ToUpstream = 0,
    ToClient = 1,
}

/// How a pump (or a connection) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The source closed its side; everything read was delivered and the destination was
    /// half-closed. The other direction may go on.
    HalfClosed,
    /// An endpoint failed or went away (or closed a black hole): the whole connection ends.
    Closed,
    /// `drop_all` or shutdown: the whole connection ends.
    Dropped,
}

/// One direction of one connection, with what it needs from its connection.
pub(crate) struct Pump<'a> {
    pub direction: Direction,
    pub epochs: Epochs,
    pub rng: Rng,
    pub shared: &'a Shared,
    /// Set by whichever pump of the connection enters the black hole first.
    pub black_holed: &'a AtomicBool,
}

/// A chunk waiting for its delivery time.
struct Chunk {
    due: Instant,
    bytes: Vec<u8>,
    /// Bytes of `bytes` already written (writes may be partial or throttled).
    written: usize,
}

/// What woke the pump.
enum Input {
    Wrote(io::Result<usize>),
    Read(io::Result<usize>),
}

impl Pump<'_> {
    /// Runs until the direction is done or the connection must end.
    pub(crate) async fn run(
        mut self,
        mut src: OwnedReadHalf,
        mut dst: OwnedWriteHalf,
        mut control: watch::Receiver<Control>,
    ) -> Outcome {
        let mut buf = vec![0u8; CHUNK_BYTES_MAX];
        let mut queue: VecDeque<Chunk> = VecDeque::new();
        // Bytes in `queue` not yet written.
        let mut queued_bytes = 0usize;
        let mut read_open = true;
        let mut black_hole = false;
        // Delivery time of the last chunk queued: a later chunk is never due before it.
        let mut last_due = Instant::now();
        let mut bucket = Bucket::full(Instant::now());
        // Client → server only: where injected frames may go, and what waits for such a place.
        let mut scanner = (self.direction == Direction::ToUpstream).then(FrameScanner::new);
        let mut inject_seen = self.epochs.inject;
        let mut inject: Option<Arc<Vec<String>>> = None;
        loop {
            let faults = {
                let control = control.borrow_and_update();
                if control.inject_epoch != inject_seen {
                    inject_seen = control.inject_epoch;
                    inject = scanner.as_ref().map(|_| control.inject.clone());
                }
                if self.epochs.cut_by(&control) {
                    return Outcome::Dropped;
                }
                if !black_hole && self.epochs.stalled_by(&control) {
                    black_hole = true;
                    if !self.black_holed.swap(true, Relaxed) {
                        self.shared.counters.stalled.fetch_add(1, Relaxed);
                    }
                    self.discard(queued_bytes);
                    queue.clear();
                    queued_bytes = 0;
                }
                control.faults
            };
            if !black_hole && scanner.as_ref().is_some_and(FrameScanner::at_boundary) {
                if let Some(texts) = inject.take() {
                    let bytes = self.injection(&texts);
                    let due = (Instant::now() + faults.latency).max(last_due);
                    last_due = due;
                    queued_bytes += bytes.len();
                    queue.push_back(Chunk {
                        due,
                        bytes,
                        written: 0,
                    });
                }
            }
            if !read_open {
                if black_hole {
                    // An endpoint closed its side of a black hole: close the other side too.
                    return Outcome::Closed;
                }
                if queue.is_empty() {
                    let _ = dst.shutdown().await;
                    return Outcome::HalfClosed;
                }
            }

            let now = Instant::now();
            let next_write = match queue.front() {
                Some(chunk) if !black_hole => {
                    let pending = &chunk.bytes[chunk.written..];
                    Some(match faults.bytes_per_s {
                        None => (chunk.due, pending),
                        Some(rate) => {
                            bucket.refill(now, rate);
                            let len = pending.len().min(Bucket::burst_bytes(rate));
                            (
                                chunk.due.max(bucket.ready_at(now, rate, len)),
                                &pending[..len],
                            )
                        }
                    })
                }
                _ => None,
            };
            let can_write = next_write.is_some();
            let (write_at, write_bytes) = next_write.unwrap_or((now, &[]));
            let can_read = read_open && queued_bytes < QUEUE_BYTES_MAX;

            let input = tokio::select! {
                // Settings first: a drop or a stall must win over data that keeps flowing.
                biased;
                changed = control.changed() => match changed {
                    Ok(()) => continue,
                    // The proxy is gone.
                    Err(_) => return Outcome::Dropped,
                },
                // Writing before reading keeps the queue short when nothing delays it.
                wrote = write_when_due(&mut dst, write_at, write_bytes), if can_write => {
                    Input::Wrote(wrote)
                }
                read = src.read(&mut buf), if can_read => Input::Read(read),
            };

            match input {
                Input::Wrote(Ok(0)) | Input::Wrote(Err(_)) | Input::Read(Err(_)) => {
                    return Outcome::Closed
                }
                Input::Wrote(Ok(n)) => {
                    let chunk = queue.front_mut().expect("a write needs a queued chunk");
                    chunk.written += n;
                    debug_assert!(chunk.written <= chunk.bytes.len());
                    if chunk.written == chunk.bytes.len() {
                        queue.pop_front();
                    }
                    queued_bytes -= n;
                    if let Some(rate) = faults.bytes_per_s {
                        bucket.refill(Instant::now(), rate);
                        bucket.take(n);
                    }
                    self.count_forwarded(n);
                }
                Input::Read(Ok(0)) => read_open = false,
                Input::Read(Ok(n)) if black_hole => self.discard(n),
                Input::Read(Ok(n)) => {
                    let delay = faults.latency + self.jitter(faults.jitter);
                    let due = (Instant::now() + delay).max(last_due);
                    last_due = due;
                    let boundary = scanner.as_mut().and_then(|s| s.feed(&buf[..n]));
                    // Injected frames go right after the first whole message of the chunk.
                    let pieces = match (boundary, inject.take()) {
                        (Some(k), Some(texts)) => {
                            vec![
                                buf[..k].to_vec(),
                                self.injection(&texts),
                                buf[k..n].to_vec(),
                            ]
                        }
                        (_, waiting) => {
                            inject = waiting;
                            vec![buf[..n].to_vec()]
                        }
                    };
                    for bytes in pieces.into_iter().filter(|b| !b.is_empty()) {
                        queued_bytes += bytes.len();
                        queue.push_back(Chunk {
                            due,
                            bytes,
                            written: 0,
                        });
                    }
                }
            }
        }
    }

    fn jitter(&mut self, max: Duration) -> Duration {
        if max.is_zero() {
            return Duration::ZERO;
        }
        let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(self.rng.below(nanos))
    }

    /// `texts` as masked text frames, one after the other.
    fn injection(&mut self, texts: &[String]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for text in texts {
            let mask = self.rng.next_u64().to_le_bytes();
            bytes.extend(masked_text_frame(
                text,
                [mask[0], mask[1], mask[2], mask[3]],
            ));
        }
        self.shared
            .counters
            .frames_injected
            .fetch_add(texts.len() as u64, Relaxed);
        bytes
    }

    fn count_forwarded(&self, n: usize) {
        let counter = match self.direction {
            Direction::ToUpstream => &self.shared.counters.bytes_to_upstream,
            Direction::ToClient => &self.shared.counters.bytes_to_client,
        };
        counter.fetch_add(n as u64, Relaxed);
    }

    fn discard(&self, n: usize) {
        self.shared
            .counters
            .bytes_discarded
            .fetch_add(n as u64, Relaxed);
    }
}

/// Waits for `at`, then writes some of `bytes`. Cancel-safe: cancelled while sleeping or while
/// the socket is not writable, it has written nothing.
async fn write_when_due(dst: &mut OwnedWriteHalf, at: Instant, bytes: &[u8]) -> io::Result<usize> {
    // A deadline already past would still cost a timer tick (about a millisecond) per chunk.
    if at > Instant::now() {
        tokio::time::sleep_until(at).await;
    }
    dst.write(bytes).await
}

/// A connection born during a stall: read and throw away until the client closes its side or the
/// connection is dropped. There is no upstream to close.
pub(crate) async fn black_hole(
    mut client: TcpStream,
    mut control: watch::Receiver<Control>,
    epochs: Epochs,
    shared: &Shared,
) -> Outcome {
    let mut buf = vec![0u8; CHUNK_BYTES_MAX];
    loop {
        tokio::select! {
            biased;
            _ = control.wait_for(|c| epochs.cut_by(c)) => return Outcome::Dropped,
            read = client.read(&mut buf) => match read {
                Ok(0) | Err(_) => return Outcome::Closed,
                Ok(n) => {
                    shared.counters.bytes_discarded.fetch_add(n as u64, Relaxed);
                }
            },
        }
    }
}

/// Token bucket of one direction: `rate` bytes per second, holding at most
/// [`Bucket::burst_bytes`].
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled_at: Instant,
}

impl Bucket {
    /// A bucket that will be full at its first refill, whatever the rate: a new connection (or a
    /// new throttle) starts with one burst of credit.
    fn full(now: Instant) -> Self {
        Bucket {
            tokens: f64::INFINITY,
            refilled_at: now,
        }
    }

    /// Capacity at `rate`: [`BURST_MS`] worth of bytes, at least 1 (or nothing would ever pass),
    /// at most a chunk (a larger burst would only be written in several pieces anyway).
    fn burst_bytes(rate: u64) -> usize {
        let bytes = rate.saturating_mul(BURST_MS) / 1000;
        bytes.clamp(1, CHUNK_BYTES_MAX as u64) as usize
    }

    fn refill(&mut self, now: Instant, rate: u64) {
        let elapsed_s = now
            .saturating_duration_since(self.refilled_at)
            .as_secs_f64();
        self.tokens = (self.tokens + elapsed_s * rate as f64).min(Self::burst_bytes(rate) as f64);
        self.refilled_at = now;
    }

    /// When `want` bytes (at most a burst) may be written, given the tokens at `now`.
    fn ready_at(&self, now: Instant, rate: u64, want: usize) -> Instant {
        let missing = want as f64 - self.tokens;
        if missing <= 0.0 {
            now
        } else {
            now + Duration::from_secs_f64(missing / rate as f64)
        }
    }

    /// Spends `n` tokens. May go slightly negative (rounding, or a write that raced a lower
    /// rate): the debt delays the next write, so the average rate holds.
    fn take(&mut self, n: usize) {
        self.tokens -= n as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_paces_to_the_rate_after_one_burst() {
        let start = Instant::now();
        let rate = 10_000; // bytes per second: a burst is 500 bytes
        let mut bucket = Bucket::full(start);
        let mut now = start;
        let mut sent = 0;
        while sent < 10_500 {
            bucket.refill(now, rate);
            let want = Bucket::burst_bytes(rate);
            now = bucket.ready_at(now, rate, want);
            bucket.refill(now, rate);
            bucket.take(want);
            sent += want;
        }
        // 500 bytes free, then 10_000 bytes at 10_000 B/s.
        let took = now - start;
        assert!(
            took >= Duration::from_millis(990) && took <= Duration::from_millis(1010),
            "{took:?}"
        );
    }

    #[test]
    fn burst_is_bounded_both_ways() {
        assert_eq!(Bucket::burst_bytes(1), 1);
        assert_eq!(Bucket::burst_bytes(50_000), 2_500);
        assert_eq!(Bucket::burst_bytes(u64::MAX), CHUNK_BYTES_MAX);
    }
}
