//! One WebSocket connection: the driver around [`Core`]. It moves bytes and carries out the
//! core's outputs; every decision is the core's.
//!
//! ```text
//! select (biased) {
//!   shutdown            → core: drain, then 1012
//!   hub says lagging    → core: 4409
//!   a store answer      → core: ack / error, in the order the device sent them
//!   a read finished     → core: page, joined, refreshed state
//!   the writer wrote    → core: bytes written (pacing, stall detection)
//!   frame from device   → core (only while the core wants frames: backpressure)
//!   hub notice          → core
//!   core's timer        → core: ping, heartbeat timeout, token expiry, write stall
//! }
//! ```
//!
//! Frames go to a writer task through an unbounded channel whose size the core bounds (it closes
//! the connection past `WRITE_QUEUE_BYTES_MAX`), so a device that stops reading never blocks the
//! loop: its heartbeat and stall timers still fire.
//!
//! **Invariant:** every close the server starts completes the closing handshake: the close frame
//! follows every queued frame, then the driver reads and discards until the peer's close or
//! `CLOSE_HANDSHAKE_MS`, and only then drops the socket — so the kernel never answers unread
//! frames with a reset that would destroy the close frame and the frames before it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket};
use futures_util::stream::{FuturesUnordered, SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use protocol::api::ConversationView;
use protocol::frames::{self, ConversationState, PresenceStatus};
use protocol::{ErrorCode, Role};
use tokio::sync::{mpsc, Notify};

use super::core::{Authenticated, Core, Ending, Metric, Output, Read, StoreOutcome, Text};
use crate::hub::Registration;
use crate::metrics::{Side, Via};
use crate::store::{StoreError, StoredMessage};
use crate::{now_s, AppState};

type Sink = SplitSink<WebSocket, WsMessage>;
type Stream = SplitStream<WebSocket>;
type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send>>;

use protocol::limits::CLOSE_HANDSHAKE_MS;

/// The longest a token's expiry is scheduled ahead; a later `exp` is treated as this far away
/// (the connection is closed at most this late, and no arithmetic can overflow).
const TOKEN_EXPIRY_HORIZON: Duration = Duration::from_secs(400 * 24 * 3600);

/// What finished reading.
enum ReadDone {
    Page(String, Result<Vec<StoredMessage>, StoreError>),
    Conversation(String, Result<Option<ConversationView>, StoreError>),
    States(Result<Vec<ConversationState>, StoreError>),
}

/// Runs a connection to its end.
pub async fn run(socket: WebSocket, app: Arc<AppState>) {
    let (sink, mut stream) = socket.split();
    app.metrics.connections_open.fetch_add(1, Ordering::Relaxed);
    let mut driver = Driver {
        core: Core::new(app.config.clone(), app.send_budget.clone(), Instant::now()),
        writer: Writer::spawn(sink),
        registration: None,
        stores: FuturesUnordered::new(),
        read: None,
        app: app.clone(),
        peer_close: None,
    };
    let ending = driver.serve(&mut stream).await;
    let authenticated = driver.registration.is_some();
    tracing::debug!(user = %driver.core.user_id(), reason = ending.label, "connection closed");
    if authenticated && driver.core.role() == Role::Operator {
        app.presence.disconnected(driver.core.user_id());
    }
    // Notices stop here; the closing handshake only finishes the transport.
    driver.registration = None;
    app.metrics.disconnect(ending.label);
    let (side, code) = closed_by(&ending, driver.peer_close);
    app.metrics.close(side, code);
    driver.writer.finish(&mut stream, ending).await;
    let unwritten = driver.core.queued_bytes() as i64;
    app.metrics
        .write_queue_bytes
        .fetch_sub(unwritten, Ordering::Relaxed);
    app.metrics.connections_open.fetch_sub(1, Ordering::Relaxed);
}

struct Driver {
    app: Arc<AppState>,
    core: Core,
    writer: Writer,
    registration: Option<Registration>,
    stores: FuturesUnordered<Boxed<(u64, StoreOutcome)>>,
    read: Option<Boxed<ReadDone>>,
    /// How the device closed, if it did: the code of its close frame, 1005 for a close frame
    /// without one, 1006 for a transport that just ended (RFC 6455, section 7.1.5).
    peer_close: Option<u16>,
}

impl Driver {
    async fn serve(&mut self, stream: &mut Stream) -> Ending {
        let shutdown = self.app.shutdown.clone();
        let mut shutdown_seen = false;
        loop {
            while let Some(output) = self.core.poll_output() {
                if let Some(ending) = self.carry_out(output).await {
                    return ending;
                }
            }
            let timeout = self.core.poll_timeout();
            let wake = tokio::time::sleep_until(tokio::time::Instant::from_std(
                timeout.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600)),
            ));
            let wants_frames = self.core.wants_frames();
            let subscriber = self.registration.as_ref().map(|r| r.subscriber().clone());
            tokio::select! {
                biased;
                _ = shutdown.cancelled(), if !shutdown_seen => {
                    shutdown_seen = true;
                    self.core.handle_shutdown();
                }
                _ = lagged(subscriber) => self.core.handle_lagged(),
                Some((ticket, outcome)) = self.stores.next(), if !self.stores.is_empty() => {
                    self.core.handle_stored(Instant::now(), ticket, outcome);
                }
                done = poll_read(&mut self.read), if self.read.is_some() => {
                    self.read = None;
                    match done {
                        ReadDone::Page(conversation, result) => self.core.handle_page(&conversation, result),
                        ReadDone::Conversation(id, result) => self.core.handle_conversation(&id, result),
                        ReadDone::States(result) => self.core.handle_states(result),
                    }
                }
                _ = self.writer.progress.notified() => {
                    if self.writer.failed.load(Ordering::Acquire) {
                        return Ending::new(0, "", "io_error");
                    }
                    let written = self.writer.take_written();
                    self.app
                        .metrics
                        .write_queue_bytes
                        .fetch_sub(written as i64, Ordering::Relaxed);
                    self.core.handle_written(Instant::now(), written);
                }
                next = stream.next(), if wants_frames => {
                    let now = Instant::now();
                    match next {
                        Some(Ok(WsMessage::Text(text))) => self.core.handle_text(now, text.as_str()),
                        Some(Ok(WsMessage::Binary(_))) => self.core.handle_binary(now),
                        Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => self.core.handle_heard(now),
                        Some(Ok(WsMessage::Close(frame))) => {
                            self.peer_close = Some(frame.map_or(1005, |f| f.code));
                            self.core.handle_peer_closed(false);
                        }
                        None => {
                            self.peer_close = Some(1006);
                            self.core.handle_peer_closed(false);
                        }
                        Some(Err(err)) => {
                            let text = err.to_string().to_ascii_lowercase();
                            let too_big = text.contains("too long") || text.contains("size");
                            if !too_big {
                                return Ending::new(0, "", "io_error");
                            }
                            self.core.handle_peer_closed(true);
                        }
                    }
                }
                Some(event) = next_event(self.registration.as_mut()) => {
                    self.core.handle_notice(event);
                }
                _ = wake, if timeout.is_some() => self.core.handle_timeout(Instant::now()),
            }
        }
    }

    /// Carries out one output; returns the ending once the core closes.
    async fn carry_out(&mut self, output: Output) -> Option<Ending> {
        let app = &*self.app;
        match output {
            Output::Send(text) => {
                let len = text.as_str().len() as i64;
                app.metrics
                    .write_queue_bytes
                    .fetch_add(len, Ordering::Relaxed);
                self.writer.send(text);
            }
            Output::Close(ending) => return Some(ending),
            Output::Authenticate { token } => {
                self.authenticate(&token).await;
            }
            Output::Append { ticket, request } => {
                // Called now, in output order: stores order writes at call time.
                let pending = app.store.append(request);
                self.stores.push(Box::pin(async move {
                    (ticket, StoreOutcome::Appended(pending.await))
                }));
            }
            Output::Receipt { ticket, request } => {
                let pending = app.store.record_receipt(request);
                self.stores.push(Box::pin(async move {
                    (ticket, StoreOutcome::Receipt(pending.await))
                }));
            }
            Output::Read(read) => {
                let store = &app.store;
                self.read = Some(match read {
                    Read::Page {
                        conversation,
                        after,
                        limit,
                    } => {
                        let pending = store.messages_since(conversation.clone(), after, limit);
                        Box::pin(async move { ReadDone::Page(conversation, pending.await) })
                    }
                    Read::Conversation(id) => {
                        let pending = store.conversation(id.clone());
                        Box::pin(async move { ReadDone::Conversation(id, pending.await) })
                    }
                    Read::States => {
                        let pending = store.conversation_states_of(self.core.user_id().to_owned());
                        Box::pin(async move { ReadDone::States(pending.await) })
                    }
                });
            }
            Output::Subscribe(conversation) => {
                if let Some(registration) = &self.registration {
                    registration.subscribe(&conversation);
                }
            }
            Output::Unsubscribe(conversation) => {
                if let Some(registration) = &self.registration {
                    registration.unsubscribe(&conversation);
                }
            }
            Output::Typing {
                conversation,
                role,
                active,
            } => app
                .hub
                .typing(&conversation, self.core.user_id(), role, active),
            Output::Presence(status) => app.presence.switch(self.core.user_id(), status),
            Output::Metric(metric) => count(app, metric),
        }
        None
    }

    /// Checks the token, registers with the hub and reads the user's conversations, then hands
    /// the result to the core.
    async fn authenticate(&mut self, token: &str) {
        let app = self.app.clone();
        // A first check before taking a place in the hub; the revocation is checked again once
        // registered, so a revocation committed in between still reaches this connection.
        let claims = match app.auth.verify(token, now_s()) {
            Ok(claims) => claims,
            Err(code) => return self.core.handle_auth_refused(code, code.title().to_owned()),
        };
        if let Err((code, message)) = crate::directory::admit(&app, &claims).await {
            return self.core.handle_auth_refused(code, message);
        }
        let config = &app.config;
        let Ok(registration) = app.hub.register(
            &claims.sub,
            config.connection_queue_frames,
            config.connections_per_user_max,
        ) else {
            let message = format!(
                "at most {} connections per user",
                config.connections_per_user_max
            );
            return self
                .core
                .handle_auth_refused(ErrorCode::TooManyConnections, message);
        };
        if let Err((code, message)) = app.authenticate(token).await {
            return self.core.handle_auth_refused(code, message);
        }
        // Subscribe before reading state, so whatever commits later is in the state read or
        // arrives as a notice (or both: `pushed` skips duplicates, receipts are cumulative). The
        // device's cursors name its conversations; any others are subscribed after a first read,
        // and then the state is read once more.
        let known: Vec<String> = self
            .core
            .hello_cursors()
            .iter()
            .map(|c| c.conversation.clone())
            .filter(|id| protocol::ids::check_conversation_id(id).is_ok())
            .take(protocol::limits::PARTICIPANTS_MAX * 1000)
            .collect();
        for id in &known {
            registration.subscribe(id);
        }
        let read_states = || app.store.conversation_states_of(claims.sub.clone());
        let mut states = read_states().await;
        if let Ok(first) = &states {
            let late: Vec<&str> = first
                .iter()
                .map(|s| s.id.as_str())
                .filter(|id| !known.iter().any(|k| k == id))
                .collect();
            if !late.is_empty() {
                for id in &late {
                    registration.subscribe(id);
                }
                states = read_states().await;
            }
        }
        let mut presence = Vec::new();
        if let Ok(states) = &states {
            if claims.role == Role::Operator {
                app.presence
                    .connected(&claims.sub, states.iter().map(|s| s.id.clone()));
            }
            // Who of the operators is there, per conversation (changes follow as `presence`).
            for state in states {
                for p in state
                    .participants
                    .iter()
                    .filter(|p| p.role == Role::Operator && p.user_id != claims.sub)
                {
                    let status = app.presence.status(&p.user_id);
                    if status != PresenceStatus::Offline {
                        presence.push(frames::Presence {
                            conversation: state.id.clone(),
                            user_id: p.user_id.clone(),
                            status,
                        });
                    }
                }
            }
        }
        let now = Instant::now();
        let expires_in =
            Duration::from_secs(claims.exp.saturating_sub(now_s())).min(TOKEN_EXPIRY_HORIZON);
        let connection_id = registration.subscriber().id();
        self.registration = Some(registration);
        self.core.handle_welcome(
            now,
            Authenticated {
                claims,
                token_expires: now + expires_in,
                connection_id,
                states,
                presence,
            },
        );
    }
}

async fn lagged(subscriber: Option<Arc<crate::hub::Subscriber>>) {
    match subscriber {
        Some(subscriber) => subscriber.lagged().await,
        None => std::future::pending().await,
    }
}

async fn next_event(registration: Option<&mut Registration>) -> Option<crate::hub::HubEvent> {
    match registration {
        Some(registration) => registration.events.recv().await,
        None => std::future::pending().await,
    }
}

async fn poll_read(read: &mut Option<Boxed<ReadDone>>) -> ReadDone {
    match read {
        Some(read) => read.await,
        None => std::future::pending().await,
    }
}

/// Who closed, and with which code: the device's own code when it closed first, 1006 when the
/// transport failed under us, else the server's close code.
fn closed_by(ending: &Ending, peer_close: Option<u16>) -> (Side, u16) {
    match (ending.label, peer_close) {
        ("client_closed", code) => (Side::Client, code.unwrap_or(1006)),
        ("io_error", _) => (Side::Client, 1006),
        _ => (Side::Server, ending.code),
    }
}

fn count(app: &AppState, metric: Metric) {
    let metrics = &app.metrics;
    match metric {
        Metric::Connected { offline, pending } => {
            metrics.connects.fetch_add(1, Ordering::Relaxed);
            metrics.resumed(offline, pending);
        }
        Metric::Refused(code) => metrics.refusal(code, Via::Ws),
        Metric::Ack(label) => metrics.ack(label),
        Metric::Stored(elapsed) => {
            metrics.send_to_ack(elapsed);
            metrics.messages_stored.fetch_add(1, Ordering::Relaxed);
        }
        Metric::Repeated(elapsed) => metrics.send_to_ack(elapsed),
        Metric::Receipt => {
            metrics.receipts.fetch_add(1, Ordering::Relaxed);
        }
        Metric::Backlog(sent) => {
            metrics.resume_backlog.fetch_add(sent, Ordering::Relaxed);
        }
    }
}

/// What the writer task is told.
enum Write {
    Frame(Text),
    /// Send this close frame after everything queued, then stop (`None`: only finish a close
    /// the peer started).
    Close(Option<CloseFrame>),
}

/// The writer task: writes queued frames to the socket and reports how many bytes it wrote.
struct Writer {
    queue: mpsc::UnboundedSender<Write>,
    written: Arc<AtomicUsize>,
    failed: Arc<AtomicBool>,
    progress: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
    /// Bytes of `written` already reported to the core.
    reported: usize,
}

impl Writer {
    fn spawn(sink: Sink) -> Self {
        let (queue, rx) = mpsc::unbounded_channel();
        let written = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(Notify::new());
        let task = tokio::spawn(write_loop(
            sink,
            rx,
            written.clone(),
            failed.clone(),
            progress.clone(),
        ));
        Writer {
            queue,
            written,
            failed,
            progress,
            task,
            reported: 0,
        }
    }

    fn send(&self, text: Text) {
        // The task only ends on a write error, which it reports through `failed`.
        let _ = self.queue.send(Write::Frame(text));
    }

    fn take_written(&mut self) -> usize {
        let total = self.written.load(Ordering::Acquire);
        let new = total - self.reported;
        self.reported = total;
        new
    }

    /// Finishes the connection: the close frame after every queued frame, then read and discard
    /// until the peer's close (or the transport's end), within `CLOSE_HANDSHAKE_MS`.
    async fn finish(self, stream: &mut Stream, ending: Ending) {
        let deadline = tokio::time::sleep(Duration::from_millis(CLOSE_HANDSHAKE_MS));
        tokio::pin!(deadline);
        let frame = (ending.code != 0).then(|| CloseFrame {
            code: ending.code,
            reason: ending.reason.into(),
        });
        let started_by_us = frame.is_some();
        let _ = self.queue.send(Write::Close(frame));
        if started_by_us {
            loop {
                tokio::select! {
                    next = stream.next() => match next {
                        Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => break,
                        Some(Ok(_)) => {} // after our close: discarded
                    },
                    _ = &mut deadline => break,
                }
            }
        }
        let mut task = self.task;
        tokio::select! {
            _ = &mut task => {}
            _ = &mut deadline => task.abort(),
        }
    }
}

async fn write_loop(
    mut sink: Sink,
    mut queue: mpsc::UnboundedReceiver<Write>,
    written: Arc<AtomicUsize>,
    failed: Arc<AtomicBool>,
    progress: Arc<Notify>,
) {
    while let Some(write) = queue.recv().await {
        let result = match write {
            Write::Frame(text) => {
                let len = text.as_str().len();
                let message = match text {
                    Text::Owned(text) => WsMessage::Text(text.into()),
                    Text::Shared(text) => WsMessage::Text(text.as_ref().into()),
                };
                let result = sink.send(message).await;
                if result.is_ok() {
                    written.fetch_add(len, Ordering::Release);
                    progress.notify_one();
                }
                result
            }
            Write::Close(frame) => {
                let result = match frame {
                    Some(frame) => sink.send(WsMessage::Close(Some(frame))).await,
                    None => sink.close().await,
                };
                let _ = sink.flush().await;
                let _ = result;
                return;
            }
        };
        if result.is_err() {
            failed.store(true, Ordering::Release);
            progress.notify_one();
            return;
        }
    }
}
